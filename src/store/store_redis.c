/*
 * store_redis.c: cluster mode.  With --redis URL the broker's queues live
 * in Redis and any number of daemons pointed at one Redis serve one set of
 * queues and jobs (jobfs-redis(7) has the data model).  This file is the
 * broker's backend (struct broker_backend, jobfs.h): it turns the broker's
 * intents (submit, want jobs for idle workers, complete, partial, requeue,
 * end, forget) into calls of the Redis functions in redis_scripts.lua, and
 * their answers and the events other daemons publish into verdicts
 * (broker_be_*).
 *
 * Its files: store_redis.c (the outbox, the intents, dispatch, channels),
 * redis_events.c (verdicts and events), redis_codec.c (replies' small
 * bits, the URL, lookups and resync), redis_query.c (the tree's queries,
 * worker lines), redis_conn.c (connecting, functions, lifetime); what
 * they share is in store_redis.h.
 *
 * Two hiredis connections on the daemon's one loop (hiredis's libev
 * adapter): one for commands, one subscribed to this daemon's channel
 * P:d:N, the broadcast P:x and the user channels P:c:NAME held here.
 *
 * The outbox.  Every write is an entry in order, sent when connected and
 * kept until its reply, so that a reconnect sends again what had no
 * answer (every function is idempotent for that: a submission carries a
 * token, a completion its attempt).  Each entry is a mark of the broker's
 * durability gate (broker_store_mark); its reply makes it durable
 * (broker_store_durable): what the faces acknowledge waits for Redis.
 * Intents of one kind made in a row in one loop turn go in one call (up to
 * BATCH_MAX jobs).  Asking for jobs ("dispatch") is not an outbox entry: at
 * most one per type is in flight, and a lost one is found again by
 * "leases" after a reconnect.
 *
 * While Redis is away the broker refuses submissions (unavailable, EIO in
 * the tree); workers keep running, and their results wait in the outbox.
 *
 * Redis may also lose the cluster's data while the daemons run (FLUSHALL,
 * or a restart without persistence).  The key P:epoch names the data set;
 * every heartbeat compares it with the one this daemon saw.  A daemon that
 * finds another registers again (a new number, its workers and mkdir'd
 * types, through a reconnect) and looks at every unfinished job it knows,
 * its workers' ones too: each that Redis no longer has ends failed with
 * LOST_REASON (hello_reply, resync).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "server.h"
#include "store/store_redis.h"

/* The Redis functions (redis_scripts.lua) that the outbox calls, by kind. */
const char *const kind_fn[RK_NKINDS] = {
	"jobfs_submit", "jobfs_complete", "jobfs_partial", "jobfs_requeue",
	"jobfs_end", "jobfs_forget", "jobfs_worker", "jobfs_pin",
	"jobfs_submit_life", "jobfs_fail", "jobfs_kick", "jobfs_config",
};

/* ------------------------------------------------------------ the outbox */

static void
arg_add(struct rcmd *c, const char *p, size_t len, bool copy)
{
	if (c->nargs == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 32;
		c->args = xrealloc(c->args, c->cap * sizeof *c->args);
	}
	if (copy) {
		char *q = xmalloc(len + 1);

		memcpy(q, p, len);
		q[len] = '\0';
		p = q;
	}
	c->args[c->nargs++] = (struct arg){ p, len, copy };
	c->bytes += len;
	c->r->outbox_bytes += len;   /* (rcmd_free takes it back) */
}

void
arg_str(struct rcmd *c, const char *s)
{
	arg_add(c, s, strlen(s), true);
}

void
arg_u64(struct rcmd *c, uint64_t v)
{
	char t[24];

	snprintf(t, sizeof t, "%" PRIu64, v);
	arg_str(c, t);
}

void
arg_i64(struct rcmd *c, int64_t v)
{
	char t[24];

	snprintf(t, sizeof t, "%" PRId64, v);
	arg_str(c, t);
}

void
rcmd_free(struct rstore *r, struct rcmd *c)
{
	size_t i;

	for (i = 0; i < c->nargs; i++)
		if (c->args[i].own)
			free((char *)c->args[i].p);
	for (i = 0; i < c->njobs; i++)
		if (c->jobs[i] != NULL)
			job_unref(r->b, c->jobs[i]);
	r->outbox_bytes -= c->bytes;
	free(c->args);
	free(c->jobs);
	free(c);
}

