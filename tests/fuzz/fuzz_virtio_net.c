/*
 * libFuzzer target: virtio-net transmit chains and receive buffers, with a
 * SOCK_SEQPACKET socket pair standing in for the TAP (one frame with its
 * 12-byte header per datagram, as tests/unit/test_virtio_net.c does). The
 * input gives the features and queue setup, then operations: the shared
 * ones of fake_transport.h (chains of any shape on any of the three
 * queues, kicks, resets, config reads, state) and the host's: a frame
 * arriving on the TAP (any length, headerless to larger than any buffer),
 * the host reading what the guest sent, the link going down, a new MAC.
 * The control queue (queue 2) parses the chains posted there as
 * commands (net_ctrl.h): the seeds ctrl-* hold well-formed ones, and a
 * state round trip followed by an event raises the announcement that an
 * ANNOUNCE_ACK then clears. The receive filter those commands program
 * decides which host frames reach the receive queue.
 *
 * Build and run: tests/fuzz/meson.build (the unit suite runs it briefly).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_transport.h"
#include "fuzz_log.h"
#include "vmm/vm.h"

#define MAX_OPS	  64
#define FRAME_MAX (12 + 65536 + 18 + 64) /* a little more than the device takes */

static uint8_t frame[FRAME_MAX];

/* A frame from the host: its first bytes from the input, the rest a pattern. */
static void host_frame(int peer, struct fuzz_input *in)
{
	uint8_t kind = fin_u8(in);
	size_t len = fin_u16(in);
	size_t got;

	if (kind & 1)
		len = len * 2 % FRAME_MAX; /* up to beyond the largest frame */
	got = fin_bytes(in, frame, len < 64 ? len : 64);
	memset(frame + got, 0xab, len - got);
	(void)!send(peer, frame, len, MSG_DONTWAIT);
}

/* The host side reads everything the guest sent. */
static void host_drain(int peer)
{
	while (recv(peer, frame, sizeof(frame), MSG_DONTWAIT) >= 0)
		;
}

static void host_op(struct ft_machine *m, int peer, unsigned int op, struct fuzz_input *in)
{
	uint8_t mac[6];

	switch (op) {
	case 0:
		host_frame(peer, in);
		ft_event(m, 0);
		break;
	case 1:
		host_drain(peer);
		ft_event(m, 0);
		break;
	case 2:
		if (virtio_net_set_link(m->vdev, fin_u8(in) & 1) < 0)
			abort();
		break;
	default:
		fin_bytes(in, mac, sizeof(mac));
		if (virtio_net_set_mac(m->vdev, mac) < 0)
			abort();
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	struct fuzz_input in = {data, size};
	struct net_config nc = {.tap = "fuzz0", .mac = {0x52, 0x54, 0, 1, 2, 3}, .has_mac = true};
	struct ft_machine m;
	int sv[2], sndbuf = 4096;
	uint8_t flags = fin_u8(&in);

	if (!quiet)
		fuzz_log_quiet();
	quiet = true;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	/* A small send buffer: the TAP refuses frames now and then (back-pressure). */
	if ((flags & 1) && setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0)
		abort();
	/* With offloads the device issues TUNSETOFFLOAD, which a socket refuses. */
	if (ft_init(&m, virtio_net_create_fd(&nc, 0, sv[0], flags & 2)) < 0)
		abort();
	ft_bring_up(&m, fin_u64(&in), &in);
	for (int n = 0; n < MAX_OPS && in.left; n++) {
		unsigned int op = fin_u8(&in) % (FT_OPS + 4);

		if (op < FT_OPS)
			ft_generic_op(&m, op, &in);
		else
			host_op(&m, sv[1], op - FT_OPS, &in);
	}
	ft_event(&m, 0);
	ft_collect(&m, 0);
	ft_collect(&m, 1);
	ft_destroy(&m);
	close(sv[1]);
	return 0;
}
