/*
 * redis_sentinel.c: cluster mode behind Redis Sentinel
 * (redis-sentinel://S1,S2,.../NAME) and the replicas' acknowledgement
 * (--redis-wait-replicas).
 *
 * Sentinel: before each (re)connection the sentinels are asked in turn,
 * on the loop (hiredis's libev adapter), for the address of master NAME
 * (SENTINEL get-master-addr-by-name); the daemon connects there, and the
 * connection's ROLE must say "master" (else it is a replica that Sentinel
 * has not yet reconfigured: dropped, asked again).  One sentinel is kept
 * subscribed to +switch-master, so that a promotion moves the daemon at
 * once rather than when its connection to the old master breaks.  While
 * no master answers, the daemon is as with a plain Redis that is away.
 *
 * Waiting for replicas: with N > 0, an outbox call that Redis answered
 * stays in the outbox, and what the faces acknowledge stays held
 * (broker_store_durable is not moved), until a WAIT N sent after it
 * answers that N replicas have it.  One WAIT is out at a time and covers
 * every call answered before it was sent.  A WAIT that counts fewer than
 * N replicas within its timeout is taken as a lost link: submissions are
 * refused until a later WAIT succeeds, and the calls still held are sent
 * again after the reconnect (a submission sent again is recognised by its
 * token; an ending sent again to a Redis that has it is "late").
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>

#include "server.h"
#include "store/store_redis.h"

/* ------------------------------------------------------------- the URL */

/* host_port: "HOST[:PORT]" or "[V6][:PORT]" of len bytes; -1 if bad. */
static int
host_port(const char *p, size_t len, char *host, size_t hostlen, int *port)
{
	const char *end = p + len, *hs = p, *he, *colon = NULL;
	char num[8];
	char *e;
	size_t nl;
	long v;

	if (len > 0 && p[0] == '[') {
		const char *rb = memchr(p, ']', len);

		if (rb == NULL)
			return -1;
		hs = p + 1;
		he = rb;
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return -1;
			colon = rb + 1;
		}
	} else {
		colon = memchr(p, ':', len);
		he = colon != NULL ? colon : end;
	}
	if (he == hs || (size_t)(he - hs) >= hostlen)
		return -1;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (colon != NULL) {
		nl = (size_t)(end - colon - 1);
		if (nl == 0 || nl >= sizeof num)
			return -1;
		memcpy(num, colon + 1, nl);
		num[nl] = '\0';
		v = strtol(num, &e, 10);
		if (*e != '\0' || v < 1 || v > 65535)
			return -1;
		*port = (int)v;
	}
	return 0;
}

