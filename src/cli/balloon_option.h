/* --balloon, another spelling of the config document's "balloon" section (docs/memory.md). */
#ifndef BANYAN_CLI_BALLOON_OPTION_H
#define BANYAN_CLI_BALLOON_OPTION_H

#include <stddef.h>

#include "config/vmcfg.h"

/*
 * balloon_option_parse - --balloon[=amount=MIB][,deflate_on_oom][,stats=SECS]
 * [,reporting=on|off]: add the balloon to @c (alone: an empty balloon with
 * free page reporting on). 0, or -EINVAL with a one-line reason in @err.
 * @arg is split in place.
 */
int balloon_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
