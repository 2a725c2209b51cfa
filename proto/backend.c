/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The vhost-user backend state machine.
 *
 * Security model: the frontend is not trusted. Every field of every message
 * is checked before it is used: the request id against the handler table,
 * the payload size against what that request carries, the number of fds
 * against what it may carry, ring indices against the device's queue count,
 * sizes, addresses and offsets against overflow and against mapped memory.
 * Nothing a frontend sends can make this process read or write outside what
 * it mapped, leak an fd, or die; the worst it can do is lose its connection.
 *
 * Error policy:
 * - A malformed message (unknown or unsupported request, a reply flag on a
 *   request, wrong payload size, wrong fd count, a request whose protocol
 *   feature was not negotiated) ends the connection. No reply is sent.
 * - A well-formed message carrying an invalid value (ring index out of
 *   range, num not a power of two, overlapping regions, a ring outside
 *   memory, feature bits we did not offer, ...) changes nothing. It gets a
 *   failure ack when the frontend asked for one (NEED_REPLY with REPLY_ACK
 *   negotiated); otherwise the frontend would go on believing it succeeded,
 *   so the connection ends. A GET-type message cannot carry a failure
 *   (except GET_CONFIG, which has a size-0 reply for that) and ends it too.
 * - Never two replies for one message: GET-type messages have their own
 *   reply and ignore NEED_REPLY.
 *
 * I/O: the connection is a blocking socket that is read only when epoll
 * says it is readable, one whole message at a time, so a frontend that
 * writes a message in pieces works. A receive and send timeout bounds a
 * frontend that stops in the middle of a message or stops reading replies;
 * it loses its connection instead of stalling the loop.
 *
 * Rings: a ring is "started" once its kick fd has arrived and its addresses
 * translate through the current memory; it is "enabled" by SET_VRING_ENABLE
 * (or at start when VHOST_USER_F_PROTOCOL_FEATURES is not negotiated). The
 * device owns a ring (queue_start .. queue_stop) exactly while it is both.
 * Anything that invalidates a ring (ENABLE 0, GET_VRING_BASE, new memory,
 * reset, disconnect) calls queue_stop first, so the device can push back
 * what it holds while the old memory is still mapped.
 */
#define _GNU_SOURCE /* accept4 */
#include "vu_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vlog.h"

/* Bound on a frontend stalling mid-message or not reading replies. */
#define VU_IO_TIMEOUT_S 5
/* Messages handled per dispatch before kicks get a turn. */
#define VU_MSGS_PER_DISPATCH 32

/* epoll data: kind in the high half, ring index or session in the low. */
#define VU_EV_LISTEN (1ull << 32)
#define VU_EV_CONN (2ull << 32)
#define VU_EV_KICK (3ull << 32)
#define VU_EV_KIND(d) ((d) & ~0xffffffffull)
#define VU_EV_ARG(d) ((uint32_t)((d)&0xffffffffull))

#define VU_F_PROTOCOL_FEATURES (1ull << VHOST_USER_F_PROTOCOL_FEATURES)
#define VU_F_EVENT_IDX (1ull << 29)
#define VU_F_INDIRECT_DESC (1ull << 28)
#define VU_F_NOTIFY_ON_EMPTY (1ull << 24)
#define VU_PF(bit) (1ull << (bit))

/* VHOST_VRING_F_LOG: the only flag SET_VRING_ADDR defines. */
#define VU_VRING_ADDR_FLAGS_KNOWN 0x1u

struct vu_backend {
	const struct vu_device *dev;
	const char *tag;
	int epfd;
	int listen_fd;
	int spare_fd;	 /* held back so a full fd table cannot make accept spin */
	char *sock_path; /* the socket file we created */
	dev_t sock_dev;
	ino_t sock_ino;
	int conn_fd;
	int backend_fd; /* backend -> frontend channel */
	unsigned int sessions;

	uint64_t features; /* acked virtio features */
	uint64_t protocol_features;

	struct gmem mem;
	struct vq vqs[VU_MAX_QUEUES];
	bool active[VU_MAX_QUEUES]; /* between queue_start and queue_stop */
};

/* Which fds a request may carry. */
enum vu_fd_rule {
	VU_FDS_NONE,
	VU_FDS_ONE,
	VU_FDS_ONE_UNLESS_NOFD, /* u64 payload; bit 8 set means none */
	VU_FDS_PER_REGION,	/* checked by the handler */
	VU_FDS_ANY_ONE,		/* zero or one, never used */
};

#define VU_SIZE_VAR UINT32_MAX

typedef int (*vu_handler_fn)(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);

struct vu_handler {
	const char *name;
	vu_handler_fn fn;
	uint32_t size; /* exact payload size, or VU_SIZE_VAR (handler checks) */
	enum vu_fd_rule fds;
	int feature; /* protocol feature bit required, -1 for none */
	bool reply;  /* has a reply of its own */
};

static unsigned int vu_num_queues(const struct vu_backend *b)
{
	return b->dev->num_queues < VU_MAX_QUEUES ? b->dev->num_queues : VU_MAX_QUEUES;
}

