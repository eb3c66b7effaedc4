/*
 * broker.h — the core's public header: what faces (TCP, tree, web) and
 * stores (journal, Redis) may call, and the listener and backend tables
 * through which the broker tells them of a job's life without naming any.
 * It includes job.h (the data model) and chan.h (channels).
 */
#ifndef JOBFS_BROKER_H
#define JOBFS_BROKER_H

#include "core/job.h"
#include "core/chan.h"

/* What a submitter asks for; broker_submit() copies what it keeps. */
struct submit_req {
	const char   *type;
	const char   *key;            /* NULL: the broker assigns an id */
	const char   *idjson;
	const char   *body;
	size_t        body_len;
	struct blob  *body_blob;      /* holds body (the broker takes a
	                                 reference), or NULL: body is copied */
	int64_t       priority;
	int64_t       timeout_ms;     /* 0: none */
	const char   *target;
	bool          detach, stream, notify;
	struct master *master;        /* NULL: none (the tree) */
	const char   *owner;          /* --auth: the submitter's name; NULL: none */
	/* the job lifecycle: all opt-in */
	bool          retries_set;    /* false: the type's default retries */
	int64_t       retries;
	int64_t       backoff_ms;     /* 0: the type's, else LIFE_BACKOFF_MS */
	int64_t       delay_ms;       /* 0: none */
	int64_t       at_ms;          /* epoch milliseconds; 0: none */
	const char  **after;          /* keys of jobs it waits for */
	size_t        nafter;
};

/*
 * Errors that broker calls return.  The broker owns the reason
 * (broker_err_reason); each face maps the code to its own error (frame
 * error, HTTP status, errno) in one switch without a default, so that
 * -Wswitch finds a face that misses a code.
 */
enum broker_err {
	BERR_OK = 0,
	BERR_ID_EXISTS,
	BERR_UNKNOWN_ID,   /* "after" names no job */
	BERR_FULL_JOBS,    /* unfinished jobs are at --max-jobs */
	BERR_FULL_MEMORY,  /* their bodies would pass --max-memory */
	BERR_UNAVAILABLE,  /* the store cannot take writes (broker_store_error) */
	BERR_SELF,         /* "after" names the job itself */
	BERR_INVALID,      /* a value out of its range: broker->err_detail says */
	BERR_STATE,        /* the job is not in a state that allows it */
	BERR_PENDING,      /* cluster mode: the backend answers later (job_accepted) */
};

/* What a worker's response or partial is about (broker_worker_answer). */
enum worker_answer {
	ANSWER_JOB,        /* a job it runs: *out */
	ANSWER_LATE,       /* a job that ended meanwhile: dropped quietly */
	ANSWER_UNKNOWN_ID, /* its id names nothing this worker holds */
	ANSWER_NEED_ID,    /* no id, and the worker holds more than one job */
	ANSWER_NONE,       /* no id, and the worker holds no job */
};

struct broker_stats {
	uint64_t submitted, done, failed, cancelled, timeout, requeued;
	uint64_t queued, running;
	uint64_t partials;
	uint64_t body_bytes;          /* of unfinished jobs' bodies */
	uint64_t retained_bytes;      /* held by finished jobs (--keep-bytes) */
	uint64_t dropped;             /* finished jobs whose body and result
	                                 went for --keep-bytes */
	uint64_t refused_full;        /* submissions refused: BERR_FULL_* */
	/* the job lifecycle */
	uint64_t retried, dead, delayed, waiting, kicked, fails;
};

/*
 * Listeners: whatever must react to a job's life (the TCP face, the tree,
 * a store such as the journal) registers a table of callbacks; the broker
 * calls each registered table, in order, and names no face.  Any callback
 * may be NULL.  A store registers with broker_store_listen, which puts it
 * before every face, so that by the time a face sees an event the store
 * has appended its record and broker_mark() covers it.
 *
 *   job_submitted   it is in the table, queued or about to be dispatched
 *   job_dispatched  it now runs on worker
 *   job_requeued    back in its queue after its worker was lost (it may be
 *                   dispatched again at once: job_dispatched follows)
 *   job_partial     a partial result, kept in the job (within its limit)
 *   job_finished    it ended: j->state says how; ran_on is the worker that
 *                   ran it and still holds it, or NULL; j->master is still
 *                   set (the broker lets go of it after)
 *   job_forgotten   it leaves the table (retention, rmdir, an id reused)
 *   job_dropped     a finished job's body, result and partials went, its
 *                   record stays (retention by bytes, --keep-bytes)
 *   type_added / type_removed, worker_joined / worker_left
 *   durable         the store made everything up to mark durable
 *
 * Events are emitted while a job is restored too (broker_restore): a store
 * tells them apart with broker_restoring() and skips them.  Nothing is
 * emitted at broker_shutdown.
 */
