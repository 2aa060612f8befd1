/*
 * Taking and restoring snapshots: the sections (config, devices, vcpus,
 * vm, memory) and the parent chain of diff snapshots. Devices are walked
 * on the machine's one list, through their operations; none is known here
 * by name.
 */
#include "snapshot/snapshot.h"

#include "config/vmcfg.h" /* the machine's document; moves to a lower layer later */
#include "snapshot/mem_origin.h"
#include "snapshot/store.h"
#include "util/errmsg.h"
#include "util/log.h"
#include "virtio/virtio.h"
#include "vmm/arch.h"
#include "vmm/dirty_log.h"
#include "vmm/state.h"
#include "vmm/vcpu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_STRING  (64U << 10)
#define MAX_DEVICES 256

struct snapshot_image {
	unsigned int depth; /* chain[0] full ... chain[depth-1] the target */
	char (*dirs)[PATH_MAX];
	struct snap_manifest *m;
	char mem_path[PATH_MAX];
	struct vmcfg doc;     /* the machine, as the snapshot records it */
	struct vm_config cfg; /* built from doc */
	char *overlay_prefix; /* the operator's, for cfg.inst (owned) */
};

#define fail(err, ...) errmsg_set(err, SNAP_ERR_LEN, 0, __VA_ARGS__)

/* Saving a string: u32 length (UINT32_MAX for none), then its bytes. */
static void str_out(struct state_io *io, const char *s)
{
	uint32_t len = s ? (uint32_t)strlen(s) : UINT32_MAX;

	state_u32(io, &len);
	if (s)
		state_bytes(io, (void *)(uintptr_t)s, len);
}

/* --- devices --- */

/* Every device on the list, in list order: name, id, then its own state. */
static int devices_save(struct vm *vm, struct state_io *io)
{
	uint32_t n = 0;
	struct device *dev;

	for (dev = vm->devices; dev; dev = dev->next)
		n++;
	state_u32(io, &n);
	for (dev = vm->devices; dev && !io->err; dev = dev->next) {
		struct state_io sub;
		const char *name = dev->ops->name, *id = dev->id;
		uint32_t len;
		int ret;

		state_io_saver(&sub);
		ret = dev->ops->state ? dev->ops->state(dev, &sub) : 0;
		if (ret == 0)
			ret = state_io_finish(&sub);
		if (ret < 0) {
			log_error("device %s (%s): cannot save its state: %s", id ? id : "?", name,
				  strerror(-ret));
			state_io_free(&sub);
			return ret;
		}
		len = (uint32_t)sub.len;
		str_out(io, name);
		str_out(io, id);
		state_u32(io, &len);
		state_bytes(io, sub.buf, sub.len);
		state_io_free(&sub);
	}
	return io->err;
}

/* Read one device entry without copying: name, id and the slice of its state. */
static int device_entry(struct state_io *io, char *name, char *id, const uint8_t **blob,
			uint32_t *len)
{
	uint32_t n;

	for (int f = 0; f < 2; f++) {
		char *out = f == 0 ? name : id;

		n = 0;
		state_u32(io, &n);
		if (io->err || (n != UINT32_MAX && n > DEVICE_ID_MAX))
			return -EBADMSG;
		out[0] = '\0';
		if (n != UINT32_MAX) {
			state_bytes(io, out, n);
			out[n] = '\0';
		}
	}
	*len = 0;
	state_u32(io, len);
	if (io->err || *len > io->len - io->pos)
		return -EBADMSG;
	*blob = io->buf + io->pos;
	io->pos += *len;
	return 0;
}

static struct device *device_match(struct vm *vm, const char *name, const char *id)
{
	for (struct device *d = vm->devices; d; d = d->next)
		if (strcmp(d->ops->name, name) == 0 && strcmp(d->id ? d->id : "", id) == 0)
			return d;
	return NULL;
}

