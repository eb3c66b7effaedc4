/*
 * fs_files.c — open files of the tree: what reading and writing them do.
 *
 * Three sorts of file:
 *  - snapshots (README, stats, status, queue opened read-only, ...): the
 *    text is made when a read starts at offset 0 and served from the
 *    handle, so one reader sees one consistent version;
 *  - streams (jobs/ID/response, channels/C, a queue opened read-write):
 *    a read with nothing to return is parked (its fuse_req_t kept on the
 *    handle) and answered when something arrives, or EINTR at once when
 *    the reader is interrupted; O_NONBLOCK gives EAGAIN and poll works;
 *  - line sinks (queue, channels/C written): each newline-ended line is
 *    one JSON text; a write(2) with a bad line fails whole (EINVAL).
 * Every file is direct_io: the page cache would serve stale snapshots,
 * cut streams short at the size we report, and hide interrupts.
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

static const char readme_text[] =
"jobfs: every queue and job of this daemon as files.\n"
"\n"
"  types/T/            one directory per job type; mkdir types/T makes one\n"
"  types/T/queue       write JSON job bodies, one per line, to submit them;\n"
"                      read: the ids of queued jobs, in dispatch order\n"
"  types/T/workers     one line per worker: name, state, running job ids\n"
"  types/T/stats       counters of the type, \"name value\" per line\n"
"  types/T/submit      write JSON envelopes, one per line:\n"
"                      {\"body\":B,\"priority\":P,\"delay\":MS,\"at\":EPOCH_MS,\n"
"                      \"retries\":N,\"backoff\":MS,\"after\":[ID...],\"id\":ID}\n"
"  types/T/dead        ids of jobs that failed after their attempts\n"
"  types/T/kick        write dead job ids, one per line: queue them again\n"
"  types/T/delayed     ids of delayed jobs (and retries), in due order\n"
"  types/T/paused      exists while T is paused: touch it to pause, rm to resume\n"
"  types/T/limit       jobs of T running at once (0: no limit); write to set\n"
"  types/T/retries     retries of T's jobs that do not say [and base backoff ms]\n"
"  types/T/state/S/    T's jobs in state S, as state/S/\n"
"  jobs/ID/body        the job body as JSON\n"
"  jobs/ID/response    blocks until the job ends, then prints its result;\n"
"                      fails with EIO, ECANCELED or ETIMEDOUT if it did not\n"
"                      succeed\n"
"  jobs/ID/status      queued, delayed, waiting, running, done, failed,\n"
"                      cancelled or timeout\n"
"  jobs/ID/type        the job type\n"
"  jobs/ID/info        everything about the job, one JSON object\n"
"  jobs/ID/log         what the job's command printed to stderr (jobctl\n"
"                      work: the last 64 KiB), once it has ended\n"
"  jobs/ID/progress    its partial results, one per line, as they come;\n"
"                      EOF once the job has ended\n"
"  rmdir jobs/ID       cancel the job if unfinished, and forget it\n"
"  channels/C          write: publish one JSON message per line;\n"
"                      read: the messages published after open\n"
"  rm channels/C       remove a channel made in the tree\n"
"  stats               daemon-wide counters\n"
"  refusals            the last 100 writes the tree refused, one a line:\n"
"                      time (UTC), path and reason, separated by tabs\n"
"  state/S/            jobs in state S (queued, running, delayed, waiting,\n"
"                      done, failed, cancelled, dead) as links to jobs/ID,\n"
"                      by type, each type's in the order they entered S;\n"
"                      failed holds timeouts and the dead ones too\n"
"\n"
"Examples:\n"
"  mkdir types/echo\n"
"  echo '{\"n\":1}' > types/echo/queue\n"
"  exec 3<>types/echo/queue; echo '{}' >&3; read id <&3; cat jobs/$id/response\n"
"  ls -l state/failed/; cat state/dead/*/info\n"
"\n"
"Ids are listed as their names under jobs/, one per line: / is shown as\n"
"%2F, % as %25, a control character as %XX (newline: %0A), and the ids\n"
". and .. as %2E and %2E%2E.  See jobfs(5).\n";

/* fs_readme_len: README's size, for stat. */
size_t
fs_readme_len(void)
{
	return sizeof readme_text - 1;
}

