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

#include "cli/jobctl.h"

#define CAPTURE_MAX	(16u << 20)	/* bytes kept of a command's stdout or stderr */
#define RESPONSE_MAX	(16u << 20)	/* the daemon's default --max-frame */
#define SHRUNK_MAX	65536		/* output kept in a result that was too large */
#define LOG_MAX		65536		/* the stderr tail sent as the job's log */
#define PROGRESS_FD	3		/* --progress: the command's progress pipe */
#define PROGRESS_LINE	(1u << 20)	/* a longer progress line is sent in pieces */
#define KILL_GRACE	5.0		/* seconds from SIGTERM to SIGKILL on cancel */
#define PIPE_GRACE	1.0		/* seconds to wait for a dead command's pipes */
#define RETRY_FIRST	0.1		/* seconds before the first reconnect */
#define RETRY_CAP	2.0		/* the longest wait between two tries */
#define RETRY_STABLE	1.0		/* a connection that lived this long
					   resets the backoff */

struct work_conn;

/* One running command: its pipes, what it wrote, and how it ended. */
struct wjob {
	LIST_ENTRY(wjob) entry;
	struct work_conn	*w;
	json_t		*id;
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
	unsigned	 gen;		/* the connection it came on (w->gen) */
	char		*answer;	/* its result frame, kept while offline */
};

struct work_conn {
	struct session	 s;
	const char	*type;
	char		**argv;
	long long	 capacity;	/* 0: not asked for */
	bool		 cancel;	/* joined with "cancel":true */
	bool		 fail;		/* --fail: a failing command is a "fail"
					   report, not a response */
	bool		 progress;	/* --progress: fd PROGRESS_FD's lines are
					   partial results */
	bool		 joined;	/* a job came: the join was accepted */
	ev_signal	 sigint, sigterm;
	LIST_HEAD(, wjob) jobs;

