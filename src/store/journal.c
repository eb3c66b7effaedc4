/*
 * journal.c — the journal: records appended to segment files in a data
 * directory, made durable by group commit, replayed at start.
 *
 * A store mechanism: it knows records (a kind byte and a payload), not jobs.
 * Whoever journals job events decides what the records mean; the journal
 * decides how they reach the disk and come back.
 *
 * Files.  DIR/lock holds the pid of the process that has flock(LOCK_EX) on
 * it; a second process fails to open DIR.  DIR/NNNNNNNNNNNNNNNN.log are the
 * segments, NNNN the segment number in 16 hex digits (so names sort in
 * order).  A segment is a 32-byte header, then records:
 *
 *   header  "jobfsJ01" | u64 segno | u64 base LSN | u32 flags | u32 CRC-32C of the 28 bytes before
 *   record  u32 length | u32 CRC-32C of kind+payload | u8 kind | payload (length bytes)
 *
 * all little-endian.  Kind 0 is padding (what --repair writes over damage);
 * it is never handed to the caller.
 *
 * LSNs.  The log sequence number of a record is the position just past it in
 * the stream of record bytes of all segments (headers not counted): a
 * segment's header says at which LSN it starts, and a record at file offset
 * o of length n has LSN base + (o - 32) + n.  LSNs grow across segments and
 * restarts; "durable LSN >= x" means every record with LSN <= x is on disk.
 *
 * Batching.  journal_append() only copies the record into memory; the
 * caller's before-sleep watcher calls journal_flush() once per loop turn,
 * which writes everything appended in that turn with one pwrite.  The bytes
 * written but not yet synced stay in memory (except in sync mode NEVER), so
 * that a failed write or sync can be undone and done again (after a failed
 * fdatasync the kernel may have dropped those dirty pages: the file is cut
 * back to the last synced offset and the bytes written again from memory).
 *
 * The sync thread.  fdatasync blocks, and the loop must not, so one helper
 * thread (the daemon's only other thread) does the syncs.  It starts at the
 * first sync, not at open, so a daemon can open and replay (and fail with a
 * clear exit status) before it forks into the background, and it ends in
 * journal_close.  It touches only:
 * the request/result slots of struct journal under j->mu, the file
 * descriptors named in the request (the loop closes none of them while a
 * request is out), and ev_async_send() to wake the loop.  It never logs and
 * never allocates.  One request is out at a time; while it is, the loop keeps
 * appending and writing the next batch (pipelining), and when it completes
 * the next request covers everything written meanwhile: group commit, one
 * fdatasync for all that a turn (or several) appended.  Mode ALWAYS: durable
 * = synced, and opts.on_durable runs on the loop thread as it advances.
 * Mode INTERVAL: durable = written; a sync at most every interval_ms.
 * Mode NEVER: durable = written; no sync for records (see below).
 *
 * Segments.  Past opts.segment_bytes (or on journal_rotate()) the journal
 * starts a new segment, but only once everything written to the current one
 * is synced: batches wait in memory meanwhile.  So nothing reaches segment
 * N+1 before segment N is whole on disk, and a crash can tear only the last
 * segment.  A new segment's directory entry is synced with the first sync
 * after it is created (that sync also carries the directory's fsync).
 * journal_drop_before(S) deletes segments older than S, oldest first, once
 * every record appended before the call is synced, and so S's directory
 * entry too; a later sync of the directory makes the unlinks durable (an
 * unlink lost to a power cut brings back a segment that what the caller
 * wrote into S supersedes).  These syncs happen in every mode, NEVER
 * included: they are once per segment, and skipping them could lose a
 * whole segment rather than the last moments.  DIR itself, when
 * journal_open creates it, is made durable by an fsync of the directory
 * that holds it.
 *
 * Replay (every record of every segment, in order; a torn tail cut, damage
 * repaired or reported) is in journal_replay.c; the segment files' names
 * and headers, and opening DIR, in journal_seg.c.
 *
 * Crash points (crash.c, a test seam: JOBFS_CRASH_AT=POINT:N).  Creating
 * DIR: datadir-mkdir (DIR made, its parent not synced), datadir-lock (the
 * lock file written), datadir-segment (the first segment's header written,
 * not synced).  A rotation: rotate-created (the new segment's header
 * written), rotate-written (the first records written to it, not synced).
 * A compaction (while a drop waits): compact-rotated (its segment
 * created), compact-record (the snapshot's write cut after its Nth record,
 * half the next one written; journal_crash_mark says where the snapshot
 * starts), compact-written (the snapshot written, not synced),
 * compact-fdatasync (on the sync thread: its data synced, the directory
 * not yet), compact-durable (both synced, nothing unlinked),
 * compact-unlink (after the Nth unlink of an old segment), compact-dropped
 * (every old segment unlinked, the directory not synced).
 *
 * Disk failures.  ENOSPC, EIO and the like on write or sync put the journal
 * in a failed state (journal_error() returns the errno): the durable LSN does
 * not move, the file is cut back to the last good offset, appends still
 * queue in memory (up to opts.max_backlog), and a timer retries with backoff
 * (50 ms doubling to 2 s) a write and a sync; the failed state clears when
 * both succeed.
 *
 * A deleted directory.  Writes to a segment that was deleted (rm -rf DIR
 * under a running daemon) succeed and keep nothing, so before the durable
 * LSN moves the journal checks that the current segment still has a name
 * (one fstat per sync, or per write where durable means written); a new
 * segment that cannot be created for ENOENT says the same.  Then the
 * journal is failed with ENOENT, logs once what happened and what to do,
 * and retry_cb looks for DIR again: once it is back (mkdir), the journal
 * locks it, starts a segment there (flagged not to be checked against the
 * missing ones before it) holding what was not yet durable, and
 * journal_renewed() tells the caller to write its whole state again.
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

static void maybe_sync(struct journal *, bool force);
static void fail(struct journal *, int, const char *);

int (*journal_fdatasync_hook)(int fd);

/* --------------------------------------------------------- sync thread */

