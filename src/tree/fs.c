/*
 * fs.c — the FUSE tree: session glue and the namespace.
 *
 * The session is served from the daemon's one libev loop: an ev_io on the
 * session's /dev/fuse descriptor, fuse_session_receive_buf() and
 * fuse_session_process_buf() in its callback (libfuse's "custom event
 * loop support").  No FUSE worker threads and no locks on this path; a
 * read that must wait keeps its request and is answered later (fs_read.c).
 * Directories are fs_dir.c's.
 *
 *   /README /stats /refusals /types/T/{queue,workers,stats}
 *   /jobs/ID/{body,response,status,type,info} /channels/C
 *
 * Every handler turns its work into 0 or -errno and answers with exactly
 * one fuse_reply_* at the end.
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

static void fs_listen(struct server *);

#define FS_BATCH 64   /* requests per wake-up, so TCP peers get their turn */

const struct fixed_name root_names[] = {
	{ "README", NK_README }, { "stats", NK_STATS }, { "types", NK_TYPES },
	{ "jobs", NK_JOBS }, { "channels", NK_CHANNELS },
	{ "refusals", NK_REFUSALS }, { "state", NK_STATES }, { NULL, 0 },
};
const struct fixed_name type_names[] = {
	{ "queue", NK_TYPE_QUEUE }, { "workers", NK_TYPE_WORKERS },
	{ "stats", NK_TYPE_STATS },
	/* the job lifecycle; "paused" only while T is */
	{ "dead", NK_TYPE_DEAD }, { "delayed", NK_TYPE_DELAYED },
	{ "kick", NK_TYPE_KICK }, { "limit", NK_TYPE_LIMIT },
	{ "submit", NK_TYPE_SUBMIT }, { "retries", NK_TYPE_RETRIES },
	{ "state", NK_TYPE_STATES },   /* jobs by state */
	{ "schedules", NK_TYPE_SCHEDULES },   /* repeating jobs */
	{ "paused", NK_TYPE_PAUSED }, { NULL, 0 },
};

/* type_paused: the type an owner names exists and is paused. */
bool
type_paused(struct fs *fs, const struct owner *o)
{
	struct jtype *t = broker_type(fs->srv->broker, o->name, false);

	return t != NULL && t->paused;
}
const struct fixed_name job_names[] = {
	{ "body", NK_JOB_BODY }, { "response", NK_JOB_RESPONSE },
	{ "status", NK_JOB_STATUS }, { "type", NK_JOB_TYPE },
	{ "info", NK_JOB_INFO }, { "log", NK_JOB_LOG },
	{ "progress", NK_JOB_PROGRESS }, { NULL, 0 },
};

/* fixed_lookup: the kind a fixed name stands for in table t, or NK_NONE. */
static enum node_kind
fixed_lookup(const struct fixed_name *t, const char *name)
{
	for (; t->name != NULL; t++)
		if (strcmp(t->name, name) == 0)
			return t->kind;
	return 0;
}

/* --------------------------------------------------------------- lookup */

/*
 * state_lookup: a name in state/, types/T/state or one of their
 * directories (jobs by state): a state's directory, or the link to a job
 * that is in that state now; -ENOTDIR in anything else.
 */
static int
state_lookup(struct fs *fs, fuse_ino_t parent, struct owner *po, const char *name,
    struct node **n, fuse_ino_t *fixed)
{
	enum node_kind k = node_kind_of(fs, parent, &po);
	struct broker *b = fs->srv->broker;
	struct job *j;
	char *key;
	int s;

