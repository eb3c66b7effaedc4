/*
 * conn_out.c — a connection's output path: frames appended to c->out,
 * blobs queued between its plain bytes (c->refs), endings deferred while
 * a master is backlogged, error frames, and the writes: writev(2) of
 * plain bytes and blobs together, up to what the store has made durable
 * (the holds, conn.c), once per loop turn (conn_flush_pending).  conn.c's
 * opening comment tells the whole design.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tcp/tcp.h"

#define WRITE_IOV  64   /* pieces gathered by one writev */

/* conn_backlogged: its output went over the soft limit (conn_frame_end)
 * and has not drained below half of it yet (conn_after_write). */
bool
conn_backlogged(const struct conn *c)
{
	return (c->flags & CONN_BACKLOG) != 0;
}

/*
 * conn_defer_ending: if master m is backlogged (or already holds deferred
 * endings, which keep their order), keep j's ending for later and return
 * true.  An entry holds a job_ref and a reference to its result, which
 * stays even if the job lets go of it (--keep-bytes): 16 bytes a job, and
 * jobs are bounded by the broker.
 */
bool
conn_defer_ending(struct conn *m, struct job *j)
{
	if ((m->flags & (CONN_DEAD | CONN_RELEASED)) ||
	    (!conn_backlogged(m) && m->def_head == m->def_len))
		return false;
	if (m->def_len == m->def_cap) {
		if (m->def_head > 0) {
			memmove(m->deferred, m->deferred + m->def_head,
			    (m->def_len - m->def_head) * sizeof *m->deferred);
			m->def_len -= m->def_head;
			m->def_head = 0;
		}
		if (m->def_len == m->def_cap) {
			m->def_cap = m->def_cap ? 2 * m->def_cap : 64;
			m->deferred = xrealloc(m->deferred, m->def_cap * sizeof *m->deferred);
		}
	}
	job_ref(j);
	m->deferred[m->def_len].job = j;
	m->deferred[m->def_len++].result = j->result != NULL ? blob_ref(j->result) : NULL;
	return true;
}

/* conn_send_deferred: write deferred endings while the output has room. */
static void
conn_send_deferred(struct conn *c)
{
	struct deferred d;

	while (c->def_head < c->def_len && !conn_backlogged(c)) {
		d = c->deferred[c->def_head++];
		proto_send_ending(c, d.job, d.result);
		blob_unref(d.result);
		job_unref(c->srv->broker, d.job);
	}
	if (c->def_head == c->def_len) {
		c->def_head = c->def_len = 0;
		if (c->def_cap > 4096) {
			free(c->deferred);
			c->deferred = NULL;
			c->def_cap = 0;
		}
	}
}

void
conn_mark_pending(struct conn *c)
{
	if (c->flags & (CONN_PENDING_WRITE | CONN_DEAD))
		return;
	c->flags |= CONN_PENDING_WRITE;
	TAILQ_INSERT_TAIL(&c->srv->pending_writes, c, write_entry);
}

/*
 * conn_frame_begin: reserve a header; append the payload, then _end.  The
 * mark is relative to the unwritten head: appending may compact the buffer
 * (after a partial write), which moves every byte down by the old offset.
 */
size_t
conn_frame_begin(struct conn *c)
{
	size_t start = conn_out_used(c);
	static const char zero[FRAME_HEADER];

	c->frame_plain = buf_used(&c->out);
	buf_append(&c->out, zero, FRAME_HEADER);
	return start;
}

/* Blobs shorter than this are copied into out: a copy of a few hundred
 * bytes costs less than a reference and an iovec. */
#define OUT_BLOB_COPY_MAX BODY_BLOB_MIN

/*
 * conn_out_blob: append blob b's bytes to the open frame.  A large blob is
 * not copied: the output holds a reference and writev(2) writes it from
 * the blob, so a body goes from where it lies to the socket.
 */
