/*
 * broker.c — the core of the broker: its listeners (the emit_* helpers),
 * the store's gate, types and their queues, jobs (submission and
 * restoring, which share job_setup) and the daemon's shutdown.
 *
 * The broker is the core: it knows no face.  Faces (the TCP protocol in
 * src/tcp/, the tree in src/tree/, the web in src/web/) call into it, and
 * it tells whatever registered as a listener (the faces, a store such as
 * the journal) what happened, through the emit_* helpers below: it names
 * none of them.  Faces know peers only as handles (struct master, struct
 * worker: made by the face, given back by broker_master_gone /
 * broker_worker_gone) and read the broker through the queries (query.c:
 * types, queue in dispatch order, workers, counters), never its heaps or
 * tables.  Every job ends in job_finish() (ending.c), once for each time
 * it was queued (a dead job kicked is queued again, and ends again).
 *
 * The rest of the core is apart by what it does, each file under 1,000
 * lines: dispatch.c (worker slots, dispatch, workers and handles),
 * ending.c (endings and retention), query.c (what faces may read),
 * backend.c (cluster mode's verdicts), life.c, life_fail.c and
 * life_info.c (the job lifecycle).  What they share is in core.h.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static void type_free(struct jtype *t);

static const char *const state_names[] = {
	"queued", "running", "done", "failed", "cancelled", "timeout",
};

const char *
job_state_name(enum job_state s)
{
	return state_names[s];
}

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

void emit_job_submitted(struct broker *b, struct job *j) { EMIT(b, job_submitted, j); }
void emit_job_requeued(struct broker *b, struct job *j) { EMIT(b, job_requeued, j); }
void emit_job_forgotten(struct broker *b, struct job *j) { EMIT(b, job_forgotten, j); }
static void emit_type_added(struct broker *b, struct jtype *t) { EMIT(b, type_added, t); }
static void emit_type_removed(struct broker *b, struct jtype *t) { EMIT(b, type_removed, t); }
void emit_job_changed(struct broker *b, struct job *j) { EMIT(b, job_changed, j); }
void emit_type_changed(struct broker *b, struct jtype *t) { EMIT(b, type_changed, t); }

void
emit_job_dropped(struct broker *b, struct job *j, size_t body, size_t result,
    size_t partials)
{
	EMIT(b, job_dropped, j, body, result, partials);
}

void
emit_job_abandoned(struct broker *b, struct job *j, struct worker *w)
{
	EMIT(b, job_abandoned, j, w);
}

void
emit_job_dispatched(struct broker *b, struct job *j, struct worker *w)
{
	EMIT(b, job_dispatched, j, w);
}

void
emit_job_partial(struct broker *b, struct job *j, const char *body, size_t len)
{
	EMIT(b, job_partial, j, body, len);
}

void
emit_job_finished(struct broker *b, struct job *j, struct worker *ran_on)
{
	EMIT(b, job_finished, j, ran_on);
}

void
emit_worker_joined(struct broker *b, struct worker *w, struct jtype *t)
{
	EMIT(b, worker_joined, w, t);
}

void
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

/* broker_store_failed: see broker.h ("The durability gate"). */
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

/* broker_new: a broker on the heap (the faces and stores see it only
 * through pointers: its struct is the core's). */
struct broker *
broker_new(struct ev_loop *loop, const struct broker_limits *lim)
{
	struct broker *b = xmalloc(sizeof *b);

	broker_init(b, loop, lim);
	return b;
}

void
broker_free(struct broker *b)
{
	free(b);
}

uint64_t broker_mark(const struct broker *b) { return b->mark; }
uint64_t broker_durable(const struct broker *b) { return b->durable; }
uint64_t broker_next_seq(const struct broker *b) { return b->next_seq; }

/* broker_held: the store has appended records not yet durable. */
bool
broker_held(const struct broker *b)
{
	return b->mark > b->durable;
}

/* broker_gated: acknowledgements wait for the store (held, and the store
 * takes writes). */
bool
broker_gated(const struct broker *b)
{
	return broker_held(b) && !b->store_down;
}

const char *
broker_err_detail(const struct broker *b)
{
	return b->err_detail;
}

void
broker_set_err_detail(struct broker *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b->err_detail, sizeof b->err_detail, fmt, ap);
	va_end(ap);
}

