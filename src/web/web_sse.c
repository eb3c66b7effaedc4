/*
 * web_sse.c — Server-Sent Events: GET /sub/C streams channel C (Tempest's
 * EventSource front), POST /pub/C publishes to it, GET /events streams the
 * broker's events.
 *
 * An event is encoded once, into a refcounted sse_ev appended to a log:
 * the /events log, or channel C's (which exists while C has streams).  A
 * stream is a cursor in its log; nothing is done per stream when an event
 * comes but to wake the streams whose reader sleeps, once until they have
 * read.  The log keeps its newest WEB_STREAM_MAX bytes of events (the
 * oldest of them may pass that bound alone, so that an event larger than
 * the bound still reaches the streams that keep up); a stream whose cursor
 * is behind the log's first event has missed those between, and its next
 * event is preceded by an "event: missed" whose data is the count, as a
 * TCP subscriber gets "missed":N.  A slow reader therefore costs nothing
 * but its connection (the events are held once, for every stream), never
 * the daemon's memory, and never slows a publisher.  Idle streams get a
 * comment line now and then, which also finds clients that went away.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "web/web_int.h"

/* Bytes of the events held, by logs and by the streams sending them. */
static size_t held_bytes;

static void
sse_ev_unref(struct sse_ev *e)
{
	if (e != NULL && --e->refs == 0) {
		held_bytes -= e->len;
		free(e);
	}
}

static struct sse_ev *
sselog_at(const struct sse_log *l, uint64_t seq)
{
	return l->ring[(l->head + (size_t)(seq - l->first)) % l->cap];
}

static void
sselog_init(struct sse_log *l)
{
	memset(l, 0, sizeof *l);
	TAILQ_INIT(&l->waiting);
}

static void
sselog_pop(struct sse_log *l)
{
	struct sse_ev *e = l->ring[l->head];

	l->bytes -= e->len;
	l->head = (l->head + 1) % l->cap;
	l->n--;
	l->first++;
	sse_ev_unref(e);
}

static void
sselog_clear(struct sse_log *l)
{
	while (l->n > 0)
		sselog_pop(l);
	free(l->ring);
	l->ring = NULL;
	l->cap = l->head = 0;
}

/*
 * log_add: e (its first reference) at the end of l; the oldest events go
 * while the rest hold WEB_STREAM_MAX bytes; the streams that slept wake.
 */
static void
sselog_add(struct sse_log *l, struct sse_ev *e)
{
	struct wreq *r;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64, i;
		struct sse_ev **ring = xmalloc(cap * sizeof *ring);

		for (i = 0; i < l->n; i++)
			ring[i] = l->ring[(l->head + i) % l->cap];
		free(l->ring);
		l->ring = ring;
		l->cap = cap;
		l->head = 0;
	}
	memcpy(e->before, l->count, sizeof e->before);
	e->at = l->total;
	l->total += e->len;
	l->count[e->cls]++;
	l->ring[(l->head + l->n) % l->cap] = e;
	l->n++;
	l->bytes += e->len;
	while (l->n > 1 && l->bytes - l->ring[l->head]->len >= WEB_STREAM_MAX)
		sselog_pop(l);
	while ((r = TAILQ_FIRST(&l->waiting)) != NULL)
		web_stream_wake(r);   /* takes it off the list */
}

/* Scratch space for encoding, kept from one event to the next (every
 * job passes here three times). */
static struct buf ev_scratch, json_scratch;

/* ev_new: an event: id (0: none), name (NULL: none) and data, as SSE. */
static struct sse_ev *
ev_new(int cls, uint64_t id, const char *name, const char *data, size_t len)
{
	struct buf *b = &ev_scratch;
	struct sse_ev *e;
	char head[64];
	size_t i, start;

	if (id > 0) {
		snprintf(head, sizeof head, "id: %" PRIu64 "\n", id);
		buf_append_str(b, head);
	}
	if (name != NULL) {
		buf_append_str(b, "event: ");
		buf_append_str(b, name);
		buf_append(b, "\n", 1);
	}
	/* A line break in the data starts another data: line (SSE joins
	 * them); a data line may be as long as the data: SSE sets no limit. */
	for (start = i = 0; i <= len; i++) {
		if (i == len || data[i] == '\n' || data[i] == '\r') {
			buf_append_str(b, "data: ");
			buf_append(b, data + start, i - start);
			buf_append(b, "\n", 1);
			start = i + 1;
		}
	}
	buf_append(b, "\n", 1);
	e = xmalloc(sizeof *e + buf_used(b));
	e->refs = 1;
	e->cls = (uint8_t)cls;
	e->len = buf_used(b);
	memcpy(e->data, bhead(b), e->len);
	held_bytes += e->len;
	b->off = b->len = 0;
	if (b->cap > 64 * 1024)
		buf_free(b);   /* a large message's: not kept */
	return e;
}

