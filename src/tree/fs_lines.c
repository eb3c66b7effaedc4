/*
 * fs_lines.c — the bytes written to a queue or a channel, cut into lines
 * of JSON.  Nothing here talks to FUSE, so a fuzzer can drive it
 * (tests/fuzz/fuzz_queue_write.c).
 *
 * Each newline-ended line is one JSON value, checked and compacted by the
 * daemon's own scanner (msg_json_compact), so a body written to a queue
 * reaches the worker exactly as the same body sent over TCP would: numbers,
 * escapes and repeated keys as written, less white space.  Blank lines are
 * skipped.  A write is all or nothing: every complete line is checked
 * before any is handed on.
 *
 * Linear in the bytes written: the unfinished line is kept, and each write
 * is searched for a newline only from where the last search stopped.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tree/fs.h"

/* line_blank: a line of only white space, which is skipped. */
static bool
line_blank(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r')
			return false;
	return true;
}

/* line_number: which line of the pending bytes p begins (from 1). */
static size_t
line_number(const struct lines *ls, const char *p)
{
	const char *q = buf_head(&ls->pending);
	size_t n = 1;

	while ((q = memchr(q, '\n', (size_t)(p - q))) != NULL) {
		n++;
		q++;
	}
	return n;
}

/* lines_reset: drop the unfinished line. */
void
lines_reset(struct lines *ls)
{
	ls->pending.off = ls->pending.len = 0;
	ls->scanned = 0;
}

/* lines_free: release what the sink holds. */
void
lines_free(struct lines *ls)
{
	buf_free(&ls->pending);
	ls->scanned = 0;
}

/*
 * lines_feed: take size more bytes (data may be NULL if size is 0).  Each
 * complete line, and if final the unfinished one too, must be blank or one
 * JSON value of at most max bytes.  On success returns 0, appends the
 * compact texts to out, each followed by a newline, sets *count to how
 * many, and keeps the unfinished line.  On failure returns -EINVAL (a
 * line is not JSON) or -EFBIG (a line longer than max), appends nothing,
 * drops the unfinished line and says why in why (if not NULL).
 */
int
lines_feed(struct lines *ls, const char *data, size_t size, bool final,
    size_t max, struct buf *out, size_t *count, char *why, size_t whylen)
{
	size_t start = out->len, n = 0;
	const char *p, *scan, *end, *nl, *eol;
	char err[128];
	int rc = 0;

	*count = 0;
	if (size == 0 && buf_used(&ls->pending) == 0)
		return 0;  /* nothing to cut (and maybe no buffer yet) */
	buf_append(&ls->pending, data, size);
	p = buf_head(&ls->pending);
	end = p + buf_used(&ls->pending);
	scan = p + ls->scanned;   /* [p, scan) holds no newline */
	while (p < end) {
		nl = memchr(scan, '\n', (size_t)(end - scan));
		if (nl == NULL && !final) {
			scan = end;
			break;
		}
		eol = nl != NULL ? nl : end;
		if ((size_t)(eol - p) > max) {
			rc = -EFBIG;
			goto fail;
		}
		if (!line_blank(p, eol)) {
			if (msg_json_compact(p, (size_t)(eol - p), out, err, sizeof err) != 0) {
				rc = -EINVAL;
				if (why != NULL)
					snprintf(why, whylen, "line %zu is not JSON: %s",
					    line_number(ls, p), err);
				goto fail;
			}
			buf_append(out, "\n", 1);
			n++;
		}
		p = scan = nl != NULL ? nl + 1 : end;
	}
	if ((size_t)(end - p) > max) {
		rc = -EFBIG;
		goto fail;
	}
	/* Keep the unfinished line; what slides down came with this write. */
	buf_consume(&ls->pending, (size_t)(p - buf_head(&ls->pending)));
	ls->scanned = (size_t)(scan - p);
	buf_compact(&ls->pending);
	*count = n;
	return 0;
fail:
	if (rc == -EFBIG && why != NULL)
		snprintf(why, whylen, "line %zu is over %zu bytes (--max-frame)",
		    line_number(ls, p), max);
	out->len = start;
	lines_reset(ls);
	return rc;
}
