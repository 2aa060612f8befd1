/*
 * GET /metrics: the Prometheus text exposition format (version 0.0.4).
 * Counters are read without stopping anything: each is an atomic the vCPU
 * or device thread bumps, so a scrape never stalls the guest.
 */
#include "api/api.h"
#include "util/clock.h"

#include "migration/migration.h"
#include "util/log.h"
#include "vmm/mem_stats.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void metric_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Writes to a log or metrics FIFO never block: what does not fit is dropped and counted here. */
static void metrics_dropped(FILE *f, struct api_ctl *ctl)
{
	metric_head(f, "banyan_log_lines_dropped_total", "counter",
		    "Log lines dropped because the log's reader fell behind (its queue was full).");
	fprintf(f, "banyan_log_lines_dropped_total %llu\n",
		(unsigned long long)log_dropped_lines());
	metric_head(f, "banyan_metrics_flushes_dropped_total", "counter",
		    "FlushMetrics dropped because the metrics FIFO was full.");
	fprintf(f, "banyan_metrics_flushes_dropped_total %llu\n",
		(unsigned long long)atomic_load(&ctl->metrics_dropped));
}

/* Guest-triggered log lines the rate limit held back (util/log.h). */
static void metrics_log_limit(FILE *f)
{
	metric_head(f, "banyan_log_lines_suppressed_total", "counter",
		    "Guest-triggered log lines held back by the rate limit.");
	fprintf(f, "banyan_log_lines_suppressed_total %llu\n",
		(unsigned long long)log_suppressed_lines());
}

static void metrics_state(FILE *f, struct api_ctl *ctl)
{
	static const char *const states[] = {"not_started", "running", "paused", "stopped"};
	unsigned int cur, i;

	if (ctl->state == API_RUNNING)
		cur = ctl->vm && vm_is_paused(ctl->vm) ? 2 : 1;
	else
		cur = ctl->state == API_STOPPED ? 3 : 0;
	metric_head(f, "banyan_vm_state", "gauge", "The VM's state: 1 for the current one.");
	for (i = 0; i < 4; i++)
		fprintf(f, "banyan_vm_state{state=\"%s\"} %d\n", states[i], i == cur);
	metric_head(f, "banyan_vm_boots_total", "counter", "VMs started (restarts included).");
	fprintf(f, "banyan_vm_boots_total %llu\n", (unsigned long long)ctl->boots);
	metric_head(f, "banyan_api_requests_total", "counter", "API requests answered.");
	fprintf(f, "banyan_api_requests_total %llu\n",
		(unsigned long long)atomic_load(&ctl->requests));
	metric_head(f, "banyan_api_errors_total", "counter", "API requests answered with 4xx/5xx.");
	fprintf(f, "banyan_api_errors_total %llu\n", (unsigned long long)atomic_load(&ctl->errors));
	metrics_dropped(f, ctl);
	metrics_log_limit(f);
}

static void metrics_times(FILE *f, struct vm *vm)
{
	const struct device *con = vm->console;
	uint64_t first = con ? atomic_load(&vm->console->stats.first_out_ns) : 0;

	metric_head(f, "banyan_vm_vcpus", "gauge", "vCPUs of the VM.");
	fprintf(f, "banyan_vm_vcpus %u\n", vm->ncpus);
	metric_head(f, "banyan_vm_memory_bytes", "gauge", "Guest RAM.");
	fprintf(f, "banyan_vm_memory_bytes %llu\n", (unsigned long long)vm->cfg.mem_size);
	metric_head(f, "banyan_vm_setup_seconds", "gauge",
		    "Time Banyan took to build the VM (KVM, memory, devices, kernel loading).");
	fprintf(f, "banyan_vm_setup_seconds %.6f\n", (double)vm->setup_ns / 1e9);
	metric_head(f, "banyan_vm_uptime_seconds", "gauge", "Time since the vCPUs started.");
	fprintf(f, "banyan_vm_uptime_seconds %.6f\n", (double)(now_ns() - vm->start_ns) / 1e9);
	if (first) {
		metric_head(f, "banyan_vm_boot_first_output_seconds", "gauge",
			    "Time from the vCPUs' start to the guest's first console byte.");
		fprintf(f, "banyan_vm_boot_first_output_seconds %.6f\n",
			(double)(first - vm->start_ns) / 1e9);
	}
}

