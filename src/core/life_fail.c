/*
 * life_fail.c — the job lifecycle's failures: the failures' log, failed
 * attempts and retries (after a failure, a lost worker or a timeout),
 * broker_fail, and the dead set (dead jobs and kicking them).  Apart from
 * life.c to keep each file under 1,000 lines: this is what happens after
 * an attempt fails.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

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
void
fail_log_summary(struct broker *b, struct fail_log *f)
{
	log_info("type %s: %" PRIu64 " more failed attempt(s) in the last %g s "
	    "(last: %s)", f->type->name, f->lim.missed, log_interval(), f->last);
	f->lim.missed = 0;
	TAILQ_REMOVE(&b->fail_logs, f, entry);
}

/* fail_log_cb: the summaries of the windows that are over; the timer is
 * set again for the first window still open. */
void
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
void
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
bool
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
bool
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
bool
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
	if (j->shared && b->be.fail != NULL) {
		/* cluster mode: the backend counts the attempt and retries the
		 * job after its backoff, on any daemon, or ends it in the dead
		 * set; here its copy waits for that (or goes: shared_unrun) */
		w = job_take_from_worker(b, j);
		life_attempt_end(j, e, now_wall());
		b->be.fail(b->be.ctx, j, e);
		log_info("job %s: attempt failed: %.100s", j->key, e);
		free(e);
		shared_unrun(b, j);
		broker_worker_ready(b, w);
		worker_unref(w);
		return BERR_OK;
	}
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
void
dead_add(struct broker *b, struct job *j)
{
	life_get(j);
	TAILQ_INSERT_TAIL(&b->dead, j, done_entry);
	TAILQ_INSERT_TAIL(&j->type->dead, j, life->type_dead);
	b->ndead++;
	b->stats.dead = b->ndead;
	j->type->ndead++;
}

void
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

	if (j->state != JOB_FAILED || (j->shared && b->be.kick == NULL)) {
		snprintf(b->err_detail, sizeof b->err_detail, "job %s is %s, not dead",
		    job_idjson(j), job_status(j));
		return BERR_STATE;
	}
	if (j->shared) {
		/* cluster mode: queued again in the backend, for any daemon;
		 * this copy goes (the job is looked up again when asked for) */
		b->be.kick(b->be.ctx, j->key, NULL);
		j->type->nkicked++;
		b->stats.kicked++;
		log_info("job %s: kicked", j->key);
		job_forget(b, j);
		return BERR_OK;
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

	if (broker_shared(b) && b->be.kick != NULL)   /* the whole cluster's */
		b->be.kick(b->be.ctx, "", t->name);
	while ((j = TAILQ_FIRST(&t->dead)) != NULL && (!j->shared || b->be.kick != NULL)) {
		broker_kick(b, j);
		n++;
	}
	return n;
}
