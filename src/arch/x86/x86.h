/* What the x86 code shares between its files; generic code never includes it. */
#ifndef BANYAN_ARCH_X86_X86_H
#define BANYAN_ARCH_X86_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct kvm_cpuid2;
struct kvm_msr_list;

enum x86_boot_mode {
	X86_BOOT_LINUX64,   /* 64-bit boot protocol: long mode, RSI = boot_params */
	X86_BOOT_PVH,	    /* PVH: 32-bit protected mode, EBX = hvm_start_info */
	X86_BOOT_MULTIBOOT, /* multiboot v1: 32-bit protected mode, EAX magic, EBX info */
};

/* How vCPU 0 enters the kernel. */
struct x86_boot_entry {
	enum x86_boot_mode mode;
	uint64_t entry;	   /* guest physical entry point */
	uint64_t boot_arg; /* boot_params (RSI), start info or multiboot info (EBX) address */
};

#define X86_MAX_MSRS 1024 /* more in KVM's list is refused */

/* What the host's KVM saves and restores of a vCPU (state_caps.c, x86_host_answers). */
struct x86_state_caps {
	bool has_xsave;		   /* KVM_CAP_XSAVE */
	bool xsave2;		   /* KVM_CAP_XSAVE2 gives a larger area: KVM_GET_XSAVE2 */
	uint32_t xsave_len;	   /* the host's XSAVE area, at least struct kvm_xsave */
	bool has_xcrs;		   /* KVM_CAP_XCRS */
	struct kvm_msr_list *msrs; /* KVM_GET_MSR_INDEX_LIST */
};

/* x86_state_caps_query - ask @kvm_fd (state_caps.c); a new *@out, or -errno. */
int x86_state_caps_query(int kvm_fd, struct x86_state_caps **out)
    __attribute__((warn_unused_result));

struct vm_arch {
	/* The process's one copy of each (x86_host_answers), never freed. */
	const struct kvm_cpuid2 *supported_cpuid; /* KVM_GET_SUPPORTED_CPUID */
	const struct x86_state_caps *state_caps;
	/*
	 * Restoring: the CPUID KVM reports for vCPU 0 as created here, the
	 * baseline a snapshot's vCPUs are checked against (read once, not
	 * once per vCPU inside a migration's pause); NULL otherwise.
	 */
	struct kvm_cpuid2 *fresh_cpuid;
	uint32_t fresh_tsc_khz; /* restoring: vCPU 0's TSC rate as created; 0 unknown */
	struct x86_boot_entry boot;
	uint64_t rsdp_gpa;
};

/*
 * x86_restore_baseline - for a VM created to be restored: read what KVM
 * gives a fresh vCPU (@vcpu, vCPU 0) once, into vm_arch.fresh_*.
 */
void x86_restore_baseline(struct vcpu *vcpu);

/* A kernel as loaded into guest memory, before boot structures are written. */
struct x86_kernel {
	enum x86_boot_mode mode;
	uint64_t entry;
	uint64_t load_end;	  /* first byte above the loaded image */
	const uint8_t *setup_hdr; /* bzImage: the setup header bytes to copy (at 0x1f1) */
	uint32_t setup_hdr_len;
	uint16_t protocol; /* boot protocol version (0 for ELF) */
	uint32_t initrd_addr_max;
	uint32_t cmdline_size; /* longest command line the kernel accepts */
};

/* e820 entry types */
#define E820_RAM      1
#define E820_RESERVED 2

#define X86_MAX_E820 8

