/*
 * x86 state for snapshots: everything KVM holds for a vCPU (registers,
 * segments, FPU/XSAVE, XCRs, MSRs, LAPIC, pending events, MP state, debug
 * registers, CPUID, TSC frequency) and for the VM (PIC master and slave,
 * IOAPIC, PIT, KVM clock).
 *
 * Each piece is read from KVM into a plain struct, encoded field by field
 * through one symmetric function (x86_*_io), and written back to KVM in the
 * order KVM needs on restore:
 *   CPUID (MSRs and XSAVE are checked against it) -> TSC frequency ->
 *   sregs (CR0/CR4/EFER, APIC base) -> regs -> XSAVE or FPU -> XCRs ->
 *   MSRs (kvmclock, TSC, ...) -> LAPIC -> MP state -> events (after the
 *   LAPIC, which KVM_SET_LAPIC would otherwise reset) -> debug registers;
 * and for the VM, after every vCPU: PIC, IOAPIC, PIT, then the clock last,
 * so kvmclock starts from the saved value just before the vCPUs run.
 */
#include "arch/x86/x86.h"
#include "vmm/kvm.h"
#include "util/clock.h"
#include "util/log.h"
#include "vmm/arch.h"
#include "vmm/state.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define X86_VCPU_STATE_VERSION 1
#define X86_VM_STATE_VERSION   1
#define X86_MAX_CPUID	       512
#define X86_XSAVE_MAX	       (64 * 1024)
#define MSR_IA32_TSC_DEADLINE  0x6e0

/* Events flags KVM_SET_VCPU_EVENTS accepts without extra capabilities. */
#define EVENTS_VALID_FLAGS                                                                         \
	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |                       \
	 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM)

struct x86_vcpu_state {
	struct kvm_cpuid2 *cpuid; /* entries follow */
	uint32_t tsc_khz;	  /* 0: unknown */
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	bool has_xsave;
	uint32_t xsave_len;
	uint8_t *xsave; /* XSAVE image, or NULL with the legacy FPU below */
	struct kvm_fpu fpu;
	bool has_xcrs;
	struct kvm_xcrs xcrs;
	uint32_t nmsrs;
	struct kvm_msr_entry *msrs;
	bool has_lapic;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events events;
	struct kvm_debugregs dregs;
};

static void x86_vcpu_state_free(struct x86_vcpu_state *st)
{
	free(st->cpuid);
	free(st->xsave);
	free(st->msrs);
}

/* --- encoding (symmetric) --- */

/* KVM's __u64 is unsigned long long; state.h speaks uint64_t. */
static void u64_io(struct state_io *io, __u64 *v)
{
	uint64_t x = *v;

	state_u64(io, &x);
	*v = x;
}

static void seg_io(struct state_io *io, struct kvm_segment *s)
{
	u64_io(io, &s->base);
	state_u32(io, &s->limit);
	state_u16(io, &s->selector);
	state_u8(io, &s->type);
	state_u8(io, &s->present);
	state_u8(io, &s->dpl);
	state_u8(io, &s->db);
	state_u8(io, &s->s);
	state_u8(io, &s->l);
	state_u8(io, &s->g);
	state_u8(io, &s->avl);
	state_u8(io, &s->unusable);
}

static void dtable_io(struct state_io *io, struct kvm_dtable *d)
{
	u64_io(io, &d->base);
	state_u16(io, &d->limit);
}

static void regs_io(struct state_io *io, struct kvm_regs *r)
{
	__u64 *f[] = {&r->rax, &r->rbx, &r->rcx, &r->rdx, &r->rsi, &r->rdi,
		      &r->rsp, &r->rbp, &r->r8,	 &r->r9,  &r->r10, &r->r11,
		      &r->r12, &r->r13, &r->r14, &r->r15, &r->rip, &r->rflags};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		u64_io(io, f[i]);
}

