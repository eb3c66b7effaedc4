/*
 * tap.h — the little TAP the C unit tests print (see tests/run).
 *
 * Each test program calls plan(N), then ok(COND, "what", ...) N times, and
 * returns done(): exit status 1 if any check failed.  A check that fails
 * prints its file and line as a TAP comment.  diag() prints a comment.
 */
#ifndef TAP_H
#define TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_planned, tap_run, tap_failed;

static inline void
plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void
diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static inline bool
tap_ok(bool cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_run++;
	if (!cond) {
		tap_failed++;
		printf("not ");
	}
	printf("ok %d - ", tap_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		printf("#   failed at %s:%d\n", file, line);
	fflush(stdout);
	return cond;
}
#define ok(cond, ...) tap_ok((cond), __FILE__, __LINE__, __VA_ARGS__)

static inline int
done(void)
{
	if (tap_run != tap_planned)
		diag("planned %d checks, ran %d", tap_planned, tap_run);
	return tap_failed == 0 && tap_run == tap_planned ? 0 : 1;
}

#endif
