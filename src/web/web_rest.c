/*
 * web_rest.c — the REST mirror of the tree, for programs that neither
 * mount it nor speak the TCP protocol:
 *
 *   POST   /types/T/jobs       submit (body = job body; ?priority ?timeout ?id
 *                               and the lifecycle's ?retries ?backoff ?delay
 *                               ?at ?after)
 *   GET    /jobs/ID            the info object
 *   GET    /jobs/ID/body       the job's body
 *   GET    /jobs/ID/log        what its command printed (text; empty: none)
 *   GET    /jobs/ID/response   wait for the ending (?wait=0: 202 if not yet)
 *   POST   /jobs/ID/cancel     end it (cancelled); it stays listed
 *   DELETE /jobs/ID            cancel and forget
 *   GET    /types, /types/T, /stats
 *
 * Errors carry the TCP protocol's codes.  A query parameter a path does
 * not take is refused (web_args_known).  A 201 and a result are held
 * until the store made them durable (web_gate).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "web/web_int.h"

static bool
method_is(struct wreq *r, const char *m)
{
	return strcmp(r->method, m) == 0 ||
	    (strcmp(m, "GET") == 0 && strcmp(r->method, "HEAD") == 0);
}

static void
not_allowed(struct wreq *r, const char *allow)
{
	web_error(r, 405, "method_not_allowed", NULL, "%s %s: allowed: %s",
	    r->method, r->url, allow);
	r->headers = json_pack("{s:s}", "Allow", allow);
}

/* arg_int: an optional integer query parameter; false if malformed. */
static bool
arg_int(struct wreq *r, const char *name, int64_t lo, int64_t *out)
{
	const char *s = web_arg(r, name);
	char *end;
	long long v;

	if (s == NULL)
		return true;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < lo) {
		web_error(r, 400, "invalid_type", NULL,
		    "query parameter \"%s\" must be an integer%s", name,
		    lo == 0 ? " >= 0" : "");
		return false;
	}
	*out = v;
	return true;
}

/* location: /jobs/KEY with KEY percent-encoded (all but RFC 3986's
 * unreserved characters), fit for a header. */
static char *
location(const char *key)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b = { 0 };
	const unsigned char *p;
	char esc[3] = { '%', 0, 0 };

	buf_append_str(&b, "/jobs/");
	for (p = (const unsigned char *)key; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL) {
			buf_append(&b, p, 1);
		} else {
			esc[1] = hex[*p >> 4];
			esc[2] = hex[*p & 15];
			buf_append(&b, esc, 3);
		}
	}
	buf_append(&b, "", 1);
	return b.data;
}

/* The query parameters each path takes (web_args_known refuses others). */
static const char *const no_args[] = { NULL };
static const char *const response_args[] = { "wait", NULL };
static const char *const type_args[] = { "queue", NULL };

/* The query parameters of POST /types/T/jobs: those of a TCP submit. */
static const char *const submit_args[] = {
	"id", "priority", "timeout", "retries", "backoff", "delay", "at",
	"after", NULL,
};

struct after_args {
	const char **after;
	char (*keys)[ID_MAX + 1];
	size_t n;
	bool bad;
};

static enum MHD_Result
after_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct after_args *a = cls;
	size_t len;

	(void)kind;
	if (strcmp(key, "after") != 0)
		return MHD_YES;
	len = value != NULL ? strlen(value) : 0;
	if (a->n >= LIFE_AFTER_MAX || len == 0 || len > ID_MAX ||
	    !id_valid(value, len)) {
		a->bad = true;
		return MHD_NO;
	}
	memcpy(a->keys[a->n], value, len + 1);
	a->after[a->n] = a->keys[a->n];
	a->n++;
	return MHD_YES;
}

/*
 * life_args: the lifecycle options of a REST submit, as a TCP submit's
 * fields: retries, backoff, delay, at (integers, their ranges the
 * broker's to check) and after (one job id per parameter, repeated for
 * several).  False: r is answered 400.
 */
static bool
life_args(struct wreq *r, struct submit_req *req, const char **after,
    char (*keys)[ID_MAX + 1])
{
	struct after_args a = { after, keys, 0, false };

	if (!arg_int(r, "retries", INT64_MIN, &req->retries) ||
	    !arg_int(r, "backoff", INT64_MIN, &req->backoff_ms) ||
	    !arg_int(r, "delay", INT64_MIN, &req->delay_ms) ||
	    !arg_int(r, "at", INT64_MIN, &req->at_ms))
		return false;
	req->retries_set = web_arg(r, "retries") != NULL;
	if (web_arg(r, "backoff") != NULL && req->backoff_ms == 0)
		req->backoff_ms = -1;   /* refused by the broker, as over TCP */
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, after_arg, &a);
	if (a.bad) {
		web_error(r, 400, "invalid_type", NULL, "\"after\" names one job id "
		    "per parameter, at most %d of them", LIFE_AFTER_MAX);
		return false;
	}
	req->after = after;
	req->nafter = a.n;
	return true;
}

