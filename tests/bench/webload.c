/*
 * webload.c — load for the web face's benchmark rows (web.sh): blocking
 * sockets and threads, no libraries, so that it measures the daemon.
 *
 *   webload rt HTTPPORT MPORT WPORT N
 *       One echo worker (TCP), one client: N round trips over HTTP
 *       (keep-alive POST /types/T/jobs, then GET /jobs/ID/response), then
 *       N over TCP (submit, read the result); p50 and p99 of each.
 *   webload route HTTPPORT WPORT WORKERS CLIENTS N
 *       WORKERS TCP workers answer [200,{},"ok"]; CLIENTS keep-alive
 *       clients send N requests in all to the route /r; requests/s.
 *   webload sse HTTPPORT MPORT SUBS MSGS
 *       SUBS /sub/bench streams, one publisher of MSGS messages over TCP;
 *       waits until every stream has every message (or reports misses);
 *       messages delivered per second.
 *
 * Each prints one line: RESULT key=value ...
 *
 *   webload --tls CA.pem rt ...
 *       The same over TLS (OpenSSL, the daemon's certificate checked
 *       against CA.pem): with --tls-cert the daemon speaks TLS on every
 *       port, so the worker and the TCP master go over TLS too.  Each
 *       connection handshakes once and is kept alive, as a real client's.
 *   webload --tls-tcp CA.pem rt ...
 *       The worker and the TCP master over TLS, the HTTP client in plain
 *       (a daemon with --tls-cert and --http-plain): beside --tls, the
 *       web face's own TLS, everything else equal.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

/* --tls: the connections' TLS, by descriptor (NULL: plain). */
static SSL_CTX *tls_ctx;
static SSL *tls_of[4096];
static bool tls_http = true;   /* false: --tls-tcp, the HTTP client plain */

static void
die(const char *what)
{
	perror(what);
	exit(2);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int dial_as(int port, bool tls);

static int
dial(int port)
{
	return dial_as(port, true);
}

/* dial_http: the HTTP client's connection (plain under --tls-tcp). */
static int
dial_http(int port)
{
	return dial_as(port, tls_http);
}

static int
dial_as(int port, bool tls)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
	if (tls && tls_ctx != NULL && fd < 4096) {
		SSL *ssl = SSL_new(tls_ctx);

		SSL_set_fd(ssl, fd);
		SSL_set1_host(ssl, "127.0.0.1");
		if (SSL_connect(ssl) != 1) {
			fprintf(stderr, "TLS handshake failed\n");
			exit(2);
		}
		tls_of[fd] = ssl;
	}
	return fd;
}

static ssize_t
io_read(int fd, void *p, size_t n)
{
	size_t got = 0;

	if (fd >= 4096 || tls_of[fd] == NULL)
		return read(fd, p, n);
	if (SSL_read_ex(tls_of[fd], p, n, &got) != 1)
		return -1;
	return (ssize_t)got;
}

static ssize_t
io_write(int fd, const void *p, size_t n)
{
	size_t put = 0;

	if (fd >= 4096 || tls_of[fd] == NULL)
		return write(fd, p, n);
	if (SSL_write_ex(tls_of[fd], p, n, &put) != 1)
		return -1;
	return (ssize_t)put;
}

static void
put(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = io_write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write");
		c += w;
		n -= (size_t)w;
	}
}

