/*
 * web_metrics.c — GET /metrics in the Prometheus text exposition format
 * (version 0.0.4): the daemon's counters and gauges (those of `stats`),
 * per type the queued, running and worker gauges and the job counters,
 * a histogram of job run time per type, and the web face's own counters.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web.h"

static const double bounds[WEB_HIST_N] = WEB_HIST_BOUNDS;

/* Counters among the daemon's stats; any other number is a gauge. */
static const char *const counters[] = {
	"submitted", "done", "failed", "cancelled", "timeout", "requeued",
	"partials", "frames_in", "frames_out", "bad_frames", "slow_clients_dropped",
	"connections_refused", "input_dropped", "frame_timeouts", "partials_dropped",
	"messages_published", "messages_delivered", "messages_dropped", "refused_full",
	"retried", "kicked", "fails",  /* the job lifecycle */
	"results_dropped",
	NULL,
};

static bool
is_counter(const char *k)
{
	size_t i;

	for (i = 0; counters[i] != NULL; i++)
		if (strcmp(counters[i], k) == 0)
			return true;
	return false;
}

/* metrics_job_finished: a job that ran to a result adds its run time. */
void
metrics_job_finished(struct web *w, struct job *j)
{
	struct web_hist *h;
	double rt;
	size_t i;

	if (j->state != JOB_DONE || job_started(j) <= 0)
		return;
	rt = job_finished(j) - job_started(j);
	if (rt < 0)
		rt = 0;
	HASH_FIND_STR(w->hists, j->type->name, h);
	if (h == NULL) {
		if (HASH_COUNT(w->hists) >= WEB_HIST_TYPES_MAX)
			return;
		h = xcalloc(1, sizeof *h);
		h->type = xstrdup(j->type->name);
		HASH_ADD_KEYPTR(hh, w->hists, h->type, strlen(h->type), h);
	}
	for (i = 0; i < WEB_HIST_N; i++)
		if (rt <= bounds[i])
			h->buckets[i]++;
	h->count++;
	h->sum += rt;
}

void
metrics_free(struct web *w)
{
	struct web_hist *h, *tmp;

	HASH_ITER(hh, w->hists, h, tmp) {
		HASH_DEL(w->hists, h);
		free(h->type);
		free(h);
	}
}

/* web_stats: the web face's counters, in /stats and /events. */
json_t *
web_stats(struct web *w)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "requests", (json_int_t)w->requests,
	    "connections", (json_int_t)web_connections(),
	    "connections_refused", (json_int_t)w->conns_refused,
	    "responses_2xx", (json_int_t)w->responses[2],
	    "responses_4xx", (json_int_t)w->responses[4],
	    "responses_5xx", (json_int_t)w->responses[5],
	    "streams", (json_int_t)(w->nsub_streams + w->nevents_streams),
	    "events_sent", (json_int_t)w->events_sent,
	    "events_missed", (json_int_t)w->events_missed,
	    "routed", (json_int_t)w->routed,
	    "route_timeouts", (json_int_t)w->route_timeouts,
	    "waiting", (json_int_t)w->nparked);
}

/* label: a label value, escaped (\\, \", \n). */
static void
label(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			buf_append(b, "\\", 1);
		if (*s == '\n')
			buf_append_str(b, "\\n");
		else
			buf_append(b, s, 1);
	}
}

