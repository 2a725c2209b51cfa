/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "guest_driver.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GDRV_TX_BUF (VIRTIO_CAN_HDR_SIZE + VIRTIO_CAN_MAX_FD_LEN)
#define GDRV_DEVICE_BITS ((1ull << 24) - 1)
#define GDRV_NO_SLOT 0xffffu

struct gdrv_tx_slot {
	uint8_t *req;
	uint64_t req_gpa;
	uint8_t *res;
	uint64_t res_gpa;
	bool busy;
};

struct gdrv {
	struct fe *fe;
	struct gdrv_opts opts;
	uint64_t features;
	bool indirect; /* the Linux driver uses indirect tables for 2-part requests */

	uint16_t txq_num, rxq_num;
	struct gdrv_tx_slot *tx;
	uint16_t *tx_head_slot; /* descriptor head -> slot */
	unsigned int tx_pending;

	uint32_t rx_size;
	unsigned int rx_count;
	uint8_t **rx_buf;
	uint64_t *rx_gpa;
	uint16_t *rx_head_buf; /* descriptor head -> buffer */
	unsigned int rx_posted;
	struct virtio_can_hdr rx_last;
	uint32_t rx_last_len;

	uint8_t *ctrl;
	uint64_t ctrl_gpa;
};

void gdrv_opts_default(struct gdrv_opts *o)
{
	memset(o, 0, sizeof(*o));
	fe_start_opts_default(&o->start);
	o->can_features = ~0ull;
}

struct fe *gdrv_fe(struct gdrv *c)
{
	return c->fe;
}

uint64_t gdrv_features(const struct gdrv *c)
{
	return c->features;
}

bool gdrv_has(const struct gdrv *c, unsigned int bit)
{
	return (c->features >> bit) & 1;
}

unsigned int gdrv_tx_pending(const struct gdrv *c)
{
	return c->tx_pending;
}

unsigned int gdrv_rx_posted(const struct gdrv *c)
{
	return c->rx_posted;
}

static int gdrv_add(struct gdrv *c, unsigned int q, const struct fe_sg *out, unsigned int nout,
		     const struct fe_sg *in, unsigned int nin, uint16_t *head)
{
	struct fe_add_opts ao = {.flags = c->indirect ? FE_ADD_INDIRECT : 0};

	return fe_ring_add(c->fe, q, out, nout, in, nin, nout + nin > 1 ? &ao : NULL, head);
}

static int gdrv_post_rx(struct gdrv *c, unsigned int i)
{
	struct fe_sg sg = {.gpa = c->rx_gpa[i], .len = c->rx_size};
	uint16_t head;
	int ret;

	memset(c->rx_buf[i], 0xee, c->rx_size); /* stale bytes must not pass for a frame */
	ret = gdrv_add(c, VIRTIO_CAN_QUEUE_RX, NULL, 0, &sg, 1, &head);
	if (ret < 0)
		return ret;
	c->rx_head_buf[head] = (uint16_t)i;
	c->rx_posted++;
	return 0;
}

/* Allocate every guest buffer once: guest memory is never freed. */
static int gdrv_alloc(struct gdrv *c)
{
	struct fe *f = c->fe;

	c->tx = calloc(c->txq_num, sizeof(*c->tx));
	c->tx_head_slot = calloc(c->txq_num, sizeof(*c->tx_head_slot));
	c->rx_buf = calloc(c->rx_count, sizeof(*c->rx_buf));
	c->rx_gpa = calloc(c->rx_count, sizeof(*c->rx_gpa));
	c->rx_head_buf = calloc(c->rxq_num, sizeof(*c->rx_head_buf));
	if (!c->tx || !c->tx_head_slot || !c->rx_buf || !c->rx_gpa || !c->rx_head_buf)
		return -ENOMEM;
	for (unsigned int i = 0; i < c->txq_num; i++) {
		c->tx[i].req = fe_alloc(f, GDRV_TX_BUF, 8, &c->tx[i].req_gpa);
		c->tx[i].res = fe_alloc(f, 1, 1, &c->tx[i].res_gpa);
		if (!c->tx[i].req || !c->tx[i].res)
			return -ENOMEM;
		c->tx_head_slot[i] = GDRV_NO_SLOT;
	}
	for (unsigned int i = 0; i < c->rx_count; i++) {
		c->rx_buf[i] = fe_alloc(f, c->rx_size, 8, &c->rx_gpa[i]);
		if (!c->rx_buf[i])
			return -ENOMEM;
	}
	c->ctrl = fe_alloc(f, 4, 2, &c->ctrl_gpa);
	return c->ctrl ? 0 : -ENOMEM;
}

