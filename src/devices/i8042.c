/*
 * The i8042 keyboard controller, reduced to what a Linux guest needs: a
 * controller that passes the driver's probe (self test, interface test,
 * command byte, aux loopback) without timeouts, the CPU reset line the
 * kernel pulses for reboot=k, and a keyboard that answers the atkbd
 * driver's commands and can type one key chord: Ctrl-Alt-Del (the API's
 * SendCtrlAltDel, as Firecracker does). No mouse is attached.
 *
 * IRQ 1 follows the output buffer as on the chip: raised while a byte from
 * the keyboard waits and the command byte enables keyboard interrupts, and
 * lowered when the guest reads it, so each byte is a new edge. Controller
 * replies (self test, command byte) are polled by drivers and raise nothing.
 *
 * Range: offset 0 is port 0x60 (data), offset 4 is port 0x64 (status on
 * read, command on write). Accesses wider than a byte are split into byte
 * accesses, as the ISA bus does.
 */
#include "devices/legacy.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/state.h"

#define I8042_RANGE   5
#define I8042_DATA    0
#define I8042_COMMAND 4

/* Status register. */
#define I8042_STR_OBF	  0x01 /* output buffer full: a byte waits on port 0x60 */
#define I8042_STR_SYS	  0x04 /* system flag, set once self test passed */
#define I8042_STR_CMD	  0x08 /* last write went to the command port */
#define I8042_STR_UNLOCK  0x10 /* keyboard not inhibited */
#define I8042_STR_AUXDATA 0x20 /* the waiting byte came from the aux port */

/* Command byte (CTR). */
#define I8042_CTR_KBDINT 0x01
#define I8042_CTR_SYS	 0x04
#define I8042_CTR_KBDDIS 0x10
#define I8042_CTR_AUXDIS 0x20
#define I8042_CTR_XLATE	 0x40 /* the controller translates set 2 to set 1 */
#define I8042_CTR_INIT	 0x65 /* translate, aux off, system flag, kbd IRQ: as a BIOS leaves it */

/* Output port: bit 0 is the CPU reset line (active low), bit 1 gates A20. */
#define I8042_OUT_RESET 0x01
#define I8042_OUT_INIT	0x03

/* Controller commands. */
#define I8042_CMD_READ_CTR   0x20
#define I8042_CMD_WRITE_CTR  0x60
#define I8042_CMD_AUX_DIS    0xa7
#define I8042_CMD_AUX_EN     0xa8
#define I8042_CMD_AUX_TEST   0xa9
#define I8042_CMD_SELF_TEST  0xaa
#define I8042_CMD_KBD_TEST   0xab
#define I8042_CMD_KBD_DIS    0xad
#define I8042_CMD_KBD_EN     0xae
#define I8042_CMD_READ_OUT   0xd0
#define I8042_CMD_WRITE_OUT  0xd1
#define I8042_CMD_KBD_LOOP   0xd2
#define I8042_CMD_AUX_LOOP   0xd3
#define I8042_CMD_AUX_SEND   0xd4
#define I8042_CMD_PULSE_BASE 0xf0 /* 0xf0..0xff: pulse output lines whose bit is 0 */

#define I8042_SELF_TEST_OK 0x55
#define I8042_PORT_TEST_OK 0x00

/* Keyboard commands (sent to port 0x60 with no controller command pending). */
#define KBD_CMD_SET_LEDS 0xed
#define KBD_CMD_ECHO	 0xee
#define KBD_CMD_SCANSET	 0xf0
#define KBD_CMD_GET_ID	 0xf2
#define KBD_CMD_SET_REP	 0xf3
#define KBD_CMD_RESET	 0xff
#define KBD_REPLY_ACK	 0xfa
#define KBD_REPLY_BAT_OK 0xaa
#define KBD_ID_0	 0xab /* MF2 keyboard */
#define KBD_ID_1	 0x83

/* Where a queued byte came from. */
#define SRC_CTRL 0
#define SRC_AUX	 1
#define SRC_KBD	 2

/* GSI of the keyboard interrupt (ISA IRQ 1). */
#define I8042_KBD_GSI 1

/* The chip holds one byte; a few more absorb back-to-back commands. */
#define I8042_QUEUE 16