static uint64_t vu_offered_features(const struct vu_backend *b)
{
	return b->dev->features | VU_BACKEND_TRANSPORT_FEATURES;
}

static uint64_t vu_offered_protocol_features(const struct vu_backend *b)
{
	uint64_t f = VU_BACKEND_PROTOCOL_FEATURES;

	if (b->dev->config_size == 0)
		f &= ~VU_PF(VHOST_USER_PROTOCOL_F_CONFIG);
	return f;
}

/* Log a rejected message and return err. */
static int __attribute__((format(printf, 4, 5)))
vu_reject(struct vu_backend *b, const struct vu_msg *m, int err, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vlog_err(b->tag, "%s: %s", vu_msg_name(m->hdr.request), why);
	return err;
}

static void vu_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ---- rings ---- */

static void ring_sync(struct vu_backend *b, unsigned int i)
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
static void ring_halt(struct vu_backend *b, unsigned int i)
{
	struct vq *q = &b->vqs[i];

	q->started = false;
	ring_sync(b, i);
	if (q->kick_fd >= 0)
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, q->kick_fd, NULL);
	vq_unmap(q);
}

/* Start the ring if everything it needs is there. 0 when started or not ready yet. */
static int ring_try_start(struct vu_backend *b, unsigned int i)
{
	struct vq *q = &b->vqs[i];
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = VU_EV_KICK | i};
	int ret;

	if (q->started || q->kick_fd < 0 || !q->addr_set || q->num == 0 || b->mem.nregions == 0)
		return 0;
	ret = vq_map(q, &b->mem);
	if (ret)
		return ret;
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, q->kick_fd, &ev) != 0) {
		ret = -errno;
		vlog_err(q->tag, "cannot watch kick fd: %s", strerror(errno));
		vq_unmap(q);
		return ret;
	}
	q->started = true;
	if (!(b->features & VU_F_PROTOCOL_FEATURES))
		q->enabled = true;
	ring_sync(b, i);
	return 0;
}

/* Before memory changes: take every ring away from the device. */
static void rings_suspend(struct vu_backend *b)
{
	for (unsigned int i = 0; i < vu_num_queues(b); i++)
		ring_halt(b, i);
}

/* After memory changed: translate again and restart what can run. */
static void rings_resume(struct vu_backend *b)
{
	for (unsigned int i = 0; i < vu_num_queues(b); i++) {
		int ret = ring_try_start(b, i);

		if (ret)
			vlog_warn(b->vqs[i].tag, "stays stopped after the memory change: %s",
				  strerror(-ret));
	}
}

/* Stop every ring, close its fds, forget its state. */
static void rings_reset(struct vu_backend *b)
{
	for (unsigned int i = 0; i < vu_num_queues(b); i++) {
		struct vq *q = &b->vqs[i];

		ring_halt(b, i);
		vu_close(&q->kick_fd);
		vu_close(&q->call_fd);
		vu_close(&q->err_fd);
	}
}

static void rings_init(struct vu_backend *b)
{
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		vq_init(&b->vqs[i], i);
		b->active[i] = false;
	}
}

/* ---- handlers ---- */

static int reply_u64(struct vu_msg *reply, uint64_t v)
{
	reply->hdr.size = sizeof(uint64_t);
	reply->payload.u64 = v;
	return 0;
}

static int h_get_features(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)m;
	return reply_u64(reply, vu_offered_features(b));
}

static int h_set_features(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vu_device_ops *ops = b->dev->ops;
	uint64_t f = m->payload.u64;
	uint64_t extra = f & ~vu_offered_features(b);
	int ret;

	(void)reply;
	if (extra)
		return vu_reject(b, m, -EINVAL, "bits 0x%llx were not offered",
				 (unsigned long long)extra);
	if (ops && ops->set_features) {
		ret = ops->set_features(b->dev->opaque, f);
		if (ret)
			return vu_reject(b, m, -EINVAL, "device refused features 0x%llx",
					 (unsigned long long)f);
	}
	b->features = f;
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		b->vqs[i].event_idx = (f & VU_F_EVENT_IDX) != 0;
		b->vqs[i].indirect = (f & VU_F_INDIRECT_DESC) != 0;
		b->vqs[i].notify_on_empty = (f & VU_F_NOTIFY_ON_EMPTY) != 0;
	}
	vlog_debug(b->tag, "features 0x%llx", (unsigned long long)f);
	return 0;
}

static int h_get_protocol_features(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)m;
	return reply_u64(reply, vu_offered_protocol_features(b));
}

static int h_set_protocol_features(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	uint64_t f = m->payload.u64;
	uint64_t extra = f & ~vu_offered_protocol_features(b);

	(void)reply;
	if (extra)
		return vu_reject(b, m, -EINVAL, "bits 0x%llx were not offered",
				 (unsigned long long)extra);
	b->protocol_features = f;
	vlog_debug(b->tag, "protocol features 0x%llx", (unsigned long long)f);
	return 0;
}

