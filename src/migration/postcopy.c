/*
 * Post-copy, the destination's side (postcopy.h): missing pages registered
 * with userfaultfd, a thread serving faults (asking the source for a page
 * still to come, zero-filling one that never had data) and a thread placing
 * the pages the source sends. Neither thread ever touches guest memory
 * itself: pages are placed with UFFDIO_COPY and UFFDIO_ZEROPAGE, which wake
 * the threads waiting on them.
 */
#include "migration/postcopy.h"

#include "migration/migration.h"
#include "migration/postcopy_pages.h"
#include "migration/stream.h"
#include "util/clock.h"
#include "util/errmsg.h"
#include "util/log.h"
#include "util/thread.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define fail(err, ret, ...) errmsg_set(err, MIG_ERR_LEN, ret, __VA_ARGS__)
#define PAGE		    PC_PAGE
#define GRACE_MS	    3000 /* after a failure, before threads stuck on pages end the process */
#define EXIT_LOST	    3	 /* banyan run's host-error status (cli.h): the VM is lost */

struct mig_postcopy {
	struct vm *vm;
	int uffd;
	struct pc_pages pp; /* which pages are still to come (postcopy_pages.h) */
	struct mig_conn conn;
	pthread_mutex_t wlock; /* one writer on conn at a time */
	pthread_t fault_thr, recv_thr;
	bool started;
	atomic_bool done;   /* every page arrived: the fault thread leaves */
	atomic_bool failed; /* the source is lost */
	atomic_bool stop;   /* mig_pc_free: leave now */
	atomic_uint_fast64_t requested;
	uint64_t t0;
};

static void put_le(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t mig_pc_mem_hash(const struct vm *vm)
{
	uint64_t h = 0;

	for (unsigned int i = 0; i < vm->mem.count; i++) {
		const struct gm_region *r = &vm->mem.regions[i];

		for (uint64_t off = 0; off < r->size; off += PAGE)
			h += pc_page_hash(r->gpa + off, r->host + off);
	}
	return h;
}

/* Give back the missing pages' stale contents, so that a touch faults. */
static int release_pending(struct mig_postcopy *pc, char *err)
{
	for (unsigned int i = 0; i < pc->vm->mem.count; i++) {
		const struct gm_region *r = &pc->vm->mem.regions[i];
		uint64_t first = (uint64_t)(r->host - (uint8_t *)pc->vm->mem_base) / PAGE;
		uint64_t n = r->size / PAGE;

		for (uint64_t p = 0; p < n; p++) {
			uint64_t q = p;
			int ret;

			if (!pc_pages_is_pending(&pc->pp, first + p))
				continue;
			while (q < n && pc_pages_is_pending(&pc->pp, first + q))
				q++;
			ret = gm_release(&pc->vm->mem, r->gpa + p * PAGE, (q - p) * PAGE, NULL);
			if (ret < 0)
				return fail(err, ret, "cannot drop stale pages: %s",
					    strerror(-ret));
			p = q - 1;
		}
	}
	return 0;
}

/* A userfaultfd: the system call, or /dev/userfaultfd where only that is allowed. */
static int open_uffd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK), dev;

	if (fd >= 0 || errno != EPERM)
		return fd >= 0 ? fd : -errno;
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -EPERM;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	return fd >= 0 ? fd : -errno;
}

/* userfaultfd on, every region registered in missing mode. */
static int register_ram(struct mig_postcopy *pc, char *err)
{
	bool shared = pc->vm->mem.backing == GM_BACKING_SHARED;
	struct uffdio_api api = {.api = UFFD_API,
				 .features = shared ? UFFD_FEATURE_MISSING_SHMEM : 0};

	pc->uffd = open_uffd();
	if (pc->uffd < 0)
		return fail(err, pc->uffd,
			    "post-copy needs userfaultfd, which this host refuses (%s): root, or "
			    "vm.unprivileged_userfaultfd=1, or access to /dev/userfaultfd",
			    strerror(-pc->uffd));
	if (ioctl(pc->uffd, UFFDIO_API, &api) < 0)
		return fail(err, -errno, "userfaultfd: %s", strerror(errno));
	for (unsigned int i = 0; i < pc->vm->mem.count; i++) {
		const struct gm_region *r = &pc->vm->mem.regions[i];
		struct uffdio_register reg = {
		    .range = {.start = (uintptr_t)r->host, .len = r->size},
		    .mode = UFFDIO_REGISTER_MODE_MISSING};

		if (ioctl(pc->uffd, UFFDIO_REGISTER, &reg) < 0)
			return fail(err, -errno,
				    "cannot register guest memory with userfaultfd: %s",
				    strerror(errno));
		if (!(reg.ioctls & (1ULL << _UFFDIO_COPY)) ||
		    !(reg.ioctls & (1ULL << _UFFDIO_ZEROPAGE)))
			return fail(err, -EOPNOTSUPP, "userfaultfd cannot fill this memory");
	}
	return 0;
}

