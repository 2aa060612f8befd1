/* KVM ioctls that name their request in their error (kvm.h). */
#include "vmm/kvm.h"

#include "util/log.h"

#include <string.h>

int kvm_ioctl_check(int ret, const char *name)
{
	if (ret < 0)
		log_error("%s: %s", name, strerror(-ret));
	return ret;
}
