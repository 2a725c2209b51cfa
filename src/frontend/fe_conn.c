/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The frontend's connection: messages, replies, acks, the backend channel. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fe_priv.h"
#include "vhost-user/vlog.h"
#include "vhost-user/vu_msg.h"

/* How long to wait between two connection attempts while the daemon starts. */
#define FE_CONNECT_RETRY_MS 20

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 when fd is readable (or hung up), 0 on timeout, -errno. */
int fe_poll_in(int fd, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	struct pollfd p = {.fd = fd, .events = POLLIN};

	for (;;) {
		int64_t left = deadline - now_ms();
		int n;

		if (left < 0)
			left = 0;
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int fe_new(struct fe **out, const struct fe_mem_spec *spec)
{
	struct fe *f = calloc(1, sizeof(*f));
	int ret;

	if (!f)
		return -ENOMEM;
	f->sock = -1;
	f->backend_fd = -1;
	f->timeout_ms = FE_DEFAULT_TIMEOUT_MS;
	for (unsigned int q = 0; q < FE_MAX_QUEUES; q++)
		fe_ring_init(&f->rings[q]);
	ret = fe_mem_init(f, spec);
	if (ret < 0) {
		free(f);
		return ret;
	}
	*out = f;
	return 0;
}

void fe_free(struct fe *f)
{
	if (!f)
		return;
	fe_disconnect(f);
	for (unsigned int q = 0; q < FE_MAX_QUEUES; q++)
		fe_ring_fini(&f->rings[q]);
	fe_mem_fini(f);
	free(f);
}

static void set_sock_timeouts(int fd, int timeout_ms)
{
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};

	/* A backend that stops mid-message must not hang a read or a write. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

void fe_set_timeout(struct fe *f, int timeout_ms)
{
	f->timeout_ms = timeout_ms > 0 ? timeout_ms : FE_DEFAULT_TIMEOUT_MS;
	if (f->sock >= 0)
		set_sock_timeouts(f->sock, f->timeout_ms);
}

void fe_set_acks(struct fe *f, bool on)
{
	f->acks = on;
}

int fe_attach(struct fe *f, int fd)
{
	if (fd < 0)
		return -EBADF;
	if (f->sock >= 0) {
		close(fd);
		return -EISCONN;
	}
	f->sock = fd;
	f->acks = false;
	set_sock_timeouts(fd, f->timeout_ms);
	return 0;
}

int fe_connect(struct fe *f, const char *path, int timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int64_t deadline = now_ms() + timeout_ms;

	if (f->sock >= 0)
		return -EISCONN;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);

	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int err;

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fe_attach(f, fd);
		err = errno;
		close(fd);
		/* Missing or not yet listening: the daemon may still be starting. */
		if (err != ENOENT && err != ECONNREFUSED && err != EAGAIN && err != EINTR)
			return -err;
		if (now_ms() >= deadline)
			return -err;
		nanosleep(&(struct timespec){.tv_nsec = FE_CONNECT_RETRY_MS * 1000000L}, NULL);
	}
}

void fe_disconnect(struct fe *f)
{
	if (f->sock >= 0)
		close(f->sock);
	f->sock = -1;
	if (f->backend_fd >= 0)
		close(f->backend_fd);
	f->backend_fd = -1;
	f->acks = false;
	for (unsigned int q = 0; q < FE_MAX_QUEUES; q++)
		fe_ring_disconnected(&f->rings[q]);
}

bool fe_connected(const struct fe *f)
{
	return f->sock >= 0;
}

int fe_sock(const struct fe *f)
{
	return f->sock;
}

