/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon's event loop: one epoll set holding the backend (listening
 * socket, connection, kicks), the CAN port's sockets, a control fd (signals
 * in the daemon, an eventfd in tests) and the device's timer. It sleeps
 * until one of them is ready: no busy waiting, no CPU when idle.
 */
#ifndef DMN_H
#define DMN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "can_port.h"
#include "vcd.h"
#include "vu_backend.h"

/* The port as the loop sees it: the device's ops plus its readable fds. */
struct dmn_port {
	const struct vcd_port_ops *ops;
	/* Read what fd has ready into ev (at most max): n or -errno. */
	int (*recv)(void *port, int fd, struct can_port_event *ev, unsigned int max);
	void *port;
	int fds[2];
	unsigned int nfds;
};

/*
 * How long each turn of the loop kept it away from epoll_wait: the bound on
 * how long a frame from the bus or a frontend message can wait for the
 * loop. Measured only when on (benchmarks); two clock reads a turn.
 */
#define DMN_TURN_BUCKETS 40
struct dmn_turns {
	bool on;
	uint64_t n;
	uint64_t max_ns;
	uint64_t sum_ns;
	uint64_t log2_ns[DMN_TURN_BUCKETS]; /* turns of [2^k, 2^(k+1)) ns */
};

struct dmn {
	struct dmn_turns turns;
	struct vcd *dev;
	struct vu_backend *backend;
	const struct dmn_port *port;
	int epfd;
};

/*
 * Create the device and the backend, listen on socket_path (or, when NULL,
 * serve the already connected conn_fd), and register every fd. 0 or -errno;
 * on error nothing is left open.
 */
int dmn_init(struct dmn *m, const struct vcd_config *cfg, const struct dmn_port *port,
	     const char *socket_path, int conn_fd);

/*
 * Run until on_ctl returns non-zero. on_ctl is called when ctl_fd becomes
 * readable (it must consume what made it readable). 0, or -errno when the
 * loop itself failed.
 */
int dmn_run(struct dmn *m, int ctl_fd, int (*on_ctl)(struct dmn *m, void *arg), void *arg);

/* The counters, one line per group, to f. */
void dmn_print_stats(struct dmn *m, FILE *f);

/* Close everything, remove the socket file. */
void dmn_fini(struct dmn *m);

#endif
