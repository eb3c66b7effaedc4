/*
 * fs.h — private to fs*.c: the FUSE tree's nodes, open files and the
 * invalidation thread.
 *
 * fs.c        session glue (mount, ev_io, unmount) and the namespace ops
 * fs_dir.c    directories: listings, opendir, readlink
 * fs_node.c   the inode table, owners (what a node or a file belongs to), stat
 * fs_files.c  open files: snapshots (contents), refusals, open and close
 * fs_read.c   streams: blocking reads, interrupts, poll, wakes
 * fs_write.c  line sinks: writes that submit, publish, kick, configure
 * fs_notify.c the one thread that sends entry invalidations to the kernel
 * fs_lines.c  bytes written to a queue or channel cut into JSON lines (no FUSE)
 */
#ifndef JOBFS_FS_H
#define JOBFS_FS_H

#include <pthread.h>
#include <sys/stat.h>

#include <fuse_lowlevel.h>

#include "tree/tree.h"

/* What a node is.  The fixed ones are their own inode numbers. */
enum node_kind {
	NK_NONE = 0,          /* an inode number we do not know */
	NK_ROOT = FUSE_ROOT_ID,
	NK_README,
	NK_STATS,
	NK_TYPES,
	NK_JOBS,
	NK_CHANNELS,
	NK_REFUSALS,          /* the last refused writes */
	/* jobs by state: state/ and its directories, state/S being
	 * NK_STATE_DIR0 + S - 1 (S an enum job_lstate): fixed inodes */
	NK_STATES,
	NK_STATE_DIR0,
	NK_STATE_DIR_LAST = NK_STATE_DIR0 + JLS_COUNT - 2,  /* last fixed inode */
	NK_TYPE_DIR,          /* types/T and its files: owner is a type name */
	NK_TYPE_QUEUE,
	NK_TYPE_WORKERS,
	NK_TYPE_STATS,
	NK_JOB_DIR,           /* jobs/ID and its files: owner is a job */
	NK_JOB_BODY,
	NK_JOB_RESPONSE,
	NK_JOB_STATUS,
	NK_JOB_TYPE,
	NK_JOB_INFO,
	NK_JOB_LOG,           /* what its worker's command printed */
	NK_JOB_PROGRESS,      /* its partial results, then EOF when it ends */
	NK_CHAN,              /* channels/C: owner is a channel name */
	/* the job lifecycle: more files of types/T */
	NK_TYPE_DEAD,         /* dead job ids, oldest first */
	NK_TYPE_DELAYED,      /* delayed job ids, in due order */
	NK_TYPE_KICK,         /* write ids: kick those dead jobs */
	NK_TYPE_PAUSED,       /* exists while T is paused: touch, rm */
	NK_TYPE_LIMIT,        /* read / write the concurrency limit */
	NK_TYPE_SUBMIT,       /* write JSON envelopes, one per line */
	NK_TYPE_RETRIES,      /* read / write default retries [backoff ms] */
	NK_TYPE_SCHEDULES,    /* its schedules (repeating jobs), one a line */
	/* jobs by state: types/T/state and types/T/state/S (owner: the
	 * type), and the symbolic links to jobs/ID in state/S and in
	 * types/T/state/S (owner: the job) */
	NK_TYPE_STATES,
	NK_TYPE_STATE_DIR0,
	NK_TYPE_STATE_DIR_LAST = NK_TYPE_STATE_DIR0 + JLS_COUNT - 2,
	NK_JOB_LINK,          /* state/S/ID -> ../../jobs/ID */
	NK_JOB_TLINK,         /* types/T/state/S/ID -> ../../../../jobs/ID */
};
#define NK_IS_STATE_DIR(k) ((k) >= NK_STATE_DIR0 && (k) <= NK_STATE_DIR_LAST)
#define NK_IS_TYPE_STATE_DIR(k) ((k) >= NK_TYPE_STATE_DIR0 && (k) <= NK_TYPE_STATE_DIR_LAST)
/* type files that take writes */
#define NK_TYPE_WRITABLE(k) ((k) == NK_TYPE_QUEUE || (k) == NK_TYPE_KICK || \
	(k) == NK_TYPE_PAUSED || (k) == NK_TYPE_LIMIT || (k) == NK_TYPE_SUBMIT || \
	(k) == NK_TYPE_RETRIES)
#define FS_FIXED_MAX   NK_STATE_DIR_LAST
#define FS_FIRST_INO   1024        /* dynamic inode numbers start here, never reused */
#define FS_UNKNOWN_INO 0xffffffffu /* listing entry the kernel has no inode for */
#define FS_REFUSALS_MAX 100       /* lines kept in /refusals */
#define FS_REFUSAL_LOG_BURST 5     /* refusals logged per log_interval() */
#define FS_OWNER_SLOTS 21          /* nodes per owner: a type dir, its 11
                                      files, state/ and its 8 directories (a
                                      job dir has 7, and 2 links) */

/* Entry and attribute lifetimes the kernel may cache, in seconds. */
#define FS_TTL_FIXED   3600.0
#define FS_TTL_ENTRY   1.0         /* jobs and types: invalidated when they go, too */

