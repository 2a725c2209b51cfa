/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The vhost-user backend's protocol: the generic message checks, every
 * request's handler, the table that binds them, replies, and the session's
 * state (features, memory, backend channel). The middle of the backend's
 * chain: backend.c calls in (backend_msg_*), this calls backend_ring.c.
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
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend_priv.h"
#include "vhost-user/vlog.h"

/* VHOST_VRING_F_LOG: the only flag SET_VRING_ADDR defines. */
#define ADDR_F_LOG 0x1u

/* Which fds a request may carry. */
enum fd_rule {
	FDS_NONE,
	FDS_ONE,
	FDS_ONE_UNLESS_NOFD, /* u64 payload; bit 8 set means none */
	FDS_PER_REGION,	     /* checked by the handler */
	FDS_ANY_ONE,	     /* zero or one, never used */
};

#define SIZE_VAR UINT32_MAX

typedef int (*handler_fn)(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);

/* A served request: its handler and what a message of it must look like. */
struct handler {
	handler_fn fn;
	uint32_t size; /* exact payload size, or SIZE_VAR (handler checks) */
	enum fd_rule fds;
	int feature; /* protocol feature bit required, -1 for none */
	bool reply;  /* has a reply of its own */
};

/* Log a rejected message (tagged with its request name) and return err. */
static int reject(struct vu_backend *b, const struct vu_msg *m, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int reject(struct vu_backend *b, const struct vu_msg *m, int err, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vlog_limited(&b->log_limit, VLOG_ERR, b->tag, "%s: %s", vu_msg_name(m->hdr.request), why);
	return err;
}

/* Fill reply with a u64 payload; returns 0. */
static int reply_u64(struct vu_msg *reply, uint64_t v)
{
	reply->hdr.size = sizeof(uint64_t);
	reply->payload.u64 = v;
	return 0;
}

/* ---- features, owner, reset, backend channel, config ---- */

static int handle_get_features(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)m;
	return reply_u64(reply, backend_offered_features(b));
}

static int handle_set_features(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vu_device_ops *ops = b->dev->ops;
	uint64_t f = m->payload.u64;
	uint64_t extra = f & ~backend_offered_features(b);
	int ret;

	(void)reply;
	if (extra)
		return reject(b, m, -EINVAL, "bits 0x%llx were not offered",
			      (unsigned long long)extra);
	if (ops && ops->set_features) {
		ret = ops->set_features(b->dev->opaque, f);
		if (ret)
			return reject(b, m, -EINVAL, "device refused features 0x%llx",
				      (unsigned long long)f);
	}
	b->features = f;
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		b->vqs[i].event_idx = (f & BACKEND_F_EVENT_IDX) != 0;
		b->vqs[i].indirect = (f & BACKEND_F_INDIRECT_DESC) != 0;
		b->vqs[i].notify_on_empty = (f & BACKEND_F_NOTIFY_ON_EMPTY) != 0;
	}
	vlog_debug(b->tag, "features 0x%llx", (unsigned long long)f);
	return 0;
}

static int handle_get_protocol_features(struct vu_backend *b, struct vu_msg *m,
					struct vu_msg *reply)
{
	(void)m;
	return reply_u64(reply, backend_offered_protocol_features(b));
}

static int handle_set_protocol_features(struct vu_backend *b, struct vu_msg *m,
					struct vu_msg *reply)
{
	uint64_t f = m->payload.u64;
	uint64_t extra = f & ~backend_offered_protocol_features(b);

	(void)reply;
	if (extra)
		return reject(b, m, -EINVAL, "bits 0x%llx were not offered",
			      (unsigned long long)extra);
	b->protocol_features = f;
	vlog_debug(b->tag, "protocol features 0x%llx", (unsigned long long)f);
	return 0;
}

static int handle_set_owner(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)m;
	(void)reply;
	vlog_debug(b->tag, "session owner set");
	return 0;
}

/* RESET_OWNER and RESET_DEVICE: rings and virtio features back to the start. */
static int handle_reset(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)reply;
	vlog_limited(&b->log_limit, VLOG_INFO, b->tag, "%s: resetting the device",
		     vu_msg_name(m->hdr.request));
	/*
	 * Protocol features stay: frontends negotiate them once per connection
	 * and do not send them again after a device reset.
	 */
	backend_ring_reset(b);
	return 0;
}

