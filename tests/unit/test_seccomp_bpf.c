/*
 * The seccomp programs generated at build time (seccomp_gen) against
 * libseccomp compiling the same lists in this process: the lists and the
 * generated file can never diverge unnoticed. Then one generated program
 * installed in a child: an allowed call passes, a call no role allows
 * raises SIGSYS.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <linux/seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "security/seccomp_bpf.h"

static void check_role(enum sc_deny deny, int role)
{
	const struct sc_prog *gen = &sc_progs[deny][role];
	struct sock_fprog now;

	assert_int_equal(sc_compile_role(&sc_roles[role], deny, &now), 0);
	if (gen->len != now.len || memcmp(gen->filter, now.filter, now.len * sizeof(*now.filter)))
		fail_msg("role %s (%s): the generated program (%u instructions) is not what "
			 "libseccomp compiles from the lists now (%u)",
			 sc_roles[role].name, deny == SC_DENY_LOG ? "log" : "trap", gen->len,
			 now.len);
	free(now.filter);
}

static void generated_programs_equal_runtime_compile(void **state)
{
	(void)state;
	for (int d = 0; d < SC_DENIES; d++)
		for (int r = 0; r < SC_ROLES; r++)
			check_role((enum sc_deny)d, r);
}

static void name_table_equals_libseccomp(void **state)
{
	char name[sizeof(sc_names[0])];

	(void)state;
	for (int nr = 0; nr < SC_NAMES; nr++) {
		sc_resolve_name(nr, name, sizeof(name));
		assert_string_equal(sc_names[nr], name);
	}
	assert_string_equal(sc_names[SYS_ioctl], "ioctl");
}

/* A child installs role @role's trap program and makes system call @nr: how it ended. */
static int child_status(int role, long nr)
{
	const struct sc_prog *p = &sc_progs[SC_DENY_TRAP][role];
	pid_t pid = fork();
	int status = -1;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct sock_fprog f = {.len = p->len,
				       .filter = (struct sock_filter *)(uintptr_t)p->filter};
		struct itimerval it;

		signal(SIGSYS, SIG_DFL);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &f) < 0)
			_exit(3);
		syscall(nr, ITIMER_REAL, &it); /* getitimer's arguments; getpid ignores them */
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void generated_program_enforces(void **state)
{
	int vcpu = 0, st;

	(void)state;
	assert_string_equal(sc_roles[vcpu].name, "vcpu");
	st = child_status(vcpu, SYS_getpid); /* every role allows it */
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	st = child_status(vcpu, SYS_getitimer); /* no role allows it */
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(generated_programs_equal_runtime_compile),
	    cmocka_unit_test(name_table_equals_libseccomp),
	    cmocka_unit_test(generated_program_enforces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
