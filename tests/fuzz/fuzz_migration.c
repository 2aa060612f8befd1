/*
 * libFuzzer target: the receiving side of a live migration (mig_receive),
 * everything a hostile source reaches before a VM would run: the header,
 * section framing, lengths and checksums, the order of sections, memory
 * runs written into guest memory (two regions with a hole between, so a
 * run may straddle it), the VERIFY check and the answers.
 *
 * Input: the stream as the source sends it. The sink accepts any CONFIG
 * and state part whose first byte is even (so both the refusal and the
 * loading paths run); guest memory is two small regions.
 *
 * Input starting "BANYANPC" is post-copy page traffic instead, for the
 * destination's book-keeping (postcopy_pages.h): a flags byte (bit 0:
 * verify), a u16-length POSTCOPY list, then records until the input
 * ends: 0 a fault at a u32 offset from guest RAM's start (any, past it
 * too), 1 a u16-length MEMORY section of pages arriving, 2 a u8-length
 * PAGE_REQ as the source parses it, 3 a u8-length PC_END. Checked
 * throughout: a page is placed only while pending and inside RAM, the
 * missing count is the pending bits', a fault's request parses back to
 * a pending page, an accepted end leaves nothing missing.
 *
 * Seeds: tests/fuzz/corpus/migration (made by make_seeds.py).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migration/postcopy_pages.h"
#include "migration/stream.h"
#include "util/errmsg.h"

#define REGION (64 * 4096)

struct input {
	const uint8_t *data;
	size_t len, pos;
};

static ssize_t in_read(struct mig_conn *c, void *buf, size_t len)
{
	struct input *in = c->priv;
	size_t n = in->len - in->pos < len ? in->len - in->pos : len;

	memcpy(buf, in->data + in->pos, n);
	in->pos += n;
	return (ssize_t)n; /* 0 at the end: the source closed the stream */
}

static ssize_t in_write(struct mig_conn *c, const void *buf, size_t len)
{
	(void)c;
	(void)buf;
	return (ssize_t)len;
}

static void in_nop(struct mig_conn *c)
{
	(void)c;
}

static const struct mig_conn_ops in_ops = {
    .read = in_read, .write = in_write, .shutdown = in_nop, .close = in_nop};

static uint8_t *ram;
static struct guest_mem gm;

static int sink_config(struct mig_sink *s, const uint8_t *buf, size_t len, char *err)
{
	if (len && (buf[0] & 1))
		return errmsg_set(err, MIG_ERR_LEN, -EINVAL, "refused");
	s->mem = &gm;
	return 0;
}

static int sink_state(struct mig_sink *s, enum mig_tag tag, const uint8_t *buf, size_t len,
		      char *err)
{
	(void)s;
	if (tag < MIG_TAG_VCPUS || tag > MIG_TAG_DEVICES)
		abort(); /* the receiver passes state parts only */
	if (len && (buf[0] & 1))
		return errmsg_set(err, MIG_ERR_LEN, -EBADMSG, "bad state");
	return 0;
}

/* --- post-copy page traffic --- */

#define PC_MAGIC "BANYANPC"

static uint64_t pc_placed;

/* The stand-in for UFFDIO_COPY: only pending pages inside RAM, page aligned. */
static int fake_place(void *priv, uint8_t *host, const uint8_t *data)
{
	struct pc_pages *pp = priv;
	uint64_t p = (uint64_t)(host - ram) / PC_PAGE;

	if (host < ram || host + PC_PAGE > ram + 2 * REGION || (host - ram) % PC_PAGE ||
	    !pc_pages_is_pending(pp, p))
		abort();
	if (data)
		memcpy(host, data, PC_PAGE);
	else
		memset(host, 0, PC_PAGE);
	pc_placed++;
	return 0;
}

static int walk_run(void *priv, uint8_t *host, uint64_t gpa, uint64_t pages, const uint8_t *data)
{
	return pc_pages_place_run(priv, host, gpa, pages, data, fake_place, priv);
}

static void check_missing(const struct pc_pages *pp)
{
	uint64_t n = 0;

	for (uint64_t p = 0; p < pp->npages; p++)
		n += pc_pages_is_pending(pp, p);
	if (n != atomic_load(&pp->missing) || n > pp->total)
		abort();
}

