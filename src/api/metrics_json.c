/*
 * The metrics file of PUT /metrics (or --metrics-path), as Firecracker's
 * clients read it: one JSON object per line, written every 60 s, on
 * FlushMetrics and when the process ends. Its groups are Firecracker's
 * (api_server, block, net, vsock, entropy, uart, vcpu, logger,
 * latencies_us), filled with Banyan's own counters (docs/api.md lists
 * them). As in Firecracker, a counter is what happened since the previous
 * line; a latency is the last one measured. A line goes into a FIFO whole
 * or not at all, and a write never blocks.
 */
#include "api/api.h"

#include "util/clock.h"
#include "util/file.h"
#include "util/log.h"
#include "util/thread.h"
#include "virtio/mmio.h"
#include "virtio/virtio.h"
#include "vmm/mem_stats.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define METRICS_PERIOD_S 60

/* Firecracker's names in latencies_us. */
const char *const api_latency_names[API_LAT_COUNT] = {
    [API_LAT_PAUSE] = "pause_vm",
    [API_LAT_RESUME] = "resume_vm",
    [API_LAT_FULL_SNAPSHOT] = "full_create_snapshot",
    [API_LAT_DIFF_SNAPSHOT] = "diff_create_snapshot",
    [API_LAT_LOAD_SNAPSHOT] = "load_snapshot",
};

/* The group @name of @root, created empty when missing. */
static json_object *group(json_object *root, const char *name)
{
	json_object *g = NULL;

	if (json_object_object_get_ex(root, name, &g))
		return g;
	g = json_object_new_object();
	json_object_object_add(root, name, g);
	return g;
}

/* Add @v to counter @key of group @g. */
static void count(json_object *g, const char *key, uint64_t v)
{
	json_object *o = NULL;

	if (!g)
		return;
	if (json_object_object_get_ex(g, key, &o))
		v += (uint64_t)json_object_get_int64(o);
	json_object_object_add(g, key, json_object_new_int64((int64_t)v));
}

static uint64_t stat_of(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* A disk's drive_id (the configuration's), for its own group "block_<drive_id>". */
static const char *disk_drive_id(struct vm *vm, const char *dev_id)
{
	unsigned int i = (unsigned int)(dev_id[2] - 'a');

	return dev_id[0] == 'v' && dev_id[1] == 'd' && i < vm->cfg.ndisks && vm->cfg.disks[i].id
		   ? vm->cfg.disks[i].id
		   : dev_id;
}

/*
 * The balloon: its sizes (gauges) and what it gave back since the VM
 * started (cumulative), all written as they are, never as differences.
 */
static void json_balloon(json_object *root, struct virtio_dev *vdev)
{
	struct virtio_balloon_info in;
	json_object *g = group(root, "balloon");

	if (virtio_balloon_info(vdev, &in) < 0)
		return;
	count(g, "target_bytes", (uint64_t)in.target_pages << 12);
	count(g, "actual_bytes", (uint64_t)in.actual_pages << 12);
	count(g, "inflated_bytes", in.inflated_bytes);
	count(g, "deflated_bytes", in.deflated_bytes);
	count(g, "released_bytes", in.released_bytes);
	count(g, "reported_free_bytes", in.reported_bytes);
	count(g, "inflate_count", in.inflates);
	count(g, "deflate_count", in.deflates);
	count(g, "report_count", in.reports);
	count(g, "stats_updates_count", in.stats_updates);
	count(g, "refused_pages", in.refused);
}

/* One virtio device's bytes in its kind's group and in its own. */
static void json_virtio(json_object *root, struct vm *vm, struct device *d, uint32_t kind)
{
	uint64_t in = stat_of(&d->stats.bytes_in), out = stat_of(&d->stats.bytes_out);
	char own[DEVICE_ID_MAX + 8];
	json_object *g[2];

	switch (kind) {
	case VIRTIO_ID_BLOCK:
		snprintf(own, sizeof(own), "block_%s", disk_drive_id(vm, d->id));
		g[0] = group(root, "block");
		g[1] = group(root, own);
		for (int i = 0; i < 2; i++) {
			count(g[i], "read_bytes", in);
			count(g[i], "write_bytes", out);
			count(g[i], "requests_count", stat_of(&d->stats.requests));
		}
		return;
	case VIRTIO_ID_NET:
		snprintf(own, sizeof(own), "net_%s", d->id);
		g[0] = group(root, "net");
		g[1] = group(root, own);
		for (int i = 0; i < 2; i++) {
			count(g[i], "rx_bytes_count", in);
			count(g[i], "tx_bytes_count", out);
		}
		return;
	case VIRTIO_ID_VSOCK:
		count(group(root, "vsock"), "rx_bytes_count", in);
		count(group(root, "vsock"), "tx_bytes_count", out);
		return;
	case VIRTIO_ID_RNG:
		count(group(root, "entropy"), "entropy_bytes", in);
		return;
	case VIRTIO_ID_BALLOON:
		json_balloon(root, virtio_mmio_vdev(d));
		return;
	default:
		return;
	}
}

