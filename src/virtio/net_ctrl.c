/*
 * virtio-net's control commands and receive filter (net_ctrl.h). The
 * command's bytes stay in the guest's buffers: each field is copied out
 * with iov_to_buf at an offset checked against the readable length first,
 * in 64-bit arithmetic (a 32-bit entry count times 6 cannot wrap it).
 */
#include "virtio/net_ctrl.h"

#include "virtio/virtqueue.h"
#include "vmm/state.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#define CMD_HDR 2 /* class, command */

void net_filter_reset(struct net_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->promisc = true;
}

static bool in_table(const uint8_t (*table)[6], unsigned int n, const uint8_t *mac)
{
	for (unsigned int i = 0; i < n; i++)
		if (memcmp(table[i], mac, 6) == 0)
			return true;
	return false;
}

bool net_filter_accepts(const struct net_filter *f, const uint8_t mac[6], const uint8_t *frame,
			size_t len)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

	if (f->promisc || len < 6)
		return true;
	if (frame[0] & 1) { /* group address: broadcast or multicast */
		if (memcmp(frame, bcast, 6) == 0 || f->allmulti || f->multi_overflow)
			return true;
		return in_table((const uint8_t(*)[6])f->multi, f->nmulti, frame);
	}
	if (memcmp(frame, mac, 6) == 0 || f->uni_overflow)
		return true;
	return in_table((const uint8_t(*)[6])f->uni, f->nuni, frame);
}

/* The command's data: @len bytes at @off past the header; false when they are not all there. */
static bool cmd_data(const struct iovec *iov, unsigned int nout, uint64_t out_len, uint64_t off,
		     void *buf, uint64_t len)
{
	if (off > out_len - CMD_HDR || len > out_len - CMD_HDR - off)
		return false;
	return iov_to_buf(iov, nout, CMD_HDR + off, buf, len) == len;
}

/* One half of MAC_TABLE_SET at @off: le32 entries, then the entries; *@off moves past it. */
static bool mac_half(const struct iovec *iov, unsigned int nout, uint64_t out_len, uint64_t *off,
		     uint8_t (*table)[6], uint8_t *n, bool *overflow)
{
	uint32_t le = 0;
	uint64_t count, keep;

	if (!cmd_data(iov, nout, out_len, *off, &le, sizeof(le)))
		return false;
	count = le32toh(le);
	*off += sizeof(le);
	if (count * 6 > out_len - CMD_HDR - *off)
		return false; /* more entries than bytes */
	keep = count <= NET_MAC_TABLE ? count : 0;
	if (keep && !cmd_data(iov, nout, out_len, *off, table, keep * 6))
		return false;
	*n = (uint8_t)keep;
	*overflow = count > NET_MAC_TABLE;
	*off += count * 6;
	return true;
}

/* MAC_TABLE_SET (5.1.6.5.2): unicast then multicast, exactly the bytes given, or nothing. */
static uint8_t mac_table_set(const struct net_ctrl_target *t, const struct iovec *iov,
			     unsigned int nout, uint64_t out_len)
{
	struct net_filter f = *t->filter;
	uint64_t off = 0;

	if (!mac_half(iov, nout, out_len, &off, f.uni, &f.nuni, &f.uni_overflow) ||
	    !mac_half(iov, nout, out_len, &off, f.multi, &f.nmulti, &f.multi_overflow) ||
	    off != out_len - CMD_HDR)
		return VIRTIO_NET_ERR;
	*t->filter = f;
	return VIRTIO_NET_OK;
}

static uint8_t rx_mode(const struct net_ctrl_target *t, uint8_t cmd, const struct iovec *iov,
		       unsigned int nout, uint64_t out_len)
{
	uint8_t on;

	if (out_len != CMD_HDR + 1 || !cmd_data(iov, nout, out_len, 0, &on, 1))
		return VIRTIO_NET_ERR;
	if (cmd == VIRTIO_NET_CTRL_RX_PROMISC)
		t->filter->promisc = on;
	else if (cmd == VIRTIO_NET_CTRL_RX_ALLMULTI)
		t->filter->allmulti = on;
	else
		return VIRTIO_NET_ERR; /* ALLUNI..NOBCAST need CTRL_RX_EXTRA, not offered */
	return VIRTIO_NET_OK;
}

/* MAC_ADDR_SET (5.1.6.5.2): a unicast address, 6 bytes exactly. */
static uint8_t mac_addr_set(const struct net_ctrl_target *t, const struct iovec *iov,
			    unsigned int nout, uint64_t out_len)
{
	uint8_t mac[6];

	if (out_len != CMD_HDR + 6 || !cmd_data(iov, nout, out_len, 0, mac, 6) || (mac[0] & 1))
		return VIRTIO_NET_ERR;
	memcpy(t->mac, mac, 6);
	return VIRTIO_NET_OK;
}

static bool has(const struct net_ctrl_target *t, unsigned int feature)
{
	return t->acked & (1ULL << feature);
}

uint8_t net_ctrl_command(const struct net_ctrl_target *t, const struct iovec *iov,
			 unsigned int nout, uint64_t out_len)
{
	uint8_t hdr[CMD_HDR];

	if (out_len < CMD_HDR || iov_to_buf(iov, nout, 0, hdr, CMD_HDR) != CMD_HDR)
		return VIRTIO_NET_ERR;
	switch (hdr[0]) {
	case VIRTIO_NET_CTRL_RX:
		return has(t, VIRTIO_NET_F_CTRL_RX) ? rx_mode(t, hdr[1], iov, nout, out_len)
						    : VIRTIO_NET_ERR;
	case VIRTIO_NET_CTRL_MAC:
		if (hdr[1] == VIRTIO_NET_CTRL_MAC_TABLE_SET && has(t, VIRTIO_NET_F_CTRL_RX))
			return mac_table_set(t, iov, nout, out_len);
		if (hdr[1] == VIRTIO_NET_CTRL_MAC_ADDR_SET && has(t, VIRTIO_NET_F_CTRL_MAC_ADDR))
			return mac_addr_set(t, iov, nout, out_len);
		return VIRTIO_NET_ERR;
	case VIRTIO_NET_CTRL_ANNOUNCE:
		if (hdr[1] != VIRTIO_NET_CTRL_ANNOUNCE_ACK || out_len != CMD_HDR ||
		    !has(t, VIRTIO_NET_F_GUEST_ANNOUNCE))
			return VIRTIO_NET_ERR;
		*t->status &= (uint16_t)~VIRTIO_NET_S_ANNOUNCE;
		return VIRTIO_NET_OK;
	default: /* VLAN, MQ, guest offloads, coalescing: not offered */
		return VIRTIO_NET_ERR;
	}
}

void net_filter_state(struct state_io *io, struct net_filter *f)
{
	state_bool(io, &f->promisc);
	state_bool(io, &f->allmulti);
	state_bool(io, &f->uni_overflow);
	state_bool(io, &f->multi_overflow);
	state_u8(io, &f->nuni);
	state_u8(io, &f->nmulti);
	state_bytes(io, f->uni, sizeof(f->uni));
	state_bytes(io, f->multi, sizeof(f->multi));
	if (io->loading && !io->err && (f->nuni > NET_MAC_TABLE || f->nmulti > NET_MAC_TABLE))
		io->err = -EBADMSG;
}
