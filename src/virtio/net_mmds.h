/*
 * virtio-net's two hooks into the metadata service (mmds/mmds.h), kept
 * apart from the card's TAP paths: what the guest transmits to the MMDS
 * address goes to the card's lwIP endpoint, what the endpoint answers
 * comes in ahead of the TAP's frames.
 */
#ifndef BANYAN_VIRTIO_NET_MMDS_H
#define BANYAN_VIRTIO_NET_MMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct mmds_net;

/*
 * net_mmds_tx - one transmit chain (@iov, @niov readable buffers, @len
 * bytes: the 12-byte virtio-net header, then the frame). True when it was
 * the endpoint @m's (ARP or IPv4 for its address): it was handed over or
 * dropped (a GSO frame, one over 1514 bytes) and must not reach the TAP.
 * A partial checksum the guest left to the device is completed first.
 */
bool net_mmds_tx(struct mmds_net *m, const struct iovec *iov, unsigned int niov, uint64_t len);

/*
 * net_mmds_rx - move @m's next output frame (NULL: none) into @buf, after
 * a zeroed 12-byte virtio-net header, and set *@len. @buf holds at least
 * the header and 1514 bytes. False when there is none.
 */
bool net_mmds_rx(struct mmds_net *m, uint8_t *buf, size_t *len);

#endif
