/*
 * Which pages of a VM restored from a snapshot are still the snapshot's
 * zero pages: the memory file is mapped privately, so a page this process
 * never touched (neither present nor swapped in /proc/self/pagemap) reads
 * as the file, and where the file has a hole it is zero. The next snapshot
 * (and a migration) then skips it without reading it: on tmpfs a read
 * fault on a hole allocates the page in the parent snapshot's file, and a
 * snapshot of a restored 256 MiB guest used to fill its parent's memory
 * file to 256 MiB.
 */
#ifndef BANYAN_SNAPSHOT_MEM_ORIGIN_H
#define BANYAN_SNAPSHOT_MEM_ORIGIN_H

#include <stdbool.h>
#include <stdint.h>

#define MEM_ORIGIN_CHUNK 256 /* pages asked of pagemap at once */

struct mem_origin {
	int fd;		      /* the mapped file; -1: nothing is known, every page is read */
	int pagemap;	      /* /proc/self/pagemap */
	const uint8_t *base;  /* where the file's offset 0 is mapped */
	uint64_t from, until; /* file offsets [from, until) are known to be ... */
	bool hole;	      /* ... a hole (true) or data */
};

/*
 * mem_origin_open - @g for memory mapped privately from @fd (-1: none) at
 * @base. Without /proc (a jail) nothing is known and every page is read.
 */
void mem_origin_open(struct mem_origin *g, int fd, const void *base);

void mem_origin_close(struct mem_origin *g);

/*
 * mem_origin_mark_zero - for the @n pages from @addr (inside the mapping),
 * clear @vec[i] where page i is known to be zero: never touched here, and
 * a hole in the file. Any doubt (an error, data in the file) leaves it.
 */
void mem_origin_mark_zero(struct mem_origin *g, const void *addr, uint64_t n, unsigned char *vec);

#endif
