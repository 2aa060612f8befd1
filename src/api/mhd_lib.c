/* libmicrohttpd through dlopen (mhd_lib.h says why), once per process. */
#include "api/mhd_lib.h"

#include "util/dl_syms.h"

static const struct dl_sym mhd_syms[] = {
    DL_SYM(struct mhd_lib, start_daemon, MHD_start_daemon),
    DL_SYM(struct mhd_lib, stop_daemon, MHD_stop_daemon),
    DL_SYM(struct mhd_lib, quiesce_daemon, MHD_quiesce_daemon),
    DL_SYM(struct mhd_lib, run, MHD_run),
    DL_SYM(struct mhd_lib, get_timeout, MHD_get_timeout),
    DL_SYM(struct mhd_lib, get_daemon_info, MHD_get_daemon_info),
    DL_SYM(struct mhd_lib, get_connection_info, MHD_get_connection_info),
    DL_SYM(struct mhd_lib, lookup_connection_value, MHD_lookup_connection_value),
    DL_SYM(struct mhd_lib, suspend_connection, MHD_suspend_connection),
    DL_SYM(struct mhd_lib, resume_connection, MHD_resume_connection),
    DL_SYM(struct mhd_lib, create_response_from_buffer, MHD_create_response_from_buffer),
    DL_SYM(struct mhd_lib, add_response_header, MHD_add_response_header),
    DL_SYM(struct mhd_lib, queue_response, MHD_queue_response),
    DL_SYM(struct mhd_lib, destroy_response, MHD_destroy_response),
};

static struct dl_once mhd_once = DL_ONCE_INIT("");
static struct mhd_lib mhd_table; /* filled by the one load, then only read */

const struct mhd_lib *mhd_lib_load(char *err, size_t errlen)
{
	if (dl_once_load(&mhd_once, MHD_LIB_SONAME, mhd_syms,
			 sizeof(mhd_syms) / sizeof(mhd_syms[0]), &mhd_table))
		return &mhd_table;
	(void)dl_once_loaded(&mhd_once, err, errlen);
	return NULL;
}
