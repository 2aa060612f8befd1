/*
 * libFuzzer target for the multiboot parser (src/arch/x86/multiboot_parse.c):
 * any file is refused or accepted, never read past its end, and what is
 * accepted keeps the parser's promises: every segment inside the file and
 * the limits, no two overlapping, the entry inside loaded bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/multiboot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_image(const struct mb_image *img, size_t size, const struct mb_limits *lim)
{
	bool entry = false;

	for (unsigned int i = 0; i < img->nseg; i++) {
		const struct mb_segment *s = &img->seg[i];

		if (s->offset > size || s->filesz > size - s->offset || s->filesz > s->memsz ||
		    s->paddr < lim->ram_lo || s->paddr + s->memsz > lim->ram_hi)
			abort();
		for (unsigned int j = 0; j < i; j++)
			if (s->paddr < img->seg[j].paddr + img->seg[j].memsz &&
			    img->seg[j].paddr < s->paddr + s->memsz)
				abort();
		if (img->entry >= s->paddr && img->entry - s->paddr < s->filesz)
			entry = true;
	}
	if (!entry)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct mb_limits lim = {1ULL << 20, 64ULL << 20, 0xc0000000ULL};
	/* A copy of exactly @size bytes, so ASan sees any read past the end. */
	uint8_t *f = malloc(size ? size : 1);
	struct mb_image img;
	char err[256];

	if (!f)
		return 0;
	memcpy(f, data, size);
	if (mb_parse(f, size, &lim, &img, err, sizeof(err)) == 0)
		check_image(&img, size, &lim);
	free(f);
	return 0;
}
