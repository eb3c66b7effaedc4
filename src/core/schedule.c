/*
 * schedule.c — repeating jobs: schedules, each (job type, name) with a
 * cron expression (cron.c, UTC) or a period in milliseconds, and the
 * body, priority and retries of the jobs it fires.  The broker owns them;
 * faces call broker_schedule, broker_unschedule, broker_schedules.
 *
 * Due times.  "every" MS: the multiples of MS since the epoch (as BullMQ's
 * repeatable jobs), so every daemon of a cluster computes the same ones;
 * "cron": the minutes it matches, in UTC.  One libev periodic (wall clock)
 * waits for the earliest due time of all schedules.
 *
 * Firing.  At a due time the broker submits a job of the schedule's type
 * with its body, as any submission, whose id is sched:TYPE:NAME:DUE (DUE
 * in epoch milliseconds): it names the schedule and the due time, and a
 * second submission of one due time is refused as an existing id, on one
 * daemon (a restart that lost the schedule's last record) and across a
 * cluster (every daemon fires; Redis keeps one).  Then the schedule's
 * last due time is told to the store (schedule_changed), which keeps it.
 *
 * Missed runs.  Due times that passed while the daemon was down (or the
 * loop was blocked) fire ONCE on return: one job, for the latest missed
 * due time, as Sidekiq Enterprise's periodic jobs and anacron catch up.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/cron.h"

struct schedule {
	struct schedule *next;
	char            *type, *name;
	char            *cron_text;    /* NULL: every */
	struct cron      cron;
	int64_t          every_ms;
	char            *body;         /* JSON text */
	size_t           body_len;
	int64_t          priority;
	bool             retries_set;
	int64_t          retries;
	int64_t          created_ms;
	int64_t          last_due_ms;  /* the last due time fired; 0: none */
	int64_t          next_due_ms;  /* -1: never (a cron that matches no day) */
};

struct sched_table {
	struct schedule *list;
	size_t           n;
	ev_periodic      timer;
	uint64_t         fired;
};

static int64_t
now_ms(struct broker *b)
{
	return (int64_t)(ev_now(b->loop) * 1000.0 + 0.5);
}

/* due_after: the schedule's first due time strictly after t. */
static int64_t
due_after(const struct schedule *s, int64_t t)
{
	if (s->cron_text != NULL)
		return cron_next(&s->cron, t);
	if (t < 0)
		t = 0;
	return (t / s->every_ms + 1) * s->every_ms;
}

/* latest_due: the latest due time at or before now, given that next (a
 * due time) is at or before now. */
static int64_t
latest_due(const struct schedule *s, int64_t next, int64_t now)
{
	int64_t d;

	if (s->cron_text == NULL)
		return now / s->every_ms * s->every_ms;
	while ((d = cron_next(&s->cron, next)) >= 0 && d <= now)
		next = d;
	return next;
}

static void sched_arm(struct broker *);
static struct schedule **sched_find(struct broker *, const char *, const char *);

static void
emit_schedule_changed(struct broker *b, const struct schedule *s, int what)
{
	EMIT(b, schedule_changed, s, what);
}

/* What one due time submits: a copy, as a claim's answer (cluster mode)
 * may come after the schedule changed or went: a due time claimed is
 * fired as it was when it came due. */
struct sched_claim {
	struct broker *b;
	char          *type, *name, *body;
	size_t         body_len;
	int64_t        priority, retries, due;
	bool           retries_set;
};

/* sched_submit: the job of a due time, as any submission. */
static void
sched_submit(struct sched_claim *c)
{
	struct broker *b = c->b;
	struct submit_req r = { 0 };
	char key[ID_MAX + 1];
	char *idjson;
	json_t *id;
	struct job *j;
	enum broker_err err;

	snprintf(key, sizeof key, "sched:%s:%s:%" PRId64, c->type, c->name, c->due);
	id = json_string(key);
	idjson = json_dumps(id, JSON_ENCODE_ANY);
	json_decref(id);
	r.type = c->type;
	r.key = key;
	r.idjson = idjson;
	r.body = c->body;
	r.body_len = c->body_len;
	r.priority = c->priority;
	r.retries_set = c->retries_set;
	r.retries = c->retries;
	r.detach = true;
	err = broker_submit(b, &r, &j);
	free(idjson);
	if (err == BERR_OK || err == BERR_PENDING) {
		if (b->sched != NULL)
			b->sched->fired++;
		log_debug("schedule %s/%s: due %" PRId64 ": job submitted", c->type,
		    c->name, c->due);
	} else if (err == BERR_ID_EXISTS)
		log_debug("schedule %s/%s: due %" PRId64 " fired already", c->type,
		    c->name, c->due);
	else
		log_warn("schedule %s/%s: due %" PRId64 ": job not submitted: %s",
		    c->type, c->name, c->due, broker_err_reason(b, err));
}

