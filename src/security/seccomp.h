/*
 * Per-thread system call allowlists (seccomp-BPF, compiled at build time).
 *
 * Each thread Banyan starts names itself (util/thread.h); its name gives
 * its role (vcpu, virtio-blk, api, ...) and the role its allowlist, which
 * the thread installs on itself before it runs any of its work: a vCPU
 * before its first KVM_RUN, a device thread before it reads a queue. The
 * main thread installs its own once the API is up ("sandbox last"). Filters
 * stack and are inherited, so a thread that starts threads after it is
 * sandboxed allows what its children need too (docs/security.md).
 *
 * A forbidden call in strict mode raises SIGSYS; the handler writes one
 * line naming the thread, its role and the call, then ends the process
 * with SECCOMP_EXIT_STATUS.
 */
#ifndef BANYAN_SECURITY_SECCOMP_H
#define BANYAN_SECURITY_SECCOMP_H

#include <stdio.h>

/* Exit status after a forbidden system call (Firecracker's, 128 + SIGTSTP, never a quit signal). */
#define SECCOMP_EXIT_STATUS 148

enum sandbox_mode {
	SANDBOX_STRICT, /* a forbidden call ends the process (the default) */
	SANDBOX_LOG,	/* a forbidden call is allowed and logged by the kernel (audit) */
	SANDBOX_OFF,	/* no filter at all */
};

/* "strict", "log" or "off" into *@mode; -EINVAL for anything else. */
int sandbox_mode_parse(const char *s, enum sandbox_mode *mode);

/* The option's spelling of @mode. */
const char *sandbox_mode_name(enum sandbox_mode mode);

/*
 * Prepare the sandbox for this process: pick @mode's filters (built at
 * build time), the SIGSYS handler, no_new_privs, and the hook that
 * sandboxes each thread as it starts (util/thread.h). Called by the main
 * thread before it starts any thread. Nothing is installed yet.
 * SANDBOX_OFF does nothing. Returns 0 or -errno.
 */
int seccomp_setup(enum sandbox_mode mode);

/*
 * Pick every role's filter for @mode (the programs are compiled at build
 * time, so this only selects them: it is kept for callers that prepare
 * before a fork, as banyan restore --clones). Installs nothing, starts no
 * thread, allocates nothing. Returns 0.
 */
int seccomp_compile(enum sandbox_mode mode);

/*
 * Install the main thread's filter on the calling thread, which must be
 * the main thread. Returns 0 (also when the mode is off) or -errno.
 */
int seccomp_enter_main(void);

/*
 * Print every role's allowlist to @f, one "role syscall [args]" line per
 * rule, then one "role count N syscalls M ioctls" line per role: what
 * tools/seccomp-audit compares strace's output against. Returns 0 or -errno.
 */
int seccomp_print_lists(FILE *f);

#endif
