/*
 * store_journal.c — the journal as the broker's store.
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
 *
 * Idempotence.  Every record sets state rather than changing it: JOB is a
 * job's whole state (it replaces whatever was known of that key), REQUEUE
 * carries the loss count, not "one more", FORGET deletes.  Replaying a
 * record twice, or an older record before a newer JOB of the same key,
 * ends in the state the newer one says.  PARTIAL is the one that adds; it
 * is never written into a snapshot (a snapshot's JOB holds the partials so
 * far).
 *
 * Compaction.  When the segments hold more than the live state by half a
 * segment: S = journal_rotate(), then in one loop turn SNAP_BEGIN, one
 * TYPE record per configured type and one JOB record per job in the
 * table, SNAP_END (with the count of records between), then
 * journal_drop_before(S).  The journal writes them into S in one piece
 * after the old segments are synced, and unlinks the old segments only
 * once S's records up to SNAP_END are synced and S's directory entry too
 * (journal.c, in every --sync mode: with --sync never a kill -9 keeps the
 * page cache, so what counts there is that the unlinks come after the
 * whole snapshot is written, which they do).
 *
 * A compaction is atomic as a whole.  Replay reads every segment in order;
 * SNAP_BEGIN starts a state on the side that the snapshot's records build,
 * and only SNAP_END makes it the state (everything before is forgotten).
 * So:
 *   - a crash before SNAP_END is written (or before it is durable, with a
 *     power cut) leaves the old segments whole and the snapshot torn at
 *     the tail of the last segment: the journal cuts the torn record (and
 *     logs "torn tail cut"), replay finds no SNAP_END, drops the side
 *     state and keeps what the old segments said, and the store appends
 *     SNAP_ABORT before any other record, so that what it writes next in
 *     S is not read as part of the snapshot by a later replay either;
 *   - a crash after SNAP_END is durable, before or between the unlinks,
 *     leaves the snapshot and some old segments (always the newest ones:
 *     they are unlinked oldest first): replay reads them, then the whole
 *     snapshot replaces what they made;
 *   - records after SNAP_END (later turns, in S) apply to that state;
 *   - a snapshot with fewer records than its SNAP_END says (--repair
 *     dropped some, as after a power cut that wrote its end but not all
 *     of it) replaces nothing: it is ignored if anything came before it,
 *     and read as it is only if nothing did (its old segments are gone).
 * A record of the snapshot that the journal could not take (its memory
 * backlog full) makes the compaction end with SNAP_ABORT (which the
 * journal always takes) instead of SNAP_END, and drop nothing.  Journals
 * written before SNAP_BEGIN hold SNAPSHOT records: read as they were
 * meant, forgetting every job at once.
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

static struct sj_str str_of(const char *p, size_t n);

#define SJ_ABSENT        0xffffffffu
#define SJ_PARTIALS_MAX  (16u * 1024 * 1024)   /* as ending.c's PARTIALS_MAX */

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

/*
 * Strings of at least SJ_GATHER_MIN bytes (bodies, results) need not be
 * copied into the encoding: with cuts, put_str notes where each goes and
 * append() hands the journal an iovec that points at the string where it
 * lies (the job's body or result), between pieces of the encoding.
 */
#define SJ_GATHER_MIN 1024
#define SJ_CUTS_MAX   4     /* body, result, partials, log */

struct sj_cuts {
	unsigned      n;
	size_t        at[SJ_CUTS_MAX];   /* offset in the encoding */
	struct sj_str str[SJ_CUTS_MAX];
};

static struct sj_cuts *cuts;   /* set while append() encodes */

