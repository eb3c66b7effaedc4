/*
 * worker.c — struct jfc_worker: join a job type and hand each job to the
 * caller's callback; answer pings, pass cancels on, send partials,
 * responses and failure reports; reconnect with a growing, jittered wait.
 *
 * Jobs outlive a connection: a job still running when the daemon goes
 * away keeps running, and its answer is kept and sent (with its id) on
 * the next connection.  The daemon takes it only if it gave that job to
 * this connection again (then a job frame with that id crosses it, and
 * the job does not run twice), else it answers an error with that id,
 * which is logged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/jfc_int.h"

#define RETRY_FIRST	0.1		/* seconds before the first reconnect */
#define RETRY_CAP	2.0		/* the longest wait between two tries */
#define RETRY_STABLE	1.0		/* a connection that lived this long
					   resets the backoff */

struct jfc_job {
	LIST_ENTRY(jfc_job) entry;
	jfc_worker	*w;
	json_t		*id;		/* null for a job frame without one */
	char		*idtext, *body;
	void		*data;
	bool		 cancelled;
	unsigned	 gen;		/* the connection it came on (w->gen) */
	char		*answer;	/* its answer frame, kept while offline */
};

struct jfc_worker {
	jfc_client	*c;
	struct ev_loop	*loop, *own;
	jfc_conn	*s;
	char		*type;
	long long	 capacity, heartbeat;	/* 0: not asked for */
	char		*name;
	void		(*on_job)(jfc_job *, void *);
	void		(*on_cancel)(jfc_job *, void *);
	void		(*on_error)(const char *, void *);
	void		*arg;
	int		 result;	/* 1 while running */
	bool		 joined;	/* a job came: the join was accepted */
	LIST_HEAD(, jfc_job) jobs;

	json_t		*join;		/* sent again on every connection */
	double		 retry_for;	/* seconds; < 0: for ever; 0: never */
	unsigned	 gen;		/* connections made so far */
	unsigned	 tries;		/* failed tries since the loss */
	double		 lost_at;	/* when the outage began */
	double		 up_at;		/* when the connection was made */
	ev_timer	 retry;
	char		*drop;		/* why the daemon is dropping us */
	json_t		*sent;		/* ids of answers of an earlier connection,
					   sent on this one, not yet judged */
};

jfc_worker *
jfc_worker_new(jfc_client *c, const char *type)
{
	jfc_worker *w = xcalloc(1, sizeof *w);

	w->c = c;
	w->type = xstrdup(type);
	w->retry_for = -1;
	w->result = 1;
	w->sent = json_array();
	LIST_INIT(&w->jobs);
	return w;
}

void
jfc_worker_set_capacity(jfc_worker *w, int n)
{
	w->capacity = n > 0 ? n : 0;
}

void
jfc_worker_set_heartbeat(jfc_worker *w, int ms)
{
	w->heartbeat = ms > 0 ? ms : 0;
}

void
jfc_worker_set_name(jfc_worker *w, const char *name)
{
	free(w->name);
	w->name = name != NULL ? xstrdup(name) : NULL;
}

void
jfc_worker_set_retry_for(jfc_worker *w, double seconds)
{
	w->retry_for = seconds;
}

void
jfc_worker_on_job(jfc_worker *w, void (*fn)(jfc_job *, void *), void *arg)
{
	w->on_job = fn;
	w->arg = arg;
}

void
jfc_worker_on_cancel(jfc_worker *w, void (*fn)(jfc_job *, void *))
{
	w->on_cancel = fn;
}

void
jfc_worker_on_error(jfc_worker *w, void (*fn)(const char *, void *))
{
	w->on_error = fn;
}

int
jfc_worker_result(const jfc_worker *w)
{
	return w->result;
}

/* jfc_worker_stop: end the run with status (the first one stands). */
void
jfc_worker_stop(jfc_worker *w, int status)
{
	if (w->result == 1)
		w->result = status;
	if (w->loop != NULL)
		ev_break(w->loop, EVBREAK_ALL);
}

