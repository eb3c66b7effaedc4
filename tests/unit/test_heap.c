/*
 * test_heap.c — the per-type priority queue (heap.c), against a sorted
 * reference under random pushes, pops and removals from the middle, with
 * sequence numbers that wrap past 2^32.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tap.h"

static struct job *
mkjob(int64_t prio, uint32_t seq)
{
	struct job *j = xcalloc(1, sizeof *j + 1);

	j->priority = prio;
	j->seq = seq;
	return j;
}

/* before: the queue's order, spelled out: higher priority, then older. */
static bool
before(const struct job *a, const struct job *b)
{
	if (a->priority != b->priority)
		return a->priority > b->priority;
	return seq_before(a->seq, b->seq);
}

/* valid: the heap property, and every job knows its index. */
static bool
valid(const struct heap *h)
{
	for (size_t i = 0; i < h->len; i++) {
		if (h->items[i]->heap_index != i)
			return false;
		if (i > 0 && before(h->items[i], h->items[(i - 1) / 2]))
			return false;
	}
	return true;
}

/* ref: the jobs in the heap, unordered; best(): the one that must be on top. */
struct ref {
	struct job **v;
	size_t n;
};

static size_t
best(const struct ref *r)
{
	size_t b = 0;

	for (size_t i = 1; i < r->n; i++)
		if (before(r->v[i], r->v[b]))
			b = i;
	return b;
}

static void
ref_del(struct ref *r, size_t i)
{
	r->v[i] = r->v[--r->n];
}

/* run: ops random operations; false at the first disagreement. */
static bool
run(unsigned seed, int ops, int prios, uint32_t seq0, size_t *maxlen)
{
	struct heap h = { 0 };
	struct ref r = { xcalloc((size_t)ops, sizeof(struct job *)), 0 };
	uint32_t seq = seq0;
	bool good = true;

	srand(seed);
	*maxlen = 0;
	for (int k = 0; k < ops && good; k++) {
		int op = rand() % 10;
		if (op < 5 || r.n == 0) {
			struct job *j = mkjob(rand() % prios - prios / 2, seq++);
			heap_push(&h, j);
			r.v[r.n++] = j;
		} else if (op < 8) {
			size_t b = best(&r);
			struct job *j = heap_pop(&h);
			good = j == r.v[b];
			ref_del(&r, b);
			free(j);
		} else {
			size_t i = (size_t)rand() % r.n;
			struct job *j = r.v[i];
			heap_remove(&h, j);
			ref_del(&r, i);
			free(j);
		}
		good = good && h.len == r.n && valid(&h) &&
		    (r.n == 0 ? heap_top(&h) == NULL : heap_top(&h) == r.v[best(&r)]);
		if (h.len > *maxlen)
			*maxlen = h.len;
	}
	/* Drain: pops come out in order. */
	while (good && r.n > 0) {
		size_t b = best(&r);
		struct job *j = heap_pop(&h);
		good = j == r.v[b] && valid(&h);
		ref_del(&r, b);
		free(j);
	}
	good = good && heap_pop(&h) == NULL && h.len == 0;
	for (size_t i = 0; i < r.n; i++)
		free(r.v[i]);
	free(r.v);
	heap_free(&h);
	return good;
}

int
main(void)
{
	struct heap h = { 0 };
	struct job *a, *b, *c, *d;
	size_t maxlen;
	bool good;

	plan(9);

	ok(heap_top(&h) == NULL && heap_pop(&h) == NULL, "an empty heap has no top");
	a = mkjob(0, 1);
	b = mkjob(5, 2);
	c = mkjob(5, 3);
	d = mkjob(-1, 4);
	heap_push(&h, a); heap_push(&h, d); heap_push(&h, c); heap_push(&h, b);
	ok(heap_pop(&h) == b && heap_pop(&h) == c && heap_pop(&h) == a && heap_pop(&h) == d,
	    "higher priority first, then submission order");
	a->seq = 0xfffffffeu; b->seq = 0xffffffffu; c->seq = 0; d->seq = 1;
	a->priority = b->priority = c->priority = d->priority = 0;
	heap_push(&h, d); heap_push(&h, c); heap_push(&h, b); heap_push(&h, a);
	ok(heap_pop(&h) == a && heap_pop(&h) == b && heap_pop(&h) == c && heap_pop(&h) == d,
	    "submission order holds across the 32-bit wrap of seq");
	a->priority = INT64_MIN; b->priority = INT64_MAX;
	heap_push(&h, a); heap_push(&h, b);
	ok(heap_pop(&h) == b && heap_pop(&h) == a, "int64 extremes of priority compare right");
	free(a); free(b); free(c); free(d);
	heap_free(&h);

	good = run(1, 20000, 4, 0, &maxlen);
	ok(good, "20000 random ops, 4 priorities (up to %zu queued)", maxlen);
	good = run(2, 20000, 1000, 0, &maxlen);
	ok(good, "20000 random ops, 1000 priorities (up to %zu queued)", maxlen);
	good = run(3, 20000, 1, 0xffffff00u, &maxlen);
	ok(good, "20000 random ops, one priority, seq wrapping (up to %zu queued)", maxlen);
	good = true;
	for (unsigned s = 100; s < 400 && good; s++)
		good = run(s, 200, 1 + s % 7, s * 0x01000193u, &maxlen);
	ok(good, "300 seeds of 200 ops each");

	/* Grow past 1024, drain: the array is given back. */
	for (int i = 0; i < 3000; i++)
		heap_push(&h, mkjob(i % 3, (uint32_t)i));
	good = h.cap >= 3000 && valid(&h);
	while (h.len > 0)
		free(heap_pop(&h));
	ok(good && h.items == NULL && h.cap == 0, "a long queue that drains gives its memory back");
	heap_free(&h);
	return done();
}
