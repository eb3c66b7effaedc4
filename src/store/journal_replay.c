/*
 * journal_replay.c — the journal's replay: every record of every segment
 * handed back in order, a torn tail cut, damage repaired or reported.
 * See journal.c for the format.
 *
 * Replay.  Every record of every segment, in order.  A bad record (length
 * past the end, CRC mismatch) after which no good record follows in the last
 * segment is a torn tail: the file is cut there and the bytes dropped are
 * logged; a last segment no longer than its header whose header is torn (a
 * crash just after creating it) is started afresh.  Any other damage (a bad header, a bad record followed by good
 * ones, a segment missing or shorter than the next one's header says) fails
 * the replay with the segment's file name and offset, unless opts.repair: then
 * each damaged stretch, from a bad record to the next offset where a record's
 * length and CRC check out, is turned into a padding record in place (so the
 * repair lasts) and counted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "store/journal.h"
/* ------------------------------------------------------------- replay */

static bool
rec_ok(const uint8_t *p, uint64_t size, uint64_t o, uint64_t *rl)
{
	uint32_t len;

	if (size - o < RH)
		return false;
	len = get32(p + o);
	if (len > JOURNAL_MAX_RECORD || len > size - o - RH)
		return false;
	if (crc32c(0, p + o + 8, (size_t)len + 1) != get32(p + o + 4))
		return false;
	*rl = RH + len;
	return true;
}

static const char *
rec_why(const uint8_t *p, uint64_t size, uint64_t o)
{
	if (size - o < RH)
		return "truncated header";
	if (get32(p + o) > size - o - RH || get32(p + o) > JOURNAL_MAX_RECORD)
		return "length past the end";
	return "checksum mismatch";
}

/* resync: the next offset from o on where a good record starts, or size. */
static uint64_t
resync(const uint8_t *p, uint64_t size, uint64_t o)
{
	uint64_t rl;

	for (; o + RH <= size; o++)
		if (rec_ok(p, size, o, &rl))
			return o;
	return size;
}

/* write_pad: turn [o, n) into a padding record, keeping its bytes. */
static int
write_pad(int fd, const uint8_t *p, uint64_t o, uint64_t n)
{
	uint8_t h[RH];
	uint8_t kind = KIND_PAD;
	uint32_t crc = crc32c(0, &kind, 1);

	crc = crc32c(crc, p + o + RH, (size_t)(n - o - RH));
	put32(h, (uint32_t)(n - o - RH));
	put32(h + 4, crc);
	h[8] = kind;
	return pwrite_all(fd, h, RH, o);
}

struct replay_state {
	journal_replay_cb          *cb;
	void                       *ctx;
	struct journal_replay_info *info;
	char                       *err;
	size_t                      errlen;
	bool                        have_prev;
	uint64_t                    prev_segno, prev_end;  /* end LSN of the previous */
	bool                        prev_resized;          /* repair changed its size */
};

/*
 * replay_seg: replay one segment whose fd is open read-write.  Returns 0,
 * 1 if the segment is to be dropped (repair of a bad header; an empty last
 * segment whose header a crash tore), or -1 with err set.  *size is the
 * size after any cut.
 */