void
conn_out_blob(struct conn *c, struct blob *b)
{
	if (b->len < OUT_BLOB_COPY_MAX) {
		buf_append(&c->out, b->data, b->len);
		return;
	}
	if (c->ref_len == c->ref_cap) {
		if (c->ref_head > 0) {
			memmove(c->refs, c->refs + c->ref_head,
			    (c->ref_len - c->ref_head) * sizeof *c->refs);
			c->ref_len -= c->ref_head;
			c->ref_head = 0;
		}
		if (c->ref_len == c->ref_cap) {
			c->ref_cap = c->ref_cap ? 2 * c->ref_cap : 16;
			c->refs = xrealloc(c->refs, c->ref_cap * sizeof *c->refs);
		}
	}
	c->refs[c->ref_len].plain_at = c->out_plain_done + buf_used(&c->out);
	c->refs[c->ref_len].blob = blob_ref(b);
	c->ref_len++;
	c->out_blob_bytes += b->len;
}

/* Set while conn_send_error writes an "unavailable" refusal: it
 * acknowledges nothing, so it is not held for the store (unless frames
 * before it are: replies keep their order).  While the journal cannot
 * write, that is how a submitter hears so at once. */
static bool sending_refusal;

/* conn_frame_end: a master's frames are all held while the store is
 * behind (each answers something the master did or is owed). */
void
conn_frame_end(struct conn *c, size_t start)
{
	size_t n = conn_out_used(c) - start - FRAME_HEADER;

	frame_put_len(buf_head(&c->out) + c->frame_plain, (uint32_t)n);
	c->srv->frames_out++;
	if (conn_out_used(c) > OUT_SOFT_LIMIT && !(c->flags & CONN_BACKLOG)) {
		c->flags |= CONN_BACKLOG;
		if (c->worker != NULL)  /* it takes no job until it drains */
			broker_worker_block(c->srv->broker, c->worker, true);
	}
	if (broker_gated(c->srv->broker) && c->role == ROLE_MASTER &&
	    !(sending_refusal && c->hold_head == c->hold_len))
		conn_hold(c, start);
	conn_mark_pending(c);
}

/* conn_frame_end_ack: an acknowledgement, held while the store is behind,
 * whoever it goes to. */
void
conn_frame_end_ack(struct conn *c, size_t start)
{
	conn_frame_end(c, start);
	if (broker_gated(c->srv->broker) && c->role != ROLE_MASTER)
		conn_hold(c, start);
}

void
conn_send_raw(struct conn *c, const char *p, size_t n)
{
	size_t start;

	if (c->flags & CONN_DEAD)
		return;
	start = conn_frame_begin(c);
	buf_append(&c->out, p, n);
	conn_frame_end(c, start);
}

void
conn_send_json(struct conn *c, json_t *msg)
{
	size_t start;

	if (!(c->flags & CONN_DEAD)) {
		start = conn_frame_begin(c);
		json_dump_callback(msg, buf_json_cb, &c->out, JSON_COMPACT);
		conn_frame_end(c, start);
	}
	json_decref(msg);
}

/*
 * utf8_cut: s holds len bytes of truncated UTF-8 text; end it before a
 * character the truncation split, so the rest stays valid UTF-8.
 */
static void
utf8_cut(char *s, size_t len)
{
	size_t i = len, need;
	unsigned char lead;

	while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80 && len - i < 3)
		i--;
	if (i == 0)
		return;
	lead = (unsigned char)s[i - 1];
	need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
	if (i - 1 + need > len)
		s[i - 1] = '\0';
}

/*
 * conn_send_error: {"error":CODE,"reason":DETAIL[,"id":ID]}.  The id is
 * JSON text (as kept in struct job) so it is spliced in, not re-encoded.
 */
