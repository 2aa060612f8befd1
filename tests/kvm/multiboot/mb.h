/* What the multiboot test kernels share: port I/O, the verdict, the information structure. */
#ifndef MB_TEST_H
#define MB_TEST_H

#include <stdint.h>

#define MB_PASS 0x20 /* exit status 65; a failed check N returns N (< 0x20) */

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr, drives_length, drives_addr, config_table;
	uint32_t boot_loader_name;
};

struct mb_mod {
	uint32_t start, end, string, reserved;
};

struct mb_mmap {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline int str_eq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static inline int str_len(const char *s)
{
	int n = 0;

	while (s[n])
		n++;
	return n;
}

/* @s ends with @tail. */
static inline int str_ends(const char *s, const char *tail)
{
	int a = str_len(s), b = str_len(tail);

	return a >= b && str_eq(s + a - b, tail);
}

/* The decimal value of the word "KEY=N" in the command line @s; -1 if absent. */
static inline long arg_num(const char *s, const char *key)
{
	int k = str_len(key);

	for (const char *w = s; *w; w++) {
		long v = 0;
		int i = 0;

		if (w != s && w[-1] != ' ')
			continue;
		while (i < k && w[i] == key[i])
			i++;
		if (i < k || w[k] != '=')
			continue;
		for (w += k + 1; *w >= '0' && *w <= '9'; w++)
			v = v * 10 + (*w - '0');
		return v;
	}
	return -1;
}

uint32_t mb_main(uint32_t magic, const struct mb_info *mbi, uint32_t cr0, uint32_t eflags);

#endif
