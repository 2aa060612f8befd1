/*
 * Unit tests for the AML writer: byte-exact encodings checked against the
 * ACPI specification, and a block of AML checked against what Intel's ASL
 * compiler (iasl, package acpica-tools) produces for the same source.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/aml.h"

static uint8_t buf[1 << 21];

#define EXPECT_BYTES(a, ...)                                                                       \
	do {                                                                                       \
		static const uint8_t want_[] = {__VA_ARGS__};                                      \
		assert_int_equal((a)->err, 0);                                                     \
		assert_int_equal((a)->len, sizeof(want_));                                         \
		assert_memory_equal((a)->buf, want_, sizeof(want_));                               \
	} while (0)

/* Decode a PkgLength at @p; sets *@nbytes to its size. */
static size_t pkglength_decode(const uint8_t *p, size_t *nbytes)
{
	size_t extra = p[0] >> 6;
	size_t v;

	if (extra == 0) {
		*nbytes = 1;
		return p[0] & 0x3f;
	}
	v = p[0] & 0x0f;
	for (size_t i = 0; i < extra; i++)
		v |= (size_t)p[1 + i] << (4 + 8 * i);
	*nbytes = 1 + extra;
	return v;
}

static void check_pkglength(size_t body, int nbytes, const uint8_t *want)
{
	uint8_t out[4];
	size_t n;

	assert_int_equal(aml_pkglength(body, out), nbytes);
	assert_memory_equal(out, want, (size_t)nbytes);
	/* The value counts the PkgLength bytes themselves. */
	assert_int_equal(pkglength_decode(out, &n), body + (size_t)nbytes);
	assert_int_equal(n, nbytes);
}

static void test_pkglength_boundaries(void **state)
{
	(void)state;
	check_pkglength(0, 1, (const uint8_t[]){0x01});
	check_pkglength(62, 1, (const uint8_t[]){0x3f});	 /* 63: the last one-byte value */
	check_pkglength(63, 2, (const uint8_t[]){0x41, 0x04});	 /* 64 won't fit: 65 in two */
	check_pkglength(4093, 2, (const uint8_t[]){0x4f, 0xff}); /* 4095: the last two-byte value */
	check_pkglength(4094, 3, (const uint8_t[]){0x81, 0x00, 0x01}); /* 4097 in three */
	check_pkglength(0xffffc, 3, (const uint8_t[]){0x8f, 0xff, 0xff});
	check_pkglength(0xffffd, 4, (const uint8_t[]){0xc1, 0x00, 0x00, 0x01});
	check_pkglength(AML_PKGLENGTH_MAX - 4, 4, (const uint8_t[]){0xcf, 0xff, 0xff, 0xff});

	uint8_t out[4];
	assert_int_equal(aml_pkglength(AML_PKGLENGTH_MAX - 3, out), -E2BIG);
	assert_int_equal(aml_pkglength(SIZE_MAX, out), -E2BIG);
}

/* A Scope whose body is @fill bytes after its 4-byte name: the PkgLength in place. */
static void check_scope_of(size_t fill, size_t want_nbytes)
{
	static uint8_t filler[5000];
	struct aml a;
	struct aml_pkg p;
	size_t n;

	aml_init(&a, buf, sizeof(buf));
	aml_scope_begin(&a, "_SB", &p);
	aml_raw(&a, filler, fill);
	assert_int_equal(aml_end(&a, &p), 0);
	assert_int_equal(a.depth, 0);
	assert_int_equal(buf[0], 0x10);
	assert_int_equal(pkglength_decode(buf + 1, &n), a.len - 1);
	assert_int_equal(n, want_nbytes);
	assert_memory_equal(buf + 1 + n, "_SB_", 4);
	assert_int_equal(a.len, 1 + n + 4 + fill);
}

static void test_pkglength_in_place(void **state)
{
	(void)state;
	check_scope_of(0, 1);
	check_scope_of(58, 1);	 /* body 62 */
	check_scope_of(59, 2);	 /* body 63 */
	check_scope_of(4089, 2); /* body 4093 */
	check_scope_of(4090, 3); /* body 4094 */
}

static void check_integer(uint64_t v, const uint8_t *want, size_t n)
{
	struct aml a;

	aml_init(&a, buf, sizeof(buf));
	assert_int_equal(aml_integer(&a, v), 0);
	assert_int_equal(a.len, n);
	assert_memory_equal(buf, want, n);
}

