/*
 * Named VMs' runtime directories (cli/named.h): which names are accepted,
 * where each user's root is, and the pid file's lock: a name is held by
 * one live process, a dead holder's files are stale and cleaned.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/named.h"

static char root[64];

static void test_names(void **state)
{
	char max[NAMED_MAX + 2];

	(void)state;
	assert_int_equal(named_check("web"), 0);
	assert_int_equal(named_check("Web-1.test_2"), 0);
	assert_int_equal(named_check("0"), 0);
	memset(max, 'a', NAMED_MAX);
	max[NAMED_MAX] = '\0';
	assert_int_equal(named_check(max), 0);
	max[NAMED_MAX] = 'a';
	max[NAMED_MAX + 1] = '\0';
	assert_int_equal(named_check(max), -EINVAL);
	assert_int_equal(named_check(""), -EINVAL);
	assert_int_equal(named_check(NULL), -EINVAL);
	assert_int_equal(named_check("."), -EINVAL);
	assert_int_equal(named_check(".."), -EINVAL);
	assert_int_equal(named_check(".hidden"), -EINVAL);
	assert_int_equal(named_check("-rf"), -EINVAL);
	assert_int_equal(named_check("a/b"), -EINVAL);
	assert_int_equal(named_check("../etc"), -EINVAL);
	assert_int_equal(named_check("a b"), -EINVAL);
	assert_int_equal(named_check("a\nb"), -EINVAL);
	assert_int_equal(named_check("caf\xc3\xa9"), -EINVAL);
}

static void test_roots(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(named_root_for(0, "/run/user/0", NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/run/banyan");
	assert_int_equal(named_root_for(1000, "/run/user/1000", NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/run/user/1000/banyan");
	assert_int_equal(named_root_for(1000, NULL, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/tmp/banyan-1000");
	assert_int_equal(named_root_for(1000, "", "", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/tmp/banyan-1000");
	/* A relative XDG_RUNTIME_DIR is not trusted (the spec wants it absolute). */
	assert_int_equal(named_root_for(1000, "run", NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/tmp/banyan-1000");
	assert_int_equal(named_root_for(0, NULL, "/srv/vms", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/srv/vms");
	assert_int_equal(named_root_for(1000, "/run/user/1000", NULL, buf, 8), -ENAMETOOLONG);
}

static void test_paths(void **state)
{
	char buf[NAMED_PATH], want[NAMED_PATH];

	(void)state;
	assert_int_equal(named_path("web", NAMED_CONSOLE, buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "%s/web/console.sock", root);
	assert_string_equal(buf, want);
	assert_int_equal(named_path("web", NULL, buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "%s/web", root);
	assert_string_equal(buf, want);
	assert_int_equal(named_path("..", NAMED_PID, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(named_path("web", NAMED_PID, buf, 10), -ENAMETOOLONG);
}

static bool exists(const char *name, const char *file)
{
	char path[NAMED_PATH];
	struct stat st;

	assert_int_equal(named_path(name, file, path, sizeof(path)), 0);
	return lstat(path, &st) == 0;
}

static void test_claim(void **state)
{
	struct stat st;
	pid_t pid = 0;
	int fd;

	(void)state;
	fd = named_claim("vm1");
	assert_true(fd >= 0);
	assert_int_equal(stat(root, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_true(named_alive("vm1", &pid));
	assert_int_equal(pid, getpid());
	assert_false(named_stale("vm1"));
	/* Held: a second claim (another open file, as another process) is refused. */
	assert_int_equal(named_claim("vm1"), -EBUSY);
	named_clean("vm1"); /* never touches a live VM's files */
	assert_true(exists("vm1", NAMED_PID));
	named_release("vm1", fd);
	assert_false(exists("vm1", NAMED_PID));
	assert_false(named_alive("vm1", &pid));
	assert_false(named_stale("vm1"));
}

/* A VMM killed holding the name: stale, cleaned, and the name free again. */
static void test_dead_holder(void **state)
{
	char path[NAMED_PATH];
	pid_t child, pid;
	int st, fd;

	(void)state;
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		fd = named_claim("vm2");
		if (fd >= 0 && named_path("vm2", NAMED_CONSOLE, path, sizeof(path)) == 0)
			fclose(fopen(path, "w"));
		_exit(fd >= 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_false(named_alive("vm2", &pid));
	assert_true(named_stale("vm2"));
	named_clean("vm2");
	assert_false(named_stale("vm2"));
	assert_false(exists("vm2", NAMED_PID));
	assert_false(exists("vm2", NAMED_CONSOLE));
	/* A new VMM takes the name over a dead one's leftovers without a clean too. */
	child = fork();
	if (child == 0)
		_exit(named_claim("vm2") >= 0 ? 0 : 1);
	assert_int_equal(waitpid(child, &st, 0), child);
	fd = named_claim("vm2");
	assert_true(fd >= 0);
	named_release("vm2", fd);
}

/*
 * A jailed VMM's entry (links into its root, the pid it was given): the
 * next VMM of the name never writes through the old vm.log link, and the
 * pid named_set_pid writes is the one read back.
 */
static void test_jailed_entry(void **state)
{
	char path[NAMED_PATH], target[NAMED_PATH + 16];
	struct stat st;
	pid_t pid = 0;
	int fd;

	(void)state;
	fd = named_claim("vm4");
	assert_true(fd >= 0);
	assert_int_equal(named_set_pid(fd, getppid()), 0);
	assert_true(named_alive("vm4", &pid));
	assert_int_equal(pid, getppid());
	assert_int_equal(named_path("vm4", NAMED_LOG, path, sizeof(path)), 0);
	snprintf(target, sizeof(target), "%s.jail-log", root);
	fclose(fopen(target, "w"));
	assert_int_equal(symlink(target, path), 0);
	named_release("vm4", fd);
	fd = named_claim("vm4");
	assert_true(fd >= 0);
	assert_int_equal(lstat(path, &st), -1); /* the link is gone, its target kept */
	assert_int_equal(stat(target, &st), 0);
	named_release("vm4", fd);
	unlink(target);
}

/* A root someone else could write (or a link to one) is refused, not used. */
static void test_unsafe_root(void **state)
{
	char dir[NAMED_PATH];
	int fd;

	(void)state;
	fd = named_claim("vm3");
	assert_true(fd >= 0);
	named_release("vm3", fd);
	assert_int_equal(named_path("vm3", NULL, dir, sizeof(dir)), 0);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(named_claim("vm3"), -EPERM);
	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(chmod(root, 0757), 0);
	assert_int_equal(named_claim("vm3"), -EPERM);
	assert_int_equal(chmod(root, 0700), 0);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(symlink("/tmp", dir), 0);
	assert_int_equal(named_claim("vm3"), -EPERM);
	assert_int_equal(unlink(dir), 0);
}

/* dir/file, as a path into @buf. */
static const char *at(char *buf, const char *dir, const char *file)
{
	int n = snprintf(buf, NAMED_PATH, "%s/%s", dir, file);

	assert_true(n > 0 && n < NAMED_PATH);
	return buf;
}

/*
 * named_resolve and its users: links of ours in directories only we can
 * write are followed (relative or absolute, chained); a link in a
 * directory others can write, or one another user owns, is refused, and
 * so is the wrong kind of file or a loop.
 */
static void test_resolve(void **state)
{
	char top[NAMED_PATH], jail[NAMED_PATH], a[NAMED_PATH], b[NAMED_PATH];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, srv;

	(void)state;
	assert_true(snprintf(top, sizeof(top), "%s/../resolve", root) < (int)sizeof(top));
	assert_int_equal(mkdir(top, 0700), 0);
	fclose(fopen(at(a, top, "file"), "w"));
	assert_int_equal(symlink(a, at(b, top, "abs")), 0);
	assert_int_equal(symlink("abs", at(b, top, "rel")), 0);
	fd = named_open(at(b, top, "rel"));
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(named_resolve(at(b, top, "rel"), S_IFSOCK), -ENOTSOCK);
	assert_int_equal(symlink("loop", at(b, top, "loop")), 0);
	assert_int_equal(named_resolve(b, 0), -ELOOP);
	/* A directory others write, as a jail's run directory is to root. */
	at(jail, top, "jail");
	assert_int_equal(mkdir(jail, 0700), 0);
	assert_int_equal(chmod(jail, 0777), 0);
	assert_int_equal(symlink(a, at(b, jail, "log")), 0);
	assert_int_equal(named_open(b), -ELOOP);
	assert_string_not_equal(named_strerror(-ELOOP), strerror(ELOOP));
	assert_int_equal(chmod(jail, 0700), 0);
	fd = named_open(b);
	assert_true(fd >= 0);
	close(fd);
	if (geteuid() == 0) { /* a link another user owns */
		assert_int_equal(lchown(b, 64123, 64123), 0);
		assert_int_equal(named_open(b), -ELOOP);
	}
	/* A socket, reached through a link of ours, never through the other kind. */
	srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", at(a, jail, "api.sock")) <
		    (int)sizeof(sa.sun_path));
	assert_int_equal(bind(srv, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(srv, 4), 0);
	assert_int_equal(symlink(a, at(b, top, "api.sock")), 0);
	fd = named_connect(b);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(named_connect(at(b, top, "file")), -ENOTSOCK);
	assert_int_equal(chmod(jail, 0777), 0);
	assert_int_equal(symlink(a, at(b, jail, "api2.sock")), 0);
	assert_int_equal(named_connect(b), -ELOOP);
	close(srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),	cmocka_unit_test(test_roots),
	    cmocka_unit_test(test_paths),	cmocka_unit_test(test_claim),
	    cmocka_unit_test(test_dead_holder), cmocka_unit_test(test_jailed_entry),
	    cmocka_unit_test(test_unsafe_root), cmocka_unit_test(test_resolve),
	};
	char tmpl[] = "/tmp/banyan-named-XXXXXX", cmd[128];
	int ret;

	if (!mkdtemp(tmpl))
		return 1;
	/* A root of our own below the temporary directory: named_claim makes it. */
	snprintf(root, sizeof(root), "%s/root", tmpl);
	setenv("BANYAN_RUNTIME_DIR", root, 1);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	return system(cmd) == 0 ? ret : 1;
}
