/*
 * The multiboot header and the image it describes, checked before a byte
 * reaches guest memory. Pure functions of the file: every offset and size
 * is tested against the file's length, every address against the limits.
 */
#include "arch/x86/multiboot.h"

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MB_KNOWN_REQUIREMENTS (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMORY | MB_FLAG_VIDEO)
#define MB_AOUT_HEADER_LEN    32 /* magic, flags, checksum, then five address fields */

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

__attribute__((format(printf, 3, 4))) static int reject(char *err, size_t errlen, const char *fmt,
							...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -ENOEXEC;
}

long mb_find_header(const uint8_t *f, size_t len)
{
	size_t end = len < MB_SEARCH_LEN ? len : MB_SEARCH_LEN;

	for (size_t off = 0; off + 12 <= end; off += 4) {
		uint32_t magic = rd32(f + off), flags = rd32(f + off + 4);

		if (magic == MB_HEADER_MAGIC && (uint32_t)(magic + flags + rd32(f + off + 8)) == 0)
			return (long)off;
	}
	return -ENOENT;
}

/* A segment inside the limits and clear of the others already accepted. */
static int check_segment(const struct mb_image *img, const struct mb_segment *s,
			 const struct mb_limits *lim, char *err, size_t errlen)
{
	uint64_t end = s->paddr + s->memsz;

	if (end < s->paddr || s->paddr < lim->ram_lo)
		return reject(err, errlen, "segment at 0x%llx is below 0x%llx, where kernels load",
			      (unsigned long long)s->paddr, (unsigned long long)lim->ram_lo);
	if (end > lim->ram_hi && end > lim->hole)
		return reject(err, errlen,
			      "segment 0x%llx-0x%llx reaches the device hole at 0x%llx",
			      (unsigned long long)s->paddr, (unsigned long long)end,
			      (unsigned long long)lim->hole);
	if (end > lim->ram_hi)
		return reject(err, errlen, "segment 0x%llx-0x%llx is beyond the end of guest RAM",
			      (unsigned long long)s->paddr, (unsigned long long)end);
	for (unsigned int i = 0; i < img->nseg; i++) {
		const struct mb_segment *o = &img->seg[i];

		if (s->paddr < o->paddr + o->memsz && o->paddr < end)
			return reject(err, errlen, "segments at 0x%llx and 0x%llx overlap",
				      (unsigned long long)o->paddr, (unsigned long long)s->paddr);
	}
	return 0;
}

static int add_segment(struct mb_image *img, const struct mb_segment *s,
		       const struct mb_limits *lim, char *err, size_t errlen)
{
	int ret;

	if (img->nseg == MB_MAX_SEGMENTS)
		return reject(err, errlen, "more than %d loadable segments", MB_MAX_SEGMENTS);
	ret = check_segment(img, s, lim, err, errlen);
	if (ret < 0)
		return ret;
	img->seg[img->nseg++] = *s;
	if (img->nseg == 1 || s->paddr < img->load_start)
		img->load_start = s->paddr;
	if (s->paddr + s->memsz > img->load_end)
		img->load_end = s->paddr + s->memsz;
	return 0;
}

/* The header's address fields (the "a.out kludge"): one segment from the file. */
static int parse_aout(const uint8_t *f, size_t len, const struct mb_limits *lim,
		      struct mb_image *img, char *err, size_t errlen)
{
	const uint8_t *h = f + img->header_offset;
	uint32_t header_addr, load_addr, load_end, bss_end;
	struct mb_segment s;

	if (img->header_offset + MB_AOUT_HEADER_LEN > len)
		return reject(err, errlen, "truncated multiboot header (address fields missing)");
	header_addr = rd32(h + 12);
	load_addr = rd32(h + 16);
	load_end = rd32(h + 20);
	bss_end = rd32(h + 24);
	img->entry = rd32(h + 28);
	if (load_addr > header_addr || header_addr - load_addr > img->header_offset)
		return reject(err, errlen, "multiboot load_addr 0x%x is not before the header",
			      load_addr);
	s.offset = img->header_offset - (header_addr - load_addr);
	s.paddr = load_addr;
	s.filesz = load_end ? (uint64_t)load_end - load_addr : len - s.offset;
	if (load_end && load_end < load_addr)
		return reject(err, errlen, "multiboot load_end_addr 0x%x is below load_addr",
			      load_end);
	if (s.filesz > len - s.offset)
		return reject(err, errlen,
			      "multiboot load_end_addr 0x%x is past the end of the file", load_end);
	s.memsz = bss_end ? (uint64_t)bss_end - load_addr : s.filesz;
	if (bss_end && s.memsz < s.filesz)
		return reject(err, errlen, "multiboot bss_end_addr 0x%x is below load_end_addr",
			      bss_end);
	if (s.memsz == 0)
		return reject(err, errlen, "multiboot header describes nothing to load");
	return add_segment(img, &s, lim, err, errlen);
}

