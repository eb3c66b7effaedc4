/*
 * fs_dir.c — the tree's directories: listings (readdir, of the fixed
 * names, the types, the jobs and jobs by state), opendir, releasedir and
 * readlink.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/fuse.h>    /* struct fuse_dirent */

#include "tree/fs.h"

/* ---------------------------------------------------------- directories */

/* dir_add: one entry in a listing; its offset is where the next one starts. */
static void
dir_add(fuse_req_t req, struct buf *b, const char *name, fuse_ino_t ino, bool dir)
{
	struct stat st;
	size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);

	memset(&st, 0, sizeof st);
	st.st_ino = ino;
	st.st_mode = dir ? S_IFDIR : S_IFREG;
	buf_reserve(b, need);
	fuse_add_direntry(req, b->data + b->len, need, name, &st, (off_t)(b->len + need));
	b->len += need;
}

/* dir_add_fixed: the fixed entries of a table, with the inodes the kernel has. */
static void
dir_add_fixed(fuse_req_t req, struct buf *b, const struct fixed_name *t,
    struct owner *o, bool paused)
{
	for (; t->name != NULL; t++)
		if (t->kind != NK_TYPE_PAUSED || paused)
			dir_add(req, b, t->name, o == NULL ? (fuse_ino_t)t->kind :
			    owner_ino(o, t->kind), kind_is_dir(t->kind));
}

struct type_listing {
	struct fs  *fs;
	fuse_req_t  req;
	struct buf *b;
};

/* list_type: types/T, for the listing of types/. */
static bool
list_type(void *ctx, struct jtype *t)
{
	struct type_listing *x = ctx;

	dir_add(x->req, x->b, t->name, owner_ino(owner_find(x->fs, OW_TYPE,
	    t->name), NK_TYPE_DIR), true);
	return true;
}

/* list_chan: channels/NAME, for the listing of channels/. */
static void
list_chan(void *ctx, const struct chan *ch)
{
	struct type_listing *x = ctx;

	dir_add(x->req, x->b, ch->name, owner_ino(owner_find(x->fs, OW_CHAN,
	    ch->name), NK_CHAN), false);
}

/*
 * fs_list: the whole listing of a directory, taken once at opendir (all but
 * jobs/, which is read with a cursor: see jobs_readdir).
 */
static int
fs_list(struct fs *fs, fuse_req_t req, enum node_kind k, struct owner *o, struct buf *b)
{
	struct server *srv = fs->srv;
	int s;

	dir_add(req, b, ".", FS_UNKNOWN_INO, true);
	dir_add(req, b, "..", FS_UNKNOWN_INO, true);
	switch (k) {
	case NK_ROOT:
		dir_add_fixed(req, b, root_names, NULL, false);
		break;
	case NK_TYPES:
		{
			struct type_listing x = { fs, req, b };

			broker_types_each(srv->broker, list_type, &x);
		}
		break;
	case NK_CHANNELS: {
		struct type_listing x = { fs, req, b };

		chan_each(srv->broker, list_chan, &x);
		break;
	}
	case NK_TYPE_DIR:
		if (!owner_alive(fs, o))
			return -ENOENT;
		dir_add_fixed(req, b, type_names, o, type_paused(fs, o));
		break;
	case NK_JOB_DIR:
		dir_add_fixed(req, b, job_names, o, false);
		break;
	case NK_STATES:         /* jobs by state */
	case NK_TYPE_STATES:
		if (o != NULL && !owner_alive(fs, o))
			return -ENOENT;
		for (s = JLS_NONE + 1; s < JLS_COUNT; s++)
			dir_add(req, b, jls_name(s), o == NULL ?
			    (fuse_ino_t)(NK_STATE_DIR0 + s - 1) :
			    owner_ino(o, NK_TYPE_STATE_DIR0 + s - 1), true);
		break;
	case NK_NONE:
		return -ENOENT;
	default:
		return -ENOTDIR;
	}
	return 0;
}

/*
 * jobs/ is listed a piece at a time, so that an open handle costs the same
 * with a million jobs as with ten: a broker cursor (it survives jobs coming
 * and going, so a job that exists throughout the listing is listed once)
 * and the last reply.  Entry offsets count entries: "." is 1, ".." 2, the
 * jobs 3 on.  The kernel may keep only the start of a reply (its reader's
 * buffer was full) and ask again from the last entry it kept: that is
 * answered from the reply kept in h->data.
 */

