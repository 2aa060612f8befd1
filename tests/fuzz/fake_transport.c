/* The virtio device fuzz targets' machine: a synchronous transport and a driver. */
#include "fake_transport.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "vmm/state.h"

#define TRANSPORT_FEATURES                                                                         \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_INDIRECT_DESC) |                    \
	 (1ULL << VIRTIO_F_RING_EVENT_IDX))

/* The transport's half, as virtio/mmio.c keeps it (no registers, no thread). */
struct virtio_transport {
	struct virtio_dev *vdev;
	pthread_mutex_t lock; /* only for virtio_lock: everything else runs in one thread */
	struct virtqueue vqs[VIRTIO_MAX_QUEUES];
	struct dev_stats stats;
	bool driver_ok;
	bool broken;
	uint32_t config_gen;
	unsigned long interrupts;
};

static uint64_t ring_gpa(unsigned int q)
{
	return FT_GPA + 0x1000ULL * q;
}

#define DESC_GPA(q)  ring_gpa(q)
#define AVAIL_GPA(q) (ring_gpa(q) + 0x400)
#define USED_GPA(q)  (ring_gpa(q) + 0x800)

/* --- the services of virtio/virtio.h, as virtio/mmio.c gives them --- */

void virtio_fail(struct virtio_dev *vdev, const char *why)
{
	struct virtio_transport *t = vdev->transport;

	if (t->broken)
		return;
	t->broken = true;
	log_warn("%s: %s; device needs reset", vdev->ops->name, why);
	if (t->driver_ok)
		t->interrupts++;
}

bool virtio_is_broken(const struct virtio_dev *vdev)
{
	return vdev->transport->broken;
}

int virtio_pop(struct virtio_dev *vdev, unsigned int q, struct vq_chain *c)
{
	struct virtio_transport *t = vdev->transport;
	enum vq_error err;
	char why[96];
	int ret;

	if (t->broken)
		return 0;
	for (;;) {
		ret = vq_pop(&t->vqs[q], c, &err);
		if (ret < 0) {
			snprintf(why, sizeof(why), "queue %u: %s", q, vq_error_str(err));
			virtio_fail(vdev, why);
			return -EINVAL;
		}
		if (ret > 0 || !vq_enable_notify(&t->vqs[q]))
			return ret;
	}
}

void virtio_used(struct virtio_dev *vdev, unsigned int q)
{
	struct virtio_transport *t = vdev->transport;

	if (vq_should_notify(&t->vqs[q]))
		t->interrupts++;
}

struct dev_stats *virtio_stats(struct virtio_dev *vdev)
{
	return &vdev->transport->stats;
}

void virtio_lock(struct virtio_dev *vdev)
{
	pthread_mutex_lock(&vdev->transport->lock);
}

void virtio_unlock(struct virtio_dev *vdev)
{
	pthread_mutex_unlock(&vdev->transport->lock);
}

void virtio_config_changed(struct virtio_dev *vdev)
{
	struct virtio_transport *t = vdev->transport;

	t->config_gen++;
	if (t->driver_ok)
		t->interrupts++;
}

void virtio_config_bytes(const void *cfg, uint64_t size, uint64_t offset, void *data, uint32_t len)
{
	memset(data, 0, len);
	if (offset < size)
		memcpy(data, (const uint8_t *)cfg + offset,
		       size - offset < len ? size - offset : len);
}

/* --- the machine --- */

void *ft_ptr(struct ft_machine *m, uint64_t gpa, uint64_t len)
{
	return gm_ptr(&m->gm, gpa, len);
}

int ft_init(struct ft_machine *m, struct virtio_dev *vdev)
{
	memset(m, 0, sizeof(*m));
	if (!vdev)
		return -ENODEV;
	m->vdev = vdev;
	m->t = calloc(1, sizeof(*m->t));
	m->mem = aligned_alloc(4096, FT_MEM_SIZE); /* page-aligned, as guest RAM is */
	if (m->mem)
		memset(m->mem, 0, FT_MEM_SIZE);
	if (!m->t || !m->mem || vdev->ops->nqueues > FT_QUEUES ||
	    gm_add_region(&m->gm, FT_GPA, FT_MEM_SIZE, m->mem) < 0) {
		vdev->ops->destroy(vdev);
		free(m->t);
		free(m->mem);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->t->lock, NULL);
	m->t->vdev = vdev;
	vdev->vqs = m->t->vqs;
	vdev->transport = m->t;
	return 0;
}

