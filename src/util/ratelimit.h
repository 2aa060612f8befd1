/*
 * Rate limits for log lines a guest can cause. A source is one message site
 * (a place in the code) speaking for one owner (a device, a transport): it
 * may write @burst lines per @interval; further lines in that interval are
 * counted, not written. When a source's interval has ended with lines held
 * back, one report says how many (when the source speaks again, when the
 * log's thread sweeps, or at exit). All sources together may also write at
 * most @global_burst lines per interval, so many quiet-looking sources
 * cannot flood either.
 *
 * Pure bookkeeping: the caller passes the time (an injectable clock) and
 * holds whatever lock protects the table.
 */
#ifndef BANYAN_UTIL_RATELIMIT_H
#define BANYAN_UTIL_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RL_SOURCES  128 /* sources tracked at once; more share one overflow source */
#define RL_LAST_LEN 200 /* the last held-back line, quoted in the report */

struct rl_source {
	const void *site;  /* a static object at the call site; NULL: free */
	const void *owner; /* who speaks there (a device), or NULL */
	uint64_t start_ns; /* when this source's interval began */
	uint32_t passed;   /* lines written in the interval */
	uint64_t held;	   /* lines held back in the interval */
	char last[RL_LAST_LEN];
};

/* What to report for a source whose interval ended with lines held back. */
struct rl_report {
	uint64_t held;
	uint64_t span_ns; /* from the interval's start to the report */
	char last[RL_LAST_LEN];
};

struct ratelimit {
	uint64_t interval_ns;
	uint32_t burst;
	uint32_t global_burst;
	uint64_t global_start_ns;
	uint32_t global_passed;
	uint64_t held_total; /* every line ever held back */
	struct rl_source src[RL_SOURCES];
	struct rl_source overflow;
};

/* ratelimit_init - an empty table: @burst lines per source and @global_burst in all, per
 * @interval_ns. */
void ratelimit_init(struct ratelimit *rl, uint64_t interval_ns, uint32_t burst,
		    uint32_t global_burst);

/*
 * ratelimit_allow - may the line @text from (@site, @owner) be written at
 * @now_ns? When the source's previous interval ended with lines held back,
 * *@rep is filled (rep->held > 0) and the caller writes that report first.
 */
bool ratelimit_allow(struct ratelimit *rl, const void *site, const void *owner, uint64_t now_ns,
		     const char *text, struct rl_report *rep);

/*
 * ratelimit_sweep - report every source whose interval has ended with lines
 * held back (all of them when @all: at exit), calling @fn for each. Returns
 * how many reports were made.
 */
size_t ratelimit_sweep(struct ratelimit *rl, uint64_t now_ns, bool all,
		       void (*fn)(void *arg, const struct rl_report *rep), void *arg);

#endif