static int devices_restore(struct vm *vm, struct state_io *io, char *err)
{
	uint32_t n = 0, have = 0;
	struct device *dev;

	for (dev = vm->devices; dev; dev = dev->next)
		have++;
	state_u32(io, &n);
	if (io->err || n != have)
		return fail(err, "the snapshot has %u devices, the machine %u", n, have), -EBADMSG;
	for (uint32_t i = 0; i < n; i++) {
		char name[DEVICE_ID_MAX + 1], id[DEVICE_ID_MAX + 1];
		const uint8_t *blob;
		uint32_t len;
		struct state_io sub;
		int ret = device_entry(io, name, id, &blob, &len);

		if (ret < 0)
			return fail(err, "the devices section is malformed"), ret;
		dev = device_match(vm, name, id);
		if (!dev)
			return fail(err, "the snapshot has a device %s (%s) this machine lacks", id,
				    name),
			       -EBADMSG;
		state_io_loader(&sub, blob, len);
		ret = dev->ops->state ? dev->ops->state(dev, &sub) : 0;
		if (ret == 0)
			ret = state_io_finish(&sub);
		if (ret < 0)
			return fail(err, "device %s (%s): cannot restore its state: %s", id, name,
				    strerror(-ret)),
			       ret;
	}
	if (state_io_finish(io) < 0)
		return fail(err, "the devices section has bytes after its last device"), -EBADMSG;
	return 0;
}

/*
 * The VM was restored: every device takes its part (a new generation, and
 * for clone @index an identity of its own; files put in place for the
 * restore become permanent).
 */
static int devices_clone(struct vm *vm, int index, char *err)
{
	const struct dev_clone c = {.index = index};

	for (struct device *d = vm->devices; d; d = d->next) {
		int ret = d->ops->clone ? d->ops->clone(d, &c) : 0;

		if (ret < 0)
			return fail(err, "device %s (%s): cannot take its part in the restore: %s",
				    d->id ? d->id : "?", d->ops->name, strerror(-ret)),
			       ret;
	}
	return 0;
}

/*
 * The host files that belong to devices' state (a disk's overlay), copied
 * into the snapshot @dir by each device: after the devices were saved,
 * when their requests are drained.
 */
static int devices_save_files(struct vm *vm, const char *dir, char *err)
{
	char msg[SNAP_ERR_LEN - 64];

	for (struct device *d = vm->devices; d; d = d->next) {
		int ret = d->ops->save_files ? d->ops->save_files(d, dir, msg, sizeof(msg)) : 0;

		if (ret < 0)
			return fail(err, "%s", msg), ret;
	}
	return 0;
}

/* --- vCPUs and the VM --- */

static int vcpus_save(struct vm *vm, struct state_io *io)
{
	uint32_t n = vm->ncpus;

	state_u32(io, &n);
	for (unsigned int i = 0; i < vm->ncpus && !io->err; i++) {
		struct state_io sub;
		uint32_t len;
		int ret;

		state_io_saver(&sub);
		ret = arch_vcpu_save(&vm->vcpus[i], &sub);
		if (ret == 0)
			ret = state_io_finish(&sub);
		if (ret < 0) {
			state_io_free(&sub);
			return ret;
		}
		len = (uint32_t)sub.len;
		state_u32(io, &len);
		state_bytes(io, sub.buf, sub.len);
		state_io_free(&sub);
	}
	return io->err;
}

static int vcpus_restore(struct vm *vm, struct state_io *io, char *err)
{
	uint32_t n = 0;

	state_u32(io, &n);
	if (io->err || n != vm->ncpus)
		return fail(err, "the snapshot has %u vCPUs, the machine %u", n, vm->ncpus),
		       -EBADMSG;
	for (unsigned int i = 0; i < n; i++) {
		struct state_io sub;
		uint32_t len = 0;
		int ret;

		state_u32(io, &len);
		if (io->err || len > io->len - io->pos)
			return fail(err, "the vcpus section is malformed"), -EBADMSG;
		state_io_loader(&sub, io->buf + io->pos, len);
		io->pos += len;
		ret = arch_vcpu_restore(&vm->vcpus[i], &sub);
		if (ret < 0)
			return fail(err, "vCPU %u: cannot restore its state: %s", i,
				    ret == -ENOTSUP ? "this host's CPU lacks features the snapshot "
						      "uses (see the log)"
						    : strerror(-ret)),
			       ret;
	}
	if (state_io_finish(io) < 0)
		return fail(err, "the vcpus section has bytes after its last vCPU"), -EBADMSG;
	return 0;
}

/* --- taking a snapshot --- */

