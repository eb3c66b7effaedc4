/*
 * proto.c — the TCP face: the Gloom protocol's message table, generic
 * checks, the channels' handlers, and the frames sent as the broker's
 * events come (proto_listener: a job frame on dispatch, endings to
 * masters, cancels).  The other handlers are in proto_master.c,
 * proto_worker.c and proto_auth.c.
 *
 * Each message is one row of msg_table: its name, the ports it is valid on,
 * its dialect ("type" or "action" key), its fields with their JSON types,
 * and a short handler.  proto_handle() makes every generic check once
 * (invalid_json, missing_field, invalid_type, unknown_type) before any
 * handler runs, as Redis's processCommand does for arity.  Messages are
 * read by msg.c's scanner: no JSON tree is built on the hot path.
 */
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "tcp/tcp.h"

#define IDJSON_MAX (6 * ID_MAX + 2)  /* every byte a \u escape, and quotes */

static msg_handler h_subscribe, h_unsubscribe, h_publish;

#define JOB_OPTIONS \
	{ MK_PRIORITY, F_INT, false }, { MK_TIMEOUT, F_INT, false }, \
	{ MK_DETACH, F_BOOL, false }, { MK_STREAM, F_BOOL, false }, \
	{ MK_NOTIFY, F_BOOL, false }, { MK_WORKER, F_STRING, false }, \
	{ MK_RETRIES, F_INT, false }, { MK_BACKOFF, F_INT, false }, \
	{ MK_DELAY, F_INT, false }, { MK_AT, F_INT, false }, \
	{ MK_AFTER, F_ARRAY, false }
#define TYPE_SETTINGS \
	{ MK_LIMIT, F_INT, false }, { MK_RETRIES, F_INT, false }, \
	{ MK_BACKOFF, F_INT, false }
#define JOIN_OPTIONS \
	{ MK_WORKER, F_STRING, false }, { MK_CAPACITY, F_INT, false }, \
	{ MK_HEARTBEAT, F_INT, false }, { MK_CANCEL, F_BOOL, false }
#define SCHED_OPTIONS \
	{ MK_NAME, F_STRING, true }, { MK_CRON, F_STRING, false }, \
	{ MK_EVERY, F_INT, false }, { MK_BODY, F_ANY, false }, \
	{ MK_PRIORITY, F_INT, false }, { MK_RETRIES, F_INT, false }
#define LIST_OPTIONS \
	{ MK_STATE, F_STRING, true }, { MK_LIMIT, F_INT, false }, \
	{ MK_CURSOR, F_STRING, false }

