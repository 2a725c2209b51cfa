/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The virtio-can device driven by a hostile guest and a flaky bus. Rings
 * are set up by hand in one guest buffer (as in test/unit/test_device.c); the
 * input is a script:
 *   byte 0   features: bits 0..3 the device bits, bit 4 offer CAN FD
 *   byte 1   rx backlog (folded to 1..16)
 *   then ops, each an opcode byte and its operands (see run_op).
 * A fake port records what is sent and fails when told to. Checks: every
 * used id is a chain the guest posted and had not got back, a stopped ring
 * holds no chain, used lengths fit the chain's writable bytes, and the fd
 * count is unchanged at the end.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "tdesc.h"
#include "tfd.h"
#include "vhost-user/gmem.h"
#include "device.h"
#include "device_frame.h"
#include "virtio_can.h"
#include "vhost-user/vlog.h"
#include "vhost-user/vq.h"

#define MEM_SIZE (128u * 1024u)
#define GPA_BASE 0x40000000ull
#define UVA_BASE 0x7f1200000000ull
#define QNUM 32u
#define RING_SPAN 1024u /* desc 512, avail 128, used 384 */
#define HEAP_START (3 * RING_SPAN)
#define MAX_OPS 256
#define MAX_SEGS 6

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fport {
	struct cframe last[8];
	unsigned int nsent;
	int send_err;  /* whole call fails */
	int frame_err; /* every frame fails */
	int start_err;
	int confirm_err;
	uint64_t now;
};

static int fp_send(void *port, const struct cframe *f, unsigned int n, int *res)
{
	struct fport *p = port;

	if (p->send_err)
		return p->send_err;
	for (unsigned int i = 0; i < n; i++) {
		if (f[i].len > CFRAME_MAX_DATA)
			abort();
		res[i] = p->frame_err;
		if (!p->frame_err)
			p->last[p->nsent++ % 8] = f[i];
	}
	return 0;
}

static int fp_start(void *port)
{
	return ((struct fport *)port)->start_err;
}

static int fp_stop(void *port)
{
	(void)port;
	return 0;
}

static int fp_set_tx_confirm(void *port, bool on)
{
	(void)on;
	return ((struct fport *)port)->confirm_err;
}

static uint64_t fp_now(void *port)
{
	return ((struct fport *)port)->now;
}

static const struct device_port_ops fp_ops = {
    .send = fp_send,
    .start = fp_start,
    .stop = fp_stop,
    .set_tx_confirm = fp_set_tx_confirm,
    .now_ms = fp_now,
};

struct ring {
	struct vq q;
	size_t desc_off, avail_off, used_off;
	uint16_t next_desc;
	uint16_t avail_idx;
	uint16_t used_seen;
	bool running;
	/* Per head: descriptors taken (0 = free) and writable bytes. */
	uint8_t ndesc[QNUM];
	uint32_t wlen[QNUM];
	bool desc_busy[QNUM];
};

struct rig {
	uint8_t *mem;
	size_t heap;
	struct gmem gm;
	struct ring r[3];
	struct fport port;
	struct device *d;
	const struct vu_device *vd;
	uint64_t features;
	struct fuzz_in in;
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vlog_set_level(VLOG_ERR);
	return 0;
}

static uint8_t *galloc(struct rig *t, size_t len)
{
	t->heap = (t->heap + 15) & ~(size_t)15;
	if (t->heap + len > MEM_SIZE)
		t->heap = HEAP_START; /* the guest reuses its memory: hostile, legal */
	t->heap += len;
	return t->mem + t->heap - len;
}

static uint64_t gpa_of(struct rig *t, const void *p)
{
	return GPA_BASE + (uint64_t)((const uint8_t *)p - t->mem);
}

/* Collect used entries: each must be a chain we posted and still own. */
static void reap(struct rig *t, unsigned int qi)
{
	struct ring *r = &t->r[qi];
	struct vring_used *u = (struct vring_used *)(void *)(t->mem + r->used_off);
	uint16_t idx = le16toh(u->idx);

	while (r->used_seen != idx) {
		uint32_t id = le32toh(u->ring[r->used_seen % QNUM].id);
		uint32_t len = le32toh(u->ring[r->used_seen % QNUM].len);

		if (id >= QNUM || r->ndesc[id] == 0 || len > r->wlen[id])
			abort();
		for (unsigned int k = 0; k < r->ndesc[id]; k++)
			r->desc_busy[(id + k) % QNUM] = false;
		r->ndesc[id] = 0;
		r->used_seen++;
	}
}

static void ring_start(struct rig *t, unsigned int qi)
{
	t->vd->ops->queue_start(t->vd->opaque, &t->r[qi].q);
	t->r[qi].running = true;
}

static void ring_stop(struct rig *t, unsigned int qi)
{
	t->vd->ops->queue_stop(t->vd->opaque, &t->r[qi].q);
	t->r[qi].running = false;
	/* The device must have given every chain back. */
	if (!t->r[qi].q.broken && t->r[qi].q.inflight != 0)
		abort();
	reap(t, qi);
	/* What a broken ring still holds is lost; the backend's SET_VRING_BASE clears it. */
	t->r[qi].q.inflight = 0;
}

