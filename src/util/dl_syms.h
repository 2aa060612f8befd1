/*
 * Libraries loaded when they are needed rather than linked: a process
 * that never serves the API or a TLS migration then maps neither the
 * library nor what it pulls in, and its start-up skips their relocation
 * and constructors (docs/performance.md, "Start-up"). Each user keeps a
 * struct of function pointers; a table of (symbol, offset in that struct)
 * says how to fill it.
 */
#ifndef BANYAN_UTIL_DL_SYMS_H
#define BANYAN_UTIL_DL_SYMS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct dl_sym {
	const char *name;
	size_t offset; /* of the function pointer in the caller's struct */
};

/* An entry of a table for struct TYPE's member FIELD, filled from symbol SYM. */
#define DL_SYM(type, field, sym)                                                                   \
	{                                                                                          \
#sym, offsetof(type, field)                                                        \
	}

/*
 * dl_syms_load - dlopen @soname (RTLD_LAZY | RTLD_LOCAL) and look up each of
 * the @n symbols of @syms into @table. Lazy, as a linked library would
 * be: binding every symbol of GnuTLS and its nine dependencies at load
 * (RTLD_NOW) cost a VMM serving the API about a millisecond more than
 * linking them did. The handle, or NULL with the
 * loader's reason in @err ("SONAME: why" or "SYMBOL: why"); nothing stays
 * loaded then, and @table is left as it was.
 */
void *dl_syms_load(const char *soname, const struct dl_sym *syms, size_t n, void *table, char *err,
		   size_t errlen) __attribute__((warn_unused_result));

/* A library loaded at most once per process (the API's, TLS's), and why not if it was not. */
struct dl_once {
	pthread_mutex_t lock;
	void *handle;	 /* under lock until set; then kept for the process's life */
	char error[256]; /* under lock: why it is not loaded */
};

#define DL_ONCE_INIT(why)                                                                          \
	{                                                                                          \
		.lock = PTHREAD_MUTEX_INITIALIZER, .error = why                                    \
	}

/*
 * dl_once_load - dl_syms_load into @table unless @o is loaded already.
 * Whether it is loaded now; if not, why in @o (read it with
 * dl_once_loaded). Thread-safe; @table is only read once this said true.
 */
bool dl_once_load(struct dl_once *o, const char *soname, const struct dl_sym *syms, size_t n,
		  void *table);

/* dl_once_loaded - whether @o is loaded; if not, why in @err. */
bool dl_once_loaded(struct dl_once *o, char *err, size_t errlen);

#endif
