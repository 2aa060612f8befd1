/*
 * What the kernel finds at entry: the initrd, the command line, and either
 * the zero page (struct boot_params, 64-bit boot protocol) or the PVH
 * hvm_start_info. Offsets are the boot protocol's (Documentation/arch/x86/
 * boot.rst, zero-page.rst), written field by field.
 */
#include "arch/x86/layout.h"
#include "arch/x86/x86.h"
#include "util/file.h"
#include "util/log.h"
#include "vmm/arch.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ZP_ACPI_RSDP	      0x070
#define ZP_EXT_RAMDISK_IMG    0x0c0
#define ZP_EXT_RAMDISK_SZ     0x0c4
#define ZP_E820_ENTRIES	      0x1e8
#define ZP_HDR		      0x1f1
#define ZP_BOOT_FLAG	      0x1fe
#define ZP_HEADER	      0x202
#define ZP_VERSION	      0x206
#define ZP_TYPE_OF_LOADER     0x210
#define ZP_LOADFLAGS	      0x211
#define ZP_RAMDISK_IMAGE      0x218
#define ZP_RAMDISK_SIZE	      0x21c
#define ZP_HEAP_END	      0x224
#define ZP_CMD_LINE_PTR	      0x228
#define ZP_KERNEL_ALIGN	      0x230
#define ZP_CMDLINE_SIZE	      0x238
#define ZP_E820_TABLE	      0x2d0
#define ZP_E820_MAX	      128
#define LOADFLAG_LOADED_HIGH  0x01
#define LOADFLAG_CAN_USE_HEAP 0x80

#define PVH_MAGIC   0x336ec578
#define PVH_MODLIST (LAYOUT_PVH_INFO + 0x40)

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* The memory map the zero page and the PVH start info give (RAM above 1 MiB per region). */
unsigned int x86_e820_map(const struct vm *vm, struct x86_e820 map[X86_MAX_E820])
{
	unsigned int n = 0, i;

	/* Below 1 MiB: conventional memory, then the EBDA/BIOS area with ACPI. */
	map[n++] = (struct x86_e820){0, LAYOUT_EBDA, E820_RAM};
	map[n++] = (struct x86_e820){LAYOUT_EBDA, LAYOUT_HIMEM - LAYOUT_EBDA, E820_RESERVED};
	for (i = 0; i < vm->mem.count; i++) {
		const struct gm_region *r = &vm->mem.regions[i];
		uint64_t start = r->gpa < LAYOUT_HIMEM ? LAYOUT_HIMEM : r->gpa;

		if (r->gpa + r->size > start)
			map[n++] = (struct x86_e820){start, r->gpa + r->size - start, E820_RAM};
	}
	return n;
}

static int write_cmdline(struct vm *vm, const struct x86_kernel *k)
{
	const char *cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	size_t len = strlen(cmdline);
	uint32_t max =
	    k->cmdline_size < LAYOUT_CMDLINE_MAX - 1 ? k->cmdline_size : LAYOUT_CMDLINE_MAX - 1;

	if (len > max) {
		log_error("kernel command line is %zu bytes; this kernel takes at most %u", len,
			  max);
		return -E2BIG;
	}
	return gm_write(&vm->mem, LAYOUT_CMDLINE, cmdline, len + 1);
}

static void zp_write_e820(struct vm *vm, uint8_t *zp)
{
	struct x86_e820 map[X86_MAX_E820];
	unsigned int n = x86_e820_map(vm, map), i;

	zp[ZP_E820_ENTRIES] = (uint8_t)n;
	for (i = 0; i < n; i++) {
		uint8_t *e = zp + ZP_E820_TABLE + 20 * i;

		put64(e, map[i].addr);
		put64(e + 8, map[i].size);
		put32(e + 16, map[i].type);
	}
}

int x86_write_boot_params(struct vm *vm, const struct x86_kernel *k, uint64_t initrd_gpa,
			  uint64_t initrd_size)
{
	uint8_t *zp = gm_ptr(&vm->mem, LAYOUT_ZERO_PAGE, 4096);

	if (!zp)
		return -EFAULT;
	memset(zp, 0, 4096);
	if (k->setup_hdr) {
		memcpy(zp + ZP_HDR, k->setup_hdr, k->setup_hdr_len);
	} else {
		/* An ELF vmlinux has no setup header: write the fields it reads. */
		put16(zp + ZP_BOOT_FLAG, 0xaa55);
		memcpy(zp + ZP_HEADER, "HdrS", 4);
		put16(zp + ZP_VERSION, 0x020f);
		put32(zp + ZP_KERNEL_ALIGN, 0x1000000);
		put32(zp + ZP_CMDLINE_SIZE, k->cmdline_size);
	}
	zp[ZP_TYPE_OF_LOADER] = 0xff;
	zp[ZP_LOADFLAGS] |= LOADFLAG_LOADED_HIGH | LOADFLAG_CAN_USE_HEAP;
	put16(zp + ZP_HEAP_END, 0xfe00);
	put32(zp + ZP_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);
	put32(zp + ZP_RAMDISK_IMAGE, (uint32_t)initrd_gpa);
	put32(zp + ZP_RAMDISK_SIZE, (uint32_t)initrd_size);
	put32(zp + ZP_EXT_RAMDISK_IMG, (uint32_t)(initrd_gpa >> 32));
	put32(zp + ZP_EXT_RAMDISK_SZ, (uint32_t)(initrd_size >> 32));
	put64(zp + ZP_ACPI_RSDP, vm->arch->rsdp_gpa);
	zp_write_e820(vm, zp);
	return write_cmdline(vm, k);
}