static void
put_str(struct buf *b, struct sj_str s)
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
		put_str(b, r->key);
		put_str(b, r->idjson);
		put_str(b, r->type);
		put_str(b, r->target);
		put_str(b, r->worker_name);
		put_str(b, r->body);
		put_str(b, r->result);
		put_str(b, r->partials);
		put_str(b, r->owner);
		if (r->life.p != NULL)
			put_str(b, r->life);
		if (r->log.p != NULL)
			put_str(b, r->log);
		break;
	case SJ_TYPE:
		put_u8(b, r->paused);
		put_u32(b, r->limit);
		put_u32(b, (uint32_t)r->retries);
		put_u64(b, (uint64_t)r->backoff_ms);
		put_str(b, r->key);
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
		if (r->log.p != NULL)
			put_str(b, r->log);
		break;
	case SJ_FORGET:
		put_str(b, r->key);
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

/* ------------------------------------------------------ the replayed state */

struct rjob {
	uint32_t       hash;          /* of key, as in its slot */
	char          *key;
	char          *idjson, *type, *target, *worker_name, *owner;
	char          *body, *result, *life;
	size_t         body_len, result_len;
	char          *log;           /* NULL: none */
	size_t         log_len;
	struct buf     partials;
	int64_t        priority, timeout_ms;
	uint32_t       seq;
	uint8_t        flags, state, losses;
	double         submitted, started, finished;
};

/* A type's settings, as its last TYPE record said. */
struct rtype {
	UT_hash_handle hh;
	struct sj_rec  r;          /* key points at name */
	char          *name;
};

/*
 * The replayed jobs by key: open addressing with linear probing, each slot
 * holding the key's hash beside the job, so that a probe (a replay of a
 * million jobs makes a million of them, nearly all for a new key) touches
 * a job only when the hash matches.  At most half full.
 */
struct rslot {
	uint32_t     hash;
	struct rjob *job;             /* NULL: empty; RTOMB: deleted */
};
#define RTOMB ((struct rjob *)1)

struct sj_state {
	struct rslot *slots;
	size_t       cap, count, tombs;
	struct rtype *types;         /* type settings (SJ_TYPE) */
	uint64_t     next_seq;
	uint64_t     ignored;   /* records about jobs the state does not hold */
	uint64_t     was_running, lost;  /* sj_state_each: queued again, failed */
	/* A snapshot being read: its records build this state on the side,
	 * which replaces the state at SNAP_END; nothing of it counts before. */
	struct sj_state *snap;
	uint64_t     snap_records;   /* records since its SNAP_BEGIN */
	uint64_t     snaps_short;    /* with fewer records than its end said */
};

static char *
dup_str(struct sj_str s)
{
	return s.p == NULL ? NULL : xstrndup(s.p, s.n);
}

/* An rjob's key, idjson, type, target and body lie in its own allocation
 * (they never change); worker_name and result are allocated apart. */
static void
rjob_free(struct rjob *j)
{
	free(j->worker_name);
	free(j->owner);
	free(j->result);
	free(j->life);
	free(j->log);
	buf_free(&j->partials);
	free(j);
}

/* rjob_put: copy s to *p (with a NUL) and move *p past it; NULL if absent. */
static char *
rjob_put(char **p, struct sj_str s)
{
	char *d = *p;

	if (s.p == NULL)
		return NULL;
	memcpy(d, s.p, s.n);
	d[s.n] = '\0';
	*p += s.n + 1;
	return d;
}

#define RJOB_STR(s) ((s).p != NULL ? (s).n + 1 : 0)

struct sj_state *
sj_state_new(void)
{
	return xcalloc(1, sizeof(struct sj_state));
}

static uint32_t
rkey_hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u;  /* FNV-1a, then a final mix */

	while (n-- > 0)
		h = (h ^ (unsigned char)*p++) * 16777619u;
	h ^= h >> 16;
	h *= 0x7feb352d;
	h ^= h >> 15;
	return h;
}

