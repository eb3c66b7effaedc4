/*
 * web.h — the web face: HTTP on libmicrohttpd, driven by the
 * daemon's one libev loop.  Private to src/web*.c; the rest of the daemon
 * sees only web_start / web_stop in jobfs.h.
 *
 * Every request is a struct wreq, from its first header to MHD's
 * "completed" notice.  A request that cannot be answered at once is parked
 * and its connection suspended: a long-poll waiting for a job, an answer
 * held until the store made it durable, a Tempest route waiting for its
 * worker.  A stream (SSE, a streamed route answer) owns a bounded output
 * buffer that MHD's content reader drains; the reader suspends the
 * connection when the buffer is empty and whoever appends resumes it.
 * A request that refers to a job holds a job_ref on it.
 */
#ifndef JOBFS_WEB_INT_H
#define JOBFS_WEB_INT_H

#include <microhttpd.h>

#include "web/web.h"

/* glibc's sys/queue.h lacks it. */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                      \
	for ((var) = TAILQ_FIRST((head));                               \
	    (var) && ((tvar) = TAILQ_NEXT((var), field), 1);            \
	    (var) = (tvar))
#endif

/* Bytes of events an SSE stream may have unread before it misses the
 * oldest (besides the one it is being sent): the newest events of its
 * log, held once for every stream (web_sse.c). */
#define WEB_STREAM_MAX (256u * 1024)
/* Seconds between keep-alive comments on idle streams (at most). */
#define WEB_PING_MAX 15.0
/* Bytes of a request's head (request line and headers): MHD answers 431 past it. */
#define WEB_HEADER_MAX (32u * 1024)

/* bhead: a buffer's live bytes, "" when it never held any. */
static inline const char *bhead(const struct buf *b) { return b->data != NULL ? buf_head(b) : ""; }

struct wreq;
TAILQ_HEAD(wreq_list, wreq);

enum wr_wait {
	WAIT_NONE,
	WAIT_JOB,      /* GET /jobs/ID/response: until the job ends */
	WAIT_DURABLE,  /* an answer ready, held until broker_durable >= mark */
	WAIT_ROUTE,    /* a Tempest route: until its worker answers */
	WAIT_LOOKUP,   /* cluster mode: another daemon's job, asked of Redis */
};

enum wr_stream {
	STREAM_NONE,
	STREAM_SUB,     /* GET /sub/C */
	STREAM_EVENTS,  /* GET /events */
	STREAM_ROUTE,   /* a route answer streamed from partial results */
};

/*
 * A connection, from accept to close (MHD's socket context).  Until a
 * request on it passes the gate with a token (or any request does,
 * without --auth) it is unauthenticated: on web->unauthed, oldest first,
 * with a deadline for its request to arrive (web.c, "connections").
 */
struct wconn {
	struct web             *web;
	int                     fd;
	char                    addr[48];   /* the peer's, for --max-conns-per-addr */
	bool                    authed;
	bool                    listed;     /* on web->unauthed */
	bool                    dropped;    /* shut down by us: MHD closes it */
	signed char             cert;       /* --tls-ca: 1 its certificate passed,
	                                       -1 not, 0 not yet looked at */
	ev_timer                deadline;   /* --http-header-timeout */
	TAILQ_ENTRY(wconn)      entry;
};
TAILQ_HEAD(wconn_list, wconn);

/*
 * SSE: each event is encoded once into a refcounted sse_ev and appended
 * to its log (the /events log, or a channel's); a stream is a cursor in
 * its log.  The log keeps its newest events, WEB_STREAM_MAX bytes of them
 * (the oldest of which may pass it), whatever its streams have read: a
 * stream behind the log's first event has missed the ones between.
 */
enum { SSE_OTHER, SSE_FAILURE, SSE_JOB };   /* classes of events */

struct sse_ev {
	unsigned   refs;
	uint8_t    cls;        /* SSE_*: which /events streams want it */
	uint64_t   before[3];  /* events of each class before it in its log */
	uint64_t   at;         /* bytes of events before it in its log */
	size_t     len;
	char       data[];     /* the whole event, "id: ..\nevent: ..\ndata: ..\n\n" */
};

