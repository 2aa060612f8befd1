/*
 * Unit tests for the ACPI tables: structure, checksums and pointers checked
 * field by field, then the DSDT, FADT, MADT, XSDT and RSDP handed to Intel's
 * disassembler (iasl, package acpica-tools), and the disassembled DSDT
 * compiled back, so that a real ACPI implementation accepts them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"

#define NDEVS 3

static uint8_t buf[LAYOUT_ACPI_SIZE];
static struct acpi_mmio_dev devs[NDEVS];

static struct acpi_machine machine(uint32_t ncpus)
{
	for (unsigned int i = 0; i < NDEVS; i++) {
		devs[i].base = LAYOUT_VIRTIO_MMIO + i * LAYOUT_VIRTIO_SIZE;
		devs[i].size = LAYOUT_VIRTIO_SIZE;
		devs[i].gsi = GSI_VIRTIO_FIRST + i;
	}
	return (struct acpi_machine){
	    .ncpus = ncpus,
	    .lapic_addr = LAYOUT_LAPIC,
	    .ioapic_addr = LAYOUT_IOAPIC,
	    .ioapic_id = IOAPIC_ID,
	    .sleep_ctl_port = PORT_ACPI_SLEEP_CTL,
	    .sleep_sts_port = PORT_ACPI_SLEEP_STS,
	    .reset_port = PORT_ACPI_RESET,
	    .reset_value = ACPI_RESET_VALUE,
	    .pm_timer_port = PORT_ACPI_PM_TIMER,
	    .com1_port = PORT_COM1,
	    .com1_gsi = GSI_COM1,
	    .rtc_port = PORT_RTC,
	    .rtc_gsi = GSI_RTC,
	    .mmio_devs = devs,
	    .nmmio_devs = NDEVS,
	};
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* The built tables, found by following the pointers from the RSDP. */
struct tables {
	long len;
	const uint8_t *rsdp, *xsdt, *fadt, *madt, *dsdt;
};

/* Translate a guest address back into buf; the whole table must lie inside. */
static const uint8_t *table_at(const struct tables *t, uint64_t gpa, const char *sig)
{
	assert_true(gpa >= LAYOUT_ACPI);
	assert_true(gpa + 36 <= LAYOUT_ACPI + (uint64_t)t->len);
	const uint8_t *p = buf + (gpa - LAYOUT_ACPI);
	uint32_t len = le32(p + 4);

	assert_memory_equal(p, sig, 4);
	assert_true(len >= 36);
	assert_true(gpa + len <= LAYOUT_ACPI + (uint64_t)t->len);
	assert_int_equal(sum(p, len), 0);
	assert_memory_equal(p + 10, "BANYAN", 6);
	assert_memory_equal(p + 16, "BANYANVM", 8);
	assert_memory_equal(p + 28, "BNYN", 4);
	return p;
}

static struct tables build(const struct acpi_machine *m)
{
	struct tables t = {0};
	uint64_t rsdp_gpa = 0;

	memset(buf, 0xa5, sizeof(buf)); /* stale bytes must not leak into tables */
	t.len = acpi_build(buf, sizeof(buf), LAYOUT_ACPI, m, &rsdp_gpa);
	assert_true(t.len > 0);
	assert_int_equal(rsdp_gpa, LAYOUT_ACPI);

	t.rsdp = buf;
	assert_memory_equal(t.rsdp, "RSD PTR ", 8);
	assert_int_equal(sum(t.rsdp, 20), 0);
	assert_int_equal(sum(t.rsdp, 36), 0);
	assert_int_equal(t.rsdp[15], 2);
	assert_int_equal(le32(t.rsdp + 20), 36);
	assert_memory_equal(t.rsdp + 9, "BANYAN", 6);

	t.xsdt = table_at(&t, le64(t.rsdp + 24), "XSDT");
	assert_int_equal(le32(t.xsdt + 4), 36 + 2 * 8);
	t.fadt = table_at(&t, le64(t.xsdt + 36), "FACP");
	t.madt = table_at(&t, le64(t.xsdt + 44), "APIC");
	t.dsdt = table_at(&t, le64(t.fadt + 140), "DSDT");
	assert_int_equal(le32(t.fadt + 40), le64(t.fadt + 140)); /* DSDT == X_DSDT */
	return t;
}

static void check_gas_io8(const uint8_t *g, uint16_t port)
{
	assert_int_equal(g[0], 1); /* System I/O */
	assert_int_equal(g[1], 8);
	assert_int_equal(g[2], 0);
	assert_int_equal(g[3], 1); /* byte access */
	assert_int_equal(le64(g + 4), port);
}

