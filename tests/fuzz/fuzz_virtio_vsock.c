/*
 * libFuzzer targets for virtio-vsock, built twice from this file:
 *
 *  - fuzz_virtio_vsock: the guest's side. Packets on the transmit queue
 *    (headers with any CID, port, type, op, length, flags and credit;
 *    payloads up to the whole data area), receive and event buffers, and
 *    the host's moves in between (clients connecting to the Unix socket,
 *    host listeners accepting the guest's connections, either side sending,
 *    shutting down, closing, reading), plus the shared operations of
 *    fake_transport.h.
 *  - fuzz_vsock_handshake (-DVSOCK_HANDSHAKE): the host's side. What host
 *    processes write on the Unix socket: "CONNECT <port>\n" lines, garbage,
 *    partial and overlong lines, data after the line, hang-ups, against a
 *    guest that, when the input says, answers the REQUESTs it received
 *    (RESPONSE or RST) and refills its receive queue.
 *
 * The host side is real: Unix sockets in a temporary directory, the
 * listener PATH, and PATH_1000, PATH_1001 for the guest's connections.
 * Build and run: tests/fuzz/meson.build (the unit suite runs both briefly).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fake_transport.h"
#include "fuzz_log.h"
#include "vmm/vm.h"

#define MAX_OPS	  64
#define CID	  3
#define HOST_CID  2
#define HDR	  44
#define RXQ	  0
#define TXQ	  1
#define EVQ	  2
#define NFDS	  8
#define RX_BUF(s) (FT_DATA + 0x200ULL * (s)) /* 512 bytes per receive slot */
#define TX_BUF(s) (FT_DATA + 0x8000ULL + 0x100ULL * (s))

enum { OP_REQUEST = 1, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW, OP_CREDIT_UPDATE };

struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

static char dir[64], path[96];
static int listeners[2] = {-1, -1};

/* Host fds of one input: clients of PATH, and guest connections the host accepted. */
struct host {
	int client[NFDS];
	int accepted[NFDS];
};

static int host_listen(const char *p)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
		abort();
	return fd;
}

static void cleanup(void)
{
	char p[128];

	for (unsigned int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s_%u", path, 1000 + i);
		unlink(p);
	}
	rmdir(dir);
}

static void setup_once(void)
{
	char p[128];

	snprintf(dir, sizeof(dir), "/tmp/fuzz-vsock-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	for (unsigned int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s_%u", path, 1000 + i);
		listeners[i] = host_listen(p);
	}
	atexit(cleanup);
	fuzz_log_quiet();
}

static int *host_fd(struct host *h, uint8_t sel)
{
	return sel & 0x80 ? &h->accepted[sel % NFDS] : &h->client[sel % NFDS];
}

