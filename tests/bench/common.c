#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		perror("realloc");
		exit(2);
	}
	return p;
}

void buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return;
	/* Slide unread bytes to the front before growing: buffers are mostly
	 * drained, so this usually avoids the realloc entirely. */
	if (b->off) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + extra <= b->cap)
			return;
	}
	size_t cap = b->cap ? b->cap : 16384;
	while (cap < b->len + extra)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

void buf_u64(struct buf *b, uint64_t v)
{
	char tmp[24];
	int i = sizeof tmp;
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_append(b, tmp + i, sizeof tmp - (size_t)i);
}

static void put_be32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

void frame_append(struct buf *b, const void *json, size_t n)
{
	buf_reserve(b, FRAME_HDR + n);
	put_be32(b->data + b->len, (uint32_t)n);
	memcpy(b->data + b->len + FRAME_HDR, json, n);
	b->len += FRAME_HDR + n;
}

/* The header position is kept relative to the read offset: buf_reserve may
 * slide unread bytes to the front, which moves everything by the same amount
 * as off, so (position - off) stays valid. Callers must not consume between
 * frame_open and frame_close. */
size_t frame_open(struct buf *b)
{
	buf_reserve(b, FRAME_HDR);
	size_t at = b->len - b->off;
	b->len += FRAME_HDR;
	return at;
}

void frame_close(struct buf *b, size_t hdr_at)
{
	char *hdr = b->data + b->off + hdr_at;
	put_be32(hdr, (uint32_t)(b->data + b->len - hdr - FRAME_HDR));
}

size_t frame_peek(const struct buf *b, const char **json, uint32_t *n)
{
	size_t have = buf_used(b);
	if (have < FRAME_HDR)
		return 0;
	const unsigned char *p = (const unsigned char *)buf_head(b);
	uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		       (uint32_t)p[2] << 8 | p[3];
	if (have < FRAME_HDR + (size_t)len)
		return 0;
	*json = (const char *)p + FRAME_HDR;
	*n = len;
	return FRAME_HDR + (size_t)len;
}

int sock_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int fill_addr(struct sockaddr_in *sa, const char *host, int port)
{
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		fprintf(stderr, "bad IPv4 address: %s\n", host);
		return -1;
	}
	return 0;
}

int sock_listen(const char *host, int port)
{
	struct sockaddr_in sa;
	int one = 1;
	if (fill_addr(&sa, host, port) < 0)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0 ||
	    sock_nonblock(fd) < 0) {
		fprintf(stderr, "listen %s:%d: %s\n", host, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Blocking connect with retries: the server under test may still be
 * starting up. Returns a non-blocking, TCP_NODELAY socket. */
int sock_connect(const char *host, int port, double timeout_s)
{
	struct sockaddr_in sa;
	int one = 1;
	if (fill_addr(&sa, host, port) < 0)
		return -1;
	uint64_t give_up = now_ns() + (uint64_t)(timeout_s * 1e9);
	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			perror("socket");
			return -1;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			sock_nonblock(fd);
			return fd;
		}
		int err = errno;
		close(fd);
		if (now_ns() > give_up) {
			fprintf(stderr, "connect %s:%d: %s\n", host, port, strerror(err));
			return -1;
		}
		usleep(20000);
	}
}

void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- connections and the write batcher ---- */

static struct conn *dirty_head;

static void conn_write(struct ev_loop *loop, struct conn *c)
{
	while (buf_used(&c->out)) {
		ssize_t n = write(c->fd, buf_head(&c->out), buf_used(&c->out));
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(loop, &c->wio);
			return;
		}
		conn_close(loop, c, n < 0 ? strerror(errno) : "write returned 0");
		return;
	}
	ev_io_stop(loop, &c->wio);
	if (c->on_drained)
		c->on_drained(c);
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct conn *c = w->data;
	conn_write(loop, c);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct conn *c = w->data;
	for (;;) {
		buf_reserve(&c->in, 65536);
		size_t room = c->in.cap - c->in.len;
		ssize_t n = read(c->fd, c->in.data + c->in.len, room);
		if (n > 0) {
			c->in.len += (size_t)n;
			/* A short read means the socket is empty: skip the
			 * extra read(2) that would only say EAGAIN. */
			if ((size_t)n < room)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		conn_close(loop, c, n == 0 ? "EOF" : strerror(errno));
		return;
	}
	if (c->on_input)
		c->on_input(c);
}

