/*
 * loop.c — the daemon's one libev loop: listeners, accept, signals, the
 * before-sleep flush, and daemon-wide stats.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"
#include "store/store.h"
#include "tcp/tcp.h"
#include "tree/tree.h"
#include "web/web.h"

#define ACCEPT_BATCH 64
#define ACCEPT_DELAY_MIN 0.1    /* seconds accepting pauses when out of fds */
#define ACCEPT_DELAY_MAX 1.0

static broker_stats_hook server_stats;

static void
accept_watchers(struct server *srv, bool on)
{
	if (on) {
		ev_io_start(srv->loop, &srv->master_io);
		ev_io_start(srv->loop, &srv->worker_io);
	} else {
		ev_io_stop(srv->loop, &srv->master_io);
		ev_io_stop(srv->loop, &srv->worker_io);
	}
}

/* accept_backoff_cb: the pause is over; accept again (and, if still out of
 * descriptors, pause for longer). */
static void
accept_backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *srv = ev_userdata(loop);

	(void)w;
	(void)revents;
	accept_watchers(srv, true);
}

/* refused_log: log a refusal at most once per log_interval() seconds,
 * with the count since the last line. */
static void
refused_log(struct server *srv, const char *what)
{
	if (!log_limit_take(&srv->refused_log, ev_now(srv->loop), 1))
		return;
	log_warn("%s: %" PRIu64 " connection(s) refused since the last such line",
	    what, srv->refused_log.missed + 1);
	srv->refused_log.missed = 0;
}

/*
 * accept_out_of_fds: accept(2) failed with EMFILE or ENFILE.  The pending
 * connection would make the listener readable forever (a busy loop), so
 * shed it: free the spare descriptor, accept it, tell it "full", close
 * it, take the spare back.  Then stop accepting for a while, doubling the
 * pause while descriptors stay short.
 */
static void
accept_out_of_fds(struct server *srv, ev_io *w, int err)
{
	int fd;

	if (srv->spare_fd >= 0) {
		close(srv->spare_fd);
		srv->spare_fd = -1;
		fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			conn_refuse(srv, fd, "full", "too many open files");
		srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	srv->refused_conns++;
	refused_log(srv, err == EMFILE ?
	    "accept: too many open files (raise the open file limit)" :
	    "accept: too many open files in the system");
	accept_watchers(srv, false);
	ev_timer_set(&srv->accept_backoff, srv->accept_delay, 0.);
	ev_timer_start(srv->loop, &srv->accept_backoff);
	srv->accept_delay *= 2;
	if (srv->accept_delay > ACCEPT_DELAY_MAX)
		srv->accept_delay = ACCEPT_DELAY_MAX;
}

/*
 * accept_allowed: who may connect, judged before the connection
 * costs anything.  Protected mode: without --auth (and without --insecure
 * or --tls-ca, whose client certificates vouch for the peer) only
 * loopback peers are served; the others get one error frame saying how to
 * open the daemon up.  Then connections per peer address, then, with
 * --auth, unauthenticated connections at once.
 */
static bool
accept_allowed(struct server *srv, int fd)
{
	char addr[48];
	bool loopback = net_peer_addr(fd, addr, sizeof addr);
	size_t per_addr = srv->opt.max_conns_per_addr;

	if (!loopback && !auth_enabled() && !srv->opt.insecure &&
	    srv->opt.tls_ca == NULL) {
		srv->refused_protected++;
		conn_refuse(srv, fd, "auth_required", "jobfs serves only loopback peers "
		    "without tokens: start it with --auth FILE (tokens) or "
		    "--insecure (anyone who can reach the port may do anything)");
		refused_log(srv, "protected mode: a non-loopback peer without --auth");
		return false;
	}
	if (!srv->opt.max_conns_per_addr_set)
		per_addr = loopback ? 0 : CONNS_PER_ADDR_DEFAULT;
	if (per_addr > 0 && auth_peer_count(addr) >= per_addr) {
		srv->refused_per_addr++;
		conn_refuse(srv, fd, "full", "too many connections from this address "
		    "(--max-conns-per-addr)");
		refused_log(srv, "over --max-conns-per-addr");
		return false;
	}
	/* Past --max-unauth the oldest unauthenticated connection goes (a
	 * client that authenticates at once is never the oldest). */
	if (auth_enabled() && srv->nunauthed >= srv->opt.max_unauth) {
		srv->refused_unauth++;
		refused_log(srv, "over --max-unauth: the oldest unauthenticated "
		    "connection is dropped");
		proto_unauth_shed(srv);
	}
	return true;
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct server *srv = ev_userdata(loop);
	enum conn_role role = w == &srv->master_io ? ROLE_MASTER : ROLE_WORKER;
	int i, fd;

	(void)revents;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				accept_out_of_fds(srv, w, errno);
			else if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		srv->accept_delay = ACCEPT_DELAY_MIN;
		if (srv->nconns >= srv->opt.max_conns) {
			srv->refused_conns++;
			conn_refuse(srv, fd, "full", "too many connections (--max-conns)");
			refused_log(srv, "over --max-conns");
			continue;
		}
		if (!accept_allowed(srv, fd))
			continue;
		net_nodelay(fd);
		conn_new(srv, fd, role);
	}
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	log_info("signal %d: shutting down", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

/*
 * sighup_cb: reload the token file (and the certificates).  A file that
 * cannot be loaded leaves the old tokens, loudly.  An authenticated
 * connection stays if its name is still in the file with the same roles;
 * the others are dropped with auth_failed.
 */
static void
sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct server *srv = ev_userdata(loop);
	struct conn *c, *next;
	unsigned roles;
	char err[512];

	(void)w;
	(void)revents;
	tls_reload(srv);
	web_tls_reload(srv);
	if (srv->opt.auth_file == NULL)
		return;
	if (auth_load(srv->opt.auth_file, err, sizeof err) < 0) {
		log_err("SIGHUP: keeping the old tokens: %s", err);
		return;
	}
	log_info("SIGHUP: %zu token(s) loaded from %s", auth_ntokens(),
	    srv->opt.auth_file);
	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, all_entry);
		if (!c->authed || (c->flags & (CONN_DEAD | CONN_CLOSE_AFTER_WRITE)))
			continue;
		if (auth_name(c->auth_name, &roles) && roles == c->auth_roles)
			continue;
		conn_drop(c, false, "token withdrawn", "auth_failed",
		    "the token of %s was withdrawn or changed", c->auth_name);
	}
}