static void test_integers(void **state)
{
	(void)state;
	check_integer(0, (const uint8_t[]){0x00}, 1);
	check_integer(1, (const uint8_t[]){0x01}, 1);
	check_integer(2, (const uint8_t[]){0x0a, 0x02}, 2);
	check_integer(0xff, (const uint8_t[]){0x0a, 0xff}, 2);
	check_integer(0x100, (const uint8_t[]){0x0b, 0x00, 0x01}, 3);
	check_integer(0xffff, (const uint8_t[]){0x0b, 0xff, 0xff}, 3);
	check_integer(0x10000, (const uint8_t[]){0x0c, 0x00, 0x00, 0x01, 0x00}, 5);
	check_integer(0xffffffff, (const uint8_t[]){0x0c, 0xff, 0xff, 0xff, 0xff}, 5);
	check_integer(1ULL << 32, (const uint8_t[]){0x0e, 0, 0, 0, 0, 1, 0, 0, 0}, 9);
	check_integer(UINT64_MAX - 1,
		      (const uint8_t[]){0x0e, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9);
	check_integer(UINT64_MAX, (const uint8_t[]){0xff}, 1); /* Ones */
}

static void check_name(const char *name, const char *want, size_t n)
{
	struct aml a;

	aml_init(&a, buf, sizeof(buf));
	assert_int_equal(aml_namestring(&a, name), 0);
	assert_int_equal(a.len, n);
	assert_memory_equal(buf, want, n);
}

static void test_namestrings(void **state)
{
	(void)state;
	check_name("_HID", "_HID", 4);
	check_name("RTC", "RTC_", 4);
	check_name("A", "A___", 4);
	check_name("\\_SB", "\\_SB_", 5);
	check_name("\\", "\\\0", 2);				/* root, NullName */
	check_name("\\_SB.COM1", "\\\x2e_SB_COM1", 10);		/* DualNamePath */
	check_name("_SB.PCI0.S08", "\x2f\x03_SB_PCI0S08_", 14); /* MultiNamePath */
	check_name("^^FOO", "^^FOO_", 6);
	check_name("^S1.X", "^\x2eS1__X___", 10);
}

static void test_namestrings_invalid(void **state)
{
	static const char *const bad[] = {
	    "", "abc", "TOOLONG", "A..B", "A.", ".A", "1ABC", "\\^A", "^\\A", "A-B", "_SB.",
	};
	struct aml a;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_init(&a, buf, sizeof(buf));
		assert_int_equal(aml_namestring(&a, bad[i]), -EINVAL);
		/* The error sticks: later calls do nothing. */
		assert_int_equal(aml_integer(&a, 5), -EINVAL);
		assert_int_equal(a.err, -EINVAL);
	}
}

static void test_string(void **state)
{
	struct aml a;

	(void)state;
	aml_init(&a, buf, sizeof(buf));
	assert_int_equal(aml_string(&a, "LNRO0005"), 0);
	EXPECT_BYTES(&a, 0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0x00);

	aml_init(&a, buf, sizeof(buf));
	assert_int_equal(aml_string(&a, "caf\xc3\xa9"), -EINVAL);
}

static void test_eisaid(void **state)
{
	uint32_t v = 0;
	struct aml a;

	(void)state;
	assert_int_equal(aml_eisaid("PNP0501", &v), 0);
	assert_int_equal(v, 0x0105d041);
	assert_int_equal(aml_eisaid("PNP0B00", &v), 0);
	assert_int_equal(v, 0x000bd041);
	assert_int_equal(aml_eisaid("pnp0501", &v), -EINVAL);
	assert_int_equal(aml_eisaid("PNP050", &v), -EINVAL);
	assert_int_equal(aml_eisaid("PNP05011", &v), -EINVAL);
	assert_int_equal(aml_eisaid("PNP050G", &v), -EINVAL);

	aml_init(&a, buf, sizeof(buf));
	assert_int_equal(aml_name_eisaid(&a, "_HID", "PNP0501"), 0);
	EXPECT_BYTES(&a, 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01);
}

