/* Unit tests for virtio/vsock.c: the device state a snapshot loads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "virtio/virtio.h"
#include "vmm/state.h"
#include "vmm/vm.h"

/* The device's state as saved: version 1, then the CID (le64). */
static int load_cid(struct virtio_dev *v, uint64_t cid)
{
	uint8_t buf[9] = {1};
	struct state_io io;
	int ret;

	for (int i = 0; i < 8; i++)
		buf[1 + i] = (uint8_t)(cid >> (8 * i));
	state_io_loader(&io, buf, sizeof(buf));
	ret = v->ops->state(v, &io);
	return ret ? ret : state_io_finish(&io);
}

static uint64_t config_cid(struct virtio_dev *v)
{
	uint64_t cid = 0;

	v->ops->config_read(v, 0, &cid, sizeof(cid));
	return cid;
}

/*
 * A snapshot's CID is a guest's (3 .. 2^32-2), as every other way to set
 * one; a refused one leaves the device's: the host's CID 2 made the guest
 * answer as the host, and one near 2^64 wrapped a clone's CID to 0.
 */
static void test_state_cid_checked(void **state)
{
	static const uint64_t bad[] = {0, 1, 2, UINT32_MAX, 1ULL << 40, UINT64_MAX};
	char dir[] = "/tmp/test-vsock-XXXXXX", path[64];
	struct vsock_config vc = {.cid = 3, .uds_path = path};
	struct virtio_dev *v;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	v = virtio_vsock_create(&vc, NULL);
	assert_non_null(v);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(load_cid(v, bad[i]) < 0);
		assert_int_equal(config_cid(v), 3);
	}
	assert_int_equal(load_cid(v, 7), 0);
	assert_int_equal(config_cid(v), 7);
	assert_int_equal(load_cid(v, VIRTIO_VSOCK_CID_MAX), 0);
	v->ops->destroy(v);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_state_cid_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
