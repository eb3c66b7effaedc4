/*
 * schedule.h — part of the core's public header (broker.h): repeating
 * jobs, the broker's schedules (schedule.c).
 */
#ifndef JOBFS_SCHEDULE_H
#define JOBFS_SCHEDULE_H

#include "core/broker.h"

/*
 * Repeating jobs (schedule.c): a schedule fires a job of its type at each
 * due time, "cron" (cron.h, UTC) or "every" milliseconds (multiples since
 * the epoch); schedules are kept by (type, name), a second with the same
 * pair replaces the first.  Errors: BERR_INVALID (broker_err_detail says
 * why), BERR_UNKNOWN_ID (unschedule of no such schedule).
 */
enum { SCHED_SET, SCHED_FIRED, SCHED_REMOVED };
#define SCHED_NAME_MAX  64
#define SCHED_MAX       10000
#define SCHED_EVERY_MIN 10                   /* ms */
#define SCHED_EVERY_MAX (366LL * 86400000)   /* a year, in ms */
#define SCHED_BODY_MAX  (1 << 20)
struct sched_req {
	const char *type, *name;
	const char *cron;          /* NULL: every_ms */
	int64_t     every_ms;      /* 0: cron */
	const char *body;          /* JSON text; NULL: {} */
	size_t      body_len;
	int64_t     priority;
	bool        retries_set;
	int64_t     retries;
	/* a store putting a schedule back: */
	bool        restore;       /* no schedule_changed; a due time missed
	                              since created_ms fires once */
	int64_t     created_ms;    /* 0: now */
	int64_t     last_due_ms;   /* the last due time fired; 0: none */
	int64_t     now_ms;        /* 0: the loop's clock (tests set it) */
};
enum broker_err broker_schedule(struct broker *, const struct sched_req *);
enum broker_err broker_unschedule(struct broker *, const char *type, const char *name);
/* broker_schedule_drop: a store's removal (no event); false if none. */
bool  broker_schedule_drop(struct broker *, const char *type, const char *name);
json_t *broker_schedules(struct broker *, const char *type);  /* NULL: all */
json_t *broker_schedule_get(struct broker *, const char *type, const char *name);
void  broker_schedules_each(struct broker *,
    bool (*cb)(void *, const struct schedule *), void *ctx);
uint64_t broker_schedules_fired(const struct broker *);
json_t *schedule_json(const struct schedule *);
bool  schedule_req_of(json_t *o, struct sched_req *);
const char *schedule_type(const struct schedule *);
const char *schedule_body(const struct schedule *, size_t *len);  /* JSON text */
const char *schedule_name(const struct schedule *);

#endif /* JOBFS_SCHEDULE_H */
