/* The multiboot parser and information structure, on crafted images (no KVM). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/multiboot.h"

#define MIB (1ULL << 20)

static const struct mb_limits lim = {MIB, 64 * MIB, 0xc0000000ULL};
static uint8_t img_buf[0x4000];
static char err[256];

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void header(uint8_t *p, uint32_t flags)
{
	put32(p, MB_HEADER_MAGIC);
	put32(p + 4, flags);
	put32(p + 8, -(MB_HEADER_MAGIC + flags));
}

/* An a.out-kludge image at @off whose header says: load @load..+@size, bss to +@bss. */
static size_t aout(uint32_t off, uint32_t load, uint32_t size, uint32_t bss, uint32_t entry)
{
	memset(img_buf, 0, sizeof(img_buf));
	header(img_buf + off, MB_FLAG_AOUT);
	put32(img_buf + off + 12, load + off); /* header_addr */
	put32(img_buf + off + 16, load);
	put32(img_buf + off + 20, load + size);
	put32(img_buf + off + 24, bss ? load + bss : 0);
	put32(img_buf + off + 28, entry);
	return size;
}

/* An ELF32 with @n PT_LOAD segments (paddr, memsz pairs; filesz 0x100 at offset 0x1000). */
static size_t elf32(const uint32_t (*segs)[2], unsigned int n, uint32_t entry)
{
	Elf32_Ehdr eh = {.e_type = ET_EXEC,
			 .e_machine = EM_386,
			 .e_version = 1,
			 .e_entry = entry,
			 .e_phoff = sizeof(Elf32_Ehdr),
			 .e_ehsize = sizeof(Elf32_Ehdr),
			 .e_phentsize = sizeof(Elf32_Phdr),
			 .e_phnum = (uint16_t)n};

	memset(img_buf, 0, sizeof(img_buf));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	memcpy(img_buf, &eh, sizeof(eh));
	for (unsigned int i = 0; i < n; i++) {
		Elf32_Phdr ph = {.p_type = PT_LOAD,
				 .p_offset = 0x1000,
				 .p_vaddr = segs[i][0],
				 .p_paddr = segs[i][0],
				 .p_filesz = 0x100,
				 .p_memsz = segs[i][1]};

		memcpy(img_buf + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
	}
	header(img_buf + 0x800, 0);
	return 0x1100;
}

static void test_find_header(void **st)
{
	(void)st;
	memset(img_buf, 0, sizeof(img_buf));
	assert_int_equal(mb_find_header(img_buf, sizeof(img_buf)), -ENOENT);
	header(img_buf + 0x1ffc - 8, 0); /* the last aligned place inside 8 KiB */
	assert_int_equal(mb_find_header(img_buf, sizeof(img_buf)), 0x1ffc - 8);
	assert_int_equal(mb_find_header(img_buf, 0x1ffc - 8 + 11), -ENOENT); /* cut short */
	memset(img_buf, 0, sizeof(img_buf));
	header(img_buf + 0x2000, 0); /* beyond 8 KiB */
	assert_int_equal(mb_find_header(img_buf, sizeof(img_buf)), -ENOENT);
	header(img_buf + 0x102, 0); /* unaligned */
	assert_int_equal(mb_find_header(img_buf, sizeof(img_buf)), -ENOENT);
}

static void test_aout(void **st)
{
	struct mb_image img;
	size_t len = aout(0x40, 0x200000, 0x1000, 0x3000, 0x200040 + 32);

	(void)st;
	assert_int_equal(mb_parse(img_buf, len, &lim, &img, err, sizeof(err)), 0);
	assert_int_equal(img.nseg, 1);
	assert_int_equal(img.seg[0].offset, 0);
	assert_int_equal(img.seg[0].paddr, 0x200000);
	assert_int_equal(img.seg[0].filesz, 0x1000);
	assert_int_equal(img.seg[0].memsz, 0x3000);
	assert_int_equal(img.entry, 0x200060);
	assert_int_equal(img.load_end, 0x203000);
}

static void test_aout_bad(void **st)
{
	struct mb_image img;
	size_t len;

	(void)st;
	len = aout(0, 0x200000, 0x1000, 0, 0x200100);
	assert_int_equal(mb_parse(img_buf, 20, &lim, &img, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "truncated"));
	assert_int_equal(mb_parse(img_buf, len - 1, &lim, &img, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "past the end of the file"));
	len = aout(0, 64 * MIB - 0x800, 0x1000, 0, 64 * MIB - 0x700);
	assert_int_equal(mb_parse(img_buf, len, &lim, &img, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "beyond the end of guest RAM"));
	len = aout(0, 0x80000, 0x1000, 0, 0x80100); /* below 1 MiB */
	assert_int_equal(mb_parse(img_buf, len, &lim, &img, err, sizeof(err)), -ENOEXEC);
	len = aout(0, 0x200000, 0x1000, 0, 0x300000); /* entry outside */
	assert_int_equal(mb_parse(img_buf, len, &lim, &img, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "entry point"));
	len = aout(0, 0x200000, 0x1000, 0x800, 0x200100); /* bss below the load end */
	assert_int_equal(mb_parse(img_buf, len, &lim, &img, err, sizeof(err)), -ENOEXEC);
	len = aout(0x40, 0x200000, 0x1000, 0, 0x200100);
	put32(img_buf + 0x40 + 12, 0x100000); /* header_addr before load_addr */
	assert_int_equal(mb_parse(img_buf, len, &lim, &img, err, sizeof(err)), -ENOEXEC);
}

static void test_hole(void **st)
{
	const struct mb_limits big = {MIB, 0xc0000000ULL, 0xc0000000ULL};
	struct mb_image img;
	size_t len = aout(0, 0xbffff000, 0x2000, 0, 0xbffff100);

	(void)st;
	assert_int_equal(mb_parse(img_buf, len, &big, &img, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "device hole"));
}

static void test_requirements(void **st)
{
	struct mb_image img;
	size_t len = aout(0, 0x200000, 0x1000, 0, 0x200100);

	(void)st;
	header(img_buf, MB_FLAG_AOUT | 1U << 5); /* a requirement Banyan does not know */
	assert_int_equal(mb_parse(img_buf, len, &lim, &img, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "requires"));
	header(img_buf, MB_FLAG_AOUT | MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMORY | 1U << 20);
	assert_int_equal(mb_parse(img_buf, len, &lim, &img, err, sizeof(err)), 0);
}

static void test_elf32(void **st)
{
	static const uint32_t segs[2][2] = {{0x100000, 0x1000}, {0x200000, 0x5000}};
	struct mb_image img;
	size_t len = elf32(segs, 2, 0x100010);

	(void)st;
	assert_int_equal(mb_parse(img_buf, len, &lim, &img, err, sizeof(err)), 0);
	assert_int_equal(img.nseg, 2);
	assert_int_equal(img.seg[1].memsz, 0x5000);
	assert_int_equal(img.entry, 0x100010);
	assert_int_equal(img.load_start, 0x100000);
	assert_int_equal(img.load_end, 0x205000);
}

static void test_elf32_bad(void **st)
{
	static const uint32_t overlap[2][2] = {{0x100000, 0x2000}, {0x101000, 0x1000}};
	static const uint32_t one[1][2] = {{0x100000, 0x1000}};
	struct mb_image img;
	size_t len = elf32(overlap, 2, 0x100010);

	(void)st;
	assert_int_equal(mb_parse(img_buf, len, &lim, &img, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "overlap"));
	len = elf32(one, 1, 0x100010);
	assert_int_equal(mb_parse(img_buf, 0x1080, &lim, &img, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "outside the file"));
	((Elf32_Ehdr *)(void *)img_buf)->e_phnum = 200; /* table past the end */
	assert_int_equal(mb_parse(img_buf, len, &lim, &img, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "program header"));
	len = elf32(one, 1, 0x100010);
	img_buf[EI_CLASS] = ELFCLASS64;
	assert_int_equal(mb_parse(img_buf, len, &lim, &img, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "64-bit ELF"));
}

/* Every prefix of a valid image is refused or accepted, never read past. */
static void test_prefixes(void **st)
{
	static const uint32_t segs[1][2] = {{0x100000, 0x1000}};
	struct mb_image img;
	size_t len = elf32(segs, 1, 0x100010);

	(void)st;
	for (size_t n = 0; n < len; n++) {
		uint8_t *copy = malloc(n ? n : 1);

		memcpy(copy, img_buf, n);
		assert_int_equal(mb_parse(copy, n, &lim, &img, err, sizeof(err)), -ENOEXEC);
		free(copy);
	}
}

static uint8_t ram[0x40000];

static uint32_t rd32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, ram + gpa, 4);
	return v;
}

