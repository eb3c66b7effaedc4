/*
 * crash.c — crash points: a test seam, not a feature.
 *
 * A multi-step disk operation (compaction, a segment's rotation, the
 * creation of the data directory) must leave a state that replay reads
 * right whichever step a crash interrupts.  A kill -9 under load finds
 * only the states that load happens to pass through; a crash point finds
 * each one.  JOBFS_CRASH_AT=POINT:N in the environment makes the process
 * _exit(137) (what a shell reports for kill -9) the Nth time it reaches the
 * step named POINT (N 1 when left out); the points are listed where
 * journal.c reaches them.  Nothing is flushed or unlinked on the way out:
 * what the page cache holds stays, as after kill -9.
 *
 * crash_due may run on the journal's sync thread: it only reads what
 * crash_init set before that thread started, and counts atomically.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

static char        armed[64];     /* the point's name; "" when none */
static unsigned    armed_n;
static atomic_uint hits;
static bool        inited;

/* crash_init: read JOBFS_CRASH_AT (once; later calls do nothing). */
void
crash_init(void)
{
	const char *v = getenv("JOBFS_CRASH_AT");
	const char *colon;
	size_t n;

	if (inited)
		return;
	inited = true;
	if (v == NULL || *v == '\0')
		return;
	colon = strchr(v, ':');
	n = colon != NULL ? (size_t)(colon - v) : strlen(v);
	if (n == 0 || n >= sizeof armed)
		return;
	memcpy(armed, v, n);
	armed[n] = '\0';
	armed_n = colon != NULL ? (unsigned)strtoul(colon + 1, NULL, 10) : 1;
	if (armed_n == 0)
		armed_n = 1;
}

/* crash_armed: JOBFS_CRASH_AT names point (whatever its count). */
bool
crash_armed(const char *point)
{
	return armed[0] != '\0' && strcmp(armed, point) == 0;
}

/* crash_due: count one pass through point; true on the armed pass. */
bool
crash_due(const char *point)
{
	return crash_armed(point) && atomic_fetch_add(&hits, 1) + 1 == armed_n;
}

/* crash_now: say where, and die as kill -9 would (no exit handlers). */
void
crash_now(const char *point)
{
	char msg[128];
	int n = snprintf(msg, sizeof msg, "jobfs: crash point %s:%u reached "
	    "(JOBFS_CRASH_AT): exiting with status 137\n", point, armed_n);

	if (n > 0 && write(2, msg, (size_t)n < sizeof msg ? (size_t)n :
	    sizeof msg - 1) < 0) {
		/* nothing to do: dying anyway */
	}
	_exit(137);
}

/* crash_point: crash_now at the armed pass through point. */
void
crash_point(const char *point)
{
	if (crash_due(point))
		crash_now(point);
}
