/*
 * broker.c — jobs, types, queues, dispatch, requeue and retention, and the
 * job lifecycle (retries, the dead set, delays, pauses, limits,
 * dependencies: its section at the end).
 *
 * The broker is the core: it knows no face.  Faces (the TCP protocol in
 * proto.c, the tree in fs*.c) call into it, and it tells whatever
 * registered as a listener (the faces, a store such as the journal) what
 * happened, through the emit_* helpers below: it names none of them.
 * Faces know peers only as handles (struct master, struct worker: made by
 * the face, given back by broker_master_gone / broker_worker_gone) and
 * read the broker through the queries at the end (types, queue in dispatch
 * order, workers, counters), never its heaps or tables.  Every job ends
 * in job_finish(), once for each time it was queued (a dead job kicked is
 * queued again, and ends again).
 *
 * Dispatch invariant: a worker sits on its type's idle list only while it
 * has a free slot and no queued job it may take (see worker_may_take), or
 * while its type may not dispatch (paused, or at its limit: type_fill
 * gives those workers jobs once it may again).  So a new job goes to the
 * head of the idle list (or waits), and a worker with a free slot takes the
 * best queued job (or goes idle): both O(log n), however many workers idle.
 */
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static void job_finish(struct broker *, struct job *, enum job_state);
static void all_remove(struct broker *, struct job *);
static void retention_schedule(struct broker *);
static void master_unref(struct master *);
static void worker_unref(struct worker *);
static void worker_fill(struct broker *, struct worker *);
static void job_enqueue(struct broker *, struct job *);
static struct worker *job_take_from_worker(struct broker *, struct job *);
/* the job lifecycle (its section, below) */
static bool type_may_dispatch(const struct jtype *);
static void type_fill(struct broker *, struct jtype *);
static void life_place(struct broker *, struct job *);
static void life_unwait(struct broker *, struct job *);
static void life_attempt_begin(struct job *, double now);
static void life_attempt_end(struct job *, const char *error, double now);
static void life_free(struct job *);
static struct job_life *life_get(struct job *);
static void life_finished(struct broker *, struct job *);
static void dead_add(struct broker *, struct job *);
static void dead_remove(struct broker *, struct job *);
static int  life_submit(struct broker *, struct job *, const struct submit_req *);
static enum broker_err life_check(struct broker *, const struct submit_req *);
static void life_restore(struct broker *, struct job *, const char *text);
static bool life_retry_on_loss(struct broker *, struct job *, struct worker *);
static void emit_job_changed(struct broker *, struct job *);
static void emit_type_changed(struct broker *, struct jtype *);
static json_t *job_life_info(const struct job *);
static bool life_retry_on_timeout(struct broker *, struct job *);
static bool life_timed_out_on(const struct job *, const char *worker);
static void deps_free(struct broker *);
static void type_free(struct jtype *);
static void job_forget(struct broker *, struct job *);
static void finished_add(struct broker *, struct job *);
static void job_log_set(struct job *, const char *, size_t);
static void shared_unrun(struct broker *, struct job *);
static void fail_log_summary(struct broker *, struct fail_log *);
static void fail_log_flush(struct broker *, struct jtype *);
static void fail_log_cb(struct ev_loop *, ev_timer *, int);

static const char *const state_names[] = {
	"queued", "running", "done", "failed", "cancelled", "timeout",
};

const char *
job_state_name(enum job_state s)
{
	return state_names[s];
}

static void retention_cb(struct ev_loop *, ev_timer *, int);

/* --------------------------------------------------------------- listeners */

static void
listen_at(struct broker *b, unsigned at, const struct broker_listener *l)
{
	if (b->nlisteners == BROKER_LISTENERS_MAX)
		fatalx("more than %d broker listeners", BROKER_LISTENERS_MAX);
	memmove(&b->listeners[at + 1], &b->listeners[at],
	    (b->nlisteners - at) * sizeof b->listeners[0]);
	b->listeners[at] = *l;
	b->nlisteners++;
}

/* broker_listen: l's callbacks hear every event from now on, after those
 * registered before. */
void
broker_listen(struct broker *b, const struct broker_listener *l)
{
	listen_at(b, b->nlisteners, l);
}

/* broker_store_listen: a store's listener, called before every face's. */
void
broker_store_listen(struct broker *b, const struct broker_listener *l)
{
	listen_at(b, 0, l);
}

#define EMIT(b, ev, ...) do {						\
	const struct broker_listener *l_ = (b)->listeners;		\
	const struct broker_listener *e_ = l_ + (b)->nlisteners;	\
	for (; l_ < e_; l_++)						\
		if (l_->ev != NULL)					\
			l_->ev(l_->ctx, __VA_ARGS__);			\
} while (0)

static void emit_job_submitted(struct broker *b, struct job *j) { EMIT(b, job_submitted, j); }
static void emit_job_requeued(struct broker *b, struct job *j) { EMIT(b, job_requeued, j); }
static void emit_job_forgotten(struct broker *b, struct job *j) { EMIT(b, job_forgotten, j); }
static void emit_type_added(struct broker *b, struct jtype *t) { EMIT(b, type_added, t); }
static void emit_type_removed(struct broker *b, struct jtype *t) { EMIT(b, type_removed, t); }
static void emit_job_changed(struct broker *b, struct job *j) { EMIT(b, job_changed, j); }
static void emit_type_changed(struct broker *b, struct jtype *t) { EMIT(b, type_changed, t); }

static void
emit_job_dropped(struct broker *b, struct job *j, size_t body, size_t result,
    size_t partials)
{
	EMIT(b, job_dropped, j, body, result, partials);
}

static void
emit_job_abandoned(struct broker *b, struct job *j, struct worker *w)
{
	EMIT(b, job_abandoned, j, w);
}

static void
emit_job_dispatched(struct broker *b, struct job *j, struct worker *w)
{
	EMIT(b, job_dispatched, j, w);
}

static void
emit_job_partial(struct broker *b, struct job *j, const char *body, size_t len)
{
	EMIT(b, job_partial, j, body, len);
}

static void
emit_job_finished(struct broker *b, struct job *j, struct worker *ran_on)
{
	EMIT(b, job_finished, j, ran_on);
}

static void
emit_worker_joined(struct broker *b, struct worker *w, struct jtype *t)
{
	EMIT(b, worker_joined, w, t);
}

static void
emit_worker_left(struct broker *b, struct worker *w, struct jtype *t)
{
	EMIT(b, worker_left, w, t);
}

/* ------------------------------------------------------------------ store */

void
broker_store_mark(struct broker *b, uint64_t mark)
{
	if (mark > b->mark)
		b->mark = mark;
}

/* broker_store_durable: the store made every record up to mark durable. */
void
broker_store_durable(struct broker *b, uint64_t mark)
{
	if (mark <= b->durable)
		return;
	b->durable = mark;
	if (mark > b->mark)
		b->mark = mark;
	EMIT(b, durable, mark);
}

void
broker_store_set_error(struct broker *b, int err, const char *reason)
{
	if (err != 0 && b->store_err == 0)
		log_err("store: %s: refusing submissions", reason != NULL ? reason : "error");
	else if (err == 0 && b->store_err != 0)
		log_info("%s", "store: writable again: taking submissions");
	broker_store_set_error_quietly(b, err, reason);
}

/* broker_store_failed: see jobfs.h ("The durability gate"). */
void
broker_store_failed(struct broker *b)
{
	if (b->store_err == 0 || b->store_down)
		return;
	b->store_down = true;
	for (unsigned i = 0; i < b->nlisteners; i++)
		if (b->listeners[i].store_failed != NULL)
			b->listeners[i].store_failed(b->listeners[i].ctx);
}

/*
 * broker_withdraw: a submission the store could not keep is undone: its
 * master lets go of it first (it hears only the refusal the face sends),
 * then it ends cancelled and is forgotten, as a job the backend refused.
 */
void
broker_withdraw(struct broker *b, struct job *j)
{
	if (j->master != NULL) {
		TAILQ_REMOVE(&j->master->owned, j, master_entry);
		master_unref(j->master);
		j->master = NULL;
	}
	if (!JOB_FINISHED(j))
		job_finish(b, j, JOB_CANCELLED);
	if (broker_find(b, j->key) == j)
		job_forget(b, j);
}

/* broker_store_set_error_quietly: the same, for a store that logs its
 * state itself (cluster mode: connecting, lost, back). */
void
broker_store_set_error_quietly(struct broker *b, int err, const char *reason)
{
	b->store_err = err;
	if (err == 0)
		b->store_down = false;
	snprintf(b->store_reason, sizeof b->store_reason, "%s",
	    err != 0 && reason != NULL ? reason : "");
}

int
broker_store_error(const struct broker *b)
{
	return b->store_err;
}

const char *
broker_store_reason(const struct broker *b)
{
	return b->store_reason;
}

bool
broker_restoring(const struct broker *b)
{
	return b->restoring > 0;
}

void
broker_init(struct broker *b, struct ev_loop *loop, const struct broker_limits *lim)
{
	memset(b, 0, sizeof *b);
	b->loop = loop;
	b->keep = lim->keep;
	b->keep_max = lim->keep_max;
	b->keep_bytes = lim->keep_bytes;
	b->max_jobs = lim->max_jobs;
	b->max_bytes = lim->max_memory;
	TAILQ_INIT(&b->all);
	TAILQ_INIT(&b->cursors);
	TAILQ_INIT(&b->state_cursors);
	TAILQ_INIT(&b->finished);
	/* Ids the broker assigns sort in submission order, across restarts too. */
	b->next_auto_id = (uint64_t)(now_wall() * 1e6);
	ev_init(&b->retention, retention_cb);
	b->retention.data = b;
	broker_life_init(b, LIFE_DEAD_KEEP, LIFE_DEAD_MAX);
}

/* ------------------------------------------------------------------ types */

struct jtype *
broker_type(struct broker *b, const char *name, bool create)
{
	struct jtype *t;

	HASH_FIND_STR(b->types, name, t);
	if (t != NULL || !create)
		return t;
	t = xcalloc(1, sizeof *t);
	t->name = xstrdup(name);
	TAILQ_INIT(&t->idle);
	TAILQ_INIT(&t->workers);
	TAILQ_INIT(&t->dead);
	broker_states_type_init(t);
	HASH_ADD_KEYPTR(hh, b->types, t->name, strlen(t->name), t);
	emit_type_added(b, t);
	return t;
}

static void
type_ref(struct jtype *t)
{
	t->refs++;
}

/* broker_type_unref: a type with no jobs, workers or mkdir goes away. */
void
broker_type_unref(struct broker *b, struct jtype *t)
{
	if (--t->refs > 0 || t->pinned || broker_type_configured(t))
		return;
	HASH_DEL(b->types, t);
	emit_type_removed(b, t);
	fail_log_flush(b, t);
	type_free(t);
}

/* type_free: a type's memory (it is out of broker->types). */
static void
type_free(struct jtype *t)
{
	struct target *tg, *tmp;

	HASH_ITER(hh, t->targets, tg, tmp) {
		HASH_DEL(t->targets, tg);
		heap_free(&tg->queue);
		free(tg->name);
		free(tg);
	}
	heap_free(&t->queue);
	free(t->fail_log);
	free(t->name);
	free(t);
}

void
broker_type_pin(struct broker *b, struct jtype *t)
{
	if (broker_shared(b) && !t->pinned && b->be.pin != NULL)
		b->be.pin(b->be.ctx, t, true);   /* listed in every host's tree */
	t->pinned = true;
}

/* broker_type_unpin: undo mkdir; the type goes once nothing else holds it. */
void
broker_type_unpin(struct broker *b, struct jtype *t)
{
	if (!t->pinned)
		return;
	if (broker_shared(b) && b->be.pin != NULL)
		b->be.pin(b->be.ctx, t, false);
	t->pinned = false;
	t->refs++;
	broker_type_unref(b, t);
}

static struct heap *
type_target_queue(struct jtype *t, const char *name, bool create)
{
	struct target *tg;

	HASH_FIND_STR(t->targets, name, tg);
	if (tg == NULL && create) {
		tg = xcalloc(1, sizeof *tg);
		tg->name = xstrdup(name);
		HASH_ADD_KEYPTR(hh, t->targets, tg->name, strlen(tg->name), tg);
	}
	return tg != NULL ? &tg->queue : NULL;
}

/* type_queue_of: the heap a queued job waits in. */
static struct heap *
type_queue_of(struct jtype *t, struct job *j)
{
	return job_target(j) != NULL ? type_target_queue(t, job_target(j), true) : &t->queue;
}

static void
type_unqueue(struct jtype *t, struct job *j)
{
	struct heap *h = type_queue_of(t, j);
	struct target *tg;

	heap_remove(h, j);
	t->nqueued--;
	if (job_target(j) != NULL && h->len == 0) {
		HASH_FIND_STR(t->targets, job_target(j), tg);
		HASH_DEL(t->targets, tg);
		heap_free(&tg->queue);
		free(tg->name);
		free(tg);
	}
}

/* ------------------------------------------------------------------- jobs */

struct job *
broker_find(struct broker *b, const char *key)
{
	struct job *j;

	j = jobtab_find(&b->jobs, key, jobtab_hash(key));
	return j;
}

void
job_ref(struct job *j)
{
	j->refs++;
}

void
job_unref(struct broker *b, struct job *j)
{
	if (--j->refs > 0)
		return;
	broker_type_unref(b, j->type);
	blob_unref(j->result);
	if (j->body_blob)
		blob_unref(job_body_blob(j));
	free(j->worker_name);
	free(j->owner);
	life_free(j);
	if (j->ext != NULL) {
		free(j->ext->target);
		buf_free(&j->ext->partials);
		free(j->ext->log);
		free(j->ext);
	}
	free(j);
}

static void
deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct job *j = w->data;
	struct broker *b = j->ext->broker;

	(void)loop;
	(void)revents;
	log_debug("job %s: timed out", j->key);
	if (life_retry_on_timeout(b, j))
		return;   /* a running attempt of a job with retries left */
	broker_end(b, j, JOB_TIMEOUT);
}

static const char *
broker_auto_id(struct broker *b, char *id, size_t len)
{
	do  /* cluster mode: ".N", the daemon's number, keeps ids unique */
		snprintf(id, len, "%016" PRIu64 "%s", b->next_auto_id++, b->id_suffix);
	while (broker_find(b, id) != NULL);
	return id;
}