/* A fault at @off: a request must name that pending page; a zero fill a page not pending. */
static void pc_fault(struct pc_pages *pp, uint32_t off)
{
	uint8_t req[PC_RUN_LEN], *host = NULL, *back;
	uint64_t pages;
	char err[MIG_ERR_LEN] = "";

	switch (pc_pages_fault(pp, (uintptr_t)ram + off, &host, req)) {
	case PC_FAULT_ASK:
		if (pc_req_parse(&gm, req, sizeof(req), &back, &pages, err) < 0 || back != host ||
		    pages != 1 || !pc_pages_is_pending(pp, (uint64_t)(host - ram) / PC_PAGE))
			abort();
		break;
	case PC_FAULT_ZERO:
		if (off >= 2 * REGION || host != ram + off / PC_PAGE * PC_PAGE ||
		    pc_pages_is_pending(pp, off / PC_PAGE))
			abort();
		break;
	case PC_FAULT_NONE:
		if (off < 2 * REGION)
			abort(); /* both regions are RAM, back to back */
		break;
	}
}

/* The next record's body: a u16 (MEMORY) or u8 length, cut to what the input holds. */
static const uint8_t *pc_body(struct input *in, unsigned int op, size_t *len)
{
	size_t hdr = op == 1 ? 3 : 2, left = in->len - in->pos;
	const uint8_t *d = in->data + in->pos;

	if (left < hdr) {
		in->pos = in->len;
		*len = 0;
		return d;
	}
	*len = op == 1 ? (size_t)(d[1] | d[2] << 8) : d[1];
	if (*len > left - hdr)
		*len = left - hdr; /* truncated: what there is */
	in->pos += hdr + *len;
	return d + hdr;
}

/* One record; false at the input's end or at PC_END (the receiver stops there). */
static bool pc_record(struct pc_pages *pp, struct input *in)
{
	const uint8_t *d = in->data + in->pos;
	unsigned int op;
	char err[MIG_ERR_LEN] = "";
	uint8_t *host;
	uint64_t pages;
	size_t len;
	int ret;

	if (in->pos >= in->len)
		return false;
	op = d[0] % 4;
	if (op == 0) {
		uint32_t off = 0;
		size_t n = in->len - in->pos - 1 < 4 ? in->len - in->pos - 1 : 4;

		memcpy(&off, d + 1, n);
		in->pos += 1 + n;
		pc_fault(pp, off);
		return true;
	}
	d = pc_body(in, op, &len);
	if (op == 1)
		ret = mig_mem_walk(&gm, d, len, walk_run, pp, err);
	else if (op == 2)
		ret = pc_req_parse(&gm, d, len, &host, &pages, err);
	else if ((ret = pc_pages_check_end(pp, d, len, err)) == 0 && atomic_load(&pp->missing))
		abort(); /* an end accepted with pages missing */
	if (ret < 0 && !err[0])
		abort(); /* every refusal says why */
	check_missing(pp);
	return op != 3;
}

static void pc_traffic(const uint8_t *data, size_t size)
{
	struct input in = {.data = data, .len = size, .pos = sizeof(PC_MAGIC) - 1};
	struct pc_pages pp;
	char err[MIG_ERR_LEN] = "";
	size_t list;
	bool verify;

	if (size < in.pos + 3)
		return;
	verify = data[in.pos] & 1;
	list = (size_t)(data[in.pos + 1] | data[in.pos + 2] << 8);
	in.pos += 3;
	if (list > size - in.pos)
		list = size - in.pos;
	memset(ram, 0, 2 * REGION);
	if (pc_pages_init(&pp, &gm, ram, 2 * REGION, verify) < 0)
		abort();
	if (pc_pages_parse_list(&pp, data + in.pos, list, err) < 0) {
		if (!err[0])
			abort();
		pc_pages_free(&pp);
		return;
	}
	in.pos += list;
	check_missing(&pp);
	if (verify)
		pc_pages_hash_present(&pp, NULL);
	while (pc_record(&pp, &in))
		;
	pc_pages_free(&pp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {.data = data, .len = size};
	struct mig_conn c = {.ops = &in_ops, .fd = -1, .priv = &in};
	struct mig_sink s = {.config = sink_config, .state = sink_state};
	char err[MIG_ERR_LEN];

	if (!ram) {
		ram = calloc(2, REGION);
		if (!ram || gm_add_region(&gm, 0, REGION, ram) < 0 ||
		    gm_add_region(&gm, 2 * REGION, REGION, ram + REGION) < 0)
			abort();
	}
	if (size >= sizeof(PC_MAGIC) - 1 && memcmp(data, PC_MAGIC, sizeof(PC_MAGIC) - 1) == 0) {
		pc_traffic(data, size);
		return 0;
	}
	if (mig_receive(&c, &s, err) < 0 && !err[0])
		abort(); /* every failure says why */
	return 0;
}
