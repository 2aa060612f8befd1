/*
 * The monotonic clock, in the units Banyan counts in. CLOCK_MONOTONIC
 * never jumps with the wall clock, so deadlines, rate limits and
 * durations measured with it stay right across a settimeofday.
 */
#ifndef BANYAN_UTIL_CLOCK_H
#define BANYAN_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* ts_to_ns - @ts as nanoseconds. */
static inline uint64_t ts_to_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ULL + (uint64_t)ts->tv_nsec;
}

/* now_ns - CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);

/* now_ms - CLOCK_MONOTONIC in milliseconds (rounded down). */
uint64_t now_ms(void);

/*
 * clock_mark_start - record now as the process's start (main calls it
 * first thing), or @ns when a launcher measured an earlier one on
 * CLOCK_MONOTONIC (the jailer's --start-time-us). Not thread-safe: call
 * before any thread starts.
 */
void clock_mark_start(uint64_t ns);

/* clock_start_ns - the start clock_mark_start recorded; now_ns() at the first call if none. */
uint64_t clock_start_ns(void);

#endif