/* handle_is_stream: reads of this handle wait for data rather than snapshot. */
static bool
handle_is_stream(const struct handle *h)
{
	return h->kind == NK_JOB_RESPONSE || h->kind == NK_JOB_PROGRESS || h->kind == NK_CHAN ||
	    ((h->kind == NK_TYPE_QUEUE || h->kind == NK_TYPE_SUBMIT) && h->accmode == O_RDWR);
}

/* ------------------------------------------------------------ snapshots */

/* text_stats: the daemon-wide counters of broker_stats(), "name value" lines. */
static void
text_stats(struct server *srv, struct buf *b)
{
	json_t *o = broker_stats(&srv->broker, NULL, 0), *v;  /* no per-type counters */
	const char *k;
	char line[320];

	json_object_foreach(o, k, v) {
		if (json_is_integer(v))
			snprintf(line, sizeof line, "%s %lld\n", k,
			    (long long)json_integer_value(v));
		else if (json_is_real(v))
			snprintf(line, sizeof line, "%s %.3f\n", k, json_real_value(v));
		else
			continue;  /* per type: see types/T/stats */
		buf_append_str(b, line);
	}
	json_decref(o);
}

/* text_type_stats: the counters of one type. */
static void
text_type_stats(const struct jtype *t, struct buf *b)
{
	struct type_stats ts;
	char line[512];

	broker_type_stats(t, &ts);
	snprintf(line, sizeof line,
	    "queued %llu\nrunning %llu\ndone %llu\nfailed %llu\ncancelled %llu\n"
	    "timeout %llu\nworkers %llu\nsubmitted %llu\nrequeued %llu\n",
	    (unsigned long long)ts.queued, (unsigned long long)ts.running,
	    (unsigned long long)ts.done, (unsigned long long)ts.failed,
	    (unsigned long long)ts.cancelled, (unsigned long long)ts.timeout,
	    (unsigned long long)ts.workers, (unsigned long long)ts.submitted,
	    (unsigned long long)ts.requeued);
	buf_append_str(b, line);
	/* the job lifecycle */
	snprintf(line, sizeof line,
	    "dead %llu\ndelayed %llu\nwaiting %llu\nretried %llu\nkicked %llu\n"
	    "paused %d\nlimit %u\n",
	    (unsigned long long)ts.dead, (unsigned long long)ts.delayed,
	    (unsigned long long)ts.waiting, (unsigned long long)ts.retried,
	    (unsigned long long)ts.kicked, t->paused ? 1 : 0, t->limit);
	buf_append_str(b, line);
}

/* append_id: a job id as its file name, then sep. */
static void
append_id(struct buf *b, const char *key, const char *sep)
{
	char *name = fs_name_encode(key);

	buf_append_str(b, name);
	buf_append_str(b, sep);
	free(name);
}

/* add_running_id: " ID" for a job a worker runs. */
static bool
add_running_id(void *ctx, struct job *j)
{
	buf_append(ctx, " ", 1);
	append_id(ctx, j->key, "");
	return true;
}

struct workers_text {
	struct broker *b;
	struct buf    *out;
};

static bool
add_worker_line(void *ctx, struct worker *w)
{
	struct workers_text *x = ctx;

	append_id(x->out, worker_name(w), " ");
	append_id(x->out, worker_addr(w), "");
	buf_append_str(x->out, worker_running(w) > 0 ? " busy" : " idle");
	broker_worker_jobs_each(x->b, w, add_running_id, x->out);
	buf_append_str(x->out, "\n");
	return true;
}

/*
 * text_workers: "NAME ADDR idle" or "NAME ADDR busy ID..." per worker: its
 * token's or join's name (else its address), then its address.  The name
 * is encoded as ids are, so that a worker's name, like an id, cannot add a
 * line.
 */
static void
text_workers(struct broker *b, struct jtype *t, struct buf *out)
{
	struct workers_text x = { b, out };

	broker_workers_each(b, t, add_worker_line, &x);
}

static bool
add_queued_id(void *ctx, struct job *j)
{
	append_id(ctx, j->key, "\n");
	return true;
}

/* text_queue: queued ids in dispatch order (priority, then submission). */
static void
text_queue(struct broker *b, struct jtype *t, struct buf *out)
{
	broker_queue_each(b, t, add_queued_id, out);
}

