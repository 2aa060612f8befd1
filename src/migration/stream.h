/*
 * The live-migration stream (docs/migration.md, "Protocol"): a header
 * (magic, version, flags), then tagged sections, each a little-endian
 * (u32 tag, u32 length, u32 CRC-32 of the payload) and its payload. Every
 * length is checked against its tag's cap before anything is allocated,
 * every CRC before the payload is used. Guest memory travels in MEMORY
 * sections as runs (gpa, pages, kind): data runs carry the pages, zero
 * runs carry none. The machine's state travels as the snapshot's parts.
 *
 * The receiving side (mig_receive) drives a struct mig_sink and knows
 * nothing of KVM, so the fuzz target runs it on a plain buffer.
 */
#ifndef BANYAN_MIGRATION_STREAM_H
#define BANYAN_MIGRATION_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migration/transport.h"
#include "vmm/guest_mem.h"

#define MIG_MAGIC	  "BANYANMG"
#define MIG_VERSION	  1
#define MIG_FLAG_VERIFY	  1U /* the source sends a VERIFY section: memory is compared */
#define MIG_FLAG_POSTCOPY 2U /* the source may switch to post-copy (postcopy.h) */
#define MIG_FLAG_MEMFD	  4U /* unix: RAM is the memfd that comes with CONFIG; no MEMORY */
#define MIG_FLAG_PAGES	  8U /* with VERIFY: VERIFY also holds a CRC per page */
#define MIG_FLAGS_KNOWN	  (MIG_FLAG_VERIFY | MIG_FLAG_POSTCOPY | MIG_FLAG_MEMFD | MIG_FLAG_PAGES)
#define MIG_PAGE	  4096ULL
#define MIG_MAX_STATE	  (64U << 20)		       /* a state part: the snapshot's cap */
#define MIG_MEM_DATA	  (1U << 20)		       /* page data per MEMORY section */
#define MIG_MAX_MEMORY	  (MIG_MEM_DATA + (64U << 10)) /* ... with its run headers */
#define MIG_MAX_REPLY	  1024
#define MIG_MAX_RUN_PAGES (1U << 20) /* pages one zero run may cover (4 GiB) */

enum mig_tag {
	/* source to destination */
	MIG_TAG_CONFIG = 1, /* the snapshot's CONFIG part; always first */
	MIG_TAG_MEMORY,	    /* runs */
	MIG_TAG_VCPUS,	    /* the state parts, in this order, once each */
	MIG_TAG_VM,
	MIG_TAG_DEVICES,
	MIG_TAG_VERIFY,	  /* after END: u32 CRC-32 of all guest memory, region by region;
			     with MIG_FLAG_PAGES then a u32 CRC-32 per page, in order */
	MIG_TAG_END,	  /* the machine is complete (VERIFY may follow): load and answer */
	MIG_TAG_GO,	  /* the source let go: run */
	MIG_TAG_POSTCOPY, /* before END: the pages still to come after GO (postcopy.h) */
	MIG_TAG_PC_END,	  /* after RUNNING: every page still to come was sent */
	/* destination to source: u32 status (0 or errno), then a reason */
	MIG_TAG_READY = 16, /* the machine can be built here (or why not) */
	MIG_TAG_LOADED,	    /* everything loaded and verified (or why not) */
	MIG_TAG_RUNNING,    /* the VM runs here */
	MIG_TAG_PAGE_REQ,   /* post-copy: a faulting page, please (postcopy.h) */
	MIG_TAG_PC_ALIVE,   /* post-copy: still here, this many pages missing */
	MIG_TAG_COMPLETE,   /* post-copy: every page arrived (or why not) */
};

enum mig_run_kind {
	MIG_RUN_DATA = 0, /* @pages pages follow */
	MIG_RUN_ZERO = 1, /* the pages are zero; nothing follows */
};

/* mig_send_header / mig_recv_header - the stream's first 16 bytes. 0 or -errno (+@err). */
int mig_send_header(struct mig_conn *c, uint32_t flags) __attribute__((warn_unused_result));
int mig_recv_header(struct mig_conn *c, uint32_t *flags, char *err)
    __attribute__((warn_unused_result));

/* mig_send - one section. 0 or -errno. */
int mig_send(struct mig_conn *c, enum mig_tag tag, const void *buf, size_t len)
    __attribute__((warn_unused_result));

/*
 * mig_recv - the next section: its tag (known, else -EBADMSG), its length
 * (within the tag's cap), its payload in a malloc'ed *@buf (CRC checked).
 * 0 or -errno with @err; *@buf is NULL on failure.
 */
int mig_recv(struct mig_conn *c, enum mig_tag *tag, uint8_t **buf, size_t *len, char *err)
    __attribute__((warn_unused_result));

/* mig_send_reply - a destination's answer: @status 0 or a positive errno, and @why. */
int mig_send_reply(struct mig_conn *c, enum mig_tag tag, int status, const char *why)
    __attribute__((warn_unused_result));

