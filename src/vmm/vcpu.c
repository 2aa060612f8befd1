/* The vCPU thread: KVM_RUN, and each exit that reaches user space. */
#include "vmm/vcpu.h"

#include "util/parse.h"
#include "util/log.h"
#include "util/clock.h"
#include "util/thread.h"
#include "vmm/arch.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* The kick signal: its handler does nothing, it only interrupts KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGUSR1

static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

int vcpu_signals_init(void)
{
	struct sigaction sa = {.sa_handler = vcpu_kick_handler};

	/* No SA_RESTART: KVM_RUN must return EINTR so the loop sees requests. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	return 0;
}

int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned int index)
{
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0) {
		log_error("KVM_CREATE_VCPU %u: %s", index, strerror(errno));
		return -errno;
	}
	vcpu->run =
	    mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		log_error("mmap kvm_run of vCPU %u: %s", index, strerror(errno));
		return -errno;
	}
	return 0;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, (size_t)vcpu->vm->run_size);
	if (vcpu->fd > 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->run)
		return;
	/* Covers a kick that lands just before the thread enters KVM_RUN. */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (vcpu->thread_started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

/* A port access: KVM may batch @count accesses of @size bytes (rep ins/outs). */
static void vcpu_handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	uint32_t i;

	if (run->io.data_offset + (uint64_t)run->io.size * run->io.count >
	    (uint64_t)vcpu->vm->run_size)
		return; /* cannot happen with a sane kernel; never trust it blindly */
	for (i = 0; i < run->io.count; i++) {
		bus_access(&vcpu->vm->pio, run->io.port, data, run->io.size, is_write);
		data += run->io.size;
	}
}

static void vcpu_handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len;

	if (len == 0 || len > sizeof(run->mmio.data))
		return;
	bus_access(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
}

/* Stop the VM because of this vCPU, with the registers in the diagnostic. */
static void vcpu_fail(struct vcpu *vcpu, enum vm_exit reason, const char *what)
{
	char regs[384];
	char detail[512];

	arch_vcpu_dump(vcpu, regs, sizeof(regs));
	snprintf(detail, sizeof(detail), "vCPU %u: %s; %s", vcpu->index, what, regs);
	vm_request_exit(vcpu->vm, reason, detail);
}

static void vcpu_handle_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_exit(vcpu->vm, VM_EXIT_POWEROFF, "guest powered off");
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_exit(vcpu->vm, VM_EXIT_REBOOT, "guest requested a reset");
		break;
	default:
		vcpu_fail(vcpu, VM_EXIT_CRASH, "system event (crash)");
		break;
	}
}

/* Without an in-kernel irqchip nothing can wake a halted vCPU (tests only). */
static void vcpu_handle_hlt(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	vcpu->halted = true;
	if (atomic_fetch_add(&vm->halted_vcpus, 1) + 1 == vm->ncpus)
		vm_request_exit(vm, VM_EXIT_HALTED, "every vCPU halted");
}

/* Returns false when the loop must end. */
static bool vcpu_handle_exit(struct vcpu *vcpu)
{
	uint32_t reason = vcpu->run->exit_reason;
	char what[96];

	atomic_fetch_add_explicit(
	    &vcpu->exits[reason < VCPU_EXIT_SIGNAL ? reason : VCPU_EXIT_OTHER], 1,
	    memory_order_relaxed);
	switch (vcpu->run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(vcpu);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		vcpu_handle_hlt(vcpu);
		return false;
	case KVM_EXIT_SHUTDOWN:
		vcpu_fail(vcpu, VM_EXIT_CRASH, "triple fault (KVM_EXIT_SHUTDOWN)");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		vcpu_handle_system_event(vcpu);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error, suberror %u",
			 vcpu->run->internal.suberror);
		vcpu_fail(vcpu, VM_EXIT_CRASH, what);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed, reason 0x%llx",
			 (unsigned long long)vcpu->run->fail_entry.hardware_entry_failure_reason);
		vcpu_fail(vcpu, VM_EXIT_CRASH, what);
		return false;
	default:
		snprintf(what, sizeof(what), "unhandled exit reason %u", vcpu->run->exit_reason);
		vcpu_fail(vcpu, VM_EXIT_CRASH, what);
		return false;
	}
}

