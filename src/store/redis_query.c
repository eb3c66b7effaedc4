/*
 * redis_query.c: cluster mode's queries for the tree (the cluster's view:
 * counters, lists, a type's stats) and the worker lines each daemon keeps
 * in Redis for types/T/workers.  See store_redis.c.
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

/* -------------------------------------------------------------- queries */

struct rquery {
	struct rstore *r;
	char           what[16];
	void         (*cb)(void *, const char *, size_t, int);
	void          *cbctx;
};

/* The counters of a type, in the order of one daemon's types/T/stats. */
static const char *const type_counters[] = {
	"queued", "running", "done", "failed", "cancelled", "timeout", "workers",
	"submitted", "requeued", NULL,
};

static void
query_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rquery *q = priv;
	redisReply *x = reply;
	struct buf out = { 0 };
	size_t i, k, len;
	char line[320];

	(void)ac;
	if (x == NULL || q->r->closing || x->type != REDIS_REPLY_ARRAY) {
		if (x != NULL && x->type == REDIS_REPLY_ERROR && !q->r->closing)
			rs_log_error(q->r, q->what, x->str);
		q->cb(q->cbctx, "", 0, BERR_UNAVAILABLE);
		free(q);
		return;
	}
	if (strcmp(q->what, "type_stats") == 0) {
		for (k = 0; type_counters[k] != NULL; k++) {
			const char *v = "0";

			for (i = 0; i + 1 < x->elements; i += 2)
				if (strcmp(rstr(x->element[i], NULL), type_counters[k]) == 0)
					v = rstr(x->element[i + 1], NULL);
			snprintf(line, sizeof line, "%s %lld\n", type_counters[k],
			    strtoll(v, NULL, 10) < 0 ? 0LL : strtoll(v, NULL, 10));
			buf_append_str(&out, line);
		}
	} else if (strcmp(q->what, "stats") == 0) {
		for (i = 0; i + 1 < x->elements; i += 2) {
			snprintf(line, sizeof line, "cluster_%.64s %.32s\n",
			    rstr(x->element[i], NULL), rstr(x->element[i + 1], NULL));
			buf_append_str(&out, line);
		}
	} else
		for (i = 0; i < x->elements; i++) {
			const char *v = rstr(x->element[i], &len);

			buf_append(&out, v, len);
			if (len == 0 || v[len - 1] != '\n')
				buf_append(&out, "\n", 1);
		}
	q->cb(q->cbctx, out.data != NULL ? buf_head(&out) : "", buf_used(&out), BERR_OK);
	buf_free(&out);
	free(q);
}

void
rs_query(void *ctx, const char *what, const char *arg,
    void (*cb)(void *, const char *, size_t, int), void *cbctx)
{
	struct rstore *r = ctx;
	struct rquery *q;
	int rc;

	if (!r->up) {
		cb(cbctx, "", 0, BERR_UNAVAILABLE);
		return;
	}
	q = xcalloc(1, sizeof *q);
	q->r = r;
	snprintf(q->what, sizeof q->what, "%s", what);
	q->cb = cb;
	q->cbctx = cbctx;
	if (strcmp(what, "stats") == 0)
		rc = redisAsyncCommand(r->cmd, query_reply, q, "HGETALL %s:stats", r->prefix);
	else if (strcmp(what, "type_stats") == 0)
		rc = redisAsyncCommand(r->cmd, query_reply, q, "HGETALL %s:t:%s", r->prefix, arg);
	else if (strcmp(what, "queue") == 0)
		rc = redisAsyncCommand(r->cmd, query_reply, q,
		    "FCALL jobfs_list 0 %s %s queue %s 100000", r->prefix, r->nstr, arg);
	else if (strcmp(what, "jobs") == 0)
		rc = redisAsyncCommand(r->cmd, query_reply, q,
		    "FCALL jobfs_list 0 %s %s all - 100000", r->prefix, r->nstr);
	else
		rc = redisAsyncCommand(r->cmd, query_reply, q, "FCALL jobfs_workers 0 %s %s %s",
		    r->prefix, r->nstr, arg);
	if (rc != REDIS_OK) {
		free(q);
		cb(cbctx, "", 0, BERR_UNAVAILABLE);
	}
}

/*
 * Worker lines: each daemon keeps its workers of each type in Redis
 * (P:wk:T, field N: "NAME@N ADDR idle" or "NAME@N ADDR busy ID...", names and ids
 * encoded as the tree shows them), rewritten at most every 0.25 s for the
 * types whose workers changed, so that types/T/workers on any host lists
 * every daemon's.
 */
struct wk_text {
	struct rstore *r;
	struct buf    *out;
};

/* encoded: a name or id as a file name (id_encode): no space or newline. */
static char *
encoded(const char *key)
{
	char *out = xmalloc(id_encoded_len(key) + 1);

	id_encode(key, out);
	return out;
}

static bool
wk_job(void *ctx, struct job *j)
{
	char *name = encoded(j->key);

	buf_append(ctx, " ", 1);
	buf_append_str(ctx, name);
	free(name);
	return true;
}

static bool
wk_line(void *ctx, struct worker *w)
{
	struct wk_text *x = ctx;
	char *name = encoded(worker_name(w));

	buf_append_str(x->out, name);
	free(name);
	buf_append(x->out, "@", 1);
	buf_append_str(x->out, x->r->nstr);
	name = encoded(worker_addr(w));
	buf_append(x->out, " ", 1);
	buf_append_str(x->out, name);
	free(name);
	buf_append_str(x->out, worker_running(w) > 0 ? " busy" : " idle");
	broker_worker_jobs_each(x->r->b, w, wk_job, x->out);
	buf_append(x->out, "\n", 1);
	return true;
}

void
workers_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rstore *r = w->data;
	struct rtype *t, *tmp;
	struct jtype *jt;

	(void)loop;
	(void)revents;
	if (!r->up)
		return;
	HASH_ITER(hh, r->types, t, tmp) {
		struct buf text = { 0 };
		struct wk_text x = { r, &text };

		if (!t->wk_dirty)
			continue;
		t->wk_dirty = false;
		if ((jt = broker_type(r->b, t->name, false)) != NULL)
			broker_workers_each(r->b, jt, wk_line, &x);
		buf_append(&text, "", 1);
		redisAsyncCommand(r->cmd, NULL, NULL, "FCALL jobfs_workers_put 0 %s %s %s %s",
		    r->prefix, r->nstr, t->name, text.data);
		buf_free(&text);
	}
}

void
wk_dirty(struct rstore *r, struct jtype *jt)
{
	rtype_get(r, jt->name)->wk_dirty = true;
	if (!ev_is_active(&r->workers) && r->srv->loop != NULL) {
		ev_timer_set(&r->workers, 0.25, 0.);
		ev_timer_start(r->srv->loop, &r->workers);
	}
}

bool
wk_mark(void *ctx, struct jtype *jt)
{
	if (TAILQ_FIRST(&jt->workers) != NULL)
		wk_dirty(ctx, jt);
	return true;
}

void
on_job_moved(void *ctx, struct job *j, struct worker *w)
{
	(void)w;
	if (j->type != NULL)
		wk_dirty(ctx, j->type);
}
