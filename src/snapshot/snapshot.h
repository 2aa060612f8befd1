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
#include "vmm/state.h"
#include "vmm/vm.h"

/*
 * A VM's place in the snapshot tree: the snapshot its next diff builds on.
 * Kept by whoever runs the VM (the run loop, for the API), set by a
 * snapshot or a restore, forgotten with the VM (a reboot starts afresh).
 */
struct snapshot_lineage {
	bool has_parent;
	char parent_dir[PATH_MAX];
	char parent_id[SNAP_ID_LEN + 1];
};

struct snapshot_create_opts {
	const char *dir; /* where the snapshot goes (a new directory) */
	bool overwrite;	 /* @dir may be an existing snapshot, replaced atomically */
	/* Read for a diff and for the manifest's parent; set to this snapshot on success. NULL:
	 * none. */
	struct snapshot_lineage *lineage;
	bool diff;	  /* only the pages written since the parent */
	bool stay_paused; /* leave the VM paused afterwards (else as it was) */
	/* Firecracker's mem_file_path: a new hard link (or symlink) to the memory file */
	const char *mem_link;
	/* NULL, or the bytes of guest memory written so far, as it goes (the API's progress) */
	_Atomic uint64_t *progress;
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

struct vmcfg;

/*
 * snapshot_document - the same machine as its JSON document (config/vmcfg.h),
 * which the snapshot records and snapshot_config is built from (owned by
 * @img). A clone's own names are not in it: its devices derive them from
 * the restore instance (device.h, struct dev_instance).
 */
const struct vmcfg *snapshot_document(const struct snapshot_image *img);

/* snapshot_manifest - the manifest of the snapshot @img restores (the chain's top). */
const struct snap_manifest *snapshot_manifest(const struct snapshot_image *img);

struct snapshot_restore_opts {
	int console_out_fd;		  /* where the serial console writes */
	struct snapshot_lineage *lineage; /* set to the restored snapshot; NULL: not kept */
};

/*
 * snapshot_prepare_clone - make @img's machine clone @index (>= 0) of the
 * snapshot's, or with @index -1 the plain restore, before it is restored:
 * it records the VM's struct dev_instance, and each device picks its own
 * host resources from it when it is created (a clone's TAP "TAP-index",
 * vsock socket "PATH.index", a disk overlay "@overlay_prefix.vdX.overlay"
 * for every writable disk; a plain restore's overlays for the disks that
 * had one). @overlay_prefix is the operator's (NULL: none; a snapshot
 * carrying an overlay then cannot be restored). Call it in the clone's
 * process. 0 or -errno with @err.
 */
int snapshot_prepare_clone(struct snapshot_image *img, int index, const char *overlay_prefix,
			   char *err) __attribute__((warn_unused_result));

/*
 * snapshot_restore - create a VM from @img (memory mapped from the files,
 * not read), load every vCPU, the VM state and the devices, then call
 * every device's clone operation (a new generation ID; for a clone a new
 * identity; files the devices staged take their places). Nothing outside
 * the staged files is written before every step succeeded. The VM is not
 * started and is paused, devices included (vm_pause): vm_start it, then
 * vm_resume. @img must outlive the VM. 0 or -errno with @err; nothing is
 * left running.
 */
int snapshot_restore(struct snapshot_image *img, const struct snapshot_restore_opts *o,
		     struct vm **out, char *err) __attribute__((warn_unused_result));

/*
 * The machine's state in parts, each one symmetric function per device or
 * vCPU: snapshots store each part as a section, live migration sends each
 * as a stream section. One list of what is saved, for both.
 */
enum snapshot_part {
	SNAPSHOT_PART_CONFIG,  /* the machine's JSON document, behind a version byte */
	SNAPSHOT_PART_DEVICES, /* every device on the VM's list, through its state operation */
	SNAPSHOT_PART_VCPUS,   /* every vCPU (arch_vcpu_save) */
	SNAPSHOT_PART_VM,      /* interrupt controllers and clock (arch_vm_save) */
};

/*
 * snapshot_part_save - encode @part of paused @vm into @io (a new saver:
 * state_io_free it, also on failure). 0 or -errno with @err.
 */
int snapshot_part_save(struct vm *vm, enum snapshot_part part, struct state_io *io, char *err)
    __attribute__((warn_unused_result));

/*
 * snapshot_part_load - load @part (not CONFIG) from @buf (@len bytes, from
 * a peer: every length in it is checked) into paused, not yet started @vm.
 * Load VCPUS, then VM, then DEVICES. 0 or -errno with @err.
 */
int snapshot_part_load(struct vm *vm, enum snapshot_part part, const uint8_t *buf, size_t len,
		       char *err) __attribute__((warn_unused_result));

/*
 * snapshot_config_decode - the CONFIG part (any version still read) into
 * @doc (vmcfg_init'ed by the caller, freed by it also on failure). The
 * log and metrics files are dropped: they were the saving process's.
 * 0 or -errno with @err.
 */
int snapshot_config_decode(const uint8_t *buf, size_t len, struct vmcfg *doc, char *err)
    __attribute__((warn_unused_result));

/* snapshot_close - release @img (after the VM restored from it is destroyed). */
void snapshot_close(struct snapshot_image *img);

#endif