/*
 * rs_batch: the entry that the next group of kind k goes in: the last
 * one, if it is of that kind, unsent and not full; else a new one (so the
 * outbox keeps the order the broker asked in).  Its seq is the broker's
 * mark now.
 */
struct rcmd *
rs_batch(struct rstore *r, enum rkind k, struct job *j)
{
	struct rcmd *c = TAILQ_LAST(&r->outbox, rcmd_list);

	/* (forget, worker and pin take one group a call) */
	if (c == NULL || c->kind != k || c->sent ||
	    c->njobs >= (k == RK_FORGET || k == RK_WORKER || k == RK_PIN || k == RK_KICK ||
	    k == RK_CONFIG ? 1 : BATCH_MAX)) {
		c = xcalloc(1, sizeof *c);
		c->r = r;
		c->kind = k;
		c->seq = ++r->next_seq;
		TAILQ_INSERT_TAIL(&r->outbox, c, entry);
		broker_store_mark(r->b, c->seq);
	}
	c->jobs = xrealloc(c->jobs, (c->njobs + 1) * sizeof *c->jobs);
	c->jobs[c->njobs++] = j;
	if (j != NULL)
		job_ref(j);
	return c;
}

/* rs_account: past BACKLOG_MAX bytes waiting for Redis, submissions are
 * refused (cmd_reply takes them again below half of it). */
static void
rs_account(struct rstore *r)
{
	if (r->outbox_bytes > BACKLOG_MAX && broker_store_error(r->b) == 0) {
		snprintf(r->reason, sizeof r->reason,
		    "redis: %zu bytes wait to be written to Redis (the limit)", r->outbox_bytes);
		broker_store_set_error(r->b, ENOBUFS, r->reason);
	}
}

/* flush_cb: before the loop sleeps, send what this turn put in the
 * outbox, and ask for jobs for the types that want them. */
static void rs_dispatch(struct rstore *, struct rtype *);

void
flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct rstore *r = w->data;
	struct rtype *t;

	(void)loop;
	(void)revents;
	if (!r->cmd_ok)
		return;
	rs_send_more(r);
	while ((t = r->wanted) != NULL) {
		r->wanted = t->next_wanted;
		t->wanted = false;
		rs_dispatch(r, t);
	}
}

/* cmd_reply: an outbox entry's answer (NULL: the link went; it stays to be
 * sent again). */
static void
cmd_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	struct rcmd *c = priv;
	redisReply *x = reply;

	if (x == NULL || r == NULL || r->closing)
		return;
	r->jobs_out -= c->njobs > 0 ? c->njobs : 1;
	if (x->type == REDIS_REPLY_ERROR && ((!RK_IS_SUBMIT(c->kind) && transient(x->str)) ||
	    strncmp(x->str, "ERR Function not found", 22) == 0)) {
		/* Redis cannot take it now (out of memory, a replica, busy,
		 * loading), or lost the function library (FUNCTION FLUSH): it
		 * stays, to be sent again after a reconnect, which loads the
		 * library first */
		rs_log_error(r, kind_fn[c->kind], x->str);
		rs_teardown(r, x->str);
		return;
	}
	if (r->wait_replicas > 0) {
		/* held (in the outbox, unacknowledged) until WAIT covers it; a
		 * call sent again after a reconnect has had its verdicts */
		if (!c->replied)
			verdicts(r, c, x);
		wait_answered(r, c);
		return;
	}
	TAILQ_REMOVE(&r->outbox, c, entry);
	verdicts(r, c, x);
	if (c->seq > broker_durable(r->b))
		broker_store_durable(r->b, c->seq);
	rcmd_free(r, c);
	if (broker_store_error(r->b) == ENOBUFS && r->outbox_bytes < BACKLOG_MAX / 2)
		broker_store_set_error(r->b, r->up ? 0 : ENOTCONN, r->reason);
}

/* fcall_argv: an outbox entry as a command: FCALL FN 0 P N ARGS...; the
 * caller frees *argv and *lens.  Made at each send: N may have changed. */
size_t
fcall_argv(const struct rstore *r, const struct rcmd *c, const char ***argv, size_t **lens)
{
	size_t n = c->nargs + 5, i;

	*argv = xmalloc(n * sizeof **argv);
	*lens = xmalloc(n * sizeof **lens);
	(*argv)[0] = "FCALL";
	(*argv)[1] = kind_fn[c->kind];
	(*argv)[2] = "0";
	(*argv)[3] = r->prefix;
	(*argv)[4] = r->nstr;
	for (i = 0; i < 5; i++)
		(*lens)[i] = strlen((*argv)[i]);
	for (i = 0; i < c->nargs; i++) {
		(*argv)[5 + i] = c->args[i].p;
		(*lens)[5 + i] = c->args[i].len;
	}
	return n;
}

