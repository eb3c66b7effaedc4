/*
 * delay.c — the due-time heap: every delayed job and every retry waiting
 * out its backoff, soonest first, in one binary heap (broker->delays).
 * The broker keeps one timer for the heap's top, so a million delayed jobs
 * cost one timer and O(log n) per job, not a timer each.  Each job knows
 * its index (life->delay_index), so a cancelled job leaves from the middle.
 */
#include <stdlib.h>

#include "core/core.h"

/* Equal due times: in submission order. */
static bool
delay_before(const struct job *a, const struct job *b)
{
	if (a->life->due != b->life->due)
		return a->life->due < b->life->due;
	return seq_before(a->seq, b->seq);
}

static void
delay_set(struct delay_heap *h, size_t i, struct job *j)
{
	h->items[i] = j;
	j->life->delay_index = i;
}

static void
delay_up(struct delay_heap *h, size_t i)
{
	struct job *j = h->items[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!delay_before(j, h->items[parent]))
			break;
		delay_set(h, i, h->items[parent]);
		i = parent;
	}
	delay_set(h, i, j);
}

static void
delay_down(struct delay_heap *h, size_t i)
{
	struct job *j = h->items[i];

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, best = l;
		if (l >= h->len)
			break;
		if (r < h->len && delay_before(h->items[r], h->items[l]))
			best = r;
		if (!delay_before(h->items[best], j))
			break;
		delay_set(h, i, h->items[best]);
		i = best;
	}
	delay_set(h, i, j);
}

void
delay_push(struct delay_heap *h, struct job *j)
{
	if (h->len == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 64;
		h->items = xrealloc(h->items, h->cap * sizeof *h->items);
	}
	h->items[h->len] = j;
	delay_up(h, h->len++);
}

struct job *
delay_pop(struct delay_heap *h)
{
	struct job *top;

	if (h->len == 0)
		return NULL;
	top = h->items[0];
	if (--h->len > 0) {
		h->items[0] = h->items[h->len];
		delay_down(h, 0);
	}
	return top;
}

void
delay_remove(struct delay_heap *h, struct job *j)
{
	size_t i = j->life->delay_index;

	if (i >= h->len || h->items[i] != j)
		return;
	if (--h->len == i)
		return;
	h->items[i] = h->items[h->len];
	delay_up(h, i);
	delay_down(h, h->items[i]->life->delay_index);
}

void
delay_free(struct delay_heap *h)
{
	free(h->items);
	h->items = NULL;
	h->len = h->cap = 0;
}
