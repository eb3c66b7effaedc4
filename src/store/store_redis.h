/*
 * store_redis.h: cluster mode (--redis): the broker's queues, jobs and
 * results in Redis, shared by every daemon pointed at it.  See
 * store_redis.c and jobfs-redis(7).  Private to src/store/: what cluster
 * mode's files (store_redis.c, redis_*.c) share.
 */
#ifndef STORE_REDIS_H
#define STORE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "server.h"
#include "store/store.h"

/* redis_prio16: the queue member's first 16 characters for a priority:
 * lowercase hex of INT64_MAX - priority, so that higher priorities sort
 * first byte by byte. */
void redis_prio16(int64_t priority, char out[17]);

/* ------------------------------------------------ shared by its files */

#define BATCH_MAX      128          /* jobs per call */
#define BACKLOG_MAX    (64u << 20)  /* outbox bytes before submissions are refused */
#define SEND_WINDOW    1024         /* jobs of sent calls not yet answered, at most
                                       (the heartbeat waits behind them) */
#define CONNECT_TIMEOUT 2.0
/* The error of a job that Redis lost with the cluster's data. */
#define LOST_REASON    "Redis lost this job: the cluster's data was flushed, " \
	"or Redis restarted without it"

enum rkind { RK_SUBMIT, RK_COMPLETE, RK_PARTIAL, RK_REQUEUE, RK_END, RK_FORGET,
	RK_WORKER, RK_PIN, RK_SUBMIT_LIFE, RK_FAIL, RK_KICK, RK_CONFIG, RK_NKINDS };
/* RK_SUBMIT_LIFE: a submission with lifecycle options (jobfs_submit_life);
 * RK_FAIL, RK_KICK, RK_CONFIG: redis_life.c */
#define RK_IS_SUBMIT(k) ((k) == RK_SUBMIT || (k) == RK_SUBMIT_LIFE)

struct arg {
	const char *p;
	size_t      len;
	bool        own;
};

/* An outbox entry: one function call, its arguments after P and N. */
struct rcmd {
	TAILQ_ENTRY(rcmd) entry;
	struct rstore *r;
	uint64_t     seq;
	enum rkind   kind;
	struct arg  *args;
	size_t       nargs, cap;
	struct job **jobs;          /* one per group (NULL: none), referenced */
	size_t       njobs;
	size_t       bytes;
	bool         sent;
	bool         resent;        /* sent again after a reconnect */
	bool         replied;       /* answered, its verdicts done; held for WAIT */
};
TAILQ_HEAD(rcmd_list, rcmd);

/* What this daemon knows of a type: held while Redis lists it, and its
 * one dispatch call in flight. */
struct rtype {
	UT_hash_handle hh;
	char          *name;
	bool           held;        /* this store holds a reference on the jtype */
	bool           inflight, again, wanted;
	bool           wk_dirty;    /* its worker lines are to be written */
	bool           counted;     /* workers of it were counted in Redis */
	bool           listed;      /* in the answer types_reply reads */
	uint64_t       heard;       /* types_asked when its last t+ or t- came */
	struct rtype  *next_wanted;
};

/* A finish event that came before the submission's answer. */
struct stash {
	UT_hash_handle hh;
	enum job_state state;
	char          *result;
	size_t         len;
	char           key[];
};

struct rstore {
	struct server     *srv;
	struct broker     *b;
	struct redis_url   url;
	char               prefix[128];
	int                lease_ms;
	redisAsyncContext *cmd, *sub;
	bool               cmd_ok, sub_ok;     /* connected (hello answered / subscribed) */
	bool               up;                 /* both: submissions taken */
	bool               closing;
	uint64_t           n;                  /* this daemon's number; 0: none yet */
	char               nstr[24];
	struct rcmd_list   outbox;
	uint64_t           next_seq;
	size_t             outbox_bytes;
	size_t             jobs_out;           /* jobs of sent outbox calls not yet answered */
	size_t             jobs_out_max;       /* its most (stats: redis_in_flight_max) */
	size_t             resync_out_max;     /* most resync lookups in flight at once */
	struct rtype      *types;
	struct rtype      *wanted;
	ev_prepare         flush;
	ev_timer           retry, connect_to, hello, reap, reask, workers;
	double             backoff;
	double             down_since, up_since, hello_ok;
	bool               hello_out;
	char               reason[600];
	struct stash      *stash;
	uint64_t           errors_logged;
	double             error_logged_at;
	unsigned           chan_holds;
	char               epoch[40];          /* P:epoch as last seen; "": none yet */
	bool               lost;               /* the data was lost: resync ends what is gone */
	size_t             lost_left;          /* that resync's lookups not yet answered */
	size_t             lost_ended;         /* jobs it ended */
	char             **resync_keys;        /* resync: the jobs to look at, in turn */
	size_t             resync_n, resync_next;
	size_t             resync_out;         /* its lookups in flight (at most a window) */
	bool               resync_lost;        /* it is the resync after the data was lost */
	uint64_t           types_asked;        /* SMEMBERS P:types sent so far */
	struct rsentinel  *sentinel;           /* redis_sentinel.c; NULL: not used yet */
	int                wait_replicas;      /* --redis-wait-replicas; 0: off */
	ev_timer           due;                /* the next delayed job's time (redis_life.c) */
	bool               due_out;            /* a jobfs_due call is in flight */
};

