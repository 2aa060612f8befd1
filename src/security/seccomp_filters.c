/*
 * The allowlists, one group per purpose and one role per kind of thread.
 * Every rule says why the call is needed; arguments are pinned where they
 * widen what a thread can do (ioctl requests, socket families, PROT_EXEC).
 * tools/seccomp-audit checks them against strace's record of a real run.
 */
#include "security/seccomp_rules.h"

#include <linux/kvm.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#define ALLOW(call)                                                                                \
	{                                                                                          \
		.nr = SCMP_SYS(call)                                                               \
	}
#define ALLOW_EQ(call, a, v)                                                                       \
	{                                                                                          \
		.nr = SCMP_SYS(call), .op = SC_EQ, .arg = a, .value = v, .what = #v                \
	}
#define ALLOW_NO(call, a, m)                                                                       \
	{                                                                                          \
		.nr = SCMP_SYS(call), .op = SC_MASK_ZERO, .arg = a, .value = m, .what = "!" #m     \
	}
#define IOCTL(req) ALLOW_EQ(ioctl, 1, req)
#define GROUP(r)                                                                                   \
	{                                                                                          \
		.rules = r, .n = sizeof(r) / sizeof(r[0])                                          \
	}

/* Every thread. */
static const struct sc_rule base_rules[] = {
    ALLOW(futex),		      /* mutexes and condition variables */
    ALLOW(exit),		      /* a thread's end */
    ALLOW(exit_group),		      /* the SIGSYS handler ends the process */
    ALLOW(rt_sigreturn),	      /* return from a signal handler (the vCPU kick) */
    ALLOW(rt_sigprocmask),	      /* pthread_sigmask; the SIGSYS handler's mask */
    ALLOW(write),		      /* the SIGSYS handler's line; eventfd signals */
    ALLOW(madvise),		      /* malloc trims and thread stacks are released */
    ALLOW(munmap),		      /* malloc returns large blocks */
    ALLOW_NO(mmap, 2, PROT_EXEC),     /* malloc's arenas and large blocks, never code */
    ALLOW_NO(mprotect, 2, PROT_EXEC), /* malloc grows an arena's heap, never code */
    ALLOW(clock_gettime),	      /* timestamps when the vDSO cannot serve them */
    ALLOW(getpid),		      /* pthread_kill and raise ask it first */
};

/* A vCPU thread: KVM_RUN and what the exits it handles reach. */
static const struct sc_rule vcpu_rules[] = {
    IOCTL(KVM_RUN),		  /* the guest runs */
    IOCTL(KVM_IRQ_LINE),	  /* a legacy device (serial, i8042, RTC) raises its line */
    IOCTL(KVM_IOEVENTFD),	  /* the guest sets a virtqueue ready: its kick eventfd */
    IOCTL(KVM_IRQFD),		  /* ...and its interrupt eventfd */
    IOCTL(KVM_GET_REGS),	  /* registers in a crash's diagnostic */
    IOCTL(KVM_GET_SREGS),	  /* ...and the segment and control registers */
    ALLOW(read),		  /* eventfds (a device reset drains them) */
    ALLOW(epoll_ctl),		  /* a ready queue joins its device thread's epoll set */
    ALLOW(close),		  /* a reset device closes its eventfds */
    ALLOW(eventfd2),		  /* a queue set ready gets its kick and interrupt eventfds */
    ALLOW_EQ(tgkill, 2, SIGUSR1), /* a stopping VM kicks the other vCPUs */
};

/* Every virtio device thread (the transport's loop). */
static const struct sc_rule virtio_rules[] = {
    ALLOW(epoll_wait),	 /* the device's kick, stop and park eventfds */
    ALLOW(read),	 /* drain an eventfd */
    ALLOW(epoll_ctl),	 /* queues and back ends join and leave the set */
    ALLOW(close),	 /* a reset device closes what it opened */
    IOCTL(KVM_IRQ_LINE), /* an interrupt when no irqfd serves the queue */
};

/* virtio-blk: the image through io_uring, or plain calls for overlays and without it. */
static const struct sc_rule blk_rules[] = {
    ALLOW(io_uring_enter),  /* submit and reap requests */
    ALLOW(preadv),	    /* reads without io_uring and overlay reads */
    ALLOW(pwritev),	    /* writes without io_uring and overlay writes */
    ALLOW(pread64),	    /* the overlay's map and headers */
    ALLOW(pwrite64),	    /* the overlay's map and headers */
    ALLOW(fdatasync),	    /* a flush request, the overlay's map */
    ALLOW(fallocate),	    /* discard and write-zeroes */
    ALLOW(ftruncate),	    /* the overlay grows */
    ALLOW(copy_file_range), /* the overlay copies a cluster up */
    ALLOW(lseek),	    /* the overlay's data/hole walk */
    ALLOW(fstat),	    /* sizes */
};

/* virtio-net: frames to and from the TAP. */
static const struct sc_rule net_rules[] = {
    ALLOW(readv),	    /* a frame from the TAP into guest buffers */
    ALLOW(writev),	    /* a frame from the guest to the TAP */
    IOCTL(TUNSETOFFLOAD),   /* the guest's negotiated offloads reach the TAP */
    IOCTL(TUNSETVNETHDRSZ), /* the header size follows the negotiated features */
};

