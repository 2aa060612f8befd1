/*
 * libFuzzer target for virtio-balloon: the guest's side. Inflate buffers
 * with any page numbers (inside the fake RAM, in the hole below it,
 * garbage), reporting buffers with any ranges, statistics buffers with
 * any tags, the driver's writes to `actual`, and the host's target changes
 * in between, plus the shared operations of fake_transport.h (malformed
 * chains, resets, state round trips). Pages are really given back
 * (gm_release on the fake RAM): a release outside it is a crash under
 * ASan. Build and run: tests/fuzz/meson.build (the unit suite runs it
 * briefly).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fake_transport.h"
#include "fuzz_log.h"
#include "vmm/vm.h"

#define MAX_OPS 64
#define FT_PFN	(FT_GPA >> 12)

enum { OP_INFLATE = FT_OPS, OP_REPORT, OP_TARGET, OP_INFO, OP_COUNT };

static struct ft_machine *machine(uint8_t flags)
{
	static struct ft_machine machines[8];
	static bool made[8];
	struct ft_machine *m = &machines[flags];
	struct balloon_config c = {
	    .enabled = true,
	    .deflate_on_oom = flags & 1,
	    .stats_interval_s = flags & 2 ? 1 : 0,
	    .reporting = flags & 4,
	};

	if (made[flags])
		return m;
	if (ft_init(m, virtio_balloon_create(&c, &m->gm)) < 0)
		abort();
	made[flags] = true;
	return m;
}

/* A page number: mostly in RAM or near it, sometimes anything. */
static uint32_t some_pfn(struct fuzz_input *in)
{
	uint8_t k = fin_u8(in);

	if (k & 0x80)
		return fin_u32(in);
	return (uint32_t)(FT_PFN + (k & 0x1f)) - 4; /* 4 below RAM .. past its end */
}

/* An inflate (or deflate) buffer of page numbers in the data area. */
static void op_inflate(struct ft_machine *m, struct fuzz_input *in)
{
	uint32_t pfns[32];
	unsigned int n = fin_u8(in) % 32 + 1, q = fin_u8(in) & 1;
	struct ft_desc d = {.addr = FT_DATA + (fin_u8(in) & 0x3f) * 4ULL, .len = n * 4};
	void *p = ft_ptr(m, d.addr, d.len);

	for (unsigned int i = 0; i < n; i++)
		pfns[i] = some_pfn(in);
	if (!p)
		return;
	memcpy(p, pfns, d.len);
	if (ft_post(m, q, &d, 1))
		ft_notify(m, q);
}

/* A reporting buffer: ranges of RAM, page-aligned or not, on index 2 or 3. */
static void op_report(struct ft_machine *m, struct fuzz_input *in)
{
	struct ft_desc d[4];
	unsigned int n = fin_u8(in) % 4 + 1, q = 2 + (fin_u8(in) & 1);

	for (unsigned int i = 0; i < n; i++)
		d[i] = (struct ft_desc){.addr = FT_GPA + fin_u16(in) % FT_MEM_SIZE,
					.len = fin_u16(in) % 0x8000 + 1,
					.flags = VRING_DESC_F_WRITE};
	if (ft_post(m, q, d, n))
		ft_notify(m, q);
}

static void op_balloon(struct ft_machine *m, unsigned int op, struct fuzz_input *in)
{
	struct virtio_balloon_info info;

	switch (op) {
	case OP_INFLATE:
		op_inflate(m, in);
		break;
	case OP_REPORT:
		op_report(m, in);
		break;
	case OP_TARGET:
		/* The fake RAM is 64 KiB: 1 MiB is refused as too large, 0 always taken. */
		if (virtio_balloon_set_target(m->vdev, fin_u8(in) | 1) != -ERANGE ||
		    virtio_balloon_set_target(m->vdev, 0) != 0)
			abort();
		break;
	default:
		if (virtio_balloon_info(m->vdev, &info) < 0 ||
		    info.actual_pages > (FT_MEM_SIZE >> 12))
			abort(); /* actual is the guest's word, capped at its RAM */
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	struct fuzz_input in = {data, size};
	struct ft_machine *m;

	if (!quiet) {
		fuzz_log_quiet();
		quiet = true;
	}
	m = machine(fin_u8(&in) & 7);
	ft_reset(m);
	ft_bring_up(m, fin_u64(&in), &in);
	for (int n = 0; n < MAX_OPS && in.left; n++) {
		unsigned int op = fin_u8(&in) % OP_COUNT;

		if (op < FT_OPS)
			ft_generic_op(m, op, &in);
		else
			op_balloon(m, op, &in);
		/*
		 * The guest may balloon away the pages its own rings live in
		 * (they then read zero): the fake driver's used-ring
		 * bookkeeping cannot hold, so it is off for this device. What
		 * is checked: no crash, leak or UB, releases only inside RAM
		 * (ASan), and `actual` capped at RAM (OP_INFO).
		 */
		m->raw_rings = true;
	}
	ft_event(m, 0);
	for (unsigned int q = 0; q < FT_QUEUES; q++)
		ft_collect(m, q);
	return 0;
}
