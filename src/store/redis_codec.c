/*
 * redis_codec.c: cluster mode's encoding and decoding: the --redis URL,
 * the queue member's priority prefix, the strings and numbers of replies,
 * and jobs read back from Redis (lookups: jobfs_watch's answer as a job,
 * and the resync that looks at every unfinished job after a reconnect or
 * a loss of the cluster's data).  See store_redis.c.
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

/* ----------------------------------------------------------- small bits */

/* pct_decode: a URL's %XX escapes (a password may hold '@' or '/' as
 * %40, %2F); -1 if out is too small or an escape is bad. */
int
pct_decode(const char *p, size_t len, char *out, size_t outlen)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		char c = p[i];

		if (c == '%') {
			unsigned v;

			if (i + 2 >= len || !isxdigit((unsigned char)p[i + 1]) ||
			    !isxdigit((unsigned char)p[i + 2]) ||
			    sscanf(p + i + 1, "%2x", &v) != 1 || v == 0)
				return -1;
			c = (char)v;
			i += 2;
		}
		if (n + 1 >= outlen)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	return 0;
}

/* url_password: skips a URL's "[:PASSWORD]@" before end (the part before
 * any ':' is a user name, which Redis before ACLs ignores) and decodes the
 * password into o; *p moves past the '@'.  -1 with err set on a bad one. */
int
url_password(const char **p, const char *end, struct redis_url *o, char *err,
    size_t errlen)
{
	const char *at = memchr(*p, '@', (size_t)(end - *p)), *pw;

	if (at == NULL)
		return 0;
	pw = memchr(*p, ':', (size_t)(at - *p));
	pw = pw != NULL ? pw + 1 : *p;
	if (pct_decode(pw, (size_t)(at - pw), o->password, sizeof o->password) < 0) {
		snprintf(err, errlen, "the password is too long, or has a bad %%XX");
		return -1;
	}
	*p = at + 1;
	return 0;
}

int
redis_url_parse(const char *url, struct redis_url *o, char *err, size_t errlen)
{
	const char *p = url, *end, *colon;
	char *e;
	long v;

	if (strncmp(p, "redis-sentinel://", 17) == 0)
		return sentinel_url_parse(url, o, err, errlen);
	memset(o, 0, sizeof *o);
	o->port = 6379;
	if (strncmp(p, "redis://", 8) != 0) {
		snprintf(err, errlen, "%s: not redis://[:PASSWORD@]HOST[:PORT][/DB] nor "
		    "redis-sentinel://[:PASSWORD@]HOST[:PORT],.../MASTERNAME", url);
		return -1;
	}
	p += 8;
	end = p + strcspn(p, "/");
	if (url_password(&p, end, o, err, errlen) < 0)
		return -1;
	colon = memchr(p, ':', (size_t)(end - p));
	if (p[0] == '[') {   /* [IPv6] */
		const char *rb = memchr(p, ']', (size_t)(end - p));

		if (rb == NULL) {
			snprintf(err, errlen, "%s: unclosed [", url);
			return -1;
		}
		colon = rb[1] == ':' ? rb + 1 : NULL;
		if ((size_t)(rb - p - 1) >= sizeof o->host)
			goto badhost;
		memcpy(o->host, p + 1, (size_t)(rb - p - 1));
	} else {
		size_t hl = (size_t)((colon != NULL ? colon : end) - p);

		if (hl >= sizeof o->host)
			goto badhost;
		memcpy(o->host, p, hl);
	}
	if (o->host[0] == '\0')
		goto badhost;
	if (colon != NULL) {
		v = strtol(colon + 1, &e, 10);
		if (e != end || v < 1 || v > 65535) {
			snprintf(err, errlen, "%s: the port must be 1 to 65535", url);
			return -1;
		}
		o->port = (int)v;
	}
	if (*end == '/' && end[1] != '\0') {
		v = strtol(end + 1, &e, 10);
		if (*e != '\0' || v < 0 || v > 100000) {
			snprintf(err, errlen, "%s: the database must be a number", url);
			return -1;
		}
		o->db = (int)v;
	}
	return 0;
badhost:
	snprintf(err, errlen, "%s: no host, or a host name too long", url);
	return -1;
}

void
redis_prio16(int64_t priority, char out[17])
{
	snprintf(out, 17, "%016" PRIx64, (uint64_t)INT64_MAX - (uint64_t)priority);
}

