/*
 * The --net and --vsock options of `banyan run`:
 *   --net tap=NAME[,mac=MAC][,id=ID]
 *   --vsock cid=N,socket=PATH
 */
#ifndef BANYAN_CLI_NET_OPTION_H
#define BANYAN_CLI_NET_OPTION_H

#include <stddef.h>

struct vm_config;

/*
 * net_option_parse - add the interface @arg describes to @cfg. @arg is
 * split in place and must outlive @cfg, as argv does. A bare first word
 * without "=" is the TAP name. Returns 0, or -EINVAL with a one-line reason
 * in @err (@errlen bytes): no tap, a bad or multicast MAC, an id used twice,
 * more than VM_MAX_NETS interfaces. Never opens the TAP: vm_create does.
 */
int net_option_parse(struct vm_config *cfg, char *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * vsock_option_parse - the vsock device @arg describes: a CID from 3 to
 * 2^32-2 and a socket path that fits a sockaddr_un with a "_PORT" suffix.
 * Same conventions as net_option_parse; a second --vsock is refused.
 */
int vsock_option_parse(struct vm_config *cfg, char *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
