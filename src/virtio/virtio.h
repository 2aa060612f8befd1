/*
 * Virtio devices (virtio 1.2), split in two as the spec is: a transport
 * (virtio/mmio.h) owns the registers, feature negotiation, the queues'
 * programming, notifications and interrupts, and validates every
 * guest-written index; a device (block, entropy) owns its configuration
 * space and what its queues carry.
 *
 * Threads: each device gets one thread from its transport, which waits on
 * the queues' notification eventfds (ioeventfd) and on the device's own
 * event fd, and calls the device's notify/event operations. Those run with
 * the transport lock held, as do every register access from vCPUs, reset and
 * state; so a device's queue and configuration state needs no lock of its own.
 *
 * Pause and resume (the device contract's, vmm/device.h) are the
 * transport's alone: the device thread parks between two operations, after
 * the device's drain, and serves what waited (queue kicks, its event_fd)
 * after resume. A device needs nothing else to be paused.
 */
#ifndef BANYAN_VIRTIO_VIRTIO_H
#define BANYAN_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "virtio/virtqueue.h"
#include "vmm/device.h"

/* Device IDs (5 Device Types). */
#define VIRTIO_ID_NET	  1
#define VIRTIO_ID_BLOCK	  2
#define VIRTIO_ID_RNG	  4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK	  19

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER	  0x02
#define VIRTIO_STATUS_DRIVER_OK	  0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED	  0x80

/* Transport feature bits (6 Reserved Feature Bits). */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX	    29
#define VIRTIO_F_VERSION_1	    32

/* Interrupt status bits. */
#define VIRTIO_INT_USED	  0x1
#define VIRTIO_INT_CONFIG 0x2

#define VIRTIO_MAX_QUEUES 8

struct virtio_dev;
struct state_io;
struct throttle;
struct rl_config;

struct virtio_dev_ops {
	const char *name;     /* "virtio-blk": for logs */
	uint32_t device_id;   /* VIRTIO_ID_* */
	unsigned int nqueues; /* 1..VIRTIO_MAX_QUEUES */
	uint16_t queue_max;   /* QueueNumMax, a power of two */
	/*
	 * Configuration space access at @offset (@len 1..8); a read fills every
	 * byte (0 beyond the end), a write outside writable fields is ignored.
	 */
	void (*config_read)(struct virtio_dev *vdev, uint64_t offset, void *data, uint32_t len);
	void (*config_write)(struct virtio_dev *vdev, uint64_t offset, const void *data,
			     uint32_t len); /* may be NULL */
	/* The driver made buffers available on queue @q (device thread). */
	void (*notify)(struct virtio_dev *vdev, unsigned int q);
	/* vdev->event_fd became readable (device thread); NULL without one. */
	void (*event)(struct virtio_dev *vdev);
	/*
	 * Device reset (status 0 or VM reboot): finish or cancel in-flight work
	 * without touching the queues again, back to power-on state.
	 */
	void (*reset)(struct virtio_dev *vdev);
	/*
	 * The transport is pausing the device (device thread): finish the host
	 * I/O in flight and push its used entries, so that nothing completes
	 * while paused. May be NULL (nothing in flight outside a notify/event).
	 */
	void (*drain)(struct virtio_dev *vdev);
	/* Device-specific state (the transport saves the queues). */
	int (*state)(struct virtio_dev *vdev, struct state_io *io);
	/* device_ops.clone for the device (vmm/device.h); NULL: nothing to do. */
	int (*clone)(struct virtio_dev *vdev, const struct dev_clone *c);
	/* device_ops.save_files for the device; NULL: it carries no files. */
	int (*save_files)(struct virtio_dev *vdev, const char *dir, char *err, size_t errlen);
	/*
	 * The device's rate limiter @which (see virtio_set_rate_limit), or
	 * NULL without one (or without rate limiters: the op may be NULL).
	 */
	struct throttle *(*throttle)(struct virtio_dev *vdev, unsigned int which);
	void (*destroy)(struct virtio_dev *vdev);
};

struct virtio_transport;

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	const char *id;	       /* instance name for logs, e.g. "vda" */
	uint64_t features;     /* device-specific feature bits offered */
	uint64_t acked;	       /* negotiated features (valid after FEATURES_OK) */
	int event_fd;	       /* extra fd for the device thread, or -1 */
	struct virtqueue *vqs; /* ops->nqueues queues, owned by the transport */
	struct virtio_transport *transport;
};

