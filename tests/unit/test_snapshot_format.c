/*
 * The snapshot format without KVM: manifest round trip, CRC-checked
 * sections, the sparse memory file and diffs, refusal of corrupt,
 * truncated and newer snapshots, and atomic replacement when a write fails
 * (RLIMIT_FSIZE makes the kernel refuse the write half-way, as a full disk
 * would). What a writer may replace (nothing but a snapshot, and only when
 * asked), non-regular files in a snapshot, a diff without its bitmap, and
 * the removal of temporaries whose writer is gone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snapshot/format.h"
#include "snapshot/mem_origin.h"
#include "snapshot/store.h"

#define MEM_SIZE (4ULL << 20) /* 1024 pages */

struct fx {
	char root[64];
	char dir[128];
	uint8_t *mem;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->root, sizeof(f->root), "/tmp/snapfmt-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->dir, sizeof(f->dir), "%s/snap", f->root);
	f->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(f->mem != MAP_FAILED);
	f->mem[0] = 1;			       /* page 0 */
	memset(f->mem + 5 * 4096, 0xab, 4096); /* page 5 */
	f->mem[1023 * 4096 + 17] = 9;	       /* last page */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->root);
	assert_int_equal(system(cmd), 0);
	munmap(f->mem, MEM_SIZE);
	free(f);
	return 0;
}

/* snap_writer_memory of MEM_SIZE at @mem, which is memory of @kind (@fd: its file). */
static int write_memory(struct snap_writer *w, const uint8_t *mem, const uint64_t *bitmap,
			enum mem_origin_kind kind, int fd, char *err)
{
	struct mem_origin g;
	int ret;

	mem_origin_open(&g, kind, fd, mem);
	ret = snap_writer_memory(w, mem, MEM_SIZE, bitmap, &g, err);
	mem_origin_close(&g);
	return ret;
}

/* A snapshot with two sections and memory (a diff when @bitmap). */
static int write_snap(struct fx *f, const char *dir, const uint64_t *bitmap, char *id)
{
	struct snap_writer w;
	char err[SNAP_ERR_LEN];
	int ret = snap_writer_open(&w, dir, true, err);

	if (ret < 0)
		return ret;
	w.m.ncpus = 2;
	w.m.type = bitmap ? SNAP_DIFF : SNAP_FULL;
	if (bitmap) {
		memset(w.m.parent_id, 'a', SNAP_ID_LEN);
		snprintf(w.m.parent_path, sizeof(w.m.parent_path), "/nowhere");
	}
	ret = snap_writer_section(&w, "config", "hello", 5, err);
	if (ret == 0)
		ret = snap_writer_section(&w, "vcpus", "0123456789", 10, err);
	if (ret == 0)
		ret = write_memory(&w, f->mem, bitmap, MEM_ORIGIN_ANON, -1, err);
	if (id)
		memcpy(id, w.m.id, SNAP_ID_LEN + 1);
	if (ret < 0) {
		snap_writer_abort(&w);
		return ret;
	}
	return snap_writer_commit(&w, err);
}

/* Memory @mem, of @kind (@fd: its file), written as a full snapshot in @dir. */
static void write_mem_snap(const char *dir, const uint8_t *mem, enum mem_origin_kind kind, int fd,
			   char *err)
{
	struct snap_writer w;

	assert_int_equal(snap_writer_open(&w, dir, true, err), 0);
	w.m.ncpus = 1;
	w.m.type = SNAP_FULL;
	assert_int_equal(snap_writer_section(&w, "config", "hello", 5, err), 0);
	assert_int_equal(write_memory(&w, mem, NULL, kind, fd, err), 0);
	assert_int_equal(snap_writer_commit(&w, err), 0);
}