static int h_set_owner(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)m;
	(void)reply;
	vlog_debug(b->tag, "session owner set");
	return 0;
}

/* RESET_OWNER and RESET_DEVICE: rings and virtio features back to the start. */
static int h_reset(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vu_device_ops *ops = b->dev->ops;

	(void)reply;
	vlog_info(b->tag, "%s: resetting the device", vu_msg_name(m->hdr.request));
	rings_reset(b);
	if (ops && ops->reset)
		ops->reset(b->dev->opaque);
	rings_init(b);
	/*
	 * Protocol features stay: frontends negotiate them once per connection
	 * and do not send them again after a device reset.
	 */
	b->features = 0;
	return 0;
}

static int h_set_mem_table(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_mem_table *t = &m->payload.mem;
	struct gmem fresh;
	uint32_t n;
	int ret;

	(void)reply;
	if (m->hdr.size < 8)
		return vu_reject(b, m, -EPROTO, "payload of %u bytes has no region count",
				 m->hdr.size);
	n = t->nregions;
	if (n == 0 || n > VHOST_USER_MEM_TABLE_MAX_REGIONS)
		return vu_reject(b, m, -EPROTO, "%u regions (1..%u allowed)", n,
				 VHOST_USER_MEM_TABLE_MAX_REGIONS);
	if (m->hdr.size != 8 + n * sizeof(struct vhost_user_mem_region))
		return vu_reject(b, m, -EPROTO, "payload of %u bytes for %u regions", m->hdr.size,
				 n);
	if (m->nfds != n)
		return vu_reject(b, m, -EPROTO, "%u fds for %u regions", m->nfds, n);

	/* Build the new table aside: on any failure the old one stays. */
	gmem_init(&fresh);
	for (uint32_t i = 0; i < n; i++) {
		const struct vhost_user_mem_region *r = &t->regions[i];

		ret = gmem_add(&fresh, r, m->fds[i]);
		if (ret) {
			gmem_clear(&fresh);
			return vu_reject(b, m, ret,
					 "region %u (gpa 0x%llx size 0x%llx uaddr 0x%llx offset "
					 "0x%llx): %s",
					 i, (unsigned long long)r->guest_phys_addr,
					 (unsigned long long)r->memory_size,
					 (unsigned long long)r->userspace_addr,
					 (unsigned long long)r->mmap_offset, strerror(-ret));
		}
	}
	/* The mappings hold the memory; the fds are closed by the caller. */
	rings_suspend(b);
	gmem_clear(&b->mem);
	b->mem = fresh;
	vlog_info(b->tag, "memory table of %u regions", n);
	rings_resume(b);
	return 0;
}

static int h_get_max_mem_slots(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)b;
	(void)m;
	return reply_u64(reply, GMEM_MAX_REGIONS);
}

static int h_add_mem_reg(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_mem_region *r = &m->payload.mem_reg.region;
	int ret;

	(void)reply;
	/* Adding leaves existing mappings where they are: running rings stay. */
	ret = gmem_add(&b->mem, r, m->fds[0]);
	if (ret)
		return vu_reject(b, m, ret, "region gpa 0x%llx size 0x%llx uaddr 0x%llx: %s",
				 (unsigned long long)r->guest_phys_addr,
				 (unsigned long long)r->memory_size,
				 (unsigned long long)r->userspace_addr, strerror(-ret));
	rings_resume(b);
	return 0;
}

static int h_rem_mem_reg(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_mem_region *r = &m->payload.mem_reg.region;
	bool found = false;

	(void)reply;
	for (unsigned int i = 0; i < b->mem.nregions; i++) {
		const struct gmem_region *e = &b->mem.regions[i];

		if (e->gpa == r->guest_phys_addr && e->size == r->memory_size &&
		    e->uaddr == r->userspace_addr)
			found = true;
	}
	if (!found)
		return vu_reject(b, m, -ENOENT, "no region gpa 0x%llx size 0x%llx uaddr 0x%llx",
				 (unsigned long long)r->guest_phys_addr,
				 (unsigned long long)r->memory_size,
				 (unsigned long long)r->userspace_addr);
	rings_suspend(b);
	gmem_remove(&b->mem, r);
	rings_resume(b);
	return 0;
}

static struct vq *vring_index(struct vu_backend *b, struct vu_msg *m, uint64_t index)
{
	if (index >= vu_num_queues(b)) {
		vu_reject(b, m, -EINVAL, "ring %llu out of range (%u rings)",
			  (unsigned long long)index, vu_num_queues(b));
		return NULL;
	}
	return &b->vqs[index];
}

static int h_set_vring_num(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
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
		return vu_reject(b, m, -EINVAL, "ring %u: size %u is not a power of two in 1..%u",
				 s->index, s->num, max);
	if (q->started)
		return vu_reject(b, m, -EBUSY, "ring %u is running", s->index);
	q->num = (uint16_t)s->num;
	return 0;
}