static int write_state_section(struct snap_writer *w, const char *name, enum snapshot_part part,
			       struct vm *vm, char *err)
{
	struct state_io io;
	int ret = snapshot_part_save(vm, part, &io, err);

	if (ret == 0)
		ret = snap_writer_section(w, name, io.buf, io.len, err);
	state_io_free(&io);
	return ret;
}

/* The config section: its version byte, then the machine's JSON document (GET /vm/config). */
static int config_save(struct vm *vm, struct state_io *io)
{
	uint8_t version = SNAP_CONFIG_VERSION;
	json_object *doc = vm->cfg.doc ? vmcfg_to_json(vm->cfg.doc) : NULL;
	const char *text = NULL;
	size_t len = 0;

	if (doc)
		text = json_object_to_json_string_length(doc, JSON_C_TO_STRING_PRETTY, &len);
	state_u8(io, &version);
	if (!text)
		io->err = vm->cfg.doc ? -ENOMEM : -EINVAL;
	else if (len > VMCFG_MAX_BODY) /* what a reader accepts */
		io->err = -EFBIG;
	else
		state_bytes(io, (void *)(uintptr_t)text, len);
	json_object_put(doc);
	return io->err;
}

/*
 * After a snapshot (or a restore): it is the parent of the next diff, whose
 * pages the memory layer tracks from now on (when the host can log).
 */
static void lineage_parent(struct vm *vm, struct snapshot_lineage *l, const char *dir,
			   const char *id)
{
	int ret = vm_dirty_start(vm);

	if (ret < 0 && ret != -ENOTSUP)
		log_warn("cannot track dirty pages (%s): the next snapshot must be full",
			 strerror(-ret));
	if (!l)
		return;
	if (!realpath(dir, l->parent_dir))
		snprintf(l->parent_dir, sizeof(l->parent_dir), "%s", dir);
	snprintf(l->parent_id, sizeof(l->parent_id), "%s", id);
	l->has_parent = true;
}

static int check_diff(struct vm *vm, const struct snapshot_create_opts *o, char *err)
{
	const struct snapshot_lineage *l = o->lineage;
	char target[PATH_MAX];

	if (!l || !l->has_parent)
		return fail(err, "a diff snapshot needs a parent: take a full snapshot first "
				 "(or restore one)"),
		       -EINVAL;
	if (!vm_dirty_logging(vm))
		return fail(err, "dirty-page logging is not available on this host: take a full "
				 "snapshot"),
		       -ENOTSUP;
	if (realpath(o->dir, target) && strcmp(target, l->parent_dir) == 0)
		return fail(err, "a diff snapshot cannot replace its own parent %s", o->dir),
		       -EINVAL;
	return 0;
}

/*
 * Firecracker's mem_file_path: a new name for the memory file. Never a
 * replacement: snapshot_create refused an existing path, and link() and
 * symlink() fail rather than replace one that appeared since.
 */
static int link_memory(const char *dir, const char *dest, char *err)
{
	char mem[PATH_MAX + 16], abs[PATH_MAX];

	snprintf(mem, sizeof(mem), "%s/%s", dir, SNAP_MEMORY_FILE);
	if (link(mem, dest) == 0)
		return 0;
	if (errno != EEXIST && realpath(mem, abs) && symlink(abs, dest) == 0)
		return 0;
	return fail(err, "snapshot %s written, but its memory file cannot be linked to %s: %s", dir,
		    dest, strerror(errno)),
	       -errno;
}

/*
 * Everything that would make the snapshot refused, checked before the VM
 * is paused: what is at the path (nothing, or with overwrite a snapshot no
 * diff depends on), and the memory link's path (nothing there).
 */
static int check_create(const struct snapshot_create_opts *o, char *err)
{
	struct stat st;
	int ret = snap_check_target(o->dir, o->overwrite, err);

	if (ret == 0 && o->overwrite)
		ret = store_check_replace(o->dir, err);
	if (ret < 0 || !o->mem_link)
		return ret;
	if (!o->mem_link[0])
		return fail(err, "mem_file_path is empty"), -EINVAL;
	if (lstat(o->mem_link, &st) == 0)
		return fail(err,
			    "mem_file_path %s already exists: Banyan never replaces a file there; "
			    "remove it or choose another path",
			    o->mem_link),
		       -EEXIST;
	if (errno != ENOENT)
		return fail(err, "mem_file_path %s: %s", o->mem_link, strerror(errno)), -errno;
	return 0;
}

