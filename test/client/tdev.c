/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The trivial test device (see tdev.h). */
#include <errno.h>
#include <string.h>

#include "tdev.h"
#include "vq.h"

/* Bytes moved per step of the transform; chains may be longer. */
#define TDEV_CHUNK 512

static void xform_chain(struct vq *q, const struct vq_chain *c)
{
	uint8_t buf[TDEV_CHUNK];
	uint64_t todo = c->out_len < c->in_len ? c->out_len : c->in_len;
	uint64_t off = 0;

	while (off < todo) {
		size_t n = todo - off < sizeof(buf) ? (size_t)(todo - off) : sizeof(buf);

		n = vq_iov_read(c->iov, c->nout, (size_t)off, buf, n);
		for (size_t i = 0; i < n; i++)
			buf[i] = tdev_xform(buf[i]);
		vq_iov_write(c->iov + c->nout, c->nin, (size_t)off, buf, n);
		if (n == 0)
			break;
		off += n;
	}
	vq_push(q, c->head, (uint32_t)off);
}

/* Pop everything available, then re-arm kicks and look again. Lock held. */
static void process(struct tdev *d, struct vq *q)
{
	unsigned int qi = q->index;
	struct vq_chain c;

	for (;;) {
		int r;

		while ((r = vq_pop(q, &c)) == 1) {
			d->st.chains[qi]++;
			if (qi == TDEV_Q_XFORM) {
				xform_chain(q, &c);
			} else if (d->st.held < TDEV_MAX_HELD) {
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

static void push_held(struct tdev *d, struct vq *q)
{
	for (unsigned int i = 0; i < d->st.held; i++)
		vq_push(q, d->held[i], 0);
	d->st.held = 0;
}

static int op_set_features(void *opaque, uint64_t features)
{
	struct tdev *d = opaque;

	pthread_mutex_lock(&d->lock);
	d->st.features = features;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int op_get_config(void *opaque, uint32_t offset, uint8_t *buf, uint32_t size)
{
	struct tdev *d = opaque;

	memset(buf, 0, size);
	pthread_mutex_lock(&d->lock);
	for (uint32_t i = 0; i < size; i++) {
		uint64_t at = (uint64_t)offset + i;

		if (at < TDEV_CONFIG_SIZE)
			buf[i] = d->st.config[at];
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int op_set_config(void *opaque, uint32_t offset, const uint8_t *buf, uint32_t size)
{
	struct tdev *d = opaque;

	if (offset > TDEV_CONFIG_SIZE || size > TDEV_CONFIG_SIZE - offset)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	memcpy(d->st.config + offset, buf, size);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static void op_queue_start(void *opaque, struct vq *q)
{
	struct tdev *d = opaque;

	if (q->index >= TDEV_NUM_QUEUES)
		return;
	pthread_mutex_lock(&d->lock);
	d->q[q->index] = q;
	d->st.starts[q->index]++;
	d->st.running++;
	/* Buffers made available while the ring was down got no kick. */
	process(d, q);
	pthread_mutex_unlock(&d->lock);
}

static void op_queue_stop(void *opaque, struct vq *q)
{
	struct tdev *d = opaque;

	if (q->index >= TDEV_NUM_QUEUES)
		return;
	pthread_mutex_lock(&d->lock);
	if (q->index == TDEV_Q_HOLD)
		push_held(d, q);
	vq_notify(q);
	d->q[q->index] = NULL;
	d->st.stops[q->index]++;
	d->st.running--;
	pthread_mutex_unlock(&d->lock);
}

static void op_queue_kick(void *opaque, struct vq *q)
{
	struct tdev *d = opaque;

	if (q->index >= TDEV_NUM_QUEUES)
		return;
	pthread_mutex_lock(&d->lock);
	d->st.kicks[q->index]++;
	process(d, q);
	pthread_mutex_unlock(&d->lock);
}

static void op_reset(void *opaque)
{
	struct tdev *d = opaque;

	pthread_mutex_lock(&d->lock);
	d->st.resets++;
	d->st.held = 0;
	pthread_mutex_unlock(&d->lock);
}

static const struct vu_device_ops tdev_ops = {
    .set_features = op_set_features,
    .get_config = op_get_config,
    .set_config = op_set_config,
    .queue_start = op_queue_start,
    .queue_stop = op_queue_stop,
    .queue_kick = op_queue_kick,
    .reset = op_reset,
};

void tdev_init(struct tdev *d)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	for (unsigned int i = 0; i < TDEV_CONFIG_SIZE; i++)
		d->st.config[i] = (uint8_t)(0x10 + i);
	d->dev = (struct vu_device){
	    .name = "tdev",
	    .features = 0,
	    .num_queues = TDEV_NUM_QUEUES,
	    .max_queue_size = 1024,
	    .config_size = TDEV_CONFIG_SIZE,
	    .ops = &tdev_ops,
	    .opaque = d,
	};
}

void tdev_fini(struct tdev *d)
{
	pthread_mutex_destroy(&d->lock);
}

void tdev_snapshot(struct tdev *d, struct tdev_stats *out)
{
	pthread_mutex_lock(&d->lock);
	*out = d->st;
	pthread_mutex_unlock(&d->lock);
}

void tdev_release(struct vu_backend *b, void *arg)
{
	struct tdev *d = arg;

	(void)b;
	pthread_mutex_lock(&d->lock);
	if (d->q[TDEV_Q_HOLD]) {
		push_held(d, d->q[TDEV_Q_HOLD]);
		vq_notify(d->q[TDEV_Q_HOLD]);
	}
	pthread_mutex_unlock(&d->lock);
}

void tdev_config_bump(struct vu_backend *b, void *arg)
{
	struct tdev *d = arg;
	int ret;

	pthread_mutex_lock(&d->lock);
	d->st.config[0]++;
	pthread_mutex_unlock(&d->lock);
	ret = vu_backend_config_changed(b);
	pthread_mutex_lock(&d->lock);
	d->st.config_changed = ret;
	pthread_mutex_unlock(&d->lock);
}