static void check_fadt(const uint8_t *f)
{
	uint32_t flags = le32(f + 112);
	uint16_t boot = le16(f + 109);

	assert_int_equal(le32(f + 4), 276);
	assert_int_equal(f[8], 6);
	assert_true(flags & (1u << 20)); /* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10)); /* RESET_REG_SUP */
	assert_true(flags & (1u << 4));	 /* PWR_BUTTON: none fixed */
	assert_true(flags & (1u << 5));	 /* SLP_BUTTON: none fixed */
	assert_true(boot & (1u << 1));	 /* an 8042 keyboard controller */
	assert_true(boot & (1u << 2));	 /* VGA not present */
	assert_true(boot & (1u << 3));	 /* MSI not supported */
	assert_false(boot & (1u << 5));	 /* the CMOS RTC is present */
	check_gas_io8(f + 116, PORT_ACPI_RESET);
	assert_int_equal(f[128], ACPI_RESET_VALUE);
	check_gas_io8(f + 244, PORT_ACPI_SLEEP_CTL);
	check_gas_io8(f + 256, PORT_ACPI_SLEEP_STS);
	/* The PM timer: 32 bits, in the 1.0 field and the extended one. */
	assert_true(flags & (1u << 8)); /* TMR_VAL_EXT */
	assert_int_equal(le32(f + 76), PORT_ACPI_PM_TIMER);
	assert_int_equal(f[91], 4);
	assert_int_equal(f[208], 1);  /* system I/O */
	assert_int_equal(f[209], 32); /* bits */
	assert_int_equal(le64(f + 212), PORT_ACPI_PM_TIMER);
}

struct madt_counts {
	unsigned int lapic, ioapic, iso, nmi;
};

static void check_madt_entry(const uint8_t *e, struct madt_counts *c)
{
	switch (e[0]) {
	case 0: /* Processor Local APIC: UID == APIC ID == index, enabled */
		assert_int_equal(e[1], 8);
		assert_int_equal(e[2], c->lapic);
		assert_int_equal(e[3], c->lapic);
		assert_int_equal(le32(e + 4), 1);
		c->lapic++;
		break;
	case 1:
		assert_int_equal(e[1], 12);
		assert_int_equal(e[2], IOAPIC_ID);
		assert_int_equal(le32(e + 4), LAYOUT_IOAPIC);
		assert_int_equal(le32(e + 8), 0);
		c->ioapic++;
		break;
	case 2: /* ISA IRQ n -> GSI n */
		assert_int_equal(e[1], 10);
		assert_int_equal(e[2], 0);
		assert_int_equal(le32(e + 4), e[3]);
		assert_int_equal(le16(e + 8), e[3] == 9 ? 0xd : 0);
		c->iso++;
		break;
	case 4:
		assert_int_equal(e[1], 6);
		assert_int_equal(e[2], 0xff);
		assert_int_equal(e[5], 1);
		c->nmi++;
		break;
	default:
		fail_msg("unexpected MADT entry type %u", e[0]);
	}
}

static void check_madt(const uint8_t *t, uint32_t ncpus)
{
	uint32_t len = le32(t + 4);
	struct madt_counts c = {0};
	uint32_t off = 44;

	assert_int_equal(t[8], 5);
	assert_int_equal(le32(t + 36), LAYOUT_LAPIC);
	assert_int_equal(le32(t + 40), 1); /* PCAT_COMPAT */
	while (off < len) {
		assert_true(off + 2 <= len && t[off + 1] >= 2 && off + t[off + 1] <= len);
		check_madt_entry(t + off, &c);
		off += t[off + 1];
	}
	assert_int_equal(off, len);
	assert_int_equal(c.lapic, ncpus);
	assert_int_equal(c.ioapic, 1);
	assert_int_equal(c.iso, 2);
	assert_int_equal(c.nmi, 1);
}

static bool contains(const uint8_t *p, size_t n, const char *s)
{
	size_t k = strlen(s);

	for (size_t i = 0; i + k <= n; i++) {
		if (!memcmp(p + i, s, k))
			return true;
	}
	return false;
}

static void check_machine(uint32_t ncpus)
{
	struct acpi_machine m = machine(ncpus);
	struct tables t = build(&m);
	uint32_t dlen = le32(t.dsdt + 4);

	check_fadt(t.fadt);
	check_madt(t.madt, ncpus);
	assert_int_equal(t.dsdt[8], 2);
	assert_true(contains(t.dsdt, dlen, "LNRO0005"));
	assert_true(contains(t.dsdt, dlen, "VR02"));
	assert_false(contains(t.dsdt, dlen, "VR03"));
	assert_true(contains(t.dsdt, dlen, "COM1"));
	assert_true(contains(t.dsdt, dlen, "RTC_"));
	assert_true(contains(t.dsdt, dlen, "_S5_"));
	/* Every table is 16-byte aligned and nothing is written past the result. */
	assert_int_equal((t.dsdt - buf) % 16, 0);
	assert_int_equal((t.madt - buf) % 16, 0);
	assert_int_equal(buf[t.len], 0xa5);
}

