/*
 * Snapshots of a whole VM and their restore (docs/snapshots.md): every
 * vCPU and the VM-wide KVM state through the arch hooks, every device
 * through its state operation (walking the one device list), the machine
 * configuration, and guest memory as a sparse file that a restore maps
 * copy-on-write. Diff snapshots hold only the pages written since their
 * parent (dirty-page logging); restore composes the chain.
 */
#ifndef BANYAN_SNAPSHOT_SNAPSHOT_H
#define BANYAN_SNAPSHOT_SNAPSHOT_H

#include <stdbool.h>

#include "snapshot/format.h"
#include "vmm/vm.h"

struct snapshot_create_opts {
	const char *dir;  /* where the snapshot goes (a new directory) */
	bool overwrite;	  /* @dir may be an existing snapshot, replaced atomically */
	bool diff;	  /* only the pages written since the parent */
	bool stay_paused; /* leave the VM paused afterwards (else as it was) */
	/* Firecracker's mem_file_path: a new hard link (or symlink) to the memory file */
	const char *mem_link;
};

/*
 * snapshot_create - pause @vm, save it into @o->dir, resume it unless asked
 * otherwise (or it was paused before). Call from any thread but a vCPU's.
 * Refused before the VM is paused: an existing @o->dir that is not a
 * snapshot, or is one without @o->overwrite, or one diff snapshots in its
 * directory depend on; an existing @o->mem_link. Returns 0, or -errno with
 * a one-line reason in @err (the VM keeps running; whatever was at
 * @o->dir and @o->mem_link is untouched).
 */
int snapshot_create(struct vm *vm, const struct snapshot_create_opts *o, char *err)
    __attribute__((warn_unused_result));

/* A snapshot chain opened and checked for restore. */
struct snapshot_image;

/*
 * snapshot_open - read @dir's manifest, follow its parents down to the full
 * snapshot, check every manifest, section CRC and memory file size (and with
 * @verify_memory the memory CRCs too), and decode the machine configuration.
 * Nothing touches KVM. 0 or -errno with @err.
 */
int snapshot_open(const char *dir, bool verify_memory, struct snapshot_image **out, char *err)
    __attribute__((warn_unused_result));

/* snapshot_config - the machine the snapshot was taken of (owned by @img). */
const struct vm_config *snapshot_config(const struct snapshot_image *img);

/* snapshot_manifest - the manifest of the snapshot @img restores (the chain's top). */
const struct snap_manifest *snapshot_manifest(const struct snapshot_image *img);

struct snapshot_restore_opts {
	int console_out_fd; /* where the serial console writes */
	int clone_index;    /* >= 0: clone number, for a distinct MAC and vsock CID */
};

/*
 * snapshot_prepare_clone - make @img's machine clone @index (>= 0) of the
 * snapshot's, before it is restored: its own TAP ("TAP-index"), vsock
 * socket ("PATH.index") and, for every writable disk, its own overlay
 * "@overlay_prefix.vdX.overlay" over the recorded disk (new, or a copy of
 * the snapshot's overlay). Call it in the clone's process. 0 or -errno
 * with @err.
 */
int snapshot_prepare_clone(struct snapshot_image *img, int index, const char *overlay_prefix,
			   char *err) __attribute__((warn_unused_result));

/*
 * snapshot_restore - create a VM from @img (memory mapped from the files,
 * not read), load every vCPU, the VM state and the devices, give it a new
 * generation ID (and for a clone a new identity). The VM is not started
 * and is paused, devices included (vm_pause): vm_start it, then vm_resume.
 * @img must outlive the VM. 0 or -errno with @err; nothing is left running.
 */
int snapshot_restore(struct snapshot_image *img, const struct snapshot_restore_opts *o,
		     struct vm **out, char *err) __attribute__((warn_unused_result));

/* snapshot_close - release @img (after the VM restored from it is destroyed). */
void snapshot_close(struct snapshot_image *img);

/*
 * snapshot_clone_identity - give the VM restored as clone @index (>= 0) its
 * own network identity: a MAC per virtio-net card and a vsock CID derived
 * from the snapshot's and @index. Does nothing for @index < 0 (a plain
 * restore keeps them). The VM is not running. 0 or -errno.
 */
int snapshot_clone_identity(struct vm *vm, int index) __attribute__((warn_unused_result));

/* snapshot_forget - drop @vm's snapshot bookkeeping (vm_destroy calls it). */
void snapshot_forget(struct vm *vm);

#endif
