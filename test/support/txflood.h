/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A guest vCPU that keeps its TX ring full: once started it reposts every
 * TX request the moment the device sends it (from the fake port's send
 * hook, in the loop thread), so the ring never runs empty. Used by the
 * hostile-guest tests and the loop-latency benchmark. It stops by itself
 * after a time limit, so that a loop it freezes (a bug) gets free again and
 * a test can fail instead of hanging.
 */
#ifndef TXFLOOD_H
#define TXFLOOD_H

#include <stdint.h>
#include <time.h>

#include <linux/virtio_ring.h>

#include "fakeport.h"
#include "guest_driver.h"

struct txflood {
	struct fakeport *p;
	struct vring_avail *avail;
	uint16_t num, posted, idx;
	unsigned long left; /* chains it still reposts (atomic) */
	unsigned long moved;
	struct timespec until;
};

/*
 * Post a whole ring of TX requests through c (classic frames), wait until
 * the device sent them all, then make them available again at once and
 * kick: from then on, every send reposts what was sent, for at most ms.
 * The ring must have 256 entries and indirect descriptors. 0 or -errno.
 * f must stay where it is (the hook holds it) until txflood_stop().
 */
int txflood_start(struct txflood *f, struct gdrv *c, struct fakeport *p, struct fakeport_loop *d,
		  int ms);

/* Stop reposting (in the loop thread, where the hook runs) and remove the hook. */
int txflood_stop(struct txflood *f, struct fakeport_loop *d);

/* Whether it still reposts (its time limit not reached). */
int txflood_running(struct txflood *f);

#endif
