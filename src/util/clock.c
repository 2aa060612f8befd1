/* The monotonic clock (clock.h). */
#include "util/clock.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts_to_ns(&ts);
}

uint64_t now_ms(void)
{
	return now_ns() / 1000000ULL;
}

/* Written once before threads start (clock_mark_start); read-only afterwards. */
static uint64_t process_start_ns;

void clock_mark_start(uint64_t ns)
{
	process_start_ns = ns ? ns : now_ns();
}

uint64_t clock_start_ns(void)
{
	if (!process_start_ns)
		process_start_ns = now_ns();
	return process_start_ns;
}
