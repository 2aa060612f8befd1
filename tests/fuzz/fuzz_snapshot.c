/*
 * libFuzzer target: the snapshot readers, everything a hostile snapshot
 * directory reaches before KVM would act on it.
 *
 * Input, first byte (flags):
 *   bit 0 clear: the rest is manifest.json as stored; it is parsed
 *                (snap_read_manifest) and checked against the directory
 *                (snap_verify: section files, sizes, CRCs, the memory file).
 *   bit 0 set:   the rest is up to four sections, config, devices, vcpus
 *                and vm, each as a little-endian u16 length then its bytes.
 *                A valid manifest is written for them (bit 1: with one CRC
 *                wrong, bit 2: a full snapshot's memory.map too) and the
 *                snapshot is opened and restored into a machine without
 *                KVM: the configuration, the device and vCPU framing, the
 *                x86 vCPU and VM state decoders (arch/x86/snapshot.c, its
 *                ioctls answered by a stub) and stand-in devices named as
 *                a real machine's.
 *                bit 3: the snapshot is a diff, its memory.map the fifth
 *                chunk of the input zero-padded to its size (bit 4: as it
 *                is); its parent, a full snapshot (bit 6: a diff of one,
 *                a chain of three), is found where the manifest says or
 *                (bit 5) as a sibling of the same name, as a moved store
 *                is; restore applies the chain's pages to guest memory.
 * The second byte picks the manifest's vCPU count (1..4).
 *
 * Build and run: tests/fuzz/run_snapshot.sh (clang, -fsanitize=fuzzer).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>

#include "arch/x86/x86.h"
#include "snapshot/snapshot.h"
#include "virtio/blk_overlay.h"
#include "virtio/virtio.h"
#include "vmm/arch.h"
#include "vmm/device.h"
#include "vmm/dirty_log.h"
#include "vmm/state.h"
#include "vmm/vcpu.h"
#include "util/log.h"
#include "vmm/vm.h"

#define FAKE_FD	 0x7ffff000	/* the VM's and vCPUs' "KVM" descriptors */
#define MEM_SIZE (256ULL << 20) /* the manifest's; sparse on tmpfs */
#define MAP_SIZE (MEM_SIZE / 4096 / 8)

/* The snapshot, and the parents a diff builds on (siblings of it). */
static char dir[64], full_dir[80], diff_dir[80];
static const char full_id[] = "0000000000000000000000000000000f";
static const char diff_id[] = "0000000000000000000000000000000d";

/* A host CPU with every feature, so that a restore goes on past the CPUID check. */
static void host_cpuid(struct kvm_cpuid2 *c)
{
	static const uint32_t leaves[][2] = {{1, 0},   {7, 0},		{7, 1},
					     {0xd, 1}, {0x80000001, 0}, {0x80000008, 0}};

	c->nent = 6;
	for (unsigned int i = 0; i < 6; i++)
		c->entries[i] = (struct kvm_cpuid_entry2){.function = leaves[i][0],
							  .index = leaves[i][1],
							  .eax = ~0U,
							  .ebx = ~0U,
							  .ecx = ~0U,
							  .edx = ~0U};
}

/* KVM's answers: every ioctl on a fake descriptor succeeds and changes nothing. */
int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd != FAKE_FD)
		return (int)syscall(SYS_ioctl, fd, req, arg);
	if (req == KVM_GET_CPUID2)
		host_cpuid(arg);
	return 0;
}

/* --- a machine without KVM: the devices a small VM has, with stand-in state --- */

/* Stand-in state: whatever the entry holds, read as words then bytes, to its end. */
static int fake_state(struct device *dev, struct state_io *io)
{
	uint64_t q;
	uint8_t b;

	(void)dev;
	while (!io->err && io->len - io->pos >= 8)
		state_u64(io, &q);
	while (!io->err && io->pos < io->len)
		state_u8(io, &b);
	return io->err;
}

