/*
 * libFuzzer target: the virtio-mmio register file (virtio/mmio.c), reached
 * as a vCPU reaches it, through the MMIO bus: reads and writes at any
 * offset and width in and around the 4 KiB window; the registers by name
 * with values a driver would write or should not (queue selectors out of
 * range, sizes that are no power of two, ring addresses outside memory or
 * misaligned, status bits out of order, resets); interleaved with a device
 * that pops and returns chains, fails, changes its configuration; VM
 * resets; state saved and loaded back, whole or with bytes flipped.
 *
 * The device here is a stand-in with three queues and a 24-byte config
 * space. Its notify only counts: the chains are served by the fuzzer's own
 * thread with the transport lock held (virtio_lock), as a device thread
 * would, so an input runs the same way every time despite the transport's
 * thread. Guest memory is 64 KiB at FT_GPA, written by the input.
 *
 * Build and run: tests/fuzz/meson.build (the unit suite runs it briefly).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_host.h"
#include "fuzz_input.h"
#include "fuzz_log.h"
#include "util/log.h"
#include "virtio/mmio.h"
#include "vmm/bus.h"
#include "vmm/state.h"

#define BASE	 0xd0000000ULL
#define GSI	 16
#define MEM_GPA	 0x10000ULL
#define MEM_SIZE 0x10000ULL
#define NQ	 3
#define QMAX	 64
#define CFG_SIZE 24
#define MAX_OPS	 96

struct fuzz_dev {
	struct virtio_dev vdev;
	uint8_t cfg[CFG_SIZE];
	atomic_uint notifies;
};

static struct fuzz_dev *to_fdev(struct virtio_dev *vdev)
{
	return container_of(vdev, struct fuzz_dev, vdev);
}

static void fdev_config_read(struct virtio_dev *vdev, uint64_t off, void *data, uint32_t len)
{
	virtio_config_bytes(to_fdev(vdev)->cfg, CFG_SIZE, off, data, len);
}

static void fdev_config_write(struct virtio_dev *vdev, uint64_t off, const void *data, uint32_t len)
{
	struct fuzz_dev *f = to_fdev(vdev);

	if (off < CFG_SIZE)
		memcpy(f->cfg + off, data, CFG_SIZE - off < len ? CFG_SIZE - off : len);
}

static void fdev_notify(struct virtio_dev *vdev, unsigned int q)
{
	(void)q;
	atomic_fetch_add(&to_fdev(vdev)->notifies, 1);
}

static void fdev_reset(struct virtio_dev *vdev)
{
	(void)vdev;
}

static int fdev_state(struct virtio_dev *vdev, struct state_io *io)
{
	state_bytes(io, to_fdev(vdev)->cfg, CFG_SIZE);
	return io->err;
}

static void fdev_destroy(struct virtio_dev *vdev)
{
	free(to_fdev(vdev));
}

static const struct virtio_dev_ops fdev_ops = {
    .name = "fuzz-dev",
    .device_id = 31,
    .nqueues = NQ,
    .queue_max = QMAX,
    .config_read = fdev_config_read,
    .config_write = fdev_config_write,
    .notify = fdev_notify,
    .reset = fdev_reset,
    .state = fdev_state,
    .destroy = fdev_destroy,
};

struct machine {
	struct fake_host host;
	struct guest_mem gm;
	uint8_t *mem;
	struct bus bus;
	struct device *dev;
	struct virtio_dev *vdev;
};

static void machine_up(struct machine *m)
{
	struct fuzz_dev *f = calloc(1, sizeof(*f));

	if (!f)
		abort();
	f->vdev = (struct virtio_dev){.ops = &fdev_ops, .id = "fz0", .event_fd = -1};
	f->vdev.features = 0x3ffULL << 8; /* some device features to negotiate */
	m->dev = virtio_mmio_create(&m->host.host, &m->gm, &f->vdev, BASE, GSI);
	if (!m->dev || bus_register(&m->bus, BASE, VIRTIO_MMIO_SIZE, m->dev) < 0)
		abort();
	m->vdev = virtio_mmio_vdev(m->dev);
}

static void machine_down(struct machine *m)
{
	bus_unregister(&m->bus, m->dev);
	m->dev->ops->destroy(m->dev);
}

static uint32_t reg_read(struct machine *m, uint64_t off)
{
	uint32_t v = 0;

	bus_access(&m->bus, BASE + off, &v, 4, false);
	return v;
}

static void reg_write(struct machine *m, uint64_t off, uint32_t v)
{
	bus_access(&m->bus, BASE + off, &v, 4, true);
}

