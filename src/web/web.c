/*
 * web.c — the web face's plumbing: libmicrohttpd driven by the daemon's
 * libev loop, requests, answers, parking and streams, and the routing of
 * paths to the nouns (web_rest.c, web_sse.c, web_metrics.c, web_route.c,
 * web_dash.c).
 *
 * MHD runs without threads of its own (MHD_USE_EPOLL, external polling):
 * an ev_io watches its epoll descriptor, an ev_timer follows
 * MHD_get_timeout, and MHD_run is called after either.  A connection
 * resumed from a broker event (a job ended, the store caught up, a stream
 * got bytes) is processed by the next MHD_run, which an ev_prepare makes
 * before the loop sleeps.
 *
 * The face asks the broker only through its functions and hears it as a
 * listener (broker_listen); a request keeps a job only with a job_ref.
 * An answer that reports a submission or a result is held, like the TCP
 * face's acknowledgements, until the store made it durable (web_gate).
 *
 * What a stranger can cost is bounded before the request is read: a
 * request's head is judged as soon as it is in (head_gate: Host, token,
 * cross-site, content type, announced length), so a refused body is
 * never read; the bodies being received count in --max-input with the TCP
 * ports' unfinished frames; and a connection that has not authenticated
 * has a deadline and a place in a bounded queue (see "connections").
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
	struct broker *b = &r->web->srv->broker;

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

/* ---------------------------------------------------------- connections */

/*
 * A connection is unauthenticated from its accept until a request on it
 * passes head_gate with an admin token (without --auth: until any request
 * passes it).  Until then it is on web->unauthed, oldest first, and its
 * deadline runs: the request, head and body, must be in within
 * --http-header-timeout, whatever it trickles (MHD's own timeout,
 * --http-idle, restarts at every byte).  Past --http-max-unauth the
 * oldest is dropped for a newcomer, as on the TCP ports: a client that
 * sends its request at once is never the oldest.  A connection kept alive
 * after a request without a token (a route's, with --auth) goes back on
 * the list for its next request.
 *
 * Dropping is a shutdown(2) of the socket: MHD sees the end at its next
 * read and closes the connection itself, with its usual callbacks.
 */
static unsigned nconns;

static void
wconn_unlist(struct wconn *wc)
{
	struct web *w = wc->web;

	ev_timer_stop(w->srv->loop, &wc->deadline);
	if (!wc->listed)
		return;
	TAILQ_REMOVE(&w->unauthed, wc, entry);
	wc->listed = false;
	w->nunauthed--;
}

static void
wconn_drop(struct wconn *wc, const char *why)
{
	wconn_unlist(wc);
	if (wc->dropped)
		return;
	wc->dropped = true;
	log_debug("http: %s dropped: %s", wc->addr, why);
	shutdown(wc->fd, SHUT_RDWR);
}

static void
deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct wconn *wc = t->data;

	(void)loop;
	(void)revents;
	wc->web->header_timeouts++;
	wconn_drop(wc, "no whole request within --http-header-timeout");
}

/* wconn_list: wc waits for a request, unauthenticated: the newest. */
static void
wconn_list(struct wconn *wc)
{
	struct web *w = wc->web;
	double t = w->srv->opt.http_header_timeout;

	if (wc->dropped || wc->authed)
		return;
	wconn_unlist(wc);
	if (w->nunauthed >= w->srv->opt.http_max_unauth) {
		w->unauth_dropped++;
		wconn_drop(TAILQ_FIRST(&w->unauthed), "the oldest of "
		    "--http-max-unauth unauthenticated connections");
	}
	TAILQ_INSERT_TAIL(&w->unauthed, wc, entry);
	wc->listed = true;
	w->nunauthed++;
	if (t > 0) {
		ev_timer_set(&wc->deadline, t, 0.);
		ev_timer_start(w->srv->loop, &wc->deadline);
	}
}

/* wconn_authed: a request on wc passed with a token: no more limits. */
static void
wconn_authed(struct wconn *wc)
{
	wconn_unlist(wc);
	wc->authed = true;
}

/*
 * body_count: r's body is to hold up to total bytes: count them in
 * srv->in_total, which --max-input bounds for the TCP ports' unfinished
 * frames and these bodies together; false (nothing counted) if that
 * would pass it.
 */
static bool
body_count(struct wreq *r, size_t total)
{
	struct web *w = r->web;
	struct server *srv = w->srv;

	if (total <= r->counted)
		return true;
	if (srv->in_total - r->counted + total > srv->opt.max_input)
		return false;
	srv->in_total += total - r->counted;
	w->input_bytes += total - r->counted;
	r->counted = total;
	return true;
}

