/* The 16550A UART: transmit, interrupts as the chip raises them, loopback, state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/legacy.h"
#include "fake_host.h"
#include "vmm/console.h"
#include "vmm/state.h"

#define GSI 4

#define RBR 0
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

struct fixture {
	struct fake_host fake;
	struct device *dev;
	int pipe_rd;
	int pipe_wr;
};

static int setup(void **st)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	int p[2];

	/* Only the test's end is non-blocking: the UART writes as to a console. */
	if (!fx || pipe(p) || fcntl(p[0], F_SETFL, O_NONBLOCK))
		return -1;
	fake_host_init(&fx->fake, GSI);
	fx->pipe_rd = p[0];
	fx->pipe_wr = p[1];
	fx->dev = serial_create(&fx->fake.host, "com1", GSI, p[1]);
	if (!fx->dev)
		return -1;
	*st = fx;
	return 0;
}

static int teardown(void **st)
{
	struct fixture *fx = *st;

	assert_false(fx->fake.repeated_level);
	assert_false(fx->fake.wrong_gsi);
	fx->dev->ops->destroy(fx->dev);
	if (fx->pipe_rd >= 0)
		close(fx->pipe_rd);
	close(fx->pipe_wr);
	free(fx);
	return 0;
}

static uint8_t rd(struct device *dev, uint64_t off)
{
	uint8_t v = 0;

	dev->ops->read(dev, off, &v, 1);
	return v;
}

static void wr(struct device *dev, uint64_t off, uint8_t v)
{
	dev->ops->write(dev, off, &v, 1);
}

/* Everything the UART sent so far, read from the (non-blocking) read end. */
static ssize_t drain(struct fixture *fx, char *buf, size_t cap)
{
	ssize_t n;

	/* Output leaves through the console's queue: wait until it was written. */
	assert_int_equal(serial_flush(fx->dev, 5000), 0);
	n = read(fx->pipe_rd, buf, cap);

	return n < 0 && errno == EAGAIN ? 0 : n;
}

