/*
 * A virtual machine: the KVM VM and its vCPUs, guest memory, the PIO and
 * MMIO buses, and the devices. Everything hangs off struct vm; there is no
 * global machine state, so tests can build several VMs in one process.
 */
#ifndef BANYAN_VMM_VM_H
#define BANYAN_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/token_bucket.h"
#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/guest_mem.h"
#include "vmm/mem_backing.h"

#define VM_MAX_CPUS 254 /* xAPIC IDs 0..253; 255 is broadcast */

/*
 * Guest RAM, in whole MiB: at least what the boot structures, a kernel and
 * its initrd need below the device hole; at most 1 TiB, the most the
 * snapshot format accepts and the memory map is laid out for.
 */
#define VM_MEM_MIN (32ULL << 20)
#define VM_MEM_MAX (1ULL << 40)

enum on_reboot {
	ON_REBOOT_EXIT,	   /* the guest's reboot ends the process with status 0 */
	ON_REBOOT_RESTART, /* a fresh VM boots from the same configuration */
};

#define VM_MAX_DISKS 16 /* the machine's virtio devices in all are fewer (arch) */

enum disk_cache {
	DISK_CACHE_WRITEBACK, /* host page cache; FLUSH reaches stable storage */
	DISK_CACHE_NONE,      /* O_DIRECT */
};

struct disk_config {
	const char *path;
	const char *id; /* GET_ID serial (its first 20 bytes), /dev/disk/by-id; NULL: derived */
	bool read_only;
	enum disk_cache cache;
	/* Copy-on-write overlay file: @path is then only read (virtio/blk_overlay.h). */
	const char *overlay;
	struct rl_config limit; /* rate limiter: reads and writes together */
};

#define VM_MAX_NETS 8

struct mmds;

/* A virtio-net interface on a host TAP device (docs/networking.md). */
struct net_config {
	const char *tap; /* host TAP interface, created beforehand by the operator */
	const char *id;	 /* interface id (the API's iface_id); NULL: "netN" */
	uint8_t mac[6];
	bool has_mac;	    /* false: a stable one derived from tap and id */
	struct mmds *mmds;  /* serve this metadata store (mmds/mmds.h) on the card; NULL: none */
	uint32_t mmds_ipv4; /* ... at this address, host byte order */
	struct rl_config rx_limit; /* rate limiters: frames to the guest */
	struct rl_config tx_limit; /* frames from the guest */
};

/* A virtio-vsock device whose host side is Unix sockets (Firecracker's model). */
struct vsock_config {
	uint32_t cid;	      /* guest CID, >= 3; 0: no vsock device */
	const char *uds_path; /* host processes connect here; guest connects reach PATH_port */
	/* A host connection's "CONNECT <port>" line must come within this; 0: 5000 (tests shorten
	 * it). */
	unsigned int handshake_ms;
};

/* The memory balloon, virtio-balloon (docs/memory.md). */
struct balloon_config {
	bool enabled;
	uint32_t amount_mib;	   /* the balloon's target size: memory taken from the guest */
	bool deflate_on_oom;	   /* VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	uint32_t stats_interval_s; /* statistics polling; 0: no statistics queue */
	bool reporting;		   /* free page reporting (VIRTIO_BALLOON_F_REPORTING) */
};

/* Opt-in devices for test kernels and firmware interfaces (--device, docs/guests.md). */
enum extra_device {
	EXTRA_DEBUG_EXIT, /* QEMU's isa-debug-exit */
	EXTRA_TESTDEV,	  /* QEMU's pc-testdev */
	EXTRA_FW_CFG,	  /* QEMU's fw_cfg, with the files below */
	EXTRA_BOOT_TIMER, /* Firecracker's boot timer (devices/boot_timer.h) */
};

/* A user file of the fw_cfg device: @name holding @path's contents, or @string. */
struct fw_cfg_file_config {
	const char *name; /* "opt/..." */
	const char *path; /* NULL: @string */
	const char *string;
};

#define VM_MAX_FW_CFG_FILES 8

struct extra_device_config {
	enum extra_device kind;
	uint16_t iobase; /* debug-exit: its port */
	uint8_t iosize;	 /* debug-exit: 1, 2 or 4 ports */
};

#define VM_MAX_EXTRA_DEVICES 4

/* A multiboot module: one --initrd FILE[,cmdline=TEXT]. */
struct boot_module {
	const char *path;
	const char *cmdline; /* NULL: none */
};

#define VM_MAX_MODULES 16

struct vmcfg;
struct cpu_template; /* arch/x86/cpu_template.h */

/*
 * The whole machine as the VMM runs it, built from the machine's one
 * description, the JSON document (struct vmcfg, config/vmcfg.h), by
 * vmcfg_to_vm_config. Strings are not owned: they point into that
 * document, which lives as long as the VM.
 */
