/*
 * redis_life.c: cluster mode's job lifecycle (see jobfs-redis(7),
 * LIFECYCLE): the lifecycle options of a submission (jobfs_submit_life),
 * a worker's failed attempt (jobfs_fail: retried after its backoff on any
 * daemon, or dead), the dead set and kick (jobfs_kick), a type's settings
 * for every daemon (jobfs_config, the `k` event), and the delayed jobs'
 * timer: whichever daemon's timer fires first moves the jobs that are due
 * (jobfs_due), each by exactly one call.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "server.h"
#include "store/store_redis.h"

#define DUE_MAX 200   /* delayed jobs moved per jobfs_due call */

/* life_submit_args: the 4 arguments jobfs_submit_life adds: delay_ms
 * at_ms retries backoff_ms (retries -1: the type's default).  The delay is
 * counted from the submission, as Redis records it (its `sub`), so that
 * a job held in the outbox comes due late rather than early. */
void
life_submit_args(struct rcmd *c, struct job *j)
{
	const struct job_life *L = j->life;
	double wait = L->due > 0 ? (L->due - j->submitted) * 1000.0 : 0;

	arg_i64(c, wait > 0 ? (int64_t)(wait + 0.5) : 0);
	arg_i64(c, 0);
	arg_i64(c, L->retries);
	arg_i64(c, L->backoff_ms > 0 ? L->backoff_ms : 0);
}

void
rs_fail(void *ctx, struct job *j, const char *err)
{
	struct rstore *r = ctx;
	/* the copy submitted here stays: it hears the verdict */
	struct rcmd *c = rs_batch(r, RK_FAIL, j->master != NULL || j->pending ? j : NULL);

	arg_str(c, j->key);
	arg_u64(c, job_att(j));
	arg_str(c, err);
}

/* life_verdict: jobfs_fail's answer for group i: a job submitted here that
 * is out of retries ends failed (Redis tells the other daemons by event,
 * not this one). */
void
life_verdict(struct rstore *r, struct rcmd *c, size_t i, redisReply *v)
{
	struct job *j = c->jobs[i];
	const struct arg *e = 3 * i + 2 < c->nargs ? &c->args[3 * i + 2] : NULL;

	if (j == NULL || v == NULL || v->type != REDIS_REPLY_STRING ||
	    strcmp(v->str, "failed") != 0 || JOB_FINISHED(j) || e == NULL)
		return;
	broker_be_finished(r->b, j, JOB_FAILED, e->p, e->len);
}

void
rs_kick(void *ctx, const char *key, const char *type)
{
	struct rstore *r = ctx;
	struct rcmd *c = rs_batch(r, RK_KICK, NULL);

	arg_str(c, key);
	arg_str(c, type != NULL ? type : "");
}

void
rs_config(void *ctx, struct jtype *t)
{
	struct rstore *r = ctx;
	struct rcmd *c = rs_batch(r, RK_CONFIG, NULL);

	arg_str(c, t->name);
	arg_str(c, "paused");
	arg_str(c, t->paused ? "1" : "0");
	arg_str(c, "limit");
	arg_u64(c, t->limit);
	arg_str(c, "retries");
	arg_i64(c, t->retries > 0 ? t->retries : 0);
	arg_str(c, "backoff");
	arg_i64(c, t->backoff_ms > 0 ? t->backoff_ms : 0);
}

/* ------------------------------------------------------ delayed jobs */

static void due_ask(struct rstore *r);

/* due_arm: the timer fires at ms (Redis's clock, which is taken to be
 * this host's wall clock), unless it is set to fire sooner already. */
static void
due_arm(struct rstore *r, double ms)
{
	double in = ms / 1000.0 - ev_time();
	struct ev_loop *loop = r->srv->loop;

	if (in < 0)
		in = 0;
	if (ev_is_active(&r->due) && ev_timer_remaining(loop, &r->due) <= in)
		return;
	ev_timer_stop(loop, &r->due);
	ev_timer_set(&r->due, in + 0.001, 0.);
	ev_timer_start(loop, &r->due);
}