double
rs_now(struct rstore *r)
{
	return ev_now(r->srv->loop);
}

const char *
rstr(const redisReply *x, size_t *len)
{
	if (x == NULL || (x->type != REDIS_REPLY_STRING && x->type != REDIS_REPLY_STATUS)) {
		if (len != NULL)
			*len = 0;
		return "";
	}
	if (len != NULL)
		*len = x->len;
	return x->str;
}

int64_t
rnum(const redisReply *x)
{
	if (x == NULL)
		return 0;
	if (x->type == REDIS_REPLY_INTEGER)
		return x->integer;
	return strtoll(rstr(x, NULL), NULL, 10);
}

/* rs_log_error: an error reply, logged at most once a second (with how
 * many were not). */
void
rs_log_error(struct rstore *r, const char *what, const char *msg)
{
	double now = rs_now(r);

	if (now - r->error_logged_at < 1.0) {
		r->errors_logged++;
		return;
	}
	if (r->errors_logged > 0)
		log_err("redis: %s: %s (and %" PRIu64 " more errors)", what, msg,
		    r->errors_logged);
	else
		log_err("redis: %s: %s", what, msg);
	r->errors_logged = 0;
	r->error_logged_at = now;
}

void
rs_unavailable(struct rstore *r, const char *why)
{
	snprintf(r->reason, sizeof r->reason, "redis %s:%d: %s", r->url.host, r->url.port, why);
	broker_store_set_error_quietly(r->b, ENOTCONN, r->reason);
}

/* ------------------------------------------------------------- lookups */

struct rlookup {
	struct rstore *r;
	void         (*cb)(void *, struct job *, int);  /* NULL: a resync */
	void          *cbctx;
	bool           lost;        /* a resync after the data was lost */
	bool           windowed;    /* counted in r->resync_out */
	char           key[];
};

/* A resync's lookups in flight at once.  The heartbeat shares the link and
 * is answered after every command sent before it: a resync of 100,000 jobs
 * sent in one go kept it waiting past half the lease, so the link was
 * dropped and the resync began again, forever. */
#define RESYNC_WINDOW 256

static void resync_pump(struct rstore *r);

/* strip_daemon: "name@N" -> "name" (the worker's name as its daemon shows it). */
void
strip_daemon(char *wk)
{
	char *at = strrchr(wk, '@');

	if (at != NULL && at[1] != '\0' && strspn(at + 1, "0123456789") == strlen(at + 1))
		*at = '\0';
}

/* lost_done: the resync after the data was lost is over once each of
 * its lookups was answered (lookup_reply counts them). */
static void
lost_done(struct rstore *r)
{
	if (!r->lost || r->lost_left > 0)
		return;
	r->lost = false;
	log_warn("redis: %zu job(s) known here were lost by Redis with the cluster's data "
	    "and ended failed", r->lost_ended);
}

