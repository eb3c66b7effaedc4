/*
 * log.c — levelled logging to stderr, or to syslog once detached.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "base/base.h"

#define LOG_INTERVAL 10.0    /* seconds: the window of a struct log_limit */

static int    log_threshold = LVL_INFO;
static bool   log_syslog;
static double log_window = LOG_INTERVAL;

static const char *const level_names[] = { "error", "warning", "info", "debug" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void
log_init(int level, bool to_syslog)
{
	const char *w = getenv("JOBFS_LOG_INTERVAL");  /* tests: short windows */

	log_threshold = level;
	log_set_syslog(to_syslog);
	if (w != NULL && strtod(w, NULL) > 0)
		log_window = strtod(w, NULL);
}

/* log_interval: the seconds of a struct log_limit's window. */
double
log_interval(void)
{
	return log_window;
}

/*
 * log_limit_take: a line of l's kind is due at now: true to log it (one
 * of the first burst of its window), false if it only counts (missed).
 * A window begins with the first line after the last one ended.
 */
bool
log_limit_take(struct log_limit *l, double now, unsigned burst)
{
	if (l->start == 0 || now - l->start >= log_window) {
		l->start = now;
		l->logged = 0;
	}
	if (l->logged < burst) {
		l->logged++;
		return true;
	}
	l->missed++;
	return false;
}

void
log_set_syslog(bool on)
{
	if (on && !log_syslog)
		openlog("jobfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = on;
}

int
log_level(void)
{
	return log_threshold;
}

static void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;

	vsnprintf(line, sizeof line, fmt, ap);
	if (log_syslog) {
		syslog(syslog_prio[level], "%s", line);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	fprintf(stderr, "%02d:%02d:%02d.%03ld jobfs %s: %s\n", tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], line);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if ((int)level > log_threshold)
		return;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

/* fatal: log with strerror(errno) and exit; fatalx: without errno. */
void
fatal(const char *fmt, ...)
{
	char msg[900];
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_msg(LVL_ERR, "%s: %s", msg, strerror(saved));
	exit(EXIT_START);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LVL_ERR, fmt, ap);
	va_end(ap);
	exit(EXIT_START);
}