static void json_devices(json_object *root, struct vm *vm)
{
	struct virtio_dev *vdev;
	json_object *uart;

	for (struct device *d = vm->devices; d; d = d->next) {
		vdev = virtio_mmio_vdev(d);
		if (vdev) {
			json_virtio(root, vm, d, vdev->ops->device_id);
		} else if (d == vm->console) {
			uart = group(root, "uart");
			count(uart, "read_count", stat_of(&d->stats.bytes_in));
			count(uart, "write_count", stat_of(&d->stats.bytes_out));
			count(uart, "missed_write_count", stat_of(&d->stats.dropped_out));
		}
	}
}

/* Exits by kind, over every vCPU; "failures" are the exits that stop a VM. */
static void json_vcpus(json_object *root, struct vm *vm)
{
	static const struct {
		unsigned int slot;
		const char *key;
	} kinds[] = {
	    {KVM_EXIT_IO, "exit_io"},	       {KVM_EXIT_MMIO, "exit_mmio"},
	    {KVM_EXIT_HLT, "exit_hlt"},	       {KVM_EXIT_SHUTDOWN, "failures"},
	    {KVM_EXIT_FAIL_ENTRY, "failures"}, {KVM_EXIT_INTERNAL_ERROR, "failures"},
	};
	json_object *g = group(root, "vcpu");

	for (unsigned int i = 0; i < vm->ncpus; i++) {
		uint64_t all = 0;

		for (unsigned int s = 0; s < VCPU_EXIT_SLOTS; s++)
			all += stat_of(&vm->vcpus[i].exits[s]);
		count(g, "kvm_exits", all);
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			count(g, kinds[k].key, stat_of(&vm->vcpus[i].exits[kinds[k].slot]));
	}
}

static void json_process(json_object *root, struct api_ctl *ctl)
{
	json_object *api = group(root, "api_server"), *logger = group(root, "logger");
	json_object *lat = group(root, "latencies_us");

	count(api, "requests_count", atomic_load(&ctl->requests));
	count(api, "sync_response_fails", atomic_load(&ctl->errors));
	count(logger, "missed_log_count", log_dropped_lines());
	count(logger, "missed_metrics_count", atomic_load(&ctl->metrics_dropped));
	count(logger, "suppressed_log_count", log_suppressed_lines());
	for (int i = 0; i < API_LAT_COUNT; i++)
		count(lat, api_latency_names[i], ctl->latency_us[i]);
}

/*
 * Banyan's "memory" group: the VMM process's memory as the host accounts
 * it (vmm/mem_stats.h), in bytes. Gauges, not counters: metrics_delta
 * keeps them as they are.
 */
static void json_memory(json_object *root, struct vm *vm)
{
	struct mem_stats st;
	json_object *g;

	if (mem_stats_read(vm ? vm->mem_base : NULL, vm ? vm->mem_map_size : 0, &st) < 0)
		return;
	g = group(root, "memory");
	count(g, "rss_bytes", st.rss);
	count(g, "pss_bytes", st.pss);
	count(g, "private_dirty_bytes", st.private_dirty);
	count(g, "hugetlb_bytes", st.hugetlb);
	count(g, "guest_resident_bytes", st.guest_resident);
	count(g, "vmm_resident_bytes", st.vmm_resident);
	if (vm)
		count(g, "guest_size_bytes", vm->mem_map_size);
}

/* Everything counted so far (cumulative); NULL when out of memory. Under ctl->lock. */
static json_object *metrics_now(struct api_ctl *ctl)
{
	json_object *root = json_object_new_object();

	if (!root)
		return NULL;
	json_process(root, ctl);
	json_memory(root, ctl->vm);
	if (ctl->vm) {
		json_vcpus(root, ctl->vm);
		json_devices(root, ctl->vm);
	}
	return root;
}

/*
 * What happened since @prev (the previous line's totals): a counter that
 * went down (a new VM after a reboot) counts from zero again. Latencies
 * are kept as they are: the last one measured; so are the memory gauges.
 */
static json_object *metrics_delta(json_object *cur, json_object *prev)
{
	json_object *out = json_object_new_object(), *pg, *pv, *og;

	if (!out)
		return NULL;
	json_object_object_foreach(cur, gname, g)
	{
		bool keep = strcmp(gname, "latencies_us") == 0 || strcmp(gname, "memory") == 0 ||
			    strcmp(gname, "balloon") == 0;

		og = json_object_new_object();
		json_object_object_add(out, gname, og);
		pg = NULL;
		json_object_object_get_ex(prev, gname, &pg);
		json_object_object_foreach(g, key, v)
		{
			int64_t now = json_object_get_int64(v), before = 0;

			pv = NULL;
			if (!keep && pg && json_object_object_get_ex(pg, key, &pv))
				before = json_object_get_int64(pv);
			json_object_object_add(
			    og, key, json_object_new_int64(before <= now ? now - before : now));
		}
	}
	return out;
}

