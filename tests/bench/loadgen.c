/* loadgen: drives a job broker with M masters (K jobs outstanding each) and W
 * echo workers, checks every reply, and reports throughput and latency.
 *
 *   loadgen [--system gloom|beanstalk|gearman] [-M n] [-K n] [-W n] [-N n]
 *           [-S bytes] [--host A] [--master-port P] [--worker-port Q]
 *           [--fork-workers] [--hold --pid PID] [--timeout S] [--label L]
 *           [--fill --pid PID] [--drain]
 *
 * gloom speaks the jobfs wire protocol (also what relay forwards). Masters
 * and workers share one libev loop in one process by default; --fork-workers
 * moves the workers to a child process running its own loop (see README for
 * which measured better). beanstalk runs the same way over beanstalkd's text
 * protocol; gearman uses libgearman's blocking API in forked processes (see
 * gearman.c for why).
 *
 * --hold is the queue-memory mode: masters submit all N jobs with no worker
 * connected, the server's RSS is read once it has swallowed them, then the
 * workers connect and the drain is timed.
 *
 * --fill (gloom only) submits N detached jobs with no worker, waits until
 * the server has swallowed them, and exits leaving them queued: it loads a
 * daemon for the restart row.  Its rate is of the submission alone.
 *
 * --drain (gloom only) connects only the W workers and times them from their
 * join to the N-th job answered: it drains jobs left queued by --fill (the
 * cluster benchmark's bulk shape, whose add and drain are measured apart).
 *
 * --tree-write times one process writing N job lines to one open handle of
 * a jobfs queue file.
 *
 * Output: one "RESULT key=value ..." line for scripts, then a human line.
 * Exit status: 0 all jobs answered correctly, 1 errors or failure. */
#include "loadgen.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct lg_opts opt = {
	.M = 4, .K = 64, .W = 8, .N = 200000, .S = 100, .sys = SYS_GLOOM,
	.host = "127.0.0.1", .mport = 9998, .wport = 9999, .timeout = 300,
	.depth = 8,
};
struct lg_stats *st;

/* ---- shared bookkeeping ---- */

void lg_error(const char *fmt, ...)
{
	uint64_t n = __atomic_add_fetch(&st->errors, 1, __ATOMIC_RELAXED);
	if (n > 5)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "loadgen: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int job_claim(int m, uint64_t *idx, uint64_t t)
{
	uint64_t i = __atomic_fetch_add(&st->next, 1, __ATOMIC_RELAXED);
	if (i >= opt.N)
		return 0;
	st->owner[i] = (uint16_t)(m + 1);
	st->sent_ns[i] = t;
	*idx = i;
	return 1;
}

int job_answer(int m, uint64_t idx, const char *body, size_t n, uint64_t t)
{
	if (idx >= opt.N || st->owner[idx] == 0 || st->owner[idx] == OWNER_DONE) {
		lg_error("reply for job %llu which is not outstanding",
			 (unsigned long long)idx);
		return 0;
	}
	if (st->owner[idx] != m + 1) {
		lg_error("reply for job %llu reached master %d, sent by master %d",
			 (unsigned long long)idx, m, st->owner[idx] - 1);
		return 0;
	}
	st->owner[idx] = OWNER_DONE;
	st->lat_ns[idx] = t - st->sent_ns[idx];
	uint64_t done = __atomic_add_fetch(&st->done, 1, __ATOMIC_RELAXED);
	if (done == opt.N)
		st->t_end = t;
	if (!body) /* the job ended in an error the caller has reported */
		return 0;
	if (!body_check(idx, opt.S, body, n)) {
		lg_error("job %llu: body differs from the one sent (%zu bytes: %.40s)",
			 (unsigned long long)idx, n, body);
		return 0;
	}
	return 1;
}

/* Bytes waiting unread in the server's receive queues on `port`, from
 * /proc/net/tcp: the server has not yet seen what we sent while this is
 * non-zero, so its RSS would not count those jobs yet. */
static long server_rxq(int port)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	long sum = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		unsigned lport, st_, txq, rxq;
		if (sscanf(line, " %*d: %*8x:%x %*8x:%*x %x %x:%x", &lport, &st_,
			   &txq, &rxq) == 4 && (int)lport == port && st_ == 1)
			sum += rxq;
	}
	fclose(f);
	return sum;
}

