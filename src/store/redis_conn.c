/*
 * redis_conn.c: cluster mode's connections: connecting and reconnecting
 * (with backoff), the hello and its heartbeat, loading the functions
 * (redis_scripts.lua), the subscription, reaping the leases of daemons
 * gone, the worker counts registered again, and the store's lifetime
 * (open, start, close).  See store_redis.c.
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
#include <hiredis/adapters/libev.h>

#include "server.h"
#include "store/store_redis.h"

/* redis_scripts.lua, compiled in by the Makefile (xxd -i) */
extern unsigned char redis_scripts_lua[];
extern unsigned int redis_scripts_lua_len;

/* ----------------------------------------------------------- connecting */

static void on_connect(const redisAsyncContext *, int);
static void on_disconnect(const redisAsyncContext *, int);

static void
sub_start(struct rstore *r)
{
	char d[256], xch[256];

	r->sub = redisAsyncConnect(r->url.host, r->url.port);
	if (r->sub == NULL || r->sub->err) {
		rs_teardown(r, r->sub != NULL ? r->sub->errstr : "out of memory");
		return;
	}
	r->sub->data = r;
	redisLibevAttach(r->srv->loop, r->sub);
	redisAsyncSetConnectCallback(r->sub, on_connect);
	redisAsyncSetDisconnectCallback(r->sub, on_disconnect);
	if (r->url.password[0] != '\0')
		redisAsyncCommand(r->sub, NULL, NULL, "AUTH %s", r->url.password);
	snprintf(d, sizeof d, "%s:d:%s", r->prefix, r->nstr);
	snprintf(xch, sizeof xch, "%s:x", r->prefix);
	/* Every user channel: each daemon delivers to whoever listens here. */
	redisAsyncCommand(r->sub, sub_msg, NULL, "PSUBSCRIBE %s:c:*", r->prefix);
	redisAsyncCommand(r->sub, sub_msg, NULL, "SUBSCRIBE %s %s", d, xch);
}

static void leases_reply(redisAsyncContext *, void *, void *);
static void reregister(struct rstore *);

/* hello_reply: this daemon's number, and the epoch of the data (a new one:
 * Redis lost the data); the first answer on a connection starts the rest
 * (leases, the outbox, registration, the subscriber). */
static void
hello_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	redisReply *x = reply;
	bool first = priv != NULL, lost = false;
	uint64_t n;
	struct rcmd *c;
	const char *epoch;
	size_t elen;

	if (x == NULL || r == NULL || r->closing)
		return;
	r->hello_out = false;
	if (x->type != REDIS_REPLY_ARRAY || x->elements < 3) {
		rs_log_error(r, "jobfs_hello", x->type == REDIS_REPLY_ERROR ? x->str :
		    "an answer that is not an array of 3");
		rs_teardown(r, x->type == REDIS_REPLY_ERROR ? x->str : "a bad answer");
		return;
	}
	r->hello_ok = rs_now(r);
	n = (uint64_t)rnum(x->element[0]);
	epoch = rstr(x->element[2], &elen);
	if (elen > 0 && elen < sizeof r->epoch) {
		lost = r->epoch[0] != '\0' && strcmp(epoch, r->epoch) != 0;
		memcpy(r->epoch, epoch, elen + 1);
	}
	if (lost) {
		log_err("redis %s:%d: the cluster's data is gone from Redis (flushed, or "
		    "restarted without persistence): the jobs it no longer has end failed; "
		    "this daemon (was %" PRIu64 ", now %" PRIu64 ") registers again",
		    r->url.host, r->url.port, r->n, n);
		r->lost = true;   /* the next resync ends what Redis no longer has */
	}
	if (n != r->n) {
		if (r->n != 0 && !lost) {
			struct job_cursor cur = { 0 };
			struct job *j;

			log_warn("redis: this daemon (%" PRIu64 ") was taken for dead while away: "
			    "now daemon %" PRIu64 "; jobs its workers ran were given to others",
			    r->n, n);
			/* Their leases went: what the workers answer now is late. */
			broker_cursor_open(r->b, &cur);
			while ((j = broker_cursor_job(&cur)) != NULL) {
				broker_cursor_advance(&cur);
				if (j->shared && j->state == JOB_RUNNING && j->worker != NULL)
					broker_be_lost(r->b, j);
			}
			broker_cursor_close(r->b, &cur);
		}
		r->n = n;
		snprintf(r->nstr, sizeof r->nstr, "%" PRIu64, n);
		{
			char suffix[24];

			snprintf(suffix, sizeof suffix, ".%" PRIu64, n);
			broker_set_id_suffix(r->b, suffix);
		}
		if (!first && r->cmd_ok && !lost) {
			/* (the loop stalled past the lease): subscribe as the new
			 * number, and look at every job again */
			rs_teardown(r, "this daemon was taken for dead");
			return;
		}
	}
	if (lost && !first && r->cmd_ok) {
		/* register again and look at every job, as after an outage */
		rs_teardown(r, "Redis lost the cluster's data");
		return;
	}
	if (!first || r->cmd_ok)
		return;
	r->cmd_ok = true;
	broker_types_each(r->b, wk_mark, r);   /* Redis may have lost them */
	redisAsyncCommand(r->cmd, leases_reply, NULL, "FCALL jobfs_leases 0 %s %s",
	    r->prefix, r->nstr);
	TAILQ_FOREACH(c, &r->outbox, entry) {
		c->resent = c->sent;
		c->sent = false;
	}
	r->jobs_out = 0;   /* the old link's calls will not be answered */
	reregister(r);
	rs_send_more(r);
	sub_start(r);
	life_connected(r);
}