/* dir_put_mode: one entry of file type mode with offset off, if it fits
 * in size bytes of reply. */
static bool
dir_put_mode(fuse_req_t req, struct buf *b, size_t size, const char *name,
    fuse_ino_t ino, off_t off, mode_t mode)
{
	struct stat st;
	size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);

	if (b->len + need > size)
		return false;
	memset(&st, 0, sizeof st);
	st.st_ino = ino;
	st.st_mode = mode;
	buf_reserve(b, need);
	fuse_add_direntry(req, b->data + b->len, need, name, &st, off);
	b->len += need;
	return true;
}

/* dir_put: one entry with offset off, if it fits in size bytes of reply. */
static bool
dir_put(fuse_req_t req, struct buf *b, size_t size, const char *name,
    fuse_ino_t ino, off_t off)
{
	struct stat st;
	size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);

	if (b->len + need > size)
		return false;
	memset(&st, 0, sizeof st);
	st.st_ino = ino;
	st.st_mode = S_IFDIR;
	buf_reserve(b, need);
	fuse_add_direntry(req, b->data + b->len, need, name, &st, off);
	b->len += need;
	return true;
}

/* jobs_reply_again: the entries of the last reply after offset off. */
static void
jobs_reply_again(fuse_req_t req, struct handle *h, size_t size, off_t off)
{
	const char *p = h->data.data, *end = p + h->data.len, *from = NULL;
	const struct fuse_dirent *d;

	if (off == h->dir_first)
		from = p;
	for (; from == NULL && p < end; p += FUSE_DIRENT_SIZE(d)) {
		d = (const struct fuse_dirent *)(const void *)p;
		if ((off_t)d->off == off)
			from = p + FUSE_DIRENT_SIZE(d);
	}
	if (from == NULL) {
		fuse_reply_err(req, EINVAL);  /* a seekdir to a place long gone */
		return;
	}
	for (p = from; p < end; p += FUSE_DIRENT_SIZE(d)) {
		d = (const struct fuse_dirent *)(const void *)p;
		if ((size_t)(p + FUSE_DIRENT_SIZE(d) - from) > size)
			break;
	}
	fuse_reply_buf(req, from, (size_t)(p - from));
}

/* jobs_readdir: the next entries of jobs/ after offset off. */
static void
jobs_readdir(struct fs *fs, fuse_req_t req, struct handle *h, size_t size, off_t off)
{
	struct broker *b = fs->srv->broker;
	struct job *j;
	off_t n = off;
	char *name;
	bool ok;

	if (off == 0) {
		broker_cursor_open(b, &h->cursor);   /* first read, or rewinddir */
		h->remote_pos = 0;
	}
	else if (off != h->dir_last) {
		if (off < h->dir_first || off > h->dir_last)
			fuse_reply_err(req, EINVAL);
		else
			jobs_reply_again(req, h, size, off);
		return;
	}
	h->data.off = h->data.len = 0;
	for (;;) {
		if (n == 0)
			ok = dir_put(req, &h->data, size, ".", FS_UNKNOWN_INO, 1);
		else if (n == 1)
			ok = dir_put(req, &h->data, size, "..", FS_UNKNOWN_INO, 2);
		else if ((j = broker_cursor_job(&h->cursor)) == NULL) {
			/* then the cluster's other jobs (fs_cluster.c) */
			if ((name = fs_cluster_next_job(fs, h, true)) == NULL)
				break;
			ok = dir_put(req, &h->data, size, name, FS_UNKNOWN_INO, n + 1);
			free(name);
			if (ok)
				free(fs_cluster_next_job(fs, h, false));
		} else {
			name = fs_name_encode(j->key);
			ok = dir_put(req, &h->data, size, name,
			    owner_ino(owner_of_job(fs, j), NK_JOB_DIR), n + 1);
			free(name);
			if (ok)
				broker_cursor_advance(&h->cursor);
		}
		if (!ok)
			break;
		n++;
	}
	h->dir_first = off;
	h->dir_last = n;
	fuse_reply_buf(req, h->data.data, h->data.len);
}

