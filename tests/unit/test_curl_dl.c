/*
 * banyan ctl's libcurl loader: every entry point resolved, or a clear
 * error and nothing loaded.
 */
#include "cli/curl_dl.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_loads_every_entry_point(void **state)
{
	struct curl_dl c;
	char err[256] = "";
	CURL *h;

	(void)state;
	assert_int_equal(curl_dl_open(&c, NULL, err, sizeof(err)), 0);
	assert_non_null(c.handle);
	assert_non_null(c.global_cleanup);
	assert_non_null(c.slist_free_all);
	h = c.easy_init();
	assert_non_null(h);
	assert_int_equal(c.easy_setopt(h, CURLOPT_URL, "http://localhost/"), CURLE_OK);
	assert_string_equal(c.easy_strerror(CURLE_OK), "No error");
	c.easy_cleanup(h);
	curl_dl_close(&c);
	assert_null(c.handle);
	assert_null(c.easy_init);
	curl_dl_close(&c); /* twice is harmless */
}

static void test_absent_library_is_refused(void **state)
{
	struct curl_dl c;
	char err[256] = "";

	(void)state;
	assert_int_equal(curl_dl_open(&c, "libbanyan-no-such-curl.so.4", err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "libbanyan-no-such-curl.so.4"));
	assert_null(c.handle);
	assert_null(c.easy_init);
}

static void test_library_without_curl_is_refused(void **state)
{
	struct curl_dl c;
	char err[256] = "";

	(void)state;
	/* libz loads, but has no curl_global_init: the first lookup fails by name. */
	assert_int_equal(curl_dl_open(&c, "libz.so.1", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "curl_global_init"));
	assert_null(c.handle);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_loads_every_entry_point),
	    cmocka_unit_test(test_absent_library_is_refused),
	    cmocka_unit_test(test_library_without_curl_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
