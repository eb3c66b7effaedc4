/*
 * tcp.h — the TCP face: connections on the master and worker ports,
 * the protocol (proto*.c) and TLS (tls.c).
 */
#ifndef JOBFS_TCP_H
#define JOBFS_TCP_H

#include <sys/uio.h>

#include "core/broker.h"
#include "server.h"

/* The TCP face, as main.c lists it (listen.c). */
extern const struct module tcp_module;

/* ------------------------------------------------------------------- tls.c */

struct tls_server;
struct tls_conn;

int     tls_server_init(struct server *, char *err, size_t errlen);
void    tls_reload(struct server *);
void    tls_server_free(struct server *);
int     tls_conn_new(struct conn *);  /* c->tp = &transport_tls, if TLS is on */
void    tls_refuse(int fd, const char *code);

/*
 * A connection's transport: how its bytes cross the socket.  conn*.c
 * read and write only through c->tp: transport_plain (conn.c) is read(2)
 * and writev(2); transport_tls (tls.c) is OpenSSL on the same socket.
 */
struct transport {
	const char *name;
	/* read: bytes read; 0: the peer closed; -1 with errno (EAGAIN: not now) */
	ssize_t (*read)(struct conn *, void *, size_t);
	/* writev: bytes written, or -1 with errno (EAGAIN: not now) */
	ssize_t (*writev)(struct conn *, const struct iovec *, int);
	/* pending: bytes wait above the socket (decrypted): read again now */
	bool    (*pending)(const struct conn *);
	/* write_blocked: a write waits for the peer's bytes, not for room:
	 * watching for writability would spin */
	bool    (*write_blocked)(const struct conn *);
	/* read_wants_write: a read waits for room to write (a handshake
	 * reply): the write watcher must retry the read */
	bool    (*read_wants_write)(const struct conn *);
	/* close: at conn_close, before the socket is closed */
	void    (*close)(struct conn *);
};
extern const struct transport transport_plain, transport_tls;

/* ------------------------------------------------------ conn.c, conn_out.c */

enum conn_role   { ROLE_MASTER = 1, ROLE_WORKER = 2 };
enum dialect     { DIALECT_UNSET, DIALECT_SEED, DIALECT_ACTION };

#define CONN_CLOSE_AFTER_WRITE 0x01  /* dropped: flush the error frame, then close */
#define CONN_DEAD              0x02  /* closed; freed before the loop sleeps */
#define CONN_BACKLOG           0x04  /* output over OUT_SOFT_LIMIT, not yet
                                        drained below half of it */
#define CONN_PENDING_WRITE     0x08  /* on srv->pending_writes */
#define CONN_RELEASED          0x10  /* its jobs, slots and subscriptions given back */
#define CONN_HELD              0x20  /* on srv->held */

/*
 * An acknowledgement held for the store: output from byte `at` of the
 * connection's stream on waits until broker_durable() reaches `mark`.
 */
struct out_hold {
	uint64_t at;
	uint64_t mark;
};

/*
 * A submission whose acknowledgement waits for the store: the ack's plain
 * bytes [plain, plain + len) of the stream of c->out (len 0 in the seed
 * dialect, which acknowledges nothing), the mark it waits for, and the
 * job (a job_ref).  If the store fails first, the ack becomes a refusal
 * and the job is withdrawn (conn_fail_held).
 */
struct held_submit {
	uint64_t    plain;
	uint64_t    mark;
	uint32_t    len;
	struct job *job;
};

/*
 * A blob queued in a connection's output: its bytes go out just before
 * plain byte plain_at of the stream of c->out (counted from the first byte
 * ever appended), by writev(2) from the blob itself.
 */
struct out_ref {
	uint64_t     plain_at;
	struct blob *blob;
};

