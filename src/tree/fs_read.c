/*
 * fs_read.c — the tree's streams (jobs/ID/response, channels/C, a queue
 * opened read-write): reads answered at once or parked until something
 * arrives, interrupts, poll, and the wakes of the broker's events.
 * fs_files.c's opening comment tells the three sorts of file.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include <linux/fuse.h>    /* struct fuse_open_out, FOPEN_STREAM */

#include "tree/fs.h"

/* A reader of channels/C that does not keep up loses messages past this. */
#define CHAN_READER_MAX (4u << 20)

/* -------------------------------------------------------------- streams */

/* job_error: the errno a response read fails with, by how the job ended. */
static int
job_error(enum job_state s)
{
	switch (s) {
	case JOB_CANCELLED: return ECANCELED;
	case JOB_TIMEOUT:   return ETIMEDOUT;
	default:            return EIO;
	}
}

/*
 * ending_durable: may a reader see how the finished job j ended?  Only once
 * the store has made its ending durable.  The tree does not know which
 * record that was, so while anything the store appended is not yet durable
 * the reader waits for the next durable event (at most one group commit):
 * the job joins fs->dwake, whose readers fs_wake_durable() wakes.
 */
static bool
ending_durable(struct fs *fs, struct job *j)
{
	struct broker *b = fs->srv->broker;
	struct durable_wake *d;

	if (!broker_held(b))
		return true;
	if (fs->ndwake > 0 && fs->dwake[fs->ndwake - 1].job == j &&
	    fs->dwake[fs->ndwake - 1].mark == broker_mark(b))
		return false;  /* already waiting for this mark */
	if (fs->ndwake == fs->dwake_cap) {
		fs->dwake_cap = fs->dwake_cap ? fs->dwake_cap * 2 : 16;
		fs->dwake = xrealloc(fs->dwake, fs->dwake_cap * sizeof *fs->dwake);
	}
	d = &fs->dwake[fs->ndwake++];
	d->job = j;
	d->mark = broker_mark(b);
	job_ref(j);
	return false;
}

/* fs_wake_durable: the store made everything up to durable durable: wake
 * the readers of jobs that waited for it (all of them when unmounting:
 * durable is then UINT64_MAX and the readers were answered already). */
void
fs_wake_durable(struct fs *fs, uint64_t durable)
{
	struct broker *b = fs->srv->broker;
	size_t i, n = 0;

	for (i = 0; i < fs->ndwake; i++) {
		struct durable_wake d = fs->dwake[i];

		if (d.mark > durable) {
			fs->dwake[n++] = d;
			continue;
		}
		if (!fs->stopping)
			fs_job_wake(fs, d.job);
		job_unref(b, d.job);
	}
	fs->ndwake = n;
	if (n == 0) {
		free(fs->dwake);
		fs->dwake = NULL;
		fs->dwake_cap = 0;
	}
}

/*
 * response_answer: the response stream is the partial results (one line
 * each), then the result and a newline, then EOF; or, for a job that did
 * not succeed, its error once the partials are read.  False: nothing yet.
 */
static bool
response_answer(struct fs *fs, struct handle *h, fuse_req_t req, size_t size)
{
	struct job *j = h->owner->job;
	size_t plen = buf_used(job_partials(j)), rlen, rpos, n;
	const char *result = j->result != NULL ? j->result->data : "null";
	struct iovec iov[2];

	if (h->pos < plen) {
		n = plen - h->pos < size ? plen - h->pos : size;
		fuse_reply_buf(req, buf_head(job_partials(j)) + h->pos, n);
		h->pos += n;
		return true;
	}
	if (!JOB_FINISHED(j) || !ending_durable(fs, j))
		return false;
	if (j->state != JOB_DONE) {
		fuse_reply_err(req, job_error(j->state));
		return true;
	}
	if (j->dropped) {   /* no longer kept (--keep-bytes) */
		fuse_reply_err(req, ENODATA);
		return true;
	}
	rlen = j->result != NULL ? j->result_len : 4;
	rpos = h->pos - plen;  /* into result + "\n" */
	if (rpos > rlen) {
		fuse_reply_buf(req, NULL, 0);
		return true;
	}
	n = rlen - rpos < size ? rlen - rpos : size;
	iov[0].iov_base = (char *)result + rpos;
	iov[0].iov_len = n;
	iov[1].iov_base = "\n";
	iov[1].iov_len = rpos + n == rlen && n < size ? 1 : 0;
	fuse_reply_iov(req, iov, 2);
	h->pos += n + iov[1].iov_len;
	return true;
}

