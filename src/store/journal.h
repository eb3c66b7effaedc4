/*
 * journal.h — the journal: an append-only, checksummed, segmented record log
 * in a data directory, made durable by group commit.  A store mechanism: it
 * knows records (a kind byte and a payload), not jobs.  See journal.c for
 * the format and the design.
 *
 * Everything here runs on the loop thread, except that journal.c owns one
 * helper thread that only calls fdatasync/fsync (described there).
 */
#ifndef JOURNAL_H
#define JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <ev.h>

#include "store/store.h"   /* enum journal_sync */

/* --------------------------------------------------------------- journal.c */

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

#endif
