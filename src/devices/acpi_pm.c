/*
 * The hardware-reduced ACPI power registers the FADT points at: sleep
 * control, sleep status and reset. Only \_S5 is offered to the guest, so
 * any write with SLP_EN set means power-off.
 *
 * At offset 8, the FADT's 32-bit PM timer (3.579545 MHz).
 *
 * Accesses wider than a byte are split into byte accesses: a 16-bit write
 * at offset 0 writes sleep control and sleep status, as the FADT's 8-bit
 * register descriptions imply.
 */
#include "devices/legacy.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "vmm/state.h"

#define ACPI_PM_RANGE	  12
#define ACPI_PM_SLEEP_CTL 0
#define ACPI_PM_SLEEP_STS 1
#define ACPI_PM_RESET	  4
#define ACPI_PM_TIMER	  8 /* 32-bit PM timer, read-only */
#define ACPI_PM_TIMER_HZ  3579545ULL

#define ACPI_SLP_EN 0x20 /* sleep control bit 5; SLP_TYP (bits 2-4) is not looked at */

struct acpi_pm {
	struct device dev;
	/*
	 * Serialises guest accesses so two vCPUs writing at once produce one
	 * request each, in order. There is no guest-visible state: sleep
	 * status reads 0 because the VM never wakes from a sleep state.
	 */
	pthread_mutex_t lock;
	uint8_t reset_value; /* from the FADT, fixed at creation */
	/* CLOCK_MONOTONIC when the timer read 0: set at creation, moved by a restore */
	_Atomic uint64_t epoch_ns;
};

/*
 * The PM timer's count: 3.579545 MHz from creation, wrapping at 32 bits
 * (the FADT sets TMR_VAL_EXT). It follows the host's monotonic clock, so
 * it never goes backwards and needs no lock. Snapshots save the time
 * elapsed since the epoch, and a restore moves the epoch back by it, so the
 * count continues where the guest left it (Linux's acpi_pm clocksource must
 * not see it jump back).
 */
static uint32_t acpi_pm_timer(const struct acpi_pm *pm)
{
	uint64_t ns = now_ns() - atomic_load(&pm->epoch_ns);

	/* ns * HZ overflows 64 bits after ~85 minutes: split seconds and the rest. */
	return (uint32_t)((ns / 1000000000ULL) * ACPI_PM_TIMER_HZ +
			  (ns % 1000000000ULL) * ACPI_PM_TIMER_HZ / 1000000000ULL);
}

static struct acpi_pm *to_acpi_pm(struct device *dev)
{
	return container_of(dev, struct acpi_pm, dev);
}

static void acpi_pm_write_reg(struct acpi_pm *pm, uint64_t off, uint8_t v)
{
	struct dev_host *host = pm->dev.host;

	if (off == ACPI_PM_SLEEP_CTL && (v & ACPI_SLP_EN))
		host->request(host, VM_REQUEST_POWEROFF);
	else if (off == ACPI_PM_RESET && v == pm->reset_value)
		host->request(host, VM_REQUEST_REBOOT);
	/* Sleep status is write-1-to-clear, and nothing is ever set. */
}

static void acpi_pm_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	uint8_t timer[4], *out = data;
	uint32_t i, t;

	t = offset + len > ACPI_PM_TIMER ? acpi_pm_timer(to_acpi_pm(dev)) : 0;
	for (i = 0; i < 4; i++)
		timer[i] = (uint8_t)(t >> (8 * i));
	for (i = 0; i < len; i++)
		out[i] = offset + i >= ACPI_PM_TIMER && offset + i < ACPI_PM_RANGE
			     ? timer[offset + i - ACPI_PM_TIMER]
			     : 0;
}

static void acpi_pm_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	struct acpi_pm *pm = to_acpi_pm(dev);
	const uint8_t *in = data;
	uint32_t i;

	pthread_mutex_lock(&pm->lock);
	for (i = 0; i < len && offset < ACPI_PM_RANGE && i < ACPI_PM_RANGE - offset; i++)
		acpi_pm_write_reg(pm, offset + i, in[i]);
	pthread_mutex_unlock(&pm->lock);
}

#define ACPI_PM_STATE_VERSION 1

/*
 * Version 1: the nanoseconds the timer has counted. Snapshots from before
 * it have an empty state; the timer then starts from 0, as it did. The
 * epoch moves in unsigned arithmetic: a saved time larger than this host's
 * clock puts the epoch "in the future", and now - epoch still gives the
 * saved time plus the time since the restore.
 */
static int acpi_pm_state(struct device *dev, struct state_io *io)
{
	struct acpi_pm *pm = to_acpi_pm(dev);
	uint8_t version = ACPI_PM_STATE_VERSION;
	uint64_t elapsed = now_ns() - atomic_load(&pm->epoch_ns);

	if (io->loading && io->len == 0)
		return 0;
	state_u8(io, &version);
	if (!io->err && version != ACPI_PM_STATE_VERSION)
		return -EBADMSG;
	state_u64(io, &elapsed);
	if (io->err)
		return io->err;
	if (io->loading)
		atomic_store(&pm->epoch_ns, now_ns() - elapsed);
	return 0;
}

static void acpi_pm_destroy(struct device *dev)
{
	struct acpi_pm *pm = to_acpi_pm(dev);

	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

static const struct device_ops acpi_pm_ops = {
    .name = "acpi_pm",
    .read = acpi_pm_read,
    .write = acpi_pm_write,
    .state = acpi_pm_state,
    .destroy = acpi_pm_destroy,
};

struct device *acpi_pm_create(struct dev_host *host, uint8_t reset_value)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return NULL;
	if (pthread_mutex_init(&pm->lock, NULL)) {
		free(pm);
		return NULL;
	}
	pm->dev.ops = &acpi_pm_ops;
	pm->dev.host = host;
	pm->dev.id = "acpi_pm";
	pm->reset_value = reset_value;
	pm->epoch_ns = now_ns();
	return &pm->dev;
}
