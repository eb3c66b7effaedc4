/*
 * chan.c — pub/sub channels (Tempest's pub/sub, ClusterTalk's broadcast).
 *
 * A channel lives while it has subscribers, or, once created in the tree,
 * until rm channels/C.  Publishing encodes the message frame once and
 * copies it to every subscriber.  A subscriber whose output is backlogged misses
 * messages rather than slowing the publisher: each miss is counted, and the
 * next message it does get carries "missed":N.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobfs.h"
#include "store_redis.h"

struct sub {
	UT_hash_handle    hh;        /* conn->subs, keyed by channel name */
	struct chan      *chan;
	struct conn      *conn;
	uint64_t          missed;    /* since its last delivered message */
	TAILQ_ENTRY(sub)  entry;
};

/* chan_listen: fn hears every message published, to any channel. */
void
chan_listen(struct server *srv, chan_listener *fn, void *ctx)
{
	if (srv->nchan_listeners == CHAN_LISTENERS_MAX)
		fatalx("more than %d channel listeners", CHAN_LISTENERS_MAX);
	srv->chan_fn[srv->nchan_listeners] = fn;
	srv->chan_ctx[srv->nchan_listeners++] = ctx;
}

struct chan *
chan_find(struct server *srv, const char *name)
{
	struct chan *ch;

	HASH_FIND_STR(srv->chans, name, ch);
	return ch;
}

/* chan_get: find or create a channel; pin keeps it with no subscribers. */
struct chan *
chan_get(struct server *srv, const char *name, bool pin)
{
	struct chan *ch = chan_find(srv, name);

	if (ch == NULL) {
		ch = xcalloc(1, sizeof *ch);
		ch->name = xstrdup(name);
		TAILQ_INIT(&ch->subs);
		HASH_ADD_KEYPTR(hh, srv->chans, ch->name, strlen(ch->name), ch);
	}
	if (pin)
		ch->pinned = true;
	return ch;
}

static void
chan_release(struct server *srv, struct chan *ch)
{
	if (ch->nsubs > 0 || ch->nstreams > 0 || ch->pinned)
		return;
	srv->chan_published += ch->published;
	srv->chan_delivered += ch->delivered;
	srv->chan_dropped += ch->dropped;
	HASH_DEL(srv->chans, ch);
	free(ch->name);
	free(ch);
}

/* chan_unpin: undo the tree's pin (rm channels/C): gone unless subscribed. */
void
chan_unpin(struct server *srv, struct chan *ch)
{
	ch->pinned = false;
	chan_release(srv, ch);
}

/*
 * chan_hold: a subscriber that is not a TCP connection (a web stream,
 * GET /sub/C) follows name: while held the channel lives, is listed in
 * the tree and counted in stats, as with a TCP subscriber.  chan_drop
 * undoes one hold.
 */
void
chan_hold(struct server *srv, const char *name)
{
	chan_get(srv, name, false)->nstreams++;
}

void
chan_drop(struct server *srv, const char *name)
{
	struct chan *ch = chan_find(srv, name);

	if (ch == NULL || ch->nstreams == 0)
		return;   /* (the daemon is stopping: channels are gone) */
	ch->nstreams--;
	chan_release(srv, ch);
}

void
chan_subscribe(struct server *srv, struct conn *c, const char *name)
{
	struct sub *s;

	HASH_FIND_STR(c->subs, name, s);
	if (s != NULL)
		return;
	s = xcalloc(1, sizeof *s);
	s->chan = chan_get(srv, name, false);
	s->conn = c;
	TAILQ_INSERT_TAIL(&s->chan->subs, s, entry);
	s->chan->nsubs++;
	HASH_ADD_KEYPTR(hh, c->subs, s->chan->name, strlen(s->chan->name), s);
	log_debug("%s subscribed to %s", c->peer, name);
}

static void
sub_free(struct server *srv, struct conn *c, struct sub *s)
{
	struct chan *ch = s->chan;

	HASH_DEL(c->subs, s);
	TAILQ_REMOVE(&ch->subs, s, entry);
	ch->nsubs--;
	free(s);
	chan_release(srv, ch);
}

