/*
 * The VM's cgroup, banyan/<id>: cgroup v2 when its hierarchy offers every
 * controller the --cgroup keys name; otherwise (a hybrid host whose
 * controllers sit in v1 hierarchies) each controller's v1 hierarchy. On a
 * host where nothing is mounted at /sys/fs/cgroup and the kernel has
 * cgroup2, the jail mounts cgroup2 there (in the host's namespace: it is
 * the host's hierarchy, shared with whoever manages it later).
 */
#include "jail/jail.h"

#include "util/errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define fail_errno(err, ret, ...) errmsg_set(err, JAIL_ERR_LEN, ret, __VA_ARGS__)
#define CGROUP_ROOT		  "/sys/fs/cgroup"
/* Paths built from a mount point (at most PATH_MAX) and a few names. */
#define CG_PATH (PATH_MAX + 256)

/* The controller a key belongs to: the text before its first '.'. */
static void controller_of(const char *key, char *out, size_t len)
{
	size_t n = strcspn(key, ".");

	snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), key);
}

/*
 * The mount point of the first hierarchy of @fstype in mountinfo whose
 * super options name @ctl (any, for NULL), into @out. True when found.
 */
static bool find_mount(const char *fstype, const char *ctl, char *out)
{
	char line[1024], mnt[PATH_MAX], type[32], opts[512];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	bool found = false;

	while (f && !found && fgets(line, sizeof(line), f)) {
		char *dash = strstr(line, " - ");

		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(dash + 3, "%31s %*s %511s", type, opts) != 2 || strcmp(type, fstype))
			continue;
		if (ctl) {
			char *o, *save = NULL;

			for (o = strtok_r(opts, ",", &save); o && strcmp(o, ctl);
			     o = strtok_r(NULL, ",", &save))
				;
			if (!o)
				continue;
		}
		snprintf(out, PATH_MAX, "%s", mnt);
		found = true;
	}
	if (f)
		fclose(f);
	return found;
}

static int write_file(const char *dir, const char *name, const char *value, char *err)
{
	char path[2 * CG_PATH];
	size_t len = strlen(value);
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, len) != (ssize_t)len)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	return ret < 0 ? fail_errno(err, ret, "cgroup: write '%s' to %s: %s", value, path,
				    strerror(-ret))
		       : 0;
}

static int make_dir(const char *path, char *err)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return fail_errno(err, -errno, "cgroup: mkdir %s: %s", path, strerror(errno));
	return 0;
}

/* The v2 hierarchy offers controller @ctl (in cgroup.controllers of @mnt). */
static bool v2_has(const char *mnt, const char *ctl)
{
	char path[CG_PATH], buf[512], *w, *save = NULL;
	FILE *f;
	bool has = false;

	snprintf(path, sizeof(path), "%s/cgroup.controllers", mnt);
	f = fopen(path, "re");
	if (f && fgets(buf, sizeof(buf), f))
		for (w = strtok_r(buf, " \n", &save); w && !has; w = strtok_r(NULL, " \n", &save))
			has = strcmp(w, ctl) == 0;
	if (f)
		fclose(f);
	return has;
}

/* A v2 hierarchy with every controller the keys need, in @mnt. */
static bool v2_usable(const struct jail_opts *o, char *mnt)
{
	char ctl[32];

	if (!find_mount("cgroup2", NULL, mnt))
		return false;
	for (unsigned int i = 0; i < o->ncgroups; i++) {
		controller_of(o->cgroups[i].key, ctl, sizeof(ctl));
		if (!v2_has(mnt, ctl))
			return false;
	}
	return true;
}