	if (k == NK_STATES || k == NK_TYPE_STATES) {
		if ((s = jls_parse(name)) == JLS_NONE ||
		    (po != NULL && !owner_alive(fs, po)))
			return -ENOENT;
		if (k == NK_STATES)
			*fixed = NK_STATE_DIR0 + s - 1;
		else
			*n = node_get(fs, po, NK_TYPE_STATE_DIR0 + s - 1);
		return 0;
	}
	if (!NK_IS_STATE_DIR(k) && !NK_IS_TYPE_STATE_DIR(k))
		return -ENOTDIR;
	s = NK_IS_STATE_DIR(k) ? (int)(k - NK_STATE_DIR0 + 1) : (int)(k - NK_TYPE_STATE_DIR0 + 1);
	if ((key = id_decode(name)) == NULL)
		return -ENOENT;
	j = broker_find(b, key);
	free(key);
	if (j == NULL || !job_in_lstate(j, s) ||
	    (po != NULL && strcmp(j->type->name, po->name) != 0))
		return -ENOENT;
	*n = node_get(fs, owner_job(fs, j), NK_IS_STATE_DIR(k) ? NK_JOB_LINK : NK_JOB_TLINK);
	return 0;
}

/* fs_lookup_child: find parent/name; *n is NULL and *fixed set for fixed inodes. */
int
fs_lookup_child(struct fs *fs, fuse_ino_t parent, const char *name,
    struct node **n, fuse_ino_t *fixed)
{
	struct broker *b = fs->srv->broker;
	struct owner *po;
	enum node_kind k;
	struct job *j;
	char *key;

	*n = NULL;
	switch (node_kind_of(fs, parent, &po)) {
	case NK_ROOT:
		if ((*fixed = fixed_lookup(root_names, name)) == NK_NONE)
			return -ENOENT;
		return 0;
	case NK_TYPES:
		if (broker_type(b, name, false) == NULL)
			return -ENOENT;
		*n = node_get(fs, owner_named(fs, OW_TYPE, name), NK_TYPE_DIR);
		return 0;
	case NK_JOBS:
		if ((key = id_decode(name)) == NULL)
			return -ENOENT;
		j = broker_find(b, key);
		free(key);
		if (j == NULL)
			return -ENOENT;
		*n = node_get(fs, owner_job(fs, j), NK_JOB_DIR);
		return 0;
	case NK_CHANNELS:
		if (chan_find(fs->srv->broker, name) == NULL)
			return -ENOENT;
		*n = node_get(fs, owner_named(fs, OW_CHAN, name), NK_CHAN);
		return 0;
	case NK_TYPE_DIR:
	case NK_JOB_DIR:
		k = fixed_lookup(po->kind == OW_JOB ? job_names : type_names, name);
		if (k == NK_NONE || !owner_alive(fs, po) ||
		    (k == NK_TYPE_PAUSED && !type_paused(fs, po)))
			return -ENOENT;
		*n = node_get(fs, po, k);
		return 0;
	case NK_NONE:
		return -ENOENT;
	default:
		return state_lookup(fs, parent, po, name, n, fixed);
	}
}

/* fs_lookup: every path walk; the entry given back counts one kernel reference. */
static void
fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct node *n;
	fuse_ino_t fixed = 0;
	int rc = fs_lookup_child(fs, parent, name, &n, &fixed);

	if (rc == -ENOENT && fs_cluster_lookup(fs, req, parent, name, false))
		return;   /* another daemon's job, maybe: Redis answers (fs_cluster.c) */
	if (rc != 0)
		fuse_reply_err(req, -rc);
	else
		node_reply_entry(fs, req, n, fixed);
}

/* fs_forget: the kernel dropped references; the node may go. */
static void
fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(fuse_req_userdata(req), ino, nlookup);
	fuse_reply_none(req);
}

/* fs_forget_multi: many forgets at once (the kernel batches them). */
static void
fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fs *fs = fuse_req_userdata(req);
	size_t i;

	for (i = 0; i < count; i++)
		node_forget(fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* fs_getattr: attributes of any inode we gave; dynamic ones are not cached. */
static void
fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct owner *o;
	enum node_kind k = node_kind_of(fs, ino, &o);
	struct stat st;

	(void)fi;
	if (k == NK_NONE) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	node_stat(fs, ino, k, o, &st);
	fuse_reply_attr(req, &st, k <= FS_FIXED_MAX ? FS_TTL_FIXED : 0);
}

/*
 * fs_setattr: only what shells do to files they write: truncate a queue or
 * channel (echo > queue), or touch times (touch channels/C).
 */