/* text_job: the contents of jobs/ID/{body,status,type,info}. */
static void
text_job(enum node_kind k, const struct job *j, struct buf *b)
{
	json_t *info;
	const char *log;
	size_t n;

	switch (k) {
	case NK_JOB_BODY:
		buf_append(b, job_body(j), j->body_len);  /* dropped: empty */
		break;
	case NK_JOB_STATUS:
		buf_append_str(b, job_status(j));
		break;
	case NK_JOB_TYPE:
		buf_append_str(b, j->type->name);
		break;
	case NK_JOB_INFO:
		info = job_info(j);
		json_dump_callback(info, buf_json_cb, b, JSON_COMPACT);
		json_decref(info);
		break;
	case NK_JOB_LOG:   /* as printed: no newline added; none yet: empty */
		if ((log = job_log(j, &n)) != NULL)
			buf_append(b, log, n);
		return;
	default:
		break;
	}
	buf_append(b, "\n", 1);
}

/* text_num: "A\n", or "A B\n" if b is not negative. */
static void
text_num(struct buf *out, int64_t a, int64_t b)
{
	char line[64];

	if (b >= 0)
		snprintf(line, sizeof line, "%lld %lld\n", (long long)a, (long long)b);
	else
		snprintf(line, sizeof line, "%lld\n", (long long)a);
	buf_append_str(out, line);
}

/* ------------------------------------------------------------ refusals */

/* fs_why: why the write under way is refused, for fs_refused. */
void
fs_why(struct fs *fs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fs->why, sizeof fs->why, fmt, ap);
	va_end(ap);
}

/* handle_path: the tree's path of a file written to. */
static void
handle_path(const struct handle *h, char *out, size_t len)
{
	const char *file = NULL;

	switch (h->kind) {
	case NK_CHAN:         snprintf(out, len, "channels/%s", h->owner->name); return;
	case NK_TYPE_QUEUE:   file = "queue"; break;
	case NK_TYPE_SUBMIT:  file = "submit"; break;
	case NK_TYPE_KICK:    file = "kick"; break;
	case NK_TYPE_LIMIT:   file = "limit"; break;
	case NK_TYPE_RETRIES: file = "retries"; break;
	case NK_TYPE_PAUSED:  file = "paused"; break;
	default:              break;
	}
	if (file != NULL && h->owner != NULL)
		snprintf(out, len, "types/%s/%s", h->owner->name, file);
	else
		snprintf(out, len, "(a file that takes no writes)");
}

/*
 * fs_refused: a write (or the close that ended its last line) to h failed
 * with rc: one line "TIME\tPATH\tREASON" joins /refusals (the oldest of
 * FS_REFUSALS_MAX goes), and a warning is logged, at most
 * FS_REFUSAL_LOG_BURST per log_interval() so that a flood of bad writes
 * cannot fill the log (the next line logged says how many were not).
 */
static void
fs_refused(struct fs *fs, const struct handle *h, int rc)
{
	char path[ID_MAX + 32], reason[sizeof fs->why + 64], stamp[32];
	struct timespec ts;
	struct tm tm;
	char *line;
	size_t i;

	handle_path(h, path, sizeof path);
	if (fs->why[0] != '\0')
		snprintf(reason, sizeof reason, "%s: %s", strerror(-rc), fs->why);
	else
		snprintf(reason, sizeof reason, "%s", strerror(-rc));
	fs->why[0] = '\0';
	for (i = 0; reason[i] != '\0'; i++)   /* one line, tabs only between fields */
		if ((unsigned char)reason[i] < 0x20)
			reason[i] = ' ';
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	line = xprintf("%s.%03ldZ\t%s\t%s\n", stamp, ts.tv_nsec / 1000000, path, reason);
	if (fs->nrefusals < FS_REFUSALS_MAX) {
		fs->refusals[fs->nrefusals++] = line;
	} else {
		free(fs->refusals[fs->refusals_head]);
		fs->refusals[fs->refusals_head] = line;
		fs->refusals_head = (fs->refusals_head + 1) % FS_REFUSALS_MAX;
	}
	if (!log_limit_take(&fs->refusal_log, ev_now(fs->srv->loop), FS_REFUSAL_LOG_BURST))
		return;
	if (fs->refusal_log.missed > 0) {
		log_warn("tree: %" PRIu64 " more refused writes were not logged "
		    "(the last %d are in refusals)", fs->refusal_log.missed,
		    FS_REFUSALS_MAX);
		fs->refusal_log.missed = 0;
	}
	log_warn("tree: a write to %s was refused: %s", path, reason);
}

