/*
 * jobctl_ending.c — a job's ending, judged for a script: the result is
 * printed and exits 0; a job that failed, was cancelled, timed out or is
 * dead exits with a status of its own (jobctl.h, jobctl(1)), and a failure
 * prints its last error: what the command exited with, and the tail of its
 * standard error.  submit and wait share it; wait follows several jobs on
 * one connection.
 *
 * A job_failed frame carries "last_error" only for a master that used the
 * lifecycle options, so the failed job's status is asked for next: its
 * "error" is the last error, and its "retries" tell failed (no retries)
 * from dead (every retry used).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/jobctl.h"

#define TAIL_LINES	10	/* of a failed command's stderr, at most */
#define TAIL_BYTES	2048

/* ending_key: a job id as text: a string bare, a number as written. */
static char *
ending_key(const json_t *id)
{
	return ctl_text(id);
}

/* endings_init: one entry per distinct id (a repeated id is waited for
 * once). */
void
endings_init(struct endings *es, char **ids, size_t n, bool prefix)
{
	size_t i, k;

	memset(es, 0, sizeof *es);
	es->e = xcalloc(n > 0 ? n : 1, sizeof *es->e);
	es->prefix = prefix;
	for (i = 0; i < n; i++) {
		for (k = 0; k < es->n; k++)
			if (strcmp(es->e[k].key, ids[i]) == 0)
				break;
		if (k < es->n)
			continue;
		es->e[es->n].key = xstrdup(ids[i]);
		es->e[es->n].status = CTL_RUNNING;
		es->n++;
	}
	es->open = es->n;
}

void
endings_free(struct endings *es)
{
	size_t i;

	for (i = 0; i < es->n; i++) {
		free(es->e[i].key);
		json_decref(es->e[i].failed);
	}
	free(es->e);
	es->e = NULL;
	es->n = es->open = 0;
}

/* ctl_worst: the status of several jobs together: the highest. */
int
ctl_worst(int a, int b)
{
	return a > b ? a : b;
}

static struct ending *
endings_find(struct endings *es, const json_t *id)
{
	struct ending *found = NULL;
	char *key;
	size_t i;

	if (id == NULL)
		return NULL;
	key = ending_key(id);
	for (i = 0; i < es->n && found == NULL; i++)
		if (es->e[i].status == CTL_RUNNING && strcmp(es->e[i].key, key) == 0)
			found = &es->e[i];
	free(key);
	return found;
}

/* ending_tail: the last TAIL_LINES lines (TAIL_BYTES at most) of a
 * command's stderr, each as its own line of ours. */
static void
ending_tail(const char *s)
{
	size_t len = strlen(s), start, lines = 0;
	const char *p, *nl;

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	if (len == 0)
		return;
	start = len;
	while (start > 0 && len - start < TAIL_BYTES) {
		if (s[start - 1] == '\n' && ++lines == TAIL_LINES)
			break;
		start--;
	}
	for (p = s + start; p < s + len; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(s + len - p));
		if (nl == NULL)
			nl = s + len;
		ctl_warn("stderr: %.*s", (int)(nl - p), p);
	}
}

/* ending_describe: a last error in words: the worker's report of a failed
 * command ({"error":..,"status":N|"signal":N|"exit":N,"stderr":..}) as
 * "command failed, exit status N", anything else as compact JSON. */
static char *
ending_describe(const json_t *err)
{
	const char *what;
	char *text, *s;
	json_t *v;

	if (!json_is_object(err)) {
		text = ctl_text(err);
		if (strlen(text) > TAIL_BYTES)
			strcpy(text + TAIL_BYTES - 3, "...");
		return text;
	}
	what = json_string_value(json_object_get(err, "error"));
	if ((v = json_object_get(err, "status")) != NULL && json_is_integer(v))
		s = xprintf("exit status %lld", (long long)json_integer_value(v));
	else if ((v = json_object_get(err, "exit")) != NULL && json_is_integer(v))
		s = xprintf("exit status %lld", (long long)json_integer_value(v));
	else if ((v = json_object_get(err, "signal")) != NULL && json_is_integer(v))
		s = xprintf("killed by signal %lld", (long long)json_integer_value(v));
	else if (what != NULL)
		return xstrdup(what);
	else {
		text = json_dumps(err, JSON_OUT);
		if (text == NULL)
			return xstrdup("?");
		if (strlen(text) > TAIL_BYTES)
			strcpy(text + TAIL_BYTES - 3, "...");
		s = xstrdup(text);
		free(text);
		return s;
	}
	if (what != NULL) {
		text = xprintf("%s, %s", what, s);
		free(s);
		return text;
	}
	return s;
}