static void
fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
    struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct owner *o;
	enum node_kind k = node_kind_of(fs, ino, &o);
	struct stat st;
	int rc = 0;

	(void)attr;
	(void)fi;
	if (k == NK_NONE)
		rc = -ENOENT;
	else if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
		rc = -EPERM;
	else if ((to_set & FUSE_SET_ATTR_SIZE) && !NK_TYPE_WRITABLE(k) && k != NK_CHAN)
		rc = -EACCES;
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	node_stat(fs, ino, k, o, &st);
	fuse_reply_attr(req, &st, k <= FS_FIXED_MAX ? FS_TTL_FIXED : 0);
}

/* ------------------------------------------------------- mkdir and rmdir */

/* fs_mkdir: mkdir types/T makes type T, kept until rmdir or exit. */
static void
fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs *fs = fuse_req_userdata(req);
	struct broker *b = fs->srv->broker;
	struct owner *po;
	struct jtype *t;

	(void)mode;
	if (node_kind_of(fs, parent, &po) != NK_TYPES) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (!type_name_valid(name, strlen(name))) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (broker_type(b, name, false) != NULL) {
		fuse_reply_err(req, EEXIST);
		return;
	}
	t = broker_type(b, name, true);
	broker_type_pin(b, t);
	log_info("type %s: made in the tree", name);
	node_reply_entry(fs, req,
	    node_get(fs, owner_named(fs, OW_TYPE, name), NK_TYPE_DIR), 0);
}

/* fs_rmdir_err: rmdir jobs/ID forgets (and cancels) the job; types/T unmakes T. */
int
fs_rmdir_err(struct fs *fs, fuse_ino_t parent, const char *name)
{
	struct broker *b = fs->srv->broker;
	struct owner *po;
	struct jtype *t;
	struct job *j;
	char *key;

	switch (node_kind_of(fs, parent, &po)) {
	case NK_JOBS:
		if ((key = id_decode(name)) == NULL)
			return -ENOENT;
		j = broker_find(b, key);
		free(key);
		if (j == NULL)
			return -ENOENT;
		log_info("job %s: removed in the tree (%s)", j->key,
		    job_state_name(j->state));
		broker_forget(b, j);
		return 0;
	case NK_TYPES:
		if ((t = broker_type(b, name, false)) == NULL)
			return -ENOENT;
		if (t->refs > 0 || broker_type_configured(t))
			return -EBUSY;  /* it has jobs or workers, or is paused,
			                   limited or given default retries */
		broker_type_unpin(b, t);
		return 0;
	case NK_NONE:
		return -ENOENT;
	default:
		return -EPERM;
	}
}

/* fs_rmdir: see fs_rmdir_err. */
static void
fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	int rc = fs_rmdir_err(fs, parent, name);

	if (rc == -ENOENT && fs_cluster_lookup(fs, req, parent, name, true))
		return;
	fuse_reply_err(req, -rc);
}

/*
 * fs_unlink_err: rm channels/C unmakes a channel made in the tree; one that
 * has subscribers is EBUSY (it lives while they do).  Nothing else in the
 * tree is a file one removes.
 */
static int
fs_unlink_err(struct fs *fs, fuse_ino_t parent, const char *name)
{
	struct owner *po;
	struct chan *ch;
	struct jtype *t;

	switch (node_kind_of(fs, parent, &po)) {
	case NK_TYPE_DIR:
		/* rm types/T/paused resumes T */
		if (strcmp(name, "paused") != 0)
			return -EPERM;
		if (!owner_alive(fs, po) || !type_paused(fs, po))
			return -ENOENT;
		t = broker_type(fs->srv->broker, po->name, false);
		log_info("type %s: resumed in the tree", po->name);
		broker_type_pause(fs->srv->broker, t, false);
		return 0;
	case NK_CHANNELS:
		if ((ch = chan_find(fs->srv->broker, name)) == NULL)
			return -ENOENT;
		if (ch->nsubs > 0)
			return -EBUSY;
		log_info("channel %s: removed in the tree", name);
		chan_unpin(fs->srv->broker, ch);
		return 0;
	case NK_NONE:
		return -ENOENT;
	default:
		return -EPERM;
	}
}