static void test_restemplate_end_tag(void **state)
{
	struct aml a;
	struct aml_pkg p;

	(void)state;
	/* An empty template: Buffer(2) { EndTag }, the checksum making 0x79 + c == 0. */
	aml_init(&a, buf, sizeof(buf));
	aml_restemplate_begin(&a, &p);
	assert_int_equal(aml_end(&a, &p), 0);
	EXPECT_BYTES(&a, 0x11, 0x05, 0x0a, 0x02, 0x79, 0x87);
}

static void test_restemplate_descriptors(void **state)
{
	struct aml a;
	struct aml_pkg p;
	uint8_t sum = 0;

	(void)state;
	aml_init(&a, buf, sizeof(buf));
	aml_restemplate_begin(&a, &p);
	aml_res_io(&a, 0x3f8, 0x3f8, 1, 8);
	aml_res_irq_noflags(&a, 4);
	aml_res_mem32_fixed(&a, true, 0xd0000000, 0x1000);
	aml_res_interrupt(&a, AML_EDGE, AML_ACTIVE_HIGH, 16);
	aml_res_interrupt(&a, AML_LEVEL, AML_ACTIVE_LOW, 0x12345678);
	assert_int_equal(aml_end(&a, &p), 0);
	/* clang-format off */
	EXPECT_BYTES(&a, 0x11, 0x2e, 0x0a, 0x2b,
		     0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, /* IO(Decode16, ...) */
		     0x22, 0x10, 0x00,                               /* IRQNoFlags() {4} */
		     0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00,
		     0x89, 0x06, 0x00, 0x03, 0x01, 0x10, 0x00, 0x00, 0x00,
		     0x89, 0x06, 0x00, 0x05, 0x01, 0x78, 0x56, 0x34, 0x12,
		     0x79, 0x52);
	/* clang-format on */
	for (size_t i = 4; i < a.len; i++)
		sum = (uint8_t)(sum + buf[i]);
	assert_int_equal(sum, 0);

	aml_init(&a, buf, sizeof(buf));
	assert_int_equal(aml_res_irq_noflags(&a, 16), -EINVAL);
}

static void test_method_package(void **state)
{
	struct aml a;
	struct aml_pkg m, p;

	(void)state;
	aml_init(&a, buf, sizeof(buf));
	aml_method_begin(&a, "_STA", 0, false, &m);
	aml_return(&a);
	aml_integer(&a, 0x0f);
	aml_end(&a, &m);
	aml_name(&a, "_S5");
	aml_package_begin(&a, 4, &p);
	aml_integer(&a, 5);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	assert_int_equal(aml_end(&a, &p), 0);
	/* clang-format off */
	EXPECT_BYTES(&a, 0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f,
		     0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00);
	/* clang-format on */

	aml_init(&a, buf, sizeof(buf));
	assert_int_equal(aml_method_begin(&a, "M", 8, false, &m), -EINVAL);
	aml_init(&a, buf, sizeof(buf));
	assert_int_equal(aml_package_begin(&a, 256, &p), -EINVAL);
}

static void test_end_out_of_order(void **state)
{
	struct aml a;
	struct aml_pkg outer, inner;

	(void)state;
	aml_init(&a, buf, sizeof(buf));
	aml_scope_begin(&a, "_SB", &outer);
	aml_device_begin(&a, "DEV0", &inner);
	assert_int_equal(aml_end(&a, &outer), -EINVAL);

	aml_init(&a, buf, sizeof(buf));
	aml_scope_begin(&a, "_SB", &outer);
	assert_int_equal(aml_end(&a, &outer), 0);
	assert_int_equal(aml_end(&a, &outer), -EINVAL); /* ended twice */
}

static void test_nospace(void **state)
{
	uint8_t small[8];
	struct aml a;
	struct aml_pkg p;

	(void)state;
	aml_init(&a, small, 3);
	assert_int_equal(aml_integer(&a, 0x10000), -ENOSPC);
	assert_int_equal(a.len, 0);
	assert_int_equal(aml_integer(&a, 0), -ENOSPC); /* sticky */

	/* The body fits, the PkgLength inserted in front of it does not. */
	aml_init(&a, small, 5);
	aml_scope_begin(&a, "_SB", &p);
	assert_int_equal(a.err, 0);
	assert_int_equal(aml_end(&a, &p), -ENOSPC);

	aml_init(&a, NULL, 0);
	assert_int_equal(aml_raw(&a, "x", 1), -ENOSPC);
}