/*
 * A worker's slots.  Each of its "capacity" slots is free, holds a job it
 * runs (w->running), or holds a stale job: one that ended (cancel, timeout,
 * failure) while it ran on a worker that did not ask for cancels.  Such a
 * worker still runs it and still owes its answer; the slot stays taken
 * until that answer comes (or the worker goes).  The stale jobs' keys are
 * kept, not just counted, so that a late answer is matched to the job it
 * is about and to nothing else: a worker is never given a job whose key it
 * still holds, running or stale, so a key names at most one thing per
 * worker.  All of this is done here: stale_index, stale_add, stale_drop and
 * broker_worker_answer.
 */
static int
stale_index(const struct worker *w, const char *key)
{
	unsigned i;

	for (i = 0; i < w->stale; i++)
		if (strcmp(w->stale_keys[i], key) == 0)
			return (int)i;
	return -1;
}

static void
stale_add(struct worker *w, const char *key)
{
	w->stale_keys = xrealloc(w->stale_keys, (w->stale + 1) * sizeof *w->stale_keys);
	w->stale_keys[w->stale++] = xstrdup(key);
}

static void
stale_drop(struct worker *w, unsigned i)
{
	free(w->stale_keys[i]);
	memmove(&w->stale_keys[i], &w->stale_keys[i + 1],
	    (w->stale - i - 1) * sizeof *w->stale_keys);
	if (--w->stale == 0) {
		free(w->stale_keys);
		w->stale_keys = NULL;
	}
}

/*
 * worker_may_take: may worker w run job j now?  Its name must match any
 * target, and it must not still hold a stale job of the same key.
 */
static bool
worker_may_take(const struct worker *w, const struct job *j)
{
	return (job_target(j) == NULL || strcmp(job_target(j), w->name) == 0) &&
	    (w->stale == 0 || stale_index(w, j->key) < 0);
}

/* worker_free_slots: none while its face is blocked (the TCP face: output
 * backlogged, until broker_worker_block(false) once it drains), so a worker
 * that does not read holds at most OUT_SOFT_LIMIT plus one job of unsent
 * jobs. */
static unsigned
worker_free_slots(const struct worker *w)
{
	unsigned used = w->nrunning + w->stale;

	if (w->blocked)
		return 0;
	return used < w->capacity ? w->capacity - used : 0;
}

static void job_start(struct broker *, struct job *, struct worker *);

/*
 * late_result_counts: a final answer from w names j, which w does not
 * hold.  It counts when j waits in its type's queue, given to nobody (a
 * restart or a lost connection took it back from the worker that ran it,
 * which kept its result while the daemon was away), and w could take it
 * now: then j is handed to w (its job frame crosses the answer) and ends
 * with that answer.  In cluster mode the queue is the backend's: never.
 */
static bool
late_result_counts(struct broker *b, struct worker *w, const struct job *j)
{
	return !broker_shared(b) && j->state == JOB_QUEUED &&
	    j->lstate == JLS_QUEUED && j->type == w->type &&
	    worker_free_slots(w) > 0 && worker_may_take(w, j);
}

/*
 * broker_worker_answer: what a response (final) or partial from w is
 * about.  With an id: a stale job of w's first, then a job it runs, then
 * a queued job whose result w kept across an outage (late_result_counts);
 * the id of a finished job that a cancel-accepting w ran last is a late
 * answer too (it may answer as the cancel crosses); any other id is
 * unknown.
 * Without an id: the one job w holds.
 * A final late answer frees its slot; the caller then calls
 * broker_worker_ready (after any acknowledgement, which goes first).
 */
enum worker_answer
broker_worker_answer(struct broker *b, struct worker *w, const char *key,
    bool final, struct job **out)
{
	struct job *j;
	int i;

	*out = NULL;
	if (key != NULL) {
		if ((i = stale_index(w, key)) >= 0) {
			if (final)
				stale_drop(w, (unsigned)i);
			return ANSWER_LATE;
		}
		TAILQ_FOREACH(j, &w->running, worker_entry)
			if (strcmp(j->key, key) == 0) {
				*out = j;
				return ANSWER_JOB;
			}
		j = broker_find(b, key);
		if (final && j != NULL && late_result_counts(b, w, j)) {
			type_unqueue(j->type, j);
			job_start(b, j, w);
			*out = j;
			return ANSWER_JOB;
		}
		/* A late answer only from the worker that ran it last: any
		 * other worker holds nothing of that job. */
		/* (or an attempt of it timed out here, and it is retried:
		 * the job lifecycle) */
		return j != NULL && w->takes_cancel &&
		    ((JOB_FINISHED(j) && j->worker_name != NULL &&
		    strcmp(j->worker_name, w->name) == 0) || life_timed_out_on(j, w->name)) ?
		    ANSWER_LATE : ANSWER_UNKNOWN_ID;
	}
	if (w->nrunning + w->stale > 1)
		return ANSWER_NEED_ID;
	if (w->nrunning == 1) {
		*out = TAILQ_FIRST(&w->running);
		return ANSWER_JOB;
	}
	if (w->stale == 1) {
		if (final)
			stale_drop(w, 0);
		return ANSWER_LATE;
	}
	return ANSWER_NONE;
}

static void
worker_set_idle(struct worker *w, bool idle)
{
	if (w->idle == idle)
		return;
	if (idle)
		TAILQ_INSERT_TAIL(&w->type->idle, w, idle_entry);
	else
		TAILQ_REMOVE(&w->type->idle, w, idle_entry);
	w->idle = idle;
}

/* job_start: hand a queued (already unqueued) job to worker w. */
static void
job_start(struct broker *b, struct job *j, struct worker *w)
{
	struct jtype *t = j->type;

	j->state = JOB_RUNNING;
	j->worker = w;
	w->refs++;
	j->started = (float)(ev_now(b->loop) - j->submitted);
	free(j->worker_name);
	j->worker_name = xstrdup(w->name);
	if (j->life != NULL)
		life_attempt_begin(j, now_wall());
	TAILQ_INSERT_TAIL(&w->running, j, worker_entry);
	w->nrunning++;
	t->nrunning++;
	b->stats.running++;
	b->stats.queued--;
	/* Round robin among workers with spare slots; a full one stops idling. */
	worker_set_idle(w, false);
	if (worker_free_slots(w) > 0)
		worker_set_idle(w, true);
	broker_state_sync(b, j);
	emit_job_dispatched(b, j, w);
}

/* job_enqueue: queue j, or start it at once on an idle worker. */
static void
job_enqueue(struct broker *b, struct job *j)
{
	struct jtype *t = j->type;
	struct worker *w;

	j->state = JOB_QUEUED;
	j->worker = NULL;
	b->stats.queued++;
	/* Idle workers that may not take j are skipped: for an untargeted
	 * job, only those still holding a stale job of its key.  A paused
	 * type, or one at its limit, has idle workers and queued jobs. */
	TAILQ_FOREACH(w, &t->idle, idle_entry) {
		if (!type_may_dispatch(t))
			break;
		if (worker_may_take(w, j)) {
			job_start(b, j, w);
			return;
		}
	}
	heap_push(type_queue_of(t, j), j);
	t->nqueued++;
	broker_state_sync(b, j);
}

/*
 * job_alloc: one allocation for the job, its key, its id as JSON and its
 * body (or, from BODY_BLOB_MIN bytes, a pointer to the blob that holds
 * it).  An integer id's JSON is its key, so it is not stored twice.
 */
static struct job *
job_alloc(struct broker *b, const struct submit_req *r)
{
	char autokey[48];
	const char *key = r->key != NULL ? r->key : broker_auto_id(b, autokey, sizeof autokey);
	size_t klen = strlen(key);
	bool quote = r->idjson == NULL;
	bool same = !quote && strcmp(r->idjson, key) == 0;  /* an integer id */
	size_t ilen = same ? 0 : quote ? klen + 2 + 1 : strlen(r->idjson) + 1;
	bool blob = r->body_len >= BODY_BLOB_MIN;
	size_t blen = blob ? sizeof(struct blob *) : r->body_len + 1;
	struct job *j = xmalloc(sizeof *j + klen + 1 + ilen + blen);
	char *p = j->key + klen + 1;

	memset(j, 0, sizeof *j);
	memcpy(j->key, key, klen + 1);
	j->id_is_key = same;
	if (quote) {  /* assigned ids are plain digits: no escaping needed */
		p[0] = '"';
		memcpy(p + 1, key, klen);
		p[klen + 1] = '"';
		p[klen + 2] = '\0';
	} else if (!same)
		memcpy(p, r->idjson, ilen);
	p += ilen;
	if (blob) {  /* where job_body_blob() finds it */
		struct blob *bb = r->body_blob != NULL ? blob_ref(r->body_blob) :
		    blob_new(r->body, r->body_len);

		memcpy(p, &bb, sizeof bb);
		j->body_blob = 1;
	} else {
		memcpy(p, r->body, r->body_len);  /* where job_body() finds it */
		p[r->body_len] = '\0';
	}
	j->body_len = (uint32_t)r->body_len;
	j->hash = jobtab_hash(j->key);
	return j;
}

/* same_owner: a and b are the same submitter's (both none: no --auth, or
 * the tree's). */
