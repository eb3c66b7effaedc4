/*
 * broker_states.c — jobs by state, for listings (the tree's state/
 * directories, GET /jobs, the "list" request).
 *
 * Each job is on one list of its type: that of its state (queued,
 * running, delayed, waiting, done, failed, cancelled), appended when it
 * enters it, so each list is in the order its jobs entered the state and
 * job->lseq grows along it.  The broker calls broker_state_sync wherever a
 * job's state may have changed; it costs a comparison when nothing did
 * and an unlink and a link when something did.  A dead job (failed after
 * its attempts, kickable) is on the failed list and on its type's dead
 * list (life_fail.c), which is in the same order.
 *
 * A state cursor lists one type's jobs in a state, or every type's, type
 * after type in the order of their names.  Open cursors are known to the
 * broker, which moves one past a job that leaves its list, so a listing
 * costs O(1) a job however many jobs come and go.  A position (the text
 * broker_scursor_pos makes) lets a listing go on in a later request
 * without an open cursor: "LSEQ-TYPE-KEY", the type and key in hex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const char *const lstate_names[JLS_COUNT] = {
	NULL, "queued", "running", "delayed", "waiting", "done", "failed",
	"cancelled", "dead",
};

const char *
jls_name(int s)
{
	return s > JLS_NONE && s < JLS_COUNT ? lstate_names[s] : NULL;
}

int
jls_parse(const char *name)
{
	int s;

	for (s = JLS_NONE + 1; s < JLS_COUNT; s++)
		if (strcmp(lstate_names[s], name) == 0)
			return s;
	return JLS_NONE;
}

/* job_list_of: the list a job in its present state belongs on. */
static int
job_list_of(const struct job *j)
{
	switch ((enum job_state)j->state) {
	case JOB_QUEUED:
		if (j->life != NULL && (j->life->wait == LIFE_DELAYED ||
		    j->life->wait == LIFE_BACKOFF))
			return JLS_DELAYED;
		if (j->life != NULL && j->life->wait == LIFE_WAITING)
			return JLS_WAITING;
		return JLS_QUEUED;
	case JOB_RUNNING:   return JLS_RUNNING;
	case JOB_DONE:      return JLS_DONE;
	case JOB_FAILED:
	case JOB_TIMEOUT:   return JLS_FAILED;
	case JOB_CANCELLED: return JLS_CANCELLED;
	}
	return JLS_NONE;
}

/* job_in_lstate: j is listed in state s (a dead job in failed and dead). */
bool
job_in_lstate(const struct job *j, int s)
{
	if (s == JLS_DEAD)
		return j->state == JOB_FAILED;   /* every failed job is in the dead set */
	return j->lstate == s;
}

/* job_lstate_name: the state a listing shows for j. */
const char *
job_lstate_name(const struct job *j)
{
	return j->state == JOB_FAILED ? "dead" : jls_name(j->lstate);
}

static struct job_list *
state_list(struct jtype *t, int s)
{
	return &t->states[s - 1];
}

void
broker_states_type_init(struct jtype *t)
{
	int i;

	for (i = 0; i < JLS_LISTS; i++)
		TAILQ_INIT(&t->states[i]);
}

/* state_leave: j leaves its list; a cursor on it moves on. */
static void
state_leave(struct broker *b, struct job *j)
{
	struct state_cursor *c;

	if (j->lstate == JLS_NONE)
		return;
	TAILQ_FOREACH(c, &b->state_cursors, entry)
		if (c->next == j && c->state == j->lstate)
			c->next = TAILQ_NEXT(j, state_entry);
	TAILQ_REMOVE(state_list(j->type, j->lstate), j, state_entry);
	j->lstate = JLS_NONE;
}

void
broker_state_sync(struct broker *b, struct job *j)
{
	int s = job_list_of(j);

	if (s == j->lstate)
		return;
	state_leave(b, j);
	if (s == JLS_NONE)
		return;
	TAILQ_INSERT_TAIL(state_list(j->type, s), j, state_entry);
	j->lstate = (uint8_t)s;
	j->lseq = b->next_lseq++;
}

void
broker_state_drop(struct broker *b, struct job *j)
{
	state_leave(b, j);
}

