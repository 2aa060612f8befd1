/* VM lifecycle: create (KVM, memory, vCPUs, devices, boot), start, stop, destroy. */
#include "vmm/vm.h"

#include "vmm/kvm.h"
#include "util/efd.h"
#include "util/clock.h"
#include "util/parse.h"

#include "util/file.h"
#include "util/log.h"
#include "vmm/arch.h"
#include "vmm/dirty_log.h"
#include "vmm/vcpu.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *vm_exit_name(enum vm_exit reason)
{
	static const char *const names[] = {
	    [VM_EXIT_NONE] = "running",	     [VM_EXIT_POWEROFF] = "poweroff",
	    [VM_EXIT_REBOOT] = "reboot",     [VM_EXIT_HALTED] = "halted",
	    [VM_EXIT_CRASH] = "crash",	     [VM_EXIT_HOST_ERROR] = "host-error",
	    [VM_EXIT_USER] = "user-quit",    [VM_EXIT_GUEST_STATUS] = "guest-exit",
	    [VM_EXIT_MIGRATED] = "migrated",
	};

	return (unsigned int)reason < sizeof(names) / sizeof(names[0]) ? names[reason] : "?";
}

static void vm_host_set_irq(struct dev_host *host, uint32_t gsi, bool level)
{
	struct vm *vm = container_of(host, struct vm, host);
	struct kvm_irq_level irq = {.irq = gsi, .level = level};

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_guest_warn(vm, "KVM_IRQ_LINE gsi %u: %s", gsi, strerror(errno));
}

static void vm_host_request(struct dev_host *host, enum vm_request req)
{
	struct vm *vm = container_of(host, struct vm, host);

	if (req == VM_REQUEST_POWEROFF)
		vm_request_exit(vm, VM_EXIT_POWEROFF, "guest powered off");
	else
		vm_request_exit(vm, VM_EXIT_REBOOT, "guest requested a reset");
}

static void vm_host_guest_exit(struct dev_host *host, int status)
{
	struct vm *vm = container_of(host, struct vm, host);
	char detail[64];

	snprintf(detail, sizeof(detail), "guest chose exit status %d", status);
	pthread_mutex_lock(&vm->exit_lock);
	if (vm->exit_reason == VM_EXIT_NONE)
		vm->guest_status = status;
	pthread_mutex_unlock(&vm->exit_lock);
	vm_request_exit(vm, VM_EXIT_GUEST_STATUS, detail);
}

static int vm_host_ioeventfd(struct dev_host *host, uint64_t addr, uint32_t len, uint64_t datamatch,
			     int fd, bool assign)
{
	struct vm *vm = container_of(host, struct vm, host);
	struct kvm_ioeventfd io = {
	    .datamatch = datamatch,
	    .addr = addr,
	    .len = len,
	    .fd = fd,
	    .flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return __kvm_ioctl(vm->vm_fd, KVM_IOEVENTFD, &io);
}

static int vm_host_irqfd(struct dev_host *host, uint32_t gsi, int fd, int resample_fd, bool assign)
{
	struct vm *vm = container_of(host, struct vm, host);
	struct kvm_irqfd irqfd = {.fd = (uint32_t)fd, .gsi = gsi};

	if (vm->cfg.no_irqchip)
		return -ENODEV;
	if (!assign)
		irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
	else if (resample_fd >= 0) {
		irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
		irqfd.resamplefd = (uint32_t)resample_fd;
	}
	return __kvm_ioctl(vm->vm_fd, KVM_IRQFD, &irqfd);
}

static int vm_open_kvm(struct vm *vm)
{
	int ver;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int err = errno;

		log_error("cannot open /dev/kvm: %s%s", strerror(err),
			  err == ENOENT	  ? " (KVM is not available on this host)"
			  : err == EACCES ? " (no permission: add yourself to the kvm group)"
					  : "");
		return -err;
	}
	ver = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		log_error("unsupported KVM API version %d", ver);
		return -EINVAL;
	}
	vm->vm_fd = kvm_ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return vm->vm_fd;
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size <= 0) {
		log_error("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -EINVAL;
	}
	return 0;
}

