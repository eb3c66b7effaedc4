/*
 * conn.c — one TCP connection: buffered input cut into frames, buffered
 * output written eagerly once per loop turn (conn_out.c), and a deferred
 * close.
 *
 * Input and output are independent (full duplex), and reading never stops
 * because of output: a peer that writes everything before it reads is
 * normal, and what it writes (responses, pongs, cancels) is what lets the
 * daemon make progress.  Output is bounded instead where it is produced:
 * past OUT_SOFT_LIMIT a worker gets no new job and a master's job endings
 * are deferred (see jobfs.h).
 *
 * Output is appended to c->out and the connection goes on
 * srv->pending_writes; before the loop sleeps, conn_flush_pending() writes
 * every pending connection once, so a burst of replies costs one write(2).
 * Only leftovers get an EV_WRITE watcher.  A large body or result is not
 * copied into c->out: conn_out_blob queues a reference to its blob between
 * the plain bytes (c->refs), and the write gathers both with writev(2).
 * Every count of output (out_written, holds, the limits) is of the whole
 * stream, blob bytes included (conn_out_used).
 *
 * With a store (the journal), acknowledgements wait for durability: a
 * frame appended while the broker has records not yet durable
 * (broker_held) notes its place and the store's mark in c->holds (every
 * frame to a master; to a worker the acks of conn_frame_end_ack), and
 * output is written only up to the first place whose mark is not durable
 * yet.  The TCP face's durable listener calls conn_release_held.  Without
 * a store nothing is noted: one comparison per frame.
 *
 * A closed connection is unlinked
 * at once but freed only before the loop sleeps, so no handler up the
 * stack holds a freed pointer.
 *
 * A connection is dropped only by a limit (conn_drop): it gets one error
 * frame, is read no more, gives its jobs back at once, and is closed when
 * that frame is written or after DROP_LINGER seconds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tcp/tcp.h"

#define READ_CHUNK (64 * 1024)

static void conn_read_cb(struct ev_loop *, ev_io *, int);
static void conn_frame_timer_cb(struct ev_loop *, ev_timer *, int);

/* A plain connection's transport: the socket's own read(2) and writev(2). */
static ssize_t
plain_read(struct conn *c, void *p, size_t n)
{
	return read(c->fd, p, n);
}

static ssize_t
plain_writev(struct conn *c, const struct iovec *iov, int cnt)
{
	return cnt == 1 ? write(c->fd, iov[0].iov_base, iov[0].iov_len) :
	    writev(c->fd, iov, cnt);
}

static bool
plain_never(const struct conn *c)
{
	(void)c;
	return false;
}

static void
plain_close(struct conn *c)
{
	(void)c;
}

const struct transport transport_plain = {
	.name = "plain",
	.read = plain_read,
	.writev = plain_writev,
	.pending = plain_never,
	.write_blocked = plain_never,
	.read_wants_write = plain_never,
	.close = plain_close,
};

/* A connection as a channel subscriber (chan.c): a message it cannot take
 * now (its output is backlogged) is missed, and counted. */
static bool
chan_peer_backlogged(void *ctx)
{
	return conn_backlogged(ctx);
}

static void
chan_peer_send(void *ctx, const char *frame, size_t len)
{
	conn_send_raw(ctx, frame, len);
}

static const struct chan_peer_ops conn_chan_ops = {
	.backlogged = chan_peer_backlogged,
	.send = chan_peer_send,
};

struct conn *
conn_new(struct server *srv, int fd, enum conn_role role)
{
	struct conn *c = xcalloc(1, sizeof *c);

	c->srv = srv;
	c->fd = fd;
	c->role = role;
	c->serial = ++srv->next_serial;
	net_peer_name(fd, c->peer, sizeof c->peer);
	net_peer_addr(fd, c->addr, sizeof c->addr);
	auth_peer_add(c->addr);
	c->chp = (struct chan_peer){ .ctx = c, .ops = &conn_chan_ops, .label = c->peer };
	/* The core's handle on the peer: it knows the connection by no more. */
	if (role == ROLE_MASTER)
		c->master = broker_master_new(srv->broker, c);
	else
		c->worker = broker_worker_new(srv->broker, c, c->peer);
	ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
	ev_init(&c->timer, conn_frame_timer_cb);
	c->rio.data = c->wio.data = c->timer.data = c;
	ev_io_start(srv->loop, &c->rio);
	TAILQ_INSERT_TAIL(&srv->conns, c, all_entry);
	srv->nconns++;
	if (role == ROLE_MASTER)
		srv->nmasters++;
	else
		srv->nworkers++;
	log_info("%s %s connected", role == ROLE_MASTER ? "master" : "worker",
	    c->peer);
	proto_conn_new(c);
	c->tp = &transport_plain;
	if (tls_conn_new(c) < 0)
		conn_close(c, "TLS setup failed");
	return c;
}