static void
get(int fd, void *p, size_t n)
{
	char *c = p;

	while (n > 0) {
		ssize_t r = io_read(fd, c, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("read");
		c += r;
		n -= (size_t)r;
	}
}

/* frames: 4-byte big-endian length, then JSON */
static void
frame_put(int fd, const char *json)
{
	uint32_t n = htonl((uint32_t)strlen(json));

	put(fd, &n, 4);
	put(fd, json, strlen(json));
}

static char *
frame_get(int fd)
{
	uint32_t n;
	char *p;

	get(fd, &n, 4);
	n = ntohl(n);
	p = malloc(n + 1);
	get(fd, p, n);
	p[n] = '\0';
	return p;
}

/* An HTTP response on a keep-alive connection: status and body. */
struct hbuf {
	char   data[65536];
	size_t len;
};

static int
http_get_response(int fd, struct hbuf *b, char *body, size_t max)
{
	char *end, *cl;
	size_t head, blen;
	int status;

	for (;;) {
		b->data[b->len] = '\0';
		if ((end = strstr(b->data, "\r\n\r\n")) != NULL)
			break;
		ssize_t r = io_read(fd, b->data + b->len, sizeof b->data - 1 - b->len);
		if (r <= 0)
			die("read http");
		b->len += (size_t)r;
	}
	head = (size_t)(end - b->data) + 4;
	status = atoi(b->data + 9);
	cl = strcasestr(b->data, "Content-Length:");
	blen = cl != NULL && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
	while (b->len < head + blen) {
		ssize_t r = io_read(fd, b->data + b->len, sizeof b->data - 1 - b->len);
		if (r <= 0)
			die("read http body");
		b->len += (size_t)r;
	}
	if (body != NULL) {
		size_t n = blen < max - 1 ? blen : max - 1;
		memcpy(body, b->data + head, n);
		body[n] = '\0';
	}
	memmove(b->data, b->data + head + blen, b->len - head - blen);
	b->len -= head + blen;
	return status;
}

/* ------------------------------------------------------------ workers */

struct worker_arg {
	int         port;
	const char *type;
	const char *answer;  /* NULL: echo the body */
};

static void *
worker_main(void *p)
{
	struct worker_arg *a = p;
	int fd = dial(a->port);
	char join[256], *f, *body, *resp;

	snprintf(join, sizeof join, "{\"type\":\"join\",\"job_type\":\"%s\"}", a->type);
	frame_put(fd, join);
	for (;;) {
		f = frame_get(fd);
		if (strstr(f, "\"type\":\"ping\"") != NULL) {
			frame_put(fd, "{\"type\":\"pong\"}");
			free(f);
			continue;
		}
		/* {"type":"job","id":ID,"body":BODY}: the body is last */
		body = strstr(f, ",\"body\":");
		if (body == NULL) {
			free(f);
			continue;
		}
		body += 8;
		f[strlen(f) - 1] = '\0';
		if (a->answer != NULL)
			body = (char *)a->answer;
		resp = malloc(strlen(body) + 64);
		sprintf(resp, "{\"type\":\"response\",\"body\":%s}", body);
		frame_put(fd, resp);
		free(resp);
		free(f);
	}
	return NULL;
}

static void
start_workers(int n, int port, const char *type, const char *answer)
{
	static struct worker_arg a[256];
	pthread_t t;
	int i;

	for (i = 0; i < n && i < 256; i++) {
		a[i] = (struct worker_arg){ port, type, answer };
		if (pthread_create(&t, NULL, worker_main, &a[i]) != 0)
			die("pthread_create");
		pthread_detach(t);
	}
	usleep(200000);  /* let them join */
}

static int
cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static double
pct(uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1));

	return (double)v[i] / 1000.0;  /* microseconds */
}

/* ------------------------------------------------------------ rt */

