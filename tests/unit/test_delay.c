/*
 * test_delay.c — the due-time heap of delayed jobs (delay.c):
 * random due times (many equal) come out soonest first, equal ones in
 * submission order; removals from the middle keep the heap and every
 * job's index true.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tap.h"

#define N 20000

static struct job *
mkjob(double due, uint32_t seq)
{
	struct job *j = xcalloc(1, sizeof *j + 1);

	j->life = xcalloc(1, sizeof *j->life);
	j->life->due = due;
	j->seq = seq;
	return j;
}

static bool
before(const struct job *a, const struct job *b)
{
	if (a->life->due != b->life->due)
		return a->life->due < b->life->due;
	return seq_before(a->seq, b->seq);
}

static bool
valid(const struct delay_heap *h)
{
	for (size_t i = 0; i < h->len; i++) {
		if (h->items[i]->life->delay_index != i)
			return false;
		if (i > 0 && before(h->items[i], h->items[(i - 1) / 2]))
			return false;
	}
	return true;
}

int
main(void)
{
	struct delay_heap h = { 0 };
	struct job **all = xcalloc(N, sizeof *all), *j, *prev = NULL;
	size_t i, removed = 0, popped = 0;
	bool ordered = true;

	plan(5);
	srandom(13);
	for (i = 0; i < N; i++) {
		/* 100 distinct times: many jobs share one, as "at" does */
		all[i] = mkjob(1e9 + (double)(random() % 100), (uint32_t)(0xfffff000u + i));
		delay_push(&h, all[i]);
	}
	ok(h.len == N && valid(&h), "%d pushes: a valid heap", N);
	for (i = 0; i < N; i += 3) {
		delay_remove(&h, all[i]);
		all[i]->life->delay_index = (size_t)-1;
		removed++;
	}
	ok(h.len == N - removed && valid(&h), "removing every third from the middle keeps it valid");
	delay_remove(&h, all[0]);   /* not in it any more: nothing happens */
	ok(h.len == N - removed, "removing a job that is not in it does nothing");
	while ((j = delay_pop(&h)) != NULL) {
		if (prev != NULL && before(j, prev))
			ordered = false;
		prev = j;
		popped++;
	}
	ok(ordered, "pops come soonest first, equal times in submission order (across the wrap)");
	ok(popped == N - removed && h.len == 0, "every job left came out once");
	for (i = 0; i < N; i++) {
		free(all[i]->life);
		free(all[i]);
	}
	free(all);
	delay_free(&h);
	return done();
}