static int snapshot_write(struct vm *vm, const struct snapshot_create_opts *o, char *err)
{
	const uint64_t *pending = NULL;
	struct snap_writer w;
	int ret = snap_writer_open(&w, o->dir, o->overwrite, err);

	if (ret < 0)
		return ret;
	w.m.ncpus = vm->ncpus;
	w.m.type = o->diff ? SNAP_DIFF : SNAP_FULL;
	w.progress = o->progress;
	if (o->lineage && o->lineage->has_parent) { /* a full snapshot records its lineage too */
		snprintf(w.m.parent_id, sizeof(w.m.parent_id), "%s", o->lineage->parent_id);
		snprintf(w.m.parent_path, sizeof(w.m.parent_path), "%s", o->lineage->parent_dir);
	}
	ret = write_state_section(&w, "config", SNAPSHOT_PART_CONFIG, vm, err);
	if (ret == 0)
		ret = write_state_section(&w, "devices", SNAPSHOT_PART_DEVICES, vm, err);
	if (ret == 0) /* after the devices: their requests are drained */
		ret = devices_save_files(vm, w.tmp, err);
	if (ret == 0)
		ret = write_state_section(&w, "vcpus", SNAPSHOT_PART_VCPUS, vm, err);
	if (ret == 0)
		ret = write_state_section(&w, "vm", SNAPSHOT_PART_VM, vm, err);
	if (ret == 0 && vm_dirty_logging(vm) && (ret = vm_dirty_collect(vm, &pending)) < 0)
		fail(err, "cannot read the dirty-page log: %s", strerror(-ret));
	if (ret == 0) {
		struct mem_origin g;

		mem_origin_open_vm(&g, vm);
		ret = snap_writer_memory(&w, vm->mem_base, vm->mem_map_size,
					 o->diff ? pending : NULL, &g, err);
		mem_origin_close(&g);
	}
	if (ret < 0) {
		snap_writer_abort(&w);
		return ret;
	}
	ret = snap_writer_commit(&w, err);
	if (ret == 0)
		lineage_parent(vm, o->lineage, o->dir, w.m.id);
	return ret;
}

int snapshot_create(struct vm *vm, const struct snapshot_create_opts *o, char *err)
{
	bool was_paused = vm_is_paused(vm);
	int ret;

	if (o->diff && (ret = check_diff(vm, o, err)) < 0)
		return ret;
	ret = check_create(o, err);
	if (ret < 0)
		return ret;
	vm_pause(vm);
	if (atomic_load(&vm->stopping))
		ret = (fail(err, "the VM is stopping"), -ESHUTDOWN);
	else
		ret = snapshot_write(vm, o, err);
	if (ret == 0 && o->mem_link)
		ret = link_memory(o->dir, o->mem_link, err);
	if (ret == 0)
		log_info("snapshot %s written (%s)", o->dir, o->diff ? "diff" : "full");
	if (!was_paused && !o->stay_paused)
		vm_resume(vm);
	return ret;
}

/* --- opening a chain --- */

/* The parent of @dir: where it was recorded, or a sibling of the same name (moved store). */
static int resolve_parent(const char *dir, const struct snap_manifest *m, char *out,
			  struct snap_manifest *pm, char *err)
{
	char cand[PATH_MAX + PATH_MAX];
	const char *base = strrchr(m->parent_path, '/');
	const char *slash = strrchr(dir, '/');
	char tmp[SNAP_ERR_LEN];

	if (snap_read_manifest(m->parent_path, pm, tmp) == 0 && strcmp(pm->id, m->parent_id) == 0) {
		snprintf(out, PATH_MAX, "%s", m->parent_path);
		return 0;
	}
	snprintf(cand, sizeof(cand), "%.*s/%s", slash ? (int)(slash - dir) : 1, slash ? dir : ".",
		 base ? base + 1 : m->parent_path);
	if (strlen(cand) < PATH_MAX && snap_read_manifest(cand, pm, tmp) == 0 &&
	    strcmp(pm->id, m->parent_id) == 0) {
		snprintf(out, PATH_MAX, "%s", cand);
		return 0;
	}
	return fail(err,
		    "%s is a diff of snapshot %s, which is not at %s any more (deleted or "
		    "replaced)",
		    dir, m->parent_id, m->parent_path),
	       -ENOENT;
}

