/*
 * A bounded output queue drained into a file descriptor by a thread of its
 * own. Whoever produces the bytes (a vCPU, a device thread, the event loop)
 * only copies them into the queue: it never waits for the reader at the
 * other end of the fd. When the queue is full, what does not fit is dropped
 * and counted. Only the writer's thread ever blocks in write(), and nothing
 * waits for that thread longer than a bound chosen by the caller.
 *
 * The fd is duplicated: its flags (O_NONBLOCK) are left as they are, since
 * the open file description is shared with other processes (a terminal, the
 * parent shell), and the caller may close its own fd at any time.
 */
#ifndef BANYAN_UTIL_WRITER_H
#define BANYAN_UTIL_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct writer;

/*
 * writer_create - a queue of @cap bytes in front of (a duplicate of) @fd.
 * @name (static) is used in the one log line written when the fd fails for
 * good; NULL means never log (the log's own writer). 0 or -errno.
 */
int writer_create(int fd, size_t cap, const char *name, struct writer **out)
    __attribute__((warn_unused_result));

/*
 * writer_put - queue as much of @buf as fits; the rest is dropped and
 * counted. Never blocks on the fd. Returns the number of bytes queued.
 */
size_t writer_put(struct writer *w, const void *buf, size_t len);

/*
 * writer_put_whole - queue all of @buf, or nothing (counted as dropped):
 * a log line is never cut. True when queued.
 */
bool writer_put_whole(struct writer *w, const void *buf, size_t len);

/*
 * writer_flush - wait until everything queued so far was written, the fd
 * failed, no byte left for @idle_ms, or @max_ms passed in all. 0 when the
 * queue is empty, -ETIMEDOUT otherwise.
 */
int writer_flush(struct writer *w, int idle_ms, int max_ms);

/*
 * writer_set_tick - call @fn(@arg) from the writer's thread about every
 * @period_ms while it has nothing to write (the log's rate-limit reports).
 * @fn may queue bytes on @w.
 */
void writer_set_tick(struct writer *w, void (*fn)(void *), void *arg, int period_ms);

/*
 * writer_set_fd - write to (a duplicate of) @fd from now on; bytes already
 * queued may go to either. 0 or -errno.
 */
int writer_set_fd(struct writer *w, int fd) __attribute__((warn_unused_result));

/* writer_dropped - bytes dropped so far (queue full, or the fd failed). */
uint64_t writer_dropped(const struct writer *w);

/* writer_queued - bytes waiting in the queue now. */
size_t writer_queued(const struct writer *w);

/*
 * writer_destroy - flush as writer_flush(@idle_ms, @max_ms), then stop the
 * thread and free everything. A thread still blocked in write() is left
 * behind, detached: it frees the writer when write() returns, or dies with
 * the process. Never waits longer than the flush bound.
 */
void writer_destroy(struct writer *w, int idle_ms, int max_ms);

/*
 * Start @w's thread now if none serves it (after a fork it is restarted on
 * first use, by whichever thread writes): a sandboxed thread may not be
 * allowed to start one. Returns 0 or -errno.
 */
int writer_ensure_thread(struct writer *w);

#endif