/*
 * before_sleep_cb: the journal writes what this turn appended (and starts
 * its sync) before anything that acknowledges it is written; then one
 * write per pending connection, then free the dead.
 */
static void
before_sleep_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct server *srv = ev_userdata(loop);

	(void)w;
	(void)revents;
	if (srv->store != NULL)
		store_flush(srv->store);
	conn_flush_pending(srv);
	conn_reap(srv);
}

/* listen_loopback: the listen address is a loopback one (only local
 * peers can reach the ports). */
static bool
listen_loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
	    strcmp(addr, "localhost") == 0;
}

static int
server_listen(struct server *srv, int port, const char *what)
{
	char err[256];
	int fd = net_listen(srv->opt.listen, port, err, sizeof err);

	if (fd < 0)
		log_err("cannot listen for %s: %s", what, err);
	return fd;
}

/* options_defaults: every option as the daemon has it when not given. */
void
options_defaults(struct options *o)
{
	memset(o, 0, sizeof *o);
	o->listen = "127.0.0.1";
	o->master_port = 9998;
	o->worker_port = 9999;
	o->max_frame = 16u * 1024 * 1024;
	o->keep = 600;
	o->keep_max = 100000;
	o->keep_bytes = 256u * 1024 * 1024;
	o->dead_keep = LIFE_DEAD_KEEP;
	o->dead_max = LIFE_DEAD_MAX;
	o->redis_prefix = "jobfs";
	o->redis_lease_ms = 5000;
	o->max_jobs = 1000000;
	o->max_memory = 1u << 30;
	o->max_conns = 10000;
	o->max_input = 256u * 1024 * 1024;
	o->frame_timeout = 30;
	o->http_timeout = 30;
	o->http_max_conn = 1000;
	o->http_idle = 60;
	o->http_header_timeout = 10;
	o->http_max_unauth = 64;
	o->max_unauth = 64;
	o->auth_timeout = 10;
	o->max_unauth_frames = 8;
	o->tls_handshake_timeout = 10;
	o->verbosity = LVL_INFO;  /* connections, joins, errors; -v adds every job */
}

/*
 * server_start: open the listeners (exit status EXIT_LISTEN if that fails)
 * and set up the loop.  Nothing runs until server_run().
 */