/* fs_unlink: see fs_unlink_err. */
static void
fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -fs_unlink_err(fuse_req_userdata(req), parent, name));
}

/* -------------------------------------------------- channels: creating */

/* fs_chan_create: channels/C made by touch or a write; kept until rm or exit. */
static int
fs_chan_create(struct fs *fs, fuse_ino_t parent, const char *name, mode_t mode,
    struct node **n)
{
	struct owner *po;
	struct jtype *t;

	if (node_kind_of(fs, parent, &po) == NK_TYPE_DIR) {
		/* touch types/T/paused pauses T */
		if (strcmp(name, "paused") != 0)
			return -EACCES;
		if (!owner_alive(fs, po))
			return -ENOENT;
		t = broker_type(fs->srv->broker, po->name, false);
		if (!t->paused)
			log_info("type %s: paused in the tree", po->name);
		broker_type_pause(fs->srv->broker, t, true);
		*n = node_get(fs, po, NK_TYPE_PAUSED);
		return 0;
	}
	if (node_kind_of(fs, parent, &po) != NK_CHANNELS)
		return -EACCES;
	if (!S_ISREG(mode))
		return -EPERM;
	if (!type_name_valid(name, strlen(name)))
		return -EINVAL;  /* channel names follow the rules of type names */
	chan_get(fs->srv->broker, name, true);
	log_info("channel %s: made in the tree", name);
	*n = node_get(fs, owner_named(fs, OW_CHAN, name), NK_CHAN);
	return 0;
}

/* fs_mknod: mknod channels/C, as create without opening. */
static void
fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fs *fs = fuse_req_userdata(req);
	struct node *n;
	int rc = fs_chan_create(fs, parent, name, mode, &n);

	(void)rdev;
	if (rc != 0)
		fuse_reply_err(req, -rc);
	else
		node_reply_entry(fs, req, n, 0);
}

/* fs_create: open(O_CREAT) of a new channels/C (touch, echo >). */
static void
fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;
	struct node *n;
	int rc = fs_chan_create(fs, parent, name, S_IFREG | (mode & 07777), &n);

	if (rc == 0 && (rc = fs_handle_open(fs, n->kind, n->owner, fi)) != 0)
		node_forget(fs, n->ino, 0);  /* frees it if the kernel never had it */
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	memset(&e, 0, sizeof e);
	e.ino = n->ino;
	node_stat(fs, n->ino, n->kind, n->owner, &e.attr);
	n->nlookup++;
	if (fuse_reply_create(req, &e, fi) != 0) {
		fs_handle_free(fs, (struct handle *)(uintptr_t)fi->fh);
		node_forget(fs, n->ino, 1);
	}
}

static const struct fuse_lowlevel_ops fs_ops = {
	.lookup       = fs_lookup,
	.readlink     = fs_readlink,
	.forget       = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr      = fs_getattr,
	.setattr      = fs_setattr,
	.mknod        = fs_mknod,
	.mkdir        = fs_mkdir,
	.unlink       = fs_unlink,
	.rmdir        = fs_rmdir,
	.open         = fs_open,
	.read         = fs_read,
	.write        = fs_write,
	.flush        = fs_flush,
	.release      = fs_release,
	.opendir      = fs_opendir,
	.readdir      = fs_readdir,
	.releasedir   = fs_releasedir,
	.create       = fs_create,
	.poll         = fs_poll,
};

/* ------------------------------------------------------- session glue */

/* fs_receive: answer up to FS_BATCH waiting requests; false once the session ended. */
static bool
fs_receive(struct fs *fs)
{
	int i, res;

	for (i = 0; i < FS_BATCH; i++) {
		res = fuse_session_receive_buf(fs->se, &fs->fbuf);
		if (res == -EINTR || res == -EAGAIN)
			return true;
		if (res <= 0 || fuse_session_exited(fs->se))
			return false;
		fuse_session_process_buf(fs->se, &fs->fbuf);
		/* Interrupted readers are answered here, outside libfuse's locks. */
		fs_flush_interrupted(fs);
	}
	return true;
}

