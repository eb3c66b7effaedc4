/*
 * jobctl_session.c — struct session, jobctl's one connection type: a
 * socket to the daemon with its framing, driven by libev, plus an optional
 * stdin reader.  Reads and writes are non-blocking and buffered, so no
 * command blocks one direction while the other has work.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/jobctl.h"

#define STDIN_HIGH	(4u << 20)	/* stop reading stdin above this backlog */
#define STDIN_LOW	(1u << 20)	/* and start again below this */

static void session_flush(struct session *);

/* session_done: end the command with a status; the first one stands. */
void
session_done(struct session *s, int status)
{
	if (s->status == CTL_RUNNING)
		s->status = status;
	ev_break(s->loop, EVBREAK_ALL);
}

/* session_close: drop the socket but keep the buffers, which a caller up
 * the stack may still be reading; session_free releases them. */
void
session_close(struct session *s)
{
	ev_io_stop(s->loop, &s->rio);
	ev_io_stop(s->loop, &s->wio);
	ev_timer_stop(s->loop, &s->drip);
	ctl_tls_close(s);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

void
session_free(struct session *s)
{
	session_close(s);
	ev_timer_stop(s->loop, &s->timer);
	ev_io_stop(s->loop, &s->sin);
	buf_free(&s->in);
	buf_free(&s->out);
	buf_free(&s->line);
}

/* session_lost: the daemon closed the connection or it broke.  Commands
 * that expect this decide: a status (raw), or CTL_RUNNING to carry on
 * without it (work reconnects); the rest report it. */
static void
session_lost(struct session *s, const char *why)
{
	int rc;

	session_close(s);
	if (s->status != CTL_RUNNING)
		return;
	if (s->lost != NULL)
		rc = s->lost(s, why);
	else {
		ctl_warn("connection lost: %s", why);
		rc = CTL_LOST;
	}
	if (rc != CTL_RUNNING)
		session_done(s, rc);
}

/* session_read_cb: one read, then every whole frame in the buffer; a
 * callback that ends the command stops the rest from being handled. */
static void
session_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct session *s = w->data;
	const char *p;
	uint32_t len;
	ssize_t n;
	int rc;

	(void)loop;
	(void)revents;
	buf_reserve(&s->in, READ_CHUNK);
	n = ctl_io_read(s, s->in.data + s->in.len, s->in.cap - s->in.len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* TLS may hold more decrypted bytes than the socket shows: come back. */
	if (ctl_io_pending(s))
		ev_feed_event(s->loop, &s->rio, EV_READ);
	if (n <= 0) {
		session_lost(s, n == 0 ? "closed by the daemon" : strerror(errno));
		return;
	}
	s->in.len += (size_t)n;
	while (s->status == CTL_RUNNING && frame_next(buf_head(&s->in),
	    buf_used(&s->in), SIZE_MAX, &p, &len) == FRAME_OK) {
		rc = s->frame(s, p, len);
		buf_consume(&s->in, FRAME_HEADER + (size_t)len);
		if (rc != CTL_RUNNING)
			session_done(s, rc);
	}
}

static void
session_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	session_flush(w->data);
}

static void
session_drip_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	session_flush(w->data);
}

static void
session_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct session *s = w->data;

	(void)loop;
	(void)revents;
	session_done(s, s->timeout != NULL ? s->timeout(s) : CTL_TIMEOUT);
}

/*
 * session_flush: write what the socket takes now, and watch for
 * writability only while something is left.  A failed write means the
 * daemon is closing on us: drop the output and keep reading, since its
 * last frame (say, frame_too_large) says why and EOF follows.
 */
static void
session_flush(struct session *s)
{
	ssize_t n;
	size_t want;

	while (s->fd >= 0 && buf_used(&s->out) > 0) {
		want = s->dribble ? 1 : buf_used(&s->out);
		n = ctl_io_write(s, buf_head(&s->out), want);
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
		if (s->dribble && buf_used(&s->out) > 0)
			return;		/* the next byte waits for the next tick */
	}
	ev_io_stop(s->loop, &s->wio);
	ev_timer_stop(s->loop, &s->drip);
	if (s->sin_paused && buf_used(&s->out) < STDIN_LOW) {
		s->sin_paused = false;
		ev_io_start(s->loop, &s->sin);
	}
	if (buf_used(&s->out) == 0 && s->flushed != NULL)
		s->flushed(s);
}

/* session_kick: start sending what was queued. */
static void
session_kick(struct session *s)
{
	if (s->fd < 0) {
		buf_consume(&s->out, buf_used(&s->out));
		return;
	}
	if (buf_used(&s->out) > STDIN_HIGH && ev_is_active(&s->sin)) {
		ev_io_stop(s->loop, &s->sin);
		s->sin_paused = true;
	}
	if (s->dribble) {
		if (!ev_is_active(&s->drip))
			ev_timer_start(s->loop, &s->drip);
	} else if (!ev_is_active(&s->wio))
		session_flush(s);
}

/* session_bytes: bytes exactly as given, no framing (raw --unframed). */
void
session_bytes(struct session *s, const char *p, size_t len)
{
	buf_append(&s->out, p, len);
	session_kick(s);
}

/* session_frame: one frame around a payload of any bytes. */
void
session_frame(struct session *s, const char *p, size_t len)
{
	char hdr[FRAME_HEADER];

	frame_put_len(hdr, (uint32_t)len);
	buf_append(&s->out, hdr, sizeof hdr);
	buf_append(&s->out, p, len);
	session_kick(s);
}