static int open_chain(struct snapshot_image *img, const char *dir, bool verify, char *err)
{
	char cur[PATH_MAX];
	int ret;

	snprintf(cur, sizeof(cur), "%s", dir);
	ret = snap_read_manifest(cur, &img->m[0], err);
	while (ret == 0) {
		/* Keep the chain top-first while reading; reversed below. */
		snprintf(img->dirs[img->depth], PATH_MAX, "%s", cur);
		ret = snap_verify(cur, &img->m[img->depth], verify, err);
		if (ret < 0)
			return ret;
		if (img->m[img->depth].type == SNAP_FULL)
			break;
		if (img->depth + 1 == SNAP_MAX_CHAIN)
			return fail(err, "%s: more than %d diff snapshots in a chain", dir,
				    SNAP_MAX_CHAIN),
			       -ELOOP;
		ret = resolve_parent(cur, &img->m[img->depth], cur, &img->m[img->depth + 1], err);
		img->depth++;
		if (ret == 0 && (img->m[img->depth].mem_size != img->m[0].mem_size ||
				 img->m[img->depth].ncpus != img->m[0].ncpus))
			ret = (fail(err, "%s: its parent is of another machine", dir), -EBADMSG);
	}
	if (ret < 0)
		return ret;
	img->depth++;
	for (unsigned int i = 0; i < img->depth / 2; i++) { /* base first */
		unsigned int j = img->depth - 1 - i;
		struct snap_manifest t = img->m[i];
		char d[PATH_MAX];

		img->m[i] = img->m[j];
		img->m[j] = t;
		memcpy(d, img->dirs[i], PATH_MAX);
		memcpy(img->dirs[i], img->dirs[j], PATH_MAX);
		memcpy(img->dirs[j], d, PATH_MAX);
	}
	return 0;
}

/* A string of config versions 1 and 2 (u32 length, UINT32_MAX: none), given to the document. */
static void legacy_str(struct state_io *io, char **out)
{
	uint32_t len = 0;

	state_u32(io, &len);
	if (io->err || len == UINT32_MAX)
		return;
	if (len > MAX_STRING) {
		io->err = -EBADMSG;
		return;
	}
	*out = calloc(1, len + 1);
	if (!*out) {
		io->err = -ENOMEM;
		return;
	}
	state_bytes(io, *out, len);
}

/* A field a legacy config may lack (a derived id), as the device derives it. */
static void legacy_default(struct state_io *io, char **out, const char *def)
{
	if (!io->err && !*out && !(*out = strdup(def)))
		io->err = -ENOMEM;
}

static void legacy_disks(struct state_io *io, struct vmcfg *c, uint8_t version)
{
	uint8_t n = 0;
	char id[32];

	state_u8(io, &n);
	if (!io->err && n > VM_MAX_DISKS)
		io->err = -EBADMSG;
	for (unsigned int i = 0; i < n && !io->err; i++) {
		struct vmcfg_drive *d = &c->drives[c->ndrives++];
		uint8_t cache = 0;

		legacy_str(io, &d->path_on_host);
		legacy_str(io, &d->drive_id);
		state_bool(io, &d->is_read_only);
		state_u8(io, &cache);
		if (version >= 2)
			legacy_str(io, &d->overlay_path);
		snprintf(d->cache_type, sizeof(d->cache_type), cache ? "Direct" : "Writeback");
		snprintf(d->io_engine, sizeof(d->io_engine), "Sync");
		virtio_blk_default_id(i, id, sizeof(id));
		legacy_default(io, &d->drive_id, id);
		legacy_default(io, &d->path_on_host, "");
	}
}