struct conn {
	struct server   *srv;
	int              fd;
	unsigned         flags;
	enum conn_role   role;
	enum dialect     dialect;
	uint64_t         serial;
	char             peer[64];
	ev_io            rio, wio;
	struct buf       in, out;
	size_t           in_counted;   /* of in.cap, counted in srv->in_total */
	size_t           in_frame_end; /* offset in in.data past the frame being
	                                  handled */
	bool             in_adopted;   /* that frame's buffer went to a blob */
	uint32_t         out_head_left; /* unwritten bytes of the frame at the
	                                   head of out (0: head is a boundary) */
	double           frame_started; /* when the unfinished frame in `in`
	                                   began; 0: none */
	ev_timer         timer;        /* --frame-timeout, then the drop linger */
	const char      *close_why;    /* for the log, once the drop is flushed */
	TAILQ_ENTRY(conn) all_entry;
	TAILQ_ENTRY(conn) write_entry;
	TAILQ_ENTRY(conn) dead_entry;
	TAILQ_ENTRY(conn) held_entry;  /* on srv->held */
	uint64_t         out_written;  /* bytes of out written so far */
	struct out_hold *holds;        /* acknowledgements not yet durable,
	                                  oldest at hold_head */
	size_t           hold_head, hold_len, hold_cap;
	struct held_submit *hsubs;     /* submissions not yet durable, oldest
	                                  at hsub_head */
	size_t           hsub_head, hsub_len, hsub_cap;

	/* the core's handle on this peer, by role */
	struct master   *master;
	struct worker   *worker;

	/* master side */
	struct deferred {
		struct job  *job;      /* a job_ref */
		struct blob *result;   /* a reference to its result, or NULL:
		                          it outlives the job's (--keep-bytes) */
	}               *deferred;     /* endings held while backlogged, oldest
	                                  at def_head */
	size_t           def_head, def_len, def_cap;

	/* worker side (its slots are in c->worker) */
	ev_timer         heartbeat;
	double           hb_interval;  /* seconds, 0: no heartbeat */
	double           last_heard;   /* when the last whole frame arrived */
	double           last_ping;

	/* channels */
	struct chan_peer chp;          /* its subscriptions (chan.c) */
	uint64_t         missed;       /* messages dropped: output backlog */

	/* who it is (--auth, limits, TLS) */
	char             addr[48];     /* peer address without port */
	bool             authed;       /* --auth: a token (or certificate) was accepted */
	unsigned         auth_roles;   /* AUTH_* of its token */
	char             auth_name[AUTH_NAME_MAX + 1];
	unsigned         auth_failures;
	unsigned         frames_unauthed; /* frames before auth (--max-unauth-frames) */
	ev_timer         auth_timer;   /* --auth-timeout */
	const struct transport *tp;    /* plain or TLS */
	struct tls_conn *tls;          /* transport_tls's state; NULL: plain */
	TAILQ_ENTRY(conn) unauth_entry; /* on srv->unauthed, oldest first */
	bool             unauth_listed;

	/* output: blobs queued between the plain bytes of out (conn_out_blob).
	 * out_written, holds and the limits count their bytes too. */
	struct out_ref  *refs;         /* oldest at ref_head */
	size_t           ref_head, ref_len, ref_cap;
	uint32_t         ref_done;     /* bytes of the head ref's blob written */
	uint64_t         out_plain_done; /* plain bytes of out written so far */
	uint64_t         out_blob_bytes; /* unwritten bytes of queued blobs */
	size_t           frame_plain;  /* where in out the open frame's header is */
};

/* conn_out_used: bytes of output not yet written, blobs included. */
static inline size_t
conn_out_used(const struct conn *c)
{
	return buf_used(&c->out) + (size_t)c->out_blob_bytes;
}