enum owner_kind { OW_JOB, OW_TYPE, OW_CHAN };

struct node;
struct handle;

/*
 * What dynamic nodes and open files belong to: one job (holding a job_ref
 * while anything points at it), or one type or channel, by name (types and
 * channels may be freed and made again; a name is never a dangling pointer).
 * Freed as soon as no node and no open file refer to it.
 */
struct owner {
	UT_hash_handle      hh;       /* fs->types or fs->chans by name, fs->jobs by job */
	enum owner_kind     kind;
	char               *name;     /* OW_TYPE, OW_CHAN */
	struct job         *job;      /* OW_JOB */
	struct node        *nodes[FS_OWNER_SLOTS];
	TAILQ_HEAD(, handle) handles; /* open files */
	unsigned            nnodes, nhandles;
};

/* One inode the kernel knows, alive while its lookup count is not zero. */
struct node {
	UT_hash_handle      hh;       /* fs->nodes, by ino */
	fuse_ino_t          ino;
	uint64_t            nlookup;
	enum node_kind      kind;
	struct owner       *owner;
};

/* A read(2) parked until its file has something to say. */
struct waiter {
	fuse_req_t          req;
	size_t              size;
	struct handle      *h;
	TAILQ_ENTRY(waiter) entry;
};

/* What was written to a queue or channel and not yet ended by a newline. */
struct lines {
	struct buf          pending;  /* the unfinished line */
	size_t              scanned;  /* bytes of it known to hold no newline */
};

/* One open file (fi->fh), or one open directory (its listing). */
struct handle {
	enum node_kind      kind;
	struct owner       *owner;    /* NULL for fixed files */
	int                 accmode;  /* O_RDONLY, O_WRONLY, O_RDWR */
	bool                filled;   /* data holds a snapshot */
	struct buf          data;     /* snapshot, listing, or unread stream bytes */
	struct lines        lines;    /* written bytes not yet ended by a newline */
	uint64_t            pos;      /* response: stream bytes already read */
	uint64_t            dropped;  /* channel: messages lost to a full buffer */
	struct job_cursor   cursor;   /* jobs/: where the listing goes on */
	struct state_cursor scursor;  /* a state directory's: the same */
	off_t               dir_first; /* jobs/: offset the reply in data began at */
	off_t               dir_last;  /* jobs/: offset of the last entry in data */
	struct fuse_pollhandle *ph;   /* the newest poll, until notified */
	TAILQ_HEAD(, waiter) waiters;
	TAILQ_ENTRY(handle) owner_entry;
	TAILQ_ENTRY(handle) all_entry;
	struct buf          remote;   /* jobs/, cluster mode: every job's key,
	                                 one a line, as Redis listed them */
	size_t              remote_pos;  /* the next of those to list */
};

/* A write to a queue whose reply waits until its jobs are durable. */
struct held_reply {
	TAILQ_ENTRY(held_reply) entry;
	fuse_req_t          req;
	size_t              size;     /* write: bytes written; flush: 0 */
	bool                write;
	uint64_t            mark;     /* the store's mark it waits for */
};

/* A finished job whose response readers wake when mark is durable. */
struct durable_wake {
	struct job         *job;      /* a reference (job_ref) */
	uint64_t            mark;
};

/* An entry invalidation for the notifier thread. */
struct inval {
	STAILQ_ENTRY(inval) entry;
	fuse_ino_t          parent, child;
	size_t              namelen;
	char                name[];
};

struct fs {
	struct server      *srv;
	struct fuse_session *se;
	ev_io               io;
	struct fuse_buf     fbuf;
	bool                started;
	bool                stopping;
	struct node        *nodes;    /* by ino */
	uint64_t            next_ino;
	struct owner       *jobs;     /* by job pointer: jobs the kernel or a file holds */
	struct owner       *types;    /* by type name */
	struct owner       *chans;    /* by channel name */
	TAILQ_HEAD(, handle) handles; /* every open file and directory */
	TAILQ_HEAD(, waiter) interrupted;  /* answered after process_buf returns */
	TAILQ_HEAD(, held_reply) held;     /* replies waiting for the store */
	struct durable_wake *dwake;   /* finished jobs whose readers wait for */
	size_t              ndwake, dwake_cap;  /* the store (fs_wake_durable) */
	uid_t               uid;
	gid_t               gid;      /* --group's, if given */
	bool                grouped;  /* --group: its members submit and read, others nothing */

	/* notifier thread (fs_notify.c) */
	pthread_t           thread;
	bool                thread_running;
	pthread_mutex_t     mu;
	pthread_cond_t      cv;
	STAILQ_HEAD(, inval) invals;
	bool                quit, done;

	/* Writes to the tree that failed: why (set by whoever refuses, read
	 * by fs_refused), the last FS_REFUSALS_MAX as lines of /refusals (a
	 * ring, oldest at refusals_head once full), and their log lines. */
	char                why[256];
	char               *refusals[FS_REFUSALS_MAX];
	unsigned            nrefusals, refusals_head;
	struct log_limit    refusal_log;