/* ---------------------------------------------------------------- jobs */

const char *
jfc_job_id(const jfc_job *j)
{
	return j->idtext;
}

const char *
jfc_job_body(const jfc_job *j)
{
	return j->body;
}

bool
jfc_job_cancelled(const jfc_job *j)
{
	return j->cancelled;
}

void
jfc_job_set_data(jfc_job *j, void *p)
{
	j->data = p;
}

void *
jfc_job_data(const jfc_job *j)
{
	return j->data;
}

void
jfc_job_drop(jfc_job *j)
{
	LIST_REMOVE(j, entry);
	json_decref(j->id);
	free(j->idtext);
	free(j->body);
	free(j->answer);
	free(j);
}

static bool
online(const jfc_worker *w)
{
	return jfc_conn_up(w->s);
}

static void
send_text(jfc_worker *w, const char *text)
{
	jfc_conn_frame(w->s, text, strlen(text));
}

static void
send_json(jfc_worker *w, json_t *m)
{
	char *text = json_dumps(m, JFC_JSON);

	json_decref(m);
	if (text == NULL)
		fatalx("cannot encode a message");
	send_text(w, text);
	free(text);
}

/* job_send_late: send the kept answer of a job of an earlier connection. */
static void
job_send_late(jfc_job *j)
{
	jfc_worker *w = j->w;

	send_text(w, j->answer);
	json_array_append(w->sent, j->id);
	jfc_job_drop(j);
}

/* jfc_job_partial: a partial result; only on the connection the job came
 * on, and only while it runs: the daemon would refuse it else. */
int
jfc_job_partial(jfc_job *j, const char *body)
{
	jfc_worker *w = j->w;
	json_t *m, *b;

	if ((b = json_loads(body != NULL ? body : "null", JSON_DECODE_ANY,
	    NULL)) == NULL)
		return JFC_ERR;
	if (j->cancelled || j->gen != w->gen || !online(w)) {
		json_decref(b);
		return 0;
	}
	m = json_pack("{s:s, s:o}", "type", "partial", "body", b);
	if (!json_is_null(j->id))
		json_object_set(m, "id", j->id);
	send_json(w, m);
	return 0;
}

/*
 * jfc_job_answer: a response (or with failed, a "fail" report), unless the
 * job was cancelled (the daemon wants no answer then).  While the daemon
 * is away, the answer is kept for the next connection.
 */
int
jfc_job_answer(jfc_job *j, bool failed, const char *body, const char *log)
{
	jfc_worker *w = j->w;
	bool late = j->gen != w->gen || !online(w);
	json_t *m, *b;
	char *text;

	if (j->cancelled) {
		jfc_job_drop(j);
		return 0;
	}
	if ((b = json_loads(body != NULL ? body : "null", JSON_DECODE_ANY,
	    NULL)) == NULL) {
		jfci_warn(w->c, "job %s: the answer is not valid JSON", j->idtext);
		return JFC_ERR;
	}
	m = json_pack("{s:s, s:o}", "type", failed ? "fail" : "response", "body", b);
	/* With cancels or several slots, an answer must say which job it
	 * answers: a late one for a cancelled job is then dropped.  So must
	 * one of an earlier connection. */
	if (w->capacity > 1 || w->on_cancel != NULL || late)
		json_object_set(m, "id", j->id);
	if (log != NULL && *log != '\0')
		json_object_set_new(m, "log", json_string(log));
	text = json_dumps(m, JFC_JSON);
	json_decref(m);
	if (text == NULL || strlen(text) > JFC_FRAME_MAX) {
		free(text);
		return JFC_ETOOBIG;
	}
	if (late && json_is_null(j->id)) {
		free(text);	/* nothing could say which job it answers */
		jfc_job_drop(j);
		return 0;
	}
	if (!late) {
		send_text(w, text);
		free(text);
		jfc_job_drop(j);
		return 0;
	}
	j->answer = text;	/* kept until the daemon is back */
	j->data = NULL;		/* the caller is done with it */
	if (online(w))
		job_send_late(j);
	return 0;
}