static const struct msg_def msg_table[] = {
	{ "job", ROLE_MASTER, DIALECT_SEED, h_submit,
	  { { MK_JOB_TYPE, F_STRING, true }, { MK_ID, F_ID, true },
	    { MK_BODY, F_ANY, true }, JOB_OPTIONS, END } },
	{ "submit", ROLE_MASTER, DIALECT_ACTION, h_submit,
	  { { MK_TYPE, F_STRING, true }, { MK_ID, F_ID, true },
	    { MK_BODY, F_ANY, true }, JOB_OPTIONS, END } },
	{ "join", ROLE_WORKER, DIALECT_SEED, h_join,
	  { { MK_JOB_TYPE, F_STRING, true }, JOIN_OPTIONS, END } },
	{ "join", ROLE_WORKER, DIALECT_ACTION, h_join,
	  { { MK_TYPE, F_STRING, true }, JOIN_OPTIONS, END } },
	{ "response", ROLE_WORKER, DIALECT_SEED, h_response,
	  { { MK_BODY, F_ANY, true }, { MK_ID, F_ID, false },
	    { MK_LOG, F_STRING, false }, END } },
	{ "respond", ROLE_WORKER, DIALECT_ACTION, h_response,
	  { { MK_BODY, F_ANY, true }, { MK_ID, F_ID, false },
	    { MK_LOG, F_STRING, false }, END } },
	{ "partial", ROLE_WORKER, DIALECT_UNSET, h_partial,
	  { { MK_BODY, F_ANY, true }, { MK_ID, F_ID, false }, END } },
	{ "pong", ROLE_WORKER, DIALECT_UNSET, h_pong, { END } },
	{ "ping", ROLE_MASTER | ROLE_WORKER, DIALECT_UNSET, h_ping, { END } },
	{ "status", ROLE_MASTER, DIALECT_UNSET, h_status,
	  { { MK_ID, F_ID, true }, END } },
	{ "stats", ROLE_MASTER, DIALECT_SEED, h_stats,
	  { { MK_JOB_TYPE, F_STRING, false }, END } },
	{ "stats", ROLE_MASTER, DIALECT_ACTION, h_stats,
	  { { MK_TYPE, F_STRING, false }, END } },
	{ "cancel", ROLE_MASTER, DIALECT_UNSET, h_cancel,
	  { { MK_ID, F_ID, true }, END } },
	{ "wait", ROLE_MASTER, DIALECT_UNSET, h_wait,
	  { { MK_ID, F_ID, true }, END } },
	{ "subscribe", ROLE_MASTER | ROLE_WORKER, DIALECT_UNSET, h_subscribe,
	  { { MK_CHANNEL, F_STRING, true }, END } },
	{ "unsubscribe", ROLE_MASTER | ROLE_WORKER, DIALECT_UNSET, h_unsubscribe,
	  { { MK_CHANNEL, F_STRING, true }, END } },
	{ "publish", ROLE_MASTER | ROLE_WORKER, DIALECT_UNSET, h_publish,
	  { { MK_CHANNEL, F_STRING, true }, { MK_BODY, F_ANY, true }, END } },
	/* the job lifecycle */
	{ "fail", ROLE_WORKER, DIALECT_UNSET, h_fail,
	  { { MK_BODY, F_ANY, true }, { MK_ID, F_ID, false },
	    { MK_LOG, F_STRING, false }, END } },
	{ "kick", ROLE_MASTER, DIALECT_SEED, h_kick,
	  { { MK_ID, F_ID, false }, { MK_JOB_TYPE, F_STRING, false }, END } },
	{ "kick", ROLE_MASTER, DIALECT_ACTION, h_kick,
	  { { MK_ID, F_ID, false }, { MK_TYPE, F_STRING, false }, END } },
	{ "pause", ROLE_MASTER, DIALECT_SEED, h_pause,
	  { { MK_JOB_TYPE, F_STRING, true }, END } },
	{ "pause", ROLE_MASTER, DIALECT_ACTION, h_pause,
	  { { MK_TYPE, F_STRING, true }, END } },
	{ "resume", ROLE_MASTER, DIALECT_SEED, h_resume,
	  { { MK_JOB_TYPE, F_STRING, true }, END } },
	{ "resume", ROLE_MASTER, DIALECT_ACTION, h_resume,
	  { { MK_TYPE, F_STRING, true }, END } },
	{ "configure", ROLE_MASTER, DIALECT_SEED, h_configure,
	  { { MK_JOB_TYPE, F_STRING, true }, TYPE_SETTINGS, END } },
	{ "configure", ROLE_MASTER, DIALECT_ACTION, h_configure,
	  { { MK_TYPE, F_STRING, true }, TYPE_SETTINGS, END } },
	/* jobs by state */
	{ "list", ROLE_MASTER, DIALECT_SEED, h_list,
	  { { MK_JOB_TYPE, F_STRING, false }, LIST_OPTIONS, END } },
	{ "list", ROLE_MASTER, DIALECT_ACTION, h_list,
	  { { MK_TYPE, F_STRING, false }, LIST_OPTIONS, END } },
	/* repeating jobs */
	{ "schedule", ROLE_MASTER, DIALECT_SEED, h_schedule,
	  { { MK_JOB_TYPE, F_STRING, true }, SCHED_OPTIONS, END } },
	{ "schedule", ROLE_MASTER, DIALECT_ACTION, h_schedule,
	  { { MK_TYPE, F_STRING, true }, SCHED_OPTIONS, END } },
	{ "unschedule", ROLE_MASTER, DIALECT_SEED, h_unschedule,
	  { { MK_JOB_TYPE, F_STRING, true }, { MK_NAME, F_STRING, true }, END } },
	{ "unschedule", ROLE_MASTER, DIALECT_ACTION, h_unschedule,
	  { { MK_TYPE, F_STRING, true }, { MK_NAME, F_STRING, true }, END } },
	{ "schedules", ROLE_MASTER, DIALECT_SEED, h_schedules,
	  { { MK_JOB_TYPE, F_STRING, false }, END } },
	{ "schedules", ROLE_MASTER, DIALECT_ACTION, h_schedules,
	  { { MK_TYPE, F_STRING, false }, END } },
};

