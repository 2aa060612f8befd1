/*
 * ACPI tables built by Banyan: RSDP, XSDT, FADT (hardware-reduced, with the
 * sleep control/status and reset registers Linux uses to power off and
 * reboot), MADT (one LAPIC per vCPU, the IOAPIC, interrupt source overrides)
 * and a DSDT (COM1, the RTC, \_S5, virtio-mmio devices) written with Banyan's
 * own AML writer (aml.h). Debian's kernels ignore MP tables, so this is how
 * the guest learns its CPUs and interrupt routing.
 */
#ifndef BANYAN_ARCH_X86_ACPI_H
#define BANYAN_ARCH_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_MMIO_DEVS 32

/* A virtio-mmio device as the DSDT describes it (_HID "LNRO0005"). */
struct acpi_mmio_dev {
	uint64_t base;
	uint32_t size;
	uint32_t gsi; /* edge-triggered, active high */
};

struct acpi_machine {
	uint32_t ncpus; /* LAPIC IDs 0..ncpus-1, all enabled */
	uint64_t lapic_addr;
	uint64_t ioapic_addr;
	uint8_t ioapic_id;
	uint16_t sleep_ctl_port; /* 8-bit FADT SLEEP_CONTROL_REG */
	uint16_t sleep_sts_port; /* 8-bit FADT SLEEP_STATUS_REG */
	uint16_t reset_port;	 /* 8-bit FADT RESET_REG */
	uint8_t reset_value;
	uint16_t pm_timer_port; /* 32-bit FADT PM_TMR_BLK (3.579545 MHz); 0: none */
	uint16_t com1_port;	/* 0: no COM1 */
	uint32_t com1_gsi;
	uint16_t rtc_port; /* 0: no RTC */
	uint32_t rtc_gsi;
	uint16_t kbd_port; /* i8042 data port (command at +4); 0: none */
	uint32_t kbd_gsi;
	const struct acpi_mmio_dev *mmio_devs;
	unsigned int nmmio_devs;
	uint16_t fw_cfg_port;  /* QEMU0002, 12 ports; 0: none */
	uint64_t vmgenid_addr; /* 0: no VM generation ID device */
	uint32_t ged_gsi;      /* the Generic Event Device's interrupt (VMGENID's Notify) */
};

/*
 * acpi_build - write all tables into @buf, which the guest will see at
 * guest physical address @buf_gpa (@cap bytes available). The RSDP comes
 * first, 16-byte aligned, so the legacy scan of 0xe0000..0xfffff finds it.
 * Returns the number of bytes used, -ENOSPC when @cap is too small, or
 * -EINVAL for an impossible machine (0 or more than 255 CPUs, too many
 * devices). Sets *@rsdp_gpa. Pure: no I/O, no allocation beyond @buf.
 */
long acpi_build(uint8_t *buf, size_t cap, uint64_t buf_gpa, const struct acpi_machine *m,
		uint64_t *rsdp_gpa) __attribute__((warn_unused_result));

#endif
