/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * vhost-user message I/O over a unix stream socket, with file descriptors
 * passed as SCM_RIGHTS. Used by the backend and by the frontend test client.
 */
#ifndef VU_MSG_H
#define VU_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "vhost_user.h"

struct vu_msg {
	struct vhost_user_hdr hdr;
	union vhost_user_payload payload;
	int fds[VHOST_USER_MAX_FDS];
	unsigned int nfds;
};

/*
 * Receive one message: header (with any fds), then exactly hdr.size payload
 * bytes, looping over short reads and EINTR. Checks the version bits, that
 * no reserved flag bit is set, MSG_CTRUNC, and that size is at most
 * VHOST_USER_MAX_PAYLOAD; it does not know per-request sizes (the backend
 * does). On any error every fd received is closed and m->nfds is 0.
 * Returns 0, -ECONNRESET when the peer closed the connection before a
 * header, -EPROTO for a malformed message, or -errno.
 */
int vu_msg_recv(int sock, struct vu_msg *m);

/*
 * The same, a piece at a time, for a non-blocking socket: reads what the
 * socket has of the message in m, *got bytes of which arrived earlier (0
 * starts a new message). Returns 1 when the message is whole, 0 when the
 * socket has no more for now (call again when it is readable), or an error
 * as vu_msg_recv; on an error every fd is closed and *got is 0. Never reads
 * past the message.
 */
int vu_msg_recv_some(int sock, struct vu_msg *m, size_t *got);

/* Send header + hdr.size payload bytes and m->fds as SCM_RIGHTS (not closed). */
int vu_msg_send(int sock, const struct vu_msg *m);

/* Close every fd in m and set nfds to 0. */
void vu_msg_close_fds(struct vu_msg *m);

/* Take fd i out of m (the caller now owns it); -1 when there is none. */
int vu_msg_take_fd(struct vu_msg *m, unsigned int i);

/* Request name for logs ("SET_MEM_TABLE"), "UNKNOWN" when unknown. */
const char *vu_msg_name(uint32_t request);

#endif
