/*
 * The options of `banyan run` for guests other than Linux:
 *   --device NAME[,iobase=PORT][,iosize=N]   an opt-in device
 *   --initrd FILE[,cmdline=TEXT]             repeatable: multiboot modules
 *   --fw-cfg name=opt/NAME,file=PATH|string=TEXT   a fw_cfg user file
 */
#ifndef BANYAN_CLI_GUEST_OPTION_H
#define BANYAN_CLI_GUEST_OPTION_H

#include <stddef.h>

#include <json-c/json.h>

struct vmcfg;

/*
 * device_option_parse - add the device @arg names to @c through
 * vmcfg_device, as a "devices" element of the config document would:
 * debug-exit (iobase= a port, decimal or 0x hex; iosize= 1, 2 or 4) or
 * testdev. @arg is split in place. 0, or -EINVAL with a one-line reason in
 * @err (@errlen bytes), @c unchanged.
 */
int device_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * fw_cfg_option_parse - add the fw_cfg user file @arg describes through
 * vmcfg_fw_cfg_file (the fw-cfg device comes with it). string= takes the
 * rest of @arg, commas included, so it comes last. Same conventions as
 * device_option_parse.
 */
int fw_cfg_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * initrd_options_body - put the @n --initrd values @args into the
 * boot-source @body: one plain FILE is "initrd_path" (Linux's initrd, or a
 * multiboot kernel's one module); several, or any with ",cmdline=TEXT"
 * (the rest of the word, commas included), are "modules", in order, which
 * only a multiboot kernel accepts. @args are split in place. 0, or
 * -EINVAL with @err.
 */
int initrd_options_body(json_object *body, char **args, unsigned int n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
