/* GnuTLS through dlopen (tls_lib.h says why), once per process, before the sandbox. */
#include "migration/tls_lib.h"

#include "migration/transport.h"
#include "util/dl_syms.h"

#include <errno.h>

#define S(field, sym) DL_SYM(struct tls_lib, field, sym)

static const struct dl_sym tls_syms[] = {
    S(strerror, gnutls_strerror),
    S(free, gnutls_free),
    S(init, gnutls_init),
    S(deinit, gnutls_deinit),
    S(bye, gnutls_bye),
    S(handshake, gnutls_handshake),
    S(handshake_set_timeout, gnutls_handshake_set_timeout),
    S(error_is_fatal, gnutls_error_is_fatal),
    S(record_send, gnutls_record_send),
    S(record_recv, gnutls_record_recv),
    S(priority_set_direct, gnutls_priority_set_direct),
    S(credentials_set, gnutls_credentials_set),
    S(transport_set_int2, gnutls_transport_set_int2),
    S(session_set_verify_cert, gnutls_session_set_verify_cert),
    S(session_get_verify_cert_status, gnutls_session_get_verify_cert_status),
    S(session_get_desc, gnutls_session_get_desc),
    S(alert_get, gnutls_alert_get),
    S(alert_get_name, gnutls_alert_get_name),
    S(alert_send_appropriate, gnutls_alert_send_appropriate),
    S(certificate_allocate_credentials, gnutls_certificate_allocate_credentials),
    S(certificate_free_credentials, gnutls_certificate_free_credentials),
    S(certificate_set_x509_trust_file, gnutls_certificate_set_x509_trust_file),
    S(certificate_set_x509_key_file, gnutls_certificate_set_x509_key_file),
    S(certificate_server_set_request, gnutls_certificate_server_set_request),
    S(certificate_send_x509_rdn_sequence, gnutls_certificate_send_x509_rdn_sequence),
    S(certificate_get_peers, gnutls_certificate_get_peers),
    S(certificate_verify_peers2, gnutls_certificate_verify_peers2),
    S(certificate_verify_peers3, gnutls_certificate_verify_peers3),
    S(certificate_verification_status_print, gnutls_certificate_verification_status_print),
};

static struct dl_once tls_once =
    DL_ONCE_INIT("TLS was not prepared in this process (no API, no TLS options)");
struct tls_lib tls_lib_table; /* filled by the one load, then only read */

int mig_tls_lib_load(void)
{
	return dl_once_load(&tls_once, TLS_LIB_SONAME, tls_syms,
			    sizeof(tls_syms) / sizeof(tls_syms[0]), &tls_lib_table)
		   ? 0
		   : -ENOENT;
}

bool tls_lib_loaded(char *err, size_t errlen)
{
	return dl_once_loaded(&tls_once, err, errlen);
}
