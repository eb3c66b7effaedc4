/*
 * sj_compact.c — the journal store's compaction: the live state written
 * into a fresh segment as a snapshot, and the older segments dropped.
 *
 * Compaction.  When the segments hold more than the live state by half a
 * segment: S = journal_rotate(), then in one loop turn SNAP_BEGIN, one
 * TYPE record per configured type and one JOB record per job in the
 * table, SNAP_END (with the count of records between), then
 * journal_drop_before(S).  The journal writes them into S in one piece
 * after the old segments are synced, and unlinks the old segments only
 * once S's records up to SNAP_END are synced and S's directory entry too
 * (journal.c, in every --sync mode: with --sync never a kill -9 keeps the
 * page cache, so what counts there is that the unlinks come after the
 * whole snapshot is written, which they do).
 *
 * A compaction is atomic as a whole.  Replay reads every segment in order;
 * SNAP_BEGIN starts a state on the side that the snapshot's records build,
 * and only SNAP_END makes it the state (everything before is forgotten).
 * So:
 *   - a crash before SNAP_END is written (or before it is durable, with a
 *     power cut) leaves the old segments whole and the snapshot torn at
 *     the tail of the last segment: the journal cuts the torn record (and
 *     logs "torn tail cut"), replay finds no SNAP_END, drops the side
 *     state and keeps what the old segments said, and the store appends
 *     SNAP_ABORT before any other record, so that what it writes next in
 *     S is not read as part of the snapshot by a later replay either;
 *   - a crash after SNAP_END is durable, before or between the unlinks,
 *     leaves the snapshot and some old segments (always the newest ones:
 *     they are unlinked oldest first): replay reads them, then the whole
 *     snapshot replaces what they made;
 *   - records after SNAP_END (later turns, in S) apply to that state;
 *   - a snapshot with fewer records than its SNAP_END says (--repair
 *     dropped some, as after a power cut that wrote its end but not all
 *     of it) replaces nothing: it is ignored if anything came before it,
 *     and read as it is only if nothing did (its old segments are gone).
 * A record of the snapshot that the journal could not take (its memory
 * backlog full) makes the compaction end with SNAP_ABORT (which the
 * journal always takes) instead of SNAP_END, and drop nothing.  Journals
 * written before SNAP_BEGIN hold SNAPSHOT records: read as they were
 * meant, forgetting every job at once.
 */
#include <errno.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "store/store_journal.h"

/*
 * compact: write the live state into a fresh segment and delete the older
 * ones (see the top of this file for why a crash anywhere in it is safe).
 */
static void
compact(struct store *s)
{
	struct job_cursor cur = { .open = false };
	struct sj_rec r;
	struct job *j;
	struct journal_stats st;
	uint64_t snap, lost = s->lost_appends, recs;

	journal_stats(s->j, &st);
	log_debug("journal: %s: compacting %" PRIu64 " bytes in %u segments, "
	    "about %" PRIu64 " live", s->opt.dir, st.disk_bytes, st.segments,
	    s->live_bytes);
	s->drop_segno = journal_rotate(s->j);
	journal_crash_mark(s->j, journal_appended_lsn(s->j));
	memset(&r, 0, sizeof r);
	r.kind = SJ_SNAP_BEGIN;
	r.next_seq = broker_next_seq(s->b);
	s->need_snapshot = false;
	append(s, &r);
	if (s->lost_appends != lost)
		return;      /* not begun: need_snapshot again, for a later turn */
	snap = REC_BYTES(s->last_len);   /* (types' records: a few) */
	journal_stats(s->j, &st);
	recs = st.records;
	broker_types_each(s->b, type_rec_append, s);
	broker_schedules_each(s->b, sched_rec_append, s);
	broker_cursor_open(s->b, &cur);
	while ((j = broker_cursor_job(&cur)) != NULL) {
		job_rec_of(s, j, &r);
		append(s, &r);
		snap += REC_BYTES(s->last_len);   /* bodies and results too */
		broker_cursor_advance(&cur);
	}
	broker_cursor_close(s->b, &cur);
	journal_stats(s->j, &st);
	memset(&r, 0, sizeof r);
	r.kind = SJ_SNAP_END;
	r.records = st.records - recs;
	if (s->lost_appends == lost)
		append(s, &r);
	if (s->lost_appends != lost) {
		/* A record of it could not be kept: it must never count, and
		 * the old segments stay.  (The journal always takes this one.) */
		memset(&r, 0, sizeof r);
		r.kind = SJ_SNAP_ABORT;
		append(s, &r);
		return;
	}
	snap += REC_BYTES(buf_used(&s->scratch));
	/* The live state is what the snapshot took, exactly: job_live_bytes
	 * leaves out what changes (a worker's name, a job's life), so counted
	 * job by job the sum drifts below it, and compaction would come back
	 * at once where many jobs have a life (a million delayed jobs). */
	s->live_bytes = snap;
	if (journal_drop_before(s->j, s->drop_segno) < 0)
		log_warn("journal: %s: cannot drop segments before %" PRIu64,
		    s->opt.dir, s->drop_segno);
	s->compacting = true;
	s->compactions++;
}

/* maybe_compact: when the segments hold half a segment's worth more than
 * the live state, or records were lost while the disk failed. */
void
maybe_compact(struct store *s)
{
	struct journal_stats st;

	if (journal_error(s->j) != 0)
		return;
	journal_stats(s->j, &st);
	if (s->compacting) {
		if (st.first_segno < s->drop_segno)
			return;       /* the last one's drop is not done */
		s->compacting = false;
	}
	/* Half a segment over the live state: the old segments stay until
	 * the snapshot is synced, and appends go on meanwhile, so the peak is
	 * about twice the live state plus half a segment plus that turn. */
	if (s->need_snapshot || st.disk_bytes > s->live_bytes + st.segment_bytes / 2)
		compact(s);
}