/* A virtual entry point inside a segment is moved to its physical address. */
static uint32_t elf_entry_phys(const uint8_t *f, const Elf32_Ehdr *eh)
{
	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		Elf32_Phdr ph;

		memcpy(&ph, f + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD && eh->e_entry >= ph.p_vaddr &&
		    eh->e_entry - ph.p_vaddr < ph.p_memsz)
			return eh->e_entry - ph.p_vaddr + ph.p_paddr;
	}
	return eh->e_entry;
}

static int parse_elf32(const uint8_t *f, size_t len, const struct mb_limits *lim,
		       struct mb_image *img, char *err, size_t errlen)
{
	Elf32_Ehdr eh;
	int ret;

	if (len < sizeof(eh))
		return reject(err, errlen, "truncated ELF header");
	memcpy(&eh, f, sizeof(eh));
	if (eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_386 ||
	    eh.e_phentsize != sizeof(Elf32_Phdr))
		return reject(err, errlen, "not an i386 ELF32 multiboot kernel");
	if (eh.e_phoff > len || (uint64_t)eh.e_phnum * sizeof(Elf32_Phdr) > len - eh.e_phoff)
		return reject(err, errlen, "truncated ELF program header table");
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf32_Phdr ph;
		struct mb_segment s;

		memcpy(&ph, f + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		s = (struct mb_segment){ph.p_offset, ph.p_filesz, ph.p_paddr, ph.p_memsz};
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > len ||
		    ph.p_filesz > len - ph.p_offset)
			return reject(err, errlen, "ELF segment %u lies outside the file", i);
		ret = add_segment(img, &s, lim, err, errlen);
		if (ret < 0)
			return ret;
	}
	if (img->nseg == 0)
		return reject(err, errlen, "ELF file has nothing to load");
	img->entry = elf_entry_phys(f, &eh);
	return 0;
}

static bool entry_loaded(const struct mb_image *img)
{
	for (unsigned int i = 0; i < img->nseg; i++)
		if (img->entry >= img->seg[i].paddr &&
		    img->entry - img->seg[i].paddr < img->seg[i].filesz)
			return true;
	return false;
}

int mb_parse(const uint8_t *f, size_t len, const struct mb_limits *lim, struct mb_image *img,
	     char *err, size_t errlen)
{
	long off = mb_find_header(f, len);
	bool elf = len >= SELFMAG && memcmp(f, ELFMAG, SELFMAG) == 0;
	int ret;

	memset(img, 0, sizeof(*img));
	if (off < 0)
		return reject(err, errlen, "no multiboot header in the first 8 KiB");
	img->header_offset = (uint32_t)off;
	img->flags = rd32(f + off + 4);
	if (img->flags & 0xffff & ~MB_KNOWN_REQUIREMENTS)
		return reject(err, errlen, "multiboot header requires features 0x%x Banyan lacks",
			      img->flags & 0xffff & ~MB_KNOWN_REQUIREMENTS);
	if (!(img->flags & MB_FLAG_AOUT) && elf && len > EI_CLASS && f[EI_CLASS] == ELFCLASS64)
		return reject(err, errlen,
			      "a 64-bit ELF with a multiboot header cannot be "
			      "loaded: multiboot kernels are 32-bit ELF (or set "
			      "the header's address fields)");
	if (img->flags & MB_FLAG_AOUT)
		ret = parse_aout(f, len, lim, img, err, errlen);
	else if (elf && len > EI_CLASS && f[EI_CLASS] == ELFCLASS32)
		ret = parse_elf32(f, len, lim, img, err, errlen);
	else
		ret =
		    reject(err, errlen, "multiboot kernel is neither ELF32 nor has address fields");
	if (ret == 0 && !entry_loaded(img))
		ret =
		    reject(err, errlen, "entry point 0x%x is outside the loaded image", img->entry);
	return ret;
}
