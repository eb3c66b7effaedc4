/*
 * jobctl_cmds.c — the commands that talk to the daemon as a master: submit,
 * status, cancel, wait, stats, ping, publish, subscribe, and raw, which speaks
 * frames on either port.  Each one opens a session, sends its request, and
 * judges the replies in its frame callback.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/jobctl.h"

/* -------------------------------------------------------------- submit */

struct submit {
	json_t		*id;
	bool		 stream;
	bool		 no_wait;	/* --no-wait: the id once the job is taken */
	bool		 verbose;	/* -v: the id on stderr once it is taken */
	struct endings	 end;
};

/* submit_frame: the pong after the job says the daemon has taken it
 * (replies come in order): with --no-wait the id is printed and that is
 * all.  Partials (with --stream) are printed and waited past; the job's
 * ending is judged by endings_frame. */
static int
submit_frame(struct session *s, const char *p, size_t len)
{
	struct submit *sub = s->arg;
	json_t *m, *id, *body;
	const char *type;
	int rc = CTL_RUNNING;

	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	id = json_object_get(m, "id");
	body = json_object_get(m, "body");
	type = json_string_value(json_object_get(m, "type"));
	if (id == NULL && type != NULL && strcmp(type, "pong") == 0) {
		if (sub->no_wait) {
			printf("%s\n", json_string_value(sub->id));
			rc = fflush(stdout) == EOF ? CTL_FAIL : CTL_OK;
		} else if (sub->verbose)
			fprintf(stderr, "%s\n", json_string_value(sub->id));
	} else if (sub->no_wait) {
		if (json_object_get(m, "error") != NULL)
			rc = ctl_report(m);
	} else if (json_is_true(json_object_get(m, "partial")) &&
	    json_equal(id, sub->id)) {
		if (sub->stream && body != NULL)
			rc = ctl_print(NULL, body, JSON_OUT) == CTL_OK ?
			    CTL_RUNNING : CTL_FAIL;
	} else
		rc = endings_frame(s, &sub->end, m);
	json_decref(m);
	return rc;
}

/* submit_id: a fresh id that no other jobctl is likely to pick:
 * host, pid, milliseconds and a counter. */
static char *
submit_id(void)
{
	static unsigned counter;
	char host[65];
	struct timespec ts;

	if (gethostname(host, sizeof host) < 0)
		strcpy(host, "jobctl");
	host[sizeof host - 1] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	return xprintf("%s-%ld-%lld%03ld-%u", host, (long)getpid(),
	    (long long)ts.tv_sec, ts.tv_nsec / 1000000, ++counter);
}

/* submit_send: the job, then a ping whose pong says it was taken; then
 * its replies until it ends (or, with --no-wait, until the pong). */
static int
submit_send(struct ctl *ctl, json_t *job, struct submit *sub)
{
	struct session s;
	char *key = (char *)json_string_value(sub->id);
	int rc;

	if (session_open(&s, ctl, JFC_MASTER, sub) < 0) {
		json_decref(job);
		session_free(&s);
		return CTL_LOST;
	}
	endings_init(&sub->end, &key, 1, false);
	s.frame = submit_frame;
	session_send(&s, job);
	session_send(&s, json_pack("{s:s}", "type", "ping"));
	rc = session_run(&s);
	session_free(&s);
	endings_free(&sub->end);
	return rc;
}

/* cmd_submit: one job, waited for on its own connection, so that only its
 * replies arrive there. */
