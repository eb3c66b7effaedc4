/*
 * jobctl_work.c — jobctl work: join as a worker and run a command per job,
 * each in its own process group with its stdin, stdout and stderr on
 * non-blocking pipes, so that the worker keeps answering the daemon (pings,
 * cancels, more jobs) while commands run.  The worker itself (joining,
 * pings, cancels, answers kept across a reconnect, the backoff) is
 * libjobfs's, run on jobctl's loop; this file runs the commands.
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

#include "cli/jobctl.h"

#define CAPTURE_MAX	(16u << 20)	/* bytes kept of a command's stdout or stderr */
#define SHRUNK_MAX	65536		/* output kept in a result that was too large */
#define LOG_MAX		65536		/* the stderr tail sent as the job's log */
#define PROGRESS_FD	3		/* --progress: the command's progress pipe */
#define PROGRESS_LINE	(1u << 20)	/* a longer progress line is sent in pieces */
#define KILL_GRACE	5.0		/* seconds from SIGTERM to SIGKILL on cancel */
#define PIPE_GRACE	1.0		/* seconds to wait for a dead command's pipes */

struct work_conn;

/* One running command: its pipes, what it wrote, and how it ended. */
struct wjob {
	LIST_ENTRY(wjob) entry;
	struct work_conn	*w;
	jfc_job		*job;		/* libjobfs's, until answered */
	pid_t		 pid;		/* also its process group */
	ev_child	 child;
	ev_io		 in_io, out_io, err_io;	/* fd -1: closed */
	ev_io		 prog_io;	/* --progress: fd PROGRESS_FD's other end */
	struct buf	 prog;		/* a progress line not ended yet */
	struct buf	 tail;		/* the last LOG_MAX bytes of stderr (or
					   up to twice that, until trimmed) */
	ev_timer	 timer;		/* SIGKILL after cancel; pipe grace after exit */
	struct buf	 body;		/* still to write to its stdin */
	struct buf	 out, err;
	bool		 out_trunc, err_trunc;
	bool		 exited;
	bool		 cancelled;
	int		 wstatus;
};

struct work_conn {
	struct ev_loop	*loop;
	jfc_worker	*worker;
	const char	*type;
	char		**argv;
	long long	 capacity;	/* 0: not asked for */
	bool		 fail;		/* --fail: a failing command is a "fail"
					   report, not a response */
	bool		 progress;	/* --progress: fd PROGRESS_FD's lines are
					   partial results */
	ev_signal	 sigint, sigterm;
	LIST_HEAD(, wjob) jobs;
};

static void
wjob_close(struct wjob *j, ev_io *io)
{
	if (io->fd < 0)
		return;
	ev_io_stop(j->w->loop, io);
	close(io->fd);
	ev_io_set(io, -1, io->events);
}