static void legacy_nets(struct state_io *io, struct vmcfg *c)
{
	uint8_t n = 0, mac[6];
	char id[16];

	state_u8(io, &n);
	if (!io->err && n > VM_MAX_NETS)
		io->err = -EBADMSG;
	for (unsigned int i = 0; i < n && !io->err; i++) {
		struct vmcfg_net *net = &c->nets[c->nnets++];
		bool has_mac = false;

		legacy_str(io, &net->host_dev_name);
		legacy_str(io, &net->iface_id);
		state_bytes(io, mac, sizeof(mac));
		state_bool(io, &has_mac);
		virtio_net_default_id(i, id, sizeof(id));
		legacy_default(io, &net->iface_id, id);
		legacy_default(io, &net->host_dev_name, "");
		if (!io->err && has_mac &&
		    asprintf(&net->guest_mac, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1],
			     mac[2], mac[3], mac[4], mac[5]) < 0) {
			net->guest_mac = NULL;
			io->err = -ENOMEM;
		}
	}
	state_u32(io, &c->vsock_cid);
	legacy_str(io, &c->vsock_uds_path);
	c->has_vsock = c->vsock_cid != 0;
}

/*
 * Config versions 1 and 2 (binary fields), read into the machine's
 * document: the command line recorded there is the one the VM booted with
 * (a root device's root= included), so it becomes boot_args as it is.
 */
static int legacy_config(struct state_io *io, struct vmcfg *c)
{
	uint8_t version = 0, on_reboot = 0;
	uint64_t mem = 0;

	state_u8(io, &version);
	state_u32(io, &c->vcpu_count);
	state_u64(io, &mem);
	state_u8(io, &on_reboot);
	state_bool(io, &c->no_irqchip);
	legacy_str(io, &c->kernel_image_path);
	legacy_str(io, &c->initrd_path);
	legacy_str(io, &c->boot_args);
	legacy_disks(io, c, version);
	state_bool(io, &c->entropy);
	legacy_nets(io, c);
	if (!io->err && (on_reboot > ON_REBOOT_RESTART || mem % (1 << 20)))
		io->err = -EBADMSG;
	c->mem_size_mib = mem >> 20;
	c->on_reboot = on_reboot ? ON_REBOOT_RESTART : ON_REBOOT_EXIT;
	return io->err ?: state_io_finish(io);
}

/*
 * Config version 3: the machine's JSON document, checked as a --config file
 * is. The logger and metrics files were the snapshotted process's: a
 * restored VM has its own (--log-file), so they are dropped.
 */
static int json_config(struct vmcfg *c, const uint8_t *buf, size_t len, char *why)
{
	json_object *doc = NULL;
	int ret = vmcfg_parse((const char *)buf, len, &doc, why);

	if (ret == 0)
		ret = vmcfg_document(c, doc, why);
	json_object_put(doc);
	free(c->log_path);
	free(c->metrics_path);
	c->log_path = c->metrics_path = NULL;
	c->log_level[0] = '\0';
	return ret;
}

/* The config section, of any version still read, into @c. */
static int read_config(struct vmcfg *c, const uint8_t *buf, size_t len, const char *dir, char *err)
{
	char why[VMCFG_ERR_LEN] = "";
	struct state_io io;
	uint8_t version = len ? buf[0] : 0;
	int ret;

	if (version == SNAP_CONFIG_VERSION) {
		ret = json_config(c, buf + 1, len - 1, why);
	} else if (version == 1 || version == 2) {
		state_io_loader(&io, buf, len);
		ret = legacy_config(&io, c);
	} else {
		return fail(err, "%s: the config section is %s", dir,
			    version ? "of a newer version" : "malformed"),
		       version ? -EPROTO : -EBADMSG;
	}
	if (ret < 0)
		return fail(err, "%s: the config section is malformed%s%s", dir, why[0] ? ": " : "",
			    why),
		       ret == -ENOMEM ? ret : -EBADMSG;
	return 0;
}

static int decode_config(struct snapshot_image *img, char *err)
{
	const struct snap_manifest *top = &img->m[img->depth - 1];
	const char *dir = img->dirs[img->depth - 1];
	char why[VMCFG_ERR_LEN];
	uint8_t *buf;
	size_t len;
	int ret = snap_read_section(dir, top, "config", &buf, &len, err);

	if (ret < 0)
		return ret;
	ret = read_config(&img->doc, buf, len, dir, err);
	free(buf);
	if (ret == 0 && vmcfg_to_vm_config(&img->doc, &img->cfg, why) < 0)
		ret = (fail(err, "%s: the config section is malformed: %s", dir, why), -EBADMSG);
	if (ret < 0)
		return ret;
	if (img->cfg.mem_size != top->mem_size || img->cfg.ncpus != top->ncpus ||
	    img->cfg.ncpus == 0 || img->cfg.ncpus > VM_MAX_CPUS)
		return fail(err, "%s: the config section disagrees with the manifest", dir),
		       -EBADMSG;
	return 0;
}

