/*
 * listen.c — the TCP face as the server starts it (tcp_module): the two
 * listeners, accept and who may connect, SIGHUP's withdrawn tokens, the
 * before-sleep writes, the face's stats; and, at exit, every connection
 * closed.
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

#include "tcp/tcp.h"

#define ACCEPT_BATCH 64
#define ACCEPT_DELAY_MIN 0.1    /* seconds accepting pauses when out of fds */
#define ACCEPT_DELAY_MAX 1.0

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

/*
 * tcp_start: listen on both ports (EXIT_LISTEN if either is taken), set
 * up TLS (EXIT_USAGE if its files do not load) and the protocol.
 */
static int
tcp_start(struct server *srv)
{
	const struct options *opt = &srv->opt;
	char err[512];

	srv->master_fd = server_listen(srv, opt->master_port, "masters");
	if (srv->master_fd < 0)
		return EXIT_LISTEN;
	srv->worker_fd = server_listen(srv, opt->worker_port, "workers");
	if (srv->worker_fd < 0)
		return EXIT_LISTEN;
	/* Held to be closed when out of descriptors, to shed one connection. */
	srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	srv->accept_delay = ACCEPT_DELAY_MIN;
	ev_init(&srv->accept_backoff, accept_backoff_cb);
	proto_init(srv);
	signal(SIGPIPE, SIG_IGN);
	if (tls_server_init(srv, err, sizeof err) < 0) {
		log_err("cannot serve TLS: %s", err);
		return EXIT_USAGE;
	}
	ev_io_init(&srv->master_io, accept_cb, srv->master_fd, EV_READ);
	ev_io_init(&srv->worker_io, accept_cb, srv->worker_fd, EV_READ);
	ev_io_start(srv->loop, &srv->master_io);
	ev_io_start(srv->loop, &srv->worker_io);
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

/*
 * tcp_reload: SIGHUP.  The certificates again; and when the token file
 * was loaded again, an authenticated connection stays if its name is
 * still in the file with the same roles, the others are dropped with
 * auth_failed.
 */
static void
tcp_reload(struct server *srv, bool tokens)
{
	struct conn *c, *next;
	unsigned roles;

	tls_reload(srv);
	if (!tokens)
		return;
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

/* tcp_before_sleep: one write per pending connection, then free the dead
 * (after the stores' before-sleep: what they acknowledge is written). */
static void
tcp_before_sleep(struct server *srv)
{
	conn_flush_pending(srv);
	conn_reap(srv);
}

/* tcp_stop: close every connection (their jobs go back to the broker),
 * then the listeners. */
static void
tcp_stop(struct server *srv)
{
	struct conn *c;

	conn_flush_pending(srv);
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		conn_close(c, "daemon exiting");
	conn_reap(srv);
	close(srv->master_fd);
	close(srv->worker_fd);
	tls_server_free(srv);
	if (srv->spare_fd >= 0)
		close(srv->spare_fd);
}

/* tcp_stats: connections and frames, refusals, TLS. */
static void
tcp_stats(void *ctx, json_t *o)
{
	struct server *srv = ctx;

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
}

const struct module tcp_module = {
	.name = "tcp",
	.start = tcp_start,
	.reload = tcp_reload,
	.before_sleep = tcp_before_sleep,
	.stop = tcp_stop,
	.stats = tcp_stats,
};