static const struct device_ops fake_ops[] = {
    {.name = "vmgenid", .state = fake_state}, {.name = "post"},
    {.name = "acpi_pm", .state = fake_state}, {.name = "rtc", .state = fake_state},
    {.name = "i8042", .state = fake_state},   {.name = "serial", .state = fake_state},
};
static const char *const fake_ids[] = {"vmgenid", "post", "acpi_pm", "rtc", "i8042", "com1"};

/* What arch_vm_init asks KVM once per process: XSAVE of the legacy size, XCRs, no MSR list. */
static struct kvm_msr_list no_msrs;
static const struct x86_state_caps fake_caps = {
    .has_xsave = true, .xsave_len = sizeof(struct kvm_xsave), .has_xcrs = true, .msrs = &no_msrs};

int vm_create(const struct vm_config *cfg, struct vm **out)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct device *devs = calloc(6, sizeof(*devs));

	if (!vm || !devs || cfg->ncpus == 0 || cfg->ncpus > 4) {
		free(vm);
		free(devs);
		return -EINVAL;
	}
	vm->cfg = *cfg;
	vm->vm_fd = vm->kvm_fd = FAKE_FD;
	vm->arch = calloc(1, sizeof(*vm->arch));
	vm->ncpus = cfg->ncpus;
	vm->vcpus = calloc(vm->ncpus, sizeof(*vm->vcpus));
	vm->mem_map_size = cfg->mem_size;
	/* Diff pages land here: untouched pages cost nothing. */
	vm->mem_base = mmap(NULL, cfg->mem_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->mem_base == MAP_FAILED)
		abort();
	for (unsigned int i = 0; i < vm->ncpus; i++)
		vm->vcpus[i] = (struct vcpu){.vm = vm, .index = i, .fd = FAKE_FD};
	vm->arch->state_caps = &fake_caps;
	if (cfg->restoring) /* as arch_vcpu_init: a fresh vCPU's CPUID (the stub's host) */
		x86_restore_baseline(&vm->vcpus[0]);
	for (int i = 5; i >= 0; i--) {
		devs[i] =
		    (struct device){.ops = &fake_ops[i], .id = fake_ids[i], .next = vm->devices};
		vm->devices = &devs[i];
	}
	*out = vm;
	return 0;
}

void vm_destroy(struct vm *vm)
{
	munmap(vm->mem_base, vm->mem_map_size);
	free(vm->devices);
	free(vm->vcpus);
	free(vm->arch->fresh_cpuid);
	free(vm->arch);
	free(vm);
}

/* Never reached by a restore, or no-ops for it. */
void vm_pause(struct vm *vm)
{
	(void)vm;
}

void vm_resume(struct vm *vm)
{
	(void)vm;
}

bool vm_is_paused(struct vm *vm)
{
	(void)vm;
	return true;
}

int vm_dirty_start(struct vm *vm)
{
	(void)vm;
	return -ENOTSUP;
}

bool vm_dirty_logging(const struct vm *vm)
{
	(void)vm;
	return false;
}

int vm_dirty_collect(struct vm *vm, const uint64_t **pending)
{
	(void)vm;
	(void)pending;
	return -ENOTSUP;
}

/* The devices' derived names (virtio/blk.c, net.c): a legacy config lacks them. */
void virtio_blk_default_id(unsigned int index, char *buf, size_t len)
{
	snprintf(buf, len, "banyan-vd%c", 'a' + (int)index);
}

void virtio_net_default_id(unsigned int index, char *buf, size_t len)
{
	snprintf(buf, len, "net%u", index);
}

/* A snapshot never writes outside its directory here (store.c copies overlays). */
int blk_overlay_copy(const char *from, const char *to, char *err, size_t errlen)
{
	(void)from;
	(void)to;
	snprintf(err, errlen, "not in the fuzzer");
	return -EIO;
}

/* --- writing the input as a snapshot directory --- */

static void put_file_in(const char *where, const char *name, const void *buf, size_t len)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", where, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (len && write(fd, buf, len) != (ssize_t)len))
		abort(); /* the fuzzer's own directory */
	close(fd);
}

