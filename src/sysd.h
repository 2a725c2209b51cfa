/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * How service managers hand a backend its socket and hear that it is ready:
 * inherited fds (--fd, systemd's LISTEN_FDS) and the READY=1 notification.
 * Hand-coded, without libsystemd: the protocol is two environment variables
 * and one datagram, and the daemon's dependencies stay libsocketcan alone.
 */
#ifndef SYSD_H
#define SYSD_H

#include <stdbool.h>
#include <stddef.h>

/* The first fd systemd passes. */
#define SYSD_LISTEN_FDS_START 3

/*
 * The number of sockets systemd passed this process (fds 3, 4, ...): 0 when
 * LISTEN_PID is not this process or nothing was passed, -EINVAL when
 * LISTEN_FDS is not a number. The variables are removed either way, so that
 * nothing started later takes them for its own. The fds are made CLOEXEC.
 */
int sysd_listen_fds(void);

/*
 * Check that fd is an open unix stream socket that can carry vhost-user,
 * and say whether it is listening (accept frontends on it) or connected
 * (one frontend). 0, or -errno with why set to words naming what is wrong:
 * not an open fd, not a socket, not a unix socket, not a stream socket,
 * neither listening nor connected.
 */
int sysd_check_socket(int fd, bool *listening, const char **why);

/*
 * Send state (e.g. "READY=1") to the service manager's NOTIFY_SOCKET, if
 * there is one: 1 sent, 0 no NOTIFY_SOCKET, -errno on failure. Never
 * blocks.
 */
int sysd_notify(const char *state);

#endif
