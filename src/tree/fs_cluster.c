/*
 * fs_cluster.c — the tree on every host (cluster mode).
 *
 * With --redis, a host's tree shows the whole cluster, not only what this
 * daemon holds: jobs/ID of a job submitted and run elsewhere (its lookup
 * waits for Redis, which gives a local view of it: broker_lookup), rmdir
 * of such a job (removed wherever it is), the jobs/ listing (this daemon's
 * jobs, then every other job Redis lists), and the cluster's counters,
 * queues and workers in stats, types/T/stats, types/T/queue and
 * types/T/workers (broker_query).  Each of these requests is answered
 * from the callback, on the loop thread, as FUSE's low-level API allows.
 * Unmounting answers those still waiting ENOTCONN.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tree/fs.h"

enum ask_kind { ASK_LOOKUP, ASK_RMDIR, ASK_READ, ASK_OPENDIR };

struct fs_asking {
	TAILQ_ENTRY(fs_asking) entry;
	struct fs         *fs;       /* NULL once answered at unmount */
	enum ask_kind      kind;
	fuse_req_t         req;
	fuse_ino_t         parent;   /* lookup, rmdir */
	struct handle     *h;        /* read, opendir */
	struct fuse_file_info fi;    /* opendir */
	size_t             size;     /* read */
	off_t              off;
	char               name[];   /* lookup, rmdir */
};

static struct fs_asking *
asking_new(struct fs *fs, enum ask_kind k, fuse_req_t req, const char *name)
{
	struct fs_asking *a = xcalloc(1, sizeof *a + (name != NULL ? strlen(name) : 0) + 1);

	a->fs = fs;
	a->kind = k;
	a->req = req;
	if (name != NULL)
		strcpy(a->name, name);
	TAILQ_INSERT_TAIL(&fs->asking, a, entry);
	return a;
}

/* asking_done: the record's request may be answered now (false: it was,
 * at unmount); it leaves the list. */
static bool
asking_done(struct fs_asking *a)
{
	if (a->fs == NULL)
		return false;
	TAILQ_REMOVE(&a->fs->asking, a, entry);
	return true;
}

/* ----------------------------------------------------- jobs/ID, rmdir */

static void
job_found(void *ctx, struct job *j, int berr)
{
	struct fs_asking *a = ctx;
	struct fs *fs = a->fs;
	struct node *n;
	fuse_ino_t fixed = 0;
	int rc;

	(void)j;
	if (asking_done(a)) {
		if (berr != 0)
			fuse_reply_err(a->req, EIO);
		else if (a->kind == ASK_RMDIR)
			fuse_reply_err(a->req, -fs_rmdir_err(fs, a->parent, a->name));
		else if ((rc = fs_lookup_child(fs, a->parent, a->name, &n, &fixed)) != 0)
			fuse_reply_err(a->req, -rc);
		else
			node_reply_entry(fs, a->req, n, fixed);
	}
	free(a);
}

bool
fs_cluster_lookup(struct fs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
    bool rmdir)
{
	struct broker *b = fs->srv->broker;
	struct fs_asking *a;
	struct owner *po;
	char *key;

	if (!broker_shared(b) || node_kind_of(fs, parent, &po) != NK_JOBS ||
	    (key = id_decode(name)) == NULL)
		return false;
	a = asking_new(fs, rmdir ? ASK_RMDIR : ASK_LOOKUP, req, name);
	a->parent = parent;
	broker_lookup(b, key, job_found, a);
	free(key);
	return true;
}

/* ------------------------------------------------------ snapshot files */

/* encode_lines: one key a line -> one file name a line. */
static void
encode_lines(struct buf *out, const char *text, size_t len)
{
	const char *p = text, *end = text + len, *nl;
	char key[ID_MAX + 1], *name;

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (nl - p == 0 || nl - p > ID_MAX)
			continue;
		memcpy(key, p, (size_t)(nl - p));
		key[nl - p] = '\0';
		name = fs_name_encode(key);
		buf_append_str(out, name);
		buf_append(out, "\n", 1);
		free(name);
	}
}

/* lifecycle_lines: the lines of this daemon's types/T/stats from "dead"
 * on (the job lifecycle's: not counted in Redis). */
static void
lifecycle_lines(struct buf *out, const struct buf *local)
{
	const char *from = memmem(local->data, local->len, "dead ", 5);

	if (from != NULL)
		buf_append(out, from, (size_t)(local->data + local->len - from));
}