int
cmd_submit(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "id",       required_argument, NULL, 'i' },
		{ "priority", required_argument, NULL, 'p' },
		{ "timeout",  required_argument, NULL, 't' },
		{ "stream",   no_argument,       NULL, 's' },
		{ "detach",   no_argument,       NULL, 'd' },
		{ "worker",   required_argument, NULL, 'W' },
		{ "retries",  required_argument, NULL, 'r' },
		{ "backoff",  required_argument, NULL, 'b' },
		{ "delay",    required_argument, NULL, 'D' },
		{ "at",       required_argument, NULL, 'a' },
		{ "after",    required_argument, NULL, 'A' },
		{ "no-wait",  no_argument,       NULL, 'N' },
		{ "verbose",  no_argument,       NULL, 'v' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct submit sub = { 0 };
	const char *id = NULL, *target = NULL;
	long long priority = 0, timeout = 0;
	bool detach = false, has_priority = false;
	/* the job lifecycle: ranges are the daemon's to check */
	long long life[4];
	static const char *const life_keys[4] = { "retries", "backoff", "delay", "at" };
	bool has_life[4] = { false };
	json_t *after = NULL;
	json_t *body, *m;
	int k;
	char *auto_id = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'N':
			sub.no_wait = detach = true;
			break;
		case 'v':
			sub.verbose = true;
			break;
		case 'i':
			id = optarg;
			break;
		case 'p':
			if (ctl_number(optarg, INT64_MIN, INT64_MAX, &priority) < 0)
				return ctl_usage(e, false);
			has_priority = true;
			break;
		case 't':
			if (ctl_number(optarg, 1, INT64_MAX, &timeout) < 0)
				return ctl_usage(e, false);
			break;
		case 's':
			sub.stream = true;
			break;
		case 'd':
			detach = true;
			break;
		case 'W':
			target = optarg;
			break;
		case 'r':
		case 'b':
		case 'D':
		case 'a':
			k = c == 'r' ? 0 : c == 'b' ? 1 : c == 'D' ? 2 : 3;
			if (ctl_number(optarg, INT64_MIN, INT64_MAX, &life[k]) < 0) {
				json_decref(after);
				return ctl_usage(e, false);
			}
			has_life[k] = true;
			break;
		case 'A':
			if (after == NULL)
				after = json_array();
			if (json_array_append_new(after, json_string(optarg)) < 0) {
				ctl_warn("the id is not valid UTF-8");
				json_decref(after);
				return CTL_USAGE;
			}
			break;
		case 'h':
			json_decref(after);
			return ctl_usage(e, true);
		default:
			json_decref(after);
			return ctl_usage(e, false);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || argc > 2 || (sub.no_wait && sub.stream)) {
		json_decref(after);
		return ctl_usage(e, false);
	}
	if ((body = ctl_body(argc == 2 ? argv[1] : NULL)) == NULL) {
		json_decref(after);
		return CTL_USAGE;
	}
	if (id == NULL)
		id = auto_id = submit_id();
	sub.id = json_string(id);
	if (sub.id == NULL) {
		ctl_warn("the id is not valid UTF-8");
		json_decref(body);
		json_decref(after);
		free(auto_id);
		return CTL_USAGE;
	}

	m = json_object();
	json_object_set_new(m, "type", json_string("job"));
	json_object_set_new(m, "job_type", json_string(argv[0]));
	json_object_set(m, "id", sub.id);
	json_object_set_new(m, "body", body);
	if (has_priority)
		json_object_set_new(m, "priority", json_integer(priority));
	if (timeout > 0)
		json_object_set_new(m, "timeout", json_integer(timeout));
	if (sub.stream)
		json_object_set_new(m, "stream", json_true());
	if (detach)
		json_object_set_new(m, "detach", json_true());
	if (target != NULL)
		json_object_set_new(m, "worker", json_string(target));
	for (k = 0; k < 4; k++)
		if (has_life[k])
			json_object_set_new(m, life_keys[k], json_integer(life[k]));
	if (after != NULL)
		json_object_set_new(m, "after", after);
	if (json_object_get(m, "job_type") == NULL ||
	    (target != NULL && json_object_get(m, "worker") == NULL)) {
		ctl_warn("the type or worker name is not valid UTF-8");
		json_decref(m);
		rc = CTL_USAGE;
	} else
		rc = submit_send(ctl, m, &sub);
	json_decref(sub.id);
	free(auto_id);
	return rc;
}

