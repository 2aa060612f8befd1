/* The CMOS RTC: host time in BCD and binary, setting the clock, CMOS RAM, state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/legacy.h"
#include "fake_host.h"
#include "vmm/state.h"

#define INDEX 0
#define DATA  1

#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d

#define B_SET 0x80
#define B_DM  0x04
#define B_24H 0x02

struct fixture {
	struct fake_host fake;
	struct device *dev;
};

static int setup(void **st)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	fake_host_init(&fx->fake, FAKE_NO_GSI);
	fx->dev = rtc_create(&fx->fake.host);
	if (!fx->dev)
		return -1;
	*st = fx;
	return 0;
}

static int teardown(void **st)
{
	struct fixture *fx = *st;

	/* No interrupt line is wired, and a clock has no business rebooting. */
	assert_int_equal(fx->fake.irq_calls, 0);
	assert_int_equal(fx->fake.requests, 0);
	fx->dev->ops->destroy(fx->dev);
	free(fx);
	return 0;
}

static uint8_t cmos_read(struct device *dev, uint8_t idx)
{
	uint8_t v = 0;

	dev->ops->write(dev, INDEX, &idx, 1);
	dev->ops->read(dev, DATA, &v, 1);
	return v;
}

static void cmos_write(struct device *dev, uint8_t idx, uint8_t v)
{
	dev->ops->write(dev, INDEX, &idx, 1);
	dev->ops->write(dev, DATA, &v, 1);
}

