/*
 * The VM generation ID device (ACPI VMGENID): a 16-byte ID in reserved
 * guest memory that changes whenever the VM may have been duplicated or
 * rolled back (every snapshot restore, every clone). The DSDT describes it
 * (arch/x86/acpi.c); on a change the device pulses the Generic Event
 * Device's interrupt, whose _EVT sends Notify(VGEN, 0x80), and Linux's
 * vmgenid driver reseeds its random number generator.
 */
#ifndef BANYAN_DEVICES_VMGENID_H
#define BANYAN_DEVICES_VMGENID_H

#include <stdint.h>

#include "vmm/device.h"
#include "vmm/guest_mem.h"

#define VMGENID_DEVICE_ID "vmgenid"
#define VMGENID_SIZE	  16

/*
 * vmgenid_create - the device, with a fresh random ID written at @gpa
 * (8-byte aligned, inside guest RAM) and @gsi as the GED's interrupt.
 * NULL when out of memory or @gpa is not guest memory.
 */
struct device *vmgenid_create(struct dev_host *host, const struct guest_mem *mem, uint64_t gpa,
			      uint32_t gsi);

/*
 * vmgenid_new_generation - write a new ID (@id, or a random one when NULL)
 * and notify the guest. Call with the vCPUs paused or not yet started.
 * The device's clone operation (every snapshot restore) calls it.
 */
void vmgenid_new_generation(struct device *dev, const uint8_t id[VMGENID_SIZE]);

/* vmgenid_get - the current ID as the guest sees it. */
void vmgenid_get(struct device *dev, uint8_t id[VMGENID_SIZE]);

#endif
