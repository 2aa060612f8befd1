/* The bounded output queue: never blocks its producers, drops and counts past its bound. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/writer.h"

#define PAGE 4096

struct fixture {
	int rd, wr; /* a pipe shrunk to one page: a reader that stops fills it at once */
};

static int setup(void **st)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	int p[2];

	if (!fx || pipe(p) || fcntl(p[1], F_SETPIPE_SZ, PAGE) < 0 ||
	    fcntl(p[0], F_SETFL, O_NONBLOCK) < 0)
		return -1;
	fx->rd = p[0];
	fx->wr = p[1];
	*st = fx;
	return 0;
}

static int teardown(void **st)
{
	struct fixture *fx = *st;

	if (fx->rd >= 0)
		close(fx->rd);
	close(fx->wr);
	free(fx);
	return 0;
}

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Read what the writer wrote until @want bytes came or 5 s passed. */
static size_t read_upto(int fd, uint8_t *buf, size_t want)
{
	uint64_t end = ms_now() + 5000;
	size_t got = 0;
	ssize_t n;

	while (got < want && ms_now() < end) {
		n = read(fd, buf + got, want - got);
		if (n > 0)
			got += (size_t)n;
		else
			usleep(1000);
	}
	return got;
}

/* Bytes arrive complete and in order, across the ring's wrap-around. */
static void test_order_across_wrap(void **st)
{
	struct fixture *fx = *st;
	enum { TOTAL = 200000 };
	static uint8_t out[TOTAL], in[TOTAL];
	struct writer *w;
	size_t sent = 0, got = 0, i;
	ssize_t n;

	for (i = 0; i < TOTAL; i++)
		out[i] = (uint8_t)(i * 7 + i / 251);
	assert_int_equal(writer_create(fx->wr, 1000, NULL, &w), 0);
	while (sent < TOTAL) {
		size_t chunk = 1 + (sent % 333);

		if (chunk > TOTAL - sent)
			chunk = TOTAL - sent;
		/* What does not fit is dropped: the next put resumes where the queue stopped. */
		sent += writer_put(w, out + sent, chunk);
		n = read(fx->rd, in + got, TOTAL - got);
		got += n > 0 ? (size_t)n : 0;
	}
	got += read_upto(fx->rd, in + got, TOTAL - got);
	assert_int_equal(got, TOTAL);
	assert_memory_equal(in, out, TOTAL);
	writer_destroy(w, 1000, 1000);
}

/*
 * A reader that stops reading: puts never block, the queue keeps at most
 * its bound, the rest is dropped and counted.
 */
static void test_stalled_reader_drops(void **st)
{
	struct fixture *fx = *st;
	static uint8_t buf[64 * 1024];
	struct writer *w;
	uint64_t t0 = ms_now();
	size_t queued = 0;
	int i;

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(writer_create(fx->wr, 16 * 1024, NULL, &w), 0);
	for (i = 0; i < 64; i++)
		queued += writer_put(w, buf, sizeof(buf));
	assert_true(ms_now() - t0 < 2000);
	/* The pipe holds a page, the queue 16 KiB: everything else was dropped. */
	assert_true(queued <= 16 * 1024 + PAGE);
	assert_int_equal(writer_dropped(w), 64 * sizeof(buf) - queued);
	assert_true(writer_queued(w) <= 16 * 1024);
	/* A whole put that does not fit is refused whole. */
	assert_false(writer_put_whole(w, buf, 16 * 1024 + 1));
	assert_int_equal(writer_dropped(w), 64 * sizeof(buf) - queued + 16 * 1024 + 1);
	writer_destroy(w, 50, 200);
}

/* A flush waits only as long as the reader makes progress, and never more than its bound. */
static void test_flush_bounded(void **st)
{
	struct fixture *fx = *st;
	static uint8_t buf[32 * 1024];
	struct writer *w;
	uint64_t t0;

	assert_int_equal(writer_create(fx->wr, sizeof(buf), NULL, &w), 0);
	writer_put(w, buf, sizeof(buf));
	t0 = ms_now();
	assert_int_equal(writer_flush(w, 100, 5000), -ETIMEDOUT);
	assert_true(ms_now() - t0 < 1000);
	t0 = ms_now();
	assert_int_equal(writer_flush(w, 5000, 200), -ETIMEDOUT);
	assert_true(ms_now() - t0 < 1000);
	/* The reader comes back: the flush completes. */
	while (writer_flush(w, 10, 10) != 0)
		read_upto(fx->rd, buf, sizeof(buf));
	assert_int_equal(writer_queued(w), 0);
	writer_destroy(w, 100, 100);
}

