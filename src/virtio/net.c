/*
 * virtio-net (virtio 1.2, 5.1) on a host TAP device: one receive and one
 * transmit queue, the 12-byte virtio 1.x header shared with the TAP
 * (IFF_VNET_HDR, TUNSETVNETHDRSZ), checksum and segmentation offloads
 * negotiated with TUNSETOFFLOAD, mergeable receive buffers.
 *
 * Everything runs on the transport's device thread, which waits on the
 * queue kicks and on this device's own epoll set (its event_fd), holding
 * the TAP fd. The TAP is polled for input only while the guest has receive
 * buffers: with none, a frame read already waits in rx_buf, the TAP is no
 * longer watched, and the receive queue's kick resumes it (back-pressure,
 * no busy loop; the kernel queues or drops what arrives meanwhile).
 */
#include "virtio/virtio.h"
#include "util/efd.h"
#include "mmds/mmds.h"
#include "virtio/net_ctrl.h"
#include "virtio/net_mmds.h"

#include "util/log.h"
#include "virtio/throttle.h"
#include "vmm/state.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#define NET_QUEUE_SIZE	256
#define NET_RXQ		0
#define NET_TXQ		1
#define NET_CTRLQ	2	     /* without VIRTIO_NET_F_MQ the control queue is the third */
#define NET_HDR_LEN	12	     /* struct virtio_net_hdr_v1, num_buffers included */
#define NET_MAX_FRAME	(65536 + 18) /* a 64 KiB GSO frame, Ethernet and VLAN headers */
#define NET_MAX_SEGS	256	     /* buffers in one chain */
#define NET_MAX_MERGE	128	     /* receive buffers merged for one frame */
#define NET_BUDGET	256	     /* frames per turn and direction, then the other runs */
#define NET_CONFIG_SIZE 10

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_CSUM	0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC	5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN	9
#define VIRTIO_NET_F_HOST_TSO4	11
#define VIRTIO_NET_F_HOST_TSO6	12
#define VIRTIO_NET_F_HOST_ECN	13
#define VIRTIO_NET_F_MRG_RXBUF	15
#define VIRTIO_NET_F_STATUS	16

/* Bits the card offers that only a control queue can use (net_ctrl.h). */
#define NET_CTRL_FEATURES                                                                          \
	((1ULL << VIRTIO_NET_F_CTRL_VQ) | (1ULL << VIRTIO_NET_F_CTRL_RX) |                         \
	 (1ULL << VIRTIO_NET_F_GUEST_ANNOUNCE) | (1ULL << VIRTIO_NET_F_CTRL_MAC_ADDR))

#define TAG_TAP	 1
#define TAG_WAKE 2
/* Rate limiters' timers (virtio/throttle.h) */
#define TAG_RX_TIMER 3
#define TAG_TX_TIMER 4
#define TAG_MMDS     5 /* the metadata service's timerfd */
#define TAG_ANNOUNCE 6 /* announce_fd: the next announcement round */

/*
 * After a state load the card asks for an announcement in rounds, as
 * QEMU's self-announce does: at the first turn after resume, then every
 * NET_ANNOUNCE_STEP_MS, NET_ANNOUNCE_ROUNDS in all, so that one lost
 * gratuitous ARP (a switch port still coming up, a full queue) does not
 * leave the network looking for the guest where it was.
 */
#define NET_ANNOUNCE_ROUNDS  4
#define NET_ANNOUNCE_STEP_MS 100

/* 1: MAC, status, rx_on; 2: also the configured MAC and the receive filter. */
#define STATE_VERSION 2