static void
wjob_free(struct wjob *j)
{
	struct ev_loop *loop = j->w->loop;

	ev_child_stop(loop, &j->child);
	ev_timer_stop(loop, &j->timer);
	wjob_close(j, &j->in_io);
	wjob_close(j, &j->out_io);
	wjob_close(j, &j->err_io);
	wjob_close(j, &j->prog_io);
	buf_free(&j->body);
	buf_free(&j->out);
	buf_free(&j->err);
	buf_free(&j->prog);
	buf_free(&j->tail);
	if (j->job != NULL)
		jfc_job_drop(j->job);
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

/* wjob_log: the job's log, what the daemon keeps of what the command
 * printed: the last LOG_MAX bytes of its stderr, from the start of a
 * UTF-8 character. */
static json_t *
wjob_log(struct wjob *j)
{
	size_t n = buf_used(&j->tail), cut = n > LOG_MAX ? n - LOG_MAX : 0;

	while (cut < n && cut > 0 && (buf_head(&j->tail)[cut] & 0xc0) == 0x80)
		cut++;
	buf_consume(&j->tail, cut);
	return wjob_string(&j->tail, SIZE_MAX);
}

/* tail_add: stderr bytes into the log's tail, trimmed to LOG_MAX once it
 * holds twice that, so that each byte is moved at most once more. */
static void
tail_add(struct wjob *j, const char *p, size_t n)
{
	if (n >= LOG_MAX) {
		j->tail.off = j->tail.len = 0;
		p += n - LOG_MAX;
		n = LOG_MAX;
	}
	buf_append(&j->tail, p, n);
	if (buf_used(&j->tail) > 2 * LOG_MAX) {
		buf_consume(&j->tail, buf_used(&j->tail) - LOG_MAX);
		buf_compact(&j->tail);
	}
}

/* wjob_finish: the command is gone and its pipes are drained: answer
 * (libjobfs drops the answer of a cancelled job, and keeps it for the
 * next connection while the daemon is away).  An answer over the
 * daemon's frame limit is sent again with its output cut. */
static void
wjob_finish(struct wjob *j)
{
	struct work_conn *w = j->w;
	size_t max = SIZE_MAX;
	bool failed = !WIFEXITED(j->wstatus) || WEXITSTATUS(j->wstatus) != 0;
	char *body, *log;
	json_t *v;
	int rc;

	for (;;) {
		body = json_dumps(v = wjob_result(j, max), JSON_OUT);
		json_decref(v);
		log = NULL;
		if (buf_used(&j->tail) > 0) {
			log = json_string_value(v = wjob_log(j)) != NULL ?
			    xstrdup(json_string_value(v)) : NULL;
			json_decref(v);
		}
		rc = body != NULL ? jfc_job_answer(j->job, w->fail && failed,
		    body, log) : JFC_ETOOBIG;
		free(body);
		free(log);
		if (rc != JFC_ETOOBIG)
			break;
		if (max == SHRUNK_MAX)
			fatalx("cannot shrink a response");
		max = SHRUNK_MAX;
	}
	j->job = NULL;		/* answered: libjobfs freed it */
	wjob_free(j);
}

/* wjob_check: a job is over when the command has exited and both output
 * pipes are closed: only then is its output complete. */
static void
wjob_check(struct wjob *j)
{
	if (j->exited && j->out_io.fd < 0 && j->err_io.fd < 0 && j->prog_io.fd < 0)
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
	if (!is_out)
		tail_add(j, chunk, (size_t)n);
}

/* wjob_partial: one progress line (without its newline) as a partial
 * result: JSON if it parses, else a string.  Only on the connection the
 * job came on, and only while it runs: the daemon would refuse it else. */
static void
wjob_partial(struct wjob *j, const char *p, size_t n)
{
	struct buf line = { 0 };
	json_t *body;
	char *text;

	if (j->cancelled)
		return;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	body = json_loadb(n > 0 ? p : "", n, JSON_DECODE_ANY, NULL);
	if (body == NULL) {
		buf_append(&line, p, n);
		body = wjob_string(&line, SIZE_MAX);
		buf_free(&line);
	}
	if ((text = json_dumps(body, JSON_OUT)) != NULL)
		jfc_job_partial(j->job, text);
	free(text);
	json_decref(body);
}

/* wjob_progress_cb: the command's progress pipe: each line it writes is a
 * partial result; what is left unended when it closes is one too. */
static void
wjob_progress_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct wjob *j = w->data;
	char chunk[READ_CHUNK];
	char *nl;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = read(w->fd, chunk, sizeof chunk);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (buf_used(&j->prog) > 0)
			wjob_partial(j, buf_head(&j->prog), buf_used(&j->prog));
		buf_free(&j->prog);
		wjob_close(j, w);
		wjob_check(j);
		return;
	}
	buf_append(&j->prog, chunk, (size_t)n);
	while ((nl = memchr(buf_head(&j->prog), '\n', buf_used(&j->prog))) != NULL) {
		wjob_partial(j, buf_head(&j->prog), (size_t)(nl - buf_head(&j->prog)));
		buf_consume(&j->prog, (size_t)(nl - buf_head(&j->prog)) + 1);
	}
	if (buf_used(&j->prog) >= PROGRESS_LINE) {
		wjob_partial(j, buf_head(&j->prog), buf_used(&j->prog));
		buf_consume(&j->prog, buf_used(&j->prog));
	}
	buf_compact(&j->prog);
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
	wjob_close(j, &j->prog_io);
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
wjob_exec(struct work_conn *w, const char *idtext, int fds[4])
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
	/* --progress: its pipe as fd PROGRESS_FD, open across exec (dup2 onto
	 * itself would keep close-on-exec). */
	if (fds[3] >= 0) {
		if (fds[3] == PROGRESS_FD ? fcntl(PROGRESS_FD, F_SETFD, 0) < 0 :
		    dup2(fds[3], PROGRESS_FD) < 0)
			_exit(126);
		setenv("JOBFS_PROGRESS_FD", "3", 1);
	}
	setenv("JOBFS_JOB_ID", idtext, 1);
	setenv("JOBFS_JOB_TYPE", w->type, 1);
	execvp(w->argv[0], w->argv);
	dprintf(STDERR_FILENO, "jobctl: %s: %s\n", w->argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* wjob_start: run the command for one job, without waiting for anything:
 * every pipe is non-blocking and watched, and the exit is an ev_child. */
static void
wjob_start(struct work_conn *w, jfc_job *job)
{
	struct ev_loop *loop = w->loop;
	struct wjob *j = xcalloc(1, sizeof *j);
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int prog[2] = { -1, -1 };
	int fds[4];
	const char *idtext = jfc_job_id(job);

	j->w = w;
	j->job = job;
	jfc_job_set_data(job, j);
	j->wstatus = 127 << 8;
	LIST_INSERT_HEAD(&w->jobs, j, entry);
	ev_child_init(&j->child, wjob_exit_cb, 0, 0);
	ev_timer_init(&j->timer, wjob_timer_cb, 0, 0);
	ev_io_init(&j->in_io, wjob_stdin_cb, -1, EV_WRITE);
	ev_io_init(&j->out_io, wjob_output_cb, -1, EV_READ);
	ev_io_init(&j->err_io, wjob_output_cb, -1, EV_READ);
	ev_io_init(&j->prog_io, wjob_progress_cb, -1, EV_READ);
	j->child.data = j->timer.data = j;
	j->in_io.data = j->out_io.data = j->err_io.data = j->prog_io.data = j;
	buf_append_str(&j->body, jfc_job_body(job));
	buf_append(&j->body, "\n", 1);

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
	    pipe2(err, O_CLOEXEC) < 0 ||
	    (w->progress && pipe2(prog, O_CLOEXEC) < 0) || (j->pid = fork()) < 0) {
		/* Report it as the job's failure: the daemon needs an answer. */
		ctl_warn("cannot run %s: %s", w->argv[0], strerror(errno));
		buf_append_str(&j->err, strerror(errno));
		j->pid = 0;
		j->exited = true;
		for (int i = 0; i < 2; i++) {
			if (in[i] >= 0) close(in[i]);
			if (out[i] >= 0) close(out[i]);
			if (err[i] >= 0) close(err[i]);
			if (prog[i] >= 0) close(prog[i]);
		}
		wjob_check(j);
		return;
	}
	if (j->pid == 0) {
		fds[0] = in[0];
		fds[1] = out[1];
		fds[2] = err[1];
		fds[3] = prog[1];
		wjob_exec(w, idtext, fds);
	}
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
	if (prog[0] >= 0) {
		close(prog[1]);
		net_nonblock(prog[0]);
		ev_io_set(&j->prog_io, prog[0], EV_READ);
		ev_io_start(loop, &j->prog_io);
	}
	ev_child_set(&j->child, j->pid, 0);
	ev_child_start(loop, &j->child);
}

