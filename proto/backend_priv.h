/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * What the backend's files share: the backend object, the handler table's
 * types, and the ring state functions that handlers and the connection code
 * both call. Not installed, not for users of the library.
 *
 *   backend.c       connection I/O and lifecycle: listen, accept, receive,
 *                   dispatch, disconnect
 *   backend_msg.c   the handler table, generic message checks, replies,
 *                   feature, owner, reset and config handlers
 *   backend_mem.c   memory table handlers
 *   backend_ring.c  ring state (start, stop, suspend around memory changes)
 *                   and the SET/GET_VRING_* handlers
 */
#ifndef VU_BACKEND_PRIV_H
#define VU_BACKEND_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vhost-user/gmem.h"
#include "vhost-user/vlog.h"
#include "vhost-user/vu_backend.h"

/* Default bound on the time from a message's first byte to its last. */
#define VU_MSG_TIMEOUT_MS 5000
/* Messages handled per dispatch before kicks get a turn. */
#define VU_MSGS_PER_DISPATCH 32

/* epoll data: kind in the high half, ring index or session in the low. */
#define VU_EV_LISTEN (1ull << 32)
#define VU_EV_CONN (2ull << 32)
#define VU_EV_KICK (3ull << 32)
#define VU_EV_WAKE (4ull << 32)
#define VU_EV_TIMER (5ull << 32)
#define VU_EV_KIND(d) ((d) & ~0xffffffffull)
#define VU_EV_ARG(d) ((uint32_t)((d)&0xffffffffull))

#define VU_F_PROTOCOL_FEATURES (1ull << VHOST_USER_F_PROTOCOL_FEATURES)
#define VU_F_EVENT_IDX (1ull << 29)
#define VU_F_INDIRECT_DESC (1ull << 28)
#define VU_F_NOTIFY_ON_EMPTY (1ull << 24)
#define VU_PF(bit) (1ull << (bit))

/* VHOST_VRING_F_LOG: the only flag SET_VRING_ADDR defines. */
#define VU_VRING_F_LOG 0x1u

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

static inline unsigned int vu_num_queues(const struct vu_backend *b)
{
	return b->dev->num_queues < VU_MAX_QUEUES ? b->dev->num_queues : VU_MAX_QUEUES;
}

static inline uint64_t vu_offered_features(const struct vu_backend *b)
{
	return b->dev->features | VU_BACKEND_TRANSPORT_FEATURES;
}

static inline uint64_t vu_offered_protocol_features(const struct vu_backend *b)
{
	uint64_t f = VU_BACKEND_PROTOCOL_FEATURES;

	if (b->dev->config_size == 0)
		f &= ~VU_PF(VHOST_USER_PROTOCOL_F_CONFIG);
	return f;
}

/* Log a rejected message (tagged with its request name) and return err. */
int vub_reject(struct vu_backend *b, const struct vu_msg *m, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Close *fd if open and set it to -1. */
void vub_close(int *fd);
/* Fill reply with a u64 payload; returns 0. */
int vub_reply_u64(struct vu_msg *reply, uint64_t v);

/* Rings (backend_ring.c). */
void vub_ring_sync(struct vu_backend *b, unsigned int i);
void vub_ring_halt(struct vu_backend *b, unsigned int i);
int vub_ring_try_start(struct vu_backend *b, unsigned int i);
void vub_rings_suspend(struct vu_backend *b);
void vub_rings_resume(struct vu_backend *b);
void vub_rings_reset(struct vu_backend *b);
void vub_rings_init(struct vu_backend *b);

/* Handlers for the table in backend_msg.c. */
int vub_h_set_mem_table(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);
int vub_h_get_max_mem_slots(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);
int vub_h_add_mem_reg(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);
int vub_h_rem_mem_reg(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);
int vub_h_set_vring_num(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);
int vub_h_set_vring_base(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);
int vub_h_get_vring_base(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);
int vub_h_set_vring_addr(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);
int vub_h_set_vring_kick(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);
int vub_h_set_vring_call(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);
int vub_h_set_vring_err(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);
int vub_h_get_queue_num(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);
int vub_h_set_vring_enable(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply);

#endif
