/*
 * store_redis.h: cluster mode (--redis): the broker's queues, jobs and
 * results in Redis, shared by every daemon pointed at it.  See
 * store_redis.c and jobfs-redis(7).
 */
#ifndef STORE_REDIS_H
#define STORE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct rstore;

struct redis_url {
	char host[256];
	int  port;
	char password[256];   /* "": none */
	int  db;
};

/* redis_url_parse: redis://[:PASSWORD@]HOST[:PORT][/DB]; -1 with err set. */
int  redis_url_parse(const char *url, struct redis_url *out, char *err, size_t errlen);

/* redis_prio16: the queue member's first 16 characters for a priority:
 * lowercase hex of INT64_MAX - priority, so that higher priorities sort
 * first byte by byte. */
void redis_prio16(int64_t priority, char out[17]);

/* rstore_open: make srv's broker use Redis (connects at rstore_start). */
int  rstore_open(struct server *, char *err, size_t errlen);
void rstore_start(struct server *);   /* after the daemon forked */
void rstore_close(struct server *);   /* before the broker shuts down */
/* rstore_publish: a channel message to every daemon; -1 if Redis is away. */
int  rstore_publish(struct server *, const char *chan, const char *text, size_t len);

#endif