void ft_destroy(struct ft_machine *m)
{
	m->vdev->ops->destroy(m->vdev);
	pthread_mutex_destroy(&m->t->lock);
	free(m->t);
	free(m->mem);
}

bool ft_broken(const struct ft_machine *m)
{
	return m->t->broken;
}

void ft_reset(struct ft_machine *m)
{
	struct virtio_transport *t = m->t;

	m->vdev->ops->reset(m->vdev);
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vq_reset(&t->vqs[i]);
	t->driver_ok = t->broken = false;
	m->vdev->acked = 0;
	memset(m->q, 0, sizeof(m->q));
}

void ft_set_ready(struct ft_machine *m, unsigned int q, bool ready)
{
	struct virtqueue *vq = &m->t->vqs[q];
	char why[64];

	if (!ready) {
		vq->active = false;
		return;
	}
	if (vq->active)
		return;
	vq->event_idx = m->vdev->acked & (1ULL << VIRTIO_F_RING_EVENT_IDX);
	vq->indirect = m->vdev->acked & (1ULL << VIRTIO_F_RING_INDIRECT_DESC);
	if (vq_activate(vq, &m->gm) < 0) {
		snprintf(why, sizeof(why), "queue %u: bad rings", q);
		virtio_fail(m->vdev, why);
	}
}

/* One queue as the byte @code says: size 1..64; 0x40 not ready; 0x80 rings outside memory. */
static void setup_queue(struct ft_machine *m, unsigned int q, uint8_t code)
{
	struct virtqueue *vq = &m->t->vqs[q];

	memset(m->mem + (ring_gpa(q) - FT_GPA), 0, 0x1000); /* fresh rings */
	m->q[q].size = (uint16_t)(1u << (code % 7));
	vq->size = m->q[q].size;
	vq->desc_gpa = (code & 0x80) ? FT_GPA + FT_MEM_SIZE - 0x10 : DESC_GPA(q);
	vq->avail_gpa = AVAIL_GPA(q);
	vq->used_gpa = USED_GPA(q);
	if (!(code & 0x40))
		ft_set_ready(m, q, true);
}

void ft_bring_up(struct ft_machine *m, uint64_t want, struct fuzz_input *in)
{
	uint64_t offered = m->vdev->features | TRANSPORT_FEATURES;

	m->vdev->acked = (want & offered) | (1ULL << VIRTIO_F_VERSION_1);
	m->raw_rings = false; /* every ring is new */
	for (unsigned int q = 0; q < m->vdev->ops->nqueues; q++)
		setup_queue(m, q, fin_u8(in));
	m->t->driver_ok = true;
	for (unsigned int q = 0; q < m->vdev->ops->nqueues; q++)
		ft_notify(m, q); /* DRIVER_OK kicks every queue */
}

void ft_notify(struct ft_machine *m, unsigned int q)
{
	struct virtio_transport *t = m->t;

	if (q < m->vdev->ops->nqueues && t->driver_ok && !t->broken && t->vqs[q].active)
		m->vdev->ops->notify(m->vdev, q);
}

/* Chains the driver made available that the device has not returned yet. */
static bool device_owes(struct ft_machine *m)
{
	for (unsigned int q = 0; q < m->vdev->ops->nqueues; q++) {
		uint16_t *used = ft_ptr(m, USED_GPA(q), 4);
		unsigned int out = 0;

		for (unsigned int i = 0; i < m->q[q].size; i++)
			out += m->q[q].outstanding[i];
		if (out >
		    (uint16_t)(__atomic_load_n(&used[1], __ATOMIC_ACQUIRE) - m->q[q].used_seen))
			return true;
	}
	return false;
}

void ft_event(struct ft_machine *m, int timeout_ms)
{
	struct pollfd p = {.fd = m->vdev->event_fd, .events = POLLIN};

	if (p.fd < 0 || !m->vdev->ops->event)
		return;
	if (!device_owes(m))
		timeout_ms = 0; /* nothing in flight: waiting would only slow the fuzzer */
	for (int i = 0; i < 8 && poll(&p, 1, i ? 0 : timeout_ms) > 0; i++)
		m->vdev->ops->event(m->vdev);
}

