/*
 * A driver's side of a split virtqueue in a fake guest memory, for the
 * virtio unit tests: lay out rings, write descriptors, make chains
 * available, read the used ring. Guest memory is one malloc'ed region at
 * guest physical address FAKE_GPA.
 */
#ifndef BANYAN_TESTS_FAKE_RING_H
#define BANYAN_TESTS_FAKE_RING_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtqueue.h"
#include "vmm/guest_mem.h"

#define FAKE_GPA      0x100000ULL
#define FAKE_MEM_SIZE (4ULL << 20)
#define FAKE_DESC     (FAKE_GPA + 0x0000)
#define FAKE_AVAIL    (FAKE_GPA + 0x4000)
#define FAKE_USED     (FAKE_GPA + 0x6000)
#define FAKE_DATA     (FAKE_GPA + 0x10000) /* buffers from here on */

struct fake_ring {
	uint8_t *mem;
	struct guest_mem gm;
	uint16_t size;
	uint16_t avail_idx;
	uint16_t used_seen;
};

static inline void *fake_ptr(struct fake_ring *r, uint64_t gpa)
{
	return r->mem + (gpa - FAKE_GPA);
}

static inline int fake_ring_init(struct fake_ring *r, uint16_t size)
{
	memset(r, 0, sizeof(*r));
	r->size = size;
	r->mem = calloc(1, FAKE_MEM_SIZE);
	if (!r->mem)
		return -1;
	return gm_add_region(&r->gm, FAKE_GPA, FAKE_MEM_SIZE, r->mem);
}

static inline void fake_ring_free(struct fake_ring *r)
{
	free(r->mem);
}

static inline void fake_desc(struct fake_ring *r, uint64_t table, uint16_t i, uint64_t addr,
			     uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};

	memcpy(fake_ptr(r, table + 16ULL * i), &d, sizeof(d));
}

static inline uint16_t *fake_avail(struct fake_ring *r)
{
	return fake_ptr(r, FAKE_AVAIL);
}

static inline uint16_t *fake_used16(struct fake_ring *r)
{
	return fake_ptr(r, FAKE_USED);
}

/* Make chain @head available and publish avail->idx. */
static inline void fake_make_avail(struct fake_ring *r, uint16_t head)
{
	uint16_t *avail = fake_avail(r);

	avail[2 + r->avail_idx % r->size] = head;
	r->avail_idx++;
	__atomic_store_n(&avail[1], r->avail_idx, __ATOMIC_RELEASE);
}

static inline uint16_t fake_used_idx(struct fake_ring *r)
{
	return __atomic_load_n(&fake_used16(r)[1], __ATOMIC_ACQUIRE);
}

/* The used element at position @i: id and len. */
static inline void fake_used_elem(struct fake_ring *r, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint32_t *e = fake_ptr(r, FAKE_USED + 4 + 8ULL * (i % r->size));

	*id = e[0];
	*len = e[1];
}

/* used_event, written by the driver with EVENT_IDX. */
static inline void fake_set_used_event(struct fake_ring *r, uint16_t v)
{
	fake_avail(r)[2 + r->size] = v;
}

/* avail_event, written by the device with EVENT_IDX. */
static inline uint16_t fake_avail_event(struct fake_ring *r)
{
	return fake_used16(r)[2 + 4 * r->size];
}

/* A virtqueue pointing at this ring, activated. */
static inline int fake_vq(struct fake_ring *r, struct virtqueue *vq, bool event_idx, bool indirect)
{
	memset(vq, 0, sizeof(*vq));
	vq->size = r->size;
	vq->desc_gpa = FAKE_DESC;
	vq->avail_gpa = FAKE_AVAIL;
	vq->used_gpa = FAKE_USED;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	return vq_activate(vq, &r->gm);
}

#endif
