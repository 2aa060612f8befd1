/* The virtio-mmio transport (modern, version 2): registers, queues, interrupts. */
#include "virtio/mmio.h"
#include "util/efd.h"

#include "util/log.h"
#include "util/thread.h"
#include "vmm/state.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define STATE_VERSION 1
#define TAG_STOP      0xffff
#define TAG_EVENT     0xfffe
#define TAG_PARK      0xfffd

struct virtio_transport {
	struct device dev;
	struct virtio_dev *vdev;
	const struct guest_mem *mem;
	uint64_t base;
	uint32_t gsi;
	char name[40]; /* "virtio-blk vda" */

	pthread_mutex_t lock; /* protects every field below, vqs and the device */
	uint32_t status;
	uint32_t dev_feat_sel;
	uint32_t drv_feat_sel;
	uint64_t drv_features; /* as the driver writes them */
	uint32_t queue_sel;
	uint32_t config_gen;
	bool broken; /* NEEDS_RESET: queues are ignored */
	struct virtqueue vqs[VIRTIO_MAX_QUEUES];
	atomic_uint isr; /* InterruptStatus: set by the device thread, acked by vCPUs */

	int kick_fd[VIRTIO_MAX_QUEUES]; /* queue notifications (ioeventfd when registered) */
	bool kick_registered[VIRTIO_MAX_QUEUES];
	int irq_fd; /* irqfd, or -1: interrupts through set_irq */
	int stop_fd;
	int park_fd; /* eventfd: a pause was asked, the thread parks */
	int epfd;
	pthread_t thread;
	bool thread_started;

	/* Pause (also under lock): the thread parks in mmio_park while pause_req. */
	pthread_cond_t park_cond; /* parked, pause_req, stopping or thread_done changed */
	atomic_bool pause_req;	  /* pause asked and no resume since (also read unlocked) */
	bool parked;		  /* the thread waits in mmio_park */
	bool stopping;		  /* destroy: a parked thread leaves */
	bool thread_done;	  /* the thread left its loop (for good) */
};

static uint64_t transport_features(const struct virtio_transport *t)
{
	return t->vdev->features | (1ULL << VIRTIO_F_VERSION_1) |
	       (1ULL << VIRTIO_F_RING_INDIRECT_DESC) | (1ULL << VIRTIO_F_RING_EVENT_IDX);
}

static void mmio_interrupt(struct virtio_transport *t, unsigned int bit)
{
	int ret;

	atomic_fetch_or(&t->isr, bit);
	if (t->irq_fd >= 0) {
		ret = efd_signal(t->irq_fd);
		if (ret < 0)
			log_guest_warn(t, "%s: cannot signal its interrupt: %s", t->name,
				       strerror(-ret));
		return;
	}
	/* An edge on a line the DSDT declares edge-triggered. */
	t->dev.host->set_irq(t->dev.host, t->gsi, true);
	t->dev.host->set_irq(t->dev.host, t->gsi, false);
}

/* --- services for the devices (called with t->lock held) --- */

void virtio_fail(struct virtio_dev *vdev, const char *why)
{
	struct virtio_transport *t = vdev->transport;

	if (t->broken)
		return;
	t->broken = true;
	log_guest_warn(t, "%s: %s; device needs reset", t->name, why);
	t->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		mmio_interrupt(t, VIRTIO_INT_CONFIG);
}

bool virtio_is_broken(const struct virtio_dev *vdev)
{
	return vdev->transport->broken;
}

int virtio_pop(struct virtio_dev *vdev, unsigned int q, struct vq_chain *c)
{
	struct virtio_transport *t = vdev->transport;
	struct virtqueue *vq = &t->vqs[q];
	enum vq_error err;
	char why[96];
	int ret;

	if (t->broken)
		return 0;
	for (;;) {
		ret = vq_pop(vq, c, &err);
		if (ret < 0) {
			snprintf(why, sizeof(why), "queue %u: %s", q, vq_error_str(err));
			virtio_fail(vdev, why);
			return -EINVAL;
		}
		if (ret > 0 || !vq_enable_notify(vq))
			return ret;
	}
}

