/*
 * life_info.c — what is shown and stored of the job lifecycle: the dead
 * and delayed listings, a job's status, its life in info, and the life a
 * store keeps (job_life_json, life_restore).  Apart from life.c: it reads
 * a job's life, it does not change how the job goes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

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
json_t *
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
void
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
