/*
 * jobctl.c — the command-line client of jobfs: submit jobs, run a worker,
 * inspect the daemon, publish and subscribe, and speak raw frames.
 *
 * Each command is one function in cmd_table.  They share one connection
 * type, struct session: a socket with its framing, driven by libev, plus an
 * optional stdin reader.  No command blocks one direction while the other
 * has work: a worker answers pings while it streams a large response, and
 * raw keeps printing replies while it sends megabytes.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobfs.h"

/* Exit statuses, listed in jobctl(1). */
enum {
	CTL_OK = 0,
	CTL_FAIL = 1,		/* the job or the daemon reported an error */
	CTL_USAGE = 2,
	CTL_LOST = 3,		/* could not connect, or the connection closed */
	CTL_TIMEOUT = 4,	/* gave up waiting */
};
#define CTL_RUNNING (-1)	/* a callback's "not finished yet" */

#define READ_CHUNK	65536
#define STDIN_HIGH	(4u << 20)	/* stop reading stdin above this backlog */
#define STDIN_LOW	(1u << 20)	/* and start again below this */
#define CAPTURE_MAX	(16u << 20)	/* bytes kept of a command's stdout or stderr */
#define RESPONSE_MAX	(16u << 20)	/* the daemon's default --max-frame */
#define SHRUNK_MAX	65536		/* output kept in a result that was too large */
#define KILL_GRACE	5.0		/* seconds from SIGTERM to SIGKILL on cancel */
#define PIPE_GRACE	1.0		/* seconds to wait for a dead command's pipes */
#define JSON_OUT	(JSON_COMPACT | JSON_ENCODE_ANY)

struct ctl {
	const char	*host;
	int		 master_port;
	int		 worker_port;
	struct ev_loop	*loop;
};

struct cmd_entry {
	const char	*name;
	const char	*usage;
	int		(*exec)(struct ctl *, const struct cmd_entry *, int, char **);
};