void conn_init(struct ev_loop *loop, struct conn *c, int fd)
{
	c->fd = fd;
	ev_io_init(&c->rio, on_readable, fd, EV_READ);
	ev_io_init(&c->wio, on_writable, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	ev_io_start(loop, &c->rio);
}

void conn_want_flush(struct conn *c)
{
	if (c->dirty || c->closed)
		return;
	c->dirty = 1;
	c->next_dirty = dirty_head;
	dirty_head = c;
}

void conn_close(struct ev_loop *loop, struct conn *c, const char *why)
{
	if (c->closed)
		return;
	c->closed = 1;
	/* Unlink from the flush list: the owner may free c in on_close. */
	if (c->dirty) {
		struct conn **pp = &dirty_head;
		while (*pp && *pp != c)
			pp = &(*pp)->next_dirty;
		if (*pp)
			*pp = c->next_dirty;
		c->dirty = 0;
	}
	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	close(c->fd);
	c->fd = -1;
	if (c->on_close)
		c->on_close(c, why);
}

void flusher_run(struct ev_loop *loop)
{
	/* Pop one at a time: on_drained may queue more output (even on the
	 * same connection) and conn_close unlinks closed ones from this list. */
	while (dirty_head) {
		struct conn *c = dirty_head;
		dirty_head = c->next_dirty;
		c->dirty = 0;
		if (!ev_is_active(&c->wio))
			conn_write(loop, c);
	}
}

void flusher_forget(void)
{
	dirty_head = NULL;
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)w;
	(void)revents;
	flusher_run(loop);
}

void flusher_install(struct ev_loop *loop)
{
	static ev_prepare prep;
	ev_prepare_init(&prep, on_prepare);
	ev_prepare_start(loop, &prep);
}

/* ---- job bodies ---- */

/* Body of job idx: a JSON string "IDX-ccc…c" of exactly `size` bytes
 * (quotes included) when size allows, filled with a letter derived from
 * idx so a reply carrying another job's body is caught. Plain letters and
 * digits have exactly one JSON spelling, so a daemon that re-serialises
 * the body must give back the same bytes. */
static size_t idx_digits(uint64_t idx)
{
	size_t d = 1;
	while (idx >= 10) {
		idx /= 10;
		d++;
	}
	return d;
}

size_t body_len(uint64_t idx, size_t size)
{
	size_t min = idx_digits(idx) + 3;
	return size > min ? size : min;
}

void body_make(struct buf *b, uint64_t idx, size_t size)
{
	size_t total = body_len(idx, size);
	size_t fill = total - idx_digits(idx) - 3;
	buf_reserve(b, total);
	BUF_LIT(b, "\"");
	buf_u64(b, idx);
	BUF_LIT(b, "-");
	memset(b->data + b->len, 'a' + (int)(idx % 26), fill);
	b->len += fill;
	BUF_LIT(b, "\"");
}

int body_check(uint64_t idx, size_t size, const char *p, size_t n)
{
	if (n != body_len(idx, size) || p[0] != '"' || p[n - 1] != '"')
		return 0;
	const char *q = p + 1;
	char tmp[24];
	int i = sizeof tmp;
	uint64_t v = idx;
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	size_t d = sizeof tmp - (size_t)i;
	if (memcmp(q, tmp + i, d) != 0 || q[d] != '-')
		return 0;
	char c = (char)('a' + idx % 26);
	for (const char *f = q + d + 1; f < p + n - 1; f++)
		if (*f != c)
			return 0;
	return 1;
}

long rss_kb(int pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}
