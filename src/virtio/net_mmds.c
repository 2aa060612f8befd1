/* virtio-net's hooks into the metadata service (net_mmds.h). */
#include "virtio/net_mmds.h"

#include "mmds/mmds.h"
#include "virtio/virtqueue.h"

#include <string.h>

#define HDR_LEN			    12
#define FRAME_MAX		    1514
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Fill in the checksum at csum_start + csum_offset over csum_start..end (5.1.6.2). */
static bool complete_csum(uint8_t *frame, size_t len, unsigned int start, unsigned int off)
{
	uint32_t sum = 0;
	uint16_t c;

	if (start >= len || off > len - start || len - start - off < 2)
		return false;
	for (size_t i = start; i + 1 < len; i += 2)
		sum += (uint32_t)(frame[i] << 8 | frame[i + 1]);
	if ((len - start) & 1)
		sum += (uint32_t)frame[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	c = (uint16_t)~sum;
	frame[start + off] = (uint8_t)(c >> 8);
	frame[start + off + 1] = (uint8_t)c;
	return true;
}

bool net_mmds_tx(struct mmds_net *m, const struct iovec *iov, unsigned int niov, uint64_t len)
{
	uint8_t buf[HDR_LEN + FRAME_MAX];
	uint8_t *frame = buf + HDR_LEN;
	uint64_t got = iov_to_buf(iov, niov, 0, buf, len < sizeof(buf) ? len : sizeof(buf));

	if (got < HDR_LEN || !mmds_net_claims(m, frame, got - HDR_LEN))
		return false;
	if (len > sizeof(buf) || buf[1] != 0)
		return true; /* oversized or GSO: the endpoint never needs one, dropped */
	if ((buf[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    !complete_csum(frame, got - HDR_LEN, le16(buf + 6), le16(buf + 8)))
		return true;
	mmds_net_input(m, frame, got - HDR_LEN);
	return true;
}

bool net_mmds_rx(struct mmds_net *m, uint8_t *buf, size_t *len)
{
	size_t n = m ? mmds_net_next(m, buf + HDR_LEN, FRAME_MAX) : 0;

	if (!n)
		return false;
	memset(buf, 0, HDR_LEN);
	*len = HDR_LEN + n;
	return true;
}