static int
rt(int hport, int mport, int wport, size_t n)
{
	uint64_t *lh = calloc(n, sizeof *lh), *lt = calloc(n, sizeof *lt), t0;
	static struct hbuf b;
	char req[512], body[512], id[128], *f, *q;
	int fd = dial_http(hport), mfd, st;
	size_t i;

	start_workers(1, wport, "rt", NULL);
	for (i = 0; i < n; i++) {
		t0 = now_ns();
		snprintf(req, sizeof req, "POST /types/rt/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		    "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
		    "{\"n\":%zu}", 6 + snprintf(NULL, 0, "%zu", i), i);
		put(fd, req, strlen(req));
		if ((st = http_get_response(fd, &b, body, sizeof body)) != 201)
			fprintf(stderr, "POST: %d %s\n", st, body), exit(1);
		q = strstr(body, "\"id\":\"");
		if (q == NULL)
			fprintf(stderr, "no id: %s\n", body), exit(1);
		snprintf(id, sizeof id, "%s", q + 6);
		*strchr(id, '"') = '\0';
		snprintf(req, sizeof req, "GET /jobs/%s/response HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", id);
		put(fd, req, strlen(req));
		if ((st = http_get_response(fd, &b, body, sizeof body)) != 200)
			fprintf(stderr, "GET: %d %s\n", st, body), exit(1);
		lh[i] = now_ns() - t0;
	}
	mfd = dial(mport);
	for (i = 0; i < n; i++) {
		t0 = now_ns();
		snprintf(req, sizeof req, "{\"type\":\"job\",\"job_type\":\"rt\",\"id\":\"t%zu\","
		    "\"body\":{\"n\":%zu}}", i, i);
		frame_put(mfd, req);
		f = frame_get(mfd);
		if (strstr(f, "\"body\"") == NULL)
			fprintf(stderr, "tcp: %s\n", f), exit(1);
		free(f);
		lt[i] = now_ns() - t0;
	}
	qsort(lh, n, sizeof *lh, cmp_u64);
	qsort(lt, n, sizeof *lt, cmp_u64);
	printf("RESULT http_p50_us=%.0f http_p99_us=%.0f tcp_p50_us=%.0f tcp_p99_us=%.0f ratio_p50=%.2f\n",
	    pct(lh, n, .5), pct(lh, n, .99), pct(lt, n, .5), pct(lt, n, .99),
	    pct(lh, n, .5) / pct(lt, n, .5));
	return 0;
}

/* ------------------------------------------------------------ route */

struct client_arg {
	int    port;
	size_t n;
	size_t ok;
};

static void *
client_main(void *p)
{
	struct client_arg *a = p;
	static const char req[] = "GET /r/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	struct hbuf *b = calloc(1, sizeof *b);
	int fd = dial(a->port);
	size_t i;

	for (i = 0; i < a->n; i++) {
		put(fd, req, sizeof req - 1);
		if (http_get_response(fd, b, NULL, 0) == 200)
			a->ok++;
	}
	close(fd);
	free(b);
	return NULL;
}

static int
route(int hport, int wport, int nworkers, int nclients, size_t n)
{
	struct client_arg *a = calloc((size_t)nclients, sizeof *a);
	pthread_t *t = calloc((size_t)nclients, sizeof *t);
	size_t ok = 0;
	uint64_t t0;
	int i;

	start_workers(nworkers, wport, "route", "[200,{},\"ok\"]");
	t0 = now_ns();
	for (i = 0; i < nclients; i++) {
		a[i] = (struct client_arg){ hport, n / (size_t)nclients, 0 };
		pthread_create(&t[i], NULL, client_main, &a[i]);
	}
	for (i = 0; i < nclients; i++) {
		pthread_join(t[i], NULL);
		ok += a[i].ok;
	}
	printf("RESULT route_rps=%.0f ok=%zu of=%zu\n",
	    (double)ok / ((double)(now_ns() - t0) / 1e9), ok,
	    (n / (size_t)nclients) * (size_t)nclients);
	return ok == (n / (size_t)nclients) * (size_t)nclients ? 0 : 1;
}

/* ------------------------------------------------------------ sse */

