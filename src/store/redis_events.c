/*
 * redis_events.c: cluster mode's verdicts and events: the answers of the
 * outbox's calls made into the broker's verdicts (broker_be_*), and the
 * events other daemons publish (this daemon's channel P:d:N, the
 * broadcast P:x, the user channels P:c:NAME).  See store_redis.c.
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

/* ---------------------------------------------------------- the verdicts */

static bool
reply_str(const redisReply *x, const char *s)
{
	return x != NULL && (x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS) &&
	    strcmp(x->str, s) == 0;
}

enum job_state
state_of(const char *s)
{
	if (strcmp(s, "done") == 0)
		return JOB_DONE;
	if (strcmp(s, "failed") == 0)
		return JOB_FAILED;
	if (strcmp(s, "timeout") == 0)
		return JOB_TIMEOUT;
	if (strcmp(s, "running") == 0)
		return JOB_RUNNING;
	if (strcmp(s, "queued") == 0)
		return JOB_QUEUED;
	return JOB_CANCELLED;
}

static void fetch(struct rstore *, int, enum job_state, const char *, const char *);

/* stash_apply: a submission was answered: an ending that came first is
 * applied now if it was accepted (apply), else dropped. */
static void
stash_apply(struct rstore *r, struct job *j, bool apply)
{
	struct stash *s;

	if (r->stash == NULL)
		return;
	HASH_FIND_STR(r->stash, j->key, s);
	if (s == NULL)
		return;
	HASH_DEL(r->stash, s);
	if (apply && s->len == 1 && s->result[0] == '-')
		fetch(r, 'f', s->state, j->key, NULL);   /* too big for the event */
	else if (apply)
		broker_be_finished(r->b, j, s->state, s->result, s->len);
	free(s->result);
	free(s);
}


void
verdicts(struct rstore *r, struct rcmd *c, redisReply *x)
{
	size_t i;

	if (x->type == REDIS_REPLY_ERROR) {
		char what[200];

		snprintf(what, sizeof what, "%s (%zu jobs)", kind_fn[c->kind], c->njobs);
		rs_log_error(r, what, x->str);
		if (RK_IS_SUBMIT(c->kind)) {
			broker_set_err_detail(r->b, "redis: %s", x->str);
			for (i = 0; i < c->njobs; i++)
				if (c->jobs[i] != NULL) {
					stash_apply(r, c->jobs[i], false);
					broker_be_accepted(r->b, c->jobs[i], BERR_UNAVAILABLE);
				}
		}
		return;
	}
	if (x->type != REDIS_REPLY_ARRAY && c->kind != RK_FORGET && c->kind != RK_WORKER &&
	    c->kind != RK_PIN && c->kind != RK_KICK) {
		rs_log_error(r, kind_fn[c->kind], "an answer that is not an array");
		return;
	}
	for (i = 0; i < c->njobs; i++) {
		struct job *j = c->jobs[i];
		redisReply *v = x->type == REDIS_REPLY_ARRAY && i < x->elements ?
		    x->element[i] : NULL;

		if (j == NULL)
			continue;
		switch (c->kind) {
		case RK_SUBMIT:
		case RK_SUBMIT_LIFE:
			if (reply_str(v, "ok")) {
				broker_be_accepted(r->b, j, BERR_OK);
				stash_apply(r, j, true);
				if (c->resent)   /* it may have ended while the link was down */
					resync_one(r, j, false);
			} else {
				stash_apply(r, j, false);
				broker_set_err_detail(r->b,
				    "id %s is in use by an unfinished job", job_idjson(j));
				broker_be_accepted(r->b, j, BERR_ID_EXISTS);
			}
			break;
		case RK_REQUEUE:
			/* Its fourth loss: the job failed.  The daemon it was
			 * submitted on hears it by event, unless it is this one. */
			if (reply_str(v, "failed") && !JOB_FINISHED(j) && j->worker == NULL)
				broker_be_finished(r->b, j, JOB_FAILED,
				    "{\"error\":\"lost\"}", 17);
			break;
		case RK_FAIL:
			life_verdict(r, c, i, v);
			break;
		default:
			break;
		}
	}
	/* Redis wakes other daemons' idle workers, not this one's (it knows
	 * them): they ask now. */
	if (RK_IS_SUBMIT(c->kind) || c->kind == RK_REQUEUE)
		for (i = 0; i < c->njobs; i++)
			if (c->jobs[i] != NULL && TAILQ_FIRST(&c->jobs[i]->type->idle) != NULL)
				rs_want(r, c->jobs[i]->type);
}