/* The memory file of the snapshot in @dir maps back to @mem byte for byte. */
static void assert_memory_file_is(const char *dir, const uint8_t *mem)
{
	char path[400];
	uint8_t *back;
	int fd;

	snprintf(path, sizeof(path), "%s/memory", dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	back = mmap(NULL, MEM_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
	assert_true(back != MAP_FAILED);
	assert_memory_equal(back, mem, MEM_SIZE);
	munmap(back, MEM_SIZE);
	close(fd);
}

/*
 * A restored VM's memory is its snapshot's file mapped privately: the next
 * snapshot holds every page the VM wrote and the file's data, and leaves
 * the file's holes as holes without reading them (on tmpfs, reading one
 * allocated it in the parent's file: it grew to the guest's whole size).
 */
static void test_private_file_holes(void **state)
{
	struct fx *f = *state;
	char err[SNAP_ERR_LEN], a[160], c[160], path[400];
	const char *shm = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : f->root;
	struct snap_manifest m;
	struct stat before, after;
	uint8_t *mem;
	int fd;

	snprintf(a, sizeof(a), "%s/origin-a-%d", shm, getpid());
	snprintf(c, sizeof(c), "%s/origin-c-%d", shm, getpid());
	write_mem_snap(a, f->mem, MEM_ORIGIN_ANON, -1, err);
	snprintf(path, sizeof(path), "%s/memory", a);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	assert_true(mem != MAP_FAILED);
	memset(mem + 700 * 4096, 0x77, 4096); /* written in a hole of the file */
	mem[5 * 4096] = 0x12;		      /* written over the file's data */
	assert_int_equal(mem[300 * 4096], 0); /* read in a hole */
	assert_int_equal(fstat(fd, &before), 0);
	write_mem_snap(c, mem, MEM_ORIGIN_PRIVATE_FILE, fd, err);
	assert_int_equal(fstat(fd, &after), 0);
	assert_int_equal(after.st_blocks, before.st_blocks);
	assert_int_equal(snap_read_manifest(c, &m, err), 0);
	assert_int_equal(m.mem_pages_present, 1024);
	assert_int_equal(m.mem_pages_data, 4);
	assert_int_equal(snap_verify(c, &m, true, err), 0);
	assert_memory_file_is(c, mem);
	munmap(mem, MEM_SIZE);
	close(fd);
	snprintf(path, sizeof(path), "rm -rf %s %s", a, c);
	assert_int_equal(system(path), 0);
}

/* Whether page @i of @mem is present in this process (/proc/self/pagemap; -1: unknown). */
static int page_present(const uint8_t *mem, unsigned int i)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;
	off_t at = (off_t)((uintptr_t)(mem + i * 4096ULL) / 4096 * 8);
	bool ok = fd >= 0 && pread(fd, &e, 8, at) == 8;

	if (fd >= 0)
		close(fd);
	return ok ? (int)(e >> 63) : -1;
}

/*
 * Anonymous memory: the pages the guest wrote are in the snapshot, and the
 * writer does not fault in the pages it never touched (pagemap).
 */
static void test_anon_untouched(void **state)
{
	struct fx *f = *state;
	char err[SNAP_ERR_LEN], dir[160];
	struct snap_manifest m;

	if (page_present(f->mem, 0) < 0) {
		print_message("# no /proc/self/pagemap: nothing to check\n");
		return;
	}
	assert_int_equal(page_present(f->mem, 600), 0);
	snprintf(dir, sizeof(dir), "%s/anon", f->root);
	write_mem_snap(dir, f->mem, MEM_ORIGIN_ANON, -1, err);
	assert_int_equal(snap_read_manifest(dir, &m, err), 0);
	assert_int_equal(m.mem_pages_data, 3);
	assert_int_equal(snap_verify(dir, &m, true, err), 0);
	assert_int_equal(page_present(f->mem, 600), 0);
}

/*
 * Anonymous memory swapped out (MADV_PAGEOUT on a host with swap) is data,
 * not a page never touched: the snapshot holds it. mincore called such a
 * page "not resident" once it left the swap cache, on kernels that answer
 * from it, and the writer took it for zero. Checks nothing where nothing
 * swaps (cmocka's skip reads as a failure in TAP).
 */
static void test_anon_swapped(void **state)
{
	struct fx *f = *state;
	char err[SNAP_ERR_LEN], dir[160];
	uint8_t *mem =
	    mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t e;
	int fd;

	assert_true(mem != MAP_FAILED);
	for (unsigned int i = 0; i < 64; i++)
		memset(mem + i * 4096, 0x40 + (int)i, 4096);
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0 || madvise(mem, 64 * 4096, MADV_PAGEOUT) < 0 ||
	    pread(fd, &e, 8, (off_t)((uintptr_t)mem / 4096 * 8)) != 8 || !(e >> 62 & 1)) {
		if (fd >= 0)
			close(fd);
		munmap(mem, MEM_SIZE);
		print_message("# no swap here (the pages stayed): nothing to check\n");
		return;
	}
	close(fd);
	snprintf(dir, sizeof(dir), "%s/swapped", f->root);
	write_mem_snap(dir, mem, MEM_ORIGIN_ANON, -1, err);
	assert_memory_file_is(dir, mem);
	munmap(mem, MEM_SIZE);
}

