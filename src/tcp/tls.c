/*
 * tls.c — TLS under struct conn: --tls-cert and --tls-key serve
 * both TCP ports over TLS with OpenSSL, on the daemon's one loop, never
 * blocking; --tls-ca asks every client for a certificate signed by those
 * CAs and refuses the handshake without one, and with --auth a verified
 * certificate's subject CN that names a token stands for that token.
 *
 * conn*.c read and write through the connection's transport (tcp.h); a
 * TLS connection's is transport_tls: SSL_read_ex / SSL_write_ex on the
 * non-blocking socket, the handshake inside the first of them.
 * SSL_ERROR_WANT_READ and SSL_ERROR_WANT_WRITE become EAGAIN; a read that
 * needs the socket to be writable (or a write that needs it readable)
 * notes so, and the other watcher retries it (read_wants_write,
 * write_blocked).  Bytes that OpenSSL holds beyond one read (decrypted, or
 * read ahead) are not seen by the socket's readiness: conn.c asks
 * pending and reads again.
 *
 * A client that speaks plain frames to a TLS port is told so in a plain
 * frame (tls_required) and closed, instead of failing in the handshake
 * with nothing it can read.  The other way round, a TLS client refused
 * before it has a connection (a limit, protected mode) gets a TLS alert
 * (tls_refuse), never a plain frame its TLS stack would take for a
 * "wrong version number".
 *
 * Every handshake has --tls-handshake-timeout seconds to finish, whatever
 * the auth mode: a peer that sends nothing, or half a ClientHello, would
 * otherwise hold its connection (and a place in its address's count)
 * forever.
 *
 * Why OpenSSL: it is on every Debian machine, well kept, and gives the
 * one loop non-blocking reads and writes on a plain socket; the web face's
 * HTTP library brings GnuTLS for its own port (README, "Exposing jobfs").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tcp/tcp.h"

struct tls_server {
	SSL_CTX *ctx;
};

struct tls_conn {
	SSL     *ssl;
	bool     sniffed;         /* the first byte was looked at */
	bool     checked;         /* the handshake is done, the peer's
	                             certificate looked at */
	bool     read_wants_write;
	bool     write_wants_read;
	ev_timer handshake;       /* --tls-handshake-timeout */
};

/* tls_errors: OpenSSL's queued errors as one line (and the queue emptied). */
static const char *
tls_errors(void)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	if (e == 0)
		return errno != 0 ? strerror(errno) : "unexpected end of the stream";
	ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	return buf;
}

/* tls_ctx_new: a server context from the options' files, or NULL with a
 * message in err. */
static SSL_CTX *
tls_ctx_new(const struct options *o, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		snprintf(err, errlen, "%s", tls_errors());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* A peer that closes without close_notify has simply left. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* One read(2) per record rather than two (header, then body); what
	 * it reads beyond shows in SSL_has_pending. */
	SSL_CTX_set_read_ahead(ctx, 1);
	if (!SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert)) {
		snprintf(err, errlen, "--tls-cert %s: %s", o->tls_cert, tls_errors());
		goto fail;
	}
	if (!SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) ||
	    !SSL_CTX_check_private_key(ctx)) {
		snprintf(err, errlen, "--tls-key %s: %s", o->tls_key, tls_errors());
		goto fail;
	}
	if (o->tls_ca != NULL) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->tls_ca);

		if (names == NULL || !SSL_CTX_load_verify_locations(ctx, o->tls_ca, NULL)) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			snprintf(err, errlen, "--tls-ca %s: %s", o->tls_ca, tls_errors());
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* tls_server_init: with --tls-cert, every connection from now on is TLS.
 * -1 with a message in err if the files cannot be used. */
int
tls_server_init(struct server *srv, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if (srv->opt.tls_cert == NULL)
		return 0;
	if ((ctx = tls_ctx_new(&srv->opt, err, errlen)) == NULL)
		return -1;
	srv->tls = xcalloc(1, sizeof *srv->tls);
	srv->tls->ctx = ctx;
	return 0;
}

/* tls_reload: SIGHUP: read the certificate, key and CAs again; new
 * connections use them, open ones keep theirs.  Failing keeps the old. */