/* text_refusals: /refusals, oldest first. */
static void
text_refusals(struct fs *fs, struct buf *out)
{
	unsigned i;

	for (i = 0; i < fs->nrefusals; i++)
		buf_append_str(out, fs->refusals[(fs->refusals_head + i) % FS_REFUSALS_MAX]);
}

/* fs_refusals_free: unmounting. */
void
fs_refusals_free(struct fs *fs)
{
	unsigned i;

	for (i = 0; i < fs->nrefusals; i++)
		free(fs->refusals[i]);
	fs->nrefusals = fs->refusals_head = 0;
}

/* fs_snapshot: (re)make the text a snapshot file shows. */
void
fs_snapshot(struct fs *fs, struct handle *h)
{
	struct jtype *t = NULL;

	h->data.off = h->data.len = 0;
	h->filled = true;
	if (h->owner != NULL && h->owner->kind == OW_TYPE &&
	    (t = broker_type(&fs->srv->broker, h->owner->name, false)) == NULL)
		return;  /* the type went away: nothing to show */
	switch (h->kind) {
	case NK_README:       buf_append_str(&h->data, readme_text); break;
	case NK_STATS:        text_stats(fs->srv, &h->data); break;
	case NK_REFUSALS:     text_refusals(fs, &h->data); break;
	case NK_TYPE_STATS:   text_type_stats(t, &h->data); break;
	case NK_TYPE_WORKERS: text_workers(&fs->srv->broker, t, &h->data); break;
	case NK_TYPE_QUEUE:   text_queue(&fs->srv->broker, t, &h->data); break;
	/* the job lifecycle */
	case NK_TYPE_DEAD:    broker_dead_each(&fs->srv->broker, t, add_queued_id, &h->data); break;
	case NK_TYPE_DELAYED: broker_delayed_each(&fs->srv->broker, t, add_queued_id, &h->data); break;
	case NK_TYPE_LIMIT:   text_num(&h->data, t->limit, -1); break;
	case NK_TYPE_RETRIES: text_num(&h->data, t->retries,
	    t->backoff_ms > 0 ? t->backoff_ms : LIFE_BACKOFF_MS); break;
	case NK_TYPE_KICK:
	case NK_TYPE_SUBMIT:
	case NK_TYPE_PAUSED:  break;
	default:              text_job(h->kind, h->owner->job, &h->data); break;
	}
}

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
	struct broker *b = &fs->srv->broker;
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
	struct broker *b = &fs->srv->broker;
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
static void
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

/* ----------------------------------------------------------- line sinks */

/* ------------------------------------------- the job lifecycle */

/* kick_line: one line written to types/T/kick: a dead job's id as listed
 * in types/T/dead (its file name: percent-encoded where need be), or as
 * JSON (a string or an integer).  ENOENT: no such job of T; EINVAL: it is
 * not dead. */
