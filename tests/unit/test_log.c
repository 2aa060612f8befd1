/* The rate limit of guest-triggered log lines, with an injected clock, and the log behind it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "util/log.h"
#include "util/ratelimit.h"

#define SEC 1000000000ULL

static const char site_a, site_b; /* two message sites */
static const char dev1, dev2;	  /* two owners */

static struct ratelimit rl;

static int allow_at(const void *site, const void *owner, uint64_t t, struct rl_report *rep)
{
	return ratelimit_allow(&rl, site, owner, t, "line", rep);
}

/* @burst lines per interval, then nothing until the interval ends; then one report. */
static void test_burst_then_report(void **st)
{
	struct rl_report rep;
	int i, passed = 0;

	(void)st;
	ratelimit_init(&rl, SEC, 3, 100);
	for (i = 0; i < 10; i++) {
		passed += ratelimit_allow(&rl, &site_a, &dev1, (uint64_t)i, "held line", &rep);
		assert_int_equal(rep.held, 0);
	}
	assert_int_equal(passed, 3);
	assert_false(allow_at(&site_a, &dev1, SEC / 2, &rep));
	assert_int_equal(rep.held, 0);
	/* The interval is over: the next line passes, preceded by the report of 8. */
	assert_true(ratelimit_allow(&rl, &site_a, &dev1, SEC, "new line", &rep));
	assert_int_equal(rep.held, 8);
	assert_int_equal(rep.span_ns, SEC);
	assert_string_equal(rep.last, "line");
	assert_int_equal(rl.held_total, 8);
	/* Reported once only. */
	assert_true(allow_at(&site_a, &dev1, SEC + 1, &rep));
	assert_int_equal(rep.held, 0);
}

/* Each (site, owner) has its own budget. */
static void test_sources_independent(void **st)
{
	struct rl_report rep;
	int i;

	(void)st;
	ratelimit_init(&rl, SEC, 2, 100);
	for (i = 0; i < 5; i++)
		allow_at(&site_a, &dev1, 0, &rep);
	assert_false(allow_at(&site_a, &dev1, 0, &rep));
	assert_true(allow_at(&site_a, &dev2, 0, &rep));
	assert_true(allow_at(&site_b, &dev1, 0, &rep));
	assert_true(allow_at(&site_b, NULL, 0, &rep));
}

/* All sources together stay under the global budget; what it holds back is still reported. */
static void test_global_budget(void **st)
{
	struct rl_report rep;
	int passed = 0, i;

	(void)st;
	ratelimit_init(&rl, SEC, 3, 5);
	for (i = 0; i < 4; i++) {
		passed += allow_at(&site_a, &dev1, 0, &rep);
		passed += allow_at(&site_a, &dev2, 0, &rep);
		passed += allow_at(&site_b, &dev1, 0, &rep);
	}
	assert_int_equal(passed, 5);
	assert_int_equal(rl.held_total, 7);
	assert_true(allow_at(&site_b, &dev1, SEC, &rep));
	assert_true(rep.held > 0);
}

static size_t reports;
static uint64_t reported;

static void count_report(void *arg, const struct rl_report *rep)
{
	(void)arg;
	reports++;
	reported += rep->held;
}

/* The sweep reports intervals that ended (all of them at exit), once. */
static void test_sweep(void **st)
{
	int i;
	struct rl_report rep;

	(void)st;
	ratelimit_init(&rl, SEC, 1, 100);
	for (i = 0; i < 5; i++) {
		allow_at(&site_a, &dev1, 0, &rep);
		allow_at(&site_a, &dev2, SEC / 2, &rep);
	}
	reports = reported = 0;
	assert_int_equal(ratelimit_sweep(&rl, SEC / 2, false, count_report, NULL), 0);
	assert_int_equal(ratelimit_sweep(&rl, SEC, false, count_report, NULL), 1);
	assert_int_equal(reported, 4);
	assert_int_equal(ratelimit_sweep(&rl, SEC, false, count_report, NULL), 0);
	assert_int_equal(ratelimit_sweep(&rl, SEC, true, count_report, NULL), 1);
	assert_int_equal(reported, 8);
	assert_int_equal(ratelimit_sweep(&rl, 10 * SEC, true, count_report, NULL), 0);
}

