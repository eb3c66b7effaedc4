/*
 * proto_master.c — the master port's messages: submit, status, stats,
 * cancel, wait, jobs by state and the job lifecycle (kick, pause, resume,
 * configure).  The table that routes them is proto.c's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "tcp/tcp.h"

static bool may_see(const struct conn *, const struct job *);

/* -------------------------------------------------------------- masters */

/*
 * after_parse: "after": an array of at most LIFE_AFTER_MAX job ids, as
 * keys into keys[] (req->after points at them).
 */
static bool
after_parse(struct conn *c, const struct msg_ctx *ctx, struct submit_req *req,
    const char **after, char (*keys)[ID_MAX + 1])
{
	const struct mfield *f = field(ctx, MK_AFTER);
	json_t *a = json_loadb(f->val, f->len, JSON_DECODE_ANY, NULL), *v;
	size_t i;
	bool ok = json_is_array(a) && json_array_size(a) <= LIFE_AFTER_MAX;

	if (json_is_array(a) && !ok)
		conn_send_error(c, "invalid_type", ctx->idjson,
		    "\"after\" may name at most %d jobs", LIFE_AFTER_MAX);
	json_array_foreach(a, i, v) {
		if (!ok)
			break;
		if (json_is_integer(v))
			snprintf(keys[i], ID_MAX + 1, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		else if (json_is_string(v) && json_string_length(v) <= ID_MAX &&
		    id_valid(json_string_value(v), json_string_length(v)))
			memcpy(keys[i], json_string_value(v), json_string_length(v) + 1);
		else {
			conn_send_error(c, "invalid_type", ctx->idjson,
			    "\"after\" must be an array of job ids (strings or integers)");
			ok = false;
			break;
		}
		after[i] = keys[i];
	}
	if (ok) {
		req->after = after;
		req->nafter = json_array_size(a);
	}
	json_decref(a);
	return ok;
}

/*
 * berr_frame: the error frame of a broker refusal, for every code (no
 * default: -Wswitch finds a code added to the broker and missed here).
 * The reason is the broker's (broker_err_reason).
 */
const char *
berr_frame(enum broker_err err)
{
	switch (err) {
	case BERR_OK:
	case BERR_PENDING:
		return NULL;   /* not refusals */
	case BERR_ID_EXISTS:
		return "id_exists";
	case BERR_UNKNOWN_ID:
		return "unknown_id";
	case BERR_FULL_JOBS:
	case BERR_FULL_MEMORY:
		return "full";
	case BERR_UNAVAILABLE:
		return "unavailable";
	case BERR_SELF:
	case BERR_INVALID:
		return "invalid_type";
	case BERR_STATE:
		return "invalid_state";
	}
	return "unavailable";
}

/* h_submit: "job" (seed dialect) and "submit" (later dialect). */
void
h_submit(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	char type[ID_MAX + 1], target[ID_MAX + 1];
	const char *after[LIFE_AFTER_MAX];
	struct submit_req req = { 0 };
	struct broker *b = c->srv->broker;
	struct job *j = NULL;
	size_t tlen, i, plain;
	enum broker_err berr;

	if (!id_check(c, ctx) || !type_check(c, ctx, type_key, type))
		return;
	if (field_int(ctx, MK_TIMEOUT) < 0) {
		conn_send_error(c, "invalid_type", ctx->idjson,
		    "\"timeout\" must be 0 (none) or a positive number of milliseconds");
		return;
	}
	if (field(ctx, MK_WORKER) != NULL &&
	    (!field_name(ctx, MK_WORKER, target, &tlen) || !id_valid(target, tlen))) {
		conn_send_error(c, "invalid_type", ctx->idjson,
		    "\"worker\" must be a name of 1 to %d bytes", ID_MAX);
		return;
	}
	if (c->dialect == DIALECT_UNSET)
		c->dialect = ctx->dialect;
	req.type = type;
	req.key = ctx->key;
	req.idjson = ctx->idjson;
	req.body = field_json(ctx, MK_BODY, &req.body_len);
	req.priority = field_int(ctx, MK_PRIORITY);
	req.timeout_ms = field_int(ctx, MK_TIMEOUT);
	req.detach = field_true(ctx, MK_DETACH);
	req.stream = field_true(ctx, MK_STREAM);
	req.notify = field_true(ctx, MK_NOTIFY);
	req.target = field(ctx, MK_WORKER) != NULL ? target : NULL;
	req.master = c->master;
	req.owner = auth_enabled() ? c->auth_name : NULL;
	/* the job lifecycle: ranges are the broker's to check */
	req.retries_set = field(ctx, MK_RETRIES) != NULL;
	req.retries = field_int(ctx, MK_RETRIES);
	req.backoff_ms = field(ctx, MK_BACKOFF) != NULL && field_int(ctx, MK_BACKOFF) == 0 ?
	    -1 : field_int(ctx, MK_BACKOFF);
	req.delay_ms = field_int(ctx, MK_DELAY);
	req.at_ms = field_int(ctx, MK_AT);
	if (field(ctx, MK_AFTER) != NULL && !after_parse(c, ctx, &req, after,
	    c->srv->submit_after))
		return;
	for (i = 0; i < req.nafter; i++) {
		struct job *d = broker_find(b, req.after[i]);

		if (d != NULL && !may_see(c, d)) {   /* --auth: others' jobs do not exist */
			conn_send_error(c, "unknown_id", ctx->idjson,
			    "\"after\" names %s: no job has that id", req.after[i]);
			return;
		}
	}
	/* A large body stays in the frame's buffer, which the job takes. */
	req.body_blob = conn_in_adopt(c, req.body, req.body_len);
	berr = broker_submit(b, &req, &j);
	blob_unref(req.body_blob);   /* (the frame's bytes go if refused) */
	if (berr == BERR_PENDING)   /* cluster mode: the answer comes as job_accepted */
		return;
	if (berr != BERR_OK) {
		conn_send_error(c, berr_frame(berr), ctx->idjson, "%s",
		    broker_err_reason(b, berr));
		return;
	}
	/* The job may be on its way to a worker; its result cannot come
	 * before this acknowledgement, which goes out first. */
	plain = buf_used(&c->out);
	if (c->dialect == DIALECT_ACTION)
		send_ok(c, ctx->idjson);
	if (j != NULL)
		conn_hold_submit(c, j, plain);
}

/*
 * may_see: with --auth, a job is its submitter's: another name asking
 * about it (status, wait, cancel) hears unknown_id, as if it did not
 * exist, unless it has the admin role.  Jobs without an owner (the tree's)
 * are the admin's only.
 */
static bool
may_see(const struct conn *c, const struct job *j)
{
	if (!auth_enabled() || (c->auth_roles & AUTH_ADMIN))
		return true;
	return j->owner != NULL && strcmp(j->owner, c->auth_name) == 0;
}

void
h_ping(struct conn *c, const struct msg_ctx *ctx)
{
	if (ctx->dialect == DIALECT_ACTION)
		conn_send_raw(c, "{\"action\":\"pong\"}", 17);
	else
		conn_send_raw(c, "{\"type\":\"pong\"}", 15);
}

/*
 * Requests about a job by id (status, cancel, wait) find it with
 * broker_lookup: here at once, or, in cluster mode, a job of another
 * daemon once Redis answers.  The request waits holding the connection's
 * master handle, not the connection, which may close meanwhile.
 */
enum about { ABOUT_STATUS, ABOUT_CANCEL, ABOUT_WAIT, ABOUT_KICK };
static void do_status(struct conn *, const char *idjson, struct job *);
static void do_kick(struct conn *, const char *idjson, struct job *);
static void do_cancel(struct conn *, const char *idjson, struct job *);
static void do_wait(struct conn *, const char *idjson, struct job *);

struct about_req {
	struct master *m;
	enum about     what;
	char           idjson[];
};

static void
about_found(void *ctx, struct job *j, int berr)
{
	struct about_req *q = ctx;
	struct conn *c = q->m->face;

	if (c != NULL && berr != BERR_OK)
		conn_send_error(c, "unavailable", q->idjson, "%s",
		    broker_store_reason(c->srv->broker));
	else if (c != NULL)
		(q->what == ABOUT_STATUS ? do_status : q->what == ABOUT_CANCEL ?
		    do_cancel : q->what == ABOUT_KICK ? do_kick : do_wait)(c, q->idjson, j);
	broker_master_release(q->m);
	free(q);
}

static void
about(struct conn *c, const struct msg_ctx *ctx, enum about what)
{
	struct about_req *q;

	if (!id_check(c, ctx))
		return;
	if (c->master == NULL) {   /* (a worker asking: only jobs known here) */
		struct job *j = broker_find(c->srv->broker, ctx->key);

		(what == ABOUT_STATUS ? do_status : what == ABOUT_CANCEL ?
		    do_cancel : what == ABOUT_KICK ? do_kick : do_wait)(c, ctx->idjson, j);
		return;
	}
	q = xmalloc(sizeof *q + strlen(ctx->idjson) + 1);
	q->m = c->master;
	q->what = what;
	strcpy(q->idjson, ctx->idjson);
	broker_master_hold(q->m);
	broker_lookup(c->srv->broker, ctx->key, about_found, q);
}

void
h_status(struct conn *c, const struct msg_ctx *ctx)
{
	about(c, ctx, ABOUT_STATUS);
}

static void
do_status(struct conn *c, const char *idjson, struct job *j)
{
	if (j == NULL || !may_see(c, j)) {
		conn_send_error(c, "unknown_id", idjson, "no job has id %s", idjson);
		return;
	}
	conn_send_json(c, job_info(j));
}

/*
 * h_stats: daemon-wide counters, with those of one type if the request
 * names it ("job_type", or "type" in the later dialect), else of at most
 * STATS_TYPES_MAX types: the reply's size does not grow with the types.
 */
void
h_stats(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	char type[ID_MAX + 1];
	bool one = field(ctx, type_key) != NULL;

	if (one && !type_check(c, ctx, type_key, type))
		return;
	conn_send_json(c, json_pack("{s:o}", "stats",
	    broker_stats(c->srv->broker, one ? type : NULL, STATS_TYPES_MAX)));
}

/* h_cancel: end the job; the canceller hears the ending too. */
void
h_cancel(struct conn *c, const struct msg_ctx *ctx)
{
	about(c, ctx, ABOUT_CANCEL);
}

static void
do_cancel(struct conn *c, const char *idjson, struct job *j)
{
	struct master *master;

	if (j == NULL || JOB_FINISHED(j) || !may_see(c, j)) {
		conn_send_error(c, "unknown_id", idjson,
		    "no unfinished job has id %s", idjson);
		return;
	}
	master = j->master;
	job_ref(j);
	broker_end(c->srv->broker, j, JOB_CANCELLED);
	if (master != c->master)
		conn_send_error(c, "cancelled", job_idjson(j), "%s", j->key);
	job_unref(c->srv->broker, j);
}

/* ------------------------------------------- jobs by state */

static bool
list_may_see(void *ctx, const struct job *j)
{
	return may_see(ctx, j);
}

/*
 * h_list: a page of the jobs in a state ("state"), of one type or of all,
 * at most "limit" (LIST_LIMIT_DEFAULT, up to LIST_LIMIT_MAX), after
 * "cursor" (the "next" of the page before).  Under --auth a token that is
 * not admin sees only the jobs it submitted.
 */
void
h_list(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	struct broker *b = c->srv->broker;
	char type[ID_MAX + 1], state[32], *pos = NULL;
	const struct mfield *f;
	struct jtype *t = NULL;
	int64_t limit = LIST_LIMIT_DEFAULT;
	size_t len;
	json_t *o;
	int s;

	if (field(ctx, type_key) != NULL) {
		if (!type_check(c, ctx, type_key, type))
			return;
		if ((t = broker_type(b, type, false)) == NULL) {
			conn_send_json(c, json_pack("{s:[],s:n}", "jobs", "next"));
			return;
		}
	}
	f = field(ctx, MK_STATE);
	if (!msg_string(f, state, sizeof state, &len) || (s = jls_parse(state)) == JLS_NONE) {
		conn_send_error(c, "invalid_type", NULL, "\"state\" must be one of "
		    "queued, running, delayed, waiting, done, failed, cancelled, dead");
		return;
	}
	if (field(ctx, MK_LIMIT) != NULL &&
	    ((limit = field_int(ctx, MK_LIMIT)) < 1 || limit > LIST_LIMIT_MAX)) {
		conn_send_error(c, "invalid_type", NULL, "\"limit\" must be 1 to %d",
		    LIST_LIMIT_MAX);
		return;
	}
	if ((f = field(ctx, MK_CURSOR)) != NULL) {
		pos = xmalloc(f->len + 1);
		if (!msg_string(f, pos, f->len + 1, &len) || strlen(pos) != len) {
			free(pos);
			pos = NULL;
			f = NULL;
		}
	}
	if ((field(ctx, MK_CURSOR) != NULL && pos == NULL) ||
	    (o = broker_list(b, s, t, (size_t)limit, pos, list_may_see, c)) == NULL) {
		conn_send_error(c, "invalid_type", NULL, "\"cursor\" must be the "
		    "\"next\" of a page of this listing");
		free(pos);
		return;
	}
	free(pos);
	conn_send_json(c, o);
}

/* ------------------------------------------- the job lifecycle */

/* send_type_settings: the reply to pause, resume and configure. */
static void
send_type_settings(struct conn *c, const char *name)
{
	struct jtype *t = broker_type(c->srv->broker, name, false);

	if (t != NULL)
		conn_send_json(c, broker_type_settings(t));
	else   /* nothing set: the type went with its last setting */
		conn_send_json(c, json_pack("{s:s,s:b,s:i,s:i,s:i}", "job_type", name,
		    "paused", 0, "limit", 0, "retries", 0, "backoff", LIFE_BACKOFF_MS));
}

/* h_kick: {"kick","id"} queues one dead job again; {"kick","job_type"}
 * every dead job of a type.  Reply: {"kicked":N} with the id or type. */
/* do_kick: one dead job, found (about), queued again. */
static void
do_kick(struct conn *c, const char *idjson, struct job *j)
{
	if (j == NULL || !may_see(c, j)) {
		conn_send_error(c, "unknown_id", idjson, "no job has id %s", idjson);
		return;
	}
	if (broker_kick(c->srv->broker, j) != BERR_OK) {
		conn_send_error(c, "invalid_state", idjson,
		    "job %s is %s, not dead", idjson, job_status(j));
		return;
	}
	conn_send_json(c, json_pack("{s:i,s:o}", "kicked", 1, "id",
	    json_loads(idjson, JSON_DECODE_ANY, NULL)));
}

void
h_kick(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	struct broker *b = c->srv->broker;
	char type[ID_MAX + 1];
	struct jtype *t;
	size_t n;

	if (field(ctx, MK_ID) != NULL) {
		/* (in cluster mode a dead job may be known only to Redis) */
		about(c, ctx, ABOUT_KICK);
		return;
	}
	if (field(ctx, type_key) == NULL) {
		conn_send_missing(c, "id", NULL);
		return;
	}
	if (!type_check(c, ctx, type_key, type))
		return;
	t = broker_type(b, type, false);
	n = t != NULL ? broker_kick_type(b, t) : 0;
	conn_send_json(c, json_pack("{s:I,s:s}", "kicked", (json_int_t)n, "job_type", type));
}

static void
pause_resume(struct conn *c, const struct msg_ctx *ctx, bool paused)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	struct broker *b = c->srv->broker;
	char type[ID_MAX + 1];
	struct jtype *t;

	if (!type_check(c, ctx, type_key, type))
		return;
	if ((t = broker_type(b, type, paused)) != NULL)
		broker_type_pause(b, t, paused);
	send_type_settings(c, type);
}