static void drain_all(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static void test_tx_to_fd(void **st)
{
	struct fixture *fx = *st;
	const char *msg = "hello\n";
	char buf[32];
	size_t i;

	for (i = 0; i < strlen(msg); i++)
		wr(fx->dev, RBR, (uint8_t)msg[i]);
	assert_int_equal(drain(fx, buf, sizeof(buf)), strlen(msg));
	assert_memory_equal(buf, msg, strlen(msg));
	/* Transmission is immediate: THRE and TEMT are always set. */
	assert_int_equal(rd(fx->dev, LSR) & 0x60, 0x60);
}

static void test_thre_interrupt(void **st)
{
	struct fixture *fx = *st;

	wr(fx->dev, MCR, MCR_OUT2);
	assert_false(fx->fake.level);
	/* Enabling ETBEI while THR is empty raises THRE at once. */
	wr(fx->dev, IER, 0x02);
	assert_true(fx->fake.level);
	assert_int_equal(rd(fx->dev, IIR), 0x02);
	/* That IIR read acknowledged it. */
	assert_false(fx->fake.level);
	assert_int_equal(rd(fx->dev, IIR), 0x01);
	/* Each byte written empties THR again: a fresh edge per write. */
	wr(fx->dev, RBR, 'x');
	assert_true(fx->fake.level);
	assert_int_equal(fx->fake.rising, 2);
	/* Re-enabling ETBEI re-raises it, as Linux's THRE probe expects. */
	wr(fx->dev, IER, 0x00);
	assert_false(fx->fake.level);
	wr(fx->dev, IER, 0x02);
	assert_true(fx->fake.level);
	assert_int_equal(rd(fx->dev, IIR), 0x02);
}

static void test_out2_gates_line(void **st)
{
	struct fixture *fx = *st;

	wr(fx->dev, IER, 0x02);
	/* Pending in IIR, but without OUT2 the ISA line stays low. */
	assert_int_equal(fx->fake.irq_calls, 0);
	wr(fx->dev, MCR, MCR_OUT2);
	assert_true(fx->fake.level);
	wr(fx->dev, MCR, 0);
	assert_false(fx->fake.level);
	assert_int_equal(rd(fx->dev, IIR), 0x02);
}

static void test_rda_interrupt(void **st)
{
	struct fixture *fx = *st;
	const uint8_t in[] = "ab";

	wr(fx->dev, MCR, MCR_OUT2);
	wr(fx->dev, IER, 0x01);
	assert_false(fx->fake.level);
	assert_int_equal(serial_push_input(fx->dev, in, 2), 2);
	assert_true(fx->fake.level);
	assert_int_equal(rd(fx->dev, IIR), 0x04);
	assert_int_equal(rd(fx->dev, LSR) & 0x01, 0x01);
	assert_int_equal(rd(fx->dev, RBR), 'a');
	assert_true(fx->fake.level);
	assert_int_equal(rd(fx->dev, RBR), 'b');
	assert_false(fx->fake.level);
	assert_int_equal(rd(fx->dev, LSR) & 0x01, 0);
	assert_int_equal(rd(fx->dev, IIR), 0x01);
}

static void test_iir_priorities(void **st)
{
	struct fixture *fx = *st;
	int i;

	/* Loopback, every interrupt enabled, the ring overrun: all four pending. */
	wr(fx->dev, MCR, MCR_LOOP);
	wr(fx->dev, IER, 0x0f);
	for (i = 0; i < 1025; i++)
		wr(fx->dev, RBR, (uint8_t)i);
	assert_int_equal(rd(fx->dev, IIR), 0x06);
	assert_int_equal(rd(fx->dev, LSR), 0x63); /* DR, OE, THRE, TEMT */
	assert_int_equal(rd(fx->dev, IIR), 0x04);
	for (i = 0; i < 1024; i++)
		assert_int_equal(rd(fx->dev, RBR), (uint8_t)i);
	assert_int_equal(rd(fx->dev, IIR), 0x02);
	/* Entering loopback dropped DCD, DSR and CTS: modem status is last. */
	assert_int_equal(rd(fx->dev, IIR), 0x00);
	assert_int_equal(rd(fx->dev, MSR), 0x0b);
	assert_int_equal(rd(fx->dev, IIR), 0x01);
	/* Loopback forces OUT2 inactive: the line never rose. */
	assert_int_equal(fx->fake.irq_calls, 0);
}

static void test_fifo_bits(void **st)
{
	struct fixture *fx = *st;

	assert_int_equal(rd(fx->dev, IIR), 0x01);
	wr(fx->dev, FCR, 0x07);
	assert_int_equal(rd(fx->dev, IIR), 0xc1);
	/* IIR bit 5 (the 16750's 64-byte FIFO) stays clear: Linux sees a 16550A. */
	wr(fx->dev, FCR, 0x21);
	assert_int_equal(rd(fx->dev, IIR), 0xc1);
	wr(fx->dev, FCR, 0x00);
	assert_int_equal(rd(fx->dev, IIR), 0x01);
}

static void test_dlab(void **st)
{
	struct fixture *fx = *st;
	char buf[8];

	wr(fx->dev, IER, 0x05);
	wr(fx->dev, LCR, 0x83);
	wr(fx->dev, RBR, 0x01);
	wr(fx->dev, IER, 0x02);
	assert_int_equal(rd(fx->dev, RBR), 0x01);
	assert_int_equal(rd(fx->dev, IER), 0x02);
	assert_int_equal(drain(fx, buf, sizeof(buf)), 0);
	wr(fx->dev, LCR, 0x03);
	assert_int_equal(rd(fx->dev, IER), 0x05);
	assert_int_equal(rd(fx->dev, LCR), 0x03);
	wr(fx->dev, LCR, 0x80);
	assert_int_equal(rd(fx->dev, RBR), 0x01);
	assert_int_equal(rd(fx->dev, IER), 0x02);
}

static void test_ier_high_bits_read_zero(void **st)
{
	struct fixture *fx = *st;

	wr(fx->dev, IER, 0xff);
	assert_int_equal(rd(fx->dev, IER), 0x0f);
}

static void test_loopback(void **st)
{
	struct fixture *fx = *st;
	const uint8_t in = 'z';
	char buf[8];

	assert_int_equal(rd(fx->dev, MSR) & 0xf0, 0xb0);
	/* The modem lines are looped: RTS->CTS, OUT2->DCD (Linux's probe test). */
	wr(fx->dev, MCR, MCR_LOOP | MCR_OUT2 | 0x02);
	assert_int_equal(rd(fx->dev, MSR) & 0xf0, 0x90);
	wr(fx->dev, MCR, MCR_LOOP | 0x01 | 0x04);
	assert_int_equal(rd(fx->dev, MSR) & 0xf0, 0x60);
	/* Transmitted bytes come back to the receiver, not to the console. */
	wr(fx->dev, RBR, 'x');
	assert_int_equal(drain(fx, buf, sizeof(buf)), 0);
	assert_int_equal(rd(fx->dev, LSR) & 0x01, 0x01);
	assert_int_equal(rd(fx->dev, RBR), 'x');
	/* The line input is disconnected meanwhile. */
	assert_int_equal(serial_push_input(fx->dev, &in, 1), 0);
	wr(fx->dev, MCR, 0);
	assert_int_equal(rd(fx->dev, MSR) & 0xf0, 0xb0);
	assert_int_equal(serial_push_input(fx->dev, &in, 1), 1);
}

static void test_rx_ring_full(void **st)
{
	struct fixture *fx = *st;
	uint8_t big[2000];
	size_t i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(serial_push_input(fx->dev, big, sizeof(big)), 1024);
	assert_int_equal(serial_push_input(fx->dev, big, 1), 0);
	assert_int_equal(rd(fx->dev, RBR), big[0]);
	assert_int_equal(serial_push_input(fx->dev, &big[1024], 10), 1);
	for (i = 1; i <= 1024; i++)
		assert_int_equal(rd(fx->dev, RBR), big[i]);
	assert_int_equal(rd(fx->dev, LSR) & 0x01, 0);
	/* Input is never an overrun: the caller keeps what was not accepted. */
	assert_int_equal(rd(fx->dev, LSR) & 0x02, 0);
}

/* Read every register (same side effects on both devices). */
static void read_all(struct device *dev, uint8_t out[16])
{
	uint8_t lcr = rd(dev, LCR);
	int i;

	for (i = 0; i < 8; i++)
		out[i] = rd(dev, (uint64_t)i);
	wr(dev, LCR, lcr | 0x80);
	out[8] = rd(dev, RBR);
	out[9] = rd(dev, IER);
	wr(dev, LCR, lcr);
	for (i = 10; i < 16; i++)
		out[i] = rd(dev, RBR);
}

static void configure(struct device *dev)
{
	const uint8_t in[] = "snapshot me";

	wr(dev, LCR, 0x80);
	wr(dev, RBR, 0x03);
	wr(dev, IER, 0x01);
	wr(dev, LCR, 0x1b);
	wr(dev, FCR, 0xc7);
	wr(dev, MCR, MCR_OUT2 | 0x03);
	wr(dev, SCR, 0x5a);
	wr(dev, IER, 0x0b);
	serial_push_input(dev, in, sizeof(in) - 1);
}

static void test_state_roundtrip(void **st)
{
	struct fixture *fx = *st;
	struct fake_host fake2;
	struct device *dev2;
	struct state_io save, load;
	uint8_t a[16], b[16];

	fake_host_init(&fake2, GSI);
	dev2 = serial_create(&fake2.host, "com1", GSI, fx->pipe_wr);
	assert_non_null(dev2);
	configure(fx->dev);
	state_io_saver(&save);
	assert_int_equal(fx->dev->ops->state(fx->dev, &save), 0);
	assert_int_equal(state_io_finish(&save), 0);
	state_io_loader(&load, save.buf, save.len);
	assert_int_equal(dev2->ops->state(dev2, &load), 0);
	assert_int_equal(state_io_finish(&load), 0);
	/* The restored device drives its line the way the original does. */
	assert_true(fake2.level);
	assert_int_equal(fx->fake.level, fake2.level);
	read_all(fx->dev, a);
	read_all(dev2, b);
	assert_memory_equal(a, b, sizeof(a));
	assert_false(fake2.repeated_level);
	state_io_free(&save);
	dev2->ops->destroy(dev2);
}

static void test_state_rejects_corrupt(void **st)
{
	struct fixture *fx = *st;
	struct fake_host fake2;
	struct device *twin;
	struct state_io save, load;
	uint8_t a[16], b[16];
	uint8_t *bad;

	fake_host_init(&fake2, GSI);
	twin = serial_create(&fake2.host, "com1", GSI, fx->pipe_wr);
	assert_non_null(twin);
	configure(fx->dev);
	configure(twin);
	state_io_saver(&save);
	assert_int_equal(fx->dev->ops->state(fx->dev, &save), 0);
	bad = malloc(save.len);
	assert_non_null(bad);
	memcpy(bad, save.buf, save.len);
	/* Truncated: refused. */
	state_io_loader(&load, bad, save.len / 2);
	assert_int_not_equal(fx->dev->ops->state(fx->dev, &load), 0);
	/* rx_count (u16 after nine u8 registers, a bool and rx_head) beyond the ring. */
	bad[12] = 0xff;
	bad[13] = 0xff;
	state_io_loader(&load, bad, save.len);
	assert_int_equal(fx->dev->ops->state(fx->dev, &load), -EBADMSG);
	/* Either way the live state is untouched: it still matches its twin. */
	read_all(fx->dev, a);
	read_all(twin, b);
	assert_memory_equal(a, b, sizeof(a));
	free(bad);
	state_io_free(&save);
	twin->ops->destroy(twin);
}

static void test_output_gone(void **st)
{
	struct fixture *fx = *st;
	int i;

	signal(SIGPIPE, SIG_IGN);
	close(fx->pipe_rd);
	fx->pipe_rd = -1;
	/* EPIPE: output is dropped, the guest keeps running. */
	for (i = 0; i < 100; i++)
		wr(fx->dev, RBR, 'q');
	assert_int_equal(rd(fx->dev, LSR) & 0x60, 0x60);
}

#define FLOOD_BYTES (3u << 20) /* the console queue, a pipe's buffer, and 1 MiB more at least */

struct flood_ctx {
	struct device *dev;
	_Atomic bool done;
};

static void *flood_guest(void *arg)
{
	struct flood_ctx *c = arg;
	size_t i;

	for (i = 0; i < FLOOD_BYTES; i++)
		wr(c->dev, RBR, (uint8_t)('a' + i % 26));
	atomic_store(&c->done, true);
	return NULL;
}

/*
 * A console reader that never reads: the guest's writes must all return
 * (the vCPU never blocks in write) and what does not fit is dropped and
 * counted. Before the bounded queue, the first write past the pipe's
 * capacity blocked for good.
 */
static void test_stalled_reader_never_blocks(void **st)
{
	struct fixture *fx = *st;
	struct flood_ctx c = {.dev = fx->dev};
	pthread_t t;
	int i;

	assert_int_equal(pthread_create(&t, NULL, flood_guest, &c), 0);
	for (i = 0; i < 200 && !atomic_load(&c.done); i++)
		usleep(50 * 1000);
	if (!atomic_load(&c.done))
		fail_msg("the guest's console writes blocked on a reader that stopped reading");
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&fx->dev->stats.bytes_out), FLOOD_BYTES);
	/* At most the queue and the pipe's buffer were taken; the rest was dropped. */
	assert_true(atomic_load(&fx->dev->stats.dropped_out) >=
		    FLOOD_BYTES - CONSOLE_OUT_BYTES - (1u << 20));
	assert_int_equal(rd(fx->dev, LSR) & 0x60, 0x60);
	/* The reader comes back: what was queued is written out. */
	for (i = 0; i < 500; i++) {
		drain_all(fx->pipe_rd);
		if (serial_flush(fx->dev, 10) == 0)
			break;
	}
	assert_int_equal(serial_flush(fx->dev, 0), 0);
}