/*
 * sync_main: the helper thread.  Waits for a request, runs fdatasync (and
 * fsync of the directory if asked), posts the result and wakes the loop.
 * A request posted before stop is still served.
 */
static void *
sync_main(void *arg)
{
	struct journal *j = arg;

	pthread_mutex_lock(&j->mu);
	for (;;) {
		struct sync_req r;
		uint64_t t0;
		int e = 0;

		while (!j->req_ready && !j->stop)
			pthread_cond_wait(&j->cv, &j->mu);
		if (!j->req_ready)
			break;
		r = j->req;
		j->req_ready = false;
		pthread_mutex_unlock(&j->mu);

		t0 = mono_us();
		if ((journal_fdatasync_hook ? journal_fdatasync_hook(r.fd) :
		    fdatasync(r.fd)) < 0)
			e = errno;
		if (e == 0 && r.snap)
			crash_point("compact-fdatasync");
		if (e == 0 && r.dir && fsync(r.dirfd) < 0)
			e = errno;

		pthread_mutex_lock(&j->mu);
		j->res_ready = true;
		j->res_err = e;
		j->res_us = mono_us() - t0;
		ev_async_send(j->loop, &j->done);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

/*
 * start_thread: start the sync thread at the first sync rather than in
 * journal_open, so that a daemon can open and replay before it forks into
 * the background (threads do not survive fork).  The lock file then gets
 * the pid of the process that really holds DIR.
 */
static int
start_thread(struct journal *j)
{
	char pid[32];
	int n, e;

	if (j->thr_started)
		return 0;
	if (j->pid != getpid()) {
		j->pid = getpid();
		n = snprintf(pid, sizeof pid, "%ld\n", (long)j->pid);
		if (ftruncate(j->lockfd, 0) < 0 ||
		    pwrite_all(j->lockfd, pid, (size_t)n, 0) < 0)
			log_warn("journal: %s/lock: %s", j->dir, strerror(errno));
	}
	if ((e = pthread_create(&j->thr, NULL, sync_main, j)) != 0)
		return e;
	j->thr_started = true;
	return 0;
}

/* submit: hand the thread a sync of everything written so far. */
static void
submit(struct journal *j, bool retry)
{
	int e;

	if ((e = start_thread(j)) != 0) {
		fail(j, e, "sync thread");
		return;
	}
	pthread_mutex_lock(&j->mu);
	j->req.fd = j->fd;
	j->req.dirfd = j->dirfd;
	j->req.dir = j->dir_dirty;
	j->req.snap = snap_written(j);
	j->req_ready = true;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	j->busy = true;
	j->req_off = j->written_off;
	j->req_dir = j->dir_dirty;
	j->req_retry = retry;
	j->dir_dirty = false;
	j->last_sync = ev_now(j->loop);
}

/* --------------------------------------------------------- writing side */

static void
notify_durable(struct journal *j)
{
	uint64_t d = j->opt.sync == JOURNAL_SYNC_ALWAYS ?
	    lsn_at(j, j->synced_off) : lsn_at(j, j->written_off);

	if (d > j->durable_lsn) {
		j->durable_lsn = d;
		if (j->opt.on_durable != NULL)
			j->opt.on_durable(j->opt.ctx, d);
	}
}

/* seg_unlinked: the current segment has no name any more (deleted). */
static bool
seg_unlinked(const struct journal *j)
{
	struct stat st;

	return fstat(j->fd, &st) == 0 && st.st_nlink == 0;
}

/*
 * fail: enter (or stay in) the failed state and arm the retry timer.
 * ENOENT means DIR was deleted (a segment lost its name, or a new one
 * cannot be created): said once, with what to do.
 */
static void
fail(struct journal *j, int e, const char *what)
{
	if (e == ENOENT && !j->gone) {
		j->gone = true;
		j->gone_err = 0;
		log_err("journal: %s: the data directory was deleted while in "
		    "use (%s: %s): the jobs are in memory only and submissions "
		    "are refused; create the directory again (mkdir) and jobfs "
		    "writes every job into it, or stop jobfs (its jobs are then "
		    "lost)", j->dir, what, strerror(e));
	} else if (j->err == 0)
		log_warn("journal: %s: %s: %s; retrying until it succeeds",
		    j->dir, what, strerror(e));
	j->err = e;
	if (!ev_is_active(&j->retry)) {
		ev_timer_set(&j->retry, j->backoff, 0.);
		ev_timer_start(j->loop, &j->retry);
		j->backoff = j->backoff * 2 > RETRY_MAX ? RETRY_MAX : j->backoff * 2;
	}
}

/*
 * crash_mid_write: the crash point compact-record:N, as a kill -9 in the
 * middle of the write that holds a compaction's snapshot: write the
 * pending records one at a time, and after the Nth of the snapshot (from
 * journal_crash_mark's LSN on) write half of the next and die.  Returns if
 * the write holds fewer.
 */
static void
crash_mid_write(struct journal *j, size_t at, size_t n)
{
	const uint8_t *p = j->data + at;
	uint64_t off = j->written_off;
	size_t o = 0;

	while (o + RH <= n) {
		size_t rl = RH + get32(p + o);
		bool mine = lsn_at(j, off + o) >= j->snap_from;

		if (rl > n - o || pwrite_all(j->fd, p + o, rl, off + o) < 0)
			return;
		o += rl;
		if (mine && crash_due("compact-record")) {
			if (o + RH <= n && pwrite_all(j->fd, p + o,
			    (RH + get32(p + o)) / 2, off + o) < 0) {
				/* dying anyway */
			}
			crash_now("compact-record");
		}
	}
}

/*
 * write_pending: write every pending byte at written_off with one pwrite
 * (more only if the kernel writes short).  On failure the file is cut back
 * to where it was, and the bytes stay pending.
 */
static int
write_pending(struct journal *j)
{
	size_t at = (size_t)(j->written_off - j->buf_off);
	size_t n = j->len - at;
	bool snap_before = snap_written(j);
	int r;

	if (n == 0)
		return 0;
	if (j->drop_pending && !snap_before && crash_armed("compact-record"))
		crash_mid_write(j, at, n);
	r = pwrite_all(j->fd, j->data + at, n, j->written_off);
	if (r < 0) {
		if (ftruncate(j->fd, (off_t)j->written_off) < 0) {
			/* the retry cuts it again before writing */
		}
		return r;
	}
	j->written_off += n;
	if (j->opt.sync == JOURNAL_SYNC_NEVER) {
		j->len = 0;
		j->buf_off = j->written_off;
	}
	if (!snap_before && snap_written(j))
		crash_point("compact-written");
	if (j->fresh_seg) {
		j->fresh_seg = false;
		crash_point("rotate-written");
	}
	if (j->written_off >= j->opt.segment_bytes)
		j->rotate_wanted = true;
	return 0;
}

/*
 * do_rotate: close the current segment (everything in it is synced) and
 * start the next; pending bytes go to the new one.
 */
static int
do_rotate(struct journal *j)
{
	char name[32];
	uint8_t h[HDR];
	uint64_t segno = j->segno + 1, base = lsn_at(j, j->written_off);
	int fd, r;

	seg_name(name, sizeof name, segno);
	fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	seg_header(h, segno, base, 0);
	if ((r = pwrite_all(fd, h, HDR, 0)) < 0) {
		close(fd);
		unlinkat(j->dirfd, name, 0);
		return r;
	}
	crash_point(j->drop_pending ? "compact-rotated" : "rotate-created");
	j->fresh_seg = !j->drop_pending;
	close(j->fd);
	j->segs[j->nsegs - 1].size = j->written_off;
	j->old_bytes += j->written_off;
	j->segs = xrealloc(j->segs, (j->nsegs + 1) * sizeof *j->segs);
	j->segs[j->nsegs++] = (struct seg){ segno, HDR };
	j->fd = fd;
	j->segno = segno;
	j->base_lsn = base;
	j->written_off = j->synced_off = j->buf_off = HDR;
	j->rotate_wanted = false;
	j->dir_dirty = true;
	log_debug("journal: %s: segment %s started at LSN %" PRIu64, j->dir,
	    name, base);
	return 0;
}

/* do_drop: delete the segments before drop_segno (never the current one). */
static void
do_drop(struct journal *j)
{
	unsigned keep = 0;
	char name[32];

	for (unsigned i = 0; i < j->nsegs; i++) {
		if (j->segs[i].segno < j->drop_segno && i + 1 < j->nsegs) {
			seg_name(name, sizeof name, j->segs[i].segno);
			if (unlinkat(j->dirfd, name, 0) < 0 && errno != ENOENT) {
				log_warn("journal: %s/%s: cannot delete: %s",
				    j->dir, name, strerror(errno));
				j->segs[keep++] = j->segs[i];
				continue;
			}
			j->old_bytes -= j->segs[i].size;
			j->dir_dirty = true;
			crash_point("compact-unlink");
		} else {
			j->segs[keep++] = j->segs[i];
		}
	}
	j->nsegs = keep;
	j->drop_pending = false;
	crash_point("compact-dropped");
}

/*
 * maybe_sync: start a sync if one is due and none is out.  Mode ALWAYS: as
 * soon as anything is written.  INTERVAL: at most every interval_ms.
 * NEVER: only when forced (rotation, drop, recovery, close).
 */
static void
maybe_sync(struct journal *j, bool force)
{
	double due;

	if (j->busy || j->err != 0)
		return;    /* a failed journal syncs from retry_cb */
	if (j->written_off == j->synced_off && !j->dir_dirty)
		return;
	force = force || j->rotate_wanted || j->drop_pending || j->closing;
	switch (j->opt.sync) {
	case JOURNAL_SYNC_ALWAYS:
		break;
	case JOURNAL_SYNC_INTERVAL:
		due = j->last_sync + j->opt.interval_ms / 1000.;
		if (!force && ev_now(j->loop) < due) {
			if (!ev_is_active(&j->interval)) {
				ev_timer_set(&j->interval, due - ev_now(j->loop), 0.);
				ev_timer_start(j->loop, &j->interval);
			}
			return;
		}
		break;
	case JOURNAL_SYNC_NEVER:
		if (!force)
			return;
		break;
	}
	submit(j, false);
}

/* sync_done: a sync came back (on the loop thread). */
static void
sync_done(struct journal *j, int e, uint64_t us)
{
	j->busy = false;
	if (e == 0 && !j->closing && seg_unlinked(j))
		e = ENOENT;    /* synced into a deleted file: nothing kept */
	if (e != 0) {
		if (j->req_dir)
			j->dir_dirty = true;
		if (j->opt.sync != JOURNAL_SYNC_NEVER) {
			/* What was written since the last good sync may be
			 * gone from the page cache: cut it off and write it
			 * again from memory once the disk works. */
			if (ftruncate(j->fd, (off_t)j->synced_off) < 0) {
				/* the retry cuts it again */
			}
			j->written_off = j->synced_off;
		}
		fail(j, e, e == ENOENT ? "segment" : "fdatasync");
		return;
	}
	j->syncs++;
	j->sync_last_us = us;
	if (us > j->sync_max_us)
		j->sync_max_us = us;
	if (j->req_off > j->synced_off)
		j->synced_off = j->req_off;
	if (j->opt.sync != JOURNAL_SYNC_NEVER && j->synced_off > j->buf_off) {
		size_t n = (size_t)(j->synced_off - j->buf_off);

		memmove(j->data, j->data + n, j->len - n);
		j->len -= n;
		j->buf_off = j->synced_off;
	}
	if (j->err != 0 && j->req_retry && j->written_off == j->synced_off) {
		log_info("journal: %s: writing again after: %s", j->dir,
		    strerror(j->err));
		j->err = 0;
		j->backoff = RETRY_FIRST;
		ev_timer_stop(j->loop, &j->retry);
	}
	if (j->closing)
		return;
	if (j->drop_pending && j->segno >= j->drop_segno &&
	    lsn_at(j, j->synced_off) >= j->drop_lsn) {
		crash_point("compact-durable");
		do_drop(j);
	}
	if (j->err == 0 && j->rotate_wanted && j->written_off == j->synced_off) {
		int r = do_rotate(j);

		if (r < 0) {
			fail(j, -r, "new segment");
			notify_durable(j);
			return;
		}
	}
	if (j->err == 0)
		maybe_sync(j, false);
	notify_durable(j);
}

void
done_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct journal *j = w->data;
	bool have;
	int e;
	uint64_t us;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&j->mu);
	have = j->res_ready;
	j->res_ready = false;
	e = j->res_err;
	us = j->res_us;
	pthread_mutex_unlock(&j->mu);
	if (have)
		sync_done(j, e, us);
}