int
sentinel_url_parse(const char *url, struct redis_url *o, char *err, size_t errlen)
{
	static const char form[] =
	    "redis-sentinel://[:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTERNAME";
	const char *p = url + strlen("redis-sentinel://"), *end, *q, *comma, *iend;

	memset(o, 0, sizeof *o);
	end = p + strcspn(p, "/");
	if (url_password(&p, end, o, err, errlen) < 0)
		return -1;
	for (q = p;; q = comma + 1) {
		comma = memchr(q, ',', (size_t)(end - q));
		iend = comma != NULL ? comma : end;
		if (o->nsentinels == REDIS_SENTINELS_MAX) {
			snprintf(err, errlen, "%s: more than %d sentinels", url,
			    REDIS_SENTINELS_MAX);
			return -1;
		}
		o->sentinels[o->nsentinels].port = 26379;
		if (host_port(q, (size_t)(iend - q), o->sentinels[o->nsentinels].host,
		    sizeof o->sentinels[0].host, &o->sentinels[o->nsentinels].port) < 0) {
			snprintf(err, errlen, "%s: a bad sentinel \"%.*s\": not %s", url,
			    (int)(iend - q), q, form);
			return -1;
		}
		o->nsentinels++;
		if (comma == NULL)
			break;
	}
	if (*end != '/' || end[1] == '\0' || strlen(end + 1) >= sizeof o->master ||
	    strspn(end + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-_.") != strlen(end + 1)) {
		snprintf(err, errlen, "%s: no master name (letters, digits, '-', '_', '.') "
		    "after the sentinels: not %s", url, form);
		return -1;
	}
	snprintf(o->master, sizeof o->master, "%s", end + 1);
	/* the master is not known yet: the sentinels name it at connect */
	snprintf(o->host, sizeof o->host, "%s", o->master);
	o->port = 0;
	return 0;
}

/* ------------------------------------------------------------ sentinel */

struct rsentinel {
	redisAsyncContext *q;       /* asking sentinel `at` for the master */
	int                at;      /* the next sentinel to ask */
	int                tried;   /* sentinels asked in this round */
	uint64_t           gen;     /* a question's number: stale answers go */
	redisAsyncContext *watch;   /* subscribed to +switch-master */
	ev_timer           rewatch; /* a lost watch is made again */
	char               last[600];   /* why the last sentinel failed */
	/* --redis-wait-replicas */
	bool               wait_out;    /* a WAIT is out */
	uint64_t           wait_want;   /* the last seq answered, to be covered */
	uint64_t           wait_gen;    /* the link the WAIT went on */
	bool               short_logged;    /* WAIT counted too few replicas */
};

static struct rsentinel *
sen(struct rstore *r)
{
	if (r->sentinel == NULL)
		r->sentinel = xcalloc(1, sizeof *r->sentinel);
	return r->sentinel;
}

static void ask_next(struct rstore *r, const char *why);

static void
drop_ctx(redisAsyncContext **ac)
{
	redisAsyncContext *c = *ac;

	*ac = NULL;
	if (c != NULL) {
		c->data = NULL;   /* its callbacks see no store */
		redisAsyncFree(c);
	}
}

static void
q_gone(const redisAsyncContext *ac, int status)
{
	struct rstore *r = ac->data;

	(void)status;
	if (r != NULL && r->sentinel != NULL && r->sentinel->q == ac)
		r->sentinel->q = NULL;   /* hiredis frees it */
}

/* q_connected, watch_connected: a connection that fails is freed by
 * hiredis once this returns (with no disconnect callback). */
static void
q_connected(const redisAsyncContext *ac, int status)
{
	if (status != REDIS_OK)
		q_gone(ac, status);
}

static void watch_gone(const redisAsyncContext *, int);

static void
watch_connected(const redisAsyncContext *ac, int status)
{
	if (status != REDIS_OK)
		watch_gone(ac, status);
}

static void
watch_gone(const redisAsyncContext *ac, int status)
{
	struct rstore *r = ac->data;

	(void)status;
	if (r != NULL && r->sentinel != NULL && r->sentinel->watch == ac)
		r->sentinel->watch = NULL;
}

/* reconnect_now: a promotion was announced: the link goes, and the next
 * connection follows at once (no backoff). */
static void
reconnect_now(struct rstore *r, const char *why)
{
	rs_teardown(r, why);
	r->backoff = 0;
	ev_timer_stop(r->srv->loop, &r->retry);
	ev_timer_set(&r->retry, 0., 0.);
	ev_timer_start(r->srv->loop, &r->retry);
}

/* watch_msg: "+switch-master NAME OLDIP OLDPORT NEWIP NEWPORT". */
static void
watch_msg(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	redisReply *x = reply;
	char name[128], host[256], why[512];
	int port;

	(void)priv;
	if (x == NULL || r == NULL || r->closing || x->type != REDIS_REPLY_ARRAY ||
	    x->elements < 3 || strcmp(rstr(x->element[0], NULL), "message") != 0)
		return;
	if (sscanf(rstr(x->element[2], NULL), "%127s %*s %*s %255s %d", name, host, &port) != 3 ||
	    strcmp(name, r->url.master) != 0)
		return;
	if (r->up && strcmp(host, r->url.host) == 0 && port == r->url.port)
		return;
	log_warn("redis: Sentinel promoted %s:%d as master %s", host, port, r->url.master);
	snprintf(why, sizeof why, "Sentinel switched master %s to %s:%d", name, host, port);
	reconnect_now(r, why);
}

static void
watch_start(struct rstore *r, int i)
{
	struct rsentinel *s = sen(r);
	redisAsyncContext *ac;

	ac = redisAsyncConnect(r->url.sentinels[i].host, r->url.sentinels[i].port);
	if (ac == NULL || ac->err) {
		if (ac != NULL)
			redisAsyncFree(ac);
		return;   /* rewatch tries again */
	}
	ac->data = r;
	redisLibevAttach(r->srv->loop, ac);
	redisAsyncSetConnectCallback(ac, watch_connected);
	redisAsyncSetDisconnectCallback(ac, watch_gone);
	redisAsyncCommand(ac, watch_msg, NULL, "SUBSCRIBE +switch-master");
	s->watch = ac;
}

/* rewatch_cb: every second, a watch lost (its sentinel went) is made
 * again on another sentinel. */
static void
rewatch_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rstore *r = w->data;
	struct rsentinel *s = r->sentinel;

	(void)loop;
	(void)revents;
	if (s->watch == NULL && !r->closing)
		watch_start(r, s->at % r->url.nsentinels);
}

