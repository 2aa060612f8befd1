/*
 * virtio-net and virtio-vsock behind the MMIO transport, against a fake
 * guest memory. virtio-net's TAP is a SOCK_SEQPACKET socket pair (one
 * frame with its 12-byte header per datagram, as a TAP with IFF_VNET_HDR);
 * virtio-vsock talks to Unix sockets in a temporary directory.
 *
 * Covered: configuration space, transmit, mergeable receive, back-pressure
 * (a frame waits for buffers), and hostile input: oversized and headerless
 * frames, device-readable receive buffers, vsock packets longer than their
 * buffers. Each leaves the device in NEEDS_RESET and the process running;
 * a reset brings the device back.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fake_ring.h"
#include "mmds_frames.h"
#include "util/clock.h"
#include "virtio/mmio.h"
#include "vmm/state.h"
#include "vmm/vm.h"

#define BASE  0xd0000000ULL
#define GSI   16
#define QSIZE 64
#define HDR   12
/* Queue q's rings; buffers from FAKE_DATA, big ones from BIG. */
#define QDESC(q)  (FAKE_GPA + 0x1000ULL * (q))
#define QAVAIL(q) (QDESC(q) + 0x400)
#define QUSED(q)  (QDESC(q) + 0x800)
#define BUF(i)	  (FAKE_DATA + 0x1000ULL * (i))
#define BIG	  (FAKE_GPA + 0x100000ULL)

static void fake_set_irq(struct dev_host *host, uint32_t gsi, bool level)
{
	(void)host;
	(void)gsi;
	(void)level;
}

static struct dev_host fake_host = {.set_irq = fake_set_irq};

struct fixture {
	struct fake_ring r;
	struct device *dev;
	int peer;     /* the TAP's other end (net) */
	char dir[64]; /* socket directory (vsock) */
	unsigned int nq;
	uint16_t avail[3], used_seen[3], next_desc[3];
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

static void bring_up(struct fixture *f)
{
	uint32_t lo, hi;

	wr(f, VIRTIO_MMIO_STATUS, 0);
	memset(f->avail, 0, sizeof(f->avail));
	memset(f->used_seen, 0, sizeof(f->used_seen));
	memset(f->next_desc, 0, sizeof(f->next_desc));
	memset(f->r.mem, 0, 0x4000);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = rd(f, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	hi = rd(f, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, lo & ~(1U << VIRTIO_F_RING_EVENT_IDX));
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, hi);
	wr(f, VIRTIO_MMIO_STATUS, 0xb);
	for (unsigned int q = 0; q < f->nq; q++) {
		wr(f, VIRTIO_MMIO_QUEUE_SEL, q);
		wr(f, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
		wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)QDESC(q));
		wr(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)QAVAIL(q));
		wr(f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)QUSED(q));
		wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr(f, VIRTIO_MMIO_STATUS, 0xf);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0xf);
}

