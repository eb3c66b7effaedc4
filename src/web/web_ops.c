/*
 * web_ops.c — the operator's REST actions and reads, those the dashboard's
 * buttons call (the TCP face's kick, pause and resume; the tree's dead/):
 *
 *   POST /jobs/ID/kick        queue one dead job again
 *   POST /types/T/kick        queue every dead job of T again
 *   POST /types/T/pause       T dispatches nothing (it still takes jobs)
 *   POST /types/T/resume      T dispatches again
 *   GET  /types/T/dead        T's dead set, oldest first (?limit, 100 by default)
 *   GET  /failures            the latest failed endings, newest first
 *
 * They are the daemon's own paths: under --auth they need an admin token
 * and, changing state, pass the guard against cross-site requests
 * (web_req.c's head_gate) as every other POST does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "web/web_int.h"

#define FAILURES_KEPT 100
#define DEAD_LIST_MAX 1000

static const char *const no_args[] = { NULL };
static const char *const dead_args[] = { "limit", NULL };

static json_t *
id_value(const struct job *j)
{
	return json_loads(job_idjson(j), JSON_DECODE_ANY, NULL);
}

/* error_value: a job's last error, as JSON (a string if not JSON). */
static json_t *
error_value(const struct job *j)
{
	json_t *v;

	if (j->life == NULL || j->life->error == NULL)
		return json_null();
	v = json_loads(j->life->error, JSON_DECODE_ANY, NULL);
	return v != NULL ? v : json_string(j->life->error);
}

/*
 * ops_job_finished: a job ended; a failed ending (failed: in the dead set,
 * or timeout)
 * is kept among the last FAILURES_KEPT, so that a page opened later still
 * shows what failed before it was opened.
 */
void
ops_job_finished(struct web *w, struct job *j)
{
	json_t *f;

	if (j->state != JOB_FAILED && j->state != JOB_TIMEOUT)
		return;
	if (w->failures == NULL)
		w->failures = json_array();
	f = json_pack("{s:o, s:s, s:s, s:s?, s:f, s:o}", "id", id_value(j),
	    "type", j->type->name,
	    "state", job_state_name(j->state),
	    "worker", j->worker_name, "time", now_wall(), "error", error_value(j));
	if (f == NULL)
		return;
	json_array_insert_new(w->failures, 0, f);
	while (json_array_size(w->failures) > FAILURES_KEPT)
		json_array_remove(w->failures, FAILURES_KEPT);
}

void
ops_free(struct web *w)
{
	json_decref(w->failures);
	w->failures = NULL;
}

static void
not_allowed(struct wreq *r, const char *allow)
{
	web_error(r, 405, "method_not_allowed", NULL, "%s %s: allowed: %s",
	    r->method, r->url, allow);
	r->headers = json_pack("{s:s}", "Allow", allow);
}

static bool
method_ok(struct wreq *r, const char *m)
{
	if (strcmp(r->method, m) == 0 ||
	    (strcmp(m, "GET") == 0 && strcmp(r->method, "HEAD") == 0))
		return true;
	not_allowed(r, m);
	return false;
}

/* kick_job: POST /jobs/KEY/kick. */
static void
kick_job(struct wreq *r, const char *key)
{
	struct broker *b = r->web->srv->broker;
	struct job *j = broker_find(b, key);
	char *idjson;

	if (!web_args_known(r, no_args) || !method_ok(r, "POST"))
		return;
	if (j == NULL) {
		idjson = web_idjson(key);
		web_error(r, 404, "unknown_id", idjson, "no job has id %s", idjson);
		free(idjson);
		return;
	}
	if (broker_kick(b, j) != BERR_OK) {
		web_error(r, 409, "invalid_state", job_idjson(j), "job %s is %s, "
		    "not dead", job_idjson(j), job_status(j));
		return;
	}
	web_reply_json(r, 200, json_pack("{s:i, s:o, s:s}", "kicked", 1, "id",
	    id_value(j), "status", job_status(j)));
	web_gate(r);
}

struct dead_view {
	json_t *arr;
	size_t  n, max;
};