static int
replay_seg(struct journal *j, struct replay_state *rs, int fd, uint64_t segno,
    bool last, uint64_t *size, uint64_t *base)
{
	char path[PATH_MAX];
	uint8_t h[HDR];
	struct stat st;
	uint8_t *p = NULL;
	uint64_t o, rl;
	bool padded = false;
	int rc = 0;

	snprintf(path, sizeof path, "%s/%016" PRIx64 ".log", j->dir, segno);
	if (fstat(fd, &st) < 0) {
		snprintf(rs->err, rs->errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	*size = (uint64_t)st.st_size;
	if (*size < HDR || pread(fd, h, HDR, 0) != HDR || !seg_header_ok(h) ||
	    get64(h + 8) != segno) {
		if (last && *size <= HDR) {
			/* A crash right after creating it: start it afresh. */
			*base = rs->have_prev ? rs->prev_end : 0;
			seg_header(h, segno, *base, rs->have_prev ? 0 : SEG_NOCHECK);
			if (ftruncate(fd, 0) < 0 || pwrite_all(fd, h, HDR, 0) < 0) {
				snprintf(rs->err, rs->errlen, "%s: %s", path,
				    strerror(errno));
				return -1;
			}
			if (*size > 0)
				log_warn("journal: %s: torn segment header "
				    "rewritten", path);
			*size = HDR;
			return 0;
		}
		if (!j->opt.repair) {
			snprintf(rs->err, rs->errlen, "%s: damaged segment header "
			    "at offset 0", path);
			return -1;
		}
		log_warn("journal: %s: damaged segment header: dropping the "
		    "segment (%" PRIu64 " bytes)", path, *size);
		rs->info->dropped_bytes += *size;
		rs->info->dropped_regions++;
		rs->prev_resized = true;
		return 1;
	}
	*base = get64(h + 16);
	if (rs->have_prev && !(get32(h + 24) & SEG_NOCHECK) &&
	    (segno != rs->prev_segno + 1 || *base != rs->prev_end)) {
		if (!rs->prev_resized && !j->opt.repair) {
			snprintf(rs->err, rs->errlen, "%s: at offset 0: segment "
			    "starts at LSN %" PRIu64 " but the one before ends "
			    "at %" PRIu64 " (a segment is missing or was cut)",
			    path, *base, rs->prev_end);
			return -1;
		}
		if (!rs->prev_resized)
			log_warn("journal: %s: segments before it are missing "
			    "or cut (LSN %" PRIu64 " expected, %" PRIu64 " found)",
			    path, rs->prev_end, *base);
		/* Make the repair last: stop checking this boundary. */
		seg_header(h, segno, *base, get32(h + 24) | SEG_NOCHECK);
		if (pwrite_all(fd, h, HDR, 0) < 0 || fdatasync(fd) < 0) {
			snprintf(rs->err, rs->errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
	}
	rs->prev_resized = false;
	if (*size > HDR) {
		p = mmap(NULL, (size_t)*size, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			snprintf(rs->err, rs->errlen, "%s: mmap: %s", path,
			    strerror(errno));
			return -1;
		}
		posix_madvise(p, (size_t)*size, POSIX_MADV_SEQUENTIAL);
	}
	o = HDR;
	while (o < *size) {
		uint64_t n;

		if (rec_ok(p, *size, o, &rl)) {
			if (p[o + 8] != KIND_PAD) {
				if (rs->cb != NULL && rs->cb(rs->ctx, p[o + 8],
				    p + o + RH, (uint32_t)(rl - RH)) != 0) {
					snprintf(rs->err, rs->errlen, "%s: replay "
					    "stopped at the record at offset %"
					    PRIu64, path, o);
					rc = -1;
					goto out;
				}
				rs->info->records++;
				rs->info->bytes += rl;
			}
			o += rl;
			continue;
		}
		n = resync(p, *size, o + 1);
		if (n == *size && last) {
			log_warn("journal: %s: torn tail cut at offset %" PRIu64
			    " (%" PRIu64 " bytes dropped)", path, o, *size - o);
			rs->info->torn_bytes += *size - o;
			if (ftruncate(fd, (off_t)o) < 0) {
				snprintf(rs->err, rs->errlen, "%s: ftruncate: %s",
				    path, strerror(errno));
				rc = -1;
				goto out;
			}
			*size = o;
			break;
		}
		if (!j->opt.repair) {
			snprintf(rs->err, rs->errlen, "%s: damaged record at offset "
			    "%" PRIu64 " (%s; %" PRIu64 " bytes to %s)", path, o,
			    rec_why(p, *size, o), n - o,
			    n == *size ? "the end of the segment" :
			    "the next good record");
			rc = -1;
			goto out;
		}
		log_warn("journal: %s: damaged record at offset %" PRIu64
		    " (%s): %" PRIu64 " bytes dropped", path, o,
		    rec_why(p, *size, o), n - o);
		if (n - o >= RH) {
			if (write_pad(fd, p, o, n) < 0) {
				snprintf(rs->err, rs->errlen, "%s: %s", path,
				    strerror(errno));
				rc = -1;
				goto out;
			}
			padded = true;
		} else if (n == *size) {
			if (ftruncate(fd, (off_t)o) < 0) {
				snprintf(rs->err, rs->errlen, "%s: %s", path,
				    strerror(errno));
				rc = -1;
				goto out;
			}
			rs->prev_resized = true;
			*size = o;
		} else {
			snprintf(rs->err, rs->errlen, "%s: cannot repair %" PRIu64
			    " bytes at offset %" PRIu64, path, n - o, o);
			rc = -1;
			goto out;
		}
		rs->info->dropped_bytes += n - o;
		rs->info->dropped_regions++;
		o = n;
	}
	if (padded || rs->prev_resized) {
		rs->info->repaired_segments++;
		if (fdatasync(fd) < 0) {
			snprintf(rs->err, rs->errlen, "%s: %s", path, strerror(errno));
			rc = -1;
		}
	}
out:
	if (p != NULL)
		munmap(p, (size_t)(st.st_size));
	return rc;
}

/*
 * journal_replay: call cb (may be NULL) for every record of every segment
 * in order, cut a torn tail, repair if opts.repair, and make the journal
 * ready to append.  Returns 0, or -1 with a message in err naming the
 * segment file and offset.  info (may be NULL) says what was found.
 */
int
journal_replay(struct journal *j, journal_replay_cb *cb, void *ctx,
    struct journal_replay_info *info, char *err, size_t errlen)
{
	struct journal_replay_info dummy;
	struct replay_state rs = { cb, ctx, info ? info : &dummy, err, errlen,
	    false, 0, 0, false };
	unsigned keep = 0;
	int fd = -1;

	memset(rs.info, 0, sizeof *rs.info);
	if (j->replayed) {
		snprintf(err, errlen, "%s: journal replayed twice", j->dir);
		return -1;
	}
	for (unsigned i = 0; i < j->nsegs; i++) {
		char name[32];
		uint64_t size = 0, base = 0;
		int r;

		seg_name(name, sizeof name, j->segs[i].segno);
		if (fd >= 0)
			close(fd);
		fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "%s/%s: %s", j->dir, name,
			    strerror(errno));
			return -1;
		}
		r = replay_seg(j, &rs, fd, j->segs[i].segno, i + 1 == j->nsegs,
		    &size, &base);
		if (r < 0) {
			close(fd);
			return -1;
		}
		if (r == 1) {
			close(fd);
			fd = -1;
			unlinkat(j->dirfd, name, 0);
			continue;
		}
		j->segs[keep++] = (struct seg){ j->segs[i].segno, size };
		rs.have_prev = true;
		rs.prev_segno = j->segs[i].segno;
		rs.prev_end = base + size - HDR;
		j->base_lsn = base;
		rs.info->segments++;
	}
	j->nsegs = keep;
	if (fd < 0 && keep > 0) {
		/* The last segment was dropped: the one before is current. */
		char name[32];

		seg_name(name, sizeof name, j->segs[keep - 1].segno);
		fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "%s/%s: %s", j->dir, name,
			    strerror(errno));
			return -1;
		}
		j->base_lsn = rs.prev_end - (j->segs[keep - 1].size - HDR);
	}
	if (keep == 0) {
		char name[32];
		uint8_t h[HDR];
		uint64_t segno = rs.have_prev ? rs.prev_segno + 1 : 1;

		seg_name(name, sizeof name, segno);
		fd = openat(j->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0644);
		seg_header(h, segno, 0, SEG_NOCHECK);
		if (fd < 0 || pwrite_all(fd, h, HDR, 0) < 0) {
			snprintf(err, errlen, "%s/%s: %s", j->dir, name,
			    strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		crash_point("datadir-segment");
		j->segs = xrealloc(j->segs, sizeof *j->segs);
		j->segs[0] = (struct seg){ segno, HDR };
		j->nsegs = keep = 1;
		j->base_lsn = 0;
	}
	/* What was there before this process may sit only in the page cache. */
	if (fdatasync(fd) < 0 || fsync(j->dirfd) < 0) {
		snprintf(err, errlen, "%s: sync: %s", j->dir, strerror(errno));
		close(fd);
		return -1;
	}
	j->fd = fd;
	j->segno = j->segs[keep - 1].segno;
	j->written_off = j->synced_off = j->buf_off = j->segs[keep - 1].size;
	j->old_bytes = 0;
	for (unsigned i = 0; i + 1 < keep; i++)
		j->old_bytes += j->segs[i].size;
	j->durable_lsn = lsn_at(j, j->written_off);
	j->last_sync = ev_now(j->loop);
	j->replayed = true;
	if (j->written_off >= j->opt.segment_bytes)
		j->rotate_wanted = true;
	if (rs.info->torn_bytes || rs.info->dropped_bytes)
		log_warn("journal: %s: replayed %" PRIu64 " records; %" PRIu64
		    " torn bytes cut, %" PRIu64 " damaged bytes in %" PRIu64
		    " places dropped", j->dir, rs.info->records,
		    rs.info->torn_bytes, rs.info->dropped_bytes,
		    rs.info->dropped_regions);
	return 0;
}