struct virtio_net {
	struct virtio_dev vdev;
	char name[DEVICE_ID_MAX + 1];
	char tap_name[IFNAMSIZ];
	int tap_fd;
	int epfd;	     /* vdev.event_fd: tap_fd and wake_fd */
	int wake_fd;	     /* eventfd: run again (a turn ran out of budget) */
	uint32_t tap_events; /* what epfd watches on tap_fd now */
	bool tap_offloads;   /* TUNSETOFFLOAD works on this fd */
	/* Guest-visible configuration (5.1.4): mac, then status, little-endian. */
	uint8_t mac[6];	    /* now: MAC_ADDR_SET changes it, a reset restores cfg_mac */
	uint8_t cfg_mac[6]; /* the card's own: configured, derived, or a clone's */
	uint16_t status;
	struct net_filter filter; /* what the control queue programmed (net_ctrl.h) */
	uint64_t rx_filtered;	  /* frames from the TAP the filter kept from the guest */
	bool ctrl_more;		  /* the control queue ran out of budget: run again */
	bool announce_due;	  /* state was loaded: announce at the first turn after resume */
	int announce_fd;	  /* timerfd in epfd: the next round is due */
	uint8_t announce_round;	  /* rounds done since the load; NET_ANNOUNCE_ROUNDS: none due */
	uint64_t offloads_set;	  /* the acked features the TAP was last set for, ~0: none yet */
	bool rx_on;		  /* the driver is up and the receive queue was kicked */
	bool rx_stalled;	  /* no receive buffers: the TAP is not watched */
	bool tx_blocked;	  /* the TAP refused a write: wait for EPOLLOUT */
	uint8_t *rx_buf;	  /* one frame from the TAP, header first */
	size_t rx_len;		  /* bytes waiting in rx_buf; 0: none */
	uint64_t rx_dropped;	  /* frames the guest's buffers could not hold */
	uint64_t tx_errors;	  /* frames the TAP refused */
	struct iovec iov[NET_MAX_SEGS];
	struct iovec first_iov[NET_MAX_SEGS]; /* the first buffer of a merged frame */
	struct vring_used_elem used[NET_MAX_MERGE];
	struct mmds_net *mmds; /* the metadata service on this card (net_mmds.c); NULL: none */
	/* Rate limiters: frame bytes (no virtio header) and frames, each way. */
	struct throttle rx_limit; /* throttled: rx_buf waits, the TAP is not watched */
	struct throttle tx_limit; /* throttled: the chain stays in the transmit queue */
	bool rx_admitted;	  /* the frame in rx_buf has passed rx_limit */
};

static struct virtio_net *to_net(struct virtio_dev *vdev)
{
	return container_of(vdev, struct virtio_net, vdev);
}

/* Make epfd watch @events on the TAP (0: nothing). */
static void net_watch(struct virtio_net *n, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u32 = TAG_TAP};

	if (events == n->tap_events)
		return;
	if (epoll_ctl(n->epfd, EPOLL_CTL_MOD, n->tap_fd, &ev) < 0)
		log_guest_warn(n, "%s: cannot watch its TAP: %s", n->name, strerror(errno));
	n->tap_events = events;
}

static void net_update_watch(struct virtio_net *n)
{
	uint32_t ev = 0;

	if (n->rx_on && !n->rx_stalled && !n->rx_limit.throttled && !virtio_is_broken(&n->vdev))
		ev |= EPOLLIN;
	if (n->tx_blocked && !virtio_is_broken(&n->vdev))
		ev |= EPOLLOUT;
	net_watch(n, ev);
}

static void net_wake(struct virtio_net *n)
{
	(void)efd_signal(n->wake_fd);
}

/* Tell the TAP which offloads the driver accepts in frames it receives. */
static void net_set_offloads(struct virtio_net *n)
{
	uint64_t f = n->vdev.acked;
	unsigned int flags = 0;

	if (n->offloads_set == f)
		return;
	n->offloads_set = f;
	if (!n->tap_offloads)
		return;
	if (f & (1ULL << VIRTIO_NET_F_GUEST_CSUM)) {
		flags |= TUN_F_CSUM;
		if (f & (1ULL << VIRTIO_NET_F_GUEST_TSO4))
			flags |= TUN_F_TSO4;
		if (f & (1ULL << VIRTIO_NET_F_GUEST_TSO6))
			flags |= TUN_F_TSO6;
		if ((flags & (TUN_F_TSO4 | TUN_F_TSO6)) && (f & (1ULL << VIRTIO_NET_F_GUEST_ECN)))
			flags |= TUN_F_TSO_ECN;
	}
	if (ioctl(n->tap_fd, TUNSETOFFLOAD, (unsigned long)flags) < 0)
		log_guest_warn(n, "%s: TUNSETOFFLOAD 0x%x: %s", n->name, flags, strerror(errno));
}

/* --- transmit: guest -> TAP --- */

/* One chain to the TAP. 1 sent (or dropped), 0 the TAP is full, -1 the device broke. */
static int net_tx_one(struct virtio_net *n, struct vq_chain *c)
{
	char why[96];
	ssize_t w;

	if (c->nin || c->out_len < NET_HDR_LEN || c->out_len > NET_HDR_LEN + NET_MAX_FRAME) {
		snprintf(why, sizeof(why), "queue %u: %s frame of %llu bytes", NET_TXQ,
			 c->nin			    ? "device-writable buffers in a"
			 : c->out_len < NET_HDR_LEN ? "headerless"
						    : "oversized",
			 (unsigned long long)c->out_len);
		virtio_fail(&n->vdev, why);
		return -1;
	}
	if (n->mmds && net_mmds_tx(n->mmds, c->iov, c->nout, c->out_len))
		return 1; /* the metadata service's, never the TAP's */
	/* The TAP takes the same 12-byte header, then the frame. */
	w = writev(n->tap_fd, c->iov, (int)c->nout);
	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (w < 0 && n->tx_errors++ == 0)
		log_guest_warn(
		    n, "%s: the TAP refused a frame: %s (further errors are counted, not logged)",
		    n->name, strerror(errno));
	if (w > NET_HDR_LEN)
		dev_stats_out(virtio_stats(&n->vdev), (uint64_t)w - NET_HDR_LEN);
	atomic_fetch_add_explicit(&virtio_stats(&n->vdev)->requests, 1, memory_order_relaxed);
	return 1;
}

