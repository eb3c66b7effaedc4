/*
 * web_route.c — Tempest's front: --http-route PREFIX=TYPE makes each
 * request under PREFIX a job of TYPE, and the worker's answer the HTTP
 * response.
 *
 * The job's body: {"method":M,"path":P,"query":{..},"headers":{..},
 * "body":TEXT} (or "body_base64" when the request body is not UTF-8).
 * The answer: Tempest's [code, headers, body] or {"status":..,
 * "headers":{..},"body":..|"body_base64":..}.  Partial results stream:
 * the first fixes the status and headers (the same shapes, or a bare
 * body: 200), each one's body is a chunk of a chunked response, and the
 * final answer's body, if any, is the last chunk.
 *
 * No worker takes the job within --http-timeout: 503, and the job is
 * cancelled.  The same holds when the worker that took it is lost and
 * the job is queued again: no other takes it within --http-timeout of
 * that, 503.  A failed job: 502; timed out (its own timeout): 504; an
 * answer of the wrong shape: 502 with the reason.  A client that goes
 * cancels its job: nobody else would read the answer.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web/web_int.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *
base64_encode(const unsigned char *p, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1), *o = out;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		*o++ = b64[p[i] >> 2];
		*o++ = b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = b64[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		*o++ = b64[p[i + 2] & 63];
	}
	if (i < n) {
		*o++ = b64[p[i] >> 2];
		if (i + 1 < n) {
			*o++ = b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
			*o++ = b64[(p[i + 1] & 15) << 2];
		} else {
			*o++ = b64[(p[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

bool
web_base64_decode(const char *s, size_t n, struct buf *out)
{
	unsigned v = 0;
	int bits = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		const char *p;
		unsigned char c;

		if (s[i] == '=')
			break;
		if (s[i] == '\n' || s[i] == '\r')
			continue;
		if ((p = strchr(b64, s[i])) == NULL || s[i] == '\0')
			return false;
		v = (v << 6) | (unsigned)(p - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			c = (unsigned char)(v >> bits);
			buf_append(out, &c, 1);
		}
	}
	return true;
}

const struct web_route *
route_find(struct web *w, const char *path)
{
	const struct web_route *best = NULL;
	size_t i;

	for (i = 0; i < w->nroutes; i++) {
		const struct web_route *rt = &w->routes[i];

		if (strncmp(path, rt->prefix, rt->len) != 0)
			continue;
		if (rt->prefix[rt->len - 1] != '/' && path[rt->len] != '\0' &&
		    path[rt->len] != '/')
			continue;
		if (best == NULL || rt->len > best->len)
			best = rt;
	}
	return best;
}

static enum MHD_Result
add_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	json_t *o = cls, *old, *v;

	(void)kind;
	if (value == NULL) {
		json_object_set_new(o, key, json_null());
		return MHD_YES;
	}
	old = json_object_get(o, key);
	if (json_is_string(old)) {
		char *joined = xprintf("%s, %s", json_string_value(old), value);

		v = json_string(joined);
		free(joined);
	} else
		v = json_string(value);
	if (v != NULL)
		json_object_set_new(o, key, v);
	return MHD_YES;
}

static struct wreq *route_req(struct web *, struct job *, bool streaming);

static void
route_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct wreq *r = t->data;
	struct job *j = r->job;
	struct broker *b = r->web->srv->broker;

	(void)revents;
	if (j == NULL || JOB_FINISHED(j))
		return;
	if (j->state == JOB_RUNNING) {
		/* A worker has it: it may take its time.  Look again later: a
		 * worker that is lost puts the job back in its queue, where
		 * the timeout holds again (route_job_requeued restarts it). */
		ev_timer_set(t, r->web->route_timeout, 0.);
		ev_timer_start(loop, t);
		return;
	}
	r->web->route_timeouts++;
	web_error(r, 503, "timeout", job_idjson(j), "no worker of type %s took "
	    "the request within %g s (--http-timeout)", j->type->name,
	    r->web->route_timeout);
	r->job = NULL;
	web_wake(r);
	broker_end(b, j, JOB_CANCELLED);
	job_unref(b, j);
}

/*
 * route_job_requeued: j's worker was lost and j is queued again: the
 * request waits for another worker as it waited for the first, for
 * --http-timeout from now.  A streamed answer that had begun ends as an
 * error instead.
 */
void
route_job_requeued(struct web *w, struct job *j)
{
	struct wreq *r;

	if (w->nroutes == 0)
		return;
	if ((r = route_req(w, j, true)) != NULL) {
		/* Its answer had begun: another worker would begin it again
		 * inside the first.  End it as an error; the job is cancelled
		 * when the request goes (not here: the broker is requeueing
		 * it). */
		r->abort = true;
		web_stream_append(r, "", 0);
		return;
	}
	if ((r = route_req(w, j, false)) == NULL || w->route_timeout <= 0)
		return;
	ev_timer_stop(w->srv->loop, &r->timer);
	ev_timer_set(&r->timer, w->route_timeout, 0.);
	ev_timer_start(w->srv->loop, &r->timer);
}