int mig_pc_prepare(struct vm *vm, const uint8_t *buf, size_t len, const uint64_t *hashes,
		   struct mig_postcopy **out, char *err)
{
	struct mig_postcopy *pc;
	int ret;

	if (vm->mem.backing == GM_BACKING_PRIVATE_FILE ||
	    (vm->mem.page_size && vm->mem.page_size != PAGE))
		return fail(err, -EOPNOTSUPP, "post-copy needs guest RAM on 4 KiB pages");
	pc = calloc(1, sizeof(*pc));
	if (!pc)
		return fail(err, -ENOMEM, "out of memory");
	pc->vm = vm;
	pc->uffd = -1;
	pc->conn.fd = -1;
	pthread_mutex_init(&pc->wlock, NULL);
	ret = pc_pages_init(&pc->pp, &vm->mem, vm->mem_base, vm->mem_map_size, hashes != NULL);
	if (ret < 0)
		fail(err, ret, "out of memory");
	else
		ret = pc_pages_parse_list(&pc->pp, buf, len, err);
	if (ret == 0 && hashes)
		pc_pages_hash_present(&pc->pp, hashes);
	if (ret == 0)
		ret = release_pending(pc, err);
	if (ret == 0)
		ret = register_ram(pc, err);
	if (ret < 0) {
		mig_pc_free(pc);
		return ret;
	}
	log_info("post-copy: %llu pages (%llu KiB) will come after the switch",
		 (unsigned long long)pc->pp.total, (unsigned long long)pc->pp.total * PAGE >> 10);
	*out = pc;
	return 0;
}

static int send_locked(struct mig_postcopy *pc, enum mig_tag tag, const void *buf, size_t len)
{
	int ret;

	pthread_mutex_lock(&pc->wlock);
	ret = pc->conn.fd >= 0 ? mig_send(&pc->conn, tag, buf, len) : -EPIPE;
	pthread_mutex_unlock(&pc->wlock);
	return ret;
}

/*
 * The source is gone: the VM cannot go on without its missing pages. Stop
 * it; if threads stay blocked on pages that will never come (a vCPU or a
 * device thread in the kernel's fault path), end the process, saying why.
 */
static void lose(struct mig_postcopy *pc, const char *why)
{
	char detail[MIG_ERR_LEN];

	if (atomic_exchange(&pc->failed, true))
		return;
	snprintf(detail, sizeof(detail),
		 "post-copy failed with %llu pages still at the source (%s): the VM is lost",
		 (unsigned long long)atomic_load(&pc->pp.missing), why);
	log_error("%s", detail);
	vm_request_exit(pc->vm, VM_EXIT_HOST_ERROR, detail);
	pthread_mutex_lock(&pc->wlock);
	if (pc->conn.fd >= 0)
		pc->conn.ops->shutdown(&pc->conn); /* the other thread's wait ends too */
	pthread_mutex_unlock(&pc->wlock);
}

/* Called by the receiver after lose(): give the VMM GRACE_MS to stop the VM normally. */
static void watchdog(struct mig_postcopy *pc)
{
	for (unsigned int ms = 0; ms < GRACE_MS; ms += 10) {
		struct timespec ts = {.tv_nsec = 10 * 1000000L};

		if (atomic_load(&pc->stop))
			return;
		nanosleep(&ts, NULL);
	}
	log_error("post-copy: threads still wait for pages that will never come: ending the "
		  "process");
	log_flush();
	_exit(EXIT_LOST);
}

/*
 * Place one page: @data, or zeros when NULL. EAGAIN (the address space
 * changing under the call) is retried: a waiter must never be left
 * without its page. 0, -EEXIST (already there) or -errno.
 */
static int place(struct mig_postcopy *pc, uint8_t *host, const uint8_t *data)
{
	struct uffdio_copy c = {.dst = (uintptr_t)host, .src = (uintptr_t)data, .len = PAGE};
	struct uffdio_zeropage z = {.range = {.start = (uintptr_t)host, .len = PAGE}};
	int ret;

	for (unsigned int tries = 0; tries < 1000; tries++) {
		ret =
		    data ? ioctl(pc->uffd, UFFDIO_COPY, &c) : ioctl(pc->uffd, UFFDIO_ZEROPAGE, &z);
		if (ret == 0 || errno != EAGAIN)
			return ret == 0 ? 0 : -errno;
		c.copy = 0;
		z.zeropage = 0;
	}
	return -EAGAIN;
}

