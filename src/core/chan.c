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

#include "core/core.h"

struct sub {
	UT_hash_handle    hh;        /* peer->subs, keyed by channel name */
	struct chan      *chan;
	struct chan_peer *peer;
	uint64_t          missed;    /* since its last delivered message */
	TAILQ_ENTRY(sub)  entry;
};

/* chan_listen: fn hears every message published, to any channel. */
void
chan_listen(struct broker *b, chan_listener *fn, void *ctx)
{
	struct chans *cs = &b->chans;

	if (cs->nlisteners == CHAN_LISTENERS_MAX)
		fatalx("more than %d channel listeners", CHAN_LISTENERS_MAX);
	cs->fn[cs->nlisteners] = fn;
	cs->ctx[cs->nlisteners++] = ctx;
}

/* chan_set_transport: publish through send (cluster mode); NULL: here. */
void
chan_set_transport(struct broker *b, chan_transport *send, void *ctx)
{
	b->chans.transport = send;
	b->chans.transport_ctx = ctx;
}

struct chan *
chan_find(struct broker *b, const char *name)
{
	struct chan *ch;

	HASH_FIND_STR(b->chans.table, name, ch);
	return ch;
}

/* chan_get: find or create a channel; pin keeps it with no subscribers. */
struct chan *
chan_get(struct broker *b, const char *name, bool pin)
{
	struct chan *ch = chan_find(b, name);

	if (ch == NULL) {
		ch = xcalloc(1, sizeof *ch);
		ch->name = xstrdup(name);
		TAILQ_INIT(&ch->subs);
		HASH_ADD_KEYPTR(hh, b->chans.table, ch->name, strlen(ch->name), ch);
	}
	if (pin)
		ch->pinned = true;
	return ch;
}

static void
chan_release(struct broker *b, struct chan *ch)
{
	if (ch->nsubs > 0 || ch->nstreams > 0 || ch->pinned)
		return;
	b->chans.published += ch->published;
	b->chans.delivered += ch->delivered;
	b->chans.dropped += ch->dropped;
	HASH_DEL(b->chans.table, ch);
	free(ch->name);
	free(ch);
}

/* chan_unpin: undo the tree's pin (rm channels/C): gone unless subscribed. */
void
chan_unpin(struct broker *b, struct chan *ch)
{
	ch->pinned = false;
	chan_release(b, ch);
}

/*
 * chan_hold: a subscriber that is not a TCP connection (a web stream,
 * GET /sub/C) follows name: while held the channel lives, is listed in
 * the tree and counted in stats, as with a TCP subscriber.  chan_drop
 * undoes one hold.
 */
void
chan_hold(struct broker *b, const char *name)
{
	chan_get(b, name, false)->nstreams++;
}

void
chan_drop(struct broker *b, const char *name)
{
	struct chan *ch = chan_find(b, name);

	if (ch == NULL || ch->nstreams == 0)
		return;   /* (the daemon is stopping: channels are gone) */
	ch->nstreams--;
	chan_release(b, ch);
}

void
chan_subscribe(struct broker *b, struct chan_peer *p, const char *name)
{
	struct sub *s;

	HASH_FIND_STR(p->subs, name, s);
	if (s != NULL)
		return;
	s = xcalloc(1, sizeof *s);
	s->chan = chan_get(b, name, false);
	s->peer = p;
	TAILQ_INSERT_TAIL(&s->chan->subs, s, entry);
	s->chan->nsubs++;
	HASH_ADD_KEYPTR(hh, p->subs, s->chan->name, strlen(s->chan->name), s);
	log_debug("%s subscribed to %s", p->label, name);
}

static void
sub_free(struct broker *b, struct chan_peer *p, struct sub *s)
{
	struct chan *ch = s->chan;

	HASH_DEL(p->subs, s);
	TAILQ_REMOVE(&ch->subs, s, entry);
	ch->nsubs--;
	free(s);
	chan_release(b, ch);
}

void
chan_unsubscribe(struct broker *b, struct chan_peer *p, const char *name)
{
	struct sub *s;

	HASH_FIND_STR(p->subs, name, s);
	if (s != NULL)
		sub_free(b, p, s);
}

void
chan_unsubscribe_all(struct broker *b, struct chan_peer *p)
{
	struct sub *s, *tmp;

	HASH_ITER(hh, p->subs, s, tmp)
		sub_free(b, p, s);
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
 * chan_publish: a message to every subscriber and listener.  With a
 * transport (cluster mode: Redis) it goes through it, and every daemon
 * (this one too) delivers it when it comes back (chan_deliver), so all see
 * one order; SIZE_MAX then if the transport cannot take it now.
 * Otherwise: how many subscribers here received it.
 */
size_t
chan_publish(struct broker *b, const char *name, const char *body, size_t len)
{
	if (b->chans.transport != NULL)
		return b->chans.transport(b->chans.transport_ctx, name, body, len) < 0 ?
		    SIZE_MAX : 0;
	return chan_deliver(b, name, body, len);
}

/* chan_deliver: the message to this daemon's subscribers and listeners. */
size_t
chan_deliver(struct broker *b, const char *name, const char *body, size_t len)
{
	struct chan *ch = chan_find(b, name);
	struct buf frame = { 0 }, odd = { 0 };
	struct sub *s;
	size_t n = 0;
	unsigned i;

	for (i = 0; i < b->chans.nlisteners; i++)
		b->chans.fn[i](b->chans.ctx[i], name, body, len);
	if (ch == NULL)
		return 0;  /* nobody listens: dropped, as in any pub/sub */
	ch->published++;
	chan_frame(&frame, ch, body, len, 0);
	TAILQ_FOREACH(s, &ch->subs, entry) {
		if (s->peer->ops->backlogged(s->peer->ctx)) {
			s->missed++;
			ch->dropped++;
			continue;
		}
		if (s->missed > 0) {
			chan_frame(&odd, ch, body, len, s->missed);
			s->peer->ops->send(s->peer->ctx, buf_head(&odd), buf_used(&odd));
			s->missed = 0;
		} else
			s->peer->ops->send(s->peer->ctx, buf_head(&frame), buf_used(&frame));
		n++;
	}
	ch->delivered += n;
	buf_free(&frame);
	buf_free(&odd);
	return n;
}

/* chan_stats: totals over every channel, for the daemon's stats. */
void
chan_stats(struct broker *b, uint64_t *nchans, uint64_t *published,
    uint64_t *delivered, uint64_t *dropped)
{
	struct chan *ch, *tmp;

	*nchans = HASH_COUNT(b->chans.table);
	*published = b->chans.published;
	*delivered = b->chans.delivered;
	*dropped = b->chans.dropped;
	HASH_ITER(hh, b->chans.table, ch, tmp) {
		*published += ch->published;
		*delivered += ch->delivered;
		*dropped += ch->dropped;
	}
}

void
chan_shutdown(struct broker *b)
{
	struct chan *ch, *tmp;

	HASH_ITER(hh, b->chans.table, ch, tmp) {
		HASH_DEL(b->chans.table, ch);
		free(ch->name);
		free(ch);
	}
}

void
chan_each(struct broker *b, void (*fn)(void *, const struct chan *), void *ctx)
{
	struct chan *ch, *tmp;

	HASH_ITER(hh, b->chans.table, ch, tmp)
		fn(ctx, ch);
}
