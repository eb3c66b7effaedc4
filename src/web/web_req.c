/*
 * web_req.c — the web face's requests: answers, parking (a request that
 * waits for a broker event), streams, and the MHD callbacks that read a
 * request: its head judged at once (head_gate: Host, token, cross-site,
 * content type, announced length), its body counted in --max-input, then
 * dispatched to its noun.  web.c's opening comment tells the whole design.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "web/web_int.h"

static const char *
status_phrase_code(unsigned status)
{
	switch (status) {
	case 400: return "invalid_json";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 413: return "frame_too_large";
	case 415: return "unsupported_media_type";
	default:  return "error";
	}
}

/* ------------------------------------------------------------ answers */

void
web_reply(struct wreq *r, unsigned status, const char *ctype, const char *body,
    size_t len)
{
	r->status = status;
	r->ctype = ctype;
	r->resp.off = r->resp.len = 0;
	buf_append(&r->resp, body, len);
	r->ready = true;
}

void
web_reply_json(struct wreq *r, unsigned status, json_t *o)
{
	struct buf b = { 0 };

	json_dump_callback(o, buf_json_cb, &b, JSON_COMPACT | JSON_ENCODE_ANY);
	buf_append(&b, "\n", 1);
	json_decref(o);
	web_reply(r, status, "application/json", bhead(&b), buf_used(&b));
	buf_free(&b);
}

/* web_error: {"error":CODE,"reason":...[,"id":ID]}, the protocol's shape. */
void
web_error(struct wreq *r, unsigned status, const char *code, const char *idjson,
    const char *fmt, ...)
{
	char reason[512];
	va_list ap;
	json_t *o;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	o = json_pack("{s:s, s:s}", "error", code != NULL ? code :
	    status_phrase_code(status), "reason", reason);
	if (o == NULL)  /* a reason that is not UTF-8 */
		o = json_pack("{s:s, s:s}", "error", code, "reason", "(not UTF-8)");
	if (idjson != NULL)
		json_object_set_new(o, "id", json_loads(idjson, JSON_DECODE_ANY, NULL));
	web_reply_json(r, status, o);
}

/* web_idjson: a key as JSON text (a string), for answers and events. */
char *
web_idjson(const char *key)
{
	json_t *s = json_string(key);
	char *t = s != NULL ? json_dumps(s, JSON_ENCODE_ANY) : xstrdup("null");

	json_decref(s);
	return t;
}

const char *
web_arg(struct wreq *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct args_seen {
	const char *const *known;
	char unknown[64];
	bool bad;
};

static enum MHD_Result
arg_seen(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct args_seen *a = cls;
	size_t i;

	(void)kind;
	(void)value;
	for (i = 0; a->known[i] != NULL; i++)
		if (strcmp(a->known[i], key) == 0)
			return MHD_YES;
	snprintf(a->unknown, sizeof a->unknown, "%s", key);
	a->bad = true;
	return MHD_NO;
}

/*
 * web_args_known: true if every query parameter of r is one of known
 * (NULL-terminated); else r is answered 400 naming the first other one.
 * A misspelt option is refused rather than ignored.
 */
bool
web_args_known(struct wreq *r, const char *const known[])
{
	struct args_seen a = { .known = known };
	struct buf list = { 0 };
	size_t i;

	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, arg_seen, &a);
	if (!a.bad)
		return true;
	for (i = 0; known[i] != NULL; i++) {
		buf_append_str(&list, i > 0 ? ", " : "");
		buf_append_str(&list, known[i]);
	}
	buf_append(&list, "", 1);
	web_error(r, 400, "invalid_type", NULL, "unknown query parameter \"%s\" "
	    "(%s %s takes %s)", a.unknown, r->method, r->url,
	    known[0] != NULL ? bhead(&list) : "none");
	buf_free(&list);
	return false;
}

/* ------------------------------------------------------------- parking */

static void
resume(struct wreq *r)
{
	if (!r->suspended)
		return;
	r->suspended = false;
	MHD_resume_connection(r->conn);
	r->web->kick = true;
}

/* watch_cb: the socket of a parked request is readable: the client closed
 * it (or sent more: a pipelined request, which we leave to MHD later). */