/* Everything the guest can observe; saved and restored as one unit. */
struct i8042_regs {
	uint8_t ctr;
	uint8_t outport;
	uint8_t pending; /* command still waiting for its data byte, or 0 */
	uint8_t last;	 /* last byte read from port 0x60, returned again when empty */
	bool cmd_flag;	 /* status CMD bit */
	uint8_t q_head;
	uint8_t q_count;
	uint8_t q_data[I8042_QUEUE];
	uint8_t q_aux[I8042_QUEUE]; /* SRC_*: who put the byte there */
	uint8_t kbd_pending;	    /* keyboard command still waiting for its parameter */
	uint8_t scanset;	    /* scan code set the keyboard sends, 1..3 */
};

struct i8042 {
	struct device dev;
	pthread_mutex_t lock; /* protects regs and irq_level */
	struct i8042_regs regs;
	bool irq_level; /* the level last driven on IRQ 1 */
};

static struct i8042 *to_i8042(struct device *dev)
{
	return container_of(dev, struct i8042, dev);
}

/* A full queue drops the byte: the guest asked faster than it reads. */
static void i8042_queue(struct i8042_regs *r, uint8_t byte, uint8_t src)
{
	uint8_t slot;

	if (r->q_count >= I8042_QUEUE)
		return;
	slot = (uint8_t)((r->q_head + r->q_count) % I8042_QUEUE);
	r->q_data[slot] = byte;
	r->q_aux[slot] = src;
	r->q_count++;
}

static uint8_t i8042_read_data(struct i8042_regs *r)
{
	if (r->q_count) {
		r->last = r->q_data[r->q_head];
		r->q_head = (uint8_t)((r->q_head + 1) % I8042_QUEUE);
		r->q_count--;
	}
	return r->last;
}

static uint8_t i8042_read_status(const struct i8042_regs *r)
{
	uint8_t st = I8042_STR_UNLOCK;

	if (r->q_count) {
		st |= I8042_STR_OBF;
		if (r->q_aux[r->q_head] == SRC_AUX)
			st |= I8042_STR_AUXDATA;
	}
	if (r->ctr & I8042_CTR_SYS)
		st |= I8042_STR_SYS;
	if (r->cmd_flag)
		st |= I8042_STR_CMD;
	return st;
}

static void i8042_reboot(struct i8042 *k)
{
	k->dev.host->request(k->dev.host, VM_REQUEST_REBOOT);
}

/* Writing the output port with the reset bit low holds the CPU in reset. */
static void i8042_write_outport(struct i8042 *k, uint8_t v)
{
	k->regs.outport = v;
	if (!(v & I8042_OUT_RESET))
		i8042_reboot(k);
}

/* The data byte of a two-byte controller command. */
static void i8042_command_data(struct i8042 *k, uint8_t cmd, uint8_t v)
{
	struct i8042_regs *r = &k->regs;

	switch (cmd) {
	case I8042_CMD_WRITE_CTR:
		r->ctr = v;
		break;
	case I8042_CMD_WRITE_OUT:
		i8042_write_outport(k, v);
		break;
	case I8042_CMD_KBD_LOOP:
		i8042_queue(r, v, SRC_KBD);
		break;
	case I8042_CMD_AUX_LOOP:
		i8042_queue(r, v, SRC_AUX);
		break;
	default:
		/* I8042_CMD_AUX_SEND: no mouse is attached to receive it. */
		break;
	}
}

/* The parameter byte of a two-byte keyboard command. */
static void i8042_kbd_param(struct i8042_regs *r, uint8_t cmd, uint8_t v)
{
	i8042_queue(r, KBD_REPLY_ACK, SRC_KBD);
	if (cmd == KBD_CMD_SCANSET) {
		if (v == 0)
			i8042_queue(r, r->scanset, SRC_KBD);
		else if (v <= 3)
			r->scanset = v;
	}
}

/* A byte for the keyboard: a command, or the parameter of the previous one. */
static void i8042_kbd_write(struct i8042_regs *r, uint8_t v)
{
	uint8_t cmd = r->kbd_pending;

	r->kbd_pending = 0;
	if (cmd) {
		i8042_kbd_param(r, cmd, v);
		return;
	}
	if (v == KBD_CMD_ECHO) {
		i8042_queue(r, KBD_CMD_ECHO, SRC_KBD);
		return;
	}
	i8042_queue(r, KBD_REPLY_ACK, SRC_KBD);
	switch (v) {
	case KBD_CMD_SET_LEDS:
	case KBD_CMD_SCANSET:
	case KBD_CMD_SET_REP:
		r->kbd_pending = v;
		break;
	case KBD_CMD_GET_ID:
		i8042_queue(r, KBD_ID_0, SRC_KBD);
		i8042_queue(r, KBD_ID_1, SRC_KBD);
		break;
	case KBD_CMD_RESET:
		r->scanset = 2;
		i8042_queue(r, KBD_REPLY_BAT_OK, SRC_KBD);
		break;
	default:
		/* Enable, disable, set defaults, typematic modes: nothing to keep. */
		break;
	}
}

