/*
 * store_journal.c — the journal as the broker's store.
 *
 * Records.  Each broker event about a job becomes one journal record
 * (src/journal.c gives it a length and a CRC-32C); the kind byte is an
 * enum sj_kind.  A payload is fixed-size fields then strings, little-endian:
 *
 *   JOB       i64 priority, i64 timeout_ms, u32 seq, u8 flags, u8 state,
 *             u8 losses, f64 submitted, f64 started, f64 finished,
 *             key, idjson, type, target, worker_name, body, result, partials
 *   DISPATCH  f64 started, key, worker_name
 *   REQUEUE   u8 losses, key
 *   PARTIAL   key, body
 *   FINISH    u8 state, f64 finished, key, result
 *   FORGET    key
 *   SNAPSHOT  u64 next_seq
 *
 * A string is u32 length (0xffffffff: absent), the bytes, then a NUL (so
 * a decoded string can be used in place).
 *
 * Idempotence.  Every record sets state rather than changing it: JOB is a
 * job's whole state (it replaces whatever was known of that key), REQUEUE
 * carries the loss count, not "one more", FORGET deletes.  Replaying a
 * record twice, or an older record before a newer JOB of the same key,
 * ends in the state the newer one says.  PARTIAL is the one that adds; it
 * is never written into a snapshot (a snapshot's JOB holds the partials so
 * far).
 *
 * Compaction.  When the segments hold more than the live state by a
 * segment's worth: S = journal_rotate(), a SNAPSHOT record ("forget every
 * job") then one JOB record per job in the table, then
 * journal_drop_before(S).  A crash between the rotation and the drop leaves
 * the old segments and the snapshot: replay reads the old records, the
 * SNAPSHOT clears them and the JOB records put back exactly the live state.
 * A crash in the middle of the snapshot leaves it torn at the tail (cut at
 * start) or whole; either way nothing of it is acknowledged yet, and the
 * old segments are still there, since the drop waits for the sync.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs.h"
#include "store_journal.h"

#define SJ_ABSENT        0xffffffffu
#define SJ_PARTIALS_MAX  (16u * 1024 * 1024)   /* as broker.c's PARTIALS_MAX */

/* ------------------------------------------------------------- encoding */

static void
put_u8(struct buf *b, uint8_t v)
{
	buf_append(b, &v, 1);
}

static void
put_u32(struct buf *b, uint32_t v)
{
	uint8_t p[4];

	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
	buf_append(b, p, 4);
}

static void
put_u64(struct buf *b, uint64_t v)
{
	uint8_t p[8];

	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
	buf_append(b, p, 8);
}

static void
put_f64(struct buf *b, double d)
{
	uint64_t v;

	memcpy(&v, &d, 8);
	put_u64(b, v);
}

static void
put_str(struct buf *b, struct sj_str s)
{
	if (s.p == NULL) {
		put_u32(b, SJ_ABSENT);
		return;
	}
	put_u32(b, s.n);
	buf_append(b, s.p, s.n);
	put_u8(b, 0);
}

