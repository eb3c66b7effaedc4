/*
 * test_broker_store.c — the broker's seam for a store: listeners
 * in registration order with the store's first, the durability gate on the
 * TCP face (an acknowledgement waits for broker_store_durable), refusal
 * with "unavailable" while the store cannot write, and broker_restore.
 *
 * The server is the fixture's (tests/unit/fixture.h: server_start, the
 * loop never run, no tree); a master connection is one end of a
 * socketpair, and conn_flush_pending() writes to it as the loop would
 * before sleeping, so what reaches the peer is read from the other end.
 * The "store" here is a listener that counts one record per event.
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
static char order[64];
static size_t norder;
static uint64_t appended;
static unsigned restoring_seen, events_seen;

/* The fake store: one record per job event, none while restoring. */
static void
store_job(void *ctx, struct job *j)
{
	(void)ctx;
	(void)j;
	events_seen++;
	if (broker_restoring(srv.broker)) {
		restoring_seen++;
		return;
	}
	order[norder++] = 's';
	broker_store_mark(srv.broker, ++appended);
}

static void
store_finished(void *ctx, struct job *j, struct worker *w)
{
	(void)w;
	store_job(ctx, j);
}

static void
face_job(void *ctx, struct job *j)
{
	(void)ctx;
	(void)j;
	if (!broker_restoring(srv.broker))
		order[norder++] = 'f';
}

/* peer_read: what reached the master's end of the socketpair, NULs
 * (in frame headers) made spaces. */
static size_t
peer_read(int fd, char *out, size_t len)
{
	ssize_t n = recv(fd, out, len - 1, MSG_DONTWAIT), i;

	if (n < 0)
		n = 0;
	for (i = 0; i < n; i++)  /* frame headers: searchable as text */
		if (out[i] == '\0')
			out[i] = ' ';
	out[n] = '\0';
	return (size_t)n;
}

static void
handle(struct conn *c, const char *json)
{
	proto_handle(c, json, strlen(json));
}

int
main(void)
{
	struct broker_listener face = { .job_submitted = face_job };
	struct broker_listener store = {
		.job_submitted = store_job, .job_finished = store_finished,
	};
	struct restore_req r;
	struct broker *b;
	struct options opt;
	struct conn *m;
	struct job *j;
	char got[4096];
	int sv[2];

	log_init(-1, false);
	plan(16);
	fixture_options(&opt);
	opt.max_frame = 1u << 20;
	opt.max_jobs = 1000;
	opt.max_memory = 1u << 20;
	fixture_start(&srv, &opt);
	b = srv.broker;
	broker_listen(b, &face);
	broker_store_listen(b, &store);  /* registered last, called first */

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 1;
	net_nonblock(sv[0]);
	m = conn_new(&srv, sv[0], ROLE_MASTER);

	/* Without anything appended, nothing is held. */
	ok(!broker_held(b) && broker_mark(b) == 0, "no store records: nothing held");

	/* A later-dialect submit: the store appends, its ok waits. */
	handle(m, "{\"action\":\"submit\",\"type\":\"t\",\"id\":1,\"body\":{}}");
	ok(norder == 2 && order[0] == 's' && order[1] == 'f',
	    "the store's listener hears an event before the face's (%.*s)", (int)norder, order);
	ok(broker_mark(b) == 1 && broker_durable(b) == 0, "the mark covers the record");
	conn_flush_pending(&srv);
	ok(peer_read(sv[1], got, sizeof got) == 0, "the ok is held while not durable");
	/* A ping's pong, later on the same master, waits behind it. */
	handle(m, "{\"action\":\"ping\"}");
	conn_flush_pending(&srv);
	ok(peer_read(sv[1], got, sizeof got) == 0, "frames after a held ack wait too (order kept)");
	broker_store_durable(b, 1);
	conn_flush_pending(&srv);
	peer_read(sv[1], got, sizeof got);
	ok(strstr(got, "{\"ok\":true,\"id\":1}") != NULL && strstr(got, "pong") != NULL &&
	    strstr(got, "ok") < strstr(got, "pong"),
	    "once durable, the ok and then the pong go out");

	/* The job's ending is held too; then released. */
	j = broker_find(b, "1");
	broker_end(b, j, JOB_CANCELLED);
	ok(broker_mark(b) == 2, "the ending is recorded");
	conn_flush_pending(&srv);
	ok(peer_read(sv[1], got, sizeof got) == 0, "the ending to the master is held");
	broker_store_durable(b, 2);
	conn_flush_pending(&srv);
	peer_read(sv[1], got, sizeof got);
	ok(strstr(got, "\"cancelled\"") != NULL, "and sent once durable");

	/* The store cannot write: submissions are refused with its reason. */
	broker_store_set_error(b, ENOSPC, "journal: No space left on device");
	handle(m, "{\"action\":\"submit\",\"type\":\"t\",\"id\":2,\"body\":{}}");
	conn_flush_pending(&srv);
	peer_read(sv[1], got, sizeof got);
	ok(strstr(got, "\"error\":\"unavailable\"") != NULL &&
	    strstr(got, "No space left on device") != NULL && strstr(got, "\"id\":2") != NULL,
	    "a submission while the store fails gets unavailable with the reason and id");
	ok(broker_find(b, "2") == NULL, "and is not taken");
	broker_store_set_error(b, 0, NULL);
	handle(m, "{\"action\":\"submit\",\"type\":\"t\",\"id\":2,\"body\":{}}");
	ok(broker_find(b, "2") != NULL, "once the store recovers, submissions are taken");
	broker_store_durable(b, broker_mark(b));

	/* Restore: a queued job in its place, a finished one with its result. */
	memset(&r, 0, sizeof r);
	r.type = "u";
	r.key = "q1";
	r.idjson = "\"q1\"";
	r.body = "{\"a\":1}";
	r.body_len = 7;
	r.priority = 5;
	r.seq = 1000;
	r.submitted = 1e9;
	r.state = JOB_QUEUED;
	r.losses = 1;
	events_seen = restoring_seen = 0;
	ok(broker_restore(b, &r) == BERR_OK && (j = broker_find(b, "q1")) != NULL &&
	    j->state == JOB_QUEUED && j->seq == 1000 && j->priority == 5 &&
	    j->losses == 1 && j->submitted == 1e9 && strcmp(job_body(j), "{\"a\":1}") == 0,
	    "a restored queued job keeps its id, seq, priority, losses, time and body");
	r.key = "d1";
	r.idjson = NULL;
	r.seq = 7;
	r.state = JOB_DONE;
	r.finished = 1e9 + 2;
	r.result = "[1,2]";
	r.result_len = 5;
	ok(broker_restore(b, &r) == BERR_OK && (j = broker_find(b, "d1")) != NULL &&
	    j->state == JOB_DONE && j->result_len == 5 && strcmp(j->result->data, "[1,2]") == 0 &&
	    job_finished(j) > 1e9 + 1.9 && strcmp(job_idjson(j), "\"d1\"") == 0,
	    "a restored finished job keeps its state, result and finish time");
	ok(events_seen == 3 && restoring_seen == 3 && broker_mark(b) == appended,
	    "its events are marked as restoring, so the store records nothing");
	handle(m, "{\"action\":\"submit\",\"type\":\"u\",\"id\":\"n\",\"body\":{}}");
	ok((j = broker_find(b, "n")) != NULL && j->seq > 1000,
	    "a job submitted after a restore comes after the restored ones");

	conn_close(m, "test over");
	fixture_stop(&srv);
	close(sv[1]);
	return done();
}
