/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The virtio-can device: Txq, Rxq and Controlq, frame checks and
 * conversion, controller state, bus-off and config space. It reaches CAN
 * through struct device_port_ops (the real port, or a fake in unit tests) and
 * knows nothing of sockets.
 */
#ifndef DEVICE_H
#define DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "cfilt.h"
#include "cframe.h"
#include "vhost-user/vu_backend.h"

struct device;

struct device_port_ops {
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
#define DEVICE_PACE_AHEAD_NS 8000000u

/*
 * Largest queue the device accepts (SET_VRING_NUM), the README quotes it:
 * QEMU's largest virtqueue, and 4x what the Linux driver asks for.
 */
#define DEVICE_MAX_QUEUE_SIZE 1024

/*
 * Most buffer descriptors one request may have. The Linux driver uses 2
 * per TX and control request (header and data readable, result writable)
 * and 1 per RX buffer; a driver splitting header, data and result, or a
 * buffer at a page boundary, needs a few more. A longer chain breaks its
 * queue: it is no request this device knows, and reading it costs the loop.
 */
#define DEVICE_MAX_CHAIN 16

/*
 * Work one queue does per wakeup, in descriptors read (every chain, its
 * indirect descriptor and the chain that broke the queue included), so a
 * queue of any size and chains of any shape delay the loop's other sources
 * by at most one budget. Past it the queue is resumed on the next loop turn
 * (vq_resume_later), after the frontends, the bus and the signals had
 * theirs. TX: 256 requests of the Linux driver through indirect tables (3
 * reads each) fit, as the 256-entry ring it fills; RX: 256 buffers of one
 * descriptor and then some; control requests may each change the link, so
 * there are also at most DEVICE_CTRL_REQS of them.
 */
#define DEVICE_TX_BUDGET 1024
#define DEVICE_RX_BUDGET 512
#define DEVICE_CTRL_BUDGET 64
#define DEVICE_CTRL_REQS 16

#define DEVICE_DEFAULT_RX_BACKLOG 1024
#define DEVICE_DEFAULT_TX_ACK_TIMEOUT_MS 1000

struct device_config {
	const char *name;		/* for logs */
	bool fd;			/* offer VIRTIO_CAN_F_CAN_FD */
	unsigned int rx_backlog;	/* frames kept while the guest has no RX buffer */
	unsigned int tx_ack_timeout_ms; /* LATE_TX_ACK: NOT_OK when no echo by then */
	const struct cfilt *tx_allow;	/* ids the guest may send (copied); NULL: any */
	uint32_t bitrate, dbitrate;	/* pace TX as a bus of this speed; 0: no pacing */
};

/* The device's queues, in the spec's order: the index of walk_max. */
enum device_queue {
	DEVICE_QUEUE_TX,
	DEVICE_QUEUE_RX,
	DEVICE_QUEUE_CTRL,
	DEVICE_NUM_QUEUES,
};

/*
 * What became of a frame, each outcome once: X(id, counter, name, label) is
 *   id       DEVICE_<id>, its value in enum device_outcome
 *   counter  its counter in struct device_stats
 *   name     what an observer (--capture) records
 *   label    its place on the printed counters' line ("tx: ok 3, ...")
 * TX (guest -> bus) first, then RX; each in the order of its printed line.
 * rejected: failed the spec's checks, never sent; failed: the port refused
 * it (ENOBUFS, link down); ack timeout: LATE_TX_ACK saw no echo in time;
 * stopped: pending (TX) or arriving (RX) while the controller was stopped;
 * denied: outside --tx-allow, never sent; type: not negotiated.
 */
#define DEVICE_TX_OUTCOMES(X)                                                                      \
	X(TX_SENT, tx_ok, "sent", "ok")                                                            \
	X(TX_REJECTED, tx_rejected, "rejected", "rejected")                                        \
	X(TX_FAILED, tx_failed, "failed", "failed")                                                \
	X(TX_TIMEOUT, tx_timeout, "failed: no confirmation", "ack timeout")                        \
	X(TX_STOPPED, tx_stopped, "failed: controller stopped", "stopped")                         \
	X(TX_DENIED, tx_denied, "denied", "denied")
#define DEVICE_RX_OUTCOMES(X)                                                                      \
	X(RX_DELIVERED, rx_delivered, "delivered", "delivered")                                    \
	X(RX_DROP_STOPPED, rx_dropped_stopped, "dropped: controller stopped", "dropped: stopped")  \
	X(RX_DROP_TYPE, rx_dropped_type, "dropped: type not negotiated", "type")                   \
	X(RX_DROP_FULL, rx_dropped_overflow, "dropped: backlog full", "backlog full")              \
	X(RX_DROP_SMALL, rx_dropped_small, "dropped: guest buffer too small", "buffer too small")
#define DEVICE_OUTCOMES(X) DEVICE_TX_OUTCOMES(X) DEVICE_RX_OUTCOMES(X)

#define DEVICE_OUTCOME_ENUM(id, counter, name, label) DEVICE_##id,
enum device_outcome { DEVICE_OUTCOMES(DEVICE_OUTCOME_ENUM) DEVICE_OUTCOME_COUNT };
#define DEVICE_OUTCOME_ONE(id, counter, name, label) +1
#define DEVICE_TX_OUTCOME_COUNT (0 DEVICE_TX_OUTCOMES(DEVICE_OUTCOME_ONE))

#define DEVICE_OUTCOME_FIELD(id, counter, name, label) uint64_t counter;
struct device_stats {
	/* One counter per outcome, by name or by enum device_outcome. */
	union {
		uint64_t outcome[DEVICE_OUTCOME_COUNT];
		struct {
			DEVICE_OUTCOMES(DEVICE_OUTCOME_FIELD)
		};
	};
	uint64_t busoff_events;
	/* Most descriptors one wakeup of each queue read. */
	uint64_t walk_max[DEVICE_NUM_QUEUES];
};

int device_new(struct device **out, const struct device_config *cfg, const struct device_port_ops *ops,
	    void *port);
void device_free(struct device *d);

/* The description to give vu_backend_new(). */
const struct vu_device *device_vu_device(struct device *d);

/* The backend, for CONFIG_CHANGE_MSG on bus-off. */
void device_set_backend(struct device *d, struct vu_backend *b);

/*
 * Who tells the driver that config space changed (bus-off): 0 or -errno.
 * device_set_backend() installs vu_backend_config_changed(); tests may install
 * their own to observe it. NULL: nobody is told.
 */
typedef int (*device_config_notify_fn)(void *opaque);
void device_set_config_notify(struct device *d, device_config_notify_fn fn, void *opaque);

/* Events from the bus (the caller read them from the port). */
void device_rx_frames(struct device *d, const struct cframe *f, unsigned int n);

/*
 * Between device_rx_hold and device_rx_release, frames from the bus are given to
 * the guest as they come but the RX interrupt is sent once, at release:
 * one per wake-up of the port instead of one per batch read.
 */
void device_rx_hold(struct device *d);
void device_rx_release(struct device *d);
void device_tx_confirmed(struct device *d, const struct cframe *f);
void device_bus_off(struct device *d);
void device_bus_restarted(struct device *d);

/*
 * Called with n just before the device hands n frames to the port's send
 * (the loop takes the port's fds out of its epoll set in a flood). NULL:
 * nobody.
 */
typedef void (*device_before_send_fn)(void *opaque, unsigned int n);
void device_set_before_send(struct device *d, device_before_send_fn fn, void *opaque);

typedef void (*device_observe_fn)(void *opaque, enum device_outcome o, const struct cframe *f);

/* Call fn for every frame's outcome (NULL: none; the default costs nothing). */
void device_set_observer(struct device *d, device_observe_fn fn, void *opaque);

/* Its name in the table above ("sent", "dropped: backlog full"), "?" for none. */
const char *device_outcome_name(enum device_outcome o);

/* Its label on the counters' line ("ok", "backlog full"), "?" for none. */
const char *device_outcome_label(enum device_outcome o);

/* A TX outcome (guest -> bus), else RX. */
bool device_outcome_is_tx(enum device_outcome o);

/* The name given in device_config (truncated to 31 bytes). */
const char *device_name(const struct device *d);

/* Milliseconds until device_tick() has work (LATE_TX_ACK timeouts), -1 when none. */
int device_timeout_ms(struct device *d);
void device_tick(struct device *d);

/* Controller started (START accepted and not bus-off since). */
bool device_started(const struct device *d);
uint16_t device_status(const struct device *d);
void device_get_stats(const struct device *d, struct device_stats *s);

#endif
