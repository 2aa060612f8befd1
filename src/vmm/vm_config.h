/*
 * The machine configuration's saved form (a snapshot's config section,
 * docs/snapshot-format.md): every field of struct vm_config that describes
 * the machine, through the symmetric state encoder (vmm/state.h).
 */
#ifndef BANYAN_VMM_VM_CONFIG_H
#define BANYAN_VMM_VM_CONFIG_H

#include "vmm/state.h"
#include "vmm/vm.h"

/* Room for every string of a configuration, and a few the caller adds. */
#define VM_CONFIG_MAX_STRINGS (4 + 5 * VM_MAX_DISKS + 3 * VM_MAX_NETS + 2)

/* The strings a loaded configuration points to; vm_config_strings_free releases them. */
struct vm_config_strings {
	char *s[VM_CONFIG_MAX_STRINGS];
	unsigned int n;
};

/*
 * vm_config_state - save @cfg into @io, or load it (strings allocated into
 * @keep, each at most 64 KiB; counts and enums checked). Host-side and
 * per-run fields (console, memory file, restore instance) are not part of
 * it. 0, -EPROTO for a newer version, -EBADMSG, -ENOMEM.
 */
int vm_config_state(struct state_io *io, struct vm_config *cfg, struct vm_config_strings *keep)
    __attribute__((warn_unused_result));

/* vm_config_string - a copy of @s kept in @keep; NULL when out of memory or room. */
const char *vm_config_string(struct vm_config_strings *keep, const char *s);

/* vm_config_strings_free - release every string kept in @keep. */
void vm_config_strings_free(struct vm_config_strings *keep);

#endif
