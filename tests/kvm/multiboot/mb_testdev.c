/*
 * Multiboot test kernel for pc-testdev (--device testdev): the scratch
 * register at every width and offset and through string I/O, the MMIO
 * window at mixed widths, unaligned and through string moves, and
 * interrupt lines driven through the device and seen at the IOAPIC and
 * the local APIC. Returns MB_PASS, or the number of the failed check.
 */
#include "mb.h"

#define SCRATCH	 0xe0
#define IRQ_PORT 0x2000
#define IOMEM	 ((volatile uint8_t *)0xff000000)
#define IOMEM_SZ 0x10000
#define IOAPIC	 ((volatile uint32_t *)0xfec00000)
#define LAPIC	 ((volatile uint32_t *)0xfee00000)

static int check_ports(void)
{
	static const uint8_t out[4] = {0x11, 0x22, 0x33, 0x44};
	uint16_t in[3];
	const void *si = out;
	void *di = in;
	int n = 4;

	outl(SCRATCH, 0x12345678);
	if (inb(SCRATCH) != 0x78 || inb(SCRATCH + 3) != 0x12 || inw(SCRATCH + 1) != 0x3456)
		return 1;
	outw(SCRATCH + 2, 0xabcd);
	outb(SCRATCH + 1, 0xef);
	if (inl(SCRATCH) != 0xabcdef78)
		return 2;
	/* rep outsb: four accesses to one port; the last byte stays. */
	__asm__ volatile("cld; rep outsb" : "+S"(si), "+c"(n) : "d"(SCRATCH) : "memory");
	if (inl(SCRATCH) != 0xabcdef44)
		return 3;
	outl(SCRATCH, 0x5555aaaa);
	n = 3;
	__asm__ volatile("cld; rep insw" : "+D"(di), "+c"(n) : "d"(SCRATCH) : "memory");
	if (in[0] != 0xaaaa || in[1] != 0xaaaa || in[2] != 0xaaaa)
		return 4;
	return 0;
}

static int check_iomem(void)
{
	static uint8_t src[64], dst[64];
	volatile uint32_t *w = (volatile uint32_t *)IOMEM;
	void *si = src, *di = (void *)(IOMEM + 0x100);
	int n = 64;

	w[0] = 0x04030201;
	if (IOMEM[0] != 1 || IOMEM[3] != 4 || *(volatile uint16_t *)(IOMEM + 1) != 0x0302)
		return 10;
	*(volatile uint16_t *)(IOMEM + 2) = 0xbbaa; /* mixed width over the same bytes */
	if (w[0] != 0xbbaa0201)
		return 11;
	*(volatile uint32_t *)(IOMEM + 5) = 0xdeadbeef; /* unaligned */
	if (IOMEM[5] != 0xef || IOMEM[8] != 0xde || *(volatile uint32_t *)(IOMEM + 4) != 0xadbeef00)
		return 12;
	*(volatile uint32_t *)(IOMEM + IOMEM_SZ - 4) = 0xcafef00d; /* the window's last bytes */
	if (*(volatile uint32_t *)(IOMEM + IOMEM_SZ - 4) != 0xcafef00d)
		return 13;
	for (int i = 0; i < 64; i++)
		src[i] = (uint8_t)(i * 7 + 3);
	/* String moves: RAM to the window by bytes, back by dwords. */
	__asm__ volatile("cld; rep movsb" : "+S"(si), "+D"(di), "+c"(n) : : "memory");
	si = (void *)(IOMEM + 0x100);
	di = dst;
	n = 16;
	__asm__ volatile("cld; rep movsl" : "+S"(si), "+D"(di), "+c"(n) : : "memory");
	for (int i = 0; i < 64; i++)
		if (dst[i] != src[i])
			return 14;
	return 0;
}

static uint32_t ioapic_read(uint32_t reg)
{
	IOAPIC[0] = reg;
	return IOAPIC[4];
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
	IOAPIC[0] = reg;
	IOAPIC[4] = v;
}

static int lapic_irr(uint32_t vector)
{
	return (LAPIC[(0x200 + 0x10 * (vector / 32)) / 4] >> (vector % 32)) & 1;
}

/* Pin @pin, level-triggered to vector 0x40 + pin: raised, it reaches the LAPIC. */
static int check_line(uint32_t pin)
{
	uint32_t vec = 0x40 + pin;

	ioapic_write(0x11 + 2 * pin, 0);	      /* destination: APIC ID 0 */
	ioapic_write(0x10 + 2 * pin, vec | 1U << 15); /* fixed, level, unmasked */
	if (lapic_irr(vec) || inb(IRQ_PORT + pin) != 0)
		return 20;
	outb(IRQ_PORT + pin, 1);
	if (inb(IRQ_PORT + pin) != 1)
		return 21;
	if (!lapic_irr(vec))
		return 22;
	if (!(ioapic_read(0x10 + 2 * pin) & 1U << 14)) /* remote IRR: accepted, no EOI yet */
		return 23;
	outb(IRQ_PORT + pin, 0);
	return 0;
}

static int check_irqs(void)
{
	static const uint32_t pins[] = {5, 7, 9, 11};
	int ret;

	LAPIC[0xf0 / 4] = 0x1ff; /* software-enable the local APIC */
	for (unsigned int i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		ret = check_line(pins[i]);
		if (ret)
			return ret;
	}
	/* A line left low delivers nothing. */
	ioapic_write(0x11 + 2 * 12, 0);
	ioapic_write(0x10 + 2 * 12, (0x40 + 12) | 1U << 15);
	outb(IRQ_PORT + 12, 0);
	return lapic_irr(0x40 + 12) ? 24 : 0;
}

uint32_t mb_main(uint32_t magic, const struct mb_info *mbi, uint32_t cr0, uint32_t eflags)
{
	int ret;

	(void)mbi;
	(void)cr0;
	(void)eflags;
	if (magic != 0x2badb002)
		return 30;
	ret = check_ports();
	if (ret == 0)
		ret = check_iomem();
	if (ret == 0)
		ret = check_irqs();
	return ret ? (uint32_t)ret : MB_PASS;
}