void
tls_reload(struct server *srv)
{
	char err[512];
	SSL_CTX *ctx;

	if (srv->tls == NULL)
		return;
	if ((ctx = tls_ctx_new(&srv->opt, err, sizeof err)) == NULL) {
		log_err("SIGHUP: keeping the old certificates: %s", err);
		return;
	}
	SSL_CTX_free(srv->tls->ctx);   /* open connections hold a reference */
	srv->tls->ctx = ctx;
	log_info("SIGHUP: certificates loaded from %s", srv->opt.tls_cert);
}

void
tls_server_free(struct server *srv)
{
	if (srv->tls == NULL)
		return;
	SSL_CTX_free(srv->tls->ctx);
	free(srv->tls);
	srv->tls = NULL;
}

/* tls_handshake_timeout_cb: the handshake did not finish in time: the
 * connection goes (no frame: there is no TLS session to send it in). */
static void
tls_handshake_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;

	(void)loop;
	(void)revents;
	c->srv->tls_handshake_timeouts++;
	conn_close(c, "TLS handshake not finished in time (--tls-handshake-timeout)");
}

/* tls_conn_new: c speaks TLS (the server's is on); its handshake's
 * deadline starts.  -1: no memory. */
int
tls_conn_new(struct conn *c)
{
	struct tls_conn *t;
	double timeout = c->srv->opt.tls_handshake_timeout;

	if (c->srv->tls == NULL)
		return 0;
	t = xcalloc(1, sizeof *t);
	if ((t->ssl = SSL_new(c->srv->tls->ctx)) == NULL ||
	    !SSL_set_fd(t->ssl, c->fd)) {
		log_warn("%s: TLS: %s", c->peer, tls_errors());
		SSL_free(t->ssl);
		free(t);
		return -1;
	}
	SSL_set_accept_state(t->ssl);
	ev_timer_init(&t->handshake, tls_handshake_timeout_cb, timeout, 0.);
	t->handshake.data = c;
	if (timeout > 0)
		ev_timer_start(c->srv->loop, &t->handshake);
	c->tls = t;
	c->tp = &transport_tls;
	return 0;
}

/* tls_close: at close.  One try at a close_notify, never waiting. */
static void
tls_close(struct conn *c)
{
	struct tls_conn *t = c->tls;

	if (t == NULL)
		return;
	ev_timer_stop(c->srv->loop, &t->handshake);
	if (SSL_is_init_finished(t->ssl))
		SSL_shutdown(t->ssl);
	ERR_clear_error();
	SSL_free(t->ssl);
	free(t);
	c->tls = NULL;
}

/*
 * tls_check_peer: once the handshake is done (its deadline lifted): with
 * --auth, a verified client certificate whose subject CN is a name in the
 * token file makes the connection that name's, as its token would.
 */
static void
tls_check_peer(struct conn *c)
{
	struct tls_conn *t = c->tls;
	char cn[AUTH_NAME_MAX + 2];
	unsigned roles;
	X509 *peer;
	int n;

	t->checked = true;
	ev_timer_stop(c->srv->loop, &t->handshake);
	if ((peer = SSL_get1_peer_certificate(t->ssl)) == NULL)
		return;
	n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName,
	    cn, sizeof cn);
	X509_free(peer);
	if (SSL_get_verify_result(t->ssl) != X509_V_OK || n <= 0 ||
	    n > AUTH_NAME_MAX || !auth_name_valid(cn, (size_t)n))
		return;
	log_info("%s: TLS client certificate of %s", c->peer, cn);
	if (auth_enabled() && !c->authed && auth_name(cn, &roles)) {
		proto_auth_as(c, cn, roles);
		log_info("%s: authenticated as %s by its certificate", c->peer, cn);
	}
}

/*
 * tls_sniff: before the handshake, look at the first byte: a TLS client
 * starts with a handshake record (0x16).  Anything else is a plain client
 * on a TLS port: it gets a plain error frame it can read, then EPROTO.
 */
static int
tls_sniff(struct conn *c)
{
	static const char reason[] = "{\"error\":\"tls_required\",\"reason\":"
	    "\"this port speaks TLS: connect with TLS (jobctl --tls)\"}";
	char frame[FRAME_HEADER + sizeof reason];
	unsigned char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);

	if (n <= 0)
		return n == 0 ? 0 : -1;   /* EOF, EAGAIN or an error: as read would */
	c->tls->sniffed = true;
	if (b == 0x16)
		return 1;
	frame_put_len(frame, sizeof reason - 1);
	memcpy(frame + FRAME_HEADER, reason, sizeof reason - 1);
	if (write(c->fd, frame, FRAME_HEADER + sizeof reason - 1) < 0)
		(void)0;   /* it is closed either way */
	log_warn("%s: a plain-text client on a TLS port: closing it", c->peer);
	errno = EPROTO;
	return -1;
}