static void sregs_io(struct state_io *io, struct kvm_sregs *s)
{
	struct kvm_segment *segs[] = {&s->cs, &s->ds, &s->es, &s->fs,
				      &s->gs, &s->ss, &s->tr, &s->ldt};

	for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++)
		seg_io(io, segs[i]);
	dtable_io(io, &s->gdt);
	dtable_io(io, &s->idt);
	u64_io(io, &s->cr0);
	u64_io(io, &s->cr2);
	u64_io(io, &s->cr3);
	u64_io(io, &s->cr4);
	u64_io(io, &s->cr8);
	u64_io(io, &s->efer);
	u64_io(io, &s->apic_base);
	for (size_t i = 0; i < sizeof(s->interrupt_bitmap) / sizeof(s->interrupt_bitmap[0]); i++)
		u64_io(io, &s->interrupt_bitmap[i]);
}

static void fpu_io(struct state_io *io, struct kvm_fpu *f)
{
	state_bytes(io, f->fpr, sizeof(f->fpr));
	state_u16(io, &f->fcw);
	state_u16(io, &f->fsw);
	state_u8(io, &f->ftwx);
	state_u16(io, &f->last_opcode);
	u64_io(io, &f->last_ip);
	u64_io(io, &f->last_dp);
	state_bytes(io, f->xmm, sizeof(f->xmm));
	state_u32(io, &f->mxcsr);
}

static void xcrs_io(struct state_io *io, struct kvm_xcrs *x)
{
	state_u32(io, &x->nr_xcrs);
	state_u32(io, &x->flags);
	if (x->nr_xcrs > KVM_MAX_XCRS) {
		io->err = io->err ?: -EBADMSG;
		return;
	}
	for (uint32_t i = 0; i < x->nr_xcrs; i++) {
		state_u32(io, &x->xcrs[i].xcr);
		u64_io(io, &x->xcrs[i].value);
	}
}

static void events_io(struct state_io *io, struct kvm_vcpu_events *e)
{
	state_u8(io, &e->exception.injected);
	state_u8(io, &e->exception.nr);
	state_u8(io, &e->exception.has_error_code);
	state_u8(io, &e->exception.pending);
	state_u32(io, &e->exception.error_code);
	state_u8(io, &e->interrupt.injected);
	state_u8(io, &e->interrupt.nr);
	state_u8(io, &e->interrupt.soft);
	state_u8(io, &e->interrupt.shadow);
	state_u8(io, &e->nmi.injected);
	state_u8(io, &e->nmi.pending);
	state_u8(io, &e->nmi.masked);
	state_u32(io, &e->sipi_vector);
	state_u32(io, &e->flags);
	state_u8(io, &e->smi.smm);
	state_u8(io, &e->smi.pending);
	state_u8(io, &e->smi.smm_inside_nmi);
	state_u8(io, &e->smi.latched_init);
	state_u8(io, &e->triple_fault.pending);
	state_u8(io, &e->exception_has_payload);
	u64_io(io, &e->exception_payload);
}

static void dregs_io(struct state_io *io, struct kvm_debugregs *d)
{
	for (int i = 0; i < 4; i++)
		u64_io(io, &d->db[i]);
	u64_io(io, &d->dr6);
	u64_io(io, &d->dr7);
	u64_io(io, &d->flags);
}

/* A count read from a snapshot, capped before anything is allocated. */
static bool count_ok(struct state_io *io, uint32_t n, uint32_t max)
{
	if (n <= max)
		return true;
	io->err = io->err ?: -EBADMSG;
	return false;
}

static void cpuid_io(struct state_io *io, struct x86_vcpu_state *st)
{
	uint32_t n = st->cpuid ? st->cpuid->nent : 0;

	state_u32(io, &n);
	if (io->err || !count_ok(io, n, X86_MAX_CPUID))
		return;
	if (io->loading) {
		st->cpuid = calloc(1, sizeof(*st->cpuid) + n * sizeof(st->cpuid->entries[0]));
		if (!st->cpuid) {
			io->err = -ENOMEM;
			return;
		}
		st->cpuid->nent = n;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *e = &st->cpuid->entries[i];

		state_u32(io, &e->function);
		state_u32(io, &e->index);
		state_u32(io, &e->flags);
		state_u32(io, &e->eax);
		state_u32(io, &e->ebx);
		state_u32(io, &e->ecx);
		state_u32(io, &e->edx);
	}
}