static void
snapshot_found(void *ctx, const char *text, size_t len, int berr)
{
	struct fs_asking *a = ctx;
	struct handle *h = a->h;
	struct buf local = { 0 };
	size_t used;

	if (!asking_done(a)) {
		free(a);
		return;
	}
	if (berr != 0) {
		fuse_reply_err(a->req, EIO);
		free(a);
		return;
	}
	fs_snapshot(a->fs, h);   /* this daemon's text, then the cluster's */
	if (h->kind != NK_STATS) {
		local = h->data;
		memset(&h->data, 0, sizeof h->data);
	}
	switch (h->kind) {
	case NK_STATS:
		buf_append(&h->data, text, len);
		break;
	case NK_TYPE_STATS:
		buf_append(&h->data, text, len);
		lifecycle_lines(&h->data, &local);
		break;
	case NK_TYPE_QUEUE:
		encode_lines(&h->data, text, len);
		break;
	default:   /* NK_TYPE_WORKERS: lines already as shown */
		buf_append(&h->data, text, len);
		break;
	}
	buf_free(&local);
	h->filled = true;
	used = buf_used(&h->data);
	if (a->off < 0 || (size_t)a->off >= used)
		fuse_reply_buf(a->req, NULL, 0);
	else
		fuse_reply_buf(a->req, buf_head(&h->data) + a->off,
		    used - (size_t)a->off < a->size ? used - (size_t)a->off : a->size);
	free(a);
}

bool
fs_cluster_read(struct fs *fs, fuse_req_t req, struct handle *h, size_t size, off_t off)
{
	struct broker *b = fs->srv->broker;
	const char *what, *arg = NULL;
	struct fs_asking *a;

	if (!broker_shared(b) || (off != 0 && h->filled))
		return false;
	switch (h->kind) {
	case NK_STATS:        what = "stats"; break;
	case NK_TYPE_STATS:   what = "type_stats"; break;
	case NK_TYPE_QUEUE:   what = "queue"; break;
	case NK_TYPE_WORKERS: what = "workers"; break;
	default:              return false;
	}
	if (h->owner != NULL)
		arg = h->owner->name;
	a = asking_new(fs, ASK_READ, req, NULL);
	a->h = h;
	a->size = size;
	a->off = off;
	broker_query(b, what, arg, snapshot_found, a);
	return true;
}

/* --------------------------------------------------------------- jobs/ */

static void
jobs_found(void *ctx, const char *text, size_t len, int berr)
{
	struct fs_asking *a = ctx;

	if (!asking_done(a)) {
		free(a);
		return;
	}
	/* Redis away: the listing is this daemon's jobs only. */
	if (berr == 0)
		buf_append(&a->h->remote, text, len);
	if (fuse_reply_open(a->req, &a->fi) != 0)
		fs_handle_free(a->fs, a->h);
	free(a);
}

bool
fs_cluster_opendir(struct fs *fs, fuse_req_t req, struct handle *h,
    const struct fuse_file_info *fi)
{
	struct fs_asking *a;

	if (!broker_shared(fs->srv->broker) || h->kind != NK_JOBS)
		return false;
	a = asking_new(fs, ASK_OPENDIR, req, NULL);
	a->h = h;
	a->fi = *fi;
	broker_query(fs->srv->broker, "jobs", NULL, jobs_found, a);
	return true;
}

/* fs_cluster_next_job: the next key of the cluster's listing that this
 * daemon does not hold (those were listed first), as a file name; NULL at
 * the end.  The caller frees it. */
char *
fs_cluster_next_job(struct fs *fs, struct handle *h, bool peek)
{
	const char *p, *nl, *end = h->remote.data + h->remote.len;
	char key[ID_MAX + 1];
	size_t pos = h->remote_pos;

	while (h->remote.data != NULL && pos < h->remote.len) {
		p = h->remote.data + pos;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		pos = (size_t)(nl - h->remote.data) + 1;
		if (nl - p == 0 || nl - p > ID_MAX)
			continue;
		memcpy(key, p, (size_t)(nl - p));
		key[nl - p] = '\0';
		if (broker_find(fs->srv->broker, key) != NULL) {
			h->remote_pos = pos;   /* listed with this daemon's */
			continue;
		}
		if (!peek)
			h->remote_pos = pos;
		return fs_name_encode(key);
	}
	h->remote_pos = pos;
	return NULL;
}

/* fs_cluster_fail: unmounting: every request waiting for Redis is
 * answered now. */
void
fs_cluster_fail(struct fs *fs)
{
	struct fs_asking *a;

	while ((a = TAILQ_FIRST(&fs->asking)) != NULL) {
		TAILQ_REMOVE(&fs->asking, a, entry);
		fuse_reply_err(a->req, ENOTCONN);   /* (an opendir's handle goes
		                                       with the others) */
		a->fs = NULL;
	}
}
