/* The --disk option of `banyan run`: path=FILE[,id=NAME][,ro][,cache=writeback|none]. */
#ifndef BANYAN_CLI_DISK_OPTION_H
#define BANYAN_CLI_DISK_OPTION_H

#include <stddef.h>

struct vmcfg;

/*
 * disk_option_parse - add the drive @arg describes to @c through
 * vmcfg_drive, as PUT /drives would: path= is path_on_host, id= the
 * drive_id (default "banyan-vdX", the disk's default serial), ro
 * is_read_only, cache=none|writeback cache_type Direct|Writeback
 * (default Writeback), overlay= overlay_path; never the root device. A
 * bare first word without "=" is the path. @arg is split in place.
 * Returns 0, or -EINVAL with a one-line reason in @err (@errlen bytes),
 * @c unchanged. Never opens the file: vm_create does, so a missing file
 * fails before the guest starts.
 */
int disk_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
