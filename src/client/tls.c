/*
 * jobctl_tls.c — what jobctl needs to reach a daemon that is exposed:
 * TLS with OpenSSL (--tls, --ca, --cert, --key) and the token
 * (JOBFS_TOKEN, --token-file) sent as the first frame.
 *
 * Both happen right after connecting, on the still blocking socket and
 * before any command's frame, so the rest of jobctl is unchanged: its
 * non-blocking reads and writes go through jfci_io_read / jfci_io_write,
 * which use the SSL object when there is one.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "client/jfc_int.h"

#define AUTH_REPLY_MAX 4096
#define HANDSHAKE_SECONDS 30

/* tls_error: the last OpenSSL error as text. */
static const char *
tls_error(void)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	if (e == 0)
		return errno != 0 ? strerror(errno) : "connection closed";
	ERR_error_string_n(e, buf, sizeof buf);
	return buf;
}

static SSL_CTX *
jfci_tls_ctx(jfc_client *c, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if (c->tls_ctx != NULL)
		return c->tls_ctx;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "TLS: %s", tls_error());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((c->ca != NULL && !SSL_CTX_load_verify_locations(ctx, c->ca, NULL)) ||
	    (c->ca == NULL && !SSL_CTX_set_default_verify_paths(ctx))) {
		snprintf(err, errlen, "CA file %s: %s", c->ca ? c->ca : "(system)",
		    tls_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (c->cert != NULL &&
	    (!SSL_CTX_use_certificate_chain_file(ctx, c->cert) ||
	    !SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) ||
	    !SSL_CTX_check_private_key(ctx))) {
		snprintf(err, errlen, "certificate %s, key %s: %s", c->cert, c->key,
		    tls_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1);   /* see jfci_io_pending */
	c->tls_ctx = ctx;
	return ctx;
}

void
jfci_tls_free(jfc_client *c)
{
	SSL_CTX_free(c->tls_ctx);
	c->tls_ctx = NULL;
}

/* set_timeout: a blocking exchange gives up after HANDSHAKE_SECONDS. */
static void
set_timeout(int fd, int seconds)
{
	struct timeval tv = { seconds, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/*
 * jfci_tls_start: the TLS handshake on s's connected (blocking) socket,
 * checking the daemon's certificate against --ca (or the system's CAs)
 * and the host name given with -H.
 */
int
jfci_tls_start(jfc_client *c, jfc_conn *s, char *err, size_t errlen)
{
	SSL_CTX *ctx = jfci_tls_ctx(c, err, errlen);
	unsigned char addr[16];
	SSL *ssl;
	long v;
	int alert;

	if (ctx == NULL)
		return -1;
	if ((ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, s->fd)) {
		snprintf(err, errlen, "TLS: %s", tls_error());
		SSL_free(ssl);
		return -1;
	}
	/* The certificate must name the host given: an address or a name. */
	if (inet_pton(AF_INET, c->host, addr) == 1 ||
	    inet_pton(AF_INET6, c->host, addr) == 1)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->host);
	else {
		SSL_set_tlsext_host_name(ssl, c->host);
		SSL_set1_host(ssl, c->host);
	}
	set_timeout(s->fd, HANDSHAKE_SECONDS);
	errno = 0;
	if (SSL_connect(ssl) != 1) {
		v = SSL_get_verify_result(ssl);
		alert = ERR_GET_REASON(ERR_peek_error());
		if (v != X509_V_OK)
			snprintf(err, errlen, "TLS handshake with %s failed: the "
			    "daemon's certificate: %s", c->host,
			    X509_verify_cert_error_string(v));
		else
			snprintf(err, errlen, "TLS handshake with %s failed: %s "
			    "(%s)", c->host, tls_error(),
			    /* the alerts of a daemon that refuses a connection */
			    alert == SSL_R_TLSV1_ALERT_INTERNAL_ERROR ? "the daemon "
			    "refused the connection: too many connections, its log "
			    "says which limit" : alert == SSL_R_TLSV1_ALERT_ACCESS_DENIED ?
			    "the daemon refused the connection: it serves this "
			    "address only with --auth or --insecure" :
			    "does that port serve TLS?");
		SSL_free(ssl);
		return -1;
	}
	set_timeout(s->fd, 0);
	s->ssl = ssl;
	return 0;
}

void
jfci_tls_close(jfc_conn *s)
{
	if (s->ssl != NULL) {
		SSL_shutdown(s->ssl);   /* a close_notify, never waiting */
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
}

/* write_all / read_frame: the blocking exchange of jfci_auth. */
static int
write_all(jfc_conn *s, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = jfci_io_write(s, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/*
 * jfci_auth: send {"type":"auth","token":T} and read the answer.  A daemon
 * without --auth answers unknown_type: the token is not needed, and the
 * session goes on.  A wrong token is
 * JFC_EREFUSED, which a reconnecting worker does not retry; -1 for a
 * connection that broke on the way.
 */
int
jfci_auth(jfc_client *c, jfc_conn *s)
{
	json_t *m = json_pack("{s:s, s:s}", "type", "auth", "token", c->token);
	char *text = json_dumps(m, JFC_JSON), hdr[FRAME_HEADER];
	const char *p;
	uint32_t len;
	json_t *reply;
	const char *code;
	int rc = -1;

	json_decref(m);
	if (text == NULL)
		fatalx("cannot encode the token");
	frame_put_len(hdr, (uint32_t)strlen(text));
	set_timeout(s->fd, HANDSHAKE_SECONDS);
	if (write_all(s, hdr, sizeof hdr) < 0 || write_all(s, text, strlen(text)) < 0) {
		free(text);
		jfci_warn(c, "cannot send the token: %s", strerror(errno));
		return -1;
	}
	explicit_bzero(text, strlen(text));
	free(text);
	for (;;) {
		ssize_t n;

		if (frame_next(buf_head(&s->in), buf_used(&s->in), AUTH_REPLY_MAX,
		    &p, &len) != FRAME_NEED)
			break;
		buf_reserve(&s->in, 512);
		n = jfci_io_read(s, s->in.data + s->in.len, s->in.cap - s->in.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			jfci_warn(c, "no answer to the token: %s",
			    n == 0 ? "closed by the daemon" : strerror(errno));
			return -1;
		}
		s->in.len += (size_t)n;
	}
	set_timeout(s->fd, 0);
	if (frame_next(buf_head(&s->in), buf_used(&s->in), AUTH_REPLY_MAX,
	    &p, &len) != FRAME_OK) {
		jfci_warn(c, "the answer to the token is too large");
		return -1;
	}
	reply = json_loadb(p, len, 0, NULL);
	code = json_string_value(json_object_get(reply, "error"));
	if (json_is_true(json_object_get(reply, "ok")))
		rc = 0;
	else if (code != NULL && strcmp(code, "unknown_type") == 0)
		rc = 0;   /* the daemon does not use --auth */
	else if (code != NULL) {
		rc = JFC_EREFUSED;
		jfci_warn(c, "authentication refused: %s: %s", code,
		    json_string_value(json_object_get(reply, "reason")) ?
		    json_string_value(json_object_get(reply, "reason")) : "");
	} else
		jfci_warn(c, "unexpected answer to the token");
	json_decref(reply);
	buf_consume(&s->in, FRAME_HEADER + (size_t)len);
	return rc;
}

/* jfci_io_read / jfci_io_write: read(2) and send(2), or SSL_read and
 * SSL_write; -1 with errno EAGAIN when the socket is not ready. */
ssize_t
jfci_io_read(jfc_conn *s, void *p, size_t n)
{
	size_t got = 0;
	int e;

	if (s->ssl == NULL)
		return read(s->fd, p, n);
	ERR_clear_error();
	if (SSL_read_ex(s->ssl, p, n, &got))
		return (ssize_t)got;
	e = SSL_get_error(s->ssl, 0);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		if (e == SSL_ERROR_WANT_WRITE)
			ev_io_start(s->loop, &s->wio);
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_SYSCALL && errno == 0)
		return 0;   /* closed without close_notify */
	if (e != SSL_ERROR_SYSCALL) {
		/* Say why (TLS 1.3 refuses a client certificate only now). */
		jfci_warn(s->c, "TLS: %s", tls_error());
		errno = EPROTO;
	}
	return -1;
}

ssize_t
jfci_io_write(jfc_conn *s, const void *p, size_t n)
{
	size_t put = 0;
	int e;

	if (s->ssl == NULL)
		return send(s->fd, p, n, MSG_NOSIGNAL);
	ERR_clear_error();
	if (SSL_write_ex(s->ssl, p, n, &put))
		return (ssize_t)put;
	e = SSL_get_error(s->ssl, 0);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (e != SSL_ERROR_SYSCALL)
		errno = EPROTO;
	return -1;
}

/* jfci_io_pending: bytes wait inside the SSL object (decrypted, or read
 * ahead): the socket's readiness does not show them. */
bool
jfci_io_pending(jfc_conn *s)
{
	return s->ssl != NULL && SSL_has_pending(s->ssl);
}
