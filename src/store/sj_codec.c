/*
 * sj_codec.c — the journal store's records: what each kind holds, and
 * their encoding and decoding (sj_encode, sj_decode).
 *
 * Records.  Each broker event about a job becomes one journal record
 * (src/journal.c gives it a length and a CRC-32C); the kind byte is an
 * enum sj_kind.  A payload is fixed-size fields then strings, little-endian:
 *
 *   JOB       i64 priority, i64 timeout_ms, u32 seq, u8 flags, u8 state,
 *             u8 losses, f64 submitted, f64 started, f64 finished,
 *             key, idjson, type, target, worker_name, body, result, partials,
 *             owner (present when flags has SJ_F_OWNER: always written,
 *             absent from records written before owners existed)
 *   DISPATCH  f64 started, key, worker_name
 *   REQUEUE   u8 losses, key
 *   PARTIAL   key, body
 *   FINISH    u8 state, f64 finished, key, result, then log (the job's
 *             log, see below) if it has one
 *   FORGET    key
 *   SNAPSHOT  u64 next_seq (read only: journals written before SNAP_BEGIN)
 *   TYPE      u8 paused, u32 limit, i32 retries, i64 backoff_ms, key (the
 *             type's name)
 *   SNAP_BEGIN  u64 next_seq
 *   SNAP_END    u64 records (how many between it and its SNAP_BEGIN)
 *   SNAP_ABORT  nothing
 *   SCHED     key (the job type, a newline, the schedule's name), spec (the
 *             schedule as JSON: schedule_json's text, with its last fired
 *             due time; absent: the schedule was removed).  Written when a
 *             schedule is added, replaced, fires or goes, and for each in a
 *             snapshot; a journal of before schedules has none.
 *
 * The job lifecycle added TYPE and, at the end of JOB after
 * the owner, one more string, life (the job's retries, delay, attempts,
 * dependencies as job_life_json's text), present when flags has
 * SJ_F_LIFE, written only when the job has a life: a journal written
 * before is read as it was, and a job without a life is written as
 * before.  A life's change (a retry scheduled, a kick, a failure's
 * error, a dependency's cancel) is a new JOB record: whole state again.
 * A delayed job coming due, or a dependency done, writes nothing: replay
 * finds it due, or its dependency done, again.
 * A job's log (what its worker's command printed, job_log) came later
 * still: the last string of JOB when flags has SJ_F_LOG, and of FINISH
 * when the record goes on past its result; both are written only when the
 * job has a log, so a journal without logs reads as before.
 * Retention by bytes (--keep-bytes) drops a finished job's body, result
 * and partials: a JOB record again, with SJ_F_DROPPED in its flags and
 * the three empty, so that a replay does not bring them back.
 * A string is u32 length (0xffffffff: absent), the bytes, then a NUL (so
 * a decoded string can be used in place).
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

#define SJ_ABSENT        0xffffffffu

/* ------------------------------------------------------------- encoding */

static void
put_u8(struct buf *b, uint8_t v)
{
	buf_append(b, &v, 1);
}

/* put_le: v as n little-endian bytes. */
static void
put_le(struct buf *b, uint64_t v, int n)
{
	uint8_t p[8];

	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	buf_append(b, p, (size_t)n);
}

static void
put_u32(struct buf *b, uint32_t v)
{
	put_le(b, v, 4);
}

static void
put_u64(struct buf *b, uint64_t v)
{
	put_le(b, v, 8);
}

static void
put_f64(struct buf *b, double d)
{
	uint64_t v;

	memcpy(&v, &d, 8);
	put_u64(b, v);
}

/* put_str: s, or with cuts (sj_encode_cuts) a large s only noted there. */
static void
put_str(struct buf *b, struct sj_cuts *cuts, struct sj_str s)
{
	if (s.p == NULL) {
		put_u32(b, SJ_ABSENT);
		return;
	}
	put_u32(b, s.n);
	if (cuts != NULL && s.n >= SJ_GATHER_MIN && cuts->n < SJ_CUTS_MAX) {
		cuts->at[cuts->n] = buf_used(b);
		cuts->str[cuts->n++] = s;
	} else
		buf_append(b, s.p, s.n);
	put_u8(b, 0);
}

