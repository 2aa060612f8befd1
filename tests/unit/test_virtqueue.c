/* The split virtqueue against a fake guest memory: good chains, indirect tables, event index,
 * hostile chains. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <unistd.h>

#include "fake_ring.h"

#define QSIZE 16

struct fixture {
	struct fake_ring r;
	struct virtqueue vq;
	struct iovec iov[8];
	struct vq_chain c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(fake_ring_init(&f->r, QSIZE), 0);
	assert_int_equal(fake_vq(&f->r, &f->vq, false, true), 0);
	f->c = (struct vq_chain){.iov = f->iov, .cap = 8};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fake_ring_free(&f->r);
	free(f);
	return 0;
}

static int pop(struct fixture *f, enum vq_error *err)
{
	return vq_pop(&f->vq, &f->c, err);
}

/* A chain that must be refused with @want, leaving the ring untouched. */
static void expect_refused(struct fixture *f, enum vq_error want)
{
	enum vq_error err;

	assert_int_equal(pop(f, &err), -EINVAL);
	assert_int_equal(err, want);
	assert_int_equal(fake_used_idx(&f->r), 0);
}

static void test_activate_checks(void **state)
{
	struct fixture *f = *state;
	struct virtqueue vq;

	assert_int_equal(fake_vq(&f->r, &vq, false, false), 0);
	vq.size = 12; /* not a power of two */
	assert_int_equal(vq_activate(&vq, &f->r.gm), -EINVAL);
	vq.size = 0;
	assert_int_equal(vq_activate(&vq, &f->r.gm), -EINVAL);
	vq.size = QSIZE;
	vq.desc_gpa = FAKE_DESC + 8; /* descriptor table must be 16-byte aligned */
	assert_int_equal(vq_activate(&vq, &f->r.gm), -EINVAL);
	vq.desc_gpa = FAKE_GPA + FAKE_MEM_SIZE - 16; /* runs off the end of memory */
	assert_int_equal(vq_activate(&vq, &f->r.gm), -EFAULT);
	vq.desc_gpa = 0x1000; /* not guest memory at all */
	assert_int_equal(vq_activate(&vq, &f->r.gm), -EFAULT);
	assert_false(vq.active);
}

static void test_empty(void **state)
{
	struct fixture *f = *state;
	enum vq_error err;

	assert_int_equal(pop(f, &err), 0);
	assert_int_equal(err, VQ_OK);
}

static void test_well_formed_chain(void **state)
{
	struct fixture *f = *state;
	enum vq_error err;
	uint32_t id, len;

	fake_desc(&f->r, FAKE_DESC, 3, FAKE_DATA, 16, VRING_DESC_F_NEXT, 7);
	fake_desc(&f->r, FAKE_DESC, 7, FAKE_DATA + 0x1000, 512, VRING_DESC_F_NEXT, 1);
	fake_desc(&f->r, FAKE_DESC, 1, FAKE_DATA + 0x2000, 1, VRING_DESC_F_WRITE, 0);
	fake_make_avail(&f->r, 3);
	assert_int_equal(pop(f, &err), 1);
	assert_int_equal(f->c.head, 3);
	assert_int_equal(f->c.nout, 2);
	assert_int_equal(f->c.nin, 1);
	assert_int_equal(f->c.out_len, 528);
	assert_int_equal(f->c.in_len, 1);
	assert_ptr_equal(f->c.iov[0].iov_base, fake_ptr(&f->r, FAKE_DATA));
	assert_ptr_equal(f->c.iov[1].iov_base, fake_ptr(&f->r, FAKE_DATA + 0x1000));
	assert_ptr_equal(f->c.iov[2].iov_base, fake_ptr(&f->r, FAKE_DATA + 0x2000));
	assert_int_equal(f->c.iov[1].iov_len, 512);
	assert_int_equal(pop(f, &err), 0);

	vq_push(&f->vq, f->c.head, 1);
	assert_int_equal(fake_used_idx(&f->r), 1);
	fake_used_elem(&f->r, 0, &id, &len);
	assert_int_equal(id, 3);
	assert_int_equal(len, 1);
	assert_true(vq_should_notify(&f->vq)); /* no NO_INTERRUPT flag */
	fake_avail(&f->r)[0] = VRING_AVAIL_F_NO_INTERRUPT;
	vq_push(&f->vq, 3, 0);
	assert_false(vq_should_notify(&f->vq));
}

