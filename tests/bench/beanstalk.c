/* beanstalkd driver for loadgen: the same masters/workers shape over the
 * beanstalkd text protocol, in the same libev loop.
 *
 * beanstalkd has no request/reply, so a reply is a second job: master m puts
 * "m idx BODY" into tube jobs-PID; a worker reserves it, deletes it, and puts
 * the same bytes into tube r-PID-m, which master m watches. A reserve blocks
 * its connection until a job arrives, so each master uses two connections:
 * one that only puts (pipelined, up to K jobs outstanding) and one that only
 * reserves replies (opt.depth reserves in flight, each answered with
 * "delete ID" plus the next "reserve"). A worker has one job at a time: it
 * sends "delete; [use r-PID-m;] put; reserve" in one write. */
#include "loadgen.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct bconn {
	struct conn c; /* first, so a struct conn * is a struct bconn * */
	int m;         /* master index, or worker index */
	int outstanding;
	int used;      /* worker: master whose reply tube is in use, -1 none */
	struct bconn *put; /* reply conn: its master's put conn */
};

static struct ev_loop *loop;
static struct bconn *puts_, *replies, *workers;
static ev_timer kick;
static int phase;
static unsigned pid_tag;

static void fail(const char *why)
{
	fprintf(stderr, "loadgen: beanstalk: %s\n", why);
	st->failed = 1;
	ev_break(loop, EVBREAK_ALL);
}

static void closed(struct conn *c, const char *why)
{
	(void)c;
	char msg[128];
	snprintf(msg, sizeof msg, "connection closed by beanstalkd: %s", why);
	fail(msg);
}

static void bprintf(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void bprintf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	buf_reserve(&c->out, 256);
	va_start(ap, fmt);
	int n = vsnprintf(c->out.data + c->out.len, c->out.cap - c->out.len, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < c->out.cap - c->out.len)
		c->out.len += (size_t)n;
	conn_want_flush(c);
}

/* Queue "put" commands while this master may have more jobs outstanding. */
static void master_fill(struct bconn *p)
{
	struct buf *out = &p->c.out;
	uint64_t t = now_ns(), idx;
	struct buf tmp = {0};
	int added = 0;
	while (p->outstanding < opt.K && buf_used(out) < 262144 && job_claim(p->m, &idx, t)) {
		tmp.off = tmp.len = 0;
		buf_u64(&tmp, (uint64_t)p->m);
		BUF_LIT(&tmp, " ");
		buf_u64(&tmp, idx);
		BUF_LIT(&tmp, " ");
		body_make(&tmp, idx, opt.S);
		BUF_LIT(out, "put 0 0 60 ");
		buf_u64(out, buf_used(&tmp));
		BUF_LIT(out, "\r\n");
		buf_append(out, buf_head(&tmp), buf_used(&tmp));
		BUF_LIT(out, "\r\n");
		p->outstanding++;
		added = 1;
	}
	buf_free(&tmp);
	if (added)
		conn_want_flush(&p->c);
}

/* One server response: the line (without CRLF) and, for RESERVED, the data.
 * Returns bytes consumed, 0 if incomplete. */
struct resp {
	const char *line;
	size_t n;
	unsigned long long id;
	const char *data;
	size_t dn;
};

static size_t next_resp(struct buf *b, struct resp *r)
{
	const char *p = buf_head(b);
	size_t have = buf_used(b);
	const char *eol = memmem(p, have, "\r\n", 2);
	if (!eol)
		return 0;
	r->line = p;
	r->n = (size_t)(eol - p);
	r->data = NULL;
	r->dn = 0;
	size_t used = r->n + 2;
	if (r->n > 9 && memcmp(p, "RESERVED ", 9) == 0) {
		size_t bytes;
		if (sscanf(p + 9, "%llu %zu", &r->id, &bytes) != 2)
			return used; /* reported by the caller as unexpected */
		if (have < used + bytes + 2)
			return 0;
		r->data = p + used;
		r->dn = bytes;
		used += bytes + 2;
	}
	return used;
}

static int is(const struct resp *r, const char *word)
{
	size_t n = strlen(word);
	return r->n >= n && memcmp(r->line, word, n) == 0;
}

static void unexpected(const char *who, int i, const struct resp *r)
{
	lg_error("beanstalk %s %d: unexpected response: %.*s", who, i,
		 (int)(r->n < 100 ? r->n : 100), r->line);
}

/* "m idx BODY" -> fields; 0 if malformed. */
static int split_data(const struct resp *r, int *m, uint64_t *idx, const char **body,
		      size_t *bn)
{
	const char *p = r->data, *e = r->data + r->dn;
	char *end;
	long mm = strtol(p, &end, 10);
	if (end >= e || *end != ' ')
		return 0;
	unsigned long long ii = strtoull(end + 1, &end, 10);
	if (end >= e || *end != ' ')
		return 0;
	*m = (int)mm;
	*idx = ii;
	*body = end + 1;
	*bn = (size_t)(e - *body);
	return 1;
}

/* The put side refills as its output drains, not only on replies: in hold
 * mode no reply comes until every job is in. */