/* Connect to path, or (path NULL) take the connected socket conn_fd. */
static int gdrv_session(struct gdrv *c, const char *path, int conn_fd, int timeout_ms)
{
	struct fe_start_opts start = c->opts.start;
	int ret;

	ret = path ? fe_connect(c->fe, path, timeout_ms) : fe_attach(c->fe, conn_fd);
	if (ret < 0)
		return ret;
	start.features =
	    (start.features & ~GDRV_DEVICE_BITS) | (c->opts.can_features & GDRV_DEVICE_BITS);
	ret = fe_start(c->fe, &start);
	if (ret < 0)
		return ret;
	c->features = fe_features(c->fe);
	c->indirect = (c->features & FE_F_INDIRECT_DESC) != 0;
	return 0;
}

static int gdrv_open_on(struct gdrv **out, const char *path, int conn_fd,
			 const struct gdrv_opts *o, int timeout_ms)
{
	struct gdrv *c;
	uint16_t qsize;
	int ret;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (o)
		c->opts = *o;
	else
		gdrv_opts_default(&c->opts);
	ret = fe_new(&c->fe, NULL);
	if (ret < 0)
		goto fail;
	ret = gdrv_session(c, path, conn_fd, timeout_ms);
	if (ret < 0)
		goto fail;
	if (fe_num_rings(c->fe) < VIRTIO_CAN_NUM_QUEUES) {
		ret = -ENOTSUP;
		goto fail;
	}
	qsize = c->opts.start.queue_size ? c->opts.start.queue_size : 256;
	c->txq_num = qsize;
	c->rxq_num = qsize;
	c->rx_size = c->opts.rx_buf_size;
	if (!c->rx_size)
		c->rx_size = VIRTIO_CAN_HDR_SIZE + (gdrv_has(c, VIRTIO_CAN_F_CAN_FD)
							? VIRTIO_CAN_MAX_FD_LEN
							: VIRTIO_CAN_MAX_CLASSIC_LEN);
	c->rx_count = c->opts.rx_buffers && c->opts.rx_buffers < qsize ? c->opts.rx_buffers : qsize;
	ret = gdrv_alloc(c);
	if (ret < 0)
		goto fail;
	for (unsigned int i = 0; i < c->rx_count; i++) {
		ret = gdrv_post_rx(c, i);
		if (ret < 0)
			goto fail;
	}
	fe_ring_kick(c->fe, VIRTIO_CAN_QUEUE_RX, false);
	*out = c;
	return 0;
fail:
	gdrv_close(c);
	return ret;
}

int gdrv_open(struct gdrv **out, const char *path, const struct gdrv_opts *o, int timeout_ms)
{
	return gdrv_open_on(out, path, -1, o, timeout_ms);
}

int gdrv_open_fd(struct gdrv **out, int conn_fd, const struct gdrv_opts *o, int timeout_ms)
{
	return gdrv_open_on(out, NULL, conn_fd, o, timeout_ms);
}

void gdrv_close(struct gdrv *c)
{
	if (!c)
		return;
	fe_free(c->fe);
	free(c->tx);
	free(c->tx_head_slot);
	free(c->rx_buf);
	free(c->rx_gpa);
	free(c->rx_head_buf);
	free(c);
}

int gdrv_reconnect(struct gdrv *c, const char *path, int timeout_ms)
{
	int ret;

	fe_disconnect(c->fe);
	ret = gdrv_session(c, path, -1, timeout_ms);
	if (ret < 0)
		return ret;
	/* Posted buffers stay posted; the new session starts from the used index. */
	fe_ring_kick(c->fe, VIRTIO_CAN_QUEUE_RX, true);
	return 0;
}

int gdrv_ctrl(struct gdrv *c, uint16_t msg_type, int timeout_ms)
{
	struct fe_sg out = {.gpa = c->ctrl_gpa, .len = 2};
	struct fe_sg in = {.gpa = c->ctrl_gpa + 2, .len = 1};
	uint16_t le = htole16(msg_type);
	uint32_t id, len;
	int ret;

	memcpy(c->ctrl, &le, 2);
	c->ctrl[2] = 0xff;
	ret = gdrv_add(c, VIRTIO_CAN_QUEUE_CTRL, &out, 1, &in, 1, NULL);
	if (ret < 0)
		return ret;
	fe_ring_kick(c->fe, VIRTIO_CAN_QUEUE_CTRL, false);
	ret = fe_ring_wait_used(c->fe, VIRTIO_CAN_QUEUE_CTRL, timeout_ms, &id, &len);
	if (ret < 0)
		return ret;
	if (len != 1)
		return -EPROTO;
	return c->ctrl[2];
}

