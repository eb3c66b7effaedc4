/*
 * store_journal.c — the journal as the broker's store.
 *
 * Each broker event about a job becomes one journal record, and at start
 * the records become jobs again.  Its files: store_journal.c (the store's
 * glue: the broker's events as records, flushing, replay and opening),
 * sj_codec.c (the records: their format, encoding, decoding), sj_state.c
 * (the replayed state, and why records are idempotent), sj_compact.c
 * (compaction, and why a crash anywhere in it is safe); what they share is
 * in store_journal.h.
 */
#include <errno.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "store/store_journal.h"

/* --------------------------------------------------------- the daemon's glue */

/* job_log_bytes: what j's log adds to a record: set with its ending, and
 * counted then (on_finished). */
static uint64_t
job_log_bytes(const struct job *j)
{
	size_t n;

	return job_log(j, &n) != NULL ? STR_COST(n) : 0;
}

/*
 * job_live_bytes: the bytes a job's JOB record takes in a snapshot, leaving
 * out the worker's name (it changes as the job moves): counted when a job
 * comes and taken away when it goes, so the sum stays true however the job
 * changed in between.
 */
static uint64_t
job_live_bytes(const struct job *j)
{
	const char *target = job_target(j);
	uint64_t n = 8 + 8 + 4 + 3 + 24 + 4 * 3;   /* fixed; 3 absent-able strings */

	n += STR_COST(strlen(j->key));
	n += j->id_is_key ? 4 : STR_COST(strlen(job_idjson(j)));
	n += STR_COST(strlen(j->type->name));
	n += target != NULL ? STR_COST(strlen(target)) : 4;
	n += STR_COST(j->body_len);
	if (j->result != NULL)
		n += 1 + j->result_len;
	n += buf_used(job_partials(j)) > 0 ? 1 + buf_used(job_partials(j)) : 0;
	n += j->owner != NULL ? STR_COST(strlen(j->owner)) : 4;
	n += job_log_bytes(j);
	return REC_BYTES(n);
}

struct sj_str
str_of(const char *p, size_t n)
{
	struct sj_str s = { p, (uint32_t)n };

	return s;
}

static struct sj_str
cstr(const char *p)
{
	return str_of(p, p != NULL ? strlen(p) : 0);
}

/* job_log_str: j's log as a record's string (absent if none). */
static struct sj_str
job_log_str(const struct job *j)
{
	size_t n;
	const char *p = job_log(j, &n);

	return str_of(p, n);
}

/* job_rec_of: the whole state of j as a JOB record (strings point into j,
 * and its life's text into s->life). */
void
job_rec_of(struct store *s, const struct job *j, struct sj_rec *r)
{
	const struct buf *p = job_partials(j);
	json_t *life = job_life_json(j);

	memset(r, 0, sizeof *r);
	r->kind = SJ_JOB;
	r->key = cstr(j->key);
	if (!j->id_is_key)
		r->idjson = cstr(job_idjson(j));
	r->type = cstr(j->type->name);
	r->target = cstr(job_target(j));
	r->worker_name = cstr(j->worker_name);
	r->owner = cstr(j->owner);
	r->body = str_of(job_body(j), j->body_len);
	if (j->result != NULL)
		r->result = str_of(j->result->data, j->result_len);
	if (buf_used(p) > 0)
		r->partials = str_of(buf_head(p), buf_used(p));
	r->log = job_log_str(j);
	r->priority = j->priority;
	r->timeout_ms = j->ext != NULL ? j->ext->timeout_ms : 0;
	r->seq = j->seq;
	r->flags = (j->detach ? SJ_F_DETACH : 0) | (j->stream ? SJ_F_STREAM : 0) |
	    (j->notify ? SJ_F_NOTIFY : 0) | (j->id_is_key ? SJ_F_IDKEY : 0) |
	    (j->dropped ? SJ_F_DROPPED : 0);
	r->state = j->state;
	r->losses = j->losses;
	r->submitted = j->submitted;
	r->started = job_started(j);
	r->finished = job_finished(j);
	if (life != NULL) {
		s->life.off = s->life.len = 0;
		json_dump_callback(life, buf_json_cb, &s->life, JSON_COMPACT);
		r->life = str_of(buf_head(&s->life), buf_used(&s->life));
		buf_append(&s->life, "", 1);   /* NUL, not counted */
		json_decref(life);
	}
}

