/* gearmand driver for loadgen, through libgearman's blocking API.
 *
 * libgearman (1.1.20 in Debian 12) does not expose its sockets, so it cannot
 * share a libev loop; each master and each worker is therefore a forked
 * process, which is also how gearman is deployed. Bookkeeping (job owners,
 * send times, latencies, counters) is in the shared memory loadgen.c maps.
 *
 * A master keeps K foreground jobs in flight on one gearman_client_st: it
 * adds K tasks, then gearman_client_run_tasks(); each completion callback
 * checks the result and adds the next task, which run_tasks sends on its next
 * pass, so the window stays full until the jobs run out.
 *
 * libgearman matches every server packet by walking the client's task list,
 * so a client with n tasks in flight costs O(n) per packet. Hold mode (all N
 * jobs queued at once) therefore spreads the jobs over enough master
 * processes that none holds more than HOLD_PER_CLIENT. */
#include "loadgen.h"

#include <libgearman/gearman.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define HOLD_PER_CLIENT 5000

static gearman_client_st *client;
static int me;           /* this master's index */
static uint64_t my_left; /* hold mode: jobs this master still submits */
static struct buf body;

static void *echo_fn(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
	(void)ctx;
	size_t n = gearman_job_workload_size(job);
	void *copy = malloc(n ? n : 1);
	if (copy)
		memcpy(copy, gearman_job_workload(job), n);
	*size = n;
	*ret = copy ? GEARMAN_SUCCESS : GEARMAN_WORK_FAIL;
	return copy;
}

static void worker_main(void)
{
	gearman_worker_st *w = gearman_worker_create(NULL);
	if (!w || gearman_worker_add_server(w, opt.host, (in_port_t)opt.mport) != GEARMAN_SUCCESS ||
	    gearman_worker_add_function(w, "echo", 0, echo_fn, NULL) != GEARMAN_SUCCESS) {
		fprintf(stderr, "loadgen: gearman worker setup failed\n");
		_exit(1);
	}
	for (;;) {
		gearman_return_t r = gearman_worker_work(w);
		if (r != GEARMAN_SUCCESS) {
			fprintf(stderr, "loadgen: gearman worker: %s\n", gearman_worker_error(w));
			_exit(1);
		}
	}
}

static int add_next(gearman_client_st *c)
{
	uint64_t idx;
	if (opt.hold && my_left-- == 0)
		return 0;
	body.off = body.len = 0;
	if (!job_claim(me, &idx, now_ns()))
		return 0;
	body_make(&body, idx, opt.S);
	gearman_return_t r;
	gearman_client_add_task(c, NULL, (void *)(uintptr_t)idx, "echo", NULL,
				buf_head(&body), buf_used(&body), &r);
	if (r != GEARMAN_SUCCESS) {
		lg_error("gearman add_task: %s", gearman_client_error(c));
		return 0;
	}
	return 1;
}

static gearman_return_t on_complete(gearman_task_st *t)
{
	uint64_t idx = (uintptr_t)gearman_task_context(t);
	job_answer(me, idx, gearman_task_data(t), gearman_task_data_size(t), now_ns());
	if (!opt.hold)
		add_next(client);
	return GEARMAN_SUCCESS;
}

static gearman_return_t on_fail(gearman_task_st *t)
{
	uint64_t idx = (uintptr_t)gearman_task_context(t);
	lg_error("gearman job %llu failed", (unsigned long long)idx);
	job_answer(me, idx, NULL, 0, now_ns());
	return GEARMAN_SUCCESS;
}

static gearman_return_t on_created(gearman_task_st *t)
{
	(void)t;
	__atomic_add_fetch(&st->created, 1, __ATOMIC_RELAXED);
	return GEARMAN_SUCCESS;
}

