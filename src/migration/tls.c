/*
 * TLS for tcp: migration streams (GnuTLS): TLS 1.3 only, both sides
 * present a certificate and verify the peer's against their CA. The
 * session replaces the connection's read and write operations; nothing
 * above transport.h knows the stream is encrypted.
 */
#include "migration/transport.h"

#include "migration/tls_lib.h"

#include "util/errmsg.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define fail(err, ret, ...) errmsg_set(err, MIG_ERR_LEN, ret, __VA_ARGS__)
/* TLS 1.3 and nothing older; GnuTLS's default ciphers within it. */
#define PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3"

struct mig_tls {
	gnutls_certificate_credentials_t cred;
};

/* GnuTLS as mig_tls_lib_load loaded it: used only past mig_tls_load's check that it was. */
static const struct tls_lib *const gt = &tls_lib_table;

bool mig_tls_wanted(const struct mig_tls_paths *p)
{
	return p->cert[0] || p->key[0] || p->ca[0];
}

int mig_tls_load(const struct mig_tls_paths *p, struct mig_tls **out, char *err)
{
	char why[MIG_ERR_LEN];
	struct mig_tls *t;
	int rc;

	if (!p->cert[0] || !p->key[0] || !p->ca[0])
		return fail(err, -EINVAL, "TLS needs a certificate, its key and a CA (all three)");
	if (!tls_lib_loaded(why, sizeof(why)))
		return fail(err, -ENOTSUP, "TLS is not available: %s", why);
	t = calloc(1, sizeof(*t));
	if (!t || gt->certificate_allocate_credentials(&t->cred) < 0) {
		free(t);
		return fail(err, -ENOMEM, "out of memory");
	}
	rc = gt->certificate_set_x509_trust_file(t->cred, p->ca, GNUTLS_X509_FMT_PEM);
	if (rc <= 0) {
		mig_tls_free(t);
		return fail(err, -EINVAL, "TLS CA %s: %s", p->ca,
			    rc == 0 ? "no certificate in it" : gt->strerror(rc));
	}
	rc = gt->certificate_set_x509_key_file(t->cred, p->cert, p->key, GNUTLS_X509_FMT_PEM);
	if (rc < 0) {
		mig_tls_free(t);
		return fail(err, -EINVAL, "TLS certificate %s with key %s: %s", p->cert, p->key,
			    gt->strerror(rc));
	}
	*out = t;
	return 0;
}

void mig_tls_free(struct mig_tls *t)
{
	if (!t)
		return;
	gt->certificate_free_credentials(t->cred);
	free(t);
}

/* A GnuTLS error as -errno, its words in c->why. */
static ssize_t tls_error(struct mig_conn *c, ssize_t rc)
{
	gnutls_session_t s = c->priv;

	if (rc == GNUTLS_E_AGAIN) /* the socket's timeout (SO_RCVTIMEO/SO_SNDTIMEO) */
		return -ETIMEDOUT;
	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED)
		snprintf(c->why, sizeof(c->why), "the peer sent the TLS alert '%s'",
			 gt->alert_get_name(gt->alert_get(s)));
	else
		snprintf(c->why, sizeof(c->why), "TLS: %s", gt->strerror((int)rc));
	if (rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PUSH_ERROR ||
	    rc == GNUTLS_E_PULL_ERROR)
		return -EPIPE;
	return -EPROTO;
}

static ssize_t tls_read(struct mig_conn *c, void *buf, size_t len)
{
	ssize_t n;

	do
		n = gt->record_recv(c->priv, buf, len);
	while (n == GNUTLS_E_INTERRUPTED);
	return n < 0 ? tls_error(c, n) : n;
}

static ssize_t tls_write(struct mig_conn *c, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = gt->record_send(c->priv, buf, len);
	while (n == GNUTLS_E_INTERRUPTED);
	return n < 0 ? tls_error(c, n) : n;
}

static void tls_shutdown(struct mig_conn *c)
{
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
}

static void tls_close(struct mig_conn *c)
{
	if (c->priv) {
		/* close_notify without waiting for the peer's: the socket closes next. */
		(void)gt->bye(c->priv, GNUTLS_SHUT_WR);
		gt->deinit(c->priv);
	}
	c->priv = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static const struct mig_conn_ops tls_ops = {
    .read = tls_read,
    .write = tls_write,
    .shutdown = tls_shutdown,
    .close = tls_close,
};

/*
 * The peer's certificate, checked again after the handshake (which
 * already refused a bad one): there must be one, it must chain to the CA,
 * be within its validity period and, on the client, name @host.
 */
static int verify_peer(gnutls_session_t s, const char *host, char *err)
{
	unsigned int status = 0, n = 0;
	gnutls_datum_t out = {0};
	int rc;

	if (!gt->certificate_get_peers(s, &n) || n == 0)
		return fail(err, -EACCES, "the peer sent no TLS certificate");
	rc = host ? gt->certificate_verify_peers3(s, host, &status)
		  : gt->certificate_verify_peers2(s, &status);
	if (rc < 0)
		return fail(err, -EACCES, "the peer's TLS certificate: %s", gt->strerror(rc));
	if (status == 0)
		return 0;
	rc = gt->certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0);
	fail(err, -EACCES, "the peer's TLS certificate is refused: %s",
	     rc == 0 ? (const char *)out.data : "verification failed");
	(*gt->free)(out.data);
	return -EACCES;
}

