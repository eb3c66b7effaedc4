/*
 * fs_node.c — the inode table: which number means what, and for how long.
 *
 * The kernel counts the entries it was given (lookup, mkdir, mknod,
 * create) and gives them back with forget; a node lives exactly that
 * long, so the table holds only what the kernel holds, however many jobs
 * pass through.  Numbers come from a 64-bit counter and are never reused,
 * so a forget that arrives late can only miss, never hit the wrong node.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tree/fs.h"

/* node_slot: where a dynamic node sits in its owner's nodes[]. */
static int
node_slot(enum node_kind k)
{
	if (k >= NK_JOB_DIR && k <= NK_JOB_PROGRESS)
		return k - NK_JOB_DIR;
	if (k >= NK_TYPE_DIR && k <= NK_TYPE_STATS)
		return k - NK_TYPE_DIR;
	if (k >= NK_TYPE_DEAD && k <= NK_TYPE_SCHEDULES)
		return k - NK_TYPE_DEAD + (NK_TYPE_STATS - NK_TYPE_DIR + 1);
	/* jobs by state: after those */
	if (k >= NK_TYPE_STATES && k <= NK_TYPE_STATE_DIR_LAST)
		return k - NK_TYPE_STATES + (NK_TYPE_STATS - NK_TYPE_DIR + 1) +
		    (NK_TYPE_SCHEDULES - NK_TYPE_DEAD + 1);
	if (k == NK_JOB_LINK || k == NK_JOB_TLINK)
		return k - NK_JOB_LINK + (NK_JOB_PROGRESS - NK_JOB_DIR + 1);
	return 0;
}

/* node_find: the node of a dynamic inode number, if the kernel still has it. */
struct node *
node_find(struct fs *fs, fuse_ino_t ino)
{
	struct node *n;
	uint64_t key = ino;

	HASH_FIND(hh, fs->nodes, &key, sizeof key, n);
	return n;
}

/*
 * node_kind_of: what inode ino is, and its owner (NULL for fixed ones).
 * Returns 0 for a number we do not know (forgotten, or never given).
 */
enum node_kind
node_kind_of(struct fs *fs, fuse_ino_t ino, struct owner **owner)
{
	struct node *n;

	*owner = NULL;
	if (ino >= NK_ROOT && ino <= FS_FIXED_MAX)
		return (enum node_kind)ino;
	if ((n = node_find(fs, ino)) == NULL)
		return NK_NONE;
	*owner = n->owner;
	return n->kind;
}

/* node_get: the node of kind k under owner o, made if the kernel has none. */
struct node *
node_get(struct fs *fs, struct owner *o, enum node_kind k)
{
	int slot = node_slot(k);
	struct node *n = o->nodes[slot];

	if (n != NULL)
		return n;
	n = xcalloc(1, sizeof *n);
	n->ino = fs->next_ino++;
	n->kind = k;
	n->owner = o;
	o->nodes[slot] = n;
	o->nnodes++;
	HASH_ADD(hh, fs->nodes, ino, sizeof n->ino, n);
	return n;
}

/* node_free: the kernel forgot n; its owner may go with it. */
static void
node_free(struct fs *fs, struct node *n)
{
	struct owner *o = n->owner;

	HASH_DEL(fs->nodes, n);
	o->nodes[node_slot(n->kind)] = NULL;
	o->nnodes--;
	free(n);
	owner_release(fs, o);
}

/* node_forget: the kernel dropped nlookup references; unknown inodes are ignored. */
void
node_forget(struct fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	struct node *n = node_find(fs, ino);

	if (n == NULL)
		return;
	if (nlookup >= n->nlookup)
		node_free(fs, n);
	else
		n->nlookup -= nlookup;
}

/*
 * owner_of_job: the owner of a job's nodes and files, if it has one.  Kept
 * in a table of the tree's own rather than in the job, since few of
 * millions of jobs are ever looked at in the tree.
 */
struct owner *
owner_of_job(struct fs *fs, const struct job *j)
{
	struct owner *o;

	if (fs->jobs == NULL)
		return NULL;
	HASH_FIND(hh, fs->jobs, &j, sizeof j, o);
	return o;
}

