/*
 * jobfs.h — shared types of the jobfs daemon, each struct next to the
 * functions that own it.
 *
 * One libev loop on one thread drives everything: TCP connections, timers
 * and the FUSE session.  No lock guards anything declared here.  The
 * daemon's one lock is fs->mu (fs_notify.c), shared with the tree's
 * invalidation thread and taken by the loop only when an entry the kernel
 * has seen goes away (a job forgotten, a type freed) and while unmounting:
 * never on the path of a frame or a request.
 */
#ifndef JOBFS_H
#define JOBFS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <ev.h>
#include <jansson.h>
#include <uthash.h>

#define JOBFS_VERSION "0.1.0"

struct broker;
struct chan;
struct conn;
struct fs;
struct job;
struct jtype;
struct server;
struct master;
struct worker;
struct job_life;
struct dep;

/* ------------------------------------------------------------------ util.c */

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xrealloc(void *, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
char *xprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* A byte buffer with a read offset: bytes [off, len) are live. */
struct buf {
	char   *data;
	size_t  off;
	size_t  len;
	size_t  cap;
};

static inline size_t buf_used(const struct buf *b) { return b->len - b->off; }
static inline char *buf_head(const struct buf *b) { return b->data + b->off; }
void  buf_reserve(struct buf *, size_t extra);
void  buf_append(struct buf *, const void *, size_t);
void  buf_append_str(struct buf *, const char *);
void  buf_consume(struct buf *, size_t);
void  buf_compact(struct buf *);
void  buf_free(struct buf *);
int   buf_json_cb(const char *, size_t, void *);  /* json_dump_callback sink */

double now_wall(void);

/* ------------------------------------------------------------------ blob.c */

/*
 * Bodies stored once: a refcounted byte string, written to
 * sockets from where it lies.  Holds large bodies (job_body_blob) and every
 * result (j->result).  Its bytes follow it (blob_new), or lie in a buffer
 * it took over (blob_adopt: a large frame's input buffer, so that a body
 * or result is not copied out of the frame it came in).
 */
struct blob {
	uint32_t refs;
	uint32_t len;     /* bytes of data, not counting its NUL */
	char    *data;    /* len bytes, then a NUL: bytes[], or within base */
	void    *base;    /* the buffer adopted, freed with it; NULL: none */
	char     bytes[];
};

struct blob *blob_new(const void *, size_t len);   /* one reference */
struct blob *blob_adopt(void *base, char *data, size_t len);
struct blob *blob_ref(struct blob *);
void  blob_unref(struct blob *);                    /* NULL: nothing */
struct blob *blob_of(const char *data);             /* of blob_new's data */
void  blob_free_data(char *data);                   /* NULL: nothing */

/* ------------------------------------------------------------------- log.c */

enum log_level { LVL_ERR, LVL_WARN, LVL_INFO, LVL_DEBUG };

void log_init(int level, bool to_syslog);
void log_set_syslog(bool);
int  log_level(void);
void log_msg(enum log_level, const char *, ...) __attribute__((format(printf, 2, 3)));
void fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
#define log_err(...)   log_msg(LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_level() >= LVL_DEBUG) log_msg(LVL_DEBUG, __VA_ARGS__); } while (0)

/*
 * A kind of line that may come in floods (a refused connection, a failed
 * attempt) goes through a struct log_limit: the first `burst` lines of
 * each window of log_interval() seconds are logged, the others only
 * counted, and the caller logs that count in one summary line.
 */
struct log_limit {
	double   start;   /* when the window began; 0: none yet */
	unsigned logged;  /* lines logged in it */
	uint64_t missed;  /* lines counted, not logged, since the last summary */
};
double log_interval(void);   /* 10 s; tests: $JOBFS_LOG_INTERVAL */
bool   log_limit_take(struct log_limit *, double now, unsigned burst);

/* ----------------------------------------------------------------- frame.c */

/* The wire framing: a 4-byte big-endian length, then that many bytes. */
#define FRAME_HEADER 4

enum frame_status {
	FRAME_NEED,       /* not a whole frame yet */
	FRAME_OK,         /* *payload, *len describe one frame */
	FRAME_TOO_LARGE,  /* the announced length exceeds the limit */
};

enum frame_status frame_next(const char *data, size_t avail, size_t max,
    const char **payload, uint32_t *len);
void     frame_put_len(char *out, uint32_t len);
uint32_t frame_get_len(const char *in);

/* ------------------------------------------------------------------- msg.c */

/* JSON kinds of a message field. */
enum jkind { JK_STRING, JK_INT, JK_REAL, JK_TRUE, JK_FALSE, JK_NULL, JK_OBJECT, JK_ARRAY };

/* The top-level fields the protocol reads; any others are checked and skipped. */
enum msg_key {
	MK_TYPE, MK_ACTION, MK_JOB_TYPE, MK_ID, MK_BODY, MK_PRIORITY, MK_TIMEOUT,
	MK_DETACH, MK_STREAM, MK_NOTIFY, MK_WORKER, MK_CAPACITY, MK_HEARTBEAT,
	MK_CANCEL, MK_CHANNEL, MK_TOKEN,
	/* the job lifecycle */
	MK_RETRIES, MK_BACKOFF, MK_DELAY, MK_AT, MK_AFTER, MK_LIMIT,
	MK_LOG,       /* a response's or failure's log (jobctl work) */
	/* listings */
	MK_STATE, MK_CURSOR,
	MK_COUNT
};

/* One field: a span of the frame, valid while the frame is. */
struct mfield {
	bool        present;
	bool        spaced;   /* holds white space outside strings */
	enum jkind  kind;
	const char *val;
	size_t      len;
};

struct msg {
	struct mfield f[MK_COUNT];
};

int         msg_parse(struct msg *, const char *, size_t, char *err, size_t errlen);
const char *msg_key_name(enum msg_key);
ssize_t     msg_unescape(const char *span, size_t len, char *out, size_t outlen);
bool        msg_string(const struct mfield *, char *out, size_t outlen, size_t *len);
bool        msg_int(const struct mfield *, int64_t *);
const char *msg_value(const struct mfield *, struct buf *scratch, size_t *len);
int         msg_json_compact(const char *, size_t, struct buf *out, char *err, size_t errlen);

/* ------------------------------------------------------------------- net.c */

int  net_listen(const char *addr, int port, char *err, size_t errlen);
int  net_connect(const char *host, int port, char *err, size_t errlen);
int  net_nonblock(int fd);
void net_nodelay(int fd);
void net_peer_name(int fd, char *out, size_t len);
bool net_peer_addr(int fd, char *out, size_t len);  /* true: a loopback peer */
struct sockaddr;
bool net_addr_str(const struct sockaddr *, char *out, size_t len); /* true: loopback */
int  net_local_port(int fd);

/* ------------------------------------------------------------------ heap.c */

/* A binary heap of jobs that keeps each job's index in the job, so a job can
 * leave the middle of its queue (cancel, timeout) in O(log n). */
struct heap {
	struct job **items;
	size_t       len;
	size_t       cap;
};

void        heap_push(struct heap *, struct job *);
struct job *heap_pop(struct heap *);
void        heap_remove(struct heap *, struct job *);
void        heap_free(struct heap *);
static inline struct job *heap_top(const struct heap *h) { return h->len ? h->items[0] : NULL; }

/* ---------------------------------------------------------------- broker.c */

enum job_state {
	JOB_QUEUED,
	JOB_RUNNING,
	JOB_DONE,
	JOB_FAILED,
	JOB_CANCELLED,
	JOB_TIMEOUT,
};
#define JOB_FINISHED(j) ((j)->state >= JOB_DONE)
const char *job_state_name(enum job_state);

#define JOB_MAX_LOSSES 3    /* losses that requeue a job; the next one fails it */
#define ID_MAX 255          /* bytes of an id string, and of a type name */

/* What few jobs use, allocated only for them. */
struct job_ext {
	char          *target;        /* only a worker of this name may take it */
	ev_timer       deadline;      /* the "timeout" option */
	int64_t        timeout_ms;    /* 0: none */
	struct buf     partials;      /* partial results, one JSON text per line */
	char          *log;           /* what the worker's command printed (its
	                                 stderr's tail, JOB_LOG_MAX bytes at most),
	                                 as the worker sent it; NULL: none */
	uint32_t       log_len;
};

/* The most of a job's log the daemon keeps: the last bytes, as jobctl work
 * sends. */
#define JOB_LOG_MAX (64u * 1024)

/*
 * A job, from submission until its retention ends.  The body and the result
 * are kept as compact JSON text: that is what is sent and shown.  One
 * allocation holds the job, its key, its id as JSON and its body, since
 * queued jobs can number in the millions: the body is found after the id
 * (job_body), and the tree finds its state for a job in a table of its own.
 * A body of BODY_BLOB_MIN bytes or more is a blob instead (stored once,
 * written to workers from there), and so is every result.
 */
struct job {
	struct blob   *result;        /* JSON text once done (result->data) */
	uint32_t       body_len;
	uint32_t       result_len;
	uint32_t       hash;          /* of key, for broker->jobs */
	uint32_t       heap_index;
	struct jtype  *type;
	int64_t        priority;
	uint32_t       seq;           /* submission order, compared with seq_before() */
	uint16_t       refs;          /* the table holds one; a tree node one more */
	uint16_t       state : 3;     /* enum job_state */
	uint16_t       losses : 3;    /* times its worker vanished mid-job */
	uint16_t       detach : 1;    /* survives its master's disconnect */
	uint16_t       stream : 1;    /* master wants partial results */
	uint16_t       notify : 1;    /* master wants the running notice */
	uint16_t       id_is_key : 1; /* an integer id: its JSON is its key */
	uint16_t       body_blob : 1; /* the body is a blob (job_body_blob) */
	uint16_t       shared : 1;    /* cluster mode: its queue place is in the
	                                 backend (Redis), never in a local heap */
	uint16_t       pending : 1;   /* cluster mode: submitted, the backend
	                                 has not answered yet */
	uint16_t       dropped : 1;   /* finished, and its body, result and
	                                 partials are no longer kept
	                                 (--keep-bytes): job_body is "" */
	struct master *master;        /* who hears the result; NULL: the tree,
	                                 a restored job, or its master gone */
	TAILQ_ENTRY(job) master_entry;
	struct worker *worker;        /* who runs it */
	union {
		TAILQ_ENTRY(job) worker_entry;  /* while running */
		TAILQ_ENTRY(job) done_entry;    /* once finished: broker->finished */
	};
	struct job_ext *ext;          /* target, deadline, partials; NULL if none */
	double         submitted;     /* wall clock */
	float          started;       /* seconds after submitted; 0: not yet */
	float          finished;
	char          *worker_name;   /* last worker that ran it */
	TAILQ_ENTRY(job) all_entry;   /* broker->all: every job, in submission order */
	TAILQ_ENTRY(job) state_entry; /* its type's list of its state (broker_states.c) */
	uint32_t       lseq;          /* when it joined that list (broker->next_lseq) */
	uint8_t        lstate;        /* enum job_lstate of that list; 0: none */
	char          *owner;         /* --auth: the token name that submitted
	                                 it; NULL: none (the tree, no --auth) */
	struct job_life *life;        /* retries, delays, attempts, dependencies,
	                                 the dead set; NULL if none (broker.c) */
	char           key[];         /* canonical id: a string id, or an integer
	                                 in decimal; then the id as the master
	                                 sent it, as JSON (unless id_is_key);
	                                 then the body, or a pointer to its
	                                 blob if body_blob */
};

/*
 * seq_before: a was submitted before b.  Sequence numbers are 32 bits and
 * wrap; the difference decides, which is right while the jobs compared
 * were submitted fewer than 2^31 submissions apart.
 */
static inline bool
seq_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

/* job_idjson: the id as the master sent it, as JSON text. */
static inline const char *
job_idjson(const struct job *j)
{
	return j->id_is_key ? j->key : j->key + strlen(j->key) + 1;
}

/*
 * Bodies of at least BODY_BLOB_MIN bytes are kept in a blob, so that each
 * worker it goes to is written it from there (proto_send_job); shorter ones
 * lie in the job's own allocation and are copied, which costs less than a
 * reference, and keeps a queued small job one allocation.
 */
#define BODY_BLOB_MIN 1024

/* job_body_blob: the blob holding j's body, or NULL if it lies inline. */
static inline struct blob *
job_body_blob(const struct job *j)
{
	const char *id = job_idjson(j);
	struct blob *b;

	if (!j->body_blob || j->dropped)
		return NULL;
	memcpy(&b, id + strlen(id) + 1, sizeof b);  /* unaligned in key[] */
	return b;
}

/* job_body: the body, as compact JSON text (NUL-terminated, body_len bytes). */
static inline const char *
job_body(const struct job *j)
{
	const char *id = job_idjson(j);

	if (j->dropped)
		return "";
	return j->body_blob ? job_body_blob(j)->data : id + strlen(id) + 1;
}
TAILQ_HEAD(job_list, job);

/*
 * Handles: a master and a worker as the core knows them.  A face makes one
 * for each connection (broker_master_new, broker_worker_new; face is its
 * own object, opaque to the core) and gives it back when the connection
 * goes (broker_master_gone, broker_worker_gone), after which face is NULL.
 * A job holds a reference on its master while unfinished and on its worker
 * while running, so no pointer dangles, and a job needs no connection at
 * all (submitted in the tree, restored by a store: master NULL).
 */
struct master {
	void            *face;        /* NULL once gone */
	unsigned         refs;        /* the face's, and one per owned job */
	struct job_list  owned;       /* unfinished jobs it submitted */
};

/*
 * A worker's slots live here and only here (broker.c): each of its
 * capacity slots is free, runs a job (running) or holds a stale job (its
 * key in stale_keys: see broker.c).
 */
struct worker {
	void            *face;        /* NULL once gone */
	unsigned         refs;        /* the face's, and one per running job */
	char            *name;        /* shown in the tree and matched by targets */
	char            *addr;        /* its connection's address, listed beside */
	struct jtype    *type;        /* joined type, NULL before join */
	struct jtype    *next_type;   /* re-join while busy: applies when idle */
	unsigned         capacity;
	unsigned         nrunning;
	unsigned         stale;       /* answers still due for jobs that ended */
	char           **stale_keys;
	bool             idle;        /* on type->idle */
	bool             takes_cancel; /* ended jobs get a cancel, not a stale slot */
	bool             blocked;     /* its face cannot take a job now (backlog) */
	struct job_list  running;
	TAILQ_ENTRY(worker) idle_entry;
	TAILQ_ENTRY(worker) type_entry;
};

/*
 * A place in the list of every job, for listing jobs/ a piece at a time:
 * it stays valid while jobs come and go (a cursor on a job that is
 * forgotten moves on to the next), so a listing neither skips nor repeats
 * a job that exists from its start to its end.  Jobs submitted meanwhile
 * may or may not be listed.
 */
struct job_cursor {
	TAILQ_ENTRY(job_cursor) entry;  /* broker->cursors */
	struct job   *next;             /* the next job to list; NULL: the end */
	bool          open;
};

/*
 * Jobs by state (broker_states.c): what a user lists.  Each job is on one
 * list of its type, that of its state, in the order it entered it
 * (queued ... cancelled; "failed" holds timeouts too); the dead ones are
 * on their type's dead list as well.  A state cursor walks one type's
 * list, or every type's in the order of their names, and like a
 * job_cursor survives jobs leaving: a job in that state from the start of
 * a listing to its end is listed once.
 */
enum job_lstate {
	JLS_NONE, JLS_QUEUED, JLS_RUNNING, JLS_DELAYED, JLS_WAITING,
	JLS_DONE, JLS_FAILED, JLS_CANCELLED, JLS_DEAD, JLS_COUNT
};
#define JLS_LISTS (JLS_DEAD - 1)   /* lists kept per type: QUEUED..CANCELLED */

struct state_cursor {
	TAILQ_ENTRY(state_cursor) entry;  /* broker->state_cursors */
	struct jtype *only;   /* the one type walked (held), or NULL: all */
	struct jtype *type;   /* the type being walked (held), or NULL */
	struct job   *next;   /* the next job to list in it; NULL: its end */
	uint8_t       state;  /* enum job_lstate */
	bool          open, started, ended;
};

/* Jobs targeted at one worker name wait in their own heap. */
struct target {
	UT_hash_handle hh;
	char          *name;
	struct heap    queue;
};

/* A job type: its queue, its idle workers and its counters. */
struct jtype {
	UT_hash_handle hh;            /* broker->types */
	char          *name;
	struct heap    queue;         /* untargeted queued jobs */
	struct target *targets;       /* targeted queued jobs, by worker name */
	TAILQ_HEAD(, worker) idle;    /* workers with a free slot, longest idle first */
	TAILQ_HEAD(, worker) workers; /* every worker joined to this type */
	unsigned       refs;          /* jobs + workers + pinned; freed at 0 */
	bool           pinned;        /* made by mkdir: lives while the daemon does */
	uint64_t       nqueued, nrunning, nworkers;
	uint64_t       ndone, nfailed, ncancelled, ntimeout, nsubmitted, nrequeued;
	/* the job lifecycle */
	bool           paused;        /* dispatches nothing; still takes jobs */
	uint32_t       limit;         /* jobs running at once; 0: no limit */
	int32_t        retries;       /* default of jobs without "retries" */
	int64_t        backoff_ms;    /* default base backoff; 0: LIFE_BACKOFF_MS */
	struct job_list dead;         /* its dead jobs, oldest first (life->type_dead) */
	uint64_t       ndead, ndelayed, nwaiting, nretried, nkicked;
	struct fail_log *fail_log;    /* its failed attempts' log lines; NULL: none yet */
	struct job_list states[JLS_LISTS]; /* its jobs by state (broker_states.c) */
};

/* What a submitter asks for; broker_submit() copies what it keeps. */
struct submit_req {
	const char   *type;
	const char   *key;            /* NULL: the broker assigns an id */
	const char   *idjson;
	const char   *body;
	size_t        body_len;
	struct blob  *body_blob;      /* holds body (the broker takes a
	                                 reference), or NULL: body is copied */
	int64_t       priority;
	int64_t       timeout_ms;     /* 0: none */
	const char   *target;
	bool          detach, stream, notify;
	struct master *master;        /* NULL: none (the tree) */
	const char   *owner;          /* --auth: the submitter's name; NULL: none */
	/* the job lifecycle: all opt-in */
	bool          retries_set;    /* false: the type's default retries */
	int64_t       retries;
	int64_t       backoff_ms;     /* 0: the type's, else LIFE_BACKOFF_MS */
	int64_t       delay_ms;       /* 0: none */
	int64_t       at_ms;          /* epoch milliseconds; 0: none */
	const char  **after;          /* keys of jobs it waits for */
	size_t        nafter;
};

/*
 * Errors that broker calls return.  The broker owns the reason
 * (broker_err_reason); each face maps the code to its own error (frame
 * error, HTTP status, errno) in one switch without a default, so that
 * -Wswitch finds a face that misses a code.
 */
enum broker_err {
	BERR_OK = 0,
	BERR_ID_EXISTS,
	BERR_UNKNOWN_ID,   /* "after" names no job */
	BERR_FULL_JOBS,    /* unfinished jobs are at --max-jobs */
	BERR_FULL_MEMORY,  /* their bodies would pass --max-memory */
	BERR_UNAVAILABLE,  /* the store cannot take writes (broker_store_error) */
	BERR_SELF,         /* "after" names the job itself */
	BERR_INVALID,      /* a value out of its range: broker->err_detail says */
	BERR_STATE,        /* the job is not in a state that allows it */
	BERR_PENDING,      /* cluster mode: the backend answers later (job_accepted) */
};

/* What a worker's response or partial is about (broker_worker_answer). */
enum worker_answer {
	ANSWER_JOB,        /* a job it runs: *out */
	ANSWER_LATE,       /* a job that ended meanwhile: dropped quietly */
	ANSWER_UNKNOWN_ID, /* its id names nothing this worker holds */
	ANSWER_NEED_ID,    /* no id, and the worker holds more than one job */
	ANSWER_NONE,       /* no id, and the worker holds no job */
};

struct broker_stats {
	uint64_t submitted, done, failed, cancelled, timeout, requeued;
	uint64_t queued, running;
	uint64_t partials;
	uint64_t body_bytes;          /* of unfinished jobs' bodies */
	uint64_t retained_bytes;      /* held by finished jobs (--keep-bytes) */
	uint64_t dropped;             /* finished jobs whose body and result
	                                 went for --keep-bytes */
	uint64_t refused_full;        /* submissions refused: BERR_FULL_* */
	/* the job lifecycle */
	uint64_t retried, dead, delayed, waiting, kicked, fails;
};

/*
 * Listeners: whatever must react to a job's life (the TCP face, the tree,
 * a store such as the journal) registers a table of callbacks; the broker
 * calls each registered table, in order, and names no face.  Any callback
 * may be NULL.  A store registers with broker_store_listen, which puts it
 * before every face, so that by the time a face sees an event the store
 * has appended its record and broker_mark() covers it.
 *
 *   job_submitted   it is in the table, queued or about to be dispatched
 *   job_dispatched  it now runs on worker
 *   job_requeued    back in its queue after its worker was lost (it may be
 *                   dispatched again at once: job_dispatched follows)
 *   job_partial     a partial result, kept in the job (within its limit)
 *   job_finished    it ended: j->state says how; ran_on is the worker that
 *                   ran it and still holds it, or NULL; j->master is still
 *                   set (the broker lets go of it after)
 *   job_forgotten   it leaves the table (retention, rmdir, an id reused)
 *   job_dropped     a finished job's body, result and partials went, its
 *                   record stays (retention by bytes, --keep-bytes)
 *   type_added / type_removed, worker_joined / worker_left
 *   durable         the store made everything up to mark durable
 *
 * Events are emitted while a job is restored too (broker_restore): a store
 * tells them apart with broker_restoring() and skips them.  Nothing is
 * emitted at broker_shutdown.
 */
struct broker_listener {
	void *ctx;
	void (*job_submitted)(void *ctx, struct job *);
	void (*job_dispatched)(void *ctx, struct job *, struct worker *);
	void (*job_requeued)(void *ctx, struct job *);
	void (*job_partial)(void *ctx, struct job *, const char *body, size_t len);
	void (*job_finished)(void *ctx, struct job *, struct worker *ran_on);
	void (*job_forgotten)(void *ctx, struct job *);
	void (*job_dropped)(void *ctx, struct job *, size_t body_len,
	    size_t result_len, size_t partials_len);  /* its body, result and
	                                   partials went (--keep-bytes); the
	                                   lengths they had */
	void (*type_added)(void *ctx, struct jtype *);
	void (*type_removed)(void *ctx, struct jtype *);
	void (*worker_joined)(void *ctx, struct worker *, struct jtype *);
	void (*worker_left)(void *ctx, struct worker *, struct jtype *);
	void (*durable)(void *ctx, uint64_t mark);
	/* the job lifecycle */
	void (*job_changed)(void *ctx, struct job *);   /* its life changed:
	                                   delayed, retried, waiting, due, kicked */
	void (*type_changed)(void *ctx, struct jtype *); /* paused, limit, defaults */
	void (*job_abandoned)(void *ctx, struct job *, struct worker *);  /* its
	                                   attempt on that worker timed out and is
	                                   retried elsewhere: a cancel, if it takes them */
	/* cluster mode */
	void (*job_accepted)(void *ctx, struct job *, int berr);  /* the backend's
	                                   answer to a BERR_PENDING submission: 0, or
	                                   BERR_ID_EXISTS / BERR_UNAVAILABLE (then the
	                                   job is forgotten right after) */
	void (*store_failed)(void *ctx);   /* broker_store_failed: answer what
	                                   waits for the store (see there) */
};
#define BROKER_LISTENERS_MAX 8

/*
 * What broker_restore puts back: a job as a store recorded it.  state is
 * JOB_QUEUED (a job that was running is queued again: the store counts the
 * loss in losses) or a finished state, with its result (JOB_DONE) and
 * finish time.  Strings are copied.
 */
struct restore_req {
	const char   *type;
	const char   *key;            /* canonical id */
	const char   *idjson;         /* as the master sent it; NULL: "key" */
	const char   *body;
	size_t        body_len;
	int64_t       priority;
	uint32_t      seq;            /* submission order */
	double        submitted;      /* wall clock */
	int64_t       timeout_ms;     /* 0: none; counted from now */
	const char   *target;
	bool          detach, stream, notify;
	enum job_state state;
	unsigned      losses;
	double        started, finished;  /* wall clock; 0: not */
	const char   *worker_name;    /* last worker that ran it, or NULL */
	const char   *result;         /* JOB_DONE: its JSON text */
	size_t        result_len;
	const char   *partials;       /* one JSON text per line, or NULL */
	size_t        partials_len;
	const char   *owner;          /* the token name that submitted it, or NULL */
	const char   *life;           /* job_life_json's text, or NULL */
	const char   *log;            /* its log (job_log), or NULL */
	size_t        log_len;
	bool          dropped;        /* finished, its body and result no
	                                 longer kept (body and result empty) */
};

/* jobtab.c: every known job by key. */
struct jobtab {
	struct job **slots;
	size_t       cap, len, tombs;
};

uint32_t    jobtab_hash(const char *key);
struct job *jobtab_find(const struct jobtab *, const char *key, uint32_t hash);
void        jobtab_add(struct jobtab *, struct job *);
void        jobtab_del(struct jobtab *, struct job *);
struct job *jobtab_next(const struct jobtab *, size_t *pos);
void        jobtab_free(struct jobtab *);

struct broker {
	struct server     *srv;
	struct ev_loop    *loop;
	struct jobtab      jobs;      /* every known job by key */
	struct jtype      *types;
	struct job_list    all;       /* every job in the table, submission order */
	TAILQ_HEAD(, job_cursor) cursors;  /* open listings of all */
	TAILQ_HEAD(, state_cursor) state_cursors;  /* open listings by state */
	uint32_t           next_lseq;    /* order of entering a state (job->lseq) */
	struct job_list    finished;  /* retention order */
	size_t             nfinished;
	uint64_t           next_seq;
	uint64_t           next_auto_id;
	double             keep;      /* seconds */
	size_t             keep_max;
	uint64_t           keep_bytes;  /* finished jobs' bytes, --keep-bytes */
	struct job        *drop_next;   /* the oldest finished job not dropped
	                                   (NULL: none), in broker->finished */
	uint64_t           max_jobs;  /* unfinished jobs, --max-jobs */
	uint64_t           max_bytes; /* their bodies' bytes, --max-memory */
	ev_timer           retention;
	struct broker_stats stats;
	struct broker_listener listeners[BROKER_LISTENERS_MAX];
	unsigned           nlisteners;
	unsigned           restoring;    /* inside broker_restore */
	uint64_t           mark;         /* the store's last appended record */
	uint64_t           durable;      /* the store's last durable record */
	int                store_err;    /* the store cannot take writes: errno */
	char               store_reason[128];
	bool               store_down;   /* broker_store_failed: nothing waits
	                                    for the store until it takes writes */
	/* the job lifecycle */
	struct delay_heap {
		struct job **items;
		size_t       len, cap;
	}                  delays;       /* delayed jobs and retries, by due time */
	ev_timer           delay_timer;  /* the one timer for all of them */
	struct job_list    dead;         /* every dead job, oldest first */
	size_t             ndead;
	double             dead_keep;    /* seconds */
	size_t             dead_max;
	struct dep        *deps;         /* waiting jobs, by the key they wait for */
	char               err_detail[2 * ID_MAX + 192];  /* why the last BERR_*
	                                 (broker_err_reason) */
	size_t             npaused;      /* paused types */
	TAILQ_HEAD(, fail_log) fail_logs; /* types with failures counted, not logged */
	ev_timer           fail_log_timer; /* the end of their windows */
	/* cluster mode */
	struct broker_backend {
		void *ctx;
		void (*submit)(void *, struct job *);
		void (*want)(void *, struct jtype *);
		void (*complete)(void *, struct job *, enum job_state);
		void (*partial)(void *, struct job *, const char *, size_t);
		void (*requeue)(void *, struct job *, bool lost);
		void (*end)(void *, struct job *, enum job_state why, bool if_queued);
		void (*forget)(void *, struct job *);
		void (*lookup)(void *, const char *key,
		    void (*cb)(void *, struct job *, int berr), void *cbctx);
		void (*query)(void *, const char *what, const char *arg,
		    void (*cb)(void *, const char *text, size_t len, int berr),
		    void *cbctx);
		void (*pin)(void *, struct jtype *, bool on);  /* mkdir/rmdir types/T */
	}                  be;           /* be.submit NULL: no backend */
	char               id_suffix[24];  /* appended to assigned ids: ".N" */
};

void  broker_init(struct broker *, struct server *, double keep, size_t keep_max);
void  broker_listen(struct broker *, const struct broker_listener *);
void  broker_store_listen(struct broker *, const struct broker_listener *);
bool  broker_restoring(const struct broker *);
int   broker_restore(struct broker *, const struct restore_req *);

/*
 * The durability gate.  broker_mark: the position of the last record the
 * store appended; broker_durable: the last it made durable (both 0 without
 * a store, and then nothing is ever held).  A face holds an
 * acknowledgement made while broker_mark() > broker_durable() until the
 * durable event covers the mark it noted.  The store reports with
 * broker_store_mark (after each append) and broker_store_durable (which
 * emits durable to every listener); broker_store_set_error(b, errno,
 * reason) says it cannot take writes (0: it can again), and while it
 * cannot, submissions are refused with BERR_UNAVAILABLE.
 *
 * broker_store_failed (after broker_store_set_error): the store cannot say
 * when what it holds becomes durable (a full disk, a deleted directory).
 * Faces answer at once what they held for it: an acknowledgement of a
 * submission not yet durable becomes an "unavailable" refusal and its job
 * is withdrawn (broker_withdraw), everything else goes out, and nothing is
 * held (broker_gated false) until the store takes writes again.
 */
static inline uint64_t broker_mark(const struct broker *b) { return b->mark; }
static inline uint64_t broker_durable(const struct broker *b) { return b->durable; }
static inline bool broker_held(const struct broker *b) { return b->mark > b->durable; }
static inline bool broker_gated(const struct broker *b) { return broker_held(b) && !b->store_down; }
void  broker_store_failed(struct broker *);
void  broker_withdraw(struct broker *, struct job *);
void  broker_store_mark(struct broker *, uint64_t mark);
void  broker_store_durable(struct broker *, uint64_t mark);
void  broker_store_set_error(struct broker *, int err, const char *reason);
void  broker_store_set_error_quietly(struct broker *, int err, const char *reason);
int   broker_store_error(const struct broker *);
const char *broker_store_reason(const struct broker *);
void  broker_shutdown(struct broker *);
enum broker_err broker_submit(struct broker *, const struct submit_req *,
    struct job **out);
const char *broker_err_reason(struct broker *, enum broker_err);
struct job   *broker_find(struct broker *, const char *key);
struct jtype *broker_type(struct broker *, const char *name, bool create);
void  broker_type_pin(struct broker *, struct jtype *);
void  broker_type_unpin(struct broker *, struct jtype *);
void  broker_type_unref(struct broker *, struct jtype *);
struct master *broker_master_new(struct broker *, void *face);
void  broker_master_gone(struct broker *, struct master *);
struct worker *broker_worker_new(struct broker *, void *face, const char *name);
void  broker_worker_options(struct broker *, struct worker *, const char *name,
    unsigned capacity, int takes_cancel);
void  broker_worker_join(struct broker *, struct worker *, struct jtype *);
void  broker_worker_ready(struct broker *, struct worker *);
void  broker_worker_block(struct broker *, struct worker *, bool blocked);
void  broker_worker_gone(struct broker *, struct worker *);
enum worker_answer broker_worker_answer(struct broker *, struct worker *,
    const char *key, bool final, struct job **out);
void  broker_complete(struct broker *, struct job *, const char *result, size_t len,
    struct blob *holder);
void  broker_partial(struct broker *, struct job *, const char *body, size_t len);
enum broker_err broker_end(struct broker *, struct job *, enum job_state why);
void  broker_forget(struct broker *, struct job *);
void  broker_cursor_open(struct broker *, struct job_cursor *);
void  broker_cursor_close(struct broker *, struct job_cursor *);
struct job *broker_cursor_job(const struct job_cursor *);
void  broker_cursor_advance(struct job_cursor *);
void  job_ref(struct job *);
void  job_unref(struct broker *, struct job *);

/* Jobs by state (broker_states.c). */
const char *jls_name(int state);              /* "queued" ...; NULL: none */
int   jls_parse(const char *name);            /* JLS_*, 0: no such state */
bool  job_in_lstate(const struct job *, int state);
const char *job_lstate_name(const struct job *);  /* "dead" or its list's */
void  broker_states_type_init(struct jtype *);
void  broker_state_sync(struct broker *, struct job *);   /* broker.c: j's state
                                   may have changed: move it to its list */
void  broker_state_drop(struct broker *, struct job *);   /* j is forgotten */
void  broker_state_dead_leaving(struct broker *, struct job *);
void  broker_scursor_open(struct broker *, struct state_cursor *, int state,
    struct jtype *only);
int   broker_scursor_seek(struct broker *, struct state_cursor *, const char *pos);
struct job *broker_scursor_job(struct broker *, struct state_cursor *);
void  broker_scursor_advance(struct state_cursor *);
void  broker_scursor_close(struct broker *, struct state_cursor *);
char *broker_scursor_pos(const struct job *, int state);
#define LIST_LIMIT_DEFAULT 100    /* jobs a page of a listing holds */
#define LIST_LIMIT_MAX     1000
json_t *broker_list(struct broker *, int state, struct jtype *only, size_t limit,
    const char *pos, bool (*may)(void *, const struct job *), void *ctx);

/*
 * Queries: what a face may know of the broker's structures, without
 * walking its heaps, job table, type table or worker lists.  Each walk
 * calls cb until it returns false; cb must not change the broker.
 */
struct type_stats {
	uint64_t queued, running, workers;
	uint64_t done, failed, cancelled, timeout, submitted, requeued;
	uint64_t dead, delayed, waiting, retried, kicked;
};
typedef bool broker_type_cb(void *ctx, struct jtype *);
typedef bool broker_job_cb(void *ctx, struct job *);
typedef bool broker_worker_cb(void *ctx, struct worker *);
size_t broker_ntypes(const struct broker *);
size_t broker_nretained(const struct broker *);
void  broker_types_each(struct broker *, broker_type_cb *, void *ctx);   /* oldest first */
void  broker_type_stats(const struct jtype *, struct type_stats *);
void  broker_queue_each(struct broker *, struct jtype *, broker_job_cb *, void *ctx);
void  broker_workers_each(struct broker *, struct jtype *, broker_worker_cb *, void *ctx);
void  broker_worker_jobs_each(struct broker *, struct worker *, broker_job_cb *, void *ctx);
const char *worker_name(const struct worker *);
const char *worker_addr(const struct worker *);
bool        worker_named(const struct worker *);
unsigned    worker_running(const struct worker *);
json_t *job_info(const struct job *);
double  job_started(const struct job *);    /* wall clock; 0: not yet */
double  job_finished(const struct job *);
const char *job_target(const struct job *);
const struct buf *job_partials(const struct job *);
const char *job_log(const struct job *, size_t *len);   /* NULL: none */
void  broker_job_log(struct broker *, struct job *, const char *, size_t);

/*
 * The job lifecycle (broker.c's "lifecycle" section, delay.c).
 * A job's life (struct job_life) exists only for jobs that use it: a
 * retry, a delay, a dependency, a fail report, the dead set.  Its state
 * stays JOB_QUEUED while it waits (life->wait says for what) and is
 * JOB_FAILED in the dead set; job_status() names what a user sees.
 */
#define LIFE_RETRIES_MAX    100
#define LIFE_BACKOFF_MS     1000                   /* the default base */
#define LIFE_BACKOFF_MAX_MS (24LL * 3600 * 1000)   /* base, and any one wait */
#define LIFE_DELAY_MAX_MS   (366LL * 24 * 3600 * 1000)
#define LIFE_AFTER_MAX      64
#define LIFE_LIMIT_MAX      1000000
#define LIFE_ATTEMPTS_KEPT  32                     /* the newest, per job */
#define LIFE_ERROR_MAX      (64u * 1024)           /* bytes of an error kept */
#define LIFE_DEAD_KEEP      (7 * 24 * 3600.0)
#define LIFE_DEAD_MAX       10000

enum life_wait { LIFE_READY, LIFE_DELAYED, LIFE_BACKOFF, LIFE_WAITING };

struct attempt {
	double  started, ended;       /* wall clock; ended 0: not yet */
	char   *worker;
	char   *error;                /* JSON text, or NULL */
};

struct job_life {
	int32_t          retries;     /* -1: the type's default */
	int64_t          backoff_ms;  /* 0: the type's default */
	uint8_t          wait;        /* enum life_wait, while JOB_QUEUED */
	double           due;         /* LIFE_DELAYED, LIFE_BACKOFF: wall clock */
	size_t           delay_index; /* in broker->delays */
	unsigned         failures;    /* failed attempts since submission or kick */
	unsigned         nattempts;   /* every attempt ever begun */
	struct attempt  *att;         /* the newest LIFE_ATTEMPTS_KEPT of them */
	size_t           natt;
	char           **after;       /* keys it waits for (LIFE_WAITING) */
	size_t           nafter;
	unsigned         pending;     /* of those, not yet done */
	char            *error;       /* JSON text of the last failure */
	char            *reason;      /* why it was cancelled, if by a dependency */
	TAILQ_ENTRY(job) type_dead;   /* on its type's dead list */
	bool             opted;       /* submitted with lifecycle options: its
	                                 master may hear of them (last_error) */
};

const char *job_status(const struct job *);   /* "delayed", "waiting", or the state */
const char *job_end_reason(const struct job *);  /* reason of its ending frame */
json_t *job_life_json(const struct job *);    /* what the store keeps of its life */
void  broker_life_init(struct broker *, double dead_keep, size_t dead_max);
enum broker_err broker_fail(struct broker *, struct job *, const char *err, size_t len);
enum broker_err broker_kick(struct broker *, struct job *);
size_t broker_kick_type(struct broker *, struct jtype *);
void  broker_type_pause(struct broker *, struct jtype *, bool paused);
enum broker_err broker_type_limit(struct broker *, struct jtype *, int64_t limit);
enum broker_err broker_type_retries(struct broker *, struct jtype *, int64_t retries, int64_t backoff_ms);
enum broker_err broker_type_configure(struct broker *, const char *type, int64_t limit,
    int64_t retries, int64_t backoff_ms);
bool  broker_type_configured(const struct jtype *);
void  broker_dead_each(struct broker *, struct jtype *, broker_job_cb *, void *ctx);
void  broker_delayed_each(struct broker *, struct jtype *, broker_job_cb *, void *ctx);
json_t *broker_type_settings(const struct jtype *);

/*
 * Cluster mode (broker.c's "backend" section, store_redis.c).
 * With a backend set, queues live in the backend, not in local heaps: the
 * broker keeps its policy (slots, stale keys, events, retention of local
 * copies) and sends intents to the backend (be.*), which answers with the
 * broker_be_* verdicts below.  A job known here is a local copy: one
 * submitted here (its master is here), one running on a local worker, or
 * both.  Without a backend none of this is used.
 *
 *   submit    j is new, in the table, queued nowhere: answer with
 *             broker_be_accepted (the submission returned BERR_PENDING)
 *   want      t has workers with free slots: offer them jobs with
 *             broker_be_dispatch (broker_idle_each lists them)
 *   complete  j, run by a local worker, ended (done, or failed by report);
 *             it has already ended here
 *   partial   a partial result of j from its local worker
 *   requeue   j's local worker went (lost) or could not take it
 *   end       j was ended here (cancel, timeout); if_queued: only if it is
 *             still queued (its master went)
 *   forget    j was removed here (rmdir): everywhere
 *   pin       t was made (or unmade) in the tree: listed in every tree
 *   lookup    a job not known here, for a face (broker_lookup)
 *   query     the cluster's counters, queues, workers, jobs (broker_query)
 *
 * Among the verdicts, broker_be_gone(j, reason) says the backend lost j
 * (Redis lost the cluster's data): it ends failed here with that reason.
 *
 * A job's attempt number (the backend's lease token) lives in heap_index,
 * which a shared job never uses.
 */
#define job_att(j) ((j)->heap_index)
static inline bool broker_shared(const struct broker *b) { return b->be.submit != NULL; }
void  broker_set_backend(struct broker *, const struct broker_backend *);
typedef bool broker_idle_cb(void *ctx, struct worker *, unsigned free_slots);
void  broker_idle_each(struct broker *, struct jtype *, broker_idle_cb *, void *ctx);
void  broker_worker_hold(struct worker *);
void  broker_worker_release(struct worker *);
void  broker_type_hold(struct jtype *);
void  broker_be_accepted(struct broker *, struct job *, int berr);
struct job *broker_be_dispatch(struct broker *, struct worker *, const struct restore_req *,
    uint32_t att);
void  broker_be_running(struct broker *, struct job *, const char *worker);
void  broker_be_partial(struct broker *, struct job *, const char *, size_t);
void  broker_be_finished(struct broker *, struct job *, enum job_state,
    const char *result, size_t len);
void  broker_be_lost(struct broker *, struct job *);
void  broker_be_gone(struct broker *, struct job *, const char *reason);
void  broker_be_forget(struct broker *, struct job *);
struct job *broker_be_view(struct broker *, const struct restore_req *);
/* broker_lookup: the job of key, here or (cluster mode) known to the
 * backend, which makes a local copy of it (a view, kept up to date by the
 * backend's events, forgotten like any finished job): cb(ctx, j, 0), now
 * or later; j NULL if there is none; BERR_UNAVAILABLE if the backend
 * cannot be asked now. */
typedef void broker_lookup_cb(void *ctx, struct job *, int berr);
void  broker_lookup(struct broker *, const char *key, broker_lookup_cb *, void *ctx);
void  broker_master_hold(struct master *);
void  broker_master_release(struct master *);
/*
 * broker_query: what the whole cluster shows, as text, for the tree on
 * every host (cluster mode only): cb(ctx, text, len, 0) once the backend
 * answers, or BERR_UNAVAILABLE.  what (arg):
 *   "stats"            cluster counters, "cluster_NAME VALUE" lines
 *   "type_stats" (T)   T's counters across daemons, "NAME VALUE" lines
 *   "queue" (T)        T's queued job keys in dispatch order, one a line
 *   "jobs"             every job's key in submission order, one a line
 *   "workers" (T)      T's workers on every daemon, "NAME@N idle|busy IDS"
 */
typedef void broker_query_cb(void *ctx, const char *text, size_t len, int berr);
void  broker_query(struct broker *, const char *what, const char *arg,
    broker_query_cb *, void *ctx);

/* ----------------------------------------------------------------- delay.c */

/* The due-time heap of delayed jobs (broker->delays): soonest first. */
void        delay_push(struct delay_heap *, struct job *);
struct job *delay_pop(struct delay_heap *);
void        delay_remove(struct delay_heap *, struct job *);
void        delay_free(struct delay_heap *);
static inline struct job *delay_top(const struct delay_heap *h) { return h->len ? h->items[0] : NULL; }

/* -------------------------------------------------------------------- id.c */

/* Ids and type names as they appear in the tree. */
bool   id_valid(const char *key, size_t len);
bool   type_name_valid(const char *name, size_t len);
size_t id_encoded_len(const char *key);
void   id_encode(const char *key, char *out);   /* out: id_encoded_len + 1 */
char  *id_decode(const char *name);             /* NULL: not an encoded id */

/* ------------------------------------------------------------------ auth.c */

/*
 * Who may do what: the token file of --auth (auth.c), roles,
 * and what a face asks.  auth_check() is the hook for every face (the TCP
 * ports, the web face): a token's name and roles, compared in constant
 * time.  admin may do what master and worker may, and see every job.
 */
#define AUTH_MASTER 0x1
#define AUTH_WORKER 0x2
#define AUTH_ADMIN  0x4
#define AUTH_NAME_MAX 64

struct auth_id {
	char     name[AUTH_NAME_MAX + 1];
	unsigned roles;
};

int      auth_load(const char *path, char *err, size_t errlen);
bool     auth_enabled(void);
size_t   auth_ntokens(void);
bool     auth_check(const char *token, size_t len, struct auth_id *out);
bool     auth_name(const char *name, unsigned *roles);
bool     auth_name_valid(const char *, size_t);
void     auth_free(void);
unsigned auth_peer_count(const char *addr);
void     auth_peer_add(const char *addr);
void     auth_peer_del(const char *addr);
/* Connections a peer address may hold by default (--max-conns-per-addr),
 * TCP and HTTP together: loopback peers are counted only when it is given. */
#define CONNS_PER_ADDR_DEFAULT 256

/* ------------------------------------------------------------------- tls.c */

struct tls_server;
struct tls_conn;

int     tls_server_init(struct server *, char *err, size_t errlen);
void    tls_reload(struct server *);
void    tls_server_free(struct server *);
int     tls_conn_new(struct conn *);
void    tls_conn_free(struct conn *);
void    tls_refuse(int fd, const char *code);
ssize_t conn_sock_read(struct conn *, void *, size_t);
ssize_t conn_sock_write(struct conn *, const void *, size_t);
bool    tls_pending(const struct conn *);
bool    tls_write_blocked(const struct conn *);
bool    tls_read_wants_write(const struct conn *);

/* ------------------------------------------------------------------ conn.c */

enum conn_role   { ROLE_MASTER = 1, ROLE_WORKER = 2 };
enum dialect     { DIALECT_UNSET, DIALECT_SEED, DIALECT_ACTION };

#define CONN_CLOSE_AFTER_WRITE 0x01  /* dropped: flush the error frame, then close */
#define CONN_DEAD              0x02  /* closed; freed before the loop sleeps */
#define CONN_BACKLOG           0x04  /* output over OUT_SOFT_LIMIT, not yet
                                        drained below half of it */
#define CONN_PENDING_WRITE     0x08  /* on srv->pending_writes */
#define CONN_RELEASED          0x10  /* its jobs, slots and subscriptions given back */
#define CONN_HELD              0x20  /* on srv->held */

/*
 * An acknowledgement held for the store: output from byte `at` of the
 * connection's stream on waits until broker_durable() reaches `mark`.
 */
struct out_hold {
	uint64_t at;
	uint64_t mark;
};

/*
 * A submission whose acknowledgement waits for the store: the ack's plain
 * bytes [plain, plain + len) of the stream of c->out (len 0 in the seed
 * dialect, which acknowledges nothing), the mark it waits for, and the
 * job (a job_ref).  If the store fails first, the ack becomes a refusal
 * and the job is withdrawn (conn_fail_held).
 */
struct held_submit {
	uint64_t    plain;
	uint64_t    mark;
	uint32_t    len;
	struct job *job;
};

struct sub;  /* chan.c: one subscription */

/*
 * A blob queued in a connection's output: its bytes go out just before
 * plain byte plain_at of the stream of c->out (counted from the first byte
 * ever appended), by writev(2) from the blob itself.
 */
struct out_ref {
	uint64_t     plain_at;
	struct blob *blob;
};

struct conn {
	struct server   *srv;
	int              fd;
	unsigned         flags;
	enum conn_role   role;
	enum dialect     dialect;
	uint64_t         serial;
	char             peer[64];
	ev_io            rio, wio;
	struct buf       in, out;
	size_t           in_counted;   /* of in.cap, counted in srv->in_total */
	size_t           in_frame_end; /* offset in in.data past the frame being
	                                  handled */
	bool             in_adopted;   /* that frame's buffer went to a blob */
	uint32_t         out_head_left; /* unwritten bytes of the frame at the
	                                   head of out (0: head is a boundary) */
	double           frame_started; /* when the unfinished frame in `in`
	                                   began; 0: none */
	ev_timer         timer;        /* --frame-timeout, then the drop linger */
	const char      *close_why;    /* for the log, once the drop is flushed */
	TAILQ_ENTRY(conn) all_entry;
	TAILQ_ENTRY(conn) write_entry;
	TAILQ_ENTRY(conn) dead_entry;
	TAILQ_ENTRY(conn) held_entry;  /* on srv->held */
	uint64_t         out_written;  /* bytes of out written so far */
	struct out_hold *holds;        /* acknowledgements not yet durable,
	                                  oldest at hold_head */
	size_t           hold_head, hold_len, hold_cap;
	struct held_submit *hsubs;     /* submissions not yet durable, oldest
	                                  at hsub_head */
	size_t           hsub_head, hsub_len, hsub_cap;

	/* the core's handle on this peer, by role */
	struct master   *master;
	struct worker   *worker;

	/* master side */
	struct deferred {
		struct job  *job;      /* a job_ref */
		struct blob *result;   /* a reference to its result, or NULL:
		                          it outlives the job's (--keep-bytes) */
	}               *deferred;     /* endings held while backlogged, oldest
	                                  at def_head */
	size_t           def_head, def_len, def_cap;

	/* worker side (its slots are in c->worker) */
	ev_timer         heartbeat;
	double           hb_interval;  /* seconds, 0: no heartbeat */
	double           last_heard;   /* when the last whole frame arrived */
	double           last_ping;

	/* channels */
	struct sub      *subs;
	uint64_t         missed;       /* messages dropped: output backlog */

	/* who it is (--auth, limits, TLS) */
	char             addr[48];     /* peer address without port */
	bool             authed;       /* --auth: a token (or certificate) was accepted */
	unsigned         auth_roles;   /* AUTH_* of its token */
	char             auth_name[AUTH_NAME_MAX + 1];
	unsigned         auth_failures;
	unsigned         frames_unauthed; /* frames before auth (--max-unauth-frames) */
	ev_timer         auth_timer;   /* --auth-timeout */
	struct tls_conn *tls;          /* NULL: plain TCP */
	TAILQ_ENTRY(conn) unauth_entry; /* on srv->unauthed, oldest first */
	bool             unauth_listed;

	/* output: blobs queued between the plain bytes of out (conn_out_blob).
	 * out_written, holds and the limits count their bytes too. */
	struct out_ref  *refs;         /* oldest at ref_head */
	size_t           ref_head, ref_len, ref_cap;
	uint32_t         ref_done;     /* bytes of the head ref's blob written */
	uint64_t         out_plain_done; /* plain bytes of out written so far */
	uint64_t         out_blob_bytes; /* unwritten bytes of queued blobs */
	size_t           frame_plain;  /* where in out the open frame's header is */
};

/* conn_out_used: bytes of output not yet written, blobs included. */
static inline size_t
conn_out_used(const struct conn *c)
{
	return buf_used(&c->out) + (size_t)c->out_blob_bytes;
}

struct conn *conn_new(struct server *, int fd, enum conn_role);
void conn_close(struct conn *, const char *why);
void conn_send_raw(struct conn *, const char *, size_t);
void conn_send_json(struct conn *, json_t *);   /* steals the reference */
void conn_send_error(struct conn *, const char *code, const char *idjson,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void conn_send_missing(struct conn *, const char *field, const char *idjson);
size_t conn_frame_begin(struct conn *);
void conn_out_blob(struct conn *, struct blob *);
struct blob *conn_in_adopt(struct conn *, const char *span, size_t len);
void conn_out_take(struct conn *, struct buf *dst);
void conn_frame_end(struct conn *, size_t start);
void conn_frame_end_ack(struct conn *, size_t start);
void conn_release_held(struct server *, uint64_t durable);
void conn_hold_submit(struct conn *, struct job *, size_t plain_start);
void conn_fail_held(struct server *);
bool conn_backlogged(const struct conn *);
bool conn_defer_ending(struct conn *, struct job *);
void conn_drop(struct conn *, bool discard, const char *why, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void conn_refuse(struct server *, int fd, const char *code, const char *reason);
void conn_flush_pending(struct server *);
void conn_reap(struct server *);

/* ----------------------------------------------------------------- proto.c */

void proto_init(struct server *);   /* registers the TCP face's listener */
void proto_handle(struct conn *, const char *payload, size_t len);
void proto_send_ending(struct conn *master, struct job *, struct blob *result);
void proto_worker_gone(struct conn *);
/* a connection's authentication */
void proto_conn_new(struct conn *);
void proto_conn_closed(struct conn *);
void proto_unauth_shed(struct server *);
void proto_auth_as(struct conn *, const char *name, unsigned roles);

/* ------------------------------------------------------------------ chan.c */

struct chan {
	UT_hash_handle    hh;        /* srv->chans */
	char             *name;
	TAILQ_HEAD(, sub) subs;
	unsigned          nsubs;
	unsigned          nstreams;  /* web streams (GET /sub/C) holding it */
	bool              pinned;    /* created in the tree */
	uint64_t          published, delivered, dropped;
};

/* A channel listener hears every message published (the tree's readers). */
typedef void chan_listener(void *ctx, const char *name, const char *body, size_t len);
#define CHAN_LISTENERS_MAX 4
void   chan_listen(struct server *, chan_listener *, void *ctx);
struct chan *chan_find(struct server *, const char *name);
struct chan *chan_get(struct server *, const char *name, bool pin);
void   chan_unpin(struct server *, struct chan *);
void   chan_hold(struct server *, const char *name);
void   chan_drop(struct server *, const char *name);
void   chan_subscribe(struct server *, struct conn *, const char *name);
void   chan_unsubscribe(struct server *, struct conn *, const char *name);
void   chan_unsubscribe_all(struct server *, struct conn *);
size_t chan_publish(struct server *, const char *name, const char *body, size_t len);
size_t chan_deliver(struct server *, const char *name, const char *body, size_t len);
void   chan_stats(struct server *, uint64_t *nchans, uint64_t *published,
    uint64_t *delivered, uint64_t *dropped);
void   chan_shutdown(struct server *);

/* -------------------------------------------------------------------- fs.c */

int  fs_mount(struct server *, const char *mountpoint, const char *opts);
int  fs_start(struct server *);   /* after daemonising: threads, watchers */
void fs_unmount(struct server *);

/* ------------------------------------------------------------------ loop.c */

struct options {
	const char *listen;
	int         master_port;
	int         worker_port;
	size_t      max_frame;
	double      keep;
	size_t      keep_max;
	uint64_t    keep_bytes;     /* finished jobs' bytes (--keep-bytes) */
	uint64_t    max_jobs;
	uint64_t    max_memory;
	bool        foreground;
	const char *mount_opts;
	const char *mountpoint;
	int         verbosity;
	size_t      max_conns;      /* connections at once */
	size_t      max_input;      /* bytes of unfinished input frames, all
	                               connections together */
	double      frame_timeout;  /* seconds a frame may take to arrive */
	const char *data_dir;       /* --data: the journal's DIR; NULL: in memory */
	int         sync_mode;      /* --sync: enum journal_sync */
	unsigned    sync_interval_ms;
	bool        repair;         /* --repair */
	/* the web face (web.c): NULL http: none */
	const char *http;           /* --http [ADDR:]PORT */
	const char **http_routes;   /* --http-route PREFIX=TYPE, each */
	size_t      nhttp_routes;
	double      http_timeout;   /* seconds a route waits for a worker */
	size_t      http_max_conn;  /* HTTP connections at once */
	double      http_idle;      /* seconds an HTTP connection may idle */
	const char **http_hosts;    /* --http-host NAME, each: Host names served */
	size_t      nhttp_hosts;
	double      http_header_timeout; /* seconds an unauthenticated request
	                                    may take to arrive */
	size_t      http_max_unauth; /* HTTP connections not yet authenticated */
	bool        http_plain;     /* --http-plain: no TLS on the web face */
	/* who may do what */
	const char *auth_file;      /* --auth: the token file; NULL: no tokens */
	bool        insecure;       /* --insecure: serve non-loopback peers without --auth */
	size_t      max_conns_per_addr; /* 0: the default (loopback peers not counted) */
	bool        max_conns_per_addr_set;
	size_t      max_unauth;     /* unauthenticated connections at once */
	double      auth_timeout;   /* seconds to authenticate */
	unsigned    max_unauth_frames; /* frames before auth */
	const char *tls_cert, *tls_key, *tls_ca;
	double      tls_handshake_timeout; /* seconds to finish the handshake; 0: none */
	bool        group_set;      /* --group or -o group=: the tree's group */
	gid_t       group_gid;
	double      dead_keep;      /* --dead-keep seconds */
	size_t      dead_max;       /* --dead-max */
	/* cluster mode */
	const char *redis_url;      /* --redis: NULL: queues in this daemon */
	const char *redis_prefix;   /* --redis-prefix, default "jobfs" */
	int         redis_lease_ms; /* --redis-lease */
};

/*
 * Output backpressure.  Reading never stops: a peer is always read, so its
 * responses, pongs and cancels get through however full its output is.
 * Past OUT_SOFT_LIMIT a worker takes no new job and a master's job endings
 * wait in conn->deferred (the jobs hold the results); they resume once the
 * output drains below half of it.  Streamed partials stop past
 * OUT_PARTIAL_LIMIT (the master misses them).  What is still written
 * regardless (acks, errors, pongs, running notices) is bounded by
 * OUT_HARD_LIMIT, past which the peer is dropped with a "full" error frame.
 */
#define OUT_SOFT_LIMIT  (1u << 20)
#define OUT_PARTIAL_LIMIT (16u << 20)
#define OUT_HARD_LIMIT(srv) (64u * 1024 * 1024 + 2 * (srv)->opt.max_frame)
/* Seconds a dropped connection has to read its error frame. */
#define DROP_LINGER 5.0

struct server {
	struct ev_loop   *loop;
	struct options    opt;
	struct broker     broker;
	struct fs        *fs;
	struct chan      *chans;
	int               master_fd, worker_fd;
	ev_io             master_io, worker_io;
	ev_timer          accept_backoff; /* accepting paused: out of descriptors */
	double            accept_delay;   /* the next pause, seconds */
	struct log_limit  refused_log;    /* lines of refused connections */
	int               spare_fd;       /* /dev/null, closed to shed at EMFILE */
	size_t            in_total;       /* sum of conn->in_counted */
	ev_signal         sigint, sigterm;
	ev_prepare        before_sleep;
	TAILQ_HEAD(, conn) conns;
	TAILQ_HEAD(, conn) pending_writes;
	TAILQ_HEAD(, conn) dead;
	uint64_t          next_serial;
	uint64_t          nconns, nmasters, nworkers;
	uint64_t          frames_in, frames_out, bad_frames, dropped_slow;
	uint64_t          refused_conns;  /* over --max-conns or out of descriptors */
	uint64_t          dropped_input;  /* over --max-input */
	uint64_t          dropped_frame_timeout;
	uint64_t          partials_dropped; /* to a backlogged master */
	uint64_t          chan_published, chan_delivered, chan_dropped; /* of freed channels */
	chan_listener    *chan_fn[CHAN_LISTENERS_MAX];
	void             *chan_ctx[CHAN_LISTENERS_MAX];
	unsigned          nchan_listeners;
	TAILQ_HEAD(, conn) held;          /* connections holding acknowledgements */
	double            started;
	struct store     *store;          /* the journal (store_journal.c); NULL: none */
	struct web       *web;            /* the web face (web.c); NULL: none */
	struct rstore    *redis;          /* cluster mode (store_redis.c); NULL: none */
	ev_signal         sighup;         /* reload the token file and certificates */
	size_t            nunauthed;      /* connections not yet authenticated */
	TAILQ_HEAD(, conn) unauthed;      /* those, oldest first */
	uint64_t          auth_failures, refused_protected, refused_per_addr, refused_unauth;
	uint64_t          dropped_unauthed; /* timed out or over --max-unauth-frames */
	struct tls_server *tls;           /* NULL: plain TCP */
	uint64_t          tls_handshake_timeouts; /* closed by --tls-handshake-timeout */
};

void options_defaults(struct options *);
int  server_start(struct server *, const struct options *);
void server_run(struct server *);
void server_stop(struct server *);
/* Per-type counters in a "stats" reply without a type: at most this many. */
#define STATS_TYPES_MAX 100
json_t *server_stats(struct server *, const char *type, size_t max_types);

/* ------------------------------------------------------------------- web.c */

/* The web face: HTTP on libmicrohttpd, in this loop. */
struct web;
int      web_start(struct server *);  /* after server_start; 0 or an exit status */
void     web_stop(struct server *);   /* before the broker shuts down */
void     web_tls_reload(struct server *); /* SIGHUP: the web face's certificates */
int      web_port(const struct server *);
unsigned web_connections(void);

/* Exit statuses of the daemon, listed in jobfs(8). */
enum {
	EXIT_USAGE  = 1,
	EXIT_LISTEN = 2,
	EXIT_MOUNT  = 3,
	EXIT_START  = 4,
	EXIT_LOCKED = 5,   /* --data DIR is in use by another jobfs */
	EXIT_DATA   = 6,   /* --data DIR cannot be opened or replayed */
};

#endif /* JOBFS_H */