static void test_2_cpus(void **state)
{
	(void)state;
	check_machine(2);
}

static void test_64_cpus(void **state)
{
	(void)state;
	check_machine(64);
}

static void test_255_cpus(void **state)
{
	(void)state;
	check_machine(255);
}

static void test_minimal_machine(void **state)
{
	struct acpi_machine m = machine(1);

	(void)state;
	m.com1_port = 0;
	m.rtc_port = 0;
	m.nmmio_devs = 0;
	struct tables t = build(&m);
	uint32_t dlen = le32(t.dsdt + 4);
	assert_false(contains(t.dsdt, dlen, "COM1"));
	assert_false(contains(t.dsdt, dlen, "RTC_"));
	assert_false(contains(t.dsdt, dlen, "LNRO"));
	assert_true(contains(t.dsdt, dlen, "_S5_"));
}

static void test_nospace(void **state)
{
	struct acpi_machine m = machine(64);
	uint64_t rsdp;
	long need = acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &m, &rsdp);

	(void)state;
	assert_true(need > 0);
	/* Every size short of what is needed fails cleanly, none writes past cap. */
	for (long cap = 0; cap < need; cap++) {
		memset(buf, 0xa5, sizeof(buf));
		assert_int_equal(acpi_build(buf, (size_t)cap, LAYOUT_ACPI, &m, &rsdp), -ENOSPC);
		assert_int_equal(buf[cap], 0xa5);
	}
	assert_int_equal(acpi_build(buf, (size_t)need, LAYOUT_ACPI, &m, &rsdp), need);
}

static void test_invalid(void **state)
{
	struct acpi_machine m;
	uint64_t rsdp;

	(void)state;
	m = machine(0);
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &m, &rsdp), -EINVAL);
	m = machine(256);
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &m, &rsdp), -EINVAL);
	m = machine(2);
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI + 8, &m, &rsdp), -EINVAL);
	m.nmmio_devs = ACPI_MAX_MMIO_DEVS + 1;
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &m, &rsdp), -EINVAL);
	m = machine(2);
	devs[1].base = 0xfffff000;
	devs[1].size = 0x2000; /* crosses 4 GiB: no Memory32Fixed for that */
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &m, &rsdp), -EINVAL);
	m = machine(2);
	devs[0].size = 0;
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &m, &rsdp), -EINVAL);
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, NULL, &rsdp), -EINVAL);
}

/* --- iasl: the tables as an ACPI implementation reads them --- */

static char tmpdir[64];

static bool have_iasl(void)
{
	if (system("command -v iasl >/dev/null 2>&1") == 0)
		return true;
	print_message("iasl not installed (apt-get install acpica-tools): skipped\n");
	return false;
}

static size_t slurp(const char *name, char *out, size_t cap)
{
	char path[128];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(out, 1, cap - 1, f);
	fclose(f);
	out[n] = '\0';
	return n;
}

static void write_table(const char *name, const uint8_t *p, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.dat", tmpdir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	fclose(f);
}

static int run_in_tmpdir(const char *args, const char *log)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "cd %s && iasl %s >%s 2>&1", tmpdir, args, log);
	return system(cmd);
}

/* Disassemble @name.dat; iasl must not warn or complain; returns the .dsl in @dsl. */
static void disassemble(const char *name, char *dsl, size_t cap)
{
	static char log[1 << 16];
	char args[64], logname[64], dslname[64];

	snprintf(args, sizeof(args), "-d %s.dat", name);
	snprintf(logname, sizeof(logname), "%s.log", name);
	snprintf(dslname, sizeof(dslname), "%s.dsl", name);
	assert_int_equal(run_in_tmpdir(args, logname), 0);
	slurp(logname, log, sizeof(log));
	slurp(dslname, dsl, cap);
	if (strstr(log, "Warning") || strstr(log, "Error") || strstr(log, "Incorrect") ||
	    strstr(log, "Invalid") || strstr(dsl, "****") || strstr(dsl, "Incorrect"))
		fail_msg("iasl -d %s.dat:\n%s", name, log);
}

