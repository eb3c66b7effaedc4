/*
 * redis_sched.c — cluster mode's schedules (repeating jobs).
 *
 * The schedules live in the hash P:sched, field TYPE/NAME ('/' is in
 * neither a type nor a schedule name), value the schedule as JSON (its
 * spec, body and creation time).  A daemon that adds, replaces or removes
 * one writes the hash, then publishes "s! TYPE" on P:x; every daemon then
 * reads the hash again and makes its own schedules the same (so does a
 * daemon when it connects).  Every daemon's timer fires each due time;
 * the one whose SET P:sc:TYPE/NAME:DUE NX (with an expiry past the next
 * due time) succeeds submits the job, the others do nothing: one job per
 * due time across the cluster.  A due time missed by every daemon (all
 * down) has no claim: the first daemon back fires it, once (the latest).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "server.h"
#include "store/store_redis.h"

static size_t
field_of(const char *type, const char *name, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s", type, name);

	return (size_t)n < len ? (size_t)n : len - 1;
}

/* rs_sched_changed: the broker's schedule_changed: the hash, then the word. */
void
rs_sched_changed(void *ctx, const struct schedule *sc, int what)
{
	struct rstore *r = ctx;
	char f[2 * ID_MAX + 2];
	size_t fl;

	if (what == SCHED_FIRED || r->cmd == NULL || !r->up || r->closing)
		return;
	fl = field_of(schedule_type(sc), schedule_name(sc), f, sizeof f);
	if (what == SCHED_REMOVED)
		redisAsyncCommand(r->cmd, NULL, NULL, "HDEL %s:sched %b", r->prefix, f, fl);
	else {
		json_t *o = schedule_json(sc);
		size_t blen;
		const char *body = schedule_body(sc, &blen);
		char *spec;

		json_object_del(o, "body");
		json_object_del(o, "last");
		json_object_del(o, "next");
		json_object_set_new(o, "body_text", json_stringn(body, blen));
		spec = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		redisAsyncCommand(r->cmd, NULL, NULL, "HSET %s:sched %b %s", r->prefix,
		    f, fl, spec);
		free(spec);
	}
	redisAsyncCommand(r->cmd, NULL, NULL, "PUBLISH %s:x %b", r->prefix, "s! ", (size_t)3);
}

struct claim {
	void (*cb)(void *, bool);
	void  *cbctx;
};

static void
claim_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct claim *c = priv;
	redisReply *x = reply;
	bool won = x != NULL && x->type == REDIS_REPLY_STATUS && strcmp(x->str, "OK") == 0;

	(void)ac;
	c->cb(c->cbctx, won);
	free(c);
}

/* rs_sched_claim: the backend's sched_claim: SET NX, with an expiry. */
void
rs_sched_claim(void *ctx, const char *type, const char *name, int64_t due,
    int64_t ttl_ms, void (*cb)(void *, bool), void *cbctx)
{
	struct rstore *r = ctx;
	struct claim *c;
	char f[2 * ID_MAX + 2], k[2 * ID_MAX + 64];
	size_t fl;

	if (r->cmd == NULL || !r->up || r->closing) {
		log_warn("schedule %s/%s: due %" PRId64 " not fired here: redis is away",
		    type, name, due);
		cb(cbctx, false);
		return;
	}
	fl = field_of(type, name, f, sizeof f);
	snprintf(k, sizeof k, "%.*s:%" PRId64, (int)fl, f, due);
	c = xcalloc(1, sizeof *c);
	c->cb = cb;
	c->cbctx = cbctx;
	if (redisAsyncCommand(r->cmd, claim_reply, c, "SET %s:sc:%s %s NX PX %" PRId64,
	    r->prefix, k, r->nstr, ttl_ms) != REDIS_OK) {
		free(c);
		cb(cbctx, false);
	}
}

/* reload_reply: HGETALL P:sched: the schedules here become those. */
static void
reload_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	redisReply *x = reply;
	json_t *seen, *local, *v;
	size_t i;

	(void)priv;
	if (x == NULL || r == NULL || r->closing || x->type != REDIS_REPLY_ARRAY)
		return;
	seen = json_object();
	for (i = 0; i + 1 < x->elements; i += 2) {
		redisReply *kf = x->element[i], *kv = x->element[i + 1];
		json_t *o, *bt;
		struct sched_req q;

		if (kf->type != REDIS_REPLY_STRING || kv->type != REDIS_REPLY_STRING)
			continue;
		o = json_loadb(kv->str, kv->len, 0, NULL);
		if (o == NULL || !schedule_req_of(o, &q)) {
			log_warn("redis: schedule %.*s: not a schedule: ignored",
			    (int)kf->len, kf->str);
			json_decref(o);
			continue;
		}
		if ((bt = json_object_get(o, "body_text")) != NULL && json_is_string(bt)) {
			q.body = json_string_value(bt);
			q.body_len = json_string_length(bt);
		}
		q.restore = true;
		if (broker_schedule(r->b, &q) != BERR_OK)
			log_warn("redis: schedule %s/%s: %s", q.type, q.name,
			    broker_err_detail(r->b));
		json_object_set_new(seen, kf->str, json_true());
		json_decref(o);
	}
	/* those gone from the hash go here too */
	local = broker_schedules(r->b, NULL);
	json_array_foreach(local, i, v) {
		const char *t = json_string_value(json_object_get(v, "job_type"));
		const char *n = json_string_value(json_object_get(v, "name"));
		char f[2 * ID_MAX + 2];

		field_of(t, n, f, sizeof f);
		if (json_object_get(seen, f) == NULL)
			broker_schedule_drop(r->b, t, n);
	}
	json_decref(local);
	json_decref(seen);
}

/* rs_sched_reload: read P:sched (connected, or told it changed). */
void
rs_sched_reload(struct rstore *r)
{
	if (r->cmd != NULL && !r->closing)
		redisAsyncCommand(r->cmd, reload_reply, NULL, "HGETALL %s:sched", r->prefix);
}
