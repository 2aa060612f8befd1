/*
 * Which pages of guest memory are known to be zero without reading them,
 * by where the memory came from:
 * - anonymous memory: a page never faulted in (neither present nor
 *   swapped in /proc/self/pagemap). Not mincore's "not resident": a
 *   page swapped out and gone from the swap cache is not resident
 *   either, and on kernels whose mincore answers from the swap cache
 *   (6.1 does) it would have been taken for zero and lost;
 * - a snapshot's file mapped privately (a restored VM): a page this
 *   process never touched where the file has a hole. Reading it instead
 *   would fill a tmpfs snapshot's file: on tmpfs a read fault on a hole
 *   allocates the page in the parent snapshot's file, and a snapshot of
 *   a restored 256 MiB guest used to fill its parent's memory file;
 * - a memfd mapped shared: a hole in the memfd (a page swapped out is
 *   still data there, whoever wrote it).
 * The snapshot writer, migration's first round and its verification
 * hashes skip those pages.
 */
#ifndef BANYAN_SNAPSHOT_MEM_ORIGIN_H
#define BANYAN_SNAPSHOT_MEM_ORIGIN_H

#include <stdbool.h>
#include <stdint.h>

#define MEM_ORIGIN_CHUNK 256 /* pages asked of pagemap at once */

struct vm;

enum mem_origin_kind {
	MEM_ORIGIN_NONE,	 /* nothing is known: every page is read */
	MEM_ORIGIN_ANON,	 /* anonymous memory */
	MEM_ORIGIN_PRIVATE_FILE, /* a file mapped privately (a restore's) */
	MEM_ORIGIN_SHARED_FILE,	 /* a memfd mapped shared */
};

struct mem_origin {
	enum mem_origin_kind kind;
	int fd;		      /* the file, for the two file kinds */
	int pagemap;	      /* /proc/self/pagemap, or -1 */
	bool mincore_exact;   /* anonymous, no pagemap: the host has no swap, so mincore tells */
	const uint8_t *base;  /* where the file's offset 0 is mapped */
	uint64_t from, until; /* file offsets [from, until) are known to be ... */
	bool hole;	      /* ... a hole (true) or data */
};

/*
 * mem_origin_open - @g for memory of @kind at @base; @fd is the file for
 * the two file kinds. Without /proc (a jail) a private file's pages are
 * all read, and anonymous memory falls back to mincore only on a host
 * without swap (sysinfo), where not resident means never touched.
 */
void mem_origin_open(struct mem_origin *g, enum mem_origin_kind kind, int fd, const void *base);

/* mem_origin_open_vm - mem_origin_open for @vm's RAM, by how it is backed. */
void mem_origin_open_vm(struct mem_origin *g, const struct vm *vm);

void mem_origin_close(struct mem_origin *g);

/*
 * mem_origin_mark_zero - for the @n pages from @addr (inside the mapping),
 * set @vec[i] to 0 where page i is known to be zero, else to 1 (it may
 * hold data: any doubt, an error, data in the file, or @g NULL).
 */
void mem_origin_mark_zero(struct mem_origin *g, const void *addr, uint64_t n, unsigned char *vec);

#endif
