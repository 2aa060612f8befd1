/*
 * `banyan jail`: the jailer's steps in order (src/jail/jail.h). Every
 * failure of the jail itself ends with status 2 and one line naming the
 * step and the path; once the VMM is exec'd its status is the process's.
 */
#include "cli/cli.h"

#include "api/mhd_lib.h"
#include "cli/named.h"

#include "jail/jail.h"
#include "migration/transport.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct jail_ctx {
	struct jail_opts o;
	struct jail_plan p;
	char root[PATH_MAX];
	char cgroup[JAIL_ERR_LEN];
	char err[JAIL_ERR_LEN];
	int netns_fd;
	int landlock; /* the ABI applied; 0: none */
	int name_fd;  /* --name: the host's pid file, locked (the VMM inherits it); or -1 */
};

static void jail_usage(FILE *f)
{
	fprintf(f,
		"usage: banyan jail --id ID --uid UID --gid GID [options] -- <banyan run options>\n"
		"  --id ID               the VM's name: 1..64 letters, digits or '-'\n"
		"  --uid UID, --gid GID  numeric ids the VMM runs as (never 0)\n"
		"  --chroot-base DIR     where roots are built (default " JAIL_DEFAULT_BASE "):\n"
		"                        DIR/banyan/ID/root\n"
		"  --netns PATH          join this network namespace (e.g. /run/netns/NAME)\n"
		"  --cgroup KEY=VALUE    a limit of the VM's cgroup, e.g. cpu.max='50000 100000',\n"
		"                        memory.max=1G, pids.max=64 (repeatable)\n"
		"  --resource-limit no-file=N|fsize=N\n"
		"                        RLIMIT_NOFILE (default %d), RLIMIT_FSIZE (default none)\n"
		"  --new-pid-ns          the VMM is pid 1 of a new PID namespace\n"
		"  --daemonize           detach (new session, stdio on /dev/null) once it runs\n"
		"  --exec-file PATH      the banyan binary to run (default: this one)\n"
		"Paths in the run options are host paths; the VMM sees them at /kernel,\n"
		"/initrd, /diskN, /run/NAME (sockets) and /config.json inside its root.\n"
		"With --name NAME the VM is a named VM (banyan ls, console, logs, stop and\n"
		"ctl --name find it): its runtime directory is " JAIL_NAMED_ROOT "/NAME in the\n"
		"root, and the host's entry links to it; --detach is --daemonize here.\n",
		JAIL_DEFAULT_NOFILE);
}

/* The jail's own failure: one line, status 2 (told to a waiting daemon parent too). */
static int step_failed(const char *step, const char *err)
{
	fprintf(stderr, "banyan jail: %s: %s\n", step, err);
	jail_report_status(EXIT_USAGE);
	return EXIT_USAGE;
}

/*
 * The libraries the VMM loads at run time rather than links (the API's
 * libmicrohttpd, GnuTLS for TLS migrations), loaded here too, so that
 * jail_plan_exec, which takes this process's loaded objects, puts them and
 * what they need in the jail's root. Loaded whether or not the VM will
 * use them: a few more read-only files in the root, and a VMM whose API
 * can always start.
 */
static void jail_load_runtime_libs(void)
{
	char why[256];

	if (!mhd_lib_load(why, sizeof(why)))
		log_warn("the jail's root will lack the API's library: %s", why);
	(void)mig_tls_lib_load();
}

