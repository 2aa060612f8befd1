/*
 * The allowlists as BPF programs. seccomp_gen (run at build time) compiles
 * every role of seccomp_filters.c through libseccomp, once per deny action,
 * and writes the programs and a table of system call names into a
 * generated C file; the VMM installs them as they are, with no libseccomp
 * and no compiling at start-up. No rule depends on a value known only at
 * run time (a pid, a file descriptor), so nothing is left to compile then.
 * The programs are for the build machine's architecture (x86_64): each
 * begins by checking the caller's AUDIT_ARCH. Internal to security/.
 */
#ifndef BANYAN_SECURITY_SECCOMP_BPF_H
#define BANYAN_SECURITY_SECCOMP_BPF_H

#include "security/seccomp_rules.h"

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>

/* What a filter does with a call no rule allows. */
enum sc_deny {
	SC_DENY_TRAP, /* SIGSYS (--seccomp strict) */
	SC_DENY_LOG,  /* allowed and logged by the kernel (--seccomp log) */
	SC_DENIES,
};

/* One role's program for one deny action. */
struct sc_prog {
	const struct sock_filter *filter;
	unsigned short len; /* instructions */
};

/* System call numbers the name table covers; higher ones are reported by number. */
#define SC_NAMES 512

/* Generated (seccomp_gen): every role's program, indexed as sc_roles. */
extern const struct sc_prog sc_progs[SC_DENIES][SC_ROLES];

/* Generated: the name of each system call number below SC_NAMES ("" if none). */
extern const char sc_names[SC_NAMES][24];

/*
 * Compile @role through libseccomp with @deny into @prog (its filter
 * malloc'd, the caller frees it). For seccomp_gen and the unit test that
 * checks the generated programs against it; the VMM does not link it.
 * Returns 0 or -errno.
 */
int sc_compile_role(const struct sc_role *role, enum sc_deny deny, struct sock_fprog *prog);

/*
 * libseccomp's name of system call @nr on this architecture into @buf
 * ("" if it has none). For seccomp_gen and the unit test. Never fails.
 */
void sc_resolve_name(int nr, char *buf, size_t len);

#endif