/*
 * ending_failed: a failed job's report.  frame is its job_failed frame,
 * info its status (NULL if the daemon no longer has it).  The first line is
 * the frame's, as for any error; then how it failed and its last error.
 */
static int
ending_failed(struct ending *e, const json_t *frame, const json_t *info)
{
	const json_t *err = json_object_get(frame, "last_error");
	json_t *retries = json_object_get(info, "retries");
	json_t *attempts = json_object_get(info, "attempts_total");
	json_t *losses = json_object_get(info, "losses");
	const char *stderr_text;
	char *why = NULL, *after = NULL;
	bool dead;

	ctl_report(frame);
	if (err == NULL)
		err = json_object_get(info, "error");
	dead = json_is_integer(retries) && json_integer_value(retries) > 0;
	if (err != NULL)
		why = ending_describe(err);
	else if (json_is_integer(losses) && json_integer_value(losses) > 0)
		why = xprintf("no error reported (its worker was lost %lld "
		    "time%s)", (long long)json_integer_value(losses),
		    json_integer_value(losses) == 1 ? "" : "s");
	else
		why = xstrdup("no error reported");
	if (json_is_integer(attempts) && json_integer_value(attempts) > 0)
		after = xprintf(" after %lld attempt%s",
		    (long long)json_integer_value(attempts),
		    json_integer_value(attempts) == 1 ? "" : "s");
	ctl_warn("job %s %s%s: %s", e->key, dead ? "dead" : "failed",
	    after != NULL ? after : "", why);
	free(after);
	free(why);
	if (json_is_object(err) &&
	    (stderr_text = json_string_value(json_object_get(err, "stderr"))) != NULL)
		ending_tail(stderr_text);
	return dead ? CTL_DEAD : CTL_FAILED;
}

/* ending_close: e has its status; the command ends with the worst once
 * every job has one. */
static int
ending_close(struct endings *es, struct ending *e, int status)
{
	size_t i;
	int worst = CTL_OK;

	e->status = status;
	json_decref(e->failed);
	e->failed = NULL;
	if (--es->open > 0)
		return CTL_RUNNING;
	for (i = 0; i < es->n; i++)
		worst = ctl_worst(worst, es->e[i].status);
	return worst;
}

/*
 * endings_frame: one frame from the daemon for the jobs followed: a result
 * (printed), an ending error, or the status asked after a job_failed.
 * CTL_RUNNING until every job has ended; then the worst status.  Frames
 * for no job followed (partials of others, pongs) are passed over; an
 * error naming no job ends the command.
 */
int
endings_frame(struct session *s, struct endings *es, json_t *m)
{
	json_t *id = json_object_get(m, "id"), *body, *err;
	const char *code, *state;
	struct ending *e;
	char *text;
	int rc;

	err = json_object_get(m, "error");
	if ((e = endings_find(es, id)) == NULL)
		return err != NULL && id == NULL ? ctl_report(m) : CTL_RUNNING;
	state = json_string_value(json_object_get(m, "status"));
	if (e->failed != NULL) {
		/* the answer to the status asked after its job_failed: its
		 * info, or an error if the daemon no longer has the job */
		if (state == NULL && err == NULL)
			return CTL_RUNNING;
		rc = ending_failed(e, e->failed, state != NULL ? m : NULL);
		return ending_close(es, e, rc);
	}
	if (json_is_true(json_object_get(m, "partial")) || state != NULL)
		return CTL_RUNNING;
	code = json_string_value(err);
	body = json_object_get(m, "body");
	if (code != NULL && strcmp(code, "job_failed") == 0) {
		e->failed = json_incref(m);
		session_send(s, json_pack("{s:s, s:O}", "type", "status", "id", id));
		return CTL_RUNNING;
	}
	if (err != NULL) {
		ctl_report(m);
		rc = code == NULL ? CTL_FAIL :
		    strcmp(code, "cancelled") == 0 ? CTL_CANCELLED :
		    strcmp(code, "timeout") == 0 ? CTL_TIMEDOUT : CTL_FAIL;
		return ending_close(es, e, rc);
	}
	if (body == NULL)
		return CTL_RUNNING;
	text = es->prefix ? ending_key(id) : NULL;
	rc = ctl_print(text, body, JSON_OUT);
	free(text);
	return ending_close(es, e, rc);
}
