/*
 * KVM ioctls, in the style of the KVM selftests: __kvm_ioctl() is the raw
 * call whose caller handles failure, kvm_ioctl() the one that also logs it
 * as "KVM_SET_REGS: <reason>", the request's name taken from the macro's
 * argument. Both return the ioctl's result (0, or a value such as a new
 * fd) or -errno, never -1 with errno to read afterwards, so a log line in
 * between cannot change the error returned. For the VM, its vCPUs and the
 * architecture code: devices never issue KVM ioctls (docs/architecture.md).
 */
#ifndef BANYAN_VMM_KVM_H
#define BANYAN_VMM_KVM_H

#include <errno.h>
#include <sys/ioctl.h>

/* kvm_ioctl_result - @r, an ioctl's return value, as a result or -errno. */
static inline int kvm_ioctl_result(int r)
{
	return r < 0 ? -errno : r;
}

/*
 * kvm_ioctl_check - log "@name: <reason>" as an error when @ret (a
 * __kvm_ioctl result) is negative. Returns @ret.
 */
int kvm_ioctl_check(int ret, const char *name);

/* __kvm_ioctl - ioctl(@fd, @req, @arg): its result, or -errno. Logs nothing. */
#define __kvm_ioctl(fd, req, arg) kvm_ioctl_result(ioctl((fd), (req), (arg)))

/* kvm_ioctl - __kvm_ioctl, logging a failure with the name of @req. */
#define kvm_ioctl(fd, req, arg) kvm_ioctl_check(__kvm_ioctl(fd, req, arg), #req)

#endif
