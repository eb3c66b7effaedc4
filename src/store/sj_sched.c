/*
 * sj_sched.c — the journal store's schedules (repeating jobs): a SCHED
 * record (sj_codec.c) each time a schedule is added, replaced, fires or
 * goes, one for each in a snapshot, and at start the schedules put back,
 * with their last fired due time: a restart neither fires a due time
 * again nor skips one (a due time missed while down fires once).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "store/store_journal.h"

/* sched_key: "TYPE\nNAME", into buf. */
static struct sj_str
sched_key(const struct schedule *sc, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s\n%s", schedule_type(sc), schedule_name(sc));

	return str_of(buf, (size_t)n < len ? (size_t)n : len - 1);
}

static void
sched_append(struct store *s, const struct schedule *sc, bool removed)
{
	char key[2 * ID_MAX + 2], *spec = NULL;
	struct sj_rec r;

	memset(&r, 0, sizeof r);
	r.kind = SJ_SCHED;
	r.key = sched_key(sc, key, sizeof key);
	if (!removed) {
		json_t *o = schedule_json(sc);
		size_t blen;
		const char *body = schedule_body(sc, &blen);

		/* the body as it was given, byte for byte */
		json_object_del(o, "body");
		json_object_set_new(o, "body_text", json_stringn(body, blen));

		spec = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		r.spec = str_of(spec, strlen(spec));
	}
	append(s, &r);
	free(spec);
}

/* sched_rec_append: a schedule, into a snapshot. */
bool
sched_rec_append(void *ctx, const struct schedule *sc)
{
	sched_append(ctx, sc, false);
	return true;
}

void
on_schedule_changed(void *ctx, const struct schedule *sc, int what)
{
	struct store *s = ctx;

	if (s->opening)
		return;
	sched_append(s, sc, what == SCHED_REMOVED);
}

/* restore_sched: a schedule as the journal kept it. */
void
restore_sched(void *ctx, const struct sj_rec *r)
{
	struct store *s = ctx;
	json_t *o = json_loadb(r->spec.p, r->spec.n, 0, NULL);
	json_t *body;
	struct sched_req q;
	char *text = NULL;

	if (o == NULL || !schedule_req_of(o, &q)) {
		log_warn("journal: a schedule's record is not one: not restored");
		json_decref(o);
		return;
	}
	if ((body = json_object_get(o, "body_text")) != NULL && json_is_string(body)) {
		q.body = json_string_value(body);
		q.body_len = json_string_length(body);
	} else if ((body = json_object_get(o, "body")) != NULL) {
		text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
		q.body = text;
		q.body_len = strlen(text);
	}
	q.restore = true;
	if (broker_schedule(s->b, &q) != BERR_OK)
		log_warn("journal: schedule %s of type %s not restored: %s", q.name,
		    q.type, broker_err_detail(s->b));
	free(text);
	json_decref(o);
}
