/*
 * util.c — allocation that aborts on failure, and the byte buffer.
 *
 * jobfs bounds every input before allocating for it, so running out of
 * memory is not a state worth recovering from: x*alloc aborts (as tmux does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatalx("out of memory (%zu bytes)", n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		fatalx("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		fatalx("out of memory (%zu bytes)", n);
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		fatalx("out of memory");
	va_end(ap);
	return s;
}

/* buf_reserve: make room for extra more bytes after len. */
void
buf_reserve(struct buf *b, size_t extra)
{
	size_t need;

	if (b->cap - b->len >= extra)
		return;
	/* Slide live bytes down before growing, if that frees enough. */
	if (b->off > 0 && b->cap - buf_used(b) >= extra) {
		buf_compact(b);
		return;
	}
	need = buf_used(b) + extra;
	if (b->off > 0)
		buf_compact(b);
	if (need < 256)
		need = 256;
	if (need < b->cap * 2)
		need = b->cap * 2;
	b->data = xrealloc(b->data, need);
	b->cap = need;
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;  /* memcpy to a NULL buffer is undefined, even of 0 bytes */
	buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void
buf_append_str(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

/* buf_consume: drop n bytes from the front; an emptied buffer restarts at 0. */
void
buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void
buf_compact(struct buf *b)
{
	if (b->off == 0)
		return;
	memmove(b->data, b->data + b->off, buf_used(b));
	b->len -= b->off;
	b->off = 0;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

int
buf_json_cb(const char *p, size_t n, void *arg)
{
	buf_append(arg, p, n);
	return 0;
}

double
now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