static void i8042_write_data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->regs.pending;

	k->regs.cmd_flag = false;
	k->regs.pending = 0;
	/* Without a pending controller command the byte is for the keyboard. */
	if (cmd)
		i8042_command_data(k, cmd, v);
	else
		i8042_kbd_write(&k->regs, v);
}

/* Commands that only change the command byte or answer with one byte. */
static bool i8042_simple_command(struct i8042_regs *r, uint8_t cmd)
{
	switch (cmd) {
	case I8042_CMD_READ_CTR:
		i8042_queue(r, r->ctr, SRC_CTRL);
		return true;
	case I8042_CMD_AUX_DIS:
		r->ctr |= I8042_CTR_AUXDIS;
		return true;
	case I8042_CMD_AUX_EN:
		r->ctr &= ~I8042_CTR_AUXDIS;
		return true;
	case I8042_CMD_KBD_DIS:
		r->ctr |= I8042_CTR_KBDDIS;
		return true;
	case I8042_CMD_KBD_EN:
		r->ctr &= ~I8042_CTR_KBDDIS;
		return true;
	case I8042_CMD_SELF_TEST:
		r->ctr |= I8042_CTR_SYS;
		i8042_queue(r, I8042_SELF_TEST_OK, SRC_CTRL);
		return true;
	case I8042_CMD_KBD_TEST:
	case I8042_CMD_AUX_TEST:
		i8042_queue(r, I8042_PORT_TEST_OK, SRC_CTRL);
		return true;
	case I8042_CMD_READ_OUT:
		i8042_queue(r, r->outport, SRC_CTRL);
		return true;
	default:
		return false;
	}
}

static void i8042_write_command(struct i8042 *k, uint8_t cmd)
{
	struct i8042_regs *r = &k->regs;

	r->cmd_flag = true;
	/* A new command abandons one still waiting for its data byte. */
	r->pending = 0;
	if (i8042_simple_command(r, cmd))
		return;
	switch (cmd) {
	case I8042_CMD_WRITE_CTR:
	case I8042_CMD_WRITE_OUT:
	case I8042_CMD_KBD_LOOP:
	case I8042_CMD_AUX_LOOP:
	case I8042_CMD_AUX_SEND:
		r->pending = cmd;
		break;
	default:
		/* 0xfe (and any pulse with bit 0 clear) pulses the reset line. */
		if (cmd >= I8042_CMD_PULSE_BASE && !(cmd & I8042_OUT_RESET))
			i8042_reboot(k);
		/* Anything else (vendor extensions, RAM reads) is ignored. */
		break;
	}
}

static uint8_t i8042_read_reg(struct i8042_regs *r, uint64_t off)
{
	if (off == I8042_DATA)
		return i8042_read_data(r);
	if (off == I8042_COMMAND)
		return i8042_read_status(r);
	return 0xff;
}

static void i8042_write_reg(struct i8042 *k, uint64_t off, uint8_t v)
{
	if (off == I8042_DATA)
		i8042_write_data(k, v);
	else if (off == I8042_COMMAND)
		i8042_write_command(k, v);
}

/*
 * Drive IRQ 1 from the output buffer. @consumed: the guest just read port
 * 0x60, so the line drops first and a further waiting byte is a new edge.
 */
static void i8042_update_irq(struct i8042 *k, bool consumed)
{
	const struct i8042_regs *r = &k->regs;
	bool level = r->q_count && r->q_aux[r->q_head] == SRC_KBD && (r->ctr & I8042_CTR_KBDINT);

	if (consumed && k->irq_level && level) {
		k->dev.host->set_irq(k->dev.host, I8042_KBD_GSI, false);
		k->irq_level = false;
	}
	if (level != k->irq_level) {
		k->dev.host->set_irq(k->dev.host, I8042_KBD_GSI, level);
		k->irq_level = level;
	}
}