static int
sse(int hport, int mport, int nsubs, size_t nmsgs)
{
	struct pollfd *pf = calloc((size_t)nsubs, sizeof *pf);
	size_t *got = calloc((size_t)nsubs, sizeof *got), *missed = calloc((size_t)nsubs, sizeof *missed);
	static const char req[] = "GET /sub/bench HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	char buf[65536 + 32], msg[128];
	char (*carry)[32] = calloc((size_t)nsubs, sizeof *carry);
	size_t *clen = calloc((size_t)nsubs, sizeof *clen);
	size_t i, complete = 0, total = 0, tmiss = 0;
	uint64_t t0;
	int s, mfd;

	for (s = 0; s < nsubs; s++) {
		pf[s].fd = dial(hport);
		pf[s].events = POLLIN;
		put(pf[s].fd, req, sizeof req - 1);
	}
	/* Every stream open: each has sent its head and ": subscribed". */
	for (s = 0; s < nsubs; s++) {
		size_t have = 0;

		while (have < 64 || memmem(buf, have, "subscribed", 10) == NULL) {
			ssize_t r = read(pf[s].fd, buf + have, 65536 - have);

			if (r <= 0)
				die("read sse head");
			have += (size_t)r;
			if (memmem(buf, have, "subscribed", 10) != NULL)
				break;
		}
	}
	mfd = dial(mport);
	t0 = now_ns();
	for (i = 0; i < nmsgs; i++) {
		snprintf(msg, sizeof msg, "{\"type\":\"publish\",\"channel\":\"bench\",\"body\":%zu}", i);
		frame_put(mfd, msg);
	}
	/* Count "\ndata: " per stream; the last bytes of each read are kept
	 * (carry) so a prefix split between two reads is still counted, once:
	 * only matches that end past the carried bytes are new. */
	while (complete < (size_t)nsubs) {
		if (poll(pf, (nfds_t)nsubs, 10000) <= 0)
			break;
		for (s = 0; s < nsubs; s++) {
			ssize_t r;
			char *p;

			if (!(pf[s].revents & POLLIN))
				continue;
			memcpy(buf, carry[s], clen[s]);
			r = read(pf[s].fd, buf + clen[s], 65536 - 1);
			if (r <= 0) {
				pf[s].fd = -pf[s].fd - 1;
				complete++;
				continue;
			}
			r += (ssize_t)clen[s];
			buf[r] = '\0';
			for (p = buf; (p = strstr(p, "\ndata: ")) != NULL; p += 7) {
				if (p + 7 <= buf + clen[s])
					continue;
				if (p >= buf + 13 && strncmp(p - 13, "event: missed", 13) == 0)
					missed[s] += strtoul(p + 7, NULL, 10);
				else
					got[s]++;
			}
			clen[s] = (size_t)r < sizeof carry[s] ? (size_t)r : sizeof carry[s];
			memcpy(carry[s], buf + r - (ssize_t)clen[s], clen[s]);
			if (got[s] + missed[s] >= nmsgs) {
				pf[s].fd = -pf[s].fd - 1;
				complete++;
			}
		}
	}
	for (s = 0; s < nsubs; s++) {
		total += got[s];
		tmiss += missed[s];
	}
	printf("RESULT sse_msgs_per_s=%.0f delivered=%zu missed=%zu expected=%zu\n",
	    (double)total / ((double)(now_ns() - t0) / 1e9), total, tmiss,
	    (size_t)nsubs * nmsgs);
	return total == (size_t)nsubs * nmsgs ? 0 : 1;
}

int
main(int argc, char **argv)
{
	if (argc > 3 && (strcmp(argv[1], "--tls") == 0 || strcmp(argv[1], "--tls-tcp") == 0)) {
		tls_http = strcmp(argv[1], "--tls") == 0;
		tls_ctx = SSL_CTX_new(TLS_client_method());
		if (tls_ctx == NULL || SSL_CTX_load_verify_locations(tls_ctx, argv[2], NULL) != 1)
			die("--tls CA");
		SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
		argc -= 2;
		argv += 2;
	}
	if (argc == 6 && strcmp(argv[1], "rt") == 0)
		return rt(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), strtoul(argv[5], NULL, 10));
	if (argc == 7 && strcmp(argv[1], "route") == 0)
		return route(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]),
		    strtoul(argv[6], NULL, 10));
	if (argc == 6 && strcmp(argv[1], "sse") == 0)
		return sse(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), strtoul(argv[5], NULL, 10));
	fprintf(stderr, "usage: webload [--tls|--tls-tcp CA.pem] rt HTTPPORT MPORT WPORT N | route HTTPPORT WPORT "
	    "WORKERS CLIENTS N | sse HTTPPORT MPORT SUBS MSGS\n");
	return 2;
}
