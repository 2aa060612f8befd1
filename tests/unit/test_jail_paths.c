/*
 * The jail's options and its rewriting of the run arguments: ids and
 * paths checked, every file-taking option of banyan run (read with run's
 * own option table, abbreviations and --opt=value included) moved inside
 * the root with the right kind, the rest passed through, --config's
 * document rewritten.
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
#include <unistd.h>

#include "cli/cli.h"
#include "jail/jail.h"

static void test_ids_and_paths(void **state)
{
	(void)state;
	assert_true(jail_id_valid("vm-1"));
	assert_true(jail_id_valid("A"));
	assert_false(jail_id_valid(""));
	assert_false(jail_id_valid("a/b"));
	assert_false(jail_id_valid(".."));
	assert_false(jail_id_valid("a_b"));
	assert_false(
	    jail_id_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	assert_true(jail_path_valid("/srv/jailer"));
	assert_true(jail_path_valid("/a/..b/c.."));
	assert_false(jail_path_valid("srv"));
	assert_false(jail_path_valid("/srv/../etc"));
	assert_false(jail_path_valid("/srv/.."));
	assert_false(jail_path_valid("/srv/a\nb"));
}

/* Parse a jail command line given as one string of space-separated words. */
static int parse(char *line, struct jail_opts *o, char *err)
{
	static char *argv[32]; /* o->run_argv points into it */
	int argc = 0;

	for (char *w = strtok(line, " "); w && argc < 31; w = strtok(NULL, " "))
		argv[argc++] = w;
	argv[argc] = NULL;
	return jail_parse_args(argc, argv, o, err);
}

static void test_options(void **state)
{
	char err[JAIL_ERR_LEN], l1[] = "jail --id v1 --uid 100 --gid 101 --cgroup pids.max=64 "
				       "--resource-limit fsize=1024 --new-pid-ns -- run --cpus 2";
	struct jail_opts o;

	(void)state;
	assert_int_equal(parse(l1, &o, err), 0);
	assert_string_equal(o.id, "v1");
	assert_int_equal(o.uid, 100);
	assert_int_equal(o.gid, 101);
	assert_int_equal(o.ncgroups, 1);
	assert_string_equal(o.cgroups[0].key, "pids.max");
	assert_string_equal(o.cgroups[0].value, "64");
	assert_int_equal(o.fsize, 1024);
	assert_int_equal(o.nofile, JAIL_DEFAULT_NOFILE);
	assert_true(o.new_pid_ns);
	assert_string_equal(o.chroot_base, JAIL_DEFAULT_BASE);
	assert_int_equal(o.run_argc, 2); /* "run" is dropped */
	assert_string_equal(o.run_argv[0], "--cpus");
}

static void expect_refused(const char *line, const char *why)
{
	char err[JAIL_ERR_LEN], buf[256];
	struct jail_opts o;

	snprintf(buf, sizeof(buf), "%s", line);
	assert_int_equal(parse(buf, &o, err), -EINVAL);
	if (!strstr(err, why))
		fail_msg("'%s': '%s' has no '%s'", line, err, why);
}

static void test_options_refused(void **state)
{
	(void)state;
	expect_refused("jail --id a/b --uid 1 --gid 1 -- --kernel /k", "--id 'a/b'");
	expect_refused("jail --id v --uid root --gid 1 -- --kernel /k", "not a numeric id");
	expect_refused("jail --id v --uid 0 --gid 1 -- --kernel /k", "never runs as root");
	expect_refused("jail --id v --uid 1 --gid 0 -- --kernel /k", "never runs as root");
	expect_refused("jail --id v --uid 1 -- --kernel /k", "are required");
	expect_refused("jail --id v --uid 1 --gid 1 --kernel /k", "unknown or incomplete");
	expect_refused("jail --id v --uid 1 --gid 1 /k", "after '--'");
	expect_refused("jail --id v --uid 1 --gid 1 --chroot-base srv -- x", "absolute path");
	expect_refused("jail --id v --uid 1 --gid 1 --netns /run/../x -- x", "absolute path");
	expect_refused("jail --id v --uid 1 --gid 1 --cgroup cgroup.procs=1 -- x", "controller");
	expect_refused("jail --id v --uid 1 --gid 1 --cgroup ../x.max=1 -- x", "controller");
	expect_refused("jail --id v --uid 1 --gid 1 --cgroup pids.max -- x", "KEY=VALUE");
	expect_refused("jail --id v --uid 1 --gid 1 --resource-limit core=1 -- x", "unknown limit");
	expect_refused("jail --id v --uid 1 --gid 1 --resource-limit no-file=8 -- x", "64 or more");
}

/* Plan @line (run options, space-separated) and expect the rewritten line @want. */
static int plan(const char *line, struct jail_plan *p, char *err)
{
	char buf[512], *argv[32];
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *w = strtok(buf, " "); w && argc < 31; w = strtok(NULL, " "))
		argv[argc++] = w;
	*p = (struct jail_plan){0};
	return jail_plan_run(p, cmd_run_options(), argc, argv, err);
}

static char *joined(const struct jail_plan *p)
{
	static char out[1024];

	out[0] = '\0';
	for (int i = 0; i < p->argc; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? " " : "",
			 p->argv[i]);
	return out;
}

static const struct jail_file *file_at(const struct jail_plan *p, const char *inside)
{
	for (unsigned int i = 0; i < p->nfiles; i++)
		if (strcmp(p->files[i].inside, inside) == 0)
			return &p->files[i];
	fail_msg("no file at %s", inside);
	return NULL;
}

