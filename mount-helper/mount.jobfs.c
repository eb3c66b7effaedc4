/*
 * mount.jobfs — the mount(8) helper: argv translation only.
 *
 * mount(8) runs /sbin/mount.fuse.jobfs (a link to this program) for
 * `mount -t fuse.jobfs SOURCE DIR -o OPTS` and for fstab entries of type
 * fuse.jobfs, as
 *
 *	mount.fuse.jobfs SOURCE DIR [-sfnv] [-N NS] [-o OPTS] [-t TYPE]
 *
 * and waits for it.  We turn the options jobfs has flags for into those
 * flags, drop the ones that are for mount(8) and fstab only, pass the rest
 * to jobfs as -o (FUSE mount options), and exec jobfs without -f: it
 * mounts, detaches, and its parent exits, which ends the mount command.
 *
 * A SOURCE that starts with redis:// is a Redis URL (cluster mode,
 * jobfs-redis(7)) and becomes --redis SOURCE; a password in it is moved to
 * the environment (JOBFS_REDIS_PASSWORD), so that it shows neither in ps(1)
 * of the daemon nor in the mount table.  Any other SOURCE only names the
 * mount.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ARGS 64

/* Options that become jobfs flags: key=value -> --flag value. */
static const struct {
	const char *key;
	const char *flag;
} flag_opts[] = {
	{ "master_port", "--master-port" },
	{ "worker_port", "--worker-port" },
	{ "listen",      "--listen" },
	{ "max_frame",   "--max-frame" },
	{ "keep",        "--keep" },
	{ "keep_max",    "--keep-max" },
	{ "keep_bytes",  "--keep-bytes" },
	{ "max_jobs",    "--max-jobs" },
	{ "max_memory",  "--max-memory" },
	{ "max_conns",   "--max-conns" },
	{ "max_input",   "--max-input" },
	{ "frame_timeout", "--frame-timeout" },
	{ "data",        "--data" },
	{ "sync",        "--sync" },
	{ "http",        "--http" },
	{ "http_route",  "--http-route" },    /* repeatable: one per route */
	{ "http_timeout", "--http-timeout" },
	{ "http_max_conn", "--http-max-conn" },
	{ "http_idle",   "--http-idle" },
	{ "auth",        "--auth" },
	{ "max_conns_per_addr", "--max-conns-per-addr" },
	{ "max_unauth",  "--max-unauth" },
	{ "auth_timeout", "--auth-timeout" },
	{ "max_unauth_frames", "--max-unauth-frames" },
	{ "tls_cert",    "--tls-cert" },
	{ "tls_key",     "--tls-key" },
	{ "tls_ca",      "--tls-ca" },
	{ "dead_keep",   "--dead-keep" },
	{ "dead_max",    "--dead-max" },
	{ "redis_prefix", "--redis-prefix" },
	{ "redis_lease", "--redis-lease" },
};

/* Options meant for mount(8) or fstab, not for the file system. */
static const char *const ignored_opts[] = {
	"rw", "defaults", "auto", "noauto", "_netdev", "nofail", "user",
	"nouser", "users", "owner", "group", "comment", NULL,
};

struct cmd {
	char       *argv[MAX_ARGS];
	int         argc;
	char        fuse_opts[4096];
	int         verbose;
};

/* usage: the synopsis, and exit 1 (as mount(8) helpers do). */
static void
usage(void)
{
	fprintf(stderr,
	    "usage: mount.jobfs SOURCE MOUNTPOINT [-o OPTIONS]\n"
	    "SOURCE: a name, or redis://[:PASSWORD@]HOST[:PORT][/DB] (cluster mode)\n"
	    "options: master_port=N, worker_port=N, listen=ADDR, max_frame=N,\n"
	    "         keep=SECONDS, keep_max=N, keep_bytes=BYTES, max_jobs=N,\n"
	    "         max_memory=BYTES, max_conns=N, max_input=N,\n"
	    "         frame_timeout=SECONDS,\n"
	    "         data=DIR, sync=always|interval:MS|never, repair,\n"
	    "         http=[ADDR:]PORT, http_route=PREFIX=TYPE (repeatable),\n"
	    "         http_timeout=SECONDS, http_max_conn=N, http_idle=SECONDS,\n"
	    "         auth=FILE, insecure, max_conns_per_addr=N, max_unauth=N,\n"
	    "         auth_timeout=SECONDS, max_unauth_frames=N, tls_cert=FILE,\n"
	    "         tls_key=FILE, tls_ca=FILE, group=NAME,\n"
	    "         dead_keep=SECONDS, dead_max=N, redis_prefix=P,\n"
	    "         redis_lease=MS,\n"
	    "         verbose, quiet, and FUSE mount\n"
	    "         options (allow_other, default_permissions, ...)\n");
	exit(1);
}

