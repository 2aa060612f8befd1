/* The one checked accessor for guest physical addresses. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/guest_mem.h"

static uint8_t low[0x10000], high[0x1000];

static void setup_mem(struct guest_mem *gm)
{
	memset(gm, 0, sizeof(*gm));
	assert_int_equal(gm_add_region(gm, 0, sizeof(low), low), 0);
	assert_int_equal(gm_add_region(gm, 0x100000000ULL, sizeof(high), high), 0);
}

static void test_inside(void **state)
{
	struct guest_mem gm;

	(void)state;
	setup_mem(&gm);
	assert_ptr_equal(gm_ptr(&gm, 0, 1), low);
	assert_ptr_equal(gm_ptr(&gm, 0xfff0, 0x10), low + 0xfff0);
	assert_ptr_equal(gm_ptr(&gm, 0x100000800ULL, 0x800), high + 0x800);
	assert_int_equal(gm.total, sizeof(low) + sizeof(high));
}

static void test_outside_and_overflow(void **state)
{
	struct guest_mem gm;

	(void)state;
	setup_mem(&gm);
	assert_null(gm_ptr(&gm, 0xfff0, 0x11)); /* runs past the end */
	assert_null(gm_ptr(&gm, 0x10000, 1));	/* the hole */
	assert_null(gm_ptr(&gm, 0x100000fffULL, 2));
	assert_null(gm_ptr(&gm, 0, 0));		 /* empty */
	assert_null(gm_ptr(&gm, UINT64_MAX, 2)); /* wraps */
	assert_null(gm_ptr(&gm, 8, UINT64_MAX)); /* wraps */
	assert_null(gm_ptr(&gm, 0x100000000ULL, UINT64_MAX - 0xfffffffeULL));
	/* A range spanning two regions is refused even if both parts exist. */
	assert_null(gm_ptr(&gm, 0xffff, 0x100000000ULL));
}

static void test_read_write(void **state)
{
	struct guest_mem gm;
	uint32_t v = 0xdeadbeef, r = 0;

	(void)state;
	setup_mem(&gm);
	assert_int_equal(gm_write(&gm, 0x100, &v, sizeof(v)), 0);
	assert_int_equal(gm_read(&gm, 0x100, &r, sizeof(r)), 0);
	assert_int_equal(r, v);
	assert_int_equal(gm_write(&gm, 0xfffe, &v, sizeof(v)), -EFAULT);
	assert_int_equal(gm_read(&gm, 0x20000, &r, sizeof(r)), -EFAULT);
}

static void test_add_region_checks(void **state)
{
	struct guest_mem gm;
	static uint8_t more[0x1000];
	int i;

	(void)state;
	setup_mem(&gm);
	assert_int_equal(gm_add_region(&gm, 0x8000, 0x1000, more), -EINVAL); /* overlap */
	assert_int_equal(gm_add_region(&gm, 0x20000, 0, more), -EINVAL);
	assert_int_equal(gm_add_region(&gm, UINT64_MAX - 0x10, 0x1000, more), -EINVAL);
	for (i = 0; i < GM_MAX_REGIONS - 2; i++)
		assert_int_equal(gm_add_region(&gm, 0x200000ULL * (i + 1), 0x1000, more), 0);
	assert_int_equal(gm_add_region(&gm, 0x40000000, 0x1000, more), -ENOSPC);
}

#define REL_SIZE (8ULL << 20)
#define REL_GPA	 0x200000ULL

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* Fill, release [4 KiB, 3 pages), check the pages read zero and their neighbours kept their data.
 */
static void check_release_zeroes(struct guest_mem *gm, uint8_t *host)
{
	uint64_t got = 0;

	memset(host, 0xbb, REL_SIZE); /* written through the mapping (private: copied) */
	assert_int_equal(gm_release(gm, REL_GPA + 4096, 3 * 4096, &got), 0);
	assert_int_equal(got, 3 * 4096);
	assert_true(all_bytes(host + 4096, 3 * 4096, 0));
	assert_true(all_bytes(host, 4096, 0xbb));
	assert_true(all_bytes(host + 4 * 4096, 4096, 0xbb));
	/* Written again after the release: a normal page again. */
	host[4096] = 1;
	assert_int_equal(host[4096], 1);
}

static void rel_mem(struct guest_mem *gm, void *host)
{
	memset(gm, 0, sizeof(*gm));
	assert_int_equal(gm_add_region(gm, REL_GPA, REL_SIZE, host), 0);
}

/* Private anonymous memory (a booted VM). */
static void test_release_anon(void **state)
{
	uint8_t *host =
	    mmap(NULL, REL_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct guest_mem gm;

	(void)state;
	assert_true(host != MAP_FAILED);
	rel_mem(&gm, host);
	gm_set_backing(&gm, GM_BACKING_ANON, -1, NULL, 4096);
	check_release_zeroes(&gm, host);
	munmap(host, REL_SIZE);
}

/* A shared memfd: the hole must reach the file, not only this mapping. */
static void test_release_shared_memfd(void **state)
{
	int fd = memfd_create("test-gm", 0);
	uint8_t *host, page[4096];
	struct guest_mem gm;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)REL_SIZE), 0);
	host = mmap(NULL, REL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(host != MAP_FAILED);
	rel_mem(&gm, host);
	gm_set_backing(&gm, GM_BACKING_SHARED, fd, host, 4096);
	check_release_zeroes(&gm, host);
	assert_int_equal(pread(fd, page, sizeof(page), 2 * 4096), sizeof(page));
	assert_true(all_bytes(page, sizeof(page), 0));
	munmap(host, REL_SIZE);
	close(fd);
}

