/*
 * heap.c — the per-type priority queue.
 *
 * Higher priority first; equal priority in submission order (seq).  Each job
 * knows its index, so removal from the middle is O(log n) (beanstalkd's
 * setpos idea).
 */
#include <stdlib.h>

#include "core/core.h"

static bool
heap_before(const struct job *a, const struct job *b)
{
	if (a->priority != b->priority)
		return a->priority > b->priority;
	return seq_before(a->seq, b->seq);
}

static void
heap_set(struct heap *h, size_t i, struct job *j)
{
	h->items[i] = j;
	j->heap_index = i;
}

static void
heap_up(struct heap *h, size_t i)
{
	struct job *j = h->items[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!heap_before(j, h->items[parent]))
			break;
		heap_set(h, i, h->items[parent]);
		i = parent;
	}
	heap_set(h, i, j);
}

static void
heap_down(struct heap *h, size_t i)
{
	struct job *j = h->items[i];

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, best = l;
		if (l >= h->len)
			break;
		if (r < h->len && heap_before(h->items[r], h->items[l]))
			best = r;
		if (!heap_before(h->items[best], j))
			break;
		heap_set(h, i, h->items[best]);
		i = best;
	}
	heap_set(h, i, j);
}

void
heap_push(struct heap *h, struct job *j)
{
	if (h->len == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 16;
		h->items = xrealloc(h->items, h->cap * sizeof *h->items);
	}
	heap_set(h, h->len++, j);
	heap_up(h, h->len - 1);
}

struct job *
heap_pop(struct heap *h)
{
	struct job *top = heap_top(h);

	if (top != NULL)
		heap_remove(h, top);
	return top;
}

void
heap_remove(struct heap *h, struct job *j)
{
	size_t i = j->heap_index;
	struct job *last;

	last = h->items[--h->len];
	if (i < h->len) {
		heap_set(h, i, last);
		heap_up(h, i);
		heap_down(h, last->heap_index);
	}
	/* Give memory back once a long queue has drained. */
	if (h->len == 0 && h->cap > 1024) {
		free(h->items);
		h->items = NULL;
		h->cap = 0;
	}
}

void
heap_free(struct heap *h)
{
	free(h->items);
	h->items = NULL;
	h->len = h->cap = 0;
}
