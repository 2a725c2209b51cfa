/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The virtio-can device against hand-built rings and a fake CAN port. The
 * test plays the guest driver: it writes descriptors, avail and used rings
 * in a buffer registered with gmem_add_host, then calls the device's
 * vu_device_ops directly, as the backend would.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "tdesc.h"
#include "tfd.h"
#include "vhost-user/gmem.h"
#include "cbits.h"
#include "device.h"
#include "device_frame.h"
#include "virtio_can.h"
#include "vhost-user/vlog.h"
#include "vhost-user/vq.h"

#define MEM_SIZE (1u << 20)
#define GPA_BASE 0x40000000ull
#define UVA_BASE 0x7f1200000000ull
#define QNUM 256u
#define RING_SPAN 8192u /* desc 4096, avail 1024, used 3072 */
#define HEAP_START (3 * RING_SPAN)

#define F_VERSION_1 (1ull << 32)
#define F_TYPES (DEVICE_F_CLASSIC | DEVICE_F_FD | DEVICE_F_RTR)

#define TXQ VIRTIO_CAN_QUEUE_TX
#define RXQ VIRTIO_CAN_QUEUE_RX
#define CTQ VIRTIO_CAN_QUEUE_CTRL

#define NOT_SET 0xee /* what a result byte holds before the device writes it */

/* ---- Fake CAN port ---- */

struct fake_port {
	struct cframe sent[512];
	unsigned int nsent;
	unsigned int send_calls;
	unsigned int last_batch;
	int fail_index; /* fail the frame with this overall index (-1: none) */
	int fail_err;
	int call_err; /* the whole send call fails */
	unsigned int starts, stops;
	int start_err;
	int tx_confirm; /* -1 never set */
	unsigned int tx_confirm_calls;
	int tx_confirm_err;
	uint64_t now;
	const uint16_t *watch_used; /* a used->idx to sample at each send call */
	uint16_t used_at_call[16];
	/*
	 * A guest that reposts at once: each send call makes as many chains
	 * available again (the same heads, in the same avail slots) while the
	 * device still holds them, up to refill_left frames.
	 */
	uint16_t *refill_avail_idx; /* avail->idx of the Txq (guest memory) */
	uint16_t *refill_shadow;    /* the rig's copy of it */
	unsigned int refill_left;
};

static int fake_send(void *port, const struct cframe *f, unsigned int n, int *res)
{
	struct fake_port *p = port;

	if (p->watch_used && p->send_calls < 16)
		p->used_at_call[p->send_calls] = le16toh(*p->watch_used);
	p->send_calls++;
	p->last_batch = n;
	if (p->refill_left) {
		unsigned int k = n < p->refill_left ? n : p->refill_left;

		p->refill_left -= k;
		*p->refill_shadow = (uint16_t)(*p->refill_shadow + k);
		__atomic_store_n(p->refill_avail_idx, htole16(*p->refill_shadow), __ATOMIC_RELEASE);
	}
	if (p->call_err)
		return p->call_err;
	for (unsigned int i = 0; i < n; i++) {
		if (p->fail_index >= 0 && (unsigned int)p->fail_index == p->nsent) {
			p->fail_index = -1;
			res[i] = p->fail_err;
			continue;
		}
		assert_true(p->nsent < 512);
		p->sent[p->nsent++] = f[i];
		res[i] = 0;
	}
	return 0;
}

static int fake_start(void *port)
{
	struct fake_port *p = port;

	p->starts++;
	return p->start_err;
}

static int fake_stop(void *port)
{
	struct fake_port *p = port;

	p->stops++;
	return 0;
}

static int fake_set_tx_confirm(void *port, bool on)
{
	struct fake_port *p = port;

	p->tx_confirm_calls++;
	if (p->tx_confirm_err)
		return p->tx_confirm_err;
	p->tx_confirm = on;
	return 0;
}

static uint64_t fake_now(void *port)
{
	return ((struct fake_port *)port)->now;
}

static const struct device_port_ops fake_ops = {
    .send = fake_send,
    .start = fake_start,
    .stop = fake_stop,
    .set_tx_confirm = fake_set_tx_confirm,
    .now_ms = fake_now,
};

/* ---- The test rig: guest memory, three rings, the device ---- */

struct ring {
	struct vq q;
	size_t desc_off, avail_off, used_off;
	uint16_t next_desc;
	uint16_t avail_idx;
	bool running;
};

struct t {
	uint8_t *mem;
	size_t heap;
	struct gmem gm;
	struct ring r[3];
	struct fake_port port;
	struct device *d;
	const struct vu_device *vd;
	unsigned int config_notifies;
};

struct opts {
	bool fd;	      /* offer CAN FD */
	uint64_t features;    /* device bits to negotiate; 0 = all types */
	unsigned int backlog; /* 0 = default */
	unsigned int timeout; /* 0 = default */
	bool rx_not_started;  /* leave the Rxq stopped */
	const struct cfilt *tx_allow;
	uint32_t bitrate, dbitrate;
};

static int note_config_change(void *opaque)
{
	((struct t *)opaque)->config_notifies++;
	return 0;
}

static const struct vu_device_ops *ops(struct t *t)
{
	return t->vd->ops;
}

static void *dev(struct t *t)
{
	return t->vd->opaque;
}

static struct vq *qp(struct t *t, unsigned int qi)
{
	return &t->r[qi].q;
}

static void ring_start(struct t *t, unsigned int qi)
{
	ops(t)->queue_start(dev(t), qp(t, qi));
	t->r[qi].running = true;
}

static void ring_stop(struct t *t, unsigned int qi)
{
	ops(t)->queue_stop(dev(t), qp(t, qi));
	t->r[qi].running = false;
}

static struct t *t_open(void **state, const struct opts *o)
{
	struct device_config cfg = {
	    .name = "can-test",
	    .fd = o->fd,
	    .rx_backlog = o->backlog,
	    .tx_ack_timeout_ms = o->timeout,
	    .tx_allow = o->tx_allow,
	    .bitrate = o->bitrate,
	    .dbitrate = o->dbitrate,
	};
	struct vhost_user_mem_region reg = {
	    .guest_phys_addr = GPA_BASE,
	    .memory_size = MEM_SIZE,
	    .userspace_addr = UVA_BASE,
	    .mmap_offset = 0,
	};
	uint64_t features = o->features ? o->features : DEVICE_F_CLASSIC | DEVICE_F_RTR;
	struct t *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	*state = t;
	if (!o->features && o->fd)
		features |= DEVICE_F_FD;
	t->mem = aligned_alloc(4096, MEM_SIZE);
	assert_non_null(t->mem);
	memset(t->mem, 0, MEM_SIZE);
	t->heap = HEAP_START;
	gmem_init(&t->gm);
	assert_int_equal(gmem_add_host(&t->gm, &reg, t->mem), 0);

	t->port.fail_index = -1;
	t->port.tx_confirm = -1;
	t->port.now = 1000;
	assert_int_equal(device_new(&t->d, &cfg, &fake_ops, &t->port), 0);
	t->vd = device_vu_device(t->d);
	device_set_config_notify(t->d, note_config_change, t);
	assert_int_equal(ops(t)->set_features(dev(t), features | F_VERSION_1), 0);

	for (unsigned int i = 0; i < 3; i++) {
		struct ring *r = &t->r[i];
		struct vq *q = &r->q;

		r->desc_off = i * RING_SPAN;
		r->avail_off = r->desc_off + 4096;
		r->used_off = r->avail_off + 1024;
		vq_init(q, i);
		q->num = QNUM;
		q->desc_uaddr = UVA_BASE + r->desc_off;
		q->avail_uaddr = UVA_BASE + r->avail_off;
		q->used_uaddr = UVA_BASE + r->used_off;
		q->addr_set = true;
		q->indirect = true;
		q->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		assert_true(q->call_fd >= 0);
		assert_int_equal(vq_map(q, &t->gm), 0);
		q->started = true;
		q->enabled = true;
		if (i == RXQ && o->rx_not_started)
			continue;
		ring_start(t, i);
	}
	return t;
}

static int t_teardown(void **state)
{
	struct t *t = *state;

	if (!t)
		return 0;
	for (unsigned int i = 0; i < 3; i++) {
		if (t->r[i].running)
			ring_stop(t, i);
		close(t->r[i].q.call_fd);
	}
	device_free(t->d);
	gmem_clear(&t->gm);
	free(t->mem);
	free(t);
	*state = NULL;
	return 0;
}

/* Guest-side allocation in the shared buffer, 16-byte aligned. */
static uint8_t *galloc(struct t *t, size_t len)
{
	uint8_t *p;

	t->heap = (t->heap + 15) & ~(size_t)15;
	assert_true(t->heap + len <= MEM_SIZE);
	p = t->mem + t->heap;
	t->heap += len;
	return p;
}

static uint64_t gpa_of(struct t *t, const void *p)
{
	return GPA_BASE + (uint64_t)((const uint8_t *)p - t->mem);
}

struct seg {
	void *p;
	uint32_t len;
	bool w;
};

static void make_avail(struct t *t, unsigned int qi, uint16_t head)
{
	struct ring *r = &t->r[qi];
	struct vring_avail *av = (struct vring_avail *)(void *)(t->mem + r->avail_off);

	av->ring[r->avail_idx % QNUM] = htole16(head);
	r->avail_idx++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	av->idx = htole16(r->avail_idx);
}

/* Post a chain of direct descriptors; returns its head. */
static uint16_t post(struct t *t, unsigned int qi, const struct seg *s, unsigned int n)
{
	struct ring *r = &t->r[qi];
	struct vring_desc *table = (struct vring_desc *)(void *)(t->mem + r->desc_off);
	uint16_t head = r->next_desc % QNUM;

	for (unsigned int i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % QNUM);
		uint16_t next = (uint16_t)((idx + 1) % QNUM);
		uint16_t flags = (uint16_t)((s[i].w ? VRING_DESC_F_WRITE : 0) |
					    (i + 1 < n ? VRING_DESC_F_NEXT : 0));

		tdesc_put(&table[idx], gpa_of(t, s[i].p), s[i].len, flags, next);
	}
	r->next_desc = (uint16_t)((head + n) % QNUM);
	make_avail(t, qi, head);
	return head;
}

/* Post a chain as one ring descriptor pointing to an indirect table. */
static uint16_t post_indirect(struct t *t, unsigned int qi, const struct seg *s, unsigned int n)
{
	struct ring *r = &t->r[qi];
	struct vring_desc *table = (struct vring_desc *)(void *)(t->mem + r->desc_off);
	struct vring_desc *ind = (struct vring_desc *)(void *)galloc(t, 16 * n);
	uint16_t head = r->next_desc % QNUM;

	for (unsigned int i = 0; i < n; i++) {
		uint16_t flags = (uint16_t)((s[i].w ? VRING_DESC_F_WRITE : 0) |
					    (i + 1 < n ? VRING_DESC_F_NEXT : 0));

		tdesc_put(&ind[i], gpa_of(t, s[i].p), s[i].len, flags, (uint16_t)(i + 1));
	}
	tdesc_put(&table[head], gpa_of(t, ind), 16 * n, VRING_DESC_F_INDIRECT, 0);
	r->next_desc = (uint16_t)((head + 1) % QNUM);
	make_avail(t, qi, head);
	return head;
}

static void kick(struct t *t, unsigned int qi)
{
	ops(t)->queue_kick(dev(t), qp(t, qi));
}

static struct vring_used *used_ring(struct t *t, unsigned int qi)
{
	return (struct vring_used *)(void *)(t->mem + t->r[qi].used_off);
}

static unsigned int used_count(struct t *t, unsigned int qi)
{
	return le16toh(used_ring(t, qi)->idx);
}

/* The used length of head; fails the test when head was not used exactly once. */
static uint32_t used_len(struct t *t, unsigned int qi, uint16_t head)
{
	struct vring_used *u = used_ring(t, qi);
	unsigned int n = used_count(t, qi);
	unsigned int found = 0;
	uint32_t len = 0;

	for (unsigned int i = 0; i < n; i++) {
		if (le32toh(u->ring[i % QNUM].id) == head) {
			found++;
			len = le32toh(u->ring[i % QNUM].len);
		}
	}
	assert_int_equal(found, 1);
	return len;
}

static bool is_used(struct t *t, unsigned int qi, uint16_t head)
{
	struct vring_used *u = used_ring(t, qi);

	for (unsigned int i = 0; i < used_count(t, qi); i++)
		if (le32toh(u->ring[i % QNUM].id) == head)
			return true;
	return false;
}