/*
 * types_reply: the cluster's types (SMEMBERS P:types, asked once
 * subscribed): each is held here, and a type held here that Redis no
 * longer lists is let go (its t- was published while this daemon was
 * away, or Redis lost it with the data).  A type whose t+ or t- came after
 * the question is left as that event put it.
 */
static void
types_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	redisReply *x = reply;
	uint64_t asked = (uint64_t)(uintptr_t)priv;
	struct rtype *t, *tmp;
	size_t i;

	if (x == NULL || r == NULL || r->closing || x->type != REDIS_REPLY_ARRAY ||
	    asked != r->types_asked)
		return;
	HASH_ITER(hh, r->types, t, tmp)
		t->listed = false;
	for (i = 0; i < x->elements; i++) {
		const char *name = rstr(x->element[i], NULL);

		if (!type_name_valid(name, strlen(name)))
			continue;
		t = rtype_get(r, name);
		t->listed = true;
		if (t->heard != asked)
			type_listed(r, name, true);
	}
	HASH_ITER(hh, r->types, t, tmp)
		if (t->held && !t->listed && t->heard != asked)
			type_listed(r, t->name, false);
}

/* ask_types: SMEMBERS P:types (types_reply). */
void
ask_types(struct rstore *r)
{
	r->types_asked++;
	redisAsyncCommand(r->cmd, types_reply, (void *)(uintptr_t)r->types_asked,
	    "SMEMBERS %s:types", r->prefix);
}

/* leases_reply: jobs Redis says run here; one no local worker runs (a
 * dispatch whose answer the link lost) goes back to its queue. */
static void
leases_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	redisReply *x = reply;
	size_t i;

	(void)priv;
	if (x == NULL || r == NULL || r->closing || x->type != REDIS_REPLY_ARRAY)
		return;
	for (i = 0; i + 2 <= x->elements; i += 2) {
		const char *key = rstr(x->element[i], NULL), *att = rstr(x->element[i + 1], NULL);
		struct job *j = broker_find(r->b, key);

		if (j == NULL || j->state != JOB_RUNNING || j->worker == NULL ||
		    job_att(j) != strtoul(att, NULL, 10))
			requeue_key(r, key, att);
	}
}

static void
setup_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	redisReply *x = reply;

	if (x == NULL || r == NULL || r->closing)
		return;
	if (x->type == REDIS_REPLY_ERROR) {
		char what[64];

		snprintf(what, sizeof what, "%s%s", (const char *)priv,
		    strstr(x->str, "unknown command") != NULL ?
		    " (jobfs needs Redis 7.0 or later)" : "");
		rs_log_error(r, what, x->str);
		rs_teardown(r, x->str);
	}
}

