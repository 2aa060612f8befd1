/*
 * The jailer (`banyan jail`): run `banyan run` as an unprivileged user in
 * a root of its own (docs/cli.md, "banyan jail"). The steps, in order:
 * options and every path checked, inherited descriptors closed and the
 * environment cleared, the run arguments rewritten to paths inside the
 * jail, the cgroup joined, the per-VM root built (hard links, bind
 * mounts, device nodes) in a private mount namespace, pivot_root into it,
 * the network namespace joined, optionally a new PID namespace, rlimits,
 * groups dropped, gid and uid set, no_new_privs, Landlock, exec.
 *
 * The jail never writes outside its chroot base and the cgroup tree,
 * except to create a missing writable file the operator named (an
 * overlay, a log) as the jail's user.
 */
#ifndef BANYAN_JAIL_JAIL_H
#define BANYAN_JAIL_JAIL_H

#include <getopt.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

#define JAIL_ERR_LEN	    512
#define JAIL_ID_MAX	    64
#define JAIL_MAX_CGROUPS    16
#define JAIL_MAX_FILES	    64
#define JAIL_MAX_ARGS	    256
#define JAIL_DEFAULT_BASE   "/srv/jailer"
#define JAIL_DEFAULT_NOFILE 2048
#define JAIL_RUN_DIR	    "/run" /* sockets, inside the root */
#define JAIL_CONFIG_FILE    "/config.json"
#define JAIL_EXEC_NAME	    "banyan"
#define JAIL_NAMED_ROOT	    "/run/banyan" /* a named VM's runtime root, inside the root */

/* What the VMM does with a file it is given, which decides how the jail holds it. */
enum jail_file_kind {
	JAIL_FILE_RO,  /* only read: a read-only bind mount */
	JAIL_FILE_RW,  /* read and written: a hard link on the same filesystem, else a bind mount */
	JAIL_FILE_NEW, /* written, created (empty, the jail's user's) when missing: overlays, logs
			*/
	JAIL_FILE_EXEC, /* the VMM's binary and its shared objects: read-only bind mounts */
};

/* A file of the VM: where the operator has it, where the VMM finds it. */
struct jail_file {
	char *host;   /* as given; root building resolves it */
	char *inside; /* absolute, inside the root */
	enum jail_file_kind kind;
	const char *what; /* "kernel", "disk", ... for messages */
};

struct jail_cgroup_kv {
	const char *key; /* a cgroup file: cpu.max, memory.max, pids.max, ... */
	const char *value;
};

/* The jail's own options (before "--"). */
struct jail_opts {
	const char *id;
	uid_t uid;
	gid_t gid;
	const char *chroot_base; /* default JAIL_DEFAULT_BASE */
	const char *netns;	 /* NULL: stay in the jailer's network namespace */
	const char *exec_file;	 /* NULL: this binary */
	struct jail_cgroup_kv cgroups[JAIL_MAX_CGROUPS];
	unsigned int ncgroups;
	rlim_t nofile; /* RLIMIT_NOFILE */
	rlim_t fsize;  /* RLIMIT_FSIZE; RLIM_INFINITY by default */
	bool daemonize;
	bool new_pid_ns;
	int run_argc; /* the `banyan run` arguments after "--" */
	char **run_argv;
};

/* The VM's files and the rewritten command line (paths.c). */
struct jail_plan {
	struct jail_file files[JAIL_MAX_FILES];
	unsigned int nfiles;
	char *argv[JAIL_MAX_ARGS + 1]; /* "banyan", "run", options...; NULL-terminated, owned */
	int argc;
	char *config_json; /* the rewritten --config document for JAIL_CONFIG_FILE; NULL: none */
	char *sockets[4];  /* inside paths of the sockets the VMM creates (API, vsock) */
	unsigned int nsockets;
	char *name;	  /* --name: the named VM's name (checked by the caller), or NULL */
	char *api_socket; /* --api-socket's inside path, or NULL */
};

/*
 * jail_parse_args - the jail's options (argv[0] is "jail") and the run
 * arguments after "--" into @o. Returns 0, 1 for --help, or -EINVAL with
 * a one-line reason in @err (JAIL_ERR_LEN bytes).
 */
int jail_parse_args(int argc, char **argv, struct jail_opts *o, char *err)
    __attribute__((warn_unused_result));

/* jail_id_valid - @id is 1..64 of [A-Za-z0-9-]: a safe path component. */
bool jail_id_valid(const char *id);

/*
 * jail_path_valid - @path is absolute, shorter than PATH_MAX, has no ".."
 * component and no control character.
 */
bool jail_path_valid(const char *path);

/*
 * jail_plan_run - walk the run arguments with @run_opts (banyan run's own
 * option table, so abbreviations and --opt=value are read as run reads
 * them), record each file they name in @p and build the command line the
 * VMM is given inside the jail. --config is read and its paths rewritten
 * the same way (the document is kept for JAIL_CONFIG_FILE). Opens nothing
 * but the --config file. 0, or -EINVAL / -ENOMEM with @err; @p must be
 * released with jail_plan_free either way.
 */
int jail_plan_run(struct jail_plan *p, const struct option *run_opts, int argc, char **argv,
		  char *err) __attribute__((warn_unused_result));

/*
 * jail_plan_add - record a file: @inside NULL puts it at the same path
 * inside the root. 0, or -E2BIG / -ENOMEM with @err.
 */