/* Interrupts signalled on qi since the last call. */
static uint64_t notified(struct t *t, unsigned int qi)
{
	uint64_t v = 0;

	if (read(t->r[qi].q.call_fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static struct device_stats stats(struct t *t)
{
	struct device_stats s;

	device_get_stats(t->d, &s);
	return s;
}

/* ---- Control requests ---- */

struct ctrl_req {
	uint16_t head;
	uint8_t *result;
};

static struct ctrl_req ctrl_post(struct t *t, uint16_t type)
{
	uint8_t *out = galloc(t, 2);
	uint8_t *in = galloc(t, 1);
	struct seg s[2] = {{out, 2, false}, {in, 1, true}};
	struct ctrl_req c;

	out[0] = (uint8_t)type;
	out[1] = (uint8_t)(type >> 8);
	*in = NOT_SET;
	c.head = post(t, CTQ, s, 2);
	c.result = in;
	return c;
}

/* Send one control request and return its result. */
static uint8_t ctrl(struct t *t, uint16_t type)
{
	struct ctrl_req c = ctrl_post(t, type);

	kick(t, CTQ);
	assert_int_equal(used_len(t, CTQ, c.head), 1);
	return *c.result;
}

static void start_ok(struct t *t)
{
	assert_int_equal(ctrl(t, VIRTIO_CAN_SET_CTRL_MODE_START), VIRTIO_CAN_RESULT_OK);
	assert_true(device_started(t->d));
}

/* ---- TX requests ---- */

struct tx_req {
	uint16_t head;
	uint8_t *buf;
	uint8_t *result;
};

static void put_hdr(uint8_t *b, uint16_t type, uint16_t len, uint32_t flags, uint32_t id)
{
	struct device_hdr h = {.msg_type = type, .length = len, .flags = flags, .can_id = id};

	device_hdr_encode(&h, b);
}

/*
 * Post a TX request the way the Linux driver does: one readable descriptor
 * of `readable` bytes (16 + len when 0) and one 1-byte writable one.
 */
static struct tx_req tx_post_n(struct t *t, uint16_t type, uint16_t len, uint32_t flags,
			       uint32_t id, const uint8_t *data, uint32_t readable)
{
	struct tx_req r;
	struct seg s[2];

	if (readable == 0)
		readable = 16u + len;
	r.buf = galloc(t, readable < 16 ? 16 : readable);
	r.result = galloc(t, 1);
	*r.result = NOT_SET;
	put_hdr(r.buf, type, len, flags, id);
	/* Without data, whatever readable bytes follow the header get a pattern. */
	if (readable > 16 && !data)
		memset(r.buf + 16, 0x3c, readable - 16);
	else if (readable > 16)
		memcpy(r.buf + 16, data, readable - 16 < len ? readable - 16 : len);
	s[0] = (struct seg){r.buf, readable, false};
	s[1] = (struct seg){r.result, 1, true};
	r.head = post(t, TXQ, s, 2);
	return r;
}

static struct tx_req tx_post(struct t *t, uint32_t flags, uint32_t id, uint16_t len,
			     const uint8_t *data)
{
	return tx_post_n(t, VIRTIO_CAN_TX, len, flags, id, data, 0);
}

/* Completed with this result and used length 1. */
static void assert_tx_result(struct t *t, const struct tx_req *r, uint8_t want)
{
	assert_int_equal(used_len(t, TXQ, r->head), 1);
	assert_int_equal(*r->result, want);
}

/* Post one frame, kick, expect NOT_OK and nothing sent. */
static void tx_expect_rejected(struct t *t, uint16_t type, uint32_t flags, uint32_t id,
			       uint16_t len, uint32_t readable)
{
	struct tx_req r;
	struct device_stats before = stats(t);

	r = tx_post_n(t, type, len, flags, id, NULL, readable);
	kick(t, TXQ);
	assert_tx_result(t, &r, VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(t->port.nsent, 0);
	assert_int_equal(stats(t).tx_rejected, before.tx_rejected + 1);
	assert_int_equal(stats(t).tx_ok, before.tx_ok);
}

static void data_pattern(uint8_t *d, unsigned int n, uint8_t seed)
{
	for (unsigned int i = 0; i < n; i++)
		d[i] = (uint8_t)(seed + 7 * i);
}

/* ---- RX ---- */

static uint8_t *rx_post(struct t *t, uint32_t size, uint16_t *head)
{
	uint8_t *b = galloc(t, size);
	struct seg s = {b, size, true};

	memset(b, NOT_SET, size);
	*head = post(t, RXQ, &s, 1);
	return b;
}

static void check_rx_msg(const uint8_t *b, const struct cframe *f)
{
	struct device_hdr h;
	uint32_t flags = 0;

	device_hdr_decode(b, &h);
	if (f->flags & CFRAME_EXT)
		flags |= VIRTIO_CAN_FLAGS_EXTENDED;
	if (f->flags & CFRAME_FD)
		flags |= VIRTIO_CAN_FLAGS_FD;
	if (f->flags & CFRAME_RTR)
		flags |= VIRTIO_CAN_FLAGS_RTR;
	assert_int_equal(h.msg_type, VIRTIO_CAN_RX);
	assert_int_equal(h.length, f->len);
	assert_int_equal(h.flags, flags);
	assert_int_equal(h.can_id, f->id);
	/* Reserved bytes are zero. */
	assert_int_equal(b[4], 0);
	assert_int_equal(b[5], 0);
	assert_int_equal(b[6], 0);
	assert_int_equal(b[7], 0);
	if (!(f->flags & CFRAME_RTR))
		assert_memory_equal(b + 16, f->data, f->len);
}

static struct cframe mkframe(uint32_t id, uint8_t flags, uint8_t len, uint8_t seed)
{
	struct cframe f;

	memset(&f, 0, sizeof(f));
	f.id = id;
	f.flags = flags;
	f.len = len;
	data_pattern(f.data, len, seed);
	return f;
}

/* Deliver one frame into one fresh buffer of size bytes; returns the buffer. */
static uint8_t *rx_one(struct t *t, const struct cframe *f, uint32_t size, uint32_t *len)
{
	uint16_t head;
	uint8_t *b = rx_post(t, size, &head);
	unsigned int before = used_count(t, RXQ);

	kick(t, RXQ);
	/* No frame yet: the buffer is not taken. */
	assert_int_equal(used_count(t, RXQ), before);
	device_rx_frames(t->d, f, 1);
	*len = used_len(t, RXQ, head);
	return b;
}

/* ================= Tests ================= */

/* ---- Device description, features, config ---- */

static void test_device_description(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	const struct vu_device *vd = t->vd;

	assert_int_equal(vd->features, DEVICE_F_CLASSIC | DEVICE_F_RTR | DEVICE_F_LATE_TX_ACK);
	assert_int_equal(vd->num_queues, 3);
	/* The README's "queue sizes are powers of two up to 1024". */
	assert_int_equal(vd->max_queue_size, DEVICE_MAX_QUEUE_SIZE);
	assert_int_equal(DEVICE_MAX_QUEUE_SIZE, 1024);
	assert_int_equal(vd->config_size, 2);
	assert_null(vd->ops->set_config);
	assert_non_null(vd->name);
	assert_false(device_started(t->d));
	assert_int_equal(device_status(t->d), 0);
}

static void test_device_description_fd(void **state)
{
	struct opts o = {.fd = true};
	struct t *t = t_open(state, &o);

	assert_int_equal(t->vd->features, DEVICE_F_CLASSIC | DEVICE_F_FD | DEVICE_F_RTR | DEVICE_F_LATE_TX_ACK);
}

static void test_set_features_refused(void **state)
{
	struct opts o = {.fd = true};
	struct t *t = t_open(state, &o);
	const uint64_t bad[] = {
	    0,
	    F_VERSION_1,
	    DEVICE_F_LATE_TX_ACK | F_VERSION_1,
	    DEVICE_F_RTR | F_VERSION_1,
	    DEVICE_F_RTR | DEVICE_F_FD | F_VERSION_1,
	};

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ops(t)->set_features(dev(t), bad[i]), -EINVAL);
	assert_int_equal(ops(t)->set_features(dev(t), DEVICE_F_FD | F_VERSION_1), 0);
	assert_int_equal(ops(t)->set_features(dev(t), DEVICE_F_CLASSIC), 0);
	assert_int_equal(ops(t)->set_features(dev(t), DEVICE_F_CLASSIC | DEVICE_F_RTR), 0);
}

static void test_set_features_tx_confirm(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	assert_int_equal(t->port.tx_confirm, 0);
	assert_int_equal(ops(t)->set_features(dev(t), DEVICE_F_CLASSIC | DEVICE_F_LATE_TX_ACK), 0);
	assert_int_equal(t->port.tx_confirm, 1);
	assert_int_equal(ops(t)->set_features(dev(t), DEVICE_F_CLASSIC), 0);
	assert_int_equal(t->port.tx_confirm, 0);
	/* A port that cannot confirm refuses LATE_TX_ACK. */
	t->port.tx_confirm_err = -EOPNOTSUPP;
	assert_int_equal(ops(t)->set_features(dev(t), DEVICE_F_CLASSIC | DEVICE_F_LATE_TX_ACK),
			 -EOPNOTSUPP);
}

static void config_read(struct t *t, uint32_t off, uint32_t size, uint8_t *buf)
{
	memset(buf, 0xaa, 32);
	assert_int_equal(ops(t)->get_config(dev(t), off, buf, size), 0);
	/* Nothing written past size. */
	for (uint32_t i = size; i < 32; i++)
		assert_int_equal(buf[i], 0xaa);
}

static void check_config_reads(struct t *t, uint8_t status_lo)
{
	uint8_t buf[32];
	uint8_t want[16] = {status_lo};

	config_read(t, 0, 1, buf);
	assert_memory_equal(buf, want, 1);
	config_read(t, 0, 2, buf);
	assert_memory_equal(buf, want, 2);
	config_read(t, 0, 16, buf);
	assert_memory_equal(buf, want, 16);
	config_read(t, 1, 1, buf);
	assert_memory_equal(buf, want + 1, 1);
	config_read(t, 1, 2, buf);
	assert_memory_equal(buf, want + 1, 2);
	config_read(t, 1, 16, buf);
	assert_memory_equal(buf, want + 1, 15);
	assert_int_equal(buf[15], 0);
	/* Far offsets, including one that would wrap 32 bits. */
	config_read(t, 0xfffffff8u, 16, buf);
	for (unsigned int i = 0; i < 16; i++)
		assert_int_equal(buf[i], 0);
	config_read(t, 0, 0, buf);
}

static void test_config_reads(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	check_config_reads(t, 0);
	device_bus_off(t->d);
	check_config_reads(t, VIRTIO_CAN_S_CTRL_BUSOFF);
}

/* ---- TX rejections: one rule each ---- */

static void test_tx_reject_msg_type(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	start_ok(t);
	tx_expect_rejected(t, VIRTIO_CAN_RX, 0, 0x123, 2, 0);
	tx_expect_rejected(t, 0, 0, 0x123, 2, 0);
}

static void test_tx_reject_unknown_flags(void **state)
{
	struct opts o = {.fd = true};
	struct t *t = t_open(state, &o);

	start_ok(t);
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0x1, 0x123, 2, 0);
	tx_expect_rejected(t, VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_EXTENDED | 0x10000, 0x123, 2, 0);
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0x80000000u, 0x123, 2, 0);
}

static void test_tx_reject_fd_not_negotiated(void **state)
{
	struct opts o = {.fd = true, .features = DEVICE_F_CLASSIC | DEVICE_F_RTR};
	struct t *t = t_open(state, &o);

	start_ok(t);
	tx_expect_rejected(t, VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_FD, 0x123, 12, 0);
	tx_expect_rejected(t, VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_FD, 0x123, 8, 0);
}

static void test_tx_reject_classic_not_negotiated(void **state)
{
	struct opts o = {.fd = true, .features = DEVICE_F_FD};
	struct t *t = t_open(state, &o);

	start_ok(t);
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0, 0x123, 8, 0);
	tx_expect_rejected(t, VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_EXTENDED, 0x123, 0, 0);
}

static void test_tx_reject_rtr_not_negotiated(void **state)
{
	struct opts o = {.features = DEVICE_F_CLASSIC};
	struct t *t = t_open(state, &o);

	start_ok(t);
	tx_expect_rejected(t, VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_RTR, 0x123, 0, 0);
}

static void test_tx_reject_rtr_with_fd(void **state)
{
	struct opts o = {.fd = true};
	struct t *t = t_open(state, &o);

	start_ok(t);
	tx_expect_rejected(t, VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_RTR | VIRTIO_CAN_FLAGS_FD, 0x123, 8,
			   0);
}

static void test_tx_reject_extended_id(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	start_ok(t);
	tx_expect_rejected(t, VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_EXTENDED, 0x20000000, 1, 0);
	tx_expect_rejected(t, VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_EXTENDED, 0xffffffff, 1, 0);
}

static void test_tx_reject_standard_id(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	start_ok(t);
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0, 0x800, 1, 0);
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0, 0x1fffffff, 1, 0);
}

static void test_tx_reject_classic_length(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	start_ok(t);
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0, 0x123, 9, 0);
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0, 0x123, 64, 0);
	/* RTR length is a DLC: above 8 is out of range too. */
	tx_expect_rejected(t, VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_RTR, 0x123, 9, 16);
}

static void test_tx_reject_fd_length(void **state)
{
	struct opts o = {.fd = true};
	struct t *t = t_open(state, &o);
	const uint16_t bad[] = {9, 10, 11, 13, 15, 17, 25, 33, 47, 63, 65};

	start_ok(t);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		tx_expect_rejected(t, VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_FD, 0x123, bad[i], 0);
	/* A length field far beyond anything, with a small buffer. */
	tx_expect_rejected(t, VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_FD, 0x123, 0xffff, 16);
}

/* Hostile: the length field claims more bytes than the buffer holds. */
static void test_tx_reject_length_beyond_buffer(void **state)
{
	struct opts o = {.fd = true};
	struct t *t = t_open(state, &o);

	start_ok(t);
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0, 0x123, 8, 16 + 7);
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0, 0x123, 1, 16);
	tx_expect_rejected(t, VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_FD, 0x123, 64, 16 + 48);
	assert_int_equal(t->port.send_calls, 0);
}

static void test_tx_reject_short_header(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	start_ok(t);
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0, 0x123, 0, 15);
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0, 0x123, 0, 1);
}

static void test_tx_reject_stopped(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	/* Initially stopped. */
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0, 0x123, 2, 0);
	start_ok(t);
	assert_int_equal(ctrl(t, VIRTIO_CAN_SET_CTRL_MODE_STOP), VIRTIO_CAN_RESULT_OK);
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0, 0x123, 2, 0);
}

