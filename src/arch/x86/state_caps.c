/*
 * What the host's KVM saves and restores of a vCPU: whether it has XSAVE
 * (and how large its area is) and XCRs, and which MSRs it lists for
 * migration. None of it changes while a process lives, so it is asked
 * once, when the first VM is created, and kept: a snapshot or migration
 * then reads and writes vCPU state without asking again inside the
 * guest's pause (seven system ioctls a vCPU, each costly under nested
 * virtualization). Never freed; written once under the lock, read-only after.
 */
#include "arch/x86/x86.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>

static struct x86_state_caps *caps;
static pthread_mutex_t caps_lock = PTHREAD_MUTEX_INITIALIZER;

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

static int caps_query(int kvm_fd, struct x86_state_caps **out)
{
	struct x86_state_caps *c = calloc(1, sizeof(*c));
	int size, ret;

	if (!c)
		return -ENOMEM;
	ret = msr_index_list(kvm_fd, &c->msrs);
	if (ret < 0) {
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

int x86_state_caps(int kvm_fd, const struct x86_state_caps **out)
{
	int ret = 0;

	pthread_mutex_lock(&caps_lock);
	if (!caps)
		ret = caps_query(kvm_fd, &caps);
	*out = caps;
	pthread_mutex_unlock(&caps_lock);
	return ret;
}