void
sj_encode(const struct sj_rec *r, struct buf *b)
{
	switch (r->kind) {
	case SJ_JOB:
		put_u64(b, (uint64_t)r->priority);
		put_u64(b, (uint64_t)r->timeout_ms);
		put_u32(b, r->seq);
		put_u8(b, r->flags);
		put_u8(b, r->state);
		put_u8(b, r->losses);
		put_f64(b, r->submitted);
		put_f64(b, r->started);
		put_f64(b, r->finished);
		put_str(b, r->key);
		put_str(b, r->idjson);
		put_str(b, r->type);
		put_str(b, r->target);
		put_str(b, r->worker_name);
		put_str(b, r->body);
		put_str(b, r->result);
		put_str(b, r->partials);
		break;
	case SJ_DISPATCH:
		put_f64(b, r->started);
		put_str(b, r->key);
		put_str(b, r->worker_name);
		break;
	case SJ_REQUEUE:
		put_u8(b, r->losses);
		put_str(b, r->key);
		break;
	case SJ_PARTIAL:
		put_str(b, r->key);
		put_str(b, r->body);
		break;
	case SJ_FINISH:
		put_u8(b, r->state);
		put_f64(b, r->finished);
		put_str(b, r->key);
		put_str(b, r->result);
		break;
	case SJ_FORGET:
		put_str(b, r->key);
		break;
	case SJ_SNAPSHOT:
		put_u64(b, r->next_seq);
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

static uint32_t
get_u32(struct rd *d)
{
	uint32_t v = 0;

	if (!need(d, 4))
		return 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)d->p[d->off + i] << (8 * i);
	d->off += 4;
	return v;
}

static uint64_t
get_u64(struct rd *d)
{
	uint64_t v = 0;

	if (!need(d, 8))
		return 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)d->p[d->off + i] << (8 * i);
	d->off += 8;
	return v;
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
		if (r->state < JOB_DONE || r->state > JOB_TIMEOUT)
			d.bad = true;
		break;
	case SJ_FORGET:
		r->key = get_str(&d);
		break;
	case SJ_SNAPSHOT:
		r->next_seq = get_u64(&d);
		return d.bad || d.off != d.len ? -1 : 0;
	default:
		return -1;
	}
	if (r->key.p == NULL || r->key.n == 0 || r->key.n > ID_MAX)
		d.bad = true;
	return d.bad || d.off != d.len ? -1 : 0;
}

/* ------------------------------------------------------ the replayed state */

struct rjob {
	UT_hash_handle hh;
	char          *key;
	char          *idjson, *type, *target, *worker_name;
	char          *body, *result;
	size_t         body_len, result_len;
	struct buf     partials;
	int64_t        priority, timeout_ms;
	uint32_t       seq;
	uint8_t        flags, state, losses;
	double         submitted, started, finished;
};

struct sj_state {
	struct rjob *jobs;
	uint64_t     next_seq;
	uint64_t     ignored;   /* records about jobs the state does not hold */
};

static char *
dup_str(struct sj_str s)
{
	return s.p == NULL ? NULL : xstrndup(s.p, s.n);
}

static void
rjob_free(struct rjob *j)
{
	free(j->key);
	free(j->idjson);
	free(j->type);
	free(j->target);
	free(j->worker_name);
	free(j->body);
	free(j->result);
	buf_free(&j->partials);
	free(j);
}

struct sj_state *
sj_state_new(void)
{
	return xcalloc(1, sizeof(struct sj_state));
}

static void
state_clear(struct sj_state *s)
{
	struct rjob *j, *tmp;

	HASH_ITER(hh, s->jobs, j, tmp) {
		HASH_DEL(s->jobs, j);
		rjob_free(j);
	}
}

void
sj_state_free(struct sj_state *s)
{
	if (s == NULL)
		return;
	state_clear(s);
	free(s);
}

size_t
sj_state_count(const struct sj_state *s)
{
	return HASH_COUNT(s->jobs);
}

uint64_t
sj_state_next_seq(const struct sj_state *s)
{
	return s->next_seq;
}

static void
set_str(char **dst, struct sj_str s)
{
	free(*dst);
	*dst = dup_str(s);
}

/*
 * sj_state_apply: what record r says, applied to the jobs replayed so far.
 * A record about a job the state does not hold (forgotten, or dropped by
 * --repair) is counted and ignored.  Returns 0.
 */
