/*
 * Guest memory backing without KVM: prefault makes a mapping resident,
 * mergeable sets KSM's flag, and the accounting (mem_stats) splits the
 * process's resident memory between a "guest" mapping and the rest, as
 * the kernel's own /proc/self/status counts it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/mem_backing.h"
#include "vmm/mem_stats.h"

#define SIZE (16ULL << 20)

/* A field of /proc/self/status in bytes. */
static uint64_t status_bytes(const char *field)
{
	char line[256];
	uint64_t kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, strlen(field)) == 0 && line[strlen(field)] == ':')
			kb = strtoull(line + strlen(field) + 1, NULL, 10);
	fclose(f);
	return kb << 10;
}

/* VmFlags of the mapping starting at @p: does it have @flag? */
static bool vmflag(const void *p, const char *flag)
{
	char line[512], want[32], pat[8];
	bool in = false, found = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	assert_non_null(f);
	snprintf(want, sizeof(want), "%lx-", (unsigned long)(uintptr_t)p);
	snprintf(pat, sizeof(pat), " %s", flag);
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && line[0] != 'V' && strncmp(line, "VmFlags", 7))
			in = strncmp(line, want, strlen(want)) == 0;
		if (in && strncmp(line, "VmFlags:", 8) == 0)
			found = strstr(line, pat) != NULL;
	}
	fclose(f);
	return found;
}

static void accounting_splits_guest_and_vmm(void **state)
{
	struct mem_backing b = {0};
	struct mem_stats st;
	char err[256];
	uint8_t *g = mem_backing_map(&b, SIZE, NULL, err, sizeof(err));

	(void)state;
	assert_ptr_not_equal(g, MAP_FAILED);
	assert_int_equal(mem_backing_apply(&b, g, SIZE), 0);
	assert_int_equal(mem_stats_read(g, SIZE, &st), 0);
	assert_true(st.guest_resident < SIZE / 4); /* MAP_NORESERVE: nothing faulted yet */
	memset(g, 1, SIZE / 2);
	assert_int_equal(mem_stats_read(g, SIZE, &st), 0);
	assert_true(st.guest_resident >= SIZE / 2 && st.guest_resident <= SIZE);
	assert_true(st.rss >= st.guest_resident);
	assert_int_equal(st.vmm_resident, st.rss - st.guest_resident);
	assert_true(st.private_dirty >= SIZE / 2);
	assert_true(st.pss <= st.rss);
	uint64_t vmrss = status_bytes("VmRSS");
	assert_true(st.rss + (2 << 20) >= vmrss && vmrss + (2 << 20) >= st.rss);
	assert_int_equal(mem_stats_read(NULL, 0, &st), 0); /* no guest: all is the VMM's */
	assert_int_equal(st.guest_resident, 0);
	assert_int_equal(st.vmm_resident, st.rss);
	munmap(g, SIZE);
}

static void prefault_and_mergeable(void **state)
{
	struct mem_backing b = {.prefault = true};
	struct mem_stats st;
	char err[256];
	uint8_t *g = mem_backing_map(&b, SIZE, NULL, err, sizeof(err));

	(void)state;
	assert_ptr_not_equal(g, MAP_FAILED);
	assert_int_equal(mem_backing_apply(&b, g, SIZE), 0);
	assert_int_equal(mem_stats_read(g, SIZE, &st), 0);
	assert_true(st.guest_resident >= SIZE);
	assert_false(vmflag(g, "mg"));
	munmap(g, SIZE);
	b = (struct mem_backing){.mergeable = true};
	g = mem_backing_map(&b, SIZE, NULL, err, sizeof(err));
	assert_ptr_not_equal(g, MAP_FAILED);
	if (mem_backing_apply(&b, g, SIZE) < 0) {
		munmap(g, SIZE);
		skip(); /* a kernel without KSM */
	}
	assert_true(vmflag(g, "mg"));
	munmap(g, SIZE);
}

/* Huge pages need whole 2 MiB pages; the refusal names what to do. */
static void huge_pages_refused_when_odd(void **state)
{
	struct mem_backing b = {.hugepages = true};
	char err[256] = "";

	(void)state;
	assert_ptr_equal(mem_backing_map(&b, (3ULL << 20), NULL, err, sizeof(err)), MAP_FAILED);
	assert_non_null(strstr(err, "multiple of 2 MiB"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(accounting_splits_guest_and_vmm),
	    cmocka_unit_test(prefault_and_mergeable),
	    cmocka_unit_test(huge_pages_refused_when_odd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