/* owner_job: the owner of a job's nodes and files, made on first use. */
struct owner *
owner_job(struct fs *fs, struct job *j)
{
	struct owner *o = owner_of_job(fs, j);

	if (o != NULL)
		return o;
	o = xcalloc(1, sizeof *o);
	o->kind = OW_JOB;
	o->job = j;
	TAILQ_INIT(&o->handles);
	job_ref(j);
	HASH_ADD(hh, fs->jobs, job, sizeof o->job, o);
	return o;
}

/* owner_find: the owner of a type or channel name, if any. */
struct owner *
owner_find(struct fs *fs, enum owner_kind kind, const char *name)
{
	struct owner *o;

	if (kind == OW_TYPE)
		HASH_FIND_STR(fs->types, name, o);
	else
		HASH_FIND_STR(fs->chans, name, o);
	return o;
}

/* owner_named: the owner for type or channel name, made on first use. */
struct owner *
owner_named(struct fs *fs, enum owner_kind kind, const char *name)
{
	struct owner *o = owner_find(fs, kind, name);

	if (o != NULL)
		return o;
	o = xcalloc(1, sizeof *o);
	o->kind = kind;
	o->name = xstrdup(name);
	TAILQ_INIT(&o->handles);
	if (kind == OW_TYPE)
		HASH_ADD_KEYPTR(hh, fs->types, o->name, strlen(o->name), o);
	else
		HASH_ADD_KEYPTR(hh, fs->chans, o->name, strlen(o->name), o);
	return o;
}

/* owner_release: free o once no node and no open file refer to it. */
void
owner_release(struct fs *fs, struct owner *o)
{
	struct job *j;

	if (o->nnodes > 0 || o->nhandles > 0)
		return;
	switch (o->kind) {
	case OW_JOB:
		j = o->job;
		HASH_DEL(fs->jobs, o);
		free(o);
		job_unref(fs->srv->broker, j);  /* may free the job, and its type */
		return;
	case OW_TYPE:
		HASH_DEL(fs->types, o);
		break;
	case OW_CHAN:
		HASH_DEL(fs->chans, o);
		break;
	}
	free(o->name);
	free(o);
}

/* owner_alive: does what o names still exist (a job still in the table)? */
bool
owner_alive(struct fs *fs, const struct owner *o)
{
	switch (o->kind) {
	case OW_JOB:
		return broker_find(fs->srv->broker, o->job->key) == o->job;
	case OW_TYPE:
		return broker_type(fs->srv->broker, o->name, false) != NULL;
	case OW_CHAN:
		return chan_find(fs->srv->broker, o->name) != NULL;
	}
	return false;
}

/* owner_ino: the inode number of o's node of kind k, if the kernel has one. */
fuse_ino_t
owner_ino(const struct owner *o, enum node_kind k)
{
	const struct node *n = o != NULL ? o->nodes[node_slot(k)] : NULL;

	return n != NULL ? n->ino : FS_UNKNOWN_INO;
}

/* kind_is_dir: directories, as opposed to files. */
bool
kind_is_dir(enum node_kind k)
{
	return k == NK_ROOT || k == NK_TYPES || k == NK_JOBS || k == NK_CHANNELS ||
	    k == NK_TYPE_DIR || k == NK_JOB_DIR || k == NK_STATES ||
	    NK_IS_STATE_DIR(k) || k == NK_TYPE_STATES || NK_IS_TYPE_STATE_DIR(k);
}

/* fs_link_target: where a state directory's link to j points (free it). */
char *
fs_link_target(const struct job *j, enum node_kind k)
{
	char *name = fs_name_encode(j->key);
	char *t = xprintf("%sjobs/%s", k == NK_JOB_TLINK ? "../../../../" : "../../", name);

	free(name);
	return t;
}

/* stat_time: t (seconds since the epoch) as all three times. */
static void
stat_time(struct stat *st, double t)
{
	st->st_mtim.tv_sec = (time_t)t;
	st->st_mtim.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
	st->st_ctim = st->st_atim = st->st_mtim;
}

/*
 * node_mode: who may do what in the tree (the kernel enforces it: the
 * mount has default_permissions).  The daemon's user may do everything.
 * Without --group, others may read everything and change nothing.  With
 * --group G, G's members may also submit (write a queue), mkdir a type
 * and publish (create and write channels), and others may do nothing.
 * Nobody but the daemon's user may rmdir (cancel) a job.
 */
