/*
 * cron.h — five-field cron expressions (minute hour day-of-month month
 * day-of-week), in UTC: what a schedule's "cron" says (schedule.c).
 */
#ifndef JOBFS_CRON_H
#define JOBFS_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cron {
	uint64_t minute;    /* bit m: minute m (0-59) */
	uint32_t hour;      /* bit h: 0-23 */
	uint32_t mday;      /* bit d: 1-31 */
	uint16_t month;     /* bit m: 1-12 */
	uint8_t  wday;      /* bit d: 0-6, Sunday 0 (7 is read as 0) */
	bool     mday_star; /* the field began with '*': Vixie cron's rule */
	bool     wday_star;
};

/* cron_parse: text into c; false with a reason in err if it is not a
 * valid expression. */
bool    cron_parse(const char *text, struct cron *c, char *err, size_t errlen);
/* cron_next: the first minute strictly after after_ms (epoch
 * milliseconds, UTC) that c matches, in epoch milliseconds; -1 if none
 * within eight years (e.g. "0 0 31 2 *"). */
int64_t cron_next(const struct cron *c, int64_t after_ms);

#endif
