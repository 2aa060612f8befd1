/*
 * The API's endpoints: Firecracker's paths and bodies, Banyan's own under
 * /banyan/v1. Every handler runs with ctl->lock held, so requests see and
 * change the configuration and the VM one at a time; none of them blocks a
 * vCPU (pause waits for the vCPUs, never the other way round).
 */
#include "api/api.h"
#include "util/efd.h"
#include "util/clock.h"
#include "api/clones.h"

#include "devices/legacy.h"
#include "migration/migration.h"
#include "migration/postcopy.h"
#include "mmds/mmds.h"
#include "snapshot/snapshot.h"
#include "util/file.h"
#include "util/log.h"
#include "util/parse.h"
#include "virtio/mmio.h"
#include "virtio/virtio.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CT_JSON "application/json"
#define PREFIX	"/banyan/v1"

struct req {
	struct api_ctl *ctl;
	const char *method;
	const char *url;
	const char *id;	   /* {id} of /drives/{id} and /network-interfaces/{id} */
	json_object *body; /* parsed body of PUT/PATCH */
	struct api_reply *reply;
};

static void reply_set(struct api_reply *r, unsigned int status, const char *ct, char *body,
		      size_t len)
{
	free(r->body);
	r->status = status;
	r->content_type = ct;
	r->body = body;
	r->body_len = len;
}

static void reply_json(struct api_reply *r, unsigned int status, json_object *o)
{
	const char *s;
	size_t len;
	char *copy;

	if (!o) {
		reply_set(r, 500, NULL, NULL, 0);
		return;
	}
	s = json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	/*
	 * json-c copies the bytes of strings as they are: one that is not
	 * UTF-8 (a URL, a path, a message cut mid-character) would make the
	 * reply invalid JSON. Such bytes are never JSON syntax (all >= 0x80),
	 * so replacing them here keeps every reply valid.
	 */
	copy = utf8_sanitize(s, len, &len);
	reply_set(r, copy ? status : 500, copy ? CT_JSON : NULL, copy, copy ? len : 0);
	json_object_put(o);
}