static void
claim_free(struct sched_claim *c)
{
	free(c->type);
	free(c->name);
	free(c->body);
	free(c);
}

static void
claim_done(void *ctx, bool won)
{
	struct sched_claim *c = ctx;

	/* (the broker shutting down: its stores answer false) */
	if (won)
		sched_submit(c);
	else
		log_debug("schedule %s/%s: due %" PRId64 " is another daemon's",
		    c->type, c->name, c->due);
	claim_free(c);
}

static void
sched_fire(struct broker *b, struct schedule *s, int64_t now)
{
	int64_t due = latest_due(s, s->next_due_ms, now);
	struct sched_claim *c;

	if (due != s->next_due_ms)
		log_info("schedule %s/%s: due times %" PRId64 " to %" PRId64 " missed: "
		    "fired once, for the last", s->type, s->name, s->next_due_ms, due);
	s->last_due_ms = due;
	s->next_due_ms = due_after(s, due);
	c = xcalloc(1, sizeof *c);
	c->b = b;
	c->type = xstrdup(s->type);
	c->name = xstrdup(s->name);
	c->body = xmalloc(s->body_len + 1);
	memcpy(c->body, s->body, s->body_len + 1);
	c->body_len = s->body_len;
	c->priority = s->priority;
	c->retries_set = s->retries_set;
	c->retries = s->retries;
	c->due = due;
	if (b->be.sched_claim != NULL) {
		/* kept past the next due time: a daemon that comes back
		 * within it finds the claim, and does not fire it again */
		int64_t ttl = 2 * ((s->next_due_ms > due ? s->next_due_ms : due + 60000) - due) +
		    60000;

		b->be.sched_claim(b->be.ctx, s->type, s->name, due, ttl, claim_done, c);
	} else {
		sched_submit(c);
		claim_free(c);
	}
	emit_schedule_changed(b, s, SCHED_FIRED);
}

static void
sched_cb(struct ev_loop *loop, ev_periodic *w, int revents)
{
	struct broker *b = w->data;
	struct schedule *s;
	int64_t now = now_ms(b);

	(void)loop;
	(void)revents;
	for (s = b->sched->list; s != NULL; s = s->next)
		if (s->next_due_ms >= 0 && s->next_due_ms <= now)
			sched_fire(b, s, now);
	sched_arm(b);
}

/* sched_arm: the periodic at the earliest due time of all. */
static void
sched_arm(struct broker *b)
{
	struct sched_table *t = b->sched;
	struct schedule *s;
	int64_t min = -1;

	ev_periodic_stop(b->loop, &t->timer);
	for (s = t->list; s != NULL; s = s->next)
		if (s->next_due_ms >= 0 && (min < 0 || s->next_due_ms < min))
			min = s->next_due_ms;
	if (min < 0)
		return;
	ev_periodic_set(&t->timer, (double)min / 1000.0, 0, NULL);
	ev_periodic_start(b->loop, &t->timer);
}

static struct sched_table *
sched_table(struct broker *b)
{
	if (b->sched == NULL) {
		b->sched = xcalloc(1, sizeof *b->sched);
		ev_periodic_init(&b->sched->timer, sched_cb, 0, 0, NULL);
		b->sched->timer.data = b;
	}
	return b->sched;
}

static struct schedule **
sched_find(struct broker *b, const char *type, const char *name)
{
	struct schedule **pp;

	if (b->sched == NULL)
		return NULL;
	for (pp = &b->sched->list; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->type, type) == 0 && strcmp((*pp)->name, name) == 0)
			return pp;
	return NULL;
}

static void
sched_free(struct schedule *s)
{
	free(s->type);
	free(s->name);
	free(s->cron_text);
	free(s->body);
	free(s);
}

/* sched_name_valid: 1 to SCHED_NAME_MAX of [A-Za-z0-9._-]. */
static bool
sched_name_valid(const char *n)
{
	size_t len = strlen(n);

	if (len < 1 || len > SCHED_NAME_MAX)
		return false;
	return strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == len;
}

