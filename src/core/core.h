/*
 * core.h — private to src/core/: the heaps, the job table and the
 * state lists the broker keeps; no face or store includes it.
 */
#ifndef JOBFS_CORE_H
#define JOBFS_CORE_H

#include "core/broker.h"

/* jobtab.c: every known job by key. */
struct jobtab {
	struct job **slots;
	size_t       cap, len, tombs;
};

struct broker {
	struct ev_loop    *loop;
	struct jobtab      jobs;      /* every known job by key */
	struct jtype      *types;
	struct job_list    all;       /* every job in the table, submission order */
	TAILQ_HEAD(, job_cursor) cursors;  /* open listings of all */
	TAILQ_HEAD(, state_cursor) state_cursors;  /* open listings by state */
	uint32_t           next_lseq;    /* order of entering a state (job->lseq) */
	struct job_list    finished;  /* retention order */
	size_t             nfinished;
	uint64_t           next_seq;
	uint64_t           next_auto_id;
	double             keep;      /* seconds */
	size_t             keep_max;
	uint64_t           keep_bytes;  /* finished jobs' bytes, --keep-bytes */
	struct job        *drop_next;   /* the oldest finished job not dropped
	                                   (NULL: none), in broker->finished */
	uint64_t           max_jobs;  /* unfinished jobs, --max-jobs */
	uint64_t           max_bytes; /* their bodies' bytes, --max-memory */
	ev_timer           retention;
	size_t             trim_since;   /* jobs forgotten since the last malloc_trim */
	struct broker_stats stats;
	struct broker_listener listeners[BROKER_LISTENERS_MAX];
	unsigned           nlisteners;
	unsigned           restoring;    /* inside broker_restore */
	uint64_t           mark;         /* the store's last appended record */
	uint64_t           durable;      /* the store's last durable record */
	int                store_err;    /* the store cannot take writes: errno */
	char               store_reason[128];
	bool               store_down;   /* broker_store_failed: nothing waits
	                                    for the store until it takes writes */
	/* the job lifecycle */
	struct delay_heap {
		struct job **items;
		size_t       len, cap;
	}                  delays;       /* delayed jobs and retries, by due time */
	ev_timer           delay_timer;  /* the one timer for all of them */
	struct job_list    dead;         /* every dead job, oldest first */
	size_t             ndead;
	double             dead_keep;    /* seconds */
	size_t             dead_max;
	struct dep        *deps;         /* waiting jobs, by the key they wait for */
	struct life_ends  *ends;         /* life_finished's queue (core.h), or NULL */
	char               err_detail[2 * ID_MAX + 192];  /* why the last BERR_*
	                                 (broker_err_reason) */
	size_t             npaused;      /* paused types */
	TAILQ_HEAD(, fail_log) fail_logs; /* types with failures counted, not logged */
	ev_timer           fail_log_timer; /* the end of their windows */
	/* cluster mode */
	struct broker_backend be;      /* be.submit NULL: no backend */
	char               id_suffix[24];  /* appended to assigned ids: ".N" */
	struct chans       chans;        /* channels (chan.c) */
	struct {
		broker_stats_hook *fn;
		void              *ctx;
	}                  stats_hooks[BROKER_STATS_HOOKS_MAX];
	unsigned           nstats_hooks;
	struct sched_table *sched;       /* repeating jobs (schedule.c), or NULL */
};
void sched_shutdown(struct broker *);


/* heap.c: a job queue (struct heap, in job.h) */
void        heap_push(struct heap *, struct job *);
struct job *heap_pop(struct heap *);
void        heap_remove(struct heap *, struct job *);
void        heap_free(struct heap *);
static inline struct job *heap_top(const struct heap *h) { return h->len ? h->items[0] : NULL; }

/* jobtab.c: every known job by key (struct jobtab, above) */
uint32_t    jobtab_hash(const char *key);
struct job *jobtab_find(const struct jobtab *, const char *key, uint32_t hash);
void        jobtab_add(struct jobtab *, struct job *);
void        jobtab_del(struct jobtab *, struct job *);
struct job *jobtab_next(const struct jobtab *, size_t *pos);
void        jobtab_free(struct jobtab *);

/* broker_states.c: the lists of jobs by state */
void  broker_states_type_init(struct jtype *);
void  broker_state_sync(struct broker *, struct job *);   /* j's state
                                   may have changed: move it to its list */
void  broker_state_drop(struct broker *, struct job *);   /* j is forgotten */
void  broker_state_dead_leaving(struct broker *, struct job *);

/* ----------------------------------------------------------------- delay.c */

/* The due-time heap of delayed jobs (broker->delays): soonest first. */
void        delay_push(struct delay_heap *, struct job *);
struct job *delay_pop(struct delay_heap *);
void        delay_remove(struct delay_heap *, struct job *);
void        delay_free(struct delay_heap *);
static inline struct job *delay_top(const struct delay_heap *h) { return h->len ? h->items[0] : NULL; }

/*
 * life_finished's queue: the jobs that ended while it told the jobs that
 * wait for them (an ending it causes is told after, in order, so a long
 * chain of dependencies does not deepen the stack).  broker->ends, made
 * when a job ends while jobs wait, freed when none waits any more.
 */
