/*
 * stats.c — the daemon's counters as one JSON object: the broker's own
 * (jobs, channels, the lifecycle, per type) and those of every part that
 * registers a hook (broker_stats_listen: the server's connections, the
 * journal's).  Every face shows the same object: "stats" over TCP, the
 * tree's stats file, GET /stats, /metrics and the dashboard's stream.
 */
#include "core/core.h"

void
broker_stats_listen(struct broker *b, broker_stats_hook *fn, void *ctx)
{
	if (b->nstats_hooks == BROKER_STATS_HOOKS_MAX)
		fatalx("more than %d stats hooks", BROKER_STATS_HOOKS_MAX);
	b->stats_hooks[b->nstats_hooks].fn = fn;
	b->stats_hooks[b->nstats_hooks++].ctx = ctx;
}

static json_t *
type_stats(const struct jtype *t)
{
	struct type_stats s;

	json_t *o;

	broker_type_stats(t, &s);
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "queued", (json_int_t)s.queued, "running", (json_int_t)s.running,
	    "done", (json_int_t)s.done, "failed", (json_int_t)s.failed,
	    "cancelled", (json_int_t)s.cancelled, "timeout", (json_int_t)s.timeout,
	    "workers", (json_int_t)s.workers, "submitted", (json_int_t)s.submitted,
	    "requeued", (json_int_t)s.requeued);
	/* the job lifecycle */
	json_object_update_new(o, json_pack("{s:I, s:I, s:I, s:I, s:I, s:b, s:I}",
	    "dead", (json_int_t)s.dead, "delayed", (json_int_t)s.delayed,
	    "waiting", (json_int_t)s.waiting, "retried", (json_int_t)s.retried,
	    "kicked", (json_int_t)s.kicked, "paused", t->paused,
	    "limit", (json_int_t)t->limit));
	return o;
}

struct types_json {
	json_t *types;
	size_t  n, max;
	bool    cut;
};

static bool
add_type_stats(void *ctx, struct jtype *t)
{
	struct types_json *x = ctx;

	if (x->n == x->max) {
		x->cut = true;
		return false;
	}
	json_object_set_new(x->types, t->name, type_stats(t));
	x->n++;
	return true;
}

/*
 * broker_stats: the counters of the "stats" request and the tree's stats.
 * Daemon-wide counters are kept as they change, so this costs the same
 * however many types there are.  Per-type counters: of the one type named
 * (an empty object if none has that name), or else of at most max_types
 * types, the oldest first; "types_cut" says whether some were left out
 * and "ntypes" counts them all.  With neither, no "types" at all.
 */
json_t *
broker_stats(struct broker *b, const char *type, size_t max_types)
{
	const struct broker_stats *s = &b->stats;
	uint64_t nch, pub, del, drop;
	struct types_json x = { 0 };
	json_t *o, *types;
	struct jtype *t;
	unsigned i;

	chan_stats(b, &nch, &pub, &del, &drop);
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "submitted", (json_int_t)s->submitted, "queued", (json_int_t)s->queued,
	    "running", (json_int_t)s->running, "done", (json_int_t)s->done,
	    "failed", (json_int_t)s->failed, "cancelled", (json_int_t)s->cancelled,
	    "timeout", (json_int_t)s->timeout, "requeued", (json_int_t)s->requeued,
	    "retained", (json_int_t)broker_nretained(b), "partials", (json_int_t)s->partials);
	json_object_set_new(o, "channels", json_integer((json_int_t)nch));
	json_object_set_new(o, "messages_published", json_integer((json_int_t)pub));
	json_object_set_new(o, "messages_delivered", json_integer((json_int_t)del));
	json_object_set_new(o, "messages_dropped", json_integer((json_int_t)drop));
	json_object_set_new(o, "body_bytes", json_integer((json_int_t)s->body_bytes));
	json_object_set_new(o, "retained_bytes", json_integer((json_int_t)s->retained_bytes));
	json_object_set_new(o, "keep_bytes", json_integer((json_int_t)b->keep_bytes));
	json_object_set_new(o, "results_dropped", json_integer((json_int_t)s->dropped));
	json_object_set_new(o, "refused_full", json_integer((json_int_t)s->refused_full));
	/* the job lifecycle */
	json_object_update_new(o, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "retried", (json_int_t)s->retried, "dead", (json_int_t)b->ndead,
	    "delayed", (json_int_t)s->delayed, "waiting", (json_int_t)s->waiting,
	    "paused", (json_int_t)b->npaused, "kicked", (json_int_t)s->kicked,
	    "fails", (json_int_t)s->fails));
	for (i = 0; i < b->nstats_hooks; i++)
		b->stats_hooks[i].fn(b->stats_hooks[i].ctx, o);
	json_object_set_new(o, "ntypes",
	    json_integer((json_int_t)broker_ntypes(b)));
	if (type != NULL) {
		types = json_object();
		if ((t = broker_type(b, type, false)) != NULL)
			json_object_set_new(types, t->name, type_stats(t));
		json_object_set_new(o, "types", types);
	} else if (max_types > 0) {
		x.types = json_object();
		x.max = max_types;
		broker_types_each(b, add_type_stats, &x);
		json_object_set_new(o, "types", x.types);
		json_object_set_new(o, "types_cut", json_boolean(x.cut));
	}
	return o;
}
