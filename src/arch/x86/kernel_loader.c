/*
 * Loading a Linux kernel into guest memory: a bzImage through the 64-bit
 * boot protocol, or an ELF vmlinux (PVH entry when it carries the Xen PVH
 * note). Every offset and size read from the file is checked before use.
 */
#include "arch/x86/layout.h"
#include "arch/x86/multiboot.h"
#include "arch/x86/x86.h"
#include "util/file.h"
#include "util/log.h"
#include "vmm/vm.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KERNEL_MAX_FILE		 (512ULL << 20)
#define BZ_MIN_PROTOCOL		 0x020c /* first version with the 64-bit entry */
#define BZ_XLF_KERNEL_64	 0x1
#define BZ_64BIT_ENTRY_OFF	 0x200
#define XEN_ELFNOTE_PHYS32_ENTRY 18

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool is_bzimage(const uint8_t *f, size_t len)
{
	return len >= 0x270 && le16(f + 0x1fe) == 0xaa55 && memcmp(f + 0x202, "HdrS", 4) == 0;
}

static bool is_elf64(const uint8_t *f, size_t len)
{
	return len >= sizeof(Elf64_Ehdr) && memcmp(f, ELFMAG, SELFMAG) == 0 &&
	       f[EI_CLASS] == ELFCLASS64;
}

static int bz_load(struct vm *vm, const char *path, const uint8_t *f, size_t len,
		   struct x86_kernel *k)
{
	uint32_t setup_sects = f[0x1f1] ? f[0x1f1] : 4;
	uint64_t pm_off = (uint64_t)(setup_sects + 1) * 512;
	uint64_t need;
	void *dst;

	k->protocol = le16(f + 0x206);
	if (k->protocol < BZ_MIN_PROTOCOL || !(le16(f + 0x236) & BZ_XLF_KERNEL_64)) {
		log_error("%s: bzImage protocol %x has no 64-bit entry point", path, k->protocol);
		return -ENOEXEC;
	}
	if (pm_off >= len) {
		log_error("%s: truncated bzImage", path);
		return -ENOEXEC;
	}
	/* The decompressor needs init_size bytes at its preferred address. */
	need = (uint64_t)le32(f + 0x258) + le32(f + 0x260);
	if (need > vm->mem.regions[0].size) {
		log_error("%s: the kernel needs at least %llu MiB of memory", path,
			  (unsigned long long)(need >> 20) + 1);
		return -ENOMEM;
	}
	dst = gm_ptr(&vm->mem, LAYOUT_HIMEM, len - pm_off);
	if (!dst) {
		log_error("%s: kernel does not fit in guest memory", path);
		return -ENOMEM;
	}
	memcpy(dst, f + pm_off, len - pm_off);
	k->mode = X86_BOOT_LINUX64;
	k->entry = LAYOUT_HIMEM + BZ_64BIT_ENTRY_OFF;
	k->load_end = need > LAYOUT_HIMEM + (len - pm_off) ? need : LAYOUT_HIMEM + (len - pm_off);
	k->setup_hdr = f + 0x1f1;
	k->setup_hdr_len = 0x202 + f[0x201] - 0x1f1;
	if (k->setup_hdr_len > 0x290 - 0x1f1)
		k->setup_hdr_len = 0x290 - 0x1f1;
	k->initrd_addr_max = le32(f + 0x22c);
	k->cmdline_size = k->protocol >= 0x206 ? le32(f + 0x238) : 255;
	return 0;
}

