/*
 * Same-host upgrade (docs/migration.md, "Same-host upgrade"): over a
 * unix: stream, a VM whose RAM is a memfd (--memory ...,shared) hands the
 * memfd itself to the destination (SCM_RIGHTS, with the CONFIG section)
 * instead of copying its pages. Both processes map the same memory; only
 * registers and device state cross during the pause.
 */
#ifndef BANYAN_MIGRATION_UPGRADE_H
#define BANYAN_MIGRATION_UPGRADE_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/transport.h"

struct vm;

/* mig_upgrade_possible - @vm's RAM is a memfd and @u a unix: socket. */
bool mig_upgrade_possible(const struct vm *vm, const struct mig_url *u);

/*
 * mig_memfd_check - @fd, received from a source, is guest RAM this side
 * may map: a regular file on tmpfs or hugetlbfs (a memfd) of exactly
 * @size bytes, open for reading and writing, sealed against shrinking and
 * growing and not against writing. Never maps it. 0 or -errno with @err.
 */
int mig_memfd_check(int fd, uint64_t size, char *err) __attribute__((warn_unused_result));

/*
 * mig_upgrade_detach - the destination runs the VM: replace this
 * process's mapping of its RAM with private anonymous memory at the same
 * address, so nothing here (a device's teardown, a stray write) can reach
 * the guest's memory again. The vCPUs must be paused for good. 0 or -errno.
 */
int mig_upgrade_detach(struct vm *vm) __attribute__((warn_unused_result));

#endif
