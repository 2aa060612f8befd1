/*
 * KVM layer: a VM on 2 MiB huge pages gives released pages back to the
 * host's hugetlb pool (docs/memory.md, "How pages are released"): after
 * gm_release of two touched huge pages, HugePages_Free in /proc/meminfo
 * is higher by two, the pages read as zero, and the tiny guest still
 * runs to its power-off. The test reserves 16 pages with vm.nr_hugepages
 * and takes back exactly what it added, holding a lock across both so
 * that two runs at once (two build trees) cannot leave the pool raised;
 * it is skipped, saying why, on a host where that fails or without a
 * usable /dev/kvm.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "vmm/vm.h"

#define POOL_PATH "/proc/sys/vm/nr_hugepages"
#define LOCK_PATH "/tmp/banyan-test-nr_hugepages.lock"
#define RESERVE	  16
#define HUGE	  (2ULL << 20)
#define GUEST_MIB 16

static const char *guest_path;
static long old_pool = -1;
static long added;	 /* pages this run added to the pool (the kernel may give fewer) */
static int lock_fd = -1; /* held from the raise to the restore */

static long read_long(const char *path, const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!key || strncmp(line, key, strlen(key)) == 0) {
			v = strtol(line + (key ? strlen(key) : 0), NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static int write_pool(long pages)
{
	FILE *f = fopen(POOL_PATH, "w");
	int ret;

	if (!f)
		return -errno;
	ret = fprintf(f, "%ld\n", pages) < 0 ? -EIO : 0;
	return fclose(f) == 0 ? ret : -errno;
}

static long huge_free(void)
{
	return read_long("/proc/meminfo", "HugePages_Free:");
}

/* Reserve RESERVE more pages; why not, into @why. */
static bool reserve_pool(char *why, size_t len)
{
	if (access("/dev/kvm", R_OK | W_OK) != 0) {
		snprintf(why, len, "no usable /dev/kvm");
		return false;
	}
	/* Another run's read-raise-restore between ours would leave its 16 pages behind. */
	lock_fd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0) {
		snprintf(why, len, "cannot lock %s (%s)", LOCK_PATH, strerror(errno));
		return false;
	}
	old_pool = read_long(POOL_PATH, NULL);
	if (old_pool < 0 || write_pool(old_pool + RESERVE) < 0) {
		snprintf(why, len, "cannot raise vm.nr_hugepages (%s)", strerror(errno));
		return false;
	}
	added = read_long(POOL_PATH, NULL) - old_pool;
	if (huge_free() - read_long("/proc/meminfo", "HugePages_Rsvd:") < GUEST_MIB / 2) {
		snprintf(why, len, "the host gave only %ld free 2 MiB pages", huge_free());
		return false;
	}
	return true;
}

static enum vm_exit run_until_stopped(struct vm *vm)
{
	struct pollfd p = {.fd = vm->exit_fd, .events = POLLIN};

	assert_int_equal(vm_start(vm), 0);
	if (poll(&p, 1, 60000) != 1)
		vm_request_exit(vm, VM_EXIT_HOST_ERROR, "test timeout");
	return vm_join(vm);
}

static void test_release_returns_huge_pages(void **state)
{
	struct vm_config cfg = {.kernel_path = guest_path,
				.ncpus = 1,
				.mem_size = GUEST_MIB << 20,
				.cmdline = "",
				.console_out_fd = STDERR_FILENO,
				.mem_backing.hugepages = true};
	static uint8_t pattern[2 * HUGE], back[2 * HUGE];
	uint64_t released = 0, gpa = 8ULL << 20; /* pages 4 and 5: not the guest's */
	struct vm *vm;
	long touched;
	char why[128];

	(void)state;
	if (!reserve_pool(why, sizeof(why))) {
		print_message("# skipped: %s\n", why);
		skip();
	}
	assert_int_equal(vm_create(&cfg, &vm), 0);
	assert_true(vm->mem.fd >= 0); /* the memfd is kept for the hole */
	memset(pattern, 0xa5, sizeof(pattern));
	assert_int_equal(gm_write(&vm->mem, gpa, pattern, sizeof(pattern)), 0);
	touched = huge_free();
	assert_int_equal(gm_release(&vm->mem, gpa, sizeof(pattern), &released), 0);
	assert_int_equal(released, sizeof(pattern));
	/* Both pages are back in the host's pool, before anything touches them again. */
	assert_int_equal(huge_free(), touched + 2);
	assert_int_equal(gm_read(&vm->mem, gpa, back, sizeof(back)), 0);
	memset(pattern, 0, sizeof(pattern));
	assert_memory_equal(back, pattern, sizeof(back));
	assert_int_equal(run_until_stopped(vm), VM_EXIT_POWEROFF);
	vm_destroy(vm);
}

/* The pages this run added taken back, and the pool as it found it (else the teardown fails). */
static int restore_pool(void **state)
{
	int ret = 0;

	(void)state;
	if (added > 0 && write_pool(read_long(POOL_PATH, NULL) - added) < 0)
		ret = -1;
	if (old_pool >= 0 && read_long(POOL_PATH, NULL) != old_pool) {
		print_message("# vm.nr_hugepages is %ld, was %ld\n", read_long(POOL_PATH, NULL),
			      old_pool);
		ret = -1;
	}
	if (lock_fd >= 0)
		close(lock_fd);
	return ret;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_release_returns_huge_pages),
	};

	if (argc < 2)
		return 2;
	guest_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, restore_pool);
}
