/*
 * proto.c — the Gloom protocol: message table, generic checks, handlers,
 * and the frames the broker asks us to send.
 *
 * Each message is one row of msg_table: its name, the ports it is valid on,
 * its dialect ("type" or "action" key), its fields with their JSON types,
 * and a short handler.  proto_handle() makes every generic check once
 * (invalid_json, missing_field, invalid_type, unknown_type) before any
 * handler runs, as Redis's processCommand does for arity.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs.h"

/* Field types, as a mask. */
#define F_STRING 0x01
#define F_INT    0x02
#define F_BOOL   0x04
#define F_ANY    0x08
#define F_ID     (F_STRING | F_INT)

#define MAX_FIELDS 10
#define CAPACITY_MAX 4096
#define HEARTBEAT_MIN_MS 10

struct field {
	const char *name;
	unsigned    types;
	bool        required;
};

/* What a handler gets besides the connection and the message. */
struct msg_ctx {
	enum dialect dialect;   /* of this message */
	const char  *idjson;    /* its usable id as JSON text, or NULL */
	const char  *key;       /* that id as a job key, or NULL */
};

typedef void msg_handler(struct conn *, json_t *, const struct msg_ctx *);

struct msg_def {
	const char   *name;
	unsigned      roles;
	enum dialect  dialect;  /* DIALECT_UNSET: valid in both */
	msg_handler  *handle;
	struct field  fields[MAX_FIELDS];
};

static msg_handler h_submit_seed, h_submit_action, h_join_seed, h_join_action,
    h_response, h_partial, h_pong, h_ping, h_status, h_stats, h_cancel,
    h_subscribe, h_unsubscribe, h_publish;

#define JOB_OPTIONS \
	{ "priority", F_INT, false }, { "timeout", F_INT, false }, \
	{ "detach", F_BOOL, false }, { "stream", F_BOOL, false }, \
	{ "notify", F_BOOL, false }, { "worker", F_STRING, false }
#define JOIN_OPTIONS \
	{ "worker", F_STRING, false }, { "capacity", F_INT, false }, \
	{ "heartbeat", F_INT, false }, { "cancel", F_BOOL, false }

static const struct msg_def msg_table[] = {
	{ "job", ROLE_MASTER, DIALECT_SEED, h_submit_seed,
	  { { "job_type", F_STRING, true }, { "id", F_ID, true },
	    { "body", F_ANY, true }, JOB_OPTIONS } },
	{ "submit", ROLE_MASTER, DIALECT_ACTION, h_submit_action,
	  { { "type", F_STRING, true }, { "id", F_ID, true },
	    { "body", F_ANY, true }, JOB_OPTIONS } },
	{ "join", ROLE_WORKER, DIALECT_SEED, h_join_seed,
	  { { "job_type", F_STRING, true }, JOIN_OPTIONS } },
	{ "join", ROLE_WORKER, DIALECT_ACTION, h_join_action,
	  { { "type", F_STRING, true }, JOIN_OPTIONS } },
	{ "response", ROLE_WORKER, DIALECT_SEED, h_response,
	  { { "body", F_ANY, true }, { "id", F_ID, false } } },
	{ "respond", ROLE_WORKER, DIALECT_ACTION, h_response,
	  { { "body", F_ANY, true }, { "id", F_ID, false } } },
	{ "partial", ROLE_WORKER, DIALECT_UNSET, h_partial,
	  { { "body", F_ANY, true }, { "id", F_ID, false } } },
	{ "pong", ROLE_WORKER, DIALECT_UNSET, h_pong, { { 0 } } },
	{ "ping", ROLE_MASTER | ROLE_WORKER, DIALECT_UNSET, h_ping, { { 0 } } },
	{ "status", ROLE_MASTER, DIALECT_UNSET, h_status, { { "id", F_ID, true } } },
	{ "stats", ROLE_MASTER, DIALECT_UNSET, h_stats, { { 0 } } },
	{ "cancel", ROLE_MASTER, DIALECT_UNSET, h_cancel, { { "id", F_ID, true } } },
	{ "subscribe", ROLE_MASTER | ROLE_WORKER, DIALECT_UNSET, h_subscribe,
	  { { "channel", F_STRING, true } } },
	{ "unsubscribe", ROLE_MASTER | ROLE_WORKER, DIALECT_UNSET, h_unsubscribe,
	  { { "channel", F_STRING, true } } },
	{ "publish", ROLE_MASTER | ROLE_WORKER, DIALECT_UNSET, h_publish,
	  { { "channel", F_STRING, true }, { "body", F_ANY, true } } },
};

