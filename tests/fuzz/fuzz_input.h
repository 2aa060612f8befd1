/*
 * The fuzzer's input as a stream of operations: each target reads an
 * opcode byte, then that operation's arguments. Reads past the end return
 * zeroes, so every input decodes to some sequence and a short input is
 * simply a short sequence.
 */
#ifndef BANYAN_TESTS_FUZZ_INPUT_H
#define BANYAN_TESTS_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct fuzz_input {
	const uint8_t *p;
	size_t left;
};

static inline uint8_t fin_u8(struct fuzz_input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static inline uint16_t fin_u16(struct fuzz_input *in)
{
	uint16_t lo = fin_u8(in); /* two statements: operands have no order */

	return (uint16_t)(lo | fin_u8(in) << 8);
}

static inline uint32_t fin_u32(struct fuzz_input *in)
{
	uint32_t lo = fin_u16(in);

	return lo | (uint32_t)fin_u16(in) << 16;
}

static inline uint64_t fin_u64(struct fuzz_input *in)
{
	uint64_t lo = fin_u32(in);

	return lo | (uint64_t)fin_u32(in) << 32;
}

/* Up to @len bytes into @dst; returns how many were left to copy. */
static inline size_t fin_bytes(struct fuzz_input *in, void *dst, size_t len)
{
	if (len > in->left)
		len = in->left;
	memcpy(dst, in->p, len);
	in->p += len;
	in->left -= len;
	return len;
}

#endif
