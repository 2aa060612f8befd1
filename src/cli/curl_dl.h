/*
 * libcurl, loaded when a verb needs it (`banyan ctl`), never linked: a
 * VMM process (`banyan run`, `restore`) then maps neither libcurl nor the
 * TLS, Kerberos and LDAP libraries it pulls in (docs/performance.md,
 * "Start-up"). The header gives only types and constants.
 */
#ifndef BANYAN_CLI_CURL_DL_H
#define BANYAN_CLI_CURL_DL_H

#include <curl/curl.h>
#include <stddef.h>

#define CURL_DL_SONAME "libcurl.so.4"

/* The libcurl entry points banyan uses, as loaded. */
struct curl_dl {
	void *handle;
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode rc);
	void (*easy_cleanup)(CURL *h);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
	void (*slist_free_all)(struct curl_slist *list);
};

/*
 * curl_dl_open - load CURL_DL_SONAME (@soname: NULL for it, or another
 * name, for tests) and every entry point into @c, then curl_global_init.
 * 0, or -ENOENT with the loader's reason in @err (the library is absent
 * or lacks a symbol); nothing stays loaded then.
 */
int curl_dl_open(struct curl_dl *c, const char *soname, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* curl_dl_close - curl_global_cleanup and unload; @c zeroed. Safe on a zeroed @c. */
void curl_dl_close(struct curl_dl *c);

#endif