/* work_job: libjobfs hands over a job: run its command. */
static void
work_job(jfc_job *job, void *arg)
{
	wjob_start(arg, job);
}

/* work_cancel: the daemon ended a job we run; stop the command and stay
 * silent about it. */
static void
work_cancel(jfc_job *job, void *arg)
{
	struct wjob *j = jfc_job_data(job);

	(void)arg;
	if (j == NULL || j->cancelled)
		return;
	j->cancelled = true;
	wjob_kill(j, SIGTERM);
	if (!j->exited) {
		ev_timer_set(&j->timer, KILL_GRACE, 0);
		ev_timer_start(j->w->loop, &j->timer);
	}
}

/* work_error: an error frame the worker cannot place (before any job, a
 * refused join: libjobfs then ends the run). */
static void
work_error(const char *frame, void *arg)
{
	json_t *m = ctl_parse(frame, strlen(frame));

	(void)arg;
	if (m != NULL)
		ctl_report(m);
	json_decref(m);
}

/* worker_stop: leave.  The daemon requeues whatever we were running, so
 * the commands are killed rather than waited for. */
static void
worker_stop(struct work_conn *w)
{
	struct wjob *j;

	while ((j = LIST_FIRST(&w->jobs)) != NULL) {
		wjob_kill(j, SIGTERM);
		wjob_free(j);
	}
	ev_signal_stop(w->loop, &w->sigint);
	ev_signal_stop(w->loop, &w->sigterm);
	jfc_worker_free(w->worker);
}

