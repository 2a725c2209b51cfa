/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * What tests and benchmarks see inside the loop, and the daemon does not:
 * no file of the daemon includes this header. The hooks live in loop.c,
 * next to the struct they read, so that struct loop stays defined in one
 * file; they are called from a loop_run control callback (the loop's
 * thread), between turns.
 */
#ifndef LOOP_TEST_H
#define LOOP_TEST_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"

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

/* The loop's turn measurement: set on to measure, read or reset it. */
struct loop_turns *loop_test_turns(struct loop *m);

/* The loop's epoll set, to see which fds are in it (/proc/self/fdinfo). */
int loop_test_epfd(const struct loop *m);

#endif
