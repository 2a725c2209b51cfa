/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A mailbox between a test thread and a loop thread: the test thread posts
 * one function at a time and the loop thread runs it between two turns, so
 * tests reach a loop's state (a backend, the daemon's loop) without locks in
 * the code under test and without sleeps. bthread and fakeport_loop run
 * their loops this way.
 *
 * The loop thread watches tmbox_fd() for reading and calls tmbox_serve()
 * when it is readable; it calls tmbox_exited() once when it ends.
 */
#ifndef TMBOX_H
#define TMBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

struct tmbox {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* on CLOCK_MONOTONIC, for timed waits */
	int wake_fd;	     /* eventfd, non-blocking */
	bool stop;
	bool exited;
	/* One request at a time. */
	void (*fn)(void *ctx, void *arg);
	void *arg;
	bool busy;	/* a request is posted or running */
	bool done;
	bool abandoned; /* its waiter gave up: the loop thread ends it */
};

/* The absolute CLOCK_MONOTONIC time timeout_ms from now, for tmbox's cond. */
struct timespec tmbox_deadline(int timeout_ms);

/* A condition variable whose timed waits run on CLOCK_MONOTONIC. */
void tmbox_cond_init(pthread_cond_t *c);

/* Lock, cond and eventfd: 0 or -errno (nothing to free on failure). */
int tmbox_init(struct tmbox *mb);
void tmbox_fini(struct tmbox *mb);

static inline int tmbox_fd(const struct tmbox *mb)
{
	return mb->wake_fd;
}

/* Loop thread: drain the wake-up, run the posted request with ctx; true when asked to stop. */
bool tmbox_serve(struct tmbox *mb, void *ctx);

/* Loop thread: it has ended; every waiter returns -ESRCH from now on. */
void tmbox_exited(struct tmbox *mb);

/* Test thread: run fn(ctx, arg) in the loop thread and wait for it; -ESRCH if it ended. */
int tmbox_exec(struct tmbox *mb, void (*fn)(void *ctx, void *arg), void *arg);

/*
 * Test thread: a request that does nothing, waited for at most timeout_ms:
 * 0 once the loop thread took a turn, -ETIMEDOUT (the request stays posted
 * and the loop thread ends it), -ESRCH if it ended.
 */
int tmbox_ping(struct tmbox *mb, int timeout_ms);

/* Test thread: ask the loop thread to stop (tmbox_serve returns true). */
void tmbox_stop(struct tmbox *mb);

#endif