int jail_plan_add(struct jail_plan *p, const char *host, const char *inside,
		  enum jail_file_kind kind, const char *what, char *err)
    __attribute__((warn_unused_result));

/* jail_plan_free - release what @p holds; it may be reused zeroed. */
void jail_plan_free(struct jail_plan *p);

/*
 * jail_plan_exec - add the VMM's binary (@exec, NULL for this one) at
 * /banyan, the ELF interpreter and the shared objects this process has
 * loaded (the same binary's, at their own paths) and the loader's cache.
 * 0 or -errno with @err.
 */
int jail_plan_exec(struct jail_plan *p, const char *exec, char *err)
    __attribute__((warn_unused_result));

/*
 * jail_check_files - each file exists, is of a kind the VMM accepts, and
 * the jail's uid/gid may read it (and write it, for writable ones) by its
 * mode bits; missing JAIL_FILE_NEW files are created as the jail's user.
 * 0, or -errno with "<what> <path>: <reason>" in @err.
 */
int jail_check_files(const struct jail_opts *o, struct jail_plan *p, char *err)
    __attribute__((warn_unused_result));

/*
 * jail_root_path - <base>/banyan/<id>/root into @buf (PATH_MAX bytes).
 * 0 or -ENAMETOOLONG.
 */
int jail_root_path(const struct jail_opts *o, char *buf) __attribute__((warn_unused_result));

/*
 * jail_root_build - in the (private) mount namespace: create the root
 * (refused when it exists and is not empty), put every file of @p in it,
 * write the --config document, create /run for sockets and the device
 * nodes /dev/kvm, /dev/net/tun, /dev/urandom, /dev/null (the host's numbers, owned by
 * the jail's uid/gid, 0660). 0 or -errno with the step and path in @err.
 */
int jail_root_build(const struct jail_opts *o, const struct jail_plan *p, const char *root,
		    char *err) __attribute__((warn_unused_result));

/*
 * jail_unshare_mount - a new mount namespace whose mounts are all private,
 * so nothing the jail mounts is seen by (or propagated from) the host.
 */
int jail_unshare_mount(char *err) __attribute__((warn_unused_result));

/* jail_pivot - make @root the root (pivot_root) and detach the old one. */
int jail_pivot(const char *root, char *err) __attribute__((warn_unused_result));

/* jail_join_netns - setns into the network namespace file @fd (opened earlier). */
int jail_join_netns(int fd, const char *path, char *err) __attribute__((warn_unused_result));

/*
 * jail_cgroup_apply - put this process in the group banyan/<id> with
 * @o's limits: cgroup v2 where its hierarchy has the controllers (mounted
 * at /sys/fs/cgroup when the kernel has cgroup2 and nothing is mounted
 * there), else the v1 hierarchy of each key's controller. Describes what
 * it did in @desc (JAIL_ERR_LEN bytes). Nothing to do without --cgroup.
 */
int jail_cgroup_apply(const struct jail_opts *o, char *desc, char *err)
    __attribute__((warn_unused_result));

/* jail_close_fds - close every descriptor above 2. */
int jail_close_fds(char *err) __attribute__((warn_unused_result));

/* jail_set_rlimits - RLIMIT_NOFILE and RLIMIT_FSIZE from @o. */
int jail_set_rlimits(const struct jail_opts *o, char *err) __attribute__((warn_unused_result));

/* jail_drop_privileges - no supplementary groups, then gid, uid, no_new_privs. */
int jail_drop_privileges(const struct jail_opts *o, char *err) __attribute__((warn_unused_result));

/*
 * jail_landlock - restrict the process (and the VMM it execs) to the VM's
 * files inside the root. Returns the Landlock ABI version applied, 0 when
 * the kernel has no Landlock (not an error), or -errno with @err.
 */
int jail_landlock(const struct jail_plan *p, char *err) __attribute__((warn_unused_result));

/*
 * jail_pid_ns_fork - unshare a PID namespace and fork: returns 0 in the
 * child (pid 1 of the namespace); in the parent calls @forked (unless
 * NULL) with the child's pid as the host sees it and @arg, then waits for
 * it, forwarding SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, and
 * returns 1 + its exit status (128 + N when killed by signal N).
 * -errno with @err when the namespace or the fork fails.
 */
int jail_pid_ns_fork(void (*forked)(pid_t pid, void *arg), void *arg, char *err)
    __attribute__((warn_unused_result));

/*
 * jail_daemonize - fork; the parent waits until the child has exec'd the
 * VMM (or failed) and returns 1 + its exit status: 1 for running, 1 + 2
 * when the jail failed. The child gets a session of its own and returns
 * 0; its stdio goes to /dev/null at exec (jail_exec).
 */
int jail_daemonize(char *err) __attribute__((warn_unused_result));

/* jail_report_status - a daemonized jail that fails tells its waiting parent @status. */
void jail_report_status(int status);

/*
 * jail_exec - exec the VMM with @p's command line and an empty
 * environment (but BANYAN_RUNTIME_DIR=JAIL_NAMED_ROOT for a named VM);
 * stdio to /dev/null first when @quiet. Returns only on failure, -errno
 * with @err.
 */
int jail_exec(const struct jail_plan *p, bool quiet, char *err);

#endif
