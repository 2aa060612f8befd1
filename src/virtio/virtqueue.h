/*
 * The split virtqueue (virtio 1.2, section 2.7), device side: walking the
 * driver's descriptor chains (direct and indirect) into host iovecs, and
 * returning used buffers with or without VIRTIO_F_EVENT_IDX notification
 * suppression.
 *
 * Every guest address goes through gm_ptr(); every index read from the
 * rings is checked. A malformed chain is an error returned to the caller
 * (the transport then marks the device NEEDS_RESET); nothing here aborts.
 *
 * A virtqueue is not thread safe: the transport serializes every call on a
 * queue with its own lock.
 */
#ifndef BANYAN_VIRTIO_VIRTQUEUE_H
#define BANYAN_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/guest_mem.h"

#define VQ_MAX_SIZE	32768 /* the largest queue size the spec allows */
#define VQ_MAX_INDIRECT 1024  /* entries in one indirect table */

#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4

#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY	   1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

/* The state the driver programmed through the transport, plus our indices. */
struct virtqueue {
	/* Programmed by the driver (through the transport registers). */
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Negotiated features that change the ring format. */
	bool event_idx;
	bool indirect;
	/* Device-side indices: saved and restored with the device. */
	uint16_t last_avail;	 /* next avail ring slot to consume */
	uint16_t used_idx;	 /* our copy of used->idx */
	uint16_t signalled_used; /* used_idx when the driver was last notified */
	bool signalled_valid;	 /* signalled_used means something */
	/* Resolved by vq_activate (host pointers into guest memory). */
	const struct guest_mem *mem;
	const uint8_t *desc;	  /* the descriptor table, read with memcpy */
	volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
	volatile uint16_t *used;  /* flags, idx, then elems; avail_event after them */
	bool active;
};

/*
 * A chain as the device sees it: device-readable buffers first (out), then
 * device-writable ones (in), as host iovecs. @iov has room for @cap entries.
 */
struct vq_chain {
	uint16_t head;	   /* the id to hand back with vq_push */
	unsigned int nout; /* iov[0..nout) readable */
	unsigned int nin;  /* iov[nout..nout+nin) writable */
	uint64_t out_len;  /* total bytes readable */
	uint64_t in_len;   /* total bytes writable */
	unsigned int cap;
	struct iovec *iov;
};

/* Why vq_pop refused a chain (for the log line). */
enum vq_error {
	VQ_OK,
	VQ_ERR_AVAIL_IDX, /* avail->idx ran more than size ahead */
	VQ_ERR_HEAD,	  /* head index >= queue size */
	VQ_ERR_NEXT,	  /* next index out of the table */
	VQ_ERR_TOO_LONG,  /* more descriptors than the table, or than iov room: a loop */
	VQ_ERR_ADDR,	  /* buffer or table outside guest memory */
	VQ_ERR_ZERO_LEN,  /* zero-length buffer */
	VQ_ERR_DIRECTION, /* readable after writable */
	VQ_ERR_INDIRECT,  /* bad indirect table: nested, with NEXT, size, feature */
};

/*
 * vq_activate - check the ring addresses (alignment, inside guest memory for
 * @size entries) and resolve them. Called when the driver sets QueueReady.
 * Returns 0, or -EINVAL (bad size or alignment) / -EFAULT (outside memory).
 */
int vq_activate(struct virtqueue *vq, const struct guest_mem *mem)
    __attribute__((warn_unused_result));

/* vq_reset - back to the power-on state: inactive, size 0, indices 0. */
void vq_reset(struct virtqueue *vq);

/*
 * vq_pop - take the next available chain into @chain (whose iov/cap the
 * caller set). Returns 1 with a chain, 0 when the ring is empty, or
 * -EINVAL for a malformed chain (*@err says why, @chain is garbage, the
 * queue must not be used again until reset). Never writes guest memory.
 */
int vq_pop(struct virtqueue *vq, struct vq_chain *chain, enum vq_error *err)
    __attribute__((warn_unused_result));

/* vq_unpop - give back the chain vq_pop just returned (e.g. out of resources). */
void vq_unpop(struct virtqueue *vq);

/*
 * vq_unpop_written - give back chain @head, the last one vq_pop returned,
 * after the device wrote into its buffers (a receive spread over more
 * buffers than there were): they are marked dirty again, since what they
 * hold changed after vq_pop marked them.
 */
void vq_unpop_written(struct virtqueue *vq, uint16_t head);

/*
 * vq_push - return chain @head to the driver with @len bytes written.
 * Publishes used->idx after the element (release order).
 */
void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len);

/*
 * vq_push_many - return @n chains at once (@elems: ids and lengths, @n at
 * most the queue size) and publish used->idx once, after all of them, so a
 * driver never sees the first without the rest (mergeable receive buffers).
 */
void vq_push_many(struct virtqueue *vq, const struct vring_used_elem *elems, unsigned int n);

/*
 * vq_should_notify - after one or more vq_push: does the driver want an
 * interrupt? Honours VRING_AVAIL_F_NO_INTERRUPT, or used_event with
 * EVENT_IDX. Records the notification as sent when it returns true.
 */
bool vq_should_notify(struct virtqueue *vq);

/*
 * vq_enable_notify - before sleeping on an empty ring: tell the driver we
 * want kicks (avail_event = last_avail with EVENT_IDX). Returns true when
 * buffers arrived meanwhile, so the caller must pop again.
 */
bool vq_enable_notify(struct virtqueue *vq);

/* vq_error_str - a short description of @err for logs. */
const char *vq_error_str(enum vq_error err);

/*
 * iov helpers over a chain's iovecs: copy @len bytes at byte @skip of
 * iov[0..n) from or to @buf. Return the bytes copied (short at the end).
 */
uint64_t iov_to_buf(const struct iovec *iov, unsigned int n, uint64_t skip, void *buf,
		    uint64_t len);
uint64_t iov_from_buf(const struct iovec *iov, unsigned int n, uint64_t skip, const void *buf,
		      uint64_t len);

/*
 * iov_slice - describe bytes [skip, skip+len) of iov[0..n) in @dst (room for
 * @cap entries). Returns the number of entries, or -ENOSPC / -ERANGE when the
 * range does not fit in @dst or in the source.
 */
int iov_slice(const struct iovec *iov, unsigned int n, uint64_t skip, uint64_t len,
	      struct iovec *dst, unsigned int cap);

#endif
