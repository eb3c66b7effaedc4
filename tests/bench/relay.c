/* relay: the cheapest possible broker for the jobfs wire framing, used as the
 * benchmark's ceiling. It never parses JSON. Each frame from a master goes
 * verbatim to an idle worker (or waits in a FIFO until one is idle); the
 * worker's next frame goes verbatim back to the master the job came from.
 * A worker's first frame (the join) only marks it idle.
 *
 *   relay [--listen ADDR] [--master-port P] [--worker-port Q]
 *
 * One libev loop, one thread; output is batched by common.c's flusher so a
 * burst of frames to one peer leaves in one write(2). */
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum role { MASTER, WORKER };

struct peer {
	struct conn c; /* first: a struct conn * is a struct peer * */
	enum role role;
	int joined;         /* worker: has sent its first frame */
	int idle;           /* worker: sits on the idle stack */
	struct peer *owner; /* worker: master of the job it is running */
	struct peer *next_idle;
	unsigned refs;      /* master: running + queued jobs that point here */
};

static struct ev_loop *loop;
static struct peer *idle_top;   /* LIFO: the most recently idle worker is
				 * the one whose buffers are still in cache */
static struct buf backlog;      /* queued jobs: [peer*][frame...] */

static void peer_release(struct peer *m)
{
	if (--m->refs == 0 && m->c.closed) {
		buf_free(&m->c.in);
		buf_free(&m->c.out);
		free(m);
	}
}

static void give_job(struct peer *w, struct peer *m, const char *frame, size_t n)
{
	w->owner = m;
	buf_append(&w->c.out, frame, n);
	conn_want_flush(&w->c);
}

/* Pop a live idle worker, discarding the closed ones left on the stack. */
static struct peer *pop_idle(void)
{
	while (idle_top) {
		struct peer *w = idle_top;
		idle_top = w->next_idle;
		w->idle = 0;
		if (!w->c.closed)
			return w;
		free(w);
	}
	return NULL;
}

/* A worker became free: hand it the oldest queued job, else park it. */
static void worker_free(struct peer *w)
{
	while (buf_used(&backlog)) {
		struct peer *m;
		memcpy(&m, buf_head(&backlog), sizeof m);
		buf_consume(&backlog, sizeof m);
		const char *json;
		uint32_t n;
		size_t total = frame_peek(&backlog, &json, &n);
		if (!m->c.closed) {
			give_job(w, m, buf_head(&backlog), total);
			buf_consume(&backlog, total);
			return;
		}
		buf_consume(&backlog, total);
		peer_release(m);
	}
	w->idle = 1;
	w->next_idle = idle_top;
	idle_top = w;
}

static void master_input(struct conn *c)
{
	struct peer *m = (struct peer *)c;
	const char *json;
	uint32_t n;
	size_t total;
	while ((total = frame_peek(&c->in, &json, &n))) {
		struct peer *w = pop_idle();
		m->refs++;
		if (w) {
			give_job(w, m, buf_head(&c->in), total);
		} else {
			buf_append(&backlog, &m, sizeof m);
			buf_append(&backlog, buf_head(&c->in), total);
		}
		buf_consume(&c->in, total);
	}
}

static void worker_input(struct conn *c)
{
	struct peer *w = (struct peer *)c;
	const char *json;
	uint32_t n;
	size_t total;
	while ((total = frame_peek(&c->in, &json, &n))) {
		if (!w->joined) {
			w->joined = 1;
		} else if (w->owner) {
			struct peer *m = w->owner;
			w->owner = NULL;
			if (!m->c.closed) {
				buf_append(&m->c.out, buf_head(&c->in), total);
				conn_want_flush(&m->c);
			}
			peer_release(m);
		} else {
			/* a frame with no job running: nothing to route */
			buf_consume(&c->in, total);
			continue;
		}
		buf_consume(&c->in, total);
		worker_free(w);
	}
}

static void peer_closed(struct conn *c, const char *why)
{
	(void)why;
	struct peer *p = (struct peer *)c;
	if (p->role == MASTER) {
		p->refs++; /* hold, so release frees only when the last ref goes */
		peer_release(p);
		return;
	}
	if (p->owner)
		peer_release(p->owner); /* its job is lost: a relay has no retry */
	p->owner = NULL;
	buf_free(&c->in);
	buf_free(&c->out);
	if (!p->idle)
		free(p); /* else pop_idle frees it */
}

static void on_accept(struct ev_loop *l, ev_io *w, int revents)
{
	(void)revents;
	enum role role = (enum role)(intptr_t)w->data;
	int one = 1;
	for (;;) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				perror("accept");
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct peer *p = calloc(1, sizeof *p);
		if (!p) {
			close(fd);
			return;
		}
		p->role = role;
		p->c.on_input = role == MASTER ? master_input : worker_input;
		p->c.on_close = peer_closed;
		conn_init(l, &p->c, fd);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: relay [--listen ADDR] [--master-port P] [--worker-port Q]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int mport = 9998, wport = 9999;
	static const struct option opts[] = {
		{"listen", required_argument, 0, 'l'},
		{"master-port", required_argument, 0, 'm'},
		{"worker-port", required_argument, 0, 'w'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
		switch (o) {
		case 'l': host = optarg; break;
		case 'm': mport = atoi(optarg); break;
		case 'w': wport = atoi(optarg); break;
		case 'f': break; /* accepted for symmetry with jobfs */
		default: usage();
		}
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	loop = EV_DEFAULT;
	flusher_install(loop);
	int mfd = sock_listen(host, mport), wfd = sock_listen(host, wport);
	if (mfd < 0 || wfd < 0)
		return 1;
	ev_io ma, wa;
	ev_io_init(&ma, on_accept, mfd, EV_READ);
	ev_io_init(&wa, on_accept, wfd, EV_READ);
	ma.data = (void *)(intptr_t)MASTER;
	wa.data = (void *)(intptr_t)WORKER;
	ev_io_start(loop, &ma);
	ev_io_start(loop, &wa);
	ev_run(loop, 0);
	return 0;
}
