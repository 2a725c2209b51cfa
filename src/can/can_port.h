/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The SocketCAN port: raw AF_CAN sockets for frames (batched with
 * sendmmsg/recvmmsg), error frames for bus-off, libsocketcan for the
 * controller state and the link. Knows nothing of virtio.
 */
#ifndef CAN_PORT_H
#define CAN_PORT_H

#include <stdbool.h>
#include <stddef.h>

#include "cfilt.h"
#include "cframe.h"

struct can_port;

struct can_port_config {
	const char *in_ifname;	/* frames from here go to the guest */
	const char *out_ifname; /* frames from the guest go out here */
	bool link_up_on_start;	/* can_port_start() brings the link up (needs CAP_NET_ADMIN) */
	const struct cfilt *rx_filter; /* frames of in that may reach the guest; NULL: all */
	uint32_t bitrate, dbitrate; /* with link_up_on_start on a real controller: set on START */
};

/*
 * Check an interface name before anything listens: 0 when it is a CAN
 * device; -EAFNOSUPPORT when the kernel has no CAN support; -ENODEV when
 * it does not exist; -EMEDIUMTYPE when it is not a CAN device. *fd_capable
 * (may be NULL) says whether its MTU is CANFD_MTU.
 */
int can_port_check(const char *ifname, bool *fd_capable);

/* A sentence for a can_port_check() error ("the kernel has no CAN support"). */
const char *can_port_strerror(int err);

/*
 * Open the sockets: one raw socket when in and out are the same interface
 * (so the guest never receives its own frames), else one on each. Error
 * frames (bus-off, restarted) are subscribed on the out interface.
 */
int can_port_open(struct can_port **out, const struct can_port_config *cfg);
void can_port_close(struct can_port *p);

/* Both interfaces carried CAN FD (MTU 72) when the port was opened. */
bool can_port_fd_capable(const struct can_port *p);

/*
 * The raw sockets to watch for EPOLLIN (1 or 2; 0 while an interface is
 * gone); returns how many were stored. They change after CAN_PORT_EV_GONE
 * and CAN_PORT_EV_BACK: ask again then.
 */
unsigned int can_port_fds(const struct can_port *p, int fds[2]);

/*
 * The rtnetlink socket that reports link changes (an interface deleted,
 * renamed, re-created, its MTU changed): watch it for EPOLLIN too and read
 * it with can_port_recv. It stays the same for the port's life.
 */
int can_port_link_fd(const struct can_port *p);

/* Ask for transmit confirmations (CAN_RAW_RECV_OWN_MSGS) for LATE_TX_ACK. */
int can_port_set_tx_confirm(struct can_port *p, bool on);

/* Send n frames on out; res[i] = 0 or -errno per frame. 0 or -errno. */
int can_port_send(struct can_port *p, const struct cframe *f, unsigned int n, int *res);

enum can_port_event_type {
	CAN_PORT_EV_FRAME,     /* a frame from the bus (for the guest) */
	CAN_PORT_EV_TX_DONE,   /* our own frame came back: it went out */
	CAN_PORT_EV_BUSOFF,    /* the controller went bus-off */
	CAN_PORT_EV_RESTARTED, /* the controller restarted */
	CAN_PORT_EV_GONE,      /* in or out went away (unplugged, deleted, renamed):
				* sockets closed, frames fail until BACK */
	CAN_PORT_EV_BACK,      /* it is back and re-bound: new fds */
};

struct can_port_event {
	enum can_port_event_type type;
	struct cframe frame; /* FRAME, TX_DONE */
};

/*
 * Read what fd (a raw socket, or the link fd) has ready (non-blocking,
 * batched): n events or -errno. max should leave room for 2 events.
 */
int can_port_recv(struct can_port *p, int fd, struct can_port_event *ev, unsigned int max);

/* Controller START/STOP: link up/down when configured; else 0. */
int can_port_start(struct can_port *p);
int can_port_stop(struct can_port *p);

/*
 * libsocketcan's view of the out controller: 1 bus-off, 0 usable, and
 * -ENODATA when it has no CAN state (vcan): "unknown, assume active".
 */
int can_port_bus_off(const struct can_port *p);

struct can_port_stats {
	unsigned long fd_refused; /* guest CAN FD frames refused: out's MTU is CAN_MTU */
	unsigned long lost;	  /* times an interface went away */
	unsigned long rebound;	  /* times the port bound again after that */
};

void can_port_get_stats(const struct can_port *p, struct can_port_stats *s);

/* Frames dropped by the kernel for want of buffer space (SO_RXQ_OVFL). */
unsigned long can_port_kernel_drops(const struct can_port *p);

/*
 * Set name's CAN FD data bit rate by rtnetlink (libsocketcan has no call
 * for it); the link must be down. 0, or the kernel's -errno (a vcan, which
 * has no bit timing, refuses it with -EOPNOTSUPP).
 */
int can_port_set_data_bitrate(const char *name, uint32_t dbitrate);

#endif
