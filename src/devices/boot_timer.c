/*
 * The boot timer (boot_timer.h). No state worth saving: a restored guest
 * that signals again is timed from the restoring process's start.
 */
#include "devices/boot_timer.h"

#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct boot_timer {
	struct device dev;
	uint64_t start_ns;     /* fixed at creation */
	uint64_t signalled_ns; /* the latest signal, 0 for none; atomic: any vCPU writes it */
};

static struct boot_timer *to_boot_timer(struct device *dev)
{
	return container_of(dev, struct boot_timer, dev);
}

static uint64_t process_cpu_us(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0)
		return 0;
	return ts_to_ns(&ts) / 1000;
}

static void boot_timer_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	(void)dev;
	(void)offset;
	memset(data, 0, len);
}

static void boot_timer_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	struct boot_timer *t = to_boot_timer(dev);
	uint64_t now = now_ns(), us;

	/* Firecracker's contract: one byte, at offset 0, the magic value. */
	if (len != 1 || offset != 0 || *(const uint8_t *)data != BOOT_TIMER_MAGIC)
		return;
	__atomic_store_n(&t->signalled_ns, now, __ATOMIC_RELEASE);
	us = (now - t->start_ns) / 1000;
	log_guest_info(dev,
		       "Guest-boot-time = %llu us (%llu ms) since start, %llu CPU us "
		       "(monotonic %llu ns)",
		       (unsigned long long)us, (unsigned long long)(us / 1000),
		       (unsigned long long)process_cpu_us(), (unsigned long long)now);
}

static int boot_timer_state(struct device *dev, struct state_io *io)
{
	(void)dev;
	(void)io;
	return 0;
}

static void boot_timer_destroy(struct device *dev)
{
	free(to_boot_timer(dev));
}

static const struct device_ops boot_timer_ops = {
    .name = "boot-timer",
    .read = boot_timer_read,
    .write = boot_timer_write,
    .state = boot_timer_state,
    .destroy = boot_timer_destroy,
};

struct device *boot_timer_create(struct dev_host *host, uint64_t start_ns)
{
	struct boot_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->dev.ops = &boot_timer_ops;
	t->dev.host = host;
	t->dev.id = "boot-timer";
	t->start_ns = start_ns;
	return &t->dev;
}

int boot_timer_elapsed_ns(struct device *dev, uint64_t *ns)
{
	struct boot_timer *t = to_boot_timer(dev);
	uint64_t at = __atomic_load_n(&t->signalled_ns, __ATOMIC_ACQUIRE);

	if (!at)
		return -ENOENT;
	*ns = at - t->start_ns;
	return 0;
}
