/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The vhost-user backend: listens on a unix socket, serves one frontend at a
 * time, runs the protocol state machine, owns guest memory and the rings,
 * and calls a device through struct vu_device_ops. Single-threaded and
 * epoll-friendly: the caller watches vu_backend_fd() (an epoll fd that
 * becomes readable when the listening socket, the connection or a kick fd
 * is ready) and calls vu_backend_dispatch(). Nothing here blocks or spins.
 */
#ifndef VU_BACKEND_H
#define VU_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "gmem.h"
#include "vq.h"
#include "vu_msg.h"

struct vu_backend;

/*
 * What a device implements; ops and each of its members may be NULL. Called
 * only from inside vu_backend_dispatch(), vu_backend_handle_msg(),
 * vu_backend_check_memory(), vu_backend_disconnect() and vu_backend_free().
 * A ring is handed to the device by queue_start once it is started (kick fd,
 * size, addresses, memory) and enabled; from then until queue_stop the
 * device may pop, push and notify on it. In queue_stop the device must push
 * back every chain it still holds: the ring stops right after, and the
 * memory its chains point into may be unmapped next. The vq is the
 * backend's.
 */
struct vu_device_ops {
	/* Driver features (device bits and transport bits) were set. Non-zero refuses them. */
	int (*set_features)(void *opaque, uint64_t features);
	/*
	 * Copy size bytes of config space at offset into buf (the part of a
	 * GET_CONFIG inside config_size; the rest reads as zeros). Non-zero
	 * fails the read: the frontend gets an empty reply.
	 */
	int (*get_config)(void *opaque, uint32_t offset, uint8_t *buf, uint32_t size);
	/* Write config space (inside config_size). Non-zero refuses; NULL: read-only. */
	int (*set_config)(void *opaque, uint32_t offset, const uint8_t *buf, uint32_t size);
	void (*queue_start)(void *opaque, struct vq *q);
	void (*queue_stop)(void *opaque, struct vq *q);
	/*
	 * The guest kicked q (the kick was already consumed), q just started, or
	 * its resume (vq_resume_later) is due.
	 */
	void (*queue_kick)(void *opaque, struct vq *q);
	/*
	 * Frontend gone, RESET_OWNER or RESET_DEVICE: back to the initial
	 * state. Every ring was stopped (queue_stop) before.
	 */
	void (*reset)(void *opaque);
};

/* A device as the backend sees it. The caller owns it (and opaque); it must outlive the backend. */
struct vu_device {
	const char *name;	 /* for logs (NULL: "vhost-user") */
	uint64_t features;	 /* device-specific feature bits offered */
	unsigned int num_queues; /* GET_QUEUE_NUM; 1..VU_MAX_QUEUES */
	uint16_t max_queue_size; /* largest SET_VRING_NUM accepted (power of 2; 0: 32768) */
	uint32_t config_size;	 /* bytes of config space; 0 = no CONFIG */
	const struct vu_device_ops *ops;
	void *opaque; /* passed to every op */
};

#define VU_MAX_QUEUES 8

/* Transport feature bits the backend offers in addition to dev->features. */
#define VU_BACKEND_TRANSPORT_FEATURES                                                              \
	((1ull << 32 /* VIRTIO_F_VERSION_1 */) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES) |        \
	 (1ull << 29 /* VIRTIO_RING_F_EVENT_IDX */) |                                              \
	 (1ull << 28 /* VIRTIO_RING_F_INDIRECT_DESC */) |                                          \
	 (1ull << 24 /* VIRTIO_F_NOTIFY_ON_EMPTY */))

