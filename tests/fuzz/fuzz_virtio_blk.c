/*
 * libFuzzer target: virtio-blk requests (header, data and status
 * descriptors in any shape) against 64 KiB raw images on tmpfs (/dev/shm), through the
 * device's real queue and completion paths on the synchronous transport of
 * fake_transport.h. The first byte picks the disk: read-only, with an
 * overlay, on the worker pool rather than io_uring; then the features and
 * queue setup; then operations (fake_transport.h's shared ones: chains,
 * memory writes, kicks, completions, resets, config reads, state).
 *
 * Build and run: tests/fuzz/run_device.sh (the unit suite runs it briefly).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_transport.h"
#include "fuzz_log.h"
#include "vmm/vm.h"

#define DISK_SIZE (64 * 1024)
#define MAX_OPS	  64

static char dir[64], disk[8][96], overlay[8][96];

/* One image per device: a writable disk's lock keeps every other user out. */
static void setup_files(void)
{
	snprintf(dir, sizeof(dir), "/dev/shm/fuzz-blk-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	for (unsigned int i = 0; i < 8; i++) {
		int fd;

		snprintf(disk[i], sizeof(disk[i]), "%s/disk%u", dir, i);
		fd = open(disk[i], O_RDWR | O_CREAT, 0600);
		if (fd < 0 || ftruncate(fd, DISK_SIZE) < 0)
			abort();
		close(fd);
	}
	fuzz_log_quiet();
}

static void cleanup_files(void)
{
	for (unsigned int i = 0; i < 8; i++)
		if (overlay[i][0])
			unlink(overlay[i]);
	for (unsigned int i = 0; i < 8; i++)
		unlink(disk[i]);
	rmdir(dir);
}

/*
 * The disk for @flags (read-only, overlay, worker pool), made once: making
 * one costs milliseconds (an io_uring, a worker pool), resetting it does
 * not. Every input starts with a device reset, as a rebooted guest's would.
 */
static struct ft_machine *machine(uint8_t flags)
{
	static struct ft_machine machines[8];
	static bool made[8];
	struct ft_machine *m = &machines[flags];
	struct disk_config d = {.path = disk[flags], .read_only = flags & 1};

	if (made[flags])
		return m;
	if (flags & 2) {
		snprintf(overlay[flags], sizeof(overlay[flags]), "%s/overlay%u", dir, flags);
		d.overlay = overlay[flags];
	}
	if (flags & 4)
		setenv("BANYAN_AIO", "threads", 1);
	else
		unsetenv("BANYAN_AIO");
	if (ft_init(m, virtio_blk_create(&d, 0, NULL)) < 0)
		abort(); /* the image is always there */
	made[flags] = true;
	return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct ft_machine *m;

	if (!dir[0]) {
		setup_files();
		atexit(cleanup_files);
	}
	m = machine(fin_u8(&in) & 7);
	ft_reset(m);
	ft_bring_up(m, fin_u64(&in), &in);
	for (int n = 0; n < MAX_OPS && in.left; n++)
		ft_generic_op(m, fin_u8(&in) % FT_OPS, &in);
	ft_event(m, 0);
	ft_collect(m, 0);
	return 0;
}
