/*
 * web_tls.c — HTTPS on the web face.  With --tls-cert and --tls-key (and
 * without --http-plain) libmicrohttpd speaks TLS on the web face's port,
 * through the GnuTLS it is built with, as the TCP ports do through
 * OpenSSL (tls.c).
 *
 * Why MHD's own TLS rather than OpenSSL under MHD: MHD reads and writes
 * its sockets itself; putting OpenSSL under it would mean accepting the
 * connections ourselves, running each handshake, and feeding MHD
 * decrypted bytes through a socket pair or its "upgrade" path: a second
 * TLS path written by hand, for no gain.  GnuTLS in MHD is what its
 * maintainers test, non-blocking on the same one loop.
 *
 * The certificate and key are not given to MHD as files: MHD would read
 * them once.  They are handed to GnuTLS at each handshake by a callback
 * (MHD_OPTION_HTTPS_CERT_CALLBACK) from a set loaded here, so that SIGHUP
 * can load a new set, as it does for the TCP ports.  A handshake under
 * way may still use the set it was given: an old set is kept until the
 * web face stops (a few kilobytes per SIGHUP).
 *
 * With --tls-ca, MHD asks every client for a certificate (its trust list
 * names the CAs); a request whose connection did not present one that
 * these CAs sign is refused before it is read (web_tls_peer_ok), with a
 * 403 that says so rather than a failed handshake a browser shows as an
 * unexplained error.  The CAs checked are ours, reloaded on SIGHUP too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include "web/web_int.h"

#define CHAIN_MAX 16

struct wtls_set {
	gnutls_pcert_st          pcerts[CHAIN_MAX];
	unsigned                 npcerts;
	gnutls_privkey_t         key;
	gnutls_x509_trust_list_t cas;   /* --tls-ca; NULL: none */
	struct wtls_set         *older;
};

/* The set handshakes are given now (the callback has no argument). */
static struct wtls_set *current;
static char *trust_pem;   /* --tls-ca as read at start: MHD's request list */

static void
set_free(struct wtls_set *s)
{
	unsigned i;

	while (s != NULL) {
		struct wtls_set *older = s->older;

		for (i = 0; i < s->npcerts; i++)
			gnutls_pcert_deinit(&s->pcerts[i]);
		if (s->key != NULL)
			gnutls_privkey_deinit(s->key);
		if (s->cas != NULL)
			gnutls_x509_trust_list_deinit(s->cas, 1);
		free(s);
		s = older;
	}
}

/* set_load: the options' certificate chain, key and CAs; NULL with a
 * message in err if one cannot be used (or the key is not the
 * certificate's). */
static struct wtls_set *
set_load(const struct options *o, char *err, size_t errlen)
{
	struct wtls_set *s = xcalloc(1, sizeof *s);
	gnutls_certificate_credentials_t check = NULL;
	gnutls_datum_t d = { NULL, 0 };
	int rc;

	s->npcerts = CHAIN_MAX;
	if ((rc = gnutls_load_file(o->tls_cert, &d)) < 0 ||
	    (rc = gnutls_pcert_list_import_x509_raw(s->pcerts, &s->npcerts, &d,
	    GNUTLS_X509_FMT_PEM, 0)) < 0) {
		s->npcerts = 0;
		snprintf(err, errlen, "--tls-cert %s: %s", o->tls_cert, gnutls_strerror(rc));
		goto fail;
	}
	gnutls_free(d.data);
	d.data = NULL;
	if ((rc = gnutls_load_file(o->tls_key, &d)) < 0 ||
	    (rc = gnutls_privkey_init(&s->key)) < 0 ||
	    (rc = gnutls_privkey_import_x509_raw(s->key, &d, GNUTLS_X509_FMT_PEM,
	    NULL, 0)) < 0) {
		snprintf(err, errlen, "--tls-key %s: %s", o->tls_key, gnutls_strerror(rc));
		goto fail;
	}
	/* GnuTLS checks that the key is the certificate's as it takes both. */
	if ((rc = gnutls_certificate_allocate_credentials(&check)) < 0 ||
	    (rc = gnutls_certificate_set_x509_key_file(check, o->tls_cert,
	    o->tls_key, GNUTLS_X509_FMT_PEM)) < 0) {
		snprintf(err, errlen, "--tls-key %s: %s", o->tls_key, gnutls_strerror(rc));
		goto fail;
	}
	if (o->tls_ca != NULL &&
	    ((rc = gnutls_x509_trust_list_init(&s->cas, 0)) < 0 ||
	    (rc = gnutls_x509_trust_list_add_trust_file(s->cas, o->tls_ca, NULL,
	    GNUTLS_X509_FMT_PEM, 0, 0)) <= 0)) {
		snprintf(err, errlen, "--tls-ca %s: %s", o->tls_ca,
		    rc == 0 ? "no certificate in it" : gnutls_strerror(rc));
		goto fail;
	}
	gnutls_free(d.data);
	gnutls_certificate_free_credentials(check);
	return s;
fail:
	gnutls_free(d.data);
	if (check != NULL)
		gnutls_certificate_free_credentials(check);
	set_free(s);
	return NULL;
}