struct conn *conn_new(struct server *, int fd, enum conn_role);
void conn_close(struct conn *, const char *why);
void conn_send_raw(struct conn *, const char *, size_t);
void conn_send_json(struct conn *, json_t *);   /* steals the reference */
void conn_send_error(struct conn *, const char *code, const char *idjson,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void conn_send_missing(struct conn *, const char *field, const char *idjson);
size_t conn_frame_begin(struct conn *);
void conn_out_blob(struct conn *, struct blob *);
struct blob *conn_in_adopt(struct conn *, const char *span, size_t len);
void conn_out_take(struct conn *, struct buf *dst);
void conn_frame_end(struct conn *, size_t start);
void conn_frame_end_ack(struct conn *, size_t start);
void conn_release_held(struct server *, uint64_t durable);
void conn_hold_submit(struct conn *, struct job *, size_t plain_start);
void conn_fail_held(struct server *);
bool conn_backlogged(const struct conn *);
bool conn_defer_ending(struct conn *, struct job *);
void conn_drop(struct conn *, bool discard, const char *why, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void conn_refuse(struct server *, int fd, const char *code, const char *reason);
void conn_flush_pending(struct server *);
void conn_reap(struct server *);
/* between conn.c and conn_out.c */
void conn_hold(struct conn *, size_t start);
size_t conn_writable(struct conn *);
void conn_mark_pending(struct conn *);
void conn_write_cb(struct ev_loop *, ev_io *, int);

/* ----------------------------------------------------------------- proto.c */

/*
 * The protocol is in four files: proto.c (the message table, its generic
 * checks, channels, the frames sent as the broker's events come),
 * proto_master.c, proto_worker.c and proto_auth.c (their messages).
 */

/* Field types, as a mask. */
#define F_STRING 0x01
#define F_INT    0x02
#define F_BOOL   0x04
#define F_ANY    0x08
#define F_ARRAY  0x10
#define F_ID     (F_STRING | F_INT)

#define MAX_FIELDS 16

struct field {
	enum msg_key key;
	unsigned     types;
	bool         required;
};

/* What a handler gets besides the connection. */
struct msg_ctx {
	const struct msg *m;
	enum dialect dialect;   /* of this message */
	const char  *idjson;    /* its usable id as JSON text, or NULL */
	const char  *key;       /* that id as a job key, or NULL */
};

typedef void msg_handler(struct conn *, const struct msg_ctx *);

struct msg_def {
	const char   *name;
	unsigned      roles;
	enum dialect  dialect;  /* DIALECT_UNSET: valid in both */
	msg_handler  *handle;
	struct field  fields[MAX_FIELDS];
};
#define END { MK_COUNT, 0, false }   /* after a msg_def's last field */

/* a message's fields, and the checks every handler makes (proto.c) */
const struct mfield *field(const struct msg_ctx *, enum msg_key);
int64_t field_int(const struct msg_ctx *, enum msg_key);
bool field_true(const struct msg_ctx *, enum msg_key);
bool field_name(const struct msg_ctx *, enum msg_key, char *out, size_t *len);
const char *field_json(const struct msg_ctx *, enum msg_key, size_t *len);
bool msg_check_fields(struct conn *, const struct msg_def *, const struct msg_ctx *);
void send_ok(struct conn *, const char *idjson);
bool id_check(struct conn *, const struct msg_ctx *);
bool type_check(struct conn *, const struct msg_ctx *, enum msg_key, char *out);
void proto_send_ping(struct conn *);

/* proto_master.c */
msg_handler h_submit, h_ping, h_status, h_stats, h_cancel, h_wait;
/* the job lifecycle */
msg_handler h_kick, h_pause, h_resume, h_configure;
msg_handler h_list;
/* proto_sched.c: repeating jobs */
msg_handler h_schedule, h_unschedule, h_schedules;
const char *berr_frame(enum broker_err);

/* A job's waits (proto_master.c): the serial numbers of the connections
 * waiting for it, by job key, on srv->waits. */
struct waiting {
	UT_hash_handle hh;
	uint64_t      *serials;
	size_t         n, cap;
	char           key[];
};

void waiting_free(struct server *, struct waiting *);
void wake_waiters(struct server *, struct job *);

/* proto_worker.c */
msg_handler h_join, h_response, h_partial, h_pong;
msg_handler h_fail;   /* the job lifecycle */

/* proto_auth.c */
bool auth_gate(struct conn *, const struct msg_ctx *, const char *name);
void unauth_unlist(struct conn *);

void proto_init(struct server *);   /* registers the TCP face's listener */
void proto_handle(struct conn *, const char *payload, size_t len);
void proto_send_ending(struct conn *master, struct job *, struct blob *result);
void proto_worker_gone(struct conn *);
/* a connection's authentication */
void proto_conn_new(struct conn *);
void proto_conn_closed(struct conn *);
void proto_unauth_shed(struct server *);
void proto_auth_as(struct conn *, const char *name, unsigned roles);


#endif /* JOBFS_TCP_H */