/* transient: an error reply that says "not now" rather than "never". */
bool
transient(const char *err)
{
	static const char *const now[] = {
		"OOM", "READONLY", "BUSY", "LOADING", "MASTERDOWN", "TRYAGAIN", "NOREPLICAS", NULL,
	};
	size_t i;

	for (i = 0; now[i] != NULL; i++)
		if (strncmp(err, now[i], strlen(now[i])) == 0)
			return true;
	return false;
}

/* --------------------------------------------------------------- events */

/* take_key: "KLEN KEY rest" -> key (copied into out), *rest after it. */
static bool
take_key(const char *p, size_t len, char *out, const char **rest, size_t *restlen)
{
	char *e;
	unsigned long kl = strtoul(p, &e, 10);
	size_t used;

	if (e == p || *e != ' ' || kl == 0 || kl > ID_MAX)
		return false;
	e++;
	used = (size_t)(e - p);
	if (used + kl > len)
		return false;
	memcpy(out, e, kl);
	out[kl] = '\0';
	used += kl;
	if (used < len && p[used] == ' ')
		used++;
	*rest = p + used;
	*restlen = len - used;
	return true;
}

/* A result or partial too big for an event: fetched. */
struct fetch {
	struct rstore *r;
	int            what;    /* 'f' or 'p' */
	enum job_state state;
	char           key[];
};

static void
fetch_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct fetch *f = priv;
	redisReply *x = reply;
	struct job *j;

	(void)ac;
	if (x != NULL && !f->r->closing && (j = broker_find(f->r->b, f->key)) != NULL) {
		size_t len;
		const char *s = rstr(x, &len);

		if (f->what == 'f')
			broker_be_finished(f->r->b, j, f->state, s, len);
		else if (len > 0)
			broker_be_partial(f->r->b, j, s, len);
	}
	free(f);
}

static void
fetch(struct rstore *r, int what, enum job_state st, const char *key, const char *idx)
{
	struct fetch *f = xcalloc(1, sizeof *f + strlen(key) + 1);
	char k[ID_MAX + 256];

	f->r = r;
	f->what = what;
	f->state = st;
	strcpy(f->key, key);
	snprintf(k, sizeof k, "%s:%s:%s", r->prefix, what == 'f' ? "j" : "p", key);
	if ((what == 'f' ? redisAsyncCommand(r->cmd, fetch_reply, f, "HGET %s r", k) :
	    redisAsyncCommand(r->cmd, fetch_reply, f, "LINDEX %s %lld", k,
	    strtoll(idx, NULL, 10) - 1)) != REDIS_OK)
		free(f);
}

static void
on_event(struct rstore *r, const char *p, size_t len)
{
	char key[ID_MAX + 1], word[32];
	const char *rest;
	size_t restlen, wl;
	struct job *j;

	if (len < 2 || p[1] != ' ')
		return;
	switch (p[0]) {
	case 'n': {   /* n TYPE: queued jobs of a type we may have idle workers for */
		char name[ID_MAX + 1];
		struct jtype *jt;

		if (len - 2 > ID_MAX)
			return;
		memcpy(name, p + 2, len - 2);
		name[len - 2] = '\0';
		if ((jt = broker_type(r->b, name, false)) != NULL && TAILQ_FIRST(&jt->idle) != NULL)
			rs_want(r, jt);
		return;
	}
	case 'r':     /* r KLEN KEY WORKER */
		if (take_key(p + 2, len - 2, key, &rest, &restlen) &&
		    (j = broker_find(r->b, key)) != NULL && restlen < 512) {
			char wk[512];

			memcpy(wk, rest, restlen);
			wk[restlen] = '\0';
			strip_daemon(wk);
			broker_be_running(r->b, j, wk);
		}
		return;
	case 'p':     /* p IDX KLEN KEY BODY */
	case 'f':     /* f STATE KLEN KEY RESULT */
	case 'c':     /* c ATT KLEN KEY */
		wl = strcspn(p + 2, " ");
		if (wl == 0 || wl >= sizeof word || 2 + wl >= len)
			return;
		memcpy(word, p + 2, wl);
		word[wl] = '\0';
		if (!take_key(p + 3 + wl, len - 3 - wl, key, &rest, &restlen))
			return;
		j = broker_find(r->b, key);
		if (p[0] == 'c') {
			/* It ended elsewhere while it ran here.  A copy submitted
			 * here hears how by the f that follows. */
			if (j != NULL && j->state == JOB_RUNNING && j->worker != NULL &&
			    job_att(j) == strtoul(word, NULL, 10) && j->master == NULL)
				broker_be_finished(r->b, j, JOB_CANCELLED, NULL, 0);
			return;
		}
		if (j == NULL || JOB_FINISHED(j))
			return;
		if (p[0] == 'p') {
			if (restlen == 1 && rest[0] == '-')
				fetch(r, 'p', JOB_RUNNING, key, word);
			else
				broker_be_partial(r->b, j, rest, restlen);
			return;
		}
		if (j->pending) {   /* before the submission's answer: kept till then */
			struct stash *s;

			HASH_FIND_STR(r->stash, key, s);
			if (s != NULL)
				return;
			s = xcalloc(1, sizeof *s + strlen(key) + 1);
			strcpy(s->key, key);
			s->state = state_of(word);
			s->result = xmalloc(restlen + 1);
			memcpy(s->result, rest, restlen);
			s->len = restlen;
			HASH_ADD_STR(r->stash, key, s);
			return;
		}
		if (restlen == 1 && rest[0] == '-')
			fetch(r, 'f', state_of(word), key, NULL);
		else
			broker_be_finished(r->b, j, state_of(word), rest, restlen);
		return;
	case 'g':     /* g KLEN KEY */
		if (take_key(p + 2, len - 2, key, &rest, &restlen) &&
		    (j = broker_find(r->b, key)) != NULL)
			broker_be_forget(r->b, j);
		return;
	}
}