static void ctl_warn(const char *, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------- helpers */

/* ctl_warn: every message of ours starts "jobctl: ", as in jobctl(1). */
static void
ctl_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("jobctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ctl_usage: a command's synopsis; on stdout with exit 0 when asked for
 * (-h), else on stderr with the usage status. */
static int
ctl_usage(const struct cmd_entry *e, bool asked)
{
	fprintf(asked ? stdout : stderr, "usage: jobctl %s%s%s\n", e->name,
	    e->usage != NULL ? " " : "", e->usage != NULL ? e->usage : "");
	return asked ? CTL_OK : CTL_USAGE;
}

/* ctl_number: a whole decimal argument within [min, max], or -1. */
static int
ctl_number(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* ctl_port: a port from an option or the environment; exits on nonsense,
 * since a typo in a port is a usage error wherever it comes from. */
static int
ctl_port(const char *s, const char *what)
{
	long long v;

	if (ctl_number(s, 1, 65535, &v) < 0) {
		ctl_warn("%s: not a port number: %s", what, s);
		exit(CTL_USAGE);
	}
	return (int)v;
}

/* ctl_text: a JSON value as text to show a person: strings bare, the rest
 * as compact JSON.  The caller frees it. */
static char *
ctl_text(const json_t *v)
{
	char *s;

	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	s = json_dumps(v, JSON_OUT);
	return s != NULL ? s : xstrdup("?");
}

/* ctl_print: one JSON value as a line on stdout, flushed at once because
 * whoever reads us (a test, a pipeline) waits for each line.  A prefix
 * (a channel name) goes before it with a tab. */
static int
ctl_print(const char *prefix, const json_t *v, size_t flags)
{
	char *s = json_dumps(v, flags);

	if (s == NULL)
		return CTL_FAIL;
	if (prefix != NULL)
		printf("%s\t", prefix);
	puts(s);
	free(s);
	if (fflush(stdout) == EOF) {
		ctl_warn("stdout: %s", strerror(errno));
		return CTL_FAIL;
	}
	return CTL_OK;
}

/* ctl_report: an error frame as "jobctl: CODE: REASON" on stderr.  Gloom's
 * missing_field names the field instead of giving a reason. */
static int
ctl_report(const json_t *m)
{
	json_t *why = json_object_get(m, "reason");
	char *code = ctl_text(json_object_get(m, "error"));
	char *text;

	if (why == NULL)
		why = json_object_get(m, "name");
	text = why != NULL ? ctl_text(why) : NULL;
	if (text != NULL)
		ctl_warn("%s: %s", code, text);
	else
		ctl_warn("%s", code);
	free(text);
	free(code);
	return CTL_FAIL;
}

/* ctl_parse: a frame from the daemon as a JSON object, or NULL after a
 * warning: the daemon only sends objects, so anything else is a bug there. */
static json_t *
ctl_parse(const char *p, size_t len)
{
	json_error_t err;
	json_t *m = json_loadb(p, len, 0, &err);

	if (m == NULL)
		ctl_warn("bad frame from daemon: %s", err.text);
	return m;
}

/* ctl_slurp: all of a file descriptor, blocking; only for submit's body,
 * which must be whole before it can be checked and sent. */
static int
ctl_slurp(int fd, struct buf *b)
{
	ssize_t n;

	for (;;) {
		buf_reserve(b, READ_CHUNK);
		n = read(fd, b->data + b->len, b->cap - b->len);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b->len += (size_t)n;
	}
}

/* ctl_body: parse a body argument ("-" or absent: all of stdin) as JSON of
 * any kind.  Invalid JSON is the user's mistake, so it is a usage error. */
static json_t *
ctl_body(const char *arg)
{
	struct buf b = { 0 };
	json_error_t err;
	json_t *v;

	if (arg == NULL || strcmp(arg, "-") == 0) {
		if (ctl_slurp(STDIN_FILENO, &b) < 0) {
			ctl_warn("stdin: %s", strerror(errno));
			buf_free(&b);
			return NULL;
		}
		v = json_loadb(b.data != NULL ? b.data : "", b.len,
		    JSON_DECODE_ANY, &err);
		buf_free(&b);
	} else
		v = json_loads(arg, JSON_DECODE_ANY, &err);
	if (v == NULL)
		ctl_warn("body is not valid JSON: %s (line %d, column %d)",
		    err.text, err.line, err.column);
	return v;
}

/* ------------------------------------------------------------- session */

/*
 * A connection to the daemon.  Output is buffered and written as the socket
 * allows; input is cut into frames and handed to frame(), which returns
 * CTL_RUNNING to go on or the command's exit status to stop.  The optional
 * stdin reader hands over lines (or raw chunks), and pauses while too much
 * output is waiting so that a huge stdin never piles up in memory.
 */
struct session {
	struct ev_loop	*loop;
	int		 fd;
	ev_io		 rio, wio;
	ev_timer	 drip;		/* --dribble: one byte per tick */
	ev_timer	 timer;		/* the command's own deadline */
	struct buf	 in, out;
	bool		 dribble;
	int		 status;	/* CTL_RUNNING until the command ends */
	int		(*frame)(struct session *, const char *, size_t);
	int		(*lost)(struct session *, const char *);
	int		(*timeout)(struct session *);
	void		(*flushed)(struct session *);
	void		*arg;

	ev_io		 sin;
	struct buf	 line;
	size_t		 scan;		/* bytes of line already searched */
	bool		 sin_lines;	/* hand over lines, not chunks */
	bool		 sin_paused;
	bool		 sin_eof;
	void		(*input)(struct session *, const char *, size_t);
	void		(*input_end)(struct session *);
};

static void session_flush(struct session *);

/* session_done: end the command with a status; the first one stands. */
static void
session_done(struct session *s, int status)
{
	if (s->status == CTL_RUNNING)
		s->status = status;
	ev_break(s->loop, EVBREAK_ALL);
}

/* session_close: drop the socket but keep the buffers, which a caller up
 * the stack may still be reading; session_free releases them. */
static void
session_close(struct session *s)
{
	ev_io_stop(s->loop, &s->rio);
	ev_io_stop(s->loop, &s->wio);
	ev_timer_stop(s->loop, &s->drip);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static void
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
 * that expect this (raw) decide their status; the rest report it. */
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
	n = read(s->fd, s->in.data + s->in.len, s->in.cap - s->in.len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
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
		n = send(s->fd, buf_head(&s->out), want, MSG_NOSIGNAL);
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
static void
session_bytes(struct session *s, const char *p, size_t len)
{
	buf_append(&s->out, p, len);
	session_kick(s);
}

/* session_frame: one frame around a payload of any bytes. */
static void
session_frame(struct session *s, const char *p, size_t len)
{
	char hdr[FRAME_HEADER];

	frame_put_len(hdr, (uint32_t)len);
	buf_append(&s->out, hdr, sizeof hdr);
	buf_append(&s->out, p, len);
	session_kick(s);
}

/* session_send: one JSON message; steals the reference. */
static void
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
static int
session_open(struct session *s, struct ctl *ctl, int port, void *arg)
{
	char err[256] = "no usable address";

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
	if (s->fd < 0 || net_nonblock(s->fd) < 0) {
		ctl_warn("cannot connect: %s", err);
		return -1;
	}
	ev_io_set(&s->rio, s->fd, EV_READ);
	ev_io_set(&s->wio, s->fd, EV_WRITE);
	ev_io_start(s->loop, &s->rio);
	return 0;
}

/* session_input: start reading stdin. */
static void
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
static void
session_deadline(struct session *s, long long ms)
{
	ev_timer_stop(s->loop, &s->timer);
	ev_timer_set(&s->timer, (double)ms / 1000.0, 0);
	ev_timer_start(s->loop, &s->timer);
}

/* session_run: the loop runs until a callback ends the command.  If it
 * runs dry instead, nothing can end it any more: report that, not hang. */
static int
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
static int
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

/* -------------------------------------------------------------- submit */

struct submit {
	json_t	*id;
	bool	 stream;
};

/* submit_frame: partials (with --stream) are printed and waited past; the
 * final reply or an error frame ends the command. */
static int
submit_frame(struct session *s, const char *p, size_t len)
{
	struct submit *sub = s->arg;
	json_t *m, *id, *body;
	int rc = CTL_RUNNING;

	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	id = json_object_get(m, "id");
	body = json_object_get(m, "body");
	if (json_object_get(m, "error") != NULL)
		rc = ctl_report(m);
	else if (id != NULL && !json_equal(id, sub->id))
		rc = CTL_RUNNING;
	else if (json_is_true(json_object_get(m, "partial"))) {
		if (sub->stream && body != NULL)
			rc = ctl_print(NULL, body, JSON_OUT) == CTL_OK ?
			    CTL_RUNNING : CTL_FAIL;
	} else if (body != NULL)
		rc = ctl_print(NULL, body, JSON_OUT);
	json_decref(m);
	return rc;
}

/* submit_id: a fresh id that no other jobctl is likely to pick:
 * host, pid, milliseconds and a counter. */
static char *
submit_id(void)
{
	static unsigned counter;
	char host[65];
	struct timespec ts;

	if (gethostname(host, sizeof host) < 0)
		strcpy(host, "jobctl");
	host[sizeof host - 1] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	return xprintf("%s-%ld-%lld%03ld-%u", host, (long)getpid(),
	    (long long)ts.tv_sec, ts.tv_nsec / 1000000, ++counter);
}

/* cmd_submit: one job, waited for on its own connection, so that only its
 * replies arrive there. */
static int
cmd_submit(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "id",       required_argument, NULL, 'i' },
		{ "priority", required_argument, NULL, 'p' },
		{ "timeout",  required_argument, NULL, 't' },
		{ "stream",   no_argument,       NULL, 's' },
		{ "detach",   no_argument,       NULL, 'd' },
		{ "worker",   required_argument, NULL, 'W' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct submit sub = { 0 };
	const char *id = NULL, *target = NULL;
	long long priority = 0, timeout = 0;
	bool detach = false, has_priority = false;
	json_t *body, *m;
	char *auto_id = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			id = optarg;
			break;
		case 'p':
			if (ctl_number(optarg, INT64_MIN, INT64_MAX, &priority) < 0)
				return ctl_usage(e, false);
			has_priority = true;
			break;
		case 't':
			if (ctl_number(optarg, 1, INT64_MAX, &timeout) < 0)
				return ctl_usage(e, false);
			break;
		case 's':
			sub.stream = true;
			break;
		case 'd':
			detach = true;
			break;
		case 'W':
			target = optarg;
			break;
		case 'h':
			return ctl_usage(e, true);
		default:
			return ctl_usage(e, false);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || argc > 2)
		return ctl_usage(e, false);
	if ((body = ctl_body(argc == 2 ? argv[1] : NULL)) == NULL)
		return CTL_USAGE;
	if (id == NULL)
		id = auto_id = submit_id();
	sub.id = json_string(id);
	if (sub.id == NULL) {
		ctl_warn("the id is not valid UTF-8");
		json_decref(body);
		free(auto_id);
		return CTL_USAGE;
	}

	m = json_object();
	json_object_set_new(m, "type", json_string("job"));
	json_object_set_new(m, "job_type", json_string(argv[0]));
	json_object_set(m, "id", sub.id);
	json_object_set_new(m, "body", body);
	if (has_priority)
		json_object_set_new(m, "priority", json_integer(priority));
	if (timeout > 0)
		json_object_set_new(m, "timeout", json_integer(timeout));
	if (sub.stream)
		json_object_set_new(m, "stream", json_true());
	if (detach)
		json_object_set_new(m, "detach", json_true());
	if (target != NULL)
		json_object_set_new(m, "worker", json_string(target));
	if (json_object_get(m, "job_type") == NULL ||
	    (target != NULL && json_object_get(m, "worker") == NULL)) {
		ctl_warn("the type or worker name is not valid UTF-8");
		json_decref(m);
		rc = CTL_USAGE;
	} else
		rc = session_call(ctl, m, submit_frame, &sub);
	json_decref(sub.id);
	free(auto_id);
	return rc;
}

/* ------------------------------------------- status, cancel, stats, ping */

/* ctl_args: options for a command that takes none but -h, and exactly
 * nargs arguments.  CTL_RUNNING means go on; anything else is the status. */
static int
ctl_args(const struct cmd_entry *e, int argc, char **argv, int nargs)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		return ctl_usage(e, c == 'h');
	if (argc - optind != nargs)
		return ctl_usage(e, false);
	return CTL_RUNNING;
}

/* status_frame: the daemon's answer as one line of JSON, pretty on a
 * terminal. */
static int
status_frame(struct session *s, const char *p, size_t len)
{
	json_t *m;
	int rc;

	(void)s;
	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	if (json_object_get(m, "error") != NULL)
		rc = ctl_report(m);
	else
		rc = ctl_print(NULL, m, isatty(STDOUT_FILENO) ?
		    JSON_INDENT(2) | JSON_ENCODE_ANY : JSON_OUT);
	json_decref(m);
	return rc;
}

/* ctl_by_id: status and cancel send the command's name and one id. */
static int
ctl_by_id(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv,
    int (*frame)(struct session *, const char *, size_t))
{
	json_t *m;
	int rc;

	if ((rc = ctl_args(e, argc, argv, 1)) != CTL_RUNNING)
		return rc;
	m = json_pack("{s:s, s:s}", "type", e->name, "id", argv[optind]);
	if (m == NULL) {
		ctl_warn("the id is not valid UTF-8");
		return CTL_USAGE;
	}
	return session_call(ctl, m, frame, NULL);
}

static int
cmd_status(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	return ctl_by_id(ctl, e, argc, argv, status_frame);
}

/*
 * cancel_frame: the canceller gets the job's ending frame.  Only an ending
 * with "cancelled" means the cancel took; a job that ended otherwise first
 * (done, timeout, failed) is shown too but exits 1, as does unknown_id.
 */
static int
cancel_frame(struct session *s, const char *p, size_t len)
{
	json_t *m, *err;
	const char *code;
	int rc;

	(void)s;
	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	err = json_object_get(m, "error");
	code = json_string_value(err);
	if (code != NULL && strcmp(code, "cancelled") == 0)
		rc = ctl_print(NULL, m, JSON_OUT);
	else if (json_object_get(m, "body") != NULL || (code != NULL &&
	    (strcmp(code, "timeout") == 0 || strcmp(code, "job_failed") == 0))) {
		ctl_print(NULL, m, JSON_OUT);
		rc = CTL_FAIL;
	} else if (err != NULL)
		rc = ctl_report(m);
	else
		rc = CTL_RUNNING;	/* a partial or a notice: not the end */
	json_decref(m);
	return rc;
}

static int
cmd_cancel(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	return ctl_by_id(ctl, e, argc, argv, cancel_frame);
}

/* stats_print: nested counters flattened to "a.b.c value" lines, so that
 * per-type counters read as types.T.name. */
static void
stats_print(const char *prefix, json_t *obj)
{
	const char *key;
	json_t *v;
	char *name, *text;

	json_object_foreach(obj, key, v) {
		name = prefix != NULL ? xprintf("%s.%s", prefix, key) :
		    xstrdup(key);
		if (json_is_object(v))
			stats_print(name, v);
		else if (json_is_real(v))
			printf("%s %.15g\n", name, json_real_value(v));
		else {
			text = ctl_text(v);
			printf("%s %s\n", name, text);
			free(text);
		}
		free(name);
	}
}

/* stats_frame: a reply without "stats" means a daemon we do not know. */
static int
stats_frame(struct session *s, const char *p, size_t len)
{
	json_t *m, *stats;
	int rc = CTL_OK;

	(void)s;
	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	stats = json_object_get(m, "stats");
	if (json_object_get(m, "error") != NULL)
		rc = ctl_report(m);
	else if (!json_is_object(stats)) {
		ctl_warn("unexpected reply to stats");
		rc = CTL_FAIL;
	} else {
		stats_print(NULL, stats);
		if (fflush(stdout) == EOF)
			rc = CTL_FAIL;
	}
	json_decref(m);
	return rc;
}

static int
cmd_stats(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	int rc;

	if ((rc = ctl_args(e, argc, argv, 0)) != CTL_RUNNING)
		return rc;
	return session_call(ctl, json_pack("{s:s}", "type", "stats"),
	    stats_frame, NULL);
}

/* ping_frame: wait past anything but the pong or an error (publish shares
 * it, and its errors come before the pong). */
static int
ping_frame(struct session *s, const char *p, size_t len)
{
	json_t *m;
	int rc = CTL_RUNNING;

	(void)s;
	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	if (json_object_get(m, "error") != NULL)
		rc = ctl_report(m);
	else if (json_is_string(json_object_get(m, "type")) &&
	    strcmp(json_string_value(json_object_get(m, "type")), "pong") == 0)
		rc = CTL_OK;
	json_decref(m);
	return rc;
}

static int
ping_timeout(struct session *s)
{
	(void)s;
	ctl_warn("no pong from the daemon");
	return CTL_TIMEOUT;
}

/* cmd_ping: is the daemon there and answering?  Silent on success, so it
 * suits "until jobctl ping; do sleep 0.1; done". */
static int
cmd_ping(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help",    no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct session s;
	long long ms = 5000;
	int c, rc;

	while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		if (c == 't' && ctl_number(optarg, 1, INT32_MAX, &ms) == 0)
			continue;
		if (c == 'h') {
			return ctl_usage(e, true);
		}
		return ctl_usage(e, false);
	}
	if (optind != argc)
		return ctl_usage(e, false);
	if (session_open(&s, ctl, ctl->master_port, NULL) < 0) {
		session_free(&s);
		return CTL_LOST;
	}
	s.frame = ping_frame;
	s.timeout = ping_timeout;
	session_send(&s, json_pack("{s:s}", "type", "ping"));
	session_deadline(&s, ms);
	rc = session_run(&s);
	session_free(&s);
	return rc;
}

/* ------------------------------------------------------ publish, subscribe */

struct publish {
	const char	*channel;
	unsigned long	 lineno;
	bool		 bad_input;	/* a line that was not JSON */
	bool		 refused;	/* an error frame from the daemon */
};

static void
publish_one(struct session *s, json_t *body)
{
	struct publish *pub = s->arg;

	session_send(s, json_pack("{s:s, s:s, s:o}", "type", "publish",
	    "channel", pub->channel, "body", body));
}

/* publish_line: one message per line of stdin; blank lines are skipped and
 * a line that is not JSON is reported and skipped. */
static void
publish_line(struct session *s, const char *p, size_t len)
{
	struct publish *pub = s->arg;
	json_error_t err;
	json_t *body;
	size_t i;

	pub->lineno++;
	for (i = 0; i < len && strchr(" \t\r", p[i]) != NULL; i++)
		;
	if (i == len)
		return;
	if ((body = json_loadb(p, len, JSON_DECODE_ANY, &err)) == NULL) {
		ctl_warn("line %lu is not valid JSON: %s", pub->lineno, err.text);
		pub->bad_input = true;
		return;
	}
	publish_one(s, body);
}

/* publish_end: the daemon answers a good publish with nothing, so a ping
 * after the last one tells when every error frame has arrived. */
static void
publish_end(struct session *s)
{
	session_send(s, json_pack("{s:s}", "type", "ping"));
}

static int
publish_frame(struct session *s, const char *p, size_t len)
{
	struct publish *pub = s->arg;
	int rc;

	rc = ping_frame(s, p, len);
	if (rc == CTL_FAIL) {
		pub->refused = true;
		return CTL_RUNNING;
	}
	if (rc == CTL_OK)
		return pub->refused ? CTL_FAIL :
		    pub->bad_input ? CTL_USAGE : CTL_OK;
	return rc;
}

/* cmd_publish: one message, or one per line of stdin as it comes, so that
 * `tail -f log | jobctl publish c -` streams. */
static int
cmd_publish(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	struct publish pub = { 0 };
	struct session s;
	json_t *body = NULL;
	int rc;

	if ((rc = ctl_args(e, argc, argv, 2)) != CTL_RUNNING)
		return rc;
	pub.channel = argv[optind];
	if ((body = json_string(pub.channel)) == NULL) {
		ctl_warn("channel name is not valid UTF-8: %s", pub.channel);
		return CTL_USAGE;
	}
	json_decref(body);
	body = NULL;
	if (strcmp(argv[optind + 1], "-") != 0 &&
	    (body = ctl_body(argv[optind + 1])) == NULL)
		return CTL_USAGE;
	if (session_open(&s, ctl, ctl->master_port, &pub) < 0) {
		json_decref(body);
		session_free(&s);
		return CTL_LOST;
	}
	s.frame = publish_frame;
	if (body != NULL) {
		publish_one(&s, body);
		publish_end(&s);
	} else
		session_input(&s, true, publish_line, publish_end);
	rc = session_run(&s);
	session_free(&s);
	return rc;
}

struct subscribe {
	long long	 count;		/* messages to print; 0: forever */
	long long	 seen;
	bool		 prefix;	/* more than one channel */
};

/* subscribe_frame: print message bodies; an error frame (a bad channel
 * name) ends the command, since nothing will ever arrive. */
static int
subscribe_frame(struct session *s, const char *p, size_t len)
{
	struct subscribe *sub = s->arg;
	json_t *m;
	const char *type;
	int rc = CTL_RUNNING;

	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	type = json_string_value(json_object_get(m, "type"));
	if (json_object_get(m, "error") != NULL)
		rc = ctl_report(m);
	else if (type != NULL && strcmp(type, "message") == 0) {
		if (ctl_print(sub->prefix ? json_string_value(json_object_get(m,
		    "channel")) : NULL, json_object_get(m, "body"),
		    JSON_OUT) != CTL_OK)
			rc = CTL_FAIL;
		else if (++sub->seen == sub->count)
			rc = CTL_OK;
	}
	json_decref(m);
	return rc;
}

static int
cmd_subscribe(struct ctl *ctl, const struct cmd_entry *e, int argc,
    char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "help",  no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct subscribe sub = { 0 };
	struct session s;
	json_t *m;
	int c, rc, i;

	while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		if (c == 'n' && ctl_number(optarg, 1, INT64_MAX, &sub.count) == 0)
			continue;
		if (c == 'h') {
			return ctl_usage(e, true);
		}
		return ctl_usage(e, false);
	}
	if (optind >= argc)
		return ctl_usage(e, false);
	sub.prefix = argc - optind > 1;
	if (session_open(&s, ctl, ctl->master_port, &sub) < 0) {
		session_free(&s);
		return CTL_LOST;
	}
	s.frame = subscribe_frame;
	for (i = optind; i < argc; i++) {
		m = json_pack("{s:s, s:s}", "type", "subscribe", "channel", argv[i]);
		if (m == NULL) {
			ctl_warn("channel name is not valid UTF-8: %s", argv[i]);
			session_free(&s);
			return CTL_USAGE;
		}
		session_send(&s, m);
	}
	rc = session_run(&s);
	session_free(&s);
	return rc;
}

/* ------------------------------------------------------------------ raw */

struct raw {
	long long	 count;		/* frames to wait for; 0: no limit */
	long long	 seen;
	long long	 idle_ms;
};

/* raw_frame: every payload verbatim on its own line. */
static int
raw_frame(struct session *s, const char *p, size_t len)
{
	struct raw *raw = s->arg;

	fwrite(p, 1, len, stdout);
	putchar('\n');
	if (fflush(stdout) == EOF)
		return CTL_FAIL;
	if (++raw->seen == raw->count)
		return CTL_OK;
	if (ev_is_active(&s->timer))
		session_deadline(s, raw->idle_ms);
	return CTL_RUNNING;
}

/* raw_lost: a close is an answer for raw (tests provoke it), so it is
 * success unless -n frames were promised and did not come. */
static int
raw_lost(struct session *s, const char *why)
{
	struct raw *raw = s->arg;

	(void)why;
	return raw->count > 0 ? CTL_LOST : CTL_OK;
}

static int
raw_timeout(struct session *s)
{
	struct raw *raw = s->arg;

	return raw->count > 0 ? CTL_TIMEOUT : CTL_OK;
}

/* raw_line: one line of stdin is one frame, bytes untouched; an empty line
 * is a zero-length frame. */
static void
raw_line(struct session *s, const char *p, size_t len)
{
	if (len > UINT32_MAX) {
		ctl_warn("line too long for one frame");
		session_done(s, CTL_USAGE);
		return;
	}
	session_frame(s, p, len);
}

/* raw_flushed: the idle clock starts once stdin is done and all of it has
 * left, so a slow --dribble does not eat into the wait. */
static void
raw_flushed(struct session *s)
{
	struct raw *raw = s->arg;

	if (s->sin_eof && buf_used(&s->out) == 0 && !ev_is_active(&s->timer))
		session_deadline(s, raw->idle_ms);
}

/* cmd_raw: frames (or bytes) from stdin, frames to stdout, both at once;
 * nothing is checked, since its purpose is to send what is wrong. */
static int
cmd_raw(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "worker",   no_argument,       NULL, 'W' },
		{ "count",    required_argument, NULL, 'n' },
		{ "timeout",  required_argument, NULL, 't' },
		{ "unframed", no_argument,       NULL, 'u' },
		{ "dribble",  no_argument,       NULL, 'd' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct raw raw = { .idle_ms = 2000 };
	struct session s;
	bool worker = false, unframed = false, dribble = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, "n:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'W':
			worker = true;
			break;
		case 'n':
			if (ctl_number(optarg, 1, INT64_MAX, &raw.count) < 0)
				return ctl_usage(e, false);
			break;
		case 't':
			if (ctl_number(optarg, 0, INT32_MAX, &raw.idle_ms) < 0)
				return ctl_usage(e, false);
			break;
		case 'u':
			unframed = true;
			break;
		case 'd':
			dribble = true;
			break;
		case 'h':
			return ctl_usage(e, true);
		default:
			return ctl_usage(e, false);
		}
	}
	if (optind != argc)
		return ctl_usage(e, false);
	if (session_open(&s, ctl, worker ? ctl->worker_port : ctl->master_port,
	    &raw) < 0) {
		session_free(&s);
		return CTL_LOST;
	}
	s.dribble = dribble;
	s.frame = raw_frame;
	s.lost = raw_lost;
	s.timeout = raw_timeout;
	s.flushed = raw_flushed;
	session_input(&s, !unframed, unframed ? session_bytes : raw_line,
	    raw_flushed);
	rc = session_run(&s);
	session_free(&s);
	return rc;
}