static void host_connect(struct host *h, uint8_t sel)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int *fd = &h->client[sel % NFDS];

	if (*fd >= 0)
		return;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (*fd < 0 || connect(*fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort(); /* the device's listener always has room: it accepts at each event */
}

static void host_accept(struct host *h, uint8_t sel)
{
	int *fd = &h->accepted[sel % NFDS];

	if (*fd < 0)
		*fd = accept4(listeners[sel & 1], NULL, NULL, SOCK_NONBLOCK);
}

static void host_send(struct host *h, uint8_t sel, const void *buf, size_t len)
{
	int *fd = host_fd(h, sel);

	if (*fd >= 0)
		(void)!send(*fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void host_close(struct host *h, uint8_t sel, bool shut_only)
{
	int *fd = host_fd(h, sel);

	if (*fd < 0)
		return;
	if (shut_only) {
		shutdown(*fd, SHUT_WR);
		return;
	}
	close(*fd);
	*fd = -1;
}

static void host_read(struct host *h, uint8_t sel)
{
	static char buf[65536];
	int *fd = host_fd(h, sel);

	if (*fd >= 0)
		while (recv(*fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
}

/* --- the guest --- */

/* Receive buffers in every free slot of the receive queue (and one event buffer). */
static void guest_fill_rx(struct ft_machine *m, uint32_t len)
{
	struct ft_desc d = {.len = len, .flags = VRING_DESC_F_WRITE};
	struct ft_desc ev = {.addr = FT_DATA + 0xbff0, .len = 8, .flags = VRING_DESC_F_WRITE};
	bool event_posted = false;

	for (unsigned int s = 0; s < FT_RING_MAX && s < m->q[RXQ].size; s++) {
		if (m->q[RXQ].busy[s])
			continue;
		d.addr = RX_BUF(s);
		if (!ft_post(m, RXQ, &d, 1))
			break;
	}
	for (unsigned int s = 0; s < FT_RING_MAX; s++)
		event_posted |= m->q[EVQ].outstanding[s];
	if (!event_posted)
		(void)ft_post(m, EVQ, &ev, 1);
	ft_notify(m, RXQ);
	ft_notify(m, EVQ);
}

/*
 * One packet on the transmit queue: the header and @plen payload bytes in
 * one descriptor, or (@split) in two with the header cut at byte 20; with
 * @big, one more descriptor of @big bytes covering the data area.
 */
static void guest_send(struct ft_machine *m, const struct hdr *h, const uint8_t *payload,
		       uint32_t plen, bool split, uint32_t big)
{
	struct ft_desc d[3] = {{0}};
	unsigned int s = 0, n = split ? 2 : 1;
	uint8_t *buf;

	while (s < FT_RING_MAX && m->q[TXQ].busy[s])
		s++; /* ft_post puts the head in the lowest free slot */
	buf = ft_ptr(m, TX_BUF(s), 0x100);
	if (!buf || s >= m->q[TXQ].size)
		return;
	memcpy(buf, h, HDR);
	if (plen)
		memcpy(buf + HDR, payload, plen);
	d[0] = (struct ft_desc){.addr = TX_BUF(s), .len = split ? 20 : HDR + plen};
	d[1] = (struct ft_desc){.addr = TX_BUF(s) + 20, .len = HDR - 20 + plen};
	if (big)
		d[n++] = (struct ft_desc){.addr = FT_DATA, .len = big};
	if (ft_post(m, TXQ, d, n))
		ft_notify(m, TXQ);
}

/* Read the receive queue like a driver: answer the host's REQUESTs. */
static void guest_answer(struct ft_machine *m, bool refuse)
{
	struct ft_queue *fq = &m->q[RXQ];
	uint16_t *used = ft_ptr(m, FT_GPA + 0x1000ULL * RXQ + 0x800, 4 + 8ULL * FT_RING_MAX);
	uint16_t idx = __atomic_load_n(&used[1], __ATOMIC_ACQUIRE);

	if (!fq->size || m->raw_rings)
		return;
	for (uint16_t i = fq->used_seen; i != idx && (uint16_t)(i - fq->used_seen) <= fq->size;
	     i++) {
		uint32_t id = ((uint32_t *)(used + 2))[2 * (i % fq->size)];
		struct hdr *p = id < FT_RING_MAX ? ft_ptr(m, RX_BUF(id), HDR) : NULL;

		if (p && p->op == OP_REQUEST) {
			struct hdr r = {.src_cid = CID,
					.dst_cid = HOST_CID,
					.src_port = p->dst_port,
					.dst_port = p->src_port,
					.type = 1,
					.op = refuse ? OP_RST : OP_RESPONSE,
					.buf_alloc = 65536};

			guest_send(m, &r, NULL, 0, false, 0);
		}
	}
	ft_collect(m, RXQ);
	ft_collect(m, TXQ);
	ft_collect(m, EVQ);
}

/* --- the two decoders --- */

static void handshake_line(struct host *h, uint8_t sel, struct fuzz_input *in)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "CONNECT %u%s",
			 fin_u32(in) % (sel & 0x40 ? ~0u : 2000), sel & 0x20 ? "" : "\n");

	host_send(h, sel & 0x87, line, (size_t)n);
}

static void handshake_op(struct ft_machine *m, struct host *h, unsigned int op,
			 struct fuzz_input *in)
{
	uint8_t sel = fin_u8(in), buf[255];
	size_t n;

	switch (op) {
	case 0:
		host_connect(h, sel);
		break;
	case 1:
		n = fin_bytes(in, buf, fin_u8(in));
		host_send(h, sel & 0x87, buf, n);
		break;
	case 2:
		handshake_line(h, sel, in);
		break;
	case 3:
		host_close(h, sel & 0x87, sel & 0x40);
		break;
	case 4:
		host_read(h, sel & 0x87);
		break;
	case 5:
		guest_answer(m, sel & 1);
		guest_fill_rx(m, 64 + sel);
		break;
	default:
		host_accept(h, sel);
		break;
	}
	ft_event(m, 0);
}

#ifndef VSOCK_HANDSHAKE
static uint32_t pick_port(struct fuzz_input *in)
{
	static const uint32_t ports[] = {1000, 1001, 1u << 30, (1u << 30) + 1, 1234, 0};
	uint8_t b = fin_u8(in);

	return b < 0xf0 ? ports[b % 6] : fin_u32(in);
}

/* A packet from the input: usually well-formed enough to reach a connection. */
static void guest_packet(struct ft_machine *m, struct fuzz_input *in)
{
	uint8_t sel = fin_u8(in);
	uint8_t payload[0x100 - HDR];
	struct hdr h = {.src_cid = CID, .dst_cid = HOST_CID, .type = 1, .buf_alloc = 256 * 1024};
	uint32_t plen;

	h.op = fin_u8(in) % 8;
	h.src_port = pick_port(in);
	h.dst_port = pick_port(in);
	h.flags = fin_u8(in) % 4;
	h.fwd_cnt = sel & 0x10 ? fin_u32(in) : 0;
	if (sel & 1)
		h.src_cid = fin_u64(in);
	if (sel & 2)
		h.dst_cid = fin_u64(in);
	if (sel & 4)
		h.type = fin_u16(in);
	if (sel & 8)
		h.buf_alloc = fin_u32(in);
	plen = fin_u16(in);
	if (sel & 0x40) { /* the whole data area as payload: credit overruns */
		h.len = plen % (uint32_t)FT_DATA_SIZE + 1;
		guest_send(m, &h, NULL, 0, sel & 0x80, h.len);
		return;
	}
	plen %= sizeof(payload);
	h.len = sel & 0x20 ? fin_u32(in) : plen; /* a length beyond the buffers */
	memset(payload, 0x5a, plen);
	fin_bytes(in, payload, plen < 16 ? plen : 16);
	guest_send(m, &h, payload, plen, sel & 0x80, 0);
}

/* The guest's CID, whatever state was loaded: a guest's, never the host's or a reserved one. */
static void check_cid(struct ft_machine *m)
{
	uint64_t cid = 0;

	m->vdev->ops->config_read(m->vdev, 0, &cid, sizeof(cid));
	if (cid < VIRTIO_VSOCK_CID_MIN || cid > VIRTIO_VSOCK_CID_MAX) {
		fprintf(stderr, "the device took guest CID %llu\n", (unsigned long long)cid);
		abort();
	}
}

static void guest_op(struct ft_machine *m, struct host *h, unsigned int op, struct fuzz_input *in)
{
	if (op < FT_OPS) {
		ft_generic_op(m, op, in);
		check_cid(m);
		return;
	}
	switch (op - FT_OPS) {
	case 0:
		guest_packet(m, in);
		break;
	case 1:
		guest_fill_rx(m, fin_u8(in) * 2 + 1);
		break;
	case 2:
		guest_answer(m, fin_u8(in) & 1);
		break;
	default:
		handshake_op(m, h, fin_u8(in) % 7, in);
		break;
	}
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct vsock_config vc = {.cid = CID, .uds_path = path};
	struct host h;
	struct ft_machine m;

	if (!dir[0])
		setup_once();
	memset(&h, 0xff, sizeof(h));
	if (ft_init(&m, virtio_vsock_create(&vc, NULL)) < 0)
		abort();
#ifdef VSOCK_HANDSHAKE
	ft_bring_up(&m, 0, &(struct fuzz_input){(const uint8_t *)"\x06\x06\x06", 3});
	guest_fill_rx(&m, 256);
	for (int n = 0; n < MAX_OPS && in.left; n++)
		handshake_op(&m, &h, fin_u8(&in) % 8, &in);
#else
	ft_bring_up(&m, fin_u64(&in), &in);
	for (int n = 0; n < MAX_OPS && in.left; n++)
		guest_op(&m, &h, fin_u8(&in) % (FT_OPS + 4), &in);
#endif
	ft_event(&m, 0);
	guest_answer(&m, false);
	ft_destroy(&m);
	for (unsigned int i = 0; i < NFDS; i++) {
		if (h.client[i] >= 0)
			close(h.client[i]);
		if (h.accepted[i] >= 0)
			close(h.accepted[i]);
	}
	return 0;
}
