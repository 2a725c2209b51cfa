/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A trivial device for the protocol tests, behind struct vu_device_ops:
 *   queue 0 (TESTDEV_Q_XFORM): every chain is pushed back at once with its
 *     readable bytes, each inverted (~b), written into its writable part;
 *     len = bytes written (the smaller of the two sizes).
 *   queue 1 (TESTDEV_Q_HOLD): chains are held until testdev_release() or
 *     queue_stop, then pushed back with len 0.
 *   config space: TESTDEV_CONFIG_SIZE bytes, initially 0x10, 0x11, ...;
 *     writable by SET_CONFIG; reads past it give zeros.
 * Its callbacks run in the backend's thread; everything the test thread
 * reads goes through the device's mutex (testdev_snapshot).
 */
#ifndef TESTDEV_H
#define TESTDEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fe.h"
#include "vhost-user/vu_backend.h"

#define TESTDEV_NUM_QUEUES 2
#define TESTDEV_Q_XFORM 0
#define TESTDEV_Q_HOLD 1
#define TESTDEV_CONFIG_SIZE 8
#define TESTDEV_MAX_HELD 1024

struct testdev_stats {
	unsigned int starts[TESTDEV_NUM_QUEUES];
	unsigned int stops[TESTDEV_NUM_QUEUES];
	unsigned int kicks[TESTDEV_NUM_QUEUES];
	unsigned int chains[TESTDEV_NUM_QUEUES]; /* popped */
	unsigned int held;		      /* on queue 1 now */
	unsigned int pop_errors;	      /* vq_pop failures (broken ring) */
	unsigned int resets;
	unsigned int running; /* queues between start and stop */
	uint64_t features;    /* last set_features */
	int config_changed;   /* what vu_backend_config_changed returned last */
	uint8_t config[TESTDEV_CONFIG_SIZE];
};

struct testdev {
	struct vu_device dev; /* hand &dev to the backend */
	pthread_mutex_t lock;
	struct testdev_stats st;
	struct vq *q[TESTDEV_NUM_QUEUES]; /* started queues */
	uint16_t held[TESTDEV_MAX_HELD];
};

/* Fill dev (name "testdev", 2 queues of at most 1024 entries, config space). */
void testdev_init(struct testdev *d);
void testdev_fini(struct testdev *d);

/* A consistent copy of the counters. */
void testdev_snapshot(struct testdev *d, struct testdev_stats *out);

/*
 * Loop-thread functions for bthread_exec (arg: the struct testdev):
 * testdev_release pushes every held chain (len 0) and notifies;
 * testdev_config_bump increments config byte 0 and tells the frontend.
 */
void testdev_release(struct vu_backend *b, void *arg);
void testdev_config_bump(struct vu_backend *b, void *arg);

/* A bthread_wait predicate (arg: the struct testdev): every queue runs. */
bool testdev_all_running(struct vu_backend *b, void *arg);

/*
 * Frontend side: move n chains through queue TESTDEV_Q_XFORM of a started
 * session, at most batch (0: 64) in flight, one readable and one writable
 * buffer each (1..64 bytes, sizes varying with seq), added with add (may be
 * NULL). Checks every used entry: the right id, len = the smaller size, the
 * transformed bytes, and nothing written past len. Waits at most
 * timeout_ms for each entry. 0, -EBADMSG on wrong data, or a fe_* error.
 */
int testdev_fe_xform(struct fe *f, unsigned int n, const struct fe_add_opts *add, unsigned int batch,
		  int timeout_ms);

/* The transform the device applies, for the test's expectations. */
static inline uint8_t testdev_xform(uint8_t b)
{
	return (uint8_t)~b;
}

#endif
