/*
 * pc-testdev, as QEMU has it for kvm-unit-tests and similar test kernels:
 *  - ports 0xe0..0xe3: a 4-byte scratch register, any width, any offset,
 *    string I/O included (each element is one access);
 *  - port 0xe4: a 32-bit write of a guest physical address drops the host
 *    mapping of that page, so the next guest access faults it in again;
 *  - ports 0x2000 + n, n < 24: a write sets interrupt line n to (V != 0);
 *  - MMIO 0xff000000, 64 KiB: reads back what was written, like RAM, but
 *    with no memory slot, so every access is emulated by the VMM.
 * Three devices (ports, irq, iomem), each with its own lock and state.
 */
#include "devices/testdev.h"

#include "vmm/state.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE_SIZE 4096ULL

struct testdev_ports {
	struct device dev;
	const struct guest_mem *mem;
	pthread_mutex_t lock; /* protects scratch */
	uint8_t scratch[4];   /* the register, little-endian */
};

struct testdev_irq {
	struct device dev;
	pthread_mutex_t lock; /* protects levels and the order of set_irq calls */
	uint32_t levels;      /* bit n: line n as last driven */
};

struct testdev_iomem {
	struct device dev;
	pthread_mutex_t lock; /* protects mem */
	uint8_t mem[TESTDEV_IOMEM_LEN];
};

/* Reads and writes at @off of a @size-byte register file, clipped to it. */
static void reg_copy(uint8_t *reg, uint64_t size, uint64_t off, void *data, uint32_t len,
		     bool is_write)
{
	uint64_t n = off < size ? size - off : 0;

	if (n > len)
		n = len;
	if (is_write) {
		memcpy(reg + off, data, n);
	} else {
		memcpy(data, reg + off, n);
		memset((uint8_t *)data + n, 0, len - n);
	}
}

/* Drop the host's mapping of the page at @gpa; the data stays (MAP_SHARED or anonymous). */
static void testdev_flush_page(const struct guest_mem *mem, uint32_t gpa)
{
	void *p = mem ? gm_ptr(mem, gpa & ~(PAGE_SIZE - 1), PAGE_SIZE) : NULL;

	if (!p)
		return; /* not RAM (or no memory at all): nothing to flush */
	/* Failure leaves the mapping as it was, which is still correct memory. */
	if (mprotect(p, PAGE_SIZE, PROT_NONE) == 0)
		(void)mprotect(p, PAGE_SIZE, PROT_READ | PROT_WRITE);
}

static struct testdev_ports *to_ports(struct device *dev)
{
	return container_of(dev, struct testdev_ports, dev);
}

static void ports_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	struct testdev_ports *t = to_ports(dev);

	pthread_mutex_lock(&t->lock);
	reg_copy(t->scratch, sizeof(t->scratch), offset, data, len, false);
	pthread_mutex_unlock(&t->lock);
}

static void ports_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	struct testdev_ports *t = to_ports(dev);
	uint32_t gpa = 0;

	if (offset >= TESTDEV_FLUSH_PORT - TESTDEV_PORT) {
		if (offset == TESTDEV_FLUSH_PORT - TESTDEV_PORT && len == 4) {
			memcpy(&gpa, data, 4);
			testdev_flush_page(t->mem, gpa);
		}
		return;
	}
	pthread_mutex_lock(&t->lock);
	reg_copy(t->scratch, sizeof(t->scratch), offset, (void *)(uintptr_t)data, len, true);
	pthread_mutex_unlock(&t->lock);
}

static int ports_state(struct device *dev, struct state_io *io)
{
	struct testdev_ports *t = to_ports(dev);

	state_bytes(io, t->scratch, sizeof(t->scratch));
	return 0;
}

static void ports_destroy(struct device *dev)
{
	struct testdev_ports *t = to_ports(dev);

	pthread_mutex_destroy(&t->lock);
	free(t);
}

static const struct device_ops ports_ops = {
    .name = "testdev",
    .read = ports_read,
    .write = ports_write,
    .state = ports_state,
    .destroy = ports_destroy,
};

static struct testdev_irq *to_irq(struct device *dev)
{
	return container_of(dev, struct testdev_irq, dev);
}

