/*
 * A 16550A UART as Linux's 8250 driver drives it: the kernel console, and a
 * getty or shell on ttyS0.
 *
 * Transmission is immediate (each byte written to THR goes into the
 * console's output queue, vmm/console.h), so LSR always reports THRE|TEMT.
 * The queue is written by a thread of its own: a reader that stops reading
 * never blocks the vCPU; past its bound, output is dropped and counted. Interrupts follow the chip,
 * not a polling shortcut: the driver's probe tests (THRE re-assertion, the
 * TXEN test) and its interrupt-driven transmit path depend on them.
 *
 * Guest accesses wider than a byte are split into byte accesses at
 * consecutive offsets, as the ISA bus does for an 8-bit device.
 */
#include "devices/legacy.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/writer.h"
#include "vmm/console.h"
#include "vmm/state.h"

#define UART_NR_REGS 8

/* Register offsets (DLAB selects DLL/DLM at 0/1). */
#define UART_RBR 0 /* read: receive buffer; write: THR */
#define UART_IER 1
#define UART_IIR 2 /* read: IIR; write: FCR */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_ERBFI 0x01 /* received data available */
#define UART_IER_ETBEI 0x02 /* transmitter holding register empty */
#define UART_IER_ELSI  0x04 /* receiver line status */
#define UART_IER_EDSSI 0x08 /* modem status */
#define UART_IER_MASK  0x0f /* bits 4-7 read as zero on a 16550A */

#define UART_IIR_MSI   0x00
#define UART_IIR_NONE  0x01
#define UART_IIR_THRI  0x02
#define UART_IIR_RDI   0x04
#define UART_IIR_RLSI  0x06
#define UART_IIR_FIFOS 0xc0 /* both FIFO-enabled bits: a 16550A, not a 16550 */

#define UART_FCR_ENABLE	    0x01
#define UART_FCR_CLEAR_RX   0x02
#define UART_FCR_STORE_MASK 0xc9 /* enable, DMA mode, RX trigger level */

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR  0x01
#define UART_MCR_RTS  0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_MCR_MASK 0x1f

#define UART_LSR_DR   0x01
#define UART_LSR_OE   0x02
#define UART_LSR_ERR  0x9e /* OE, PE, FE, BI, error in FIFO: cleared by reading LSR */
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40

#define UART_MSR_DCTS  0x01
#define UART_MSR_DDSR  0x02
#define UART_MSR_TERI  0x04
#define UART_MSR_DDCD  0x08
#define UART_MSR_DELTA 0x0f
#define UART_MSR_CTS   0x10
#define UART_MSR_DSR   0x20
#define UART_MSR_RI    0x40
#define UART_MSR_DCD   0x80

/* Far more than the chip's 16-byte FIFO, so a paste into the console survives. */
#define UART_RX_RING 1024

/* Everything the guest can observe; saved and restored as one unit. */
struct uart_regs {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	uint8_t lsr_err;   /* sticky LSR error bits, cleared by reading LSR */
	uint8_t msr;	   /* modem lines (high nibble) and their deltas (low) */
	bool thri_pending; /* THR emptied since the guest last acknowledged it */
	uint16_t rx_head;  /* oldest received byte */
	uint16_t rx_count;
	uint8_t rx[UART_RX_RING];
};

struct serial {
	struct device dev;
	uint32_t gsi;
	struct writer *out; /* the console's queue; NULL: output is dropped */
	/* lock protects regs and irq_level, and keeps output in THR-write order. */
	pthread_mutex_t lock;
	bool irq_level; /* the level last driven on gsi */
	struct uart_regs regs;
};

static struct serial *to_serial(struct device *dev)
{
	return container_of(dev, struct serial, dev);
}

/* The modem input lines as the guest sees them in MSR's high nibble. */
static uint8_t uart_modem_lines(uint8_t mcr)
{
	uint8_t lines = 0;

	/* Not looped: a terminal is always attached and ready. */
	if (!(mcr & UART_MCR_LOOP))
		return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	/* Loopback wires the outputs to the inputs inside the chip. */
	if (mcr & UART_MCR_DTR)
		lines |= UART_MSR_DSR;
	if (mcr & UART_MCR_RTS)
		lines |= UART_MSR_CTS;
	if (mcr & UART_MCR_OUT1)
		lines |= UART_MSR_RI;
	if (mcr & UART_MCR_OUT2)
		lines |= UART_MSR_DCD;
	return lines;
}

