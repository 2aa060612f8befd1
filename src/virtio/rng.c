/* virtio-rng (virtio 1.2, 5.4): one queue of writable buffers, filled by getrandom(). */
#include "virtio/virtio.h"

#include "util/log.h"
#include "virtio/throttle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define RNG_QUEUE_SIZE 64
#define RNG_MAX_SEGS   16
#define RNG_MAX_BYTES  (64 * 1024) /* per request: a guest cannot make us spin */

struct virtio_rng {
	struct virtio_dev vdev;
	struct iovec iov[RNG_MAX_SEGS];
	struct throttle limit; /* bytes asked for; its timer is vdev.event_fd */
};

/* Fill the writable buffers; returns the bytes written. */
static uint32_t rng_fill(const struct vq_chain *c)
{
	uint64_t done = 0;

	for (unsigned int i = c->nout; i < c->nout + c->nin && done < RNG_MAX_BYTES; i++) {
		size_t want = c->iov[i].iov_len, got = 0;

		if (want > RNG_MAX_BYTES - done)
			want = RNG_MAX_BYTES - done;
		while (got < want) {
			ssize_t n = getrandom((char *)c->iov[i].iov_base + got, want - got, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return (uint32_t)(done + got);
			got += (size_t)n;
		}
		done += got;
	}
	return (uint32_t)done;
}

static void rng_notify(struct virtio_dev *vdev, unsigned int q)
{
	struct virtio_rng *rng = container_of(vdev, struct virtio_rng, vdev);
	struct vq_chain c = {.iov = rng->iov, .cap = RNG_MAX_SEGS};
	bool pushed = false;

	while (!rng->limit.throttled && virtio_pop(vdev, q, &c) > 0) {
		uint32_t n;

		if (!throttle_admit(&rng->limit,
				    c.in_len < RNG_MAX_BYTES ? c.in_len : RNG_MAX_BYTES)) {
			vq_unpop(&vdev->vqs[q]);
			break;
		}
		n = rng_fill(&c);

		vq_push(&vdev->vqs[q], c.head, n);
		dev_stats_in(virtio_stats(vdev), n);
		atomic_fetch_add_explicit(&virtio_stats(vdev)->requests, 1, memory_order_relaxed);
		pushed = true;
	}
	if (pushed)
		virtio_used(vdev, q);
}

/* The limiter's timer fired: serve what waited. */
static void rng_event(struct virtio_dev *vdev)
{
	struct virtio_rng *rng = container_of(vdev, struct virtio_rng, vdev);

	if (throttle_expired(&rng->limit) && !virtio_is_broken(vdev) && vdev->vqs[0].active)
		rng_notify(vdev, 0);
}

static struct throttle *rng_throttle(struct virtio_dev *vdev, unsigned int which)
{
	return which == 0 ? &container_of(vdev, struct virtio_rng, vdev)->limit : NULL;
}

static void rng_config_read(struct virtio_dev *vdev, uint64_t offset, void *data, uint32_t len)
{
	(void)vdev;
	virtio_config_bytes(NULL, 0, offset, data, len); /* no configuration space */
}

static void rng_reset(struct virtio_dev *vdev)
{
	(void)vdev;
}

static int rng_state(struct virtio_dev *vdev, struct state_io *io)
{
	(void)vdev;
	(void)io;
	return 0; /* stateless beyond its queue */
}

static void rng_destroy(struct virtio_dev *vdev)
{
	struct virtio_rng *rng = container_of(vdev, struct virtio_rng, vdev);

	throttle_destroy(&rng->limit);
	free(rng);
}

static const struct virtio_dev_ops virtio_rng_ops = {
    .name = "virtio-rng",
    .device_id = VIRTIO_ID_RNG,
    .nqueues = 1,
    .queue_max = RNG_QUEUE_SIZE,
    .config_read = rng_config_read,
    .notify = rng_notify,
    .event = rng_event,
    .reset = rng_reset,
    .state = rng_state,
    .throttle = rng_throttle,
    .destroy = rng_destroy,
};

struct virtio_dev *virtio_rng_create(const struct rl_config *limit)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));
	struct rl_config none = {0};
	int ret;

	if (!rng) {
		log_error("virtio-rng: out of memory");
		return NULL;
	}
	rng->vdev = (struct virtio_dev){.ops = &virtio_rng_ops, .id = "rng0", .event_fd = -1};
	ret = throttle_init(&rng->limit, limit ? limit : &none, &rng->vdev, DEV_DIR_IN);
	if (ret < 0) {
		log_error("virtio-rng: cannot create its rate limiter's timer: %s", strerror(-ret));
		rng_destroy(&rng->vdev);
		return NULL;
	}
	rng->vdev.event_fd = rng->limit.timer_fd;
	return &rng->vdev;
}