static bool
same_owner(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/*
 * refuse_id_exists: the reason of BERR_ID_EXISTS for id (as JSON, or the
 * key).  With --auth (an owner), it may be another name's finished job:
 * the reason says no more than that the id is taken.
 */
static enum broker_err
refuse_id_exists(struct broker *b, const char *id, const char *owner)
{
	snprintf(b->err_detail, sizeof b->err_detail,
	    "id %s is in use by an unfinished job%s", id,
	    owner != NULL ? ", or by another name's finished one" : "");
	return BERR_ID_EXISTS;
}

/*
 * broker_err_reason: why the last broker call refused with err, for a
 * face to send as it is: the limit a full broker is at, with its value,
 * the store's reason, or what the refusal noted in err_detail.
 */
const char *
broker_err_reason(struct broker *b, enum broker_err err)
{
	switch (err) {
	case BERR_OK:
	case BERR_PENDING:
		return "";
	case BERR_FULL_JOBS:
		snprintf(b->err_detail, sizeof b->err_detail,
		    "%" PRIu64 " unfinished jobs: the limit (--max-jobs)", b->max_jobs);
		return b->err_detail;
	case BERR_FULL_MEMORY:
		snprintf(b->err_detail, sizeof b->err_detail,
		    "bodies of unfinished jobs would pass %" PRIu64 " bytes (--max-memory)",
		    b->max_bytes);
		return b->err_detail;
	case BERR_ID_EXISTS:
	case BERR_UNKNOWN_ID:
	case BERR_UNAVAILABLE:
	case BERR_SELF:
	case BERR_INVALID:
	case BERR_STATE:
		return b->err_detail;
	}
	return "";
}

/*
 * broker_submit: a new job.  BERR_ID_EXISTS if its id names an unfinished
 * job, or a finished one of another owner (with --auth, an id is its
 * owner's until retention drops the job: no one else takes it over);
 * BERR_FULL_JOBS if it would pass --max-jobs, BERR_FULL_MEMORY if it would
 * pass --max-memory.  broker_err_reason says why.
 */
enum broker_err
broker_submit(struct broker *b, const struct submit_req *r, struct job **out)
{
	struct job *j, *old = NULL;
	struct jtype *t;
	enum broker_err rc;

	if (b->store_err != 0) {   /* nothing is taken that cannot be kept */
		snprintf(b->err_detail, sizeof b->err_detail, "%s", b->store_reason);
		return BERR_UNAVAILABLE;
	}
	if (r->key != NULL && (old = broker_find(b, r->key)) != NULL) {
		if (!JOB_FINISHED(old) || !same_owner(old->owner, r->owner))
			return refuse_id_exists(b, r->idjson != NULL ? r->idjson :
			    r->key, r->owner);
	}
	if ((rc = life_check(b, r)) != BERR_OK)
		return rc;
	if (broker_shared(b) && (r->retries_set || r->delay_ms != 0 || r->at_ms != 0 ||
	    r->nafter > 0 || r->backoff_ms != 0)) {
		snprintf(b->err_detail, sizeof b->err_detail,
		    "retries, backoff, delay, at and after are not available in cluster mode (--redis)");
		return BERR_INVALID;
	}
	/* Unfinished jobs are bounded in number and in body bytes. */
	if (b->stats.queued + b->stats.running + b->stats.delayed +
	    b->stats.waiting >= b->max_jobs) {
		b->stats.refused_full++;
		return BERR_FULL_JOBS;
	}
	if (b->stats.body_bytes + r->body_len > b->max_bytes) {
		b->stats.refused_full++;
		return BERR_FULL_MEMORY;
	}
	if (old != NULL)
		job_forget(b, old);  /* a finished id may be used again */
	t = broker_type(b, r->type, true);
	j = job_alloc(b, r);
	j->type = t;
	type_ref(t);
	j->priority = r->priority;
	j->seq = (uint32_t)b->next_seq++;
	j->refs = 1;
	j->detach = r->detach;
	j->stream = r->stream;
	j->notify = r->notify;
	j->owner = r->owner != NULL ? xstrdup(r->owner) : NULL;
	j->submitted = ev_now(b->loop);
	j->started = j->finished = -1;
	j->master = r->master;
	if (j->master != NULL) {
		j->master->refs++;
		TAILQ_INSERT_TAIL(&j->master->owned, j, master_entry);
	}
	jobtab_add(&b->jobs, j);
	TAILQ_INSERT_TAIL(&b->all, j, all_entry);
	t->nsubmitted++;
	b->stats.submitted++;
	b->stats.body_bytes += j->body_len;
	if (r->target != NULL || r->timeout_ms > 0) {
		j->ext = xcalloc(1, sizeof *j->ext);
		j->ext->target = r->target != NULL ? xstrdup(r->target) : NULL;
		j->ext->timeout_ms = r->timeout_ms;
	}
	if (r->timeout_ms > 0) {
		ev_timer_init(&j->ext->deadline, deadline_cb, r->timeout_ms / 1000.0, 0.);
		j->ext->deadline.data = j;
		j->ext->broker = b;
		ev_timer_start(b->loop, &j->ext->deadline);
	}
	log_debug("job %s: submitted, type %s", j->key, t->name);
	if (out != NULL)
		*out = j;
	if (broker_shared(b)) {
		/* Queued in the backend, once it answers (broker_be_accepted). */
		j->shared = j->pending = 1;
		j->state = JOB_QUEUED;
		b->stats.queued++;
		broker_state_sync(b, j);
		emit_job_submitted(b, j);
		b->be.submit(b->be.ctx, j);
		return BERR_PENDING;
	}
	life_submit(b, j, r);
	emit_job_submitted(b, j);
	life_place(b, j);
	return BERR_OK;
}

/*
 * broker_restore: put back a job as a store recorded it (replay), with its
 * id, sequence number, times, options and counters: queued (in its place:
 * priority, then seq) or finished (kept for retention, in the order
 * restored).  Its events are emitted with broker_restoring() true, so the
 * store does not record them again.  No limit applies: the jobs were
 * accepted once.  BERR_ID_EXISTS if the key is taken.
 */
int
broker_restore(struct broker *b, const struct restore_req *r)
{
	struct submit_req sr = {
		.type = r->type, .key = r->key, .idjson = r->idjson,
		.body = r->body, .body_len = r->body_len,
	};
	bool finished = r->state >= JOB_DONE;
	struct jtype *t;
	struct job *j;

	if (r->key == NULL || broker_find(b, r->key) != NULL)
		return BERR_ID_EXISTS;
	b->restoring++;
	t = broker_type(b, r->type, true);
	j = job_alloc(b, &sr);
	j->type = t;
	type_ref(t);
	j->priority = r->priority;
	j->seq = r->seq;
	if ((int32_t)(r->seq - (uint32_t)b->next_seq) >= 0)
		b->next_seq += (uint32_t)(r->seq - (uint32_t)b->next_seq) + 1;
	j->refs = 1;
	j->detach = r->detach;
	j->stream = r->stream;
	j->notify = r->notify;
	j->losses = r->losses > JOB_MAX_LOSSES + 1 ? JOB_MAX_LOSSES + 1 : r->losses;
	j->submitted = r->submitted;
	j->started = r->started > 0 ? (float)(r->started - r->submitted) : -1;
	j->finished = -1;
	if (r->worker_name != NULL)
		j->worker_name = xstrdup(r->worker_name);
	j->owner = r->owner != NULL ? xstrdup(r->owner) : NULL;
	jobtab_add(&b->jobs, j);
	TAILQ_INSERT_TAIL(&b->all, j, all_entry);
	t->nsubmitted++;
	b->stats.submitted++;
	if (r->target != NULL || r->timeout_ms > 0 || r->partials_len > 0) {
		j->ext = xcalloc(1, sizeof *j->ext);
		j->ext->target = r->target != NULL ? xstrdup(r->target) : NULL;
		j->ext->timeout_ms = r->timeout_ms;
		if (r->partials_len > 0)
			buf_append(&j->ext->partials, r->partials, r->partials_len);
	}
	if (r->log != NULL)
		job_log_set(j, r->log, r->log_len);
	if (finished) {
		j->state = r->state;
		if (r->state == JOB_DONE && r->result != NULL) {
			j->result = blob_new(r->result, r->result_len);
			j->result_len = (uint32_t)r->result_len;
		}
		j->finished = (float)((r->finished > 0 ? r->finished : r->submitted) - r->submitted);
		switch (r->state) {
		case JOB_DONE:      t->ndone++; b->stats.done++; break;
		case JOB_FAILED:    t->nfailed++; b->stats.failed++; break;
		case JOB_CANCELLED: t->ncancelled++; b->stats.cancelled++; break;
		default:            t->ntimeout++; b->stats.timeout++; break;
		}
		life_restore(b, j, r->life);
		if (r->dropped)
			j->dropped = 1;
		if (j->state == JOB_FAILED)
			dead_add(b, j);
		else
			finished_add(b, j);
		broker_state_sync(b, j);
		emit_job_submitted(b, j);
		emit_job_finished(b, j, NULL);
		retention_schedule(b);
	} else {
		b->stats.body_bytes += j->body_len;
		if (r->timeout_ms > 0) {
			ev_timer_init(&j->ext->deadline, deadline_cb, r->timeout_ms / 1000.0, 0.);
			j->ext->deadline.data = j;
			j->ext->broker = b;
			ev_timer_start(b->loop, &j->ext->deadline);
		}
		life_restore(b, j, r->life);
		emit_job_submitted(b, j);
		life_place(b, j);
	}
	b->restoring--;
	return BERR_OK;
}

/* ---------------------------------------------------------------- workers */

/*
 * worker_next_job: the best queued job this worker may take: the better of
 * its type's head and the head of the jobs targeted at its name.
 */
static struct job *
worker_next_job(struct worker *w)
{
	struct jtype *t = w->type;
	struct heap *mine = t->targets != NULL ?
	    type_target_queue(t, w->name, false) : NULL;
	struct job *a = heap_top(&t->queue), *b = mine ? heap_top(mine) : NULL;

	if (a == NULL)
		return b;
	if (b == NULL)
		return a;
	if (a->priority != b->priority)
		return a->priority > b->priority ? a : b;
	return seq_before(a->seq, b->seq) ? a : b;
}

/*
 * worker_fill: give w queued jobs while it has free slots, else idle it.
 * A job whose key w still holds stale is set aside meanwhile and queued
 * again after: there are at most w->stale of those.
 */
static void
worker_fill(struct broker *b, struct worker *w)
{
	struct job_list aside = TAILQ_HEAD_INITIALIZER(aside);
	struct jtype *t = w->type;
	struct job *j;
	bool idle = false;

	if (t == NULL || w->face == NULL)
		return;
	if (broker_shared(b)) {
		/* The queue is the backend's: it offers jobs (broker_be_dispatch). */
		worker_set_idle(w, worker_free_slots(w) > 0);
		if (w->idle && type_may_dispatch(t))
			b->be.want(b->be.ctx, t);
		return;
	}
	while (worker_free_slots(w) > 0) {
		if (!type_may_dispatch(t) || (j = worker_next_job(w)) == NULL) {
			idle = true;
			break;
		}
		type_unqueue(t, j);
		if (!worker_may_take(w, j)) {
			TAILQ_INSERT_TAIL(&aside, j, worker_entry);
			continue;
		}
		job_start(b, j, w);
	}
	while ((j = TAILQ_FIRST(&aside)) != NULL) {
		TAILQ_REMOVE(&aside, j, worker_entry);
		heap_push(type_queue_of(t, j), j);
		t->nqueued++;
	}
	worker_set_idle(w, idle);
}

static void
worker_detach_type(struct broker *b, struct worker *w)
{
	struct jtype *t = w->type;

	if (t == NULL)
		return;
	worker_set_idle(w, false);
	TAILQ_REMOVE(&t->workers, w, type_entry);
	t->nworkers--;
	w->type = NULL;
	emit_worker_left(b, w, t);
	broker_type_unref(b, t);
}

static void
worker_attach_type(struct broker *b, struct worker *w, struct jtype *t)
{
	w->type = t;
	TAILQ_INSERT_TAIL(&t->workers, w, type_entry);
	t->nworkers++;
	emit_worker_joined(b, w, t);
}

/*
 * broker_worker_join: (re)join w to type t.  The type holds a reference
 * from here on.  A worker busy with jobs switches once they are done.
 */
void
broker_worker_join(struct broker *b, struct worker *w, struct jtype *t)
{
	type_ref(t);
	if (w->next_type != NULL) {
		broker_type_unref(b, w->next_type);
		w->next_type = NULL;
	}
	if (w->type == t) {
		broker_type_unref(b, t);
		worker_fill(b, w);
		return;
	}
	if (w->nrunning + w->stale > 0 && w->type != NULL) {
		w->next_type = t;
		return;
	}
	worker_detach_type(b, w);
	worker_attach_type(b, w, t);
	worker_fill(b, w);
}

/* broker_worker_ready: w has a free slot again (a job ended, a stale response came). */
void
broker_worker_ready(struct broker *b, struct worker *w)
{
	struct jtype *next = w->next_type;

	if (next != NULL && w->nrunning + w->stale == 0) {
		w->next_type = NULL;
		worker_detach_type(b, w);
		worker_attach_type(b, w, next);  /* keeps next_type's reference */
	}
	worker_fill(b, w);
}

/* ---------------------------------------------------------------- handles */

struct master *
broker_master_new(struct broker *b, void *face)
{
	struct master *m = xcalloc(1, sizeof *m);

	(void)b;
	m->face = face;
	m->refs = 1;
	TAILQ_INIT(&m->owned);
	return m;
}

static void
master_unref(struct master *m)
{
	if (--m->refs == 0)
		free(m);
}

/* broker_worker_new: a worker of one free slot, named name (its address)
 * until it authenticates or joins with another. */
struct worker *
broker_worker_new(struct broker *b, void *face, const char *name)
{
	struct worker *w = xcalloc(1, sizeof *w);

	(void)b;
	w->face = face;
	w->refs = 1;
	w->name = xstrdup(name);
	w->addr = xstrdup(name);
	w->capacity = 1;
	TAILQ_INIT(&w->running);
	return w;
}

static void
worker_unref(struct worker *w)
{
	if (--w->refs > 0)
		return;
	free(w->name);
	free(w->addr);
	free(w);
}

/*
 * broker_worker_options: what a join says besides its type: a new name
 * (NULL: keep), capacity (0: keep), whether ended jobs get a cancel
 * (negative: keep).  Takes effect with the broker_worker_join that follows.
 */
void
broker_worker_options(struct broker *b, struct worker *w, const char *name,
    unsigned capacity, int takes_cancel)
{
	(void)b;
	if (name != NULL) {
		free(w->name);
		w->name = xstrdup(name);
	}
	if (capacity > 0)
		w->capacity = capacity;
	if (takes_cancel >= 0)
		w->takes_cancel = takes_cancel > 0;
}

/* broker_worker_block: the face cannot (true) or can again (false) take
 * jobs for w; unblocked, w takes queued jobs at once. */
void
broker_worker_block(struct broker *b, struct worker *w, bool blocked)
{
	w->blocked = blocked;
	if (!blocked && w->type != NULL)
		broker_worker_ready(b, w);
}

/* job_take_from_worker: unlink a running job from its worker; the caller
 * then lets go of the job's reference on it (worker_unref). */
static struct worker *
job_take_from_worker(struct broker *b, struct job *j)
{
	struct worker *w = j->worker;

	TAILQ_REMOVE(&w->running, j, worker_entry);
	w->nrunning--;
	j->type->nrunning--;
	b->stats.running--;
	j->worker = NULL;
	return w;
}

/*
 * broker_worker_gone: w's face is gone (its connection closed, or it was
 * silent past its heartbeat): the one place a worker leaves.  Its running
 * jobs go back to the queue, up to JOB_MAX_LOSSES times; its stale slots,
 * pending re-join and type are given back; the face's reference goes.
 */
void
broker_worker_gone(struct broker *b, struct worker *w)
{
	struct job *j;

	if (w->face == NULL)
		return;
	w->face = NULL;
	worker_set_idle(w, false);
	if (w->next_type != NULL) {
		broker_type_unref(b, w->next_type);
		w->next_type = NULL;
	}
	while (w->stale > 0)
		stale_drop(w, w->stale - 1);
	while ((j = TAILQ_FIRST(&w->running)) != NULL) {
		job_take_from_worker(b, j);
		worker_unref(w);  /* the face's reference still holds it */
		if (j->shared) {
			/* The backend counts the loss and queues it again. */
			log_info("job %s: worker %s lost it, back to the cluster's queue",
			    j->key, w->name);
			b->be.requeue(b->be.ctx, j, true);
			shared_unrun(b, j);
			continue;
		}
		if (life_retry_on_loss(b, j, w))
			continue;   /* a failed attempt: retried after a backoff, or dead */
		if (++j->losses > JOB_MAX_LOSSES) {
			log_warn("job %s: worker %s lost it, %d times: failing it",
			    j->key, w->name, j->losses);
			job_finish(b, j, JOB_FAILED);
			continue;
		}
		log_info("job %s: worker %s lost it, requeued (%d of %d)",
		    j->key, w->name, j->losses, JOB_MAX_LOSSES);
		j->type->nrequeued++;
		b->stats.requeued++;
		j->state = JOB_QUEUED;
		emit_job_requeued(b, j);  /* before any dispatch job_enqueue makes */
		job_enqueue(b, j);
	}
	if (w->type != NULL && w->type->limit > 0) {
		struct jtype *t = w->type;

		worker_detach_type(b, w);
		type_fill(b, t);   /* its running jobs left the limit's count */
	} else
		worker_detach_type(b, w);
	worker_unref(w);
}

/*
 * broker_master_gone: m's face is gone: its queued jobs are cancelled
 * (unless detached), the rest orphaned (their endings reach no one), and
 * the face's reference goes.
 */
void
broker_master_gone(struct broker *b, struct master *m)
{
	struct job *j;

	struct job_list cancel = TAILQ_HEAD_INITIALIZER(cancel);

	if (m->face == NULL)
		return;
	m->face = NULL;
	/* Every job lets go of m first: ending one may end others of m's
	 * (the jobs that wait for it), which must not find it. */
	while ((j = TAILQ_FIRST(&m->owned)) != NULL) {
		TAILQ_REMOVE(&m->owned, j, master_entry);
		j->master = NULL;
		master_unref(m);  /* the face's reference still holds it */
		if (j->state == JOB_QUEUED && !j->detach) {
			if (j->shared)   /* unless a worker elsewhere took it meanwhile */
				b->be.end(b->be.ctx, j, JOB_CANCELLED, true);
			job_ref(j);
			TAILQ_INSERT_TAIL(&cancel, j, master_entry);
		}
	}
	while ((j = TAILQ_FIRST(&cancel)) != NULL) {
		TAILQ_REMOVE(&cancel, j, master_entry);
		if (j->state == JOB_QUEUED)
			job_finish(b, j, JOB_CANCELLED);
		job_unref(b, j);
	}
	master_unref(m);
}

/* ---------------------------------------------------------------- endings */

/*
 * Retention by bytes (--keep-bytes).  A finished job (not a dead one: its
 * body is what a kick runs again) counts its record and what it holds:
 * its body if a blob, its result, its partials.  Past the bound the
 * oldest jobs' bodies, results and partials go first (job_drop: the job
 * stays, with its status and ending), then, if the records alone are
 * past it, whole jobs, oldest first.  drop_next is the oldest finished job
 * not dropped yet, so each drop costs O(1).
 */

/* job_payload: the bytes job_drop gives back. */
static uint64_t
job_payload(const struct job *j)
{
	uint64_t n = 0;

	if (j->dropped)
		return 0;
	if (j->body_blob)
		n += sizeof(struct blob) + j->body_len + 1;
	if (j->result != NULL)
		n += sizeof(struct blob) + j->result_len + 1;
	if (j->ext != NULL)
		n += j->ext->partials.cap;
	return n;
}

/* job_record: the bytes a finished job holds that job_drop does not give
 * back (an estimate: the allocations, not malloc's own overhead; only
 * what cannot change once the job is retained, so that the sum holds). */
static uint64_t
job_record(const struct job *j)
{
	const char *id = job_idjson(j);
	uint64_t n = sizeof *j + strlen(j->key) + 1;

	if (!j->id_is_key)
		n += strlen(id) + 1;
	n += j->body_blob ? sizeof(struct blob *) : strlen(id + strlen(id) + 1) + 1;
	if (j->ext != NULL)
		n += sizeof *j->ext + (j->ext->target != NULL ? strlen(j->ext->target) + 1 : 0) +
		    (j->ext->log != NULL ? j->ext->log_len + 1u : 0);  /* kept with the
		                                   status, not dropped by --keep-bytes */
	if (j->owner != NULL)
		n += strlen(j->owner) + 1;
	return n;
}

/* finished_add: j, finished (not dead), joins the retained jobs. */
static void
finished_add(struct broker *b, struct job *j)
{
	TAILQ_INSERT_TAIL(&b->finished, j, done_entry);
	b->nfinished++;
	b->stats.retained_bytes += job_record(j) + job_payload(j);
	if (b->drop_next == NULL && !j->dropped)
		b->drop_next = j;
}

/* drop_advance: drop_next past j (dropped or leaving). */
static void
drop_advance(struct broker *b, struct job *j)
{
	if (b->drop_next != j)
		return;
	do
		j = TAILQ_NEXT(j, done_entry);
	while (j != NULL && j->dropped);
	b->drop_next = j;
}

static void
finished_remove(struct broker *b, struct job *j)
{
	drop_advance(b, j);
	TAILQ_REMOVE(&b->finished, j, done_entry);
	b->nfinished--;
	b->stats.retained_bytes -= job_record(j) + job_payload(j);
}

/*
 * job_drop: j's body, result and partials go; its record, status and
 * ending stay, and a read of its result says it is no longer kept.
 * Whoever still writes them out (a master's output, a deferred ending)
 * holds its own reference to the blobs.
 */
static void
job_drop(struct broker *b, struct job *j)
{
	size_t body = j->body_len, result = j->result != NULL ? j->result_len : 0;
	size_t partials = j->ext != NULL ? buf_used(&j->ext->partials) : 0;

	drop_advance(b, j);
	b->stats.retained_bytes -= job_payload(j);
	if (j->body_blob)
		blob_unref(job_body_blob(j));
	blob_unref(j->result);
	j->result = NULL;
	j->result_len = 0;
	if (j->ext != NULL)
		buf_free(&j->ext->partials);
	j->body_len = 0;
	j->dropped = 1;
	b->stats.dropped++;
	emit_job_dropped(b, j, body, result, partials);
}

/*
 * retain_bytes: finished jobs back within --keep-bytes: bodies and results
 * first, then, if whole, whole jobs (only from retention_cb: a job that
 * is ending may be on its way out of the table already).
 */
static void
retain_bytes(struct broker *b, bool whole)
{
	struct job *j;

	if (b->restoring)
		return;   /* retention_cb does it once the store is read */
	while (b->stats.retained_bytes > b->keep_bytes && b->drop_next != NULL)
		job_drop(b, b->drop_next);
	while (whole && b->stats.retained_bytes > b->keep_bytes &&
	    (j = TAILQ_FIRST(&b->finished)) != NULL)
		job_forget(b, j);
}

static void
retention_schedule(struct broker *b)
{
	struct job *oldest = TAILQ_FIRST(&b->finished);
	struct job *dead = TAILQ_FIRST(&b->dead);
	double wait = -1, dwait;

	if (oldest == NULL && dead == NULL) {
		ev_timer_stop(b->loop, &b->retention);
		return;
	}
	if (oldest != NULL)
		wait = b->nfinished > b->keep_max || b->stats.retained_bytes > b->keep_bytes ?
		    0 : job_finished(oldest) + b->keep - now_wall();
	if (dead != NULL) {
		/* Dead jobs have their own limits: --dead-keep, --dead-max. */
		dwait = b->ndead > b->dead_max ? 0 : job_finished(dead) + b->dead_keep - now_wall();
		if (oldest == NULL || dwait < wait)
			wait = dwait;
	}
	if (wait < 0)
		wait = 0;
	ev_timer_stop(b->loop, &b->retention);
	ev_timer_set(&b->retention, wait, 0.);
	ev_timer_start(b->loop, &b->retention);
}

/*
 * broker_trim: after many jobs were forgotten, give the free heap back to
 * the system.  glibc keeps freed pages below a live chunk resident, so
 * without this a burst of 100k jobs would hold its peak memory for good.
 */
static void
broker_trim(struct broker *b, size_t forgotten)
{
#ifdef __GLIBC__
	static size_t since;

	since += forgotten;
	if (since >= 10000 || (since > 0 && b->nfinished == 0)) {
		since = 0;
		malloc_trim(0);
	}
#else
	(void)b;
	(void)forgotten;
#endif
}

/* retention_cb: forget finished jobs past --keep seconds or --keep-max. */
static void
retention_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = w->data;
	double now = now_wall();
	struct job *j;
	size_t n = 0;

	(void)loop;
	(void)revents;
	retain_bytes(b, true);   /* (after a restore too) */
	while ((j = TAILQ_FIRST(&b->finished)) != NULL &&
	    (b->nfinished > b->keep_max || job_finished(j) + b->keep <= now)) {
		job_forget(b, j);
		/* Bound the time one turn spends; the timer comes straight back. */
		if (++n == 10000)
			break;
	}
	while (n < 10000 && (j = TAILQ_FIRST(&b->dead)) != NULL &&
	    (b->ndead > b->dead_max || job_finished(j) + b->dead_keep <= now)) {
		job_forget(b, j);
		n++;
	}
	retention_schedule(b);
	broker_trim(b, n);
}