/*
 * virtio_pop - next chain of queue @q into @c (iov/cap set by the caller).
 * Returns 1 with a chain; 0 when the queue is empty, after re-enabling
 * notifications (with EVENT_IDX) and checking once more; -EINVAL when the
 * chain was malformed: the device is then marked NEEDS_RESET with one log
 * line and must stop using its queues.
 */
int virtio_pop(struct virtio_dev *vdev, unsigned int q, struct vq_chain *c)
    __attribute__((warn_unused_result));

/*
 * virtio_used - after vq_push on queue @q: interrupt the driver if it wants
 * to be (event index, NO_INTERRUPT flag).
 */
void virtio_used(struct virtio_dev *vdev, unsigned int q);

/*
 * virtio_fail - the guest broke the device's rules: set NEEDS_RESET, raise
 * a configuration interrupt, log @why once. The device ignores its queues
 * until the driver resets it.
 */
void virtio_fail(struct virtio_dev *vdev, const char *why);

/* virtio_is_broken - the device is in NEEDS_RESET. */
bool virtio_is_broken(const struct virtio_dev *vdev);

/* virtio_stats - the counters the metrics endpoint reports for this device. */
struct dev_stats *virtio_stats(struct virtio_dev *vdev);

/*
 * virtio_lock/virtio_unlock - hold the transport lock of @vdev (the one
 * vCPUs and the device thread hold) around a change made from another
 * thread, e.g. the virtio_net_set_mac of a clone. Device operations
 * already run with it held: never call these from them.
 */
void virtio_lock(struct virtio_dev *vdev);
void virtio_unlock(struct virtio_dev *vdev);

/* virtio_config_changed - bump the configuration generation, interrupt the driver. */
void virtio_config_changed(struct virtio_dev *vdev);

/* virtio_config_bytes - copy @len bytes at @offset of @cfg (@size bytes) to @data, 0-padded. */
void virtio_config_bytes(const void *cfg, uint64_t size, uint64_t offset, void *data, uint32_t len);

/* The devices. Each returns NULL after logging one line on failure. */
struct disk_config;

/* GET_ID answers 20 bytes: a disk's serial is the first 20 bytes of its id. */
#define VIRTIO_BLK_ID_BYTES 20

/*
 * virtio_blk_default_id - the id (serial) of disk @index configured
 * without one: "banyan-vda", "banyan-vdb", ... into @buf (@len bytes).
 */
void virtio_blk_default_id(unsigned int index, char *buf, size_t len);

/*
 * virtio_blk_create - a block device on the raw image @disk->path, opened
 * now (read-only with @disk->read_only, O_DIRECT with cache=none). @index
 * names it ("vda" + index) and gives the default serial.
 *
 * @inst (NULL: a boot) places its overlay: with inst->overlay_prefix the
 * overlay is "PREFIX.vdX.overlay" (a clone's writable disk always gets
 * one), never the path a snapshot recorded. Restoring (inst->saved_dir),
 * the overlay starts as the snapshot's copy (checked: present, the disk's
 * size) or empty, written to a new file beside it that the clone
 * operation renames into place once the whole restore succeeded (and that
 * destroy removes otherwise). A restore of a disk with an overlay and no
 * prefix is refused.
 */
struct virtio_dev *virtio_blk_create(const struct disk_config *disk, unsigned int index,
				     const struct dev_instance *inst);

/*
 * virtio_blk_swap - the disk @vdev (a virtio-blk) continues on the file
 * @path: opened and checked first (the disk's mode, its lock, its size),
 * then, with the device quiesced (requests in flight finished), the old
 * file is closed and the guest is told the new capacity by a
 * configuration change interrupt. The same file again only rereads its
 * size. Refused for a disk with an overlay. Called from outside the
 * device's thread, never from a device operation. 0, or -errno with the
 * reason in @err; on failure the disk is unchanged.
 */
int virtio_blk_swap(struct virtio_dev *vdev, const char *path, char *err, size_t errlen);

/*
 * virtio_rng_create - an entropy device fed by getrandom(), rate-limited
 * by @limit (NULL: none).
 */
struct virtio_dev *virtio_rng_create(const struct rl_config *limit);

