/*
 * store_journal.h — the journal as the broker's store: broker events become
 * journal records (src/journal.c), and at start the records become jobs
 * again.  See sj_codec.c for the records and what they mean.  Private to
 * src/store/: what the journal store's files (store_journal.c, sj_*.c)
 * share.
 */
#ifndef STORE_JOURNAL_H
#define STORE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"
#include "store/store.h"
#include "store/journal.h"

/* ----------------------------------------------------------- the records */

enum sj_kind {
	SJ_JOB = 1,      /* a job's whole state: submitted, or in a snapshot */
	SJ_DISPATCH,     /* it runs (on worker_name, since started) */
	SJ_REQUEUE,      /* queued again after a loss; losses is the new count */
	SJ_PARTIAL,      /* one more partial result (body) */
	SJ_FINISH,       /* it ended: state, finished, result */
	SJ_FORGET,       /* it left the table */
	SJ_SNAPSHOT,     /* forget everything at once (journals of before
	                    SNAP_BEGIN: read, never written) */
	SJ_TYPE,         /* a type's settings: paused, limit, default retries */
	SJ_SNAP_BEGIN,   /* a snapshot: the whole live state follows ... */
	SJ_SNAP_END,     /* ... and is complete: it replaces what came before */
	SJ_SNAP_ABORT,   /* the snapshot begun before will never end: ignore it */
	SJ_SCHED,        /* a schedule (repeating jobs): its JSON, or removed */
};

/* A string of a record: p NULL means absent.  Decoded strings point into
 * the payload and are NUL-terminated there. */
struct sj_str {
	const char *p;
	uint32_t    n;
};

/* One record, decoded, or to encode: which fields count depends on kind. */
struct sj_rec {
	enum sj_kind  kind;
	struct sj_str key;          /* every kind but SNAPSHOT */
	struct sj_str idjson;       /* JOB: NULL when the id is its key (SJ_F_IDKEY) */
	struct sj_str type;         /* JOB */
	struct sj_str target;       /* JOB */
	struct sj_str worker_name;  /* JOB, DISPATCH */
	struct sj_str body;         /* JOB, PARTIAL */
	struct sj_str result;       /* JOB, FINISH */
	struct sj_str partials;     /* JOB */
	int64_t       priority;     /* JOB */
	int64_t       timeout_ms;   /* JOB */
	uint32_t      seq;          /* JOB */
	uint8_t       flags;        /* JOB: SJ_F_* */
	uint8_t       state;        /* JOB, FINISH: enum job_state */
	uint8_t       losses;       /* JOB, REQUEUE */
	double        submitted;    /* JOB */
	double        started;      /* JOB, DISPATCH */
	double        finished;     /* JOB, FINISH */
	uint64_t      next_seq;     /* SNAPSHOT, SNAP_BEGIN */
	uint64_t      records;      /* SNAP_END: records since SNAP_BEGIN */
	struct sj_str owner;        /* JOB: the submitter's token name (--auth);
	                               absent in records written before it */
	/* the job lifecycle */
	struct sj_str life;         /* JOB: job_life_json's text, or absent */
	struct sj_str log;          /* JOB, FINISH: the job's log, or absent */
	uint8_t       paused;       /* TYPE (key: the type's name) */
	uint32_t      limit;        /* TYPE */
	int32_t       retries;      /* TYPE */
	int64_t       backoff_ms;   /* TYPE */
	/* repeating jobs */
	struct sj_str spec;         /* SCHED (key: type, '\n', name): the
	                               schedule's JSON (schedule_json), its last
	                               due time in it; absent: removed */
};

#define SJ_F_DETACH 0x1
#define SJ_F_STREAM 0x2
#define SJ_F_NOTIFY 0x4
#define SJ_F_IDKEY  0x8   /* an integer id: its JSON text is its key */
#define SJ_F_OWNER  0x10  /* on the wire only: the owner string ends the
                             record (records before owners lack both) */
#define SJ_F_LIFE   0x20  /* on the wire only: the job's life
                             follows the owner */
#define SJ_F_LOG    0x80  /* on the wire only: the job's log follows the
                             life (or the owner, if no life) */
#define SJ_F_DROPPED 0x40 /* finished, its body, result and partials no
                             longer kept (--keep-bytes): all three empty */

/* sj_encode: r as a payload appended to out.  sj_decode: payload into r;
 * -1 if it is not a well-formed record of that kind. */
void sj_encode(const struct sj_rec *r, struct buf *out);