/*
 * job_finish: the one place a job ends.  Unlinks it from its queue or
 * worker, tells its master and the tree, and starts its retention.
 */
static void
job_finish(struct broker *b, struct job *j, enum job_state why)
{
	struct jtype *t = j->type;
	struct worker *w = NULL;

	if (j->state == JOB_QUEUED && j->life != NULL && j->life->wait != LIFE_READY) {
		life_unwait(b, j);   /* delayed, or waiting for other jobs */
	} else if (j->state == JOB_QUEUED) {
		if (!j->shared)
			type_unqueue(t, j);
		b->stats.queued--;
	} else if (j->state == JOB_RUNNING && j->worker == NULL && j->shared) {
		b->stats.running--;   /* it ran on another daemon's worker */
	} else if (j->state == JOB_RUNNING && j->worker != NULL) {
		w = job_take_from_worker(b, j);
		if (w->face == NULL) {  /* (a worker leaving takes its jobs first) */
			worker_unref(w);
			w = NULL;
		}
		else if (why != JOB_DONE && !w->takes_cancel)
			stale_add(w, j->key);  /* its late answer is due (a worker
			                          that takes cancels gets one) */
	}
	if (j->state == JOB_RUNNING && j->life != NULL)
		life_attempt_end(j, why == JOB_DONE ? NULL : why == JOB_TIMEOUT ?
		    "\"timeout\"" : why == JOB_CANCELLED ? "\"cancelled\"" : NULL,
		    now_wall());
	j->state = why;
	j->finished = (float)(ev_now(b->loop) - j->submitted);
	broker_state_sync(b, j);
	b->stats.body_bytes -= j->body_len;
	if (j->ext != NULL)
		ev_timer_stop(b->loop, &j->ext->deadline);
	switch (why) {
	case JOB_DONE:      t->ndone++; b->stats.done++; break;
	case JOB_FAILED:    t->nfailed++; b->stats.failed++; break;
	case JOB_CANCELLED: t->ncancelled++; b->stats.cancelled++; break;
	case JOB_TIMEOUT:   t->ntimeout++; b->stats.timeout++; break;
	default: break;
	}
	log_debug("job %s: %s", j->key, job_state_name(why));
	if (why == JOB_FAILED)
		dead_add(b, j);    /* failed after its attempts: the dead set */
	else
		finished_add(b, j);
	emit_job_finished(b, j, w);
	if (j->master != NULL) {
		TAILQ_REMOVE(&j->master->owned, j, master_entry);
		master_unref(j->master);
		j->master = NULL;
	}
	/* Its master and waiters have their own reference to its result
	 * (conn_out_blob, conn_defer_ending): it may go at once. */
	retain_bytes(b, false);
	if (b->nfinished > b->keep_max || b->ndead > b->dead_max ||
	    !ev_is_active(&b->retention))
		retention_schedule(b);
	if (w != NULL) {
		broker_worker_ready(b, w);
		worker_unref(w);
	}
	if (t->limit > 0)
		type_fill(b, t);   /* a slot of its limit is free */
	life_finished(b, j);   /* jobs that wait for it go on, or are cancelled */
}

/* broker_complete: the worker's final response (in holder, a blob, if
 * not NULL: the job takes a reference instead of a copy). */
void
broker_complete(struct broker *b, struct job *j, const char *result, size_t len,
    struct blob *holder)
{
	j->result = holder != NULL ? blob_ref(holder) : blob_new(result, len);
	j->result_len = len;
	if (j->shared)
		b->be.complete(b->be.ctx, j, JOB_DONE);
	job_finish(b, j, JOB_DONE);
}

/* Partial results kept for the tree, per job, at most this many bytes. */
#define PARTIALS_MAX (16u * 1024 * 1024)

/* partial_keep: a partial result kept (within PARTIALS_MAX) and told. */
static void
partial_keep(struct broker *b, struct job *j, const char *body, size_t len)
{
	b->stats.partials++;
	if (j->ext == NULL)
		j->ext = xcalloc(1, sizeof *j->ext);
	if (buf_used(&j->ext->partials) + len + 1 <= PARTIALS_MAX) {
		buf_append(&j->ext->partials, body, len);
		buf_append(&j->ext->partials, "\n", 1);
	}
	emit_job_partial(b, j, body, len);
}

void
broker_partial(struct broker *b, struct job *j, const char *body, size_t len)
{
	partial_keep(b, j, body, len);
	if (j->shared && j->worker != NULL)
		b->be.partial(b->be.ctx, j, body, len);
}

/*
 * broker_end: end an unfinished job without a result (cancel, timeout,
 * failure).  Returns BERR_UNKNOWN_ID if it has already finished.
 */
enum broker_err
broker_end(struct broker *b, struct job *j, enum job_state why)
{
	if (JOB_FINISHED(j)) {
		snprintf(b->err_detail, sizeof b->err_detail, "job %s has ended",
		    job_idjson(j));
		return BERR_UNKNOWN_ID;
	}
	if (j->shared)   /* wherever it is queued or runs */
		b->be.end(b->be.ctx, j, why, false);
	job_finish(b, j, why);
	return BERR_OK;
}

/* broker_forget: drop a job from the table (ending it first if need be);
 * in cluster mode, from the whole cluster. */
void
broker_forget(struct broker *b, struct job *j)
{
	if (j->shared)
		b->be.forget(b->be.ctx, j);
	job_forget(b, j);
}

/* job_forget: drop a job from this daemon's table (retention, an id used
 * again, or broker_forget). */
static void
job_forget(struct broker *b, struct job *j)
{
	if (!JOB_FINISHED(j))
		job_finish(b, j, JOB_CANCELLED);
	if (j->state == JOB_FAILED)
		dead_remove(b, j);
	else
		finished_remove(b, j);
	jobtab_del(&b->jobs, j);
	all_remove(b, j);
	broker_state_drop(b, j);
	emit_job_forgotten(b, j);
	job_unref(b, j);
}

/* ----------------------------------------------------------- listing */

/*
 * all_remove: j leaves the list of every job; a cursor on it moves on.
 * O(open cursors): one per jobs/ directory open in the tree.
 */
static void
all_remove(struct broker *b, struct job *j)
{
	struct job_cursor *c;

	TAILQ_FOREACH(c, &b->cursors, entry)
		if (c->next == j)
			c->next = TAILQ_NEXT(j, all_entry);
	TAILQ_REMOVE(&b->all, j, all_entry);
}

/* broker_cursor_open: (re)start c at the oldest job. */
void
broker_cursor_open(struct broker *b, struct job_cursor *c)
{
	if (!c->open)
		TAILQ_INSERT_TAIL(&b->cursors, c, entry);
	c->open = true;
	c->next = TAILQ_FIRST(&b->all);
}

/* broker_cursor_close: forget c (closing a closed cursor does nothing). */
void
broker_cursor_close(struct broker *b, struct job_cursor *c)
{
	if (c->open)
		TAILQ_REMOVE(&b->cursors, c, entry);
	c->open = false;
	c->next = NULL;
}

/* broker_cursor_job: the job at c, or NULL at the end. */
struct job *
broker_cursor_job(const struct job_cursor *c)
{
	return c->next;
}

/* broker_cursor_advance: move c past its job. */
void
broker_cursor_advance(struct job_cursor *c)
{
	if (c->next != NULL)
		c->next = TAILQ_NEXT(c->next, all_entry);
}

/* ----------------------------------------------------------- queries */

size_t
broker_ntypes(const struct broker *b)
{
	return HASH_COUNT(b->types);
}

/* broker_nretained: finished jobs kept for --keep / --keep-max. */
size_t
broker_nretained(const struct broker *b)
{
	return b->nfinished + b->ndead;
}

/* broker_types_each: every type, the oldest first. */
void
broker_types_each(struct broker *b, broker_type_cb *cb, void *ctx)
{
	struct jtype *t, *tmp;

	HASH_ITER(hh, b->types, t, tmp)
		if (!cb(ctx, t))
			return;
}

void
broker_type_stats(const struct jtype *t, struct type_stats *s)
{
	s->queued = t->nqueued;
	s->running = t->nrunning;
	s->workers = t->nworkers;
	s->done = t->ndone;
	s->failed = t->nfailed;
	s->cancelled = t->ncancelled;
	s->timeout = t->ntimeout;
	s->submitted = t->nsubmitted;
	s->requeued = t->nrequeued;
	s->dead = t->ndead;
	s->delayed = t->ndelayed;
	s->waiting = t->nwaiting;
	s->retried = t->nretried;
	s->kicked = t->nkicked;
}