/* ----------------------------------------------------------------- work */

struct worker;

/* One running command: its pipes, what it wrote, and how it ended. */
struct wjob {
	LIST_ENTRY(wjob) entry;
	struct worker	*w;
	json_t		*id;
	pid_t		 pid;		/* also its process group */
	ev_child	 child;
	ev_io		 in_io, out_io, err_io;	/* fd -1: closed */
	ev_timer	 timer;		/* SIGKILL after cancel; pipe grace after exit */
	struct buf	 body;		/* still to write to its stdin */
	struct buf	 out, err;
	bool		 out_trunc, err_trunc;
	bool		 exited;
	bool		 cancelled;
	int		 wstatus;
};

struct worker {
	struct session	 s;
	const char	*type;
	char		**argv;
	long long	 capacity;	/* 0: not asked for */
	bool		 joined;	/* a job came: the join was accepted */
	ev_signal	 sigint, sigterm;
	LIST_HEAD(, wjob) jobs;
};

static void
wjob_close(struct wjob *j, ev_io *io)
{
	if (io->fd < 0)
		return;
	ev_io_stop(j->w->s.loop, io);
	close(io->fd);
	ev_io_set(io, -1, io->events);
}

static void
wjob_free(struct wjob *j)
{
	struct ev_loop *loop = j->w->s.loop;

	ev_child_stop(loop, &j->child);
	ev_timer_stop(loop, &j->timer);
	wjob_close(j, &j->in_io);
	wjob_close(j, &j->out_io);
	wjob_close(j, &j->err_io);
	buf_free(&j->body);
	buf_free(&j->out);
	buf_free(&j->err);
	json_decref(j->id);
	LIST_REMOVE(j, entry);
	free(j);
}

