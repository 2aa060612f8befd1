/*
 * Asynchronous file I/O for device backends: io_uring (liburing) when the
 * kernel offers it, otherwise a small pool of worker threads doing
 * preadv/pwritev/fdatasync/fallocate. Either way the submitter never waits:
 * completions are collected later with aio_reap when aio_fd() is readable.
 *
 * An aio context is used by one thread at a time (the device's), except for
 * the worker threads it owns. Setting BANYAN_AIO=threads in the environment
 * forces the worker pool (tests run both engines).
 */
#ifndef BANYAN_UTIL_AIO_H
#define BANYAN_UTIL_AIO_H

#include <stdint.h>
#include <sys/uio.h>

enum aio_op {
	AIO_READ,
	AIO_WRITE,
	AIO_FDATASYNC,
	AIO_FALLOCATE,
};

struct aio_req {
	enum aio_op op;
	int fd;
	struct iovec *iov; /* READ/WRITE: the buffers; advanced in place on short transfers */
	unsigned int iovcnt;
	uint64_t offset; /* READ/WRITE/FALLOCATE */
	uint64_t len;	 /* FALLOCATE: the range length */
	int mode;	 /* FALLOCATE: FALLOC_FL_* */
	void *data;	 /* the submitter's */
	/*
	 * When set (contexts made with AIO_CALLS), a worker thread runs
	 * call(r) instead of the operation; its result becomes res. For
	 * backends that are more than one file (a disk overlay).
	 */
	int64_t (*call)(struct aio_req *r);
	/* Set on completion: bytes transferred (all of them), 0, or -errno. */
	int64_t res;
	/* Private to aio. */
	uint64_t done;
	struct aio_req *next;
};

struct aio;
struct io_uring;

/* aio_init flags. */
#define AIO_CALLS 1U /* requests may carry a call: worker threads, never io_uring */

/*
 * aio_init - a context for up to @depth requests in flight. Returns 0 or
 * -errno; never logs.
 */
int aio_init(struct aio **out, unsigned int depth, unsigned int flags)
    __attribute__((warn_unused_result));

/*
 * aio_uring_init - the io_uring aio_init uses: @depth entries, completions
 * signalled on eventfd @efd, created disabled and enabled only once
 * restricted (IORING_REGISTER_RESTRICTIONS): readv, writev, fsync and
 * fallocate, no SQE flags, no io_uring_register operation. io_uring runs
 * its operations in the kernel, out of seccomp's sight, so a ring is
 * limited to what a disk needs whoever writes its submission queue; any
 * other opcode completes with -EACCES. Returns 0 or -errno (the ring is
 * not left open on failure). Exported for its test.
 */
int aio_uring_init(struct io_uring *ring, unsigned int depth, int efd)
    __attribute__((warn_unused_result));

/* aio_engine - "io_uring" or "threads", for logs and tests. */
const char *aio_engine(const struct aio *a);

/* aio_fd - readable when completions may be waiting. */
int aio_fd(const struct aio *a);

/*
 * aio_submit - start @r (which stays the caller's memory until it is
 * reaped). Never blocks on I/O. The caller keeps at most @depth in flight.
 */
void aio_submit(struct aio *a, struct aio_req *r);

/* aio_commit - hand queued submissions to the kernel (io_uring batches them). */
void aio_commit(struct aio *a);

/*
 * aio_reap - call @done for every finished request (short transfers are
 * resubmitted, not reported). Returns how many finished.
 */
unsigned int aio_reap(struct aio *a, void (*done)(struct aio_req *r, void *opaque), void *opaque);

/*
 * aio_drain - wait until nothing is in flight, reaping as aio_reap does
 * (requests @done resubmits included), and clear aio_fd()'s signal (a
 * worker thread's last one may still land: the owner reaps nothing). For
 * pausing and resetting a device.
 */
void aio_drain(struct aio *a, void (*done)(struct aio_req *r, void *opaque), void *opaque);

/* aio_inflight - requests submitted and not yet reaped. */
unsigned int aio_inflight(const struct aio *a);

/* aio_destroy - drain (dropping results) and free. */
void aio_destroy(struct aio *a);

#endif
