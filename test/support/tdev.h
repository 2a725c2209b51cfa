/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A trivial device for the protocol tests, behind struct vu_device_ops:
 *   queue 0 (TDEV_Q_XFORM): every chain is pushed back at once with its
 *     readable bytes, each inverted (~b), written into its writable part;
 *     len = bytes written (the smaller of the two sizes).
 *   queue 1 (TDEV_Q_HOLD): chains are held until tdev_release() or
 *     queue_stop, then pushed back with len 0.
 *   config space: TDEV_CONFIG_SIZE bytes, initially 0x10, 0x11, ...;
 *     writable by SET_CONFIG; reads past it give zeros.
 * Its callbacks run in the backend's thread; everything the test thread
 * reads goes through the device's mutex (tdev_snapshot).
 */
#ifndef TDEV_H
#define TDEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fe.h"
#include "vhost-user/vu_backend.h"

#define TDEV_NUM_QUEUES 2
#define TDEV_Q_XFORM 0
#define TDEV_Q_HOLD 1
#define TDEV_CONFIG_SIZE 8
#define TDEV_MAX_HELD 1024

struct tdev_stats {
	unsigned int starts[TDEV_NUM_QUEUES];
	unsigned int stops[TDEV_NUM_QUEUES];
	unsigned int kicks[TDEV_NUM_QUEUES];
	unsigned int chains[TDEV_NUM_QUEUES]; /* popped */
	unsigned int held;		      /* on queue 1 now */
	unsigned int pop_errors;	      /* vq_pop failures (broken ring) */
	unsigned int resets;
	unsigned int running; /* queues between start and stop */
	uint64_t features;    /* last set_features */
	int config_changed;   /* what vu_backend_config_changed returned last */
	uint8_t config[TDEV_CONFIG_SIZE];
};

struct tdev {
	struct vu_device dev; /* hand &dev to the backend */
	pthread_mutex_t lock;
	struct tdev_stats st;
	struct vq *q[TDEV_NUM_QUEUES]; /* started queues */
	uint16_t held[TDEV_MAX_HELD];
};

/* Fill dev (name "tdev", 2 queues of at most 1024 entries, config space). */
void tdev_init(struct tdev *d);
void tdev_fini(struct tdev *d);

/* A consistent copy of the counters. */
void tdev_snapshot(struct tdev *d, struct tdev_stats *out);

/*
 * Loop-thread functions for bkt_exec (arg: the struct tdev):
 * tdev_release pushes every held chain (len 0) and notifies;
 * tdev_config_bump increments config byte 0 and tells the frontend.
 */
void tdev_release(struct vu_backend *b, void *arg);
void tdev_config_bump(struct vu_backend *b, void *arg);

/*
 * Frontend side: move n chains through queue TDEV_Q_XFORM of a started
 * session, at most batch (0: 64) in flight, one readable and one writable
 * buffer each (1..64 bytes, sizes varying with seq), added with add (may be
 * NULL). Checks every used entry: the right id, len = the smaller size, the
 * transformed bytes, and nothing written past len. Waits at most
 * timeout_ms for each entry. 0, -EBADMSG on wrong data, or a fe_* error.
 */
int tdev_fe_xform(struct fe *f, unsigned int n, const struct fe_add_opts *add, unsigned int batch,
		  int timeout_ms);

/* The transform the device applies, for the test's expectations. */
static inline uint8_t tdev_xform(uint8_t b)
{
	return (uint8_t)~b;
}

#endif