/* Destroying a writer blocked in write() returns at the bound; the thread cleans up later. */
static void test_destroy_while_blocked(void **st)
{
	struct fixture *fx = *st;
	static uint8_t buf[64 * 1024];
	struct writer *w;
	uint64_t t0;

	assert_int_equal(writer_create(fx->wr, sizeof(buf), NULL, &w), 0);
	writer_put(w, buf, sizeof(buf));
	t0 = ms_now();
	writer_destroy(w, 100, 300);
	assert_true(ms_now() - t0 < 1000);
	/* The reader goes away: the abandoned thread's write fails and it frees the writer. */
	close(fx->rd);
	fx->rd = -1;
	usleep(100 * 1000);
}

/* A reader that is gone (EPIPE): output is dropped from then on, nothing blocks. */
static void test_reader_gone(void **st)
{
	struct fixture *fx = *st;
	struct writer *w;
	int i;

	signal(SIGPIPE, SIG_IGN);
	close(fx->rd);
	fx->rd = -1;
	assert_int_equal(writer_create(fx->wr, 1024, NULL, &w), 0);
	writer_put(w, "a", 1);
	assert_int_equal(writer_flush(w, 1000, 1000), 0);
	for (i = 0; i < 100; i++)
		writer_put(w, "bb", 2);
	assert_int_equal(writer_dropped(w), 201);
	writer_destroy(w, 100, 100);
}

/* The fd is duplicated and its flags left alone: O_NONBLOCK is never set on it. */
static void test_fd_flags_untouched(void **st)
{
	struct fixture *fx = *st;
	struct writer *w;
	int flags = fcntl(fx->wr, F_GETFL);
	uint8_t c;

	assert_int_equal(writer_create(fx->wr, 1024, NULL, &w), 0);
	writer_put(w, "z", 1);
	assert_int_equal(writer_flush(w, 1000, 1000), 0);
	assert_int_equal(fcntl(fx->wr, F_GETFL), flags);
	/* The caller may close its fd: the writer keeps its own. */
	writer_destroy(w, 100, 100);
	assert_int_equal(read_upto(fx->rd, &c, 1), 1);
	assert_int_equal(c, 'z');
}

/*
 * A forked child starts with an empty queue and no thread (what the parent
 * queued is the parent's to write), and its first put starts a thread.
 */
static void test_fork_child_starts_empty(void **st)
{
	struct fixture *fx = *st;
	static uint8_t buf[8 * 1024];
	struct writer *w;
	pid_t pid;
	int status, i;

	assert_int_equal(writer_create(fx->wr, sizeof(buf), NULL, &w), 0);
	writer_put(w, buf, sizeof(buf)); /* more than the pipe holds: some stays queued */
	for (i = 0; i < 200 && writer_queued(w) > sizeof(buf) - PAGE; i++)
		usleep(10 * 1000); /* until the thread filled the pipe and blocked */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(5); /* a lock inherited held would hang here */
		if (writer_queued(w) != 0 || writer_put(w, "c", 1) != 1)
			_exit(1);
		writer_destroy(w, 50, 100); /* the child's own thread starts and stops */
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(writer_queued(w) > 0);
	writer_destroy(w, 50, 100);
}

/* The tick runs from the writer's thread while it is idle, and may queue bytes. */
static struct writer *tick_w;
static int ticks;

static void on_tick(void *arg)
{
	(void)arg;
	if (ticks++ == 0)
		writer_put(tick_w, "t", 1);
}

static void test_tick(void **st)
{
	struct fixture *fx = *st;
	uint8_t c = 0;

	assert_int_equal(writer_create(fx->wr, 1024, NULL, &tick_w), 0);
	writer_set_tick(tick_w, on_tick, NULL, 20);
	assert_int_equal(read_upto(fx->rd, &c, 1), 1);
	assert_int_equal(c, 't');
	writer_destroy(tick_w, 100, 100);
	assert_true(ticks >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_order_across_wrap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stalled_reader_drops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_destroy_while_blocked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reader_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fd_flags_untouched, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fork_child_starts_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tick, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