static int from_bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t to_bcd(int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static int dec(bool binary, uint8_t v)
{
	return binary ? v : from_bcd(v);
}

/* Decode the clock the way a guest does, honouring register B. */
static int64_t rtc_time(struct device *dev)
{
	uint8_t b = cmos_read(dev, REG_B);
	bool bin = b & B_DM;
	uint8_t hour = cmos_read(dev, 0x04);
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_sec = dec(bin, cmos_read(dev, 0x00));
	tm.tm_min = dec(bin, cmos_read(dev, 0x02));
	if (b & B_24H)
		tm.tm_hour = dec(bin, hour);
	else
		tm.tm_hour = dec(bin, hour & 0x7f) % 12 + ((hour & 0x80) ? 12 : 0);
	tm.tm_mday = dec(bin, cmos_read(dev, 0x07));
	tm.tm_mon = dec(bin, cmos_read(dev, 0x08)) - 1;
	tm.tm_year = dec(bin, cmos_read(dev, 0x32)) * 100 + dec(bin, cmos_read(dev, 0x09)) - 1900;
	return (int64_t)timegm(&tm);
}

static int64_t host_now(void)
{
	return (int64_t)time(NULL);
}

static void assert_near(int64_t a, int64_t b)
{
	int64_t d = a > b ? a - b : b - a;

	assert_true(d <= 2);
}

static void test_defaults(void **st)
{
	struct fixture *fx = *st;
	uint8_t v = 0;
	int i;

	assert_int_equal(cmos_read(fx->dev, REG_A), 0x26);
	assert_int_equal(cmos_read(fx->dev, REG_B), 0x02);
	assert_int_equal(cmos_read(fx->dev, REG_D), 0x80);
	assert_int_equal(cmos_read(fx->dev, REG_C), 0x00);
	/* UIP is never left set: a guest polling for it to clear never waits. */
	for (i = 0; i < 1000; i++)
		assert_int_equal(cmos_read(fx->dev, REG_A) & 0x80, 0);
	/* The index port is write-only. */
	fx->dev->ops->read(fx->dev, INDEX, &v, 1);
	assert_int_equal(v, 0xff);
}

static void test_bcd_host_time(void **st)
{
	struct fixture *fx = *st;
	time_t now = time(NULL);
	struct tm tm;
	uint8_t v;
	int i;

	gmtime_r(&now, &tm);
	assert_near(rtc_time(fx->dev), host_now());
	/* Every time register is valid BCD. */
	for (i = 0; i <= 0x09; i++) {
		v = cmos_read(fx->dev, (uint8_t)i);
		assert_true((v & 0x0f) <= 9);
	}
	assert_int_equal(cmos_read(fx->dev, 0x32), to_bcd((tm.tm_year + 1900) / 100));
	v = cmos_read(fx->dev, 0x06);
	assert_true(v >= 1 && v <= 7);
}

static void test_binary_mode(void **st)
{
	struct fixture *fx = *st;
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	cmos_write(fx->dev, REG_B, B_24H | B_DM);
	assert_near(rtc_time(fx->dev), host_now());
	assert_int_equal(cmos_read(fx->dev, 0x32), (tm.tm_year + 1900) / 100);
	assert_int_equal(cmos_read(fx->dev, 0x09), (tm.tm_year + 1900) % 100);
}

static void test_12_hour_mode(void **st)
{
	struct fixture *fx = *st;
	uint8_t hour;

	cmos_write(fx->dev, REG_B, 0);
	assert_near(rtc_time(fx->dev), host_now());
	hour = cmos_read(fx->dev, 0x04);
	assert_true(from_bcd(hour & 0x7f) >= 1 && from_bcd(hour & 0x7f) <= 12);
}

/* Set 2031-07-04 13:14:15 UTC with SET held, as Linux's mc146818_set_time does. */
static void set_2031(struct device *dev)
{
	cmos_write(dev, REG_B, B_SET | B_24H);
	cmos_write(dev, 0x00, 0x15);
	cmos_write(dev, 0x02, 0x14);
	cmos_write(dev, 0x04, 0x13);
	cmos_write(dev, 0x07, 0x04);
	cmos_write(dev, 0x08, 0x07);
	cmos_write(dev, 0x09, 0x31);
	cmos_write(dev, 0x32, 0x20);
	/* Frozen while SET is held: the guest reads what it wrote. */
	assert_int_equal(cmos_read(dev, 0x00), 0x15);
	cmos_write(dev, REG_B, B_24H);
}

static const int64_t t2031 = 1940937255; /* 2031-07-04 13:14:15 UTC */

static void test_set_time(void **st)
{
	struct fixture *fx = *st;

	set_2031(fx->dev);
	assert_near(rtc_time(fx->dev), t2031);
	assert_int_equal(cmos_read(fx->dev, 0x09), 0x31);
	/* 2031-07-04 is a Friday: weekday 6 with Sunday = 1. */
	assert_int_equal(cmos_read(fx->dev, 0x06), 6);
	/* A single write outside SET mode takes effect at once. */
	cmos_write(fx->dev, 0x09, 0x32);
	assert_near(rtc_time(fx->dev), t2031 + 366 * 86400);
}

static void test_set_time_binary(void **st)
{
	struct fixture *fx = *st;

	cmos_write(fx->dev, REG_B, B_SET | B_24H | B_DM);
	cmos_write(fx->dev, 0x00, 15);
	cmos_write(fx->dev, 0x02, 14);
	cmos_write(fx->dev, 0x04, 13);
	cmos_write(fx->dev, 0x07, 4);
	cmos_write(fx->dev, 0x08, 7);
	cmos_write(fx->dev, 0x09, 31);
	cmos_write(fx->dev, 0x32, 20);
	cmos_write(fx->dev, REG_B, B_24H | B_DM);
	assert_near(rtc_time(fx->dev), t2031);
}

static void test_garbage_time_survives(void **st)
{
	struct fixture *fx = *st;
	int i;

	cmos_write(fx->dev, REG_B, B_SET);
	for (i = 0; i <= 9; i++)
		cmos_write(fx->dev, (uint8_t)i, 0xff);
	cmos_write(fx->dev, 0x32, 0xff);
	cmos_write(fx->dev, REG_B, 0);
	/* Whatever the guest made of its clock, reads still work and keep going. */
	rtc_time(fx->dev);
	cmos_write(fx->dev, REG_B, B_24H);
	rtc_time(fx->dev);
}

static void test_cmos_ram(void **st)
{
	struct fixture *fx = *st;

	cmos_write(fx->dev, 0x40, 0xa5);
	cmos_write(fx->dev, 0x7f, 0x5a);
	cmos_write(fx->dev, 0x01, 0x30); /* seconds alarm */
	assert_int_equal(cmos_read(fx->dev, 0x40), 0xa5);
	assert_int_equal(cmos_read(fx->dev, 0x7f), 0x5a);
	assert_int_equal(cmos_read(fx->dev, 0x01), 0x30);
	/* Bit 7 of the index is the NMI mask, not part of the index. */
	assert_int_equal(cmos_read(fx->dev, 0x80 | 0x40), 0xa5);
	/* C and D are read-only. */
	cmos_write(fx->dev, REG_C, 0xff);
	cmos_write(fx->dev, REG_D, 0x00);
	assert_int_equal(cmos_read(fx->dev, REG_C), 0x00);
	assert_int_equal(cmos_read(fx->dev, REG_D), 0x80);
	/* UIP cannot be written. */
	cmos_write(fx->dev, REG_A, 0xa6);
	assert_int_equal(cmos_read(fx->dev, REG_A), 0x26);
}

static void test_state_roundtrip(void **st)
{
	struct fixture *fx = *st;
	struct fake_host fake2;
	struct device *dev2;
	struct state_io save, load;

	fake_host_init(&fake2, FAKE_NO_GSI);
	dev2 = rtc_create(&fake2.host);
	assert_non_null(dev2);
	set_2031(fx->dev);
	cmos_write(fx->dev, 0x50, 0x77);
	cmos_write(fx->dev, REG_B, B_24H | B_DM);
	state_io_saver(&save);
	assert_int_equal(fx->dev->ops->state(fx->dev, &save), 0);
	state_io_loader(&load, save.buf, save.len);
	assert_int_equal(dev2->ops->state(dev2, &load), 0);
	assert_int_equal(state_io_finish(&load), 0);
	/* The guest's clock offset travels with the snapshot. */
	assert_near(rtc_time(dev2), t2031);
	assert_int_equal(cmos_read(dev2, 0x50), 0x77);
	assert_int_equal(cmos_read(dev2, REG_B), B_24H | B_DM);
	state_io_free(&save);
	dev2->ops->destroy(dev2);
}

/*
 * A snapshot whose clock offset puts the guest's time far before year 0
 * (within the range a load accepts): the time registers still read as
 * BCD, never as a negative year's digits (found by fuzz_legacy, where
 * encoding them shifted a negative value).
 */
static void test_state_far_past(void **st)
{
	struct fixture *fx = *st;
	struct state_io save, load;
	static const uint8_t time_regs[] = {0, 2, 4, 6, 7, 8, 9, 0x32}; /* 0x32: century */
	int64_t offset = -(INT64_C(1) << 39);				/* 17,000 years back */
	uint8_t v;

	state_io_saver(&save);
	assert_int_equal(fx->dev->ops->state(fx->dev, &save), 0);
	memcpy(save.buf + save.len - 8, &offset, 8); /* the offset is the last field */
	state_io_loader(&load, save.buf, save.len);
	assert_int_equal(fx->dev->ops->state(fx->dev, &load), 0);
	state_io_free(&save);
	for (unsigned int i = 0; i < sizeof(time_regs); i++) {
		v = cmos_read(fx->dev, time_regs[i]);
		assert_true((v & 0x0f) <= 9 && (v >> 4) <= 9);
	}
}

static void test_fuzz(void **st)
{
	struct fixture *fx = *st;
	struct state_io io;
	unsigned int seed = 146818;
	uint8_t data[8];
	int i, j, op;

	for (i = 0; i < 100000; i++) {
		uint64_t off = (uint64_t)(rand_r(&seed) % 4);
		uint32_t len = 1 + (uint32_t)(rand_r(&seed) % 8);

		if (rand_r(&seed) % 100 == 0)
			off = ((uint64_t)rand_r(&seed) << 33) ^ (uint64_t)rand_r(&seed);
		for (j = 0; j < 8; j++)
			data[j] = (uint8_t)rand_r(&seed);
		/* Bias the index towards the clock and control registers. */
		if (off == INDEX && rand_r(&seed) % 2)
			data[0] = (uint8_t)(rand_r(&seed) % 0x0e);
		op = rand_r(&seed) % 1000;
		if (op < 500) {
			fx->dev->ops->write(fx->dev, off, data, len);
		} else if (op < 990) {
			fx->dev->ops->read(fx->dev, off, data, len);
		} else {
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
	    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bcd_host_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_binary_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_12_hour_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_time_binary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_time_survives, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cmos_ram, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_far_past, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