long rss_settle(int pid)
{
	long prev = -2, rss = -1;
	int stable = 0;
	if (pid <= 0)
		return -1;
	/* Stable = within 64 KiB for 3 samples 100 ms apart; give up at 15 s. */
	for (int i = 0; i < 150 && stable < 3; i++) {
		usleep(100000);
		rss = rss_kb(pid);
		if (rss < 0)
			return -1;
		long d = rss - prev;
		if (d < 64 && d > -64 && server_rxq(opt.mport) == 0)
			stable++;
		else
			stable = 0;
		prev = rss;
	}
	return rss;
}

/* ---- a minimal JSON object scanner: finds the spans of top-level values.
 * Only what the replies need; it validates structure, not every escape. */

static const char *skip_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

static const char *skip_string(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *skip_value(const char *p, const char *e, int depth)
{
	if (p >= e || depth > 64)
		return NULL;
	if (*p == '"')
		return skip_string(p, e);
	if (*p != '{' && *p != '[') {
		while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' &&
		       *p != '\n' && *p != '\r' && *p != '\t')
			p++;
		return p;
	}
	char close = *p == '{' ? '}' : ']';
	p = skip_ws(p + 1, e);
	if (p < e && *p == close)
		return p + 1;
	for (;;) {
		if (close == '}') {
			if (p >= e || *p != '"' || !(p = skip_string(p, e)))
				return NULL;
			p = skip_ws(p, e);
			if (p >= e || *p != ':')
				return NULL;
			p = skip_ws(p + 1, e);
		}
		if (!(p = skip_value(p, e, depth + 1)))
			return NULL;
		p = skip_ws(p, e);
		if (p < e && *p == close)
			return p + 1;
		if (p >= e || *p != ',')
			return NULL;
		p = skip_ws(p + 1, e);
	}
}

struct span {
	const char *p;
	size_t n;
};

struct msg {
	struct span type, id, body, error;
};

static int key_is(const char *k, size_t kn, const char *want)
{
	return kn == strlen(want) && memcmp(k, want, kn) == 0;
}

/* Fills m with the spans of the keys we care about; 0 if not an object. */
static int scan_msg(const char *p, size_t n, struct msg *m)
{
	const char *e = p + n;
	memset(m, 0, sizeof *m);
	p = skip_ws(p, e);
	if (p >= e || *p != '{')
		return 0;
	p = skip_ws(p + 1, e);
	if (p < e && *p == '}')
		return 1;
	for (;;) {
		const char *k = p + 1, *ke;
		if (p >= e || *p != '"' || !(ke = skip_string(p, e)))
			return 0;
		p = skip_ws(ke, e);
		if (p >= e || *p != ':')
			return 0;
		const char *v = skip_ws(p + 1, e), *ve = skip_value(v, e, 0);
		if (!ve)
			return 0;
		size_t kn = (size_t)(ke - 1 - k);
		struct span s = {v, (size_t)(ve - v)};
		if (key_is(k, kn, "id"))
			m->id = s;
		else if (key_is(k, kn, "body"))
			m->body = s;
		else if (key_is(k, kn, "type"))
			m->type = s;
		else if (key_is(k, kn, "error"))
			m->error = s;
		p = skip_ws(ve, e);
		if (p < e && *p == '}')
			return 1;
		if (p >= e || *p != ',')
			return 0;
		p = skip_ws(p + 1, e);
	}
}

/* Job index from a wire id: the integer we sent minus id_base. A string id
 * is a protocol deviation (the spec says replies carry the id as sent) but
 * is still matched so one deviation does not hang the run. */