static void msrs_io(struct state_io *io, struct x86_vcpu_state *st)
{
	state_u32(io, &st->nmsrs);
	if (io->err || !count_ok(io, st->nmsrs, X86_MAX_MSRS))
		return;
	if (io->loading) {
		st->msrs = calloc(st->nmsrs ? st->nmsrs : 1, sizeof(*st->msrs));
		if (!st->msrs) {
			io->err = -ENOMEM;
			return;
		}
	}
	for (uint32_t i = 0; i < st->nmsrs; i++) {
		state_u32(io, &st->msrs[i].index);
		u64_io(io, &st->msrs[i].data);
	}
}

static void xsave_io(struct state_io *io, struct x86_vcpu_state *st)
{
	state_bool(io, &st->has_xsave);
	if (!st->has_xsave) {
		fpu_io(io, &st->fpu);
		return;
	}
	state_u32(io, &st->xsave_len);
	if (io->err || !count_ok(io, st->xsave_len, X86_XSAVE_MAX))
		return;
	if (io->loading) {
		st->xsave = calloc(1, st->xsave_len ? st->xsave_len : 1);
		if (!st->xsave) {
			io->err = -ENOMEM;
			return;
		}
	}
	state_bytes(io, st->xsave, st->xsave_len);
}

static int x86_vcpu_state_io(struct state_io *io, struct x86_vcpu_state *st)
{
	uint8_t version = X86_VCPU_STATE_VERSION;

	state_u8(io, &version);
	if (!io->err && version != X86_VCPU_STATE_VERSION)
		io->err = -EPROTO;
	cpuid_io(io, st);
	state_u32(io, &st->tsc_khz);
	regs_io(io, &st->regs);
	sregs_io(io, &st->sregs);
	xsave_io(io, st);
	state_bool(io, &st->has_xcrs);
	if (st->has_xcrs)
		xcrs_io(io, &st->xcrs);
	msrs_io(io, st);
	state_bool(io, &st->has_lapic);
	if (st->has_lapic)
		state_bytes(io, st->lapic.regs, sizeof(st->lapic.regs));
	state_u32(io, &st->mp.mp_state);
	events_io(io, &st->events);
	dregs_io(io, &st->dregs);
	return io->err;
}

/* --- reading a vCPU from KVM --- */

static bool cpuid_entry_unused(const struct kvm_cpuid_entry2 *e)
{
	return !(e->function | e->index | e->flags | e->eax | e->ebx | e->ecx | e->edx);
}

static int x86_get_cpuid(struct vcpu *vcpu, struct x86_vcpu_state *st)
{
	uint32_t nent = X86_MAX_CPUID;

	st->cpuid = calloc(1, sizeof(*st->cpuid) + nent * sizeof(st->cpuid->entries[0]));
	if (!st->cpuid)
		return -ENOMEM;
	st->cpuid->nent = nent;
	if (ioctl(vcpu->fd, KVM_GET_CPUID2, st->cpuid) < 0)
		return -errno;
	/*
	 * Some kernels (6.1) leave nent as passed: drop the unused, all-zero
	 * tail (a real leaf always has something set; leaf 0 has its maximum).
	 */
	while (st->cpuid->nent && cpuid_entry_unused(&st->cpuid->entries[st->cpuid->nent - 1]))
		st->cpuid->nent--;
	return 0;
}

/*
 * KVM_GET_MSRS/KVM_SET_MSRS stop at the first MSR they refuse and return
 * how many they did; skip that one and carry on with the rest. Returns how
 * many of @n entries went through (refused ones are marked with index ~0).
 */
