/*
 * The devices' part in a restore (struct device_ops clone and save_files):
 * a disk's overlay saved into a snapshot directory, restored to the
 * operator's prefix through a staged copy that only the clone operation
 * puts in place (and that a failed restore leaves nowhere), never to the
 * path a snapshot recorded; a network card's clone MAC; the VM generation
 * ID of every restore.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/vmgenid.h"
#include "fake_ring.h"
#include "virtio/mmio.h"
#include "vmm/vm.h"

#define BASE	  0xd0000000ULL
#define GSI	  16
#define DISK_SIZE (1ULL << 20)

static unsigned int irq_edges;

static void fake_set_irq(struct dev_host *host, uint32_t gsi, bool level)
{
	(void)host;
	(void)gsi;
	if (level)
		irq_edges++;
}

static void fake_request(struct dev_host *host, enum vm_request req)
{
	(void)host;
	(void)req;
}

static struct dev_host fake_host = {.set_irq = fake_set_irq, .request = fake_request};

struct fixture {
	struct fake_ring r;
	char dir[64];		  /* scratch directory */
	char base[128];		  /* the disk image */
	char saved[128];	  /* a snapshot directory */
	char recorded[128];	  /* the overlay path a snapshot recorded */
	char prefix[128];	  /* the operator's overlay prefix */
	char target[160];	  /* prefix.vda.overlay */
	struct dev_instance inst; /* a plain restore with a prefix */
	struct disk_config disk;
};

