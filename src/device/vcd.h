/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The virtio-can device: Txq, Rxq and Controlq, frame checks and
 * conversion, controller state, bus-off and config space. It reaches CAN
 * through struct vcd_port_ops (the real port, or a fake in unit tests) and
 * knows nothing of sockets.
 */
#ifndef VCD_H
#define VCD_H

#include <stdbool.h>
#include <stdint.h>

#include "cfilt.h"
#include "cframe.h"
#include "vhost-user/vu_backend.h"

struct vcd;

struct vcd_port_ops {
	/* Send n frames; res[i] = 0 (handed to the bus) or -errno. 0 or -errno. */
	int (*send)(void *port, const struct cframe *f, unsigned int n, int *res);
	/* Controller START / STOP on the port side (link up/down); 0 or -errno. */
	int (*start)(void *port);
	int (*stop)(void *port);
	/* Turn transmit confirmations (echoes) on or off for LATE_TX_ACK. */
	int (*set_tx_confirm)(void *port, bool on);
	/* Monotonic milliseconds; NULL means CLOCK_MONOTONIC. */
	uint64_t (*now_ms)(void *port);
};

/*
 * --bitrate: frames go to the port at most this far ahead of the bus
 * clock, so the rate over any longer time is the bus's while the loop
 * wakes for it no more often than every few milliseconds; a wake-up later
 * than this loses bus time (as an idle real bus would). 8 ms covers the
 * wake-up latency of an emulated VM's timers; frames leave in bursts of
 * up to that much bus time.
 */
#define VCD_PACE_AHEAD_NS 8000000u

/*
 * Largest queue the device accepts (SET_VRING_NUM), the README quotes it:
 * QEMU's largest virtqueue, and 4x what the Linux driver asks for.
 */
#define VCD_MAX_QUEUE_SIZE 1024

/*
 * Most buffer descriptors one request may have. The Linux driver uses 2
 * per TX and control request (header and data readable, result writable)
 * and 1 per RX buffer; a driver splitting header, data and result, or a
 * buffer at a page boundary, needs a few more. A longer chain breaks its
 * queue: it is no request this device knows, and reading it costs the loop.
 */
#define VCD_MAX_CHAIN 16

/*
 * Work one queue does per wakeup, in descriptors read (every chain, its
 * indirect descriptor and the chain that broke the queue included), so a
 * queue of any size and chains of any shape delay the loop's other sources
 * by at most one budget. Past it the queue is resumed on the next loop turn
 * (vq_resume_later), after the frontends, the bus and the signals had
 * theirs. TX: 256 requests of the Linux driver through indirect tables (3
 * reads each) fit, as the 256-entry ring it fills; RX: 256 buffers of one
 * descriptor and then some; control requests may each change the link, so
 * there are also at most VCD_CTRL_REQS of them.
 */
#define VCD_TX_BUDGET 1024
#define VCD_RX_BUDGET 512
#define VCD_CTRL_BUDGET 64
#define VCD_CTRL_REQS 16

#define VCD_DEFAULT_RX_BACKLOG 1024
#define VCD_DEFAULT_TX_ACK_TIMEOUT_MS 1000

struct vcd_config {
	const char *name;		/* for logs */
	bool fd;			/* offer VIRTIO_CAN_F_CAN_FD */
	unsigned int rx_backlog;	/* frames kept while the guest has no RX buffer */
	unsigned int tx_ack_timeout_ms; /* LATE_TX_ACK: NOT_OK when no echo by then */
	const struct cfilt *tx_allow;	/* ids the guest may send (copied); NULL: any */
	uint32_t bitrate, dbitrate;	/* pace TX as a bus of this speed; 0: no pacing */
};