int gdrv_start(struct gdrv *c, int timeout_ms)
{
	return gdrv_ctrl(c, VIRTIO_CAN_SET_CTRL_MODE_START, timeout_ms);
}

int gdrv_stop(struct gdrv *c, int timeout_ms)
{
	return gdrv_ctrl(c, VIRTIO_CAN_SET_CTRL_MODE_STOP, timeout_ms);
}

int gdrv_status(struct gdrv *c)
{
	uint16_t le;
	int ret = fe_get_config(c->fe, 0, &le, sizeof(le));

	return ret < 0 ? ret : le16toh(le);
}

int gdrv_wait_config_change(struct gdrv *c, int timeout_ms)
{
	return fe_wait_config_change(c->fe, timeout_ms);
}

/* Make one request available, no kick: its token, or -errno. */
static int tx_queue(struct gdrv *c, const struct virtio_can_hdr *h, const void *data, uint32_t len)
{
	struct gdrv_tx_slot *s = NULL;
	struct fe_sg out, in;
	unsigned int i;
	uint16_t head;
	int ret;

	if (len > VIRTIO_CAN_MAX_FD_LEN)
		return -EINVAL;
	for (i = 0; i < c->txq_num && !s; i++)
		if (!c->tx[i].busy)
			s = &c->tx[i];
	if (!s)
		return -ENOSPC;
	i--;
	memcpy(s->req, h, VIRTIO_CAN_HDR_SIZE);
	if (len)
		memcpy(s->req + VIRTIO_CAN_HDR_SIZE, data, len);
	*s->res = 0xff;
	out = (struct fe_sg){.gpa = s->req_gpa, .len = VIRTIO_CAN_HDR_SIZE + len};
	in = (struct fe_sg){.gpa = s->res_gpa, .len = 1};
	ret = gdrv_add(c, VIRTIO_CAN_QUEUE_TX, &out, 1, &in, 1, &head);
	if (ret < 0)
		return ret;
	s->busy = true;
	c->tx_head_slot[head] = (uint16_t)i;
	c->tx_pending++;
	return (int)i;
}

int gdrv_tx_raw(struct gdrv *c, const struct virtio_can_hdr *h, const void *data, uint32_t len)
{
	int ret = tx_queue(c, h, data, len);

	if (ret >= 0)
		fe_ring_kick(c->fe, VIRTIO_CAN_QUEUE_TX, false);
	return ret;
}

/* The request for f as the Linux driver makes it; -EINVAL when f cannot be one. */
static int tx_request(const struct cframe *f, struct virtio_can_hdr *h, uint8_t *data)
{
	uint32_t flags = 0;

	if (f->len > CFRAME_MAX_DATA)
		return -EINVAL;
	if (f->flags & CFRAME_EXT)
		flags |= VIRTIO_CAN_FLAGS_EXTENDED;
	if (f->flags & CFRAME_FD)
		flags |= VIRTIO_CAN_FLAGS_FD;
	if (f->flags & CFRAME_RTR)
		flags |= VIRTIO_CAN_FLAGS_RTR;
	memset(h, 0, sizeof(*h));
	h->msg_type = htole16(VIRTIO_CAN_TX);
	h->length = htole16(f->len);
	h->flags = htole32(flags);
	h->can_id = htole32(f->id);
	/* As the Linux driver: the sdu area is always length bytes, RTR included. */
	memset(data, 0, CFRAME_MAX_DATA);
	if (!(f->flags & CFRAME_RTR))
		memcpy(data, f->data, f->len);
	return 0;
}

int gdrv_tx(struct gdrv *c, const struct cframe *f)
{
	struct virtio_can_hdr h;
	uint8_t data[CFRAME_MAX_DATA];
	int ret = tx_request(f, &h, data);

	return ret < 0 ? ret : gdrv_tx_raw(c, &h, data, f->len);
}

int gdrv_tx_many(struct gdrv *c, const struct cframe *f, unsigned int n)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; i < n; i++) {
		struct virtio_can_hdr h;
		uint8_t data[CFRAME_MAX_DATA];

		ret = tx_request(&f[i], &h, data);
		if (ret >= 0)
			ret = tx_queue(c, &h, data, f[i].len);
		if (ret < 0)
			break;
	}
	if (i > 0)
		fe_ring_kick(c->fe, VIRTIO_CAN_QUEUE_TX, false);
	return i > 0 || n == 0 ? (int)i : ret;
}

