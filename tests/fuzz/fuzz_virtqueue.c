/*
 * libFuzzer target: descriptor-chain parsing of the split virtqueue. The
 * input is a guest's whole view of one queue: the first bytes pick the queue
 * size and features, the rest is guest memory holding the descriptor table,
 * the avail ring and everything the descriptors point at. The device pops
 * chains, touches every byte they describe (ASan sees any escape), returns
 * them and checks notifications, until the ring is empty or refused.
 *
 * Build and run: tests/fuzz/run_virtqueue.sh (clang, -fsanitize=fuzzer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtqueue.h"

#define MEM_GPA	  0x10000ULL
#define MEM_SIZE  0x10000ULL
#define CHAIN_CAP 32

static void touch(const struct vq_chain *c)
{
	for (unsigned int i = 0; i < c->nout + c->nin; i++) {
		volatile uint8_t *p = c->iov[i].iov_base;

		if (i >= c->nout) {
			p[0] ^= 0;
			p[c->iov[i].iov_len - 1] ^= 0;
		}
		(void)p[c->iov[i].iov_len / 2];
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *mem;
	struct guest_mem gm = {0};
	struct virtqueue vq = {0};
	struct iovec iov[CHAIN_CAP];
	struct vq_chain c = {.iov = iov, .cap = CHAIN_CAP};
	enum vq_error err;

	if (size < 2)
		return 0;
	if (!mem)
		mem = malloc(MEM_SIZE);
	memset(mem, 0, MEM_SIZE);
	memcpy(mem, data + 2, size - 2 < MEM_SIZE ? size - 2 : MEM_SIZE);
	if (gm_add_region(&gm, MEM_GPA, MEM_SIZE, mem) < 0)
		return 0;
	vq.size = (uint16_t)(1u << (data[0] % 9)); /* 1..256 */
	vq.event_idx = data[1] & 1;
	vq.indirect = data[1] & 2;
	vq.avail_gpa = MEM_GPA;		/* 6 + 2 * size bytes */
	vq.desc_gpa = MEM_GPA + 0x210;	/* 16 * size bytes */
	vq.used_gpa = MEM_GPA + 0x8000; /* written by the device only */
	if (vq_activate(&vq, &gm) < 0)
		abort(); /* the layout above always fits */
	for (int n = 0; n < 300; n++) {
		int ret = vq_pop(&vq, &c, &err);

		if (ret <= 0) {
			if (ret == 0 && (data[1] & 4))
				(void)vq_enable_notify(&vq);
			break;
		}
		if (c.nout + c.nin == 0 || c.nout + c.nin > CHAIN_CAP)
			abort(); /* vq_pop promised a non-empty chain within the cap */
		touch(&c);
		vq_push(&vq, c.head, (uint32_t)c.in_len);
		(void)vq_should_notify(&vq);
	}
	return 0;
}
