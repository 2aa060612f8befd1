/*
 * ACPI tables (see acpi.h), laid out as ACPI 6.x describes them.
 *
 * Fields are written byte by byte in little-endian order through put_le*()
 * at the offsets the specification gives, rather than by copying packed
 * structs: the output then does not depend on the host's byte order or on
 * compiler packing, and each offset can be checked against the spec's
 * tables directly.
 *
 * Layout in the buffer, each table 16-byte aligned:
 *   RSDP | DSDT | FADT | MADT | XSDT
 * The DSDT comes before the FADT because the FADT holds its address, and
 * the XSDT comes last so adding a table only means adding it to the list.
 */
#include "arch/x86/acpi.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/aml.h"

#define ACPI_ALIGN	   16
#define ACPI_HDR_LEN	   36
#define RSDP_LEN	   36
#define FADT_LEN	   276
#define MADT_HDR_LEN	   44
#define MADT_LAPIC_LEN	   8
#define MADT_IOAPIC_LEN	   12
#define MADT_ISO_LEN	   10
#define MADT_LAPIC_NMI_LEN 6

#define ACPI_OEM_ID	  "BANYAN"
#define ACPI_OEM_TABLE_ID "BANYANVM"
#define ACPI_CREATOR_ID	  "BNYN"
#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_REV  1

/* FADT Flags (ACPI 6.x, table 5.10). */
#define FADT_F_PWR_BUTTON      (1u << 4) /* set: no fixed power button */
#define FADT_F_SLP_BUTTON      (1u << 5) /* set: no fixed sleep button */
#define FADT_F_TMR_VAL_EXT     (1u << 8) /* the PM timer counts 32 bits */
#define FADT_F_RESET_REG_SUP   (1u << 10)
#define FADT_F_HW_REDUCED_ACPI (1u << 20)
/* Hardware-reduced, with a reset register and no fixed power or sleep button. */
#define FADT_FLAGS                                                                                 \
	(FADT_F_HW_REDUCED_ACPI | FADT_F_RESET_REG_SUP | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON)
/* FADT IAPC_BOOT_ARCH (table 5.11). */
#define FADT_BOOT_8042		  (1u << 1) /* Linux probes the i8042 only with this (or a PNP0303) */
#define FADT_BOOT_VGA_NOT_PRESENT (1u << 2)
#define FADT_BOOT_MSI_NOT_SUPP	  (1u << 3)

#define GAS_SYSTEM_IO	1
#define GAS_ACCESS_BYTE 1

/* MADT interrupt flags (table 5.50): polarity in bits 0-1, trigger in bits 2-3. */
#define MPS_INTI_CONFORMING 0x0
#define MPS_INTI_HIGH_LEVEL 0xd

/* Where the tables go: @buf is seen by the guest at @gpa. */
struct acpi_out {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint64_t gpa;
};

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/* The byte that makes the @n bytes at @p (with it in place of a zero) sum to zero. */
static uint8_t acpi_checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)-sum;
}

/* Reserve @size zeroed bytes, 16-byte aligned; returns their offset or -ENOSPC. */
static long out_alloc(struct acpi_out *o, size_t size)
{
	size_t off = (o->len + ACPI_ALIGN - 1) & ~(size_t)(ACPI_ALIGN - 1);

	if (off > o->cap || size > o->cap - off)
		return -ENOSPC;
	memset(o->buf + o->len, 0, off + size - o->len);
	o->len = off + size;
	return (long)off;
}

static void table_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put_le32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
	put_le32(t + 24, ACPI_OEM_REVISION);
	memcpy(t + 28, ACPI_CREATOR_ID, 4);
	put_le32(t + 32, ACPI_CREATOR_REV);
}

/* Checksum byte at offset 9 of every table, over its whole length. */
static void table_finish(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = acpi_checksum(t, len);
}