struct sse_log {
	UT_hash_handle     hh;        /* a channel's, in web->chlogs */
	char              *chan;      /* NULL: the /events log */
	struct sse_ev    **ring;
	size_t             cap, head, n;
	uint64_t           first;     /* the seq of ring[head] */
	uint64_t           count[3];  /* events of each class so far */
	size_t             bytes;     /* of the events held */
	uint64_t           total;     /* of every event so far */
	unsigned           nstreams;
	struct wreq_list   waiting;   /* streams whose reader sleeps */
};

struct wreq {
	struct web             *web;
	struct MHD_Connection  *conn;
	struct wconn           *wc;
	const struct web_route *rt;         /* a --http-route path: its route */
	size_t                  counted;    /* of the body, in srv->in_total */
	bool                    over_input; /* the body would pass --max-input */
	char                   *method;
	char                   *url;
	struct buf              body;       /* the request body, up to --max-frame */
	bool                    too_big;
	bool                    suspended;  /* by us, not yet resumed */
	bool                    gone;       /* the client went while parked */
	bool                    ready;      /* status/resp hold the answer */
	enum wr_wait            wait;
	uint64_t                mark;       /* WAIT_DURABLE: the mark to reach */
	struct job             *job;        /* job_ref'd while set */
	bool                    route;      /* job is a route's: cancel it if we go */
	unsigned                status;
	struct buf              resp;
	const char             *ctype;
	json_t                 *headers;    /* extra response headers (routes) */
	/* streams */
	enum wr_stream          stream;
	struct buf              out;        /* unread stream bytes */
	bool                    eof;        /* end the stream once out is drained */
	bool                    abort;      /* end it at once, as an error */
	bool                    reader_waits; /* the reader suspended, out empty */
	uint64_t                missed;     /* events not delivered since the last */
	char                   *chan;       /* STREAM_SUB */
	int                     jobs;       /* STREAM_EVENTS: 0 none, 1 failures, 2 all */
	struct sse_log         *log;        /* SSE: its log, and its cursor there */
	uint64_t                cur;        /* the seq of its next event */
	uint64_t                ccnt[3];    /* events of each class before cur */
	struct sse_ev          *ev;         /* being sent (a reference) */
	size_t                  evoff;
	TAILQ_ENTRY(wreq)       wentry;     /* on log->waiting */
	ev_io                   watch;      /* parked: notices the client going */
	ev_timer                timer;      /* routes: --http-timeout */
	TAILQ_ENTRY(wreq)       entry;      /* web->parked, streams or rstreams */
	bool                    listed;
	struct web_ask         *ask;        /* WAIT_LOOKUP: its pending lookup */
};

struct web_route {
	char   *prefix;
	size_t  len;
	char   *type;
};

struct web_hist {
	UT_hash_handle hh;
	char          *type;
	uint64_t       buckets[12];
	uint64_t       count;
	double         sum;
};
#define WEB_HIST_BOUNDS { 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60 }
#define WEB_HIST_N 12
#define WEB_HIST_TYPES_MAX 1000

struct web {
	struct server     *srv;
	struct MHD_Daemon *d;
	int                port;
	ev_io              io;          /* MHD's epoll descriptor */
	ev_timer           tm;          /* MHD_get_timeout */
	ev_prepare         prep;        /* runs MHD after a resume */
	ev_timer           tick;        /* 1 s: stats events, stream pings */
	bool               kick;        /* a connection was resumed: MHD_run */
	bool               running;     /* inside MHD_run */
	struct wreq_list   parked;
	struct wreq_list   streams;     /* SSE: /sub and /events */
	struct wreq_list   rstreams;    /* streamed route answers */
	struct web_route  *routes;
	size_t             nroutes;
	double             route_timeout;
	double             idle;
	unsigned           nevents_streams;
	unsigned           nsub_streams;
	unsigned           nparked;     /* on parked */
	uint64_t           next_event;  /* SSE ids of /events */
	struct sse_log     evlog;       /* /events */
	struct sse_log    *chlogs;      /* channels with /sub streams, by name */
	double             last_ping;
	size_t             sse_delivered;  /* by the last chan_publish */
	struct web_hist   *hists;
	/* counters, in /stats and /metrics */
	uint64_t           requests, responses[6]; /* by class: 1xx..5xx */
	uint64_t           events_sent, events_missed;
	uint64_t           routed, route_timeouts;
	uint64_t           conns_refused;
	/* the guards before authentication (web.c, web_req.c) */
	struct wconn_list  unauthed;    /* oldest first */
	unsigned           nunauthed;
	size_t             input_bytes; /* request bodies held, in srv->in_total */
	bool               any_host;    /* --http-host '*' */
	char               hostname[256];
	uint64_t           refused_per_addr, unauth_dropped, header_timeouts;
	uint64_t           refused_host, refused_cross_site, input_refused;
	uint64_t           refused_plain;       /* --auth, plain HTTP, beyond loopback */
	uint64_t           refused_client_cert; /* --tls-ca: no certificate of its CAs */
	json_t            *failures;    /* the latest failed endings (web_ops.c) */
};