static void test_wide_access(void **st)
{
	struct fixture *fx = *st;
	uint8_t v[8];
	uint64_t off;
	uint32_t len;

	/* Wider accesses split into bytes; anything past the 8 registers reads 0xff. */
	wr(fx->dev, SCR, 0x42);
	fx->dev->ops->read(fx->dev, 6, v, 4);
	assert_int_equal(v[0], 0xb0);
	assert_int_equal(v[1], 0x42);
	assert_int_equal(v[2], 0xff);
	assert_int_equal(v[3], 0xff);
	for (off = 0; off < 12; off++)
		for (len = 1; len <= 8; len++)
			fx->dev->ops->read(fx->dev, off, v, len);
	fx->dev->ops->read(fx->dev, UINT64_MAX, v, 8);
	memset(v, 0, sizeof(v));
	fx->dev->ops->write(fx->dev, UINT64_MAX - 2, v, 8);
}

#define ECHO_BYTES 20000

struct echo_ctx {
	struct device *dev;
	int fd;
	size_t got; /* bytes that came back out of the UART */
	bool in_order;
};

/* Console side: type a known sequence, retrying whatever the ring refuses. */
static void *echo_typist(void *arg)
{
	struct echo_ctx *c = arg;
	size_t sent = 0;
	uint8_t b;

	while (sent < ECHO_BYTES) {
		b = (uint8_t)(sent * 13);
		if (serial_push_input(c->dev, &b, 1))
			sent++;
		else
			sched_yield();
	}
	return NULL;
}