struct x86_e820 {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* x86_e820_map - the guest's memory map for the VM's RAM; returns the count. */
unsigned int x86_e820_map(const struct vm *vm, struct x86_e820 map[X86_MAX_E820]);

/*
 * x86_load_kernel - read the file at @path and load it: a bzImage (64-bit
 * boot protocol), or an ELF vmlinux (PVH when the Xen PVH note is there,
 * the 64-bit entry otherwise). @file receives the file contents, which the
 * caller frees after boot structures are written. Returns 0 or -errno with
 * a clear log line (-ENOEXEC: not a kernel).
 */
int x86_load_kernel(struct vm *vm, const char *path, struct x86_kernel *k, uint8_t **file,
		    size_t *file_len) __attribute__((warn_unused_result));

/*
 * x86_multiboot_load - check the multiboot kernel in @f (@len bytes, read
 * from @path) and copy its segments into guest memory; fills @k (mode
 * X86_BOOT_MULTIBOOT). x86_multiboot_boot - then its modules (the
 * configured initrd or modules, page aligned above the kernel) and the
 * information structure at LAYOUT_MB_INFO. Both 0 or -errno with a clear
 * log line (arch/x86/multiboot.h says what is refused).
 */
int x86_multiboot_load(struct vm *vm, const char *path, const uint8_t *f, size_t len,
		       struct x86_kernel *k) __attribute__((warn_unused_result));
int x86_multiboot_boot(struct vm *vm, const char *path, const struct x86_kernel *k)
    __attribute__((warn_unused_result));

/*
 * x86_write_boot_params - the zero page, command line and e820 for the
 * 64-bit boot protocol; x86_write_pvh_info - the same for PVH.
 */
int x86_write_boot_params(struct vm *vm, const struct x86_kernel *k, uint64_t initrd_gpa,
			  uint64_t initrd_size) __attribute__((warn_unused_result));
int x86_write_pvh_info(struct vm *vm, uint64_t initrd_gpa, uint64_t initrd_size)
    __attribute__((warn_unused_result));

/*
 * x86_boot_kernel - load the configured kernel and initrd and write the
 * boot structures; fills vm->arch->boot. ACPI must already be written.
 */
int x86_boot_kernel(struct vm *vm) __attribute__((warn_unused_result));

/* x86_write_page_tables - identity map of the first 4 GiB and the boot GDT. */
int x86_write_page_tables(struct vm *vm) __attribute__((warn_unused_result));

/*
 * x86_host_answers - KVM_GET_SUPPORTED_CPUID (with the TSC-deadline bit
 * added) and what KVM saves of a vCPU, asked through @kvm_fd the first
 * time and kept for the process: both shared and never freed. 0 or
 * -errno (logged).
 */
int x86_host_answers(int kvm_fd, const struct kvm_cpuid2 **cpuid,
		     const struct x86_state_caps **caps) __attribute__((warn_unused_result));

/* x86_cpuid_init - the supported CPUID for @vm's vCPUs, and the CPU template checked against it. */
int x86_cpuid_init(struct vm *vm) __attribute__((warn_unused_result));

/*
 * x86_cpuid_same - whether @saved is @fresh but for the bits KVM recomputes
 * from registers set after it (OSXSAVE, OSPKE, APIC, the XSAVE sizes).
 */
bool x86_cpuid_same(const struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *fresh);

/* x86_vcpu_set_cpuid - the supported CPUID with this vCPU's topology. */
int x86_vcpu_set_cpuid(struct vm *vm, struct vcpu *vcpu) __attribute__((warn_unused_result));

/* x86_vcpu_set_msrs - the MSR values Linux expects at entry. */
int x86_vcpu_set_msrs(struct vcpu *vcpu) __attribute__((warn_unused_result));

/*
 * x86_vcpu_set_template_msrs - apply @t's MSR modifiers (NULL: none) to
 * the vCPU's current values; -ENOTSUP (logged) when KVM refuses one.
 */
struct cpu_template;
int x86_vcpu_set_template_msrs(struct vcpu *vcpu, const struct cpu_template *t)
    __attribute__((warn_unused_result));

/* x86_vcpu_set_boot_regs - registers/segments for the boot entry (vCPU 0). */
int x86_vcpu_set_boot_regs(struct vcpu *vcpu, const struct x86_boot_entry *boot)
    __attribute__((warn_unused_result));

/* x86_vcpu_set_lapic - LINT0 as ExtINT, LINT1 as NMI, as firmware would leave them. */
int x86_vcpu_set_lapic(struct vcpu *vcpu) __attribute__((warn_unused_result));

#endif