	/* Reconnecting: after a loss, tries with a growing, jittered wait. */
	struct ctl	*ctl;
	json_t		*join;		/* sent again on every connection */
	double		 retry_for;	/* seconds; < 0: for ever; 0: never */
	unsigned	 gen;		/* connections made so far */
	unsigned	 tries;		/* failed tries since the loss */
	double		 lost_at;	/* when the outage began */
	double		 up_at;		/* when the connection was made */
	ev_timer	 retry;
	char		*drop;		/* why the daemon is dropping us */
	json_t		*sent;		/* ids of results of an earlier connection,
					   sent on this one, not yet judged */
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
	wjob_close(j, &j->prog_io);
	buf_free(&j->body);
	buf_free(&j->out);
	buf_free(&j->err);
	buf_free(&j->prog);
	buf_free(&j->tail);
	free(j->answer);
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

/* sent_index: where id is in w->sent, or -1. */
static int
sent_index(struct work_conn *w, json_t *id)
{
	size_t i;
	json_t *v;

	json_array_foreach(w->sent, i, v)
		if (json_equal(v, id))
			return (int)i;
	return -1;
}

/* wjob_send_late: send the kept answer of a job of an earlier connection.  Its
 * id says which job it is; the daemon takes it only if it has given that
 * job to this connection again (then a job frame with that id crosses it,
 * and worker_frame does not run the job twice), else it answers an error
 * with that id, which worker_frame logs. */
static void
wjob_send_late(struct wjob *j)
{
	struct work_conn *w = j->w;

	session_frame(&w->s, j->answer, strlen(j->answer));
	json_array_append(w->sent, j->id);
	wjob_free(j);
}

/* wjob_finish: the command is gone and its pipes are drained: answer,
 * unless the job was cancelled (the daemon wants no answer then).  While
 * the daemon is away, the answer is kept for the next connection. */
static void
wjob_finish(struct wjob *j)
{
	struct work_conn *w = j->w;
	json_t *m;
	char *text;
	size_t max = SIZE_MAX;
	bool late = j->gen != w->gen || w->s.fd < 0;

	bool failed = !WIFEXITED(j->wstatus) || WEXITSTATUS(j->wstatus) != 0;

	while (!j->cancelled) {
		m = json_pack("{s:s, s:o}", "type", w->fail && failed ? "fail" : "response",
		    "body", wjob_result(j, max));
		/* With cancels or several slots, a response must say which job
		 * it answers: a late one for a cancelled job is then dropped.
		 * So must one of an earlier connection. */
		if (w->capacity > 1 || w->cancel || late)
			json_object_set(m, "id", j->id);
		if (buf_used(&j->tail) > 0)
			json_object_set_new(m, "log", wjob_log(j));
		text = json_dumps(m, JSON_OUT);
		json_decref(m);
		if (text == NULL || strlen(text) > RESPONSE_MAX) {
			free(text);
			if (max == SHRUNK_MAX)
				fatalx("cannot shrink a response");
			max = SHRUNK_MAX;
			continue;
		}
		if (late && json_is_null(j->id)) {
			free(text);	/* nothing could say which job it answers */
			break;
		}
		if (!late) {
			session_frame(&w->s, text, strlen(text));
			free(text);
			break;
		}
		j->answer = text;
		ev_timer_stop(w->s.loop, &j->timer);
		if (w->s.fd >= 0)
			wjob_send_late(j);
		return;		/* kept until the daemon is back */
	}
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
	struct work_conn *w = j->w;
	struct buf line = { 0 };
	json_t *m, *body;

	if (j->cancelled || j->gen != w->gen || w->s.fd < 0)
		return;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	body = json_loadb(n > 0 ? p : "", n, JSON_DECODE_ANY, NULL);
	if (body == NULL) {
		buf_append(&line, p, n);
		body = wjob_string(&line, SIZE_MAX);
		buf_free(&line);
	}
	m = json_pack("{s:s, s:o}", "type", "partial", "body", body);
	if (!json_is_null(j->id))
		json_object_set(m, "id", j->id);
	session_send(&w->s, m);
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
wjob_start(struct work_conn *w, json_t *id, json_t *body)
{
	struct ev_loop *loop = w->s.loop;
	struct wjob *j = xcalloc(1, sizeof *j);
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int prog[2] = { -1, -1 };
	int fds[4];
	char *idtext = ctl_text(id);

	j->w = w;
	j->gen = w->gen;
	j->id = json_incref(id);
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
	json_dump_callback(body, buf_json_cb, &j->body, JSON_OUT);
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
		free(idtext);
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
	if (prog[0] >= 0) {
		close(prog[1]);
		net_nonblock(prog[0]);
		ev_io_set(&j->prog_io, prog[0], EV_READ);
		ev_io_start(loop, &j->prog_io);
	}
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
	ev_timer_stop(w->s.loop, &w->retry);
	while ((j = LIST_FIRST(&w->jobs)) != NULL) {
		wjob_kill(j, SIGTERM);
		wjob_free(j);
	}
	ev_signal_stop(w->s.loop, &w->sigint);
	ev_signal_stop(w->s.loop, &w->sigterm);
}

/* wjob_find: the command of an earlier connection still running job id. */
static struct wjob *
wjob_find(struct work_conn *w, json_t *id)
{
	struct wjob *j;

	LIST_FOREACH(j, &w->jobs, entry)
		if (j->gen != w->gen && !j->cancelled && j->answer == NULL &&
		    json_equal(j->id, id))
			return j;
	return NULL;
}

/* worker_frame: jobs, pings and cancels from the daemon.  Anything else is
 * ignored: the daemon may add frames a worker need not understand. */
static int
worker_frame(struct session *s, const char *p, size_t len)
{
	struct work_conn *w = s->arg;
	const char *type;
	json_t *m, *id;
	struct wjob *j;
	char *idtext;
	int rc = CTL_RUNNING, i;

	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_RUNNING;
	type = json_string_value(json_object_get(m, "type"));
	id = json_object_get(m, "id");
	if (json_object_get(m, "error") != NULL && id != NULL &&
	    (i = sent_index(w, id)) >= 0) {
		/* A result of an earlier connection that does not count: the
		 * job went to another worker, or runs again. */
		idtext = ctl_text(id);
		ctl_warn("the result of job %s from before the reconnect was "
		    "not taken (%s); the daemon runs it again", idtext,
		    json_string_value(json_object_get(m, "error")) ?
		    json_string_value(json_object_get(m, "error")) : "error");
		free(idtext);
		json_array_remove(w->sent, (size_t)i);
	} else if (json_object_get(m, "error") != NULL) {
		/* Before any job, an error can only be about the join; but
		 * auth_failed is a token reload dropping us (the close
		 * follows, and the reconnect reads the token file again). */
		const char *code = json_string_value(json_object_get(m, "error"));
		const char *reason = json_string_value(json_object_get(m, "reason"));

		if (w->retry_for != 0 && code != NULL &&
		    strcmp(code, "auth_failed") == 0) {
			free(w->drop);	/* said in the line of the loss */
			w->drop = xprintf("%s: %s", code, reason ? reason : "");
		} else {
			ctl_report(m);
			if (!w->joined)
				rc = CTL_FAIL;
		}
	} else if (type == NULL)
		;
	else if (strcmp(type, "job") == 0) {
		w->joined = true;
		if (id != NULL && (i = sent_index(w, id)) >= 0) {
			/* Given back to us before our kept result reached the
			 * daemon: that result answers it. */
			json_array_remove(w->sent, (size_t)i);
		} else if (id != NULL && (j = wjob_find(w, id)) != NULL)
			j->gen = w->gen;	/* still running: it answers this one */
		else
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

static int worker_lost(struct session *, const char *);

/* worker_up: a connection is made: join as before, then send the kept
 * answers of jobs whose commands ended while the daemon was away. */
static void
worker_up(struct work_conn *w)
{
	struct wjob *j, *next;

	w->gen++;
	w->up_at = ev_now(w->s.loop);
	w->s.frame = worker_frame;
	w->s.lost = worker_lost;
	json_array_clear(w->sent);
	session_send(&w->s, json_incref(w->join));
	for (j = LIST_FIRST(&w->jobs); j != NULL; j = next) {
		next = LIST_NEXT(j, entry);
		if (j->answer != NULL)
			wjob_send_late(j);
	}
}

/* worker_wait: arm the next try: RETRY_FIRST doubling up to RETRY_CAP,
 * each wait drawn from its upper half so that a fleet does not come back
 * in step. */
static void
worker_wait(struct work_conn *w)
{
	double d = RETRY_FIRST;
	unsigned i;

	for (i = 0; i < w->tries && d < RETRY_CAP; i++)
		d *= 2;
	if (d > RETRY_CAP)
		d = RETRY_CAP;
	d *= 0.5 + 0.5 * ((double)random() / RAND_MAX);
	ev_timer_set(&w->retry, d, 0);
	ev_timer_start(w->s.loop, &w->retry);
}

/* worker_retry_cb: one try.  The token file is read again (it may have
 * been rotated); a token the daemon refuses ends the worker, as does an
 * outage longer than --retry-for; anything else is tried again. */
static void
worker_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct work_conn *w = t->data;
	struct ctl *ctl = w->ctl;
	char why[300];
	char *tok;
	int rc = -1;

	(void)revents;
	ctl_warn_capture(why, sizeof why);
	if (ctl->token_file != NULL && (tok = ctl_read_token(ctl->token_file)) != NULL) {
		free(ctl->token);
		ctl->token = tok;
	}
	session_free(&w->s);
	rc = session_open(&w->s, ctl, ctl->worker_port, w);
	ctl_warn_capture(NULL, 0);
	w->tries++;
	if (rc == 0) {
		ctl_warn("reconnected after %u %s (%.1f s)", w->tries,
		    w->tries == 1 ? "try" : "tries", ev_now(loop) - w->lost_at);
		w->tries = 0;
		worker_up(w);
		return;
	}
	session_close(&w->s);
	if (rc == SESSION_REFUSED) {
		ctl_warn("%s", why);
		session_done(&w->s, CTL_LOST);
		return;
	}
	if (w->retry_for > 0 && ev_now(loop) - w->lost_at >= w->retry_for) {
		ctl_warn("gave up reconnecting after %u tries (%.0f s): %s",
		    w->tries, ev_now(loop) - w->lost_at, why);
		session_done(&w->s, CTL_LOST);
		return;
	}
	worker_wait(w);
}

/* worker_lost: the daemon went away.  Commands go on running; their
 * answers wait for the next connection.  One line says so. */
static int
worker_lost(struct session *s, const char *why)
{
	struct work_conn *w = s->arg;

	if (w->retry_for == 0) {
		ctl_warn("connection lost: %s", why);
		return CTL_LOST;
	}
	ctl_warn("connection lost (%s); reconnecting", w->drop ? w->drop : why);
	free(w->drop);
	w->drop = NULL;
	w->lost_at = ev_now(s->loop);
	/* A connection that dropped at once (say, the daemon refuses us at
	 * its limit) keeps the backoff growing. */
	if (w->lost_at - w->up_at >= RETRY_STABLE)
		w->tries = 0;
	worker_wait(w);
	return CTL_RUNNING;
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
	char why[300];
	long long heartbeat = 0, retry_for = -1;
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
	w.ctl = ctl;
	w.join = m;
	w.retry_for = (double)retry_for;
	w.sent = json_array();
	srandom((unsigned)getpid() ^ (unsigned)(ev_time() * 1e6));
	ev_timer_init(&w.retry, worker_retry_cb, 0, 0);
	w.retry.data = &w;
	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&w.sigint, worker_signal_cb, SIGINT);
	ev_signal_init(&w.sigterm, worker_signal_cb, SIGTERM);
	w.sigint.data = w.sigterm.data = &w;
	ctl_warn_capture(why, sizeof why);
	c = session_open(&w.s, ctl, ctl->worker_port, &w);
	ctl_warn_capture(NULL, 0);
	if (c < 0) {
		/* The daemon may start after us (boot order): wait for it,
		 * unless the token is wrong or reconnecting is off. */
		if (retry_for == 0 || c == SESSION_REFUSED) {
			ctl_warn("%s", why);
			rc = CTL_LOST;
			goto out;
		}
		session_close(&w.s);
		w.s.arg = &w;
		ctl_warn("%s; reconnecting", why);
		w.lost_at = ev_now(ctl->loop);
		w.tries = 1;
		worker_wait(&w);
	} else
		worker_up(&w);
	ev_signal_start(ctl->loop, &w.sigint);
	ev_signal_start(ctl->loop, &w.sigterm);
	rc = session_run(&w.s);
out:
	worker_stop(&w);
	session_free(&w.s);
	json_decref(w.join);
	json_decref(w.sent);
	free(w.drop);
	return rc;
}
