/*
 * A machine for the virtio device fuzz targets: the transport services of
 * virtio/virtio.h (virtio_pop, virtio_used, virtio_fail, ...) as
 * virtio/mmio.c gives them, but run in the fuzzer's own thread. The target
 * calls the device's notify and event operations itself, under the rules
 * of the MMIO transport's device thread: notify only for a ready queue of a
 * driver-OK device that is not in NEEDS_RESET, event whenever the device's
 * event_fd is readable. An input then always runs the same way, and a
 * crash reproduces.
 *
 * The driver's side too: 64 KiB of guest memory with one ring per queue at
 * a fixed place, chains posted from the input, and the used ring checked as
 * a driver would trust it: the device may return only heads the driver
 * made available and has not got back yet (a head returned twice is a
 * use-after-free in the guest), and may not claim to have written more
 * bytes than the chain has writable ones (a driver that trusts the length
 * reads past its buffer). A failed check aborts, which libFuzzer reports
 * as a crash.
 */
#ifndef BANYAN_TESTS_FUZZ_FAKE_TRANSPORT_H
#define BANYAN_TESTS_FUZZ_FAKE_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "fuzz_input.h"
#include "virtio/virtio.h"
#include "vmm/guest_mem.h"

#define FT_GPA	     0x10000ULL
#define FT_MEM_SIZE  0x10000ULL
#define FT_DATA	     (FT_GPA + 0x4000ULL) /* buffers: below are the rings */
#define FT_DATA_SIZE (FT_GPA + FT_MEM_SIZE - FT_DATA)
#define FT_RING_MAX  64 /* queue size the ring layout has room for */
#define FT_QUEUES    4	/* queues the ring layout has room for */
#define FT_CHAIN_MAX 16 /* descriptors per posted chain */

struct ft_queue {
	uint16_t size;	    /* as programmed; 0: not set up */
	uint16_t avail_idx; /* driver's next avail index */
	uint16_t used_seen; /* used entries the driver has read */
	bool busy[FT_RING_MAX];
	bool outstanding[FT_RING_MAX]; /* heads available and not yet returned */
	uint8_t nslots[FT_RING_MAX];   /* descriptors of the chain at each head */
	uint64_t in_len[FT_RING_MAX];  /* its writable bytes (UINT64_MAX: not known) */
	uint8_t slots[FT_RING_MAX][FT_CHAIN_MAX];
};

struct ft_machine {
	uint8_t *mem;
	struct guest_mem gm;
	struct virtio_dev *vdev;
	struct virtio_transport *t;
	struct ft_queue q[FT_QUEUES];
	bool raw_rings; /* the input wrote ring indices itself: no used-ring checks */
};

/* A descriptor as the input describes it, before it goes into the table. */
struct ft_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags; /* VRING_DESC_F_*; NEXT is set by ft_post for all but the last */
	bool cut;	/* leave NEXT off here even if more follow */
};

/*
 * ft_init - guest memory and @vdev behind the fake transport. The machine
 * owns @vdev from now on (even on failure). 0 or -errno.
 */
int ft_init(struct ft_machine *m, struct virtio_dev *vdev);

/* ft_destroy - the device's destroy, then the memory. */
void ft_destroy(struct ft_machine *m);

/*
 * ft_bring_up - what a driver does after a reset: negotiate @want (within
 * what is offered, VERSION_1 always), set up every queue from one byte of
 * @in each (size 1..64, or left unready, or rings outside memory), then
 * DRIVER_OK, which kicks every ready queue as the MMIO transport does.
 */
void ft_bring_up(struct ft_machine *m, uint64_t want, struct fuzz_input *in);

/* ft_reset - status 0: device reset, queues reset, the driver's rings forgotten. */
void ft_reset(struct ft_machine *m);

/* ft_notify - the driver kicks queue @q (ignored as the transport would). */
void ft_notify(struct ft_machine *m, unsigned int q);

/* ft_event - run the device's event operation while its event_fd is readable. */
void ft_event(struct ft_machine *m, int timeout_ms);

/* ft_post - put a chain of @n descriptors on queue @q; false when there is no room. */
bool ft_post(struct ft_machine *m, unsigned int q, const struct ft_desc *d, unsigned int n);

/* ft_collect - read what the device returned on queue @q, checking every entry. */
void ft_collect(struct ft_machine *m, unsigned int q);

/* ft_set_ready - QueueReady 0 or 1 on queue @q, as the MMIO transport handles it. */
void ft_set_ready(struct ft_machine *m, unsigned int q, bool ready);

/* ft_config - a configuration space read or write at @off, @len 1..8 bytes. */
void ft_config(struct ft_machine *m, bool write, uint64_t off, uint32_t len, struct fuzz_input *in);

/* ft_state_roundtrip - save the device's state and load it back. */
void ft_state_roundtrip(struct ft_machine *m);

/* ft_broken - the device is in NEEDS_RESET. */
bool ft_broken(const struct ft_machine *m);

/*
 * ft_generic_op - the operations every device target shares, for opcode
 * @op (< FT_OPS): post a chain from the input, write guest memory, kick,
 * run events, collect, reset, config access, queue ready toggles, raw avail
 * index, state round trip, a state loaded from the input. The rest of the
 * opcode space is the target's.
 */
#define FT_OPS 13
void ft_generic_op(struct ft_machine *m, unsigned int op, struct fuzz_input *in);

/* ft_ptr - host pointer to guest address @gpa, @len bytes, or NULL. */
void *ft_ptr(struct ft_machine *m, uint64_t gpa, uint64_t len);

#endif
