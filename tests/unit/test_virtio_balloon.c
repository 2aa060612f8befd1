/*
 * Unit tests for virtio/balloon.c through its virtio-mmio transport, with
 * a driver's rings in a fake guest memory: pages given back read zero,
 * the queue indices Linux uses, a hostile driver's page numbers and
 * descriptors, statistics, the configuration and the saved state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "virtio/mmio.h"
#include "virtio/virtio.h"
#include "vmm/state.h"
#include "vmm/vm.h"

#define GPA	 0x100000ULL
#define MEM_SIZE (8ULL << 20)
#define QSIZE	 16
#define RING(q)	 (GPA + 0x10000ULL * (q)) /* desc; avail +0x4000, used +0x6000 */
#define BUFS	 (GPA + 0x80000ULL)	  /* page-number arrays, statistics */
#define DATA	 (GPA + 0x100000ULL)	  /* the pages given back */
#define DATA_PFN (DATA >> 12)
#define BASE	 0xd0000000ULL
#define GSI	 5

#define F_STATS	    (1ULL << 1)
#define F_REPORTING (1ULL << 5)

static void fake_set_irq(struct dev_host *host, uint32_t gsi, bool level)
{
	(void)host;
	(void)gsi;
	(void)level;
}

static void fake_request(struct dev_host *host, enum vm_request req)
{
	(void)host;
	(void)req;
}

static struct dev_host fake_host = {.set_irq = fake_set_irq, .request = fake_request};

struct fixture {
	uint8_t *mem;
	struct guest_mem gm;
	struct device *dev;
	struct virtio_dev *vdev;
	uint16_t avail[4];
};

static void *ptr(struct fixture *f, uint64_t gpa)
{
	return f->mem + (gpa - GPA);
}

static uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v = 0;

	f->dev->ops->read(f->dev, off, &v, 4);
	return v;
}

static void wr(struct fixture *f, uint64_t off, uint32_t v)
{
	f->dev->ops->write(f->dev, off, &v, 4);
}

static void queue_up(struct fixture *f, unsigned int q)
{
	wr(f, VIRTIO_MMIO_QUEUE_SEL, q);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)RING(q));
	wr(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)(RING(q) + 0x4000));
	wr(f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)(RING(q) + 0x6000));
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* Negotiate @feat (and VERSION_1) and set up @nq queues, as Linux does. */
static void bring_up(struct fixture *f, uint64_t feat, unsigned int nq)
{
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)feat);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1); /* VERSION_1 */
	wr(f, VIRTIO_MMIO_STATUS, 0xb);
	for (unsigned int q = 0; q < nq; q++)
		queue_up(f, q);
	wr(f, VIRTIO_MMIO_STATUS, 0xf);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0xf);
}

static struct fixture *make(const struct balloon_config *c)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(f->mem != MAP_FAILED);
	assert_int_equal(gm_add_region(&f->gm, GPA, MEM_SIZE, f->mem), 0);
	f->vdev = virtio_balloon_create(c, &f->gm);
	assert_non_null(f->vdev);
	f->dev = virtio_mmio_create(&fake_host, &f->gm, f->vdev, BASE, GSI);
	assert_non_null(f->dev);
	return f;
}

static void drop(struct fixture *f)
{
	f->dev->ops->destroy(f->dev);
	munmap(f->mem, MEM_SIZE);
	free(f);
}

static void desc(struct fixture *f, unsigned int q, uint16_t i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};

	memcpy(ptr(f, RING(q) + 16ULL * i), &d, sizeof(d));
}

static uint16_t used_idx(struct fixture *f, unsigned int q)
{
	return __atomic_load_n((uint16_t *)ptr(f, RING(q) + 0x6000 + 2), __ATOMIC_ACQUIRE);
}

/* Make chain @head of queue @q available, kick, wait for @want used entries. */
static void kick(struct fixture *f, unsigned int q, uint16_t head, uint16_t want)
{
	uint16_t *avail = ptr(f, RING(q) + 0x4000);

	avail[2 + f->avail[q] % QSIZE] = head;
	f->avail[q]++;
	__atomic_store_n(&avail[1], f->avail[q], __ATOMIC_RELEASE);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	for (int i = 0; i < 5000 && used_idx(f, q) != want; i++)
		usleep(1000);
	assert_int_equal(used_idx(f, q), want);
}

static bool page_is(struct fixture *f, uint64_t pfn, uint8_t v)
{
	const uint8_t *p = ptr(f, pfn << 12);

	for (size_t i = 0; i < 4096; i++)
		if (p[i] != v)
			return false;
	return true;
}

static struct virtio_balloon_info info(struct fixture *f)
{
	struct virtio_balloon_info in;

	assert_int_equal(virtio_balloon_info(f->vdev, &in), 0);
	return in;
}