static uint32_t x86_msrs_batch(int fd, unsigned long req, struct kvm_msr_entry *e, uint32_t n)
{
	struct kvm_msrs *m = malloc(sizeof(*m) + X86_MAX_MSRS * sizeof(*e));
	uint32_t i = 0, done = 0;

	if (!m)
		return 0;
	while (i < n) {
		int r;

		memset(m, 0, sizeof(*m));
		m->nmsrs = n - i;
		memcpy(m->entries, e + i, (n - i) * sizeof(*e));
		r = ioctl(fd, req, m);
		if (r < 0)
			break;
		memcpy(e + i, m->entries, (size_t)r * sizeof(*e));
		done += (uint32_t)r;
		i += (uint32_t)r;
		if (i < n) {
			log_debug("MSR %#x refused by KVM (%s)", e[i].index,
				  req == KVM_GET_MSRS ? "read" : "write");
			e[i++].index = ~0U;
		}
	}
	free(m);
	return done;
}

/* The MSRs KVM lists as saved and restored across migration (vm_arch.state_caps). */
static int x86_get_msrs(struct vcpu *vcpu, struct x86_vcpu_state *st)
{
	const struct kvm_msr_list *list = vcpu->vm->arch->state_caps->msrs;
	uint32_t j = 0;

	st->msrs = calloc(list->nmsrs ? list->nmsrs : 1, sizeof(*st->msrs));
	if (!st->msrs)
		return -ENOMEM;
	for (uint32_t i = 0; i < list->nmsrs; i++)
		st->msrs[i].index = list->indices[i];
	x86_msrs_batch(vcpu->fd, KVM_GET_MSRS, st->msrs, list->nmsrs);
	for (uint32_t i = 0; i < list->nmsrs; i++) /* keep the ones that could be read */
		if (st->msrs[i].index != ~0U)
			st->msrs[j++] = st->msrs[i];
	st->nmsrs = j;
	return 0;
}

static int x86_get_fpu(struct vcpu *vcpu, struct x86_vcpu_state *st)
{
	const struct x86_state_caps *caps = vcpu->vm->arch->state_caps;

	st->has_xsave = caps->has_xsave;
	if (!st->has_xsave)
		return __kvm_ioctl(vcpu->fd, KVM_GET_FPU, &st->fpu);
	st->xsave_len = caps->xsave_len;
	if (st->xsave_len > X86_XSAVE_MAX)
		return -E2BIG;
	st->xsave = calloc(1, st->xsave_len);
	if (!st->xsave)
		return -ENOMEM;
	if (ioctl(vcpu->fd, caps->xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, st->xsave) < 0)
		return -errno;
	return 0;
}

/* Unless an earlier call failed: @req on the vCPU, a failure logged with the request's name. */
#define VCPU_IOCTL(req, arg)                                                                       \
	do {                                                                                       \
		if (ret == 0 && (ret = __kvm_ioctl(vcpu->fd, req, arg)) < 0)                       \
			log_error("vCPU %u: " #req ": %s", vcpu->index, strerror(-ret));           \
	} while (0)

static int x86_vcpu_read(struct vcpu *vcpu, struct x86_vcpu_state *st)
{
	struct vm *vm = vcpu->vm;
	int khz, ret = x86_get_cpuid(vcpu, st);

	if (ret == 0)
		ret = x86_get_fpu(vcpu, st);
	if (ret == 0)
		ret = x86_get_msrs(vcpu, st);
	khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);
	st->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
	VCPU_IOCTL(KVM_GET_REGS, &st->regs);
	VCPU_IOCTL(KVM_GET_SREGS, &st->sregs);
	st->has_xcrs = vm->arch->state_caps->has_xcrs;
	if (st->has_xcrs)
		VCPU_IOCTL(KVM_GET_XCRS, &st->xcrs);
	st->has_lapic = !vm->cfg.no_irqchip;
	if (st->has_lapic)
		VCPU_IOCTL(KVM_GET_LAPIC, &st->lapic);
	VCPU_IOCTL(KVM_GET_MP_STATE, &st->mp);
	VCPU_IOCTL(KVM_GET_VCPU_EVENTS, &st->events);
	VCPU_IOCTL(KVM_GET_DEBUGREGS, &st->dregs);
	return ret;
}

int arch_vcpu_save(struct vcpu *vcpu, struct state_io *io)
{
	struct x86_vcpu_state st = {0};
	int ret = x86_vcpu_read(vcpu, &st);

	if (ret == 0)
		ret = x86_vcpu_state_io(io, &st);
	x86_vcpu_state_free(&st);
	return ret;
}