/* job_dispatch_cmp: the order the broker dispatches in. */
static int
job_dispatch_cmp(const void *pa, const void *pb)
{
	const struct job *a = *(struct job *const *)pa, *b = *(struct job *const *)pb;

	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	return seq_before(a->seq, b->seq) ? -1 : a->seq != b->seq;
}

/*
 * broker_queue_each: t's queued jobs in dispatch order (priority, then
 * submission), targeted ones among them.  O(n log n): a listing.
 */
void
broker_queue_each(struct broker *b, struct jtype *t, broker_job_cb *cb, void *ctx)
{
	const struct target *tg, *tmp;
	struct job **all = xmalloc((t->nqueued + 1) * sizeof *all);
	size_t n = 0, i;

	(void)b;
	for (i = 0; i < t->queue.len; i++)
		all[n++] = t->queue.items[i];
	HASH_ITER(hh, t->targets, tg, tmp)
		for (i = 0; i < tg->queue.len && n < t->nqueued; i++)
			all[n++] = tg->queue.items[i];
	qsort(all, n, sizeof *all, job_dispatch_cmp);
	for (i = 0; i < n && cb(ctx, all[i]); i++)
		;
	free(all);
}

/* broker_workers_each: the workers joined to t, in joining order. */
void
broker_workers_each(struct broker *b, struct jtype *t, broker_worker_cb *cb, void *ctx)
{
	struct worker *w;

	(void)b;
	TAILQ_FOREACH(w, &t->workers, type_entry)
		if (!cb(ctx, w))
			return;
}

/* broker_worker_jobs_each: the jobs w runs, in dispatch order. */
void
broker_worker_jobs_each(struct broker *b, struct worker *w, broker_job_cb *cb, void *ctx)
{
	struct job *j;

	(void)b;
	TAILQ_FOREACH(j, &w->running, worker_entry)
		if (!cb(ctx, j))
			return;
}

const char *
worker_name(const struct worker *w)
{
	return w->name;
}

/* worker_addr: the address of w's connection, whatever its name. */
const char *
worker_addr(const struct worker *w)
{
	return w->addr;
}

/* worker_named: w has a name of its own (a token's or its join's), not
 * only its address. */
bool
worker_named(const struct worker *w)
{
	return strcmp(w->name, w->addr) != 0;
}

unsigned
worker_running(const struct worker *w)
{
	return w->nrunning;
}

/* job_info: everything about a job, for the tree's info and "status". */
json_t *
job_info(const struct job *j)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_loads(job_idjson(j), JSON_DECODE_ANY, NULL));
	json_object_set_new(o, "type", json_string(j->type->name));
	json_object_set_new(o, "status", json_string(job_status(j)));
	json_object_set_new(o, "priority", json_integer(j->priority));
	json_object_set_new(o, "submitted", json_real(j->submitted));
	if (j->started >= 0)
		json_object_set_new(o, "started", json_real(job_started(j)));
	if (j->finished >= 0)
		json_object_set_new(o, "finished", json_real(job_finished(j)));
	if (j->worker_name != NULL)
		json_object_set_new(o, "worker", json_string(j->worker_name));
	if (j->owner != NULL)
		json_object_set_new(o, "owner", json_string(j->owner));
	/* Each loss but one past JOB_MAX_LOSSES put the job back in its queue. */
	json_object_set_new(o, "requeues",
	    json_integer(j->losses > JOB_MAX_LOSSES ? JOB_MAX_LOSSES : j->losses));
	json_object_set_new(o, "losses", json_integer(j->losses));
	json_object_set_new(o, "detach", json_boolean(j->detach));
	if (job_target(j) != NULL)
		json_object_set_new(o, "target", json_string(job_target(j)));
	if (j->ext != NULL && j->ext->timeout_ms > 0)
		json_object_set_new(o, "timeout_ms", json_integer(j->ext->timeout_ms));
	json_object_set_new(o, "body_bytes", json_integer((json_int_t)j->body_len));
	if (j->dropped)   /* its body and result went (--keep-bytes) */
		json_object_set_new(o, "dropped", json_true());
	if (j->result != NULL)
		json_object_set_new(o, "result_bytes", json_integer((json_int_t)j->result_len));
	if (j->life != NULL)
		json_object_update_missing_new(o, job_life_info(j));
	if (j->ext != NULL && j->ext->log != NULL)
		json_object_set_new(o, "log", json_stringn(j->ext->log,
		    j->ext->log_len));
	return o;
}

double
job_started(const struct job *j)
{
	return j->started >= 0 ? j->submitted + j->started : 0;
}

double
job_finished(const struct job *j)
{
	return j->finished >= 0 ? j->submitted + j->finished : 0;
}

const char *
job_target(const struct job *j)
{
	return j->ext != NULL ? j->ext->target : NULL;
}

/* job_partials: the partial results so far, one JSON text per line. */
const struct buf *
job_partials(const struct job *j)
{
	static const struct buf none;

	return j->ext != NULL ? &j->ext->partials : &none;
}

/* job_log: what the job's worker said its command printed, or NULL. */
const char *
job_log(const struct job *j, size_t *len)
{
	if (j->ext == NULL || j->ext->log == NULL) {
		*len = 0;
		return NULL;
	}
	*len = j->ext->log_len;
	return j->ext->log;
}

/* job_log_set: j's log is the last JOB_LOG_MAX bytes of text, cut at the start
 * of a UTF-8 character (it replaces an earlier attempt's). */
static void
job_log_set(struct job *j, const char *text, size_t len)
{
	if (len > JOB_LOG_MAX) {
		text += len - JOB_LOG_MAX;
		len = JOB_LOG_MAX;
		while (len > 0 && ((unsigned char)*text & 0xc0) == 0x80) {
			text++;
			len--;
		}
	}
	if (j->ext == NULL)
		j->ext = xcalloc(1, sizeof *j->ext);
	free(j->ext->log);
	j->ext->log = xmalloc(len + 1);
	memcpy(j->ext->log, text, len);
	j->ext->log[len] = '\0';
	j->ext->log_len = (uint32_t)len;
}

/*
 * broker_job_log: the log of j's attempt, from its worker's response or
 * failure, set before the job ends on it (so that the store records it
 * with the ending); text NULL: the attempt sent none, and an earlier
 * attempt's log goes (the log is always the last answer's).  Only a
 * running job takes one: a finished job's record is counted in
 * retained_bytes and must not change.
 */
void
broker_job_log(struct broker *b, struct job *j, const char *text, size_t len)
{
	(void)b;
	if (j->state != JOB_RUNNING)
		return;
	if (text != NULL)
		job_log_set(j, text, len);
	else if (j->ext != NULL && j->ext->log != NULL) {
		free(j->ext->log);
		j->ext->log = NULL;
		j->ext->log_len = 0;
	}
}

/* broker_shutdown: free everything (the daemon is exiting). */
void
broker_shutdown(struct broker *b)
{
	struct job *j;
	size_t pos = 0;

	ev_timer_stop(b->loop, &b->retention);
	ev_timer_stop(b->loop, &b->delay_timer);
	ev_timer_stop(b->loop, &b->fail_log_timer);
	while (!TAILQ_EMPTY(&b->fail_logs))   /* what was counted, said */
		fail_log_summary(b, TAILQ_FIRST(&b->fail_logs));
	delay_free(&b->delays);
	deps_free(b);
	while ((j = jobtab_next(&b->jobs, &pos)) != NULL) {
		if (j->ext != NULL)
			ev_timer_stop(b->loop, &j->ext->deadline);
		all_remove(b, j);
		job_unref(b, j);  /* exiting: no event (a store keeps the job) */
	}
	jobtab_free(&b->jobs);
	/* What holds a type past its jobs and workers: mkdir, or its settings
	 * (the job lifecycle).  Exiting: they go too, with no event. */
	while (b->types != NULL) {
		struct jtype *t = b->types;

		HASH_DEL(b->types, t);
		type_free(t);
	}
}

/* ------------------------------------------------------- the backend */

/*
 * Cluster mode: see jobfs.h.  The broker sends intents through
 * b->be and the backend answers with these verdicts, which go through the
 * same paths (job_start, job_finish, job_forget) as one daemon's, so the
 * faces see the same events.
 */

void
broker_set_backend(struct broker *b, const struct broker_backend *be)
{
	b->be = *be;
}

/* shared_unrun: j left its local worker (lost, or its lease went): a copy
 * submitted here waits for the cluster again; any other is dropped. */
static void
shared_unrun(struct broker *b, struct job *j)
{
	if (j->master != NULL || j->pending) {
		j->state = JOB_QUEUED;
		b->stats.queued++;
		broker_state_sync(b, j);
		emit_job_requeued(b, j);
		return;
	}
	j->state = JOB_QUEUED;
	b->stats.queued++;
	job_finish(b, j, JOB_CANCELLED);   /* no master: nobody hears it */
	job_forget(b, j);
}

/* broker_idle_each: t's workers with free slots, longest idle first; a
 * paused type has none, and a limited one (per daemon in
 * cluster mode) only as many slots as its limit leaves. */
void
broker_idle_each(struct broker *b, struct jtype *t, broker_idle_cb *cb, void *ctx)
{
	struct worker *w, *next;
	uint64_t left = t->limit > 0 ? (t->nrunning < t->limit ? t->limit - t->nrunning : 0) :
	    UINT64_MAX;
	unsigned n;

	(void)b;
	if (t->paused)
		return;
	for (w = TAILQ_FIRST(&t->idle); w != NULL && left > 0; w = next) {
		next = TAILQ_NEXT(w, idle_entry);
		if ((n = worker_free_slots(w)) == 0)
			continue;
		if (n > left)
			n = (unsigned)left;
		left -= n;
		if (!cb(ctx, w, n))
			break;
	}
}

void broker_worker_hold(struct worker *w) { w->refs++; }
void broker_worker_release(struct worker *w) { worker_unref(w); }
void broker_type_hold(struct jtype *t) { type_ref(t); }

/* broker_be_accepted: the backend's answer to a submission.  A refused
 * job lets go of its master first, so that it hears only the refusal. */
void
broker_be_accepted(struct broker *b, struct job *j, int berr)
{
	if (!j->pending)
		return;
	j->pending = 0;
	if (berr == BERR_ID_EXISTS)
		refuse_id_exists(b, job_idjson(j), j->owner);
	EMIT(b, job_accepted, j, berr);
	if (berr == BERR_OK)
		return;
	if (j->master != NULL) {
		TAILQ_REMOVE(&j->master->owned, j, master_entry);
		master_unref(j->master);
		j->master = NULL;
	}
	if (!JOB_FINISHED(j))
		job_finish(b, j, JOB_CANCELLED);
	job_forget(b, j);
}

/*
 * shared_copy: a local copy of a job the backend holds (r), queued as far
 * as this daemon knows, in the table and announced (job_submitted): for a
 * worker here to run it, or for a face to look at it.
 */
static struct job *
shared_copy(struct broker *b, struct jtype *t, const struct restore_req *r)
{
	struct submit_req sr = {
		.type = r->type, .key = r->key, .idjson = r->idjson,
		.body = r->body, .body_len = r->body_len,
	};
	struct job *j = job_alloc(b, &sr);

	j->type = t;
	type_ref(t);
	j->priority = r->priority;
	j->seq = (uint32_t)b->next_seq++;
	j->refs = 1;
	j->shared = 1;
	j->detach = r->detach;
	j->stream = r->stream;
	j->notify = r->notify;
	j->losses = r->losses > JOB_MAX_LOSSES + 1 ? JOB_MAX_LOSSES + 1 : r->losses;
	j->submitted = r->submitted > 0 ? r->submitted : ev_now(b->loop);
	j->started = j->finished = -1;
	j->owner = r->owner != NULL ? xstrdup(r->owner) : NULL;
	if (r->target != NULL || r->partials_len > 0) {
		j->ext = xcalloc(1, sizeof *j->ext);
		j->ext->target = r->target != NULL ? xstrdup(r->target) : NULL;
		if (r->partials_len > 0)
			buf_append(&j->ext->partials, r->partials, r->partials_len);
	}
	jobtab_add(&b->jobs, j);
	TAILQ_INSERT_TAIL(&b->all, j, all_entry);
	b->stats.body_bytes += j->body_len;
	j->state = JOB_QUEUED;
	b->stats.queued++;
	broker_state_sync(b, j);
	emit_job_submitted(b, j);
	return j;
}

/*
 * broker_be_dispatch: the backend leased job r (attempt att) to worker w.
 * The copy submitted here is used if there is one; else one is made.
 * NULL if w cannot take it (gone, full, holding the key stale, or the key
 * names an unfinished job here that is not this one): the backend gives
 * it back.
 */
struct job *
broker_be_dispatch(struct broker *b, struct worker *w, const struct restore_req *r,
    uint32_t att)
{
	struct job *j;

	if (w->face == NULL || w->type == NULL || worker_free_slots(w) == 0 ||
	    (w->stale > 0 && stale_index(w, r->key) >= 0) ||
	    strcmp(w->type->name, r->type) != 0)
		return NULL;
	j = broker_find(b, r->key);
	if (j != NULL && JOB_FINISHED(j)) {
		job_forget(b, j);   /* an old copy of a key used again */
		j = NULL;
	}
	if (j != NULL && (j->state != JOB_QUEUED || !j->shared))
		return NULL;
	if (j == NULL)
		j = shared_copy(b, w->type, r);
	j->losses = r->losses > JOB_MAX_LOSSES + 1 ? JOB_MAX_LOSSES + 1 : r->losses;
	job_att(j) = att;
	job_start(b, j, w);
	return j;
}

/* broker_be_running: a job submitted here started on another daemon's
 * worker (the notice its master may want). */
void
broker_be_running(struct broker *b, struct job *j, const char *worker)
{
	if (j->state != JOB_QUEUED || !j->shared)
		return;
	j->state = JOB_RUNNING;
	j->worker = NULL;
	j->started = (float)(ev_now(b->loop) - j->submitted);
	free(j->worker_name);
	j->worker_name = xstrdup(worker);
	b->stats.queued--;
	b->stats.running++;
	broker_state_sync(b, j);
	emit_job_dispatched(b, j, NULL);
}

/* broker_be_partial: a partial result of a job submitted here, from a
 * worker elsewhere. */
void
broker_be_partial(struct broker *b, struct job *j, const char *body, size_t len)
{
	if (!JOB_FINISHED(j))
		partial_keep(b, j, body, len);
}

/* broker_be_finished: the job ended elsewhere (a worker on another daemon
 * answered, or it was cancelled, timed out or failed there). */