/* Post a chain of @n buffers {gpa, len, writable} on queue @q and kick. */
static void post(struct fixture *f, unsigned int q, unsigned int n, const uint64_t *gpa,
		 const uint32_t *len, const bool *writable)
{
	uint16_t head = f->next_desc[q];
	uint16_t *avail = fake_ptr(&f->r, QAVAIL(q));

	for (unsigned int i = 0; i < n; i++) {
		uint16_t d = (uint16_t)((head + i) % QSIZE);

		fake_desc(&f->r, QDESC(q), d, gpa[i], len[i],
			  (writable[i] ? VRING_DESC_F_WRITE : 0) |
			      (i + 1 < n ? VRING_DESC_F_NEXT : 0),
			  (uint16_t)((d + 1) % QSIZE));
	}
	f->next_desc[q] = (uint16_t)((head + n) % QSIZE);
	avail[2 + f->avail[q] % QSIZE] = head;
	f->avail[q]++;
	__atomic_store_n(&avail[1], f->avail[q], __ATOMIC_RELEASE);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static uint16_t used_idx(struct fixture *f, unsigned int q)
{
	return __atomic_load_n((uint16_t *)fake_ptr(&f->r, QUSED(q)) + 1, __ATOMIC_ACQUIRE);
}

/* Wait (up to 5 s) until queue @q's used index reaches @want; true if it did. */
static bool wait_used(struct fixture *f, unsigned int q, uint16_t want)
{
	struct timespec ts = {0, 1000000};

	for (int i = 0; i < 5000; i++) {
		if ((uint16_t)(used_idx(f, q) - want) < 0x8000)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

static bool wait_broken(struct fixture *f)
{
	struct timespec ts = {0, 1000000};

	for (int i = 0; i < 5000; i++) {
		if (rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

static void used_elem(struct fixture *f, unsigned int q, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint32_t *e = fake_ptr(&f->r, QUSED(q) + 4 + 8ULL * (i % QSIZE));

	*id = e[0];
	*len = e[1];
}

/* --- virtio-net --- */

static struct rl_config net_rx_limit, net_tx_limit; /* the next card's rate limiters */

static int net_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct net_config nc = {.tap = "test0",
				.mac = {0x52, 0x54, 0, 0x12, 0x34, 0x56},
				.has_mac = true,
				.rx_limit = net_rx_limit,
				.tx_limit = net_tx_limit};
	int sv[2];

	assert_non_null(f);
	assert_int_equal(fake_ring_init(&f->r, QSIZE), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	f->peer = sv[1];
	f->nq = 2;
	f->dev = virtio_mmio_create(&fake_host, &f->r.gm,
				    virtio_net_create_fd(&nc, 0, sv[0], false), BASE, GSI);
	assert_non_null(f->dev);
	bring_up(f);
	*state = f;
	return 0;
}

/* The card also serves a metadata store (struct fixture's dir holds nothing). */
static struct mmds *mmds_store;

static int net_mmds_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct net_config nc = {.tap = "test0", .mmds_ipv4 = MMDS_DEFAULT_IPV4};
	char err[MMDS_ERR_LEN];
	int sv[2];

	mmds_store = mmds_new();
	assert_non_null(mmds_store);
	assert_int_equal(mmds_put_text(mmds_store, "{\"k\":\"v\"}", 9, err), 0);
	nc.mmds = mmds_store;
	assert_int_equal(fake_ring_init(&f->r, QSIZE), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	f->peer = sv[1];
	f->nq = 2;
	f->dev = virtio_mmio_create(&fake_host, &f->r.gm,
				    virtio_net_create_fd(&nc, 0, sv[0], false), BASE, GSI);
	assert_non_null(f->dev);
	bring_up(f);
	*state = f;
	return 0;
}

static int net_teardown(void **state)
{
	struct fixture *f = *state;

	if (f->dev)
		f->dev->ops->destroy(f->dev);
	close(f->peer);
	fake_ring_free(&f->r);
	free(f);
	return 0;
}

/* One frame per 200 ms each way. */
static int net_setup_limited(void **state)
{
	net_rx_limit = net_tx_limit = (struct rl_config){.ops = {.size = 1, .refill_ms = 200}};
	return net_setup(state);
}

static int net_teardown_limited(void **state)
{
	net_rx_limit = net_tx_limit = (struct rl_config){0};
	return net_teardown(state);
}

/* Frames the peer has received (without blocking). */
static unsigned int peer_frames(struct fixture *f)
{
	static unsigned int n;
	uint8_t got[256];

	while (recv(f->peer, got, sizeof(got), MSG_DONTWAIT) > 0)
		n++;
	return n;
}

/*
 * Each direction has its own limiter: a throttled transmit side leaves
 * its chains on the ring (sent one per 200 ms) while received frames go
 * on at their own rate, also one per 200 ms.
 */
static void test_net_rate_limited(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[HDR + 100];
	uint32_t len[2] = {HDR, 100}, rxlen[1] = {2048};
	bool w[2] = {false, false}, rw[1] = {true};
	uint64_t gpa[2], t0, ms;
	unsigned int base = peer_frames(f);

	t0 = now_ns();
	for (unsigned int i = 0; i < 3; i++) {
		gpa[0] = BUF(2 * i);
		gpa[1] = BUF(2 * i + 1);
		post(f, 1, 2, gpa, len, w);
	}
	for (unsigned int i = 0; i < 2; i++) {
		assert_int_equal(send(f->peer, frame, sizeof(frame), 0), sizeof(frame));
		gpa[0] = BUF(8 + i);
		post(f, 0, 1, gpa, rxlen, rw);
	}
	/* One each way at once; a second only once a token has refilled,
	 * 200 ms after the start (a device thread that ran late may have
	 * served it by then). */
	assert_true(wait_used(f, 1, 1));
	assert_true(wait_used(f, 0, 1));
	ms = (now_ns() - t0) / 1000000;
	assert_true((used_idx(f, 1) == 1 && used_idx(f, 0) == 1) || ms >= 200);
	assert_true(wait_used(f, 0, 2));
	assert_true(wait_used(f, 1, 3));
	ms = (now_ns() - t0) / 1000000;
	assert_true(ms >= 380 && ms < 2000);
	assert_int_equal(peer_frames(f) - base, 3);
	assert_true(atomic_load(&f->dev->stats.throttled[DEV_DIR_OUT]) >= 1);
	assert_true(atomic_load(&f->dev->stats.throttled[DEV_DIR_IN]) >= 1);
}

static void test_net_config(void **state)
{
	struct fixture *f = *state;
	uint8_t cfg[10];
	uint8_t mac[6];
	uint8_t mac2[6];

	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	f->dev->ops->read(f->dev, VIRTIO_MMIO_CONFIG, cfg, 8);
	f->dev->ops->read(f->dev, VIRTIO_MMIO_CONFIG + 8, cfg + 8, 2);
	assert_memory_equal(cfg, "\x52\x54\x00\x12\x34\x56", 6);
	assert_int_equal(cfg[6], 1); /* VIRTIO_NET_S_LINK_UP */
	/* A clone gets a new MAC; the generated one is stable and locally administered. */
	assert_int_equal(
	    virtio_net_set_mac(virtio_mmio_vdev(f->dev), (const uint8_t *)"\x06\1\2\3\4\5"), 0);
	f->dev->ops->read(f->dev, VIRTIO_MMIO_CONFIG, cfg, 6);
	assert_memory_equal(cfg, "\x06\1\2\3\4\5", 6);
	virtio_net_default_mac("tap0", "net0", mac);
	virtio_net_default_mac("tap0", "net0", mac2);
	assert_memory_equal(mac, mac2, 6);
	assert_int_equal(mac[0] & 3, 2);
	virtio_net_default_mac("tap1", "net0", mac2);
	assert_memory_not_equal(mac, mac2, 6);
}

static void test_net_tx(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[HDR + 100], got[256];
	uint64_t gpa[2] = {BUF(0), BUF(1)};
	uint32_t len[2] = {HDR, 100}, id, ulen;
	bool w[2] = {false, false};

	for (unsigned int i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i < HDR ? 0 : i);
	memcpy(fake_ptr(&f->r, BUF(0)), frame, HDR);
	memcpy(fake_ptr(&f->r, BUF(1)), frame + HDR, 100);
	post(f, 1, 2, gpa, len, w);
	assert_true(wait_used(f, 1, 1));
	used_elem(f, 1, 0, &id, &ulen);
	assert_int_equal(id, 0);
	assert_int_equal(recv(f->peer, got, sizeof(got), 0), sizeof(frame));
	assert_memory_equal(got, frame, sizeof(frame));
}

/* Transmit @len bytes of @frame after a virtio-net header @hdr (12 bytes). */
static void tx_frame(struct fixture *f, const uint8_t *hdr, const uint8_t *frame, uint32_t len,
		     unsigned int slot)
{
	uint64_t gpa[2] = {BUF(slot), BUF(slot + 1)};
	uint32_t lens[2] = {HDR, len};
	bool w[2] = {false, false};

	memcpy(fake_ptr(&f->r, BUF(slot)), hdr, HDR);
	memcpy(fake_ptr(&f->r, BUF(slot + 1)), frame, len);
	post(f, 1, 2, gpa, lens, w);
}

static void rx_buffer(struct fixture *f, unsigned int slot)
{
	uint64_t gpa[1] = {BUF(slot)};
	uint32_t len[1] = {2048};
	bool w[1] = {true};

	post(f, 0, 1, gpa, len, w);
}

/*
 * MMDS on the card: ARP for its address and a TCP SYN whose checksum the
 * guest left to the device (NEEDS_CSUM) are answered into receive buffers;
 * neither reaches the TAP, while a frame for another address does.
 */
static void test_net_mmds(void **state)
{
	struct fixture *f = *state;
	uint8_t hdr[HDR] = {0}, frame[128], got[256];
	const uint8_t *p, *data;
	uint32_t id, ulen, seq, ack;
	uint8_t flags;
	size_t dlen, len;

	/* lwIP announces the address when its interface comes up (gratuitous ARP) */
	rx_buffer(f, 9);
	assert_true(wait_used(f, 0, 1));
	p = fake_ptr(&f->r, BUF(9));
	assert_int_equal(p[HDR + 21], 1);
	assert_memory_equal(p + HDR + 22, mf_mmds_mac, 6);
	rx_buffer(f, 10);
	rx_buffer(f, 11);
	len = mf_arp_request(frame, MMDS_DEFAULT_IPV4);
	tx_frame(f, hdr, frame, (uint32_t)len, 0);
	assert_true(wait_used(f, 0, 2));
	p = fake_ptr(&f->r, BUF(10));
	assert_int_equal(p[HDR + 12], 0x08);
	assert_int_equal(p[HDR + 13], 0x06);
	assert_int_equal(p[HDR + 21], 2);		   /* an ARP reply ... */
	assert_memory_equal(p + HDR + 22, mf_mmds_mac, 6); /* ... from MMDS's MAC */
	/* A SYN with only the pseudo header's sum: the device completes it. */
	len = mf_tcp(frame, MMDS_DEFAULT_IPV4, 40000, 1000, 0, MF_TCP_SYN, NULL, 0);
	frame[50] = frame[51] = 0;
	{
		uint32_t sum = mf_sum(frame + 26, 8, 6 + 20);
		uint16_t partial = (uint16_t)~mf_fold(sum);

		frame[50] = (uint8_t)(partial >> 8);
		frame[51] = (uint8_t)partial;
	}
	hdr[0] = 1;  /* VIRTIO_NET_HDR_F_NEEDS_CSUM */
	hdr[6] = 34; /* csum_start: the TCP header */
	hdr[8] = 16; /* csum_offset: its checksum field */
	tx_frame(f, hdr, frame, (uint32_t)len, 2);
	assert_true(wait_used(f, 0, 3));
	used_elem(f, 0, 2, &id, &ulen);
	p = fake_ptr(&f->r, BUF(11));
	assert_true(mf_parse_tcp(p + HDR, ulen - HDR, &flags, &seq, &ack, &data, &dlen));
	assert_int_equal(flags, MF_TCP_SYN | MF_TCP_ACK);
	assert_int_equal(ack, 1001);
	assert_true(mf_tcp_csum_ok(p + HDR, ulen - HDR));
	assert_true(wait_used(f, 1, 2));
	assert_int_equal(recv(f->peer, got, sizeof(got), 0), -1); /* nothing reached the TAP */
	memset(hdr, 0, sizeof(hdr));
	len = mf_arp_request(frame, 0x0a000001);
	tx_frame(f, hdr, frame, (uint32_t)len, 4);
	assert_true(wait_used(f, 1, 3));
	assert_int_equal(recv(f->peer, got, sizeof(got), 0), HDR + len);
}

static int net_mmds_teardown(void **state)
{
	net_teardown(state);
	mmds_free(mmds_store);
	return 0;
}

static void test_net_rx_merge_and_backpressure(void **state)
{
	struct fixture *f = *state;
	static uint8_t frame[HDR + 3000];
	uint64_t gpa[1];
	uint32_t len[1] = {2048}, id, l0, l1;
	bool w[1] = {true};
	struct timespec ts = {0, 50000000};
	uint16_t nb;

	for (unsigned int i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i < HDR ? 0 : i * 7);
	/* No buffers yet: the frame waits in the device, nothing is used. */
	assert_int_equal(send(f->peer, frame, sizeof(frame), 0), sizeof(frame));
	nanosleep(&ts, NULL);
	assert_int_equal(used_idx(f, 0), 0);
	/* One 2 KiB buffer is not enough for 3012 bytes: still nothing. */
	gpa[0] = BUF(0);
	post(f, 0, 1, gpa, len, w);
	nanosleep(&ts, NULL);
	assert_int_equal(used_idx(f, 0), 0);
	/* A second buffer: the frame is spread over both, published together. */
	gpa[0] = BUF(1);
	post(f, 0, 1, gpa, len, w);
	assert_true(wait_used(f, 0, 2));
	used_elem(f, 0, 0, &id, &l0);
	used_elem(f, 0, 1, &id, &l1);
	assert_int_equal(l0, 2048);
	assert_int_equal(l0 + l1, sizeof(frame));
	memcpy(&nb, fake_ptr(&f->r, BUF(0) + 10), 2);
	assert_int_equal(nb, 2); /* num_buffers */
	assert_memory_equal(fake_ptr(&f->r, BUF(0) + HDR), frame + HDR, 2048 - HDR);
	assert_memory_equal(fake_ptr(&f->r, BUF(1)), frame + 2048, sizeof(frame) - 2048);
}

static void test_net_oversized_frame(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa[2] = {BUF(0), BIG};
	uint32_t len[2] = {HDR, 70000};
	bool w[2] = {false, false};
	uint8_t got[64];

	post(f, 1, 2, gpa, len, w);
	assert_true(wait_broken(f));
	assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), -1); /* nothing sent */
	/* The driver resets the device and it works again. */
	bring_up(f);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	test_net_tx(state);
}

static void test_net_headerless_frame(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa[1] = {BUF(0)};
	uint32_t len[1] = {8};
	bool w[1] = {false};

	post(f, 1, 1, gpa, len, w);
	assert_true(wait_broken(f));
}

static void test_net_readable_rx_buffer(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa[2] = {BUF(0), BUF(1)};
	uint32_t len[2] = {64, 2048};
	bool w[2] = {false, true};
	uint8_t frame[HDR + 60] = {0};

	post(f, 0, 2, gpa, len, w);
	assert_int_equal(send(f->peer, frame, sizeof(frame), 0), sizeof(frame));
	assert_true(wait_broken(f));
}

static void test_net_loop_chain(void **state)
{
	struct fixture *f = *state;
	uint16_t *avail = fake_ptr(&f->r, QAVAIL(1));

	/* Two descriptors pointing at each other: the walk must stop. */
	fake_desc(&f->r, QDESC(1), 0, BUF(0), HDR, VRING_DESC_F_NEXT, 1);
	fake_desc(&f->r, QDESC(1), 1, BUF(1), 64, VRING_DESC_F_NEXT, 0);
	avail[2] = 0;
	__atomic_store_n(&avail[1], 1, __ATOMIC_RELEASE);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_true(wait_broken(f));
}

/*
 * Paused (the device contract's pause), the device leaves its TAP and its
 * queues alone: frames that arrive and a frame the guest queues wait,
 * guest memory and the used rings do not change, no interrupt is raised.
 * After resume everything arrives, in order, nothing lost.
 */
static void test_net_pause_holds_frames(void **state)
{
	struct fixture *f = *state;
	static uint8_t before[4 * 0x1000];
	uint8_t frame[3][HDR + 64], txf[HDR + 40], got[256];
	uint64_t gpa[2];
	uint32_t len[2] = {2048, 0}, id, l;
	bool w[2] = {true, false};
	struct timespec ts = {0, 100000000};

	for (unsigned int i = 0; i < 3; i++) {
		gpa[0] = BUF(i);
		post(f, 0, 1, gpa, len, w);
	}
	f->dev->ops->pause(f->dev);
	f->dev->ops->pause(f->dev); /* idempotent */
	memcpy(before, fake_ptr(&f->r, BUF(0)), sizeof(before));
	for (unsigned int i = 0; i < 3; i++) {
		memset(frame[i], 0, HDR);
		memset(frame[i] + HDR, 'a' + i, 64);
		assert_int_equal(send(f->peer, frame[i], sizeof(frame[i]), 0), sizeof(frame[i]));
	}
	memset(txf, 0, HDR);
	memset(txf + HDR, 'z', 40);
	memcpy(fake_ptr(&f->r, BUF(3)), txf, sizeof(txf));
	gpa[0] = BUF(3);
	len[0] = sizeof(txf);
	w[0] = false;
	post(f, 1, 1, gpa, len, w);
	nanosleep(&ts, NULL);
	assert_int_equal(used_idx(f, 0), 0);
	assert_int_equal(used_idx(f, 1), 0);
	assert_memory_equal(fake_ptr(&f->r, BUF(0)), before, 3 * 0x1000);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), -1); /* nothing sent */

	f->dev->ops->resume(f->dev);
	assert_true(wait_used(f, 0, 3));
	for (unsigned int i = 0; i < 3; i++) {
		used_elem(f, 0, (uint16_t)i, &id, &l);
		assert_int_equal(l, sizeof(frame[i]));
		assert_memory_equal(fake_ptr(&f->r, BUF(id) + HDR), frame[i] + HDR, 64);
		assert_int_equal(id, i); /* in order */
	}
	assert_true(wait_used(f, 1, 1));
	assert_int_equal(recv(f->peer, got, sizeof(got), 0), sizeof(txf));
	assert_memory_equal(got, txf, sizeof(txf));
	assert_true(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_USED);
}

/* A device destroyed while paused: its parked thread leaves, nothing hangs. */
static void test_net_destroy_paused(void **state)
{
	struct fixture *f = *state;

	f->dev->ops->pause(f->dev);
	f->dev->ops->destroy(f->dev);
	f->dev = NULL; /* the teardown must not destroy it again */
}

/* --- the control queue --- */

static int net_setup_ctrl(void **state)
{
	int ret = net_setup(state);
	struct fixture *f = *state;

	f->nq = 3; /* receive, transmit, control */
	bring_up(f);
	return ret;
}

/* One control request (@cmd, @len bytes, in two readable parts when @split) and its ack. */
static uint8_t ctrl(struct fixture *f, const void *cmd, uint32_t len, bool split)
{
	uint64_t gpa[3] = {BUF(40), BUF(41), BUF(42)};
	uint32_t l[3] = {split ? 2 : len, len - 2, 1};
	bool w[3] = {false, false, true};
	uint16_t want = (uint16_t)(used_idx(f, 2) + 1);
	uint8_t *ack = fake_ptr(&f->r, BUF(42));
	uint32_t id, ulen;

	memcpy(fake_ptr(&f->r, BUF(40)), cmd, split ? 2 : len);
	if (split)
		memcpy(fake_ptr(&f->r, BUF(41)), (const uint8_t *)cmd + 2, len - 2);
	if (!split) {
		gpa[1] = gpa[2];
		l[1] = 1;
		w[1] = true;
	}
	*ack = 0xee;
	post(f, 2, split ? 3 : 2, gpa, l, w);
	assert_true(wait_used(f, 2, want));
	used_elem(f, 2, (uint16_t)(want - 1), &id, &ulen);
	assert_int_equal(ulen, 1);
	return *ack;
}

static uint16_t net_status(struct fixture *f)
{
	uint16_t st;

	f->dev->ops->read(f->dev, VIRTIO_MMIO_CONFIG + 6, &st, 2);
	return st;
}

/* Save the card and load it back (as a restore or an incoming migration does). */
static void net_reload(struct fixture *f)
{
	struct state_io io, in;

	f->dev->ops->pause(f->dev);
	state_io_saver(&io);
	assert_int_equal(f->dev->ops->state(f->dev, &io), 0);
	state_io_loader(&in, io.buf, io.len);
	assert_int_equal(f->dev->ops->state(f->dev, &in), 0);
	assert_int_equal(state_io_finish(&in), 0);
	state_io_free(&io);
	f->dev->ops->resume(f->dev);
}

static bool wait_status(struct fixture *f, uint16_t bit, bool set)
{
	for (int i = 0; i < 5000; i++) {
		if (!!(net_status(f) & bit) == set)
			return true;
		usleep(1000);
	}
	return false;
}

/*
 * The card offers the control queue, GUEST_ANNOUNCE, CTRL_RX and
 * CTRL_MAC_ADDR, and nothing it does not implement (VLAN filtering,
 * CTRL_RX_EXTRA, multiqueue, guest offload control).
 */
static void test_net_ctrl_features(void **state)
{
	struct fixture *f = *state;
	uint32_t lo;

	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = rd(f, VIRTIO_MMIO_DEVICE_FEATURES);
	assert_true(lo & (1U << 17));  /* CTRL_VQ */
	assert_true(lo & (1U << 18));  /* CTRL_RX */
	assert_true(lo & (1U << 21));  /* GUEST_ANNOUNCE */
	assert_true(lo & (1U << 23));  /* CTRL_MAC_ADDR */
	assert_false(lo & (1U << 19)); /* CTRL_VLAN */
	assert_false(lo & (1U << 20)); /* CTRL_RX_EXTRA */
	assert_false(lo & (1U << 22)); /* MQ */
	assert_false(lo & (1U << 2));  /* CTRL_GUEST_OFFLOADS */
}

/*
 * After a state load (restore, incoming migration) the card sets
 * VIRTIO_NET_S_ANNOUNCE and raises a configuration interrupt; the
 * driver's ANNOUNCE_ACK clears it. A malformed ack is refused.
 */
static void test_net_ctrl_announce(void **state)
{
	struct fixture *f = *state;
	const uint8_t ack[2] = {3, 0}, ack_long[3] = {3, 0, 0};

	assert_int_equal(net_status(f), 1);
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, 3);
	net_reload(f);
	assert_true(wait_status(f, 2, true));
	assert_true(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
	assert_int_equal(net_status(f) & 1, 1); /* the link stays up */
	assert_int_equal(ctrl(f, ack_long, sizeof(ack_long), true), 1);
	assert_true(net_status(f) & 2);
	assert_int_equal(ctrl(f, ack, sizeof(ack), false), 0);
	assert_int_equal(net_status(f), 1);
	/* the link going down keeps a pending announcement, and the reverse */
	net_reload(f);
	assert_true(wait_status(f, 2, true));
	assert_int_equal(virtio_net_set_link(virtio_mmio_vdev(f->dev), false), 0);
	assert_int_equal(net_status(f), 2);
	assert_int_equal(virtio_net_set_link(virtio_mmio_vdev(f->dev), true), 0);
	assert_int_equal(net_status(f), 3);
	/* a reset forgets it */
	bring_up(f);
	assert_int_equal(net_status(f), 1);
}

/*
 * The announcement comes in four rounds, 100 ms apart, each setting
 * VIRTIO_NET_S_ANNOUNCE again with a configuration interrupt (QEMU's
 * self-announce), so one lost gratuitous ARP does not strand the guest;
 * then no more. A reset ends the rounds.
 */
static void test_net_announce_rounds(void **state)
{
	struct fixture *f = *state;
	const uint8_t ack[2] = {3, 0};
	uint64_t t[4];

	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, 3);
	net_reload(f);
	for (unsigned int i = 0; i < 4; i++) {
		assert_true(wait_status(f, 2, true));
		t[i] = now_ns();
		assert_true(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
		wr(f, VIRTIO_MMIO_INTERRUPT_ACK, 3);
		assert_int_equal(ctrl(f, ack, sizeof(ack), false), 0);
	}
	/* 300 ms from the first round to the last; seen late here on a busy host, not early */
	assert_true(t[3] - t[0] >= 200 * 1000000ULL);
	usleep(300 * 1000);
	assert_int_equal(net_status(f), 1); /* four rounds, no fifth */
	assert_false(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
	/* a reset between rounds ends them */
	net_reload(f);
	assert_true(wait_status(f, 2, true));
	bring_up(f);
	usleep(300 * 1000);
	assert_int_equal(net_status(f), 1);
}

/* A driver that did not negotiate GUEST_ANNOUNCE is never asked. */
static void test_net_no_announce_unnegotiated(void **state)
{
	struct fixture *f = *state;
	uint32_t feats[2] = {0};

	wr(f, VIRTIO_MMIO_STATUS, 0);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	for (unsigned int i = 0; i < 2; i++) {
		wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, i);
		feats[i] = rd(f, VIRTIO_MMIO_DEVICE_FEATURES);
	}
	feats[0] &= ~((1U << 21) | (1U << VIRTIO_F_RING_EVENT_IDX));
	for (unsigned int i = 0; i < 2; i++) {
		wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, i);
		wr(f, VIRTIO_MMIO_DRIVER_FEATURES, feats[i]);
	}
	wr(f, VIRTIO_MMIO_STATUS, 0xb);
	wr(f, VIRTIO_MMIO_STATUS, 0xf);
	net_reload(f);
	usleep(50 * 1000);
	assert_int_equal(net_status(f), 1);
}

/* The ethertype of rx_to's marker frame (IEEE local experimental). */
#define MARKER_TYPE 0x88b5

/* True when the last used receive buffer holds the marker frame. */
static bool last_used_is_marker(struct fixture *f)
{
	uint32_t id, len;
	const uint8_t *frame;

	used_elem(f, 0, (uint16_t)(used_idx(f, 0) - 1), &id, &len);
	frame = fake_ptr(&f->r, ((const uint64_t *)fake_ptr(&f->r, QDESC(0) + 16ULL * id))[0]);
	return len >= HDR + 14 && frame[HDR + 12] == MARKER_TYPE >> 8 &&
	       frame[HDR + 13] == (MARKER_TYPE & 0xff);
}

/*
 * A frame from the TAP to @dst; true when the guest got it. A broadcast
 * marker follows it and the guest waits (up to 5 s) for the marker: the
 * card delivers in order, so the used index then tells whether the frame
 * before it passed the filter, however late the device thread ran.
 */
static bool rx_to(struct fixture *f, const uint8_t dst[6], unsigned int *posted)
{
	static uint8_t frame[HDR + 60], marker[HDR + 60];
	uint32_t len[1] = {2048};
	bool w[1] = {true};
	uint16_t before = used_idx(f, 0);

	while ((uint16_t)(f->avail[0] - used_idx(f, 0)) < 2) { /* room for both */
		uint64_t gpa[1] = {BUF(*posted % 32)};

		post(f, 0, 1, gpa, len, w);
		(*posted)++;
	}
	memset(frame, 0, sizeof(frame));
	memcpy(frame + HDR, dst, 6);
	memset(marker, 0, sizeof(marker));
	memset(marker + HDR, 0xff, 6);
	marker[HDR + 12] = MARKER_TYPE >> 8;
	marker[HDR + 13] = MARKER_TYPE & 0xff;
	assert_int_equal(send(f->peer, frame, sizeof(frame), 0), sizeof(frame));
	assert_int_equal(send(f->peer, marker, sizeof(marker), 0), sizeof(marker));
	for (int i = 0; i < 5000; i++) {
		if (used_idx(f, 0) != before && last_used_is_marker(f))
			return (uint16_t)(used_idx(f, 0) - before) == 2;
		usleep(1000);
	}
	fail_msg("the broadcast marker never reached the guest");
	return false;
}

/*
 * The receive filter the control queue programs: promiscuous after reset;
 * then only the card's MAC, broadcast, and the multicast addresses of the
 * MAC table (or all with ALLMULTI). MAC_ADDR_SET moves the unicast filter.
 */
static void test_net_ctrl_rx_filter(void **state)
{
	struct fixture *f = *state;
	static const uint8_t me[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
	static const uint8_t other[6] = {0x52, 0x54, 0, 9, 9, 9},
			     bc[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t mc[6] = {0x33, 0x33, 0, 0, 0, 1}, mc2[6] = {0x01, 0, 0x5e, 0, 0, 0xfb};
	const uint8_t promisc_off[3] = {0, 0, 0}, allmulti_on[3] = {0, 1, 1};
	const uint8_t table[2 + 4 + 4 + 6] = {1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x33, 0x33, 0, 0, 0, 1};
	const uint8_t addr[2 + 6] = {1, 1, 0x52, 0x54, 0, 7, 7, 7};
	unsigned int posted = 0;

	assert_true(rx_to(f, other, &posted)); /* promiscuous */
	assert_int_equal(ctrl(f, promisc_off, sizeof(promisc_off), true), 0);
	assert_int_equal(ctrl(f, table, sizeof(table), true), 0);
	assert_true(rx_to(f, me, &posted));
	assert_false(rx_to(f, other, &posted));
	assert_true(rx_to(f, bc, &posted));
	assert_true(rx_to(f, mc, &posted));
	assert_false(rx_to(f, mc2, &posted));
	assert_int_equal(ctrl(f, allmulti_on, sizeof(allmulti_on), true), 0);
	assert_true(rx_to(f, mc2, &posted));
	/* a new address: the guest's own frames follow it, the config space shows it */
	assert_int_equal(ctrl(f, addr, sizeof(addr), true), 0);
	assert_true(rx_to(f, addr + 2, &posted));
	assert_false(rx_to(f, me, &posted));
	/* a reset: the configured MAC again, promiscuous */
	bring_up(f);
	posted = 0;
	assert_true(rx_to(f, other, &posted));
}

/*
 * Hostile requests: short, long, lying counts, unknown classes, features
 * not negotiated; each answered VIRTIO_NET_ERR, nothing changed, the card
 * still working. A request with nowhere to put the ack breaks the card.
 */
static void test_net_ctrl_hostile(void **state)
{
	struct fixture *f = *state;
	static const uint8_t other[6] = {0x52, 0x54, 0, 9, 9, 9};
	const uint8_t bad[][12] = {
	    {0, 0},				  /* PROMISC without its byte */
	    {0, 0, 0, 0},			  /* ... with two */
	    {0, 2, 1},				  /* ALLUNI: CTRL_RX_EXTRA is not offered */
	    {1, 0, 0xff, 0xff, 0xff, 0xff, 0, 0}, /* MAC table: 2^32-1 entries in 6 bytes */
	    {1, 0, 1, 0, 0, 0, 1, 2, 3, 4, 5, 6}, /* one entry, no multicast half */
	    {1, 1, 1, 2, 3, 4, 5, 6},		  /* MAC_ADDR_SET: a multicast address */
	    {1, 1, 2, 2, 3},			  /* ... short */
	    {2, 0, 1, 0},			  /* VLAN: not offered */
	    {3, 1},				  /* announce: unknown command */
	    {4, 0, 1, 0},			  /* MQ: not offered */
	    {200, 7},				  /* unknown class */
	};
	const uint8_t lens[] = {2, 4, 3, 8, 12, 8, 5, 4, 2, 4, 2};
	const uint8_t one[1] = {0};
	uint64_t gpa[1] = {BUF(40)};
	uint32_t l[1] = {2};
	bool w[1] = {false};
	unsigned int posted = 0;
	uint8_t cfg[6];

	for (unsigned int i = 0; i < sizeof(lens); i++)
		assert_int_equal(ctrl(f, bad[i], lens[i], lens[i] > 2), 1);
	assert_int_equal(ctrl(f, one, 1, false), 1); /* not even a class and a command */
	f->dev->ops->read(f->dev, VIRTIO_MMIO_CONFIG, cfg, 6);
	assert_memory_equal(cfg, "\x52\x54\x00\x12\x34\x56", 6);
	assert_true(rx_to(f, other, &posted)); /* still promiscuous */
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	/* a request without a writable byte */
	memset(fake_ptr(&f->r, BUF(40)), 0, 2);
	post(f, 2, 1, gpa, l, w);
	assert_true(wait_broken(f));
	bring_up(f);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

/* Commands of a feature the driver did not negotiate are refused. */
static void test_net_ctrl_unnegotiated(void **state)
{
	struct fixture *f = *state;
	const uint8_t promisc_off[3] = {0, 0, 0}, addr[8] = {1, 1, 0x52, 0x54, 0, 7, 7, 7};
	uint32_t lo;

	wr(f, VIRTIO_MMIO_STATUS, 0);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = rd(f, VIRTIO_MMIO_DEVICE_FEATURES) & ~((1U << 18) | (1U << 23) | (1U << 29));
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, lo);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(f, VIRTIO_MMIO_STATUS, 0xb);
	for (unsigned int q = 0; q < 3; q++) {
		wr(f, VIRTIO_MMIO_QUEUE_SEL, q);
		wr(f, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
		wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)QDESC(q));
		wr(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)QAVAIL(q));
		wr(f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)QUSED(q));
		wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr(f, VIRTIO_MMIO_STATUS, 0xf);
	assert_int_equal(ctrl(f, promisc_off, sizeof(promisc_off), true), 1);
	assert_int_equal(ctrl(f, addr, sizeof(addr), true), 1);
}

/*
 * A card saved before the control queue existed (transport with two
 * queues, card state version 1) loads: its MAC and status come back, the
 * control queue stays unset. The same state claiming a negotiated control
 * queue is refused.
 */
static void v1_blob(struct state_io *io, uint64_t acked)
{
	uint8_t u8v = 1, nq = 2, mac[6] = {2, 0, 0, 0xaa, 0xbb, 0xcc};
	uint32_t status = 0xf, zero = 0;
	uint16_t st = 1;
	bool f = false;

	state_io_saver(io);
	state_u8(io, &u8v); /* transport state version */
	state_u8(io, &nq);
	state_u32(io, &status);
	state_u32(io, &zero);
	state_u32(io, &zero);
	state_u64(io, &acked);
	state_u64(io, &acked);
	state_u32(io, &zero); /* queue_sel */
	state_u32(io, &zero); /* config_gen */
	state_bool(io, &f);
	state_u32(io, &zero); /* isr */
	for (unsigned int q = 0; q < 2; q++) {
		uint16_t size = 0;
		uint64_t z = 0;

		state_u16(io, &size);
		state_u64(io, &z);
		state_u64(io, &z);
		state_u64(io, &z);
		state_bool(io, &f);
		state_u16(io, &size);
		state_u16(io, &size);
		state_u16(io, &size);
		state_bool(io, &f);
	}
	state_u8(io, &u8v); /* card state version 1 */
	state_bytes(io, mac, 6);
	state_u16(io, &st);
	state_bool(io, &f);
}

static void test_net_state_v1(void **state)
{
	struct fixture *f = *state;
	struct state_io io, in;
	uint8_t cfg[6];

	f->dev->ops->pause(f->dev);
	v1_blob(&io, 1ULL << VIRTIO_F_VERSION_1);
	state_io_loader(&in, io.buf, io.len);
	assert_int_equal(f->dev->ops->state(f->dev, &in), 0);
	assert_int_equal(state_io_finish(&in), 0);
	state_io_free(&io);
	f->dev->ops->read(f->dev, VIRTIO_MMIO_CONFIG, cfg, 6);
	assert_memory_equal(cfg, "\x02\x00\x00\xaa\xbb\xcc", 6);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	v1_blob(&io, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << 17));
	state_io_loader(&in, io.buf, io.len);
	assert_int_equal(f->dev->ops->state(f->dev, &in), -EBADMSG);
	state_io_free(&io);
	f->dev->ops->resume(f->dev);
}

