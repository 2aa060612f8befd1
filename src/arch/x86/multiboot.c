/*
 * Booting a multiboot (version 1) kernel: its segments, its modules (each
 * --initrd, page aligned above the kernel) and the information structure,
 * which QEMU's loader fills the same way (the command line is the kernel's
 * path, a space, then the operator's). Entry state: x86_vcpu_set_boot_regs
 * with X86_BOOT_MULTIBOOT (32-bit protected mode, paging off, flat
 * segments, EAX the loader magic, EBX the structure).
 */
#include "arch/x86/layout.h"
#include "arch/x86/multiboot.h"
#include "arch/x86/x86.h"
#include "util/file.h"
#include "util/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MBI_SIZE      88 /* up to the VBE fields, which stay 0 */
#define MBI_MODS_OFF  0x100
#define MBI_MMAP_OFF  0x200
#define MBI_F_MEMORY  (1U << 0)
#define MBI_F_CMDLINE (1U << 2)
#define MBI_F_MODS    (1U << 3)
#define MBI_F_MMAP    (1U << 6)
#define MBI_F_LOADER  (1U << 9)
#define PAGE_MASK     0xfffULL

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* Copy @s into the string area; its guest address in *@gpa. */
static int put_string(const struct guest_mem *mem, uint64_t *next, uint64_t end, const char *s,
		      uint32_t *gpa)
{
	size_t n = strlen(s) + 1;

	if (n > end - *next)
		return -E2BIG;
	*gpa = (uint32_t)*next;
	*next += n;
	return gm_write(mem, *gpa, s, n);
}

/* mem_lower: RAM from 0 (at most 640 KiB); mem_upper: contiguous RAM from 1 MiB; in KiB. */
static void mb_mem_sizes(const struct mb_boot *b, uint32_t *lower, uint32_t *upper)
{
	*lower = *upper = 0;
	for (unsigned int i = 0; i < b->nmap; i++) {
		const struct x86_e820 *e = &b->map[i];

		if (e->type != E820_RAM)
			continue;
		if (e->addr == 0)
			*lower = (uint32_t)((e->size < 0xa0000 ? e->size : 0xa0000) >> 10);
		if (e->addr == LAYOUT_HIMEM)
			*upper =
			    (uint32_t)((e->size < 0xffc00000ULL ? e->size : 0xffc00000ULL) >> 10);
	}
}

static void mb_write_mmap(uint8_t *info, const struct mb_boot *b)
{
	for (unsigned int i = 0; i < b->nmap; i++) {
		uint8_t *e = info + MBI_MMAP_OFF + 24 * i;

		put32(e, 20); /* size of the rest of the entry */
		put64(e + 4, b->map[i].addr);
		put64(e + 12, b->map[i].size);
		put32(e + 20, b->map[i].type);
	}
}

int mb_write_info(const struct guest_mem *mem, uint64_t info_gpa, uint64_t str_gpa,
		  uint64_t str_len, const struct mb_boot *b)
{
	uint8_t *info = gm_ptr(mem, info_gpa, 4096);
	uint64_t next = str_gpa, end = str_gpa + str_len;
	uint32_t lower, upper, s = 0;
	int ret;

	if (!info || !gm_ptr(mem, str_gpa, str_len))
		return -EFAULT;
	if (b->nmods > MB_MAX_MODULES || b->nmap > X86_MAX_E820)
		return -E2BIG;
	memset(info, 0, 4096);
	mb_mem_sizes(b, &lower, &upper);
	put32(info + 0, MBI_F_MEMORY | MBI_F_CMDLINE | MBI_F_MODS | MBI_F_MMAP | MBI_F_LOADER);
	put32(info + 4, lower);
	put32(info + 8, upper);
	ret = put_string(mem, &next, end, b->cmdline, &s);
	put32(info + 16, s);
	put32(info + 20, b->nmods);
	put32(info + 24, (uint32_t)(info_gpa + MBI_MODS_OFF));
	for (unsigned int i = 0; ret == 0 && i < b->nmods; i++) {
		uint8_t *m = info + MBI_MODS_OFF + 16 * i;

		ret = put_string(mem, &next, end, b->mods[i].string, &s);
		put32(m, (uint32_t)b->mods[i].start);
		put32(m + 4, (uint32_t)b->mods[i].end);
		put32(m + 8, s);
	}
	put32(info + 44, 24 * b->nmap);
	put32(info + 48, (uint32_t)(info_gpa + MBI_MMAP_OFF));
	mb_write_mmap(info, b);
	if (ret == 0)
		ret = put_string(mem, &next, end, MB_LOADER_NAME, &s);
	put32(info + 64, s);
	return ret;
}