/* conn_in_account: count c's input buffer beyond READ_CHUNK in srv->in_total. */
static void
conn_in_account(struct conn *c)
{
	size_t n = c->in.cap > READ_CHUNK ? c->in.cap - READ_CHUNK : 0;

	c->srv->in_total = c->srv->in_total - c->in_counted + n;
	c->in_counted = n;
}

/* conn_unhold: c holds nothing any more. */
static void
conn_unhold(struct conn *c)
{
	if (c->flags & CONN_HELD) {
		TAILQ_REMOVE(&c->srv->held, c, held_entry);
		c->flags &= ~CONN_HELD;
	}
	c->hold_head = c->hold_len = 0;
}

/* conn_hold: output from start (relative to the unwritten head) on waits
 * for the store's current mark.  Holds are in mark order, so one per mark. */
void
conn_hold(struct conn *c, size_t start)
{
	uint64_t mark = broker_mark(c->srv->broker);

	if (c->hold_len > c->hold_head && c->holds[c->hold_len - 1].mark == mark)
		return;  /* an earlier hold of this mark already holds it back */
	if (c->hold_len == c->hold_cap) {
		if (c->hold_head > 0) {
			memmove(c->holds, c->holds + c->hold_head,
			    (c->hold_len - c->hold_head) * sizeof *c->holds);
			c->hold_len -= c->hold_head;
			c->hold_head = 0;
		}
		if (c->hold_len == c->hold_cap) {
			c->hold_cap = c->hold_cap ? 2 * c->hold_cap : 8;
			c->holds = xrealloc(c->holds, c->hold_cap * sizeof *c->holds);
		}
	}
	c->holds[c->hold_len].at = c->out_written + start;
	c->holds[c->hold_len].mark = mark;
	c->hold_len++;
	if (!(c->flags & CONN_HELD)) {
		c->flags |= CONN_HELD;
		TAILQ_INSERT_TAIL(&c->srv->held, c, held_entry);
	}
}

/* hsub_prune: forget the held submissions the store made durable (or
 * all of them: durable UINT64_MAX). */
static void
hsub_prune(struct conn *c, uint64_t durable)
{
	while (c->hsub_head < c->hsub_len && c->hsubs[c->hsub_head].mark <= durable)
		job_unref(c->srv->broker, c->hsubs[c->hsub_head++].job);
	if (c->hsub_head == c->hsub_len)
		c->hsub_head = c->hsub_len = 0;
}

/*
 * conn_hold_submit: job j was just submitted on c, its acknowledgement
 * (if any) appended from plain_start (an offset in out) on: while the
 * store holds it, note it, so that a store failure can refuse it instead.
 */
void
conn_hold_submit(struct conn *c, struct job *j, size_t plain_start)
{
	struct held_submit *h;

	if (!broker_gated(c->srv->broker) || c->role != ROLE_MASTER)
		return;
	if (c->hsub_len == c->hsub_cap) {
		if (c->hsub_head > 0) {
			memmove(c->hsubs, c->hsubs + c->hsub_head,
			    (c->hsub_len - c->hsub_head) * sizeof *c->hsubs);
			c->hsub_len -= c->hsub_head;
			c->hsub_head = 0;
		}
		if (c->hsub_len == c->hsub_cap) {
			c->hsub_cap = c->hsub_cap ? 2 * c->hsub_cap : 8;
			c->hsubs = xrealloc(c->hsubs, c->hsub_cap * sizeof *c->hsubs);
		}
	}
	h = &c->hsubs[c->hsub_len++];
	h->plain = c->out_plain_done + plain_start;
	h->len = (uint32_t)(buf_used(&c->out) - plain_start);
	h->mark = broker_mark(c->srv->broker);
	h->job = j;
	job_ref(j);
}

