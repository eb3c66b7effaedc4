/*
 * net.c — socket helpers: listen, connect, options, names.
 *
 * Each returns -1 and writes a message into err on failure (as Redis's
 * anet.c does), so callers decide how loudly to fail.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"

static int
net_resolve(const char *host, int port, bool passive, struct addrinfo **res,
    char *err, size_t errlen)
{
	struct addrinfo hints = { 0 };
	char service[16];
	int rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	snprintf(service, sizeof service, "%d", port);
	rc = getaddrinfo(host, service, &hints, res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	return 0;
}

int
net_listen(const char *addr, int port, char *err, size_t errlen)
{
	struct addrinfo *res, *ai;
	int fd = -1, on = 1;

	if (net_resolve(addr, port, true, &res, err, errlen) < 0)
		return -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 1024) == 0 && net_nonblock(fd) == 0)
			break;
		snprintf(err, errlen, "%s port %d: %s", addr, port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

int
net_connect(const char *host, int port, char *err, size_t errlen)
{
	struct addrinfo *res, *ai;
	int fd = -1;

	if (net_resolve(host, port, false, &res, err, errlen) < 0)
		return -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		snprintf(err, errlen, "%s port %d: %s", host, port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		net_nodelay(fd);
	return fd;
}

int
net_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

void
net_nodelay(int fd)
{
	int on = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

/* net_peer_name: "host:port" of the other end, for logs and worker names. */
void
net_peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
			port = ntohs(s->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
			port = ntohs(s->sin6_port);
		}
	}
	snprintf(out, len, "%s:%d", host, port);
}

/*
 * net_addr_str: an address without its port (an IPv4 address mapped into
 * IPv6 as plain IPv4), for counting connections per address; true if it
 * is a loopback address (127.0.0.0/8, ::1) or a local socket.
 */
bool
net_addr_str(const struct sockaddr *sa, char *out, size_t len)
{
	static const unsigned char v4mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };

	snprintf(out, len, "?");
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s->sin_addr, out, len);
		return (ntohl(s->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		const unsigned char *a = s->sin6_addr.s6_addr;
		if (memcmp(a, v4mapped, 12) == 0) {
			inet_ntop(AF_INET, a + 12, out, len);
			return a[12] == 127;
		}
		inet_ntop(AF_INET6, &s->sin6_addr, out, len);
		return IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
	}
	return sa->sa_family == AF_UNIX;
}

/* net_peer_addr: net_addr_str of the other end of fd. */
bool
net_peer_addr(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;

	snprintf(out, len, "?");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return false;
	return net_addr_str((struct sockaddr *)&ss, out, len);
}

int
net_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}