void
conn_send_error(struct conn *c, const char *code, const char *idjson,
    const char *fmt, ...)
{
	json_t *msg;
	char reason[512];
	va_list ap;

	int n;

	va_start(ap, fmt);
	n = vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof reason)
		utf8_cut(reason, sizeof reason - 1);
	msg = json_pack("{s:s, s:s}", "error", code, "reason", reason);
	if (msg == NULL)  /* the reason is not UTF-8 (it always should be) */
		msg = json_pack("{s:s, s:s}", "error", code, "reason", "(not UTF-8)");
	if (idjson != NULL)
		json_object_set_new(msg, "id", json_loads(idjson, JSON_DECODE_ANY, NULL));
	log_debug("%s: error %s: %s", c->peer, code, reason);
	sending_refusal = strcmp(code, "unavailable") == 0;
	conn_send_json(c, msg);
	sending_refusal = false;
}

void
conn_send_missing(struct conn *c, const char *field, const char *idjson)
{
	json_t *msg = json_pack("{s:s, s:s}", "error", "missing_field", "name", field);

	if (idjson != NULL)
		json_object_set_new(msg, "id", json_loads(idjson, JSON_DECODE_ANY, NULL));
	conn_send_json(c, msg);
}

/* out_next_plain: plain bytes at the head of out before the next blob. */
static size_t
out_next_plain(const struct conn *c)
{
	return c->ref_head < c->ref_len ?
	    (size_t)(c->refs[c->ref_head].plain_at - c->out_plain_done) : buf_used(&c->out);
}

/* out_consume_bytes: n bytes of the stream, plain and blob, were written. */
static void
out_consume_bytes(struct conn *c, size_t n)
{
	size_t k, avail;

	while (n > 0) {
		if ((avail = out_next_plain(c)) == 0) {  /* a blob is at the head */
			struct blob *b = c->refs[c->ref_head].blob;

			avail = b->len - c->ref_done;
			k = n < avail ? n : avail;
			c->ref_done += (uint32_t)k;
			c->out_blob_bytes -= k;
			if (c->ref_done == b->len) {
				blob_unref(b);
				c->ref_done = 0;
				if (++c->ref_head == c->ref_len)
					c->ref_head = c->ref_len = 0;
			}
		} else {
			k = n < avail ? n : avail;
			buf_consume(&c->out, k);
			c->out_plain_done += k;
		}
		n -= k;
	}
}

/*
 * conn_out_consume: n bytes were written; keep out_head_left, the rest of
 * the frame now at the head (frames are whole in the output when written;
 * a frame's header is always plain bytes, so at a boundary it is at the
 * head of out).
 */
static void
conn_out_consume(struct conn *c, size_t n)
{
	size_t k;

	while (n > 0) {
		if (c->out_head_left == 0)
			c->out_head_left = FRAME_HEADER + frame_get_len(buf_head(&c->out));
		k = n < c->out_head_left ? n : c->out_head_left;
		out_consume_bytes(c, k);
		c->out_written += k;
		c->out_head_left -= (uint32_t)k;
		n -= k;
	}
}

/* out_iov: gather up to len bytes of the output's head into iov. */
static int
out_iov(const struct conn *c, size_t len, struct iovec *iov, int max)
{
	size_t plain = 0, ri = c->ref_head, k, avail;
	int n = 0;

	while (len > 0 && n < max) {
		if (ri < c->ref_len && c->refs[ri].plain_at == c->out_plain_done + plain) {
			size_t off = ri == c->ref_head ? c->ref_done : 0;

			avail = c->refs[ri].blob->len - off;
			k = len < avail ? len : avail;
			iov[n].iov_base = c->refs[ri].blob->data + off;
			ri++;
		} else {
			avail = (ri < c->ref_len ?
			    (size_t)(c->refs[ri].plain_at - c->out_plain_done) :
			    buf_used(&c->out)) - plain;
			k = len < avail ? len : avail;
			if (k == 0)
				break;
			iov[n].iov_base = buf_head(&c->out) + plain;
			plain += k;
		}
		iov[n++].iov_len = k;
		len -= k;
	}
	return n;
}

/*
 * conn_out_take: move every unwritten byte of c's output, blobs included,
 * to dst, as if written (a fuzzer or test reads a connection's frames this
 * way, never writing to its socket).
 */