/* The block reference_asl describes, built with the writer. */
static size_t build_reference_block(void)
{
	struct aml a;
	struct aml_pkg sb, dev, m1, m2, pkg;

	aml_init(&a, buf, sizeof(buf));
	aml_scope_begin(&a, "_SB", &sb);
	aml_device_begin(&a, "DEV0", &dev);
	aml_name_eisaid(&a, "_HID", "PNP0501");
	aml_name_integer(&a, "_UID", 0x1234);
	aml_name_string(&a, "STR0", "LNRO0005");
	aml_name_integer(&a, "BIG0", 0x123456789);
	aml_method_begin(&a, "_STA", 0, false, &m1);
	aml_return(&a);
	aml_integer(&a, 0x0f);
	aml_end(&a, &m1);
	aml_method_begin(&a, "MTH1", 2, true, &m2);
	aml_return(&a);
	aml_integer(&a, UINT64_MAX);
	aml_end(&a, &m2);
	aml_end(&a, &dev);
	aml_end(&a, &sb);
	aml_name(&a, "_S5");
	aml_package_begin(&a, 4, &pkg);
	aml_integer(&a, 5);
	aml_integer(&a, 0);
	aml_integer(&a, 0x10000);
	aml_integer(&a, 0xffffffff);
	aml_end(&a, &pkg);
	assert_int_equal(a.err, 0);
	return a.len;
}

static const char reference_asl[] =
    "DefinitionBlock (\"\", \"SSDT\", 2, \"BANYAN\", \"BANYANVM\", 1)\n"
    "{\n"
    "    Scope (_SB)\n"
    "    {\n"
    "        Device (DEV0)\n"
    "        {\n"
    "            Name (_HID, EisaId (\"PNP0501\"))\n"
    "            Name (_UID, 0x1234)\n"
    "            Name (STR0, \"LNRO0005\")\n"
    "            Name (BIG0, 0x123456789)\n"
    "            Method (_STA, 0, NotSerialized) { Return (0x0F) }\n"
    "            Method (MTH1, 2, Serialized) { Return (Ones) }\n"
    "        }\n"
    "    }\n"
    "    Name (_S5, Package () { 5, 0, 0x10000, 0xFFFFFFFF })\n"
    "}\n";

static uint8_t *read_file(const char *path, size_t *len)
{
	static uint8_t data[65536];
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	*len = fread(data, 1, sizeof(data), f);
	fclose(f);
	return data;
}

static char dir[64];

/* Teardown: runs even when the test failed, so nothing is left in /tmp. */
static int remove_dir(void **state)
{
	char cmd[128];

	(void)state;
	if (!dir[0])
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	dir[0] = '\0';
	return system(cmd) == 0 ? 0 : -1;
}

/* The same block through iasl: identical bytes after the 36-byte table header. */
static void test_matches_iasl(void **state)
{
	char path[128], cmd[512];
	size_t n, len;

	(void)state;
	if (system("command -v iasl >/dev/null 2>&1") != 0) {
		print_message("iasl not installed (apt-get install acpica-tools): skipped\n");
		skip();
	}
	snprintf(dir, sizeof(dir), "/tmp/banyan-aml-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ref.asl", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(reference_asl, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -p ref ref.asl >iasl.log 2>&1", dir);
	assert_int_equal(system(cmd), 0);

	snprintf(path, sizeof(path), "%s/ref.aml", dir);
	uint8_t *aml = read_file(path, &len);
	n = build_reference_block();
	assert_int_equal(len, 36 + n);
	assert_memory_equal(aml + 36, buf, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pkglength_boundaries),
	    cmocka_unit_test(test_pkglength_in_place),
	    cmocka_unit_test(test_integers),
	    cmocka_unit_test(test_namestrings),
	    cmocka_unit_test(test_namestrings_invalid),
	    cmocka_unit_test(test_string),
	    cmocka_unit_test(test_eisaid),
	    cmocka_unit_test(test_restemplate_end_tag),
	    cmocka_unit_test(test_restemplate_descriptors),
	    cmocka_unit_test(test_method_package),
	    cmocka_unit_test(test_end_out_of_order),
	    cmocka_unit_test(test_nospace),
	    cmocka_unit_test_teardown(test_matches_iasl, remove_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