void
broker_be_finished(struct broker *b, struct job *j, enum job_state why,
    const char *result, size_t len)
{
	if (JOB_FINISHED(j))
		return;
	if (result != NULL && len > 0 && j->result == NULL) {
		j->result = blob_new(result, len);
		j->result_len = (uint32_t)len;
	}
	job_finish(b, j, why);
}

/* broker_be_lost: j runs on a local worker, but its lease went elsewhere
 * (this daemon was taken for dead): the worker's answer will be late. */
void
broker_be_lost(struct broker *b, struct job *j)
{
	struct worker *w;

	if (j->state != JOB_RUNNING || j->worker == NULL)
		return;
	w = j->worker;
	if (j->master == NULL) {
		job_finish(b, j, JOB_CANCELLED);   /* a cancel, or a stale slot */
		job_forget(b, j);
		return;
	}
	job_take_from_worker(b, j);
	if (w->face != NULL && w->takes_cancel)
		emit_job_abandoned(b, j, w);
	else if (w->face != NULL)
		stale_add(w, j->key);
	shared_unrun(b, j);
	broker_worker_ready(b, w);
	worker_unref(w);
}

void
broker_lookup(struct broker *b, const char *key, broker_lookup_cb *cb, void *ctx)
{
	struct job *j = broker_find(b, key);

	/* A local copy whose result went (--keep-bytes): the backend may
	 * still have it; the copy is made again from there. */
	if (j != NULL && j->dropped && broker_shared(b)) {
		job_forget(b, j);
		j = NULL;
	}
	if (j != NULL || !broker_shared(b))
		cb(ctx, j, BERR_OK);
	else
		b->be.lookup(b->be.ctx, key, cb, ctx);
}

void
broker_query(struct broker *b, const char *what, const char *arg, broker_query_cb *cb,
    void *ctx)
{
	if (!broker_shared(b) || b->be.query == NULL)
		cb(ctx, "", 0, BERR_UNAVAILABLE);
	else
		b->be.query(b->be.ctx, what, arg, cb, ctx);
}

void broker_master_hold(struct master *m) { m->refs++; }
void broker_master_release(struct master *m) { master_unref(m); }

/*
 * broker_be_view: a local copy of a job submitted and run elsewhere, as
 * the backend has it (r: its state, worker, result, partials), for a face
 * that asked about it (broker_lookup).  Its events keep it up to date.
 */
struct job *
broker_be_view(struct broker *b, const struct restore_req *r)
{
	struct job *j;

	if ((j = broker_find(b, r->key)) != NULL)
		return j;
	j = shared_copy(b, broker_type(b, r->type, true), r);
	if (r->worker_name != NULL && (r->state == JOB_RUNNING || r->state >= JOB_DONE))
		broker_be_running(b, j, r->worker_name);
	if (r->state >= JOB_DONE)
		broker_be_finished(b, j, r->state, r->result, r->result_len);
	return j;
}

/*
 * broker_be_gone: the backend lost j (cluster mode: Redis lost the
 * cluster's data).  It ends failed here with reason: its result is
 * {"error":"lost","reason":REASON}, its master's ending frame job_failed
 * with that reason (job_end_reason), and a local worker running it is
 * sent a cancel if it takes them, else its late answer is dropped, as for
 * any job that ends under its worker.
 */
void
broker_be_gone(struct broker *b, struct job *j, const char *reason)
{
	struct job_life *L;
	json_t *o;
	char *text;

	if (JOB_FINISHED(j))
		return;
	o = json_pack("{s:s,s:s}", "error", "lost", "reason", reason);
	text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (text != NULL && j->result == NULL) {
		j->result = blob_new(text, strlen(text));
		j->result_len = (uint32_t)strlen(text);
	}
	free(text);
	L = life_get(j);
	free(L->reason);
	L->reason = xstrdup(reason);
	log_debug("job %s: failed: %s", j->key, reason);
	job_finish(b, j, JOB_FAILED);
}

/* broker_be_forget: the job was removed elsewhere (rmdir): here too. */
void
broker_be_forget(struct broker *b, struct job *j)
{
	job_forget(b, j);
}

/* ------------------------------------------------------ the job lifecycle */

/*
 * The job lifecycle: failure reports and retries with backoff,
 * the dead set, delays, paused and limited types, dependencies.  All of it
 * is opt-in: a job that uses none of it has no life (j->life NULL) and
 * goes exactly as before, except that a job that ends failed is kept in
 * its type's dead set (--dead-keep, --dead-max) rather than with the other
 * finished jobs (--keep, --keep-max).
 *
 * A job waiting for its time (delay, at, or a retry's backoff) or for
 * other jobs is JOB_QUEUED but in no queue: life->wait says what it waits
 * for.  Delayed jobs are in one heap by due time (delay.c) under one timer;
 * waiting jobs are found by the key they wait for (broker->deps).
 *
 * Backoff.  The n-th failed attempt (n >= 1) of a job with base B ms
 * ("backoff", else its type's, else LIFE_BACKOFF_MS) waits
 *     D = min(B * 2^(n-1), LIFE_BACKOFF_MAX_MS),  then uniformly in [D/2, D]
 * ("equal jitter": retries of jobs that failed together spread out, and
 * none comes sooner than half its step).
 */

/* Jobs that wait for the job `key`, by their keys (checked when it ends:
 * a key may have been reused meanwhile). */
struct dep {
	UT_hash_handle hh;       /* broker->deps */
	char         **waiters;
	size_t         n;
	char           key[];
};

static void delay_cb(struct ev_loop *, ev_timer *, int);

/* broker_life_init: the dead set's limits (broker_init sets the defaults). */
void
broker_life_init(struct broker *b, double dead_keep, size_t dead_max)
{
	b->dead_keep = dead_keep;
	b->dead_max = dead_max;
	if (b->dead.tqh_last == NULL) {
		TAILQ_INIT(&b->dead);
		ev_init(&b->delay_timer, delay_cb);
		b->delay_timer.data = b;
		TAILQ_INIT(&b->fail_logs);
		ev_init(&b->fail_log_timer, fail_log_cb);
		b->fail_log_timer.data = b;
	}
}

static void
attempt_free(struct attempt *a)
{
	free(a->worker);
	free(a->error);
}

static void
life_free(struct job *j)
{
	struct job_life *L = j->life;
	size_t i;

	if (L == NULL)
		return;
	for (i = 0; i < L->natt; i++)
		attempt_free(&L->att[i]);
	free(L->att);
	for (i = 0; i < L->nafter; i++)
		free(L->after[i]);
	free(L->after);
	free(L->error);
	free(L->reason);
	free(L);
	j->life = NULL;
}

/* life_get: j's life, made if it has none (a running job's attempt under
 * way is then its first). */
static struct job_life *
life_get(struct job *j)
{
	struct job_life *L = j->life;

	if (L != NULL)
		return L;
	L = j->life = xcalloc(1, sizeof *L);
	L->retries = -1;
	if (j->state == JOB_RUNNING)
		life_attempt_begin(j, job_started(j));
	return L;
}

static void
life_attempt_begin(struct job *j, double now)
{
	struct job_life *L = j->life;
	struct attempt *a;

	if (L->natt == LIFE_ATTEMPTS_KEPT) {
		attempt_free(&L->att[0]);
		memmove(&L->att[0], &L->att[1], (L->natt - 1) * sizeof *L->att);
		L->natt--;
	}
	L->att = xrealloc(L->att, (L->natt + 1) * sizeof *L->att);
	a = &L->att[L->natt++];
	memset(a, 0, sizeof *a);
	a->started = now;
	a->worker = j->worker_name != NULL ? xstrdup(j->worker_name) : NULL;
	L->nattempts++;
}

/* life_attempt_end: the attempt under way ended (error NULL: it succeeded). */
static void
life_attempt_end(struct job *j, const char *error, double now)
{
	struct attempt *a;

	if (j->life == NULL || j->life->natt == 0)
		return;
	a = &j->life->att[j->life->natt - 1];
	if (a->ended > 0)
		return;
	a->ended = now;
	if (error != NULL)
		a->error = xstrdup(error);
}

static int32_t
job_retries(const struct job *j)
{
	return j->life != NULL && j->life->retries >= 0 ? j->life->retries : j->type->retries;
}

static int64_t
job_backoff(const struct job *j)
{
	if (j->life != NULL && j->life->backoff_ms > 0)
		return j->life->backoff_ms;
	return j->type->backoff_ms > 0 ? j->type->backoff_ms : LIFE_BACKOFF_MS;
}

/* backoff_ms: the wait before the retry after the n-th failure (see the
 * formula at the top of this section). */
static double
backoff_ms(const struct job *j, unsigned n)
{
	double d = (double)job_backoff(j);

	while (--n > 0 && d < LIFE_BACKOFF_MAX_MS)
		d *= 2;
	if (d > LIFE_BACKOFF_MAX_MS)
		d = LIFE_BACKOFF_MAX_MS;
	return d / 2 + d / 2 * ((double)random() / RAND_MAX);
}

static bool
type_may_dispatch(const struct jtype *t)
{
	return !t->paused && (t->limit == 0 || t->nrunning < t->limit);
}

/* type_fill: t may dispatch again (resumed, limit raised, a job ended):
 * its idle workers take queued jobs while it may. */
static void
type_fill(struct broker *b, struct jtype *t)
{
	struct worker *w, *next;

	if (broker_shared(b)) {   /* the queue is the backend's: ask it */
		if (TAILQ_FIRST(&t->idle) != NULL && type_may_dispatch(t))
			b->be.want(b->be.ctx, t);
		return;
	}
	for (w = TAILQ_FIRST(&t->idle); w != NULL && t->nqueued > 0 &&
	    type_may_dispatch(t); w = next) {
		next = TAILQ_NEXT(w, idle_entry);
		worker_fill(b, w);
	}
}

/* type_maybe_free: a type that lost its last setting goes if nothing else
 * holds it. */
static void
type_maybe_free(struct broker *b, struct jtype *t)
{
	t->refs++;
	broker_type_unref(b, t);
}

/* ------------------------------------------------------------ delays */

static void
delay_rearm(struct broker *b)
{
	struct job *top = delay_top(&b->delays);
	double wait;

	ev_timer_stop(b->loop, &b->delay_timer);
	if (top == NULL)
		return;
	wait = top->life->due - now_wall();
	ev_timer_set(&b->delay_timer, wait > 0 ? wait : 0, 0.);
	ev_timer_start(b->loop, &b->delay_timer);
}

static void
delay_add(struct broker *b, struct job *j, enum life_wait why)
{
	j->life->wait = why;
	delay_push(&b->delays, j);
	b->stats.delayed++;
	j->type->ndelayed++;
	broker_state_sync(b, j);
	if (delay_top(&b->delays) == j)
		delay_rearm(b);
}

/* delay_cb: the jobs that came due are queued (at most 10000 a turn: the
 * timer comes straight back for the rest). */
static void
delay_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = w->data;
	double now = now_wall();
	struct job *j;
	unsigned n = 0;

	(void)loop;
	(void)revents;
	while ((j = delay_top(&b->delays)) != NULL && j->life->due <= now + 0.0005 &&
	    n++ < 10000) {
		delay_pop(&b->delays);
		b->stats.delayed--;
		j->type->ndelayed--;
		j->life->wait = LIFE_READY;
		log_debug("job %s: due", j->key);
		job_enqueue(b, j);
	}
	delay_rearm(b);
}

/* life_unwait: a delayed or waiting job leaves its wait (it ends). */
static void
life_unwait(struct broker *b, struct job *j)
{
	struct job_life *L = j->life;
	bool top;

	if (L->wait == LIFE_WAITING) {
		b->stats.waiting--;
		j->type->nwaiting--;
	} else {
		top = delay_top(&b->delays) == j;
		delay_remove(&b->delays, j);
		b->stats.delayed--;
		j->type->ndelayed--;
		if (top)
			delay_rearm(b);
	}
	L->wait = LIFE_READY;
}

/* ------------------------------------------------------ dependencies */

static void
dep_add(struct broker *b, const char *key, const char *waiter)
{
	struct dep *d;
	size_t n = strlen(key);

	HASH_FIND_STR(b->deps, key, d);
	if (d == NULL) {
		d = xcalloc(1, sizeof *d + n + 1);
		memcpy(d->key, key, n + 1);
		HASH_ADD_KEYPTR(hh, b->deps, d->key, n, d);
	}
	d->waiters = xrealloc(d->waiters, (d->n + 1) * sizeof *d->waiters);
	d->waiters[d->n++] = xstrdup(waiter);
}

static void
dep_free(struct dep *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->waiters[i]);
	free(d->waiters);
	free(d);
}

static void
deps_free(struct broker *b)
{
	struct dep *d, *tmp;

	HASH_ITER(hh, b->deps, d, tmp) {
		HASH_DEL(b->deps, d);
		dep_free(d);
	}
}

static bool
life_waits_for(const struct job *j, const char *key)
{
	size_t i;

	if (JOB_FINISHED(j) || j->life == NULL || j->life->wait != LIFE_WAITING)
		return false;
	for (i = 0; i < j->life->nafter; i++)
		if (strcmp(j->life->after[i], key) == 0)
			return true;
	return false;
}

/* life_cancel_for: j waited for a job that ended without success. */
static void
life_cancel_for(struct broker *b, struct job *j, const char *key, enum job_state why)
{
	free(j->life->reason);
	j->life->reason = xprintf("job %s, which it waits for, ended %s", key,
	    job_state_name(why));
	log_info("job %s: cancelled: %s", j->key, j->life->reason);
	emit_job_changed(b, j);   /* the reason, for the store */
	job_finish(b, j, JOB_CANCELLED);
}

/*
 * life_place: a job that is queued (submitted, restored, kicked, its
 * dependencies done) goes where its life says: cancelled if a job it waits
 * for ended without success, waiting while any has not ended, delayed
 * until its due time, else its type's queue.  A job it waits for that is
 * no longer known was done (else this one would have been cancelled when
 * it ended).
 */