static void
send_hello(struct rstore *r, bool first)
{
	char info[300], host[200], lease[16];

	if (gethostname(host, sizeof host) != 0)
		strcpy(host, "?");
	host[sizeof host - 1] = '\0';
	snprintf(info, sizeof info, "%s %d %.0f %s", host, (int)getpid(), r->srv->started,
	    JOBFS_VERSION);
	snprintf(lease, sizeof lease, "%d", r->lease_ms);
	redisAsyncCommand(r->cmd, hello_reply, first ? (void *)r : NULL,
	    "FCALL jobfs_hello 0 %s %s %s %s %s", r->prefix, r->n ? r->nstr : "0", info, lease,
	    r->epoch);
	r->hello_out = true;
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct rstore *r = ac->data;

	if (r == NULL || r->closing)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees ac when this returns: it is not ours to free */
		if (ac == r->cmd)
			r->cmd = NULL;
		if (ac == r->sub)
			r->sub = NULL;
		rs_teardown(r, ac->errstr);
	}
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rstore *r = ac->data;

	(void)status;
	if (r == NULL)
		return;
	if (ac == r->cmd)
		r->cmd = NULL;
	if (ac == r->sub)
		r->sub = NULL;
	if (!r->closing)
		rs_teardown(r, ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
}

/* rs_connect: connect to the Redis at r->url (with Sentinel, the master
 * it named: see sentinel_connect). */
void
rs_connect(struct rstore *r)
{
	r->cmd = redisAsyncConnect(r->url.host, r->url.port);
	if (r->cmd == NULL || r->cmd->err) {
		char why[200];

		snprintf(why, sizeof why, "%s", r->cmd != NULL ? r->cmd->errstr : "out of memory");
		if (r->cmd != NULL)
			redisAsyncFree(r->cmd);
		r->cmd = NULL;
		rs_teardown(r, why);
		return;
	}
	r->cmd->data = r;
	redisLibevAttach(r->srv->loop, r->cmd);
	redisAsyncSetConnectCallback(r->cmd, on_connect);
	redisAsyncSetDisconnectCallback(r->cmd, on_disconnect);
	if (r->url.password[0] != '\0')
		redisAsyncCommand(r->cmd, setup_reply, "AUTH", "AUTH %s", r->url.password);
	/* A PING first: a Redis that wants a password says so here (NOAUTH),
	 * rather than by refusing the big FUNCTION LOAD as a protocol error. */
	redisAsyncCommand(r->cmd, setup_reply, "PING", "PING");
	sentinel_role(r);
	if (r->url.db != 0)
		redisAsyncCommand(r->cmd, setup_reply, "SELECT", "SELECT %d", r->url.db);
	redisAsyncCommand(r->cmd, setup_reply, "FUNCTION LOAD",
	    "FUNCTION LOAD REPLACE %b", redis_scripts_lua, (size_t)redis_scripts_lua_len);
	send_hello(r, true);
	ev_timer_stop(r->srv->loop, &r->connect_to);
	ev_timer_set(&r->connect_to, CONNECT_TIMEOUT, 0.);
	ev_timer_start(r->srv->loop, &r->connect_to);
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	if (((struct rstore *)w->data)->url.master[0] != '\0')
		sentinel_connect(w->data);
	else
		rs_connect(w->data);
}

static void
connect_to_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rstore *r = w->data;

	(void)loop;
	(void)revents;
	if (!r->up)
		rs_teardown(r, "no answer within 2 s");
}

/*
 * rs_teardown: the link is gone (or never came): both connections go,
 * submissions are refused, and a reconnect follows after a backoff
 * (50 ms doubling, at most min(2 s, lease/2), with jitter).  The outbox
 * stays; dispatch calls in flight are forgotten (their callbacks run now
 * with no answer).
 */