static void net_tx(struct virtio_net *n)
{
	struct vq_chain c = {.iov = n->iov, .cap = NET_MAX_SEGS};
	unsigned int budget = NET_BUDGET;
	bool pushed = false;
	int r = 0;

	if (n->tx_blocked || n->tx_limit.throttled)
		return; /* EPOLLOUT, or the limiter's timer, resumes */
	while (budget && (r = virtio_pop(&n->vdev, NET_TXQ, &c)) > 0) {
		if (!throttle_admit(&n->tx_limit,
				    c.out_len > NET_HDR_LEN ? c.out_len - NET_HDR_LEN : 0)) {
			vq_unpop(&n->vdev.vqs[NET_TXQ]);
			break;
		}
		r = net_tx_one(n, &c);
		if (r <= 0) {
			if (r == 0) {
				vq_unpop(&n->vdev.vqs[NET_TXQ]);
				n->tx_blocked = true;
			}
			break;
		}
		vq_push(&n->vdev.vqs[NET_TXQ], c.head, 0);
		pushed = true;
		budget--;
	}
	if (pushed)
		virtio_used(&n->vdev, NET_TXQ);
	if (!budget)
		net_wake(n);
}

/* --- receive: TAP -> guest --- */

/*
 * Read one frame the receive filter accepts into rx_buf. true with one;
 * false when the TAP has none (or a budget's worth were filtered out: the
 * TAP stays readable and the next turn goes on).
 */
static bool net_read_tap(struct virtio_net *n)
{
	for (unsigned int i = 0; i < NET_BUDGET; i++) {
		ssize_t r = read(n->tap_fd, n->rx_buf, NET_HDR_LEN + NET_MAX_FRAME);

		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			log_guest_warn(n, "%s: reading its TAP: %s", n->name, strerror(errno));
		if (r <= NET_HDR_LEN)
			return false;
		if (net_filter_accepts(&n->filter, n->mac, n->rx_buf + NET_HDR_LEN,
				       (size_t)r - NET_HDR_LEN)) {
			n->rx_len = (size_t)r;
			return true;
		}
		n->rx_filtered++;
	}
	return false;
}

/* A receive chain must be writable and hold at least the header. */
static bool net_rx_chain_ok(struct virtio_net *n, const struct vq_chain *c)
{
	char why[96];

	if (!c->nout && c->in_len >= NET_HDR_LEN)
		return true;
	snprintf(why, sizeof(why), "queue %u: receive buffer %s", NET_RXQ,
		 c->nout ? "with device-readable parts" : "smaller than the header");
	virtio_fail(&n->vdev, why);
	return false;
}

/*
 * Copy rx_buf into as many receive buffers as it takes (one without
 * MRG_RXBUF) and publish them together. 1 delivered (or dropped: too big
 * for one buffer), 0 not enough buffers yet (none consumed), -1 broken.
 */
static int net_deliver(struct virtio_net *n)
{
	struct virtqueue *vq = &n->vdev.vqs[NET_RXQ];
	bool mrg = n->vdev.acked & (1ULL << VIRTIO_NET_F_MRG_RXBUF);
	struct vq_chain c = {.cap = NET_MAX_SEGS};
	unsigned int nbufs = 0, nfirst = 0;
	uint16_t nb;
	size_t done = 0;
	int r;

	while (done < n->rx_len) {
		c.iov = nbufs ? n->iov : n->first_iov;
		r = nbufs < NET_MAX_MERGE ? virtio_pop(&n->vdev, NET_RXQ, &c) : 0;
		if (r < 0 || (r > 0 && !net_rx_chain_ok(n, &c)))
			return -1;
		if (r == 0) { /* written already: a migration must see what they hold now */
			for (unsigned int i = 0; i < nbufs; i++)
				vq_unpop_written(vq, (uint16_t)n->used[i].id);
			return 0;
		}
		if (!mrg && c.in_len < n->rx_len) {
			/* Too big for the driver's buffers: drop it, keep the buffer. */
			vq_unpop(vq);
			n->rx_dropped++;
			n->rx_len = 0;
			return 1;
		}
		if (!nbufs)
			nfirst = c.nin;
		n->used[nbufs].id = c.head;
		n->used[nbufs].len =
		    (uint32_t)iov_from_buf(c.iov, c.nin, 0, n->rx_buf + done, n->rx_len - done);
		done += n->used[nbufs].len;
		nbufs++;
	}
	nb = (uint16_t)nbufs;
	iov_from_buf(n->first_iov, nfirst, 10, &nb, sizeof(nb)); /* num_buffers */
	vq_push_many(vq, n->used, nbufs);
	dev_stats_in(virtio_stats(&n->vdev), n->rx_len - NET_HDR_LEN);
	n->rx_len = 0;
	return 1;
}

