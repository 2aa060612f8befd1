/*
 * Guest frames for the metadata service's endpoint, built as a guest's
 * stack would (Ethernet, ARP, IPv4, TCP with real checksums), and the
 * endpoint's answers taken apart: shared by tests/unit/test_mmds.c and
 * tests/fuzz/fuzz_mmds.c.
 */
#ifndef BANYAN_TESTS_MMDS_FRAMES_H
#define BANYAN_TESTS_MMDS_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mmds/mmds.h"

#define MF_GUEST_IP 0x0a000002u /* 10.0.0.2 */
#define MF_TCP_SYN  0x02
#define MF_TCP_RST  0x04
#define MF_TCP_PSH  0x08
#define MF_TCP_ACK  0x10
#define MF_TCP_FIN  0x01

static const uint8_t mf_guest_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
static const uint8_t mf_mmds_mac[6] = MMDS_MAC;

static inline void mf_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void mf_be32(uint8_t *p, uint32_t v)
{
	mf_be16(p, (uint16_t)(v >> 16));
	mf_be16(p + 2, (uint16_t)v);
}

static inline uint32_t mf_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint32_t mf_sum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static inline uint16_t mf_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline void mf_eth(uint8_t *f, const uint8_t dst[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, mf_guest_mac, 6);
	mf_be16(f + 12, type);
}

/* An ARP request from the guest for @target; 42 bytes. */
static inline size_t mf_arp_request(uint8_t *f, uint32_t target)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t *a = f + 14;

	mf_eth(f, bcast, 0x0806);
	mf_be16(a, 1);
	mf_be16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	mf_be16(a + 6, 1);
	memcpy(a + 8, mf_guest_mac, 6);
	mf_be32(a + 14, MF_GUEST_IP);
	memset(a + 18, 0, 6);
	mf_be32(a + 24, target);
	return 42;
}

/* A TCP segment from the guest's @sport to @dst:80 carrying @len bytes of @data. */
static inline size_t mf_tcp(uint8_t *f, uint32_t dst, uint16_t sport, uint32_t seq, uint32_t ack,
			    uint8_t flags, const void *data, size_t len)
{
	uint8_t *ip = f + 14, *tcp = ip + 20;
	uint32_t sum;

	mf_eth(f, mf_mmds_mac, 0x0800);
	memset(ip, 0, 40);
	ip[0] = 0x45;
	mf_be16(ip + 2, (uint16_t)(40 + len));
	mf_be16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = 6;
	mf_be32(ip + 12, MF_GUEST_IP);
	mf_be32(ip + 16, dst);
	mf_be16(ip + 10, mf_fold(mf_sum(ip, 20, 0)));
	mf_be16(tcp, sport);
	mf_be16(tcp + 2, 80);
	mf_be32(tcp + 4, seq);
	mf_be32(tcp + 8, ack);
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	mf_be16(tcp + 14, 65535);
	if (len)
		memcpy(tcp + 20, data, len);
	sum = mf_sum(ip + 12, 8, 6 + 20 + (uint32_t)len); /* pseudo header */
	mf_be16(tcp + 16, mf_fold(mf_sum(tcp, 20 + len, sum)));
	return 14 + 40 + len;
}

/* A TCP segment to the guest: its flags, sequence numbers and payload. False for anything else. */
static inline bool mf_parse_tcp(const uint8_t *f, size_t len, uint8_t *flags, uint32_t *seq,
				uint32_t *ack, const uint8_t **data, size_t *dlen)
{
	size_t ihl, doff, tot;

	if (len < 54 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 6)
		return false;
	ihl = (size_t)(f[14] & 0xf) * 4;
	tot = (size_t)(f[16] << 8 | f[17]);
	if (ihl < 20 || tot > len - 14 || tot < ihl + 20)
		return false;
	doff = (size_t)(f[14 + ihl + 12] >> 4) * 4;
	if (doff < 20 || ihl + doff > tot)
		return false;
	*flags = f[14 + ihl + 13];
	*seq = mf_get32(f + 14 + ihl + 4);
	*ack = mf_get32(f + 14 + ihl + 8);
	*data = f + 14 + ihl + doff;
	*dlen = tot - ihl - doff;
	return true;
}

/* The IPv4 header and TCP checksums of the frame @f to the guest verify. */
static inline bool mf_tcp_csum_ok(const uint8_t *f, size_t len)
{
	size_t ihl = (size_t)(f[14] & 0xf) * 4, tot = (size_t)(f[16] << 8 | f[17]);
	uint32_t sum;

	if (len < 14 + tot || mf_fold(mf_sum(f + 14, ihl, 0)) != 0)
		return false;
	sum = mf_sum(f + 26, 8, 6 + (uint32_t)(tot - ihl));
	return mf_fold(mf_sum(f + 14 + ihl, tot - ihl, sum)) == 0;
}

#endif