/*
 * virtio_set_rate_limit - replace a device's rate limiter @which (0: a
 * disk's or the entropy device's, or a card's receive side; 1: a card's
 * transmit side) by @c, at once, both buckets full (virtio/throttle.h).
 * Takes the transport lock. 0, or -EINVAL when @vdev has no such limiter.
 */
int virtio_set_rate_limit(struct virtio_dev *vdev, unsigned int which, const struct rl_config *c);

struct net_config;
struct vsock_config;

/*
 * virtio_net_default_id - the id of interface @index configured without
 * one: "net0", "net1", ... into @buf (@len bytes).
 */
void virtio_net_default_id(unsigned int index, char *buf, size_t len);

/* A guest CID: 0-2 are reserved (2 is the host), and 2^32-1 is VMADDR_CID_ANY. */
#define VIRTIO_VSOCK_CID_MIN 3U
#define VIRTIO_VSOCK_CID_MAX (UINT32_MAX - 1)
/*
 * The longest vsock socket path: a guest connecting to port P reaches
 * "PATH_P", which must still fit a sockaddr_un's sun_path (with its NUL) for the largest port,
 * "_4294967295".
 */
#define VIRTIO_VSOCK_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - sizeof("_4294967295"))

/*
 * virtio_net_create - a network card on the existing TAP @net->tap, opened
 * now with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR and a 12-byte header; never
 * creates the TAP. Missing, busy or not a TAP: NULL after one log line
 * naming it. @index names it "netN" when @net->id is NULL. Its MAC is
 * @net->mac, or virtio_net_default_mac(tap, name). A clone (@inst) opens
 * TAP "TAP-i" and takes the MAC its clone operation gives clone i: the
 * low three bytes FNV-1a(MAC, i), locally administered. With @net->mmds
 * the card also serves that metadata store at @net->mmds_ipv4 (mmds/mmds.h):
 * the guest's frames for that address go there, never to the TAP.
 *
 * State (the transport's `state` walks it): the MAC, the link status and
 * whether receiving had started; the TAP's offloads are set again from
 * the loaded features. A frame read from the TAP but not yet given to the
 * guest is not saved (the guest sees it lost, as on a real wire).
 */
struct virtio_dev *virtio_net_create(const struct net_config *net, unsigned int index,
				     const struct dev_instance *inst);

/*
 * virtio_net_check_tap - whether virtio_net_create could open the TAP
 * @name now (it exists, is a single-queue TAP, nobody else has it open):
 * opened the same way and closed again, never created. 0, or -errno with
 * the reason in @err.
 */
int virtio_net_check_tap(const char *name, char *err, size_t errlen);

/*
 * virtio_net_create_fd - the same on an already open @fd (taken over):
 * a TAP, or for tests a datagram socket carrying one frame with its
 * 12-byte header per datagram. @offloads: @fd takes TUNSETOFFLOAD.
 */
struct virtio_dev *virtio_net_create_fd(const struct net_config *net, unsigned int index, int fd,
					bool offloads);

/*
 * virtio_net_default_mac - the MAC of an interface configured without one:
 * FNV-1a of "TAP/ID", locally administered and unicast, so the same
 * configuration always gets the same address.
 */
void virtio_net_default_mac(const char *tap, const char *id, uint8_t mac[6]);

/*
 * virtio_net_set_mac - give the card a new MAC (a clone must not share its
 * parent's) and raise a configuration change. Linux reads the MAC when it
 * probes the device, so set it before the guest runs (after loading a
 * snapshot, before resuming). Takes the transport lock. 0, or -EINVAL when
 * @vdev is not a virtio-net device.
 */
int virtio_net_set_mac(struct virtio_dev *vdev, const uint8_t mac[6]);

/*
 * virtio_vsock_create - a vsock device with guest CID @vsock->cid whose
 * host side listens on the Unix socket @vsock->uds_path, created now, mode
 * 0600, and removed on destroy. An existing path is refused, except a
 * socket nobody listens on (left by a killed VMM), which is replaced; a
 * file that is not a socket is never removed. Host connections must send
 * their CONNECT line within @vsock->handshake_ms, and at most 64 wait to
 * (a new one closes the oldest). NULL after one log line.
 * Clone i (@inst) listens on "PATH.i" with CID CID + 1 + i, as its clone
 * operation gives it after a restore.
 *
 * State: the CID. Connections are host sockets and are not saved; a loaded
 * device sends the guest a TRANSPORT_RESET event (its event queue), so the
 * guest drops its connections and reads the CID again.
 */
