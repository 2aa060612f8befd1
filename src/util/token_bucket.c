/* Token buckets: exact refill and wake-up arithmetic in 128-bit integers. */
#include "util/token_bucket.h"

#include <stddef.h>

#define NS_PER_MS 1000000ULL

typedef unsigned __int128 u128;

const char *tb_config_check(const struct tb_config *c)
{
	if (!c->size) {
		if (c->one_time_burst)
			return "one_time_burst needs a size";
		return c->refill_ms > TB_REFILL_MS_MAX ? "refill_time is too long" : NULL;
	}
	if (c->size > TB_SIZE_MAX || c->one_time_burst > TB_SIZE_MAX)
		return "size and one_time_burst must be at most 2^60";
	if (!c->refill_ms)
		return "refill_time must be at least 1 ms when size is set";
	if (c->refill_ms > TB_REFILL_MS_MAX)
		return "refill_time must be at most a day (86400000 ms)";
	return NULL;
}

bool rl_config_enabled(const struct rl_config *c)
{
	return c->bw.size || c->ops.size;
}

void tb_init(struct token_bucket *b, const struct tb_config *c, uint64_t now)
{
	*b = (struct token_bucket){.cfg = *c, .last_ns = now};
	b->budget = (int64_t)c->size;
	b->burst = c->one_time_burst;
}

/* Bring the budget up to @now: size tokens per refill time, the fraction kept. */
static void tb_refill(struct token_bucket *b, uint64_t now)
{
	uint64_t refill_ns = b->cfg.refill_ms * NS_PER_MS, room;
	u128 total, tokens;

	if (now <= b->last_ns)
		return;
	total = (u128)(now - b->last_ns) * b->cfg.size + b->frac;
	b->last_ns = now;
	tokens = total / refill_ns;
	room = (uint64_t)((int64_t)b->cfg.size - b->budget); /* > 0 after a debt */
	if (tokens >= room) {
		b->budget = (int64_t)b->cfg.size; /* full: what overflows is lost */
		b->frac = 0;
		return;
	}
	b->budget += (int64_t)tokens;
	b->frac = (uint64_t)(total % refill_ns);
}

uint64_t tb_wait(struct token_bucket *b, uint64_t n, uint64_t now)
{
	uint64_t need = n < b->cfg.size ? n : b->cfg.size, refill_ns;
	int64_t have;
	u128 deficit, t;

	if (!b->cfg.size)
		return 0;
	tb_refill(b, now);
	have = b->budget + (int64_t)b->burst;
	if (have >= (int64_t)need)
		return 0;
	/* The first time frac + t * size reaches deficit * refill_ns. */
	refill_ns = b->cfg.refill_ms * NS_PER_MS;
	deficit = (u128)(uint64_t)((int64_t)need - have) * refill_ns - b->frac;
	t = (deficit + b->cfg.size - 1) / b->cfg.size;
	return t > INT64_MAX ? INT64_MAX : (uint64_t)t;
}

void tb_take(struct token_bucket *b, uint64_t n)
{
	uint64_t from_burst = n < b->burst ? n : b->burst;

	if (!b->cfg.size)
		return;
	b->burst -= from_burst;
	n -= from_burst;
	/* A request larger than the bucket leaves a debt (bounded: n < 2^62 here). */
	b->budget -= n > (uint64_t)INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)n;
}

void rl_init(struct rate_limit *rl, const struct rl_config *c, uint64_t now)
{
	tb_init(&rl->bw, &c->bw, now);
	tb_init(&rl->ops, &c->ops, now);
}

bool rl_consume(struct rate_limit *rl, uint64_t bytes, uint64_t now, uint64_t *wait_ns)
{
	uint64_t w_bw = tb_wait(&rl->bw, bytes, now), w_ops = tb_wait(&rl->ops, 1, now);

	if (w_bw || w_ops) {
		*wait_ns = w_bw > w_ops ? w_bw : w_ops;
		return false;
	}
	tb_take(&rl->bw, bytes);
	tb_take(&rl->ops, 1);
	*wait_ns = 0;
	return true;
}