static const char *
type_names(unsigned types)
{
	switch (types) {
	case F_STRING: return "a string";
	case F_INT:    return "an integer";
	case F_BOOL:   return "a boolean";
	case F_ID:     return "a string or an integer";
	case F_ARRAY:  return "an array";
	default:       return "a JSON value";
	}
}

static bool
field_type_ok(const struct mfield *f, unsigned types)
{
	int64_t v;

	return (types & F_ANY) ||
	    ((types & F_STRING) && f->kind == JK_STRING) ||
	    ((types & F_INT) && f->kind == JK_INT && msg_int(f, &v)) ||
	    ((types & F_BOOL) && (f->kind == JK_TRUE || f->kind == JK_FALSE)) ||
	    ((types & F_ARRAY) && f->kind == JK_ARRAY);
}

const struct mfield *
field(const struct msg_ctx *ctx, enum msg_key k)
{
	const struct mfield *f = &ctx->m->f[k];

	return f->present ? f : NULL;
}

int64_t
field_int(const struct msg_ctx *ctx, enum msg_key k)
{
	const struct mfield *f = field(ctx, k);
	int64_t v = 0;

	if (f != NULL)
		msg_int(f, &v);
	return v;
}

bool
field_true(const struct msg_ctx *ctx, enum msg_key k)
{
	const struct mfield *f = field(ctx, k);

	return f != NULL && f->kind == JK_TRUE;
}

/*
 * field_name: a string field that must be a name (type, channel, worker):
 * 1 to ID_MAX bytes once decoded, into out[ID_MAX + 1].
 */
bool
field_name(const struct msg_ctx *ctx, enum msg_key k, char *out, size_t *len)
{
	const struct mfield *f = field(ctx, k);

	return f != NULL && msg_string(f, out, ID_MAX + 1, len);
}

/* field_json: a field's compact JSON text (a body, usually a span of the frame). */
const char *
field_json(const struct msg_ctx *ctx, enum msg_key k, size_t *len)
{
	static struct buf scratch;

	if (scratch.cap > (1u << 20))
		buf_free(&scratch);
	return msg_value(field(ctx, k), &scratch, len);
}

/*
 * msg_usable_id: the message's "id" if it is a valid job id.  Fills key
 * (the canonical job key) and idjson (the id as the master sent it).
 */
static bool
msg_usable_id(const struct msg *m, char *key, char *idjson)
{
	const struct mfield *f = &m->f[MK_ID];
	int64_t v;
	size_t n;

	if (!f->present || f->len > IDJSON_MAX)
		return false;
	if (f->kind == JK_INT) {
		if (!msg_int(f, &v))
			return false;
		snprintf(key, ID_MAX + 1, "%" PRId64, v);
	} else if (f->kind != JK_STRING ||
	    !msg_string(f, key, ID_MAX + 1, &n) || !id_valid(key, n))
		return false;
	memcpy(idjson, f->val, f->len);
	idjson[f->len] = '\0';
	return true;
}