void virtio_used(struct virtio_dev *vdev, unsigned int q)
{
	struct virtio_transport *t = vdev->transport;

	if (vq_should_notify(&t->vqs[q]))
		mmio_interrupt(t, VIRTIO_INT_USED);
}

struct dev_stats *virtio_stats(struct virtio_dev *vdev)
{
	return &vdev->transport->dev.stats;
}

void virtio_lock(struct virtio_dev *vdev)
{
	pthread_mutex_lock(&vdev->transport->lock);
}

void virtio_unlock(struct virtio_dev *vdev)
{
	pthread_mutex_unlock(&vdev->transport->lock);
}

void virtio_config_changed(struct virtio_dev *vdev)
{
	struct virtio_transport *t = vdev->transport;

	t->config_gen++;
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		mmio_interrupt(t, VIRTIO_INT_CONFIG);
}

void virtio_config_bytes(const void *cfg, uint64_t size, uint64_t offset, void *data, uint32_t len)
{
	memset(data, 0, len);
	if (offset < size)
		memcpy(data, (const uint8_t *)cfg + offset,
		       size - offset < len ? size - offset : len);
}

/* --- registers --- */

static struct virtqueue *selected_vq(struct virtio_transport *t)
{
	return t->queue_sel < t->vdev->ops->nqueues ? &t->vqs[t->queue_sel] : NULL;
}

static uint32_t mmio_read_reg(struct virtio_transport *t, uint64_t off)
{
	struct virtqueue *vq = selected_vq(t);
	uint64_t feat = transport_features(t);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->vdev->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return t->dev_feat_sel == 0   ? (uint32_t)feat
		       : t->dev_feat_sel == 1 ? (uint32_t)(feat >> 32)
					      : 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return vq ? t->vdev->ops->queue_max : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return vq ? vq->active : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return atomic_load(&t->isr);
	case VIRTIO_MMIO_STATUS:
		return t->status;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
		return 0xffffffff; /* no shared memory regions */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return t->config_gen;
	default:
		return 0;
	}
}

static void set_lo(uint64_t *v, uint32_t lo)
{
	*v = (*v & 0xffffffff00000000ULL) | lo;
}

static void set_hi(uint64_t *v, uint32_t hi)
{
	*v = (*v & 0xffffffffULL) | ((uint64_t)hi << 32);
}

/* Queue registers: only for a valid selector and while the queue is not ready. */
static void mmio_write_queue(struct virtio_transport *t, uint64_t off, uint32_t v)
{
	struct virtqueue *vq = selected_vq(t);

	if (!vq || vq->active)
		return;
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		vq->size = v <= t->vdev->ops->queue_max ? (uint16_t)v : 0;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		set_lo(&vq->desc_gpa, v);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_hi(&vq->desc_gpa, v);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
		set_lo(&vq->avail_gpa, v);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		set_hi(&vq->avail_gpa, v);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
		set_lo(&vq->used_gpa, v);
		break;
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		set_hi(&vq->used_gpa, v);
		break;
	}
}

static void mmio_queue_ready(struct virtio_transport *t, uint32_t v)
{
	struct virtqueue *vq = selected_vq(t);
	char why[96];
	int ret;

	if (!vq)
		return;
	if (!v) {
		vq->active = false;
		return;
	}
	if (vq->active)
		return;
	vq->event_idx = t->vdev->acked & (1ULL << VIRTIO_F_RING_EVENT_IDX);
	vq->indirect = t->vdev->acked & (1ULL << VIRTIO_F_RING_INDIRECT_DESC);
	ret = vq_activate(vq, t->mem);
	if (ret < 0) {
		snprintf(why, sizeof(why), "queue %u: %s", t->queue_sel,
			 ret == -EFAULT ? "rings outside guest memory" : "bad size or alignment");
		virtio_fail(t->vdev, why);
	}
}

