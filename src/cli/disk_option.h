/* The --disk option of `banyan run`: path=FILE[,id=NAME][,ro][,cache=writeback|none]. */
#ifndef BANYAN_CLI_DISK_OPTION_H
#define BANYAN_CLI_DISK_OPTION_H

#include <stddef.h>

struct vm_config;

/*
 * disk_option_parse - add the disk @arg describes to @cfg. @arg is split in
 * place (its commas become NULs) and must outlive @cfg, as argv does. A
 * bare first word without "=" is the path. Returns 0, or -EINVAL with a
 * one-line reason in @err (@errlen bytes). Never opens the file: vm_create
 * does, so a missing file fails before the guest starts.
 */
int disk_option_parse(struct vm_config *cfg, char *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