struct schedule;   /* a repeating job (schedule.c) */
struct broker_listener {
	void *ctx;
	void (*job_submitted)(void *ctx, struct job *);
	void (*job_dispatched)(void *ctx, struct job *, struct worker *);
	void (*job_requeued)(void *ctx, struct job *);
	void (*job_partial)(void *ctx, struct job *, const char *body, size_t len);
	void (*job_finished)(void *ctx, struct job *, struct worker *ran_on);
	void (*job_forgotten)(void *ctx, struct job *);
	void (*job_dropped)(void *ctx, struct job *, size_t body_len,
	    size_t result_len, size_t partials_len);  /* its body, result and
	                                   partials went (--keep-bytes); the
	                                   lengths they had */
	void (*type_added)(void *ctx, struct jtype *);
	void (*type_removed)(void *ctx, struct jtype *);
	void (*worker_joined)(void *ctx, struct worker *, struct jtype *);
	void (*worker_left)(void *ctx, struct worker *, struct jtype *);
	void (*durable)(void *ctx, uint64_t mark);
	/* the job lifecycle */
	void (*job_changed)(void *ctx, struct job *);   /* its life changed:
	                                   delayed, retried, waiting, due, kicked */
	void (*type_changed)(void *ctx, struct jtype *); /* paused, limit, defaults */
	void (*job_abandoned)(void *ctx, struct job *, struct worker *);  /* its
	                                   attempt on that worker timed out and is
	                                   retried elsewhere: a cancel, if it takes them */
	/* cluster mode */
	void (*job_accepted)(void *ctx, struct job *, int berr);  /* the backend's
	                                   answer to a BERR_PENDING submission: 0, or
	                                   BERR_ID_EXISTS / BERR_UNAVAILABLE (then the
	                                   job is forgotten right after) */
	void (*store_failed)(void *ctx);   /* broker_store_failed: answer what
	                                   waits for the store (see there) */
	/* repeating jobs */
	void (*schedule_changed)(void *ctx, const struct schedule *, int what);
	                                   /* SCHED_SET (added, replaced),
	                                   SCHED_FIRED (its last due time
	                                   moved), SCHED_REMOVED */
};
#define BROKER_LISTENERS_MAX 8

/*
 * What broker_restore puts back: a job as a store recorded it.  state is
 * JOB_QUEUED (a job that was running is queued again: the store counts the
 * loss in losses) or a finished state, with its result (JOB_DONE) and
 * finish time.  Strings are copied.
 */
struct restore_req {
	const char   *type;
	const char   *key;            /* canonical id */
	const char   *idjson;         /* as the master sent it; NULL: "key" */
	const char   *body;
	size_t        body_len;
	int64_t       priority;
	uint32_t      seq;            /* submission order */
	double        submitted;      /* wall clock */
	int64_t       timeout_ms;     /* 0: none; counted from now */
	const char   *target;
	bool          detach, stream, notify;
	enum job_state state;
	unsigned      losses;
	double        started, finished;  /* wall clock; 0: not */
	const char   *worker_name;    /* last worker that ran it, or NULL */
	const char   *result;         /* JOB_DONE: its JSON text */
	size_t        result_len;
	const char   *partials;       /* one JSON text per line, or NULL */
	size_t        partials_len;
	const char   *owner;          /* the token name that submitted it, or NULL */
	const char   *life;           /* job_life_json's text, or NULL */
	const char   *log;            /* its log (job_log), or NULL */
	size_t        log_len;
	bool          dropped;        /* finished, its body and result no
	                                 longer kept (body and result empty) */
};

/*
 * Stats: the broker's counters and those of every part that registers a
 * hook (stats.c), as one JSON object; each hook adds its own keys.
 * Per-type counters: of the one type named, or of at most max_types.
 */
typedef void broker_stats_hook(void *ctx, json_t *o);
#define BROKER_STATS_HOOKS_MAX 8
#define STATS_TYPES_MAX 100   /* types in a "stats" reply without a type */

