/* A bounded queue drained into an fd by its own thread: producers never block. */
#include "util/writer.h"
#include "util/clock.h"

#include "util/log.h"
#include "util/thread.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a write on a non-blocking fd waits before the thread rechecks for a stop. */
#define WRITER_POLL_MS 100

struct writer {
	/*
	 * lock protects every field below except the atomics. The thread
	 * drops it around write(), with the bytes it writes marked in flight:
	 * producers only ever copy into the free part of the ring.
	 */
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* to the thread: bytes queued, a new fd, or stop */
	pthread_cond_t drained; /* from the thread: progress, or it ended */
	pthread_t thread;
	uint8_t *ring;
	size_t cap, head, len;
	size_t inflight;   /* bytes at head being written now (lock dropped) */
	int fd;		   /* our own duplicate */
	int next_fd;	   /* a replacement, taken by the thread between writes; or -1 */
	bool running;	   /* a thread serves this writer */
	bool stop;	   /* the owner asked the thread to end */
	bool abandoned;	   /* the owner left: the thread frees the writer */
	bool dead;	   /* the fd failed for good: everything is dropped */
	int err;	   /* why it failed */
	uint64_t progress; /* completed writes, watched by writer_flush */
	const char *name;
	void (*tick)(void *);
	void *tick_arg;
	int tick_ms;
	uint64_t next_tick; /* CLOCK_MONOTONIC ms */
	_Atomic uint64_t dropped;
	_Atomic size_t queued;
	struct writer *next; /* every live writer, for fork */
};

/* Every live writer: a forked child must not inherit locked mutexes or ghost threads. */
static pthread_mutex_t writers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct writer *writers;
static pthread_once_t writers_once = PTHREAD_ONCE_INIT;

static void writers_prepare(void)
{
	struct writer *w;

	pthread_mutex_lock(&writers_lock);
	for (w = writers; w; w = w->next)
		pthread_mutex_lock(&w->lock);
}

static void writers_parent(void)
{
	struct writer *w;

	for (w = writers; w; w = w->next)
		pthread_mutex_unlock(&w->lock);
	pthread_mutex_unlock(&writers_lock);
}

static void writer_init_sync(struct writer *w)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, &ca);
	pthread_cond_init(&w->drained, &ca);
	pthread_condattr_destroy(&ca);
}

/*
 * The child has no writer threads. What the parent queued is the parent's
 * to write; the child starts empty and starts a thread on its first put.
 */
static void writers_child(void)
{
	struct writer *w;

	for (w = writers; w; w = w->next) {
		writer_init_sync(w);
		w->head = w->len = w->inflight = 0;
		w->running = false;
		atomic_store(&w->queued, 0);
	}
	pthread_mutex_init(&writers_lock, NULL);
}

static void writers_register_atfork(void)
{
	pthread_atfork(writers_prepare, writers_parent, writers_child);
}

static struct timespec abs_ms(uint64_t ms)
{
	return (struct timespec){.tv_sec = (time_t)(ms / 1000),
				 .tv_nsec = (long)(ms % 1000) * 1000000};
}

/* One write of @len bytes: > 0 written, -EAGAIN to retry, other -errno: the fd is gone. */
static ssize_t writer_write_once(int fd, const uint8_t *buf, size_t len)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	ssize_t n = write(fd, buf, len);

	if (n > 0)
		return n;
	if (n == 0)
		return -EIO;
	if (errno == EINTR)
		return -EAGAIN;
	if (errno != EAGAIN)
		return -errno;
	/* Someone else made the file non-blocking: wait, but come back to check for a stop. */
	if (poll(&pfd, 1, WRITER_POLL_MS) < 0 && errno != EINTR)
		return -errno;
	return -EAGAIN;
}

static void writer_drop_all(struct writer *w)
{
	atomic_fetch_add(&w->dropped, w->len);
	w->head = w->len = 0;
	atomic_store(&w->queued, 0);
}

/* After a write: advance, or give up on the fd. Called with the lock held. */
static void writer_account(struct writer *w, ssize_t n)
{
	if (n > 0) {
		w->head = (w->head + (size_t)n) % w->cap;
		w->len -= (size_t)n;
		atomic_store(&w->queued, w->len);
		w->progress++;
	} else if (n != -EAGAIN) {
		w->dead = true;
		w->err = (int)-n;
		writer_drop_all(w);
	}
	pthread_cond_broadcast(&w->drained);
}

