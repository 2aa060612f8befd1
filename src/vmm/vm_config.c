/* The machine configuration's saved form. */
#include "vmm/vm_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* 2 added disk overlays; 1 is still read. */
#define CONFIG_VERSION 2
#define MAX_STRING     (64U << 10)

const char *vm_config_string(struct vm_config_strings *keep, const char *s)
{
	char *p;

	if (keep->n == VM_CONFIG_MAX_STRINGS || !(p = strdup(s)))
		return NULL;
	keep->s[keep->n++] = p;
	return p;
}

void vm_config_strings_free(struct vm_config_strings *keep)
{
	for (unsigned int i = 0; i < keep->n; i++)
		free(keep->s[i]);
	keep->n = 0;
}

/* A string: u32 length (UINT32_MAX for none), then its bytes. */
static void str_io(struct state_io *io, const char **s, struct vm_config_strings *keep)
{
	uint32_t len = *s ? (uint32_t)strlen(*s) : UINT32_MAX;
	char *p;

	if (io->loading)
		len = 0;
	state_u32(io, &len);
	if (io->err || len == UINT32_MAX) {
		if (io->loading)
			*s = NULL;
		return;
	}
	if (!io->loading) {
		state_bytes(io, (void *)(uintptr_t)*s, len);
		return;
	}
	if (len > MAX_STRING || keep->n == VM_CONFIG_MAX_STRINGS) {
		io->err = -EBADMSG;
		return;
	}
	p = calloc(1, len + 1);
	if (!p) {
		io->err = -ENOMEM;
		return;
	}
	keep->s[keep->n++] = p;
	state_bytes(io, p, len);
	*s = p;
}

/* Network cards and the vsock device. */
static void nets_io(struct state_io *io, struct vm_config *cfg, struct vm_config_strings *keep)
{
	uint8_t nnets = (uint8_t)cfg->nnets;

	state_u8(io, &nnets);
	if (!io->err && nnets > VM_MAX_NETS)
		io->err = -EBADMSG;
	for (unsigned int i = 0; i < nnets && !io->err; i++) {
		struct net_config *n = &cfg->nets[i];

		str_io(io, &n->tap, keep);
		str_io(io, &n->id, keep);
		state_bytes(io, n->mac, sizeof(n->mac));
		state_bool(io, &n->has_mac);
	}
	cfg->nnets = io->err ? 0 : nnets;
	state_u32(io, &cfg->vsock.cid);
	str_io(io, &cfg->vsock.uds_path, keep);
}

static void disks_io(struct state_io *io, struct vm_config *cfg, uint8_t version,
		     struct vm_config_strings *keep)
{
	uint8_t ndisks = (uint8_t)cfg->ndisks;

	state_u8(io, &ndisks);
	if (!io->err && ndisks > VM_MAX_DISKS)
		io->err = -EBADMSG;
	for (unsigned int i = 0; i < ndisks && !io->err; i++) {
		struct disk_config *d = &cfg->disks[i];
		uint8_t cache = (uint8_t)d->cache;

		str_io(io, &d->path, keep);
		str_io(io, &d->id, keep);
		state_bool(io, &d->read_only);
		state_u8(io, &cache);
		d->cache = cache ? DISK_CACHE_NONE : DISK_CACHE_WRITEBACK;
		if (version >= 2)
			str_io(io, &d->overlay, keep);
	}
	cfg->ndisks = io->err ? 0 : ndisks;
}

int vm_config_state(struct state_io *io, struct vm_config *cfg, struct vm_config_strings *keep)
{
	uint8_t version = CONFIG_VERSION, on_reboot = (uint8_t)cfg->on_reboot;

	state_u8(io, &version);
	if (!io->err && (version == 0 || version > CONFIG_VERSION))
		io->err = -EPROTO;
	state_u32(io, &cfg->ncpus);
	state_u64(io, &cfg->mem_size);
	state_u8(io, &on_reboot);
	state_bool(io, &cfg->no_irqchip);
	str_io(io, &cfg->kernel_path, keep);
	str_io(io, &cfg->initrd_path, keep);
	str_io(io, &cfg->cmdline, keep);
	if (!io->err && on_reboot > ON_REBOOT_RESTART)
		io->err = -EBADMSG;
	disks_io(io, cfg, version, keep);
	state_bool(io, &cfg->rng);
	nets_io(io, cfg, keep);
	cfg->on_reboot = on_reboot ? ON_REBOOT_RESTART : ON_REBOOT_EXIT;
	return io->err;
}
