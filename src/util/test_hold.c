#include "util/test_hold.h"

#ifdef BANYAN_TEST_HOOKS
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

void test_hold(const char *point)
{
	const char *want = getenv("BANYAN_TEST_HOLD");

	if (!want || strcmp(want, point) != 0)
		return;
	log_info("test hook: holding at %s", point);
	for (;;)
		sleep(60); /* clock_nanosleep: every role's filter allows it */
}
#else
void test_hold(const char *point)
{
	(void)point;
}
#endif
