/*
 * isa-debug-exit: a port whose write ends the VM with the process exit
 * status (V << 1) | 1, V being the value written. Test kernels written for
 * QEMU report their verdict through it; the odd status can never be
 * mistaken for a clean power-off (0). No state: a write ends the machine.
 */
#include "devices/testdev.h"

#include <stdlib.h>
#include <string.h>

struct debug_exit {
	struct device dev;
	uint32_t iosize; /* 1, 2 or 4: the registered width, fixed at creation */
};

static struct debug_exit *to_debug_exit(struct device *dev)
{
	return container_of(dev, struct debug_exit, dev);
}

static void debug_exit_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	(void)dev;
	(void)offset;
	memset(data, 0, len);
}

static void debug_exit_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	struct debug_exit *d = to_debug_exit(dev);
	uint32_t v = 0;

	(void)offset;
	/* Little-endian: the low @len bytes of V, as wide as the guest wrote. */
	memcpy(&v, data, len < sizeof(v) ? len : sizeof(v));
	if (d->iosize < sizeof(v))
		v &= (1U << (8 * d->iosize)) - 1;
	if (dev->host->guest_exit)
		dev->host->guest_exit(dev->host, (int)((v << 1) | 1));
}

static int debug_exit_state(struct device *dev, struct state_io *io)
{
	(void)dev;
	(void)io;
	return 0;
}

static void debug_exit_destroy(struct device *dev)
{
	free(to_debug_exit(dev));
}

static const struct device_ops debug_exit_ops = {
    .name = "debug-exit",
    .read = debug_exit_read,
    .write = debug_exit_write,
    .state = debug_exit_state,
    .destroy = debug_exit_destroy,
};

struct device *debug_exit_create(struct dev_host *host, uint32_t iosize)
{
	struct debug_exit *d;

	if (iosize != 1 && iosize != 2 && iosize != 4)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->dev.ops = &debug_exit_ops;
	d->dev.host = host;
	d->dev.id = "debug-exit";
	d->iosize = iosize;
	return &d->dev;
}