int
server_start(struct server *srv, const struct options *opt)
{
	char err[512];

	memset(srv, 0, sizeof *srv);
	srv->opt = *opt;
	srv->started = now_wall();
	TAILQ_INIT(&srv->conns);
	TAILQ_INIT(&srv->pending_writes);
	TAILQ_INIT(&srv->dead);
	TAILQ_INIT(&srv->held);
	TAILQ_INIT(&srv->unauthed);
	srv->master_fd = server_listen(srv, opt->master_port, "masters");
	if (srv->master_fd < 0)
		return EXIT_LISTEN;
	srv->worker_fd = server_listen(srv, opt->worker_port, "workers");
	if (srv->worker_fd < 0)
		return EXIT_LISTEN;
	srv->loop = ev_default_loop(EVFLAG_AUTO);
	if (srv->loop == NULL) {
		log_err("cannot start the event loop");
		return EXIT_START;
	}
	ev_set_userdata(srv->loop, srv);
	/* Held to be closed when out of descriptors, to shed one connection. */
	srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	srv->accept_delay = ACCEPT_DELAY_MIN;
	ev_init(&srv->accept_backoff, accept_backoff_cb);
	broker_init(&srv->broker, srv->loop, &(struct broker_limits){
	    .keep = opt->keep, .keep_max = opt->keep_max, .keep_bytes = opt->keep_bytes,
	    .max_jobs = opt->max_jobs, .max_memory = opt->max_memory });
	broker_life_init(&srv->broker, opt->dead_keep, opt->dead_max);
	broker_stats_listen(&srv->broker, server_stats, srv);
	proto_init(srv);
	signal(SIGPIPE, SIG_IGN);
	ev_io_init(&srv->master_io, accept_cb, srv->master_fd, EV_READ);
	ev_io_init(&srv->worker_io, accept_cb, srv->worker_fd, EV_READ);
	ev_io_start(srv->loop, &srv->master_io);
	ev_io_start(srv->loop, &srv->worker_io);
	ev_signal_init(&srv->sigint, signal_cb, SIGINT);
	ev_signal_init(&srv->sigterm, signal_cb, SIGTERM);
	ev_signal_start(srv->loop, &srv->sigint);
	ev_signal_start(srv->loop, &srv->sigterm);
	ev_signal_init(&srv->sighup, sighup_cb, SIGHUP);
	ev_signal_start(srv->loop, &srv->sighup);
	ev_prepare_init(&srv->before_sleep, before_sleep_cb);
	ev_prepare_start(srv->loop, &srv->before_sleep);
	if (tls_server_init(srv, err, sizeof err) < 0) {
		log_err("cannot serve TLS: %s", err);
		return EXIT_USAGE;
	}
	if (!auth_enabled() && opt->tls_ca == NULL && !listen_loopback(opt->listen))
		log_warn("listening on %s without --auth: %s", opt->listen,
		    opt->insecure ? "--insecure: anyone who can reach the ports may "
		    "submit, take and cancel any job" : "protected mode: only loopback "
		    "peers are served (give --auth FILE, or --insecure)");
	log_info("jobfs %s: masters on %s:%d, workers on %s:%d", JOBFS_VERSION,
	    opt->listen, net_local_port(srv->master_fd), opt->listen,
	    net_local_port(srv->worker_fd));
	return 0;
}

void
server_run(struct server *srv)
{
	ev_run(srv->loop, 0);
}

/* server_stop: close every connection and free everything. */
void
server_stop(struct server *srv)
{
	struct conn *c;

	conn_flush_pending(srv);
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		conn_close(c, "daemon exiting");
	conn_reap(srv);
	web_stop(srv);
	fs_unmount(srv);
	rstore_close(srv);          /* hands back what its workers ran, first */
	broker_shutdown(&srv->broker);
	store_close(srv->store);    /* writes and syncs what the closes appended */
	srv->store = NULL;
	chan_shutdown(&srv->broker);
	close(srv->master_fd);
	close(srv->worker_fd);
	tls_server_free(srv);
	if (srv->spare_fd >= 0)
		close(srv->spare_fd);
	ev_loop_destroy(srv->loop);
}

/*
 * server_stats: the server's part of the daemon's stats (a stats hook,
 * broker_stats_listen): uptime, the TCP face's connections and frames,
 * refusals, and the journal's counters.
 */
static void
server_stats(void *ctx, json_t *o)
{
	struct server *srv = ctx;

	json_object_set_new(o, "uptime", json_real(now_wall() - srv->started));
	json_object_set_new(o, "connections", json_integer((json_int_t)srv->nconns));
	json_object_set_new(o, "masters", json_integer((json_int_t)srv->nmasters));
	json_object_set_new(o, "workers", json_integer((json_int_t)srv->nworkers));
	json_object_set_new(o, "frames_in", json_integer((json_int_t)srv->frames_in));
	json_object_set_new(o, "frames_out", json_integer((json_int_t)srv->frames_out));
	json_object_set_new(o, "bad_frames", json_integer((json_int_t)srv->bad_frames));
	json_object_set_new(o, "slow_clients_dropped", json_integer((json_int_t)srv->dropped_slow));
	json_object_set_new(o, "connections_refused", json_integer((json_int_t)srv->refused_conns));
	json_object_set_new(o, "input_dropped", json_integer((json_int_t)srv->dropped_input));
	json_object_set_new(o, "frame_timeouts", json_integer((json_int_t)srv->dropped_frame_timeout));
	json_object_set_new(o, "partials_dropped", json_integer((json_int_t)srv->partials_dropped));
	if (auth_enabled() || srv->refused_protected > 0 || srv->refused_per_addr > 0) {
		json_object_set_new(o, "auth_failures", json_integer((json_int_t)srv->auth_failures));
		json_object_set_new(o, "refused_protected", json_integer((json_int_t)srv->refused_protected));
		json_object_set_new(o, "refused_per_addr", json_integer((json_int_t)srv->refused_per_addr));
		json_object_set_new(o, "refused_unauthenticated", json_integer((json_int_t)srv->refused_unauth));
		json_object_set_new(o, "dropped_unauthenticated", json_integer((json_int_t)srv->dropped_unauthed));
	}
	if (srv->tls != NULL)
		json_object_set_new(o, "tls_handshake_timeouts",
		    json_integer((json_int_t)srv->tls_handshake_timeouts));
	if (srv->store != NULL)
		store_stats(srv->store, o);
}