/* --- CPU features: refuse a snapshot that uses what this host lacks --- */

struct feature_reg {
	uint32_t function, index;
	int reg;	 /* 0 eax, 1 ebx, 2 ecx, 3 edx */
	uint32_t ignore; /* bits that reflect run-time state, not features */
	const char *name;
};

static const struct feature_reg feature_regs[] = {
    {0x1, 0, 2, 1U << 27 | 1U << 31, "CPUID.1:ECX"}, /* OSXSAVE, hypervisor */
    {0x1, 0, 3, 1U << 9, "CPUID.1:EDX"},	     /* APIC (follows APIC base) */
    {0x7, 0, 1, 0, "CPUID.7.0:EBX"},
    {0x7, 0, 2, 1U << 4, "CPUID.7.0:ECX"}, /* OSPKE */
    {0x7, 0, 3, 0, "CPUID.7.0:EDX"},
    {0x7, 1, 0, 0, "CPUID.7.1:EAX"},
    {0xd, 1, 0, 0, "CPUID.D.1:EAX"},
    {0x80000001, 0, 2, 0, "CPUID.80000001:ECX"},
    {0x80000001, 0, 3, 0, "CPUID.80000001:EDX"},
    {0x80000008, 0, 1, 0, "CPUID.80000008:EBX"},
};

static const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid2 *c, uint32_t fn,
						 uint32_t index)
{
	/* An exact (leaf, subleaf) first: KVM_GET_CPUID2 may not report the flags. */
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == index)
			return &c->entries[i];
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn &&
		    !(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX))
			return &c->entries[i];
	return NULL;
}

static uint32_t cpuid_reg(const struct kvm_cpuid_entry2 *e, int reg)
{
	if (!e)
		return 0;
	return reg == 0 ? e->eax : reg == 1 ? e->ebx : reg == 2 ? e->ecx : e->edx;
}

/* 0, or -ENOTSUP after logging which features the host lacks. */
static int x86_cpuid_compatible(const struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *host)
{
	int ret = 0;

	for (size_t i = 0; i < sizeof(feature_regs) / sizeof(feature_regs[0]); i++) {
		const struct feature_reg *f = &feature_regs[i];
		uint32_t want = cpuid_reg(cpuid_find(saved, f->function, f->index), f->reg);
		uint32_t have = cpuid_reg(cpuid_find(host, f->function, f->index), f->reg);
		uint32_t missing = want & ~have & ~f->ignore;

		if (missing) {
			log_error("the snapshot's CPU uses features this host lacks: %s bits %#x",
				  f->name, missing);
			ret = -ENOTSUP;
		}
	}
	return ret;
}

/*
 * Compare with what this host gives a fresh vCPU: the CPUID arch_vcpu_init
 * set from KVM_GET_SUPPORTED_CPUID, read back through KVM_GET_CPUID2 as at
 * save time (KVM, and PVM even more, adjust some leaves when they are set,
 * so the supported list itself is not the same baseline).
 */
static int x86_vcpu_cpuid_check(struct vcpu *vcpu, const struct kvm_cpuid2 *saved)
{
	const struct vm_arch *arch = vcpu->vm->arch;

	return x86_cpuid_compatible(saved,
				    arch->fresh_cpuid ? arch->fresh_cpuid : arch->supported_cpuid);
}

void x86_restore_baseline(struct vcpu *vcpu)
{
	struct vm_arch *arch = vcpu->vm->arch;
	struct x86_vcpu_state fresh = {0};
	int khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);

	arch->fresh_tsc_khz = khz > 0 ? (uint32_t)khz : 0;
	/* Without it the check falls back to the supported list. */
	if (x86_get_cpuid(vcpu, &fresh) == 0) {
		free(arch->fresh_cpuid);
		arch->fresh_cpuid = fresh.cpuid;
		fresh.cpuid = NULL;
	}
	x86_vcpu_state_free(&fresh);
}

