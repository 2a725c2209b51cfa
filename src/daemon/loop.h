/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon's event loop: one epoll set holding, for each device, its
 * backend (listening socket, connection, kicks) and its CAN port's sockets,
 * plus a control fd (signals in the daemon, an eventfd in tests). It sleeps
 * until one of them is ready: no busy waiting, no CPU when idle. Devices
 * are independent: each turn serves every ready source of every device, and
 * each source does at most one budget of work per turn, so no device can
 * delay another's frames by more than one batch.
 */
#ifndef LOOP_H
#define LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "can_port.h"
#include "capture.h"
#include "device.h"
#include "vhost-user/vu_backend.h"

/* Raw sockets (1 or 2) and the link-event fd. */
#define LOOP_PORT_MAX_FDS 3

/* The port as the loop sees it: the device's ops plus its readable fds. */
struct loop_port {
	const struct device_port_ops *ops;
	/* Read what fd has ready into ev (at most max): n or -errno. */
	int (*recv)(void *port, int fd, struct can_port_event *ev, unsigned int max);
	void *port;
	int fds[LOOP_PORT_MAX_FDS];
	unsigned int nfds;
	/*
	 * The fds now, asked after CAN_PORT_EV_GONE or _BACK (the port closed
	 * or opened sockets): how many were stored. NULL: fds never change.
	 */
	unsigned int (*get_fds)(void *port, int fds[LOOP_PORT_MAX_FDS]);
};

/* Where a device's frontends come from: exactly one of the three. */
struct loop_sock {
	const char *path; /* listen on this path (created, removed at the end) */
	int listen_fd;	  /* an inherited listening socket, or -1 */
	int conn_fd;	  /* an inherited connected socket, or -1: one frontend */
};

#define LOOP_MAX_DEVICES 16

/* The loop: its devices, its epoll set (opaque, see loop.c). */
struct loop;

/*
 * Record every frame of device idx to cap (NULL: stop); the loop writes it
 * out at the end of each turn, never blocking: while the target takes no
 * more, the loop watches it for room (or, for an fd epoll cannot watch,
 * tries again every LOOP_CAP_RETRY_MS). cap stays the caller's.
 */
void loop_set_capture(struct loop *m, unsigned int idx, struct capture *cap);

/* An empty loop into *out. 0 or -errno. */
int loop_new(struct loop **out);

/*
 * Add a device: create it and its backend, serve sock, register every fd.
 * The fds in sock are taken (closed on failure too). 0 or -errno (-ENOSPC
 * past LOOP_MAX_DEVICES); on error the loop is as before.
 */
int loop_add(struct loop *m, const struct device_config *cfg, const struct loop_port *port,
	    const struct loop_sock *sock);

/*
 * loop_new plus one device listening on socket_path (or, when NULL, serving
 * the already connected conn_fd). On error nothing is left open.
 */
int loop_init(struct loop **out, const struct device_config *cfg, const struct loop_port *port,
	      const char *socket_path, int conn_fd);

/* Devices added so far; device idx's device and backend (NULL past the last). */
unsigned int loop_ndevs(const struct loop *m);
struct device *loop_device(struct loop *m, unsigned int idx);
struct vu_backend *loop_backend(struct loop *m, unsigned int idx);

/*
 * Run until on_ctl returns non-zero, or every device served its one
 * connected frontend (loop_sock.conn_fd) and that left. on_ctl is called
 * when ctl_fd becomes readable (it must consume what made it readable). 0,
 * or -errno when the loop itself failed.
 */
int loop_run(struct loop *m, int ctl_fd, int (*on_ctl)(struct loop *m, void *arg), void *arg);

/*
 * The counters, one line per group, to f; with several devices each line
 * starts with the device's name.
 */
void loop_print_stats(struct loop *m, FILE *f);

/* Close everything, remove the socket files, free m (NULL: nothing). */
void loop_free(struct loop *m);

#endif
