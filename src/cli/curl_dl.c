/*
 * libcurl through dlopen (curl_dl.h says why). Each entry point is looked
 * up by name into a slot of struct curl_dl; a missing one fails the whole
 * load, so callers never meet a NULL pointer.
 */
#include "cli/curl_dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

struct curl_sym {
	const char *name;
	size_t offset; /* of the pointer in struct curl_dl */
};

#define CURL_SYM(field, sym)                                                                       \
	{                                                                                          \
#sym, offsetof(struct curl_dl, field)                                              \
	}

static const struct curl_sym curl_syms[] = {
    CURL_SYM(global_init, curl_global_init),	 CURL_SYM(global_cleanup, curl_global_cleanup),
    CURL_SYM(easy_init, curl_easy_init),	 CURL_SYM(easy_setopt, curl_easy_setopt),
    CURL_SYM(easy_perform, curl_easy_perform),	 CURL_SYM(easy_getinfo, curl_easy_getinfo),
    CURL_SYM(easy_strerror, curl_easy_strerror), CURL_SYM(easy_cleanup, curl_easy_cleanup),
    CURL_SYM(slist_append, curl_slist_append),	 CURL_SYM(slist_free_all, curl_slist_free_all),
};

static int curl_dl_fail(struct curl_dl *c, char *err, size_t errlen, const char *what)
{
	const char *why = dlerror();

	snprintf(err, errlen, "%s: %s", what, why ? why : "not found");
	if (c->handle)
		dlclose(c->handle);
	memset(c, 0, sizeof(*c));
	return -ENOENT;
}

int curl_dl_open(struct curl_dl *c, const char *soname, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	if (!soname)
		soname = CURL_DL_SONAME;
	c->handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!c->handle)
		return curl_dl_fail(c, err, errlen, soname);
	for (size_t i = 0; i < sizeof(curl_syms) / sizeof(curl_syms[0]); i++) {
		void *p = dlsym(c->handle, curl_syms[i].name);

		if (!p)
			return curl_dl_fail(c, err, errlen, curl_syms[i].name);
		/* POSIX guarantees a data pointer from dlsym converts to a function pointer. */
		memcpy((char *)c + curl_syms[i].offset, &p, sizeof(p));
	}
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