/*
 * A memfd mapped shared: a page written through the file, never through
 * this mapping, is in the snapshot; a hole is skipped without being read
 * (a read fault on a shared memfd's hole would allocate it).
 */
static void test_shared_memfd(void **state)
{
	struct fx *f = *state;
	char err[SNAP_ERR_LEN], dir[160];
	uint8_t page[4096];
	struct snap_manifest m;
	struct stat before, after;
	int fd = memfd_create("snapfmt", MFD_CLOEXEC);
	uint8_t *mem;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, MEM_SIZE), 0);
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(mem != MAP_FAILED);
	memset(page, 0x5a, sizeof(page));
	assert_int_equal(pwrite(fd, page, sizeof(page), 3 * 4096), 4096); /* not via @mem */
	mem[9 * 4096] = 7;
	assert_int_equal(fstat(fd, &before), 0);
	snprintf(dir, sizeof(dir), "%s/memfd", f->root);
	write_mem_snap(dir, mem, MEM_ORIGIN_SHARED_FILE, fd, err);
	assert_int_equal(fstat(fd, &after), 0);
	assert_int_equal(after.st_blocks, before.st_blocks);
	assert_int_equal(snap_read_manifest(dir, &m, err), 0);
	assert_int_equal(m.mem_pages_data, 2);
	assert_int_equal(snap_verify(dir, &m, true, err), 0);
	munmap(mem, MEM_SIZE);
	close(fd);
}