/* The frame in rx_buf may go (it is charged once, however long it waits for buffers). */
static bool net_rx_admit(struct virtio_net *n)
{
	if (!n->rx_admitted)
		n->rx_admitted = throttle_admit(&n->rx_limit, n->rx_len - NET_HDR_LEN);
	return n->rx_admitted;
}

static void net_rx(struct virtio_net *n)
{
	unsigned int budget = NET_BUDGET;
	bool pushed = false;
	int r = 1;

	if (!n->rx_on || n->rx_limit.throttled)
		return;
	while (budget &&
	       (n->rx_len || net_mmds_rx(n->mmds, n->rx_buf, &n->rx_len) || net_read_tap(n))) {
		if (!net_rx_admit(n))
			break; /* the limiter's timer resumes */
		r = net_deliver(n);
		if (r <= 0)
			break;
		n->rx_admitted = false;
		pushed = true;
		budget--;
	}
	n->rx_stalled = r == 0;
	if (pushed)
		virtio_used(&n->vdev, NET_RXQ);
	if (!budget)
		net_wake(n);
}

/* --- the control queue (net_ctrl.h) --- */

/*
 * One control request: class, command and data device-readable, then the
 * one-byte ack device-writable. A chain with nowhere to put the ack breaks
 * the device; anything else malformed is answered VIRTIO_NET_ERR.
 */
static int net_ctrl_one(struct virtio_net *n, struct vq_chain *c)
{
	struct net_ctrl_target t = {
	    .acked = n->vdev.acked, .mac = n->mac, .status = &n->status, .filter = &n->filter};
	uint8_t ack;

	if (!c->nin) {
		virtio_fail(&n->vdev, "queue 2: control request without a writable ack");
		return -1;
	}
	ack = net_ctrl_command(&t, c->iov, c->nout, c->out_len);
	iov_from_buf(c->iov + c->nout, c->nin, 0, &ack, 1);
	return 0;
}

static void net_ctrl(struct virtio_net *n)
{
	struct vq_chain c = {.iov = n->iov, .cap = NET_MAX_SEGS};
	unsigned int budget = NET_BUDGET;
	bool pushed = false;

	n->ctrl_more = false;
	while (budget && virtio_pop(&n->vdev, NET_CTRLQ, &c) > 0) {
		if (net_ctrl_one(n, &c) < 0)
			break;
		vq_push(&n->vdev.vqs[NET_CTRLQ], c.head, 1);
		pushed = true;
		budget--;
	}
	if (pushed)
		virtio_used(&n->vdev, NET_CTRLQ);
	if (!budget) {
		n->ctrl_more = true;
		net_wake(n);
	}
}

/*
 * After a restore or an incoming migration (the first turn after resume):
 * ask the driver to announce the card (VIRTIO_NET_S_ANNOUNCE and a
 * configuration interrupt); it sends gratuitous ARP and IPv6 neighbour
 * advertisements and acknowledges on the control queue, so switches and
 * neighbours learn where the guest is now.
 */
static void net_announce_round(struct virtio_net *n)
{
	struct itimerspec next = {.it_value.tv_nsec = NET_ANNOUNCE_STEP_MS * 1000000L};

	if (n->announce_round >= NET_ANNOUNCE_ROUNDS ||
	    !(n->vdev.acked & (1ULL << VIRTIO_NET_F_GUEST_ANNOUNCE)) ||
	    virtio_is_broken(&n->vdev)) {
		n->announce_round = NET_ANNOUNCE_ROUNDS;
		return;
	}
	n->status |= VIRTIO_NET_S_ANNOUNCE;
	virtio_config_changed(&n->vdev);
	if (n->announce_round++ == 0)
		log_info("%s: asks the guest to announce itself (%u rounds, %u ms apart)", n->name,
			 NET_ANNOUNCE_ROUNDS, NET_ANNOUNCE_STEP_MS);
	if (n->announce_round < NET_ANNOUNCE_ROUNDS &&
	    timerfd_settime(n->announce_fd, 0, &next, NULL) < 0)
		log_guest_warn(n, "%s: cannot time the next announcement: %s", n->name,
			       strerror(errno));
}

