/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Link events from the kernel: an rtnetlink socket subscribed to
 * RTNLGRP_LINK (interfaces created, deleted, renamed, MTU or flags changed),
 * and a parser for what it reads. The CAN port uses it to notice an adapter
 * unplugged and plugged back without polling. Knows nothing of CAN.
 *
 * The messages only say "look again": the port re-checks the interface by
 * name with ioctls before it acts, so a message is a hint, never the truth.
 */
#ifndef LINKMON_H
#define LINKMON_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One RTM_NEWLINK or RTM_DELLINK, as far as it could be read. */
struct linkmon_msg {
	bool del;	     /* RTM_DELLINK */
	int ifindex;	     /* > 0 */
	char name[IFNAMSIZ]; /* IFLA_IFNAME, "" when absent or malformed */
	uint32_t mtu;	     /* IFLA_MTU, 0 when absent */
	unsigned int flags;  /* ifi_flags (IFF_UP ...) */
};

/*
 * A non-blocking rtnetlink socket bound to the link group: the fd, or
 * -errno. Its receive buffer is enlarged; an overrun still shows as ENOBUFS
 * on recv (then the caller must re-check everything: events were lost).
 */
int linkmon_open(void);

/*
 * Parse the len bytes of one datagram read from it. Every well-formed link
 * message goes to out (at most max; later ones are counted, not stored);
 * other message types are skipped. A message whose lengths do not add up
 * ends the parse: the rest of the datagram cannot be trusted. *resync is set
 * when the datagram cannot be trusted or says events were lost (NLMSG_ERROR,
 * NLMSG_OVERRUN, a truncated or malformed message, more than max messages):
 * the caller must then re-check every interface it cares about. Returns the
 * number of messages stored in out.
 */
unsigned int linkmon_parse(const void *buf, size_t len, struct linkmon_msg *out, unsigned int max,
			   bool *resync);

#endif