/* broker_state_dead_leaving: j is about to leave its type's dead list. */
void
broker_state_dead_leaving(struct broker *b, struct job *j)
{
	struct state_cursor *c;

	TAILQ_FOREACH(c, &b->state_cursors, entry)
		if (c->next == j && c->state == JLS_DEAD)
			c->next = TAILQ_NEXT(j, life->type_dead);
}

/* ---------------------------------------------------------------- cursors */

static struct job *
list_head(struct jtype *t, int s)
{
	return s == JLS_DEAD ? TAILQ_FIRST(&t->dead) : TAILQ_FIRST(state_list(t, s));
}

static struct job *
list_next(struct job *j, int s)
{
	return s == JLS_DEAD ? TAILQ_NEXT(j, life->type_dead) : TAILQ_NEXT(j, state_entry);
}

/* type_after: the type whose name comes first after name (NULL: the
 * first of all); O(types). */
static struct jtype *
type_after(struct broker *b, const char *name)
{
	struct jtype *t, *best = NULL;

	for (t = b->types; t != NULL; t = t->hh.next)
		if ((name == NULL || strcmp(t->name, name) > 0) &&
		    (best == NULL || strcmp(t->name, best->name) < 0))
			best = t;
	return best;
}

/* cursor_type: c walks t now (held), at next. */
static void
cursor_type(struct broker *b, struct state_cursor *c, struct jtype *t, struct job *next)
{
	if (t != NULL)
		broker_type_hold(t);
	if (c->type != NULL)
		broker_type_unref(b, c->type);
	c->type = t;
	c->next = next;
	c->started = true;
	if (t == NULL)
		c->ended = true;
}

/* broker_scursor_open: (re)start c at the first job in state s, of type
 * only or (NULL) of every type. */
void
broker_scursor_open(struct broker *b, struct state_cursor *c, int s, struct jtype *only)
{
	broker_scursor_close(b, c);
	TAILQ_INSERT_TAIL(&b->state_cursors, c, entry);
	c->open = true;
	c->state = (uint8_t)s;
	c->only = only;
	if (only != NULL)
		broker_type_hold(only);
}

/* broker_scursor_close: forget c (closing a closed cursor does nothing). */
void
broker_scursor_close(struct broker *b, struct state_cursor *c)
{
	if (!c->open)
		return;
	TAILQ_REMOVE(&b->state_cursors, c, entry);
	if (c->type != NULL)
		broker_type_unref(b, c->type);
	if (c->only != NULL)
		broker_type_unref(b, c->only);
	memset(c, 0, sizeof *c);
}

/* broker_scursor_job: the job at c, or NULL at the end. */
struct job *
broker_scursor_job(struct broker *b, struct state_cursor *c)
{
	struct jtype *t;

	if (!c->open || c->ended)
		return NULL;
	if (!c->started) {
		t = c->only != NULL ? c->only : type_after(b, NULL);
		cursor_type(b, c, t, t != NULL ? list_head(t, c->state) : NULL);
	}
	while (c->next == NULL && !c->ended) {
		t = c->only != NULL ? NULL : type_after(b, c->type->name);
		cursor_type(b, c, t, t != NULL ? list_head(t, c->state) : NULL);
	}
	return c->next;
}

/* broker_scursor_advance: move c past its job. */
void
broker_scursor_advance(struct state_cursor *c)
{
	if (c->next != NULL)
		c->next = list_next(c->next, c->state);
}

static void
hex_put(struct buf *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		buf_append(o, &hex[*p >> 4], 1);
		buf_append(o, &hex[*p & 15], 1);
	}
}