/*
 * append: one record, and the broker told where the store now stands.  If
 * the journal cannot take it (its memory backlog is full while the disk
 * fails), the record is lost from the log: the whole state is written again
 * (a snapshot) once the journal works, and until that is durable nothing
 * said after now is acknowledged (the mark points past the log's end).
 */
void
append(struct store *s, const struct sj_rec *r)
{
	struct iovec iov[2 * SJ_CUTS_MAX + 1];
	struct sj_cuts *c = &s->cuts;
	size_t at = 0;
	uint64_t lsn;
	int n = 0;

	s->scratch.off = s->scratch.len = 0;
	c->n = 0;
	sj_encode_cuts(r, &s->scratch, c);
	/* The encoding, with each large string gathered from where it lies. */
	for (unsigned i = 0; i < c->n; i++) {
		iov[n].iov_base = buf_head(&s->scratch) + at;
		iov[n++].iov_len = c->at[i] - at;
		iov[n].iov_base = (void *)c->str[i].p;
		iov[n++].iov_len = c->str[i].n;
		at = c->at[i];
	}
	iov[n].iov_base = buf_head(&s->scratch) + at;
	iov[n++].iov_len = buf_used(&s->scratch) - at;
	s->last_len = buf_used(&s->scratch);
	for (unsigned i = 0; i < c->n; i++)
		s->last_len += c->str[i].n;
	lsn = journal_append(s->j, (uint8_t)r->kind, iov, n);
	if (lsn == 0) {
		if (!s->need_snapshot)
			log_warn("journal: %s: a record could not be kept (%s): "
			    "the whole state is written again once the disk works",
			    s->opt.dir, strerror(errno));
		s->need_snapshot = true;
		s->lost_appends++;
		lsn = journal_appended_lsn(s->j) + 1;
	}
	broker_store_mark(s->b, lsn);
}

static void
on_submitted(void *ctx, struct job *j)
{
	struct store *s = ctx;
	struct sj_rec r;

	if (broker_restoring(s->b))
		return;
	job_rec_of(s, j, &r);
	r.worker_name.p = NULL;
	r.worker_name.n = 0;
	append(s, &r);
	s->live_bytes += job_live_bytes(j);
}

/*
 * rec_about: start r as a record of kind about job j, unless the broker is
 * restoring (the journal already holds what a replay emits): then false.
 */
static bool
rec_about(struct store *s, struct sj_rec *r, enum sj_kind kind, const struct job *j)
{
	if (broker_restoring(s->b))
		return false;
	memset(r, 0, sizeof *r);
	r->kind = kind;
	r->key = cstr(j->key);
	return true;
}

static void
on_dispatched(void *ctx, struct job *j, struct worker *w)
{
	struct store *s = ctx;
	struct sj_rec r;

	(void)w;
	if (!rec_about(s, &r, SJ_DISPATCH, j))
		return;
	r.worker_name = cstr(j->worker_name);
	r.started = job_started(j);
	append(s, &r);
}

static void
on_requeued(void *ctx, struct job *j)
{
	struct store *s = ctx;
	struct sj_rec r;

	if (!rec_about(s, &r, SJ_REQUEUE, j))
		return;
	r.losses = j->losses;
	append(s, &r);
}

static void
on_partial(void *ctx, struct job *j, const char *body, size_t len)
{
	struct store *s = ctx;
	const struct buf *p = job_partials(j);
	struct sj_rec r;

	/* Only what the job kept (within its limit) is journaled. */
	if (buf_used(p) < len + 1 ||
	    memcmp(buf_head(p) + buf_used(p) - len - 1, body, len) != 0)
		return;
	if (!rec_about(s, &r, SJ_PARTIAL, j))
		return;
	r.body = str_of(body, len);
	append(s, &r);
	s->live_bytes += len + 1 + (buf_used(p) == len + 1 ? 1 : 0);
}

