/* Shared plumbing for the benchmark programs (loadgen, relay): growable
 * byte buffers, non-blocking sockets, length-prefixed frames and a
 * "flush before the loop sleeps" write batcher for libev. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <ev.h>

#define FRAME_HDR 4

/* A byte buffer consumed from the front (off) and appended at the back. */
struct buf {
	char *data;
	size_t off, len, cap;
};

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);
static inline size_t buf_used(const struct buf *b) { return b->len - b->off; }
static inline char *buf_head(const struct buf *b) { return b->data + b->off; }

/* Append a 4-byte big-endian length header followed by n bytes. */
void frame_append(struct buf *b, const void *json, size_t n);
/* Reserve a frame header; returns its position for frame_close to patch. */
size_t frame_open(struct buf *b);
void frame_close(struct buf *b, size_t hdr_off);
/* If a whole frame is buffered, point *json and *n at it and return the total
 * bytes it occupies; 0 if incomplete. */
size_t frame_peek(const struct buf *b, const char **json, uint32_t *n);

/* Append the decimal form of v. */
void buf_u64(struct buf *b, uint64_t v);
static inline void buf_lit(struct buf *b, const char *s, size_t n)
{
	buf_append(b, s, n);
}
#define BUF_LIT(b, s) buf_lit((b), (s), sizeof(s) - 1)

/* Sockets. All return -1 and print the reason on failure. */
int sock_listen(const char *host, int port);
int sock_connect(const char *host, int port, double timeout_s);
int sock_nonblock(int fd);
void raise_nofile(void);

/* One connection's I/O state, embedded in the programs' own structs. The
 * write side is batched: conn_want_flush() queues the connection, and the
 * ev_prepare hook writes every queued connection once per loop iteration, so
 * many frames produced in one iteration leave in one write(2). */
struct conn {
	int fd;
	ev_io rio, wio;
	struct buf in, out;
	struct conn *next_dirty;
	int dirty;
	int closed;
	/* Called when all queued output has been written. */
	void (*on_drained)(struct conn *c);
	/* Called on EOF or a socket error (once). */
	void (*on_close)(struct conn *c, const char *why);
	/* Called after new bytes were appended to c->in. */
	void (*on_input)(struct conn *c);
};

void conn_init(struct ev_loop *loop, struct conn *c, int fd);
void conn_want_flush(struct conn *c);
void conn_close(struct ev_loop *loop, struct conn *c, const char *why);
/* Install the ev_prepare flusher on a loop (once per loop). */
void flusher_install(struct ev_loop *loop);
/* Write everything queued now (used before blocking outside the loop). */
void flusher_run(struct ev_loop *loop);

/* Drop the pending list without writing (in a forked child). */
void flusher_forget(void);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);

/* Fill an S-byte JSON string body that encodes job index idx, and check one. */
size_t body_len(uint64_t idx, size_t size);
void body_make(struct buf *b, uint64_t idx, size_t size);
int body_check(uint64_t idx, size_t size, const char *p, size_t n);

/* Resident set size of a process in KiB, from /proc/PID/status; -1 if gone. */
long rss_kb(int pid);

#endif