static const struct msg_def *
msg_lookup(const char *name, enum dialect d, unsigned role, bool *other_role)
{
	size_t i;

	*other_role = false;
	for (i = 0; i < sizeof msg_table / sizeof msg_table[0]; i++) {
		const struct msg_def *def = &msg_table[i];
		if (strcmp(def->name, name) != 0)
			continue;
		if (def->dialect != DIALECT_UNSET && def->dialect != d)
			continue;
		if (def->roles & role)
			return def;
		*other_role = true;
	}
	return NULL;
}

/* msg_check_fields: missing_field / invalid_type, once for every message. */
bool
msg_check_fields(struct conn *c, const struct msg_def *def, const struct msg_ctx *ctx)
{
	size_t i;

	for (i = 0; i < MAX_FIELDS && def->fields[i].key != MK_COUNT; i++) {
		const struct field *fd = &def->fields[i];
		const struct mfield *f = field(ctx, fd->key);
		if (f == NULL) {
			if (!fd->required)
				continue;
			conn_send_missing(c, msg_key_name(fd->key), ctx->idjson);
			return false;
		}
		if (!field_type_ok(f, fd->types)) {
			conn_send_error(c, "invalid_type", ctx->idjson, "\"%s\" must be %s",
			    msg_key_name(fd->key), type_names(fd->types));
			return false;
		}
	}
	return true;
}

/*
 * proto_handle: one whole frame from c.  Bad input gets an error frame and
 * leaves the connection usable.
 */
void
proto_handle(struct conn *c, const char *payload, size_t len)
{
	char key[ID_MAX + 1], idjson[IDJSON_MAX + 1], name[32], err[160];
	const struct msg_def *def;
	struct msg m;
	struct msg_ctx ctx = { .m = &m };
	const struct mfield *kind;
	bool other_role;

	if (auth_enabled() && !c->authed &&
	    ++c->frames_unauthed > c->srv->opt.max_unauth_frames) {
		c->srv->dropped_unauthed++;
		unauth_unlist(c);
		conn_drop(c, false, "too many frames before auth", "auth_required",
		    "%u frames without authenticating (--max-unauth-frames)",
		    c->srv->opt.max_unauth_frames);
		return;
	}
	if (len == 0) {
		c->srv->bad_frames++;
		conn_send_error(c, "invalid_json", NULL, "empty frame");
		return;
	}
	if (msg_parse(&m, payload, len, err, sizeof err) < 0) {
		c->srv->bad_frames++;
		conn_send_error(c, "invalid_json", NULL, "%s", err);
		return;
	}
	if (msg_usable_id(&m, key, idjson)) {
		ctx.key = key;
		ctx.idjson = idjson;
	}
	/* The later dialect names its messages "action"; the seed one "type". */
	ctx.dialect = m.f[MK_ACTION].present ? DIALECT_ACTION : DIALECT_SEED;
	kind = &m.f[ctx.dialect == DIALECT_ACTION ? MK_ACTION : MK_TYPE];
	if (!kind->present) {
		conn_send_missing(c, "type", ctx.idjson);
		return;
	}
	if (kind->kind != JK_STRING) {
		conn_send_error(c, "invalid_type", ctx.idjson, "\"%s\" must be a string",
		    ctx.dialect == DIALECT_ACTION ? "action" : "type");
		return;
	}
	if (!msg_string(kind, name, sizeof name, NULL)) {
		conn_send_error(c, "unknown_type", ctx.idjson, "unknown message %s",
		    ctx.dialect == DIALECT_ACTION ? "action" : "type");
		return;
	}
	if (auth_enabled() && !auth_gate(c, &ctx, name))
		return;
	def = msg_lookup(name, ctx.dialect, c->role, &other_role);
	if (def == NULL) {
		if (other_role)
			conn_send_error(c, "unknown_type", ctx.idjson,
			    "\"%s\" is not valid on the %s port", name,
			    c->role == ROLE_MASTER ? "master" : "worker");
		else
			conn_send_error(c, "unknown_type", ctx.idjson,
			    "unknown message %s \"%s\"",
			    ctx.dialect == DIALECT_ACTION ? "action" : "type", name);
		return;
	}
	if (msg_check_fields(c, def, &ctx))
		def->handle(c, &ctx);
}

