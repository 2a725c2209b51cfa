/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The backend's vhost-user state machine fed a byte stream as if from the
 * socket. Framing of the input, message after message:
 *   12 bytes  header (request, flags, size) as the frontend sends it
 *    1 byte   harness control: bit 7 set -> (bits 0..2) eventfds attached
 *             whatever the request; clear -> the fds the request carries
 *             (memfds for memory regions, eventfds for rings, a socket for
 *             the backend channel)
 *   size      payload (capped at VHOST_USER_MAX_PAYLOAD and at what is left)
 * Headers vu_msg_recv would refuse end the connection, as it would. Region
 * sizes and offsets are folded into 0..REGION_CAP so that each memfd can
 * back all of its mapping. Replies are drained from the peer socket.
 * A connection that ends is replaced by a fresh socketpair. Each input
 * must leave the fd count as it found it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "tfd.h"
#include "vhost-user/vlog.h"
#include "vhost-user/vq.h"
#include "vhost-user/vu_backend.h"
#include "vhost-user/vu_msg.h"

#define REGION_CAP (64u * 1024u)
#define MAX_MSGS 64
#define MAX_POPS 1024

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct testdev {
	uint8_t config[16];
	unsigned int held;
};

static int t_set_features(void *opaque, uint64_t features)
{
	(void)opaque;
	/* Refuse one bit so the refusal path is reachable too. */
	return (features & (1ull << 7)) ? -EINVAL : 0;
}

static int t_get_config(void *opaque, uint32_t offset, uint8_t *buf, uint32_t size)
{
	struct testdev *t = opaque;

	if (offset > sizeof(t->config) || size > sizeof(t->config) - offset)
		return -EINVAL;
	memcpy(buf, t->config + offset, size);
	return 0;
}

static int t_set_config(void *opaque, uint32_t offset, const uint8_t *buf, uint32_t size)
{
	struct testdev *t = opaque;

	if (offset > sizeof(t->config) || size > sizeof(t->config) - offset)
		return -EINVAL;
	memcpy(t->config + offset, buf, size);
	return 0;
}

/* Pop and push back everything the ring offers, bounded. */
static void t_drain(struct vq *q)
{
	struct vq_chain c;

	for (unsigned int i = 0; i < MAX_POPS; i++) {
		if (vq_pop(q, &c) != 1)
			break;
		if (vq_push(q, c.head, (uint32_t)(c.in_len > 16 ? 16 : c.in_len)) != 0)
			break;
	}
	vq_notify(q);
}

static void t_queue_start(void *opaque, struct vq *q)
{
	(void)opaque;
	t_drain(q);
}

static void t_queue_stop(void *opaque, struct vq *q)
{
	(void)opaque;
	(void)q;
}

static void t_queue_kick(void *opaque, struct vq *q)
{
	(void)opaque;
	t_drain(q);
}

static void t_reset(void *opaque)
{
	(void)opaque;
}

static const struct vu_device_ops t_ops = {
    .set_features = t_set_features,
    .get_config = t_get_config,
    .set_config = t_set_config,
    .queue_start = t_queue_start,
    .queue_stop = t_queue_stop,
    .queue_kick = t_queue_kick,
    .reset = t_reset,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	vlog_set_level(VLOG_ERR);
	return 0;
}

static int new_memfd(uint64_t size)
{
	int fd = memfd_create("fuzz-mem", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	if (ftruncate(fd, (off_t)size) != 0)
		abort();
	return fd;
}

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	if (fd < 0)
		abort();
	return fd;
}

static void fold_region(struct vhost_user_mem_region *r)
{
	r->memory_size %= REGION_CAP + 1;
	r->mmap_offset %= REGION_CAP + 1;
}

static int region_fd(const struct vhost_user_mem_region *r)
{
	return new_memfd(r->mmap_offset + r->memory_size);
}