mode_t
node_mode(const struct fs *fs, enum node_kind k)
{
	bool g = fs->grouped;

	switch (k) {
	case NK_TYPES:
	case NK_CHANNELS:
		return S_IFDIR | (g ? 0770 : 0755);
	case NK_TYPE_QUEUE:
	case NK_CHAN:
	case NK_TYPE_SUBMIT:    /* the job lifecycle: written */
	case NK_TYPE_KICK:
	case NK_TYPE_PAUSED:
	case NK_TYPE_LIMIT:
	case NK_TYPE_RETRIES:
		return S_IFREG | (g ? 0660 : 0644);
	case NK_JOB_LINK:       /* jobs by state */
	case NK_JOB_TLINK:
		return S_IFLNK | 0777;
	default:
		if (kind_is_dir(k))
			return S_IFDIR | (g ? 0750 : 0755);
		return S_IFREG | (g ? 0440 : 0444);
	}
}

/*
 * node_stat: the attributes of a node.  Files whose contents change have
 * size 0: they are read with direct_io, so the size is never used to stop
 * a read; body and type, which never change, show their real size.
 */
void
node_stat(struct fs *fs, fuse_ino_t ino, enum node_kind k, const struct owner *o,
    struct stat *st)
{
	const struct job *j = o != NULL && o->kind == OW_JOB ? o->job : NULL;
	double t = fs->srv->started;

	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	st->st_mode = node_mode(fs, k);
	st->st_nlink = kind_is_dir(k) ? 2 : 1;
	if (k == NK_README)
		st->st_size = (off_t)fs_readme_len();
	if (j != NULL) {
		t = job_finished(j) > 0 && k != NK_JOB_DIR && k != NK_JOB_BODY &&
		    k != NK_JOB_TYPE ? job_finished(j) : j->submitted;
		if (k == NK_JOB_BODY)
			st->st_size = (off_t)j->body_len + 1;
		else if (k == NK_JOB_TYPE)
			st->st_size = (off_t)strlen(j->type->name) + 1;
		else if (k == NK_JOB_LINK || k == NK_JOB_TLINK) {
			char *target = fs_link_target(j, k);

			st->st_size = (off_t)strlen(target);
			free(target);
		}
	}
	stat_time(st, t);
}

/*
 * node_reply_entry: answer a lookup-like request with node n (or the fixed
 * inode `fixed`), counting the reference the kernel now holds.  A reply the
 * kernel did not take (the request was interrupted) counts nothing.
 */
int
node_reply_entry(struct fs *fs, fuse_req_t req, struct node *n, fuse_ino_t fixed)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof e);
	if (n == NULL) {
		e.ino = fixed;
		e.entry_timeout = e.attr_timeout = FS_TTL_FIXED;
		node_stat(fs, fixed, (enum node_kind)fixed, NULL, &e.attr);
		return fuse_reply_entry(req, &e);
	}
	e.ino = n->ino;
	/* Channels vanish with their last subscriber, unannounced, and a
	 * state directory's link with its job's next state: no caching. */
	e.entry_timeout = n->kind == NK_CHAN || n->kind == NK_JOB_LINK ||
	    n->kind == NK_JOB_TLINK ? 0 : FS_TTL_ENTRY;
	e.attr_timeout = 0;
	node_stat(fs, n->ino, n->kind, n->owner, &e.attr);
	n->nlookup++;
	if (fuse_reply_entry(req, &e) != 0) {
		node_forget(fs, n->ino, 1);
		return -1;
	}
	return 0;
}

/* fs_name_encode: a job id or channel name as a file name (free it). */
char *
fs_name_encode(const char *key)
{
	char *out = xmalloc(id_encoded_len(key) + 1);

	id_encode(key, out);
	return out;
}

/* fs_nodes_free: at unmount, drop every node and open file. */
void
fs_nodes_free(struct fs *fs)
{
	struct node *n, *tmp;
	struct handle *h;

	while ((h = TAILQ_FIRST(&fs->handles)) != NULL)
		fs_handle_free(fs, h);
	HASH_ITER(hh, fs->nodes, n, tmp)
		node_free(fs, n);
}
