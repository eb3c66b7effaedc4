/*
 * jobctl_top.c — top: a live view of the daemon in the terminal, redrawn
 * once a second until q (or Ctrl-C):
 *
 *   types     from the master port's stats request: queued, running,
 *             workers, done/s and failed/s (from the change since the last
 *             redraw), dead, paused
 *   workers   what each runs, and the latest failures the daemon kept:
 *             from the web face (GET /types/T and GET /failures) when
 *             --http HOST:PORT (or JOBFS_HTTP) names it, plain HTTP, with
 *             the token as Bearer; the master protocol does not list them
 *
 * stdin is read unbuffered and unechoed while it runs (a terminal's
 * settings are put back on exit).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/jobctl.h"

#define TOP_TYPES	20
#define TOP_WORKERS	10
#define TOP_FAILURES	8
#define TOP_JOBS	3		/* job ids shown per worker (each cut at 16) */
#define HTTP_MAX	(4u << 20)

static struct termios saved;
static bool saved_ok;
static volatile sig_atomic_t stop;

static void
restore(void)
{
	if (saved_ok)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	saved_ok = false;
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* stats_got: the stats object of the reply, kept in *arg. */
static int
stats_got(struct session *s, const char *p, size_t len)
{
	json_t **out = s->arg, *m = ctl_parse(p, len), *st;

	if (m == NULL)
		return CTL_FAIL;
	if (json_object_get(m, "error") != NULL) {
		json_decref(m);
		return CTL_FAIL;
	}
	st = json_object_get(m, "stats");
	if (json_is_object(st))
		*out = json_incref(st);
	json_decref(m);
	return *out != NULL ? CTL_OK : CTL_FAIL;
}

/* http_get: GET path from the web face at host:port; the JSON answer of a
 * 200, or NULL.  One request per connection (HTTP/1.0), bounded by 2 s. */
static json_t *
http_get(struct ctl *ctl, const char *hostport, const char *path)
{
	char host[256], err[256], head[1024];
	const char *colon = strrchr(hostport, ':');
	struct buf in = { 0 };
	struct pollfd pfd;
	json_t *o = NULL;
	char *body;
	int fd, n;
	long port;

	if (colon == NULL || (size_t)(colon - hostport) >= sizeof host)
		return NULL;
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	port = strtol(colon + 1, NULL, 10);
	if ((fd = net_connect(host, (int)port, err, sizeof err)) < 0)
		return NULL;
	n = snprintf(head, sizeof head, "GET %s HTTP/1.0\r\nHost: %s\r\n%s%s%s"
	    "Connection: close\r\n\r\n", path, hostport,
	    ctl->token != NULL ? "Authorization: Bearer " : "",
	    ctl->token != NULL ? ctl->token : "", ctl->token != NULL ? "\r\n" : "");
	if (n <= 0 || (size_t)n >= sizeof head || write(fd, head, (size_t)n) != n)
		goto out;
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		char chunk[8192];
		ssize_t got;

		if (poll(&pfd, 1, 2000) <= 0)
			goto out;
		if ((got = read(fd, chunk, sizeof chunk)) < 0 && errno != EINTR)
			goto out;
		if (got == 0)
			break;
		if (got > 0)
			buf_append(&in, chunk, (size_t)got);
		if (buf_used(&in) > HTTP_MAX)
			goto out;
	}
	buf_append(&in, "", 1);
	if (strncmp(buf_head(&in), "HTTP/1.", 7) != 0 || strncmp(buf_head(&in) + 8, " 200", 4) != 0)
		goto out;
	if ((body = strstr(buf_head(&in), "\r\n\r\n")) != NULL)
		o = json_loads(body + 4, 0, NULL);
out:
	close(fd);
	buf_free(&in);
	return o;
}

/* rate: the change of counter key of type name since prev, per second. */
static double
rate(json_t *cur, json_t *prev, const char *key, double dt)
{
	json_int_t a = json_integer_value(json_object_get(cur, key));
	json_int_t b = prev != NULL ? json_integer_value(json_object_get(prev, key)) : a;

	return dt > 0 && a >= b ? (double)(a - b) / dt : 0;
}

