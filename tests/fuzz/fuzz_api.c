/*
 * libFuzzer target for the API's request handling: the first byte picks an
 * endpoint, the rest is the body, through the same api_handle the server
 * calls. One control block lives across inputs, so sequences of updates
 * are explored too. There is never a VM: the VM hooks below are stubs that
 * must not be reached. /logger and /metrics open the files their bodies
 * name through file_open_sink, which the build wraps (--wrap) so that the
 * fuzzer never touches the file system: /dev/null or an error instead.
 * The clones endpoint parses and checks its body; starting the supervisor
 * is a stub that fails.
 *
 * Built with clang -fsanitize=fuzzer,address,undefined from the sources
 * (tests/fuzz/meson.build) and run briefly by the test suite.
 */
#include "api/api.h"
#include "api/clones.h"
#include "devices/legacy.h"
#include "migration/migration.h"
#include "migration/postcopy.h"
#include "snapshot/snapshot.h"
#include "util/file.h"
#include "util/parse.h"
#include "virtio/mmio.h"
#include "virtio/virtio.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The run loop's side of InstanceStart: every start fails. */
static void *fake_run_loop(void *arg)
{
	struct api_ctl *ctl = arg;
	struct pollfd p = {.fd = ctl->start_fd, .events = POLLIN};
	bool quit;

	for (;;) {
		if (poll(&p, 1, -1) < 0)
			continue;
		if (api_take_start(ctl, &quit))
			api_vm_started(ctl, NULL, "no VM in the fuzzer");
	}
	return NULL;
}