/* Every failure of open and restore leaves a reason in @err, even one no path wrote. */
static int reason(char *err, int ret, const char *what)
{
	if (ret < 0 && !err[0])
		fail(err, "%s: %s", what, strerror(-ret));
	return ret;
}

int snapshot_open(const char *dir, bool verify_memory, struct snapshot_image **out, char *err)
{
	struct snapshot_image *img = calloc(1, sizeof(*img));
	int ret;

	err[0] = '\0';
	*out = NULL;

	if (img) {
		vmcfg_init(&img->doc);
		img->dirs = calloc(SNAP_MAX_CHAIN, sizeof(*img->dirs));
		img->m = calloc(SNAP_MAX_CHAIN, sizeof(*img->m));
	}
	if (!img || !img->dirs || !img->m) {
		snapshot_close(img);
		return fail(err, "out of memory"), -ENOMEM;
	}
	ret = open_chain(img, dir, verify_memory, err);
	if (ret == 0)
		ret = decode_config(img, err);
	if (ret < 0) {
		snapshot_close(img);
		return reason(err, ret, dir);
	}
	snprintf(img->mem_path, sizeof(img->mem_path), "%s/%s", img->dirs[0], SNAP_MEMORY_FILE);
	*out = img;
	return 0;
}

const struct vm_config *snapshot_config(const struct snapshot_image *img)
{
	return &img->cfg;
}

const struct vmcfg *snapshot_document(const struct snapshot_image *img)
{
	return &img->doc;
}

const struct snap_manifest *snapshot_manifest(const struct snapshot_image *img)
{
	return &img->m[img->depth - 1];
}

void snapshot_close(struct snapshot_image *img)
{
	if (!img)
		return;
	free(img->overlay_prefix);
	vmcfg_free(&img->doc);
	free(img->dirs);
	free(img->m);
	free(img);
}

/* --- restoring --- */

static int load_section(struct snapshot_image *img, struct vm *vm, const char *name,
			enum snapshot_part part, char *err)
{
	const char *dir = img->dirs[img->depth - 1];
	uint8_t *buf;
	size_t len;
	int ret = snap_read_section(dir, &img->m[img->depth - 1], name, &buf, &len, err);

	if (ret < 0)
		return ret;
	ret = snapshot_part_load(vm, part, buf, len, err);
	free(buf);
	return ret;
}

static int vm_section(struct vm *vm, struct state_io *io, char *err)
{
	int ret = arch_vm_restore(vm, io);

	if (ret < 0)
		fail(err, "cannot restore the VM's interrupt controllers and clock: %s",
		     strerror(-ret));
	return ret;
}

/* --- the machine-state parts, shared with live migration --- */

static const char *const part_names[] = {
    [SNAPSHOT_PART_CONFIG] = "config",
    [SNAPSHOT_PART_DEVICES] = "devices",
    [SNAPSHOT_PART_VCPUS] = "vcpus",
    [SNAPSHOT_PART_VM] = "vm",
};

int snapshot_part_save(struct vm *vm, enum snapshot_part part, struct state_io *io, char *err)
{
	static int (*const save[])(struct vm *, struct state_io *) = {
	    [SNAPSHOT_PART_CONFIG] = config_save,
	    [SNAPSHOT_PART_DEVICES] = devices_save,
	    [SNAPSHOT_PART_VCPUS] = vcpus_save,
	    [SNAPSHOT_PART_VM] = arch_vm_save,
	};
	int ret;

	state_io_saver(io);
	if ((unsigned int)part > SNAPSHOT_PART_VM)
		return fail(err, "no such state part %d", (int)part), -EINVAL;
	ret = save[part](vm, io);
	if (ret == 0)
		ret = state_io_finish(io);
	if (ret < 0)
		fail(err, "cannot save the %s state: %s", part_names[part], strerror(-ret));
	return ret;
}