/* Free descriptor slots for @n descriptors, from the lowest; false if too few. */
static bool take_slots(struct ft_queue *fq, unsigned int n, uint8_t *slots)
{
	unsigned int found = 0;

	for (unsigned int i = 0; i < fq->size && found < n; i++)
		if (!fq->busy[i])
			slots[found++] = (uint8_t)i;
	return found == n;
}

bool ft_post(struct ft_machine *m, unsigned int q, const struct ft_desc *d, unsigned int n)
{
	struct ft_queue *fq = &m->q[q];
	uint16_t *avail = ft_ptr(m, AVAIL_GPA(q), 4 + 2ULL * FT_RING_MAX);
	uint8_t slots[FT_CHAIN_MAX];
	uint64_t in_len = 0;

	if (!fq->size || !n || n > FT_CHAIN_MAX || !take_slots(fq, n, slots))
		return false;
	for (unsigned int i = 0; i < n; i++) {
		struct vring_desc v = {.addr = d[i].addr, .len = d[i].len, .flags = d[i].flags};

		if (i + 1 < n && !d[i].cut) {
			v.flags |= VRING_DESC_F_NEXT;
			v.next = slots[i + 1];
		}
		memcpy(ft_ptr(m, DESC_GPA(q) + 16ULL * slots[i], 16), &v, 16);
		fq->busy[slots[i]] = true;
		if (d[i].flags & VRING_DESC_F_INDIRECT)
			in_len = UINT64_MAX; /* the table is in guest memory: not followed here */
		else if ((d[i].flags & VRING_DESC_F_WRITE) && in_len != UINT64_MAX)
			in_len += d[i].len;
	}
	fq->in_len[slots[0]] = in_len;
	fq->outstanding[slots[0]] = true;
	fq->nslots[slots[0]] = (uint8_t)n;
	memcpy(fq->slots[slots[0]], slots, n);
	avail[2 + fq->avail_idx % fq->size] = slots[0];
	fq->avail_idx++;
	__atomic_store_n(&avail[1], fq->avail_idx, __ATOMIC_RELEASE);
	return true;
}

static void give_back(struct ft_queue *fq, uint32_t id)
{
	fq->outstanding[id] = false;
	for (unsigned int i = 0; i < fq->nslots[id]; i++)
		fq->busy[fq->slots[id][i]] = false;
}

void ft_collect(struct ft_machine *m, unsigned int q)
{
	struct ft_queue *fq = &m->q[q];
	uint16_t *used = ft_ptr(m, USED_GPA(q), 4 + 8ULL * FT_RING_MAX);
	uint16_t idx = __atomic_load_n(&used[1], __ATOMIC_ACQUIRE);

	if (!fq->size || m->raw_rings)
		return;
	if ((uint16_t)(idx - fq->used_seen) > fq->size) {
		fprintf(stderr, "queue %u: used index %u ran %u ahead of the driver (size %u)\n", q,
			idx, (uint16_t)(idx - fq->used_seen), fq->size);
		abort();
	}
	for (; fq->used_seen != idx; fq->used_seen++) {
		uint32_t *e = (uint32_t *)(used + 2) + 2 * (fq->used_seen % fq->size);

		if (e[0] >= fq->size || !fq->outstanding[e[0]]) {
			fprintf(stderr, "queue %u: the device returned head %u, not outstanding\n",
				q, e[0]);
			abort();
		}
		if (e[1] > fq->in_len[e[0]]) {
			fprintf(stderr,
				"queue %u: the device wrote %u bytes into chain %u, which has %llu "
				"writable\n",
				q, e[1], e[0], (unsigned long long)fq->in_len[e[0]]);
			abort();
		}
		give_back(fq, e[0]);
	}
}

void ft_config(struct ft_machine *m, bool write, uint64_t off, uint32_t len, struct fuzz_input *in)
{
	uint8_t buf[8] = {0};

	if (write) {
		fin_bytes(in, buf, len);
		if (m->vdev->ops->config_write)
			m->vdev->ops->config_write(m->vdev, off, buf, len);
	} else {
		m->vdev->ops->config_read(m->vdev, off, buf, len);
	}
}

void ft_state_roundtrip(struct ft_machine *m)
{
	struct state_io io;
	struct state_io ld;

	state_io_saver(&io);
	if (m->vdev->ops->state(m->vdev, &io) == 0 && state_io_finish(&io) == 0) {
		state_io_loader(&ld, io.buf, io.len);
		if (m->vdev->ops->state(m->vdev, &ld) < 0 || state_io_finish(&ld) < 0) {
			fprintf(stderr, "the device refused its own state\n");
			abort();
		}
	}
	state_io_free(&io);
}

