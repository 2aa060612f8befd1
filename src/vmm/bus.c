/* PIO/MMIO trap registry: sorted ranges, binary search, overlap refused. */
#include "vmm/bus.h"

#include "vmm/device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	return -pthread_rwlock_init(&bus->lock, NULL);
}

void bus_destroy(struct bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->count = bus->cap = 0;
	pthread_rwlock_destroy(&bus->lock);
}

/* Index of the first range whose end is above @addr. */
static unsigned int bus_lower_bound(const struct bus *bus, uint64_t addr)
{
	unsigned int lo = 0, hi = bus->count;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (r->base + r->len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int bus_grow(struct bus *bus)
{
	unsigned int cap = bus->cap ? bus->cap * 2 : 16;
	struct bus_range *r = realloc(bus->ranges, cap * sizeof(*r));

	if (!r)
		return -ENOMEM;
	bus->ranges = r;
	bus->cap = cap;
	return 0;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, struct device *dev)
{
	unsigned int i;
	int ret = 0;

	if (len == 0 || base + len < base)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	i = bus_lower_bound(bus, base);
	if (i < bus->count && bus->ranges[i].base < base + len) {
		ret = -EEXIST;
		goto out;
	}
	if (bus->count == bus->cap && (ret = bus_grow(bus)) < 0)
		goto out;
	memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->count - i) * sizeof(bus->ranges[0]));
	bus->ranges[i] = (struct bus_range){.base = base, .len = len, .dev = dev};
	bus->count++;
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

void bus_unregister(struct bus *bus, struct device *dev)
{
	unsigned int i, j = 0;

	pthread_rwlock_wrlock(&bus->lock);
	for (i = 0; i < bus->count; i++)
		if (bus->ranges[i].dev != dev)
			bus->ranges[j++] = bus->ranges[i];
	bus->count = j;
	pthread_rwlock_unlock(&bus->lock);
}

bool bus_access(struct bus *bus, uint64_t addr, void *data, uint32_t len, bool is_write)
{
	const struct bus_range *r = NULL;
	unsigned int i;

	pthread_rwlock_rdlock(&bus->lock);
	i = bus_lower_bound(bus, addr);
	if (i < bus->count && bus->ranges[i].base <= addr &&
	    addr + len <= bus->ranges[i].base + bus->ranges[i].len && addr + len > addr)
		r = &bus->ranges[i];
	if (r) {
		struct device *dev = r->dev;
		uint64_t off = addr - r->base;

		if (is_write)
			dev->ops->write(dev, off, data, len);
		else
			dev->ops->read(dev, off, data, len);
	} else if (!is_write) {
		memset(data, 0xff, len);
	}
	pthread_rwlock_unlock(&bus->lock);
	return r != NULL;
}
