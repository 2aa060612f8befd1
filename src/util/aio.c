/* Asynchronous file I/O: io_uring, or a worker pool where io_uring is unavailable. */
#include "util/aio.h"
#include "util/efd.h"
#include "util/thread.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define AIO_WORKERS 4

struct aio {
	bool uring;
	unsigned int depth;
	unsigned int inflight; /* touched by the submitting thread only */
	int efd;	       /* completions: io_uring's registered eventfd, or the pool's */
	struct io_uring ring;

	/* The worker pool (uring == false). */
	pthread_mutex_t lock;	 /* protects pending, done, stop */
	pthread_cond_t work;	 /* pending is non-empty, or stop */
	pthread_cond_t finished; /* done is non-empty */
	struct aio_req *pending, **pending_tail;
	struct aio_req *done;
	bool stop;
	pthread_t workers[AIO_WORKERS];
	unsigned int nworkers;
};

static bool is_rw(const struct aio_req *r)
{
	return r->op == AIO_READ || r->op == AIO_WRITE;
}

/* Account @n more bytes of a read or write: advance its iovecs past them. */
static void req_advance(struct aio_req *r, uint64_t n)
{
	r->done += n;
	while (n && r->iovcnt) {
		if (n >= r->iov->iov_len) {
			n -= r->iov->iov_len;
			r->iov++;
			r->iovcnt--;
		} else {
			r->iov->iov_base = (uint8_t *)r->iov->iov_base + n;
			r->iov->iov_len -= n;
			n = 0;
		}
	}
}

/* --- io_uring --- */

/*
 * Hand every queued SQE to the kernel. io_uring_enter can refuse for a
 * moment (EINTR; EAGAIN: no memory for the requests); an SQE left in the
 * ring would wait for the next kick or completion, which never comes if it
 * was the guest's last request, so retry transient failures (for at most
 * about a second: never wait forever with the device's lock held).
 */
static void uring_submit(struct aio *a)
{
	unsigned int tries = 0;
	int ret;

	while (io_uring_sq_ready(&a->ring)) {
		ret = io_uring_submit(&a->ring);
		if (ret > 0)
			continue;
		if ((ret < 0 && ret != -EINTR && ret != -EAGAIN) || ++tries > 1000)
			return;
		usleep(1000);
	}
}

static void uring_prep(struct aio *a, struct aio_req *r)
{
	struct io_uring_sqe *sqe;

	/* A depth-sized ring has room once what it holds is handed over. */
	while (!(sqe = io_uring_get_sqe(&a->ring)))
		uring_submit(a);
	switch (r->op) {
	case AIO_READ:
		io_uring_prep_readv(sqe, r->fd, r->iov, r->iovcnt, (off_t)(r->offset + r->done));
		break;
	case AIO_WRITE:
		io_uring_prep_writev(sqe, r->fd, r->iov, r->iovcnt, (off_t)(r->offset + r->done));
		break;
	case AIO_FDATASYNC:
		io_uring_prep_fsync(sqe, r->fd, IORING_FSYNC_DATASYNC);
		break;
	case AIO_FALLOCATE:
		io_uring_prep_fallocate(sqe, r->fd, r->mode, (off_t)r->offset, (off_t)r->len);
		break;
	}
	io_uring_sqe_set_data(sqe, r);
}

/* A finished CQE: true when @r is complete, false when resubmitted. */
static bool uring_complete(struct aio *a, struct aio_req *r, int res)
{
	if (is_rw(r) && res > 0 && r->done + (uint64_t)res < r->len) {
		req_advance(r, (uint64_t)res);
		uring_prep(a, r);
		return false;
	}
	if (is_rw(r) && res == 0)
		res = -EIO; /* end of file inside the range */
	r->res = res < 0 ? res : is_rw(r) ? (int64_t)r->len : 0;
	return true;
}

static unsigned int uring_reap(struct aio *a, void (*done)(struct aio_req *, void *), void *opaque)
{
	struct io_uring_cqe *cqe;
	unsigned int n = 0;
	bool resubmit = false;

	while (io_uring_peek_cqe(&a->ring, &cqe) == 0) {
		struct aio_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&a->ring, cqe);
		if (!uring_complete(a, r, res)) {
			resubmit = true;
			continue;
		}
		a->inflight--;
		n++;
		done(r, opaque);
	}
	if (resubmit || io_uring_sq_ready(&a->ring)) /* or what an earlier commit left */
		uring_submit(a);
	return n;
}