void
sj_encode(const struct sj_rec *r, struct buf *b)
{
	sj_encode_cuts(r, b, NULL);
}

void
sj_encode_cuts(const struct sj_rec *r, struct buf *b, struct sj_cuts *cuts)
{
	switch (r->kind) {
	case SJ_JOB:
		put_u64(b, (uint64_t)r->priority);
		put_u64(b, (uint64_t)r->timeout_ms);
		put_u32(b, r->seq);
		put_u8(b, r->flags | SJ_F_OWNER | (r->life.p != NULL ? SJ_F_LIFE : 0) |
		    (r->log.p != NULL ? SJ_F_LOG : 0));
		put_u8(b, r->state);
		put_u8(b, r->losses);
		put_f64(b, r->submitted);
		put_f64(b, r->started);
		put_f64(b, r->finished);
		put_str(b, cuts, r->key);
		put_str(b, cuts, r->idjson);
		put_str(b, cuts, r->type);
		put_str(b, cuts, r->target);
		put_str(b, cuts, r->worker_name);
		put_str(b, cuts, r->body);
		put_str(b, cuts, r->result);
		put_str(b, cuts, r->partials);
		put_str(b, cuts, r->owner);
		if (r->life.p != NULL)
			put_str(b, cuts, r->life);
		if (r->log.p != NULL)
			put_str(b, cuts, r->log);
		break;
	case SJ_TYPE:
		put_u8(b, r->paused);
		put_u32(b, r->limit);
		put_u32(b, (uint32_t)r->retries);
		put_u64(b, (uint64_t)r->backoff_ms);
		put_str(b, cuts, r->key);
		break;
	case SJ_SCHED:
		put_str(b, cuts, r->key);
		put_str(b, cuts, r->spec);
		break;
	case SJ_DISPATCH:
		put_f64(b, r->started);
		put_str(b, cuts, r->key);
		put_str(b, cuts, r->worker_name);
		break;
	case SJ_REQUEUE:
		put_u8(b, r->losses);
		put_str(b, cuts, r->key);
		break;
	case SJ_PARTIAL:
		put_str(b, cuts, r->key);
		put_str(b, cuts, r->body);
		break;
	case SJ_FINISH:
		put_u8(b, r->state);
		put_f64(b, r->finished);
		put_str(b, cuts, r->key);
		put_str(b, cuts, r->result);
		if (r->log.p != NULL)
			put_str(b, cuts, r->log);
		break;
	case SJ_FORGET:
		put_str(b, cuts, r->key);
		break;
	case SJ_SNAPSHOT:
	case SJ_SNAP_BEGIN:
		put_u64(b, r->next_seq);
		break;
	case SJ_SNAP_END:
		put_u64(b, r->records);
		break;
	case SJ_SNAP_ABORT:
		break;
	}
}

/* ------------------------------------------------------------- decoding */

struct rd {
	const uint8_t *p;
	uint32_t       len, off;
	bool           bad;
};

static bool
need(struct rd *d, uint32_t n)
{
	if (d->bad || d->len - d->off < n) {
		d->bad = true;
		return false;
	}
	return true;
}

static uint8_t
get_u8(struct rd *d)
{
	return need(d, 1) ? d->p[d->off++] : 0;
}

/* get_le: an n-byte little-endian unsigned integer (0 past the end). */
static uint64_t
get_le(struct rd *d, int n)
{
	uint64_t v = 0;

	if (!need(d, (uint32_t)n))
		return 0;
	for (int i = 0; i < n; i++)
		v |= (uint64_t)d->p[d->off + i] << (8 * i);
	d->off += (size_t)n;
	return v;
}

static uint32_t
get_u32(struct rd *d)
{
	return (uint32_t)get_le(d, 4);
}

