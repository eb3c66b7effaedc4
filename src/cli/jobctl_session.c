/*
 * jobctl_session.c — struct session, jobctl's one connection type: a
 * connection of libjobfs (jfc_conn: the socket, its framing, TLS and the
 * token, driven by libev) with a command's status, deadline and callbacks,
 * plus an optional stdin reader.  Reads and writes are non-blocking and
 * buffered, so no command blocks one direction while the other has work.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/jobctl.h"

#define STDIN_HIGH	(4u << 20)	/* stop reading stdin above this backlog */
#define STDIN_LOW	(1u << 20)	/* and start again below this */

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
	jfc_conn_close(s->conn);
}

void
session_free(struct session *s)
{
	jfc_conn_free(s->conn);
	s->conn = NULL;
	ev_timer_stop(s->loop, &s->timer);
	ev_io_stop(s->loop, &s->sin);
	buf_free(&s->line);
}

/* session_lost: the daemon closed the connection or it broke.  Commands
 * that expect this decide: a status (raw), or CTL_RUNNING to carry on
 * without it; the rest report it. */
static void
session_lost(jfc_conn *conn, const char *why, void *arg)
{
	struct session *s = arg;
	int rc;

	(void)conn;
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

/* session_read: one frame for the command; once it has ended, the rest
 * are left unread. */
static int
session_read(jfc_conn *conn, const char *p, size_t len, void *arg)
{
	struct session *s = arg;
	int rc;

	(void)conn;
	if (s->status != CTL_RUNNING)
		return 1;
	rc = s->frame(s, p, len);
	if (rc != CTL_RUNNING)
		session_done(s, rc);
	return s->status != CTL_RUNNING;
}

/* session_wrote: output left; stdin, paused while too much waited, reads
 * again once the backlog is small. */
static void
session_wrote(jfc_conn *conn, size_t left, void *arg)
{
	struct session *s = arg;

	(void)conn;
	if (s->sin_paused && left < STDIN_LOW) {
		s->sin_paused = false;
		ev_io_start(s->loop, &s->sin);
	}
	if (left == 0 && s->flushed != NULL)
		s->flushed(s);
}

static void
session_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct session *s = w->data;

	(void)loop;
	(void)revents;
	session_done(s, s->timeout != NULL ? s->timeout(s) : CTL_TIMEOUT);
}

/* session_kick: after queueing output: pause stdin while too much waits. */
static void
session_kick(struct session *s)
{
	if (session_queued(s) > STDIN_HIGH && ev_is_active(&s->sin)) {
		ev_io_stop(s->loop, &s->sin);
		s->sin_paused = true;
	}
}

/* session_queued: output not written yet. */
size_t
session_queued(const struct session *s)
{
	return s->conn != NULL ? jfc_conn_queued(s->conn) : 0;
}

/* session_dribble: write one byte per millisecond (raw --dribble). */
void
session_dribble(struct session *s, bool on)
{
	if (s->conn != NULL)
		jfc_conn_dribble(s->conn, on);
}

/* session_bytes: bytes exactly as given, no framing (raw --unframed). */
void
session_bytes(struct session *s, const char *p, size_t len)
{
	if (s->conn == NULL)
		return;
	jfc_conn_bytes(s->conn, p, len);
	session_kick(s);
}

/* session_frame: one frame around a payload of any bytes. */
void
session_frame(struct session *s, const char *p, size_t len)
{
	if (s->conn == NULL)
		return;
	jfc_conn_frame(s->conn, p, len);
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

/* session_open: connect to one of the daemon's ports (JFC_MASTER or
 * JFC_WORKER).  A refused connection is reported (by libjobfs's log,
 * which is ctl_warn) and counts as a lost one. */
int
session_open(struct session *s, struct ctl *ctl, int port, void *arg)
{
	static const struct jfc_conn_ops ops = {
		session_read, session_lost, session_wrote
	};
	int rc;

	memset(s, 0, sizeof *s);
	s->loop = ctl->loop;
	s->status = CTL_RUNNING;
	s->arg = arg;
	ev_timer_init(&s->timer, session_timer_cb, 0, 0);
	ev_io_init(&s->sin, session_stdin_cb, STDIN_FILENO, EV_READ);
	s->timer.data = s->sin.data = s;
	rc = jfc_conn_open(ctl->client, ctl->loop, port, &ops, s, &s->conn);
	return rc == JFC_EREFUSED ? SESSION_REFUSED : rc < 0 ? -1 : 0;
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

	if (session_open(&s, ctl, JFC_MASTER, arg) < 0) {
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
