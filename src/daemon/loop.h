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
#include "vhost-user/vlog.h"
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

/*
 * How long each turn of the loop kept it away from epoll_wait: the bound on
 * how long a frame from the bus or a frontend message can wait for the
 * loop. Measured only when on (benchmarks); two clock reads a turn.
 */
#define LOOP_TURN_BUCKETS 40
struct loop_turns {
	bool on;
	uint64_t n;
	uint64_t max_ns;
	uint64_t sum_ns;
	uint64_t log2_ns[LOOP_TURN_BUCKETS]; /* turns of [2^k, 2^(k+1)) ns */
};

/* Where a device's frontends come from: exactly one of the three. */
struct loop_sock {
	const char *path; /* listen on this path (created, removed at the end) */
	int listen_fd;	  /* an inherited listening socket, or -1 */
	int conn_fd;	  /* an inherited connected socket, or -1: one frontend */
};

struct loop_dev {
	struct device *dev;
	struct vu_backend *backend;
	const struct loop_port *port;
	bool once;	 /* serving one connected frontend: done when it leaves */
	struct capture *cap; /* --capture, or NULL; owned by the caller */
	/* The capture's fd is watched for EPOLLOUT while bytes wait for it. */
	bool capture_watched;
	bool capture_retry;	      /* waiting, but its fd cannot be watched: a timer */
	unsigned int capture_gen; /* capture_generation() when the watch was set */
	/* The device's view of the port: port->ops, with send seen by the loop. */
	struct device_port_ops ops;
	int epfd;
	unsigned int idx;
	int fds[LOOP_PORT_MAX_FDS]; /* the port's fds in the epoll set */
	unsigned int nfds;
	bool refresh;	/* the port said GONE or BACK: its fds changed */
	bool unwatched; /* port fds out of the epoll set for this turn's sends */
	bool flood;	/* this turn sent a batch of LOOP_UNWATCH_FRAMES or more */
	bool flooded;	/* and the turn before did */
	struct vlog_limit log_limit;
};

#define LOOP_MAX_DEVICES 16

struct loop {
	struct loop_turns turns;
	/* Device 0's, for callers that run a single device. */
	struct device *dev;
	struct vu_backend *backend;
	struct loop_dev devs[LOOP_MAX_DEVICES];
	unsigned int ndevs;
	int epfd;
};

/*
 * Record every frame of device idx to cap (NULL: stop); the loop writes it
 * out at the end of each turn, never blocking: while the target takes no
 * more, the loop watches it for room (or, for an fd epoll cannot watch,
 * tries again every LOOP_CAP_RETRY_MS). cap stays the caller's.
 */
void loop_set_capture(struct loop *m, unsigned int idx, struct capture *cap);

/* An empty loop. 0 or -errno. */
int loop_open(struct loop *m);

/*
 * Add a device: create it and its backend, serve sock, register every fd.
 * The fds in sock are taken (closed on failure too). 0 or -errno (-ENOSPC
 * past LOOP_MAX_DEVICES); on error the loop is as before.
 */
int loop_add(struct loop *m, const struct device_config *cfg, const struct loop_port *port,
	    const struct loop_sock *sock);

/*
 * loop_open plus one device listening on socket_path (or, when NULL, serving
 * the already connected conn_fd). On error nothing is left open.
 */
int loop_init(struct loop *m, const struct device_config *cfg, const struct loop_port *port,
	     const char *socket_path, int conn_fd);

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

/* Close everything, remove the socket file. */
void loop_fini(struct loop *m);

#endif