static void test_info(void **st)
{
	const struct x86_e820 map[] = {
	    {0, 0x9fc00, E820_RAM}, {0x9fc00, 0x60400, E820_RESERVED}, {MIB, 63 * MIB, E820_RAM}};
	const struct mb_module mods[] = {{0x200000, 0x200007, "/m0 arg"},
					 {0x201000, 0x201003, "/m1"}};
	struct mb_boot b = {"/k.elf x=1", mods, 2, map, 3};
	struct guest_mem gm = {0};

	(void)st;
	assert_int_equal(gm_add_region(&gm, 0, sizeof(ram), ram), 0);
	assert_int_equal(mb_write_info(&gm, 0x7000, 0x20000, 0x100, &b), 0);
	assert_int_equal(rd32(0x7000) & 0x24d, 0x24d);
	assert_int_equal(rd32(0x7004), 639);
	assert_int_equal(rd32(0x7008), 63 * 1024);
	assert_string_equal((char *)ram + rd32(0x7010), "/k.elf x=1");
	assert_int_equal(rd32(0x7014), 2);
	assert_int_equal(rd32(rd32(0x7018) + 16), 0x201000);
	assert_int_equal(rd32(rd32(0x7018) + 20), 0x201003);
	assert_string_equal((char *)ram + rd32(rd32(0x7018) + 24), "/m1");
	assert_int_equal(rd32(0x702c), 3 * 24);
	assert_int_equal(rd32(rd32(0x7030) + 48), 20);
	assert_int_equal(rd32(rd32(0x7030) + 48 + 4), MIB);
	assert_string_equal((char *)ram + rd32(0x7040), "banyan");
	/* Strings that do not fit: -E2BIG, never past the area. */
	assert_int_equal(mb_write_info(&gm, 0x7000, 0x20000, 12, &b), -E2BIG);
	assert_int_equal(mb_write_info(&gm, 0x7000, 0x3ff00, 0x1000, &b), -EFAULT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_find_header),	 cmocka_unit_test(test_aout),
	    cmocka_unit_test(test_aout_bad),	 cmocka_unit_test(test_hole),
	    cmocka_unit_test(test_requirements), cmocka_unit_test(test_elf32),
	    cmocka_unit_test(test_elf32_bad),	 cmocka_unit_test(test_prefixes),
	    cmocka_unit_test(test_info),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