/*
 * Room left in a FIFO: a line goes in whole or not at all (a reader must
 * never see half of one); SIZE_MAX for a regular file.
 */
static size_t sink_room(int fd)
{
	struct stat st;
	int size, queued;

	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		return SIZE_MAX;
	size = fcntl(fd, F_GETPIPE_SZ);
	if (size < 0 || ioctl(fd, FIONREAD, &queued) < 0 || queued > size)
		return 0;
	return (size_t)(size - queued);
}

static int metrics_write(struct api_ctl *ctl, const char *text, size_t len, char *err)
{
	ssize_t n;
	int e;

	if (len > sink_room(ctl->metrics_fd)) {
		atomic_fetch_add(&ctl->metrics_dropped, 1);
		return snprintf(err, VMCFG_ERR_LEN,
				"FlushMetrics: dropped: the metrics FIFO %s is full (is its reader "
				"keeping up?)",
				ctl->cfg->metrics_path),
		       -EAGAIN;
	}
	n = write(ctl->metrics_fd, text, len);
	if (n == (ssize_t)len)
		return 0;
	e = n < 0 ? errno : EIO;
	snprintf(err, VMCFG_ERR_LEN, "FlushMetrics: cannot write %s: %s", ctl->cfg->metrics_path,
		 n < 0 ? strerror(e) : "short write");
	return -e;
}

/* The line: the delta, its UTC time first, then a newline. */
static char *metrics_line(struct api_ctl *ctl, size_t *len)
{
	json_object *cur = metrics_now(ctl),
		    *out = cur ? metrics_delta(cur, ctl->metrics_prev) : NULL;
	struct timespec ts;
	const char *body;
	char *line = NULL;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (out) {
		body = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN);
		/* "{" + the timestamp + the groups ("{}" when there are none) */
		if (asprintf(&line, "{\"utc_timestamp_ms\":%lld%s%s\n",
			     (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
			     strcmp(body, "{}") ? "," : "}", body + 1) < 0)
			line = NULL;
	}
	if (line) {
		json_object_put(ctl->metrics_prev);
		ctl->metrics_prev = cur;
		*len = strlen(line);
	} else {
		json_object_put(cur);
	}
	json_object_put(out);
	return line;
}

int api_metrics_flush(struct api_ctl *ctl, char *err)
{
	size_t len = 0;
	char *line;
	int ret;

	if (!ctl->cfg->metrics_path)
		return snprintf(err, VMCFG_ERR_LEN,
				"FlushMetrics: no metrics file: configure PUT /metrics first"),
		       -EINVAL;
	if (ctl->metrics_fd < 0)
		return snprintf(err, VMCFG_ERR_LEN, "FlushMetrics: %s is not open",
				ctl->cfg->metrics_path),
		       -EBADF;
	line = metrics_line(ctl, &len);
	if (!line)
		return snprintf(err, VMCFG_ERR_LEN, "FlushMetrics: out of memory"), -ENOMEM;
	ret = metrics_write(ctl, line, len, err);
	free(line);
	return ret;
}

/* Every METRICS_PERIOD_S, and once more when stopped. */
static void *metrics_main(void *arg)
{
	struct api_ctl *ctl = arg;
	char err[VMCFG_ERR_LEN];
	struct timespec ts;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the run loop's */
	thread_enter("metrics");		/* after: its sandbox unblocks SIGSYS */
	pthread_mutex_lock(&ctl->lock);
	while (!ctl->metrics_stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += METRICS_PERIOD_S;
		while (!ctl->metrics_stop &&
		       pthread_cond_timedwait(&ctl->metrics_cond, &ctl->lock, &ts) != ETIMEDOUT)
			;
		if (api_metrics_flush(ctl, err) < 0 && !ctl->metrics_stop)
			log_debug("metrics: %s", err);
	}
	pthread_mutex_unlock(&ctl->lock);
	return NULL;
}

int api_metrics_timer_start(struct api_ctl *ctl)
{
	pthread_condattr_t attr;
	int ret;

	if (ctl->metrics_timer)
		return 0;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ctl->metrics_cond, &attr);
	pthread_condattr_destroy(&attr);
	ret = -pthread_create(&ctl->metrics_thread, NULL, metrics_main, ctl);
	if (ret < 0) {
		pthread_cond_destroy(&ctl->metrics_cond);
		return ret;
	}
	ctl->metrics_timer = true;
	return 0;
}

void api_metrics_timer_stop(struct api_ctl *ctl)
{
	if (!ctl->metrics_timer)
		return;
	pthread_mutex_lock(&ctl->lock);
	ctl->metrics_stop = true;
	pthread_cond_signal(&ctl->metrics_cond);
	pthread_mutex_unlock(&ctl->lock);
	pthread_join(ctl->metrics_thread, NULL);
	pthread_cond_destroy(&ctl->metrics_cond);
	ctl->metrics_timer = false;
}
