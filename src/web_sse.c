/*
 * web_sse.c — Server-Sent Events: GET /sub/C streams channel C (Tempest's
 * EventSource front), POST /pub/C publishes to it, GET /events streams the
 * broker's events.
 *
 * Each stream has at most WEB_STREAM_MAX unread bytes: an event that does
 * not fit is missed, counted, and the stream's next event is preceded by
 * an "event: missed" whose data is the count, as a TCP subscriber gets
 * "missed":N.  A slow reader therefore costs a bounded buffer, never the
 * daemon's memory, and never slows a publisher.  Idle streams get a
 * comment line now and then, which also finds clients that went away.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web.h"

/* sse_put: one event into r's stream, or count it missed. */
static bool
sse_put(struct wreq *r, const char *name, uint64_t id, const char *data, size_t len)
{
	struct buf ev = { 0 };
	char head[96];
	size_t i, start;

	if (r->missed > 0) {
		snprintf(head, sizeof head, "event: missed\ndata: %" PRIu64 "\n\n", r->missed);
		buf_append_str(&ev, head);
	}
	if (id > 0) {
		snprintf(head, sizeof head, "id: %" PRIu64 "\n", id);
		buf_append_str(&ev, head);
	}
	if (name != NULL) {
		buf_append_str(&ev, "event: ");
		buf_append_str(&ev, name);
		buf_append(&ev, "\n", 1);
	}
	/* A line break in the data starts another data: line (SSE joins them). */
	for (start = i = 0; i <= len; i++) {
		if (i == len || data[i] == '\n' || data[i] == '\r') {
			buf_append_str(&ev, "data: ");
			buf_append(&ev, data + start, i - start);
			buf_append(&ev, "\n", 1);
			start = i + 1;
		}
	}
	buf_append(&ev, "\n", 1);
	if (buf_used(&r->out) + buf_used(&ev) > WEB_STREAM_MAX) {
		r->missed++;
		r->web->events_missed++;
		buf_free(&ev);
		return false;
	}
	r->missed = 0;
	r->web->events_sent++;
	web_stream_append(r, bhead(&ev), buf_used(&ev));
	buf_free(&ev);
	return true;
}

/* on_message: every channel message, to the streams of its channel. */
static void
on_message(void *ctx, const char *name, const char *body, size_t len)
{
	struct web *w = ctx;
	struct wreq *r;
	struct chan *ch;

	w->sse_delivered = 0;
	if (w->d == NULL || w->nsub_streams == 0)
		return;
	TAILQ_FOREACH(r, &w->streams, entry)
		if (r->stream == STREAM_SUB && strcmp(r->chan, name) == 0 &&
		    sse_put(r, NULL, 0, body, len))
			w->sse_delivered++;
	if (w->sse_delivered > 0 && (ch = chan_find(w->srv, name)) != NULL)
		ch->delivered += w->sse_delivered;   /* stats: as TCP deliveries */
}

void
sse_init(struct web *w)
{
	chan_listen(w->srv, on_message, w);
}

/*
 * sse_event: a broker event to every /events stream that wants it:
 * job events only to those that asked (?jobs=all, the default, or
 * ?jobs=failed for failures alone); steals data.
 */
void
sse_event(struct web *w, const char *name, json_t *data, bool job_event, bool failure)
{
	struct wreq *r;
	char *text;
	uint64_t id = ++w->next_event;

	text = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	if (text == NULL)
		return;
	TAILQ_FOREACH(r, &w->streams, entry) {
		if (r->stream != STREAM_EVENTS)
			continue;
		if (job_event && (r->jobs == 0 || (r->jobs == 1 && !failure)))
			continue;
		sse_put(r, name, id, text, strlen(text));
	}
	free(text);
}

/*
 * sse_tick: every second, a "stats" event (the daemon's counters, per type
 * too: what a dashboard draws, whatever the job rate), and a comment on
 * streams that had nothing to say for a while.
 */
