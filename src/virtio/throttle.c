/* A rate limiter and its timer, for the virtio devices. */
#include "virtio/throttle.h"

#include "util/clock.h"
#include "virtio/virtio.h"

#include <errno.h>
#include <sys/timerfd.h>
#include <unistd.h>

int throttle_init(struct throttle *th, const struct rl_config *c, struct virtio_dev *vdev,
		  unsigned int dir)
{
	*th = (struct throttle){.vdev = vdev, .dir = dir};
	th->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (th->timer_fd < 0)
		return -errno;
	throttle_set(th, c);
	return 0;
}

void throttle_destroy(struct throttle *th)
{
	if (th->timer_fd >= 0)
		close(th->timer_fd);
	th->timer_fd = -1;
}

/* Fire at @at (CLOCK_MONOTONIC ns; 0 disarms). */
static void throttle_arm(struct throttle *th, uint64_t at)
{
	struct itimerspec its = {
	    .it_value = {.tv_sec = (time_t)(at / 1000000000ULL),
			 .tv_nsec = (long)(at % 1000000000ULL)},
	};

	(void)timerfd_settime(th->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

bool throttle_admit(struct throttle *th, uint64_t bytes)
{
	uint64_t now, wait;

	if (th->throttled)
		return false;
	if (!th->enabled)
		return true;
	now = now_ns();
	if (rl_consume(&th->rl, bytes, now, &wait))
		return true;
	throttle_arm(th, now + wait);
	th->throttled = true;
	th->since_ns = now;
	atomic_fetch_add_explicit(&virtio_stats(th->vdev)->throttled[th->dir], 1,
				  memory_order_relaxed);
	return false;
}

bool throttle_expired(struct throttle *th)
{
	uint64_t n;

	/* Armed only while throttled: nothing to read (no syscall) otherwise. */
	if (!th->throttled || read(th->timer_fd, &n, sizeof(n)) != sizeof(n))
		return false;
	th->throttled = false;
	atomic_fetch_add_explicit(&virtio_stats(th->vdev)->throttled_ns[th->dir],
				  now_ns() - th->since_ns, memory_order_relaxed);
	return true;
}

void throttle_set(struct throttle *th, const struct rl_config *c)
{
	rl_init(&th->rl, c, now_ns());
	th->enabled = rl_config_enabled(c);
	if (th->throttled)
		throttle_arm(th, 1); /* already past: fires at once */
}

int virtio_set_rate_limit(struct virtio_dev *vdev, unsigned int which, const struct rl_config *c)
{
	struct throttle *th;

	if (!vdev->ops->throttle)
		return -EINVAL;
	virtio_lock(vdev);
	th = vdev->ops->throttle(vdev, which);
	if (th)
		throttle_set(th, c);
	virtio_unlock(vdev);
	return th ? 0 : -EINVAL;
}
