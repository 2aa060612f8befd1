/*
 * virtio-blk (virtio 1.2, 5.2) on a raw image file: read, write, flush,
 * get-id, discard and write-zeroes, all asynchronous through util/aio.h so
 * neither vCPUs nor the device thread wait for the disk.
 */
#include "virtio/virtio.h"

#include "util/aio.h"
#include "util/file.h"
#include "virtio/blk_overlay.h"
#include "virtio/throttle.h"
#include "util/log.h"
#include "vmm/state.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK_QUEUE_SIZE	 256
#define BLK_SEG_MAX	 254		   /* data segments per request (as QEMU) */
#define BLK_CHAIN_MAX	 (BLK_SEG_MAX + 2) /* plus header and status */
#define BLK_SECTOR	 512ULL
#define BLK_DIRECT_ALIGN 4096 /* cache=none: block size and bounce alignment */
/*
 * cache=none: bounce-buffer bytes one disk may hold at once. A request's
 * length is bounded only by the chain (segments may overlap in guest
 * memory), so without a cap a guest sending misaligned requests could make
 * the VMM allocate many times its own RAM. Linux aligns its buffers and
 * never needs one; a request beyond what is left fails with IOERR.
 */
#define BLK_BOUNCE_MAX		(16ULL << 20)
#define BLK_MAX_DISCARD_SECTORS (1U << 30 >> 9) /* 1 GiB per discard/write-zeroes */
#define BLK_CONFIG_SIZE		60

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX	  2
#define VIRTIO_BLK_F_RO		  5
#define VIRTIO_BLK_F_BLK_SIZE	  6
#define VIRTIO_BLK_F_FLUSH	  9
#define VIRTIO_BLK_F_DISCARD	  13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status (5.2.6). */
#define VIRTIO_BLK_T_IN		  0
#define VIRTIO_BLK_T_OUT	  1
#define VIRTIO_BLK_T_FLUSH	  4
#define VIRTIO_BLK_T_GET_ID	  8
#define VIRTIO_BLK_T_DISCARD	  11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK		  0
#define VIRTIO_BLK_S_IOERR	  1
#define VIRTIO_BLK_S_UNSUPP	  2
#define VIRTIO_BLK_WZ_UNMAP	  1

struct blk_hdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct blk_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* Write-zeroes steps when the file system lacks FALLOC_FL_ZERO_RANGE. */
enum wz_step { WZ_NONE, WZ_ZERO_RANGE, WZ_PUNCH, WZ_ALLOCATE };

struct blk_req {
	struct aio_req aio;
	uint16_t head;
	uint8_t *status;   /* the chain's last writable byte (guest memory) */
	uint32_t used_len; /* bytes written into the chain on success */
	enum wz_step wz;
	void *bounce; /* cache=none, misaligned guest buffers */
	struct iovec bounce_iov;
	uint64_t bounce_size; /* bytes allocated for bounce */
	unsigned int ndata;
	bool data_readable;		  /* the data lies in device-readable buffers */
	struct iovec data[BLK_CHAIN_MAX]; /* the request's data bytes in guest memory */
	struct iovec chain[BLK_CHAIN_MAX];
	struct blk_req *next_free;
};

struct virtio_blk {
	struct virtio_dev vdev;
	char name[8]; /* "vda" */
	char serial[VIRTIO_BLK_ID_BYTES + 1];
	int fd;
	struct blk_overlay *overlay; /* NULL: fd is the disk; else fd is its base */
	char *overlay_path;	     /* where the overlay lives (owned); NULL: none */
	char *overlay_tmp;	     /* restoring: its new copy, until blk_clone renames it */
	bool read_only;
	bool direct;
	uint32_t blk_size; /* reported to the guest */
	uint64_t capacity; /* in 512-byte sectors */
	uint8_t config[BLK_CONFIG_SIZE];
	struct aio *aio;
	struct blk_req *reqs;
	struct blk_req *free; /* requests not in flight */
	bool starved;	      /* the queue has work waiting for a free request */
	/* Finished requests not yet in the used ring: published together. */
	struct vring_used_elem used[BLK_QUEUE_SIZE];
	unsigned int nused;
	bool io_error_logged;
	uint64_t bounce_bytes; /* bounce buffers allocated now (device thread) */
	struct throttle limit; /* reads and writes: bytes of data, one operation each */
	int epfd;	       /* vdev.event_fd: the aio fd and the limiter's timer */
};

static void put_le16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}
static void put_le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
static void put_le64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static struct virtio_blk *to_blk(struct virtio_dev *vdev)
{
	return container_of(vdev, struct virtio_blk, vdev);
}

static bool range_ok(const struct virtio_blk *blk, uint64_t sector, uint64_t bytes)
{
	return sector <= blk->capacity && bytes / BLK_SECTOR <= blk->capacity - sector;
}

