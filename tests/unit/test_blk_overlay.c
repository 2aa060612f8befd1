/*
 * The copy-on-write disk overlay on real temporary files: reads fall
 * through to the base until written, partial-cluster writes keep the base's
 * other bytes, the base is never written, a reopened overlay reads as it
 * was left (its map is its allocation), write-zeroes, copies for clones,
 * bad overlays refused, and random I/O checked against a model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virtio/blk_overlay.h"

#define SIZE (1ULL << 20) /* 256 clusters of 4 KiB; not a multiple: see odd_size */

struct fixture {
	char dir[64];
	char base[96], ov[96], copy[96];
	int base_fd;
	uint8_t *model; /* what the disk should read */
	uint8_t *pristine;
	struct blk_overlay *o;
	char err[512];
};

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 9));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/banyan-ovl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->base, sizeof(f->base), "%s/base.img", f->dir);
	snprintf(f->ov, sizeof(f->ov), "%s/disk.overlay", f->dir);
	snprintf(f->copy, sizeof(f->copy), "%s/copy.overlay", f->dir);
	f->model = malloc(SIZE);
	f->pristine = malloc(SIZE);
	for (uint64_t i = 0; i < SIZE; i++)
		f->model[i] = f->pristine[i] = pattern(i);
	f->base_fd = open(f->base, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(f->base_fd >= 0);
	assert_int_equal(pwrite(f->base_fd, f->model, SIZE, 0), SIZE);
	assert_int_equal(blk_overlay_open(&f->o, f->base_fd, SIZE, f->ov, f->err, sizeof(f->err)),
			 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	blk_overlay_close(f->o);
	close(f->base_fd);
	unlink(f->base);
	unlink(f->ov);
	unlink(f->copy);
	rmdir(f->dir);
	free(f->model);
	free(f->pristine);
	free(f);
	return 0;
}

static void do_write(struct fixture *f, uint64_t off, uint64_t len, uint8_t seed)
{
	uint8_t *buf = malloc(len);
	/* Two segments, split unevenly, as a guest's scatter list would be. */
	struct iovec v[2] = {{buf, len / 3}, {buf + len / 3, len - len / 3}};

	for (uint64_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7);
	assert_int_equal(blk_overlay_pwritev(f->o, v, 2, off), (int64_t)len);
	memcpy(f->model + off, buf, len);
	free(buf);
}

/* Read [off, off+len) and compare with the model. */
static void check_read(struct fixture *f, uint64_t off, uint64_t len)
{
	uint8_t *buf = malloc(len);
	struct iovec v[3] = {{buf, len / 2},
			     {buf + len / 2, len / 4},
			     {buf + len / 2 + len / 4, len - len / 2 - len / 4}};

	assert_int_equal(blk_overlay_preadv(f->o, v, 3, off), (int64_t)len);
	assert_memory_equal(buf, f->model + off, len);
	free(buf);
}

static void check_base_untouched(struct fixture *f)
{
	uint8_t *buf = malloc(SIZE);

	assert_int_equal(pread(f->base_fd, buf, SIZE, 0), SIZE);
	assert_memory_equal(buf, f->pristine, SIZE);
	free(buf);
}

static void test_reads_fall_through(void **state)
{
	struct fixture *f = *state;
	uint32_t cluster;

	check_read(f, 0, SIZE);
	check_read(f, 12345, 777);
	assert_int_equal(blk_overlay_clusters(f->o, &cluster), 0);
	assert_int_equal(cluster, 4096);
}

static void test_partial_write_keeps_base_bytes(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	do_write(f, 1000, 512, 1); /* inside cluster 0 */
	check_read(f, 0, 8192);
	assert_int_equal(blk_overlay_clusters(f->o, NULL), 1);
	check_base_untouched(f);
	assert_int_equal(stat(f->ov, &st), 0);
	assert_int_equal((uint64_t)st.st_size, SIZE);
	assert_true((uint64_t)st.st_blocks * 512 <= 16384); /* sparse: one cluster or so */
}

static void test_write_across_clusters(void **state)
{
	struct fixture *f = *state;

	/* Partial head (cluster 2), two whole clusters, partial tail (cluster 5). */
	do_write(f, 2 * 4096 + 100, 3 * 4096 + 200, 2);
	assert_int_equal(blk_overlay_clusters(f->o, NULL), 4);
	check_read(f, 0, 8 * 4096);
	/* A read spanning overlay and base clusters in one request. */
	check_read(f, 4096 + 17, 6 * 4096);
	check_base_untouched(f);
}

static void test_reopen_reads_as_left(void **state)
{
	struct fixture *f = *state;

	do_write(f, 70 * 4096 + 5, 3000, 3);
	do_write(f, 200 * 4096, 8192, 4);
	blk_overlay_close(f->o);
	f->o = NULL;
	assert_int_equal(blk_overlay_open(&f->o, f->base_fd, SIZE, f->ov, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(blk_overlay_clusters(f->o, NULL), 3);
	check_read(f, 0, SIZE);
}

static void test_write_zeroes(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(blk_overlay_write_zeroes(f->o, 3 * 4096 + 10, 5 * 4096), 0);
	memset(f->model + 3 * 4096 + 10, 0, 5 * 4096);
	check_read(f, 0, 16 * 4096);
	check_base_untouched(f);
	assert_int_equal(blk_overlay_sync(f->o), 0);
}

static void test_copy_for_a_clone(void **state)
{
	struct fixture *f = *state;
	struct blk_overlay *c;

	do_write(f, 10 * 4096 + 1, 100, 5);
	do_write(f, 100 * 4096, 4096, 6);
	assert_int_equal(blk_overlay_copy(f->ov, f->copy, f->err, sizeof(f->err)), 0);
	/* The copy holds the same clusters and reads the same. */
	blk_overlay_close(f->o);
	assert_int_equal(blk_overlay_open(&c, f->base_fd, SIZE, f->copy, f->err, sizeof(f->err)),
			 0);
	f->o = c;
	assert_int_equal(blk_overlay_clusters(f->o, NULL), 2);
	check_read(f, 0, SIZE);
	/* Writing the copy leaves the original alone. */
	do_write(f, 0, 4096, 7);
	blk_overlay_close(f->o);
	assert_int_equal(blk_overlay_open(&f->o, f->base_fd, SIZE, f->ov, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(blk_overlay_clusters(f->o, NULL), 2);
	memcpy(f->model, f->pristine, 4096);
	check_read(f, 0, SIZE);
}

static void test_refusals(void **state)
{
	struct fixture *f = *state;
	struct blk_overlay *o2 = NULL;
	struct iovec v = {f->model, 4096};

	/* In use by another VM (flock). */
	assert_int_equal(blk_overlay_open(&o2, f->base_fd, SIZE, f->ov, f->err, sizeof(f->err)),
			 -EBUSY);
	assert_non_null(strstr(f->err, "in use"));
	/* An overlay of another size. */
	blk_overlay_close(f->o);
	f->o = NULL;
	assert_int_equal(blk_overlay_open(&o2, f->base_fd, SIZE / 2, f->ov, f->err, sizeof(f->err)),
			 -EINVAL);
	assert_non_null(strstr(f->err, "bytes"));
	/* A directory that does not exist. */
	assert_true(blk_overlay_open(&o2, f->base_fd, SIZE, "/nonexistent/x.overlay", f->err,
				     sizeof(f->err)) < 0);
	assert_non_null(strstr(f->err, "/nonexistent/x.overlay"));
	/* Out of range I/O. */
	assert_int_equal(blk_overlay_open(&f->o, f->base_fd, SIZE, f->ov, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(blk_overlay_pwritev(f->o, &v, 1, SIZE - 100), -EINVAL);
	assert_int_equal(blk_overlay_preadv(f->o, &v, 1, SIZE + 4096), -EINVAL);
	check_base_untouched(f);
}

/* A disk whose size is not a whole number of clusters: the last one is short. */
static void test_odd_size(void **state)
{
	struct fixture *f = *state;
	uint64_t size = SIZE - 1536;

	blk_overlay_close(f->o);
	unlink(f->ov);
	assert_int_equal(blk_overlay_open(&f->o, f->base_fd, size, f->ov, f->err, sizeof(f->err)),
			 0);
	do_write(f, size - 1024, 512, 8); /* partial, in the short last cluster */
	check_read(f, size - 8192, 8192);
	do_write(f, size - 2560, 2560, 9); /* to the very end */
	check_read(f, size - 8192, 8192);
	check_base_untouched(f);
}

/* Random writes, zeroes and reads, checked against the model after a reopen too. */
static void test_random_against_model(void **state)
{
	struct fixture *f = *state;

	srand(42);
	for (int i = 0; i < 400; i++) {
		uint64_t off = (uint64_t)rand() % SIZE;
		uint64_t len = 1 + (uint64_t)rand() % (3 * 4096);

		if (len > SIZE - off)
			len = SIZE - off;
		switch (rand() % 4) {
		case 0:
			assert_int_equal(blk_overlay_write_zeroes(f->o, off, len), 0);
			memset(f->model + off, 0, len);
			break;
		case 1:
			check_read(f, off, len);
			break;
		default:
			do_write(f, off, len, (uint8_t)i);
		}
	}
	check_read(f, 0, SIZE);
	blk_overlay_close(f->o);
	assert_int_equal(blk_overlay_open(&f->o, f->base_fd, SIZE, f->ov, f->err, sizeof(f->err)),
			 0);
	check_read(f, 0, SIZE);
	check_base_untouched(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_reads_fall_through, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_partial_write_keeps_base_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_across_clusters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_reads_as_left, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_zeroes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_copy_for_a_clone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_odd_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_against_model, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