void
route_start(struct wreq *r, const struct web_route *rt)
{
	struct broker *b = r->web->srv->broker;
	struct submit_req req = { 0 };
	json_t *o, *q = json_object(), *h = json_object(), *body;
	struct job *j = NULL;
	char *text;
	enum broker_err rc;

	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, add_value, q);
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, add_value, h);
	o = json_pack("{s:s, s:s, s:o, s:o}", "method", r->method, "path", r->url,
	    "query", q, "headers", h);
	if (o == NULL) {
		web_error(r, 400, "invalid_type", NULL, "the request path is not UTF-8");
		return;
	}
	body = json_stringn(bhead(&r->body), buf_used(&r->body));
	if (body != NULL)
		json_object_set_new(o, "body", body);
	else {
		char *enc = base64_encode((const unsigned char *)bhead(&r->body),
		    buf_used(&r->body));

		json_object_set_new(o, "body_base64", json_string(enc));
		free(enc);
	}
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	req.type = rt->type;
	req.body = text;
	req.body_len = strlen(text);
	rc = broker_submit(b, &req, &j);
	free(text);
	if (rc != BERR_OK && rc != BERR_PENDING) {
		web_refused(r, b, rc, NULL);
		return;
	}
	r->web->routed++;
	job_ref(j);
	r->job = j;
	r->route = true;
	web_park(r, WAIT_ROUTE);
	if (r->web->route_timeout > 0) {
		ev_timer_init(&r->timer, route_timer_cb, r->web->route_timeout, 0.);
		r->timer.data = r;
		ev_timer_start(r->web->srv->loop, &r->timer);
	}
}

/* Headers that HTTP framing owns: a worker's are dropped. */
static bool
hop_header(const char *k)
{
	return strcasecmp(k, "content-length") == 0 ||
	    strcasecmp(k, "transfer-encoding") == 0 ||
	    strcasecmp(k, "connection") == 0;
}

/*
 * answer_parse: a worker's answer (or partial) as status, headers and
 * body bytes.  bare: a value of neither shape is a body (partials).
 */
static bool
answer_parse(const char *text, size_t len, bool bare, unsigned *status,
    json_t **headers, struct buf *body, const char **ctype, char *why, size_t wlen)
{
	json_t *a = json_loadb(text, len, JSON_DECODE_ANY, NULL);
	json_t *st = NULL, *hd = NULL, *bd = NULL, *b64v = NULL, *v;
	const char *k;
	bool ok = false;

	*status = 200;
	*headers = json_object();
	*ctype = NULL;
	if (json_is_array(a) && json_array_size(a) == 3) {
		st = json_array_get(a, 0);
		hd = json_array_get(a, 1);
		bd = json_array_get(a, 2);
	} else if (json_is_object(a) && (json_object_get(a, "status") != NULL ||
	    json_object_get(a, "body") != NULL || json_object_get(a, "body_base64") != NULL)) {
		st = json_object_get(a, "status");
		hd = json_object_get(a, "headers");
		bd = json_object_get(a, "body");
		b64v = json_object_get(a, "body_base64");
	} else if (bare) {
		bd = a;
	} else {
		snprintf(why, wlen, "the answer must be [code, headers, body] or "
		    "{\"status\":..,\"headers\":{..},\"body\":..}");
		goto out;
	}
	if (st != NULL && (!json_is_integer(st) || json_integer_value(st) < 200 ||
	    json_integer_value(st) > 599)) {
		snprintf(why, wlen, "the status must be an integer from 200 to 599");
		goto out;
	}
	if (st != NULL)
		*status = (unsigned)json_integer_value(st);
	if (hd != NULL && !json_is_object(hd) && !json_is_null(hd)) {
		snprintf(why, wlen, "the headers must be an object");
		goto out;
	}
	json_object_foreach(hd, k, v) {
		if (!json_is_string(v) || strpbrk(k, "\r\n: ") != NULL || *k == '\0' ||
		    strpbrk(json_string_value(v), "\r\n") != NULL) {
			snprintf(why, wlen, "header %.64s must be a string without line breaks", k);
			goto out;
		}
		if (!hop_header(k))
			json_object_set(*headers, k, v);
		if (strcasecmp(k, "content-type") == 0)
			*ctype = "";
	}
	if (b64v != NULL) {
		if (!json_is_string(b64v) || !web_base64_decode(json_string_value(b64v),
		    json_string_length(b64v), body)) {
			snprintf(why, wlen, "body_base64 must be base64");
			goto out;
		}
		if (*ctype == NULL)
			*ctype = "application/octet-stream";
	} else if (json_is_string(bd)) {
		buf_append(body, json_string_value(bd), json_string_length(bd));
		if (*ctype == NULL)
			*ctype = "text/plain; charset=utf-8";
	} else if (bd != NULL && !json_is_null(bd)) {
		json_dump_callback(bd, buf_json_cb, body, JSON_COMPACT | JSON_ENCODE_ANY);
		if (*ctype == NULL)
			*ctype = "application/json";
	}
	ok = true;
out:
	json_decref(a);
	if (*ctype != NULL && **ctype == '\0')
		*ctype = NULL;  /* the worker's own Content-Type */
	return ok;
}

