/*
 * Token buckets (util/token_bucket.h) on an injected clock: exact wake-up
 * times, the one-time burst, requests larger than the bucket, both
 * buckets of a limiter together, the configuration's bounds, and the rate
 * a backlogged stream gets at refill times of 10, 100 and 1000 ms.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/token_bucket.h"

#define MS 1000000ULL
#define T0 (1000ULL * MS) /* any origin: the clock is the test's */

static struct token_bucket bucket(uint64_t size, uint64_t burst, uint64_t refill_ms)
{
	struct tb_config c = {.size = size, .one_time_burst = burst, .refill_ms = refill_ms};
	struct token_bucket b;

	assert_null(tb_config_check(&c));
	tb_init(&b, &c, T0);
	return b;
}

static void starts_full_then_waits_exactly(void **state)
{
	struct token_bucket b = bucket(1000, 0, 100);

	(void)state;
	assert_int_equal(tb_wait(&b, 1000, T0), 0);
	tb_take(&b, 1000);
	/* 1000 tokens per 100 ms: one token every 100 us, 500 in 50 ms. */
	assert_int_equal(tb_wait(&b, 1, T0), 100000);
	assert_int_equal(tb_wait(&b, 500, T0), 50 * MS);
	/* One nanosecond early, 499 tokens and most of the 500th: 1 ns to go. */
	assert_int_equal(tb_wait(&b, 500, T0 + 50 * MS - 1), 1);
	assert_int_equal(tb_wait(&b, 500, T0 + 50 * MS), 0);
	tb_take(&b, 500);
	assert_int_equal(tb_wait(&b, 1, T0 + 50 * MS), 100000);
}

/* Fractions of a token are kept across many small refills, never lost to rounding. */
static void fractions_accumulate(void **state)
{
	struct token_bucket b = bucket(3, 0, 10); /* a token every 3.333 ms */
	uint64_t t = T0;

	(void)state;
	tb_take(&b, 3);
	for (int i = 0; i < 10; i++) /* ten looks, 1 ms apart: 3 tokens in 10 ms */
		assert_true(tb_wait(&b, 3, t += MS) > 0 || i == 9);
	assert_int_equal(tb_wait(&b, 3, T0 + 10 * MS), 0);
	assert_int_equal(tb_wait(&b, 4, T0 + 20 * MS), 0); /* capped: min(4, size) */
}

static void never_beyond_size(void **state)
{
	struct token_bucket b = bucket(1000, 0, 100);

	(void)state;
	/* A long idle time fills the bucket, no more. */
	assert_int_equal(tb_wait(&b, 1000, T0 + 3600000 * MS), 0);
	tb_take(&b, 1000);
	assert_int_equal(tb_wait(&b, 1, T0 + 3600000 * MS), 100000);
}

static void burst_is_spent_first_and_once(void **state)
{
	struct token_bucket b = bucket(1000, 5000, 100);

	(void)state;
	/* 6000 at once: the burst, then the bucket. */
	for (int i = 0; i < 6; i++) {
		assert_int_equal(tb_wait(&b, 1000, T0), 0);
		tb_take(&b, 1000);
	}
	assert_int_equal(tb_wait(&b, 1000, T0), 100 * MS);
	/* The burst never comes back: a day later the bucket holds its size only. */
	assert_int_equal(tb_wait(&b, 1000, T0 + 86400000 * MS), 0);
	tb_take(&b, 1000);
	assert_int_equal(tb_wait(&b, 1, T0 + 86400000 * MS), 100000);
}

/* A request larger than the bucket needs a full bucket, goes, and leaves a debt. */
static void oversize_request_makes_progress(void **state)
{
	struct token_bucket b = bucket(1000, 0, 100);

	(void)state;
	tb_take(&b, 1);
	assert_int_equal(tb_wait(&b, 2500, T0), 100000); /* waits for a full bucket */
	assert_int_equal(tb_wait(&b, 2500, T0 + 100000), 0);
	tb_take(&b, 2500);
	/* 1500 in debt: the next token after 1501 refills. */
	assert_int_equal(tb_wait(&b, 1, T0 + 100000), 1501 * 100000ULL);
	/* The next 2500 waits for the debt and a full bucket: 250 ms after the first. */
	assert_int_equal(tb_wait(&b, 2500, T0 + 100000), 250 * MS);
}