extern const char *const kind_fn[RK_NKINDS];   /* the functions' names */

/* redis_sched.c: schedules (repeating jobs) */
void rs_sched_changed(void *ctx, const struct schedule *, int what);
void rs_sched_claim(void *ctx, const char *type, const char *name, int64_t due,
    int64_t ttl_ms, void (*cb)(void *, bool), void *cbctx);
void rs_sched_reload(struct rstore *);

/* store_redis.c: the outbox, the backend's intents, dispatch, channels */
void arg_i64(struct rcmd *c, int64_t v);
void arg_str(struct rcmd *c, const char *s);
void arg_u64(struct rcmd *c, uint64_t v);
size_t fcall_argv(const struct rstore *r, const struct rcmd *c,
    const char ***argv, size_t **lens);
void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents);
void rcmd_free(struct rstore *r, struct rcmd *c);
void reask_cb(struct ev_loop *loop, ev_timer *w, int revents);
bool reask_type(void *ctx, struct jtype *jt);
void requeue_key(struct rstore *r, const char *key, const char *att);
struct rcmd *rs_batch(struct rstore *r, enum rkind k, struct job *j);
void rs_complete(void *ctx, struct job *j, enum job_state why);
void rs_end(void *ctx, struct job *j, enum job_state why, bool if_queued);
void rs_forget(void *ctx, struct job *j);
void rs_partial(void *ctx, struct job *j, const char *body, size_t len);
void rs_pin(void *ctx, struct jtype *t, bool on);
int rs_publish(void *ctx, const char *chan, const char *text, size_t len);
void rs_requeue(void *ctx, struct job *j, bool lost);
void rs_send(struct rstore *r, struct rcmd *c);
void rs_send_more(struct rstore *r);
void rs_submit(void *ctx, struct job *j);
void rs_want(void *ctx, struct jtype *jt);
struct rtype *rtype_get(struct rstore *r, const char *name);

/* redis_codec.c: small bits of replies, lookups and resync */
int pct_decode(const char *p, size_t len, char *out, size_t outlen);
int url_password(const char **p, const char *end, struct redis_url *o, char *err,
    size_t errlen);
void resync(struct rstore *r);
void resync_drop(struct rstore *r);
bool resync_one(struct rstore *r, struct job *j, bool lost);
int64_t rnum(const redisReply *x);
void rs_log_error(struct rstore *r, const char *what, const char *msg);
void rs_lookup(void *ctx, const char *key,
    void (*cb)(void *, struct job *, int), void *cbctx);
double rs_now(struct rstore *r);
void rs_unavailable(struct rstore *r, const char *why);
const char *rstr(const redisReply *x, size_t *len);
void strip_daemon(char *wk);

/* redis_events.c: verdicts and events */
enum job_state state_of(const char *s);
void sub_msg(redisAsyncContext *ac, void *reply, void *priv);
bool transient(const char *err);
void type_listed(struct rstore *r, const char *name, bool listed);
void verdicts(struct rstore *r, struct rcmd *c, redisReply *x);

/* redis_query.c: queries and worker lines */
void on_job_moved(void *ctx, struct job *j, struct worker *w);
void rs_query(void *ctx, const char *what, const char *arg,
    void (*cb)(void *, const char *, size_t, int), void *cbctx);
void wk_dirty(struct rstore *r, struct jtype *jt);
bool wk_mark(void *ctx, struct jtype *jt);
void workers_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* redis_conn.c: connecting and lifetime */
void ask_types(struct rstore *r);
void rs_connect(struct rstore *r);
void rs_teardown(struct rstore *r, const char *why);

/* redis_life.c: the lifecycle across daemons (retries, delays, the dead
 * set, kick, type settings) */
void rs_fail(void *ctx, struct job *j, const char *err);
void rs_kick(void *ctx, const char *key, const char *type);
void rs_config(void *ctx, struct jtype *t);
void life_submit_args(struct rcmd *c, struct job *j);
void life_verdict(struct rstore *r, struct rcmd *c, size_t i, redisReply *v);
bool life_broadcast(struct rstore *r, const char *p, size_t len);
void life_connected(struct rstore *r);
void life_start(struct rstore *r);
void life_stop(struct rstore *r);

/* redis_sentinel.c: Sentinel (redis-sentinel://) and --redis-wait-replicas */
int sentinel_url_parse(const char *url, struct redis_url *o, char *err, size_t errlen);
void sentinel_close(struct rstore *r);
void sentinel_connect(struct rstore *r);
void sentinel_down(struct rstore *r);
void sentinel_role(struct rstore *r);
void wait_answered(struct rstore *r, struct rcmd *c);

#endif
