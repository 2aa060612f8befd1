/*
 * The MC146818 CMOS real-time clock and its RAM.
 *
 * The clock is the host's CLOCK_REALTIME (UTC) plus an offset of the
 * guest's own: setting the time only changes the offset, so the guest clock
 * keeps running at host speed, and a snapshot restored later reads the
 * right time rather than the time it was taken. The time registers are
 * encoded on every read according to register B (BCD or binary, 24 or 12
 * hours), the way the chip's update cycle would have left them.
 *
 * No interrupt line is wired: PF, AF and UF in register C are never set,
 * and UIP in register A is never reported, so a guest waiting for it to
 * clear never waits.
 */
#include "devices/legacy.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/state.h"

#define RTC_RANGE 2
#define RTC_INDEX 0 /* port 0x70: bit 7 masks NMI, bits 0-6 select a register */
#define RTC_DATA  1 /* port 0x71 */

#define CMOS_SIZE	128
#define CMOS_INDEX_MASK 0x7f

#define RTC_SECONDS	0x00
#define RTC_SECONDS_ALM 0x01
#define RTC_MINUTES	0x02
#define RTC_MINUTES_ALM 0x03
#define RTC_HOURS	0x04
#define RTC_HOURS_ALM	0x05
#define RTC_WEEKDAY	0x06
#define RTC_DAY		0x07
#define RTC_MONTH	0x08
#define RTC_YEAR	0x09
#define RTC_REG_A	0x0a
#define RTC_REG_B	0x0b
#define RTC_REG_C	0x0c
#define RTC_REG_D	0x0d
#define RTC_CENTURY	0x32 /* the ACPI FADT's century register */

#define RTC_A_UIP     0x80
#define RTC_A_DEFAULT 0x26 /* 32.768 kHz time base, 1024 Hz periodic rate */

#define RTC_B_SET     0x80 /* updates stopped while the guest sets the time */
#define RTC_B_UIE     0x10
#define RTC_B_DM      0x04 /* data mode: 1 = binary, 0 = BCD */
#define RTC_B_24H     0x02
#define RTC_B_DEFAULT RTC_B_24H

#define RTC_D_VRT   0x80 /* valid RAM and time: the battery is fine */
#define RTC_HOUR_PM 0x80 /* 12-hour mode */

/* Far beyond any date the registers can encode; keeps host + offset from overflowing. */
#define RTC_OFFSET_MAX (INT64_C(1) << 40)

/* Everything the guest can observe; saved and restored as one unit. */
struct rtc_regs {
	uint8_t index;
	/*
	 * Registers and RAM by index. The time registers here are only
	 * meaningful while B.SET is set; otherwise they are computed on read.
	 */
	uint8_t cmos[CMOS_SIZE];
	int64_t offset; /* guest time minus host time, in seconds */
};

struct rtc {
	struct device dev;
	pthread_mutex_t lock; /* protects regs */
	struct rtc_regs regs;
};

static struct rtc *to_rtc(struct device *dev)
{
	return container_of(dev, struct rtc, dev);
}

static int64_t rtc_host_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static bool rtc_is_time_reg(uint8_t idx)
{
	switch (idx) {
	case RTC_SECONDS:
	case RTC_MINUTES:
	case RTC_HOURS:
	case RTC_WEEKDAY:
	case RTC_DAY:
	case RTC_MONTH:
	case RTC_YEAR:
	case RTC_CENTURY:
		return true;
	default:
		return false;
	}
}

static uint8_t rtc_encode(const struct rtc_regs *r, int v)
{
	if (v < 0)
		v = 0; /* a year before 0 (a restored offset far in the past) reads as 00 */
	if (r->cmos[RTC_REG_B] & RTC_B_DM)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

/* Garbage BCD from the guest decodes to an out-of-range number; timegm normalises it. */
static int rtc_decode(const struct rtc_regs *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & RTC_B_DM)
		return v;
	return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t rtc_encode_hour(const struct rtc_regs *r, int hour)
{
	int h12 = hour % 12 ? hour % 12 : 12;

	if (r->cmos[RTC_REG_B] & RTC_B_24H)
		return rtc_encode(r, hour);
	return rtc_encode(r, h12) | (hour >= 12 ? RTC_HOUR_PM : 0);
}

static int rtc_decode_hour(const struct rtc_regs *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & RTC_B_24H)
		return rtc_decode(r, v);
	return rtc_decode(r, v & ~RTC_HOUR_PM) % 12 + ((v & RTC_HOUR_PM) ? 12 : 0);
}

