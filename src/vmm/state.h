/*
 * Device state in one symmetric function: the same code saves and restores.
 *
 * A device describes its fields once, e.g.
 *     state_u8(io, &uart->ier);
 *     state_bytes(io, uart->rx_fifo, sizeof(uart->rx_fifo));
 * and the state_io decides whether that writes the field into a buffer
 * (saving) or reads it back (loading). Fields are written in a fixed
 * little-endian encoding, never as raw struct dumps, so a format can grow.
 */
#ifndef BANYAN_VMM_STATE_H
#define BANYAN_VMM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct state_io {
	bool loading; /* true: fields are read from buf; false: written to it */
	uint8_t *buf; /* owned by the state_io when saving (grows as needed) */
	size_t len;   /* bytes used (saving) or available (loading) */
	size_t cap;   /* allocated bytes when saving */
	size_t pos;   /* read position when loading */
	int err;      /* first error (-ENOMEM, -EBADMSG); later calls do nothing */
};

/* state_io_saver - an empty io that records fields. Free with state_io_free. */
void state_io_saver(struct state_io *io);

/* state_io_loader - an io that reads fields back from @buf (@len bytes, not copied). */
void state_io_loader(struct state_io *io, const void *buf, size_t len);

/* state_io_free - release a saver's buffer. */
void state_io_free(struct state_io *io);

/*
 * state_io_finish - 0 when every field went through and, when loading, the
 * buffer was consumed exactly; otherwise -errno (-EBADMSG for a short or
 * overlong buffer).
 */
int state_io_finish(const struct state_io *io);

void state_u8(struct state_io *io, uint8_t *v);
void state_u16(struct state_io *io, uint16_t *v);
void state_u32(struct state_io *io, uint32_t *v);
void state_u64(struct state_io *io, uint64_t *v);
void state_bool(struct state_io *io, bool *v);
void state_bytes(struct state_io *io, void *v, size_t len);

#endif
