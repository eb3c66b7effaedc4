/*
 * server.h — the daemon's options and the server that wires the core,
 * the faces and the stores together (server.c, main.c).
 *
 * One libev loop on one thread drives everything: TCP connections, timers
 * and the FUSE session.  No lock guards anything declared here.  The
 * daemon's one lock is fs->mu (fs_notify.c), shared with the tree's
 * invalidation thread and taken by the loop only when an entry the kernel
 * has seen goes away (a job forgotten, a type freed) and while unmounting:
 * never on the path of a frame or a request.
 */
#ifndef JOBFS_SERVER_H
#define JOBFS_SERVER_H

#include "core/broker.h"

/* ---------------------------------------------------------------- server.c */

struct options {
	const char *listen;
	int         master_port;
	int         worker_port;
	size_t      max_frame;
	double      keep;
	size_t      keep_max;
	uint64_t    keep_bytes;     /* finished jobs' bytes (--keep-bytes) */
	uint64_t    max_jobs;
	uint64_t    max_memory;
	bool        foreground;
	const char *mount_opts;
	const char *mountpoint;
	int         verbosity;
	size_t      max_conns;      /* connections at once */
	size_t      max_input;      /* bytes of unfinished input frames, all
	                               connections together */
	double      frame_timeout;  /* seconds a frame may take to arrive */
	const char *data_dir;       /* --data: the journal's DIR; NULL: in memory */
	int         sync_mode;      /* --sync: enum journal_sync */
	unsigned    sync_interval_ms;
	bool        repair;         /* --repair */
	/* the web face (web.c): NULL http: none */
	const char *http;           /* --http [ADDR:]PORT */
	const char **http_routes;   /* --http-route PREFIX=TYPE, each */
	size_t      nhttp_routes;
	double      http_timeout;   /* seconds a route waits for a worker */
	size_t      http_max_conn;  /* HTTP connections at once */
	double      http_idle;      /* seconds an HTTP connection may idle */
	const char **http_hosts;    /* --http-host NAME, each: Host names served */
	size_t      nhttp_hosts;
	double      http_header_timeout; /* seconds an unauthenticated request
	                                    may take to arrive */
	size_t      http_max_unauth; /* HTTP connections not yet authenticated */
	bool        http_plain;     /* --http-plain: no TLS on the web face */
	/* who may do what */
	const char *auth_file;      /* --auth: the token file; NULL: no tokens */
	bool        insecure;       /* --insecure: serve non-loopback peers without --auth */
	size_t      max_conns_per_addr; /* 0: the default (loopback peers not counted) */
	bool        max_conns_per_addr_set;
	size_t      max_unauth;     /* unauthenticated connections at once */
	double      auth_timeout;   /* seconds to authenticate */
	unsigned    max_unauth_frames; /* frames before auth */
	const char *tls_cert, *tls_key, *tls_ca;
	double      tls_handshake_timeout; /* seconds to finish the handshake; 0: none */
	bool        group_set;      /* --group or -o group=: the tree's group */
	gid_t       group_gid;
	double      dead_keep;      /* --dead-keep seconds */
	size_t      dead_max;       /* --dead-max */
	/* cluster mode */
	const char *redis_url;      /* --redis: NULL: queues in this daemon */
	const char *redis_prefix;   /* --redis-prefix, default "jobfs" */
	int         redis_lease_ms; /* --redis-lease */
	int         redis_wait_replicas; /* --redis-wait-replicas; 0: off */
};

/*
 * Output backpressure.  Reading never stops: a peer is always read, so its
 * responses, pongs and cancels get through however full its output is.
 * Past OUT_SOFT_LIMIT a worker takes no new job and a master's job endings
 * wait in conn->deferred (the jobs hold the results); they resume once the
 * output drains below half of it.  Streamed partials stop past
 * OUT_PARTIAL_LIMIT (the master misses them).  What is still written
 * regardless (acks, errors, pongs, running notices) is bounded by
 * OUT_HARD_LIMIT, past which the peer is dropped with a "full" error frame.
 */
