/* The boot timer: only Firecracker's signal (one byte, 123, offset 0) is timed, from the start. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "devices/boot_timer.h"
#include "fake_host.h"
#include "util/clock.h"

static void test_magic_byte_is_timed(void **st)
{
	struct fake_host h;
	uint64_t start = now_ns(), ns = 0, before;
	uint8_t v = BOOT_TIMER_MAGIC;
	struct device *d;

	(void)st;
	fake_host_init(&h, FAKE_NO_GSI);
	d = boot_timer_create(&h.host, start);
	assert_non_null(d);
	assert_int_equal(boot_timer_elapsed_ns(d, &ns), -ENOENT);
	before = now_ns();
	d->ops->write(d, 0, &v, 1);
	assert_int_equal(boot_timer_elapsed_ns(d, &ns), 0);
	assert_true(ns >= before - start);
	assert_true(ns <= now_ns() - start);
	d->ops->destroy(d);
}

static void test_other_writes_are_ignored(void **st)
{
	struct fake_host h;
	uint32_t wide = BOOT_TIMER_MAGIC;
	uint8_t v = BOOT_TIMER_MAGIC, other = BOOT_TIMER_MAGIC + 1;
	uint64_t ns;
	struct device *d;

	(void)st;
	fake_host_init(&h, FAKE_NO_GSI);
	d = boot_timer_create(&h.host, now_ns());
	assert_non_null(d);
	d->ops->write(d, 0, &other, 1); /* another value */
	d->ops->write(d, 1, &v, 1);	/* another offset */
	d->ops->write(d, 0, &wide, 4);	/* a wider access */
	d->ops->write(d, 0, &wide, 2);
	assert_int_equal(boot_timer_elapsed_ns(d, &ns), -ENOENT);
	d->ops->destroy(d);
}

static void test_reads_are_zero(void **st)
{
	struct fake_host h;
	uint64_t v = ~0ULL, ns;
	struct device *d;

	(void)st;
	fake_host_init(&h, FAKE_NO_GSI);
	d = boot_timer_create(&h.host, now_ns());
	assert_non_null(d);
	d->ops->read(d, 0, &v, 8);
	assert_int_equal(v, 0);
	assert_int_equal(boot_timer_elapsed_ns(d, &ns), -ENOENT);
	d->ops->destroy(d);
}

/* The latest signal counts, measured from the start given at creation. */
static void test_start_is_the_given_one(void **st)
{
	struct fake_host h;
	uint64_t start = now_ns() - 5000000000ULL, ns = 0;
	uint8_t v = BOOT_TIMER_MAGIC;
	struct device *d;

	(void)st;
	fake_host_init(&h, FAKE_NO_GSI);
	d = boot_timer_create(&h.host, start);
	assert_non_null(d);
	d->ops->write(d, 0, &v, 1);
	assert_int_equal(boot_timer_elapsed_ns(d, &ns), 0);
	assert_true(ns >= 5000000000ULL);
	d->ops->destroy(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_magic_byte_is_timed),
	    cmocka_unit_test(test_other_writes_are_ignored),
	    cmocka_unit_test(test_reads_are_zero),
	    cmocka_unit_test(test_start_is_the_given_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