static int
cert_cb(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
    const gnutls_pk_algorithm_t *pk_algos, int npk_algos,
    gnutls_pcert_st **pcert, unsigned int *npcert, gnutls_privkey_t *key)
{
	(void)session;
	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)npk_algos;
	if (current == NULL)
		return -1;
	*pcert = current->pcerts;
	*npcert = current->npcerts;
	*key = current->key;
	return 0;
}

/* read_text: a whole file as a C string, or NULL. */
static char *
read_text(const char *path)
{
	gnutls_datum_t d = { NULL, 0 };
	char *s;

	if (gnutls_load_file(path, &d) < 0)
		return NULL;
	s = xmalloc(d.size + 1);
	memcpy(s, d.data, d.size);
	s[d.size] = '\0';
	gnutls_free(d.data);
	return s;
}

/*
 * web_tls_options: the MHD options (and flag) that make the web face
 * speak TLS, into opts (room for 4 and the end); 0 and no TLS without
 * --tls-cert or with --http-plain; -1 with a message in err if the files
 * cannot be used or MHD was built without TLS.
 */
int
web_tls_options(const struct options *o, struct MHD_OptionItem *opts,
    unsigned *flags, char *err, size_t errlen)
{
	size_t n = 0;

	opts[0] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	if (o->tls_cert == NULL || o->http_plain)
		return 0;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES ||
	    MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES) {
		snprintf(err, errlen, "this libmicrohttpd has no TLS: give "
		    "--http-plain to serve the web face in plain HTTP");
		return -1;
	}
	if ((current = set_load(o, err, errlen)) == NULL)
		return -1;
	*flags |= MHD_USE_TLS;
	/* As the TCP ports: TLS 1.2 and 1.3 only. */
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
	    (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
	    (void *)(uintptr_t)cert_cb };
	if (o->tls_ca != NULL) {
		if ((trust_pem = read_text(o->tls_ca)) == NULL) {
			snprintf(err, errlen, "--tls-ca %s: cannot be read", o->tls_ca);
			return -1;
		}
		/* MHD then asks every client for a certificate of these CAs. */
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0,
		    trust_pem };
	}
	opts[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	return 0;
}

/* web_tls_reload: SIGHUP: a new certificate, key and CAs for new
 * handshakes; failing keeps the old, loudly. */
void
web_tls_reload(struct server *srv)
{
	struct wtls_set *s;
	char err[512];

	if (current == NULL)
		return;
	if ((s = set_load(&srv->opt, err, sizeof err)) == NULL) {
		log_err("SIGHUP: the web face keeps its old certificates: %s", err);
		return;
	}
	s->older = current;
	current = s;
	log_info("SIGHUP: the web face's certificates reloaded");
}

/* web_tls_free: at the web face's stop, every set. */
void
web_tls_free(void)
{
	set_free(current);
	current = NULL;
	free(trust_pem);
	trust_pem = NULL;
}

bool
web_tls_on(void)
{
	return current != NULL;
}

/*
 * web_tls_peer_ok: with --tls-ca, c's client presented a certificate that
 * the CAs sign (and that is in its dates); true without --tls-ca.
 */
bool
web_tls_peer_ok(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;
	const gnutls_datum_t *raw;
	gnutls_x509_crt_t crts[CHAIN_MAX];
	unsigned n = 0, i, nraw = 0, verdict = 1;
	int rc;

	if (current == NULL || current->cas == NULL)
		return true;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL ||
	    (raw = gnutls_certificate_get_peers(ci->tls_session, &nraw)) == NULL ||
	    nraw == 0)
		return false;
	for (i = 0; i < nraw && i < CHAIN_MAX; i++) {
		if (gnutls_x509_crt_init(&crts[n]) < 0)
			break;
		if (gnutls_x509_crt_import(crts[n], &raw[i], GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crts[n]);
			break;
		}
		n++;
	}
	rc = n > 0 ? gnutls_x509_trust_list_verify_crt(current->cas, crts, n, 0,
	    &verdict, NULL) : -1;
	for (i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	return rc == 0 && verdict == 0;
}
