/* The live-migration stream: URLs, section framing, memory runs (src/migration/stream.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <zlib.h>

#include "migration/stream.h"
#include "migration/upgrade.h"
#include "vmm/mem_backing.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096

static uint8_t low[16 * PG], high[4 * PG];

static void setup_mem(struct guest_mem *gm)
{
	memset(gm, 0, sizeof(*gm));
	memset(low, 0, sizeof(low));
	memset(high, 0, sizeof(high));
	assert_int_equal(gm_add_region(gm, 0, sizeof(low), low), 0);
	assert_int_equal(gm_add_region(gm, 0x100000, sizeof(high), high), 0);
}

/* Two ends of a stream over a socketpair. */
static void pair(struct mig_conn *a, struct mig_conn *b)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(mig_conn_fd(a, sv[0], 2000), 0);
	assert_int_equal(mig_conn_fd(b, sv[1], 2000), 0);
}

static void test_urls(void **state)
{
	struct mig_url u;
	char err[MIG_ERR_LEN];

	(void)state;
	assert_int_equal(mig_url_parse("tcp:127.0.0.1:4444", &u, err), 0);
	assert_int_equal(u.kind, MIG_URL_TCP);
	assert_string_equal(u.host, "127.0.0.1");
	assert_string_equal(u.port, "4444");
	assert_int_equal(mig_url_parse("tcp:[::1]:80", &u, err), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(mig_url_parse("unix:/run/x.sock", &u, err), 0);
	assert_int_equal(u.kind, MIG_URL_UNIX);
	assert_string_equal(u.path, "/run/x.sock");
	assert_int_equal(mig_url_parse("tcp:host", &u, err), -EINVAL);
	assert_int_equal(mig_url_parse("tcp:host:0", &u, err), -EINVAL);
	assert_int_equal(mig_url_parse("tcp:host:65536", &u, err), -EINVAL);
	assert_int_equal(mig_url_parse("tcp::80", &u, err), -EINVAL);
	assert_int_equal(mig_url_parse("unix:", &u, err), -EINVAL);
	assert_int_equal(mig_url_parse("ftp:x", &u, err), -EINVAL);
	assert_non_null(strstr(err, "tcp:HOST:PORT or unix:PATH"));
}

/* Data runs, zero runs (no data on the wire), across two regions; applied exactly. */
static void test_memory_roundtrip(void **state)
{
	struct mig_conn a, b;
	struct mig_membuf mb;
	struct guest_mem gm;
	uint8_t src[3 * PG], *buf;
	enum mig_tag tag;
	size_t len;
	char err[MIG_ERR_LEN];

	(void)state;
	setup_mem(&gm);
	for (unsigned int i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7 + 1);
	memset(low + 5 * PG, 0xee, PG); /* stale data a zero run clears */
	pair(&a, &b);
	assert_int_equal(mig_membuf_init(&mb), 0);
	assert_int_equal(mig_membuf_add(&mb, &a, 2 * PG, src, 3), 0);
	assert_int_equal(mig_membuf_add(&mb, &a, 5 * PG, NULL, 1), 0);
	assert_int_equal(mig_membuf_add(&mb, &a, 0x101000, src, 1), 0);
	assert_int_equal(mig_membuf_flush(&mb, &a), 0);
	assert_int_equal(mb.data_pages, 4);
	assert_int_equal(mb.zero_pages, 1);
	/* header + 3 runs of 16 bytes + 4 pages: the zero page costs no data */
	assert_int_equal(a.bytes_out, 12 + 3 * 16 + 4 * PG);
	assert_int_equal(mig_recv(&b, &tag, &buf, &len, err), 0);
	assert_int_equal(tag, MIG_TAG_MEMORY);
	assert_int_equal(mig_mem_apply(&gm, buf, len, err), 0);
	free(buf);
	assert_memory_equal(low + 2 * PG, src, 3 * PG);
	assert_true(mig_page_is_zero(low + 5 * PG));
	assert_memory_equal(high + PG, src, PG);
	assert_true(mig_page_is_zero(low + PG));
	mig_membuf_free(&mb);
	mig_conn_close(&a);
	mig_conn_close(&b);
}

static void run_hdr(uint8_t *p, uint64_t gpa, uint32_t pages, uint32_t kind)
{
	memcpy(p, &gpa, 8); /* little-endian host: the stream's order */
	memcpy(p + 8, &pages, 4);
	memcpy(p + 12, &kind, 4);
}

/* Runs that leave memory, straddle the hole, are unaligned or cut short: refused. */
static void test_memory_refused(void **state)
{
	struct guest_mem gm;
	uint8_t b[16 + PG];
	char err[MIG_ERR_LEN];

	(void)state;
	setup_mem(&gm);
	run_hdr(b, 15 * PG, 2, MIG_RUN_ZERO); /* into the hole after the low region */
	assert_int_equal(mig_mem_apply(&gm, b, 16, err), -EBADMSG);
	run_hdr(b, 0x104000, 1, MIG_RUN_ZERO); /* past the high region */
	assert_int_equal(mig_mem_apply(&gm, b, 16, err), -EBADMSG);
	run_hdr(b, 0x800, 1, MIG_RUN_ZERO); /* unaligned */
	assert_int_equal(mig_mem_apply(&gm, b, 16, err), -EBADMSG);
	run_hdr(b, 0, 0, MIG_RUN_ZERO); /* empty */
	assert_int_equal(mig_mem_apply(&gm, b, 16, err), -EBADMSG);
	run_hdr(b, 0, 1, 7); /* unknown kind */
	assert_int_equal(mig_mem_apply(&gm, b, 16, err), -EBADMSG);
	run_hdr(b, 0, 2, MIG_RUN_DATA); /* two pages announced, one there */
	assert_int_equal(mig_mem_apply(&gm, b, sizeof(b), err), -EBADMSG);
	assert_int_equal(mig_mem_apply(&gm, b, 10, err), -EBADMSG);    /* header cut short */
	run_hdr(b, UINT64_MAX & ~(uint64_t)(PG - 1), 1, MIG_RUN_ZERO); /* wraps */
	assert_int_equal(mig_mem_apply(&gm, b, 16, err), -EBADMSG);
}

/* Send raw bytes on @a, expect mig_recv on @b to fail with @want. */
static void recv_fails(const void *raw, size_t n, int want)
{
	struct mig_conn a, b;
	enum mig_tag tag;
	uint8_t *buf = (uint8_t *)1;
	size_t len;
	char err[MIG_ERR_LEN] = "";

	pair(&a, &b);
	assert_int_equal(mig_write_full(&a, raw, n), 0);
	mig_conn_close(&a);
	assert_int_equal(mig_recv(&b, &tag, &buf, &len, err), want);
	assert_null(buf);
	assert_true(err[0] != '\0');
	mig_conn_close(&b);
}

static void test_framing_refused(void **state)
{
	uint32_t unknown[3] = {99, 0, 0};
	uint32_t huge[3] = {MIG_TAG_MEMORY, MIG_MAX_MEMORY + 1, 0};
	uint32_t end_with_data[3] = {MIG_TAG_END, 1, 0};
	uint32_t bad_crc[4] = {MIG_TAG_VERIFY, 4, 0, 0x12345678};
	uint32_t short_body[4] = {MIG_TAG_CONFIG, 1000, 0, 0};

	(void)state;
	recv_fails(unknown, sizeof(unknown), -EBADMSG);
	recv_fails(huge, sizeof(huge), -EBADMSG);
	recv_fails(end_with_data, sizeof(end_with_data), -EBADMSG);
	bad_crc[2] = (uint32_t)crc32(0, (const Bytef *)&bad_crc[3], 4) ^ 1;
	recv_fails(bad_crc, sizeof(bad_crc), -EBADMSG);
	recv_fails(short_body, sizeof(short_body), -EPIPE); /* the peer closed mid-section */
}

/* Replies carry the refusal's reason across. */
static void test_replies(void **state)
{
	struct mig_conn a, b;
	char err[MIG_ERR_LEN];
	uint32_t flags = 0;

	(void)state;
	pair(&a, &b);
	assert_int_equal(mig_send_reply(&a, MIG_TAG_READY, ENOMEM, "too little memory here"), 0);
	assert_int_equal(mig_recv_reply(&b, MIG_TAG_READY, err), -ENOMEM);
	assert_string_equal(err, "too little memory here");
	assert_int_equal(mig_send_reply(&a, MIG_TAG_LOADED, 0, NULL), 0);
	assert_int_equal(mig_recv_reply(&b, MIG_TAG_LOADED, err), 0);
	assert_int_equal(mig_send_header(&a, MIG_FLAG_VERIFY), 0);
	assert_int_equal(mig_recv_header(&b, &flags, err), 0);
	assert_int_equal(flags, MIG_FLAG_VERIFY);
	assert_int_equal(mig_send_header(&a, 0x80), 0); /* a feature this side lacks */
	assert_int_equal(mig_recv_header(&b, &flags, err), -EPROTO);
	mig_conn_close(&a);
	mig_conn_close(&b);
}

/* A memfd of @size with @seals, opened @mode; or a plain file in /tmp when !memfd. */
static int make_file(bool memfd, uint64_t size, int seals, int mode)
{
	char path[] = "/tmp/banyan-test-XXXXXX";
	int fd = memfd ? memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING) : mkstemp(path);

	assert_true(fd >= 0);
	if (!memfd)
		unlink(path);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (seals)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
	if (mode != O_RDWR) { /* reopen read-only through /proc */
		char p[64];
		int ro;

		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		ro = open(p, mode | O_CLOEXEC);
		assert_true(ro >= 0);
		close(fd);
		fd = ro;
	}
	return fd;
}

