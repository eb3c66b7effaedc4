/*
 * test_store_journal.c — unit tests of the journal's job records
 * (src/store/sj_codec.c, sj_state.c): encoding, decoding, the state replay
 * builds, and a round trip through a real journal in a temporary
 * directory.  TAP.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"
#include "store/journal.h"
#include "store/store_journal.h"
#include "tap.h"

static struct sj_str
S(const char *p)
{
	struct sj_str s = { p, p ? (uint32_t)strlen(p) : 0 };

	return s;
}

static bool
str_eq(struct sj_str a, const char *b)
{
	if (a.p == NULL || b == NULL)
		return a.p == NULL && b == NULL;
	return a.n == strlen(b) && memcmp(a.p, b, a.n) == 0 && a.p[a.n] == '\0';
}

static struct sj_rec
job_rec(const char *key, int64_t prio, uint32_t seq, const char *body)
{
	struct sj_rec r;

	memset(&r, 0, sizeof r);
	r.kind = SJ_JOB;
	r.key = S(key);
	r.type = S("t");
	r.body = S(body);
	r.priority = prio;
	r.seq = seq;
	r.submitted = 1700000000.25;
	return r;
}

static void
apply(struct sj_state *s, const struct sj_rec *r)
{
	struct buf b = { 0 };
	struct sj_rec d;

	/* Through the wire form, as replay does. */
	sj_encode(r, &b);
	if (sj_decode(r->kind, buf_head(&b), (uint32_t)buf_used(&b), &d) == 0)
		sj_state_apply(s, &d);
	buf_free(&b);
}

/* What sj_state_each handed out, in order. */
struct seen {
	char     keys[64][32];
	int      state[64];
	unsigned losses[64];
	char     result[64][64];
	char     partials[64][64];
	int      n;
};

static int
collect(void *ctx, const struct restore_req *q, bool was_running)
{
	struct seen *s = ctx;

	(void)was_running;
	if (s->n == 64)
		return 1;
	snprintf(s->keys[s->n], sizeof s->keys[0], "%s", q->key);
	s->state[s->n] = q->state;
	s->losses[s->n] = q->losses;
	snprintf(s->result[s->n], sizeof s->result[0], "%.*s",
	    (int)q->result_len, q->result ? q->result : "");
	snprintf(s->partials[s->n], sizeof s->partials[0], "%.*s",
	    (int)q->partials_len, q->partials ? q->partials : "");
	s->n++;
	return 0;
}

/* snap_rec: a record of kind BEGIN (n: next_seq), END (n: records) or ABORT. */
static struct sj_rec
snap_rec(enum sj_kind kind, uint64_t n)
{
	struct sj_rec r;

	memset(&r, 0, sizeof r);
	r.kind = kind;
	r.next_seq = kind == SJ_SNAP_BEGIN ? n : 0;
	r.records = kind == SJ_SNAP_END ? n : 0;
	return r;
}

/* has: the state holds a job of that key (and no other job than expected
 * in count). */
static bool
has(struct sj_state *s, const char *key)
{
	struct seen seen;

	memset(&seen, 0, sizeof seen);
	sj_state_each(s, 100.0, collect, &seen);
	for (int i = 0; i < seen.n; i++)
		if (strcmp(seen.keys[i], key) == 0)
			return true;
	return false;
}

/* append_rec: r into the journal, encoded. */
static void
append_rec(struct journal *j, const struct sj_rec *r)
{
	struct buf b = { 0 };
	struct iovec iov;

	sj_encode(r, &b);
	iov.iov_base = buf_head(&b);
	iov.iov_len = buf_used(&b);
	journal_append(j, (uint8_t)r->kind, &iov, 1);
	buf_free(&b);
}

static int
replay_cb(void *ctx, uint8_t kind, const void *p, uint32_t len)
{
	struct sj_rec r;

	if (sj_decode(kind, p, len, &r) < 0)
		return -1;
	return sj_state_apply(ctx, &r);
}

