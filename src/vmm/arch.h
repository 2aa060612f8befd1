/*
 * The hooks generic VMM code calls into the architecture. Generic code
 * includes only this header, never an arch/ header.
 */
#ifndef BANYAN_VMM_ARCH_H
#define BANYAN_VMM_ARCH_H

#include <stdint.h>

struct vm;
struct vcpu;
struct state_io;

#define ARCH_MAX_MEM_RANGES 4

struct arch_mem_range {
	uint64_t gpa;
	uint64_t size;
};

/*
 * arch_memory_layout - where @mem_size bytes of RAM go in guest physical
 * space. Fills @ranges, returns how many (or -EINVAL when the size cannot
 * be laid out).
 */
int arch_memory_layout(uint64_t mem_size, struct arch_mem_range ranges[ARCH_MAX_MEM_RANGES]);

/*
 * arch_host_prepare - ask the host's KVM, once for the process, what every
 * VM created later in it needs to know (x86: the supported CPUID, what KVM
 * saves of a vCPU), so that neither those VMs nor the processes forked
 * after the call ask again.
 * Returns 0 or -errno; on failure vm_create asks again and reports.
 */
int arch_host_prepare(void);

/*
 * arch_vm_init - interrupt controllers, timers and other VM-wide KVM state.
 * Called after guest memory is registered: KVM makes every memslot change
 * made after the irqchip exists wait for its readers (an SRCU grace
 * period, milliseconds), and none is needed before.
 */
int arch_vm_init(struct vm *vm) __attribute__((warn_unused_result));

/* arch_create_devices - the platform's legacy devices, on the VM's buses. */
int arch_create_devices(struct vm *vm) __attribute__((warn_unused_result));

/*
 * arch_setup_boot - load the kernel and initrd, write the boot structures
 * (boot_params or PVH start info, page tables, ACPI) into guest memory.
 */
int arch_setup_boot(struct vm *vm) __attribute__((warn_unused_result));

/* arch_vcpu_init - CPUID, MSRs, LAPIC; and for vCPU 0 the boot registers. */
int arch_vcpu_init(struct vm *vm, struct vcpu *vcpu) __attribute__((warn_unused_result));

/* arch_vcpu_dump - write the registers into @buf for a crash diagnostic. */
void arch_vcpu_dump(struct vcpu *vcpu, char *buf, unsigned long len);

/*
 * Snapshots (src/snapshot). The VM is paused; nothing runs.
 * arch_vcpu_save - all of @vcpu's KVM state into @io (a saver).
 * arch_vcpu_restore - load it back from @io (a loader holding exactly one
 *   vCPU's state), in the order KVM needs; refuses (-ENOTSUP, logged) a
 *   snapshot whose CPUID uses features this host lacks.
 * arch_vm_save / arch_vm_restore - the VM-wide state (interrupt controllers,
 *   timers, clock); restore runs after every vCPU's.
 */
int arch_vcpu_save(struct vcpu *vcpu, struct state_io *io) __attribute__((warn_unused_result));
int arch_vcpu_restore(struct vcpu *vcpu, struct state_io *io) __attribute__((warn_unused_result));
int arch_vm_save(struct vm *vm, struct state_io *io) __attribute__((warn_unused_result));
int arch_vm_restore(struct vm *vm, struct state_io *io) __attribute__((warn_unused_result));

/* arch_vm_destroy - free what arch_* allocated. */
void arch_vm_destroy(struct vm *vm);

#endif