int
jfc_job_respond(jfc_job *j, const char *result)
{
	return jfc_job_answer(j, false, result, NULL);
}

int
jfc_job_fail(jfc_job *j, const char *error)
{
	return jfc_job_answer(j, true, error, NULL);
}

/* sent_index: where id is in w->sent, or -1. */
static int
sent_index(jfc_worker *w, json_t *id)
{
	size_t i;
	json_t *v;

	json_array_foreach(w->sent, i, v)
		if (json_equal(v, id))
			return (int)i;
	return -1;
}

/* job_find: the job of an earlier connection still running job id. */
static jfc_job *
job_find(jfc_worker *w, json_t *id)
{
	jfc_job *j;

	LIST_FOREACH(j, &w->jobs, entry)
		if (j->gen != w->gen && !j->cancelled && j->answer == NULL &&
		    json_equal(j->id, id))
			return j;
	return NULL;
}

static void
job_start(jfc_worker *w, json_t *id, json_t *body)
{
	jfc_job *j = xcalloc(1, sizeof *j);

	j->w = w;
	j->gen = w->gen;
	j->id = json_incref(id);
	j->idtext = json_is_null(id) ? xstrdup("") : jfci_text(id);
	j->body = json_dumps(body, JFC_JSON);
	if (j->body == NULL)
		j->body = xstrdup("null");
	LIST_INSERT_HEAD(&w->jobs, j, entry);
	if (w->on_job != NULL)
		w->on_job(j, w->arg);
	else
		jfc_job_fail(j, "\"no handler\"");
}

/* job_cancel: the daemon ended a job we run: tell the caller. */
static void
job_cancel(jfc_worker *w, json_t *id)
{
	jfc_job *j;

	LIST_FOREACH(j, &w->jobs, entry) {
		if (j->cancelled || j->answer != NULL || !json_equal(j->id, id))
			continue;
		j->cancelled = true;
		if (w->on_cancel != NULL)
			w->on_cancel(j, w->arg);
		return;
	}
}

/* worker_error: an error frame from the daemon. */
static void
worker_error(jfc_worker *w, json_t *m, const char *p, size_t len)
{
	json_t *id = json_object_get(m, "id");
	const char *code = json_string_value(json_object_get(m, "error"));
	const char *reason = json_string_value(json_object_get(m, "reason"));
	char *idtext, *text;
	int i;

	if (id != NULL && (i = sent_index(w, id)) >= 0) {
		/* An answer of an earlier connection that does not count: the
		 * job went to another worker, or runs again. */
		idtext = jfci_text(id);
		jfci_warn(w->c, "the result of job %s from before the reconnect "
		    "was not taken (%s); the daemon runs it again", idtext,
		    code != NULL ? code : "error");
		free(idtext);
		json_array_remove(w->sent, (size_t)i);
		return;
	}
	/* Before any job, an error can only be about the join; but
	 * auth_failed is a token reload dropping us (the close follows, and
	 * the reconnect reads the token file again). */
	if (w->retry_for != 0 && code != NULL && strcmp(code, "auth_failed") == 0) {
		free(w->drop);	/* said in the line of the loss */
		w->drop = xprintf("%s: %s", code, reason ? reason : "");
		return;
	}
	text = xstrndup(p, len);
	if (w->on_error != NULL)
		w->on_error(text, w->arg);
	else
		jfci_warn(w->c, "%s", text);
	free(text);
	if (!w->joined)
		jfc_worker_stop(w, JFC_ERR);
}

/* worker_frame: jobs, pings and cancels from the daemon.  Anything else is
 * ignored: the daemon may add frames a worker need not understand. */