struct life_ends {
	struct life_ended { char *key; enum job_state state; } *q;
	size_t qlen, qcap;
	bool   busy;
};

/* EMIT: call event ev of every listener, in order (broker_listen). */
#define EMIT(b, ev, ...) do {						\
	const struct broker_listener *l_ = (b)->listeners;		\
	const struct broker_listener *e_ = l_ + (b)->nlisteners;	\
	for (; l_ < e_; l_++)						\
		if (l_->ev != NULL)					\
			l_->ev(l_->ctx, __VA_ARGS__);			\
} while (0)

/*
 * What the broker's files share (they were one file; each is apart by what
 * it does, see broker.c).  Each group is defined in the file it names.
 */

/* broker.c */
void emit_job_abandoned(struct broker *b, struct job *j, struct worker *w);
void emit_job_changed(struct broker *b, struct job *j);
void emit_job_dispatched(struct broker *b, struct job *j, struct worker *w);
void emit_job_dropped(struct broker *b, struct job *j, size_t body, size_t result, size_t partials);
void emit_job_finished(struct broker *b, struct job *j, struct worker *ran_on);
void emit_job_forgotten(struct broker *b, struct job *j);
void emit_job_partial(struct broker *b, struct job *j, const char *body, size_t len);
void emit_job_requeued(struct broker *b, struct job *j);
void emit_job_submitted(struct broker *b, struct job *j);
void emit_type_changed(struct broker *b, struct jtype *t);
void emit_worker_joined(struct broker *b, struct worker *w, struct jtype *t);
void emit_worker_left(struct broker *b, struct worker *w, struct jtype *t);
struct job *job_alloc(struct broker *b, const struct submit_req *r);
enum broker_err refuse_id_exists(struct broker *b, const char *id, const char *owner);
struct heap *type_queue_of(struct jtype *t, struct job *j);
void type_ref(struct jtype *t);
struct heap *type_target_queue(struct jtype *t, const char *name, bool create);
void type_unqueue(struct jtype *t, struct job *j);

/* dispatch.c */
void job_enqueue(struct broker *b, struct job *j);
void job_start(struct broker *b, struct job *j, struct worker *w);
struct worker *job_take_from_worker(struct broker *b, struct job *j);
void master_unref(struct master *m);
void stale_add(struct worker *w, const char *key);
int stale_index(const struct worker *w, const char *key);
void worker_fill(struct broker *b, struct worker *w);
unsigned worker_free_slots(const struct worker *w);
void worker_unref(struct worker *w);

/* ending.c */
void finished_add(struct broker *b, struct job *j);
void job_finish(struct broker *b, struct job *j, enum job_state why);
void job_forget(struct broker *b, struct job *j);
void partial_keep(struct broker *b, struct job *j, const char *body, size_t len);
void retention_cb(struct ev_loop *loop, ev_timer *w, int revents);
void retention_schedule(struct broker *b);

/* query.c */
void all_remove(struct broker *b, struct job *j);
void job_log_set(struct job *j, const char *text, size_t len);

/* backend.c */
void shared_unrun(struct broker *b, struct job *j);

/* life.c */
double backoff_ms(const struct job *j, unsigned n);
void delay_add(struct broker *b, struct job *j, enum life_wait why);
void deps_free(struct broker *b);
int32_t job_retries(const struct job *j);
void life_attempt_begin(struct job *j, double now);
void life_attempt_end(struct job *j, const char *error, double now);
enum broker_err life_check(struct broker *b, const struct submit_req *r);
void life_finished(struct broker *b, struct job *j);
void life_free(struct job *j);
struct job_life *life_get(struct job *j);
void life_place(struct broker *b, struct job *j);
int life_submit(struct broker *b, struct job *j, const struct submit_req *r);
void life_unwait(struct broker *b, struct job *j);
void type_fill(struct broker *b, struct jtype *t);
bool type_may_dispatch(const struct jtype *t);

/* life_fail.c */
void dead_add(struct broker *b, struct job *j);
void dead_remove(struct broker *b, struct job *j);
void fail_log_cb(struct ev_loop *loop, ev_timer *w, int revents);
void fail_log_flush(struct broker *b, struct jtype *t);
void fail_log_summary(struct broker *b, struct fail_log *f);
bool life_retry_on_loss(struct broker *b, struct job *j, struct worker *w);
bool life_retry_on_timeout(struct broker *b, struct job *j);
bool life_timed_out_on(const struct job *j, const char *worker);

/* life_info.c */
json_t *job_life_info(const struct job *j);
void life_restore(struct broker *b, struct job *j, const char *text);

/* Declared for the core only: no face calls them. */
const char *job_lstate_name(const struct job *);  /* "dead" or its list's */
int   broker_scursor_seek(struct broker *, struct state_cursor *, const char *pos);
char *broker_scursor_pos(const struct job *, int state);
size_t broker_ntypes(const struct broker *);
size_t broker_nretained(const struct broker *);
enum broker_err broker_type_limit(struct broker *, struct jtype *, int64_t limit);
enum broker_err broker_type_retries(struct broker *, struct jtype *, int64_t retries, int64_t backoff_ms);

#endif /* JOBFS_CORE_H */
