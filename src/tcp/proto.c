/*
 * proto.c — the TCP face: the Gloom protocol's message table, generic
 * checks and handlers, and the frames sent as the broker's events come
 * (proto_listener: a job frame on dispatch, endings to masters, cancels).
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

/* Field types, as a mask. */
#define F_STRING 0x01
#define F_INT    0x02
#define F_BOOL   0x04
#define F_ANY    0x08
#define F_ARRAY  0x10
#define F_ID     (F_STRING | F_INT)

#define MAX_FIELDS 16
#define CAPACITY_MAX 4096
#define HEARTBEAT_MIN_MS 10
#define IDJSON_MAX (6 * ID_MAX + 2)  /* every byte a \u escape, and quotes */

struct field {
	enum msg_key key;
	unsigned     types;
	bool         required;
};

/* What a handler gets besides the connection. */
struct msg_ctx {
	const struct msg *m;
	enum dialect dialect;   /* of this message */
	const char  *idjson;    /* its usable id as JSON text, or NULL */
	const char  *key;       /* that id as a job key, or NULL */
};

typedef void msg_handler(struct conn *, const struct msg_ctx *);

struct msg_def {
	const char   *name;
	unsigned      roles;
	enum dialect  dialect;  /* DIALECT_UNSET: valid in both */
	msg_handler  *handle;
	struct field  fields[MAX_FIELDS];
};

static msg_handler h_submit, h_join, h_response, h_partial, h_pong, h_ping,
    h_status, h_stats, h_cancel, h_subscribe, h_unsubscribe, h_publish, h_wait,
    h_auth;
/* the job lifecycle */
static msg_handler h_fail, h_kick, h_pause, h_resume, h_configure;
static msg_handler h_list;

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
#define LIST_OPTIONS \
	{ MK_STATE, F_STRING, true }, { MK_LIMIT, F_INT, false }, \
	{ MK_CURSOR, F_STRING, false }
#define END { MK_COUNT, 0, false }

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
};

/* "auth" exists only with --auth: without it, it stays an unknown type. */
static const struct msg_def auth_def = {
	"auth", ROLE_MASTER | ROLE_WORKER, DIALECT_UNSET, h_auth,
	{ { MK_TOKEN, F_STRING, true }, END }
};

static bool auth_gate(struct conn *, const struct msg_ctx *, const char *name);
static bool may_see(const struct conn *, const struct job *);
static void unauth_unlist(struct conn *);

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

static const struct mfield *
field(const struct msg_ctx *ctx, enum msg_key k)
{
	const struct mfield *f = &ctx->m->f[k];

	return f->present ? f : NULL;
}

static int64_t
field_int(const struct msg_ctx *ctx, enum msg_key k)
{
	const struct mfield *f = field(ctx, k);
	int64_t v = 0;

	if (f != NULL)
		msg_int(f, &v);
	return v;
}

static bool
field_true(const struct msg_ctx *ctx, enum msg_key k)
{
	const struct mfield *f = field(ctx, k);

	return f != NULL && f->kind == JK_TRUE;
}

/*
 * field_name: a string field that must be a name (type, channel, worker):
 * 1 to ID_MAX bytes once decoded, into out[ID_MAX + 1].
 */
static bool
field_name(const struct msg_ctx *ctx, enum msg_key k, char *out, size_t *len)
{
	const struct mfield *f = field(ctx, k);

	return f != NULL && msg_string(f, out, ID_MAX + 1, len);
}

/* field_json: a field's compact JSON text (a body, usually a span of the frame). */
static const char *
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
static bool
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
	conn_frame_end_ack(c, start);
}

static bool
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
static bool
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
static const char *
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
static void
h_submit(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	char type[ID_MAX + 1], target[ID_MAX + 1];
	static char akeys[LIFE_AFTER_MAX][ID_MAX + 1];
	const char *after[LIFE_AFTER_MAX];
	struct submit_req req = { 0 };
	struct broker *b = &c->srv->broker;
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
	if (field(ctx, MK_AFTER) != NULL && !after_parse(c, ctx, &req, after, akeys))
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

static void
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
enum about { ABOUT_STATUS, ABOUT_CANCEL, ABOUT_WAIT };
static void do_status(struct conn *, const char *idjson, struct job *);
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
		    broker_store_reason(&c->srv->broker));
	else if (c != NULL)
		(q->what == ABOUT_STATUS ? do_status : q->what == ABOUT_CANCEL ?
		    do_cancel : do_wait)(c, q->idjson, j);
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
		struct job *j = broker_find(&c->srv->broker, ctx->key);

		(what == ABOUT_STATUS ? do_status : what == ABOUT_CANCEL ?
		    do_cancel : do_wait)(c, ctx->idjson, j);
		return;
	}
	q = xmalloc(sizeof *q + strlen(ctx->idjson) + 1);
	q->m = c->master;
	q->what = what;
	strcpy(q->idjson, ctx->idjson);
	broker_master_hold(q->m);
	broker_lookup(&c->srv->broker, ctx->key, about_found, q);
}