static void test_tx_reject_bus_off(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	start_ok(t);
	device_bus_off(t->d);
	tx_expect_rejected(t, VIRTIO_CAN_TX, 0, 0x123, 2, 0);
}

/* No writable byte: completed with used length 0, nothing sent. */
static void test_tx_reject_no_result_byte(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	uint8_t *buf;
	uint16_t head;
	struct seg s[1];

	start_ok(t);
	buf = galloc(t, 18);
	put_hdr(buf, VIRTIO_CAN_TX, 2, 0, 0x123);
	s[0] = (struct seg){buf, 18, false};
	head = post(t, TXQ, s, 1);
	kick(t, TXQ);
	assert_int_equal(used_len(t, TXQ, head), 0);
	assert_int_equal(t->port.nsent, 0);
	assert_int_equal(stats(t).tx_rejected, 1);
	/* The queue still works. */
	struct tx_req r = tx_post(t, 0, 0x124, 0, NULL);
	kick(t, TXQ);
	assert_tx_result(t, &r, VIRTIO_CAN_RESULT_OK);
}

/* ---- TX conversions ---- */

static void tx_expect_sent(struct t *t, uint32_t vflags, uint32_t id, uint16_t len,
			   uint8_t want_flags)
{
	uint8_t data[64];
	unsigned int n0 = t->port.nsent;
	struct tx_req r;
	const struct cframe *f;

	data_pattern(data, sizeof(data), (uint8_t)(id + len));
	r = tx_post(t, vflags, id, len, data);
	kick(t, TXQ);
	assert_tx_result(t, &r, VIRTIO_CAN_RESULT_OK);
	assert_int_equal(t->port.nsent, n0 + 1);
	f = &t->port.sent[n0];
	assert_int_equal(f->id, id);
	assert_int_equal(f->flags, want_flags);
	assert_int_equal(f->len, len);
	if (!(want_flags & CFRAME_RTR))
		assert_memory_equal(f->data, data, len);
}

static void test_tx_classic_standard(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	start_ok(t);
	for (uint16_t len = 0; len <= 8; len++)
		tx_expect_sent(t, 0, 0x100u + len, len, 0);
	tx_expect_sent(t, 0, 0x7ff, 8, 0);
	tx_expect_sent(t, 0, 0, 1, 0);
	assert_int_equal(stats(t).tx_ok, 11);
}

static void test_tx_classic_extended(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	start_ok(t);
	tx_expect_sent(t, VIRTIO_CAN_FLAGS_EXTENDED, 0x1fffffff, 8, CFRAME_EXT);
	tx_expect_sent(t, VIRTIO_CAN_FLAGS_EXTENDED, 0x7ff, 3, CFRAME_EXT);
	tx_expect_sent(t, VIRTIO_CAN_FLAGS_EXTENDED, 0, 0, CFRAME_EXT);
}

/* RTR: the length is the DLC; no payload is read or needed. */
static void test_tx_rtr(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct tx_req r;
	const struct cframe *f;

	start_ok(t);
	r = tx_post_n(t, VIRTIO_CAN_TX, 4, VIRTIO_CAN_FLAGS_RTR, 0x321, NULL, 16);
	kick(t, TXQ);
	assert_tx_result(t, &r, VIRTIO_CAN_RESULT_OK);
	assert_int_equal(t->port.nsent, 1);
	f = &t->port.sent[0];
	assert_int_equal(f->id, 0x321);
	assert_int_equal(f->flags, CFRAME_RTR);
	assert_int_equal(f->len, 4);
	for (unsigned int i = 0; i < CFRAME_MAX_DATA; i++)
		assert_int_equal(f->data[i], 0);
	/* The driver's layout (16 + len readable) works as well. */
	tx_expect_sent(t, VIRTIO_CAN_FLAGS_RTR | VIRTIO_CAN_FLAGS_EXTENDED, 0x1234567, 8,
		       CFRAME_RTR | CFRAME_EXT);
}

/* Every FD length, with BRS set on the way out (the device's policy). */
static void test_tx_fd_lengths(void **state)
{
	struct opts o = {.fd = true};
	struct t *t = t_open(state, &o);
	const uint16_t lens[] = {0, 1, 8, 12, 16, 20, 24, 32, 48, 64};

	start_ok(t);
	for (unsigned int i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		tx_expect_sent(t, VIRTIO_CAN_FLAGS_FD, 0x200u + i, lens[i], CFRAME_FD | CFRAME_BRS);
		tx_expect_sent(t, VIRTIO_CAN_FLAGS_FD | VIRTIO_CAN_FLAGS_EXTENDED, 0x1ff00000u + i,
			       lens[i], CFRAME_FD | CFRAME_BRS | CFRAME_EXT);
	}
	/* Classic frames still go out without FD flags. */
	tx_expect_sent(t, 0, 0x12, 8, 0);
}

/* Header and payload cut at odd places; the result byte in a larger buffer. */
static void test_tx_split_layout(void **state)
{
	struct opts o = {.fd = true};
	struct t *t = t_open(state, &o);
	uint8_t msg[16 + 20];
	uint8_t *p[5];
	uint8_t *res = galloc(t, 4);
	struct seg s[6];
	const uint32_t cut[5] = {3, 10, 4, 1, 18};
	uint16_t head;
	size_t off = 0;

	start_ok(t);
	put_hdr(msg, VIRTIO_CAN_TX, 20, VIRTIO_CAN_FLAGS_FD | VIRTIO_CAN_FLAGS_EXTENDED, 0xabcdef);
	data_pattern(msg + 16, 20, 9);
	for (unsigned int i = 0; i < 5; i++) {
		p[i] = galloc(t, cut[i]);
		memcpy(p[i], msg + off, cut[i]);
		off += cut[i];
		s[i] = (struct seg){p[i], cut[i], false};
	}
	assert_int_equal(off, sizeof(msg));
	memset(res, NOT_SET, 4);
	s[5] = (struct seg){res, 4, true};
	head = post(t, TXQ, s, 6);
	kick(t, TXQ);
	assert_int_equal(used_len(t, TXQ, head), 1);
	assert_int_equal(res[0], VIRTIO_CAN_RESULT_OK);
	assert_int_equal(res[1], NOT_SET);
	assert_int_equal(t->port.nsent, 1);
	assert_int_equal(t->port.sent[0].id, 0xabcdef);
	assert_int_equal(t->port.sent[0].len, 20);
	assert_memory_equal(t->port.sent[0].data, msg + 16, 20);
}

static void test_tx_indirect_layout(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	uint8_t *hdr = galloc(t, 16);
	uint8_t *data = galloc(t, 8);
	uint8_t *res = galloc(t, 1);
	struct seg s[3] = {{hdr, 16, false}, {data, 8, false}, {res, 1, true}};
	uint16_t head;

	start_ok(t);
	put_hdr(hdr, VIRTIO_CAN_TX, 8, VIRTIO_CAN_FLAGS_EXTENDED, 0x1000);
	data_pattern(data, 8, 1);
	*res = NOT_SET;
	head = post_indirect(t, TXQ, s, 3);
	kick(t, TXQ);
	assert_int_equal(used_len(t, TXQ, head), 1);
	assert_int_equal(*res, VIRTIO_CAN_RESULT_OK);
	assert_int_equal(t->port.nsent, 1);
	assert_int_equal(t->port.sent[0].flags, CFRAME_EXT);
	assert_memory_equal(t->port.sent[0].data, data, 8);
}

/* All valid frames of a kick go in one send call, in order; one interrupt. */
static void test_tx_batch(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct tx_req r[7];

	start_ok(t);
	(void)notified(t, TXQ);
	for (unsigned int i = 0; i < 7; i++)
		r[i] = (i % 3 == 1) ? tx_post(t, 0, 0x800, 1, NULL) /* invalid id */
				    : tx_post(t, 0, 0x10 + i, 1, NULL);
	kick(t, TXQ);
	assert_int_equal(t->port.send_calls, 1);
	assert_int_equal(t->port.last_batch, 5);
	assert_int_equal(t->port.nsent, 5);
	for (unsigned int i = 0, k = 0; i < 7; i++) {
		if (i % 3 == 1) {
			assert_tx_result(t, &r[i], VIRTIO_CAN_RESULT_NOT_OK);
			continue;
		}
		assert_tx_result(t, &r[i], VIRTIO_CAN_RESULT_OK);
		assert_int_equal(t->port.sent[k++].id, 0x10 + i);
	}
	assert_int_equal(used_count(t, TXQ), 7);
	assert_int_equal(notified(t, TXQ), 1);
}

/*
 * A whole ring of 256 requests (indirect, one descriptor each) in one kick
 * is sent in chunks of 32, each completed before the next is popped, so the
 * guest can refill while the rest goes out; with EVENT_IDX and a guest that
 * took nothing yet, one interrupt in all.
 */
static void test_tx_full_ring_notifies(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	qp(t, TXQ)->event_idx = true;
	t->port.watch_used = &used_ring(t, TXQ)->idx;
	start_ok(t);
	(void)notified(t, TXQ);
	for (unsigned int i = 0; i < QNUM; i++) {
		uint8_t *b = galloc(t, 17);
		struct seg s[2] = {{b, 16, false}, {b + 16, 1, true}};

		put_hdr(b, VIRTIO_CAN_TX, 0, 0, 0x100 + i);
		b[16] = NOT_SET;
		(void)post_indirect(t, TXQ, s, 2);
	}
	kick(t, TXQ);
	assert_int_equal(t->port.nsent, QNUM);
	assert_int_equal(t->port.send_calls, QNUM / 32);
	for (unsigned int i = 0; i < QNUM / 32; i++)
		assert_int_equal(t->port.used_at_call[i], 32 * i);
	assert_int_equal(used_count(t, TXQ), QNUM);
	assert_int_equal(notified(t, TXQ), 1);
}

/* Requests of the Linux driver through indirect tables in one budget: 3 reads each. */
#define TX_PER_WAKEUP ((DEVICE_TX_BUDGET - (DEVICE_MAX_CHAIN + 1)) / 3 + 1)

/*
 * A guest that reposts every request at once keeps the Txq full forever: one
 * kick handles one budget (TX_PER_WAKEUP requests, more than a ring of 256),
 * asks to be resumed, and returns; each resume handles one more budget.
 * Without the budget the first kick never returned while the guest kept up.
 */
static void test_tx_budget_refilling_guest(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct vring_avail *av;

	start_ok(t);
	for (unsigned int i = 0; i < QNUM; i++) {
		uint8_t *b = galloc(t, 17);
		struct seg s[2] = {{b, 16, false}, {b + 16, 1, true}};

		put_hdr(b, VIRTIO_CAN_TX, 0, 0, 0x100 + i);
		(void)post_indirect(t, TXQ, s, 2);
	}
	av = (struct vring_avail *)(void *)(t->mem + t->r[TXQ].avail_off);
	t->port.refill_avail_idx = &av->idx;
	t->port.refill_shadow = &t->r[TXQ].avail_idx;
	t->port.refill_left = 100000;
	kick(t, TXQ);
	assert_int_equal(t->port.nsent, TX_PER_WAKEUP);
	assert_true(qp(t, TXQ)->resume);
	/* The backend's resume: one more budget, and again asks for more. */
	qp(t, TXQ)->resume = false;
	t->port.nsent = 0;
	kick(t, TXQ);
	assert_int_equal(t->port.nsent, TX_PER_WAKEUP);
	assert_true(qp(t, TXQ)->resume);
	/* The guest stops refilling: the resumes drain what is left, then rest. */
	t->port.refill_left = 0;
	for (unsigned int i = 0; i < 4 && qp(t, TXQ)->resume; i++) {
		qp(t, TXQ)->resume = false;
		t->port.nsent = 0;
		kick(t, TXQ);
	}
	assert_false(qp(t, TXQ)->resume);
	assert_false(qp(t, TXQ)->broken);
	assert_int_equal(qp(t, TXQ)->inflight, 0);
}

/*
 * Post a chain of n descriptors (2..DEVICE_MAX_CHAIN + 1) through an indirect
 * table: readable pieces of the 16-byte buffer b, then one writable byte w.
 */
static uint16_t post_split(struct t *t, unsigned int qi, uint8_t *b, uint32_t blen, uint8_t *w,
			   unsigned int n)
{
	struct seg s[DEVICE_MAX_CHAIN + 1];
	unsigned int nr = n - 1;

	assert_true(n >= 2 && n <= DEVICE_MAX_CHAIN + 1 && nr <= blen);
	for (unsigned int i = 0; i < nr; i++) {
		uint32_t from = blen * i / nr, to = blen * (i + 1) / nr;

		s[i] = (struct seg){b + from, to - from, false};
	}
	s[nr] = (struct seg){w, 1, true};
	return post_indirect(t, qi, s, n);
}

/* A TX request of n descriptors for frame id (no data); its result byte in *res. */
static uint16_t tx_post_split(struct t *t, uint32_t id, unsigned int n, uint8_t **res)
{
	uint8_t *b = galloc(t, 16), *w = galloc(t, 1);

	put_hdr(b, VIRTIO_CAN_TX, 0, 0, id);
	*w = NOT_SET;
	if (res)
		*res = w;
	return post_split(t, TXQ, b, 16, w, n);
}

/*
 * A request of DEVICE_MAX_CHAIN descriptors is served; one more breaks the
 * queue (once, logged): no virtio-can request needs that many, and the
 * generic bound (the queue size) let one chain cost the loop 32768 reads.
 */
