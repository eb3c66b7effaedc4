/*
 * test_store_log.c — a job's log in the journal: JOB and FINISH records
 * without one are byte for byte what jobfs wrote before, with one they
 * carry it (after the life, if any), a log cut short is refused, and
 * replay gives the job back the log of its last record.
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

static int
check_log(void *ctx, const struct restore_req *q, bool was_running)
{
	const char **seen = ctx;

	(void)was_running;
	*seen = q->log != NULL ? strdup(q->log) : NULL;
	return 0;
}

int
main(void)
{
	struct sj_rec r, d;
	struct buf plain = { 0 }, with = { 0 }, both = { 0 }, fin = { 0 }, finlog = { 0 };
	struct sj_state *st = sj_state_new();
	const char *seen = NULL;

	plan(10);
	memset(&r, 0, sizeof r);
	r.kind = SJ_JOB;
	r.key = S("k");
	r.type = S("t");
	r.body = S("1");
	sj_encode(&r, &plain);
	r.log = S("printed\n");
	sj_encode(&r, &with);
	ok(with.len == plain.len + 4 + 8 + 1, "a JOB with a log is the record before and the log");
	ok(sj_decode(SJ_JOB, with.data, (uint32_t)with.len, &d) == 0 && d.log.p != NULL &&
	    strcmp(d.log.p, "printed\n") == 0 && d.life.p == NULL && d.flags == 0,
	    "and decodes with its log, no life and no wire-only flag");
	ok(sj_decode(SJ_JOB, with.data, (uint32_t)with.len - 1, &d) < 0,
	    "a log cut short is refused");
	r.life = S("{\"r\":2}");
	sj_encode(&r, &both);
	ok(sj_decode(SJ_JOB, both.data, (uint32_t)both.len, &d) == 0 && d.log.p != NULL &&
	    strcmp(d.log.p, "printed\n") == 0 && strcmp(d.life.p, "{\"r\":2}") == 0,
	    "a JOB with a life and a log carries both");

	memset(&r, 0, sizeof r);
	r.kind = SJ_FINISH;
	r.key = S("k");
	r.state = JOB_DONE;
	r.result = S("\"ok\"");
	sj_encode(&r, &fin);
	ok(fin.len == 1 + 8 + (4 + 2) + (4 + 5), "a FINISH without a log is the record as before");
	ok(sj_decode(SJ_FINISH, fin.data, (uint32_t)fin.len, &d) == 0 && d.log.p == NULL,
	    "and decodes with no log");
	r.log = S("last words");
	sj_encode(&r, &finlog);
	ok(sj_decode(SJ_FINISH, finlog.data, (uint32_t)finlog.len, &d) == 0 && d.log.p != NULL &&
	    strcmp(d.log.p, "last words") == 0, "a FINISH with a log carries it");
	ok(sj_decode(SJ_FINISH, finlog.data, (uint32_t)finlog.len - 2, &d) < 0,
	    "a FINISH whose log is cut short is refused");

	/* replay: the JOB's log, then the FINISH's replaces it */
	sj_decode(SJ_JOB, with.data, (uint32_t)with.len, &d);
	sj_state_apply(st, &d);
	sj_state_each(st, 0, check_log, &seen);
	ok(seen != NULL && strcmp(seen, "printed\n") == 0, "replay gives a job back its log");
	free((char *)seen);
	seen = NULL;
	sj_decode(SJ_FINISH, finlog.data, (uint32_t)finlog.len, &d);
	sj_state_apply(st, &d);
	sj_state_each(st, 0, check_log, &seen);
	ok(seen != NULL && strcmp(seen, "last words") == 0, "the log of its ending replaces it");
	free((char *)seen);
	sj_state_free(st);
	buf_free(&plain);
	buf_free(&with);
	buf_free(&both);
	buf_free(&fin);
	buf_free(&finlog);
	return done();
}
