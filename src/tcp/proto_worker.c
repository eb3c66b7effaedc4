/*
 * proto_worker.c — the worker port's messages: join, responses, partial
 * results, failures, and the heartbeat that drops a silent worker.
 */
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "tcp/tcp.h"

#define CAPACITY_MAX 4096
#define HEARTBEAT_MIN_MS 10

/* -------------------------------------------------------------- workers */

static void heartbeat_cb(struct ev_loop *, ev_timer *, int);

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
void
h_join(struct conn *c, const struct msg_ctx *ctx)
{
	enum msg_key type_key = ctx->dialect == DIALECT_ACTION ? MK_TYPE : MK_JOB_TYPE;
	char type[ID_MAX + 1], name[ID_MAX + 1];
	struct broker *b = c->srv->broker;

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
	switch (broker_worker_answer(c->srv->broker, c->worker, ctx->key, final, &j)) {
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
		broker_job_log(c->srv->broker, j, NULL, 0);
		return;
	}
	text = xmalloc(f->len + 1);   /* decoding never lengthens */
	if ((n = msg_unescape(f->val, f->len, text, f->len + 1)) >= 0)
		broker_job_log(c->srv->broker, j, text, (size_t)n);
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
		broker_worker_ready(c->srv->broker, c->worker);
		return;
	}
	if (j == NULL)
		return;
	worker_log(c, ctx, j);
	body = field_json(ctx, MK_BODY, &len);
	if (c->dialect == DIALECT_ACTION)
		send_ok(c, NULL);
	if (fail)
		(void)broker_fail(c->srv->broker, j, body, len);
	else {
		struct blob *held = conn_in_adopt(c, body, len);  /* a large
		                                   result stays where it came */

		broker_complete(c->srv->broker, j, body, len, held);
		blob_unref(held);
	}
}

void
h_response(struct conn *c, const struct msg_ctx *ctx)
{
	worker_ends(c, ctx, false);
}

void
h_partial(struct conn *c, const struct msg_ctx *ctx)
{
	const char *body;
	size_t len;
	struct job *j;
	bool late;

	if ((j = worker_job_for(c, ctx, false, &late)) == NULL)
		return;
	body = field_json(ctx, MK_BODY, &len);
	broker_partial(c->srv->broker, j, body, len);
}

/* h_fail: the job failed; body is the error.  Retried or dead
 * as the broker decides; the slot is free at once. */
void
h_fail(struct conn *c, const struct msg_ctx *ctx)
{
	worker_ends(c, ctx, true);
}

void
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
	broker_worker_gone(c->srv->broker, c->worker);
}

