/*
 * The boot timer, as Firecracker's (`--boot-timer`): a guest that writes
 * the byte BOOT_TIMER_MAGIC at offset 0 of its MMIO window tells the VMM
 * it got there, and the VMM logs the time since the process started.
 * Banyan's test guests write it as their first instruction, the Linux
 * test guest's init as its first command, so both exec to the guest's
 * first instruction and exec to init can be measured (bench/startup,
 * docs/performance.md). Opt-in: `--device boot-timer`.
 */
#ifndef BANYAN_DEVICES_BOOT_TIMER_H
#define BANYAN_DEVICES_BOOT_TIMER_H

#include <stdint.h>

#include "vmm/device.h"

#define BOOT_TIMER_MAGIC 123 /* Firecracker's MAGIC_VALUE_SIGNAL_GUEST_BOOT_COMPLETE */

/*
 * boot_timer_create - the device, counting from @start_ns (CLOCK_MONOTONIC,
 * normally clock_start_ns()). Every one-byte write of BOOT_TIMER_MAGIC at
 * offset 0 logs one line (rate-limited: the guest drives it):
 *   Guest-boot-time = U us (M ms) since start, C CPU us (monotonic T ns)
 * Other writes and every read (zeros) do nothing. The caller registers its
 * MMIO window. NULL when out of memory.
 */
struct device *boot_timer_create(struct dev_host *host, uint64_t start_ns);

/*
 * boot_timer_elapsed_ns - nanoseconds from the start to the guest's latest
 * signal, in @ns. 0, or -ENOENT when the guest has not signalled yet.
 * Thread-safe.
 */
int boot_timer_elapsed_ns(struct device *dev, uint64_t *ns) __attribute__((warn_unused_result));

#endif