static void net_announce(struct virtio_net *n)
{
	n->announce_due = false;
	n->announce_round = 0;
	net_announce_round(n);
}

/* The round timer fired: the next round, unless a reset or a new load came first. */
static void net_announce_timer(struct virtio_net *n)
{
	uint64_t expirations;

	if (read(n->announce_fd, &expirations, sizeof(expirations)) < 0)
		return; /* spurious: EAGAIN */
	if (!n->announce_due)
		net_announce_round(n);
}

/* --- the device operations (transport lock held) --- */

static void net_notify(struct virtio_dev *vdev, unsigned int q)
{
	struct virtio_net *n = to_net(vdev);

	net_set_offloads(n);
	if (q == NET_RXQ) {
		n->rx_on = true;
		n->rx_stalled = false;
		net_rx(n);
	} else if (q == NET_TXQ) {
		net_tx(n);
	} else {
		net_ctrl(n);
	}
	net_update_watch(n);
}

static void net_event(struct virtio_dev *vdev)
{
	struct virtio_net *n = to_net(vdev);
	struct epoll_event ev[6];
	int k = epoll_wait(n->epfd, ev, 6, 0);
	bool tx_timer = false, announce_timer = false;

	for (int i = 0; i < k; i++) {
		if (ev[i].data.u32 == TAG_WAKE)
			(void)efd_drain(n->wake_fd);
		if (ev[i].data.u32 == TAG_MMDS)
			mmds_net_timers(n->mmds);
		if (ev[i].data.u32 == TAG_TAP && (ev[i].events & EPOLLOUT))
			n->tx_blocked = false;
		if (ev[i].data.u32 == TAG_RX_TIMER)
			(void)throttle_expired(&n->rx_limit);
		if (ev[i].data.u32 == TAG_TX_TIMER)
			tx_timer = throttle_expired(&n->tx_limit);
		if (ev[i].data.u32 == TAG_ANNOUNCE)
			announce_timer = true;
	}
	if (announce_timer)
		net_announce_timer(n);
	if (virtio_is_broken(vdev)) {
		net_update_watch(n);
		return;
	}
	if (n->announce_due)
		net_announce(n);
	if (n->ctrl_more)
		net_ctrl(n);
	if (n->rx_on || (tx_timer && vdev->vqs[NET_TXQ].active))
		net_tx(n); /* wake: a turn ran out, the TAP has room again, the limiter */
	net_rx(n);
	net_update_watch(n);
}

static void net_config_read(struct virtio_dev *vdev, uint64_t offset, void *data, uint32_t len)
{
	struct virtio_net *n = to_net(vdev);
	uint8_t cfg[NET_CONFIG_SIZE] = {0};

	memcpy(cfg, n->mac, 6);
	cfg[6] = (uint8_t)n->status;
	cfg[7] = (uint8_t)(n->status >> 8);
	cfg[8] = 1; /* max_virtqueue_pairs (only meaningful with MQ) */
	virtio_config_bytes(cfg, sizeof(cfg), offset, data, len);
}

static void net_reset(struct virtio_dev *vdev)
{
	struct virtio_net *n = to_net(vdev);

	n->rx_on = n->rx_stalled = n->tx_blocked = n->rx_admitted = false;
	n->ctrl_more = n->announce_due = false;
	n->announce_round = NET_ANNOUNCE_ROUNDS; /* a round timer still armed finds none due */
	n->rx_len = 0;
	/* The permanent MAC again, no announcement pending, a promiscuous filter. */
	memcpy(n->mac, n->cfg_mac, 6);
	n->status &= (uint16_t)~VIRTIO_NET_S_ANNOUNCE;
	net_filter_reset(&n->filter);
	n->offloads_set = 0; /* nothing negotiated: plain frames */
	if (n->tap_offloads && ioctl(n->tap_fd, TUNSETOFFLOAD, 0UL) < 0)
		log_guest_warn(n, "%s: TUNSETOFFLOAD 0: %s", n->name, strerror(errno));
	net_update_watch(n);
}

/*
 * Version 1 (before the control queue): the card had none, so a driver
 * cannot have negotiated one; its MAC was the configured one and its
 * filter promiscuous.
 */
static void net_state_v1(struct virtio_net *n, struct state_io *io)
{
	if (n->vdev.acked & NET_CTRL_FEATURES)
		io->err = -EBADMSG;
	memcpy(n->cfg_mac, n->mac, 6);
	net_filter_reset(&n->filter);
}

