/*
 * web.h — the web face (issue 10): HTTP on libmicrohttpd, driven by the
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
#ifndef WEB_H
#define WEB_H

#include <microhttpd.h>

#include "jobfs.h"

/* glibc's sys/queue.h lacks it. */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                      \
	for ((var) = TAILQ_FIRST((head));                               \
	    (var) && ((tvar) = TAILQ_NEXT((var), field), 1);            \
	    (var) = (tvar))
#endif

/* Bytes one SSE stream may have unread before it misses events. */
#define WEB_STREAM_MAX (256u * 1024)
/* Seconds between keep-alive comments on idle streams (at most). */
#define WEB_PING_MAX 15.0
/* Bytes of a request's head (request line and headers): MHD answers 431 past it. */
#define WEB_HEADER_MAX (32u * 1024)

/* bhead: a buffer's live bytes, "" when it never held any. */
static inline const char *bhead(const struct buf *b) { return b->data != NULL ? buf_head(b) : ""; }

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
	ev_io                   watch;      /* parked: notices the client going */
	ev_timer                timer;      /* routes: --http-timeout */
	TAILQ_ENTRY(wreq)       entry;      /* web->parked or web->streams */
	bool                    listed;
	struct web_ask         *ask;        /* WAIT_LOOKUP: its pending lookup */
};
TAILQ_HEAD(wreq_list, wreq);

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
	struct wreq_list   streams;
	struct web_route  *routes;
	size_t             nroutes;
	double             route_timeout;
	double             idle;
	unsigned           nevents_streams;
	unsigned           nsub_streams;
	unsigned           nparked;     /* on parked */
	uint64_t           next_event;  /* SSE ids of /events */
	double             last_ping;
	size_t             sse_delivered;  /* by the last chan_publish */
	struct web_hist   *hists;
	/* counters, in /stats and /metrics */
	uint64_t           requests, responses[6]; /* by class: 1xx..5xx */
	uint64_t           events_sent, events_missed;
	uint64_t           routed, route_timeouts;
	uint64_t           conns_refused;
	/* the guards before authentication (web.c) */
	struct wconn_list  unauthed;    /* oldest first */
	unsigned           nunauthed;
	size_t             input_bytes; /* request bodies held, in srv->in_total */
	bool               any_host;    /* --http-host '*' */
	char               hostname[256];
	uint64_t           refused_per_addr, unauth_dropped, header_timeouts;
	uint64_t           refused_host, refused_cross_site, input_refused;
	uint64_t           refused_plain;       /* --auth, plain HTTP, beyond loopback */
	uint64_t           refused_client_cert; /* --tls-ca: no certificate of its CAs */
};

/* web.c */
void web_reply(struct wreq *, unsigned status, const char *ctype,
    const char *body, size_t len);
void web_reply_json(struct wreq *, unsigned status, json_t *);   /* steals */
void web_error(struct wreq *, unsigned status, const char *code,
    const char *idjson, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void web_gate(struct wreq *);
void web_park(struct wreq *, enum wr_wait);
void web_ask_gone(struct wreq *);   /* web_rest.c: cluster lookups */
void web_unpark(struct wreq *);
void web_wake(struct wreq *);
void web_stream_start(struct wreq *, enum wr_stream, const char *ctype);
void web_stream_append(struct wreq *, const char *, size_t);
const char *web_arg(struct wreq *, const char *name);
bool web_args_known(struct wreq *, const char *const known[]);
char *web_idjson(const char *key);

/* web_rest.c */
bool rest_route(struct wreq *, const char *path);
void rest_job_finished(struct web *, struct job *);

/* web_sse.c */
bool sse_route(struct wreq *, const char *path);
void sse_init(struct web *);
void sse_event(struct web *, const char *name, json_t *data, bool job_event,
    bool failure);
void sse_tick(struct web *);

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

/* web_tls.c */
int web_tls_options(const struct options *, struct MHD_OptionItem *opts,
    unsigned *flags, char *err, size_t errlen);
void web_tls_free(void);
bool web_tls_on(void);
bool web_tls_peer_ok(struct MHD_Connection *);

/* web_dash.c */
void dash_serve(struct wreq *);

#endif /* WEB_H */