static void
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
static void
h_stats(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	char type[ID_MAX + 1];
	bool one = field(ctx, type_key) != NULL;

	if (one && !type_check(c, ctx, type_key, type))
		return;
	conn_send_json(c, json_pack("{s:o}", "stats",
	    broker_stats(&c->srv->broker, one ? type : NULL, STATS_TYPES_MAX)));
}

/* h_cancel: end the job; the canceller hears the ending too. */
static void
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
	broker_end(&c->srv->broker, j, JOB_CANCELLED);
	if (master != c->master)
		conn_send_error(c, "cancelled", job_idjson(j), "%s", j->key);
	job_unref(&c->srv->broker, j);
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
static void
h_list(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	struct broker *b = &c->srv->broker;
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
	struct jtype *t = broker_type(&c->srv->broker, name, false);

	if (t != NULL)
		conn_send_json(c, broker_type_settings(t));
	else   /* nothing set: the type went with its last setting */
		conn_send_json(c, json_pack("{s:s,s:b,s:i,s:i,s:i}", "job_type", name,
		    "paused", 0, "limit", 0, "retries", 0, "backoff", LIFE_BACKOFF_MS));
}

/* h_kick: {"kick","id"} queues one dead job again; {"kick","job_type"}
 * every dead job of a type.  Reply: {"kicked":N} with the id or type. */