/*
 * Strings of at least SJ_GATHER_MIN bytes (bodies, results) need not be
 * copied into the encoding: with cuts, put_str notes where each goes and
 * append() hands the journal an iovec that points at the string where it
 * lies (the job's body or result), between pieces of the encoding.
 */
#define SJ_GATHER_MIN 1024
#define SJ_CUTS_MAX   4     /* body, result, partials, log */

struct sj_cuts {
	unsigned      n;
	size_t        at[SJ_CUTS_MAX];   /* offset in the encoding */
	struct sj_str str[SJ_CUTS_MAX];
};

/* sj_encode_cuts: sj_encode, with its large strings noted in cuts (its n
 * zero before) instead of copied. */
void sj_encode_cuts(const struct sj_rec *r, struct buf *out, struct sj_cuts *cuts);
int  sj_decode(uint8_t kind, const void *payload, uint32_t len, struct sj_rec *r);

/* ------------------------------------------------------ the replayed state */


/* The jobs that the records describe, by key, as replay builds them. */
struct sj_state;

struct sj_state *sj_state_new(void);
int   sj_state_apply(struct sj_state *, const struct sj_rec *);
void  sj_state_free(struct sj_state *);
size_t sj_state_count(const struct sj_state *);
uint64_t sj_state_next_seq(const struct sj_state *);
uint64_t sj_state_ignored(const struct sj_state *);  /* records about unknown jobs */
/* sj_state_short: snapshots with fewer records than their end said (only
 * after --repair dropped some): ignored, unless nothing came before. */
uint64_t sj_state_short(const struct sj_state *);
/* sj_state_drop_torn: after the last record: a snapshot begun and never
 * ended (a crash cut it short) is dropped, and the state stays what the
 * records before it made.  True if there was one; *records: how many of
 * its records were read. */
bool  sj_state_drop_torn(struct sj_state *, uint64_t *records);
/* After sj_state_each: jobs that were running, queued again / failed. */
void  sj_state_running(const struct sj_state *, uint64_t *requeued, uint64_t *failed);

/*
 * sj_state_each: call cb for every job in submission order (seq), as the
 * broker should get it back: a job that was running is queued again with
 * one more loss (failed past JOB_MAX_LOSSES, finished at `now`), and
 * was_running says so (the store records that change).  Stops at
 * cb's first non-zero return, which it returns.
 */
typedef int sj_restore_cb(void *ctx, const struct restore_req *, bool was_running);
int   sj_state_each(struct sj_state *, double now, sj_restore_cb *, void *ctx);
/* sj_state_types_each: every type's settings, as its last TYPE record said. */
typedef void sj_type_cb(void *ctx, const struct sj_rec *);
void  sj_state_types_each(struct sj_state *, sj_type_cb *, void *ctx);
/* sj_state_scheds_each: every schedule, as its last SCHED record said
 * (removed ones not). */
void  sj_state_scheds_each(struct sj_state *, sj_type_cb *, void *ctx);

/* ------------------------------------------ the store (store_journal.c) */

struct store {
	struct server     *srv;
	struct broker     *b;
	struct journal    *j;
	struct store_opts  opt;
	struct buf         scratch;
	size_t             last_len;      /* payload bytes of the last append,
	                                     gathered strings included */
	uint64_t           live_bytes;    /* what a snapshot would write, about */
	uint64_t           drop_segno;    /* compaction: segments below go */
	bool               compacting;    /* its drop is not done yet */
	bool               need_snapshot; /* a record could not be appended */
	int                err;           /* as told to the broker */
	uint64_t           compactions;
	uint64_t           lost_appends;
	struct buf         life;          /* job_rec_of's life text */
	struct sj_cuts     cuts;          /* append's large strings, gathered
	                                     from where they lie */
	bool               opening;       /* store_open puts types back */
};

/* rec_bytes: a record's size on disk, for payload n. */
#define REC_BYTES(n) ((uint64_t)JOURNAL_REC_HEADER + (n))
/* What an encoded string costs besides its bytes: length and NUL. */
#define STR_COST(n)  (4u + (n) + 1)

/* store_journal.c */
struct sj_str str_of(const char *p, size_t n);
void append(struct store *s, const struct sj_rec *r);
void job_rec_of(struct store *s, const struct job *j, struct sj_rec *r);
bool type_rec_append(void *ctx, struct jtype *t);

/* sj_sched.c: schedules (repeating jobs) */
bool sched_rec_append(void *ctx, const struct schedule *);
void on_schedule_changed(void *ctx, const struct schedule *, int what);
void restore_sched(void *ctx, const struct sj_rec *);

/* sj_compact.c */
void maybe_compact(struct store *s);

#endif