/* ------------------------------------------- status, cancel, stats, ping */

/* status_frame: the daemon's answer as one line of JSON, pretty on a
 * terminal. */
static int
status_frame(struct session *s, const char *p, size_t len)
{
	json_t *m;
	int rc;

	(void)s;
	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	/* a job's info carries "status" and may carry the job's own "error"
	 * (a failed or dead job's last one); only a frame without "status" is
	 * the daemon's error reply */
	if (json_object_get(m, "error") != NULL &&
	    json_object_get(m, "status") == NULL)
		rc = ctl_report(m);
	else
		rc = ctl_print(NULL, m, isatty(STDOUT_FILENO) ?
		    JSON_INDENT(2) | JSON_ENCODE_ANY : JSON_OUT);
	json_decref(m);
	return rc;
}

/* ctl_by_id: status and cancel send the command's name and one id. */
static int
ctl_by_id(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv,
    int (*frame)(struct session *, const char *, size_t))
{
	json_t *m;
	int rc;

	if ((rc = ctl_args(e, argc, argv, 1)) != CTL_RUNNING)
		return rc;
	m = json_pack("{s:s, s:s}", "type", e->name, "id", argv[optind]);
	if (m == NULL) {
		ctl_warn("the id is not valid UTF-8");
		return CTL_USAGE;
	}
	return session_call(ctl, m, frame, NULL);
}

int
cmd_status(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	return ctl_by_id(ctl, e, argc, argv, status_frame);
}

/*
 * cancel_frame: the canceller gets the job's ending frame.  Only an ending
 * with "cancelled" means the cancel took; a job that ended otherwise first
 * (done, timeout, failed) is shown too but exits 1, as does unknown_id.
 */
static int
cancel_frame(struct session *s, const char *p, size_t len)
{
	json_t *m, *err;
	const char *code;
	int rc;

	(void)s;
	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	err = json_object_get(m, "error");
	code = json_string_value(err);
	if (code != NULL && strcmp(code, "cancelled") == 0)
		rc = ctl_print(NULL, m, JSON_OUT);
	else if (json_object_get(m, "body") != NULL || (code != NULL &&
	    (strcmp(code, "timeout") == 0 || strcmp(code, "job_failed") == 0))) {
		ctl_print(NULL, m, JSON_OUT);
		rc = CTL_FAIL;
	} else if (err != NULL)
		rc = ctl_report(m);
	else
		rc = CTL_RUNNING;	/* a partial or a notice: not the end */
	json_decref(m);
	return rc;
}

int
cmd_cancel(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	return ctl_by_id(ctl, e, argc, argv, cancel_frame);
}

/*
 * wait_frame: the jobs' endings, as their submitters got them: each result
 * is printed (after its id and a tab when there are several); each ending
 * error is reported.  The exit status is the worst of the jobs'
 * (endings_frame).
 */
static int
wait_frame(struct session *s, const char *p, size_t len)
{
	json_t *m;
	int rc;

	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	rc = endings_frame(s, s->arg, m);
	json_decref(m);
	return rc;
}

/* cmd_wait: wait ID...: one wait per distinct id, all on one connection. */
int
cmd_wait(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct endings es;
	struct session s;
	json_t *m;
	size_t i;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		return ctl_usage(e, c == 'h');
	if (optind >= argc)
		return ctl_usage(e, false);
	for (i = (size_t)optind; i < (size_t)argc; i++) {
		if ((m = json_string(argv[i])) == NULL) {
			ctl_warn("the id is not valid UTF-8");
			return CTL_USAGE;
		}
		json_decref(m);
	}
	endings_init(&es, argv + optind, (size_t)(argc - optind), argc - optind > 1);
	if (session_open(&s, ctl, JFC_MASTER, &es) < 0) {
		session_free(&s);
		endings_free(&es);
		return CTL_LOST;
	}
	s.frame = wait_frame;
	for (i = 0; i < es.n; i++)
		session_send(&s, json_pack("{s:s, s:s}", "type", "wait", "id",
		    es.e[i].key));
	rc = session_run(&s);
	session_free(&s);
	endings_free(&es);
	return rc;
}