/*
 * mig_recv_reply - wait for answer @tag: 0 when it says yes; the peer's
 * -errno with its reason in @err when it says no; -EBADMSG/-EPIPE/...
 * when the stream breaks.
 */
int mig_recv_reply(struct mig_conn *c, enum mig_tag tag, char *err)
    __attribute__((warn_unused_result));

/* A MEMORY section being filled (the source's). */
struct mig_membuf {
	uint8_t *buf; /* MIG_MAX_MEMORY bytes */
	size_t len;
	uint64_t data_pages; /* pages sent as data so far */
	uint64_t zero_pages; /* ... as zero runs */
};

int mig_membuf_init(struct mig_membuf *m) __attribute__((warn_unused_result));
void mig_membuf_free(struct mig_membuf *m);

/*
 * mig_membuf_add - queue page run [@gpa, +@pages) from @host (NULL: the
 * pages are zero), sending full sections on @c as it goes. 0 or -errno.
 */
int mig_membuf_add(struct mig_membuf *m, struct mig_conn *c, uint64_t gpa, const uint8_t *host,
		   uint64_t pages) __attribute__((warn_unused_result));

/* mig_membuf_flush - send what is queued. 0 or -errno. */
int mig_membuf_flush(struct mig_membuf *m, struct mig_conn *c) __attribute__((warn_unused_result));

/*
 * mig_mem_apply - write a MEMORY section's runs into @gm: every run page
 * aligned, non-empty, inside one region (gm_ptr), its data inside the
 * section. Runs before a bad one stay written. 0 or -EBADMSG with @err.
 */
int mig_mem_apply(const struct guest_mem *gm, const uint8_t *buf, size_t len, char *err)
    __attribute__((warn_unused_result));

/*
 * mig_mem_walk - check a MEMORY section's runs as mig_mem_apply does and
 * call @fn for each, with the run's host address, guest address, pages
 * and data (NULL: a zero run), instead of writing guest memory (post-copy
 * places pages with userfaultfd). Stops at @fn's first error. 0 or -errno
 * with @err.
 */
int mig_mem_walk(const struct guest_mem *gm, const uint8_t *buf, size_t len,
		 int (*fn)(void *priv, uint8_t *host, uint64_t gpa, uint64_t pages,
			   const uint8_t *data),
		 void *priv, char *err) __attribute__((warn_unused_result));

/* mig_mem_pages - the 4 KiB pages of @gm's regions. */
uint64_t mig_mem_pages(const struct guest_mem *gm);

struct mem_origin;

/*
 * mig_mem_page_crcs - the CRC-32 of every page of @gm, region by region,
 * as little-endian u32s into @out (4 * mig_mem_pages bytes): VERIFY's
 * table with MIG_FLAG_PAGES. Pages @g (or NULL) knows to be zero are
 * hashed as zero pages without being read.
 */
void mig_mem_page_crcs(const struct guest_mem *gm, struct mem_origin *g, uint8_t *out);

/* mig_mem_crc - CRC-32 of every region of @gm in order (the VERIFY section's value); @g likewise.
 */
uint32_t mig_mem_crc(const struct guest_mem *gm, struct mem_origin *g);

/* mig_page_is_zero - the 4 KiB page at @p is all zero. */
bool mig_page_is_zero(const uint8_t *p);

/* What the receiving side loads into; the destination's, or the fuzz target's. */
struct mig_sink {
	/*
	 * The CONFIG section: build the machine and set @mem, or refuse
	 * (-errno, the reason in @err, sent to the source).
	 */
	int (*config)(struct mig_sink *s, const uint8_t *buf, size_t len, char *err);
	/* A state part (VCPUS, VM, DEVICES, in that order). 0 or -errno with @err. */
	int (*state)(struct mig_sink *s, enum mig_tag tag, const uint8_t *buf, size_t len,
		     char *err);
	/*
	 * The POSTCOPY section (after the state parts): the pages that come
	 * after GO. @hashes (with MIG_FLAG_VERIFY, else NULL): each page's
	 * pc_page_hash, regions in order, taken before any state part was
	 * loaded. NULL: post-copy is refused. 0 or -errno with @err.
	 */
	int (*postcopy)(struct mig_sink *s, const uint8_t *buf, size_t len, const uint64_t *hashes,
			char *err);
	bool postcopy_on;	     /* set by mig_receive once the POSTCOPY section was taken */
	const struct guest_mem *mem; /* set by config */
	void *priv;
	uint32_t flags; /* the header's, set before config is called */
};

/*
 * mig_receive - the destination's side up to the switch: the header, the
 * CONFIG section (answered READY or refused), memory and state until END,
 * the VERIFY check after it when the source asked for it (both sides
 * compute their CRC at once), the LOADED answer, then
 * wait for GO. 0: the caller owns the VM and answers RUNNING once it
 * runs. -errno with @err (also sent to the source when the stream still
 * works): the caller discards whatever was built.
 */
int mig_receive(struct mig_conn *c, struct mig_sink *s, char *err)
    __attribute__((warn_unused_result));

#endif