/* --- virtio-vsock --- */

struct vhdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

static unsigned int setup_handshake_ms; /* vsock_setup's handshake limit (0: the default) */

static int vsock_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vsock_config vc = {.cid = 42, .handshake_ms = setup_handshake_ms};
	char path[96];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vsock-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/v.sock", f->dir);
	vc.uds_path = path;
	assert_int_equal(fake_ring_init(&f->r, QSIZE), 0);
	f->nq = 3;
	f->dev =
	    virtio_mmio_create(&fake_host, &f->r.gm, virtio_vsock_create(&vc, NULL), BASE, GSI);
	assert_non_null(f->dev);
	bring_up(f);
	*state = f;
	return 0;
}

static int vsock_teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	f->dev->ops->destroy(f->dev);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	fake_ring_free(&f->r);
	free(f);
	return 0;
}

static void vsock_send(struct fixture *f, unsigned int slot, uint16_t op, uint32_t sport,
		       uint32_t dport, const void *data, uint32_t len)
{
	struct vhdr h = {.src_cid = 42,
			 .dst_cid = 2,
			 .src_port = sport,
			 .dst_port = dport,
			 .len = len,
			 .type = 1,
			 .op = op,
			 .buf_alloc = 65536};
	uint64_t gpa[2] = {BUF(slot), BUF(slot + 1)};
	uint32_t l[2] = {sizeof(h), len};
	bool w[2] = {false, false};

	memcpy(fake_ptr(&f->r, BUF(slot)), &h, sizeof(h));
	if (len)
		memcpy(fake_ptr(&f->r, BUF(slot + 1)), data, len);
	post(f, 1, len ? 2 : 1, gpa, l, w);
}