/* One fault: ask for a page still to come, zero-fill one that never had data. */
static int on_fault(struct mig_postcopy *pc, uint64_t addr)
{
	uint8_t req[PC_RUN_LEN], *host;
	int ret;

	switch (pc_pages_fault(&pc->pp, (uintptr_t)addr, &host, req)) {
	case PC_FAULT_ZERO: /* EEXIST: placed meanwhile; either way the waiter is woken. */
		ret = place(pc, host, NULL);
		return ret == -EEXIST ? 0 : ret;
	case PC_FAULT_ASK:
		atomic_fetch_add(&pc->requested, 1);
		return send_locked(pc, MIG_TAG_PAGE_REQ, req, sizeof(req));
	default:
		return 0;
	}
}

/* Every fault queued now. */
static int drain_faults(struct mig_postcopy *pc)
{
	struct uffd_msg msg;
	ssize_t n;
	int ret = 0;

	while (ret == 0 && (n = read(pc->uffd, &msg, sizeof(msg))) == (ssize_t)sizeof(msg))
		if (msg.event == UFFD_EVENT_PAGEFAULT)
			ret = on_fault(pc, msg.arg.pagefault.address);
	if (ret == 0 && n < 0 && errno != EAGAIN && errno != EINTR)
		ret = -errno;
	return ret;
}

/* The fault thread: faults as they come, PC_ALIVE every MIG_PC_ALIVE_MS. */
static void *fault_thread(void *arg)
{
	struct mig_postcopy *pc = arg;
	uint64_t alive = now_ns();

	thread_enter("postcopy-fault");
	while (!atomic_load(&pc->done) && !atomic_load(&pc->stop) && !atomic_load(&pc->failed)) {
		struct pollfd p = {.fd = pc->uffd, .events = POLLIN};
		int ret = poll(&p, 1, 100);

		if (ret > 0)
			ret = drain_faults(pc);
		if (ret >= 0 && now_ns() - alive >= MIG_PC_ALIVE_MS * 1000000ULL) {
			uint8_t b[8];

			put_le(b, atomic_load(&pc->pp.missing), 8);
			ret = send_locked(pc, MIG_TAG_PC_ALIVE, b, sizeof(b));
			alive = now_ns();
		}
		if (ret < 0 && !atomic_load(&pc->done) && !atomic_load(&pc->stop)) {
			char why[128];

			snprintf(why, sizeof(why), "serving a fault: %s", strerror(-ret));
			lose(pc, why);
		}
	}
	return NULL;
}

static int place_page(void *priv, uint8_t *host, const uint8_t *data)
{
	return place(priv, host, data);
}

/* A run of pages from the source, placed where still missing. */
static int place_run(void *priv, uint8_t *host, uint64_t gpa, uint64_t pages, const uint8_t *data)
{
	struct mig_postcopy *pc = priv;

	return pc_pages_place_run(&pc->pp, host, gpa, pages, data, place_page, pc);
}

static int send_complete(struct mig_postcopy *pc, int status, const char *why)
{
	int ret;

	pthread_mutex_lock(&pc->wlock);
	ret = pc->conn.fd >= 0 ? mig_send_reply(&pc->conn, MIG_TAG_COMPLETE, status, why) : -EPIPE;
	pthread_mutex_unlock(&pc->wlock);
	return ret;
}

/* The sections after RUNNING until PC_END: MEMORY placed, nothing else. */
static int receive(struct mig_postcopy *pc, char *err)
{
	bool end = false;
	int ret = 0;

	while (ret == 0 && !end) {
		enum mig_tag tag;
		uint8_t *buf;
		size_t len;

		ret = mig_recv(&pc->conn, &tag, &buf, &len, err);
		if (ret < 0)
			break;
		if (tag == MIG_TAG_MEMORY)
			ret = mig_mem_walk(&pc->vm->mem, buf, len, place_run, pc, err);
		else if (tag == MIG_TAG_PC_END) {
			ret = pc_pages_check_end(&pc->pp, buf, len, err);
			end = true;
		} else
			ret = fail(err, -EBADMSG, "section %u out of order during post-copy", tag);
		free(buf);
	}
	return ret;
}