static struct wreq *
route_req(struct web *w, struct job *j, bool streaming)
{
	struct wreq *r;

	if (streaming) {
		TAILQ_FOREACH(r, &w->rstreams, entry)
			if (r->job == j)
				return r;
	} else {
		TAILQ_FOREACH(r, &w->parked, entry)
			if (r->route && r->job == j && r->wait == WAIT_ROUTE)
				return r;
	}
	return NULL;
}

/* route_job_partial: a chunk of the answer; the first one starts it. */
void
route_job_partial(struct web *w, struct job *j, const char *body, size_t len)
{
	struct wreq *r;
	struct buf chunk = { 0 };
	json_t *headers;
	const char *ctype;
	unsigned status;
	char why[160];

	if (w->nroutes == 0)
		return;
	if ((r = route_req(w, j, true)) == NULL && (r = route_req(w, j, false)) == NULL)
		return;
	if (!answer_parse(body, len, true, &status, &headers, &chunk, &ctype, why,
	    sizeof why)) {
		json_decref(headers);
		buf_free(&chunk);
		return;
	}
	if (r->stream == STREAM_NONE) {
		ev_timer_stop(w->srv->loop, &r->timer);
		web_unpark(r);
		r->status = status;
		r->headers = headers;
		headers = NULL;
		web_stream_start(r, STREAM_ROUTE, ctype);
		buf_append(&r->out, bhead(&chunk), buf_used(&chunk));
		web_wake(r);
	} else if (buf_used(&r->out) + buf_used(&chunk) > w->srv->opt.max_frame) {
		/* The client does not keep up: end its answer, and the job. */
		r->abort = true;
		web_stream_append(r, "", 0);
		r->job = NULL;
		broker_end(w->srv->broker, j, JOB_CANCELLED);
		job_unref(w->srv->broker, j);
	} else if (buf_used(&chunk) > 0)
		web_stream_append(r, bhead(&chunk), buf_used(&chunk));
	json_decref(headers);
	buf_free(&chunk);
}

/* result_text, result_len: a done job's result ("null" if it has none:
 * it went for --keep-bytes, which a route's answer never waits for). */
static const char *
result_text(const struct job *j)
{
	return j->result != NULL ? j->result->data : "null";
}

static size_t
result_len(const struct job *j)
{
	return j->result != NULL ? j->result_len : 4;
}

/* route_job_finished: the worker answered (or the job ended): respond. */
void
route_job_finished(struct web *w, struct job *j)
{
	struct wreq *r;
	struct buf body = { 0 };
	json_t *headers = NULL;
	const char *ctype;
	unsigned status;
	char why[160];

	if (w->nroutes == 0)
		return;   /* no request waits for a job */
	if ((r = route_req(w, j, true)) != NULL) {
		if (j->state == JOB_DONE && answer_parse(result_text(j), result_len(j),
		    true, &status, &headers, &body, &ctype, why, sizeof why) &&
		    buf_used(&body) > 0)
			web_stream_append(r, bhead(&body), buf_used(&body));
		if (j->state == JOB_DONE)
			r->eof = true;
		else
			r->abort = true;
		web_stream_append(r, "", 0);
		json_decref(headers);
		buf_free(&body);
		return;
	}
	if ((r = route_req(w, j, false)) == NULL)
		return;
	ev_timer_stop(w->srv->loop, &r->timer);
	switch (j->state) {
	case JOB_DONE:
		if (answer_parse(result_text(j), result_len(j), false, &status, &headers,
		    &body, &ctype, why, sizeof why)) {
			web_reply(r, status, ctype, bhead(&body), buf_used(&body));
			r->headers = headers;
			headers = NULL;
		} else
			web_error(r, 502, "invalid_type", job_idjson(j),
			    "the worker's answer has the wrong shape: %s", why);
		break;
	case JOB_TIMEOUT:
		web_error(r, 504, "timeout", job_idjson(j), "%s", j->key);
		break;
	case JOB_CANCELLED:
		web_error(r, 502, "cancelled", job_idjson(j), "%s", j->key);
		break;
	default:
		web_error(r, 502, "job_failed", job_idjson(j), "%s", j->key);
		break;
	}
	json_decref(headers);
	buf_free(&body);
	web_gate(r);
}