/* A snapshot's memory file, checked: a regular file of exactly the machine's size. */
static int vm_open_snapshot_memory(struct vm *vm)
{
	struct stat st;
	int fd = file_open_kind(vm->cfg.mem_path, O_RDONLY, 0, FILE_KIND_REG);

	if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size != vm->cfg.mem_size) {
		log_error("snapshot memory %s: %s", vm->cfg.mem_path,
			  fd == -FILE_EKIND ? file_kind_error(FILE_KIND_REG)
			  : fd < 0	    ? strerror(-fd)
					    : "size does not match the machine");
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	return fd;
}

/*
 * New RAM as the backing says: a shared memfd (kept in vm->mem_fd), or
 * mem_backing_map's (a hugetlb memfd's descriptor in *@memfd, else -1).
 */
static void *vm_map_fresh(struct vm *vm, int *memfd, char *err, size_t errlen)
{
	if (vm->cfg.mem_backing.shared && !vm->cfg.mem_backing.hugepages)
		return mem_backing_map_memfd(vm->cfg.mem_size, &vm->mem_fd, err, errlen);
	return mem_backing_map(&vm->cfg.mem_backing, vm->cfg.mem_size, memfd, err, errlen);
}

/* An upgrade's RAM: the previous process's memfd (checked by the migration layer), shared. */
static void *vm_map_given(struct vm *vm, char *err, size_t errlen)
{
	void *host = mmap(NULL, vm->cfg.mem_size, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_NORESERVE, vm->mem_fd, 0);

	if (host == MAP_FAILED)
		snprintf(err, errlen, "cannot map the memory handed over: %s", strerror(errno));
	return host;
}

/*
 * A snapshot's memory: mapped copy-on-write, so pages load on first touch
 * and every VM restored from the same file shares them until it writes;
 * or, for a guest on huge pages (which cannot map a file privately),
 * copied into freshly reserved ones.
 */
static void *vm_map_snapshot_memory(struct vm *vm, int *memfd, char *err, size_t errlen)
{
	void *host;
	int ret, fd = vm_open_snapshot_memory(vm);

	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(-fd));
		errno = -fd;
		return MAP_FAILED;
	}
	if (!vm->cfg.mem_backing.hugepages && !vm->cfg.mem_backing.shared) {
		host = mmap(NULL, vm->cfg.mem_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_NORESERVE, fd, 0);
		if (host == MAP_FAILED) {
			snprintf(err, errlen, "%s", strerror(errno));
			close(fd);
		} else {
			vm->snap_mem_fd = fd; /* the mapping keeps the file; this, its holes */
		}
		return host;
	}
	host = vm_map_fresh(vm, memfd, err, errlen);
	if (host != MAP_FAILED && (ret = mem_backing_fill(host, vm->cfg.mem_size, fd)) < 0) {
		snprintf(err, errlen, "reading %s into guest memory: %s", vm->cfg.mem_path,
			 strerror(-ret));
		munmap(host, vm->cfg.mem_size);
		if (*memfd >= 0)
			close(*memfd);
		*memfd = -1;
		host = MAP_FAILED;
		errno = -ret;
	}
	close(fd);
	return host;
}

/*
 * Register one memslot. A VM restored from a snapshot (mem_path) logs dirty
 * pages from its first instruction (its next snapshot may be a diff; an
 * incoming migration does not log, hence not it): registering the slot
 * logged at once spares a second memslot update, whose cost grows with
 * the slot's size. A host that refuses the flag gets the slot without it.
 */
static int vm_add_slot(struct vm *vm, struct kvm_userspace_memory_region *region)
{
	if (vm->cfg.restoring && vm->cfg.mem_path && !vm->cfg.no_irqchip) {
		region->flags = KVM_MEM_LOG_DIRTY_PAGES;
		if (__kvm_ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, region) == 0)
			return 0;
		region->flags = 0;
	}
	return kvm_ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, region);
}