/* Generic Address Structure for an 8-bit register in I/O space. */
static void gas_io8(uint8_t *p, uint16_t port)
{
	p[0] = GAS_SYSTEM_IO;
	p[1] = 8; /* register bit width */
	p[2] = 0; /* bit offset */
	p[3] = GAS_ACCESS_BYTE;
	put_le64(p + 4, port);
}

/* An ISA device's interrupt: IRQNoFlags for the legacy lines, else a GSI. */
static void dsdt_irq(struct aml *a, uint32_t gsi)
{
	if (gsi <= 15)
		aml_res_irq_noflags(a, gsi);
	else
		aml_res_interrupt(a, AML_EDGE, AML_ACTIVE_HIGH, gsi);
}

static void dsdt_com1(struct aml *a, const struct acpi_machine *m)
{
	struct aml_pkg dev, crs;

	aml_device_begin(a, "COM1", &dev);
	aml_name_eisaid(a, "_HID", "PNP0501");
	aml_name_integer(a, "_UID", 1);
	aml_name(a, "_CRS");
	aml_restemplate_begin(a, &crs);
	aml_res_io(a, m->com1_port, m->com1_port, 1, 8);
	dsdt_irq(a, m->com1_gsi);
	aml_end(a, &crs);
	aml_end(a, &dev);
}

static void dsdt_rtc(struct aml *a, const struct acpi_machine *m)
{
	struct aml_pkg dev, crs;

	aml_device_begin(a, "RTC", &dev);
	aml_name_eisaid(a, "_HID", "PNP0B00");
	aml_name(a, "_CRS");
	aml_restemplate_begin(a, &crs);
	aml_res_io(a, m->rtc_port, m->rtc_port, 1, 2);
	dsdt_irq(a, m->rtc_gsi);
	aml_end(a, &crs);
	aml_end(a, &dev);
}

/*
 * The i8042 keyboard controller. Without a PNP0303 device Linux probes the
 * ports directly but cannot map IRQ 1 on a hardware-reduced machine (no
 * legacy PIC), so the keyboard port fails to register.
 */
static void dsdt_kbd(struct aml *a, const struct acpi_machine *m)
{
	struct aml_pkg dev, crs;

	aml_device_begin(a, "KBD", &dev);
	aml_name_eisaid(a, "_HID", "PNP0303");
	aml_name(a, "_CRS");
	aml_restemplate_begin(a, &crs);
	aml_res_io(a, m->kbd_port, m->kbd_port, 1, 1);
	aml_res_io(a, (uint16_t)(m->kbd_port + 4), (uint16_t)(m->kbd_port + 4), 1, 1);
	dsdt_irq(a, m->kbd_gsi);
	aml_end(a, &crs);
	aml_end(a, &dev);
}

/* Linux's virtio_mmio driver binds to _HID "LNRO0005" and reads _CRS. */
static void dsdt_virtio_mmio(struct aml *a, const struct acpi_mmio_dev *d, unsigned int idx)
{
	/* idx < ACPI_MAX_MMIO_DEVS, so two decimal digits do: VR00, VR01, ... */
	char name[5] = {'V', 'R', (char)('0' + idx / 10 % 10), (char)('0' + idx % 10), '\0'};
	struct aml_pkg dev, crs;

	aml_device_begin(a, name, &dev);
	aml_name_string(a, "_HID", "LNRO0005");
	aml_name_integer(a, "_UID", idx);
	aml_name_integer(a, "_CCA", 1); /* DMA is cache-coherent */
	aml_name(a, "_CRS");
	aml_restemplate_begin(a, &crs);
	aml_res_mem32_fixed(a, true, (uint32_t)d->base, d->size);
	aml_res_interrupt(a, AML_EDGE, AML_ACTIVE_HIGH, d->gsi);
	aml_end(a, &crs);
	aml_end(a, &dev);
}

/*
 * \_S5 gives the SLP_TYP value the guest writes to SLEEP_CONTROL_REG to
 * power off; Banyan treats any write with SLP_EN as power-off anyway.
 */
static void dsdt_s5(struct aml *a)
{
	struct aml_pkg pkg;

	aml_name(a, "_S5");
	aml_package_begin(a, 4, &pkg);
	aml_integer(a, 5);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a, &pkg);
}

