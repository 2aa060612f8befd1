/*
 * The allowlists, one group per purpose and one role per kind of thread.
 * Every rule says why the call is needed; arguments are pinned where they
 * widen what a thread can do (ioctl requests, socket families, PROT_EXEC).
 * tools/seccomp-audit checks them against strace's record of a real run.
 */
#include "security/seccomp_rules.h"

#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/kvm.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <net/if.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <termios.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>

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
#define IOCTL(req)                                                                                 \
	{                                                                                          \
		.nr = SCMP_SYS(ioctl), .op = SC_EQ, .arg = 1, .value = req, .what = #req           \
	}
#define GROUP(r)                                                                                   \
	{                                                                                          \
		.rules = r, .n = sizeof(r) / sizeof(r[0])                                          \
	}

/* Every thread. */
static const struct sc_rule base_rules[] = {
    ALLOW(futex),		  /* mutexes and condition variables */
    ALLOW(exit),		  /* a thread's end */
    ALLOW(exit_group),		  /* the SIGSYS handler ends the process */
    ALLOW(rt_sigreturn),	  /* return from a signal handler (the vCPU kick) */
    ALLOW(restart_syscall),	  /* a wait stopped (SIGSTOP, a debugger) and continued resumes */
    ALLOW(rt_sigprocmask),	  /* pthread_sigmask; the SIGSYS handler's mask */
    ALLOW(write),		  /* the SIGSYS handler's line; eventfd signals */
    ALLOW(madvise),		  /* malloc trims and thread stacks are released */
    ALLOW(munmap),		  /* malloc returns large blocks */
    ALLOW_NO(mmap, 2, PROT_EXEC), /* malloc's arenas and large blocks, never code */
    ALLOW_NO(mprotect, 2, PROT_EXEC), /* malloc grows an arena's heap, never code */
    ALLOW(clock_gettime),	      /* timestamps when the vDSO cannot serve them */
    ALLOW(getpid),		      /* pthread_kill and raise ask it first */
    ALLOW_EQ(prctl, 0, PR_GET_NAME),  /* the SIGSYS handler names a thread it did not start */
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
    ALLOW(gettid),		  /* ...itself included: tgkill names the thread */
    ALLOW(clock_nanosleep),	  /* a throttled vCPU sleeps (migration's auto-converge) */
    /*
     * A device reset (the guest writes status 0) runs on the vCPU that
     * wrote it: virtio-net returns its TAP to plain frames, virtio-blk
     * reaps requests still in flight in its ring.
     */
    IOCTL(TUNSETOFFLOAD),
    ALLOW(io_uring_enter),
};

/* Every virtio device thread (the transport's loop). */
static const struct sc_rule virtio_rules[] = {
    ALLOW(epoll_wait),	    /* the device's kick, stop and park eventfds */
    ALLOW(read),	    /* drain an eventfd */
    ALLOW(epoll_ctl),	    /* queues and back ends join and leave the set */
    ALLOW(close),	    /* a reset device closes what it opened */
    IOCTL(KVM_IRQ_LINE),    /* an interrupt when no irqfd serves the queue */
    ALLOW(timerfd_settime), /* a rate limiter's wake-up; the metadata service's timers */
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
    ALLOW(getrandom),	    /* the metadata service's V2 session tokens */
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
    ALLOW(unlink),		  /* a listener's socket at reset */
};

/* virtio-rng: the host's entropy. */
static const struct sc_rule rng_rules[] = {
    ALLOW(getrandom), /* the guest's entropy */
};

/*
 * virtio-balloon: pages the guest gives back (vmm/guest_mem.c gm_release).
 * madvise (MADV_DONTNEED) and mmap (MAP_FIXED anonymous over a snapshot's
 * private mapping, never PROT_EXEC) are every thread's already.
 */