static void
h_kick(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	struct broker *b = &c->srv->broker;
	char type[ID_MAX + 1];
	struct jtype *t;
	struct job *j;
	size_t n;

	if (field(ctx, MK_ID) != NULL) {
		if (!id_check(c, ctx))
			return;
		if ((j = broker_find(b, ctx->key)) == NULL || !may_see(c, j)) {
			conn_send_error(c, "unknown_id", ctx->idjson, "no job has id %s", ctx->idjson);
			return;
		}
		if (broker_kick(b, j) != BERR_OK) {
			conn_send_error(c, "invalid_state", ctx->idjson,
			    "job %s is %s, not dead", ctx->idjson, job_status(j));
			return;
		}
		conn_send_json(c, json_pack("{s:i,s:o}", "kicked", 1, "id",
		    json_loads(ctx->idjson, JSON_DECODE_ANY, NULL)));
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
	struct broker *b = &c->srv->broker;
	char type[ID_MAX + 1];
	struct jtype *t;

	if (!type_check(c, ctx, type_key, type))
		return;
	if ((t = broker_type(b, type, paused)) != NULL)
		broker_type_pause(b, t, paused);
	send_type_settings(c, type);
}

static void
h_pause(struct conn *c, const struct msg_ctx *ctx)
{
	pause_resume(c, ctx, true);
}

static void
h_resume(struct conn *c, const struct msg_ctx *ctx)
{
	pause_resume(c, ctx, false);
}

/* h_configure: a type's "limit", and the "retries" and "backoff" of its
 * jobs that do not say.  A value given out of range (negative too) is
 * refused, with its range, and nothing changes. */
static void
h_configure(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	struct broker *b = &c->srv->broker;
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
		conn_send_error(c, "invalid_type", NULL, "%s", b->err_detail);
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
 */
#define WAITS_MAX 100000

struct waiting {
	UT_hash_handle hh;
	uint64_t      *serials;
	size_t         n, cap;
	char           key[];
};

static struct waiting *waits;
static size_t nwaits;

static void
waiting_free(struct waiting *w)
{
	HASH_DEL(waits, w);
	nwaits -= w->n;
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
static void
wake_waiters(struct server *srv, struct job *j)
{
	struct waiting *w;
	struct conn *c;

	HASH_FIND_STR(waits, j->key, w);
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
	waiting_free(w);
}

/*
 * h_wait: the job's ending frame, exactly as its submitter gets it, when
 * it ends, or now if it has; unknown_id if there is no such job.
 */
static void
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
	if (nwaits >= WAITS_MAX) {
		conn_send_error(c, "full", idjson, "too many waits (%d)", WAITS_MAX);
		return;
	}
	HASH_FIND_STR(waits, j->key, w);
	if (w == NULL) {
		len = strlen(j->key);
		w = xcalloc(1, sizeof *w + len + 1);
		memcpy(w->key, j->key, len + 1);
		HASH_ADD(hh, waits, key[0], len, w);
	}
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 2;
		w->serials = xrealloc(w->serials, w->cap * sizeof *w->serials);
	}
	w->serials[w->n++] = c->serial;
	nwaits++;
}

/* ----------------------------------------------------------------- auth */

#define AUTH_FAILURES_MAX 3
#define AUTH_TOKEN_MAX 1024

/* unauth_unlist: c counts no more among unauthenticated connections
 * (it authenticated, or is dropped or closed); its clock stops. */
static void
unauth_unlist(struct conn *c)
{
	ev_timer_stop(c->srv->loop, &c->auth_timer);
	if (!c->unauth_listed)
		return;
	TAILQ_REMOVE(&c->srv->unauthed, c, unauth_entry);
	c->unauth_listed = false;
	c->srv->nunauthed--;
}

/* proto_auth_as: c is name, with roles, from now on (a token, or a
 * client certificate's subject). */
void
proto_auth_as(struct conn *c, const char *name, unsigned roles)
{
	c->authed = true;
	unauth_unlist(c);
	snprintf(c->auth_name, sizeof c->auth_name, "%s", name);
	c->auth_roles = roles;
	/* a worker is known by its token's name (a join's "worker" may name
	 * it again), its address listed beside */
	if (c->worker != NULL && !worker_named(c->worker))
		broker_worker_options(&c->srv->broker, c->worker, name, 0, -1);
}

/*
 * h_auth: {"type":"auth","token":T} (or "action").  A right token makes
 * the connection its name's, answered {"ok":true,"name":NAME}; a wrong
 * one gets auth_failed, and the AUTH_FAILURES_MAXth closes the
 * connection.  The log names the peer, never the token.  A connection
 * that is someone already stays so (no switching names mid-connection:
 * its jobs are that name's).
 */
static void
h_auth(struct conn *c, const struct msg_ctx *ctx)
{
	char token[AUTH_TOKEN_MAX + 1];
	struct auth_id id;
	size_t len = 0;
	bool ok;
	json_t *reply;

	ok = msg_string(field(ctx, MK_TOKEN), token, sizeof token, &len) &&
	    auth_check(token, len, &id);
	explicit_bzero(token, sizeof token);
	if (!ok) {
		c->srv->auth_failures++;
		c->auth_failures++;
		log_warn("%s: authentication failed (%u of %d)", c->peer,
		    c->auth_failures, AUTH_FAILURES_MAX);
		if (c->auth_failures >= AUTH_FAILURES_MAX) {
			unauth_unlist(c);
			conn_drop(c, false, "authentication failed", "auth_failed",
			    "wrong token, %d times", AUTH_FAILURES_MAX);
		} else
			conn_send_error(c, "auth_failed", NULL, "wrong token");
		return;
	}
	if (c->authed && strcmp(c->auth_name, id.name) != 0) {
		conn_send_error(c, "invalid_state", NULL,
		    "already authenticated as %s", c->auth_name);
		return;
	}
	proto_auth_as(c, id.name, id.roles);
	log_info("%s: authenticated as %s", c->peer, id.name);
	reply = json_pack("{s:b, s:s}", "ok", 1, "name", id.name);
	conn_send_json(c, reply);
}

/*
 * auth_gate: with --auth, before the message table: "auth" itself, then
 * auth_required until the connection has authenticated, then the roles:
 * submitting needs master (or admin), joining needs worker (or admin).
 * Everything else needs any role; status, wait and cancel then see only
 * the caller's jobs (may_see).  False: answered here.
 */
static bool
auth_gate(struct conn *c, const struct msg_ctx *ctx, const char *name)
{
	unsigned need = 0;

	if (strcmp(name, "auth") == 0) {
		if (msg_check_fields(c, &auth_def, ctx))
			h_auth(c, ctx);
		return false;
	}
	if (!c->authed) {
		conn_send_error(c, "auth_required", ctx->idjson,
		    "authenticate first: {\"%s\":\"auth\",\"token\":TOKEN}",
		    ctx->dialect == DIALECT_ACTION ? "action" : "type");
		return false;
	}
	if (c->role == ROLE_MASTER && (strcmp(name, "job") == 0 ||
	    strcmp(name, "submit") == 0))
		need = AUTH_MASTER;
	else if (c->role == ROLE_WORKER && strcmp(name, "join") == 0)
		need = AUTH_WORKER;
	else if (c->role == ROLE_MASTER && (strcmp(name, "pause") == 0 ||
	    strcmp(name, "resume") == 0 || strcmp(name, "configure") == 0 ||
	    (strcmp(name, "kick") == 0 && ctx->m->f[MK_ID].present == false)))
		need = AUTH_ADMIN;   /* the job lifecycle: a whole type's business */
	if (need != 0 && !(c->auth_roles & (need | AUTH_ADMIN))) {
		conn_send_error(c, "forbidden", ctx->idjson,
		    "%s may not %s (its token has no %s role)", c->auth_name,
		    need == AUTH_MASTER ? "submit" : need == AUTH_WORKER ? "join" : name,
		    need == AUTH_MASTER ? "master" : need == AUTH_WORKER ? "worker" : "admin");
		return false;
	}
	return true;
}

static void
auth_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;

	(void)loop;
	(void)revents;
	c->srv->dropped_unauthed++;
	unauth_unlist(c);
	conn_drop(c, false, "authentication timeout", "auth_required",
	    "not authenticated within %g s (--auth-timeout)", c->srv->opt.auth_timeout);
}