struct vm_config {
	const struct vmcfg *doc; /* what this was built from: snapshots record it */
	const char *kernel_path;
	const char *initrd_path; /* NULL: none */
	const char *cmdline;
	/*
	 * The command line as the operator gave it (NULL: none). cmdline has
	 * Linux's default and the root device added; a multiboot kernel gets
	 * this, after its own path, as QEMU's loader does.
	 */
	const char *boot_args;
	/* Multiboot modules; when there are any, initrd_path is NULL. */
	struct boot_module modules[VM_MAX_MODULES];
	unsigned int nmodules;
	unsigned int ncpus;
	uint64_t mem_size;
	struct mem_backing mem_backing; /* huge pages, KSM, prefault */
	enum on_reboot on_reboot;
	bool no_irqchip;	  /* tests only: HLT and interrupts go to user space */
	const char *cpu_affinity; /* thread placement (util/parse.h); NULL or "": none */
	const struct cpu_template *cpu_template; /* CPUID and MSR modifiers; NULL: none */
	int console_out_fd;			 /* where the serial console writes (stdout) */
	struct disk_config disks[VM_MAX_DISKS];
	unsigned int ndisks;
	bool rng; /* virtio-rng */
	struct rl_config rng_limit;
	struct net_config nets[VM_MAX_NETS];
	unsigned int nnets;
	struct vsock_config vsock;
	struct balloon_config balloon;
	struct extra_device_config extra[VM_MAX_EXTRA_DEVICES];
	unsigned int nextra;
	struct fw_cfg_file_config fw_cfg_files[VM_MAX_FW_CFG_FILES];
	unsigned int nfw_cfg_files;
	struct mmds *mmds; /* the metadata store, owned by the run loop; NULL: none */
	/* Snapshot restore (src/snapshot): map RAM from this file, MAP_PRIVATE; no kernel load. */
	const char *mem_path;
	/*
	 * An incoming same-host upgrade: RAM is this memfd, checked by the
	 * migration layer and mapped shared as it is (contents untouched).
	 * vm_create owns it from the call on, whatever it returns.
	 */
	bool mem_fd_given;
	int mem_fd;
	bool restoring;		  /* state comes from a snapshot: no boot registers, no ACPI */
	struct dev_instance inst; /* a restored copy's place (device.h); zero for a boot */
};

/* Why a VM stopped; the first reason recorded wins. */
enum vm_exit {
	VM_EXIT_NONE,
	VM_EXIT_POWEROFF,     /* guest powered off (ACPI S5) */
	VM_EXIT_REBOOT,	      /* guest asked for a reset */
	VM_EXIT_HALTED,	      /* every vCPU halted with no interrupt controller (tests) */
	VM_EXIT_CRASH,	      /* triple fault, KVM internal error, unhandled exit */
	VM_EXIT_HOST_ERROR,   /* a host-side failure after the VM started */
	VM_EXIT_USER,	      /* the console's quit escape or a signal */
	VM_EXIT_GUEST_STATUS, /* the guest chose the exit status (debug-exit; vm->guest_status) */
	VM_EXIT_MIGRATED,     /* the VM now runs at a migration's destination */
};

struct vcpu;
struct vm_arch;

struct vm {
	struct vm_config cfg;
	int kvm_fd;
	int vm_fd;
	int run_size; /* mmap size of struct kvm_run */
	struct guest_mem mem;
	void *mem_base; /* one mapping backing every region */
	uint64_t mem_map_size;
	int mem_fd; /* the memfd behind mem_base (mem_backing.shared), or -1; owned */
	/*
	 * The snapshot memory file mapped privately under mem_base (a restore
	 * without huge or shared pages), or -1; owned. Its holes tell the next
	 * snapshot which untouched pages are zero without reading them.
	 */
	int snap_mem_fd;
	struct bus pio;
	struct bus mmio;
	struct device *devices;	      /* every device, in creation order, for save/restore/clone */
	struct device **devices_tail; /* where vm_add_device links the next one */
	struct device *console;	      /* the serial device the console feeds */
	struct dev_host host;	      /* what devices may ask of this VM */
	struct vcpu *vcpus;
	unsigned int ncpus;
	struct vm_arch *arch;	/* boot entry, supported CPUID, ... */
	struct vm_dirty *dirty; /* dirty-page tracking (dirty_log.h); NULL until started */

	int exit_fd;		   /* eventfd: readable once the VM has stopped */
	pthread_mutex_t exit_lock; /* protects exit_reason, exit_detail */
	enum vm_exit exit_reason;
	char exit_detail[512];
	int guest_status;     /* VM_EXIT_GUEST_STATUS: the process exit status the guest chose */
	atomic_bool stopping; /* vCPUs leave their loops when set */
	atomic_uint halted_vcpus; /* no_irqchip only */
	atomic_uint throttle_pct; /* vm_throttle: share of each time slice the vCPUs sleep */

