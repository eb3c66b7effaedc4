/*
 * job.h — the broker's data model, part of its public header (broker.h):
 * a job, its type, its master and worker handles, the cursors that list
 * jobs, and a job's life (retries, delays, dependencies, the dead set).
 * The one thread that runs the loop owns all of it; nothing here is locked.
 */
#ifndef JOBFS_JOB_H
#define JOBFS_JOB_H

#include "base/base.h"

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

/* A binary heap of jobs that keeps each job's index in the job, so a job can
 * leave the middle of its queue (cancel, timeout) in O(log n). */
struct heap {
	struct job **items;
	size_t       len;
	size_t       cap;
};

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
	struct broker *broker;        /* whose deadline it is */
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
	                                 the dead set; NULL if none (life.c) */
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
 * A worker's slots live here and only here (dispatch.c): each of its
 * capacity slots is free, runs a job (running) or holds a stale job (its
 * key in stale_keys: see dispatch.c).
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

/*
 * The job lifecycle (life.c, life_fail.c, life_info.c, delay.c).
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


#endif /* JOBFS_JOB_H */