/* Write time @t into the time registers, as the chip's update cycle does. */
static void rtc_fill_time(struct rtc_regs *r, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	int year;

	if (!gmtime_r(&tt, &tm))
		return;
	year = tm.tm_year + 1900;
	r->cmos[RTC_SECONDS] = rtc_encode(r, tm.tm_sec);
	r->cmos[RTC_MINUTES] = rtc_encode(r, tm.tm_min);
	r->cmos[RTC_HOURS] = rtc_encode_hour(r, tm.tm_hour);
	r->cmos[RTC_WEEKDAY] = rtc_encode(r, tm.tm_wday + 1);
	r->cmos[RTC_DAY] = rtc_encode(r, tm.tm_mday);
	r->cmos[RTC_MONTH] = rtc_encode(r, tm.tm_mon + 1);
	r->cmos[RTC_YEAR] = rtc_encode(r, year % 100);
	r->cmos[RTC_CENTURY] = rtc_encode(r, (year / 100) % 100);
}

/* The time the registers hold; false when they describe no representable time. */
static bool rtc_regs_time(const struct rtc_regs *r, int64_t *t)
{
	struct tm tm;
	time_t tt;

	memset(&tm, 0, sizeof(tm));
	tm.tm_sec = rtc_decode(r, r->cmos[RTC_SECONDS]);
	tm.tm_min = rtc_decode(r, r->cmos[RTC_MINUTES]);
	tm.tm_hour = rtc_decode_hour(r, r->cmos[RTC_HOURS]);
	tm.tm_mday = rtc_decode(r, r->cmos[RTC_DAY]);
	tm.tm_mon = rtc_decode(r, r->cmos[RTC_MONTH]) - 1;
	tm.tm_year =
	    rtc_decode(r, r->cmos[RTC_CENTURY]) * 100 + rtc_decode(r, r->cmos[RTC_YEAR]) - 1900;
	/* The weekday register is the guest's business; the date decides. */
	tt = timegm(&tm);
	if (tt == (time_t)-1)
		return false;
	*t = (int64_t)tt;
	return true;
}

/* The guest changed the time registers: keep their time as the new offset. */
static void rtc_commit_time(struct rtc_regs *r)
{
	int64_t t;

	if (rtc_regs_time(r, &t))
		r->offset = t - rtc_host_now();
}

static void rtc_write_b(struct rtc_regs *r, uint8_t v)
{
	uint8_t old = r->cmos[RTC_REG_B];

	/* Freeze the current time in the registers, in the format they had. */
	if (!(old & RTC_B_SET) && (v & RTC_B_SET))
		rtc_fill_time(r, rtc_host_now() + r->offset);
	/* Setting SET clears UIE on the chip. */
	if (v & RTC_B_SET)
		v &= ~RTC_B_UIE;
	r->cmos[RTC_REG_B] = v;
	if ((old & RTC_B_SET) && !(v & RTC_B_SET))
		rtc_commit_time(r);
}

static void rtc_write_time(struct rtc_regs *r, uint8_t idx, uint8_t v)
{
	bool set = r->cmos[RTC_REG_B] & RTC_B_SET;

	/* Outside SET mode a single write takes effect at once. */
	if (!set)
		rtc_fill_time(r, rtc_host_now() + r->offset);
	r->cmos[idx] = v;
	if (!set)
		rtc_commit_time(r);
}

static void rtc_write_data(struct rtc_regs *r, uint8_t v)
{
	uint8_t idx = r->index;

	if (rtc_is_time_reg(idx)) {
		rtc_write_time(r, idx, v);
		return;
	}
	switch (idx) {
	case RTC_REG_A:
		r->cmos[idx] = v & ~RTC_A_UIP;
		break;
	case RTC_REG_B:
		rtc_write_b(r, v);
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break; /* read-only */
	default:
		r->cmos[idx] = v; /* alarms and RAM */
		break;
	}
}