/* wjob_kill: signal the command and whatever it started, while it lives. */
static void
wjob_kill(struct wjob *j, int sig)
{
	if (!j->exited)
		kill(-j->pid, sig);
}

/* wjob_string: captured bytes as a JSON string, at most max of them.
 * JSON strings must be UTF-8, and a command may print anything, so each
 * invalid byte becomes U+FFFD rather than losing the whole output. */
static json_t *
wjob_string(const struct buf *b, size_t max)
{
	const unsigned char *p = (const unsigned char *)buf_head(b);
	size_t n = buf_used(b) < max ? buf_used(b) : max, i = 0, run = 0, k, need;
	struct buf t = { 0 };
	uint32_t cp;
	json_t *v;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		need = p[i] >= 0xc2 && p[i] <= 0xdf ? 1 :
		    p[i] >= 0xe0 && p[i] <= 0xef ? 2 :
		    p[i] >= 0xf0 && p[i] <= 0xf4 ? 3 : 0;
		cp = p[i] & (0x7fu >> (need + 1));
		for (k = 1; k <= need && i + k < n && (p[i + k] & 0xc0) == 0x80; k++)
			cp = cp << 6 | (p[i + k] & 0x3fu);
		if (need > 0 && k > need && !(need == 2 && cp < 0x800) &&
		    !(need == 3 && (cp < 0x10000 || cp > 0x10ffff)) &&
		    !(cp >= 0xd800 && cp <= 0xdfff)) {
			i += need + 1;
			continue;
		}
		/* An invalid byte: keep the valid run before it, then U+FFFD. */
		if (i > run)
			buf_append(&t, p + run, i - run);
		buf_append(&t, "\xef\xbf\xbd", 3);
		run = ++i;
	}
	if (run == 0)
		return json_stringn(n > 0 ? (const char *)p : "", n);
	if (n > run)
		buf_append(&t, p + run, n - run);
	v = json_stringn(t.data, t.len);
	buf_free(&t);
	return v;
}

