/*
 * test_cron.c — cron.c: five-field expressions parsed, and the next due
 * minute after a time, in UTC: steps, ranges, lists, the Vixie day rule
 * (day-of-month OR day-of-week when both are restricted), month ends,
 * leap days, Sunday as 7, and expressions that are refused.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/cron.h"
#include "tap.h"

/* ms: "YYYY-MM-DD HH:MM" UTC, in epoch milliseconds. */
static int64_t
ms(const char *s)
{
	struct tm tm = { 0 };

	strptime(s, "%Y-%m-%d %H:%M", &tm);
	return (int64_t)timegm(&tm) * 1000;
}

static bool
next_is(const char *expr, const char *after, const char *want)
{
	struct cron c;
	char err[160];
	int64_t got;

	if (!cron_parse(expr, &c, err, sizeof err)) {
		diag("%s: %s", expr, err);
		return false;
	}
	got = cron_next(&c, ms(after));
	if (want == NULL)
		return got == -1;
	if (got != ms(want)) {
		time_t t = (time_t)(got / 1000);
		char buf[64];

		strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", gmtime(&t));
		diag("%s after %s: got %s, want %s", expr, after, got < 0 ? "none" : buf, want);
		return false;
	}
	return true;
}

static bool
refused(const char *expr)
{
	struct cron c;
	char err[160] = "";

	return !cron_parse(expr, &c, err, sizeof err) && err[0] != '\0';
}

int
main(void)
{
	struct cron c;
	char err[160];

	plan(24);
	ok(next_is("* * * * *", "2024-01-01 00:00", "2024-01-01 00:01"), "every minute: strictly after");
	ok(cron_parse("* * * * *", &c, err, sizeof err) &&
	    cron_next(&c, ms("2024-01-01 00:00") + 30500) == ms("2024-01-01 00:01"),
	    "mid-minute: the next whole minute");
	ok(next_is("*/15 * * * *", "2024-01-01 00:00", "2024-01-01 00:15"), "*/15");
	ok(next_is("*/15 * * * *", "2024-01-01 23:45", "2024-01-02 00:00"), "*/15 over midnight");
	ok(next_is("5-10/2 * * * *", "2024-01-01 00:06", "2024-01-01 00:07"), "range with step");
	ok(next_is("5-10/2 * * * *", "2024-01-01 00:09", "2024-01-01 01:05"), "range with step: past its end");
	ok(next_is("7/20 * * * *", "2024-01-01 00:27", "2024-01-01 00:47"), "N/STEP: from N to the end");
	ok(next_is("1,2,58 * * * *", "2024-01-01 00:02", "2024-01-01 00:58"), "list");
	ok(next_is("0 9-17/4 * * *", "2024-01-01 13:00", "2024-01-01 17:00"), "hours: range with step");
	ok(next_is("0 0 31 * *", "2024-01-31 00:00", "2024-03-31 00:00"), "the 31st skips February");
	ok(next_is("0 0 29 2 *", "2024-03-01 00:00", "2028-02-29 00:00"), "Feb 29: the next leap year");
	ok(next_is("59 23 30 4 *", "2024-04-30 23:59", "2025-04-30 23:59"), "last minute of April: a year on");
	ok(next_is("0 0 1 1 *", "2024-12-31 23:59", "2025-01-01 00:00"), "new year");
	ok(next_is("0 0 13 * 5", "2024-01-01 00:00", "2024-01-05 00:00"),
	    "dom and dow restricted: either (Friday the 5th)");
	ok(next_is("0 0 13 * 5", "2024-01-12 00:00", "2024-01-13 00:00"),
	    "dom and dow restricted: either (Saturday the 13th)");
	ok(next_is("0 0 */2 * 1", "2024-01-01 00:00", "2024-01-15 00:00"),
	    "dom with '*': both (odd day and Monday)");
	ok(next_is("0 12 * * 7", "2024-01-01 00:00", "2024-01-07 12:00"), "Sunday as 7");
	ok(next_is("0 0 31 2 *", "2024-01-01 00:00", NULL), "Feb 31: never");
	ok(refused("60 * * * *"), "minute 60 refused");
	ok(refused("* * * *"), "four fields refused");
	ok(refused("* * * * * *"), "six fields refused");
	ok(refused("*/0 * * * *"), "step 0 refused");
	ok(refused("5-1 * * * *") && refused("1,,2 * * * *"), "backwards range, empty item refused");
	ok(refused("a * * * *") && refused("* * 0 * *") && refused("* * * 13 *"),
	    "names, day 0, month 13 refused");
	return done();
}