static void vsock_rx_buffer(struct fixture *f, unsigned int slot)
{
	uint64_t gpa[1] = {BUF(slot)};
	uint32_t l[1] = {4096};
	bool w[1] = {true};

	post(f, 0, 1, gpa, l, w);
}

/* The @n-th packet the device put on the receive queue (buffers posted in slot order from 20). */
static struct vhdr *vsock_rx_pkt(struct fixture *f, unsigned int n)
{
	uint32_t id, len;

	assert_true(wait_used(f, 0, (uint16_t)(n + 1)));
	used_elem(f, 0, (uint16_t)n, &id, &len);
	assert_true(len >= sizeof(struct vhdr));
	return fake_ptr(&f->r, BUF(20 + n));
}

static void test_vsock_guest_connect(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0), c;
	uint64_t cid = 0;
	struct vhdr *p;
	char buf[16];

	f->dev->ops->read(f->dev, VIRTIO_MMIO_CONFIG, &cid, 8);
	assert_int_equal(cid, 42);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/v.sock_5000", f->dir);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	for (unsigned int i = 0; i < 4; i++)
		vsock_rx_buffer(f, 20 + i);
	vsock_send(f, 0, 1 /* REQUEST */, 1234, 5000, NULL, 0);
	p = vsock_rx_pkt(f, 0);
	assert_int_equal(p->op, 2); /* RESPONSE */
	assert_int_equal(p->dst_port, 1234);
	assert_int_equal(p->src_cid, 2);
	c = accept(lfd, NULL, NULL);
	assert_true(c >= 0);
	vsock_send(f, 2, 5 /* RW */, 1234, 5000, "hello", 5);
	assert_int_equal(recv(c, buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(send(c, "world!", 6, 0), 6);
	p = vsock_rx_pkt(f, 1);
	assert_int_equal(p->op, 5);
	assert_int_equal(p->len, 6);
	assert_memory_equal((char *)p + sizeof(*p), "world!", 6);
	close(c); /* the host's close reaches the guest as a SHUTDOWN */
	p = vsock_rx_pkt(f, 2);
	assert_int_equal(p->op, 4);
	assert_int_equal(p->flags & 2, 2);
	/* Nobody listens on port 6000: RST. */
	vsock_send(f, 4, 1, 1235, 6000, NULL, 0);
	p = vsock_rx_pkt(f, 3);
	assert_int_equal(p->op, 3);
	assert_int_equal(p->dst_port, 1235);
	close(lfd);
}

static void test_vsock_host_connect(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct vhdr *p;
	char buf[32] = {0};
	ssize_t n;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/v.sock", f->dir);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(s, "CONNECT 7000\n", 13, 0), 13);
	vsock_rx_buffer(f, 20);
	p = vsock_rx_pkt(f, 0);
	assert_int_equal(p->op, 1); /* REQUEST */
	assert_int_equal(p->dst_port, 7000);
	assert_int_equal(p->dst_cid, 42);
	assert_true(p->src_port >= (1U << 30));
	vsock_send(f, 0, 2 /* RESPONSE */, 7000, p->src_port, NULL, 0);
	n = recv(s, buf, sizeof(buf) - 1, 0);
	assert_true(n > 3);
	assert_int_equal(strncmp(buf, "OK 1073741824\n", (size_t)n), 0);
	close(s);
}

/* Paused, a host's connection waits in its socket; after resume the guest hears of it. */
static void test_vsock_pause_holds_host_connect(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct timespec ts = {0, 100000000};
	struct vhdr *p;

	f->dev->ops->pause(f->dev);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/v.sock", f->dir);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(s, "CONNECT 7000\n", 13, 0), 13);
	vsock_rx_buffer(f, 20);
	nanosleep(&ts, NULL);
	assert_int_equal(used_idx(f, 0), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	f->dev->ops->resume(f->dev);
	p = vsock_rx_pkt(f, 0);
	assert_int_equal(p->op, 1); /* REQUEST */
	assert_int_equal(p->dst_port, 7000);
	close(s);
}

static void test_vsock_packet_beyond_buffer(void **state)
{
	struct fixture *f = *state;
	struct vhdr h = {.src_cid = 42,
			 .dst_cid = 2,
			 .src_port = 1,
			 .dst_port = 2,
			 .len = 1000,
			 .type = 1,
			 .op = 5};
	uint64_t gpa[2] = {BUF(0), BUF(1)};
	uint32_t l[2] = {sizeof(h), 10};
	bool w[2] = {false, false};

	memcpy(fake_ptr(&f->r, BUF(0)), &h, sizeof(h));
	post(f, 1, 2, gpa, l, w);
	assert_true(wait_broken(f));
	bring_up(f);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_vsock_short_header(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa[1] = {BUF(0)};
	uint32_t l[1] = {20};
	bool w[1] = {false};

	post(f, 1, 1, gpa, l, w);
	assert_true(wait_broken(f));
}

static int vsock_setup_short(void **state)
{
	int ret;

	setup_handshake_ms = 1000;
	ret = vsock_setup(state);
	setup_handshake_ms = 0;
	return ret;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

/*
 * Host clients that connect and never send their CONNECT line neither fill
 * the connection table (a real client behind 512 of them gets through at
 * once) nor stay: each is closed after the handshake limit.
 */
static void test_vsock_half_open_bounded(void **state)
{
	struct fixture *f = *state;
	static int idle[512];
	struct rlimit rl;
	char path[96], c;
	struct vhdr *p;
	int s, late;
	struct pollfd pfd = {.events = POLLIN};

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	snprintf(path, sizeof(path), "%s/v.sock", f->dir);
	for (unsigned int i = 0; i < 512; i++) {
		idle[i] = unix_connect(path);
		assert_true(idle[i] >= 0);
	}
	s = unix_connect(path);
	assert_true(s >= 0);
	assert_int_equal(send(s, "CONNECT 7000\n", 13, 0), 13);
	vsock_rx_buffer(f, 20);
	p = vsock_rx_pkt(f, 0);
	assert_int_equal(p->op, 1); /* REQUEST: the real client was not locked out */
	assert_int_equal(p->dst_port, 7000);
	for (unsigned int i = 0; i < 512; i++)
		close(idle[i]);

	/* One idle client alone: closed once its time is up (EOF). */
	late = unix_connect(path);
	assert_true(late >= 0);
	pfd.fd = late;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(recv(late, &c, 1, MSG_DONTWAIT), 0);
	close(late);
	/* The real one is still there (its REQUEST waits for the guest's answer). */
	assert_int_equal(recv(s, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	close(s);
}

/*
 * The socket of a killed VMM (a socket file nobody listens on) is replaced;
 * a live one (another VMM's) is refused and keeps working; a file that is
 * not a socket is refused and never removed. The socket is 0600 whatever
 * the umask.
 */
static void test_vsock_socket_path(void **state)
{
	struct vsock_config vc = {.cid = 3};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[64] = "/tmp/vsock-path-XXXXXX", path[96], file[96], cmd[128];
	struct virtio_dev *v, *v2;
	struct stat st;
	mode_t old = umask(0);
	int fd, c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	vc.uds_path = path;
	/* A dead socket: bound, never listening, its process gone without unlinking. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	v = virtio_vsock_create(&vc, NULL);
	assert_non_null(v);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	/* A live one: refused, and still served. */
	assert_null(virtio_vsock_create(&vc, NULL));
	c = unix_connect(path);
	assert_true(c >= 0);
	close(c);
	v->ops->destroy(v);
	assert_int_equal(lstat(path, &st), -1); /* removed with its VM */
	/* Not a socket: refused, left alone. */
	snprintf(file, sizeof(file), "%s/data", dir);
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	vc.uds_path = file;
	v2 = virtio_vsock_create(&vc, NULL);
	assert_null(v2);
	assert_int_equal(lstat(file, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 4);
	umask(old);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_vsock_bad_config(void **state)
{
	struct vsock_config vc = {.cid = 2, .uds_path = "/tmp/x.sock"};

	(void)state;
	assert_null(virtio_vsock_create(&vc, NULL));
	vc.cid = 3;
	vc.uds_path = "/nonexistent-dir/v.sock";
	assert_null(virtio_vsock_create(&vc, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_net_config, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_tx, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_mmds, net_mmds_setup, net_mmds_teardown),
	    cmocka_unit_test_setup_teardown(test_net_rate_limited, net_setup_limited,
					    net_teardown_limited),
	    cmocka_unit_test_setup_teardown(test_net_rx_merge_and_backpressure, net_setup,
					    net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_oversized_frame, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_headerless_frame, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_readable_rx_buffer, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_loop_chain, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_pause_holds_frames, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_destroy_paused, net_setup, net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_ctrl_features, net_setup_ctrl, net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_ctrl_announce, net_setup_ctrl, net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_announce_rounds, net_setup_ctrl, net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_no_announce_unnegotiated, net_setup_ctrl,
					    net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_ctrl_rx_filter, net_setup_ctrl, net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_ctrl_hostile, net_setup_ctrl, net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_ctrl_unnegotiated, net_setup_ctrl,
					    net_teardown),
	    cmocka_unit_test_setup_teardown(test_net_state_v1, net_setup_ctrl, net_teardown),
	    cmocka_unit_test_setup_teardown(test_vsock_guest_connect, vsock_setup, vsock_teardown),
	    cmocka_unit_test_setup_teardown(test_vsock_host_connect, vsock_setup, vsock_teardown),
	    cmocka_unit_test_setup_teardown(test_vsock_pause_holds_host_connect, vsock_setup,
					    vsock_teardown),
	    cmocka_unit_test_setup_teardown(test_vsock_packet_beyond_buffer, vsock_setup,
					    vsock_teardown),
	    cmocka_unit_test_setup_teardown(test_vsock_short_header, vsock_setup, vsock_teardown),
	    cmocka_unit_test_setup_teardown(test_vsock_half_open_bounded, vsock_setup_short,
					    vsock_teardown),
	    cmocka_unit_test(test_vsock_socket_path),
	    cmocka_unit_test(test_vsock_bad_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