/* role_reply: the server the sentinel named must say it is the master. */
static void
role_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	redisReply *x = reply;
	char why[700];

	(void)priv;
	if (x == NULL || r == NULL || r->closing)
		return;
	if (x->type == REDIS_REPLY_ARRAY && x->elements > 0 &&
	    strcmp(rstr(x->element[0], NULL), "master") == 0)
		return;
	snprintf(why, sizeof why, "%s:%d, which Sentinel names master %s, is not a master "
	    "(ROLE: %.100s)", r->url.host, r->url.port, r->url.master,
	    x->type == REDIS_REPLY_ERROR ? x->str : x->type == REDIS_REPLY_ARRAY &&
	    x->elements > 0 ? rstr(x->element[0], NULL) : "?");
	rs_teardown(r, why);
}

/* sentinel_role: after the PING of a connection to a master Sentinel named. */
void
sentinel_role(struct rstore *r)
{
	if (r->url.master[0] != '\0')
		redisAsyncCommand(r->cmd, role_reply, NULL, "ROLE");
}

static void
addr_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	struct rsentinel *s;
	redisReply *x = reply;
	int i, port;
	char why[600];
	const char *host;

	if (r == NULL || r->closing || (s = r->sentinel) == NULL ||
	    (uint64_t)(uintptr_t)priv != s->gen)
		return;
	i = (s->at + r->url.nsentinels - 1) % r->url.nsentinels;
	if (x == NULL || x->type != REDIS_REPLY_ARRAY || x->elements != 2 ||
	    (port = (int)rnum(x->element[1])) <= 0 || port > 65535 ||
	    rstr(x->element[0], NULL)[0] == '\0' ||
	    strlen(rstr(x->element[0], NULL)) >= sizeof r->url.host) {
		snprintf(why, sizeof why, "sentinel %s:%d: %s", r->url.sentinels[i].host,
		    r->url.sentinels[i].port, x == NULL ? (ac->errstr[0] != '\0' ? ac->errstr :
		    "no answer") : x->type == REDIS_REPLY_ERROR ? x->str :
		    x->type == REDIS_REPLY_NIL ? "does not know that master" : "a bad answer");
		if (s->q == ac) {
			s->q = NULL;
			if (x != NULL) {   /* (without an answer, hiredis is freeing it) */
				ac->data = NULL;
				redisAsyncDisconnect(ac);
			}
		}
		ask_next(r, why);
		return;
	}
	host = rstr(x->element[0], NULL);
	if (strcmp(host, r->url.host) != 0 || port != r->url.port)
		log_info("redis: Sentinel %s:%d names %s:%d master %s", r->url.sentinels[i].host,
		    r->url.sentinels[i].port, host, port, r->url.master);
	snprintf(r->url.host, sizeof r->url.host, "%s", host);
	r->url.port = port;
	if (s->q == ac) {
		s->q = NULL;
		ac->data = NULL;
		redisAsyncDisconnect(ac);
	}
	s->at = i;   /* ask this one first next time */
	if (s->watch == NULL)
		watch_start(r, i);
	rs_connect(r);
}

/* ask_next: ask the next sentinel of this round; once every one failed,
 * the link is down (with the usual backoff, then a new round). */
static void
ask_next(struct rstore *r, const char *why)
{
	struct rsentinel *s = sen(r);
	const char *h;
	int i, p;

	if (why != NULL)
		snprintf(s->last, sizeof s->last, "%s", why);
	while (s->tried < r->url.nsentinels) {
		i = s->at % r->url.nsentinels;
		s->at = (i + 1) % r->url.nsentinels;
		s->tried++;
		h = r->url.sentinels[i].host;
		p = r->url.sentinels[i].port;
		s->gen++;
		s->q = redisAsyncConnect(h, p);
		if (s->q == NULL || s->q->err) {
			snprintf(s->last, sizeof s->last, "sentinel %s:%d: %s", h, p,
			    s->q != NULL ? s->q->errstr : "out of memory");
			if (s->q != NULL)
				redisAsyncFree(s->q);
			s->q = NULL;
			continue;
		}
		s->q->data = r;
		redisLibevAttach(r->srv->loop, s->q);
		redisAsyncSetConnectCallback(s->q, q_connected);
		redisAsyncSetDisconnectCallback(s->q, q_gone);
		redisAsyncCommand(s->q, addr_reply, (void *)(uintptr_t)s->gen,
		    "SENTINEL get-master-addr-by-name %s", r->url.master);
		return;
	}
	{
		char all[800];

		snprintf(all, sizeof all, "no sentinel named master %s (the last: %s)",
		    r->url.master, s->last);
		rs_teardown(r, all);
	}
}

/* sentinel_connect: the start of each (re)connection with Sentinel: a new
 * round of questions, bounded by the connect timeout. */