/* What a backend store implements (backend.h says what each does). */
struct broker_backend {
	void *ctx;
	void (*submit)(void *, struct job *);
	void (*want)(void *, struct jtype *);
	void (*complete)(void *, struct job *, enum job_state);
	void (*partial)(void *, struct job *, const char *, size_t);
	void (*requeue)(void *, struct job *, bool lost);
	void (*end)(void *, struct job *, enum job_state why, bool if_queued);
	void (*forget)(void *, struct job *);
	void (*lookup)(void *, const char *key,
	    void (*cb)(void *, struct job *, int berr), void *cbctx);
	void (*query)(void *, const char *what, const char *arg,
	    void (*cb)(void *, const char *text, size_t len, int berr),
	    void *cbctx);
	void (*pin)(void *, struct jtype *, bool on);  /* mkdir/rmdir types/T */
	/* repeating jobs: claim the due time of schedule (type, name) for
	 * this daemon, for at least ttl_ms; cb(cbctx, true) once if it is
	 * this daemon's to fire, false if another's (or the backend cannot
	 * say).  NULL: every due time is this daemon's. */
	void (*sched_claim)(void *, const char *type, const char *name, int64_t due,
	    int64_t ttl_ms, void (*cb)(void *cbctx, bool won), void *cbctx);
	/* the lifecycle across daemons: a local worker's failed attempt
	 * (retried after its backoff or dead: the backend decides), a dead
	 * job (key) or a type's dead jobs (type) queued again, a type's
	 * settings (pause, limit, default retries) for every daemon */
	void (*fail)(void *, struct job *, const char *err);
	void (*kick)(void *, const char *key, const char *type);
	void (*config)(void *, struct jtype *);
};

struct broker;     /* private to the core (core.h) */

