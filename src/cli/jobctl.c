/*
 * jobctl.c — the command-line client of jobfs: submit jobs, run a worker,
 * inspect the daemon, publish and subscribe, and speak raw frames.
 *
 * Each command is one function in cmd_table.  They share one connection
 * type, struct session: a libjobfs connection (its framing, TLS and token,
 * driven by libev), plus an optional stdin reader.  No command blocks one direction while the other
 * has work: a worker answers pings while it streams a large response, and
 * raw keeps printing replies while it sends megabytes.
 *
 * This file holds main, the global options, the command table and the
 * helpers every command uses; jobctl.h says where the rest lives.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/jobctl.h"

/* ------------------------------------------------------------- helpers */

/* ctl_log: libjobfs's messages (connecting, TLS, reconnecting) are ours. */
static void
ctl_log(const char *msg, void *arg)
{
	(void)arg;
	ctl_warn("%s", msg);
}

/* ctl_warn: every message of ours starts "jobctl: ", as in jobctl(1). */
void
ctl_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("jobctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ctl_usage: a command's synopsis; on stdout with exit 0 when asked for
 * (-h), else on stderr with the usage status. */
int
ctl_usage(const struct cmd_entry *e, bool asked)
{
	fprintf(asked ? stdout : stderr, "usage: jobctl %s%s%s\n", e->name,
	    e->usage != NULL ? " " : "", e->usage != NULL ? e->usage : "");
	return asked ? CTL_OK : CTL_USAGE;
}

/* ctl_number: a whole decimal argument within [min, max], or -1. */
int
ctl_number(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* ctl_port: a port from an option or the environment; exits on nonsense,
 * since a typo in a port is a usage error wherever it comes from. */
static int
ctl_port(const char *s, const char *what)
{
	long long v;

	if (ctl_number(s, 1, 65535, &v) < 0) {
		ctl_warn("%s: not a port number: %s", what, s);
		exit(CTL_USAGE);
	}
	return (int)v;
}

/* ctl_text: a JSON value as text to show a person: strings bare, the rest
 * as compact JSON.  The caller frees it. */
char *
ctl_text(const json_t *v)
{
	char *s;

	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	s = json_dumps(v, JSON_OUT);
	return s != NULL ? s : xstrdup("?");
}

/* ctl_print: one JSON value as a line on stdout, flushed at once because
 * whoever reads us (a test, a pipeline) waits for each line.  A prefix
 * (a channel name) goes before it with a tab. */
int
ctl_print(const char *prefix, const json_t *v, size_t flags)
{
	char *s = json_dumps(v, flags);

	if (s == NULL)
		return CTL_FAIL;
	if (prefix != NULL)
		printf("%s\t", prefix);
	puts(s);
	free(s);
	if (fflush(stdout) == EOF) {
		ctl_warn("stdout: %s", strerror(errno));
		return CTL_FAIL;
	}
	return CTL_OK;
}

/* ctl_report: an error frame as "jobctl: CODE: REASON" on stderr.  Gloom's
 * missing_field names the field instead of giving a reason. */
int
ctl_report(const json_t *m)
{
	json_t *why = json_object_get(m, "reason");
	char *code = ctl_text(json_object_get(m, "error"));
	char *text;

	if (why == NULL)
		why = json_object_get(m, "name");
	text = why != NULL ? ctl_text(why) : NULL;
	if (text != NULL)
		ctl_warn("%s: %s", code, text);
	else
		ctl_warn("%s", code);
	free(text);
	free(code);
	return CTL_FAIL;
}

/* ctl_parse: a frame from the daemon as a JSON object, or NULL after a
 * warning: the daemon only sends objects, so anything else is a bug there. */
json_t *
ctl_parse(const char *p, size_t len)
{
	json_error_t err;
	json_t *m = json_loadb(p, len, 0, &err);

	if (m == NULL)
		ctl_warn("bad frame from daemon: %s", err.text);
	return m;
}

/* ctl_slurp: all of a file descriptor, blocking; only for submit's body,
 * which must be whole before it can be checked and sent. */
static int
ctl_slurp(int fd, struct buf *b)
{
	ssize_t n;

	for (;;) {
		buf_reserve(b, READ_CHUNK);
		n = read(fd, b->data + b->len, b->cap - b->len);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b->len += (size_t)n;
	}
}

/* ctl_body: parse a body argument ("-" or absent: all of stdin) as JSON of
 * any kind.  Invalid JSON is the user's mistake, so it is a usage error. */
json_t *
ctl_body(const char *arg)
{
	struct buf b = { 0 };
	json_error_t err;
	json_t *v;

	if (arg == NULL || strcmp(arg, "-") == 0) {
		if (ctl_slurp(STDIN_FILENO, &b) < 0) {
			ctl_warn("stdin: %s", strerror(errno));
			buf_free(&b);
			return NULL;
		}
		v = json_loadb(b.data != NULL ? b.data : "", b.len,
		    JSON_DECODE_ANY, &err);
		buf_free(&b);
	} else
		v = json_loads(arg, JSON_DECODE_ANY, &err);
	if (v == NULL)
		ctl_warn("body is not valid JSON: %s (line %d, column %d)",
		    err.text, err.line, err.column);
	return v;
}

/* ctl_args: options for a command that takes none but -h, and exactly
 * nargs arguments.  CTL_RUNNING means go on; anything else is the status. */
int
ctl_args(const struct cmd_entry *e, int argc, char **argv, int nargs)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		return ctl_usage(e, c == 'h');
	if (argc - optind != nargs)
		return ctl_usage(e, false);
	return CTL_RUNNING;
}

/* ----------------------------------------------------------------- main */

static const struct cmd_entry cmd_table[] = {
	{ "submit", "[--id ID] [--priority N] [--timeout MS] [--stream] "
	    "[--detach | --no-wait] [-v] [--worker NAME] [--retries N] [--backoff MS] "
	    "[--delay MS] [--at EPOCH_MS] [--after ID]... TYPE [BODY | -]", cmd_submit },
	{ "work", "[--capacity N] [--heartbeat MS] [--name NAME] [--cancel] "
	    "[--fail] [--progress] [--retry-for SECONDS | --no-reconnect] TYPE -- COMMAND "
	    "[ARG ...]", cmd_work },
	{ "status", "ID", cmd_status },
	{ "cancel", "ID", cmd_cancel },
	{ "wait", "ID ...", cmd_wait },
	{ "stats", "[TYPE]", cmd_stats },
	{ "ls", "[--state S] [--type T] [--limit N] [--plain | --json]", cmd_ls },
	{ "ping", "[-t MS]", cmd_ping },
	{ "publish", "CHANNEL BODY | -", cmd_publish },
	{ "subscribe", "[-n COUNT] CHANNEL ...", cmd_subscribe },
	{ "raw", "[--worker] [-n COUNT] [-t MS] [--unframed] [--dribble]",
	    cmd_raw },
	/* the job lifecycle */
	{ "kick", "ID | --type TYPE", cmd_kick },
	{ "pause", "TYPE", cmd_pause },
	{ "resume", "TYPE", cmd_pause },
	{ "configure", "[--limit N] [--retries N] [--backoff MS] TYPE", cmd_configure },
	{ "top", "[--http HOST:PORT]", cmd_top },
	/* repeating jobs */
	{ "schedule", "[--priority N] [--retries N] TYPE NAME (--cron EXPR | "
	    "--every DURATION) [BODY | -]", cmd_schedule },
	{ "unschedule", "TYPE NAME", cmd_unschedule },
	{ "schedules", "[--json] [TYPE]", cmd_schedules },
};

static void
ctl_help(FILE *f)
{
	size_t i;

	fprintf(f, "usage: jobctl [-H host] [-m master-port] [-w worker-port] "
	    "[--token-file FILE]\n              [--tls] [--ca FILE] [--cert FILE "
	    "--key FILE] command [args]\n       jobctl -h | --version\n"
	    "commands:\n");
	for (i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++)
		fprintf(f, "  %s%s%s\n", cmd_table[i].name,
		    cmd_table[i].usage != NULL ? " " : "",
		    cmd_table[i].usage != NULL ? cmd_table[i].usage : "");
}

/* main: global options, then the command named by the first argument;
 * the environment supplies defaults that options override. */
int
main(int argc, char **argv)
{
	enum { O_TOKENFILE = 256, O_TLS, O_CA, O_CERT, O_KEY };
	static const struct option opts[] = {
		{ "help",    no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "token-file", required_argument, NULL, O_TOKENFILE },
		{ "tls",     no_argument, NULL, O_TLS },
		{ "ca",      required_argument, NULL, O_CA },
		{ "cert",    required_argument, NULL, O_CERT },
		{ "key",     required_argument, NULL, O_KEY },
		{ NULL, 0, NULL, 0 }
	};
	struct ctl ctl = { 0 };
	const struct cmd_entry *e = NULL;
	char *name;
	size_t i;
	int c, rc;

	/* The environment (JOBFS_HOST, the ports, JOBFS_TOKEN or
	 * JOBFS_TOKEN_FILE, JOBFS_TLS, JOBFS_CA, JOBFS_CERT, JOBFS_KEY) as
	 * libjobfs reads it; then the options. */
	ctl.client = jfc_new();
	jfc_set_log(ctl.client, ctl_log, NULL);
	if (jfc_from_env(ctl.client) < 0) {
		ctl_warn("%s", jfc_error(ctl.client));
		jfc_free(ctl.client);
		return CTL_USAGE;
	}
	while ((c = getopt_long(argc, argv, "+H:m:w:h", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			jfc_set(ctl.client, JFC_HOST, optarg);
			break;
		case 'm':
			ctl_port(optarg, "-m");
			jfc_set(ctl.client, JFC_MASTER_PORT, optarg);
			break;
		case 'w':
			ctl_port(optarg, "-w");
			jfc_set(ctl.client, JFC_WORKER_PORT, optarg);
			break;
		case O_TOKENFILE:
			if (jfc_set(ctl.client, JFC_TOKEN_FILE, optarg) < 0) {
				ctl_warn("--token-file: %s", jfc_error(ctl.client));
				return CTL_USAGE;
			}
			break;
		case O_TLS:
			jfc_set(ctl.client, JFC_TLS, "1");
			break;
		case O_CA:
			jfc_set(ctl.client, JFC_CA, optarg);
			break;
		case O_CERT:
			jfc_set(ctl.client, JFC_CERT, optarg);
			break;
		case O_KEY:
			jfc_set(ctl.client, JFC_KEY, optarg);
			break;
		case 'h':
			ctl_help(stdout);
			return CTL_OK;
		case 'V':
			printf("jobctl %s\n", JOBFS_VERSION);
			return CTL_OK;
		default:
			ctl_help(stderr);
			return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		ctl_help(stderr);
		return CTL_USAGE;
	}
	if ((jfc_get(ctl.client, JFC_CERT) == NULL) !=
	    (jfc_get(ctl.client, JFC_KEY) == NULL)) {
		ctl_warn("--cert and --key go together");
		return CTL_USAGE;
	}
	if (jfc_get(ctl.client, JFC_TLS) != NULL)
		signal(SIGPIPE, SIG_IGN);   /* SSL_write cannot ask for MSG_NOSIGNAL */
	ctl.host = jfc_get(ctl.client, JFC_HOST);
	ctl.master_port = atoi(jfc_get(ctl.client, JFC_MASTER_PORT));
	ctl.worker_port = atoi(jfc_get(ctl.client, JFC_WORKER_PORT));
	ctl.token = jfc_get(ctl.client, JFC_TOKEN);
	for (i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++)
		if (strcmp(argv[optind], cmd_table[i].name) == 0)
			e = &cmd_table[i];
	if (e == NULL) {
		ctl_warn("unknown command: %s", argv[optind]);
		ctl_help(stderr);
		return CTL_USAGE;
	}
	if ((ctl.loop = ev_default_loop(EVFLAG_AUTO)) == NULL)
		fatalx("cannot start libev");
	argc -= optind;
	argv += optind;
	optind = 0;		/* glibc: start the next getopt afresh */
	argv[0] = name = xprintf("jobctl %s", e->name);	/* for getopt's messages */
	rc = e->exec(&ctl, e, argc, argv);
	free(name);
	jfc_free(ctl.client);
	ev_loop_destroy(ctl.loop);
	return rc;
}
