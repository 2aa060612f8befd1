/*
 * libFuzzer target: the kernel and initrd loaders (arch/x86/kernel_loader.c,
 * boot_info.c), everything a kernel file handed to `banyan run` reaches: the
 * bzImage signature, setup header, protocol, setup sectors and init_size;
 * an ELF64's header, program headers, PT_LOAD segments and the Xen PVH
 * note in PT_NOTE segments; then the initrd's placement under the kernel's
 * initrd_addr_max and above the loaded image, the command line against the
 * kernel's limit, and the zero page or PVH start info with the e820 map.
 *
 * Input:
 *   byte 0      flags: bits 0-1 the size of guest RAM below 4 GiB (2, 4, 16
 *               or 32 MiB), bit 2 an initrd, bit 3 a second RAM region of
 *               1 MiB at 4 GiB
 *   bytes 1-4   the initrd's size (a sparse file; only read when it fits)
 *   bytes 5-6   the command line's length (read up to a NUL)
 *   then        the command line, then the kernel file (the rest)
 *
 * Guest RAM is malloc'ed at its exact size, so ASan sees any write beyond
 * it. A load that succeeds is checked as the kernel would read it: the
 * initrd inside RAM, above 1 MiB and page aligned, the command line where
 * the zero page (or start info) says, NUL-terminated.
 *
 * Build and run: tests/fuzz/meson.build (the unit suite runs it briefly).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "arch/x86/x86.h"
#include "fuzz_input.h"
#include "fuzz_log.h"
#include "vmm/guest_mem.h"
#include "vmm/vm.h"

#define HIGH_SIZE (1ULL << 20)

static const uint64_t low_sizes[4] = {2ULL << 20, 4ULL << 20, 16ULL << 20, 32ULL << 20};
static uint8_t *low_ram[4], *high_ram;
static char dir[64], kernel_path[96], initrd_path[96];
static char cmdline[LAYOUT_CMDLINE_MAX + 16];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void remove_files(void)
{
	unlink(kernel_path);
	unlink(initrd_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	for (unsigned int i = 0; i < 4; i++)
		if (!(low_ram[i] = malloc(low_sizes[i])))
			abort();
	high_ram = malloc(HIGH_SIZE);
	snprintf(dir, sizeof(dir), "/dev/shm/fuzz-loader-XXXXXX");
	if (!high_ram || !mkdtemp(dir))
		abort();
	snprintf(kernel_path, sizeof(kernel_path), "%s/kernel", dir);
	snprintf(initrd_path, sizeof(initrd_path), "%s/initrd", dir);
	fuzz_log_quiet();
	atexit(remove_files);
	return 0;
}

static void put_file(const char *path, const void *buf, size_t len, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || (len && write(fd, buf, len) != (ssize_t)len) ||
	    ftruncate(fd, (off_t)size) < 0)
		abort(); /* the fuzzer's own directory */
	close(fd);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * A multiboot kernel (a file with a multiboot header in its first 8 KiB
 * takes that path whatever else it looks like) gets the initrd as its one
 * module, page aligned inside low RAM, and its command line from the
 * information structure: the kernel's path first.
 */
static void check_multiboot(const struct vm *vm, const uint8_t *info, bool initrd,
			    uint64_t initrd_size)
{
	const uint8_t *mod = gm_ptr(&vm->mem, rd32(info + 24), 16);
	const char *cl = gm_ptr(&vm->mem, rd32(info + 16), strlen(kernel_path) + 1);
	uint32_t start, end;

	/* An empty initrd file is still a module, as the operator asked (start == end). */
	if (rd32(info + 20) != (initrd ? 1u : 0u) || !cl ||
	    strncmp(cl, kernel_path, strlen(kernel_path)) != 0)
		abort();
	if (!initrd)
		return;
	if (!mod)
		abort();
	start = rd32(mod);
	end = rd32(mod + 4);
	if (end < start || end - start != initrd_size || (start & 0xfff) ||
	    end > vm->mem.regions[0].size)
		abort();
}

/* What the kernel would find: an initrd inside low RAM, the command line at its address. */
static void check_boot(const struct vm *vm, bool initrd, uint64_t initrd_size)
{
	const struct x86_boot_entry *b = &vm->arch->boot;
	const uint8_t *info = gm_ptr(&vm->mem, b->boot_arg, 4096);
	uint64_t gpa, len;
	const char *cl;

	if (!info)
		abort();
	if (b->mode == X86_BOOT_MULTIBOOT) {
		check_multiboot(vm, info, initrd, initrd_size);
		return;
	}
	if (b->mode == X86_BOOT_PVH) {
		gpa = rd32(info + 0x40) | (uint64_t)rd32(info + 0x44) << 32;
		len = rd32(info + 12) ? rd32(info + 0x48) | (uint64_t)rd32(info + 0x4c) << 32 : 0;
		if (!rd32(info + 12))
			gpa = 0;
	} else {
		gpa = rd32(info + 0x218) | (uint64_t)rd32(info + 0xc0) << 32;
		len = rd32(info + 0x21c) | (uint64_t)rd32(info + 0xc4) << 32;
	}
	if (len != initrd_size ||
	    (len && (gpa < LAYOUT_HIMEM || (gpa & 0xfff) || gpa + len > vm->mem.regions[0].size)))
		abort();
	cl = gm_ptr(&vm->mem, LAYOUT_CMDLINE, LAYOUT_CMDLINE_MAX);
	if (!cl || strcmp(cl, vm->cfg.cmdline) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct vm_arch arch = {.rsdp_gpa = LAYOUT_ACPI};
	struct vm vm = {.arch = &arch};
	uint8_t flags = fin_u8(&in);
	uint64_t initrd_size = fin_u32(&in);
	size_t n = fin_u16(&in);

	n = fin_bytes(&in, cmdline, n < LAYOUT_CMDLINE_MAX + 8 ? n : LAYOUT_CMDLINE_MAX + 8);
	cmdline[n] = '\0';
	put_file(kernel_path, in.p, in.left, in.left);
	if (flags & 4)
		put_file(initrd_path, NULL, 0, initrd_size);
	if (gm_add_region(&vm.mem, 0, low_sizes[flags & 3], low_ram[flags & 3]) < 0 ||
	    ((flags & 8) && gm_add_region(&vm.mem, LAYOUT_HIGHMEM, HIGH_SIZE, high_ram) < 0))
		abort();
	vm.cfg.kernel_path = kernel_path;
	vm.cfg.initrd_path = flags & 4 ? initrd_path : NULL;
	vm.cfg.cmdline = cmdline;
	if (x86_boot_kernel(&vm) == 0)
		check_boot(&vm, flags & 4, flags & 4 ? initrd_size : 0);
	return 0;
}