/*
 * The VM generation ID (Microsoft's "Virtual Machine Generation ID" spec,
 * Linux's drivers/virt/vmgenid.c): ADDR returns the guest physical address
 * of the 16-byte ID as two 32-bit halves. When the ID changes (a restore,
 * a clone) the VMM pulses the GED's interrupt and _EVT sends Notify(0x80).
 */
static void dsdt_vmgenid(struct aml *a, const struct acpi_machine *m)
{
	struct aml_pkg dev, method, pkg, crs;

	aml_device_begin(a, "VGEN", &dev);
	aml_name_string(a, "_HID", "VMGENCTR");
	aml_name_string(a, "_CID", "VM_Gen_Counter");
	aml_name_string(a, "_DDN", "VM_Gen_Counter");
	aml_method_begin(a, "ADDR", 0, false, &method);
	aml_return(a);
	aml_package_begin(a, 2, &pkg);
	aml_integer(a, m->vmgenid_addr & 0xffffffff);
	aml_integer(a, m->vmgenid_addr >> 32);
	aml_end(a, &pkg);
	aml_end(a, &method);
	aml_end(a, &dev);

	aml_device_begin(a, "GED0", &dev);
	aml_name_string(a, "_HID", "ACPI0013");
	aml_name_integer(a, "_UID", 0);
	aml_name(a, "_CRS");
	aml_restemplate_begin(a, &crs);
	aml_res_interrupt(a, AML_EDGE, AML_ACTIVE_HIGH, m->ged_gsi);
	aml_end(a, &crs);
	aml_method_begin(a, "_EVT", 1, true, &method);
	aml_notify(a, "\\_SB.VGEN", 0x80);
	aml_end(a, &method);
	aml_end(a, &dev);
}

/* QEMU's fw_cfg: Linux's qemu_fw_cfg driver binds to _HID "QEMU0002" and reads _CRS. */
static void dsdt_fw_cfg(struct aml *a, const struct acpi_machine *m)
{
	struct aml_pkg dev, crs;

	aml_device_begin(a, "FWCF", &dev);
	aml_name_string(a, "_HID", "QEMU0002");
	aml_name_integer(a, "_STA", 0xb); /* present, enabled, not shown in a UI */
	aml_name(a, "_CRS");
	aml_restemplate_begin(a, &crs);
	aml_res_io(a, m->fw_cfg_port, m->fw_cfg_port, 1, 12);
	aml_end(a, &crs);
	aml_end(a, &dev);
}

static int dsdt_body(struct aml *a, const struct acpi_machine *m)
{
	struct aml_pkg sb;

	aml_scope_begin(a, "\\_SB", &sb);
	if (m->com1_port)
		dsdt_com1(a, m);
	if (m->rtc_port)
		dsdt_rtc(a, m);
	if (m->kbd_port)
		dsdt_kbd(a, m);
	for (unsigned int i = 0; i < m->nmmio_devs; i++)
		dsdt_virtio_mmio(a, &m->mmio_devs[i], i);
	if (m->vmgenid_addr)
		dsdt_vmgenid(a, m);
	if (m->fw_cfg_port)
		dsdt_fw_cfg(a, m);
	aml_end(a, &sb);
	dsdt_s5(a);
	return a->err;
}

/* The DSDT: the AML is written in place, right after the header. */
static long build_dsdt(struct acpi_out *o, const struct acpi_machine *m)
{
	long off = out_alloc(o, ACPI_HDR_LEN);
	struct aml a;

	if (off < 0)
		return off;
	aml_init(&a, o->buf + o->len, o->cap - o->len);
	int err = dsdt_body(&a, m);
	if (err)
		return err == -E2BIG ? -ENOSPC : err;
	o->len += a.len;

	uint32_t len = (uint32_t)(ACPI_HDR_LEN + a.len);
	uint8_t *t = o->buf + off;
	table_header(t, "DSDT", len, 2); /* revision 2: 64-bit integers */
	table_finish(t, len);
	return off;
}

