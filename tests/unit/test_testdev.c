/* debug-exit and pc-testdev: what guests see, what they ask of the machine, their state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "devices/testdev.h"
#include "fake_host.h"
#include "vmm/state.h"

struct exit_host {
	struct fake_host fake;
	int exits;
	int status;
};

static void record_exit(struct dev_host *host, int status)
{
	struct exit_host *h = container_of(host, struct exit_host, fake.host);

	h->exits++;
	h->status = status;
}

static void test_debug_exit(void **st)
{
	struct exit_host h;
	struct device *d;
	uint32_t v;

	(void)st;
	fake_host_init(&h.fake, FAKE_NO_GSI);
	h.fake.host.guest_exit = record_exit;
	h.exits = 0;
	d = debug_exit_create(&h.fake.host, 1);
	assert_non_null(d);
	v = 0x20;
	d->ops->write(d, 0, &v, 1);
	assert_int_equal(h.exits, 1);
	assert_int_equal(h.status, 0x41); /* (V << 1) | 1 */
	v = 0;
	d->ops->write(d, 0, &v, 1);
	assert_int_equal(h.status, 1);
	d->ops->read(d, 0, &v, 4);
	assert_int_equal(v, 0);
	d->ops->destroy(d);
	/* A 4-port device takes a 32-bit value. */
	d = debug_exit_create(&h.fake.host, 4);
	v = 0x12345;
	d->ops->write(d, 0, &v, 4);
	assert_int_equal(h.status, 0x2468b);
	d->ops->destroy(d);
	assert_null(debug_exit_create(&h.fake.host, 3));
	assert_int_equal(h.fake.requests, 0);
}

static void test_scratch(void **st)
{
	struct fake_host h;
	struct device *p[TESTDEV_NPARTS];
	uint32_t v = 0x12345678, r = 0;
	uint16_t w = 0xabcd;
	uint8_t b = 0;

	(void)st;
	fake_host_init(&h, FAKE_NO_GSI);
	assert_int_equal(testdev_create(&h.host, NULL, p), 0);
	p[0]->ops->write(p[0], 0, &v, 4);
	p[0]->ops->read(p[0], 3, &b, 1);
	assert_int_equal(b, 0x12);
	p[0]->ops->write(p[0], 2, &w, 2);
	p[0]->ops->read(p[0], 0, &r, 4);
	assert_int_equal(r, 0xabcd5678);
	p[0]->ops->read(p[0], 2, &r, 4); /* past the register: zeros, not another byte */
	assert_int_equal(r, 0xabcd);
	v = 0x1000; /* the flush port with no memory: ignored */
	p[0]->ops->write(p[0], 4, &v, 4);
	for (int i = 0; i < TESTDEV_NPARTS; i++)
		p[i]->ops->destroy(p[i]);
}

static void test_irq_lines(void **st)
{
	struct fake_host h;
	struct device *p[TESTDEV_NPARTS];
	uint8_t one = 1, zero = 0, r;

	(void)st;
	fake_host_init(&h, 9);
	assert_int_equal(testdev_create(&h.host, NULL, p), 0);
	p[1]->ops->write(p[1], 9, &one, 1);
	assert_true(h.level);
	assert_int_equal(h.rising, 1);
	p[1]->ops->read(p[1], 9, &r, 1);
	assert_int_equal(r, 1);
	p[1]->ops->write(p[1], 9, &zero, 1);
	assert_false(h.level);
	assert_false(h.wrong_gsi);
	p[1]->ops->write(p[1], 24, &one, 1); /* no line 24 */
	assert_int_equal(h.irq_calls, 2);
	for (int i = 0; i < TESTDEV_NPARTS; i++)
		p[i]->ops->destroy(p[i]);
}

/* The MMIO window reads back what was written, at any width; its state survives a save. */
static void test_iomem_state(void **st)
{
	struct fake_host h;
	struct device *p[TESTDEV_NPARTS], *q[TESTDEV_NPARTS];
	struct state_io save, load;
	uint64_t v = 0x1122334455667788ULL, r = 0;
	uint8_t one = 1;

	(void)st;
	fake_host_init(&h, 3);
	assert_int_equal(testdev_create(&h.host, NULL, p), 0);
	assert_int_equal(testdev_create(&h.host, NULL, q), 0);
	p[2]->ops->write(p[2], TESTDEV_IOMEM_LEN - 8, &v, 8);
	p[2]->ops->read(p[2], TESTDEV_IOMEM_LEN - 5, &r, 4);
	assert_int_equal(r, 0x22334455);
	p[1]->ops->write(p[1], 3, &one, 1);
	for (int i = 0; i < TESTDEV_NPARTS; i++) {
		state_io_saver(&save);
		assert_int_equal(p[i]->ops->state(p[i], &save), 0);
		assert_int_equal(state_io_finish(&save), 0);
		state_io_loader(&load, save.buf, save.len);
		assert_int_equal(q[i]->ops->state(q[i], &load), 0);
		assert_int_equal(state_io_finish(&load), 0);
		state_io_free(&save);
	}
	r = 0;
	q[2]->ops->read(q[2], TESTDEV_IOMEM_LEN - 8, &r, 8);
	assert_int_equal(r, v);
	q[1]->ops->read(q[1], 3, &one, 1);
	assert_int_equal(one, 1);
	for (int i = 0; i < TESTDEV_NPARTS; i++) {
		p[i]->ops->destroy(p[i]);
		q[i]->ops->destroy(q[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_debug_exit),
	    cmocka_unit_test(test_scratch),
	    cmocka_unit_test(test_irq_lines),
	    cmocka_unit_test(test_iomem_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
