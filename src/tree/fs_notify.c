/*
 * fs_notify.c — the one thread that tells the kernel an entry is gone.
 *
 * fuse_lowlevel_notify_delete() takes the parent directory's lock in the
 * kernel.  Called on the loop thread while a lookup in that directory
 * waits for the loop thread, it never returns.  So the loop only queues
 * invalidations here, and this thread, which answers nothing, sends them:
 * at worst it waits until the loop has answered those lookups.
 *
 * This is the daemon's only other thread; it touches nothing but this
 * queue and the session's notify calls, which libfuse makes safe to call
 * from another thread.  The queue is guarded by fs->mu, the daemon's one
 * lock: the loop takes it in notify_entry() only when an entry the kernel
 * has seen goes away (a job forgotten, a type freed), for the time of a
 * list insert, and never waits on it for longer (this thread holds it only
 * to take an item off, never across fuse_lowlevel_notify_delete()).  It is
 * not on the path of a frame, a dispatch or a FUSE request.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tree/fs.h"

/* notify_main: the thread: send queued invalidations until told to quit. */
static void *
notify_main(void *arg)
{
	struct fs *fs = arg;
	struct inval *iv;
	int rc;

	pthread_mutex_lock(&fs->mu);
	for (;;) {
		while (!fs->quit && STAILQ_EMPTY(&fs->invals))
			pthread_cond_wait(&fs->cv, &fs->mu);
		if (fs->quit)
			break;
		iv = STAILQ_FIRST(&fs->invals);
		STAILQ_REMOVE_HEAD(&fs->invals, entry);
		pthread_mutex_unlock(&fs->mu);
		/* With the child's number, only the dentry still naming it goes. */
		rc = fuse_lowlevel_notify_delete(fs->se, iv->parent, iv->child,
		    iv->name, iv->namelen);
		if (rc != 0 && rc != -ENOENT)
			log_debug("invalidate %s: %s", iv->name, strerror(-rc));
		free(iv);
		pthread_mutex_lock(&fs->mu);
	}
	fs->done = true;
	pthread_mutex_unlock(&fs->mu);
	return NULL;
}

/* notify_start: start the thread, with every signal left to the loop. */
int
notify_start(struct fs *fs)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&fs->thread, NULL, notify_main, fs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_err("cannot start the invalidation thread: %s", strerror(rc));
		return -1;
	}
	fs->thread_running = true;
	return 0;
}

/*
 * notify_stop: make the thread quit, dropping what it has not sent (the
 * tree is going away).  Its last notification may wait for the kernel's
 * directory lock, held by requests only the loop answers: so keep
 * answering requests until it is done, then join it.
 */
void
notify_stop(struct fs *fs)
{
	struct inval *iv;
	bool done;

	if (!fs->thread_running)
		return;
	pthread_mutex_lock(&fs->mu);
	fs->quit = true;
	pthread_cond_signal(&fs->cv);
	pthread_mutex_unlock(&fs->mu);
	for (;;) {
		pthread_mutex_lock(&fs->mu);
		done = fs->done;
		pthread_mutex_unlock(&fs->mu);
		if (done)
			break;
		fs_process(fs);
	}
	pthread_join(fs->thread, NULL);
	fs->thread_running = false;
	while ((iv = STAILQ_FIRST(&fs->invals)) != NULL) {
		STAILQ_REMOVE_HEAD(&fs->invals, entry);
		free(iv);
	}
}

/*
 * notify_entry: queue "parent/name, which was inode child, is gone".
 * Called from the loop thread only.  It locks fs->mu for a list insert;
 * the thread never holds that lock while it waits on the kernel, so this
 * never waits for long.
 */
void
notify_entry(struct fs *fs, fuse_ino_t parent, fuse_ino_t child, const char *name)
{
	size_t len = strlen(name);
	struct inval *iv;

	if (!fs->thread_running || fs->stopping)
		return;
	iv = xmalloc(sizeof *iv + len + 1);
	iv->parent = parent;
	iv->child = child;
	iv->namelen = len;
	memcpy(iv->name, name, len + 1);
	pthread_mutex_lock(&fs->mu);
	STAILQ_INSERT_TAIL(&fs->invals, iv, entry);
	pthread_cond_signal(&fs->cv);
	pthread_mutex_unlock(&fs->mu);
}
