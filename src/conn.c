/*
 * conn.c — one TCP connection: buffered input cut into frames, buffered
 * output written eagerly once per loop turn, and a deferred close.
 *
 * Input and output are independent (full duplex).  Output is appended to
 * c->out and the connection goes on srv->pending_writes; before the loop
 * sleeps, conn_flush_pending() writes every pending connection once, so a
 * burst of replies costs one write(2).  Only leftovers get an EV_WRITE
 * watcher.  A closed connection is unlinked at once but freed only before
 * the loop sleeps, so no handler up the stack holds a freed pointer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobfs.h"

#define READ_CHUNK (64 * 1024)

static void conn_read_cb(struct ev_loop *, ev_io *, int);
static void conn_write_cb(struct ev_loop *, ev_io *, int);

struct conn *
conn_new(struct server *srv, int fd, enum conn_role role)
{
	struct conn *c = xcalloc(1, sizeof *c);

	c->srv = srv;
	c->fd = fd;
	c->role = role;
	c->serial = ++srv->next_serial;
	c->capacity = 1;
	net_peer_name(fd, c->peer, sizeof c->peer);
	TAILQ_INIT(&c->owned);
	TAILQ_INIT(&c->running);
	ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	ev_io_start(srv->loop, &c->rio);
	TAILQ_INSERT_TAIL(&srv->conns, c, all_entry);
	srv->nconns++;
	if (role == ROLE_MASTER)
		srv->nmasters++;
	else
		srv->nworkers++;
	log_info("%s %s connected", role == ROLE_MASTER ? "master" : "worker",
	    c->peer);
	return c;
}

const char *
conn_worker_name(const struct conn *c)
{
	return c->name != NULL ? c->name : c->peer;
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
	if (c->flags & CONN_PENDING_WRITE) {
		TAILQ_REMOVE(&srv->pending_writes, c, write_entry);
		c->flags &= ~CONN_PENDING_WRITE;
	}
	TAILQ_REMOVE(&srv->conns, c, all_entry);
	srv->nconns--;
	if (c->role == ROLE_MASTER) {
		srv->nmasters--;
		broker_master_gone(&srv->broker, c);
	} else {
		srv->nworkers--;
		proto_worker_gone(c);
	}
	chan_unsubscribe_all(srv, c);
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
		free(c->name);
		free(c);
	}
}

bool
conn_backlogged(const struct conn *c)
{
	return buf_used(&c->out) > OUT_SOFT_LIMIT;
}

static void
conn_mark_pending(struct conn *c)
{
	if (c->flags & (CONN_PENDING_WRITE | CONN_DEAD))
		return;
	c->flags |= CONN_PENDING_WRITE;
	TAILQ_INSERT_TAIL(&c->srv->pending_writes, c, write_entry);
}

/*
 * conn_frame_begin: reserve a header; append the payload, then _end.  The
 * mark is relative to the unwritten head: appending may compact the buffer
 * (after a partial write), which moves every byte down by the old offset.
 */
size_t
conn_frame_begin(struct conn *c)
{
	size_t start = buf_used(&c->out);
	static const char zero[FRAME_HEADER];

	buf_append(&c->out, zero, FRAME_HEADER);
	return start;
}

void
conn_frame_end(struct conn *c, size_t start)
{
	size_t n = buf_used(&c->out) - start - FRAME_HEADER;

	frame_put_len(buf_head(&c->out) + start, (uint32_t)n);
	c->srv->frames_out++;
	conn_mark_pending(c);
}

void
conn_send_raw(struct conn *c, const char *p, size_t n)
{
	size_t start;

	if (c->flags & CONN_DEAD)
		return;
	start = conn_frame_begin(c);
	buf_append(&c->out, p, n);
	conn_frame_end(c, start);
}

void
conn_send_json(struct conn *c, json_t *msg)
{
	size_t start;

	if (!(c->flags & CONN_DEAD)) {
		start = conn_frame_begin(c);
		json_dump_callback(msg, buf_json_cb, &c->out, JSON_COMPACT);
		conn_frame_end(c, start);
	}
	json_decref(msg);
}

/*
 * conn_send_error: {"error":CODE,"reason":DETAIL[,"id":ID]}.  The id is
 * JSON text (as kept in struct job) so it is spliced in, not re-encoded.
 */
void
conn_send_error(struct conn *c, const char *code, const char *idjson,
    const char *fmt, ...)
{
	json_t *msg;
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	msg = json_pack("{s:s, s:s}", "error", code, "reason", reason);
	if (idjson != NULL)
		json_object_set_new(msg, "id", json_loads(idjson, JSON_DECODE_ANY, NULL));
	log_debug("%s: error %s: %s", c->peer, code, reason);
	conn_send_json(c, msg);
}