/* --- writing a vCPU back into KVM --- */

/* Each vCPU is restored once, as created (cfg.restoring): at the rate vCPU 0 had then. */
static int x86_set_tsc_khz(struct vcpu *vcpu, uint32_t khz)
{
	uint32_t fresh = vcpu->vm->arch->fresh_tsc_khz;
	int cur = fresh ? (int)fresh : ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);

	if (khz == 0 || cur <= 0 || (uint32_t)cur == khz)
		return 0;
	if (ioctl(vcpu->fd, KVM_SET_TSC_KHZ, (unsigned long)khz) < 0)
		log_warn("vCPU %u: the snapshot's TSC ran at %u kHz, this host's at %d kHz and "
			 "KVM cannot scale it: guest time will drift",
			 vcpu->index, khz, cur);
	return 0;
}

static int x86_set_fpu(struct vcpu *vcpu, struct x86_vcpu_state *st)
{
	uint32_t host_len = vcpu->vm->arch->state_caps->xsave_len;
	uint8_t *buf;
	int ret = 0;

	if (!st->has_xsave)
		return __kvm_ioctl(vcpu->fd, KVM_SET_FPU, &st->fpu);
	if (st->xsave_len > host_len) {
		log_error("the snapshot's XSAVE area (%u bytes) is larger than this host's (%u)",
			  st->xsave_len, host_len);
		return -ENOTSUP;
	}
	buf = calloc(1, host_len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, st->xsave, st->xsave_len);
	VCPU_IOCTL(KVM_SET_XSAVE, buf);
	free(buf);
	return ret;
}

static int x86_set_msrs(struct vcpu *vcpu, struct x86_vcpu_state *st)
{
	uint32_t done = x86_msrs_batch(vcpu->fd, KVM_SET_MSRS, st->msrs, st->nmsrs);

	if (done < st->nmsrs)
		log_debug("vCPU %u: %u of %u MSRs restored", vcpu->index, done, st->nmsrs);
	return 0;
}

/*
 * The TSC deadline again, after KVM_SET_LAPIC: KVM keeps it only while the
 * LAPIC timer is in TSC-deadline mode, which the MSR pass ran before. A
 * lost deadline leaves a guest that sleeps waiting for a timer forever.
 */
static void x86_set_tsc_deadline(struct vcpu *vcpu, struct x86_vcpu_state *st)
{
	for (uint32_t i = 0; i < st->nmsrs; i++)
		if (st->msrs[i].index == MSR_IA32_TSC_DEADLINE)
			x86_msrs_batch(vcpu->fd, KVM_SET_MSRS, &st->msrs[i], 1);
}

/*
 * vCPU 0 was read back when it was created (x86_restore_baseline): when
 * the saved CPUID is that one, setting it again changes nothing and costs
 * an ioctl inside a restore's or a migration's pause. Other vCPUs differ
 * from vCPU 0 in their APIC IDs and are always set.
 */
static int x86_set_cpuid(struct vcpu *vcpu, const struct x86_vcpu_state *st)
{
	int ret = 0;

	if (vcpu->index == 0 && x86_cpuid_same(st->cpuid, vcpu->vm->arch->fresh_cpuid))
		return 0;
	VCPU_IOCTL(KVM_SET_CPUID2, st->cpuid);
	return ret;
}

static int x86_vcpu_write(struct vcpu *vcpu, struct x86_vcpu_state *st)
{
	int ret = x86_set_cpuid(vcpu, st);

	if (ret == 0)
		ret = x86_set_tsc_khz(vcpu, st->tsc_khz);
	VCPU_IOCTL(KVM_SET_SREGS, &st->sregs);
	VCPU_IOCTL(KVM_SET_REGS, &st->regs);
	if (ret == 0)
		ret = x86_set_fpu(vcpu, st);
	if (st->has_xcrs)
		VCPU_IOCTL(KVM_SET_XCRS, &st->xcrs);
	if (ret == 0)
		ret = x86_set_msrs(vcpu, st);
	if (st->has_lapic && !vcpu->vm->cfg.no_irqchip) {
		VCPU_IOCTL(KVM_SET_LAPIC, &st->lapic);
		if (ret == 0)
			x86_set_tsc_deadline(vcpu, st);
	}
	VCPU_IOCTL(KVM_SET_MP_STATE, &st->mp);
	st->events.flags &= EVENTS_VALID_FLAGS;
	st->events.exception_has_payload = 0;
	st->events.triple_fault.pending = 0;
	VCPU_IOCTL(KVM_SET_VCPU_EVENTS, &st->events);
	VCPU_IOCTL(KVM_SET_DEBUGREGS, &st->dregs);
	return ret;
}

