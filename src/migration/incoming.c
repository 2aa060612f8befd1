/*
 * The destination of a live migration: build the source's machine here
 * (or refuse, saying why), load its memory and state, confirm.
 */
#include "migration/migration.h"

#include "config/vmcfg.h"
#include "migration/postcopy.h"
#include "migration/stream.h"
#include "migration/upgrade.h"
#include "snapshot/snapshot.h"
#include "util/clock.h"
#include "util/errmsg.h"
#include "util/log.h"
#include "virtio/virtio.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define fail(err, ret, ...) errmsg_set(err, MIG_ERR_LEN, ret, __VA_ARGS__)
#define STREAM_TIMEOUT_MS   30000 /* a source silent this long is gone */

struct incoming {
	struct mig_sink sink;
	const struct mig_incoming_opts *o;
	struct vmcfg *doc;
	struct vm_config cfg;
	struct vm *vm;
	struct mig_postcopy *pc; /* the pages still to come after GO; NULL: pre-copy only */
	struct mig_conn *conn;
	uint64_t load_ns[3]; /* how long loading the vCPUs, the VM and the devices took */
};

/*
 * A card configured without a MAC has one derived from its TAP's name
 * (virtio_net_default_mac): moved to another TAP it keeps the source's,
 * pinned in the machine's configuration before the TAP changes, so this
 * side logs it, a reboot here keeps it, GET /vm/config and the next
 * migration carry it.
 */
static int pin_mac(struct vmcfg_net *net, unsigned int index, char *err)
{
	uint8_t m[6];
	char id[16];

	if (net->guest_mac)
		return 0;
	virtio_net_default_id(index, id, sizeof(id));
	virtio_net_default_mac(net->host_dev_name ? net->host_dev_name : "",
			       net->iface_id ? net->iface_id : id, m);
	if (asprintf(&net->guest_mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
		     m[5]) < 0) {
		net->guest_mac = NULL;
		return fail(err, -ENOMEM, "out of memory");
	}
	return 0;
}

/* "ID=VALUE" overrides: each ID must name a device of the machine. */
static int apply_overrides(const char *const *list, struct vmcfg *doc, bool taps, char *err)
{
	for (; list && *list; list++) {
		const char *eq = strchr(*list, '=');
		size_t n = eq ? (size_t)(eq - *list) : 0;
		unsigned int count = taps ? doc->nnets : doc->ndrives, i;
		char **slot = NULL, *v;

		for (i = 0; eq && i < count && !slot; i++) {
			const char *id = taps ? doc->nets[i].iface_id : doc->drives[i].drive_id;

			if (id && strlen(id) == n && strncmp(id, *list, n) == 0)
				slot = taps ? &doc->nets[i].host_dev_name
					    : &doc->drives[i].path_on_host;
		}
		if (!slot)
			return fail(err, -EINVAL, "override '%s': the machine has no %s of that id",
				    *list, taps ? "network interface" : "drive");
		if (taps && pin_mac(&doc->nets[i - 1], i - 1, err) < 0)
			return -ENOMEM;
		v = strdup(eq + 1);
		if (!v)
			return fail(err, -ENOMEM, "out of memory");
		free(*slot);
		*slot = v;
	}
	return 0;
}

/* What this destination was given must be what comes. */
static int check_machine(const struct incoming *in, char *err)
{
	const struct vmcfg *d = in->doc;
	char why[VMCFG_ERR_LEN];

	if (in->o->mem_mib && d->mem_size_mib != in->o->mem_mib)
		return fail(err, -ENOMEM,
			    "the VM has %llu MiB of memory, this destination was given %u MiB",
			    (unsigned long long)d->mem_size_mib, in->o->mem_mib);
	if (in->o->ncpus && d->vcpu_count != in->o->ncpus)
		return fail(err, -EINVAL, "the VM has %u vCPUs, this destination was given %u",
			    d->vcpu_count, in->o->ncpus);
	if (vmcfg_check_memory(d->mem_size_mib, why) < 0)
		return fail(err, -ENOMEM, "this host cannot hold the VM's memory: %s", why);
	if (vmcfg_check_files(d, why) < 0)
		return fail(err, -ENOENT, "%s", why);
	return 0;
}