static int parse_id(struct span s, uint64_t *idx)
{
	const char *p = s.p, *e = s.p + s.n;
	uint64_t v = 0;
	if (s.n >= 2 && *p == '"') {
		lg_error("id came back as a string: %.*s", (int)s.n, s.p);
		p++;
		e--;
	}
	if (p >= e)
		return 0;
	for (; p < e; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < opt.id_base)
		return 0;
	*idx = v - opt.id_base;
	return 1;
}

/* ---- gloom driver ---- */

struct peer {
	struct conn c; /* first, so a struct conn * is a struct peer * */
	int idx;
	int outstanding;
	int drained; /* hold mode: all of this master's jobs are written */
};

static struct ev_loop *loop;
static struct peer *masters, *workers;
static int masters_drained; /* hold mode: masters whose output is all out */
static ev_timer watchdog, kick;
static void (*on_all_done)(void);

static void fail(const char *why)
{
	fprintf(stderr, "loadgen: %s\n", why);
	st->failed = 1;
	ev_break(loop, EVBREAK_ALL);
}

static void master_fill(struct peer *m)
{
	struct buf *out = &m->c.out;
	uint64_t t = now_ns(), idx;
	while (m->outstanding < opt.K && buf_used(out) < 262144 &&
	       job_claim(m->idx, &idx, t)) {
		size_t h = frame_open(out);
		BUF_LIT(out, "{\"type\":\"job\",\"job_type\":\"echo\",\"id\":");
		buf_u64(out, opt.id_base + idx);
		BUF_LIT(out, ",\"body\":");
		body_make(out, idx, opt.S);
		if (opt.fill)
			BUF_LIT(out, ",\"detach\":true}");
		else
			BUF_LIT(out, "}");
		frame_close(out, h);
		m->outstanding++;
	}
	if (buf_used(out))
		conn_want_flush(&m->c);
}

static void master_reply(struct peer *m, const char *json, uint32_t n, uint64_t t)
{
	struct msg msg;
	uint64_t idx;
	if (!scan_msg(json, n, &msg)) {
		lg_error("master %d: unparsable frame: %.*s", m->idx, (int)(n < 200 ? n : 200), json);
		return;
	}
	if (!msg.id.p || !parse_id(msg.id, &idx)) {
		lg_error("master %d: frame without a usable id: %.*s", m->idx,
			 (int)(n < 200 ? n : 200), json);
		return;
	}
	if (msg.error.p) {
		/* The job is over, so count it done (as an error) so that the
		 * run can still finish. */
		lg_error("master %d: error frame: %.*s", m->idx, (int)(n < 200 ? n : 200), json);
		job_answer(m->idx, idx, NULL, 0, t);
	} else if (!msg.body.p) {
		lg_error("master %d: reply without body: %.*s", m->idx, (int)(n < 200 ? n : 200), json);
		return;
	} else {
		job_answer(m->idx, idx, msg.body.p, msg.body.n, t);
	}
	m->outstanding--;
}

static void master_input(struct conn *c)
{
	struct peer *m = (struct peer *)c;
	const char *json;
	uint32_t n;
	size_t total;
	uint64_t t = now_ns();
	while ((total = frame_peek(&c->in, &json, &n))) {
		master_reply(m, json, n, t);
		buf_consume(&c->in, total);
	}
	if (st->done >= opt.N) {
		on_all_done();
		return;
	}
	master_fill(m);
}

/* Hold mode: once every job is generated and written, the server has them
 * all (modulo its receive queue, which rss_settle waits out). */
static void master_drained(struct conn *c)
{
	struct peer *m = (struct peer *)c;
	master_fill(m);
	if (st->next >= opt.N && !buf_used(&c->out) && !m->drained) {
		m->drained = 1;
		if (++masters_drained == opt.M)
			ev_feed_event(loop, &kick, EV_TIMER);
	}
}