static void mmio_reset(struct virtio_transport *t)
{
	unsigned int i;

	t->vdev->ops->reset(t->vdev);
	for (i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vq_reset(&t->vqs[i]);
	t->status = 0;
	t->dev_feat_sel = t->drv_feat_sel = t->queue_sel = 0;
	t->drv_features = 0;
	t->vdev->acked = 0;
	t->broken = false;
	atomic_store(&t->isr, 0);
}

/* FEATURES_OK holds only for a subset of what we offer, VERSION_1 included. */
static bool features_acceptable(struct virtio_transport *t)
{
	uint64_t f = t->drv_features;

	return !(f & ~transport_features(t)) && (f & (1ULL << VIRTIO_F_VERSION_1));
}

static void mmio_kick_all(struct virtio_transport *t)
{
	for (unsigned int q = 0; q < t->vdev->ops->nqueues; q++)
		(void)efd_signal(t->kick_fd[q]);
}

static void mmio_write_status(struct virtio_transport *t, uint32_t v)
{
	uint32_t old = t->status;

	if (v == 0) {
		mmio_reset(t);
		return;
	}
	v &= 0xff & ~VIRTIO_STATUS_NEEDS_RESET;
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		if (features_acceptable(t))
			t->vdev->acked = t->drv_features;
		else
			v &= ~VIRTIO_STATUS_FEATURES_OK;
	}
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
	    !(v & VIRTIO_STATUS_FEATURES_OK))
		v &= ~VIRTIO_STATUS_DRIVER_OK; /* no DRIVER_OK without negotiated features */
	t->status = v | (old & VIRTIO_STATUS_NEEDS_RESET);
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK))
		mmio_kick_all(t); /* buffers may be waiting already */
}

static void mmio_write_reg(struct virtio_transport *t, uint64_t off, uint32_t v)
{
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->dev_feat_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (!(t->status & VIRTIO_STATUS_FEATURES_OK) && t->drv_feat_sel < 2) {
			if (t->drv_feat_sel)
				set_hi(&t->drv_features, v);
			else
				set_lo(&t->drv_features, v);
		}
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->drv_feat_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		mmio_queue_ready(t, v);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* Reached only when no ioeventfd took the write. */
		if (v < t->vdev->ops->nqueues)
			(void)efd_signal(t->kick_fd[v]);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		atomic_fetch_and(&t->isr, ~v);
		break;
	case VIRTIO_MMIO_STATUS:
		mmio_write_status(t, v);
		break;
	default:
		mmio_write_queue(t, off, v);
		break;
	}
}

static struct virtio_transport *to_transport(struct device *dev)
{
	return container_of(dev, struct virtio_transport, dev);
}

static void mmio_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	struct virtio_transport *t = to_transport(dev);
	uint32_t v;

	pthread_mutex_lock(&t->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		t->vdev->ops->config_read(t->vdev, offset - VIRTIO_MMIO_CONFIG, data, len);
	} else if (len == 4 && !(offset & 3)) {
		v = mmio_read_reg(t, offset);
		memcpy(data, &v, 4);
	} else {
		memset(data, 0, len); /* registers are 32-bit only */
	}
	pthread_mutex_unlock(&t->lock);
}

static void mmio_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	struct virtio_transport *t = to_transport(dev);
	uint32_t v;

	pthread_mutex_lock(&t->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		if (t->vdev->ops->config_write)
			t->vdev->ops->config_write(t->vdev, offset - VIRTIO_MMIO_CONFIG, data, len);
	} else if (len == 4 && !(offset & 3)) {
		memcpy(&v, data, 4);
		mmio_write_reg(t, offset, v);
	}
	pthread_mutex_unlock(&t->lock);
}

/* --- state --- */

static void vq_state(struct state_io *io, struct virtqueue *vq)
{
	state_u16(io, &vq->size);
	state_u64(io, &vq->desc_gpa);
	state_u64(io, &vq->avail_gpa);
	state_u64(io, &vq->used_gpa);
	state_bool(io, &vq->active);
	state_u16(io, &vq->last_avail);
	state_u16(io, &vq->used_idx);
	state_u16(io, &vq->signalled_used);
	state_bool(io, &vq->signalled_valid);
}

/*
 * After loading: re-resolve the rings of the queues that were live. What
 * the registers check is checked again: negotiated features are ones
 * offered (as at FEATURES_OK), a queue size is never above the device's
 * maximum (as a QueueNum write; a queue made ready later keeps it).
 */
