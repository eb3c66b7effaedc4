/* loadgen internals shared by the per-system drivers (gloom in loadgen.c,
 * beanstalk.c, gearman.c). */
#ifndef BENCH_LOADGEN_H
#define BENCH_LOADGEN_H

#include "common.h"

#include <stdint.h>

enum sys { SYS_GLOOM, SYS_BEANSTALK, SYS_GEARMAN };

struct lg_opts {
	int M, K, W;
	uint64_t N;
	size_t S;
	enum sys sys;
	const char *host;
	int mport, wport;
	int fork_workers; /* gloom/beanstalk: workers in a child process */
	int hold;         /* queue-memory mode: submit all, then drain */
	int fill;         /* --fill: hold, detached jobs, no drain */
	int drain;        /* --drain: workers only, answer N queued jobs */
	int pid;          /* server pid for RSS readings (hold mode) */
	double timeout;   /* seconds before the run is declared hung */
	uint64_t id_base; /* first wire id (gloom) */
	int depth;        /* beanstalk: reserves in flight per reply conn */
	const char *label;
};

/* Per-job bookkeeping lives in shared memory so that forked gearman
 * processes can fill it in. owner[i]: 0 = not sent, 1+m = outstanding on
 * master m, DONE = answered. */
#define OWNER_DONE 0xffff
struct lg_stats {
	uint64_t *sent_ns;
	uint64_t *lat_ns;
	uint16_t *owner;
	uint64_t next;     /* next job index to send */
	uint64_t done;     /* jobs answered (correctly or not) */
	uint64_t errors;   /* verification and protocol errors */
	uint64_t created;  /* hold mode: jobs the server acknowledged */
	uint64_t t_start, t_end;
	long rss_before, rss_queued, rss_drained;
	int failed;        /* a connection broke or the run timed out */
};

extern struct lg_opts opt;
extern struct lg_stats *st;

/* Claim the next job index for master m (0-based); returns 0 if none left. */
int job_claim(int m, uint64_t *idx, uint64_t t);
/* Record an answer for job idx arriving on master m; checks ownership and
 * the echoed body (body NULL: the job failed, already reported). Returns 1
 * if it was good. */
int job_answer(int m, uint64_t idx, const char *body, size_t n, uint64_t t);
/* Count a protocol error, printing the first few. */
void lg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wait (polling) until the server's RSS stops moving; returns it in KiB. */
long rss_settle(int pid);

/* Connect the workers with start(), in this loop or in a child process
 * (--fork-workers); lg_reap_workers ends the child, non-zero if it failed. */
void lg_start_workers(struct ev_loop *l, void (*start)(struct ev_loop *));
int lg_reap_workers(void);

int beanstalk_run(struct ev_loop *loop);
int gearman_run(void);

#endif