/*
 * Post a chain of up to MAX_SEGS segments laid out by the input: per
 * segment a length byte and a flags byte (bit 0 writable; readable
 * contents come from the input). Bit 0 of shape: as one indirect table.
 * Readable data begins with a virtio-can header built from the input.
 */
static void post(struct rig *t, unsigned int qi)
{
	struct ring *r = &t->r[qi];
	struct vring_desc *table = (struct vring_desc *)(void *)(t->mem + r->desc_off);
	struct vring_avail *av = (struct vring_avail *)(void *)(t->mem + r->avail_off);
	uint8_t shape = fuzz_u8(&t->in);
	unsigned int n = 1 + (shape >> 1) % MAX_SEGS;
	bool indirect = shape & 1;
	unsigned int ndesc = indirect ? 1 : n;
	uint16_t head = r->next_desc;
	struct vring_desc segs[MAX_SEGS];
	uint32_t wlen = 0;

	for (unsigned int k = 0; k < ndesc; k++)
		if (r->desc_busy[(head + k) % QNUM])
			return;
	for (unsigned int i = 0; i < n; i++) {
		uint32_t len = fuzz_u8(&t->in);
		uint8_t fl = fuzz_u8(&t->in);
		bool w = fl & 1;
		uint8_t *p = galloc(t, len ? len : 1);

		if (!w) {
			/* A header-like start makes the interesting paths reachable. */
			fuzz_take(&t->in, p, len < 24 ? len : 24);
			memset(p + (len < 24 ? len : 24), 0x5a, len > 24 ? len - 24 : 0);
		} else {
			memset(p, 0xee, len);
			wlen += len;
		}
		tdesc_put(&segs[i], gpa_of(t, p), len, (uint16_t)(w ? VRING_DESC_F_WRITE : 0), 0);
	}
	if (indirect) {
		struct vring_desc *ind = (struct vring_desc *)(void *)galloc(t, 16 * n);

		for (unsigned int i = 0; i < n; i++) {
			ind[i] = segs[i];
			if (i + 1 < n)
				ind[i].flags |= htole16(VRING_DESC_F_NEXT);
			ind[i].next = htole16((uint16_t)(i + 1));
		}
		tdesc_put(&table[head], gpa_of(t, ind), 16 * n, VRING_DESC_F_INDIRECT, 0);
	} else {
		for (unsigned int i = 0; i < n; i++) {
			uint16_t idx = (uint16_t)((head + i) % QNUM);

			table[idx] = segs[i];
			if (i + 1 < n)
				table[idx].flags |= htole16(VRING_DESC_F_NEXT);
			table[idx].next = htole16((uint16_t)((idx + 1) % QNUM));
		}
	}
	for (unsigned int k = 0; k < ndesc; k++)
		r->desc_busy[(head + k) % QNUM] = true;
	r->ndesc[head] = (uint8_t)ndesc;
	r->wlen[head] = wlen;
	r->next_desc = (uint16_t)((head + ndesc) % QNUM);
	av->ring[r->avail_idx % QNUM] = htole16(head);
	r->avail_idx++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	av->idx = htole16(r->avail_idx);
}

static void kick(struct rig *t, unsigned int qi)
{
	if (t->r[qi].running)
		t->vd->ops->queue_kick(t->vd->opaque, &t->r[qi].q);
}

static void rx_frames(struct rig *t)
{
	struct cframe f[4];
	unsigned int n = 1 + fuzz_u8(&t->in) % 4;

	for (unsigned int i = 0; i < n; i++) {
		fuzz_take(&t->in, &f[i], sizeof(f[i]));
		/* The kernel never hands over more than 64 bytes. */
		f[i].len = (uint8_t)(f[i].len % (CFRAME_MAX_DATA + 1));
	}
	device_rx_frames(t->d, f, n);
}

static void restart_all(struct rig *t, bool reset)
{
	for (unsigned int i = 0; i < 3; i++)
		if (t->r[i].running)
			ring_stop(t, i);
	if (reset) {
		t->vd->ops->reset(t->vd->opaque);
		t->features = (fuzz_u8(&t->in) & DEVICE_F_ALL) | (1ull << 32);
		if (t->vd->ops->set_features(t->vd->opaque, t->features) != 0)
			return;
	}
	for (unsigned int i = 0; i < 3; i++) {
		if (vq_map(&t->r[i].q, &t->gm) == 0)
			ring_start(t, i);
	}
}

