/*
 * web_metrics.c — GET /metrics in the Prometheus text exposition format
 * (version 0.0.4): the daemon's counters and gauges (those of `stats`),
 * per type the queued, running and worker gauges and the job counters,
 * a histogram of job run time per type, the web face's own counters and
 * the process's figures that every exporter shows.  Every family has its
 * HELP and TYPE, and names follow Prometheus's conventions: base units
 * in the name (_seconds, _bytes), counters ending in _total.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "web/web_int.h"

static const double bounds[WEB_HIST_N] = WEB_HIST_BOUNDS;

/*
 * A figure of `stats` (or of its "http" object) as a metric: the figure's
 * name there, the metric's, the label that tells it from others of the
 * same metric (entries of one metric follow each other: one family), a
 * counter or a gauge, a scale (0: the number as it is; the journal keeps
 * microseconds, shown as seconds) and the help text.  A figure that stats
 * does not show (the journal's without --data, the guards' before any is
 * in use) is left out.
 */
struct figure {
	const char *key, *name, *label;
	bool        counter;
	double      scale;
	const char *help;
};

static const struct figure daemon_figures[] = {
	{ "uptime", "jobfs_uptime_seconds", NULL, false, 0,
	  "Seconds since the daemon started." },
	{ "submitted", "jobfs_submitted_total", NULL, true, 0, "Jobs submitted." },
	{ "queued", "jobfs_queued", NULL, false, 0, "Jobs queued for a worker." },
	{ "running", "jobfs_running", NULL, false, 0, "Jobs running on a worker." },
	{ "done", "jobfs_done_total", NULL, true, 0, "Jobs ended with a result." },
	{ "failed", "jobfs_failed_total", NULL, true, 0,
	  "Jobs ended as failed (no retry left)." },
	{ "cancelled", "jobfs_cancelled_total", NULL, true, 0, "Jobs cancelled." },
	{ "timeout", "jobfs_timeout_total", NULL, true, 0,
	  "Jobs ended by their timeout." },
	{ "requeued", "jobfs_requeued_total", NULL, true, 0,
	  "Jobs queued again after their worker went away." },
	{ "retained", "jobfs_retained", NULL, false, 0,
	  "Finished jobs kept for their results to be read." },
	{ "retained_bytes", "jobfs_retained_bytes", NULL, false, 0,
	  "Bytes held by the finished jobs kept." },
	{ "keep_bytes", "jobfs_keep_bytes", NULL, false, 0,
	  "Bytes the finished jobs kept may hold (--keep-bytes)." },
	{ "results_dropped", "jobfs_results_dropped_total", NULL, true, 0,
	  "Finished jobs forgotten early to stay within the bytes kept." },
	{ "partials", "jobfs_partials_total", NULL, true, 0,
	  "Partial results received from workers." },
	{ "connections", "jobfs_connections", NULL, false, 0,
	  "Connections open on the TCP ports." },
	{ "masters", "jobfs_masters", NULL, false, 0,
	  "Connections open on the master port." },
	{ "workers", "jobfs_workers", NULL, false, 0, "Workers joined." },
	{ "frames_in", "jobfs_frames_in_total", NULL, true, 0,
	  "Frames received on the TCP ports." },
	{ "frames_out", "jobfs_frames_out_total", NULL, true, 0,
	  "Frames sent on the TCP ports." },
	{ "bad_frames", "jobfs_bad_frames_total", NULL, true, 0,
	  "Frames refused as malformed." },
	{ "slow_clients_dropped", "jobfs_slow_clients_dropped_total", NULL, true, 0,
	  "Connections closed for leaving too much output unread." },
	{ "connections_refused", "jobfs_connections_refused_total", NULL, true, 0,
	  "Connections refused over --max-conns." },
	{ "input_dropped", "jobfs_input_dropped_total", NULL, true, 0,
	  "Connections closed for buffering input over --max-input." },
	{ "frame_timeouts", "jobfs_frame_timeouts_total", NULL, true, 0,
	  "Connections closed for a frame not whole within --frame-timeout." },
	{ "partials_dropped", "jobfs_partials_dropped_total", NULL, true, 0,
	  "Partial results a slow streaming master missed." },
	{ "channels", "jobfs_channels", NULL, false, 0, "Channels with subscribers." },
	{ "messages_published", "jobfs_messages_published_total", NULL, true, 0,
	  "Messages published to channels." },
	{ "messages_delivered", "jobfs_messages_delivered_total", NULL, true, 0,
	  "Messages delivered to subscribers." },
	{ "messages_dropped", "jobfs_messages_dropped_total", NULL, true, 0,
	  "Messages slow subscribers missed." },
	{ "body_bytes", "jobfs_body_bytes", NULL, false, 0,
	  "Bytes of bodies held by unfinished jobs." },
	{ "refused_full", "jobfs_refused_full_total", NULL, true, 0,
	  "Submissions refused as full (--max-jobs, --max-memory)." },
	{ "auth_failures", "jobfs_auth_failures_total", NULL, true, 0,
	  "Authentications refused." },
	{ "refused_protected", "jobfs_refused_protected_total", NULL, true, 0,
	  "Connections from beyond loopback refused in protected mode." },
	{ "refused_per_addr", "jobfs_refused_per_addr_total", NULL, true, 0,
	  "Connections refused over --max-conns-per-addr." },
	{ "refused_unauthenticated", "jobfs_refused_unauthenticated_total", NULL, true, 0,
	  "Connections past --max-unauth (the oldest unauthenticated one goes)." },
	{ "dropped_unauthenticated", "jobfs_dropped_unauthenticated_total", NULL, true, 0,
	  "Unauthenticated connections closed (--max-unauth, --auth-timeout, "
	  "--max-unauth-frames)." },
	{ "tls_handshake_timeouts", "jobfs_tls_handshake_timeouts_total", NULL, true, 0,
	  "Connections closed for a TLS handshake not done in time." },
	{ "retried", "jobfs_retried_total", NULL, true, 0,
	  "Failed attempts queued again for a retry." },
	{ "dead", "jobfs_dead", NULL, false, 0,
	  "Dead jobs kept (failed with no retry left)." },
	{ "delayed", "jobfs_delayed", NULL, false, 0,
	  "Jobs waiting for their time to be queued." },
	{ "waiting", "jobfs_waiting", NULL, false, 0,
	  "Jobs waiting for the jobs they run after." },
	{ "paused", "jobfs_paused", NULL, false, 0, "Types paused." },
	{ "kicked", "jobfs_kicked_total", NULL, true, 0, "Dead jobs queued again." },
	{ "fails", "jobfs_fails_total", NULL, true, 0,
	  "Attempts that workers reported as failed." },
	{ "journal_bytes", "jobfs_journal_bytes", NULL, false, 0,
	  "Bytes of the journal's segments on disk." },
	{ "journal_segments", "jobfs_journal_segments", NULL, false, 0,
	  "Segment files of the journal." },
	{ "journal_live_bytes", "jobfs_journal_live_bytes", NULL, false, 0,
	  "Bytes of the journal's records still needed." },
	{ "journal_records", "jobfs_journal_records_total", NULL, true, 0,
	  "Records appended to the journal." },
	{ "journal_syncs", "jobfs_journal_syncs_total", NULL, true, 0,
	  "Syncs of the journal to disk." },
	{ "journal_sync_last_us", "jobfs_journal_sync_last_seconds", NULL, false, 1e-6,
	  "Seconds the journal's last sync took." },
	{ "journal_sync_max_us", "jobfs_journal_sync_max_seconds", NULL, false, 1e-6,
	  "Seconds the journal's longest sync took." },
	{ "journal_compactions", "jobfs_journal_compactions_total", NULL, true, 0,
	  "Compactions of the journal." },
	{ "journal_backlog_bytes", "jobfs_journal_backlog_bytes", NULL, false, 0,
	  "Bytes appended to the journal, not yet written." },
	{ "journal_error", "jobfs_journal_error", NULL, false, 0,
	  "The journal's error (an errno), 0 when well." },
	{ "ntypes", "jobfs_ntypes", NULL, false, 0, "Job types." },
	{ NULL, NULL, NULL, false, 0, NULL },
};

