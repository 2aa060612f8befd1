/* The virtio-mmio transport with the entropy device behind it: registers, negotiation, queues,
 * interrupts, NEEDS_RESET, state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fake_ring.h"
#include "util/clock.h"
#include "util/token_bucket.h"
#include "virtio/mmio.h"
#include "vmm/state.h"

#define BASE  0xd0000000ULL
#define GSI   16
#define QSIZE 16

struct fake_host {
	struct dev_host host;
	int rising; /* edges on GSI through set_irq */
	bool wrong_gsi;
	int ioeventfds; /* registered, minus removed */
	uint64_t ioeventfd_addr;
	int irq_fd; /* the irqfd registered, or -1 */
};

static void fake_set_irq(struct dev_host *host, uint32_t gsi, bool level)
{
	struct fake_host *f = container_of(host, struct fake_host, host);

	if (gsi != GSI)
		f->wrong_gsi = true;
	if (level)
		f->rising++;
}

static void fake_request(struct dev_host *host, enum vm_request req)
{
	(void)host;
	(void)req;
}

static int fake_ioeventfd(struct dev_host *host, uint64_t addr, uint32_t len, uint64_t datamatch,
			  int fd, bool assign)
{
	struct fake_host *f = container_of(host, struct fake_host, host);

	(void)fd;
	if (len != 4 || datamatch != 0)
		return -EINVAL;
	f->ioeventfd_addr = addr;
	f->ioeventfds += assign ? 1 : -1;
	return 0;
}

static int fake_irqfd(struct dev_host *host, uint32_t gsi, int fd, int resample_fd, bool assign)
{
	struct fake_host *f = container_of(host, struct fake_host, host);

	if (gsi != GSI || resample_fd != -1)
		return -EINVAL;
	f->irq_fd = assign ? fd : -1;
	return 0;
}

struct fixture {
	struct fake_host host;
	struct fake_ring r;
	struct device *dev;
};

static int setup_with(void **state, bool kvm_fds)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->host.host.set_irq = fake_set_irq;
	f->host.host.request = fake_request;
	f->host.irq_fd = -1;
	if (kvm_fds) {
		f->host.host.ioeventfd = fake_ioeventfd;
		f->host.host.irqfd = fake_irqfd;
	}
	assert_int_equal(fake_ring_init(&f->r, QSIZE), 0);
	f->dev = virtio_mmio_create(&f->host.host, &f->r.gm, virtio_rng_create(NULL), BASE, GSI);
	assert_non_null(f->dev);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, false);
}

static int setup_kvm(void **state)
{
	return setup_with(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	f->dev->ops->destroy(f->dev);
	assert_int_equal(f->host.ioeventfds, 0); /* everything deregistered */
	assert_int_equal(f->host.irq_fd, -1);
	fake_ring_free(&f->r);
	free(f);
	return 0;
}

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

static void negotiate(struct fixture *f, uint64_t features)
{
	wr(f, VIRTIO_MMIO_STATUS, 0);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(f, VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

/* The whole bring-up a Linux driver does, with queue 0 on the fake ring. */
static void bring_up(struct fixture *f, uint64_t features)
{
	negotiate(f, features);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)FAKE_DESC);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(FAKE_DESC >> 32));
	wr(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)FAKE_AVAIL);
	wr(f, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
	wr(f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)FAKE_USED);
	wr(f, VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 1);
	wr(f, VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
	       VIRTIO_STATUS_DRIVER_OK);
}

#define F_V1  (1ULL << VIRTIO_F_VERSION_1)
#define F_EVT (1ULL << VIRTIO_F_RING_EVENT_IDX)
#define F_IND (1ULL << VIRTIO_F_RING_INDIRECT_DESC)

/* Wait (up to 2 s) for the device thread to return @n buffers in all. */
static bool wait_used(struct fixture *f, uint16_t n)
{
	for (int i = 0; i < 2000; i++) {
		if (fake_used_idx(&f->r) == n)
			return true;
		usleep(1000);
	}
	return false;
}

