/* Eventfd wake-up counters (efd.h). */
#include "util/efd.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

int efd_create(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	return fd < 0 ? -errno : fd;
}

int efd_signal(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) == sizeof(one))
		return 0;
	/* EAGAIN: the counter is saturated, which is readable already. */
	return errno == EAGAIN ? 0 : -errno;
}

uint64_t efd_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}