static void test_tx_chain_bound(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	uint8_t *res;

	start_ok(t);
	(void)tx_post_split(t, 0x10, DEVICE_MAX_CHAIN, &res);
	kick(t, TXQ);
	assert_int_equal(*res, VIRTIO_CAN_RESULT_OK);
	assert_int_equal(t->port.nsent, 1);
	assert_false(qp(t, TXQ)->broken);
	(void)tx_post_split(t, 0x11, DEVICE_MAX_CHAIN + 1, &res);
	kick(t, TXQ);
	assert_true(qp(t, TXQ)->broken);
	assert_int_equal(*res, NOT_SET);
	assert_int_equal(t->port.nsent, 1);
	/* The pointer and DEVICE_MAX_CHAIN buffers read, the next one refused. */
	assert_true(qp(t, TXQ)->walked <= 2 * (DEVICE_MAX_CHAIN + 1));
}

/*
 * The budget counts descriptors read, not chains: a guest that reposts
 * requests of the longest allowed chain at once gets at most DEVICE_TX_BUDGET
 * reads per wakeup, and one whole budget before the queue yields. Counting
 * chains, one wakeup read 256 chains of 17 descriptors (and of 32768 with
 * the queue size as the chain bound).
 */
static void test_tx_budget_counts_descriptors(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	const unsigned int cost = DEVICE_MAX_CHAIN + 1;
	struct vring_avail *av;

	start_ok(t);
	for (unsigned int i = 0; i < QNUM; i++)
		(void)tx_post_split(t, 0x100 + i, DEVICE_MAX_CHAIN, NULL);
	av = (struct vring_avail *)(void *)(t->mem + t->r[TXQ].avail_off);
	t->port.refill_avail_idx = &av->idx;
	t->port.refill_shadow = &t->r[TXQ].avail_idx;
	t->port.refill_left = 100000;
	for (unsigned int k = 0; k < 5; k++) {
		uint64_t before = qp(t, TXQ)->walked;
		uint64_t done;

		qp(t, TXQ)->resume = false;
		t->port.nsent = 0;
		kick(t, TXQ);
		done = qp(t, TXQ)->walked - before;
		assert_true(done <= DEVICE_TX_BUDGET);
		assert_true(done > DEVICE_TX_BUDGET - cost);
		assert_int_equal(done, t->port.nsent * cost);
		assert_true(qp(t, TXQ)->resume);
	}
	assert_true(stats(t).walk_max[TXQ] <= DEVICE_TX_BUDGET);
	assert_false(qp(t, TXQ)->broken);
}

/* The same for RX buffers of the longest allowed chain. */
static void test_rx_budget_counts_descriptors(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct cframe f[300];
	uint64_t before;

	start_ok(t);
	for (unsigned int i = 0; i < QNUM; i++) {
		uint8_t *b = galloc(t, 80);

		/* All of it writable: DEVICE_MAX_CHAIN pieces of 5 bytes. */
		struct seg s[DEVICE_MAX_CHAIN];

		for (unsigned int k = 0; k < DEVICE_MAX_CHAIN; k++)
			s[k] = (struct seg){b + 5 * k, 5, true};
		(void)post_indirect(t, RXQ, s, DEVICE_MAX_CHAIN);
	}
	for (unsigned int i = 0; i < 300; i++)
		f[i] = mkframe(0x200 + i, 0, 8, (uint8_t)i);
	before = qp(t, RXQ)->walked;
	device_rx_frames(t->d, f, 300);
	assert_true(qp(t, RXQ)->walked - before <= DEVICE_RX_BUDGET);
	assert_true(qp(t, RXQ)->walked - before > DEVICE_RX_BUDGET - (DEVICE_MAX_CHAIN + 1));
	assert_true(qp(t, RXQ)->resume);
	assert_true(stats(t).walk_max[RXQ] <= DEVICE_RX_BUDGET);
	assert_true(stats(t).rx_delivered > 0);
}

/* And control requests: DEVICE_CTRL_BUDGET reads, fewer than DEVICE_CTRL_REQS requests. */
static void test_ctrl_budget_counts_descriptors(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	uint64_t before = qp(t, CTQ)->walked;

	for (unsigned int i = 0; i < 20; i++) {
		uint8_t *b = galloc(t, 16), *w = galloc(t, 1);
		uint16_t type =
		    i % 2 ? VIRTIO_CAN_SET_CTRL_MODE_STOP : VIRTIO_CAN_SET_CTRL_MODE_START;

		memset(b, 0, 16);
		b[0] = (uint8_t)type;
		b[1] = (uint8_t)(type >> 8);
		(void)post_split(t, CTQ, b, 16, w, DEVICE_MAX_CHAIN);
	}
	kick(t, CTQ);
	assert_true(qp(t, CTQ)->walked - before <= DEVICE_CTRL_BUDGET);
	assert_true(used_count(t, CTQ) < DEVICE_CTRL_REQS);
	assert_true(used_count(t, CTQ) > 0);
	assert_true(qp(t, CTQ)->resume);
	assert_true(stats(t).walk_max[CTQ] <= DEVICE_CTRL_BUDGET);
}

/*
 * Control requests may each change the link: 16 per wakeup, the rest on the
 * resume, in order.
 */
static void test_ctrl_budget(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct ctrl_req c[20];

	for (unsigned int i = 0; i < 20; i++)
		c[i] = ctrl_post(t, i % 2 ? VIRTIO_CAN_SET_CTRL_MODE_STOP
					  : VIRTIO_CAN_SET_CTRL_MODE_START);
	kick(t, CTQ);
	assert_int_equal(used_count(t, CTQ), 16);
	assert_true(qp(t, CTQ)->resume);
	assert_int_equal(t->port.starts, 8);
	qp(t, CTQ)->resume = false;
	kick(t, CTQ);
	assert_int_equal(used_count(t, CTQ), 20);
	assert_false(qp(t, CTQ)->resume);
	assert_int_equal(t->port.starts, 10);
	assert_int_equal(t->port.stops, 10);
	for (unsigned int i = 0; i < 20; i++)
		assert_int_equal(*c[i].result, VIRTIO_CAN_RESULT_OK);
}

/*
 * Malformed control requests are logged, but a guest sending 100 of them at
 * once gets at most the rate limit's burst of lines into the log.
 */
static void test_ctrl_malformed_log_limited(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	char buf[8192] = {0};
	unsigned int lines = 0;
	FILE *f = tmpfile();
	int saved;

	assert_non_null(f);
	for (unsigned int i = 0; i < 100; i++) {
		uint8_t *out = galloc(t, 1), *in = galloc(t, 1);
		struct seg sg[2] = {{out, 1, false}, {in, 1, true}};

		(void)post(t, CTQ, sg, 2);
	}
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fileno(f), STDERR_FILENO), STDERR_FILENO);
	for (unsigned int i = 0; i < 10; i++) {
		qp(t, CTQ)->resume = false;
		kick(t, CTQ);
	}
	fflush(stderr);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	rewind(f);
	assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
	fclose(f);
	assert_int_equal(used_count(t, CTQ), 100);
	for (const char *p = buf; (p = strstr(p, "shorter than msg_type")); p++)
		lines++;
	assert_int_equal(lines, VLOG_LIMIT_BURST);
}

/* A send error fails that frame only; the controller stays up. */
static void test_tx_send_error(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct tx_req r[3];

	start_ok(t);
	t->port.fail_index = 1;
	t->port.fail_err = -ENOBUFS;
	for (unsigned int i = 0; i < 3; i++)
		r[i] = tx_post(t, 0, 0x20 + i, 0, NULL);
	kick(t, TXQ);
	assert_tx_result(t, &r[0], VIRTIO_CAN_RESULT_OK);
	assert_tx_result(t, &r[1], VIRTIO_CAN_RESULT_NOT_OK);
	assert_tx_result(t, &r[2], VIRTIO_CAN_RESULT_OK);
	assert_int_equal(stats(t).tx_failed, 1);
	assert_int_equal(stats(t).tx_ok, 2);
	assert_int_equal(stats(t).busoff_events, 0);
	assert_true(device_started(t->d));
	assert_int_equal(device_status(t->d), 0);
	/* The next frame goes out. */
	struct tx_req n = tx_post(t, 0, 0x30, 0, NULL);
	kick(t, TXQ);
	assert_tx_result(t, &n, VIRTIO_CAN_RESULT_OK);
	assert_int_equal(t->port.sent[t->port.nsent - 1].id, 0x30);
}

/*
 * --tx-allow: a frame outside the list completes NOT_OK, is counted as
 * denied (not rejected), never reaches the port, and is logged at most once
 * a second; frames inside go out in order around it.
 */
static void test_tx_allow(void **state)
{
	static struct cfilt allow;
	struct opts o = {0};
	struct t *t;
	struct tx_req r[6];
	char why[160], buf[8192] = {0};
	unsigned int lines = 0;
	FILE *f = tmpfile();
	int saved;

	assert_int_equal(cfilt_parse(&allow, "100:700,18DAF100:9FFFFF00", why, sizeof(why)), 0);
	o.tx_allow = &allow;
	t = t_open(state, &o);
	start_ok(t);
	assert_non_null(f);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_int_equal(dup2(fileno(f), STDERR_FILENO), STDERR_FILENO);
	r[0] = tx_post(t, 0, 0x123, 0, NULL);				   /* allowed */
	r[1] = tx_post(t, 0, 0x223, 0, NULL);				   /* denied */
	r[2] = tx_post(t, VIRTIO_CAN_FLAGS_EXTENDED, 0x18daf1aa, 0, NULL); /* allowed */
	r[3] = tx_post(t, VIRTIO_CAN_FLAGS_EXTENDED, 0x18daf2aa, 0, NULL); /* denied */
	r[4] = tx_post(t, VIRTIO_CAN_FLAGS_EXTENDED, 0x123, 0, NULL);	   /* denied: EFF */
	r[5] = tx_post(t, 0, 0x1ff, 0, NULL);				   /* allowed */
	kick(t, TXQ);
	fflush(stderr);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	rewind(f);
	assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
	fclose(f);
	for (unsigned int i = 0; i < 6; i++)
		assert_tx_result(
		    t, &r[i], (i == 1 || i == 3) ? VIRTIO_CAN_RESULT_NOT_OK : VIRTIO_CAN_RESULT_OK);
	assert_int_equal(t->port.nsent, 4);
	assert_int_equal(t->port.sent[0].id, 0x123);
	assert_int_equal(t->port.sent[1].id, 0x18daf1aa);
	assert_int_equal(t->port.sent[2].id, 0x123);
	assert_int_equal(t->port.sent[3].id, 0x1ff);
	assert_int_equal(stats(t).tx_denied, 2);
	assert_int_equal(stats(t).tx_rejected, 0);
	assert_int_equal(stats(t).tx_ok, 4);
	for (const char *p = buf; (p = strstr(p, "denied (not in --tx-allow)")); p++)
		lines++;
	assert_int_equal(lines, 1);
}

/*
 * --bitrate: the guest's frames go to the port no faster than a bus of
 * that speed carries them: with its ring full, at any time t only the
 * frames whose booked slots start within DEVICE_PACE_AHEAD_NS of t are out. The fake clock
 * moves by hand; the bit lengths are cbits' (tested on their own).
 */
static unsigned int paced_expected(const uint64_t *dur, unsigned int n, uint64_t elapsed_ns)
{
	uint64_t booked = 0;
	unsigned int k = 0;

	/* Frame k is popped while the bus is booked up to at most the window ahead. */
	while (k < n && booked <= elapsed_ns + DEVICE_PACE_AHEAD_NS)
		booked += dur[k++];
	return k;
}

static void test_tx_paced(void **state)
{
	struct opts o = {.bitrate = 125000};
	struct t *t = t_open(state, &o);
	enum { N = 24 };
	uint64_t dur[N], total = 0;
	struct tx_req r[N];
	uint8_t data[8];

	start_ok(t);
	for (unsigned int i = 0; i < N; i++) {
		struct cframe f = {.id = 0x100 + i, .len = 8};

		memset(data, (int)i, sizeof(data));
		memcpy(f.data, data, 8);
		dur[i] = cbits_frame_ns(&f, 125000, 0);
		total += dur[i];
		r[i] = tx_post(t, 0, 0x100 + i, 8, data);
	}
	kick(t, TXQ);
	assert_int_equal(t->port.nsent, paced_expected(dur, N, 0));
	assert_true(t->port.nsent < N / 2);
	/* Asleep until the bus has room: a timeout, no kick needed. */
	assert_true(device_timeout_ms(t->d) > 0 && device_timeout_ms(t->d) <= 1);
	for (uint64_t ms = 1; ms <= 40; ms++) {
		t->port.now++;
		device_tick(t->d);
		assert_int_equal(t->port.nsent, paced_expected(dur, N, ms * 1000000u));
	}
	assert_int_equal(t->port.nsent, N);
	for (unsigned int i = 0; i < N; i++)
		assert_tx_result(t, &r[i], VIRTIO_CAN_RESULT_OK);
	/* 24 frames of about 1 ms each at 125 kbit/s: sent over about 22 ms. */
	assert_true(total > 20000000u && total < 30000000u);
	assert_int_equal(device_timeout_ms(t->d), -1);
}

/*
 * A late wake-up (the loop slept 20 ms) while frames waited: their slots
 * stay back to back, up to one window behind the clock, so the bus time
 * lost to the late wake-up is made up for (an idle bus would give none).
 */
