/* The split virtqueue, device side: chain walks, used ring, notifications. */
#include "virtio/virtqueue.h"

#include <errno.h>
#include <string.h>

/*
 * Ring layout (virtio 1.2, 2.7): the avail ring is flags, idx, ring[size],
 * used_event (all le16); the used ring is flags, idx, ring[size] of
 * {le32 id, le32 len}, avail_event. x86 is little-endian, so fields are
 * accessed in place.
 */
#define AVAIL_BYTES(n) (6ULL + 2ULL * (n))
#define USED_BYTES(n)  (6ULL + 8ULL * (n))

static uint16_t load16(volatile uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store16(volatile uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static volatile uint16_t *avail_used_event(const struct virtqueue *vq)
{
	return &vq->avail[2 + vq->size];
}

static volatile uint16_t *used_avail_event(const struct virtqueue *vq)
{
	return &vq->used[2 + 4 * (uint32_t)vq->size];
}

int vq_activate(struct virtqueue *vq, const struct guest_mem *mem)
{
	void *desc, *avail, *used;

	vq->active = false;
	if (vq->size == 0 || vq->size > VQ_MAX_SIZE || (vq->size & (vq->size - 1)))
		return -EINVAL;
	if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
		return -EINVAL;
	desc = gm_ptr(mem, vq->desc_gpa, 16ULL * vq->size);
	avail = gm_ptr(mem, vq->avail_gpa, AVAIL_BYTES(vq->size));
	used = gm_ptr(mem, vq->used_gpa, USED_BYTES(vq->size));
	if (!desc || !avail || !used)
		return -EFAULT;
	vq->mem = mem;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->active = true;
	return 0;
}

void vq_reset(struct virtqueue *vq)
{
	bool event_idx = vq->event_idx, indirect = vq->indirect;

	memset(vq, 0, sizeof(*vq));
	vq->event_idx = event_idx;
	vq->indirect = indirect;
}

static int chain_add(struct vq_chain *c, const struct vring_desc *d, void *host, enum vq_error *err)
{
	if (c->nout + c->nin >= c->cap) {
		*err = VQ_ERR_TOO_LONG;
		return -EINVAL;
	}
	if (d->flags & VRING_DESC_F_WRITE) {
		c->nin++;
		c->in_len += d->len;
	} else {
		if (c->nin) {
			*err = VQ_ERR_DIRECTION;
			return -EINVAL;
		}
		c->nout++;
		c->out_len += d->len;
	}
	c->iov[c->nout + c->nin - 1] = (struct iovec){host, d->len};
	return 0;
}

/*
 * Switch the walk to the indirect table @d describes; @nested: the walk is
 * in one already (its table may sit at the ring's own address, so the
 * table pointer cannot tell).
 */
static int chain_indirect(struct virtqueue *vq, const struct vring_desc *d, const uint8_t **table,
			  uint32_t *tsize, bool nested, enum vq_error *err)
{
	void *t;

	*err = VQ_ERR_INDIRECT;
	if (!vq->indirect || nested || (d->flags & VRING_DESC_F_NEXT))
		return -EINVAL;
	if (d->len == 0 || d->len % sizeof(struct vring_desc) ||
	    d->len / sizeof(struct vring_desc) > VQ_MAX_INDIRECT)
		return -EINVAL;
	t = gm_ptr(vq->mem, d->addr, d->len);
	if (!t) {
		*err = VQ_ERR_ADDR;
		return -EINVAL;
	}
	*table = t;
	*tsize = d->len / sizeof(struct vring_desc);
	return 0;
}

/*
 * Copy one descriptor out of guest memory, once: the guest may change it
 * meanwhile, and an indirect table need not be aligned.
 */
static void read_desc(const uint8_t *table, uint32_t idx, struct vring_desc *d)
{
	memcpy(d, table + (size_t)idx * sizeof(*d), sizeof(*d));
}

static int chain_walk(struct virtqueue *vq, struct vq_chain *c, enum vq_error *err)
{
	const uint8_t *table = vq->desc;
	uint32_t tsize = vq->size, idx = c->head, seen = 0;
	bool in_table = false; /* walking an indirect table */
	struct vring_desc d;
	void *host;

	for (;;) {
		read_desc(table, idx, &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (chain_indirect(vq, &d, &table, &tsize, in_table, err) < 0)
				return -EINVAL;
			idx = seen = 0;
			in_table = true;
			continue;
		}
		if (d.len == 0) {
			*err = VQ_ERR_ZERO_LEN;
			return -EINVAL;
		}
		host = gm_ptr(vq->mem, d.addr, d.len);
		if (!host) {
			*err = VQ_ERR_ADDR;
			return -EINVAL;
		}
		if (chain_add(c, &d, host, err) < 0)
			return -EINVAL;
		if (d.flags & VRING_DESC_F_WRITE)
			gm_mark_dirty(vq->mem, d.addr, d.len); /* for diff snapshots */
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= tsize) {
			*err = VQ_ERR_NEXT;
			return -EINVAL;
		}
		if (++seen >= tsize) {
			*err = VQ_ERR_TOO_LONG; /* more links than entries: a loop */
			return -EINVAL;
		}
		idx = d.next;
	}
}

int vq_pop(struct virtqueue *vq, struct vq_chain *chain, enum vq_error *err)
{
	uint16_t avail_idx;

	*err = VQ_OK;
	if (!vq->active)
		return 0;
	avail_idx = load16(&vq->avail[1]);
	if (avail_idx == vq->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
		*err = VQ_ERR_AVAIL_IDX;
		return -EINVAL;
	}
	chain->head = vq->avail[2 + vq->last_avail % vq->size];
	chain->nout = chain->nin = 0;
	chain->out_len = chain->in_len = 0;
	if (chain->head >= vq->size) {
		*err = VQ_ERR_HEAD;
		return -EINVAL;
	}
	if (chain_walk(vq, chain, err) < 0)
		return -EINVAL;
	vq->last_avail++;
	return 1;
}

void vq_unpop(struct virtqueue *vq)
{
	vq->last_avail--;
}

/*
 * Chain @head is done: mark its device-writable buffers dirty again, now
 * that the device wrote them. vq_pop marked them before the device wrote
 * (a virtio-blk read lands later, from io_uring): a live migration that
 * took the marks in between would otherwise send the old data and never
 * learn of the new. The walk is bounded as vq_pop's; a driver that changed
 * the chain meanwhile only misleads its own migration.
 */
static void vq_mark_written(struct virtqueue *vq, uint32_t head)
{
	const uint8_t *table = vq->desc;
	uint32_t tsize = vq->size, idx = head, seen = 0;
	bool in_table = false;
	struct vring_desc d;

	if (!gm_dirty_enabled(vq->mem) || head >= vq->size)
		return;
	for (;;) {
		read_desc(table, idx, &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (in_table || !d.len || d.len % sizeof(d) ||
			    d.len / sizeof(d) > VQ_MAX_INDIRECT ||
			    !(table = gm_ptr(vq->mem, d.addr, d.len)))
				return;
			tsize = d.len / sizeof(d);
			idx = seen = 0;
			in_table = true;
			continue;
		}
		if (d.flags & VRING_DESC_F_WRITE)
			gm_mark_dirty(vq->mem, d.addr, d.len);
		if (!(d.flags & VRING_DESC_F_NEXT) || d.next >= tsize || ++seen >= tsize)
			return;
		idx = d.next;
	}
}

void vq_unpop_written(struct virtqueue *vq, uint16_t head)
{
	vq_mark_written(vq, head);
	vq_unpop(vq);
}

void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	volatile uint32_t *elem;

	if (!vq->active)
		return;
	elem = (volatile uint32_t *)&vq->used[2 + 4 * (uint32_t)(vq->used_idx % vq->size)];
	elem[0] = head;
	elem[1] = len;
	vq->used_idx++;
	store16(&vq->used[1], vq->used_idx);
	vq_mark_written(vq, head);
	gm_mark_dirty(vq->mem, vq->used_gpa, USED_BYTES(vq->size)); /* after the stores */
}

