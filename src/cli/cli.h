/* The command-line verbs; each returns the process exit status. */
#ifndef BANYAN_CLI_CLI_H
#define BANYAN_CLI_CLI_H

#include "security/seccomp.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * Exit statuses: a contract supervisors can act on (docs/cli.md).
 */
#define EXIT_GUEST_OK	  0   /* guest powered off (or rebooted, without --on-reboot restart) */
#define EXIT_GUEST_CRASH  1   /* triple fault, KVM internal error, unhandled exit */
#define EXIT_USAGE	  2   /* bad option or input; KVM unavailable: nothing was started */
#define EXIT_HOST_ERROR	  3   /* the host failed after the VM started */
#define EXIT_GUEST_HALTED 4   /* every vCPU halted with no interrupt controller (tests) */
#define EXIT_SIGNAL_BASE  128 /* stopped by a signal: 128 + its number, as shells report */

int cmd_run(int argc, char **argv);
int cmd_ctl(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
/* cmd_firecracker - the process when invoked as `firecracker` (cmd_firecracker.c). */
int cmd_firecracker(int argc, char **argv);
int cmd_jail(int argc, char **argv);
/* Named VMs (docs/operations.md): cmd_ls.c, cmd_console.c, cmd_logs.c, cmd_stop.c. */
int cmd_ls(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_stop(int argc, char **argv);

/*
 * ctl_call - one quiet API request over the Unix socket @sock (cmd_ctl.c):
 * @method @path with @body (NULL: none), at most @timeout_s seconds. The
 * reply's body (NUL-terminated, the caller frees it) goes to *@reply when
 * @reply is not NULL. Returns the HTTP status, or -1 when nothing answered.
 */
long ctl_call(const char *sock, const char *method, const char *path, const char *body,
	      long timeout_s, char **reply);

struct option;

/* cmd_run_options - banyan run's option table (the jail reads the run arguments with it). */
const struct option *cmd_run_options(void);

struct snapshot_image;

/* What banyan restore asks of the run loop (cmd_run.c). */
struct run_snapshot_args {
	struct snapshot_image *img; /* opened and checked; the run loop closes it */
	int console_fd;		    /* where the guest's serial console goes */
	const char *api_path;	    /* NULL: no API */
	bool paused;		    /* do not run the vCPUs until resumed */
	int clone_index;	    /* -1, or the clone number (its identity) */
	/* The operator's: overlays at PREFIX.vdX.overlay (clones: every writable disk); NULL: none
	 */
	const char *overlay_prefix;
	enum sandbox_mode sandbox; /* --seccomp */
	uint64_t t0_ns;		   /* when the restore began (now_ns), for its timing log line */
	const char *name; /* --name: a named VM (cli/named.h; console_fd unused), or NULL */
	bool detach;	  /* --detach (with a name) */
	bool log_given;	  /* --log-file: the log does not go to vm.log */
	/* Clones: a byte goes here once the vCPUs run (the supervisor counts them); 0: none */
	int started_fd;
};

/* run_snapshot - restore and run a VM in this process; returns the exit status. */
int run_snapshot(const struct run_snapshot_args *a);

#endif
