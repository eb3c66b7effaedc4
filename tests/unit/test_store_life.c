/*
 * test_store_life.c — the journal records of the job lifecycle:
 * a JOB record without a life is byte for byte what jobfs wrote before
 * (old journals read as they were), one with a life carries it, a TYPE
 * record round-trips, and replay keeps a type's last settings and a job's
 * life.
 */
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "store/store_journal.h"
#include "tap.h"

static struct sj_str
S(const char *p)
{
	struct sj_str s = { p, p != NULL ? (uint32_t)strlen(p) : 0 };

	return s;
}

static void
count_type(void *ctx, const struct sj_rec *r)
{
	int *n = ctx;

	if (r->paused && r->limit == 7 && r->retries == 3 && r->backoff_ms == 250 &&
	    strcmp(r->key.p, "mail") == 0)
		(*n)++;
}

static int
check_life(void *ctx, const struct restore_req *q, bool was_running)
{
	int *n = ctx;

	(void)was_running;
	if (q->life != NULL && strcmp(q->life, "{\"r\":2}") == 0)
		(*n)++;
	return 0;
}

int
main(void)
{
	struct sj_rec r, d;
	struct buf plain = { 0 }, with = { 0 }, t = { 0 };
	struct sj_state *st = sj_state_new();
	int ntypes = 0, nlife = 0;

	plan(7);
	memset(&r, 0, sizeof r);
	r.kind = SJ_JOB;
	r.key = S("k");
	r.type = S("t");
	r.body = S("1");
	r.seq = 5;
	sj_encode(&r, &plain);
	/* as before: 8+8+4+1+1+1+24 fixed, then 9 strings (the owner last) */
	ok(plain.len == 47 + (4 + 2) * 3 + 4 * 6, "a JOB without a life is the record as before (%zu bytes)", plain.len);
	ok(sj_decode(SJ_JOB, plain.data, (uint32_t)plain.len, &d) == 0 && d.life.p == NULL,
	    "and decodes with no life");
	r.life = S("{\"r\":2}");
	sj_encode(&r, &with);
	ok(sj_decode(SJ_JOB, with.data, (uint32_t)with.len, &d) == 0 && d.life.p != NULL &&
	    strcmp(d.life.p, "{\"r\":2}") == 0, "a JOB with a life carries it");
	ok(sj_decode(SJ_JOB, with.data, (uint32_t)with.len - 1, &d) < 0,
	    "a life cut short is refused");
	memset(&r, 0, sizeof r);
	r.kind = SJ_TYPE;
	r.key = S("mail");
	r.paused = 1;
	r.limit = 7;
	r.retries = 3;
	r.backoff_ms = 250;
	sj_encode(&r, &t);
	ok(sj_decode(SJ_TYPE, t.data, (uint32_t)t.len, &d) == 0 && d.paused == 1 &&
	    d.limit == 7 && d.retries == 3 && d.backoff_ms == 250 && strcmp(d.key.p, "mail") == 0,
	    "a TYPE record round-trips");
	sj_state_apply(st, &d);
	sj_state_types_each(st, count_type, &ntypes);
	ok(ntypes == 1, "replay keeps a type's settings");
	sj_decode(SJ_JOB, with.data, (uint32_t)with.len, &d);
	sj_state_apply(st, &d);
	sj_state_each(st, 0, check_life, &nlife);
	ok(nlife == 1, "replay gives a job back its life");
	sj_state_free(st);
	buf_free(&plain);
	buf_free(&with);
	buf_free(&t);
	return done();
}
