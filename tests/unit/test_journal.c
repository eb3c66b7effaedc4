/*
 * test_journal.c — unit tests of the journal store (src/store/journal.c) and
 * CRC-32C (src/crc32c.c), on libev's default loop.  Prints TAP.
 *
 *   test_journal            run the tests
 *   test_journal bench DIR SECONDS [serial]
 *                           append 100-byte records with sync ALWAYS, in a
 *                           tight loop (or one at a time, each waited for)
 *                           and print records/s and syncs/s
 *   test_journal replay DIR time the replay of DIR
 *
 * Waits are bounded polls on a condition (the loop runs until the condition
 * holds or 30 s pass); nothing asserts on elapsed time.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include "server.h"
#include "store/journal.h"

static int ntests, nfailed;
static struct ev_loop *loop;
static struct journal *cur;     /* flushed by the prepare watcher */
static ev_prepare flusher;
static ev_timer ticker;
static char top[256];           /* this run's temporary directory */

static bool __attribute__((format(printf, 2, 3)))
ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++ntests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		nfailed++;
	return cond;
}

static void
diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void
flush_cb(struct ev_loop *l, ev_prepare *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	if (cur != NULL)
		journal_flush(cur);
}

static void
tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
}

/* run_until: turn the loop until cond(arg) holds; false after 30 s. */
static bool
run_until(bool (*cond)(void *), void *arg)
{
	double end = now_wall() + 30;

	while (!cond(arg)) {
		if (now_wall() > end)
			return false;
		ev_run(loop, EVRUN_ONCE);
	}
	return true;
}

static void
run_for(double secs)
{
	double end = now_wall() + secs;

	while (now_wall() < end)
		ev_run(loop, EVRUN_ONCE);
}

static bool
is_durable(void *arg)
{
	return journal_durable_lsn(cur) >= *(uint64_t *)arg;
}

static bool
has_error(void *arg)
{
	(void)arg;
	return journal_error(cur) != 0;
}

/* ---------------------------------------------------------- records */

struct rec {
	uint8_t  kind;
	uint32_t len;
	uint8_t *data;
};

struct recs {
	struct rec *v;
	size_t      n, cap;
};

static uint64_t rng = 88172645463325252ull;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void
recs_add(struct recs *r, uint8_t kind, const void *p, uint32_t len)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->v = xrealloc(r->v, r->cap * sizeof *r->v);
	}
	r->v[r->n].kind = kind;
	r->v[r->n].len = len;
	r->v[r->n].data = xmalloc(len);
	memcpy(r->v[r->n].data, p, len);
	r->n++;
}

static void
recs_free(struct recs *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].data);
	free(r->v);
	memset(r, 0, sizeof *r);
}

/* append_random: append one record of random kind, size and bytes. */
static uint64_t
append_random(struct journal *j, struct recs *log)
{
	uint8_t buf[6000];
	uint32_t len = rnd() % 10 == 0 ? rnd() % 6000 : rnd() % 300;
	uint8_t kind = 1 + rnd() % 255;
	struct iovec iov[2];
	uint64_t lsn;

	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)rnd();
	iov[0] = (struct iovec){ buf, len / 2 };
	iov[1] = (struct iovec){ buf + len / 2, len - len / 2 };
	lsn = journal_append(j, kind, iov, 2);
	if (lsn != 0 && log != NULL)
		recs_add(log, kind, buf, len);
	return lsn;
}

static int
collect_cb(void *ctx, uint8_t kind, const void *p, uint32_t len)
{
	recs_add(ctx, kind, p, len);
	return 0;
}

/* recs_equal: got equals want[from..from+n) record for record. */
static bool
recs_equal(const struct recs *got, const struct recs *want, size_t from,
    size_t n)
{
	if (got->n != n) {
		diag("got %zu records, want %zu", got->n, n);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const struct rec *a = &got->v[i], *b = &want->v[from + i];

		if (a->kind != b->kind || a->len != b->len ||
		    memcmp(a->data, b->data, a->len) != 0) {
			diag("record %zu differs", i);
			return false;
		}
	}
	return true;
}

/* ---------------------------------------------------------- helpers */

static struct journal_opts
opts(enum journal_sync sync, uint64_t segment_bytes)
{
	struct journal_opts o = { 0 };

	o.sync = sync;
	o.segment_bytes = segment_bytes;
	return o;
}

/* jopen: open and replay DIR into *got (may be NULL); NULL on failure. */
static struct journal *
jopen(const char *dir, const struct journal_opts *o, struct recs *got,
    struct journal_replay_info *info, char *err, size_t errlen)
{
	struct journal *j = journal_open(loop, dir, o, err, errlen);

	if (j == NULL)
		return NULL;
	if (journal_replay(j, got ? collect_cb : NULL, got, info, err, errlen) < 0) {
		journal_close(j);
		return NULL;
	}
	cur = j;
	return j;
}

static void
jclose(struct journal *j)
{
	if (cur == j)
		cur = NULL;
	journal_close(j);
}

