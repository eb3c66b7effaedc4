/*
 * fuzz_proto.c — message dispatch (proto.c, and the broker and channels
 * behind it) through connections with no peer.  Each input is a script of
 * lines: the first byte picks a connection ('0' and '2' masters, '1' and
 * '3' workers, by its value mod 4), the rest of the line is one frame's
 * payload, handed to proto_handle() as conn.c would.  Replies accumulate
 * in the connection's output and are never written: each, taken with
 * conn_out_take (large bodies and results are blobs there, not bytes of
 * c->out), must be one whole frame holding a JSON object.  The server is
 * the unit tests' fixture (tests/unit/fixture.h: server_start, the loop
 * never run, no tree), built for every input and torn down by
 * server_stop after it, so LeakSanitizer sees anything a script leaks.
 *
 * Each connection's fd is one end of a socketpair, since libev refuses a
 * negative fd; the loop never runs and conn_flush_pending() is never
 * called, so nothing is written to it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../unit/fixture.h"

#define NCONN 4

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(getenv("FUZZ_VERBOSE") ? LVL_DEBUG : -1, false);
	return 0;
}

/* check_replies: c's output (plain bytes and blobs, taken as a write would
 * take them) is whole frames, each a JSON object. */
static void
check_replies(struct conn *c)
{
	static struct buf out;
	const char *p, *payload;
	size_t left;
	uint32_t len;
	struct msg m;
	char err[160];

	out.off = out.len = 0;
	conn_out_take(c, &out);
	if ((left = buf_used(&out)) == 0)
		return;
	p = buf_head(&out);
	while (left > 0) {
		if (frame_next(p, left, 1u << 30, &payload, &len) != FRAME_OK)
			abort();
		if (msg_parse(&m, payload, len, err, sizeof err) != 0) {
			fprintf(stderr, "bad reply frame (%s): %.*s\n", err, (int)len, payload);
			abort();
		}
		p += FRAME_HEADER + len;
		left -= FRAME_HEADER + len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct server srv;
	struct options opt;
	struct conn *conns[NCONN], *c;
	int peers[NCONN], sv[2], i;
	const uint8_t *p = data, *end = data + size;

	fixture_options(&opt);
	opt.max_jobs = 100000;
	opt.max_memory = 64u << 20;
	fixture_start(&srv, &opt);
	for (i = 0; i < NCONN; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
			abort();
		conns[i] = conn_new(&srv, sv[0], i % 2 ? ROLE_WORKER : ROLE_MASTER);
		peers[i] = sv[1];
	}

	while (p < end) {
		const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *stop = eol ? eol : end;

		c = conns[*p % NCONN];
		if (stop > p && !(c->flags & CONN_DEAD)) {  /* else no selector */
			srv.frames_in++;
			proto_handle(c, (const char *)p + 1, (size_t)(stop - p - 1));
		}
		for (i = 0; i < NCONN; i++)
			if (!(conns[i]->flags & CONN_DEAD))
				check_replies(conns[i]);
		p = eol ? eol + 1 : end;
	}

	/* Each connection's last replies are checked as it closes, then
	 * server_stop() frees the rest. */
	while ((c = TAILQ_FIRST(&srv.conns)) != NULL) {
		check_replies(c);
		conn_close(c, "fuzz input done");
	}
	fixture_stop(&srv);
	for (i = 0; i < NCONN; i++)
		close(peers[i]);
	return 0;
}