static void
life_place(struct broker *b, struct job *j)
{
	struct job_life *L = j->life;
	enum life_wait dk;
	struct job *d;
	size_t i;

	if (L == NULL) {
		job_enqueue(b, j);
		return;
	}
	dk = L->wait == LIFE_BACKOFF ? LIFE_BACKOFF : LIFE_DELAYED;
	L->wait = LIFE_READY;
	L->pending = 0;
	for (i = 0; i < L->nafter; i++) {
		if ((d = broker_find(b, L->after[i])) == NULL || d == j || d->state == JOB_DONE)
			continue;
		if (JOB_FINISHED(d)) {
			/* (counted as waiting: its ending takes it out of that) */
			L->wait = LIFE_WAITING;
			b->stats.waiting++;
			j->type->nwaiting++;
			broker_state_sync(b, j);
			life_cancel_for(b, j, d->key, d->state);
			return;
		}
		L->pending++;
		dep_add(b, d->key, j->key);
	}
	if (L->pending > 0) {
		L->wait = LIFE_WAITING;
		b->stats.waiting++;
		j->type->nwaiting++;
		broker_state_sync(b, j);
		return;
	}
	if (L->due > now_wall()) {
		delay_add(b, j, dk);
		return;
	}
	job_enqueue(b, j);
}

/*
 * life_finished: j ended: the jobs that wait for it go on (it is done) or
 * are cancelled (it is not).  Cancelling those ends them in turn: the
 * cascade runs here, a queue of endings, not a recursion as deep as the
 * chain of dependencies.
 */
static void
life_finished(struct broker *b, struct job *j)
{
	static struct ended { char *key; enum job_state state; } *q;
	static size_t qlen, qcap;
	static bool busy;
	struct dep *d;
	struct job *w;
	size_t i, at;

	if (b->deps == NULL)
		return;
	if (qlen == qcap) {
		qcap = qcap ? 2 * qcap : 16;
		q = xrealloc(q, qcap * sizeof *q);
	}
	q[qlen].key = xstrdup(j->key);
	q[qlen++].state = j->state;
	if (busy)
		return;
	busy = true;
	for (at = 0; at < qlen; at++) {
		HASH_FIND_STR(b->deps, q[at].key, d);
		if (d != NULL) {
			HASH_DEL(b->deps, d);
			for (i = 0; i < d->n; i++) {
				w = broker_find(b, d->waiters[i]);
				if (w == NULL || !life_waits_for(w, q[at].key))
					continue;
				if (q[at].state != JOB_DONE)
					life_cancel_for(b, w, q[at].key, q[at].state);
				else if (--w->life->pending == 0) {
					b->stats.waiting--;
					w->type->nwaiting--;
					w->life->wait = LIFE_READY;
					log_debug("job %s: what it waits for is done", w->key);
					life_place(b, w);
				}
			}
			dep_free(d);
		}
		free(q[at].key);
	}
	qlen = 0;
	busy = false;
	if (b->deps == NULL) {
		free(q);
		q = NULL;
		qcap = 0;
	}
}

/* ---------------------------------------------------------- submission */

/* life_check: the lifecycle options of a submission, before anything is
 * made; the reason of a refusal in b->err_detail. */
static enum broker_err
life_check(struct broker *b, const struct submit_req *r)
{
	size_t i;

	if (r->retries_set && (r->retries < 0 || r->retries > LIFE_RETRIES_MAX)) {
		snprintf(b->err_detail, sizeof b->err_detail,
		    "\"retries\" must be 0 to %d", LIFE_RETRIES_MAX);
		return BERR_INVALID;
	}
	if (r->backoff_ms < 0 || r->backoff_ms > LIFE_BACKOFF_MAX_MS) {
		snprintf(b->err_detail, sizeof b->err_detail,
		    "\"backoff\" must be 1 to %lld milliseconds", (long long)LIFE_BACKOFF_MAX_MS);
		return BERR_INVALID;
	}
	if (r->delay_ms < 0 || r->delay_ms > LIFE_DELAY_MAX_MS) {
		snprintf(b->err_detail, sizeof b->err_detail,
		    "\"delay\" must be 0 to %lld milliseconds", (long long)LIFE_DELAY_MAX_MS);
		return BERR_INVALID;
	}
	if (r->at_ms < 0 || (double)r->at_ms > now_wall() * 1000 + LIFE_DELAY_MAX_MS) {
		snprintf(b->err_detail, sizeof b->err_detail,
		    "\"at\" must be epoch milliseconds at most %lld ms from now",
		    (long long)LIFE_DELAY_MAX_MS);
		return BERR_INVALID;
	}
	if (r->nafter > LIFE_AFTER_MAX) {
		snprintf(b->err_detail, sizeof b->err_detail,
		    "\"after\" may name at most %d jobs", LIFE_AFTER_MAX);
		return BERR_INVALID;
	}
	for (i = 0; i < r->nafter; i++) {
		if (r->key != NULL && strcmp(r->after[i], r->key) == 0) {
			snprintf(b->err_detail, sizeof b->err_detail,
			    "job %s cannot wait for itself", r->key);
			return BERR_SELF;
		}
		if (broker_find(b, r->after[i]) == NULL) {
			snprintf(b->err_detail, sizeof b->err_detail,
			    "\"after\" names %s: no job has that id", r->after[i]);
			return BERR_UNKNOWN_ID;
		}
	}
	return BERR_OK;
}

/*
 * life_submit: the job's life from its options (none: it has none).  A
 * job may only wait for jobs that exist when it is submitted, and not for
 * itself, so no cycle can form.
 */
static int
life_submit(struct broker *b, struct job *j, const struct submit_req *r)
{
	struct job_life *L;
	size_t i;

	(void)b;
	if (!r->retries_set && r->backoff_ms == 0 && r->delay_ms == 0 &&
	    r->at_ms == 0 && r->nafter == 0)
		return BERR_OK;
	L = life_get(j);
	L->opted = true;
	L->retries = r->retries_set ? (int32_t)r->retries : -1;
	L->backoff_ms = r->backoff_ms;
	if (r->at_ms > 0)
		L->due = r->at_ms / 1000.0;
	else if (r->delay_ms > 0)
		L->due = now_wall() + r->delay_ms / 1000.0;
	if (r->nafter > 0) {
		L->after = xcalloc(r->nafter, sizeof *L->after);
		for (i = 0; i < r->nafter; i++)
			L->after[i] = xstrdup(r->after[i]);
		L->nafter = r->nafter;
	}
	return BERR_OK;
}

/* ------------------------------------------------ failures and retries */

/*
 * The failures' log.  A flood of failing jobs must not flood the log: a
 * type's first FAIL_LOG_BURST failed attempts of a window of
 * log_interval() seconds are logged one by one, the rest only counted;
 * when the window is over (fail_log_cb, or the type's next failure, or
 * the type going) one line says how many more failed, and the last one.
 */
#define FAIL_LOG_BURST 5

struct fail_log {
	struct log_limit      lim;
	struct jtype         *type;
	TAILQ_ENTRY(fail_log) entry;      /* on b->fail_logs while lim.missed > 0 */
	char                  last[192];  /* the last one counted: job and error */
};

/* fail_log_summary: the one line for the failures f counted. */
static void
fail_log_summary(struct broker *b, struct fail_log *f)
{
	log_info("type %s: %" PRIu64 " more failed attempt(s) in the last %g s "
	    "(last: %s)", f->type->name, f->lim.missed, log_interval(), f->last);
	f->lim.missed = 0;
	TAILQ_REMOVE(&b->fail_logs, f, entry);
}

/* fail_log_cb: the summaries of the windows that are over; the timer is
 * set again for the first window still open. */
static void
fail_log_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = w->data;
	struct fail_log *f, *next;
	double now = ev_now(loop), end, first = 0;

	(void)revents;
	for (f = TAILQ_FIRST(&b->fail_logs); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		end = f->lim.start + log_interval();
		if (end <= now + 0.001)
			fail_log_summary(b, f);
		else if (first == 0 || end < first)
			first = end;
	}
	if (first > 0) {
		ev_timer_set(w, first - now, 0.);
		ev_timer_start(loop, w);
	}
}

/* fail_log_flush: t goes (or the daemon does): its summary now. */
static void
fail_log_flush(struct broker *b, struct jtype *t)
{
	if (t->fail_log != NULL && t->fail_log->lim.missed > 0)
		fail_log_summary(b, t->fail_log);
}

/*
 * log_failed_attempt: attempt n of j failed with error (JSON text, as the
 * worker wrote it: its first 100 bytes, line breaks and other controls
 * made spaces, so that it cannot forge log lines); then says what comes
 * next.  Logged, or counted for its type's summary.
 */
static void
log_failed_attempt(struct broker *b, struct job *j, unsigned n,
    const char *error, const char *then)
{
	struct fail_log *f = j->type->fail_log;
	ev_timer *t = &b->fail_log_timer;
	double now = ev_now(b->loop), left;
	char e[101];
	size_t i;

	for (i = 0; i < sizeof e - 1 && error[i] != '\0'; i++)
		e[i] = (unsigned char)error[i] < 0x20 ? ' ' : error[i];
	e[i] = '\0';
	if (f == NULL) {
		f = j->type->fail_log = xcalloc(1, sizeof *f);
		f->type = j->type;
	}
	if (f->lim.missed > 0 && now - f->lim.start >= log_interval())
		fail_log_summary(b, f);   /* its window is over: before the next */
	if (log_limit_take(&f->lim, now, FAIL_LOG_BURST)) {
		log_info("job %s: attempt %u failed: %s: %s", j->key, n, e, then);
		return;
	}
	snprintf(f->last, sizeof f->last, "job %.60s attempt %u: %s", j->key, n, e);
	if (f->lim.missed > 1)
		return;
	TAILQ_INSERT_TAIL(&b->fail_logs, f, entry);
	left = f->lim.start + log_interval() - now;
	if (!ev_is_active(t) || ev_timer_remaining(b->loop, t) > left) {
		ev_timer_stop(b->loop, t);
		ev_timer_set(t, left, 0.);
		ev_timer_start(b->loop, t);
	}
}

/*
 * life_failed_attempt: the attempt under way failed (error: JSON text):
 * retried after its backoff while it has retries left, else the job fails
 * (the dead set).  j is off its worker already (state still running).
 */
static void
life_failed_attempt(struct broker *b, struct job *j, const char *error)
{
	struct job_life *L = life_get(j);
	int32_t retries = job_retries(j);
	char then[64];
	double wait;

	life_attempt_end(j, error, now_wall());
	free(L->error);
	L->error = xstrdup(error);
	L->failures++;
	if (L->failures > (unsigned)(retries > 0 ? retries : 0)) {
		log_failed_attempt(b, j, L->failures, error, "no retries left");
		emit_job_changed(b, j);   /* its attempts and error, for the store */
		job_finish(b, j, JOB_FAILED);
		return;
	}
	wait = backoff_ms(j, L->failures);
	snprintf(then, sizeof then, "retry %u of %d in %.0f ms", L->failures,
	    retries, wait);
	log_failed_attempt(b, j, L->failures, error, then);
	L->due = now_wall() + wait / 1000.0;
	j->state = JOB_QUEUED;
	j->type->nretried++;
	b->stats.retried++;
	delay_add(b, j, LIFE_BACKOFF);
	emit_job_changed(b, j);
}

/* life_retry_on_loss: j's worker was lost.  True if that was a failed
 * attempt of a job with retries (handled); false: the old way (losses). */
static bool
life_retry_on_loss(struct broker *b, struct job *j, struct worker *w)
{
	if (job_retries(j) <= 0) {
		life_attempt_end(j, "\"worker lost\"", now_wall());
		return false;
	}
	(void)w;   /* its failed attempt's line says "worker lost" */
	life_failed_attempt(b, j, "\"worker lost\"");
	return true;
}

/*
 * life_retry_on_timeout: j's timeout passed while it ran, and it has
 * retries left: that attempt failed ("timeout"); its worker is told to
 * cancel it if it takes cancels (job_abandoned), else keeps a stale slot
 * until it answers; the retry gets a fresh timeout from when it is queued
 * again.  False: the job times out as any other.
 */
static bool
life_retry_on_timeout(struct broker *b, struct job *j)
{
	struct worker *w;
	double wait;

	if (j->state != JOB_RUNNING || j->worker == NULL || job_retries(j) <= 0 ||
	    (j->life != NULL && j->life->failures >= (unsigned)job_retries(j)))
		return false;
	life_get(j);
	w = job_take_from_worker(b, j);
	if (!w->takes_cancel)
		stale_add(w, j->key);   /* its late answer is due */
	emit_job_abandoned(b, j, w);
	life_failed_attempt(b, j, "\"timeout\"");
	wait = j->life->due - now_wall();
	ev_timer_set(&j->ext->deadline, (wait > 0 ? wait : 0) + j->ext->timeout_ms / 1000.0, 0.);
	ev_timer_start(b->loop, &j->ext->deadline);
	broker_worker_ready(b, w);
	worker_unref(w);
	return true;
}

/* life_timed_out_on: an attempt of j on the worker named so timed out
 * (its answer may still come: it is late). */
static bool
life_timed_out_on(const struct job *j, const char *worker)
{
	size_t i;

	if (j->life == NULL)
		return false;
	for (i = 0; i < j->life->natt; i++)
		if (j->life->att[i].worker != NULL && strcmp(j->life->att[i].worker, worker) == 0 &&
		    j->life->att[i].error != NULL && strcmp(j->life->att[i].error, "\"timeout\"") == 0)
			return true;
	return false;
}

/*
 * broker_fail: the worker running j reports that it failed, with error
 * err (JSON text, kept up to LIFE_ERROR_MAX bytes).  Its slot is free at
 * once.  BERR_STATE if j is not running.
 */
enum broker_err
broker_fail(struct broker *b, struct job *j, const char *err, size_t len)
{
	struct worker *w;
	char *e;

	if (j->state != JOB_RUNNING || j->worker == NULL) {
		snprintf(b->err_detail, sizeof b->err_detail, "job %s is %s, not running",
		    job_idjson(j), job_status(j));
		return BERR_STATE;
	}
	life_get(j);
	b->stats.fails++;
	if (len > LIFE_ERROR_MAX)
		e = xprintf("\"an error of %zu bytes (more than %u are not kept)\"",
		    len, LIFE_ERROR_MAX);
	else
		e = xstrndup(err, len);
	if (j->shared) {   /* no retries in cluster mode: it fails */
		j->result = blob_new(e, strlen(e));
		j->result_len = strlen(e);
		b->be.complete(b->be.ctx, j, JOB_FAILED);
		free(e);
		job_finish(b, j, JOB_FAILED);
		return BERR_OK;
	}
	w = job_take_from_worker(b, j);
	life_failed_attempt(b, j, e);
	free(e);
	broker_worker_ready(b, w);
	worker_unref(w);
	return BERR_OK;
}

/* ------------------------------------------------------------ the dead set */

/* dead_add: j failed after its attempts: on the dead lists (its life, made
 * if need be, holds its place on its type's). */