/* Move the modem lines to @lines, latching a delta bit for each change. */
static void uart_set_lines(struct uart_regs *r, uint8_t lines)
{
	uint8_t old = r->msr & ~UART_MSR_DELTA;
	uint8_t changed = old ^ lines;
	uint8_t delta = r->msr & UART_MSR_DELTA;

	if (changed & UART_MSR_CTS)
		delta |= UART_MSR_DCTS;
	if (changed & UART_MSR_DSR)
		delta |= UART_MSR_DDSR;
	if (changed & UART_MSR_DCD)
		delta |= UART_MSR_DDCD;
	/* RI reports only its trailing edge. */
	if ((old & UART_MSR_RI) && !(lines & UART_MSR_RI))
		delta |= UART_MSR_TERI;
	r->msr = lines | delta;
}

/* The highest-priority pending, enabled interrupt, as IIR bits 0-3. */
static uint8_t uart_iir_id(const struct uart_regs *r)
{
	if ((r->ier & UART_IER_ELSI) && (r->lsr_err & UART_LSR_ERR))
		return UART_IIR_RLSI;
	if ((r->ier & UART_IER_ERBFI) && r->rx_count)
		return UART_IIR_RDI;
	if ((r->ier & UART_IER_ETBEI) && r->thri_pending)
		return UART_IIR_THRI;
	if ((r->ier & UART_IER_EDSSI) && (r->msr & UART_MSR_DELTA))
		return UART_IIR_MSI;
	return UART_IIR_NONE;
}

/*
 * Recompute the interrupt line and drive it when it changes: the ISA IRQ is
 * edge-triggered, so a rising edge is what delivers. On a PC the UART's
 * interrupt output reaches the bus only through a buffer enabled by the OUT2
 * pin, and Linux's 8250 driver sets MCR.OUT2 when it wants interrupts. In
 * loopback mode the chip forces the OUT2 pin inactive, so the line is gated
 * off then too.
 */
static void serial_update_irq(struct serial *s)
{
	const struct uart_regs *r = &s->regs;
	bool gate = (r->mcr & (UART_MCR_OUT2 | UART_MCR_LOOP)) == UART_MCR_OUT2;
	bool level = gate && uart_iir_id(r) != UART_IIR_NONE;

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	s->dev.host->set_irq(s->dev.host, s->gsi, level);
}

static bool uart_rx_push(struct uart_regs *r, uint8_t byte)
{
	if (r->rx_count >= UART_RX_RING)
		return false;
	r->rx[(r->rx_head + r->rx_count) % UART_RX_RING] = byte;
	r->rx_count++;
	return true;
}

static uint8_t uart_rx_pop(struct uart_regs *r)
{
	uint8_t byte;

	if (!r->rx_count)
		return 0;
	byte = r->rx[r->rx_head];
	r->rx_head = (r->rx_head + 1) % UART_RX_RING;
	r->rx_count--;
	return byte;
}

static void uart_rx_clear(struct uart_regs *r)
{
	r->rx_head = 0;
	r->rx_count = 0;
}

static uint8_t uart_read_iir(struct uart_regs *r)
{
	uint8_t id = uart_iir_id(r);

	/* Reading IIR acknowledges a THRE interrupt, but only when it is the one reported. */
	if (id == UART_IIR_THRI)
		r->thri_pending = false;
	return id | ((r->fcr & UART_FCR_ENABLE) ? UART_IIR_FIFOS : 0);
}

static uint8_t uart_read_lsr(struct uart_regs *r)
{
	uint8_t lsr = r->lsr_err | UART_LSR_THRE | UART_LSR_TEMT;

	if (r->rx_count)
		lsr |= UART_LSR_DR;
	r->lsr_err = 0;
	return lsr;
}

