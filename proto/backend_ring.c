/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The backend's rings.
 *
 * Rings: a ring is "started" once its kick fd has arrived and its addresses
 * translate through the current memory; it is "enabled" by SET_VRING_ENABLE
 * (or at start when VHOST_USER_F_PROTOCOL_FEATURES is not negotiated). The
 * device owns a ring (queue_start .. queue_stop) exactly while it is both.
 * Anything that invalidates a ring (ENABLE 0, GET_VRING_BASE, new memory,
 * reset, disconnect) calls queue_stop first, so the device can push back
 * what it holds while the old memory is still mapped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "backend_priv.h"
#include "vhost-user/vlog.h"

void vub_ring_sync(struct vu_backend *b, unsigned int i)
{
	struct vq *q = &b->vqs[i];
	const struct vu_device_ops *ops = b->dev->ops;
	bool want = q->started && q->enabled;

	if (want && !b->active[i]) {
		vlog_debug(q->tag, "started");
		b->active[i] = true;
		if (ops && ops->queue_start)
			ops->queue_start(b->dev->opaque, q);
		/* Process what is already there, and make up for lost calls. */
		if (ops && ops->queue_kick)
			ops->queue_kick(b->dev->opaque, q);
		vq_notify_force(q);
	} else if (!want && b->active[i]) {
		vlog_debug(q->tag, "stopped");
		if (ops && ops->queue_stop)
			ops->queue_stop(b->dev->opaque, q);
		b->active[i] = false;
	}
}

/* Leave the started state (queue_stop first); keep the kick fd. */
void vub_ring_halt(struct vu_backend *b, unsigned int i)
{
	struct vq *q = &b->vqs[i];

	q->started = false;
	vub_ring_sync(b, i);
	if (q->kick_fd >= 0)
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, q->kick_fd, NULL);
	vq_unmap(q);
}

/* Start the ring if everything it needs is there. 0 when started or not ready yet. */
int vub_ring_try_start(struct vu_backend *b, unsigned int i)
{
	struct vq *q = &b->vqs[i];
	/*
	 * Edge-triggered: a kick fd that stays readable (a pipe whose writer
	 * hung up, a semaphore eventfd with a huge count) wakes us once, not on
	 * every turn of the loop.
	 */
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = VU_EV_KICK | i};
	int ret;

	if (q->started || q->kick_fd < 0 || !q->addr_set || q->num == 0 || b->mem.nregions == 0)
		return 0;
	ret = vq_map(q, &b->mem);
	if (ret)
		return ret;
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, q->kick_fd, &ev) != 0) {
		ret = -errno;
		/* A frontend can send an fd epoll refuses (a regular file) at will. */
		vlog_limited(&b->ring_limit[i], VLOG_ERR, q->tag, "cannot watch kick fd: %s",
			     strerror(errno));
		vq_unmap(q);
		return ret;
	}
	q->started = true;
	if (!(b->features & VU_F_PROTOCOL_FEATURES))
		q->enabled = true;
	vub_ring_sync(b, i);
	return 0;
}

/* Before memory changes: take every ring away from the device. */
void vub_rings_suspend(struct vu_backend *b)
{
	for (unsigned int i = 0; i < vu_num_queues(b); i++)
		vub_ring_halt(b, i);
}

/* After memory changed: translate again and restart what can run. */
void vub_rings_resume(struct vu_backend *b)
{
	for (unsigned int i = 0; i < vu_num_queues(b); i++) {
		int ret = vub_ring_try_start(b, i);

		if (ret)
			vlog_limited(&b->log_limit, VLOG_WARN, b->vqs[i].tag,
				     "stays stopped after the memory change: %s", strerror(-ret));
	}
}

/* Stop every ring, close its fds, forget its state. */
void vub_rings_reset(struct vu_backend *b)
{
	for (unsigned int i = 0; i < vu_num_queues(b); i++) {
		struct vq *q = &b->vqs[i];

		vub_ring_halt(b, i);
		vub_close(&q->kick_fd);
		vub_close(&q->call_fd);
		vub_close(&q->err_fd);
	}
}

void vub_rings_init(struct vu_backend *b)
{
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		vq_init(&b->vqs[i], i);
		b->vqs[i].wake_fd = b->wake_fd;
		b->vqs[i].log_limit = &b->ring_limit[i];
		b->active[i] = false;
	}
}

static struct vq *vring_index(struct vu_backend *b, struct vu_msg *m, uint64_t index)
{
	if (index >= vu_num_queues(b)) {
		vub_reject(b, m, -EINVAL, "ring %llu out of range (%u rings)",
			   (unsigned long long)index, vu_num_queues(b));
		return NULL;
	}
	return &b->vqs[index];
}

int vub_h_set_vring_num(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_vring_state *s = &m->payload.state;
	uint32_t max = b->dev->max_queue_size;
	struct vq *q;

	(void)reply;
	q = vring_index(b, m, s->index);
	if (!q)
		return -EINVAL;
	if (max == 0 || max > VHOST_USER_MAX_QUEUE_SIZE)
		max = VHOST_USER_MAX_QUEUE_SIZE;
	if (s->num == 0 || s->num > max || (s->num & (s->num - 1)))
		return vub_reject(b, m, -EINVAL, "ring %u: size %u is not a power of two in 1..%u",
				  s->index, s->num, max);
	if (q->started)
		return vub_reject(b, m, -EBUSY, "ring %u is running", s->index);
	q->num = (uint16_t)s->num;
	return 0;
}