static int h_set_vring_base(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_vring_state *s = &m->payload.state;
	struct vq *q;

	(void)reply;
	q = vring_index(b, m, s->index);
	if (!q)
		return -EINVAL;
	if (s->num > 0xffff)
		return vu_reject(b, m, -EINVAL, "ring %u: base %u does not fit a split ring",
				 s->index, s->num);
	if (q->started)
		return vu_reject(b, m, -EBUSY, "ring %u is running", s->index);
	q->last_avail = (uint16_t)s->num;
	q->inflight = 0;
	return 0;
}

static int h_get_vring_base(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_vring_state *s = &m->payload.state;
	struct vq *q;

	q = vring_index(b, m, s->index);
	if (!q)
		return -EINVAL;
	ring_halt(b, s->index);
	vu_close(&q->kick_fd);
	reply->hdr.size = sizeof(reply->payload.state);
	reply->payload.state.index = s->index;
	reply->payload.state.num = q->last_avail;
	return 0;
}

static int h_set_vring_addr(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_vring_addr *a = &m->payload.addr;
	struct vq *q;
	int ret;

	(void)reply;
	q = vring_index(b, m, a->index);
	if (!q)
		return -EINVAL;
	if (a->flags & ~VU_VRING_ADDR_FLAGS_KNOWN)
		return vu_reject(b, m, -EINVAL, "ring %u: unknown flags 0x%x", a->index, a->flags);
	/* New addresses for a running ring: take it from the device first. */
	ring_halt(b, a->index);
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
			return vu_reject(b, m, ret, "ring %u: addresses %s", a->index,
					 ret == -EFAULT ? "outside guest memory" : "misaligned");
		}
	}
	ret = ring_try_start(b, a->index);
	if (ret)
		return vu_reject(b, m, ret, "ring %u cannot start", a->index);
	return 0;
}

/* KICK, CALL, ERR: u64 index with the no-fd bit; returns the ring or NULL. */
static struct vq *vring_fd_target(struct vu_backend *b, struct vu_msg *m, bool *nofd)
{
	uint64_t v = m->payload.u64;

	if (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK)) {
		vu_reject(b, m, -EINVAL, "reserved bits set in 0x%llx", (unsigned long long)v);
		return NULL;
	}
	*nofd = (v & VHOST_USER_VRING_NOFD_MASK) != 0;
	return vring_index(b, m, v & VHOST_USER_VRING_IDX_MASK);
}

static int h_set_vring_kick(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	struct vq *q;
	bool nofd;
	int ret;

	(void)reply;
	q = vring_fd_target(b, m, &nofd);
	if (!q)
		return -EINVAL;
	ring_halt(b, q->index);
	vu_close(&q->kick_fd);
	/* No fd would mean polling mode, which we do not do: the ring stays stopped. */
	if (nofd)
		return 0;
	q->kick_fd = vu_msg_take_fd(m, 0);
	ret = ring_try_start(b, q->index);
	if (ret) {
		vu_close(&q->kick_fd);
		return vu_reject(b, m, ret, "ring %u cannot start: %s", q->index, strerror(-ret));
	}
	return 0;
}

static int h_set_vring_call(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	struct vq *q;
	bool nofd;

	(void)reply;
	q = vring_fd_target(b, m, &nofd);
	if (!q)
		return -EINVAL;
	vu_close(&q->call_fd);
	if (!nofd)
		q->call_fd = vu_msg_take_fd(m, 0);
	return 0;
}

static int h_set_vring_err(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	struct vq *q;
	bool nofd;

	(void)reply;
	q = vring_fd_target(b, m, &nofd);
	if (!q)
		return -EINVAL;
	vu_close(&q->err_fd);
	if (!nofd)
		q->err_fd = vu_msg_take_fd(m, 0);
	return 0;
}

static int h_get_queue_num(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)m;
	return reply_u64(reply, vu_num_queues(b));
}

static int h_set_vring_enable(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_vring_state *s = &m->payload.state;
	struct vq *q;

	(void)reply;
	q = vring_index(b, m, s->index);
	if (!q)
		return -EINVAL;
	if (s->num > 1)
		return vu_reject(b, m, -EINVAL, "ring %u: enable value %u", s->index, s->num);
	q->enabled = s->num == 1;
	ring_sync(b, s->index);
	return 0;
}

static int h_set_backend_req_fd(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)reply;
	vu_close(&b->backend_fd);
	b->backend_fd = vu_msg_take_fd(m, 0);
	return 0;
}