/* fs_io_cb: /dev/fuse is readable; a session that ended stops the daemon. */
static void
fs_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fs *fs = w->data;

	(void)revents;
	if (fs_receive(fs))
		return;
	log_info("%s", "the tree was unmounted: shutting down");
	ev_io_stop(loop, w);
	ev_break(loop, EVBREAK_ALL);
}

/* fs_process: wait a little for requests and answer them (used while stopping). */
void
fs_process(struct fs *fs)
{
	struct pollfd pfd = { .fd = fuse_session_fd(fs->se), .events = POLLIN };
	struct timespec pause = { 0, 10 * 1000 * 1000 };

	if (poll(&pfd, 1, 50) > 0 && !fs_receive(fs))
		nanosleep(&pause, NULL);  /* connection gone: the thread fails fast */
}

/* mountinfo_unescape: a mountinfo path field, its \040-style escapes undone. */
static void
mountinfo_unescape(char *s)
{
	char *out = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else
			*out++ = *s;
	}
	*out = '\0';
}

/*
 * jobfs_mounted_at: /proc/self/mountinfo lists a jobfs tree mounted on
 * path (file system type fuse.jobfs, or a fuse mount named jobfs).
 */
static bool
jobfs_mounted_at(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, *sep, *mnt, *type, *source, *save;
	size_t cap = 0;
	bool found = false;
	int i;

	if (f == NULL)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - TYPE SOURCE ... */
		if ((sep = strstr(line, " - ")) == NULL)
			continue;
		*sep = '\0';
		mnt = strtok_r(line, " ", &save);
		for (i = 0; i < 4 && mnt != NULL; i++)
			mnt = strtok_r(NULL, " ", &save);
		type = strtok_r(sep + 3, " ", &save);
		source = strtok_r(NULL, " \n", &save);
		if (mnt == NULL || type == NULL || source == NULL)
			continue;
		mountinfo_unescape(mnt);
		if (strcmp(mnt, path) != 0)
			continue;
		found = strcmp(type, "fuse.jobfs") == 0 ||
		    (strncmp(type, "fuse", 4) == 0 && strcmp(source, "jobfs") == 0);
	}
	free(line);
	fclose(f);
	return found;
}

/* abs_path: mnt made absolute without looking inside it (it may be dead). */
static char *
abs_path(const char *mnt)
{
	char *cwd, *p;

	if ((p = realpath(mnt, NULL)) != NULL || mnt[0] == '/')
		return p != NULL ? p : xstrdup(mnt);
	if ((cwd = getcwd(NULL, 0)) == NULL)
		return xstrdup(mnt);
	p = xprintf("%s/%s", cwd, mnt);
	free(cwd);
	return p;
}

/*
 * fs_detach_stale: a daemon killed without unmounting leaves a mount whose
 * every access fails with ENOTCONN.  stat() of the mountpoint may still
 * succeed, from the attributes the kernel cached, so look for a jobfs
 * mount there in /proc/self/mountinfo and ask it with statfs(), which the
 * kernel never answers from a cache.  A dead one is detached lazily (those
 * that a series of such deaths stacked up, too); a live one is left alone
 * and the mount that follows will fail or stack, as for any mountpoint.
 */
