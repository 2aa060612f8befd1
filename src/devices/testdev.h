/*
 * Devices for test kernels, compatible with QEMU's: isa-debug-exit (a port
 * whose write ends the VM with a status the guest chose) and pc-testdev
 * (scratch ports, interrupt lines a guest can drive, a page-flush port and
 * an MMIO window with no memory slot behind it). Both are opt-in
 * (`--device debug-exit`, `--device testdev`); docs/guests.md describes them.
 */
#ifndef BANYAN_DEVICES_TESTDEV_H
#define BANYAN_DEVICES_TESTDEV_H

#include <stdint.h>

#include "vmm/device.h"
#include "vmm/guest_mem.h"

#define DEBUG_EXIT_IOBASE 0xf4 /* QEMU's isa-debug-exit default */

/* pc-testdev's fixed resources */
#define TESTDEV_PORT	   0xe0 /* 4-byte scratch register, 0xe0..0xe3 */
#define TESTDEV_PORT_LEN   8	/* with the flush port */
#define TESTDEV_FLUSH_PORT 0xe4 /* write a guest physical address: flush that page */
#define TESTDEV_FLUSH_LEN  4
#define TESTDEV_IRQ_PORT   0x2000 /* 0x2000 + n sets interrupt line n's level */
#define TESTDEV_IRQ_LINES  24
#define TESTDEV_IOMEM	   0xff000000ULL /* behaves as RAM, but every access exits */
#define TESTDEV_IOMEM_LEN  0x10000ULL

/*
 * debug_exit_create - a write of value V (@iosize bytes: 1, 2 or 4) at the
 * port asks the machine to end with exit status (V << 1) | 1, as QEMU's
 * isa-debug-exit does (the shell sees its low 8 bits). Reads return 0.
 * The caller registers @iosize ports. NULL when out of memory.
 */
struct device *debug_exit_create(struct dev_host *host, uint32_t iosize);

/* The three devices that make up pc-testdev, in the order testdev_create returns them. */
enum testdev_part {
	TESTDEV_PART_PORTS, /* PIO TESTDEV_PORT, 8 ports: scratch register, then the flush port */
	TESTDEV_PART_IRQ,   /* PIO TESTDEV_IRQ_PORT, TESTDEV_IRQ_LINES ports */
	TESTDEV_PART_IOMEM, /* MMIO TESTDEV_IOMEM, TESTDEV_IOMEM_LEN bytes */
	TESTDEV_NPARTS,
};

/*
 * testdev_create - pc-testdev as three devices (@out[enum testdev_part]),
 * each with its own range and state, which the caller registers and adds
 * to the machine. The flush port drops the host mapping of one page of
 * @mem (NULL: none; the guest then sees the same data, faulted in again), as QEMU does
 * to exercise the MMU notifier path. The scratch register, the interrupt
 * levels and the MMIO window's contents are saved with the devices.
 * 0 or -ENOMEM (nothing is left allocated).
 */
int testdev_create(struct dev_host *host, const struct guest_mem *mem,
		   struct device *out[TESTDEV_NPARTS]) __attribute__((warn_unused_result));

#endif
