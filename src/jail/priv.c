/*
 * The process's privileges: inherited descriptors, resource limits, the
 * user and groups, no_new_privs, and Landlock as a second wall inside the
 * root (only the VM's own files, with only the access each needs).
 */
#include "jail/jail.h"

#include "util/errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define fail_errno(err, ret, ...) errmsg_set(err, JAIL_ERR_LEN, ret, __VA_ARGS__)

int jail_close_fds(char *err)
{
	if (close_range(3, ~0U, 0) < 0)
		return fail_errno(err, -errno, "close inherited descriptors: %s", strerror(errno));
	return 0;
}

static int set_limit(int res, const char *name, rlim_t v, char *err)
{
	struct rlimit r = {v, v};

	if (setrlimit(res, &r) < 0)
		return fail_errno(err, -errno, "setrlimit %s: %s", name, strerror(errno));
	return 0;
}

int jail_set_rlimits(const struct jail_opts *o, char *err)
{
	int ret = set_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", o->nofile, err);

	return ret ?: set_limit(RLIMIT_FSIZE, "RLIMIT_FSIZE", o->fsize, err);
}

int jail_drop_privileges(const struct jail_opts *o, char *err)
{
	if (setgroups(0, NULL) < 0)
		return fail_errno(err, -errno, "setgroups: %s", strerror(errno));
	if (setresgid(o->gid, o->gid, o->gid) < 0)
		return fail_errno(err, -errno, "setgid %u: %s", o->gid, strerror(errno));
	/* Leaving uid 0 clears every capability (no SECBIT_KEEP_CAPS). */
	if (setresuid(o->uid, o->uid, o->uid) < 0)
		return fail_errno(err, -errno, "setuid %u: %s", o->uid, strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail_errno(err, -errno, "no_new_privs: %s", strerror(errno));
	return 0;
}

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

#define LL_FILE_RO (LANDLOCK_ACCESS_FS_READ_FILE)
#define LL_FILE_RW (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE)
#define LL_EXEC	   (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_EXECUTE)
/*
 * /run: sockets, snapshots the API is asked to write there, and a named
 * VM's runtime directory (MAKE_SYM: its link to an --api-socket elsewhere).
 */
#define LL_RUN_DIR                                                                                 \
	(LL_FILE_RW | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |                \
	 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |                            \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |                              \
	 LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM)
/* Every right of ABI 1; REFER (2) and TRUNCATE (3) are added when the kernel has them. */
#define LL_HANDLED_V1 ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1)

/* The kernel's Landlock ABI version; 0 when it has none (or it is disabled). */
static int landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return v < 0 ? 0 : (int)v;
}

static int allow(int ruleset, const char *path, uint64_t access, char *err)
{
	struct landlock_path_beneath_attr pb = {.allowed_access = access};
	int ret = 0;

	pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
	if (pb.parent_fd < 0)
		return fail_errno(err, -errno, "landlock: open %s: %s", path, strerror(errno));
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
		ret = fail_errno(err, -errno, "landlock: rule for %s: %s", path, strerror(errno));
	close(pb.parent_fd);
	return ret;
}

static uint64_t file_access(const struct jail_file *f, uint64_t trunc)
{
	switch (f->kind) {
	case JAIL_FILE_RO:
		return LL_FILE_RO;
	case JAIL_FILE_EXEC:
		return LL_EXEC;
	default:
		return LL_FILE_RW | trunc;
	}
}

static int add_rules(int rs, const struct jail_plan *p, uint64_t trunc, char *err)
{
	static const char *const devs[] = {"/dev/kvm", "/dev/net/tun", "/dev/urandom", "/dev/null"};
	int ret = allow(rs, JAIL_RUN_DIR, LL_RUN_DIR | trunc, err);

	for (unsigned int i = 0; ret == 0 && i < p->nfiles; i++)
		ret = allow(rs, p->files[i].inside, file_access(&p->files[i], trunc), err);
	for (unsigned int i = 0; ret == 0 && i < sizeof(devs) / sizeof(devs[0]); i++)
		if (access(devs[i], F_OK) == 0)
			ret = allow(rs, devs[i], LL_FILE_RW, err);
	if (ret == 0 && p->config_json)
		ret = allow(rs, JAIL_CONFIG_FILE, LL_FILE_RO, err);
	return ret;
}

int jail_landlock(const struct jail_plan *p, char *err)
{
	int abi = landlock_abi();
	uint64_t trunc = abi >= 3 ? LANDLOCK_ACCESS_FS_TRUNCATE : 0;
	struct landlock_ruleset_attr attr = {
	    .handled_access_fs = LL_HANDLED_V1 | (abi >= 2 ? LANDLOCK_ACCESS_FS_REFER : 0) | trunc};
	int rs, ret;

	if (abi <= 0)
		return 0;
	rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (rs < 0)
		return fail_errno(err, -errno, "landlock: create ruleset: %s", strerror(errno));
	ret = add_rules(rs, p, trunc, err);
	if (ret == 0 && syscall(SYS_landlock_restrict_self, rs, 0) < 0)
		ret = fail_errno(err, -errno, "landlock: restrict: %s", strerror(errno));
	close(rs);
	return ret < 0 ? ret : abi;
}
