/*
 * vCPU register state at entry: the boot GDT and identity page tables in
 * guest memory, then segments, control registers and general registers for
 * the 64-bit boot protocol or the PVH 32-bit entry; the LAPIC's LINT pins.
 */
#include "arch/x86/layout.h"
#include "vmm/kvm.h"
#include "arch/x86/x86.h"
#include "util/log.h"
#include "vmm/arch.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#define CR0_PE	 (1ULL << 0)
#define CR0_ET	 (1ULL << 4)
#define CR0_PG	 (1ULL << 31)
#define CR4_PAE	 (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

#define PTE_PRESENT 0x1ULL
#define PTE_WRITE   0x2ULL
#define PTE_LARGE   0x80ULL

/* Boot GDT: the selectors Linux's boot protocol documents (__BOOT_CS/DS). */
#define GDT_CODE_SEL 0x10
#define GDT_DATA_SEL 0x18
#define GDT_TSS_SEL  0x20

static const uint64_t boot_gdt_64[] = {
    0,
    0,
    0x00af9b000000ffffULL, /* 0x10: 64-bit code, DPL 0 */
    0x00cf93000000ffffULL, /* 0x18: data, 4 GiB flat */
    0x00808b000000ffffULL, /* 0x20: TSS (busy), unused but VMX wants a valid TR */
};

static const uint64_t boot_gdt_32[] = {
    0,
    0,
    0x00cf9b000000ffffULL, /* 0x10: 32-bit code, 4 GiB flat */
    0x00cf93000000ffffULL, /* 0x18: data */
    0x00808b000000ffffULL, /* 0x20: 32-bit TSS (busy), as PVH requires */
};

int x86_write_page_tables(struct vm *vm)
{
	uint64_t pml4 = LAYOUT_PDPT | PTE_PRESENT | PTE_WRITE;
	uint64_t pdpt[4], pd[512];
	unsigned int i, j;
	int ret;

	ret = gm_write(&vm->mem, LAYOUT_PML4, &pml4, sizeof(pml4));
	for (i = 0; i < 4 && ret == 0; i++) {
		pdpt[i] = (LAYOUT_PD + i * 0x1000) | PTE_PRESENT | PTE_WRITE;
		for (j = 0; j < 512; j++)
			pd[j] = (((uint64_t)i << 30) + ((uint64_t)j << 21)) | PTE_PRESENT |
				PTE_WRITE | PTE_LARGE;
		ret = gm_write(&vm->mem, LAYOUT_PD + i * 0x1000, pd, sizeof(pd));
	}
	if (ret == 0)
		ret = gm_write(&vm->mem, LAYOUT_PDPT, pdpt, sizeof(pdpt));
	return ret;
}

/* A KVM segment from a GDT descriptor, so the cached state matches memory. */
static struct kvm_segment seg_from_desc(uint64_t desc, uint16_t sel)
{
	return (struct kvm_segment){
	    .base = (desc >> 16 & 0xffffff) | (desc >> 32 & 0xff000000),
	    .limit = (uint32_t)((desc & 0xffff) | (desc >> 32 & 0xf0000)),
	    .selector = sel,
	    .type = (uint8_t)(desc >> 40 & 0xf),
	    .present = (uint8_t)(desc >> 47 & 1),
	    .dpl = (uint8_t)(desc >> 45 & 3),
	    .db = (uint8_t)(desc >> 54 & 1),
	    .s = (uint8_t)(desc >> 44 & 1),
	    .l = (uint8_t)(desc >> 53 & 1),
	    .g = (uint8_t)(desc >> 55 & 1),
	};
}