void
rs_send(struct rstore *r, struct rcmd *c)
{
	const char **argv;
	size_t *lens, n = fcall_argv(r, c, &argv, &lens);

	if (redisAsyncCommandArgv(r->cmd, cmd_reply, c, (int)n, argv, lens) == REDIS_OK) {
		c->sent = true;
		r->jobs_out += c->njobs > 0 ? c->njobs : 1;
		if (r->jobs_out > r->jobs_out_max)
			r->jobs_out_max = r->jobs_out;
	}
	free(argv);
	free(lens);
}

/* rs_send_more: sends the outbox's unsent calls, in order, while fewer
 * than SEND_WINDOW of the jobs sent wait for an answer.  The heartbeat
 * shares the link and is answered after everything sent before it: a
 * flood of submissions sent at once kept it waiting past half the lease,
 * and the link was dropped.  Calls held back meanwhile fill up to
 * BATCH_MAX jobs (rs_batch), so fewer calls carry the same jobs. */
void
rs_send_more(struct rstore *r)
{
	struct rcmd *c;

	TAILQ_FOREACH_REVERSE(c, &r->outbox, rcmd_list, entry) {
		if (c->sent)
			break;
	}
	for (c = c == NULL ? TAILQ_FIRST(&r->outbox) : TAILQ_NEXT(c, entry);
	    c != NULL && r->jobs_out < SEND_WINDOW; c = TAILQ_NEXT(c, entry)) {
		rs_send(r, c);
		if (!c->sent)
			break;
	}
}

/* ------------------------------------------------------------ intents */

static void
flags_of(const struct job *j, char *f)
{
	if (j->detach)
		*f++ = 'd';
	if (j->stream)
		*f++ = 's';
	if (j->notify)
		*f++ = 'n';
	if (j->id_is_key)
		*f++ = 'i';
	if (j->master != NULL && !j->detach)
		*f++ = 'o';
	*f = '\0';
}

void
rs_submit(void *ctx, struct job *j)
{
	struct rstore *r = ctx;
	bool life = j->life != NULL && j->life->opted;
	struct rcmd *c = rs_batch(r, life ? RK_SUBMIT_LIFE : RK_SUBMIT, j);
	char p16[17], flags[8], src[64];

	redis_prio16(j->priority, p16);
	flags_of(j, flags);
	snprintf(src, sizeof src, "%s:%" PRIu64 ":%" PRIu64, r->nstr, c->seq, (uint64_t)j->seq);
	arg_str(c, j->key);
	arg_str(c, p16);
	arg_str(c, j->type->name);
	arg_str(c, j->id_is_key ? "" : job_idjson(j));
	arg_add(c, job_body(j), j->body_len, false);   /* the job is held */
	arg_i64(c, j->priority);
	arg_str(c, flags);
	arg_i64(c, j->ext != NULL ? j->ext->timeout_ms : 0);
	arg_str(c, job_target(j) != NULL ? job_target(j) : "");
	arg_str(c, src);
	arg_str(c, j->owner != NULL ? j->owner : "");
	if (life)
		life_submit_args(c, j);
	rs_account(r);
}

void
rs_complete(void *ctx, struct job *j, enum job_state why)
{
	struct rstore *r = ctx;
	struct rcmd *c = rs_batch(r, RK_COMPLETE, NULL);

	arg_str(c, j->key);
	arg_u64(c, job_att(j));
	arg_str(c, why == JOB_DONE ? "done" : "failed");
	arg_add(c, j->result != NULL ? j->result->data : "", j->result_len, true);
	rs_account(r);
}

void
rs_partial(void *ctx, struct job *j, const char *body, size_t len)
{
	struct rstore *r = ctx;
	struct rcmd *c = rs_batch(r, RK_PARTIAL, NULL);
	const struct buf *p = job_partials(j);
	uint64_t idx = 0;
	size_t k;

	/* Its number: the partials kept so far (each one line). */
	if (p != NULL)
		for (k = p->off; k < p->len; k++)
			idx += p->data[k] == '\n';
	arg_str(c, j->key);
	arg_u64(c, job_att(j));
	arg_u64(c, idx);
	arg_add(c, body, len, true);
	rs_account(r);
}

