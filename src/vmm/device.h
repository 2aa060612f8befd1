/*
 * The device contract: every device, legacy or virtio, is a struct device
 * with the same operations. The bus dispatches guest accesses to read/write;
 * the machine walks its device list for reset, save and restore, so a
 * snapshot never needs a second list of "devices that can be saved".
 *
 * Devices never issue KVM ioctls. What they need of the machine around them
 * (interrupt lines, power events) they ask through struct dev_host, which the
 * VM implements and unit tests fake.
 */
#ifndef BANYAN_VMM_DEVICE_H
#define BANYAN_VMM_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct device;
struct state_io;

/* What a device wants the machine to do with the whole VM. */
enum vm_request {
	VM_REQUEST_POWEROFF, /* ACPI S5, a clean guest power-off */
	VM_REQUEST_REBOOT,   /* ACPI reset register, i8042 reset line */
};

/* The machine as a device sees it. */
struct dev_host {
	/* Drive interrupt line @gsi to @level (true = asserted). */
	void (*set_irq)(struct dev_host *host, uint32_t gsi, bool level);
	/* Ask the VM to power off or reboot; returns at once, the VM acts later. */
	void (*request)(struct dev_host *host, enum vm_request req);
};

struct device_ops {
	const char *name;
	/*
	 * Guest access at @offset within the device's registered range, @len in
	 * 1..8. read fills @data (bytes the device does not implement must be
	 * filled too, usually with 0xff or 0). Called from vCPU threads; the
	 * device locks its own state.
	 */
	void (*read)(struct device *dev, uint64_t offset, void *data, uint32_t len);
	void (*write)(struct device *dev, uint64_t offset, const void *data, uint32_t len);
	/* Back to power-on state (VM reboot). */
	void (*reset)(struct device *dev);
	/* Save or restore all guest-visible state through one symmetric function. */
	int (*state)(struct device *dev, struct state_io *io);
	/* Release everything; @dev itself included. */
	void (*destroy)(struct device *dev);
};

struct device {
	const struct device_ops *ops;
	struct dev_host *host;
	const char *id;          /* instance name, e.g. "com1" (static or owned by the device) */
	struct device *next;     /* the machine's device list */
};

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