/* proto_unauth_shed: over --max-unauth: drop the oldest connection that
 * has not authenticated yet. */
void
proto_unauth_shed(struct server *srv)
{
	struct conn *c = TAILQ_FIRST(&srv->unauthed);

	if (c == NULL)
		return;
	srv->dropped_unauthed++;
	unauth_unlist(c);
	conn_drop(c, false, "over --max-unauth", "full",
	    "too many connections not yet authenticated (--max-unauth): "
	    "the oldest goes");
}

/* proto_conn_new: a new connection; with --auth, its time to
 * authenticate starts (--auth-timeout). */
void
proto_conn_new(struct conn *c)
{
	ev_init(&c->auth_timer, auth_timeout_cb);
	c->auth_timer.data = c;
	if (!auth_enabled())
		return;
	c->srv->nunauthed++;
	c->unauth_listed = true;
	TAILQ_INSERT_TAIL(&c->srv->unauthed, c, unauth_entry);
	if (c->srv->opt.auth_timeout > 0) {
		ev_timer_set(&c->auth_timer, c->srv->opt.auth_timeout, 0.);
		ev_timer_start(c->srv->loop, &c->auth_timer);
	}
}

/* proto_conn_closed: the connection is closed: it counts no more. */
void
proto_conn_closed(struct conn *c)
{
	unauth_unlist(c);
}

/* -------------------------------------------------------------- workers */

static void heartbeat_cb(struct ev_loop *, ev_timer *, int);
static void proto_send_ping(struct conn *);

/* join_check: the join's options, before any of them takes effect. */
static bool
join_check(struct conn *c, const struct msg_ctx *ctx, char *name)
{
	int64_t cap = field_int(ctx, MK_CAPACITY), hb = field_int(ctx, MK_HEARTBEAT);
	size_t len;

	if (field(ctx, MK_WORKER) != NULL &&
	    (!field_name(ctx, MK_WORKER, name, &len) || !id_valid(name, len))) {
		conn_send_error(c, "invalid_type", NULL,
		    "\"worker\" must be a name of 1 to %d bytes", ID_MAX);
		return false;
	}
	if (field(ctx, MK_CAPACITY) != NULL && (cap < 1 || cap > CAPACITY_MAX)) {
		conn_send_error(c, "invalid_type", NULL,
		    "\"capacity\" must be from 1 to %d", CAPACITY_MAX);
		return false;
	}
	if (hb != 0 && (hb < HEARTBEAT_MIN_MS || hb > 86400000)) {
		conn_send_error(c, "invalid_type", NULL,
		    "\"heartbeat\" must be 0 or %d to 86400000 ms", HEARTBEAT_MIN_MS);
		return false;
	}
	return true;
}