void
type_listed(struct rstore *r, const char *name, bool listed)
{
	struct rtype *t;
	struct jtype *jt;

	if (!type_name_valid(name, strlen(name)))
		return;
	t = rtype_get(r, name);
	if (listed && !t->held) {
		jt = broker_type(r->b, name, true);
		broker_type_hold(jt);
		t->held = true;
	} else if (!listed && t->held && (jt = broker_type(r->b, name, false)) != NULL) {
		t->held = false;
		broker_type_unref(r->b, jt);
	}
}

static void
on_broadcast(struct rstore *r, const char *p, size_t len)
{
	char name[ID_MAX + 1];

	if (len == 3 && strncmp(p, "s! ", 3) == 0) {
		rs_sched_reload(r);   /* the schedules changed */
		return;
	}
	if (len < 4 || len - 3 > ID_MAX)
		return;
	memcpy(name, p + 3, len - 3);
	name[len - 3] = '\0';
	if ((strncmp(p, "t+ ", 3) == 0 || strncmp(p, "t- ", 3) == 0) &&
	    type_name_valid(name, strlen(name))) {
		rtype_get(r, name)->heard = r->types_asked;   /* (see types_reply) */
		type_listed(r, name, p[1] == '+');
	} else if (life_broadcast(r, p, len))
		;
	else if (strncmp(p, "d- ", 3) == 0)
		log_info("redis: daemon %s was taken for dead; its jobs were reclaimed", name);
}

void
sub_msg(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	redisReply *x = reply;
	const char *ch, *kind;
	size_t pl;

	(void)priv;
	if (x == NULL || r == NULL || r->closing || x->type != REDIS_REPLY_ARRAY ||
	    x->elements < 3)
		return;
	pl = strlen(r->prefix);
	kind = rstr(x->element[0], NULL);
	ch = rstr(x->element[1], NULL);
	if (strcmp(kind, "subscribe") == 0) {
		if (!r->sub_ok && strncmp(ch, r->prefix, pl) == 0 && strcmp(ch + pl, ":x") == 0) {
			r->sub_ok = true;
			if (r->cmd_ok && !r->up) {
				r->up = true;
				r->up_since = rs_now(r);
				broker_store_set_error_quietly(r->b, 0, NULL);
				if (r->down_since > 0)
					log_warn("redis %s:%d: back after %.1f s", r->url.host,
					    r->url.port, r->up_since - r->down_since);
				else
					log_info("redis %s:%d: connected, daemon %s", r->url.host,
					    r->url.port, r->nstr + 0);
				r->down_since = 0;
				ask_types(r);
				broker_types_each(r->b, reask_type, r);
				resync(r);
				rs_sched_reload(r);
			}
		}
		return;
	}
	if (strcmp(kind, "pmessage") == 0 && x->elements >= 4) {
		ch = rstr(x->element[2], NULL);
		if (strncmp(ch, r->prefix, pl) == 0 && strncmp(ch + pl, ":c:", 3) == 0)
			chan_deliver(r->srv->broker, ch + pl + 3, x->element[3]->str, x->element[3]->len);
		return;
	}
	if (strcmp(kind, "message") != 0 || strncmp(ch, r->prefix, pl) != 0)
		return;
	ch += pl;
	if (strncmp(ch, ":d:", 3) == 0)
		on_event(r, x->element[2]->str, x->element[2]->len);
	else if (strcmp(ch, ":x") == 0)
		on_broadcast(r, x->element[2]->str, x->element[2]->len);
}
