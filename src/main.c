/*
 * main.c — options, start-up order, daemonising and exit codes.
 *
 * Order matters: listen, then open and replay the journal (--data), then
 * mount, then detach (so that mount(8) and scripts see a ready daemon, with
 * its jobs back, when we return), then tell systemd we are ready
 * (NOTIFY_SOCKET), then run the loop.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "server.h"
#include "store/store.h"
#include "tcp/tcp.h"
#include "tree/tree.h"
#include "web/web.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: jobfs [options] [[SOURCE] MOUNTPOINT]\n"
	    "  --master-port PORT   port for masters (default 9998)\n"
	    "  --worker-port PORT   port for workers (default 9999)\n"
	    "  --listen ADDR        address to listen on (default 127.0.0.1)\n"
	    "  --max-frame BYTES    largest frame accepted (default 16M)\n"
	    "  --keep SECONDS       how long finished jobs stay (default 600)\n"
	    "  --keep-max N         at most this many finished jobs (default 100000)\n"
	    "  --keep-bytes BYTES   their bodies and results past this go, oldest first\n"
	    "                       (default 256M; BYTES may end in K, M or G)\n"
	    "  --dead-keep SECONDS  how long dead (failed) jobs stay (default 604800)\n"
	    "  --dead-max N         at most this many dead jobs (default 10000)\n"
	    "  --max-jobs N         at most this many unfinished jobs (default 1000000)\n"
	    "  --max-memory BYTES   at most this many bytes of their bodies (default 1G)\n"
	    "  --max-conns N        connections at once (default 10000)\n"
	    "  --max-input BYTES    unfinished input frames, all connections (default 256M)\n"
	    "  --frame-timeout SECONDS  time a frame may take to arrive; 0: none (default 30)\n"
	    "  --data DIR           keep jobs in a journal in DIR (default: in memory only)\n"
	    "  --sync MODE          with --data: always (default), interval:MS, or never\n"
	    "  --repair             with --data: drop damaged journal records and start\n"
	    "  --redis URL          cluster mode: queues and jobs in Redis at\n"
	    "                       redis://[:PASSWORD@]HOST[:PORT][/DB], shared by every\n"
	    "                       daemon pointed at it (password also $JOBFS_REDIS_PASSWORD),\n"
	    "                       or the master Sentinel names: redis-sentinel://\n"
	    "                       [:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTERNAME\n"
	    "  --redis-prefix P     its keys begin with P: (default jobfs)\n"
	    "  --redis-lease MS     a dead daemon's running jobs go to others after this\n"
	    "                       (1000 to 10000, default 5000)\n"
	    "  --redis-wait-replicas N  acknowledge only what N replicas have (WAIT, at\n"
	    "                       most a fifth of the lease each; default 0: off)\n"
	    "  --http [ADDR:]PORT   serve HTTP: REST, SSE, metrics, dashboard (default: off)\n"
	    "  --http-route PREFIX=TYPE  requests under PREFIX become jobs of TYPE (repeatable)\n"
	    "  --http-timeout SECONDS    a route waits this long for a worker (default 30)\n"
	    "  --http-max-conn N    HTTP connections at once (default 1000)\n"
	    "  --http-idle SECONDS  an idle HTTP connection is closed after (default 60)\n"
	    "  --http-host NAME     a Host name HTTP answers besides addresses, localhost\n"
	    "                       and the host's name (repeatable; * for any)\n"
	    "  --http-header-timeout SECONDS  time an unauthenticated HTTP request may\n"
	    "                       take to arrive (default 10; 0: none)\n"
	    "  --http-max-unauth N  HTTP connections not yet authenticated; past it the\n"
	    "                       oldest is closed (default 64)\n"
	    "  --http-plain         plain HTTP on the web face even with --tls-cert\n"
	    "                       (behind a TLS proxy on loopback)\n"
	    "  --auth FILE          clients need a token of FILE (NAME ROLE... TOKEN lines)\n"
	    "  --insecure           serve peers beyond loopback without --auth (and\n"
	    "                       take tokens over plain HTTP from them)\n"
	    "  --max-conns-per-addr N  connections per peer address (default 256,\n"
	    "                       loopback peers not counted unless given)\n"
	    "  --max-unauth N       with --auth: connections not yet authenticated (default 64)\n"
	    "  --auth-timeout SECONDS  with --auth: time to authenticate (default 10)\n"
	    "  --max-unauth-frames N   with --auth: frames before authenticating (default 8)\n"
	    "  --tls-cert FILE      serve both ports, and --http (https), over TLS\n"
	    "                       with this certificate (PEM)\n"
	    "  --tls-key FILE       and this private key\n"
	    "  --tls-ca FILE        ask for client certificates signed by these CAs\n"
	    "  --tls-handshake-timeout SECONDS  time to finish the TLS handshake;\n"
	    "                       0: none (default 10)\n"
	    "  --group NAME         the tree: NAME's members submit and read, others nothing\n"
	    "  -f                   stay in the foreground\n"
	    "  -o OPTS              FUSE mount options (allow_other, ...)\n"
	    "  -v                   log every job too (debug)\n"
	    "  -q                   less logging: warnings (-qq: errors only)\n"
	    "  -V, --version        print the version\n");
}

static long long
parse_num(const char *s, const char *what, long long lo, long long hi)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "jobfs: bad %s: %s (expected %lld to %lld)\n",
		    what, s, lo, hi);
		exit(EXIT_USAGE);
	}
	return v;
}

/*
 * parse_size: a size in bytes, or in KiB, MiB or GiB with a K, M or G
 * after the number (one letter, either case: 4M is 4194304).
 */
