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
 * What a device implements. Called from vu_backend_dispatch() only.
 * A ring is handed to the device by queue_start once it is started (kick fd,
 * size, addresses, memory) and enabled; from then until queue_stop the
 * device may pop, push and notify on it. In queue_stop the device must push
 * back every chain it still holds: the ring stops right after.
 */
struct vu_device_ops {
	/* Driver features (device bits and transport bits) were set. -EINVAL refuses. */
	int (*set_features)(void *opaque, uint64_t features);
	/* Copy size bytes of config space at offset into buf. */
	int (*get_config)(void *opaque, uint32_t offset, uint8_t *buf, uint32_t size);
	/* NULL: config space is read-only and SET_CONFIG fails. */
	int (*set_config)(void *opaque, uint32_t offset, const uint8_t *buf, uint32_t size);
	void (*queue_start)(void *opaque, struct vq *q);
	void (*queue_stop)(void *opaque, struct vq *q);
	/* The guest kicked q (the kick was already consumed). */
	void (*queue_kick)(void *opaque, struct vq *q);
	/* Frontend gone, RESET_OWNER or RESET_DEVICE: back to the initial state. */
	void (*reset)(void *opaque);
};

struct vu_device {
	const char *name;	 /* for logs */
	uint64_t features;	 /* device-specific feature bits offered */
	unsigned int num_queues; /* GET_QUEUE_NUM; at most VU_MAX_QUEUES */
	uint16_t max_queue_size; /* largest SET_VRING_NUM accepted (power of 2) */
	uint32_t config_size;	 /* bytes of config space; 0 = no CONFIG */
	const struct vu_device_ops *ops;
	void *opaque;
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

/* Allocate a backend for dev (dev must outlive it). 0 or -errno. */
int vu_backend_new(struct vu_backend **out, const struct vu_device *dev);

/* Disconnect, close every fd, remove the socket file we created, free. */
void vu_backend_free(struct vu_backend *b);

/*
 * Create the listening socket at path. A stale socket file (nobody
 * listening) is replaced; -EEXIST when path exists and is not a socket;
 * -EADDRINUSE when another process listens on it; -ENAMETOOLONG.
 */
int vu_backend_listen(struct vu_backend *b, const char *path);

/*
 * Accept frontends on fd, a listening unix stream socket made elsewhere
 * (inherited: --fd, systemd socket activation). fd is taken, also on
 * failure; no socket file is removed at the end. -EINVAL when fd is not
 * listening.
 */
int vu_backend_listen_fd(struct vu_backend *b, int fd);

/* Serve an already connected socket (tests, --fd). Takes the fd. */
int vu_backend_attach(struct vu_backend *b, int conn_fd);

/* The fd to watch for EPOLLIN. */
int vu_backend_fd(const struct vu_backend *b);

/*
 * Handle everything ready now, without blocking: accept, messages, kicks.
 * A protocol error ends the connection (logged), not the call: returns 0,
 * or -errno only for errors of the backend itself (epoll broken).
 */
int vu_backend_dispatch(struct vu_backend *b);

/*
 * Handle one received message as if read from the connection: takes m's fds,
 * sends the reply (if any) on the connection. Returns 0, or -errno when the
 * message is a protocol error (the caller then disconnects). For unit tests
 * and fuzzing; vu_backend_dispatch() uses it.
 */
int vu_backend_handle_msg(struct vu_backend *b, struct vu_msg *m);

bool vu_backend_connected(const struct vu_backend *b);

/* Drop the frontend: stop rings (device queue_stop, then reset), unmap, close fds. */
void vu_backend_disconnect(struct vu_backend *b);

/* Ring idx, or NULL when idx >= num_queues. */
struct vq *vu_backend_vq(struct vu_backend *b, unsigned int idx);

/* Negotiated virtio features (0 before SET_FEATURES). */
uint64_t vu_backend_features(const struct vu_backend *b);

/*
 * Tell the frontend the config space changed (CONFIG_CHANGE_MSG on the
 * backend channel). No ack is asked for, so the loop never waits on the
 * frontend. -ENOTCONN when the frontend gave no backend channel.
 */
int vu_backend_config_changed(struct vu_backend *b);

/*
 * Longest time from a message's first byte to its last before the frontend
 * is dropped (default 5000 ms; 0 restores it). For tests.
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
 * gives the bytes back. budget must outlive b.
 * Before a frontend maps memory: -EBUSY otherwise, -ENOSPC past
 * GMEM_MAX_BUDGETS.
 */
int vu_backend_add_mem_budget(struct vu_backend *b, struct gmem_budget *budget);

/* Frontends served so far (accepted or attached). */
unsigned int vu_backend_sessions(const struct vu_backend *b);

#endif