/*
 * An upgrade: RAM is the source's memfd, which came with CONFIG. Checked
 * before it is mapped; vm_create maps it as it is and owns it.
 */
static int take_memfd(struct incoming *in, char *err)
{
	int ret, fd = mig_conn_take_fd(in->conn);

	if (fd < 0)
		return fail(err, -EPROTO,
			    "the source hands its memory over by descriptor, but none came (a "
			    "unix: socket carries it)");
	ret = mig_memfd_check(fd, in->cfg.mem_size, err);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	in->cfg.mem_fd_given = true;
	in->cfg.mem_fd = fd;
	log_info("upgrade: guest memory handed over by descriptor (%llu MiB, not copied)",
		 (unsigned long long)(in->cfg.mem_size >> 20));
	return 0;
}

static int sink_config(struct mig_sink *s, const uint8_t *buf, size_t len, char *err)
{
	struct incoming *in = container_of(s, struct incoming, sink);
	char why[VMCFG_ERR_LEN];
	int ret = snapshot_config_decode(buf, len, in->doc, err);

	if (ret == 0)
		ret = apply_overrides(in->o->taps, in->doc, true, err);
	if (ret == 0)
		ret = apply_overrides(in->o->disks, in->doc, false, err);
	if (ret == 0)
		ret = check_machine(in, err);
	if (ret == 0 && vmcfg_to_vm_config(in->doc, &in->cfg, why) < 0)
		ret = fail(err, -EINVAL, "%s", why);
	if (ret < 0)
		return ret;
	in->cfg.console_out_fd = in->o->console_out_fd;
	in->cfg.restoring = true;
	if (s->flags & MIG_FLAG_MEMFD) {
		ret = take_memfd(in, err);
		if (ret < 0)
			return ret;
	}
	ret = vm_create(&in->cfg, &in->vm);
	if (ret < 0) /* a TAP that cannot be opened, a disk, KVM: vm_create logged why */
		return fail(err, ret, "cannot build the VM here: %s",
			    log_last_error()[0] ? log_last_error() : strerror(-ret));
	/*
	 * Devices stay parked until everything is loaded, and so do the vCPU
	 * threads, started now: creating them and installing their filters
	 * is done before READY lets the source pause the guest, not inside
	 * its pause (nor competing with it for the CPUs).
	 */
	vm_pause(in->vm);
	s->mem = &in->vm->mem;
	if (vm_start(in->vm) < 0)
		return fail(err, -EAGAIN, "cannot start the vCPU threads here");
	vm_wait_parked(in->vm);
	return 0;
}

static int sink_state(struct mig_sink *s, enum mig_tag tag, const uint8_t *buf, size_t len,
		      char *err)
{
	struct incoming *in = container_of(s, struct incoming, sink);
	enum snapshot_part part = tag == MIG_TAG_VCPUS ? SNAPSHOT_PART_VCPUS
				  : tag == MIG_TAG_VM  ? SNAPSHOT_PART_VM
						       : SNAPSHOT_PART_DEVICES;
	uint64_t t = now_ns();
	int ret = snapshot_part_load(in->vm, part, buf, len, err);

	in->load_ns[tag == MIG_TAG_VCPUS ? 0 : tag == MIG_TAG_VM ? 1 : 2] = now_ns() - t;
	return ret;
}

static int sink_postcopy(struct mig_sink *s, const uint8_t *buf, size_t len, const uint64_t *hashes,
			 char *err)
{
	struct incoming *in = container_of(s, struct incoming, sink);

	return mig_pc_prepare(in->vm, buf, len, hashes, &in->pc, err);
}

/* TLS's credentials, read before listening (tcp: only). */
static int load_tls(const struct mig_incoming_opts *o, const struct mig_url *u,
		    struct mig_tls **tls, char *err)
{
	if (!o->tls || !mig_tls_wanted(o->tls))
		return 0;
	if (u->kind != MIG_URL_TCP)
		return fail(err, -EINVAL, "TLS is for tcp: URLs");
	return mig_tls_load(o->tls, tls, err);
}

/* One source's connection; *@tls (the caller frees it after the connection) when TLS. */
static int wait_for_source(const struct mig_incoming_opts *o, struct mig_conn *c,
			   struct mig_tls **tls, char *err)
{
	struct mig_url u;
	int lfd, ret = mig_url_parse(o->url, &u, err);