int
main(void)
{
	struct buf b = { 0 };
	struct sj_rec r, d;
	struct sj_state *s;
	struct seen seen;
	bool all;

	plan(35);

	/* 1-4: a whole job round-trips, absent strings stay absent. */
	r = job_rec("k1", -5, 7, "{\"a\":1}");
	r.idjson = S("\"k1\"");
	r.target = S("w9");
	r.timeout_ms = 1500;
	r.flags = SJ_F_DETACH | SJ_F_NOTIFY;
	r.state = JOB_DONE;
	r.losses = 2;
	r.started = 1.5;
	r.finished = 2.5;
	r.result = S("{\"ok\":true}");
	r.partials = S("1\n2\n");
	sj_encode(&r, &b);
	ok(sj_decode(SJ_JOB, buf_head(&b), (uint32_t)buf_used(&b), &d) == 0,
	    "a job record decodes");
	ok(str_eq(d.key, "k1") && str_eq(d.idjson, "\"k1\"") && str_eq(d.type, "t") &&
	    str_eq(d.target, "w9") && str_eq(d.worker_name, NULL) &&
	    str_eq(d.body, "{\"a\":1}") && str_eq(d.result, "{\"ok\":true}") &&
	    str_eq(d.partials, "1\n2\n"), "its strings come back, absent ones absent");
	ok(d.priority == -5 && d.timeout_ms == 1500 && d.seq == 7 &&
	    d.flags == (SJ_F_DETACH | SJ_F_NOTIFY) && d.state == JOB_DONE &&
	    d.losses == 2, "its integers come back");
	ok(d.submitted == 1700000000.25 && d.started == 1.5 && d.finished == 2.5,
	    "its times come back exactly");

	/* 5: every cut of it is refused, not read past its end. */
	all = true;
	for (size_t n = 0; n < buf_used(&b); n++)
		if (sj_decode(SJ_JOB, buf_head(&b), (uint32_t)n, &d) == 0)
			all = false;
	ok(all, "every truncation of a job record is refused");

	/* 6: a trailing byte is refused too. */
	buf_append(&b, "x", 1);
	ok(sj_decode(SJ_JOB, buf_head(&b), (uint32_t)buf_used(&b), &d) < 0,
	    "a record with bytes after its last field is refused");
	buf_free(&b);

	/* 7-11: each small kind round-trips. */
	memset(&r, 0, sizeof r);
	r.kind = SJ_DISPATCH;
	r.key = S("k");
	r.worker_name = S("w1");
	r.started = 3.25;
	sj_encode(&r, &b);
	ok(sj_decode(SJ_DISPATCH, buf_head(&b), (uint32_t)buf_used(&b), &d) == 0 &&
	    str_eq(d.key, "k") && str_eq(d.worker_name, "w1") && d.started == 3.25,
	    "dispatch round-trips");
	buf_free(&b);
	memset(&r, 0, sizeof r);
	r.kind = SJ_REQUEUE;
	r.key = S("k");
	r.losses = 3;
	sj_encode(&r, &b);
	ok(sj_decode(SJ_REQUEUE, buf_head(&b), (uint32_t)buf_used(&b), &d) == 0 &&
	    str_eq(d.key, "k") && d.losses == 3, "requeue round-trips");
	buf_free(&b);
	memset(&r, 0, sizeof r);
	r.kind = SJ_FINISH;
	r.key = S("k");
	r.state = JOB_TIMEOUT;
	r.finished = 9.5;
	sj_encode(&r, &b);
	ok(sj_decode(SJ_FINISH, buf_head(&b), (uint32_t)buf_used(&b), &d) == 0 &&
	    d.state == JOB_TIMEOUT && d.finished == 9.5 && d.result.p == NULL,
	    "finish without a result round-trips");
	buf_free(&b);
	memset(&r, 0, sizeof r);
	r.kind = SJ_SNAPSHOT;
	r.next_seq = 1ull << 40;
	sj_encode(&r, &b);
	ok(sj_decode(SJ_SNAPSHOT, buf_head(&b), (uint32_t)buf_used(&b), &d) == 0 &&
	    d.next_seq == 1ull << 40, "snapshot round-trips");
	ok(sj_decode(99, buf_head(&b), (uint32_t)buf_used(&b), &d) < 0,
	    "an unknown kind is refused");
	buf_free(&b);

	/* 12: a finish with a queued state is refused; so is a key too long. */
	memset(&r, 0, sizeof r);
	r.kind = SJ_FINISH;
	r.key = S("k");
	r.state = JOB_QUEUED;
	sj_encode(&r, &b);
	all = sj_decode(SJ_FINISH, buf_head(&b), (uint32_t)buf_used(&b), &d) < 0;
	buf_free(&b);
	{
		char big[ID_MAX + 2];

		memset(big, 'a', sizeof big - 1);
		big[sizeof big - 1] = '\0';
		memset(&r, 0, sizeof r);
		r.kind = SJ_FORGET;
		r.key = S(big);
		sj_encode(&r, &b);
		all = all && sj_decode(SJ_FORGET, buf_head(&b),
		    (uint32_t)buf_used(&b), &d) < 0;
		buf_free(&b);
	}
	ok(all, "a finish in a queued state and an over-long key are refused");

	/* 13-17: the state, in submission order, with losses for running jobs. */
	s = sj_state_new();
	r = job_rec("a", 0, 10, "1");
	apply(s, &r);
	r = job_rec("b", 9, 11, "2");
	apply(s, &r);
	r = job_rec("c", 0, 12, "3");
	apply(s, &r);
	r = job_rec("d", 0, 13, "4");
	apply(s, &r);
	memset(&r, 0, sizeof r);
	r.kind = SJ_DISPATCH;
	r.key = S("b");
	r.worker_name = S("w");
	apply(s, &r);
	r.key = S("c");
	apply(s, &r);
	memset(&r, 0, sizeof r);
	r.kind = SJ_PARTIAL;
	r.key = S("c");
	r.body = S("{\"p\":1}");
	apply(s, &r);
	memset(&r, 0, sizeof r);
	r.kind = SJ_FINISH;
	r.key = S("c");
	r.state = JOB_DONE;
	r.result = S("{\"r\":3}");
	apply(s, &r);
	memset(&r, 0, sizeof r);
	r.kind = SJ_FORGET;
	r.key = S("d");
	apply(s, &r);
	memset(&seen, 0, sizeof seen);
	sj_state_each(s, 100.0, collect, &seen);
	ok(seen.n == 3 && strcmp(seen.keys[0], "a") == 0 &&
	    strcmp(seen.keys[1], "b") == 0 && strcmp(seen.keys[2], "c") == 0,
	    "jobs come back in submission order, the forgotten one not at all");
	ok(seen.state[0] == JOB_QUEUED && seen.losses[0] == 0,
	    "a queued job comes back queued with no loss");
	ok(seen.state[1] == JOB_QUEUED && seen.losses[1] == 1,
	    "a running job comes back queued with one loss");
	ok(seen.state[2] == JOB_DONE && strcmp(seen.result[2], "{\"r\":3}") == 0 &&
	    strcmp(seen.partials[2], "{\"p\":1}\n") == 0,
	    "a finished job comes back with its result and partials");
	ok(sj_state_next_seq(s) == 14, "the next sequence number follows the last");

	/* 18: replaying every record again converges to the same state. */
	r = job_rec("b", 9, 11, "2");
	apply(s, &r);
	memset(&r, 0, sizeof r);
	r.kind = SJ_DISPATCH;
	r.key = S("b");
	apply(s, &r);
	memset(&r, 0, sizeof r);
	r.kind = SJ_REQUEUE;
	r.key = S("b");
	r.losses = 3;
	apply(s, &r);
	apply(s, &r);
	memset(&seen, 0, sizeof seen);
	sj_state_each(s, 100.0, collect, &seen);
	ok(seen.n == 3 && seen.state[1] == JOB_QUEUED && seen.losses[1] == 3,
	    "a requeue sets the loss count, however often replayed");

	/* 19: a job that was running with 3 losses fails: the 4th. */
	memset(&r, 0, sizeof r);
	r.kind = SJ_DISPATCH;
	r.key = S("b");
	apply(s, &r);
	memset(&seen, 0, sizeof seen);
	sj_state_each(s, 100.0, collect, &seen);
	ok(seen.state[1] == JOB_FAILED && seen.losses[1] == 4,
	    "the 4th loss, the daemon's crash, fails the job");

	/* 20: a dispatch or requeue after the finish changes nothing. */
	memset(&r, 0, sizeof r);
	r.kind = SJ_DISPATCH;
	r.key = S("c");
	apply(s, &r);
	r.kind = SJ_REQUEUE;
	apply(s, &r);
	memset(&seen, 0, sizeof seen);
	sj_state_each(s, 100.0, collect, &seen);
	ok(seen.state[2] == JOB_DONE, "a finished job stays finished");

	/* 21: records about an unknown job are ignored. */
	memset(&r, 0, sizeof r);
	r.kind = SJ_FINISH;
	r.key = S("zz");
	r.state = JOB_DONE;
	apply(s, &r);
	ok(sj_state_count(s) == 3, "a record about an unknown job adds nothing");

	/* 22-23: a snapshot clears what came before; a job record replaces. */
	memset(&r, 0, sizeof r);
	r.kind = SJ_SNAPSHOT;
	r.next_seq = 50;
	apply(s, &r);
	ok(sj_state_count(s) == 0 && sj_state_next_seq(s) == 50,
	    "a snapshot record forgets everything before it");
	r = job_rec("x", 0, 40, "1");
	apply(s, &r);
	r = job_rec("x", 0, 41, "2");
	r.state = JOB_CANCELLED;
	apply(s, &r);
	memset(&seen, 0, sizeof seen);
	sj_state_each(s, 100.0, collect, &seen);
	ok(seen.n == 1 && seen.state[0] == JOB_CANCELLED && sj_state_next_seq(s) == 50,
	    "a job record replaces what was known of its key");
	sj_state_free(s);

	/* 24: sequence numbers that wrapped still sort in submission order. */
	s = sj_state_new();
	r = job_rec("late", 0, 3, "1");
	apply(s, &r);
	r = job_rec("early", 0, 0xfffffffeu, "1");
	apply(s, &r);
	memset(&seen, 0, sizeof seen);
	sj_state_each(s, 100.0, collect, &seen);
	ok(seen.n == 2 && strcmp(seen.keys[0], "early") == 0,
	    "submission order holds across the 32-bit wrap");
	sj_state_free(s);

	/* 25-27: through a real journal: append, close, open again, replay. */
	{
		char dir[] = "/tmp/test_sj.XXXXXX", err[256];
		struct journal_opts o = { .sync = JOURNAL_SYNC_ALWAYS };
		struct ev_loop *loop = ev_default_loop(0);
		struct journal *j;
		struct iovec iov;
		int rc;

		if (mkdtemp(dir) == NULL)
			return 1;
		j = journal_open(loop, dir, &o, err, sizeof err);
		rc = j != NULL ? journal_replay(j, NULL, NULL, NULL, err, sizeof err) : -1;
		for (int i = 0; rc == 0 && i < 1000; i++) {
			char key[16];

			snprintf(key, sizeof key, "j%d", i);
			r = job_rec(key, i % 7, (uint32_t)i, "{\"n\":1}");
			sj_encode(&r, &b);
			if (i % 3 == 0) {
				memset(&d, 0, sizeof d);
				d.kind = SJ_FORGET;
				d.key = S(key);
				iov.iov_base = buf_head(&b);
				iov.iov_len = buf_used(&b);
				journal_append(j, SJ_JOB, &iov, 1);
				buf_free(&b);
				sj_encode(&d, &b);
				r.kind = SJ_FORGET;
			}
			iov.iov_base = buf_head(&b);
			iov.iov_len = buf_used(&b);
			journal_append(j, r.kind, &iov, 1);
			buf_free(&b);
		}
		if (j != NULL) {
			journal_flush(j);
			rc = journal_close(j);
		}
		ok(rc == 0, "1000 jobs and 334 forgets appended and closed: %s",
		    rc == 0 ? "ok" : err);
		s = sj_state_new();
		j = journal_open(loop, dir, &o, err, sizeof err);
		rc = j != NULL ? journal_replay(j, replay_cb, s, NULL, err, sizeof err) : -1;
		ok(rc == 0 && sj_state_count(s) == 666,
		    "replay gives back the 666 jobs not forgotten (%zu)",
		    sj_state_count(s));
		ok(sj_state_next_seq(s) == 1000, "and the next sequence number");
		if (j != NULL)
			journal_close(j);
		sj_state_free(s);
		{
			char cmd[300];

			snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
			if (system(cmd) != 0)
				diag("could not remove %s", dir);
		}
	}

	/* 28: the snapshot's records round-trip; an abort has no payload. */
	{
		bool good = true;
		enum sj_kind k[3] = { SJ_SNAP_BEGIN, SJ_SNAP_END, SJ_SNAP_ABORT };

		for (int i = 0; i < 3; i++) {
			r = snap_rec(k[i], 1ull << 33);
			sj_encode(&r, &b);
			good = good && sj_decode(k[i], buf_head(&b),
			    (uint32_t)buf_used(&b), &d) == 0 &&
			    d.next_seq == r.next_seq && d.records == r.records;
			good = good && (buf_used(&b) == 0) == (k[i] == SJ_SNAP_ABORT);
			buf_free(&b);
		}
		ok(good, "snapshot begin, end and abort round-trip");
	}

	/* 29-31: a snapshot counts only at its end. */
	s = sj_state_new();
	r = job_rec("a", 0, 1, "1");
	apply(s, &r);
	r = job_rec("b", 0, 2, "2");
	apply(s, &r);
	r = snap_rec(SJ_SNAP_BEGIN, 90);
	apply(s, &r);
	r = job_rec("a", 0, 1, "1");
	apply(s, &r);
	ok(sj_state_count(s) == 2 && has(s, "b") && sj_state_next_seq(s) == 3,
	    "while a snapshot is read, the state is what came before it");
	{
		uint64_t n = 0;
		bool dropped = sj_state_drop_torn(s, &n);

		ok(dropped && n == 1 && sj_state_count(s) == 2 &&
		    has(s, "a") && has(s, "b"),
		    "a snapshot without its end (torn) is dropped: the jobs before "
		    "it stay (%" PRIu64 " record of it read)", n);
	}
	r = snap_rec(SJ_SNAP_BEGIN, 90);
	apply(s, &r);
	r = job_rec("a", 0, 1, "1");
	apply(s, &r);
	r = snap_rec(SJ_SNAP_END, 1);
	apply(s, &r);
	ok(sj_state_count(s) == 1 && has(s, "a") && !has(s, "b") &&
	    sj_state_next_seq(s) == 90 && sj_state_short(s) == 0,
	    "a whole snapshot replaces the state: b, not in it, is gone");

	/* 32: what follows the end, in the same segment, applies to it. */
	r = job_rec("c", 0, 95, "3");
	apply(s, &r);
	memset(&r, 0, sizeof r);
	r.kind = SJ_FINISH;
	r.key = S("a");
	r.state = JOB_CANCELLED;
	apply(s, &r);
	{
		uint64_t n;

		memset(&seen, 0, sizeof seen);
		sj_state_each(s, 100.0, collect, &seen);
		ok(!sj_state_drop_torn(s, &n) && seen.n == 2 &&
		    seen.state[0] == JOB_CANCELLED && strcmp(seen.keys[1], "c") == 0 &&
		    sj_state_next_seq(s) == 96,
		    "records after a snapshot's end change the state it made");
	}

	/* 33: an abort drops the open snapshot; later records count. */
	r = snap_rec(SJ_SNAP_BEGIN, 200);
	apply(s, &r);
	r = job_rec("x", 0, 150, "x");
	apply(s, &r);
	r = snap_rec(SJ_SNAP_ABORT, 0);
	apply(s, &r);
	r = job_rec("d", 0, 160, "4");
	apply(s, &r);
	{
		uint64_t n;

		ok(!sj_state_drop_torn(s, &n) && sj_state_count(s) == 3 &&
		    has(s, "d") && !has(s, "x") && sj_state_next_seq(s) == 161,
		    "an abort drops the snapshot begun before; what follows counts");
	}

	/* 34: a snapshot missing records (its end says 2, 1 was read) replaces
	 * nothing that came before it; where nothing did, it is read. */
	r = snap_rec(SJ_SNAP_BEGIN, 300);
	apply(s, &r);
	r = job_rec("y", 0, 250, "y");
	apply(s, &r);
	r = snap_rec(SJ_SNAP_END, 2);
	apply(s, &r);
	all = sj_state_count(s) == 3 && !has(s, "y") && sj_state_short(s) == 1;
	sj_state_free(s);
	s = sj_state_new();
	r = snap_rec(SJ_SNAP_BEGIN, 300);
	apply(s, &r);
	r = job_rec("y", 0, 250, "y");
	apply(s, &r);
	r = snap_rec(SJ_SNAP_END, 2);
	apply(s, &r);
	ok(all && sj_state_count(s) == 1 && has(s, "y") && sj_state_short(s) == 1,
	    "a snapshot missing records replaces no state; alone, it is read");
	sj_state_free(s);

	/* 35: through a real journal: old jobs, then a snapshot cut in its
	 * middle (a crash while it was written): replay keeps the old jobs. */
	{
		char dir[] = "/tmp/test_sj.XXXXXX", err[256], seg[300];
		struct journal_opts o = { .sync = JOURNAL_SYNC_ALWAYS };
		struct ev_loop *loop = ev_default_loop(0);
		struct journal_stats st;
		struct journal *j;
		uint64_t torn = 0, cut;
		bool good = false;

		if (mkdtemp(dir) == NULL)
			return 1;
		j = journal_open(loop, dir, &o, err, sizeof err);
		if (j != NULL && journal_replay(j, NULL, NULL, NULL, err,
		    sizeof err) == 0) {
			for (int i = 0; i < 100; i++) {
				char key[16];

				snprintf(key, sizeof key, "old%d", i);
				r = job_rec(key, 0, (uint32_t)i, "{\"old\":1}");
				append_rec(j, &r);
			}
			journal_flush(j);
			journal_stats(j, &st);
			cut = st.cur_bytes;     /* where the snapshot starts */
			r = snap_rec(SJ_SNAP_BEGIN, 100);
			append_rec(j, &r);
			for (int i = 0; i < 60; i++) {
				char key[16];

				snprintf(key, sizeof key, "old%d", i);
				r = job_rec(key, 0, (uint32_t)i, "{\"old\":1}");
				append_rec(j, &r);
			}
			r = snap_rec(SJ_SNAP_END, 60);
			append_rec(j, &r);
			journal_flush(j);
			journal_stats(j, &st);
			/* Cut it two thirds in, in the middle of a record. */
			cut += (st.cur_bytes - cut) * 2 / 3;
			snprintf(seg, sizeof seg, "%s/%016" PRIx64 ".log", dir,
			    st.cur_segno);
			good = journal_close(j) == 0 && truncate(seg, (off_t)cut) == 0;
		}
		s = sj_state_new();
		j = good ? journal_open(loop, dir, &o, err, sizeof err) : NULL;
		good = j != NULL && journal_replay(j, replay_cb, s, NULL, err,
		    sizeof err) == 0 && sj_state_drop_torn(s, &torn) &&
		    sj_state_count(s) == 100;
		ok(good, "a snapshot cut in its middle on disk is ignored: the 100 "
		    "jobs before it come back (%zu; %" PRIu64 " records of it read)",
		    sj_state_count(s), torn);
		if (j != NULL)
			journal_close(j);
		sj_state_free(s);
		{
			char cmd[300];

			snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
			if (system(cmd) != 0)
				diag("could not remove %s", dir);
		}
	}
	return done();
}
