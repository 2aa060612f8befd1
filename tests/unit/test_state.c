/* The symmetric save/restore encoder. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "vmm/state.h"

struct sample {
	uint8_t a;
	uint16_t b;
	uint32_t c;
	uint64_t d;
	bool e;
	uint8_t blob[300];
};

static void sample_state(struct state_io *io, struct sample *s)
{
	state_u8(io, &s->a);
	state_u16(io, &s->b);
	state_u32(io, &s->c);
	state_u64(io, &s->d);
	state_bool(io, &s->e);
	state_bytes(io, s->blob, sizeof(s->blob));
}

static void test_round_trip(void **state)
{
	struct sample in = {0x12, 0x3456, 0x789abcde, 0x0123456789abcdefULL, true}, out = {0};
	struct state_io io;

	(void)state;
	memset(in.blob, 0xa5, sizeof(in.blob));
	state_io_saver(&io);
	sample_state(&io, &in);
	assert_int_equal(state_io_finish(&io), 0);
	assert_int_equal(io.len, 1 + 2 + 4 + 8 + 1 + 300);
	/* Little-endian on the wire whatever the host. */
	assert_int_equal(io.buf[1], 0x56);
	assert_int_equal(io.buf[2], 0x34);
	{
		struct state_io rd;

		state_io_loader(&rd, io.buf, io.len);
		sample_state(&rd, &out);
		assert_int_equal(state_io_finish(&rd), 0);
	}
	assert_memory_equal(&in, &out, sizeof(in));
	state_io_free(&io);
}

static void test_short_and_long_buffers(void **state)
{
	struct sample in = {0}, out;
	struct state_io io, rd;
	uint8_t longer[1024] = {0};

	(void)state;
	state_io_saver(&io);
	sample_state(&io, &in);
	state_io_loader(&rd, io.buf, io.len - 1);
	sample_state(&rd, &out);
	assert_int_equal(state_io_finish(&rd), -EBADMSG);
	memcpy(longer, io.buf, io.len);
	state_io_loader(&rd, longer, io.len + 1);
	sample_state(&rd, &out);
	assert_int_equal(state_io_finish(&rd), -EBADMSG);
	state_io_free(&io);
}

static void test_bad_bool(void **state)
{
	uint8_t buf[] = {2};
	struct state_io rd;
	bool b;

	(void)state;
	state_io_loader(&rd, buf, sizeof(buf));
	state_bool(&rd, &b);
	assert_int_equal(state_io_finish(&rd), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_short_and_long_buffers),
	    cmocka_unit_test(test_bad_bool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