/* Nothing at all mounted for cgroups, and the kernel has cgroup2: mount it. */
static bool v2_mount(char *mnt, char *desc)
{
	char any[PATH_MAX];

	if (find_mount("cgroup", NULL, any) || find_mount("cgroup2", NULL, any))
		return false;
	if (mount("cgroup2", CGROUP_ROOT, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return false;
	snprintf(mnt, PATH_MAX, CGROUP_ROOT);
	snprintf(desc, JAIL_ERR_LEN, "mounted cgroup2 at " CGROUP_ROOT "; ");
	return true;
}

static int v2_apply(const struct jail_opts *o, const char *mnt, char *desc, char *err)
{
	char dir[CG_PATH], ctl[40], pid[24];
	int ret = 0;

	snprintf(dir, sizeof(dir), "%s/" JAIL_EXEC_NAME, mnt);
	ret = make_dir(dir, err);
	/* Every controller a key needs is delegated down to banyan/<id>. */
	for (unsigned int i = 0; ret == 0 && i < o->ncgroups; i++) {
		ctl[0] = '+';
		controller_of(o->cgroups[i].key, ctl + 1, sizeof(ctl) - 1);
		ret = write_file(mnt, "cgroup.subtree_control", ctl, err);
		if (ret == 0)
			ret = write_file(dir, "cgroup.subtree_control", ctl, err);
	}
	snprintf(dir, sizeof(dir), "%s/" JAIL_EXEC_NAME "/%s", mnt, o->id);
	if (ret == 0)
		ret = make_dir(dir, err);
	for (unsigned int i = 0; ret == 0 && i < o->ncgroups; i++)
		ret = write_file(dir, o->cgroups[i].key, o->cgroups[i].value, err);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (ret == 0)
		ret = write_file(dir, "cgroup.procs", pid, err);
	if (ret == 0)
		snprintf(desc + strlen(desc), JAIL_ERR_LEN - strlen(desc), "cgroup v2 %s", dir);
	return ret;
}

/* v1 cpuset groups start empty: copy the parent's CPUs and memory nodes down. */
static int v1_cpuset_inherit(const char *parent, const char *dir, char *err)
{
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
	char path[2 * CG_PATH], buf[256];
	int ret = 0;

	for (unsigned int i = 0; ret == 0 && i < 2; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", parent, files[i]);
		f = fopen(path, "re");
		buf[0] = '\0';
		if (f && !fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		if (f)
			fclose(f);
		buf[strcspn(buf, "\n")] = '\0';
		if (buf[0])
			ret = write_file(dir, files[i], buf, err);
	}
	return ret;
}

/* One v1 controller: banyan/<id> in its hierarchy, its keys, this process. */
static int v1_controller(const struct jail_opts *o, const char *ctl, char *desc, char *err)
{
	char mnt[PATH_MAX], parent[CG_PATH], dir[2 * CG_PATH], c[32], pid[24];
	int ret;

	if (!find_mount("cgroup", ctl, mnt))
		return fail_errno(err, -ENOENT, "cgroup: no hierarchy has the %s controller", ctl);
	snprintf(parent, sizeof(parent), "%s/" JAIL_EXEC_NAME, mnt);
	snprintf(dir, sizeof(dir), "%s/%s", parent, o->id);
	ret = make_dir(parent, err);
	if (ret == 0 && strcmp(ctl, "cpuset") == 0)
		ret = v1_cpuset_inherit(mnt, parent, err);
	if (ret == 0)
		ret = make_dir(dir, err);
	if (ret == 0 && strcmp(ctl, "cpuset") == 0)
		ret = v1_cpuset_inherit(parent, dir, err);
	for (unsigned int i = 0; ret == 0 && i < o->ncgroups; i++) {
		controller_of(o->cgroups[i].key, c, sizeof(c));
		if (strcmp(c, ctl) == 0)
			ret = write_file(dir, o->cgroups[i].key, o->cgroups[i].value, err);
	}
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (ret == 0)
		ret = write_file(dir, "cgroup.procs", pid, err);
	if (ret == 0)
		snprintf(desc + strlen(desc), JAIL_ERR_LEN - strlen(desc), "%s%s",
			 desc[0] ? ", " : "cgroup v1 ", dir);
	return ret;
}

static int v1_apply(const struct jail_opts *o, char *desc, char *err)
{
	char ctl[32], prev[32];
	int ret = 0;

	for (unsigned int i = 0; ret == 0 && i < o->ncgroups; i++) {
		bool seen = false;

		controller_of(o->cgroups[i].key, ctl, sizeof(ctl));
		for (unsigned int j = 0; j < i && !seen; j++) {
			controller_of(o->cgroups[j].key, prev, sizeof(prev));
			seen = strcmp(prev, ctl) == 0;
		}
		if (!seen)
			ret = v1_controller(o, ctl, desc, err);
	}
	return ret;
}

int jail_cgroup_apply(const struct jail_opts *o, char *desc, char *err)
{
	char mnt[PATH_MAX];

	desc[0] = '\0';
	if (o->ncgroups == 0) {
		snprintf(desc, JAIL_ERR_LEN, "no cgroup (no --cgroup option)");
		return 0;
	}
	if (v2_usable(o, mnt) || v2_mount(mnt, desc))
		return v2_apply(o, mnt, desc, err);
	return v1_apply(o, desc, err);
}
