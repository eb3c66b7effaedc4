/*
 * web_sched.c — repeating jobs over REST (the TCP face's schedule,
 * unschedule and schedules):
 *
 *   GET    /schedules               every schedule: {"schedules":[...]}
 *   GET    /types/T/schedules       T's
 *   GET    /types/T/schedules/N     one (404 unknown_schedule)
 *   PUT    /types/T/schedules/N     add or replace: a JSON object with
 *                                   "cron" or "every" (ms), and optionally
 *                                   "body", "priority", "retries"; 200 with
 *                                   the schedule, once the store kept it
 *   DELETE /types/T/schedules/N     remove it (404 unknown_schedule)
 *
 * They are the daemon's own paths (an admin token under --auth), and PUT
 * and DELETE pass the guard against cross-site requests as POST does.
 */
#include <stdlib.h>
#include <string.h>

#include "web/web_int.h"

static const char *const no_args[] = { NULL };

static bool
method_in(struct wreq *r, const char *allow)
{
	const char *m = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
	size_t n = strlen(m);
	const char *p;

	for (p = allow; (p = strstr(p, m)) != NULL; p += n)
		if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
			return true;
	web_error(r, 405, "method_not_allowed", NULL, "%s %s: allowed: %s",
	    r->method, r->url, allow);
	r->headers = json_pack("{s:s}", "Allow", allow);
	return false;
}

static void
put_schedule(struct wreq *r, const char *type, const char *name)
{
	struct broker *b = r->web->srv->broker;
	json_t *o = json_loadb(buf_head(&r->body), buf_used(&r->body), 0, NULL), *v;
	struct sched_req q = { 0 };
	enum broker_err err;
	char *body = NULL;

	if (!json_is_object(o)) {
		web_error(r, 400, "invalid_json", NULL, "the request body must be "
		    "a JSON object: {\"cron\":EXPR} or {\"every\":MS}, and optionally "
		    "\"body\", \"priority\", \"retries\"");
		json_decref(o);
		return;
	}
	q.type = type;
	q.name = name;
	if ((v = json_object_get(o, "cron")) != NULL && !json_is_string(v)) {
		web_error(r, 400, "invalid_type", NULL, "\"cron\" must be a string");
		goto out;
	}
	q.cron = json_string_value(v);
	if ((v = json_object_get(o, "every")) != NULL &&
	    (!json_is_integer(v) || json_integer_value(v) <= 0)) {
		web_error(r, 400, "invalid_type", NULL, "\"every\" must be a positive "
		    "number of milliseconds");
		goto out;
	}
	q.every_ms = json_integer_value(v);
	if ((v = json_object_get(o, "priority")) != NULL && !json_is_integer(v)) {
		web_error(r, 400, "invalid_type", NULL, "\"priority\" must be an integer");
		goto out;
	}
	q.priority = json_integer_value(v);
	if ((v = json_object_get(o, "retries")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > LIFE_RETRIES_MAX) {
			web_error(r, 400, "invalid_type", NULL, "\"retries\" must be 0 to %d",
			    LIFE_RETRIES_MAX);
			goto out;
		}
		q.retries_set = true;
		q.retries = json_integer_value(v);
	}
	if ((v = json_object_get(o, "body")) != NULL) {
		body = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		q.body = body;
		q.body_len = strlen(body);
	}
	if ((err = broker_schedule(b, &q)) != BERR_OK) {
		if (err == BERR_UNAVAILABLE)
			web_error(r, 503, "unavailable", NULL, "%s", broker_err_detail(b));
		else
			web_error(r, 400, "invalid_type", NULL, "%s", broker_err_detail(b));
		goto out;
	}
	web_reply_json(r, 200, broker_schedule_get(b, type, name));
	web_gate(r);
out:
	free(body);
	json_decref(o);
}

static void
one_schedule(struct wreq *r, const char *type, const char *name)
{
	struct broker *b = r->web->srv->broker;
	json_t *o;

	if (!web_args_known(r, no_args) || !method_in(r, "GET, PUT, DELETE"))
		return;
	if (strcmp(r->method, "PUT") == 0) {
		put_schedule(r, type, name);
		return;
	}
	if (strcmp(r->method, "DELETE") == 0) {
		enum broker_err err = broker_unschedule(b, type, name);

		if (err == BERR_UNAVAILABLE)
			web_error(r, 503, "unavailable", NULL, "%s", broker_err_detail(b));
		else if (err != BERR_OK)
			web_error(r, 404, "unknown_schedule", NULL, "type %s has no "
			    "schedule named %s", type, name);
		else {
			web_reply_json(r, 200, json_pack("{s:i,s:s,s:s}", "unscheduled", 1,
			    "job_type", type, "name", name));
			web_gate(r);
		}
		return;
	}
	if ((o = broker_schedule_get(b, type, name)) == NULL)
		web_error(r, 404, "unknown_schedule", NULL, "type %s has no schedule "
		    "named %s", type, name);
	else
		web_reply_json(r, 200, o);
}

/* sched_route: the paths above; false if path is none of them. */
bool
sched_route(struct wreq *r, const char *path)
{
	struct broker *b = r->web->srv->broker;
	const char *slash, *rest;
	char *type;

	if (strcmp(path, "/schedules") == 0) {
		if (web_args_known(r, no_args) && method_in(r, "GET"))
			web_reply_json(r, 200, json_pack("{s:o}", "schedules",
			    broker_schedules(b, NULL)));
		return true;
	}
	if (strncmp(path, "/types/", 7) != 0 ||
	    (slash = strchr(path + 7, '/')) == NULL || slash == path + 7 ||
	    strncmp(slash, "/schedules", 10) != 0 ||
	    (slash[10] != '\0' && slash[10] != '/'))
		return false;
	type = xstrndup(path + 7, (size_t)(slash - path - 7));
	rest = slash + 10;
	if (!type_name_valid(type, strlen(type)))
		web_error(r, 400, "invalid_type", NULL, "a type is 1 to %d bytes of "
		    "UTF-8 without /, NUL or control characters, and not . or ..", ID_MAX);
	else if (*rest == '\0' || strcmp(rest, "/") == 0) {
		if (web_args_known(r, no_args) && method_in(r, "GET"))
			web_reply_json(r, 200, json_pack("{s:o}", "schedules",
			    broker_schedules(b, type)));
	} else if (strchr(rest + 1, '/') != NULL)
		web_error(r, 404, "not_found", NULL, "no such path: %s", r->url);
	else
		one_schedule(r, type, rest + 1);
	free(type);
	return true;
}