/*
 * states_readdir: the next entries of a state directory after offset off,
 * as jobs/'s (a cursor on the broker's list of that state, the last reply
 * kept): links to jobs/ID.
 */
static void
states_readdir(struct fs *fs, fuse_req_t req, struct handle *h, size_t size, off_t off)
{
	struct broker *b = fs->srv->broker;
	enum node_kind lk = NK_IS_STATE_DIR(h->kind) ? NK_JOB_LINK : NK_JOB_TLINK;
	int s = NK_IS_STATE_DIR(h->kind) ? (int)(h->kind - NK_STATE_DIR0 + 1) :
	    (int)(h->kind - NK_TYPE_STATE_DIR0 + 1);
	struct jtype *t = NULL;
	struct job *j;
	off_t n = off;
	char *name;
	bool ok;

	if (off == 0) {
		if (h->owner != NULL &&
		    (t = broker_type(b, h->owner->name, false)) == NULL) {
			fuse_reply_buf(req, NULL, 0);   /* the type went */
			return;
		}
		broker_scursor_open(b, &h->scursor, s, t);
	} else if (off != h->dir_last) {
		if (off < h->dir_first || off > h->dir_last)
			fuse_reply_err(req, EINVAL);
		else
			jobs_reply_again(req, h, size, off);
		return;
	}
	h->data.off = h->data.len = 0;
	for (;;) {
		if (n == 0)
			ok = dir_put(req, &h->data, size, ".", FS_UNKNOWN_INO, 1);
		else if (n == 1)
			ok = dir_put(req, &h->data, size, "..", FS_UNKNOWN_INO, 2);
		else if ((j = broker_scursor_job(b, &h->scursor)) == NULL)
			break;
		else {
			name = fs_name_encode(j->key);
			ok = dir_put_mode(req, &h->data, size, name,
			    owner_ino(owner_of_job(fs, j), lk), n + 1, S_IFLNK);
			free(name);
			if (ok)
				broker_scursor_advance(&h->scursor);
		}
		if (!ok)
			break;
		n++;
	}
	h->dir_first = off;
	h->dir_last = n;
	fuse_reply_buf(req, h->data.data, h->data.len);
}

/* fs_readlink: where a state directory's link points. */
void
fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	struct owner *o;
	enum node_kind k = node_kind_of(fs, ino, &o);
	char *target;

	if ((k != NK_JOB_LINK && k != NK_JOB_TLINK) || !owner_alive(fs, o)) {
		fuse_reply_err(req, k == NK_NONE || o == NULL || !owner_alive(fs, o) ?
		    ENOENT : EINVAL);
		return;
	}
	target = fs_link_target(o->job, k);
	fuse_reply_readlink(req, target);
	free(target);
}

/* fs_opendir: take the listing now (but jobs/'s, read as it goes). */
void
fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct owner *o;
	enum node_kind k = node_kind_of(fs, ino, &o);
	struct handle *h;
	int rc;

	if ((rc = fs_handle_open(fs, k, o, fi)) != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	h = (struct handle *)(uintptr_t)fi->fh;
	if (fs_cluster_opendir(fs, req, h, fi))
		return;   /* jobs/ in cluster mode: Redis lists the others' */
	if (k != NK_JOBS && !NK_IS_STATE_DIR(k) && !NK_IS_TYPE_STATE_DIR(k) &&
	    (rc = fs_list(fs, req, k, o, &h->data)) != 0) {
		fs_handle_free(fs, h);
		fuse_reply_err(req, -rc);
		return;
	}
	if (fuse_reply_open(req, fi) != 0)
		fs_handle_free(fs, h);
}

/* fs_readdir: a slice of the listing (offsets are byte offsets into it), or jobs/'s next. */
void
fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	size_t len = buf_used(&h->data);

	(void)ino;
	if (h->kind == NK_JOBS)
		jobs_readdir(fuse_req_userdata(req), req, h, size, off);
	else if (NK_IS_STATE_DIR(h->kind) || NK_IS_TYPE_STATE_DIR(h->kind))
		states_readdir(fuse_req_userdata(req), req, h, size, off);
	else if (off < 0 || (size_t)off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, h->data.data + off,
		    len - (size_t)off < size ? len - (size_t)off : size);
}

/* fs_releasedir: drop the listing. */
void
fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fs_handle_free(fuse_req_userdata(req), (struct handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}
