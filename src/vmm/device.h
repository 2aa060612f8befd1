/*
 * The device contract: every device, legacy or virtio, is a struct device
 * with the same operations. The bus dispatches guest accesses to read/write;
 * the machine walks its device list for save, restore and clone, so a
 * snapshot never needs a second list of "devices that can be saved", and
 * never names a device.
 *
 * Devices never issue KVM ioctls. What they need of the machine around them
 * (interrupt lines, power events) they ask through struct dev_host, which the
 * VM implements and unit tests fake.
 */
#ifndef BANYAN_VMM_DEVICE_H
#define BANYAN_VMM_DEVICE_H

#include "util/clock.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct device;
struct state_io;

/*
 * Which copy of a saved machine a device belongs to. Devices read it when
 * they are created, for the host-side resources they open then and that
 * copies of one snapshot cannot share (src/snapshot fills it in; all zero
 * for a VM booted from its configuration, and it stays with the VM's
 * configuration, so a reboot reopens the same resources).
 */
struct dev_instance {
	bool clone; /* clone @clone_index of a snapshot */
	unsigned int clone_index;
	/*
	 * Where writable disks' overlays live: "PREFIX.vdX.overlay". Always
	 * the operator's choice (a command-line option), never a snapshot's.
	 */
	const char *overlay_prefix;
	/*
	 * Restoring: the snapshot directory holding the files devices saved
	 * there (save_files). NULL otherwise. Never a place to write.
	 */
	const char *saved_dir;
};

/* What a device learns when the VM it belongs to was restored (device_ops.clone). */
struct dev_clone {
	int index; /* >= 0: clone number, the device takes an identity of its own; -1: plain restore
		    */
};

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
	/*
	 * Signal eventfd @fd, without a vCPU exit to user space, when the guest
	 * writes @datamatch (@len bytes) to MMIO address @addr; @assign false
	 * removes it. 0 or -errno. NULL when the machine cannot (unit tests).
	 */
	int (*ioeventfd)(struct dev_host *host, uint64_t addr, uint32_t len, uint64_t datamatch,
			 int fd, bool assign);
	/*
	 * Make a write to eventfd @fd an edge on interrupt line @gsi (or, with a
	 * @resample_fd >= 0, a level the EOI resamples); @assign false removes
	 * it. 0 or -errno. NULL when the machine cannot.
	 */
	int (*irqfd)(struct dev_host *host, uint32_t gsi, int fd, int resample_fd, bool assign);
	/*
	 * End the VM with process exit status @status, chosen by the guest (a
	 * test kernel's verdict through the debug-exit port). Returns at once,
	 * the VM stops later. NULL when the machine cannot (unit tests).
	 */
	void (*guest_exit)(struct dev_host *host, int status);
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
	/*
	 * No reset operation: a reboot (--on-reboot restart) creates a new VM
	 * from the configuration, devices included (docs/architecture.md).
	 */
	/* Save or restore all guest-visible state through one symmetric function. */
	int (*state)(struct device *dev, struct state_io *io);
	/*
	 * Quiesce (docs/architecture.md, "Pause and resume"): a device that does
	 * work of its own, outside guest accesses (a thread serving queues,
	 * host sockets, I/O completions), stops it: in-flight host I/O is
	 * finished and published to the guest, then nothing more touches guest
	 * memory or raises an interrupt until resume. Returns only once the
	 * device is parked. Guest accesses (read/write) and state still work
	 * meanwhile; what arrives (kicks, host input) waits, and resume
	 * serves it: nothing is lost. Both idempotent; never from the device's
	 * own thread. NULL for devices that act only inside a vCPU's access
	 * (the legacy devices): paused vCPUs quiesce them.
	 */
	void (*pause)(struct device *dev);
	void (*resume)(struct device *dev);
	/*
	 * Bytes typed on the host console for the device the console feeds
	 * (vm->console, the serial port); returns how many it took (the rest
	 * waits for room). From the event loop. NULL: not a console device.
	 */
	size_t (*input)(struct device *dev, const uint8_t *buf, size_t len);
	/*
	 * The VM was restored from a snapshot: every device's state is loaded,
	 * no vCPU has run. A plain restore is a new generation of the same
	 * machine; clone @c->index must also stop sharing the snapshot's
	 * guest-visible identity (MAC, vsock CID, ...). Files the device put
	 * in place for the restore become permanent now. NULL: nothing to do.
	 * 0 or -errno (the restore fails).
	 */
	int (*clone)(struct device *dev, const struct dev_clone *c);
	/*
	 * Copy the host files that belong to the device's state (a disk's
	 * overlay) into the snapshot directory @dir being written, under
	 * names of its own. The VM is paused and its requests drained. NULL:
	 * none. 0 or -errno with a one-line reason in @err.
	 */
	int (*save_files)(struct device *dev, const char *dir, char *err, size_t errlen);
	/* Release everything; @dev itself included. */
	void (*destroy)(struct device *dev);
};

/*
 * What a device counts for the metrics endpoint. The thread doing the I/O
 * adds with relaxed atomics; readers may see a slightly stale value.
 */
struct dev_stats {
	_Atomic uint64_t requests;  /* guest requests served (virtio requests, ...) */
	_Atomic uint64_t bytes_in;  /* bytes the host gave the guest (console input, disk reads) */
	_Atomic uint64_t bytes_out; /* bytes the guest sent to the host (console output, writes) */
	_Atomic uint64_t first_out_ns; /* CLOCK_MONOTONIC of the first byte out, 0 before */
	_Atomic uint64_t
	    dropped_out; /* bytes out the host side could not take (a stalled console) */
	/* Rate limiters (virtio/throttle.h), by direction: DEV_DIR_IN, DEV_DIR_OUT. */
	_Atomic uint64_t throttled[2];	  /* times a request had to wait for its limiter */
	_Atomic uint64_t throttled_ns[2]; /* time spent waiting */
};

/* Directions of dev_stats.throttled: host to guest (reads, rx), guest to host. */
enum { DEV_DIR_IN, DEV_DIR_OUT };

/* dev_stats_out - count @len bytes the guest sent out (and when the first one went). */
static inline void dev_stats_out(struct dev_stats *st, uint64_t len)
{
	uint64_t zero = 0;

	atomic_fetch_add_explicit(&st->bytes_out, len, memory_order_relaxed);
	if (atomic_load_explicit(&st->first_out_ns, memory_order_relaxed) == 0)
		atomic_compare_exchange_strong(&st->first_out_ns, &zero, now_ns());
}

/* dev_stats_dropped - count @len bytes out that were dropped rather than wait. */
static inline void dev_stats_dropped(struct dev_stats *st, uint64_t len)
{
	atomic_fetch_add_explicit(&st->dropped_out, len, memory_order_relaxed);
}

/* dev_stats_in - count @len bytes the host gave the guest. */
static inline void dev_stats_in(struct dev_stats *st, uint64_t len)
{
	atomic_fetch_add_explicit(&st->bytes_in, len, memory_order_relaxed);
}

/* The longest device id (the API's resource ids, e.g. an iface_id, are device ids). */
#define DEVICE_ID_MAX 64

struct device {
	const struct device_ops *ops;
	struct dev_host *host;
	const char *id;	     /* instance name, e.g. "com1" (static or owned by the device) */
	struct device *next; /* the machine's device list */
	struct dev_stats stats;
};

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