static int net_state(struct virtio_dev *vdev, struct state_io *io)
{
	struct virtio_net *n = to_net(vdev);
	uint8_t version = STATE_VERSION;

	state_u8(io, &version);
	if (version < 1 || version > STATE_VERSION)
		return -EBADMSG;
	state_bytes(io, n->mac, sizeof(n->mac));
	state_u16(io, &n->status);
	state_bool(io, &n->rx_on);
	if (version >= 2) {
		state_bytes(io, n->cfg_mac, sizeof(n->cfg_mac));
		net_filter_state(io, &n->filter);
	} else if (io->loading && !io->err) {
		net_state_v1(n, io);
	}
	if (io->loading && !io->err) {
		/* A frame waiting in rx_buf is not saved: the guest sees it lost. */
		n->rx_len = 0;
		n->rx_stalled = n->tx_blocked = n->rx_admitted = false;
		n->offloads_set = ~0ULL; /* the TAP gets the loaded features at the next turn */
		n->announce_due = true;
		net_wake(n);
	}
	return io->err;
}

static void net_destroy(struct virtio_dev *vdev)
{
	struct virtio_net *n = to_net(vdev);

	mmds_net_free(n->mmds);
	if (n->tap_fd >= 0)
		close(n->tap_fd);
	if (n->epfd >= 0)
		close(n->epfd);
	if (n->wake_fd >= 0)
		close(n->wake_fd);
	if (n->announce_fd >= 0)
		close(n->announce_fd);
	throttle_destroy(&n->rx_limit);
	throttle_destroy(&n->tx_limit);
	free(n->rx_buf);
	free(n);
}

/*
 * Clone @index of a card with MAC @old: FNV-1a(old, index) in the low three
 * bytes, locally administered and unicast, so the same clone number of the
 * same snapshot always gets the same MAC.
 */
static void net_clone_mac(const uint8_t old[6], unsigned int index, uint8_t mac[6])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 6; i++)
		h = (h ^ old[i]) * 16777619u;
	for (int i = 0; i < 4; i++)
		h = (h ^ (uint8_t)(index >> (8 * i))) * 16777619u;
	memcpy(mac, old, 6);
	mac[0] = (uint8_t)((old[0] | 0x02) & ~0x01);
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)(h ^ index);
}

/* A clone must not answer for its snapshot's MAC: derive its own from the loaded one. */
static int net_clone(struct virtio_dev *vdev, const struct dev_clone *c)
{
	struct virtio_net *n = to_net(vdev);

	if (c->index < 0)
		return 0;
	net_clone_mac(n->cfg_mac, (unsigned int)c->index, n->cfg_mac);
	memcpy(n->mac, n->cfg_mac, 6);
	log_info("clone %d: %s gets MAC %02x:%02x:%02x:%02x:%02x:%02x", c->index, n->name,
		 n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
	virtio_config_changed(vdev);
	return 0;
}

/* Limiter 0 is the receive side's, 1 the transmit side's. */
static struct throttle *net_throttle(struct virtio_dev *vdev, unsigned int which)
{
	struct virtio_net *n = to_net(vdev);

	return which == 0 ? &n->rx_limit : which == 1 ? &n->tx_limit : NULL;
}

static const struct virtio_dev_ops virtio_net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .nqueues = 3, /* receive, transmit, control */
    .queue_max = NET_QUEUE_SIZE,
    .config_read = net_config_read,
    .notify = net_notify,
    .event = net_event,
    .reset = net_reset,
    .state = net_state,
    .clone = net_clone,
    .throttle = net_throttle,
    .destroy = net_destroy,
};

/* --- the host side --- */

static void net_mmds_wake(void *opaque)
{
	net_wake(opaque);
}

/* Serve cfg->mmds on this card: its timer joins the card's epoll set. */
static int net_attach_mmds(struct virtio_net *n, const struct net_config *cfg)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = TAG_MMDS};

	n->mmds = mmds_net_new(cfg->mmds, cfg->mmds_ipv4, net_mmds_wake, n);
	if (!n->mmds)
		return -ENOMEM;
	if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, mmds_net_timer_fd(n->mmds), &ev) < 0) {
		log_error("%s: cannot watch the metadata service's timer: %s", n->name,
			  strerror(errno));
		return -errno;
	}
	log_info("%s: serves the metadata service", n->name);
	return 0;
}

void virtio_net_default_id(unsigned int index, char *buf, size_t len)
{
	snprintf(buf, len, "net%u", index);
}

void virtio_net_default_mac(const char *tap, const char *id, uint8_t mac[6])
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a over "tap/id" */
	const char *parts[3] = {tap, "/", id ? id : ""};

	for (unsigned int p = 0; p < 3; p++)
		for (const char *s = parts[p]; s && *s; s++)
			h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	for (unsigned int i = 0; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02); /* locally administered, unicast */
}

/*
 * Attach to the existing TAP @name. Refuses to create one: TUNSETIFF on an
 * unknown name would, so the name is looked up first and a device that
 * turns out not to be persistent (one TUNSETIFF just made, after a race
 * with its removal) is given up again.
 */
