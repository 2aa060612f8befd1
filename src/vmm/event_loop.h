/*
 * The event loop: one epoll set for the console, signals, the VM's exit
 * notification and (later) the API socket and network backends. Handlers
 * run on the thread calling event_loop_run_once.
 */
#ifndef BANYAN_VMM_EVENT_LOOP_H
#define BANYAN_VMM_EVENT_LOOP_H

#include <stdint.h>

struct event_handler {
	int fd;
	void (*fn)(struct event_handler *h, uint32_t events);
};

struct event_loop {
	int epfd;
};

/* event_loop_init - 0 or -errno. */
int event_loop_init(struct event_loop *loop) __attribute__((warn_unused_result));

/* event_loop_add - watch @h->fd for @events (EPOLLIN...). 0 or -errno. */
int event_loop_add(struct event_loop *loop, struct event_handler *h, uint32_t events)
    __attribute__((warn_unused_result));

/* event_loop_del - stop watching @h->fd. */
void event_loop_del(struct event_loop *loop, struct event_handler *h);

/*
 * event_loop_run_once - wait up to @timeout_ms (-1: forever) and run the
 * handlers of ready fds. Returns the number run, or -errno (not -EINTR).
 */
int event_loop_run_once(struct event_loop *loop, int timeout_ms);

void event_loop_destroy(struct event_loop *loop);

#endif
