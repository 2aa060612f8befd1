/*
 * The trap registry: one bus for port I/O, one for MMIO. A device registers
 * (base, length) ranges; overlapping ranges are refused. A guest access that
 * leaves KVM is looked up here and handed to the owner with the offset inside
 * its range.
 */
#ifndef BANYAN_VMM_BUS_H
#define BANYAN_VMM_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct device;

struct bus_range {
	uint64_t base;
	uint64_t len;
	struct device *dev;
};

struct bus {
	const char *name;	  /* "pio" or "mmio", for logs */
	pthread_rwlock_t lock;	  /* protects ranges/count; readers are vCPUs */
	struct bus_range *ranges; /* sorted by base, never overlapping */
	unsigned int count;
	unsigned int cap;
};

/* bus_init - an empty bus. Returns 0 or -errno. */
int bus_init(struct bus *bus, const char *name);

/* bus_destroy - free the range table (not the devices). */
void bus_destroy(struct bus *bus);

/*
 * bus_register - route [base, base+len) to @dev. Returns 0, -EINVAL for an
 * empty or wrapping range, -EEXIST when it overlaps a registered range,
 * -ENOMEM.
 */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, struct device *dev)
    __attribute__((warn_unused_result));

/* bus_unregister - remove every range owned by @dev. */
void bus_unregister(struct bus *bus, struct device *dev);

/*
 * bus_access - perform a guest access. Returns true when a device owns the
 * whole access; false when nothing is there (a read is then filled with
 * 0xff). An access that straddles two ranges counts as unowned.
 */
bool bus_access(struct bus *bus, uint64_t addr, void *data, uint32_t len, bool is_write);

#endif