static void
on_finished(void *ctx, struct job *j, struct worker *w)
{
	struct store *s = ctx;
	struct sj_rec r;

	(void)w;
	if (!rec_about(s, &r, SJ_FINISH, j))
		return;
	r.state = j->state;
	r.finished = job_finished(j);
	if (j->result != NULL) {
		r.result = str_of(j->result->data, j->result_len);
		s->live_bytes += 1 + j->result_len;
	}
	r.log = job_log_str(j);
	s->live_bytes += job_log_bytes(j);
	append(s, &r);
}

static void
on_forgotten(void *ctx, struct job *j)
{
	struct store *s = ctx;
	struct sj_rec r;
	uint64_t n;

	if (!rec_about(s, &r, SJ_FORGET, j))
		return;
	append(s, &r);
	n = job_live_bytes(j);
	s->live_bytes = s->live_bytes > n ? s->live_bytes - n : 0;
}

/* on_changed: a job's life changed: its whole state again. */
static void
on_changed(void *ctx, struct job *j)
{
	struct store *s = ctx;
	struct sj_rec r;

	if (broker_restoring(s->b))
		return;
	job_rec_of(s, j, &r);
	append(s, &r);
}

/* on_dropped: its body, result and partials went (--keep-bytes): its
 * whole state again, without them, and the live state less by them. */
static void
on_dropped(void *ctx, struct job *j, size_t body, size_t result, size_t partials)
{
	struct store *s = ctx;
	uint64_t n = body + (result > 0 ? 1 + result : 0) + (partials > 0 ? 1 + partials : 0);

	if (broker_restoring(s->b))
		return;
	on_changed(ctx, j);
	s->live_bytes = s->live_bytes > n ? s->live_bytes - n : 0;
}

static void
type_rec_of(const struct jtype *t, struct sj_rec *r)
{
	memset(r, 0, sizeof *r);
	r->kind = SJ_TYPE;
	r->key = cstr(t->name);
	r->paused = t->paused;
	r->limit = t->limit;
	r->retries = t->retries;
	r->backoff_ms = t->backoff_ms;
}

/* type_rec_append: a configured type's settings, into a snapshot. */
bool
type_rec_append(void *ctx, struct jtype *t)
{
	struct sj_rec r;

	if (broker_type_configured(t)) {
		type_rec_of(t, &r);
		append(ctx, &r);
	}
	return true;
}

static void
on_type_changed(void *ctx, struct jtype *t)
{
	struct store *s = ctx;
	struct sj_rec r;

	if (s->opening)
		return;
	type_rec_of(t, &r);
	append(s, &r);
}

static void
on_durable(void *ctx, uint64_t lsn)
{
	struct store *s = ctx;

	broker_store_durable(s->b, lsn);
}

/*
 * store_flush: once per loop turn, before any acknowledgement is written:
 * compact if due, write (and start syncing) what the turn appended, and
 * tell the broker whether the journal can take writes.
 */
void
store_flush(struct store *s)
{
	int e;

	if (journal_renewed(s->j))
		s->need_snapshot = true;   /* a new DIR: the old records are gone */
	maybe_compact(s);
	journal_flush(s->j);
	e = journal_error(s->j);
	if (e == 0 && s->need_snapshot)
		e = ENOBUFS;    /* records were lost: refuse until written again */
	if (e != s->err) {
		char why[128];

		s->err = e;
		snprintf(why, sizeof why, "journal: %s%s", strerror(e),
		    e == ENOENT ? " (the data directory was deleted)" : "");
		broker_store_set_error(s->b, e, e != 0 ? why : NULL);
		if (e == 0)
			log_info("journal: %s: taking writes again", s->opt.dir);
	}
	/* What the journal had not written or synced may never be: what
	 * waits for it is answered now rather than when the disk works. */
	if (journal_error(s->j) != 0)
		broker_store_failed(s->b);
}