static bool
wants(const struct wreq *r, int cls)
{
	return cls == SSE_OTHER || (r->stream == STREAM_EVENTS &&
	    (r->jobs == 2 || (r->jobs == 1 && cls == SSE_FAILURE)));
}

/*
 * sse_read: up to max bytes of r's events (MHD's content reader, through
 * web_req.c's stream_reader); 0: nothing to send now.  An event goes out in
 * as many pieces as max asks.
 */
size_t
sse_read(struct wreq *r, char *out, size_t max)
{
	struct sse_log *l = r->log;
	struct web *w = r->web;
	size_t n = 0, k;
	int c;

	while (n < max) {
		if (r->ev != NULL) {
			k = r->ev->len - r->evoff;
			if (k > max - n)
				k = max - n;
			memcpy(out + n, r->ev->data + r->evoff, k);
			n += k;
			r->evoff += k;
			if (r->evoff == r->ev->len) {
				sse_ev_unref(r->ev);
				r->ev = NULL;
			}
			continue;
		}
		if (r->cur < l->first) {
			/* The log went on without it: count what it wanted. */
			const uint64_t *at = l->n > 0 ? l->ring[l->head]->before : l->count;

			for (c = 0; c < 3; c++) {
				if (wants(r, c))
					r->missed += at[c] - r->ccnt[c];
				r->ccnt[c] = at[c];
			}
			r->cur = l->first;
		}
		if (r->cur == l->first + l->n)
			break;
		{
			struct sse_ev *e = sselog_at(l, r->cur);

			if (!wants(r, e->cls)) {
				r->cur++;
				r->ccnt[e->cls]++;
				continue;
			}
			if (r->missed > 0) {
				char head[64];
				int h = snprintf(head, sizeof head,
				    "event: missed\ndata: %" PRIu64 "\n\n", r->missed);

				if ((size_t)h > max - n)
					break;
				memcpy(out + n, head, (size_t)h);
				n += (size_t)h;
				w->events_missed += r->missed;
				r->missed = 0;
			}
			r->cur++;
			r->ccnt[e->cls]++;
			e->refs++;
			r->ev = e;
			r->evoff = 0;
			w->events_sent++;
		}
	}
	return n;
}

/* sse_wait: r's reader sleeps until its log's next event. */
void
sse_wait(struct wreq *r)
{
	TAILQ_INSERT_TAIL(&r->log->waiting, r, wentry);
}

void
sse_unwait(struct wreq *r)
{
	TAILQ_REMOVE(&r->log->waiting, r, wentry);
}

/* Bytes of a stream's socket send buffer: what the kernel holds for a
 * reader besides the log (its default grows to megabytes a stream, all
 * of them written, at a cost per event, before a reader that takes
 * nothing is found out). */
#define SSE_SNDBUF (64 * 1024)

/* stream_join: r's cursor at the end of l: it gets what comes next. */
static void
stream_join(struct wreq *r, struct sse_log *l)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	int sndbuf = SSE_SNDBUF;

	if (ci != NULL)
		(void)setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
		    sizeof sndbuf);
	r->log = l;
	r->cur = l->first + l->n;
	memcpy(r->ccnt, l->count, sizeof r->ccnt);
	l->nstreams++;
}

/* sse_stream_gone: r leaves its log (and a channel's log with its last
 * stream). */