/* Linux's virtio-mmio numbers only the queues it uses (5.5.2 lists them with gaps). */
static void test_queue_roles(void **state)
{
	(void)state;
	assert_int_equal(virtio_balloon_queue_role(0, 0), 0);
	assert_int_equal(virtio_balloon_queue_role(0, 1), 1);
	assert_int_equal(virtio_balloon_queue_role(0, 2), -1);
	assert_int_equal(virtio_balloon_queue_role(F_STATS | F_REPORTING, 2), 2);
	assert_int_equal(virtio_balloon_queue_role(F_STATS | F_REPORTING, 3), 4);
	assert_int_equal(virtio_balloon_queue_role(F_REPORTING, 2), 4);
	assert_int_equal(virtio_balloon_queue_role(F_REPORTING, 3), -1);
	assert_int_equal(virtio_balloon_queue_role(F_STATS, 3), -1);
}

/*
 * Inflating: the pages named read zero afterwards, their neighbours keep
 * their data; a page number outside RAM (the MMIO hole, past the end, a
 * garbage value) is refused without harm.
 */
static void test_inflate_releases(void **state)
{
	struct balloon_config c = {.enabled = true, .reporting = true};
	struct fixture *f = make(&c);
	uint32_t pfns[] = {DATA_PFN + 2, DATA_PFN,   DATA_PFN + 1,
			   DATA_PFN + 5, 0xffffffff, (uint32_t)(0xd0000000ULL >> 12),
			   DATA_PFN + 1};

	(void)state;
	bring_up(f, F_REPORTING, 3);
	memset(ptr(f, DATA), 0xaa, 8 * 4096);
	memcpy(ptr(f, BUFS), pfns, sizeof(pfns));
	desc(f, 0, 0, BUFS, sizeof(pfns), 0, 0);
	kick(f, 0, 0, 1);
	for (uint64_t p = 0; p < 8; p++)
		assert_true(page_is(f, DATA_PFN + p, p <= 2 || p == 5 ? 0 : 0xaa));
	assert_int_equal(info(f).refused, 2);
	assert_int_equal(info(f).inflates, 1);
	assert_int_equal(info(f).released_bytes, 4 * 4096);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
	/* Deflating gives nothing back and needs nothing: counted only. */
	desc(f, 1, 0, BUFS, 8, 0, 0);
	kick(f, 1, 0, 1);
	assert_int_equal(info(f).deflates, 1);
	drop(f);
}

/*
 * Free page reporting without the statistics queue is queue index 2;
 * contiguous reported ranges are released, the others untouched.
 */
