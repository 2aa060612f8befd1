/* Splitting "key[=value],..." options: words, bare words, empty values, empty words. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "cli/kv_option.h"

struct word {
	const char *key;
	const char *val; /* NULL for a bare word */
};

/* Split @text and expect exactly @n words, then the end (0) or an error (-EINVAL). */
static void expect_words(const char *text, const struct word *want, unsigned int n, int end)
{
	char arg[128], err[128] = "";
	struct kv_option o;
	char *key, *val;

	assert_true(strlen(text) < sizeof(arg));
	strcpy(arg, text);
	kv_option_start(&o, "--test", arg);
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(kv_option_next(&o, &key, &val, err, sizeof(err)), 1);
		assert_int_equal(o.nwords, i + 1);
		assert_string_equal(key, want[i].key);
		if (want[i].val)
			assert_string_equal(val, want[i].val);
		else
			assert_null(val);
	}
	assert_int_equal(kv_option_next(&o, &key, &val, err, sizeof(err)), end);
	if (end < 0)
		assert_string_equal(err, "--test: empty word (a leading comma or two commas in a "
					 "row)");
	else
		assert_string_equal(err, "");
	/* Once ended, by the end or an error, it stays ended. */
	assert_int_equal(kv_option_next(&o, &key, &val, err, sizeof(err)), 0);
}

static void several_words(void **state)
{
	const struct word w[] = {{"path", "/img/a.raw"}, {"id", "root"}, {"cache", "none"}};

	(void)state;
	expect_words("path=/img/a.raw,id=root,cache=none", w, 3, 0);
}

static void bare_words(void **state)
{
	const struct word w[] = {{"disk.img", NULL}, {"ro", NULL}, {"id", "x"}};

	(void)state;
	expect_words("disk.img,ro,id=x", w, 3, 0);
}

static void empty_value_and_more_equals(void **state)
{
	const struct word w[] = {{"k", ""}, {"a", "b=c"}, {"", "v"}};

	(void)state;
	expect_words("k=,a=b=c,=v", w, 3, 0);
}

static void empty_word_is_an_error(void **state)
{
	const struct word w[] = {{"a", "1"}};

	(void)state;
	expect_words("a=1,,b=2", w, 1, -EINVAL);
	expect_words(",a=1", NULL, 0, -EINVAL);
	expect_words(",", NULL, 0, -EINVAL);
	expect_words("a=1,,", w, 1, -EINVAL);
}

static void trailing_comma_and_empty_option(void **state)
{
	const struct word w[] = {{"a", "1"}, {"ro", NULL}};

	(void)state;
	expect_words("a=1,ro,", w, 2, 0);
	expect_words("", NULL, 0, 0);
}

static void split_in_place(void **state)
{
	char arg[] = "x=1,y";
	char err[64];
	struct kv_option o;
	char *key, *val;

	(void)state;
	kv_option_start(&o, "--test", arg);
	assert_int_equal(kv_option_next(&o, &key, &val, err, sizeof(err)), 1);
	assert_ptr_equal(key, arg);
	assert_ptr_equal(val, arg + 2);
	assert_int_equal(kv_option_next(&o, &key, &val, err, sizeof(err)), 1);
	assert_ptr_equal(key, arg + 4);
	assert_memory_equal(arg,
			    "x\0"
			    "1\0"
			    "y",
			    sizeof(arg));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(several_words),
	    cmocka_unit_test(bare_words),
	    cmocka_unit_test(empty_value_and_more_equals),
	    cmocka_unit_test(empty_word_is_an_error),
	    cmocka_unit_test(trailing_comma_and_empty_option),
	    cmocka_unit_test(split_in_place),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
