/*
 * The i8042: Linux's probe sequence answers, the reset line reboots, the
 * keyboard answers atkbd's commands and types Ctrl-Alt-Del on IRQ 1.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/legacy.h"
#include "fake_host.h"
#include "vmm/state.h"

#define KBD_GSI 1

#define DATA   0
#define STATUS 4
#define CMD    4

#define STR_OBF	    0x01
#define STR_AUXDATA 0x20

struct fixture {
	struct fake_host fake;
	struct device *dev;
};

static int setup(void **st)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	fake_host_init(&fx->fake, KBD_GSI);
	fx->dev = i8042_create(&fx->fake.host);
	if (!fx->dev)
		return -1;
	*st = fx;
	return 0;
}

static int teardown(void **st)
{
	struct fixture *fx = *st;

	assert_false(fx->fake.wrong_gsi);
	assert_false(fx->fake.repeated_level);
	/* A request that is neither a reboot nor a power-off is a bug too. */
	assert_int_equal(fx->fake.requests, fx->fake.reboots + fx->fake.poweroffs);
	fx->dev->ops->destroy(fx->dev);
	free(fx);
	return 0;
}

static uint8_t rd(struct device *dev, uint64_t off)
{
	uint8_t v = 0;

	dev->ops->read(dev, off, &v, 1);
	return v;
}

static void wr(struct device *dev, uint64_t off, uint8_t v)
{
	dev->ops->write(dev, off, &v, 1);
}

static void test_reset_pulse_reboots(void **st)
{
	struct fixture *fx = *st;

	wr(fx->dev, CMD, 0xfe);
	assert_int_equal(fx->fake.reboots, 1);
	assert_int_equal(fx->fake.poweroffs, 0);
	/* Pulsing other output lines leaves the CPU alone. */
	wr(fx->dev, CMD, 0xff);
	wr(fx->dev, CMD, 0xfd);
	assert_int_equal(fx->fake.reboots, 1);
}

static void test_write_output_port(void **st)
{
	struct fixture *fx = *st;

	wr(fx->dev, CMD, 0xd1);
	wr(fx->dev, DATA, 0x03);
	assert_int_equal(fx->fake.reboots, 0);
	wr(fx->dev, CMD, 0xd0);
	assert_int_equal(rd(fx->dev, DATA), 0x03);
	/* Bit 0 low asserts the CPU reset line. */
	wr(fx->dev, CMD, 0xd1);
	wr(fx->dev, DATA, 0x02);
	assert_int_equal(fx->fake.reboots, 1);
}

static void test_self_test(void **st)
{
	struct fixture *fx = *st;

	assert_int_equal(rd(fx->dev, STATUS) & STR_OBF, 0);
	wr(fx->dev, CMD, 0xaa);
	assert_int_equal(rd(fx->dev, STATUS) & STR_OBF, STR_OBF);
	assert_int_equal(rd(fx->dev, DATA), 0x55);
	assert_int_equal(rd(fx->dev, STATUS) & STR_OBF, 0);
	wr(fx->dev, CMD, 0xab);
	assert_int_equal(rd(fx->dev, DATA), 0x00);
	assert_int_equal(fx->fake.reboots, 0);
	/* Controller replies are polled: no interrupt. */
	assert_int_equal(fx->fake.irq_calls, 0);
}

static void test_command_byte(void **st)
{
	struct fixture *fx = *st;

	wr(fx->dev, CMD, 0x60);
	wr(fx->dev, DATA, 0x47);
	wr(fx->dev, CMD, 0x20);
	assert_int_equal(rd(fx->dev, DATA), 0x47);
	wr(fx->dev, CMD, 0xa7);
	wr(fx->dev, CMD, 0xad);
	wr(fx->dev, CMD, 0x20);
	assert_int_equal(rd(fx->dev, DATA), 0x47 | 0x20 | 0x10);
	wr(fx->dev, CMD, 0xa8);
	wr(fx->dev, CMD, 0xae);
	wr(fx->dev, CMD, 0x20);
	assert_int_equal(rd(fx->dev, DATA), 0x47);
}

static void test_aux_loop(void **st)
{
	struct fixture *fx = *st;

	wr(fx->dev, CMD, 0xd3);
	wr(fx->dev, DATA, 0x5a);
	assert_int_equal(rd(fx->dev, STATUS) & (STR_OBF | STR_AUXDATA), STR_OBF | STR_AUXDATA);
	assert_int_equal(rd(fx->dev, DATA), 0x5a);
	assert_int_equal(rd(fx->dev, STATUS) & STR_OBF, 0);
}

static void test_unknown_ignored(void **st)
{
	struct fixture *fx = *st;

	wr(fx->dev, CMD, 0xc8);
	wr(fx->dev, CMD, 0x00);
	assert_int_equal(rd(fx->dev, STATUS) & STR_OBF, 0);
	assert_int_equal(rd(fx->dev, 1), 0xff);
	assert_int_equal(rd(fx->dev, 3), 0xff);
	assert_int_equal(fx->fake.reboots, 0);
}