static int h_get_config(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vu_device_ops *ops = b->dev->ops;
	const struct vhost_user_config *c = &m->payload.config;
	uint32_t limit = b->dev->config_size;
	int ret = -EINVAL;

	if (m->hdr.size < VHOST_USER_CONFIG_HDR_SIZE || c->size == 0 ||
	    c->size > VHOST_USER_MAX_CONFIG_SIZE ||
	    m->hdr.size != VHOST_USER_CONFIG_HDR_SIZE + c->size)
		return vu_reject(b, m, -EPROTO, "payload of %u bytes", m->hdr.size);
	reply->payload.config.offset = c->offset;
	reply->payload.config.size = c->size;
	reply->payload.config.flags = c->flags;
	memset(reply->payload.config.region, 0, c->size);
	/*
	 * Frontends may declare more config space than the device has (QEMU's
	 * generic device with config_size=16) and must get exactly the size
	 * asked: the device's bytes where they fall, zeros after.
	 */
	if (ops && ops->get_config) {
		ret = 0;
		if (c->offset < limit)
			ret = ops->get_config(
			    b->dev->opaque, c->offset, reply->payload.config.region,
			    c->size < limit - c->offset ? c->size : limit - c->offset);
	}
	if (ret) {
		/* The spec's way to fail: an empty reply. */
		vlog_warn(b->tag, "GET_CONFIG: offset %u size %u: cannot read (config size %u)",
			  c->offset, c->size, limit);
		reply->hdr.size = 0;
		return 0;
	}
	reply->hdr.size = VHOST_USER_CONFIG_HDR_SIZE + c->size;
	return 0;
}

static int h_set_config(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vu_device_ops *ops = b->dev->ops;
	const struct vhost_user_config *c = &m->payload.config;
	uint32_t limit = b->dev->config_size;
	int ret;

	(void)reply;
	if (m->hdr.size < VHOST_USER_CONFIG_HDR_SIZE || c->size == 0 ||
	    c->size > VHOST_USER_MAX_CONFIG_SIZE ||
	    m->hdr.size != VHOST_USER_CONFIG_HDR_SIZE + c->size)
		return vu_reject(b, m, -EPROTO, "payload of %u bytes", m->hdr.size);
	if (c->offset > limit || c->size > limit - c->offset)
		return vu_reject(b, m, -EINVAL, "offset %u size %u outside %u bytes", c->offset,
				 c->size, limit);
	if (!ops || !ops->set_config)
		return vu_reject(b, m, -EPERM, "config space is read-only");
	ret = ops->set_config(b->dev->opaque, c->offset, c->region, c->size);
	if (ret)
		return vu_reject(b, m, -EINVAL, "device refused offset %u size %u", c->offset,
				 c->size);
	return 0;
}

static const struct vu_handler vu_handlers[VHOST_USER_REQUEST_MAX] = {
    [VHOST_USER_GET_FEATURES] = {"GET_FEATURES", h_get_features, 0, VU_FDS_NONE, -1, true},
    [VHOST_USER_SET_FEATURES] = {"SET_FEATURES", h_set_features, 8, VU_FDS_NONE, -1, false},
    [VHOST_USER_SET_OWNER] = {"SET_OWNER", h_set_owner, 0, VU_FDS_NONE, -1, false},
    [VHOST_USER_RESET_OWNER] = {"RESET_OWNER", h_reset, 0, VU_FDS_NONE, -1, false},
    [VHOST_USER_SET_MEM_TABLE] = {"SET_MEM_TABLE", h_set_mem_table, VU_SIZE_VAR, VU_FDS_PER_REGION,
				  -1, false},
    [VHOST_USER_SET_VRING_NUM] = {"SET_VRING_NUM", h_set_vring_num, 8, VU_FDS_NONE, -1, false},
    [VHOST_USER_SET_VRING_ADDR] = {"SET_VRING_ADDR", h_set_vring_addr,
				   sizeof(struct vhost_user_vring_addr), VU_FDS_NONE, -1, false},
    [VHOST_USER_SET_VRING_BASE] = {"SET_VRING_BASE", h_set_vring_base, 8, VU_FDS_NONE, -1, false},
    [VHOST_USER_GET_VRING_BASE] = {"GET_VRING_BASE", h_get_vring_base, 8, VU_FDS_NONE, -1, true},
    [VHOST_USER_SET_VRING_KICK] = {"SET_VRING_KICK", h_set_vring_kick, 8, VU_FDS_ONE_UNLESS_NOFD,
				   -1, false},
    [VHOST_USER_SET_VRING_CALL] = {"SET_VRING_CALL", h_set_vring_call, 8, VU_FDS_ONE_UNLESS_NOFD,
				   -1, false},
    [VHOST_USER_SET_VRING_ERR] = {"SET_VRING_ERR", h_set_vring_err, 8, VU_FDS_ONE_UNLESS_NOFD, -1,
				  false},
    [VHOST_USER_GET_PROTOCOL_FEATURES] = {"GET_PROTOCOL_FEATURES", h_get_protocol_features, 0,
					  VU_FDS_NONE, -1, true},
    [VHOST_USER_SET_PROTOCOL_FEATURES] = {"SET_PROTOCOL_FEATURES", h_set_protocol_features, 8,
					  VU_FDS_NONE, -1, false},
    [VHOST_USER_GET_QUEUE_NUM] = {"GET_QUEUE_NUM", h_get_queue_num, 0, VU_FDS_NONE,
				  VHOST_USER_PROTOCOL_F_MQ, true},
    [VHOST_USER_SET_VRING_ENABLE] = {"SET_VRING_ENABLE", h_set_vring_enable, 8, VU_FDS_NONE, -1,
				     false},
    [VHOST_USER_SET_BACKEND_REQ_FD] = {"SET_BACKEND_REQ_FD", h_set_backend_req_fd, 0, VU_FDS_ONE,
				       VHOST_USER_PROTOCOL_F_BACKEND_REQ, false},
    [VHOST_USER_GET_CONFIG] = {"GET_CONFIG", h_get_config, VU_SIZE_VAR, VU_FDS_NONE,
			       VHOST_USER_PROTOCOL_F_CONFIG, true},
    [VHOST_USER_SET_CONFIG] = {"SET_CONFIG", h_set_config, VU_SIZE_VAR, VU_FDS_NONE,
			       VHOST_USER_PROTOCOL_F_CONFIG, false},
    [VHOST_USER_RESET_DEVICE] = {"RESET_DEVICE", h_reset, 0, VU_FDS_NONE,
				 VHOST_USER_PROTOCOL_F_RESET_DEVICE, false},
    [VHOST_USER_GET_MAX_MEM_SLOTS] = {"GET_MAX_MEM_SLOTS", h_get_max_mem_slots, 0, VU_FDS_NONE,
				      VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, true},
    [VHOST_USER_ADD_MEM_REG] = {"ADD_MEM_REG", h_add_mem_reg, sizeof(struct vhost_user_mem_reg),
				VU_FDS_ONE, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, false},
    [VHOST_USER_REM_MEM_REG] = {"REM_MEM_REG", h_rem_mem_reg, sizeof(struct vhost_user_mem_reg),
				VU_FDS_ANY_ONE, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, false},
};