/* What the broker keeps and takes, as the daemon's options say. */
struct broker_limits {
	double   keep;           /* seconds finished jobs are kept (--keep) */
	size_t   keep_max;       /* finished jobs kept at most (--keep-max) */
	uint64_t keep_bytes;     /* their bytes (--keep-bytes) */
	uint64_t max_jobs;       /* unfinished jobs (--max-jobs) */
	uint64_t max_memory;     /* their bodies' bytes (--max-memory) */
};
void  broker_init(struct broker *, struct ev_loop *, const struct broker_limits *);
struct broker *broker_new(struct ev_loop *, const struct broker_limits *);
void  broker_free(struct broker *);     /* after broker_shutdown, chan_shutdown */
/* Why the last BERR_* of a call (a reason the broker or a backend wrote). */
const char *broker_err_detail(const struct broker *);
void  broker_set_err_detail(struct broker *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void  broker_set_id_suffix(struct broker *, const char *);  /* ".N" on assigned ids */
uint64_t broker_next_seq(const struct broker *);
void  broker_stats_listen(struct broker *, broker_stats_hook *, void *ctx);
json_t *broker_stats(struct broker *, const char *type, size_t max_types);
void  broker_listen(struct broker *, const struct broker_listener *);
void  broker_store_listen(struct broker *, const struct broker_listener *);
bool  broker_restoring(const struct broker *);
int   broker_restore(struct broker *, const struct restore_req *);

/*
 * The durability gate.  broker_mark: the position of the last record the
 * store appended; broker_durable: the last it made durable (both 0 without
 * a store, and then nothing is ever held).  A face holds an
 * acknowledgement made while broker_mark() > broker_durable() until the
 * durable event covers the mark it noted.  The store reports with
 * broker_store_mark (after each append) and broker_store_durable (which
 * emits durable to every listener); broker_store_set_error(b, errno,
 * reason) says it cannot take writes (0: it can again), and while it
 * cannot, submissions are refused with BERR_UNAVAILABLE.
 *
 * broker_store_failed (after broker_store_set_error): the store cannot say
 * when what it holds becomes durable (a full disk, a deleted directory).
 * Faces answer at once what they held for it: an acknowledgement of a
 * submission not yet durable becomes an "unavailable" refusal and its job
 * is withdrawn (broker_withdraw), everything else goes out, and nothing is
 * held (broker_gated false) until the store takes writes again.
 */
uint64_t broker_mark(const struct broker *);
uint64_t broker_durable(const struct broker *);
bool     broker_held(const struct broker *);
bool     broker_gated(const struct broker *);
void  broker_store_failed(struct broker *);
void  broker_withdraw(struct broker *, struct job *);
void  broker_store_mark(struct broker *, uint64_t mark);
void  broker_store_durable(struct broker *, uint64_t mark);
void  broker_store_set_error(struct broker *, int err, const char *reason);
void  broker_store_set_error_quietly(struct broker *, int err, const char *reason);
int   broker_store_error(const struct broker *);
const char *broker_store_reason(const struct broker *);
void  broker_shutdown(struct broker *);
enum broker_err broker_submit(struct broker *, const struct submit_req *,
    struct job **out);
const char *broker_err_reason(struct broker *, enum broker_err);
struct job   *broker_find(struct broker *, const char *key);
struct jtype *broker_type(struct broker *, const char *name, bool create);
void  broker_type_pin(struct broker *, struct jtype *);
void  broker_type_unpin(struct broker *, struct jtype *);
void  broker_type_unref(struct broker *, struct jtype *);
struct master *broker_master_new(struct broker *, void *face);
void  broker_master_gone(struct broker *, struct master *);
struct worker *broker_worker_new(struct broker *, void *face, const char *name);
void  broker_worker_options(struct broker *, struct worker *, const char *name,
    unsigned capacity, int takes_cancel);
void  broker_worker_join(struct broker *, struct worker *, struct jtype *);
void  broker_worker_ready(struct broker *, struct worker *);
void  broker_worker_block(struct broker *, struct worker *, bool blocked);
void  broker_worker_gone(struct broker *, struct worker *);
enum worker_answer broker_worker_answer(struct broker *, struct worker *,
    const char *key, bool final, struct job **out);
void  broker_complete(struct broker *, struct job *, const char *result, size_t len,
    struct blob *holder);
void  broker_partial(struct broker *, struct job *, const char *body, size_t len);
enum broker_err broker_end(struct broker *, struct job *, enum job_state why);
void  broker_forget(struct broker *, struct job *);
void  broker_cursor_open(struct broker *, struct job_cursor *);
void  broker_cursor_close(struct broker *, struct job_cursor *);
struct job *broker_cursor_job(const struct job_cursor *);
void  broker_cursor_advance(struct job_cursor *);
void  job_ref(struct job *);
void  job_unref(struct broker *, struct job *);

/* Jobs by state (broker_states.c). */
const char *jls_name(int state);              /* "queued" ...; NULL: none */
int   jls_parse(const char *name);            /* JLS_*, 0: no such state */
bool  job_in_lstate(const struct job *, int state);
void  broker_scursor_open(struct broker *, struct state_cursor *, int state,
    struct jtype *only);
struct job *broker_scursor_job(struct broker *, struct state_cursor *);
void  broker_scursor_advance(struct state_cursor *);
void  broker_scursor_close(struct broker *, struct state_cursor *);
#define LIST_LIMIT_DEFAULT 100    /* jobs a page of a listing holds */
#define LIST_LIMIT_MAX     1000
json_t *broker_list(struct broker *, int state, struct jtype *only, size_t limit,
    const char *pos, bool (*may)(void *, const struct job *), void *ctx);

/*
 * Queries: what a face may know of the broker's structures, without
 * walking its heaps, job table, type table or worker lists.  Each walk
 * calls cb until it returns false; cb must not change the broker.
 */
struct type_stats {
	uint64_t queued, running, workers;
	uint64_t done, failed, cancelled, timeout, submitted, requeued;
	uint64_t dead, delayed, waiting, retried, kicked;
};
typedef bool broker_type_cb(void *ctx, struct jtype *);
typedef bool broker_job_cb(void *ctx, struct job *);
typedef bool broker_worker_cb(void *ctx, struct worker *);
void  broker_types_each(struct broker *, broker_type_cb *, void *ctx);   /* oldest first */
void  broker_type_stats(const struct jtype *, struct type_stats *);
void  broker_queue_each(struct broker *, struct jtype *, broker_job_cb *, void *ctx);
void  broker_workers_each(struct broker *, struct jtype *, broker_worker_cb *, void *ctx);
void  broker_worker_jobs_each(struct broker *, struct worker *, broker_job_cb *, void *ctx);
const char *worker_name(const struct worker *);
const char *worker_addr(const struct worker *);
bool        worker_named(const struct worker *);
unsigned    worker_running(const struct worker *);
json_t *job_info(const struct job *);
double  job_started(const struct job *);    /* wall clock; 0: not yet */
double  job_finished(const struct job *);
const char *job_target(const struct job *);
const struct buf *job_partials(const struct job *);
const char *job_log(const struct job *, size_t *len);   /* NULL: none */
void  broker_job_log(struct broker *, struct job *, const char *, size_t);
const char *job_status(const struct job *);   /* "delayed", "waiting", or the state */
const char *job_end_reason(const struct job *);  /* reason of its ending frame */
json_t *job_life_json(const struct job *);    /* what the store keeps of its life */
void  broker_life_init(struct broker *, double dead_keep, size_t dead_max);
enum broker_err broker_fail(struct broker *, struct job *, const char *err, size_t len);
enum broker_err broker_kick(struct broker *, struct job *);
size_t broker_kick_type(struct broker *, struct jtype *);
void  broker_type_pause(struct broker *, struct jtype *, bool paused);
enum broker_err broker_type_configure(struct broker *, const char *type, int64_t limit,
    int64_t retries, int64_t backoff_ms);
bool  broker_type_configured(const struct jtype *);
void  broker_dead_each(struct broker *, struct jtype *, broker_job_cb *, void *ctx);
void  broker_delayed_each(struct broker *, struct jtype *, broker_job_cb *, void *ctx);
json_t *broker_type_settings(const struct jtype *);

/* Repeating jobs (schedule.c). */
#include "core/schedule.h"

/* The broker's side of cluster mode, for a backend store. */
#include "core/backend.h"

#endif /* JOBFS_BROKER_H */