/* --- completion --- */

static void blk_flush_used(struct virtio_blk *blk);

static void blk_bounce_free(struct virtio_blk *blk, struct blk_req *r)
{
	free(r->bounce);
	r->bounce = NULL;
	blk->bounce_bytes -= r->bounce_size;
	r->bounce_size = 0;
}

static void blk_finish(struct virtio_blk *blk, struct blk_req *r, uint8_t status)
{
	if (status != VIRTIO_BLK_S_OK)
		r->used_len = 1;
	atomic_fetch_add_explicit(&virtio_stats(&blk->vdev)->requests, 1, memory_order_relaxed);
	*r->status = status;
	blk_bounce_free(blk, r);
	if (blk->nused == BLK_QUEUE_SIZE)
		blk_flush_used(blk); /* a driver refilling the ring as fast as we pop */
	blk->used[blk->nused++] = (struct vring_used_elem){r->head, r->used_len};
	r->next_free = blk->free;
	blk->free = r;
}

/*
 * Publish the requests finished since the last call with one used->idx
 * update, then interrupt if the driver asked (EVENT_IDX: once per batch).
 */
static void blk_flush_used(struct virtio_blk *blk)
{
	struct virtqueue *vq = &blk->vdev.vqs[0];

	if (!blk->nused)
		return;
	/* In chunks of the queue size (a driver may reuse heads while in flight). */
	for (unsigned int i = 0, n; i < blk->nused && vq->size && !virtio_is_broken(&blk->vdev);
	     i += n) {
		n = blk->nused - i < vq->size ? blk->nused - i : vq->size;
		vq_push_many(vq, blk->used + i, n);
	}
	blk->nused = 0;
	virtio_used(&blk->vdev, 0);
}

/* The next write-zeroes step after a failed or finished one; false when done. */
static bool blk_wz_next(struct virtio_blk *blk, struct blk_req *r)
{
	int64_t res = r->aio.res;

	if (r->wz == WZ_ZERO_RANGE && (res == -EOPNOTSUPP || res == -EINVAL)) {
		r->wz = WZ_PUNCH;
		r->aio.mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	} else if (r->wz == WZ_PUNCH && res == 0) {
		r->wz = WZ_ALLOCATE; /* no unmap asked: give the blocks back */
		r->aio.mode = FALLOC_FL_KEEP_SIZE;
	} else {
		return false;
	}
	aio_submit(blk->aio, &r->aio);
	return true;
}

static void blk_done(struct aio_req *a, void *opaque)
{
	struct virtio_blk *blk = opaque;
	struct blk_req *r = container_of(a, struct blk_req, aio);

	if (r->wz != WZ_NONE && blk_wz_next(blk, r))
		return;
	if (r->wz == WZ_ALLOCATE)
		a->res = 0; /* the blocks read as zeroes already; allocation is best effort */
	if (a->res < 0) {
		if (!blk->io_error_logged)
			log_guest_warn(blk, "virtio-blk %s: I/O error: %s", blk->name,
				       strerror((int)-a->res));
		blk->io_error_logged = true;
		blk_finish(blk, r, VIRTIO_BLK_S_IOERR);
		return;
	}
	if (r->bounce && a->op == AIO_READ)
		iov_from_buf(r->data, r->ndata, 0, r->bounce, r->bounce_iov.iov_len);
	if (a->op == AIO_READ)
		dev_stats_in(virtio_stats(&blk->vdev), (uint64_t)a->res);
	else if (a->op == AIO_WRITE)
		dev_stats_out(virtio_stats(&blk->vdev), (uint64_t)a->res);
	blk_finish(blk, r, VIRTIO_BLK_S_OK);
}

/* --- submission --- */

static bool iov_aligned(const struct iovec *iov, unsigned int n, uint64_t align)
{
	for (unsigned int i = 0; i < n; i++)
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (align - 1))
			return false;
	return true;
}

/* An overlay request, in an I/O thread. */
static int64_t blk_overlay_call(struct aio_req *a)
{
	struct blk_overlay *o = a->data;

	switch (a->op) {
	case AIO_READ:
		return blk_overlay_preadv(o, a->iov, a->iovcnt, a->offset);
	case AIO_WRITE:
		return blk_overlay_pwritev(o, a->iov, a->iovcnt, a->offset);
	case AIO_FDATASYNC:
		return blk_overlay_sync(o);
	case AIO_FALLOCATE:
		return blk_overlay_write_zeroes(o, a->offset, a->len);
	}
	return -EINVAL;
}