/* progress_answer: the progress stream is the partial results (one line
 * each) as they come, then EOF once the job has ended, however it ended.
 * False: nothing yet. */
static bool
progress_answer(struct fs *fs, struct handle *h, fuse_req_t req, size_t size)
{
	struct job *j = h->owner->job;
	size_t plen = buf_used(job_partials(j)), n;

	if (h->pos < plen) {
		n = plen - h->pos < size ? plen - h->pos : size;
		fuse_reply_buf(req, buf_head(job_partials(j)) + h->pos, n);
		h->pos += n;
		return true;
	}
	if (!JOB_FINISHED(j) || !ending_durable(fs, j))
		return false;
	fuse_reply_buf(req, NULL, 0);
	return true;
}

/* stream_answer: answer one read of a stream if it can be; false: it must wait. */
static bool
stream_answer(struct fs *fs, struct handle *h, fuse_req_t req, size_t size)
{
	size_t n = buf_used(&h->data);

	if (h->kind == NK_JOB_RESPONSE)
		return response_answer(fs, h, req, size);
	if (h->kind == NK_JOB_PROGRESS)
		return progress_answer(fs, h, req, size);
	if (n == 0)
		return false;
	if (n > size)
		n = size;
	fuse_reply_buf(req, buf_head(&h->data), n);
	buf_consume(&h->data, n);
	return true;
}

/* handle_ready: would a read of this stream return now? */
static bool
handle_ready(struct fs *fs, const struct handle *h)
{
	struct job *j;

	if (h->kind != NK_JOB_RESPONSE && h->kind != NK_JOB_PROGRESS)
		return buf_used(&h->data) > 0;
	j = h->owner->job;
	return h->pos < buf_used(job_partials(j)) ||
	    (JOB_FINISHED(j) && ending_durable(fs, j));
}

/* handle_wake: something arrived: answer parked reads in order, then pollers. */
void
handle_wake(struct fs *fs, struct handle *h)
{
	struct waiter *w;

	while ((w = TAILQ_FIRST(&h->waiters)) != NULL) {
		if (!stream_answer(fs, h, w->req, w->size))
			break;
		TAILQ_REMOVE(&h->waiters, w, entry);
		free(w);
	}
	if (h->ph != NULL && handle_ready(fs, h)) {
		fuse_lowlevel_notify_poll(h->ph);
		fuse_pollhandle_destroy(h->ph);
		h->ph = NULL;
	}
}

/*
 * fs_interrupt_cb: the reader was interrupted (Ctrl-C).  libfuse calls
 * this holding its locks, so only move the waiter; fs_receive() answers
 * it EINTR as soon as the request that carried the interrupt is done.
 */
static void
fs_interrupt_cb(fuse_req_t req, void *data)
{
	struct fs *fs = fuse_req_userdata(req);
	struct waiter *w = data;

	if (w->h == NULL)
		return;
	TAILQ_REMOVE(&w->h->waiters, w, entry);
	w->h = NULL;
	TAILQ_INSERT_TAIL(&fs->interrupted, w, entry);
}

/* fs_flush_interrupted: answer interrupted readers EINTR, outside libfuse. */
void
fs_flush_interrupted(struct fs *fs)
{
	struct waiter *w;

	while ((w = TAILQ_FIRST(&fs->interrupted)) != NULL) {
		TAILQ_REMOVE(&fs->interrupted, w, entry);
		fuse_reply_err(w->req, EINTR);
		free(w);
	}
}