static void test_identity(void **state)
{
	struct fixture *f = *state;
	uint16_t narrow = 0x1234;

	assert_int_equal(rd(f, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(f, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	assert_int_equal(rd(f, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	f->dev->ops->read(f->dev, VIRTIO_MMIO_MAGIC_VALUE, &narrow, 2); /* registers are 32-bit */
	assert_int_equal(narrow, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG), 0); /* rng: no configuration space */
}

static void test_features(void **state)
{
	struct fixture *f = *state;
	uint64_t offered;

	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	offered = rd(f, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	offered |= (uint64_t)rd(f, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	assert_true(offered & F_V1);
	assert_true(offered & F_EVT);
	assert_true(offered & F_IND);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES), 0);

	negotiate(f, F_EVT); /* legacy driver: no VERSION_1 */
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	negotiate(f, F_V1 | (1ULL << 40)); /* a feature we never offered */
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	negotiate(f, F_V1 | F_EVT);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
}

static void test_queue_selector_checked(void **state)
{
	struct fixture *f = *state;

	negotiate(f, F_V1);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), 64);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 1); /* rng has one queue */
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0xffffffff);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffffffff); /* ignored, no crash */
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_queue_size_checked(void **state)
{
	struct fixture *f = *state;

	negotiate(f, F_V1);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 1024); /* above QueueNumMax */
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)FAKE_DESC);
	wr(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)FAKE_AVAIL);
	wr(f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)FAKE_USED);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
}

/* Post one chain of a single @len-byte writable buffer at FAKE_DATA + @off. */
static void post_rng(struct fixture *f, uint16_t d, uint64_t off, uint32_t len)
{
	fake_desc(&f->r, FAKE_DESC, d, FAKE_DATA + off, len, VRING_DESC_F_WRITE, 0);
	fake_make_avail(&f->r, d);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static void test_entropy_and_interrupt(void **state)
{
	struct fixture *f = *state;
	static const uint8_t zero[256];
	uint32_t id, len;

	bring_up(f, F_V1 | F_IND);
	post_rng(f, 2, 0, 256);
	assert_true(wait_used(f, 1));
	fake_used_elem(&f->r, 0, &id, &len);
	assert_int_equal(id, 2);
	assert_int_equal(len, 256);
	assert_memory_not_equal(fake_ptr(&f->r, FAKE_DATA), zero, 256);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_INT_USED);
	assert_int_equal(f->host.rising, 1);
	assert_false(f->host.wrong_gsi);
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_USED);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

/*
 * An entropy device limited to 2 requests per 200 ms: two at once (the
 * full bucket), then one every 100 ms, woken by its timer alone.
 */
static void test_entropy_rate_limited(void **state)
{
	struct fixture *f = *state;
	struct rl_config c = {.ops = {.size = 2, .refill_ms = 200}};
	uint64_t t0, ms;

	f->dev->ops->destroy(f->dev);
	f->dev = virtio_mmio_create(&f->host.host, &f->r.gm, virtio_rng_create(&c), BASE, GSI);
	assert_non_null(f->dev);
	bring_up(f, F_V1);
	t0 = now_ns();
	for (uint16_t d = 0; d < 6; d++)
		post_rng(f, d, 64ULL * d, 64);
	/* Two at once; a third only once a token has refilled, 100 ms after
	 * the start (a device thread that ran late may have served it then). */
	for (int i = 0; i < 1000 && (uint16_t)(fake_used_idx(&f->r) - 2) >= 0x8000; i++)
		usleep(1000);
	ms = (now_ns() - t0) / 1000000;
	assert_true(fake_used_idx(&f->r) == 2 || (fake_used_idx(&f->r) > 2 && ms >= 100));
	assert_true(wait_used(f, 6));
	ms = (now_ns() - t0) / 1000000;
	print_message("# 4 throttled entropy requests took %llu ms (400 expected)\n",
		      (unsigned long long)ms);
	assert_true(ms >= 380 && ms < 1500);
	assert_true(atomic_load(&f->dev->stats.throttled[DEV_DIR_IN]) >= 2);
}