static const struct sc_rule balloon_rules[] = {
    ALLOW(fallocate), /* punch a hole in shared (memfd, hugetlbfs) guest memory */
    ALLOW(sysinfo),   /* glibc's qsort (page numbers into runs) sizes its buffer by free memory */
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

/* A named VM's console socket (vmm/console_sock.h): clients come, read and type. */
static const struct sc_rule consock_rules[] = {
    ALLOW(poll),    /* the output pipe, the listening socket, the clients */
    ALLOW(read),    /* output from the guest; a client's keys */
    ALLOW(accept4), /* a client attaches */
    ALLOW(sendto),  /* output and scrollback to a client (send, never blocking) */
    ALLOW(close),   /* a client detaches */
};

/* KVM state read while the VM is paused: snapshots (the API's PUT /snapshot/create). */
static const struct sc_rule kvm_save_rules[] = {
    IOCTL(KVM_GET_REGS),	       /* each vCPU's registers */
    IOCTL(KVM_GET_SREGS),	       /* segment and control registers */
    IOCTL(KVM_GET_FPU),		       /* FPU without XSAVE */
    IOCTL(KVM_GET_XSAVE),	       /* extended state */
    IOCTL(KVM_GET_XSAVE2),	       /* ...larger than 4 KiB (AMX) */
    IOCTL(KVM_GET_XCRS),	       /* XCR0 */
    IOCTL(KVM_GET_LAPIC),	       /* the local APIC */
    IOCTL(KVM_GET_MSRS),	       /* MSRs */
    IOCTL(KVM_GET_MSR_INDEX_LIST),     /* ...which ones (on /dev/kvm) */
    IOCTL(KVM_GET_CPUID2),	       /* the CPUID the guest saw */
    IOCTL(KVM_GET_VCPU_EVENTS),	       /* pending exceptions, NMIs */
    IOCTL(KVM_GET_MP_STATE),	       /* halted or runnable */
    IOCTL(KVM_GET_DEBUGREGS),	       /* debug registers */
    IOCTL(KVM_GET_TSC_KHZ),	       /* the TSC rate a restore must keep */
    IOCTL(KVM_GET_CLOCK),	       /* kvmclock */
    IOCTL(KVM_GET_IRQCHIP),	       /* PIC and IOAPIC */
    IOCTL(KVM_GET_PIT2),	       /* the PIT */
    IOCTL(KVM_CHECK_EXTENSION),	       /* which of the above the host has */
    IOCTL(KVM_GET_DIRTY_LOG),	       /* diff snapshots: pages written since the last */
    IOCTL(KVM_SET_USER_MEMORY_REGION), /* ...dirty logging switched on per memslot */
};

/* Snapshot files: the store (API), a restore or a disk's overlay (main). */
static const struct sc_rule files_rules[] = {
    ALLOW(openat),	    /* snapshot files, overlays, the clones' log */
    ALLOW(close),	    /* ...closed */
    ALLOW(read),	    /* manifests, sections */
    ALLOW(pread64),	    /* memory and sections at an offset */
    ALLOW(pwrite64),	    /* memory and sections written at an offset */
    ALLOW(lseek),	    /* sparse memory: data and holes */
    ALLOW(fstat),	    /* file kinds and sizes */
    ALLOW(newfstatat),	    /* stat, lstat: the path checks */
    ALLOW(fsync),	    /* a snapshot is durable before it is named */
    ALLOW(fdatasync),	    /* ...its memory file */
    ALLOW(ftruncate),	    /* the memory file's size */
    ALLOW(flock),	    /* a store entry or disk is locked while in use */
    ALLOW(mkdir),	    /* a snapshot directory */
    ALLOW(rename),	    /* the finished snapshot takes its name */
    ALLOW(renameat2),	    /* ...without replacing (RENAME_NOREPLACE) */
    ALLOW(link),	    /* an unchanged disk joins the snapshot */
    ALLOW(unlink),	    /* an abandoned temporary file */
    ALLOW(unlinkat),	    /* ...a temporary directory's files */
    ALLOW(rmdir),	    /* ...and the directory */
    ALLOW(readlink),	    /* realpath of the store */
    ALLOW(getcwd),	    /* ...of a relative path (a restore's, its lineage) */
    ALLOW(access),	    /* does a parent snapshot exist */
    ALLOW(faccessat2),	    /* ...(glibc's faccessat) */
    ALLOW(getdents64),	    /* the store's entries */
    ALLOW(mincore),	    /* a memory snapshot skips pages never touched (no pagemap, no swap) */
    ALLOW(sysinfo),	    /* ...is there swap (snapshot/mem_origin.h) */
    ALLOW(symlink),	    /* a snapshot's link to its parent */
    ALLOW(getrandom),	    /* snapshot ids, the VM generation id */
    ALLOW(copy_file_range), /* an overlay's copy into the snapshot */
    ALLOW_EQ(kill, 1, 0),   /* kill(pid, 0): is a lock's owner alive */
    ALLOW(fcntl),	    /* close-on-exec, file flags */
};

/* Threads of ours that start threads (the API's executor, the main thread). */
static const struct sc_rule spawn_rules[] = {
    ALLOW(clone3),				   /* pthread_create */
    ALLOW(clone),				   /* ...older glibc, and fork */
    ALLOW(set_robust_list),			   /* a new thread's first call */
    ALLOW(rseq),				   /* ...and its second */
    ALLOW_EQ(prctl, 0, PR_SET_NAME),		   /* a new thread names itself */
    ALLOW_EQ(seccomp, 0, SECCOMP_SET_MODE_FILTER), /* ...and installs its own filter */
};

/*
 * The API's HTTP thread: libmicrohttpd's event loop on its socket and
 * connections, nothing else. Every handler runs on the executor.
 */
static const struct sc_rule api_rules[] = {
    ALLOW(poll),	/* the loop waits on MHD's epoll set and its stop eventfd */
    ALLOW(epoll_wait),	/* MHD's set */
    ALLOW(epoll_ctl),	/* ...a connection joins and leaves it */
    ALLOW(accept4),	/* a client */
    ALLOW(recvfrom),	/* its request */
    ALLOW(sendto),	/* the answer */
    ALLOW(sendmsg),	/* ...in pieces */
    ALLOW(writev),	/* ...header and body */
    ALLOW(read),	/* MHD's wake-up eventfd (a resumed connection) */
    ALLOW(shutdown),	/* a connection ends */
    ALLOW(close),	/* ...and is closed */
    ALLOW(getsockopt),	/* MHD checks an accepted socket */
    ALLOW(getsockname), /* ...and its address */
    ALLOW(fcntl),	/* the reaper's duplicate of a connection; MHD's socket flags */
};

/* The API's executor: what requests make the VMM do (with files, kvm_save, migrate). */
static const struct sc_rule api_exec_rules[] = {
    ALLOW(pipe2),		  /* the clones' pid pipe */
    ALLOW(wait4),		  /* the clones' middle child */
    ALLOW_EQ(tgkill, 2, SIGUSR1), /* pause kicks the vCPUs */
    ALLOW(gettid),		  /* ...tgkill names the thread */
    ALLOW(clock_nanosleep),	  /* the drain's waits */
    IOCTL(FIONREAD),		  /* the metrics FIFO's backlog */
    IOCTL(KVM_IRQ_LINE),	  /* a resumed device raises its line */
    ALLOW(sysinfo),		  /* glibc's qsort sizes its buffer by the free memory */
    ALLOW(dup3),		  /* PUT /logger: the new file takes the log's descriptor */
    ALLOW(sched_getaffinity),	  /* --cpu-affinity / machine-config: the CPUs the VMM may use */
    IOCTL(TUNGETFEATURES),	  /* PUT /network-interfaces checks its TAP (Firecracker's rule) */
    IOCTL(TUNSETIFF),		  /* ...attaches to it */
    IOCTL(TUNGETIFF),		  /* ...checks it */
    IOCTL(SIOCGIFINDEX),	  /* ...by its index (if_nametoindex) */
    IOCTL(TUNSETVNETHDRSZ),	  /* ...sets its header size */
    IOCTL(TUNSETOFFLOAD),	  /* ...and tries its offloads, then closes it */
    ALLOW(timerfd_settime),	  /* PATCH of a rate limiter wakes its throttled device */
};

/*
 * Live migration's stream (src/migration): the source's thread, which the
 * API's executor starts (so it runs under the executor's filter), and the destination's
 * receive on the main thread. TCP or Unix; getaddrinfo may sort addresses
 * through a routing netlink socket.
 */
static const struct sc_rule migrate_rules[] = {
    ALLOW_EQ(socket, 0, AF_INET),    /* tcp: */
    ALLOW_EQ(socket, 0, AF_INET6),   /* ...over IPv6 */
    ALLOW_EQ(socket, 0, AF_UNIX),    /* unix: */
    ALLOW_EQ(socket, 0, AF_NETLINK), /* getaddrinfo's address sorting */
    ALLOW(connect),		     /* the source reaches the destination */
    ALLOW(bind),		     /* the destination listens */
    ALLOW(listen),		     /* ...*/
    ALLOW(accept4),		     /* ...and takes one source */
    ALLOW(setsockopt),		     /* stream timeouts, TCP_NODELAY */
    ALLOW(getsockname),		     /* getaddrinfo's address sorting */
    ALLOW(recvfrom),		     /* the stream (recv) */
    ALLOW(sendto),		     /* ...(send) */
    ALLOW(recvmsg),		     /* getaddrinfo's netlink answer; unix: a memfd */
    ALLOW(sendmsg),		     /* TLS records (GnuTLS); unix: the memfd sent */
    ALLOW(getrandom),		     /* TLS nonces and key shares (GnuTLS) */
    ALLOW(fstatfs),		     /* a memfd received: on tmpfs */
    ALLOW(poll),		     /* the destination waits for its source or a cancel */
    ALLOW(shutdown),		     /* cancel cuts the stream */
    ALLOW(fcntl),		     /* blocking mode for the accepted stream */
    ALLOW(mincore),		     /* pages never touched are not sent (no pagemap, no swap) */
    ALLOW(sysinfo),		     /* ...is there swap (snapshot/mem_origin.h) */
    ALLOW(clock_nanosleep),	     /* the bandwidth cap */
};

/*
 * Post-copy's threads at a migration's destination (migration/postcopy.c):
 * faults read from the userfaultfd, pages placed, the source's stream.
 */
static const struct sc_rule postcopy_rules[] = {
    ALLOW(poll),		  /* the fault thread waits for faults, a slice at a time */
    ALLOW(read),		  /* ...reads them */
    IOCTL(UFFDIO_COPY),		  /* a page from the source placed (wakes its waiters) */
    IOCTL(UFFDIO_ZEROPAGE),	  /* a page that never had data placed as zero */
    IOCTL(UFFDIO_UNREGISTER),	  /* every page here: the registration ends */
    ALLOW(recvfrom),		  /* the source's stream (recv) */
    ALLOW(sendto),		  /* ...requests and keep-alives (send) */
    ALLOW(recvmsg),		  /* unix: streams read with recvmsg (they may carry a memfd) */
    ALLOW(sendmsg),		  /* ...and written with sendmsg */
    ALLOW(shutdown),		  /* the source lost: the other thread's wait ends */
    ALLOW(close),		  /* the stream closed once every page arrived */
    ALLOW_EQ(tgkill, 2, SIGUSR1), /* the source lost: the VM stops, its vCPUs kicked */
    ALLOW(gettid),		  /* ...(pthread_kill) */
    ALLOW(clock_nanosleep),	  /* ...and the grace before a stuck process is ended */
};

/* The main thread sets post-copy up while it loads an incoming VM (migration/postcopy.c). */
static const struct sc_rule uffd_setup_rules[] = {
    ALLOW(userfaultfd),		/* guest RAM's missing pages are served from user space */
    IOCTL(USERFAULTFD_IOC_NEW), /* ...through /dev/userfaultfd where only that is allowed */
    IOCTL(UFFDIO_API),		/* ...its features */
    IOCTL(UFFDIO_REGISTER),	/* ...guest RAM registered, missing mode */
};

/* The metrics file's writer: a line every 60 s and at stop (the file is opened by the API). */
static const struct sc_rule metrics_rules[] = {
    ALLOW(fstat),		      /* is the file a FIFO */
    ALLOW(newfstatat),		      /* ...(glibc's fstat) */
    ALLOW_EQ(fcntl, 1, F_GETPIPE_SZ), /* ...its size */
    IOCTL(FIONREAD),		      /* ...and backlog: a line is written whole or not at all */
    ALLOW(openat), /* the memory group: /proc/self/smaps_rollup and smaps (vmm/mem_stats.c) */
    ALLOW(read),   /* ...read */
    ALLOW(close),  /* ...and closed */
};

/* The API's connection reaper. */
static const struct sc_rule reaper_rules[] = {
    ALLOW(shutdown), /* a connection past its deadline is cut */
};

/*
 * The main thread: the event loop and the console, and it builds every VM
 * (the first, a restart, a restore). Its filter stacks under every thread
 * it starts afterwards, so its role also allows what each of them does.
 */
static const struct sc_rule main_rules[] = {
    ALLOW(epoll_wait),		      /* the event loop */
    ALLOW(epoll_ctl),		      /* ...its set */
    ALLOW(epoll_create1),	      /* a device thread's set */
    ALLOW(eventfd2),		      /* exit, kick and interrupt eventfds */
    ALLOW(timerfd_create),	      /* vsock's deadlines */
    ALLOW(io_uring_setup),	      /* a disk's ring (util/aio.c) */
    ALLOW_EQ(socket, 0, AF_UNIX),     /* the vsock host socket */
    ALLOW(bind),		      /* ...bound */
    ALLOW(listen),		      /* ...listening */
    ALLOW(chmod),		      /* ...0600 */
    ALLOW(rt_sigaction),	      /* the vCPU kick handler, set for each VM */
    ALLOW(memfd_create),	      /* a restart's or restore's RAM on huge pages */
    IOCTL(KVM_GET_API_VERSION),	      /* /dev/kvm is usable */
    IOCTL(KVM_CREATE_VM),	      /* a VM */
    IOCTL(KVM_GET_VCPU_MMAP_SIZE),    /* the kvm_run area */
    IOCTL(KVM_CREATE_VCPU),	      /* its vCPUs */
    IOCTL(KVM_GET_SUPPORTED_CPUID),   /* the CPUID given to the guest */
    IOCTL(KVM_SET_CPUID2),	      /* ...set */
    IOCTL(KVM_SET_TSS_ADDR),	      /* x86 setup */
    IOCTL(KVM_SET_IDENTITY_MAP_ADDR), /* ...its identity map */
    IOCTL(KVM_CREATE_IRQCHIP),	      /* the in-kernel PIC, IOAPIC, LAPICs */
    IOCTL(KVM_CREATE_PIT2),	      /* the PIT */
    IOCTL(KVM_SET_REGS),	      /* boot registers; a restore's */
    IOCTL(KVM_SET_SREGS),	      /* ...segments and control registers */
    IOCTL(KVM_SET_FPU),		      /* ...FPU */
    IOCTL(KVM_SET_MSRS),	      /* ...MSRs */
    IOCTL(KVM_SET_LAPIC),	      /* ...local APIC */
    IOCTL(KVM_SET_XSAVE),	      /* a restore: extended state */
    IOCTL(KVM_SET_XCRS),	      /* ...XCR0 */
    IOCTL(KVM_SET_VCPU_EVENTS),	      /* ...pending events */
    IOCTL(KVM_SET_MP_STATE),	      /* ...halted or runnable */
    IOCTL(KVM_SET_DEBUGREGS),	      /* ...debug registers */
    IOCTL(KVM_SET_TSC_KHZ),	      /* ...the TSC rate */
    IOCTL(KVM_SET_CLOCK),	      /* ...kvmclock */
    IOCTL(KVM_SET_IRQCHIP),	      /* ...PIC and IOAPIC */
    IOCTL(KVM_SET_PIT2),	      /* ...the PIT */
    IOCTL(TUNSETIFF),		      /* a NIC attaches to its TAP */
    IOCTL(TUNGETIFF),		      /* ...checks it */
    IOCTL(TUNGETFEATURES),	      /* ...and its features */
    IOCTL(SIOCGIFINDEX),	      /* ...by its index (if_nametoindex) */
    ALLOW(brk),			      /* malloc's main arena is the main thread's */
    IOCTL(TCGETS),		      /* the console: is it a terminal, its mode */
    IOCTL(TCSETS),		      /* ...raw while the VM runs, restored after */
    ALLOW(sched_getaffinity),	      /* --cpu-affinity: the CPUs the VMM may use */
    ALLOW(sched_setaffinity),	      /* ...vCPU and device threads placed on theirs */
    /*
     * A disk's ring (util/aio.c): its completion eventfd, its restrictions
     * (the opcodes a disk uses), then enabled. Nothing else: once enabled
     * the ring refuses every registration itself.
     */
    ALLOW_EQ(io_uring_register, 1, IORING_REGISTER_EVENTFD),
    ALLOW_EQ(io_uring_register, 1, IORING_REGISTER_RESTRICTIONS),
    ALLOW_EQ(io_uring_register, 1, IORING_REGISTER_ENABLE_RINGS),
};

/*
 * Sanitizer builds only (ASan/LSan/UBSan, tests): the runtime's own calls,
 * in every thread. Never in a production build.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define BANYAN_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define BANYAN_SANITIZED 1
#endif
#ifdef BANYAN_SANITIZED
static const struct sc_rule sanitizer_rules[] = {
    ALLOW(sigaltstack),	      /* each thread's alternate signal stack, set up and removed */
    ALLOW(sched_yield),	      /* the runtime's spin locks */
    ALLOW(openat),	      /* reports and the leak check read /proc/self/maps, /proc/self/task */
    ALLOW(read),	      /* ...*/
    ALLOW(close),	      /* ...*/
    ALLOW(getdents64),	      /* ...the leak check lists the threads */
    ALLOW(open),	      /* ...with the runtime's raw calls (its own syscall wrappers) */
    ALLOW(getdents),	      /* ...*/
    ALLOW(readlink),	      /* ...and names the binary */
    ALLOW(prctl),	      /* the leak check's tracer: dumpable, parent death signal */
    ALLOW(clone),	      /* ...started at exit */
    ALLOW(ptrace),	      /* ...stops every thread to scan its stack and registers */
    ALLOW(wait4),	      /* ...and is waited for */
    ALLOW(getppid),	      /* ...and watches its parent */
    ALLOW(sched_getaffinity), /* a new thread's stack bounds */
    ALLOW(gettid),	      /* the runtime's thread registry */
    ALLOW(tgkill),	      /* ...and its reports */
    ALLOW(rt_sigaction),      /* the runtime's deadly-signal handlers */
    ALLOW(newfstatat),	      /* report symbolization */
    ALLOW(fstat),	      /* ...*/
    ALLOW(getpid),	      /* ...*/
    ALLOW(mremap),	      /* the runtime's internal vectors */
};
#define SAN , &sanitizer
#else
#define SAN
#endif

