/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The trivial test device (see testdev.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testdev.h"
#include "vhost-user/vlog.h"
#include "vhost-user/vq.h"

/* Bytes moved per step of the transform; chains may be longer. */
#define TESTDEV_CHUNK 512

static void xform_chain(struct vq *q, const struct vq_chain *c)
{
	uint8_t buf[TESTDEV_CHUNK];
	uint64_t todo = c->out_len < c->in_len ? c->out_len : c->in_len;
	uint64_t off = 0;

	while (off < todo) {
		size_t n = todo - off < sizeof(buf) ? (size_t)(todo - off) : sizeof(buf);

		n = vq_iov_read(c->iov, c->nout, (size_t)off, buf, n);
		for (size_t i = 0; i < n; i++)
			buf[i] = testdev_xform(buf[i]);
		vq_iov_write(c->iov + c->nout, c->nin, (size_t)off, buf, n);
		if (n == 0)
			break;
		off += n;
	}
	vq_push(q, c->head, (uint32_t)off);
}

/* Pop everything available, then re-arm kicks and look again. Lock held. */
static void process(struct testdev *d, struct vq *q)
{
	unsigned int qi = q->index;
	struct vq_chain c;

	for (;;) {
		int r;

		while ((r = vq_pop(q, &c)) == 1) {
			d->st.chains[qi]++;
			if (qi == TESTDEV_Q_XFORM) {
				xform_chain(q, &c);
			} else if (d->st.held < TESTDEV_MAX_HELD) {
				d->held[d->st.held++] = c.head;
			} else {
				vq_push(q, c.head, 0);
			}
		}
		if (r < 0) {
			d->st.pop_errors++;
			break;
		}
		if (!vq_set_kick_notify(q, true))
			break;
	}
	vq_notify(q);
}

static void push_held(struct testdev *d, struct vq *q)
{
	for (unsigned int i = 0; i < d->st.held; i++)
		vq_push(q, d->held[i], 0);
	d->st.held = 0;
}

static int op_set_features(void *opaque, uint64_t features)
{
	struct testdev *d = opaque;

	pthread_mutex_lock(&d->lock);
	d->st.features = features;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int op_get_config(void *opaque, uint32_t offset, uint8_t *buf, uint32_t size)
{
	struct testdev *d = opaque;

	memset(buf, 0, size);
	pthread_mutex_lock(&d->lock);
	for (uint32_t i = 0; i < size; i++) {
		uint64_t at = (uint64_t)offset + i;

		if (at < TESTDEV_CONFIG_SIZE)
			buf[i] = d->st.config[at];
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int op_set_config(void *opaque, uint32_t offset, const uint8_t *buf, uint32_t size)
{
	struct testdev *d = opaque;

	if (offset > TESTDEV_CONFIG_SIZE || size > TESTDEV_CONFIG_SIZE - offset)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	memcpy(d->st.config + offset, buf, size);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static void op_queue_start(void *opaque, struct vq *q)
{
	struct testdev *d = opaque;

	if (q->index >= TESTDEV_NUM_QUEUES)
		return;
	pthread_mutex_lock(&d->lock);
	d->q[q->index] = q;
	d->st.starts[q->index]++;
	d->st.running++;
	/*
	 * Buffers made available while the ring was down are not looked at
	 * here: the backend must call queue_kick after queue_start (tested).
	 */
	pthread_mutex_unlock(&d->lock);
}

static void op_queue_stop(void *opaque, struct vq *q)
{
	struct testdev *d = opaque;

	if (q->index >= TESTDEV_NUM_QUEUES)
		return;
	pthread_mutex_lock(&d->lock);
	if (q->index == TESTDEV_Q_HOLD)
		push_held(d, q);
	vq_notify(q);
	d->q[q->index] = NULL;
	d->st.stops[q->index]++;
	d->st.running--;
	pthread_mutex_unlock(&d->lock);
}

static void op_queue_kick(void *opaque, struct vq *q)
{
	struct testdev *d = opaque;

	if (q->index >= TESTDEV_NUM_QUEUES)
		return;
	pthread_mutex_lock(&d->lock);
	d->st.kicks[q->index]++;
	process(d, q);
	pthread_mutex_unlock(&d->lock);
}

static void op_reset(void *opaque)
{
	struct testdev *d = opaque;

	pthread_mutex_lock(&d->lock);
	d->st.resets++;
	d->st.held = 0;
	pthread_mutex_unlock(&d->lock);
}

static const struct vu_device_ops testdev_ops = {
    .set_features = op_set_features,
    .get_config = op_get_config,
    .set_config = op_set_config,
    .queue_start = op_queue_start,
    .queue_stop = op_queue_stop,
    .queue_kick = op_queue_kick,
    .reset = op_reset,
};

void testdev_init(struct testdev *d)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	for (unsigned int i = 0; i < TESTDEV_CONFIG_SIZE; i++)
		d->st.config[i] = (uint8_t)(0x10 + i);
	d->dev = (struct vu_device){
	    .name = "testdev",
	    .features = 0,
	    .num_queues = TESTDEV_NUM_QUEUES,
	    .max_queue_size = 1024,
	    .config_size = TESTDEV_CONFIG_SIZE,
	    .ops = &testdev_ops,
	    .opaque = d,
	};
}

void testdev_fini(struct testdev *d)
{
	pthread_mutex_destroy(&d->lock);
}

void testdev_snapshot(struct testdev *d, struct testdev_stats *out)
{
	pthread_mutex_lock(&d->lock);
	*out = d->st;
	pthread_mutex_unlock(&d->lock);
}

void testdev_release(struct vu_backend *b, void *arg)
{
	struct testdev *d = arg;

	(void)b;
	pthread_mutex_lock(&d->lock);
	if (d->q[TESTDEV_Q_HOLD]) {
		push_held(d, d->q[TESTDEV_Q_HOLD]);
		vq_notify(d->q[TESTDEV_Q_HOLD]);
	}
	pthread_mutex_unlock(&d->lock);
}

void testdev_config_bump(struct vu_backend *b, void *arg)
{
	struct testdev *d = arg;
	int ret;

	pthread_mutex_lock(&d->lock);
	d->st.config[0]++;
	pthread_mutex_unlock(&d->lock);
	ret = vu_backend_config_changed(b);
	pthread_mutex_lock(&d->lock);
	d->st.config_changed = ret;
	pthread_mutex_unlock(&d->lock);
}

/* ------------------------------------------------------------------------ */
/* Frontend side */

#define XF_BUF 64
#define XF_FILL 0xee

struct xf_slot {
	uint8_t *out, *in;
	uint64_t out_gpa, in_gpa;
	uint32_t out_len, in_len;
	uint16_t head;
	bool busy;
};

static int xf_check(struct xf_slot *s, uint32_t len)
{
	uint32_t want = s->out_len < s->in_len ? s->out_len : s->in_len;

	if (len != want) {
		vlog_err("testdev", "used len %u, want %u", len, want);
		return -EBADMSG;
	}
	for (uint32_t i = 0; i < XF_BUF; i++) {
		uint8_t exp = i < len ? testdev_xform(s->out[i]) : XF_FILL;

		if (s->in[i] != exp) {
			vlog_err("testdev", "byte %u of %u: 0x%02x, want 0x%02x", i, len, s->in[i],
				 exp);
			return -EBADMSG;
		}
	}
	return 0;
}

int testdev_fe_xform(struct fe *f, unsigned int n, const struct fe_add_opts *add, unsigned int batch,
		  int timeout_ms)
{
	struct xf_slot *slots;
	unsigned int added = 0, done = 0, busy = 0, seq = 0;
	int ret = 0;

	if (batch == 0)
		batch = 64;
	slots = calloc(batch, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (unsigned int i = 0; i < batch; i++) {
		slots[i].out = fe_alloc(f, XF_BUF, 8, &slots[i].out_gpa);
		slots[i].in = fe_alloc(f, XF_BUF, 8, &slots[i].in_gpa);
		if (!slots[i].out || !slots[i].in) {
			ret = -ENOMEM;
			goto out;
		}
	}

	while (done < n) {
		uint32_t id, len;
		unsigned int k;

		/* Fill every free slot the ring has room for. */
		for (k = 0; k < batch && added < n; k++) {
			struct xf_slot *s = &slots[k];
			struct fe_sg o, i;
			int r;

			if (s->busy)
				continue;
			s->out_len = 1 + (seq * 7) % XF_BUF;
			s->in_len = 1 + (seq * 13) % XF_BUF;
			for (uint32_t b = 0; b < XF_BUF; b++)
				s->out[b] = (uint8_t)(seq + b * 31);
			memset(s->in, XF_FILL, XF_BUF);
			o = (struct fe_sg){s->out_gpa, s->out_len};
			i = (struct fe_sg){s->in_gpa, s->in_len};
			r = fe_ring_add(f, TESTDEV_Q_XFORM, &o, 1, &i, 1, add, &s->head);
			if (r == -ENOSPC && busy > 0)
				break;
			if (r < 0) {
				ret = r;
				goto out;
			}
			s->busy = true;
			busy++;
			added++;
			seq++;
		}
		ret = fe_ring_kick(f, TESTDEV_Q_XFORM, false);
		if (ret < 0)
			goto out;

		/* Take back at least one, and whatever else is there. */
		ret = fe_ring_wait_used(f, TESTDEV_Q_XFORM, timeout_ms, &id, &len);
		while (ret == 1) {
			for (k = 0; k < batch; k++)
				if (slots[k].busy && slots[k].head == id)
					break;
			if (k == batch) {
				vlog_err("testdev", "used id %u is none of ours", id);
				ret = -EBADMSG;
				goto out;
			}
			ret = xf_check(&slots[k], len);
			if (ret < 0)
				goto out;
			slots[k].busy = false;
			busy--;
			done++;
			ret = fe_ring_get_used(f, TESTDEV_Q_XFORM, &id, &len);
		}
		if (ret < 0)
			goto out;
	}
	ret = 0;
out:
	free(slots);
	return ret;
}

bool testdev_all_running(struct vu_backend *b, void *arg)
{
	struct testdev_stats st;

	(void)b;
	testdev_snapshot(arg, &st);
	return st.running == TESTDEV_NUM_QUEUES;
}
