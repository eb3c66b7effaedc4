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
"  types/T/schedules   T's schedules (repeating jobs), one a line:\n"
"                      NAME, every=MSms or cron=EXPR, next due time (UTC)\n"
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
bool
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
	json_t *o = broker_stats(srv->broker, NULL, 0), *v;  /* no per-type counters */
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
void
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

/* text_schedules: "NAME\tevery=MSms|cron=EXPR\tNEXT\n" for each of t's
 * schedules, by name; NEXT the next due time, UTC (ISO 8601), or "-". */
static void
text_schedules(struct broker *b, struct jtype *t, struct buf *out)
{
	json_t *a = broker_schedules(b, t->name), *v, *next;
	char when[32], line[512];
	size_t i;
	time_t s;
	struct tm tm;

	json_array_foreach(a, i, v) {
		next = json_object_get(v, "next");
		snprintf(when, sizeof when, "-");
		if (json_is_integer(next)) {
			s = (time_t)(json_integer_value(next) / 1000);
			gmtime_r(&s, &tm);
			strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
		}
		if (json_object_get(v, "cron") != NULL)
			snprintf(line, sizeof line, "%s\tcron=%s\t%s\n",
			    json_string_value(json_object_get(v, "name")),
			    json_string_value(json_object_get(v, "cron")), when);
		else
			snprintf(line, sizeof line, "%s\tevery=%" JSON_INTEGER_FORMAT "ms\t%s\n",
			    json_string_value(json_object_get(v, "name")),
			    json_integer_value(json_object_get(v, "every")), when);
		buf_append_str(out, line);
	}
	json_decref(a);
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
void
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
	    (t = broker_type(fs->srv->broker, h->owner->name, false)) == NULL)
		return;  /* the type went away: nothing to show */
	switch (h->kind) {
	case NK_README:       buf_append_str(&h->data, readme_text); break;
	case NK_STATS:        text_stats(fs->srv, &h->data); break;
	case NK_REFUSALS:     text_refusals(fs, &h->data); break;
	case NK_TYPE_STATS:   text_type_stats(t, &h->data); break;
	case NK_TYPE_WORKERS: text_workers(fs->srv->broker, t, &h->data); break;
	case NK_TYPE_QUEUE:   text_queue(fs->srv->broker, t, &h->data); break;
	/* the job lifecycle */
	case NK_TYPE_DEAD:    broker_dead_each(fs->srv->broker, t, add_queued_id, &h->data); break;
	case NK_TYPE_DELAYED: broker_delayed_each(fs->srv->broker, t, add_queued_id, &h->data); break;
	case NK_TYPE_LIMIT:   text_num(&h->data, t->limit, -1); break;
	case NK_TYPE_RETRIES: text_num(&h->data, t->retries,
	    t->backoff_ms > 0 ? t->backoff_ms : LIFE_BACKOFF_MS); break;
	case NK_TYPE_SCHEDULES: text_schedules(fs->srv->broker, t, &h->data); break;
	case NK_TYPE_KICK:
	case NK_TYPE_SUBMIT:
	case NK_TYPE_PAUSED:  break;
	default:              text_job(h->kind, h->owner->job, &h->data); break;
	}
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
	broker_cursor_close(fs->srv->broker, &h->cursor);
	broker_scursor_close(fs->srv->broker, &h->scursor);
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