/*
 * web_refused: the answer to a broker refusal: its HTTP status and error
 * for every code (no default: -Wswitch finds a code missed here), with the
 * broker's reason.
 */
void
web_refused(struct wreq *r, struct broker *b, enum broker_err err, const char *idjson)
{
	unsigned status = 503;
	const char *code = "unavailable";

	switch (err) {
	case BERR_OK:
	case BERR_PENDING:
		return;   /* not refusals */
	case BERR_ID_EXISTS:
		status = 409, code = "id_exists";
		break;
	case BERR_UNKNOWN_ID:
		status = 400, code = "unknown_id";
		break;
	case BERR_FULL_JOBS:
	case BERR_FULL_MEMORY:
		status = 503, code = "full";
		break;
	case BERR_UNAVAILABLE:
		status = 503, code = "unavailable";
		break;
	case BERR_SELF:
	case BERR_INVALID:   /* a lifecycle value out of its range */
		status = 400, code = "invalid_type";
		break;
	case BERR_STATE:
		status = 409, code = "invalid_state";
		break;
	}
	web_error(r, status, code, idjson, "%s", broker_err_reason(b, err));
}

static void
submit(struct wreq *r, const char *type)
{
	static char akeys[LIFE_AFTER_MAX][ID_MAX + 1];
	const char *after[LIFE_AFTER_MAX];
	struct broker *b = r->web->srv->broker;
	struct submit_req req = { 0 };
	struct buf body = { 0 };
	const char *key = web_arg(r, "id");
	char err[256], *idjson = NULL, *loc;
	struct job *j = NULL;
	enum broker_err berr;
	json_t *o;
	size_t tlen = strlen(type);

	if (!type_name_valid(type, tlen)) {
		web_error(r, 400, "invalid_type", NULL,
		    "a type is 1 to %d bytes of UTF-8 without /, NUL or control "
		    "characters, and not . or ..", ID_MAX);
		return;
	}
	if (key != NULL && !id_valid(key, strlen(key))) {
		web_error(r, 400, "invalid_type", NULL,
		    "\"id\" must be 1 to %d bytes of UTF-8 without NUL, and at "
		    "most %d as a file name", ID_MAX, ID_MAX);
		return;
	}
	if (!web_args_known(r, submit_args) ||
	    !arg_int(r, "priority", INT64_MIN, &req.priority) ||
	    !arg_int(r, "timeout", 0, &req.timeout_ms) ||
	    !life_args(r, &req, after, akeys))
		return;
	if (buf_used(&r->body) == 0 || msg_json_compact(bhead(&r->body),
	    buf_used(&r->body), &body, err, sizeof err) < 0) {
		web_error(r, 400, "invalid_json", NULL, "the request body is the "
		    "job body and must be JSON: %s", buf_used(&r->body) ? err : "empty");
		buf_free(&body);
		return;
	}
	if (key != NULL)
		idjson = web_idjson(key);
	req.type = type;
	req.key = key;
	req.idjson = idjson;
	req.body = bhead(&body);
	req.body_len = buf_used(&body);
	berr = broker_submit(b, &req, &j);
	if (berr == BERR_OK || berr == BERR_PENDING) {
		/* (cluster mode: web_gate waits for Redis's answer) */
		o = json_pack("{s:o}", "id", json_loads(job_idjson(j), JSON_DECODE_ANY, NULL));
		web_reply_json(r, 201, o);
		loc = location(j->key);
		r->headers = json_pack("{s:s}", "Location", loc);
		free(loc);
		web_gate(r);
	} else
		web_refused(r, b, berr, idjson);
	free(idjson);
	buf_free(&body);
}

/* answer_ending: the answer for a finished job, as GET .../response. */
static void
answer_ending(struct wreq *r, struct job *j)
{
	switch (j->state) {
	case JOB_DONE: {
		struct buf b = { 0 };

		if (j->dropped) {
			web_error(r, 410, "result_dropped", job_idjson(j), "the result "
			    "of %s is no longer kept (--keep-bytes)", j->key);
			break;
		}

		buf_append(&b, j->result->data, j->result_len);
		buf_append(&b, "\n", 1);
		web_reply(r, 200, "application/json", bhead(&b), buf_used(&b));
		buf_free(&b);
		break;
	}
	case JOB_CANCELLED:
		web_error(r, 409, "cancelled", job_idjson(j), "%s", j->key);
		break;
	case JOB_TIMEOUT:
		web_error(r, 504, "timeout", job_idjson(j), "%s", j->key);
		break;
	default:
		web_error(r, 500, "job_failed", job_idjson(j), "%s", j->key);
		break;
	}
}

