/*
 * KVM layer: a tiny guest's PIO and MMIO accesses reach the device that
 * registered the address, with the right offset, width and data; accesses
 * to unassigned addresses read as all-ones and do not stop the VM.
 * Runs on any /dev/kvm (PVM included); skipped without one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/device.h"
#include "vmm/vm.h"

static const char *guest_path;

struct recorder {
	struct device dev;
	uint64_t last_offset;
	uint64_t last_value;
	uint32_t last_len;
	unsigned int writes;
	uint32_t port_values[3]; /* what the guest wrote to 0x510, 0x514, 0x518 */
};

static void rec_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	uint32_t v = 0xcafef00d;

	(void)dev;
	memset(data, 0, len);
	if (offset == 0x10)
		memcpy(data, &v, len < 4 ? len : 4);
}

static void rec_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	struct recorder *r = container_of(dev, struct recorder, dev);

	r->last_offset = offset;
	r->last_len = len;
	r->last_value = 0;
	memcpy(&r->last_value, data, len <= 8 ? len : 8);
	r->writes++;
	if (offset % 4 == 0 && offset / 4 < 3)
		r->port_values[offset / 4] = (uint32_t)r->last_value;
}

static int rec_state(struct device *dev, struct state_io *io)
{
	(void)dev;
	(void)io;
	return 0;
}

static void rec_destroy(struct device *dev)
{
	(void)dev; /* owned by the test */
}

static const struct device_ops rec_ops = {
    .name = "test-recorder",
    .read = rec_read,
    .write = rec_write,
    .state = rec_state,
    .destroy = rec_destroy,
};

static bool kvm_usable(void)
{
	return access("/dev/kvm", R_OK | W_OK) == 0;
}

static enum vm_exit run_until_stopped(struct vm *vm)
{
	struct pollfd p = {.fd = vm->exit_fd, .events = POLLIN};

	assert_int_equal(vm_start(vm), 0);
	if (poll(&p, 1, 60000) != 1)
		vm_request_exit(vm, VM_EXIT_HOST_ERROR, "test timeout");
	return vm_join(vm);
}

static void test_pio_and_mmio_dispatch(void **state)
{
	struct vm_config cfg = {.kernel_path = guest_path,
				.ncpus = 1,
				.mem_size = 64 << 20,
				.cmdline = "",
				.console_out_fd = STDERR_FILENO};
	struct recorder mmio = {.dev.ops = &rec_ops}, pio = {.dev.ops = &rec_ops};
	struct vm *vm;

	(void)state;
	if (!kvm_usable())
		skip();
	assert_int_equal(vm_create(&cfg, &vm), 0);
	assert_int_equal(bus_register(&vm->mmio, 0xd0100000, 0x100, &mmio.dev), 0);
	assert_int_equal(bus_register(&vm->pio, 0x510, 12, &pio.dev), 0);
	assert_int_equal(run_until_stopped(vm), VM_EXIT_POWEROFF);
	/* the 8-byte MMIO store */
	assert_int_equal(mmio.writes, 1);
	assert_int_equal(mmio.last_offset, 8);
	assert_int_equal(mmio.last_len, 8);
	assert_int_equal(mmio.last_value, 0x1122334455667788ULL);
	/* what the guest read back and reported through ports */
	assert_int_equal(pio.port_values[0], 0xcafef00d);
	assert_int_equal(pio.port_values[1], 0xffffffff);
	assert_int_equal(pio.port_values[2], 0xff);
	assert_int_equal(pio.last_len, 1);
	vm_destroy(vm);
}

static void test_overlapping_registration_refused(void **state)
{
	struct vm_config cfg = {.kernel_path = guest_path,
				.ncpus = 1,
				.mem_size = 64 << 20,
				.cmdline = "",
				.console_out_fd = STDERR_FILENO};
	struct recorder a = {.dev.ops = &rec_ops}, b = {.dev.ops = &rec_ops};
	struct vm *vm;

	(void)state;
	if (!kvm_usable())
		skip();
	assert_int_equal(vm_create(&cfg, &vm), 0);
	assert_int_equal(bus_register(&vm->mmio, 0xd0100000, 0x100, &a.dev), 0);
	assert_int_equal(bus_register(&vm->mmio, 0xd01000ff, 2, &b.dev), -EEXIST);
	/* COM1 is registered by the machine: a second device there is refused. */
	assert_int_equal(bus_register(&vm->pio, 0x3f8, 1, &b.dev), -EEXIST);
	vm_destroy(vm);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pio_and_mmio_dispatch),
	    cmocka_unit_test(test_overlapping_registration_refused),
	};

	if (argc < 2)
		return 2;
	guest_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