/* virtio-vsock: host side on Unix sockets. */
static const struct sc_rule vsock_rules[] = {
    ALLOW_EQ(socket, 0, AF_UNIX), /* a guest connection to a host port: Unix only */
    ALLOW(connect),		  /* ...to <socket>_<port> */
    ALLOW(accept4),		  /* a host connection to the guest */
    ALLOW(recvfrom),		  /* bytes and the "CONNECT <port>" line from the host */
    ALLOW(sendto),		  /* bytes to the host, "OK <port>" */
    ALLOW(sendmsg),		  /* bytes to the host from several guest buffers */
    ALLOW(readv),		  /* bytes from the host into guest buffers */
    ALLOW(shutdown),		  /* a half-closed stream */
    ALLOW(timerfd_create),	  /* connection and shutdown deadlines */
    ALLOW(timerfd_settime),	  /* ...armed */
    ALLOW(ioctl),		  /* FIONREAD: see docs; narrowed below */
};

/* virtio-rng: the host's entropy. */
static const struct sc_rule rng_rules[] = {
    ALLOW(getrandom), /* the guest's entropy */
};

/* The thread-pool back end of util/aio (no io_uring, or BANYAN_AIO=threads). */
static const struct sc_rule aio_rules[] = {
    ALLOW(preadv),	    /* a request's read */
    ALLOW(pwritev),	    /* a request's write */
    ALLOW(fdatasync),	    /* a flush */
    ALLOW(fallocate),	    /* discard, write-zeroes */
    ALLOW(clock_nanosleep), /* usleep between retries */
};

/* The output queues (log, console): util/writer. */
static const struct sc_rule writer_rules[] = {
    ALLOW(poll),	    /* wait for a slow reader (a terminal, a pipe) */
    ALLOW(close),	    /* the previous destination after a new one is set */
    ALLOW(clock_nanosleep), /* the idle tick */
};

/* The API's threads (libmicrohttpd's listener and one per connection). */
static const struct sc_rule api_rules[] = {
    ALLOW(accept4), /* a client */
    ALLOW(read),
    ALLOW(recvfrom),
    ALLOW(sendto),
    ALLOW(writev),
    ALLOW(poll),
    ALLOW(epoll_wait),
    ALLOW(epoll_ctl),
    ALLOW(epoll_create1),
    ALLOW(shutdown),
    ALLOW(close),
    ALLOW(clone3),
    ALLOW(clone),
    ALLOW(set_robust_list),
    ALLOW(rseq),
    ALLOW(openat),
    ALLOW(fstat),
    ALLOW(newfstatat),
    ALLOW(fsync),
    ALLOW(ftruncate),
    ALLOW(pwrite64),
    ALLOW(pread64),
    ALLOW(lseek),
    ALLOW(flock),
    ALLOW(getrandom),
    ALLOW(kill),
    ALLOW(mkdir),
    ALLOW(unlink),
    ALLOW(unlinkat),
    ALLOW(rename),
    ALLOW(renameat2),
    ALLOW(link),
    ALLOW(readlink),
    ALLOW(access),
    ALLOW(faccessat2),
    ALLOW(getdents64),
    ALLOW(rmdir),
    ALLOW(fcntl),
    ALLOW(pipe2),
    ALLOW(wait4),
    ALLOW_EQ(tgkill, 2, SIGUSR1),
    ALLOW(clock_nanosleep),
    ALLOW(eventfd2),
    ALLOW(ioctl),
};

/* The API's connection reaper. */
static const struct sc_rule reaper_rules[] = {
    ALLOW(shutdown), /* a connection past its deadline is cut */
};

/* The main thread: the event loop, and it builds every VM (reboots, restores). */
static const struct sc_rule main_rules[] = {
    ALLOW(epoll_wait),
    ALLOW(ioctl),
    ALLOW(openat),
};

static const struct sc_group base = GROUP(base_rules), vcpu = GROUP(vcpu_rules),
			     virtio = GROUP(virtio_rules), blk = GROUP(blk_rules),
			     net = GROUP(net_rules), vsock = GROUP(vsock_rules),
			     rng = GROUP(rng_rules), aio = GROUP(aio_rules),
			     writer = GROUP(writer_rules), api = GROUP(api_rules),
			     reaper = GROUP(reaper_rules), main_g = GROUP(main_rules);

const struct sc_role sc_roles[SC_ROLES] = {
    {"vcpu", "vcpu", {&base, &vcpu}},
    {"virtio-blk", "virtio-blk", {&base, &virtio, &blk}},
    {"virtio-net", "virtio-net", {&base, &virtio, &net}},
    {"virtio-vsock", "virtio-vsock", {&base, &virtio, &vsock}},
    {"virtio-rng", "virtio-rng", {&base, &virtio, &rng}},
    {"aio", "aio", {&base, &aio}},
    {"writer", "writer", {&base, &writer}},
    {"api", "api", {&base, &api}},
    {"api-reaper", "api-reaper", {&base, &reaper}},
    {"main",
     "",
     {&base, &main_g, &vcpu, &virtio, &blk, &net, &vsock, &rng, &aio, &writer, &api, &reaper}},
};