/* cmd_add: one more argument for jobfs. */
static void
cmd_add(struct cmd *c, const char *arg)
{
	if (c->argc >= MAX_ARGS - 1) {
		fprintf(stderr, "mount.jobfs: too many options\n");
		exit(1);
	}
	c->argv[c->argc++] = (char *)arg;
	c->argv[c->argc] = NULL;
}

/* fuse_opt_add: append one option to the -o list for jobfs. */
static void
fuse_opt_add(struct cmd *c, const char *opt)
{
	size_t len = strlen(c->fuse_opts);

	if (len + strlen(opt) + 2 > sizeof c->fuse_opts) {
		fprintf(stderr, "mount.jobfs: options too long\n");
		exit(1);
	}
	snprintf(c->fuse_opts + len, sizeof c->fuse_opts - len, "%s%s",
	    len > 0 ? "," : "", opt);
}

/* opt_ignored: rw, defaults, noauto, x-systemd.*, comment=... */
static int
opt_ignored(const char *opt)
{
	size_t i, n;

	if (strncmp(opt, "x-", 2) == 0)
		return 1;
	for (i = 0; ignored_opts[i] != NULL; i++) {
		n = strlen(ignored_opts[i]);
		if (strncmp(opt, ignored_opts[i], n) == 0 &&
		    (opt[n] == '\0' || opt[n] == '='))
			return 1;
	}
	return 0;
}

/* translate_opt: one option of the comma-separated -o list. */
static void
translate_opt(struct cmd *c, char *opt)
{
	char *eq = strchr(opt, '=');
	size_t i, klen = eq != NULL ? (size_t)(eq - opt) : strlen(opt);

	/* group=NAME is jobfs's --group (fstab's bare "group" is ignored). */
	if (strncmp(opt, "group=", 6) == 0 && opt[6] != '\0') {
		cmd_add(c, "--group");
		cmd_add(c, opt + 6);
		return;
	}
	if (*opt == '\0' || opt_ignored(opt))
		return;
	for (i = 0; i < sizeof flag_opts / sizeof flag_opts[0]; i++) {
		if (strlen(flag_opts[i].key) != klen ||
		    strncmp(opt, flag_opts[i].key, klen) != 0)
			continue;
		if (eq == NULL || eq[1] == '\0') {
			fprintf(stderr, "mount.jobfs: %s needs a value\n", flag_opts[i].key);
			exit(1);
		}
		cmd_add(c, flag_opts[i].flag);
		cmd_add(c, eq + 1);
		return;
	}
	if (strcmp(opt, "verbose") == 0)
		cmd_add(c, "-v");
	else if (strcmp(opt, "debug") == 0) {
		cmd_add(c, "-v");
		cmd_add(c, "-v");
	} else if (strcmp(opt, "quiet") == 0)
		cmd_add(c, "-q");
	else if (strcmp(opt, "repair") == 0)
		cmd_add(c, "--repair");
	else if (strcmp(opt, "insecure") == 0)
		cmd_add(c, "--insecure");
	else
		fuse_opt_add(c, opt);
}

/* translate_opts: a comma-separated -o list. */
static void
translate_opts(struct cmd *c, char *list)
{
	char *opt, *save = NULL;

	for (opt = strtok_r(list, ",", &save); opt != NULL;
	    opt = strtok_r(NULL, ",", &save))
		translate_opt(c, opt);
}

/* hexval: the value of one hex digit, or -1. */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * redis_source: a redis:// SOURCE without its user information (what
 * precedes the last '@' of the authority, which ends at the first '/').
 * The password in it, as jobfs reads one (the part after its first ':',
 * or all of it if there is none; a user name before the ':' is ignored,
 * as jobfs ignores it), is percent-decoded (a URL writes '@', '/', ':' and
 * '%' in it as %40, %2F, %3A, %25) and exported as JOBFS_REDIS_PASSWORD,
 * which the daemon reads when its URL has none.  Without a password in
 * the URL (or with an empty one) an inherited JOBFS_REDIS_PASSWORD passes
 * through untouched.
 * Returns the URL to give as --redis, in `out`.
 */