/* The generic checks every request passes before its handler runs. */
static int vu_check_msg(struct vu_backend *b, const struct vu_handler *h, struct vu_msg *m)
{
	if (m->hdr.flags & VHOST_USER_REPLY_MASK)
		return vu_reject(b, m, -EPROTO, "reply flag set on a request");
	if (h->size != VU_SIZE_VAR && m->hdr.size != h->size)
		return vu_reject(b, m, -EPROTO, "payload of %u bytes, expected %u", m->hdr.size,
				 h->size);
	if (h->feature >= 0 && !(b->protocol_features & VU_PF(h->feature)))
		return vu_reject(b, m, -EPROTO, "protocol feature %d not negotiated", h->feature);
	switch (h->fds) {
	case VU_FDS_NONE:
		if (m->nfds != 0)
			return vu_reject(b, m, -EPROTO, "%u fds, expected none", m->nfds);
		break;
	case VU_FDS_ONE:
		if (m->nfds != 1)
			return vu_reject(b, m, -EPROTO, "%u fds, expected one", m->nfds);
		break;
	case VU_FDS_ONE_UNLESS_NOFD: {
		unsigned int want = (m->payload.u64 & VHOST_USER_VRING_NOFD_MASK) ? 0 : 1;

		if (m->nfds != want)
			return vu_reject(b, m, -EPROTO, "%u fds, expected %u", m->nfds, want);
		break;
	}
	case VU_FDS_ANY_ONE:
		if (m->nfds > 1)
			return vu_reject(b, m, -EPROTO, "%u fds, expected at most one", m->nfds);
		break;
	case VU_FDS_PER_REGION:
		break;
	}
	return 0;
}

static int vu_send_reply(struct vu_backend *b, const struct vu_msg *m, struct vu_msg *reply)
{
	int ret;

	reply->hdr.request = m->hdr.request;
	reply->hdr.flags = VHOST_USER_REPLY_FLAGS;
	reply->nfds = 0;
	ret = vu_msg_send(b->conn_fd, reply);
	if (ret)
		vlog_err(b->tag, "%s: cannot send the reply: %s", vu_msg_name(m->hdr.request),
			 strerror(-ret));
	return ret;
}

int vu_backend_handle_msg(struct vu_backend *b, struct vu_msg *m)
{
	const struct vu_handler *h = NULL;
	struct vu_msg reply;
	bool ack;
	int ret;

	if (m->hdr.request < VHOST_USER_REQUEST_MAX)
		h = &vu_handlers[m->hdr.request];
	if (!h || !h->fn) {
		ret = vu_reject(b, m, -EPROTO, "request %u not supported", m->hdr.request);
		goto out;
	}
	ret = vu_check_msg(b, h, m);
	if (ret)
		goto out;
	ack = !h->reply && (m->hdr.flags & VHOST_USER_NEED_REPLY_MASK) &&
	      (b->protocol_features & VU_PF(VHOST_USER_PROTOCOL_F_REPLY_ACK));

	vlog_debug(b->tag, "%s (size %u, %u fds)", h->name, m->hdr.size, m->nfds);
	memset(&reply.hdr, 0, sizeof(reply.hdr));
	ret = h->fn(b, m, &reply);
	if (ret == -EPROTO)
		goto out;
	if (h->reply) {
		if (ret == 0)
			ret = vu_send_reply(b, m, &reply);
		goto out;
	}
	if (ack) {
		/* The frontend learns of the failure: the connection can go on. */
		reply_u64(&reply, ret ? 1 : 0);
		ret = vu_send_reply(b, m, &reply);
	}
out:
	vu_msg_close_fds(m);
	return ret;
}

