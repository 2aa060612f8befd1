/* epoll-based event loop. */
#include "vmm/event_loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EVENT_BATCH 16

int event_loop_init(struct event_loop *loop)
{
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	return loop->epfd < 0 ? -errno : 0;
}

int event_loop_add(struct event_loop *loop, struct event_handler *h, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = h};

	return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, h->fd, &ev) < 0 ? -errno : 0;
}

void event_loop_del(struct event_loop *loop, struct event_handler *h)
{
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, h->fd, NULL);
}

int event_loop_run_once(struct event_loop *loop, int timeout_ms)
{
	struct epoll_event evs[EVENT_BATCH];
	int n, i;

	n = epoll_wait(loop->epfd, evs, EVENT_BATCH, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < n; i++) {
		struct event_handler *h = evs[i].data.ptr;

		h->fn(h, evs[i].events);
	}
	return n;
}

void event_loop_destroy(struct event_loop *loop)
{
	if (loop->epfd >= 0)
		close(loop->epfd);
	loop->epfd = -1;
}
