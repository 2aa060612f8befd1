/* The --memory option of `banyan run`: SIZE[,hugepages=2M][,mergeable][,prefault][,shared]. */
#ifndef BANYAN_CLI_MEMORY_OPTION_H
#define BANYAN_CLI_MEMORY_OPTION_H

#include <stddef.h>

struct vmcfg;

/*
 * memory_option_parse - set machine-config's memory from @arg as PATCH
 * /machine-config would: SIZE in whole MiB (512M, 2G; no suffix: MiB),
 * then words hugepages=2M (huge_pages "2M"; hugepages=none: "None"),
 * mergeable (mem_mergeable) and prefault (mem_prefault). @arg is split in
 * place. Returns 0, or -EINVAL with a one-line reason in @err (@errlen
 * bytes), @c unchanged.
 */
int memory_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