/* The handshake's failure in words: the verification status, the peer's alert, or GnuTLS's. */
static int handshake_error(gnutls_session_t s, int rc, char *err)
{
	gnutls_datum_t out = {0};
	unsigned int status;

	if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		status = gt->session_get_verify_cert_status(s);
		if (gt->certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) ==
		    0) {
			fail(err, -EACCES, "the peer's TLS certificate is refused: %s",
			     (const char *)out.data);
			(*gt->free)(out.data);
			return -EACCES;
		}
	}
	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED)
		return fail(err, -EACCES, "the peer refused the TLS handshake: %s",
			    gt->alert_get_name(gt->alert_get(s)));
	if (rc == GNUTLS_E_AGAIN)
		return fail(err, -ETIMEDOUT, "TLS handshake: the peer did not answer in time");
	return fail(err, -EPROTO, "TLS handshake failed: %s (is the peer using TLS?)",
		    gt->strerror(rc));
}

static int tls_start(struct mig_conn *c, struct mig_tls *t, const char *host, bool server,
		     char *err)
{
	gnutls_session_t s;
	char *desc;
	int rc = gt->init(&s, server ? GNUTLS_SERVER : GNUTLS_CLIENT);

	if (rc < 0)
		return fail(err, -ENOMEM, "TLS: %s", gt->strerror(rc));
	if ((rc = gt->priority_set_direct(s, PRIORITY, NULL)) < 0 ||
	    (rc = gt->credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->cred)) < 0) {
		gt->deinit(s);
		return fail(err, -EINVAL, "TLS: %s", gt->strerror(rc));
	}
	if (server) {
		gt->certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
		/*
		 * No list of acceptable CAs: a client then sends its certificate
		 * whoever signed it, and is refused for it by name ("issuer
		 * unknown") rather than for sending none.
		 */
		gt->certificate_send_x509_rdn_sequence(s, 1);
	}
	/* Verified during the handshake on both sides: a bad certificate never gets data. */
	gt->session_set_verify_cert(s, host, 0);
	gt->transport_set_int2(s, c->fd, c->fd);
	gt->handshake_set_timeout(s, GNUTLS_INDEFINITE_TIMEOUT); /* the socket's own */
	do
		rc = gt->handshake(s);
	while (rc < 0 && !gt->error_is_fatal(rc) && rc != GNUTLS_E_AGAIN);
	if (rc <
	    0) /* the peer learns why (unknown CA, bad certificate), not just a closed socket */
		(void)gt->alert_send_appropriate(s, rc);
	rc = rc < 0 ? handshake_error(s, rc, err) : verify_peer(s, host, err);
	if (rc < 0) {
		gt->deinit(s);
		return rc;
	}
	c->ops = &tls_ops;
	c->priv = s;
	desc = gt->session_get_desc(s);
	log_info("TLS with the %s: %s, peer certificate verified",
		 server ? "source" : "destination", desc ? desc : "?");
	(*gt->free)(desc);
	return 0;
}

/*
 * In TLS 1.3 the client's handshake ends before the server has checked
 * the client's certificate: the server's one-byte ACCEPT, the first
 * record, tells the client it was accepted, and a refusal reaches it as
 * the server's alert ("unknown CA"), not as a broken pipe later.
 */
#define ACCEPT 'A'

int mig_tls_client(struct mig_conn *c, struct mig_tls *t, const char *host, char *err)
{
	uint8_t b = 0;
	int ret = tls_start(c, t, host, false, err);

	if (ret == 0 && (ret = mig_read_full(c, &b, 1)) < 0)
		return fail(err, ret, "the destination refused the TLS connection: %s",
			    c->why[0] ? c->why : strerror(-ret));
	if (ret == 0 && b != ACCEPT)
		return fail(err, -EPROTO, "TLS: the destination did not accept the connection");
	return ret;
}

int mig_tls_server(struct mig_conn *c, struct mig_tls *t, char *err)
{
	static const uint8_t b = ACCEPT;
	int ret = tls_start(c, t, NULL, true, err);

	if (ret == 0 && (ret = mig_write_full(c, &b, 1)) < 0)
		return fail(err, ret, "TLS: the source's connection broke: %s",
			    c->why[0] ? c->why : strerror(-ret));
	return ret;
}