int
sj_state_apply(struct sj_state *s, const struct sj_rec *r)
{
	struct rjob *j = NULL;

	if (r->kind == SJ_SNAPSHOT) {
		state_clear(s);
		s->next_seq = r->next_seq;
		return 0;
	}
	HASH_FIND(hh, s->jobs, r->key.p, r->key.n, j);
	if (r->kind == SJ_JOB) {
		if (j != NULL) {
			HASH_DEL(s->jobs, j);
			rjob_free(j);
		}
		j = xcalloc(1, sizeof *j);
		j->key = dup_str(r->key);
		j->idjson = dup_str(r->idjson);
		j->type = dup_str(r->type);
		j->target = dup_str(r->target);
		j->worker_name = dup_str(r->worker_name);
		j->body = dup_str(r->body);
		j->body_len = r->body.n;
		j->result = dup_str(r->result);
		j->result_len = r->result.n;
		if (r->partials.p != NULL)
			buf_append(&j->partials, r->partials.p, r->partials.n);
		j->priority = r->priority;
		j->timeout_ms = r->timeout_ms;
		j->seq = r->seq;
		j->flags = r->flags;
		j->state = r->state;
		j->losses = r->losses;
		j->submitted = r->submitted;
		j->started = r->started;
		j->finished = r->finished;
		HASH_ADD_KEYPTR(hh, s->jobs, j->key, r->key.n, j);
		if ((uint64_t)r->seq + 1 > s->next_seq)
			s->next_seq = (uint64_t)r->seq + 1;
		return 0;
	}
	if (j == NULL) {
		s->ignored++;
		return 0;
	}
	switch (r->kind) {
	case SJ_DISPATCH:
		if (j->state >= JOB_DONE)
			break;
		j->state = JOB_RUNNING;
		j->started = r->started;
		set_str(&j->worker_name, r->worker_name);
		break;
	case SJ_REQUEUE:
		if (j->state >= JOB_DONE)
			break;
		j->state = JOB_QUEUED;
		j->started = 0;
		j->losses = r->losses;
		break;
	case SJ_PARTIAL:
		if (buf_used(&j->partials) + r->body.n + 1 <= SJ_PARTIALS_MAX) {
			buf_append(&j->partials, r->body.p, r->body.n);
			buf_append(&j->partials, "\n", 1);
		}
		break;
	case SJ_FINISH:
		j->state = r->state;
		j->finished = r->finished;
		set_str(&j->result, r->result);
		j->result_len = r->result.n;
		break;
	case SJ_FORGET:
		HASH_DEL(s->jobs, j);
		rjob_free(j);
		break;
	default:
		break;
	}
	return 0;
}

static int
by_seq(const void *a, const void *b)
{
	const struct rjob *x = *(struct rjob *const *)a;
	const struct rjob *y = *(struct rjob *const *)b;

	if (x->seq == y->seq)
		return 0;
	return seq_before(x->seq, y->seq) ? -1 : 1;
}

int
sj_state_each(struct sj_state *s, double now, sj_restore_cb *cb, void *ctx)
{
	size_t n = HASH_COUNT(s->jobs), i = 0;
	struct rjob **v, *j, *tmp;
	int rc = 0;

	if (n == 0)
		return 0;
	v = xmalloc(n * sizeof *v);
	HASH_ITER(hh, s->jobs, j, tmp)
		v[i++] = j;
	qsort(v, n, sizeof *v, by_seq);
	for (i = 0; i < n && rc == 0; i++) {
		struct restore_req q;

		j = v[i];
		memset(&q, 0, sizeof q);
		q.type = j->type;
		q.key = j->key;
		q.idjson = j->idjson;
		q.body = j->body;
		q.body_len = j->body_len;
		q.priority = j->priority;
		q.seq = j->seq;
		q.submitted = j->submitted;
		q.timeout_ms = j->timeout_ms;
		q.target = j->target;
		q.detach = j->flags & SJ_F_DETACH;
		q.stream = j->flags & SJ_F_STREAM;
		q.notify = j->flags & SJ_F_NOTIFY;
		q.state = j->state;
		q.losses = j->losses;
		q.started = j->started;
		q.finished = j->finished;
		q.worker_name = j->worker_name;
		q.result = j->result;
		q.result_len = j->result_len;
		if (buf_used(&j->partials) > 0) {
			q.partials = buf_head(&j->partials);
			q.partials_len = buf_used(&j->partials);
		}
		if (q.state == JOB_RUNNING) {
			/* Its worker was lost with the daemon. */
			q.losses++;
			q.started = 0;
			q.state = JOB_QUEUED;
			if (q.losses > JOB_MAX_LOSSES) {
				q.state = JOB_FAILED;
				q.finished = now;
			}
		}
		rc = cb(ctx, &q);
	}
	free(v);
	return rc;
}