/* web.c: connections, and the bodies they hold */
void wconn_unlist(struct wconn *);
void wconn_list(struct wconn *);
void wconn_authed(struct wconn *);
bool body_count(struct wreq *, size_t total);
void body_release(struct wreq *);

/* web_req.c */
void completed_cb(void *cls, struct MHD_Connection *, void **con_cls,
    enum MHD_RequestTerminationCode);
enum MHD_Result access_cb(void *cls, struct MHD_Connection *, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls);
void web_reply(struct wreq *, unsigned status, const char *ctype,
    const char *body, size_t len);
void web_reply_json(struct wreq *, unsigned status, json_t *);   /* steals */
void web_error(struct wreq *, unsigned status, const char *code,
    const char *idjson, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void web_gate(struct wreq *);
void web_park(struct wreq *, enum wr_wait);
void web_ask_gone(struct wreq *);   /* web_rest.c: cluster lookups */
void web_refused(struct wreq *, struct broker *, enum broker_err,
    const char *idjson);   /* web_rest.c: a broker refusal answered */
void web_unpark(struct wreq *);
void web_wake(struct wreq *);
void web_stream_start(struct wreq *, enum wr_stream, const char *ctype);
void web_stream_append(struct wreq *, const char *, size_t);
void web_stream_wake(struct wreq *);
const char *web_arg(struct wreq *, const char *name);
bool web_args_known(struct wreq *, const char *const known[]);
char *web_idjson(const char *key);

/* web_rest.c */
bool rest_route(struct wreq *, const char *path);
void rest_job_finished(struct web *, struct job *);
/* web_ops.c */
bool ops_route(struct wreq *, const char *path);
bool sched_route(struct wreq *, const char *path);   /* web_sched.c */
void ops_job_finished(struct web *, struct job *);
void ops_free(struct web *);

/* web_sse.c */
bool sse_route(struct wreq *, const char *path);
void sse_init(struct web *);
void sse_event(struct web *, const char *name, json_t *data, bool job_event,
    bool failure);
void sse_tick(struct web *);
void sse_job_event(struct web *, const char *name, struct job *,
    const char *state, const char *worker, double runtime);
void sse_job_partial(struct web *, struct job *, const char *body, size_t len);
size_t sse_read(struct wreq *, char *out, size_t max);
void sse_wait(struct wreq *);
void sse_unwait(struct wreq *);
void sse_stream_gone(struct wreq *);
void sse_free(struct web *);
void sse_stats(struct web *, json_t *);

/* web_metrics.c */
void metrics_serve(struct wreq *);
void metrics_job_finished(struct web *, struct job *);
void metrics_free(struct web *);
json_t *web_stats(struct web *);

/* web_route.c */
bool web_base64_decode(const char *, size_t, struct buf *out);
const struct web_route *route_find(struct web *, const char *path);
void route_start(struct wreq *, const struct web_route *);
void route_job_partial(struct web *, struct job *, const char *, size_t);
void route_job_finished(struct web *, struct job *);
void route_job_requeued(struct web *, struct job *);

/* web_tls.c */
int web_tls_options(const struct options *, struct MHD_OptionItem *opts,
    unsigned *flags, char *err, size_t errlen);
void web_tls_free(void);
bool web_tls_on(void);
bool web_tls_peer_ok(struct MHD_Connection *);

/* web_dash.c */
void dash_serve(struct wreq *);

#endif /* JOBFS_WEB_INT_H */