static int handle_set_backend_req_fd(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)reply;
	backend_close_fd(&b->backend_fd);
	b->backend_fd = vu_msg_take_fd(m, 0);
	return 0;
}

static int handle_get_config(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vu_device_ops *ops = b->dev->ops;
	const struct vhost_user_config *c = &m->payload.config;
	uint32_t limit = b->dev->config_size;
	int ret = -EINVAL;

	if (m->hdr.size < VHOST_USER_CONFIG_HDR_SIZE || c->size == 0 ||
	    c->size > VHOST_USER_MAX_CONFIG_SIZE ||
	    m->hdr.size != VHOST_USER_CONFIG_HDR_SIZE + c->size)
		return reject(b, m, -EPROTO, "payload of %u bytes", m->hdr.size);
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
		vlog_limited(&b->log_limit, VLOG_WARN, b->tag,
			     "GET_CONFIG: offset %u size %u: cannot read (config size %u)",
			     c->offset, c->size, limit);
		reply->hdr.size = 0;
		return 0;
	}
	reply->hdr.size = VHOST_USER_CONFIG_HDR_SIZE + c->size;
	return 0;
}

static int handle_set_config(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vu_device_ops *ops = b->dev->ops;
	const struct vhost_user_config *c = &m->payload.config;
	uint32_t limit = b->dev->config_size;
	int ret;

	(void)reply;
	if (m->hdr.size < VHOST_USER_CONFIG_HDR_SIZE || c->size == 0 ||
	    c->size > VHOST_USER_MAX_CONFIG_SIZE ||
	    m->hdr.size != VHOST_USER_CONFIG_HDR_SIZE + c->size)
		return reject(b, m, -EPROTO, "payload of %u bytes", m->hdr.size);
	if (c->offset > limit || c->size > limit - c->offset)
		return reject(b, m, -EINVAL, "offset %u size %u outside %u bytes", c->offset,
			      c->size, limit);
	if (!ops || !ops->set_config)
		return reject(b, m, -EPERM, "config space is read-only");
	ret = ops->set_config(b->dev->opaque, c->offset, c->region, c->size);
	if (ret)
		return reject(b, m, -EINVAL, "device refused offset %u size %u", c->offset,
			      c->size);
	return 0;
}

/*
 * ---- memory ----
 * SET_MEM_TABLE replaces the whole table (built aside, so a failure leaves
 * the old one), ADD/REM_MEM_REG change one region. Rings are taken from the
 * device before any mapping they use goes away. Every mapping is charged to
 * the budgets the backend was given (a limit per device, a total shared by
 * the process): a refusal names the limit.
 */

/* v bytes in the largest binary unit it reaches, exact when it can be. */
static const char *size_text(char *buf, size_t cap, uint64_t v)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	unsigned int u = 0;

	while (u + 1 < sizeof(unit) / sizeof(unit[0]) && v >> (10 * (u + 1)))
		u++;
	if (u == 0 || (v & ((1ull << (10 * u)) - 1)) == 0)
		snprintf(buf, cap, "%llu %s", (unsigned long long)(v >> (10 * u)), unit[u]);
	else
		snprintf(buf, cap, "%.1f %s", (double)v / (double)(1ull << (10 * u)), unit[u]);
	return buf;
}

/*
 * A budget refused a mapping: say which limit, what was asked, what others
 * hold, and how to raise it (the budget's own words). Returns -EDQUOT.
 */
static int refuse_mem(struct vu_backend *b, const struct vu_msg *m, const struct gmem_budget *over,
		      const char *what, uint64_t asked, uint64_t mapped)
{
	char a[24], h[24], l[24];

	return reject(b, m, -EDQUOT,
		      "refused: %s asks %s of guest memory; the %s limit on mapped guest "
		      "memory is %s, %s of it in use (raise it with %s)",
		      what, size_text(a, sizeof(a), asked), over->name ? over->name : "",
		      size_text(l, sizeof(l), over->limit), size_text(h, sizeof(h), mapped),
		      over->raise ? over->raise : "the backend's options");
}