__attribute__((format(printf, 3, 4))) static void
reply_fault(struct api_reply *r, unsigned int status, const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[VMCFG_ERR_LEN + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (o)
		json_object_object_add(o, "fault_message", json_object_new_string(msg));
	reply_json(r, status, o);
}

static void reply_ok(struct api_reply *r)
{
	reply_set(r, 204, NULL, NULL, 0);
}

/* A string field of the body, or NULL (absent, another type). */
static const char *body_str(json_object *body, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(body, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static const char *state_name(struct api_ctl *ctl)
{
	switch (ctl->state) {
	case API_RUNNING:
		return ctl->vm && vm_is_paused(ctl->vm) ? "Paused" : "Running";
	case API_STOPPED:
		return "Stopped";
	default:
		return "Not started";
	}
}

/* Configuration sections exist only before boot, as in Firecracker. */
static bool before_boot(struct req *q, const char *what)
{
	if (q->ctl->state == API_NOT_STARTED)
		return true;
	reply_fault(q->reply, 400, "%s cannot be changed after the VM started", what);
	return false;
}

static bool vm_live(struct req *q, const char *what)
{
	if (q->ctl->vm)
		return true;
	reply_fault(q->reply, 400, "cannot %s: the VM is not running", what);
	return false;
}

/* The VM must stay as it is while a migration moves it (the migration pauses it itself). */
static bool not_migrating(struct req *q, const char *what)
{
	if (!q->ctl->mig || !mig_source_active(q->ctl->mig))
		return true;
	reply_fault(q->reply, 409, "cannot %s: a migration is in progress (cancel it first)", what);
	return false;
}

/* Apply a config section; 204 or a 400 with the parser's message. */
static void apply(struct req *q, int ret, const char *err)
{
	if (ret < 0)
		reply_fault(q->reply, 400, "%s", err);
	else
		reply_ok(q->reply);
}

static void get_root(struct req *q)
{
	json_object *o = json_object_new_object();

	if (o) {
		json_object_object_add(o, "id", json_object_new_string(q->ctl->instance_id));
		json_object_object_add(o, "state", json_object_new_string(state_name(q->ctl)));
		json_object_object_add(o, "vmm_version", json_object_new_string(q->ctl->version));
		json_object_object_add(o, "app_name", json_object_new_string("banyan"));
	}
	reply_json(q->reply, 200, o);
}

/* Firecracker's GET /version: the Firecracker API this one implements. */
static void get_version(struct req *q)
{
	json_object *o = json_object_new_object();

	if (o)
		json_object_object_add(o, "firecracker_version",
				       json_object_new_string(API_FIRECRACKER_VERSION));
	reply_json(q->reply, 200, o);
}

/* Fields Firecracker marks deprecated: still honoured, and the answer says so. */
static void note_deprecated(struct req *q, const char *key)
{
	if (json_object_is_type(q->body, json_type_object) &&
	    json_object_object_get_ex(q->body, key, NULL))
		q->reply->deprecated = true;
}

static void get_machine(struct req *q)
{
	reply_json(q->reply, 200, vmcfg_machine_to_json(q->ctl->cfg));
}

static void put_machine(struct req *q)
{
	char err[VMCFG_ERR_LEN];
	bool patch = strcmp(q->method, "PATCH") == 0;

	note_deprecated(q, "cpu_template");
	if (before_boot(q, "machine-config"))
		apply(q, vmcfg_machine(q->ctl->cfg, q->body, patch, err), err);
}

/*
 * Firecracker opens the files a section names when it is PUT: a file that
 * cannot be read is a 400 now, not at InstanceStart. Checked by type and
 * access, never opened (a FIFO would block the API). False after the 400.
 */
static bool body_file_ok(struct req *q, const char *what, const char *key, unsigned int kinds)
{
	const char *path = body_str(q->body, key);
	int ret;

	if (!path || !path[0])
		return true; /* absent or empty: the section's own check says so */
	ret = file_check_kind(path, kinds);
	if (ret == 0 && access(path, R_OK) < 0)
		ret = -errno;
	if (ret == 0)
		return true;
	reply_fault(q->reply, 400, "%s: cannot read %s %s: %s", what, key, path,
		    ret == -FILE_EKIND ? file_kind_error(kinds) : strerror(-ret));
	return false;
}

static void put_boot(struct req *q)
{
	char err[VMCFG_ERR_LEN];

	if (before_boot(q, "boot-source") &&
	    body_file_ok(q, "boot-source", "kernel_image_path", FILE_KIND_REG) &&
	    body_file_ok(q, "boot-source", "initrd_path", FILE_KIND_REG))
		apply(q, vmcfg_boot_source(q->ctl->cfg, q->body, err), err);
}

static void put_drive(struct req *q)
{
	char err[VMCFG_ERR_LEN];

	if (before_boot(q, "a drive") &&
	    body_file_ok(q, "drives", "path_on_host", FILE_KIND_REG | FILE_KIND_BLK))
		apply(q, vmcfg_drive(q->ctl->cfg, q->id, q->body, false, err), err);
}

/* The running disk of drive @index (guest order: vda, vdb, ...), or NULL. */
static struct virtio_dev *drive_device(struct vm *vm, int index)
{
	char name[8];

	snprintf(name, sizeof(name), "vd%c", 'a' + index);
	return virtio_mmio_vdev(vm_find_device(vm, name));
}

/*
 * PATCH /drives/{id}, after boot only (Firecracker's rule; before boot a
 * drive is changed by PUT): a new path_on_host swaps the running disk's
 * file, and the guest sees the new size (virtio_blk_swap); a rate_limiter
 * replaces the disk's at once.
 */
static void patch_drive(struct req *q)
{
	struct api_ctl *ctl = q->ctl;
	char err[VMCFG_ERR_LEN];
	struct virtio_dev *vdev;
	struct rl_config limit;
	json_object *v = NULL;
	const char *path;
	int index;

	if (ctl->state == API_NOT_STARTED) {
		reply_fault(q->reply, 400,
			    "drives: PATCH applies to a running VM; before boot, PUT the drive "
			    "again");
		return;
	}
	if (!vm_live(q, "update a drive"))
		return;
	if (vmcfg_drive_live(ctl->cfg, q->id, q->body, &index, &path, &limit, err) < 0) {
		reply_fault(q->reply, 400, "%s", err);
		return;
	}
	vdev = drive_device(ctl->vm, index);
	if (!vdev || (path && virtio_blk_swap(vdev, path, err, sizeof(err)) < 0)) {
		reply_fault(q->reply, 400, "drives: %s: %s", q->id, vdev ? err : "no such disk");
		return;
	}
	if (path && vmcfg_drive_set_path(ctl->cfg, (unsigned int)index, path) < 0)
		log_warn("GET /vm/config will show drive %s's previous file", q->id);
	/* A new rate limiter applies at once (both buckets full); none asked: unchanged. */
	if (json_object_object_get_ex(q->body, "rate_limiter", &v) && v &&
	    virtio_set_rate_limit(vdev, 0, &limit) == 0) {
		ctl->cfg->drives[index].rate_limiter = limit;
		log_info("drive %s: rate limiter updated through the API", q->id);
	}
	reply_ok(q->reply);
}

/* Firecracker opens the TAP at PUT: a missing or busy one is a 400 now. */
static bool body_tap_ok(struct req *q)
{
	const char *tap = body_str(q->body, "host_dev_name");
	char err[VMCFG_ERR_LEN];

	if (!tap || !tap[0] || strlen(tap) >= IFNAMSIZ || strpbrk(tap, " /:\t\n"))
		return true; /* the section's own check explains it */
	if (virtio_net_check_tap(tap, err, sizeof(err)) == 0)
		return true;
	reply_fault(q->reply, 400, "network-interfaces: TAP %s: %s", tap, err);
	return false;
}

static void put_net(struct req *q)
{
	char err[VMCFG_ERR_LEN];
	struct vmcfg trial;
	int ret;

	if (!before_boot(q, "a network interface"))
		return;
	/* The body's own errors first (a bad MAC says so whatever the TAP), then the TAP. */
	if (vmcfg_copy(&trial, q->ctl->cfg) < 0) {
		reply_fault(q->reply, 500, "out of memory");
		return;
	}
	ret = vmcfg_net(&trial, q->id, q->body, false, err);
	vmcfg_free(&trial);
	if (ret < 0)
		reply_fault(q->reply, 400, "%s", err);
	else if (body_tap_ok(q))
		apply(q, vmcfg_net(q->ctl->cfg, q->id, q->body, false, err), err);
}

/* --- PATCH /network-interfaces/{id}: the rate limiters of a running VM's card --- */

/* As in Firecracker, PATCH changes a running VM's devices; before boot, PUT configures them. */
static bool after_boot(struct req *q, const char *what)
{
	if (q->ctl->vm)
		return true;
	reply_fault(q->reply, 400,
		    "%s: PATCH updates a running VM's device (before InstanceStart, PUT it "
		    "again with the new values)",
		    what);
	return false;
}

/* Give device @dev_id's limiter @which the configuration @c now. */
static int live_limit(struct req *q, const char *dev_id, unsigned int which,
		      const struct rl_config *c, char *err)
{
	struct virtio_dev *vdev = virtio_mmio_vdev(vm_find_device(q->ctl->vm, dev_id));

	if (vdev && virtio_set_rate_limit(vdev, which, c) == 0)
		return 0;
	snprintf(err, VMCFG_ERR_LEN, "the running VM has no device %s to update", dev_id);
	return -ENODEV;
}

static void patch_net(struct req *q)
{
	struct vmcfg *c = q->ctl->cfg;
	char err[VMCFG_ERR_LEN];
	unsigned int i;
	int ret;

	if (!after_boot(q, "network-interfaces"))
		return;
	ret = vmcfg_net(c, q->id, q->body, true, err);
	for (i = 0; ret == 0 && i < c->nnets && strcmp(c->nets[i].iface_id, q->id); i++)
		;
	if (ret == 0)
		ret = live_limit(q, q->id, 0, &c->nets[i].rx_rate_limiter, err);
	if (ret == 0)
		ret = live_limit(q, q->id, 1, &c->nets[i].tx_rate_limiter, err);
	if (ret == 0)
		log_info("interface %s: rate limiters updated through the API", q->id);
	apply(q, ret, err);
}

static void put_vsock(struct req *q)
{
	char err[VMCFG_ERR_LEN];

	note_deprecated(q, "vsock_id");
	if (before_boot(q, "vsock"))
		apply(q, vmcfg_vsock(q->ctl->cfg, q->body, err), err);
}

static void put_entropy(struct req *q)
{
	char err[VMCFG_ERR_LEN];

	if (before_boot(q, "entropy"))
		apply(q, vmcfg_entropy(q->ctl->cfg, q->body, err), err);
}

/* Firecracker's custom CPU template (docs/guests.md); the last of it and cpu_template wins. */
static void put_cpu_config(struct req *q)
{
	char err[VMCFG_ERR_LEN];

	if (before_boot(q, "cpu-config"))
		apply(q, vmcfg_cpu_config(q->ctl->cfg, q->body, err), err);
}

/* --- /balloon and /balloon/statistics (Firecracker's schema, docs/memory.md) --- */

static void put_balloon(struct req *q)
{
	char err[VMCFG_ERR_LEN];

	if (before_boot(q, "balloon"))
		apply(q, vmcfg_balloon(q->ctl->cfg, q->body, err), err);
}

static void get_balloon(struct req *q)
{
	json_object *o = vmcfg_balloon_to_json(q->ctl->cfg);

	if (!q->ctl->cfg->balloon.enabled)
		reply_fault(q->reply, 400, "no balloon device is configured");
	else
		reply_json(q->reply, 200, o);
}

/* The running balloon, or NULL after a fault reply. */
static struct virtio_dev *live_balloon(struct req *q, const char *what)
{
	struct virtio_dev *vdev;

	if (!q->ctl->cfg->balloon.enabled) {
		reply_fault(q->reply, 400, "no balloon device is configured");
		return NULL;
	}
	if (!after_boot(q, what))
		return NULL;
	vdev = virtio_mmio_vdev(vm_find_device(q->ctl->vm, "balloon0"));
	if (!virtio_is_balloon(vdev)) {
		reply_fault(q->reply, 400, "the running VM has no balloon device");
		return NULL;
	}
	return vdev;
}

/* PATCH /balloon ({"amount_mib"}) and PATCH /balloon/statistics ({"stats_polling_interval_s"}). */
static void patch_balloon_with(struct req *q, bool stats)
{
	struct vmcfg *c = q->ctl->cfg;
	char err[VMCFG_ERR_LEN];
	struct virtio_dev *vdev = live_balloon(q, stats ? "balloon/statistics" : "balloon");
	uint32_t v = 0;
	int ret;

	if (!vdev)
		return;
	ret = vmcfg_balloon_patch(c, q->body, stats, &v, err);
	if (ret == 0) {
		ret = stats ? virtio_balloon_set_stats_interval(vdev, v)
			    : virtio_balloon_set_target(vdev, v);
		if (ret < 0)
			snprintf(err, sizeof(err), "balloon: %s", strerror(-ret));
	}
	if (ret == 0 && stats)
		c->balloon.stats_interval_s = v;
	else if (ret == 0)
		c->balloon.amount_mib = v;
	apply(q, ret, err);
}

static void patch_balloon(struct req *q)
{
	patch_balloon_with(q, false);
}

static void patch_balloon_stats(struct req *q)
{
	patch_balloon_with(q, true);
}

/* Firecracker's statistics field of each virtio tag (enum virtio_balloon_stat). */
static const char *const balloon_stat_names[BALLOON_NSTATS] = {
    "swap_in",	    "swap_out",		"major_faults", "minor_faults",	       "free_memory",
    "total_memory", "available_memory", "disk_caches",	"hugetlb_allocations", "hugetlb_failures",
};

static void get_balloon_stats(struct req *q)
{
	struct virtio_dev *vdev = live_balloon(q, "balloon/statistics");
	struct virtio_balloon_info in;
	json_object *o;

	if (!vdev || virtio_balloon_info(vdev, &in) < 0)
		return;
	if (!in.stats_interval_s) {
		reply_fault(q->reply, 400,
			    "balloon statistics are not enabled "
			    "(stats_polling_interval_s is 0)");
		return;
	}
	o = json_object_new_object();
	if (o) {
		json_object_object_add(o, "target_pages", json_object_new_int64(in.target_pages));
		json_object_object_add(o, "actual_pages", json_object_new_int64(in.actual_pages));
		json_object_object_add(o, "target_mib",
				       json_object_new_int64(in.target_pages >> 8));
		json_object_object_add(o, "actual_mib",
				       json_object_new_int64(in.actual_pages >> 8));
		for (unsigned int i = 0; i < BALLOON_NSTATS; i++)
			if (in.has_stat[i]) /* as Firecracker: only what the guest reported */
				json_object_object_add(o, balloon_stat_names[i],
						       json_object_new_uint64(in.stat[i]));
	}
	reply_json(q->reply, 200, o);
}

/* The logger applies at once: the file opens now, the level changes now. */
static void put_logger(struct req *q)
{
	struct vmcfg *c = q->ctl->cfg;
	char err[VMCFG_ERR_LEN];
	struct vmcfg tmp = {0};
	int ret = vmcfg_logger(&tmp, q->body, err);

	if (ret == 0 && tmp.log_path && (ret = log_open_file(tmp.log_path)) < 0)
		snprintf(err, sizeof(err), "logger: cannot open %s: %s", tmp.log_path,
			 ret == -FILE_EKIND ? file_kind_error(FILE_KIND_REG | FILE_KIND_FIFO)
					    : strerror(-ret));
	if (ret == 0) {
		if (tmp.log_level[0])
			log_set_level((enum log_level)vmcfg_log_level(tmp.log_level));
		ret = vmcfg_logger(c, q->body, err);
	}
	vmcfg_free(&tmp);
	apply(q, ret, err);
}

/*
 * The metrics file opens now (a bad path is a 400 now, not at the first
 * line), and only once, as in Firecracker; lines follow every 60 s.
 */
static void put_metrics(struct req *q)
{
	struct api_ctl *ctl = q->ctl;
	char err[VMCFG_ERR_LEN];
	struct vmcfg tmp = {0};
	int fd = -1, ret = vmcfg_metrics(&tmp, q->body, err);

	if (ret == 0 && ctl->metrics_fd >= 0)
		ret = -EEXIST, snprintf(err, sizeof(err),
					"metrics: already configured (%s): the metrics file is "
					"set once",
					ctl->cfg->metrics_path);
	if (ret == 0 && (fd = ret = file_open_sink(tmp.metrics_path, 0600)) < 0)
		snprintf(err, sizeof(err), "metrics: cannot open %s: %s", tmp.metrics_path,
			 ret == -FILE_EKIND ? file_kind_error(FILE_KIND_REG | FILE_KIND_FIFO)
					    : strerror(-ret));
	if (ret >= 0)
		ret = vmcfg_metrics(ctl->cfg, q->body, err);
	if (ret >= 0) {
		ctl->metrics_fd = fd;
		if (api_metrics_timer_start(ctl) < 0)
			log_warn("metrics: no periodic lines (cannot start their thread)");
	} else if (fd >= 0) {
		close(fd);
	}
	vmcfg_free(&tmp);
	apply(q, ret < 0 ? ret : 0, err);
}

static void get_vm_config(struct req *q)
{
	reply_json(q->reply, 200, vmcfg_to_json(q->ctl->cfg));
}

/* Hand the start to the run loop and wait for its answer (the lock is released meanwhile). */
static void action_start(struct req *q)
{
	struct api_ctl *ctl = q->ctl;
	char err[VMCFG_ERR_LEN];
	uint64_t boots = ctl->boots;

	if (ctl->state == API_STARTING) {
		reply_fault(q->reply, 400, "InstanceStart: the VM is already starting");
		return;
	}
	if (ctl->state != API_NOT_STARTED) {
		reply_fault(q->reply, 400, "InstanceStart: the VM was already started");
		return;
	}
	ctl->vm_cfg.mmds = ctl->mmds;
	if (vmcfg_check_files(ctl->cfg, err) < 0 ||
	    vmcfg_to_vm_config(ctl->cfg, &ctl->vm_cfg, err) < 0) {
		reply_fault(q->reply, 400, "InstanceStart: %s", err);
		return;
	}
	ctl->state = API_STARTING;
	ctl->start_err[0] = '\0';
	(void)efd_signal(ctl->start_fd);
	while (ctl->state == API_STARTING)
		pthread_cond_wait(&ctl->start_cond, &ctl->lock);
	if (ctl->boots > boots)
		reply_ok(q->reply);
	else
		reply_fault(q->reply, 400, "InstanceStart: %s",
			    ctl->start_err[0] ? ctl->start_err : "the VM could not start");
}

static void action_ctrl_alt_del(struct req *q)
{
	struct device *kbd;

	if (!vm_live(q, "send Ctrl-Alt-Del"))
		return;
	kbd = vm_find_device(q->ctl->vm, "i8042");
	if (!kbd)
		reply_fault(q->reply, 400, "SendCtrlAltDel: this VM has no i8042 keyboard");
	else if (i8042_ctrl_alt_del(kbd) < 0)
		reply_fault(q->reply, 400,
			    "SendCtrlAltDel: the guest has not read the previous "
			    "keys yet (is its i8042 driver loaded?)");
	else
		reply_ok(q->reply);
}

static void put_actions(struct req *q)
{
	json_object *v = NULL;
	char err[VMCFG_ERR_LEN];
	const char *type;

	if (!json_object_is_type(q->body, json_type_object) ||
	    json_object_object_length(q->body) != 1 ||
	    !json_object_object_get_ex(q->body, "action_type", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		reply_fault(q->reply, 400,
			    "actions: the body must be {\"action_type\": "
			    "\"InstanceStart\", \"SendCtrlAltDel\" or "
			    "\"FlushMetrics\"}");
		return;
	}
	type = json_object_get_string(v);
	if (strcmp(type, "InstanceStart") == 0)
		action_start(q);
	else if (strcmp(type, "SendCtrlAltDel") == 0)
		action_ctrl_alt_del(q);
	else if (strcmp(type, "FlushMetrics") == 0)
		apply(q, api_metrics_flush(q->ctl, err), err);
	else
		reply_fault(q->reply, 400, "actions: unknown action_type '%s'", type);
}

static void patch_vm(struct req *q)
{
	json_object *v = NULL;
	const char *state;
	uint64_t t0;

	if (!json_object_is_type(q->body, json_type_object) ||
	    json_object_object_length(q->body) != 1 ||
	    !json_object_object_get_ex(q->body, "state", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		reply_fault(q->reply, 400,
			    "vm: the body must be {\"state\": \"Paused\" or \"Resumed\"}");
		return;
	}
	state = json_object_get_string(v);
	if (strcmp(state, "Paused") && strcmp(state, "Resumed")) {
		reply_fault(q->reply, 400, "vm: unknown state '%s' (Paused or Resumed)", state);
		return;
	}
	if (!vm_live(q, strcmp(state, "Paused") == 0 ? "pause" : "resume") ||
	    !not_migrating(q, strcmp(state, "Paused") == 0 ? "pause" : "resume"))
		return;
	t0 = now_ns();
	if (strcmp(state, "Paused") == 0) {
		vm_pause(q->ctl->vm);
		log_info("VM paused through the API");
	} else {
		vm_resume(q->ctl->vm);
		log_info("VM resumed through the API");
	}
	q->ctl->latency_us[strcmp(state, "Paused") ? API_LAT_RESUME : API_LAT_PAUSE] =
	    (now_ns() - t0) / 1000;
	reply_ok(q->reply);
}

/* A boolean field: *@out when present; false when present with another type. */
static bool body_bool(json_object *body, const char *key, bool *out)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(body, key, &v))
		return true;
	if (!json_object_is_type(v, json_type_boolean))
		return false;
	*out = json_object_get_boolean(v);
	return true;
}

static bool body_only(struct req *q, const char *const *keys)
{
	if (!json_object_is_type(q->body, json_type_object)) {
		reply_fault(q->reply, 400, "%s: expected a JSON object", q->url);
		return false;
	}
	json_object_object_foreach(q->body, key, val)
	{
		const char *const *k;

		(void)val;
		for (k = keys; *k && strcmp(*k, key); k++)
			;
		if (!*k) {
			reply_fault(q->reply, 400, "%s: unknown field '%s'", q->url, key);
			return false;
		}
	}
	return true;
}

/* snapshot_create, counted for GET /banyan/v1/progress as it writes the memory. */
static int snapshot_tracked(struct api_ctl *ctl, struct snapshot_create_opts *o, char *err)
{
	int ret;

	atomic_store(&ctl->snap_done, 0);
	atomic_store(&ctl->snap_total, ctl->vm->mem_map_size);
	atomic_fetch_add(&ctl->snap_count, 1);
	atomic_store(&ctl->snap_active, true);
	o->progress = &ctl->snap_done;
	ret = snapshot_create(ctl->vm, o, err);
	atomic_store(&ctl->snap_active, false);
	return ret;
}

void api_progress(struct api_ctl *ctl, struct api_reply *reply)
{
	unsigned long long count = atomic_load(&ctl->snap_count);
	bool active = atomic_load(&ctl->snap_active);
	unsigned long long done = atomic_load(&ctl->snap_done);
	unsigned long long total = atomic_load(&ctl->snap_total);
	char *body = NULL;
	int n = asprintf(&body,
			 "{\"snapshot\":{\"active\":%s,\"bytes_done\":%llu,\"bytes_total\":%llu,"
			 "\"count\":%llu}}",
			 active ? "true" : "false", done, total, count);

	memset(reply, 0, sizeof(*reply));
	if (n < 0)
		reply_set(reply, 500, NULL, NULL, 0);
	else
		reply_set(reply, 200, CT_JSON, body, (size_t)n);
}

static void get_progress(struct req *q)
{
	api_progress(q->ctl, q->reply);
}

/*
 * Firecracker's PUT /snapshot/create. snapshot_path names Banyan's snapshot
 * directory (Firecracker's is a file): a new one, or with "overwrite": true
 * (Banyan's field) an existing snapshot; mem_file_path, when given, becomes
 * a new link to the directory's memory file (an existing file is refused).
 * A running VM is paused for the snapshot and resumed after it unless
 * "resume_vm": false (Banyan's field).
 */
static void put_snapshot_create(struct req *q)
{
	static const char *const keys[] = {"snapshot_path",
					   "mem_file_path",
					   "snapshot_type",
					   "version",
					   "resume_vm",
					   "overwrite",
					   NULL};
	struct snapshot_create_opts o = {0};
	const char *type = body_str(q->body, "snapshot_type");
	char err[SNAP_ERR_LEN];
	bool resume = true;
	uint64_t t0;

	if (!body_only(q, keys))
		return;
	note_deprecated(q, "version");
	o.dir = body_str(q->body, "snapshot_path");
	o.mem_link = body_str(q->body, "mem_file_path");
	if (!o.dir || !o.dir[0] || (type && strcmp(type, "Full") && strcmp(type, "Diff")) ||
	    !body_bool(q->body, "resume_vm", &resume) ||
	    !body_bool(q->body, "overwrite", &o.overwrite)) {
		reply_fault(q->reply, 400,
			    "snapshot/create: snapshot_path (a directory) is required; "
			    "snapshot_type is Full or Diff; resume_vm and overwrite booleans");
		return;
	}
	if (!vm_live(q, "take a snapshot") || !not_migrating(q, "take a snapshot"))
		return;
	o.diff = type && strcmp(type, "Diff") == 0;
	o.stay_paused = !resume;
	o.lineage = q->ctl->lineage;
	t0 = now_ns();
	if (snapshot_tracked(q->ctl, &o, err) < 0) {
		reply_fault(q->reply, 400, "snapshot/create: %s", err);
		return;
	}
	q->ctl->latency_us[o.diff ? API_LAT_DIFF_SNAPSHOT : API_LAT_FULL_SNAPSHOT] =
	    (now_ns() - t0) / 1000;
	reply_ok(q->reply);
}

/* mem_file_path / mem_backend.backend_path must be the snapshot's own memory file. */
static bool load_mem_ok(struct req *q, const char *dir)
{
	const char *mem = body_str(q->body, "mem_file_path");
	json_object *be = NULL;
	char path[4096 + 16];
	struct stat a, b;

	if (json_object_object_get_ex(q->body, "mem_backend", &be) && be)
		mem = body_str(be, "backend_path");
	if (!mem)
		return true;
	snprintf(path, sizeof(path), "%s/%s", dir, SNAP_MEMORY_FILE);
	if (stat(mem, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		return true;
	reply_fault(q->reply, 400,
		    "snapshot/load: %s is not %s: Banyan keeps the memory file "
		    "inside the snapshot directory",
		    mem, path);
	return false;
}

/* Firecracker's PUT /snapshot/load, before boot: the run loop restores it. */
static void put_snapshot_load(struct req *q)
{
	static const char *const keys[] = {"snapshot_path",	    "mem_file_path", "mem_backend",
					   "enable_diff_snapshots", "resume_vm",     NULL};
	struct api_ctl *ctl = q->ctl;
	const char *dir = body_str(q->body, "snapshot_path");
	uint64_t boots = ctl->boots, t0;
	bool resume = false, diff = false;

	if (!body_only(q, keys))
		return;
	note_deprecated(q, "mem_file_path");
	if (!dir || !dir[0] || strlen(dir) >= sizeof(ctl->load_path) ||
	    !body_bool(q->body, "resume_vm", &resume) ||
	    !body_bool(q->body, "enable_diff_snapshots", &diff)) {
		reply_fault(q->reply, 400,
			    "snapshot/load: snapshot_path (a snapshot directory) is "
			    "required; resume_vm and enable_diff_snapshots are booleans");
		return;
	}
	if (ctl->state != API_NOT_STARTED) {
		reply_fault(q->reply, 400,
			    "snapshot/load: only a VMM that has not started a VM "
			    "can load a snapshot");
		return;
	}
	if (!load_mem_ok(q, dir))
		return;
	snprintf(ctl->load_path, sizeof(ctl->load_path), "%s", dir);
	ctl->load_resume = resume;
	t0 = now_ns();
	ctl->state = API_STARTING;
	ctl->start_err[0] = '\0';
	(void)efd_signal(ctl->start_fd);
	while (ctl->state == API_STARTING)
		pthread_cond_wait(&ctl->start_cond, &ctl->lock);
	ctl->load_path[0] = '\0';
	if (ctl->boots > boots)
		ctl->latency_us[API_LAT_LOAD_SNAPSHOT] = (now_ns() - t0) / 1000;
	if (ctl->boots > boots)
		reply_ok(q->reply);
	else
		reply_fault(q->reply, 400, "snapshot/load: %s",
			    ctl->start_err[0] ? ctl->start_err
					      : "the snapshot could not be loaded");
}

static double seconds(uint64_t ns)
{
	return (double)ns / 1e9;
}

static void get_status(struct req *q)
{
	struct api_ctl *ctl = q->ctl;
	json_object *o = json_object_new_object();
	struct vm *vm = ctl->vm;

	if (o) {
		json_object_object_add(o, "state", json_object_new_string(state_name(ctl)));
		json_object_object_add(o, "vmm_version", json_object_new_string(ctl->version));
		json_object_object_add(o, "pid", json_object_new_int(getpid()));
		json_object_object_add(o, "boots", json_object_new_int64((int64_t)ctl->boots));
		json_object_object_add(o, "vcpus", json_object_new_int64(ctl->cfg->vcpu_count));
		json_object_object_add(o, "mem_size_mib",
				       json_object_new_int64((int64_t)ctl->cfg->mem_size_mib));
		json_object_object_add(o, "uptime_seconds",
				       vm ? json_object_new_double(seconds(now_ns() - vm->start_ns))
					  : NULL);
		json_object_object_add(o, "setup_seconds",
				       vm ? json_object_new_double(seconds(vm->setup_ns)) : NULL);
	}
	reply_json(q->reply, 200, o);
}

static void put_stop(struct req *q)
{
	struct api_ctl *ctl = q->ctl;

	if (ctl->vm) {
		log_info("stop requested through the API");
		vm_request_exit(ctl->vm, VM_EXIT_POWEROFF, "stopped through the API");
	} else if (ctl->state == API_NOT_STARTED) {
		ctl->quit = true;
		(void)efd_signal(ctl->start_fd);
	} else {
		reply_fault(q->reply, 400, "stop: the VM is %s", state_name(ctl));
		return;
	}
	reply_ok(q->reply);
}

/* An absolute path in @key (required unless @optional); false after a 400. */
static bool body_abs_path(struct req *q, const char *key, bool optional, size_t max,
			  const char **out)
{
	json_object *v = NULL;

	*out = NULL;
	if (!json_object_object_get_ex(q->body, key, &v) || !v) {
		if (!optional)
			reply_fault(q->reply, 400, "clones: missing required field '%s'", key);
		return optional;
	}
	*out = json_object_get_string(v);
	if (!json_object_is_type(v, json_type_string) || (*out)[0] != '/' || strlen(*out) > max) {
		reply_fault(q->reply, 400,
			    "clones: '%s' must be an absolute path (a string starting with '/', "
			    "at most %zu bytes)",
			    key, max);
		return false;
	}
	return true;
}

/*
 * The optional "name": the clones become the named VMs NAME-1, NAME-2, ...
 * (docs/operations.md), so NAME follows the rule of a VM's name
 * (cli/named.h), with room for the suffix. False after a 400.
 */
static bool clones_name(struct req *q, const char **out)
{
	json_object *v = NULL;
	const char *s;
	size_t i;

	*out = NULL;
	if (!json_object_object_get_ex(q->body, "name", &v) || !v)
		return true;
	s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
	for (i = 0; s[i] && i < API_CLONES_NAME - 1; i++)
		if (!isalnum((unsigned char)s[i]) && (i == 0 || !strchr("_.-", s[i])))
			break;
	if (i == 0 || s[i]) {
		reply_fault(q->reply, 400,
			    "clones: 'name' must be 1 to %d of A-Z a-z 0-9 _ . -, beginning "
			    "with a letter or digit",
			    API_CLONES_NAME - 1);
		return false;
	}
	*out = s;
	return true;
}

/* The body of PUT /banyan/v1/clones into @c and *@snap; false after a 400. */
static bool clones_body(struct req *q, struct api_clones *c, bool *snap)
{
	static const char *const keys[] = {
	    "snapshot_path", "count", "console_prefix", "api_socket_prefix", "take_snapshot",
	    "name",	     NULL};
	json_object *v = NULL;
	int64_t n;

	if (!body_only(q, keys) ||
	    !body_abs_path(q, "snapshot_path", false, 4000, &c->snapshot_dir) ||
	    !body_abs_path(q, "console_prefix", false, 4000, &c->console_prefix) ||
	    /* PREFIX.1023 must fit a socket address (108 bytes with its NUL) */
	    !body_abs_path(q, "api_socket_prefix", true, 102, &c->api_prefix))
		return false;
	if (!json_object_object_get_ex(q->body, "count", &v) ||
	    !json_object_is_type(v, json_type_int) || (n = json_object_get_int64(v)) < 1 ||
	    n > API_CLONES_MAX) {
		reply_fault(q->reply, 400, "clones: 'count' must be an integer between 1 and %d",
			    API_CLONES_MAX);
		return false;
	}
	c->count = (unsigned int)n;
	if (!clones_name(q, &c->name))
		return false;
	if (!body_bool(q->body, "take_snapshot", snap)) {
		reply_fault(q->reply, 400, "clones: 'take_snapshot' must be a boolean");
		return false;
	}
	return true;
}

/*
 * Clones of this VM as it goes on running read its disks as they are now:
 * only disks that do not change under them (read-only, or written through
 * an overlay, whose copy travels in the snapshot) allow that.
 */
static bool disks_clonable_live(struct req *q)
{
	const struct vm_config *cfg = &q->ctl->vm->cfg;

	for (unsigned int i = 0; i < cfg->ndisks; i++) {
		if (cfg->disks[i].read_only || cfg->disks[i].overlay)
			continue;
		reply_fault(q->reply, 400,
			    "clones: disk %s is written by this running VM, so clones of it "
			    "cannot share it; give the disk an overlay (overlay_path) or "
			    "snapshot, stop and clone",
			    cfg->disks[i].path);
		return false;
	}
	return true;
}

/*
 * PUT /banyan/v1/clones: N clones of a snapshot (with take_snapshot, of
 * this VM as it is now), run by a supervisor that is not this VMM's child
 * and outlives it (api/clones.h).
 */
static void put_clones(struct req *q)
{
	struct api_clones c = {0};
	struct snapshot_create_opts o = {0};
	char err[SNAP_ERR_LEN];
	bool snap = false;
	pid_t pid;

	if (!clones_body(q, &c, &snap) ||
	    (snap && (!vm_live(q, "take a snapshot for clones") || !disks_clonable_live(q) ||
		      !not_migrating(q, "take a snapshot for clones"))))
		return;
	o.dir = c.snapshot_dir;
	o.lineage = q->ctl->lineage;
	if (snap && snapshot_tracked(q->ctl, &o, err) < 0) {
		reply_fault(q->reply, 400, "clones: %s", err);
		return;
	}
	if (api_clones_start(&c, &pid, err) < 0) {
		reply_fault(q->reply, 400, "%s%s", strncmp(err, "clones: ", 8) ? "clones: " : "",
			    err);
		return;
	}
	log_info("%u clones of %s started through the API: supervisor pid %d", c.count,
		 c.snapshot_dir, (int)pid);
	reply_json(q->reply, 200, api_clones_reply(&c, pid));
}

/* A whole number in @key of the body, 0..@max (absent: left as it is); false after a 400. */
static bool body_uint(struct req *q, const char *key, unsigned int max, unsigned int *out)
{
	json_object *v = NULL;
	int64_t n;

	if (!json_object_object_get_ex(q->body, key, &v))
		return true;
	n = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
	if (n < 0 || n > (int64_t)max) {
		reply_fault(q->reply, 400, "migrate: %s must be a whole number 0..%u", key, max);
		return false;
	}
	*out = (unsigned int)n;
	return true;
}

/* tls_cert, tls_key, tls_ca: paths the VMM opens itself (inside its jail when jailed). */
static bool migrate_tls(struct req *q, struct mig_tls_paths *t)
{
	static const char *const keys[] = {"tls_cert", "tls_key", "tls_ca"};
	char *dst[] = {t->cert, t->key, t->ca};

	for (unsigned int i = 0; i < 3; i++) {
		json_object *v = NULL;
		const char *p = body_str(q->body, keys[i]);

		if (!p && !json_object_object_get_ex(q->body, keys[i], &v))
			continue;
		if (!p || !p[0] || strlen(p) >= MIG_TLS_PATH_MAX) {
			reply_fault(q->reply, 400, "migrate: %s must be a path of 1..%d bytes",
				    keys[i], MIG_TLS_PATH_MAX - 1);
			return false;
		}
		snprintf(dst[i], MIG_TLS_PATH_MAX, "%s", p);
	}
	return true;
}

/* "verify": true, false, or "pages" (a CRC per page: a mismatch names them). */
static bool migrate_verify(json_object *body, struct mig_opts *o)
{
	const char *s = body_str(body, "verify");

	if (s && strcmp(s, "pages") == 0)
		return o->verify = o->verify_pages = true;
	return body_bool(body, "verify", &o->verify);
}

/* The body of PUT /banyan/v1/migrate into @o; false after a 400. */
static bool migrate_body(struct req *q, struct mig_opts *o)
{
	static const char *const keys[] = {
	    "url",	"downtime_ms", "bandwidth_mib_s", "verify",  "auto_converge",
	    "postcopy", "timeout_ms",  "tls_cert",	  "tls_key", "tls_ca",
	    NULL};
	const char *url = body_str(q->body, "url"), *post = body_str(q->body, "postcopy");
	bool converge = true;

	if (!body_only(q, keys))
		return false;
	if (!url || strlen(url) >= sizeof(o->url) || !migrate_verify(q->body, o) ||
	    !body_bool(q->body, "auto_converge", &converge)) {
		reply_fault(q->reply, 400,
			    "migrate: url (tcp:HOST:PORT or unix:PATH) is required; verify is a "
			    "boolean or \"pages\", auto_converge a boolean");
		return false;
	}
	o->no_auto_converge = !converge;
	if (post && mig_postcopy_parse(post, &o->postcopy) < 0) {
		reply_fault(q->reply, 400, "migrate: postcopy is \"off\", \"auto\" or \"now\"");
		return false;
	}
	snprintf(o->url, sizeof(o->url), "%s", url);
	return migrate_tls(q, &o->tls) && body_uint(q, "downtime_ms", 60000, &o->downtime_ms) &&
	       body_uint(q, "bandwidth_mib_s", 1U << 20, &o->bandwidth_mib_s) &&
	       body_uint(q, "timeout_ms", 600000, &o->timeout_ms);
}

/*
 * PUT /banyan/v1/migrate: start moving the VM to a destination waiting with
 * banyan run --incoming URL. The migration runs in its own thread; GET
 * follows it, DELETE cancels it.
 */
static void put_migrate(struct req *q)
{
	struct mig_opts o = {0};
	char err[MIG_ERR_LEN];

	if (!migrate_body(q, &o) || !vm_live(q, "migrate") || !not_migrating(q, "migrate"))
		return;
	mig_source_free(q->ctl->mig); /* the previous one's status goes */
	q->ctl->mig = NULL;
	q->ctl->mig_final = (struct mig_status){0};
	q->ctl->mig_outcome_read = false;
	if (mig_source_start(q->ctl->vm, &o, &q->ctl->mig, err) < 0)
		reply_fault(q->reply, 400, "migrate: %s", err);
	else
		reply_set(q->reply, 202, NULL, NULL, 0);
}

static void get_migrate(struct req *q)
{
	json_object *o = json_object_new_object();
	struct mig_status st = q->ctl->mig_final;

	if (q->ctl->mig)
		mig_source_status(q->ctl->mig, &st);
	else if (q->ctl->incoming_pc) /* this side received the VM and fetches its pages */
		mig_pc_status(q->ctl->incoming_pc, &st);
	if (st.phase >= MIG_PHASE_MIGRATED && !st.incoming) /* a source's outcome (api_linger) */
		q->ctl->mig_outcome_read = true;
	if (o) {
		json_object_object_add(o, "phase",
				       json_object_new_string(mig_phase_name(st.phase)));
		json_object_object_add(
		    o, "role", json_object_new_string(st.incoming ? "destination" : "source"));
		json_object_object_add(o, "url", json_object_new_string(st.url));
		json_object_object_add(o, "round", json_object_new_int64(st.round));
		json_object_object_add(o, "bytes_sent",
				       json_object_new_int64((int64_t)st.bytes_sent));
		json_object_object_add(o, "bytes_remaining",
				       json_object_new_int64((int64_t)st.bytes_remaining));
		json_object_object_add(o, "memory_bytes",
				       json_object_new_int64((int64_t)st.mem_bytes));
		json_object_object_add(o, "dirty_rate_bytes",
				       json_object_new_int64((int64_t)st.dirty_rate));
		json_object_object_add(o, "bandwidth_bytes",
				       json_object_new_int64((int64_t)st.bandwidth));
		json_object_object_add(o, "predicted_downtime_ms",
				       json_object_new_int64((int64_t)st.predicted_downtime_ms));
		json_object_object_add(o, "downtime_ms",
				       json_object_new_int64((int64_t)st.downtime_ms));
		json_object_object_add(o, "downtime_us",
				       json_object_new_int64((int64_t)st.downtime_us));
		json_object_object_add(o, "total_ms", json_object_new_int64((int64_t)st.total_ms));
		json_object_object_add(o, "pages_data",
				       json_object_new_int64((int64_t)st.pages_data));
		json_object_object_add(o, "pages_zero",
				       json_object_new_int64((int64_t)st.pages_zero));
		json_object_object_add(o, "throttle_percent",
				       json_object_new_int64(st.throttle_pct));
		json_object_object_add(o, "auto_converged",
				       json_object_new_boolean(st.auto_converged));
		json_object_object_add(o, "converged", json_object_new_boolean(st.converged));
		json_object_object_add(o, "verified", json_object_new_boolean(st.verified));
		json_object_object_add(o, "postcopy", json_object_new_boolean(st.postcopy));
		json_object_object_add(o, "postcopy_pages",
				       json_object_new_int64((int64_t)st.postcopy_pages));
		json_object_object_add(o, "postcopy_remaining",
				       json_object_new_int64((int64_t)st.postcopy_remaining));
		json_object_object_add(o, "postcopy_requested",
				       json_object_new_int64((int64_t)st.postcopy_requested));
		json_object_object_add(o, "outcome", json_object_new_string(st.outcome));
	}
	reply_json(q->reply, 200, o);
}

static void cancel_migrate(struct req *q)
{
	if (!q->ctl->mig || mig_source_cancel(q->ctl->mig) < 0)
		reply_fault(q->reply, 400,
			    "migrate: no migration to cancel (none in progress, or past the "
			    "hand-over)");
	else
		reply_ok(q->reply);
}

/* --- the metadata service (mmds/mmds.h) --- */

static bool mmds_body_ok(struct req *q)
{
	if (!q->ctl->mmds) {
		reply_fault(q->reply, 400, "the metadata service is not available in this process");
		return false;
	}
	if (!json_object_is_type(q->body, json_type_object)) {
		reply_fault(q->reply, 400, "the MMDS data must be a JSON object");
		return false;
	}
	return true;
}

/* PUT /mmds replaces the data, PATCH merges into it (RFC 7396); both before or after boot. */
static void put_mmds(struct req *q)
{
	bool patch = strcmp(q->method, "PATCH") == 0;
	int ret;

	if (!mmds_body_ok(q))
		return;
	ret = patch ? mmds_patch(q->ctl->mmds, q->body) : mmds_put(q->ctl->mmds, q->body);
	if (ret == -EFBIG)
		reply_fault(q->reply, 413, "%s", MMDS_LIMIT_MSG);
	else if (ret < 0)
		reply_fault(q->reply, 500, "out of memory");
	else
		reply_ok(q->reply);
}

static void get_mmds(struct req *q)
{
	if (!q->ctl->mmds)
		reply_fault(q->reply, 400, "the metadata service is not available in this process");
	else
		reply_json(q->reply, 200, mmds_get(q->ctl->mmds));
}

static void put_mmds_config(struct req *q)
{
	char err[VMCFG_ERR_LEN];

	if (before_boot(q, "mmds-config"))
		apply(q, vmcfg_mmds_config(q->ctl->cfg, q->body, err), err);
}

static void get_metrics(struct req *q)
{
	size_t len = 0;
	char *text = api_metrics(q->ctl, &len);

	if (!text)
		reply_set(q->reply, 500, NULL, NULL, 0);
	else
		reply_set(q->reply, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

struct route {
	const char *method;
	const char *path; /* ending in '/' with has_id: a prefix followed by the id */
	bool has_id;
	bool body; /* a JSON body is required */
	void (*fn)(struct req *q);
};

static const struct route routes[] = {
    {"GET", "/", false, false, get_root},
    {"GET", "/version", false, false, get_version},
    {"GET", "/machine-config", false, false, get_machine},
    {"PUT", "/machine-config", false, true, put_machine},
    {"PATCH", "/machine-config", false, true, put_machine},
    {"PUT", "/boot-source", false, true, put_boot},
    {"PUT", "/drives/", true, true, put_drive},
    {"PATCH", "/drives/", true, true, patch_drive},
    {"PUT", "/network-interfaces/", true, true, put_net},
    {"PATCH", "/network-interfaces/", true, true, patch_net},
    {"PUT", "/vsock", false, true, put_vsock},
    {"PUT", "/entropy", false, true, put_entropy},
    {"PUT", "/cpu-config", false, true, put_cpu_config},
    {"PUT", "/balloon", false, true, put_balloon},
    {"GET", "/balloon", false, false, get_balloon},
    {"PATCH", "/balloon", false, true, patch_balloon},
    {"GET", "/balloon/statistics", false, false, get_balloon_stats},
    {"PATCH", "/balloon/statistics", false, true, patch_balloon_stats},
    {"PUT", "/logger", false, true, put_logger},
    {"PUT", "/metrics", false, true, put_metrics},
    {"GET", "/metrics", false, false, get_metrics},
    {"PUT", "/mmds", false, true, put_mmds},
    {"PATCH", "/mmds", false, true, put_mmds},
    {"GET", "/mmds", false, false, get_mmds},
    {"PUT", "/mmds/config", false, true, put_mmds_config},
    {"PUT", "/actions", false, true, put_actions},
    {"PATCH", "/vm", false, true, patch_vm},
    {"GET", "/vm/config", false, false, get_vm_config},
    {"PUT", "/snapshot/create", false, true, put_snapshot_create},
    {"PUT", "/snapshot/load", false, true, put_snapshot_load},
    {"GET", PREFIX "/status", false, false, get_status},
    {"GET", API_PROGRESS_PATH, false, false, get_progress},
    {"PUT", PREFIX "/stop", false, false, put_stop},
    {"GET", PREFIX "/metrics", false, false, get_metrics},
    {"PUT", PREFIX "/clones", false, true, put_clones},
    {"PUT", PREFIX "/migrate", false, true, put_migrate},
    {"GET", PREFIX "/migrate", false, false, get_migrate},
    {"DELETE", PREFIX "/migrate", false, false, cancel_migrate},
    {"PUT", PREFIX "/migrate/cancel", false, false, cancel_migrate},
    {NULL, NULL, false, false, NULL},
};

/* Does @url name @r's path? Sets *@id for the {id} routes. */
static bool route_matches(const struct route *r, const char *url, const char **id)
{
	size_t n = strlen(r->path);

	if (!r->has_id)
		return strcmp(url, r->path) == 0;
	if (strncmp(url, r->path, n) != 0 || url[n] == '\0' || strchr(url + n, '/'))
		return false;
	*id = url + n;
	return true;
}

static const struct route *route_find(const char *method, const char *url, const char **id,
				      bool *path_known)
{
	const struct route *r;

	*path_known = false;
	for (r = routes; r->method; r++) {
		if (!route_matches(r, url, id))
			continue;
		*path_known = true;
		if (strcmp(r->method, method) == 0)
			return r;
	}
	return NULL;
}

void api_handle(struct api_ctl *ctl, const char *method, const char *url, const char *body,
		size_t body_len, struct api_reply *reply)
{
	struct req q = {.ctl = ctl, .method = method, .url = url, .reply = reply};
	char err[VMCFG_ERR_LEN];
	const struct route *r;
	bool known;

	memset(reply, 0, sizeof(*reply));
	r = route_find(method, url, &q.id, &known);
	if (!r) {
		/* Firecracker answers 400 for both an unknown path and a wrong method. */
		reply_fault(reply, 400, "Invalid request method and/or path: %s %.200s%s", method,
			    url, known ? " (this path takes another method)" : "");
	} else if (r->body && vmcfg_parse(body, body_len, &q.body, err) < 0) {
		reply_fault(reply, 400, "%s", err);
	} else {
		pthread_mutex_lock(&ctl->lock);
		r->fn(&q);
		pthread_mutex_unlock(&ctl->lock);
	}
	json_object_put(q.body);
	atomic_fetch_add(&ctl->requests, 1);
	if (reply->status >= 400)
		atomic_fetch_add(&ctl->errors, 1);
}

static struct api_settings settings;

/* --metrics-path or the document's metrics: the file opens at start, as PUT /metrics opens it. */
static int ctl_open_metrics(struct api_ctl *ctl, const char *path)
{
	json_object *body = json_object_new_object();
	char err[VMCFG_ERR_LEN] = "out of memory";
	int ret = -ENOMEM;

	if (body) {
		json_object_object_add(body, "metrics_path", json_object_new_string(path));
		ret = vmcfg_metrics(ctl->cfg, body, err);
		json_object_put(body);
	}
	/* @path may have been the document's own string, which vmcfg_metrics replaced */
	path = ctl->cfg->metrics_path;
	if (ret == 0 && (ret = ctl->metrics_fd = file_open_sink(path, 0600)) < 0) {
		ctl->metrics_fd = -1;
		snprintf(err, sizeof(err), "cannot open %s: %s", path,
			 ret == -FILE_EKIND ? file_kind_error(FILE_KIND_REG | FILE_KIND_FIFO)
					    : strerror(-ret));
	}
	if (ret < 0)
		log_error("metrics: %s", err);
	return ret < 0 ? ret : 0;
}

void api_settings_set(const struct api_settings *s)
{
	if (settings.mmds_initial != s->mmds_initial)
		json_object_put(settings.mmds_initial);
	settings = *s;
}

int api_ctl_init(struct api_ctl *ctl, struct vmcfg *cfg, const char *version)
{
	const char *path;

	memset(ctl, 0, sizeof(*ctl));
	ctl->cfg = cfg;
	ctl->version = version;
	ctl->instance_id = settings.instance_id ? settings.instance_id : API_DEFAULT_ID;
	ctl->max_body = settings.max_body ? settings.max_body : VMCFG_MAX_BODY;
	ctl->mmds_size_limit =
	    settings.mmds_size_limit ? settings.mmds_size_limit : API_DEFAULT_MMDS_SIZE;
	ctl->mmds_initial = settings.mmds_initial;
	ctl->metrics_fd = -1;
	ctl->start_fd = efd_create();
	if (ctl->start_fd < 0)
		return -errno;
	pthread_mutex_init(&ctl->lock, NULL);
	pthread_cond_init(&ctl->start_cond, NULL);
	/* Last: a failure leaves a block api_ctl_destroy can take down. */
	path = settings.metrics_path ? settings.metrics_path : cfg->metrics_path;
	if (!path)
		return 0;
	if (ctl_open_metrics(ctl, path) < 0)
		return -EINVAL;
	if (api_metrics_timer_start(ctl) < 0)
		log_warn("metrics: no periodic lines (cannot start their thread)");
	return 0;
}

void api_ctl_destroy(struct api_ctl *ctl)
{
	api_metrics_timer_stop(ctl); /* its last line first */
	json_object_put(ctl->metrics_prev);
	ctl->metrics_prev = NULL;
	if (ctl->start_fd >= 0)
		close(ctl->start_fd);
	ctl->start_fd = -1;
	if (ctl->metrics_fd >= 0)
		close(ctl->metrics_fd);
	ctl->metrics_fd = -1;
	pthread_mutex_destroy(&ctl->lock);
	pthread_cond_destroy(&ctl->start_cond);
}

bool api_take_start(struct api_ctl *ctl, bool *quit)
{
	bool start;

	(void)efd_drain(ctl->start_fd); /* already drained is fine */
	pthread_mutex_lock(&ctl->lock);
	start = ctl->state == API_STARTING;
	*quit = ctl->quit;
	pthread_mutex_unlock(&ctl->lock);
	return start;
}

void api_vm_started(struct api_ctl *ctl, struct vm *vm, const char *err)
{
	pthread_mutex_lock(&ctl->lock);
	if (vm) {
		ctl->vm = vm;
		ctl->state = API_RUNNING;
		ctl->boots++;
		/* A stop that came while the VM was being built still applies. */
		if (ctl->quit)
			vm_request_exit(vm, VM_EXIT_POWEROFF, "stopped through the API");
	} else {
		ctl->state = API_NOT_STARTED;
		snprintf(ctl->start_err, sizeof(ctl->start_err), "%s",
			 err && *err ? err : "the VM could not be created (see the log)");
	}
	pthread_cond_broadcast(&ctl->start_cond);
	pthread_mutex_unlock(&ctl->lock);
}

/*
 * Once a client has read the outcome, answer a little longer (up to
 * LINGER_AFTER_READ_MS): several may follow the migration (ctl migrate
 * and a status poller), and the first to read must not close the door on
 * the others.
 */
#define LINGER_AFTER_READ_MS 1000

void api_linger(struct api_ctl *ctl, unsigned int ms)
{
	const struct timespec tick = {.tv_nsec = 10000000};
	unsigned int left = ms;
	bool read = false;

	while (left >= 10) {
		pthread_mutex_lock(&ctl->lock);
		if (!read && ctl->mig_outcome_read && left > LINGER_AFTER_READ_MS)
			left = LINGER_AFTER_READ_MS;
		read = ctl->mig_outcome_read;
		pthread_mutex_unlock(&ctl->lock);
		nanosleep(&tick, NULL);
		left -= 10;
	}
}

void api_vm_stopped(struct api_ctl *ctl, bool final)
{
	pthread_mutex_lock(&ctl->lock);
	/* The migration thread never takes ctl->lock: waiting for it here cannot deadlock. */
	if (ctl->mig)
		mig_source_status(ctl->mig, &ctl->mig_final);
	mig_source_free(ctl->mig);
	ctl->mig = NULL;
	ctl->vm = NULL;
	if (final)
		ctl->state = API_STOPPED;
	pthread_mutex_unlock(&ctl->lock);
}