/*
 * What a disk's ring may do once enabled (util/aio.h, aio_uring_init):
 * the four operations uring_prep issues, no SQE flags (so no linked
 * chains, no buffer selection, no fixed-file tricks), and no
 * io_uring_register operation at all.
 */
static const uint8_t uring_ops[] = {
    IORING_OP_READV,	 /* AIO_READ */
    IORING_OP_WRITEV,	 /* AIO_WRITE */
    IORING_OP_FSYNC,	 /* AIO_FDATASYNC */
    IORING_OP_FALLOCATE, /* AIO_FALLOCATE */
};

static int uring_restrict(struct io_uring *ring)
{
	struct io_uring_restriction res[sizeof(uring_ops) + 1];
	unsigned int n = 0;

	memset(res, 0, sizeof(res));
	for (; n < sizeof(uring_ops); n++) {
		res[n].opcode = IORING_RESTRICTION_SQE_OP;
		res[n].sqe_op = uring_ops[n];
	}
	res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[n++].sqe_flags = 0;
	/* io_uring_register: liburing 2.3 (Debian 12) leaves its wrappers for these out of the .so.
	 */
	return io_uring_register((unsigned int)ring->ring_fd, IORING_REGISTER_RESTRICTIONS, res, n);
}

int aio_uring_init(struct io_uring *ring, unsigned int depth, int efd)
{
	struct io_uring_params p = {.flags = IORING_SETUP_R_DISABLED};
	int ret = io_uring_queue_init_params(depth, ring, &p);

	if (ret < 0)
		return ret;
	ret = io_uring_register_eventfd(ring, efd);
	if (ret == 0)
		ret = uring_restrict(ring);
	if (ret == 0)
		ret = io_uring_register((unsigned int)ring->ring_fd, IORING_REGISTER_ENABLE_RINGS,
					NULL, 0);
	if (ret < 0)
		io_uring_queue_exit(ring);
	return ret;
}

/* --- the worker pool --- */