void
rs_requeue(void *ctx, struct job *j, bool lost)
{
	struct rstore *r = ctx;
	struct rcmd *c = rs_batch(r, RK_REQUEUE, j->master != NULL ? j : NULL);

	arg_str(c, j->key);
	arg_u64(c, job_att(j));
	arg_str(c, lost ? "1" : "0");
}

/* requeue_key: give back a job the broker could not place (no local copy). */
void
requeue_key(struct rstore *r, const char *key, const char *att)
{
	struct rcmd *c = rs_batch(r, RK_REQUEUE, NULL);

	arg_str(c, key);
	arg_str(c, att);
	arg_str(c, "0");
}

void
rs_end(void *ctx, struct job *j, enum job_state why, bool if_queued)
{
	struct rstore *r = ctx;
	struct rcmd *c = rs_batch(r, RK_END, NULL);

	arg_str(c, j->key);
	arg_str(c, job_state_name(why));
	arg_str(c, if_queued ? "1" : "0");
}

/* rs_pin: a type made (or unmade) in the tree is listed in every tree. */
void
rs_pin(void *ctx, struct jtype *t, bool on)
{
	struct rstore *r = ctx;
	struct rcmd *c = rs_batch(r, RK_PIN, NULL);

	arg_str(c, t->name);
	arg_str(c, on ? "on" : "off");
}

void
rs_forget(void *ctx, struct job *j)
{
	struct rstore *r = ctx;
	struct rcmd *c = rs_batch(r, RK_FORGET, NULL);

	arg_str(c, j->key);
}

/* ------------------------------------------------------------ dispatch */

struct rtype *
rtype_get(struct rstore *r, const char *name)
{
	struct rtype *t;

	HASH_FIND_STR(r->types, name, t);
	if (t == NULL) {
		t = xcalloc(1, sizeof *t);
		t->name = xstrdup(name);
		HASH_ADD_KEYPTR(hh, r->types, t->name, strlen(t->name), t);
	}
	return t;
}

void
rs_want(void *ctx, struct jtype *jt)
{
	struct rstore *r = ctx;
	struct rtype *t = rtype_get(r, jt->name);

	if (t->inflight) {
		t->again = true;
		return;
	}
	if (t->wanted)
		return;
	t->wanted = true;
	t->next_wanted = r->wanted;
	r->wanted = t;
}

/* One dispatch call: the workers asked for, held until the answer. */
struct rdisp {
	struct rstore  *r;
	struct rtype   *t;
	struct worker **w;
	size_t          nw;
	const char    **argv;
	size_t         *lens;
	size_t          argc, cap;
	char           *strs;     /* the slot counts' text */
};

static bool
disp_add(void *ctx, struct worker *w, unsigned slots)
{
	struct rdisp *d = ctx;

	if (d->nw >= 256)
		return false;
	d->w = xrealloc(d->w, (d->nw + 1) * sizeof *d->w);
	d->w[d->nw++] = w;
	broker_worker_hold(w);
	d->argv[d->argc] = worker_name(w);
	d->lens[d->argc] = strlen(worker_name(w));
	d->argc++;
	snprintf(d->strs + 12 * (d->nw - 1), 12, "%u", slots > 1000 ? 1000 : slots);
	d->argv[d->argc] = d->strs + 12 * (d->nw - 1);
	d->lens[d->argc] = strlen(d->argv[d->argc]);
	d->argc++;
	return true;
}

static void
rdisp_free(struct rdisp *d)
{
	size_t i;

	for (i = 0; i < d->nw; i++)
		broker_worker_release(d->w[i]);
	free(d->w);
	free(d);
}

#define DISP_GROUP 14

