/*
 * modules.c — the two stores as the server starts and stops them: the
 * journal (--data) and cluster mode's Redis store (--redis).
 */
#include <errno.h>
#include <stdlib.h>

#include "server.h"
#include "store/store.h"

static bool
journal_wanted(const struct options *opt)
{
	return opt->data_dir != NULL;
}

/*
 * journal_start: open DIR, lock it and replay it into the broker.  Exit
 * statuses: EXIT_LOCKED when another jobfs holds DIR, EXIT_DATA when DIR
 * cannot be used or its journal is damaged (without --repair).
 */
static int
journal_start(struct server *srv)
{
	const struct options *opt = &srv->opt;
	struct store_opts so = {
		.dir = opt->data_dir,
		.sync = (enum journal_sync)opt->sync_mode,
		.interval_ms = opt->sync_interval_ms,
		.repair = opt->repair,
	};
	const char *seg = getenv("JOBFS_SEGMENT_BYTES");  /* tests: small segments */
	char err[512];

	if (seg != NULL)
		so.segment_bytes = strtoull(seg, NULL, 10);
	srv->store = store_open(srv, &so, err, sizeof err);
	if (srv->store != NULL)
		return 0;
	if (errno == EWOULDBLOCK) {
		log_err("cannot use --data: %s", err);
		return EXIT_LOCKED;
	}
	log_err("cannot start from --data %s: %s", opt->data_dir, err);
	return EXIT_DATA;
}

/* journal_before_sleep: write what this turn appended (and start its
 * sync) before any face writes what acknowledges it. */
static void
journal_before_sleep(struct server *srv)
{
	store_flush(srv->store);
}

/* journal_close: after the broker shut down: write and sync what its
 * last changes appended. */
static void
journal_close(struct server *srv)
{
	store_close(srv->store);
	srv->store = NULL;
}

static void
journal_stats(void *ctx, json_t *o)
{
	struct server *srv = ctx;

	if (srv->store != NULL)
		store_stats(srv->store, o);
}

const struct module journal_module = {
	.name = "journal",
	.wanted = journal_wanted,
	.start = journal_start,
	.before_sleep = journal_before_sleep,
	.close = journal_close,
	.stats = journal_stats,
};

static bool
redis_wanted(const struct options *opt)
{
	return opt->redis_url != NULL;
}

static int
redis_start(struct server *srv)
{
	char err[300];

	if (rstore_open(srv, err, sizeof err) < 0) {
		log_err("--redis %s", err);
		return EXIT_USAGE;
	}
	return 0;
}

/* redis_run: connect, after the fork: the connections are the child's. */
static int
redis_run(struct server *srv)
{
	rstore_start(srv);
	return 0;
}

const struct module redis_module = {
	.name = "redis",
	.wanted = redis_wanted,
	.start = redis_start,
	.run = redis_run,
	.stop = rstore_close,         /* hands back what its workers ran, first */
	.stats = rstore_stats,
};