static int
worker_frame(jfc_conn *s, const char *p, size_t len, void *arg)
{
	jfc_worker *w = arg;
	const char *type;
	json_t *m, *id;
	jfc_job *j;
	int i;

	(void)s;
	if (w->result != 1)
		return 1;
	if ((m = json_loadb(p, len, 0, NULL)) == NULL) {
		jfci_warn(w->c, "bad frame from daemon");
		return 0;
	}
	type = json_string_value(json_object_get(m, "type"));
	id = json_object_get(m, "id");
	if (json_object_get(m, "error") != NULL)
		worker_error(w, m, p, len);
	else if (type == NULL)
		;
	else if (strcmp(type, "job") == 0) {
		w->joined = true;
		if (id != NULL && (i = sent_index(w, id)) >= 0) {
			/* Given back to us before our kept answer reached the
			 * daemon: that answer answers it. */
			json_array_remove(w->sent, (size_t)i);
		} else if (id != NULL && (j = job_find(w, id)) != NULL)
			j->gen = w->gen;	/* still running: it answers this one */
		else
			job_start(w, id != NULL ? id : json_null(),
			    json_object_get(m, "body") != NULL ?
			    json_object_get(m, "body") : json_null());
	} else if (strcmp(type, "ping") == 0)
		send_json(w, json_pack("{s:s}", "type", "pong"));
	else if (strcmp(type, "cancel") == 0 && id != NULL)
		job_cancel(w, id);
	json_decref(m);
	return w->result != 1;
}

static void worker_lost(jfc_conn *, const char *, void *);
static const struct jfc_conn_ops worker_ops = { worker_frame, worker_lost, NULL };

/* worker_up: a connection is made: join as before, then send the kept
 * answers of jobs that ended while the daemon was away. */
static void
worker_up(jfc_worker *w)
{
	jfc_job *j, *next;

	w->gen++;
	w->up_at = ev_now(w->loop);
	json_array_clear(w->sent);
	send_json(w, json_incref(w->join));
	for (j = LIST_FIRST(&w->jobs); j != NULL; j = next) {
		next = LIST_NEXT(j, entry);
		if (j->answer != NULL)
			job_send_late(j);
	}
}

/* worker_wait: arm the next try: RETRY_FIRST doubling up to RETRY_CAP,
 * each wait drawn from its upper half so that a fleet does not come back
 * in step. */
static void
worker_wait(jfc_worker *w)
{
	double d = RETRY_FIRST;
	unsigned i;

	for (i = 0; i < w->tries && d < RETRY_CAP; i++)
		d *= 2;
	if (d > RETRY_CAP)
		d = RETRY_CAP;
	d *= 0.5 + 0.5 * ((double)random() / RAND_MAX);
	ev_timer_set(&w->retry, d, 0);
	ev_timer_start(w->loop, &w->retry);
}

/* worker_connect: one try; the token file is read again (it may have been
 * rotated).  Its failure's message is left in why. */
static int
worker_connect(jfc_worker *w, char *why, size_t whylen)
{
	jfc_client *c = w->c;
	char *tok;
	int rc;

	jfci_capture(c, why, whylen);
	if (c->token_file != NULL && (tok = jfci_read_token(c, c->token_file)) != NULL) {
		free(c->token);
		c->token = tok;
	}
	jfc_conn_free(w->s);
	w->s = NULL;
	rc = jfc_conn_open(c, w->loop, JFC_WORKER, &worker_ops, w, &w->s);
	jfci_capture(c, NULL, 0);
	return rc;
}

/* worker_retry_cb: one try.  A token the daemon refuses ends the worker,
 * as does an outage longer than its retry limit; anything else is tried
 * again. */
static void
worker_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	jfc_worker *w = t->data;
	char why[300];
	int rc;

	(void)revents;
	rc = worker_connect(w, why, sizeof why);
	w->tries++;
	if (rc == 0) {
		jfci_warn(w->c, "reconnected after %u %s (%.1f s)", w->tries,
		    w->tries == 1 ? "try" : "tries", ev_now(loop) - w->lost_at);
		w->tries = 0;
		worker_up(w);
		return;
	}
	if (rc == JFC_EREFUSED) {
		jfci_warn(w->c, "%s", why);
		jfc_worker_stop(w, JFC_EREFUSED);
		return;
	}
	if (w->retry_for > 0 && ev_now(loop) - w->lost_at >= w->retry_for) {
		jfci_warn(w->c, "gave up reconnecting after %u tries (%.0f s): %s",
		    w->tries, ev_now(loop) - w->lost_at, why);
		jfc_worker_stop(w, JFC_ELOST);
		return;
	}
	worker_wait(w);
}

