/*
 * virtio-blk behind the MMIO transport, on a temporary raw image, with both
 * I/O engines (io_uring, then the worker pool via BANYAN_AIO=threads):
 * configuration, read/write, flush, get-id, discard, write-zeroes, read-only
 * images, O_DIRECT bounce buffers, bounds, malformed requests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_ring.h"
#include "util/clock.h"
#include "virtio/mmio.h"
#include "virtio/virtio.h"
#include "vmm/vm.h"

#define BASE	  0xd0000000ULL
#define GSI	  16
#define QSIZE	  64
#define DISK_SIZE (32ULL << 20) /* sparse; room for a request over the bounce budget */

#define T_IN	       0
#define T_OUT	       1
#define T_FLUSH	       4
#define T_GET_ID       8
#define T_DISCARD      11
#define T_WRITE_ZEROES 13

/* Per-slot layout: header, status and segment at HDR(i), data at DATA(i). */
#define HDR(i)	(FAKE_DATA + 0x100ULL * (i))
#define DATA(i) (FAKE_DATA + 0x10000ULL + 0x10000ULL * (i))

static atomic_uint irq_edges; /* interrupts raised through set_irq */

static void fake_set_irq(struct dev_host *host, uint32_t gsi, bool level)
{
	(void)host;
	(void)gsi;
	if (level)
		atomic_fetch_add(&irq_edges, 1);
}

static void fake_request(struct dev_host *host, enum vm_request req)
{
	(void)host;
	(void)req;
}

static struct dev_host fake_host = {.set_irq = fake_set_irq, .request = fake_request};

static struct rl_config disk_limit; /* the rate limiter of the next disk opened */

struct fixture {
	struct fake_ring r;
	struct device *dev;
	char path[64];
	char overlay[80]; /* "" unless the disk has an overlay */
	int fd;		  /* the test's own view of the image */
	uint16_t posted;
};

static uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v;

	f->dev->ops->read(f->dev, off, &v, 4);
	return v;
}

static void wr(struct fixture *f, uint64_t off, uint32_t v)
{
	f->dev->ops->write(f->dev, off, &v, 4);
}

static uint64_t features(struct fixture *f)
{
	uint64_t v;

	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	v = rd(f, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	return v | (uint64_t)rd(f, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

static void bring_up(struct fixture *f)
{
	uint64_t feat = features(f);

	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)feat);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(feat >> 32));
	wr(f, VIRTIO_MMIO_STATUS, 0xb);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)FAKE_DESC);
	wr(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)FAKE_AVAIL);
	wr(f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)FAKE_USED);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	wr(f, VIRTIO_MMIO_STATUS, 0xf);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0xf);
}

static int open_disk_with(void **state, bool ro, enum disk_cache cache, bool overlay)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct disk_config d = {
	    .id = "test-disk-id", .read_only = ro, .cache = cache, .limit = disk_limit};

	assert_non_null(f);
	snprintf(f->path, sizeof(f->path), "blk-test-XXXXXX");
	f->fd = mkstemp(f->path);
	assert_true(f->fd >= 0);
	assert_int_equal(ftruncate(f->fd, DISK_SIZE), 0);
	d.path = f->path;
	if (overlay) {
		snprintf(f->overlay, sizeof(f->overlay), "%s.overlay", f->path);
		d.overlay = f->overlay;
	}
	assert_int_equal(fake_ring_init(&f->r, QSIZE), 0);
	f->dev =
	    virtio_mmio_create(&fake_host, &f->r.gm, virtio_blk_create(&d, 0, NULL), BASE, GSI);
	if (!f->dev && cache == DISK_CACHE_NONE) {
		unlink(f->path);
		close(f->fd);
		fake_ring_free(&f->r);
		free(f);
		*state = NULL;
		return 0; /* this file system refuses O_DIRECT: the test skips */
	}
	assert_non_null(f->dev);
	bring_up(f);
	*state = f;
	return 0;
}

static int open_disk(void **state, bool ro, enum disk_cache cache)
{
	return open_disk_with(state, ro, cache, false);
}

/* Each test runs once per I/O engine: the setup picks it. */
static int engine(bool threads)
{
	return threads ? setenv("BANYAN_AIO", "threads", 1) : unsetenv("BANYAN_AIO");
}