static void test_round_trip(void **state)
{
	struct fx *f = *state;
	struct snap_manifest m;
	char err[SNAP_ERR_LEN], id[SNAP_ID_LEN + 1], path[256];
	uint8_t *buf, *back;
	struct stat st;
	size_t len;
	int fd;

	assert_int_equal(write_snap(f, f->dir, NULL, id), 0);
	assert_int_equal(snap_read_manifest(f->dir, &m, err), 0);
	assert_string_equal(m.id, id);
	assert_int_equal(m.type, SNAP_FULL);
	assert_int_equal(m.ncpus, 2);
	assert_int_equal(m.mem_size, MEM_SIZE);
	assert_int_equal(m.mem_pages_present, 1024);
	assert_int_equal(m.mem_pages_data, 3);
	assert_int_equal(snap_verify(f->dir, &m, true, err), 0);
	assert_int_equal(snap_read_section(f->dir, &m, "vcpus", &buf, &len, err), 0);
	assert_int_equal(len, 10);
	assert_memory_equal(buf, "0123456789", 10);
	free(buf);
	/* The memory file maps back to the same bytes, zero pages as holes. */
	snprintf(path, sizeof(path), "%s/memory", f->dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 <= 3 * 4096 + 8192);
	back = mmap(NULL, MEM_SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
	assert_memory_equal(back, f->mem, MEM_SIZE);
	munmap(back, MEM_SIZE);
	close(fd);
}

static void test_diff(void **state)
{
	struct fx *f = *state;
	uint64_t bitmap[1024 / 64] = {0};
	struct snap_manifest m;
	char err[SNAP_ERR_LEN];
	uint64_t *map;
	uint8_t *base = calloc(1, MEM_SIZE);

	bitmap[0] = 1ULL << 5 | 1ULL << 6;   /* page 5 (data), page 6 (now zero) */
	memset(base + 6 * 4096, 0x77, 4096); /* what the parent had there */
	assert_int_equal(write_snap(f, f->dir, bitmap, NULL), 0);
	assert_int_equal(snap_read_manifest(f->dir, &m, err), 0);
	assert_int_equal(m.type, SNAP_DIFF);
	assert_int_equal(m.mem_pages_present, 2);
	assert_int_equal(m.mem_pages_data, 1);
	assert_int_equal(snap_verify(f->dir, &m, true, err), 0);
	assert_int_equal(snap_read_bitmap(f->dir, &m, &map, err), 0);
	assert_int_equal(snap_apply_diff(f->dir, &m, map, base, err), 0);
	assert_memory_equal(base + 5 * 4096, f->mem + 5 * 4096, 4096);
	assert_int_equal(base[6 * 4096], 0); /* the page became zero */
	assert_int_equal(base[0], 0);	     /* not in the diff: untouched */
	free(map);
	free(base);
}

static void corrupt_byte(const char *dir, const char *file, off_t off)
{
	char path[256];
	uint8_t b;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static int load(const char *dir, bool memory, char *err)
{
	struct snap_manifest m;
	int ret = snap_read_manifest(dir, &m, err);

	return ret ? ret : snap_verify(dir, &m, memory, err);
}

static void test_corrupt_section(void **state)
{
	struct fx *f = *state;
	char err[SNAP_ERR_LEN];

	assert_int_equal(write_snap(f, f->dir, NULL, NULL), 0);
	corrupt_byte(f->dir, "vcpus.state", 3);
	assert_int_equal(load(f->dir, false, err), -EBADMSG);
	assert_non_null(strstr(err, "corrupt"));
}

static void test_corrupt_memory(void **state)
{
	struct fx *f = *state;
	char err[SNAP_ERR_LEN];

	assert_int_equal(write_snap(f, f->dir, NULL, NULL), 0);
	assert_int_equal(load(f->dir, true, err), 0);
	corrupt_byte(f->dir, "memory", 5 * 4096 + 100);
	assert_int_equal(load(f->dir, false, err), 0); /* sizes only */
	assert_int_equal(load(f->dir, true, err), -EBADMSG);
	assert_non_null(strstr(err, "corrupt"));
}

static void test_truncated(void **state)
{
	struct fx *f = *state;
	char err[SNAP_ERR_LEN], path[256];

	assert_int_equal(write_snap(f, f->dir, NULL, NULL), 0);
	snprintf(path, sizeof(path), "%s/memory", f->dir);
	assert_int_equal(truncate(path, MEM_SIZE / 2), 0);
	assert_int_equal(load(f->dir, false, err), -EBADMSG);
	assert_non_null(strstr(err, "truncated"));
	snprintf(path, sizeof(path), "%s/vcpus.state", f->dir);
	assert_int_equal(truncate(path, 4), 0);
	assert_int_equal(load(f->dir, false, err), -EBADMSG);
	snprintf(path, sizeof(path), "%s/manifest.json", f->dir);
	assert_int_equal(truncate(path, 40), 0);
	assert_int_equal(load(f->dir, false, err), -EBADMSG);
	assert_non_null(strstr(err, "truncated or not JSON"));
}

static void rewrite_manifest(const char *dir, const char *from, const char *to)
{
	char path[256], buf[8192], *p;
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	fp = fopen(path, "r");
	n = fread(buf, 1, sizeof(buf) - 64, fp);
	fclose(fp);
	buf[n] = '\0';
	p = strstr(buf, from);
	assert_non_null(p);
	memmove(p + strlen(to), p + strlen(from), strlen(p + strlen(from)) + 1);
	memcpy(p, to, strlen(to));
	fp = fopen(path, "w");
	fputs(buf, fp);
	fclose(fp);
}

static void test_versions(void **state)
{
	struct fx *f = *state;
	char err[SNAP_ERR_LEN];

	assert_int_equal(write_snap(f, f->dir, NULL, NULL), 0);
	rewrite_manifest(f->dir, "\"version\":1", "\"version\":2");
	assert_int_equal(load(f->dir, false, err), -EPROTO);
	assert_non_null(strstr(err, "newer"));
	rewrite_manifest(f->dir, "\"version\":2", "\"version\":\"1\"");
	assert_int_equal(load(f->dir, false, err), -EBADMSG);
	rewrite_manifest(f->dir, "\"version\":\"1\"", "\"version\":1");
	rewrite_manifest(f->dir, "\"file\":\"vcpus.state\"", "\"file\":\"../x\"");
	assert_int_equal(load(f->dir, false, err), -EBADMSG); /* no paths outside */
}

static bool has_tmp_dirs(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *e;
	bool found = false;

	while ((e = readdir(d)))
		found |= strstr(e->d_name, ".tmp-") != NULL;
	closedir(d);
	return found;
}

/* A write failing half-way (a full disk) leaves the old snapshot and no half one. */
static void test_atomic_replace(void **state)
{
	struct fx *f = *state;
	struct rlimit old, small = {8192, 8192};
	struct snap_manifest m;
	char err[SNAP_ERR_LEN], id[SNAP_ID_LEN + 1];

	assert_int_equal(write_snap(f, f->dir, NULL, id), 0);
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	small.rlim_max = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	assert_true(write_snap(f, f->dir, NULL, NULL) < 0); /* memory write refused */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(snap_read_manifest(f->dir, &m, err), 0);
	assert_string_equal(m.id, id);
	assert_int_equal(snap_verify(f->dir, &m, true, err), 0);
	assert_false(has_tmp_dirs(f->root));
	/* A successful rewrite replaces it. */
	assert_int_equal(write_snap(f, f->dir, NULL, NULL), 0);
	assert_int_equal(snap_read_manifest(f->dir, &m, err), 0);
	assert_string_not_equal(m.id, id);
	assert_false(has_tmp_dirs(f->root));
}

static bool exists(const char *root, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, name);
	return access(path, F_OK) == 0;
}

static void make_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* Nothing but an absent path, or (asked) a snapshot, is ever replaced; refusals touch nothing. */
static void test_refused_targets(void **state)
{
	struct fx *f = *state;
	char err[SNAP_ERR_LEN], path[256];
	struct snap_writer w;
	struct stat st;

	assert_int_equal(mkdir(f->dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/keep.txt", f->dir);
	make_file(path, "mine");
	snprintf(path, sizeof(path), "%s/sub", f->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	for (int ow = 0; ow < 2; ow++) {
		assert_int_equal(snap_writer_open(&w, f->dir, ow, err), -EEXIST);
		assert_non_null(strstr(err, "is not a snapshot"));
	}
	assert_true(exists(f->dir, "keep.txt") && exists(f->dir, "sub"));
	assert_int_equal(stat(f->dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);
	assert_false(has_tmp_dirs(f->root));
	/* A file, and a symlink, at the path. */
	snprintf(path, sizeof(path), "%s/file", f->root);
	make_file(path, "data");
	assert_int_equal(snap_writer_open(&w, path, true, err), -EEXIST);
	assert_non_null(strstr(err, "not a snapshot directory"));
	assert_true(exists(f->root, "file"));
	snprintf(path, sizeof(path), "%s/link", f->root);
	assert_int_equal(symlink(f->dir, path), 0);
	assert_int_equal(snap_writer_open(&w, path, true, err), -EEXIST);
	assert_false(has_tmp_dirs(f->root));
}

static void test_overwrite_rules(void **state)
{
	struct fx *f = *state;
	char err[SNAP_ERR_LEN], path[512], id[SNAP_ID_LEN + 1];
	struct snap_manifest m;
	struct snap_writer w;

	assert_int_equal(write_snap(f, f->dir, NULL, id), 0);
	assert_int_equal(snap_writer_open(&w, f->dir, false, err), -EEXIST);
	assert_non_null(strstr(err, "already a snapshot"));
	/* A snapshot directory that also holds something else is not replaced either. */
	snprintf(path, sizeof(path), "%s/notes.txt", f->dir);
	make_file(path, "mine");
	assert_int_equal(snap_writer_open(&w, f->dir, true, err), -EEXIST);
	assert_non_null(strstr(err, "notes.txt"));
	unlink(path);
	/* Swapped for a directory that is no snapshot while the writer worked: left alone. */
	assert_int_equal(snap_writer_open(&w, f->dir, true, err), 0);
	snprintf(path, sizeof(path), "rm -rf %s && mkdir %s && echo x >%s/keep", f->dir, f->dir,
		 f->dir);
	assert_int_equal(system(path), 0);
	w.m.ncpus = 1;
	assert_int_equal(write_memory(&w, f->mem, NULL, MEM_ORIGIN_ANON, -1, err), 0);
	assert_int_equal(snap_writer_commit(&w, err), -EEXIST);
	assert_true(exists(f->dir, "keep"));
	assert_int_equal(snap_read_manifest(f->dir, &m, err), -ENOENT);
	assert_false(has_tmp_dirs(f->root));
}

/* A FIFO in a snapshot is refused at once, never opened blocking. */
static void test_fifo(void **state)
{
	struct fx *f = *state;
	static const char *const files[] = {"vcpus.state", "memory", "manifest.json"};
	char err[SNAP_ERR_LEN], path[256];
	struct snap_manifest m;

	assert_int_equal(write_snap(f, f->dir, NULL, NULL), 0);
	alarm(10); /* a hang fails the test instead of the suite's timeout */
	for (unsigned int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
		assert_int_equal(snap_read_manifest(f->dir, &m, err), 0);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(mkfifo(path, 0600), 0);
		assert_int_equal(load(f->dir, false, err), -EBADMSG);
		assert_non_null(strstr(err, "not a regular file"));
		snprintf(path, sizeof(path), "rm -rf %s", f->dir);
		assert_int_equal(system(path), 0);
		assert_int_equal(write_snap(f, f->dir, NULL, NULL), 0);
	}
	alarm(0);
}

/* A diff without its memory.map, or one of the wrong size: an error, and a NULL bitmap. */
static void test_missing_bitmap(void **state)
{
	struct fx *f = *state;
	uint64_t bitmap[1024 / 64] = {1};
	struct snap_manifest m;
	char err[SNAP_ERR_LEN];
	uint64_t *map = (uint64_t *)(uintptr_t)1; /* what an uninitialised pointer holds */

	assert_int_equal(write_snap(f, f->dir, bitmap, NULL), 0);
	assert_int_equal(snap_read_manifest(f->dir, &m, err), 0);
	assert_string_equal(m.sections[m.nsections - 1].name, "memory.map");
	m.nsections--;
	assert_int_equal(snap_read_bitmap(f->dir, &m, &map, err), -EBADMSG);
	assert_null(map);
	assert_int_equal(snap_verify(f->dir, &m, false, err), -EBADMSG);
	assert_non_null(strstr(err, "memory.map"));
	m.nsections++;
	m.mem_size *= 2;
	map = (uint64_t *)(uintptr_t)1;
	assert_int_equal(snap_read_bitmap(f->dir, &m, &map, err), -EBADMSG);
	assert_null(map);
	assert_non_null(strstr(err, "wrong size"));
}

static void make_tmp(const char *root, const char *name, bool subdir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, name);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/%s/%s", root, name, subdir ? "d" : "memory");
	if (subdir)
		assert_int_equal(mkdir(path, 0700), 0);
	else
		make_file(path, "x");
}

/* Temporaries of writers that are gone go; anything that may still be written stays. */
static void test_stale_temporaries(void **state)
{
	struct fx *f = *state;
	char err[SNAP_ERR_LEN], other[256], name[64], locked[64], live[64], done[64];
	struct snap_writer w, mine;
	pid_t pid = fork();
	int st, fd;

	if (pid == 0) { /* a writer killed half-way */
		_exit(snap_writer_open(&w, f->dir, false, err) == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(st, 0);
	assert_true(has_tmp_dirs(f->root));
	snprintf(name, sizeof(name), "old.tmp-%d-abcdef", (int)pid); /* gone, but holds a dir */
	make_tmp(f->root, name, true);
	snprintf(locked, sizeof(locked), "busy.tmp-%d-abcdef", (int)pid); /* gone, lock held */
	make_tmp(f->root, locked, false);
	snprintf(other, sizeof(other), "%s/%s", f->root, locked);
	fd = open(other, O_RDONLY | O_DIRECTORY);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	snprintf(live, sizeof(live), "live.tmp-%d-abcdef", (int)getppid()); /* its writer runs */
	make_tmp(f->root, live, false);
	make_tmp(f->root, "legacy.tmp-abcdef", false); /* an older Banyan's: no pid */
	snprintf(done, sizeof(done), "done.tmp-%d-abcdef", (int)pid); /* gone, has a manifest */
	make_tmp(f->root, done, false);
	snprintf(other, sizeof(other), "%s/%s/manifest.json", f->root, done);
	make_file(other, "{}");
	snprintf(other, sizeof(other), "%s/other", f->root);
	assert_int_equal(snap_writer_open(&mine, other, false, err), 0);
	snap_writer_abort(&mine);
	{
		DIR *d = opendir(f->root);
		struct dirent *e;

		while ((e = readdir(d))) /* the killed writer's is gone */
			assert_int_not_equal(strncmp(e->d_name, "snap.tmp-", 9), 0);
		closedir(d);
	}
	assert_true(exists(f->root, name) && exists(f->root, locked) && exists(f->root, live) &&
		    exists(f->root, "legacy.tmp-abcdef") && exists(f->root, done));
	close(fd);
}

/* A diff of @parent_id at @dir. */
static void write_child(struct fx *f, const char *dir, const char *parent_id)
{
	uint64_t bitmap[1024 / 64] = {1};
	struct snap_writer w;
	char err[SNAP_ERR_LEN];

	assert_int_equal(snap_writer_open(&w, dir, false, err), 0);
	w.m.ncpus = 2;
	w.m.type = SNAP_DIFF;
	memcpy(w.m.parent_id, parent_id, SNAP_ID_LEN + 1);
	snprintf(w.m.parent_path, sizeof(w.m.parent_path), "%s", f->dir);
	assert_int_equal(write_memory(&w, f->mem, bitmap, MEM_ORIGIN_ANON, -1, err), 0);
	assert_int_equal(snap_writer_commit(&w, err), 0);
}

/* Replacing a snapshot diffs depend on is refused by the rule delete uses. */
static void test_dependents(void **state)
{
	struct fx *f = *state;
	char err[SNAP_ERR_LEN], child[256], id[SNAP_ID_LEN + 1];
	struct store_entry *v;
	unsigned int n;
	int i;

	assert_int_equal(write_snap(f, f->dir, NULL, id), 0);
	assert_int_equal(store_check_replace(f->dir, err), 0);
	snprintf(child, sizeof(child), "%s/child", f->root);
	write_child(f, child, id);
	assert_int_equal(store_check_replace(f->dir, err), -EBUSY);
	assert_non_null(strstr(err, "1 diff snapshot depending on it (child)"));
	assert_int_equal(store_check_replace(child, err), 0);
	assert_int_equal(store_scan(f->root, &v, &n, err), 0);
	i = store_find(v, n, "snap");
	assert_true(i >= 0);
	assert_int_equal(store_delete(v, n, (unsigned int)i, false, err), -EBUSY);
	assert_non_null(strstr(err, "1 diff snapshot depending on it (child)"));
	assert_non_null(strstr(err, "--merge"));
	free(v);
}

/* Deleting and folding touch the snapshot's own files only, and never block on a FIFO. */
static void test_store_files(void **state)
{
	struct fx *f = *state;
	char err[SNAP_ERR_LEN], child[256], path[512], id[SNAP_ID_LEN + 1];
	struct store_entry *v;
	struct snap_manifest m;
	unsigned int n;

	assert_int_equal(write_snap(f, f->dir, NULL, id), 0);
	snprintf(child, sizeof(child), "%s/child", f->root);
	write_child(f, child, id);
	/* A symlink planted as the manifest's temporary is replaced, not followed. */
	snprintf(path, sizeof(path), "%s/victim", f->root);
	make_file(path, "precious");
	snprintf(path, sizeof(path), "%s/manifest.json.new", f->dir);
	assert_int_equal(symlink("../victim", path), 0);
	assert_int_equal(snap_read_manifest(f->dir, &m, err), 0);
	assert_int_equal(snap_write_manifest_file(f->dir, &m, err), 0);
	snprintf(path, sizeof(path), "%s/victim", f->root);
	{
		FILE *fp = fopen(path, "r");
		char buf[16] = "";

		assert_non_null(fgets(buf, sizeof(buf), fp));
		fclose(fp);
		assert_string_equal(buf, "precious");
	}
	/* A file of someone else's inside the snapshot: delete refuses. */
	snprintf(path, sizeof(path), "%s/notes.txt", f->dir);
	make_file(path, "mine");
	assert_int_equal(store_scan(f->root, &v, &n, err), 0);
	assert_int_equal(store_delete(v, n, (unsigned int)store_find(v, n, "snap"), true, err),
			 -EEXIST);
	assert_non_null(strstr(err, "notes.txt"));
	free(v);
	assert_true(exists(f->dir, "notes.txt") && exists(f->dir, "memory"));
	unlink(path);
	/* Folding into the child reads the parent's memory: a FIFO there is refused. */
	snprintf(path, sizeof(path), "%s/memory", f->dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(10);
	assert_int_equal(store_scan(f->root, &v, &n, err), 0);
	assert_true(store_delete(v, n, (unsigned int)store_find(v, n, "snap"), true, err) < 0);
	alarm(0);
	assert_non_null(strstr(err, "not a regular file"));
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_private_file_holes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_diff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_section, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_memory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_atomic_replace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_targets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overwrite_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_anon_untouched, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_anon_swapped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shared_memfd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_bitmap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_temporaries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dependents, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_files, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
