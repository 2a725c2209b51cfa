/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A backend in a thread, for integration tests: a vu_backend listening on a
 * socket in a fresh temporary directory, served by an epoll loop on
 * vu_backend_fd() in its own thread, as the daemon's loop would. The device's
 * callbacks run in that thread.
 *
 * The backend is not thread-safe: the test thread reaches it only through
 * bthread_exec (which runs a function in the loop thread between two
 * dispatches) and bthread_wait (which re-evaluates a predicate there after
 * every dispatch), so no sleep is ever needed to see what it did.
 */
#ifndef BTHREAD_H
#define BTHREAD_H

#include <stdbool.h>
#include <sys/resource.h>

#include "vhost-user/vu_backend.h"

struct cframe;
struct device;

struct bthread;

/* Create the directory and the backend for dev (must outlive t), listen, start the thread. */
int bthread_start(struct bthread **out, const struct vu_device *dev);

/* Stop and join the thread, free the backend, remove the directory. NULL is a no-op. */
void bthread_stop(struct bthread *t);

/* The socket path frontends connect to. */
const char *bthread_path(const struct bthread *t);

/* Run fn(b, arg) in the loop thread and wait for it to return. */
int bthread_exec(struct bthread *t, void (*fn)(struct vu_backend *b, void *arg), void *arg);

/*
 * Wait until pred(b, arg), evaluated in the loop thread, is true: checked
 * now and again after every dispatch. 0, or -ETIMEDOUT after timeout_ms.
 */
int bthread_wait(struct bthread *t, bool (*pred)(struct vu_backend *b, void *arg), void *arg,
	     int timeout_ms);

/* vu_backend_sessions / vu_backend_connected, read in the loop thread. */
unsigned int bthread_sessions(struct bthread *t);
bool bthread_connected(struct bthread *t);

/* Wait until the backend has served n sessions and has no frontend now. */
int bthread_wait_idle(struct bthread *t, unsigned int sessions, int timeout_ms);

/* First error vu_backend_dispatch returned (0 when none): the loop stops on one. */
int bthread_error(struct bthread *t);

/*
 * Hand dev n frames from "the bus" (device_rx_frames) in the loop thread,
 * between two dispatches: 0, or bthread_exec's error.
 */
int bthread_device_rx(struct bthread *t, struct device *dev, const struct cframe *f,
		      unsigned int n);

#endif