void
sse_tick(struct web *w)
{
	double now = ev_now(w->srv->loop);
	double every = w->idle > 0 && w->idle / 2 < WEB_PING_MAX ? w->idle / 2 : WEB_PING_MAX;
	struct wreq *r;

	if (w->nevents_streams > 0) {
		json_t *o = server_stats(w->srv, NULL, STATS_TYPES_MAX);

		json_object_set_new(o, "http", web_stats(w));
		json_object_set_new(o, "time", json_real(now_wall()));
		sse_event(w, "stats", o, false, false);
	}
	if (now - w->last_ping < every)
		return;
	w->last_ping = now;
	TAILQ_FOREACH(r, &w->streams, entry)
		if ((r->stream == STREAM_SUB || r->stream == STREAM_EVENTS) &&
		    buf_used(&r->out) == 0)
			web_stream_append(r, ":\n\n", 3);
}

static bool
chan_name(struct wreq *r, const char *name)
{
	if (type_name_valid(name, strlen(name)))
		return true;
	web_error(r, 400, "invalid_type", NULL, "a channel name is 1 to %d bytes "
	    "of UTF-8 without /, NUL or control characters", ID_MAX);
	return false;
}

static void
not_allowed(struct wreq *r, const char *allow)
{
	web_error(r, 405, "method_not_allowed", NULL, "%s %s: allowed: %s",
	    r->method, r->url, allow);
	r->headers = json_pack("{s:s}", "Allow", allow);
}

/* The query parameters each path takes (web_args_known refuses others). */
static const char *const no_args[] = { NULL };
static const char *const events_args[] = { "jobs", NULL };

bool
sse_route(struct wreq *r, const char *path)
{
	struct web *w = r->web;
	bool get = strcmp(r->method, "GET") == 0;

	if (strncmp(path, "/sub/", 5) == 0) {
		if (!web_args_known(r, no_args))
			;
		else if (!get)
			not_allowed(r, "GET");
		else if (chan_name(r, path + 5)) {
			char hello[300];

			r->chan = xstrdup(path + 5);
			web_stream_start(r, STREAM_SUB, "text/event-stream");
			w->nsub_streams++;
			chan_hold(w->srv, r->chan);   /* listed and counted as a subscriber */
			snprintf(hello, sizeof hello, ": subscribed to %s\n\n", r->chan);
			buf_append_str(&r->out, hello);
		}
		return true;
	}
	if (strncmp(path, "/pub/", 5) == 0) {
		struct buf body = { 0 };
		char err[256];
		size_t n;

		if (!web_args_known(r, no_args))
			;
		else if (strcmp(r->method, "POST") != 0)
			not_allowed(r, "POST");
		else if (!chan_name(r, path + 5))
			;
		else if (buf_used(&r->body) == 0 || msg_json_compact(bhead(&r->body),
		    buf_used(&r->body), &body, err, sizeof err) < 0)
			web_error(r, 400, "invalid_json", NULL, "a message is JSON: %s",
			    buf_used(&r->body) ? err : "empty");
		else {
			n = chan_publish(w->srv, path + 5, bhead(&body), buf_used(&body));
			if (n == SIZE_MAX)   /* cluster mode: Redis is away */
				web_error(r, 503, "unavailable", NULL, "%s",
				    broker_store_reason(&w->srv->broker));
			else
				web_reply_json(r, 200, json_pack("{s:s, s:I}", "channel",
				    path + 5, "delivered", (json_int_t)(n + w->sse_delivered)));
		}
		buf_free(&body);
		return true;
	}
	if (strcmp(path, "/events") == 0) {
		const char *jobs = web_arg(r, "jobs");

		if (!web_args_known(r, events_args))
			return true;
		if (!get) {
			not_allowed(r, "GET");
			return true;
		}
		r->jobs = 2;
		if (jobs != NULL && strcmp(jobs, "none") == 0)
			r->jobs = 0;
		else if (jobs != NULL && strcmp(jobs, "failed") == 0)
			r->jobs = 1;
		else if (jobs != NULL && strcmp(jobs, "all") != 0) {
			web_error(r, 400, "invalid_type", NULL,
			    "jobs must be all, failed or none");
			return true;
		}
		web_stream_start(r, STREAM_EVENTS, "text/event-stream");
		w->nevents_streams++;
		buf_append_str(&r->out, ": jobfs events\nretry: 2000\n\n");
		return true;
	}
	return false;
}