/* sendmsg of header + payload with fds, all of it or an error. */
static int send_bytes(int sock, const struct vhost_user_hdr *hdr, const void *payload, uint32_t len,
		      const int *fds, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	/* iov_base is not const, though sendmsg only reads it. */
	struct iovec iov[2] = {
	    {.iov_base = (void *)(uintptr_t)hdr, .iov_len = sizeof(*hdr)},
	    {.iov_base = (void *)(uintptr_t)payload, .iov_len = len},
	};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	size_t total = sizeof(*hdr) + len;
	size_t done = 0;

	if (nfds > VHOST_USER_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}

	while (done < total) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
		/* The fds went with the first bytes; send the rest plainly. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (mh.msg_iovlen && (size_t)n >= mh.msg_iov[0].iov_len) {
			n -= (ssize_t)mh.msg_iov[0].iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + n;
			mh.msg_iov[0].iov_len -= (size_t)n;
		}
	}
	return 0;
}

int fe_send_raw(struct fe *f, const struct vhost_user_hdr *hdr, const void *payload, uint32_t len,
		const int *fds, unsigned int nfds)
{
	if (f->sock < 0)
		return -ENOTCONN;
	return send_bytes(f->sock, hdr, payload, len, fds, nfds);
}

int fe_send(struct fe *f, uint32_t request, uint32_t extra_flags, const void *payload,
	    uint32_t size, const int *fds, unsigned int nfds)
{
	struct vhost_user_hdr hdr = {
	    .request = request, .flags = VHOST_USER_VERSION | extra_flags, .size = size};
	int ret;

	if (size > VHOST_USER_MAX_PAYLOAD || (size && !payload))
		return -EINVAL;
	ret = fe_send_raw(f, &hdr, payload, size, fds, nfds);
	if (ret < 0)
		vlog_debug(FE_TAG, "send %s: %s", vu_msg_name(request), strerror(-ret));
	return ret;
}

int fe_recv_reply(struct fe *f, uint32_t request, void *reply, uint32_t size)
{
	struct vu_msg m;
	int ret;

	if (f->sock < 0)
		return -ENOTCONN;
	ret = fe_poll_in(f->sock, f->timeout_ms);
	if (ret == 0) {
		vlog_warn(FE_TAG, "no reply to %s", vu_msg_name(request));
		return -ETIMEDOUT;
	}
	if (ret < 0)
		return ret;
	ret = vu_msg_recv(f->sock, &m);
	if (ret < 0) {
		vlog_debug(FE_TAG, "reply to %s: %s", vu_msg_name(request), strerror(-ret));
		return ret;
	}
	if (m.nfds) {
		vlog_warn(FE_TAG, "reply to %s carries %u fds", vu_msg_name(request), m.nfds);
		vu_msg_close_fds(&m);
		return -EPROTO;
	}
	if (m.hdr.flags != VHOST_USER_REPLY_FLAGS || m.hdr.request != request ||
	    m.hdr.size != size) {
		vlog_warn(FE_TAG, "bad reply to %s: request %u flags 0x%x size %u (want %u)",
			  vu_msg_name(request), m.hdr.request, m.hdr.flags, m.hdr.size, size);
		return -EPROTO;
	}
	if (size)
		memcpy(reply, &m.payload, size);
	return 0;
}

int fe_get(struct fe *f, uint32_t request, const void *payload, uint32_t size, void *reply,
	   uint32_t reply_size)
{
	int ret = fe_send(f, request, 0, payload, size, NULL, 0);

	if (ret < 0)
		return ret;
	return fe_recv_reply(f, request, reply, reply_size);
}

int fe_set(struct fe *f, uint32_t request, const void *payload, uint32_t size, const int *fds,
	   unsigned int nfds)
{
	uint64_t ack;
	int ret;

	ret =
	    fe_send(f, request, f->acks ? VHOST_USER_NEED_REPLY_MASK : 0, payload, size, fds, nfds);
	if (ret < 0 || !f->acks)
		return ret;
	ret = fe_recv_reply(f, request, &ack, sizeof(ack));
	if (ret < 0)
		return ret;
	if (ack != 0) {
		vlog_debug(FE_TAG, "%s refused (ack %llu)", vu_msg_name(request),
			   (unsigned long long)ack);
		return -EREMOTEIO;
	}
	return 0;
}

int fe_get_u64(struct fe *f, uint32_t request, uint64_t *val)
{
	return fe_get(f, request, NULL, 0, val, sizeof(*val));
}

int fe_set_u64(struct fe *f, uint32_t request, uint64_t val)
{
	return fe_set(f, request, &val, sizeof(val), NULL, 0);
}

/* Read and drop whatever is there, closing fds; 1 when the peer closed. */
static int drain_socket(int sock)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	char data[4096];
	struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl)};
	ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : 1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int fds[VHOST_USER_MAX_FDS];

			if (nfd > VHOST_USER_MAX_FDS)
				nfd = VHOST_USER_MAX_FDS;
			memcpy(fds, CMSG_DATA(c), nfd * sizeof(int));
			for (size_t i = 0; i < nfd; i++)
				close(fds[i]);
		}
	}
	return n == 0;
}

