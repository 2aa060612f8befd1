/* errmsg_set: the message formatted into the caller's buffer, the code returned. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "util/errmsg.h"

static void formats_and_returns_code(void **state)
{
	char buf[64] = "old";

	(void)state;
	assert_int_equal(errmsg_set(buf, sizeof(buf), -EINVAL, "bad %s: %d", "size", 7), -EINVAL);
	assert_string_equal(buf, "bad size: 7");
	assert_int_equal(errmsg_set(buf, sizeof(buf), 0, "fine"), 0);
	assert_string_equal(buf, "fine");
}

static void truncates_and_terminates(void **state)
{
	char buf[8];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(errmsg_set(buf, 5, -E2BIG, "%s", "abcdefgh"), -E2BIG);
	assert_string_equal(buf, "abcd");
	assert_int_equal(buf[5], 'x'); /* nothing written past @len */
}

static void no_buffer_still_returns_code(void **state)
{
	char buf[4] = "abc";

	(void)state;
	assert_int_equal(errmsg_set(NULL, 64, -ENOENT, "gone"), -ENOENT);
	assert_int_equal(errmsg_set(buf, 0, -ENOENT, "gone"), -ENOENT);
	assert_string_equal(buf, "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(formats_and_returns_code),
	    cmocka_unit_test(truncates_and_terminates),
	    cmocka_unit_test(no_buffer_still_returns_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