static void test_tx_paced_late_wakeup(void **state)
{
	struct opts o = {.bitrate = 125000};
	struct t *t = t_open(state, &o);
	enum { N = 40 };
	uint64_t dur;
	unsigned int n0, want;
	uint8_t data[8] = {0};

	start_ok(t);
	for (unsigned int i = 0; i < N; i++)
		(void)tx_post(t, 0, 0x100, 8, data);
	kick(t, TXQ);
	n0 = t->port.nsent;
	dur = cbits_frame_ns(&t->port.sent[0], 125000, 0);
	t->port.now += 20;
	device_tick(t->d);
	/* Booked from 20 ms - window to 20 ms + window: two windows of frames more. */
	want = n0 + (unsigned int)((2 * DEVICE_PACE_AHEAD_NS) / dur);
	assert_true(t->port.nsent >= want - 1 && t->port.nsent <= want + 1);
	/* Starting from the clock instead would give one window's worth only. */
	assert_true(t->port.nsent > n0 + DEVICE_PACE_AHEAD_NS / dur + 2);
}

/* With LATE_TX_ACK, a paced request completes when its slot is over, not at its echo. */
static void test_tx_paced_late_ack(void **state)
{
	struct opts o = {.features = DEVICE_F_CLASSIC | DEVICE_F_RTR | DEVICE_F_LATE_TX_ACK,
			 .bitrate = 125000};
	struct t *t = t_open(state, &o);
	uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct cframe echo;
	struct tx_req r;
	uint64_t dur;

	start_ok(t);
	r = tx_post(t, 0, 0x123, 8, data);
	kick(t, TXQ);
	assert_int_equal(t->port.nsent, 1);
	echo = t->port.sent[0];
	dur = cbits_frame_ns(&echo, 125000, 0);
	assert_true(dur > 800000u && dur < 1200000u); /* about 1 ms */
	device_tx_confirmed(t->d, &echo);
	assert_int_equal(*r.result, NOT_SET); /* echoed, but the slot is not over */
	assert_int_equal(device_timeout_ms(t->d), 1);
	t->port.now += 1;
	device_tick(t->d);
	assert_tx_result(t, &r, VIRTIO_CAN_RESULT_OK);
	assert_int_equal(stats(t).tx_ok, 1);
	assert_int_equal(device_timeout_ms(t->d), -1);
}

/* ---- --bitrate with LATE_TX_ACK, STOP/START and bus-off ---- */

/*
 * Kick qi as a guest driver does after making chains past old_idx
 * available: only when the device asked for kicks (no NO_NOTIFY flag, or
 * with EVENT_IDX an avail_event the new chains crossed). True when kicked.
 */
static bool guest_kick(struct t *t, unsigned int qi, uint16_t old_idx)
{
	struct vring_used *u = used_ring(t, qi);
	uint16_t new_idx = t->r[qi].avail_idx;
	bool want;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (qp(t, qi)->event_idx) {
		/* avail_event lives after the used ring's last element. */
		uint16_t ev = le16toh(*(volatile uint16_t *)(void *)&u->ring[QNUM]);

		want = vring_need_event(ev, new_idx, old_idx);
	} else {
		want = !(le16toh(u->flags) & VRING_USED_F_NO_NOTIFY);
	}
	if (want)
		kick(t, qi);
	return want;
}

/* Echo what the port sent since *echoed, at once, as vcan does. */
static void echo_sent(struct t *t, unsigned int *echoed)
{
	while (*echoed < t->port.nsent)
		device_tx_confirmed(t->d, &t->port.sent[(*echoed)++]);
}

/* Let ms milliseconds pass one by one, ticking; echo at once when echoed. */
static void run_ms(struct t *t, unsigned int ms, unsigned int *echoed)
{
	for (unsigned int i = 0; i < ms; i++) {
		t->port.now++;
		device_tick(t->d);
		if (echoed)
			echo_sent(t, echoed);
	}
}

/* Every TX request made available was used (each exactly once: used_len). */
static void assert_tx_all_used(struct t *t)
{
	assert_int_equal(used_count(t, TXQ), t->r[TXQ].avail_idx);
	assert_int_equal(qp(t, TXQ)->inflight, 0);
}

/*
 * After START, a new frame: the device asked for kicks again, sends it
 * and nothing else (no frame queued before the stop), and completes it OK.
 */
static void tx_after_start(struct t *t, unsigned int *echoed, bool late)
{
	unsigned int k = t->port.nsent;
	uint16_t old = t->r[TXQ].avail_idx;
	uint8_t data[8] = {9, 9, 9, 9, 9, 9, 9, 9};
	struct tx_req n;

	n = tx_post(t, 0, 0x200, 8, data);
	assert_true(guest_kick(t, TXQ, old));
	if (late)
		echo_sent(t, echoed);
	run_ms(t, 40, late ? echoed : NULL);
	assert_int_equal(t->port.nsent, k + 1);
	assert_int_equal(t->port.sent[k].id, 0x200);
	assert_tx_result(t, &n, VIRTIO_CAN_RESULT_OK);
	assert_tx_all_used(t);
	assert_int_equal(device_timeout_ms(t->d), -1);
}

/*
 * --bitrate=10k: 6 frames of 8 bytes (about 13 ms of bus each) queued;
 * 15 ms later some went out and the rest wait for bus time in the ring.
 * STOP completes every request exactly once: those that went out OK (with
 * LATE_TX_ACK their echoes came), the rest NOT_OK as stopped. A frame
 * queued while stopped is refused at once. Nothing queued before STOP goes
 * out afterwards; after START the guest's next frame is kicked for (kicks
 * were off while the device waited for the bus), goes out and completes.
 */