/* conn_writable: the bytes of out that may be written now. */
size_t
conn_writable(struct conn *c)
{
	uint64_t durable = broker_durable(c->srv->broker);
	size_t used = conn_out_used(c);

	hsub_prune(c, durable);
	if (c->hold_len == c->hold_head)
		return used;
	while (c->hold_head < c->hold_len && c->holds[c->hold_head].mark <= durable)
		c->hold_head++;
	if (c->hold_head == c->hold_len) {
		conn_unhold(c);
		return used;
	}
	return (size_t)(c->holds[c->hold_head].at - c->out_written) < used ?
	    (size_t)(c->holds[c->hold_head].at - c->out_written) : used;
}


/* conn_release_held: the store made everything up to durable durable:
 * what each connection held for it goes out before the loop sleeps. */
void
conn_release_held(struct server *srv, uint64_t durable)
{
	struct conn *c, *next;

	for (c = TAILQ_FIRST(&srv->held); c != NULL; c = next) {
		next = TAILQ_NEXT(c, held_entry);
		if (c->holds[c->hold_head].mark <= durable)
			conn_mark_pending(c);
	}
}

/*
 * refuse_at: replace the len plain bytes at offset at of out (an
 * acknowledgement, or nothing) with an "unavailable" refusal for idjson;
 * the blobs queued after it move with the bytes.
 */
static void
refuse_at(struct conn *c, size_t at, size_t len, const char *idjson)
{
	struct buf tail = { 0 };
	size_t before, added;

	buf_append(&tail, buf_head(&c->out) + at + len, buf_used(&c->out) - at - len);
	c->out.len = c->out.off + at;
	before = buf_used(&c->out);
	conn_send_error(c, "unavailable", idjson, "%s",
	    broker_store_reason(c->srv->broker));
	added = buf_used(&c->out) - before;
	buf_append(&c->out, buf_head(&tail), buf_used(&tail));
	buf_free(&tail);
	for (size_t ri = c->ref_head; ri < c->ref_len; ri++)
		if (c->refs[ri].plain_at > c->out_plain_done + at)
			c->refs[ri].plain_at = c->refs[ri].plain_at + added - len;
}

/*
 * conn_fail_held: the store failed (broker_store_failed): on every
 * connection, each submission it has not made durable is refused with
 * "unavailable" where its acknowledgement stood (the seed dialect, which
 * acknowledges nothing, gets the refusal in the same place) and
 * withdrawn; what else was held goes out.  The refusals are made last to
 * first, so that each splice leaves the places of those before it.  A job
 * that has ended meanwhile keeps its acknowledgement: its result follows.
 */
void
conn_fail_held(struct server *srv)
{
	uint64_t durable = broker_durable(srv->broker);
	struct conn *c;

	TAILQ_FOREACH(c, &srv->conns, all_entry) {
		for (size_t i = c->hsub_len; i-- > c->hsub_head;) {
			struct held_submit *h = &c->hsubs[i];

			if (h->mark > durable && !JOB_FINISHED(h->job) &&
			    h->plain >= c->out_plain_done &&
			    !(c->flags & (CONN_DEAD | CONN_CLOSE_AFTER_WRITE))) {
				refuse_at(c, (size_t)(h->plain - c->out_plain_done),
				    h->len, job_idjson(h->job));
				broker_withdraw(srv->broker, h->job);
			}
		}
		hsub_prune(c, UINT64_MAX);
		if (c->flags & CONN_HELD) {
			conn_unhold(c);
			conn_mark_pending(c);
		}
	}
}

static void
conn_in_free(struct conn *c)
{
	buf_free(&c->in);
	conn_in_account(c);
	c->frame_started = 0;
}

/*
 * conn_release: give back what the connection holds in the broker and the
 * channels (jobs, slots, subscriptions, deferred endings).  Once only: at
 * a drop, or at the close.
 */
static void
conn_release(struct conn *c)
{
	struct server *srv = c->srv;

	if (c->flags & CONN_RELEASED)
		return;
	c->flags |= CONN_RELEASED;
	if (c->role == ROLE_MASTER) {
		broker_master_gone(srv->broker, c->master);
		c->master = NULL;
	} else {
		proto_worker_gone(c);
		c->worker = NULL;
	}
	chan_unsubscribe_all(srv->broker, &c->chp);
	while (c->def_head < c->def_len) {
		blob_unref(c->deferred[c->def_head].result);
		job_unref(srv->broker, c->deferred[c->def_head++].job);
	}
	hsub_prune(c, UINT64_MAX);
	free(c->deferred);
	c->deferred = NULL;
	c->def_head = c->def_len = c->def_cap = 0;
}

