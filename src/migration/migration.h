/*
 * Live migration (docs/migration.md): a running VM moves to another Banyan
 * process, on this host or another, over the stream of stream.h.
 *
 * The source (mig_source_*) runs in a thread of its own: it sends the
 * machine's configuration, which the destination checks, then all memory
 * while the guest runs, then the pages dirtied since, round after round,
 * until the final pause is predicted to fit the downtime target; then it
 * pauses the VM, sends the rest and the state, and waits for the
 * destination to confirm. Until it lets go (GO), any failure resumes the
 * VM here; after the destination confirms, the VM stops here with
 * VM_EXIT_MIGRATED. The destination (mig_incoming) builds the machine
 * from the stream, loads it, and hands it to the run loop paused.
 */
#ifndef BANYAN_MIGRATION_MIGRATION_H
#define BANYAN_MIGRATION_MIGRATION_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/transport.h"

struct vm;
struct vmcfg;
struct mig_postcopy;

#define MIG_DEFAULT_DOWNTIME_MS 100
#define MIG_MAX_ROUNDS		30 /* dirty rounds before the final pause regardless */

/* When the source switches to post-copy (docs/migration.md, "Post-copy"). */
enum mig_postcopy_mode {
	MIG_POSTCOPY_OFF,  /* never: pre-copy until it converges or the round limit */
	MIG_POSTCOPY_AUTO, /* when pre-copy does not converge (round limit, throttle at its cap) */
	MIG_POSTCOPY_NOW,  /* right after the first round (tests, or a guest known to be busy) */
};

struct mig_opts {
	char url[MIG_URL_MAX];
	unsigned int downtime_ms;     /* target for the final pause; 0: the default */
	unsigned int bandwidth_mib_s; /* cap on the link; 0: none */
	bool verify;		      /* compare guest memory's CRC at the switch */
	bool verify_pages;	      /* and each page's, to name them (implies verify) */
	bool no_auto_converge;	      /* never throttle the vCPUs: fail if pre-copy cannot end */
	unsigned int timeout_ms;      /* per read or write on the stream; 0: 10 s */
	enum mig_postcopy_mode postcopy;
	struct mig_tls_paths tls; /* tcp: only; read by this process (inside its jail) */
};

enum mig_phase {
	MIG_PHASE_NONE,	     /* no migration yet */
	MIG_PHASE_SETUP,     /* connecting, the destination checks the machine */
	MIG_PHASE_PRECOPY,   /* memory while the guest runs */
	MIG_PHASE_STOPCOPY,  /* the VM paused: the last pages and the state */
	MIG_PHASE_SWITCH,    /* waiting for the destination to confirm */
	MIG_PHASE_POSTCOPY,  /* the VM runs at the destination, pages still going there */
	MIG_PHASE_MIGRATED,  /* done: the VM runs at the destination */
	MIG_PHASE_FAILED,    /* the VM kept running here (outcome says why) */
	MIG_PHASE_CANCELLED, /* ... because it was cancelled */
};

/* What GET /banyan/v1/migrate shows; a copy, taken under the migration's lock. */
struct mig_status {
	enum mig_phase phase;
	unsigned int round;		 /* 1: all memory; then one per dirty pass */
	uint64_t bytes_sent;		 /* on the stream so far */
	uint64_t bytes_remaining;	 /* dirty memory not yet sent (estimate) */
	uint64_t mem_bytes;		 /* guest memory */
	uint64_t dirty_rate;		 /* bytes/s the guest dirtied in the last round */
	uint64_t bandwidth;		 /* bytes/s the link carried in the last round */
	uint64_t predicted_downtime_ms;	 /* of the final pause, were it now */
	uint64_t downtime_ms;		 /* the final pause as it was (once past it) */
	uint64_t downtime_us;		 /* ... in microseconds */
	uint64_t total_ms;		 /* from start to the outcome (or now) */
	uint64_t pages_data, pages_zero; /* pages sent as data, as zero runs */
	unsigned int throttle_pct;	 /* vCPU throttling (auto-converge) now, or at the end */
	bool auto_converged;		 /* the vCPUs were throttled at some point */
	bool converged;			 /* the final pause was predicted to fit the target */
	bool verified;		     /* memory was compared at the switch (post-copy: at the end) */
	bool postcopy;		     /* the migration switched to post-copy */
	uint64_t postcopy_pages;     /* pages left for post-copy at the switch */
	uint64_t postcopy_remaining; /* ... still to send */
	uint64_t postcopy_requested; /* ... pages the destination asked for (its faults) */
	bool incoming;		     /* this side is the destination (mig_pc_status) */
	char url[MIG_URL_MAX];
	char outcome[MIG_ERR_LEN]; /* "migrated", or why it failed */
};

struct mig_source;

/*
 * mig_source_start - check @o and start migrating @vm (running or paused)
 * in a new thread. Refused at once: a bad URL or option, a VM without
 * dirty-page logging that is not paused. 0 or -errno with @err.
 */
int mig_source_start(struct vm *vm, const struct mig_opts *o, struct mig_source **out, char *err)
    __attribute__((warn_unused_result));

/* mig_source_status - a copy of the status. */
void mig_source_status(struct mig_source *m, struct mig_status *st);

/* mig_source_active - the migration is still in progress. */
bool mig_source_active(struct mig_source *m);

/*
 * mig_source_cancel - stop the migration before the switch (the VM keeps
 * running here). -EALREADY once the source let go or it ended.
 */
int mig_source_cancel(struct mig_source *m);

/* mig_source_free - cancel if still running, wait for the thread, free. NULL is fine. */
void mig_source_free(struct mig_source *m);

/* mig_postcopy_parse - "off", "auto", "now" into *@mode; -EINVAL otherwise. */
int mig_postcopy_parse(const char *s, enum mig_postcopy_mode *mode)
    __attribute__((warn_unused_result));

/* mig_phase_name - "precopy", "migrated", ... for the API and logs. */
const char *mig_phase_name(enum mig_phase p);

/* What the destination may run, and how it differs from the source's machine. */
struct mig_incoming_opts {
	const char *url;
	int cancel_fd;		  /* readable: stop waiting (a signalfd); -1 none */
	int console_out_fd;	  /* the serial console's output */
	unsigned int mem_mib;	  /* 0, or the memory this destination was given: must match */
	unsigned int ncpus;	  /* 0, or the vCPUs this destination was given: must match */
	const char *const *taps;  /* "IFACE_ID=TAP" overrides, NULL-terminated (NULL: none) */
	const char *const *disks; /* "DRIVE_ID=PATH" overrides, likewise */
	/*
	 * Where to leave the post-copy phase when the source switched to it
	 * (NULL there otherwise): the caller frees it with mig_pc_free
	 * (postcopy.h) once the vCPUs left, before vm_destroy. NULL: this
	 * destination refuses post-copy.
	 */
	struct mig_postcopy **postcopy;
	const struct mig_tls_paths *tls; /* tcp: TLS, when set (NULL or empty: plain) */
};

/*
 * mig_incoming - listen on @o->url, take one source, build its machine in
 * @doc (the caller's, vmcfg_init'ed; it must outlive the VM) after the
 * checks (memory, vCPUs, devices, disk paths, TAPs: the source is told
 * why when refused), load memory and state, confirm, and return the VM
 * running: its vCPU threads started (vm_start does nothing more) and
 * resumed. The source has let go of the VM when this returns 0. -errno
 * with @err, and nothing left of the VM.
 */
int mig_incoming(const struct mig_incoming_opts *o, struct vmcfg *doc, struct vm **out, char *err)
    __attribute__((warn_unused_result));

#endif