	/* cluster mode: lookups and rmdirs of jobs/ID waiting for
	 * Redis (another daemon's job) */
	TAILQ_HEAD(, fs_asking) asking;
};

/* fs.c */
void fs_process(struct fs *);
int  fs_lookup_child(struct fs *, fuse_ino_t parent, const char *name, struct node **,
    fuse_ino_t *fixed);
int  fs_rmdir_err(struct fs *, fuse_ino_t parent, const char *name);
bool type_paused(struct fs *, const struct owner *);

/* The fixed names of a directory, NULL-ended (fs.c). */
struct fixed_name {
	const char     *name;
	enum node_kind  kind;
};

extern const struct fixed_name root_names[], type_names[], job_names[];

/* fs_dir.c */
void fs_readlink(fuse_req_t, fuse_ino_t);
void fs_opendir(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void fs_readdir(fuse_req_t, fuse_ino_t, size_t, off_t, struct fuse_file_info *);
void fs_releasedir(fuse_req_t, fuse_ino_t, struct fuse_file_info *);

/* fs_cluster.c: the tree on every host (cluster mode) */
bool  fs_cluster_lookup(struct fs *, fuse_req_t, fuse_ino_t parent, const char *name,
    bool rmdir);
bool  fs_cluster_read(struct fs *, fuse_req_t, struct handle *, size_t, off_t);
bool  fs_cluster_opendir(struct fs *, fuse_req_t, struct handle *,
    const struct fuse_file_info *);
char *fs_cluster_next_job(struct fs *, struct handle *, bool peek);
void  fs_cluster_fail(struct fs *);

/* fs_node.c */
struct node  *node_find(struct fs *, fuse_ino_t);
struct node  *node_get(struct fs *, struct owner *, enum node_kind);
void          node_forget(struct fs *, fuse_ino_t, uint64_t nlookup);
enum node_kind node_kind_of(struct fs *, fuse_ino_t, struct owner **);
struct owner *owner_job(struct fs *, struct job *);
struct owner *owner_of_job(struct fs *, const struct job *);
struct owner *owner_named(struct fs *, enum owner_kind, const char *name);
struct owner *owner_find(struct fs *, enum owner_kind, const char *name);
void          owner_release(struct fs *, struct owner *);
bool          owner_alive(struct fs *, const struct owner *);
fuse_ino_t    owner_ino(const struct owner *, enum node_kind);
bool          kind_is_dir(enum node_kind);
mode_t        node_mode(const struct fs *, enum node_kind);
void          node_stat(struct fs *, fuse_ino_t, enum node_kind, const struct owner *,
    struct stat *);
int           node_reply_entry(struct fs *, fuse_req_t, struct node *, fuse_ino_t fixed);
void          fs_nodes_free(struct fs *);
char         *fs_name_encode(const char *);
char         *fs_link_target(const struct job *, enum node_kind);

/* open files: fs_files.c, fs_read.c (reads, poll, wakes), fs_write.c
 * (writes, flush, what waits for the store) */
void fs_open(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void fs_read(fuse_req_t, fuse_ino_t, size_t, off_t, struct fuse_file_info *);
void fs_write(fuse_req_t, fuse_ino_t, const char *, size_t, off_t, struct fuse_file_info *);
void fs_flush(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void fs_release(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void fs_poll(fuse_req_t, fuse_ino_t, struct fuse_file_info *, struct fuse_pollhandle *);
int  fs_handle_open(struct fs *, enum node_kind, struct owner *, struct fuse_file_info *);
void fs_handle_free(struct fs *, struct handle *);
void fs_flush_interrupted(struct fs *);
void fs_job_wake(struct fs *, struct job *);
void fs_chan_message(void *srv, const char *name, const char *body, size_t len);
void fs_release_held(struct fs *, uint64_t durable, int err);
void fs_wake_durable(struct fs *, uint64_t durable);
void fs_fail_waiters(struct fs *, int err);
size_t fs_readme_len(void);
void fs_snapshot(struct fs *, struct handle *);
void fs_why(struct fs *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fs_refusals_free(struct fs *);
/* fs_files.c */
bool handle_is_stream(const struct handle *);
void append_id(struct buf *, const char *key, const char *sep);
void fs_refused(struct fs *, const struct handle *, int rc);
/* fs_read.c */
void handle_wake(struct fs *, struct handle *);
/* fs_write.c */
int  fs_sink_write(struct fs *, struct handle *, const char *data, size_t size,
    bool final);

/* fs_lines.c */
int  lines_feed(struct lines *, const char *data, size_t size, bool final,
    size_t max, struct buf *out, size_t *count, char *why, size_t whylen);
void lines_reset(struct lines *);
void lines_free(struct lines *);

/* fs_notify.c */
int  notify_start(struct fs *);
void notify_stop(struct fs *);
void notify_entry(struct fs *, fuse_ino_t parent, fuse_ino_t child, const char *name);

#endif /* JOBFS_FS_H */