static void irq_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	struct testdev_irq *t = to_irq(dev);
	uint8_t *out = data;

	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < len; i++)
		out[i] = offset + i < TESTDEV_IRQ_LINES ? (t->levels >> (offset + i)) & 1 : 0;
	pthread_mutex_unlock(&t->lock);
}

/* Each byte written sets its own line: a 16-bit write at 0x2000 drives lines 0 and 1. */
static void irq_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	struct testdev_irq *t = to_irq(dev);
	const uint8_t *in = data;

	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < len && offset + i < TESTDEV_IRQ_LINES; i++) {
		uint32_t line = (uint32_t)(offset + i), bit = 1U << line;

		t->levels = in[i] ? t->levels | bit : t->levels & ~bit;
		dev->host->set_irq(dev->host, line, in[i] != 0);
	}
	pthread_mutex_unlock(&t->lock);
}

/* The lines' levels live in the interrupt controller's saved state too; this is the device's view.
 */
static int irq_state(struct device *dev, struct state_io *io)
{
	state_u32(io, &to_irq(dev)->levels);
	return 0;
}

static void irq_destroy(struct device *dev)
{
	struct testdev_irq *t = to_irq(dev);

	pthread_mutex_destroy(&t->lock);
	free(t);
}

static const struct device_ops irq_ops = {
    .name = "testdev-irq",
    .read = irq_read,
    .write = irq_write,
    .state = irq_state,
    .destroy = irq_destroy,
};

static struct testdev_iomem *to_iomem(struct device *dev)
{
	return container_of(dev, struct testdev_iomem, dev);
}

static void iomem_access(struct device *dev, uint64_t offset, void *data, uint32_t len,
			 bool is_write)
{
	struct testdev_iomem *t = to_iomem(dev);

	pthread_mutex_lock(&t->lock);
	reg_copy(t->mem, sizeof(t->mem), offset, data, len, is_write);
	pthread_mutex_unlock(&t->lock);
}

static void iomem_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	iomem_access(dev, offset, data, len, false);
}

static void iomem_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	iomem_access(dev, offset, (void *)(uintptr_t)data, len, true);
}

static int iomem_state(struct device *dev, struct state_io *io)
{
	struct testdev_iomem *t = to_iomem(dev);

	state_bytes(io, t->mem, sizeof(t->mem));
	return 0;
}

static void iomem_destroy(struct device *dev)
{
	struct testdev_iomem *t = to_iomem(dev);

	pthread_mutex_destroy(&t->lock);
	free(t);
}

static const struct device_ops iomem_ops = {
    .name = "testdev-iomem",
    .read = iomem_read,
    .write = iomem_write,
    .state = iomem_state,
    .destroy = iomem_destroy,
};

/* calloc and a mutex at @lock_off; NULL when either fails. */
static void *part_alloc(size_t size, size_t lock_off)
{
	uint8_t *p = calloc(1, size);

	if (p && pthread_mutex_init((pthread_mutex_t *)(void *)(p + lock_off), NULL)) {
		free(p);
		return NULL;
	}
	return p;
}

static void part_init(struct device *dev, const struct device_ops *ops, struct dev_host *host,
		      const char *id)
{
	dev->ops = ops;
	dev->host = host;
	dev->id = id;
}

int testdev_create(struct dev_host *host, const struct guest_mem *mem,
		   struct device *out[TESTDEV_NPARTS])
{
	struct testdev_ports *p = part_alloc(sizeof(*p), offsetof(struct testdev_ports, lock));
	struct testdev_irq *q = part_alloc(sizeof(*q), offsetof(struct testdev_irq, lock));
	struct testdev_iomem *m = part_alloc(sizeof(*m), offsetof(struct testdev_iomem, lock));

	if (!p || !q || !m) {
		if (p)
			ports_destroy(&p->dev);
		if (q)
			irq_destroy(&q->dev);
		if (m)
			iomem_destroy(&m->dev);
		return -ENOMEM;
	}
	part_init(&p->dev, &ports_ops, host, "testdev");
	part_init(&q->dev, &irq_ops, host, "testdev-irq");
	part_init(&m->dev, &iomem_ops, host, "testdev-iomem");
	p->mem = mem;
	out[TESTDEV_PART_PORTS] = &p->dev;
	out[TESTDEV_PART_IRQ] = &q->dev;
	out[TESTDEV_PART_IOMEM] = &m->dev;
	return 0;
}