/* ---- connection lifecycle ---- */

int vu_backend_new(struct vu_backend **out, const struct vu_device *dev)
{
	struct vu_backend *b;

	*out = NULL;
	if (!dev || dev->num_queues == 0 || dev->num_queues > VU_MAX_QUEUES)
		return -EINVAL;
	if (dev->config_size > VHOST_USER_MAX_CONFIG_SIZE)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->dev = dev;
	b->tag = dev->name ? dev->name : "vhost-user";
	b->listen_fd = -1;
	b->spare_fd = -1;
	b->conn_fd = -1;
	b->backend_fd = -1;
	gmem_init(&b->mem);
	rings_init(b);
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (b->epfd < 0) {
		int ret = -errno;

		free(b);
		return ret;
	}
	*out = b;
	return 0;
}

static void vu_watch_listen(struct vu_backend *b)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = VU_EV_LISTEN};

	if (b->listen_fd >= 0 && epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->listen_fd, &ev) != 0)
		vlog_err(b->tag, "cannot watch the listening socket: %s", strerror(errno));
}

void vu_backend_disconnect(struct vu_backend *b)
{
	const struct vu_device_ops *ops = b->dev->ops;

	if (b->conn_fd < 0)
		return;
	vlog_info(b->tag, "frontend disconnected");
	rings_reset(b);
	if (ops && ops->reset)
		ops->reset(b->dev->opaque);
	rings_init(b);
	gmem_clear(&b->mem);
	vu_close(&b->backend_fd);
	epoll_ctl(b->epfd, EPOLL_CTL_DEL, b->conn_fd, NULL);
	vu_close(&b->conn_fd);
	b->features = 0;
	b->protocol_features = 0;
	vu_watch_listen(b);
}

void vu_backend_free(struct vu_backend *b)
{
	struct stat st;

	if (!b)
		return;
	vu_backend_disconnect(b);
	vu_close(&b->listen_fd);
	vu_close(&b->spare_fd);
	/* Remove the socket file only if it is still the one we created. */
	if (b->sock_path && lstat(b->sock_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == b->sock_dev && st.st_ino == b->sock_ino)
		unlink(b->sock_path);
	free(b->sock_path);
	vu_close(&b->epfd);
	free(b);
}

/* Whether something accepts connections on path. */
static bool vu_socket_alive(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	bool alive;

	if (fd < 0)
		return false;
	/* A full backlog (EAGAIN) still means someone listens. */
	alive = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN ||
		errno == EINPROGRESS;
	close(fd);
	return alive;
}

int vu_backend_listen(struct vu_backend *b, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd = -1, ret;

	if (b->listen_fd >= 0)
		return -EBUSY;
	if (!path || !*path)
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			vlog_err(b->tag, "%s exists and is not a socket", path);
			return -EEXIST;
		}
		if (vu_socket_alive(&sa)) {
			vlog_err(b->tag, "%s: another process is listening", path);
			return -EADDRINUSE;
		}
		if (unlink(path) != 0 && errno != ENOENT)
			return -errno;
		vlog_info(b->tag, "%s: replaced a stale socket", path);
	}

	b->sock_path = strdup(path);
	if (!b->sock_path)
		return -ENOMEM;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
		ret = -errno;
		goto fail;
	}
	if (lstat(path, &st) == 0) {
		b->sock_dev = st.st_dev;
		b->sock_ino = st.st_ino;
	}
	if (listen(fd, 1) != 0) {
		ret = -errno;
		unlink(path);
		goto fail;
	}
	b->listen_fd = fd;
	b->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (b->conn_fd < 0)
		vu_watch_listen(b);
	vlog_info(b->tag, "listening on %s", path);
	return 0;

fail:
	if (fd >= 0)
		close(fd);
	free(b->sock_path);
	b->sock_path = NULL;
	return ret;
}

/* Take conn as the frontend's connection. Closes it on failure. */
static int vu_serve(struct vu_backend *b, int conn)
{
	struct timeval tv = {.tv_sec = VU_IO_TIMEOUT_S};
	struct epoll_event ev = {.events = EPOLLIN};
	int flags, ret;

	if (b->conn_fd >= 0) {
		close(conn);
		return -EBUSY;
	}
	/* Whole messages are read with blocking reads, bounded by the timeouts. */
	flags = fcntl(conn, F_GETFL);
	if (flags < 0 || fcntl(conn, F_SETFL, flags & ~O_NONBLOCK) != 0 ||
	    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
		ret = -errno;
		close(conn);
		return ret;
	}
	b->sessions++;
	ev.data.u64 = VU_EV_CONN | b->sessions;
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, conn, &ev) != 0) {
		ret = -errno;
		close(conn);
		return ret;
	}
	/* One frontend at a time: others wait in the backlog. */
	if (b->listen_fd >= 0)
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, b->listen_fd, NULL);
	b->conn_fd = conn;
	vlog_info(b->tag, "frontend connected (session %u)", b->sessions);
	return 0;
}