static const char *
type_names(unsigned types)
{
	switch (types) {
	case F_STRING: return "a string";
	case F_INT:    return "an integer";
	case F_BOOL:   return "a boolean";
	case F_ID:     return "a string or an integer";
	default:       return "a JSON value";
	}
}

static bool
field_type_ok(const json_t *v, unsigned types)
{
	return (types & F_ANY) ||
	    ((types & F_STRING) && json_is_string(v)) ||
	    ((types & F_INT) && json_is_integer(v)) ||
	    ((types & F_BOOL) && json_is_boolean(v));
}

/*
 * msg_usable_id: the message's "id" if it is a valid job id.  Fills key
 * (the canonical job key) and idjson (the id as the master sent it).
 */
static bool
msg_usable_id(json_t *msg, char *key, size_t keylen, char *idjson, size_t idlen)
{
	json_t *id = json_object_get(msg, "id");

	if (json_is_integer(id)) {
		snprintf(key, keylen, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
		snprintf(idjson, idlen, "%s", key);
		return true;
	}
	if (json_is_string(id) &&
	    id_valid(json_string_value(id), json_string_length(id))) {
		size_t n = json_dumpb(id, idjson, idlen - 1, JSON_ENCODE_ANY);
		if (n == 0 || n >= idlen - 1)
			return false;
		idjson[n] = '\0';
		snprintf(key, keylen, "%s", json_string_value(id));
		return true;
	}
	return false;
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

/*
 * proto_handle: one whole frame from c.  Bad input gets an error frame and
 * leaves the connection usable.
 */
void
proto_handle(struct conn *c, const char *payload, size_t len)
{
	char key[ID_MAX + 1], idjson[6 * ID_MAX + 3];
	const struct msg_def *def;
	struct msg_ctx ctx = { 0 };
	json_error_t jerr;
	const char *kind, *name;
	json_t *msg, *v;
	bool other_role;
	size_t i;

	if (len == 0) {
		c->srv->bad_frames++;
		conn_send_error(c, "invalid_json", NULL, "empty frame");
		return;
	}
	msg = json_loadb(payload, len, JSON_DECODE_ANY, &jerr);
	if (msg == NULL) {
		c->srv->bad_frames++;
		conn_send_error(c, "invalid_json", NULL, "%s at byte %d",
		    jerr.text, jerr.position);
		return;
	}
	if (!json_is_object(msg)) {
		c->srv->bad_frames++;
		conn_send_error(c, "invalid_json", NULL, "a message must be a JSON object");
		goto out;
	}
	if (msg_usable_id(msg, key, sizeof key, idjson, sizeof idjson)) {
		ctx.key = key;
		ctx.idjson = idjson;
	}
	/* The later dialect names its messages "action"; the seed one "type". */
	kind = json_object_get(msg, "action") != NULL ? "action" : "type";
	ctx.dialect = kind[0] == 'a' ? DIALECT_ACTION : DIALECT_SEED;
	v = json_object_get(msg, kind);
	if (v == NULL) {
		conn_send_missing(c, "type", ctx.idjson);
		goto out;
	}
	if (!json_is_string(v)) {
		conn_send_error(c, "invalid_type", ctx.idjson, "\"%s\" must be a string", kind);
		goto out;
	}
	name = json_string_value(v);
	def = msg_lookup(name, ctx.dialect, c->role, &other_role);
	if (def == NULL) {
		if (other_role)
			conn_send_error(c, "unknown_type", ctx.idjson,
			    "\"%s\" is not valid on the %s port", name,
			    c->role == ROLE_MASTER ? "master" : "worker");
		else
			conn_send_error(c, "unknown_type", ctx.idjson,
			    "unknown message %s \"%s\"", kind, name);
		goto out;
	}
	for (i = 0; i < MAX_FIELDS && def->fields[i].name != NULL; i++) {
		const struct field *f = &def->fields[i];
		v = json_object_get(msg, f->name);
		if (v == NULL) {
			if (f->required) {
				conn_send_missing(c, f->name, ctx.idjson);
				goto out;
			}
			continue;
		}
		if (!field_type_ok(v, f->types)) {
			conn_send_error(c, "invalid_type", ctx.idjson,
			    "\"%s\" must be %s", f->name, type_names(f->types));
			goto out;
		}
	}
	def->handle(c, msg, &ctx);
out:
	json_decref(msg);
}

/* ------------------------------------------------------------ small bits */

static void
send_ok(struct conn *c, const char *idjson)
{
	size_t start = conn_frame_begin(c);

	buf_append_str(&c->out, "{\"ok\":true");
	if (idjson != NULL) {
		buf_append_str(&c->out, ",\"id\":");
		buf_append_str(&c->out, idjson);
	}
	buf_append(&c->out, "}", 1);
	conn_frame_end(c, start);
}

/*
 * body_text: v as compact JSON text, in a buffer reused by every message
 * (the broker copies what it keeps).  A huge one is not kept warm.
 */
static struct buf *
body_text(json_t *v)
{
	static struct buf scratch;

	if (scratch.cap > (1u << 20))
		buf_free(&scratch);
	scratch.off = scratch.len = 0;
	json_dump_callback(v, buf_json_cb, &scratch, JSON_COMPACT | JSON_ENCODE_ANY);
	return &scratch;
}

static bool
id_check(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	if (ctx->key != NULL)
		return true;
	if (json_is_string(json_object_get(msg, "id")))
		conn_send_error(c, "invalid_type", NULL,
		    "\"id\" must be 1 to %d bytes, and at most %d as a file name",
		    ID_MAX, ID_MAX);
	else
		conn_send_error(c, "invalid_type", NULL,
		    "\"id\" must be a string or an integer");
	return false;
}

static bool
type_check(struct conn *c, json_t *v, const char *field, const struct msg_ctx *ctx)
{
	if (type_name_valid(json_string_value(v), json_string_length(v)))
		return true;
	conn_send_error(c, "invalid_type", ctx->idjson,
	    "\"%s\" must be 1 to %d bytes, without '/' or control characters, "
	    "and not . or ..", field, ID_MAX);
	return false;
}

/* -------------------------------------------------------------- masters */

static void
master_submit(struct conn *c, json_t *msg, const struct msg_ctx *ctx,
    const char *type_field)
{
	struct submit_req req = { 0 };
	json_t *type = json_object_get(msg, type_field), *v;
	struct buf *body;
	int rc;

	if (!id_check(c, msg, ctx) || !type_check(c, type, type_field, ctx))
		return;
	if ((v = json_object_get(msg, "timeout")) != NULL && json_integer_value(v) < 0) {
		conn_send_error(c, "invalid_type", ctx->idjson,
		    "\"timeout\" must be a positive number of milliseconds");
		return;
	}
	if ((v = json_object_get(msg, "worker")) != NULL &&
	    !id_valid(json_string_value(v), json_string_length(v))) {
		conn_send_error(c, "invalid_type", ctx->idjson,
		    "\"worker\" must be a name of 1 to %d bytes", ID_MAX);
		return;
	}
	if (c->dialect == DIALECT_UNSET)
		c->dialect = ctx->dialect;
	body = body_text(json_object_get(msg, "body"));
	req.type = json_string_value(type);
	req.key = ctx->key;
	req.idjson = ctx->idjson;
	req.body = buf_head(body);
	req.body_len = buf_used(body);
	req.priority = json_integer_value(json_object_get(msg, "priority"));
	req.timeout_ms = json_integer_value(json_object_get(msg, "timeout"));
	req.detach = json_is_true(json_object_get(msg, "detach"));
	req.stream = json_is_true(json_object_get(msg, "stream"));
	req.notify = json_is_true(json_object_get(msg, "notify"));
	req.target = v != NULL ? json_string_value(v) : NULL;
	req.master = c;
	if (broker_find(&c->srv->broker, ctx->key) != NULL &&
	    !JOB_FINISHED(broker_find(&c->srv->broker, ctx->key))) {
		conn_send_error(c, "id_exists", ctx->idjson,
		    "id %s is in use by an unfinished job", ctx->idjson);
		return;
	}
	if (ctx->dialect == DIALECT_ACTION)
		send_ok(c, ctx->idjson);
	rc = broker_submit(&c->srv->broker, &req, NULL);
	(void)rc;  /* id_exists was ruled out above */
}

static void
h_submit_seed(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	master_submit(c, msg, ctx, "job_type");
}

static void
h_submit_action(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	master_submit(c, msg, ctx, "type");
}

static void
h_ping(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	(void)msg;
	if (ctx->dialect == DIALECT_ACTION)
		conn_send_raw(c, "{\"action\":\"pong\"}", 17);
	else
		conn_send_raw(c, "{\"type\":\"pong\"}", 15);
}

static void
h_status(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	struct job *j;

	if (!id_check(c, msg, ctx))
		return;
	if ((j = broker_find(&c->srv->broker, ctx->key)) == NULL) {
		conn_send_error(c, "unknown_id", ctx->idjson, "no job has id %s", ctx->idjson);
		return;
	}
	conn_send_json(c, job_info(j));
}

static void
h_stats(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	(void)msg;
	(void)ctx;
	conn_send_json(c, json_pack("{s:o}", "stats", server_stats(c->srv)));
}

/* h_cancel: end the job; the canceller hears the ending too. */
static void
h_cancel(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	struct job *j;
	struct conn *master;

	if (!id_check(c, msg, ctx))
		return;
	j = broker_find(&c->srv->broker, ctx->key);
	if (j == NULL || JOB_FINISHED(j)) {
		conn_send_error(c, "unknown_id", ctx->idjson,
		    "no unfinished job has id %s", ctx->idjson);
		return;
	}
	master = j->master;
	job_ref(j);
	broker_end(&c->srv->broker, j, JOB_CANCELLED);
	if (master != c)
		conn_send_error(c, "cancelled", j->idjson, "%s", j->key);
	job_unref(&c->srv->broker, j);
}

/* -------------------------------------------------------------- workers */

static void heartbeat_cb(struct ev_loop *, ev_timer *, int);

static void
worker_join(struct conn *c, json_t *msg, const struct msg_ctx *ctx,
    const char *type_field)
{
	json_t *type = json_object_get(msg, type_field);
	json_t *name = json_object_get(msg, "worker");
	json_t *cap = json_object_get(msg, "capacity");
	json_t *hb = json_object_get(msg, "heartbeat");
	json_t *cancel = json_object_get(msg, "cancel");
	struct broker *b = &c->srv->broker;

	if (!type_check(c, type, type_field, ctx))
		return;
	if (name != NULL && !id_valid(json_string_value(name), json_string_length(name))) {
		conn_send_error(c, "invalid_type", NULL,
		    "\"worker\" must be a name of 1 to %d bytes", ID_MAX);
		return;
	}
	if (cap != NULL && (json_integer_value(cap) < 1 ||
	    json_integer_value(cap) > CAPACITY_MAX)) {
		conn_send_error(c, "invalid_type", NULL,
		    "\"capacity\" must be from 1 to %d", CAPACITY_MAX);
		return;
	}
	if (hb != NULL && json_integer_value(hb) != 0 &&
	    json_integer_value(hb) < HEARTBEAT_MIN_MS) {
		conn_send_error(c, "invalid_type", NULL,
		    "\"heartbeat\" must be 0 or at least %d ms", HEARTBEAT_MIN_MS);
		return;
	}
	if (c->dialect == DIALECT_UNSET)
		c->dialect = ctx->dialect;
	if (name != NULL) {
		free(c->name);
		c->name = xstrdup(json_string_value(name));
	}
	if (cap != NULL)
		c->capacity = (unsigned)json_integer_value(cap);
	if (cancel != NULL)
		c->wants_cancel = json_is_true(cancel);
	if (hb != NULL) {
		ev_timer_stop(c->srv->loop, &c->heartbeat);
		c->hb_interval = json_integer_value(hb) / 1000.0;
		if (c->hb_interval > 0) {
			ev_timer_init(&c->heartbeat, heartbeat_cb, c->hb_interval,
			    c->hb_interval);
			c->heartbeat.data = c;
			c->last_heard = ev_now(c->srv->loop);
			ev_timer_start(c->srv->loop, &c->heartbeat);
		}
	}
	log_info("worker %s joined %s (capacity %u)", conn_worker_name(c),
	    json_string_value(type), c->capacity);
	if (ctx->dialect == DIALECT_ACTION)
		send_ok(c, NULL);
	broker_worker_join(b, c, broker_type(b, json_string_value(type), true));
}

static void
h_join_seed(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	worker_join(c, msg, ctx, "job_type");
}

static void
h_join_action(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	worker_join(c, msg, ctx, "type");
}

/*
 * worker_job_for: the running job a response or partial is about.  NULL
 * with *silent set when it is a late answer to a job that already ended.
 */
static struct job *
worker_job_for(struct conn *c, const struct msg_ctx *ctx, bool final, bool *silent)
{
	struct job *j, *old;

	*silent = false;
	if (ctx->key != NULL) {
		TAILQ_FOREACH(j, &c->running, worker_entry)
			if (strcmp(j->key, ctx->key) == 0)
				return j;
		old = broker_find(&c->srv->broker, ctx->key);
		if (old != NULL && JOB_FINISHED(old)) {
			*silent = true;
			if (final && c->stale > 0)
				c->stale--;
			return NULL;
		}
		conn_send_error(c, "unknown_id", ctx->idjson,
		    "no job with id %s is running on this connection", ctx->idjson);
		return NULL;
	}
	if (c->nrunning == 1)
		return TAILQ_FIRST(&c->running);
	if (c->nrunning > 1) {
		conn_send_missing(c, "id", NULL);
		return NULL;
	}
	if (c->stale > 0) {
		*silent = true;
		if (final)
			c->stale--;
		return NULL;
	}
	conn_send_error(c, "invalid_state", NULL, "no job is running on this connection");
	return NULL;
}

static void
h_response(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	struct job *j;
	struct buf *body;
	bool silent;

	j = worker_job_for(c, ctx, true, &silent);
	if (silent) {
		log_debug("%s: late response dropped", c->peer);
		if (ctx->dialect == DIALECT_ACTION)
			send_ok(c, NULL);
		broker_worker_ready(&c->srv->broker, c);
		return;
	}
	if (j == NULL)
		return;
	body = body_text(json_object_get(msg, "body"));
	if (ctx->dialect == DIALECT_ACTION)
		send_ok(c, NULL);
	broker_complete(&c->srv->broker, j, buf_head(body), buf_used(body));
}

static void
h_partial(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	struct job *j;
	struct buf *body;
	bool silent;

	if ((j = worker_job_for(c, ctx, false, &silent)) == NULL)
		return;
	body = body_text(json_object_get(msg, "body"));
	broker_partial(&c->srv->broker, j, buf_head(body), buf_used(body));
}

static void
h_pong(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	(void)c;
	(void)msg;
	(void)ctx;  /* reading it refreshed c->last_heard */
}

/* heartbeat_cb: ping a quiet worker; drop one silent for 3 intervals. */
static void
heartbeat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	double quiet = ev_now(loop) - c->last_heard;

	(void)revents;
	if (quiet >= 3 * c->hb_interval - 0.001) {
		log_warn("worker %s silent for %.1fs (3 heartbeats): dropping it",
		    conn_worker_name(c), quiet);
		conn_close(c, "heartbeat lost");
		return;
	}
	if (quiet >= c->hb_interval - 0.001)
		proto_send_ping(c);
}

/* proto_worker_gone: the worker's connection closed. */
void
proto_worker_gone(struct conn *c)
{
	ev_timer_stop(c->srv->loop, &c->heartbeat);
	broker_worker_lost(&c->srv->broker, c);
}

/* ------------------------------------------------------------- channels */

static void
h_subscribe(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	json_t *ch = json_object_get(msg, "channel");

	if (!type_check(c, ch, "channel", ctx))
		return;
	chan_subscribe(c->srv, c, json_string_value(ch));
}

static void
h_unsubscribe(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	json_t *ch = json_object_get(msg, "channel");

	if (!type_check(c, ch, "channel", ctx))
		return;
	chan_unsubscribe(c->srv, c, json_string_value(ch));
}

static void
h_publish(struct conn *c, json_t *msg, const struct msg_ctx *ctx)
{
	json_t *ch = json_object_get(msg, "channel");
	struct buf *body;

	if (!type_check(c, ch, "channel", ctx))
		return;
	body = body_text(json_object_get(msg, "body"));
	chan_publish(c->srv, json_string_value(ch), buf_head(body), buf_used(body));
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

void
proto_send_job(struct conn *w, struct job *j)
{
	size_t start = conn_frame_begin(w);

	if (w->dialect == DIALECT_ACTION) {
		out_str(w, "{\"action\":\"job\",\"id\":");
		out_str(w, j->idjson);
		out_str(w, ",\"type\":");
		out_json_string(w, j->type->name);
	} else {
		out_str(w, "{\"type\":\"job\",\"id\":");
		out_str(w, j->idjson);
	}
	out_str(w, ",\"body\":");
	buf_append(&w->out, j->body, j->body_len);
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

/* proto_send_result: the job's one ending frame to its master. */
void
proto_send_result(struct job *j)
{
	struct conn *m = j->master;
	size_t start;

	if (j->state != JOB_DONE) {
		conn_send_error(m, ending_code(j->state), j->idjson, "%s", j->key);
		return;
	}
	start = conn_frame_begin(m);
	out_str(m, "{\"id\":");
	out_str(m, j->idjson);
	out_str(m, ",\"body\":");
	buf_append(&m->out, j->result, j->result_len);
	out_str(m, "}");
	conn_frame_end(m, start);
}

void
proto_send_partial(struct job *j, const char *body, size_t len)
{
	struct conn *m = j->master;
	size_t start = conn_frame_begin(m);

	out_str(m, "{\"id\":");
	out_str(m, j->idjson);
	out_str(m, ",\"body\":");
	buf_append(&m->out, body, len);
	out_str(m, ",\"partial\":true}");
	conn_frame_end(m, start);
}

void
proto_send_running(struct job *j)
{
	struct conn *m = j->master;
	size_t start = conn_frame_begin(m);

	out_str(m, "{\"id\":");
	out_str(m, j->idjson);
	out_str(m, ",\"status\":\"running\",\"worker\":");
	out_json_string(m, j->worker_name);
	out_str(m, "}");
	conn_frame_end(m, start);
}

void
proto_send_cancel(struct conn *w, struct job *j)
{
	size_t start = conn_frame_begin(w);

	out_str(w, w->dialect == DIALECT_ACTION ? "{\"action\":\"cancel\",\"id\":" :
	    "{\"type\":\"cancel\",\"id\":");
	out_str(w, j->idjson);
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