/* Attach the fds the request carries, as a well-behaved frontend would. */
static void attach_fds(struct vu_msg *m)
{
	switch (m->hdr.request) {
	case VHOST_USER_SET_MEM_TABLE: {
		uint32_t n = m->payload.mem.nregions;

		if (n > VHOST_USER_MEM_TABLE_MAX_REGIONS)
			n = VHOST_USER_MEM_TABLE_MAX_REGIONS;
		for (uint32_t i = 0; i < n; i++) {
			fold_region(&m->payload.mem.regions[i]);
			m->fds[m->nfds++] = region_fd(&m->payload.mem.regions[i]);
		}
		break;
	}
	case VHOST_USER_ADD_MEM_REG:
	case VHOST_USER_REM_MEM_REG:
		fold_region(&m->payload.mem_reg.region);
		m->fds[m->nfds++] = region_fd(&m->payload.mem_reg.region);
		break;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		if (!(m->payload.u64 & VHOST_USER_VRING_NOFD_MASK))
			m->fds[m->nfds++] = new_eventfd();
		break;
	case VHOST_USER_SET_BACKEND_REQ_FD: {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
			abort();
		/* Our end goes: the backend must cope with a vanished frontend. */
		close(sv[1]);
		m->fds[m->nfds++] = sv[0];
		break;
	}
	default:
		break;
	}
}

/* Read and discard whatever the backend sent, closing any fds it passed. */
static void drain_replies(int peer)
{
	for (;;) {
		uint8_t buf[4096];
		union {
			struct cmsghdr h;
			uint8_t b[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		} ctl;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.b,
				    .msg_controllen = sizeof(ctl.b)};
		ssize_t n = recvmsg(peer, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n <= 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(fd);
			}
		}
	}
}

/* A fresh connection; returns our end. */
static int connect_backend(struct vu_backend *b)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	if (vu_backend_attach(b, sv[0]) != 0)
		abort();
	return sv[1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {.p = data, .left = size};
	struct testdev t = {.config = {1, 2, 3, 4, 5, 6, 7, 8}};
	const struct vu_device dev = {
	    .name = "fuzz",
	    .features = 0x3f,
	    .num_queues = 2,
	    .max_queue_size = 256,
	    .config_size = sizeof(t.config),
	    .ops = &t_ops,
	    .opaque = &t,
	};
	int fds_before = tfd_count();
	struct vu_backend *b;
	int peer;

	if (vu_backend_new(&b, &dev) != 0)
		abort();
	peer = connect_backend(b);
	for (unsigned int i = 0; i < MAX_MSGS && in.left >= sizeof(struct vhost_user_hdr); i++) {
		struct vu_msg m;
		uint8_t ctl;

		memset(&m, 0, sizeof(m));
		fuzz_take(&in, &m.hdr, sizeof(m.hdr));
		ctl = fuzz_u8(&in);
		if (m.hdr.size > VHOST_USER_MAX_PAYLOAD)
			m.hdr.size = VHOST_USER_MAX_PAYLOAD;
		if (m.hdr.size > in.left)
			m.hdr.size = (uint32_t)in.left;
		fuzz_take(&in, &m.payload, m.hdr.size);

		/* What vu_msg_recv refuses never reaches the state machine. */
		if ((m.hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
		    (m.hdr.flags & ~(uint32_t)(VHOST_USER_VERSION_MASK | VHOST_USER_REPLY_MASK |
					       VHOST_USER_NEED_REPLY_MASK)) != 0) {
			vu_backend_disconnect(b);
		} else {
			if (ctl & 0x80) {
				for (unsigned int k = 0; k < (ctl & 7u); k++)
					m.fds[m.nfds++] = new_eventfd();
			} else {
				attach_fds(&m);
			}
			if (vu_backend_handle_msg(b, &m) != 0)
				vu_backend_disconnect(b);
			/* Whatever the backend did not take is ours to close. */
			vu_msg_close_fds(&m);
			drain_replies(peer);
		}
		if (!vu_backend_connected(b)) {
			close(peer);
			peer = connect_backend(b);
		}
	}
	vu_backend_free(b);
	close(peer);
	if (tfd_count() != fds_before)
		abort();
	return 0;
}