/* body_release: r's body is used (or refused): free it and its count. */
static void
body_release(struct wreq *r)
{
	r->web->srv->in_total -= r->counted;
	r->web->input_bytes -= r->counted;
	r->counted = 0;
	buf_free(&r->body);
}

/* --------------------------------------------------------- MHD callbacks */

static void
wreq_free(struct wreq *r)
{
	struct web *w = r->web;
	struct broker *b = &w->srv->broker;
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
			chan_drop(&w->srv->broker, r->chan);
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

static void
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
	if (ops_route(r, path) || rest_route(r, path) || sse_route(r, path))
		return;
	if (rt != NULL) {
		route_start(r, rt);
		return;
	}
	web_error(r, 404, "not_found", NULL, "no such path: %s", path);
}

static enum MHD_Result
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

static void
logger_cb(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof line, fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	log_debug("http: %s", line);
}

/* conn_notify_cb: a connection opens (its wconn, counted per address,
 * unauthenticated) or closes. */
static void
conn_notify_cb(void *cls, struct MHD_Connection *c, void **socket_ctx,
    enum MHD_ConnectionNotificationCode toe)
{
	struct web *w = cls;
	const union MHD_ConnectionInfo *ci;
	struct wconn *wc;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		nconns++;
		wc = xcalloc(1, sizeof *wc);
		wc->web = w;
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		wc->fd = ci != NULL ? ci->connect_fd : -1;
		net_peer_addr(wc->fd, wc->addr, sizeof wc->addr);
		auth_peer_add(wc->addr);
		ev_init(&wc->deadline, deadline_cb);
		wc->deadline.data = wc;
		*socket_ctx = wc;
		wconn_list(wc);
		return;
	}
	if (nconns > 0)
		nconns--;
	if ((wc = *socket_ctx) != NULL) {
		wconn_unlist(wc);
		auth_peer_del(wc->addr);
		free(wc);
		*socket_ctx = NULL;
	}
}

/* accept_cb: over --http-max-conn, or over --max-conns-per-addr for the
 * peer's address (TCP and HTTP connections together), a connection is
 * closed at once. */
static enum MHD_Result
accept_cb(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct web *w = cls;
	const struct options *o = &w->srv->opt;
	char a[48];
	size_t per_addr = o->max_conns_per_addr;
	bool loopback = net_addr_str(addr, a, sizeof a);

	(void)len;
	if (nconns >= o->http_max_conn) {
		w->conns_refused++;
		log_debug("http: connection refused: %u open (--http-max-conn)", nconns);
		return MHD_NO;
	}
	if (!o->max_conns_per_addr_set)
		per_addr = loopback ? 0 : CONNS_PER_ADDR_DEFAULT;
	if (per_addr > 0 && auth_peer_count(a) >= per_addr) {
		w->refused_per_addr++;
		log_debug("http: connection from %s refused (--max-conns-per-addr)", a);
		return MHD_NO;
	}
	return MHD_YES;
}

/* ------------------------------------------------------------ the loop */

/* web_run: let MHD do what is due, then re-arm its timer. */
static void
web_run(struct web *w)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (w->running)
		return;
	w->running = true;
	w->kick = false;
	MHD_run(w->d);
	w->running = false;
	ev_timer_stop(w->srv->loop, &w->tm);
	if (MHD_get_timeout(w->d, &ms) == MHD_YES) {
		ev_timer_set(&w->tm, ms / 1000.0, 0.);
		ev_timer_start(w->srv->loop, &w->tm);
	}
}

static void
io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	web_run(io->data);
}

static void
tm_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	web_run(t->data);
}

static void
prep_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct web *w = p->data;
	int i;

	(void)loop;
	(void)revents;
	for (i = 0; i < 4 && w->kick; i++)
		web_run(w);
}

static void
tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	sse_tick(t->data);
}

/* ------------------------------------------------------ broker events */

static void
on_finished(void *ctx, struct job *j, struct worker *ran_on)
{
	struct web *w = ctx;

	(void)ran_on;
	if (w->d == NULL)
		return;
	metrics_job_finished(w, j);
	rest_job_finished(w, j);
	ops_job_finished(w, j);
	route_job_finished(w, j);
	if (w->nevents_streams > 0)
		sse_job_event(w, "finished", j, job_state_name(j->state),
		    j->worker_name, job_started(j) > 0 ?
		    job_finished(j) - job_started(j) : -1);
}

static void
on_submitted(void *ctx, struct job *j)
{
	struct web *w = ctx;

	if (w->d == NULL)
		return;

	if (w->nevents_streams > 0)
		sse_job_event(w, "submitted", j, NULL, NULL, -1);
}

static void
on_dispatched(void *ctx, struct job *j, struct worker *wk)
{
	struct web *w = ctx;

	if (w->d == NULL)
		return;

	if (w->nevents_streams > 0)
		sse_job_event(w, "started", j, NULL, wk != NULL ? worker_name(wk) :
		    j->worker_name, -1);
}