/* The PM timer, in the 1.0 fields and the extended one, as Linux's acpi_pm looks for it. */
static void fadt_pm_timer(uint8_t *t, uint16_t port)
{
	put_le32(t + 76, port); /* PM_TMR_BLK */
	t[91] = 4;		/* PM_TMR_LEN */
	t[208] = GAS_SYSTEM_IO; /* X_PM_TMR_BLK */
	t[209] = 32;
	t[210] = 0;
	t[211] = 3; /* dword access */
	put_le64(t + 212, port);
	put_le32(t + 112, FADT_FLAGS | FADT_F_TMR_VAL_EXT);
}

static long build_fadt(struct acpi_out *o, const struct acpi_machine *m, long dsdt)
{
	long off = out_alloc(o, FADT_LEN);
	uint64_t dsdt_gpa = o->gpa + (uint64_t)dsdt;

	if (off < 0)
		return off;
	uint8_t *t = o->buf + off;
	table_header(t, "FACP", FADT_LEN, 6);
	if (dsdt_gpa <= UINT32_MAX)
		put_le32(t + 40, (uint32_t)dsdt_gpa); /* DSDT */
	put_le16(t + 109, FADT_BOOT_8042 | FADT_BOOT_VGA_NOT_PRESENT | FADT_BOOT_MSI_NOT_SUPP);
	put_le32(t + 112, FADT_FLAGS);
	if (m->pm_timer_port)
		fadt_pm_timer(t, m->pm_timer_port);
	gas_io8(t + 116, m->reset_port); /* RESET_REG */
	t[128] = m->reset_value;
	t[131] = 3;			     /* FADT minor version: ACPI 6.3 */
	put_le64(t + 140, dsdt_gpa);	     /* X_DSDT */
	gas_io8(t + 244, m->sleep_ctl_port); /* SLEEP_CONTROL_REG */
	gas_io8(t + 256, m->sleep_sts_port); /* SLEEP_STATUS_REG */
	memcpy(t + 268, "BANYAN\0\0", 8);    /* hypervisor vendor identity */
	table_finish(t, FADT_LEN);
	return off;
}

static uint8_t *madt_iso(uint8_t *e, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	e[0] = 2;
	e[1] = MADT_ISO_LEN;
	e[2] = 0; /* bus: ISA */
	e[3] = irq;
	put_le32(e + 4, gsi);
	put_le16(e + 8, flags);
	return e + MADT_ISO_LEN;
}

static uint8_t *madt_lapics(uint8_t *e, uint32_t ncpus)
{
	for (uint32_t i = 0; i < ncpus; i++, e += MADT_LAPIC_LEN) {
		e[0] = 0;
		e[1] = MADT_LAPIC_LEN;
		e[2] = (uint8_t)i;  /* ACPI processor UID */
		e[3] = (uint8_t)i;  /* APIC ID */
		put_le32(e + 4, 1); /* enabled */
	}
	return e;
}

static long build_madt(struct acpi_out *o, const struct acpi_machine *m)
{
	uint32_t len = MADT_HDR_LEN + MADT_LAPIC_LEN * m->ncpus + MADT_IOAPIC_LEN +
		       2 * MADT_ISO_LEN + MADT_LAPIC_NMI_LEN;
	long off = out_alloc(o, len);

	if (off < 0)
		return off;
	uint8_t *t = o->buf + off;
	table_header(t, "APIC", len, 5);
	put_le32(t + 36, (uint32_t)m->lapic_addr);
	put_le32(t + 40, 1); /* PCAT_COMPAT: the in-kernel 8259 pair exists */

	uint8_t *e = madt_lapics(t + MADT_HDR_LEN, m->ncpus);
	e[0] = 1;
	e[1] = MADT_IOAPIC_LEN;
	e[2] = m->ioapic_id;
	put_le32(e + 4, (uint32_t)m->ioapic_addr);
	put_le32(e + 8, 0); /* GSI base */
	e += MADT_IOAPIC_LEN;

	/* KVM routes ISA IRQ n to GSI n; these restate it for the PIT and the SCI line. */
	e = madt_iso(e, 0, 0, MPS_INTI_CONFORMING);
	e = madt_iso(e, 9, 9, MPS_INTI_HIGH_LEVEL);

	e[0] = 4; /* Local APIC NMI */
	e[1] = MADT_LAPIC_NMI_LEN;
	e[2] = 0xff; /* all processors */
	put_le16(e + 3, 0);
	e[5] = 1; /* LINT1 */
	table_finish(t, len);
	return off;
}

