/* The zero pages of guest memory that need not be read (mem_origin.h). */
#include "snapshot/mem_origin.h"

#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62) /* swap, and migration entries too */
#define PAGE	   4096ULL

static bool host_has_no_swap(void)
{
	struct sysinfo si;

	return sysinfo(&si) == 0 && si.totalswap == 0;
}

void mem_origin_open(struct mem_origin *g, enum mem_origin_kind kind, int fd, const void *base)
{
	bool file = kind == MEM_ORIGIN_PRIVATE_FILE || kind == MEM_ORIGIN_SHARED_FILE;

	memset(g, 0, sizeof(*g));
	g->kind = kind;
	g->base = base;
	g->fd = file ? fd : -1;
	g->pagemap = kind == MEM_ORIGIN_ANON || kind == MEM_ORIGIN_PRIVATE_FILE
			 ? open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
			 : -1;
	if (kind == MEM_ORIGIN_ANON && g->pagemap < 0)
		g->mincore_exact = host_has_no_swap();
	/* A file kind without its file, or a private file without pagemap, tells nothing. */
	if ((file && fd < 0) || (kind == MEM_ORIGIN_PRIVATE_FILE && g->pagemap < 0))
		g->kind = MEM_ORIGIN_NONE;
}

void mem_origin_open_vm(struct mem_origin *g, const struct vm *vm)
{
	if (vm->snap_mem_fd >= 0)
		mem_origin_open(g, MEM_ORIGIN_PRIVATE_FILE, vm->snap_mem_fd, vm->mem_base);
	else if (vm->mem_fd >= 0)
		mem_origin_open(g, MEM_ORIGIN_SHARED_FILE, vm->mem_fd, vm->mem_base);
	else if (!vm->cfg.mem_path)
		mem_origin_open(g, MEM_ORIGIN_ANON, -1, vm->mem_base);
	else /* a file the operator gave, or a huge-page copy of a snapshot */
		mem_origin_open(g, MEM_ORIGIN_NONE, -1, vm->mem_base);
}

void mem_origin_close(struct mem_origin *g)
{
	if (g->pagemap >= 0)
		close(g->pagemap);
	g->pagemap = g->fd = -1;
	g->kind = MEM_ORIGIN_NONE;
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

/* Whether this process never touched each of the @n pages at @addr; false when unknown. */
static bool untouched(struct mem_origin *g, const uint8_t *addr, uint64_t n, bool *out)
{
	uint64_t entries[MEM_ORIGIN_CHUNK];
	unsigned char vec[MEM_ORIGIN_CHUNK];
	size_t len = n * sizeof(uint64_t);

	if (g->pagemap >= 0) {
		if (pread(g->pagemap, entries, len,
			  (off_t)((uintptr_t)addr / PAGE * sizeof(uint64_t))) != (ssize_t)len)
			return false;
		for (uint64_t i = 0; i < n; i++)
			out[i] = !(entries[i] & (PM_PRESENT | PM_SWAPPED));
		return true;
	}
	if (!g->mincore_exact || mincore((void *)(uintptr_t)addr, n * PAGE, vec) < 0)
		return false;
	for (uint64_t i = 0; i < n; i++)
		out[i] = !(vec[i] & 1);
	return true;
}

/* Up to MEM_ORIGIN_CHUNK pages. */
static void mark_chunk(struct mem_origin *g, const uint8_t *addr, uint64_t n, unsigned char *vec)
{
	uint64_t offset = (uint64_t)(addr - g->base);
	bool never[MEM_ORIGIN_CHUNK];

	if (g->kind == MEM_ORIGIN_SHARED_FILE) {
		for (uint64_t i = 0; i < n; i++)
			if (file_hole(g, offset + i * PAGE))
				vec[i] = 0;
		return;
	}
	if (!untouched(g, addr, n, never))
		return;
	for (uint64_t i = 0; i < n; i++)
		if (never[i] && (g->kind == MEM_ORIGIN_ANON || file_hole(g, offset + i * PAGE)))
			vec[i] = 0;
}

void mem_origin_mark_zero(struct mem_origin *g, const void *addr, uint64_t n, unsigned char *vec)
{
	const uint8_t *p = addr;

	memset(vec, 1, n);
	for (uint64_t k = 0; g && g->kind != MEM_ORIGIN_NONE && k < n; k += MEM_ORIGIN_CHUNK)
		mark_chunk(g, p + k * PAGE, n - k < MEM_ORIGIN_CHUNK ? n - k : MEM_ORIGIN_CHUNK,
			   vec + k);
}