static void put_file(const char *name, const void *buf, size_t len)
{
	put_file_in(dir, name, buf, len);
}

static size_t section_entry(char *json, size_t cap, bool first, const char *name, const char *file,
			    const void *buf, size_t len, uint32_t flip)
{
	return (size_t)snprintf(
	    json, cap, "%s{\"name\":\"%s\",\"file\":\"%s\",\"size\":%zu,\"crc32\":%u}",
	    first ? "" : ",", name, file, len, (uint32_t)crc32(0, buf, (uInt)len) ^ flip);
}

/* A diff's memory.map: the input's chunk zero-padded to the map's size, or as it is. */
static size_t put_bitmap(const uint8_t *p, size_t n, uint8_t flags, char *json, size_t cap,
			 bool first)
{
	static uint8_t map[MAP_SIZE];
	size_t len = n >= 2 ? (size_t)(p[0] | p[1] << 8) : 0;

	len = n >= 2 && len < n - 2 ? len : (n >= 2 ? n - 2 : 0);
	if (flags & 16) {
		put_file("memory.map.state", p + 2, len);
		return section_entry(json, cap, first, "memory.map", "memory.map.state", p + 2, len,
				     0);
	}
	memset(map, 0, sizeof(map));
	memcpy(map, p + 2, len < sizeof(map) ? len : sizeof(map));
	put_file("memory.map.state", map, sizeof(map));
	return section_entry(json, cap, first, "memory.map", "memory.map.state", map, sizeof(map),
			     0);
}

static const char *const section_names[] = {"config", "devices", "vcpus", "vm"};

/* The sections of the input (and their manifest entries) into @json. */
static size_t put_sections(const uint8_t *p, size_t n, uint8_t flags, char *json, size_t cap)
{
	size_t off = 0, used = 0;

	for (unsigned int i = 0; i < 4 && n - off >= 2; i++) {
		size_t len = (size_t)(p[off] | p[off + 1] << 8);
		char file[32];

		off += 2;
		len = len < n - off ? len : n - off;
		snprintf(file, sizeof(file), "%s.state", section_names[i]);
		put_file(file, p + off, len);
		used += section_entry(json + used, cap - used, i == 0, section_names[i], file,
				      p + off, len, (flags & 2) && i == 1 ? 1 : 0);
		off += len;
	}
	if (flags & 8)
		return used + put_bitmap(p + off, n - off, flags, json + used, cap - used, !used);
	if (flags & 4) {
		static const uint8_t map[MEM_SIZE / 4096 / 8];

		put_file("memory.map.state", map, sizeof(map));
		used += (size_t)snprintf(json + used, cap - used,
					 "%s{\"name\":\"memory.map\",\"file\":\"memory.map.state\","
					 "\"size\":%zu,\"crc32\":%u}",
					 used ? "," : "", sizeof(map),
					 (uint32_t)crc32(0, map, sizeof(map)));
	}
	return used;
}

static void put_manifest(const char *where, const char *id, const char *parent, const char *secs,
			 unsigned int ncpus)
{
	static char json[4096];

	snprintf(json, sizeof(json),
		 "{\"format\":\"banyan-snapshot\",\"version\":1,\"id\":\"%s\",\"type\":\"%s\","
		 "\"parent\":%s,\"created\":1,\"vmm_version\":\"fuzz\",\"vcpus\":%u,"
		 "\"memory\":{\"file\":\"memory\",\"size\":%llu,\"pages_present\":0,"
		 "\"pages_data\":0,\"crc32\":0},\"sections\":[%s]}",
		 id, parent ? "diff" : "full", parent ? parent : "null", ncpus,
		 (unsigned long long)MEM_SIZE, secs);
	put_file_in(where, "manifest.json", json, strlen(json));
}

