/*
 * A test's stopping point. In banyan-test-hooks (the test build the suite
 * runs, never installed), BANYAN_TEST_HOLD=NAME makes the thread that
 * reaches test_hold(NAME) log "test hook: holding at NAME" and stop there
 * for good, so a test can kill the process at an exact step instead of
 * racing it. In banyan it does nothing.
 */
#ifndef BANYAN_UTIL_TEST_HOLD_H
#define BANYAN_UTIL_TEST_HOLD_H

void test_hold(const char *point);

#endif
