/*
 * server.c — the daemon's one libev loop and what it carries: the
 * broker, then the modules (the stores and the faces, listed by main.c)
 * started, run, reloaded, flushed before each sleep and stopped in turn;
 * signals; and the daemon's own stats (uptime).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	log_info("signal %d: shutting down", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

/*
 * sighup_cb: load the token file again (a file that cannot be loaded
 * leaves the old tokens, loudly), then each module reloads what it holds
 * (certificates; connections whose token went).
 */
static void
sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct server *srv = ev_userdata(loop);
	bool tokens = false;
	char err[512];
	size_t i;

	(void)w;
	(void)revents;
	if (srv->opt.auth_file != NULL) {
		if (auth_load(srv->opt.auth_file, err, sizeof err) < 0) {
			log_err("SIGHUP: keeping the old tokens: %s", err);
		} else {
			log_info("SIGHUP: %zu token(s) loaded from %s", auth_ntokens(),
			    srv->opt.auth_file);
			tokens = true;
		}
	}
	for (i = 0; i < srv->nmodules; i++)
		if (srv->on[i] && srv->modules[i]->reload != NULL)
			srv->modules[i]->reload(srv, tokens);
}

/*
 * before_sleep_cb: each module's before-sleep, in the list's order: the
 * journal writes what this turn appended (and starts its sync) before the
 * TCP face writes anything that acknowledges it.
 */
static void
before_sleep_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct server *srv = ev_userdata(loop);
	size_t i;

	(void)w;
	(void)revents;
	for (i = 0; i < srv->nmodules; i++)
		if (srv->on[i] && srv->modules[i]->before_sleep != NULL)
			srv->modules[i]->before_sleep(srv);
}

/* server_stats: the daemon's own part of the stats (a stats hook). */
static void
server_stats(void *ctx, json_t *o)
{
	struct server *srv = ctx;

	json_object_set_new(o, "uptime", json_real(now_wall() - srv->started));
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
 * server_start: the loop, the broker and the signals; then each module
 * that these options want, in the order of the list: the stores first
 * (what they replay is in the broker before anyone can ask), the faces
 * last.  0, or the exit status of the first module that could not start.
 * Nothing runs until server_run().
 */
int
server_start(struct server *srv, const struct options *opt,
    const struct module *const *modules, size_t nmodules)
{
	const struct module *m;
	size_t i;
	int rc;

	memset(srv, 0, sizeof *srv);
	srv->opt = *opt;
	srv->started = now_wall();
	srv->modules = modules;
	srv->nmodules = nmodules < MODULES_MAX ? nmodules : MODULES_MAX;
	TAILQ_INIT(&srv->conns);
	TAILQ_INIT(&srv->pending_writes);
	TAILQ_INIT(&srv->dead);
	TAILQ_INIT(&srv->held);
	TAILQ_INIT(&srv->unauthed);
	srv->master_fd = srv->worker_fd = srv->spare_fd = -1;
	srv->loop = ev_default_loop(EVFLAG_AUTO);
	if (srv->loop == NULL) {
		log_err("cannot start the event loop");
		return EXIT_START;
	}
	ev_set_userdata(srv->loop, srv);
	srv->broker = broker_new(srv->loop, &(struct broker_limits){
	    .keep = opt->keep, .keep_max = opt->keep_max, .keep_bytes = opt->keep_bytes,
	    .max_jobs = opt->max_jobs, .max_memory = opt->max_memory });
	broker_life_init(srv->broker, opt->dead_keep, opt->dead_max);
	broker_stats_listen(srv->broker, server_stats, srv);
	ev_signal_init(&srv->sigint, signal_cb, SIGINT);
	ev_signal_init(&srv->sigterm, signal_cb, SIGTERM);
	ev_signal_start(srv->loop, &srv->sigint);
	ev_signal_start(srv->loop, &srv->sigterm);
	ev_signal_init(&srv->sighup, sighup_cb, SIGHUP);
	ev_signal_start(srv->loop, &srv->sighup);
	ev_prepare_init(&srv->before_sleep, before_sleep_cb);
	ev_prepare_start(srv->loop, &srv->before_sleep);
	for (i = 0; i < srv->nmodules; i++) {
		m = modules[i];
		if (m->wanted != NULL && !m->wanted(opt))
			continue;
		if (m->start != NULL && (rc = m->start(srv)) != 0)
			return rc;
		srv->on[i] = true;
		if (m->stats != NULL)
			broker_stats_listen(srv->broker, m->stats, srv);
	}
	return 0;
}

/* server_run: each module's run (after the daemon forked: threads and
 * connections that must be the child's), ready(), then the loop until a
 * signal.  0, or the exit status of a module that could not run. */
int
server_run(struct server *srv, void (*ready)(void))
{
	size_t i;
	int rc;

	for (i = 0; i < srv->nmodules; i++)
		if (srv->on[i] && srv->modules[i]->run != NULL &&
		    (rc = srv->modules[i]->run(srv)) != 0)
			return rc;
	if (ready != NULL)
		ready();
	ev_run(srv->loop, 0);
	return 0;
}

/*
 * server_stop: the modules stop in the reverse of their order (the faces
 * first, so that no event reaches a face that is gone), the broker shuts
 * down (its jobs' last records go to the stores), then the stores close
 * (their last writes and syncs), then the loop.
 */
void
server_stop(struct server *srv)
{
	size_t i;

	for (i = srv->nmodules; i-- > 0;)
		if (srv->on[i] && srv->modules[i]->stop != NULL)
			srv->modules[i]->stop(srv);
	broker_shutdown(srv->broker);
	for (i = srv->nmodules; i-- > 0;)
		if (srv->on[i] && srv->modules[i]->close != NULL)
			srv->modules[i]->close(srv);
	chan_shutdown(srv->broker);
	broker_free(srv->broker);
	srv->broker = NULL;
	ev_loop_destroy(srv->loop);
}