int vub_h_set_vring_base(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_vring_state *s = &m->payload.state;
	struct vq *q;

	(void)reply;
	q = vring_index(b, m, s->index);
	if (!q)
		return -EINVAL;
	if (s->num > 0xffff)
		return vub_reject(b, m, -EINVAL, "ring %u: base %u does not fit a split ring",
				  s->index, s->num);
	if (q->started)
		return vub_reject(b, m, -EBUSY, "ring %u is running", s->index);
	q->last_avail = (uint16_t)s->num;
	q->inflight = 0;
	return 0;
}

int vub_h_get_vring_base(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_vring_state *s = &m->payload.state;
	struct vq *q;

	q = vring_index(b, m, s->index);
	if (!q)
		return -EINVAL;
	vub_ring_halt(b, s->index);
	vub_close(&q->kick_fd);
	reply->hdr.size = sizeof(reply->payload.state);
	reply->payload.state.index = s->index;
	reply->payload.state.num = q->last_avail;
	return 0;
}

int vub_h_set_vring_addr(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_vring_addr *a = &m->payload.addr;
	struct vq *q;
	int ret;

	(void)reply;
	q = vring_index(b, m, a->index);
	if (!q)
		return -EINVAL;
	/* Dirty logging needs F_LOG_ALL, which is not offered: nobody may ask for it. */
	if (a->flags & VU_VRING_F_LOG)
		return vub_reject(
		    b, m, -EINVAL,
		    "ring %u: VHOST_VRING_F_LOG asked for, but F_LOG_ALL is not offered", a->index);
	if (a->flags & ~VU_VRING_F_LOG)
		return vub_reject(b, m, -EINVAL, "ring %u: unknown flags 0x%x", a->index, a->flags);
	/* New addresses for a running ring: take it from the device first. */
	vub_ring_halt(b, a->index);
	q->addr_flags = a->flags;
	q->desc_uaddr = a->desc_user_addr;
	q->avail_uaddr = a->avail_user_addr;
	q->used_uaddr = a->used_user_addr;
	q->log_gaddr = a->log_guest_addr;
	q->addr_set = true;
	if (b->mem.nregions && q->num) {
		ret = vq_map(q, &b->mem);
		vq_unmap(q);
		if (ret) {
			q->addr_set = false;
			return vub_reject(b, m, ret, "ring %u: addresses %s", a->index,
					  ret == -EFAULT ? "outside guest memory" : "misaligned");
		}
	}
	ret = vub_ring_try_start(b, a->index);
	if (ret)
		return vub_reject(b, m, ret, "ring %u cannot start", a->index);
	return 0;
}

/* KICK, CALL, ERR: u64 index with the no-fd bit; returns the ring or NULL. */
static struct vq *vring_fd_target(struct vu_backend *b, struct vu_msg *m, bool *nofd)
{
	uint64_t v = m->payload.u64;

	if (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK)) {
		vub_reject(b, m, -EINVAL, "reserved bits set in 0x%llx", (unsigned long long)v);
		return NULL;
	}
	*nofd = (v & VHOST_USER_VRING_NOFD_MASK) != 0;
	return vring_index(b, m, v & VHOST_USER_VRING_IDX_MASK);
}

/*
 * Take the message's fd for a ring, made non-blocking: the frontend may pass
 * a pipe or socket that nobody reads or writes, and a blocking read or write
 * on it would freeze the loop. The flag is shared with the frontend's copy;
 * every frontend we know uses its eventfds non-blocking anyway.
 */
static int take_ring_fd(struct vu_backend *b, struct vu_msg *m, int *out)
{
	int fd = vu_msg_take_fd(m, 0);
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
		int ret = -errno;

		close(fd);
		return vub_reject(b, m, -EINVAL, "cannot make the fd non-blocking: %s",
				  strerror(-ret));
	}
	*out = fd;
	return 0;
}

int vub_h_set_vring_kick(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	struct vq *q;
	bool nofd;
	int ret;

	(void)reply;
	q = vring_fd_target(b, m, &nofd);
	if (!q)
		return -EINVAL;
	vub_ring_halt(b, q->index);
	vub_close(&q->kick_fd);
	/* No fd would mean polling mode, which we do not do: the ring stays stopped. */
	if (nofd)
		return 0;
	ret = take_ring_fd(b, m, &q->kick_fd);
	if (ret)
		return ret;
	ret = vub_ring_try_start(b, q->index);
	if (ret) {
		vub_close(&q->kick_fd);
		return vub_reject(b, m, ret, "ring %u cannot start: %s", q->index, strerror(-ret));
	}
	return 0;
}

/* SET_VRING_CALL / ERR: replace the ring's call (or err) fd, or drop it. */
static int set_plain_ring_fd(struct vu_backend *b, struct vu_msg *m, bool err)
{
	struct vq *q;
	bool nofd;
	int *fd;

	q = vring_fd_target(b, m, &nofd);
	if (!q)
		return -EINVAL;
	fd = err ? &q->err_fd : &q->call_fd;
	vub_close(fd);
	if (nofd)
		return 0;
	return take_ring_fd(b, m, fd);
}

int vub_h_set_vring_call(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)reply;
	return set_plain_ring_fd(b, m, false);
}

int vub_h_set_vring_err(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)reply;
	return set_plain_ring_fd(b, m, true);
}

int vub_h_get_queue_num(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)m;
	return vub_reply_u64(reply, vu_num_queues(b));
}

int vub_h_set_vring_enable(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_vring_state *s = &m->payload.state;
	struct vq *q;

	(void)reply;
	q = vring_index(b, m, s->index);
	if (!q)
		return -EINVAL;
	if (s->num > 1)
		return vub_reject(b, m, -EINVAL, "ring %u: enable value %u", s->index, s->num);
	q->enabled = s->num == 1;
	vub_ring_sync(b, s->index);
	return 0;
}
