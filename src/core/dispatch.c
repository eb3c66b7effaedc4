/*
 * dispatch.c — a worker's slots, dispatch (job_start, job_enqueue,
 * worker_fill), workers joining their type, and the handles faces hold
 * for their peers (masters and workers, and their going).  Apart from
 * broker.c because dispatch is its own invariant:
 *
 * Dispatch invariant: a worker sits on its type's idle list only while it
 * has a free slot and no queued job it may take (see worker_may_take), or
 * while its type may not dispatch (paused, or at its limit: type_fill
 * gives those workers jobs once it may again).  So a new job goes to the
 * head of the idle list (or waits), and a worker with a free slot takes the
 * best queued job (or goes idle): both O(log n), however many workers idle.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

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
int
stale_index(const struct worker *w, const char *key)
{
	unsigned i;

	for (i = 0; i < w->stale; i++)
		if (strcmp(w->stale_keys[i], key) == 0)
			return (int)i;
	return -1;
}

void
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
unsigned
worker_free_slots(const struct worker *w)
{
	unsigned used = w->nrunning + w->stale;

	if (w->blocked)
		return 0;
	return used < w->capacity ? w->capacity - used : 0;
}


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
void
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
void
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
void
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

void
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

void
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
struct worker *
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
