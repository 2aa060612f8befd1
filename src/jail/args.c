/* The jail's own options, checked before anything is touched. */
#include "jail/jail.h"

#include "util/errmsg.h"
#include "util/parse.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#define fail(err, ...) errmsg_set(err, JAIL_ERR_LEN, -EINVAL, __VA_ARGS__)

enum {
	OPT_ID = 256,
	OPT_UID,
	OPT_GID,
	OPT_CHROOT_BASE,
	OPT_NETNS,
	OPT_CGROUP,
	OPT_RLIMIT,
	OPT_DAEMONIZE,
	OPT_NEW_PID_NS,
	OPT_EXEC_FILE,
	OPT_HELP,
};

static const struct option jail_options[] = {
    {"id", required_argument, NULL, OPT_ID},
    {"uid", required_argument, NULL, OPT_UID},
    {"gid", required_argument, NULL, OPT_GID},
    {"chroot-base", required_argument, NULL, OPT_CHROOT_BASE},
    {"netns", required_argument, NULL, OPT_NETNS},
    {"cgroup", required_argument, NULL, OPT_CGROUP},
    {"resource-limit", required_argument, NULL, OPT_RLIMIT},
    {"daemonize", no_argument, NULL, OPT_DAEMONIZE},
    {"new-pid-ns", no_argument, NULL, OPT_NEW_PID_NS},
    {"exec-file", required_argument, NULL, OPT_EXEC_FILE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

bool jail_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > JAIL_ID_MAX)
		return false;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

bool jail_path_valid(const char *path)
{
	const char *p;

	if (path[0] != '/' || strlen(path) >= PATH_MAX)
		return false;
	for (p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	for (p = path; (p = strstr(p, "..")); p += 2)
		if (p[-1] == '/' && (p[2] == '/' || p[2] == '\0'))
			return false;
	return true;
}

/* A numeric uid or gid: never 0 (the jail exists to leave root), never -1. */
static int parse_id_number(const char *opt, const char *s, uint32_t *out, char *err)
{
	uint64_t v;

	if (parse_uint(s, 0, UINT32_MAX - 1, &v) < 0)
		return fail(err, "--%s '%s' is not a numeric id", opt, s);
	if (v == 0)
		return fail(err, "--%s 0: the VMM never runs as root in a jail", opt);
	*out = (uint32_t)v;
	return 0;
}

/*
 * --cgroup KEY=VALUE: KEY a controller's file (controller.name, lower
 * case, digits, '_' and '.'; never cgroup.*, which belongs to the jail),
 * VALUE one line.
 */
static int parse_cgroup(struct jail_opts *o, char *arg, char *err)
{
	char *eq = strchr(arg, '=');
	const char *key = arg, *dot;

	if (!eq || eq == arg)
		return fail(err, "--cgroup '%s': expected KEY=VALUE, e.g. pids.max=64", arg);
	*eq = '\0';
	dot = strchr(key, '.');
	if (!dot || dot == key || !dot[1] ||
	    strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_.") != strlen(key) ||
	    strncmp(key, "cgroup.", 7) == 0)
		return fail(err, "--cgroup: '%s' is not a controller's file (e.g. cpu.max)", key);
	if (strpbrk(eq + 1, "\n\r") || strlen(eq + 1) > 256)
		return fail(err, "--cgroup %s: the value must be one short line", key);
	if (o->ncgroups == JAIL_MAX_CGROUPS)
		return fail(err, "at most %d --cgroup options", JAIL_MAX_CGROUPS);
	o->cgroups[o->ncgroups++] = (struct jail_cgroup_kv){key, eq + 1};
	return 0;
}

/* --resource-limit no-file=N | fsize=N (bytes; "unlimited" for no limit). */
static int parse_rlimit(struct jail_opts *o, char *arg, char *err)
{
	char *eq = strchr(arg, '=');
	uint64_t v = RLIM_INFINITY;

	if (!eq)
		return fail(err, "--resource-limit '%s': expected no-file=N or fsize=N", arg);
	*eq++ = '\0';
	if (strcmp(eq, "unlimited") != 0 && parse_uint(eq, 1, RLIM_INFINITY - 1, &v) < 0)
		return fail(err, "--resource-limit %s: '%s' is not a number", arg, eq);
	if (strcmp(arg, "no-file") == 0) {
		if (v == RLIM_INFINITY || v < 64)
			return fail(err, "--resource-limit no-file must be 64 or more");
		o->nofile = v;
	} else if (strcmp(arg, "fsize") == 0) {
		o->fsize = v;
	} else {
		return fail(err, "--resource-limit: unknown limit '%s' (no-file, fsize)", arg);
	}
	return 0;
}

static int parse_path_opt(const char *opt, const char *arg, const char **out, char *err)
{
	if (!jail_path_valid(arg))
		return fail(err, "--%s '%s': an absolute path without '..' is needed", opt, arg);
	*out = arg;
	return 0;
}

static int parse_one(struct jail_opts *o, int opt, char *arg, char *err)
{
	switch (opt) {
	case OPT_ID:
		if (!jail_id_valid(arg))
			return fail(err, "--id '%s': 1 to %d letters, digits or '-'", arg,
				    JAIL_ID_MAX);
		o->id = arg;
		return 0;
	case OPT_UID:
		return parse_id_number("uid", arg, &o->uid, err);
	case OPT_GID:
		return parse_id_number("gid", arg, &o->gid, err);
	case OPT_CHROOT_BASE:
		return parse_path_opt("chroot-base", arg, &o->chroot_base, err);
	case OPT_NETNS:
		return parse_path_opt("netns", arg, &o->netns, err);
	case OPT_EXEC_FILE:
		return parse_path_opt("exec-file", arg, &o->exec_file, err);
	case OPT_CGROUP:
		return parse_cgroup(o, arg, err);
	case OPT_RLIMIT:
		return parse_rlimit(o, arg, err);
	case OPT_DAEMONIZE:
		o->daemonize = true;
		return 0;
	case OPT_NEW_PID_NS:
		o->new_pid_ns = true;
		return 0;
	}
	return -EINVAL;
}

/* After the options: "--", an optional "run", then what `banyan run` is given. */
static int take_run_args(struct jail_opts *o, int argc, char **argv, char *err)
{
	if (!o->id || !o->uid || !o->gid)
		return fail(err, "--id, --uid and --gid are required");
	if (optind >= argc || strcmp(argv[optind - 1], "--") != 0)
		return fail(err, "the run arguments come after '--'");
	o->run_argc = argc - optind;
	o->run_argv = argv + optind;
	if (strcmp(o->run_argv[0], "run") == 0) {
		o->run_argc--;
		o->run_argv++;
	}
	return 0;
}

int jail_parse_args(int argc, char **argv, struct jail_opts *o, char *err)
{
	int opt, ret;

	*o = (struct jail_opts){.chroot_base = JAIL_DEFAULT_BASE,
				.nofile = JAIL_DEFAULT_NOFILE,
				.fsize = RLIM_INFINITY};
	opterr = 0;
	optind = 1;
	/* '+': stop at "--" or the first non-option, which belong to banyan run. */
	while ((opt = getopt_long(argc, argv, "+", jail_options, NULL)) != -1) {
		if (opt == OPT_HELP)
			return 1;
		if (opt == '?')
			return fail(err, "unknown or incomplete option '%s'", argv[optind - 1]);
		ret = parse_one(o, opt, optarg, err);
		if (ret < 0)
			return ret;
	}
	return take_run_args(o, argc, argv, err);
}