/* Terminal side: check the echo comes back complete and in order. */
static void *echo_reader(void *arg)
{
	struct echo_ctx *c = arg;
	uint8_t buf[256];
	ssize_t n, i;

	c->in_order = true;
	while (c->got < ECHO_BYTES) {
		n = read(c->fd, buf, sizeof(buf));
		if (n < 0 && errno == EAGAIN) {
			sched_yield();
			continue;
		}
		if (n <= 0)
			break;
		for (i = 0; i < n; i++, c->got++)
			if (buf[i] != (uint8_t)(c->got * 13))
				c->in_order = false;
	}
	return NULL;
}

/* A guest echoing its input while the console thread types: no loss, no deadlock. */
static void test_concurrent_echo(void **st)
{
	struct fixture *fx = *st;
	struct echo_ctx c = {.dev = fx->dev, .fd = fx->pipe_rd};
	pthread_t typist, reader;
	size_t echoed = 0;

	wr(fx->dev, MCR, MCR_OUT2);
	wr(fx->dev, IER, 0x03);
	assert_int_equal(pthread_create(&reader, NULL, echo_reader, &c), 0);
	assert_int_equal(pthread_create(&typist, NULL, echo_typist, &c), 0);
	while (echoed < ECHO_BYTES) {
		if (rd(fx->dev, LSR) & 0x01) {
			wr(fx->dev, RBR, rd(fx->dev, RBR));
			echoed++;
		}
		rd(fx->dev, IIR);
	}
	pthread_join(typist, NULL);
	pthread_join(reader, NULL);
	assert_int_equal(c.got, ECHO_BYTES);
	assert_true(c.in_order);
}

