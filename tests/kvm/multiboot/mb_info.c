/*
 * Multiboot test kernel: checks the entry state and every field of the
 * information structure Banyan fills. The test passes what to expect on
 * the command line: "nmods=N upper=KIB"; module i holds the text
 * "MODULEi", the first has the command line "first-module", the others
 * none. Returns MB_PASS, or the number of the first check that failed.
 */
#include "mb.h"

#define MBI_FLAGS 0x24d /* memory, cmdline, mods, mmap, boot loader name */

extern char _end[];
static volatile uint32_t bss_probe[1024]; /* must read as zero: the loader clears bss */

static int check_entry(uint32_t magic, uint32_t cr0, uint32_t eflags)
{
	if (magic != 0x2badb002)
		return 1;
	if ((cr0 & 1) == 0 || (cr0 & 0x80000000)) /* protected mode, paging off */
		return 2;
	if (eflags & ((1U << 9) | (1U << 17))) /* IF and VM clear */
		return 3;
	for (int i = 0; i < 1024; i++)
		if (bss_probe[i])
			return 4;
	return 0;
}

static int check_module(const struct mb_mod *m, int i, uint32_t prev_end)
{
	const char *data = (const char *)m->start, *s = (const char *)m->string;

	if (m->start & 0xfff || m->start < prev_end || m->end - m->start != 7)
		return 10;
	if (data[0] != 'M' || data[5] != 'E' || data[6] != '0' + i)
		return 11;
	if (i == 0 ? !str_ends(s, "/mod0 first-module") : !str_ends(s, "/mod1"))
		return 12;
	return 0;
}

static int check_mmap(const struct mb_info *mbi, uint32_t upper)
{
	int low = 0, high = 0;

	if (mbi->mmap_length == 0 || mbi->mmap_length % 24)
		return 20;
	for (uint32_t off = 0; off < mbi->mmap_length; off += 24) {
		const struct mb_mmap *e = (const struct mb_mmap *)(mbi->mmap_addr + off);

		if (e->size != 20)
			return 21;
		if (e->addr == 0 && e->type == 1 && e->len == (uint64_t)mbi->mem_lower * 1024)
			low = 1;
		if (e->addr == 0x100000 && e->type == 1 && e->len == (uint64_t)upper * 1024)
			high = 1;
	}
	return low && high ? 0 : 22;
}

/* "/PATH/mb_info.elf nmods=...": the path as given, one space, the operator's line. */
static int check_cmdline(const char *cmd)
{
	static const char name[] = "/mb_info.elf";
	int sp = 0, n = (int)sizeof(name) - 1;

	while (cmd[sp] && cmd[sp] != ' ')
		sp++;
	if (sp < n || cmd[sp] != ' ' || cmd[sp + 1] != 'n')
		return 0;
	for (int i = 0; i < n; i++)
		if (cmd[sp - n + i] != name[i])
			return 0;
	return 1;
}

uint32_t mb_main(uint32_t magic, const struct mb_info *mbi, uint32_t cr0, uint32_t eflags)
{
	const char *cmd = (const char *)mbi->cmdline;
	const struct mb_mod *mods = (const struct mb_mod *)mbi->mods_addr;
	long nmods = arg_num(cmd, "nmods"), upper = arg_num(cmd, "upper");
	uint32_t prev = (uint32_t)_end;
	int ret = check_entry(magic, cr0, eflags);

	if (ret)
		return ret;
	if ((mbi->flags & MBI_FLAGS) != MBI_FLAGS)
		return 5;
	if (mbi->mem_lower != 639 || upper < 0 || mbi->mem_upper != (uint32_t)upper)
		return 6;
	/* The command line: the kernel's path, a space, then --cmdline. */
	if (!check_cmdline(cmd))
		return 7;
	if (nmods < 0 || mbi->mods_count != (uint32_t)nmods)
		return 8;
	for (uint32_t i = 0; i < mbi->mods_count; i++) {
		ret = check_module(&mods[i], (int)i, prev);
		if (ret)
			return ret;
		prev = mods[i].end;
	}
	ret = check_mmap(mbi, mbi->mem_upper);
	if (ret)
		return ret;
	if (!str_eq((const char *)mbi->boot_loader_name, "banyan"))
		return 30;
	return MB_PASS;
}