/*
 * wjob_result: what the command's run means as a job result.  A success
 * is its stdout, as JSON when it parses, else as a string less one
 * trailing newline.  A failure, or output that cannot travel (more than we
 * keep, or a frame over RESPONSE_MAX), is an error object carrying the
 * exit status and the output, cut to max bytes each.
 */
static json_t *
wjob_result(struct wjob *j, size_t max)
{
	bool ok = WIFEXITED(j->wstatus) && WEXITSTATUS(j->wstatus) == 0;
	size_t n = buf_used(&j->out);
	json_t *r;

	if (ok && !j->out_trunc && max == SIZE_MAX) {
		r = json_loadb(n > 0 ? buf_head(&j->out) : "", n,
		    JSON_DECODE_ANY, NULL);
		if (r != NULL)
			return r;
		if (n > 0 && buf_head(&j->out)[n - 1] == '\n')
			j->out.len--;
		return wjob_string(&j->out, SIZE_MAX);
	}
	r = json_object();
	json_object_set_new(r, "error",
	    json_string(ok ? "result too large" : "command failed"));
	if (WIFSIGNALED(j->wstatus))
		json_object_set_new(r, "signal", json_integer(WTERMSIG(j->wstatus)));
	else
		json_object_set_new(r, "status",
		    json_integer(WEXITSTATUS(j->wstatus)));
	json_object_set_new(r, "stdout", wjob_string(&j->out, max));
	json_object_set_new(r, "stderr", wjob_string(&j->err, max));
	if (j->out_trunc || j->err_trunc || buf_used(&j->out) > max ||
	    buf_used(&j->err) > max)
		json_object_set_new(r, "truncated", json_true());
	return r;
}