/*
 * conn_close: the peer is gone (or must go).  Hand its jobs back to the
 * broker now; free the memory later, in conn_reap().
 */
void
conn_close(struct conn *c, const char *why)
{
	struct server *srv = c->srv;

	if (c->flags & CONN_DEAD)
		return;
	c->flags |= CONN_DEAD;
	log_info("%s %s closed: %s", c->role == ROLE_MASTER ? "master" : "worker",
	    c->peer, why);
	ev_io_stop(srv->loop, &c->rio);
	ev_io_stop(srv->loop, &c->wio);
	ev_timer_stop(srv->loop, &c->timer);
	if (c->flags & CONN_PENDING_WRITE) {
		TAILQ_REMOVE(&srv->pending_writes, c, write_entry);
		c->flags &= ~CONN_PENDING_WRITE;
	}
	conn_unhold(c);
	TAILQ_REMOVE(&srv->conns, c, all_entry);
	srv->nconns--;
	if (c->role == ROLE_MASTER)
		srv->nmasters--;
	else
		srv->nworkers--;
	conn_release(c);
	conn_in_free(c);
	proto_conn_closed(c);
	auth_peer_del(c->addr);
	c->tp->close(c);
	close(c->fd);
	c->fd = -1;
	TAILQ_INSERT_TAIL(&srv->dead, c, dead_entry);
}

/* conn_reap: free connections closed during this loop turn. */
void
conn_reap(struct server *srv)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&srv->dead)) != NULL) {
		TAILQ_REMOVE(&srv->dead, c, dead_entry);
		buf_free(&c->in);
		buf_free(&c->out);
		while (c->ref_head < c->ref_len)
			blob_unref(c->refs[c->ref_head++].blob);
		free(c->refs);
		free(c->holds);
		free(c->hsubs);
		free(c);
	}
}

static void
conn_linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;

	(void)loop;
	(void)revents;
	conn_close(c, c->close_why);
}

/*
 * conn_out_truncate: keep the first keep bytes of unwritten output (blob
 * bytes counted) and throw the rest away.  keep must end a frame.
 */
static void
conn_out_truncate(struct conn *c, size_t keep)
{
	size_t plain = 0, ri = c->ref_head, k, avail;

	while (keep > 0) {
		if (ri < c->ref_len && c->refs[ri].plain_at == c->out_plain_done + plain) {
			avail = c->refs[ri].blob->len - (ri == c->ref_head ? c->ref_done : 0);
			k = keep < avail ? keep : avail;
			keep -= k;
			ri++;     /* kept, even if only in part (keep ends a frame) */
			continue;
		}
		avail = (ri < c->ref_len ?
		    (size_t)(c->refs[ri].plain_at - c->out_plain_done) : buf_used(&c->out)) - plain;
		k = keep < avail ? keep : avail;
		if (k == 0)
			break;    /* cannot happen: keep is within the output */
		plain += k;
		keep -= k;
	}
	c->out.len = c->out.off + plain;
	while (c->ref_len > ri) {
		struct out_ref *r = &c->refs[--c->ref_len];

		c->out_blob_bytes -= r->blob->len - (c->ref_len == c->ref_head ? c->ref_done : 0);
		if (c->ref_len == c->ref_head)
			c->ref_done = 0;
		blob_unref(r->blob);
	}
	if (c->ref_head == c->ref_len)
		c->ref_head = c->ref_len = 0;
}

/*
 * conn_drop: a limit ends the connection.  It gets one error frame
 * {"error":CODE,"reason":...}, is read no more, and gives its jobs back
 * now; it is closed once the frame is written, or after DROP_LINGER
 * seconds if the peer does not read it.  With discard, whole frames not
 * yet written are thrown away first (the peer is not reading them).
 */
void
conn_drop(struct conn *c, bool discard, const char *why, const char *code,
    const char *fmt, ...)
{
	struct ev_loop *loop = c->srv->loop;
	char reason[256];
	va_list ap;

	if (c->flags & (CONN_DEAD | CONN_CLOSE_AFTER_WRITE))
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	log_warn("%s %s: %s: dropping it", c->role == ROLE_MASTER ? "master" : "worker",
	    c->peer, reason);
	if (discard) {
		conn_out_truncate(c, c->out_head_left);
		conn_unhold(c);  /* what they held is gone */
	}
	conn_send_error(c, code, NULL, "%s", reason);
	c->flags |= CONN_CLOSE_AFTER_WRITE;
	c->close_why = why;
	ev_io_stop(loop, &c->rio);
	conn_in_free(c);
	conn_release(c);
	ev_timer_stop(loop, &c->timer);
	ev_init(&c->timer, conn_linger_cb);
	ev_timer_set(&c->timer, DROP_LINGER, 0.);
	ev_timer_start(loop, &c->timer);
}