static void no_limit_never_waits(void **state)
{
	struct rl_config none = {0};
	struct rate_limit rl;
	uint64_t wait = 7;

	(void)state;
	rl_init(&rl, &none, T0);
	for (int i = 0; i < 1000; i++)
		assert_true(rl_consume(&rl, 1ULL << 40, T0, &wait));
	assert_int_equal(wait, 0);
	assert_false(rl_config_enabled(&none));
}

/* Both buckets must allow a request; a refused one takes from neither. */
static void limiter_needs_both_buckets(void **state)
{
	struct rl_config c = {.bw = {.size = 1000, .refill_ms = 100},
			      .ops = {.size = 2, .refill_ms = 1000}};
	struct rate_limit rl;
	uint64_t wait;

	(void)state;
	rl_init(&rl, &c, T0);
	assert_true(rl_consume(&rl, 400, T0, &wait));
	assert_true(rl_consume(&rl, 400, T0, &wait));
	/* Bytes are there (200), operations are not: 500 ms for one. */
	assert_false(rl_consume(&rl, 100, T0, &wait));
	assert_int_equal(wait, 500 * MS);
	/* Now bytes are short (200 of 1000) and operations too: the longer wait. */
	assert_false(rl_consume(&rl, 1000, T0, &wait));
	assert_int_equal(wait, 500 * MS);
	assert_false(rl_consume(&rl, 1000, T0 + 80 * MS, &wait));
	assert_int_equal(wait, 420 * MS);
	assert_true(rl_consume(&rl, 1000, T0 + 500 * MS, &wait));
	assert_int_equal(rl.bw.budget, 0);
	assert_int_equal(rl.ops.budget, 0);
}

static void config_bounds(void **state)
{
	struct tb_config ok = {
	    .size = TB_SIZE_MAX, .one_time_burst = TB_SIZE_MAX, .refill_ms = TB_REFILL_MS_MAX};
	struct tb_config no_refill = {.size = 1000};
	struct tb_config burst_only = {.one_time_burst = 10, .refill_ms = 100};
	struct tb_config huge = {.size = TB_SIZE_MAX + 1, .refill_ms = 100};
	struct tb_config long_refill = {.size = 1, .refill_ms = TB_REFILL_MS_MAX + 1};
	struct tb_config refill_only = {.refill_ms = 100};

	(void)state;
	assert_null(tb_config_check(&ok));
	assert_null(tb_config_check(&refill_only)); /* Firecracker accepts it: no limit */
	assert_non_null(tb_config_check(&no_refill));
	assert_non_null(tb_config_check(&burst_only));
	assert_non_null(tb_config_check(&huge));
	assert_non_null(tb_config_check(&long_refill));
}

/* The largest values do not overflow: waits stay exact. */
static void no_overflow_at_the_bounds(void **state)
{
	struct token_bucket b = bucket(TB_SIZE_MAX, 0, TB_REFILL_MS_MAX);
	uint64_t refill_ns = TB_REFILL_MS_MAX * MS;

	(void)state;
	tb_take(&b, TB_SIZE_MAX);
	assert_int_equal(tb_wait(&b, TB_SIZE_MAX, T0), refill_ns);
	assert_int_equal(tb_wait(&b, TB_SIZE_MAX, T0 + refill_ns), 0);
}

/*
 * A backlogged stream of @req-byte requests, each sent the moment the
 * bucket allows it plus @late_ns (a timer's wake-up latency), for @secs
 * simulated seconds: the bytes that went through per second.
 */
static double stream_rate(uint64_t rate, uint64_t refill_ms, uint64_t req, uint64_t late_ns,
			  uint64_t secs)
{
	struct rl_config c = {.bw = {.size = rate * refill_ms / 1000, .refill_ms = refill_ms}};
	uint64_t t = T0, end = T0 + secs * 1000 * MS, sent = 0, wait;
	struct rate_limit rl;

	rl_init(&rl, &c, T0);
	tb_take(&rl.bw, c.bw.size); /* start empty: measure the rate, not the first bucket */
	while (t < end) {
		if (rl_consume(&rl, req, t, &wait))
			sent += req;
		else
			t += wait + late_ns;
	}
	return (double)sent / (double)secs;
}