static uint64_t
get_u64(struct rd *d)
{
	return get_le(d, 8);
}

static double
get_f64(struct rd *d)
{
	uint64_t v = get_u64(d);
	double f;

	memcpy(&f, &v, 8);
	return f;
}

static struct sj_str
get_str(struct rd *d)
{
	struct sj_str s = { NULL, 0 };
	uint32_t n = get_u32(d);

	if (d->bad || n == SJ_ABSENT)
		return s;
	if (n > d->len || !need(d, n + 1) || d->p[d->off + n] != '\0') {
		d->bad = true;
		return s;
	}
	s.p = (const char *)d->p + d->off;
	s.n = n;
	d->off += n + 1;
	return s;
}

int
sj_decode(uint8_t kind, const void *payload, uint32_t len, struct sj_rec *r)
{
	struct rd d = { payload, len, 0, false };

	memset(r, 0, sizeof *r);
	r->kind = kind;
	switch (kind) {
	case SJ_JOB:
		r->priority = (int64_t)get_u64(&d);
		r->timeout_ms = (int64_t)get_u64(&d);
		r->seq = get_u32(&d);
		r->flags = get_u8(&d);
		r->state = get_u8(&d);
		r->losses = get_u8(&d);
		r->submitted = get_f64(&d);
		r->started = get_f64(&d);
		r->finished = get_f64(&d);
		r->key = get_str(&d);
		r->idjson = get_str(&d);
		r->type = get_str(&d);
		r->target = get_str(&d);
		r->worker_name = get_str(&d);
		r->body = get_str(&d);
		r->result = get_str(&d);
		r->partials = get_str(&d);
		if (r->flags & SJ_F_OWNER)
			r->owner = get_str(&d);
		if (r->flags & SJ_F_LIFE)
			r->life = get_str(&d);
		if (r->flags & SJ_F_LOG)
			r->log = get_str(&d);
		r->flags &= (uint8_t)~(SJ_F_OWNER | SJ_F_LIFE | SJ_F_LOG);
		if (r->type.p == NULL || r->body.p == NULL || r->state > JOB_TIMEOUT)
			d.bad = true;
		break;
	case SJ_DISPATCH:
		r->started = get_f64(&d);
		r->key = get_str(&d);
		r->worker_name = get_str(&d);
		break;
	case SJ_REQUEUE:
		r->losses = get_u8(&d);
		r->key = get_str(&d);
		break;
	case SJ_PARTIAL:
		r->key = get_str(&d);
		r->body = get_str(&d);
		if (r->body.p == NULL)
			d.bad = true;
		break;
	case SJ_FINISH:
		r->state = get_u8(&d);
		r->finished = get_f64(&d);
		r->key = get_str(&d);
		r->result = get_str(&d);
		if (!d.bad && d.off < d.len)
			r->log = get_str(&d);
		if (r->state < JOB_DONE || r->state > JOB_TIMEOUT)
			d.bad = true;
		break;
	case SJ_FORGET:
		r->key = get_str(&d);
		break;
	case SJ_TYPE:
		r->paused = get_u8(&d);
		r->limit = get_u32(&d);
		r->retries = (int32_t)get_u32(&d);
		r->backoff_ms = (int64_t)get_u64(&d);
		r->key = get_str(&d);
		break;
	case SJ_SCHED:
		r->key = get_str(&d);
		r->spec = get_str(&d);
		break;
	case SJ_SNAPSHOT:
	case SJ_SNAP_BEGIN:
		r->next_seq = get_u64(&d);
		return d.bad || d.off != d.len ? -1 : 0;
	case SJ_SNAP_END:
		r->records = get_u64(&d);
		return d.bad || d.off != d.len ? -1 : 0;
	case SJ_SNAP_ABORT:
		return len != 0 ? -1 : 0;
	default:
		return -1;
	}
	if (r->key.p == NULL || r->key.n == 0 || r->key.n > ID_MAX)
		d.bad = true;
	return d.bad || d.off != d.len ? -1 : 0;
}