static const char *
redis_source(const char *source, char *out, size_t outsz)
{
	const char *auth = source + strlen("redis://");
	size_t alen = strcspn(auth, "/");
	const char *at = NULL, *colon, *p;
	char pass[1024];
	size_t n = 0;
	int hi, lo;

	for (p = auth; p < auth + alen; p++)
		if (*p == '@')
			at = p;
	if (strlen(source) >= outsz) {
		fprintf(stderr, "mount.jobfs: Redis URL too long\n");
		exit(1);
	}
	if (at == NULL) {
		snprintf(out, outsz, "%s", source);
		return out;
	}
	colon = memchr(auth, ':', (size_t)(at - auth));
	for (p = colon != NULL ? colon + 1 : auth; p < at; p++) {
		char ch = *p;

		if (ch == '%') {
			if (p + 2 >= at || (hi = hexval(p[1])) < 0 ||
			    (lo = hexval(p[2])) < 0) {
				fprintf(stderr, "mount.jobfs: bad %%-escape in the Redis password\n");
				exit(1);
			}
			ch = (char)(hi << 4 | lo);
			p += 2;
		}
		if (ch == '\0' || n + 1 >= sizeof pass) {
			fprintf(stderr, "mount.jobfs: bad Redis password\n");
			exit(1);
		}
		pass[n++] = ch;
	}
	pass[n] = '\0';
	if (n > 0 && setenv("JOBFS_REDIS_PASSWORD", pass, 1) != 0) {
		fprintf(stderr, "mount.jobfs: setenv: %s\n", strerror(errno));
		exit(1);
	}
	explicit_bzero(pass, sizeof pass);
	snprintf(out, outsz, "redis://%s", at + 1);
	return out;
}

/* exec_jobfs: $JOBFS, else the jobfs next to this program, else $PATH. */
static void
exec_jobfs(struct cmd *c)
{
	char self[PATH_MAX], next[PATH_MAX + 8];
	const char *env = getenv("JOBFS");
	ssize_t n;

	if (env != NULL && *env != '\0') {
		c->argv[0] = (char *)env;
		execv(env, c->argv);
		fprintf(stderr, "mount.jobfs: %s: %s\n", env, strerror(errno));
		exit(1);
	}
	if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) > 0) {
		self[n] = '\0';
		snprintf(next, sizeof next, "%s/jobfs", dirname(self));
		if (access(next, X_OK) == 0) {
			c->argv[0] = next;
			execv(next, c->argv);
		}
	}
	if (getenv("PATH") == NULL)
		setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	c->argv[0] = "jobfs";
	execvp("jobfs", c->argv);
	fprintf(stderr, "mount.jobfs: cannot run jobfs: %s (set JOBFS=/path/to/jobfs)\n",
	    strerror(errno));
	exit(1);
}

/* main: collect source, mount point and -o lists; translate; exec jobfs. */
int
main(int argc, char **argv)
{
	static struct cmd c;
	const char *source = NULL, *mountpoint = NULL;
	char *lists[MAX_ARGS], fsname[PATH_MAX + 8], url[PATH_MAX];
	int i, nlists = 0, fake = 0;

	cmd_add(&c, "jobfs");
	for (i = 1; i < argc; i++) {
		char *a = argv[i];

		if (strcmp(a, "-o") == 0 && i + 1 < argc && nlists < MAX_ARGS)
			lists[nlists++] = argv[++i];
		else if (strncmp(a, "-o", 2) == 0 && a[2] != '\0' && nlists < MAX_ARGS)
			lists[nlists++] = a + 2;
		else if ((strcmp(a, "-t") == 0 || strcmp(a, "-N") == 0) && i + 1 < argc)
			i++;  /* the type we are; a namespace we do not handle */
		else if (strcmp(a, "-f") == 0)
			fake = 1;
		else if (strcmp(a, "-v") == 0)
			c.verbose = 1;
		else if (strcmp(a, "-n") == 0 || strcmp(a, "-s") == 0)
			;  /* no mtab to write; sloppy is our default */
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			usage();
		else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "mount.jobfs: unknown flag %s\n", a);
			usage();
		} else if (source == NULL)
			source = a;
		else if (mountpoint == NULL)
			mountpoint = a;
		else
			usage();
	}
	if (mountpoint == NULL)
		usage();
	/* A Redis URL: cluster mode; from here on the source is the URL
	 * without its password, so the mount table does not show it either. */
	if (strncmp(source, "redis://", 8) == 0) {
		source = redis_source(source, url, sizeof url);
		cmd_add(&c, "--redis");
		cmd_add(&c, source);
	}
	/* The source names the mount (first: an fsname= of the user's wins). */
	if (*source != '\0' && strlen(source) < PATH_MAX &&
	    strcspn(source, ",\\") == strlen(source)) {
		snprintf(fsname, sizeof fsname, "fsname=%s", source);
		fuse_opt_add(&c, fsname);
	}
	for (i = 0; i < nlists; i++)
		translate_opts(&c, lists[i]);
	if (c.fuse_opts[0] != '\0') {
		cmd_add(&c, "-o");
		cmd_add(&c, c.fuse_opts);
	}
	cmd_add(&c, mountpoint);
	if (c.verbose || fake) {
		fprintf(stderr, "mount.jobfs:");
		for (i = 0; i < c.argc; i++)
			fprintf(stderr, " %s", c.argv[i]);
		fprintf(stderr, "\n");
	}
	if (fake)
		return 0;
	exec_jobfs(&c);
	return 1;
}