/* wjob_finish: the command is gone and its pipes are drained: answer,
 * unless the job was cancelled (the daemon wants no answer then). */
static void
wjob_finish(struct wjob *j)
{
	struct worker *w = j->w;
	json_t *m;
	char *text;
	size_t max = SIZE_MAX;

	while (!j->cancelled && w->s.fd >= 0) {
		m = json_pack("{s:s, s:o}", "type", "response", "body",
		    wjob_result(j, max));
		if (w->capacity > 1)
			json_object_set(m, "id", j->id);
		text = json_dumps(m, JSON_OUT);
		json_decref(m);
		if (text == NULL || strlen(text) > RESPONSE_MAX) {
			free(text);
			if (max == SHRUNK_MAX)
				fatalx("cannot shrink a response");
			max = SHRUNK_MAX;
			continue;
		}
		session_frame(&w->s, text, strlen(text));
		free(text);
		break;
	}
	wjob_free(j);
}

/* wjob_check: a job is over when the command has exited and both output
 * pipes are closed: only then is its output complete. */
static void
wjob_check(struct wjob *j)
{
	if (j->exited && j->out_io.fd < 0 && j->err_io.fd < 0)
		wjob_finish(j);
}

/* wjob_stdin_cb: feed the body as the command takes it.  A command that
 * exits or closes stdin without reading is fine (EPIPE: SIGPIPE is
 * ignored here). */
static void
wjob_stdin_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct wjob *j = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = write(w->fd, buf_head(&j->body), buf_used(&j->body));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		buf_consume(&j->body, (size_t)n);
	if (n < 0 || buf_used(&j->body) == 0)
		wjob_close(j, w);
}

/* wjob_output_cb: collect stdout or stderr up to CAPTURE_MAX, and keep
 * draining past it so that the command never blocks on a full pipe. */
static void
wjob_output_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct wjob *j = w->data;
	bool is_out = w == &j->out_io;
	struct buf *b = is_out ? &j->out : &j->err;
	char chunk[READ_CHUNK];
	size_t keep;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = read(w->fd, chunk, sizeof chunk);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		wjob_close(j, w);
		wjob_check(j);
		return;
	}
	keep = CAPTURE_MAX - buf_used(b);
	if ((size_t)n < keep)
		keep = (size_t)n;
	if (keep > 0)
		buf_append(b, chunk, keep);
	if (keep < (size_t)n)
		*(is_out ? &j->out_trunc : &j->err_trunc) = true;
}

/* wjob_timer_cb: before exit, a cancelled command that ignored SIGTERM;
 * after exit, something it started still holds its pipes open. */
static void
wjob_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wjob *j = w->data;

	(void)loop;
	(void)revents;
	if (!j->exited) {
		wjob_kill(j, SIGKILL);
		return;
	}
	wjob_close(j, &j->out_io);
	wjob_close(j, &j->err_io);
	wjob_check(j);
}

/* wjob_exit_cb: the command exited.  Its stdin is of no more use; the
 * pipes get PIPE_GRACE to drain in case a child of it holds them. */
static void
wjob_exit_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct wjob *j = w->data;

	(void)revents;
	ev_child_stop(loop, w);
	j->exited = true;
	j->wstatus = w->rstatus;
	wjob_close(j, &j->in_io);
	ev_timer_stop(loop, &j->timer);
	ev_timer_set(&j->timer, PIPE_GRACE, 0);
	ev_timer_start(loop, &j->timer);
	wjob_check(j);
}