/* ------------------------------------------------------------ small bits */

/* send_ok: the later dialect's ack, for connections that speak it (their
 * first join or submit was in it).  An acknowledgement: held until what it
 * acknowledges is durable (conn_frame_end_ack). */
void
send_ok(struct conn *c, const char *idjson)
{
	size_t start = conn_frame_begin(c);

	buf_append_str(&c->out, "{\"ok\":true");
	if (idjson != NULL) {
		buf_append_str(&c->out, ",\"id\":");
		buf_append_str(&c->out, idjson);
	}
	buf_append(&c->out, "}", 1);
	conn_frame_end_ack(c, start);
}

bool
id_check(struct conn *c, const struct msg_ctx *ctx)
{
	const struct mfield *f = field(ctx, MK_ID);

	if (ctx->key != NULL)
		return true;
	if (f != NULL && f->kind == JK_STRING)
		conn_send_error(c, "invalid_type", NULL,
		    "\"id\" must be 1 to %d bytes of UTF-8 without NUL, and at "
		    "most %d as a file name", ID_MAX, ID_MAX);
	else
		conn_send_error(c, "invalid_type", NULL,
		    "\"id\" must be a string or an integer (64-bit)");
	return false;
}

/* type_check: a type or channel name, decoded into out[ID_MAX + 1]. */
bool
type_check(struct conn *c, const struct msg_ctx *ctx, enum msg_key k, char *out)
{
	size_t len;

	if (field_name(ctx, k, out, &len) && type_name_valid(out, len))
		return true;
	conn_send_error(c, "invalid_type", ctx->idjson,
	    "\"%s\" must be 1 to %d bytes of UTF-8, without '/' or control "
	    "characters, and not . or ..", msg_key_name(k), ID_MAX);
	return false;
}

/* ------------------------------------------------------------- channels */

static void
h_subscribe(struct conn *c, const struct msg_ctx *ctx)
{
	char ch[ID_MAX + 1];

	if (type_check(c, ctx, MK_CHANNEL, ch))
		chan_subscribe(c->srv->broker, &c->chp, ch);
}

static void
h_unsubscribe(struct conn *c, const struct msg_ctx *ctx)
{
	char ch[ID_MAX + 1];

	if (type_check(c, ctx, MK_CHANNEL, ch))
		chan_unsubscribe(c->srv->broker, &c->chp, ch);
}

static void
h_publish(struct conn *c, const struct msg_ctx *ctx)
{
	char ch[ID_MAX + 1];
	const char *body;
	size_t len;

	if (!type_check(c, ctx, MK_CHANNEL, ch))
		return;
	body = field_json(ctx, MK_BODY, &len);
	if (chan_publish(c->srv->broker, ch, body, len) == SIZE_MAX)   /* Redis is away */
		conn_send_error(c, "unavailable", ctx->idjson, "%s",
		    broker_store_reason(c->srv->broker));
}

/* ------------------------------------------------------- frames we send */

/* Frames are assembled from the JSON text the broker keeps: no re-encoding. */
static void
out_str(struct conn *c, const char *s)
{
	buf_append_str(&c->out, s);
}

static void
out_json_string(struct conn *c, const char *s)
{
	json_t *v = json_string(s);

	json_dump_callback(v, buf_json_cb, &c->out, JSON_ENCODE_ANY);
	json_decref(v);
}

static void
proto_send_job(struct conn *w, struct job *j)
{
	size_t start = conn_frame_begin(w);

	if (w->dialect == DIALECT_ACTION) {
		out_str(w, "{\"action\":\"job\",\"id\":");
		out_str(w, job_idjson(j));
		out_str(w, ",\"type\":");
		out_json_string(w, j->type->name);
	} else {
		out_str(w, "{\"type\":\"job\",\"id\":");
		out_str(w, job_idjson(j));
	}
	out_str(w, ",\"body\":");
	if (job_body_blob(j) != NULL)
		conn_out_blob(w, job_body_blob(j));   /* written from the job's blob */
	else
		buf_append(&w->out, job_body(j), j->body_len);
	out_str(w, "}");
	conn_frame_end(w, start);
}