static char *
path(const char *a, const char *b)
{
	static char buf[4][512];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", a, b);
	return buf[k];
}

static char *
segpath(const char *dir, uint64_t segno)
{
	char name[32];

	snprintf(name, sizeof name, "%016" PRIx64 ".log", segno);
	return path(dir, name);
}

static uint64_t
fsize(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void
sh(const char *fmt, ...)
{
	char cmd[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		diag("command failed: %s", cmd);
}

/* rec_offsets: the start offsets of the records of a segment file, and its end. */
static size_t
rec_offsets(const char *file, uint64_t *offs, size_t max)
{
	int fd = open(file, O_RDONLY);
	uint64_t size = fsize(file), o = JOURNAL_SEG_HEADER;
	size_t n = 0;
	uint8_t h[4];

	while (o < size && n < max) {
		offs[n++] = o;
		if (pread(fd, h, 4, (off_t)o) != 4)
			break;
		o += JOURNAL_REC_HEADER + ((uint32_t)h[0] | h[1] << 8 |
		    h[2] << 16 | (uint32_t)h[3] << 24);
	}
	close(fd);
	if (n < max)
		offs[n] = o;
	return n;
}

/* write_journal: a journal in dir with records appended in many flushes. */
static void
write_journal(const char *dir, uint64_t segment_bytes, size_t nrec,
    struct recs *log)
{
	struct journal_opts o = opts(JOURNAL_SYNC_ALWAYS, segment_bytes);
	char err[512];
	struct journal *j = jopen(dir, &o, NULL, NULL, err, sizeof err);
	uint64_t lsn = 0;

	if (j == NULL) {
		diag("open %s: %s", dir, err);
		return;
	}
	for (size_t i = 0; i < nrec; i++) {
		lsn = append_random(j, log);
		if (i % 50 == 49 && !run_until(is_durable, &lsn))
			diag("write_journal: not durable");
	}
	if (!run_until(is_durable, &lsn))
		diag("write_journal: not durable");
	jclose(j);
	/* Then 300 more in the last segment, whatever its size. */
	o.segment_bytes = 1u << 30;
	if ((j = jopen(dir, &o, NULL, NULL, err, sizeof err)) == NULL) {
		diag("open %s: %s", dir, err);
		return;
	}
	for (size_t i = 0; i < 300; i++)
		lsn = append_random(j, log);
	run_until(is_durable, &lsn);
	jclose(j);
}

/* ------------------------------------------------------------ tests */

static void
test_crc(void)
{
	static const char *const v = "123456789";
	uint8_t zero[32] = { 0 }, ones[32], inc[32], big[4099];
	bool same = true;

	memset(ones, 0xff, sizeof ones);
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	ok(crc32c(0, v, 9) == 0xE3069283, "crc32c(\"123456789\") = 0xE3069283");
	ok(crc32c_soft(0, v, 9) == 0xE3069283, "table crc32c(\"123456789\") = 0xE3069283");
	ok(crc32c(0, zero, 32) == 0x8A9136AA && crc32c(0, ones, 32) == 0x62A8AB43 &&
	    crc32c(0, inc, 32) == 0x46DD794E && crc32c(0, "", 0) == 0,
	    "RFC 3720 vectors (32 zeros, 32 0xff, 0..31) and the empty string");
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)rnd();
	for (int k = 0; k < 200; k++) {
		size_t off = rnd() % 64, n = rnd() % (sizeof big - 64), cut = n ? rnd() % n : 0;
		uint32_t whole = crc32c(0, big + off, n);

		if (whole != crc32c_soft(0, big + off, n) ||
		    whole != crc32c(crc32c(0, big + off, cut), big + off + cut, n - cut))
			same = false;
	}
	ok(same, "hardware and table CRC agree, and feeding in pieces equals feeding whole");
}

static struct {
	uint64_t last;
	unsigned calls;
	bool     monotonic;
} dur;

static void
on_durable(void *ctx, uint64_t lsn)
{
	(void)ctx;
	if (lsn <= dur.last)
		dur.monotonic = false;
	dur.last = lsn;
	dur.calls++;
}

static void
test_roundtrip(void)
{
	char dir[300], err[512];
	struct journal_opts o = opts(JOURNAL_SYNC_ALWAYS, 0);
	struct recs log = { 0 }, got = { 0 };
	struct journal_replay_info info;
	struct journal_stats st;
	struct journal *j;
	uint64_t lsn = 0, prev = 0;
	bool mono = true;

	snprintf(dir, sizeof dir, "%s/roundtrip", top);
	o.on_durable = on_durable;
	dur.monotonic = true;
	dur.last = 0;
	dur.calls = 0;
	j = jopen(dir, &o, &got, &info, err, sizeof err);
	if (!ok(j != NULL && got.n == 0, "a new directory opens empty"))
		diag("%s", err);
	if (j == NULL)
		return;
	for (int i = 0; i < 3000; i++) {
		lsn = append_random(j, &log);
		if (lsn <= prev)
			mono = false;
		prev = lsn;
		if (rnd() % 32 == 0)
			ev_run(loop, EVRUN_NOWAIT);
	}
	ok(mono, "LSNs of appended records increase");
	ok(run_until(is_durable, &lsn), "every appended record becomes durable");
	ok(dur.monotonic && dur.last == lsn && dur.calls > 0,
	    "on_durable ran %u times with increasing LSNs, the last %" PRIu64,
	    dur.calls, dur.last);
	journal_stats(j, &st);
	ok(st.records == 3000 && st.syncs > 0 && st.sync_max_us >= st.sync_last_us &&
	    st.segments == 1 && st.disk_bytes == fsize(segpath(dir, 1)) &&
	    st.error == 0 && st.backlog_bytes == 0,
	    "stats: %" PRIu64 " records, %" PRIu64 " syncs (last %" PRIu64
	    " us, max %" PRIu64 " us), %" PRIu64 " bytes on disk", st.records,
	    st.syncs, st.sync_last_us, st.sync_max_us, st.disk_bytes);
	jclose(j);
	recs_free(&got);
	j = jopen(dir, &o, &got, &info, err, sizeof err);
	ok(j != NULL && recs_equal(&got, &log, 0, log.n) && info.torn_bytes == 0 &&
	    info.dropped_bytes == 0, "reopened, replay gives the %zu records back", log.n);
	if (j != NULL) {
		ok(journal_durable_lsn(j) == lsn && append_random(j, NULL) > lsn,
		    "after reopening LSNs go on from where they were");
		jclose(j);
	}
	recs_free(&got);
	recs_free(&log);
}

static void
test_modes(void)
{
	static const char *const name[] = { "always", "interval", "never" };
	char dir[300], err[512];

	for (int m = JOURNAL_SYNC_INTERVAL; m <= JOURNAL_SYNC_NEVER; m++) {
		struct journal_opts o = opts(m, 0);
		struct recs log = { 0 }, got = { 0 };
		struct journal_stats st;
		struct journal *j;
		uint64_t lsn = 0;

		snprintf(dir, sizeof dir, "%s/mode-%s", top, name[m]);
		o.interval_ms = 20;
		if ((j = jopen(dir, &o, NULL, NULL, err, sizeof err)) == NULL) {
			ok(false, "open %s: %s", dir, err);
			continue;
		}
		for (int i = 0; i < 500; i++)
			lsn = append_random(j, &log);
		journal_flush(j);
		ok(journal_durable_lsn(j) == lsn,
		    "sync %s: records count as durable as soon as written", name[m]);
		if (m == JOURNAL_SYNC_INTERVAL) {
			struct journal_stats s2;
			double end = now_wall() + 30;

			do {
				ev_run(loop, EVRUN_ONCE);
				journal_stats(j, &s2);
			} while (s2.syncs == 0 && now_wall() < end);
			ok(s2.syncs > 0, "sync interval: the interval timer syncs");
		} else {
			run_for(0.1);
			journal_stats(j, &st);
			ok(st.syncs == 0, "sync never: no sync for records");
		}
		jclose(j);
		j = jopen(dir, &o, &got, NULL, err, sizeof err);
		ok(j != NULL && recs_equal(&got, &log, 0, log.n),
		    "sync %s: replay gives the records back", name[m]);
		if (j != NULL)
			jclose(j);
		recs_free(&got);
		recs_free(&log);
	}
}

static void
test_rotation(void)
{
	char dir[300], err[512];
	struct journal_opts o = opts(JOURNAL_SYNC_ALWAYS, 16384);
	struct recs log = { 0 }, got = { 0 }, live = { 0 };
	struct journal_stats st;
	struct journal *j;
	uint64_t lsn = 0, segno, size = 0;
	size_t live_from;
	int r;

	snprintf(dir, sizeof dir, "%s/rotation", top);
	if ((j = jopen(dir, &o, NULL, NULL, err, sizeof err)) == NULL) {
		ok(false, "open %s: %s", dir, err);
		return;
	}
	for (int i = 0; i < 2000; i++) {
		lsn = append_random(j, &log);
		if (i % 50 == 49)
			run_until(is_durable, &lsn);
	}
	run_until(is_durable, &lsn);
	journal_stats(j, &st);
	for (uint64_t s = st.first_segno; s <= st.cur_segno; s++)
		size += fsize(segpath(dir, s));
	ok(st.segments > 5 && st.cur_segno == st.first_segno + st.segments - 1 &&
	    st.disk_bytes == size && st.segment_bytes == 16384 &&
	    st.cur_bytes == fsize(segpath(dir, st.cur_segno)), "segments rotate past segment_bytes: %u segments, "
	    "%" PRIu64 " bytes, as on disk", st.segments, st.disk_bytes);

	segno = journal_rotate(j);
	ok(st.backlog_bytes == 0 && fsize(segpath(dir, st.cur_segno)) > JOURNAL_SEG_HEADER ?
	    segno == st.cur_segno + 1 : segno == st.cur_segno,
	    "journal_rotate returns the next segment (or the current one if it is empty)");
	/* Compaction: the live state (here, the last 50 records) again. */
	live_from = log.n - 50;
	for (size_t i = live_from; i < log.n; i++) {
		struct iovec iov = { log.v[i].data, log.v[i].len };

		lsn = journal_append(j, log.v[i].kind, &iov, 1);
		recs_add(&live, log.v[i].kind, log.v[i].data, log.v[i].len);
	}
	r = journal_drop_before(j, segno);
	ok(r == 1, "journal_drop_before waits for the new segment to be synced (%d)", r);
	ok(journal_drop_before(j, segno + 5) == -EINVAL,
	    "journal_drop_before refuses a segment that does not exist");
	run_until(is_durable, &lsn);
	ev_run(loop, EVRUN_NOWAIT);
	journal_stats(j, &st);
	ok(st.segments == 1 && st.first_segno == segno &&
	    fsize(segpath(dir, segno - 1)) == 0 && st.disk_bytes == fsize(segpath(dir, segno)),
	    "older segments are deleted once it is (%u left, first %" PRIu64 ")",
	    st.segments, st.first_segno);
	jclose(j);
	j = jopen(dir, &o, &got, NULL, err, sizeof err);
	ok(j != NULL && recs_equal(&got, &live, 0, live.n),
	    "replay after compaction gives the live records only");
	if (j != NULL) {
		ok(journal_rotate(j) == segno + 1 && journal_rotate(j) == segno + 1,
		    "journal_rotate twice before the rotation gives one segment");
		jclose(j);
	}
	recs_free(&got);
	recs_free(&log);
	recs_free(&live);
}

static void
test_torn_tail(void)
{
	char base[300], dir[300], err[512];
	struct journal_opts o = opts(JOURNAL_SYNC_ALWAYS, 65536);
	struct recs log = { 0 };
	struct journal_replay_info info;
	struct journal_stats st;
	uint64_t offs[4096], last;
	size_t nlast, before, good = 0, tries = 60;
	struct journal *j;

	snprintf(base, sizeof base, "%s/torn-base", top);
	write_journal(base, 65536, 1500, &log);
	if ((j = jopen(base, &o, NULL, NULL, err, sizeof err)) == NULL) {
		ok(false, "open %s: %s", base, err);
		return;
	}
	journal_stats(j, &st);
	last = st.cur_segno;
	jclose(j);
	nlast = rec_offsets(segpath(base, last), offs, 4095);
	before = log.n - nlast;
	ok(st.segments >= 3 && nlast > 10, "a journal of %u segments, %zu records in the last",
	    st.segments, nlast);

	for (size_t t = 0; t < tries; t++) {
		uint64_t cut = JOURNAL_SEG_HEADER + rnd() % (offs[nlast] - JOURNAL_SEG_HEADER);
		size_t keep = 0;
		struct recs got = { 0 };

		while (keep < nlast && offs[keep + 1] <= cut)
			keep++;
		snprintf(dir, sizeof dir, "%s/torn-%zu", top, t);
		sh("cp -a '%s' '%s'", base, dir);
		if (truncate(segpath(dir, last), (off_t)cut) < 0)
			diag("truncate: %s", strerror(errno));
		j = jopen(dir, &o, &got, &info, err, sizeof err);
		if (j != NULL && recs_equal(&got, &log, 0, before + keep) &&
		    info.torn_bytes == cut - offs[keep] &&
		    fsize(segpath(dir, last)) == offs[keep]) {
			uint64_t lsn;
			struct recs more = { 0 };

			/* It goes on appending after the cut. */
			lsn = append_random(j, &more);
			run_until(is_durable, &lsn);
			jclose(j);
			recs_free(&got);
			j = jopen(dir, &o, &got, &info, err, sizeof err);
			if (j != NULL && got.n == before + keep + 1 &&
			    info.torn_bytes == 0 &&
			    got.v[got.n - 1].len == more.v[0].len &&
			    memcmp(got.v[got.n - 1].data, more.v[0].data, more.v[0].len) == 0)
				good++;
			else
				diag("cut %" PRIu64 ": append after the cut lost", cut);
			recs_free(&more);
		} else {
			diag("cut at %" PRIu64 ": %s, torn %" PRIu64 " want %" PRIu64,
			    cut, j ? "wrong records" : err, j ? info.torn_bytes : 0,
			    cut - offs[keep]);
		}
		if (j != NULL)
			jclose(j);
		recs_free(&got);
		sh("rm -rf '%s'", dir);
	}
	/* A crash right after a segment was created leaves it short. */
	{
		struct recs got = { 0 };
		uint64_t lsn;
		int fd;

		snprintf(dir, sizeof dir, "%s/torn-header", top);
		sh("cp -a '%s' '%s'", base, dir);
		fd = open(segpath(dir, last + 1), O_WRONLY | O_CREAT, 0644);
		if (write(fd, "jobfsJ0", 7) != 7)
			diag("write: %s", strerror(errno));
		close(fd);
		j = jopen(dir, &o, &got, &info, err, sizeof err);
		ok(j != NULL && recs_equal(&got, &log, 0, log.n),
		    "a new last segment with a torn header is started afresh");
		if (j != NULL) {
			lsn = append_random(j, NULL);
			run_until(is_durable, &lsn);
			jclose(j);
		}
		recs_free(&got);
		j = jopen(dir, &o, &got, &info, err, sizeof err);
		ok(j != NULL && got.n == log.n + 1 &&
		    fsize(segpath(dir, last + 1)) > JOURNAL_SEG_HEADER,
		    "and takes the next records");
		if (j != NULL)
			jclose(j);
		recs_free(&got);
	}

	ok(good == tries, "last segment cut at %zu random offsets: every record "
	    "before the cut survives, the dropped bytes are counted, appending goes on "
	    "(%zu good)", tries, good);
	recs_free(&log);
}

static void
test_damage(void)
{
	char base[300], dir[300], err[512];
	struct journal_opts o = opts(JOURNAL_SYNC_ALWAYS, 65536);
	struct recs log = { 0 };
	struct journal_replay_info info;
	uint64_t offs[4096];
	size_t n1, fails = 0, repairs = 0, lasting = 0, tries = 20;
	struct journal *j;

	snprintf(base, sizeof base, "%s/damage-base", top);
	write_journal(base, 65536, 1500, &log);
	n1 = rec_offsets(segpath(base, 2), offs, 4095);
	/* Records of segment 1 come first in log; count them. */
	size_t n0 = rec_offsets(segpath(base, 1), (uint64_t[4096]){ 0 }, 4095);

	for (size_t t = 0; t < tries; t++) {
		/* Flip one byte in a record of segment 2 (of 3 or more). */
		size_t k = 1 + rnd() % (n1 - 2);
		uint64_t at = offs[k] + rnd() % (offs[k + 1] - offs[k]);
		char want[600];
		struct recs got = { 0 }, expect = { 0 };
		uint8_t b;
		int fd;

		snprintf(dir, sizeof dir, "%s/damage-%zu", top, t);
		sh("cp -a '%s' '%s'", base, dir);
		fd = open(segpath(dir, 2), O_RDWR);
		if (pread(fd, &b, 1, (off_t)at) == 1) {
			b ^= 1u << (rnd() % 8);
			if (pwrite(fd, &b, 1, (off_t)at) != 1)
				diag("pwrite: %s", strerror(errno));
		}
		close(fd);

		snprintf(want, sizeof want, "%s: damaged record at offset %" PRIu64,
		    segpath(dir, 2), offs[k]);
		o.repair = false;
		j = jopen(dir, &o, NULL, &info, err, sizeof err);
		if (j == NULL && strstr(err, want) != NULL)
			fails++;
		else
			diag("byte %" PRIu64 " flipped: %s", at, j ? "opened" : err);
		if (j != NULL)
			jclose(j);

		for (size_t i = 0; i < log.n; i++)
			if (i != n0 + k)
				recs_add(&expect, log.v[i].kind, log.v[i].data, log.v[i].len);
		o.repair = true;
		j = jopen(dir, &o, &got, &info, err, sizeof err);
		if (j != NULL && recs_equal(&got, &expect, 0, expect.n) &&
		    info.dropped_regions == 1 &&
		    info.dropped_bytes == offs[k + 1] - offs[k] && info.torn_bytes == 0)
			repairs++;
		else
			diag("repair of byte %" PRIu64 ": %s", at, j ? "wrong result" : err);
		if (j != NULL)
			jclose(j);
		recs_free(&got);

		o.repair = false;
		j = jopen(dir, &o, &got, &info, err, sizeof err);
		if (j != NULL && recs_equal(&got, &expect, 0, expect.n))
			lasting++;
		if (j != NULL)
			jclose(j);
		recs_free(&got);
		recs_free(&expect);
		sh("rm -rf '%s'", dir);
	}
	ok(fails == tries, "a byte flipped inside an earlier segment fails the "
	    "replay, naming the segment and the record's offset (%zu/%zu)", fails, tries);
	ok(repairs == tries, "with repair the replay skips exactly the damaged record "
	    "and counts its bytes (%zu/%zu)", repairs, tries);
	ok(lasting == tries, "the repair lasts: the next plain start succeeds (%zu/%zu)",
	    lasting, tries);

	/* A byte flipped in the middle of the last segment is damage, not a tail. */
	{
		uint64_t lo[4096];
		size_t nl;
		struct journal_stats st;
		uint8_t b;
		int fd;

		snprintf(dir, sizeof dir, "%s/damage-last", top);
		sh("cp -a '%s' '%s'", base, dir);
		o.repair = false;
		j = jopen(dir, &o, NULL, NULL, err, sizeof err);
		journal_stats(j, &st);
		jclose(j);
		nl = rec_offsets(segpath(dir, st.cur_segno), lo, 4095);
		fd = open(segpath(dir, st.cur_segno), O_RDWR);
		if (pread(fd, &b, 1, (off_t)lo[nl / 2] + 4) == 1) {
			b ^= 0x10;
			if (pwrite(fd, &b, 1, (off_t)lo[nl / 2] + 4) != 1)
				diag("pwrite: %s", strerror(errno));
		}
		close(fd);
		j = jopen(dir, &o, NULL, NULL, err, sizeof err);
		ok(j == NULL && strstr(err, segpath(dir, st.cur_segno)) != NULL,
		    "a byte flipped mid-way in the last segment is damage: %s",
		    j ? "opened" : err);
		if (j != NULL)
			jclose(j);
	}

	/* A segment missing from the middle. */
	snprintf(dir, sizeof dir, "%s/damage-missing", top);
	sh("cp -a '%s' '%s' && rm '%s'", base, dir, segpath(dir, 2));
	o.repair = false;
	j = jopen(dir, &o, NULL, NULL, err, sizeof err);
	ok(j == NULL && strstr(err, segpath(dir, 3)) != NULL,
	    "a missing segment fails the replay: %s", j ? "opened" : err);
	if (j != NULL)
		jclose(j);
	o.repair = true;
	j = jopen(dir, &o, NULL, &info, err, sizeof err);
	ok(j != NULL, "and repair starts anyway");
	if (j != NULL)
		jclose(j);
	o.repair = false;
	j = jopen(dir, &o, NULL, &info, err, sizeof err);
	ok(j != NULL, "and that repair lasts too");
	if (j != NULL)
		jclose(j);
	recs_free(&log);
}

static int
threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	while (d != NULL && (de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	if (d != NULL)
		closedir(d);
	return n;
}

/* A daemon opens and replays before it forks: no thread may exist by then. */
static void
test_thread_late(void)
{
	char dir[300], err[512], pid[32] = "";
	struct journal_opts o = opts(JOURNAL_SYNC_ALWAYS, 0);
	struct journal *j;
	uint64_t lsn;
	int before = threads(), fd;

	snprintf(dir, sizeof dir, "%s/late", top);
	if ((j = jopen(dir, &o, NULL, NULL, err, sizeof err)) == NULL) {
		ok(false, "open %s: %s", dir, err);
		return;
	}
	ok(threads() == before, "open and replay start no thread (%d)", threads());
	lsn = append_random(j, NULL);
	run_until(is_durable, &lsn);
	ok(threads() == before + 1, "the first sync starts the one sync thread");
	fd = open(path(dir, "lock"), O_RDONLY);
	if (read(fd, pid, sizeof pid - 1) < 0)
		diag("read lock: %s", strerror(errno));
	close(fd);
	ok(atol(pid) == (long)getpid(), "DIR/lock holds our pid (%ld)", atol(pid));
	jclose(j);
	ok(threads() == before, "closing ends the thread");
}

static void
test_lock(void)
{
	char dir[300], err[512];
	struct journal_opts o = opts(JOURNAL_SYNC_ALWAYS, 0);
	struct journal *j;
	pid_t pid;
	int status = -1;

	snprintf(dir, sizeof dir, "%s/lock", top);
	if ((j = jopen(dir, &o, NULL, NULL, err, sizeof err)) == NULL) {
		ok(false, "open %s: %s", dir, err);
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		char want[400], e2[512];
		struct journal *j2;

		snprintf(want, sizeof want, "%s is in use by another jobfs (pid %ld)",
		    dir, (long)getppid());
		j2 = journal_open(loop, dir, &o, e2, sizeof e2);
		if (j2 != NULL || errno != EWOULDBLOCK || strcmp(e2, want) != 0) {
			printf("# child: %s\n", j2 ? "opened" : e2);
			fflush(stdout);
			_exit(1);
		}
		_exit(0);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "a second open of the directory fails with EWOULDBLOCK, naming it and the holder's pid");
	jclose(j);
	j = jopen(dir, &o, NULL, NULL, err, sizeof err);
	ok(j != NULL, "closing releases the lock");
	if (j != NULL)
		jclose(j);
}

static void
test_enospc(void)
{
	char mnt[300], dir[400], filler[400], err[512];
	struct journal_opts o = opts(JOURNAL_SYNC_ALWAYS, 0);
	struct recs log = { 0 }, got = { 0 };
	struct journal *j;
	uint64_t lsn = 0, durable;
	static char block[65536];
	int fd;

	if (geteuid() != 0) {
		ok(true, "# skip ENOSPC test: needs root to mount a tmpfs");
		return;
	}
	snprintf(mnt, sizeof mnt, "%s/tmpfs", top);
	mkdir(mnt, 0755);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0) {
		ok(true, "# skip ENOSPC test: mount tmpfs: %s", strerror(errno));
		return;
	}
	snprintf(dir, sizeof dir, "%s/data", mnt);
	snprintf(filler, sizeof filler, "%s/filler", mnt);
	if ((j = jopen(dir, &o, NULL, NULL, err, sizeof err)) == NULL) {
		ok(false, "open %s: %s", dir, err);
		goto out;
	}
	for (int i = 0; i < 100; i++)
		lsn = append_random(j, &log);
	run_until(is_durable, &lsn);
	durable = journal_durable_lsn(j);

	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	memset(block, 'x', sizeof block);
	while (write(fd, block, sizeof block) > 0)
		;
	while (write(fd, block, 1) > 0)
		;
	close(fd);
	for (int i = 0; i < 200; i++)
		lsn = append_random(j, &log);
	run_until(has_error, NULL);
	ok(journal_error(j) == ENOSPC, "disk full: journal_error() is ENOSPC (%s)",
	    strerror(journal_error(j)));
	run_for(0.3);
	ok(journal_durable_lsn(j) == durable && journal_error(j) == ENOSPC,
	    "while full the durable LSN stays at %" PRIu64 " through retries", durable);
	{
		struct journal_stats st;

		journal_stats(j, &st);
		ok(st.error == ENOSPC && st.backlog_bytes > 0 &&
		    st.disk_bytes == fsize(segpath(dir, 1)),
		    "while full the segment is cut back to its last good record and "
		    "the records wait in memory (%" PRIu64 " bytes)", st.backlog_bytes);
	}
	unlink(filler);
	ok(run_until(is_durable, &lsn) && journal_error(j) == 0,
	    "space freed: the journal recovers by itself and every record becomes durable");
	jclose(j);
	j = jopen(dir, &o, &got, NULL, err, sizeof err);
	ok(j != NULL && recs_equal(&got, &log, 0, log.n),
	    "replay after the disk-full episode gives every record once, in order");
	if (j != NULL)
		jclose(j);
out:
	recs_free(&log);
	recs_free(&got);
	umount2(mnt, MNT_DETACH);
}

static atomic_int eio_syncs;    /* so many next syncs fail with EIO */

static int
failing_fdatasync(int fd)
{
	if (atomic_fetch_sub(&eio_syncs, 1) > 0) {
		errno = EIO;
		return -1;
	}
	atomic_store(&eio_syncs, 0);
	return fdatasync(fd);
}

static atomic_int hold_syncs;    /* syncs wait while set */

static int
held_fdatasync(int fd)
{
	while (atomic_load(&hold_syncs))
		usleep(1000);
	return fdatasync(fd);
}

static bool
written(void *arg)
{
	struct journal_stats st;

	journal_stats(cur, &st);
	return st.written_lsn >= *(uint64_t *)arg;
}

/* While a sync is out the loop goes on writing; the next sync takes all. */
static void
test_pipeline(void)
{
	char dir[300], err[512];
	struct journal_opts o = opts(JOURNAL_SYNC_ALWAYS, 0);
	struct journal_stats st;
	struct journal *j;
	uint64_t a = 0, b = 0;

	snprintf(dir, sizeof dir, "%s/pipeline", top);
	journal_fdatasync_hook = held_fdatasync;
	if ((j = jopen(dir, &o, NULL, NULL, err, sizeof err)) == NULL) {
		ok(false, "open %s: %s", dir, err);
		goto out;
	}
	a = append_random(j, NULL);
	run_until(is_durable, &a);
	journal_stats(j, &st);
	atomic_store(&hold_syncs, 1);
	a = append_random(j, NULL);
	run_until(written, &a);           /* written, its sync now held */
	for (int i = 0; i < 100; i++) {
		b = append_random(j, NULL);
		ev_run(loop, EVRUN_NOWAIT);
	}
	ok(run_until(written, &b) && journal_durable_lsn(j) < a,
	    "while a sync is out, later batches are written (pipelining)");
	atomic_store(&hold_syncs, 0);
	ok(run_until(is_durable, &b), "and become durable after it");
	{
		struct journal_stats s2;

		journal_stats(j, &s2);
		ok(s2.syncs - st.syncs == 2, "with one more sync for all 100 (%" PRIu64 ")",
		    s2.syncs - st.syncs);
	}
	jclose(j);
out:
	journal_fdatasync_hook = NULL;
}

static void
test_eio(void)
{
	char dir[300], err[512];
	struct journal_opts o = opts(JOURNAL_SYNC_ALWAYS, 0);
	struct recs log = { 0 }, got = { 0 };
	struct journal *j;
	uint64_t lsn = 0, durable;

	snprintf(dir, sizeof dir, "%s/eio", top);
	journal_fdatasync_hook = failing_fdatasync;
	if ((j = jopen(dir, &o, NULL, NULL, err, sizeof err)) == NULL) {
		ok(false, "open %s: %s", dir, err);
		goto out;
	}
	for (int i = 0; i < 100; i++)
		lsn = append_random(j, &log);
	run_until(is_durable, &lsn);
	durable = journal_durable_lsn(j);
	atomic_store(&eio_syncs, 4);
	for (int i = 0; i < 200; i++)
		lsn = append_random(j, &log);
	run_until(has_error, NULL);
	ok(journal_error(j) == EIO && journal_durable_lsn(j) == durable,
	    "fdatasync fails with EIO: journal_error() is EIO, the durable LSN stays");
	ok(run_until(is_durable, &lsn) && journal_error(j) == 0 &&
	    atomic_load(&eio_syncs) == 0,
	    "after four failed syncs the journal writes again by itself and "
	    "every record becomes durable");
	jclose(j);
	j = jopen(dir, &o, &got, NULL, err, sizeof err);
	ok(j != NULL && recs_equal(&got, &log, 0, log.n),
	    "replay after failed syncs gives every record once, in order");
	if (j != NULL)
		jclose(j);
out:
	journal_fdatasync_hook = NULL;
	recs_free(&log);
	recs_free(&got);
}

/* ------------------------------------------------------------ bench */

/*
 * bench: 100-byte records with sync ALWAYS.  Tight: append as fast as the
 * loop turns (at most 1 MiB ahead of durable).  Serial: one record, wait
 * until it is durable, the next (what one synchronous client would see).
 */
static int
bench(const char *dir, double secs, bool serial)
{
	struct journal_opts o = opts(JOURNAL_SYNC_ALWAYS, 0);
	struct journal_stats st;
	struct journal *j;
	char err[512], payload[100];
	struct iovec iov = { payload, sizeof payload };
	uint64_t n = 0, lsn = 0;
	double t0, t1;

	memset(payload, 'j', sizeof payload);
	if ((j = jopen(dir, &o, NULL, NULL, err, sizeof err)) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	t0 = now_wall();
	while (serial && (t1 = now_wall()) - t0 < secs) {
		lsn = journal_append(j, 1, &iov, 1);
		n++;
		run_until(is_durable, &lsn);
	}
	while (!serial && (t1 = now_wall()) - t0 < secs) {
		/* Keep at most 1 MiB appended ahead of durable. */
		while (journal_appended_lsn(j) - journal_durable_lsn(j) < (1u << 20)) {
			lsn = journal_append(j, 1, &iov, 1);
			n++;
			if (n % 256 == 0)
				break;
		}
		ev_run(loop, EVRUN_NOWAIT);
	}
	run_until(is_durable, &lsn);
	t1 = now_wall();
	journal_stats(j, &st);
	printf("sync always, 100-byte records, %s, %.1f s: %" PRIu64 " records durable, "
	    "%.0f records/s, %" PRIu64 " syncs, %.0f syncs/s, %.0f records/sync, "
	    "sync latency last %" PRIu64 " us max %" PRIu64 " us\n",
	    serial ? "one at a time" : "tight loop", t1 - t0, n, n / (t1 - t0), st.syncs, st.syncs / (t1 - t0),
	    (double)n / (st.syncs ? st.syncs : 1), st.sync_last_us, st.sync_max_us);
	jclose(j);
	return 0;
}

static int
count_cb(void *ctx, uint8_t kind, const void *p, uint32_t len)
{
	(void)kind;
	(void)p;
	(void)len;
	++*(uint64_t *)ctx;
	return 0;
}

/* replay_bench: time the replay of DIR (as a restart would). */
static int
replay_bench(const char *dir)
{
	struct journal_opts o = opts(JOURNAL_SYNC_ALWAYS, 0);
	struct journal_replay_info info;
	struct journal_stats st;
	struct journal *j;
	char err[512];
	uint64_t n = 0;
	double t0 = now_wall(), t1;

	if ((j = journal_open(loop, dir, &o, err, sizeof err)) == NULL ||
	    journal_replay(j, count_cb, &n, &info, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	t1 = now_wall();
	journal_stats(j, &st);
	printf("replay: %" PRIu64 " records, %" PRIu64 " bytes in %u segments, "
	    "%.3f s, %.0f records/s, %.1f bytes/record on disk\n", n,
	    st.disk_bytes, st.segments, t1 - t0, n / (t1 - t0),
	    n ? (double)st.disk_bytes / n : 0.);
	journal_close(j);
	return 0;
}

int
main(int argc, char **argv)
{
	loop = ev_default_loop(0);
	log_init(getenv("JOURNAL_DEBUG") ? LVL_DEBUG : LVL_ERR, false);
	ev_prepare_init(&flusher, flush_cb);
	ev_prepare_start(loop, &flusher);
	ev_timer_init(&ticker, tick_cb, 0.005, 0.005);
	ev_timer_start(loop, &ticker);
	if (argc == 3 && strcmp(argv[1], "replay") == 0)
		return replay_bench(argv[2]);
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "bench") == 0)
		return bench(argv[2], atof(argv[3]),
		    argc == 5 && strcmp(argv[4], "serial") == 0);

	snprintf(top, sizeof top, "%s/journal-test.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_crc();
	test_roundtrip();
	test_modes();
	test_rotation();
	test_torn_tail();
	test_damage();
	test_lock();
	test_thread_late();
	test_enospc();
	test_eio();
	test_pipeline();
	printf("1..%d\n", ntests);
	if (nfailed == 0)
		sh("rm -rf '%s'", top);
	else
		diag("left %s for inspection", top);
	return nfailed != 0;
}