void
sentinel_connect(struct rstore *r)
{
	struct rsentinel *s = sen(r);

	if (!ev_is_active(&s->rewatch) && !ev_is_pending(&s->rewatch)) {
		ev_timer_init(&s->rewatch, rewatch_cb, 1.0, 1.0);
		s->rewatch.data = r;
		ev_timer_start(r->srv->loop, &s->rewatch);
	}
	drop_ctx(&s->q);
	s->tried = 0;
	ev_timer_stop(r->srv->loop, &r->connect_to);
	ev_timer_set(&r->connect_to, CONNECT_TIMEOUT, 0.);
	ev_timer_start(r->srv->loop, &r->connect_to);
	ask_next(r, NULL);
}

/* sentinel_down: the link went (rs_teardown): a question out is dropped,
 * and a WAIT out is forgotten (the calls it would cover are sent again). */
void
sentinel_down(struct rstore *r)
{
	if (r->sentinel == NULL)
		return;
	drop_ctx(&r->sentinel->q);
	r->sentinel->wait_out = false;
	r->sentinel->wait_want = 0;
	r->sentinel->wait_gen++;
	r->sentinel->short_logged = false;
}

void
sentinel_close(struct rstore *r)
{
	struct rsentinel *s = r->sentinel;

	if (s == NULL)
		return;
	if (ev_is_active(&s->rewatch))
		ev_timer_stop(r->srv->loop, &s->rewatch);
	drop_ctx(&s->q);
	drop_ctx(&s->watch);
	free(s);
	r->sentinel = NULL;
}

/* ------------------------------------------------------ waiting for replicas */

static void wait_send(struct rstore *r);

static void
wait_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rstore *r = ac->data;
	struct rsentinel *s;
	redisReply *x = reply;
	uint64_t covered;
	struct rcmd *c;
	char why[300];

	if (x == NULL || r == NULL || r->closing || (s = r->sentinel) == NULL)
		return;
	covered = (uint64_t)(uintptr_t)priv;
	s->wait_out = false;
	if (x->type != REDIS_REPLY_INTEGER) {
		snprintf(why, sizeof why, "WAIT: %s", rstr(x, NULL));
		rs_teardown(r, why);
		return;
	}
	if (x->integer < r->wait_replicas) {
		/* Not replicated: what it covers stays held, submissions are
		 * refused, and the same WAIT goes again (it blocks in Redis for
		 * its timeout: no busy loop). */
		snprintf(r->reason, sizeof r->reason, "redis %s:%d: only %lld of the %d "
		    "replica(s) asked for (--redis-wait-replicas) had the writes within %d ms",
		    r->url.host, r->url.port, x->integer, r->wait_replicas, r->lease_ms / 5);
		if (!s->short_logged)
			log_err("%s; submissions are refused until they have them", r->reason);
		s->short_logged = true;
		broker_store_set_error_quietly(r->b, EAGAIN, r->reason);
		if (covered > s->wait_want)
			s->wait_want = covered;
		wait_send(r);
		return;
	}
	if (s->short_logged) {
		log_warn("redis %s:%d: the replicas have the writes again", r->url.host, r->url.port);
		s->short_logged = false;
		if (r->up && broker_store_error(r->b) == EAGAIN)
			broker_store_set_error_quietly(r->b, 0, NULL);
	}
	while ((c = TAILQ_FIRST(&r->outbox)) != NULL && c->replied && c->seq <= covered) {
		TAILQ_REMOVE(&r->outbox, c, entry);
		rcmd_free(r, c);
	}
	if (covered > broker_durable(r->b))
		broker_store_durable(r->b, covered);
	if (broker_store_error(r->b) == ENOBUFS && r->outbox_bytes < BACKLOG_MAX / 2)
		broker_store_set_error(r->b, r->up ? 0 : ENOTCONN, r->reason);
	if (s->wait_want > covered)
		wait_send(r);
}

static void
wait_send(struct rstore *r)
{
	struct rsentinel *s = sen(r);

	if (s->wait_out || r->cmd == NULL)
		return;
	s->wait_out = true;
	redisAsyncCommand(r->cmd, wait_reply, (void *)(uintptr_t)s->wait_want, "WAIT %d %d",
	    r->wait_replicas, r->lease_ms / 5);
}

/* wait_answered: Redis answered outbox call c (its verdicts are done): it
 * stays in the outbox, its acknowledgements held, until a WAIT covers it. */
void
wait_answered(struct rstore *r, struct rcmd *c)
{
	struct rsentinel *s = sen(r);

	c->replied = true;
	if (c->seq > s->wait_want)
		s->wait_want = c->seq;
	wait_send(r);
}