void
conn_send_missing(struct conn *c, const char *field, const char *idjson)
{
	json_t *msg = json_pack("{s:s, s:s}", "error", "missing_field", "name", field);

	if (idjson != NULL)
		json_object_set_new(msg, "id", json_loads(idjson, JSON_DECODE_ANY, NULL));
	conn_send_json(c, msg);
}

/* conn_write_some: write what is buffered; returns -1 if the peer is gone. */
static int
conn_write_some(struct conn *c)
{
	while (buf_used(&c->out) > 0) {
		ssize_t n = write(c->fd, buf_head(&c->out), buf_used(&c->out));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		buf_consume(&c->out, (size_t)n);
	}
	return 0;
}

/*
 * conn_after_write: start or stop the write watcher, resume a paused
 * reader, finish a close-after-write, or drop a reader far too slow.
 */
static void
conn_after_write(struct conn *c)
{
	struct ev_loop *loop = c->srv->loop;
	size_t used = buf_used(&c->out);

	if (used == 0) {
		ev_io_stop(loop, &c->wio);
		if (c->flags & CONN_CLOSE_AFTER_WRITE) {
			conn_close(c, "protocol error");
			return;
		}
		/* Release the memory of a big burst; keep small buffers warm. */
		if (c->out.cap > 1024 * 1024)
			buf_free(&c->out);
	} else {
		if (used > OUT_HARD_LIMIT(c->srv)) {
			c->srv->dropped_slow++;
			conn_close(c, "output backlog over limit (peer not reading)");
			return;
		}
		ev_io_start(loop, &c->wio);
	}
	if ((c->flags & CONN_PAUSED) && used < OUT_SOFT_LIMIT / 2) {
		c->flags &= ~CONN_PAUSED;
		if (!(c->flags & CONN_CLOSE_AFTER_WRITE))
			ev_io_start(loop, &c->rio);
	} else if (!(c->flags & CONN_PAUSED) && used > OUT_SOFT_LIMIT) {
		/* Stop taking requests from a peer that does not read replies. */
		c->flags |= CONN_PAUSED;
		ev_io_stop(loop, &c->rio);
	}
}

static void
conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	(void)loop;
	(void)revents;
	if (conn_write_some(c) < 0) {
		conn_close(c, strerror(errno));
		return;
	}
	conn_after_write(c);
}

/* conn_flush_pending: called before the loop sleeps. */
void
conn_flush_pending(struct server *srv)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&srv->pending_writes)) != NULL) {
		TAILQ_REMOVE(&srv->pending_writes, c, write_entry);
		c->flags &= ~CONN_PENDING_WRITE;
		if (ev_is_active(&c->wio)) {
			/* The socket is full; the watcher will write.  But the
			 * backlog grew: pause the reader or drop it now, or a
			 * peer that never reads would never be checked. */
			conn_after_write(c);
			continue;
		}
		if (conn_write_some(c) < 0) {
			conn_close(c, strerror(errno));
			continue;
		}
		conn_after_write(c);
	}
}

/*
 * conn_process_input: hand each whole frame to the protocol.  Stops early
 * if the connection closed or must close; keeps a partial frame buffered.
 */
static void
conn_process_input(struct conn *c)
{
	const char *payload;
	uint32_t len;

	while (!(c->flags & (CONN_DEAD | CONN_CLOSE_AFTER_WRITE))) {
		switch (frame_next(buf_head(&c->in), buf_used(&c->in),
		    c->srv->opt.max_frame, &payload, &len)) {
		case FRAME_NEED:
			return;
		case FRAME_TOO_LARGE:
			c->srv->bad_frames++;
			conn_send_error(c, "frame_too_large", NULL,
			    "frame of %u bytes exceeds the limit of %zu",
			    frame_get_len(buf_head(&c->in)), c->srv->opt.max_frame);
			log_warn("%s: frame of %u bytes over --max-frame, closing",
			    c->peer, frame_get_len(buf_head(&c->in)));
			c->flags |= CONN_CLOSE_AFTER_WRITE;
			ev_io_stop(c->srv->loop, &c->rio);
			buf_free(&c->in);
			return;
		case FRAME_OK:
			c->srv->frames_in++;
			proto_handle(c, payload, len);
			if (c->flags & CONN_DEAD)
				return;
			buf_consume(&c->in, FRAME_HEADER + len);
			break;
		}
	}
}

static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	buf_reserve(&c->in, READ_CHUNK);
	n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
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
	c->last_heard = ev_now(c->srv->loop);
	conn_process_input(c);
	if (c->flags & CONN_DEAD)
		return;
	/* Keep at most one partial frame; give back a big buffer once idle. */
	if (buf_used(&c->in) == 0 && c->in.cap > 4 * READ_CHUNK)
		buf_free(&c->in);
	else
		buf_compact(&c->in);
}