/* Route @r through the overlay when the disk has one. */
static void blk_submit(struct virtio_blk *blk, struct blk_req *r)
{
	if (blk->overlay) {
		r->aio.call = blk_overlay_call;
		r->aio.data = blk->overlay;
	}
	aio_submit(blk->aio, &r->aio);
}

/* cache=none: carry a misaligned request through an aligned buffer, within the disk's budget. */
static int blk_bounce(struct virtio_blk *blk, struct blk_req *r, enum aio_op op, uint64_t len)
{
	uint64_t size = (len + BLK_DIRECT_ALIGN - 1) & ~(uint64_t)(BLK_DIRECT_ALIGN - 1);

	if (size > BLK_BOUNCE_MAX - blk->bounce_bytes) {
		log_guest_warn(blk,
			       "virtio-blk %s: a misaligned %" PRIu64 "-byte request is over the "
			       "bounce budget (cache=none): failed",
			       blk->name, len);
		return -ENOMEM;
	}
	if (posix_memalign(&r->bounce, BLK_DIRECT_ALIGN, size))
		return -ENOMEM;
	r->bounce_size = size;
	blk->bounce_bytes += size;
	r->bounce_iov = (struct iovec){r->bounce, len};
	if (op == AIO_WRITE)
		iov_to_buf(r->data, r->ndata, 0, r->bounce, len);
	r->aio.iov = &r->bounce_iov;
	r->aio.iovcnt = 1;
	return 0;
}

/* Read or write r->data at @sector; returns a status when it cannot start. */
static int blk_rw(struct virtio_blk *blk, struct blk_req *r, enum aio_op op, uint64_t sector,
		  uint64_t len)
{
	if (len % BLK_SECTOR || !range_ok(blk, sector, len))
		return VIRTIO_BLK_S_IOERR;
	r->aio = (struct aio_req){.op = op,
				  .fd = blk->fd,
				  .iov = r->data,
				  .iovcnt = r->ndata,
				  .offset = sector * BLK_SECTOR};
	if (blk->direct &&
	    (len % BLK_DIRECT_ALIGN || !iov_aligned(r->data, r->ndata, BLK_DIRECT_ALIGN))) {
		if (blk_bounce(blk, r, op, len) < 0)
			return VIRTIO_BLK_S_IOERR;
	}
	blk_submit(blk, r);
	return -1;
}