/*
 * A snapshot restored MAP_PRIVATE from its file: MADV_DONTNEED would
 * bring back the file's old bytes (0xaa), which this test would see.
 */
static void test_release_private_file(void **state)
{
	char path[] = "/tmp/test-gm-XXXXXX";
	int fd = mkstemp(path);
	uint8_t *host, *buf = malloc(REL_SIZE);
	struct guest_mem gm;

	(void)state;
	assert_true(fd >= 0 && buf);
	unlink(path);
	memset(buf, 0xaa, REL_SIZE);
	assert_int_equal(write(fd, buf, REL_SIZE), (ssize_t)REL_SIZE);
	host = mmap(NULL, REL_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	assert_true(host != MAP_FAILED);
	rel_mem(&gm, host);
	gm_set_backing(&gm, GM_BACKING_PRIVATE_FILE, -1, NULL, 4096);
	check_release_zeroes(&gm, host);
	/* A page never written (still the file's) is replaced as well. */
	assert_int_equal(munmap(host, REL_SIZE), 0);
	host = mmap(NULL, REL_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	assert_true(host != MAP_FAILED);
	rel_mem(&gm, host);
	gm_set_backing(&gm, GM_BACKING_PRIVATE_FILE, -1, NULL, 4096);
	assert_int_equal(gm_release(&gm, REL_GPA, 4096, NULL), 0);
	assert_true(all_bytes(host, 4096, 0));
	assert_true(all_bytes(host + 4096, 4096, 0xaa));
	munmap(host, REL_SIZE);
	close(fd);
	free(buf);
}

/* With 2 MiB pages only whole huge pages inside the range go back. */
static void test_release_granularity(void **state)
{
	uint8_t *host =
	    mmap(NULL, REL_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct guest_mem gm;
	uint64_t got = 0;

	(void)state;
	assert_true(host != MAP_FAILED);
	/* A 2 MiB-aligned window of the mapping. */
	uint8_t *aligned =
	    (uint8_t *)(((uintptr_t)host + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));

	memset(&gm, 0, sizeof(gm));
	assert_int_equal(gm_add_region(&gm, REL_GPA, 4ULL << 20, aligned), 0);
	gm_set_backing(&gm, GM_BACKING_ANON, -1, NULL, 2ULL << 20);
	memset(aligned, 0xcc, 4ULL << 20);
	/* [1 MiB, 3.5 MiB) holds one whole huge page: [2 MiB, 4 MiB) is not inside. */
	assert_int_equal(gm_release(&gm, REL_GPA + (1 << 20), (5ULL << 20) / 2, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(gm_release(&gm, REL_GPA + (1 << 20), 3ULL << 20, &got), 0);
	assert_int_equal(got, 2ULL << 20);
	assert_true(all_bytes(aligned, 2 << 20, 0xcc));
	assert_true(all_bytes(aligned + (2 << 20), 2 << 20, 0));
	/* 4 KiB pages: a range not page-aligned releases only its whole pages. */
	gm_set_backing(&gm, GM_BACKING_ANON, -1, NULL, 4096);
	memset(aligned, 0xcc, 3 * 4096);
	assert_int_equal(gm_release(&gm, REL_GPA + 100, 2 * 4096, &got), 0);
	assert_int_equal(got, 4096);
	assert_true(all_bytes(aligned, 4096, 0xcc));
	assert_true(all_bytes(aligned + 4096, 4096, 0));
	assert_true(all_bytes(aligned + 2 * 4096, 4096, 0xcc));
	munmap(host, REL_SIZE);
}

/* Outside RAM, wrapping or empty: refused, and nothing is released. */
static void test_release_refused(void **state)
{
	struct guest_mem gm;

	(void)state;
	setup_mem(&gm);
	memset(low, 0x11, sizeof(low));
	assert_int_equal(gm_release(&gm, 0xf000, 0x2000, NULL), -EFAULT); /* into the hole */
	assert_int_equal(gm_release(&gm, 0x20000, 0x1000, NULL), -EFAULT);
	assert_int_equal(gm_release(&gm, UINT64_MAX - 0xfff, 0x2000, NULL), -EINVAL);
	assert_int_equal(gm_release(&gm, 0, 0, NULL), -EINVAL);
	assert_true(all_bytes(low, sizeof(low), 0x11));
}

static void test_gpa_of(void **state)
{
	struct guest_mem gm;
	uint64_t gpa = 0;

	(void)state;
	setup_mem(&gm);
	assert_int_equal(gm_gpa_of(&gm, high + 0x10, 0x10, &gpa), 0);
	assert_int_equal(gpa, 0x100000010ULL);
	assert_int_equal(gm_gpa_of(&gm, high + 0xff0, 0x11, &gpa), -EFAULT);
	assert_int_equal(gm_gpa_of(&gm, &gpa, 1, &gpa), -EFAULT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_inside),
	    cmocka_unit_test(test_outside_and_overflow),
	    cmocka_unit_test(test_read_write),
	    cmocka_unit_test(test_add_region_checks),
	    cmocka_unit_test(test_release_anon),
	    cmocka_unit_test(test_release_shared_memfd),
	    cmocka_unit_test(test_release_private_file),
	    cmocka_unit_test(test_release_granularity),
	    cmocka_unit_test(test_release_refused),
	    cmocka_unit_test(test_gpa_of),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