static void
worker_set_heartbeat(struct conn *c, int64_t ms)
{
	ev_timer_stop(c->srv->loop, &c->heartbeat);
	c->hb_interval = ms / 1000.0;
	if (c->hb_interval > 0) {
		ev_init(&c->heartbeat, heartbeat_cb);
		c->heartbeat.repeat = c->hb_interval;
		c->heartbeat.data = c;
		c->last_heard = ev_now(c->srv->loop);
		ev_timer_again(c->srv->loop, &c->heartbeat);
	}
}

/* h_join: "join" in either dialect; joining again changes type or options. */
static void
h_join(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	char type[ID_MAX + 1], name[ID_MAX + 1];
	struct broker *b = &c->srv->broker;

	if (!type_check(c, ctx, type_key, type) || !join_check(c, ctx, name))
		return;
	if (c->dialect == DIALECT_UNSET)
		c->dialect = ctx->dialect;
	broker_worker_options(b, c->worker,
	    field(ctx, MK_WORKER) != NULL ? name : NULL,
	    (unsigned)field_int(ctx, MK_CAPACITY),
	    field(ctx, MK_CANCEL) != NULL ? field_true(ctx, MK_CANCEL) : -1);
	if (field(ctx, MK_HEARTBEAT) != NULL)
		worker_set_heartbeat(c, field_int(ctx, MK_HEARTBEAT));
	log_info("worker %s joined %s (capacity %u)", c->worker->name, type,
	    c->worker->capacity);
	if (c->dialect == DIALECT_ACTION)
		send_ok(c, NULL);
	broker_worker_join(b, c->worker, broker_type(b, type, true));
}

/*
 * worker_job_for: the running job a response or partial is about, from
 * broker_worker_answer.  NULL with *late set when it is a late answer to a
 * job that ended meanwhile (dropped quietly); NULL after an error frame
 * otherwise.
 */
static struct job *
worker_job_for(struct conn *c, const struct msg_ctx *ctx, bool final, bool *late)
{
	struct job *j;

	*late = false;
	switch (broker_worker_answer(&c->srv->broker, c->worker, ctx->key, final, &j)) {
	case ANSWER_JOB:
		return j;
	case ANSWER_LATE:
		*late = true;
		return NULL;
	case ANSWER_UNKNOWN_ID:
		conn_send_error(c, "unknown_id", ctx->idjson,
		    "no job with id %s is running on this connection", ctx->idjson);
		return NULL;
	case ANSWER_NEED_ID:
		conn_send_missing(c, "id", NULL);
		return NULL;
	case ANSWER_NONE:
		break;
	}
	conn_send_error(c, "invalid_state", NULL, "no job is running on this connection");
	return NULL;
}

/*
 * worker_log: a response's or failure's "log" (what the command printed),
 * decoded, kept with the job: only its last JOB_LOG_MAX bytes.  An answer
 * without one leaves the job none; one that does not decode is ignored
 * rather than failing the answer.
 */
static void
worker_log(struct conn *c, const struct msg_ctx *ctx, struct job *j)
{
	const struct mfield *f = field(ctx, MK_LOG);
	char *text;
	ssize_t n;

	if (f == NULL || f->kind != JK_STRING) {
		broker_job_log(&c->srv->broker, j, NULL, 0);
		return;
	}
	text = xmalloc(f->len + 1);   /* decoding never lengthens */
	if ((n = msg_unescape(f->val, f->len, text, f->len + 1)) >= 0)
		broker_job_log(&c->srv->broker, j, text, (size_t)n);
	else
		log_debug("%s: a log that does not decode ignored", c->peer);
	free(text);
}

/*
 * worker_ends: a worker's final word on its job, a response or a failure
 * report (what names it in the log): answered ok in the later dialect,
 * then handed to broker_fail (fail) or broker_complete with the body.  A
 * word on a job that ended meanwhile is dropped, freeing the slot.
 */