void
sse_stream_gone(struct wreq *r)
{
	struct sse_log *l = r->log;

	if (r->reader_waits) {
		r->reader_waits = false;
		sse_unwait(r);
	}
	sse_ev_unref(r->ev);
	r->ev = NULL;
	r->log = NULL;
	if (--l->nstreams == 0 && l->chan != NULL) {
		HASH_DEL(r->web->chlogs, l);
		sselog_clear(l);
		free(l->chan);
		free(l);
	}
}

void
sse_free(struct web *w)
{
	struct sse_log *l, *tmp;

	sselog_clear(&w->evlog);
	buf_free(&ev_scratch);
	buf_free(&json_scratch);
	HASH_ITER(hh, w->chlogs, l, tmp) {
		HASH_DEL(w->chlogs, l);
		sselog_clear(l);
		free(l->chan);
		free(l);
	}
}

/*
 * sse_stats: into o (GET /stats' "http"), streams_full (streams that have
 * missed events they have not been told of yet), stream_queued_bytes
 * (bytes unread, summed over the streams: each counts its log's events
 * after its cursor, which are held once for all) and event_bytes (the
 * bytes of the events held: what the streams cost).
 */
void
sse_stats(struct web *w, json_t *o)
{
	struct wreq *r;
	uint64_t full = 0, queued = 0;

	TAILQ_FOREACH(r, &w->streams, entry) {
		struct sse_log *l = r->log;

		queued += buf_used(&r->out);
		if (l == NULL)
			continue;
		if (r->ev != NULL)
			queued += r->ev->len - r->evoff;
		if (r->cur < l->first)
			full++;
		if (r->cur < l->first || l->n == 0)
			queued += l->bytes;
		else if (r->cur < l->first + l->n)
			queued += l->total - sselog_at(l, r->cur)->at;
	}
	json_object_set_new(o, "streams_full", json_integer((json_int_t)full));
	json_object_set_new(o, "stream_queued_bytes", json_integer((json_int_t)queued));
	json_object_set_new(o, "event_bytes", json_integer((json_int_t)held_bytes));
}

/* on_message: every channel message, to the log of its channel's streams. */
static void
on_message(void *ctx, const char *name, const char *body, size_t len)
{
	struct web *w = ctx;
	struct sse_log *l;
	struct chan *ch;

	w->sse_delivered = 0;
	if (w->d == NULL || w->nsub_streams == 0)
		return;
	HASH_FIND_STR(w->chlogs, name, l);
	if (l == NULL)
		return;
	sselog_add(l, ev_new(SSE_OTHER, 0, NULL, body, len));
	w->sse_delivered = l->nstreams;
	if (w->sse_delivered > 0 && (ch = chan_find(w->srv->broker, name)) != NULL)
		ch->delivered += w->sse_delivered;   /* stats: as TCP deliveries */
}

void
sse_init(struct web *w)
{
	sselog_init(&w->evlog);
	w->chlogs = NULL;
	chan_listen(w->srv->broker, on_message, w);
}

/*
 * sse_event: a broker event to every /events stream that wants it:
 * job events only to those that asked (?jobs=all, the default, or
 * ?jobs=failed for failures alone); steals data.
 */
void
sse_event(struct web *w, const char *name, json_t *data, bool job_event, bool failure)
{
	char *text;
	uint64_t id = ++w->next_event;

	text = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	if (text == NULL)
		return;
	sselog_add(&w->evlog, ev_new(!job_event ? SSE_OTHER : failure ? SSE_FAILURE :
	    SSE_JOB, id, name, text, strlen(text)));
	free(text);
}

/* json_str: s as a JSON string onto b (control characters, " and \
 * escaped; the rest as it is). */
static void
json_str(struct buf *b, const char *s)
{
	const char *run = s;
	char esc[8];

	buf_append(b, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_append(b, run, (size_t)(s - run));
		if (c == '"' || c == '\\')
			snprintf(esc, sizeof esc, "\\%c", c);
		else
			snprintf(esc, sizeof esc, "\\u%04x", c);
		buf_append_str(b, esc);
		run = s + 1;
	}
	buf_append(b, run, (size_t)(s - run));
	buf_append(b, "\"", 1);
}

