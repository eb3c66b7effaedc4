/*
 * chan.h — channels, part of the core's public header (broker.h):
 * publish/subscribe by name, with no retention.
 */
#ifndef JOBFS_CHAN_H
#define JOBFS_CHAN_H

#include "base/base.h"

struct broker;
struct sub;

struct chan {
	UT_hash_handle    hh;        /* broker->chans.table */
	char             *name;
	TAILQ_HEAD(, sub) subs;
	unsigned          nsubs;
	unsigned          nstreams;  /* web streams (GET /sub/C) holding it */
	bool              pinned;    /* created in the tree */
	uint64_t          published, delivered, dropped;
};

/* A channel listener hears every message published (the tree's readers,
 * the web face's streams). */
typedef void chan_listener(void *ctx, const char *name, const char *body, size_t len);
#define CHAN_LISTENERS_MAX 4

/*
 * A subscriber: what a face keeps for each peer that subscribes (a TCP
 * connection), so that the core can write to it without knowing it.
 * backlogged: it cannot take a message now (the message is missed, and
 * counted); send: one message frame, whole.
 */
struct chan_peer_ops {
	bool (*backlogged)(void *ctx);
	void (*send)(void *ctx, const char *frame, size_t len);
};
struct chan_peer {
	struct sub                 *subs;   /* its subscriptions, by channel name */
	void                       *ctx;    /* the face's object */
	const struct chan_peer_ops *ops;
	const char                 *label;  /* for the log */
};

/*
 * A transport carries a published message to every daemon (cluster mode:
 * the Redis store sets it), each of which delivers it (chan_deliver);
 * send returns -1 when it cannot now.  Without one, publish delivers here.
 */
typedef int chan_transport(void *ctx, const char *name, const char *body, size_t len);

/* Every channel of a daemon (broker->chans). */
struct chans {
	struct chan     *table;      /* by name */
	uint64_t         published, delivered, dropped;  /* of freed channels */
	chan_listener   *fn[CHAN_LISTENERS_MAX];
	void            *ctx[CHAN_LISTENERS_MAX];
	unsigned         nlisteners;
	chan_transport  *transport;  /* NULL: none */
	void            *transport_ctx;
};

void   chan_listen(struct broker *, chan_listener *, void *ctx);
void   chan_set_transport(struct broker *, chan_transport *, void *ctx);
struct chan *chan_find(struct broker *, const char *name);
struct chan *chan_get(struct broker *, const char *name, bool pin);
void   chan_unpin(struct broker *, struct chan *);
void   chan_hold(struct broker *, const char *name);
void   chan_drop(struct broker *, const char *name);
void   chan_subscribe(struct broker *, struct chan_peer *, const char *name);
void   chan_unsubscribe(struct broker *, struct chan_peer *, const char *name);
void   chan_unsubscribe_all(struct broker *, struct chan_peer *);
size_t chan_publish(struct broker *, const char *name, const char *body, size_t len);
size_t chan_deliver(struct broker *, const char *name, const char *body, size_t len);
void   chan_stats(struct broker *, uint64_t *nchans, uint64_t *published,
    uint64_t *delivered, uint64_t *dropped);
void   chan_shutdown(struct broker *);
/* chan_each: fn(ctx, channel) for every channel there is */
void   chan_each(struct broker *, void (*fn)(void *ctx, const struct chan *), void *ctx);

#endif /* JOBFS_CHAN_H */
