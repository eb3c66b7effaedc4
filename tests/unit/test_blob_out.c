/*
 * test_blob_out.c — bodies stored once: a blob's
 * reference count, and a connection's output queue holding blobs between
 * plain bytes (conn_out_blob), written with writev through partial writes,
 * counted by the output limits, and cut at a frame's end by a drop.
 *
 * The server is the fixture's (tests/unit/fixture.h); a master
 * connection is one end of a socketpair with a small send buffer, so that
 * writes stop short inside blobs and inside plain bytes.  The loop is run
 * without blocking (EVRUN_NOWAIT) to let the write watcher go on once the
 * peer has read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixture.h"
#include "tap.h"

static struct server srv;

/* expect: the stream the peer should read, built beside the output. */
static struct buf expect;

static void
expect_frame(const char *a, size_t an, const struct blob *b, const char *z)
{
	char h[FRAME_HEADER];
	size_t n = an + (b != NULL ? b->len : 0) + strlen(z);

	frame_put_len(h, (uint32_t)n);
	buf_append(&expect, h, sizeof h);
	buf_append(&expect, a, an);
	if (b != NULL)
		buf_append(&expect, b->data, b->len);
	buf_append(&expect, z, strlen(z));
}

/* send_frame: a frame of plain bytes a, then blob b (if any), then z. */
static void
send_frame(struct conn *c, const char *a, struct blob *b, const char *z)
{
	size_t start = conn_frame_begin(c);

	buf_append(&c->out, a, strlen(a));
	if (b != NULL)
		conn_out_blob(c, b);
	buf_append(&c->out, z, strlen(z));
	conn_frame_end(c, start);
	expect_frame(a, strlen(a), b, z);
}

/* drain: read the peer's end until want bytes came or nothing moves. */
static size_t
drain(int fd, struct buf *got, size_t want)
{
	char tmp[16384];
	int idle = 0;

	while (buf_used(got) < want && idle < 200) {
		ssize_t n = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);

		if (n > 0) {
			buf_append(got, tmp, (size_t)n);
			idle = 0;
		} else
			idle++;
		conn_flush_pending(&srv);
		ev_run(srv.loop, EVRUN_NOWAIT);
	}
	return buf_used(got);
}

/* conn_listed: c is one of the server's connections. */
static bool
conn_listed(const struct conn *c)
{
	const struct conn *x;

	TAILQ_FOREACH(x, &srv.conns, all_entry)
		if (x == c)
			return true;
	return false;
}

static struct blob *
big_blob(size_t n, char fill)
{
	char *s = xmalloc(n);
	struct blob *b;

	memset(s, fill, n);
	s[0] = '"';
	s[n - 1] = '"';
	b = blob_new(s, n);
	free(s);
	return b;
}

