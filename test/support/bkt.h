/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A backend in a thread, for integration tests: a vu_backend listening on a
 * socket in a fresh temporary directory, served by an epoll loop on
 * vu_backend_fd() in its own thread, as the daemon's loop would. The device's
 * callbacks run in that thread.
 *
 * The backend is not thread-safe: the test thread reaches it only through
 * bkt_exec (which runs a function in the loop thread between two
 * dispatches) and bkt_wait (which re-evaluates a predicate there after
 * every dispatch), so no sleep is ever needed to see what it did.
 */
#ifndef BKT_H
#define BKT_H

#include <stdbool.h>
#include <sys/resource.h>

#include "vhost-user/vu_backend.h"

struct bkt;

/* Create the directory and the backend for dev (must outlive t), listen, start the thread. */
int bkt_start(struct bkt **out, const struct vu_device *dev);

/* Stop and join the thread, free the backend, remove the directory. NULL is a no-op. */
void bkt_stop(struct bkt *t);

/* The socket path frontends connect to. */
const char *bkt_path(const struct bkt *t);

/* Run fn(b, arg) in the loop thread and wait for it to return. */
int bkt_exec(struct bkt *t, void (*fn)(struct vu_backend *b, void *arg), void *arg);

/*
 * Wait until pred(b, arg), evaluated in the loop thread, is true: checked
 * now and again after every dispatch. 0, or -ETIMEDOUT after timeout_ms.
 */
int bkt_wait(struct bkt *t, bool (*pred)(struct vu_backend *b, void *arg), void *arg,
	     int timeout_ms);

/* vu_backend_sessions / vu_backend_connected, read in the loop thread. */
unsigned int bkt_sessions(struct bkt *t);
bool bkt_connected(struct bkt *t);

/* Wait until the backend has served n sessions and has no frontend now. */
int bkt_wait_idle(struct bkt *t, unsigned int sessions, int timeout_ms);

/* First error vu_backend_dispatch returned (0 when none): the loop stops on one. */
int bkt_error(struct bkt *t);

/* Open fds of this process (/proc/self/fd), or -errno. */
int bkt_count_fds(void);

/* The fd number the next open would get (aborts when none can be opened). */
int bkt_next_fd(void);

/*
 * Set the soft RLIMIT_NOFILE to limit (fds numbered limit and above cannot
 * be opened): the old soft limit. Tests use it to run out of fds. Aborts
 * when the limit cannot be read or set.
 */
rlim_t bkt_cap_fds(rlim_t limit);

/* Whether fd is open. */
bool bkt_fd_open(int fd);

#endif