static const struct figure http_figures[] = {
	{ "requests", "jobfs_http_requests_total", NULL, true, 0,
	  "HTTP requests received." },
	{ "connections", "jobfs_http_connections", NULL, false, 0,
	  "HTTP connections open." },
	{ "connections_refused", "jobfs_http_connections_refused_total", NULL, true, 0,
	  "HTTP connections refused over --http-max-conn." },
	{ "responses_2xx", "jobfs_http_responses_total", "code=\"2xx\"", true, 0,
	  "HTTP responses, by the class of their status code." },
	{ "responses_4xx", "jobfs_http_responses_total", "code=\"4xx\"", true, 0, NULL },
	{ "responses_5xx", "jobfs_http_responses_total", "code=\"5xx\"", true, 0, NULL },
	{ "streams", "jobfs_http_streams", NULL, false, 0,
	  "Event streams open (/sub and /events)." },
	{ "events_sent", "jobfs_http_events_sent_total", NULL, true, 0,
	  "Events sent on event streams." },
	{ "events_missed", "jobfs_http_events_missed_total", NULL, true, 0,
	  "Events slow event streams missed." },
	{ "streams_full", "jobfs_http_streams_full", NULL, false, 0,
	  "Event streams missing events now." },
	{ "stream_queued_bytes", "jobfs_http_stream_queued_bytes", NULL, false, 0,
	  "Bytes queued unread, summed over the event streams." },
	{ "event_bytes", "jobfs_http_event_bytes", NULL, false, 0,
	  "Bytes of the encoded events the streams' queues hold." },
	{ "routed", "jobfs_http_routed_total", NULL, true, 0,
	  "Requests handed to workers by --http-route." },
	{ "route_timeouts", "jobfs_http_route_timeouts_total", NULL, true, 0,
	  "Routed requests no worker took within --http-timeout." },
	{ "waiting", "jobfs_http_waiting", NULL, false, 0,
	  "Requests waiting (long polls, routes, answers held for the store)." },
	{ "unauthenticated", "jobfs_http_unauthenticated", NULL, false, 0,
	  "HTTP connections open and not yet authenticated." },
	{ "unauth_dropped", "jobfs_http_unauth_dropped_total", NULL, true, 0,
	  "Unauthenticated HTTP connections closed over --http-max-unauth." },
	{ "header_timeouts", "jobfs_http_header_timeouts_total", NULL, true, 0,
	  "HTTP connections closed for a request not whole in time." },
	{ "refused_per_addr", "jobfs_http_refused_per_addr_total", NULL, true, 0,
	  "HTTP connections refused over the per-address limit." },
	{ "refused_host", "jobfs_http_refused_host_total", NULL, true, 0,
	  "HTTP requests refused for their Host header." },
	{ "refused_cross_site", "jobfs_http_refused_cross_site_total", NULL, true, 0,
	  "HTTP requests refused as cross-site." },
	{ "refused_plain", "jobfs_http_refused_plain_total", NULL, true, 0,
	  "HTTP requests refused for coming over plain HTTP from beyond loopback under --auth." },
	{ "refused_client_cert", "jobfs_http_refused_client_cert_total", NULL, true, 0,
	  "HTTPS requests refused for want of a client certificate of --tls-ca." },
	{ "input_bytes", "jobfs_http_input_bytes", NULL, false, 0,
	  "Bytes of request bodies held now." },
	{ "input_refused", "jobfs_http_input_refused_total", NULL, true, 0,
	  "HTTP requests refused for the bytes their bodies would hold." },
	{ NULL, NULL, NULL, false, 0, NULL },
};

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
	json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
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

	/* the guards before authentication */
	json_object_update_new(o, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "unauthenticated", (json_int_t)w->nunauthed,
	    "unauth_dropped", (json_int_t)w->unauth_dropped,
	    "header_timeouts", (json_int_t)w->header_timeouts,
	    "refused_per_addr", (json_int_t)w->refused_per_addr,
	    "refused_host", (json_int_t)w->refused_host,
	    "refused_cross_site", (json_int_t)w->refused_cross_site,
	    "input_bytes", (json_int_t)w->input_bytes,
	    "input_refused", (json_int_t)w->input_refused));
	json_object_update_new(o, json_pack("{s:I, s:I, s:b}",
	    "refused_plain", (json_int_t)w->refused_plain,
	    "refused_client_cert", (json_int_t)w->refused_client_cert,
	    "https", web_tls_on()));
	sse_stats(w, o);
	return o;
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