int fe_wait_closed(struct fe *f, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	if (f->sock < 0)
		return -ENOTCONN;
	for (;;) {
		int64_t left = deadline - now_ms();
		int ret = fe_poll_in(f->sock, left > 0 ? (int)left : 0);

		if (ret < 0)
			return ret;
		if (ret == 0)
			return -ETIMEDOUT;
		if (drain_socket(f->sock))
			return 0;
	}
}

/* ------------------------------------------------------------------------ */

int fe_get_features(struct fe *f, uint64_t *features)
{
	int ret = fe_get_u64(f, VHOST_USER_GET_FEATURES, &f->offered_features);

	if (ret == 0 && features)
		*features = f->offered_features;
	return ret;
}

int fe_set_features(struct fe *f, uint64_t features)
{
	int ret = fe_set_u64(f, VHOST_USER_SET_FEATURES, features);

	if (ret == 0)
		f->features = features;
	return ret;
}

int fe_get_protocol_features(struct fe *f, uint64_t *features)
{
	int ret = fe_get_u64(f, VHOST_USER_GET_PROTOCOL_FEATURES, &f->offered_protocol);

	if (ret == 0 && features)
		*features = f->offered_protocol;
	return ret;
}

int fe_set_protocol_features(struct fe *f, uint64_t features)
{
	int ret = fe_set_u64(f, VHOST_USER_SET_PROTOCOL_FEATURES, features);

	if (ret == 0)
		f->protocol = features;
	return ret;
}

int fe_get_queue_num(struct fe *f, uint64_t *num)
{
	int ret = fe_get_u64(f, VHOST_USER_GET_QUEUE_NUM, &f->queue_num);

	if (ret == 0 && num)
		*num = f->queue_num;
	return ret;
}

int fe_get_max_mem_slots(struct fe *f, uint64_t *slots)
{
	int ret = fe_get_u64(f, VHOST_USER_GET_MAX_MEM_SLOTS, &f->max_mem_slots);

	if (ret == 0 && slots)
		*slots = f->max_mem_slots;
	return ret;
}

int fe_set_owner(struct fe *f)
{
	return fe_set(f, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);
}

int fe_reset_device(struct fe *f)
{
	return fe_set(f, VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0);
}

int fe_get_config(struct fe *f, uint32_t offset, void *buf, uint32_t size)
{
	struct vhost_user_config req = {.offset = offset, .size = size};
	struct vhost_user_config rep;
	int ret;

	if (size > VHOST_USER_MAX_CONFIG_SIZE)
		return -EINVAL;
	/* As QEMU: the request carries size (zeroed) data bytes too. */
	memset(req.region, 0, sizeof(req.region));
	ret = fe_get(f, VHOST_USER_GET_CONFIG, &req, VHOST_USER_CONFIG_HDR_SIZE + size, &rep,
		     VHOST_USER_CONFIG_HDR_SIZE + size);
	if (ret < 0)
		return ret;
	if (rep.offset != offset || rep.size != size) {
		vlog_warn(FE_TAG, "GET_CONFIG reply for offset %u size %u, asked %u %u", rep.offset,
			  rep.size, offset, size);
		return -EPROTO;
	}
	memcpy(buf, rep.region, size);
	return 0;
}

int fe_set_config(struct fe *f, uint32_t offset, const void *buf, uint32_t size)
{
	struct vhost_user_config req = {.offset = offset, .size = size};

	if (size > VHOST_USER_MAX_CONFIG_SIZE)
		return -EINVAL;
	memcpy(req.region, buf, size);
	return fe_set(f, VHOST_USER_SET_CONFIG, &req, VHOST_USER_CONFIG_HDR_SIZE + size, NULL, 0);
}