/* rt_find: the slot of key (p, n), or NULL. */
static struct rslot *
rt_find(const struct sj_state *s, const char *p, size_t n, uint32_t h)
{
	size_t k;
	struct rslot *sl;

	if (s->cap == 0)
		return NULL;
	for (k = h & (s->cap - 1); (sl = &s->slots[k])->job != NULL; k = (k + 1) & (s->cap - 1))
		if (sl->job != RTOMB && sl->hash == h && strncmp(sl->job->key, p, n) == 0 &&
		    sl->job->key[n] == '\0')
			return sl;
	return NULL;
}

static void
rt_resize(struct sj_state *s, size_t cap)
{
	struct rslot *old = s->slots;
	size_t oldcap = s->cap, i, k;

	s->slots = xcalloc(cap, sizeof *s->slots);
	s->cap = cap;
	s->tombs = 0;
	for (i = 0; i < oldcap; i++) {
		if (old[i].job == NULL || old[i].job == RTOMB)
			continue;
		for (k = old[i].hash & (cap - 1); s->slots[k].job != NULL; k = (k + 1) & (cap - 1))
			;
		s->slots[k] = old[i];
	}
	free(old);
}

/* rt_add: j (not in the table; j->hash set). */
static void
rt_add(struct sj_state *s, struct rjob *j)
{
	size_t k;

	if (2 * (s->count + s->tombs + 1) > s->cap)
		rt_resize(s, s->cap == 0 ? 1024 : 2 * (s->count + 1) > s->cap ? 2 * s->cap : s->cap);
	for (k = j->hash & (s->cap - 1); s->slots[k].job != NULL && s->slots[k].job != RTOMB;
	    k = (k + 1) & (s->cap - 1))
		;
	if (s->slots[k].job == RTOMB)
		s->tombs--;
	s->slots[k].hash = j->hash;
	s->slots[k].job = j;
	s->count++;
}

/* rt_del: free the job in slot sl and leave a tombstone. */
static void
rt_del(struct sj_state *s, struct rslot *sl)
{
	rjob_free(sl->job);
	sl->job = RTOMB;
	s->count--;
	s->tombs++;
}

static void
state_clear(struct sj_state *s)
{
	size_t i;

	for (i = 0; i < s->cap; i++)
		if (s->slots[i].job != NULL && s->slots[i].job != RTOMB)
			rjob_free(s->slots[i].job);
	free(s->slots);
	s->slots = NULL;
	s->cap = s->count = s->tombs = 0;

	struct rtype *t, *ttmp;

	HASH_ITER(hh, s->types, t, ttmp) {
		HASH_DEL(s->types, t);
		free(t->name);
		free(t);
	}
}

void
sj_state_free(struct sj_state *s)
{
	if (s == NULL)
		return;
	sj_state_free(s->snap);
	state_clear(s);
	free(s);
}

/* state_take: s becomes what the snapshot read on the side made (its
 * jobs, types and next sequence number), and the side state goes. */
static void
state_take(struct sj_state *s)
{
	struct sj_state *n = s->snap;

	state_clear(s);
	s->slots = n->slots;
	s->cap = n->cap;
	s->count = n->count;
	s->tombs = n->tombs;
	s->types = n->types;
	s->next_seq = n->next_seq;
	s->ignored += n->ignored;
	free(n);
	s->snap = NULL;
}

uint64_t
sj_state_short(const struct sj_state *s)
{
	return s->snaps_short;
}

bool
sj_state_drop_torn(struct sj_state *s, uint64_t *records)
{
	*records = s->snap_records;
	if (s->snap == NULL)
		return false;
	sj_state_free(s->snap);
	s->snap = NULL;
	return true;
}

size_t
sj_state_count(const struct sj_state *s)
{
	return s->count;
}

uint64_t
sj_state_next_seq(const struct sj_state *s)
{
	return s->next_seq;
}

uint64_t
sj_state_ignored(const struct sj_state *s)
{
	return s->ignored;
}

