/*
 * journal.h — the journal: an append-only, checksummed, segmented record log
 * in a data directory, made durable by group commit.  A store mechanism: it
 * knows records (a kind byte and a payload), not jobs.  See journal.c for
 * the format and the design; journal_seg.c holds the segment files and
 * opening, journal_replay.c the replay.
 *
 * Everything here runs on the loop thread, except that journal.c owns one
 * helper thread that only calls fdatasync/fsync (described there).
 */
#ifndef JOURNAL_H
#define JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <ev.h>

#include "store/store.h"   /* enum journal_sync */

/* ------------------------------ journal.c, journal_seg.c, journal_replay.c */

struct journal;


/* Called on the loop thread whenever journal_durable_lsn() advances. */
typedef void journal_durable_cb(void *ctx, uint64_t durable_lsn);

/* Called by journal_replay for each record in order; non-zero stops it. */
typedef int journal_replay_cb(void *ctx, uint8_t kind, const void *payload,
    uint32_t len);

struct journal_opts {
	enum journal_sync   sync;
	unsigned            interval_ms;    /* JOURNAL_SYNC_INTERVAL; 0 means 50 */
	uint64_t            segment_bytes;  /* rotate past this; 0 means 64 MiB */
	uint64_t            max_backlog;    /* unwritten bytes kept; 0: 256 MiB */
	bool                repair;         /* replay skips damage instead of failing */
	journal_durable_cb *on_durable;
	void               *ctx;
};

#define JOURNAL_SEGMENT_BYTES  (64u << 20)
#define JOURNAL_MAX_RECORD     (256u << 20)  /* payload bytes of one record */
#define JOURNAL_REC_HEADER     9              /* u32 length, u32 crc, u8 kind */
#define JOURNAL_SEG_HEADER     32

/* What journal_replay found (also logged). */
struct journal_replay_info {
	uint64_t records;         /* records handed to the callback */
	uint64_t bytes;           /* their bytes, headers included */
	unsigned segments;
	uint64_t torn_bytes;      /* cut from the tail of the last segment */
	uint64_t dropped_bytes;   /* skipped by repair (damage elsewhere) */
	uint64_t dropped_regions; /* damaged stretches skipped; each held >= 1 record */
	unsigned repaired_segments;
};

struct journal_stats {
	uint64_t disk_bytes;      /* all segment files, headers included */
	uint64_t cur_bytes;       /* of which the current segment */
	uint64_t segment_bytes;   /* the rotation size in force */
	unsigned segments;
	uint64_t first_segno, cur_segno;
	uint64_t records;         /* appended since open */
	uint64_t syncs;           /* fdatasyncs completed since open */
	uint64_t sync_last_us, sync_max_us;
	uint64_t appended_lsn, written_lsn, durable_lsn;
	uint64_t backlog_bytes;   /* appended, not yet written */
	int      error;           /* as journal_error() */
};

/* Fault seam for tests (as beanstalkd's falloc): when set before
 * journal_open, the sync thread calls it instead of fdatasync. */
extern int (*journal_fdatasync_hook)(int fd);

struct journal *journal_open(struct ev_loop *, const char *dir,
    const struct journal_opts *, char *err, size_t errlen);
int      journal_replay(struct journal *, journal_replay_cb *, void *ctx,
    struct journal_replay_info *, char *err, size_t errlen);
uint64_t journal_append(struct journal *, uint8_t kind, const struct iovec *,
    int iovcnt);
void     journal_flush(struct journal *);
uint64_t journal_durable_lsn(const struct journal *);
uint64_t journal_appended_lsn(const struct journal *);
int      journal_error(const struct journal *);
bool     journal_renewed(struct journal *);
uint64_t journal_rotate(struct journal *);
int      journal_drop_before(struct journal *, uint64_t segno);
void     journal_crash_mark(struct journal *, uint64_t lsn);   /* crash points */
void     journal_stats(const struct journal *, struct journal_stats *);
int      journal_close(struct journal *);