static void
disp_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rdisp *d = priv;
	struct rstore *r = d->r;
	redisReply *x = reply;
	struct rtype *t = d->t;
	size_t i;

	(void)ac;
	t->inflight = false;
	if (x == NULL || r->closing) {
		rdisp_free(d);
		return;
	}
	if (x->type == REDIS_REPLY_ERROR)
		rs_log_error(r, "jobfs_dispatch", x->str);
	else if (x->type == REDIS_REPLY_ARRAY)
		for (i = 0; i + DISP_GROUP <= x->elements; i += DISP_GROUP) {
			redisReply **g = x->element + i;
			int64_t widx = rnum(g[0]);
			const char *flags = rstr(g[6], NULL), *target = rstr(g[8], NULL);
			struct restore_req rq = {
				.type = t->name,
				.key = rstr(g[1], NULL),
				.idjson = *rstr(g[3], NULL) != '\0' ? rstr(g[3], NULL) : NULL,
				.body = rstr(g[4], &rq.body_len),
				.priority = rnum(g[5]),
				.target = *target != '\0' ? target : NULL,
				.submitted = (double)rnum(g[10]) / 1000.0,
				.losses = (unsigned)rnum(g[11]),
				.owner = *rstr(g[12], NULL) != '\0' ? rstr(g[12], NULL) : NULL,
				.detach = strchr(flags, 'd') != NULL,
				.stream = strchr(flags, 's') != NULL,
				.notify = strchr(flags, 'n') != NULL,
			};
			struct worker *w = widx >= 1 && (size_t)widx <= d->nw ? d->w[widx - 1] : NULL;

			/* an integer id's JSON is its key; every other job has its
			 * id's JSON in "id" (NULL would quote the key: job_alloc) */
			if (strchr(flags, 'i') != NULL)
				rq.idjson = rq.key;
			rq.body = rq.body_len > 0 ? rq.body : "null";
			if (rq.body_len == 0)
				rq.body_len = 4;
			if (w == NULL ||
			    broker_be_dispatch(r->b, w, &rq, (uint32_t)rnum(g[2])) == NULL)
				requeue_key(r, rq.key, rstr(g[2], NULL));
		}
	rdisp_free(d);
	if (t->again) {
		t->again = false;
		struct jtype *jt = broker_type(r->b, t->name, false);

		if (jt != NULL)
			rs_want(r, jt);
	}
}

static void
rs_dispatch(struct rstore *r, struct rtype *t)
{
	struct jtype *jt = broker_type(r->b, t->name, false);
	struct rdisp *d;
	const char *argv[6 + 2 * 256];   /* FCALL ... T, then 256 name/slots pairs */
	size_t lens[6 + 2 * 256];
	char strs[12 * 256];
	size_t i;

	if (jt == NULL || t->inflight || !r->cmd_ok)
		return;
	d = xcalloc(1, sizeof *d);
	d->r = r;
	d->t = t;
	d->argv = argv;
	d->lens = lens;
	d->strs = strs;
	argv[0] = "FCALL";
	argv[1] = "jobfs_dispatch";
	argv[2] = "0";
	argv[3] = r->prefix;
	argv[4] = r->nstr;
	argv[5] = t->name;
	d->argc = 6;
	broker_idle_each(r->b, jt, disp_add, d);
	if (d->nw == 0) {
		rdisp_free(d);
		return;
	}
	for (i = 0; i < d->argc; i++)
		if (i < 6)
			lens[i] = strlen(argv[i]);
	if (redisAsyncCommandArgv(r->cmd, disp_reply, d, (int)d->argc, argv, lens) != REDIS_OK) {
		rdisp_free(d);
		return;
	}
	t->inflight = true;
}

/* reask_cb: every second, types with idle workers ask again (a wake-up
 * event is at most once: one lost to a reconnect is found again here). */
bool
reask_type(void *ctx, struct jtype *jt)
{
	struct rstore *r = ctx;

	if (TAILQ_FIRST(&jt->idle) != NULL)
		rs_want(r, jt);
	return true;
}

void
reask_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rstore *r = w->data;

	(void)loop;
	(void)revents;
	if (r->up)
		broker_types_each(r->b, reask_type, r);
}

/* ------------------------------------------------------------ channels */

/* rs_publish: the channels' transport (chan_set_transport): a message to
 * every daemon, this one too; -1 if Redis is away. */
int
rs_publish(void *ctx, const char *chan, const char *text, size_t len)
{
	struct rstore *r = ctx;

	if (!r->up)
		return -1;
	redisAsyncCommand(r->cmd, NULL, NULL, "PUBLISH %s:c:%s %b", r->prefix, chan, text, len);
	return 0;
}

/* rstore_stats: the link's figures in stats (a stats hook): jobs of calls
 * sent and not yet answered, now and at most, and the most lookups a
 * resync had in flight at once; each bounded by a window. */
void
rstore_stats(void *ctx, json_t *o)
{
	struct server *srv = ctx;
	struct rstore *r = srv->redis;

	if (r == NULL)
		return;
	json_object_set_new(o, "redis_in_flight", json_integer((json_int_t)r->jobs_out));
	json_object_set_new(o, "redis_in_flight_max", json_integer((json_int_t)r->jobs_out_max));
	json_object_set_new(o, "redis_resync_in_flight_max",
	    json_integer((json_int_t)r->resync_out_max));
}
