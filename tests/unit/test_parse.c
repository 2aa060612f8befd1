/* UTF-8: which sequences are valid (RFC 3629), and replacing the others by U+FFFD. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include "util/parse.h"

static size_t seq(const char *s, size_t len)
{
	return utf8_seq_len((const uint8_t *)s, len);
}

static void valid_sequences(void **state)
{
	(void)state;
	assert_int_equal(seq("a", 1), 1);
	assert_int_equal(seq("\xc3\xa9", 2), 2);	 /* U+00E9 */
	assert_int_equal(seq("\xe2\x82\xac", 3), 3);	 /* U+20AC */
	assert_int_equal(seq("\xf0\x9f\x98\x80", 4), 4); /* U+1F600 */
	assert_int_equal(seq("\xf4\x8f\xbf\xbf", 4), 4); /* U+10FFFF */
}

static void invalid_sequences(void **state)
{
	(void)state;
	assert_int_equal(seq("\x80", 1), 0);		 /* a lone continuation byte */
	assert_int_equal(seq("\xc0\x80", 2), 0);	 /* overlong NUL */
	assert_int_equal(seq("\xe0\x80\x80", 3), 0);	 /* overlong */
	assert_int_equal(seq("\xf0\x80\x80\x80", 4), 0); /* overlong */
	assert_int_equal(seq("\xed\xa0\x80", 3), 0);	 /* a surrogate, U+D800 */
	assert_int_equal(seq("\xf4\x90\x80\x80", 4), 0); /* past U+10FFFF */
	assert_int_equal(seq("\xff", 1), 0);
	assert_int_equal(seq("\xc3", 1), 0); /* cut short */
	assert_int_equal(seq("\xe2\x82"
			     "a",
			     3),
			 0); /* a continuation missing */
}

static void sanitize_replaces_each_bad_byte(void **state)
{
	const char in[] = "a\xff\xc3\xa9\xe2\x82"
			  "b";
	size_t len;
	char *out = utf8_sanitize(in, sizeof(in) - 1, &len);

	(void)state;
	assert_non_null(out);
	assert_string_equal(out, "a\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd"
				 "b");
	assert_int_equal(len, strlen(out));
	free(out);
	out = utf8_sanitize("plain", 5, &len);
	assert_string_equal(out, "plain");
	assert_int_equal(len, 5);
	free(out);
}

/* CPU lists in the kernel's syntax, and the --cpu-affinity spec. */
static void cpu_lists(void **state)
{
	char err[128];
	cpu_set_t set;

	(void)state;
	assert_int_equal(cpulist_parse("0-2,5", &set), 0);
	assert_int_equal(CPU_COUNT(&set), 4);
	assert_true(CPU_ISSET(5, &set));
	assert_false(CPU_ISSET(3, &set));
	assert_int_equal(cpulist_parse("", &set), -EINVAL);
	assert_int_equal(cpulist_parse("3-1", &set), -EINVAL);
	assert_int_equal(cpulist_parse("1,", &set), -EINVAL);
	assert_int_equal(cpulist_parse("1-", &set), -EINVAL);
	assert_int_equal(cpulist_parse("x", &set), -EINVAL);
	assert_int_equal(cpulist_parse("1024", &set), -EINVAL);
	assert_int_equal(cpu_affinity_get("vcpu=0;vcpu1=0-1;io=0", 1, &set), 1);
	assert_int_equal(CPU_COUNT(&set), 2);
	assert_int_equal(cpu_affinity_get("vcpu=0;vcpu1=0-1;io=0", 2, &set), 1);
	assert_int_equal(CPU_COUNT(&set), 1); /* vcpu2 has no list: the vcpu role's */
	assert_int_equal(cpu_affinity_get("vcpu1=0", 0, &set), 0);
	assert_int_equal(cpu_affinity_get("vcpu=0", -1, &set), 0);
	assert_int_equal(cpu_affinity_get(NULL, 0, &set), 0);
	assert_int_equal(cpu_affinity_check("vcpu=0;vcpu1=0;io=0", 2, err, sizeof(err)), 0);
	assert_int_equal(cpu_affinity_check("", 1, err, sizeof(err)), 0);
	assert_int_equal(cpu_affinity_check("vcpu2=0", 2, err, sizeof(err)), -EINVAL);
	assert_int_equal(cpu_affinity_check("vcpu=0;vcpu=0", 2, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "given twice"));
	assert_int_equal(cpu_affinity_check("gpu=0", 2, err, sizeof(err)), -EINVAL);
	assert_int_equal(cpu_affinity_check("vcpu=1023", 2, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "CPU 1023"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(valid_sequences),
	    cmocka_unit_test(invalid_sequences),
	    cmocka_unit_test(sanitize_replaces_each_bad_byte),
	    cmocka_unit_test(cpu_lists),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