static void
watch_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct wreq *r = w->data;
	char c;
	ssize_t n;

	(void)revents;
	n = recv(w->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	ev_io_stop(loop, w);
	if (n > 0)
		return;
	log_debug("http: client of %s %s went while it waited", r->method, r->url);
	r->gone = true;
	web_wake(r);
}

/* web_park: the answer waits (wait says for what); the handler suspends
 * the connection when it returns. */
void
web_park(struct wreq *r, enum wr_wait wait)
{
	const union MHD_ConnectionInfo *ci;

	r->wait = wait;
	if (r->listed)
		return;
	TAILQ_INSERT_TAIL(&r->web->parked, r, entry);
	r->listed = true;
	r->web->nparked++;
	ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL) {
		ev_io_init(&r->watch, watch_cb, ci->connect_fd, EV_READ);
		r->watch.data = r;
		ev_io_start(r->web->srv->loop, &r->watch);
	}
}

void
web_unpark(struct wreq *r)
{
	if (r->listed && r->stream == STREAM_NONE) {
		TAILQ_REMOVE(&r->web->parked, r, entry);
		r->listed = false;
		r->web->nparked--;
	}
	ev_io_stop(r->web->srv->loop, &r->watch);
	r->wait = WAIT_NONE;
}

/* web_wake: the parked answer is ready (or its client gone): resume. */
void
web_wake(struct wreq *r)
{
	web_unpark(r);
	resume(r);
}

/*
 * web_gate: the answer in r acknowledges something the store may not have
 * made durable yet: hold it until the durable event covers the store's
 * mark as it is now.  Without a store, or once durable, it goes at once.
 */
void
web_gate(struct wreq *r)
{
	struct broker *b = r->web->srv->broker;

	if (broker_held(b)) {
		r->mark = broker_mark(b);
		web_park(r, WAIT_DURABLE);
	} else if (r->wait != WAIT_NONE)
		web_wake(r);
}

/* ------------------------------------------------------------- streams */

static ssize_t
stream_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct wreq *r = cls;
	size_t n = buf_used(&r->out);

	(void)pos;
	if (r->abort)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	/* Its own bytes first (a greeting, a ping, a route's chunks), then
	 * its log's events (SSE). */
	if (n > 0) {
		if (n > max)
			n = max;
		memcpy(out, buf_head(&r->out), n);
		buf_consume(&r->out, n);
		if (buf_used(&r->out) == 0)
			r->out.off = r->out.len = 0;
	}
	if (r->log != NULL && n < max)
		n += sse_read(r, out + n, max - n);
	if (n > 0)
		return (ssize_t)n;
	if (r->eof)
		return MHD_CONTENT_READER_END_OF_STREAM;
	/* Nothing to send: sleep until web_stream_append or its log's next
	 * event wakes us. */
	r->reader_waits = true;
	if (r->log != NULL)
		sse_wait(r);
	r->suspended = true;
	MHD_suspend_connection(r->conn);
	return 0;
}

/* web_stream_wake: r's reader sleeps: it has something to send now. */
void
web_stream_wake(struct wreq *r)
{
	if (!r->reader_waits)
		return;
	r->reader_waits = false;
	if (r->log != NULL)
		sse_unwait(r);
	resume(r);
}

/* web_stream_start: the answer is a stream of r->out (chunked). */
void
web_stream_start(struct wreq *r, enum wr_stream kind, const char *ctype)
{
	r->stream = kind;
	r->status = r->status ? r->status : 200;
	r->ctype = ctype;
	r->ready = true;
	if (kind != STREAM_NONE && !r->listed) {
		TAILQ_INSERT_TAIL(kind == STREAM_ROUTE ? &r->web->rstreams :
		    &r->web->streams, r, entry);
		r->listed = true;
	}
}

void
web_stream_append(struct wreq *r, const char *p, size_t n)
{
	buf_append(&r->out, p, n);
	web_stream_wake(r);
}

/* --------------------------------------------------------- MHD callbacks */