static int mmio_state_loaded(struct virtio_transport *t)
{
	if (t->vdev->acked & ~transport_features(t))
		return -EBADMSG;
	for (unsigned int q = 0; q < t->vdev->ops->nqueues; q++) {
		struct virtqueue *vq = &t->vqs[q];

		vq->event_idx = t->vdev->acked & (1ULL << VIRTIO_F_RING_EVENT_IDX);
		vq->indirect = t->vdev->acked & (1ULL << VIRTIO_F_RING_INDIRECT_DESC);
		if (vq->size > t->vdev->ops->queue_max)
			return -EBADMSG;
		if (vq->active && vq_activate(vq, t->mem) < 0)
			return -EBADMSG;
	}
	return 0;
}

/*
 * After loading: buffers the driver queued before the snapshot are served
 * once the device runs (a kick still waiting in the saved VM's eventfd was
 * not saved; the guest's avail ring was). An interrupt the saved VM had
 * raised and the driver not yet acknowledged is raised again: one in
 * flight through the irqfd when the interrupt controllers were saved would
 * be lost, and a spurious one costs the driver a status read.
 */
static void mmio_kick_loaded(struct virtio_transport *t)
{
	for (unsigned int q = 0; q < t->vdev->ops->nqueues; q++)
		if (t->vqs[q].active && efd_signal(t->kick_fd[q]) < 0)
			log_warn("%s: cannot kick queue %u after restore", t->name, q);
	if (atomic_load(&t->isr))
		mmio_interrupt(t, 0);
}

