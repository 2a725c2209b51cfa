/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The vhost-user backend: message checks, the handler table, replies.
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
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend_priv.h"
#include "vhost-user/vlog.h"

/* Log a rejected message and return err. */
int vub_reject(struct vu_backend *b, const struct vu_msg *m, int err, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vlog_limited(&b->log_limit, VLOG_ERR, b->tag, "%s: %s", vu_msg_name(m->hdr.request), why);
	return err;
}

void vub_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}
int vub_reply_u64(struct vu_msg *reply, uint64_t v)
{
	reply->hdr.size = sizeof(uint64_t);
	reply->payload.u64 = v;
	return 0;
}

static int h_get_features(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)m;
	return vub_reply_u64(reply, vu_offered_features(b));
}

static int h_set_features(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vu_device_ops *ops = b->dev->ops;
	uint64_t f = m->payload.u64;
	uint64_t extra = f & ~vu_offered_features(b);
	int ret;

	(void)reply;
	if (extra)
		return vub_reject(b, m, -EINVAL, "bits 0x%llx were not offered",
				  (unsigned long long)extra);
	if (ops && ops->set_features) {
		ret = ops->set_features(b->dev->opaque, f);
		if (ret)
			return vub_reject(b, m, -EINVAL, "device refused features 0x%llx",
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
	return vub_reply_u64(reply, vu_offered_protocol_features(b));
}

static int h_set_protocol_features(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	uint64_t f = m->payload.u64;
	uint64_t extra = f & ~vu_offered_protocol_features(b);

	(void)reply;
	if (extra)
		return vub_reject(b, m, -EINVAL, "bits 0x%llx were not offered",
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
	vlog_limited(&b->log_limit, VLOG_INFO, b->tag, "%s: resetting the device",
		     vu_msg_name(m->hdr.request));
	vub_rings_reset(b);
	if (ops && ops->reset)
		ops->reset(b->dev->opaque);
	vub_rings_init(b);
	/*
	 * Protocol features stay: frontends negotiate them once per connection
	 * and do not send them again after a device reset.
	 */
	b->features = 0;
	return 0;
}

static int h_set_backend_req_fd(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)reply;
	vub_close(&b->backend_fd);
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
		return vub_reject(b, m, -EPROTO, "payload of %u bytes", m->hdr.size);
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
		return vub_reject(b, m, -EPROTO, "payload of %u bytes", m->hdr.size);
	if (c->offset > limit || c->size > limit - c->offset)
		return vub_reject(b, m, -EINVAL, "offset %u size %u outside %u bytes", c->offset,
				  c->size, limit);
	if (!ops || !ops->set_config)
		return vub_reject(b, m, -EPERM, "config space is read-only");
	ret = ops->set_config(b->dev->opaque, c->offset, c->region, c->size);
	if (ret)
		return vub_reject(b, m, -EINVAL, "device refused offset %u size %u", c->offset,
				  c->size);
	return 0;
}

static const struct vu_handler vu_handlers[VHOST_USER_REQUEST_MAX] = {
    [VHOST_USER_GET_FEATURES] = {"GET_FEATURES", h_get_features, 0, VU_FDS_NONE, -1, true},
    [VHOST_USER_SET_FEATURES] = {"SET_FEATURES", h_set_features, 8, VU_FDS_NONE, -1, false},
    [VHOST_USER_SET_OWNER] = {"SET_OWNER", h_set_owner, 0, VU_FDS_NONE, -1, false},
    [VHOST_USER_RESET_OWNER] = {"RESET_OWNER", h_reset, 0, VU_FDS_NONE, -1, false},
    [VHOST_USER_SET_MEM_TABLE] = {"SET_MEM_TABLE", vub_h_set_mem_table, VU_SIZE_VAR,
				  VU_FDS_PER_REGION, -1, false},
    [VHOST_USER_SET_VRING_NUM] = {"SET_VRING_NUM", vub_h_set_vring_num, 8, VU_FDS_NONE, -1, false},
    [VHOST_USER_SET_VRING_ADDR] = {"SET_VRING_ADDR", vub_h_set_vring_addr,
				   sizeof(struct vhost_user_vring_addr), VU_FDS_NONE, -1, false},
    [VHOST_USER_SET_VRING_BASE] = {"SET_VRING_BASE", vub_h_set_vring_base, 8, VU_FDS_NONE, -1,
				   false},
    [VHOST_USER_GET_VRING_BASE] = {"GET_VRING_BASE", vub_h_get_vring_base, 8, VU_FDS_NONE, -1,
				   true},
    [VHOST_USER_SET_VRING_KICK] = {"SET_VRING_KICK", vub_h_set_vring_kick, 8,
				   VU_FDS_ONE_UNLESS_NOFD, -1, false},
    [VHOST_USER_SET_VRING_CALL] = {"SET_VRING_CALL", vub_h_set_vring_call, 8,
				   VU_FDS_ONE_UNLESS_NOFD, -1, false},
    [VHOST_USER_SET_VRING_ERR] = {"SET_VRING_ERR", vub_h_set_vring_err, 8, VU_FDS_ONE_UNLESS_NOFD,
				  -1, false},
    [VHOST_USER_GET_PROTOCOL_FEATURES] = {"GET_PROTOCOL_FEATURES", h_get_protocol_features, 0,
					  VU_FDS_NONE, -1, true},
    [VHOST_USER_SET_PROTOCOL_FEATURES] = {"SET_PROTOCOL_FEATURES", h_set_protocol_features, 8,
					  VU_FDS_NONE, -1, false},
    [VHOST_USER_GET_QUEUE_NUM] = {"GET_QUEUE_NUM", vub_h_get_queue_num, 0, VU_FDS_NONE,
				  VHOST_USER_PROTOCOL_F_MQ, true},
    [VHOST_USER_SET_VRING_ENABLE] = {"SET_VRING_ENABLE", vub_h_set_vring_enable, 8, VU_FDS_NONE, -1,
				     false},
    [VHOST_USER_SET_BACKEND_REQ_FD] = {"SET_BACKEND_REQ_FD", h_set_backend_req_fd, 0, VU_FDS_ONE,
				       VHOST_USER_PROTOCOL_F_BACKEND_REQ, false},
    [VHOST_USER_GET_CONFIG] = {"GET_CONFIG", h_get_config, VU_SIZE_VAR, VU_FDS_NONE,
			       VHOST_USER_PROTOCOL_F_CONFIG, true},
    [VHOST_USER_SET_CONFIG] = {"SET_CONFIG", h_set_config, VU_SIZE_VAR, VU_FDS_NONE,
			       VHOST_USER_PROTOCOL_F_CONFIG, false},
    [VHOST_USER_RESET_DEVICE] = {"RESET_DEVICE", h_reset, 0, VU_FDS_NONE,
				 VHOST_USER_PROTOCOL_F_RESET_DEVICE, false},
    [VHOST_USER_GET_MAX_MEM_SLOTS] = {"GET_MAX_MEM_SLOTS", vub_h_get_max_mem_slots, 0, VU_FDS_NONE,
				      VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, true},
    [VHOST_USER_ADD_MEM_REG] = {"ADD_MEM_REG", vub_h_add_mem_reg, sizeof(struct vhost_user_mem_reg),
				VU_FDS_ONE, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, false},
    [VHOST_USER_REM_MEM_REG] = {"REM_MEM_REG", vub_h_rem_mem_reg, sizeof(struct vhost_user_mem_reg),
				VU_FDS_ANY_ONE, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS, false},
};

/* The generic checks every request passes before its handler runs. */
static int vu_check_msg(struct vu_backend *b, const struct vu_handler *h, struct vu_msg *m)
{
	if (m->hdr.flags & VHOST_USER_REPLY_MASK)
		return vub_reject(b, m, -EPROTO, "reply flag set on a request");
	if (h->size != VU_SIZE_VAR && m->hdr.size != h->size)
		return vub_reject(b, m, -EPROTO, "payload of %u bytes, expected %u", m->hdr.size,
				  h->size);
	if (h->feature >= 0 && !(b->protocol_features & VU_PF(h->feature)))
		return vub_reject(b, m, -EPROTO, "protocol feature %d not negotiated", h->feature);
	switch (h->fds) {
	case VU_FDS_NONE:
		if (m->nfds != 0)
			return vub_reject(b, m, -EPROTO, "%u fds, expected none", m->nfds);
		break;
	case VU_FDS_ONE:
		if (m->nfds != 1)
			return vub_reject(b, m, -EPROTO, "%u fds, expected one", m->nfds);
		break;
	case VU_FDS_ONE_UNLESS_NOFD: {
		unsigned int want = (m->payload.u64 & VHOST_USER_VRING_NOFD_MASK) ? 0 : 1;

		if (m->nfds != want)
			return vub_reject(b, m, -EPROTO, "%u fds, expected %u", m->nfds, want);
		break;
	}
	case VU_FDS_ANY_ONE:
		if (m->nfds > 1)
			return vub_reject(b, m, -EPROTO, "%u fds, expected at most one", m->nfds);
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
	if (ret == -EAGAIN)
		vlog_limited(&b->log_limit, VLOG_ERR, b->tag,
			     "%s: no room for the reply: the frontend does not read its replies",
			     vu_msg_name(m->hdr.request));
	else if (ret)
		vlog_limited(&b->log_limit, VLOG_ERR, b->tag, "%s: cannot send the reply: %s",
			     vu_msg_name(m->hdr.request), strerror(-ret));
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
		ret = vub_reject(b, m, -EPROTO, "request %u not supported", m->hdr.request);
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
		vub_reply_u64(&reply, ret ? 1 : 0);
		ret = vu_send_reply(b, m, &reply);
	}
out:
	vu_msg_close_fds(m);
	return ret;
}