void
broker_set_id_suffix(struct broker *b, const char *suffix)
{
	snprintf(b->id_suffix, sizeof b->id_suffix, "%s", suffix);
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

void
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

struct heap *
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
struct heap *
type_queue_of(struct jtype *t, struct job *j)
{
	return job_target(j) != NULL ? type_target_queue(t, job_target(j), true) : &t->queue;
}

void
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
 * job_alloc: one allocation for the job, its key, its id as JSON and its
 * body (or, from BODY_BLOB_MIN bytes, a pointer to the blob that holds
 * it).  An integer id's JSON is its key, so it is not stored twice.
 */
struct job *
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
enum broker_err
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
 * job_setup: what broker_submit and broker_restore both do to make a job:
 * it is allocated (job_alloc: its key, id and body), given its type and
 * r's options (priority, detach, stream, notify, owner, master), entered
 * in the job table and the list of all jobs, and counted as submitted.
 * It gets an ext if it has a target or a timeout, or if ext; with arm, a
 * timeout's deadline timer starts now.  The caller sets its sequence
 * number and times (started and finished are -1: not yet).
 */
static struct job *
job_setup(struct broker *b, const struct submit_req *r, bool ext, bool arm)
{
	struct jtype *t = broker_type(b, r->type, true);
	struct job *j = job_alloc(b, r);

	j->type = t;
	type_ref(t);
	j->priority = r->priority;
	j->refs = 1;
	j->detach = r->detach;
	j->stream = r->stream;
	j->notify = r->notify;
	j->owner = r->owner != NULL ? xstrdup(r->owner) : NULL;
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
	if (ext || r->target != NULL || r->timeout_ms > 0) {
		j->ext = xcalloc(1, sizeof *j->ext);
		j->ext->target = r->target != NULL ? xstrdup(r->target) : NULL;
		j->ext->timeout_ms = r->timeout_ms;
	}
	if (arm && r->timeout_ms > 0) {
		ev_timer_init(&j->ext->deadline, deadline_cb, r->timeout_ms / 1000.0, 0.);
		j->ext->deadline.data = j;
		j->ext->broker = b;
		ev_timer_start(b->loop, &j->ext->deadline);
	}
	return j;
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
	if (broker_shared(b) && r->nafter > 0) {
		snprintf(b->err_detail, sizeof b->err_detail,
		    "after is not available in cluster mode (--redis)");
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
	j = job_setup(b, r, false, true);
	t = j->type;
	j->seq = (uint32_t)b->next_seq++;
	j->submitted = ev_now(b->loop);
	b->stats.body_bytes += j->body_len;
	log_debug("job %s: submitted, type %s", j->key, t->name);
	if (out != NULL)
		*out = j;
	if (broker_shared(b)) {
		/* Queued in the backend, once it answers (broker_be_accepted). */
		j->shared = j->pending = 1;
		j->state = JOB_QUEUED;
		b->stats.queued++;
		life_submit(b, j, r);   /* its retries, backoff and delay, for the backend */
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
		.priority = r->priority, .timeout_ms = r->timeout_ms,
		.target = r->target, .detach = r->detach, .stream = r->stream,
		.notify = r->notify, .owner = r->owner,
	};
	bool finished = r->state >= JOB_DONE;
	struct jtype *t;
	struct job *j;

	if (r->key == NULL || broker_find(b, r->key) != NULL)
		return BERR_ID_EXISTS;
	b->restoring++;
	/* A finished job's deadline is not armed: it has ended. */
	j = job_setup(b, &sr, r->partials_len > 0, !finished);
	t = j->type;
	j->seq = r->seq;
	if ((int32_t)(r->seq - (uint32_t)b->next_seq) >= 0)
		b->next_seq += (uint32_t)(r->seq - (uint32_t)b->next_seq) + 1;
	j->losses = r->losses > JOB_MAX_LOSSES + 1 ? JOB_MAX_LOSSES + 1 : r->losses;
	j->submitted = r->submitted;
	j->started = r->started > 0 ? (float)(r->started - r->submitted) : -1;
	if (r->worker_name != NULL)
		j->worker_name = xstrdup(r->worker_name);
	if (r->partials_len > 0)
		buf_append(&j->ext->partials, r->partials, r->partials_len);
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
		life_restore(b, j, r->life);
		emit_job_submitted(b, j);
		life_place(b, j);
	}
	b->restoring--;
	return BERR_OK;
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
	sched_shutdown(b);
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