static int64_t sync_rw(struct aio_req *r)
{
	while (r->done < r->len) {
		ssize_t n =
		    r->op == AIO_READ
			? preadv(r->fd, r->iov, (int)r->iovcnt, (off_t)(r->offset + r->done))
			: pwritev(r->fd, r->iov, (int)r->iovcnt, (off_t)(r->offset + r->done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		req_advance(r, (uint64_t)n);
	}
	return (int64_t)r->len;
}

static int64_t sync_do(struct aio_req *r)
{
	if (r->call)
		return r->call(r);
	switch (r->op) {
	case AIO_READ:
	case AIO_WRITE:
		return sync_rw(r);
	case AIO_FDATASYNC:
		return fdatasync(r->fd) < 0 ? -errno : 0;
	case AIO_FALLOCATE:
		return fallocate(r->fd, r->mode, (off_t)r->offset, (off_t)r->len) < 0 ? -errno : 0;
	}
	return -EINVAL;
}

static void *aio_worker(void *arg)
{
	struct aio *a = arg;
	struct aio_req *r;

	thread_enter("aio");
	for (;;) {
		pthread_mutex_lock(&a->lock);
		while (!a->pending && !a->stop)
			pthread_cond_wait(&a->work, &a->lock);
		r = a->pending;
		if (!r) {
			pthread_mutex_unlock(&a->lock);
			return NULL;
		}
		a->pending = r->next;
		if (!a->pending)
			a->pending_tail = &a->pending;
		pthread_mutex_unlock(&a->lock);

		r->res = sync_do(r);

		pthread_mutex_lock(&a->lock);
		r->next = a->done;
		a->done = r;
		pthread_cond_broadcast(&a->finished);
		pthread_mutex_unlock(&a->lock);
		(void)efd_signal(a->efd);
	}
}

static unsigned int pool_reap(struct aio *a, void (*done)(struct aio_req *, void *), void *opaque)
{
	struct aio_req *list, *r;
	unsigned int n = 0;

	pthread_mutex_lock(&a->lock);
	list = a->done;
	a->done = NULL;
	pthread_mutex_unlock(&a->lock);
	while (list) {
		r = list;
		list = r->next;
		a->inflight--;
		n++;
		done(r, opaque);
	}
	return n;
}

static int pool_init(struct aio *a)
{
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->work, NULL);
	pthread_cond_init(&a->finished, NULL);
	a->pending_tail = &a->pending;
	for (; a->nworkers < AIO_WORKERS; a->nworkers++) {
		int ret = pthread_create(&a->workers[a->nworkers], NULL, aio_worker, a);

		if (ret)
			return a->nworkers ? 0 : -ret;
	}
	return 0;
}

/* --- interface --- */

int aio_init(struct aio **out, unsigned int depth, unsigned int flags)
{
	const char *force = getenv("BANYAN_AIO");
	struct aio *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return -ENOMEM;
	a->depth = depth;
	a->efd = efd_create();
	if (a->efd < 0) {
		ret = a->efd;
		free(a);
		return ret;
	}
	if (!(flags & AIO_CALLS) && !(force && strcmp(force, "threads") == 0) &&
	    aio_uring_init(&a->ring, depth, a->efd) == 0) {
		a->uring = true;
		*out = a;
		return 0;
	}
	ret = pool_init(a);
	if (ret < 0) {
		close(a->efd);
		free(a);
		return ret;
	}
	*out = a;
	return 0;
}

const char *aio_engine(const struct aio *a)
{
	return a->uring ? "io_uring" : "threads";
}

int aio_fd(const struct aio *a)
{
	return a->efd;
}

void aio_submit(struct aio *a, struct aio_req *r)
{
	r->done = 0;
	r->res = 0;
	r->next = NULL;
	if (is_rw(r)) {
		r->len = 0;
		for (unsigned int i = 0; i < r->iovcnt; i++)
			r->len += r->iov[i].iov_len;
	}
	a->inflight++;
	if (a->uring) {
		uring_prep(a, r);
		return;
	}
	pthread_mutex_lock(&a->lock);
	*a->pending_tail = r;
	a->pending_tail = &r->next;
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->lock);
}

void aio_commit(struct aio *a)
{
	if (a->uring)
		uring_submit(a);
}

unsigned int aio_reap(struct aio *a, void (*done)(struct aio_req *r, void *opaque), void *opaque)
{
	(void)efd_drain(a->efd); /* nothing signalled: look anyway */
	return a->uring ? uring_reap(a, done, opaque) : pool_reap(a, done, opaque);
}

void aio_drain(struct aio *a, void (*done)(struct aio_req *r, void *opaque), void *opaque)
{
	struct io_uring_cqe *cqe;

	aio_commit(a);
	while (aio_reap(a, done, opaque), a->inflight) {
		aio_commit(a); /* @done may have resubmitted (write-zeroes steps) */
		if (a->uring) {
			io_uring_wait_cqe(&a->ring, &cqe);
			continue;
		}
		pthread_mutex_lock(&a->lock);
		while (!a->done)
			pthread_cond_wait(&a->finished, &a->lock);
		pthread_mutex_unlock(&a->lock);
	}
	/* Everything reaped: a completion signal left behind would only wake the owner for nothing.
	 */
	(void)efd_drain(a->efd);
}

unsigned int aio_inflight(const struct aio *a)
{
	return a->inflight;
}

static void drop(struct aio_req *r, void *opaque)
{
	(void)r;
	(void)opaque;
}

void aio_destroy(struct aio *a)
{
	if (!a)
		return;
	aio_drain(a, drop, NULL);
	if (a->uring) {
		io_uring_queue_exit(&a->ring);
	} else {
		pthread_mutex_lock(&a->lock);
		a->stop = true;
		pthread_cond_broadcast(&a->work);
		pthread_mutex_unlock(&a->lock);
		for (unsigned int i = 0; i < a->nworkers; i++)
			pthread_join(a->workers[i], NULL);
		pthread_cond_destroy(&a->work);
		pthread_cond_destroy(&a->finished);
		pthread_mutex_destroy(&a->lock);
	}
	close(a->efd);
	free(a);
}