static const struct {
	const char *method, *url;
} targets[] = {
    {"PUT", "/machine-config"},
    {"PATCH", "/machine-config"},
    {"PUT", "/boot-source"},
    {"PUT", "/drives/rootfs"},
    {"PATCH", "/drives/rootfs"},
    {"PUT", "/drives/data_1"},
    {"PUT", "/network-interfaces/eth0"},
    {"PATCH", "/network-interfaces/eth0"},
    {"PUT", "/vsock"},
    {"PUT", "/entropy"},
    {"PUT", "/actions"},
    {"PATCH", "/vm"},
    {"GET", "/vm/config"},
    {"GET", "/machine-config"},
    {"GET", "/metrics"},
    {"PUT", "/snapshot/create"},
    {"GET", "/"},
    {"GET", "/banyan/v1/status"},
    {"PUT", "/logger"},
    {"PUT", "/metrics"},
    {"PUT", "/snapshot/load"},
    {"PUT", "/banyan/v1/clones"},
    {"PUT", "/banyan/v1/migrate"},
    {"GET", "/banyan/v1/migrate"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every JSON reply is valid UTF-8, whatever bytes the request had. */
static void check_utf8(const struct api_reply *r)
{
	const uint8_t *b = (const uint8_t *)r->body;
	size_t i = 0, n;

	if (!r->content_type || strcmp(r->content_type, "application/json") != 0)
		return;
	while (i < r->body_len) {
		n = utf8_seq_len(b + i, r->body_len - i);
		if (!n)
			abort();
		i += n;
	}
}

/*
 * The real file_open_sink opens (and creates) the path of a body: here a
 * path that starts with '/' and has an even length "opens" /dev/null, any
 * other is refused, as the real one refuses a FIFO-less device or a
 * missing directory.
 */
int __wrap_file_open_sink(const char *path, mode_t mode);

int __wrap_file_open_sink(const char *path, mode_t mode)
{
	int fd;

	(void)mode;
	if (path[0] != '/')
		return -ENOENT;
	if (strlen(path) % 2)
		return -FILE_EKIND;
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vmcfg cfg;
	static struct api_ctl ctl;
	static bool ready;
	struct api_reply reply;
	pthread_t t;
	unsigned int pick;

	if (!ready) {
		vmcfg_init(&cfg);
		if (api_ctl_init(&ctl, &cfg, "fuzz") < 0 ||
		    pthread_create(&t, NULL, fake_run_loop, &ctl) != 0)
			abort();
		ready = true;
	}
	if (size == 0)
		return 0;
	pick = data[0] % (sizeof(targets) / sizeof(targets[0]));
	if (data[0] == 0xff) {
		/* The config file path: a whole document. */
		json_object *doc = NULL;
		char err[VMCFG_ERR_LEN];

		if (vmcfg_parse((const char *)data + 1, size - 1, &doc, err) == 0)
			(void)vmcfg_document(&cfg, doc, err);
		json_object_put(doc);
		return 0;
	}
	api_handle(&ctl, targets[pick].method, targets[pick].url, (const char *)data + 1, size - 1,
		   &reply);
	if (reply.status < 200 || reply.status > 599 || (reply.body_len && !reply.body))
		abort();
	check_utf8(&reply);
	free(reply.body);
	return 0;
}

/* Never reached without a VM (ctl.vm stays NULL). */
void vm_pause(struct vm *vm)
{
	(void)vm;
	abort();
}

void vm_resume(struct vm *vm)
{
	(void)vm;
	abort();
}

bool vm_is_paused(struct vm *vm)
{
	(void)vm;
	abort();
}

struct device *vm_find_device(struct vm *vm, const char *id)
{
	(void)vm;
	(void)id;
	abort();
}

void vm_request_exit(struct vm *vm, enum vm_exit reason, const char *detail)
{
	(void)vm;
	(void)reason;
	(void)detail;
	abort();
}

int virtio_set_rate_limit(struct virtio_dev *vdev, unsigned int which, const struct rl_config *c)
{
	(void)vdev;
	(void)which;
	(void)c;
	abort();
}

int i8042_ctrl_alt_del(struct device *dev)
{
	(void)dev;
	abort();
}

const char *vcpu_exit_name(unsigned int slot)
{
	(void)slot;
	abort();
}

int snapshot_create(struct vm *vm, const struct snapshot_create_opts *o, char *err)
{
	(void)vm;
	(void)o;
	(void)err;
	abort();
}

/* PUT /banyan/v1/clones: the body is checked, no supervisor ever starts. */
int api_clones_start(const struct api_clones *c, pid_t *pid, char *err)
{
	if (!c->snapshot_dir || c->snapshot_dir[0] != '/' || !c->console_prefix ||
	    c->console_prefix[0] != '/' || c->count < 1 || c->count > API_CLONES_MAX)
		abort(); /* the handler must have refused these */
	(void)pid;
	snprintf(err, SNAP_ERR_LEN, "clones: %s: not a snapshot (no supervisor in the fuzzer)",
		 c->snapshot_dir);
	return -ENOENT;
}

json_object *api_clones_reply(const struct api_clones *c, pid_t pid)
{
	(void)c;
	(void)pid;
	abort();
}

/* The fuzzer opens no TAP: every name passes, so the interface's own checks are explored. */
int virtio_net_check_tap(const char *name, char *err, size_t errlen)
{
	(void)name;
	(void)err;
	(void)errlen;
	return 0;
}

/* Never reached without a VM (PATCH /drives needs one). */
int virtio_blk_swap(struct virtio_dev *vdev, const char *path, char *err, size_t errlen)
{
	(void)vdev;
	(void)path;
	(void)err;
	(void)errlen;
	abort();
}

/* The balloon's live operations: never reached without a VM. */
bool virtio_is_balloon(const struct virtio_dev *vdev)
{
	(void)vdev;
	abort();
}

int virtio_balloon_set_target(struct virtio_dev *vdev, uint32_t mib)
{
	(void)vdev;
	(void)mib;
	abort();
}

int virtio_balloon_set_stats_interval(struct virtio_dev *vdev, uint32_t secs)
{
	(void)vdev;
	(void)secs;
	abort();
}

int virtio_balloon_info(struct virtio_dev *vdev, struct virtio_balloon_info *out)
{
	(void)vdev;
	(void)out;
	abort();
}

struct virtio_dev *virtio_mmio_vdev(struct device *dev)
{
	(void)dev;
	abort();
}

/* Migrations need a VM, which the fuzzer never has: a migration never starts. */
int mig_source_start(struct vm *vm, const struct mig_opts *o, struct mig_source **out, char *err)
{
	(void)vm;
	(void)o;
	(void)out;
	(void)err;
	abort();
}

void mig_source_status(struct mig_source *m, struct mig_status *st)
{
	(void)m;
	(void)st;
	abort();
}

/* Nor does a destination's post-copy: incoming_pc stays NULL. */
void mig_pc_status(struct mig_postcopy *pc, struct mig_status *st)
{
	(void)pc;
	(void)st;
	abort();
}

bool mig_source_active(struct mig_source *m)
{
	(void)m;
	abort();
}

int mig_source_cancel(struct mig_source *m)
{
	(void)m;
	abort();
}

void mig_source_free(struct mig_source *m)
{
	if (m)
		abort();
}

const char *mig_phase_name(enum mig_phase p)
{
	return p == MIG_PHASE_NONE ? "none" : "?";
}

int mig_postcopy_parse(const char *s, enum mig_postcopy_mode *mode)
{
	if (strcmp(s, "off") == 0)
		*mode = MIG_POSTCOPY_OFF;
	else if (strcmp(s, "auto") == 0)
		*mode = MIG_POSTCOPY_AUTO;
	else if (strcmp(s, "now") == 0)
		*mode = MIG_POSTCOPY_NOW;
	else
		return -EINVAL;
	return 0;
}