static int handle_set_mem_table(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_mem_table *t = &m->payload.mem;
	struct gmem fresh;
	uint32_t n;
	int ret;

	(void)reply;
	if (m->hdr.size < 8)
		return reject(b, m, -EPROTO, "payload of %u bytes has no region count",
			      m->hdr.size);
	n = t->nregions;
	if (n == 0 || n > VHOST_USER_MEM_TABLE_MAX_REGIONS)
		return reject(b, m, -EPROTO, "%u regions (1..%u allowed)", n,
			      VHOST_USER_MEM_TABLE_MAX_REGIONS);
	if (m->hdr.size != 8 + n * sizeof(struct vhost_user_mem_region))
		return reject(b, m, -EPROTO, "payload of %u bytes for %u regions", m->hdr.size, n);
	if (m->nfds != n)
		return reject(b, m, -EPROTO, "%u fds for %u regions", m->nfds, n);

	/*
	 * Build the new table aside: on any failure the old one stays. It
	 * replaces the old one, so the limits apply to it alone.
	 */
	gmem_init_like(&fresh, &b->mem);
	gmem_budget_lend(&b->mem);
	for (uint32_t i = 0; i < n; i++) {
		const struct vhost_user_mem_region *r = &t->regions[i];

		ret = gmem_add(&fresh, r, m->fds[i]);
		if (ret == -EDQUOT) {
			uint64_t total = 0;
			char what[48];

			for (uint32_t k = 0; k < n; k++)
				total = t->regions[k].memory_size > UINT64_MAX - total
					    ? UINT64_MAX
					    : total + t->regions[k].memory_size;
			gmem_clear(&fresh);
			/* What others hold: the old table is lent back, not yet reclaimed. */
			snprintf(what, sizeof(what), "a table of %u region%s", n,
				 n == 1 ? "" : "s");
			ret =
			    refuse_mem(b, m, fresh.over, what, total, gmem_budget_used(fresh.over));
			gmem_budget_reclaim(&b->mem);
			return ret;
		}
		if (ret) {
			gmem_clear(&fresh);
			gmem_budget_reclaim(&b->mem);
			return reject(b, m, ret,
				      "region %u (gpa 0x%llx size 0x%llx uaddr 0x%llx offset "
				      "0x%llx): %s (%s)",
				      i, (unsigned long long)r->guest_phys_addr,
				      (unsigned long long)r->memory_size,
				      (unsigned long long)r->userspace_addr,
				      (unsigned long long)r->mmap_offset, gmem_why(&fresh),
				      strerror(-ret));
		}
	}
	/* The mappings hold the memory; the fds are closed by the caller. */
	backend_ring_suspend_all(b);
	gmem_clear(&b->mem);
	b->mem = fresh;
	vlog_limited(&b->log_limit, VLOG_INFO, b->tag, "memory table of %u regions", n);
	backend_ring_resume_all(b);
	return 0;
}

static int handle_get_max_mem_slots(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)b;
	(void)m;
	return reply_u64(reply, GMEM_MAX_REGIONS);
}

static int handle_add_mem_reg(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_mem_region *r = &m->payload.mem_reg.region;
	int ret;

	(void)reply;
	/* Adding leaves existing mappings where they are: running rings stay. */
	ret = gmem_add(&b->mem, r, m->fds[0]);
	if (ret == -EDQUOT)
		return refuse_mem(b, m, b->mem.over, "a region", b->mem.over_asked,
				  gmem_budget_used(b->mem.over));
	if (ret)
		return reject(
		    b, m, ret, "region gpa 0x%llx size 0x%llx uaddr 0x%llx offset 0x%llx: %s (%s)",
		    (unsigned long long)r->guest_phys_addr, (unsigned long long)r->memory_size,
		    (unsigned long long)r->userspace_addr, (unsigned long long)r->mmap_offset,
		    gmem_why(&b->mem), strerror(-ret));
	backend_ring_resume_all(b);
	return 0;
}

static int handle_rem_mem_reg(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
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
		return reject(b, m, -ENOENT, "no region gpa 0x%llx size 0x%llx uaddr 0x%llx",
			      (unsigned long long)r->guest_phys_addr,
			      (unsigned long long)r->memory_size,
			      (unsigned long long)r->userspace_addr);
	backend_ring_suspend_all(b);
	gmem_remove(&b->mem, r);
	backend_ring_resume_all(b);
	return 0;
}

/* ---- rings ---- */