static bool
add_dead(void *ctx, struct job *j)
{
	struct dead_view *v = ctx;
	json_t *o;

	if (v->n++ >= v->max)
		return false;
	o = json_pack("{s:o, s:f, s:I, s:o}", "id", id_value(j),
	    "finished", job_finished(j),
	    "failures", (json_int_t)(j->life != NULL ? j->life->failures : 0),
	    "error", error_value(j));
	json_array_append_new(v->arr, o);
	return true;
}

/* type_action: POST /types/T/{kick,pause,resume}, GET /types/T/dead. */
static void
type_action(struct wreq *r, const char *name, const char *what)
{
	struct broker *b = r->web->srv->broker;
	struct jtype *t;
	bool paused;

	if (strcmp(what, "dead") == 0) {
		struct dead_view v = { json_array(), 0, 100 };
		int64_t limit = 100;
		const char *s;
		char *end;

		if (!web_args_known(r, dead_args) || !method_ok(r, "GET")) {
			json_decref(v.arr);
			return;
		}
		if ((s = web_arg(r, "limit")) != NULL) {
			errno = 0;
			limit = strtoll(s, &end, 10);
			if (*s == '\0' || *end != '\0' || errno != 0 || limit < 1 ||
			    limit > DEAD_LIST_MAX) {
				json_decref(v.arr);
				web_error(r, 400, "invalid_type", NULL, "query parameter "
				    "\"limit\" must be an integer from 1 to %d",
				    DEAD_LIST_MAX);
				return;
			}
		}
		v.max = (size_t)limit;
		t = broker_type(b, name, false);
		if (t != NULL)
			broker_dead_each(b, t, add_dead, &v);
		web_reply_json(r, 200, json_pack("{s:s, s:I, s:o}", "type", name,
		    "dead", (json_int_t)(t != NULL ? t->ndead : 0), "jobs", v.arr));
		return;
	}
	if (!web_args_known(r, no_args) || !method_ok(r, "POST"))
		return;
	if (!type_name_valid(name, strlen(name))) {
		web_error(r, 400, "invalid_type", NULL, "a type is 1 to %d bytes of "
		    "UTF-8 without /, NUL or control characters, and not . or ..",
		    ID_MAX);
		return;
	}
	if (strcmp(what, "kick") == 0) {
		size_t n = 0;

		if ((t = broker_type(b, name, false)) != NULL)
			n = broker_kick_type(b, t);
		web_reply_json(r, 200, json_pack("{s:I, s:s}", "kicked",
		    (json_int_t)n, "type", name));
		web_gate(r);
		return;
	}
	paused = strcmp(what, "pause") == 0;
	/* Pausing makes the type (a setting kept while it is set); resuming
	 * one that does not exist changes nothing. */
	if ((t = broker_type(b, name, paused)) != NULL)
		broker_type_pause(b, t, paused);
	t = broker_type(b, name, false);
	web_reply_json(r, 200, json_pack("{s:s, s:b}", "type", name, "paused",
	    t != NULL && t->paused));
	web_gate(r);
}

/* ops_route: the paths above; false if path is none of them. */
bool
ops_route(struct wreq *r, const char *path)
{
	static const char *const type_ops[] = { "kick", "pause", "resume", "dead" };
	size_t n = strlen(path), i, sl;
	const char *slash;

	if (strcmp(path, "/failures") == 0) {
		if (web_args_known(r, no_args) && method_ok(r, "GET"))
			web_reply_json(r, 200, json_pack("{s:o}", "failures",
			    r->web->failures != NULL ? json_incref(r->web->failures) :
			    json_array()));
		return true;
	}
	if (strncmp(path, "/jobs/", 6) == 0 && n > 6 + 5 &&
	    strcmp(path + n - 5, "/kick") == 0) {
		char *key = xstrndup(path + 6, n - 6 - 5);

		kick_job(r, key);
		free(key);
		return true;
	}
	if (strncmp(path, "/types/", 7) != 0)
		return false;
	slash = strchr(path + 7, '/');
	if (slash == NULL || slash == path + 7)
		return false;
	for (i = 0; i < sizeof type_ops / sizeof type_ops[0]; i++) {
		sl = strlen(type_ops[i]);
		if (strncmp(slash + 1, type_ops[i], sl) == 0 && slash[1 + sl] == '\0') {
			char *name = xstrndup(path + 7, (size_t)(slash - path - 7));

			type_action(r, name, type_ops[i]);
			free(name);
			return true;
		}
	}
	return false;
}