void
store_stats(struct store *s, json_t *o)
{
	struct journal_stats st;

	journal_stats(s->j, &st);
	json_object_set_new(o, "journal_bytes", json_integer((json_int_t)st.disk_bytes));
	json_object_set_new(o, "journal_segments", json_integer((json_int_t)st.segments));
	json_object_set_new(o, "journal_live_bytes", json_integer((json_int_t)s->live_bytes));
	json_object_set_new(o, "journal_records", json_integer((json_int_t)st.records));
	json_object_set_new(o, "journal_syncs", json_integer((json_int_t)st.syncs));
	json_object_set_new(o, "journal_sync_last_us", json_integer((json_int_t)st.sync_last_us));
	json_object_set_new(o, "journal_sync_max_us", json_integer((json_int_t)st.sync_max_us));
	json_object_set_new(o, "journal_compactions", json_integer((json_int_t)s->compactions));
	json_object_set_new(o, "journal_backlog_bytes", json_integer((json_int_t)st.backlog_bytes));
	json_object_set_new(o, "journal_error", json_integer(st.error));
}

/* ------------------------------------------------------------- replay */

struct replay_ctx {
	struct sj_state *st;
	bool             repair;
	uint64_t         bad;     /* records whose CRC held but not their form */
	char            *err;
	size_t           errlen;
};

static int
replay_rec(void *ctx, uint8_t kind, const void *payload, uint32_t len)
{
	struct replay_ctx *rc = ctx;
	struct sj_rec r;

	if (sj_decode(kind, payload, len, &r) < 0) {
		rc->bad++;
		if (rc->repair)
			return 0;
		snprintf(rc->err, rc->errlen, "a record of kind %u and %u bytes "
		    "is not one this jobfs writes (a newer jobfs's journal?)",
		    kind, len);
		return -1;
	}
	return sj_state_apply(rc->st, &r);
}

struct restore_ctx {
	struct store *s;
	uint64_t      n[JOB_TIMEOUT + 1];
	uint64_t      requeued, failed_lost, refused;
};

static int
restore_one(void *ctx, const struct restore_req *q, bool was_running)
{
	struct restore_ctx *rc = ctx;
	struct sj_rec r;
	struct job *j;

	if (broker_restore(rc->s->b, q) != 0) {
		rc->refused++;
		log_warn("journal: job %s could not be restored", q->key);
		return 0;
	}
	rc->n[q->state]++;
	if (was_running) {
		/* Its loss (or the failure it caused) is a change to record. */
		memset(&r, 0, sizeof r);
		r.key = cstr(q->key);
		if (q->state == JOB_QUEUED) {
			r.kind = SJ_REQUEUE;
			r.losses = (uint8_t)q->losses;
		} else {
			r.kind = SJ_FINISH;
			r.state = q->state;
			r.finished = q->finished;
		}
		append(rc->s, &r);
	}
	if ((j = broker_find(rc->s->b, q->key)) != NULL)
		rc->s->live_bytes += job_live_bytes(j);
	return 0;
}

/* restore_type: a type's settings as the journal kept them. */
static void
restore_type(void *ctx, const struct sj_rec *r)
{
	struct store *s = ctx;
	struct jtype *t;

	if (broker_type_configure(s->b, r->key.p, r->limit, r->retries, r->backoff_ms) != BERR_OK)
		log_warn("journal: type %s: settings out of range: not restored", r->key.p);
	if (r->paused && (t = broker_type(s->b, r->key.p, true)) != NULL)
		broker_type_pause(s->b, t, true);
}

static const struct broker_listener store_listener = {
	.job_submitted = on_submitted,
	.job_dispatched = on_dispatched,
	.job_requeued = on_requeued,
	.job_partial = on_partial,
	.job_finished = on_finished,
	.job_forgotten = on_forgotten,
	.job_dropped = on_dropped,
	.job_changed = on_changed,
	.type_changed = on_type_changed,
	.schedule_changed = on_schedule_changed,
};