void
conn_out_take(struct conn *c, struct buf *dst)
{
	struct iovec iov[WRITE_IOV];
	size_t len, n;
	int cnt;

	while ((len = conn_out_used(c)) > 0) {
		cnt = out_iov(c, len, iov, WRITE_IOV);
		n = 0;
		for (int i = 0; i < cnt; i++) {
			buf_append(dst, iov[i].iov_base, iov[i].iov_len);
			n += iov[i].iov_len;
		}
		conn_out_consume(c, n);
	}
}

/* conn_write_some: write what is buffered; returns -1 if the peer is gone. */
static int
conn_write_some(struct conn *c)
{
	struct iovec iov[WRITE_IOV];
	size_t len;

	while ((len = conn_writable(c)) > 0) {
		int cnt = out_iov(c, len, iov, WRITE_IOV);
		ssize_t n = c->tp->writev(c, iov, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		conn_out_consume(c, (size_t)n);
	}
	return 0;
}

/*
 * conn_after_write: start or stop the write watcher, finish a drop, drop a
 * peer over the hard limit, and track the backlog: once it drains below
 * half the soft limit, a master's deferred endings are written and a
 * worker may take jobs again.
 */
static void
conn_after_write(struct conn *c)
{
	struct ev_loop *loop = c->srv->loop;
	size_t used = conn_out_used(c);

	if (used == 0) {
		if (!c->tp->read_wants_write(c))
			ev_io_stop(loop, &c->wio);
		if (c->flags & CONN_CLOSE_AFTER_WRITE) {
			conn_close(c, c->close_why);
			return;
		}
		/* Release the memory of a big burst; keep small buffers warm. */
		if (c->out.cap > 1024 * 1024)
			buf_free(&c->out);
	} else {
		if (used > OUT_HARD_LIMIT(c->srv) && !(c->flags & CONN_CLOSE_AFTER_WRITE)) {
			c->srv->dropped_slow++;
			conn_drop(c, true, "output backlog over limit (peer not reading)",
			    "full", "more than %zu bytes of output unread",
			    (size_t)OUT_HARD_LIMIT(c->srv));
		}
		/* All of it held for the store: conn_release_held wakes it.
		 * A TLS write that waits for the peer's bytes: the read
		 * watcher retries it. */
		if (conn_writable(c) > 0 && !c->tp->write_blocked(c))
			ev_io_start(loop, &c->wio);
		else
			ev_io_stop(loop, &c->wio);
	}
	if (c->flags & (CONN_CLOSE_AFTER_WRITE | CONN_RELEASED))
		return;
	if ((c->flags & CONN_BACKLOG) && used < OUT_SOFT_LIMIT / 2) {
		c->flags &= ~CONN_BACKLOG;
		if (c->role == ROLE_MASTER)
			conn_send_deferred(c);
		else if (c->worker != NULL)
			broker_worker_block(c->srv->broker, c->worker, false);
	}
}

void
conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	(void)revents;
	if (c->tp->read_wants_write(c))   /* a TLS read waited for this */
		ev_feed_event(loop, &c->rio, EV_READ);
	if (conn_write_some(c) < 0) {
		conn_close(c, strerror(errno));
		return;
	}
	conn_after_write(c);
}

/* conn_flush_pending: called before the loop sleeps. */
void
conn_flush_pending(struct server *srv)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&srv->pending_writes)) != NULL) {
		TAILQ_REMOVE(&srv->pending_writes, c, write_entry);
		c->flags &= ~CONN_PENDING_WRITE;
		if (ev_is_active(&c->wio)) {
			/* The socket is full; the watcher will write.  But the
			 * backlog grew: note it or drop the peer now, or a peer
			 * that never reads would never be checked. */
			conn_after_write(c);
			continue;
		}
		if (conn_write_some(c) < 0) {
			conn_close(c, strerror(errno));
			continue;
		}
		conn_after_write(c);
	}
}
