/* One vCPU: its KVM fd, its shared kvm_run page and the thread running it. */
#ifndef BANYAN_VMM_VCPU_H
#define BANYAN_VMM_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct kvm_run;

/* KVM_EXIT_* reasons below this are counted one by one; the rest as "other". */
#define VCPU_EXIT_SLOTS	 40
#define VCPU_EXIT_OTHER	 (VCPU_EXIT_SLOTS - 1)
#define VCPU_EXIT_SIGNAL (VCPU_EXIT_SLOTS - 2) /* KVM_RUN interrupted by a kick */

struct vcpu {
	struct vm *vm;
	unsigned int index; /* also its APIC ID */
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	bool halted;	       /* no_irqchip only */
	atomic_bool pause_req; /* set by vm_pause: stop before the next KVM_RUN */
	uint64_t throttle_ran; /* now_ns() when it last left a throttle sleep; this vCPU writes */
	/* Exits by KVM exit reason (the last slot counts the others); this vCPU writes. */
	_Atomic uint64_t exits[VCPU_EXIT_SLOTS];
};

/* vcpu_create - KVM_CREATE_VCPU and map kvm_run. Returns 0 or -errno. */
int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned int index)
    __attribute__((warn_unused_result));

/* vcpu_start - start the thread running KVM_RUN. Returns 0 or -errno. */
int vcpu_start(struct vcpu *vcpu) __attribute__((warn_unused_result));

/*
 * vcpu_kick - make the vCPU leave KVM_RUN soon (immediate_exit + a signal
 * whose handler does nothing). Never blocks.
 */
void vcpu_kick(struct vcpu *vcpu);

/* vcpu_exit_name - "io", "mmio", ... for a slot of struct vcpu.exits; NULL if unused. */
const char *vcpu_exit_name(unsigned int slot);

/* vcpu_destroy - unmap and close; the thread must have been joined. */
void vcpu_destroy(struct vcpu *vcpu);

/* vcpu_signals_init - install the kick signal's empty handler (once per process). */
int vcpu_signals_init(void);

#endif