/* wjob_exec: in the child.  Its own process group, so a cancel reaches
 * everything it starts; default signal handling, which exec does not
 * restore for ignored or blocked signals. */
static void __attribute__((noreturn))
wjob_exec(struct worker *w, const char *idtext, int fds[3])
{
	sigset_t none;
	int i;

	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	for (i = 0; i < 3; i++)
		if (dup2(fds[i], i) < 0)
			_exit(126);
	setenv("JOBFS_JOB_ID", idtext, 1);
	setenv("JOBFS_JOB_TYPE", w->type, 1);
	execvp(w->argv[0], w->argv);
	dprintf(STDERR_FILENO, "jobctl: %s: %s\n", w->argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* wjob_start: run the command for one job, without waiting for anything:
 * every pipe is non-blocking and watched, and the exit is an ev_child. */
static void
wjob_start(struct worker *w, json_t *id, json_t *body)
{
	struct ev_loop *loop = w->s.loop;
	struct wjob *j = xcalloc(1, sizeof *j);
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int fds[3];
	char *idtext = ctl_text(id);

	j->w = w;
	j->id = json_incref(id);
	j->wstatus = 127 << 8;
	LIST_INSERT_HEAD(&w->jobs, j, entry);
	ev_child_init(&j->child, wjob_exit_cb, 0, 0);
	ev_timer_init(&j->timer, wjob_timer_cb, 0, 0);
	ev_io_init(&j->in_io, wjob_stdin_cb, -1, EV_WRITE);
	ev_io_init(&j->out_io, wjob_output_cb, -1, EV_READ);
	ev_io_init(&j->err_io, wjob_output_cb, -1, EV_READ);
	j->child.data = j->timer.data = j;
	j->in_io.data = j->out_io.data = j->err_io.data = j;
	json_dump_callback(body, buf_json_cb, &j->body, JSON_OUT);
	buf_append(&j->body, "\n", 1);

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
	    pipe2(err, O_CLOEXEC) < 0 || (j->pid = fork()) < 0) {
		/* Report it as the job's failure: the daemon needs an answer. */
		ctl_warn("cannot run %s: %s", w->argv[0], strerror(errno));
		buf_append_str(&j->err, strerror(errno));
		j->pid = 0;
		j->exited = true;
		for (int i = 0; i < 2; i++) {
			if (in[i] >= 0) close(in[i]);
			if (out[i] >= 0) close(out[i]);
			if (err[i] >= 0) close(err[i]);
		}
		free(idtext);
		wjob_check(j);
		return;
	}
	if (j->pid == 0) {
		fds[0] = in[0];
		fds[1] = out[1];
		fds[2] = err[1];
		wjob_exec(w, idtext, fds);
	}
	free(idtext);
	setpgid(j->pid, j->pid);	/* both sides, so kill(-pid) never races */
	close(in[0]);
	close(out[1]);
	close(err[1]);
	net_nonblock(in[1]);
	net_nonblock(out[0]);
	net_nonblock(err[0]);
	ev_io_set(&j->in_io, in[1], EV_WRITE);
	ev_io_set(&j->out_io, out[0], EV_READ);
	ev_io_set(&j->err_io, err[0], EV_READ);
	ev_io_start(loop, &j->in_io);
	ev_io_start(loop, &j->out_io);
	ev_io_start(loop, &j->err_io);
	ev_child_set(&j->child, j->pid, 0);
	ev_child_start(loop, &j->child);
}

/* worker_cancel: the daemon ended a job we run; stop the command and
 * stay silent about it. */
static void
worker_cancel(struct worker *w, json_t *id)
{
	struct wjob *j;

	LIST_FOREACH(j, &w->jobs, entry) {
		if (j->cancelled || !json_equal(j->id, id))
			continue;
		j->cancelled = true;
		wjob_kill(j, SIGTERM);
		if (!j->exited) {
			ev_timer_set(&j->timer, KILL_GRACE, 0);
			ev_timer_start(w->s.loop, &j->timer);
		}
		return;
	}
}

/* worker_stop: leave.  The daemon requeues whatever we were running, so
 * the commands are killed rather than waited for. */
static void
worker_stop(struct worker *w)
{
	struct wjob *j;

	session_close(&w->s);
	while ((j = LIST_FIRST(&w->jobs)) != NULL) {
		wjob_kill(j, SIGTERM);
		wjob_free(j);
	}
	ev_signal_stop(w->s.loop, &w->sigint);
	ev_signal_stop(w->s.loop, &w->sigterm);
}

/* worker_frame: jobs, pings and cancels from the daemon.  Anything else is
 * ignored: the daemon may add frames a worker need not understand. */
static int
worker_frame(struct session *s, const char *p, size_t len)
{
	struct worker *w = s->arg;
	const char *type;
	json_t *m, *id;
	int rc = CTL_RUNNING;

	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_RUNNING;
	type = json_string_value(json_object_get(m, "type"));
	id = json_object_get(m, "id");
	if (json_object_get(m, "error") != NULL) {
		/* Before any job, an error can only be about the join. */
		ctl_report(m);
		if (!w->joined)
			rc = CTL_FAIL;
	} else if (type == NULL)
		;
	else if (strcmp(type, "job") == 0) {
		w->joined = true;
		wjob_start(w, id != NULL ? id : json_null(),
		    json_object_get(m, "body") != NULL ?
		    json_object_get(m, "body") : json_null());
	} else if (strcmp(type, "ping") == 0)
		session_send(s, json_pack("{s:s}", "type", "pong"));
	else if (strcmp(type, "cancel") == 0 && id != NULL)
		worker_cancel(w, id);
	json_decref(m);
	return rc;
}

/* worker_signal_cb: SIGINT or SIGTERM: leave (worker_stop does the rest
 * once the loop returns). */
static void
worker_signal_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
	struct worker *w = sig->data;

	(void)loop;
	(void)revents;
	session_done(&w->s, CTL_OK);
}

/* cmd_work: join, then run a command per job until told to stop or the
 * daemon goes away. */
