/*
 * Eventfds used as wake-up counters: one thread signals, the owner of an
 * event loop (or a poll) sees the fd readable and drains it. Every eventfd
 * in Banyan is non-blocking and close-on-exec, so a signal never blocks
 * its sender and a drain never blocks its reader.
 */
#ifndef BANYAN_UTIL_EFD_H
#define BANYAN_UTIL_EFD_H

#include <stdint.h>

/*
 * efd_create - a new eventfd, counter 0, non-blocking and close-on-exec.
 * Returns the fd, or -errno.
 */
int efd_create(void);

/*
 * efd_signal - add 1 to the counter of @fd, waking whoever polls it. A
 * counter already at its maximum is readable, so that counts as signalled.
 * Returns 0, or -errno (a bad fd). Never blocks.
 */
int efd_signal(int fd);

/*
 * efd_drain - read and reset the counter of @fd. Returns the count, or 0
 * when nothing was signalled (or the read failed). Never blocks.
 */
uint64_t efd_drain(int fd);

#endif
