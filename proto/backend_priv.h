/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * What the backend's files share. Not installed, not for users of the
 * library. The files form a one-way chain; each calls only the ones below
 * it, and this header declares only what a lower file offers:
 *
 *   backend.c       the connection and the public vu_backend_* API: listen,
 *                   accept, receive, dispatch, disconnect
 *   backend_msg.c   the protocol: the handler table, the generic message
 *                   checks, every request's handler, replies, the session's
 *                   state (features, memory, backend channel)
 *   backend_ring.c  ring and device state: start, stop, suspend around
 *                   memory changes, reset
 */
#ifndef BACKEND_PRIV_H
#define BACKEND_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "vhost-user/gmem.h"
#include "vhost-user/vlog.h"
#include "vhost-user/vu_backend.h"

/* epoll data: kind in the high half, ring index or session in the low. */
#define BACKEND_EV_LISTEN (1ull << 32)
#define BACKEND_EV_CONN (2ull << 32)
#define BACKEND_EV_KICK (3ull << 32)
#define BACKEND_EV_WAKE (4ull << 32)
#define BACKEND_EV_TIMER (5ull << 32)
#define BACKEND_EV_KIND(d) ((d) & ~0xffffffffull)
#define BACKEND_EV_ARG(d) ((uint32_t)((d)&0xffffffffull))

#define BACKEND_F_PROTOCOL_FEATURES (1ull << VHOST_USER_F_PROTOCOL_FEATURES)
#define BACKEND_F_EVENT_IDX (1ull << 29)
#define BACKEND_F_INDIRECT_DESC (1ull << 28)
#define BACKEND_F_NOTIFY_ON_EMPTY (1ull << 24)
#define BACKEND_PF(bit) (1ull << (bit))

struct vu_backend {
	const struct vu_device *dev;
	const char *tag;
	int epfd;
	int wake_fd;  /* eventfd: a ring stopped on its budget (vq_resume_later) */
	int timer_fd; /* timerfd: the deadline of the message being received */
	unsigned int msg_timeout_ms;
	/* The message being received, rx_got bytes of it so far. */
	struct vu_msg rx;
	size_t rx_got;
	bool rx_timed; /* timer_fd armed for it */
	/* Every line a frontend can cause at will goes through this. */
	struct vlog_limit log_limit;
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
	unsigned int faults_seen; /* gmem_fault_count() at the last check */
	struct vq vqs[VU_MAX_QUEUES];
	/* Each ring's lines (a guest breaking its ring), kept over resets. */
	struct vlog_limit ring_limit[VU_MAX_QUEUES];
	bool active[VU_MAX_QUEUES]; /* between queue_start and queue_stop */
};

static inline unsigned int backend_num_queues(const struct vu_backend *b)
{
	return b->dev->num_queues < VU_MAX_QUEUES ? b->dev->num_queues : VU_MAX_QUEUES;
}

static inline uint64_t backend_offered_features(const struct vu_backend *b)
{
	return b->dev->features | VU_BACKEND_TRANSPORT_FEATURES;
}

static inline uint64_t backend_offered_protocol_features(const struct vu_backend *b)
{
	uint64_t f = VU_BACKEND_PROTOCOL_FEATURES;

	if (b->dev->config_size == 0)
		f &= ~BACKEND_PF(VHOST_USER_PROTOCOL_F_CONFIG);
	return f;
}

/* Close *fd if open and set it to -1. */
static inline void backend_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ---- backend_msg.c offers (to backend.c) ---- */

/* The session's state as before any frontend: no memory, no backend channel, rings new. */
void backend_msg_init(struct vu_backend *b);

/* Check and handle one request; see vu_backend_handle_msg. */
int backend_msg_handle(struct vu_backend *b, struct vu_msg *m);

/*
 * The frontend is gone: its rings stopped and the device reset
 * (backend_ring_reset), its memory unmapped, its backend channel closed, no
 * features of either kind.
 */
void backend_msg_end_session(struct vu_backend *b);

/* ---- backend_ring.c offers (to backend_msg.c) ---- */

/* Hand ring i to the device (queue_start) or take it back (queue_stop) as its state says. */
void backend_ring_sync(struct vu_backend *b, unsigned int i);
/* Leave the started state (queue_stop first); keep the kick fd. */
void backend_ring_halt(struct vu_backend *b, unsigned int i);
/* Start ring i if everything it needs is there: 0 when started or not ready yet, or -errno. */
int backend_ring_try_start(struct vu_backend *b, unsigned int i);
/* Before memory changes: take every ring away from the device. */
void backend_ring_suspend_all(struct vu_backend *b);
/* After memory changed: translate again and restart what can run. */
void backend_ring_resume_all(struct vu_backend *b);
/* Every ring as new (fds -1, not closed). */
void backend_ring_init_all(struct vu_backend *b);
/* Rings stopped and their fds closed, the device reset, rings new, no virtio features. */
void backend_ring_reset(struct vu_backend *b);

#endif