/* stats_print: nested counters flattened to "a.b.c value" lines, so that
 * per-type counters read as types.T.name. */
static void
stats_print(const char *prefix, json_t *obj)
{
	const char *key;
	json_t *v;
	char *name, *text;

	json_object_foreach(obj, key, v) {
		name = prefix != NULL ? xprintf("%s.%s", prefix, key) :
		    xstrdup(key);
		if (json_is_object(v))
			stats_print(name, v);
		else if (json_is_real(v))
			printf("%s %.15g\n", name, json_real_value(v));
		else {
			text = ctl_text(v);
			printf("%s %s\n", name, text);
			free(text);
		}
		free(name);
	}
}

/* stats_frame: a reply without "stats" means a daemon we do not know. */
static int
stats_frame(struct session *s, const char *p, size_t len)
{
	json_t *m, *stats;
	int rc = CTL_OK;

	(void)s;
	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	stats = json_object_get(m, "stats");
	if (json_object_get(m, "error") != NULL)
		rc = ctl_report(m);
	else if (!json_is_object(stats)) {
		ctl_warn("unexpected reply to stats");
		rc = CTL_FAIL;
	} else {
		stats_print(NULL, stats);
		if (fflush(stdout) == EOF)
			rc = CTL_FAIL;
	}
	json_decref(m);
	return rc;
}

/* cmd_stats: stats [TYPE]: with a type, the counters of that type only. */
int
cmd_stats(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	json_t *m;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		return ctl_usage(e, c == 'h');
	if (argc - optind > 1)
		return ctl_usage(e, false);
	m = json_pack("{s:s}", "type", "stats");
	if (optind < argc &&
	    json_object_set_new(m, "job_type", json_string(argv[optind])) < 0) {
		json_decref(m);
		ctl_warn("the type is not valid UTF-8");
		return CTL_USAGE;
	}
	return session_call(ctl, m, stats_frame, NULL);
}

/* ping_frame: wait past anything but the pong or an error (publish shares
 * it, and its errors come before the pong). */
static int
ping_frame(struct session *s, const char *p, size_t len)
{
	json_t *m;
	int rc = CTL_RUNNING;

	(void)s;
	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	if (json_object_get(m, "error") != NULL)
		rc = ctl_report(m);
	else if (json_is_string(json_object_get(m, "type")) &&
	    strcmp(json_string_value(json_object_get(m, "type")), "pong") == 0)
		rc = CTL_OK;
	json_decref(m);
	return rc;
}

static int
ping_timeout(struct session *s)
{
	(void)s;
	ctl_warn("no pong from the daemon");
	return CTL_TIMEOUT;
}

/* cmd_ping: is the daemon there and answering?  Silent on success, so it
 * suits "until jobctl ping; do sleep 0.1; done". */
int
cmd_ping(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help",    no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct session s;
	long long ms = 5000;
	int c, rc;

	while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		if (c == 't' && ctl_number(optarg, 1, INT32_MAX, &ms) == 0)
			continue;
		if (c == 'h') {
			return ctl_usage(e, true);
		}
		return ctl_usage(e, false);
	}
	if (optind != argc)
		return ctl_usage(e, false);
	if (session_open(&s, ctl, JFC_MASTER, NULL) < 0) {
		session_free(&s);
		return CTL_LOST;
	}
	s.frame = ping_frame;
	s.timeout = ping_timeout;
	session_send(&s, json_pack("{s:s}", "type", "ping"));
	session_deadline(&s, ms);
	rc = session_run(&s);
	session_free(&s);
	return rc;
}

