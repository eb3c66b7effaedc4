/*
 * store.h — the stores' public header: what the server calls to open,
 * flush, report on and close the journal (--data, store_journal.c) and
 * cluster mode's Redis store (--redis, store_redis.c).  Their insides are
 * in journal.h, store_journal.h and store_redis.h, private to src/store/.
 */
#ifndef JOBFS_STORE_H
#define JOBFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct server;
struct module;

/* ------------------------------------------------------------- the journal */

enum journal_sync {
	JOURNAL_SYNC_ALWAYS,    /* durable = fdatasync'ed; one sync per batch */
	JOURNAL_SYNC_INTERVAL,  /* durable = written; fdatasync every interval_ms */
	JOURNAL_SYNC_NEVER,     /* durable = written; records never synced */
};

struct store_opts {
	const char        *dir;
	enum journal_sync  sync;
	unsigned           interval_ms;
	bool               repair;
	uint64_t           segment_bytes;   /* 0: the journal's default */
};

struct store;

/* store_open: open and lock DIR and replay it into the broker.  NULL on
 * failure with a message in err and errno EWOULDBLOCK when another daemon
 * holds DIR.  Call before forking into the background. */
struct store *store_open(struct server *, const struct store_opts *,
    char *err, size_t errlen);
void    store_flush(struct store *);          /* before-sleep, before acks */
void    store_stats(struct store *, json_t *o);
void    store_close(struct store *);


/* ------------------------------------------------------------ cluster mode */

struct rstore;

#define REDIS_SENTINELS_MAX 16

struct redis_url {
	char host[256];       /* with Sentinel: the master it last named */
	int  port;
	char password[256];   /* "": none */
	int  db;
	/* redis-sentinel://: the master's name and the sentinels to ask */
	char master[128];     /* "": plain redis:// */
	int  nsentinels;
	struct { char host[256]; int port; } sentinels[REDIS_SENTINELS_MAX];
};

/* redis_url_parse: redis://[:PASSWORD@]HOST[:PORT][/DB], or
 * redis-sentinel://[:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTERNAME
 * (port 26379 by default); -1 with err set. */
int  redis_url_parse(const char *url, struct redis_url *out, char *err, size_t errlen);

/* rstore_open: make srv's broker use Redis (connects at rstore_start). */
int  rstore_open(struct server *, char *err, size_t errlen);
void rstore_start(struct server *);   /* after the daemon forked */
void rstore_close(struct server *);   /* before the broker shuts down */
void rstore_stats(void *srv, json_t *o);   /* redis_in_flight and the like */

/* The stores, as main.c lists them (modules.c). */
extern const struct module journal_module, redis_module;
#endif /* JOBFS_STORE_H */
