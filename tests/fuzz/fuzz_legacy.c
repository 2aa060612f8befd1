/*
 * libFuzzer target: the legacy PC devices on the port I/O bus as a vCPU
 * reaches them (vcpu.c's KVM_EXIT_IO: a port, a size of 1, 2 or 4, a count
 * for rep ins/outs): the 8250 UART at 0x3f8, the i8042 at 0x60, the CMOS
 * RTC at 0x70, the ACPI PM registers at 0x600 and the POST port 0x80, at
 * the layout's ports (arch/x86/layout.h) with accesses that straddle their
 * ranges too. Between accesses: console input, Ctrl-Alt-Del, a VM reset,
 * a device's state saved and loaded back (whole, or with bytes flipped:
 * a refused load must leave the device as it was).
 *
 * Each device gets a fake machine (tests/unit/fake_host.h) that owns only
 * its interrupt line: driving another is a crash here.
 *
 * Build and run: tests/fuzz/meson.build (the unit suite runs it briefly).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "devices/legacy.h"
#include "fake_host.h"
#include "fuzz_input.h"
#include "fuzz_log.h"
#include "util/log.h"
#include "vmm/bus.h"
#include "vmm/state.h"
#include "vmm/vm.h"

#define NDEV	5
#define MAX_OPS 128

static const struct {
	uint16_t port, len;
	uint32_t gsi;
} layout[NDEV] = {
    {PORT_COM1, PORT_UART_LEN, GSI_COM1},  {PORT_I8042, PORT_I8042_LEN, GSI_KBD},
    {PORT_RTC, PORT_RTC_LEN, FAKE_NO_GSI}, {PORT_ACPI_PM, PORT_ACPI_PM_LEN, FAKE_NO_GSI},
    {PORT_POST, 1, FAKE_NO_GSI},
};

struct machine {
	struct bus pio;
	struct fake_host host[NDEV];
	struct device *dev[NDEV];
	int out_fd;
};

static void machine_up(struct machine *m)
{
	for (unsigned int i = 0; i < NDEV; i++)
		fake_host_init(&m->host[i], layout[i].gsi);
	m->dev[0] = serial_create(&m->host[0].host, "com1", GSI_COM1, m->out_fd);
	m->dev[1] = i8042_create(&m->host[1].host);
	m->dev[2] = rtc_create(&m->host[2].host);
	m->dev[3] = acpi_pm_create(&m->host[3].host, ACPI_RESET_VALUE);
	m->dev[4] = post_sink_create(&m->host[4].host);
	for (unsigned int i = 0; i < NDEV; i++)
		if (!m->dev[i] ||
		    bus_register(&m->pio, layout[i].port, layout[i].len, m->dev[i]) < 0)
			abort();
}

static void machine_down(struct machine *m)
{
	for (unsigned int i = 0; i < NDEV; i++) {
		bus_unregister(&m->pio, m->dev[i]);
		m->dev[i]->ops->destroy(m->dev[i]);
		if (m->host[i].wrong_gsi) {
			fprintf(stderr, "%s drove an interrupt line that is not its own\n",
				layout[i].gsi == FAKE_NO_GSI ? "a device without one" : "a device");
			abort();
		}
	}
}

/* A port near a device's range (or anywhere), a size KVM reports, a rep count. */
static void op_pio(struct machine *m, bool write, struct fuzz_input *in)
{
	static const uint8_t sizes[] = {1, 2, 4};
	uint8_t sel = fin_u8(in);
	uint16_t port =
	    sel < 0xf0 ? (uint16_t)(layout[sel % NDEV].port + fin_u8(in) % 12 - 2) : fin_u16(in);
	uint32_t size = sizes[fin_u8(in) % 3];
	unsigned int count = 1 + (sel >> 5) % 4;
	uint8_t data[16] = {0};

	if (write)
		fin_bytes(in, data, size * count);
	for (unsigned int i = 0; i < count; i++)
		bus_access(&m->pio, port, data + size * i, size, write);
}

/* Save device @i, flip up to three bytes, load: whole it must load, flipped it may not. */
static void op_state(struct machine *m, struct fuzz_input *in)
{
	struct device *dev = m->dev[fin_u8(in) % NDEV];
	unsigned int flips = fin_u8(in) % 4;
	struct state_io io, ld;
	bool ok;

	state_io_saver(&io);
	if (dev->ops->state(dev, &io) < 0 || state_io_finish(&io) < 0)
		abort();
	for (unsigned int i = 0; i < flips && io.len; i++) {
		uint16_t pos = fin_u16(in);

		io.buf[pos % io.len] ^= fin_u8(in);
	}
	state_io_loader(&ld, io.buf, io.len);
	ok = dev->ops->state(dev, &ld) == 0 && state_io_finish(&ld) == 0;
	state_io_free(&io);
	if (!ok && !flips) {
		fprintf(stderr, "%s refused its own state\n", dev->ops->name);
		abort();
	}
}

static void run_op(struct machine *m, unsigned int op, struct fuzz_input *in)
{
	uint8_t buf[64];
	size_t n;

	switch (op) {
	case 0:
	case 1:
	case 2:
		op_pio(m, op != 0, in);
		break;
	case 3:
		op_pio(m, false, in);
		break;
	case 4:
		n = fin_bytes(in, buf, fin_u8(in) % sizeof(buf));
		(void)serial_push_input(m->dev[0], buf, n);
		break;
	case 5:
		(void)i8042_ctrl_alt_del(m->dev[1]);
		break;
	default:
		op_state(m, in);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct machine m;
	struct fuzz_input in = {data, size};

	if (!m.out_fd) {
		m.out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (m.out_fd < 0 || bus_init(&m.pio, "pio") < 0)
			abort();
		fuzz_log_quiet();
	}
	machine_up(&m);
	for (int n = 0; n < MAX_OPS && in.left; n++)
		run_op(&m, fin_u8(&in) % 8, &in);
	machine_down(&m);
	return 0;
}

/* The console's quit escape (vmm/console.c): there is no console input here. */
void vm_request_exit(struct vm *vm, enum vm_exit reason, const char *detail)
{
	(void)vm;
	(void)reason;
	(void)detail;
	abort();
}