enum broker_err
broker_schedule(struct broker *b, const struct sched_req *r)
{
	struct schedule *s, **pp;
	struct cron cron = { 0 };
	char err[160];
	int64_t now = r->now_ms > 0 ? r->now_ms : now_ms(b);

	if (!r->restore && broker_store_error(b) != 0) {
		broker_set_err_detail(b, "%s", broker_store_reason(b));
		return BERR_UNAVAILABLE;
	}
	if (r->type == NULL || !type_name_valid(r->type, strlen(r->type))) {
		broker_set_err_detail(b, "\"job_type\" must be a type name");
		return BERR_INVALID;
	}
	if (r->name == NULL || !sched_name_valid(r->name)) {
		broker_set_err_detail(b, "\"name\" must be 1 to %d of A-Z a-z 0-9 . _ -",
		    SCHED_NAME_MAX);
		return BERR_INVALID;
	}
	if (strlen("sched:") + strlen(r->type) + strlen(r->name) + 2 + 20 > ID_MAX) {
		broker_set_err_detail(b, "job type and schedule name are too long "
		    "together for the fired jobs' ids (%d bytes)", ID_MAX);
		return BERR_INVALID;
	}
	if ((r->cron != NULL) == (r->every_ms != 0)) {
		broker_set_err_detail(b, "a schedule needs one of \"cron\" and \"every\"");
		return BERR_INVALID;
	}
	if (r->cron == NULL && (r->every_ms < SCHED_EVERY_MIN ||
	    r->every_ms > SCHED_EVERY_MAX)) {
		broker_set_err_detail(b, "\"every\" must be %d to %" PRId64
		    " milliseconds", SCHED_EVERY_MIN, (int64_t)SCHED_EVERY_MAX);
		return BERR_INVALID;
	}
	if (r->cron != NULL && !cron_parse(r->cron, &cron, err, sizeof err)) {
		broker_set_err_detail(b, "%s", err);
		return BERR_INVALID;
	}
	if (r->cron != NULL && cron_next(&cron, now) < 0) {
		broker_set_err_detail(b, "cron \"%s\" matches no day", r->cron);
		return BERR_INVALID;
	}
	if (r->body != NULL && r->body_len > SCHED_BODY_MAX) {
		broker_set_err_detail(b, "a schedule's body may hold at most %d bytes",
		    SCHED_BODY_MAX);
		return BERR_INVALID;
	}
	if ((pp = sched_find(b, r->type, r->name)) != NULL)
		s = *pp;
	else {
		if (sched_table(b)->n >= SCHED_MAX) {
			broker_set_err_detail(b, "at most %d schedules", SCHED_MAX);
			return BERR_INVALID;
		}
		s = xcalloc(1, sizeof *s);
		s->type = xstrdup(r->type);
		s->name = xstrdup(r->name);
		s->created_ms = r->created_ms > 0 ? r->created_ms : now;
		s->next = b->sched->list;
		b->sched->list = s;
		b->sched->n++;
	}
	/* a replacement keeps its last due time: a due time it fired is not
	 * fired again by the new spec */
	free(s->cron_text);
	free(s->body);
	s->cron_text = r->cron != NULL ? xstrdup(r->cron) : NULL;
	s->cron = cron;
	s->every_ms = r->cron != NULL ? 0 : r->every_ms;
	if (r->body != NULL) {
		s->body = xmalloc(r->body_len + 1);
		memcpy(s->body, r->body, r->body_len);
		s->body[r->body_len] = '\0';
		s->body_len = r->body_len;
	} else {
		s->body = xstrdup("{}");
		s->body_len = 2;
	}
	s->priority = r->priority;
	s->retries_set = r->retries_set;
	s->retries = r->retries;
	if (r->last_due_ms > s->last_due_ms)
		s->last_due_ms = r->last_due_ms;
	/* the first due time after the last fired, or after its creation:
	 * one that passed (the daemon was down) fires at once, once */
	s->next_due_ms = due_after(s, s->last_due_ms > 0 ? s->last_due_ms :
	    r->restore ? s->created_ms : now);
	if (!r->restore)
		emit_schedule_changed(b, s, SCHED_SET);
	sched_arm(b);
	return BERR_OK;
}

static void
sched_remove(struct broker *b, struct schedule **pp, bool quiet)
{
	struct schedule *s = *pp;

	*pp = s->next;
	b->sched->n--;
	if (!quiet)
		emit_schedule_changed(b, s, SCHED_REMOVED);
	sched_free(s);
	sched_arm(b);
}

enum broker_err
broker_unschedule(struct broker *b, const char *type, const char *name)
{
	struct schedule **pp = sched_find(b, type, name);

	if (pp == NULL) {
		broker_set_err_detail(b, "type %s has no schedule named %s", type, name);
		return BERR_UNKNOWN_ID;
	}
	if (broker_store_error(b) != 0) {
		broker_set_err_detail(b, "%s", broker_store_reason(b));
		return BERR_UNAVAILABLE;
	}
	sched_remove(b, pp, false);
	return BERR_OK;
}

