/*
 * Post-copy's page book-keeping (postcopy.h), pure: which pages of guest
 * memory are still to come, the records that name them (the POSTCOPY
 * section's runs, PAGE_REQ), what a fault asks for, which arriving pages
 * are placed, and the checks at PC_END. It knows guest_mem and bytes
 * only: no KVM, no userfaultfd, no threads, no stream. Placing a page is
 * the caller's (a callback), so tests/fuzz/fuzz_migration.c drives all of
 * it with hostile traffic against plain memory.
 *
 * Threads: one parses the list before anything runs; then a fault thread
 * (pc_pages_fault) and a receiving thread (pc_pages_place_run,
 * pc_pages_check_end) share it: the pending bits and the missing count
 * are atomic, the hash belongs to the receiving thread.
 */
#ifndef BANYAN_MIGRATION_POSTCOPY_PAGES_H
#define BANYAN_MIGRATION_POSTCOPY_PAGES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/guest_mem.h"

#define PC_PAGE	     4096ULL
#define PC_RUN_LEN   16 /* a POSTCOPY run or a PAGE_REQ: u64 gpa, u32 pages, u32 0 */
#define PC_END_LEN   16 /* PC_END: u64 pages sent, u64 hash */
#define PC_REQ_PAGES 64 /* pages one PAGE_REQ may ask for (MIG_PC_REQ_MAX_PAGES) */

struct pc_pages {
	const struct guest_mem *mem;
	uintptr_t base;		   /* bit i is the page at base + i * PC_PAGE */
	uint64_t npages;	   /* of the mapping from base */
	_Atomic uint64_t *pending; /* pages still to come; cleared once placed */
	atomic_uint_fast64_t missing;
	uint64_t total; /* pages missing at the switch */
	bool verify;
	uint64_t hash; /* of what is here (pages present, then pages placed) */
};

/*
 * pc_pages_init - nothing pending over @map_size bytes of mapping from
 * @base, where @mem's regions lie. @verify: keep the memory's hash.
 * 0 or -ENOMEM.
 */
int pc_pages_init(struct pc_pages *pp, const struct guest_mem *mem, const void *base,
		  uint64_t map_size, bool verify) __attribute__((warn_unused_result));

/* pc_pages_free - release the bitmap (a zeroed or freed one is fine). */
void pc_pages_free(struct pc_pages *pp);

/*
 * pc_pages_parse_list - the POSTCOPY section: runs of PC_RUN_LEN bytes,
 * each page aligned, 1..MIG_MAX_RUN_PAGES pages inside one region, the
 * last word 0. Pages named twice count once. Every run is checked before
 * it marks anything; on error some earlier runs may be marked (the caller
 * drops the machine). 0 or -EBADMSG with @err.
 */
int pc_pages_parse_list(struct pc_pages *pp, const uint8_t *buf, size_t len, char *err)
    __attribute__((warn_unused_result));

/* pc_pages_is_pending - page @p (index from base) is still to come. */
bool pc_pages_is_pending(const struct pc_pages *pp, uint64_t p);

/*
 * pc_pages_hash_present - add the pages not pending to the hash (verify;
 * before anything runs). @before: each page's pc_page_hash, regions in
 * order, taken before the machine's state was loaded (loading it writes
 * guest memory: KVM rewrites kvmclock's wall-clock structure); NULL: hash
 * the memory as it is now.
 */
void pc_pages_hash_present(struct pc_pages *pp, const uint64_t *before);

/* What a fault on a registered address calls for. */
enum pc_fault {
	PC_FAULT_NONE, /* not guest RAM: nothing registered there */
	PC_FAULT_ZERO, /* a page that never had data: fill it with zeros */
	PC_FAULT_ASK,  /* still to come: send the PAGE_REQ in @req */
};

/*
 * pc_pages_fault - the host address @addr faulted: what to do, the page's
 * host address in *@host (ZERO, ASK) and, for ASK, the PAGE_REQ record
 * for it in @req. Any @addr is fine.
 */
enum pc_fault pc_pages_fault(const struct pc_pages *pp, uintptr_t addr, uint8_t **host,
			     uint8_t req[PC_RUN_LEN]);

/*
 * pc_req_parse - a PAGE_REQ from the destination (the source's side):
 * PC_RUN_LEN bytes, page aligned, 1..PC_REQ_PAGES pages inside one region
 * of @mem, the last word 0. *@host gets the first page. 0 or -EBADMSG
 * with @err.
 */
int pc_req_parse(const struct guest_mem *mem, const uint8_t *buf, size_t len, uint8_t **host,
		 uint64_t *pages, char *err) __attribute__((warn_unused_result));

/* Place one page at @host: @data, or zeros when NULL. 0, -EEXIST (there already), -errno. */
typedef int (*pc_place_fn)(void *priv, uint8_t *host, const uint8_t *data);

/*
 * pc_pages_place_run - @pages pages arrived for @gpa at @host (a checked
 * MEMORY run, mig_mem_walk's): each still pending is placed with @place
 * and then no longer pending; the others (asked for and streamed too, or
 * never missing) are skipped, the first copy counts. 0, or @place's error.
 */
int pc_pages_place_run(struct pc_pages *pp, uint8_t *host, uint64_t gpa, uint64_t pages,
		       const uint8_t *data, pc_place_fn place, void *priv)
    __attribute__((warn_unused_result));

/*
 * pc_pages_check_end - PC_END: PC_END_LEN bytes, no page still missing,
 * and with verify the source's hash equal to ours. 0, -EBADMSG, or -EIO
 * (memory differs), with @err.
 */
int pc_pages_check_end(const struct pc_pages *pp, const uint8_t *buf, size_t len, char *err)
    __attribute__((warn_unused_result));

/* pc_page_hash - one page's share of the memory's hash (NULL: a zero page), order-free. */
uint64_t pc_page_hash(uint64_t gpa, const uint8_t *p);

#endif
