/*
 * Multiboot test kernel for CPU templates (--cpu-template): executes CPUID
 * and checks one bit the template sets and one it clears. The test passes
 * them on the command line, each as leaf, subleaf, register (0 eax .. 3
 * edx) and bit: "sl=6 ss=0 sr=2 sb=3 cl=1 cs=0 cr=2 cb=20" (set: CPUID.6:
 * ECX bit 3; clear: CPUID.1:ECX bit 20). Returns MB_PASS, 1 when the set
 * bit is clear, 2 when the cleared bit is set, 3 for a bad command line.
 */
#include "mb.h"

static uint32_t cpuid_reg(uint32_t leaf, uint32_t subleaf, long reg)
{
	uint32_t r[4];

	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(subleaf));
	return r[reg & 3];
}

/* The bit the words "Pl= Ps= Pr= Pb=" name (P is @p); -1 when one is missing. */
static int bit_of(const char *cmd, char p)
{
	char key[3] = {p, 'l', 0};
	long v[4];

	for (int i = 0; i < 4; i++) {
		key[1] = "lsrb"[i];
		v[i] = arg_num(cmd, key);
		if (v[i] < 0)
			return -1;
	}
	if (v[2] > 3 || v[3] > 31)
		return -1;
	return (int)(cpuid_reg((uint32_t)v[0], (uint32_t)v[1], v[2]) >> v[3] & 1);
}

uint32_t mb_main(uint32_t magic, const struct mb_info *mbi, uint32_t cr0, uint32_t eflags)
{
	const char *cmd = (const char *)mbi->cmdline;
	int set, clear;

	(void)magic;
	(void)cr0;
	(void)eflags;
	set = bit_of(cmd, 's');
	clear = bit_of(cmd, 'c');
	if (set < 0 || clear < 0)
		return 3;
	if (set != 1)
		return 1;
	if (clear != 0)
		return 2;
	return MB_PASS;
}