static int
kick_line(struct fs *fs, struct handle *h, const char *text, size_t len)
{
	struct broker *b = &fs->srv->broker;
	json_t *v = json_loadb(text, len, JSON_DECODE_ANY, NULL);
	char key[ID_MAX + 1], name[3 * ID_MAX + 1], *dec = NULL;
	struct job *j;

	key[0] = '\0';
	if (json_is_string(v) && json_string_length(v) <= ID_MAX)
		snprintf(key, sizeof key, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(key, sizeof key, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (len < sizeof name) {
		memcpy(name, text, len);
		name[len] = '\0';
		if ((dec = id_decode(name)) != NULL && strlen(dec) <= ID_MAX)
			snprintf(key, sizeof key, "%s", dec);
		free(dec);
	}
	json_decref(v);
	if ((j = broker_find(b, key)) == NULL || j->type != broker_type(b, h->owner->name, false)) {
		fs_why(fs, "no job of %s has id %.*s", h->owner->name,
		    (int)(len < 100 ? len : 100), text);
		return -ENOENT;
	}
	if (broker_kick(b, j) != BERR_OK) {
		fs_why(fs, "job %s is %s, not dead", j->key, job_status(j));
		return -EINVAL;
	}
	return 0;
}

/* kick_write: each line of a write to types/T/kick (see kick_line); the
 * first that fails stops it (those before are kicked). */
static int
kick_write(struct fs *fs, struct handle *h, const char *data, size_t size)
{
	const char *p = data, *end = data + size, *nl;
	int rc = 0;

	while (p < end && rc == 0) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		while (p < nl && (*p == ' ' || *p == '\t'))
			p++;
		if (nl > p)
			rc = kick_line(fs, h, p, (size_t)(nl - p));
		p = nl + 1;
	}
	return rc;
}

/* The fields an envelope may have. */
static const char *const envelope_keys[] = {
	"body", "priority", "delay", "at", "retries", "backoff", "after", "id",
	"timeout", NULL,
};

/* env_int: an optional integer field; false if present and not one. */
static bool
env_int(json_t *o, const char *k, int64_t *v, bool *set)
{
	json_t *x = json_object_get(o, k);

	*v = 0;
	if (set != NULL)
		*set = x != NULL;
	if (x == NULL)
		return true;
	if (!json_is_integer(x))
		return false;
	*v = json_integer_value(x);
	return true;
}

/* env_id: an id (string or integer) as a key and its JSON text. */
static bool
env_id(json_t *x, char *key, char **idjson)
{
	if (json_is_integer(x))
		snprintf(key, ID_MAX + 1, "%" JSON_INTEGER_FORMAT, json_integer_value(x));
	else if (json_is_string(x) && json_string_length(x) <= ID_MAX &&
	    id_valid(json_string_value(x), json_string_length(x)))
		memcpy(key, json_string_value(x), json_string_length(x) + 1);
	else
		return false;
	if (idjson != NULL)
		*idjson = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
	return true;
}

/*
 * berr_errno: the errno of a broker call's answer (0: none), for every
 * code (no default: -Wswitch finds a code missed here); a refusal's
 * reason, the broker's, goes to fs_why.
 */
static int
berr_errno(struct fs *fs, enum broker_err err)
{
	struct broker *b = &fs->srv->broker;

	if (err != BERR_OK && err != BERR_PENDING)
		fs_why(fs, "%s", broker_err_reason(b, err));
	switch (err) {
	case BERR_OK:
	case BERR_PENDING:
		return 0;
	case BERR_ID_EXISTS:
		return -EEXIST;
	case BERR_UNKNOWN_ID:
		return -ENOENT;
	case BERR_FULL_JOBS:
	case BERR_FULL_MEMORY:
		return -ENOSPC;
	case BERR_UNAVAILABLE:   /* a full disk says so */
		return broker_store_error(b) == ENOSPC || broker_store_error(b) == EDQUOT ?
		    -ENOSPC : -EIO;
	case BERR_SELF:
	case BERR_INVALID:
	case BERR_STATE:
		return -EINVAL;
	}
	return -EIO;
}

/*
 * envelope_submit: one line written to types/T/submit, a JSON object
 * {"body":B, and any of "priority", "delay", "at", "retries", "backoff",
 * "after", "id", "timeout"} (the options of a TCP submit, the same
 * checks).  EINVAL: not such an object; ENOENT: "after" names no job;
 * EEXIST: "id" names an unfinished job; ENOSPC: full.
 */
static int
envelope_submit(struct fs *fs, struct handle *h, const char *text, size_t len)
{
	struct broker *b = &fs->srv->broker;
	json_t *o = json_loadb(text, len, 0, NULL), *x;
	static char keys[LIFE_AFTER_MAX][ID_MAX + 1];
	const char *after[LIFE_AFTER_MAX];
	char key[ID_MAX + 1], *idjson = NULL, *body = NULL;
	struct submit_req r;
	const char *k;
	struct job *j;
	size_t i;
	int rc = -EINVAL;

	memset(&r, 0, sizeof r);
	if (!json_is_object(o) || (x = json_object_get(o, "body")) == NULL) {
		fs_why(fs, "an envelope is a JSON object with \"body\"");
		goto out;
	}
	json_object_foreach(o, k, x) {
		for (i = 0; envelope_keys[i] != NULL && strcmp(envelope_keys[i], k) != 0; i++)
			;
		if (envelope_keys[i] == NULL) {
			fs_why(fs, "unknown field \"%.100s\"", k);
			goto out;   /* a misspelt option is not ignored */
		}
	}
	if (!env_int(o, "priority", &r.priority, NULL) ||
	    !env_int(o, "delay", &r.delay_ms, NULL) ||
	    !env_int(o, "at", &r.at_ms, NULL) ||
	    !env_int(o, "retries", &r.retries, &r.retries_set) ||
	    !env_int(o, "backoff", &r.backoff_ms, NULL) ||
	    !env_int(o, "timeout", &r.timeout_ms, NULL) || r.timeout_ms < 0) {
		fs_why(fs, "priority, delay, at, retries, backoff and timeout are "
		    "integers (timeout not negative)");
		goto out;
	}
	if (json_object_get(o, "backoff") != NULL && r.backoff_ms == 0)
		r.backoff_ms = -1;   /* refused by the broker, as over TCP */
	if ((x = json_object_get(o, "id")) != NULL) {
		if (!env_id(x, key, &idjson)) {
			fs_why(fs, "\"id\" is a string or an integer of at most %d bytes", ID_MAX);
			goto out;
		}
		r.key = key;
		r.idjson = idjson;
	}
	if ((x = json_object_get(o, "after")) != NULL) {
		if (!json_is_array(x) || json_array_size(x) > LIFE_AFTER_MAX) {
			fs_why(fs, "\"after\" is an array of at most %d job ids", LIFE_AFTER_MAX);
			goto out;
		}
		for (i = 0; i < json_array_size(x); i++) {
			if (!env_id(json_array_get(x, i), keys[i], NULL)) {
				fs_why(fs, "\"after\" is an array of job ids (strings or integers)");
				goto out;
			}
			after[i] = keys[i];
		}
		r.after = after;
		r.nafter = json_array_size(x);
	}
	body = json_dumps(json_object_get(o, "body"), JSON_ENCODE_ANY | JSON_COMPACT);
	r.type = h->owner->name;
	r.body = body;
	r.body_len = strlen(body);
	/* (cluster mode, BERR_PENDING: the reply waits for Redis (reply_ok)) */
	if ((rc = berr_errno(fs, broker_submit(b, &r, &j))) != 0)
		goto out;
	log_debug("job %s: submitted in the tree (an envelope)", j->key);
	if (h->accmode == O_RDWR)
		append_id(&h->data, j->key, "\n");
out:
	free(body);
	free(idjson);
	json_decref(o);
	return rc;
}

/* num_write: a number (or two) written to types/T/limit or retries. */
static int
num_write(struct fs *fs, struct handle *h, const char *data, size_t size)
{
	struct broker *b = &fs->srv->broker;
	char text[64], *end;
	long long v, w = -1;

	fs_why(fs, "%s", h->kind == NK_TYPE_RETRIES ? "write a number of retries "
	    "[and a backoff in ms]" : "write a number");
	if (size == 0 || size >= sizeof text)
		return -EINVAL;
	memcpy(text, data, size);
	text[size] = '\0';
	errno = 0;
	v = strtoll(text, &end, 10);
	if (end == text || errno != 0)
		return -EINVAL;
	if (h->kind == NK_TYPE_RETRIES && *end == ' ') {
		w = strtoll(end, &end, 10);
		if (errno != 0 || w < 0)
			return -EINVAL;
	}
	while (*end == '\n' || *end == ' ')
		end++;
	if (*end != '\0')
		return -EINVAL;
	if (broker_type(b, h->owner->name, false) == NULL) {
		fs_why(fs, "no type is named %s", h->owner->name);
		return -ENOENT;
	}
	if (v < 0)
		v = -2;   /* refused */
	if (broker_type_configure(b, h->owner->name, h->kind == NK_TYPE_LIMIT ? v : -1,
	    h->kind == NK_TYPE_RETRIES ? v : -1, w) != BERR_OK) {
		fs_why(fs, "%s", b->err_detail);
		return -EINVAL;
	}
	fs->why[0] = '\0';
	return 0;
}

/* sink_deliver: submit one job body, or publish one message.  -ENOSPC:
 * the broker is full (--max-jobs, --max-memory); -EIO (-ENOSPC for a full
 * disk): the store cannot take writes (berr_errno). */
static int
sink_deliver(struct fs *fs, struct handle *h, const char *text, size_t len)
{
	struct broker *b = &fs->srv->broker;
	struct submit_req r;
	struct job *j;
	int rc;

	if (h->kind == NK_CHAN) {
		if (chan_publish(&fs->srv->broker, h->owner->name, text, len) != SIZE_MAX)
			return 0;
		fs_why(fs, "%s", broker_store_reason(b));   /* cluster mode: Redis is away */
		return -EIO;
	}
	if (h->kind == NK_TYPE_SUBMIT)
		return envelope_submit(fs, h, text, len);
	memset(&r, 0, sizeof r);
	r.type = h->owner->name;
	r.body = text;
	r.body_len = len;
	/* (cluster mode, BERR_PENDING: the reply waits for Redis (reply_ok)) */
	if ((rc = berr_errno(fs, broker_submit(b, &r, &j))) != 0)
		return rc;
	log_debug("job %s: submitted in the tree", j->key);
	if (h->accmode == O_RDWR)
		append_id(&h->data, j->key, "\n");
	return 0;
}

/*
 * fs_sink_write: the written bytes cut into lines by lines_feed() (see
 * fs_lines.c: every complete line checked before any is delivered, so a
 * bad line fails the whole write, EINVAL, and drops the unfinished line;
 * a line longer than --max-frame is EFBIG), then each delivered.
 */
static int
fs_sink_write(struct fs *fs, struct handle *h, const char *data, size_t size,
    bool final)
{
	struct buf texts = { 0 };
	const char *p, *nl;
	size_t n;
	int rc;

	rc = lines_feed(&h->lines, data, size, final, fs->srv->opt.max_frame,
	    &texts, &n, fs->why, sizeof fs->why);
	if (rc == 0 && n > 0) {
		if (h->kind == NK_CHAN)
			chan_get(&fs->srv->broker, h->owner->name, true);  /* a write makes the channel */
		/* A refusal (ENOSPC) stops here: the lines before it stay submitted. */
		for (p = texts.data; p < texts.data + texts.len && rc == 0; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(texts.data + texts.len - p));
			rc = sink_deliver(fs, h, p, (size_t)(nl - p));
		}
		if (h->accmode == O_RDWR)
			handle_wake(fs, h);
	}
	buf_free(&texts);
	return rc;
}