static int tap_open(const char *name, char *err, size_t errlen)
{
	struct ifreq ifr = {0};
	unsigned int features = 0;
	int fd, hdr = NET_HDR_LEN;

	if (strlen(name) >= IFNAMSIZ || !if_nametoindex(name)) {
		snprintf(err, errlen,
			 "no such network interface (create the TAP first, e.g. "
			 "ip tuntap add %s mode tap)",
			 name);
		return -ENODEV;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open /dev/net/tun: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(fd, TUNGETFEATURES, &features) < 0 || !(features & IFF_VNET_HDR)) {
		snprintf(err, errlen, "this kernel's TAP has no IFF_VNET_HDR");
		close(fd);
		return -ENOTSUP;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;

		snprintf(err, errlen, "%s",
			 e == EBUSY    ? "busy: another process has it open"
			 : e == EINVAL ? "not a TAP device (or it is a multi-queue TAP)"
			 : e == EPERM  ? "permission denied (the TAP belongs to another user)"
				       : strerror(e));
		close(fd);
		return -e;
	}
	if (ioctl(fd, TUNGETIFF, &ifr) < 0 || !(ifr.ifr_flags & IFF_PERSIST)) {
		snprintf(err, errlen, "no such TAP device (it disappeared while opening it)");
		close(fd);
		return -ENODEV;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		snprintf(err, errlen, "TUNSETVNETHDRSZ: %s", strerror(errno));
		close(fd);
		return -errno;
	}
	return fd;
}

int virtio_net_check_tap(const char *name, char *err, size_t errlen)
{
	int fd = tap_open(name, err, errlen);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

/* Does the TAP take offload settings? (Then leave it with none until a driver negotiates.) */
static bool tap_probe_offloads(int fd)
{
	bool ok = ioctl(fd, TUNSETOFFLOAD,
			(unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)) == 0;

	if (ioctl(fd, TUNSETOFFLOAD, 0UL) < 0)
		ok = false;
	return ok;
}

/* The rate limiters and their timers, in the device's epoll set. */
static int net_setup_limits(struct virtio_net *n, const struct net_config *cfg)
{
	struct epoll_event rx = {.events = EPOLLIN, .data.u32 = TAG_RX_TIMER};
	struct epoll_event tx = {.events = EPOLLIN, .data.u32 = TAG_TX_TIMER};
	int ret = throttle_init(&n->rx_limit, &cfg->rx_limit, &n->vdev, DEV_DIR_IN);

	if (ret == 0)
		ret = throttle_init(&n->tx_limit, &cfg->tx_limit, &n->vdev, DEV_DIR_OUT);
	if (ret < 0)
		return ret;
	if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->rx_limit.timer_fd, &rx) < 0 ||
	    epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->tx_limit.timer_fd, &tx) < 0)
		return -errno;
	return 0;
}

static int net_setup_fds(struct virtio_net *n, const struct net_config *cfg)
{
	struct epoll_event tap = {.events = 0, .data.u32 = TAG_TAP};
	struct epoll_event wake = {.events = EPOLLIN, .data.u32 = TAG_WAKE};
	struct epoll_event announce = {.events = EPOLLIN, .data.u32 = TAG_ANNOUNCE};

	n->epfd = epoll_create1(EPOLL_CLOEXEC);
	n->wake_fd = efd_create();
	n->announce_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	n->rx_buf = malloc(NET_HDR_LEN + NET_MAX_FRAME);
	if (n->epfd < 0 || n->wake_fd < 0 || n->announce_fd < 0 || !n->rx_buf)
		return -ENOMEM;
	if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->tap_fd, &tap) < 0 ||
	    epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->wake_fd, &wake) < 0 ||
	    epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->announce_fd, &announce) < 0)
		return -errno;
	n->vdev.event_fd = n->epfd;
	return net_setup_limits(n, cfg);
}