static void test_ring_wraps(void **state)
{
	struct fixture *f = *state;
	enum vq_error err;

	fake_desc(&f->r, FAKE_DESC, 0, FAKE_DATA, 64, VRING_DESC_F_WRITE, 0);
	for (int i = 0; i < 3 * QSIZE + 5; i++) {
		fake_make_avail(&f->r, 0);
		assert_int_equal(pop(f, &err), 1);
		vq_push(&f->vq, f->c.head, 64);
	}
	assert_int_equal(fake_used_idx(&f->r), 3 * QSIZE + 5);
}

static void test_indirect_table(void **state)
{
	struct fixture *f = *state;
	uint64_t table = FAKE_DATA + 0x8000 + 4; /* indirect tables need no alignment */
	enum vq_error err;

	fake_desc(&f->r, table, 0, FAKE_DATA, 16, VRING_DESC_F_NEXT, 2);
	fake_desc(&f->r, table, 2, FAKE_DATA + 0x100, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
		  1);
	fake_desc(&f->r, table, 1, FAKE_DATA + 0x2000, 1, VRING_DESC_F_WRITE, 0);
	fake_desc(&f->r, FAKE_DESC, 5, table, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	fake_make_avail(&f->r, 5);
	assert_int_equal(pop(f, &err), 1);
	assert_int_equal(f->c.head, 5);
	assert_int_equal(f->c.nout, 1);
	assert_int_equal(f->c.nin, 2);
	assert_int_equal(f->c.in_len, 4097);
	assert_ptr_equal(f->c.iov[1].iov_base, fake_ptr(&f->r, FAKE_DATA + 0x100));
}

static void test_indirect_after_direct(void **state)
{
	struct fixture *f = *state;
	uint64_t table = FAKE_DATA + 0x8000;
	enum vq_error err;

	fake_desc(&f->r, table, 0, FAKE_DATA + 0x100, 8, VRING_DESC_F_WRITE, 0);
	fake_desc(&f->r, FAKE_DESC, 0, FAKE_DATA, 16, VRING_DESC_F_NEXT, 1);
	fake_desc(&f->r, FAKE_DESC, 1, table, 16, VRING_DESC_F_INDIRECT, 0);
	fake_make_avail(&f->r, 0);
	assert_int_equal(pop(f, &err), 1);
	assert_int_equal(f->c.nout, 1);
	assert_int_equal(f->c.nin, 1);
}

static void test_indirect_refused(void **state)
{
	struct fixture *f = *state;
	uint64_t table = FAKE_DATA + 0x8000, inner = FAKE_DATA + 0x9000;

	/* Nested: an indirect descriptor inside an indirect table. */
	fake_desc(&f->r, inner, 0, FAKE_DATA, 8, 0, 0);
	fake_desc(&f->r, table, 0, inner, 16, VRING_DESC_F_INDIRECT, 0);
	fake_desc(&f->r, FAKE_DESC, 0, table, 16, VRING_DESC_F_INDIRECT, 0);
	fake_make_avail(&f->r, 0);
	expect_refused(f, VQ_ERR_INDIRECT);
}

/*
 * An indirect descriptor whose table is the descriptor table itself: the
 * walk must refuse it as nested rather than switch to the same table again
 * forever (found by fuzz_virtio_blk; the device thread spun holding the
 * transport lock). The alarm turns a hang into a failure.
 */
static void test_indirect_table_is_the_ring(void **state)
{
	struct fixture *f = *state;

	fake_desc(&f->r, FAKE_DESC, 0, FAKE_DESC, 16, VRING_DESC_F_INDIRECT, 0);
	fake_make_avail(&f->r, 0);
	alarm(10);
	expect_refused(f, VQ_ERR_INDIRECT);
	alarm(0);
}

static void test_indirect_with_next(void **state)
{
	struct fixture *f = *state;

	fake_desc(&f->r, FAKE_DATA + 0x8000, 0, FAKE_DATA, 8, 0, 0);
	fake_desc(&f->r, FAKE_DESC, 0, FAKE_DATA + 0x8000, 16,
		  VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	fake_make_avail(&f->r, 0);
	expect_refused(f, VQ_ERR_INDIRECT);
}

static void test_indirect_bad_size(void **state)
{
	struct fixture *f = *state;

	fake_desc(&f->r, FAKE_DESC, 0, FAKE_DATA + 0x8000, 20, VRING_DESC_F_INDIRECT, 0);
	fake_make_avail(&f->r, 0);
	expect_refused(f, VQ_ERR_INDIRECT);
}

static void test_indirect_without_feature(void **state)
{
	struct fixture *f = *state;

	f->vq.indirect = false;
	fake_desc(&f->r, FAKE_DATA + 0x8000, 0, FAKE_DATA, 8, 0, 0);
	fake_desc(&f->r, FAKE_DESC, 0, FAKE_DATA + 0x8000, 16, VRING_DESC_F_INDIRECT, 0);
	fake_make_avail(&f->r, 0);
	expect_refused(f, VQ_ERR_INDIRECT);
}

static void test_indirect_table_outside_memory(void **state)
{
	struct fixture *f = *state;

	fake_desc(&f->r, FAKE_DESC, 0, FAKE_GPA + FAKE_MEM_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
	fake_make_avail(&f->r, 0);
	expect_refused(f, VQ_ERR_ADDR);
}

static void test_indirect_loop(void **state)
{
	struct fixture *f = *state;
	uint64_t table = FAKE_DATA + 0x8000;

	fake_desc(&f->r, table, 0, FAKE_DATA, 8, VRING_DESC_F_NEXT, 1);
	fake_desc(&f->r, table, 1, FAKE_DATA, 8, VRING_DESC_F_NEXT, 0);
	fake_desc(&f->r, FAKE_DESC, 0, table, 32, VRING_DESC_F_INDIRECT, 0);
	fake_make_avail(&f->r, 0);
	f->c.cap = 64; /* only the loop bound can stop it */
	struct iovec big[64];
	f->c.iov = big;
	expect_refused(f, VQ_ERR_TOO_LONG);
}

static void test_address_out_of_range(void **state)
{
	struct fixture *f = *state;

	fake_desc(&f->r, FAKE_DESC, 0, FAKE_GPA + FAKE_MEM_SIZE - 8, 16, 0, 0);
	fake_make_avail(&f->r, 0);
	expect_refused(f, VQ_ERR_ADDR);
}

static void test_address_wraps(void **state)
{
	struct fixture *f = *state;

	fake_desc(&f->r, FAKE_DESC, 0, 0xfffffffffffff000ULL, 0x2000, 0, 0);
	fake_make_avail(&f->r, 0);
	expect_refused(f, VQ_ERR_ADDR);
}

static void test_zero_length(void **state)
{
	struct fixture *f = *state;

	fake_desc(&f->r, FAKE_DESC, 0, FAKE_DATA, 0, 0, 0);
	fake_make_avail(&f->r, 0);
	expect_refused(f, VQ_ERR_ZERO_LEN);
}

static void test_wrong_direction(void **state)
{
	struct fixture *f = *state;

	fake_desc(&f->r, FAKE_DESC, 0, FAKE_DATA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	fake_desc(&f->r, FAKE_DESC, 1, FAKE_DATA + 8, 8, 0, 0);
	fake_make_avail(&f->r, 0);
	expect_refused(f, VQ_ERR_DIRECTION);
}

static void test_loop(void **state)
{
	struct fixture *f = *state;
	struct iovec big[64];

	f->c.iov = big;
	f->c.cap = 64;
	fake_desc(&f->r, FAKE_DESC, 0, FAKE_DATA, 8, VRING_DESC_F_NEXT, 1);
	fake_desc(&f->r, FAKE_DESC, 1, FAKE_DATA, 8, VRING_DESC_F_NEXT, 2);
	fake_desc(&f->r, FAKE_DESC, 2, FAKE_DATA, 8, VRING_DESC_F_NEXT, 0);
	fake_make_avail(&f->r, 0);
	expect_refused(f, VQ_ERR_TOO_LONG);
}

static void test_self_loop(void **state)
{
	struct fixture *f = *state;
	struct iovec big[64];

	f->c.iov = big;
	f->c.cap = 64;
	fake_desc(&f->r, FAKE_DESC, 4, FAKE_DATA, 8, VRING_DESC_F_NEXT, 4);
	fake_make_avail(&f->r, 4);
	expect_refused(f, VQ_ERR_TOO_LONG);
}

static void test_overlong_chain(void **state)
{
	struct fixture *f = *state;

	/* Nine descriptors, no loop, but the device takes at most 8 (cap). */
	for (uint16_t i = 0; i < 9; i++)
		fake_desc(&f->r, FAKE_DESC, i, FAKE_DATA + 64ULL * i, 64,
			  i < 8 ? VRING_DESC_F_NEXT : 0, i + 1);
	fake_make_avail(&f->r, 0);
	expect_refused(f, VQ_ERR_TOO_LONG);
}

static void test_next_out_of_range(void **state)
{
	struct fixture *f = *state;

	fake_desc(&f->r, FAKE_DESC, 0, FAKE_DATA, 8, VRING_DESC_F_NEXT, QSIZE);
	fake_make_avail(&f->r, 0);
	expect_refused(f, VQ_ERR_NEXT);
}

static void test_head_out_of_range(void **state)
{
	struct fixture *f = *state;

	fake_make_avail(&f->r, QSIZE + 3);
	expect_refused(f, VQ_ERR_HEAD);
}

static void test_avail_idx_runs_ahead(void **state)
{
	struct fixture *f = *state;

	fake_avail(&f->r)[1] = QSIZE + 1;
	expect_refused(f, VQ_ERR_AVAIL_IDX);
}

static void test_event_idx(void **state)
{
	struct fixture *f = *state;
	enum vq_error err;

	assert_int_equal(fake_vq(&f->r, &f->vq, true, true), 0);
	fake_desc(&f->r, FAKE_DESC, 0, FAKE_DATA, 64, VRING_DESC_F_WRITE, 0);

	/* Before sleeping, the device asks to be kicked at the next buffer. */
	assert_false(vq_enable_notify(&f->vq));
	assert_int_equal(fake_avail_event(&f->r), 0);
	fake_make_avail(&f->r, 0);
	assert_true(vq_enable_notify(&f->vq)); /* raced with a new buffer: pop again */
	assert_int_equal(pop(f, &err), 1);
	assert_false(vq_enable_notify(&f->vq));
	assert_int_equal(fake_avail_event(&f->r), 1);

	/* The first notification always goes out. */
	vq_push(&f->vq, 0, 64);
	assert_true(vq_should_notify(&f->vq));

	/* The driver wants an interrupt only once used_idx passes 4. */
	fake_set_used_event(&f->r, 4);
	for (int i = 2; i <= 4; i++) {
		vq_push(&f->vq, 0, 64);
		assert_false(vq_should_notify(&f->vq));
	}
	vq_push(&f->vq, 0, 64); /* used_idx 5: crosses used_event 4 */
	assert_true(vq_should_notify(&f->vq));
	vq_push(&f->vq, 0, 64);
	assert_false(vq_should_notify(&f->vq)); /* used_event stayed behind */

	/* Several buffers at once: one interrupt when the event lies among them. */
	fake_set_used_event(&f->r, 7);
	vq_push(&f->vq, 0, 64);
	vq_push(&f->vq, 0, 64);
	vq_push(&f->vq, 0, 64);
	assert_true(vq_should_notify(&f->vq));
	assert_false(vq_should_notify(&f->vq)); /* nothing new since */
}

/*
 * The driver's interrupt handler (Linux virtblk_done): callbacks off while it
 * drains the used ring, then used_event = the next entry it has not seen.
 * A completion after that re-enable must interrupt.
 */
static void test_event_idx_after_reenable(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(fake_vq(&f->r, &f->vq, true, true), 0);
	vq_push(&f->vq, 0, 64);
	assert_true(vq_should_notify(&f->vq)); /* used 1 */

	fake_set_used_event(&f->r, 0); /* callbacks off (Linux writes 0) */
	vq_push(&f->vq, 0, 64);
	vq_push(&f->vq, 0, 64);
	assert_false(vq_should_notify(&f->vq)); /* used 3: the handler polls them */

	fake_set_used_event(&f->r, 3); /* re-enabled, everything seen */
	vq_push(&f->vq, 0, 64);
	assert_true(vq_should_notify(&f->vq)); /* used 4: entry 3 is new */
}

/* Around the 16-bit wrap of the used index, used_event is crossed exactly once. */
static void test_event_idx_wraps(void **state)
{
	struct fixture *f = *state;
	unsigned int irqs = 0;

	assert_int_equal(fake_vq(&f->r, &f->vq, true, true), 0);
	f->vq.used_idx = f->vq.signalled_used = 65530;
	f->vq.signalled_valid = true;
	fake_set_used_event(&f->r, 65535);
	for (int i = 0; i < 10; i++) { /* used 65531 ... 4 */
		vq_push(&f->vq, 0, 64);
		irqs += vq_should_notify(&f->vq);
	}
	assert_int_equal(irqs, 1);
	assert_int_equal(f->vq.used_idx, 4);

	fake_set_used_event(&f->r, 4); /* the next entry, past the wrap */
	vq_push(&f->vq, 0, 64);
	assert_true(vq_should_notify(&f->vq));
}

/* A batch of completions interrupts iff used_event lies inside it. */
static void test_event_idx_batches(void **state)
{
	struct fixture *f = *state;

	for (uint16_t ev = 0; ev < 12; ev++) {
		assert_int_equal(fake_vq(&f->r, &f->vq, true, true), 0);
		f->vq.used_idx = f->vq.signalled_used = 4;
		f->vq.signalled_valid = true;
		fake_set_used_event(&f->r, ev);
		for (int i = 0; i < 4; i++) /* entries 4..7 */
			vq_push(&f->vq, 0, 64);
		assert_int_equal(vq_should_notify(&f->vq), ev >= 4 && ev <= 7);
	}
}

/*
 * A driver modelled on Linux's split ring (disable, drain, re-enable with
 * used_event = last seen, re-check used->idx) against a device pushing at
 * every possible point: once both stop, the driver has seen every entry.
 */
static void test_event_idx_never_loses(void **state)
{
	struct fixture *f = *state;
	uint32_t seed = 12345;

	for (int round = 0; round < 2000; round++) {
		uint16_t seen = 0, pushed = 0;
		bool irq = false, in_handler = false;

		assert_int_equal(fake_vq(&f->r, &f->vq, true, true), 0);
		fake_set_used_event(&f->r, 0);
		for (int step = 0; step < 64 || irq || in_handler; step++) {
			seed = seed * 1103515245 + 12345;
			if (step < 64 && (seed >> 16) % 3 == 0 && pushed < QSIZE) {
				unsigned int n = 1 + (seed >> 20) % 3;

				for (unsigned int i = 0; i < n; i++, pushed++)
					vq_push(&f->vq, 0, 64);
				irq |= vq_should_notify(&f->vq);
				continue;
			}
			if (!in_handler && irq) { /* handler entry: callbacks off */
				irq = false;
				in_handler = true;
				fake_set_used_event(&f->r, (uint16_t)(seen - 1));
			} else if (in_handler && (seed >> 18) % 2) {
				seen = fake_used_idx(&f->r); /* drain */
			} else if (in_handler) {	     /* re-enable, then re-check */
				fake_set_used_event(&f->r, seen);
				__atomic_thread_fence(__ATOMIC_SEQ_CST);
				in_handler = fake_used_idx(&f->r) != seen;
			}
		}
		assert_int_equal(seen, pushed);
	}
}

static void test_reset(void **state)
{
	struct fixture *f = *state;

	vq_reset(&f->vq);
	assert_false(f->vq.active);
	assert_int_equal(f->vq.size, 0);
	vq_push(&f->vq, 0, 1); /* inactive: ignored, no crash */
	assert_int_equal(fake_used_idx(&f->r), 0);
}

static void test_iov_helpers(void **state)
{
	uint8_t a[4] = {1, 2, 3, 4}, b[3] = {5, 6, 7}, out[7];
	struct iovec iov[2] = {{a, 4}, {b, 3}}, s[2];

	(void)state;
	assert_int_equal(iov_to_buf(iov, 2, 2, out, 7), 5);
	assert_memory_equal(out, ((uint8_t[]){3, 4, 5, 6, 7}), 5);
	assert_int_equal(iov_slice(iov, 2, 3, 3, s, 2), 2);
	assert_ptr_equal(s[0].iov_base, a + 3);
	assert_int_equal(s[0].iov_len, 1);
	assert_int_equal(s[1].iov_len, 2);
	assert_int_equal(iov_slice(iov, 2, 3, 3, s, 1), -ENOSPC);
	assert_int_equal(iov_slice(iov, 2, 5, 3, s, 2), -ERANGE);
	assert_int_equal(iov_from_buf(iov, 2, 6, "x", 1), 1);
	assert_int_equal(b[2], 'x');
}

/* Whether page @gpa is marked dirty now; takes (clears) every mark, as a migration round does. */
static bool take_dirty(struct fixture *f, uint64_t gpa)
{
	uint64_t bits[FAKE_MEM_SIZE / 4096 / 64] = {0};
	uint64_t p = (gpa - FAKE_GPA) / 4096;

	assert_true(gm_dirty_take(&f->r.gm, 0, bits));
	return bits[p / 64] >> (p % 64) & 1;
}

/*
 * A device writes a buffer after vq_pop (a virtio-blk read completes from
 * io_uring): when a migration round took the marks in between, the push
 * must mark the buffer (and the used ring) again, after the write.
 */
static void test_dirty_after_write(void **state)
{
	struct fixture *f = *state;
	const uint64_t buf = FAKE_DATA + 0x3000, ind = FAKE_DATA + 0x8000,
		       buf2 = FAKE_DATA + 0x20000;
	enum vq_error err;

	assert_int_equal(gm_dirty_enable(&f->r.gm), 0);
	fake_desc(&f->r, FAKE_DESC, 0, FAKE_DATA, 16, VRING_DESC_F_NEXT, 1);
	fake_desc(&f->r, FAKE_DESC, 1, buf, 4096, VRING_DESC_F_WRITE, 0);
	fake_make_avail(&f->r, 0);
	assert_int_equal(pop(f, &err), 1);
	assert_true(take_dirty(f, buf)); /* vq_pop's mark, taken by a round */
	memset(f->iov[1].iov_base, 0xab, 4096);
	vq_push(&f->vq, f->c.head, 4096);
	assert_true(take_dirty(f, buf));
	vq_push(&f->vq, f->c.head, 0); /* the used ring, written by every push */
	assert_true(take_dirty(f, FAKE_USED));
	/* An indirect chain, through vq_push_many. */
	fake_desc(&f->r, ind, 0, buf2, 512, VRING_DESC_F_WRITE, 0);
	fake_desc(&f->r, FAKE_DESC, 2, ind, 16, VRING_DESC_F_INDIRECT, 0);
	fake_make_avail(&f->r, 2);
	assert_int_equal(pop(f, &err), 1);
	(void)take_dirty(f, buf2);
	vq_push_many(&f->vq, &(struct vring_used_elem){.id = 2, .len = 512}, 1);
	assert_true(take_dirty(f, buf2));
	assert_false(take_dirty(f, buf)); /* nothing else */
	gm_dirty_free(&f->r.gm);
}

/*
 * Re-enabling notifications writes the used ring (its flags, or
 * avail_event with VIRTIO_F_EVENT_IDX): the page must be marked, or a
 * migration leaves the destination's driver with the old value (a
 * suppressed kick: a stalled queue).
 */
static void test_enable_notify_marks_used(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(gm_dirty_enable(&f->r.gm), 0);
	(void)take_dirty(f, FAKE_USED);
	assert_false(vq_enable_notify(&f->vq)); /* flags */
	assert_true(take_dirty(f, FAKE_USED));
	assert_int_equal(fake_vq(&f->r, &f->vq, true, true), 0);
	assert_false(vq_enable_notify(&f->vq)); /* avail_event */
	assert_true(take_dirty(f, FAKE_USED));
	assert_false(take_dirty(f, FAKE_USED)); /* taken */
	gm_dirty_free(&f->r.gm);
}

/*
 * A chain given back after the device wrote into it (virtio-net spreading
 * a frame over too few buffers): its buffer is marked again, since a
 * migration round may have taken vq_pop's mark before the write.
 */
static void test_unpop_written_marks(void **state)
{
	struct fixture *f = *state;
	const uint64_t buf = FAKE_DATA + 0x5000;
	enum vq_error err;

	assert_int_equal(gm_dirty_enable(&f->r.gm), 0);
	fake_desc(&f->r, FAKE_DESC, 0, buf, 4096, VRING_DESC_F_WRITE, 0);
	fake_make_avail(&f->r, 0);
	assert_int_equal(pop(f, &err), 1);
	assert_true(take_dirty(f, buf)); /* vq_pop's mark, taken by a round */
	memset(f->iov[0].iov_base, 0xcd, 4096);
	vq_unpop_written(&f->vq, f->c.head);
	assert_true(take_dirty(f, buf));
	assert_int_equal(pop(f, &err), 1); /* the same chain again */
	assert_int_equal(f->c.head, 0);
	gm_dirty_free(&f->r.gm);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_activate_checks),
	    T(test_dirty_after_write),
	    T(test_enable_notify_marks_used),
	    T(test_unpop_written_marks),
	    T(test_empty),
	    T(test_well_formed_chain),
	    T(test_ring_wraps),
	    T(test_indirect_table),
	    T(test_indirect_after_direct),
	    T(test_indirect_refused),
	    T(test_indirect_table_is_the_ring),
	    T(test_indirect_with_next),
	    T(test_indirect_bad_size),
	    T(test_indirect_without_feature),
	    T(test_indirect_table_outside_memory),
	    T(test_indirect_loop),
	    T(test_address_out_of_range),
	    T(test_address_wraps),
	    T(test_zero_length),
	    T(test_wrong_direction),
	    T(test_loop),
	    T(test_self_loop),
	    T(test_overlong_chain),
	    T(test_next_out_of_range),
	    T(test_head_out_of_range),
	    T(test_avail_idx_runs_ahead),
	    T(test_event_idx),
	    T(test_event_idx_after_reenable),
	    T(test_event_idx_wraps),
	    T(test_event_idx_batches),
	    T(test_event_idx_never_loses),
	    T(test_reset),
	    cmocka_unit_test(test_iov_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
