/*
 * sj_state.c — the jobs that the journal's records describe, as replay
 * builds them (struct sj_state): the records applied in order, snapshots
 * taken whole or not at all, and the jobs handed back to the broker.
 *
 * Idempotence.  Every record sets state rather than changing it: JOB is a
 * job's whole state (it replaces whatever was known of that key), REQUEUE
 * carries the loss count, not "one more", FORGET deletes.  Replaying a
 * record twice, or an older record before a newer JOB of the same key,
 * ends in the state the newer one says.  PARTIAL is the one that adds; it
 * is never written into a snapshot (a snapshot's JOB holds the partials so
 * far).
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

#define SJ_PARTIALS_MAX  (16u * 1024 * 1024)   /* as ending.c's PARTIALS_MAX */

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

/* A schedule, as its last SCHED record said. */
struct rsched {
	UT_hash_handle hh;
	struct sj_rec  r;          /* key and spec point at key and spec */
	char          *key, *spec;
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
	struct rsched *scheds;       /* schedules (SJ_SCHED) */
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
rsched_free(struct rsched *x)
{
	free(x->key);
	free(x->spec);
	free(x);
}

static void
sched_clear(struct sj_state *s)
{
	struct rsched *x, *tmp;

	HASH_ITER(hh, s->scheds, x, tmp) {
		HASH_DEL(s->scheds, x);
		rsched_free(x);
	}
}

/* sched_apply: a SCHED record: the schedule as it says, or gone. */
static void
sched_apply(struct sj_state *s, const struct sj_rec *r)
{
	struct rsched *x;

	HASH_FIND(hh, s->scheds, r->key.p, r->key.n, x);
	if (x != NULL) {
		HASH_DEL(s->scheds, x);
		rsched_free(x);
	}
	if (r->spec.p == NULL)
		return;
	x = xcalloc(1, sizeof *x);
	x->key = dup_str(r->key);
	x->spec = dup_str(r->spec);
	x->r = *r;
	x->r.key = str_of(x->key, r->key.n);
	x->r.spec = str_of(x->spec, r->spec.n);
	HASH_ADD_KEYPTR(hh, s->scheds, x->key, r->key.n, x);
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
	sched_clear(s);
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
	s->scheds = n->scheds;
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
			if (s->count > 0 || s->types != NULL || s->scheds != NULL) {
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
	if (r->kind == SJ_SCHED) {
		sched_apply(s, r);
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


void
sj_state_scheds_each(struct sj_state *s, sj_type_cb *cb, void *ctx)
{
	struct rsched *x, *tmp;

	HASH_ITER(hh, s->scheds, x, tmp)
		cb(ctx, &x->r);
}
