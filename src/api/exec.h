/*
 * The API's executor: one thread that runs every request's handler, in the
 * order they arrive. The HTTP thread only parses and answers; whatever a
 * request makes the VMM do (snapshots, migration, clones, files, KVM state)
 * runs here, under its own seccomp role ("api-exec"), so the thread that
 * reads clients' bytes keeps a small allowlist (docs/security.md).
 */
#ifndef BANYAN_API_EXEC_H
#define BANYAN_API_EXEC_H

#include "api/api.h"

#include <stdbool.h>
#include <stddef.h>

/* One request handed to the executor; the submitter owns it until done() runs. */
struct api_job {
	struct api_job *next;
	const char *method, *url, *body;
	size_t body_len;
	struct api_reply reply;		   /* filled before done() */
	void (*done)(struct api_job *job); /* on the executor's thread, or the submitter's */
	void *opaque;			   /* the submitter's */
};

struct api_exec;

/*
 * Start the executor's thread for @ctl. Called before the process's main
 * thread sandboxes itself, so the thread's filter is its own role's only.
 * Returns 0 or -errno.
 */
int api_exec_start(struct api_ctl *ctl, struct api_exec **out);

/*
 * Queue @job; its done() runs once the handler answered. After
 * api_exec_stop() began, done() runs at once with a 503.
 */
void api_exec_submit(struct api_exec *ex, struct api_job *job);

/*
 * Let the running handler finish, answer every queued job with a 503 and
 * end the thread. NULL is allowed.
 */
void api_exec_stop(struct api_exec *ex);

#endif
