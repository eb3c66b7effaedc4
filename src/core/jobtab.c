/*
 * jobtab.c — the table of jobs by id: open addressing, linear probing.
 *
 * Every known job is here, so its per-job cost matters: one pointer slot
 * (at most 7/8 full) instead of a 56-byte uthash handle in each job, and
 * each job keeps its hash so a probe compares strings only on a match.
 * The table shrinks again once a burst has drained.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define TOMB ((struct job *)1)
#define MIN_CAP 1024

uint32_t
jobtab_hash(const char *key)
{
	uint32_t h = 2166136261u;  /* FNV-1a, then a final mix */

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	h ^= h >> 16;
	h *= 0x7feb352d;
	h ^= h >> 15;
	return h;
}

static void
jobtab_resize(struct jobtab *t, size_t cap)
{
	struct job **old = t->slots;
	size_t oldcap = t->cap, i;

	t->slots = xcalloc(cap, sizeof *t->slots);
	t->cap = cap;
	t->tombs = 0;
	for (i = 0; i < oldcap; i++) {
		struct job *j = old[i];
		size_t k;
		if (j == NULL || j == TOMB)
			continue;
		for (k = j->hash & (cap - 1); t->slots[k] != NULL; k = (k + 1) & (cap - 1))
			;
		t->slots[k] = j;
	}
	free(old);
}

struct job *
jobtab_find(const struct jobtab *t, const char *key, uint32_t hash)
{
	size_t k;
	struct job *j;

	if (t->cap == 0)
		return NULL;
	for (k = hash & (t->cap - 1); (j = t->slots[k]) != NULL; k = (k + 1) & (t->cap - 1))
		if (j != TOMB && j->hash == hash && strcmp(j->key, key) == 0)
			return j;
	return NULL;
}

/* jobtab_add: j->hash set, and no job with j->key in the table. */
void
jobtab_add(struct jobtab *t, struct job *j)
{
	size_t k;

	if ((t->len + t->tombs + 1) * 8 > t->cap * 7)
		jobtab_resize(t, t->cap == 0 ? MIN_CAP :
		    (t->len + 1) * 2 > t->cap ? t->cap * 2 : t->cap);
	for (k = j->hash & (t->cap - 1); t->slots[k] != NULL && t->slots[k] != TOMB;
	    k = (k + 1) & (t->cap - 1))
		;
	if (t->slots[k] == TOMB)
		t->tombs--;
	t->slots[k] = j;
	t->len++;
}

void
jobtab_del(struct jobtab *t, struct job *j)
{
	size_t k;

	for (k = j->hash & (t->cap - 1); t->slots[k] != j; k = (k + 1) & (t->cap - 1))
		;
	/* A slot followed by an empty one can be emptied outright. */
	if (t->slots[(k + 1) & (t->cap - 1)] == NULL)
		t->slots[k] = NULL;
	else {
		t->slots[k] = TOMB;
		t->tombs++;
	}
	t->len--;
	if (t->cap > MIN_CAP && t->len * 8 < t->cap)
		jobtab_resize(t, t->cap / 2);
}

/* jobtab_next: iterate; *pos starts at 0.  Not stable across changes. */
struct job *
jobtab_next(const struct jobtab *t, size_t *pos)
{
	while (*pos < t->cap) {
		struct job *j = t->slots[(*pos)++];
		if (j != NULL && j != TOMB)
			return j;
	}
	return NULL;
}

void
jobtab_free(struct jobtab *t)
{
	free(t->slots);
	memset(t, 0, sizeof *t);
}