void
rs_teardown(struct rstore *r, const char *why)
{
	redisAsyncContext *c = r->cmd, *s = r->sub;
	double cap = r->lease_ms / 2000.0 < 2.0 ? r->lease_ms / 2000.0 : 2.0;
	struct rtype *t, *tmp;

	if (ev_is_active(&r->retry))
		return;   /* already down */
	if (r->up || r->down_since == 0) {
		if (r->up)
			log_err("redis %s:%d: lost (%s); submissions are refused until it is back",
			    r->url.host, r->url.port, why);
		else
			log_err("redis %s:%d: cannot connect (%s); trying again",
			    r->url.host, r->url.port, why);
		r->down_since = rs_now(r);
	}
	r->up = r->cmd_ok = r->sub_ok = false;
	r->hello_out = false;
	sentinel_down(r);
	rs_unavailable(r, why);
	r->cmd = r->sub = NULL;
	if (c != NULL) {
		c->data = NULL;   /* its callbacks see no store: nothing is touched */
		redisAsyncFree(c);
	}
	if (s != NULL) {
		s->data = NULL;
		redisAsyncFree(s);
	}
	HASH_ITER(hh, r->types, t, tmp)
		t->inflight = false;
	ev_timer_stop(r->srv->loop, &r->connect_to);
	r->backoff = r->backoff == 0 ? 0.05 : r->backoff * 2;
	if (r->backoff > cap)
		r->backoff = cap;
	ev_timer_set(&r->retry, r->backoff * (0.8 + 0.4 * (rand() / (double)RAND_MAX)), 0.);
	ev_timer_start(r->srv->loop, &r->retry);
}

/* hello_cb: the heartbeat (every lease/5): it keeps this daemon's lease,
 * and a link that does not answer within lease/2 is dropped. */
static void
hello_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rstore *r = w->data;

	(void)loop;
	(void)revents;
	if (!r->cmd_ok)
		return;
	if (r->hello_out && rs_now(r) - r->hello_ok > r->lease_ms / 2000.0) {
		rs_teardown(r, "no answer to the heartbeat");
		return;
	}
	if (r->up)
		r->backoff = 0;
	send_hello(r, false);
}

static void
reap_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	redisReply *x = reply;

	(void)priv;
	if (x == NULL || r == NULL || r->closing)
		return;
	if (x->type == REDIS_REPLY_ERROR) {
		rs_log_error(r, "jobfs_reap", x->str);
		return;
	}
	if (x->type == REDIS_REPLY_ARRAY && x->elements >= 7) {
		if (rnum(x->element[0]) > 0)
			log_warn("redis: %lld daemon(s) lost their lease: %lld job(s) queued again, "
			    "%lld failed, %lld cancelled", (long long)rnum(x->element[0]),
			    (long long)rnum(x->element[1]), (long long)rnum(x->element[2]),
			    (long long)rnum(x->element[3]));
		if (rnum(x->element[6]) != 0) {   /* a limit was hit: again, soon */
			ev_timer_stop(r->srv->loop, &r->reap);
			ev_timer_set(&r->reap, 0.01, 0.5);
			ev_timer_start(r->srv->loop, &r->reap);
		}
	}
}

/* reap_cb: every 0.5 s (with jitter), once connected for longer than a
 * lease (so that after a Redis restart every live daemon said hello
 * first): reclaim dead daemons' leases, time out, forget old jobs. */
static void
reap_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rstore *r = w->data;
	char keep[32], kmax[32];

	(void)loop;
	(void)revents;
	w->repeat = 0.4 + 0.2 * (rand() / (double)RAND_MAX);   /* jitter */
	ev_timer_again(r->srv->loop, w);
	if (!r->up || rs_now(r) - r->up_since < r->lease_ms / 1000.0 + 1.0)
		return;
	snprintf(keep, sizeof keep, "%.0f", r->srv->opt.keep * 1000.0);
	snprintf(kmax, sizeof kmax, "%zu", r->srv->opt.keep_max);
	redisAsyncCommand(r->cmd, reap_reply, NULL, "FCALL jobfs_reap 0 %s %s %s %s",
	    r->prefix, r->nstr, keep, kmax);
}

/* ------------------------------------------------------- worker counts */