int snapshot_part_load(struct vm *vm, enum snapshot_part part, const uint8_t *buf, size_t len,
		       char *err)
{
	static int (*const load[])(struct vm *, struct state_io *, char *) = {
	    [SNAPSHOT_PART_DEVICES] = devices_restore,
	    [SNAPSHOT_PART_VCPUS] = vcpus_restore,
	    [SNAPSHOT_PART_VM] = vm_section,
	};
	struct state_io io;

	if ((unsigned int)part > SNAPSHOT_PART_VM || !load[part])
		return fail(err, "the %s state is not loaded into a VM",
			    (unsigned int)part > SNAPSHOT_PART_VM ? "?" : part_names[part]),
		       -EINVAL;
	state_io_loader(&io, buf, len);
	return load[part](vm, &io, err);
}

int snapshot_config_decode(const uint8_t *buf, size_t len, struct vmcfg *doc, char *err)
{
	return read_config(doc, buf, len, "the machine", err);
}

static int apply_diffs(struct snapshot_image *img, struct vm *vm, char *err)
{
	for (unsigned int i = 1; i < img->depth; i++) {
		uint64_t *bitmap = NULL;
		int ret = snap_read_bitmap(img->dirs[i], &img->m[i], &bitmap, err);

		if (ret == 0)
			ret = snap_apply_diff(img->dirs[i], &img->m[i], bitmap, vm->mem_base, err);
		free(bitmap);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int snapshot_prepare_clone(struct snapshot_image *img, int index, const char *overlay_prefix,
			   char *err)
{
	struct dev_instance *inst = &img->cfg.inst;

	inst->clone = index >= 0;
	inst->clone_index = index >= 0 ? (unsigned int)index : 0;
	inst->overlay_prefix = NULL;
	free(img->overlay_prefix);
	img->overlay_prefix = NULL;
	if (overlay_prefix && !(img->overlay_prefix = strdup(overlay_prefix)))
		return fail(err, "out of memory"), -ENOMEM;
	inst->overlay_prefix = img->overlay_prefix;
	return 0;
}

int snapshot_restore(struct snapshot_image *img, const struct snapshot_restore_opts *o,
		     struct vm **out, char *err)
{
	struct vm_config cfg = img->cfg;
	struct vm *vm;
	int ret;

	err[0] = '\0';
	cfg.console_out_fd = o->console_out_fd;
	cfg.mem_path = img->mem_path;
	cfg.restoring = true;
	cfg.inst.saved_dir = img->dirs[img->depth - 1];
	ret = vm_create(&cfg, &vm);
	if (ret < 0)
		return fail(err, "cannot create the VM: %s",
			    log_last_error()[0] ? log_last_error() : strerror(-ret)),
		       ret;
	/*
	 * Devices stay parked until every section is loaded (the caller
	 * resumes the VM once it started it): a device thread serving a kick
	 * or a host socket must not run against half-loaded state. New
	 * devices have touched nothing yet (no queue is live before a load).
	 */
	vm_pause(vm);
	ret = apply_diffs(img, vm, err);
	/*
	 * The interrupt controllers first (LAPICs with the vCPUs, then PIC,
	 * IOAPIC and PIT), the devices after them: loading a device may raise
	 * an interrupt (one pending in the saved VM, a clone's configuration
	 * change), and one raised earlier would be overwritten by the saved
	 * controller state and lost, leaving EVENT_IDX waiting for it.
	 */
	if (ret == 0)
		ret = load_section(img, vm, "vcpus", SNAPSHOT_PART_VCPUS, err);
	if (ret == 0)
		ret = load_section(img, vm, "vm", SNAPSHOT_PART_VM, err);
	if (ret == 0)
		ret = load_section(img, vm, "devices", SNAPSHOT_PART_DEVICES, err);
	/* Last: files devices staged for the restore take their places only now. */
	if (ret == 0)
		ret = devices_clone(vm, cfg.inst.clone ? (int)cfg.inst.clone_index : -1, err);
	if (ret < 0) {
		vm_destroy(vm);
		return reason(err, ret, "cannot restore the snapshot");
	}
	vm->cfg.inst.saved_dir = NULL; /* a reboot of this VM reopens what it has now */
	lineage_parent(vm, o->lineage, img->dirs[img->depth - 1], img->m[img->depth - 1].id);
	*out = vm;
	return 0;
}
