/*
 * test_jobtab.c — the table of jobs by key (jobtab.c): add, find and del
 * against a reference under random operations, with colliding hashes that
 * leave tombstones, growth, shrinking and iteration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tap.h"

static struct job *
mkjob(const char *key, uint32_t hash)
{
	struct job *j = xcalloc(1, sizeof *j + strlen(key) + 1);

	strcpy(j->key, key);
	j->hash = hash;
	return j;
}

/* consistent: len right, load under 7/8, every slot accounted for, and
 * iteration sees each present job exactly once. */
static bool
consistent(const struct jobtab *t, struct job **present, size_t n)
{
	size_t pos = 0, seen = 0, live = 0, tombs = 0;
	struct job *j;

	if (t->len != n)
		return false;
	if (t->cap != 0 && ((t->cap & (t->cap - 1)) != 0 || (t->len + t->tombs) * 8 > t->cap * 7))
		return false;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->slots[i] == (struct job *)1)
			tombs++;
		else if (t->slots[i] != NULL)
			live++;
	}
	if (live != n || tombs != t->tombs)
		return false;
	while ((j = jobtab_next(t, &pos)) != NULL)
		seen++;
	if (seen != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (jobtab_find(t, present[i]->key, present[i]->hash) != present[i])
			return false;
	return true;
}

/* run: random adds and dels of keys 0..nkeys-1; hashbits limits the hash
 * to force collisions (0: the real hash). */
static bool
run(unsigned seed, int ops, int nkeys, int hashbits, size_t *maxcap)
{
	struct jobtab t = { 0 };
	struct job **byk = xcalloc((size_t)nkeys, sizeof *byk);
	struct job **present = xcalloc((size_t)nkeys, sizeof *present);
	size_t n = 0;
	bool good = true;
	char key[32];

	srand(seed);
	*maxcap = 0;
	for (int k = 0; k < ops && good; k++) {
		int i = rand() % nkeys;
		snprintf(key, sizeof key, "job-%d", i);
		uint32_t h = jobtab_hash(key);
		if (hashbits > 0)
			h &= (1u << hashbits) - 1;
		struct job *found = jobtab_find(&t, key, h);
		if (found != byk[i]) {
			good = false;
			break;
		}
		if (byk[i] == NULL) {
			byk[i] = mkjob(key, h);
			jobtab_add(&t, byk[i]);
		} else {
			jobtab_del(&t, byk[i]);
			free(byk[i]);
			byk[i] = NULL;
		}
		if (t.cap > *maxcap)
			*maxcap = t.cap;
		if (k % 97 == 0 || k == ops - 1) {
			n = 0;
			for (int x = 0; x < nkeys; x++)
				if (byk[x] != NULL)
					present[n++] = byk[x];
			good = consistent(&t, present, n);
		}
	}
	for (int x = 0; x < nkeys; x++)
		free(byk[x]);
	free(byk);
	free(present);
	jobtab_free(&t);
	return good;
}

int
main(void)
{
	struct jobtab t = { 0 };
	struct job **jobs;
	size_t maxcap, pos, n;
	bool good;
	char key[32];
	const int N = 100000;

	plan(10);

	ok(jobtab_find(&t, "x", jobtab_hash("x")) == NULL && jobtab_next(&t, &(size_t){ 0 }) == NULL,
	    "an empty table finds nothing");
	ok(jobtab_hash("a") != jobtab_hash("b") && jobtab_hash("") == jobtab_hash(""),
	    "the hash is a function of the key");

	jobs = xcalloc((size_t)N, sizeof *jobs);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "%d", i);
		jobs[i] = mkjob(key, jobtab_hash(key));
		jobtab_add(&t, jobs[i]);
	}
	ok(consistent(&t, jobs, (size_t)N), "100000 jobs added: all found, load under 7/8 (cap %zu)", t.cap);
	ok(jobtab_find(&t, "100000", jobtab_hash("100000")) == NULL &&
	    jobtab_find(&t, "5", jobtab_hash("6")) == NULL, "absent keys and wrong hashes find nothing");
	for (int i = 0; i < N; i += 2) {
		jobtab_del(&t, jobs[i]);
		free(jobs[i]);
	}
	n = 0;
	for (int i = 1; i < N; i += 2)
		jobs[n++] = jobs[i];
	ok(consistent(&t, jobs, n), "every other one deleted: the rest found, the deleted gone");
	for (size_t i = 0; i < n; i++) {
		jobtab_del(&t, jobs[i]);
		free(jobs[i]);
	}
	pos = 0;
	ok(t.len == 0 && t.cap == 1024 && jobtab_next(&t, &pos) == NULL,
	    "emptied: the table shrinks back to its minimum");
	free(jobs);
	jobtab_free(&t);

	good = run(1, 200000, 3000, 0, &maxcap);
	ok(good, "200000 random adds/dels of 3000 keys (cap up to %zu)", maxcap);
	ok(run(2, 100000, 2000, 4, &maxcap), "100000 random ops, 16 distinct hashes: long probes, tombstones");
	ok(run(3, 100000, 500, 1, &maxcap), "100000 random ops, all keys on 2 hashes");
	good = true;
	for (unsigned s = 10; s < 60 && good; s++)
		good = run(s, 5000, 1 + (int)s * 37, (int)(s % 3) * 3, &maxcap);
	ok(good, "50 more seeds");
	return done();
}
