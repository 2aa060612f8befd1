/*
 * Installing the allowlists (seccomp_filters.c lists them): each role's
 * BPF program was compiled at build time (seccomp_bpf.h), so a thread
 * installs its own with one system call, no allocation and no libseccomp.
 * The SIGSYS handler reports a forbidden call in one line and ends the
 * process.
 */
#include "security/seccomp.h"

#include "security/seccomp_bpf.h"
#include "util/log.h"
#include "util/thread.h"

#include <errno.h>
#include <malloc.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Written by seccomp_setup before any thread starts, then only read. */
static struct {
	enum sandbox_mode mode;
	const struct sc_prog *prog; /* the mode's programs, one per role; NULL when off */
#ifdef BANYAN_TEST_HOOKS
	const char *test_role; /* BANYAN_SECCOMP_TEST: the role that makes a forbidden call */
#endif
} sb = {.mode = SANDBOX_OFF};

/* The calling thread's role and name, for the handler. */
static __thread const char *tls_role = "none";
static __thread char tls_name[16];

int sandbox_mode_parse(const char *s, enum sandbox_mode *mode)
{
	if (!strcmp(s, "strict"))
		*mode = SANDBOX_STRICT;
	else if (!strcmp(s, "log"))
		*mode = SANDBOX_LOG;
	else if (!strcmp(s, "off"))
		*mode = SANDBOX_OFF;
	else
		return -EINVAL;
	return 0;
}

const char *sandbox_mode_name(enum sandbox_mode mode)
{
	return mode == SANDBOX_STRICT ? "strict" : mode == SANDBOX_LOG ? "log" : "off";
}

/* --- the SIGSYS handler: async-signal-safe calls only --- */

static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at + 1 < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, unsigned long v, int width)
{
	char digits[24];
	int n = 0;

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) || n < width);
	while (n && at + 1 < cap)
		buf[at++] = digits[--n];
	return at;
}

/* "2026-12-03T11:22:33Z" from the clock (days to a civil date, Hinnant's method). */
static size_t put_time(char *buf, size_t at, size_t cap)
{
	struct timespec ts = {0};
	long days, secs, era, doe, yoe, doy, mp, y, m, d;

	clock_gettime(CLOCK_REALTIME, &ts);
	days = ts.tv_sec / 86400 + 719468;
	secs = ts.tv_sec % 86400;
	era = days / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (m <= 2);
	at = put_num(buf, at, cap, (unsigned long)y, 4);
	at = put_num(buf, put_str(buf, at, cap, "-"), cap, (unsigned long)m, 2);
	at = put_num(buf, put_str(buf, at, cap, "-"), cap, (unsigned long)d, 2);
	at = put_num(buf, put_str(buf, at, cap, "T"), cap, (unsigned long)(secs / 3600), 2);
	at = put_num(buf, put_str(buf, at, cap, ":"), cap, (unsigned long)(secs / 60 % 60), 2);
	at = put_num(buf, put_str(buf, at, cap, ":"), cap, (unsigned long)(secs % 60), 2);
	return put_str(buf, at, cap, "Z");
}

static int role_index(const char *name);

/*
 * A thread libmicrohttpd started inherits the filter but not our thread-local
 * role: its name, from the kernel, gives it.
 */
static void handler_identify(void)
{
	int role;

	if (tls_name[0] || prctl(PR_GET_NAME, tls_name, 0, 0, 0) < 0)
		return;
	role = role_index(tls_name);
	tls_role = role < 0 ? "unknown" : sc_roles[role].name;
}

/*
 * Several threads of one role (the aio workers) can trip the filter in the
 * same instant; the first one to get here names the call, the others only
 * end the process, so the log gives one reason, not a race of lines.
 */