void
h_pause(struct conn *c, const struct msg_ctx *ctx)
{
	pause_resume(c, ctx, true);
}

void
h_resume(struct conn *c, const struct msg_ctx *ctx)
{
	pause_resume(c, ctx, false);
}

/* h_configure: a type's "limit", and the "retries" and "backoff" of its
 * jobs that do not say.  A value given out of range (negative too) is
 * refused, with its range, and nothing changes. */
void
h_configure(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	struct broker *b = c->srv->broker;
	char type[ID_MAX + 1];
	int64_t v[3] = { -1, -1, -1 };
	static const enum msg_key keys[3] = { MK_LIMIT, MK_RETRIES, MK_BACKOFF };
	int i;

	if (!type_check(c, ctx, type_key, type))
		return;
	for (i = 0; i < 3; i++)
		if (field(ctx, keys[i]) != NULL)
			v[i] = field_int(ctx, keys[i]) < 0 ? -2 : field_int(ctx, keys[i]);
	if (broker_type_configure(b, type, v[0], v[1], v[2]) != BERR_OK) {
		conn_send_error(c, "invalid_type", NULL, "%s", broker_err_detail(b));
		return;
	}
	send_type_settings(c, type);
}

/*
 * Waits: masters waiting for jobs they may not have submitted (after a
 * restart, say).  By job key, the serial numbers of the connections that
 * wait (a serial, not a pointer: a connection may close before the job
 * ends; it is then simply not found).  At most WAITS_MAX at once, all
 * connections together; a job's waits go when it ends or is forgotten.
 * They are the server's (srv->waits, srv->nwaits; struct waiting in tcp.h).
 */