static int mb_load_segments(struct vm *vm, const uint8_t *f, const struct mb_image *img)
{
	for (unsigned int i = 0; i < img->nseg; i++) {
		const struct mb_segment *s = &img->seg[i];
		uint8_t *dst = gm_ptr(&vm->mem, s->paddr, s->memsz);

		if (!dst)
			return -EFAULT; /* mb_parse checked the limits: cannot happen */
		memcpy(dst, f + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	return 0;
}

/* "PATH" or "PATH CMDLINE", as QEMU's -initrd "FILE ARGS" gives it. */
static char *mb_module_string(const struct boot_module *m)
{
	char *s = NULL;

	if (asprintf(&s, "%s%s%s", m->path, m->cmdline ? " " : "", m->cmdline ? m->cmdline : "") <
	    0)
		return NULL;
	return s;
}

/* One module, page aligned at *@next, below @top. */
static int mb_load_module(struct vm *vm, const struct boot_module *bm, uint64_t *next, uint64_t top,
			  struct mb_module *out)
{
	uint64_t size;
	int ret = file_size(bm->path, &size);

	if (ret < 0) {
		log_error("cannot read module %s: %s", bm->path,
			  ret == -FILE_EKIND ? file_kind_error(FILE_KIND_REG) : strerror(-ret));
		return ret;
	}
	if (size > top - *next) {
		log_error("module %s (%llu bytes) does not fit in guest RAM below 0x%llx (at "
			  "0x%llx): give the VM more memory",
			  bm->path, (unsigned long long)size, (unsigned long long)top,
			  (unsigned long long)*next);
		return -ENOMEM;
	}
	ret = size ? file_read_into(bm->path, gm_ptr(&vm->mem, *next, size), size) : 0;
	if (ret < 0) {
		log_error("cannot read module %s: %s", bm->path, strerror(-ret));
		return ret;
	}
	out->start = *next;
	out->end = *next + size;
	*next = (out->end + PAGE_MASK) & ~PAGE_MASK;
	return 0;
}

/* The configured modules: every --initrd (modules), or the one initrd_path. */
static unsigned int mb_config_modules(const struct vm *vm, struct boot_module *mods)
{
	if (vm->cfg.initrd_path) {
		mods[0] = (struct boot_module){vm->cfg.initrd_path, NULL};
		return 1;
	}
	memcpy(mods, vm->cfg.modules, sizeof(vm->cfg.modules[0]) * vm->cfg.nmodules);
	return vm->cfg.nmodules;
}

static int mb_load_modules(struct vm *vm, uint64_t load_end, struct mb_module *mods,
			   unsigned int *n)
{
	struct boot_module cfg[VM_MAX_MODULES];
	uint64_t next = (load_end + PAGE_MASK) & ~PAGE_MASK, top = vm->mem.regions[0].size;
	unsigned int count = mb_config_modules(vm, cfg);
	int ret = 0;

	*n = 0;
	if (count > MB_MAX_MODULES)
		return -E2BIG;
	for (unsigned int i = 0; ret == 0 && i < count; i++) {
		mods[i].string = mb_module_string(&cfg[i]);
		*n = i + 1;
		ret = mods[i].string ? mb_load_module(vm, &cfg[i], &next, top, &mods[i]) : -ENOMEM;
	}
	return ret;
}

/* The kernel's command line: its path, a space, then the operator's (default empty). */
static int mb_write_boot_info(struct vm *vm, const char *path, const struct mb_module *mods,
			      unsigned int nmods)
{
	struct x86_e820 map[X86_MAX_E820];
	struct mb_boot b = {.mods = mods, .nmods = nmods, .map = map};
	char *cmdline = NULL;
	int ret;

	b.nmap = x86_e820_map(vm, map);
	if (asprintf(&cmdline, "%s %s", path, vm->cfg.boot_args ? vm->cfg.boot_args : "") < 0)
		return -ENOMEM;
	b.cmdline = cmdline;
	ret = mb_write_info(&vm->mem, LAYOUT_MB_INFO, LAYOUT_CMDLINE, LAYOUT_CMDLINE_MAX, &b);
	if (ret == -E2BIG)
		log_error("the multiboot command lines do not fit in %llu KiB",
			  (unsigned long long)LAYOUT_CMDLINE_MAX >> 10);
	free(cmdline);
	return ret;
}

int x86_multiboot_load(struct vm *vm, const char *path, const uint8_t *f, size_t len,
		       struct x86_kernel *k)
{
	uint64_t ram_hi = vm->mem.regions[0].size;
	struct mb_limits lim = {LAYOUT_HIMEM, ram_hi, LAYOUT_LOWMEM_END};
	struct mb_image img;
	char err[256];
	int ret = mb_parse(f, len, &lim, &img, err, sizeof(err));

	if (ret < 0) {
		log_error("%s: %s", path, err);
		return ret;
	}
	ret = mb_load_segments(vm, f, &img);
	if (ret < 0)
		return ret;
	k->mode = X86_BOOT_MULTIBOOT;
	k->entry = img.entry;
	k->load_end = img.load_end;
	return 0;
}

int x86_multiboot_boot(struct vm *vm, const char *path, const struct x86_kernel *k)
{
	struct mb_module mods[MB_MAX_MODULES] = {{0}};
	unsigned int n = 0;
	int ret = mb_load_modules(vm, k->load_end, mods, &n);

	if (ret == -E2BIG)
		log_error("at most %d multiboot modules", MB_MAX_MODULES);
	if (ret == 0)
		ret = mb_write_boot_info(vm, path, mods, n);
	for (unsigned int i = 0; i < n; i++)
		free((char *)(uintptr_t)mods[i].string);
	return ret;
}
