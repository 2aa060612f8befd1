/*
 * Token buckets for rate limiters (Firecracker's model): a bucket holds
 * up to @size tokens, refills @size tokens every @refill_ms (continuously,
 * counted exactly to the nanosecond), starts full, and has a one-time
 * burst of extra tokens spent before the bucket's own. A rate limiter is
 * two buckets: bandwidth (bytes) and operations (requests); a request
 * goes through when both have what it costs.
 *
 * Requests larger than the bucket: a request of n tokens needs
 * min(n, size) tokens in the bucket to go through, and then takes all n,
 * leaving the bucket in debt (a negative budget) that refilling repays
 * before anything else goes through. So a request bigger than the bucket
 * still makes progress, and the rate holds exactly over time; Firecracker
 * empties the bucket and blocks for the excess instead.
 *
 * Pure arithmetic on a clock the caller passes (nanoseconds, any
 * monotonic origin): nothing here reads the time, sleeps or locks, so
 * tests give it the times they want. The caller serializes access.
 */
#ifndef BANYAN_UTIL_TOKEN_BUCKET_H
#define BANYAN_UTIL_TOKEN_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Bounds the configuration is checked against: sizes and bursts fit in a
 * signed 64-bit budget with room for one request's debt, refill times are
 * at most a day.
 */
#define TB_SIZE_MAX	 (1ULL << 60)
#define TB_REFILL_MS_MAX (24ULL * 3600 * 1000)

/* One bucket's configuration; size 0: no limit. */
struct tb_config {
	uint64_t size;		 /* tokens, refilled every refill_ms */
	uint64_t one_time_burst; /* extra tokens, spent first, never refilled */
	uint64_t refill_ms;	 /* 1..TB_REFILL_MS_MAX when size is set */
};

/* A rate limiter's configuration: a bandwidth bucket (bytes) and an operations one. */
struct rl_config {
	struct tb_config bw;
	struct tb_config ops;
};

struct token_bucket {
	struct tb_config cfg;
	int64_t budget;	  /* tokens in the bucket; negative: a debt */
	uint64_t burst;	  /* one-time burst left */
	uint64_t frac;	  /* fraction of a token accrued, in token*ns/refill_ns units */
	uint64_t last_ns; /* the time the budget was last brought up to date */
	uint64_t due_ns;  /* when the last refused request may go (0: none waits) */
};

struct rate_limit {
	struct token_bucket bw;
	struct token_bucket ops;
};

/*
 * tb_config_check - @c is valid: size 0 (no limit, then burst and refill
 * must be 0 too, or a refill time alone), or size and burst at most
 * TB_SIZE_MAX and refill_ms 1..TB_REFILL_MS_MAX. Returns NULL or a short
 * reason ("refill_time must be ...").
 */
const char *tb_config_check(const struct tb_config *c);

/* rl_config_enabled - @c limits anything. */
bool rl_config_enabled(const struct rl_config *c);

/* tb_init - a full bucket configured as @c (checked), at time @now. */
void tb_init(struct token_bucket *b, const struct tb_config *c, uint64_t now);

/*
 * tb_wait - nanoseconds from @now until @n tokens can be taken (0: now),
 * after refilling up to @now. Exact: at @now plus the result, tb_take
 * succeeds. Always 0 for a bucket without a limit. A refused request
 * that comes back after its due time is served as of that time (what
 * refilled since is added after it is taken, not lost to a full bucket),
 * so a late wake-up (up to a second) does not lower the rate.
 */
uint64_t tb_wait(struct token_bucket *b, uint64_t n, uint64_t now);

/* tb_take - take @n tokens (burst first); call only when tb_wait said 0. */
void tb_take(struct token_bucket *b, uint64_t n);

/* rl_init - both buckets of @rl from @c, full, at @now. */
void rl_init(struct rate_limit *rl, const struct rl_config *c, uint64_t now);

/*
 * rl_consume - a request of @bytes bytes (and one operation) at @now:
 * true when both buckets allow it, and it is taken from both; false and
 * nothing taken otherwise, with *@wait_ns the time until both will (the
 * longer of the two waits, > 0).
 */
bool rl_consume(struct rate_limit *rl, uint64_t bytes, uint64_t now, uint64_t *wait_ns);

#endif