/* Random guest accesses, input and snapshots: nothing may crash or trip ASan. */
static void test_fuzz(void **st)
{
	struct fixture *fx = *st;
	struct state_io io;
	uint8_t data[8];
	unsigned int seed = 0x8250;
	int i, op;

	for (i = 0; i < 100000; i++) {
		uint64_t off = (uint64_t)(rand_r(&seed) % 12);
		uint32_t len = 1 + (uint32_t)(rand_r(&seed) % 8);

		if (rand_r(&seed) % 100 == 0)
			off = ((uint64_t)rand_r(&seed) << 33) ^ (uint64_t)rand_r(&seed);
		for (op = 0; op < 8; op++)
			data[op] = (uint8_t)rand_r(&seed);
		op = rand_r(&seed) % 1000;
		if (op < 450) {
			fx->dev->ops->write(fx->dev, off, data, len);
		} else if (op < 900) {
			fx->dev->ops->read(fx->dev, off, data, len);
		} else if (op < 990) {
			serial_push_input(fx->dev, data, len);
		} else if (op < 995) {
			state_io_saver(&io);
			assert_int_equal(fx->dev->ops->state(fx->dev, &io), 0);
			state_io_loader(&io, io.buf, io.len);
			assert_int_equal(fx->dev->ops->state(fx->dev, &io), 0);
			free(io.buf);
		} else {
			/* Corrupt snapshots are refused or loaded, never trusted blindly. */
			state_io_saver(&io);
			assert_int_equal(fx->dev->ops->state(fx->dev, &io), 0);
			for (op = 0; op < 4; op++)
				io.buf[(size_t)rand_r(&seed) % 16] = (uint8_t)rand_r(&seed);
			state_io_loader(&io, io.buf, io.len - (size_t)(rand_r(&seed) % 2));
			fx->dev->ops->state(fx->dev, &io);
			free(io.buf);
		}
		if (rand_r(&seed) % 50 == 0)
			drain_all(fx->pipe_rd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_tx_to_fd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_out2_gates_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rda_interrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_iir_priorities, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fifo_bits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dlab, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ier_high_bits_read_zero, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_ring_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_rejects_corrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_output_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stalled_reader_never_blocks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wide_access, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_echo, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