void
sj_state_running(const struct sj_state *s, uint64_t *requeued, uint64_t *failed)
{
	*requeued = s->was_running - s->lost;
	*failed = s->lost;
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
	struct rslot *sl;
	uint32_t h;

	switch (r->kind) {
	case SJ_SNAP_BEGIN:
		/* (A snapshot still open never ended: SNAP_ABORT was lost.) */
		sj_state_free(s->snap);
		s->snap = sj_state_new();
		s->snap->next_seq = r->next_seq;
		s->snap_records = 0;
		return 0;
	case SJ_SNAP_END:
		if (s->snap == NULL) {
			s->ignored++;
			return 0;
		}
		if (r->records != s->snap_records) {
			/* Records of it were dropped by --repair (or lost to a
			 * power cut before it was durable): it replaces no state,
			 * only stands in for none. */
			s->snaps_short++;
			if (s->count > 0 || s->types != NULL) {
				sj_state_free(s->snap);
				s->snap = NULL;
				return 0;
			}
		}
		state_take(s);
		return 0;
	case SJ_SNAP_ABORT:
		sj_state_free(s->snap);
		s->snap = NULL;
		return 0;
	default:
		break;
	}
	if (s->snap != NULL) {
		s->snap_records++;
		return sj_state_apply(s->snap, r);
	}
	if (r->kind == SJ_SNAPSHOT) {
		state_clear(s);
		s->next_seq = r->next_seq;
		return 0;
	}
	if (r->kind == SJ_TYPE) {
		struct rtype *t;

		HASH_FIND(hh, s->types, r->key.p, r->key.n, t);
		if (t == NULL) {
			t = xcalloc(1, sizeof *t);
			t->name = dup_str(r->key);
			HASH_ADD_KEYPTR(hh, s->types, t->name, r->key.n, t);
		}
		t->r = *r;
		t->r.key = str_of(t->name, strlen(t->name));
		return 0;
	}
	h = rkey_hash(r->key.p, r->key.n);
	if ((sl = rt_find(s, r->key.p, r->key.n, h)) != NULL)
		j = sl->job;
	if (r->kind == SJ_JOB) {
		if (sl != NULL)
			rt_del(s, sl);
		/* One allocation: a million of them are freed at once after the
		 * replay, and each small chunk costs malloc a consolidation. */
		{
			char *p;

			j = xmalloc(sizeof *j + RJOB_STR(r->key) + RJOB_STR(r->idjson) +
			    RJOB_STR(r->type) + RJOB_STR(r->target) + RJOB_STR(r->body));
			memset(j, 0, sizeof *j);
			p = (char *)(j + 1);
			j->key = rjob_put(&p, r->key);
			j->idjson = rjob_put(&p, r->idjson);
			j->type = rjob_put(&p, r->type);
			j->target = rjob_put(&p, r->target);
			j->body = rjob_put(&p, r->body);
		}
		j->hash = h;
		j->worker_name = dup_str(r->worker_name);
		j->owner = dup_str(r->owner);
		j->body_len = r->body.n;
		j->result = dup_str(r->result);
		j->result_len = r->result.n;
		j->life = dup_str(r->life);
		j->log = dup_str(r->log);
		j->log_len = r->log.n;
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
		rt_add(s, j);
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
		if (r->log.p != NULL) {
			set_str(&j->log, r->log);
			j->log_len = r->log.n;
		}
		break;
	case SJ_FORGET:
		rt_del(s, sl);
		break;
	default:
		break;
	}
	return 0;
}

/* What sj_state_each sorts: the sequence number beside the job, so that
 * a comparison touches no job. */
struct rjob_seq {
	uint32_t     seq;
	struct rjob *job;
};

static int
by_seq(const void *a, const void *b)
{
	const struct rjob_seq *x = a, *y = b;

	if (x->seq == y->seq)
		return 0;
	return seq_before(x->seq, y->seq) ? -1 : 1;
}