static void master_main(int idx, uint64_t share)
{
	me = idx;
	my_left = share;
	gearman_client_st *c = client = gearman_client_create(NULL);
	if (!c || gearman_client_add_server(c, opt.host, (in_port_t)opt.mport) != GEARMAN_SUCCESS) {
		fprintf(stderr, "loadgen: gearman client setup failed\n");
		_exit(1);
	}
	gearman_client_add_options(c, GEARMAN_CLIENT_FREE_TASKS);
	gearman_client_set_complete_fn(c, on_complete);
	gearman_client_set_fail_fn(c, on_fail);
	gearman_client_set_created_fn(c, on_created);
	uint64_t window = opt.hold ? share : (uint64_t)opt.K;
	for (uint64_t i = 0; i < window && add_next(c); i++)
		;
	gearman_return_t r = gearman_client_run_tasks(c);
	if (r != GEARMAN_SUCCESS) {
		fprintf(stderr, "loadgen: gearman run_tasks: %s\n", gearman_client_error(c));
		_exit(1);
	}
	gearman_client_free(c);
	_exit(0);
}

static pid_t spawn(void (*fn)(int, uint64_t), int idx, uint64_t share)
{
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		/* Never outlive the run, whatever happens to the parent. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fn(idx, share);
		_exit(0);
	}
	return pid;
}

static void worker_entry(int idx, uint64_t share)
{
	(void)idx;
	(void)share;
	worker_main();
}

static pid_t *spawn_workers(void)
{
	pid_t *w = calloc((size_t)opt.W, sizeof *w);
	for (int i = 0; i < opt.W; i++)
		w[i] = spawn(worker_entry, i, 0);
	return w;
}

/* Wait for every master to exit, or the deadline; returns non-zero if a
 * master failed or time ran out (then the rest are killed). */
static int wait_masters(pid_t *m, int n, uint64_t deadline)
{
	int left = n, bad = 0;
	while (left > 0) {
		int status;
		pid_t p = waitpid(-1, &status, WNOHANG);
		if (p == 0) {
			if (now_ns() > deadline) {
				fprintf(stderr, "loadgen: gearman: timed out with %llu of %llu jobs answered\n",
					(unsigned long long)st->done, (unsigned long long)opt.N);
				for (int i = 0; i < n; i++)
					kill(m[i], SIGKILL);
				return 1;
			}
			usleep(2000);
			continue;
		}
		if (p < 0)
			break;
		for (int i = 0; i < n; i++)
			if (m[i] == p) {
				left--;
				if (!WIFEXITED(status) || WEXITSTATUS(status))
					bad = 1;
			}
	}
	return bad;
}

static void master_entry(int idx, uint64_t share)
{
	master_main(idx, share);
}

int gearman_run(void)
{
	uint64_t deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
	pid_t *workers = NULL;
	int masters = opt.M;
	if (opt.hold) {
		opt.K = (int)(opt.N < 0x7fffffff ? opt.N : 0x7fffffff);
		uint64_t need = (opt.N + HOLD_PER_CLIENT - 1) / HOLD_PER_CLIENT;
		if (need > (uint64_t)masters)
			masters = (int)need;
	} else {
		workers = spawn_workers();
		usleep(100000); /* let them connect and CAN_DO before the clock */
	}
	pid_t *m = calloc((size_t)masters, sizeof *m);
	uint64_t share = (opt.N + (uint64_t)masters - 1) / (uint64_t)masters;
	st->t_start = now_ns();
	for (int i = 0; i < masters; i++)
		m[i] = spawn(master_entry, i, share);
	if (opt.hold) {
		while (__atomic_load_n(&st->created, __ATOMIC_RELAXED) < opt.N && now_ns() < deadline)
			usleep(5000);
		st->rss_queued = rss_settle(opt.pid);
		workers = spawn_workers();
		st->t_start = now_ns();
	}
	int bad = wait_masters(m, masters, deadline);
	if (bad)
		st->failed = 1;
	for (int i = 0; i < opt.W; i++)
		kill(workers[i], SIGTERM);
	for (int i = 0; i < opt.W; i++)
		waitpid(workers[i], NULL, 0);
	free(workers);
	free(m);
	return bad;
}