void
chan_unsubscribe(struct server *srv, struct conn *c, const char *name)
{
	struct sub *s;

	HASH_FIND_STR(c->subs, name, s);
	if (s != NULL)
		sub_free(srv, c, s);
}

void
chan_unsubscribe_all(struct server *srv, struct conn *c)
{
	struct sub *s, *tmp;

	HASH_ITER(hh, c->subs, s, tmp)
		sub_free(srv, c, s);
}

/* chan_frame: {"type":"message","channel":C,"body":B[,"missed":N]} */
static void
chan_frame(struct buf *out, const struct chan *ch, const char *body,
    size_t len, uint64_t missed)
{
	json_t *name = json_string(ch->name);
	char tail[48];

	out->off = out->len = 0;
	buf_append_str(out, "{\"type\":\"message\",\"channel\":");
	json_dump_callback(name, buf_json_cb, out, JSON_ENCODE_ANY);
	json_decref(name);
	buf_append_str(out, ",\"body\":");
	buf_append(out, body, len);
	if (missed > 0) {
		snprintf(tail, sizeof tail, ",\"missed\":%llu", (unsigned long long)missed);
		buf_append_str(out, tail);
	}
	buf_append(out, "}", 1);
}

/*
 * chan_publish: deliver body to every subscriber of name, and tell the
 * channel listeners (the tree's readers of channels/name).  Returns how
 * many subscribers received it.
 */
/*
 * chan_publish: a message to every subscriber and listener.  In cluster
 * mode (--redis) it goes through Redis, and every daemon (this one too)
 * delivers it when it comes back (chan_deliver), so all see one order;
 * SIZE_MAX then if Redis is away.
 */
size_t
chan_publish(struct server *srv, const char *name, const char *body, size_t len)
{
	if (srv->redis != NULL)
		return rstore_publish(srv, name, body, len) < 0 ? SIZE_MAX : 0;
	return chan_deliver(srv, name, body, len);
}

/* chan_deliver: the message to this daemon's subscribers and listeners. */
size_t
chan_deliver(struct server *srv, const char *name, const char *body, size_t len)
{
	struct chan *ch = chan_find(srv, name);
	struct buf frame = { 0 }, odd = { 0 };
	struct sub *s;
	size_t n = 0;
	unsigned i;

	for (i = 0; i < srv->nchan_listeners; i++)
		srv->chan_fn[i](srv->chan_ctx[i], name, body, len);
	if (ch == NULL)
		return 0;  /* nobody listens: dropped, as in any pub/sub */
	ch->published++;
	chan_frame(&frame, ch, body, len, 0);
	TAILQ_FOREACH(s, &ch->subs, entry) {
		if (conn_backlogged(s->conn)) {
			s->missed++;
			ch->dropped++;
			continue;
		}
		if (s->missed > 0) {
			chan_frame(&odd, ch, body, len, s->missed);
			conn_send_raw(s->conn, buf_head(&odd), buf_used(&odd));
			s->missed = 0;
		} else
			conn_send_raw(s->conn, buf_head(&frame), buf_used(&frame));
		n++;
	}
	ch->delivered += n;
	buf_free(&frame);
	buf_free(&odd);
	return n;
}

/* chan_stats: totals over every channel, for the daemon's stats. */
void
chan_stats(struct server *srv, uint64_t *nchans, uint64_t *published,
    uint64_t *delivered, uint64_t *dropped)
{
	struct chan *ch, *tmp;

	*nchans = HASH_COUNT(srv->chans);
	*published = srv->chan_published;
	*delivered = srv->chan_delivered;
	*dropped = srv->chan_dropped;
	HASH_ITER(hh, srv->chans, ch, tmp) {
		*published += ch->published;
		*delivered += ch->delivered;
		*dropped += ch->dropped;
	}
}

void
chan_shutdown(struct server *srv)
{
	struct chan *ch, *tmp;

	HASH_ITER(hh, srv->chans, ch, tmp) {
		HASH_DEL(srv->chans, ch);
		free(ch->name);
		free(ch);
	}
}