int fe_set_mem_table(struct fe *f)
{
	struct vhost_user_mem_table t = {.nregions = f->nregions};
	int fds[VHOST_USER_MEM_TABLE_MAX_REGIONS];

	if (f->nregions > VHOST_USER_MEM_TABLE_MAX_REGIONS)
		return -E2BIG;
	for (unsigned int i = 0; i < f->nregions; i++) {
		fe_region(f, i, &t.regions[i]);
		fds[i] = f->regions[i].fd;
	}
	return fe_set(f, VHOST_USER_SET_MEM_TABLE, &t,
		      (uint32_t)(8 + f->nregions * sizeof(struct vhost_user_mem_region)), fds,
		      f->nregions);
}

int fe_add_mem_reg(struct fe *f, unsigned int i)
{
	struct vhost_user_mem_reg m = {0};
	int ret = fe_region(f, i, &m.region);

	if (ret < 0)
		return ret;
	return fe_set(f, VHOST_USER_ADD_MEM_REG, &m, sizeof(m), &f->regions[i].fd, 1);
}

int fe_rem_mem_reg(struct fe *f, unsigned int i)
{
	struct vhost_user_mem_reg m = {0};
	int ret = fe_region(f, i, &m.region);

	if (ret < 0)
		return ret;
	return fe_set(f, VHOST_USER_REM_MEM_REG, &m, sizeof(m), NULL, 0);
}

uint64_t fe_offered_features(const struct fe *f)
{
	return f->offered_features;
}

uint64_t fe_features(const struct fe *f)
{
	return f->features;
}

uint64_t fe_offered_protocol_features(const struct fe *f)
{
	return f->offered_protocol;
}

uint64_t fe_protocol_features(const struct fe *f)
{
	return f->protocol;
}

uint64_t fe_queue_num(const struct fe *f)
{
	return f->queue_num;
}

/* ------------------------------------------------------------------------ */

int fe_backend_channel_open(struct fe *f)
{
	int sv[2];
	int ret;

	if (f->sock < 0)
		return -ENOTCONN;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	ret = fe_set(f, VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1);
	close(sv[1]);
	if (ret < 0) {
		close(sv[0]);
		return ret;
	}
	if (f->backend_fd >= 0)
		close(f->backend_fd);
	f->backend_fd = sv[0];
	set_sock_timeouts(f->backend_fd, f->timeout_ms);
	return 0;
}

int fe_backend_channel_fd(const struct fe *f)
{
	return f->backend_fd;
}

int fe_backend_recv(struct fe *f, int timeout_ms, uint32_t *request, uint32_t *size)
{
	struct vu_msg m;
	int ret;

	if (f->backend_fd < 0)
		return -ENOTCONN;
	ret = fe_poll_in(f->backend_fd, timeout_ms);
	if (ret == 0)
		return -ETIMEDOUT;
	if (ret < 0)
		return ret;
	ret = vu_msg_recv(f->backend_fd, &m);
	if (ret < 0)
		return ret;
	vu_msg_close_fds(&m);
	if (m.hdr.flags & VHOST_USER_REPLY_MASK) {
		vlog_warn(FE_TAG, "backend channel: unexpected reply flag (0x%x)", m.hdr.flags);
		return -EPROTO;
	}
	if (request)
		*request = m.hdr.request;
	if (size)
		*size = m.hdr.size;
	if (m.hdr.flags & VHOST_USER_NEED_REPLY_MASK) {
		struct vhost_user_hdr hdr = {.request = m.hdr.request,
					     .flags = VHOST_USER_REPLY_FLAGS,
					     .size = sizeof(uint64_t)};
		uint64_t ok = 0;

		ret = send_bytes(f->backend_fd, &hdr, &ok, sizeof(ok), NULL, 0);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int fe_wait_config_change(struct fe *f, int timeout_ms)
{
	uint32_t request, size;
	int ret = fe_backend_recv(f, timeout_ms, &request, &size);

	if (ret < 0)
		return ret;
	if (request != VHOST_USER_BACKEND_CONFIG_CHANGE_MSG || size != 0) {
		vlog_warn(FE_TAG, "backend channel: request %u size %u, expected CONFIG_CHANGE_MSG",
			  request, size);
		return -EPROTO;
	}
	return 0;
}