/* fs_fail_waiters: the tree is going away: answer every parked read with err. */
void
fs_fail_waiters(struct fs *fs, int err)
{
	struct handle *h;
	struct waiter *w;

	fs_flush_interrupted(fs);
	TAILQ_FOREACH(h, &fs->handles, all_entry) {
		while ((w = TAILQ_FIRST(&h->waiters)) != NULL) {
			TAILQ_REMOVE(&h->waiters, w, entry);
			fuse_reply_err(w->req, err);
			free(w);
		}
	}
}

/*
 * fs_read_stream: answer now if there is something to read; else EAGAIN
 * for O_NONBLOCK, EINTR if already interrupted (checked first: a callback
 * registered on an interrupted request runs at once, inside libfuse's
 * lock), else park the request until handle_wake() or an interrupt.
 */
static void
fs_read_stream(struct fs *fs, struct handle *h, fuse_req_t req, size_t size,
    int flags)
{
	struct waiter *w;

	if (TAILQ_EMPTY(&h->waiters) && stream_answer(fs, h, req, size))
		return;
	if (fs->stopping) {
		fuse_reply_err(req, ENOTCONN);
		return;
	}
	if (flags & O_NONBLOCK) {
		fuse_reply_err(req, EAGAIN);
		return;
	}
	if (fuse_req_interrupted(req)) {
		fuse_reply_err(req, EINTR);
		return;
	}
	w = xcalloc(1, sizeof *w);
	w->req = req;
	w->size = size;
	w->h = h;
	TAILQ_INSERT_TAIL(&h->waiters, w, entry);
	fuse_req_interrupt_func(req, fs_interrupt_cb, w);
}

/* fs_read: streams may wait; snapshots are taken at offset 0. */
void
fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	size_t len;

	(void)ino;
	if (handle_is_stream(h)) {
		fs_read_stream(fs, h, req, size, fi->flags);
		return;
	}
	if (fs_cluster_read(fs, req, h, size, off))
		return;   /* the cluster's counters, queue or workers: Redis answers */
	if (off == 0 || !h->filled)
		fs_snapshot(fs, h);
	len = buf_used(&h->data);
	if (off < 0 || (size_t)off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, buf_head(&h->data) + off,
		    len - (size_t)off < size ? len - (size_t)off : size);
}

/* fs_poll: readable when a read would not wait; writable always. */
void
fs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
    struct fuse_pollhandle *ph)
{
	struct fs *fs = fuse_req_userdata(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	unsigned events = 0;

	(void)ino;
	if (h->accmode != O_WRONLY && (!handle_is_stream(h) || handle_ready(fs, h)))
		events |= POLLIN | POLLRDNORM;
	if (h->accmode != O_RDONLY)
		events |= POLLOUT | POLLWRNORM;
	if (ph != NULL) {
		/* Only the newest poll handle is worth waking. */
		if (h->ph != NULL)
			fuse_pollhandle_destroy(h->ph);
		h->ph = ph;
	}
	fuse_reply_poll(req, events);
}

/* ------------------------------------------------------ the tree's wakes */

/* fs_job_wake: new state or partial result: wake its response readers. */
void
fs_job_wake(struct fs *fs, struct job *j)
{
	struct owner *o;
	struct handle *h;

	if ((o = owner_of_job(fs, j)) == NULL)
		return;
	TAILQ_FOREACH(h, &o->handles, owner_entry)
		if (h->kind == NK_JOB_RESPONSE || h->kind == NK_JOB_PROGRESS)
			handle_wake(fs, h);
}

/* fs_chan_message: every reader of channels/NAME gets body as one line
 * (a channel listener: chan_listen). */
void
fs_chan_message(void *ctx, const char *name, const char *body, size_t len)
{
	struct server *srv = ctx;
	struct owner *o;
	struct handle *h;

	if (srv->fs == NULL || (o = owner_find(srv->fs, OW_CHAN, name)) == NULL)
		return;
	TAILQ_FOREACH(h, &o->handles, owner_entry) {
		if (h->accmode == O_WRONLY)
			continue;
		if (buf_used(&h->data) > 0 && buf_used(&h->data) + len > CHAN_READER_MAX) {
			h->dropped++;
			continue;
		}
		buf_append(&h->data, body, len);
		buf_append(&h->data, "\n", 1);
		handle_wake(srv->fs, h);
	}
}