/*
 * tls_refuse: a TLS client that gets no connection (over --max-conns or
 * --max-conns-per-addr, out of descriptors, protected mode) is told so
 * with a fatal alert record, which needs no handshake and no state:
 * access_denied for auth_required, else internal_error (TLS has no
 * "busy").  What the client sent already (its ClientHello) is read
 * first and the alert ends with a FIN, so that closing does not send a
 * reset that could discard the alert before the client reads it.  The
 * caller closes fd.
 */
void
tls_refuse(int fd, const char *code)
{
	/* content type alert, record version TLS 1.2, length 2, fatal, what */
	unsigned char alert[7] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02,
	    strcmp(code, "auth_required") == 0 ? 49 : 80 };
	char sink[4096];
	int i;

	for (i = 0; i < 4 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
		;
	if (write(fd, alert, sizeof alert) < 0)
		(void)0;   /* the peer is refused either way */
	shutdown(fd, SHUT_WR);
}

/* tls_read: SSL_read.  0: the peer closed; -1 with errno (EAGAIN: not
 * now). */
static ssize_t
tls_read(struct conn *c, void *p, size_t n)
{
	struct tls_conn *t = c->tls;
	size_t got = 0;
	int e, rc;

	if (!t->sniffed && (rc = tls_sniff(c)) <= 0)
		return rc;
	t->read_wants_write = false;
	errno = 0;
	ERR_clear_error();
	if (SSL_read_ex(t->ssl, p, n, &got)) {
		size_t more;

		/* Records OpenSSL already holds: take them now, no syscall. */
		while (got < n && SSL_has_pending(t->ssl) &&
		    SSL_read_ex(t->ssl, (char *)p + got, n - got, &more))
			got += more;
		ERR_clear_error();
		if (!t->checked)
			tls_check_peer(c);
		return (ssize_t)got;
	}
	switch ((e = SSL_get_error(t->ssl, 0))) {
	case SSL_ERROR_WANT_WRITE:
		t->read_wants_write = true;
		ev_io_start(c->srv->loop, &c->wio);
		/* FALLTHROUGH */
	case SSL_ERROR_WANT_READ:
		if (!t->checked && SSL_is_init_finished(t->ssl))
			tls_check_peer(c);
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			return 0;   /* closed without close_notify */
		return -1;
	default:
		log_info("%s: TLS: %s", c->peer, tls_errors());
		errno = EPROTO;
		return -1;
	}
}

/* tls_writev: SSL_write of the first piece (SSL_write has no writev);
 * -1 with errno EAGAIN when the socket (or the handshake) cannot take it
 * now. */
static ssize_t
tls_writev(struct conn *c, const struct iovec *iov, int cnt)
{
	struct tls_conn *t = c->tls;
	size_t put = 0;

	(void)cnt;
	t->write_wants_read = false;
	errno = 0;
	ERR_clear_error();
	if (SSL_write_ex(t->ssl, iov[0].iov_base, iov[0].iov_len, &put))
		return (ssize_t)put;
	switch (SSL_get_error(t->ssl, 0)) {
	case SSL_ERROR_WANT_READ:
		t->write_wants_read = true;   /* the read watcher retries it */
		/* FALLTHROUGH */
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			errno = EPIPE;
		return -1;
	default:
		log_info("%s: TLS: %s", c->peer, tls_errors());
		errno = EPROTO;
		return -1;
	}
}

static bool
tls_pending(const struct conn *c)
{
	return SSL_has_pending(c->tls->ssl);
}

static bool
tls_write_blocked(const struct conn *c)
{
	return c->tls->write_wants_read;
}

static bool
tls_read_wants_write(const struct conn *c)
{
	return c->tls->read_wants_write;
}

const struct transport transport_tls = {
	.name = "tls",
	.read = tls_read,
	.writev = tls_writev,
	.pending = tls_pending,
	.write_blocked = tls_write_blocked,
	.read_wants_write = tls_read_wants_write,
	.close = tls_close,
};