void vq_push_many(struct virtqueue *vq, const struct vring_used_elem *elems, unsigned int n)
{
	volatile uint32_t *elem;

	if (!vq->active || n > vq->size)
		return;
	for (unsigned int i = 0; i < n; i++) {
		elem = (volatile uint32_t *)&vq
			   ->used[2 + 4 * (uint32_t)((vq->used_idx + i) % vq->size)];
		elem[0] = elems[i].id;
		elem[1] = elems[i].len;
	}
	vq->used_idx += (uint16_t)n;
	store16(&vq->used[1], vq->used_idx);
	for (unsigned int i = 0; i < n; i++)
		vq_mark_written(vq, elems[i].id);
	gm_mark_dirty(vq->mem, vq->used_gpa, USED_BYTES(vq->size)); /* after the stores */
}

/* virtio 1.2, 2.7.10: has used_idx passed @event since @old? */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool vq_should_notify(struct virtqueue *vq)
{
	uint16_t old = vq->signalled_used;
	bool valid = vq->signalled_valid;

	if (!vq->active)
		return false;
	/* Our used->idx store must be visible before we read the driver's flags. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(load16(&vq->avail[0]) & VRING_AVAIL_F_NO_INTERRUPT);
	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	return need_event(load16(avail_used_event(vq)), vq->used_idx, old);
}

bool vq_enable_notify(struct virtqueue *vq)
{
	if (!vq->active)
		return false;
	/* The VMM writes the used ring here too: a migration must send it again. */
	if (vq->event_idx) {
		store16(used_avail_event(vq), vq->last_avail);
		gm_mark_dirty(vq->mem, vq->used_gpa + USED_BYTES(vq->size) - 2, 2);
	} else {
		store16(&vq->used[0], 0);
		gm_mark_dirty(vq->mem, vq->used_gpa, 2);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load16(&vq->avail[1]) != vq->last_avail;
}

const char *vq_error_str(enum vq_error err)
{
	static const char *const s[] = {
	    [VQ_OK] = "no error",
	    [VQ_ERR_AVAIL_IDX] = "available index ran ahead of the queue size",
	    [VQ_ERR_HEAD] = "chain head out of the queue",
	    [VQ_ERR_NEXT] = "next index out of the descriptor table",
	    [VQ_ERR_TOO_LONG] = "chain too long (or a loop)",
	    [VQ_ERR_ADDR] = "buffer outside guest memory",
	    [VQ_ERR_ZERO_LEN] = "zero-length buffer",
	    [VQ_ERR_DIRECTION] = "readable buffer after a writable one",
	    [VQ_ERR_INDIRECT] = "bad indirect descriptor table",
	};

	return (unsigned int)err < sizeof(s) / sizeof(s[0]) ? s[err] : "?";
}

/* Copy between an iovec (skipping its first @skip bytes) and a flat buffer. */
static uint64_t iov_copy(const struct iovec *iov, unsigned int n, uint64_t skip, uint8_t *buf,
			 uint64_t len, bool to_buf)
{
	uint64_t done = 0;

	for (unsigned int i = 0; i < n && done < len; i++) {
		uint64_t l = iov[i].iov_len;
		uint8_t *base = iov[i].iov_base;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len - done)
			l = len - done;
		if (to_buf)
			memcpy(buf + done, base + skip, l);
		else
			memcpy(base + skip, buf + done, l);
		done += l;
		skip = 0;
	}
	return done;
}

uint64_t iov_to_buf(const struct iovec *iov, unsigned int n, uint64_t skip, void *buf, uint64_t len)
{
	return iov_copy(iov, n, skip, buf, len, true);
}

uint64_t iov_from_buf(const struct iovec *iov, unsigned int n, uint64_t skip, const void *buf,
		      uint64_t len)
{
	/* The buffer is only read in this direction. */
	return iov_copy(iov, n, skip, (uint8_t *)(uintptr_t)buf, len, false);
}

int iov_slice(const struct iovec *iov, unsigned int n, uint64_t skip, uint64_t len,
	      struct iovec *dst, unsigned int cap)
{
	unsigned int out = 0;

	for (unsigned int i = 0; i < n && len; i++) {
		uint64_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len)
			l = len;
		if (out == cap)
			return -ENOSPC;
		dst[out++] = (struct iovec){(uint8_t *)iov[i].iov_base + skip, l};
		len -= l;
		skip = 0;
	}
	return len ? -ERANGE : (int)out;
}