static void put_drained(struct conn *c)
{
	master_fill((struct bconn *)c);
}

static void put_input(struct conn *c)
{
	struct bconn *p = (struct bconn *)c;
	struct resp r;
	size_t used;
	while ((used = next_resp(&c->in, &r))) {
		if (is(&r, "INSERTED")) {
			uint64_t n = ++st->created;
			if (opt.hold && n == opt.N)
				ev_feed_event(loop, &kick, EV_TIMER);
		} else if (!is(&r, "USING")) {
			unexpected("master", p->m, &r);
		}
		buf_consume(&c->in, used);
	}
}

static void reply_input(struct conn *c)
{
	struct bconn *p = (struct bconn *)c;
	struct resp r;
	size_t used;
	uint64_t t = now_ns();
	while ((used = next_resp(&c->in, &r))) {
		int m;
		uint64_t idx;
		const char *body;
		size_t bn;
		if (r.data) {
			if (!split_data(&r, &m, &idx, &body, &bn) || m != p->m)
				lg_error("master %d: bad reply data: %.*s", p->m,
					 (int)(r.dn < 60 ? r.dn : 60), r.data);
			else
				job_answer(p->m, idx, body, bn, t);
			bprintf(c, "delete %llu\r\nreserve\r\n", r.id);
			p->put->outstanding--;
		} else if (!is(&r, "DELETED") && !is(&r, "WATCHING")) {
			unexpected("master", p->m, &r);
		}
		buf_consume(&c->in, used);
	}
	if (st->done >= opt.N) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	master_fill(p->put);
}

static void worker_input(struct conn *c)
{
	struct bconn *w = (struct bconn *)c;
	struct resp r;
	size_t used;
	while ((used = next_resp(&c->in, &r))) {
		int m;
		uint64_t idx;
		const char *body;
		size_t bn;
		if (r.data) {
			bprintf(c, "delete %llu\r\n", r.id);
			if (!split_data(&r, &m, &idx, &body, &bn)) {
				lg_error("worker %d: bad job data", w->m);
				bprintf(c, "reserve\r\n");
			} else {
				if (w->used != m) {
					bprintf(c, "use r-%u-%d\r\n", pid_tag, m);
					w->used = m;
				}
				bprintf(c, "put 0 0 60 %zu\r\n", r.dn);
				buf_append(&c->out, r.data, r.dn);
				BUF_LIT(&c->out, "\r\nreserve\r\n");
			}
		} else if (!is(&r, "DELETED") && !is(&r, "WATCHING") &&
			   !is(&r, "USING") && !is(&r, "INSERTED")) {
			unexpected("worker", w->m, &r);
		}
		buf_consume(&c->in, used);
	}
}

static struct bconn *open_conns(int n, void (*input)(struct conn *))
{
	struct bconn *v = calloc((size_t)n, sizeof *v);
	if (!v) {
		perror("calloc");
		exit(1);
	}
	for (int i = 0; i < n; i++) {
		int fd = sock_connect(opt.host, opt.mport, 5.0);
		if (fd < 0)
			exit(1);
		v[i].m = i;
		v[i].used = -1;
		v[i].c.on_input = input;
		v[i].c.on_close = closed;
		conn_init(loop, &v[i].c, fd);
	}
	return v;
}

static void start_workers(struct ev_loop *l)
{
	loop = l;
	workers = open_conns(opt.W, worker_input);
	for (int i = 0; i < opt.W; i++)
		bprintf(&workers[i].c, "watch jobs-%u\r\nignore default\r\nreserve\r\n", pid_tag);
	flusher_run(loop);
}

static void start_masters(void)
{
	puts_ = open_conns(opt.M, put_input);
	replies = open_conns(opt.M, reply_input);
	for (int i = 0; i < opt.M; i++) {
		replies[i].put = &puts_[i];
		puts_[i].c.on_drained = put_drained;
		bprintf(&replies[i].c, "watch r-%u-%d\r\nignore default\r\n", pid_tag, i);
		for (int d = 0; d < opt.depth; d++)
			bprintf(&replies[i].c, "reserve\r\n");
		bprintf(&puts_[i].c, "use jobs-%u\r\n", pid_tag);
	}
	flusher_run(loop);
	st->t_start = now_ns();
	for (int i = 0; i < opt.M; i++)
		master_fill(&puts_[i]);
}

/* Same phases as the gloom driver: grace after workers connect, then in hold
 * mode "all acknowledged" -> read RSS -> workers drain. */
static void on_kick(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	if (phase++ == 0) {
		start_masters();
		return;
	}
	st->rss_queued = rss_settle(opt.pid);
	lg_start_workers(loop, start_workers);
	st->t_start = now_ns();
}

int beanstalk_run(struct ev_loop *l)
{
	loop = l;
	pid_tag = (unsigned)getpid();
	if (opt.hold)
		opt.K = (int)(opt.N < 0x7fffffff ? opt.N : 0x7fffffff);
	else
		lg_start_workers(loop, start_workers);
	ev_timer_init(&kick, on_kick, 0.05, 0);
	ev_timer_start(loop, &kick);
	ev_run(loop, 0);
	return lg_reap_workers();
}