/* More sources than slots share one overflow budget: the total stays bounded. */
static void test_many_sources_bounded(void **st)
{
	static char owners[1000];
	struct rl_report rep;
	int i, j, passed = 0;

	(void)st;
	ratelimit_init(&rl, SEC, 1, 100000);
	for (i = 0; i < 1000; i++)
		for (j = 0; j < 5; j++)
			passed += allow_at(&site_a, &owners[i], 0, &rep);
	assert_true(passed <= RL_SOURCES + 1);
	assert_int_equal(rl.held_total, 5000 - (uint64_t)passed);
}

/* --- the log itself, writing to a file, on an injected clock --- */

static uint64_t fake_ns;

static uint64_t fake_clock(void)
{
	return fake_ns;
}

static void speak(const void *owner, int i)
{
	log_guest_warn(owner, "dev%p: queue 0: broken %d; device needs reset", owner, i);
}

static size_t count_lines(const char *path, const char *has, const char *lacks)
{
	char line[2048];
	size_t n = 0;
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, has) && (!lacks || !strstr(line, lacks)))
			n++;
	fclose(f);
	return n;
}

static void test_log_flood(void **st)
{
	char path[] = "/tmp/banyan-test-log-XXXXXX";
	int fd = mkstemp(path), i;

	(void)st;
	assert_true(fd >= 0);
	close(fd);
	log_set_clock(fake_clock);
	assert_int_equal(log_open_file(path), 0);
	fake_ns = 100 * SEC;
	for (i = 0; i < 1000; i++)
		speak(&dev1, i);
	/* Another device at the same site has its own budget. */
	for (i = 0; i < 3; i++)
		speak(&dev2, i);
	/* Lines below the level neither pass nor count. */
	for (i = 0; i < 50; i++)
		log_guest_debug(&dev1, "quiet %d", i);
	assert_int_equal(log_suppressed_lines(), 1000 - LOG_GUEST_BURST);
	fake_ns += LOG_GUEST_INTERVAL_S * SEC;
	log_flush();
	assert_int_equal(count_lines(path, "broken", "suppressed"), LOG_GUEST_BURST + 3);
	assert_int_equal(count_lines(path, "990 similar lines suppressed", NULL), 1);
	assert_int_equal(count_lines(path, "broken 999", NULL), 1);
	assert_int_equal(count_lines(path, "quiet", NULL), 0);
	/* Reported once: a second flush adds nothing. */
	log_flush();
	assert_int_equal(count_lines(path, "suppressed", NULL), 1);
	log_set_clock(NULL);
	unlink(path);
}

/* --log-format json: one object per line, quotes and backslashes escaped, the thread named. */
static void test_json_format(void **st)
{
	char path[] = "/tmp/banyan-test-log-XXXXXX", line[1024] = "";
	int fd = mkstemp(path);
	FILE *f;

	(void)st;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(log_set_format("yaml"), -EINVAL);
	assert_int_equal(log_set_format("json"), 0);
	assert_int_equal(prctl(PR_SET_NAME, "log-tester"), 0);
	assert_int_equal(log_open_file(path), 0);
	log_warn("say \"hi\" \\ then\x01");
	log_flush();
	assert_int_equal(log_set_format("text"), 0);
	log_info("plain again");
	log_flush();
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_int_equal(line[0], '{');
	assert_non_null(
	    strstr(line, "\"level\":\"warn\",\"name\":\"banyan\",\"thread\":\"log-tester\","));
	assert_non_null(strstr(line, "\"msg\":\"say \\\"hi\\\" \\\\ then\\\\x01\"}\n"));
	assert_non_null(strstr(line, "{\"time\":\"20"));
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, "Z banyan info: plain again"));
	fclose(f);
	unlink(path);
}

/* The level names the CLI takes are the ones log lines print. */
static void test_level_names(void **st)
{
	(void)st;
	assert_int_equal(log_level_from_name("error"), LOG_ERROR);
	assert_int_equal(log_level_from_name("warn"), LOG_WARN);
	assert_int_equal(log_level_from_name("info"), LOG_INFO);
	assert_int_equal(log_level_from_name("debug"), LOG_DEBUG);
	assert_int_equal(log_level_from_name("Debug"), -1);
	assert_int_equal(log_level_from_name(""), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_then_report),	 cmocka_unit_test(test_sources_independent),
	    cmocka_unit_test(test_global_budget),	 cmocka_unit_test(test_sweep),
	    cmocka_unit_test(test_many_sources_bounded), cmocka_unit_test(test_log_flood),
	    cmocka_unit_test(test_level_names),		 cmocka_unit_test(test_json_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