/* ------------------------------------ shared by journal.c, journal_*.c */

#define SEG_MAGIC      "jobfsJ01"
#define SEG_NOCHECK    0x1u     /* header flag: don't check the base against the previous segment */
#define KIND_PAD       0
#define RETRY_FIRST    0.05
#define RETRY_MAX      2.0
#define HDR            JOURNAL_SEG_HEADER
#define RH             JOURNAL_REC_HEADER

struct seg {
	uint64_t segno;
	uint64_t size;
};

/* What the loop asks of the sync thread. */
struct sync_req {
	int  fd;
	int  dirfd;
	bool dir;        /* also fsync the directory */
	bool snap;       /* it covers a compaction's snapshot (crash points) */
};

struct journal {
	struct ev_loop      *loop;
	struct journal_opts  opt;
	char                *dir;
	char                *abs_dir;      /* dir from /: found again after a chdir */
	int                  dirfd;
	int                  lockfd;
	bool                 replayed;
	bool                 closing;

	struct seg          *segs;       /* sorted; the last is the current one */
	unsigned             nsegs;
	uint64_t             old_bytes;  /* sizes of all but the current segment */

	/* The current segment. */
	int                  fd;
	uint64_t             segno;
	uint64_t             base_lsn;
	uint64_t             written_off;  /* file size: what was written */
	uint64_t             synced_off;   /* what the last sync covered */

	/* Bytes from file offset buf_off on: synced_off in modes ALWAYS and
	 * INTERVAL (written-unsynced, then pending), written_off in NEVER. */
	uint8_t             *data;
	size_t               len, cap;
	uint64_t             buf_off;

	bool                 rotate_wanted;
	bool                 fresh_seg;    /* rotated to; nothing written yet (crash points) */
	uint64_t             snap_from;    /* a snapshot's records start here (crash points) */
	bool                 dir_dirty;    /* an entry changed since the last dir fsync */
	bool                 drop_pending;
	uint64_t             drop_segno, drop_lsn;

	uint64_t             durable_lsn;
	bool                 gone;         /* the current segment was deleted */
	bool                 renewed;      /* started again in a new DIR */
	int                  gone_err;     /* why DIR could not be taken back (logged) */
	int                  err;
	double               backoff;
	ev_timer             retry;
	ev_timer             interval;
	ev_async             done;
	double               last_sync;

	/* Sync thread.  busy, req_off, req_dir: loop only.  The rest under mu. */
	pthread_t            thr;
	bool                 thr_started;
	bool                 inited;       /* mu, cv and the watchers */
	pid_t                pid;          /* written in DIR/lock */
	pthread_mutex_t      mu;
	pthread_cond_t       cv;
	bool                 busy;
	uint64_t             req_off;
	bool                 req_dir;
	bool                 req_retry;    /* sent by retry_cb: may clear err */
	bool                 req_ready, stop;
	struct sync_req      req;
	bool                 res_ready;
	int                  res_err;
	uint64_t             res_us;

	uint64_t             records, syncs, sync_last_us, sync_max_us;
};

/* journal.c: the sync thread's and the retry's watchers */
void     done_cb(struct ev_loop *loop, ev_async *w, int revents);
void     interval_cb(struct ev_loop *loop, ev_timer *w, int revents);
void     retry_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* journal_seg.c: little bits */
void     put32(uint8_t *p, uint32_t v);
uint32_t get32(const uint8_t *p);
uint64_t get64(const uint8_t *p);
uint64_t mono_us(void);
void     seg_name(char *out, size_t n, uint64_t segno);
uint64_t lsn_at(const struct journal *j, uint64_t off);
bool     snap_written(const struct journal *j);
void     seg_header(uint8_t *h, uint64_t segno, uint64_t base, uint32_t flags);
bool     seg_header_ok(const uint8_t *h);
int      pwrite_all(int fd, const void *p, size_t n, uint64_t off);

#endif
