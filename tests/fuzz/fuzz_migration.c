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
 * Seeds: tests/fuzz/corpus/migration (made by make_seeds.py).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	if (mig_receive(&c, &s, err) < 0 && !err[0])
		abort(); /* every failure says why */
	return 0;
}