#define WAITS_MAX 100000

void
waiting_free(struct server *srv, struct waiting *w)
{
	HASH_DEL(srv->waits, w);
	srv->nwaits -= w->n;
	free(w->serials);
	free(w);
}

static int
serial_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* wake_waiters: j ended: its ending to every connection still waiting. */
void
wake_waiters(struct server *srv, struct job *j)
{
	struct waiting *w;
	struct conn *c;

	HASH_FIND_STR(srv->waits, j->key, w);
	if (w == NULL)
		return;
	qsort(w->serials, w->n, sizeof *w->serials, serial_cmp);
	TAILQ_FOREACH(c, &srv->conns, all_entry) {
		uint64_t *hit;

		if (c->flags & (CONN_DEAD | CONN_RELEASED))
			continue;
		hit = bsearch(&c->serial, w->serials, w->n, sizeof *w->serials,
		    serial_cmp);
		if (hit == NULL)
			continue;
		/* Every wait of c on j: the same frame each time. */
		while (hit > w->serials && hit[-1] == c->serial)
			hit--;
		for (; hit < w->serials + w->n && *hit == c->serial; hit++)
			if (!conn_defer_ending(c, j))
				proto_send_ending(c, j, NULL);
	}
	waiting_free(srv, w);
}

/*
 * h_wait: the job's ending frame, exactly as its submitter gets it, when
 * it ends, or now if it has; unknown_id if there is no such job.
 */
void
h_wait(struct conn *c, const struct msg_ctx *ctx)
{
	about(c, ctx, ABOUT_WAIT);
}

static void
do_wait(struct conn *c, const char *idjson, struct job *j)
{
	struct waiting *w;
	size_t len;

	if (j == NULL || !may_see(c, j)) {
		conn_send_error(c, "unknown_id", idjson, "no job has id %s", idjson);
		return;
	}
	if (JOB_FINISHED(j)) {
		if (!conn_defer_ending(c, j))
			proto_send_ending(c, j, NULL);
		return;
	}
	if (c->srv->nwaits >= WAITS_MAX) {
		conn_send_error(c, "full", idjson, "too many waits (%d)", WAITS_MAX);
		return;
	}
	HASH_FIND_STR(c->srv->waits, j->key, w);
	if (w == NULL) {
		len = strlen(j->key);
		w = xcalloc(1, sizeof *w + len + 1);
		memcpy(w->key, j->key, len + 1);
		HASH_ADD(hh, c->srv->waits, key[0], len, w);
	}
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 2;
		w->serials = xrealloc(w->serials, w->cap * sizeof *w->serials);
	}
	w->serials[w->n++] = c->serial;
	c->srv->nwaits++;
}