static int blk_discard(struct virtio_blk *blk, struct blk_req *r, uint32_t type, uint64_t len)
{
	struct blk_seg seg;
	bool unmap;

	if (blk->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (len != sizeof(seg))
		return VIRTIO_BLK_S_UNSUPP; /* exactly one segment (max_*_seg is 1) */
	iov_to_buf(r->data, r->ndata, 0, &seg, sizeof(seg));
	unmap = seg.flags & VIRTIO_BLK_WZ_UNMAP;
	if ((seg.flags & ~VIRTIO_BLK_WZ_UNMAP) || (type == VIRTIO_BLK_T_DISCARD && unmap))
		return VIRTIO_BLK_S_UNSUPP;
	if (seg.num_sectors > BLK_MAX_DISCARD_SECTORS ||
	    !range_ok(blk, seg.sector, (uint64_t)seg.num_sectors * BLK_SECTOR))
		return VIRTIO_BLK_S_IOERR;
	if (seg.num_sectors == 0 || (blk->overlay && type == VIRTIO_BLK_T_DISCARD))
		return VIRTIO_BLK_S_OK; /* discard is a hint; an overlay keeps its clusters */
	r->aio = (struct aio_req){.op = AIO_FALLOCATE,
				  .fd = blk->fd,
				  .offset = seg.sector * BLK_SECTOR,
				  .len = (uint64_t)seg.num_sectors * BLK_SECTOR,
				  .mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE};
	if (type == VIRTIO_BLK_T_WRITE_ZEROES && !unmap && !blk->overlay) {
		r->wz = WZ_ZERO_RANGE;
		r->aio.mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	}
	blk_submit(blk, r);
	return -1;
}

/* Start one request; returns its status when it finished at once, -1 when in flight. */
static int blk_start(struct virtio_blk *blk, struct blk_req *r, const struct blk_hdr *h)
{
	uint64_t len = 0;

	for (unsigned int i = 0; i < r->ndata; i++)
		len += r->data[i].iov_len;
	/* Never write into buffers the driver lent read-only. */
	if (r->data_readable && (h->type == VIRTIO_BLK_T_IN || h->type == VIRTIO_BLK_T_GET_ID))
		return VIRTIO_BLK_S_IOERR;
	switch (h->type) {
	case VIRTIO_BLK_T_IN:
		r->used_len = (uint32_t)len + 1;
		return blk_rw(blk, r, AIO_READ, h->sector, len);
	case VIRTIO_BLK_T_OUT:
		return blk->read_only ? VIRTIO_BLK_S_IOERR
				      : blk_rw(blk, r, AIO_WRITE, h->sector, len);
	case VIRTIO_BLK_T_FLUSH:
		r->aio = (struct aio_req){.op = AIO_FDATASYNC, .fd = blk->fd};
		blk_submit(blk, r);
		return -1;
	case VIRTIO_BLK_T_GET_ID:
		r->used_len = 1 + (uint32_t)iov_from_buf(r->data, r->ndata, 0, blk->serial,
							 VIRTIO_BLK_ID_BYTES);
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return blk_discard(blk, r, h->type, len);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/*
 * Split a chain into header, data and status without assuming any framing
 * (2.6.4): the header is the first 16 readable bytes, the status the last
 * writable byte, the data what lies between. Returns false if malformed.
 */
static bool blk_parse(struct blk_req *r, const struct vq_chain *c, struct blk_hdr *h)
{
	const struct iovec *last = &c->iov[c->nout + c->nin - 1];
	int n;

	if (c->out_len < sizeof(*h) || c->in_len < 1)
		return false;
	iov_to_buf(c->iov, c->nout, 0, h, sizeof(*h));
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	if (c->out_len > sizeof(*h)) /* device-readable data: OUT, DISCARD, WRITE_ZEROES */
		n = iov_slice(c->iov, c->nout, sizeof(*h), c->out_len - sizeof(*h), r->data,
			      BLK_CHAIN_MAX);
	else
		n = iov_slice(c->iov + c->nout, c->nin, 0, c->in_len - 1, r->data, BLK_CHAIN_MAX);
	if (n < 0 || (c->out_len > sizeof(*h) && c->in_len > 1))
		return false; /* data in both directions */
	r->ndata = (unsigned int)n;
	r->data_readable = c->out_len > sizeof(*h);
	return true;
}

/*
 * The rate limiter's word on a parsed request: reads and writes cost their
 * data bytes, every request one operation. A refused one goes back to the
 * ring (and @r to the pool) until the limiter's timer fires.
 */
static bool blk_admit(struct virtio_blk *blk, struct blk_req *r, const struct blk_hdr *h)
{
	uint64_t len = 0;

	if (h->type == VIRTIO_BLK_T_IN || h->type == VIRTIO_BLK_T_OUT)
		for (unsigned int i = 0; i < r->ndata; i++)
			len += r->data[i].iov_len;
	blk->limit.dir = h->type == VIRTIO_BLK_T_IN ? DEV_DIR_IN : DEV_DIR_OUT;
	if (throttle_admit(&blk->limit, len))
		return true;
	vq_unpop(&blk->vdev.vqs[0]);
	r->next_free = blk->free;
	blk->free = r;
	return false;
}

static void blk_process(struct virtio_blk *blk)
{
	struct blk_req *r;
	struct blk_hdr h;
	int st;

	if (blk->limit.throttled)
		return; /* the limiter's timer resumes */
	blk->starved = false;
	while ((r = blk->free)) {
		struct vq_chain c = {.iov = r->chain, .cap = BLK_CHAIN_MAX};

		if (virtio_pop(&blk->vdev, 0, &c) <= 0)
			break;
		blk->free = r->next_free;
		r->head = c.head;
		r->used_len = 1;
		r->wz = WZ_NONE;
		if (!blk_parse(r, &c, &h)) {
			r->next_free = blk->free;
			blk->free = r;
			virtio_fail(&blk->vdev,
				    "request without header, status or with mixed data");
			break;
		}
		if (!blk_admit(blk, r, &h))
			break;
		st = blk_start(blk, r, &h);
		if (st >= 0)
			blk_finish(blk, r, (uint8_t)st);
	}
	if (!blk->free)
		blk->starved = true;
	aio_commit(blk->aio);
	blk_flush_used(blk);
}

static void blk_notify(struct virtio_dev *vdev, unsigned int q)
{
	(void)q;
	blk_process(to_blk(vdev));
}

static void blk_event(struct virtio_dev *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);
	bool again = throttle_expired(&blk->limit);

	if (aio_reap(blk->aio, blk_done, blk) > 0) {
		aio_commit(blk->aio); /* write-zeroes steps */
		blk_flush_used(blk);
		again |= blk->starved;
	}
	if (again && !virtio_is_broken(vdev) && vdev->vqs[0].active)
		blk_process(blk);
}

static struct throttle *blk_throttle(struct virtio_dev *vdev, unsigned int which)
{
	return which == 0 ? &to_blk(vdev)->limit : NULL;
}

static void blk_config_read(struct virtio_dev *vdev, uint64_t offset, void *data, uint32_t len)
{
	struct virtio_blk *blk = to_blk(vdev);

	virtio_config_bytes(blk->config, sizeof(blk->config), offset, data, len);
}

/* A request reaped during reset: back to the pool, the rings are not touched. */
static void blk_drop(struct aio_req *a, void *opaque)
{
	struct virtio_blk *blk = opaque;
	struct blk_req *r = container_of(a, struct blk_req, aio);

	blk_bounce_free(blk, r);
	r->next_free = blk->free;
	blk->free = r;
}

static void blk_reset(struct virtio_dev *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);

	aio_drain(blk->aio, blk_drop, blk);
	blk->nused = 0; /* finished before the reset: the rings are not touched */
	blk->starved = false;
}

/*
 * Finish what is in flight (io_uring or the worker pool) and publish it, so
 * every request the guest queued is either done, in the used ring, or not
 * yet popped: the device is paused, or about to be saved.
 */
static void blk_drain(struct virtio_dev *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);

	if (!aio_inflight(blk->aio))
		return;
	aio_drain(blk->aio, blk_done, blk);
	blk_flush_used(blk);
}