static uint8_t uart_read_reg(struct uart_regs *r, uint64_t off)
{
	bool dlab = r->lcr & UART_LCR_DLAB;
	uint8_t v;

	switch (off) {
	case UART_RBR:
		return dlab ? r->dll : uart_rx_pop(r);
	case UART_IER:
		return dlab ? r->dlm : r->ier;
	case UART_IIR:
		return uart_read_iir(r);
	case UART_LCR:
		return r->lcr;
	case UART_MCR:
		return r->mcr;
	case UART_LSR:
		return uart_read_lsr(r);
	case UART_MSR:
		v = r->msr;
		r->msr &= ~UART_MSR_DELTA;
		return v;
	case UART_SCR:
		return r->scr;
	default:
		return 0xff;
	}
}

/* THR: looped back into the receiver, or handed to the caller for output. */
static bool uart_write_thr(struct uart_regs *r, uint8_t v)
{
	bool out = true;

	if (r->mcr & UART_MCR_LOOP) {
		if (!uart_rx_push(r, v))
			r->lsr_err |= UART_LSR_OE;
		out = false;
	}
	/* The byte left at once, so THR is empty again: THRE re-arms. */
	r->thri_pending = true;
	return out;
}

static void uart_write_ier(struct uart_regs *r, uint8_t v)
{
	uint8_t old = r->ier;

	r->ier = v & UART_IER_MASK;
	/* Enabling ETBEI while THR is empty (it always is) raises THRE at once. */
	if (!(old & UART_IER_ETBEI) && (r->ier & UART_IER_ETBEI))
		r->thri_pending = true;
}

static void uart_write_fcr(struct uart_regs *r, uint8_t v)
{
	bool was_on = r->fcr & UART_FCR_ENABLE;

	/* The other FCR bits are only written together with the enable bit. */
	if (!(v & UART_FCR_ENABLE)) {
		if (was_on)
			uart_rx_clear(r);
		r->fcr = 0;
		return;
	}
	/* Switching the FIFOs on resets them, as on the chip. */
	if (!was_on || (v & UART_FCR_CLEAR_RX))
		uart_rx_clear(r);
	r->fcr = v & UART_FCR_STORE_MASK;
}

static void uart_write_mcr(struct uart_regs *r, uint8_t v)
{
	r->mcr = v & UART_MCR_MASK;
	uart_set_lines(r, uart_modem_lines(r->mcr));
}

/* Returns true when @v must be transmitted. */
static bool uart_write_reg(struct uart_regs *r, uint64_t off, uint8_t v)
{
	bool dlab = r->lcr & UART_LCR_DLAB;

	switch (off) {
	case UART_RBR:
		if (!dlab)
			return uart_write_thr(r, v);
		r->dll = v;
		break;
	case UART_IER:
		if (dlab)
			r->dlm = v;
		else
			uart_write_ier(r, v);
		break;
	case UART_IIR:
		uart_write_fcr(r, v);
		break;
	case UART_LCR:
		r->lcr = v;
		break;
	case UART_MCR:
		uart_write_mcr(r, v);
		break;
	case UART_SCR:
		r->scr = v;
		break;
	default:
		/* LSR and MSR are read-only (writing them is a factory test mode). */
		break;
	}
	return false;
}

/* Queue @buf for the console: never waits for its reader. Called under lock. */
static void serial_output(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = s->out ? writer_put(s->out, buf, len) : 0;

	dev_stats_out(&s->dev.stats, len);
	if (n < len)
		dev_stats_dropped(&s->dev.stats, len - n);
}

static void serial_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	struct serial *s = to_serial(dev);
	uint8_t *out = data;
	uint32_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < len; i++) {
		if (offset >= UART_NR_REGS || i >= UART_NR_REGS - offset)
			out[i] = 0xff;
		else
			out[i] = uart_read_reg(&s->regs, offset + i);
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	struct serial *s = to_serial(dev);
	const uint8_t *in = data;
	uint8_t tx[UART_NR_REGS];
	size_t ntx = 0;
	uint32_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < len && offset < UART_NR_REGS && i < UART_NR_REGS - offset; i++)
		if (uart_write_reg(&s->regs, offset + i, in[i]))
			tx[ntx++] = in[i];
	serial_update_irq(s);
	if (ntx)
		serial_output(s, tx, ntx);
	pthread_mutex_unlock(&s->lock);
}