/*
 * conn_refuse: one error frame to a socket that gets no connection (over
 * --max-conns, out of descriptors), then close it.  A fresh socket's send
 * buffer is empty, so the one non-blocking write takes the whole frame.
 * On a TLS port the client could not read a plain frame: it gets a TLS
 * alert instead (tls_refuse), and the log says why.
 */
void
conn_refuse(struct server *srv, int fd, const char *code, const char *reason)
{
	char frame[512];
	int n = snprintf(frame + FRAME_HEADER, sizeof frame - FRAME_HEADER,
	    "{\"error\":\"%s\",\"reason\":\"%s\"}", code, reason);

	if (srv->tls != NULL)
		tls_refuse(fd, code);
	else if (n > 0 && (size_t)n < sizeof frame - FRAME_HEADER) {
		frame_put_len(frame, (uint32_t)n);
		if (write(fd, frame, FRAME_HEADER + (size_t)n) < 0)
			(void)0;  /* the peer is refused either way */
	}
	close(fd);
}

/*
 * conn_frame_timer_cb: --frame-timeout.  A frame that began arriving must
 * end within that many seconds, or the connection is dropped; else a peer
 * could hold a buffer (and, dribbling bytes, a worker slot) forever.
 */
static void
conn_frame_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	double t = c->srv->opt.frame_timeout, left;

	(void)revents;
	if (c->frame_started == 0)
		return;
	left = c->frame_started + t - ev_now(loop);
	if (left > 0.001) {
		ev_timer_set(w, left, 0.);
		ev_timer_start(loop, w);
		return;
	}
	c->srv->dropped_frame_timeout++;
	conn_drop(c, false, "frame timeout", "frame_timeout",
	    "frame not finished within %g s (--frame-timeout)", t);
}

/*
 * conn_process_input: hand each whole frame to the protocol.  Stops early
 * if the connection closed or must close; keeps a partial frame buffered.
 * Returns the number of whole frames handled.  Only a whole frame counts
 * as hearing from the peer (last_heard): a byte of a frame does not.
 */
static unsigned
conn_process_input(struct conn *c)
{
	const char *payload;
	uint32_t len;
	unsigned n = 0;

	while (!(c->flags & (CONN_DEAD | CONN_CLOSE_AFTER_WRITE))) {
		c->in_adopted = false;
		switch (frame_next(buf_head(&c->in), buf_used(&c->in),
		    c->srv->opt.max_frame, &payload, &len)) {
		case FRAME_NEED:
			return n;
		case FRAME_TOO_LARGE:
			c->srv->bad_frames++;
			if ((unsigned char)buf_head(&c->in)[0] == 0x16 &&
			    buf_head(&c->in)[1] == 0x03) {
				conn_drop(c, false, "a TLS client on a plain port",
				    "frame_too_large", "this port does not speak TLS");
				return n;
			}
			conn_drop(c, false, "protocol error", "frame_too_large",
			    "frame of %u bytes exceeds the limit of %zu",
			    frame_get_len(buf_head(&c->in)), c->srv->opt.max_frame);
			return n;
		case FRAME_OK:
			c->srv->frames_in++;
			c->last_heard = ev_now(c->srv->loop);
			n++;
			c->in_frame_end = (size_t)(payload - c->in.data) + len;
			proto_handle(c, payload, len);
			if (c->flags & (CONN_DEAD | CONN_CLOSE_AFTER_WRITE))
				return n;
			if (!c->in_adopted)   /* (else in holds what follows it) */
				buf_consume(&c->in, FRAME_HEADER + len);
			break;
		}
	}
	return n;
}

/*
 * Bodies and results of at least ADOPT_MIN bytes, in a frame that fills
 * its input buffer but for ADOPT_SLACK bytes, are not copied: the buffer
 * becomes the blob's (the bytes of the frame around them are the price).
 */
#define ADOPT_MIN   (64 * 1024)
#define ADOPT_SLACK (4 * 1024)

