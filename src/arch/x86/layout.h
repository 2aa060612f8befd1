/*
 * The x86 machine's fixed addresses: guest physical memory map, platform
 * ports and interrupt lines. One place, so loaders, ACPI and devices agree.
 */
#ifndef BANYAN_ARCH_X86_LAYOUT_H
#define BANYAN_ARCH_X86_LAYOUT_H

/* Low memory used while booting (all below the EBDA). */
#define LAYOUT_GDT	    0x500ULL  /* boot GDT: null, null, code64/32, data, tss */
#define LAYOUT_PVH_INFO	    0x6000ULL /* hvm_start_info for the PVH entry */
#define LAYOUT_PVH_MEMMAP   0x6100ULL /* its memory map entries */
#define LAYOUT_ZERO_PAGE    0x7000ULL /* struct boot_params */
#define LAYOUT_MB_INFO	    0x7000ULL /* or the multiboot information structure */
#define LAYOUT_BOOT_STACK   0x8ff0ULL
#define LAYOUT_PML4	    0x9000ULL /* identity map of the first 4 GiB, 2 MiB pages */
#define LAYOUT_PDPT	    0xa000ULL
#define LAYOUT_PD	    0xb000ULL /* four pages: 0xb000..0xefff */
#define LAYOUT_CMDLINE	    0x20000ULL
#define LAYOUT_CMDLINE_MAX  0x10000ULL	/* 64 KiB including the NUL */
#define LAYOUT_EBDA	    0x9fc00ULL	/* start of the reserved area below 1 MiB */
#define LAYOUT_ACPI	    0xe0000ULL	/* ACPI tables; RSDP found here by the legacy scan */
#define LAYOUT_ACPI_SIZE    0x10000ULL	/* up to 0xf0000; the reset vector stub lives above */
#define LAYOUT_VMGENID	    0xf0000ULL	/* the 16-byte VM generation ID (reserved in e820) */
#define LAYOUT_RESET_VECTOR 0xffff0ULL	/* F000:FFF0, where a real-mode restart jumps */
#define LAYOUT_HIMEM	    0x100000ULL /* 1 MiB: where a bzImage's kernel is loaded */

/* The hole below 4 GiB for devices: RAM above it continues at 4 GiB. */
#define LAYOUT_LOWMEM_END      0xc0000000ULL
#define LAYOUT_HIGHMEM	       0x100000000ULL
#define LAYOUT_BOOT_TIMER      0xc0000000ULL /* the boot timer, where Firecracker has it */
#define LAYOUT_BOOT_TIMER_SIZE 0x1000ULL
#define LAYOUT_VIRTIO_MMIO     0xd0000000ULL /* virtio-mmio windows, 4 KiB each */
#define LAYOUT_VIRTIO_SIZE     0x1000ULL
#define LAYOUT_IOAPIC	       0xfec00000ULL
#define LAYOUT_LAPIC	       0xfee00000ULL

/* Platform I/O ports. */
#define PORT_I8042	    0x60 /* 0x60 data .. 0x64 command/status */
#define PORT_I8042_LEN	    5
#define PORT_RTC	    0x70 /* index, data */
#define PORT_RTC_LEN	    2
#define PORT_POST	    0x80 /* POST/io_delay port: writes are ignored */
#define PORT_COM1	    0x3f8
#define PORT_UART_LEN	    8
#define PORT_ACPI_PM	    0x600 /* Banyan's hardware-reduced ACPI registers */
#define PORT_ACPI_PM_LEN    12
#define PORT_ACPI_SLEEP_CTL 0x600 /* FADT SLEEP_CONTROL_REG */
#define PORT_ACPI_SLEEP_STS 0x601 /* FADT SLEEP_STATUS_REG */
#define PORT_ACPI_RESET	    0x604 /* FADT RESET_REG */
#define PORT_ACPI_PM_TIMER  0x608 /* FADT X_PM_TMR_BLK, 32 bits */
#define ACPI_RESET_VALUE    0x1

/* Interrupt lines (GSIs, identity-mapped to IOAPIC pins 0..23). */
#define GSI_COM1	 4
#define GSI_RTC		 8
#define GSI_KBD		 1  /* the i8042's keyboard interrupt */
#define GSI_GED		 10 /* ACPI Generic Event Device: VM generation ID changes */
#define GSI_VIRTIO_FIRST 16 /* virtio-mmio devices take 16..23 first, */
#define GSI_VIRTIO_LAST	 23
/*
 * ...then the ISA lines no device of this machine uses (0 PIT, 1 i8042,
 * 2 cascade, 4 COM1, 8 RTC, 9 SCI and 10 GED are taken): one line each,
 * edge-triggered and active high as the ISA lines are by default, so the
 * DSDT's description needs no override. 17 in all, as many virtio
 * devices as Firecracker gives an x86 guest.
 */
#define GSI_VIRTIO_EXTRA                                                                           \
	{                                                                                          \
		5, 6, 7, 11, 12, 13, 14, 15, 3                                                     \
	}
#define GSI_VIRTIO_COUNT 17
#define IOAPIC_ID	 0 /* a separate namespace from LAPIC IDs in xAPIC mode */

#endif