/* worker_lost: the daemon went away.  Jobs go on running; their answers
 * wait for the next connection.  One line says so. */
static void
worker_lost(jfc_conn *s, const char *why, void *arg)
{
	jfc_worker *w = arg;

	(void)s;
	if (w->result != 1)
		return;
	if (w->retry_for == 0) {
		jfci_warn(w->c, "connection lost: %s", why);
		jfc_worker_stop(w, JFC_ELOST);
		return;
	}
	jfci_warn(w->c, "connection lost (%s); reconnecting", w->drop ? w->drop : why);
	free(w->drop);
	w->drop = NULL;
	w->lost_at = ev_now(w->loop);
	/* A connection that dropped at once (say, the daemon refuses us at
	 * its limit) keeps the backoff growing. */
	if (w->lost_at - w->up_at >= RETRY_STABLE)
		w->tries = 0;
	worker_wait(w);
}

/* jfc_worker_start: the join frame, then the first connection.  The
 * daemon may start after us (boot order): wait for it, unless the token
 * is wrong or reconnecting is off. */
int
jfc_worker_start(jfc_worker *w, struct ev_loop *loop)
{
	char why[300];
	int rc;

	w->loop = loop;
	w->result = 1;
	json_decref(w->join);
	w->join = json_pack("{s:s, s:s}", "type", "join", "job_type", w->type);
	if (w->join == NULL || (w->name != NULL && json_object_set_new(w->join,
	    "worker", json_string(w->name)) < 0)) {
		jfci_warn(w->c, "the type or worker name is not valid UTF-8");
		w->result = JFC_ERR;
		return JFC_ERR;
	}
	if (w->capacity > 0)
		json_object_set_new(w->join, "capacity", json_integer(w->capacity));
	if (w->heartbeat > 0)
		json_object_set_new(w->join, "heartbeat", json_integer(w->heartbeat));
	if (w->on_cancel != NULL)
		json_object_set_new(w->join, "cancel", json_true());
	srandom((unsigned)getpid() ^ (unsigned)(ev_time() * 1e6));
	ev_timer_init(&w->retry, worker_retry_cb, 0, 0);
	w->retry.data = w;
	rc = worker_connect(w, why, sizeof why);
	if (rc == 0) {
		worker_up(w);
		return 0;
	}
	if (w->retry_for == 0 || rc == JFC_EREFUSED) {
		jfci_warn(w->c, "%s", why);
		w->result = rc;
		return rc;
	}
	jfci_warn(w->c, "%s; reconnecting", why);
	w->lost_at = ev_now(loop);
	w->tries = 1;
	worker_wait(w);
	return 0;
}

/* worker_end: leave: the daemon requeues whatever we were running. */
static void
worker_end(jfc_worker *w)
{
	if (w->loop != NULL)
		ev_timer_stop(w->loop, &w->retry);
	jfc_conn_free(w->s);
	w->s = NULL;
}

int
jfc_worker_run(jfc_worker *w)
{
	int rc;

	if (w->own == NULL && (w->own = ev_loop_new(EVFLAG_AUTO)) == NULL)
		return JFC_ERR;
	if ((rc = jfc_worker_start(w, w->own)) < 0)
		return rc;
	while (w->result == 1)
		ev_run(w->own, 0);
	worker_end(w);
	return w->result;
}

void
jfc_worker_free(jfc_worker *w)
{
	if (w == NULL)
		return;
	worker_end(w);
	while (!LIST_EMPTY(&w->jobs))
		jfc_job_drop(LIST_FIRST(&w->jobs));
	if (w->own != NULL)
		ev_loop_destroy(w->own);
	json_decref(w->join);
	json_decref(w->sent);
	free(w->drop);
	free(w->type);
	free(w->name);
	free(w);
}
