/*
 * The zero pages a restored VM still shares with its snapshot's file
 * (mem_origin.h).
 */
#include "snapshot/mem_origin.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62) /* swap, and migration entries too */
#define PAGE	   4096ULL

void mem_origin_open(struct mem_origin *g, int fd, const void *base)
{
	memset(g, 0, sizeof(*g));
	g->base = base;
	g->pagemap = fd < 0 ? -1 : open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	g->fd = g->pagemap < 0 ? -1 : fd;
}

void mem_origin_close(struct mem_origin *g)
{
	if (g->pagemap >= 0)
		close(g->pagemap);
	g->pagemap = g->fd = -1;
}

/* Whether @offset lies in a hole of the file; the extent found is kept for the next pages. */
static bool file_hole(struct mem_origin *g, uint64_t offset)
{
	off_t data, hole;

	if (offset >= g->from && offset < g->until)
		return g->hole;
	data = lseek(g->fd, (off_t)offset, SEEK_DATA);
	if (data < 0 && errno == ENXIO) { /* no data from here to the end */
		g->from = offset;
		g->until = UINT64_MAX;
		return g->hole = true;
	}
	if (data < 0)
		return false;
	if ((uint64_t)data > offset) {
		g->from = offset;
		g->until = (uint64_t)data;
		return g->hole = true;
	}
	hole = lseek(g->fd, (off_t)offset, SEEK_HOLE);
	g->from = offset;
	g->until = hole > data ? (uint64_t)hole : offset + 1;
	return g->hole = false;
}

/* Up to MEM_ORIGIN_CHUNK pages; an unreadable pagemap leaves every page as it was. */
static void mark_chunk(struct mem_origin *g, const uint8_t *addr, uint64_t n, unsigned char *vec)
{
	uint64_t entries[MEM_ORIGIN_CHUNK];
	size_t len = n * sizeof(uint64_t);
	uint64_t offset = (uint64_t)(addr - g->base);

	if (pread(g->pagemap, entries, len, (off_t)((uintptr_t)addr / PAGE * sizeof(uint64_t))) !=
	    (ssize_t)len)
		return;
	for (uint64_t i = 0; i < n; i++)
		if (!(entries[i] & (PM_PRESENT | PM_SWAPPED)) && file_hole(g, offset + i * PAGE))
			vec[i] = 0;
}

void mem_origin_mark_zero(struct mem_origin *g, const void *addr, uint64_t n, unsigned char *vec)
{
	const uint8_t *p = addr;

	for (uint64_t k = 0; g->fd >= 0 && k < n; k += MEM_ORIGIN_CHUNK)
		mark_chunk(g, p + k * PAGE, n - k < MEM_ORIGIN_CHUNK ? n - k : MEM_ORIGIN_CHUNK,
			   vec + k);
}