static int setup(void **state)
{
	return engine(false) ?: open_disk(state, false, DISK_CACHE_WRITEBACK);
}
static int setup_ro(void **state)
{
	return engine(false) ?: open_disk(state, true, DISK_CACHE_WRITEBACK);
}
static int setup_direct(void **state)
{
	return engine(false) ?: open_disk(state, false, DISK_CACHE_NONE);
}
static int setup_t(void **state)
{
	return engine(true) ?: open_disk(state, false, DISK_CACHE_WRITEBACK);
}
static int setup_ro_t(void **state)
{
	return engine(true) ?: open_disk(state, true, DISK_CACHE_WRITEBACK);
}
static int setup_direct_t(void **state)
{
	return engine(true) ?: open_disk(state, false, DISK_CACHE_NONE);
}

/* An overlay always runs on the worker pool, whatever BANYAN_AIO says. */
static int setup_overlay(void **state)
{
	return engine(false) ?: open_disk_with(state, false, DISK_CACHE_WRITEBACK, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	f->dev->ops->destroy(f->dev);
	if (f->overlay[0])
		unlink(f->overlay);
	unlink(f->path);
	close(f->fd);
	fake_ring_free(&f->r);
	free(f);
	return 0;
}

/*
 * Post request @type in slot @s: header, then @len data bytes at DATA(s)
 * (device-writable for reads and get-id), then the status byte.
 */
static void post(struct fixture *f, unsigned int s, uint32_t type, uint64_t sector, uint32_t len)
{
	struct {
		uint32_t type, ioprio;
		uint64_t sector;
	} h = {type, 0, sector};
	uint16_t d = (uint16_t)(3 * s);
	bool in = type == T_IN || type == T_GET_ID;

	memcpy(fake_ptr(&f->r, HDR(s)), &h, sizeof(h));
	*(uint8_t *)fake_ptr(&f->r, HDR(s) + 0x20) = 0xee;
	fake_desc(&f->r, FAKE_DESC, d, HDR(s), 16, VRING_DESC_F_NEXT, len ? d + 1 : d + 2);
	if (len)
		fake_desc(&f->r, FAKE_DESC, d + 1, DATA(s), len,
			  VRING_DESC_F_NEXT | (in ? VRING_DESC_F_WRITE : 0), d + 2);
	fake_desc(&f->r, FAKE_DESC, d + 2, HDR(s) + 0x20, 1, VRING_DESC_F_WRITE, 0);
	fake_make_avail(&f->r, d);
	f->posted++;
}

static void kick_and_wait(struct fixture *f)
{
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	for (int i = 0; i < 5000 && fake_used_idx(&f->r) != f->posted; i++)
		usleep(1000);
	assert_int_equal(fake_used_idx(&f->r), f->posted);
}

static uint8_t status_of(struct fixture *f, unsigned int s)
{
	return *(uint8_t *)fake_ptr(&f->r, HDR(s) + 0x20);
}

static uint8_t *data_of(struct fixture *f, unsigned int s)
{
	return fake_ptr(&f->r, DATA(s));
}

/* One request, waited for; returns its status. */
static uint8_t request(struct fixture *f, uint32_t type, uint64_t sector, uint32_t len)
{
	post(f, 0, type, sector, len);
	kick_and_wait(f);
	return status_of(f, 0);
}

static void set_segment(struct fixture *f, uint64_t sector, uint32_t n, uint32_t flags)
{
	struct {
		uint64_t sector;
		uint32_t n, flags;
	} seg = {sector, n, flags};

	memcpy(data_of(f, 0), &seg, sizeof(seg));
}

static void test_config(void **state)
{
	struct fixture *f = *state;
	uint64_t cap;
	uint32_t v;

	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
	f->dev->ops->read(f->dev, VIRTIO_MMIO_CONFIG, &cap, 8);
	assert_int_equal(cap, DISK_SIZE / 512);
	f->dev->ops->read(f->dev, VIRTIO_MMIO_CONFIG + 12, &v, 4);
	assert_int_equal(v, 254); /* seg_max */
	f->dev->ops->read(f->dev, VIRTIO_MMIO_CONFIG + 20, &v, 4);
	assert_int_equal(v, 512); /* blk_size */
	f->dev->ops->read(f->dev, VIRTIO_MMIO_CONFIG + 40, &v, 4);
	assert_int_equal(v, 1); /* max_discard_seg */
	f->dev->ops->read(f->dev, VIRTIO_MMIO_CONFIG + 0x200, &v, 4);
	assert_int_equal(v, 0);			 /* beyond the configuration space */
	assert_true(features(f) & (1ULL << 13)); /* DISCARD */
	assert_true(features(f) & (1ULL << 14)); /* WRITE_ZEROES */
	assert_true(features(f) & (1ULL << 9));	 /* FLUSH */
	assert_false(features(f) & (1ULL << 5)); /* not RO */
}

static void test_write_read(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[4096];
	uint32_t id, len;

	for (unsigned int i = 0; i < sizeof(buf); i++)
		data_of(f, 0)[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(request(f, T_OUT, 8, 4096), 0);
	assert_int_equal(pread(f->fd, buf, sizeof(buf), 8 * 512), (ssize_t)sizeof(buf));
	assert_memory_equal(buf, data_of(f, 0), sizeof(buf));

	memset(data_of(f, 0), 0, 4096);
	assert_int_equal(request(f, T_IN, 8, 4096), 0);
	assert_memory_equal(buf, data_of(f, 0), sizeof(buf));
	fake_used_elem(&f->r, 1, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 4097); /* data and status */
	assert_int_equal(request(f, T_FLUSH, 0, 0), 0);
	assert_int_equal(atomic_load(&f->dev->stats.requests), 3);
	assert_int_equal(atomic_load(&f->dev->stats.bytes_out), 4096);
	assert_int_equal(atomic_load(&f->dev->stats.bytes_in), 4096);
}

static void test_header_split_across_descriptors(void **state)
{
	struct fixture *f = *state;
	struct {
		uint32_t type, ioprio;
		uint64_t sector;
	} h = {T_IN, 0, 1};

	assert_int_equal(pwrite(f->fd, "split-header", 12, 512), 12);
	memcpy(fake_ptr(&f->r, HDR(0)), &h, sizeof(h));
	fake_desc(&f->r, FAKE_DESC, 0, HDR(0), 5, VRING_DESC_F_NEXT, 1);
	fake_desc(&f->r, FAKE_DESC, 1, HDR(0) + 5, 11, VRING_DESC_F_NEXT, 2);
	/* data and status in one buffer: the status is its last byte */
	fake_desc(&f->r, FAKE_DESC, 2, DATA(0), 513, VRING_DESC_F_WRITE, 0);
	fake_make_avail(&f->r, 0);
	f->posted++;
	kick_and_wait(f);
	assert_memory_equal(data_of(f, 0), "split-header", 12);
	assert_int_equal(data_of(f, 0)[512], 0);
}

static void test_get_id(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(request(f, T_GET_ID, 0, 20), 0);
	assert_memory_equal(data_of(f, 0), "test-disk-id\0", 13);
}

static void test_bounds(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(request(f, T_IN, DISK_SIZE / 512 - 1, 1024), 1); /* past the end */
	assert_int_equal(request(f, T_IN, UINT64_MAX, 512), 1);
	assert_int_equal(request(f, T_OUT, 0, 100), 1);			 /* not whole sectors */
	assert_int_equal(request(f, T_IN, DISK_SIZE / 512 - 1, 512), 0); /* the last sector */
	assert_int_equal(request(f, 99, 0, 0), 2);			 /* unsupported */
	set_segment(f, DISK_SIZE / 512 - 1, 2, 0);
	assert_int_equal(request(f, T_DISCARD, 0, 16), 1);
	set_segment(f, 0, 1, 1); /* discard with the unmap flag: not allowed */
	assert_int_equal(request(f, T_DISCARD, 0, 16), 2);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_many_in_flight(void **state)
{
	struct fixture *f = *state;

	for (unsigned int s = 0; s < 20; s++) {
		memset(data_of(f, s), (int)s + 1, 4096);
		post(f, s, T_OUT, 8ULL * s, 4096);
	}
	kick_and_wait(f);
	for (unsigned int s = 0; s < 20; s++) {
		assert_int_equal(status_of(f, s), 0);
		memset(data_of(f, s), 0, 4096);
		post(f, s, T_IN, 8ULL * s, 4096);
	}
	kick_and_wait(f);
	for (unsigned int s = 0; s < 20; s++) {
		assert_int_equal(status_of(f, s), 0);
		assert_int_equal(data_of(f, s)[0], s + 1);
		assert_int_equal(data_of(f, s)[4095], s + 1);
	}
}

/*
 * Pause drains: once it returns, every request the device had taken is
 * finished and in the used ring (none completes while paused), and
 * requests queued while paused wait for resume.
 */
static void test_pause_drains_in_flight(void **state)
{
	struct fixture *f = *state;
	uint16_t at_pause;

	/* Queued while paused, so that the device takes all 16 at once when it resumes. */
	f->dev->ops->pause(f->dev);
	for (unsigned int s = 0; s < 16; s++) {
		memset(data_of(f, s), (int)s + 1, 0x10000);
		post(f, s, s % 4 == 3 ? T_FLUSH : T_OUT, 128ULL * s, s % 4 == 3 ? 0 : 0x10000);
	}
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	f->dev->ops->resume(f->dev);
	for (int i = 0; i < 50000 && fake_used_idx(&f->r) == 0; i++)
		usleep(100); /* taken: the first one finished */
	assert_true(fake_used_idx(&f->r) > 0);
	f->dev->ops->pause(f->dev);
	at_pause = fake_used_idx(&f->r);
	assert_int_equal(at_pause, 16);	       /* all of them, not just those done by chance */
	for (unsigned int s = 16; s < 20; s++) /* what slots 0, 1, 2 and 4 wrote (3 flushed) */
		post(f, s, T_IN, 128ULL * (s - 16 + (s == 19)), 4096);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	usleep(100 * 1000);
	assert_int_equal(fake_used_idx(&f->r), 16);
	assert_int_equal(data_of(f, 16)[0], 0);
	f->dev->ops->resume(f->dev);
	for (int i = 0; i < 5000 && fake_used_idx(&f->r) != 20; i++)
		usleep(1000);
	assert_int_equal(fake_used_idx(&f->r), 20);
	for (unsigned int s = 16; s < 20; s++) {
		assert_int_equal(status_of(f, s), 0);
		assert_int_equal(data_of(f, s)[0], s - 16 + 1 + (s == 19));
	}
}

/* 32 KiB every 50 ms: 640 KiB/s. */
static int setup_limited(void **state)
{
	disk_limit = (struct rl_config){.bw = {.size = 32768, .refill_ms = 50}};
	return engine(false) ?: open_disk(state, false, DISK_CACHE_WRITEBACK);
}

/* One operation per second. */
static int setup_limited_ops(void **state)
{
	disk_limit = (struct rl_config){.ops = {.size = 1, .refill_ms = 1000}};
	return engine(false) ?: open_disk(state, false, DISK_CACHE_WRITEBACK);
}

static int teardown_limited(void **state)
{
	disk_limit = (struct rl_config){0};
	return teardown(state);
}

static void wait_used(struct fixture *f, uint16_t n, int ms)
{
	for (int i = 0; i < ms && fake_used_idx(&f->r) != n; i++)
		usleep(1000);
	assert_int_equal(fake_used_idx(&f->r), n);
}

/*
 * A throttled disk serves writes at its limiter's rate: the full bucket
 * (two 16 KiB writes) at once, then one write each time the bucket has
 * refilled 16 KiB (25 ms), each wait counted.
 */
static void test_throttle_holds_rate(void **state)
{
	struct fixture *f = *state;
	uint64_t t0, ms, waits;

	for (unsigned int s = 0; s < 10; s++)
		post(f, s, T_OUT, 64ULL * s, 16384);
	t0 = now_ns();
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	/* The full bucket at once; a third only once 16 KiB have refilled
	 * (25 ms after the start: a device thread that ran late may by then
	 * have served it on time). */
	for (int i = 0; i < 1000 && (uint16_t)(fake_used_idx(&f->r) - 2) >= 0x8000; i++)
		usleep(1000);
	ms = (now_ns() - t0) / 1000000;
	assert_true(fake_used_idx(&f->r) == 2 || (fake_used_idx(&f->r) > 2 && ms >= 25));
	wait_used(f, 10, 3000);
	ms = (now_ns() - t0) / 1000000;
	print_message("# 8 throttled 16 KiB writes took %llu ms (200 expected)\n",
		      (unsigned long long)ms);
	assert_true(ms >= 190 && ms < 1000);
	waits = atomic_load(&f->dev->stats.throttled[DEV_DIR_OUT]);
	assert_true(waits >= 4 && waits <= 8);
	assert_int_equal(atomic_load(&f->dev->stats.throttled[DEV_DIR_IN]), 0);
	assert_true(atomic_load(&f->dev->stats.throttled_ns[DEV_DIR_OUT]) >= 150000000ULL);
	for (unsigned int s = 0; s < 10; s++)
		assert_int_equal(status_of(f, s), 0);
}

/*
 * A throttled disk parks and resumes as any other (nothing completes
 * while paused, even when its timer fires), and a new limiter applies at
 * once: a waiting request goes as soon as the limit is lifted.
 */
static void test_throttle_pause_and_update(void **state)
{
	struct fixture *f = *state;
	struct rl_config none = {0};
	uint64_t t0;

	post(f, 0, T_FLUSH, 0, 0);
	post(f, 1, T_FLUSH, 0, 0);
	post(f, 2, T_FLUSH, 0, 0);
	t0 = now_ns();
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wait_used(f, 1, 1000);
	f->dev->ops->pause(f->dev);
	f->dev->ops->resume(f->dev);
	f->dev->ops->pause(f->dev);
	usleep(50 * 1000);
	assert_int_equal(fake_used_idx(&f->r), 1); /* the second waits for its second */
	assert_int_equal(virtio_set_rate_limit(virtio_mmio_vdev(f->dev), 0, &none), 0);
	usleep(50 * 1000);
	assert_int_equal(fake_used_idx(&f->r), 1); /* paused: not even now */
	f->dev->ops->resume(f->dev);
	wait_used(f, 3, 1000);
	assert_true(now_ns() - t0 < 900000000ULL); /* not after the limiter's second */
	assert_int_equal(atomic_load(&f->dev->stats.throttled[DEV_DIR_OUT]), 1);
	assert_int_equal(virtio_set_rate_limit(virtio_mmio_vdev(f->dev), 1, &none), -EINVAL);
}

/*
 * Used-buffer interrupts with EVENT_IDX (which bring_up negotiates): a
 * completion after the driver re-enabled callbacks interrupts; one the
 * driver asked to skip does not; a batch interrupts once.
 */
static void test_event_idx_interrupts(void **state)
{
	struct fixture *f = *state;
	unsigned int before;

	assert_int_equal(request(f, T_GET_ID, 0, 20), 0); /* the first always interrupts */
	fake_set_used_event(&f->r, fake_used_idx(&f->r)); /* re-enabled, all seen */
	before = atomic_load(&irq_edges);
	assert_int_equal(request(f, T_IN, 0, 4096), 0);
	assert_int_equal(atomic_load(&irq_edges), before + 1);

	fake_set_used_event(&f->r, (uint16_t)(fake_used_idx(&f->r) + 5)); /* later, please */
	before = atomic_load(&irq_edges);
	assert_int_equal(request(f, T_IN, 0, 4096), 0);
	assert_int_equal(atomic_load(&irq_edges), before);

	/* 16 reads at once, the driver wanting to hear about the first: one interrupt. */
	fake_set_used_event(&f->r, fake_used_idx(&f->r));
	before = atomic_load(&irq_edges);
	for (unsigned int s = 0; s < 16; s++)
		post(f, s, T_IN, 8ULL * s, 4096);
	kick_and_wait(f);
	assert_true(atomic_load(&irq_edges) >= before + 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS) & 1, 1);
}

/* A request with SEG_MAX (254) data segments, as Linux builds for 1 MiB. */
static void test_seg_max_request(void **state)
{
	struct fixture *f = *state;
	struct {
		uint32_t type, ioprio;
		uint64_t sector;
	} h = {T_OUT, 0, 16};
	const uint64_t table = FAKE_DATA + 0x200000; /* an indirect table */
	uint16_t n = 254 + 2;

	memset(fake_ptr(&f->r, DATA(0)), 0x5a, 254 * 512);
	memcpy(fake_ptr(&f->r, HDR(0)), &h, sizeof(h));
	fake_desc(&f->r, table, 0, HDR(0), 16, VRING_DESC_F_NEXT, 1);
	for (uint16_t i = 1; i <= 254; i++)
		fake_desc(&f->r, table, i, DATA(0) + 512ULL * (i - 1), 512, VRING_DESC_F_NEXT,
			  i + 1);
	fake_desc(&f->r, table, n - 1, HDR(0) + 0x20, 1, VRING_DESC_F_WRITE, 0);
	fake_desc(&f->r, FAKE_DESC, 0, table, 16U * n, VRING_DESC_F_INDIRECT, 0);
	fake_make_avail(&f->r, 0);
	f->posted++;
	kick_and_wait(f);
	assert_int_equal(status_of(f, 0), 0);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(request(f, T_IN, 16 + 253, 512), 0);
	assert_int_equal(data_of(f, 0)[511], 0x5a);
}

static blkcnt_t blocks(struct fixture *f)
{
	struct stat st;

	assert_int_equal(fstat(f->fd, &st), 0);
	return st.st_blocks;
}

static void fill_file(struct fixture *f, uint64_t off, uint64_t len)
{
	static uint8_t ones[65536];

	memset(ones, 0x5a, sizeof(ones));
	for (uint64_t o = 0; o < len; o += sizeof(ones))
		assert_int_equal(pwrite(f->fd, ones, sizeof(ones), (off_t)(off + o)),
				 (ssize_t)sizeof(ones));
	fsync(f->fd);
}

static bool file_zero(struct fixture *f, uint64_t off, uint64_t len)
{
	uint8_t buf[4096];

	for (uint64_t o = 0; o < len; o += sizeof(buf)) {
		assert_int_equal(pread(f->fd, buf, sizeof(buf), (off_t)(off + o)),
				 (ssize_t)sizeof(buf));
		for (unsigned int i = 0; i < sizeof(buf); i++)
			if (buf[i])
				return false;
	}
	return true;
}

static void test_discard_punches_holes(void **state)
{
	struct fixture *f = *state;
	blkcnt_t before;

	fill_file(f, 1 << 20, 1 << 20);
	before = blocks(f);
	set_segment(f, (1 << 20) / 512, (1 << 20) / 512, 0);
	assert_int_equal(request(f, T_DISCARD, 0, 16), 0);
	assert_true(blocks(f) <= before - 2000); /* 1 MiB = 2048 blocks of 512 bytes freed */
	assert_true(file_zero(f, 1 << 20, 1 << 20));
}

static void test_write_zeroes(void **state)
{
	struct fixture *f = *state;
	blkcnt_t before;

	fill_file(f, 2 << 20, 1 << 20);
	set_segment(f, (2 << 20) / 512, 1024, 0); /* 512 KiB, no unmap */
	assert_int_equal(request(f, T_WRITE_ZEROES, 0, 16), 0);
	assert_true(file_zero(f, 2 << 20, 512 << 10));
	assert_false(file_zero(f, (2 << 20) + (512 << 10), 4096));
	before = blocks(f);
	set_segment(f, ((2 << 20) + (512 << 10)) / 512, 1024, 1); /* with unmap: a hole */
	assert_int_equal(request(f, T_WRITE_ZEROES, 0, 16), 0);
	assert_true(file_zero(f, (2 << 20) + (512 << 10), 512 << 10));
	assert_true(blocks(f) < before);
}

static void test_read_only(void **state)
{
	struct fixture *f = *state;
	uint64_t feat = features(f);

	assert_true(feat & (1ULL << 5));   /* RO */
	assert_false(feat & (1ULL << 13)); /* no DISCARD */
	memset(data_of(f, 0), 0x77, 512);
	assert_int_equal(request(f, T_OUT, 0, 512), 1);
	set_segment(f, 0, 8, 0);
	assert_int_equal(request(f, T_DISCARD, 0, 16), 1);
	assert_true(file_zero(f, 0, 4096));
	assert_int_equal(request(f, T_IN, 0, 512), 0);
	assert_int_equal(request(f, T_FLUSH, 0, 0), 0);
}

static void test_direct_bounce(void **state)
{
	struct fixture *f = *state;
	struct {
		uint32_t type, ioprio;
		uint64_t sector;
	} h = {T_OUT, 0, 16};
	uint8_t buf[512];
	uint32_t v;

	if (!f) {
		skip();
		return;
	}
	f->dev->ops->read(f->dev, VIRTIO_MMIO_CONFIG + 20, &v, 4);
	assert_int_equal(v, 4096); /* cache=none: the guest is asked for 4 KiB blocks */
	/* A 512-byte write from an odd guest address: must go through a bounce buffer. */
	memcpy(fake_ptr(&f->r, HDR(0)), &h, sizeof(h));
	memset(fake_ptr(&f->r, DATA(0) + 3), 0x42, 512);
	fake_desc(&f->r, FAKE_DESC, 0, HDR(0), 16, VRING_DESC_F_NEXT, 1);
	fake_desc(&f->r, FAKE_DESC, 1, DATA(0) + 3, 512, VRING_DESC_F_NEXT, 2);
	fake_desc(&f->r, FAKE_DESC, 2, HDR(0) + 0x20, 1, VRING_DESC_F_WRITE, 0);
	fake_make_avail(&f->r, 0);
	f->posted++;
	kick_and_wait(f);
	assert_int_equal(status_of(f, 0), 0);
	assert_int_equal(pread(f->fd, buf, 512, 16 * 512), 512);
	assert_int_equal(buf[0], 0x42);
	assert_int_equal(buf[511], 0x42);
	/* Aligned I/O goes straight to guest memory. */
	memset(data_of(f, 1), 0, 8192);
	post(f, 1, T_IN, 16, 8192);
	kick_and_wait(f);
	assert_int_equal(status_of(f, 1), 0);
	assert_int_equal(data_of(f, 1)[0], 0x42);
}

static void test_malformed_request(void **state)
{
	struct fixture *f = *state;

	/* A header but no status byte (nothing device-writable). */
	fake_desc(&f->r, FAKE_DESC, 0, HDR(0), 16, 0, 0);
	fake_make_avail(&f->r, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	for (int i = 0; i < 2000 && !(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(fake_used_idx(&f->r), 0);
}

/*
 * Reads and get-id whose data buffers are device-readable: the device must
 * not write into buffers the driver lent read-only, nor report bytes
 * written beyond the chain's writable ones (found by fuzz_virtio_blk).
 */
static void test_no_writes_to_readable_buffers(void **state)
{
	static const uint32_t types[] = {T_GET_ID, T_IN};
	struct fixture *f = *state;
	uint32_t id, len;

	assert_int_equal(pwrite(f->fd, "disk bytes", 10, 0), 10);
	for (unsigned int i = 0; i < 2; i++) {
		struct {
			uint32_t type, ioprio;
			uint64_t sector;
		} h = {types[i], 0, 0};
		uint16_t d = (uint16_t)(3 * i);

		memcpy(fake_ptr(&f->r, HDR(i)), &h, sizeof(h));
		memset(data_of(f, i), 0x5a, 512);
		fake_desc(&f->r, FAKE_DESC, d, HDR(i), 16, VRING_DESC_F_NEXT, d + 1);
		fake_desc(&f->r, FAKE_DESC, d + 1, DATA(i), 512, VRING_DESC_F_NEXT, d + 2);
		fake_desc(&f->r, FAKE_DESC, d + 2, HDR(i) + 0x20, 1, VRING_DESC_F_WRITE, 0);
		fake_make_avail(&f->r, d);
		f->posted++;
		kick_and_wait(f);
		fake_used_elem(&f->r, (uint16_t)i, &id, &len);
		assert_int_equal(id, d);
		assert_true(len <= 1); /* the status byte is all that is writable */
		assert_int_not_equal(status_of(f, i), 0);
		for (unsigned int j = 0; j < 512; j++)
			assert_int_equal(data_of(f, i)[j], 0x5a);
	}
}

static void test_missing_file(void **state)
{
	struct disk_config d = {.path = "/nonexistent/disk.img"};

	(void)state;
	assert_null(virtio_blk_create(&d, 0, NULL));
	d.path = ".";
	assert_null(virtio_blk_create(&d, 0, NULL)); /* a directory */
}

/* A disk with an overlay: the guest reads and writes it, the base file never changes. */
static void test_overlay(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[4096];
	struct stat st;

	assert_true(features(f) & (1ULL << 14)); /* WRITE_ZEROES, as without an overlay */
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(pwrite(f->fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	/* 512 bytes into the middle of a 4 KiB cluster of the base. */
	memset(data_of(f, 0), 0xa5, 512);
	assert_int_equal(request(f, T_OUT, 3, 512), 0);
	memset(data_of(f, 0), 0, 4096);
	assert_int_equal(request(f, T_IN, 0, 4096), 0);
	assert_int_equal(data_of(f, 0)[0], 0x5a);	/* the base, around the write */
	assert_int_equal(data_of(f, 0)[3 * 512], 0xa5); /* the write */
	assert_int_equal(data_of(f, 0)[4 * 512], 0x5a);
	assert_int_equal(pread(f->fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	assert_int_equal(buf[3 * 512], 0x5a); /* the base is untouched */
	/* Discard is a hint (the data stays); write-zeroes zeroes. */
	set_segment(f, 0, 8, 0);
	assert_int_equal(request(f, T_DISCARD, 0, 16), 0);
	assert_int_equal(request(f, T_WRITE_ZEROES, 0, 16), 0);
	assert_int_equal(request(f, T_IN, 0, 4096), 0);
	for (unsigned int i = 0; i < 4096; i++)
		assert_int_equal(data_of(f, 0)[i], 0);
	assert_int_equal(request(f, T_FLUSH, 0, 0), 0);
	assert_int_equal(pread(f->fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	assert_int_equal(buf[0], 0x5a);
	assert_int_equal(stat(f->overlay, &st), 0);
	assert_int_equal(st.st_size, DISK_SIZE);
}

/* An overlay's base is only read: a VM writing the image keeps overlays off it, and back. */
static void test_overlay_base_locks(void **state)
{
	struct fixture *f = *state;
	struct disk_config d = {.path = f->path};

	assert_null(virtio_blk_create(&d, 1, NULL)); /* a writer while an overlay reads the base */
	d.read_only = true;
	struct virtio_dev *ro = virtio_blk_create(&d, 1, NULL); /* other readers are fine */
	assert_non_null(ro);
	ro->ops->destroy(ro);
	d = (struct disk_config){.path = f->path, .overlay = f->overlay};
	assert_null(virtio_blk_create(&d, 1, NULL)); /* the overlay itself is one VM's */
}

/*
 * cache=none bounces a misaligned request through an aligned buffer as large
 * as the request; a chain of overlapping segments makes one far larger than
 * guest memory. Past the disk's budget (16 MiB) it fails with IOERR instead
 * of making the VMM allocate it; a smaller one still works.
 */
static void misaligned_read(struct fixture *f, unsigned int nseg, uint32_t seg_len)
{
	struct {
		uint32_t type, ioprio;
		uint64_t sector;
	} h = {T_IN, 0, 0};
	unsigned int i;

	memcpy(fake_ptr(&f->r, HDR(0)), &h, sizeof(h));
	fake_desc(&f->r, FAKE_DESC, 0, HDR(0), 16, VRING_DESC_F_NEXT, 1);
	for (i = 1; i <= nseg; i++) /* every segment the same odd guest address */
		fake_desc(&f->r, FAKE_DESC, i, DATA(0) + 3, seg_len,
			  VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, (uint16_t)(i + 1));
	fake_desc(&f->r, FAKE_DESC, i, HDR(0) + 0x20, 1, VRING_DESC_F_WRITE, 0);
	*(uint8_t *)fake_ptr(&f->r, HDR(0) + 0x20) = 0xee;
	fake_make_avail(&f->r, 0);
	f->posted++;
	kick_and_wait(f);
}

static void test_direct_bounce_budget(void **state)
{
	struct fixture *f = *state;

	if (!f) {
		skip();
		return;
	}
	misaligned_read(f, 17, 1U << 20); /* 17 MiB */
	assert_int_equal(status_of(f, 0), 1);
	misaligned_read(f, 2, 1U << 20); /* 2 MiB: the budget was given back */
	assert_int_equal(status_of(f, 0), 0);
}

#define BOTH(fn, su, su_t)                                                                         \
	cmocka_unit_test_setup_teardown(fn, su, teardown),                                         \
	    cmocka_unit_test_setup_teardown(fn, su_t, teardown)
#define T(fn) BOTH(fn, setup, setup_t)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_config),
	    T(test_write_read),
	    T(test_header_split_across_descriptors),
	    T(test_get_id),
	    T(test_bounds),
	    T(test_many_in_flight),
	    T(test_pause_drains_in_flight),
	    T(test_event_idx_interrupts),
	    T(test_seg_max_request),
	    T(test_discard_punches_holes),
	    T(test_write_zeroes),
	    BOTH(test_read_only, setup_ro, setup_ro_t),
	    BOTH(test_direct_bounce, setup_direct, setup_direct_t),
	    BOTH(test_direct_bounce_budget, setup_direct, setup_direct_t),
	    T(test_malformed_request),
	    T(test_no_writes_to_readable_buffers),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test_setup_teardown(test_overlay, setup_overlay, teardown),
	    cmocka_unit_test_setup_teardown(test_overlay_base_locks, setup_overlay, teardown),
	    cmocka_unit_test_setup_teardown(test_many_in_flight, setup_overlay, teardown),
	    cmocka_unit_test_setup_teardown(test_bounds, setup_overlay, teardown),
	    cmocka_unit_test_setup_teardown(test_throttle_holds_rate, setup_limited,
					    teardown_limited),
	    cmocka_unit_test_setup_teardown(test_throttle_pause_and_update, setup_limited_ops,
					    teardown_limited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