static int blk_state(struct virtio_dev *vdev, struct state_io *io)
{
	struct virtio_blk *blk = to_blk(vdev);
	uint64_t capacity = blk->capacity;

	if (!io->loading)
		blk_drain(vdev); /* nothing left after a pause; a caller that did not pause */
	state_u64(io, &capacity);
	if (!io->err && capacity != blk->capacity)
		io->err = -EBADMSG; /* restoring onto a different image */
	return io->err;
}

static void blk_destroy(struct virtio_dev *vdev)
{
	struct virtio_blk *blk = to_blk(vdev);

	if (blk->aio) {
		aio_drain(blk->aio, blk_drop, blk);
		aio_destroy(blk->aio);
	}
	blk_overlay_close(blk->overlay);
	throttle_destroy(&blk->limit);
	if (blk->epfd >= 0)
		close(blk->epfd);
	if (blk->fd >= 0)
		close(blk->fd);
	if (blk->overlay_tmp) /* a restore that did not complete leaves nothing behind */
		unlink(blk->overlay_tmp);
	free(blk->overlay_tmp);
	free(blk->overlay_path);
	free(blk->reqs);
	free(blk);
}

/* Another VM has the overlay at @path open (it holds its lock). */
static bool blk_overlay_busy(const char *path)
{
	int fd = file_open_kind(path, O_RDONLY | O_NOFOLLOW, 0, FILE_KIND_REG);
	bool busy = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0;

	if (fd >= 0)
		close(fd);
	return busy;
}

/* The restore succeeded: the overlay's new copy takes its place. */
static int blk_clone(struct virtio_dev *vdev, const struct dev_clone *c)
{
	struct virtio_blk *blk = to_blk(vdev);

	(void)c;
	if (!blk->overlay_tmp)
		return 0;
	if (blk_overlay_busy(blk->overlay_path)) {
		log_error("%s: overlay %s is in use by another VM", blk->name, blk->overlay_path);
		return -EBUSY;
	}
	if (rename(blk->overlay_tmp, blk->overlay_path) < 0) {
		int e = errno;

		log_error("%s: cannot put overlay %s in place: %s", blk->name, blk->overlay_path,
			  strerror(e));
		return -e;
	}
	free(blk->overlay_tmp);
	blk->overlay_tmp = NULL;
	return 0;
}

/* A snapshot carries the disk's overlay: a copy, "disk-vdX.overlay" in its directory. */
static int blk_save_files(struct virtio_dev *vdev, const char *dir, char *err, size_t errlen)
{
	struct virtio_blk *blk = to_blk(vdev);
	char to[PATH_MAX + 32], msg[512];
	int ret;

	if (!blk->overlay)
		return 0;
	snprintf(to, sizeof(to), "%s/disk-%s.overlay", dir, blk->name);
	ret = blk_overlay_copy(blk->overlay_tmp ? blk->overlay_tmp : blk->overlay_path, to, msg,
			       sizeof(msg));
	if (ret < 0)
		snprintf(err, errlen, "disk %s: %s", blk->name, msg);
	return ret;
}

static const struct virtio_dev_ops virtio_blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .nqueues = 1,
    .queue_max = BLK_QUEUE_SIZE,
    .config_read = blk_config_read,
    .notify = blk_notify,
    .event = blk_event,
    .reset = blk_reset,
    .drain = blk_drain,
    .state = blk_state,
    .clone = blk_clone,
    .save_files = blk_save_files,
    .throttle = blk_throttle,
    .destroy = blk_destroy,
};

