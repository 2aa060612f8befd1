/*
 * libFuzzer target: the metadata service's guest side. Every input is
 * first given whole to the HTTP request parser (and answered when it
 * parses). Then, on a fresh endpoint (a card's lwIP interface):
 *
 *   byte 0: bit 0 V2, bit 1 imds_compat, bit 2 raw frames
 *   raw frames: [u16 length][that many bytes: a 12-byte virtio-net header,
 *     then an Ethernet frame] ..., each through the card's transmit hook
 *     (the claim test, checksum completion, lwIP's Ethernet/ARP/IPv4/TCP)
 *   otherwise the harness does the guest's ARP and TCP handshake, then
 *     runs operations: [0][u16 len][bytes] a data segment in sequence,
 *     [1][u8 flags][u32 seq offset][u16 len][bytes] any segment,
 *     [2] run lwIP's timers, [3] a FIN.
 *
 * After every frame the endpoint's output is drained as the card would.
 * Build and run: tests/fuzz/meson.build (the unit suite runs it briefly).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "fuzz_input.h"
#include "fuzz_log.h"
#include "mmds_frames.h"
#include "virtio/net_mmds.h"

#define FRAME_MAX 1600
#define MAX_OPS	  64

static struct mmds *store;
static uint8_t frame[12 + FRAME_MAX], out[12 + 1514];
static uint32_t srv_next; /* the endpoint's next sequence number, as seen */

static void no_wake(void *opaque)
{
	(void)opaque;
}

/* Take the endpoint's output as the card would, following its sequence numbers. */
static void drain(struct mmds_net *n)
{
	size_t len;

	while (net_mmds_rx(n, out, &len)) {
		uint8_t flags;
		uint32_t seq, ack;
		const uint8_t *data;
		size_t dlen;

		if (mf_parse_tcp(out + 12, len - 12, &flags, &seq, &ack, &data, &dlen))
			srv_next =
			    seq + (uint32_t)dlen + ((flags & (MF_TCP_SYN | MF_TCP_FIN)) ? 1 : 0);
	}
}

/* A frame from the guest: a zero virtio-net header (no offloads), then @len bytes. */
static void send_frame(struct mmds_net *n, size_t len)
{
	struct iovec iov = {.iov_base = frame, .iov_len = 12 + len};

	memset(frame, 0, 12);
	(void)net_mmds_tx(n, &iov, 1, 12 + len);
	drain(n);
}

static void raw_frames(struct mmds_net *n, struct fuzz_input *in)
{
	for (unsigned int i = 0; i < MAX_OPS && in->left; i++) {
		size_t len = fin_u16(in) % (12 + FRAME_MAX);
		struct iovec iov = {.iov_base = frame, .iov_len = len};

		len = fin_bytes(in, frame, len);
		iov.iov_len = len;
		(void)net_mmds_tx(n, &iov, 1, len);
		drain(n);
	}
}

static void segment(struct mmds_net *n, uint32_t *seq, uint8_t flags, struct fuzz_input *in)
{
	uint8_t data[1460];
	size_t len = fin_bytes(in, data, fin_u16(in) % sizeof(data));

	send_frame(n,
		   mf_tcp(frame + 12, MMDS_DEFAULT_IPV4, 40000, *seq, srv_next, flags, data, len));
	*seq += (uint32_t)len + ((flags & (MF_TCP_SYN | MF_TCP_FIN)) ? 1 : 0);
}

static void connection(struct mmds_net *n, struct fuzz_input *in)
{
	uint32_t seq = 1000, off;

	send_frame(n, mf_arp_request(frame + 12, MMDS_DEFAULT_IPV4));
	send_frame(n, mf_tcp(frame + 12, MMDS_DEFAULT_IPV4, 40000, seq++, 0, MF_TCP_SYN, NULL, 0));
	send_frame(
	    n, mf_tcp(frame + 12, MMDS_DEFAULT_IPV4, 40000, seq, srv_next, MF_TCP_ACK, NULL, 0));
	for (unsigned int i = 0; i < MAX_OPS && in->left; i++) {
		switch (fin_u8(in) % 4) {
		case 0:
			segment(n, &seq, MF_TCP_ACK | MF_TCP_PSH, in);
			break;
		case 1: {
			uint8_t flags = fin_u8(in);

			off = fin_u32(in);
			seq += off;
			segment(n, &seq, flags, in);
			break;
		}
		case 2:
			mmds_net_timers(n);
			drain(n);
			break;
		default:
			send_frame(n, mf_tcp(frame + 12, MMDS_DEFAULT_IPV4, 40000, seq++, srv_next,
					     MF_TCP_FIN | MF_TCP_ACK, NULL, 0));
		}
	}
}

static void parse_whole(const uint8_t *data, size_t size)
{
	struct mmds_request req;
	char *resp = NULL;
	size_t len;

	if (size <= MMDS_REQ_MAX && mmds_http_parse((const char *)data, size, &req) > 0 &&
	    mmds_http_respond(store, &req, &resp, &len) == 0)
		free(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char seed[] = "{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\",\"n\":3,"
				   "\"list\":[\"a\",{\"b\":\"c\"}],\"sub\":{\"k\":\"v\"}}}}";
	struct fuzz_input in = {.p = data, .left = size};
	struct mmds_net *n;
	uint8_t mode;
	char err[MMDS_ERR_LEN];

	if (!store) {
		fuzz_log_quiet();
		store = mmds_new();
		if (!store || mmds_put_text(store, seed, sizeof(seed) - 1, err) < 0)
			abort();
	}
	parse_whole(data, size);
	mode = fin_u8(&in);
	mmds_configure(store, (mode & 1) ? MMDS_V2 : MMDS_V1, mode & 2);
	n = mmds_net_new(store, MMDS_DEFAULT_IPV4, no_wake, NULL);
	if (!n)
		abort();
	srv_next = 0;
	if (mode & 4)
		raw_frames(n, &in);
	else
		connection(n, &in);
	mmds_net_free(n);
	return 0;
}
