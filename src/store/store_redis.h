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

#include "server.h"
#include "store/store.h"

/* redis_prio16: the queue member's first 16 characters for a priority:
 * lowercase hex of INT64_MAX - priority, so that higher priorities sort
 * first byte by byte. */
void redis_prio16(int64_t priority, char out[17]);


#endif
