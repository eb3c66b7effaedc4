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
#include <hiredis/adapters/libev.h>

#include "server.h"
#include "store/store_redis.h"
/* redis_scripts.lua, compiled in by the Makefile (xxd -i) */
extern unsigned char redis_scripts_lua[];
extern unsigned int redis_scripts_lua_len;

#define BATCH_MAX      128          /* jobs per call */
#define BACKLOG_MAX    (64u << 20)  /* outbox bytes before submissions are refused */
#define CONNECT_TIMEOUT 2.0
/* The error of a job that Redis lost with the cluster's data. */
#define LOST_REASON    "Redis lost this job: the cluster's data was flushed, " \
	"or Redis restarted without it"

enum rkind { RK_SUBMIT, RK_COMPLETE, RK_PARTIAL, RK_REQUEUE, RK_END, RK_FORGET,
	RK_WORKER, RK_PIN, RK_NKINDS };
static const char *const kind_fn[RK_NKINDS] = {
	"jobfs_submit", "jobfs_complete", "jobfs_partial", "jobfs_requeue",
	"jobfs_end", "jobfs_forget", "jobfs_worker", "jobfs_pin",
};

struct arg {
	const char *p;
	size_t      len;
	bool        own;
};

/* An outbox entry: one function call, its arguments after P and N. */
struct rcmd {
	TAILQ_ENTRY(rcmd) entry;
	struct rstore *r;
	uint64_t     seq;
	enum rkind   kind;
	struct arg  *args;
	size_t       nargs, cap;
	struct job **jobs;          /* one per group (NULL: none), referenced */
	size_t       njobs;
	size_t       bytes;
	bool         sent;
	bool         resent;        /* sent again after a reconnect */
};
TAILQ_HEAD(rcmd_list, rcmd);

/* What this daemon knows of a type: held while Redis lists it, and its
 * one dispatch call in flight. */
struct rtype {
	UT_hash_handle hh;
	char          *name;
	bool           held;        /* this store holds a reference on the jtype */
	bool           inflight, again, wanted;
	bool           wk_dirty;    /* its worker lines are to be written */
	bool           counted;     /* workers of it were counted in Redis */
	bool           listed;      /* in the answer types_reply reads */
	uint64_t       heard;       /* types_asked when its last t+ or t- came */
	struct rtype  *next_wanted;
};

/* A finish event that came before the submission's answer. */
struct stash {
	UT_hash_handle hh;
	enum job_state state;
	char          *result;
	size_t         len;
	char           key[];
};

struct rstore {
	struct server     *srv;
	struct broker     *b;
	struct redis_url   url;
	char               prefix[128];
	int                lease_ms;
	redisAsyncContext *cmd, *sub;
	bool               cmd_ok, sub_ok;     /* connected (hello answered / subscribed) */
	bool               up;                 /* both: submissions taken */
	bool               closing;
	uint64_t           n;                  /* this daemon's number; 0: none yet */
	char               nstr[24];
	struct rcmd_list   outbox;
	uint64_t           next_seq;
	size_t             outbox_bytes;
	struct rtype      *types;
	struct rtype      *wanted;
	ev_prepare         flush;
	ev_timer           retry, connect_to, hello, reap, reask, workers;
	double             backoff;
	double             down_since, up_since, hello_ok;
	bool               hello_out;
	char               reason[600];
	struct stash      *stash;
	uint64_t           errors_logged;
	double             error_logged_at;
	unsigned           chan_holds;
	char               epoch[40];          /* P:epoch as last seen; "": none yet */
	bool               lost;               /* the data was lost: resync ends what is gone */
	size_t             lost_left;          /* that resync's lookups not yet answered */
	size_t             lost_ended;         /* jobs it ended */
	uint64_t           types_asked;        /* SMEMBERS P:types sent so far */
};

static void rs_teardown(struct rstore *, const char *why);
static void rs_send(struct rstore *, struct rcmd *);
static void rs_want(void *, struct jtype *);
static void ask_types(struct rstore *);

/* ----------------------------------------------------------- small bits */

/* pct_decode: a URL's %XX escapes (a password may hold '@' or '/' as
 * %40, %2F); -1 if out is too small or an escape is bad. */
static int
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