/* Only a writable memfd of the VM's size, sealed against resizing, may become its RAM. */
static void test_memfd_check(void **state)
{
	const uint64_t sz = 1 << 20;
	static const struct {
		bool memfd;
		uint64_t size;
		int seals, mode;
		int want;
	} cases[] = {
	    {true, 1 << 20, MEM_MEMFD_SEALS, O_RDWR, 0},
	    {false, 1 << 20, 0, O_RDWR, -EINVAL},			      /* not a memfd */
	    {true, 2 << 20, MEM_MEMFD_SEALS, O_RDWR, -EINVAL},		      /* another size */
	    {true, 1 << 20, 0, O_RDWR, -EINVAL},			      /* resizable */
	    {true, 1 << 20, F_SEAL_SHRINK, O_RDWR, -EINVAL},		      /* may grow */
	    {true, 1 << 20, MEM_MEMFD_SEALS | F_SEAL_WRITE, O_RDWR, -EACCES}, /* write-sealed */
	    {true, 1 << 20, MEM_MEMFD_SEALS, O_RDONLY, -EACCES},	      /* read-only */
	};
	char err[MIG_ERR_LEN];

	(void)state;
	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd = make_file(cases[i].memfd, cases[i].size, cases[i].seals, cases[i].mode);

		err[0] = '\0';
		assert_int_equal(mig_memfd_check(fd, sz, err), cases[i].want);
		assert_true(cases[i].want == 0 || err[0]);
		close(fd);
	}
}