static void
fs_detach_stale(const char *mountpoint)
{
	char *mnt = abs_path(mountpoint);
	struct statfs sfs;
	pid_t pid;
	int status, i;

	for (i = 0; i < 16 && jobfs_mounted_at(mnt); i++) {
		if (statfs(mnt, &sfs) == 0 || errno != ENOTCONN)
			break;
		log_warn("%s: stale mount of a daemon that died: detaching it", mnt);
		if (umount2(mnt, MNT_DETACH) == 0)
			continue;
		/* Not root: the setuid helper may detach our own mounts. */
		if ((pid = fork()) == 0) {
			execlp("fusermount3", "fusermount3", "-u", "-z", "--", mnt,
			    (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			log_warn("%s: cannot detach the stale mount", mnt);
			break;
		}
	}
	free(mnt);
}

/*
 * fs_mount_args: "-o subtype=jobfs,fsname=jobfs,default_permissions[,user
 * options]" (theirs win).  default_permissions is always there: the kernel
 * enforces the modes the tree shows (node_mode), so -o allow_other never
 * opens the tree wider than its modes say.
 */
static void
fs_mount_args(struct fuse_args *args, const char *opts)
{
	char *o = xprintf("subtype=jobfs,fsname=jobfs,default_permissions%s%s", opts != NULL &&
	    *opts != '\0' ? "," : "", opts != NULL ? opts : "");

	fuse_opt_add_arg(args, "jobfs");
	fuse_opt_add_arg(args, "-o");
	fuse_opt_add_arg(args, o);
	free(o);
}

/*
 * fs_mount: mount the tree (before daemonising, so the mount is in place
 * when the parent returns).  Nothing is served until fs_start().
 */
int
fs_mount(struct server *srv, const char *mountpoint, const char *opts)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fs *fs = xcalloc(1, sizeof *fs);
	char *path = NULL;
	int fd;

	fs->srv = srv;
	fs->next_ino = FS_FIRST_INO;
	fs->uid = getuid();
	fs->gid = srv->opt.group_set ? srv->opt.group_gid : getgid();
	fs->grouped = srv->opt.group_set;
	TAILQ_INIT(&fs->handles);
	TAILQ_INIT(&fs->interrupted);
	TAILQ_INIT(&fs->held);
	TAILQ_INIT(&fs->asking);
	STAILQ_INIT(&fs->invals);
	pthread_mutex_init(&fs->mu, NULL);
	pthread_cond_init(&fs->cv, NULL);
	fs_detach_stale(mountpoint);
	/* Absolute: daemonising moves us to /, and unmounting needs the path. */
	if ((path = realpath(mountpoint, NULL)) == NULL) {
		log_err("%s: %s", mountpoint, strerror(errno));
		goto fail;
	}
	fs_mount_args(&args, opts);
	fs->se = fuse_session_new(&args, &fs_ops, sizeof fs_ops, fs);
	fuse_opt_free_args(&args);
	if (fs->se == NULL) {
		log_err("%s: bad mount options: %s", mountpoint, opts != NULL ? opts : "");
		goto fail;
	}
	if (fuse_session_mount(fs->se, path) != 0) {
		log_err("%s: cannot mount", path);
		goto fail_session;
	}
	fd = fuse_session_fd(fs->se);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	ev_io_init(&fs->io, fs_io_cb, fd, EV_READ);
	fs->io.data = fs;
	srv->fs = fs;
	fs_listen(srv);
	log_info("tree mounted on %s", path);
	free(path);
	return 0;

fail_session:
	fuse_session_destroy(fs->se);
fail:
	free(path);
	pthread_cond_destroy(&fs->cv);
	pthread_mutex_destroy(&fs->mu);
	free(fs);
	return -1;
}

/* fs_start: after daemonising (threads do not survive fork): serve. */
int
fs_start(struct server *srv)
{
	struct fs *fs = srv->fs;

	if (fs == NULL)
		return -1;
	if (notify_start(fs) != 0)
		return -1;
	ev_io_start(srv->loop, &fs->io);
	fs->started = true;
	return 0;
}

/*
 * fs_unmount: answer every parked read, stop the notifier (answering
 * requests meanwhile), unmount, and free every node and open file.
 */
void
fs_unmount(struct server *srv)
{
	struct fs *fs = srv->fs;

	if (fs == NULL)
		return;
	fs->stopping = true;
	ev_io_stop(srv->loop, &fs->io);
	fs_fail_waiters(fs, ENOTCONN);
	notify_stop(fs);
	fs_fail_waiters(fs, ENOTCONN);
	fs_cluster_fail(fs);
	fs_release_held(fs, broker_durable(srv->broker), EIO);
	fs_wake_durable(fs, UINT64_MAX);  /* only lets go of the jobs */
	srv->fs = NULL;  /* the tree's listeners: nothing to tell any more */
	fs_nodes_free(fs);
	fs_refusals_free(fs);
	fuse_session_unmount(fs->se);
	fuse_session_destroy(fs->se);
	free(fs->fbuf.mem);
	pthread_cond_destroy(&fs->cv);
	pthread_mutex_destroy(&fs->mu);
	free(fs);
	log_info("%s", "tree unmounted");
}

static bool
tree_wanted(const struct options *opt)
{
	return opt->mountpoint != NULL;
}

/* tree_start: mount before the daemon forks, so that a mount that fails
 * is an exit status the caller sees. */
static int
tree_start(struct server *srv)
{
	return fs_mount(srv, srv->opt.mountpoint, srv->opt.mount_opts) < 0 ?
	    EXIT_MOUNT : 0;
}

static int
tree_run(struct server *srv)
{
	return fs_start(srv) < 0 ? EXIT_MOUNT : 0;
}

const struct module tree_module = {
	.name = "tree",
	.wanted = tree_wanted,
	.start = tree_start,
	.run = tree_run,
	.stop = fs_unmount,
};

/* ------------------------------------------------- the broker's events */

/* on_job: new state or partial result: its response readers wake. */
static void
on_job(void *ctx, struct job *j)
{
	struct server *srv = ctx;

	if (srv->fs != NULL)
		fs_job_wake(srv->fs, j);
}

static void
on_job_worker(void *ctx, struct job *j, struct worker *w)
{
	(void)w;
	on_job(ctx, j);
}

static void
on_partial(void *ctx, struct job *j, const char *body, size_t len)
{
	(void)body;
	(void)len;
	on_job(ctx, j);
}

/* on_forgotten: the job left the table: its directory goes. */
static void
on_forgotten(void *ctx, struct job *j)
{
	struct server *srv = ctx;
	struct owner *o;
	char *name;

	if (srv->fs == NULL || (o = owner_of_job(srv->fs, j)) == NULL ||
	    o->nodes[0] == NULL)
		return;  /* the kernel never saw it: nothing to invalidate */
	name = fs_name_encode(j->key);
	notify_entry(srv->fs, NK_JOBS, o->nodes[0]->ino, name);
	free(name);
}

/* on_type_removed: the type was freed: its directory goes. */
static void
on_type_removed(void *ctx, struct jtype *t)
{
	struct server *srv = ctx;
	struct owner *o;

	if (srv->fs == NULL)
		return;
	o = owner_find(srv->fs, OW_TYPE, t->name);
	if (o != NULL && o->nodes[0] != NULL)
		notify_entry(srv->fs, NK_TYPES, o->nodes[0]->ino, t->name);
}

/* on_type_changed: resumed: types/T/paused goes, even from
 * the kernel's cache of entries. */
static void
on_type_changed(void *ctx, struct jtype *t)
{
	struct server *srv = ctx;
	struct owner *o;
	fuse_ino_t ino;

	if (srv->fs == NULL || t->paused ||
	    (o = owner_find(srv->fs, OW_TYPE, t->name)) == NULL || o->nodes[0] == NULL ||
	    (ino = owner_ino(o, NK_TYPE_PAUSED)) == FS_UNKNOWN_INO)
		return;
	notify_entry(srv->fs, o->nodes[0]->ino, ino, "paused");
}

/* on_durable: writes held for the store return; readers of endings it
 * made durable wake. */
static void
on_durable(void *ctx, uint64_t mark)
{
	struct server *srv = ctx;

	if (srv->fs != NULL) {
		fs_release_held(srv->fs, mark, 0);
		fs_wake_durable(srv->fs, mark);
	}
}

/* fs_listen: the tree listens to the broker and to the channels. */
static void
fs_listen(struct server *srv)
{
	struct broker_listener l = {
		.ctx = srv,
		.job_submitted = on_job,
		.job_dispatched = on_job_worker,
		.job_requeued = on_job,
		.job_partial = on_partial,
		.job_finished = on_job_worker,
		.job_forgotten = on_forgotten,
		.type_removed = on_type_removed,
		.durable = on_durable,
		.type_changed = on_type_changed,
	};

	broker_listen(srv->broker, &l);
	chan_listen(srv->broker, fs_chan_message, srv);
}
