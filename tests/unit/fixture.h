/*
 * fixture.h — the daemon's server for a unit test or a fuzz harness, built
 * by the real server_start() from the daemon's own defaults: listeners on
 * loopback ports the kernel picks, the default loop, the broker with its
 * lifecycle, the TCP face.  No store, tree, web face or Redis is started.
 * The fixture never runs the loop; a test runs it if it needs to
 * (ev_run(srv->loop, EVRUN_NOWAIT)), and fixture_stop() is server_stop().
 *
 *	struct options opt;
 *	fixture_options(&opt);
 *	opt.max_memory = 1u << 20;      (whatever the test needs)
 *	fixture_start(&srv, &opt);
 *	...
 *	fixture_stop(&srv);
 */
#ifndef FIXTURE_H
#define FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "server.h"
#include "store/store.h"
#include "tcp/tcp.h"
#include "tree/tree.h"
#include "web/web.h"

/* fixture_options: the daemon's defaults, on ports the kernel picks. */
static inline void
fixture_options(struct options *opt)
{
	options_defaults(opt);
	opt->master_port = 0;
	opt->worker_port = 0;
}

/* fixture_start: server_start() with the TCP face alone, which must
 * succeed. */
static inline void
fixture_start(struct server *srv, const struct options *opt)
{
	static const struct module *const modules[] = { &tcp_module };
	int rc = server_start(srv, opt, modules, 1);

	if (rc != 0) {
		fprintf(stderr, "fixture: server_start failed (exit status %d)\n", rc);
		abort();
	}
}

/* fixture_stop: everything closed and freed, as the daemon does at exit. */
static inline void
fixture_stop(struct server *srv)
{
	server_stop(srv);
}

#endif
