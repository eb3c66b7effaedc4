/*
 * life.c — the job lifecycle: a job's life and attempts, backoff, delays,
 * dependencies, where a job goes when submitted or due (life_place), the
 * lifecycle options of a submission, and the type settings (pauses,
 * limits, default retries).  Apart from broker.c because it is opt-in: a
 * job that uses none of it has no life.  Failures, retries and the dead
 * set are in life_fail.c; what is shown and stored of a life, life_info.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static void delay_cb(struct ev_loop *loop, ev_timer *w, int revents);

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

void
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
struct job_life *
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

void
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
void
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

int32_t
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
double
backoff_ms(const struct job *j, unsigned n)
{
	double d = (double)job_backoff(j);

	while (--n > 0 && d < LIFE_BACKOFF_MAX_MS)
		d *= 2;
	if (d > LIFE_BACKOFF_MAX_MS)
		d = LIFE_BACKOFF_MAX_MS;
	return d / 2 + d / 2 * ((double)random() / RAND_MAX);
}

bool
type_may_dispatch(const struct jtype *t)
{
	return !t->paused && (t->limit == 0 || t->nrunning < t->limit);
}

/* type_fill: t may dispatch again (resumed, limit raised, a job ended):
 * its idle workers take queued jobs while it may. */
void
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

void
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
void
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

/* life_ends_free: life_finished's queue goes (no job waits, or the
 * daemon exits). */
static void
life_ends_free(struct broker *b)
{
	if (b->ends != NULL) {
		free(b->ends->q);
		free(b->ends);
		b->ends = NULL;
	}
}

void
deps_free(struct broker *b)
{
	struct dep *d, *tmp;

	HASH_ITER(hh, b->deps, d, tmp) {
		HASH_DEL(b->deps, d);
		dep_free(d);
	}
	life_ends_free(b);
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
void
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
void
life_finished(struct broker *b, struct job *j)
{
	struct life_ends *e;
	struct dep *d;
	struct job *w;
	size_t i, at;

	if (b->deps == NULL)
		return;
	if ((e = b->ends) == NULL)
		e = b->ends = xcalloc(1, sizeof *e);
	if (e->qlen == e->qcap) {
		e->qcap = e->qcap ? 2 * e->qcap : 16;
		e->q = xrealloc(e->q, e->qcap * sizeof *e->q);
	}
	e->q[e->qlen].key = xstrdup(j->key);
	e->q[e->qlen++].state = j->state;
	if (e->busy)
		return;
	e->busy = true;
	/* e->q may move meanwhile: an ending told here is queued in it */
	for (at = 0; at < e->qlen; at++) {
		HASH_FIND_STR(b->deps, e->q[at].key, d);
		if (d != NULL) {
			HASH_DEL(b->deps, d);
			for (i = 0; i < d->n; i++) {
				w = broker_find(b, d->waiters[i]);
				if (w == NULL || !life_waits_for(w, e->q[at].key))
					continue;
				if (e->q[at].state != JOB_DONE)
					life_cancel_for(b, w, e->q[at].key, e->q[at].state);
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
		free(e->q[at].key);
	}
	e->qlen = 0;
	e->busy = false;
	if (b->deps == NULL)
		life_ends_free(b);
}

/* ---------------------------------------------------------- submission */

/* life_check: the lifecycle options of a submission, before anything is
 * made; the reason of a refusal in b->err_detail. */
enum broker_err
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
int
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
	if (b->be.config != NULL)   /* cluster mode: every daemon's workers */
		b->be.config(b->be.ctx, t);
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
		if (b->be.config != NULL)
			b->be.config(b->be.ctx, t);
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
	if (b->be.config != NULL)
		b->be.config(b->be.ctx, t);
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