int gdrv_tx_wait(struct gdrv *c, int timeout_ms, int *token, uint8_t *result)
{
	uint32_t id, len;
	uint16_t slot;
	int ret;

	ret = fe_ring_wait_used(c->fe, VIRTIO_CAN_QUEUE_TX, timeout_ms, &id, &len);
	if (ret < 0)
		return ret;
	slot = id < c->txq_num ? c->tx_head_slot[id] : GDRV_NO_SLOT;
	if (slot == GDRV_NO_SLOT)
		return -EPROTO;
	c->tx_head_slot[id] = GDRV_NO_SLOT;
	c->tx[slot].busy = false;
	c->tx_pending--;
	if (token)
		*token = slot;
	if (result)
		*result = len >= 1 ? *c->tx[slot].res : 0xff;
	return len >= 1 ? 1 : -EPROTO;
}

int gdrv_tx_sync(struct gdrv *c, const struct cframe *f, int timeout_ms)
{
	int token = gdrv_tx(c, f), done;
	uint8_t result;

	if (token < 0)
		return token;
	/* Completions of other requests on the way are consumed. */
	for (;;) {
		int ret = gdrv_tx_wait(c, timeout_ms, &done, &result);

		if (ret < 0)
			return ret;
		if (done == token)
			return result;
	}
}

/* What the Linux driver checks before it accepts an RX frame. */
static int gdrv_rx_check(const struct gdrv *c, const struct virtio_can_hdr *h, uint32_t used)
{
	uint32_t flags = le32toh(h->flags), len = le16toh(h->length);
	uint32_t id = le32toh(h->can_id);

	if (used < VIRTIO_CAN_HDR_SIZE || le16toh(h->msg_type) != VIRTIO_CAN_RX)
		return -EPROTO;
	if (flags & ~VIRTIO_CAN_FLAGS_KNOWN)
		return -EPROTO;
	if ((flags & VIRTIO_CAN_FLAGS_FD) && !gdrv_has(c, VIRTIO_CAN_F_CAN_FD))
		return -EPROTO;
	if ((flags & VIRTIO_CAN_FLAGS_RTR) && !gdrv_has(c, VIRTIO_CAN_F_RTR_FRAMES))
		return -EPROTO;
	if (len >
	    ((flags & VIRTIO_CAN_FLAGS_FD) ? VIRTIO_CAN_MAX_FD_LEN : VIRTIO_CAN_MAX_CLASSIC_LEN))
		return -EPROTO;
	if (id > ((flags & VIRTIO_CAN_FLAGS_EXTENDED) ? 0x1fffffffu : 0x7ffu))
		return -EPROTO;
	if (used != VIRTIO_CAN_HDR_SIZE + len)
		return -EPROTO;
	return 0;
}

int gdrv_rx(struct gdrv *c, struct cframe *f, int timeout_ms)
{
	uint32_t id, used, flags;
	uint16_t i;
	uint8_t *buf;
	int ret, check;

	ret = fe_ring_wait_used(c->fe, VIRTIO_CAN_QUEUE_RX, timeout_ms, &id, &used);
	if (ret < 0)
		return ret;
	if (id >= c->rxq_num)
		return -EPROTO;
	i = c->rx_head_buf[id];
	c->rx_posted--;
	buf = c->rx_buf[i];
	memcpy(&c->rx_last, buf, VIRTIO_CAN_HDR_SIZE);
	c->rx_last_len = used;
	check = gdrv_rx_check(c, &c->rx_last, used);
	if (check == 0) {
		memset(f, 0, sizeof(*f));
		flags = le32toh(c->rx_last.flags);
		f->id = le32toh(c->rx_last.can_id);
		f->len = (uint8_t)le16toh(c->rx_last.length);
		f->flags = (uint8_t)(((flags & VIRTIO_CAN_FLAGS_EXTENDED) ? CFRAME_EXT : 0) |
				     ((flags & VIRTIO_CAN_FLAGS_FD) ? CFRAME_FD : 0) |
				     ((flags & VIRTIO_CAN_FLAGS_RTR) ? CFRAME_RTR : 0));
		if (!(flags & VIRTIO_CAN_FLAGS_RTR))
			memcpy(f->data, buf + VIRTIO_CAN_HDR_SIZE, f->len);
	}
	ret = gdrv_post_rx(c, i);
	if (ret < 0)
		return ret;
	fe_ring_kick(c->fe, VIRTIO_CAN_QUEUE_RX, false);
	return check < 0 ? check : 1;
}

void gdrv_rx_last(const struct gdrv *c, struct virtio_can_hdr *h, uint32_t *used_len)
{
	if (h)
		*h = c->rx_last;
	if (used_len)
		*used_len = c->rx_last_len;
}