/* atkbd's probe: GET ID answers ACK and an MF2 id, each byte an IRQ 1 edge. */
static void test_keyboard_get_id(void **st)
{
	struct fixture *fx = *st;

	wr(fx->dev, DATA, 0xf2);
	assert_true(fx->fake.level);
	assert_int_equal(rd(fx->dev, DATA), 0xfa);
	assert_int_equal(rd(fx->dev, DATA), 0xab);
	assert_int_equal(rd(fx->dev, DATA), 0x83);
	assert_false(fx->fake.level);
	assert_int_equal(fx->fake.rising, 3);
	/* A command with a parameter: ACK for each byte. */
	wr(fx->dev, DATA, 0xed);
	assert_int_equal(rd(fx->dev, DATA), 0xfa);
	wr(fx->dev, DATA, 0x07);
	assert_int_equal(rd(fx->dev, DATA), 0xfa);
	assert_int_equal(rd(fx->dev, STATUS) & STR_OBF, 0);
	/* Reset: ACK and the self-test result. */
	wr(fx->dev, DATA, 0xff);
	assert_int_equal(rd(fx->dev, DATA), 0xfa);
	assert_int_equal(rd(fx->dev, DATA), 0xaa);
}

/* Keyboard interrupts off in the command byte: the bytes wait, no IRQ. */
static void test_keyboard_irq_masked(void **st)
{
	struct fixture *fx = *st;

	wr(fx->dev, CMD, 0x60);
	wr(fx->dev, DATA, 0x64);
	wr(fx->dev, DATA, 0xf4);
	assert_int_equal(fx->fake.irq_calls, 0);
	assert_int_equal(rd(fx->dev, STATUS) & STR_OBF, STR_OBF);
	assert_int_equal(rd(fx->dev, DATA), 0xfa);
}

static void test_ctrl_alt_del(void **st)
{
	static const uint8_t set1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
	static const uint8_t set2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
				       0x71, 0xf0, 0x11, 0xf0, 0x14};
	struct fixture *fx = *st;
	size_t i;

	/* Translation on (as a BIOS leaves it): set 1 codes. */
	assert_int_equal(i8042_ctrl_alt_del(fx->dev), 0);
	for (i = 0; i < sizeof(set1); i++)
		assert_int_equal(rd(fx->dev, DATA), set1[i]);
	assert_int_equal(fx->fake.rising, (int)sizeof(set1));
	assert_false(fx->fake.level);
	/* Translation off: set 2 codes. */
	wr(fx->dev, CMD, 0x60);
	wr(fx->dev, DATA, 0x25);
	assert_int_equal(i8042_ctrl_alt_del(fx->dev), 0);
	for (i = 0; i < sizeof(set2); i++)
		assert_int_equal(rd(fx->dev, DATA), set2[i]);
	/* A guest that never reads: the queue does not overflow silently. */
	assert_int_equal(i8042_ctrl_alt_del(fx->dev), 0);
	assert_int_equal(i8042_ctrl_alt_del(fx->dev), -EBUSY);
}

static void test_state_roundtrip(void **st)
{
	struct fixture *fx = *st;
	struct fake_host fake2;
	struct device *dev2;
	struct state_io save, load;
	int i;

	fake_host_init(&fake2, KBD_GSI);
	dev2 = i8042_create(&fake2.host);
	assert_non_null(dev2);
	wr(fx->dev, CMD, 0x60);
	wr(fx->dev, DATA, 0x31);
	wr(fx->dev, CMD, 0xaa);
	wr(fx->dev, CMD, 0x20);
	wr(fx->dev, CMD, 0xd3);
	wr(fx->dev, DATA, 0x99);
	state_io_saver(&save);
	assert_int_equal(fx->dev->ops->state(fx->dev, &save), 0);
	state_io_loader(&load, save.buf, save.len);
	assert_int_equal(dev2->ops->state(dev2, &load), 0);
	assert_int_equal(state_io_finish(&load), 0);
	for (i = 0; i < 5; i++) {
		assert_int_equal(rd(fx->dev, STATUS), rd(dev2, STATUS));
		assert_int_equal(rd(fx->dev, DATA), rd(dev2, DATA));
	}
	assert_false(fake2.wrong_gsi);
	state_io_free(&save);
	dev2->ops->destroy(dev2);
}

static void test_fuzz(void **st)
{
	struct fixture *fx = *st;
	struct state_io io;
	unsigned int seed = 0x8042;
	uint8_t data[8];
	int i, j, op;

	for (i = 0; i < 100000; i++) {
		uint64_t off = (uint64_t)(rand_r(&seed) % 8);
		uint32_t len = 1 + (uint32_t)(rand_r(&seed) % 8);

		if (rand_r(&seed) % 100 == 0)
			off = ((uint64_t)rand_r(&seed) << 33) ^ (uint64_t)rand_r(&seed);
		for (j = 0; j < 8; j++)
			data[j] = (uint8_t)rand_r(&seed);
		op = rand_r(&seed) % 1000;
		if (op < 500) {
			fx->dev->ops->write(fx->dev, off, data, len);
		} else if (op < 990) {
			fx->dev->ops->read(fx->dev, off, data, len);
		} else {
			/* Round trips, some with corrupted queue indexes. */
			state_io_saver(&io);
			assert_int_equal(fx->dev->ops->state(fx->dev, &io), 0);
			if (op & 1)
				io.buf[(size_t)rand_r(&seed) % io.len] = (uint8_t)rand_r(&seed);
			state_io_loader(&io, io.buf, io.len);
			fx->dev->ops->state(fx->dev, &io);
			free(io.buf);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_reset_pulse_reboots, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_output_port, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_self_test, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_command_byte, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_aux_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_ignored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keyboard_get_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keyboard_irq_masked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ctrl_alt_del, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
