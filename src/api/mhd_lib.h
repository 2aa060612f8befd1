/*
 * libmicrohttpd, loaded when a process serves the API (api_server_begin),
 * never linked: a VMM without --api-socket then maps neither it nor the
 * GnuTLS it brings (Debian builds it with HTTPS), and its start-up skips
 * their relocation and GnuTLS's initialisation (docs/performance.md,
 * "Start-up"). Loaded before the seccomp filters, which forbid mapping
 * code; the header gives only types and constants.
 */
#ifndef BANYAN_API_MHD_LIB_H
#define BANYAN_API_MHD_LIB_H

#include <microhttpd.h>
#include <stddef.h>

#define MHD_LIB_SONAME "libmicrohttpd.so.12"

/* The entry points the API server uses, with the library's own types. */
struct mhd_lib {
	__typeof__(&MHD_start_daemon) start_daemon;
	__typeof__(&MHD_stop_daemon) stop_daemon;
	__typeof__(&MHD_quiesce_daemon) quiesce_daemon;
	__typeof__(&MHD_run) run;
	__typeof__(&MHD_get_timeout) get_timeout;
	__typeof__(&MHD_get_daemon_info) get_daemon_info;
	__typeof__(&MHD_get_connection_info) get_connection_info;
	__typeof__(&MHD_lookup_connection_value) lookup_connection_value;
	__typeof__(&MHD_suspend_connection) suspend_connection;
	__typeof__(&MHD_resume_connection) resume_connection;
	__typeof__(&MHD_create_response_from_buffer) create_response_from_buffer;
	__typeof__(&MHD_add_response_header) add_response_header;
	__typeof__(&MHD_queue_response) queue_response;
	__typeof__(&MHD_destroy_response) destroy_response;
};

/*
 * mhd_lib_load - load MHD_LIB_SONAME once per process (later calls return
 * the same table). The table, or NULL with the reason in @err (the library
 * is absent or lacks an entry point). Thread-safe.
 */
const struct mhd_lib *mhd_lib_load(char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