/*
 * reply_ok: a write (or close) that submitted jobs returns once they are
 * durable: while the store is behind, the reply waits in fs->held for the
 * durable event (fs_release_held).  Without a store it goes at once.
 */
static void
reply_ok(struct fs *fs, fuse_req_t req, bool write, size_t size)
{
	struct broker *b = &fs->srv->broker;
	struct held_reply *r;

	if (broker_held(b)) {
		r = xcalloc(1, sizeof *r);
		r->req = req;
		r->write = write;
		r->size = size;
		r->mark = broker_mark(b);
		TAILQ_INSERT_TAIL(&fs->held, r, entry);
	} else if (write)
		fuse_reply_write(req, size);
	else
		fuse_reply_err(req, 0);
}

/* fs_release_held: answer the replies the store made durable (all of them,
 * failing with err if non-zero: unmounting). */
void
fs_release_held(struct fs *fs, uint64_t durable, int err)
{
	struct held_reply *r;

	while ((r = TAILQ_FIRST(&fs->held)) != NULL && (err != 0 || r->mark <= durable)) {
		TAILQ_REMOVE(&fs->held, r, entry);
		if (err != 0 && r->mark > durable)
			fuse_reply_err(r->req, err);
		else if (r->write)
			fuse_reply_write(r->req, r->size);
		else
			fuse_reply_err(r->req, 0);
		free(r);
	}
}