int arch_vcpu_restore(struct vcpu *vcpu, struct state_io *io)
{
	struct x86_vcpu_state st = {0};
	int ret = x86_vcpu_state_io(io, &st);

	if (ret == 0)
		ret = state_io_finish(io);
	if (ret == 0 && st.has_lapic != !vcpu->vm->cfg.no_irqchip)
		ret = -EBADMSG;
	if (ret == 0)
		ret = x86_vcpu_cpuid_check(vcpu, st.cpuid);
	if (ret == 0)
		ret = x86_vcpu_write(vcpu, &st);
	x86_vcpu_state_free(&st);
	return ret;
}

/* --- the VM: PIC, IOAPIC, PIT, clock --- */

struct x86_vm_state {
	bool has_irqchip;
	struct kvm_irqchip pic[2]; /* master, slave */
	struct kvm_irqchip ioapic;
	struct kvm_pit_state2 pit;
	uint64_t pit_saved_ns; /* CLOCK_MONOTONIC when the PIT was read */
	struct kvm_clock_data clock;
};

static void pic_io(struct state_io *io, struct kvm_pic_state *p)
{
	uint8_t *f[] = {&p->last_irr,
			&p->irr,
			&p->imr,
			&p->isr,
			&p->priority_add,
			&p->irq_base,
			&p->read_reg_select,
			&p->poll,
			&p->special_mask,
			&p->init_state,
			&p->auto_eoi,
			&p->rotate_on_auto_eoi,
			&p->special_fully_nested_mode,
			&p->init4,
			&p->elcr,
			&p->elcr_mask};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		state_u8(io, f[i]);
}

static void ioapic_io(struct state_io *io, struct kvm_ioapic_state *a)
{
	u64_io(io, &a->base_address);
	state_u32(io, &a->ioregsel);
	state_u32(io, &a->id);
	state_u32(io, &a->irr);
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		u64_io(io, &a->redirtbl[i].bits);
}

static void pit_io(struct state_io *io, struct kvm_pit_state2 *p)
{
	for (int i = 0; i < 3; i++) {
		struct kvm_pit_channel_state *c = &p->channels[i];
		uint64_t t = (uint64_t)c->count_load_time;

		state_u32(io, &c->count);
		state_u16(io, &c->latched_count);
		state_u8(io, &c->count_latched);
		state_u8(io, &c->status_latched);
		state_u8(io, &c->status);
		state_u8(io, &c->read_state);
		state_u8(io, &c->write_state);
		state_u8(io, &c->write_latch);
		state_u8(io, &c->rw_mode);
		state_u8(io, &c->mode);
		state_u8(io, &c->bcd);
		state_u8(io, &c->gate);
		state_u64(io, &t);
		c->count_load_time = (int64_t)t;
	}
	state_u32(io, &p->flags);
}

static int x86_vm_state_io(struct state_io *io, struct x86_vm_state *st)
{
	uint8_t version = X86_VM_STATE_VERSION;

	state_u8(io, &version);
	if (!io->err && version != X86_VM_STATE_VERSION)
		io->err = -EPROTO;
	state_bool(io, &st->has_irqchip);
	if (st->has_irqchip) {
		pic_io(io, &st->pic[0].chip.pic);
		pic_io(io, &st->pic[1].chip.pic);
		ioapic_io(io, &st->ioapic.chip.ioapic);
		pit_io(io, &st->pit);
		state_u64(io, &st->pit_saved_ns);
	}
	u64_io(io, &st->clock.clock);
	state_u32(io, &st->clock.flags);
	return io->err;
}