static void metrics_exits(FILE *f, struct vm *vm)
{
	unsigned int i, slot;

	metric_head(f, "banyan_vcpu_exits_total", "counter",
		    "Exits from KVM_RUN to Banyan, by vCPU and reason.");
	for (i = 0; i < vm->ncpus; i++)
		for (slot = 0; slot < VCPU_EXIT_SLOTS; slot++) {
			uint64_t n =
			    atomic_load_explicit(&vm->vcpus[i].exits[slot], memory_order_relaxed);
			const char *name = vcpu_exit_name(slot);

			if (n)
				fprintf(f,
					"banyan_vcpu_exits_total{vcpu=\"%u\",reason=\"%s\"} %llu\n",
					i, name ? name : "other", (unsigned long long)n);
		}
}

static void metrics_devices(FILE *f, struct vm *vm)
{
	const struct device *d;

	metric_head(f, "banyan_device_bytes_total", "counter",
		    "Bytes through each device: in = host to guest, out = guest to host.");
	for (d = vm->devices; d; d = d->next) {
		fprintf(f, "banyan_device_bytes_total{device=\"%s\",direction=\"in\"} %llu\n",
			d->id, (unsigned long long)atomic_load(&d->stats.bytes_in));
		fprintf(f, "banyan_device_bytes_total{device=\"%s\",direction=\"out\"} %llu\n",
			d->id, (unsigned long long)atomic_load(&d->stats.bytes_out));
	}
	metric_head(f, "banyan_device_requests_total", "counter",
		    "Requests each device served (virtio requests, ...).");
	for (d = vm->devices; d; d = d->next)
		fprintf(f, "banyan_device_requests_total{device=\"%s\"} %llu\n", d->id,
			(unsigned long long)atomic_load(&d->stats.requests));
	metric_head(
	    f, "banyan_device_dropped_bytes_total", "counter",
	    "Bytes out dropped rather than wait: console output past its queue (--console-queue).");
	for (d = vm->devices; d; d = d->next)
		fprintf(f, "banyan_device_dropped_bytes_total{device=\"%s\"} %llu\n", d->id,
			(unsigned long long)atomic_load(&d->stats.dropped_out));
}

/* The last migration's figures (docs/migration.md), when there was one. */
static void metrics_migration(FILE *f, struct api_ctl *ctl)
{
	struct mig_status st;

	if (!ctl->mig)
		return;
	mig_source_status(ctl->mig, &st);
	metric_head(f, "banyan_migration_phase", "gauge",
		    "The live migration's phase (1 for the current one).");
	fprintf(f, "banyan_migration_phase{phase=\"%s\"} 1\n", mig_phase_name(st.phase));
	metric_head(f, "banyan_migration_round", "gauge", "Pre-copy round (1: all memory).");
	fprintf(f, "banyan_migration_round %u\n", st.round);
	metric_head(f, "banyan_migration_sent_bytes", "gauge", "Bytes sent on the stream.");
	fprintf(f, "banyan_migration_sent_bytes %llu\n", (unsigned long long)st.bytes_sent);
	metric_head(f, "banyan_migration_remaining_bytes", "gauge",
		    "Dirty memory not yet sent (estimate).");
	fprintf(f, "banyan_migration_remaining_bytes %llu\n",
		(unsigned long long)st.bytes_remaining);
	metric_head(f, "banyan_migration_dirty_rate_bytes", "gauge",
		    "Bytes per second the guest dirtied in the last round.");
	fprintf(f, "banyan_migration_dirty_rate_bytes %llu\n", (unsigned long long)st.dirty_rate);
	metric_head(f, "banyan_migration_predicted_downtime_ms", "gauge",
		    "The final pause, predicted from the dirty pages and the link.");
	fprintf(f, "banyan_migration_predicted_downtime_ms %llu\n",
		(unsigned long long)st.predicted_downtime_ms);
	metric_head(f, "banyan_migration_downtime_ms", "gauge", "The final pause as it was.");
	fprintf(f, "banyan_migration_downtime_ms %llu\n", (unsigned long long)st.downtime_ms);
	metric_head(f, "banyan_migration_downtime_us", "gauge",
		    "The final pause as it was, in microseconds (from vm_pause to the "
		    "destination's RUNNING).");
	fprintf(f, "banyan_migration_downtime_us %llu\n", (unsigned long long)st.downtime_us);
	metric_head(f, "banyan_migration_throttle_percent", "gauge",
		    "Share of time the vCPUs are held back (auto-converge).");
	fprintf(f, "banyan_migration_throttle_percent %u\n", st.throttle_pct);
	metric_head(f, "banyan_migration_auto_converged", "gauge",
		    "1 once the vCPUs were throttled for the migration to converge.");
	fprintf(f, "banyan_migration_auto_converged %d\n", st.auto_converged);
	metric_head(f, "banyan_migration_postcopy", "gauge",
		    "1 once the migration switched to post-copy.");
	fprintf(f, "banyan_migration_postcopy %d\n", st.postcopy);
	metric_head(f, "banyan_migration_postcopy_remaining_pages", "gauge",
		    "Post-copy: pages the destination still lacks.");
	fprintf(f, "banyan_migration_postcopy_remaining_pages %llu\n",
		(unsigned long long)st.postcopy_remaining);
	metric_head(f, "banyan_migration_postcopy_requested_pages", "gauge",
		    "Post-copy: pages the destination asked for (its faults).");
	fprintf(f, "banyan_migration_postcopy_requested_pages %llu\n",
		(unsigned long long)st.postcopy_requested);
}

