/* The symmetric save/restore encoder behind every device's state function. */
#include "vmm/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void state_io_saver(struct state_io *io)
{
	memset(io, 0, sizeof(*io));
}

void state_io_loader(struct state_io *io, const void *buf, size_t len)
{
	memset(io, 0, sizeof(*io));
	io->loading = true;
	io->buf = (uint8_t *)(uintptr_t)buf; /* never written while loading */
	io->len = len;
}

void state_io_free(struct state_io *io)
{
	if (!io->loading)
		free(io->buf);
	io->buf = NULL;
}

int state_io_finish(const struct state_io *io)
{
	if (io->err)
		return io->err;
	if (io->loading && io->pos != io->len)
		return -EBADMSG;
	return 0;
}

static void state_save(struct state_io *io, const void *v, size_t len)
{
	if (io->len + len > io->cap) {
		size_t cap = io->cap ? io->cap * 2 : 256;
		uint8_t *nbuf;

		while (cap < io->len + len)
			cap *= 2;
		nbuf = realloc(io->buf, cap);
		if (!nbuf) {
			io->err = -ENOMEM;
			return;
		}
		io->buf = nbuf;
		io->cap = cap;
	}
	memcpy(io->buf + io->len, v, len);
	io->len += len;
}

static void state_load(struct state_io *io, void *v, size_t len)
{
	if (len > io->len - io->pos) {
		io->err = -EBADMSG;
		return;
	}
	memcpy(v, io->buf + io->pos, len);
	io->pos += len;
}

void state_bytes(struct state_io *io, void *v, size_t len)
{
	/* Nothing to move; an empty saver has no buffer yet, and memcpy must not see NULL. */
	if (io->err || len == 0)
		return;
	if (io->loading)
		state_load(io, v, len);
	else
		state_save(io, v, len);
}

/* Integers travel little-endian whatever the host's order. */
static void state_uint(struct state_io *io, uint64_t *v, size_t width)
{
	uint8_t b[8];
	size_t i;

	if (!io->loading)
		for (i = 0; i < width; i++)
			b[i] = (uint8_t)(*v >> (8 * i));
	state_bytes(io, b, width);
	if (io->loading && !io->err) {
		*v = 0;
		for (i = 0; i < width; i++)
			*v |= (uint64_t)b[i] << (8 * i);
	}
}

void state_u8(struct state_io *io, uint8_t *v)
{
	uint64_t x = *v;

	state_uint(io, &x, 1);
	*v = (uint8_t)x;
}

void state_u16(struct state_io *io, uint16_t *v)
{
	uint64_t x = *v;

	state_uint(io, &x, 2);
	*v = (uint16_t)x;
}

void state_u32(struct state_io *io, uint32_t *v)
{
	uint64_t x = *v;

	state_uint(io, &x, 4);
	*v = (uint32_t)x;
}

void state_u64(struct state_io *io, uint64_t *v)
{
	state_uint(io, v, 8);
}

void state_bool(struct state_io *io, bool *v)
{
	uint8_t x = io->loading ? 0 : *v; /* a bool being loaded may hold garbage */

	state_u8(io, &x);
	if (io->loading && !io->err && x > 1)
		io->err = -EBADMSG;
	*v = x != 0;
}