static void
count_worker(struct rstore *r, struct jtype *t, int delta)
{
	struct rcmd *c = rs_batch(r, RK_WORKER, NULL);

	rtype_get(r, t->name)->counted = true;
	arg_str(c, t->name);
	arg_i64(c, delta);
}

static bool
repin(void *ctx, struct jtype *jt)
{
	if (jt->pinned)
		rs_pin(ctx, jt, true);
	return true;
}

/*
 * reregister: on every (re)connection, after what the outbox holds, this
 * daemon says again what it has: its number of workers of each type it
 * counted (absolute, so that a count sent twice over a reconnect, or lost
 * with the data, is right again) and the types made in its tree.  The
 * lease is the hello's; idle workers ask for jobs once subscribed.
 */
static void
reregister(struct rstore *r)
{
	struct rtype *t, *tmp;
	struct jtype *jt;
	struct rcmd *c;

	HASH_ITER(hh, r->types, t, tmp) {
		if (!t->counted)
			continue;
		jt = broker_type(r->b, t->name, false);
		c = rs_batch(r, RK_WORKER, NULL);
		arg_str(c, t->name);
		arg_u64(c, jt != NULL ? jt->nworkers : 0);
		arg_str(c, "set");
		if (jt == NULL || jt->nworkers == 0)
			t->counted = false;
	}
	broker_types_each(r->b, repin, r);
}

static void
on_worker_joined(void *ctx, struct worker *w, struct jtype *t)
{
	(void)w;
	count_worker(ctx, t, 1);
	wk_dirty(ctx, t);
}

static void
on_worker_left(void *ctx, struct worker *w, struct jtype *t)
{
	(void)w;
	count_worker(ctx, t, -1);
	wk_dirty(ctx, t);
}

/* ------------------------------------------------------------ lifetime */

int
rstore_open(struct server *srv, char *err, size_t errlen)
{
	static const struct broker_backend be0 = {
		.submit = rs_submit, .want = rs_want, .complete = rs_complete,
		.partial = rs_partial, .requeue = rs_requeue, .end = rs_end,
		.forget = rs_forget, .lookup = rs_lookup, .query = rs_query,
		.pin = rs_pin, .sched_claim = rs_sched_claim, .fail = rs_fail,
		.kick = rs_kick, .config = rs_config,
	};
	struct broker_backend be = be0;
	struct broker_listener l = {
		.worker_joined = on_worker_joined, .worker_left = on_worker_left,
		.job_dispatched = on_job_moved, .job_finished = on_job_moved,
		.schedule_changed = rs_sched_changed,
	};
	struct rstore *r = xcalloc(1, sizeof *r);
	const char *pw = getenv("JOBFS_REDIS_PASSWORD");

	if (redis_url_parse(srv->opt.redis_url, &r->url, err, errlen) < 0) {
		free(r);
		return -1;
	}
	if (r->url.password[0] == '\0' && pw != NULL)
		snprintf(r->url.password, sizeof r->url.password, "%s", pw);
	snprintf(r->prefix, sizeof r->prefix, "%s", srv->opt.redis_prefix);
	r->lease_ms = srv->opt.redis_lease_ms;
	r->wait_replicas = srv->opt.redis_wait_replicas;
	r->srv = srv;
	r->b = srv->broker;
	TAILQ_INIT(&r->outbox);
	be.ctx = r;
	l.ctx = r;
	broker_set_backend(r->b, &be);
	chan_set_transport(r->b, rs_publish, r);
	broker_store_listen(r->b, &l);
	srv->redis = r;
	rs_unavailable(r, "connecting");
	return 0;
}

