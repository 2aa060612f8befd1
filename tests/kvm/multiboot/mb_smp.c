/*
 * Multiboot test kernel for SMP: reads the CPU count from fw_cfg (item
 * 0x5), starts every other vCPU with INIT and two start-up IPIs, and waits
 * (up to 2 s on the ACPI PM timer) for each to check in. An AP runs a
 * real-mode trampoline at 0x10000 that counts itself and marks its APIC ID
 * (CPUID.1:EBX[31:24]) in a bitmap. The test passes "cpus=N". Returns
 * MB_PASS, or: 1 no fw_cfg, 2 fw_cfg's count is not N, 3 not every AP
 * checked in, 4 the APIC IDs are not 1..N-1, 5 too many check-ins.
 */
#include "mb.h"

#define TRAMPOLINE  0x10000 /* start-up IPI vector 0x10 */
#define LAPIC	    0xfee00000
#define LAPIC_SVR   0xf0
#define LAPIC_ICR   0x300
#define ICR_ALL_BUT (3U << 18) /* destination shorthand: all excluding self */
#define ICR_ASSERT  (1U << 14)
#define ICR_INIT    (5U << 8)
#define ICR_SIPI    (6U << 8)
#define ICR_BUSY    (1U << 12)
#define PM_TIMER    0x608
#define PM_HZ	    3579545U

/* The AP's code, copied to TRAMPOLINE: real mode, CS = 0x1000. */
__asm__(".section .rodata\n"
	".code16\n"
	"ap_start:\n"
	"	cli\n"
	"	mov %cs, %ax\n"
	"	mov %ax, %ds\n"
	"	mov $1, %eax\n"
	"	cpuid\n"
	"	shr $24, %ebx\n"
	"	lock btsl %ebx, (ap_map - ap_start)\n"
	"	lock incl (ap_count - ap_start)\n"
	"1:	hlt\n"
	"	jmp 1b\n"
	"	.align 4\n"
	"ap_count: .long 0\n"
	"ap_map: .fill 8, 4, 0\n"
	"ap_end:\n"
	".code32\n"
	".previous\n");

extern const uint8_t ap_start[], ap_count[], ap_map[], ap_end[];

static volatile uint32_t *lapic(uint32_t reg)
{
	return (volatile uint32_t *)(LAPIC + reg);
}

static void ipi(uint32_t icr)
{
	*lapic(LAPIC_ICR + 0x10) = 0;
	*lapic(LAPIC_ICR) = icr;
	while (*lapic(LAPIC_ICR) & ICR_BUSY)
		;
}

/* Wait @ticks of the PM timer (it wraps at 32 bits). */
static void pm_wait(uint32_t ticks)
{
	uint32_t t0 = inl(PM_TIMER);

	while (inl(PM_TIMER) - t0 < ticks)
		;
}

static uint16_t fw_cfg_cpus(void)
{
	uint8_t sig[4], lo, hi;

	outw(0x510, 0);
	for (int i = 0; i < 4; i++)
		sig[i] = inb(0x511);
	if (sig[0] != 'Q' || sig[1] != 'E' || sig[2] != 'M' || sig[3] != 'U')
		return 0;
	outw(0x510, 5);
	lo = inb(0x511);
	hi = inb(0x511);
	return (uint16_t)(lo | hi << 8);
}

static volatile uint32_t *tramp(const uint8_t *sym)
{
	return (volatile uint32_t *)(TRAMPOLINE + (sym - ap_start));
}

static int check_aps(uint32_t n)
{
	volatile uint32_t *count = tramp(ap_count), *map = tramp(ap_map);
	uint32_t t0 = inl(PM_TIMER);

	while (*count < n - 1 && inl(PM_TIMER) - t0 < 2 * PM_HZ)
		;
	pm_wait(PM_HZ / 100); /* a late extra check-in would show now */
	if (*count < n - 1)
		return 3;
	for (uint32_t id = 0; id < 256; id++) {
		uint32_t want = id >= 1 && id < n;

		if ((map[id / 32] >> (id % 32) & 1) != want)
			return 4;
	}
	return *count == n - 1 ? MB_PASS : 5;
}

uint32_t mb_main(uint32_t magic, const struct mb_info *mbi, uint32_t cr0, uint32_t eflags)
{
	long want = arg_num((const char *)mbi->cmdline, "cpus");
	uint8_t *dst = (uint8_t *)TRAMPOLINE;
	uint16_t n = fw_cfg_cpus();

	(void)magic;
	(void)cr0;
	(void)eflags;
	if (n == 0)
		return 1;
	if (n != want)
		return 2;
	for (const uint8_t *p = ap_start; p < ap_end; p++)
		*dst++ = *p;
	*lapic(LAPIC_SVR) |= 0x100; /* software enable */
	ipi(ICR_ALL_BUT | ICR_ASSERT | ICR_INIT);
	pm_wait(PM_HZ / 100); /* 10 ms */
	for (int i = 0; i < 2; i++) {
		ipi(ICR_ALL_BUT | ICR_ASSERT | ICR_SIPI | (TRAMPOLINE >> 12));
		pm_wait(PM_HZ / 5000); /* 200 us */
	}
	return (uint32_t)check_aps(n);
}
