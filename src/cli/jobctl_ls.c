/*
 * jobctl_ls.c — ls: the jobs in a state, as a table or for scripts.
 *
 * One session asks the daemon's "list" request page after page (each page
 * goes on from the "next" of the one before) through the states asked
 * for, until --limit rows are printed or every listing ends.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/jobctl.h"

#define LS_PAGE 500   /* jobs asked for in one request */

enum ls_format { LS_TABLE, LS_PLAIN, LS_JSON };

struct ls {
	const char *const *states;   /* those still to list, NULL-terminated */
	const char *type;            /* NULL: every type */
	long long   left;            /* rows still to print; -1: no limit */
	enum ls_format format;
	bool        header_done;
	double      now;
};

/* ls_request: the next page of the state at l->states, after pos. */
static json_t *
ls_request(struct ls *l, const char *pos)
{
	long long n = l->left < 0 || l->left > LS_PAGE ? LS_PAGE : l->left;
	json_t *m = json_pack("{s:s, s:s, s:I}", "type", "list", "state",
	    l->states[0], "limit", n);

	if (l->type != NULL)
		json_object_set_new(m, "job_type", json_string(l->type));
	if (pos != NULL)
		json_object_set_new(m, "cursor", json_string(pos));
	return m;
}

/* ls_age: seconds as "12s", "5m", "3h", "2d". */
static void
ls_age(double secs, char *out, size_t len)
{
	long long s = secs > 0 ? (long long)secs : 0;

	if (s < 120)
		snprintf(out, len, "%llds", s);
	else if (s < 7200)
		snprintf(out, len, "%lldm", s / 60);
	else if (s < 172800)
		snprintf(out, len, "%lldh", s / 3600);
	else
		snprintf(out, len, "%lldd", s / 86400);
}

/* ls_last: the worker of a job that did not fail, else its last error
 * (its "error" object as the worker reported it), on one line. */
static char *
ls_last(const json_t *j)
{
	const json_t *e = json_object_get(j, "error");
	const char *state = json_string_value(json_object_get(j, "state"));
	const json_t *w = json_object_get(j, "worker");
	char *s, *p;

	if (e != NULL && state != NULL && (strcmp(state, "failed") == 0 ||
	    strcmp(state, "dead") == 0 || strcmp(state, "delayed") == 0))
		s = ctl_text(e);
	else if (json_is_string(w))
		s = xstrdup(json_string_value(w));
	else
		s = xstrdup("-");
	for (p = s; *p != '\0'; p++)
		if (*p == '\t' || *p == '\n' || *p == '\r')
			*p = ' ';
	return s;
}

/* ls_row: one job. */
static void
ls_row(struct ls *l, const json_t *j)
{
	const json_t *att = json_object_get(j, "attempts_total");
	char *id = ctl_text(json_object_get(j, "id")), *last = ls_last(j);
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *state = json_string_value(json_object_get(j, "state"));
	double age = l->now - json_number_value(json_object_get(j, "submitted"));
	long long attempts = json_is_integer(att) ? json_integer_value(att) :
	    json_object_get(j, "started") != NULL ? 1 : 0;
	char agebuf[32];

	if (l->format == LS_JSON) {
		ctl_print(NULL, j, JSON_OUT);
	} else if (l->format == LS_PLAIN) {
		printf("%s\t%s\t%s\t%.0f\t%lld\t%s\n", id, type ? type : "",
		    state ? state : "", age > 0 ? age : 0, attempts, last);
	} else {
		if (!l->header_done)
			printf("%-20s %-12s %-9s %5s %8s  %s\n", "ID", "TYPE", "STATE",
			    "AGE", "ATTEMPTS", "WORKER / LAST ERROR");
		l->header_done = true;
		ls_age(age, agebuf, sizeof agebuf);
		if (strlen(last) > 100)
			strcpy(last + 97, "...");
		printf("%-20s %-12s %-9s %5s %8lld  %s\n", id, type ? type : "",
		    state ? state : "", agebuf, attempts, last);
	}
	free(id);
	free(last);
}

/* ls_frame: a page: its rows, then the next page or the next state. */
static int
ls_frame(struct session *s, const char *p, size_t len)
{
	struct ls *l = s->arg;
	const json_t *jobs, *next, *j;
	json_t *m;
	size_t i;

	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	if (json_object_get(m, "error") != NULL) {
		int rc = ctl_report(m);

		json_decref(m);
		return rc;
	}
	jobs = json_object_get(m, "jobs");
	next = json_object_get(m, "next");
	if (!json_is_array(jobs)) {
		ctl_warn("unexpected reply to list");
		json_decref(m);
		return CTL_FAIL;
	}
	json_array_foreach(jobs, i, j) {
		if (l->left == 0)
			break;
		ls_row(l, j);
		if (l->left > 0)
			l->left--;
	}
	if (fflush(stdout) == EOF) {
		ctl_warn("stdout: %s", strerror(errno));
		json_decref(m);
		return CTL_FAIL;
	}
	if (l->left != 0 && json_is_string(next))
		session_send(s, ls_request(l, json_string_value(next)));
	else if (l->left != 0 && *++l->states != NULL)
		session_send(s, ls_request(l, NULL));
	else {
		json_decref(m);
		return CTL_OK;
	}
	json_decref(m);
	return CTL_RUNNING;
}

static bool
utf8_ok(const char *s)
{
	json_t *v = json_string(s);

	json_decref(v);
	return v != NULL;
}

/* cmd_ls: ls [--state S] [--type T] [--limit N] [--plain | --json]. */
int
cmd_ls(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "type",  required_argument, NULL, 't' },
		{ "limit", required_argument, NULL, 'n' },
		{ "plain", no_argument,       NULL, 'p' },
		{ "json",  no_argument,       NULL, 'j' },
		{ "help",  no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	/* Without --state, every job once: a dead job is listed as failed's. */
	static const char *const all[] = { "queued", "running", "delayed",
	    "waiting", "done", "failed", "cancelled", NULL };
	static const char *one[2];
	struct ls l = { all, NULL, 100, LS_TABLE, false, now_wall() };
	long long n;
	int c;

	while ((c = getopt_long(argc, argv, "s:t:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			one[0] = optarg;
			l.states = one;
			break;
		case 't':
			l.type = optarg;
			break;
		case 'n':
			if (ctl_number(optarg, 0, INT64_MAX, &n) < 0)
				return ctl_usage(e, false);
			l.left = n == 0 ? -1 : n;
			break;
		case 'p':
			l.format = LS_PLAIN;
			break;
		case 'j':
			l.format = LS_JSON;
			break;
		default:
			return ctl_usage(e, c == 'h');
		}
	}
	if (argc != optind)
		return ctl_usage(e, false);
	if ((l.type != NULL && !utf8_ok(l.type)) || !utf8_ok(l.states[0])) {
		ctl_warn("the type or state is not valid UTF-8");
		return CTL_USAGE;
	}
	return session_call(ctl, ls_request(&l, NULL), ls_frame, &l);
}