static void
dead_add(struct broker *b, struct job *j)
{
	life_get(j);
	TAILQ_INSERT_TAIL(&b->dead, j, done_entry);
	TAILQ_INSERT_TAIL(&j->type->dead, j, life->type_dead);
	b->ndead++;
	b->stats.dead = b->ndead;
	j->type->ndead++;
}

static void
dead_remove(struct broker *b, struct job *j)
{
	broker_state_dead_leaving(b, j);
	TAILQ_REMOVE(&b->dead, j, done_entry);
	TAILQ_REMOVE(&j->type->dead, j, life->type_dead);
	b->ndead--;
	b->stats.dead = b->ndead;
	j->type->ndead--;
}

/*
 * broker_kick: a dead job is queued again with fresh attempts (its history
 * stays in its attempts).  It has no master any more: its result is for the
 * tree, status and wait.  BERR_STATE if j is not dead.
 */
enum broker_err
broker_kick(struct broker *b, struct job *j)
{
	struct job_life *L;

	if (j->state != JOB_FAILED || j->shared) {   /* (cluster mode: not yet) */
		snprintf(b->err_detail, sizeof b->err_detail, "job %s is %s, not dead",
		    job_idjson(j), job_status(j));
		return BERR_STATE;
	}
	dead_remove(b, j);
	L = life_get(j);
	L->failures = 0;
	L->due = 0;
	L->wait = LIFE_READY;
	j->losses = 0;
	j->finished = -1;
	j->state = JOB_QUEUED;
	b->stats.body_bytes += j->body_len;
	j->type->nkicked++;
	b->stats.kicked++;
	log_info("job %s: kicked", j->key);
	emit_job_changed(b, j);
	life_place(b, j);
	return BERR_OK;
}

/* broker_kick_type: kick every dead job of t; how many. */
size_t
broker_kick_type(struct broker *b, struct jtype *t)
{
	struct job *j;
	size_t n = 0;

	while ((j = TAILQ_FIRST(&t->dead)) != NULL && !j->shared) {
		broker_kick(b, j);
		n++;
	}
	return n;
}

/* ------------------------------------------------------ type settings */

bool
broker_type_configured(const struct jtype *t)
{
	return t->paused || t->limit > 0 || t->retries > 0 || t->backoff_ms > 0;
}

/* broker_type_pause: a paused type takes jobs and dispatches none; its
 * running jobs finish.  Resumed, its idle workers take jobs at once. */
void
broker_type_pause(struct broker *b, struct jtype *t, bool paused)
{
	if (t->paused == paused)
		return;
	t->paused = paused;
	if (paused)
		b->npaused++;
	else
		b->npaused--;
	log_info("type %s: %s", t->name, paused ? "paused" : "resumed");
	emit_type_changed(b, t);
	if (!paused)
		type_fill(b, t);
	type_maybe_free(b, t);
}

/* limit_ok, retries_ok: a type's settings in range (-1: keep, if keep);
 * if not, why in b->err_detail. */
static bool
limit_ok(struct broker *b, int64_t limit, bool keep)
{
	if ((keep && limit == -1) || (limit >= 0 && limit <= LIFE_LIMIT_MAX))
		return true;
	snprintf(b->err_detail, sizeof b->err_detail,
	    "\"limit\" must be 0 (none) to %d", LIFE_LIMIT_MAX);
	return false;
}

static bool
retries_ok(struct broker *b, int64_t retries, int64_t backoff)
{
	if (broker_shared(b) && (retries > 0 || backoff > 0)) {
		snprintf(b->err_detail, sizeof b->err_detail,
		    "retries and backoff are not available in cluster mode (--redis)");
		return false;
	}
	if (retries < -1 || retries > LIFE_RETRIES_MAX) {
		snprintf(b->err_detail, sizeof b->err_detail,
		    "\"retries\" must be 0 to %d", LIFE_RETRIES_MAX);
		return false;
	}
	if (backoff < -1 || backoff > LIFE_BACKOFF_MAX_MS) {
		snprintf(b->err_detail, sizeof b->err_detail,
		    "\"backoff\" must be 0 (the default, %d) to %lld milliseconds",
		    LIFE_BACKOFF_MS, (long long)LIFE_BACKOFF_MAX_MS);
		return false;
	}
	return true;
}

/* broker_type_limit: at most limit jobs of t run at once (0: no limit). */
enum broker_err
broker_type_limit(struct broker *b, struct jtype *t, int64_t limit)
{
	if (!limit_ok(b, limit, false))
		return BERR_INVALID;
	if (t->limit != (uint32_t)limit) {
		t->limit = (uint32_t)limit;
		emit_type_changed(b, t);
		type_fill(b, t);
	}
	type_maybe_free(b, t);
	return BERR_OK;
}

/* broker_type_retries: the defaults of t's jobs that do not say (-1: keep). */
enum broker_err
broker_type_retries(struct broker *b, struct jtype *t, int64_t retries, int64_t backoff)
{
	if (!retries_ok(b, retries, backoff))
		return BERR_INVALID;
	if (retries >= 0)
		t->retries = (int32_t)retries;
	if (backoff >= 0)
		t->backoff_ms = backoff;
	emit_type_changed(b, t);
	type_maybe_free(b, t);
	return BERR_OK;
}

/*
 * broker_type_configure: any of a type's limit, default retries and
 * backoff (-1: keep; any other value out of range is refused, with the
 * range in b->err_detail, before anything changes).  The type is made if
 * need be, and goes again if it is left with nothing set and nothing else
 * holds it.
 */
enum broker_err
broker_type_configure(struct broker *b, const char *name, int64_t limit,
    int64_t retries, int64_t backoff)
{
	struct jtype *t;

	if (!limit_ok(b, limit, true) || !retries_ok(b, retries, backoff))
		return BERR_INVALID;
	t = broker_type(b, name, true);
	type_ref(t);   /* held while it changes */
	if (retries >= 0 || backoff >= 0)
		broker_type_retries(b, t, retries, backoff);
	if (limit >= 0)
		broker_type_limit(b, t, limit);
	broker_type_unref(b, t);
	return BERR_OK;
}

/* broker_type_settings: {"job_type","paused","limit","retries","backoff"}. */
json_t *
broker_type_settings(const struct jtype *t)
{
	return json_pack("{s:s,s:b,s:I,s:I,s:I}", "job_type", t->name,
	    "paused", t->paused, "limit", (json_int_t)t->limit,
	    "retries", (json_int_t)t->retries,
	    "backoff", (json_int_t)(t->backoff_ms > 0 ? t->backoff_ms : LIFE_BACKOFF_MS));
}

/* ------------------------------------------------------------ queries */

/* broker_dead_each: t's dead jobs, oldest first. */
void
broker_dead_each(struct broker *b, struct jtype *t, broker_job_cb *cb, void *ctx)
{
	struct job *j;

	(void)b;
	TAILQ_FOREACH(j, &t->dead, life->type_dead)
		if (!cb(ctx, j))
			return;
}

static int
due_cmp(const void *pa, const void *pb)
{
	const struct job *a = *(struct job *const *)pa, *b = *(struct job *const *)pb;

	if (a->life->due != b->life->due)
		return a->life->due < b->life->due ? -1 : 1;
	return seq_before(a->seq, b->seq) ? -1 : a->seq != b->seq;
}

/* broker_delayed_each: t's delayed jobs (retries among them) in due order.
 * O(n log n) in all delayed jobs: a listing. */
void
broker_delayed_each(struct broker *b, struct jtype *t, broker_job_cb *cb, void *ctx)
{
	struct job **all = xmalloc((t->ndelayed + 1) * sizeof *all);
	size_t n = 0, i;

	for (i = 0; i < b->delays.len && n < t->ndelayed; i++)
		if (b->delays.items[i]->type == t)
			all[n++] = b->delays.items[i];
	qsort(all, n, sizeof *all, due_cmp);
	for (i = 0; i < n && cb(ctx, all[i]); i++)
		;
	free(all);
}

/* job_status: what a user sees: "delayed" (its time, or a retry's backoff),
 * "waiting" (for other jobs), or the state. */
const char *
job_status(const struct job *j)
{
	if (j->state == JOB_QUEUED && j->life != NULL) {
		switch (j->life->wait) {
		case LIFE_DELAYED:
		case LIFE_BACKOFF: return "delayed";
		case LIFE_WAITING: return "waiting";
		default: break;
		}
	}
	return job_state_name(j->state);
}

/* job_end_reason: the "reason" of its ending frame: why it was cancelled
 * if a job it waited for did not succeed, else its id (as SPEC 1.3). */
const char *
job_end_reason(const struct job *j)
{
	return j->life != NULL && j->life->reason != NULL ? j->life->reason : j->key;
}

/* json_text: JSON text as a value (a string if it does not parse). */
static json_t *
json_text(const char *s)
{
	json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);

	return v != NULL ? v : json_string(s);
}

/* job_life_info: what info and status add for a job with a life. */
static json_t *
job_life_info(const struct job *j)
{
	const struct job_life *L = j->life;
	json_t *o = json_object(), *a = json_array(), *x;
	size_t i;

	for (i = 0; i < L->natt; i++) {
		x = json_object();
		if (L->att[i].worker != NULL)
			json_object_set_new(x, "worker", json_string(L->att[i].worker));
		json_object_set_new(x, "started", json_real(L->att[i].started));
		if (L->att[i].ended > 0)
			json_object_set_new(x, "ended", json_real(L->att[i].ended));
		if (L->att[i].error != NULL)
			json_object_set_new(x, "error", json_text(L->att[i].error));
		json_array_append_new(a, x);
	}
	json_object_set_new(o, "attempts", a);
	json_object_set_new(o, "attempts_total", json_integer(L->nattempts));
	json_object_set_new(o, "retries", json_integer(job_retries(j)));
	json_object_set_new(o, "failures", json_integer(L->failures));
	if (j->state == JOB_FAILED)
		json_object_set_new(o, "dead", json_true());
	if (L->error != NULL)
		json_object_set_new(o, "error", json_text(L->error));
	if (L->reason != NULL)
		json_object_set_new(o, "reason", json_string(L->reason));
	if (j->state == JOB_QUEUED && L->wait != LIFE_READY && L->wait != LIFE_WAITING)
		json_object_set_new(o, "due", json_real(L->due));
	if (L->nafter > 0) {
		a = json_array();
		for (i = 0; i < L->nafter; i++)
			json_array_append_new(a, json_string(L->after[i]));
		json_object_set_new(o, "after", a);
		if (L->wait == LIFE_WAITING && j->state == JOB_QUEUED)
			json_object_set_new(o, "waiting_for", json_integer(L->pending));
	}
	return o;
}

/* ------------------------------------------------------------ the store */

/*
 * job_life_json: what the store keeps of j's life (NULL: none), and
 * life_restore its reverse.  Short keys: a journal holds one per record.
 */
json_t *
job_life_json(const struct job *j)
{
	const struct job_life *L = j->life;
	json_t *o, *a;
	size_t i;

	if (L == NULL)
		return NULL;
	o = json_pack("{s:i,s:I,s:i,s:f,s:i,s:i}", "r", L->retries,
	    "b", (json_int_t)L->backoff_ms, "w", L->wait == LIFE_WAITING ? LIFE_READY : L->wait,
	    "d", L->due, "f", L->failures, "n", L->nattempts);
	a = json_array();
	for (i = 0; i < L->natt; i++)
		json_array_append_new(a, json_pack("[f,f,s?,s?]", L->att[i].started,
		    L->att[i].ended, L->att[i].worker, L->att[i].error));
	json_object_set_new(o, "a", a);
	if (L->nafter > 0) {
		a = json_array();
		for (i = 0; i < L->nafter; i++)
			json_array_append_new(a, json_string(L->after[i]));
		json_object_set_new(o, "after", a);
	}
	if (L->error != NULL)
		json_object_set_new(o, "e", json_string(L->error));
	if (L->reason != NULL)
		json_object_set_new(o, "c", json_string(L->reason));
	if (L->opted)
		json_object_set_new(o, "o", json_true());
	return o;
}

static char *
json_strdup(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? xstrdup(s) : NULL;
}

/* life_restore: j's life as job_life_json kept it (text NULL: none). */
static void
life_restore(struct broker *b, struct job *j, const char *text)
{
	struct job_life *L;
	json_t *o, *a, *x;
	size_t i, n;

	(void)b;
	if (text == NULL || (o = json_loads(text, 0, NULL)) == NULL)
		return;
	L = life_get(j);
	L->retries = (int32_t)json_integer_value(json_object_get(o, "r"));
	if (L->retries < -1 || L->retries > LIFE_RETRIES_MAX)
		L->retries = -1;
	L->backoff_ms = json_integer_value(json_object_get(o, "b"));
	L->wait = (uint8_t)json_integer_value(json_object_get(o, "w"));
	if (L->wait > LIFE_BACKOFF)
		L->wait = LIFE_READY;
	L->due = json_number_value(json_object_get(o, "d"));
	L->failures = (unsigned)json_integer_value(json_object_get(o, "f"));
	L->nattempts = (unsigned)json_integer_value(json_object_get(o, "n"));
	a = json_object_get(o, "a");
	n = json_array_size(a) < LIFE_ATTEMPTS_KEPT ? json_array_size(a) : LIFE_ATTEMPTS_KEPT;
	L->att = xcalloc(n + 1, sizeof *L->att);
	for (i = 0; i < n; i++) {
		x = json_array_get(a, i);
		L->att[i].started = json_number_value(json_array_get(x, 0));
		L->att[i].ended = json_number_value(json_array_get(x, 1));
		if (json_is_string(json_array_get(x, 2)))
			L->att[i].worker = xstrdup(json_string_value(json_array_get(x, 2)));
		if (json_is_string(json_array_get(x, 3)))
			L->att[i].error = xstrdup(json_string_value(json_array_get(x, 3)));
	}
	L->natt = n;
	a = json_object_get(o, "after");
	n = json_array_size(a) < LIFE_AFTER_MAX ? json_array_size(a) : LIFE_AFTER_MAX;
	if (n > 0) {
		L->after = xcalloc(n, sizeof *L->after);
		for (i = 0; i < n; i++) {
			const char *k = json_string_value(json_array_get(a, i));
			L->after[L->nafter++] = xstrdup(k != NULL ? k : "");
		}
	}
	L->error = json_strdup(o, "e");
	L->reason = json_strdup(o, "c");
	L->opted = json_is_true(json_object_get(o, "o"));
	json_decref(o);
}