/*
 * sse_job_event: a job event (submitted, started, finished) to the /events
 * streams, written as its JSON directly: the broker's every job passes
 * here, and a JSON tree built, loaded and dumped per event would cost the
 * daemon a third of its job rate.  worker, state: NULL to leave out;
 * runtime < 0: left out.
 */
void
sse_job_event(struct web *w, const char *name, struct job *j, const char *state,
    const char *worker, double runtime)
{
	struct buf *b = &json_scratch;
	char num[40];
	uint64_t id = ++w->next_event;

	b->off = b->len = 0;
	buf_append_str(b, "{\"id\":");
	buf_append_str(b, job_idjson(j));
	buf_append_str(b, ",\"type\":");
	json_str(b, j->type->name);
	if (state != NULL) {
		buf_append_str(b, ",\"state\":");
		json_str(b, state);
	}
	if (worker != NULL) {
		buf_append_str(b, ",\"worker\":");
		json_str(b, worker);
	}
	if (runtime >= 0) {
		snprintf(num, sizeof num, ",\"runtime\":%.17g", runtime);
		buf_append_str(b, num);
		if (strpbrk(num + 11, ".eEni") == NULL)
			buf_append_str(b, ".0");
	}
	buf_append(b, "}", 1);
	sselog_add(&w->evlog, ev_new(strcmp(name, "finished") != 0 ||
	    j->state == JOB_DONE ? SSE_JOB : SSE_FAILURE, id, name, bhead(b),
	    buf_used(b)));
}

/* Partials larger than this are told by their size alone on /events. */
#define SSE_PARTIAL_MAX (64u * 1024)

/*
 * sse_job_partial: a "partial" event: a job's partial result (a worker's
 * progress) as {"id","type","body"}, or "bytes" instead of "body" past
 * SSE_PARTIAL_MAX, for streams that take every job event.
 */
void
sse_job_partial(struct web *w, struct job *j, const char *body, size_t len)
{
	struct buf *b = &json_scratch;
	char num[40];
	uint64_t id = ++w->next_event;

	b->off = b->len = 0;
	buf_append_str(b, "{\"id\":");
	buf_append_str(b, job_idjson(j));
	buf_append_str(b, ",\"type\":");
	json_str(b, j->type->name);
	if (len <= SSE_PARTIAL_MAX) {
		buf_append_str(b, ",\"body\":");
		buf_append(b, body, len);
	} else {
		snprintf(num, sizeof num, ",\"bytes\":%zu", len);
		buf_append_str(b, num);
	}
	buf_append(b, "}", 1);
	sselog_add(&w->evlog, ev_new(SSE_JOB, id, "partial", bhead(b), buf_used(b)));
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
		json_t *o = broker_stats(w->srv->broker, NULL, STATS_TYPES_MAX);

		json_object_set_new(o, "http", web_stats(w));
		json_object_set_new(o, "time", json_real(now_wall()));
		sse_event(w, "stats", o, false, false);
	}
	if (now - w->last_ping < every)
		return;
	w->last_ping = now;
	TAILQ_FOREACH(r, &w->streams, entry)
		if (r->log != NULL && r->reader_waits)
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

			struct sse_log *l;

			r->chan = xstrdup(path + 5);
			HASH_FIND_STR(w->chlogs, r->chan, l);
			if (l == NULL) {
				l = xmalloc(sizeof *l);
				sselog_init(l);
				l->chan = xstrdup(r->chan);
				HASH_ADD_KEYPTR(hh, w->chlogs, l->chan, strlen(l->chan), l);
			}
			web_stream_start(r, STREAM_SUB, "text/event-stream");
			stream_join(r, l);
			w->nsub_streams++;
			chan_hold(w->srv->broker, r->chan);   /* listed and counted as a subscriber */
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
			n = chan_publish(w->srv->broker, path + 5, bhead(&body), buf_used(&body));
			if (n == SIZE_MAX)   /* cluster mode: Redis is away */
				web_error(r, 503, "unavailable", NULL, "%s",
				    broker_store_reason(w->srv->broker));
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
		stream_join(r, &w->evlog);
		w->nevents_streams++;
		buf_append_str(&r->out, ": jobfs events\nretry: 2000\n\n");
		return true;
	}
	return false;
}