/* One mapping (mem_backing.h, or a snapshot's file) backs all RAM; each range becomes a memslot. */
static int vm_map_memory(struct vm *vm)
{
	struct arch_mem_range ranges[ARCH_MAX_MEM_RANGES];
	bool given = vm->mem_fd >= 0;
	char err[320] = "";
	uint8_t *host;
	int n, i, ret, memfd = -1;

	n = arch_memory_layout(vm->cfg.mem_size, ranges);
	if (n < 0)
		return n;
	if (vm->mem_fd >= 0)
		host = vm_map_given(vm, err, sizeof(err));
	else if (vm->cfg.mem_path)
		host = vm_map_snapshot_memory(vm, &memfd, err, sizeof(err));
	else
		host = vm_map_fresh(vm, &memfd, err, sizeof(err));
	if (host == MAP_FAILED) {
		log_error("guest memory (%llu MiB): %s",
			  (unsigned long long)(vm->cfg.mem_size >> 20), err);
		return -ENOMEM;
	}
	vm->mem_base = host;
	vm->mem_map_size = vm->cfg.mem_size;
	/* Handed-over memory is the running source's: its advice is applied; no touching here. */
	ret = given ? 0 : mem_backing_apply(&vm->cfg.mem_backing, host, vm->cfg.mem_size);
	if (ret < 0) {
		log_error("guest memory: %s: %s",
			  vm->cfg.mem_backing.mergeable ? "mergeable (KSM) or prefault"
							: "prefault",
			  strerror(-ret));
		return ret;
	}
	/*
	 * How the balloon gives pages back (gm_release): a snapshot's file must
	 * not show again; huge pages go back to the pool by a hole in their
	 * memfd (kept, closed in vm_destroy); a shared memfd's by a hole too.
	 */
	if (vm->mem_fd >= 0)
		gm_set_backing(&vm->mem, GM_BACKING_SHARED, vm->mem_fd, host, 4096);
	else if (vm->cfg.mem_backing.hugepages)
		gm_set_backing(&vm->mem, GM_BACKING_SHARED, memfd, host, 2ULL << 20);
	else
		gm_set_backing(&vm->mem,
			       vm->cfg.mem_path ? GM_BACKING_PRIVATE_FILE : GM_BACKING_ANON, -1,
			       NULL, 4096);
	for (i = 0; i < n; i++) {
		struct kvm_userspace_memory_region region = {
		    .slot = (uint32_t)i,
		    .guest_phys_addr = ranges[i].gpa,
		    .memory_size = ranges[i].size,
		    .userspace_addr = (uint64_t)(uintptr_t)host,
		};
		ret = gm_add_region(&vm->mem, ranges[i].gpa, ranges[i].size, host);
		if (ret == 0)
			ret = vm_add_slot(vm, &region);
		if (ret < 0)
			return ret;
		host += ranges[i].size;
	}
	return 0;
}