/*
 * A saved state from the input (a u8 length, then the bytes), as a hostile
 * snapshot's device section would hold it. A refused load ends the input:
 * a restore that fails destroys the VM, so nothing runs on a half-loaded
 * device.
 */
static void op_state_load(struct ft_machine *m, struct fuzz_input *in)
{
	uint8_t buf[255];
	size_t n = fin_bytes(in, buf, fin_u8(in));
	struct state_io ld;

	state_io_loader(&ld, buf, n);
	if (m->vdev->ops->state(m->vdev, &ld) < 0 || state_io_finish(&ld) < 0)
		in->left = 0;
}

/* --- the shared operations --- */

/* One descriptor from the input; readable ones may carry their first bytes. */
static void read_desc(struct ft_machine *m, struct fuzz_input *in, struct ft_desc *d)
{
	uint8_t kind = fin_u8(in);
	uint16_t off = fin_u16(in);
	uint8_t nb = fin_u8(in);
	uint8_t *host;

	d->len = fin_u16(in);
	d->addr = FT_DATA + off % FT_DATA_SIZE;
	d->flags = (kind & 1 ? VRING_DESC_F_WRITE : 0) | (kind & 2 ? VRING_DESC_F_INDIRECT : 0);
	d->cut = kind & 4;
	if (kind & 8)
		d->len |= (uint32_t)fin_u16(in) << 16; /* beyond memory: the device must refuse */
	if (kind & 0x10)
		d->addr = FT_GPA + FT_MEM_SIZE - (off & 0xff); /* straddles the end of memory */
	host = ft_ptr(m, d->addr, 1);
	if (host) {
		uint64_t room = FT_GPA + FT_MEM_SIZE - d->addr;

		fin_bytes(in, host, nb < room ? nb : room);
	}
}

static void op_chain(struct ft_machine *m, struct fuzz_input *in)
{
	uint8_t qb = fin_u8(in);
	unsigned int q = qb % m->vdev->ops->nqueues;
	unsigned int n = 1 + fin_u8(in) % FT_CHAIN_MAX;
	struct ft_desc d[FT_CHAIN_MAX];

	for (unsigned int i = 0; i < n; i++)
		read_desc(m, in, &d[i]);
	if (ft_post(m, q, d, n) && (qb & 0x80))
		ft_notify(m, q);
}

static void op_poke(struct ft_machine *m, struct fuzz_input *in)
{
	uint16_t off = fin_u16(in);
	uint8_t len = fin_u8(in);
	uint64_t room = FT_MEM_SIZE - off;

	if (FT_GPA + off < FT_DATA)
		m->raw_rings = true;
	fin_bytes(in, m->mem + off, len < room ? len : room);
}

static void op_raw_avail(struct ft_machine *m, struct fuzz_input *in)
{
	unsigned int q = fin_u8(in) % m->vdev->ops->nqueues;
	uint16_t *avail = ft_ptr(m, AVAIL_GPA(q), 4);

	m->raw_rings = true;
	__atomic_store_n(&avail[1], fin_u16(in), __ATOMIC_RELEASE);
}

void ft_generic_op(struct ft_machine *m, unsigned int op, struct fuzz_input *in)
{
	unsigned int nq = m->vdev->ops->nqueues;
	uint8_t a;

	switch (op) {
	case 0:
		op_chain(m, in);
		break;
	case 1:
		op_poke(m, in);
		break;
	case 2:
		ft_notify(m, fin_u8(in) % nq);
		break;
	case 3:
		ft_event(m, 0);
		break;
	case 4:
		ft_collect(m, fin_u8(in) % nq);
		break;
	case 5:
		ft_reset(m);
		ft_bring_up(m, fin_u64(in), in);
		break;
	case 6:
	case 7:
		a = fin_u8(in);
		ft_config(m, op == 7, a, 1 + fin_u8(in) % 8, in);
		break;
	case 8:
		a = fin_u8(in);
		ft_set_ready(m, a % nq, a & 0x80);
		break;
	case 9:
		op_raw_avail(m, in);
		break;
	case 10:
		ft_state_roundtrip(m);
		break;
	case 12:
		op_state_load(m, in);
		break;
	default:
		ft_event(m, 1); /* let asynchronous work (disk I/O) finish */
		break;
	}
}