#define OUT_SOFT_LIMIT  (1u << 20)
#define OUT_PARTIAL_LIMIT (16u << 20)
#define OUT_HARD_LIMIT(srv) (64u * 1024 * 1024 + 2 * (srv)->opt.max_frame)
/* Seconds a dropped connection has to read its error frame. */
#define DROP_LINGER 5.0

struct server;

/*
 * A module: a store or a face, as the server starts and stops it.  main.c
 * lists them (the stores first, the faces after); the server never names
 * one.  Every hook may be NULL.
 *   wanted        these options want the module (NULL: always)
 *   start         before the daemon forks: 0, or an exit status (EXIT_*)
 *   run           after it forked (threads, connections that must be the
 *                 child's): 0, or an exit status
 *   reload        SIGHUP; tokens: the token file was loaded again
 *   before_sleep  each turn of the loop, in the list's order
 *   stop          in the reverse order, before the broker shuts down
 *   close         after it: the stores' last writes
 *   stats         the module's part of the daemon's stats (broker_stats)
 */
struct module {
	const char *name;
	bool (*wanted)(const struct options *);
	int  (*start)(struct server *);
	int  (*run)(struct server *);
	void (*reload)(struct server *, bool tokens);
	void (*before_sleep)(struct server *);
	void (*stop)(struct server *);
	void (*close)(struct server *);
	broker_stats_hook *stats;     /* called with the server */
};
#define MODULES_MAX 8

struct server {
	struct ev_loop   *loop;
	const struct module *const *modules;  /* main.c's list */
	size_t            nmodules;
	bool              on[MODULES_MAX];    /* started: stop it at exit */
	struct options    opt;
	struct broker    *broker;
	struct fs        *fs;
	int               master_fd, worker_fd;
	ev_io             master_io, worker_io;
	ev_timer          accept_backoff; /* accepting paused: out of descriptors */
	double            accept_delay;   /* the next pause, seconds */
	struct log_limit  refused_log;    /* lines of refused connections */
	int               spare_fd;       /* /dev/null, closed to shed at EMFILE */
	size_t            in_total;       /* sum of conn->in_counted */
	ev_signal         sigint, sigterm;
	ev_prepare        before_sleep;
	TAILQ_HEAD(, conn) conns;
	TAILQ_HEAD(, conn) pending_writes;
	TAILQ_HEAD(, conn) dead;
	uint64_t          next_serial;
	uint64_t          nconns, nmasters, nworkers;
	uint64_t          frames_in, frames_out, bad_frames, dropped_slow;
	uint64_t          refused_conns;  /* over --max-conns or out of descriptors */
	uint64_t          dropped_input;  /* over --max-input */
	uint64_t          dropped_frame_timeout;
	uint64_t          partials_dropped; /* to a backlogged master */
	TAILQ_HEAD(, conn) held;          /* connections holding acknowledgements */
	double            started;
	struct store     *store;          /* the journal (store_journal.c); NULL: none */
	struct web       *web;            /* the web face (web.c); NULL: none */
	struct rstore    *redis;          /* cluster mode (store_redis.c); NULL: none */
	ev_signal         sighup;         /* reload the token file and certificates */
	size_t            nunauthed;      /* connections not yet authenticated */
	TAILQ_HEAD(, conn) unauthed;      /* those, oldest first */
	uint64_t          auth_failures, refused_protected, refused_per_addr, refused_unauth;
	uint64_t          dropped_unauthed; /* timed out or over --max-unauth-frames */
	struct tls_server *tls;           /* NULL: plain TCP */
	uint64_t          tls_handshake_timeouts; /* closed by --tls-handshake-timeout */
	/* the TCP protocol's (proto_master.c) */
	struct waiting   *waits;          /* masters waiting for jobs, by key */
	size_t            nwaits;         /* their waits, all jobs together */
	char              submit_after[LIFE_AFTER_MAX][ID_MAX + 1]; /* a submit's
	                                     "after" ids, decoded */
};

void options_defaults(struct options *);
int  server_start(struct server *, const struct options *,
         const struct module *const *modules, size_t nmodules);
int  server_run(struct server *, void (*ready)(void));
void server_stop(struct server *);



#endif /* JOBFS_SERVER_H */