struct virtio_dev *virtio_vsock_create(const struct vsock_config *vsock,
				       const struct dev_instance *inst);

/*
 * virtio_vsock_set_cid - give the guest a new CID (a clone), close every
 * connection and send TRANSPORT_RESET, after which Linux re-reads the CID.
 * Takes the transport lock. 0, or -EINVAL (not a vsock device, CID < 3).
 */
int virtio_vsock_set_cid(struct virtio_dev *vdev, uint32_t cid);

struct balloon_config;
struct guest_mem;

/* Statistics tags (5.5.6.3), in Firecracker's order of its statistics fields. */
enum virtio_balloon_stat {
	BALLOON_STAT_SWAP_IN,
	BALLOON_STAT_SWAP_OUT,
	BALLOON_STAT_MAJFLT,
	BALLOON_STAT_MINFLT,
	BALLOON_STAT_MEMFREE,
	BALLOON_STAT_MEMTOT,
	BALLOON_STAT_AVAIL,
	BALLOON_STAT_CACHES,
	BALLOON_STAT_HTLB_PGALLOC,
	BALLOON_STAT_HTLB_PGFAIL,
	BALLOON_NSTATS
};

/* What the API and the metrics see of a balloon (virtio_balloon_info). */
struct virtio_balloon_info {
	uint32_t target_pages;	   /* 4 KiB pages the host asks for */
	uint32_t actual_pages;	   /* ... the guest says it holds (capped at guest RAM) */
	uint32_t stats_interval_s; /* 0: no statistics */
	bool has_stat[BALLOON_NSTATS];
	uint64_t stat[BALLOON_NSTATS];		 /* as the guest last reported them */
	uint64_t stats_updates;			 /* statistics buffers received */
	uint64_t inflates, deflates, reports;	 /* buffers on each queue */
	uint64_t inflated_bytes, deflated_bytes; /* pages the guest put in, took out */
	uint64_t released_bytes;		 /* given back to the host by inflating */
	uint64_t reported_bytes;		 /* given back by free page reporting */
	uint64_t refused;			 /* pages refused: outside RAM, malformed */
};

/*
 * virtio_balloon_create - a memory balloon over guest RAM @mem, as @c
 * configures it: inflate and deflate queues, a statistics queue when
 * c->stats_interval_s > 0, free page reporting with c->reporting,
 * DEFLATE_ON_OOM with c->deflate_on_oom. Pages the guest puts in the
 * balloon or reports free are given back to the host at once
 * (gm_release), in runs of contiguous pages. State: the target, the
 * guest's actual size and the statistics interval.
 */
struct virtio_dev *virtio_balloon_create(const struct balloon_config *c,
					 const struct guest_mem *mem);

/* virtio_is_balloon - @vdev is a virtio-balloon. */
bool virtio_is_balloon(const struct virtio_dev *vdev);

/*
 * virtio_balloon_set_target - ask the guest for a balloon of @mib MiB
 * (a configuration change interrupt). Takes the transport lock. 0,
 * -EINVAL (not a balloon) or -ERANGE (more than the guest's RAM).
 */
int virtio_balloon_set_target(struct virtio_dev *vdev, uint32_t mib);

/*
 * virtio_balloon_set_stats_interval - poll statistics every @secs s.
 * A device created without statistics cannot start them, nor can one
 * with them stop them (the queue is negotiated at boot): -EINVAL then.
 */
int virtio_balloon_set_stats_interval(struct virtio_dev *vdev, uint32_t secs);

/* virtio_balloon_info - the balloon's sizes, statistics and counters into @out; 0 or -EINVAL. */
int virtio_balloon_info(struct virtio_dev *vdev, struct virtio_balloon_info *out);

/*
 * virtio_balloon_queue_role - which queue (0 inflate, 1 deflate, 2
 * statistics, 4 reporting, as the spec numbers them) the driver's queue
 * index @q is, given the @acked features: Linux's virtio-mmio gives
 * absent optional queues no index, so reporting is index 2 without the
 * statistics queue. -1 for an index that is no queue.
 */
int virtio_balloon_queue_role(uint64_t acked, unsigned int q);

/* virtio_net_set_link - report the link up or down (config status, config interrupt). */
int virtio_net_set_link(struct virtio_dev *vdev, bool up);

#endif
