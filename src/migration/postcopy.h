/*
 * Post-copy live migration (docs/migration.md, "Post-copy"): when pre-copy
 * does not converge, or when asked, the source pauses, sends the machine's
 * state and the list of pages not yet sent (the POSTCOPY section), and lets
 * go; the destination runs the VM at once with those pages missing. Guest
 * RAM is registered with userfaultfd (missing mode): a vCPU or a device
 * thread touching a missing page blocks in the kernel until the page is
 * placed (UFFDIO_COPY, UFFDIO_ZEROPAGE). The destination asks the source
 * for a faulting page (PAGE_REQ) on the same connection while the source
 * streams the rest (MEMORY sections), then PC_END; the destination answers
 * COMPLETE once every page arrived (and, with verify, the memory's hash
 * matched the source's), and only then does the source stop, "migrated".
 *
 * Between GO and COMPLETE the VM exists whole nowhere: losing the source
 * or the connection loses the VM. The destination then stops with a clear
 * reason (and ends the process if threads stay blocked on pages that will
 * never come); the source keeps its paused copy and never resumes it.
 */
#ifndef BANYAN_MIGRATION_POSTCOPY_H
#define BANYAN_MIGRATION_POSTCOPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migration/postcopy_pages.h"
#include "migration/transport.h"

struct vm;
struct mig_membuf;
struct mig_status;

#define MIG_PC_REQ_MAX_PAGES PC_REQ_PAGES /* pages one PAGE_REQ may ask for */
#define MIG_PC_ALIVE_MS	     500	  /* the destination's PC_ALIVE period */

/* --- the source --- */

/*
 * mig_pc_send_pending - the POSTCOPY section: the pages set in @pending
 * (one bit per 4 KiB page of @vm's mapping) as runs of (u64 gpa, u32
 * pages, u32 0), each inside one memory region. *@count gets the pages.
 * 0 or -errno (-EFBIG past the section's cap).
 */
int mig_pc_send_pending(struct mig_conn *c, const struct vm *vm, const uint64_t *pending,
			uint64_t *count) __attribute__((warn_unused_result));

/* What the source's post-copy phase works with (source.c fills it). */
struct mig_pc_source {
	struct vm *vm; /* paused for good: its memory no longer changes */
	struct mig_conn *conn;
	struct mig_membuf *mb;
	uint64_t *pending; /* pages still to send; cleared as they go */
	uint64_t count;	   /* how many bits are set in @pending */
	bool verify;	   /* send the memory's hash in PC_END */
	/* Called between sections: pages left, pages the destination asked for. */
	void (*progress)(void *priv, uint64_t remaining, uint64_t requested);
	void (*pace)(void *priv); /* the bandwidth cap, for the background stream */
	void *priv;
};

/*
 * mig_pc_source_run - after RUNNING: send the pages the destination asks
 * for first, the rest in the background, then PC_END, and wait for
 * COMPLETE. A thread of its own reads the destination's requests. 0 once
 * the destination has every page; -errno with @err otherwise (the VM is
 * then nowhere whole: the caller never resumes it).
 */
int mig_pc_source_run(struct mig_pc_source *s, char *err) __attribute__((warn_unused_result));

/* mig_pc_mem_hash - the memory's hash as post-copy verifies it: a sum of per-page hashes. */
uint64_t mig_pc_mem_hash(const struct vm *vm);

/* --- the destination --- */

struct mig_postcopy;

/*
 * mig_pc_prepare - the destination's side of the POSTCOPY section, with
 * @vm loaded and paused: check every run (page aligned, 1..4 GiB of pages,
 * inside one region), note the pages as missing, add the others' hashes
 * from @hashes (verify: each page's pc_page_hash taken before the state was
 * loaded; NULL: no verification), give the missing pages back
 * (gm_release) and register all guest RAM with a new userfaultfd.
 * Refused: RAM not on 4 KiB pages, no userfaultfd. 0 or -errno with @err;
 * *@out is set on success only.
 */
int mig_pc_prepare(struct vm *vm, const uint8_t *buf, size_t len, const uint64_t *hashes,
		   struct mig_postcopy **out, char *err) __attribute__((warn_unused_result));

/*
 * mig_pc_start - after GO and RUNNING: take over @conn (left closed) and
 * start the threads that serve faults and place the pages as they come.
 * The connection's timeout (the destination's stream timeout) bounds each
 * wait for the source. 0 or -errno (then the VM cannot run: the caller
 * discards it).
 */
int mig_pc_start(struct mig_postcopy *pc, struct mig_conn *conn)
    __attribute__((warn_unused_result));

/*
 * mig_pc_status - the destination's side of post-copy, for its own GET
 * /banyan/v1/migrate: phase POSTCOPY while pages are missing, MIGRATED
 * once every page arrived, FAILED once the source was lost; the page
 * counts and the time since the switch. Any thread, while @pc lives.
 */
void mig_pc_status(struct mig_postcopy *pc, struct mig_status *st);

/*
 * mig_pc_free - stop the threads and free @pc (NULL is fine). Called once
 * the VM's vCPUs have left, before the VM is destroyed. When pages are
 * still missing the source hears the connection close.
 */
void mig_pc_free(struct mig_postcopy *pc);

#endif
