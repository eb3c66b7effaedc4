/*
 * ending.c — how jobs end (job_finish, broker_complete, broker_end,
 * broker_forget, partial results) and what the broker keeps of finished
 * jobs (retention by age, count and bytes).  Apart from broker.c: every
 * ending goes through here, whoever asked for it (a face, a timeout, the
 * backend, the lifecycle).
 */
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

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
void
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

void
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
	b->trim_since += forgotten;
	if (b->trim_since >= 10000 || (b->trim_since > 0 && b->nfinished == 0)) {
		b->trim_since = 0;
		malloc_trim(0);
	}
#else
	(void)b;
	(void)forgotten;
#endif
}

/* retention_cb: forget finished jobs past --keep seconds or --keep-max. */
void
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
void
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
void
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
void
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
