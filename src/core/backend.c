/*
 * backend.c — the broker's side of cluster mode: the verdicts a backend
 * (the Redis store) gives (broker_be_*), and the lookups and queries it
 * answers (broker_lookup, broker_query).  Apart from broker.c: with no
 * backend none of it runs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

bool
broker_shared(const struct broker *b)
{
	return b->be.submit != NULL;
}

/* ------------------------------------------------------- the backend */

/*
 * Cluster mode: see backend.h.  The broker sends intents through
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
void
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

/* broker_be_config: another daemon set a type's settings (cluster-wide:
 * kept in the backend); here they are applied as if set here, without
 * being sent back. */
void
broker_be_config(struct broker *b, const char *type, int paused, int64_t limit,
    int64_t retries, int64_t backoff)
{
	void (*config)(void *, struct jtype *) = b->be.config;
	struct jtype *t;

	if (!type_name_valid(type, strlen(type)))
		return;
	t = broker_type(b, type, true);
	type_ref(t);
	b->be.config = NULL;
	broker_type_pause(b, t, paused != 0);
	if (limit >= 0 && limit <= LIFE_LIMIT_MAX)
		broker_type_limit(b, t, limit);
	if (retries >= 0 && retries <= LIFE_RETRIES_MAX && backoff >= 0 &&
	    backoff <= LIFE_BACKOFF_MAX_MS)
		broker_type_retries(b, t, retries, backoff);
	b->be.config = config;
	broker_type_unref(b, t);
}