static const char *
ending_code(enum job_state s)
{
	switch (s) {
	case JOB_TIMEOUT:   return "timeout";
	case JOB_CANCELLED: return "cancelled";
	default:            return "job_failed";
	}
}

/*
 * proto_send_result: the job's one ending frame to its master, now, or
 * once the master's output has drained (conn_defer_ending).
 */
static void
proto_send_result(struct job *j)
{
	struct conn *m = j->master->face;

	if (!conn_defer_ending(m, j))
		proto_send_ending(m, j, NULL);
}

/*
 * proto_send_ending: write j's ending (result or error) to master m; the
 * result is result if not NULL (a deferred ending's own reference), else
 * the job's, and if the job let go of it (--keep-bytes), the error
 * result_dropped.
 */
void
proto_send_ending(struct conn *m, struct job *j, struct blob *result)
{
	size_t start;

	if (j->state != JOB_DONE && j->life != NULL) {
		/* the job lifecycle: why, and its last error */
		json_t *o = json_pack("{s:s,s:s,s:o}", "error", ending_code(j->state),
		    "reason", job_end_reason(j), "id",
		    json_loads(job_idjson(j), JSON_DECODE_ANY, NULL));
		/* only to a master that asked for the lifecycle: a seed
		 * master's job that an extension worker failed ends as 1.1 says */
		if (j->state == JOB_FAILED && j->life->error != NULL && j->life->opted)
			json_object_set_new(o, "last_error",
			    json_loads(j->life->error, JSON_DECODE_ANY, NULL));
		conn_send_json(m, o);
		return;
	}
	if (j->state != JOB_DONE) {
		conn_send_error(m, ending_code(j->state), job_idjson(j), "%s", j->key);
		return;
	}
	if (result == NULL)
		result = j->result;
	if (result == NULL) {
		conn_send_error(m, "result_dropped", job_idjson(j), "the result of %s "
		    "is no longer kept (--keep-bytes)", j->key);
		return;
	}
	start = conn_frame_begin(m);
	out_str(m, "{\"id\":");
	out_str(m, job_idjson(j));
	out_str(m, ",\"body\":");
	conn_out_blob(m, result);
	out_str(m, "}");
	conn_frame_end(m, start);
}

/*
 * proto_send_partial: a streamed partial result.  A master with more than
 * OUT_PARTIAL_LIMIT unread misses it (counted in stats as
 * partials_dropped): partials are unbounded in number, so they must not
 * push a master that reads slowly to the hard limit, and the job keeps
 * them for the tree anyway.
 */
static void
proto_send_partial(struct job *j, const char *body, size_t len)
{
	struct conn *m = j->master->face;
	size_t start;

	if (conn_out_used(m) > OUT_PARTIAL_LIMIT) {
		m->srv->partials_dropped++;
		return;
	}
	start = conn_frame_begin(m);
	out_str(m, "{\"id\":");
	out_str(m, job_idjson(j));
	out_str(m, ",\"body\":");
	buf_append(&m->out, body, len);
	out_str(m, ",\"partial\":true}");
	conn_frame_end(m, start);
}

static void
proto_send_running(struct job *j)
{
	struct conn *m = j->master->face;
	size_t start = conn_frame_begin(m);

	out_str(m, "{\"id\":");
	out_str(m, job_idjson(j));
	out_str(m, ",\"status\":\"running\",\"worker\":");
	out_json_string(m, j->worker_name);
	out_str(m, "}");
	conn_frame_end(m, start);
}