/* fs_write: lines to a queue or a channel; all or nothing per write(2). */
void
fs_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size,
    off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int rc;

	(void)ino;
	(void)off;
	fs->why[0] = '\0';
	if (h->kind == NK_TYPE_LIMIT || h->kind == NK_TYPE_RETRIES)
		rc = num_write(fs, h, data, size);
	else if (h->kind == NK_TYPE_KICK)
		rc = kick_write(fs, h, data, size);
	else if (h->kind == NK_TYPE_PAUSED)
		rc = 0;   /* what is written to it does not matter */
	else if (!NK_TYPE_WRITABLE(h->kind) && h->kind != NK_CHAN)
		rc = -EBADF;
	else
		rc = fs_sink_write(fs, h, data, size, false);
	if (rc != 0) {
		fs_refused(fs, h, rc);
		fuse_reply_err(req, -rc);
	} else
		reply_ok(fs, req, true, size);
}

/* fs_flush: close(2): a last line without newline counts now, and can
 * fail; only a close that submitted waits for the store (any close may
 * come while the store is behind, or failing). */
void
fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	bool submitted = false;
	int rc = 0;

	(void)ino;
	fs->why[0] = '\0';
	if (buf_used(&h->lines.pending) > 0) {
		rc = fs_sink_write(fs, h, NULL, 0, true);
		submitted = true;
	}
	if (rc != 0) {
		fs_refused(fs, h, rc);
		fuse_reply_err(req, -rc);
	} else if (submitted)
		reply_ok(fs, req, false, 0);
	else
		fuse_reply_err(req, 0);  /* nothing to make durable: no wait */
}