static void
wreq_free(struct wreq *r)
{
	struct web *w = r->web;
	struct broker *b = w->srv->broker;
	struct job *j = r->job;

	if (r->listed) {
		if (r->stream != STREAM_NONE)
			TAILQ_REMOVE(r->stream == STREAM_ROUTE ? &w->rstreams :
			    &w->streams, r, entry);
		else {
			TAILQ_REMOVE(&w->parked, r, entry);
			w->nparked--;
		}
		if (r->stream == STREAM_EVENTS)
			w->nevents_streams--;
		if (r->stream == STREAM_SUB) {
			w->nsub_streams--;
			chan_drop(w->srv->broker, r->chan);
		}
	}
	if (r->log != NULL)
		sse_stream_gone(r);
	ev_io_stop(w->srv->loop, &r->watch);
	ev_timer_stop(w->srv->loop, &r->timer);
	if (r->ask != NULL)
		web_ask_gone(r);   /* its lookup answers nobody now */
	r->job = NULL;
	if (j != NULL) {
		/* A route's job has nobody else to answer to. */
		if (r->route && !JOB_FINISHED(j))
			broker_end(b, j, JOB_CANCELLED);
		job_unref(b, j);
	}
	body_release(r);
	buf_free(&r->resp);
	buf_free(&r->out);
	json_decref(r->headers);
	free(r->chan);
	free(r->method);
	free(r->url);
	free(r);
}

void
completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct wreq *r = *con_cls;

	(void)cls;
	(void)c;
	if (r != NULL) {
		/* Kept alive without a token: the next request has its deadline
		 * and its place among the unauthenticated again. */
		if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && r->wc != NULL &&
		    !r->wc->authed)
			wconn_list(r->wc);
		wreq_free(r);
	}
	*con_cls = NULL;
}