static long build_xsdt(struct acpi_out *o, const long *tables, unsigned int n)
{
	uint32_t len = ACPI_HDR_LEN + 8 * n;
	long off = out_alloc(o, len);

	if (off < 0)
		return off;
	uint8_t *t = o->buf + off;
	table_header(t, "XSDT", len, 1);
	for (unsigned int i = 0; i < n; i++)
		put_le64(t + ACPI_HDR_LEN + 8 * i, o->gpa + (uint64_t)tables[i]);
	table_finish(t, len);
	return off;
}

/* The RSDP: revision 2, no RSDT (every table is reached through the XSDT). */
static void write_rsdp(struct acpi_out *o, long xsdt)
{
	uint8_t *r = o->buf;

	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, ACPI_OEM_ID, 6);
	r[15] = 2;
	put_le32(r + 20, RSDP_LEN);
	put_le64(r + 24, o->gpa + (uint64_t)xsdt);
	r[8] = acpi_checksum(r, 20);	    /* over the ACPI 1.0 part */
	r[32] = acpi_checksum(r, RSDP_LEN); /* over all of it */
}

static int mmio_dev_check(const struct acpi_mmio_dev *d)
{
	if (d->size == 0 || d->base > UINT32_MAX || d->size - 1 > UINT32_MAX - d->base)
		return -EINVAL; /* Memory32Fixed describes 32-bit windows only */
	return 0;
}

static int machine_check(const struct acpi_machine *m, uint64_t buf_gpa, size_t cap)
{
	if (m->ncpus == 0 || m->ncpus > 255 || m->nmmio_devs > ACPI_MAX_MMIO_DEVS)
		return -EINVAL;
	if (m->nmmio_devs && !m->mmio_devs)
		return -EINVAL;
	if (m->lapic_addr > UINT32_MAX || m->ioapic_addr > UINT32_MAX)
		return -EINVAL; /* the MADT fields are 32 bits */
	if (buf_gpa % ACPI_ALIGN || cap > UINT64_MAX - buf_gpa)
		return -EINVAL;
	for (unsigned int i = 0; i < m->nmmio_devs; i++) {
		if (mmio_dev_check(&m->mmio_devs[i]))
			return -EINVAL;
	}
	return 0;
}

long acpi_build(uint8_t *buf, size_t cap, uint64_t buf_gpa, const struct acpi_machine *m,
		uint64_t *rsdp_gpa)
{
	struct acpi_out o = {.buf = buf, .cap = buf ? cap : 0, .gpa = buf_gpa};
	long rsdp, dsdt, fadt, madt, xsdt;

	if (!m || machine_check(m, buf_gpa, cap))
		return -EINVAL;
	if ((rsdp = out_alloc(&o, RSDP_LEN)) < 0)
		return rsdp;
	if ((dsdt = build_dsdt(&o, m)) < 0)
		return dsdt;
	if ((fadt = build_fadt(&o, m, dsdt)) < 0)
		return fadt;
	if ((madt = build_madt(&o, m)) < 0)
		return madt;

	const long tables[] = {fadt, madt};
	if ((xsdt = build_xsdt(&o, tables, sizeof(tables) / sizeof(tables[0]))) < 0)
		return xsdt;
	write_rsdp(&o, xsdt);
	if (rsdp_gpa)
		*rsdp_gpa = buf_gpa + (uint64_t)rsdp;
	return (long)o.len;
}
