/* The one checked accessor for guest physical addresses. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "vmm/guest_mem.h"

static uint8_t low[0x10000], high[0x1000];

static void setup_mem(struct guest_mem *gm)
{
	memset(gm, 0, sizeof(*gm));
	assert_int_equal(gm_add_region(gm, 0, sizeof(low), low), 0);
	assert_int_equal(gm_add_region(gm, 0x100000000ULL, sizeof(high), high), 0);
}

static void test_inside(void **state)
{
	struct guest_mem gm;

	(void)state;
	setup_mem(&gm);
	assert_ptr_equal(gm_ptr(&gm, 0, 1), low);
	assert_ptr_equal(gm_ptr(&gm, 0xfff0, 0x10), low + 0xfff0);
	assert_ptr_equal(gm_ptr(&gm, 0x100000800ULL, 0x800), high + 0x800);
	assert_int_equal(gm.total, sizeof(low) + sizeof(high));
}

static void test_outside_and_overflow(void **state)
{
	struct guest_mem gm;

	(void)state;
	setup_mem(&gm);
	assert_null(gm_ptr(&gm, 0xfff0, 0x11)); /* runs past the end */
	assert_null(gm_ptr(&gm, 0x10000, 1));	/* the hole */
	assert_null(gm_ptr(&gm, 0x100000fffULL, 2));
	assert_null(gm_ptr(&gm, 0, 0));		 /* empty */
	assert_null(gm_ptr(&gm, UINT64_MAX, 2)); /* wraps */
	assert_null(gm_ptr(&gm, 8, UINT64_MAX)); /* wraps */
	assert_null(gm_ptr(&gm, 0x100000000ULL, UINT64_MAX - 0xfffffffeULL));
	/* A range spanning two regions is refused even if both parts exist. */
	assert_null(gm_ptr(&gm, 0xffff, 0x100000000ULL));
}

static void test_read_write(void **state)
{
	struct guest_mem gm;
	uint32_t v = 0xdeadbeef, r = 0;

	(void)state;
	setup_mem(&gm);
	assert_int_equal(gm_write(&gm, 0x100, &v, sizeof(v)), 0);
	assert_int_equal(gm_read(&gm, 0x100, &r, sizeof(r)), 0);
	assert_int_equal(r, v);
	assert_int_equal(gm_write(&gm, 0xfffe, &v, sizeof(v)), -EFAULT);
	assert_int_equal(gm_read(&gm, 0x20000, &r, sizeof(r)), -EFAULT);
}

static void test_add_region_checks(void **state)
{
	struct guest_mem gm;
	static uint8_t more[0x1000];
	int i;

	(void)state;
	setup_mem(&gm);
	assert_int_equal(gm_add_region(&gm, 0x8000, 0x1000, more), -EINVAL); /* overlap */
	assert_int_equal(gm_add_region(&gm, 0x20000, 0, more), -EINVAL);
	assert_int_equal(gm_add_region(&gm, UINT64_MAX - 0x10, 0x1000, more), -EINVAL);
	for (i = 0; i < GM_MAX_REGIONS - 2; i++)
		assert_int_equal(gm_add_region(&gm, 0x200000ULL * (i + 1), 0x1000, more), 0);
	assert_int_equal(gm_add_region(&gm, 0x40000000, 0x1000, more), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_inside),
	    cmocka_unit_test(test_outside_and_overflow),
	    cmocka_unit_test(test_read_write),
	    cmocka_unit_test(test_add_region_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
