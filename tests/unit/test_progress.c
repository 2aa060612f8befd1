/*
 * Progress bars (cli/progress.h): the line's width on narrow and wide
 * terminals, its percent, amounts, rate and ETA, what is dropped first
 * when it does not fit, and that nothing is written to a stream that is
 * not a terminal while a terminal gets the line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/progress.h"

#define GIB (1ull << 30)
#define MIB (1ull << 20)

static size_t render(char *buf, size_t size, struct progress_view v)
{
	return progress_render(buf, size, &v);
}

/* The bar's cells: what lies between '[' and ']'. */
static int cells(const char *line, int *filled)
{
	const char *a = strchr(line, '['), *b = strchr(line, ']');

	*filled = 0;
	if (!a || !b)
		return -1;
	for (const char *p = a + 1; p < b; p++)
		*filled += *p == '#';
	return (int)(b - a - 1);
}

static void test_bytes_line(void **state)
{
	char line[256];
	int filled;

	(void)state;
	/* 1 GiB of 2 in 4 s: 256 MiB/s, 4 s left */
	render(line, sizeof(line),
	       (struct progress_view){.label = "snapshot",
				      .done = GIB,
				      .total = 2 * GIB,
				      .bytes = true,
				      .elapsed_ns = 4000000000ull,
				      .cols = 120});
	assert_non_null(strstr(line, "snapshot ["));
	assert_non_null(strstr(line, " 50%"));
	assert_non_null(strstr(line, "1.0/2.0 GiB"));
	assert_non_null(strstr(line, "256.0 MiB/s"));
	assert_non_null(strstr(line, "ETA 0:04"));
	assert_int_equal(cells(line, &filled), PROGRESS_BAR_MAX);
	assert_int_equal(filled, PROGRESS_BAR_MAX / 2);
}

static void test_items_line(void **state)
{
	char line[256];
	int filled;

	(void)state;
	/* 3 of 10 clones in 1.5 s: 2/s, 3.5 s left (rounded) */
	render(line, sizeof(line),
	       (struct progress_view){.label = "clones",
				      .done = 3,
				      .total = 10,
				      .elapsed_ns = 1500000000ull,
				      .cols = 100});
	assert_non_null(strstr(line, " 30%"));
	assert_non_null(strstr(line, "3/10"));
	assert_non_null(strstr(line, "2.0/s"));
	assert_non_null(strstr(line, "ETA 0:04"));
	assert_null(strstr(line, "MiB"));
	assert_int_equal(cells(line, &filled), PROGRESS_BAR_MAX);
	assert_int_equal(filled, 9);
}

static void test_done_and_long_eta(void **state)
{
	char line[256];
	int filled;

	(void)state;
	render(line, sizeof(line),
	       (struct progress_view){.label = "x",
				      .done = 12 * MIB,
				      .total = 10 * MIB,
				      .bytes = true,
				      .elapsed_ns = 1000000000ull,
				      .cols = 80});
	assert_non_null(strstr(line, "100%"));
	assert_null(strstr(line, "ETA"));
	cells(line, &filled);
	assert_int_equal(filled, PROGRESS_BAR_MAX);
	/* 1 MiB of 10 GiB in 1 s: hours left */
	render(line, sizeof(line),
	       (struct progress_view){.label = "x",
				      .done = MIB,
				      .total = 10 * GIB,
				      .bytes = true,
				      .elapsed_ns = 1000000000ull,
				      .cols = 80});
	assert_non_null(strstr(line, "ETA 2h50m"));
	/* nothing done yet: no rate, no ETA */
	render(line, sizeof(line),
	       (struct progress_view){
		   .label = "x", .total = 10, .elapsed_ns = 1000000000ull, .cols = 80});
	assert_non_null(strstr(line, "  0%"));
	assert_null(strstr(line, "/s"));
	assert_null(strstr(line, "ETA"));
}

static void test_width(void **state)
{
	struct progress_view v = {.label = "precopy",
				  .done = 300 * MIB,
				  .total = GIB,
				  .bytes = true,
				  .elapsed_ns = 3000000000ull,
				  .extra = "round 2, 40 MiB dirty, ~12 ms"};
	char line[256];
	int filled;

	(void)state;
	for (unsigned int cols = 20; cols <= 200; cols++) {
		v.cols = cols;
		assert_true(render(line, sizeof(line), v) <= cols - 1);
		assert_int_equal(strlen(line), render(line, sizeof(line), v));
	}
	/* wide: the extra text and a full bar */
	v.cols = 200;
	render(line, sizeof(line), v);
	assert_non_null(strstr(line, "round 2, 40 MiB dirty"));
	assert_int_equal(cells(line, &filled), PROGRESS_BAR_MAX);
	/* 80 columns: the extra goes before the bar shrinks below its minimum */
	v.cols = 80;
	render(line, sizeof(line), v);
	assert_null(strstr(line, "round 2"));
	assert_true(cells(line, &filled) >= PROGRESS_BAR_MIN);
	assert_true(cells(line, &filled) <= PROGRESS_BAR_MAX);
	/* too narrow for a bar: the numbers stay */
	v.cols = 50;
	render(line, sizeof(line), v);
	assert_null(strchr(line, '['));
	assert_non_null(strstr(line, " 29%"));
	/* unknown total: no bar, no percent */
	v = (struct progress_view){.label = "y", .done = 5, .cols = 80};
	render(line, sizeof(line), v);
	assert_string_equal(line, "y  5");
}

/* A terminal: the pseudo-terminal's master reads what the bar drew on its slave. */
static FILE *open_pty(int *master)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY), s;

	assert_true(m >= 0);
	assert_int_equal(grantpt(m), 0);
	assert_int_equal(unlockpt(m), 0);
	s = open(ptsname(m), O_RDWR | O_NOCTTY);
	assert_true(s >= 0);
	*master = m;
	return fdopen(s, "w");
}

static void drive(FILE *f)
{
	struct progress p;

	progress_start(&p, f, "snapshot", 4 * MIB, true);
	progress_update(&p, NULL, MIB, 0, NULL);
	progress_update(&p, NULL, 4 * MIB, 0, NULL); /* the total: drawn at once */
	progress_end(&p);
	fflush(f);
}

static void test_quiet_without_tty(void **state)
{
	FILE *f = tmpfile();

	(void)state;
	assert_non_null(f);
	drive(f);
	assert_int_equal(ftell(f), 0);
	fclose(f);
}

static void test_draws_on_tty(void **state)
{
	char buf[4096] = "";
	ssize_t n, len = 0;
	int m;
	FILE *f = open_pty(&m);

	(void)state;
	drive(f);
	fcntl(m, F_SETFL, O_NONBLOCK);
	while ((n = read(m, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
		len += n;
	buf[len] = '\0';
	assert_non_null(strstr(buf, "\rsnapshot ["));
	assert_non_null(strstr(buf, " 25%"));
	assert_non_null(strstr(buf, "100%"));
	assert_non_null(strstr(buf, "4.0/4.0 MiB"));
	fclose(f);
	close(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bytes_line),	      cmocka_unit_test(test_items_line),
	    cmocka_unit_test(test_done_and_long_eta), cmocka_unit_test(test_width),
	    cmocka_unit_test(test_quiet_without_tty), cmocka_unit_test(test_draws_on_tty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