static void
on_requeued(void *ctx, struct job *j)
{
	if (((struct web *)ctx)->d == NULL)
		return;
	route_job_requeued(ctx, j);
}

static void
on_partial(void *ctx, struct job *j, const char *body, size_t len)
{
	struct web *w = ctx;

	if (w->d == NULL)
		return;
	route_job_partial(w, j, body, len);
	if (w->nevents_streams > 0)
		sse_job_partial(w, j, body, len);
}

static void
on_type(struct web *w, const char *what, struct jtype *t)
{
	if (w->d != NULL && w->nevents_streams > 0)
		sse_event(w, what, json_pack("{s:s}", "type", t->name), false, false);
}

static void on_type_added(void *ctx, struct jtype *t) { on_type(ctx, "type_added", t); }
static void on_type_removed(void *ctx, struct jtype *t) { on_type(ctx, "type_removed", t); }

static void
on_worker(struct web *w, const char *what, struct worker *wk, struct jtype *t)
{
	if (w->d != NULL && w->nevents_streams > 0)
		sse_event(w, what, json_pack("{s:s, s:s?}", "worker", worker_name(wk),
		    "type", t != NULL ? t->name : NULL), false, false);
}

static void
on_worker_joined(void *ctx, struct worker *wk, struct jtype *t)
{
	on_worker(ctx, "worker_joined", wk, t);
}

static void
on_worker_left(void *ctx, struct worker *wk, struct jtype *t)
{
	on_worker(ctx, "worker_left", wk, t);
}

/* on_durable: answers held for the store go out. */
static void
on_durable(void *ctx, uint64_t mark)
{
	struct web *w = ctx;
	struct wreq *r, *next;

	if (w->d == NULL)
		return;

	TAILQ_FOREACH_SAFE(r, &w->parked, entry, next)
		if (r->wait == WAIT_DURABLE && r->mark <= mark)
			web_wake(r);
}

/* ------------------------------------------------------- start and stop */

/* parse_http: [ADDR:]PORT, [V6ADDR]:PORT. */
static int
parse_http(const char *spec, const char *dflt, char *addr, size_t alen)
{
	const char *colon = strrchr(spec, ':'), *p = spec;
	char *end;
	long port;

	snprintf(addr, alen, "%s", dflt);
	if (colon != NULL) {
		size_t n = (size_t)(colon - spec);
		const char *a = spec;

		if (n >= 2 && spec[0] == '[' && spec[n - 1] == ']') {
			a++;
			n -= 2;
		}
		if (n == 0 || n >= alen)
			return -1;
		memcpy(addr, a, n);
		addr[n] = '\0';
		p = colon + 1;
	}
	port = strtol(p, &end, 10);
	if (*p == '\0' || *end != '\0' || port < 0 || port > 65535)
		return -1;
	return (int)port;
}

static struct web the_web;