bool
broker_schedule_drop(struct broker *b, const char *type, const char *name)
{
	struct schedule **pp = sched_find(b, type, name);

	if (pp == NULL)
		return false;
	sched_remove(b, pp, true);
	return true;
}

/* schedule_json: all a schedule is, as the listings and the stores say it. */
json_t *
schedule_json(const struct schedule *s)
{
	json_t *o = json_pack("{s:s,s:s}", "job_type", s->type, "name", s->name);
	json_t *body = json_loadb(s->body, s->body_len, JSON_DECODE_ANY, NULL);

	if (s->cron_text != NULL)
		json_object_set_new(o, "cron", json_string(s->cron_text));
	else
		json_object_set_new(o, "every", json_integer(s->every_ms));
	json_object_set_new(o, "body", body != NULL ? body : json_null());
	if (s->priority != 0)
		json_object_set_new(o, "priority", json_integer(s->priority));
	if (s->retries_set)
		json_object_set_new(o, "retries", json_integer(s->retries));
	json_object_set_new(o, "created", json_integer(s->created_ms));
	json_object_set_new(o, "last", s->last_due_ms > 0 ?
	    json_integer(s->last_due_ms) : json_null());
	json_object_set_new(o, "next", s->next_due_ms >= 0 ?
	    json_integer(s->next_due_ms) : json_null());
	return o;
}

/* broker_schedule_get: the schedule (type, name) as schedule_json, or NULL. */
json_t *
broker_schedule_get(struct broker *b, const char *type, const char *name)
{
	struct schedule **pp = sched_find(b, type, name);

	return pp != NULL ? schedule_json(*pp) : NULL;
}

const char *
schedule_body(const struct schedule *s, size_t *len)
{
	*len = s->body_len;
	return s->body;
}

const char *schedule_type(const struct schedule *s) { return s->type; }
const char *schedule_name(const struct schedule *s) { return s->name; }

/* schedule_req_of: a schedule's JSON (schedule_json's) as a request, for a
 * store putting it back; its strings point into o.  False if o is not one. */
bool
schedule_req_of(json_t *o, struct sched_req *r)
{
	json_t *v;

	memset(r, 0, sizeof *r);
	r->type = json_string_value(json_object_get(o, "job_type"));
	r->name = json_string_value(json_object_get(o, "name"));
	r->cron = json_string_value(json_object_get(o, "cron"));
	r->every_ms = json_integer_value(json_object_get(o, "every"));
	r->priority = json_integer_value(json_object_get(o, "priority"));
	if ((v = json_object_get(o, "retries")) != NULL) {
		r->retries_set = true;
		r->retries = json_integer_value(v);
	}
	r->created_ms = json_integer_value(json_object_get(o, "created"));
	r->last_due_ms = json_integer_value(json_object_get(o, "last"));
	return r->type != NULL && r->name != NULL;
}

/* broker_schedules: every schedule (of one type, or all), by type then
 * name, as an array of schedule_json. */
static int
sched_cmp(const void *a, const void *b)
{
	const struct schedule *x = *(struct schedule *const *)a;
	const struct schedule *y = *(struct schedule *const *)b;
	int c = strcmp(x->type, y->type);

	return c != 0 ? c : strcmp(x->name, y->name);
}

json_t *
broker_schedules(struct broker *b, const char *type)
{
	json_t *a = json_array();
	struct schedule *s, **v;
	size_t n = 0;

	if (b->sched == NULL)
		return a;
	v = xcalloc(b->sched->n + 1, sizeof *v);
	for (s = b->sched->list; s != NULL; s = s->next)
		if (type == NULL || strcmp(s->type, type) == 0)
			v[n++] = s;
	qsort(v, n, sizeof *v, sched_cmp);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, schedule_json(v[i]));
	free(v);
	return a;
}

/* broker_schedules_each: every schedule, for a store's snapshot. */
void
broker_schedules_each(struct broker *b, bool (*cb)(void *, const struct schedule *),
    void *ctx)
{
	if (b->sched == NULL)
		return;
	for (struct schedule *s = b->sched->list; s != NULL; s = s->next)
		if (!cb(ctx, s))
			return;
}

uint64_t
broker_schedules_fired(const struct broker *b)
{
	return b->sched != NULL ? b->sched->fired : 0;
}

/* sched_shutdown: free every schedule (the daemon is exiting; no event). */
void
sched_shutdown(struct broker *b)
{
	struct schedule *s;

	if (b->sched == NULL)
		return;
	ev_periodic_stop(b->loop, &b->sched->timer);
	while ((s = b->sched->list) != NULL) {
		b->sched->list = s->next;
		sched_free(s);
	}
	free(b->sched);
	b->sched = NULL;
}
