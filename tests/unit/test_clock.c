/* The monotonic clock helpers: conversion, units, and that time moves forward. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <time.h>

#include "util/clock.h"

static void ts_to_ns_converts(void **state)
{
	struct timespec a = {.tv_sec = 1, .tv_nsec = 5};
	/* Past 2^32 seconds: the multiplication is done in 64 bits. */
	struct timespec b = {.tv_sec = 5000000000LL, .tv_nsec = 999999999};

	(void)state;
	assert_true(ts_to_ns(&a) == 1000000005ULL);
	assert_true(ts_to_ns(&b) == 5000000000999999999ULL);
}

static void now_moves_forward(void **state)
{
	struct timespec nap = {.tv_sec = 0, .tv_nsec = 2000000};
	uint64_t t0 = now_ns(), t1;

	(void)state;
	nanosleep(&nap, NULL);
	t1 = now_ns();
	assert_true(t1 - t0 >= 2000000ULL);
}

static void now_ms_is_now_ns_in_ms(void **state)
{
	uint64_t before = now_ns() / 1000000ULL;
	uint64_t ms = now_ms();
	uint64_t after = now_ns() / 1000000ULL;

	(void)state;
	assert_true(before <= ms && ms <= after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ts_to_ns_converts),
	    cmocka_unit_test(now_moves_forward),
	    cmocka_unit_test(now_ms_is_now_ns_in_ms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