int serial_flush(struct device *dev, int timeout_ms)
{
	struct serial *s = to_serial(dev);

	return s->out ? writer_flush(s->out, timeout_ms, timeout_ms) : 0;
}

/* How long a pause waits for console output already queued (a stalled reader: no longer). */
#define SERIAL_PAUSE_FLUSH_MS 200

/*
 * The VM is pausing (its vCPUs are parked): output the guest wrote before
 * the pause reaches the console now, so what a reader sees matches the
 * paused machine, unless the reader stalled.
 */
static void serial_pause(struct device *dev)
{
	serial_flush(dev, SERIAL_PAUSE_FLUSH_MS);
}

size_t serial_push_input(struct device *dev, const uint8_t *buf, size_t len)
{
	struct serial *s = to_serial(dev);
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	/* In loopback the receiver is cut off from the line: keep input for later. */
	if (!(s->regs.mcr & UART_MCR_LOOP))
		while (n < len && uart_rx_push(&s->regs, buf[n]))
			n++;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	dev_stats_in(&dev->stats, n);
	return n;
}

static void uart_regs_init(struct uart_regs *r)
{
	memset(r, 0, sizeof(*r));
	r->msr = uart_modem_lines(0);
	/* Power-on divisor 12: 9600 baud from the 1.8432 MHz clock. */
	r->dll = 12;
}

static void uart_regs_state(struct state_io *io, struct uart_regs *r)
{
	state_u8(io, &r->ier);
	state_u8(io, &r->lcr);
	state_u8(io, &r->mcr);
	state_u8(io, &r->scr);
	state_u8(io, &r->dll);
	state_u8(io, &r->dlm);
	state_u8(io, &r->fcr);
	state_u8(io, &r->lsr_err);
	state_u8(io, &r->msr);
	state_bool(io, &r->thri_pending);
	state_u16(io, &r->rx_head);
	state_u16(io, &r->rx_count);
	state_bytes(io, r->rx, sizeof(r->rx));
}

static bool uart_regs_valid(const struct uart_regs *r)
{
	return r->rx_head < UART_RX_RING && r->rx_count <= UART_RX_RING &&
	       !(r->ier & ~UART_IER_MASK) && !(r->mcr & ~UART_MCR_MASK);
}

/*
 * Loading goes into a copy that is checked before it replaces the live
 * registers: a corrupt snapshot must not leave ring indexes out of range.
 */
static int serial_state(struct device *dev, struct state_io *io)
{
	struct serial *s = to_serial(dev);
	struct uart_regs tmp;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	tmp = s->regs;
	uart_regs_state(io, &tmp);
	if (io->err)
		ret = io->err;
	else if (io->loading && !uart_regs_valid(&tmp))
		ret = -EBADMSG;
	else if (io->loading)
		s->regs = tmp;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static void serial_destroy(struct device *dev)
{
	struct serial *s = to_serial(dev);

	console_out_put(s->out);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct device_ops serial_ops = {
    .name = "serial",
    .read = serial_read,
    .write = serial_write,
    .state = serial_state,
    .pause = serial_pause,
    .input = serial_push_input,
    .destroy = serial_destroy,
};

struct device *serial_create(struct dev_host *host, const char *id, uint32_t gsi, int out_fd)
{
	struct serial *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (pthread_mutex_init(&s->lock, NULL)) {
		free(s);
		return NULL;
	}
	s->dev.ops = &serial_ops;
	s->dev.host = host;
	s->dev.id = id;
	s->gsi = gsi;
	s->out = console_out_get(out_fd);
	/* A closed stdout loses the guest's output, not the guest. */
	if (!s->out)
		log_warn("%s: no console output (fd %d): the guest's output is dropped", id,
			 out_fd);
	uart_regs_init(&s->regs);
	return &s->dev;
}
