/*
 * fuzz_queue_write.c — libFuzzer harness for the tree's queue and channel
 * write path (src/tree/fs_lines.c): bytes cut into lines, each checked and
 * compacted by the daemon's JSON scanner.
 *
 * The first input byte picks the size of the write(2)s the rest is fed in
 * (1 to 256 bytes), the second a line limit; the whole input is then fed
 * again in one write, and both ways must give the same texts.  Checks:
 * every text is one line, compacting it again changes nothing, and a
 * failed write leaves nothing behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tree/fs.h"

static void
check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_queue_write: %s\n", what);
		abort();
	}
}

/* feed: the input in writes of step bytes, then close; -1 if a write failed. */
static int
feed(const unsigned char *p, size_t len, size_t step, size_t max, struct buf *out,
    size_t *total)
{
	struct lines ls = { 0 };
	size_t off = 0, n, k;
	int rc = 0;

	*total = 0;
	while (off < len && rc == 0) {
		k = len - off < step ? len - off : step;
		if ((rc = lines_feed(&ls, (const char *)p + off, k, false, max, out, &n,
		    NULL, 0)) == 0)
			*total += n;
		off += k;
	}
	if (rc == 0 && (rc = lines_feed(&ls, NULL, 0, true, max, out, &n,
	    NULL, 0)) == 0)
		*total += n;
	if (rc != 0)
		check(buf_used(&ls.pending) == 0, "a failed write kept a partial line");
	lines_free(&ls);
	return rc;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct buf a = { 0 }, b = { 0 }, again = { 0 };
	size_t step, max, na, nb, lines = 0;
	const char *p, *nl;
	char err[128];
	int ra, rb;

	if (size < 2)
		return 0;
	step = (size_t)data[0] + 1;
	max = data[1] < 16 ? (size_t)data[1] : 1u << 20;
	data += 2;
	size -= 2;
	ra = feed(data, size, step, max, &a, &na);
	rb = feed(data, size, size > 0 ? size : 1, max, &b, &nb);
	check((ra == 0) == (rb == 0), "the same bytes in other writes gave another verdict");
	if (ra == 0 && rb == 0) {
		check(a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0),
		    "the same bytes in other writes gave other texts");
		check(na == nb, "counts differ");
	}
	for (p = a.data; ra == 0 && a.len > 0 && p < a.data + a.len; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(a.data + a.len - p));
		check(nl != NULL, "a text without its newline");
		again.off = again.len = 0;
		check(msg_json_compact(p, (size_t)(nl - p), &again, err, sizeof err) == 0,
		    "a delivered text is not JSON");
		check(again.len == (size_t)(nl - p) && memcmp(again.data, p, again.len) == 0,
		    "a delivered text was not compact");
		lines++;
	}
	check(ra != 0 || lines == na, "count does not match the texts");
	buf_free(&a);
	buf_free(&b);
	buf_free(&again);
	return 0;
}