/* Before any fork or namespace: the plan of files and the rewritten command line. */
static int jail_prepare(struct jail_ctx *c)
{
	if (geteuid() != 0)
		return step_failed("start", "banyan jail must run as root (it drops to --uid)");
	if (jail_close_fds(c->err) < 0)
		return step_failed("descriptors", c->err);
	/* The host's runtime root, found (and kept) before the environment goes. */
	(void)named_root(c->err, sizeof(c->err));
	clearenv();
	if (jail_plan_run(&c->p, cmd_run_options(), c->o.run_argc, c->o.run_argv, c->err) < 0)
		return step_failed("run arguments", c->err);
	if (c->p.name && named_check(c->p.name) < 0) {
		snprintf(
		    c->err, sizeof(c->err),
		    "--name '%s': 1..%d of A-Z a-z 0-9 _ . -, beginning with a letter or digit",
		    c->p.name, NAMED_MAX);
		return step_failed("run arguments", c->err);
	}
	jail_load_runtime_libs();
	if (jail_plan_exec(&c->p, c->o.exec_file, c->err) < 0)
		return step_failed("exec file", c->err);
	if (jail_check_files(&c->o, &c->p, c->err) < 0)
		return step_failed("files", c->err);
	if (jail_root_path(&c->o, c->root) < 0)
		return step_failed("root", "the chroot base path is too long");
	if (c->o.netns) {
		c->netns_fd = open(c->o.netns, O_RDONLY | O_CLOEXEC);
		if (c->netns_fd < 0) {
			snprintf(c->err, sizeof(c->err), "%s: %s", c->o.netns, strerror(errno));
			return step_failed("network namespace", c->err);
		}
	}
	return 0;
}

/* ROOT/NAME/@file on the host: a link to @inside's place in the jail's root. */
static int named_link(const struct jail_ctx *c, const char *file, const char *inside)
{
	char link[NAMED_PATH], target[PATH_MAX + NAMED_PATH];
	int ret = named_path(c->p.name, file, link, sizeof(link));

	if (ret < 0)
		return ret;
	snprintf(target, sizeof(target), "%s%s", c->root, inside);
	(void)unlink(link);
	return symlink(target, link) < 0 ? -errno : 0;
}

/*
 * --name: the host's entry for a VM whose runtime directory is inside its
 * root (docs/operations.md, "Named VMs in a jail"). Its pid file is the
 * host's own, holding the VMM's pid as the host sees it and locked by a
 * descriptor the VMM inherits, so the name is held exactly as long as the
 * VMM lives; api.sock, console.sock and vm.log link into the root, where
 * the VMM makes them. Done before pivot_root, while host paths are seen.
 */
static int jail_named_register(struct jail_ctx *c)
{
	char dir[NAMED_PATH], con[NAMED_PATH + 16], log[NAMED_PATH + 16], api[NAMED_PATH + 16];
	int ret, fl;

	snprintf(dir, sizeof(dir), JAIL_NAMED_ROOT "/%s/", c->p.name);
	snprintf(con, sizeof(con), "%s" NAMED_CONSOLE, dir);
	snprintf(log, sizeof(log), "%s" NAMED_LOG, dir);
	snprintf(api, sizeof(api), "%s" NAMED_API, dir);
	c->name_fd = ret = named_claim(c->p.name);
	if (ret >= 0)
		ret = named_link(c, NAMED_CONSOLE, con);
	if (ret >= 0)
		ret = named_link(c, NAMED_LOG, log);
	if (ret >= 0)
		ret = named_link(c, NAMED_API, c->p.api_socket ? c->p.api_socket : api);
	/* The lock goes with the exec: the VMM holds it without knowing. */
	if (ret >= 0 && ((fl = fcntl(c->name_fd, F_GETFD)) < 0 ||
			 fcntl(c->name_fd, F_SETFD, fl & ~FD_CLOEXEC) < 0))
		ret = -errno;
	if (ret >= 0)
		return 0;
	snprintf(c->err, sizeof(c->err), "%s: %s", c->p.name,
		 ret == -EBUSY ? "a VM of this name is running" : strerror(-ret));
	return step_failed("name", c->err);
}

/* --new-pid-ns: the pid file gets pid 1's pid as the host sees it. */
static void jail_named_forked(pid_t pid, void *arg)
{
	struct jail_ctx *c = arg;

	if (c->name_fd >= 0 && named_set_pid(c->name_fd, pid) < 0)
		log_warn("jail %s: cannot write the VMM's pid for --name %s", c->o.id, c->p.name);
}