static void test_reporting(void **state)
{
	struct balloon_config c = {.enabled = true, .reporting = true};
	struct fixture *f = make(&c);

	(void)state;
	bring_up(f, F_REPORTING, 3);
	memset(ptr(f, DATA), 0xaa, 64 * 4096);
	desc(f, 2, 0, DATA, 16 * 4096, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc(f, 2, 1, DATA + 16 * 4096, 16 * 4096, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	desc(f, 2, 2, DATA + 48 * 4096, 8 * 4096, VRING_DESC_F_WRITE, 0);
	kick(f, 2, 0, 1);
	for (uint64_t p = 0; p < 64; p++)
		assert_true(page_is(f, DATA_PFN + p, p < 32 || (p >= 48 && p < 56) ? 0 : 0xaa));
	assert_int_equal(info(f).reported_bytes, 40 * 4096);
	assert_int_equal(info(f).reports, 1);
	drop(f);
}

/* A malformed chain breaks the balloon (NEEDS_RESET), never the VMM, and releases nothing. */
static void test_malformed_chain(void **state)
{
	struct balloon_config c = {.enabled = true, .reporting = true};
	struct fixture *f = make(&c);
	uint16_t *avail;

	(void)state;
	bring_up(f, F_REPORTING, 3);
	memset(ptr(f, DATA), 0xaa, 4096);
	/* A loop: 0 -> 1 -> 0. */
	desc(f, 2, 0, DATA, 4096, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc(f, 2, 1, DATA, 4096, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	avail = ptr(f, RING(2) + 0x4000);
	avail[2] = 0;
	__atomic_store_n(&avail[1], 1, __ATOMIC_RELEASE);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 2);
	for (int i = 0; i < 5000 && !(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(page_is(f, DATA_PFN, 0xaa));
	assert_int_equal(used_idx(f, 2), 0);
	drop(f);
}

/* Statistics: values kept by tag, unknown tags ignored, the buffer returned at the interval. */
static void test_statistics(void **state)
{
	struct balloon_config c = {.enabled = true, .stats_interval_s = 1, .reporting = true};
	struct fixture *f = make(&c);
	uint8_t buf[30] = {0};
	struct virtio_balloon_info in;

	(void)state;
	bring_up(f, F_STATS | F_REPORTING, 4);
	buf[0] = BALLOON_STAT_MEMFREE;
	buf[2] = 123;
	buf[10] = 99; /* unknown */
	buf[12] = 7;
	buf[20] = BALLOON_STAT_MEMTOT;
	buf[23] = 1; /* 256 */
	memcpy(ptr(f, BUFS), buf, sizeof(buf));
	desc(f, 2, 0, BUFS, sizeof(buf), 0, 0);
	kick(f, 2, 0, 0); /* held: nothing used yet */
	for (int i = 0; i < 2000 && info(f).stats_updates == 0; i++)
		usleep(1000);
	in = info(f);
	assert_int_equal(in.stats_updates, 1);
	assert_true(in.has_stat[BALLOON_STAT_MEMFREE] && in.has_stat[BALLOON_STAT_MEMTOT]);
	assert_int_equal(in.stat[BALLOON_STAT_MEMFREE], 123);
	assert_int_equal(in.stat[BALLOON_STAT_MEMTOT], 256);
	assert_false(in.has_stat[BALLOON_STAT_SWAP_IN]);
	/* The interval (1 s) hands the buffer back for a refill. */
	for (int i = 0; i < 3000 && used_idx(f, 2) == 0; i++)
		usleep(1000);
	assert_int_equal(used_idx(f, 2), 1);
	/* Reporting moved to index 3 with statistics. */
	memset(ptr(f, DATA), 0xaa, 4096);
	desc(f, 3, 0, DATA, 4096, VRING_DESC_F_WRITE, 0);
	kick(f, 3, 0, 1);
	assert_true(page_is(f, DATA_PFN, 0));
	/* Statistics cannot be switched off: the queue was negotiated. */
	assert_int_equal(virtio_balloon_set_stats_interval(f->vdev, 0), -EINVAL);
	assert_int_equal(virtio_balloon_set_stats_interval(f->vdev, 5), 0);
	drop(f);
}

/* The target reaches the config space; one larger than RAM is refused; actual is capped. */
static void test_config_and_state(void **state)
{
	struct balloon_config c = {.enabled = true, .amount_mib = 2};
	struct fixture *f = make(&c), *g;
	uint32_t v = 100000;
	struct state_io io, ld;

	(void)state;
	bring_up(f, 0, 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG), 512);
	assert_int_equal(virtio_balloon_set_target(f->vdev, 4), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG), 1024);
	assert_int_equal(virtio_balloon_set_target(f->vdev, 9), -ERANGE);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG), 1024);
	f->dev->ops->write(f->dev, VIRTIO_MMIO_CONFIG + 4, &v, 4);
	assert_int_equal(info(f).actual_pages, MEM_SIZE >> 12); /* the guest's word, capped */
	v = 300;
	f->dev->ops->write(f->dev, VIRTIO_MMIO_CONFIG + 4, &v, 4);
	/* The state: target and actual come back in a new device. */
	state_io_saver(&io);
	assert_int_equal(f->vdev->ops->state(f->vdev, &io), 0);
	c.amount_mib = 0;
	g = make(&c);
	state_io_loader(&ld, io.buf, io.len);
	assert_int_equal(g->vdev->ops->state(g->vdev, &ld), 0);
	assert_int_equal(state_io_finish(&ld), 0);
	assert_int_equal(info(g).target_pages, 1024);
	assert_int_equal(info(g).actual_pages, 300);
	/* A saved target larger than this guest is refused. */
	io.buf[1] = 0xff, io.buf[2] = 0xff, io.buf[3] = 0xff;
	state_io_loader(&ld, io.buf, io.len);
	assert_int_equal(g->vdev->ops->state(g->vdev, &ld), -EBADMSG);
	state_io_free(&io);
	drop(g);
	drop(f);
}

/*
 * The statistics buffer the device holds at a snapshot is handed back
 * after the restore: the restored ring has it consumed, and the driver
 * sends no statistics again until it comes back.
 */
static void test_state_keeps_stats_buffer(void **state)
{
	struct balloon_config c = {.enabled = true, .stats_interval_s = 1};
	struct fixture *f = make(&c), *g = make(&c);
	uint8_t buf[10] = {BALLOON_STAT_MEMFREE, 0, 5};
	struct state_io io, ld;

	(void)state;
	bring_up(f, F_STATS, 3);
	memcpy(ptr(f, BUFS), buf, sizeof(buf));
	desc(f, 2, 3, BUFS, sizeof(buf), 0, 0);
	kick(f, 2, 3, 0); /* held */
	for (int i = 0; i < 2000 && info(f).stats_updates == 0; i++)
		usleep(1000);
	state_io_saver(&io);
	assert_int_equal(f->vdev->ops->state(f->vdev, &io), 0);
	drop(f);
	/* The restored machine: the same rings, the buffer already taken. */
	bring_up(g, F_STATS, 3);
	state_io_loader(&ld, io.buf, io.len);
	assert_int_equal(g->vdev->ops->state(g->vdev, &ld), 0);
	assert_int_equal(state_io_finish(&ld), 0);
	for (int i = 0; i < 3000 && used_idx(g, 2) == 0; i++)
		usleep(1000);
	assert_int_equal(used_idx(g, 2), 1);
	assert_int_equal(*(uint32_t *)ptr(g, RING(2) + 0x6000 + 4), 3); /* its head */
	state_io_free(&io);
	drop(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_queue_roles),
	    cmocka_unit_test(test_inflate_releases),
	    cmocka_unit_test(test_reporting),
	    cmocka_unit_test(test_malformed_chain),
	    cmocka_unit_test(test_statistics),
	    cmocka_unit_test(test_config_and_state),
	    cmocka_unit_test(test_state_keeps_stats_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
