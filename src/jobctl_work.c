/*
 * jobctl_work.c — jobctl work: join as a worker and run a command per job,
 * each in its own process group with its stdin, stdout and stderr on
 * non-blocking pipes, so that the worker keeps answering the daemon (pings,
 * cancels, more jobs) while commands run.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobctl.h"

#define CAPTURE_MAX	(16u << 20)	/* bytes kept of a command's stdout or stderr */
#define RESPONSE_MAX	(16u << 20)	/* the daemon's default --max-frame */
#define SHRUNK_MAX	65536		/* output kept in a result that was too large */
#define KILL_GRACE	5.0		/* seconds from SIGTERM to SIGKILL on cancel */
#define PIPE_GRACE	1.0		/* seconds to wait for a dead command's pipes */

struct work_conn;

/* One running command: its pipes, what it wrote, and how it ended. */
struct wjob {
	LIST_ENTRY(wjob) entry;
	struct work_conn	*w;
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

struct work_conn {
	struct session	 s;
	const char	*type;
	char		**argv;
	long long	 capacity;	/* 0: not asked for */
	bool		 cancel;	/* joined with "cancel":true */
	bool		 fail;		/* --fail: a failing command is a "fail"
					   report, not a response */
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
	struct work_conn *w = j->w;
	json_t *m;
	char *text;
	size_t max = SIZE_MAX;

	bool failed = !WIFEXITED(j->wstatus) || WEXITSTATUS(j->wstatus) != 0;

	while (!j->cancelled && w->s.fd >= 0) {
		m = json_pack("{s:s, s:o}", "type", w->fail && failed ? "fail" : "response",
		    "body", wjob_result(j, max));
		/* With cancels or several slots, a response must say which job
		 * it answers: a late one for a cancelled job is then dropped. */
		if (w->capacity > 1 || w->cancel)
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
wjob_exec(struct work_conn *w, const char *idtext, int fds[3])
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
wjob_start(struct work_conn *w, json_t *id, json_t *body)
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
worker_cancel(struct work_conn *w, json_t *id)
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
worker_stop(struct work_conn *w)
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
	struct work_conn *w = s->arg;
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
	struct work_conn *w = sig->data;

	(void)loop;
	(void)revents;
	session_done(&w->s, CTL_OK);
}

/* cmd_work: join, then run a command per job until told to stop or the
 * daemon goes away. */
int
cmd_work(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "capacity",  required_argument, NULL, 'c' },
		{ "heartbeat", required_argument, NULL, 'b' },
		{ "name",      required_argument, NULL, 'n' },
		{ "cancel",    no_argument,       NULL, 'C' },
		{ "fail",      no_argument,       NULL, 'F' },
		{ "help",      no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct work_conn w = { 0 };
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
		case 'F':
			w.fail = true;
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
	w.cancel = cancel;
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