static void
job_response(struct wreq *r, struct job *j)
{
	const char *wait = web_arg(r, "wait");

	if (JOB_FINISHED(j)) {
		answer_ending(r, j);
		web_gate(r);
		return;
	}
	if (wait != NULL && strcmp(wait, "0") == 0) {
		web_reply_json(r, 202, json_pack("{s:o, s:s}", "id",
		    json_loads(job_idjson(j), JSON_DECODE_ANY, NULL),
		    "status", job_state_name(j->state)));
		return;
	}
	job_ref(j);
	r->job = j;
	web_park(r, WAIT_JOB);
}

/* rest_job_finished: long-polls on j get their answer. */
void
rest_job_finished(struct web *w, struct job *j)
{
	struct wreq *r, *next;

	TAILQ_FOREACH_SAFE(r, &w->parked, entry, next) {
		if (r->job != j || r->route || r->wait != WAIT_JOB)
			continue;
		answer_ending(r, j);
		web_gate(r);
	}
}

/* The paths below /jobs/ID: the job itself, or one of these. */
enum job_path { JP_JOB, JP_RESPONSE, JP_BODY, JP_CANCEL, JP_LOG };

static void jobs_path_found(struct wreq *, const char *, bool asked);

/*
 * Cluster mode: /jobs/ID of a job this daemon does not know may be another
 * daemon's: the request waits (WAIT_LOOKUP) while Redis is asked
 * (broker_lookup, which makes a local view of it), then is answered as if
 * it had been known.  A client that goes meanwhile leaves the record
 * behind for the answer to free (web_ask_gone).
 */
struct web_ask {
	struct wreq *r;          /* NULL once the request went */
	char         rest[];
};

void
web_ask_gone(struct wreq *r)
{
	r->ask->r = NULL;
	r->ask = NULL;
}

static void
ask_found(void *ctx, struct job *j, int berr)
{
	struct web_ask *a = ctx;
	struct wreq *r = a->r;

	(void)j;
	if (r != NULL) {
		r->ask = NULL;
		web_unpark(r);
		if (berr != BERR_OK)
			web_error(r, 503, "unavailable", NULL, "%s",
			    broker_store_reason(r->web->srv->broker));
		else
			jobs_path_found(r, a->rest, true);
		if (r->wait == WAIT_NONE)
			web_wake(r);   /* answered: resume (a long poll stays parked) */
	}
	free(a);
}

/* job_log_reply: the job's log as its command printed it (jobctl work
 * sends the last 64 KiB of its stderr); empty if it has none (yet). */
static void
job_log_reply(struct wreq *r, const struct job *j)
{
	size_t n;
	const char *log = job_log(j, &n);

	web_reply(r, 200, "text/plain; charset=utf-8", log != NULL ? log : "", n);
}

static void
jobs_path(struct wreq *r, const char *rest)
{
	jobs_path_found(r, rest, false);
}

