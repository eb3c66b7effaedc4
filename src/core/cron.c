/*
 * cron.c — five-field cron expressions, UTC.  Each field is a
 * comma-separated list of items; an item is '*', a number N, or a range
 * N-M, each optionally followed by /STEP ('*' /STEP: from the field's
 * low end; N/STEP: from N to the field's high end).  Month and
 * day-of-week names are not read (numbers only); day-of-week 7 is Sunday
 * like 0.  As in Vixie cron, when both day-of-month and day-of-week are
 * restricted (neither begins with '*'), a day matches if EITHER matches;
 * when one begins with '*', only the other counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cron.h"

struct field_range {
	const char *name;
	int lo, hi;
};

static const struct field_range ranges[5] = {
	{ "minute", 0, 59 }, { "hour", 0, 23 }, { "day of month", 1, 31 },
	{ "month", 1, 12 }, { "day of week", 0, 7 },
};

/* num: a decimal number at *p (at most 4 digits), advancing *p; -1 if none. */
static int
num(const char **p)
{
	int v = 0, n = 0;

	while (**p >= '0' && **p <= '9' && n < 5) {
		v = v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	return n == 0 || n > 4 ? -1 : v;
}

/* parse_field: one field (s..end) into bits; *star if it begins with '*'. */
static bool
parse_field(const char *s, const char *end, const struct field_range *r,
    uint64_t *bits, bool *star, char *err, size_t errlen)
{
	const char *p = s;

	*bits = 0;
	*star = *p == '*';
	for (;;) {
		int lo, hi, step = 1;
		bool ranged = true;   /* '*' or N-M: a /STEP stays inside it */

		if (*p == '*') {
			lo = r->lo;
			hi = r->hi;
			p++;
		} else {
			if ((lo = num(&p)) < 0)
				goto bad;
			hi = lo;
			ranged = *p == '-';
			if (*p == '-') {
				p++;
				if ((hi = num(&p)) < 0)
					goto bad;
			}
		}
		if (*p == '/') {
			p++;
			if ((step = num(&p)) <= 0)
				goto bad;
			if (!ranged)
				hi = r->hi;   /* N/STEP: N to the end */
		}
		if (lo < r->lo || hi > r->hi || lo > hi) {
			snprintf(err, errlen, "cron %s: %d-%d is outside %d-%d",
			    r->name, lo, hi, r->lo, r->hi);
			return false;
		}
		for (int v = lo; v <= hi; v += step)
			*bits |= (uint64_t)1 << v;
		if (p == end)
			return true;
		if (*p != ',')
			goto bad;
		p++;
	}
bad:
	snprintf(err, errlen, "cron %s: \"%.*s\" is not a list of *, N, N-M, "
	    "with optional /STEP", r->name, (int)(end - s), s);
	return false;
}

bool
cron_parse(const char *text, struct cron *c, char *err, size_t errlen)
{
	const char *p = text, *start[5], *stop[5];
	uint64_t bits[5];
	bool star[5];
	int n = 0;

	memset(c, 0, sizeof *c);
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (n == 5) {
			snprintf(err, errlen, "cron: more than 5 fields "
			    "(minute hour day-of-month month day-of-week)");
			return false;
		}
		start[n] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		stop[n++] = p;
	}
	if (n != 5) {
		snprintf(err, errlen, "cron: %d field%s, not 5 (minute hour "
		    "day-of-month month day-of-week)", n, n == 1 ? "" : "s");
		return false;
	}
	for (int i = 0; i < 5; i++) {
		if (!parse_field(start[i], stop[i], &ranges[i], &bits[i], &star[i],
		    err, errlen))
			return false;
	}
	c->minute = bits[0];
	c->hour = (uint32_t)bits[1];
	c->mday = (uint32_t)bits[2];
	c->month = (uint16_t)bits[3];
	c->wday = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f);
	c->mday_star = star[2];
	c->wday_star = star[4];
	return true;
}

static bool
day_matches(const struct cron *c, const struct tm *tm)
{
	bool dom = (c->mday >> tm->tm_mday) & 1, dow = (c->wday >> tm->tm_wday) & 1;

	if (c->mday_star || c->wday_star)
		return dom && dow;
	return dom || dow;
}

int64_t
cron_next(const struct cron *c, int64_t after_ms)
{
	time_t t = (time_t)(after_ms / 1000);
	time_t limit;
	struct tm tm;

	if (after_ms < 0)
		t = 0;
	t = t - t % 60 + 60;    /* the next whole minute */
	limit = t + (time_t)8 * 366 * 86400;
	while (t < limit) {
		gmtime_r(&t, &tm);
		if (!((c->month >> (tm.tm_mon + 1)) & 1)) {
			/* to the first day of the next month */
			tm.tm_mday = 1;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
			tm.tm_mon++;
			t = timegm(&tm);
			continue;
		}
		if (!day_matches(c, &tm)) {
			t += 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60);
			continue;
		}
		if (!((c->hour >> tm.tm_hour) & 1)) {
			t += 3600 - tm.tm_min * 60;
			continue;
		}
		if (!((c->minute >> tm.tm_min) & 1)) {
			t += 60;
			continue;
		}
		return (int64_t)t * 1000;
	}
	return -1;
}
