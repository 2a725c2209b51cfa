/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * rtnetlink link events. Security model: the socket only takes datagrams
 * from the kernel (the caller checks the sender), but the parser trusts no
 * length anyway: every header and attribute is checked against what is
 * left before it is read, and read with memcpy (no alignment assumed).
 */
#include "linkmon.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

/* Link events are rare and small; room for a burst (many links at once). */
#define LINKMON_RCVBUF (256 * 1024)

int linkmon_open(void)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
	int s, rcvbuf = LINKMON_RCVBUF, ret;

	s = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return -errno;
	/* Best effort: the kernel caps it at net.core.rmem_max. */
	(void)setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		close(s);
		return ret;
	}
	return s;
}

/* The attributes of one link message into m: 0, or -1 when malformed. */
static int parse_attrs(const char *p, size_t len, struct linkmon_msg *m)
{
	while (len >= sizeof(struct rtattr)) {
		struct rtattr a;
		size_t plen, step;

		memcpy(&a, p, sizeof(a));
		if (a.rta_len < sizeof(a) || a.rta_len > len)
			return -1;
		plen = (size_t)a.rta_len - sizeof(a);
		if (a.rta_type == IFLA_IFNAME) {
			const char *name = p + sizeof(a);
			size_t n = strnlen(name, plen < IFNAMSIZ ? plen : IFNAMSIZ);

			/* NUL-terminated within IFNAMSIZ, or it is no interface name. */
			if (n == 0 || n >= IFNAMSIZ || n >= plen)
				return -1;
			memcpy(m->name, name, n);
			m->name[n] = '\0';
		} else if (a.rta_type == IFLA_MTU) {
			if (plen < sizeof(m->mtu))
				return -1;
			memcpy(&m->mtu, p + sizeof(a), sizeof(m->mtu));
		}
		step = RTA_ALIGN((size_t)a.rta_len);
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return 0;
}

/* One RTM_NEWLINK/RTM_DELLINK of mlen bytes (header included). */
static int parse_link(const char *p, size_t mlen, bool del, struct linkmon_msg *m)
{
	const size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct ifinfomsg));
	struct ifinfomsg ifi;

	if (mlen < NLMSG_HDRLEN + sizeof(ifi))
		return -1;
	memcpy(&ifi, p + NLMSG_HDRLEN, sizeof(ifi));
	if (ifi.ifi_index <= 0)
		return -1;
	memset(m, 0, sizeof(*m));
	m->del = del;
	m->ifindex = ifi.ifi_index;
	m->flags = ifi.ifi_flags;
	if (mlen <= off)
		return 0;
	return parse_attrs(p + off, mlen - off, m);
}

unsigned int linkmon_parse(const void *buf, size_t len, struct linkmon_msg *out, unsigned int max,
			   bool *resync)
{
	const char *p = buf;
	unsigned int n = 0;

	*resync = false;
	if (!p)
		return 0;
	while (len > 0) {
		struct nlmsghdr h;
		size_t step;

		if (len < sizeof(h)) {
			*resync = true;
			break;
		}
		memcpy(&h, p, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len) {
			*resync = true;
			break;
		}
		switch (h.nlmsg_type) {
		case NLMSG_ERROR:
		case NLMSG_OVERRUN:
			*resync = true;
			break;
		case RTM_NEWLINK:
		case RTM_DELLINK:
			if (n >= max || !out)
				*resync = true;
			else if (parse_link(p, h.nlmsg_len, h.nlmsg_type == RTM_DELLINK, &out[n]) ==
				 0)
				n++;
			else
				*resync = true;
			break;
		default:
			break;
		}
		step = ((size_t)h.nlmsg_len + NLMSG_ALIGNTO - 1) & ~(size_t)(NLMSG_ALIGNTO - 1);
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return n;
}
