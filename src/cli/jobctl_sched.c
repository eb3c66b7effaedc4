/*
 * jobctl_sched.c — repeating jobs: jobctl schedule, unschedule, schedules.
 *
 *   schedule [--priority N] [--retries N] TYPE NAME (--cron EXPR |
 *            --every DURATION) [BODY | -]
 *            DURATION: a number with a unit, ms, s, m, h or d (a bare
 *            number is milliseconds); prints the schedule as JSON
 *   unschedule TYPE NAME
 *   schedules [--json] [TYPE]: one line a schedule, TYPE NAME SPEC NEXT
 *            (the next due time, UTC), or the daemon's reply as JSON
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/jobctl.h"

/* duration_ms: "200ms", "5s", "1m", "2h", "1d", or a bare number of ms. */
static int
duration_ms(const char *s, long long *out)
{
	static const struct { const char *unit; long long ms; } units[] = {
		{ "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || v <= 0)
		return -1;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strcmp(end, units[i].unit) == 0) {
			if (v > INT64_MAX / units[i].ms)
				return -1;
			*out = v * units[i].ms;
			return 0;
		}
	return -1;
}

static int
reply_frame(struct session *s, const char *p, size_t len)
{
	json_t *m;
	int rc;

	(void)s;
	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	if (json_object_get(m, "error") != NULL)
		rc = ctl_report(m);
	else
		rc = ctl_print(NULL, m, isatty(STDOUT_FILENO) ?
		    JSON_INDENT(2) | JSON_ENCODE_ANY : JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(m);
	return rc;
}

int
cmd_schedule(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cron",     required_argument, NULL, 'c' },
		{ "every",    required_argument, NULL, 'e' },
		{ "priority", required_argument, NULL, 'p' },
		{ "retries",  required_argument, NULL, 'r' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *cron = NULL;
	long long every = 0, prio = 0, retries = -1;
	bool has_prio = false;
	json_t *m, *body = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cron = optarg;
			break;
		case 'e':
			if (duration_ms(optarg, &every) < 0) {
				ctl_warn("--every %s: not a duration (e.g. 500ms, 30s, 5m, 1h, 1d)",
				    optarg);
				return CTL_USAGE;
			}
			break;
		case 'p':
			if (ctl_number(optarg, INT64_MIN, INT64_MAX, &prio) < 0)
				return ctl_usage(e, false);
			has_prio = true;
			break;
		case 'r':
			if (ctl_number(optarg, 0, INT32_MAX, &retries) < 0)
				return ctl_usage(e, false);
			break;
		default:
			return ctl_usage(e, c == 'h');
		}
	}
	if (argc - optind < 2 || argc - optind > 3 || (cron != NULL) == (every != 0))
		return ctl_usage(e, false);
	if (argc - optind == 3 && (body = ctl_body(argv[optind + 2])) == NULL)
		return CTL_USAGE;
	m = json_pack("{s:s, s:s, s:s}", "type", "schedule", "job_type", argv[optind],
	    "name", argv[optind + 1]);
	if (m == NULL) {
		ctl_warn("the type or name is not valid UTF-8");
		json_decref(body);
		return CTL_USAGE;
	}
	if (cron != NULL)
		json_object_set_new(m, "cron", json_string(cron));
	else
		json_object_set_new(m, "every", json_integer(every));
	if (body != NULL)
		json_object_set_new(m, "body", body);
	if (has_prio)
		json_object_set_new(m, "priority", json_integer(prio));
	if (retries >= 0)
		json_object_set_new(m, "retries", json_integer(retries));
	return session_call(ctl, m, reply_frame, NULL);
}

int
cmd_unschedule(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	json_t *m;
	int rc;

	if ((rc = ctl_args(e, argc, argv, 2)) != CTL_RUNNING)
		return rc;
	m = json_pack("{s:s, s:s, s:s}", "type", "unschedule", "job_type", argv[optind],
	    "name", argv[optind + 1]);
	if (m == NULL) {
		ctl_warn("the type or name is not valid UTF-8");
		return CTL_USAGE;
	}
	return session_call(ctl, m, reply_frame, NULL);
}

/* schedules_frame: the listing, one line a schedule (or JSON: arg). */
static int
schedules_frame(struct session *s, const char *p, size_t len)
{
	bool json = *(bool *)s->arg;
	json_t *m, *v;
	size_t i;
	int rc = CTL_OK;

	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	if (json_object_get(m, "error") != NULL)
		rc = ctl_report(m);
	else if (json)
		rc = ctl_print(NULL, m, JSON_COMPACT);
	else
		json_array_foreach(json_object_get(m, "schedules"), i, v) {
			json_t *next = json_object_get(v, "next");
			char when[32] = "-", spec[64];
			time_t t;
			struct tm tm;

			if (json_is_integer(next)) {
				t = (time_t)(json_integer_value(next) / 1000);
				gmtime_r(&t, &tm);
				strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
			}
			if (json_object_get(v, "cron") != NULL)
				snprintf(spec, sizeof spec, "cron=%s",
				    json_string_value(json_object_get(v, "cron")));
			else
				snprintf(spec, sizeof spec, "every=%" JSON_INTEGER_FORMAT "ms",
				    json_integer_value(json_object_get(v, "every")));
			printf("%s\t%s\t%s\t%s\n",
			    json_string_value(json_object_get(v, "job_type")),
			    json_string_value(json_object_get(v, "name")), spec, when);
		}
	fflush(stdout);
	json_decref(m);
	return rc;
}

int
cmd_schedules(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	bool json = false;
	json_t *m;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c != 'j')
			return ctl_usage(e, c == 'h');
		json = true;
	}
	if (argc - optind > 1)
		return ctl_usage(e, false);
	m = argc - optind == 1 ?
	    json_pack("{s:s, s:s}", "type", "schedules", "job_type", argv[optind]) :
	    json_pack("{s:s}", "type", "schedules");
	if (m == NULL) {
		ctl_warn("the type is not valid UTF-8");
		return CTL_USAGE;
	}
	return session_call(ctl, m, schedules_frame, &json);
}
