/*
 * proto_auth.c — a connection's authentication (--auth): the "auth"
 * message, the gate before the message table, the time to authenticate
 * and the count of connections that have not yet.
 */
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "tcp/tcp.h"

static msg_handler h_auth;

/* "auth" exists only with --auth: without it, it stays an unknown type. */
static const struct msg_def auth_def = {
	"auth", ROLE_MASTER | ROLE_WORKER, DIALECT_UNSET, h_auth,
	{ { MK_TOKEN, F_STRING, true }, END }
};

/* ----------------------------------------------------------------- auth */

#define AUTH_FAILURES_MAX 3
#define AUTH_TOKEN_MAX 1024

/* unauth_unlist: c counts no more among unauthenticated connections
 * (it authenticated, or is dropped or closed); its clock stops. */
void
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
		broker_worker_options(c->srv->broker, c->worker, name, 0, -1);
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
bool
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
	    strcmp(name, "schedule") == 0 || strcmp(name, "unschedule") == 0 ||
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

