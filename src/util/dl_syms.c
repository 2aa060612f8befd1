/* Filling a struct of function pointers from a library loaded by name (dl_syms.h). */
#include "util/dl_syms.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

void *dl_syms_load(const char *soname, const struct dl_sym *syms, size_t n, void *table, char *err,
		   size_t errlen)
{
	void *h = dlopen(soname, RTLD_LAZY | RTLD_LOCAL);
	void *found[n ? n : 1];
	const char *why;

	if (!h) {
		why = dlerror();
		snprintf(err, errlen, "%s: %s", soname, why ? why : "cannot be loaded");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		found[i] = dlsym(h, syms[i].name);
		if (!found[i]) {
			why = dlerror();
			snprintf(err, errlen, "%s: %s", syms[i].name, why ? why : "not found");
			dlclose(h);
			return NULL;
		}
	}
	/* POSIX: a data pointer from dlsym converts to a function pointer. */
	for (size_t i = 0; i < n; i++)
		memcpy((char *)table + syms[i].offset, &found[i], sizeof(found[i]));
	return h;
}