static long long
parse_size(const char *s, const char *what, long long lo, long long hi)
{
	char *end;
	long long v, unit = 1;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end != s && end[0] != '\0' && end[1] == '\0') {
		switch (end[0]) {
		case 'k': case 'K': unit = 1LL << 10; end++; break;
		case 'm': case 'M': unit = 1LL << 20; end++; break;
		case 'g': case 'G': unit = 1LL << 30; end++; break;
		}
	}
	if (*s == '\0' || *end != '\0' || errno != 0 || v < 0 || v > hi / unit ||
	    v * unit < lo) {
		fprintf(stderr, "jobfs: bad %s: %s (expected %lld to %lld bytes, "
		    "or a number with K, M or G)\n", what, s, lo, hi);
		exit(EXIT_USAGE);
	}
	return v * unit;
}

/* parse_sync: --sync always | interval:MS | never. */
static void
parse_sync(const char *s, struct options *o)
{
	if (strcmp(s, "always") == 0)
		o->sync_mode = JOURNAL_SYNC_ALWAYS;
	else if (strcmp(s, "never") == 0)
		o->sync_mode = JOURNAL_SYNC_NEVER;
	else if (strncmp(s, "interval:", 9) == 0) {
		o->sync_mode = JOURNAL_SYNC_INTERVAL;
		o->sync_interval_ms = parse_num(s + 9, "--sync interval", 1, 3600000);
	} else {
		fprintf(stderr, "jobfs: bad --sync: %s (expected always, "
		    "interval:MS or never)\n", s);
		exit(EXIT_USAGE);
	}
}

/* parse_route: --http-route PREFIX=TYPE: PREFIX a path, TYPE a type name. */
static void
parse_route(const char *s, struct options *o)
{
	const char *eq = strrchr(s, '=');

	if (s[0] != '/' || eq == NULL || !type_name_valid(eq + 1, strlen(eq + 1))) {
		fprintf(stderr, "jobfs: bad --http-route: %s (expected /PREFIX=TYPE)\n", s);
		exit(EXIT_USAGE);
	}
	o->http_routes = xrealloc(o->http_routes,
	    (o->nhttp_routes + 1) * sizeof *o->http_routes);
	o->http_routes[o->nhttp_routes++] = s;
}