static void paced_stop_start(void **state, bool event_idx, bool late)
{
	struct opts o = {.features = DEVICE_F_CLASSIC | DEVICE_F_RTR | (late ? DEVICE_F_LATE_TX_ACK : 0),
			 .bitrate = 10000};
	struct t *t = t_open(state, &o);
	enum { N = 6 };
	struct tx_req r[N], x;
	uint8_t data[8] = {0};
	unsigned int echoed = 0, k;
	struct ctrl_req c;
	uint16_t old;

	qp(t, TXQ)->event_idx = event_idx;
	start_ok(t);
	for (unsigned int i = 0; i < N; i++)
		r[i] = tx_post(t, 0, 0x100 + i, 8, data);
	assert_true(guest_kick(t, TXQ, 0));
	run_ms(t, 15, late ? &echoed : NULL);
	if (late)
		echo_sent(t, &echoed);
	k = t->port.nsent;
	assert_true(k >= 2 && k < N);

	c = ctrl_post(t, VIRTIO_CAN_SET_CTRL_MODE_STOP);
	kick(t, CTQ);
	assert_int_equal(*c.result, VIRTIO_CAN_RESULT_OK);
	for (unsigned int i = 0; i < N; i++)
		assert_tx_result(t, &r[i], i < k ? VIRTIO_CAN_RESULT_OK : VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(stats(t).tx_ok, k);
	assert_int_equal(stats(t).tx_stopped, N - k);
	assert_tx_all_used(t);
	/* Nothing waits any more. */
	assert_int_equal(device_timeout_ms(t->d), -1);
	/* Stopped, a frame is refused at once, though the bus is still booked ahead. */
	old = t->r[TXQ].avail_idx;
	x = tx_post(t, 0, 0x300, 8, data);
	assert_true(guest_kick(t, TXQ, old));
	assert_tx_result(t, &x, VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(stats(t).tx_rejected, 1);
	assert_tx_all_used(t);
	run_ms(t, 100, NULL);
	assert_int_equal(t->port.nsent, k);

	start_ok(t);
	tx_after_start(t, &echoed, late);
	assert_int_equal(stats(t).tx_ok, k + 1);
	assert_int_equal(stats(t).tx_stopped, N - k);
}

static void test_tx_paced_stop_start(void **state)
{
	paced_stop_start(state, false, false);
}

static void test_tx_paced_stop_start_event_idx(void **state)
{
	paced_stop_start(state, true, false);
}

static void test_tx_paced_stop_start_late_ack(void **state)
{
	paced_stop_start(state, false, true);
}

static void test_tx_paced_stop_start_late_ack_event_idx(void **state)
{
	paced_stop_start(state, true, true);
}

/*
 * Bus-off with LATE_TX_ACK at 10k: one frame done, one echoed but its slot
 * not over, one sent without echo yet, three waiting for bus time. Bus-off
 * completes each exactly once: the echoed one OK (it was on the bus), the
 * rest NOT_OK as stopped; late echoes and ticks change nothing; a frame
 * queued while bus-off is refused; after the restart's START TX resumes.
 */
static void test_tx_paced_bus_off(void **state)
{
	struct opts o = {.features = DEVICE_F_CLASSIC | DEVICE_F_RTR | DEVICE_F_LATE_TX_ACK,
			 .bitrate = 10000};
	struct t *t = t_open(state, &o);
	enum { N = 6 };
	struct tx_req r[N], x;
	uint8_t data[8] = {0};
	unsigned int echoed = 0;
	uint16_t old;

	qp(t, TXQ)->event_idx = true;
	start_ok(t);
	for (unsigned int i = 0; i < N; i++)
		r[i] = tx_post(t, 0, 0x100 + i, 8, data);
	assert_true(guest_kick(t, TXQ, 0));
	echo_sent(t, &echoed);
	/* Until frame 2 goes out (8 ms before its slot): nobody echoes 1 and 2. */
	for (unsigned int ms = 0; t->port.nsent < 3; ms++) {
		assert_true(ms < 100);
		run_ms(t, 1, NULL);
	}
	assert_int_equal(t->port.nsent, 3);
	assert_tx_result(t, &r[0], VIRTIO_CAN_RESULT_OK);
	device_tx_confirmed(t->d, &t->port.sent[1]);
	assert_int_equal(*r[1].result, NOT_SET); /* its slot ends when frame 2's starts */

	device_bus_off(t->d);
	assert_int_equal(device_status(t->d), VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_tx_result(t, &r[1], VIRTIO_CAN_RESULT_OK);
	for (unsigned int i = 2; i < N; i++)
		assert_tx_result(t, &r[i], VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(stats(t).tx_stopped, N - 2);
	assert_tx_all_used(t);
	assert_int_equal(device_timeout_ms(t->d), -1);
	/* The echo of frame 2 comes late: matched to nothing. */
	device_tx_confirmed(t->d, &t->port.sent[2]);
	run_ms(t, 100, NULL);
	assert_int_equal(t->port.nsent, 3);
	assert_tx_all_used(t);

	/* While bus-off the guest's frames are refused at once, not held. */
	old = t->r[TXQ].avail_idx;
	x = tx_post(t, 0, 0x300, 8, data);
	assert_true(guest_kick(t, TXQ, old));
	assert_tx_result(t, &x, VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(t->port.nsent, 3);

	device_bus_restarted(t->d);
	start_ok(t);
	echoed = t->port.nsent;
	tx_after_start(t, &echoed, true);
	assert_int_equal(stats(t).tx_ok, 3);
	assert_int_equal(stats(t).tx_stopped, N - 2);
}

/*
 * --bitrate=20k --tx-ack-timeout=10: a frame goes to the port up to 8 ms
 * before its slot starts, and its slot lasts about 5.5 ms, so its echo
 * deadline counts from the slot's end. A burst of 10 echoed at once (as
 * vcan does) all completes OK; from the hand-over, most timed out.
 */
static void test_tx_paced_ack_deadline_burst(void **state)
{
	struct opts o = {.features = DEVICE_F_CLASSIC | DEVICE_F_RTR | DEVICE_F_LATE_TX_ACK,
			 .timeout = 10,
			 .bitrate = 20000};
	struct t *t = t_open(state, &o);
	enum { N = 10 };
	struct tx_req r[N];
	uint8_t data[8] = {0};
	unsigned int echoed = 0;

	start_ok(t);
	for (unsigned int i = 0; i < N; i++)
		r[i] = tx_post(t, 0, 0x100 + i, 8, data);
	kick(t, TXQ);
	echo_sent(t, &echoed);
	run_ms(t, 200, &echoed);
	assert_int_equal(t->port.nsent, N);
	for (unsigned int i = 0; i < N; i++)
		assert_tx_result(t, &r[i], VIRTIO_CAN_RESULT_OK);
	assert_int_equal(stats(t).tx_ok, N);
	assert_int_equal(stats(t).tx_timeout, 0);
	assert_tx_all_used(t);
}

/*
 * Without an echo, each paced frame times out tx-ack-timeout after its
 * slot's end (rounded up to the millisecond), not after its hand-over.
 */
static void test_tx_paced_ack_deadline_no_echo(void **state)
{
	struct opts o = {.features = DEVICE_F_CLASSIC | DEVICE_F_RTR | DEVICE_F_LATE_TX_ACK,
			 .timeout = 10,
			 .bitrate = 20000};
	struct t *t = t_open(state, &o);
	uint8_t data[8] = {0};
	struct tx_req r[2];
	uint64_t t0 = t->port.now, dur, end_ms[2];

	start_ok(t);
	r[0] = tx_post(t, 0, 0x100, 8, data);
	r[1] = tx_post(t, 0, 0x100, 8, data);
	kick(t, TXQ);
	/* Both handed over at once: slots [0, d) and [d, 2d), d about 5.5 ms. */
	assert_int_equal(t->port.nsent, 2);
	dur = cbits_frame_ns(&t->port.sent[0], 20000, 0);
	assert_true(dur > 4000000u && dur < 8000000u);
	for (unsigned int i = 0; i < 2; i++)
		end_ms[i] = t0 + ((i + 1) * dur + 999999u) / 1000000u;
	for (unsigned int i = 0; i < 2; i++) {
		run_ms(t, (unsigned int)(end_ms[i] + 10 - 1 - t->port.now), NULL);
		assert_int_equal(*r[i].result, NOT_SET);
		run_ms(t, 1, NULL);
		assert_tx_result(t, &r[i], VIRTIO_CAN_RESULT_NOT_OK);
	}
	assert_int_equal(stats(t).tx_timeout, 2);
	assert_tx_all_used(t);
}

/*
 * One interrupt per kick, not one per chunk of 32: the guest learns of all
 * the completions of a wake-up at once (the call fd written once).
 */
static void test_tx_one_interrupt_per_kick(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct tx_req r[100];

	start_ok(t);
	(void)notified(t, TXQ);
	for (unsigned int i = 0; i < 100; i++)
		r[i] = tx_post(t, 0, 0x200 + i, 0, NULL);
	kick(t, TXQ);
	for (unsigned int i = 0; i < 100; i++)
		assert_tx_result(t, &r[i], VIRTIO_CAN_RESULT_OK);
	assert_int_equal(t->port.nsent, 100);
	assert_int_equal(notified(t, TXQ), 1);
}

/* The whole send call failing fails every frame in it, nothing more. */
static void test_tx_send_call_error(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct tx_req r[2];

	start_ok(t);
	t->port.call_err = -ENETDOWN;
	r[0] = tx_post(t, 0, 0x1, 0, NULL);
	r[1] = tx_post(t, 0, 0x2, 0, NULL);
	kick(t, TXQ);
	assert_tx_result(t, &r[0], VIRTIO_CAN_RESULT_NOT_OK);
	assert_tx_result(t, &r[1], VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(stats(t).tx_failed, 2);
	assert_true(device_started(t->d));
	t->port.call_err = 0;
	struct tx_req n = tx_post(t, 0, 0x3, 0, NULL);
	kick(t, TXQ);
	assert_tx_result(t, &n, VIRTIO_CAN_RESULT_OK);
}

/* Requests already in the ring when the queue starts are processed. */
static void test_tx_processed_on_queue_start(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct tx_req r;

	start_ok(t);
	ring_stop(t, TXQ);
	r = tx_post(t, 0, 0x77, 1, NULL);
	kick(t, TXQ); /* not running: ignored */
	assert_false(is_used(t, TXQ, r.head));
	ring_start(t, TXQ);
	assert_tx_result(t, &r, VIRTIO_CAN_RESULT_OK);
}

/* ---- RX ---- */

static void test_rx_classic(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	uint32_t len;

	start_ok(t);
	for (uint8_t l = 0; l <= 8; l++) {
		struct cframe f = mkframe(0x100u + l, 0, l, l);
		uint8_t *b = rx_one(t, &f, 24, &len);

		assert_int_equal(len, 16u + l);
		check_rx_msg(b, &f);
		/* Bytes past the used length are untouched. */
		if (l < 8)
			assert_int_equal(b[16 + l], NOT_SET);
	}
	assert_int_equal(stats(t).rx_delivered, 9);
}

/*
 * Frames read from the bus in several batches of one port wake-up: each
 * reaches the guest at once, the RX interrupt comes once, at release;
 * outside a hold every batch signals as before.
 */
static void test_rx_one_interrupt_per_wakeup(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	uint16_t head;

	start_ok(t);
	for (unsigned int i = 0; i < 12; i++)
		(void)rx_post(t, 24, &head);
	kick(t, RXQ);
	(void)notified(t, RXQ);
	device_rx_hold(t->d);
	for (unsigned int b = 0; b < 3; b++) {
		struct cframe f[2] = {mkframe(0x100 + 2 * b, 0, 1, 1),
				      mkframe(0x101 + 2 * b, 0, 1, 2)};

		device_rx_frames(t->d, f, 2);
		assert_int_equal(used_count(t, RXQ), 2 * (b + 1)); /* visible at once */
	}
	assert_int_equal(notified(t, RXQ), 0);
	device_rx_release(t->d);
	assert_int_equal(notified(t, RXQ), 1);
	/* Without a hold, one interrupt per call. */
	for (unsigned int b = 0; b < 3; b++) {
		struct cframe f = mkframe(0x200 + b, 0, 1, 3);

		device_rx_frames(t->d, &f, 1);
	}
	assert_int_equal(notified(t, RXQ), 3);
	/* A release with nothing delivered signals nothing. */
	device_rx_hold(t->d);
	device_rx_release(t->d);
	assert_int_equal(notified(t, RXQ), 0);
	assert_int_equal(stats(t).rx_delivered, 9);
}

static void test_rx_extended(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct cframe f = mkframe(0x1fffffff, CFRAME_EXT, 8, 3);
	uint32_t len;
	uint8_t *b = NULL;

	start_ok(t);
	b = rx_one(t, &f, 24, &len);
	assert_int_equal(len, 24);
	check_rx_msg(b, &f);
}

static void test_rx_fd_lengths(void **state)
{
	struct opts o = {.fd = true};
	struct t *t = t_open(state, &o);
	const uint8_t lens[] = {0, 5, 8, 12, 16, 20, 24, 32, 48, 64};
	uint32_t len;

	start_ok(t);
	for (unsigned int i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		/* BRS/ESI from the bus are not reported (no virtio flags). */
		struct cframe f = mkframe(0x300u + i, CFRAME_FD | CFRAME_BRS, lens[i], (uint8_t)i);
		uint8_t *b = rx_one(t, &f, 80, &len);

		assert_int_equal(len, 16u + lens[i]);
		f.flags = CFRAME_FD;
		check_rx_msg(b, &f);
	}
}

/* RTR to the guest: length = DLC, used length 16 + DLC, zeros as payload. */
static void test_rx_rtr(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct cframe f = mkframe(0x44, CFRAME_RTR, 6, 1);
	uint32_t len;
	uint8_t *b;

	start_ok(t);
	memset(f.data, 0x99, sizeof(f.data));
	b = rx_one(t, &f, 24, &len);
	assert_int_equal(len, 22);
	check_rx_msg(b, &f);
	for (unsigned int i = 0; i < 6; i++)
		assert_int_equal(b[16 + i], 0);
	assert_int_equal(b[22], NOT_SET);
}

/* The driver's buffer sizes: 24 without FD, 80 with FD. */
static void test_rx_driver_buffers(void **state)
{
	struct opts o = {.fd = true};
	struct t *t = t_open(state, &o);
	struct cframe c8 = mkframe(0x10, 0, 8, 1);
	struct cframe fd64 = mkframe(0x11, CFRAME_FD, 64, 2);
	uint32_t len;
	uint8_t *b;

	start_ok(t);
	b = rx_one(t, &c8, 24, &len);
	assert_int_equal(len, 24);
	check_rx_msg(b, &c8);
	b = rx_one(t, &fd64, 80, &len);
	assert_int_equal(len, 80);
	check_rx_msg(b, &fd64);
	b = rx_one(t, &c8, 80, &len);
	assert_int_equal(len, 24);
	check_rx_msg(b, &c8);
	assert_int_equal(b[24], NOT_SET);
}

/* A message spread over several writable descriptors. */
static void test_rx_split_buffer(void **state)
{
	struct opts o = {.fd = true};
	struct t *t = t_open(state, &o);
	struct cframe f = mkframe(0x1234, CFRAME_FD | CFRAME_EXT, 24, 5);
	uint32_t cut[4] = {5, 11, 3, 30};
	struct seg s[4];
	uint8_t flat[49];
	uint16_t head;
	size_t off = 0;

	start_ok(t);
	for (unsigned int i = 0; i < 4; i++)
		s[i] = (struct seg){galloc(t, cut[i]), cut[i], true};
	head = post(t, RXQ, s, 4);
	device_rx_frames(t->d, &f, 1);
	assert_int_equal(used_len(t, RXQ, head), 40);
	for (unsigned int i = 0; i < 4; i++) {
		memcpy(flat + off, s[i].p, cut[i]);
		off += cut[i];
	}
	check_rx_msg(flat, &f);
}

/* A buffer too small for the frame: used length 0, that frame dropped. */
static void test_rx_buffer_too_small(void **state)
{
	struct opts o = {.fd = true};
	struct t *t = t_open(state, &o);
	struct cframe f[2] = {mkframe(0x1, CFRAME_FD, 64, 1), mkframe(0x2, 0, 8, 2)};
	uint16_t h1, h2, h3;
	uint8_t *b1, *b2;

	start_ok(t);
	b1 = rx_post(t, 24, &h1);
	b2 = rx_post(t, 24, &h2);
	device_rx_frames(t->d, f, 2);
	assert_int_equal(used_len(t, RXQ, h1), 0);
	assert_int_equal(b1[0], NOT_SET);
	assert_int_equal(used_len(t, RXQ, h2), 24);
	check_rx_msg(b2, &f[1]);
	assert_int_equal(stats(t).rx_dropped_small, 1);
	assert_int_equal(stats(t).rx_delivered, 1);
	/* Fewer than 16 bytes, or a readable-only chain, never crash. */
	(void)rx_post(t, 15, &h3);
	device_rx_frames(t->d, f + 1, 1);
	assert_int_equal(used_len(t, RXQ, h3), 0);
	uint8_t *ro = galloc(t, 80);
	struct seg s = {ro, 80, false};
	uint16_t h4 = post(t, RXQ, &s, 1);
	device_rx_frames(t->d, f + 1, 1);
	assert_int_equal(used_len(t, RXQ, h4), 0);
	assert_int_equal(stats(t).rx_dropped_small, 3);
}

/* With no buffers the backlog holds rx_backlog frames; the newest are dropped. */
static void test_rx_backlog_overflow(void **state)
{
	struct opts o = {.backlog = 4};
	struct t *t = t_open(state, &o);
	struct cframe f[10];
	uint16_t heads[10];
	uint8_t *bufs[10];
	struct device_stats s;

	start_ok(t);
	for (unsigned int i = 0; i < 10; i++)
		f[i] = mkframe(0x100 + i, 0, 1, (uint8_t)i);
	device_rx_frames(t->d, f, 10);
	s = stats(t);
	assert_int_equal(s.rx_dropped_overflow, 6);
	assert_int_equal(s.rx_delivered, 0);
	for (unsigned int i = 0; i < 10; i++)
		bufs[i] = rx_post(t, 24, &heads[i]);
	(void)notified(t, RXQ);
	kick(t, RXQ);
	assert_int_equal(notified(t, RXQ), 1);
	/* The four oldest, in order, and only four buffers taken. */
	assert_int_equal(used_count(t, RXQ), 4);
	for (unsigned int i = 0; i < 4; i++) {
		assert_int_equal(used_len(t, RXQ, heads[i]), 17);
		check_rx_msg(bufs[i], &f[i]);
	}
	s = stats(t);
	assert_int_equal(s.rx_delivered + s.rx_dropped_overflow, 10);
	/* With buffers available, more than the backlog's capacity gets through. */
	device_rx_frames(t->d, f, 6);
	s = stats(t);
	assert_int_equal(s.rx_delivered, 10);
	assert_int_equal(s.rx_dropped_overflow, 6);
	assert_int_equal(s.rx_delivered + s.rx_dropped_overflow, 16);
}

/* A burst larger than the backlog is not dropped while the guest has buffers. */
static void test_rx_burst_with_buffers(void **state)
{
	struct opts o = {.backlog = 2};
	struct t *t = t_open(state, &o);
	struct cframe f[8];
	uint16_t heads[8];

	start_ok(t);
	for (unsigned int i = 0; i < 8; i++) {
		f[i] = mkframe(0x200 + i, 0, 2, (uint8_t)i);
		(void)rx_post(t, 24, &heads[i]);
	}
	(void)notified(t, RXQ);
	device_rx_frames(t->d, f, 8);
	assert_int_equal(stats(t).rx_delivered, 8);
	assert_int_equal(stats(t).rx_dropped_overflow, 0);
	assert_true(notified(t, RXQ) >= 1);
}

/* One interrupt per batch of frames. */
static void test_rx_one_notify_per_batch(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct cframe f[5];
	uint16_t h;

	start_ok(t);
	for (unsigned int i = 0; i < 5; i++) {
		f[i] = mkframe(0x10 + i, 0, 8, (uint8_t)i);
		(void)rx_post(t, 24, &h);
	}
	(void)notified(t, RXQ);
	device_rx_frames(t->d, f, 5);
	assert_int_equal(used_count(t, RXQ), 5);
	assert_int_equal(notified(t, RXQ), 1);
}

/* A whole Rxq of 256 buffers filled by one burst still gets its interrupt. */
static void test_rx_full_ring_notifies(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct cframe f[QNUM];
	uint16_t h;

	start_ok(t);
	for (unsigned int i = 0; i < QNUM; i++) {
		f[i] = mkframe(0x10 + i, 0, 8, (uint8_t)i);
		(void)rx_post(t, 24, &h);
	}
	(void)notified(t, RXQ);
	device_rx_frames(t->d, f, QNUM);
	assert_int_equal(used_count(t, RXQ), QNUM);
	assert_int_equal(stats(t).rx_delivered, QNUM);
	assert_int_equal(notified(t, RXQ), 1);
}

/* Buffers are only taken when there is a frame for them. */
static void test_rx_no_frame_no_pop(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	uint16_t h;

	start_ok(t);
	(void)rx_post(t, 24, &h);
	(void)rx_post(t, 24, &h);
	kick(t, RXQ);
	device_rx_frames(t->d, NULL, 0);
	assert_int_equal(used_count(t, RXQ), 0);
	assert_int_equal(qp(t, RXQ)->inflight, 0);
	assert_int_equal(qp(t, RXQ)->last_avail, 0);
}

static void test_rx_stopped_dropped(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct cframe f = mkframe(0x5, 0, 1, 1);
	uint16_t h;

	(void)rx_post(t, 24, &h);
	device_rx_frames(t->d, &f, 1);
	assert_int_equal(used_count(t, RXQ), 0);
	assert_int_equal(stats(t).rx_dropped_stopped, 1);
	/* Not kept for later either. */
	start_ok(t);
	kick(t, RXQ);
	assert_int_equal(used_count(t, RXQ), 0);
	/* After STOP, and in bus-off, likewise. */
	assert_int_equal(ctrl(t, VIRTIO_CAN_SET_CTRL_MODE_STOP), VIRTIO_CAN_RESULT_OK);
	device_rx_frames(t->d, &f, 1);
	start_ok(t);
	device_bus_off(t->d);
	device_rx_frames(t->d, &f, 1);
	assert_int_equal(used_count(t, RXQ), 0);
	assert_int_equal(stats(t).rx_dropped_stopped, 3);
	assert_int_equal(stats(t).rx_delivered, 0);
}

/* Frames still in the backlog when the controller stops are dropped. */
static void test_rx_backlog_dropped_on_stop(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct cframe f[3] = {mkframe(1, 0, 1, 1), mkframe(2, 0, 1, 2), mkframe(3, 0, 1, 3)};
	uint16_t h;

	start_ok(t);
	device_rx_frames(t->d, f, 3);
	assert_int_equal(ctrl(t, VIRTIO_CAN_SET_CTRL_MODE_STOP), VIRTIO_CAN_RESULT_OK);
	start_ok(t);
	(void)rx_post(t, 24, &h);
	kick(t, RXQ);
	assert_int_equal(used_count(t, RXQ), 0);
	assert_int_equal(stats(t).rx_dropped_stopped, 3);
}

static void test_rx_type_not_negotiated(void **state)
{
	struct opts o = {.fd = true, .features = DEVICE_F_CLASSIC};
	struct t *t = t_open(state, &o);
	struct cframe f[4] = {
	    mkframe(0x1, CFRAME_FD, 12, 1), /* FD not negotiated */
	    mkframe(0x2, CFRAME_RTR, 2, 2), /* RTR not negotiated */
	    mkframe(0x800, 0, 1, 3),	    /* bad standard id */
	    mkframe(0x4, 0, 8, 4),	    /* fine */
	};
	uint16_t h[4];
	uint8_t *b = NULL;

	start_ok(t);
	for (unsigned int i = 0; i < 4; i++)
		b = rx_post(t, 80, &h[i]);
	(void)b;
	device_rx_frames(t->d, f, 4);
	assert_int_equal(stats(t).rx_dropped_type, 3);
	assert_int_equal(stats(t).rx_delivered, 1);
	assert_int_equal(used_count(t, RXQ), 1);
	assert_int_equal(used_len(t, RXQ, h[0]), 24);
}

static void test_rx_classic_not_negotiated(void **state)
{
	struct opts o = {.fd = true, .features = DEVICE_F_FD};
	struct t *t = t_open(state, &o);
	struct cframe f[2] = {mkframe(0x1, 0, 8, 1), mkframe(0x2, CFRAME_FD, 8, 2)};
	uint16_t h;

	start_ok(t);
	(void)rx_post(t, 80, &h);
	device_rx_frames(t->d, f, 2);
	assert_int_equal(stats(t).rx_dropped_type, 1);
	assert_int_equal(used_len(t, RXQ, h), 24);
}

/* Rxq not running: frames wait in the backlog and go out once it starts. */
static void test_rx_queue_not_running(void **state)
{
	struct opts o = {.rx_not_started = true};
	struct t *t = t_open(state, &o);
	struct cframe f[2] = {mkframe(0x61, 0, 3, 1), mkframe(0x62, 0, 4, 2)};
	uint16_t h[2];
	uint8_t *b[2];

	start_ok(t);
	b[0] = rx_post(t, 24, &h[0]);
	b[1] = rx_post(t, 24, &h[1]);
	device_rx_frames(t->d, f, 2);
	assert_int_equal(used_count(t, RXQ), 0);
	ring_start(t, RXQ);
	assert_int_equal(used_len(t, RXQ, h[0]), 19);
	assert_int_equal(used_len(t, RXQ, h[1]), 20);
	check_rx_msg(b[0], &f[0]);
	check_rx_msg(b[1], &f[1]);
}

/* ---- Control ---- */

static void test_ctrl_start_stop_states(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	/* Stopped: STOP is OK and a no-op. */
	assert_int_equal(ctrl(t, VIRTIO_CAN_SET_CTRL_MODE_STOP), VIRTIO_CAN_RESULT_OK);
	assert_false(device_started(t->d));
	assert_int_equal(t->port.stops, 0);
	/* Stopped -> started. */
	start_ok(t);
	assert_int_equal(t->port.starts, 1);
	/* Started: START again is OK. */
	start_ok(t);
	/* Started -> stopped. */
	assert_int_equal(ctrl(t, VIRTIO_CAN_SET_CTRL_MODE_STOP), VIRTIO_CAN_RESULT_OK);
	assert_false(device_started(t->d));
	assert_int_equal(t->port.stops, 1);
	start_ok(t);
	assert_int_equal(t->port.starts, 2);
}

static void test_ctrl_in_bus_off(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	start_ok(t);
	device_bus_off(t->d);
	/* STOP in bus-off: OK, the bit stays. */
	assert_int_equal(ctrl(t, VIRTIO_CAN_SET_CTRL_MODE_STOP), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(device_status(t->d), VIRTIO_CAN_S_CTRL_BUSOFF);
	/* START clears it. */
	start_ok(t);
	assert_int_equal(device_status(t->d), 0);
}

static void test_ctrl_start_port_failure(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	t->port.start_err = -EPERM;
	assert_int_equal(ctrl(t, VIRTIO_CAN_SET_CTRL_MODE_START), VIRTIO_CAN_RESULT_NOT_OK);
	assert_false(device_started(t->d));
	/* From bus-off the bit stays when START fails. */
	device_bus_off(t->d);
	assert_int_equal(ctrl(t, VIRTIO_CAN_SET_CTRL_MODE_START), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(device_status(t->d), VIRTIO_CAN_S_CTRL_BUSOFF);
	t->port.start_err = 0;
	start_ok(t);
	assert_int_equal(device_status(t->d), 0);
}

static void test_ctrl_unknown_type(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	assert_int_equal(ctrl(t, 0x0203), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(ctrl(t, VIRTIO_CAN_TX), VIRTIO_CAN_RESULT_NOT_OK);
	assert_false(device_started(t->d));
	assert_int_equal(t->port.starts, 0);
}

/* Several requests in one kick are handled in order; one interrupt. */
static void test_ctrl_in_order(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct ctrl_req c[3];

	(void)notified(t, CTQ);
	c[0] = ctrl_post(t, VIRTIO_CAN_SET_CTRL_MODE_START);
	c[1] = ctrl_post(t, VIRTIO_CAN_SET_CTRL_MODE_STOP);
	c[2] = ctrl_post(t, VIRTIO_CAN_SET_CTRL_MODE_START);
	kick(t, CTQ);
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(used_len(t, CTQ, c[i].head), 1);
		assert_int_equal(*c[i].result, VIRTIO_CAN_RESULT_OK);
	}
	assert_int_equal(t->port.starts, 2);
	assert_int_equal(t->port.stops, 1);
	assert_true(device_started(t->d));
	assert_true(notified(t, CTQ) >= 1);
}

/* Malformed control requests are completed, not acted on. */
static void test_ctrl_hostile(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	uint8_t *out = galloc(t, 2);
	uint8_t *in = galloc(t, 1);
	struct seg s[2];
	uint16_t h;

	/* No writable byte. */
	out[0] = (uint8_t)VIRTIO_CAN_SET_CTRL_MODE_START;
	out[1] = (uint8_t)(VIRTIO_CAN_SET_CTRL_MODE_START >> 8);
	s[0] = (struct seg){out, 2, false};
	h = post(t, CTQ, s, 1);
	kick(t, CTQ);
	assert_int_equal(used_len(t, CTQ, h), 0);
	assert_false(device_started(t->d));
	/* One readable byte only. */
	*in = NOT_SET;
	s[0] = (struct seg){out, 1, false};
	s[1] = (struct seg){in, 1, true};
	h = post(t, CTQ, s, 2);
	kick(t, CTQ);
	assert_int_equal(used_len(t, CTQ, h), 1);
	assert_int_equal(*in, VIRTIO_CAN_RESULT_NOT_OK);
	assert_false(device_started(t->d));
	/* Only a writable part. */
	*in = NOT_SET;
	h = post(t, CTQ, s + 1, 1);
	kick(t, CTQ);
	assert_int_equal(used_len(t, CTQ, h), 1);
	assert_int_equal(*in, VIRTIO_CAN_RESULT_NOT_OK);
	/* The queue still works; msg_type split over two descriptors too. */
	uint8_t *lo = galloc(t, 1), *hi = galloc(t, 1);
	*lo = (uint8_t)VIRTIO_CAN_SET_CTRL_MODE_START;
	*hi = (uint8_t)(VIRTIO_CAN_SET_CTRL_MODE_START >> 8);
	*in = NOT_SET;
	struct seg s3[3] = {{lo, 1, false}, {hi, 1, false}, {in, 1, true}};
	h = post(t, CTQ, s3, 3);
	kick(t, CTQ);
	assert_int_equal(used_len(t, CTQ, h), 1);
	assert_int_equal(*in, VIRTIO_CAN_RESULT_OK);
	assert_true(device_started(t->d));
}

/* ---- LATE_TX_ACK ---- */

static void test_late_ack_confirm(void **state)
{
	struct opts o = {.features = DEVICE_F_CLASSIC | DEVICE_F_RTR | DEVICE_F_LATE_TX_ACK};
	struct t *t = t_open(state, &o);
	uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct tx_req r;
	struct cframe echo;

	assert_int_equal(t->port.tx_confirm, 1);
	start_ok(t);
	r = tx_post(t, 0, 0x123, 8, data);
	kick(t, TXQ);
	assert_int_equal(t->port.nsent, 1);
	assert_false(is_used(t, TXQ, r.head));
	assert_int_equal(*r.result, NOT_SET);
	assert_int_equal(device_timeout_ms(t->d), DEVICE_DEFAULT_TX_ACK_TIMEOUT_MS);
	/* Echoes of other frames do not complete it. */
	echo = t->port.sent[0];
	echo.data[7] ^= 0xff;
	device_tx_confirmed(t->d, &echo);
	echo = t->port.sent[0];
	echo.id = 0x124;
	device_tx_confirmed(t->d, &echo);
	echo = t->port.sent[0];
	echo.flags |= CFRAME_EXT;
	device_tx_confirmed(t->d, &echo);
	echo = t->port.sent[0];
	echo.len = 7;
	device_tx_confirmed(t->d, &echo);
	assert_false(is_used(t, TXQ, r.head));
	/* Its own echo does. */
	(void)notified(t, TXQ);
	echo = t->port.sent[0];
	device_tx_confirmed(t->d, &echo);
	assert_tx_result(t, &r, VIRTIO_CAN_RESULT_OK);
	assert_int_equal(notified(t, TXQ), 1);
	assert_int_equal(stats(t).tx_ok, 1);
	assert_int_equal(device_timeout_ms(t->d), -1);
	/* A second echo finds nothing. */
	device_tx_confirmed(t->d, &echo);
	assert_int_equal(stats(t).tx_ok, 1);
}

/* Identical frames complete oldest first; out-of-order echoes too. */
static void test_late_ack_order(void **state)
{
	struct opts o = {.features = DEVICE_F_CLASSIC | DEVICE_F_LATE_TX_ACK};
	struct t *t = t_open(state, &o);
	struct tx_req r[4];
	struct cframe a, b;

	start_ok(t);
	r[0] = tx_post(t, 0, 0x1, 1, (const uint8_t *)"a");
	r[1] = tx_post(t, 0, 0x2, 1, (const uint8_t *)"b");
	r[2] = tx_post(t, 0, 0x1, 1, (const uint8_t *)"a");
	r[3] = tx_post(t, 0, 0x3, 1, (const uint8_t *)"c");
	kick(t, TXQ);
	a = t->port.sent[0];
	b = t->port.sent[1];
	device_tx_confirmed(t->d, &b);
	assert_tx_result(t, &r[1], VIRTIO_CAN_RESULT_OK);
	device_tx_confirmed(t->d, &a);
	assert_tx_result(t, &r[0], VIRTIO_CAN_RESULT_OK);
	assert_false(is_used(t, TXQ, r[2].head));
	device_tx_confirmed(t->d, &a);
	assert_tx_result(t, &r[2], VIRTIO_CAN_RESULT_OK);
	assert_false(is_used(t, TXQ, r[3].head));
	/* The one left still times out. */
	t->port.now += DEVICE_DEFAULT_TX_ACK_TIMEOUT_MS;
	device_tick(t->d);
	assert_tx_result(t, &r[3], VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(stats(t).tx_ok, 3);
	assert_int_equal(stats(t).tx_timeout, 1);
}

static void test_late_ack_timeout(void **state)
{
	struct opts o = {.features = DEVICE_F_CLASSIC | DEVICE_F_LATE_TX_ACK, .timeout = 50};
	struct t *t = t_open(state, &o);
	struct tx_req r1, r2;

	start_ok(t);
	assert_int_equal(device_timeout_ms(t->d), -1);
	r1 = tx_post(t, 0, 0x10, 0, NULL);
	kick(t, TXQ);
	t->port.now += 20;
	r2 = tx_post(t, 0, 0x11, 0, NULL);
	kick(t, TXQ);
	assert_int_equal(device_timeout_ms(t->d), 30);
	t->port.now += 29;
	device_tick(t->d);
	assert_false(is_used(t, TXQ, r1.head));
	assert_int_equal(device_timeout_ms(t->d), 1);
	t->port.now += 1;
	assert_int_equal(device_timeout_ms(t->d), 0);
	device_tick(t->d);
	assert_tx_result(t, &r1, VIRTIO_CAN_RESULT_NOT_OK);
	assert_false(is_used(t, TXQ, r2.head));
	assert_int_equal(device_timeout_ms(t->d), 20);
	t->port.now += 1000;
	assert_int_equal(device_timeout_ms(t->d), 0);
	device_tick(t->d);
	assert_tx_result(t, &r2, VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(stats(t).tx_timeout, 2);
	assert_int_equal(stats(t).tx_ok, 0);
	assert_int_equal(device_timeout_ms(t->d), -1);
	/* A late echo after the timeout matches nothing. */
	device_tx_confirmed(t->d, &t->port.sent[0]);
	assert_int_equal(stats(t).tx_ok, 0);
}

/* A send error under LATE_TX_ACK completes at once; nothing waits for it. */
static void test_late_ack_send_error(void **state)
{
	struct opts o = {.features = DEVICE_F_CLASSIC | DEVICE_F_LATE_TX_ACK};
	struct t *t = t_open(state, &o);
	struct tx_req r;

	start_ok(t);
	t->port.fail_index = 0;
	t->port.fail_err = -ENOBUFS;
	r = tx_post(t, 0, 0x10, 0, NULL);
	kick(t, TXQ);
	assert_tx_result(t, &r, VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(device_timeout_ms(t->d), -1);
}

/* Without LATE_TX_ACK the request is OK once handed over, no echo needed. */
static void test_no_late_ack_ok_at_once(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct tx_req r;

	start_ok(t);
	r = tx_post(t, 0, 0x10, 0, NULL);
	kick(t, TXQ);
	assert_tx_result(t, &r, VIRTIO_CAN_RESULT_OK);
	assert_int_equal(device_timeout_ms(t->d), -1);
}

/* The ring size bounds pending requests: a full ring of them is held. */
static void test_late_ack_full_ring(void **state)
{
	struct opts o = {.features = DEVICE_F_CLASSIC | DEVICE_F_LATE_TX_ACK};
	struct t *t = t_open(state, &o);
	struct tx_req r[QNUM / 2];

	start_ok(t);
	/* Each request takes two descriptors: QNUM/2 fill the table. */
	for (unsigned int i = 0; i < QNUM / 2; i++)
		r[i] = tx_post(t, 0, i, 0, NULL);
	kick(t, TXQ);
	assert_int_equal(t->port.nsent, QNUM / 2);
	assert_int_equal(used_count(t, TXQ), 0);
	for (unsigned int i = QNUM / 2; i-- > 0;)
		device_tx_confirmed(t->d, &t->port.sent[i]);
	for (unsigned int i = 0; i < QNUM / 2; i++)
		assert_tx_result(t, &r[i], VIRTIO_CAN_RESULT_OK);
}

static void test_stop_completes_pending(void **state)
{
	struct opts o = {.features = DEVICE_F_CLASSIC | DEVICE_F_LATE_TX_ACK};
	struct t *t = t_open(state, &o);
	struct tx_req r[3];
	struct ctrl_req c;

	start_ok(t);
	for (unsigned int i = 0; i < 3; i++)
		r[i] = tx_post(t, 0, 0x40 + i, 0, NULL);
	kick(t, TXQ);
	assert_int_equal(used_count(t, TXQ), 0);
	c = ctrl_post(t, VIRTIO_CAN_SET_CTRL_MODE_STOP);
	kick(t, CTQ);
	assert_int_equal(*c.result, VIRTIO_CAN_RESULT_OK);
	for (unsigned int i = 0; i < 3; i++)
		assert_tx_result(t, &r[i], VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(stats(t).tx_stopped, 3);
	assert_int_equal(device_timeout_ms(t->d), -1);
	assert_int_equal(t->port.stops, 1);
}

static void test_queue_stop_completes_pending(void **state)
{
	struct opts o = {.features = DEVICE_F_CLASSIC | DEVICE_F_LATE_TX_ACK};
	struct t *t = t_open(state, &o);
	struct tx_req r[2];

	start_ok(t);
	r[0] = tx_post(t, 0, 0x1, 0, NULL);
	r[1] = tx_post(t, 0, 0x2, 0, NULL);
	kick(t, TXQ);
	assert_int_equal(qp(t, TXQ)->inflight, 2);
	ring_stop(t, TXQ);
	/* Everything pushed before queue_stop returned. */
	assert_int_equal(qp(t, TXQ)->inflight, 0);
	assert_tx_result(t, &r[0], VIRTIO_CAN_RESULT_NOT_OK);
	assert_tx_result(t, &r[1], VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(device_timeout_ms(t->d), -1);
	/* A late echo or a tick afterwards touches nothing. */
	device_tx_confirmed(t->d, &t->port.sent[0]);
	device_tick(t->d);
	assert_int_equal(used_count(t, TXQ), 2);
	/* The ring restarts and works. */
	ring_start(t, TXQ);
	struct tx_req n = tx_post(t, 0, 0x3, 0, NULL);
	kick(t, TXQ);
	device_tx_confirmed(t->d, &t->port.sent[2]);
	assert_tx_result(t, &n, VIRTIO_CAN_RESULT_OK);
}

/* ---- Bus-off ---- */

static void test_bus_off_sequence(void **state)
{
	struct opts o = {.features = DEVICE_F_CLASSIC | DEVICE_F_LATE_TX_ACK};
	struct t *t = t_open(state, &o);
	struct tx_req r[2];
	uint8_t cfg[2];

	start_ok(t);
	r[0] = tx_post(t, 0, 0x1, 0, NULL);
	r[1] = tx_post(t, 0, 0x2, 0, NULL);
	kick(t, TXQ);
	assert_int_equal(t->config_notifies, 0);

	device_bus_off(t->d);
	assert_int_equal(device_status(t->d), VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_false(device_started(t->d));
	assert_tx_result(t, &r[0], VIRTIO_CAN_RESULT_NOT_OK);
	assert_tx_result(t, &r[1], VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(t->config_notifies, 1);
	assert_int_equal(stats(t).busoff_events, 1);
	assert_int_equal(ops(t)->get_config(dev(t), 0, cfg, 2), 0);
	assert_int_equal(cfg[0], 1);
	assert_int_equal(cfg[1], 0);

	/* A repeated report changes nothing and tells nobody again. */
	device_bus_off(t->d);
	assert_int_equal(t->config_notifies, 1);
	assert_int_equal(stats(t).busoff_events, 1);

	/* The bus recovering leaves the bit for START to clear. */
	device_bus_restarted(t->d);
	assert_int_equal(device_status(t->d), VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_false(device_started(t->d));

	start_ok(t);
	assert_int_equal(device_status(t->d), 0);
	assert_int_equal(ops(t)->get_config(dev(t), 0, cfg, 2), 0);
	assert_int_equal(cfg[0], 0);

	/* A second bus-off is a new event. */
	device_bus_off(t->d);
	assert_int_equal(t->config_notifies, 2);
	assert_int_equal(stats(t).busoff_events, 2);
}

static void test_bus_off_no_notifier(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);

	device_set_config_notify(t->d, NULL, NULL);
	start_ok(t);
	device_bus_off(t->d);
	assert_int_equal(device_status(t->d), VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_int_equal(t->config_notifies, 0);
	start_ok(t);
	assert_int_equal(device_status(t->d), 0);
}

/* ---- Reset ---- */

static void test_reset(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct cframe f = mkframe(1, 0, 1, 1);

	start_ok(t);
	device_rx_frames(t->d, &f, 1);
	device_bus_off(t->d);
	start_ok(t);
	device_rx_frames(t->d, &f, 1);
	for (unsigned int i = 0; i < 3; i++)
		ring_stop(t, i);
	ops(t)->reset(dev(t));
	assert_false(device_started(t->d));
	assert_int_equal(device_status(t->d), 0);
	assert_int_equal(t->port.stops, 1);
	/* The backlog went with the session. */
	assert_int_equal(ops(t)->set_features(dev(t), DEVICE_F_CLASSIC), 0);
	for (unsigned int i = 0; i < 3; i++)
		ring_start(t, i);
	start_ok(t);
	uint16_t h;
	(void)rx_post(t, 24, &h);
	kick(t, RXQ);
	assert_int_equal(used_count(t, RXQ), 0);
	struct device_stats s = stats(t);
	assert_int_equal(s.rx_delivered + s.rx_dropped_stopped, 2);
}

/* A broken TX ring: the device stops using it and nothing crashes. */
static void test_tx_broken_ring(void **state)
{
	struct opts o = {0};
	struct t *t = t_open(state, &o);
	struct vring_avail *av = (struct vring_avail *)(void *)(t->mem + t->r[TXQ].avail_off);

	start_ok(t);
	av->ring[0] = htole16(QNUM + 5); /* head out of range */
	av->idx = htole16(1);
	kick(t, TXQ);
	assert_true(qp(t, TXQ)->broken);
	assert_int_equal(t->port.send_calls, 0);
	kick(t, TXQ);
	device_tick(t->d);
}

static int fds_at_start;

static int group_setup(void **state)
{
	(void)state;
	fds_at_start = tfd_count();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	/* Every eventfd the tests opened was closed. */
	return tfd_count() == fds_at_start ? 0 : -1;
}

#define T(f) cmocka_unit_test_teardown(f, t_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_device_description),
	    T(test_device_description_fd),
	    T(test_set_features_refused),
	    T(test_set_features_tx_confirm),
	    T(test_config_reads),
	    T(test_tx_reject_msg_type),
	    T(test_tx_reject_unknown_flags),
	    T(test_tx_reject_fd_not_negotiated),
	    T(test_tx_reject_classic_not_negotiated),
	    T(test_tx_reject_rtr_not_negotiated),
	    T(test_tx_reject_rtr_with_fd),
	    T(test_tx_reject_extended_id),
	    T(test_tx_reject_standard_id),
	    T(test_tx_reject_classic_length),
	    T(test_tx_reject_fd_length),
	    T(test_tx_reject_length_beyond_buffer),
	    T(test_tx_reject_short_header),
	    T(test_tx_reject_stopped),
	    T(test_tx_reject_bus_off),
	    T(test_tx_reject_no_result_byte),
	    T(test_tx_classic_standard),
	    T(test_tx_classic_extended),
	    T(test_tx_rtr),
	    T(test_tx_fd_lengths),
	    T(test_tx_split_layout),
	    T(test_tx_indirect_layout),
	    T(test_tx_batch),
	    T(test_tx_full_ring_notifies),
	    T(test_tx_budget_refilling_guest),
	    T(test_ctrl_budget),
	    T(test_tx_chain_bound),
	    T(test_tx_budget_counts_descriptors),
	    T(test_rx_budget_counts_descriptors),
	    T(test_ctrl_budget_counts_descriptors),
	    T(test_ctrl_malformed_log_limited),
	    T(test_tx_send_error),
	    T(test_tx_allow),
	    T(test_tx_paced),
	    T(test_tx_paced_late_ack),
	    T(test_tx_paced_late_wakeup),
	    T(test_tx_paced_stop_start),
	    T(test_tx_paced_stop_start_event_idx),
	    T(test_tx_paced_stop_start_late_ack),
	    T(test_tx_paced_stop_start_late_ack_event_idx),
	    T(test_tx_paced_bus_off),
	    T(test_tx_paced_ack_deadline_burst),
	    T(test_tx_paced_ack_deadline_no_echo),
	    T(test_tx_one_interrupt_per_kick),
	    T(test_tx_send_call_error),
	    T(test_tx_processed_on_queue_start),
	    T(test_rx_classic),
	    T(test_rx_one_interrupt_per_wakeup),
	    T(test_rx_extended),
	    T(test_rx_fd_lengths),
	    T(test_rx_rtr),
	    T(test_rx_driver_buffers),
	    T(test_rx_split_buffer),
	    T(test_rx_buffer_too_small),
	    T(test_rx_backlog_overflow),
	    T(test_rx_burst_with_buffers),
	    T(test_rx_one_notify_per_batch),
	    T(test_rx_full_ring_notifies),
	    T(test_rx_no_frame_no_pop),
	    T(test_rx_stopped_dropped),
	    T(test_rx_backlog_dropped_on_stop),
	    T(test_rx_type_not_negotiated),
	    T(test_rx_classic_not_negotiated),
	    T(test_rx_queue_not_running),
	    T(test_ctrl_start_stop_states),
	    T(test_ctrl_in_bus_off),
	    T(test_ctrl_start_port_failure),
	    T(test_ctrl_unknown_type),
	    T(test_ctrl_in_order),
	    T(test_ctrl_hostile),
	    T(test_late_ack_confirm),
	    T(test_late_ack_order),
	    T(test_late_ack_timeout),
	    T(test_late_ack_send_error),
	    T(test_no_late_ack_ok_at_once),
	    T(test_late_ack_full_ring),
	    T(test_stop_completes_pending),
	    T(test_queue_stop_completes_pending),
	    T(test_bus_off_sequence),
	    T(test_bus_off_no_notifier),
	    T(test_reset),
	    T(test_tx_broken_ring),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