/* The PVH entry from a PT_NOTE segment, or 0 when there is none. */
static uint64_t elf_pvh_entry(const uint8_t *f, size_t len, const Elf64_Phdr *ph)
{
	uint64_t off = ph->p_offset, end;

	if (off > len || ph->p_filesz > len - off)
		return 0;
	end = off + ph->p_filesz;
	while (end - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh, *n = &nh;
		uint64_t name, desc, next;

		memcpy(&nh, f + off, sizeof(nh)); /* notes in a hostile file may be unaligned */
		name = (n->n_namesz + 3ULL) & ~3ULL;
		desc = (n->n_descsz + 3ULL) & ~3ULL;
		next = off + sizeof(*n) + name + desc;

		if (next > end || next < off)
			return 0;
		if (n->n_type == XEN_ELFNOTE_PHYS32_ENTRY && n->n_namesz == 4 &&
		    memcmp(f + off + sizeof(*n), "Xen", 4) == 0 &&
		    (n->n_descsz == 4 || n->n_descsz == 8)) {
			uint64_t entry = 0;

			/* Little-endian: the low 4 bytes are the entry either way. */
			memcpy(&entry, f + off + sizeof(*n) + name, n->n_descsz);
			return entry;
		}
		off = next;
	}
	return 0;
}

static int elf_load_segment(struct vm *vm, const char *path, const uint8_t *f, size_t len,
			    const Elf64_Phdr *ph, struct x86_kernel *k)
{
	uint8_t *dst;

	if (ph->p_filesz > ph->p_memsz || ph->p_offset > len || ph->p_filesz > len - ph->p_offset) {
		log_error("%s: ELF segment outside the file", path);
		return -ENOEXEC;
	}
	dst = gm_ptr(&vm->mem, ph->p_paddr, ph->p_memsz);
	if (!dst || ph->p_paddr < LAYOUT_HIMEM) {
		log_error("%s: ELF segment at 0x%llx+0x%llx is outside guest RAM", path,
			  (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
		return -ENOMEM;
	}
	memcpy(dst, f + ph->p_offset, ph->p_filesz);
	memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	if (ph->p_paddr + ph->p_memsz > k->load_end)
		k->load_end = ph->p_paddr + ph->p_memsz;
	return 0;
}

static int elf_load(struct vm *vm, const char *path, const uint8_t *f, size_t len,
		    struct x86_kernel *k)
{
	const Elf64_Ehdr *eh = (const void *)f;
	uint64_t pvh = 0;
	unsigned int i;
	int ret;

	if (eh->e_machine != EM_X86_64 || eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    eh->e_phoff > len || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff) {
		log_error("%s: not an x86-64 ELF kernel", path);
		return -ENOEXEC;
	}
	for (i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, f + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD && ph.p_memsz) {
			ret = elf_load_segment(vm, path, f, len, &ph, k);
			if (ret < 0)
				return ret;
		} else if (ph.p_type == PT_NOTE && !pvh) {
			pvh = elf_pvh_entry(f, len, &ph);
		}
	}
	if (k->load_end == 0) {
		log_error("%s: ELF file has nothing to load", path);
		return -ENOEXEC;
	}
	k->mode = pvh ? X86_BOOT_PVH : X86_BOOT_LINUX64;
	k->entry = pvh ? pvh : eh->e_entry;
	k->initrd_addr_max = 0x7fffffff;
	k->cmdline_size = LAYOUT_CMDLINE_MAX - 1;
	return 0;
}

int x86_load_kernel(struct vm *vm, const char *path, struct x86_kernel *k, uint8_t **file,
		    size_t *file_len)
{
	uint8_t *f;
	size_t len;
	int ret;

	memset(k, 0, sizeof(*k));
	ret = file_read_all(path, KERNEL_MAX_FILE, &f, &len);
	if (ret < 0) {
		log_error("cannot read kernel %s: %s", path,
			  ret == -FILE_EKIND ? file_kind_error(FILE_KIND_REG) : strerror(-ret));
		return ret;
	}
	/* QEMU's order: a bzImage, then a multiboot header, then an ELF vmlinux. */
	if (is_bzimage(f, len)) {
		ret = bz_load(vm, path, f, len, k);
	} else if (mb_find_header(f, len) >= 0) {
		ret = x86_multiboot_load(vm, path, f, len, k);
	} else if (is_elf64(f, len)) {
		ret = elf_load(vm, path, f, len, k);
	} else {
		log_error(
		    "%s is not a kernel (neither a bzImage, a multiboot kernel nor an ELF vmlinux)",
		    path);
		ret = -ENOEXEC;
	}
	if (ret < 0) {
		free(f);
		return ret;
	}
	*file = f;
	*file_len = len;
	return 0;
}