/* session_send: one JSON message; steals the reference. */
void
session_send(struct session *s, json_t *m)
{
	char *text = json_dumps(m, JSON_OUT);

	if (text == NULL)
		fatalx("cannot encode a message");
	session_frame(s, text, strlen(text));
	free(text);
	json_decref(m);
}

/*
 * session_stdin_cb: one read of stdin per wakeup.  stdin is left blocking
 * (it may be a terminal the shell shares); a single read after readiness
 * does not block.  Lines are searched only in bytes not yet searched, so a
 * line of many megabytes costs linear time.
 */
static void
session_stdin_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct session *s = w->data;
	char chunk[READ_CHUNK];
	char *nl;
	size_t len;
	ssize_t n;

	(void)revents;
	n = read(STDIN_FILENO, chunk, sizeof chunk);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n < 0)
		ctl_warn("stdin: %s", strerror(errno));
	if (n <= 0) {
		ev_io_stop(loop, w);
		s->sin_eof = true;
		if (s->sin_lines && buf_used(&s->line) > 0) {
			len = buf_used(&s->line);
			s->input(s, buf_head(&s->line), len);
			buf_consume(&s->line, len);
		}
		if (s->input_end != NULL && s->status == CTL_RUNNING)
			s->input_end(s);
		return;
	}
	if (!s->sin_lines) {
		s->input(s, chunk, (size_t)n);
		return;
	}
	buf_append(&s->line, chunk, (size_t)n);
	while (s->status == CTL_RUNNING && (nl = memchr(buf_head(&s->line) +
	    s->scan, '\n', buf_used(&s->line) - s->scan)) != NULL) {
		len = (size_t)(nl - buf_head(&s->line));
		s->input(s, buf_head(&s->line), len);
		buf_consume(&s->line, len + 1);
		s->scan = 0;
	}
	s->scan = buf_used(&s->line);
}

/* session_open: connect to one of the daemon's ports.  A refused
 * connection is reported and counts as a lost one. */
int
session_open(struct session *s, struct ctl *ctl, int port, void *arg)
{
	char err[256] = "no usable address";
	int rc;

	memset(s, 0, sizeof *s);
	s->loop = ctl->loop;
	s->status = CTL_RUNNING;
	s->arg = arg;
	ev_io_init(&s->rio, session_read_cb, -1, EV_READ);
	ev_io_init(&s->wio, session_write_cb, -1, EV_WRITE);
	ev_timer_init(&s->drip, session_drip_cb, 0.001, 0.001);
	ev_timer_init(&s->timer, session_timer_cb, 0, 0);
	ev_io_init(&s->sin, session_stdin_cb, STDIN_FILENO, EV_READ);
	s->rio.data = s->wio.data = s->drip.data = s->timer.data = s;
	s->sin.data = s;
	s->fd = net_connect(ctl->host, port, err, sizeof err);
	if (s->fd < 0) {
		ctl_warn("cannot connect: %s", err);
		return -1;
	}
	/* TLS and the token first, blocking: nothing else is under way yet. */
	if (ctl->tls && ctl_tls_start(ctl, s, err, sizeof err) < 0) {
		ctl_warn("%s", err);
		return -1;
	}
	if (ctl->token != NULL && (rc = ctl_auth(ctl, s)) < 0)
		return rc;
	if (net_nonblock(s->fd) < 0) {
		ctl_warn("cannot connect: %s", strerror(errno));
		return -1;
	}
	ev_io_set(&s->rio, s->fd, EV_READ);
	ev_io_set(&s->wio, s->fd, EV_WRITE);
	ev_io_start(s->loop, &s->rio);
	return 0;
}

/* session_input: start reading stdin. */
void
session_input(struct session *s, bool lines,
    void (*input)(struct session *, const char *, size_t),
    void (*input_end)(struct session *))
{
	s->sin_lines = lines;
	s->input = input;
	s->input_end = input_end;
	ev_io_start(s->loop, &s->sin);
}

/* session_deadline: end with timeout() (default CTL_TIMEOUT) after ms;
 * calling it again restarts the count. */
void
session_deadline(struct session *s, long long ms)
{
	ev_timer_stop(s->loop, &s->timer);
	ev_timer_set(&s->timer, (double)ms / 1000.0, 0);
	ev_timer_start(s->loop, &s->timer);
}

/* session_run: the loop runs until a callback ends the command.  If it
 * runs dry instead, nothing can end it any more: report that, not hang. */
int
session_run(struct session *s)
{
	if (s->status == CTL_RUNNING)
		ev_run(s->loop, 0);
	if (s->status == CTL_RUNNING) {
		ctl_warn("nothing left to wait for");
		s->status = CTL_FAIL;
	}
	return s->status;
}

/* session_call: the shape of most commands: connect, send one request,
 * and let frame() judge the replies. */
int
session_call(struct ctl *ctl, json_t *req,
    int (*frame)(struct session *, const char *, size_t), void *arg)
{
	struct session s;
	int rc;

	if (session_open(&s, ctl, ctl->master_port, arg) < 0) {
		json_decref(req);
		session_free(&s);
		return CTL_LOST;
	}
	s.frame = frame;
	session_send(&s, req);
	rc = session_run(&s);
	session_free(&s);
	return rc;
}