int vu_backend_attach(struct vu_backend *b, int conn_fd)
{
	if (conn_fd < 0)
		return -EBADF;
	return vu_serve(b, conn_fd);
}

int vu_backend_fd(const struct vu_backend *b)
{
	return b->epfd;
}

static void vu_accept(struct vu_backend *b)
{
	int fd;

	if (b->listen_fd < 0 || b->conn_fd >= 0)
		return;
	do {
		fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && b->spare_fd >= 0) {
		/*
		 * Out of fds: the frontend would stay in the backlog and the
		 * level-triggered listening socket would wake us forever. Use the
		 * spare fd to take it and hang up on it.
		 */
		vlog_err(b->tag, "accept: %s: refusing the frontend", strerror(errno));
		vu_close(&b->spare_fd);
		fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			close(fd);
		b->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return;
	}
	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
			vlog_err(b->tag, "accept: %s", strerror(errno));
		return;
	}
	if (vu_serve(b, fd) != 0)
		vlog_err(b->tag, "cannot serve the new connection");
}

static bool vu_conn_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

static void vu_serve_messages(struct vu_backend *b)
{
	for (int n = 0; n < VU_MSGS_PER_DISPATCH && b->conn_fd >= 0; n++) {
		struct vu_msg m;
		int ret;

		if (n > 0 && !vu_conn_readable(b->conn_fd))
			return;
		ret = vu_msg_recv(b->conn_fd, &m);
		if (ret == -EAGAIN || ret == -EWOULDBLOCK)
			return;
		if (ret) {
			if (ret != -ECONNRESET)
				vlog_err(b->tag, "receiving a message: %s", strerror(-ret));
			vu_backend_disconnect(b);
			return;
		}
		ret = vu_backend_handle_msg(b, &m);
		if (ret) {
			vlog_err(b->tag, "%s failed (%s): dropping the frontend",
				 vu_msg_name(m.hdr.request), strerror(-ret));
			vu_backend_disconnect(b);
			return;
		}
	}
}

static void vu_handle_kick(struct vu_backend *b, unsigned int i)
{
	const struct vu_device_ops *ops = b->dev->ops;
	struct vq *q;

	if (i >= vu_num_queues(b))
		return;
	q = &b->vqs[i];
	/* The event may be stale: an earlier one in this batch stopped the ring. */
	if (!q->started)
		return;
	vq_drain_kick(q);
	if (b->active[i] && ops && ops->queue_kick)
		ops->queue_kick(b->dev->opaque, q);
}

int vu_backend_dispatch(struct vu_backend *b)
{
	struct epoll_event evs[VU_MAX_QUEUES + 2];
	int n;

	do {
		n = epoll_wait(b->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		int ret = -errno;

		vlog_err(b->tag, "epoll_wait: %s", strerror(errno));
		return ret;
	}
	for (int i = 0; i < n; i++) {
		uint64_t d = evs[i].data.u64;

		switch (VU_EV_KIND(d)) {
		case VU_EV_LISTEN:
			vu_accept(b);
			break;
		case VU_EV_CONN:
			/* Stale when the connection it was for is gone. */
			if (b->conn_fd < 0 || VU_EV_ARG(d) != b->sessions)
				break;
			if (evs[i].events & EPOLLIN)
				vu_serve_messages(b);
			else if (evs[i].events & (EPOLLHUP | EPOLLERR))
				vu_backend_disconnect(b);
			break;
		case VU_EV_KICK:
			vu_handle_kick(b, VU_EV_ARG(d));
			break;
		default:
			break;
		}
	}
	return 0;
}

bool vu_backend_connected(const struct vu_backend *b)
{
	return b->conn_fd >= 0;
}

struct vq *vu_backend_vq(struct vu_backend *b, unsigned int idx)
{
	if (idx >= vu_num_queues(b))
		return NULL;
	return &b->vqs[idx];
}

uint64_t vu_backend_features(const struct vu_backend *b)
{
	return b->features;
}

int vu_backend_config_changed(struct vu_backend *b)
{
	struct vhost_user_hdr h = {
	    .request = VHOST_USER_BACKEND_CONFIG_CHANGE_MSG,
	    .flags = VHOST_USER_VERSION,
	    .size = 0,
	};
	ssize_t n;

	if (b->backend_fd < 0)
		return -ENOTCONN;
	/* Never wait on the frontend: a full channel drops the notification. */
	do {
		n = send(b->backend_fd, &h, sizeof(h), MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		int ret = -errno;

		vlog_warn(b->tag, "config change notification: %s", strerror(errno));
		if (ret == -EPIPE || ret == -ECONNRESET)
			vu_close(&b->backend_fd);
		return ret;
	}
	/* A 12-byte write to a unix stream socket is not split. */
	return n == (ssize_t)sizeof(h) ? 0 : -EIO;
}

unsigned int vu_backend_sessions(const struct vu_backend *b)
{
	return b->sessions;
}
