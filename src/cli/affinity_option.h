/* The --cpu-affinity option of `banyan run`: vcpu=LIST[,vcpuN=LIST...][,io=LIST]. */
#ifndef BANYAN_CLI_AFFINITY_OPTION_H
#define BANYAN_CLI_AFFINITY_OPTION_H

#include <stddef.h>

struct vmcfg;

/*
 * affinity_option_parse - set machine-config's cpu_affinity from @arg as
 * PATCH /machine-config would: words ROLE=LIST where ROLE is vcpu (every
 * vCPU without a list of its own), vcpuN (vCPU N) or io (the device
 * threads) and LIST a CPU list in the kernel's syntax; a word without '='
 * continues the list before it, so "vcpu=0-1,4,io=2" is vCPUs on 0, 1 and
 * 4, devices on 2. @arg is split in place. Returns 0, or -EINVAL with a
 * one-line reason in @err (@errlen bytes), @c unchanged.
 */
int affinity_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
