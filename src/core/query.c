/*
 * query.c — what faces may read of the broker without walking its
 * structures: listings of every job (cursors), types, queues in dispatch
 * order, workers, a job's info and its log.  Apart from broker.c because
 * none of it changes how jobs go (only the log of a job is set here).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* ----------------------------------------------------------- listing */

/*
 * all_remove: j leaves the list of every job; a cursor on it moves on.
 * O(open cursors): one per jobs/ directory open in the tree.
 */
void
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
void
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
