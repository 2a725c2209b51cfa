/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The backend's rings and device state: the bottom of the backend's chain
 * (backend.c -> backend_msg.c -> here). Calls nothing above it.
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
#include <string.h>
#include <sys/epoll.h>

#include "backend_priv.h"
#include "vhost-user/vlog.h"

void backend_ring_sync(struct vu_backend *b, unsigned int i)
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
void backend_ring_halt(struct vu_backend *b, unsigned int i)
{
	struct vq *q = &b->vqs[i];

	q->started = false;
	backend_ring_sync(b, i);
	if (q->kick_fd >= 0)
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, q->kick_fd, NULL);
	vq_unmap(q);
}

/* Start the ring if everything it needs is there. 0 when started or not ready yet. */
int backend_ring_try_start(struct vu_backend *b, unsigned int i)
{
	struct vq *q = &b->vqs[i];
	/*
	 * Edge-triggered: a kick fd that stays readable (a pipe whose writer
	 * hung up, a semaphore eventfd with a huge count) wakes us once, not on
	 * every turn of the loop.
	 */
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = BACKEND_EV_KICK | i};
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
	if (!(b->features & BACKEND_F_PROTOCOL_FEATURES))
		q->enabled = true;
	backend_ring_sync(b, i);
	return 0;
}

/* Before memory changes: take every ring away from the device. */
void backend_ring_suspend_all(struct vu_backend *b)
{
	for (unsigned int i = 0; i < backend_num_queues(b); i++)
		backend_ring_halt(b, i);
}

/* After memory changed: translate again and restart what can run. */
void backend_ring_resume_all(struct vu_backend *b)
{
	for (unsigned int i = 0; i < backend_num_queues(b); i++) {
		int ret = backend_ring_try_start(b, i);

		if (ret)
			vlog_limited(&b->log_limit, VLOG_WARN, b->vqs[i].tag,
				     "stays stopped after the memory change: %s", strerror(-ret));
	}
}

/* Stop every ring, close its fds, forget its state. */
static void rings_close(struct vu_backend *b)
{
	for (unsigned int i = 0; i < backend_num_queues(b); i++) {
		struct vq *q = &b->vqs[i];

		backend_ring_halt(b, i);
		backend_close_fd(&q->kick_fd);
		backend_close_fd(&q->call_fd);
		backend_close_fd(&q->err_fd);
	}
}

void backend_ring_init_all(struct vu_backend *b)
{
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		vq_init(&b->vqs[i], i);
		b->vqs[i].wake_fd = b->wake_fd;
		b->vqs[i].log_limit = &b->ring_limit[i];
		b->active[i] = false;
	}
}

/*
 * RESET_OWNER, RESET_DEVICE and the end of a session: every ring stopped
 * (queue_stop) and its fds closed, the device's reset op, the rings as new,
 * no virtio features. Protocol features and memory are the caller's.
 */
void backend_ring_reset(struct vu_backend *b)
{
	const struct vu_device_ops *ops = b->dev->ops;

	rings_close(b);
	if (ops && ops->reset)
		ops->reset(b->dev->opaque);
	backend_ring_init_all(b);
	b->features = 0;
}
