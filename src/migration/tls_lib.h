/*
 * GnuTLS, loaded by a process that may migrate over TLS (one serving the
 * API, which can be asked to migrate, or a destination given TLS
 * credentials), never linked: other VMMs map none of it and skip its
 * initialisation at start-up (docs/performance.md, "Start-up"). It must be
 * loaded before the seccomp filters, which forbid mapping code: tls.c never
 * loads it, it only uses what mig_tls_lib_load loaded.
 */
#ifndef BANYAN_MIGRATION_TLS_LIB_H
#define BANYAN_MIGRATION_TLS_LIB_H

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>
#include <stddef.h>

#define TLS_LIB_SONAME "libgnutls.so.30"

/* The entry points tls.c uses, with the library's own types. */
struct tls_lib {
	__typeof__(&gnutls_strerror) strerror;
	__typeof__(gnutls_free) *free; /* a variable in GnuTLS: the pointer to it */
	__typeof__(&gnutls_init) init;
	__typeof__(&gnutls_deinit) deinit;
	__typeof__(&gnutls_bye) bye;
	__typeof__(&gnutls_handshake) handshake;
	__typeof__(&gnutls_handshake_set_timeout) handshake_set_timeout;
	__typeof__(&gnutls_error_is_fatal) error_is_fatal;
	__typeof__(&gnutls_record_send) record_send;
	__typeof__(&gnutls_record_recv) record_recv;
	__typeof__(&gnutls_priority_set_direct) priority_set_direct;
	__typeof__(&gnutls_credentials_set) credentials_set;
	__typeof__(&gnutls_transport_set_int2) transport_set_int2;
	__typeof__(&gnutls_session_set_verify_cert) session_set_verify_cert;
	__typeof__(&gnutls_session_get_verify_cert_status) session_get_verify_cert_status;
	__typeof__(&gnutls_session_get_desc) session_get_desc;
	__typeof__(&gnutls_alert_get) alert_get;
	__typeof__(&gnutls_alert_get_name) alert_get_name;
	__typeof__(&gnutls_alert_send_appropriate) alert_send_appropriate;
	__typeof__(&gnutls_certificate_allocate_credentials) certificate_allocate_credentials;
	__typeof__(&gnutls_certificate_free_credentials) certificate_free_credentials;
	__typeof__(&gnutls_certificate_set_x509_trust_file) certificate_set_x509_trust_file;
	__typeof__(&gnutls_certificate_set_x509_key_file) certificate_set_x509_key_file;
	__typeof__(&gnutls_certificate_server_set_request) certificate_server_set_request;
	__typeof__(&gnutls_certificate_send_x509_rdn_sequence) certificate_send_x509_rdn_sequence;
	__typeof__(&gnutls_certificate_get_peers) certificate_get_peers;
	__typeof__(&gnutls_certificate_verify_peers2) certificate_verify_peers2;
	__typeof__(&gnutls_certificate_verify_peers3) certificate_verify_peers3;
	__typeof__(&gnutls_certificate_verification_status_print)
	    certificate_verification_status_print;
};

/* The table, filled by mig_tls_lib_load: read it only once tls_lib_loaded said so. */
extern struct tls_lib tls_lib_table;

/*
 * tls_lib_loaded - whether mig_tls_lib_load filled tls_lib_table; if not,
 * why (never asked, or the load's error) in @err.
 */
bool tls_lib_loaded(char *err, size_t errlen);

#endif