static void blk_fill_config(struct virtio_blk *blk)
{
	uint8_t *c = blk->config;
	uint32_t bs = blk->blk_size;

	put_le64(c + 0, blk->capacity);
	put_le32(c + 12, BLK_SEG_MAX);
	put_le32(c + 20, bs);			   /* blk_size */
	put_le16(c + 34, 1);			   /* num_queues */
	put_le32(c + 36, BLK_MAX_DISCARD_SECTORS); /* max_discard_sectors */
	put_le32(c + 40, 1);			   /* max_discard_seg */
	put_le32(c + 44, bs / BLK_SECTOR);	   /* discard_sector_alignment */
	put_le32(c + 48, BLK_MAX_DISCARD_SECTORS); /* max_write_zeroes_sectors */
	put_le32(c + 52, 1);			   /* max_write_zeroes_seg */
	c[56] = 1;				   /* write_zeroes_may_unmap */
}

/* Lock the image: one writer, or any number of readers (overlays read their base). */
static int blk_lock(struct virtio_blk *blk, const struct disk_config *disk)
{
	bool shared = disk->read_only || blk->overlay_path;

	if (flock(blk->fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0)
		return 0;
	if (shared)
		log_error("disk %s is in use by a VM that writes to it: it cannot be read as %s "
			  "meanwhile",
			  disk->path, blk->overlay_path ? "an overlay's base" : "a read-only disk");
	else
		log_error("disk %s is locked: another --disk or another VM uses it", disk->path);
	return -EBUSY;
}

static int blk_open(struct virtio_blk *blk, const struct disk_config *disk)
{
	bool writable = !disk->read_only && !blk->overlay_path;
	int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
	struct stat st;
	off_t size;
	int ret;

	/* Typed and non-blocking: a FIFO named as a disk must not hang the VMM here. */
	blk->fd = file_open_kind(disk->path, flags | (blk->direct ? O_DIRECT : 0), 0,
				 FILE_KIND_REG | FILE_KIND_BLK);
	if (blk->fd == -FILE_EKIND) {
		log_error("disk %s is not a regular file or block device", disk->path);
		return -EINVAL;
	}
	if (blk->fd < 0)
		errno = -blk->fd;
	if (blk->fd < 0 && errno == EINVAL && blk->direct) {
		log_error("cannot open disk %s with cache=none: its file system refuses O_DIRECT "
			  "(use cache=writeback)",
			  disk->path);
		return -EINVAL;
	}
	if (blk->fd < 0) {
		int e = errno;

		log_error("cannot open disk %s%s: %s", disk->path,
			  writable && (e == EACCES || e == EROFS) ? " for writing (add ,ro?)" : "",
			  strerror(e));
		return -e;
	}
	if (fstat(blk->fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		log_error("disk %s is not a regular file or block device", disk->path);
		return -EINVAL;
	}
	ret = blk_lock(blk, disk);
	if (ret < 0)
		return ret;
	size = lseek(blk->fd, 0, SEEK_END);
	if (size < 0) {
		log_error("disk %s is unreadable: %s", disk->path, strerror(errno));
		return -EINVAL;
	}
	/*
	 * An empty file is a disk of no sectors, as Firecracker allows: its
	 * clients attach placeholders at boot and swap the real file in later
	 * (virtio_blk_swap).
	 */
	blk->capacity = (uint64_t)size / BLK_SECTOR;
	return 0;
}

/* The file @path for virtio_blk_swap: opened as the disk's own, locked, sized. */
static int blk_swap_open(struct virtio_blk *blk, const char *path, uint64_t *capacity, char *err,
			 size_t errlen)
{
	int flags = (blk->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (blk->direct ? O_DIRECT : 0);
	int fd = file_open_kind(path, flags, 0, FILE_KIND_REG | FILE_KIND_BLK);
	struct stat a, b;
	off_t size;

	if (fd < 0)
		return snprintf(err, errlen, "cannot open %s: %s", path,
				fd == -FILE_EKIND ? file_kind_error(FILE_KIND_REG | FILE_KIND_BLK)
						  : strerror(-fd)),
		       fd;
	/* The same file again: the disk keeps its descriptor (and lock) and takes the new size. */
	if (fstat(fd, &a) == 0 && fstat(blk->fd, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino) {
		close(fd);
		fd = blk->fd;
	} else if (flock(fd, (blk->read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		close(fd);
		return snprintf(err, errlen, "%s is in use by another disk or VM", path), -EBUSY;
	}
	size = lseek(fd, 0, SEEK_END);
	if (size < 0) {
		if (fd != blk->fd)
			close(fd);
		return snprintf(err, errlen, "cannot size %s: %s", path, strerror(errno)), -EIO;
	}
	*capacity = (uint64_t)size / BLK_SECTOR;
	return fd;
}

int virtio_blk_swap(struct virtio_dev *vdev, const char *path, char *err, size_t errlen)
{
	struct virtio_blk *blk = to_blk(vdev);
	uint64_t capacity = 0;
	int fd, old;

	if (vdev->ops != &virtio_blk_ops)
		return snprintf(err, errlen, "not a block device"), -EINVAL;
	if (blk->overlay)
		return snprintf(err, errlen,
				"disk %s writes through an overlay: its base cannot change",
				blk->name),
		       -ENOTSUP;
	fd = blk_swap_open(blk, path, &capacity, err, errlen);
	if (fd < 0)
		return fd;
	/* Quiesced: no request of the guest's is on the old file when it goes. */
	virtio_lock(vdev);
	blk_drain(vdev);
	old = blk->fd;
	blk->fd = fd;
	blk->capacity = capacity;
	blk_fill_config(blk);
	blk->io_error_logged = false;
	virtio_config_changed(vdev);
	virtio_unlock(vdev);
	if (old != fd)
		close(old);
	log_info("%s: now %s, %llu MiB", blk->name, path, (unsigned long long)(capacity >> 11));
	return 0;
}

/* The snapshot's copy of this disk's overlay: a regular file of the disk's size. */
static int blk_saved_overlay(struct virtio_blk *blk, const char *dir, char *saved, size_t len)
{
	struct stat st;

	snprintf(saved, len, "%s/disk-%s.overlay", dir, blk->name);
	if (lstat(saved, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_error("%s: the copy of disk %s's overlay is missing", dir, blk->name);
		return -EBADMSG;
	}
	if ((uint64_t)st.st_size != blk->capacity * BLK_SECTOR) {
		log_error("%s: the copy of disk %s's overlay is %lld bytes, the disk %llu "
			  "(truncated, or the disk changed)",
			  dir, blk->name, (long long)st.st_size,
			  (unsigned long long)(blk->capacity * BLK_SECTOR));
		return -EBADMSG;
	}
	return 0;
}

/* A new, empty file of our own (blk_overlay_open sizes it): never one planted there. */
static int blk_overlay_new(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0) {
		log_error("cannot create overlay %s: %s", path, strerror(errno));
		return -errno;
	}
	close(fd);
	return 0;
}

/*
 * Restoring: the overlay's content (the snapshot's copy, or nothing) goes
 * to a new file beside its place, which blk_clone renames into place once
 * the whole restore succeeded: until then nothing that exists is replaced.
 */
static int blk_overlay_stage(struct virtio_blk *blk, const struct disk_config *disk,
			     const struct dev_instance *inst)
{
	char saved[PATH_MAX + 32], err[512];
	int ret;

	if (disk->overlay &&
	    (ret = blk_saved_overlay(blk, inst->saved_dir, saved, sizeof(saved))) < 0)
		return ret;
	if (blk_overlay_busy(blk->overlay_path)) {
		log_error("disk %s: overlay %s is in use by another VM", disk->path,
			  blk->overlay_path);
		return -EBUSY;
	}
	if (asprintf(&blk->overlay_tmp, "%s.restoring-%d", blk->overlay_path, (int)getpid()) < 0) {
		blk->overlay_tmp = NULL;
		return -ENOMEM;
	}
	if (unlink(blk->overlay_tmp) < 0 && errno != ENOENT)
		return -errno;
	if (!disk->overlay)
		return blk_overlay_new(blk->overlay_tmp);
	ret = blk_overlay_copy(saved, blk->overlay_tmp, err, sizeof(err));
	if (ret < 0)
		log_error("disk %s: %s", disk->path, err);
	return ret;
}

static int blk_open_overlay(struct virtio_blk *blk, const struct disk_config *disk,
			    const struct dev_instance *inst)
{
	char err[512];
	int ret;

	if (!blk->overlay_path)
		return 0;
	if (inst && inst->saved_dir && (ret = blk_overlay_stage(blk, disk, inst)) < 0)
		return ret;
	ret = blk_overlay_open(&blk->overlay, blk->fd, blk->capacity * BLK_SECTOR,
			       blk->overlay_tmp ? blk->overlay_tmp : blk->overlay_path, err,
			       sizeof(err));
	if (ret < 0)
		log_error("disk %s: %s", disk->path, err);
	return ret;
}

/*
 * Where the overlay lives: the operator's prefix when there is one (a
 * restore, a clone), else the configured path; a restore never takes the
 * path a snapshot recorded, which anyone who can write a snapshot chooses.
 */
static int blk_overlay_place(struct virtio_blk *blk, const struct disk_config *disk,
			     const struct dev_instance *inst)
{
	bool clone = inst && inst->clone && !disk->read_only;

	if (!disk->overlay && !clone)
		return 0;
	if (inst && inst->overlay_prefix) {
		if (asprintf(&blk->overlay_path, "%s.%s.overlay", inst->overlay_prefix, blk->name) <
		    0)
			blk->overlay_path = NULL;
	} else if (inst && (inst->saved_dir || inst->clone)) {
		log_error("disk %s: the snapshot carries its overlay (recorded as %s), and a "
			  "restore writes no path a snapshot names: give the restored overlay a "
			  "place (banyan restore --overlay-prefix PREFIX puts it at "
			  "PREFIX.%s.overlay)",
			  disk->path, disk->overlay ? disk->overlay : "none", blk->name);
		return -EINVAL;
	} else {
		blk->overlay_path = strdup(disk->overlay);
	}
	return blk->overlay_path ? 0 : -ENOMEM;
}

/* One event fd for the device thread: completions and the rate limiter's timer. */
static int blk_watch(struct virtio_blk *blk, const struct disk_config *disk)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int ret = throttle_init(&blk->limit, &disk->limit, &blk->vdev, DEV_DIR_IN);

	if (ret < 0)
		return ret;
	blk->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (blk->epfd < 0 || epoll_ctl(blk->epfd, EPOLL_CTL_ADD, aio_fd(blk->aio), &ev) < 0 ||
	    epoll_ctl(blk->epfd, EPOLL_CTL_ADD, blk->limit.timer_fd, &ev) < 0) {
		log_error("disk %s: cannot set up its event fds: %s", disk->path, strerror(errno));
		return -errno;
	}
	return 0;
}

void virtio_blk_default_id(unsigned int index, char *buf, size_t len)
{
	snprintf(buf, len, "banyan-vd%c", 'a' + (int)index);
}

static int blk_init(struct virtio_blk *blk, const struct disk_config *disk, unsigned int index,
		    const struct dev_instance *inst)
{
	int ret;

	snprintf(blk->name, sizeof(blk->name), "vd%c", 'a' + (int)index);
	snprintf(blk->serial, sizeof(blk->serial), "%s", disk->id ? disk->id : "");
	if (!disk->id)
		virtio_blk_default_id(index, blk->serial, sizeof(blk->serial));
	blk->read_only = disk->read_only;
	ret = blk_overlay_place(blk, disk, inst);
	if (ret < 0)
		return ret;
	/* An overlay goes through the page cache: cache=none keeps only its block size. */
	blk->direct = disk->cache == DISK_CACHE_NONE && !blk->overlay_path;
	blk->blk_size = disk->cache == DISK_CACHE_NONE ? BLK_DIRECT_ALIGN : BLK_SECTOR;
	ret = blk_open(blk, disk);
	if (ret == 0)
		ret = blk_open_overlay(blk, disk, inst);
	if (ret < 0)
		return ret;
	ret = aio_init(&blk->aio, BLK_QUEUE_SIZE, blk->overlay ? AIO_CALLS : 0);
	if (ret < 0) {
		log_error("disk %s: cannot set up asynchronous I/O: %s", disk->path,
			  strerror(-ret));
		return ret;
	}
	blk->reqs = calloc(BLK_QUEUE_SIZE, sizeof(*blk->reqs));
	if (!blk->reqs)
		return -ENOMEM;
	for (unsigned int i = 0; i < BLK_QUEUE_SIZE; i++) {
		blk->reqs[i].next_free = blk->free;
		blk->free = &blk->reqs[i];
	}
	blk_fill_config(blk);
	return blk_watch(blk, disk);
}

struct virtio_dev *virtio_blk_create(const struct disk_config *disk, unsigned int index,
				     const struct dev_instance *inst)
{
	struct virtio_blk *blk = calloc(1, sizeof(*blk));

	if (!blk) {
		log_error("virtio-blk: out of memory");
		return NULL;
	}
	blk->fd = blk->epfd = blk->limit.timer_fd = -1;
	blk->vdev = (struct virtio_dev){.ops = &virtio_blk_ops, .id = blk->name, .event_fd = -1};
	if (index >= 26 || blk_init(blk, disk, index, inst) < 0) {
		blk_destroy(&blk->vdev);
		return NULL;
	}
	blk->vdev.event_fd = blk->epfd;
	blk->vdev.features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
			     (1ULL << VIRTIO_BLK_F_FLUSH);
	if (blk->read_only)
		blk->vdev.features |= 1ULL << VIRTIO_BLK_F_RO;
	else
		blk->vdev.features |=
		    (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	log_info("%s: %s, %llu MiB, %s%s%s, cache=%s, %s", blk->name, disk->path,
		 (unsigned long long)(blk->capacity >> 11),
		 blk->read_only ? "read-only" : "read-write",
		 blk->overlay ? " through overlay " : "", blk->overlay ? blk->overlay_path : "",
		 blk->direct ? "none" : "writeback", aio_engine(blk->aio));
	return &blk->vdev;
}
