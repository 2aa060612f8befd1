/*
 * virtio-balloon (virtio 1.2, 5.5): the guest gives pages back to the host.
 *
 * Inflate buffers carry arrays of 4 KiB page frame numbers (le32) the
 * guest no longer uses; reporting buffers (free page reporting) describe
 * free ranges directly. Both are given back to the host at once through
 * gm_release, sorted and merged into runs of contiguous pages first, so a
 * run costs one system call, not one per page. Deflating needs nothing:
 * without MUST_TELL_HOST the guest may touch a page before telling us,
 * and a released page simply faults in again as zero.
 *
 * Every page number and range is the guest's word: each run goes through
 * gm_release, which refuses anything not wholly in guest RAM (the MMIO
 * hole, beyond the end, wrapping) and releases nothing of it then.
 *
 * Statistics (5.5.6.3): the driver keeps one buffer in the statistics
 * queue; the device holds it and, every polling interval, hands it back
 * empty, after which the driver refills it with fresh values.
 */
#include "virtio/virtio.h"

#include "util/log.h"
#include "vmm/guest_mem.h"
#include "vmm/state.h"
#include "vmm/vm.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define BALLOON_F_STATS_VQ	 1
#define BALLOON_F_DEFLATE_ON_OOM 2
#define BALLOON_F_REPORTING	 5

#define BALLOON_QUEUES	   4 /* inflate, deflate, statistics, reporting: at most */
#define BALLOON_QUEUE_SIZE 256
#define BALLOON_MAX_SEGS   64	 /* Linux sends 1 (inflate) to 32 (reporting) */
#define BALLOON_BATCH	   512	 /* page numbers sorted and merged at a time */
#define BALLOON_MAX_PFNS   65536 /* per buffer: what is beyond is refused */
#define BALLOON_PAGE_SHIFT 12
#define BALLOON_STAT_BYTES 10 /* le16 tag, le64 value: packed */
#define BALLOON_MAX_STATS  64
#define STATE_VERSION	   2 /* 2: the held statistics buffer */

/* The queues as the spec numbers them (5.5.2). */
enum { BQ_INFLATE = 0, BQ_DEFLATE = 1, BQ_STATS = 2, BQ_REPORTING = 4 };

/* A range of guest RAM to give back. */
struct balloon_run {
	uint64_t gpa, len;
};

struct virtio_balloon {
	struct virtio_dev vdev;
	const struct guest_mem *mem;
	struct balloon_config cfg;
	/* Protected by the transport lock, as every device field. */
	uint32_t num_pages; /* target, config space */
	uint32_t actual;    /* written by the driver */
	bool stats_held;    /* the driver's statistics buffer is ours */
	uint16_t stats_head;
	bool warned;
	struct virtio_balloon_info info; /* statistics and counters */
	struct iovec iov[BALLOON_MAX_SEGS];
	uint32_t pfns[BALLOON_BATCH];
	struct balloon_run runs[BALLOON_MAX_SEGS];
};

static struct virtio_balloon *to_balloon(struct virtio_dev *vdev)
{
	return container_of(vdev, struct virtio_balloon, vdev);
}

int virtio_balloon_queue_role(uint64_t acked, unsigned int q)
{
	bool stats = acked & (1ULL << BALLOON_F_STATS_VQ);
	bool reporting = acked & (1ULL << BALLOON_F_REPORTING);

	if (q < 2)
		return (int)q;
	if (stats && q == 2)
		return BQ_STATS;
	if (reporting && q == 2 + (stats ? 1U : 0U))
		return BQ_REPORTING;
	return -1;
}

