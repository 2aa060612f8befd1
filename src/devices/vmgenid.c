/* The VM generation ID: 16 bytes in guest memory, a GED interrupt when they change. */
#include "devices/vmgenid.h"

#include "vmm/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define VMGENID_STATE_VERSION 1

struct vmgenid {
	struct device dev;
	const struct guest_mem *mem;
	uint64_t gpa;
	uint32_t gsi;
	uint64_t generation; /* changes since this process created the device (for logs) */
};

static struct vmgenid *to_gen(struct device *dev)
{
	return container_of(dev, struct vmgenid, dev);
}

static void vmgenid_random(uint8_t id[VMGENID_SIZE])
{
	struct timespec ts;

	if (getrandom(id, VMGENID_SIZE, 0) == VMGENID_SIZE)
		return;
	clock_gettime(CLOCK_REALTIME, &ts); /* never expected: still differs per call */
	memcpy(id, &ts, sizeof(ts) < VMGENID_SIZE ? sizeof(ts) : VMGENID_SIZE);
}

static void vmgenid_write_id(struct vmgenid *g, const uint8_t id[VMGENID_SIZE])
{
	if (gm_write(g->mem, g->gpa, id, VMGENID_SIZE) == 0)
		gm_mark_dirty(g->mem, g->gpa, VMGENID_SIZE);
}

void vmgenid_new_generation(struct device *dev, const uint8_t id[VMGENID_SIZE])
{
	struct vmgenid *g = to_gen(dev);
	uint8_t fresh[VMGENID_SIZE];

	if (!id) {
		vmgenid_random(fresh);
		id = fresh;
	}
	vmgenid_write_id(g, id);
	g->generation++;
	/* An edge on the GED's line: _EVT runs Notify(VGEN, 0x80). */
	dev->host->set_irq(dev->host, g->gsi, true);
	dev->host->set_irq(dev->host, g->gsi, false);
}

void vmgenid_get(struct device *dev, uint8_t id[VMGENID_SIZE])
{
	struct vmgenid *g = to_gen(dev);

	if (gm_read(g->mem, g->gpa, id, VMGENID_SIZE) < 0)
		memset(id, 0, VMGENID_SIZE);
}

static void vmgenid_access(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	(void)dev;
	(void)offset;
	memset(data, 0xff, len); /* never on a bus; here for the contract */
}

static void vmgenid_ignore(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	(void)dev;
	(void)offset;
	(void)data;
	(void)len;
}

/* The ID itself is in guest memory (saved with it); the state is its address. */
static int vmgenid_state(struct device *dev, struct state_io *io)
{
	struct vmgenid *g = to_gen(dev);
	uint8_t version = VMGENID_STATE_VERSION;
	uint64_t gpa = g->gpa;

	state_u8(io, &version);
	state_u64(io, &gpa);
	if (!io->err && (version != VMGENID_STATE_VERSION || gpa != g->gpa))
		io->err = -EBADMSG;
	return io->err;
}

/* Every restore runs a copy of a saved machine, a new generation: clones and plain restores alike.
 */
static int vmgenid_clone(struct device *dev, const struct dev_clone *c)
{
	(void)c;
	vmgenid_new_generation(dev, NULL);
	return 0;
}

static void vmgenid_destroy(struct device *dev)
{
	free(to_gen(dev));
}

static const struct device_ops vmgenid_ops = {
    .name = "vmgenid",
    .read = vmgenid_access,
    .write = vmgenid_ignore,
    .state = vmgenid_state,
    .clone = vmgenid_clone,
    .destroy = vmgenid_destroy,
};

struct device *vmgenid_create(struct dev_host *host, const struct guest_mem *mem, uint64_t gpa,
			      uint32_t gsi)
{
	struct vmgenid *g;
	uint8_t id[VMGENID_SIZE];

	if ((gpa & 7) || !gm_ptr(mem, gpa, VMGENID_SIZE))
		return NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->dev = (struct device){.ops = &vmgenid_ops, .host = host, .id = VMGENID_DEVICE_ID};
	g->mem = mem;
	g->gpa = gpa;
	g->gsi = gsi;
	vmgenid_random(id);
	vmgenid_write_id(g, id);
	return &g->dev;
}
