/* The trap registry: dispatch by range, offsets, overlap refusal, unowned reads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/device.h"

struct probe {
	struct device dev;
	uint64_t offset;
	uint32_t len;
	int reads, writes;
};

static void probe_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	struct probe *p = container_of(dev, struct probe, dev);

	p->offset = offset;
	p->len = len;
	p->reads++;
	memset(data, 0x5a, len);
}

static void probe_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	struct probe *p = container_of(dev, struct probe, dev);

	(void)data;
	p->offset = offset;
	p->len = len;
	p->writes++;
}

static const struct device_ops probe_ops = {
    .name = "probe", .read = probe_read, .write = probe_write};

static void test_dispatch_offsets(void **state)
{
	struct probe a = {.dev.ops = &probe_ops}, b = {.dev.ops = &probe_ops};
	struct bus bus;
	uint32_t v = 0;

	(void)state;
	assert_int_equal(bus_init(&bus, "test"), 0);
	assert_int_equal(bus_register(&bus, 0x1000, 0x100, &a.dev), 0);
	assert_int_equal(bus_register(&bus, 0x100, 8, &b.dev), 0);
	assert_true(bus_access(&bus, 0x1010, &v, 4, false));
	assert_int_equal(a.offset, 0x10);
	assert_int_equal(a.len, 4);
	assert_int_equal(v, 0x5a5a5a5a);
	assert_true(bus_access(&bus, 0x107, &v, 1, true));
	assert_int_equal(b.offset, 7);
	assert_int_equal(b.writes, 1);
	bus_destroy(&bus);
}

static void test_overlap_refused(void **state)
{
	struct probe a = {.dev.ops = &probe_ops};
	struct bus bus;

	(void)state;
	assert_int_equal(bus_init(&bus, "test"), 0);
	assert_int_equal(bus_register(&bus, 0x1000, 0x100, &a.dev), 0);
	assert_int_equal(bus_register(&bus, 0x10ff, 1, &a.dev), -EEXIST);
	assert_int_equal(bus_register(&bus, 0xf00, 0x101, &a.dev), -EEXIST);
	assert_int_equal(bus_register(&bus, 0xf00, 0x100, &a.dev), 0); /* adjacent is fine */
	assert_int_equal(bus_register(&bus, 0x1100, 1, &a.dev), 0);
	assert_int_equal(bus_register(&bus, 0, 0, &a.dev), -EINVAL);
	assert_int_equal(bus_register(&bus, UINT64_MAX, 2, &a.dev), -EINVAL);
	bus_destroy(&bus);
}

static void test_unowned_and_straddling(void **state)
{
	struct probe a = {.dev.ops = &probe_ops};
	struct bus bus;
	uint64_t v = 0;

	(void)state;
	assert_int_equal(bus_init(&bus, "test"), 0);
	assert_int_equal(bus_register(&bus, 0x1000, 4, &a.dev), 0);
	assert_false(bus_access(&bus, 0x2000, &v, 8, false));
	assert_int_equal(v, UINT64_MAX);
	/* Half inside, half outside: nobody owns the whole access. */
	assert_false(bus_access(&bus, 0x1002, &v, 4, false));
	assert_int_equal(a.reads, 0);
	assert_false(bus_access(&bus, UINT64_MAX - 1, &v, 4, true));
	bus_destroy(&bus);
}

static void test_unregister(void **state)
{
	struct probe a = {.dev.ops = &probe_ops}, b = {.dev.ops = &probe_ops};
	struct bus bus;
	uint8_t v;

	(void)state;
	assert_int_equal(bus_init(&bus, "test"), 0);
	assert_int_equal(bus_register(&bus, 0x10, 1, &a.dev), 0);
	assert_int_equal(bus_register(&bus, 0x20, 1, &b.dev), 0);
	assert_int_equal(bus_register(&bus, 0x30, 1, &a.dev), 0);
	bus_unregister(&bus, &a.dev);
	assert_false(bus_access(&bus, 0x10, &v, 1, false));
	assert_false(bus_access(&bus, 0x30, &v, 1, false));
	assert_true(bus_access(&bus, 0x20, &v, 1, false));
	bus_destroy(&bus);
}

static void test_many_ranges(void **state)
{
	struct probe a = {.dev.ops = &probe_ops};
	struct bus bus;
	uint8_t v;
	int i;

	(void)state;
	assert_int_equal(bus_init(&bus, "test"), 0);
	/* Registered out of order: the table must stay sorted. */
	for (i = 99; i >= 0; i--)
		assert_int_equal(bus_register(&bus, (uint64_t)i * 0x10, 8, &a.dev), 0);
	for (i = 0; i < 100; i++) {
		assert_true(bus_access(&bus, (uint64_t)i * 0x10 + 7, &v, 1, false));
		assert_false(bus_access(&bus, (uint64_t)i * 0x10 + 8, &v, 1, false));
	}
	bus_destroy(&bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dispatch_offsets),
	    cmocka_unit_test(test_overlap_refused),
	    cmocka_unit_test(test_unowned_and_straddling),
	    cmocka_unit_test(test_unregister),
	    cmocka_unit_test(test_many_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