/*
 * conn_in_adopt: the len bytes at span, within the frame being handled,
 * as a blob that takes over the input buffer, which c replaces with a
 * fresh one holding whatever followed that frame; NULL if that is not
 * worth it (blob_new copies them then).  The frame's bytes stay valid
 * while the blob lives, and the byte after span becomes its NUL: span
 * must be a JSON value, which a delimiter follows.
 */
struct blob *
conn_in_adopt(struct conn *c, const char *span, size_t len)
{
	char *base = c->in.data;
	struct buf rest = { 0 };
	struct blob *b;

	if (c->in_adopted || len < ADOPT_MIN || span < base + c->in.off ||
	    span + len >= base + c->in_frame_end || c->in.cap > len + ADOPT_SLACK)
		return NULL;
	if (c->in.len > c->in_frame_end)
		buf_append(&rest, base + c->in_frame_end, c->in.len - c->in_frame_end);
	b = blob_adopt(base, (char *)span, len);
	c->in = rest;
	c->in_adopted = true;
	conn_in_account(c);
	return b;
}

/* in_cap_after: the capacity buf_reserve(b, extra) would leave. */
static size_t
in_cap_after(const struct buf *b, size_t extra)
{
	size_t need;

	if (b->cap - b->len >= extra || b->cap - buf_used(b) >= extra)
		return b->cap;
	need = buf_used(b) + extra;
	if (need < 256)
		need = 256;
	if (need < b->cap * 2)
		need = b->cap * 2;
	return need;
}

/*
 * in_want: the room to make before a read: a chunk, or, once the header of
 * a larger frame has arrived, the rest of that frame, so that a big frame
 * costs one allocation and few reads rather than a doubling chain.
 */
static size_t
in_want(const struct conn *c)
{
	size_t used = buf_used(&c->in), need;

	if (used < FRAME_HEADER)
		return READ_CHUNK;
	need = FRAME_HEADER + (size_t)frame_get_len(buf_head(&c->in));
	if (need > FRAME_HEADER + c->srv->opt.max_frame || need <= used + READ_CHUNK)
		return READ_CHUNK;
	return need - used;
}

static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	struct server *srv = c->srv;
	size_t want = in_want(c), grow = in_cap_after(&c->in, want), counted;
	ssize_t n;

	(void)revents;
	/* --max-input: the input buffered beyond READ_CHUNK a connection, for
	 * all connections together.  Judged before the buffer grows. */
	counted = grow > READ_CHUNK ? grow - READ_CHUNK : 0;
	if (counted > c->in_counted &&
	    srv->in_total - c->in_counted + counted > srv->opt.max_input) {
		srv->dropped_input++;
		conn_drop(c, false, "input over --max-input", "full",
		    "unfinished frames of all connections over %zu bytes (--max-input)",
		    srv->opt.max_input);
		return;
	}
	buf_reserve(&c->in, want);
	conn_in_account(c);
	n = c->tp->read(c, c->in.data + c->in.len, c->in.cap - c->in.len);
	if (n == 0) {
		if (buf_used(&c->in) > 0)
			log_info("%s: disconnected mid-frame (%zu bytes unread)",
			    c->peer, buf_used(&c->in));
		conn_close(c, "peer closed");
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_close(c, strerror(errno));
		return;
	}
	c->in.len += (size_t)n;
	/* TLS: bytes OpenSSL decrypted beyond this read, or a write that
	 * waited for the peer, go on now. */
	if (c->tp->pending(c))
		ev_feed_event(loop, &c->rio, EV_READ);
	if (c->tp->write_blocked(c))
		conn_mark_pending(c);
	if (conn_process_input(c) > 0 || c->frame_started == 0)
		c->frame_started = ev_now(loop);  /* a new frame begins */
	if (c->flags & (CONN_DEAD | CONN_CLOSE_AFTER_WRITE))
		return;
	/* Keep at most one partial frame; give back the buffer once idle. */
	if (buf_used(&c->in) == 0) {
		c->frame_started = 0;
		if (c->in.cap > READ_CHUNK)
			conn_in_free(c);
	} else {
		buf_compact(&c->in);
		if (srv->opt.frame_timeout > 0 && !ev_is_active(&c->timer)) {
			ev_timer_set(&c->timer, srv->opt.frame_timeout, 0.);
			ev_timer_start(loop, &c->timer);
		}
	}
}
