/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * vhost-user message I/O over a unix stream socket, with file descriptors
 * passed as SCM_RIGHTS. Used by the backend and by the frontend tool.
 */
#ifndef VU_MSG_H
#define VU_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "vhost_user.h"

/*
 * One message: header, payload and the fds that came with it. The fds in
 * fds[0..nfds) belong to whoever holds the message: received ones are the
 * receiver's until taken (vu_msg_take_fd) or closed (vu_msg_close_fds); a
 * taken fd's slot is -1. For sending, the caller fills hdr, hdr.size bytes
 * of payload, and fds/nfds (not taken by the send).
 */
struct vu_msg {
	struct vhost_user_hdr hdr;
	union vhost_user_payload payload;
	int fds[VHOST_USER_MAX_FDS];
	unsigned int nfds;
};

/*
 * Receive one whole message from sock: the header (with its fds), then
 * exactly hdr.size payload bytes, over short reads and EINTR. Checks the
 * version bits, that no reserved flag bit is set, that no fd was cut off
 * (MSG_CTRUNC) and that hdr.size is at most VHOST_USER_MAX_PAYLOAD; it does
 * not know per-request sizes (the backend does). Fds arrive close-on-exec;
 * fds past VHOST_USER_MAX_FDS are closed. On success the fds are the
 * caller's (see struct vu_msg). On any error every fd received is closed
 * and m->nfds is 0.
 * Returns 0; -ECONNRESET when the peer closed the connection before a
 * header; -EPROTO for a malformed message (bad header, fds cut off, the
 * peer closed inside a message); -EAGAIN when nothing arrived (a
 * non-blocking socket or a receive timeout); -ETIMEDOUT when part of a
 * message arrived and the rest did not; or -errno from recvmsg.
 */
int vu_msg_recv(int sock, struct vu_msg *m);

/*
 * The same, a piece at a time, for a non-blocking socket: reads what sock
 * has of the message in m, *got bytes of which arrived earlier (*got 0
 * starts a new message; keep m and *got between calls). Never reads past
 * the message, so the next one's fds stay with it.
 * Returns 1 when the message is whole (*got then counts all of it: set it
 * to 0 before the next message), 0 when the socket has no more for now
 * (call again when it is readable), or an error as vu_msg_recv (never
 * -EAGAIN or -ETIMEDOUT); on an error every fd is closed and *got is 0.
 */
int vu_msg_recv_some(int sock, struct vu_msg *m, size_t *got);

/*
 * Send the header, hdr.size payload bytes and m->fds (SCM_RIGHTS, with the
 * first bytes), over short writes and EINTR, without SIGPIPE. The fds stay
 * the caller's. Returns 0; -EINVAL when hdr.size > VHOST_USER_MAX_PAYLOAD
 * or nfds > VHOST_USER_MAX_FDS (nothing sent); -errno from sendmsg/send
 * (-EAGAIN: a non-blocking socket is full; -EPIPE: the peer is gone). After
 * an error part of the message may have gone out: the connection is then
 * of no further use.
 */
int vu_msg_send(int sock, const struct vu_msg *m);

/* Close every fd still in m (slots of -1 are skipped); nfds becomes 0. */
void vu_msg_close_fds(struct vu_msg *m);

/* Take fd i out of m: the caller now owns it, its slot becomes -1. -1 when there is none. */
int vu_msg_take_fd(struct vu_msg *m, unsigned int i);

/*
 * The request's name for logs ("SET_MEM_TABLE", from
 * VHOST_USER_REQUEST_LIST), or "UNKNOWN" for 0 and ids past the list. The
 * string is static.
 */
const char *vu_msg_name(uint32_t request);

#endif