/* One refusal logged per device: a hostile guest cannot flood the log. */
static void balloon_refuse(struct virtio_balloon *b, uint64_t pages, const char *why)
{
	b->info.refused += pages;
	if (!b->warned)
		log_warn("virtio-balloon: refused %llu page(s): %s (further refusals are counted)",
			 (unsigned long long)pages, why);
	b->warned = true;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Give back one run; its bytes are counted in *@bytes. */
static void balloon_release(struct virtio_balloon *b, uint64_t gpa, uint64_t len, uint64_t *bytes)
{
	uint64_t got = 0;
	int ret = gm_release(b->mem, gpa, len, &got);

	*bytes += got;
	if (ret == -EFAULT || ret == -EINVAL)
		balloon_refuse(b, len >> BALLOON_PAGE_SHIFT, "outside guest RAM");
	else if (ret < 0)
		log_warn("virtio-balloon: cannot release %llu KiB at 0x%llx: %s",
			 (unsigned long long)(len >> 10), (unsigned long long)gpa, strerror(-ret));
}

/* Sort @n page numbers, release them in runs of consecutive pages. */
static void balloon_release_pfns(struct virtio_balloon *b, unsigned int n)
{
	unsigned int i = 0;

	qsort(b->pfns, n, sizeof(b->pfns[0]), cmp_u32);
	while (i < n) {
		unsigned int j = i + 1;

		while (j < n && b->pfns[j] <= b->pfns[j - 1] + 1ULL) /* duplicates join the run */
			j++;
		balloon_release(b, (uint64_t)b->pfns[i] << BALLOON_PAGE_SHIFT,
				((uint64_t)b->pfns[j - 1] - b->pfns[i] + 1) << BALLOON_PAGE_SHIFT,
				&b->info.released_bytes);
		i = j;
	}
}

/* An inflate buffer: its readable bytes are le32 page numbers, read in batches. */
static void balloon_inflate(struct virtio_balloon *b, const struct vq_chain *c)
{
	uint64_t total = c->out_len / sizeof(uint32_t), done = 0;

	if (total > BALLOON_MAX_PFNS) {
		balloon_refuse(b, total - BALLOON_MAX_PFNS,
			       "more page numbers than one buffer may hold");
		total = BALLOON_MAX_PFNS;
	}
	while (done < total) {
		unsigned int n =
		    total - done < BALLOON_BATCH ? (unsigned int)(total - done) : BALLOON_BATCH;

		iov_to_buf(c->iov, c->nout, done * sizeof(uint32_t), b->pfns, n * sizeof(uint32_t));
		for (unsigned int i = 0; i < n; i++)
			b->pfns[i] = le32toh(b->pfns[i]);
		balloon_release_pfns(b, n);
		done += n;
	}
	b->info.inflated_bytes += total << BALLOON_PAGE_SHIFT;
}

static int cmp_run(const void *a, const void *b)
{
	const struct balloon_run *x = a, *y = b;

	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

/* A reporting buffer: each descriptor is a free range of guest RAM. */
static void balloon_report(struct virtio_balloon *b, const struct vq_chain *c)
{
	unsigned int n = 0, i = 0;

	for (unsigned int k = 0; k < c->nout + c->nin; k++) {
		/* vq_pop found it in RAM: only a host address it could not be is refused */
		if (gm_gpa_of(b->mem, c->iov[k].iov_base, c->iov[k].iov_len, &b->runs[n].gpa) < 0)
			continue;
		b->runs[n++].len = c->iov[k].iov_len;
	}
	qsort(b->runs, n, sizeof(b->runs[0]), cmp_run);
	while (i < n) {
		struct balloon_run r = b->runs[i++];

		while (i < n && b->runs[i].gpa == r.gpa + r.len) /* contiguous: one call */
			r.len += b->runs[i++].len;
		balloon_release(b, r.gpa, r.len, &b->info.reported_bytes);
	}
}

/* A statistics buffer: (tag, value) pairs; unknown tags are ignored, as the spec asks. */
static void balloon_stats(struct virtio_balloon *b, const struct vq_chain *c)
{
	uint8_t buf[BALLOON_MAX_STATS * BALLOON_STAT_BYTES];
	uint64_t len = iov_to_buf(c->iov, c->nout, 0, buf, sizeof(buf));

	for (uint64_t off = 0; off + BALLOON_STAT_BYTES <= len; off += BALLOON_STAT_BYTES) {
		uint16_t tag;
		uint64_t val;

		memcpy(&tag, buf + off, sizeof(tag));
		memcpy(&val, buf + off + 2, sizeof(val));
		tag = le16toh(tag);
		if (tag >= BALLOON_NSTATS)
			continue;
		b->info.stat[tag] = le64toh(val);
		b->info.has_stat[tag] = true;
	}
	b->info.stats_updates++;
}

/* Hand the held statistics buffer back: the driver refills it. */
static void balloon_stats_return(struct virtio_balloon *b, unsigned int q)
{
	if (!b->stats_held)
		return;
	b->stats_held = false;
	vq_push(&b->vdev.vqs[q], b->stats_head, 0);
	virtio_used(&b->vdev, q);
}

/* One chain of queue @q whose spec role is @role. */
static void balloon_chain(struct virtio_balloon *b, unsigned int q, int role, struct vq_chain *c)
{
	if (role == BQ_STATS) {
		balloon_stats_return(b, q); /* a second buffer: give the first back */
		balloon_stats(b, c);
		b->stats_held = true;
		b->stats_head = c->head;
		return;
	}
	if (role == BQ_INFLATE) {
		b->info.inflates++;
		balloon_inflate(b, c);
	} else if (role == BQ_DEFLATE) {
		b->info.deflates++;
		b->info.deflated_bytes += (c->out_len / sizeof(uint32_t)) << BALLOON_PAGE_SHIFT;
	} else {
		b->info.reports++;
		balloon_report(b, c);
	}
	vq_push(&b->vdev.vqs[q], c->head, 0);
}

static void balloon_notify(struct virtio_dev *vdev, unsigned int q)
{
	struct virtio_balloon *b = to_balloon(vdev);
	struct vq_chain c = {.iov = b->iov, .cap = BALLOON_MAX_SEGS};
	int role = virtio_balloon_queue_role(vdev->acked, q);
	bool pushed = false;

	if (role < 0)
		return;
	while (virtio_pop(vdev, q, &c) > 0) {
		balloon_chain(b, q, role, &c);
		pushed = role != BQ_STATS;
	}
	if (pushed)
		virtio_used(vdev, q);
}

/* The polling timer fired: ask for fresh statistics. */
static void balloon_event(struct virtio_dev *vdev)
{
	struct virtio_balloon *b = to_balloon(vdev);
	uint64_t ticks;

	if (read(vdev->event_fd, &ticks, sizeof(ticks)) < 0)
		return;
	if (!virtio_is_broken(vdev) && b->stats_held && vdev->vqs[BQ_STATS].active)
		balloon_stats_return(b, BQ_STATS); /* statistics are index 2 when present */
}

static void balloon_config_read(struct virtio_dev *vdev, uint64_t offset, void *data, uint32_t len)
{
	struct virtio_balloon *b = to_balloon(vdev);
	uint32_t cfg[4] = {htole32(b->num_pages), htole32(b->actual), 0, 0};

	virtio_config_bytes(cfg, sizeof(cfg), offset, data, len);
}

/* The driver writes only `actual` (le32 at offset 4). */
static void balloon_config_write(struct virtio_dev *vdev, uint64_t offset, const void *data,
				 uint32_t len)
{
	struct virtio_balloon *b = to_balloon(vdev);
	uint32_t v;

	if (offset != 4 || len != 4)
		return;
	memcpy(&v, data, sizeof(v));
	b->actual = le32toh(v);
}

static void balloon_reset(struct virtio_dev *vdev)
{
	struct virtio_balloon *b = to_balloon(vdev);

	b->actual = 0; /* a new driver starts with an empty balloon */
	b->stats_held = false;
}

static int balloon_arm(struct virtio_balloon *b, uint32_t secs)
{
	struct itimerspec its = {.it_interval = {.tv_sec = secs}, .it_value = {.tv_sec = secs}};

	if (b->vdev.event_fd < 0)
		return 0;
	return timerfd_settime(b->vdev.event_fd, 0, &its, NULL) < 0 ? -errno : 0;
}

static int balloon_state(struct virtio_dev *vdev, struct state_io *io)
{
	struct virtio_balloon *b = to_balloon(vdev);
	uint8_t version = STATE_VERSION;
	uint32_t target = b->num_pages, actual = b->actual, secs = b->cfg.stats_interval_s;
	uint64_t pages = b->mem->total >> BALLOON_PAGE_SHIFT;
	bool held = b->stats_held;
	uint16_t head = b->stats_head;

	state_u8(io, &version);
	if (version != STATE_VERSION && version != 1)
		return -EBADMSG;
	state_u32(io, &target);
	state_u32(io, &actual);
	state_u32(io, &secs);
	/*
	 * The statistics buffer the device holds was popped from the ring the
	 * snapshot saved: unless it is handed back after a restore, the
	 * driver waits for it forever and sends no statistics again.
	 */
	if (version == STATE_VERSION) {
		state_bool(io, &held);
		state_u16(io, &head);
	}
	if (!io->loading || io->err)
		return io->err;
	/* The statistics queue is negotiated: an interval cannot appear or vanish. */
	if (target > pages || (secs == 0) != (b->cfg.stats_interval_s == 0))
		return -EBADMSG;
	b->num_pages = target;
	b->actual = actual;
	b->cfg.stats_interval_s = secs;
	b->stats_held = held && secs && head < BALLOON_QUEUE_SIZE; /* given back at the next tick */
	b->stats_head = head;
	return balloon_arm(b, secs);
}

static void balloon_destroy(struct virtio_dev *vdev)
{
	if (vdev->event_fd >= 0)
		close(vdev->event_fd);
	free(to_balloon(vdev));
}

static const struct virtio_dev_ops virtio_balloon_ops = {
    .name = "virtio-balloon",
    .device_id = VIRTIO_ID_BALLOON,
    .nqueues = BALLOON_QUEUES,
    .queue_max = BALLOON_QUEUE_SIZE,
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .notify = balloon_notify,
    .event = balloon_event,
    .reset = balloon_reset,
    .state = balloon_state,
    .destroy = balloon_destroy,
};

bool virtio_is_balloon(const struct virtio_dev *vdev)
{
	return vdev && vdev->ops == &virtio_balloon_ops;
}

static uint64_t balloon_features(const struct balloon_config *c)
{
	return (c->stats_interval_s ? 1ULL << BALLOON_F_STATS_VQ : 0) |
	       (c->deflate_on_oom ? 1ULL << BALLOON_F_DEFLATE_ON_OOM : 0) |
	       (c->reporting ? 1ULL << BALLOON_F_REPORTING : 0);
}

struct virtio_dev *virtio_balloon_create(const struct balloon_config *c,
					 const struct guest_mem *mem)
{
	struct virtio_balloon *b = calloc(1, sizeof(*b));

	if (!b) {
		log_error("virtio-balloon: out of memory");
		return NULL;
	}
	b->mem = mem;
	b->cfg = *c;
	b->vdev = (struct virtio_dev){
	    .ops = &virtio_balloon_ops, .id = "balloon0", .features = balloon_features(c)};
	b->vdev.event_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (b->vdev.event_fd < 0 || balloon_arm(b, c->stats_interval_s) < 0) {
		log_error("virtio-balloon: cannot create its statistics timer: %s",
			  strerror(errno));
		balloon_destroy(&b->vdev);
		return NULL;
	}
	if (virtio_balloon_set_target(&b->vdev, c->amount_mib) < 0) {
		log_error("virtio-balloon: %u MiB is more than the guest's memory", c->amount_mib);
		balloon_destroy(&b->vdev);
		return NULL;
	}
	return &b->vdev;
}

int virtio_balloon_set_target(struct virtio_dev *vdev, uint32_t mib)
{
	struct virtio_balloon *b;

	if (!virtio_is_balloon(vdev))
		return -EINVAL;
	b = to_balloon(vdev);
	if (((uint64_t)mib << 20) > b->mem->total)
		return -ERANGE;
	if (!vdev->transport) { /* not yet on its transport: nobody else sees it */
		b->num_pages = mib << (20 - BALLOON_PAGE_SHIFT);
		return 0;
	}
	virtio_lock(vdev);
	b->num_pages = mib << (20 - BALLOON_PAGE_SHIFT);
	b->cfg.amount_mib = mib;
	virtio_config_changed(vdev);
	virtio_unlock(vdev);
	return 0;
}

int virtio_balloon_set_stats_interval(struct virtio_dev *vdev, uint32_t secs)
{
	struct virtio_balloon *b;
	int ret;

	if (!virtio_is_balloon(vdev))
		return -EINVAL;
	b = to_balloon(vdev);
	virtio_lock(vdev);
	ret = (secs == 0) != (b->cfg.stats_interval_s == 0) ? -EINVAL : balloon_arm(b, secs);
	if (ret == 0)
		b->cfg.stats_interval_s = secs;
	virtio_unlock(vdev);
	return ret;
}

int virtio_balloon_info(struct virtio_dev *vdev, struct virtio_balloon_info *out)
{
	struct virtio_balloon *b;
	uint64_t pages;

	if (!virtio_is_balloon(vdev))
		return -EINVAL;
	b = to_balloon(vdev);
	pages = b->mem->total >> BALLOON_PAGE_SHIFT;
	virtio_lock(vdev);
	*out = b->info;
	out->target_pages = b->num_pages;
	out->actual_pages = b->actual > pages ? (uint32_t)pages : b->actual; /* the guest's word */
	out->stats_interval_s = b->cfg.stats_interval_s;
	virtio_unlock(vdev);
	return 0;
}
