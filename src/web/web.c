/*
 * web.c — the web face's plumbing: libmicrohttpd driven by the daemon's
 * libev loop, its connections, the broker's events, start and stop.
 * Requests, answers, parking, streams and the routing of paths to the
 * nouns (web_rest.c, web_sse.c, web_metrics.c, web_route.c, web_dash.c)
 * are web_req.c's.
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

void
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
void
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
void
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
bool
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
void
body_release(struct wreq *r)
{
	r->web->srv->in_total -= r->counted;
	r->web->input_bytes -= r->counted;
	r->counted = 0;
	buf_free(&r->body);
}

/* --------------------------------------------------------- MHD callbacks */

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
		broker_listen(srv->broker, &l);
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

static void
web_reload(struct server *srv, bool tokens)
{
	(void)tokens;   /* requests bring their token each time */
	web_tls_reload(srv);
}

/* The web face, as main.c lists it: without --http it starts nothing. */
const struct module web_module = {
	.name = "web",
	.start = web_start,
	.reload = web_reload,
	.stop = web_stop,
};

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