/* Run the tick when it is due, busy or not: a steady trickle must not starve it. Lock held. */
static void writer_maybe_tick(struct writer *w)
{
	uint64_t now;

	if (!w->tick || (now = now_ms()) < w->next_tick)
		return;
	w->next_tick = now + (uint64_t)w->tick_ms;
	pthread_mutex_unlock(&w->lock);
	w->tick(w->tick_arg);
	pthread_mutex_lock(&w->lock);
}

/* Nothing to write: sleep until woken, or until the next tick is due. */
static void writer_idle(struct writer *w)
{
	struct timespec until;

	if (!w->tick) {
		pthread_cond_wait(&w->wake, &w->lock);
		return;
	}
	until = abs_ms(w->next_tick);
	pthread_cond_timedwait(&w->wake, &w->lock, &until);
}

static void writer_take_next_fd(struct writer *w)
{
	if (w->next_fd < 0)
		return;
	close(w->fd);
	w->fd = w->next_fd;
	w->next_fd = -1;
	w->dead = false;
}

/* Write one contiguous run from the head with the lock dropped; false when the fd died. */
static bool writer_write_run(struct writer *w)
{
	size_t n = w->len < w->cap - w->head ? w->len : w->cap - w->head;
	const uint8_t *run = w->ring + w->head;
	int fd = w->fd;
	ssize_t ret;

	w->inflight = n;
	pthread_mutex_unlock(&w->lock);
	ret = writer_write_once(fd, run, n);
	pthread_mutex_lock(&w->lock);
	w->inflight = 0;
	writer_account(w, ret);
	return !w->dead;
}

static void writer_report_dead(struct writer *w)
{
	int err = w->err;

	pthread_mutex_unlock(&w->lock);
	log_warn("%s: output failed (%s), dropping further output", w->name, strerror(err));
	pthread_mutex_lock(&w->lock);
}

static void writer_free(struct writer *w)
{
	if (w->next_fd >= 0)
		close(w->next_fd);
	close(w->fd);
	pthread_cond_destroy(&w->drained);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w->ring);
	free(w);
}

static void *writer_thread(void *arg)
{
	struct writer *w = arg;
	const char *what = w->name ? w->name : "log";
	char name[16];
	bool free_it;

	/* "writer-log", "writer-console": the role is the prefix (security/seccomp.h). */
	snprintf(name, sizeof(name), "writer-%.*s", (int)strcspn(what, "-"), what);
	thread_enter(name);
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		writer_take_next_fd(w);
		writer_maybe_tick(w);
		if (w->stop)
			break;
		if (!w->len || w->dead)
			writer_idle(w);
		else if (!writer_write_run(w) && w->name)
			writer_report_dead(w);
	}
	free_it = w->abandoned;
	w->running = false;
	pthread_cond_broadcast(&w->drained);
	pthread_mutex_unlock(&w->lock);
	if (free_it)
		writer_free(w);
	return NULL;
}

