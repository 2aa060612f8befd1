/*
 * A virtio device's rate limiter (util/token_bucket.h) with the timer that
 * ends its throttling: a device asks throttle_admit before it serves a
 * request; a refused request stays in its queue (or buffer), the device
 * stops serving that direction, and a timerfd armed for the exact moment
 * the buckets will hold the request's cost wakes it. The timerfd is
 * watched by the device's thread (inside the device's event_fd), so
 * parking the transport's thread also parks a throttled device: a timer
 * that expires meanwhile stays readable until resume.
 *
 * Everything runs under the transport lock (the device's operations, or
 * virtio_lock around throttle_set from the API thread).
 */
#ifndef BANYAN_VIRTIO_THROTTLE_H
#define BANYAN_VIRTIO_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/token_bucket.h"
#include "vmm/device.h"

struct virtio_dev;

struct throttle {
	struct rate_limit rl;
	bool enabled;		 /* a bucket has a size */
	bool throttled;		 /* a request waits for the timer */
	int timer_fd;		 /* timerfd, CLOCK_MONOTONIC, non-blocking */
	uint64_t since_ns;	 /* when the throttling began */
	struct virtio_dev *vdev; /* whose stats count it */
	unsigned int dir;	 /* DEV_DIR_IN or DEV_DIR_OUT, for the stats */
};

/*
 * throttle_init - configure @th from @c (checked by tb_config_check) and
 * create its timer; @vdev and @dir: whose stats count it, and where. Returns 0
 * or -errno; throttle_destroy is safe after a failure.
 */
int throttle_init(struct throttle *th, const struct rl_config *c, struct virtio_dev *vdev,
		  unsigned int dir) __attribute__((warn_unused_result));

/* throttle_destroy - close the timer. */
void throttle_destroy(struct throttle *th);

/*
 * throttle_admit - may a request of @bytes go now? True (and its cost
 * taken) when no limiter is set or the buckets hold it; false when the
 * device is throttled already or becomes throttled now (the timer armed,
 * the stats counted): the caller leaves the request where it is and
 * serves this direction again after throttle_expired.
 */
bool throttle_admit(struct throttle *th, uint64_t bytes);

/*
 * throttle_expired - the timer fired (read once, non-blocking): the
 * device is no longer throttled and must serve the waiting requests.
 * False when it did not fire (or nothing was throttled).
 */
bool throttle_expired(struct throttle *th);

/*
 * throttle_set - a new configuration, at once (PATCH after boot): both
 * buckets start full again. A throttled device is woken now to try again.
 */
void throttle_set(struct throttle *th, const struct rl_config *c);

#endif