/* ---------------------------------------------------------- open, close */

/* fs_handle_open: a handle for node kind k of owner o; fills fi. */
int
fs_handle_open(struct fs *fs, enum node_kind k, struct owner *o,
    struct fuse_file_info *fi)
{
	int acc = fi->flags & O_ACCMODE;
	struct handle *h;

	if (k == NK_NONE)
		return -ENOENT;
	if (!kind_is_dir(k) && o != NULL && k != NK_CHAN && !owner_alive(fs, o))
		return -ENOENT;
	if (acc != O_RDONLY && !NK_TYPE_WRITABLE(k) && k != NK_CHAN)
		return kind_is_dir(k) ? -EISDIR : -EACCES;
	h = xcalloc(1, sizeof *h);
	h->kind = k;
	h->owner = o;
	h->accmode = acc;
	TAILQ_INIT(&h->waiters);
	TAILQ_INSERT_TAIL(&fs->handles, h, all_entry);
	if (o != NULL) {
		TAILQ_INSERT_TAIL(&o->handles, h, owner_entry);
		o->nhandles++;
	}
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 0;
	if (!kind_is_dir(k)) {
		fi->direct_io = 1;
		fi->nonseekable = handle_is_stream(h);
	}
	return 0;
}

/* fs_handle_free: forget an open file (release, or unmount). */
void
fs_handle_free(struct fs *fs, struct handle *h)
{
	struct waiter *w;

	while ((w = TAILQ_FIRST(&h->waiters)) != NULL) {
		TAILQ_REMOVE(&h->waiters, w, entry);
		fuse_reply_err(w->req, EBADF);
		free(w);
	}
	if (h->ph != NULL)
		fuse_pollhandle_destroy(h->ph);
	TAILQ_REMOVE(&fs->handles, h, all_entry);
	broker_cursor_close(&fs->srv->broker, &h->cursor);
	broker_scursor_close(&fs->srv->broker, &h->scursor);
	buf_free(&h->data);
	buf_free(&h->remote);
	lines_free(&h->lines);
	if (h->owner != NULL) {
		TAILQ_REMOVE(&h->owner->handles, h, owner_entry);
		h->owner->nhandles--;
		owner_release(fs, h->owner);
	}
	free(h);
}

/*
 * fs_reply_open: fuse_reply_open(), but a stream is opened FOPEN_STREAM,
 * which libfuse 3.14 has no field for: without it the kernel serialises
 * every read(2) and write(2) on a shared open file (f_pos_lock), so a
 * writer would wait behind a reader parked on the same descriptor
 * (`exec 3<>queue; cat <&3 & echo '{}' >&3`).  The reply is the kernel's
 * struct fuse_open_out either way.
 */
static int
fs_reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
	struct fuse_open_out out;

	if (!fi->nonseekable)
		return fuse_reply_open(req, fi);
	memset(&out, 0, sizeof out);
	out.fh = fi->fh;
	out.open_flags = FOPEN_NONSEEKABLE | FOPEN_STREAM |
	    (fi->direct_io ? FOPEN_DIRECT_IO : 0);
	return fuse_reply_buf(req, (const char *)&out, sizeof out);
}

/* fs_open: a handle per open file (fi->fh), checked for access here. */
void
fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct owner *o;
	enum node_kind k = node_kind_of(fs, ino, &o);
	int rc = kind_is_dir(k) ? -EISDIR : fs_handle_open(fs, k, o, fi);

	if (rc != 0)
		fuse_reply_err(req, -rc);
	else if (fs_reply_open(req, fi) != 0)
		fs_handle_free(fs, (struct handle *)(uintptr_t)fi->fh);
}

/* fs_release: last close; a pending last line is delivered if it is JSON. */
void
fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int rc;

	(void)ino;
	fs->why[0] = '\0';
	if (buf_used(&h->lines.pending) > 0 && (rc = fs_sink_write(fs, h, NULL, 0, true)) != 0)
		fs_refused(fs, h, rc);   /* the last line is dropped */
	fs_handle_free(fs, h);
	fuse_reply_err(req, 0);
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
