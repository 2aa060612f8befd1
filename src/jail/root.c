/*
 * The per-VM root: <base>/banyan/<id>/root holding only the VMM's binary
 * and shared objects, the VM's files, /run for its sockets and three
 * device nodes. Writable files on the root's filesystem are hard links
 * (the VMM writes the operator's file itself); everything else is bind
 * mounted, read-only where the VMM only reads, in the jail's private
 * mount namespace, so the mounts vanish with it.
 */
#include "jail/jail.h"

#include "util/errmsg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define fail_errno(err, ret, ...) errmsg_set(err, JAIL_ERR_LEN, ret, __VA_ARGS__)

struct libs_ctx {
	struct jail_plan *p;
	char *err;
	int ret;
};

/* Each shared object the loader opened, at the path it opened it by (the soname's). */
static int add_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct libs_ctx *c = arg;

	(void)size;
	if (c->ret == 0 && info->dlpi_name && info->dlpi_name[0] == '/')
		c->ret = jail_plan_add(c->p, info->dlpi_name, NULL, JAIL_FILE_EXEC, "shared object",
				       c->err);
	return 0;
}

int jail_plan_exec(struct jail_plan *p, const char *exec, char *err)
{
	struct libs_ctx c = {.p = p, .err = err};
	char self[PATH_MAX];
	ssize_t n;

	if (!exec) {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0)
			return fail_errno(err, -errno, "/proc/self/exe: %s", strerror(errno));
		self[n] = '\0';
		exec = self;
	}
	c.ret = jail_plan_add(p, exec, "/" JAIL_EXEC_NAME, JAIL_FILE_EXEC, "exec file", err);
	if (c.ret == 0)
		dl_iterate_phdr(add_object, &c);
	if (c.ret == 0 && access("/etc/ld.so.cache", R_OK) == 0)
		c.ret =
		    jail_plan_add(p, "/etc/ld.so.cache", NULL, JAIL_FILE_EXEC, "loader cache", err);
	return c.ret;
}

/* What the jail's user may do with @st by its mode bits (it has no other groups). */
static bool user_may(const struct jail_opts *o, const struct stat *st, bool write)
{
	mode_t m = st->st_mode;
	mode_t want = write ? 06 : 04;

	if (st->st_uid == o->uid)
		m >>= 6;
	else if (st->st_gid == o->gid)
		m >>= 3;
	return (m & want) == want;
}