static void run_op(struct rig *t, uint8_t op)
{
	uint8_t qi;

	switch (op % 14) {
	case 0: /* TX request, kicked */
		post(t, VIRTIO_CAN_QUEUE_TX);
		kick(t, VIRTIO_CAN_QUEUE_TX);
		break;
	case 1: /* control request, kicked */
		post(t, VIRTIO_CAN_QUEUE_CTRL);
		kick(t, VIRTIO_CAN_QUEUE_CTRL);
		break;
	case 2: /* RX buffer, kicked */
		post(t, VIRTIO_CAN_QUEUE_RX);
		kick(t, VIRTIO_CAN_QUEUE_RX);
		break;
	case 3: /* a buffer on any ring, not kicked */
		post(t, fuzz_u8(&t->in) % 3);
		break;
	case 4:
		rx_frames(t);
		break;
	case 5: { /* an echo: of a frame we sent, or of anything */
		struct cframe f;
		uint8_t k = fuzz_u8(&t->in);

		if ((k & 0x80) || t->port.nsent == 0) {
			fuzz_take(&t->in, &f, sizeof(f));
			f.len = (uint8_t)(f.len % (CFRAME_MAX_DATA + 1));
		} else {
			f = t->port.last[(t->port.nsent - 1 - (k % 8u)) % 8];
		}
		device_tx_confirmed(t->d, &f);
		break;
	}
	case 6:
		device_bus_off(t->d);
		break;
	case 7:
		device_bus_restarted(t->d);
		break;
	case 8: /* time passes */
		t->port.now += fuzz_u16(&t->in);
		(void)device_timeout_ms(t->d);
		device_tick(t->d);
		break;
	case 9: { /* the port's mood */
		uint8_t m = fuzz_u8(&t->in);

		t->port.send_err = (m & 1) ? -ENOBUFS : 0;
		t->port.frame_err = (m & 2) ? -ENETDOWN : 0;
		t->port.start_err = (m & 4) ? -EIO : 0;
		t->port.confirm_err = (m & 8) ? -EPERM : 0;
		break;
	}
	case 10: /* one ring stops and starts again */
		qi = fuzz_u8(&t->in) % 3;
		if (t->r[qi].running)
			ring_stop(t, qi);
		if (vq_map(&t->r[qi].q, &t->gm) == 0)
			ring_start(t, qi);
		break;
	case 11:
		restart_all(t, false);
		break;
	case 12:
		restart_all(t, true);
		break;
	case 13: { /* config space */
		uint8_t buf[sizeof(struct virtio_can_config)];
		uint8_t k = fuzz_u8(&t->in);
		uint32_t off = k % (sizeof(buf) + 1);
		uint32_t len = (uint32_t)((k >> 4) % (sizeof(buf) - off + 1));

		(void)t->vd->ops->get_config(t->vd->opaque, off, buf, len);
		(void)device_started(t->d);
		(void)device_status(t->d);
		break;
	}
	}
	for (unsigned int i = 0; i < 3; i++)
		reap(t, i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fds_before = tfd_count();
	struct rig *t = calloc(1, sizeof(*t));
	struct vhost_user_mem_region reg = {
	    .guest_phys_addr = GPA_BASE,
	    .memory_size = MEM_SIZE,
	    .userspace_addr = UVA_BASE,
	    .mmap_offset = 0,
	};
	struct device_config cfg = {.name = "fuzz-can"};
	uint8_t feat;

	if (!t)
		abort();
	t->in.p = data;
	t->in.left = size;
	feat = fuzz_u8(&t->in);
	cfg.fd = feat & 0x10;
	cfg.rx_backlog = 1 + fuzz_u8(&t->in) % 16;
	cfg.tx_ack_timeout_ms = 50;
	t->mem = aligned_alloc(4096, MEM_SIZE);
	if (!t->mem)
		abort();
	memset(t->mem, 0, MEM_SIZE);
	t->heap = HEAP_START;
	gmem_init(&t->gm);
	if (gmem_add_host(&t->gm, &reg, t->mem) != 0)
		abort();
	t->port.now = 1000;
	if (device_new(&t->d, &cfg, &fp_ops, &t->port) != 0)
		abort();
	t->vd = device_vu_device(t->d);
	t->features = (feat & DEVICE_F_ALL) | (1ull << 32);
	if (t->vd->ops->set_features(t->vd->opaque, t->features) != 0)
		goto out;

	for (unsigned int i = 0; i < 3; i++) {
		struct ring *r = &t->r[i];
		struct vq *q = &r->q;

		r->desc_off = i * RING_SPAN;
		r->avail_off = r->desc_off + 512;
		r->used_off = r->avail_off + 128;
		vq_init(q, i);
		q->num = QNUM;
		q->desc_uaddr = UVA_BASE + r->desc_off;
		q->avail_uaddr = UVA_BASE + r->avail_off;
		q->used_uaddr = UVA_BASE + r->used_off;
		q->addr_set = true;
		q->indirect = true;
		q->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->call_fd < 0 || vq_map(q, &t->gm) != 0)
			abort();
		q->started = true;
		q->enabled = true;
		ring_start(t, i);
	}
	for (unsigned int i = 0; i < MAX_OPS && t->in.left > 0; i++)
		run_op(t, fuzz_u8(&t->in));
	for (unsigned int i = 0; i < 3; i++)
		if (t->r[i].running)
			ring_stop(t, i);
out:
	for (unsigned int i = 0; i < 3; i++)
		if (t->r[i].q.call_fd > 0)
			close(t->r[i].q.call_fd);
	device_free(t->d);
	gmem_clear(&t->gm);
	free(t->mem);
	free(t);
	if (tfd_count() != fds_before)
		abort();
	return 0;
}