/* Protocol features offered (CONFIG only when the device has config space). */
#define VU_BACKEND_PROTOCOL_FEATURES                                                               \
	((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |          \
	 (1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ) | (1ull << VHOST_USER_PROTOCOL_F_CONFIG) |    \
	 (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |                                     \
	 (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE))

/*
 * Errors: every function that returns int returns 0 or -errno. A protocol
 * error of the frontend is not an error of the call that met it: it ends
 * the connection (logged, rate-limited) and the backend waits for the next
 * frontend.
 */

/*
 * Allocate a backend for dev (not copied: dev must outlive it), with no
 * socket yet. *out is NULL on failure. -EINVAL when dev is NULL, its
 * num_queues is 0 or above VU_MAX_QUEUES, or its config_size above
 * VHOST_USER_MAX_CONFIG_SIZE; -ENOMEM; -errno from epoll, eventfd or timerfd.
 */
int vu_backend_new(struct vu_backend **out, const struct vu_device *dev);

/*
 * Disconnect the frontend (as vu_backend_disconnect), close the listening
 * socket (an inherited one too) and every other fd, remove the socket file
 * if it is still the one vu_backend_listen created, free. NULL is a no-op.
 */
void vu_backend_free(struct vu_backend *b);

/*
 * Create the listening socket at path (path is copied) and accept one
 * frontend at a time from it. A stale socket file (nobody listening) is
 * replaced. -EBUSY when b already listens; -EINVAL for a NULL or empty
 * path; -ENAMETOOLONG; -EEXIST when path exists and is not a socket;
 * -EADDRINUSE when another process listens on it; -ENOMEM; -errno from
 * probing, unlinking, socket, bind or listen.
 */
int vu_backend_listen(struct vu_backend *b, const char *path);

/*
 * Accept frontends on fd, a listening unix stream socket made elsewhere
 * (inherited: --fd, systemd socket activation); it is made non-blocking and
 * close-on-exec. fd is taken, also on failure (then closed); no socket file
 * is removed at the end. -EBADF when fd < 0 (nothing taken); -EBUSY when b
 * already listens; -EINVAL when fd is not a listening socket; -errno from
 * fcntl.
 */
int vu_backend_listen_fd(struct vu_backend *b, int fd);

/*
 * Serve conn_fd, an already connected socket (tests, --fd), as the frontend;
 * it is made non-blocking. conn_fd is taken, also on failure (then closed).
 * -EBADF when conn_fd < 0 (nothing taken); -EBUSY when a frontend is
 * connected; -errno from fcntl or epoll.
 */
int vu_backend_attach(struct vu_backend *b, int conn_fd);

/*
 * The fd to watch for EPOLLIN (an epoll fd over the listening socket, the
 * connection, the kick fds and the backend's timers). b owns it: do not
 * close it; it stays the same until vu_backend_free.
 */
int vu_backend_fd(const struct vu_backend *b);

/*
 * Handle everything ready now, without blocking: accept, messages (at most
 * 32 a call), kicks, rings due to resume (vq_resume_later), a message
 * deadline, and vu_backend_check_memory. The device's ops run from here.
 * Returns 0, or -errno from epoll_wait (the backend itself is broken).
 */
int vu_backend_dispatch(struct vu_backend *b);

/*
 * Handle one received message as if read from the connection: checks it,
 * runs its handler, sends the reply (if any) on the connection. m's fds are
 * taken, kept by the backend or closed: m has none afterwards. Returns 0;
 * -EPROTO for a malformed message (unknown or unsupported request, wrong
 * size, wrong fds, a feature not negotiated, a reply flag); the handler's
 * -errno (-EINVAL, -EBUSY, -ENOENT, -EDQUOT, ...) for a request that failed
 * with no REPLY_ACK to tell the frontend; or -errno from sending the reply
 * (-EAGAIN: no room, the frontend does not read). Any error means the
 * caller should disconnect; this does not. For unit tests and fuzzing;
 * vu_backend_dispatch() uses it.
 */
int vu_backend_handle_msg(struct vu_backend *b, struct vu_msg *m);

/* Whether a frontend is connected (accepted or attached, not yet disconnected). */
bool vu_backend_connected(const struct vu_backend *b);

/*
 * Drop the frontend, if any: the device's queue_stop for each ring it
 * holds, then its reset; guest memory unmapped; the connection, the ring
 * fds and the backend channel closed; features back to 0; the listening
 * socket (if any) watched again for the next frontend.
 */
void vu_backend_disconnect(struct vu_backend *b);

/*
 * Ring idx, or NULL when idx >= num_queues. The vq is b's (valid until
 * vu_backend_free); the device uses it between queue_start and queue_stop.
 */
struct vq *vu_backend_vq(struct vu_backend *b, unsigned int idx);

/* Negotiated virtio features (0 before SET_FEATURES, after a reset or a disconnect). */
uint64_t vu_backend_features(const struct vu_backend *b);

/*
 * Tell the frontend the config space changed (CONFIG_CHANGE_MSG on the
 * backend channel). No ack is asked for, and nothing waits: a full channel
 * drops the notification. -ENOTCONN when the frontend gave no backend
 * channel; -EAGAIN when it is full; -EPIPE or -ECONNRESET when the frontend
 * closed it (it is closed here too: later calls get -ENOTCONN); -EIO for a
 * short write; other -errno from send.
 */
int vu_backend_config_changed(struct vu_backend *b);

/*
 * Longest time from a message's first byte to its last before the frontend
 * is dropped (default 5000 ms; 0 restores it). Applies from the next
 * message that starts. For tests.
 */
void vu_backend_set_msg_timeout(struct vu_backend *b, unsigned int ms);

/*
 * Drop the frontend if guest memory vanished under one of its mappings (see
 * gmem_lost): -EFAULT then, else 0. vu_backend_dispatch() calls it; a caller
 * that touches guest memory outside dispatch (a device's frames from its
 * bus) calls it after doing so. One atomic load when nothing faulted.
 */
int vu_backend_check_memory(struct vu_backend *b);

/*
 * Charge every guest memory mapping of this backend's frontends to budget
 * too (see struct gmem_budget): give each backend a budget of its own to
 * bound one frontend, and the same shared budget to several to bound their
 * total. A mapping that would pass a limit is refused (the message fails as
 * any bad memory message does) with a log line naming the limit; unmapping
 * gives the bytes back. budget stays the caller's and must outlive b.
 * Call it before a frontend maps memory: -EBUSY while memory is mapped,
 * -ENOSPC past GMEM_MAX_BUDGETS.
 */
int vu_backend_add_mem_budget(struct vu_backend *b, struct gmem_budget *budget);

/* Frontends served so far (accepted or attached). */
unsigned int vu_backend_sessions(const struct vu_backend *b);

#endif