/* ------------------------------------------------------ publish, subscribe */

struct publish {
	const char	*channel;
	unsigned long	 lineno;
	bool		 bad_input;	/* a line that was not JSON */
	bool		 refused;	/* an error frame from the daemon */
};

static void
publish_one(struct session *s, json_t *body)
{
	struct publish *pub = s->arg;

	session_send(s, json_pack("{s:s, s:s, s:o}", "type", "publish",
	    "channel", pub->channel, "body", body));
}

/* publish_line: one message per line of stdin; blank lines are skipped and
 * a line that is not JSON is reported and skipped. */
static void
publish_line(struct session *s, const char *p, size_t len)
{
	struct publish *pub = s->arg;
	json_error_t err;
	json_t *body;
	size_t i;

	pub->lineno++;
	for (i = 0; i < len && strchr(" \t\r", p[i]) != NULL; i++)
		;
	if (i == len)
		return;
	if ((body = json_loadb(p, len, JSON_DECODE_ANY, &err)) == NULL) {
		ctl_warn("line %lu is not valid JSON: %s", pub->lineno, err.text);
		pub->bad_input = true;
		return;
	}
	publish_one(s, body);
}

/* publish_end: the daemon answers a good publish with nothing, so a ping
 * after the last one tells when every error frame has arrived. */
static void
publish_end(struct session *s)
{
	session_send(s, json_pack("{s:s}", "type", "ping"));
}

static int
publish_frame(struct session *s, const char *p, size_t len)
{
	struct publish *pub = s->arg;
	int rc;

	rc = ping_frame(s, p, len);
	if (rc == CTL_FAIL) {
		pub->refused = true;
		return CTL_RUNNING;
	}
	if (rc == CTL_OK)
		return pub->refused ? CTL_FAIL :
		    pub->bad_input ? CTL_USAGE : CTL_OK;
	return rc;
}

/* cmd_publish: one message, or one per line of stdin as it comes, so that
 * `tail -f log | jobctl publish c -` streams. */
int
cmd_publish(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	struct publish pub = { 0 };
	struct session s;
	json_t *body = NULL;
	int rc;

	if ((rc = ctl_args(e, argc, argv, 2)) != CTL_RUNNING)
		return rc;
	pub.channel = argv[optind];
	if ((body = json_string(pub.channel)) == NULL) {
		ctl_warn("channel name is not valid UTF-8: %s", pub.channel);
		return CTL_USAGE;
	}
	json_decref(body);
	body = NULL;
	if (strcmp(argv[optind + 1], "-") != 0 &&
	    (body = ctl_body(argv[optind + 1])) == NULL)
		return CTL_USAGE;
	if (session_open(&s, ctl, JFC_MASTER, &pub) < 0) {
		json_decref(body);
		session_free(&s);
		return CTL_LOST;
	}
	s.frame = publish_frame;
	if (body != NULL) {
		publish_one(&s, body);
		publish_end(&s);
	} else
		session_input(&s, true, publish_line, publish_end);
	rc = session_run(&s);
	session_free(&s);
	return rc;
}

struct subscribe {
	long long	 count;		/* messages to print; 0: forever */
	long long	 seen;
	bool		 prefix;	/* more than one channel */
};

/* subscribe_frame: print message bodies; an error frame (a bad channel
 * name) ends the command, since nothing will ever arrive. */
static int
subscribe_frame(struct session *s, const char *p, size_t len)
{
	struct subscribe *sub = s->arg;
	json_t *m;
	const char *type;
	int rc = CTL_RUNNING;

	if ((m = ctl_parse(p, len)) == NULL)
		return CTL_FAIL;
	type = json_string_value(json_object_get(m, "type"));
	if (json_object_get(m, "error") != NULL)
		rc = ctl_report(m);
	else if (type != NULL && strcmp(type, "message") == 0) {
		if (ctl_print(sub->prefix ? json_string_value(json_object_get(m,
		    "channel")) : NULL, json_object_get(m, "body"),
		    JSON_OUT) != CTL_OK)
			rc = CTL_FAIL;
		else if (++sub->seen == sub->count)
			rc = CTL_OK;
	}
	json_decref(m);
	return rc;
}

