/*
 * What the host's KVM saves and restores of a vCPU: whether it has XSAVE
 * (and how large its area is) and XCRs, and which MSRs it lists for
 * migration. None of it changes while a process lives, so x86_host_answers
 * (cpuid.c) asks once, when the first VM is created, and keeps it: a
 * snapshot or migration then reads and writes vCPU state without asking
 * again inside the guest's pause (several system ioctls a vCPU, each
 * costly under nested virtualization).
 */
#include "arch/x86/x86.h"

#include "util/log.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* KVM_GET_MSR_INDEX_LIST: the count first (E2BIG), then the list. */
static int msr_index_list(int kvm_fd, struct kvm_msr_list **out)
{
	struct kvm_msr_list probe = {.nmsrs = 0}, *list;

	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return -errno;
	if (probe.nmsrs > X86_MAX_MSRS)
		return -E2BIG;
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	if (!list)
		return -ENOMEM;
	list->nmsrs = probe.nmsrs;
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		free(list);
		return -errno;
	}
	*out = list;
	return 0;
}

int x86_state_caps_query(int kvm_fd, struct x86_state_caps **out)
{
	struct x86_state_caps *c = calloc(1, sizeof(*c));
	int size, ret;

	if (!c)
		return -ENOMEM;
	ret = msr_index_list(kvm_fd, &c->msrs);
	if (ret < 0) {
		log_error("KVM_GET_MSR_INDEX_LIST: %s", strerror(-ret));
		free(c);
		return ret;
	}
	size = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	c->xsave2 = size > (int)sizeof(struct kvm_xsave);
	c->xsave_len = c->xsave2 ? (uint32_t)size : sizeof(struct kvm_xsave);
	c->has_xsave = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0;
	c->has_xcrs = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	*out = c;
	return 0;
}