int x86_write_pvh_info(struct vm *vm, uint64_t initrd_gpa, uint64_t initrd_size)
{
	struct x86_e820 map[X86_MAX_E820];
	unsigned int n = x86_e820_map(vm, map), i;
	uint8_t *si = gm_ptr(&vm->mem, LAYOUT_PVH_INFO, 0x100);
	uint8_t *mm = gm_ptr(&vm->mem, LAYOUT_PVH_MEMMAP, 24 * X86_MAX_E820);

	if (!si || !mm)
		return -EFAULT;
	memset(si, 0, 0x100);
	put32(si + 0, PVH_MAGIC);
	put32(si + 4, 1); /* version 1: has the memory map fields */
	if (initrd_size) {
		uint8_t *mod = si + (PVH_MODLIST - LAYOUT_PVH_INFO);

		put32(si + 12, 1);
		put64(si + 16, PVH_MODLIST);
		put64(mod, initrd_gpa);
		put64(mod + 8, initrd_size);
	}
	put64(si + 24, LAYOUT_CMDLINE);
	put64(si + 32, vm->arch->rsdp_gpa);
	put64(si + 40, LAYOUT_PVH_MEMMAP);
	put32(si + 48, n);
	for (i = 0; i < n; i++) {
		put64(mm + 24 * i, map[i].addr);
		put64(mm + 24 * i + 8, map[i].size);
		put32(mm + 24 * i + 16, map[i].type);
		put32(mm + 24 * i + 20, 0);
	}
	return 0;
}

/* The initrd goes as high as the kernel allows in low memory, page aligned. */
static int load_initrd(struct vm *vm, const struct x86_kernel *k, uint64_t *gpa, uint64_t *size)
{
	const char *path = vm->cfg.initrd_path;
	uint64_t top = vm->mem.regions[0].size, addr;
	int ret;

	*gpa = *size = 0;
	if (vm->cfg.nmodules) {
		log_error("several --initrd, or one with a command line, need a multiboot kernel");
		return -EINVAL;
	}
	if (!path)
		return 0;
	ret = file_size(path, size);
	if (ret < 0) {
		log_error("cannot read initrd %s: %s", path,
			  ret == -FILE_EKIND ? file_kind_error(FILE_KIND_REG) : strerror(-ret));
		return ret;
	}
	if (k->initrd_addr_max && (uint64_t)k->initrd_addr_max + 1 < top)
		top = (uint64_t)k->initrd_addr_max + 1;
	addr = (top - *size) & ~0xfffULL;
	if (*size == 0 || *size > top || addr < k->load_end) {
		log_error("initrd %s (%llu bytes) does not fit in guest memory above the kernel",
			  path, (unsigned long long)*size);
		return -ENOMEM;
	}
	ret = file_read_into(path, gm_ptr(&vm->mem, addr, *size), *size);
	if (ret < 0) {
		log_error("cannot read initrd %s: %s", path, strerror(-ret));
		return ret;
	}
	*gpa = addr;
	return 0;
}

int x86_boot_kernel(struct vm *vm)
{
	struct x86_kernel k;
	uint64_t initrd_gpa, initrd_size;
	uint8_t *file;
	size_t len;
	int ret;

	ret = x86_load_kernel(vm, vm->cfg.kernel_path, &k, &file, &len);
	if (ret < 0)
		return ret;
	if (k.mode == X86_BOOT_MULTIBOOT) {
		free(file);
		vm->arch->boot = (struct x86_boot_entry){k.mode, k.entry, LAYOUT_MB_INFO};
		return x86_multiboot_boot(vm, vm->cfg.kernel_path, &k);
	}
	ret = load_initrd(vm, &k, &initrd_gpa, &initrd_size);
	if (ret == 0 && k.mode == X86_BOOT_PVH)
		ret = write_cmdline(vm, &k);
	if (ret == 0)
		ret = k.mode == X86_BOOT_PVH
			  ? x86_write_pvh_info(vm, initrd_gpa, initrd_size)
			  : x86_write_boot_params(vm, &k, initrd_gpa, initrd_size);
	free(file);
	vm->arch->boot.mode = k.mode;
	vm->arch->boot.entry = k.entry;
	vm->arch->boot.boot_arg = k.mode == X86_BOOT_PVH ? LAYOUT_PVH_INFO : LAYOUT_ZERO_PAGE;
	return ret;
}