static int
hex_val(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* hex_get: the text of hex digits [s, end), or NULL if they are not. */
static char *
hex_get(const char *s, const char *end)
{
	size_t n = (size_t)(end - s), i;
	char *out;
	int hi, lo;

	if (n % 2 != 0 || n / 2 > ID_MAX)
		return NULL;
	out = xmalloc(n / 2 + 1);
	for (i = 0; i < n / 2; i++) {
		hi = hex_val(s[2 * i]);
		lo = hex_val(s[2 * i + 1]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return NULL;
		}
		out[i] = (char)(hi << 4 | lo);
	}
	out[n / 2] = '\0';
	return out;
}

/* broker_scursor_pos: the position just after j in a listing of state s
 * (free it). */
char *
broker_scursor_pos(const struct job *j, int s)
{
	struct buf o = { 0 };
	char n[16];

	(void)s;
	snprintf(n, sizeof n, "%u-", (unsigned)j->lseq);
	buf_append_str(&o, n);
	hex_put(&o, j->type->name);
	buf_append(&o, "-", 1);
	hex_put(&o, j->key);
	buf_append(&o, "", 1);
	return o.data;
}

/*
 * broker_scursor_seek: c, just opened, goes on after position pos.  O(1)
 * if the job pos names is still in that state; else the first job of
 * that type that entered the state later (a walk of that type's list),
 * or the next type's first.  -1: pos is not a position (or, for a cursor
 * of one type, not one of that type).
 */
int
broker_scursor_seek(struct broker *b, struct state_cursor *c, const char *pos)
{
	const char *d1, *d2;
	char *tname, *key, *end;
	unsigned long lseq;
	struct jtype *t;
	struct job *j;
	int rc = -1;

	lseq = strtoul(pos, &end, 10);
	if (end == pos || *end != '-' || lseq > UINT32_MAX)
		return -1;
	d1 = end + 1;
	if ((d2 = strchr(d1, '-')) == NULL)
		return -1;
	tname = hex_get(d1, d2);
	key = hex_get(d2 + 1, d2 + 1 + strlen(d2 + 1));
	if (tname == NULL || key == NULL || !c->open ||
	    (c->only != NULL && strcmp(c->only->name, tname) != 0))
		goto out;
	rc = 0;
	if ((t = broker_type(b, tname, false)) == NULL) {
		if (c->only != NULL)
			cursor_type(b, c, NULL, NULL);
		else {
			t = type_after(b, tname);
			cursor_type(b, c, t, t != NULL ? list_head(t, c->state) : NULL);
		}
		goto out;
	}
	j = broker_find(b, key);
	if (j != NULL && j->type == t && job_in_lstate(j, c->state) &&
	    j->lseq == (uint32_t)lseq) {
		cursor_type(b, c, t, list_next(j, c->state));
		goto out;
	}
	for (j = list_head(t, c->state); j != NULL; j = list_next(j, c->state))
		if (seq_before((uint32_t)lseq, j->lseq))
			break;
	cursor_type(b, c, t, j);
out:
	free(tname);
	free(key);
	return rc;
}

/*
 * broker_list: a page of a listing: up to limit jobs in state s, of type
 * only (or of every type), after position pos (NULL: from the first), that
 * may(ctx, j) lets through (may NULL: all).  {"jobs": [job_info with
 * "state"], "next": the position after the last, or null at the end}.
 * NULL: pos is not a position of this listing.
 */
json_t *
broker_list(struct broker *b, int s, struct jtype *only, size_t limit,
    const char *pos, bool (*may)(void *, const struct job *), void *ctx)
{
	struct state_cursor c = { 0 };
	json_t *jobs = json_array(), *o;
	struct job *j, *last = NULL;
	char *next;

	broker_scursor_open(b, &c, s, only);
	if (pos != NULL && broker_scursor_seek(b, &c, pos) != 0) {
		broker_scursor_close(b, &c);
		json_decref(jobs);
		return NULL;
	}
	while (json_array_size(jobs) < limit && (j = broker_scursor_job(b, &c)) != NULL) {
		broker_scursor_advance(&c);
		if (may != NULL && !may(ctx, j))
			continue;
		o = job_info(j);
		json_object_set_new(o, "state", json_string(job_lstate_name(j)));
		json_array_append_new(jobs, o);
		last = j;
	}
	o = json_pack("{s:o}", "jobs", jobs);
	if (last != NULL && broker_scursor_job(b, &c) != NULL) {
		next = broker_scursor_pos(last, s);
		json_object_set_new(o, "next", json_string(next));
		free(next);
	} else
		json_object_set_new(o, "next", json_null());
	broker_scursor_close(b, &c);
	return o;
}
