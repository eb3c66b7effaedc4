/*
 * journal_seg.c — the journal's segment files: numbers, names and
 * headers, writing whole, and opening DIR (creating it durably, locking
 * it, listing its segments).  See journal.c for the format.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "store/journal.h"
/* ------------------------------------------------------------ little bits */

void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

static void
put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
seg_name(char *out, size_t n, uint64_t segno)
{
	snprintf(out, n, "%016" PRIx64 ".log", segno);
}

uint64_t
lsn_at(const struct journal *j, uint64_t off)
{
	return j->base_lsn + off - HDR;
}

/* snap_written: a drop waits (a compaction is under way) and the records
 * it waits for, the snapshot, are all written to the segment they go to. */
bool
snap_written(const struct journal *j)
{
	return j->drop_pending && j->segno >= j->drop_segno &&
	    lsn_at(j, j->written_off) >= j->drop_lsn;
}

void
seg_header(uint8_t *h, uint64_t segno, uint64_t base, uint32_t flags)
{
	memcpy(h, SEG_MAGIC, 8);
	put64(h + 8, segno);
	put64(h + 16, base);
	put32(h + 24, flags);
	put32(h + 28, crc32c(0, h, 28));
}

bool
seg_header_ok(const uint8_t *h)
{
	return memcmp(h, SEG_MAGIC, 8) == 0 && crc32c(0, h, 28) == get32(h + 28);
}

int
pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t r = pwrite(fd, b, n, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* ------------------------------------------------------------- opening */

static int
seg_cmp(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->segno < y->segno ? -1 : x->segno > y->segno;
}

static int
list_segments(struct journal *j, char *err, size_t errlen)
{
	DIR *d;
	struct dirent *de;
	unsigned cap = 0;
	int fd = dup(j->dirfd);

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		snprintf(err, errlen, "%s: %s", j->dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char *end;
		uint64_t n;

		if (strlen(de->d_name) != 20 || strcmp(de->d_name + 16, ".log") != 0)
			continue;
		n = strtoull(de->d_name, &end, 16);
		if (end != de->d_name + 16)
			continue;
		if (j->nsegs == cap) {
			cap = cap ? cap * 2 : 16;
			j->segs = xrealloc(j->segs, cap * sizeof *j->segs);
		}
		j->segs[j->nsegs++] = (struct seg){ n, 0 };
	}
	closedir(d);
	if (j->nsegs > 1)
		qsort(j->segs, j->nsegs, sizeof *j->segs, seg_cmp);
	return 0;
}

/* sync_parent: fsync the directory that holds path (just created). */
static int
sync_parent(const char *path)
{
	char *copy = xstrdup(path);
	int fd, e = 0;

	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		e = errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	errno = e;
	return e != 0 ? -1 : 0;
}

/*
 * journal_open: create DIR if needed, lock it, list its segments.  Call
 * journal_replay next, before appending.  NULL on failure with a message in
 * err; errno EWOULDBLOCK means another process holds DIR (err names DIR and
 * that process's pid), so the caller can exit with a status of its own.
 */
struct journal *
journal_open(struct ev_loop *loop, const char *dir,
    const struct journal_opts *opts, char *err, size_t errlen)
{
	struct journal *j = xcalloc(1, sizeof *j);
	char pid[32];
	ssize_t n;
	int e;

	j->loop = loop;
	j->opt = *opts;
	if (j->opt.interval_ms == 0)
		j->opt.interval_ms = 50;
	if (j->opt.segment_bytes == 0)
		j->opt.segment_bytes = JOURNAL_SEGMENT_BYTES;
	if (j->opt.max_backlog == 0)
		j->opt.max_backlog = 256u << 20;
	j->dir = xstrdup(dir);
	j->fd = j->dirfd = j->lockfd = -1;
	j->backoff = RETRY_FIRST;

	crash_init();
	if (mkdir(dir, 0755) == 0) {
		crash_point("datadir-mkdir");
		/* DIR's own entry, or a power cut could lose it all. */
		if (sync_parent(dir) < 0)
			goto syserr;
	} else if (errno != EEXIST) {
		goto syserr;
	}
	if ((j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto syserr;
	if ((j->abs_dir = realpath(dir, NULL)) == NULL)
		goto syserr;
	j->lockfd = openat(j->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (j->lockfd < 0)
		goto syserr;
	if (flock(j->lockfd, LOCK_EX | LOCK_NB) < 0) {
		e = errno;
		if (e != EWOULDBLOCK)
			goto syserr;
		n = pread(j->lockfd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		snprintf(err, errlen, "%s is in use by another jobfs (pid %s)",
		    dir, pid[0] ? pid : "unknown");
		journal_close(j);
		errno = EWOULDBLOCK;
		return NULL;
	}
	j->pid = getpid();
	n = snprintf(pid, sizeof pid, "%ld\n", (long)j->pid);
	if (ftruncate(j->lockfd, 0) < 0 || pwrite_all(j->lockfd, pid, (size_t)n, 0) < 0)
		goto syserr;
	crash_point("datadir-lock");
	if (list_segments(j, err, errlen) < 0) {
		e = errno;
		journal_close(j);
		errno = e;
		return NULL;
	}

	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	ev_async_init(&j->done, done_cb);
	j->done.data = j;
	ev_async_start(loop, &j->done);
	ev_unref(loop);    /* a journal alone does not keep the loop running */
	ev_init(&j->retry, retry_cb);
	j->retry.data = j;
	ev_init(&j->interval, interval_cb);
	j->interval.data = j;
	j->inited = true;
	return j;

syserr:
	e = errno;
	snprintf(err, errlen, "%s: %s", dir, strerror(e));
	journal_close(j);
	errno = e;
	return NULL;
}

