/*
 * client.c — struct jfc_client: the options (host, ports, token, TLS
 * files; the environment's defaults), the library's messages, and the
 * blocking master calls.
 *
 * The blocking calls share one master connection on a libev loop of the
 * client's own.  Every frame read goes to an inbox; each call sends its
 * request and runs the loop until the inbox holds the frame it waits for,
 * so that results, partials and channel messages that arrive meanwhile
 * are kept for the calls that ask for them later.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/jfc_int.h"

/* ------------------------------------------------------------ messages */

static void
log_stderr(const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "libjobfs: %s\n", msg);
}

/* jfci_warn: a message to the log (or to the capture buffer), kept as the
 * last error too. */
void
jfci_warn(jfc_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	if (c->capture != NULL) {
		snprintf(c->capture, c->capturelen, "%s", c->err);
		return;
	}
	c->log(c->err, c->log_arg);
}

/* jfci_capture: keep the next messages in buf (the last one wins) instead
 * of logging them; NULL logs again.  A worker reconnecting says one line
 * per outage, not one per failed try. */
void
jfci_capture(jfc_client *c, char *buf, size_t len)
{
	c->capture = buf;
	c->capturelen = len;
	if (buf != NULL && len > 0)
		buf[0] = '\0';
}

static void
set_error(jfc_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
set_error(jfc_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
}

const char *
jfc_error(const jfc_client *c)
{
	return c->err;
}

void
jfc_set_log(jfc_client *c, void (*log)(const char *, void *), void *arg)
{
	c->log = log != NULL ? log : log_stderr;
	c->log_arg = arg;
}

/* jfci_text: a JSON value as text to show a person: strings bare, the rest
 * as compact JSON. */
char *
jfci_text(const json_t *v)
{
	char *s;

	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	s = json_dumps(v, JFC_JSON);
	return s != NULL ? s : xstrdup("?");
}

/* ------------------------------------------------------------- options */

jfc_client *
jfc_new(void)
{
	jfc_client *c = xcalloc(1, sizeof *c);

	c->host = xstrdup("127.0.0.1");
	c->master_port = 9998;
	c->worker_port = 9999;
	c->log = log_stderr;
	c->inbox = json_array();
	return c;
}

/* jfci_read_token: the first line of path, without its newline. */
char *
jfci_read_token(jfc_client *c, const char *path)
{
	char line[1100];
	size_t n;
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		set_error(c, "token file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fgets(line, sizeof line, f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n == 0) {
		set_error(c, "token file %s: no token on its first line", path);
		return NULL;
	}
	return xstrdup(line);
}

static int
set_port(jfc_client *c, int *port, const char *v, const char *what)
{
	char *end;
	long n;

	errno = 0;
	n = v != NULL ? strtol(v, &end, 10) : 0;
	if (v == NULL || errno != 0 || end == v || *end != '\0' || n < 1 ||
	    n > 65535) {
		set_error(c, "%s: not a port number: %s", what, v ? v : "");
		return JFC_ERR;
	}
	*port = (int)n;
	return 0;
}

static void
set_str(char **field, const char *v)
{
	free(*field);
	*field = v != NULL && *v != '\0' ? xstrdup(v) : NULL;
}

int
jfc_set(jfc_client *c, enum jfc_opt opt, const char *v)
{
	char *tok;

	switch (opt) {
	case JFC_HOST:
		if (v == NULL || *v == '\0')
			return JFC_ERR;
		set_str(&c->host, v);
		return 0;
	case JFC_MASTER_PORT:
		return set_port(c, &c->master_port, v, "master port");
	case JFC_WORKER_PORT:
		return set_port(c, &c->worker_port, v, "worker port");
	case JFC_TOKEN:
		if (c->token != NULL)
			explicit_bzero(c->token, strlen(c->token));
		set_str(&c->token, v);
		set_str(&c->token_file, NULL);
		return 0;
	case JFC_TOKEN_FILE:
		if (v == NULL || (tok = jfci_read_token(c, v)) == NULL)
			return JFC_ERR;
		free(c->token);
		c->token = tok;
		set_str(&c->token_file, v);
		return 0;
	case JFC_TLS:
		c->tls = v != NULL && strcmp(v, "0") != 0 && *v != '\0';
		return 0;
	case JFC_CA:
		set_str(&c->ca, v);
		break;
	case JFC_CERT:
		set_str(&c->cert, v);
		break;
	case JFC_KEY:
		set_str(&c->key, v);
		break;
	default:
		return JFC_ERR;
	}
	if (c->ca != NULL || c->cert != NULL || c->key != NULL)
		c->tls = true;
	/* a new CA or certificate takes a new context */
	jfci_tls_free(c);
	return 0;
}

const char *
jfc_get(const jfc_client *c, enum jfc_opt opt)
{
	jfc_client *w = (jfc_client *)c;

	switch (opt) {
	case JFC_HOST:		return c->host;
	case JFC_MASTER_PORT:
		snprintf(w->portbuf, sizeof w->portbuf, "%d", c->master_port);
		return c->portbuf;
	case JFC_WORKER_PORT:
		snprintf(w->portbuf, sizeof w->portbuf, "%d", c->worker_port);
		return c->portbuf;
	case JFC_TOKEN:		return c->token;
	case JFC_TOKEN_FILE:	return c->token_file;
	case JFC_TLS:		return c->tls ? "1" : NULL;
	case JFC_CA:		return c->ca;
	case JFC_CERT:		return c->cert;
	case JFC_KEY:		return c->key;
	}
	return NULL;
}

/* jfc_from_env: the environment's defaults, as jobctl reads them. */
int
jfc_from_env(jfc_client *c)
{
	static const struct { const char *name; enum jfc_opt opt; } vars[] = {
		{ "JOBFS_HOST", JFC_HOST },
		{ "JOBFS_MASTER_PORT", JFC_MASTER_PORT },
		{ "JOBFS_WORKER_PORT", JFC_WORKER_PORT },
		{ "JOBFS_TOKEN_FILE", JFC_TOKEN_FILE },
		{ "JOBFS_TOKEN", JFC_TOKEN },		/* after the file: it wins */
		{ "JOBFS_TLS", JFC_TLS },
		{ "JOBFS_CA", JFC_CA },
		{ "JOBFS_CERT", JFC_CERT },
		{ "JOBFS_KEY", JFC_KEY },
	};
	const char *v;
	size_t i;

	for (i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		if ((v = getenv(vars[i].name)) == NULL || *v == '\0')
			continue;
		if (jfc_set(c, vars[i].opt, v) < 0) {
			char why[sizeof c->err];

			snprintf(why, sizeof why, "%s", c->err);
			set_error(c, "%s: %s", vars[i].name, why);
			return JFC_ERR;
		}
	}
	if ((c->cert == NULL) != (c->key == NULL)) {
		set_error(c, "JOBFS_CERT and JOBFS_KEY go together");
		return JFC_ERR;
	}
	return 0;
}

void
jfc_free(jfc_client *c)
{
	if (c == NULL)
		return;
	jfc_conn_free(c->master);
	if (c->loop != NULL)
		ev_loop_destroy(c->loop);
	json_decref(c->inbox);
	jfci_tls_free(c);
	if (c->token != NULL)
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	free(c->token_file);
	free(c->host);
	free(c->ca);
	free(c->cert);
	free(c->key);
	free(c);
}

/* ------------------------------------------------------ the blocking calls */

static int
master_frame(jfc_conn *s, const char *p, size_t len, void *arg)
{
	jfc_client *c = arg;
	json_t *m = json_loadb(p, len, 0, NULL);

	(void)s;
	if (m != NULL)
		json_array_append_new(c->inbox, m);
	return 0;
}

static void
master_lost(jfc_conn *s, const char *why, void *arg)
{
	jfc_client *c = arg;

	(void)s;
	set_error(c, "connection lost: %s", why);
}

/* master: the connection of the blocking calls, made when first needed
 * and again after a loss. */
static int
master(jfc_client *c)
{
	static const struct jfc_conn_ops ops = { master_frame, master_lost, NULL };

	if (jfc_conn_up(c->master))
		return 0;
	jfc_conn_free(c->master);
	c->master = NULL;
	if (c->loop == NULL && (c->loop = ev_loop_new(EVFLAG_AUTO)) == NULL) {
		set_error(c, "cannot start libev");
		return JFC_ERR;
	}
	return jfc_conn_open(c, c->loop, JFC_MASTER, &ops, c, &c->master);
}

static void
send_json(jfc_client *c, json_t *m)
{
	char *text = json_dumps(m, JFC_JSON);

	json_decref(m);
	if (text == NULL)
		fatalx("cannot encode a message");
	jfc_conn_frame(c->master, text, strlen(text));
	free(text);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	*(bool *)w->data = true;
}

/* A frame is what a call waits for when match says so: > 0 take it. */
typedef int (*match_fn)(json_t *m, const void *arg);

/* await: run the loop until the inbox holds a frame that match takes
 * (out: it, taken out of the inbox), timeout_ms passes (< 0: never), or
 * the connection is lost. */
static int
await(jfc_client *c, match_fn match, const void *arg, int timeout_ms,
    json_t **out)
{
	bool expired = false;
	ev_timer t;
	size_t i;
	json_t *m;

	*out = NULL;
	ev_timer_init(&t, timer_cb, timeout_ms / 1000.0, 0);
	t.data = &expired;
	if (timeout_ms > 0 && c->loop != NULL)
		ev_timer_start(c->loop, &t);
	for (;;) {
		for (i = 0; i < json_array_size(c->inbox); i++) {
			m = json_array_get(c->inbox, i);
			if (match(m, arg) > 0) {
				*out = json_incref(m);
				json_array_remove(c->inbox, i);
				ev_timer_stop(c->loop, &t);
				return 0;
			}
		}
		if (expired || timeout_ms == 0) {
			ev_timer_stop(c->loop, &t);
			set_error(c, "timed out");
			return JFC_ETIMEOUT;
		}
		if (!jfc_conn_up(c->master)) {
			ev_timer_stop(c->loop, &t);
			return JFC_ELOST;
		}
		ev_run(c->loop, EVRUN_ONCE);
	}
}

static bool
id_is(json_t *m, const char *id)
{
	json_t *v = json_object_get(m, "id");
	char *t;
	bool eq;

	if (v == NULL)
		return false;
	if (json_is_string(v))
		return strcmp(json_string_value(v), id) == 0;
	t = jfci_text(v);
	eq = strcmp(t, id) == 0;
	free(t);
	return eq;
}

/* a pong, or an error frame without id */
static int
match_pong(json_t *m, const void *arg)
{
	const char *t = json_string_value(json_object_get(m, "type"));

	(void)arg;
	if (t != NULL && strcmp(t, "pong") == 0 && json_object_get(m, "id") == NULL)
		return 1;
	return json_object_get(m, "error") != NULL &&
	    json_object_get(m, "id") == NULL;
}

/* an error frame about id that is no job's ending */
static int
match_refusal(json_t *m, const void *arg)
{
	const char *code = json_string_value(json_object_get(m, "error"));

	return code != NULL && id_is(m, arg) && strcmp(code, "job_failed") != 0 &&
	    strcmp(code, "timeout") != 0 && strcmp(code, "cancelled") != 0;
}

static int
frame_error(jfc_client *c, json_t *m)
{
	json_t *why = json_object_get(m, "reason");
	char *code = jfci_text(json_object_get(m, "error"));
	char *text;

	if (why == NULL)
		why = json_object_get(m, "name");
	text = why != NULL ? jfci_text(why) : NULL;
	set_error(c, "%s%s%s", code, text ? ": " : "", text ? text : "");
	free(text);
	free(code);
	return JFC_ERR;
}

/* ping_after: the daemon answers requests in order, so the pong after a
 * request says that every error it caused has arrived: refusal takes one
 * of those about id (NULL: those without id). */
static int
ping_after(jfc_client *c, const char *id)
{
	json_t *m, *bad = NULL;
	int rc;

	send_json(c, json_pack("{s:s}", "type", "ping"));
	for (;;) {
		if ((rc = await(c, match_pong, NULL, -1, &m)) < 0)
			break;
		if (json_object_get(m, "error") == NULL) {
			json_decref(m);
			break;
		}
		json_decref(bad);
		bad = m;
	}
	if (id != NULL && bad == NULL && await(c, match_refusal, id, 0, &m) == 0)
		bad = m;
	if (rc == 0 && bad != NULL)
		rc = frame_error(c, bad);
	json_decref(bad);
	return rc;
}

static json_t *
parse_arg(jfc_client *c, const char *text, const char *what)
{
	json_error_t e;
	json_t *v;

	if (text == NULL)
		return json_null();
	if ((v = json_loads(text, JSON_DECODE_ANY, &e)) == NULL)
		set_error(c, "%s is not valid JSON: %s", what, e.text);
	return v;
}

int
jfc_submit(jfc_client *c, const char *type, const char *body,
    const char *options, char **id)
{
	json_t *m, *b, *o = NULL, *idv;
	char host[65], *key;
	struct timespec ts;
	int rc;

	if (id != NULL)
		*id = NULL;
	if ((b = parse_arg(c, body, "the body")) == NULL)
		return JFC_ERR;
	if (options != NULL && ((o = parse_arg(c, options, "the options")) == NULL ||
	    !json_is_object(o))) {
		set_error(c, "the options are not a JSON object");
		json_decref(o);
		json_decref(b);
		return JFC_ERR;
	}
	m = o != NULL ? o : json_object();
	json_object_set_new(m, "type", json_string("job"));
	if (json_object_set_new(m, "job_type", json_string(type)) < 0) {
		set_error(c, "the type is not valid UTF-8");
		json_decref(m);
		json_decref(b);
		return JFC_ERR;
	}
	json_object_set_new(m, "body", b);
	if ((idv = json_object_get(m, "id")) == NULL) {
		if (gethostname(host, sizeof host) < 0)
			strcpy(host, "libjobfs");
		host[sizeof host - 1] = '\0';
		clock_gettime(CLOCK_REALTIME, &ts);
		idv = json_string_nocheck(key = xprintf("%s-%ld-%lld%03ld-%u",
		    host, (long)getpid(), (long long)ts.tv_sec,
		    ts.tv_nsec / 1000000, ++c->serial));
		free(key);
		json_object_set_new(m, "id", idv);
	}
	key = jfci_text(idv);
	if ((rc = master(c)) < 0) {
		json_decref(m);
		free(key);
		return rc;
	}
	send_json(c, m);
	rc = ping_after(c, key);
	if (rc == 0 && id != NULL)
		*id = key;
	else
		free(key);
	return rc;
}

/* a job's last frame: its result or its ending error */
static int
match_ending(json_t *m, const void *arg)
{
	if (!id_is(m, arg) || json_is_true(json_object_get(m, "partial")) ||
	    json_object_get(m, "status") != NULL)
		return 0;
	return json_object_get(m, "error") != NULL ||
	    json_object_get(m, "body") != NULL;
}

static int
match_partial(json_t *m, const void *arg)
{
	return id_is(m, arg) && json_is_true(json_object_get(m, "partial"));
}

static char *
dump(const json_t *v)
{
	char *s = json_dumps(v, JFC_JSON);

	return s != NULL ? s : xstrdup("null");
}

int
jfc_wait(jfc_client *c, const char *id, int timeout_ms, char **result)
{
	json_t *m;
	const char *code;
	int rc;

	*result = NULL;
	if ((rc = await(c, match_ending, id, 0, &m)) == JFC_ELOST ||
	    rc == JFC_ETIMEOUT) {
		/* not here yet: ask the daemon to send it (a second reply for
		 * a job of ours is harmless: the first ends the wait) */
		if ((rc = master(c)) < 0)
			return rc;
		send_json(c, json_pack("{s:s, s:s}", "type", "wait", "id", id));
		rc = await(c, match_ending, id, timeout_ms, &m);
	}
	if (rc < 0)
		return rc;
	code = json_string_value(json_object_get(m, "error"));
	if (code != NULL) {
		*result = dump(m);
		rc = strcmp(code, "job_failed") == 0 || strcmp(code, "timeout") == 0 ||
		    strcmp(code, "cancelled") == 0 ? JFC_EFAILED : JFC_ERR;
		frame_error(c, m);
	} else
		*result = dump(json_object_get(m, "body"));
	json_decref(m);
	return rc;
}

int
jfc_next_partial(jfc_client *c, const char *id, int timeout_ms, char **body)
{
	json_t *m;
	int rc;

	*body = NULL;
	if (c->master == NULL && (rc = master(c)) < 0)
		return rc;
	if ((rc = await(c, match_partial, id, timeout_ms, &m)) < 0)
		return rc;
	*body = dump(json_object_get(m, "body"));
	json_decref(m);
	return 0;
}

/* a status reply for id, or a refusal about it */
static int
match_status(json_t *m, const void *arg)
{
	return id_is(m, arg) && (json_is_string(json_object_get(m, "status")) ||
	    match_refusal(m, arg));
}

int
jfc_status(jfc_client *c, const char *id, char **info)
{
	json_t *m;
	int rc;

	*info = NULL;
	if ((rc = master(c)) < 0)
		return rc;
	send_json(c, json_pack("{s:s, s:s}", "type", "status", "id", id));
	if ((rc = await(c, match_status, id, -1, &m)) < 0)
		return rc;
	if (json_object_get(m, "status") == NULL)
		rc = frame_error(c, m);
	else
		*info = dump(m);
	json_decref(m);
	return rc;
}

int
jfc_cancel(jfc_client *c, const char *id)
{
	int rc;

	if ((rc = master(c)) < 0)
		return rc;
	send_json(c, json_pack("{s:s, s:s}", "type", "cancel", "id", id));
	return ping_after(c, id);
}

int
jfc_publish(jfc_client *c, const char *channel, const char *body)
{
	json_t *b, *m;
	int rc;

	if ((b = parse_arg(c, body, "the body")) == NULL)
		return JFC_ERR;
	m = json_pack("{s:s, s:s, s:o}", "type", "publish", "channel", channel,
	    "body", b);
	if (m == NULL) {
		set_error(c, "the channel name is not valid UTF-8");
		return JFC_ERR;
	}
	if ((rc = master(c)) < 0) {
		json_decref(m);
		return rc;
	}
	send_json(c, m);
	return ping_after(c, NULL);
}

int
jfc_subscribe(jfc_client *c, const char *channel)
{
	json_t *m = json_pack("{s:s, s:s}", "type", "subscribe", "channel", channel);
	int rc;

	if (m == NULL) {
		set_error(c, "the channel name is not valid UTF-8");
		return JFC_ERR;
	}
	if ((rc = master(c)) < 0) {
		json_decref(m);
		return rc;
	}
	send_json(c, m);
	return ping_after(c, NULL);
}

static int
match_message(json_t *m, const void *arg)
{
	const char *t = json_string_value(json_object_get(m, "type"));

	(void)arg;
	return t != NULL && strcmp(t, "message") == 0;
}

int
jfc_next_message(jfc_client *c, int timeout_ms, char **channel, char **body)
{
	json_t *m;
	int rc;

	*channel = *body = NULL;
	if (c->master == NULL && (rc = master(c)) < 0)
		return rc;
	if ((rc = await(c, match_message, NULL, timeout_ms, &m)) < 0)
		return rc;
	*channel = jfci_text(json_object_get(m, "channel"));
	*body = dump(json_object_get(m, "body"));
	json_decref(m);
	return 0;
}

/* the first frame that is no job's and no channel's */
static int
match_reply(json_t *m, const void *arg)
{
	(void)arg;
	return json_object_get(m, "id") == NULL && !match_message(m, NULL);
}

int
jfc_request(jfc_client *c, const char *request, char **reply)
{
	json_t *m;
	int rc;

	*reply = NULL;
	if ((m = parse_arg(c, request, "the request")) == NULL)
		return JFC_ERR;
	if (!json_is_object(m)) {
		json_decref(m);
		set_error(c, "the request is not a JSON object");
		return JFC_ERR;
	}
	if ((rc = master(c)) < 0) {
		json_decref(m);
		return rc;
	}
	send_json(c, m);
	if ((rc = await(c, match_reply, NULL, -1, &m)) < 0)
		return rc;
	*reply = dump(m);
	if (json_object_get(m, "error") != NULL)
		rc = frame_error(c, m);
	json_decref(m);
	return rc;
}