static void worker_input(struct conn *c)
{
	struct peer *w = (struct peer *)c;
	const char *json;
	uint32_t n;
	size_t total;
	struct msg msg;
	while ((total = frame_peek(&c->in, &json, &n))) {
		if (!scan_msg(json, n, &msg) || !msg.type.p || !msg.id.p || !msg.body.p ||
		    !key_is(msg.type.p, msg.type.n, "\"job\"")) {
			lg_error("worker %d: unexpected frame: %.*s", w->idx,
				 (int)(n < 200 ? n : 200), json);
		} else {
			size_t h = frame_open(&c->out);
			BUF_LIT(&c->out, "{\"type\":\"response\",\"id\":");
			buf_append(&c->out, msg.id.p, msg.id.n);
			BUF_LIT(&c->out, ",\"body\":");
			buf_append(&c->out, msg.body.p, msg.body.n);
			BUF_LIT(&c->out, "}");
			frame_close(&c->out, h);
			if (opt.drain && st->done < opt.N && ++st->done == opt.N) {
				st->t_end = now_ns();
				ev_break(loop, EVBREAK_ALL);
			}
		}
		buf_consume(&c->in, total);
	}
	conn_want_flush(c);
}

static void peer_closed(struct conn *c, const char *why)
{
	char msg[128];
	snprintf(msg, sizeof msg, "connection closed by the server: %s", why);
	(void)c;
	fail(msg);
}

static struct peer *connect_peers(int n, int port, void (*input)(struct conn *))
{
	struct peer *v = calloc((size_t)n, sizeof *v);
	if (!v) {
		perror("calloc");
		exit(1);
	}
	for (int i = 0; i < n; i++) {
		int fd = sock_connect(opt.host, port, 5.0);
		if (fd < 0)
			exit(1);
		v[i].idx = i;
		v[i].c.on_input = input;
		v[i].c.on_close = peer_closed;
		conn_init(loop, &v[i].c, fd);
	}
	return v;
}

static void start_workers(struct ev_loop *l)
{
	static const char join[] = "{\"type\":\"join\",\"job_type\":\"echo\"}";
	loop = l;
	workers = connect_peers(opt.W, opt.wport, worker_input);
	for (int i = 0; i < opt.W; i++) {
		frame_append(&workers[i].c.out, join, sizeof join - 1);
		conn_want_flush(&workers[i].c);
	}
	flusher_run(loop);
}

static void start_masters(void)
{
	masters = connect_peers(opt.M, opt.mport, master_input);
	st->t_start = now_ns();
	for (int i = 0; i < opt.M; i++) {
		if (opt.hold)
			masters[i].c.on_drained = master_drained;
		master_fill(&masters[i]);
	}
}

/* Workers either join this loop, or (--fork-workers) run in a child process
 * with its own loop that lives until the parent closes a pipe; the child
 * reports readiness by writing one byte. The child shares the job table,
 * so its errors are counted too. */
static int worker_child_pipe = -1;
static pid_t worker_child;

static void parent_gone(struct ev_loop *l, ev_io *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	_exit(0);
}

static void fork_workers(void (*start)(struct ev_loop *))
{
	int ready[2], life[2];
	char b;
	if (pipe(ready) < 0 || pipe(life) < 0) {
		perror("pipe");
		exit(1);
	}
	worker_child = fork();
	if (worker_child < 0) {
		perror("fork");
		exit(1);
	}
	if (worker_child == 0) {
		static ev_io lw;
		close(ready[0]);
		close(life[1]);
		flusher_forget(); /* the parent's pending writes are not ours */
		struct ev_loop *l = ev_loop_new(EVFLAG_AUTO);
		flusher_install(l);
		start(l);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		ev_io_init(&lw, parent_gone, life[0], EV_READ);
		ev_io_start(l, &lw);
		ev_run(l, 0);
		_exit(st->failed);
	}
	close(ready[1]);
	close(life[0]);
	worker_child_pipe = life[1];
	if (read(ready[0], &b, 1) != 1) {
		fprintf(stderr, "loadgen: worker process failed to start\n");
		exit(1);
	}
	close(ready[0]);
}