struct store *
store_open(struct server *srv, const struct store_opts *opt, char *err,
    size_t errlen)
{
	struct store *s = xcalloc(1, sizeof *s);
	struct journal_opts jo = {
		.sync = opt->sync,
		.interval_ms = opt->interval_ms,
		.segment_bytes = opt->segment_bytes,
		.repair = opt->repair,
		/* A compaction appends the whole live state in one turn: room
		 * for the bodies --max-memory allows, twice, and then some. */
		.max_backlog = 2 * srv->opt.max_memory + (256u << 20),
		.on_durable = on_durable,
		.ctx = s,
	};
	struct journal_replay_info info;
	struct replay_ctx rpc = { sj_state_new(), opt->repair, 0, err, errlen };
	struct restore_ctx rsc = { .s = s };
	struct broker_listener l = store_listener;
	double t0 = now_wall();
	uint64_t torn;
	int e;

	s->srv = srv;
	s->b = srv->broker;
	s->opt = *opt;
	s->opt.dir = xstrdup(opt->dir);
	if ((s->j = journal_open(srv->loop, opt->dir, &jo, err, errlen)) == NULL)
		goto fail;
	if (journal_replay(s->j, replay_rec, &rpc, &info, err, errlen) < 0) {
		errno = EINVAL;
		goto fail;
	}
	if (sj_state_drop_torn(rpc.st, &torn)) {
		struct sj_rec r = { .kind = SJ_SNAP_ABORT };

		log_warn("journal: %s: a compaction's snapshot that a crash cut "
		    "short (%" PRIu64 " records of it) ignored: the segments "
		    "before it hold the jobs", s->opt.dir, torn);
		/* Before any other record: what follows it is not the
		 * snapshot's, for every later replay too. */
		append(s, &r);
	}
	if (sj_state_short(rpc.st) > 0)
		log_warn("journal: %s: %" PRIu64 " snapshots had fewer records "
		    "than their end said: each ignored where the segments before "
		    "it held jobs, else read without the missing ones",
		    s->opt.dir, sj_state_short(rpc.st));
	l.ctx = s;
	broker_store_listen(s->b, &l);
	/* Types' settings first: a paused type's jobs come back paused. */
	s->opening = true;
	sj_state_types_each(rpc.st, restore_type, s);
	s->opening = false;
	sj_state_each(rpc.st, now_wall(), restore_one, &rsc);
	/* Schedules after the jobs: a due time whose job is back is not
	 * fired again (its id exists). */
	sj_state_scheds_each(rpc.st, restore_sched, s);
	sj_state_running(rpc.st, &rsc.requeued, &rsc.failed_lost);
	log_info("journal: %s: %" PRIu64 " records in %u segments replayed in "
	    "%.3f s: %" PRIu64 " jobs queued (%" PRIu64 " were running: queued "
	    "again, counting a loss), %" PRIu64 " failed by that loss (the "
	    "4th), %" PRIu64 " finished",
	    s->opt.dir, info.records, info.segments, now_wall() - t0,
	    rsc.n[JOB_QUEUED], rsc.requeued, rsc.failed_lost,
	    rsc.n[JOB_DONE] + rsc.n[JOB_FAILED] + rsc.n[JOB_CANCELLED] +
	    rsc.n[JOB_TIMEOUT]);
	if (opt->repair && (info.dropped_regions > 0 || rpc.bad > 0))
		log_warn("journal: %s: --repair dropped %" PRIu64 " damaged "
		    "bytes in %" PRIu64 " places (each held at least one record) "
		    "and %" PRIu64 " unreadable records; %" PRIu64 " later records "
		    "named jobs no longer known: the jobs in the dropped records "
		    "are lost", s->opt.dir, info.dropped_bytes,
		    info.dropped_regions, rpc.bad, sj_state_ignored(rpc.st));
	else if (opt->repair)
		log_info("journal: %s: --repair: nothing was damaged", s->opt.dir);
	sj_state_free(rpc.st);
#ifdef __GLIBC__
	/* The replayed state was as large as the jobs it became, and lies
	 * below them in the heap: glibc keeps such free pages resident
	 * (only the top of the heap shrinks by itself), which doubled the
	 * daemon's memory after a restart.  Give them back. */
	malloc_trim(0);
#endif
	return s;

fail:
	e = errno;
	sj_state_free(rpc.st);
	if (s->j != NULL)
		journal_close(s->j);
	free((char *)s->opt.dir);
	free(s);
	errno = e;
	return NULL;
}

/* store_close: write and sync what is left (the broker has stopped). */
void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	journal_close(s->j);
	buf_free(&s->scratch);
	buf_free(&s->life);
	free((char *)s->opt.dir);
	free(s);
}