/* Registers that never change: a transport that lost them lost its state. */
static void check_identity(struct machine *m)
{
	if (reg_read(m, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC ||
	    reg_read(m, VIRTIO_MMIO_VERSION) != 2 ||
	    reg_read(m, VIRTIO_MMIO_VENDOR_ID) != VIRTIO_MMIO_VENDOR) {
		fprintf(stderr, "identity registers changed\n");
		abort();
	}
}

/* Any access in and around the window, any width a vCPU can make (1..8). */
static void op_raw(struct machine *m, bool write, struct fuzz_input *in)
{
	uint64_t addr = BASE - 8 + fin_u16(in) % (VIRTIO_MMIO_SIZE + 16);
	uint32_t len = 1 + fin_u8(in) % 8;
	uint64_t v = fin_u64(in);

	bus_access(&m->bus, addr, &v, len, write);
}

static const uint16_t regs[] = {
    VIRTIO_MMIO_MAGIC_VALUE,
    VIRTIO_MMIO_DEVICE_FEATURES,
    VIRTIO_MMIO_DEVICE_FEATURES_SEL,
    VIRTIO_MMIO_DRIVER_FEATURES,
    VIRTIO_MMIO_DRIVER_FEATURES_SEL,
    VIRTIO_MMIO_QUEUE_SEL,
    VIRTIO_MMIO_QUEUE_NUM_MAX,
    VIRTIO_MMIO_QUEUE_NUM,
    VIRTIO_MMIO_QUEUE_READY,
    VIRTIO_MMIO_QUEUE_NOTIFY,
    VIRTIO_MMIO_INTERRUPT_STATUS,
    VIRTIO_MMIO_INTERRUPT_ACK,
    VIRTIO_MMIO_STATUS,
    VIRTIO_MMIO_QUEUE_DESC_LOW,
    VIRTIO_MMIO_QUEUE_DESC_HIGH,
    VIRTIO_MMIO_QUEUE_AVAIL_LOW,
    VIRTIO_MMIO_QUEUE_AVAIL_HIGH,
    VIRTIO_MMIO_QUEUE_USED_LOW,
    VIRTIO_MMIO_QUEUE_USED_HIGH,
    VIRTIO_MMIO_SHM_SEL,
    VIRTIO_MMIO_CONFIG_GENERATION,
    VIRTIO_MMIO_CONFIG,
};

/* A value for a register: raw, small, or a guest address in, at the edge of, or out of memory. */
static uint32_t pick_value(struct fuzz_input *in)
{
	uint8_t kind = fin_u8(in);

	switch (kind % 6) {
	case 0:
		return fin_u32(in);
	case 1:
		return fin_u8(in);
	case 2:
		return (uint32_t)(MEM_GPA + (fin_u16(in) & ~0xfULL)); /* aligned, inside */
	case 3:
		return (uint32_t)(MEM_GPA + MEM_SIZE - fin_u8(in)); /* at the end */
	case 4:
		return 1u << (fin_u8(in) % 32);
	default:
		return (uint32_t)(MEM_GPA + fin_u16(in)); /* inside, any alignment */
	}
}

static void op_reg(struct machine *m, bool write, struct fuzz_input *in)
{
	uint16_t off = regs[fin_u8(in) % (sizeof(regs) / sizeof(regs[0]))];

	if (write)
		reg_write(m, off, pick_value(in));
	else
		(void)reg_read(m, off);
}

/* What a driver does to start the device: three queues at fixed, valid rings. */
static void op_bring_up(struct machine *m, struct fuzz_input *in)
{
	uint8_t sizes = fin_u8(in);

	reg_write(m, VIRTIO_MMIO_STATUS, 0);
	reg_write(m, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	reg_write(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	reg_write(m, VIRTIO_MMIO_DRIVER_FEATURES, fin_u32(in) & 0x3003ff00);
	reg_write(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	reg_write(m, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	reg_write(m, VIRTIO_MMIO_STATUS, 0xb);
	for (unsigned int q = 0; q < NQ; q++) {
		reg_write(m, VIRTIO_MMIO_QUEUE_SEL, q);
		reg_write(m, VIRTIO_MMIO_QUEUE_NUM, 1u << ((sizes >> (2 * q)) % 4 + 3));
		reg_write(m, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(MEM_GPA + 0x1000 * q));
		reg_write(m, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)(MEM_GPA + 0x1000 * q + 0x800));
		reg_write(m, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)(MEM_GPA + 0x1000 * q + 0xc00));
		reg_write(m, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	reg_write(m, VIRTIO_MMIO_STATUS, 0xf);
}

/* The device side: take up to 8 chains from queue @q, touch them, return them. */
static void op_serve(struct machine *m, struct fuzz_input *in)
{
	unsigned int q = fin_u8(in) % NQ;
	struct iovec iov[16];
	struct vq_chain c = {.iov = iov, .cap = 16};

	virtio_lock(m->vdev);
	for (int n = 0; n < 8 && virtio_pop(m->vdev, q, &c) > 0; n++) {
		for (unsigned int i = 0; i < c.nout + c.nin; i++) {
			volatile uint8_t *p = iov[i].iov_base;

			p[iov[i].iov_len - 1] = p[0]; /* ASan sees any escape */
		}
		vq_push(&m->vdev->vqs[q], c.head, (uint32_t)c.in_len);
		virtio_used(m->vdev, q);
	}
	virtio_unlock(m->vdev);
}

/* A chain at the rings op_bring_up programs: @n descriptors from the input. */
static void op_chain(struct machine *m, struct fuzz_input *in)
{
	unsigned int q = fin_u8(in) % NQ, n = 1 + fin_u8(in) % 4;
	uint8_t *ring = m->mem + 0x1000 * q;
	uint16_t *avail = (uint16_t *)(ring + 0x800);
	uint16_t head = fin_u8(in) % 8, idx = avail[1];

	for (unsigned int i = 0; i < n; i++) {
		struct vring_desc d = {.addr = MEM_GPA + 0x4000 + fin_u16(in) % 0xc000,
				       .len = fin_u16(in),
				       .flags = fin_u8(in) % 8,
				       .next = (uint16_t)((head + i + 1) % 8)};

		if (i + 1 < n)
			d.flags |= VRING_DESC_F_NEXT;
		memcpy(ring + 16 * ((head + i) % 8), &d, sizeof(d));
	}
	avail[2 + idx % 8] = head; /* rings of size 8 or more: slot within all */
	__atomic_store_n(&avail[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE);
	reg_write(m, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/* Save, maybe flip bytes, load back. A refused load ends this machine, as a failed restore does. */
static bool op_state(struct machine *m, struct fuzz_input *in)
{
	struct state_io io, ld;
	unsigned int flips = fin_u8(in) % 4;
	bool ok;

	state_io_saver(&io);
	if (m->dev->ops->state(m->dev, &io) < 0 || state_io_finish(&io) < 0)
		abort();
	for (unsigned int i = 0; i < flips && io.len; i++) {
		uint16_t pos = fin_u16(in);

		io.buf[pos % io.len] ^= fin_u8(in);
	}
	state_io_loader(&ld, io.buf, io.len);
	ok = m->dev->ops->state(m->dev, &ld) == 0 && state_io_finish(&ld) == 0;
	state_io_free(&io);
	if (!ok && !flips) {
		fprintf(stderr, "the transport refused its own state\n");
		abort();
	}
	if (!ok) {
		machine_down(m);
		machine_up(m);
	}
	/* A loaded machine is one the registers could have set up: features, queues. */
	if (ok && (m->vdev->acked &
		   ~(m->vdev->features | 1ULL << VIRTIO_F_VERSION_1 |
		     1ULL << VIRTIO_F_RING_INDIRECT_DESC | 1ULL << VIRTIO_F_RING_EVENT_IDX))) {
		fprintf(stderr, "features %#llx loaded, never offered\n",
			(unsigned long long)m->vdev->acked);
		abort();
	}
	for (unsigned int q = 0; ok && q < m->vdev->ops->nqueues; q++)
		if (m->vdev->vqs[q].size > QMAX) {
			fprintf(stderr, "queue %u loaded with size %u\n", q, m->vdev->vqs[q].size);
			abort();
		}
	return flips == 0;
}

static void op_device(struct machine *m, unsigned int op)
{
	virtio_lock(m->vdev);
	if (op == 0)
		virtio_fail(m->vdev, "the fuzzer broke it");
	else
		virtio_config_changed(m->vdev);
	virtio_unlock(m->vdev);
}

static void op_poke(struct machine *m, struct fuzz_input *in)
{
	uint16_t off = fin_u16(in);
	uint8_t len = fin_u8(in);

	fin_bytes(in, m->mem + off, len < MEM_SIZE - off ? len : MEM_SIZE - off);
}

static void run_op(struct machine *m, unsigned int op, struct fuzz_input *in)
{
	switch (op) {
	case 0:
	case 1:
		op_raw(m, op == 0, in);
		break;
	case 2:
	case 3:
	case 4:
		op_reg(m, op != 4, in);
		break;
	case 5:
		op_bring_up(m, in);
		break;
	case 6:
		op_serve(m, in);
		break;
	case 7:
		op_chain(m, in);
		break;
	case 8:
	case 9:
		op_device(m, op - 8);
		break;
	case 11:
		op_poke(m, in);
		break;
	default:
		(void)op_state(m, in);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct machine m;
	struct fuzz_input in = {data, size};

	if (!m.mem) {
		m.mem = calloc(1, MEM_SIZE);
		if (!m.mem || gm_add_region(&m.gm, MEM_GPA, MEM_SIZE, m.mem) < 0 ||
		    bus_init(&m.bus, "mmio") < 0)
			abort();
		fuzz_log_quiet();
		fake_host_init(&m.host, GSI);
	}
	memset(m.mem, 0, MEM_SIZE);
	machine_up(&m);
	for (int n = 0; n < MAX_OPS && in.left; n++) {
		run_op(&m, fin_u8(&in) % 13, &in);
		check_identity(&m);
	}
	if (m.host.wrong_gsi) {
		fprintf(stderr, "the transport drove a line that is not its own\n");
		abort();
	}
	machine_down(&m);
	return 0;
}