static const struct sc_group base = GROUP(base_rules), vcpu = GROUP(vcpu_rules),
			     virtio = GROUP(virtio_rules), blk = GROUP(blk_rules),
			     net = GROUP(net_rules), vsock = GROUP(vsock_rules),
			     rng = GROUP(rng_rules), aio = GROUP(aio_rules),
			     balloon = GROUP(balloon_rules), writer = GROUP(writer_rules),
			     api = GROUP(api_rules), api_exec = GROUP(api_exec_rules),
			     metrics = GROUP(metrics_rules), reaper = GROUP(reaper_rules),
			     main_g = GROUP(main_rules), kvm_save = GROUP(kvm_save_rules),
			     files = GROUP(files_rules), migrate = GROUP(migrate_rules),
			     spawn = GROUP(spawn_rules), consock = GROUP(consock_rules),
			     postcopy = GROUP(postcopy_rules), uffd_setup = GROUP(uffd_setup_rules);
#ifdef BANYAN_SANITIZED
static const struct sc_group sanitizer = GROUP(sanitizer_rules);
#endif

const struct sc_role sc_roles[SC_ROLES] = {
    {"vcpu", "vcpu", NULL, {&base, &vcpu SAN}},
    {"virtio-blk", "virtio-blk", NULL, {&base, &virtio, &blk SAN}},
    {"virtio-net", "virtio-net", NULL, {&base, &virtio, &net SAN}},
    {"virtio-vsock", "virtio-vsock", NULL, {&base, &virtio, &vsock SAN}},
    {"virtio-rng", "virtio-rng", NULL, {&base, &virtio, &rng SAN}},
    {"virtio-balloon", "virtio-balloon", NULL, {&base, &virtio, &balloon SAN}},
    {"aio", "aio", NULL, {&base, &aio SAN}},
    {"writer", "writer", NULL, {&base, &writer SAN}},
    {"api", "api", NULL, {&base, &api SAN}},
    {"api-exec", "api-exec", NULL, {&base, &api_exec, &spawn, &files, &kvm_save, &migrate SAN}},
    {"api-reaper", "api-reaper", NULL, {&base, &reaper SAN}},
    {"metrics", "metrics", NULL, {&base, &metrics SAN}},
    {"console-sock", "console-sock", NULL, {&base, &consock SAN}},
    {"postcopy", "postcopy", NULL, {&base, &postcopy SAN}},
    {"main", "", NULL, {&base,	  &main_g,  &spawn,    &files,	       &kvm_save, &vcpu,
			&virtio,  &blk,	    &net,      &vsock,	       &rng,	  &balloon,
			&aio,	  &writer,  &api,      &api_exec,      &reaper,	  &metrics,
			&migrate, &consock, &postcopy, &uffd_setup SAN}},
};