/* Start the thread if none serves @w (first use, or after a fork). Lock held. */
static int writer_start(struct writer *w)
{
	sigset_t all, old;
	int ret;

	if (w->running)
		return 0;
	/* Signals belong to the main thread's signalfd and the vCPUs' kicks, never to this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&w->thread, NULL, writer_thread, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return -ret;
	w->running = true;
	return 0;
}

int writer_create(int fd, size_t cap, const char *name, struct writer **out)
{
	struct writer *w = calloc(1, sizeof(*w));
	int ret = -ENOMEM;

	pthread_once(&writers_once, writers_register_atfork);
	if (!w || cap == 0 || !(w->ring = malloc(cap)))
		goto out_free;
	w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (w->fd < 0) {
		ret = -errno;
		goto out_free;
	}
	w->cap = cap;
	w->next_fd = -1;
	w->name = name;
	writer_init_sync(w);
	pthread_mutex_lock(&writers_lock);
	pthread_mutex_lock(&w->lock);
	ret = writer_start(w);
	pthread_mutex_unlock(&w->lock);
	if (ret == 0) {
		w->next = writers;
		writers = w;
	}
	pthread_mutex_unlock(&writers_lock);
	if (ret == 0) {
		*out = w;
		return 0;
	}
	close(w->fd);
out_free:
	if (w)
		free(w->ring);
	free(w);
	return ret;
}

/* Copy @len bytes (known to fit) behind the queued ones. Lock held. */
static void writer_copy_in(struct writer *w, const uint8_t *buf, size_t len)
{
	size_t tail = (w->head + w->len) % w->cap;
	size_t first = len < w->cap - tail ? len : w->cap - tail;

	memcpy(w->ring + tail, buf, first);
	memcpy(w->ring, buf + first, len - first);
	if (w->len == 0)
		pthread_cond_signal(&w->wake); /* the thread sleeps only when the queue is empty */
	w->len += len;
	atomic_store(&w->queued, w->len);
}

static size_t writer_put_mode(struct writer *w, const void *buf, size_t len, bool whole)
{
	size_t room, n;

	pthread_mutex_lock(&w->lock);
	room = w->dead ? 0 : w->cap - w->len;
	n = len <= room ? len : (whole ? 0 : room);
	if (n && writer_start(w) < 0)
		n = 0;
	if (n)
		writer_copy_in(w, buf, n);
	pthread_mutex_unlock(&w->lock);
	if (n < len)
		atomic_fetch_add(&w->dropped, len - n);
	return n;
}

int writer_ensure_thread(struct writer *w)
{
	int ret;

	pthread_mutex_lock(&w->lock);
	ret = writer_start(w);
	pthread_mutex_unlock(&w->lock);
	return ret;
}

size_t writer_put(struct writer *w, const void *buf, size_t len)
{
	return writer_put_mode(w, buf, len, false);
}

bool writer_put_whole(struct writer *w, const void *buf, size_t len)
{
	return writer_put_mode(w, buf, len, true) == len;
}

int writer_flush(struct writer *w, int idle_ms, int max_ms)
{
	uint64_t end = now_ms() + (uint64_t)max_ms, idle_end, seen;
	struct timespec until;
	int ret;

	pthread_mutex_lock(&w->lock);
	while (w->len && !w->dead && w->running) {
		seen = w->progress;
		idle_end = now_ms() + (uint64_t)idle_ms;
		until = abs_ms(idle_end < end ? idle_end : end);
		while (w->len && !w->dead && w->running && w->progress == seen)
			if (pthread_cond_timedwait(&w->drained, &w->lock, &until) == ETIMEDOUT)
				break;
		if (w->progress == seen || now_ms() >= end)
			break; /* the reader stalled, or the time is up */
	}
	ret = w->len ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&w->lock);
	return ret;
}

void writer_set_tick(struct writer *w, void (*fn)(void *), void *arg, int period_ms)
{
	pthread_mutex_lock(&w->lock);
	w->tick = fn;
	w->tick_arg = arg;
	w->tick_ms = period_ms > 0 ? period_ms : 1000;
	w->next_tick = now_ms() + (uint64_t)w->tick_ms;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

int writer_set_fd(struct writer *w, int fd)
{
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);

	if (dup < 0)
		return -errno;
	pthread_mutex_lock(&w->lock);
	if (w->next_fd >= 0)
		close(w->next_fd);
	/* The thread may be in write() on the old fd: it swaps them itself, between writes. */
	w->next_fd = dup;
	if (!w->running)
		writer_take_next_fd(w);
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

uint64_t writer_dropped(const struct writer *w)
{
	return atomic_load(&w->dropped);
}

size_t writer_queued(const struct writer *w)
{
	return atomic_load(&w->queued);
}

static void writers_unlink(struct writer *w)
{
	struct writer **p;

	pthread_mutex_lock(&writers_lock);
	for (p = &writers; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	pthread_mutex_unlock(&writers_lock);
}

void writer_destroy(struct writer *w, int idle_ms, int max_ms)
{
	pthread_t th;
	bool joinable;

	if (!w)
		return;
	writer_flush(w, idle_ms, max_ms);
	writers_unlink(w);
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->wake);
	th = w->thread;
	joinable = w->running;
	if (w->inflight) {
		/* Blocked on a reader that stopped reading: leave it behind. */
		w->abandoned = true;
		pthread_mutex_unlock(&w->lock);
		pthread_detach(th);
		return;
	}
	pthread_mutex_unlock(&w->lock);
	if (joinable)
		pthread_join(th, NULL);
	writer_free(w);
}
