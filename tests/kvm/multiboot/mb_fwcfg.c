/*
 * Multiboot test kernel for fw_cfg (--device fw-cfg, --fw-cfg): the
 * signature and ID through the data port, the CPU count and RAM size, the
 * file directory and one user file read through DMA. The test passes what
 * to expect: "cpus=N mib=M", and a file opt/banyan/test holding "banyan
 * fw_cfg test". Returns MB_PASS, or the number of the failed check.
 */
#include "mb.h"

#define FW_SEL	0x510
#define FW_DATA 0x511
#define FW_DMA	0x514

static void fw_select(uint16_t key)
{
	outw(FW_SEL, key);
}

static void fw_read(void *buf, uint32_t len)
{
	uint8_t *p = buf;

	for (uint32_t i = 0; i < len; i++)
		p[i] = inb(FW_DATA);
}

static uint32_t bswap32(uint32_t v)
{
	return v >> 24 | (v >> 8 & 0xff00) | (v << 8 & 0xff0000) | v << 24;
}

/* A DMA read of @len bytes of item @key into @buf; the control word after it. */
static uint32_t fw_dma_read(uint16_t key, void *buf, uint32_t len)
{
	static volatile struct {
		uint32_t control, length, addr_hi, addr_lo;
	} req __attribute__((aligned(16)));

	req.control = bswap32((uint32_t)key << 16 | 0x08 | 0x02); /* select, read */
	req.length = bswap32(len);
	req.addr_hi = 0;
	req.addr_lo = bswap32((uint32_t)buf);
	outl(FW_DMA, 0);
	outl(FW_DMA + 4, bswap32((uint32_t)&req));
	return bswap32(req.control);
}

static int check_items(const char *cmd)
{
	uint32_t sig, id, lo, hi;
	uint16_t cpus;

	fw_select(0x0000);
	fw_read(&sig, 4);
	if (sig != 0x554d4551) /* "QEMU" */
		return 1;
	fw_select(0x0001);
	fw_read(&id, 4);
	if (id != 3) /* traditional interface and DMA */
		return 2;
	fw_select(0x0005);
	fw_read(&cpus, 2);
	if (cpus != arg_num(cmd, "cpus"))
		return 3;
	fw_select(0x0003);
	fw_read(&lo, 4);
	fw_read(&hi, 4);
	if (hi != 0 || lo != (uint32_t)arg_num(cmd, "mib") << 20)
		return 4;
	if (inb(FW_DMA) != 'Q' || inb(FW_DMA + 7) != 'G') /* the DMA signature "QEMU CFG" */
		return 5;
	return 0;
}

static int check_file(void)
{
	static uint8_t dir[4 + 64 * 8];
	static char data[64];
	uint32_t n;

	if (fw_dma_read(0x0019, dir, sizeof(dir)) != 0)
		return 10;
	n = bswap32(*(uint32_t *)dir);
	for (uint32_t i = 0; i < n && i < 8; i++) {
		uint8_t *e = dir + 4 + 64 * i;
		uint32_t size = bswap32(*(uint32_t *)e);
		uint16_t key = (uint16_t)(e[4] << 8 | e[5]);

		if (!str_eq((const char *)e + 8, "opt/banyan/test"))
			continue;
		if (size != 18 || fw_dma_read(key, data, sizeof(data)) != 0)
			return 11;
		/* The file, then zeros: a read past its end is filled, not an error. */
		return str_eq(data, "banyan fw_cfg test") ? 0 : 12;
	}
	return 13;
}

uint32_t mb_main(uint32_t magic, const struct mb_info *mbi, uint32_t cr0, uint32_t eflags)
{
	int ret;

	(void)cr0;
	(void)eflags;
	if (magic != 0x2badb002)
		return 30;
	ret = check_items((const char *)mbi->cmdline);
	if (ret == 0)
		ret = check_file();
	return ret ? (uint32_t)ret : MB_PASS;
}
