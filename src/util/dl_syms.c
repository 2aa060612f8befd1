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

bool dl_once_load(struct dl_once *o, const char *soname, const struct dl_sym *syms, size_t n,
		  void *table)
{
	bool loaded;

	pthread_mutex_lock(&o->lock);
	if (!o->handle)
		o->handle = dl_syms_load(soname, syms, n, table, o->error, sizeof(o->error));
	loaded = o->handle != NULL;
	pthread_mutex_unlock(&o->lock);
	return loaded;
}

bool dl_once_loaded(struct dl_once *o, char *err, size_t errlen)
{
	bool loaded;

	pthread_mutex_lock(&o->lock);
	loaded = o->handle != NULL;
	if (!loaded)
		snprintf(err, errlen, "%s", o->error);
	pthread_mutex_unlock(&o->lock);
	return loaded;
}