int
sj_state_each(struct sj_state *s, double now, sj_restore_cb *cb, void *ctx)
{
	size_t n = s->count, i = 0, k;
	struct rjob_seq *v;
	struct rjob *j;
	int rc = 0;

	if (n == 0)
		return 0;
	v = xmalloc(n * sizeof *v);
	for (k = 0; k < s->cap; k++)
		if (s->slots[k].job != NULL && s->slots[k].job != RTOMB) {
			v[i].seq = s->slots[k].job->seq;
			v[i++].job = s->slots[k].job;
		}
	qsort(v, n, sizeof *v, by_seq);
	for (i = 0; i < n && rc == 0; i++) {
		struct restore_req q;
		bool was_running = false;

		j = v[i].job;
		memset(&q, 0, sizeof q);
		q.type = j->type;
		q.key = j->key;
		/* An integer id's JSON is its key; a string id's is kept. */
		q.idjson = (j->flags & SJ_F_IDKEY) ? j->key : j->idjson;
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
		q.dropped = j->flags & SJ_F_DROPPED;
		q.state = j->state;
		q.losses = j->losses;
		q.started = j->started;
		q.finished = j->finished;
		q.worker_name = j->worker_name;
		q.owner = j->owner;
		q.result = j->result;
		q.result_len = j->result_len;
		q.life = j->life;
		q.log = j->log;
		q.log_len = j->log_len;
		if (buf_used(&j->partials) > 0) {
			q.partials = buf_head(&j->partials);
			q.partials_len = buf_used(&j->partials);
		}
		if (q.state == JOB_RUNNING) {
			/* Its worker was lost with the daemon. */
			q.losses++;
			q.started = 0;
			q.state = JOB_QUEUED;
			s->was_running++;
			was_running = true;
			if (q.losses > JOB_MAX_LOSSES) {
				q.state = JOB_FAILED;
				q.finished = now;
				s->lost++;
			}
		}
		rc = cb(ctx, &q, was_running);
	}
	free(v);
	return rc;
}

void
sj_state_types_each(struct sj_state *s, sj_type_cb *cb, void *ctx)
{
	struct rtype *t, *tmp;

	HASH_ITER(hh, s->types, t, tmp)
		cb(ctx, &t->r);
}

/* --------------------------------------------------------- the daemon's glue */

struct store {
	struct server     *srv;
	struct broker     *b;
	struct journal    *j;
	struct store_opts  opt;
	struct buf         scratch;
	size_t             last_len;      /* payload bytes of the last append,
	                                     gathered strings included */
	uint64_t           live_bytes;    /* what a snapshot would write, about */
	uint64_t           drop_segno;    /* compaction: segments below go */
	bool               compacting;    /* its drop is not done yet */
	bool               need_snapshot; /* a record could not be appended */
	int                err;           /* as told to the broker */
	uint64_t           compactions;
	uint64_t           lost_appends;
	struct buf         life;          /* job_rec_of's life text */
	bool               opening;       /* store_open puts types back */
};

/* rec_bytes: a record's size on disk, for payload n. */
#define REC_BYTES(n) ((uint64_t)JOURNAL_REC_HEADER + (n))
/* What an encoded string costs besides its bytes: length and NUL. */
#define STR_COST(n)  (4u + (n) + 1)

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

