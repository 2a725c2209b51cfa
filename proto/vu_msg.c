/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * vhost-user message framing. Only the header's generic fields are checked
 * here (version, reserved flags, size bound); what a request means, and how
 * large it must be, is the backend's business. Every fd that arrives is
 * either handed to the caller in struct vu_msg or closed, on every path.
 */
#include "vhost-user/vu_msg.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define VU_MSG_KNOWN_FLAGS                                                                         \
	(VHOST_USER_VERSION_MASK | VHOST_USER_REPLY_MASK | VHOST_USER_NEED_REPLY_MASK)

void vu_msg_close_fds(struct vu_msg *m)
{
	for (unsigned int i = 0; i < m->nfds && i < VHOST_USER_MAX_FDS; i++) {
		if (m->fds[i] >= 0)
			close(m->fds[i]);
		m->fds[i] = -1;
	}
	m->nfds = 0;
}

int vu_msg_take_fd(struct vu_msg *m, unsigned int i)
{
	int fd;

	if (i >= m->nfds || i >= VHOST_USER_MAX_FDS)
		return -1;
	fd = m->fds[i];
	m->fds[i] = -1;
	return fd;
}

/* Move SCM_RIGHTS fds into m; anything beyond the table is closed. */
static void collect_fds(struct msghdr *mh, struct vu_msg *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;
		int fd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (m->nfds < VHOST_USER_MAX_FDS)
				m->fds[m->nfds++] = fd;
			else
				close(fd);
		}
	}
}

static bool hdr_valid(const struct vhost_user_hdr *h)
{
	return (h->flags & VHOST_USER_VERSION_MASK) == VHOST_USER_VERSION &&
	       (h->flags & ~VU_MSG_KNOWN_FLAGS) == 0 && h->size <= VHOST_USER_MAX_PAYLOAD;
}

int vu_msg_recv_some(int sock, struct vu_msg *m, size_t *got)
{
	union {
		char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	int ret;

	if (*got == 0) {
		memset(&m->hdr, 0, sizeof(m->hdr));
		for (unsigned int i = 0; i < VHOST_USER_MAX_FDS; i++)
			m->fds[i] = -1;
		m->nfds = 0;
	}
	for (;;) {
		bool in_hdr = *got < VHOST_USER_HDR_SIZE;
		size_t total = VHOST_USER_HDR_SIZE + (in_hdr ? 0 : (size_t)m->hdr.size);
		uint8_t *dst = in_hdr ? (uint8_t *)&m->hdr + *got
				      : (uint8_t *)&m->payload + (*got - VHOST_USER_HDR_SIZE);
		/* Never past this message: the next one's fds must stay with it. */
		struct iovec iov = {.iov_base = dst, .iov_len = total - *got};
		struct msghdr mh = {
		    .msg_iov = &iov,
		    .msg_iovlen = 1,
		    .msg_control = ctl.buf,
		    .msg_controllen = sizeof(ctl.buf),
		};
		ssize_t n;

		if (!in_hdr && *got == total)
			return 1;
		do {
			n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		} while (n < 0 && errno == EINTR);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			ret = -errno;
			goto fail;
		}
		collect_fds(&mh, m);
		/* Some fds were dropped by the kernel: we cannot know what was meant. */
		if (mh.msg_flags & MSG_CTRUNC) {
			ret = -EPROTO;
			goto fail;
		}
		if (n == 0) {
			/* Closed between messages is a hang-up; inside one, a broken message. */
			ret = *got == 0 ? -ECONNRESET : -EPROTO;
			goto fail;
		}
		*got += (size_t)n;
		if (in_hdr && *got == VHOST_USER_HDR_SIZE && !hdr_valid(&m->hdr)) {
			ret = -EPROTO;
			goto fail;
		}
	}

fail:
	vu_msg_close_fds(m);
	*got = 0;
	return ret;
}

int vu_msg_recv(int sock, struct vu_msg *m)
{
	size_t got = 0;
	int ret = vu_msg_recv_some(sock, m, &got);

	if (ret == 1)
		return 0;
	if (ret < 0)
		return ret;
	/* Only a receive timeout (or a non-blocking socket) stops it early. */
	vu_msg_close_fds(m);
	return got ? -ETIMEDOUT : -EAGAIN;
}

int vu_msg_send(int sock, const struct vu_msg *m)
{
	union {
		char buf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = {
	    {.iov_base = (void *)(uintptr_t)&m->hdr, .iov_len = VHOST_USER_HDR_SIZE},
	    {.iov_base = (void *)(uintptr_t)&m->payload, .iov_len = m->hdr.size},
	};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = m->hdr.size ? 2 : 1};
	size_t total = VHOST_USER_HDR_SIZE + (size_t)m->hdr.size;
	size_t sent = 0;
	ssize_t n;

	if (m->hdr.size > VHOST_USER_MAX_PAYLOAD || m->nfds > VHOST_USER_MAX_FDS)
		return -EINVAL;
	if (m->nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(m->nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(m->nfds * sizeof(int));
		memcpy(CMSG_DATA(c), m->fds, m->nfds * sizeof(int));
	}
	/* The fds travel with the first chunk; a short write is finished without them. */
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	sent = (size_t)n;
	while (sent < total) {
		const uint8_t *p;
		size_t len;

		if (sent < VHOST_USER_HDR_SIZE) {
			p = (const uint8_t *)&m->hdr + sent;
			len = VHOST_USER_HDR_SIZE - sent;
		} else {
			p = (const uint8_t *)&m->payload + (sent - VHOST_USER_HDR_SIZE);
			len = total - sent;
		}
		n = send(sock, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		sent += (size_t)n;
	}
	return 0;
}

/* Names from the one list of requests; ids with no name print "UNKNOWN". */
static const char *const vu_msg_names[VHOST_USER_REQUEST_MAX] = {
#define VU_MSG_NAME(name, id) [VHOST_USER_##name] = #name,
    VHOST_USER_REQUEST_LIST(VU_MSG_NAME)
#undef VU_MSG_NAME
};

/* The list has no gap: as many entries as ids below VHOST_USER_REQUEST_MAX. */
#define VU_MSG_ONE(name, id) +1
_Static_assert(0 VHOST_USER_REQUEST_LIST(VU_MSG_ONE) == VHOST_USER_REQUEST_MAX - 1,
	       "VHOST_USER_REQUEST_LIST must list ids 1..n in order, each once");
#undef VU_MSG_ONE

const char *vu_msg_name(uint32_t request)
{
	if (request < VHOST_USER_REQUEST_MAX && vu_msg_names[request])
		return vu_msg_names[request];
	return "UNKNOWN";
}
