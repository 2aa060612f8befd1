/* The ACPI sleep/reset registers and the POST port sink. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/legacy.h"
#include "fake_host.h"
#include "vmm/state.h"

#define SLEEP_CTL 0
#define SLEEP_STS 1
#define RESET_REG 4
#define RESET_VAL 0x06 /* not 1, so a test can tell it from other values */

struct fixture {
	struct fake_host fake;
	struct device *pm;
	struct device *post;
};

static int setup(void **st)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	fake_host_init(&fx->fake, FAKE_NO_GSI);
	fx->pm = acpi_pm_create(&fx->fake.host, RESET_VAL);
	fx->post = post_sink_create(&fx->fake.host);
	if (!fx->pm || !fx->post)
		return -1;
	*st = fx;
	return 0;
}

static int teardown(void **st)
{
	struct fixture *fx = *st;

	assert_int_equal(fx->fake.irq_calls, 0);
	fx->pm->ops->destroy(fx->pm);
	fx->post->ops->destroy(fx->post);
	free(fx);
	return 0;
}

static void wr(struct device *dev, uint64_t off, uint8_t v)
{
	dev->ops->write(dev, off, &v, 1);
}

static void test_slp_en_powers_off(void **st)
{
	struct fixture *fx = *st;

	/* SLP_TYP without SLP_EN only prepares the transition. */
	wr(fx->pm, SLEEP_CTL, 0x1c);
	assert_int_equal(fx->fake.poweroffs, 0);
	/* SLP_EN with \_S5's SLP_TYP, and with any other: only S5 exists. */
	wr(fx->pm, SLEEP_CTL, 0x20 | 0x14);
	assert_int_equal(fx->fake.poweroffs, 1);
	wr(fx->pm, SLEEP_CTL, 0x20);
	assert_int_equal(fx->fake.poweroffs, 2);
	assert_int_equal(fx->fake.reboots, 0);
}

static void test_wide_write_powers_off(void **st)
{
	struct fixture *fx = *st;
	uint16_t v = 0x0034;

	/* A 16-bit write at offset 0 reaches sleep control in its low byte. */
	fx->pm->ops->write(fx->pm, SLEEP_CTL, &v, sizeof(v));
	assert_int_equal(fx->fake.poweroffs, 1);
}

static void test_reset_value_reboots(void **st)
{
	struct fixture *fx = *st;

	wr(fx->pm, RESET_REG, 0x01);
	wr(fx->pm, RESET_REG, 0x00);
	wr(fx->pm, RESET_REG, 0xff);
	assert_int_equal(fx->fake.reboots, 0);
	wr(fx->pm, RESET_REG, RESET_VAL);
	assert_int_equal(fx->fake.reboots, 1);
	assert_int_equal(fx->fake.poweroffs, 0);
}

static void test_other_registers_inert(void **st)
{
	struct fixture *fx = *st;
	uint8_t v[8];
	uint64_t off;

	for (off = 0; off < 8; off++) {
		/* The reset value and SLP_EN anywhere else do nothing. */
		if (off != SLEEP_CTL && off != RESET_REG) {
			wr(fx->pm, off, 0x20);
			wr(fx->pm, off, RESET_VAL);
		}
	}
	assert_int_equal(fx->fake.poweroffs, 0);
	assert_int_equal(fx->fake.reboots, 0);
	memset(v, 0xaa, sizeof(v));
	fx->pm->ops->read(fx->pm, 0, v, 8);
	for (off = 0; off < 8; off++)
		assert_int_equal(v[off], 0);
}

static void test_post_sink(void **st)
{
	struct fixture *fx = *st;
	struct state_io io;
	uint8_t v[8] = {0};
	int i;

	fx->post->ops->write(fx->post, 0, v, 1);
	fx->post->ops->read(fx->post, 0, v, 8);
	for (i = 0; i < 8; i++)
		assert_int_equal(v[i], 0xff);
	state_io_saver(&io);
	assert_int_equal(fx->post->ops->state(fx->post, &io), 0);
	assert_int_equal(io.len, 0);
	state_io_free(&io);
	assert_int_equal(fx->fake.poweroffs + fx->fake.reboots, 0);
}