static void
worker_ends(struct conn *c, const struct msg_ctx *ctx, bool fail)
{
	const char *body;
	size_t len;
	struct job *j;
	bool late;

	j = worker_job_for(c, ctx, true, &late);
	if (late) {
		log_debug("%s: late %s dropped", c->peer,
		    fail ? "failure report" : "response");
		if (c->dialect == DIALECT_ACTION)
			send_ok(c, NULL);
		broker_worker_ready(&c->srv->broker, c->worker);
		return;
	}
	if (j == NULL)
		return;
	worker_log(c, ctx, j);
	body = field_json(ctx, MK_BODY, &len);
	if (c->dialect == DIALECT_ACTION)
		send_ok(c, NULL);
	if (fail)
		(void)broker_fail(&c->srv->broker, j, body, len);
	else {
		struct blob *held = conn_in_adopt(c, body, len);  /* a large
		                                   result stays where it came */

		broker_complete(&c->srv->broker, j, body, len, held);
		blob_unref(held);
	}
}

static void
h_response(struct conn *c, const struct msg_ctx *ctx)
{
	worker_ends(c, ctx, false);
}

static void
h_partial(struct conn *c, const struct msg_ctx *ctx)
{
	const char *body;
	size_t len;
	struct job *j;
	bool late;

	if ((j = worker_job_for(c, ctx, false, &late)) == NULL)
		return;
	body = field_json(ctx, MK_BODY, &len);
	broker_partial(&c->srv->broker, j, body, len);
}

/* h_fail: the job failed; body is the error.  Retried or dead
 * as the broker decides; the slot is free at once. */
static void
h_fail(struct conn *c, const struct msg_ctx *ctx)
{
	worker_ends(c, ctx, true);
}

static void
h_pong(struct conn *c, const struct msg_ctx *ctx)
{
	(void)c;
	(void)ctx;  /* reading it refreshed c->last_heard */
}

/*
 * heartbeat_cb: ping a worker silent for an interval (again each interval
 * it stays silent) and drop it once silent for 3.  The timer is re-armed
 * for the next of those two moments, counted from the last whole frame
 * heard (c->last_heard, set by conn.c per frame: bytes of an unfinished
 * frame do not count, so a peer dribbling bytes stays silent).
 */
static void
heartbeat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	double i = c->hb_interval, now = ev_now(loop), ping_at, next;

	(void)revents;
	if (now - c->last_heard >= 3 * i - 0.001) {
		log_warn("worker %s silent for %.1fs (3 heartbeats): dropping it",
		    c->worker->name, now - c->last_heard);
		conn_close(c, "heartbeat lost");
		return;
	}
	ping_at = (c->last_ping > c->last_heard ? c->last_ping : c->last_heard) + i;
	if (now >= ping_at - 0.001) {
		proto_send_ping(c);
		c->last_ping = now;
		ping_at = now + i;
	}
	next = c->last_heard + 3 * i;
	if (ping_at < next)
		next = ping_at;
	w->repeat = next - now > 0.001 ? next - now : 0.001;
	ev_timer_again(loop, w);
}

/* proto_worker_gone: the worker's connection closed (or was dropped):
 * its heartbeat stops and the core takes back its slots and jobs. */
void
proto_worker_gone(struct conn *c)
{
	ev_timer_stop(c->srv->loop, &c->heartbeat);
	broker_worker_gone(&c->srv->broker, c->worker);
}

/* ------------------------------------------------------------- channels */

static void
h_subscribe(struct conn *c, const struct msg_ctx *ctx)
{
	char ch[ID_MAX + 1];

	if (type_check(c, ctx, MK_CHANNEL, ch))
		chan_subscribe(&c->srv->broker, &c->chp, ch);
}

static void
h_unsubscribe(struct conn *c, const struct msg_ctx *ctx)
{
	char ch[ID_MAX + 1];

	if (type_check(c, ctx, MK_CHANNEL, ch))
		chan_unsubscribe(&c->srv->broker, &c->chp, ch);
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
	if (chan_publish(&c->srv->broker, ch, body, len) == SIZE_MAX)   /* Redis is away */
		conn_send_error(c, "unavailable", ctx->idjson, "%s",
		    broker_store_reason(&c->srv->broker));
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

static void
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
	if (waits != NULL)
		wake_waiters(ctx, j);
}

/* on_forgotten: a job that goes (restored finished, say) takes its waits. */
static void
on_forgotten(void *ctx, struct job *j)
{
	struct waiting *w;

	(void)ctx;
	HASH_FIND_STR(waits, j->key, w);
	if (w != NULL)
		waiting_free(w);
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
		    broker_err_reason(&srv->broker, berr));
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
	broker_listen(&srv->broker, &mine);
}