/* A unix: connection carries one descriptor with the bytes; further ones are closed. */
static void test_fd_passing(void **state)
{
	struct mig_conn a, b;
	uint8_t buf[8];
	int mfd = make_file(true, 4096, 0, O_RDWR), got;

	(void)state;
	pair(&a, &b);
	assert_int_equal(mig_conn_take_fd(&b), -ENOENT);
	a.tx_fd = mfd;
	assert_int_equal(mig_write_full(&a, "abcd", 4), 0);
	assert_int_equal(a.tx_fd, -1); /* sent once */
	a.tx_fd = mfd;		       /* a second one: the receiver keeps the first only */
	assert_int_equal(mig_write_full(&a, "efgh", 4), 0);
	assert_int_equal(mig_read_full(&b, buf, 8), 0);
	assert_memory_equal(buf, "abcdefgh", 8);
	got = mig_conn_take_fd(&b);
	assert_true(got >= 0 && got != mfd);
	assert_int_equal(mig_memfd_check(got, 4096, (char[MIG_ERR_LEN]){0}),
			 -EINVAL); /* unsealed */
	assert_int_equal(mig_conn_take_fd(&b), -ENOENT);
	close(got);
	close(mfd);
	mig_conn_close(&a);
	mig_conn_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_urls),	   cmocka_unit_test(test_memory_roundtrip),
	    cmocka_unit_test(test_memory_refused), cmocka_unit_test(test_framing_refused),
	    cmocka_unit_test(test_replies),	   cmocka_unit_test(test_memfd_check),
	    cmocka_unit_test(test_fd_passing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