void
rstore_start(struct server *srv)
{
	struct rstore *r = srv->redis;
	struct ev_loop *loop = srv->loop;

	if (r == NULL)
		return;
	srand((unsigned)getpid() ^ (unsigned)(ev_time() * 1e6));
	ev_prepare_init(&r->flush, flush_cb);
	r->flush.data = r;
	ev_prepare_start(loop, &r->flush);
	ev_timer_init(&r->retry, retry_cb, 0., 0.);
	r->retry.data = r;
	ev_timer_init(&r->connect_to, connect_to_cb, CONNECT_TIMEOUT, 0.);
	r->connect_to.data = r;
	ev_timer_init(&r->hello, hello_cb, r->lease_ms / 5000.0, r->lease_ms / 5000.0);
	r->hello.data = r;
	ev_timer_start(loop, &r->hello);
	ev_timer_init(&r->reap, reap_cb, 0.5, 0.5);
	r->reap.data = r;
	ev_timer_start(loop, &r->reap);
	ev_timer_init(&r->reask, reask_cb, 1.0, 1.0);
	r->reask.data = r;
	ev_timer_start(loop, &r->reask);
	ev_timer_init(&r->workers, workers_cb, 0.25, 0.);
	r->workers.data = r;
	life_start(r);
	if (r->url.master[0] != '\0')
		sentinel_connect(r);
	else
		rs_connect(r);
}

/*
 * goodbye: on exit, what the outbox still holds (the requeues of the jobs
 * this daemon's workers ran, as their connections closed) is written over
 * a plain blocking connection, and the heartbeat key is deleted, so that
 * the other daemons reclaim at once what is left rather than after the
 * lease.  At most a second or two; if Redis is away, the lease does it.
 */
static void
goodbye(struct rstore *r)
{
	struct timeval tv = { 1, 0 };
	redisContext *c;
	redisReply *x;
	struct rcmd *e;
	size_t n = 0, i;

	if (r->n == 0 || (c = redisConnectWithTimeout(r->url.host, r->url.port, tv)) == NULL)
		return;
	if (c->err) {
		redisFree(c);
		return;
	}
	redisSetTimeout(c, tv);
	if (r->url.password[0] != '\0')
		redisAppendCommand(c, "AUTH %s", r->url.password), n++;
	if (r->url.db != 0)
		redisAppendCommand(c, "SELECT %d", r->url.db), n++;
	TAILQ_FOREACH(e, &r->outbox, entry) {
		const char **argv;
		size_t *lens, argc = fcall_argv(r, e, &argv, &lens);

		redisAppendCommandArgv(c, (int)argc, argv, lens);
		n++;
		free(argv);
		free(lens);
	}
	redisAppendCommand(c, "DEL %s:hb:%s", r->prefix, r->nstr), n++;
	for (i = 0; i < n; i++) {
		if (redisGetReply(c, (void **)&x) != REDIS_OK)
			break;
		freeReplyObject(x);
	}
	redisFree(c);
}

void
rstore_close(struct server *srv)
{
	struct rstore *r = srv->redis;
	struct ev_loop *loop = srv->loop;
	struct rtype *t, *tmp;
	struct stash *s, *stmp;
	struct rcmd *c;

	if (r == NULL)
		return;
	goodbye(r);
	r->closing = true;
	ev_prepare_stop(loop, &r->flush);
	ev_timer_stop(loop, &r->retry);
	ev_timer_stop(loop, &r->connect_to);
	ev_timer_stop(loop, &r->hello);
	ev_timer_stop(loop, &r->reap);
	ev_timer_stop(loop, &r->reask);
	ev_timer_stop(loop, &r->workers);
	life_stop(r);
	if (r->cmd != NULL)
		redisAsyncFree(r->cmd);
	if (r->sub != NULL)
		redisAsyncFree(r->sub);
	sentinel_close(r);
	while ((c = TAILQ_FIRST(&r->outbox)) != NULL) {
		TAILQ_REMOVE(&r->outbox, c, entry);
		rcmd_free(r, c);
	}
	HASH_ITER(hh, r->types, t, tmp) {
		struct jtype *jt;

		if (t->held && (jt = broker_type(r->b, t->name, false)) != NULL)
			broker_type_unref(r->b, jt);
		HASH_DEL(r->types, t);
		free(t->name);
		free(t);
	}
	HASH_ITER(hh, r->stash, s, stmp) {
		HASH_DEL(r->stash, s);
		free(s->result);
		free(s);
	}
	resync_drop(r);
	free(r);
	srv->redis = NULL;
}
