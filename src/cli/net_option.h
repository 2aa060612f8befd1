/*
 * The --net and --vsock options of `banyan run`:
 *   --net tap=NAME[,mac=MAC][,id=ID]
 *   --vsock cid=N,socket=PATH
 */
#ifndef BANYAN_CLI_NET_OPTION_H
#define BANYAN_CLI_NET_OPTION_H

#include <stddef.h>

struct vmcfg;

/*
 * net_option_parse - add the interface @arg describes to @c through
 * vmcfg_net, as PUT /network-interfaces would: tap= is host_dev_name,
 * mac= guest_mac, id= iface_id (default "netN", N its place). A bare first
 * word without "=" is the TAP name. @arg is split in place. Returns 0, or
 * -EINVAL with a one-line reason in @err (@errlen bytes), @c unchanged: no
 * tap, a bad or multicast MAC, a TAP, MAC or id used twice, more than
 * VM_MAX_NETS interfaces. Never opens the TAP: vm_create does.
 */
int net_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * vsock_option_parse - the vsock device @arg describes, through
 * vmcfg_vsock (cid= is guest_cid, socket= uds_path). Same conventions as
 * net_option_parse; a second --vsock is refused.
 */
int vsock_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