static unsigned int count(const char *haystack, const char *needle)
{
	unsigned int n = 0;

	for (const char *p = haystack; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* Build a 64-CPU machine and write its tables to a new temporary directory. */
static void dump_tables(void)
{
	struct acpi_machine m = machine(64);

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/banyan-acpi-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	struct tables t = build(&m);
	write_table("xsdt", t.xsdt, le32(t.xsdt + 4));
	write_table("facp", t.fadt, le32(t.fadt + 4));
	write_table("apic", t.madt, le32(t.madt + 4));
	write_table("dsdt", t.dsdt, le32(t.dsdt + 4));
}

/* Teardown: runs even when the test failed, so nothing is left in /tmp. */
static int remove_tables(void **state)
{
	char cmd[128];

	(void)state;
	if (!tmpdir[0])
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	tmpdir[0] = '\0';
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * The tables through the disassembler. (This iasl cannot read a bare RSDP
 * from a file; the RSDP's checksums and pointer are checked in build().)
 */
static void test_iasl(void **state)
{
	static char dsl[1 << 18], log[1 << 16];

	(void)state;
	if (!have_iasl())
		skip();
	dump_tables();
	disassemble("xsdt", dsl, sizeof(dsl));
	disassemble("facp", dsl, sizeof(dsl));
	assert_non_null(strstr(dsl, "Hardware Reduced (V5) : 1"));
	disassemble("apic", dsl, sizeof(dsl));
	assert_non_null(strstr(dsl, "Local Apic ID : 3F"));
	disassemble("dsdt", dsl, sizeof(dsl));
	assert_non_null(strstr(dsl, "LNRO0005"));
	assert_non_null(strstr(dsl, "PNP0501"));
	assert_non_null(strstr(dsl, "PNP0B00"));
	assert_non_null(strstr(dsl, "_S5_"));
	assert_non_null(strstr(dsl, "Device (VR02)"));
	/* A malformed template would come out as a plain Buffer instead. */
	assert_int_equal(count(dsl, "ResourceTemplate ()"), 2 + NDEVS);

	/* And the disassembly compiles back without a single warning. */
	assert_int_equal(run_in_tmpdir("-p re dsdt.dsl", "re.log"), 0);
	slurp("re.log", log, sizeof(log));
	if (!strstr(log, "Compilation successful. 0 Errors, 0 Warnings"))
		fail_msg("iasl dsdt.dsl:\n%s", log);
}

/*
 * The tables loaded into ACPICA's interpreter (the code Linux runs): the
 * namespace builds, \_S5 and _HID evaluate, and the resource manager parses
 * each kind of device's _CRS into the ports, window and interrupts given.
 */
static void test_acpiexec(void **state)
{
	static char out[1 << 18];
	char cmd[512];

	(void)state;
	if (system("command -v acpiexec >/dev/null 2>&1") != 0) {
		print_message("acpiexec not installed (apt-get install acpica-tools): skipped\n");
		skip();
	}
	dump_tables();
	snprintf(cmd, sizeof(cmd),
		 "cd %s && acpiexec -b 'Evaluate \\_S5; Evaluate \\_SB.COM1._HID; "
		 "Resources \\_SB.VR01; Resources \\_SB.COM1; Resources \\_SB.RTC' "
		 "dsdt.dat facp.dat apic.dat >exec.log 2>&1",
		 tmpdir);
	assert_int_equal(system(cmd), 0);
	slurp("exec.log", out, sizeof(out));
	if (strstr(out, "ACPI Error") || strstr(out, "ACPI Exception") || strstr(out, "AE_AML") ||
	    !strstr(out, "5 Devices"))
		fail_msg("acpiexec:\n%s", out);
	assert_non_null(strstr(out, "[Integer] = 0000000000000005"));
	assert_non_null(strstr(out, "[Integer] = 000000000105D041"));
	assert_non_null(strstr(out, "Address : D0001000"));
	assert_non_null(strstr(out, "Address Length : 00001000"));
	assert_non_null(strstr(out, "Triggering : Edge"));
	assert_non_null(strstr(out, "Dword00 : 00000011"));
	assert_non_null(strstr(out, "Address Minimum : 03F8"));
	assert_non_null(strstr(out, "Interrupt List : 4"));
	assert_non_null(strstr(out, "Address Length : 08"));
	assert_non_null(strstr(out, "Address Minimum : 0070"));
	assert_non_null(strstr(out, "Address Length : 02"));
	assert_non_null(strstr(out, "Interrupt List : 8"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_2_cpus),
	    cmocka_unit_test(test_64_cpus),
	    cmocka_unit_test(test_255_cpus),
	    cmocka_unit_test(test_minimal_machine),
	    cmocka_unit_test(test_nospace),
	    cmocka_unit_test(test_invalid),
	    cmocka_unit_test_teardown(test_iasl, remove_tables),
	    cmocka_unit_test_teardown(test_acpiexec, remove_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