static struct sj_str
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
static void
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
static void
append(struct store *s, const struct sj_rec *r)
{
	struct iovec iov[2 * SJ_CUTS_MAX + 1];
	struct sj_cuts c = { 0 };
	size_t at = 0;
	uint64_t lsn;
	int n = 0;

	s->scratch.off = s->scratch.len = 0;
	cuts = &c;
	sj_encode(r, &s->scratch);
	cuts = NULL;
	/* The encoding, with each large string gathered from where it lies. */
	for (unsigned i = 0; i < c.n; i++) {
		iov[n].iov_base = buf_head(&s->scratch) + at;
		iov[n++].iov_len = c.at[i] - at;
		iov[n].iov_base = (void *)c.str[i].p;
		iov[n++].iov_len = c.str[i].n;
		at = c.at[i];
	}
	iov[n].iov_base = buf_head(&s->scratch) + at;
	iov[n++].iov_len = buf_used(&s->scratch) - at;
	s->last_len = buf_used(&s->scratch);
	for (unsigned i = 0; i < c.n; i++)
		s->last_len += c.str[i].n;
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
static bool
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
 * compact: write the live state into a fresh segment and delete the older
 * ones (see the top of this file for why a crash anywhere in it is safe).
 */
static void
compact(struct store *s)
{
	struct job_cursor cur = { .open = false };
	struct sj_rec r;
	struct job *j;
	struct journal_stats st;
	uint64_t snap, lost = s->lost_appends, recs;

	journal_stats(s->j, &st);
	log_debug("journal: %s: compacting %" PRIu64 " bytes in %u segments, "
	    "about %" PRIu64 " live", s->opt.dir, st.disk_bytes, st.segments,
	    s->live_bytes);
	s->drop_segno = journal_rotate(s->j);
	journal_crash_mark(s->j, journal_appended_lsn(s->j));
	memset(&r, 0, sizeof r);
	r.kind = SJ_SNAP_BEGIN;
	r.next_seq = s->b->next_seq;
	s->need_snapshot = false;
	append(s, &r);
	if (s->lost_appends != lost)
		return;      /* not begun: need_snapshot again, for a later turn */
	snap = REC_BYTES(s->last_len);   /* (types' records: a few) */
	journal_stats(s->j, &st);
	recs = st.records;
	broker_types_each(s->b, type_rec_append, s);
	broker_cursor_open(s->b, &cur);
	while ((j = broker_cursor_job(&cur)) != NULL) {
		job_rec_of(s, j, &r);
		append(s, &r);
		snap += REC_BYTES(s->last_len);   /* bodies and results too */
		broker_cursor_advance(&cur);
	}
	broker_cursor_close(s->b, &cur);
	journal_stats(s->j, &st);
	memset(&r, 0, sizeof r);
	r.kind = SJ_SNAP_END;
	r.records = st.records - recs;
	if (s->lost_appends == lost)
		append(s, &r);
	if (s->lost_appends != lost) {
		/* A record of it could not be kept: it must never count, and
		 * the old segments stay.  (The journal always takes this one.) */
		memset(&r, 0, sizeof r);
		r.kind = SJ_SNAP_ABORT;
		append(s, &r);
		return;
	}
	snap += REC_BYTES(buf_used(&s->scratch));
	/* The live state is what the snapshot took, exactly: job_live_bytes
	 * leaves out what changes (a worker's name, a job's life), so counted
	 * job by job the sum drifts below it, and compaction would come back
	 * at once where many jobs have a life (a million delayed jobs). */
	s->live_bytes = snap;
	if (journal_drop_before(s->j, s->drop_segno) < 0)
		log_warn("journal: %s: cannot drop segments before %" PRIu64,
		    s->opt.dir, s->drop_segno);
	s->compacting = true;
	s->compactions++;
}

/* maybe_compact: when the segments hold half a segment's worth more than
 * the live state, or records were lost while the disk failed. */
static void
maybe_compact(struct store *s)
{
	struct journal_stats st;

	if (journal_error(s->j) != 0)
		return;
	journal_stats(s->j, &st);
	if (s->compacting) {
		if (st.first_segno < s->drop_segno)
			return;       /* the last one's drop is not done */
		s->compacting = false;
	}
	/* Half a segment over the live state: the old segments stay until
	 * the snapshot is synced, and appends go on meanwhile, so the peak is
	 * about twice the live state plus half a segment plus that turn. */
	if (s->need_snapshot || st.disk_bytes > s->live_bytes + st.segment_bytes / 2)
		compact(s);
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
	s->b = &srv->broker;
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