/* The root, entered: cgroup, mount namespace, pivot_root, network namespace. */
static int jail_enter(struct jail_ctx *c)
{
	if (jail_cgroup_apply(&c->o, c->cgroup, c->err) < 0)
		return step_failed("cgroup", c->err);
	if (jail_unshare_mount(c->err) < 0)
		return step_failed("mount namespace", c->err);
	if (jail_root_build(&c->o, &c->p, c->root, c->err) < 0)
		return step_failed("root", c->err);
	if (jail_pivot(c->root, c->err) < 0)
		return step_failed("pivot_root", c->err);
	if (c->netns_fd >= 0 && jail_join_netns(c->netns_fd, c->o.netns, c->err) < 0)
		return step_failed("network namespace", c->err);
	return 0;
}

/* The last steps as root, then as the VM's user. */
static int jail_lower(struct jail_ctx *c)
{
	if (jail_set_rlimits(&c->o, c->err) < 0)
		return step_failed("rlimits", c->err);
	if (jail_drop_privileges(&c->o, c->err) < 0)
		return step_failed("privileges", c->err);
	c->landlock = jail_landlock(&c->p, c->err);
	if (c->landlock < 0)
		return step_failed("landlock", c->err);
	return 0;
}

/* One line with every layer, so an operator sees what holds the VM. */
static void jail_report(const struct jail_ctx *c)
{
	char ll[48], rl[64];

	snprintf(ll, sizeof(ll), c->landlock ? "landlock ABI %d" : "no landlock (kernel lacks it)",
		 c->landlock);
	if (c->o.fsize == RLIM_INFINITY)
		snprintf(rl, sizeof(rl), "nofile %lu", (unsigned long)c->o.nofile);
	else
		snprintf(rl, sizeof(rl), "nofile %lu fsize %lu", (unsigned long)c->o.nofile,
			 (unsigned long)c->o.fsize);
	log_info("jail %s: root %s (mount namespace, pivot_root); %s; %s; %s; uid %u gid %u, "
		 "no supplementary groups, no_new_privs; rlimits %s; %s",
		 c->o.id, c->root, c->o.netns ? c->o.netns : "host network namespace",
		 c->o.new_pid_ns ? "new PID namespace (the VMM is pid 1)" : "host PID namespace",
		 c->cgroup, c->o.uid, c->o.gid, rl, ll);
	for (unsigned int i = 0; i < c->p.nsockets; i++)
		log_info("jail %s: socket %s%s", c->o.id, c->root, c->p.sockets[i]);
	if (c->p.name)
		log_info("jail %s: named VM %s, its runtime directory %s" JAIL_NAMED_ROOT "/%s",
			 c->o.id, c->p.name, c->root, c->p.name);
	log_flush();
}

static int jail_main(struct jail_ctx *c)
{
	int ret;

	if (c->o.daemonize && (ret = jail_daemonize(c->err)) != 0)
		return ret < 0 ? step_failed("daemonize", c->err) : ret - 1;
	if (c->p.name && (ret = jail_named_register(c)) != 0)
		return ret;
	ret = jail_enter(c);
	if (ret == 0 && c->o.new_pid_ns &&
	    (ret = jail_pid_ns_fork(jail_named_forked, c, c->err)) > 0)
		_exit(ret - 1); /* the waiting parent is in the root too: no exit handlers there */
	if (ret < 0)
		return step_failed("PID namespace", c->err);
	if (ret == 0)
		ret = jail_lower(c);
	if (ret != 0)
		return ret;
	jail_report(c);
	jail_exec(&c->p, c->o.daemonize, c->err);
	return step_failed("exec", c->err);
}

int cmd_jail(int argc, char **argv)
{
	struct jail_ctx c = {.netns_fd = -1, .name_fd = -1};
	int ret = jail_parse_args(argc, argv, &c.o, c.err);

	if (ret == 1) {
		jail_usage(stdout);
		return 0;
	}
	if (ret < 0) {
		fprintf(stderr, "banyan jail: %s (see banyan jail --help)\n", c.err);
		return EXIT_USAGE;
	}
	ret = jail_prepare(&c);
	if (ret == 0)
		ret = jail_main(&c);
	jail_plan_free(&c.p);
	return ret;
}
