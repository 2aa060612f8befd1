/*
 * libcurl through dlopen (curl_dl.h says why). A missing entry point fails
 * the whole load, so callers never meet a NULL pointer.
 */
#include "cli/curl_dl.h"

#include "util/dl_syms.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct dl_sym curl_syms[] = {
    DL_SYM(struct curl_dl, global_init, curl_global_init),
    DL_SYM(struct curl_dl, global_cleanup, curl_global_cleanup),
    DL_SYM(struct curl_dl, easy_init, curl_easy_init),
    DL_SYM(struct curl_dl, easy_setopt, curl_easy_setopt),
    DL_SYM(struct curl_dl, easy_perform, curl_easy_perform),
    DL_SYM(struct curl_dl, easy_getinfo, curl_easy_getinfo),
    DL_SYM(struct curl_dl, easy_strerror, curl_easy_strerror),
    DL_SYM(struct curl_dl, easy_cleanup, curl_easy_cleanup),
    DL_SYM(struct curl_dl, slist_append, curl_slist_append),
    DL_SYM(struct curl_dl, slist_free_all, curl_slist_free_all),
};

int curl_dl_open(struct curl_dl *c, const char *soname, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	if (!soname)
		soname = CURL_DL_SONAME;
	c->handle = dl_syms_load(soname, curl_syms, sizeof(curl_syms) / sizeof(curl_syms[0]), c,
				 err, errlen);
	if (!c->handle)
		return -ENOENT;
	if (c->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "%s: curl_global_init failed", soname);
		dlclose(c->handle);
		memset(c, 0, sizeof(*c));
		return -ENOENT;
	}
	return 0;
}

void curl_dl_close(struct curl_dl *c)
{
	if (!c->handle)
		return;
	c->global_cleanup();
	dlclose(c->handle);
	memset(c, 0, sizeof(*c));
}
