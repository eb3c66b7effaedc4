/*
 * tlsbench.c — throughput and latency of jobfs over TLS beside plain TCP,
 * with the same client code for both: only the transport
 * differs.
 *
 *   tlsbench [--tls CA] [--token T] MASTER_PORT WORKER_PORT SHAPE N
 *
 * SHAPE "throughput": 4 masters with 64 jobs in flight each, 4 workers,
 *   N jobs of a 100-byte body; prints jobs/s.
 * SHAPE "latency": 1 master, 1 job in flight, 1 worker, N jobs; prints
 *   the p50 and p99 of submit-to-result time in microseconds.
 *
 * Each connection is one thread with blocking I/O (OpenSSL's SSL_read and
 * SSL_write, or read and write).  Every result is checked against its job.
 * Output: one line "RESULT shape=... transport=... jobs_s=... p50_us=...".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

struct peer {
	int  fd;
	SSL *ssl;
	char buf[1 << 16];
	size_t off, len;
};

static SSL_CTX *ctx;            /* NULL: plain */
static const char *token;
static int mport, wport;
static long njobs;
static int window = 64;
static atomic_long next_job, results;
static double *lat;             /* latency shape: per job, seconds */

static void
die(const char *what)
{
	fprintf(stderr, "tlsbench: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
put(struct peer *p, const void *b, size_t n)
{
	const char *s = b;

	while (n > 0) {
		ssize_t k = p->ssl ? SSL_write(p->ssl, s, (int)n) : write(p->fd, s, n);
		if (k <= 0)
			die("write failed");
		s += k;
		n -= (size_t)k;
	}
}

static void
fill(struct peer *p)
{
	ssize_t k;

	if (p->off > 0) {
		memmove(p->buf, p->buf + p->off, p->len - p->off);
		p->len -= p->off;
		p->off = 0;
	}
	k = p->ssl ? SSL_read(p->ssl, p->buf + p->len, (int)(sizeof p->buf - p->len)) :
	    read(p->fd, p->buf + p->len, sizeof p->buf - p->len);
	if (k <= 0)
		die("connection lost");
	p->len += (size_t)k;
}

/* get: one frame's payload, NUL-terminated, into out. */
static size_t
get(struct peer *p, char *out, size_t cap)
{
	uint32_t n;

	while (p->len - p->off < 4)
		fill(p);
	memcpy(&n, p->buf + p->off, 4);
	n = ntohl(n);
	if (n + 1 > cap || n + 4 > sizeof p->buf)
		die("frame too large");
	while (p->len - p->off < 4 + n)
		fill(p);
	memcpy(out, p->buf + p->off + 4, n);
	out[n] = '\0';
	p->off += 4 + n;
	return n;
}

static void
send_frame(struct peer *p, const char *s)
{
	char b[4096];
	uint32_t n = (uint32_t)strlen(s), be = htonl(n);

	memcpy(b, &be, 4);
	memcpy(b + 4, s, n);
	put(p, b, 4 + n);
}

static void
connect_peer(struct peer *p, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	char reply[256];
	int on = 1;

	memset(p, 0, sizeof *p);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((p->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(p->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("cannot connect");
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
	if (ctx != NULL) {
		p->ssl = SSL_new(ctx);
		SSL_set_fd(p->ssl, p->fd);
		if (SSL_connect(p->ssl) != 1)
			die("TLS handshake failed");
	}
	if (token != NULL) {
		snprintf(reply, sizeof reply, "{\"type\":\"auth\",\"token\":\"%s\"}", token);
		send_frame(p, reply);
		get(p, reply, sizeof reply);
		if (strstr(reply, "\"ok\":true") == NULL)
			die(reply);
	}
}

static void *
worker_main(void *arg)
{
	struct peer p;
	char f[1024], out[1200], *id, *body;

	(void)arg;
	connect_peer(&p, wport);
	send_frame(&p, "{\"type\":\"join\",\"job_type\":\"tb\"}");
	for (;;) {
		get(&p, f, sizeof f);
		/* {"type":"job","id":N,"body":"..."}: answer with the body. */
		if ((id = strstr(f, "\"id\":")) == NULL || (body = strstr(f, "\"body\":")) == NULL)
			die(f);
		f[strlen(f) - 1] = '\0';
		snprintf(out, sizeof out, "{\"type\":\"response\",%s}", body);
		send_frame(&p, out);
	}
	return NULL;
}

/* master_main: keep `window` jobs in flight until njobs are taken. */
static void *
master_main(void *arg)
{
	struct peer p;
	char f[1024], b[1024];
	double *sent = calloc((size_t)njobs, sizeof *sent);
	long inflight = 0, id;
	bool done = false;

	(void)arg;
	connect_peer(&p, mport);
	for (;;) {
		while (!done && inflight < window) {
			if ((id = atomic_fetch_add(&next_job, 1)) >= njobs) {
				done = true;
				break;
			}
			snprintf(b, sizeof b, "{\"type\":\"job\",\"job_type\":\"tb\",\"id\":%ld,"
			    "\"body\":\"%0100ld\"}", id, id);
			sent[id] = now();
			send_frame(&p, b);
			inflight++;
		}
		if (inflight == 0)
			break;
		get(&p, f, sizeof f);
		if (sscanf(f, "{\"id\":%ld", &id) != 1 || id < 0 || id >= njobs)
			die(f);
		snprintf(b, sizeof b, "\"%0100ld\"", id);
		if (strstr(f, b) == NULL)
			die("a result does not match its job");
		if (lat != NULL)
			lat[id] = now() - sent[id];
		inflight--;
		atomic_fetch_add(&results, 1);
	}
	free(sent);
	return NULL;
}

static int
dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	pthread_t t[8];
	int i, nm, nw, a = 1;
	const char *shape, *ca = NULL;
	double t0, t1;

	while (a < argc && strncmp(argv[a], "--", 2) == 0 && a + 1 < argc) {
		if (strcmp(argv[a], "--tls") == 0)
			ca = argv[a + 1];
		else if (strcmp(argv[a], "--token") == 0)
			token = argv[a + 1];
		a += 2;
	}
	if (argc - a != 4) {
		fprintf(stderr, "usage: tlsbench [--tls CA] [--token T] MPORT WPORT "
		    "throughput|latency N\n");
		return 2;
	}
	mport = atoi(argv[a]);
	wport = atoi(argv[a + 1]);
	shape = argv[a + 2];
	njobs = atol(argv[a + 3]);
	if (ca != NULL) {
		ctx = SSL_CTX_new(TLS_client_method());
		if (ctx == NULL || !SSL_CTX_load_verify_locations(ctx, ca, NULL))
			die("cannot load the CA");
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_read_ahead(ctx, 1);   /* as jobctl and the daemon do */
	}
	if (strcmp(shape, "latency") == 0) {
		nm = nw = 1;
		window = 1;
		lat = calloc((size_t)njobs, sizeof *lat);
	} else {
		nm = nw = 4;
	}
	for (i = 0; i < nw; i++)
		pthread_create(&t[4 + i], NULL, worker_main, NULL);
	usleep(200000);   /* the workers join */
	t0 = now();
	for (i = 0; i < nm; i++)
		pthread_create(&t[i], NULL, master_main, NULL);
	for (i = 0; i < nm; i++)
		pthread_join(t[i], NULL);
	t1 = now();
	if (atomic_load(&results) != njobs)
		die("results missing");
	printf("RESULT shape=%s transport=%s jobs=%ld jobs_s=%.0f", shape,
	    ca != NULL ? "tls" : "plain", njobs, njobs / (t1 - t0));
	if (lat != NULL) {
		qsort(lat, (size_t)njobs, sizeof *lat, dcmp);
		printf(" p50_us=%.0f p99_us=%.0f", lat[njobs / 2] * 1e6,
		    lat[njobs * 99 / 100] * 1e6);
	}
	printf("\n");
	fflush(stdout);
	_exit(0);   /* the workers block in reads */
}