	pthread_mutex_t pause_lock; /* protects paused, npaused, nactive */
	pthread_cond_t pause_cond;  /* vCPUs wait on it while paused; vm_pause waits for them */
	bool paused;
	unsigned int npaused; /* vCPU threads waiting at the pause point */
	unsigned int nactive; /* vCPU threads still inside their loop */
	bool started;	      /* vm_start ran: the vCPU threads exist (or were tried) */
	uint64_t setup_ns;    /* how long vm_create took */
	uint64_t start_ns;    /* CLOCK_MONOTONIC time of vm_start */
};

/*
 * vm_prepare_host - what every vm_create in this process asks the host's
 * KVM once and keeps (arch_host_prepare): call it before forking processes
 * that each create a VM, so they inherit the answer. 0 or -errno; on
 * failure each vm_create asks again and reports.
 */
int vm_prepare_host(void);

/*
 * vm_create - open KVM, create the VM, map guest memory, create the
 * vCPUs, the platform devices, and load the kernel (everything that can fail
 * fails here, before anything runs). Returns 0 or -errno with one clear log
 * line; on failure *@out is untouched and nothing is left open.
 */
int vm_create(const struct vm_config *cfg, struct vm **out) __attribute__((warn_unused_result));

/*
 * vm_start - start one thread per vCPU; once (a later call does nothing).
 * A VM paused before it (vm_pause) gets its threads parked at their pause
 * point, so that creating them is not part of a later resume's cost.
 * Returns 0 or -errno.
 */
int vm_start(struct vm *vm) __attribute__((warn_unused_result));

/*
 * vm_wait_parked - for a VM paused before vm_start: wait until every vCPU
 * thread has started (its filter installed) and waits at its pause point.
 */
void vm_wait_parked(struct vm *vm);

/*
 * vm_request_exit - record why the VM stops (only the first call counts),
 * stop every vCPU and wake whoever waits on exit_fd. Safe from any thread,
 * never from a signal handler. @detail may be NULL.
 */
void vm_request_exit(struct vm *vm, enum vm_exit reason, const char *detail);

/* vm_join - wait for every vCPU thread to leave; returns the exit reason. */
enum vm_exit vm_join(struct vm *vm);

/*
 * vm_pause - quiesce the whole machine (docs/architecture.md, "Pause and
 * resume"): stop every vCPU outside KVM_RUN (set each vCPU's request flag,
 * kick it, wait until every vCPU thread waits at its pause point or has
 * left its loop), flush console output the guest wrote before for up to
 * 200 ms (a stalled reader never holds a pause longer), then pause every
 * device (device_ops.pause: in-flight I/O finished, device threads
 * parked). Afterwards neither guest memory nor any device or vCPU state
 * changes until vm_resume, except through the caller (snapshot restore,
 * the console's input from the event loop). Idempotent. Never call it
 * from a vCPU or device thread.
 */
void vm_pause(struct vm *vm);

/*
 * vm_throttle - slow the vCPUs down (live migration's auto-converge, as
 * QEMU's cpu-throttle): each vCPU sleeps @pct % of every VM_THROTTLE_SLICE_MS
 * slice it would run (0: full speed, at most 99), and is kicked so that one
 * looping inside the guest without exits notices. Call vm_throttle_kick
 * every slice while it lasts. Any thread but a vCPU's.
 */
#define VM_THROTTLE_SLICE_MS 10
void vm_throttle(struct vm *vm, unsigned int pct);

/* vm_throttle_kick - kick every vCPU out of KVM_RUN when throttled (else nothing). */
void vm_throttle_kick(struct vm *vm);

/*
 * vm_resume - resume every device, then let the vCPUs run again; what
 * waited meanwhile (queue kicks, host input) is served. Idempotent.
 */
void vm_resume(struct vm *vm);

/* vm_is_paused - the VM is paused (vm_pause returned, no vm_resume since). */
bool vm_is_paused(struct vm *vm);

/* vm_find_device - the device whose id is @id, or NULL. */
struct device *vm_find_device(struct vm *vm, const char *id);

/*
 * vm_add_device - put @dev at the end of the device list (it now belongs to
 * the VM). The list keeps creation order: snapshots save devices in it,
 * and the arch code describes them to the guest in it.
 */
void vm_add_device(struct vm *vm, struct device *dev);

/* vm_destroy - free everything; the vCPU threads must have been joined. */
void vm_destroy(struct vm *vm);

/* vm_exit_name - "poweroff", "reboot", ... for logs and the API. */
const char *vm_exit_name(enum vm_exit reason);

#endif