static struct vq *vring_index(struct vu_backend *b, struct vu_msg *m, uint64_t index)
{
	if (index >= backend_num_queues(b)) {
		reject(b, m, -EINVAL, "ring %llu out of range (%u rings)",
		       (unsigned long long)index, backend_num_queues(b));
		return NULL;
	}
	return &b->vqs[index];
}

static int handle_set_vring_num(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
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
		return reject(b, m, -EINVAL, "ring %u: size %u is not a power of two in 1..%u",
			      s->index, s->num, max);
	if (q->started)
		return reject(b, m, -EBUSY, "ring %u is running", s->index);
	q->num = (uint16_t)s->num;
	return 0;
}

static int handle_set_vring_base(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_vring_state *s = &m->payload.state;
	struct vq *q;

	(void)reply;
	q = vring_index(b, m, s->index);
	if (!q)
		return -EINVAL;
	if (s->num > 0xffff)
		return reject(b, m, -EINVAL, "ring %u: base %u does not fit a split ring", s->index,
			      s->num);
	if (q->started)
		return reject(b, m, -EBUSY, "ring %u is running", s->index);
	q->last_avail = (uint16_t)s->num;
	q->inflight = 0;
	return 0;
}

static int handle_get_vring_base(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_vring_state *s = &m->payload.state;
	struct vq *q;

	q = vring_index(b, m, s->index);
	if (!q)
		return -EINVAL;
	backend_ring_halt(b, s->index);
	backend_close_fd(&q->kick_fd);
	reply->hdr.size = sizeof(reply->payload.state);
	reply->payload.state.index = s->index;
	reply->payload.state.num = q->last_avail;
	return 0;
}

static int handle_set_vring_addr(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_vring_addr *a = &m->payload.addr;
	struct vq *q;
	int ret;

	(void)reply;
	q = vring_index(b, m, a->index);
	if (!q)
		return -EINVAL;
	/* Dirty logging needs F_LOG_ALL, which is not offered: nobody may ask for it. */
	if (a->flags & ADDR_F_LOG)
		return reject(b, m, -EINVAL,
			      "ring %u: VHOST_VRING_F_LOG asked for, but F_LOG_ALL is not offered",
			      a->index);
	if (a->flags & ~ADDR_F_LOG)
		return reject(b, m, -EINVAL, "ring %u: unknown flags 0x%x", a->index, a->flags);
	/* New addresses for a running ring: take it from the device first. */
	backend_ring_halt(b, a->index);
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
			return reject(b, m, ret, "ring %u: addresses %s", a->index,
				      ret == -EFAULT ? "outside guest memory" : "misaligned");
		}
	}
	ret = backend_ring_try_start(b, a->index);
	if (ret)
		return reject(b, m, ret, "ring %u cannot start", a->index);
	return 0;
}

/* KICK, CALL, ERR: u64 index with the no-fd bit; returns the ring or NULL. */
static struct vq *vring_fd_target(struct vu_backend *b, struct vu_msg *m, bool *nofd)
{
	uint64_t v = m->payload.u64;

	if (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK)) {
		reject(b, m, -EINVAL, "reserved bits set in 0x%llx", (unsigned long long)v);
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
		return reject(b, m, -EINVAL, "cannot make the fd non-blocking: %s", strerror(-ret));
	}
	*out = fd;
	return 0;
}

static int handle_set_vring_kick(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	struct vq *q;
	bool nofd;
	int ret;

	(void)reply;
	q = vring_fd_target(b, m, &nofd);
	if (!q)
		return -EINVAL;
	backend_ring_halt(b, q->index);
	backend_close_fd(&q->kick_fd);
	/* No fd would mean polling mode, which we do not do: the ring stays stopped. */
	if (nofd)
		return 0;
	ret = take_ring_fd(b, m, &q->kick_fd);
	if (ret)
		return ret;
	ret = backend_ring_try_start(b, q->index);
	if (ret) {
		backend_close_fd(&q->kick_fd);
		return reject(b, m, ret, "ring %u cannot start: %s", q->index, strerror(-ret));
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
	backend_close_fd(fd);
	if (nofd)
		return 0;
	return take_ring_fd(b, m, fd);
}

static int handle_set_vring_call(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)reply;
	return set_plain_ring_fd(b, m, false);
}

