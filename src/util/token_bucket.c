/* Token buckets: exact refill and wake-up arithmetic in 128-bit integers. */
#include "util/token_bucket.h"

#include <stddef.h>

#define NS_PER_MS 1000000ULL
/* Later than this after its due time, a refused request was idle, not woken late. */
#define TB_LATE_MAX_NS (1000 * NS_PER_MS)

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

static int64_t tb_have(const struct token_bucket *b)
{
	return b->budget + (int64_t)b->burst;
}

/*
 * A request refused earlier was due at due_ns and comes back late (the
 * device thread's timer woke it late): serve it as of due_ns, when the
 * bucket held its cost, and refill the time since after it is taken. A
 * small bucket would otherwise fill while the thread oversleeps and lose
 * what overflows, every time (13 % of the rate at 10 ms refill with 64 KiB
 * requests and 20 ms wake-ups). Up to a second late only: a device that
 * comes back later was idle and gets what an idle bucket holds. True when
 * the request may go.
 */
static bool tb_due(struct token_bucket *b, uint64_t need, uint64_t now)
{
	uint64_t due = b->due_ns;

	if (!due || due > now)
		return false;
	b->due_ns = 0;
	if (now - due > TB_LATE_MAX_NS)
		return false;
	tb_refill(b, due);
	return tb_have(b) >= (int64_t)need;
}

uint64_t tb_wait(struct token_bucket *b, uint64_t n, uint64_t now)
{
	uint64_t need = n < b->cfg.size ? n : b->cfg.size, refill_ns;
	u128 deficit, t;

	if (!b->cfg.size || tb_due(b, need, now))
		return 0;
	tb_refill(b, now);
	if (tb_have(b) >= (int64_t)need)
		return 0;
	/* The first time frac + t * size reaches deficit * refill_ns. */
	refill_ns = b->cfg.refill_ms * NS_PER_MS;
	deficit = (u128)(uint64_t)((int64_t)need - tb_have(b)) * refill_ns - b->frac;
	t = (deficit + b->cfg.size - 1) / b->cfg.size;
	if (t > INT64_MAX)
		return INT64_MAX;
	if (now + (uint64_t)t > now)
		b->due_ns = now + (uint64_t)t;
	return (uint64_t)t;
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