static void
jobs_path_found(struct wreq *r, const char *rest, bool asked)
{
	static const struct { const char *suffix; enum job_path what; const char *allow; } sub[] = {
		{ "/response", JP_RESPONSE, "GET" },
		{ "/body", JP_BODY, "GET" },
		{ "/cancel", JP_CANCEL, "POST" },
		{ "/log", JP_LOG, "GET" },
	};
	struct broker *b = r->web->srv->broker;
	size_t n = strlen(rest), i, sl;
	enum job_path what = JP_JOB;
	const char *allow = "GET, DELETE";
	struct job *j;
	char *key, *idjson;

	for (i = 0; i < sizeof sub / sizeof sub[0]; i++) {
		sl = strlen(sub[i].suffix);
		if (n > sl && strcmp(rest + n - sl, sub[i].suffix) == 0) {
			what = sub[i].what;
			allow = sub[i].allow;
			n -= sl;
			break;
		}
	}
	if (!asked && !web_args_known(r, what == JP_RESPONSE ? response_args : no_args))
		return;
	key = xstrndup(rest, n);
	j = broker_find(b, key);
	if (j == NULL && !asked && broker_shared(b)) {
		struct web_ask *a = xmalloc(sizeof *a + strlen(rest) + 1);

		a->r = r;
		strcpy(a->rest, rest);
		r->ask = a;
		web_park(r, WAIT_LOOKUP);
		broker_lookup(b, key, ask_found, a);
		free(key);
		return;
	}
	if (what == JP_JOB ? !method_is(r, "GET") && !method_is(r, "DELETE") :
	    !method_is(r, allow)) {
		not_allowed(r, allow);
	} else if (j == NULL) {
		idjson = web_idjson(key);
		web_error(r, 404, "unknown_id", idjson, "no job has id %s", idjson);
		free(idjson);
	} else if (what == JP_RESPONSE) {
		job_response(r, j);
	} else if (what == JP_BODY && j->dropped) {
		web_error(r, 410, "result_dropped", job_idjson(j), "the body of %s "
		    "is no longer kept (--keep-bytes)", j->key);
	} else if (what == JP_BODY) {
		struct buf t = { 0 };

		buf_append(&t, job_body(j), j->body_len);
		buf_append(&t, "\n", 1);
		web_reply(r, 200, "application/json", bhead(&t), buf_used(&t));
		buf_free(&t);
	} else if (what == JP_LOG) {
		job_log_reply(r, j);
	} else if (what == JP_CANCEL) {
		/* Ends it, as the protocol's cancel; it stays listed. */
		if (JOB_FINISHED(j)) {
			web_error(r, 404, "unknown_id", job_idjson(j),
			    "no unfinished job has id %s", job_idjson(j));
		} else {
			broker_end(b, j, JOB_CANCELLED);
			web_reply_json(r, 200, json_pack("{s:o, s:s}", "id",
			    json_loads(job_idjson(j), JSON_DECODE_ANY, NULL),
			    "status", job_state_name(j->state)));
			web_gate(r);
		}
	} else if (method_is(r, "GET")) {
		web_reply_json(r, 200, job_info(j));
	} else {
		json_t *o = json_pack("{s:o, s:s, s:b}", "id",
		    json_loads(job_idjson(j), JSON_DECODE_ANY, NULL),
		    "status", job_state_name(j->state), "forgotten", 1);

		broker_forget(b, j);
		web_reply_json(r, 200, o);
		web_gate(r);
	}
	free(key);
}

struct type_view {
	json_t *arr;
	size_t  n, max;
	struct broker *b;
};

static bool
add_job_id(void *ctx, struct job *j)
{
	struct type_view *v = ctx;

	if (v->n++ >= v->max)
		return false;
	json_array_append_new(v->arr, json_loads(job_idjson(j), JSON_DECODE_ANY, NULL));
	return true;
}

static bool
add_worker(void *ctx, struct worker *wk)
{
	struct type_view *v = ctx;
	struct type_view jobs = { json_array(), 0, 100, v->b };

	if (v->n++ >= v->max)
		return false;
	broker_worker_jobs_each(v->b, wk, add_job_id, &jobs);
	json_array_append_new(v->arr, json_pack("{s:s, s:s, s:i, s:o}", "name",
	    worker_name(wk), "addr", worker_addr(wk), "running",
	    (int)worker_running(wk), "jobs", jobs.arr));
	return true;
}

/*
 * type_view: a type's counters, its workers and the head of its queue
 * (at most 1000 workers and 100 queued ids).  Listing the queue in
 * dispatch order sorts it (broker_queue_each), so past WEB_SORT_MAX queued
 * jobs the head is left out unless ?queue=1 asks: a dashboard that looks
 * every few seconds must not stall the loop on a queue of millions.
 */
#define WEB_SORT_MAX 10000
static void
type_view(struct wreq *r, const char *name)
{
	struct server *srv = r->web->srv;
	struct jtype *t = broker_type(srv->broker, name, false);
	struct type_view v = { 0 };
	struct type_stats ts;
	json_t *st, *o;

	if (t == NULL) {
		web_error(r, 404, "not_found", NULL, "no type is named %s", name);
		return;
	}
	st = broker_stats(srv->broker, name, 0);
	o = json_deep_copy(json_object_get(json_object_get(st, "types"), name));
	json_decref(st);
	if (o == NULL)
		o = json_object();
	json_object_set_new(o, "name", json_string(name));
	v.b = srv->broker;
	v.arr = json_array();
	v.max = 1000;
	broker_workers_each(srv->broker, t, add_worker, &v);
	json_object_set_new(o, "worker_list", v.arr);
	v.arr = json_array();
	v.n = 0;
	v.max = 100;
	broker_type_stats(t, &ts);
	if (ts.queued <= WEB_SORT_MAX || (web_arg(r, "queue") != NULL &&
	    strcmp(web_arg(r, "queue"), "1") == 0))
		broker_queue_each(srv->broker, t, add_job_id, &v);
	else
		json_object_set_new(o, "queue_head_omitted", json_true());
	json_object_set_new(o, "queue_head", v.arr);
	web_reply_json(r, 200, o);
}