static int handle_set_vring_err(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)reply;
	return set_plain_ring_fd(b, m, true);
}

static int handle_get_queue_num(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)m;
	return reply_u64(reply, backend_num_queues(b));
}

static int handle_set_vring_enable(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_vring_state *s = &m->payload.state;
	struct vq *q;

	(void)reply;
	q = vring_index(b, m, s->index);
	if (!q)
		return -EINVAL;
	if (s->num > 1)
		return reject(b, m, -EINVAL, "ring %u: enable value %u", s->index, s->num);
	q->enabled = s->num == 1;
	backend_ring_sync(b, s->index);
	return 0;
}

/*
 * The requests this backend serves, by id (names: vu_msg_name, from the one
 * list in vhost_user.h). A request with no row here is refused. The
 * handlers are static: one left without its row fails the build (unused).
 */
static const struct handler handlers[VHOST_USER_REQUEST_MAX] = {
    [VHOST_USER_GET_FEATURES] = {handle_get_features, 0, FDS_NONE, -1, true},
    [VHOST_USER_SET_FEATURES] = {handle_set_features, 8, FDS_NONE, -1, false},
    [VHOST_USER_SET_OWNER] = {handle_set_owner, 0, FDS_NONE, -1, false},
    [VHOST_USER_RESET_OWNER] = {handle_reset, 0, FDS_NONE, -1, false},
    [VHOST_USER_SET_MEM_TABLE] = {handle_set_mem_table, SIZE_VAR, FDS_PER_REGION, -1, false},
    [VHOST_USER_SET_VRING_NUM] = {handle_set_vring_num, 8, FDS_NONE, -1, false},
    [VHOST_USER_SET_VRING_ADDR] = {handle_set_vring_addr, sizeof(struct vhost_user_vring_addr),
				   FDS_NONE, -1, false},
    [VHOST_USER_SET_VRING_BASE] = {handle_set_vring_base, 8, FDS_NONE, -1, false},
    [VHOST_USER_GET_VRING_BASE] = {handle_get_vring_base, 8, FDS_NONE, -1, true},
    [VHOST_USER_SET_VRING_KICK] = {handle_set_vring_kick, 8, FDS_ONE_UNLESS_NOFD, -1, false},
    [VHOST_USER_SET_VRING_CALL] = {handle_set_vring_call, 8, FDS_ONE_UNLESS_NOFD, -1, false},
    [VHOST_USER_SET_VRING_ERR] = {handle_set_vring_err, 8, FDS_ONE_UNLESS_NOFD, -1, false},
    [VHOST_USER_GET_PROTOCOL_FEATURES] = {handle_get_protocol_features, 0, FDS_NONE, -1, true},
    [VHOST_USER_SET_PROTOCOL_FEATURES] = {handle_set_protocol_features, 8, FDS_NONE, -1, false},
    [VHOST_USER_GET_QUEUE_NUM] = {handle_get_queue_num, 0, FDS_NONE, VHOST_USER_PROTOCOL_F_MQ,
				  true},
    [VHOST_USER_SET_VRING_ENABLE] = {handle_set_vring_enable, 8, FDS_NONE, -1, false},
    [VHOST_USER_SET_BACKEND_REQ_FD] = {handle_set_backend_req_fd, 0, FDS_ONE,
				       VHOST_USER_PROTOCOL_F_BACKEND_REQ, false},
    [VHOST_USER_GET_CONFIG] = {handle_get_config, SIZE_VAR, FDS_NONE, VHOST_USER_PROTOCOL_F_CONFIG,
			       true},
    [VHOST_USER_SET_CONFIG] = {handle_set_config, SIZE_VAR, FDS_NONE, VHOST_USER_PROTOCOL_F_CONFIG,
			       false},
    [VHOST_USER_RESET_DEVICE] = {handle_reset, 0, FDS_NONE, VHOST_USER_PROTOCOL_F_RESET_DEVICE,
				 false},
    [VHOST_USER_GET_MAX_MEM_SLOTS] = {handle_get_max_mem_slots, 0, FDS_NONE,
				      VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, true},
    [VHOST_USER_ADD_MEM_REG] = {handle_add_mem_reg, sizeof(struct vhost_user_mem_reg), FDS_ONE,
				VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, false},
    [VHOST_USER_REM_MEM_REG] = {handle_rem_mem_reg, sizeof(struct vhost_user_mem_reg), FDS_ANY_ONE,
				VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, false},
};

