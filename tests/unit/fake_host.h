/*
 * The machine around a device, for the legacy device unit tests: records
 * what the device does to its interrupt line and which VM requests it
 * makes, so that each test can assert as much as its device promises.
 * Nothing here fails a test by itself; the callbacks only count and flag.
 */
#ifndef BANYAN_TESTS_FAKE_HOST_H
#define BANYAN_TESTS_FAKE_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "vmm/device.h"

/* The GSI of a device that owns no line: any set_irq is then a wrong one. */
#define FAKE_NO_GSI UINT32_MAX

struct fake_host {
	struct dev_host host;
	uint32_t gsi;	/* the only line the device may drive */
	bool wrong_gsi; /* set_irq on any other line */
	int irq_calls;
	bool level;	     /* the line as last driven; starts low, as on a real machine */
	int rising;	     /* low-to-high transitions: the edges an edge-triggered guest sees */
	bool repeated_level; /* set_irq without a change: a wasted or missed edge */
	int requests;	     /* every request, even one enum vm_request does not name */
	int reboots;
	int poweroffs;
};

static inline void fake_set_irq(struct dev_host *host, uint32_t gsi, bool level)
{
	struct fake_host *f = container_of(host, struct fake_host, host);

	if (gsi != f->gsi)
		f->wrong_gsi = true;
	if (level == f->level)
		f->repeated_level = true;
	else if (level)
		f->rising++;
	f->level = level;
	f->irq_calls++;
}

static inline void fake_request(struct dev_host *host, enum vm_request req)
{
	struct fake_host *f = container_of(host, struct fake_host, host);

	f->requests++;
	if (req == VM_REQUEST_REBOOT)
		f->reboots++;
	else if (req == VM_REQUEST_POWEROFF)
		f->poweroffs++;
}

/*
 * A machine whose device may drive only @gsi. ioeventfd and irqfd stay NULL,
 * as the device contract allows, so devices take their plain trap paths.
 */
static inline void fake_host_init(struct fake_host *f, uint32_t gsi)
{
	memset(f, 0, sizeof(*f));
	f->host.set_irq = fake_set_irq;
	f->host.request = fake_request;
	f->gsi = gsi;
}

#endif