/* path_of: /types/NAME with NAME percent-encoded. */
static void
path_of(char *out, size_t len, const char *name, const char *suffix)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t i = 0;

	i = (size_t)snprintf(out, len, "/types/");
	for (p = (const unsigned char *)name; *p != '\0' && i + 4 < len; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL) {
			out[i++] = (char)*p;
		} else {
			out[i++] = '%';
			out[i++] = hex[*p >> 4];
			out[i++] = hex[*p & 15];
		}
	}
	snprintf(out + i, len - i, "%s", suffix);
}

/* text: a JSON value as short text (strings bare). */
static void
text(char *out, size_t len, json_t *v)
{
	char *s;

	if (json_is_string(v)) {
		snprintf(out, len, "%s", json_string_value(v));
		return;
	}
	s = json_dumps(v, JSON_OUT);
	snprintf(out, len, "%s", s != NULL ? s : "");
	free(s);
}

/* draw: one screen. */
static void
draw(struct ctl *ctl, const char *http, json_t *st, json_t *prev, double dt)
{
	json_t *types = json_object_get(st, "types"), *t, *p;
	const char *name;
	char line[512], tmp[256];
	int shown = 0;

	printf("\033[H\033[2J");
	printf("jobfs %s:%d   up %.0f s   queued %lld   running %lld   workers %lld"
	    "   dead %lld   (q quits)\r\n\r\n", ctl->host, ctl->master_port,
	    json_real_value(json_object_get(st, "uptime")),
	    (long long)json_integer_value(json_object_get(st, "queued")),
	    (long long)json_integer_value(json_object_get(st, "running")),
	    (long long)json_integer_value(json_object_get(st, "workers")),
	    (long long)json_integer_value(json_object_get(st, "dead")));
	printf("%-24s %8s %8s %8s %9s %9s %8s %8s\r\n", "TYPE", "QUEUED",
	    "RUNNING", "WORKERS", "DONE/S", "FAILED/S", "DEAD", "");
	json_object_foreach(types, name, t) {
		if (shown++ >= TOP_TYPES)
			break;
		p = prev != NULL ? json_object_get(json_object_get(prev, "types"), name) : NULL;
		printf("%-24.24s %8lld %8lld %8lld %9.1f %9.1f %8lld %8s\r\n", name,
		    (long long)json_integer_value(json_object_get(t, "queued")),
		    (long long)json_integer_value(json_object_get(t, "running")),
		    (long long)json_integer_value(json_object_get(t, "workers")),
		    rate(t, p, "done", dt),
		    rate(t, p, "failed", dt) + rate(t, p, "timeout", dt),
		    (long long)json_integer_value(json_object_get(t, "dead")),
		    json_is_true(json_object_get(t, "paused")) ? "paused" : "");
	}
	if (shown == 0)
		printf("(no types)\r\n");
	printf("\r\n");
	if (http == NULL) {
		printf("workers and failures: give --http HOST:PORT (the web face)\r\n");
		return;
	}
	printf("%-28s %-16s %7s  %s\r\n", "WORKER", "TYPE", "RUNNING", "JOBS");
	shown = 0;
	json_object_foreach(types, name, t) {
		json_t *tv, *w;
		size_t i, k;

		if (json_integer_value(json_object_get(t, "workers")) == 0)
			continue;
		path_of(tmp, sizeof tmp, name, "");
		if ((tv = http_get(ctl, http, tmp)) == NULL)
			continue;
		json_array_foreach(json_object_get(tv, "worker_list"), i, w) {
			size_t used = 0;
			json_t *jobs = json_object_get(w, "jobs"), *id;

			if (shown++ >= TOP_WORKERS)
				break;
			line[0] = '\0';
			json_array_foreach(jobs, k, id) {
				if (k >= TOP_JOBS) {
					used += (size_t)snprintf(line + used, sizeof line - used,
					    "+%zu more", json_array_size(jobs) - k);
					break;
				}
				text(tmp, sizeof tmp, id);
				used += (size_t)snprintf(line + used, sizeof line - used,
				    "%.16s ", tmp);
				if (used >= sizeof line)
					break;
			}
			printf("%-28.28s %-16.16s %7lld  %s\r\n",
			    json_string_value(json_object_get(w, "name")), name,
			    (long long)json_integer_value(json_object_get(w, "running")), line);
		}
		json_decref(tv);
	}
	if (shown == 0)
		printf("(no workers)\r\n");
	printf("\r\nLATEST FAILURES\r\n");
	{
		json_t *f = http_get(ctl, http, "/failures"), *x, *e;
		size_t i;
		char id[128], err[160], when[16];

		json_array_foreach(json_object_get(f, "failures"), i, x) {
			time_t at = (time_t)json_real_value(json_object_get(x, "time"));
			struct tm tm;

			if (i >= TOP_FAILURES)
				break;
			text(id, sizeof id, json_object_get(x, "id"));
			e = json_object_get(x, "error");
			if (json_is_string(json_object_get(e, "stderr")))
				text(err, sizeof err, json_object_get(e, "stderr"));
			else if (e != NULL && !json_is_null(e))
				text(err, sizeof err, e);
			else
				err[0] = '\0';
			for (char *c = err; *c != '\0'; c++)
				if (*c == '\n' || *c == '\r' || *c == '\t')
					*c = ' ';
			strftime(when, sizeof when, "%H:%M:%S", localtime_r(&at, &tm));
			printf("%s  %-20.20s %-16.16s %-8s %.60s\r\n", when, id,
			    json_string_value(json_object_get(x, "type")),
			    json_string_value(json_object_get(x, "state")), err);
		}
		if (json_array_size(json_object_get(f, "failures")) == 0)
			printf("(none)\r\n");
		json_decref(f);
	}
}

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* cmd_top: top [--http HOST:PORT]. */
int
cmd_top(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "http", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *http = getenv("JOBFS_HTTP");
	json_t *prev = NULL, *st;
	struct sigaction sa;
	struct termios raw;
	double at, prev_at = 0;
	int c, rc = CTL_OK;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'H')
			http = optarg;
		else
			return ctl_usage(e, c == 'h');
	}
	if (optind != argc)
		return ctl_usage(e, false);
	if (http != NULL && *http == '\0')
		http = NULL;
	if (http != NULL && strncmp(http, "http://", 7) == 0)
		http += 7;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		saved_ok = true;
		atexit(restore);
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	printf("\033[?25l");   /* no cursor while it redraws */
	while (!stop) {
		struct pollfd pfd = { STDIN_FILENO, POLLIN, 0 };
		double end;
		char ch;

		st = NULL;
		if (session_call(ctl, json_pack("{s:s}", "type", "stats"), stats_got,
		    &st) != CTL_OK || st == NULL) {
			printf("\033[H\033[2Jjobctl top: no answer from %s:%d; trying "
			    "again (q quits)\r\n", ctl->host, ctl->master_port);
		} else {
			at = now_mono();
			draw(ctl, http, st, prev, prev != NULL ? at - prev_at : 0);
			json_decref(prev);
			prev = st;
			prev_at = at;
		}
		fflush(stdout);
		/* Wait a second for a key; q quits. */
		end = now_mono() + 1.0;
		while (!stop) {
			double left = end - now_mono();

			if (left <= 0)
				break;
			if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0)
				continue;
			if (read(STDIN_FILENO, &ch, 1) != 1) {
				pfd.fd = -1;   /* stdin closed: only a signal stops it */
				continue;
			}
			if (ch == 'q' || ch == 'Q') {
				stop = 1;
				break;
			}
		}
	}
	printf("\033[?25h\r\n");
	fflush(stdout);
	json_decref(prev);
	restore();
	return rc;
}
