/* The KVM ioctl wrappers: results, -errno, and the request's name in the error. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "vmm/kvm.h"

static void raw_returns_minus_errno(void **state)
{
	int p[2];

	(void)state;
	assert_int_equal(__kvm_ioctl(-1, KVM_GET_API_VERSION, 0), -EBADF);
	assert_int_equal(pipe(p), 0);
	/* A pipe is no KVM fd: the kernel answers ENOTTY. */
	assert_int_equal(__kvm_ioctl(p[0], KVM_GET_API_VERSION, 0), -ENOTTY);
	close(p[0]);
	close(p[1]);
}

static void checked_names_the_request(void **state)
{
	int p[2];
	char want[128];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(kvm_ioctl(p[0], KVM_SET_REGS, NULL), -ENOTTY);
	snprintf(want, sizeof(want), "KVM_SET_REGS: %s", strerror(ENOTTY));
	assert_string_equal(log_last_error(), want);
	close(p[0]);
	close(p[1]);
}

static void checked_passes_results_through(void **state)
{
	(void)state;
	assert_int_equal(kvm_ioctl_check(0, "KVM_RUN"), 0);
	assert_int_equal(kvm_ioctl_check(7, "KVM_CREATE_VCPU"), 7);
	assert_int_equal(kvm_ioctl_check(-EINVAL, "KVM_IRQFD"), -EINVAL);
	assert_non_null(strstr(log_last_error(), "KVM_IRQFD: "));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(raw_returns_minus_errno),
	    cmocka_unit_test(checked_names_the_request),
	    cmocka_unit_test(checked_passes_results_through),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