/* Every page here: userfaultfd off (a page given back later faults in as zero). */
static void unregister_ram(struct mig_postcopy *pc)
{
	for (unsigned int i = 0; i < pc->vm->mem.count; i++) {
		const struct gm_region *r = &pc->vm->mem.regions[i];
		struct uffdio_range range = {.start = (uintptr_t)r->host, .len = r->size};

		if (ioctl(pc->uffd, UFFDIO_UNREGISTER, &range) < 0)
			log_warn("post-copy: cannot unregister guest memory: %s", strerror(errno));
	}
}

void mig_pc_status(struct mig_postcopy *pc, struct mig_status *st)
{
	uint64_t missing = atomic_load(&pc->pp.missing);

	memset(st, 0, sizeof(*st));
	st->incoming = true;
	st->postcopy = true;
	st->phase = atomic_load(&pc->failed) ? MIG_PHASE_FAILED
		    : atomic_load(&pc->done) ? MIG_PHASE_MIGRATED
					     : MIG_PHASE_POSTCOPY;
	st->mem_bytes = pc->vm->cfg.mem_size;
	st->postcopy_pages = pc->pp.total;
	st->postcopy_remaining = missing;
	st->postcopy_requested = atomic_load(&pc->requested);
	st->bytes_remaining = missing * PAGE;
	st->total_ms = pc->started ? (now_ns() - pc->t0) / 1000000 : 0;
	if (st->phase == MIG_PHASE_MIGRATED)
		snprintf(st->outcome, sizeof(st->outcome), "migrated");
	else if (st->phase == MIG_PHASE_FAILED)
		snprintf(st->outcome, sizeof(st->outcome),
			 "the source was lost with %llu pages still there: the VM is lost",
			 (unsigned long long)missing);
}

static void *recv_thread(void *arg)
{
	struct mig_postcopy *pc = arg;
	char err[MIG_ERR_LEN] = "";
	int ret;

	thread_enter("postcopy-recv");
	ret = receive(pc, err);
	if (ret == 0) /* logged before the source hears it: it stops only after this */
		log_info("post-copy complete: %llu pages arrived, %llu asked for, in %llu ms",
			 (unsigned long long)pc->pp.total,
			 (unsigned long long)atomic_load(&pc->requested),
			 (unsigned long long)((now_ns() - pc->t0) / 1000000));
	if (ret == 0 || ret == -EIO)
		(void)send_complete(pc, -ret, err);
	if (ret == 0) {
		atomic_store(&pc->done, true);
		pthread_join(pc->fault_thr, NULL);
		unregister_ram(pc);
		pthread_mutex_lock(&pc->wlock);
		mig_conn_close(&pc->conn);
		pthread_mutex_unlock(&pc->wlock);
		return NULL;
	}
	if (!atomic_load(&pc->stop)) {
		lose(pc, err[0] ? err : strerror(-ret));
		watchdog(pc);
	}
	return NULL;
}

int mig_pc_start(struct mig_postcopy *pc, struct mig_conn *conn)
{
	int ret;

	pc->conn = *conn;
	conn->fd = -1;
	pc->t0 = now_ns();
	ret = -pthread_create(&pc->fault_thr, NULL, fault_thread, pc);
	if (ret < 0)
		return ret;
	ret = -pthread_create(&pc->recv_thr, NULL, recv_thread, pc);
	if (ret < 0) {
		atomic_store(&pc->stop, true);
		pthread_join(pc->fault_thr, NULL);
		return ret;
	}
	pc->started = true;
	return 0;
}

void mig_pc_free(struct mig_postcopy *pc)
{
	if (!pc)
		return;
	if (pc->started) {
		atomic_store(&pc->stop, true);
		pthread_mutex_lock(&pc->wlock);
		if (pc->conn.fd >= 0)
			pc->conn.ops->shutdown(&pc->conn);
		pthread_mutex_unlock(&pc->wlock);
		pthread_join(pc->recv_thr, NULL);
		if (!atomic_load(&pc->done)) {
			pthread_join(pc->fault_thr, NULL);
			/*
			 * The VM stopped with pages missing: whoever still waits on
			 * one (a device thread) is woken and reads zero, and the VM
			 * is destroyed next, rather than hang its teardown.
			 */
			unregister_ram(pc);
		}
	}
	if (pc->conn.fd >= 0)
		mig_conn_close(&pc->conn);
	if (pc->uffd >= 0)
		close(pc->uffd);
	pthread_mutex_destroy(&pc->wlock);
	pc_pages_free(&pc->pp);
	free(pc);
}