static void
proto_send_cancel(struct conn *w, struct job *j)
{
	size_t start = conn_frame_begin(w);

	out_str(w, w->dialect == DIALECT_ACTION ? "{\"action\":\"cancel\",\"id\":" :
	    "{\"type\":\"cancel\",\"id\":");
	out_str(w, job_idjson(j));
	out_str(w, "}");
	conn_frame_end(w, start);
}

void
proto_send_ping(struct conn *w)
{
	if (w->dialect == DIALECT_ACTION)
		conn_send_raw(w, "{\"action\":\"ping\"}", 17);
	else
		conn_send_raw(w, "{\"type\":\"ping\"}", 15);
}

/* ------------------------------------------------- the broker's events */

/* on_dispatched: the job frame to its worker, the notice to its master. */
static void
on_dispatched(void *ctx, struct job *j, struct worker *w)
{
	(void)ctx;
	if (w != NULL)   /* NULL: it runs on another daemon (cluster mode) */
		proto_send_job(w->face, j);
	if (j->notify && j->master != NULL)
		proto_send_running(j);
}

static void
on_partial(void *ctx, struct job *j, const char *body, size_t len)
{
	(void)ctx;
	if (j->master != NULL && j->stream)
		proto_send_partial(j, body, len);
}

/*
 * on_finished: a cancel to the worker that still runs it, if it takes
 * cancels (else the broker keeps its slot until its late answer); the
 * ending to its master.
 */
static void
on_finished(void *ctx, struct job *j, struct worker *ran_on)
{
	if (ran_on != NULL && j->state != JOB_DONE && ran_on->takes_cancel)
		proto_send_cancel(ran_on->face, j);
	if (j->master != NULL)
		proto_send_result(j);
	if (((struct server *)ctx)->waits != NULL)
		wake_waiters(ctx, j);
}

/* on_forgotten: a job that goes (restored finished, say) takes its waits. */
static void
on_forgotten(void *ctx, struct job *j)
{
	struct server *srv = ctx;
	struct waiting *w;

	HASH_FIND_STR(srv->waits, j->key, w);
	if (w != NULL)
		waiting_free(srv, w);
}

/* on_abandoned: an attempt timed out and is retried elsewhere:
 * its worker gets a cancel if it takes them. */
static void
on_abandoned(void *ctx, struct job *j, struct worker *w)
{
	(void)ctx;
	if (w->takes_cancel && w->face != NULL)
		proto_send_cancel(w->face, j);
}

/*
 * on_accepted: cluster mode: Redis answered a submission (h_submit had
 * BERR_PENDING): the later dialect's ack, or the error frame; a refused
 * job is then forgotten, its master told nothing more.
 */
static void
on_accepted(void *ctx, struct job *j, int berr)
{
	struct server *srv = ctx;
	struct conn *c;

	if (j->master == NULL || (c = j->master->face) == NULL)
		return;
	if (berr == BERR_OK) {
		if (c->dialect == DIALECT_ACTION)
			send_ok(c, job_idjson(j));
	} else
		conn_send_error(c, berr_frame(berr), job_idjson(j), "%s",
		    broker_err_reason(srv->broker, berr));
}

/* on_store_failed: what waits for the store is answered now. */
static void
on_store_failed(void *ctx)
{
	conn_fail_held(ctx);
}

/* on_durable: acknowledgements held for the store may go out now. */
static void
on_durable(void *ctx, uint64_t mark)
{
	conn_release_held(ctx, mark);
}

/* proto_init: the TCP face listens to the broker (after broker_init). */
void
proto_init(struct server *srv)
{
	static const struct broker_listener l = {
		.job_dispatched = on_dispatched,
		.job_partial = on_partial,
		.job_finished = on_finished,
		.job_forgotten = on_forgotten,
		.job_abandoned = on_abandoned,
	};
	struct broker_listener mine = l;

	mine.ctx = srv;
	mine.durable = on_durable;
	mine.job_accepted = on_accepted;
	mine.store_failed = on_store_failed;
	broker_listen(srv->broker, &mine);
}