static bool
header_ok(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

static enum MHD_Result
queue_answer(struct wreq *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	const char *k;
	json_t *v;

	if (r->stream != STREAM_NONE)
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
		    stream_reader, r, NULL);
	else
		resp = MHD_create_response_from_buffer(buf_used(&r->resp),
		    (void *)bhead(&r->resp), MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	if (r->ctype != NULL)
		MHD_add_response_header(resp, "Content-Type", r->ctype);
	if (r->stream == STREAM_SUB || r->stream == STREAM_EVENTS) {
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
		MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	}
	json_object_foreach(r->headers, k, v) {
		if (json_is_string(v) && header_ok(k) && header_ok(json_string_value(v)))
			MHD_add_response_header(resp, k, json_string_value(v));
	}
	if (r->status >= 100 && r->status < 600)
		r->web->responses[r->status / 100]++;
	ret = MHD_queue_response(r->conn, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* bearer: the token of "Authorization: Bearer T" or of "Basic
 * base64(NAME:T)" (a browser's login prompt: the password is the token),
 * decoded into out; false if neither. */
static bool
bearer(const char *h, struct buf *out)
{
	const char *colon;

	if (h == NULL)
		return false;
	if (strncasecmp(h, "Bearer ", 7) == 0) {
		buf_append_str(out, h + 7);
		return buf_used(out) > 0;
	}
	if (strncasecmp(h, "Basic ", 6) != 0 || !web_base64_decode(h + 6, strlen(h + 6), out))
		return false;
	buf_append(out, "", 1);
	if ((colon = strchr(bhead(out), ':')) == NULL)
		return false;
	buf_consume(out, (size_t)(colon + 1 - bhead(out)));
	out->len--;  /* the NUL appended above */
	return buf_used(out) > 0;
}

/*
 * allowed: who may ask, as on the TCP ports.  With --tls-ca (and the web
 * face in TLS) a client without a certificate of those CAs is refused
 * first.  Without --auth a peer beyond loopback is refused (protected
 * mode) unless --insecure, or a client certificate vouched for it.  With
 * --auth the daemon's own paths need a token with the admin role (the
 * web face shows and cancels anyone's jobs), and a peer beyond loopback
 * must send it over TLS: over plain HTTP it is refused, token or not
 * (without the Basic challenge, so that a browser does not send one in
 * clear), unless --insecure.  --http-route paths need no token: they are
 * the front the operator opened, and their jobs are only of the route's
 * type.  Refusals: 401 auth_required (with a Basic challenge, so that a
 * browser asks), 403 forbidden or tls_required.
 */
static bool
allowed(struct wreq *r, bool route)
{
	struct web *w = r->web;
	const struct options *o = &w->srv->opt;
	const union MHD_ConnectionInfo *ci;
	struct auth_id id;
	struct buf tok = { 0 };
	const char *authz;
	char addr[64];
	bool ok, loopback;

	ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	loopback = ci != NULL && net_peer_addr(ci->connect_fd, addr, sizeof addr);
	/* A connection's certificate is judged once, at its first request. */
	if (r->wc != NULL && r->wc->cert == 0)
		r->wc->cert = web_tls_peer_ok(r->conn) ? 1 : -1;
	if (r->wc != NULL ? r->wc->cert < 0 : !web_tls_peer_ok(r->conn)) {
		w->refused_client_cert++;
		web_error(r, 403, "forbidden", NULL, "a client certificate signed "
		    "by one of the daemon's --tls-ca is needed");
		return false;
	}
	if (!auth_enabled()) {
		if (o->insecure || loopback || (web_tls_on() && o->tls_ca != NULL))
			return true;
		web_error(r, 403, "auth_required", NULL, "jobfs serves only loopback "
		    "peers without --auth (or --insecure)");
		return false;
	}
	if (route)
		return true;
	authz = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
	if (!web_tls_on() && !loopback && !o->insecure) {
		w->refused_plain++;
		if (authz != NULL)
			web_error(r, 403, "tls_required", NULL, "a token sent over "
			    "plain HTTP from beyond loopback is refused (it crossed "
			    "the network in clear: consider it seen); use https:// "
			    "(jobfs --tls-cert and --tls-key), or start jobfs with "
			    "--insecure");
		else
			web_error(r, 403, "tls_required", NULL, "with --auth a peer "
			    "beyond loopback must use https:// (jobfs --tls-cert and "
			    "--tls-key) to send its token, unless jobfs runs with "
			    "--insecure");
		return false;
	}
	if (!bearer(authz, &tok) || !auth_check(bhead(&tok), buf_used(&tok), &id)) {
		buf_free(&tok);
		web_error(r, 401, "auth_required", NULL, "a token is needed: "
		    "Authorization: Bearer TOKEN (or Basic, the token as password)");
		r->headers = json_pack("{s:s}", "WWW-Authenticate", "Basic realm=\"jobfs\"");
		return false;
	}
	buf_free(&tok);
	ok = (id.roles & AUTH_ADMIN) != 0;
	if (!ok)
		web_error(r, 403, "forbidden", NULL, "%s is not an admin: the web "
		    "face needs the admin role", id.name);
	return ok;
}

/*
 * host_ok: the Host header names this daemon, so that a page whose name
 * an attacker made resolve to it (DNS rebinding) is refused.  Any address
 * literal is one (a browser sends one only to that address), and so are
 * localhost and names below .localhost (which browsers resolve to
 * loopback themselves), the host's name, and the names of --http-host
 * ('*': any).  No Host at all (HTTP/1.0) is not a browser's.
 */
static bool
host_ok(struct web *w, const char *host)
{
	const struct options *o = &w->srv->opt;
	unsigned char a[sizeof(struct in6_addr)];
	char name[256];
	const char *end;
	size_t n, i;

	if (host == NULL || w->any_host)
		return true;
	if (host[0] == '[') {
		if ((end = strchr(host, ']')) == NULL ||
		    (end[1] != '\0' && end[1] != ':'))
			return false;
		n = (size_t)(end - host - 1);
		if (n >= sizeof name)
			return false;
		memcpy(name, host + 1, n);
		name[n] = '\0';
		return inet_pton(AF_INET6, name, a) == 1;
	}
	end = strchr(host, ':');
	n = end != NULL ? (size_t)(end - host) : strlen(host);
	if (n > 0 && host[n - 1] == '.')
		n--;  /* the root's dot */
	if (n == 0 || n >= sizeof name)
		return false;
	memcpy(name, host, n);
	name[n] = '\0';
	if (inet_pton(AF_INET, name, a) == 1 || strcasecmp(name, "localhost") == 0 ||
	    (n > 10 && strcasecmp(name + n - 10, ".localhost") == 0) ||
	    strcasecmp(name, w->hostname) == 0)
		return true;
	for (i = 0; i < o->nhttp_hosts; i++)
		if (strcasecmp(name, o->http_hosts[i]) == 0)
			return true;
	return false;
}

/* safe_method: one that changes nothing (RFC 9110's safe methods). */
static bool
safe_method(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
	    strcmp(m, "OPTIONS") == 0;
}

/*
 * cross_site: a browser sent this request for a page of another origin:
 * its Origin is not http(s)://HOST of this very request, or its
 * Sec-Fetch-Site says so.  Either header is a browser's, absent from
 * curl's and programs' requests.
 */
static bool
cross_site(struct wreq *r)
{
	const char *origin, *site, *host, *rest = NULL;

	origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
	site = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-Fetch-Site");
	host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST);

	if (site != NULL && strcasecmp(site, "same-origin") != 0 &&
	    strcasecmp(site, "none") != 0)
		return true;
	if (origin == NULL)
		return false;
	if (strncasecmp(origin, "http://", 7) == 0)
		rest = origin + 7;
	else if (strncasecmp(origin, "https://", 8) == 0)
		rest = origin + 8;
	return rest == NULL || host == NULL || strcasecmp(rest, host) != 0;
}

/* json_ctype: Content-Type is application/json (parameters aside). */
static bool
json_ctype(const char *ct)
{
	ct += strspn(ct, " \t");
	return strncasecmp(ct, "application/json", 16) == 0 &&
	    (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ' || ct[16] == '\t');
}

/* refuse: r's answer is an error of head_gate's: the connection closes
 * after it (MHD also reads no more of a body not yet read). */
static void
refuse(struct wreq *r)
{
	if (r->headers == NULL)
		r->headers = json_object();
	json_object_set_new(r->headers, "Connection", json_string("close"));
}

/*
 * head_gate: the request's head is in, its body (if any) not yet read:
 * judge all that can be judged now, so that a request refused costs no
 * body.  For the daemon's own paths: the Host (421), then who may ask
 * (allowed), then for a request that may change something, a browser's
 * cross-site request (403) and a body that is not declared JSON (415: a
 * page of another origin can send text/plain or a form without asking,
 * not JSON); for every path, a body announced over --max-frame (413) or
 * over what --max-input has left (503).  False: r holds the refusal.
 */
static bool
head_gate(struct wreq *r)
{
	struct web *w = r->web;
	const struct options *o = &w->srv->opt;
	const char *path = r->url, *host, *cl, *ct, *te;
	unsigned long long len = 0;
	bool own;

	own = strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0 ||
	    strcmp(path, "/metrics") == 0 || strcmp(path, "/stats") == 0 ||
	    strcmp(path, "/events") == 0 || strncmp(path, "/types", 6) == 0 ||
	    strcmp(path, "/failures") == 0 ||
	    strncmp(path, "/jobs/", 6) == 0 || strcmp(path, "/jobs") == 0 ||
	    strncmp(path, "/sub/", 5) == 0 ||
	    strncmp(path, "/pub/", 5) == 0;
	r->rt = own ? NULL : route_find(w, path);
	host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST);
	cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (cl != NULL)
		len = strtoull(cl, NULL, 10);
	if (r->rt == NULL && !host_ok(w, host)) {
		w->refused_host++;
		web_error(r, 421, "unknown_host", NULL, "Host %s is not a name of "
		    "this daemon (give it with --http-host)", host);
		return false;
	}
	if (!allowed(r, r->rt != NULL))
		return false;
	if (r->rt == NULL && !safe_method(r->method)) {
		if (cross_site(r)) {
			w->refused_cross_site++;
			web_error(r, 403, "forbidden", NULL, "a cross-site request "
			    "(Origin or Sec-Fetch-Site is not this daemon's) may not "
			    "change anything");
			return false;
		}
		if ((ct != NULL || len > 0 || te != NULL) &&
		    (ct == NULL || !json_ctype(ct))) {
			w->refused_cross_site++;
			web_error(r, 415, "unsupported_media_type", NULL, "a request "
			    "body must be sent as Content-Type: application/json");
			return false;
		}
	}
	if (len > o->max_frame) {
		web_error(r, 413, "frame_too_large", NULL,
		    "the request body is over %zu bytes (--max-frame)", o->max_frame);
		return false;
	}
	if (len > 0 && !body_count(r, (size_t)len)) {
		w->input_refused++;
		web_error(r, 503, "full", NULL, "request bodies and unfinished "
		    "frames of all connections would pass %zu bytes (--max-input)",
		    o->max_input);
		return false;
	}
	if (r->wc != NULL && (!auth_enabled() || r->rt == NULL))
		wconn_authed(r->wc);
	return true;
}

/* dispatch: the whole request is in: answer, park or stream it. */
static void
dispatch(struct wreq *r)
{
	const struct web_route *rt = r->rt;
	const char *path = r->url;

	if (r->wc != NULL && !r->wc->authed)
		wconn_unlist(r->wc);  /* in: its deadline is met */
	if (r->too_big) {
		web_error(r, 413, "frame_too_large", NULL,
		    "the request body is over %zu bytes (--max-frame)",
		    r->web->srv->opt.max_frame);
		return;
	}
	if (r->over_input) {
		web_error(r, 503, "full", NULL, "request bodies and unfinished "
		    "frames of all connections would pass %zu bytes (--max-input)",
		    r->web->srv->opt.max_input);
		return;
	}
	if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
		if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
			dash_serve(r);
		else
			web_error(r, 405, "method_not_allowed", NULL,
			    "%s is GET only", path);
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
			metrics_serve(r);
		else
			web_error(r, 405, "method_not_allowed", NULL,
			    "%s is GET only", path);
		return;
	}
	if (ops_route(r, path) || sched_route(r, path) || rest_route(r, path) ||
	    sse_route(r, path))
		return;
	if (rt != NULL) {
		route_start(r, rt);
		return;
	}
	web_error(r, 404, "not_found", NULL, "no such path: %s", path);
}

enum MHD_Result
access_cb(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct web *w = cls;
	struct wreq *r = *con_cls;

	(void)version;
	if (r == NULL) {
		const union MHD_ConnectionInfo *ci;

		r = xcalloc(1, sizeof *r);
		r->web = w;
		r->conn = c;
		r->method = xstrdup(method);
		r->url = xstrdup(url);
		ev_init(&r->watch, watch_cb);
		ev_init(&r->timer, NULL);
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		r->wc = ci != NULL ? ci->socket_context : NULL;
		*con_cls = r;
		w->requests++;
		if (!head_gate(r)) {
			/* Refused before its body is read: MHD then closes. */
			refuse(r);
			return queue_answer(r);
		}
		return MHD_YES;
	}
	if (*upload_size > 0) {
		size_t need = buf_used(&r->body) + *upload_size;

		if (!r->too_big && !r->over_input && need > w->srv->opt.max_frame) {
			r->too_big = true;
			body_release(r);
		}
		/* A body of unannounced length (chunked) is counted as its
		 * buffer grows; an announced one was counted whole. */
		if (!r->too_big && !r->over_input && need > r->body.cap &&
		    !body_count(r, need > 2 * r->body.cap ? need : 2 * r->body.cap)) {
			w->input_refused++;
			r->over_input = true;
			body_release(r);
		}
		if (!r->too_big && !r->over_input) {
			if (r->body.cap == 0 && r->counted > 0)
				buf_reserve(&r->body, r->counted);
			buf_append(&r->body, upload, *upload_size);
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->gone)
		return MHD_NO;
	if (!r->ready && r->wait == WAIT_NONE) {
		dispatch(r);
		body_release(r);  /* used: a submission or a route has copied it */
	}
	if (r->wait != WAIT_NONE) {
		/* Parked: sleep until web_wake. */
		if (!r->suspended) {
			r->suspended = true;
			MHD_suspend_connection(c);
		}
		return MHD_YES;
	}
	if (!r->ready)
		web_error(r, 500, "error", NULL, "no answer");
	return queue_answer(r);
}