/* Rate limiters (virtio/throttle.h): how often and how long requests waited for them. */
static void metrics_throttle(FILE *f, struct vm *vm)
{
	static const char *const dir[] = {"in", "out"};
	const struct device *d;

	metric_head(f, "banyan_device_throttled_total", "counter",
		    "Times a device's rate limiter held a request back (in = to the guest: "
		    "reads, received frames, entropy; out = writes, sent frames).");
	for (d = vm->devices; d; d = d->next)
		for (unsigned int i = 0; i < 2; i++)
			fprintf(
			    f,
			    "banyan_device_throttled_total{device=\"%s\",direction=\"%s\"} %llu\n",
			    d->id, dir[i], (unsigned long long)atomic_load(&d->stats.throttled[i]));
	metric_head(f, "banyan_device_throttled_seconds_total", "counter",
		    "Time requests waited for a device's rate limiter.");
	for (d = vm->devices; d; d = d->next)
		for (unsigned int i = 0; i < 2; i++)
			fprintf(
			    f,
			    "banyan_device_throttled_seconds_total{device=\"%s\",direction=\"%s\"} "
			    "%.6f\n",
			    d->id, dir[i], (double)atomic_load(&d->stats.throttled_ns[i]) / 1e9);
}

/* The process's memory as the host accounts it (vmm/mem_stats.h); guest RAM apart. */
static void metrics_memory(FILE *f, struct vm *vm)
{
	struct mem_stats st;

	if (mem_stats_read(vm ? vm->mem_base : NULL, vm ? vm->mem_map_size : 0, &st) < 0)
		return;
	metric_head(f, "banyan_process_memory_bytes", "gauge",
		    "The VMM process's memory (rss, pss, private_dirty: /proc/self/smaps_rollup; "
		    "hugetlb: its huge pages; guest_resident: guest RAM's resident pages, huge "
		    "ones included; vmm_resident: rss less guest RAM's).");
	fprintf(f,
		"banyan_process_memory_bytes{kind=\"rss\"} %llu\n"
		"banyan_process_memory_bytes{kind=\"pss\"} %llu\n"
		"banyan_process_memory_bytes{kind=\"private_dirty\"} %llu\n"
		"banyan_process_memory_bytes{kind=\"hugetlb\"} %llu\n"
		"banyan_process_memory_bytes{kind=\"guest_resident\"} %llu\n"
		"banyan_process_memory_bytes{kind=\"vmm_resident\"} %llu\n",
		(unsigned long long)st.rss, (unsigned long long)st.pss,
		(unsigned long long)st.private_dirty, (unsigned long long)st.hugetlb,
		(unsigned long long)st.guest_resident, (unsigned long long)st.vmm_resident);
}

char *api_metrics(struct api_ctl *ctl, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	metrics_state(f, ctl);
	metrics_migration(f, ctl);
	metrics_memory(f, ctl->vm);
	if (ctl->vm) {
		metrics_times(f, ctl->vm);
		metrics_exits(f, ctl->vm);
		metrics_devices(f, ctl->vm);
		metrics_throttle(f, ctl->vm);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