int
redis_url_parse(const char *url, struct redis_url *o, char *err, size_t errlen)
{
	const char *p = url, *at, *end, *colon;
	char *e;
	long v;

	memset(o, 0, sizeof *o);
	o->port = 6379;
	if (strncmp(p, "redis://", 8) != 0) {
		snprintf(err, errlen, "%s: not redis://[:PASSWORD@]HOST[:PORT][/DB]", url);
		return -1;
	}
	p += 8;
	end = p + strcspn(p, "/");
	if ((at = memchr(p, '@', (size_t)(end - p))) != NULL) {
		const char *pw = memchr(p, ':', (size_t)(at - p));

		pw = pw != NULL ? pw + 1 : p;
		if (pct_decode(pw, (size_t)(at - pw), o->password, sizeof o->password) < 0) {
			snprintf(err, errlen, "the password is too long, or has a bad %%XX");
			return -1;
		}
		p = at + 1;
	}
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

static double
rs_now(struct rstore *r)
{
	return ev_now(r->srv->loop);
}

static const char *
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

static int64_t
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
static void
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

static void
rs_unavailable(struct rstore *r, const char *why)
{
	snprintf(r->reason, sizeof r->reason, "redis %s:%d: %s", r->url.host, r->url.port, why);
	broker_store_set_error_quietly(r->b, ENOTCONN, r->reason);
}

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

static void
arg_str(struct rcmd *c, const char *s)
{
	arg_add(c, s, strlen(s), true);
}

static void
arg_u64(struct rcmd *c, uint64_t v)
{
	char t[24];

	snprintf(t, sizeof t, "%" PRIu64, v);
	arg_str(c, t);
}

static void
arg_i64(struct rcmd *c, int64_t v)
{
	char t[24];

	snprintf(t, sizeof t, "%" PRId64, v);
	arg_str(c, t);
}

static void
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
static struct rcmd *
rs_batch(struct rstore *r, enum rkind k, struct job *j)
{
	struct rcmd *c = TAILQ_LAST(&r->outbox, rcmd_list);

	/* (forget, worker and pin take one group a call) */
	if (c == NULL || c->kind != k || c->sent ||
	    c->njobs >= (k == RK_FORGET || k == RK_WORKER || k == RK_PIN ? 1 : BATCH_MAX)) {
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

static void
flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct rstore *r = w->data;
	struct rcmd *c;
	struct rtype *t;

	(void)loop;
	(void)revents;
	if (!r->cmd_ok)
		return;
	TAILQ_FOREACH_REVERSE(c, &r->outbox, rcmd_list, entry) {
		if (c->sent)
			break;
	}
	for (c = c == NULL ? TAILQ_FIRST(&r->outbox) : TAILQ_NEXT(c, entry); c != NULL;
	    c = TAILQ_NEXT(c, entry))
		rs_send(r, c);
	while ((t = r->wanted) != NULL) {
		r->wanted = t->next_wanted;
		t->wanted = false;
		rs_dispatch(r, t);
	}
}

/* ---------------------------------------------------------- the verdicts */

static bool
reply_str(const redisReply *x, const char *s)
{
	return x != NULL && (x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS) &&
	    strcmp(x->str, s) == 0;
}

static enum job_state
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

static bool resync_one(struct rstore *, struct job *, bool);

static void
verdicts(struct rstore *r, struct rcmd *c, redisReply *x)
{
	size_t i;

	if (x->type == REDIS_REPLY_ERROR) {
		char what[200];

		snprintf(what, sizeof what, "%s (%zu jobs)", kind_fn[c->kind], c->njobs);
		rs_log_error(r, what, x->str);
		if (c->kind == RK_SUBMIT) {
			snprintf(r->b->err_detail, sizeof r->b->err_detail, "redis: %s", x->str);
			for (i = 0; i < c->njobs; i++)
				if (c->jobs[i] != NULL) {
					stash_apply(r, c->jobs[i], false);
					broker_be_accepted(r->b, c->jobs[i], BERR_UNAVAILABLE);
				}
		}
		return;
	}
	if (x->type != REDIS_REPLY_ARRAY && c->kind != RK_FORGET && c->kind != RK_WORKER &&
	    c->kind != RK_PIN) {
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
			if (reply_str(v, "ok")) {
				broker_be_accepted(r->b, j, BERR_OK);
				stash_apply(r, j, true);
				if (c->resent)   /* it may have ended while the link was down */
					resync_one(r, j, false);
			} else {
				stash_apply(r, j, false);
				snprintf(r->b->err_detail, sizeof r->b->err_detail,
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
		default:
			break;
		}
	}
	/* Redis wakes other daemons' idle workers, not this one's (it knows
	 * them): they ask now. */
	if (c->kind == RK_SUBMIT || c->kind == RK_REQUEUE)
		for (i = 0; i < c->njobs; i++)
			if (c->jobs[i] != NULL && TAILQ_FIRST(&c->jobs[i]->type->idle) != NULL)
				rs_want(r, c->jobs[i]->type);
}

/* transient: an error reply that says "not now" rather than "never". */
static bool
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
	if (x->type == REDIS_REPLY_ERROR && ((c->kind != RK_SUBMIT && transient(x->str)) ||
	    strncmp(x->str, "ERR Function not found", 22) == 0)) {
		/* Redis cannot take it now (out of memory, a replica, busy,
		 * loading), or lost the function library (FUNCTION FLUSH): it
		 * stays, to be sent again after a reconnect, which loads the
		 * library first */
		rs_log_error(r, kind_fn[c->kind], x->str);
		rs_teardown(r, x->str);
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
static size_t
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

static void
rs_send(struct rstore *r, struct rcmd *c)
{
	const char **argv;
	size_t *lens, n = fcall_argv(r, c, &argv, &lens);

	if (redisAsyncCommandArgv(r->cmd, cmd_reply, c, (int)n, argv, lens) == REDIS_OK)
		c->sent = true;
	free(argv);
	free(lens);
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

static void
rs_submit(void *ctx, struct job *j)
{
	struct rstore *r = ctx;
	struct rcmd *c = rs_batch(r, RK_SUBMIT, j);
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
	rs_account(r);
}

static void
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

static void
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

static void
rs_requeue(void *ctx, struct job *j, bool lost)
{
	struct rstore *r = ctx;
	struct rcmd *c = rs_batch(r, RK_REQUEUE, j->master != NULL ? j : NULL);

	arg_str(c, j->key);
	arg_u64(c, job_att(j));
	arg_str(c, lost ? "1" : "0");
}

/* requeue_key: give back a job the broker could not place (no local copy). */
static void
requeue_key(struct rstore *r, const char *key, const char *att)
{
	struct rcmd *c = rs_batch(r, RK_REQUEUE, NULL);

	arg_str(c, key);
	arg_str(c, att);
	arg_str(c, "0");
}

static void
rs_end(void *ctx, struct job *j, enum job_state why, bool if_queued)
{
	struct rstore *r = ctx;
	struct rcmd *c = rs_batch(r, RK_END, NULL);

	arg_str(c, j->key);
	arg_str(c, job_state_name(why));
	arg_str(c, if_queued ? "1" : "0");
}

/* rs_pin: a type made (or unmade) in the tree is listed in every tree. */
static void
rs_pin(void *ctx, struct jtype *t, bool on)
{
	struct rstore *r = ctx;
	struct rcmd *c = rs_batch(r, RK_PIN, NULL);

	arg_str(c, t->name);
	arg_str(c, on ? "on" : "off");
}

static void
rs_forget(void *ctx, struct job *j)
{
	struct rstore *r = ctx;
	struct rcmd *c = rs_batch(r, RK_FORGET, NULL);

	arg_str(c, j->key);
}

/* ------------------------------------------------------------- lookups */

struct rlookup {
	struct rstore *r;
	void         (*cb)(void *, struct job *, int);  /* NULL: a resync */
	void          *cbctx;
	bool           lost;        /* a resync after the data was lost */
	char           key[];
};

/* strip_daemon: "name@N" -> "name" (the worker's name as its daemon shows it). */
static void
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

	lookup_apply(ac, reply, q);
	if (lost && r->lost_left > 0) {
		r->lost_left--;
		lost_done(r);
	}
}

/* resync_one: look at j again (see resync); also for a submission sent
 * again after a reconnect, which may have ended meanwhile.  lost: the
 * cluster's data was lost, and j ends if Redis no longer has it. */
static bool
resync_one(struct rstore *r, struct job *j, bool lost)
{
	struct rlookup *q = xcalloc(1, sizeof *q + strlen(j->key) + 1);

	q->r = r;
	q->lost = lost;
	strcpy(q->key, j->key);
	if (redisAsyncCommand(r->cmd, lookup_reply, q, "FCALL jobfs_watch 0 %s %s %s",
	    r->prefix, r->nstr, j->key) != REDIS_OK) {
		free(q);
		return false;
	}
	return true;
}

/*
 * resync: pub/sub is at most once, so events published while this daemon
 * was away (Redis restarted, a link dropped, this daemon taken for dead)
 * are lost.  Once it is back (subscribed again), every unfinished job
 * known here that no local worker runs is looked at again (jobfs_watch,
 * which also names this daemon among its watchers), and what it became
 * meanwhile is applied: a master waiting for its job hears its ending.
 * One call per such job, pipelined.
 *
 * After Redis lost the cluster's data (r->lost), the jobs local workers
 * run are looked at too, and every job Redis no longer has ends failed
 * (broker_be_gone).  r->lost stays set until every one of these calls is
 * answered: a link lost meanwhile means a resync like it after the
 * reconnect.
 */
static void
resync(struct rstore *r)
{
	struct job_cursor c = { 0 };
	struct job *j;
	size_t n = 0;
	bool lost = r->lost;

	broker_cursor_open(r->b, &c);
	while ((j = broker_cursor_job(&c)) != NULL) {
		broker_cursor_advance(&c);
		if (!j->shared || JOB_FINISHED(j) || j->pending || (j->worker != NULL && !lost))
			continue;
		if (resync_one(r, j, lost))
			n++;
	}
	broker_cursor_close(r->b, &c);
	if (lost) {
		r->lost_left = n;
		r->lost_ended = 0;
		lost_done(r);
	} else if (n > 0)
		log_info("redis: %zu unfinished job(s) looked at again after the outage", n);
}

static void
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

/* ------------------------------------------------------------ dispatch */

static struct rtype *
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

static void
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
static bool
reask_type(void *ctx, struct jtype *jt)
{
	struct rstore *r = ctx;

	if (TAILQ_FIRST(&jt->idle) != NULL)
		rs_want(r, jt);
	return true;
}

static void
reask_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rstore *r = w->data;

	(void)loop;
	(void)revents;
	if (r->up)
		broker_types_each(r->b, reask_type, r);
}

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

static void
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

static void
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

static void
wk_dirty(struct rstore *r, struct jtype *jt)
{
	rtype_get(r, jt->name)->wk_dirty = true;
	if (!ev_is_active(&r->workers) && r->srv->loop != NULL) {
		ev_timer_set(&r->workers, 0.25, 0.);
		ev_timer_start(r->srv->loop, &r->workers);
	}
}

static bool
wk_mark(void *ctx, struct jtype *jt)
{
	if (TAILQ_FIRST(&jt->workers) != NULL)
		wk_dirty(ctx, jt);
	return true;
}

static void
on_job_moved(void *ctx, struct job *j, struct worker *w)
{
	(void)w;
	if (j->type != NULL)
		wk_dirty(ctx, j->type);
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

static void
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

	if (len < 4 || len - 3 > ID_MAX)
		return;
	memcpy(name, p + 3, len - 3);
	name[len - 3] = '\0';
	if ((strncmp(p, "t+ ", 3) == 0 || strncmp(p, "t- ", 3) == 0) &&
	    type_name_valid(name, strlen(name))) {
		rtype_get(r, name)->heard = r->types_asked;   /* (see types_reply) */
		type_listed(r, name, p[1] == '+');
	} else if (strncmp(p, "d- ", 3) == 0)
		log_info("redis: daemon %s was taken for dead; its jobs were reclaimed", name);
}

static void
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
			}
		}
		return;
	}
	if (strcmp(kind, "pmessage") == 0 && x->elements >= 4) {
		ch = rstr(x->element[2], NULL);
		if (strncmp(ch, r->prefix, pl) == 0 && strncmp(ch + pl, ":c:", 3) == 0)
			chan_deliver(&r->srv->broker, ch + pl + 3, x->element[3]->str, x->element[3]->len);
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
		snprintf(r->b->id_suffix, sizeof r->b->id_suffix, ".%" PRIu64, n);
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
	reregister(r);
	TAILQ_FOREACH(c, &r->outbox, entry)
		rs_send(r, c);
	sub_start(r);
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
static void
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

static void
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
static void
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

/* ------------------------------------------------------------ channels */

/* rs_publish: the channels' transport (chan_set_transport): a message to
 * every daemon, this one too; -1 if Redis is away. */
static int
rs_publish(void *ctx, const char *chan, const char *text, size_t len)
{
	struct rstore *r = ctx;

	if (!r->up)
		return -1;
	redisAsyncCommand(r->cmd, NULL, NULL, "PUBLISH %s:c:%s %b", r->prefix, chan, text, len);
	return 0;
}

/* ------------------------------------------------------------ lifetime */

int
rstore_open(struct server *srv, char *err, size_t errlen)
{
	static const struct broker_backend be0 = {
		.submit = rs_submit, .want = rs_want, .complete = rs_complete,
		.partial = rs_partial, .requeue = rs_requeue, .end = rs_end,
		.forget = rs_forget, .lookup = rs_lookup, .query = rs_query,
		.pin = rs_pin,
	};
	struct broker_backend be = be0;
	struct broker_listener l = {
		.worker_joined = on_worker_joined, .worker_left = on_worker_left,
		.job_dispatched = on_job_moved, .job_finished = on_job_moved,
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
	r->srv = srv;
	r->b = &srv->broker;
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
	if (r->cmd != NULL)
		redisAsyncFree(r->cmd);
	if (r->sub != NULL)
		redisAsyncFree(r->sub);
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
	free(r);
	srv->redis = NULL;
}
