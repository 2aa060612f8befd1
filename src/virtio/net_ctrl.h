/*
 * virtio-net's control virtqueue (virtio 1.2, 5.1.6.5), kept apart from
 * the card's TAP paths: the commands a driver sends (receive mode, MAC
 * filter table, MAC address, announcement acknowledgement), parsed from
 * the guest's buffers with every length checked, and the receive filter
 * they program, applied to frames from the TAP.
 *
 * What is implemented is what the card offers: VIRTIO_NET_F_CTRL_RX
 * (promiscuous and all-multicast modes, the MAC filter table),
 * VIRTIO_NET_F_CTRL_MAC_ADDR and VIRTIO_NET_F_GUEST_ANNOUNCE. Every other
 * command (CTRL_RX_EXTRA's modes, VLAN filtering, multiqueue, offloads,
 * notification coalescing), and any command of a feature the driver did
 * not negotiate, is answered VIRTIO_NET_ERR and changes nothing.
 */
#ifndef BANYAN_VIRTIO_NET_CTRL_H
#define BANYAN_VIRTIO_NET_CTRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct state_io;

/* Feature bits of the control queue (5.1.3). */
#define VIRTIO_NET_F_CTRL_VQ	    17
#define VIRTIO_NET_F_CTRL_RX	    18
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21
#define VIRTIO_NET_F_CTRL_MAC_ADDR  23

/* Configuration status bits (5.1.4). */
#define VIRTIO_NET_S_LINK_UP  1
#define VIRTIO_NET_S_ANNOUNCE 2

/* The ack byte (5.1.6.5). */
#define VIRTIO_NET_OK  0
#define VIRTIO_NET_ERR 1

/* Classes and commands (5.1.6.5.1-5.1.6.5.4). */
#define VIRTIO_NET_CTRL_RX	      0
#define VIRTIO_NET_CTRL_RX_PROMISC    0
#define VIRTIO_NET_CTRL_RX_ALLMULTI   1
#define VIRTIO_NET_CTRL_MAC	      1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET 0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET  1
#define VIRTIO_NET_CTRL_VLAN	      2
#define VIRTIO_NET_CTRL_ANNOUNCE      3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK  0

/* Entries each half of the MAC filter table holds; more: that half accepts everything. */
#define NET_MAC_TABLE 64

/*
 * The receive filter (5.1.6.5.1, 5.1.6.5.2). After a reset the card is
 * promiscuous (a driver that never programs it gets every frame, as
 * before the control queue existed); the driver narrows it.
 */
struct net_filter {
	bool promisc;
	bool allmulti;
	bool uni_overflow;   /* the driver gave more unicast entries than the table holds */
	bool multi_overflow; /* ... more multicast entries */
	uint8_t nuni, nmulti;
	uint8_t uni[NET_MAC_TABLE][6];
	uint8_t multi[NET_MAC_TABLE][6];
};

/* What a command may change on the card: its MAC, its status, the filter. */
struct net_ctrl_target {
	uint64_t acked; /* negotiated features: a command of another feature is refused */
	uint8_t *mac;	/* the card's current MAC (6 bytes) */
	uint16_t *status;
	struct net_filter *filter;
};

/* net_filter_reset - back to the reset state: promiscuous, empty table. */
void net_filter_reset(struct net_filter *f);

/*
 * net_filter_accepts - whether the Ethernet frame @frame (@len bytes,
 * without the virtio header) passes @f for a card whose MAC is @mac.
 * Frames shorter than a destination address pass (the guest drops them).
 */
bool net_filter_accepts(const struct net_filter *f, const uint8_t mac[6], const uint8_t *frame,
			size_t len);

/*
 * net_ctrl_command - run one command: @iov[0..@nout) are the chain's
 * device-readable buffers (@out_len bytes: class, command, data). Never
 * reads beyond them; a short or long command, an unknown one, one of a
 * feature not negotiated, is refused without changing anything.
 * Returns VIRTIO_NET_OK or VIRTIO_NET_ERR, the ack to write.
 */
uint8_t net_ctrl_command(const struct net_ctrl_target *t, const struct iovec *iov,
			 unsigned int nout, uint64_t out_len);

/*
 * net_filter_state - save or load @f (vmm/state.h). Loading checks the
 * table sizes (io->err -EBADMSG beyond NET_MAC_TABLE).
 */
void net_filter_state(struct state_io *io, struct net_filter *f);

#endif
