/*
 * conn.c — struct jfc_conn, one connection to the daemon: a socket with
 * its framing, driven by libev.  Reads and writes are non-blocking and
 * buffered, so no caller blocks one direction while the other has work.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/jfc_int.h"

static void conn_flush(jfc_conn *);

/* jfc_conn_close: drop the socket but keep the buffers, which a caller up
 * the stack may still be reading; jfc_conn_free releases them. */
void
jfc_conn_close(jfc_conn *s)
{
	if (s == NULL)
		return;
	ev_io_stop(s->loop, &s->rio);
	ev_io_stop(s->loop, &s->wio);
	ev_timer_stop(s->loop, &s->drip);
	jfci_tls_close(s);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

void
jfc_conn_free(jfc_conn *s)
{
	if (s == NULL)
		return;
	jfc_conn_close(s);
	buf_free(&s->in);
	buf_free(&s->out);
	free(s);
}

bool
jfc_conn_up(const jfc_conn *s)
{
	return s != NULL && s->fd >= 0;
}

size_t
jfc_conn_queued(const jfc_conn *s)
{
	return buf_used(&s->out);
}

void
jfc_conn_dribble(jfc_conn *s, bool on)
{
	s->dribble = on;
}

/* conn_lost: the daemon closed the connection or it broke. */
static void
conn_lost(jfc_conn *s, const char *why)
{
	jfc_conn_close(s);
	if (s->ops.lost != NULL)
		s->ops.lost(s, why, s->arg);
}

/* jfci_conn_dispatch: every whole frame in the buffer, until a callback
 * asks to stop; the frames after it wait for the next call. */
void
jfci_conn_dispatch(jfc_conn *s)
{
	const char *p;
	uint32_t len;
	int rc;

	s->stopped = false;
	while (!s->stopped && frame_next(buf_head(&s->in), buf_used(&s->in),
	    SIZE_MAX, &p, &len) == FRAME_OK) {
		s->busy = true;
		rc = s->ops.frame(s, p, len, s->arg);
		s->busy = false;
		buf_consume(&s->in, FRAME_HEADER + (size_t)len);
		if (rc != 0)
			s->stopped = true;
	}
}

/* conn_read_cb: one read, then every whole frame in the buffer. */
static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	jfc_conn *s = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	buf_reserve(&s->in, JFC_READ_CHUNK);
	n = jfci_io_read(s, s->in.data + s->in.len, s->in.cap - s->in.len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* TLS may hold more decrypted bytes than the socket shows: come back. */
	if (jfci_io_pending(s))
		ev_feed_event(s->loop, &s->rio, EV_READ);
	if (n <= 0) {
		conn_lost(s, n == 0 ? "closed by the daemon" : strerror(errno));
		return;
	}
	s->in.len += (size_t)n;
	jfci_conn_dispatch(s);
}

static void
conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_flush(w->data);
}

static void
conn_drip_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_flush(w->data);
}

/*
 * conn_flush: write what the socket takes now, and watch for writability
 * only while something is left.  A failed write means the daemon is
 * closing on us: drop the output and keep reading, since its last frame
 * (say, frame_too_large) says why and EOF follows.
 */
static void
conn_flush(jfc_conn *s)
{
	ssize_t n;
	size_t want;

	while (s->fd >= 0 && buf_used(&s->out) > 0) {
		want = s->dribble ? 1 : buf_used(&s->out);
		n = jfci_io_write(s, buf_head(&s->out), want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!s->dribble)
				ev_io_start(s->loop, &s->wio);
			return;
		}
		if (n < 0) {
			buf_consume(&s->out, buf_used(&s->out));
			break;
		}
		buf_consume(&s->out, (size_t)n);
		if (s->dribble && buf_used(&s->out) > 0) {
			if (s->ops.wrote != NULL)
				s->ops.wrote(s, buf_used(&s->out), s->arg);
			return;		/* the next byte waits for the next tick */
		}
	}
	ev_io_stop(s->loop, &s->wio);
	ev_timer_stop(s->loop, &s->drip);
	if (s->ops.wrote != NULL)
		s->ops.wrote(s, buf_used(&s->out), s->arg);
}

/* conn_kick: start sending what was queued. */
static void
conn_kick(jfc_conn *s)
{
	if (s->fd < 0) {
		buf_consume(&s->out, buf_used(&s->out));
		return;
	}
	if (s->dribble) {
		if (!ev_is_active(&s->drip))
			ev_timer_start(s->loop, &s->drip);
	} else if (!ev_is_active(&s->wio))
		conn_flush(s);
}

/* jfc_conn_bytes: bytes exactly as given, no framing. */
void
jfc_conn_bytes(jfc_conn *s, const char *p, size_t len)
{
	buf_append(&s->out, p, len);
	conn_kick(s);
}

/* jfc_conn_frame: one frame around a payload of any bytes. */
void
jfc_conn_frame(jfc_conn *s, const char *p, size_t len)
{
	char hdr[FRAME_HEADER];

	frame_put_len(hdr, (uint32_t)len);
	buf_append(&s->out, hdr, sizeof hdr);
	buf_append(&s->out, p, len);
	conn_kick(s);
}

/* jfc_conn_open: connect to one of the daemon's ports, then TLS and the
 * token, blocking (nothing else is under way yet), then non-blocking. */
int
jfc_conn_open(jfc_client *c, struct ev_loop *loop, int port,
    const struct jfc_conn_ops *ops, void *arg, jfc_conn **out)
{
	jfc_conn *s = xcalloc(1, sizeof *s);
	char err[256] = "no usable address";
	int rc;

	*out = NULL;
	s->c = c;
	s->loop = loop;
	s->arg = arg;
	s->ops = *ops;
	ev_io_init(&s->rio, conn_read_cb, -1, EV_READ);
	ev_io_init(&s->wio, conn_write_cb, -1, EV_WRITE);
	ev_timer_init(&s->drip, conn_drip_cb, 0.001, 0.001);
	s->rio.data = s->wio.data = s->drip.data = s;
	s->fd = net_connect(c->host, port == JFC_WORKER ? c->worker_port :
	    c->master_port, err, sizeof err);
	if (s->fd < 0) {
		jfci_warn(c, "cannot connect: %s", err);
		jfc_conn_free(s);
		return JFC_ELOST;
	}
	if (c->tls && jfci_tls_start(c, s, err, sizeof err) < 0) {
		jfci_warn(c, "%s", err);
		jfc_conn_free(s);
		return JFC_ELOST;
	}
	if (c->token != NULL && (rc = jfci_auth(c, s)) < 0) {
		jfc_conn_free(s);
		return rc == JFC_EREFUSED ? JFC_EREFUSED : JFC_ELOST;
	}
	if (net_nonblock(s->fd) < 0) {
		jfci_warn(c, "cannot connect: %s", strerror(errno));
		jfc_conn_free(s);
		return JFC_ELOST;
	}
	ev_io_set(&s->rio, s->fd, EV_READ);
	ev_io_set(&s->wio, s->fd, EV_WRITE);
	ev_io_start(s->loop, &s->rio);
	*out = s;
	return 0;
}