static int mmio_state(struct device *dev, struct state_io *io)
{
	struct virtio_transport *t = to_transport(dev);
	uint8_t version = STATE_VERSION;
	uint32_t isr = atomic_load(&t->isr);
	uint8_t nq = (uint8_t)t->vdev->ops->nqueues;
	int ret;

	/*
	 * Saving expects a paused device (vm_pause): kicks that wait in their
	 * eventfds stay there, served after resume by this VM and after
	 * mmio_kick_loaded by a restored one.
	 */
	pthread_mutex_lock(&t->lock);
	state_u8(io, &version);
	state_u8(io, &nq);
	/*
	 * Fewer queues than the device has now: saved before it grew one (a
	 * virtio-net without its control queue). The queues beyond are reset;
	 * the device's own state refuses features that need them.
	 */
	if (version != STATE_VERSION || !nq || nq > t->vdev->ops->nqueues)
		io->err = io->err ?: -EBADMSG;
	state_u32(io, &t->status);
	state_u32(io, &t->dev_feat_sel);
	state_u32(io, &t->drv_feat_sel);
	state_u64(io, &t->drv_features);
	state_u64(io, &t->vdev->acked);
	state_u32(io, &t->queue_sel);
	state_u32(io, &t->config_gen);
	state_bool(io, &t->broken);
	state_u32(io, &isr);
	for (unsigned int q = 0; q < nq && !io->err; q++)
		vq_state(io, &t->vqs[q]);
	for (unsigned int q = nq; io->loading && !io->err && q < t->vdev->ops->nqueues; q++)
		vq_reset(&t->vqs[q]);
	ret = io->err ? io->err : t->vdev->ops->state(t->vdev, io);
	if (ret == 0 && io->loading) {
		atomic_store(&t->isr, isr);
		ret = mmio_state_loaded(t);
		if (ret == 0 && (t->status & VIRTIO_STATUS_DRIVER_OK))
			mmio_kick_loaded(t);
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* The device's own answers to a restore and to a snapshot's files, under the lock. */
static int mmio_clone(struct device *dev, const struct dev_clone *c)
{
	struct virtio_transport *t = to_transport(dev);
	int ret;

	if (!t->vdev->ops->clone)
		return 0;
	pthread_mutex_lock(&t->lock);
	ret = t->vdev->ops->clone(t->vdev, c);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

static int mmio_save_files(struct device *dev, const char *dir, char *err, size_t errlen)
{
	struct virtio_transport *t = to_transport(dev);
	int ret;

	if (!t->vdev->ops->save_files)
		return 0;
	pthread_mutex_lock(&t->lock);
	ret = t->vdev->ops->save_files(t->vdev, dir, err, errlen);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* --- the device thread --- */

static void mmio_dispatch(struct virtio_transport *t, uint32_t tag)
{
	if (tag == TAG_EVENT) {
		pthread_mutex_lock(&t->lock);
		t->vdev->ops->event(t->vdev);
		pthread_mutex_unlock(&t->lock);
		return;
	}
	if (efd_drain(t->kick_fd[tag]) == 0)
		return; /* spurious: nothing to do */
	pthread_mutex_lock(&t->lock);
	if ((t->status & VIRTIO_STATUS_DRIVER_OK) && !t->broken && t->vqs[tag].active)
		t->vdev->ops->notify(t->vdev, tag);
	pthread_mutex_unlock(&t->lock);
}

/*
 * The pause point, between two operations (lock not held on entry): when
 * a pause is asked, let the device finish its in-flight I/O, say so, and
 * wait for resume. What arrives meanwhile waits in the (level-triggered)
 * fds. On the way out every live queue is kicked once: a device that
 * stopped taking requests until completions came (blk out of slots) has
 * had them drained here, and no completion event will wake it now.
 * False when the transport is being destroyed: the thread leaves.
 */
static bool mmio_park(struct virtio_transport *t)
{
	bool stopping;

	(void)efd_drain(t->park_fd); /* not signalled: look anyway */
	pthread_mutex_lock(&t->lock);
	if (t->pause_req && !t->stopping) {
		if (t->vdev->ops->drain)
			t->vdev->ops->drain(t->vdev);
		t->parked = true;
		pthread_cond_broadcast(&t->park_cond);
		while (t->pause_req && !t->stopping)
			pthread_cond_wait(&t->park_cond, &t->lock);
		t->parked = false;
		if ((t->status & VIRTIO_STATUS_DRIVER_OK) && !t->stopping)
			mmio_kick_all(t);
	}
	stopping = t->stopping;
	pthread_mutex_unlock(&t->lock);
	return !stopping;
}

/* One batch of events; false when the thread must leave. */
static bool mmio_serve(struct virtio_transport *t, const struct epoll_event *ev, int n)
{
	for (int i = 0; i < n; i++) {
		uint32_t tag = ev[i].data.u32;

		if (tag == TAG_STOP)
			return false;
		/* A pause asked mid-batch parks before the next event, not after the batch. */
		if ((tag == TAG_PARK || atomic_load(&t->pause_req)) && !mmio_park(t))
			return false;
		if (tag != TAG_PARK)
			mmio_dispatch(t, tag);
	}
	return true;
}

static void *mmio_thread(void *arg)
{
	struct virtio_transport *t = arg;
	struct epoll_event ev[VIRTIO_MAX_QUEUES + 3];
	char name[16];
	int n;

	/* "virtio-blk" and the id: the role comes from the type (security/seccomp.h). */
	snprintf(name, sizeof(name), "%s%s", t->vdev->ops->name, t->vdev->id ? t->vdev->id : "");
	thread_enter(name);
	for (;;) {
		n = epoll_wait(t->epfd, ev, VIRTIO_MAX_QUEUES + 3, -1);
		if (n < 0 && errno != EINTR) {
			log_error("%s: epoll_wait: %s", t->name, strerror(errno));
			break;
		}
		if (!mmio_serve(t, ev, n))
			break;
	}
	pthread_mutex_lock(&t->lock);
	t->thread_done = true; /* a pause must not wait for it any more */
	pthread_cond_broadcast(&t->park_cond);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* The contract's pause: returns once the thread is parked (or gone). */
static void mmio_pause(struct device *dev)
{
	struct virtio_transport *t = to_transport(dev);

	pthread_mutex_lock(&t->lock);
	t->pause_req = true;
	if (t->thread_started)
		(void)efd_signal(t->park_fd);
	while (t->thread_started && !t->parked && !t->thread_done)
		pthread_cond_wait(&t->park_cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
}

static void mmio_resume(struct device *dev)
{
	struct virtio_transport *t = to_transport(dev);

	pthread_mutex_lock(&t->lock);
	t->pause_req = false;
	pthread_cond_broadcast(&t->park_cond);
	pthread_mutex_unlock(&t->lock);
}

static int epoll_watch(int epfd, int fd, uint32_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int mmio_setup_fds(struct virtio_transport *t)
{
	struct dev_host *host = t->dev.host;
	int ret = 0;

	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->stop_fd = efd_create();
	t->park_fd = efd_create();
	if (t->epfd < 0 || t->stop_fd < 0 || t->park_fd < 0)
		return -errno;
	ret = epoll_watch(t->epfd, t->stop_fd, TAG_STOP);
	if (ret == 0)
		ret = epoll_watch(t->epfd, t->park_fd, TAG_PARK);
	if (ret == 0 && t->vdev->event_fd >= 0)
		ret = epoll_watch(t->epfd, t->vdev->event_fd, TAG_EVENT);
	for (unsigned int q = 0; ret == 0 && q < t->vdev->ops->nqueues; q++) {
		t->kick_fd[q] = efd_create();
		if (t->kick_fd[q] < 0)
			return -errno;
		ret = epoll_watch(t->epfd, t->kick_fd[q], q);
		if (ret == 0 && host->ioeventfd)
			t->kick_registered[q] =
			    host->ioeventfd(host, t->base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, q,
					    t->kick_fd[q], true) == 0;
	}
	if (ret == 0 && host->irqfd) {
		t->irq_fd = efd_create();
		if (t->irq_fd >= 0 && host->irqfd(host, t->gsi, t->irq_fd, -1, true) < 0) {
			close(t->irq_fd);
			t->irq_fd = -1;
		}
	}
	return ret;
}

static void mmio_destroy(struct device *dev)
{
	struct virtio_transport *t = to_transport(dev);
	struct dev_host *host = t->dev.host;

	if (t->thread_started) {
		pthread_mutex_lock(&t->lock);
		t->stopping = true; /* a parked thread leaves its pause point */
		pthread_cond_broadcast(&t->park_cond);
		pthread_mutex_unlock(&t->lock);
		(void)efd_signal(t->stop_fd);
		pthread_join(t->thread, NULL);
	}
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		if (t->kick_registered[q])
			host->ioeventfd(host, t->base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, q,
					t->kick_fd[q], false);
		if (t->kick_fd[q] >= 0)
			close(t->kick_fd[q]);
	}
	if (t->irq_fd >= 0) {
		host->irqfd(host, t->gsi, t->irq_fd, -1, false);
		close(t->irq_fd);
	}
	if (t->stop_fd >= 0)
		close(t->stop_fd);
	if (t->park_fd >= 0)
		close(t->park_fd);
	if (t->epfd >= 0)
		close(t->epfd);
	t->vdev->ops->destroy(t->vdev);
	pthread_cond_destroy(&t->park_cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static const struct device_ops virtio_mmio_ops = {
    .name = "virtio-mmio",
    .read = mmio_read,
    .write = mmio_write,
    .state = mmio_state,
    .pause = mmio_pause,
    .resume = mmio_resume,
    .clone = mmio_clone,
    .save_files = mmio_save_files,
    .destroy = mmio_destroy,
};

struct virtio_dev *virtio_mmio_vdev(struct device *dev)
{
	return dev && dev->ops == &virtio_mmio_ops ? to_transport(dev)->vdev : NULL;
}

uint32_t virtio_mmio_gsi(struct device *dev)
{
	return to_transport(dev)->gsi;
}

struct device *virtio_mmio_create(struct dev_host *host, const struct guest_mem *mem,
				  struct virtio_dev *vdev, uint64_t base, uint32_t gsi)
{
	struct virtio_transport *t;
	int ret;

	if (!vdev)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t) {
		vdev->ops->destroy(vdev);
		return NULL;
	}
	t->dev = (struct device){.ops = &virtio_mmio_ops, .host = host, .id = vdev->id};
	t->vdev = vdev;
	t->mem = mem;
	t->base = base;
	t->gsi = gsi;
	t->irq_fd = t->stop_fd = t->park_fd = t->epfd = -1;
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		t->kick_fd[q] = -1;
	snprintf(t->name, sizeof(t->name), "%s %s", vdev->ops->name, vdev->id);
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->park_cond, NULL);
	vdev->vqs = t->vqs;
	vdev->transport = t;
	ret = mmio_setup_fds(t);
	if (ret == 0)
		ret = -pthread_create(&t->thread, NULL, mmio_thread, t);
	t->thread_started = ret == 0;
	if (ret < 0) {
		log_error("%s: cannot set up the transport: %s", t->name, strerror(-ret));
		mmio_destroy(&t->dev);
		return NULL;
	}
	return &t->dev;
}