/* parse_http_host: --http-host NAME: a host name (no port, no spaces), or *. */
static void
parse_http_host(const char *s, struct options *o)
{
	if (*s == '\0' || strlen(s) > 253 || strpbrk(s, " \t/:@") != NULL) {
		fprintf(stderr, "jobfs: bad --http-host: %s (expected a host name, "
		    "without a port, or *)\n", s);
		exit(EXIT_USAGE);
	}
	o->http_hosts = xrealloc(o->http_hosts,
	    (o->nhttp_hosts + 1) * sizeof *o->http_hosts);
	o->http_hosts[o->nhttp_hosts++] = s;
}

/* parse_group: --group NAME (or a number): the tree's group (node_mode). */
static void
parse_group(const char *name, struct options *o)
{
	struct group *g = getgrnam(name);
	char *end;
	long v;

	if (g != NULL) {
		o->group_gid = g->gr_gid;
	} else {
		v = strtol(name, &end, 10);
		if (*name == '\0' || *end != '\0' || v < 0) {
			fprintf(stderr, "jobfs: --group %s: no such group\n", name);
			exit(EXIT_USAGE);
		}
		o->group_gid = (gid_t)v;
	}
	o->group_set = true;
}

/*
 * take_group_opt: "-o ...,group=NAME,..." is --group NAME, not a FUSE
 * option: take it out of the mount options (a new string, kept for the
 * daemon's life).
 */