static int vm_create_vcpus(struct vm *vm)
{
	unsigned int i;
	int ret;

	vm->vcpus = calloc(vm->cfg.ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (i = 0; i < vm->cfg.ncpus; i++) {
		ret = vcpu_create(vm, &vm->vcpus[i], i);
		if (ret < 0)
			return ret;
		vm->ncpus++;
		ret = arch_vcpu_init(vm, &vm->vcpus[i]);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int vm_init_state(struct vm *vm, const struct vm_config *cfg)
{
	int ret;

	vm->cfg = *cfg;
	vm->mem_fd = cfg->mem_fd_given ? cfg->mem_fd : -1; /* ours now, whatever happens */
	vm->snap_mem_fd = -1;
	vm->cfg.mem_fd_given = false; /* a restart makes its own */
	vm->devices_tail = &vm->devices;
	vm->kvm_fd = vm->vm_fd = vm->exit_fd = vm->mem.fd = -1;
	vm->host.set_irq = vm_host_set_irq;
	vm->host.request = vm_host_request;
	vm->host.ioeventfd = vm_host_ioeventfd;
	vm->host.irqfd = vm_host_irqfd;
	vm->host.guest_exit = vm_host_guest_exit;
	pthread_mutex_init(&vm->exit_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	vm->exit_fd = efd_create();
	if (vm->exit_fd < 0)
		return vm->exit_fd;
	ret = bus_init(&vm->pio, "pio");
	if (ret == 0)
		ret = bus_init(&vm->mmio, "mmio");
	return ret;
}

/*
 * Threads inherit their creator's CPUs: with an "io" placement
 * (--cpu-affinity) this thread creates the devices, and so their threads
 * and I/O workers, on those CPUs, then gets its own back.
 */
static int vm_create_devices(struct vm *vm)
{
	pthread_t self = pthread_self();
	cpu_set_t io, old;
	int placed = cpu_affinity_get(vm->cfg.cpu_affinity, -1, &io);
	int ret;

	if (placed < 0)
		return placed;
	if (placed && (pthread_getaffinity_np(self, sizeof(old), &old) != 0 ||
		       pthread_setaffinity_np(self, sizeof(io), &io) != 0)) {
		log_error("cannot place the device threads on the io CPUs");
		return -EINVAL;
	}
	ret = arch_create_devices(vm);
	if (placed && pthread_setaffinity_np(self, sizeof(old), &old) != 0)
		log_warn("the VMM's main thread stays on the io CPUs");
	return ret;
}

int vm_prepare_host(void)
{
	return arch_host_prepare();
}

int vm_create(const struct vm_config *cfg, struct vm **out)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	uint64_t t0 = now_ns();
	int ret;

	if (!vm) {
		if (cfg->mem_fd_given)
			close(cfg->mem_fd);
		return -ENOMEM;
	}
	ret = vm_init_state(vm, cfg);
	if (ret == 0)
		ret = vcpu_signals_init();
	if (ret == 0)
		ret = vm_open_kvm(vm);
	/* Memory first: a memslot added once the irqchip exists costs a grace period. */
	if (ret == 0)
		ret = vm_map_memory(vm);
	if (ret == 0)
		ret = arch_vm_init(vm);
	if (ret == 0)
		ret = vm_create_devices(vm);
	if (ret == 0 && !cfg->restoring)
		ret = arch_setup_boot(vm);
	if (ret == 0)
		ret = vm_create_vcpus(vm);
	if (ret < 0) {
		vm_destroy(vm);
		return ret;
	}
	vm->setup_ns = now_ns() - t0;
	*out = vm;
	return 0;
}

int vm_start(struct vm *vm)
{
	unsigned int i;
	int ret;

	if (vm->started)
		return 0;
	vm->started = true;
	vm->start_ns = now_ns();
	/*
	 * Kicks (vm_request_exit, vm_pause) take pause_lock too, so none lands
	 * between a thread's creation and thread_started: the signal would be
	 * lost and a vCPU halted in KVM_RUN never see it.
	 */
	pthread_mutex_lock(&vm->pause_lock);
	vm->nactive = vm->ncpus; /* each thread leaving its loop counts itself out */
	for (i = 0, ret = 0; i < vm->ncpus && ret == 0; i++)
		ret = vcpu_start(&vm->vcpus[i]);
	if (ret < 0) {
		vm->nactive -= vm->ncpus - (i - 1);
		pthread_cond_broadcast(&vm->pause_cond);
	}
	pthread_mutex_unlock(&vm->pause_lock);
	if (ret < 0)
		vm_request_exit(vm, VM_EXIT_HOST_ERROR, "cannot start a vCPU thread");
	return ret;
}

/*
 * Under pause_lock: until every vCPU thread in its loop waits at its pause
 * point (one that leaves, on a stop, counts itself out of nactive).
 */
static void wait_parked_locked(struct vm *vm)
{
	while (vm->paused && vm->npaused < vm->nactive)
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
}

void vm_wait_parked(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	wait_parked_locked(vm);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_request_exit(struct vm *vm, enum vm_exit reason, const char *detail)
{
	unsigned int i;

	pthread_mutex_lock(&vm->exit_lock);
	if (vm->exit_reason == VM_EXIT_NONE) {
		vm->exit_reason = reason;
		snprintf(vm->exit_detail, sizeof(vm->exit_detail), "%s", detail ? detail : "");
	}
	pthread_mutex_unlock(&vm->exit_lock);
	atomic_store(&vm->stopping, true);
	/* Paused vCPUs wake up and see stopping; running ones are kicked out. */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	for (i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	pthread_mutex_unlock(&vm->pause_lock);
	(void)efd_signal(vm->exit_fd);
}

enum vm_exit vm_join(struct vm *vm)
{
	enum vm_exit reason;
	unsigned int i;

	for (i = 0; i < vm->ncpus; i++) {
		if (vm->vcpus[i].thread_started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].thread_started = false;
		}
	}
	pthread_mutex_lock(&vm->exit_lock);
	reason = vm->exit_reason;
	pthread_mutex_unlock(&vm->exit_lock);
	return reason;
}

/*
 * Every device's pause, then (resume) every device's resume. Not under
 * pause_lock: a device's pause waits for its thread, which may be
 * finishing I/O.
 */
static void vm_pause_devices(struct vm *vm)
{
	for (struct device *dev = vm->devices; dev; dev = dev->next)
		if (dev->ops->pause)
			dev->ops->pause(dev);
}

static void vm_resume_devices(struct vm *vm)
{
	for (struct device *dev = vm->devices; dev; dev = dev->next)
		if (dev->ops->resume)
			dev->ops->resume(dev);
}

static void vm_pause_vcpus(struct vm *vm)
{
	unsigned int i;

	pthread_mutex_lock(&vm->pause_lock);
	vm->paused = true;
	for (i = 0; i < vm->ncpus; i++)
		atomic_store(&vm->vcpus[i].pause_req, true);
	for (i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	wait_parked_locked(vm);
	pthread_mutex_unlock(&vm->pause_lock);
}

static void vm_resume_vcpus(struct vm *vm)
{
	unsigned int i;

	pthread_mutex_lock(&vm->pause_lock);
	vm->paused = false;
	for (i = 0; i < vm->ncpus; i++)
		atomic_store(&vm->vcpus[i].pause_req, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_pause(struct vm *vm)
{
	vm_pause_vcpus(vm);
	vm_pause_devices(vm);
}

void vm_resume(struct vm *vm)
{
	vm_resume_devices(vm);
	vm_resume_vcpus(vm);
}

void vm_throttle(struct vm *vm, unsigned int pct)
{
	atomic_store(&vm->throttle_pct, pct > 99 ? 99 : pct);
	vm_throttle_kick(vm);
}

void vm_throttle_kick(struct vm *vm)
{
	if (!atomic_load(&vm->throttle_pct))
		return;
	for (unsigned int i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].thread_started)
			vcpu_kick(&vm->vcpus[i]);
}

bool vm_is_paused(struct vm *vm)
{
	bool paused;

	pthread_mutex_lock(&vm->pause_lock);
	paused = vm->paused;
	pthread_mutex_unlock(&vm->pause_lock);
	return paused;
}

struct device *vm_find_device(struct vm *vm, const char *id)
{
	struct device *dev;

	for (dev = vm->devices; dev; dev = dev->next)
		if (dev->id && strcmp(dev->id, id) == 0)
			return dev;
	return NULL;
}

void vm_add_device(struct vm *vm, struct device *dev)
{
	dev->next = NULL;
	*vm->devices_tail = dev;
	vm->devices_tail = &dev->next;
}

static void vm_destroy_devices(struct vm *vm)
{
	while (vm->devices) {
		struct device *dev = vm->devices;

		vm->devices = dev->next;
		if (!vm->devices)
			vm->devices_tail = &vm->devices;
		bus_unregister(&vm->pio, dev);
		bus_unregister(&vm->mmio, dev);
		dev->ops->destroy(dev);
	}
}

void vm_destroy(struct vm *vm)
{
	unsigned int i;

	if (!vm)
		return;
	for (i = 0; i < vm->ncpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	vm_destroy_devices(vm);
	arch_vm_destroy(vm);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	vm_dirty_free(vm);
	gm_dirty_free(&vm->mem);
	if (vm->mem_base)
		munmap(vm->mem_base, vm->mem_map_size);
	if (vm->mem.fd >= 0 && vm->mem.fd != vm->mem_fd) /* a hugetlb memfd */
		close(vm->mem.fd);
	if (vm->mem_fd >= 0)
		close(vm->mem_fd);
	if (vm->snap_mem_fd >= 0)
		close(vm->snap_mem_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->exit_fd >= 0)
		close(vm->exit_fd);
	pthread_mutex_destroy(&vm->exit_lock);
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_cond_destroy(&vm->pause_cond);
	free(vm);
}