#define VMIOCTL(what, req, arg)                                                                    \
	do {                                                                                       \
		if (ret == 0 && (ret = __kvm_ioctl(vm->vm_fd, req, arg)) < 0)                      \
			log_error(what ": %s", strerror(-ret));                                    \
	} while (0)

int arch_vm_save(struct vm *vm, struct state_io *io)
{
	struct x86_vm_state st = {.has_irqchip = !vm->cfg.no_irqchip};
	int ret = 0;

	if (st.has_irqchip) {
		st.pic[0].chip_id = KVM_IRQCHIP_PIC_MASTER;
		st.pic[1].chip_id = KVM_IRQCHIP_PIC_SLAVE;
		st.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
		VMIOCTL("KVM_GET_IRQCHIP (PIC master)", KVM_GET_IRQCHIP, &st.pic[0]);
		VMIOCTL("KVM_GET_IRQCHIP (PIC slave)", KVM_GET_IRQCHIP, &st.pic[1]);
		VMIOCTL("KVM_GET_IRQCHIP (IOAPIC)", KVM_GET_IRQCHIP, &st.ioapic);
		VMIOCTL("KVM_GET_PIT2", KVM_GET_PIT2, &st.pit);
		st.pit_saved_ns = now_ns();
	}
	VMIOCTL("KVM_GET_CLOCK", KVM_GET_CLOCK, &st.clock);
	if (ret == 0 && !(st.clock.flags & KVM_CLOCK_TSC_STABLE))
		log_debug("kvmclock is not TSC-stable on this host: the saved clock is KVM's "
			  "own reading, which the guest may have seen slightly ahead");
	return ret ? ret : x86_vm_state_io(io, &st);
}

/*
 * The PIT's count_load_time is host CLOCK_MONOTONIC (ktime): shift it by
 * the time since the save, so a running channel keeps its phase. Both
 * values come from the snapshot file, so the sum wraps (in unsigned
 * arithmetic) rather than overflow: a nonsense time is only a nonsense
 * phase for the guest's PIT.
 */
static void pit_rebase(struct x86_vm_state *st)
{
	uint64_t delta = now_ns() - st->pit_saved_ns;

	for (int i = 0; i < 3; i++) {
		uint64_t t = (uint64_t)st->pit.channels[i].count_load_time + delta;

		st->pit.channels[i].count_load_time = (int64_t)t;
	}
}

int arch_vm_restore(struct vm *vm, struct state_io *io)
{
	struct x86_vm_state st = {0};
	struct kvm_clock_data clock = {0};
	int ret = x86_vm_state_io(io, &st);

	if (ret == 0)
		ret = state_io_finish(io);
	if (ret == 0 && st.has_irqchip != !vm->cfg.no_irqchip)
		ret = -EBADMSG;
	if (ret == 0 && st.has_irqchip) {
		st.pic[0].chip_id = KVM_IRQCHIP_PIC_MASTER;
		st.pic[1].chip_id = KVM_IRQCHIP_PIC_SLAVE;
		st.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
		pit_rebase(&st);
		VMIOCTL("KVM_SET_IRQCHIP (PIC master)", KVM_SET_IRQCHIP, &st.pic[0]);
		VMIOCTL("KVM_SET_IRQCHIP (PIC slave)", KVM_SET_IRQCHIP, &st.pic[1]);
		VMIOCTL("KVM_SET_IRQCHIP (IOAPIC)", KVM_SET_IRQCHIP, &st.ioapic);
		VMIOCTL("KVM_SET_PIT2", KVM_SET_PIT2, &st.pit);
	}
	/*
	 * The clock goes last and as saved: the guest continues from the
	 * instant it was paused (no KVM_CLOCK_REALTIME jump); only
	 * KVM_CLOCK_REALTIME is a flag KVM_SET_CLOCK honours, so none is passed.
	 */
	clock.clock = st.clock.clock;
	VMIOCTL("KVM_SET_CLOCK", KVM_SET_CLOCK, &clock);
	return ret;
}