static const char *
take_group_opt(const char *opts, struct options *o)
{
	char *copy, *out, *tok, *save = NULL;

	if (opts == NULL || strstr(opts, "group=") == NULL)
		return opts;
	copy = xstrdup(opts);
	out = xcalloc(1, strlen(opts) + 1);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (strncmp(tok, "group=", 6) == 0) {
			parse_group(tok + 6, o);
			continue;
		}
		if (*out != '\0')
			strcat(out, ",");
		strcat(out, tok);
	}
	free(copy);
	return out;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	enum { O_MPORT = 256, O_WPORT, O_LISTEN, O_MAXFRAME, O_KEEP, O_KEEPMAX,
	    O_MAXJOBS, O_MAXMEM, O_MAXCONNS, O_MAXINPUT, O_FRAMETIMEOUT, O_DATADIR,
	    O_SYNCMODE, O_REPAIR, O_AUTH, O_INSECURE, O_PERADDR, O_MAXUNAUTH,
	    O_AUTHTIMEOUT, O_UNAUTHFRAMES, O_TLSCERT, O_TLSKEY, O_TLSCA, O_TLSTIMEOUT,
	    O_GROUP,
	    O_DEADKEEP, O_DEADMAX, O_HTTP, O_HTTPROUTE, O_HTTPTIMEOUT, O_HTTPMAXCONN,
	    O_HTTPIDLE, O_HTTPHOST, O_HTTPHEADERTIMEOUT, O_HTTPMAXUNAUTH, O_REDIS,
	    O_REDISPREFIX, O_REDISLEASE, O_REDISWAIT, O_KEEPBYTES, O_HTTPPLAIN };
	static const struct option longopts[] = {
		{ "master-port", required_argument, NULL, O_MPORT },
		{ "worker-port", required_argument, NULL, O_WPORT },
		{ "listen",      required_argument, NULL, O_LISTEN },
		{ "max-frame",   required_argument, NULL, O_MAXFRAME },
		{ "keep",        required_argument, NULL, O_KEEP },
		{ "keep-max",    required_argument, NULL, O_KEEPMAX },
		{ "keep-bytes",  required_argument, NULL, O_KEEPBYTES },
		{ "max-jobs",    required_argument, NULL, O_MAXJOBS },
		{ "max-memory",  required_argument, NULL, O_MAXMEM },
		{ "max-conns",   required_argument, NULL, O_MAXCONNS },
		{ "max-input",   required_argument, NULL, O_MAXINPUT },
		{ "frame-timeout", required_argument, NULL, O_FRAMETIMEOUT },
		{ "data",        required_argument, NULL, O_DATADIR },
		{ "sync",        required_argument, NULL, O_SYNCMODE },
		{ "repair",      no_argument,       NULL, O_REPAIR },
		{ "redis",       required_argument, NULL, O_REDIS },
		{ "redis-prefix", required_argument, NULL, O_REDISPREFIX },
		{ "redis-lease", required_argument, NULL, O_REDISLEASE },
		{ "redis-wait-replicas", required_argument, NULL, O_REDISWAIT },
		{ "http",        required_argument, NULL, O_HTTP },
		{ "http-route",  required_argument, NULL, O_HTTPROUTE },
		{ "http-timeout", required_argument, NULL, O_HTTPTIMEOUT },
		{ "http-max-conn", required_argument, NULL, O_HTTPMAXCONN },
		{ "http-idle",   required_argument, NULL, O_HTTPIDLE },
		{ "http-host",   required_argument, NULL, O_HTTPHOST },
		{ "http-header-timeout", required_argument, NULL, O_HTTPHEADERTIMEOUT },
		{ "http-max-unauth", required_argument, NULL, O_HTTPMAXUNAUTH },
		{ "http-plain",  no_argument,       NULL, O_HTTPPLAIN },
		{ "auth",        required_argument, NULL, O_AUTH },
		{ "insecure",    no_argument,       NULL, O_INSECURE },
		{ "max-conns-per-addr", required_argument, NULL, O_PERADDR },
		{ "max-unauth",  required_argument, NULL, O_MAXUNAUTH },
		{ "auth-timeout", required_argument, NULL, O_AUTHTIMEOUT },
		{ "max-unauth-frames", required_argument, NULL, O_UNAUTHFRAMES },
		{ "tls-cert",    required_argument, NULL, O_TLSCERT },
		{ "tls-key",     required_argument, NULL, O_TLSKEY },
		{ "tls-ca",      required_argument, NULL, O_TLSCA },
		{ "tls-handshake-timeout", required_argument, NULL, O_TLSTIMEOUT },
		{ "group",       required_argument, NULL, O_GROUP },
		{ "dead-keep",   required_argument, NULL, O_DEADKEEP },
		{ "dead-max",    required_argument, NULL, O_DEADMAX },
		{ "foreground",  no_argument,       NULL, 'f' },
		{ "verbose",     no_argument,       NULL, 'v' },
		{ "quiet",       no_argument,       NULL, 'q' },
		{ "version",     no_argument,       NULL, 'V' },
		{ "help",        no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	options_defaults(o);
	while ((ch = getopt_long(argc, argv, "fo:vqVh", longopts, NULL)) != -1) {
		switch (ch) {
		case O_MPORT:    o->master_port = parse_num(optarg, "port", 0, 65535); break;
		case O_WPORT:    o->worker_port = parse_num(optarg, "port", 0, 65535); break;
		case O_LISTEN:   o->listen = optarg; break;
		case O_MAXFRAME: o->max_frame = parse_size(optarg, "--max-frame", 64, 1LL << 30); break;
		case O_KEEP:     o->keep = parse_num(optarg, "--keep", 0, 1LL << 31); break;
		case O_KEEPMAX:  o->keep_max = parse_num(optarg, "--keep-max", 0, 1LL << 40); break;
		case O_KEEPBYTES:
			o->keep_bytes = parse_size(optarg, "--keep-bytes", 0, 1LL << 50);
			break;
		case O_DEADKEEP: o->dead_keep = parse_num(optarg, "--dead-keep", 0, 1LL << 31); break;
		case O_DEADMAX:  o->dead_max = parse_num(optarg, "--dead-max", 0, 1LL << 40); break;
		case O_MAXJOBS:  o->max_jobs = parse_num(optarg, "--max-jobs", 1, 1LL << 40); break;
		case O_MAXMEM:   o->max_memory = parse_size(optarg, "--max-memory", 1, 1LL << 50); break;
		case O_MAXCONNS: o->max_conns = parse_num(optarg, "--max-conns", 1, 1LL << 30); break;
		case O_MAXINPUT: o->max_input = parse_size(optarg, "--max-input", 0, 1LL << 40); break;
		case O_FRAMETIMEOUT:
			o->frame_timeout = parse_num(optarg, "--frame-timeout", 0, 86400);
			break;
		case O_DATADIR:     o->data_dir = optarg; break;
		case O_SYNCMODE:     parse_sync(optarg, o); break;
		case O_REPAIR:   o->repair = true; break;
		case O_REDIS:    o->redis_url = optarg; break;
		case O_REDISPREFIX: o->redis_prefix = optarg; break;
		case O_REDISLEASE:
			o->redis_lease_ms = parse_num(optarg, "--redis-lease", 1000, 10000);
			break;
		case O_REDISWAIT:
			o->redis_wait_replicas = parse_num(optarg, "--redis-wait-replicas", 0, 16);
			break;
		case O_HTTP:     o->http = optarg; break;
		case O_HTTPROUTE: parse_route(optarg, o); break;
		case O_HTTPTIMEOUT:
			o->http_timeout = parse_num(optarg, "--http-timeout", 0, 86400);
			break;
		case O_HTTPMAXCONN:
			o->http_max_conn = parse_num(optarg, "--http-max-conn", 1, 1000000);
			break;
		case O_HTTPIDLE: o->http_idle = parse_num(optarg, "--http-idle", 0, 86400); break;
		case O_HTTPHOST: parse_http_host(optarg, o); break;
		case O_HTTPHEADERTIMEOUT:
			o->http_header_timeout = parse_num(optarg, "--http-header-timeout", 0, 86400);
			break;
		case O_HTTPMAXUNAUTH:
			o->http_max_unauth = parse_num(optarg, "--http-max-unauth", 1, 1LL << 30);
			break;
		case O_HTTPPLAIN: o->http_plain = true; break;
		case O_AUTH:     o->auth_file = optarg; break;
		case O_INSECURE: o->insecure = true; break;
		case O_PERADDR:
			o->max_conns_per_addr = parse_num(optarg, "--max-conns-per-addr", 1, 1LL << 30);
			o->max_conns_per_addr_set = true;
			break;
		case O_MAXUNAUTH: o->max_unauth = parse_num(optarg, "--max-unauth", 1, 1LL << 30); break;
		case O_AUTHTIMEOUT:
			o->auth_timeout = parse_num(optarg, "--auth-timeout", 0, 86400);
			break;
		case O_UNAUTHFRAMES:
			o->max_unauth_frames = parse_num(optarg, "--max-unauth-frames", 1, 1000000);
			break;
		case O_TLSCERT:  o->tls_cert = optarg; break;
		case O_TLSKEY:   o->tls_key = optarg; break;
		case O_TLSCA:    o->tls_ca = optarg; break;
		case O_TLSTIMEOUT:
			o->tls_handshake_timeout = parse_num(optarg, "--tls-handshake-timeout",
			    0, 86400);
			break;
		case O_GROUP:    parse_group(optarg, o); break;
		case 'f': o->foreground = true; break;
		case 'o': o->mount_opts = optarg; break;
		case 'v': o->verbosity++; break;
		case 'q': if (o->verbosity > LVL_ERR) o->verbosity--; break;
		case 'V': printf("jobfs %s\n", JOBFS_VERSION); exit(0);
		case 'h': usage(stdout); exit(0);
		default:  usage(stderr); exit(EXIT_USAGE);
		}
	}
	/* mount.fuse3 runs "jobfs SOURCE MOUNTPOINT": the source names nothing. */
	if (argc - optind == 2)
		optind++;
	if (optind < argc)
		o->mountpoint = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "jobfs: unexpected argument: %s\n", argv[optind]);
		usage(stderr);
		exit(EXIT_USAGE);
	}
	if (o->verbosity > LVL_DEBUG)
		o->verbosity = LVL_DEBUG;
	o->mount_opts = take_group_opt(o->mount_opts, o);
	if ((o->tls_cert == NULL) != (o->tls_key == NULL) ||
	    (o->tls_ca != NULL && o->tls_cert == NULL)) {
		fprintf(stderr, "jobfs: --tls-cert and --tls-key go together "
		    "(and --tls-ca needs them)\n");
		exit(EXIT_USAGE);
	}
	if (o->data_dir != NULL && *o->data_dir == '\0') {
		fprintf(stderr, "jobfs: --data needs a directory\n");
		exit(EXIT_USAGE);
	}
	if (o->redis_url != NULL && o->data_dir != NULL) {
		fprintf(stderr, "jobfs: --redis and --data do not go together: with --redis "
		    "the jobs are kept in Redis (see jobfs-redis(7) for its durability)\n");
		exit(EXIT_USAGE);
	}
	if (o->redis_url != NULL) {
		struct redis_url u;
		char err[300];

		if (redis_url_parse(o->redis_url, &u, err, sizeof err) < 0) {
			fprintf(stderr, "jobfs: --redis %s\n", err);
			exit(EXIT_USAGE);
		}
	}
	if (o->redis_prefix[0] == '\0' ||
	    strspn(o->redis_prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-_.") != strlen(o->redis_prefix) || strlen(o->redis_prefix) > 64) {
		fprintf(stderr, "jobfs: --redis-prefix must be 1 to 64 letters, digits, "
		    "'-', '_' or '.'\n");
		exit(EXIT_USAGE);
	}
}