void lg_start_workers(struct ev_loop *l, void (*start)(struct ev_loop *))
{
	if (opt.fork_workers)
		fork_workers(start);
	else
		start(l);
}

int lg_reap_workers(void)
{
	int status = 0;
	if (worker_child <= 0)
		return 0;
	close(worker_child_pipe);
	waitpid(worker_child, &status, 0);
	worker_child = 0;
	return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void gloom_done(void)
{
	ev_break(loop, EVBREAK_ALL);
}

/* The kick timer drives the phases: a short grace after the workers joined
 * (so the server has registered them before the clock starts), and in hold
 * mode the step from "all submitted" to "workers connect". */
static int phase;
static void on_kick(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	if (phase++ == 0) {
		start_masters();
		return;
	}
	/* Every job is written: wait until the server has read and stored
	 * them, read its RSS, then let the workers drain the queue. */
	st->rss_queued = rss_settle(opt.pid);
	if (opt.fill) {  /* leave them queued: done means swallowed */
		st->t_end = now_ns();
		st->done = opt.N;
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	lg_start_workers(loop, start_workers);
	st->t_start = now_ns();
}

static void on_watchdog(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	char msg[128];
	snprintf(msg, sizeof msg, "timed out after %.0f s with %llu of %llu jobs answered",
		 opt.timeout, (unsigned long long)st->done, (unsigned long long)opt.N);
	fail(msg);
}

static int gloom_run(void)
{
	on_all_done = gloom_done;
	if (opt.drain) { /* no master: the workers count what they answer */
		lg_start_workers(loop, start_workers);
		st->t_start = now_ns();
		ev_run(loop, 0);
		return 0;
	}
	ev_timer_init(&kick, on_kick, 0.05, 0);
	if (opt.hold) {
		/* K is meaningless while nothing drains: submit everything. */
		opt.K = (int)(opt.N < 0x7fffffff ? opt.N : 0x7fffffff);
	} else {
		lg_start_workers(loop, start_workers);
	}
	ev_timer_start(loop, &kick);
	ev_run(loop, 0);
	return lg_reap_workers();
}

/* ---- report ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)v[i] / 1000.0;
}

static const char *sys_name(void)
{
	return opt.sys == SYS_GLOOM ? "gloom" : opt.sys == SYS_BEANSTALK ? "beanstalk" : "gearman";
}

static void report(void)
{
	uint64_t *lat = malloc(opt.N * sizeof *lat + 1);
	size_t n = 0;
	if (!lat) {
		perror("malloc");
		exit(1);
	}
	for (uint64_t i = 0; i < opt.N; i++)
		if (st->owner[i] == OWNER_DONE)
			lat[n++] = st->lat_ns[i];
	qsort(lat, n, sizeof *lat, cmp_u64);
	uint64_t end = st->t_end ? st->t_end : now_ns();
	double secs = (double)(end - st->t_start) / 1e9;
	double rate = secs > 0 ? (double)st->done / secs : 0;
	uint64_t missing = opt.N - st->done;
	uint64_t errors = st->errors + missing;
	double p50 = pct(lat, n, 0.5), p99 = pct(lat, n, 0.99), p999 = pct(lat, n, 0.999);
	const char *label = opt.label ? opt.label : sys_name();

	printf("RESULT label=%s system=%s M=%d K=%d W=%d N=%llu S=%zu done=%llu "
	       "errors=%llu secs=%.3f jobs_per_sec=%.0f p50_us=%.1f p99_us=%.1f "
	       "p999_us=%.1f max_us=%.1f",
	       label, sys_name(), opt.M, opt.K, opt.W, (unsigned long long)opt.N, opt.S,
	       (unsigned long long)st->done, (unsigned long long)errors, secs, rate, p50,
	       p99, p999, n ? (double)lat[n - 1] / 1000.0 : 0.0);
	if (opt.hold) {
		double per_job = st->rss_queued > 0 && st->rss_before > 0
			? (double)(st->rss_queued - st->rss_before) * 1024.0 / (double)opt.N : -1;
		printf(" rss_before_kb=%ld rss_queued_kb=%ld rss_drained_kb=%ld bytes_per_job=%.0f",
		       st->rss_before, st->rss_queued, st->rss_drained, per_job);
	}
	printf(" failed=%d\n", st->failed);
	printf("%s: %llu jobs in %.2f s = %.0f jobs/s; latency p50 %.1f us, p99 %.1f us, "
	       "p99.9 %.1f us; %llu errors%s\n",
	       label, (unsigned long long)st->done, secs, rate, p50, p99, p999,
	       (unsigned long long)errors, st->failed ? " (RUN FAILED)" : "");
	if (opt.hold)
		printf("%s: RSS %ld KiB empty, %ld KiB with %llu jobs queued, %ld KiB after drain\n",
		       label, st->rss_before, st->rss_queued, (unsigned long long)opt.N,
		       st->rss_drained);
	fflush(stdout);
	free(lat);
}

/* ---- tree submits: one process, one open handle, many lines ---- */

static const char *tree_path;
static size_t tree_chunk = 65536;

/* Writes N lines {"n":I} to the queue file in writes of about tree_chunk
 * bytes, always ending on a line boundary (each write(2) is parsed on its
 * own), and times open..close: a FUSE write returns only once the daemon has
 * taken the lines. */
static int tree_write(void)
{
	struct buf b = {0};
	uint64_t t0 = now_ns(), i = 0;
	int fd = open(tree_path, O_WRONLY);
	if (fd < 0) {
		fprintf(stderr, "loadgen: open %s: %s\n", tree_path, strerror(errno));
		return 1;
	}
	while (i < opt.N) {
		b.off = b.len = 0;
		while (i < opt.N && b.len + 32 < tree_chunk) {
			BUF_LIT(&b, "{\"n\":");
			buf_u64(&b, i++);
			BUF_LIT(&b, "}\n");
		}
		ssize_t n = write(fd, b.data, b.len);
		if (n != (ssize_t)b.len) {
			fprintf(stderr, "loadgen: write %s: %s\n", tree_path,
				n < 0 ? strerror(errno) : "short write");
			close(fd);
			return 1;
		}
	}
	if (close(fd) < 0) {
		fprintf(stderr, "loadgen: close %s: %s\n", tree_path, strerror(errno));
		return 1;
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	const char *label = opt.label ? opt.label : "tree";
	printf("RESULT label=%s system=tree N=%llu chunk=%zu secs=%.3f jobs_per_sec=%.0f errors=0 failed=0\n",
	       label, (unsigned long long)opt.N, tree_chunk, secs, (double)opt.N / secs);
	printf("%s: %llu lines in %.2f s = %.0f jobs/s (writes of ~%zu bytes)\n", label,
	       (unsigned long long)opt.N, secs, (double)opt.N / secs, tree_chunk);
	buf_free(&b);
	return 0;
}

/* ---- options ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen [--system gloom|beanstalk|gearman] [-M masters] [-K outstanding]\n"
		"               [-W workers] [-N jobs] [-S body-bytes] [--host ADDR]\n"
		"               [--master-port P] [--worker-port Q] [--fork-workers]\n"
		"               [--hold --pid SERVER_PID] [--timeout SECONDS] [--label NAME]\n"
		"               [--fill --pid SERVER_PID] [--drain]\n"
		"       loadgen --tree-write MOUNT/types/T/queue [-N lines] [--chunk bytes]\n"
		"  beanstalk uses --master-port only; gearman uses --master-port only.\n");
	exit(2);
}

static void parse_opts(int argc, char **argv)
{
	static const struct option lo[] = {
		{"system", required_argument, 0, 's'},
		{"host", required_argument, 0, 'h'},
		{"master-port", required_argument, 0, 'm'},
		{"worker-port", required_argument, 0, 'w'},
		{"fork-workers", no_argument, 0, 'F'},
		{"hold", no_argument, 0, 'H'},
		{"fill", no_argument, 0, 'f'},
		{"drain", no_argument, 0, 'D'},
		{"pid", required_argument, 0, 'p'},
		{"timeout", required_argument, 0, 't'},
		{"label", required_argument, 0, 'l'},
		{"depth", required_argument, 0, 'd'},
		{"tree-write", required_argument, 0, 'T'},
		{"chunk", required_argument, 0, 'C'},
		{"help", no_argument, 0, '?'},
		{0, 0, 0, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "M:K:W:N:S:", lo, NULL)) != -1) {
		switch (o) {
		case 'M': opt.M = atoi(optarg); break;
		case 'K': opt.K = atoi(optarg); break;
		case 'W': opt.W = atoi(optarg); break;
		case 'N': opt.N = strtoull(optarg, NULL, 10); break;
		case 'S': opt.S = strtoul(optarg, NULL, 10); break;
		case 'h': opt.host = optarg; break;
		case 'm': opt.mport = atoi(optarg); break;
		case 'w': opt.wport = atoi(optarg); break;
		case 'F': opt.fork_workers = 1; break;
		case 'H': opt.hold = 1; break;
		case 'f': opt.hold = opt.fill = 1; break;
		case 'D': opt.drain = 1; break;
		case 'p': opt.pid = atoi(optarg); break;
		case 't': opt.timeout = atof(optarg); break;
		case 'l': opt.label = optarg; break;
		case 'd': opt.depth = atoi(optarg); break;
		case 'T': tree_path = optarg; break;
		case 'C': tree_chunk = strtoul(optarg, NULL, 10); break;
		case 's':
			if (!strcmp(optarg, "gloom") || !strcmp(optarg, "jobfs") ||
			    !strcmp(optarg, "relay"))
				opt.sys = SYS_GLOOM;
			else if (!strcmp(optarg, "beanstalk") || !strcmp(optarg, "beanstalkd"))
				opt.sys = SYS_BEANSTALK;
			else if (!strcmp(optarg, "gearman") || !strcmp(optarg, "gearmand"))
				opt.sys = SYS_GEARMAN;
			else
				usage();
			break;
		default: usage();
		}
	}
	if (tree_chunk < 64)
		tree_chunk = 64; /* room for at least one line per write */
	if (optind != argc || opt.M < 1 || opt.M >= OWNER_DONE - 1 || opt.K < 1 ||
	    opt.W < 1 || opt.N < 1 || opt.depth < 1 ||
	    (opt.drain && (opt.hold || opt.fork_workers || opt.sys != SYS_GLOOM)))
		usage();
}

static void *shared_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

int main(int argc, char **argv)
{
	parse_opts(argc, argv);
	if (tree_path)
		return tree_write();
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	/* Distinct ids per run, so a stale reply from an earlier run against
	 * the same server cannot pass as one of ours. */
	opt.id_base = (uint64_t)getpid() * 10000000ull;
	st = shared_alloc(sizeof *st);
	st->sent_ns = shared_alloc(opt.N * sizeof *st->sent_ns);
	st->lat_ns = shared_alloc(opt.N * sizeof *st->lat_ns);
	st->owner = shared_alloc(opt.N * sizeof *st->owner);
	if (opt.hold)
		st->rss_before = rss_kb(opt.pid);

	int bad;
	if (opt.sys == SYS_GEARMAN) {
		bad = gearman_run();
	} else {
		loop = EV_DEFAULT;
		flusher_install(loop);
		ev_timer_init(&watchdog, on_watchdog, opt.timeout, 0);
		ev_timer_start(loop, &watchdog);
		bad = opt.sys == SYS_GLOOM ? gloom_run() : beanstalk_run(loop);
	}
	if (opt.hold && !opt.fill && !st->failed)
		st->rss_drained = rss_settle(opt.pid);
	report();
	return bad || st->failed || st->errors || st->done != opt.N;
}
