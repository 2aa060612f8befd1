/*
 * The legacy platform devices of the x86 machine: the 8250 UART, the i8042
 * keyboard controller (its reset line, and a keyboard for Ctrl-Alt-Del), the CMOS RTC, Banyan's
 * hardware-reduced ACPI power registers and the POST port sink.
 *
 * Each returns a struct device whose ranges the caller registers on the PIO
 * bus (see arch/x86/layout.h for the ports), or NULL on allocation failure.
 * None of them issues KVM ioctls: interrupts and power events go through the
 * struct dev_host they are given.
 */
#ifndef BANYAN_DEVICES_LEGACY_H
#define BANYAN_DEVICES_LEGACY_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/device.h"

/*
 * serial_create - a 16550A-compatible UART raising @gsi. Bytes the guest
 * transmits go to @out_fd through the console's bounded output queue
 * (console_out_get): a reader that stops reading never blocks the guest;
 * past CONSOLE_OUT_BYTES waiting, output is dropped and counted (dev->stats.dropped_out).
 * Interrupts follow the real chip: THRE when the transmitter empties and IER.ETBEI is set, RDA when
 * received data is waiting, as a level on @gsi recomputed after every register access.
 */
struct device *serial_create(struct dev_host *host, const char *id, uint32_t gsi, int out_fd);

/*
 * serial_push_input - queue bytes typed on the console for the guest.
 * Returns how many were accepted (fewer than @len when the receive buffer is
 * full; the caller retries the rest later). Thread-safe.
 */
size_t serial_push_input(struct device *dev, const uint8_t *buf, size_t len);

/*
 * serial_flush - wait up to @timeout_ms until the output queued so far was
 * written. 0, or -ETIMEDOUT.
 */
int serial_flush(struct device *dev, int timeout_ms);

/*
 * i8042_create - keyboard controller and keyboard; command 0xfe on port
 * 0x64 reboots; keyboard bytes raise IRQ 1.
 */
struct device *i8042_create(struct dev_host *host);

/*
 * i8042_ctrl_alt_del - the keyboard types Ctrl-Alt-Del (press and release,
 * in the scan code set the guest reads) and raises IRQ 1. Thread-safe.
 * Returns 0, or -EBUSY when the guest has not read earlier bytes yet.
 */
int i8042_ctrl_alt_del(struct device *dev);

/*
 * rtc_create - MC146818 CMOS clock reporting the host's UTC time (BCD,
 * 24-hour, as a PC BIOS leaves it); a guest that sets the clock keeps its
 * own offset. Also 114 bytes of CMOS RAM.
 */
struct device *rtc_create(struct dev_host *host);

/*
 * acpi_pm_create - the FADT's sleep control (offset 0), sleep status
 * (offset 1) and reset (offset 4) registers. Writing SLP_EN with any
 * SLP_TYP requests power-off (only \_S5 is offered); writing the reset value
 * to the reset register requests a reboot. Offset 8: the 32-bit ACPI PM
 * timer, counting at 3.579545 MHz (read-only).
 */
struct device *acpi_pm_create(struct dev_host *host, uint8_t reset_value);

/* post_sink_create - accepts and ignores writes to the POST port (io_delay). */
struct device *post_sink_create(struct dev_host *host);

#endif