/*
 * sd_ready: tell systemd (a Type=notify unit) that we serve: the journal is
 * replayed and the tree mounted.  NOTIFY_SOCKET names a datagram socket,
 * "@..." an abstract one.  No libsystemd: it is one sendto.
 */
static void
sd_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const char msg[] = "READY=1\nSTATUS=serving\n";
	socklen_t len;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof sa.sun_path)
		return;
	memcpy(sa.sun_path, path, strlen(path));
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	if (sendto(fd, msg, sizeof msg - 1, 0, (struct sockaddr *)&sa, len) < 0)
		log_warn("NOTIFY_SOCKET %s: %s", path, strerror(errno));
	close(fd);
}

/*
 * The modules, in the order they start: the stores first (the journal's
 * replay is in the broker before anyone can ask), then the faces, the
 * TCP ports last (open once there is something to serve).  They stop in
 * the reverse order.
 */
static const struct module *const modules[] = {
	&journal_module,
	&redis_module,
	&tree_module,
	&web_module,
	&tcp_module,
};

/* daemonise: into the background unless -f (after the modules started,
 * so that a failure is the caller's exit status). */
static int
daemonise(struct server *srv, const struct options *opt)
{
	if (opt->foreground)
		return 0;
	if (fuse_daemonize(0) < 0)
		return EXIT_START;
	ev_loop_fork(srv->loop);
	log_set_syslog(true);
	return 0;
}

int
main(int argc, char **argv)
{
	struct options opt = { 0 };
	static struct server srv;
	int rc;

	parse_options(argc, argv, &opt);
	log_init(opt.verbosity, false);
	if (opt.auth_file != NULL) {
		char err[512];

		if (auth_load(opt.auth_file, err, sizeof err) < 0) {
			log_err("--auth: %s", err);
			return EXIT_USAGE;
		}
		log_info("--auth: %zu token(s) from %s", auth_ntokens(), opt.auth_file);
	}
	if ((rc = server_start(&srv, &opt, modules,
	    sizeof modules / sizeof modules[0])) != 0)
		return rc;
	if ((rc = daemonise(&srv, &opt)) != 0)
		return rc;
	if ((rc = server_run(&srv, sd_ready)) != 0)
		return rc;
	server_stop(&srv);
	free(opt.http_routes);
	free(opt.http_hosts);
	auth_free();
	log_info("exited cleanly");
	return 0;
}