static void
line(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
line(struct buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	buf_append_str(b, tmp);
}

static void
number(struct buf *b, json_t *v)
{
	if (json_is_integer(v))
		line(b, " %" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
	else
		line(b, " %.17g\n", json_number_value(v));
}

struct type_walk {
	struct buf *b;
	const char *metric;
	int which;
};

static bool
type_metric(void *ctx, struct jtype *t)
{
	struct type_walk *x = ctx;
	struct type_stats s;
	uint64_t v[] = { 0 };

	broker_type_stats(t, &s);
	switch (x->which) {
	case 0: v[0] = s.queued; break;
	case 1: v[0] = s.running; break;
	case 2: v[0] = s.workers; break;
	case 3: v[0] = s.submitted; break;
	case 4: v[0] = s.done; break;
	case 5: v[0] = s.failed; break;
	case 6: v[0] = s.cancelled; break;
	case 7: v[0] = s.timeout; break;
	default: v[0] = s.requeued; break;
	}
	line(x->b, "%s{type=\"", x->metric);
	label(x->b, t->name);
	line(x->b, "\"} %" PRIu64 "\n", v[0]);
	return true;
}

void
metrics_serve(struct wreq *r)
{
	static const struct { const char *name, *type, *help; } per_type[] = {
		{ "jobfs_type_queued", "gauge", "Jobs queued, per type." },
		{ "jobfs_type_running", "gauge", "Jobs running, per type." },
		{ "jobfs_type_workers", "gauge", "Workers joined, per type." },
		{ "jobfs_type_submitted_total", "counter", "Jobs submitted, per type." },
		{ "jobfs_type_done_total", "counter", "Jobs done, per type." },
		{ "jobfs_type_failed_total", "counter", "Jobs failed, per type." },
		{ "jobfs_type_cancelled_total", "counter", "Jobs cancelled, per type." },
		{ "jobfs_type_timeout_total", "counter", "Jobs timed out, per type." },
		{ "jobfs_type_requeued_total", "counter", "Jobs requeued, per type." },
	};
	struct web *w = r->web;
	struct buf b = { 0 };
	json_t *st = server_stats(w->srv, NULL, 0), *hs, *v;
	const char *k;
	struct web_hist *h, *tmp;
	struct type_walk x = { &b, NULL, 0 };
	size_t i;

	json_object_foreach(st, k, v) {
		bool c;

		if (!json_is_number(v))
			continue;
		c = is_counter(k);
		line(&b, "# TYPE jobfs_%s%s %s\n", k, c ? "_total" : "",
		    c ? "counter" : "gauge");
		line(&b, "jobfs_%s%s", k, c ? "_total" : "");
		number(&b, v);
	}
	json_decref(st);
	for (i = 0; i < sizeof per_type / sizeof per_type[0]; i++) {
		line(&b, "# HELP %s %s\n# TYPE %s %s\n", per_type[i].name,
		    per_type[i].help, per_type[i].name, per_type[i].type);
		x.metric = per_type[i].name;
		x.which = (int)i;
		broker_types_each(&w->srv->broker, type_metric, &x);
	}
	buf_append_str(&b, "# HELP jobfs_job_run_seconds Run time of jobs done, "
	    "from dispatch to result, per type.\n"
	    "# TYPE jobfs_job_run_seconds histogram\n");
	HASH_ITER(hh, w->hists, h, tmp) {
		for (i = 0; i < WEB_HIST_N; i++) {
			buf_append_str(&b, "jobfs_job_run_seconds_bucket{type=\"");
			label(&b, h->type);
			line(&b, "\",le=\"%g\"} %" PRIu64 "\n", bounds[i], h->buckets[i]);
		}
		buf_append_str(&b, "jobfs_job_run_seconds_bucket{type=\"");
		label(&b, h->type);
		line(&b, "\",le=\"+Inf\"} %" PRIu64 "\n", h->count);
		buf_append_str(&b, "jobfs_job_run_seconds_sum{type=\"");
		label(&b, h->type);
		line(&b, "\"} %.9g\n", h->sum);
		buf_append_str(&b, "jobfs_job_run_seconds_count{type=\"");
		label(&b, h->type);
		line(&b, "\"} %" PRIu64 "\n", h->count);
	}
	hs = web_stats(w);
	json_object_foreach(hs, k, v) {
		bool c = strcmp(k, "connections") != 0 && strcmp(k, "streams") != 0 &&
		    strcmp(k, "waiting") != 0;

		line(&b, "# TYPE jobfs_http_%s%s %s\n", k, c ? "_total" : "",
		    c ? "counter" : "gauge");
		line(&b, "jobfs_http_%s%s", k, c ? "_total" : "");
		number(&b, v);
	}
	json_decref(hs);
	web_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    buf_head(&b), buf_used(&b));
	buf_free(&b);
}