static void write_file(const char *path, const char *text, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, text, strlen(text), 0), (ssize_t)strlen(text));
	if (size)
		assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static void read_head(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	memset(buf, 0, len);
	assert_true(fd >= 0);
	assert_true(pread(fd, buf, len - 1, 0) >= 0);
	close(fd);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(fake_ring_init(&f->r, 16), 0);
	snprintf(f->dir, sizeof(f->dir), "/tmp/banyan-clone-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->base, sizeof(f->base), "%s/base.img", f->dir);
	snprintf(f->saved, sizeof(f->saved), "%s/snap", f->dir);
	snprintf(f->recorded, sizeof(f->recorded), "%s/recorded", f->dir);
	snprintf(f->prefix, sizeof(f->prefix), "%s/mine", f->dir);
	snprintf(f->target, sizeof(f->target), "%s.vda.overlay", f->prefix);
	write_file(f->base, "BASE", DISK_SIZE);
	assert_int_equal(mkdir(f->saved, 0700), 0);
	f->disk = (struct disk_config){.path = f->base, .overlay = f->recorded};
	f->inst = (struct dev_instance){.overlay_prefix = f->prefix, .saved_dir = f->saved};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	fake_ring_free(&f->r);
	free(f);
	return 0;
}

static struct device *blk(struct fixture *f, const struct dev_instance *inst)
{
	struct virtio_dev *vdev = virtio_blk_create(&f->disk, 0, inst);

	return vdev ? virtio_mmio_create(&fake_host, &f->r.gm, vdev, BASE, GSI) : NULL;
}

/* Files in the scratch directory whose name starts with @prefix. */
static unsigned int count_files(struct fixture *f, const char *prefix)
{
	DIR *d = opendir(f->dir);
	struct dirent *e;
	unsigned int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

/* A disk's overlay travels with the snapshot: save_files copies it into the directory. */
static void test_save_files(void **state)
{
	struct fixture *f = *state;
	struct device *dev;
	char path[256], head[16];

	write_file(f->recorded, "WRITTEN", DISK_SIZE);
	dev = blk(f, NULL);
	assert_non_null(dev);
	assert_int_equal(dev->ops->save_files(dev, f->saved, path, sizeof(path)), 0);
	snprintf(path, sizeof(path), "%s/disk-vda.overlay", f->saved);
	read_head(path, head, sizeof(head));
	assert_string_equal(head, "WRITTEN");
	dev->ops->destroy(dev);
}

/* The snapshot's copy is staged beside the target; only the clone operation puts it in place. */
static void test_restore_commits_at_clone(void **state)
{
	struct fixture *f = *state;
	const struct dev_clone plain = {.index = -1};
	struct device *dev;
	char path[256], head[16];

	snprintf(path, sizeof(path), "%s/disk-vda.overlay", f->saved);
	write_file(path, "SAVED", DISK_SIZE);
	write_file(f->target, "OLD", 0);
	dev = blk(f, &f->inst);
	assert_non_null(dev);
	read_head(f->target, head, sizeof(head));
	assert_string_equal(head, "OLD"); /* nothing replaced before the restore succeeded */
	assert_int_equal(count_files(f, "mine.vda.overlay.restoring-"), 1);
	assert_int_equal(dev->ops->clone(dev, &plain), 0);
	read_head(f->target, head, sizeof(head));
	assert_string_equal(head, "SAVED");
	assert_int_equal(count_files(f, "mine.vda.overlay.restoring-"), 0);
	assert_int_equal(access(f->recorded, F_OK), -1); /* the recorded path is never written */
	dev->ops->destroy(dev);
	read_head(f->target, head, sizeof(head));
	assert_string_equal(head, "SAVED");
}

/* A restore that fails after the disk was created replaces nothing and leaves nothing. */
static void test_restore_failure_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct device *dev;
	char path[256], head[16];

	snprintf(path, sizeof(path), "%s/disk-vda.overlay", f->saved);
	write_file(path, "SAVED", DISK_SIZE);
	write_file(f->target, "OLD", 0);
	dev = blk(f, &f->inst);
	assert_non_null(dev);
	dev->ops->destroy(dev);
	read_head(f->target, head, sizeof(head));
	assert_string_equal(head, "OLD");
	assert_int_equal(count_files(f, "mine.vda.overlay.restoring-"), 0);
}

/* Without the operator's prefix a disk with an overlay cannot be restored; nothing is written. */
static void test_restore_needs_prefix(void **state)
{
	struct fixture *f = *state;
	struct dev_instance inst = {.saved_dir = f->saved};
	char path[256];

	snprintf(path, sizeof(path), "%s/disk-vda.overlay", f->saved);
	write_file(path, "SAVED", DISK_SIZE);
	assert_null(blk(f, &inst));
	assert_int_equal(access(f->recorded, F_OK), -1);
}

/* A copy of the wrong size, or an overlay another VM holds, is refused before any write. */
static void test_restore_refusals(void **state)
{
	struct fixture *f = *state;
	char path[256], head[16];
	int fd;

	snprintf(path, sizeof(path), "%s/disk-vda.overlay", f->saved);
	write_file(path, "SAVED", 4096);
	write_file(f->target, "OLD", 0);
	assert_null(blk(f, &f->inst));
	write_file(path, "SAVED", DISK_SIZE);
	fd = open(f->target, O_RDONLY);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	assert_null(blk(f, &f->inst));
	close(fd);
	read_head(f->target, head, sizeof(head));
	assert_string_equal(head, "OLD");
	assert_int_equal(count_files(f, "mine.vda.overlay.restoring-"), 0);
}

/* A clone's writable disk without an overlay gets a new, empty one of its own. */
static void test_clone_gets_empty_overlay(void **state)
{
	struct fixture *f = *state;
	const struct dev_clone c = {.index = 2};
	struct dev_instance inst = f->inst;
	struct device *dev;
	struct stat st;

	f->disk.overlay = NULL;
	inst.clone = true;
	inst.clone_index = 2;
	dev = blk(f, &inst);
	assert_non_null(dev);
	assert_int_equal(dev->ops->clone(dev, &c), 0);
	assert_int_equal(stat(f->target, &st), 0);
	assert_int_equal(st.st_size, DISK_SIZE);
	assert_int_equal(st.st_blocks, 0);
	dev->ops->destroy(dev);
}

static void mac_of(struct device *dev, uint8_t mac[6])
{
	for (unsigned int i = 0; i < 6; i++)
		dev->ops->read(dev, VIRTIO_MMIO_CONFIG + i, &mac[i], 1);
}

/* Clone i of a card takes FNV-1a(MAC, i) in its low bytes; a plain restore keeps the MAC. */
static void test_net_clone(void **state)
{
	struct fixture *f = *state;
	const struct net_config cfg = {
	    .tap = "t0", .mac = {0x52, 0x54, 0, 0xaa, 0, 1}, .has_mac = true};
	const struct dev_clone plain = {.index = -1}, c3 = {.index = 3}, c4 = {.index = 4};
	uint8_t mac[6], mac3[6], mac4[6];
	struct device *dev[2];
	uint32_t gen0, gen1;
	int sv[2];

	for (unsigned int i = 0; i < 2; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
		close(sv[1]);
		dev[i] = virtio_mmio_create(&fake_host, &f->r.gm,
					    virtio_net_create_fd(&cfg, 0, sv[0], false), BASE, GSI);
		assert_non_null(dev[i]);
	}
	assert_int_equal(dev[0]->ops->clone(dev[0], &plain), 0);
	mac_of(dev[0], mac);
	assert_memory_equal(mac, cfg.mac, 6);
	dev[0]->ops->read(dev[0], VIRTIO_MMIO_CONFIG_GENERATION, &gen0, 4);
	assert_int_equal(dev[0]->ops->clone(dev[0], &c3), 0);
	dev[0]->ops->read(dev[0], VIRTIO_MMIO_CONFIG_GENERATION, &gen1, 4);
	assert_int_not_equal(gen0, gen1); /* the driver is told the configuration changed */
	assert_int_equal(dev[1]->ops->clone(dev[1], &c4), 0);
	mac_of(dev[0], mac3);
	mac_of(dev[1], mac4);
	assert_memory_equal(mac3, cfg.mac, 3); /* the vendor part stays */
	assert_memory_not_equal(mac3, cfg.mac, 6);
	assert_memory_not_equal(mac3, mac4, 6);
	assert_int_equal(mac3[0] & 3, 2); /* locally administered, unicast */
	for (unsigned int i = 0; i < 2; i++)
		dev[i]->ops->destroy(dev[i]);
}

/* Every restore is a new generation, clones and plain restores alike. */
static void test_vmgenid_clone(void **state)
{
	struct fixture *f = *state;
	const struct dev_clone plain = {.index = -1}, c = {.index = 0};
	struct device *gen = vmgenid_create(&fake_host, &f->r.gm, FAKE_GPA + 0x1000, 10);
	uint8_t a[VMGENID_SIZE], b[VMGENID_SIZE], d[VMGENID_SIZE];
	unsigned int edges = irq_edges;

	assert_non_null(gen);
	vmgenid_get(gen, a);
	assert_int_equal(gen->ops->clone(gen, &plain), 0);
	vmgenid_get(gen, b);
	assert_int_equal(gen->ops->clone(gen, &c), 0);
	vmgenid_get(gen, d);
	assert_memory_not_equal(a, b, VMGENID_SIZE);
	assert_memory_not_equal(b, d, VMGENID_SIZE);
	assert_int_equal(irq_edges, edges + 2); /* the guest is told each time */
	gen->ops->destroy(gen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_save_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_commits_at_clone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_failure_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_needs_prefix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clone_gets_empty_overlay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_net_clone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vmgenid_clone, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