const char *vcpu_exit_name(unsigned int slot)
{
	static const char *const names[VCPU_EXIT_SLOTS] = {
	    [KVM_EXIT_UNKNOWN] = "unknown",
	    [KVM_EXIT_EXCEPTION] = "exception",
	    [KVM_EXIT_IO] = "io",
	    [KVM_EXIT_HYPERCALL] = "hypercall",
	    [KVM_EXIT_DEBUG] = "debug",
	    [KVM_EXIT_HLT] = "hlt",
	    [KVM_EXIT_MMIO] = "mmio",
	    [KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
	    [KVM_EXIT_SHUTDOWN] = "shutdown",
	    [KVM_EXIT_FAIL_ENTRY] = "fail_entry",
	    [KVM_EXIT_INTR] = "intr",
	    [KVM_EXIT_SET_TPR] = "set_tpr",
	    [KVM_EXIT_TPR_ACCESS] = "tpr_access",
	    [KVM_EXIT_NMI] = "nmi",
	    [KVM_EXIT_INTERNAL_ERROR] = "internal_error",
	    [KVM_EXIT_SYSTEM_EVENT] = "system_event",
	    [KVM_EXIT_IOAPIC_EOI] = "ioapic_eoi",
	    [KVM_EXIT_X86_RDMSR] = "rdmsr",
	    [KVM_EXIT_X86_WRMSR] = "wrmsr",
	    [KVM_EXIT_X86_BUS_LOCK] = "bus_lock",
	    [VCPU_EXIT_SIGNAL] = "signal",
	    [VCPU_EXIT_OTHER] = "other",
	};

	return slot < VCPU_EXIT_SLOTS ? names[slot] : NULL;
}

/*
 * Wait here, outside KVM_RUN, while the VM is paused. vm_pause counts the
 * waiting threads under pause_lock; vm_resume and vm_request_exit wake them.
 */
static void vcpu_pause_point(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	pthread_mutex_lock(&vm->pause_lock);
	vm->npaused++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (atomic_load(&vcpu->pause_req) && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->npaused--;
	pthread_mutex_unlock(&vm->pause_lock);
}

/*
 * Auto-converge (vm_throttle): once per slice of guest time, sleep pct %
 * of a slice's length, in short steps so that a pause or a stop (whose
 * kick may land between two steps) waits one step at most.
 */
static void vcpu_throttle(struct vcpu *vcpu, unsigned int pct)
{
	const uint64_t slice = VM_THROTTLE_SLICE_MS * 1000000ULL;
	const struct timespec step = {.tv_nsec = 1000000};
	uint64_t now = now_ns(), until;

	if (now - vcpu->throttle_ran < slice)
		return;
	until = now + slice * pct / (100 - pct);
	while (now_ns() < until && !atomic_load(&vcpu->pause_req) &&
	       !atomic_load(&vcpu->vm->stopping))
		nanosleep(&step, NULL);
	vcpu->throttle_ran = now_ns();
}

/* The thread leaves its loop for good: vm_pause no longer waits for it. */
static void vcpu_leave(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	pthread_mutex_lock(&vm->pause_lock);
	vm->nactive--;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	char name[16];

	/* Named and sandboxed before the first KVM_RUN (security/seccomp.h). */
	snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
	thread_enter(name);
	while (!atomic_load(&vm->stopping)) {
		unsigned int throttle =
		    atomic_load_explicit(&vm->throttle_pct, memory_order_relaxed);

		if (atomic_load(&vcpu->pause_req)) {
			vcpu_pause_point(vcpu);
			continue;
		}
		if (throttle)
			vcpu_throttle(vcpu, throttle);
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				atomic_fetch_add_explicit(&vcpu->exits[VCPU_EXIT_SIGNAL], 1,
							  memory_order_relaxed);
				continue;
			}
			log_error("vCPU %u: KVM_RUN: %s", vcpu->index, strerror(errno));
			vm_request_exit(vm, VM_EXIT_HOST_ERROR, "KVM_RUN failed");
			break;
		}
		if (!vcpu_handle_exit(vcpu))
			break;
	}
	vcpu_leave(vcpu);
	return NULL;
}

/* The thread's CPUs (--cpu-affinity): set at creation, before it runs guest code. */
static int vcpu_thread_attr(struct vcpu *vcpu, pthread_attr_t *attr)
{
	cpu_set_t cpus;
	int ret = cpu_affinity_get(vcpu->vm->cfg.cpu_affinity, (int)vcpu->index, &cpus);

	pthread_attr_init(attr);
	if (ret > 0)
		ret = -pthread_attr_setaffinity_np(attr, sizeof(cpus), &cpus);
	if (ret < 0)
		pthread_attr_destroy(attr);
	return ret < 0 ? ret : 0;
}

int vcpu_start(struct vcpu *vcpu)
{
	pthread_attr_t attr;
	sigset_t set, old;
	int ret;

	/* The thread starts with the kick signal unblocked whatever the caller blocks. */
	ret = vcpu_thread_attr(vcpu, &attr);
	if (ret < 0)
		return ret;
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, &old);
	ret = pthread_create(&vcpu->thread, &attr, vcpu_thread, vcpu);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (ret != 0)
		return -ret;
	vcpu->thread_started = true;
	return 0;
}