static atomic_flag sigsys_reported = ATOMIC_FLAG_INIT;

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	unsigned int nr = (unsigned int)si->si_syscall;
	char line[256];
	size_t n;

	(void)sig;
	(void)uc;
	if (atomic_flag_test_and_set(&sigsys_reported))
		syscall(SYS_exit_group, SECCOMP_EXIT_STATUS);
	handler_identify();
	n = put_time(line, 0, sizeof(line));
	n = put_str(line, n, sizeof(line), " banyan error: seccomp: thread ");
	n = put_str(line, n, sizeof(line), tls_name);
	n = put_str(line, n, sizeof(line), " (role ");
	n = put_str(line, n, sizeof(line), tls_role);
	n = put_str(line, n, sizeof(line), ") made a forbidden system call: ");
	n = put_str(line, n, sizeof(line), nr < SC_NAMES && sc_names[nr][0] ? sc_names[nr] : "?");
	n = put_str(line, n, sizeof(line), " (");
	n = put_num(line, n, sizeof(line), nr, 1);
	n = put_str(line, n, sizeof(line), "); stopping with exit status 148\n");
	if (write(log_sink_fd(), line, n) < 0)
		(void)0; /* nowhere else to say it */
	syscall(SYS_exit_group, SECCOMP_EXIT_STATUS);
}

/* --- installing --- */

/* The role whose prefix (or alias) is the longest that begins @name; -1 for none. */
static int role_index(const char *name)
{
	int best = -1;
	size_t best_len = 0;

	for (int i = 0; i < SC_ROLES; i++) {
		const char *p[2] = {sc_roles[i].prefix, sc_roles[i].alias};

		for (int k = 0; k < 2; k++) {
			size_t len = p[k] ? strlen(p[k]) : 0;

			if (len && len >= best_len && !strncmp(name, p[k], len)) {
				best = i;
				best_len = len;
			}
		}
	}
	return best;
}

#ifdef BANYAN_TEST_HOOKS
/* Test builds only: the role named by BANYAN_SECCOMP_TEST makes a call no role allows. */
static void test_forbidden_call(const char *role)
{
	if (sb.test_role && !strcmp(sb.test_role, role))
		syscall(SYS_getitimer, ITIMER_REAL, &(struct itimerval){{0, 0}, {0, 0}});
}
#else
static void test_forbidden_call(const char *role)
{
	(void)role;
}
#endif

/* @p on the calling thread (the kernel copies the program and only reads it). */
static int __install(const struct sc_prog *p)
{
	struct sock_fprog f = {.len = p->len, .filter = (struct sock_filter *)(uintptr_t)p->filter};

	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &f);
}

/* The calling thread takes @role's filter; SIGSYS must reach it even if it blocks the rest. */
static int install(int role, const char *name)
{
	sigset_t sys;

	tls_role = sc_roles[role].name;
	snprintf(tls_name, sizeof(tls_name), "%s", name);
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	if (__install(&sb.prog[role]) < 0)
		return -errno;
	test_forbidden_call(tls_role);
	return 0;
}

/* util/thread.h's hook: a thread that cannot be sandboxed does not run. */
static void on_thread_enter(const char *name)
{
	int role = role_index(name);
	int ret = role < 0 ? -ENOENT : install(role, name);

	if (ret < 0) {
		log_error("seccomp: cannot sandbox thread %s: %s", name,
			  role < 0 ? "no role has this name" : strerror(-ret));
		log_flush();
		syscall(SYS_exit_group, SECCOMP_EXIT_STATUS);
	}
}

/*
 * glibc reads /proc/sys/vm/overcommit_memory the first time any thread's
 * malloc arena gives memory back (shrink_heap), then never again: make
 * that happen now, in a thread of its own (the main thread's arena never
 * takes that path), not later in a thread whose filter has no openat.
 * A heap shrinks only when its free top exceeds the trim threshold, which
 * glibc raises as mmapped chunks are freed (a restore frees a 1 MiB read
 * buffer first, making it 2 MiB, and then a warm-up of 2 MiB shrank
 * nothing). Both thresholds are fixed first, where glibc's raising would
 * take them after a 1 MiB buffer (chunks from 1 MiB are mmapped, a heap
 * keeps up to 2 MiB free at its top), which also stops the raising, so
 * the warm-up always shrinks. Its chunks are taken, never written: three
 * pages touched.
 */
enum {
	MMAP_THRESHOLD = 1 << 20,
	TRIM_THRESHOLD = 2 << 20,
	WARM_CHUNKS = 3,
	WARM_CHUNK = MMAP_THRESHOLD - (64 << 10),
};