static void test_rewrite(void **state)
{
	char err[JAIL_ERR_LEN] = "";
	struct jail_plan p;

	(void)state;
	assert_int_equal(plan("--kern=/img/vmlinux --initrd /img/initrd --cpus 2 "
			      "--disk /d/root.img,ro --disk path=/d/data.img,id=data "
			      "--disk path=/d/base.img,overlay=/d/ov --net tap=tap0 "
			      "--vsock cid=3,socket=/s/v.sock --api-socket /s/api.sock "
			      "--log-file /var/log/vm.log --rng",
			      &p, err),
			 0);
	assert_string_equal(joined(&p),
			    "/banyan run --kernel /kernel --initrd /initrd --cpus 2 "
			    "--disk path=/disk0,ro --disk path=/disk1,id=data "
			    "--disk path=/disk2,overlay=/disk2.overlay --net tap=tap0 "
			    "--vsock cid=3,socket=/run/v.sock --api-socket /run/api.sock "
			    "--log-file /banyan.log --rng");
	assert_string_equal(file_at(&p, "/kernel")->host, "/img/vmlinux");
	assert_int_equal(file_at(&p, "/kernel")->kind, JAIL_FILE_RO);
	assert_int_equal(file_at(&p, "/disk0")->kind, JAIL_FILE_RO);
	assert_int_equal(file_at(&p, "/disk1")->kind, JAIL_FILE_RW);
	assert_int_equal(file_at(&p, "/disk2")->kind, JAIL_FILE_RO); /* under an overlay */
	assert_int_equal(file_at(&p, "/disk2.overlay")->kind, JAIL_FILE_NEW);
	assert_string_equal(file_at(&p, "/disk2.overlay")->host, "/d/ov");
	assert_int_equal(file_at(&p, "/banyan.log")->kind, JAIL_FILE_NEW);
	assert_int_equal(p.nfiles, 7);
	assert_int_equal(p.nsockets, 2);
	assert_null(p.config_json);
	assert_null(p.name);
	assert_string_equal(p.api_socket, "/run/api.sock");
	jail_plan_free(&p);
}

/* --name passes through and is recorded: the jail registers it on the host. */
static void test_rewrite_name(void **state)
{
	char err[JAIL_ERR_LEN] = "";
	struct jail_plan p;

	(void)state;
	assert_int_equal(plan("--kernel /k --name web", &p, err), 0);
	assert_string_equal(joined(&p), "/banyan run --kernel /kernel --name web");
	assert_string_equal(p.name, "web");
	assert_null(p.api_socket);
	jail_plan_free(&p);
}

static void expect_plan_refused(const char *line, const char *why)
{
	char err[JAIL_ERR_LEN] = "";
	struct jail_plan p;

	assert_int_not_equal(plan(line, &p, err), 0);
	if (!strstr(err, why))
		fail_msg("'%s': '%s' has no '%s'", line, err, why);
	jail_plan_free(&p);
}

static void test_rewrite_refused(void **state)
{
	(void)state;
	expect_plan_refused("--kernel vmlinux", "absolute path");
	expect_plan_refused("--kernel /a/../etc/shadow", "absolute path");
	expect_plan_refused("--disk path=d.img", "absolute path");
	expect_plan_refused("--kernel /k --no-such-option", "unknown or incomplete option");
	expect_plan_refused("--kernel /k stray", "unexpected argument 'stray'");
	expect_plan_refused("--kernel", "unknown or incomplete option");
	expect_plan_refused("--kernel /a --kernel /b", "given twice");
	expect_plan_refused("--api-socket /a/x.sock --vsock cid=3,socket=/b/x.sock", "same name");
	expect_plan_refused("--kernel /k --name web --detach", "--daemonize");
}

static void test_rewrite_config(void **state)
{
	char path[] = "/tmp/test_jail_XXXXXX", err[JAIL_ERR_LEN] = "", line[64];
	const char *doc =
	    "{\"boot-source\": {\"kernel_image_path\": \"/img/k\", \"initrd_path\": \"/img/i\"},"
	    " \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 64},"
	    " \"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"/d/r.img\","
	    " \"is_root_device\": true, \"is_read_only\": false}],"
	    " \"vsock\": {\"guest_cid\": 3, \"uds_path\": \"/s/v.sock\"}}";
	struct jail_plan p;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, doc, strlen(doc)), (int)strlen(doc));
	close(fd);
	snprintf(line, sizeof(line), "--config %s --api-socket /s/api", path);
	assert_int_equal(plan(line, &p, err), 0);
	unlink(path);
	assert_string_equal(joined(&p), "/banyan run --config /config.json --api-socket /run/api");
	assert_non_null(p.config_json);
	assert_non_null(strstr(p.config_json, "\"kernel_image_path\":\"/kernel\""));
	assert_non_null(strstr(p.config_json, "\"initrd_path\":\"/initrd\""));
	assert_non_null(strstr(p.config_json, "\"path_on_host\":\"/disk0\""));
	assert_non_null(strstr(p.config_json, "\"uds_path\":\"/run/v.sock\""));
	assert_null(strstr(p.config_json, "/img/"));
	assert_string_equal(file_at(&p, "/disk0")->host, "/d/r.img");
	assert_int_equal(file_at(&p, "/disk0")->kind, JAIL_FILE_RW);
	assert_int_equal(p.nsockets, 2);
	jail_plan_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ids_and_paths),   cmocka_unit_test(test_options),
	    cmocka_unit_test(test_options_refused), cmocka_unit_test(test_rewrite),
	    cmocka_unit_test(test_rewrite_refused), cmocka_unit_test(test_rewrite_name),
	    cmocka_unit_test(test_rewrite_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
