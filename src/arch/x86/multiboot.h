/*
 * Multiboot (version 1) kernels: finding the header, checking the image,
 * and the information structure handed to the kernel. The parser is a pure
 * function of the file's bytes (no VM, no I/O), so unit tests and fuzz
 * targets call it directly; multiboot.c loads what it accepted.
 */
#ifndef BANYAN_ARCH_X86_MULTIBOOT_H
#define BANYAN_ARCH_X86_MULTIBOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86/x86.h"
#include "vmm/guest_mem.h"

#define MB_HEADER_MAGIC	    0x1badb002U
#define MB_BOOTLOADER_MAGIC 0x2badb002U /* EAX at entry */
#define MB_SEARCH_LEN	    8192	/* the header lies within the first 8 KiB */
#define MB_MAX_SEGMENTS	    16

/* Header flags: bits 0..15 are requirements a loader must meet or refuse. */
#define MB_FLAG_PAGE_ALIGN (1U << 0)  /* modules page aligned */
#define MB_FLAG_MEMORY	   (1U << 1)  /* mem_* and the memory map */
#define MB_FLAG_VIDEO	   (1U << 2)  /* video mode: a wish, ignored (no display) */
#define MB_FLAG_AOUT	   (1U << 16) /* the header's address fields say where to load */

/* One piece of the file to copy to guest physical memory, zero-filled up to memsz. */
struct mb_segment {
	uint64_t offset; /* in the file */
	uint64_t filesz;
	uint64_t paddr;
	uint64_t memsz;
};

/* What mb_parse accepted. */
struct mb_image {
	uint32_t header_offset;
	uint32_t flags;
	uint32_t entry; /* physical */
	unsigned int nseg;
	struct mb_segment seg[MB_MAX_SEGMENTS];
	uint64_t load_start, load_end; /* lowest and first byte above every segment */
};

/* Where a kernel may load: [ram_lo, ram_hi), and where the device hole begins. */
struct mb_limits {
	uint64_t ram_lo;
	uint64_t ram_hi;
	uint64_t hole; /* a segment reaching it is "in the device hole", not "beyond RAM" */
};

/*
 * mb_find_header - the offset of a valid multiboot header (magic, and a
 * checksum that makes the three words sum to 0) in the first 8 KiB of
 * @f, 4-byte aligned; -ENOENT when there is none. Never reads past @len.
 */
long mb_find_header(const uint8_t *f, size_t len);

/*
 * mb_parse - check a multiboot kernel and say what to load where: ELF32
 * program headers (PT_LOAD, by physical address), or the header's a.out
 * address fields when MB_FLAG_AOUT is set. Every segment must lie in
 * @lim's RAM, outside the hole, and not overlap another; the entry must be
 * inside one. Returns 0, or -ENOEXEC with a one-line reason in @err
 * (@errlen bytes): no header, unknown requirement bits, an ELF64 file, a
 * truncated header or program header table, segments outside the file,
 * over RAM's end, in the device hole or overlapping. Pure: reads only
 * @f[0..@len).
 */
int mb_parse(const uint8_t *f, size_t len, const struct mb_limits *lim, struct mb_image *img,
	     char *err, size_t errlen) __attribute__((warn_unused_result));

/* A module as placed in guest memory, and its string (path and command line). */
struct mb_module {
	uint64_t start, end;
	const char *string;
};

/* What the information structure describes. */
struct mb_boot {
	const char *cmdline; /* the kernel's path, a space, the operator's command line */
	const struct mb_module *mods;
	unsigned int nmods;
	const struct x86_e820 *map;
	unsigned int nmap;
};

/*
 * mb_write_info - the multiboot information structure at @info_gpa (one
 * page: the structure, the module list, the memory map) and its strings at
 * @str_gpa (@str_len bytes): memory sizes from @b->map (mem_lower below
 * 640 KiB, mem_upper contiguous from 1 MiB), the command line, modules,
 * the memory map and the boot loader's name. 0, -E2BIG when the strings
 * or modules do not fit, -EFAULT when the areas are not guest RAM.
 */
int mb_write_info(const struct guest_mem *mem, uint64_t info_gpa, uint64_t str_gpa,
		  uint64_t str_len, const struct mb_boot *b) __attribute__((warn_unused_result));

#define MB_MAX_MODULES 16
#define MB_LOADER_NAME "banyan"

#endif
