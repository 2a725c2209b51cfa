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

/* The most sockets taken from LISTEN_FDS: more is refused (-ERANGE). */
#define SYSD_MAX_LISTEN_FDS 64
/* Longest LISTEN_FDNAMES entry kept (systemd allows 255 characters). */
#define SYSD_FDNAME_MAX 256

/* What systemd passed, for messages that name where a socket came from. */
struct sysd_listen {
	char count[24]; /* LISTEN_FDS as given (cut, printable only), "" if unset */
	/* LISTEN_FDNAMES entry of fd 3 + i, "" when unnamed or not usable. */
	char names[SYSD_MAX_LISTEN_FDS][SYSD_FDNAME_MAX];
};

/*
 * The number of sockets systemd passed this process (fds 3, 4, ...): 0 when
 * LISTEN_PID is not this process or nothing was passed, -EINVAL when
 * LISTEN_FDS is not a number, -ERANGE when it is more than
 * SYSD_MAX_LISTEN_FDS. The variables are removed either way, so that
 * nothing started later takes them for its own. The fds are made CLOEXEC.
 * If l is not NULL it gets LISTEN_FDS's text and the fds' names: those of
 * LISTEN_FDNAMES (colon separated) when it names exactly that many and each
 * name is printable ASCII; "" otherwise.
 */
int sysd_listen_fds(struct sysd_listen *l);

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

/*
 * The same in two steps, for a process that confines itself in between:
 * a datagram socket connected to NOTIFY_SOCKET (1 with its fd in *fd, 0
 * when there is no NOTIFY_SOCKET, or -errno; *fd is -1 unless 1), then a
 * state sent on it (1 or -errno, never blocks).
 */
int sysd_notify_open(int *fd);
int sysd_notify_send(int fd, const char *state);

#endif