static void test_malformed_chain_needs_reset(void **state)
{
	struct fixture *f = *state;

	bring_up(f, F_V1);
	fake_desc(&f->r, FAKE_DESC, 0, FAKE_GPA + FAKE_MEM_SIZE, 16, VRING_DESC_F_WRITE, 0);
	fake_make_avail(&f->r, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	for (int i = 0; i < 2000 && !(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);

	/* Broken: a good chain now is ignored. */
	post_rng(f, 1, 0, 16);
	usleep(50 * 1000);
	assert_int_equal(fake_used_idx(&f->r), 0);

	/* A reset and a fresh bring-up make it work again. */
	memset(f->r.mem, 0, 0x10000);
	f->r.avail_idx = 0;
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	bring_up(f, F_V1);
	post_rng(f, 1, 0, 16);
	assert_true(wait_used(f, 1));
}

static void test_event_idx_suppresses_interrupts(void **state)
{
	struct fixture *f = *state;

	bring_up(f, F_V1 | F_EVT);
	fake_set_used_event(&f->r, 2); /* interrupt only once the third buffer is used */
	post_rng(f, 0, 0, 8);
	assert_true(wait_used(f, 1));
	assert_int_equal(f->host.rising, 1); /* the first one always goes */
	post_rng(f, 1, 64, 8);
	assert_true(wait_used(f, 2));
	assert_int_equal(f->host.rising, 1);
	post_rng(f, 2, 128, 8);
	assert_true(wait_used(f, 3));
	assert_int_equal(f->host.rising, 2);
}

static void test_kvm_fds(void **state)
{
	struct fixture *f = *state;
	uint64_t v = 0;

	assert_int_equal(f->host.ioeventfds, 1);
	assert_int_equal(f->host.ioeventfd_addr, BASE + VIRTIO_MMIO_QUEUE_NOTIFY);
	assert_true(f->host.irq_fd >= 0);
	bring_up(f, F_V1);
	post_rng(f, 0, 0, 32);
	assert_true(wait_used(f, 1));
	assert_int_equal(f->host.rising, 0); /* the interrupt went through the irqfd */
	assert_int_equal(read(f->host.irq_fd, &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_INT_USED);
}

static void test_state_round_trip(void **state)
{
	struct fixture *f = *state;
	struct fake_host h2 = {.host = {.set_irq = fake_set_irq, .request = fake_request},
			       .irq_fd = -1};
	struct device *d2;
	struct state_io save, load;
	uint32_t v;

	bring_up(f, F_V1 | F_EVT);
	post_rng(f, 0, 0, 8);
	assert_true(wait_used(f, 1));
	state_io_saver(&save);
	assert_int_equal(f->dev->ops->state(f->dev, &save), 0);
	assert_int_equal(state_io_finish(&save), 0);

	d2 = virtio_mmio_create(&h2.host, &f->r.gm, virtio_rng_create(NULL), BASE, GSI);
	assert_non_null(d2);
	state_io_loader(&load, save.buf, save.len);
	assert_int_equal(d2->ops->state(d2, &load), 0);
	assert_int_equal(state_io_finish(&load), 0);
	d2->ops->read(d2, VIRTIO_MMIO_STATUS, &v, 4);
	assert_int_equal(v, rd(f, VIRTIO_MMIO_STATUS));
	d2->ops->read(d2, VIRTIO_MMIO_QUEUE_READY, &v, 4);
	assert_int_equal(v, 1);

	/* The restored device continues the same ring where the first left it. */
	fake_desc(&f->r, FAKE_DESC, 1, FAKE_DATA + 64, 8, VRING_DESC_F_WRITE, 0);
	fake_make_avail(&f->r, 1);
	v = 0;
	d2->ops->write(d2, VIRTIO_MMIO_QUEUE_NOTIFY, &v, 4);
	assert_true(wait_used(f, 2));

	/* A truncated state is refused. */
	state_io_loader(&load, save.buf, save.len - 3);
	assert_true(d2->ops->state(d2, &load) < 0 || state_io_finish(&load) < 0);
	d2->ops->destroy(d2);
	state_io_free(&save);
}

/*
 * A saved queue size is checked as a QueueNum write is: one above the
 * device's QueueNumMax is refused on load, active or not (a queue made
 * ready later would take it).
 */
static void test_state_queue_size_checked(void **state)
{
	struct fixture *f = *state;
	/* version, queues, status, 2 selectors, features, acked, QueueSel, generation, broken, ISR
	 */
	const size_t size_off = 1 + 1 + 4 + 4 + 4 + 8 + 8 + 4 + 4 + 1 + 4;
	struct state_io save, load;

	state_io_saver(&save);
	assert_int_equal(f->dev->ops->state(f->dev, &save), 0);
	assert_int_equal(state_io_finish(&save), 0);
	assert_true(save.len > size_off + 2);
	save.buf[size_off] = 128 & 0xff; /* le16 128: a power of two above the rng's 64 */
	save.buf[size_off + 1] = 128 >> 8;
	state_io_loader(&load, save.buf, save.len);
	assert_true(f->dev->ops->state(f->dev, &load) < 0);
	state_io_free(&save);
}

/* Negotiated features in a saved state are ones the device offers, as at FEATURES_OK. */
static void test_state_features_checked(void **state)
{
	struct fixture *f = *state;
	/* version, queues, status, 2 selectors, the driver's features: then the acked ones */
	const size_t acked_off = 1 + 1 + 4 + 4 + 4 + 8;
	struct state_io save, load;

	bring_up(f, F_V1);
	state_io_saver(&save);
	assert_int_equal(f->dev->ops->state(f->dev, &save), 0);
	assert_int_equal(state_io_finish(&save), 0);
	assert_true(save.len > acked_off + 8);
	save.buf[acked_off + 7] |= 0x40; /* bit 62: offered by no device */
	state_io_loader(&load, save.buf, save.len);
	assert_true(f->dev->ops->state(f->dev, &load) < 0);
	state_io_free(&save);
}

static void test_config_generation(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION), 0);
}

/*
 * Pause and resume (the transport's, for every device): a device whose
 * notify blocks until the test lets it go, so the test knows an operation
 * is running when it asks for the pause.
 */
struct slow_dev {
	struct virtio_dev vdev;
	atomic_int entered;  /* notify calls started */
	atomic_int finished; /* notify calls returned */
	atomic_int drains;
	int go_fd; /* blocking eventfd: each notify takes one count */
};

static void slow_notify(struct virtio_dev *vdev, unsigned int q)
{
	struct slow_dev *d = container_of(vdev, struct slow_dev, vdev);
	uint64_t v;

	(void)q;
	atomic_fetch_add(&d->entered, 1);
	assert_int_equal(read(d->go_fd, &v, sizeof(v)), sizeof(v));
	atomic_fetch_add(&d->finished, 1);
}

static void slow_drain(struct virtio_dev *vdev)
{
	struct slow_dev *d = container_of(vdev, struct slow_dev, vdev);

	/* The transport drains between operations, never inside one. */
	assert_int_equal(atomic_load(&d->entered), atomic_load(&d->finished));
	atomic_fetch_add(&d->drains, 1);
}

static void slow_config_read(struct virtio_dev *vdev, uint64_t off, void *data, uint32_t len)
{
	(void)vdev;
	virtio_config_bytes(NULL, 0, off, data, len);
}

static void slow_reset(struct virtio_dev *vdev)
{
	(void)vdev;
}

static int slow_state(struct virtio_dev *vdev, struct state_io *io)
{
	(void)vdev;
	(void)io;
	return 0;
}

static void slow_destroy(struct virtio_dev *vdev)
{
	(void)vdev; /* the test owns it */
}

static const struct virtio_dev_ops slow_ops = {
    .name = "slow",
    .device_id = VIRTIO_ID_RNG,
    .nqueues = 1,
    .queue_max = QSIZE,
    .config_read = slow_config_read,
    .notify = slow_notify,
    .drain = slow_drain,
    .reset = slow_reset,
    .state = slow_state,
    .destroy = slow_destroy,
};

static atomic_int pause_done; /* pause_thread: pause returned */
static int finished_at_pause; /* the notify calls that had returned by then */

static void *pause_thread(void *arg)
{
	struct fixture *f = arg;
	struct slow_dev *d = container_of(virtio_mmio_vdev(f->dev), struct slow_dev, vdev);

	f->dev->ops->pause(f->dev);
	finished_at_pause = atomic_load(&d->finished);
	atomic_store(&pause_done, 1);
	return NULL;
}

static bool wait_int(atomic_int *v, int want)
{
	for (int i = 0; i < 2000 && atomic_load(v) < want; i++)
		usleep(1000);
	return atomic_load(v) >= want;
}

static void test_pause_waits_for_the_thread(void **state)
{
	struct fixture *f = *state;
	/* Static: a failed assertion leaves it to the teardown's destroy. */
	static struct slow_dev d;
	uint64_t many = 1000;
	pthread_t th;
	int early;

	d = (struct slow_dev){.vdev = {.ops = &slow_ops, .id = "slow0", .event_fd = -1}};

	d.go_fd = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
	assert_true(d.go_fd >= 0);
	f->dev->ops->destroy(f->dev);
	f->dev = virtio_mmio_create(&f->host.host, &f->r.gm, &d.vdev, BASE, GSI);
	assert_non_null(f->dev);
	bring_up(f, F_V1); /* DRIVER_OK kicks the queue: notify starts and blocks */
	assert_true(wait_int(&d.entered, 1));

	atomic_store(&pause_done, 0);
	assert_int_equal(pthread_create(&th, NULL, pause_thread, f), 0);
	usleep(100 * 1000);
	early = atomic_load(&pause_done);
	assert_int_equal(write(d.go_fd, &many, sizeof(many)), sizeof(many));
	pthread_join(th, NULL);
	assert_int_equal(early, 0);		/* notify still ran: the thread had not parked */
	assert_int_equal(finished_at_pause, 1); /* pause returned after the op ended */
	assert_int_equal(atomic_load(&d.drains), 1);

	/* Parked: a kick waits, and pausing again returns at once. */
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	f->dev->ops->pause(f->dev);
	usleep(100 * 1000);
	assert_int_equal(atomic_load(&d.entered), 1);
	/* Resumed: the kick is served, not lost. */
	f->dev->ops->resume(f->dev);
	f->dev->ops->resume(f->dev);
	assert_true(wait_int(&d.finished, 2));
	f->dev->ops->destroy(f->dev);
	f->dev = virtio_mmio_create(&f->host.host, &f->r.gm, virtio_rng_create(NULL), BASE, GSI);
	close(d.go_fd);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_identity),
	    T(test_features),
	    T(test_queue_selector_checked),
	    T(test_queue_size_checked),
	    T(test_entropy_and_interrupt),
	    T(test_entropy_rate_limited),
	    T(test_malformed_chain_needs_reset),
	    T(test_event_idx_suppresses_interrupts),
	    cmocka_unit_test_setup_teardown(test_kvm_fds, setup_kvm, teardown),
	    T(test_state_round_trip),
	    T(test_state_queue_size_checked),
	    T(test_state_features_checked),
	    T(test_config_generation),
	    T(test_pause_waits_for_the_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
