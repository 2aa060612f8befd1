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