static void i8042_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	struct i8042 *k = to_i8042(dev);
	uint8_t *out = data;
	bool consumed = false;
	uint32_t i;

	pthread_mutex_lock(&k->lock);
	for (i = 0; i < len; i++) {
		if (offset >= I8042_RANGE || i >= I8042_RANGE - offset) {
			out[i] = 0xff;
		} else {
			consumed |= offset + i == I8042_DATA;
			out[i] = i8042_read_reg(&k->regs, offset + i);
		}
	}
	i8042_update_irq(k, consumed);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	struct i8042 *k = to_i8042(dev);
	const uint8_t *in = data;
	uint32_t i;

	pthread_mutex_lock(&k->lock);
	for (i = 0; i < len && offset < I8042_RANGE && i < I8042_RANGE - offset; i++)
		i8042_write_reg(k, offset + i, in[i]);
	i8042_update_irq(k, false);
	pthread_mutex_unlock(&k->lock);
}

int i8042_ctrl_alt_del(struct device *dev)
{
	/* Make Ctrl, Alt, Del, then break in reverse order (set 1, and set 2). */
	static const uint8_t set1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
	static const uint8_t set2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
				       0x71, 0xf0, 0x11, 0xf0, 0x14};
	struct i8042 *k = to_i8042(dev);
	struct i8042_regs *r = &k->regs;
	const uint8_t *seq;
	size_t n, i;
	int ret = 0;

	pthread_mutex_lock(&k->lock);
	/* With translation on, the guest reads set 1 whatever the keyboard sends. */
	seq = (r->ctr & I8042_CTR_XLATE) || r->scanset == 1 ? set1 : set2;
	n = seq == set1 ? sizeof(set1) : sizeof(set2);
	if (r->q_count + n > I8042_QUEUE)
		ret = -EBUSY;
	for (i = 0; ret == 0 && i < n; i++)
		i8042_queue(r, seq[i], SRC_KBD);
	i8042_update_irq(k, false);
	pthread_mutex_unlock(&k->lock);
	return ret;
}

static void i8042_regs_init(struct i8042_regs *r)
{
	memset(r, 0, sizeof(*r));
	r->ctr = I8042_CTR_INIT;
	r->outport = I8042_OUT_INIT;
	r->scanset = 2;
}

static void i8042_regs_state(struct state_io *io, struct i8042_regs *r)
{
	state_u8(io, &r->ctr);
	state_u8(io, &r->outport);
	state_u8(io, &r->pending);
	state_u8(io, &r->last);
	state_bool(io, &r->cmd_flag);
	state_u8(io, &r->q_head);
	state_u8(io, &r->q_count);
	state_bytes(io, r->q_data, sizeof(r->q_data));
	state_bytes(io, r->q_aux, sizeof(r->q_aux));
	state_u8(io, &r->kbd_pending);
	state_u8(io, &r->scanset);
}

/* Loading goes into a copy, checked before it replaces the live registers. */
static int i8042_state(struct device *dev, struct state_io *io)
{
	struct i8042 *k = to_i8042(dev);
	struct i8042_regs tmp;
	int ret = 0;

	pthread_mutex_lock(&k->lock);
	tmp = k->regs;
	i8042_regs_state(io, &tmp);
	if (io->err)
		ret = io->err;
	else if (io->loading && (tmp.q_head >= I8042_QUEUE || tmp.q_count > I8042_QUEUE ||
				 tmp.scanset < 1 || tmp.scanset > 3))
		ret = -EBADMSG;
	else if (io->loading) {
		k->regs = tmp;
		i8042_update_irq(k, false);
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}

static void i8042_destroy(struct device *dev)
{
	struct i8042 *k = to_i8042(dev);

	pthread_mutex_destroy(&k->lock);
	free(k);
}

static const struct device_ops i8042_ops = {
    .name = "i8042",
    .read = i8042_read,
    .write = i8042_write,
    .state = i8042_state,
    .destroy = i8042_destroy,
};

struct device *i8042_create(struct dev_host *host)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	if (pthread_mutex_init(&k->lock, NULL)) {
		free(k);
		return NULL;
	}
	k->dev.ops = &i8042_ops;
	k->dev.host = host;
	k->dev.id = "i8042";
	i8042_regs_init(&k->regs);
	return &k->dev;
}