	if (ret == 0)
		ret = load_tls(o, &u, tls, err);
	if (ret < 0)
		return ret;
	lfd = mig_listen(&u, err);
	if (lfd < 0)
		return lfd;
	log_info("waiting for a migration on %s%s", o->url, *tls ? " (TLS)" : "");
	ret = mig_accept(lfd, o->cancel_fd, STREAM_TIMEOUT_MS, c, err);
	close(lfd);
	if (u.kind == MIG_URL_UNIX)
		unlink(u.path); /* one source only: nobody else may connect */
	if (ret == 0 && *tls)
		ret = mig_tls_server(c, *tls, err);
	return ret;
}

/*
 * GO came: the source let go, so this VM is the one now, whether or not
 * the source hears RUNNING. RUNNING goes first, then the vCPUs resume: a
 * wake-up of threads parked since CONFIG, microseconds, while a woken
 * vCPU thread could take the CPU the reply needs and the source would
 * count that in the pause it reports. With post-copy the page threads
 * start in between (they ask the source for pages, which it serves once
 * it has heard RUNNING).
 */
static int take_over(struct incoming *in, struct mig_conn *c, char *err)
{
	uint64_t go = now_ns();
	int ret;

	if (mig_send_reply(c, MIG_TAG_RUNNING, 0, NULL) < 0 && !in->pc)
		log_warn("the source did not hear that the VM runs here (it let go anyway)");
	if (in->pc && (ret = mig_pc_start(in->pc, c)) < 0)
		return fail(err, ret, "cannot start post-copy: %s", strerror(-ret));
	/* Timed before the wake-up: a woken vCPU may take this thread's CPU at once. */
	log_info("VM running %.3f ms after the source let go", (double)(now_ns() - go) / 1e6);
	vm_resume(in->vm); /* devices, then vCPUs */
	return 0;
}

/* A VM that will not run here: its parked vCPU threads leave, then post-copy's, then the VM. */
static void drop_vm(struct vm *vm, struct mig_postcopy *pc)
{
	if (vm) {
		vm_request_exit(vm, VM_EXIT_HOST_ERROR, "the incoming migration failed");
		vm_join(vm);
	}
	mig_pc_free(pc);
	vm_destroy(vm);
}

int mig_incoming(const struct mig_incoming_opts *o, struct vmcfg *doc, struct vm **out, char *err)
{
	struct incoming in = {.o = o, .doc = doc};
	struct mig_conn c = {.fd = -1};
	struct mig_tls *tls = NULL;
	int ret;

	in.conn = &c;
	in.sink.config = sink_config;
	in.sink.state = sink_state;
	in.sink.postcopy = o->postcopy ? sink_postcopy : NULL;
	err[0] = '\0';
	ret = wait_for_source(o, &c, &tls, err);
	if (ret == 0)
		ret = mig_receive(&c, &in.sink, err);
	if (ret < 0 && c.why[0] && !strstr(err, c.why) &&
	    strlen(err) + strlen(c.why) + 4 < MIG_ERR_LEN)
		snprintf(err + strlen(err), MIG_ERR_LEN - strlen(err), " (%s)", c.why);
	if (ret == 0)
		ret = take_over(&in, &c, err);
	if (ret == 0)
		log_info("migration received: %llu MiB in %llu bytes; state loaded in %llu us "
			 "(vCPUs %llu, VM %llu, devices %llu)",
			 (unsigned long long)doc->mem_size_mib, (unsigned long long)c.bytes_in,
			 (unsigned long long)(in.load_ns[0] + in.load_ns[1] + in.load_ns[2]) / 1000,
			 (unsigned long long)in.load_ns[0] / 1000,
			 (unsigned long long)in.load_ns[1] / 1000,
			 (unsigned long long)in.load_ns[2] / 1000);
	mig_conn_close(&c);
	mig_tls_free(tls); /* after the session that used it */
	if (ret < 0) {
		drop_vm(in.vm, in.pc);
		return ret;
	}
	if (o->postcopy)
		*o->postcopy = in.pc;
	*out = in.vm;
	return 0;
}