/* worker_signal_cb: SIGINT or SIGTERM: leave (worker_stop does the rest
 * once the loop returns). */
static void
worker_signal_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
	struct work_conn *w = sig->data;

	(void)loop;
	(void)revents;
	jfc_worker_stop(w->worker, 0);
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
		{ "progress",  no_argument,       NULL, 'P' },
		{ "retry-for", required_argument, NULL, 'r' },
		{ "no-reconnect", no_argument,    NULL, 'N' },
		{ "help",      no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct work_conn w = { 0 };
	const char *name = NULL;
	long long heartbeat = 0, retry_for = -1;
	bool cancel = false;
	int c, rc, dash, nopts;

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
		case 'P':
			w.progress = true;
			break;
		case 'r':
			if (ctl_number(optarg, 1, INT32_MAX, &retry_for) < 0)
				return ctl_usage(e, false);
			break;
		case 'N':
			retry_for = 0;
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

	LIST_INIT(&w.jobs);
	w.loop = ctl->loop;
	w.worker = jfc_worker_new(ctl->client, w.type);
	if (name != NULL)
		jfc_worker_set_name(w.worker, name);
	if (w.capacity > 0)
		jfc_worker_set_capacity(w.worker, (int)w.capacity);
	if (heartbeat > 0)
		jfc_worker_set_heartbeat(w.worker, (int)heartbeat);
	jfc_worker_set_retry_for(w.worker, (double)retry_for);
	jfc_worker_on_job(w.worker, work_job, &w);
	if (cancel)
		jfc_worker_on_cancel(w.worker, work_cancel);
	jfc_worker_on_error(w.worker, work_error);
	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&w.sigint, worker_signal_cb, SIGINT);
	ev_signal_init(&w.sigterm, worker_signal_cb, SIGTERM);
	w.sigint.data = w.sigterm.data = &w;
	if ((rc = jfc_worker_start(w.worker, ctl->loop)) == JFC_ERR) {
		worker_stop(&w);
		return CTL_USAGE;	/* the type or name is not UTF-8 */
	}
	if (rc == 0) {
		ev_signal_start(ctl->loop, &w.sigint);
		ev_signal_start(ctl->loop, &w.sigterm);
		ev_run(ctl->loop, 0);
		rc = jfc_worker_result(w.worker);
	}
	worker_stop(&w);
	return rc == 0 ? CTL_OK : rc == JFC_ERR ? CTL_FAIL : rc == 1 ?
	    CTL_FAIL : CTL_LOST;
}