int
cmd_subscribe(struct ctl *ctl, const struct cmd_entry *e, int argc,
    char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "help",  no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct subscribe sub = { 0 };
	struct session s;
	json_t *m;
	int c, rc, i;

	while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		if (c == 'n' && ctl_number(optarg, 1, INT64_MAX, &sub.count) == 0)
			continue;
		if (c == 'h') {
			return ctl_usage(e, true);
		}
		return ctl_usage(e, false);
	}
	if (optind >= argc)
		return ctl_usage(e, false);
	sub.prefix = argc - optind > 1;
	if (session_open(&s, ctl, JFC_MASTER, &sub) < 0) {
		session_free(&s);
		return CTL_LOST;
	}
	s.frame = subscribe_frame;
	for (i = optind; i < argc; i++) {
		m = json_pack("{s:s, s:s}", "type", "subscribe", "channel", argv[i]);
		if (m == NULL) {
			ctl_warn("channel name is not valid UTF-8: %s", argv[i]);
			session_free(&s);
			return CTL_USAGE;
		}
		session_send(&s, m);
	}
	rc = session_run(&s);
	session_free(&s);
	return rc;
}

/* ------------------------------------------------------------------ raw */

struct raw {
	long long	 count;		/* frames to wait for; 0: no limit */
	long long	 seen;
	long long	 idle_ms;
};

/* raw_frame: every payload verbatim on its own line. */
static int
raw_frame(struct session *s, const char *p, size_t len)
{
	struct raw *raw = s->arg;

	fwrite(p, 1, len, stdout);
	putchar('\n');
	if (fflush(stdout) == EOF)
		return CTL_FAIL;
	if (++raw->seen == raw->count)
		return CTL_OK;
	if (ev_is_active(&s->timer))
		session_deadline(s, raw->idle_ms);
	return CTL_RUNNING;
}

/* raw_lost: a close is an answer for raw (tests provoke it), so it is
 * success unless -n frames were promised and did not come. */
static int
raw_lost(struct session *s, const char *why)
{
	struct raw *raw = s->arg;

	(void)why;
	return raw->count > 0 ? CTL_LOST : CTL_OK;
}

static int
raw_timeout(struct session *s)
{
	struct raw *raw = s->arg;

	return raw->count > 0 ? CTL_TIMEOUT : CTL_OK;
}

/* raw_line: one line of stdin is one frame, bytes untouched; an empty line
 * is a zero-length frame. */
static void
raw_line(struct session *s, const char *p, size_t len)
{
	if (len > UINT32_MAX) {
		ctl_warn("line too long for one frame");
		session_done(s, CTL_USAGE);
		return;
	}
	session_frame(s, p, len);
}

/* raw_flushed: the idle clock starts once stdin is done and all of it has
 * left, so a slow --dribble does not eat into the wait. */
static void
raw_flushed(struct session *s)
{
	struct raw *raw = s->arg;

	if (s->sin_eof && session_queued(s) == 0 && !ev_is_active(&s->timer))
		session_deadline(s, raw->idle_ms);
}

/* cmd_raw: frames (or bytes) from stdin, frames to stdout, both at once;
 * nothing is checked, since its purpose is to send what is wrong. */