static void set_segments(struct kvm_sregs *sregs, const uint64_t *gdt)
{
	struct kvm_segment code = seg_from_desc(gdt[GDT_CODE_SEL / 8], GDT_CODE_SEL);
	struct kvm_segment data = seg_from_desc(gdt[GDT_DATA_SEL / 8], GDT_DATA_SEL);

	if (code.g)
		code.limit = 0xffffffff;
	if (data.g)
		data.limit = 0xffffffff;
	sregs->cs = code;
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	sregs->tr = seg_from_desc(gdt[GDT_TSS_SEL / 8], GDT_TSS_SEL);
	sregs->gdt.base = LAYOUT_GDT;
	sregs->gdt.limit = 5 * 8 - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
}

static int set_sregs(struct vcpu *vcpu, const struct x86_boot_entry *boot)
{
	bool pvh = boot->mode == X86_BOOT_PVH || boot->mode == X86_BOOT_MULTIBOOT; /* same state */
	const uint64_t *gdt = pvh ? boot_gdt_32 : boot_gdt_64;
	struct kvm_sregs sregs;
	int ret;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	ret = gm_write(&vcpu->vm->mem, LAYOUT_GDT, gdt, 5 * sizeof(uint64_t));
	if (ret < 0)
		return ret;
	set_segments(&sregs, gdt);
	if (pvh) {
		sregs.cr0 = CR0_PE | CR0_ET;
		sregs.cr4 = 0;
		sregs.efer = 0;
	} else {
		sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
		sregs.cr3 = LAYOUT_PML4;
		sregs.cr4 = CR4_PAE;
		sregs.efer = EFER_LME | EFER_LMA;
	}
	return __kvm_ioctl(vcpu->fd, KVM_SET_SREGS, &sregs);
}

static int set_fpu(struct vcpu *vcpu)
{
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};

	return __kvm_ioctl(vcpu->fd, KVM_SET_FPU, &fpu);
}

int x86_vcpu_set_boot_regs(struct vcpu *vcpu, const struct x86_boot_entry *boot)
{
	struct kvm_regs regs = {.rflags = 0x2, .rip = boot->entry};
	int ret;

	if (boot->mode == X86_BOOT_PVH) {
		regs.rbx = boot->boot_arg;
	} else if (boot->mode == X86_BOOT_MULTIBOOT) {
		regs.rax = 0x2badb002; /* MB_BOOTLOADER_MAGIC */
		regs.rbx = boot->boot_arg;
	} else {
		regs.rsi = boot->boot_arg;
		regs.rsp = regs.rbp = LAYOUT_BOOT_STACK;
	}
	ret = set_sregs(vcpu, boot);
	if (ret == 0)
		ret = set_fpu(vcpu);
	if (ret == 0)
		ret = __kvm_ioctl(vcpu->fd, KVM_SET_REGS, &regs);
	if (ret < 0)
		log_error("cannot set vCPU %u boot registers: %s", vcpu->index, strerror(-ret));
	return ret;
}

#define APIC_LVT0	 0x350
#define APIC_LVT1	 0x360
#define APIC_MODE_NMI	 0x4
#define APIC_MODE_EXTINT 0x7

static void lapic_set_mode(struct kvm_lapic_state *lapic, unsigned int reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, lapic->regs + reg, sizeof(v));
	v = (v & ~0x700U) | mode << 8;
	memcpy(lapic->regs + reg, &v, sizeof(v));
}

int x86_vcpu_set_lapic(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	lapic_set_mode(&lapic, APIC_LVT0, APIC_MODE_EXTINT);
	lapic_set_mode(&lapic, APIC_LVT1, APIC_MODE_NMI);
	return kvm_ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic);
}

void arch_vcpu_dump(struct vcpu *vcpu, char *buf, unsigned long len)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		snprintf(buf, len, "registers unavailable");
		return;
	}
	snprintf(buf, len,
		 "rip=%#llx rsp=%#llx rflags=%#llx rax=%#llx rbx=%#llx rcx=%#llx rdx=%#llx "
		 "rsi=%#llx rdi=%#llx cr0=%#llx cr2=%#llx cr3=%#llx cr4=%#llx efer=%#llx cs=%#x",
		 r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, s.cr0, s.cr2,
		 s.cr3, s.cr4, s.efer, s.cs.selector);
}