int
main(void)
{
	struct blob *b1, *b2, *small, *huge;
	struct buf got = { 0 };
	struct options opt;
	struct conn *m;
	int sv[2], sz = 4096;
	size_t total;
	bool frames_ok;

	log_init(-1, false);
	plan(17);
	fixture_options(&opt);
	opt.max_jobs = 1000;
	fixture_start(&srv, &opt);

	/* The blob itself. */
	b1 = blob_new("\"hello\"", 7);
	ok(b1->refs == 1 && b1->len == 7 && strcmp(b1->data, "\"hello\"") == 0,
	    "blob_new copies the bytes and ends them with a NUL");
	ok(blob_ref(b1) == b1 && b1->refs == 2 && blob_of(b1->data) == b1,
	    "blob_ref counts, blob_of finds the blob from its data");
	blob_unref(b1);
	blob_free_data(b1->data);  /* the last reference: freed (ASan checks) */
	blob_unref(NULL);
	blob_free_data(NULL);
	ok(1, "blob_unref and blob_free_data of NULL do nothing");
	{
		char *frame = xstrdup("{\"body\":\"big\"}");

		b1 = blob_adopt(frame, frame + 8, 5);
		ok(b1->len == 5 && b1->data == frame + 8 && strcmp(b1->data, "\"big\"") == 0,
		    "blob_adopt keeps the bytes where they lie, the next one its NUL");
		blob_unref(b1);   /* frees the frame too (ASan checks) */
	}

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 1;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	net_nonblock(sv[0]);
	m = conn_new(&srv, sv[0], ROLE_MASTER);

	/* Plain frames, frames with a blob in the middle, at the end, two in a
	 * row, and a short blob (copied, not referenced). */
	b1 = big_blob(100000, 'a');
	b2 = big_blob(3000, 'b');
	small = blob_new("[1,2,3]", 7);
	send_frame(m, "{\"id\":1,\"body\":", b1, "}");
	send_frame(m, "{\"plain\":true}", NULL, "");
	send_frame(m, "{\"id\":2,\"body\":", b2, "}");
	send_frame(m, "{\"id\":3,\"body\":", small, "}");
	send_frame(m, "{\"id\":4,\"body\":", b1, "}");
	send_frame(m, "", b2, "");
	ok(b1->refs == 3 && b2->refs == 3 && small->refs == 1,
	    "large blobs are referenced by the output, a short one is copied");
	ok(conn_out_used(m) == buf_used(&expect),
	    "conn_out_used counts the blobs' bytes (%zu of %zu)",
	    conn_out_used(m), buf_used(&expect));
	ok(buf_used(&m->out) < 2000,
	    "the blobs' bytes are not in the plain buffer (%zu bytes there)",
	    buf_used(&m->out));
	total = drain(sv[1], &got, buf_used(&expect));
	ok(total == buf_used(&expect) && memcmp(got.data, expect.data, total) == 0,
	    "the peer reads every frame byte for byte through partial writes "
	    "(%zu of %zu bytes)", total, buf_used(&expect));
	ok(b1->refs == 1 && b2->refs == 1 && conn_out_used(m) == 0 &&
	    m->ref_head == m->ref_len,
	    "once written, the output lets go of every blob");
	ok(m->out_written == total, "out_written counts blob bytes (%llu)",
	    (unsigned long long)m->out_written);

	/* The soft limit counts blob bytes: 2 MiB queued in one blob. */
	huge = big_blob(2u << 20, 'h');
	send_frame(m, "{\"id\":5,\"body\":", huge, "}");
	ok(conn_backlogged(m) && buf_used(&m->out) < 100,
	    "a frame holding a 2 MiB blob puts the master over the soft limit");
	buf_free(&got);
	total = drain(sv[1], &got, buf_used(&expect) - total);
	ok(!conn_backlogged(m) && huge->refs == 1 &&
	    memcmp(got.data, expect.data + expect.len - total, total) == 0,
	    "once it drains the backlog ends and the blob is let go");

	/* A drop with discard keeps the head frame (begun on the wire) and
	 * throws away the frames after it, blobs included. */
	buf_free(&got);
	buf_free(&expect);
	send_frame(m, "{\"id\":6,\"body\":", huge, "}");
	send_frame(m, "{\"id\":7,\"body\":", b1, "}");
	send_frame(m, "{\"id\":8,\"body\":", huge, "}");
	conn_flush_pending(&srv);  /* frame 6 starts going out */
	ok(huge->refs == 3 && b1->refs == 2 && m->out_head_left > 0,
	    "three frames queued, the first partly written");
	conn_drop(m, true, "test", "full", "dropped by the test");
	ok(huge->refs == 2 && b1->refs == 1,
	    "the drop lets go of the blobs of the frames it throws away");
	total = drain(sv[1], &got, 1u << 30);
	frames_ok = total > 2 * FRAME_HEADER;
	{
		size_t off = 0, nframes = 0;
		const char *last = NULL;
		uint32_t len = 0;

		while (frames_ok && off + FRAME_HEADER <= total) {
			len = frame_get_len(got.data + off);
			if (off + FRAME_HEADER + len > total) {
				frames_ok = false;
				break;
			}
			last = got.data + off + FRAME_HEADER;
			off += FRAME_HEADER + len;
			nframes++;
		}
		frames_ok = frames_ok && off == total && nframes == 2 && last != NULL &&
		    len > 9 && memcmp(last, "{\"error\":", 9) == 0;
		ok(frames_ok, "the peer gets the head frame whole, then the error "
		    "frame (%zu frames, %zu bytes)", nframes, total);
	}
	/* The drop closes the connection once the error frame is out, and
	 * the loop frees it before it sleeps, as in the daemon: m is gone. */
	ok(!conn_listed(m), "after the error frame is written the connection "
	    "is closed and freed");
	ok(b1->refs == 1 && b2->refs == 1 && huge->refs == 1 && small->refs == 1,
	    "and no blob is held by it any more");
	blob_unref(b1);
	blob_unref(b2);
	blob_unref(small);
	blob_unref(huge);
	buf_free(&got);
	buf_free(&expect);
	fixture_stop(&srv);
	close(sv[1]);
	return done();
}