/* lookup_apply: a jobfs_watch answer (lookup_reply); frees q. */
static void
lookup_apply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rlookup *q = priv;
	struct rstore *r = q->r;
	redisReply *x = reply;
	struct restore_req rq = { 0 };
	struct buf parts = { 0 };
	char wk[512] = "";
	struct job *j = NULL;
	size_t i;
	bool inparts = false;
	const char *flags = "";

	(void)ac;
	if (x == NULL || r->closing) {   /* (at exit too: the asker frees its record) */
		if (q->cb != NULL)
			q->cb(q->cbctx, NULL, BERR_UNAVAILABLE);
		free(q);
		return;
	}
	if (x->type == REDIS_REPLY_ERROR) {
		rs_log_error(r, "jobfs_watch", x->str);
		if (q->cb != NULL)
			q->cb(q->cbctx, NULL, BERR_UNAVAILABLE);
		free(q);
		return;
	}
	j = broker_find(r->b, q->key);
	if (q->lost && x->type != REDIS_REPLY_ARRAY && j != NULL && !JOB_FINISHED(j)) {
		/* lost with the cluster's data: its master hears why, and a
		 * worker here running it is told to stop */
		broker_be_gone(r->b, j, LOST_REASON);
		r->lost_ended++;
		free(q);
		return;
	}
	if (q->cb == NULL && x->type != REDIS_REPLY_ARRAY && j != NULL && !JOB_FINISHED(j) &&
	    j->worker == NULL) {
		/* gone from Redis while this daemon was away (forgotten) */
		broker_be_forget(r->b, j);
		free(q);
		return;
	}
	if (x->type != REDIS_REPLY_ARRAY || (j != NULL && q->cb != NULL)) {
		if (q->cb != NULL)
			q->cb(q->cbctx, j, BERR_OK);
		free(q);
		return;
	}
	rq.key = q->key;
	rq.state = JOB_QUEUED;
	for (i = 0; i < x->elements; i++) {
		size_t len;
		const char *f = rstr(x->element[i], &len), *v;

		if (inparts) {
			buf_append(&parts, f, len);
			buf_append(&parts, "\n", 1);
			continue;
		}
		if (len == 9 && memcmp(f, "\0partials", 9) == 0) {
			inparts = true;
			continue;
		}
		if (i + 1 >= x->elements)
			break;
		v = rstr(x->element[++i], &len);
		if (strcmp(f, "t") == 0)
			rq.type = v;
		else if (strcmp(f, "id") == 0)
			rq.idjson = v;
		else if (strcmp(f, "b") == 0) {
			rq.body = v;
			rq.body_len = len;
		} else if (strcmp(f, "pr") == 0)
			rq.priority = strtoll(v, NULL, 10);
		else if (strcmp(f, "st") == 0)
			rq.state = state_of(v);
		else if (strcmp(f, "fl") == 0)
			flags = v;
		else if (strcmp(f, "tg") == 0 && len > 0)
			rq.target = v;
		else if (strcmp(f, "wk") == 0 && len < sizeof wk) {
			memcpy(wk, v, len);
			wk[len] = '\0';
			strip_daemon(wk);
			rq.worker_name = wk;
		} else if (strcmp(f, "sub") == 0)
			rq.submitted = strtod(v, NULL) / 1000.0;
		else if (strcmp(f, "ls") == 0)
			rq.losses = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(f, "r") == 0) {
			rq.result = v;
			rq.result_len = len;
		} else if (strcmp(f, "ow") == 0 && len > 0)
			rq.owner = v;
	}
	if (strchr(flags, 'i') != NULL)
		rq.idjson = rq.key;
	rq.detach = strchr(flags, 'd') != NULL;
	rq.stream = strchr(flags, 's') != NULL;
	rq.notify = strchr(flags, 'n') != NULL;
	rq.partials = parts.data != NULL ? buf_head(&parts) : NULL;
	rq.partials_len = buf_used(&parts);
	if (q->cb == NULL) {
		/* A resync: what the job became while this daemon was away. */
		if (j != NULL && !JOB_FINISHED(j) && j->worker == NULL) {
			if (rq.state == JOB_RUNNING && rq.worker_name != NULL)
				broker_be_running(r->b, j, rq.worker_name);
			else if (rq.state >= JOB_DONE) {
				if (rq.worker_name != NULL)
					broker_be_running(r->b, j, rq.worker_name);
				broker_be_finished(r->b, j, rq.state, rq.result, rq.result_len);
			}
		}
	} else if (rq.type != NULL && type_name_valid(rq.type, strlen(rq.type)) &&
	    rq.body != NULL)
		j = broker_be_view(r->b, &rq);
	buf_free(&parts);
	if (q->cb != NULL)
		q->cb(q->cbctx, j, BERR_OK);
	free(q);
}

static void
lookup_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rlookup *q = priv;
	struct rstore *r = q->r;
	bool lost = q->lost && reply != NULL && !r->closing;
	bool windowed = q->windowed;

	lookup_apply(ac, reply, q);
	if (lost && r->lost_left > 0) {
		r->lost_left--;
		lost_done(r);
	}
	if (windowed) {
		r->resync_out--;
		if (reply == NULL || r->closing)   /* the link is gone */
			return;
		resync_pump(r);
		if (r->resync_out == 0 && r->resync_keys == NULL)
			log_info("redis: the resync is over");
	}
}

static bool
resync_send(struct rstore *r, const char *key, bool lost, bool windowed)
{
	struct rlookup *q = xcalloc(1, sizeof *q + strlen(key) + 1);

	q->r = r;
	q->lost = lost;
	q->windowed = windowed;
	strcpy(q->key, key);
	if (redisAsyncCommand(r->cmd, lookup_reply, q, "FCALL jobfs_watch 0 %s %s %s",
	    r->prefix, r->nstr, key) != REDIS_OK) {
		free(q);
		return false;
	}
	if (windowed && ++r->resync_out > r->resync_out_max)
		r->resync_out_max = r->resync_out;
	return true;
}

