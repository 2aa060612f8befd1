/*
 * PUT /banyan/v1/clones: run N clones of a snapshot in a supervisor process
 * of their own, `banyan restore --clones`, detached from the VMM that was
 * asked (docs/snapshots.md, "Clones"). The clones outlive that VMM.
 */
#ifndef BANYAN_API_CLONES_H
#define BANYAN_API_CLONES_H

#include <json-c/json.h>
#include <sys/types.h>

#include "snapshot/format.h"

#define API_CLONES_MAX	1024 /* as banyan restore --clones */
#define API_CLONES_NAME 61   /* a name's bytes with its NUL: NAME-1024 fits a VM name */

struct api_clones {
	const char *snapshot_dir;   /* absolute */
	unsigned int count;	    /* 1..API_CLONES_MAX */
	const char *console_prefix; /* absolute: consoles PREFIX.i, log PREFIX.log */
	const char *api_prefix;	    /* absolute, or NULL: the clones serve no API */
	const char *name;	    /* or NULL: the clones are named NAME-1, NAME-2, ... */
};

/*
 * api_clones_start - check @c->snapshot_dir (opened and closed again, the
 * memory checksum left to the supervisor), open @c->console_prefix.log for
 * appending, and start `/proc/self/exe restore --clones ...` in a new
 * session through a double fork, stdin from /dev/null, stdout and stderr
 * into the log. Safe from any thread of a multithreaded process: between
 * fork and exec only async-signal-safe calls. The grandchild's signal mask
 * and dispositions are reset and it inherits no descriptor but 0, 1, 2.
 * Returns 0 with the supervisor's pid in *@pid once it has exec'd, or
 * -errno with a one-line reason in @err (SNAP_ERR_LEN bytes); nothing is
 * left running then.
 */
int api_clones_start(const struct api_clones *c, pid_t *pid, char *err)
    __attribute__((warn_unused_result));

/*
 * api_clones_helper_start - start the process that starts clone
 * supervisors from now on, before the calling process installs its
 * seccomp filters: a supervisor exec'd from a sandboxed thread would
 * inherit that thread's filter. The helper is this binary run afresh
 * (api_clones_helper_main); it runs no filter, takes requests on a Unix
 * socket (the fields of struct api_clones, nothing else: it builds the
 * command line itself, `--seccomp @seccomp_mode` included), opens the log,
 * double-forks as api_clones_start does and ends with the calling
 * process. Returns 0 or -errno (then clones start in-process).
 */
int api_clones_helper_start(const char *seccomp_mode);

/*
 * api_clones_helper_main - `banyan clones-helper MODE` (hidden), as
 * api_clones_helper_start runs it: serves the socket on fd 3 until the
 * process that started it ends. Returns the exit status.
 */
int api_clones_helper_main(int argc, char **argv);

/*
 * api_clones_reply - {"supervisor_pid", "log", "clones": [{"console",
 * "api_socket", "name"}, ...]} for @c started as @pid; NULL when out of memory.
 */
json_object *api_clones_reply(const struct api_clones *c, pid_t pid);

#endif