/* The query parameters of GET /jobs. */
static const char *const list_args[] = { "state", "type", "limit", "after", NULL };

/*
 * jobs_list: GET /jobs?state=S[&type=T][&limit=N][&after=CURSOR]: a page
 * of the jobs in state S (broker_list), "next" the after= of the next
 * page, null at the end.  The web face is the admin's: every job is seen.
 */
static void
jobs_list(struct wreq *r)
{
	struct broker *b = r->web->srv->broker;
	const char *state = web_arg(r, "state"), *type = web_arg(r, "type");
	const char *after = web_arg(r, "after");
	int64_t limit = LIST_LIMIT_DEFAULT;
	struct jtype *t = NULL;
	json_t *o;
	int s;

	if (!web_args_known(r, list_args))
		return;
	if (!method_is(r, "GET")) {
		not_allowed(r, "GET");
		return;
	}
	if (state == NULL || (s = jls_parse(state)) == JLS_NONE) {
		web_error(r, 400, "invalid_type", NULL, "query parameter \"state\" "
		    "must be one of queued, running, delayed, waiting, done, failed, "
		    "cancelled, dead");
		return;
	}
	if (!arg_int(r, "limit", 1, &limit))
		return;
	if (limit > LIST_LIMIT_MAX) {
		web_error(r, 400, "invalid_type", NULL, "query parameter \"limit\" "
		    "must be 1 to %d", LIST_LIMIT_MAX);
		return;
	}
	if (type != NULL && !type_name_valid(type, strlen(type))) {
		web_error(r, 400, "invalid_type", NULL, "query parameter \"type\" "
		    "is not a type name");
		return;
	}
	if (type != NULL && (t = broker_type(b, type, false)) == NULL) {
		web_reply_json(r, 200, json_pack("{s:[],s:n}", "jobs", "next"));
		return;
	}
	if ((o = broker_list(b, s, t, (size_t)limit, after, NULL, NULL)) == NULL) {
		web_error(r, 400, "invalid_type", NULL, "query parameter \"after\" "
		    "must be the \"next\" of a page of this listing");
		return;
	}
	web_reply_json(r, 200, o);
}

/* rest_route: the REST paths; false if path is none of them. */
bool
rest_route(struct wreq *r, const char *path)
{
	struct server *srv = r->web->srv;
	const char *slash;

	if (strcmp(path, "/stats") == 0) {
		if (!web_args_known(r, no_args)) {
			;
		} else if (!method_is(r, "GET")) {
			not_allowed(r, "GET");
		} else {
			json_t *o = broker_stats(srv->broker, NULL, STATS_TYPES_MAX);

			json_object_set_new(o, "http", web_stats(r->web));
			web_reply_json(r, 200, o);
		}
		return true;
	}
	if (strcmp(path, "/types") == 0 || strcmp(path, "/types/") == 0) {
		if (!web_args_known(r, no_args)) {
			;
		} else if (!method_is(r, "GET")) {
			not_allowed(r, "GET");
		} else {
			json_t *o = broker_stats(srv->broker, NULL, 100000);
			json_t *t = json_incref(json_object_get(o, "types"));

			json_decref(o);
			web_reply_json(r, 200, t);
		}
		return true;
	}
	if (strncmp(path, "/types/", 7) == 0) {
		char *name;

		path += 7;
		slash = strchr(path, '/');
		name = xstrndup(path, slash ? (size_t)(slash - path) : strlen(path));
		if (slash == NULL) {
			if (!web_args_known(r, type_args))
				;
			else if (method_is(r, "GET"))
				type_view(r, name);
			else
				not_allowed(r, "GET");
		} else if (strcmp(slash, "/jobs") == 0) {
			if (strcmp(r->method, "POST") == 0)
				submit(r, name);
			else
				not_allowed(r, "POST");
		} else
			web_error(r, 404, "not_found", NULL, "no such path: %s", r->url);
		free(name);
		return true;
	}
	if (strcmp(path, "/jobs") == 0 || strcmp(path, "/jobs/") == 0) {
		jobs_list(r);
		return true;
	}
	if (strncmp(path, "/jobs/", 6) == 0 && path[6] != '\0') {
		jobs_path(r, path + 6);
		return true;
	}
	return false;
}