static void *arena_trim(void *arg)
{
	void *p[WARM_CHUNKS];

	(void)arg;
	for (int i = 0; i < WARM_CHUNKS; i++) {
		p[i] = malloc(WARM_CHUNK); /* under the mmap threshold: from the arena */
		__asm__ volatile("" : : "r"(p[i]) : "memory"); /* kept: not elided with its free */
	}
	for (int i = WARM_CHUNKS - 1; i >= 0; i--)
		free(p[i]); /* the top chunk grows past the trim threshold: the heap shrinks */
	return NULL;
}

static void malloc_warm_up(void)
{
	pthread_t t;

	(void)mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
	(void)mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
	if (pthread_create(&t, NULL, arena_trim, NULL) == 0)
		pthread_join(t, NULL);
}

int seccomp_compile(enum sandbox_mode mode)
{
	sb.mode = mode;
	sb.prog =
	    mode == SANDBOX_OFF ? NULL : sc_progs[mode == SANDBOX_LOG ? SC_DENY_LOG : SC_DENY_TRAP];
	return 0;
}

int seccomp_setup(enum sandbox_mode mode)
{
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	int ret = 0;

	ret = seccomp_compile(mode);
	if (ret < 0 || mode == SANDBOX_OFF)
		return ret;
	/*
	 * glibc reads the time zone (/etc/localtime) on the first gmtime_r: make
	 * it now, not in the vCPU thread whose RTC read would come first.
	 */
	tzset();
	malloc_warm_up();
#ifdef BANYAN_TEST_HOOKS
	sb.test_role = getenv("BANYAN_SECCOMP_TEST");
#endif
	sigemptyset(&sa.sa_mask);
	/* Filters need no_new_privs (or CAP_SYS_ADMIN); every later thread inherits it. */
	if (sigaction(SIGSYS, &sa, NULL) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	thread_set_enter_hook(on_thread_enter);
	log_start(); /* the log's thread, started now by a thread that may start threads */
	if (thread_unhooked())
		log_warn("seccomp: %u thread(s) started before the filters were ready run without "
			 "one",
			 thread_unhooked());
	return 0;
}

int seccomp_enter_main(void)
{
	if (sb.mode == SANDBOX_OFF)
		return 0;
	return install(SC_ROLES - 1, "main"); /* main is the last role */
}

/* --- the lists, for tools/seccomp-audit --- */

static void print_rule(FILE *f, const char *role, const struct sc_rule *r)
{
	const char *name =
	    r->nr >= 0 && r->nr < SC_NAMES && sc_names[r->nr][0] ? sc_names[r->nr] : "?";

	if (r->op == SC_ANY)
		fprintf(f, "%s %s\n", role, name);
	else
		fprintf(f, "%s %s arg%u %s 0x%llx %s\n", role, name, r->arg,
			r->op == SC_EQ ? "==" : "&~", (unsigned long long)r->value, r->what);
}

/* Distinct calls and ioctl requests of @role. */
static void role_counts(const struct sc_role *role, unsigned int *calls, unsigned int *ioctls)
{
	bool seen[SC_NAMES] = {false};

	*calls = *ioctls = 0;
	for (unsigned int g = 0; g < SC_MAX_GROUPS && role->groups[g]; g++)
		for (size_t i = 0; i < role->groups[g]->n; i++) {
			const struct sc_rule *r = &role->groups[g]->rules[i];

			if (r->nr == SYS_ioctl && r->op == SC_EQ)
				(*ioctls)++;
			if (r->nr >= 0 && r->nr < SC_NAMES && !seen[r->nr]) {
				seen[r->nr] = true;
				(*calls)++;
			}
		}
}

int seccomp_print_lists(FILE *f)
{
	unsigned int calls, ioctls;

	for (int i = 0; i < SC_ROLES; i++)
		for (unsigned int g = 0; g < SC_MAX_GROUPS && sc_roles[i].groups[g]; g++)
			for (size_t r = 0; r < sc_roles[i].groups[g]->n; r++)
				print_rule(f, sc_roles[i].name, &sc_roles[i].groups[g]->rules[r]);
	for (int i = 0; i < SC_ROLES; i++) {
		role_counts(&sc_roles[i], &calls, &ioctls);
		fprintf(f, "%s count %u syscalls %u ioctls\n", sc_roles[i].name, calls, ioctls);
	}
	return fflush(f) == 0 ? 0 : -EIO;
}