int
web_start(struct server *srv)
{
	const struct options *o = &srv->opt;
	char addr[256], err[512];
	const union MHD_DaemonInfo *di;
	struct MHD_OptionItem tls_opts[5];
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct web *w;
	int port, fd;
	size_t i;

	if (o->http == NULL)
		return 0;
	if ((port = parse_http(o->http, o->listen, addr, sizeof addr)) < 0) {
		log_err("bad --http %s (expected [ADDR:]PORT)", o->http);
		return EXIT_USAGE;
	}
	if (web_tls_options(o, tls_opts, &flags, err, sizeof err) < 0) {
		log_err("https: %s", err);
		return EXIT_USAGE;
	}
	if ((fd = net_listen(addr, port, err, sizeof err)) < 0) {
		log_err("cannot listen for http: %s", err);
		web_tls_free();
		return EXIT_LISTEN;
	}
	/* Static: the broker keeps calling its listeners after web_stop (at
	 * broker_shutdown), which find w->d NULL and do nothing. */
	w = &the_web;
	memset(w, 0, sizeof *w);
	w->srv = srv;
	TAILQ_INIT(&w->parked);
	TAILQ_INIT(&w->streams);
	TAILQ_INIT(&w->rstreams);
	TAILQ_INIT(&w->unauthed);
	if (gethostname(w->hostname, sizeof w->hostname) < 0)
		w->hostname[0] = '\0';
	w->hostname[sizeof w->hostname - 1] = '\0';
	for (i = 0; i < o->nhttp_hosts; i++)
		if (strcmp(o->http_hosts[i], "*") == 0)
			w->any_host = true;
	w->route_timeout = o->http_timeout;
	w->idle = o->http_idle;
	for (i = 0; i < o->nhttp_routes; i++) {
		const char *spec = o->http_routes[i], *eq = strrchr(spec, '=');

		w->routes = xrealloc(w->routes, (w->nroutes + 1) * sizeof *w->routes);
		w->routes[w->nroutes].prefix = xstrndup(spec, (size_t)(eq - spec));
		w->routes[w->nroutes].len = (size_t)(eq - spec);
		w->routes[w->nroutes].type = xstrdup(eq + 1);
		w->nroutes++;
	}
	w->d = MHD_start_daemon(flags, 0, accept_cb, w, access_cb, w,
	    MHD_OPTION_EXTERNAL_LOGGER, logger_cb, w,
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)(o->http_max_conn + 16),
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->http_idle,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)WEB_HEADER_MAX,
	    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, w,
	    MHD_OPTION_NOTIFY_CONNECTION, conn_notify_cb, w,
	    MHD_OPTION_ARRAY, tls_opts,
	    MHD_OPTION_END);
	if (w->d == NULL) {
		log_err("cannot start the http server (libmicrohttpd)");
		web_tls_free();
		close(fd);
		return EXIT_LISTEN;
	}
	di = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL) {
		log_err("libmicrohttpd has no epoll descriptor");
		return EXIT_START;
	}
	srv->web = w;
	w->port = net_local_port(fd);
	ev_io_init(&w->io, io_cb, di->epoll_fd, EV_READ);
	w->io.data = w;
	ev_io_start(srv->loop, &w->io);
	ev_init(&w->tm, tm_cb);
	w->tm.data = w;
	ev_prepare_init(&w->prep, prep_cb);
	w->prep.data = w;
	ev_prepare_start(srv->loop, &w->prep);
	ev_timer_init(&w->tick, tick_cb, 1., 1.);
	w->tick.data = w;
	ev_timer_start(srv->loop, &w->tick);
	{
		struct broker_listener l = {
			.ctx = w,
			.job_submitted = on_submitted,
			.job_dispatched = on_dispatched,
			.job_requeued = on_requeued,
			.job_partial = on_partial,
			.job_finished = on_finished,
			.type_added = on_type_added,
			.type_removed = on_type_removed,
			.worker_joined = on_worker_joined,
			.worker_left = on_worker_left,
			.durable = on_durable,
		};
		broker_listen(&srv->broker, &l);
	}
	sse_init(w);
	web_run(w);
	log_info("%s on %s:%d: dashboard at %s://%s:%d/", web_tls_on() ? "https" :
	    "http", addr, w->port, web_tls_on() ? "https" : "http",
	    strchr(addr, ':') ? "[::1]" : addr, w->port);
	if (auth_enabled() && !web_tls_on() && !o->insecure &&
	    strncmp(addr, "127.", 4) != 0 && strcmp(addr, "::1") != 0 &&
	    strcmp(addr, "localhost") != 0)
		log_warn("http on %s without TLS: with --auth, peers beyond loopback "
		    "are refused (they would send tokens in clear); give --tls-cert "
		    "and --tls-key for https, or --insecure", addr);
	return 0;
}

/* web_stop: end every stream and wait, close every connection (before the
 * broker shuts down: requests hold jobs). */
void
web_stop(struct server *srv)
{
	struct web *w = srv->web;
	struct wreq *r, *next;
	size_t i;

	if (w == NULL)
		return;
	TAILQ_FOREACH_SAFE(r, &w->streams, entry, next) {
		r->abort = true;
		web_stream_wake(r);
	}
	TAILQ_FOREACH_SAFE(r, &w->rstreams, entry, next) {
		r->abort = true;
		web_stream_wake(r);
	}
	TAILQ_FOREACH_SAFE(r, &w->parked, entry, next) {
		r->gone = true;
		web_wake(r);
	}
	w->running = false;
	MHD_run(w->d);  /* resumed connections leave the suspended list */
	ev_io_stop(srv->loop, &w->io);
	ev_timer_stop(srv->loop, &w->tm);
	ev_timer_stop(srv->loop, &w->tick);
	ev_prepare_stop(srv->loop, &w->prep);
	MHD_stop_daemon(w->d);
	sse_free(w);
	web_tls_free();
	metrics_free(w);
	ops_free(w);
	for (i = 0; i < w->nroutes; i++) {
		free(w->routes[i].prefix);
		free(w->routes[i].type);
	}
	free(w->routes);
	w->routes = NULL;
	w->nroutes = 0;
	w->d = NULL;
	srv->web = NULL;
}

/* web_port: the port HTTP listens on (for tests and logs); 0: none. */
int
web_port(const struct server *srv)
{
	return srv->web != NULL ? srv->web->port : 0;
}

/* web_connections: open HTTP connections now. */
unsigned
web_connections(void)
{
	return nconns;
}
