/*
 * The POST diagnostic port 0x80. Linux writes to it as an I/O delay
 * (io_delay=0x80, the default), thousands of times while booting; claiming
 * the port makes those ordinary accesses rather than accesses to nothing.
 * It has no state, so nothing to lock, save or reset.
 */
#include "devices/legacy.h"

#include <stdlib.h>
#include <string.h>

struct post_sink {
	struct device dev;
};

static struct post_sink *to_post_sink(struct device *dev)
{
	return container_of(dev, struct post_sink, dev);
}

/* Reads see an empty ISA bus. */
static void post_sink_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	(void)dev;
	(void)offset;
	memset(data, 0xff, len);
}

static void post_sink_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	(void)dev;
	(void)offset;
	(void)data;
	(void)len;
}

static int post_sink_state(struct device *dev, struct state_io *io)
{
	(void)dev;
	(void)io;
	return 0;
}

static void post_sink_destroy(struct device *dev)
{
	free(to_post_sink(dev));
}

static const struct device_ops post_sink_ops = {
    .name = "post",
    .read = post_sink_read,
    .write = post_sink_write,
    .state = post_sink_state,
    .destroy = post_sink_destroy,
};

struct device *post_sink_create(struct dev_host *host)
{
	struct post_sink *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->dev.ops = &post_sink_ops;
	p->dev.host = host;
	p->dev.id = "post";
	return &p->dev;
}