static void rate_holds_at_10_100_1000_ms(void **state)
{
	const uint64_t rate = 10 << 20; /* 10 MiB/s */
	const uint64_t refills[] = {10, 100, 1000};
	/* Request sizes: small, about the 10 ms bucket, and larger than it (a 1 MiB write). */
	const uint64_t reqs[] = {4096, 65536, 1 << 20};

	(void)state;
	for (unsigned int i = 0; i < 3; i++)
		for (unsigned int j = 0; j < 3; j++) {
			double exact = stream_rate(rate, refills[i], reqs[j], 0, 20);
			/* A timer 100 us late, every time. */
			double late = stream_rate(rate, refills[i], reqs[j], 100000, 20);

			print_message("# refill %llu ms, %llu-byte requests: %.4f, late %.4f\n",
				      (unsigned long long)refills[i], (unsigned long long)reqs[j],
				      exact / rate, late / rate);
			assert_true(exact >= rate * 0.99 && exact <= rate * 1.01);
			assert_true(late >= rate * 0.95 && late <= rate * 1.01);
		}
}

/*
 * A device thread woken late (tens of ms in a loaded or emulated host)
 * must not lose the tokens that refilled meanwhile: at 500 KiB/s with
 * 64 KiB disk requests and 60000-byte frames, the 10 and 100 ms buckets
 * are smaller than a request, and every wake-up 20 ms late cost 13 % of
 * the rate at 10 ms when the bucket overflowed while the thread slept.
 */
static void late_wakeups_keep_the_rate(void **state)
{
	const uint64_t rate = 512000;
	const uint64_t refills[] = {10, 100, 1000};
	const uint64_t reqs[] = {60000, 65536};

	(void)state;
	for (unsigned int i = 0; i < 3; i++)
		for (unsigned int j = 0; j < 2; j++) {
			double late = stream_rate(rate, refills[i], reqs[j], 20 * MS, 30);

			print_message("# refill %llu ms, %llu-byte requests 20 ms late: %.4f\n",
				      (unsigned long long)refills[i], (unsigned long long)reqs[j],
				      late / rate);
			assert_true(late >= rate * 0.99 && late <= rate * 1.01);
		}
}

/* A refused request served late counts as served when it was due, once only. */
static void due_time_is_used_once(void **state)
{
	struct tb_config c = {.size = 1000, .refill_ms = 10};
	struct token_bucket b;

	(void)state;
	tb_init(&b, &c, T0);
	tb_take(&b, 1000);
	assert_int_equal(tb_wait(&b, 1000, T0), 10 * MS);
	/* Back 50 ms late: it goes, and the 40 ms since refill after it (full again). */
	assert_int_equal(tb_wait(&b, 1000, T0 + 60 * MS), 0);
	tb_take(&b, 1000);
	assert_int_equal(tb_wait(&b, 1000, T0 + 60 * MS), 0);
	tb_take(&b, 1000);
	/* Nothing more until the bucket refilled again: the due time is gone. */
	assert_int_equal(tb_wait(&b, 1000, T0 + 60 * MS), 10 * MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(starts_full_then_waits_exactly),
	    cmocka_unit_test(fractions_accumulate),
	    cmocka_unit_test(never_beyond_size),
	    cmocka_unit_test(burst_is_spent_first_and_once),
	    cmocka_unit_test(oversize_request_makes_progress),
	    cmocka_unit_test(no_limit_never_waits),
	    cmocka_unit_test(limiter_needs_both_buckets),
	    cmocka_unit_test(config_bounds),
	    cmocka_unit_test(no_overflow_at_the_bounds),
	    cmocka_unit_test(rate_holds_at_10_100_1000_ms),
	    cmocka_unit_test(late_wakeups_keep_the_rate),
	    cmocka_unit_test(due_time_is_used_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