static uint32_t pm_timer(struct device *pm)
{
	uint32_t t = 0;

	pm->ops->read(pm, 8, &t, 4);
	return t;
}

/*
 * The PM timer's count survives a snapshot: a machine restored from it
 * (a fresh device, whose own count starts at 0) continues from the saved
 * count instead of going back, which Linux's acpi_pm clocksource would
 * take for a wrap of 20 minutes.
 */
static void test_pm_state_keeps_timer(void **st)
{
	struct fixture *fx = *st;
	struct timespec ts = {0, 50 * 1000 * 1000};
	struct device *copy;
	struct state_io io, in;
	uint32_t before, after;

	nanosleep(&ts, NULL);
	before = pm_timer(fx->pm);
	assert_true(before >= 178977 - 100); /* 50 ms */
	state_io_saver(&io);
	assert_int_equal(fx->pm->ops->state(fx->pm, &io), 0);
	assert_int_equal(state_io_finish(&io), 0);
	copy = acpi_pm_create(&fx->fake.host, RESET_VAL);
	assert_non_null(copy);
	assert_true(pm_timer(copy) < before);
	state_io_loader(&in, io.buf, io.len);
	assert_int_equal(copy->ops->state(copy, &in), 0);
	assert_int_equal(state_io_finish(&in), 0);
	after = pm_timer(copy);
	assert_true(after >= before);
	assert_true(after - before < 3579545); /* and did not leap ahead either */
	/* A state from before the timer was saved (empty) still loads. */
	state_io_loader(&in, io.buf, 0);
	assert_int_equal(copy->ops->state(copy, &in), 0);
	/* A version this build does not know is refused. */
	io.buf[0] = 2;
	state_io_loader(&in, io.buf, io.len);
	assert_int_equal(copy->ops->state(copy, &in), -EBADMSG);
	copy->ops->destroy(copy);
	state_io_free(&io);
}

static void fuzz_device(struct device *dev, unsigned int seed)
{
	uint8_t data[8];
	int i, j, op;

	for (i = 0; i < 100000; i++) {
		uint64_t off = (uint64_t)(rand_r(&seed) % 10);
		uint32_t len = 1 + (uint32_t)(rand_r(&seed) % 8);

		if (rand_r(&seed) % 100 == 0)
			off = ((uint64_t)rand_r(&seed) << 33) ^ (uint64_t)rand_r(&seed);
		for (j = 0; j < 8; j++)
			data[j] = (uint8_t)rand_r(&seed);
		op = rand_r(&seed) % 100;
		if (op < 50)
			dev->ops->write(dev, off, data, len);
		else
			dev->ops->read(dev, off, data, len);
	}
}

/* The PM timer at offset 8 counts at 3.579545 MHz and never goes back. */
static void test_pm_timer(void **st)
{
	struct fixture *fx = *st;
	struct timespec ts = {0, 20 * 1000 * 1000};
	uint32_t a = 0, b = 0;
	uint8_t lo = 0;

	fx->pm->ops->read(fx->pm, 8, &a, 4);
	nanosleep(&ts, NULL);
	fx->pm->ops->read(fx->pm, 8, &b, 4);
	/* 20 ms is 71591 ticks; a busy host may sleep longer, never shorter. */
	assert_true(b - a >= 71591 - 100);
	assert_true(b - a < 3579545);
	fx->pm->ops->read(fx->pm, 8, &lo, 1);
	fx->pm->ops->read(fx->pm, 0, &a, 4); /* the sleep registers still read 0 */
	assert_int_equal(a, 0);
}

static void test_fuzz(void **st)
{
	struct fixture *fx = *st;

	fuzz_device(fx->pm, 0x600);
	fuzz_device(fx->post, 0x80);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_slp_en_powers_off, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wide_write_powers_off, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_value_reboots, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_registers_inert, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_post_sink, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pm_state_keeps_timer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pm_timer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