static int
cmd_work(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "capacity",  required_argument, NULL, 'c' },
		{ "heartbeat", required_argument, NULL, 'b' },
		{ "name",      required_argument, NULL, 'n' },
		{ "cancel",    no_argument,       NULL, 'C' },
		{ "help",      no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct worker w = { 0 };
	const char *name = NULL;
	long long heartbeat = 0;
	bool cancel = false;
	int c, rc, dash, nopts;
	json_t *m;

	/* Options end at "--"; what follows is the command, untouched. */
	for (dash = 1; dash < argc && strcmp(argv[dash], "--") != 0; dash++)
		;
	nopts = dash;
	while ((c = getopt_long(nopts, argv, dash < argc ? "h" : "+h", opts,
	    NULL)) != -1) {
		switch (c) {
		case 'c':
			if (ctl_number(optarg, 1, INT32_MAX, &w.capacity) < 0)
				return ctl_usage(e, false);
			break;
		case 'b':
			if (ctl_number(optarg, 1, INT32_MAX, &heartbeat) < 0)
				return ctl_usage(e, false);
			break;
		case 'n':
			name = optarg;
			break;
		case 'C':
			cancel = true;
			break;
		case 'h':
			return ctl_usage(e, true);
		default:
			return ctl_usage(e, false);
		}
	}
	if (dash < argc) {
		if (nopts - optind != 1 || dash + 1 >= argc)
			return ctl_usage(e, false);
		w.argv = argv + dash + 1;
	} else {
		if (argc - optind < 2)
			return ctl_usage(e, false);
		w.argv = argv + optind + 1;
	}
	w.type = argv[optind];

	m = json_pack("{s:s, s:s}", "type", "join", "job_type", w.type);
	if (m == NULL || (name != NULL && json_object_set_new(m, "worker",
	    json_string(name)) < 0)) {
		ctl_warn("the type or worker name is not valid UTF-8");
		json_decref(m);
		return CTL_USAGE;
	}
	if (w.capacity > 0)
		json_object_set_new(m, "capacity", json_integer(w.capacity));
	if (heartbeat > 0)
		json_object_set_new(m, "heartbeat", json_integer(heartbeat));
	if (cancel)
		json_object_set_new(m, "cancel", json_true());

	LIST_INIT(&w.jobs);
	if (session_open(&w.s, ctl, ctl->worker_port, &w) < 0) {
		json_decref(m);
		session_free(&w.s);
		return CTL_LOST;
	}
	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&w.sigint, worker_signal_cb, SIGINT);
	ev_signal_init(&w.sigterm, worker_signal_cb, SIGTERM);
	w.sigint.data = w.sigterm.data = &w;
	ev_signal_start(ctl->loop, &w.sigint);
	ev_signal_start(ctl->loop, &w.sigterm);
	w.s.frame = worker_frame;
	session_send(&w.s, m);
	rc = session_run(&w.s);
	worker_stop(&w);
	session_free(&w.s);
	return rc;
}

/* ----------------------------------------------------------------- main */

static const struct cmd_entry cmd_table[] = {
	{ "submit", "[--id ID] [--priority N] [--timeout MS] [--stream] "
	    "[--detach] [--worker NAME] TYPE [BODY | -]", cmd_submit },
	{ "work", "[--capacity N] [--heartbeat MS] [--name NAME] [--cancel] "
	    "TYPE -- COMMAND [ARG ...]", cmd_work },
	{ "status", "ID", cmd_status },
	{ "cancel", "ID", cmd_cancel },
	{ "stats", NULL, cmd_stats },
	{ "ping", "[-t MS]", cmd_ping },
	{ "publish", "CHANNEL BODY | -", cmd_publish },
	{ "subscribe", "[-n COUNT] CHANNEL ...", cmd_subscribe },
	{ "raw", "[--worker] [-n COUNT] [-t MS] [--unframed] [--dribble]",
	    cmd_raw },
};

static void
ctl_help(FILE *f)
{
	size_t i;

	fprintf(f, "usage: jobctl [-H host] [-m master-port] [-w worker-port] "
	    "command [args]\n       jobctl -h | --version\ncommands:\n");
	for (i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++)
		fprintf(f, "  %s%s%s\n", cmd_table[i].name,
		    cmd_table[i].usage != NULL ? " " : "",
		    cmd_table[i].usage != NULL ? cmd_table[i].usage : "");
}

/* main: global options, then the command named by the first argument;
 * the environment supplies defaults that options override. */
int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help",    no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl ctl = { "127.0.0.1", 9998, 9999, NULL };
	const struct cmd_entry *e = NULL;
	const char *env;
	char *name;
	size_t i;
	int c, rc;

	if ((env = getenv("JOBFS_HOST")) != NULL && *env != '\0')
		ctl.host = env;
	if ((env = getenv("JOBFS_MASTER_PORT")) != NULL && *env != '\0')
		ctl.master_port = ctl_port(env, "JOBFS_MASTER_PORT");
	if ((env = getenv("JOBFS_WORKER_PORT")) != NULL && *env != '\0')
		ctl.worker_port = ctl_port(env, "JOBFS_WORKER_PORT");
	while ((c = getopt_long(argc, argv, "+H:m:w:h", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			ctl.host = optarg;
			break;
		case 'm':
			ctl.master_port = ctl_port(optarg, "-m");
			break;
		case 'w':
			ctl.worker_port = ctl_port(optarg, "-w");
			break;
		case 'h':
			ctl_help(stdout);
			return CTL_OK;
		case 'V':
			printf("jobctl %s\n", JOBFS_VERSION);
			return CTL_OK;
		default:
			ctl_help(stderr);
			return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		ctl_help(stderr);
		return CTL_USAGE;
	}
	for (i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++)
		if (strcmp(argv[optind], cmd_table[i].name) == 0)
			e = &cmd_table[i];
	if (e == NULL) {
		ctl_warn("unknown command: %s", argv[optind]);
		ctl_help(stderr);
		return CTL_USAGE;
	}
	if ((ctl.loop = ev_default_loop(EVFLAG_AUTO)) == NULL)
		fatalx("cannot start libev");
	argc -= optind;
	argv += optind;
	optind = 0;		/* glibc: start the next getopt afresh */
	argv[0] = name = xprintf("jobctl %s", e->name);	/* for getopt's messages */
	rc = e->exec(&ctl, e, argc, argv);
	free(name);
	ev_loop_destroy(ctl.loop);
	return rc;
}
