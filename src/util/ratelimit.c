/* Per-source rate limits for guest-triggered log lines. */
#include "util/ratelimit.h"

#include <string.h>

void ratelimit_init(struct ratelimit *rl, uint64_t interval_ns, uint32_t burst,
		    uint32_t global_burst)
{
	memset(rl, 0, sizeof(*rl));
	rl->interval_ns = interval_ns;
	rl->burst = burst;
	rl->global_burst = global_burst;
}

static bool interval_over(const struct ratelimit *rl, uint64_t start, uint64_t now)
{
	return now - start >= rl->interval_ns;
}

/* A slot is reusable once its interval ended with nothing left to report. */
static bool slot_reusable(const struct ratelimit *rl, const struct rl_source *s, uint64_t now)
{
	return !s->site || (!s->held && interval_over(rl, s->start_ns, now));
}

static struct rl_source *source_find(struct ratelimit *rl, const void *site, const void *owner,
				     uint64_t now)
{
	struct rl_source *free_slot = NULL;
	size_t i;

	for (i = 0; i < RL_SOURCES; i++) {
		struct rl_source *s = &rl->src[i];

		if (s->site == site && s->owner == owner)
			return s;
		if (!free_slot && slot_reusable(rl, s, now))
			free_slot = s;
	}
	if (!free_slot)
		return &rl->overflow; /* more sources than slots: they share one limit */
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->site = site;
	free_slot->owner = owner;
	free_slot->start_ns = now;
	return free_slot;
}

/* Close @s's interval: fill @rep when it held lines back, and start a new one. */
static bool source_roll(struct rl_source *s, uint64_t now, struct rl_report *rep)
{
	bool report = s->held > 0;

	if (report) {
		rep->held = s->held;
		rep->span_ns = now - s->start_ns;
		memcpy(rep->last, s->last, sizeof(rep->last));
	}
	s->start_ns = now;
	s->passed = 0;
	s->held = 0;
	return report;
}

static bool global_allow(struct ratelimit *rl, uint64_t now)
{
	if (interval_over(rl, rl->global_start_ns, now)) {
		rl->global_start_ns = now;
		rl->global_passed = 0;
	}
	if (rl->global_passed >= rl->global_burst)
		return false;
	rl->global_passed++;
	return true;
}

bool ratelimit_allow(struct ratelimit *rl, const void *site, const void *owner, uint64_t now_ns,
		     const char *text, struct rl_report *rep)
{
	struct rl_source *s = source_find(rl, site, owner, now_ns);

	rep->held = 0;
	if (interval_over(rl, s->start_ns, now_ns))
		source_roll(s, now_ns, rep);
	if (s->passed < rl->burst && global_allow(rl, now_ns)) {
		s->passed++;
		return true;
	}
	s->held++;
	rl->held_total++;
	strncpy(s->last, text, sizeof(s->last) - 1);
	s->last[sizeof(s->last) - 1] = '\0';
	return false;
}

size_t ratelimit_sweep(struct ratelimit *rl, uint64_t now_ns, bool all,
		       void (*fn)(void *arg, const struct rl_report *rep), void *arg)
{
	struct rl_report rep;
	size_t i, n = 0;

	for (i = 0; i <= RL_SOURCES; i++) {
		struct rl_source *s = i < RL_SOURCES ? &rl->src[i] : &rl->overflow;

		if (!s->held || (!all && !interval_over(rl, s->start_ns, now_ns)))
			continue;
		source_roll(s, now_ns, &rep);
		fn(arg, &rep);
		n++;
	}
	return n;
}