/* due_reply: {moved, next, types}: the caller's idle workers of each type
 * that got jobs ask for them (Redis woke the others); then the timer is set
 * for the next due time. */
static void
due_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	redisReply *x = reply;
	size_t i;

	(void)priv;
	if (r == NULL || r->closing)
		return;
	r->due_out = false;
	if (x == NULL)
		return;
	if (x->type == REDIS_REPLY_ERROR) {
		rs_log_error(r, "jobfs_due", x->str);
		return;
	}
	if (x->type != REDIS_REPLY_ARRAY || x->elements < 3)
		return;
	if (x->element[2]->type == REDIS_REPLY_ARRAY)
		for (i = 0; i < x->element[2]->elements; i++) {
			struct jtype *jt = broker_type(r->b, rstr(x->element[2]->element[i], NULL),
			    false);

			if (jt != NULL && TAILQ_FIRST(&jt->idle) != NULL)
				rs_want(r, jt);
		}
	if (rnum(x->element[0]) >= DUE_MAX)
		due_arm(r, 0);   /* more are due now */
	else if (strtod(rstr(x->element[1], NULL), NULL) >= 0)
		due_arm(r, strtod(rstr(x->element[1], NULL), NULL));
}

static void
due_ask(struct rstore *r)
{
	if (!r->cmd_ok || r->due_out)
		return;
	if (redisAsyncCommand(r->cmd, due_reply, NULL, "FCALL jobfs_due 0 %s %s %d",
	    r->prefix, r->nstr, DUE_MAX) == REDIS_OK)
		r->due_out = true;
}

static void
due_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	due_ask(w->data);
}

/* configs_reply: every type's cluster-wide settings (jobfs_configs). */
static void
configs_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	redisReply *x = reply;
	size_t i;

	(void)priv;
	if (x == NULL || r == NULL || r->closing || x->type != REDIS_REPLY_ARRAY)
		return;
	for (i = 0; i + 5 <= x->elements; i += 5)
		broker_be_config(r->b, rstr(x->element[i], NULL),
		    (int)rnum(x->element[i + 1]), rnum(x->element[i + 2]),
		    rnum(x->element[i + 3]), rnum(x->element[i + 4]));
}

/* life_connected: (re)connected: what is due now (events missed while
 * away), and the types' settings. */
void
life_connected(struct rstore *r)
{
	r->due_out = false;
	due_ask(r);
	redisAsyncCommand(r->cmd, configs_reply, NULL, "FCALL jobfs_configs 0 %s %s",
	    r->prefix, r->nstr);
}

/* life_broadcast: `w MS` (a delayed job comes due then) and `k PAUSED
 * LIMIT RETRIES BACKOFF T` (a type's settings); false: not one of these. */
bool
life_broadcast(struct rstore *r, const char *p, size_t len)
{
	char text[ID_MAX + 100], t[ID_MAX + 1];
	long long paused, limit, retries, backoff;
	int n = 0;

	if (len < 3 || len >= sizeof text || p[1] != ' ' || (p[0] != 'w' && p[0] != 'k'))
		return false;
	memcpy(text, p, len);
	text[len] = '\0';
	if (p[0] == 'w') {
		due_arm(r, strtod(text + 2, NULL));
		return true;
	}
	if (sscanf(text + 2, "%lld %lld %lld %lld %n", &paused, &limit, &retries, &backoff,
	    &n) == 4 && n > 0 && strlen(text + 2 + n) < sizeof t) {
		snprintf(t, sizeof t, "%s", text + 2 + n);
		broker_be_config(r->b, t, (int)paused, limit, retries, backoff);
	}
	return true;
}

void
life_start(struct rstore *r)
{
	ev_timer_init(&r->due, due_cb, 0., 0.);
	r->due.data = r;
}

void
life_stop(struct rstore *r)
{
	ev_timer_stop(r->srv->loop, &r->due);
}