/* The generic checks every request passes before its handler runs. */
static int check_msg(struct vu_backend *b, const struct handler *h, struct vu_msg *m)
{
	if (m->hdr.flags & VHOST_USER_REPLY_MASK)
		return reject(b, m, -EPROTO, "reply flag set on a request");
	if (h->size != SIZE_VAR && m->hdr.size != h->size)
		return reject(b, m, -EPROTO, "payload of %u bytes, expected %u", m->hdr.size,
			      h->size);
	if (h->feature >= 0 && !(b->protocol_features & BACKEND_PF(h->feature)))
		return reject(b, m, -EPROTO, "protocol feature %d not negotiated", h->feature);
	switch (h->fds) {
	case FDS_NONE:
		if (m->nfds != 0)
			return reject(b, m, -EPROTO, "%u fds, expected none", m->nfds);
		break;
	case FDS_ONE:
		if (m->nfds != 1)
			return reject(b, m, -EPROTO, "%u fds, expected one", m->nfds);
		break;
	case FDS_ONE_UNLESS_NOFD: {
		unsigned int want = (m->payload.u64 & VHOST_USER_VRING_NOFD_MASK) ? 0 : 1;

		if (m->nfds != want)
			return reject(b, m, -EPROTO, "%u fds, expected %u", m->nfds, want);
		break;
	}
	case FDS_ANY_ONE:
		if (m->nfds > 1)
			return reject(b, m, -EPROTO, "%u fds, expected at most one", m->nfds);
		break;
	case FDS_PER_REGION:
		break;
	}
	return 0;
}

static int send_reply(struct vu_backend *b, const struct vu_msg *m, struct vu_msg *reply)
{
	int ret;

	reply->hdr.request = m->hdr.request;
	reply->hdr.flags = VHOST_USER_REPLY_FLAGS;
	reply->nfds = 0;
	ret = vu_msg_send(b->conn_fd, reply);
	if (ret == -EAGAIN)
		vlog_limited(&b->log_limit, VLOG_ERR, b->tag,
			     "%s: no room for the reply: the frontend does not read its replies",
			     vu_msg_name(m->hdr.request));
	else if (ret)
		vlog_limited(&b->log_limit, VLOG_ERR, b->tag, "%s: cannot send the reply: %s",
			     vu_msg_name(m->hdr.request), strerror(-ret));
	return ret;
}

int backend_msg_handle(struct vu_backend *b, struct vu_msg *m)
{
	const struct handler *h = NULL;
	struct vu_msg reply;
	bool ack;
	int ret;

	if (m->hdr.request < VHOST_USER_REQUEST_MAX)
		h = &handlers[m->hdr.request];
	if (!h || !h->fn) {
		ret = reject(b, m, -EPROTO, "request %u not supported", m->hdr.request);
		goto out;
	}
	ret = check_msg(b, h, m);
	if (ret)
		goto out;
	ack = !h->reply && (m->hdr.flags & VHOST_USER_NEED_REPLY_MASK) &&
	      (b->protocol_features & BACKEND_PF(VHOST_USER_PROTOCOL_F_REPLY_ACK));

	vlog_debug(b->tag, "%s (size %u, %u fds)", vu_msg_name(m->hdr.request), m->hdr.size,
		   m->nfds);
	memset(&reply.hdr, 0, sizeof(reply.hdr));
	ret = h->fn(b, m, &reply);
	if (ret == -EPROTO)
		goto out;
	if (h->reply) {
		if (ret == 0)
			ret = send_reply(b, m, &reply);
		goto out;
	}
	if (ack) {
		/* The frontend learns of the failure: the connection can go on. */
		reply_u64(&reply, ret ? 1 : 0);
		ret = send_reply(b, m, &reply);
	}
out:
	vu_msg_close_fds(m);
	return ret;
}

void backend_msg_init(struct vu_backend *b)
{
	b->backend_fd = -1;
	gmem_init(&b->mem);
	backend_ring_init_all(b);
}

void backend_msg_end_session(struct vu_backend *b)
{
	backend_ring_reset(b);
	gmem_clear(&b->mem);
	backend_close_fd(&b->backend_fd);
	b->protocol_features = 0;
}