/*
 * figures: the figures of obj (the daemon's stats, or their "http" object)
 * as the table says, in the table's order so that each family's samples
 * follow its HELP and TYPE.  A number the table does not know is shown as
 * a gauge prefix + its name, with a help that says no more, rather than
 * not at all: a figure added to stats is never lost.
 */
static void
figures(struct buf *b, const struct figure *tab, json_t *obj, const char *prefix)
{
	const struct figure *f;
	const char *family = NULL, *k;
	json_t *v;

	for (f = tab; f->key != NULL; f++) {
		v = json_object_get(obj, f->key);
		if (!json_is_number(v))
			continue;
		if (family == NULL || strcmp(family, f->name) != 0) {
			line(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help,
			    f->name, f->counter ? "counter" : "gauge");
			family = f->name;
		}
		buf_append_str(b, f->name);
		if (f->label != NULL)
			line(b, "{%s}", f->label);
		if (f->scale != 0)
			line(b, " %.9g\n", json_number_value(v) * f->scale);
		else if (json_is_integer(v))
			line(b, " %" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
		else
			line(b, " %.17g\n", json_number_value(v));
	}
	json_object_foreach(obj, k, v) {
		if (!json_is_number(v))
			continue;
		for (f = tab; f->key != NULL; f++)
			if (strcmp(f->key, k) == 0)
				break;
		if (f->key != NULL)
			continue;
		line(b, "# HELP %s%s The stats figure %s.\n# TYPE %s%s gauge\n%s%s",
		    prefix, k, k, prefix, k, prefix, k);
		line(b, " %.17g\n", json_number_value(v));
	}
}

/* proc_stat: fields 14 (utime), 15 (stime), 22 (starttime, in clock ticks
 * since boot), 23 (vsize, bytes) and 24 (rss, pages) of /proc/self/stat;
 * false if it cannot be read. */
static bool
proc_stat(unsigned long long *utime, unsigned long long *stime,
    unsigned long long *start, unsigned long long *vsize, long long *rss)
{
	char s[1024], *p;
	ssize_t n;
	int fd;

	if ((fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, s, sizeof s - 1);
	close(fd);
	if (n <= 0)
		return false;
	s[n] = '\0';
	/* The command name, field 2, is in parentheses and may hold any
	 * byte: the fields that follow start after its last ')'. */
	if ((p = strrchr(s, ')')) == NULL)
		return false;
	return sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu"
	    " %*d %*d %*d %*d %*d %*d %llu %llu %lld", utime, stime, start, vsize,
	    rss) == 5;
}

/* boot_time: the btime line of /proc/stat, seconds since the epoch at
 * boot; 0 if it cannot be read.  Read once: it does not change. */
static double
boot_time(void)
{
	static double btime = -1;
	char l[256];
	FILE *f;

	if (btime >= 0)
		return btime;
	btime = 0;
	if ((f = fopen("/proc/stat", "re")) == NULL)
		return btime;
	/* A long line (intr) comes in pieces, none of which starts so. */
	while (fgets(l, sizeof l, f) != NULL)
		if (strncmp(l, "btime ", 6) == 0) {
			btime = strtod(l + 6, NULL);
			break;
		}
	fclose(f);
	return btime;
}

/* open_fds: descriptors open in this process (the directory's own, open
 * while it is read, not counted); -1 if /proc/self/fd cannot be read. */
static long
open_fds(void)
{
	struct dirent *e;
	long n = 0;
	DIR *d;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0 ? n - 1 : 0;
}

/*
 * process_metrics: the process's figures under the names Prometheus's
 * client libraries give them (process_*), so that the dashboards and
 * alerts written for any exporter read jobfs too.  A figure that cannot
 * be read (no /proc) is left out.
 */
static void
process_metrics(struct buf *b)
{
	unsigned long long ut, st, start, vsize;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE), fds;
	double btime = boot_time();
	struct rlimit rl;
	long long rss;

	if (tck > 0 && page > 0 && proc_stat(&ut, &st, &start, &vsize, &rss)) {
		line(b, "# HELP process_cpu_seconds_total Total user and system CPU "
		    "time spent in seconds.\n# TYPE process_cpu_seconds_total counter\n"
		    "process_cpu_seconds_total %.2f\n", (double)(ut + st) / (double)tck);
		if (btime > 0)
			line(b, "# HELP process_start_time_seconds Start time of the "
			    "process since unix epoch in seconds.\n"
			    "# TYPE process_start_time_seconds gauge\n"
			    "process_start_time_seconds %.2f\n",
			    btime + (double)start / (double)tck);
		line(b, "# HELP process_virtual_memory_bytes Virtual memory size in "
		    "bytes.\n# TYPE process_virtual_memory_bytes gauge\n"
		    "process_virtual_memory_bytes %llu\n", vsize);
		line(b, "# HELP process_resident_memory_bytes Resident memory size "
		    "in bytes.\n# TYPE process_resident_memory_bytes gauge\n"
		    "process_resident_memory_bytes %lld\n", rss * page);
	}
	if ((fds = open_fds()) >= 0)
		line(b, "# HELP process_open_fds Number of open file descriptors.\n"
		    "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n", fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		buf_append_str(b, "# HELP process_max_fds Maximum number of open file "
		    "descriptors.\n# TYPE process_max_fds gauge\n");
		if (rl.rlim_cur == RLIM_INFINITY)
			buf_append_str(b, "process_max_fds +Inf\n");
		else
			line(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
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
	json_t *st = broker_stats(w->srv->broker, NULL, 0), *hs;
	struct web_hist *h, *tmp;
	struct type_walk x = { &b, NULL, 0 };
	size_t i;

	figures(&b, daemon_figures, st, "jobfs_");
	json_decref(st);
	for (i = 0; i < sizeof per_type / sizeof per_type[0]; i++) {
		line(&b, "# HELP %s %s\n# TYPE %s %s\n", per_type[i].name,
		    per_type[i].help, per_type[i].name, per_type[i].type);
		x.metric = per_type[i].name;
		x.which = (int)i;
		broker_types_each(w->srv->broker, type_metric, &x);
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
	figures(&b, http_figures, hs, "jobfs_http_");
	json_decref(hs);
	process_metrics(&b);
	web_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    buf_head(&b), buf_used(&b));
	buf_free(&b);
}