void
interval_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	maybe_sync(w->data, false);
}

/*
 * take_dir_back: DIR was deleted; if it is there again, lock it and start
 * a segment in it that holds what is in memory (from buf_off on, at the
 * same LSNs), flagged not to be checked against segments before it (they
 * are gone).  0, or -errno (-ENOENT: not there yet; -EWOULDBLOCK: another
 * process holds it).
 */
static int
take_dir_back(struct journal *j)
{
	char name[32], pid[32];
	uint8_t h[HDR];
	struct stat a, b;
	uint64_t segno = j->segno + 1, base = lsn_at(j, j->buf_off);
	int dfd, lfd = -1, fd = -1, e, n;

	if ((dfd = open(j->abs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	if ((lfd = openat(dfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		goto syserr;
	if (fstat(lfd, &a) == 0 && fstat(j->lockfd, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		close(lfd);    /* the same lock file, which this process holds */
		lfd = j->lockfd;
	} else if (flock(lfd, LOCK_EX | LOCK_NB) < 0)
		goto syserr;
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(lfd, 0) < 0 || pwrite_all(lfd, pid, (size_t)n, 0) < 0)
		goto syserr;
	seg_name(name, sizeof name, segno);
	fd = openat(dfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto syserr;
	seg_header(h, segno, base, SEG_NOCHECK);
	if ((e = pwrite_all(fd, h, HDR, 0)) < 0) {
		errno = -e;
		goto syserr;
	}
	close(j->fd);
	close(j->dirfd);
	if (lfd != j->lockfd)
		close(j->lockfd);
	j->fd = fd;
	j->dirfd = dfd;
	j->lockfd = lfd;
	j->segs = xrealloc(j->segs, sizeof *j->segs);
	j->segs[0] = (struct seg){ segno, HDR };
	j->nsegs = 1;
	j->old_bytes = 0;
	j->segno = segno;
	j->base_lsn = base;
	j->written_off = j->synced_off = j->buf_off = HDR;
	j->rotate_wanted = j->drop_pending = false;
	j->dir_dirty = true;
	j->gone = false;
	j->renewed = true;
	log_info("journal: %s: the data directory is back: writing every job "
	    "into it again", j->dir);
	return 0;

syserr:
	e = errno;
	if (fd >= 0) {
		close(fd);
		unlinkat(dfd, name, 0);
	}
	if (lfd >= 0 && lfd != j->lockfd)
		close(lfd);
	close(dfd);
	return -e;
}

/*
 * retry_cb: in the failed state, try again: cut the file to what was
 * written, start the pending new segment, write, and sync (in every mode);
 * the sync's success clears the failed state.
 */
void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct journal *j = w->data;
	int r;

	(void)loop;
	(void)revents;
	if (j->busy) {
		ev_timer_set(&j->retry, j->backoff, 0.);
		ev_timer_start(j->loop, &j->retry);
		return;
	}
	if (j->gone && (r = take_dir_back(j)) < 0) {
		if (r != -ENOENT && r != j->gone_err) {
			log_warn("journal: %s: cannot use the data directory again: "
			    "%s", j->dir, strerror(-r));
			j->gone_err = r;
		}
		fail(j, ENOENT, "new segment");
		return;
	}
	if (ftruncate(j->fd, (off_t)j->written_off) < 0) {
		fail(j, errno, "ftruncate");
		return;
	}
	if (j->rotate_wanted && j->written_off == j->synced_off &&
	    (r = do_rotate(j)) < 0) {
		fail(j, -r, "new segment");
		return;
	}
	if ((r = write_pending(j)) < 0) {
		fail(j, -r, "write");
		return;
	}
	submit(j, true);
}

/* ------------------------------------------------------------ public */

/*
 * journal_append: queue one record (kind 1..255, payload gathered from iov)
 * for the next journal_flush, and return its LSN.  Returns 0 with errno
 * EMSGSIZE (payload over JOURNAL_MAX_RECORD), ENOBUFS (opts.max_backlog
 * bytes already wait, as while the disk is failing) or EINVAL (kind 0).
 * A record with an empty payload is taken past opts.max_backlog (9 bytes:
 * what a caller uses to close for sure what it began).
 */
uint64_t
journal_append(struct journal *j, uint8_t kind, const struct iovec *iov,
    int iovcnt)
{
	size_t n = 0, at, pending;
	uint8_t *p;

	if (!j->replayed)
		fatalx("journal_append before journal_replay");
	if (kind == KIND_PAD) {
		errno = EINVAL;
		return 0;
	}
	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	if (n > JOURNAL_MAX_RECORD) {
		errno = EMSGSIZE;
		return 0;
	}
	pending = j->len - (size_t)(j->written_off - j->buf_off);
	if (n > 0 && pending + RH + n > j->opt.max_backlog) {
		errno = ENOBUFS;
		return 0;
	}
	if (j->len + RH + n > j->cap) {
		j->cap = j->cap ? j->cap : 65536;
		while (j->cap < j->len + RH + n)
			j->cap *= 2;
		j->data = xrealloc(j->data, j->cap);
	}
	at = j->len;
	p = j->data + at;
	put32(p, (uint32_t)n);
	p[8] = kind;
	p += RH;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > 0)
			memcpy(p, iov[i].iov_base, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	put32(j->data + at + 4, crc32c(0, j->data + at + 8, n + 1));
	j->len += RH + n;
	j->records++;
	return j->base_lsn + (j->buf_off - HDR) + j->len;
}

/*
 * journal_flush: write what was appended since the last call (one pwrite)
 * and start a sync if one is due.  Call once per loop turn, from the
 * before-sleep (ev_prepare) watcher, before sending acknowledgements.  May
 * call opts.on_durable (modes INTERVAL and NEVER: as soon as written).
 */
void
journal_flush(struct journal *j)
{
	int r;

	if (!j->replayed || j->err != 0)
		return;    /* the retry timer drives a failed journal */
	if (j->rotate_wanted) {
		/* Nothing goes to the next segment before this one is whole. */
		if (j->busy || j->written_off != j->synced_off) {
			maybe_sync(j, true);
			return;
		}
		if ((r = do_rotate(j)) < 0) {
			fail(j, -r, "new segment");
			return;
		}
	}
	if ((r = write_pending(j)) < 0) {
		fail(j, -r, "write");
		return;
	}
	if (j->opt.sync != JOURNAL_SYNC_ALWAYS && seg_unlinked(j)) {
		/* Durable would mean written: not into a deleted file. */
		if (j->opt.sync == JOURNAL_SYNC_INTERVAL)
			j->written_off = j->synced_off;
		fail(j, ENOENT, "segment");
		return;
	}
	maybe_sync(j, false);
	notify_durable(j);
}

uint64_t
journal_durable_lsn(const struct journal *j)
{
	return j->durable_lsn;
}

uint64_t
journal_appended_lsn(const struct journal *j)
{
	return j->base_lsn + (j->buf_off - HDR) + j->len;
}

/* journal_renewed: true once after the journal started again in a DIR
 * that had been deleted: the caller writes its whole state again, since
 * the records before are gone. */
bool
journal_renewed(struct journal *j)
{
	bool r = j->renewed;

	j->renewed = false;
	return r;
}

/* journal_error: 0, or the errno that put the journal in the failed state. */
int
journal_error(const struct journal *j)
{
	return j->err;
}

/*
 * journal_rotate: make later appends go to a new segment and return its
 * number (the current one's if it holds no record yet).  The segment starts
 * once everything before it is synced.
 */
uint64_t
journal_rotate(struct journal *j)
{
	if (!j->rotate_wanted && j->written_off == HDR)
		return j->segno;
	j->rotate_wanted = true;
	maybe_sync(j, true);
	return j->segno + 1;
}

/*
 * journal_drop_before: delete every segment numbered below segno, once all
 * records appended so far are synced.  Returns 0 if done now, 1 if it will
 * happen after that sync (in any sync mode), -EINVAL if segno is not a
 * segment yet.  The caller calls it after writing the live state into the
 * segment journal_rotate() returned.
 */
int
journal_drop_before(struct journal *j, uint64_t segno)
{
	if (segno > j->segno + (j->rotate_wanted ? 1 : 0))
		return -EINVAL;
	j->drop_segno = segno;
	j->drop_lsn = journal_appended_lsn(j);
	j->drop_pending = true;
	if (j->segno >= segno && lsn_at(j, j->synced_off) >= j->drop_lsn) {
		crash_point("compact-durable");
		do_drop(j);
		maybe_sync(j, false);
		return 0;
	}
	maybe_sync(j, true);
	return 1;
}

/* journal_crash_mark: for the crash point compact-record, the records of
 * a compaction's snapshot start at lsn (journal_appended_lsn before it). */
void
journal_crash_mark(struct journal *j, uint64_t lsn)
{
	j->snap_from = lsn;
}

void
journal_stats(const struct journal *j, struct journal_stats *st)
{
	memset(st, 0, sizeof *st);
	st->disk_bytes = j->old_bytes + (j->replayed ? j->written_off : 0);
	st->cur_bytes = j->replayed ? j->written_off : 0;
	st->segment_bytes = j->opt.segment_bytes;
	st->segments = j->nsegs;
	if (j->nsegs > 0) {
		st->first_segno = j->segs[0].segno;
		st->cur_segno = j->segs[j->nsegs - 1].segno;
	}
	st->records = j->records;
	st->syncs = j->syncs;
	st->sync_last_us = j->sync_last_us;
	st->sync_max_us = j->sync_max_us;
	if (j->replayed) {
		st->appended_lsn = journal_appended_lsn(j);
		st->written_lsn = lsn_at(j, j->written_off);
		st->backlog_bytes = j->len - (size_t)(j->written_off - j->buf_off);
	}
	st->durable_lsn = j->durable_lsn;
	st->error = j->err;
}

/* ------------------------------------------------------------- closing */

/*
 * journal_close: write what is pending, sync it (not in mode NEVER), stop
 * the sync thread and release DIR.  Does not call on_durable.  Returns 0, or
 * -errno if records could not be made durable.
 */
int
journal_close(struct journal *j)
{
	int rc = 0;

	j->closing = true;
	if (j->thr_started) {
		pthread_mutex_lock(&j->mu);
		j->stop = true;
		pthread_cond_signal(&j->cv);
		pthread_mutex_unlock(&j->mu);
		pthread_join(j->thr, NULL);
		if (j->busy && j->res_ready)
			sync_done(j, j->res_err, j->res_us);
		j->busy = false;
	}
	if (j->replayed && j->fd >= 0) {
		if (ftruncate(j->fd, (off_t)j->written_off) < 0 ||
		    (rc = write_pending(j)) < 0)
			rc = rc < 0 ? rc : -errno;
		if (rc == 0 && j->opt.sync != JOURNAL_SYNC_NEVER &&
		    (fdatasync(j->fd) < 0 || fsync(j->dirfd) < 0))
			rc = -errno;
		if (rc < 0)
			log_err("journal: %s: records lost at close: %s", j->dir,
			    strerror(-rc));
		else if (j->gone)
			log_err("journal: %s: records lost at close: the data "
			    "directory was deleted", j->dir);
	}
	if (j->inited) {
		ev_ref(j->loop);
		ev_async_stop(j->loop, &j->done);
		ev_timer_stop(j->loop, &j->retry);
		ev_timer_stop(j->loop, &j->interval);
		pthread_mutex_destroy(&j->mu);
		pthread_cond_destroy(&j->cv);
	}
	if (j->fd >= 0)
		close(j->fd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	if (j->lockfd >= 0)
		close(j->lockfd);    /* releases the lock */
	free(j->segs);
	free(j->data);
	free(j->abs_dir);
	free(j->dir);
	free(j);
	return rc;
}