struct vcd_stats {
	uint64_t tx_ok;
	uint64_t tx_rejected; /* failed the spec's checks; never sent */
	uint64_t tx_failed;   /* the port refused it (ENOBUFS, link down) */
	uint64_t tx_timeout;  /* LATE_TX_ACK: no echo in time */
	uint64_t tx_stopped;  /* pending when the controller stopped */
	uint64_t tx_denied;   /* outside --tx-allow: never sent */
	uint64_t rx_delivered;
	uint64_t rx_dropped_stopped;  /* controller stopped */
	uint64_t rx_dropped_type;     /* type not negotiated */
	uint64_t rx_dropped_overflow; /* backlog full */
	uint64_t rx_dropped_small;    /* guest buffer too small */
	uint64_t busoff_events;
	/* Most descriptors one wakeup of each queue (Txq, Rxq, Controlq) read. */
	uint64_t walk_max[3];
};

int vcd_new(struct vcd **out, const struct vcd_config *cfg, const struct vcd_port_ops *ops,
	    void *port);
void vcd_free(struct vcd *d);

/* The description to give vu_backend_new(). */
const struct vu_device *vcd_vu_device(struct vcd *d);

/* The backend, for CONFIG_CHANGE_MSG on bus-off. */
void vcd_set_backend(struct vcd *d, struct vu_backend *b);

/*
 * Who tells the driver that config space changed (bus-off): 0 or -errno.
 * vcd_set_backend() installs vu_backend_config_changed(); tests may install
 * their own to observe it. NULL: nobody is told.
 */
typedef int (*vcd_config_notify_fn)(void *opaque);
void vcd_set_config_notify(struct vcd *d, vcd_config_notify_fn fn, void *opaque);

/* Events from the bus (the caller read them from the port). */
void vcd_rx_frames(struct vcd *d, const struct cframe *f, unsigned int n);

/*
 * Between vcd_rx_hold and vcd_rx_release, frames from the bus are given to
 * the guest as they come but the RX interrupt is sent once, at release:
 * one per wake-up of the port instead of one per batch read.
 */
void vcd_rx_hold(struct vcd *d);
void vcd_rx_release(struct vcd *d);
void vcd_tx_confirmed(struct vcd *d, const struct cframe *f);
void vcd_bus_off(struct vcd *d);
void vcd_bus_restarted(struct vcd *d);

/* What became of a frame: for an observer (--capture). */
enum vcd_outcome {
	VCD_TX_SENT,	 /* on the bus (with LATE_TX_ACK: confirmed) */
	VCD_TX_REJECTED, /* malformed request */
	VCD_TX_DENIED,	 /* outside --tx-allow */
	VCD_TX_FAILED,	 /* the port refused it */
	VCD_TX_TIMEOUT,	 /* LATE_TX_ACK: no confirmation in time */
	VCD_TX_STOPPED,	 /* pending when the controller stopped */
	VCD_RX_DELIVERED,
	VCD_RX_DROP_STOPPED,
	VCD_RX_DROP_TYPE,
	VCD_RX_DROP_FULL,
	VCD_RX_DROP_SMALL,
};

typedef void (*vcd_observe_fn)(void *opaque, enum vcd_outcome o, const struct cframe *f);

/* Call fn for every frame's outcome (NULL: none; the default costs nothing). */
void vcd_set_observer(struct vcd *d, vcd_observe_fn fn, void *opaque);

/* "sent", "denied", "dropped: backlog full", ... */
const char *vcd_outcome_name(enum vcd_outcome o);

/* A TX outcome (guest -> bus), else RX. */
bool vcd_outcome_is_tx(enum vcd_outcome o);

/* The name given in vcd_config (truncated to 31 bytes). */
const char *vcd_name(const struct vcd *d);

/* Milliseconds until vcd_tick() has work (LATE_TX_ACK timeouts), -1 when none. */
int vcd_timeout_ms(struct vcd *d);
void vcd_tick(struct vcd *d);

/* Controller started (START accepted and not bus-off since). */
bool vcd_started(const struct vcd *d);
uint16_t vcd_status(const struct vcd *d);
void vcd_get_stats(const struct vcd *d, struct vcd_stats *s);

#endif