static void write_snapshot(const uint8_t *p, size_t n, uint8_t flags, unsigned int ncpus)
{
	const char *pdir = flags & 64 ? diff_dir : full_dir;
	char secs[2048], parent[256];

	put_sections(p, n, flags, secs, sizeof(secs));
	/* A moved store: the recorded path is gone, a sibling has the same name. */
	snprintf(parent, sizeof(parent), "{\"id\":\"%s\",\"path\":\"%s%s\"}",
		 flags & 64 ? diff_id : full_id, flags & 32 ? "/nonexistent" : "",
		 flags & 32 ? strrchr(pdir, '/') : pdir);
	put_manifest(dir, "00000000000000000000000000000007", flags & 8 ? parent : NULL, secs,
		     ncpus);
}

static void clear_dir(void)
{
	static const char *const files[] = {
	    "config.state",  "devices.state",	 "vcpus.state",	     "vm.state",
	    "manifest.json", "memory.map.state", "disk-vda.overlay", NULL};
	char path[128];

	for (const char *const *f = files; *f; f++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *f);
		unlink(path);
	}
}

static void remove_files(const char *where)
{
	static const char *const files[] = {"memory", "log", "manifest.json", "memory.map.state"};
	char path[128];

	for (unsigned int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", where, files[i]);
		unlink(path);
	}
	rmdir(where);
}

/* The directories go when the fuzzer exits (libFuzzer ends with exit()). */
static void remove_dir(void)
{
	clear_dir();
	remove_files(dir);
	remove_files(full_dir);
	remove_files(diff_dir);
}

static void put_memory(const char *where)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/memory", where);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)MEM_SIZE) < 0)
		abort();
	close(fd);
}

/* The parents: a full snapshot of one vCPU, and a diff of it (its memory.map all clear). */
static void put_parents(void)
{
	static const uint8_t map[MAP_SIZE];
	char secs[256], parent[256];

	snprintf(full_dir, sizeof(full_dir), "%s-full", dir);
	snprintf(diff_dir, sizeof(diff_dir), "%s-diff", dir);
	if (mkdir(full_dir, 0700) < 0 || mkdir(diff_dir, 0700) < 0)
		abort();
	put_memory(full_dir);
	put_memory(diff_dir);
	put_manifest(full_dir, full_id, NULL, "", 1);
	put_file_in(diff_dir, "memory.map.state", map, sizeof(map));
	section_entry(secs, sizeof(secs), true, "memory.map", "memory.map.state", map, sizeof(map),
		      0);
	snprintf(parent, sizeof(parent), "{\"id\":\"%s\",\"path\":\"%s\"}", full_id, full_dir);
	put_manifest(diff_dir, diff_id, parent, secs, 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[128];

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/dev/shm/fuzz-snapshot-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	put_memory(dir);
	put_parents();
	/* The decoders log every refusal: into a FIFO nobody reads (full, lines are dropped). */
	snprintf(path, sizeof(path), "%s/log", dir);
	if (mkfifo(path, 0600) < 0 || log_open_file(path) < 0)
		abort();
	atexit(remove_dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void restore(void)
{
	struct snapshot_restore_opts o = {.console_out_fd = -1};
	struct snapshot_image *img;
	struct vm *vm;
	char err[SNAP_ERR_LEN];

	if (snapshot_open(dir, true, &img, err) < 0) {
		if (!err[0])
			abort(); /* every failure says why */
		return;
	}
	if (snapshot_restore(img, &o, &vm, err) == 0)
		vm_destroy(vm);
	else if (!err[0])
		abort();
	snapshot_close(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_manifest m;
	char err[SNAP_ERR_LEN];

	if (size < 2)
		return 0;
	clear_dir();
	if (!(data[0] & 1)) {
		put_file("manifest.json", data + 2, size - 2);
		if (snap_read_manifest(dir, &m, err) == 0)
			(void)snap_verify(dir, &m, data[1] & 1, err);
		return 0;
	}
	write_snapshot(data + 2, size - 2, data[0], 1 + data[1] % 4);
	restore();
	return 0;
}
