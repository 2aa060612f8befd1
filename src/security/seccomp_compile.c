/*
 * The allowlists through libseccomp: what seccomp_gen runs at build time
 * to write the programs the VMM installs, and what the unit test runs to
 * check that the generated programs are still what the lists compile to.
 */
#include "security/seccomp_bpf.h"

#include <errno.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* One rule into @ctx; libseccomp merges rules on the same call into one test. */
static int add_rule(scmp_filter_ctx ctx, const struct sc_rule *r)
{
	struct scmp_arg_cmp c = {.arg = r->arg};

	switch (r->op) {
	case SC_EQ:
		/* ioctl requests are 32 bits: a caller's sign extension must not matter. */
		c.op = SCMP_CMP_MASKED_EQ;
		c.datum_a = r->nr == SCMP_SYS(ioctl) ? 0xffffffffu : ~0ull;
		c.datum_b = r->value;
		break;
	case SC_MASK_ZERO:
		c.op = SCMP_CMP_MASKED_EQ;
		c.datum_a = r->value;
		c.datum_b = 0;
		break;
	default:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 0);
	}
	return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, c);
}

/* Rules on a call that is also allowed whole would be refused: the whole call wins. */
static bool allowed_whole(const struct sc_role *role, int nr)
{
	for (unsigned int g = 0; g < SC_MAX_GROUPS && role->groups[g]; g++)
		for (size_t i = 0; i < role->groups[g]->n; i++)
			if (role->groups[g]->rules[i].nr == nr &&
			    role->groups[g]->rules[i].op == SC_ANY)
				return true;
	return false;
}

static int add_role(scmp_filter_ctx ctx, const struct sc_role *role)
{
	int ret = 0;

	for (unsigned int g = 0; ret == 0 && g < SC_MAX_GROUPS && role->groups[g]; g++) {
		const struct sc_group *grp = role->groups[g];

		for (size_t i = 0; ret == 0 && i < grp->n; i++)
			if (grp->rules[i].op == SC_ANY || !allowed_whole(role, grp->rules[i].nr))
				ret = add_rule(ctx, &grp->rules[i]);
	}
	return ret;
}

/* @ctx's BPF program into @prog, through a memfd (libseccomp exports to a descriptor). */
static int export_prog(scmp_filter_ctx ctx, struct sock_fprog *prog)
{
	int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC), ret = fd < 0 ? -errno : 0;
	off_t len = 0;

	if (ret == 0)
		ret = seccomp_export_bpf(ctx, fd);
	if (ret == 0 && (len = lseek(fd, 0, SEEK_END)) <= 0)
		ret = -EIO;
	if (ret == 0 && !(prog->filter = malloc((size_t)len)))
		ret = -ENOMEM;
	if (ret == 0 && pread(fd, prog->filter, (size_t)len, 0) != len)
		ret = -EIO;
	prog->len = (unsigned short)(len / (off_t)sizeof(struct sock_filter));
	if (fd >= 0)
		close(fd);
	return ret;
}

int sc_compile_role(const struct sc_role *role, enum sc_deny deny, struct sock_fprog *prog)
{
	scmp_filter_ctx ctx = seccomp_init(deny == SC_DENY_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
	int ret = ctx ? add_role(ctx, role) : -ENOMEM;

	*prog = (struct sock_fprog){0};
	if (ret == 0)
		ret = export_prog(ctx, prog);
	if (ret < 0) {
		free(prog->filter);
		*prog = (struct sock_fprog){0};
	}
	seccomp_release(ctx);
	return ret;
}

void sc_resolve_name(int nr, char *buf, size_t len)
{
	char *n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

	snprintf(buf, len, "%s", n ? n : "");
	free(n);
}