/* A missing writable file (overlay, log) is created now, as the jail's user's. */
static int create_new(const struct jail_opts *o, struct jail_file *f, char *err)
{
	int fd = open(f->host, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return fail_errno(err, -errno, "%s %s: cannot create: %s", f->what, f->host,
				  strerror(errno));
	if (fchown(fd, o->uid, o->gid) < 0) {
		int ret = -errno;

		close(fd);
		unlink(f->host);
		return fail_errno(err, ret, "%s %s: chown: %s", f->what, f->host, strerror(-ret));
	}
	close(fd);
	return 0;
}

static bool kind_ok(const struct jail_file *f, mode_t mode)
{
	if (S_ISREG(mode))
		return true;
	if (S_ISBLK(mode))
		return strcmp(f->what, "disk") == 0;
	return S_ISFIFO(mode) && f->kind == JAIL_FILE_NEW && strcmp(f->what, "overlay") != 0;
}

static int check_one(const struct jail_opts *o, struct jail_file *f, char *err)
{
	bool write = f->kind == JAIL_FILE_RW || f->kind == JAIL_FILE_NEW;
	char real[PATH_MAX];
	struct stat st;
	int ret;

	if (stat(f->host, &st) < 0 && errno == ENOENT && f->kind == JAIL_FILE_NEW) {
		ret = create_new(o, f, err);
		if (ret < 0)
			return ret;
	}
	if (!realpath(f->host, real) || stat(real, &st) < 0)
		return fail_errno(err, -errno, "%s %s: %s", f->what, f->host, strerror(errno));
	if (!kind_ok(f, st.st_mode))
		return fail_errno(err, -EINVAL, "%s %s: not a %s", f->what, f->host,
				  strcmp(f->what, "disk") ? "regular file"
							  : "regular file or block device");
	if (f->kind != JAIL_FILE_EXEC && !user_may(o, &st, write))
		return fail_errno(err, -EACCES, "%s %s: uid %u gid %u may not %s it", f->what,
				  f->host, o->uid, o->gid, write ? "read and write" : "read");
	free(f->host);
	f->host = strdup(real);
	return f->host ? 0 : fail_errno(err, -ENOMEM, "out of memory");
}

int jail_check_files(const struct jail_opts *o, struct jail_plan *p, char *err)
{
	int ret = 0;

	for (unsigned int i = 0; ret == 0 && i < p->nfiles; i++)
		ret = check_one(o, &p->files[i], err);
	return ret;
}

int jail_root_path(const struct jail_opts *o, char *buf)
{
	int n = snprintf(buf, PATH_MAX, "%s/" JAIL_EXEC_NAME "/%s/root", o->chroot_base, o->id);

	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* mkdir -p @path (mode 0755, root's); each component must be a directory. */
static int mkdirs(const char *path, char *err)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = buf + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return fail_errno(err, -errno, "mkdir %s: %s", buf, strerror(errno));
		*s = c;
		if (!c)
			return 0;
	}
}

/* A fresh root: refused when a previous jail left files there (same id, or running). */
static int root_create(const char *root, char *err)
{
	int ret = mkdirs(root, err);
	struct dirent *e;
	DIR *d;

	if (ret < 0)
		return ret;
	d = opendir(root);
	if (!d)
		return fail_errno(err, -errno, "open %s: %s", root, strerror(errno));
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			ret = -EEXIST;
	closedir(d);
	if (ret < 0)
		return fail_errno(err, ret,
				  "%s is not empty: a jail with this id runs or left it "
				  "(remove it first)",
				  root);
	return chmod(root, 0755) < 0 ? fail_errno(err, -errno, "chmod %s", root) : 0;
}

/* The parent directories of @inside in @root, and @inside's full path in @full. */
static int place(const char *root, const char *inside, char *full, char *err)
{
	char dir[PATH_MAX];
	char *slash;

	if (snprintf(full, PATH_MAX, "%s%s", root, inside) >= PATH_MAX)
		return fail_errno(err, -ENAMETOOLONG, "%s%s: path too long", root, inside);
	snprintf(dir, sizeof(dir), "%s", full);
	slash = strrchr(dir, '/');
	*slash = '\0';
	return mkdirs(dir, err);
}

/* A bind mount of @host at @full (an empty file made for it), read-only for @ro. */
static int bind_file(const char *host, const char *full, bool ro, char *err)
{
	int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | (ro ? MS_RDONLY : 0);

	if (fd < 0)
		return fail_errno(err, -errno, "create %s: %s", full, strerror(errno));
	close(fd);
	if (mount(host, full, NULL, MS_BIND, NULL) < 0)
		return fail_errno(err, -errno, "bind mount %s on %s: %s", host, full,
				  strerror(errno));
	if (mount(NULL, full, NULL, flags, NULL) < 0)
		return fail_errno(err, -errno, "remount %s%s: %s", full, ro ? " read-only" : "",
				  strerror(errno));
	return 0;
}

/*
 * A writable file on the root's filesystem becomes a hard link (nothing to
 * unmount, the VMM writes the operator's inode). Made before the root is
 * bind mounted on itself: link() never crosses a mount. *@linked says so.
 */
static int link_file(const struct jail_file *f, const char *root, dev_t root_dev, bool *linked,
		     char *err)
{
	char full[PATH_MAX];
	struct stat st;
	int ret;

	*linked = false;
	if (f->kind != JAIL_FILE_RW && f->kind != JAIL_FILE_NEW)
		return 0;
	if (stat(f->host, &st) < 0 || st.st_dev != root_dev || !S_ISREG(st.st_mode))
		return 0;
	ret = place(root, f->inside, full, err);
	if (ret == 0)
		*linked = link(f->host, full) == 0;
	return ret;
}

static int bind_put(const struct jail_file *f, const char *root, char *err)
{
	char full[PATH_MAX];
	int ret = place(root, f->inside, full, err);

	if (ret < 0)
		return ret;
	return bind_file(f->host, full, f->kind == JAIL_FILE_RO || f->kind == JAIL_FILE_EXEC, err);
}

/* Every file of @p: hard links first, then the root on itself, then the bind mounts. */
static int put_files(const struct jail_plan *p, const char *root, char *err)
{
	bool linked[JAIL_MAX_FILES];
	struct stat st;
	int ret = 0;

	if (stat(root, &st) < 0)
		return fail_errno(err, -errno, "stat %s: %s", root, strerror(errno));
	for (unsigned int i = 0; ret == 0 && i < p->nfiles; i++)
		ret = link_file(&p->files[i], root, st.st_dev, &linked[i], err);
	/* pivot_root wants the new root to be a mount point. */
	if (ret == 0 && mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail_errno(err, -errno, "bind mount %s on itself: %s", root,
				  strerror(errno));
	for (unsigned int i = 0; ret == 0 && i < p->nfiles; i++)
		if (!linked[i])
			ret = bind_put(&p->files[i], root, err);
	return ret;
}

/* The host's node @host at @name under @dev, the jail user's, 0660. */
static int make_node(const struct jail_opts *o, const char *dev, const char *name, const char *host,
		     char *err)
{
	char full[PATH_MAX];
	struct stat st;

	if (stat(host, &st) < 0 || !S_ISCHR(st.st_mode))
		return fail_errno(err, -ENODEV, "%s: not a character device on this host", host);
	snprintf(full, sizeof(full), "%s/%s", dev, name);
	if (mknod(full, S_IFCHR | 0660, st.st_rdev) < 0)
		return fail_errno(err, -errno, "mknod %s (%u:%u): %s", full, major(st.st_rdev),
				  minor(st.st_rdev), strerror(errno));
	if (chown(full, o->uid, o->gid) < 0 || chmod(full, 0660) < 0)
		return fail_errno(err, -errno, "chown %s: %s", full, strerror(errno));
	return 0;
}

/* /dev: a small tmpfs of its own (the base's filesystem may be nodev), four nodes. */
static int make_dev(const struct jail_opts *o, const char *root, char *err)
{
	char dev[PATH_MAX], net[PATH_MAX + 8];
	int ret;

	snprintf(dev, sizeof(dev), "%s/dev", root);
	if (mkdir(dev, 0755) < 0)
		return fail_errno(err, -errno, "mkdir %s: %s", dev, strerror(errno));
	if (mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
		return fail_errno(err, -errno, "mount tmpfs on %s: %s", dev, strerror(errno));
	snprintf(net, sizeof(net), "%s/net", dev);
	if (mkdir(net, 0755) < 0)
		return fail_errno(err, -errno, "mkdir %s: %s", net, strerror(errno));
	ret = make_node(o, dev, "kvm", "/dev/kvm", err);
	if (ret == 0 && access("/dev/net/tun", F_OK) == 0)
		ret = make_node(o, dev, "net/tun", "/dev/net/tun", err);
	if (ret == 0)
		ret = make_node(o, dev, "urandom", "/dev/urandom", err);
	/* Stdin of the clones' supervisor and of each clone (api/clones.c, cmd_restore.c). */
	if (ret == 0)
		ret = make_node(o, dev, "null", "/dev/null", err);
	return ret;
}

/* /run: the VM's own directory (sockets, snapshots), its user's alone. */
static int make_run(const struct jail_opts *o, const char *root, char *err)
{
	char run[PATH_MAX];

	snprintf(run, sizeof(run), "%s" JAIL_RUN_DIR, root);
	if (mkdir(run, 0700) < 0 || chown(run, o->uid, o->gid) < 0)
		return fail_errno(err, -errno, "mkdir %s: %s", run, strerror(errno));
	return 0;
}

/* The rewritten --config, readable by the jail's group only. */
static int write_config(const struct jail_opts *o, const struct jail_plan *p, const char *root,
			char *err)
{
	char full[PATH_MAX];
	size_t len = strlen(p->config_json);
	int fd;

	snprintf(full, sizeof(full), "%s" JAIL_CONFIG_FILE, root);
	fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		return fail_errno(err, -errno, "create %s: %s", full, strerror(errno));
	if (write(fd, p->config_json, len) != (ssize_t)len || fchown(fd, 0, o->gid) < 0) {
		close(fd);
		return fail_errno(err, -EIO, "write %s", full);
	}
	close(fd);
	return 0;
}

int jail_root_build(const struct jail_opts *o, const struct jail_plan *p, const char *root,
		    char *err)
{
	int ret = root_create(root, err);

	if (ret == 0)
		ret = put_files(p, root, err);
	if (ret == 0)
		ret = make_dev(o, root, err);
	if (ret == 0)
		ret = make_run(o, root, err);
	if (ret == 0 && p->config_json)
		ret = write_config(o, p, root, err);
	return ret;
}