static uint8_t rtc_read_data(struct rtc_regs *r)
{
	uint8_t idx = r->index;
	uint8_t v;

	if (rtc_is_time_reg(idx) && !(r->cmos[RTC_REG_B] & RTC_B_SET))
		rtc_fill_time(r, rtc_host_now() + r->offset);
	switch (idx) {
	case RTC_REG_C:
		/* Reading C acknowledges its flags. */
		v = r->cmos[idx];
		r->cmos[idx] = 0;
		return v;
	case RTC_REG_D:
		return RTC_D_VRT;
	default:
		return r->cmos[idx];
	}
}

static uint8_t rtc_read_reg(struct rtc_regs *r, uint64_t off)
{
	/* The index port is write-only. */
	if (off == RTC_DATA)
		return rtc_read_data(r);
	return 0xff;
}

static void rtc_write_reg(struct rtc_regs *r, uint64_t off, uint8_t v)
{
	/* Bit 7 masks NMI on a PC; there is no NMI source here to mask. */
	if (off == RTC_INDEX)
		r->index = v & CMOS_INDEX_MASK;
	else if (off == RTC_DATA)
		rtc_write_data(r, v);
}

static void rtc_read(struct device *dev, uint64_t offset, void *data, uint32_t len)
{
	struct rtc *c = to_rtc(dev);
	uint8_t *out = data;
	uint32_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < len; i++) {
		if (offset >= RTC_RANGE || i >= RTC_RANGE - offset)
			out[i] = 0xff;
		else
			out[i] = rtc_read_reg(&c->regs, offset + i);
	}
	pthread_mutex_unlock(&c->lock);
}

static void rtc_write(struct device *dev, uint64_t offset, const void *data, uint32_t len)
{
	struct rtc *c = to_rtc(dev);
	const uint8_t *in = data;
	uint32_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < len && offset < RTC_RANGE && i < RTC_RANGE - offset; i++)
		rtc_write_reg(&c->regs, offset + i, in[i]);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Power-on state. CMOS RAM is battery-backed and the guest's clock offset
 * lives in the chip, so both survive a reboot; only the control registers
 * return to what a BIOS would leave.
 */
static void rtc_regs_reset(struct rtc_regs *r)
{
	r->index = 0;
	r->cmos[RTC_REG_A] = RTC_A_DEFAULT;
	r->cmos[RTC_REG_B] = RTC_B_DEFAULT;
	r->cmos[RTC_REG_C] = 0;
	r->cmos[RTC_REG_D] = RTC_D_VRT;
}

static int rtc_state(struct device *dev, struct state_io *io)
{
	struct rtc *c = to_rtc(dev);
	struct rtc_regs tmp;
	uint64_t offset;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	tmp = c->regs;
	offset = (uint64_t)tmp.offset;
	state_u8(io, &tmp.index);
	state_bytes(io, tmp.cmos, sizeof(tmp.cmos));
	state_u64(io, &offset);
	tmp.offset = (int64_t)offset;
	/* Loading goes into a copy, checked before it replaces the live registers. */
	if (io->err)
		ret = io->err;
	else if (io->loading && (tmp.index >= CMOS_SIZE || tmp.offset > RTC_OFFSET_MAX ||
				 tmp.offset < -RTC_OFFSET_MAX))
		ret = -EBADMSG;
	else if (io->loading)
		c->regs = tmp;
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static void rtc_destroy(struct device *dev)
{
	struct rtc *c = to_rtc(dev);

	pthread_mutex_destroy(&c->lock);
	free(c);
}

static const struct device_ops rtc_ops = {
    .name = "rtc",
    .read = rtc_read,
    .write = rtc_write,
    .state = rtc_state,
    .destroy = rtc_destroy,
};

struct device *rtc_create(struct dev_host *host)
{
	struct rtc *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (pthread_mutex_init(&c->lock, NULL)) {
		free(c);
		return NULL;
	}
	c->dev.ops = &rtc_ops;
	c->dev.host = host;
	c->dev.id = "rtc";
	rtc_regs_reset(&c->regs);
	return &c->dev;
}