struct virtio_dev *virtio_net_create_fd(const struct net_config *cfg, unsigned int index, int fd,
					bool offloads)
{
	struct virtio_net *n = calloc(1, sizeof(*n));

	if (!n) {
		close(fd);
		log_error("virtio-net: out of memory");
		return NULL;
	}
	n->tap_fd = fd;
	n->epfd = n->wake_fd = n->announce_fd = n->rx_limit.timer_fd = n->tx_limit.timer_fd = -1;
	n->announce_round = NET_ANNOUNCE_ROUNDS;
	snprintf(n->name, sizeof(n->name), "%s", cfg->id ? cfg->id : "");
	if (!cfg->id)
		virtio_net_default_id(index, n->name, sizeof(n->name));
	snprintf(n->tap_name, sizeof(n->tap_name), "%s", cfg->tap ? cfg->tap : "");
	n->vdev = (struct virtio_dev){.ops = &virtio_net_ops, .id = n->name, .event_fd = -1};
	if (net_setup_fds(n, cfg) < 0) {
		log_error("%s: cannot set up: %s", n->name, strerror(errno));
		net_destroy(&n->vdev);
		return NULL;
	}
	if (cfg->mmds && net_attach_mmds(n, cfg) < 0) {
		net_destroy(&n->vdev);
		return NULL;
	}
	if (cfg->has_mac)
		memcpy(n->cfg_mac, cfg->mac, 6);
	else
		virtio_net_default_mac(cfg->tap ? cfg->tap : "", n->name, n->cfg_mac);
	memcpy(n->mac, n->cfg_mac, 6);
	net_filter_reset(&n->filter);
	n->status = VIRTIO_NET_S_LINK_UP;
	n->tap_offloads = offloads;
	n->offloads_set = ~0ULL;
	n->vdev.features = (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS) |
			   (1ULL << VIRTIO_NET_F_MRG_RXBUF) | (1ULL << VIRTIO_NET_F_CSUM) |
			   (1ULL << VIRTIO_NET_F_HOST_TSO4) | (1ULL << VIRTIO_NET_F_HOST_TSO6) |
			   (1ULL << VIRTIO_NET_F_HOST_ECN) | NET_CTRL_FEATURES;
	if (offloads)
		n->vdev.features |=
		    (1ULL << VIRTIO_NET_F_GUEST_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_TSO4) |
		    (1ULL << VIRTIO_NET_F_GUEST_TSO6) | (1ULL << VIRTIO_NET_F_GUEST_ECN);
	return &n->vdev;
}

/*
 * A clone's card: TAP "TAP-index" (the snapshot's is another VM's), and
 * the MAC its clone operation gives it, so a reboot keeps the clone's.
 */
static void net_clone_config(struct net_config *cfg, const struct dev_instance *inst,
			     unsigned int index, char tap[IFNAMSIZ + 16])
{
	char name[24];
	uint8_t old[6];

	snprintf(name, sizeof(name), "net%u", index); /* as virtio_net_create_fd names it */
	if (cfg->has_mac)
		memcpy(old, cfg->mac, 6);
	else
		virtio_net_default_mac(cfg->tap ? cfg->tap : "", cfg->id ? cfg->id : name, old);
	net_clone_mac(old, inst->clone_index, cfg->mac);
	cfg->has_mac = true;
	snprintf(tap, IFNAMSIZ + 16, "%s-%u", cfg->tap ? cfg->tap : "", inst->clone_index);
	cfg->tap = tap;
}

struct virtio_dev *virtio_net_create(const struct net_config *config, unsigned int index,
				     const struct dev_instance *inst)
{
	struct net_config c = *config, *cfg = &c;
	struct virtio_dev *vdev;
	char err[160], tap[IFNAMSIZ + 16];
	bool offloads;
	int fd;

	if (inst && inst->clone)
		net_clone_config(cfg, inst, index, tap);
	fd = tap_open(cfg->tap, err, sizeof(err));
	if (fd < 0) {
		log_error("cannot open TAP %s: %s", cfg->tap, err);
		return NULL;
	}
	offloads = tap_probe_offloads(fd);
	vdev = virtio_net_create_fd(cfg, index, fd, offloads);
	if (vdev) {
		struct virtio_net *n = to_net(vdev);

		log_info("%s: TAP %s, MAC %02x:%02x:%02x:%02x:%02x:%02x%s", n->name, cfg->tap,
			 n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5],
			 offloads ? ", checksum and TSO offloads" : "");
	}
	return vdev;
}

int virtio_net_set_mac(struct virtio_dev *vdev, const uint8_t mac[6])
{
	if (!vdev || vdev->ops != &virtio_net_ops)
		return -EINVAL;
	virtio_lock(vdev);
	memcpy(to_net(vdev)->mac, mac, 6);
	memcpy(to_net(vdev)->cfg_mac, mac, 6);
	virtio_config_changed(vdev);
	virtio_unlock(vdev);
	return 0;
}

int virtio_net_set_link(struct virtio_dev *vdev, bool up)
{
	struct virtio_net *n;

	if (!vdev || vdev->ops != &virtio_net_ops)
		return -EINVAL;
	n = to_net(vdev);
	virtio_lock(vdev);
	n->status =
	    (uint16_t)((n->status & ~VIRTIO_NET_S_LINK_UP) | (up ? VIRTIO_NET_S_LINK_UP : 0));
	virtio_config_changed(vdev);
	virtio_unlock(vdev);
	return 0;
}
