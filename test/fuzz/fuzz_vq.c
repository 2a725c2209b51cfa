/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The split virtqueue (device side) against guest memory built from the
 * input. Layout of the input:
 *   byte 0   bits 0..3: log2 of the queue size (folded to 0..8),
 *            bit 4: INDIRECT_DESC, bit 5: EVENT_IDX, bit 6: two regions,
 *            bit 7: the second region not adjacent in guest physical space
 *   byte 1   bit 0: ring addresses from bytes 2..7 (any alignment) instead
 *            of the packed layout (descriptors, avail, used from offset 0)
 *   2..7     three 16-bit offsets into the user address space
 *   8..      the guest memory, from its start; zeros past the input
 * Each region is its own heap buffer so ASan sees any access outside one.
 * Checks: every iovec lies inside one region, the lengths add up, the
 * counts stay within VQ_MAX_IOV, and every pop returns (the libFuzzer
 * timeout catches a walk that does not end).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "vhost-user/gmem.h"
#include "vhost-user/vlog.h"
#include "vhost-user/vq.h"

#define REGION_SIZE (16u * 1024u)
#define GPA0 0x10000ull
#define GPA_FAR 0x80000ull
#define UVA0 0x7f0000000000ull
#define MAX_ITER 600

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vlog_set_level(VLOG_ERR);
	return 0;
}

static bool inside(const uint8_t *buf, const struct iovec *v)
{
	const uint8_t *p = v->iov_base;

	return p >= buf && v->iov_len <= REGION_SIZE && p + v->iov_len <= buf + REGION_SIZE &&
	       (size_t)(p - buf) <= REGION_SIZE - v->iov_len;
}

static void check_chain(const struct vq_chain *c, uint8_t *const bufs[2], unsigned int nbufs,
			uint16_t num)
{
	uint64_t out = 0, in = 0;

	if (c->nout + c->nin > VQ_MAX_IOV || c->head >= num)
		abort();
	for (unsigned int i = 0; i < c->nout + c->nin; i++) {
		const struct iovec *v = &c->iov[i];
		bool ok = false;

		for (unsigned int k = 0; k < nbufs; k++)
			ok = ok || inside(bufs[k], v);
		if (!ok)
			abort();
		if (i < c->nout)
			out += v->iov_len;
		else
			in += v->iov_len;
	}
	if (out != c->out_len || in != c->in_len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {.p = data, .left = size};
	uint8_t *bufs[2] = {NULL, NULL};
	uint8_t mode = fuzz_u8(&in);
	uint8_t how = fuzz_u8(&in);
	uint16_t off[3];
	unsigned int nbufs = (mode & 0x40) ? 2 : 1;
	uint16_t num = (uint16_t)(1u << ((mode & 0xfu) % 9));
	struct gmem gm;
	struct vq q;
	struct vq_chain c;
	uint8_t scratch[256];

	for (unsigned int i = 0; i < 3; i++)
		off[i] = fuzz_u16(&in);
	gmem_init(&gm);
	for (unsigned int k = 0; k < nbufs; k++) {
		uint64_t gap = (k == 1 && (mode & 0x80)) ? GPA_FAR : 0;
		struct vhost_user_mem_region r = {
		    .guest_phys_addr = GPA0 + k * REGION_SIZE + gap,
		    .memory_size = REGION_SIZE,
		    .userspace_addr = UVA0 + k * REGION_SIZE,
		    .mmap_offset = 0,
		};

		bufs[k] = malloc(REGION_SIZE);
		if (!bufs[k])
			abort();
		fuzz_take(&in, bufs[k], REGION_SIZE);
		if (gmem_add_host(&gm, &r, bufs[k]) != 0)
			abort();
	}

	vq_init(&q, 0);
	q.num = num;
	if (how & 1) {
		q.desc_uaddr = UVA0 + off[0];
		q.avail_uaddr = UVA0 + off[1];
		q.used_uaddr = UVA0 + off[2];
	} else {
		uint64_t avail = 16ull * num;
		uint64_t used = (avail + 6 + 2ull * num + 3) & ~3ull;

		q.desc_uaddr = UVA0;
		q.avail_uaddr = UVA0 + avail;
		q.used_uaddr = UVA0 + used;
	}
	q.addr_set = true;
	q.indirect = mode & 0x10;
	q.event_idx = mode & 0x20;
	if (vq_map(&q, &gm) != 0)
		goto out;
	q.started = true;
	q.enabled = true;

	for (unsigned int i = 0; i < MAX_ITER; i++) {
		int ret;

		(void)vq_avail_count(&q);
		ret = vq_pop(&q, &c);
		if (ret < 0) {
			if (!q.broken)
				abort();
			break;
		}
		if (ret == 0)
			break;
		check_chain(&c, bufs, nbufs, num);
		/* Touch every byte the chain gives us. */
		vq_iov_read(c.iov, c.nout, 0, scratch, sizeof(scratch));
		for (size_t o = 0; o < c.in_len && o < 4096; o += sizeof(scratch))
			vq_iov_write(c.iov + c.nout, c.nin, o, scratch, sizeof(scratch));
		if (vq_push(&q, c.head, (uint32_t)c.in_len) != 0)
			break;
		(void)vq_should_notify(&q);
		if (i % 7 == 3)
			(void)vq_set_kick_notify(&q, i & 8);
	}
	/* A bogus push must be refused or be harmless. */
	(void)vq_push(&q, (uint16_t)(num + (how >> 1)), 1);
out:
	vq_unmap(&q);
	gmem_clear(&gm);
	free(bufs[0]);
	free(bufs[1]);
	return 0;
}