int
cmd_raw(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "worker",   no_argument,       NULL, 'W' },
		{ "count",    required_argument, NULL, 'n' },
		{ "timeout",  required_argument, NULL, 't' },
		{ "unframed", no_argument,       NULL, 'u' },
		{ "dribble",  no_argument,       NULL, 'd' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct raw raw = { .idle_ms = 2000 };
	struct session s;
	bool worker = false, unframed = false, dribble = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, "n:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'W':
			worker = true;
			break;
		case 'n':
			if (ctl_number(optarg, 1, INT64_MAX, &raw.count) < 0)
				return ctl_usage(e, false);
			break;
		case 't':
			if (ctl_number(optarg, 0, INT32_MAX, &raw.idle_ms) < 0)
				return ctl_usage(e, false);
			break;
		case 'u':
			unframed = true;
			break;
		case 'd':
			dribble = true;
			break;
		case 'h':
			return ctl_usage(e, true);
		default:
			return ctl_usage(e, false);
		}
	}
	if (optind != argc)
		return ctl_usage(e, false);
	if (session_open(&s, ctl, worker ? JFC_WORKER : JFC_MASTER,
	    &raw) < 0) {
		session_free(&s);
		return CTL_LOST;
	}
	session_dribble(&s, dribble);
	s.frame = raw_frame;
	s.lost = raw_lost;
	s.timeout = raw_timeout;
	s.flushed = raw_flushed;
	session_input(&s, !unframed, unframed ? session_bytes : raw_line,
	    raw_flushed);
	rc = session_run(&s);
	session_free(&s);
	return rc;
}

/* ------------------------------------------- the job lifecycle */

/* cmd_kick: ID (one dead job) or --type TYPE (all of its dead jobs). */
int
cmd_kick(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "help", no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *type = NULL;
	json_t *m;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c != 't')
			return ctl_usage(e, c == 'h');
		type = optarg;
	}
	if (argc - optind != (type != NULL ? 0 : 1))
		return ctl_usage(e, false);
	m = type != NULL ? json_pack("{s:s, s:s}", "type", "kick", "job_type", type) :
	    json_pack("{s:s, s:s}", "type", "kick", "id", argv[optind]);
	if (m == NULL) {
		ctl_warn("the id or type is not valid UTF-8");
		return CTL_USAGE;
	}
	return session_call(ctl, m, status_frame, NULL);
}

/* cmd_pause: pause TYPE, or resume TYPE (the command's name says which). */
int
cmd_pause(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	json_t *m;
	int rc;

	if ((rc = ctl_args(e, argc, argv, 1)) != CTL_RUNNING)
		return rc;
	m = json_pack("{s:s, s:s}", "type", e->name, "job_type", argv[optind]);
	if (m == NULL) {
		ctl_warn("the type is not valid UTF-8");
		return CTL_USAGE;
	}
	return session_call(ctl, m, status_frame, NULL);
}

/* cmd_configure: a type's limit, and default retries and backoff. */
int
cmd_configure(struct ctl *ctl, const struct cmd_entry *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "limit",   required_argument, NULL, 'l' },
		{ "retries", required_argument, NULL, 'r' },
		{ "backoff", required_argument, NULL, 'b' },
		{ "help",    no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	long long v[3];
	static const char *const keys[3] = { "limit", "retries", "backoff" };
	bool has[3] = { false };
	json_t *m;
	int c, k;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c != 'l' && c != 'r' && c != 'b')
			return ctl_usage(e, c == 'h');
		k = c == 'l' ? 0 : c == 'r' ? 1 : 2;
		if (ctl_number(optarg, INT64_MIN, INT64_MAX, &v[k]) < 0)
			return ctl_usage(e, false);
		has[k] = true;
	}
	if (argc - optind != 1)
		return ctl_usage(e, false);
	if ((m = json_pack("{s:s, s:s}", "type", "configure", "job_type", argv[optind])) == NULL) {
		ctl_warn("the type is not valid UTF-8");
		return CTL_USAGE;
	}
	for (k = 0; k < 3; k++)
		if (has[k])
			json_object_set_new(m, keys[k], json_integer(v[k]));
	return session_call(ctl, m, status_frame, NULL);
}