/* resync_one: look at j again (see resync); also for a submission sent
 * again after a reconnect, which may have ended meanwhile.  lost: the
 * cluster's data was lost, and j ends if Redis no longer has it. */
bool
resync_one(struct rstore *r, struct job *j, bool lost)
{
	return resync_send(r, j->key, lost, false);
}

/* resync_wanted: whether j is one a resync looks at (see resync). */
static bool
resync_wanted(const struct job *j, bool lost)
{
	return j->shared && !JOB_FINISHED(j) && !j->pending && (j->worker == NULL || lost);
}

/* resync_drop: forgets the rest of a resync (a new one, or the end). */
void
resync_drop(struct rstore *r)
{
	size_t i;

	for (i = r->resync_next; i < r->resync_n; i++)
		free(r->resync_keys[i]);
	free(r->resync_keys);
	r->resync_keys = NULL;
	r->resync_n = r->resync_next = 0;
}

/* resync_pump: sends the resync's next lookups, up to its window; a job
 * that ended or went meanwhile needs none (after a loss it counts as
 * answered). */
static void
resync_pump(struct rstore *r)
{
	while (r->resync_out < RESYNC_WINDOW && r->resync_next < r->resync_n) {
		char *key = r->resync_keys[r->resync_next++];
		struct job *j = broker_find(r->b, key);

		if ((j == NULL || !resync_wanted(j, r->resync_lost) ||
		    !resync_send(r, key, r->resync_lost, true)) &&
		    r->resync_lost && r->lost_left > 0) {
			r->lost_left--;
			lost_done(r);
		}
		free(key);
	}
	if (r->resync_next == r->resync_n)
		resync_drop(r);
}

/*
 * resync: pub/sub is at most once, so events published while this daemon
 * was away (Redis restarted, a link dropped, this daemon taken for dead)
 * are lost.  Once it is back (subscribed again), every unfinished job
 * known here that no local worker runs is looked at again (jobfs_watch,
 * which also names this daemon among its watchers), and what it became
 * meanwhile is applied: a master waiting for its job hears its ending.
 * One call per such job, RESYNC_WINDOW of them in flight at a time.
 *
 * After Redis lost the cluster's data (r->lost), the jobs local workers
 * run are looked at too, and every job Redis no longer has ends failed
 * (broker_be_gone).  r->lost stays set until every one of these calls is
 * answered: a link lost meanwhile means a resync like it after the
 * reconnect.
 */
void
resync(struct rstore *r)
{
	struct job_cursor c = { 0 };
	struct job *j;
	size_t n = 0, cap = 0;
	bool lost = r->lost;

	resync_drop(r);
	broker_cursor_open(r->b, &c);
	while ((j = broker_cursor_job(&c)) != NULL) {
		broker_cursor_advance(&c);
		if (!resync_wanted(j, lost))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			r->resync_keys = xrealloc(r->resync_keys, cap * sizeof *r->resync_keys);
		}
		r->resync_keys[n++] = xstrdup(j->key);
	}
	broker_cursor_close(r->b, &c);
	r->resync_n = n;
	r->resync_lost = lost;
	if (lost) {
		r->lost_left = n;
		r->lost_ended = 0;
	} else if (n > 0)
		log_info("redis: %zu unfinished job(s) looked at again after the outage", n);
	resync_pump(r);
	lost_done(r);
}

void
rs_lookup(void *ctx, const char *key, void (*cb)(void *, struct job *, int), void *cbctx)
{
	struct rstore *r = ctx;
	struct rlookup *q;

	if (!r->up) {
		cb(cbctx, NULL, BERR_UNAVAILABLE);
		return;
	}
	q = xcalloc(1, sizeof *q + strlen(key) + 1);
	q->r = r;
	q->cb = cb;
	q->cbctx = cbctx;
	strcpy(q->key, key);
	if (redisAsyncCommand(r->cmd, lookup_reply, q, "FCALL jobfs_watch 0 %s %s %s",
	    r->prefix, r->nstr, key) != REDIS_OK) {
		free(q);
		cb(cbctx, NULL, BERR_UNAVAILABLE);
	}
}
