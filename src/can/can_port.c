/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The SocketCAN port: raw AF_CAN sockets, batched with sendmmsg/recvmmsg.
 *
 * Sockets:
 * - in == out: one socket bound to the interface. The kernel never hands a
 *   raw socket its own frames unless CAN_RAW_RECV_OWN_MSGS is on, so the
 *   guest never sees its own frames; with transmit confirmation on, the
 *   echoes come back flagged MSG_CONFIRM and become TX_DONE events.
 * - in != out: an rx socket bound to in (every frame) and a tx socket bound
 *   to out that takes no bus frames (empty CAN_RAW_FILTER), only error
 *   frames. With transmit confirmation on, the tx socket accepts every
 *   frame again (a filter cannot select "own frames only") and drops what
 *   is not flagged MSG_CONFIRM.
 * Error frames (bus-off, restarted) are subscribed on the socket bound to
 * out; other error classes are ignored.
 * - An rx filter (--rx-filter) is a CAN_RAW_FILTER on the rx socket, so
 *   that the kernel drops filtered traffic before it costs us anything.
 *   One exception: one shared socket with transmit confirmation on, where
 *   the kernel filter would also drop our own echoes; then the socket takes
 *   every frame and the filter is applied here, to bus frames only.
 *
 * Link control (can_port_start/stop) only touches out: it is the controller
 * the guest drives. libsocketcan first; where it fails, a plain SIOCSIFFLAGS.
 *
 * Hotplug: an rtnetlink socket (linkmon) reports every link created,
 * deleted, renamed or changed. When in or out is deleted or renamed away
 * (or a raw socket says ENODEV), the port closes its raw sockets and says
 * CAN_PORT_EV_GONE; while gone, frames fail with ENODEV. When an interface
 * of that name (re)appears, it is checked as at start-up (a CAN interface,
 * its MTU), the sockets are bound again with the same options (CAN FD,
 * error frames, rx filter, transmit confirmation), the link is brought up
 * again if the guest's controller is started (--link-up, bit rates), and
 * the port says CAN_PORT_EV_BACK. An MTU change on a bound interface is
 * followed too: out at CAN_MTU means the guest's CAN FD frames fail with
 * EMSGSIZE, counted, and logged once per change.
 */
#define _GNU_SOURCE /* sendmmsg, recvmmsg */
#include "can_port.h"

#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/can.h>
#include <linux/can/error.h>
#include <linux/can/netlink.h>
#include <linux/can/raw.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <libsocketcan.h>

#include "linkmon.h"
#include "vhost-user/vlog.h"

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

#define TAG "can"

/* Frames per sendmmsg/recvmmsg call. */
#define CP_BATCH 32
/* A roomy receive buffer: bursts on a busy bus should not be dropped. */
#define CP_RCVBUF (1 << 20)

struct can_port {
	int tx_fd; /* bound to out (and in, when they are the same); -1 while gone */
	int rx_fd; /* bound to in; equal to tx_fd when in == out */
	int nl_fd; /* rtnetlink link events (linkmon) */
	bool same;
	bool fd_capable;   /* both interfaces carried CAN FD at start-up */
	bool out_fd;	   /* out's MTU is CANFD_MTU now: FD frames can go out */
	bool tx_fd_frames; /* the tx socket has CAN_RAW_FD_FRAMES */
	bool rx_fd_frames; /* the rx socket has it (in != out) */
	bool link_ctl;	   /* link_up_on_start */
	bool tx_confirm;   /* CAN_RAW_RECV_OWN_MSGS is on (or wanted, while gone) */
	bool has_state;	   /* libsocketcan knows out's controller state */
	bool has_filter;   /* rx_filter given */
	bool gone;	   /* in or out went away: no sockets until it is back */
	bool want_up;	   /* link_ctl: the guest's controller is started */
	unsigned int tx_ifindex, rx_ifindex; /* what the sockets are bound to */
	uint32_t bitrate, dbitrate;
	bool user_filter; /* rx_filter applied here (the kernel's passes all) */
	struct cfilt rx_filter;
	uint32_t ovfl_tx; /* last SO_RXQ_OVFL count seen on each socket */
	uint32_t ovfl_rx;
	unsigned long ovfl_past; /* the counts of sockets closed since */
	struct can_port_stats stats;
	char out_name[IFNAMSIZ];
	char in_name[IFNAMSIZ];
	/* Lines the bus or the guest (START/STOP) can cause at will. */
	struct vlog_limit log_limit;
};

static int apply_rx_filter(struct can_port *p, bool echoes);
static void check_mtu(struct can_port *p);
static int port_link_up(struct can_port *p);

static bool valid_ifname(const char *name)
{
	return name && name[0] != '\0' && strnlen(name, IFNAMSIZ) < IFNAMSIZ;
}

static int raw_socket(int extra_flags)
{
	int s = socket(AF_CAN, SOCK_RAW | SOCK_CLOEXEC | extra_flags, CAN_RAW);

	if (s >= 0)
		return s;
	/* No AF_CAN at all, or AF_CAN without the raw protocol (can-raw). */
	if (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)
		return -EAFNOSUPPORT;
	return -errno;
}

/*
 * if_nametoindex for the whole daemon, libsocketcan's calls included. glibc's
 * asks the kernel on a socket of the first family it can open, AF_UNIX then
 * AF_INET; the sandbox allows neither (an AF_UNIX datagram socket could
 * reach any socket file on the host), so every lookup after start-up (a
 * guest's START with --link-up, a re-plugged adapter) would kill the
 * process. This definition takes the place of glibc's, also for the shared
 * libraries (the executable's symbols come first), and asks the same ioctl
 * on a route netlink socket, which the sandbox allows. It lives in this
 * file, which every program with a port links, rather than alone in the
 * archive, where a sanitizer runtime's interceptor would be picked first.
 */
unsigned int if_nametoindex(const char *name)
{
	struct ifreq ifr;
	size_t n = name ? strnlen(name, IFNAMSIZ) : 0;
	int s, ret, err;

	if (n == 0 || n >= IFNAMSIZ) {
		errno = ENODEV;
		return 0;
	}
	s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return 0;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, n);
	ret = ioctl(s, SIOCGIFINDEX, &ifr);
	err = errno;
	close(s);
	if (ret < 0 || ifr.ifr_ifindex <= 0) {
		errno = ret < 0 ? err : ENODEV;
		return 0;
	}
	return (unsigned int)ifr.ifr_ifindex;
}

/* The interface behind name, looked up on s: index, type, FD capability. */
static int iface_probe(int s, const char *name, unsigned int *ifindex, bool *fd_capable)
{
	struct ifreq ifr;
	unsigned int idx;

	if (!valid_ifname(name))
		return -ENODEV;
	idx = if_nametoindex(name);
	if (idx == 0)
		return -ENODEV;

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0)
		return errno == ENODEV ? -ENODEV : -errno;
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_CAN)
		return -EMEDIUMTYPE;

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(s, SIOCGIFMTU, &ifr) < 0)
		return errno == ENODEV ? -ENODEV : -errno;

	if (ifindex)
		*ifindex = idx;
	if (fd_capable)
		*fd_capable = ifr.ifr_mtu == (int)CANFD_MTU;
	return 0;
}

int can_port_check(const char *ifname, bool *fd_capable)
{
	int s, ret;

	s = raw_socket(0);
	if (s < 0)
		return s;
	ret = iface_probe(s, ifname, NULL, fd_capable);
	close(s);
	return ret;
}

const char *can_port_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return "no error";
	case EAFNOSUPPORT:
		return "the kernel has no CAN support (CONFIG_CAN, can-raw)";
	case ENODEV:
		return "no such network interface";
	case EMEDIUMTYPE:
		return "not a CAN interface";
	case EPERM:
	case EACCES:
		return "not permitted (CAP_NET_ADMIN or CAP_NET_RAW needed)";
	default:
		return strerror(err < 0 ? -err : err);
	}
}

static int set_opt(int s, int level, int name, const void *val, socklen_t len)
{
	return setsockopt(s, level, name, val, len) < 0 ? -errno : 0;
}

/*
 * A raw socket on ifname, non-blocking, options set before bind() so that
 * nothing unwanted is queued in between.
 */
static int open_bound(const char *ifname, bool *fd_out, bool is_tx, bool is_rx, int *out,
		      unsigned int *ifindex_out)
{
	struct sockaddr_can addr;
	unsigned int ifindex = 0;
	bool fd = false;
	int s, ret, one = 1, rcvbuf = CP_RCVBUF;

	s = raw_socket(SOCK_NONBLOCK);
	if (s < 0)
		return s;
	ret = iface_probe(s, ifname, &ifindex, &fd);
	if (ret < 0)
		goto fail;
	if (fd) {
		ret = set_opt(s, SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &one, sizeof(one));
		if (ret < 0)
			goto fail;
	}
	if (!is_rx) {
		/* No bus frames on a tx-only socket (until tx confirmation). */
		ret = set_opt(s, SOL_CAN_RAW, CAN_RAW_FILTER, NULL, 0);
		if (ret < 0)
			goto fail;
	}
	if (is_tx) {
		can_err_mask_t errs = CAN_ERR_BUSOFF | CAN_ERR_RESTARTED;

		ret = set_opt(s, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &errs, sizeof(errs));
		if (ret < 0)
			goto fail;
	}
	ret = set_opt(s, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	if (ret < 0)
		goto fail;
	/* Best effort: the kernel caps it at net.core.rmem_max. */
	(void)setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));

	memset(&addr, 0, sizeof(addr));
	addr.can_family = AF_CAN;
	addr.can_ifindex = (int)ifindex;
	if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		ret = errno == ENODEV ? -ENODEV : -errno;
		goto fail;
	}
	*fd_out = fd;
	*out = s;
	*ifindex_out = ifindex;
	return 0;
fail:
	close(s);
	return ret;
}

/*
 * One rtnetlink request and its first answer into ans (cap bytes): the
 * answer's length, or -errno. The kernel answers at once, in order.
 */
static ssize_t rtnl_exchange(const struct nlmsghdr *req, void *ans, size_t cap)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	ssize_t n;
	int s;

	s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return -errno;
	n = sendto(s, req, req->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa));
	if (n >= 0)
		n = recv(s, ans, cap, 0);
	if (n < 0)
		n = -errno;
	close(s);
	return n;
}

/* The attribute of that type among the len bytes at p, checked as it goes. */
static struct rtattr *rta_find(void *p, size_t len, unsigned short type)
{
	while (len >= sizeof(struct rtattr)) {
		struct rtattr *a = p;
		size_t step = RTA_ALIGN((size_t)a->rta_len);

		if (a->rta_len < sizeof(*a) || a->rta_len > len)
			return NULL;
		if (a->rta_type == type)
			return a;
		if (step >= len)
			return NULL;
		p = (char *)p + step;
		len -= step;
	}
	return NULL;
}

/*
 * Whether name is a CAN controller driven by the kernel's CAN device layer
 * (real hardware, slcan, USB adapters: link kind "can") rather than a
 * virtual bus (vcan, vxcan), by one RTM_GETLINK: the kind is what tells,
 * not whether sysfs has a device behind it (a serial-line adapter has none).
 */
static bool link_is_can_dev(const char *name)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req;
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO))); /* the answer carries every stat */
	struct nlmsghdr *h = (struct nlmsghdr *)(void *)buf;
	struct rtattr *info, *kind;
	ssize_t n;

	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	req.nh.nlmsg_type = RTM_GETLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.ifi.ifi_family = AF_UNSPEC;
	req.ifi.ifi_index = (int)if_nametoindex(name);
	if (req.ifi.ifi_index == 0)
		return false;
	n = rtnl_exchange(&req.nh, buf, sizeof(buf));
	if (n < 0 || !NLMSG_OK(h, (size_t)n) || h->nlmsg_type != RTM_NEWLINK ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
		return false;
	info = rta_find(IFLA_RTA(NLMSG_DATA(h)),
			h->nlmsg_len - NLMSG_LENGTH(sizeof(struct ifinfomsg)), IFLA_LINKINFO);
	kind = info ? rta_find(RTA_DATA(info), RTA_PAYLOAD(info), IFLA_INFO_KIND) : NULL;
	/* "can", NUL-terminated or not. */
	return kind && RTA_PAYLOAD(kind) >= 3 && memcmp(RTA_DATA(kind), "can", 3) == 0 &&
	       (RTA_PAYLOAD(kind) == 3 || ((char *)RTA_DATA(kind))[3] == 0);
}

/*
 * Whether libsocketcan can tell out's controller state. Virtual buses have
 * no CAN link data, and there libsocketcan fails with a line on stderr each
 * time: ask once, and only of a CAN device.
 */
static bool probe_state(const char *name)
{
	int st;

	return link_is_can_dev(name) && can_get_state(name, &st) == 0;
}

/* Close the raw sockets (keeping their drop counts). */
static void port_unbind(struct can_port *p)
{
	p->ovfl_past += (unsigned long)p->ovfl_tx + (unsigned long)(p->same ? 0 : p->ovfl_rx);
	p->ovfl_tx = 0;
	p->ovfl_rx = 0;
	if (p->rx_fd >= 0 && p->rx_fd != p->tx_fd)
		close(p->rx_fd);
	if (p->tx_fd >= 0)
		close(p->tx_fd);
	p->tx_fd = -1;
	p->rx_fd = -1;
}

/* The raw sockets on out (and in): 0, or -errno with *which the interface that failed. */
static int port_bind(struct can_port *p, const char **which)
{
	bool in_fd = false;
	int ret;

	*which = p->out_name;
	ret = open_bound(p->out_name, &p->out_fd, true, p->same, &p->tx_fd, &p->tx_ifindex);
	if (ret < 0)
		return ret;
	p->tx_fd_frames = p->out_fd;
	if (p->same) {
		p->rx_fd = p->tx_fd;
		p->rx_ifindex = p->tx_ifindex;
		return 0;
	}
	*which = p->in_name;
	ret = open_bound(p->in_name, &in_fd, false, true, &p->rx_fd, &p->rx_ifindex);
	if (ret < 0)
		return ret;
	p->rx_fd_frames = in_fd;
	return 0;
}

int can_port_open(struct can_port **out, const struct can_port_config *cfg)
{
	struct can_port *p;
	const char *which;
	int ret;

	if (!out || !cfg || !cfg->in_ifname || !cfg->out_ifname)
		return -EINVAL;
	*out = NULL;
	if (!valid_ifname(cfg->in_ifname) || !valid_ifname(cfg->out_ifname))
		return -ENODEV;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->tx_fd = -1;
	p->rx_fd = -1;
	p->nl_fd = -1;
	p->link_ctl = cfg->link_up_on_start;
	p->same = strcmp(cfg->in_ifname, cfg->out_ifname) == 0;
	memcpy(p->out_name, cfg->out_ifname, strlen(cfg->out_ifname) + 1);
	memcpy(p->in_name, cfg->in_ifname, strlen(cfg->in_ifname) + 1);

	ret = port_bind(p, &which);
	if (ret < 0) {
		vlog_err(TAG, "%s: %s", which, can_port_strerror(ret));
		goto fail;
	}
	p->fd_capable = p->out_fd && (p->same || p->rx_fd_frames);
	/* Subscribed before anything else can change: no event is missed. */
	p->nl_fd = linkmon_open();
	if (p->nl_fd < 0) {
		ret = p->nl_fd;
		vlog_err(TAG, "%s: cannot follow link events (rtnetlink): %s", p->out_name,
			 strerror(-ret));
		goto fail;
	}
	p->has_state = probe_state(p->out_name);
	p->bitrate = cfg->bitrate;
	p->dbitrate = cfg->dbitrate;
	if (p->bitrate && !(p->has_state && p->link_ctl))
		vlog_info(TAG, "%s: %s: the bus timing of %u bit/s is paced by the daemon",
			  p->out_name,
			  p->has_state ? "without --link-up the interface's bit rate is left alone"
				       : "no controller (vcan)",
			  p->bitrate);
	if (cfg->rx_filter) {
		p->has_filter = true;
		p->rx_filter = *cfg->rx_filter;
		ret = apply_rx_filter(p, false);
		if (ret < 0) {
			vlog_err(TAG, "%s: rx filter: %s", p->in_name, strerror(-ret));
			goto fail;
		}
	}
	vlog_info(TAG, "in %s, out %s%s, %s", p->in_name, p->out_name,
		  p->same ? " (one socket)" : "", p->fd_capable ? "CAN FD" : "classic CAN");
	*out = p;
	return 0;
fail:
	can_port_close(p);
	return ret;
}

void can_port_close(struct can_port *p)
{
	if (!p)
		return;
	port_unbind(p);
	if (p->nl_fd >= 0)
		close(p->nl_fd);
	free(p);
}

bool can_port_fd_capable(const struct can_port *p)
{
	return p && p->fd_capable;
}

unsigned int can_port_fds(const struct can_port *p, int fds[2])
{
	if (!p || p->gone)
		return 0;
	fds[0] = p->rx_fd;
	if (p->same)
		return 1;
	fds[1] = p->tx_fd;
	return 2;
}

/*
 * The rx socket's kernel filter: the rx filter's rules, or (everything)
 * when our echoes must pass the same socket; then it is applied in recv.
 */
static int apply_rx_filter(struct can_port *p, bool echoes)
{
	struct can_filter k[CFILT_MAX];
	struct can_filter all = {.can_id = 0, .can_mask = 0};

	if (!p->has_filter)
		return 0;
	if (p->same && echoes) {
		p->user_filter = true;
		return set_opt(p->rx_fd, SOL_CAN_RAW, CAN_RAW_FILTER, &all, sizeof(all));
	}
	for (unsigned int i = 0; i < p->rx_filter.n; i++) {
		const struct cfilt_rule *r = &p->rx_filter.rule[i];

		k[i].can_id = (r->id & CFILT_EFF ? CAN_EFF_FLAG : 0) |
			      (r->id & CFILT_RTR ? CAN_RTR_FLAG : 0) | (r->id & CAN_EFF_MASK) |
			      (r->inverted ? CAN_INV_FILTER : 0);
		k[i].can_mask = (r->mask & CFILT_EFF ? CAN_EFF_FLAG : 0) |
				(r->mask & CFILT_RTR ? CAN_RTR_FLAG : 0) | (r->mask & CAN_EFF_MASK);
	}
	p->user_filter = false;
	return set_opt(p->rx_fd, SOL_CAN_RAW, CAN_RAW_FILTER, k,
		       (socklen_t)(p->rx_filter.n * sizeof(k[0])));
}

int can_port_set_tx_confirm(struct can_port *p, bool on)
{
	int v = on ? 1 : 0, ret;

	if (!p)
		return -EINVAL;
	if (p->gone) {
		/* Applied when the interface is back. */
		p->tx_confirm = on;
		return 0;
	}
	ret = set_opt(p->tx_fd, SOL_CAN_RAW, CAN_RAW_RECV_OWN_MSGS, &v, sizeof(v));
	if (ret < 0)
		return ret;
	if (!p->same) {
		/* Own echoes pass the filter only if every frame does. */
		struct can_filter all = {.can_id = 0, .can_mask = 0};

		if (on)
			ret = set_opt(p->tx_fd, SOL_CAN_RAW, CAN_RAW_FILTER, &all, sizeof(all));
		else
			ret = set_opt(p->tx_fd, SOL_CAN_RAW, CAN_RAW_FILTER, NULL, 0);
		if (ret < 0) {
			v = p->tx_confirm ? 1 : 0;
			(void)setsockopt(p->tx_fd, SOL_CAN_RAW, CAN_RAW_RECV_OWN_MSGS, &v,
					 sizeof(v));
			return ret;
		}
	}
	ret = apply_rx_filter(p, on);
	if (ret < 0) {
		v = p->tx_confirm ? 1 : 0;
		(void)setsockopt(p->tx_fd, SOL_CAN_RAW, CAN_RAW_RECV_OWN_MSGS, &v, sizeof(v));
		return ret;
	}
	p->tx_confirm = on;
	return 0;
}

/* cframe -> SocketCAN; returns the bytes to write (CAN_MTU/CANFD_MTU) or -EINVAL. */
static int to_socketcan(const struct cframe *f, bool fd_ok, struct canfd_frame *out)
{
	const unsigned int known = CFRAME_EXT | CFRAME_FD | CFRAME_RTR | CFRAME_BRS | CFRAME_ESI;

	memset(out, 0, sizeof(*out));
	if (f->flags & ~known)
		return -EINVAL;
	if (f->flags & CFRAME_EXT) {
		if (f->id > CAN_EFF_MASK)
			return -EINVAL;
		out->can_id = f->id | CAN_EFF_FLAG;
	} else {
		if (f->id > CAN_SFF_MASK)
			return -EINVAL;
		out->can_id = f->id;
	}

	if (f->flags & CFRAME_FD) {
		if (!fd_ok || (f->flags & CFRAME_RTR) || !cframe_fd_len_valid(f->len))
			return -EINVAL;
		out->len = f->len;
		if (f->flags & CFRAME_BRS)
			out->flags |= CANFD_BRS;
		if (f->flags & CFRAME_ESI)
			out->flags |= CANFD_ESI;
		memcpy(out->data, f->data, f->len);
		return (int)CANFD_MTU;
	}

	if ((f->flags & (CFRAME_BRS | CFRAME_ESI)) || f->len > CAN_MAX_DLEN)
		return -EINVAL;
	/* canfd_frame and can_frame share the first 8 data bytes' layout. */
	out->len = f->len;
	if (f->flags & CFRAME_RTR)
		out->can_id |= CAN_RTR_FLAG; /* len is the requested DLC, no data */
	else
		memcpy(out->data, f->data, f->len);
	return (int)CAN_MTU;
}

int can_port_send(struct can_port *p, const struct cframe *f, unsigned int n, int *res)
{
	struct canfd_frame frames[CP_BATCH];
	struct iovec iov[CP_BATCH];
	struct mmsghdr msgs[CP_BATCH];
	unsigned int slot[CP_BATCH]; /* batch position -> index in f */
	unsigned int i = 0;

	if (n == 0)
		return 0;
	if (!p || !f || !res)
		return -EINVAL;
	if (p->gone) {
		/* Unplugged: no socket to send on until it is back. */
		for (i = 0; i < n; i++)
			res[i] = -ENODEV;
		return 0;
	}

	while (i < n) {
		unsigned int cnt = 0, pos = 0;

		for (; i < n && cnt < CP_BATCH; i++) {
			int size;

			if ((f[i].flags & CFRAME_FD) && !p->out_fd) {
				/* The link's MTU shrank under CAN FD (logged when seen). */
				res[i] = -EMSGSIZE;
				p->stats.fd_refused++;
				continue;
			}
			size = to_socketcan(&f[i], p->tx_fd_frames, &frames[cnt]);

			if (size < 0) {
				res[i] = size;
				continue;
			}
			iov[cnt].iov_base = &frames[cnt];
			iov[cnt].iov_len = (size_t)size;
			memset(&msgs[cnt], 0, sizeof(msgs[cnt]));
			msgs[cnt].msg_hdr.msg_iov = &iov[cnt];
			msgs[cnt].msg_hdr.msg_iovlen = 1;
			slot[cnt] = i;
			cnt++;
		}
		/*
		 * sendmmsg stops at the first failing frame and, when some went
		 * out before it, does not say why: send again from there to get
		 * that frame's errno, then go on with the frame after it.
		 */
		bool retried = false;

		while (pos < cnt) {
			int r = sendmmsg(p->tx_fd, &msgs[pos], cnt - pos, MSG_DONTWAIT);

			if (r > 0) {
				for (unsigned int k = 0; k < (unsigned int)r; k++)
					res[slot[pos + k]] = 0;
				pos += (unsigned int)r;
				retried = false;
			} else if (!retried) {
				/*
				 * A stale socket error (a past link down) fails the
				 * next send and is cleared by it: once more before
				 * failing the frame. Costs nothing when sends succeed
				 * (a getsockopt(SO_ERROR) per call did, every time).
				 */
				retried = true;
			} else {
				int err = r < 0 ? errno : EIO;

				res[slot[pos]] = -err;
				/* The kernel refuses CANFD_MTU on a classic link: an MTU
				 * shrink not seen yet. Look now, so it is logged at once. */
				if (err == EINVAL && iov[pos].iov_len == CANFD_MTU) {
					p->stats.fd_refused++;
					res[slot[pos]] = -EMSGSIZE;
					check_mtu(p);
				}
				pos++;
				retried = false;
			}
		}
	}
	return 0;
}

/* SocketCAN -> cframe for a normal frame of nbytes; false when malformed. */
static bool from_socketcan(const struct canfd_frame *cf, size_t nbytes, struct cframe *f)
{
	memset(f, 0, sizeof(*f));
	if (cf->can_id & CAN_EFF_FLAG) {
		f->id = cf->can_id & CAN_EFF_MASK;
		f->flags |= CFRAME_EXT;
	} else {
		f->id = cf->can_id & CAN_SFF_MASK;
	}

	if (nbytes == CANFD_MTU) {
		f->flags |= CFRAME_FD;
		f->len = cf->len > CANFD_MAX_DLEN ? CANFD_MAX_DLEN : cf->len;
		if (cf->flags & CANFD_BRS)
			f->flags |= CFRAME_BRS;
		if (cf->flags & CANFD_ESI)
			f->flags |= CFRAME_ESI;
		memcpy(f->data, cf->data, f->len);
		return true;
	}
	if (nbytes != CAN_MTU)
		return false;
	f->len = cf->len > CAN_MAX_DLEN ? CAN_MAX_DLEN : cf->len;
	if (cf->can_id & CAN_RTR_FLAG)
		f->flags |= CFRAME_RTR; /* len stays the DLC; no data */
	else
		memcpy(f->data, cf->data, f->len);
	return true;
}

static uint32_t ovfl_count(struct msghdr *mh, bool *found)
{
	uint32_t v = 0;

	*found = false;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
		    c->cmsg_len >= CMSG_LEN(sizeof(v))) {
			memcpy(&v, CMSG_DATA(c), sizeof(v));
			*found = true;
		}
	}
	return v;
}

/* ---- Hotplug: the interfaces going away and coming back ---- */

/* The MTU of name, asked on socket s: the MTU or -errno. */
static int iface_mtu(int s, const char *name)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(s, SIOCGIFMTU, &ifr) < 0)
		return -errno;
	return ifr.ifr_mtu;
}

/* Follow one socket's interface to CAN FD: the option on as soon as its MTU allows. */
static bool sock_mtu_fd(int s, const char *name, bool *has_fd_frames)
{
	int mtu = iface_mtu(s, name), one = 1;
	bool fd = mtu == (int)CANFD_MTU;

	if (fd && !*has_fd_frames &&
	    set_opt(s, SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &one, sizeof(one)) == 0)
		*has_fd_frames = true;
	return fd && *has_fd_frames;
}

/* out's MTU now against what the port believed: act and log on a change only. */
static void check_mtu(struct can_port *p)
{
	bool fd;

	if (p->gone)
		return;
	if (!p->same) {
		bool rx_fd = p->rx_fd_frames;

		(void)sock_mtu_fd(p->rx_fd, p->in_name, &rx_fd);
		p->rx_fd_frames = rx_fd;
	}
	fd = sock_mtu_fd(p->tx_fd, p->out_name, &p->tx_fd_frames);
	if (fd == p->out_fd)
		return;
	p->out_fd = fd;
	if (!fd && p->fd_capable)
		vlog_limited(
		    &p->log_limit, VLOG_WARN, TAG,
		    "%s: MTU is now %u (classic CAN only): the guest's CAN FD frames fail "
		    "(NOT_OK, counted as refused) until it is %u again; classic frames pass",
		    p->out_name, (unsigned int)CAN_MTU, (unsigned int)CANFD_MTU);
	else
		vlog_limited(&p->log_limit, VLOG_INFO, TAG, "%s: MTU is now %u: CAN FD %s",
			     p->out_name, fd ? (unsigned int)CANFD_MTU : (unsigned int)CAN_MTU,
			     fd ? "frames pass again" : "not carried");
}

/*
 * name's index asked on socket s (any socket takes interface ioctls: the
 * port's own, so that no fd is needed): 0 with *idx (0 when there is no
 * such interface), or -errno when the kernel could not say.
 */
static int iface_index(int s, const char *name, unsigned int *idx)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	*idx = 0;
	if (ioctl(s, SIOCGIFINDEX, &ifr) < 0)
		return errno == ENODEV ? 0 : -errno;
	*idx = ifr.ifr_ifindex > 0 ? (unsigned int)ifr.ifr_ifindex : 0;
	return 0;
}

/* Why the bound sockets no longer serve the names given, or NULL when they do. */
static const char *bound_lost(const struct can_port *p, const char **which)
{
	const char *names[2] = {p->out_name, p->in_name};
	const unsigned int bound[2] = {p->tx_ifindex, p->rx_ifindex};

	for (unsigned int k = 0; k < (p->same ? 1u : 2u); k++) {
		unsigned int idx;

		/* Cannot tell (no memory...): keep serving rather than drop the bus. */
		if (iface_index(p->nl_fd, names[k], &idx) < 0 || idx == bound[k])
			continue;
		*which = names[k];
		return idx == 0 ? "gone (unplugged, deleted or renamed)"
				: "now another interface (re-created or renamed)";
	}
	return NULL;
}

static void port_lose(struct can_port *p, const char *which, const char *why)
{
	port_unbind(p);
	p->gone = true;
	/* The guest's controller goes bus-off: it must START again. */
	p->want_up = false;
	p->stats.lost++;
	vlog_limited(&p->log_limit, VLOG_WARN, TAG,
		     "%s: %s: sockets closed, the guest's controller is reported bus-off; "
		     "waiting for %s to come back",
		     which, why, which);
}

/* Options of the new sockets as on the old ones: transmit confirmation, rx filter. */
static int port_reapply(struct can_port *p)
{
	bool confirm = p->tx_confirm;

	p->tx_confirm = false;
	if (confirm)
		return can_port_set_tx_confirm(p, true);
	return apply_rx_filter(p, false);
}

/* Bind again to what now has the names: 0, or -errno (still gone). */
static int port_rebind(struct can_port *p)
{
	const char *which = NULL;
	int ret;

	ret = port_bind(p, &which);
	if (ret == 0) {
		p->gone = false; /* bound: the options go on the sockets now */
		ret = port_reapply(p);
		which = p->out_name;
	}
	if (ret < 0) {
		port_unbind(p);
		p->gone = true;
		if (ret != -ENODEV)
			vlog_limited(&p->log_limit, VLOG_WARN, TAG,
				     "%s: is there but %s: not re-bound; still waiting", which,
				     can_port_strerror(ret));
		return ret;
	}
	p->stats.rebound++;
	if (p->same)
		vlog_limited(&p->log_limit, VLOG_INFO, TAG,
			     "%s: back (ifindex %u, a CAN interface, %s): raw socket bound "
			     "again%s%s",
			     p->out_name, p->tx_ifindex, p->out_fd ? "CAN FD" : "classic CAN",
			     p->has_filter ? ", rx filter applied" : "",
			     p->tx_confirm ? ", transmit confirmation on" : "");
	else
		vlog_limited(&p->log_limit, VLOG_INFO, TAG,
			     "in %s, out %s: back (ifindex %u and %u, CAN interfaces, out %s): raw "
			     "sockets bound again%s%s",
			     p->in_name, p->out_name, p->rx_ifindex, p->tx_ifindex,
			     p->out_fd ? "CAN FD" : "classic CAN",
			     p->has_filter ? ", rx filter applied" : "",
			     p->tx_confirm ? ", transmit confirmation on" : "");
	if (p->fd_capable && !p->out_fd)
		vlog_limited(&p->log_limit, VLOG_WARN, TAG,
			     "%s: back with MTU %u (classic CAN only), though it had CAN FD at "
			     "start-up: the guest's CAN FD frames fail (NOT_OK, counted as "
			     "refused); classic frames pass",
			     p->out_name, (unsigned int)CAN_MTU);
	p->has_state = probe_state(p->out_name);
	if (p->link_ctl && p->want_up) {
		/* START was accepted while gone: the link settings now. */
		if (port_link_up(p) == 0)
			vlog_limited(&p->log_limit, VLOG_INFO, TAG,
				     "%s: link brought up again for the started controller",
				     p->out_name);
	}
	return 0;
}

/*
 * Look at the interfaces again after a link event (lost: the bound one was
 * deleted, or a socket said ENODEV): GONE and/or BACK into ev. How many.
 */
static unsigned int port_recheck(struct can_port *p, bool lost, struct can_port_event *ev,
				 unsigned int max)
{
	unsigned int got = 0;

	if (!p->gone) {
		const char *which = p->out_name;
		const char *why = bound_lost(p, &which);

		/* Deleted and re-created with the same index: gone all the same. */
		if (!why && lost) {
			which = p->out_name;
			why = "deleted and created again";
		}
		if (!why) {
			check_mtu(p);
			return 0;
		}
		port_lose(p, which, why);
		if (got < max) {
			memset(&ev[got], 0, sizeof(ev[got]));
			ev[got++].type = CAN_PORT_EV_GONE;
		}
	}
	if (port_rebind(p) == 0 && got < max) {
		memset(&ev[got], 0, sizeof(ev[got]));
		ev[got++].type = CAN_PORT_EV_BACK;
	}
	return got;
}

/* Whether a link message concerns this port. */
static bool link_concerns(const struct can_port *p, const struct linkmon_msg *m)
{
	if (!p->gone && ((unsigned int)m->ifindex == p->tx_ifindex ||
			 (unsigned int)m->ifindex == p->rx_ifindex))
		return true;
	return strcmp(m->name, p->out_name) == 0 || strcmp(m->name, p->in_name) == 0;
}

/* Datagrams read from the rtnetlink socket per call (more: the next wake-up). */
#define CP_NL_ROUNDS 16
#define CP_NL_MSGS 16

/* What the link events say, as GONE/BACK events: n or -errno. */
static int link_events(struct can_port *p, struct can_port_event *ev, unsigned int max)
{
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct linkmon_msg msgs[CP_NL_MSGS];
	bool look = false, lost = false;

	for (unsigned int round = 0; round < CP_NL_ROUNDS; round++) {
		struct sockaddr_nl sa;
		socklen_t salen = sizeof(sa);
		unsigned int n;
		bool resync = false;
		ssize_t r;

		memset(&sa, 0, sizeof(sa));
		r = recvfrom(p->nl_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
			     (struct sockaddr *)&sa, &salen);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				/* The kernel dropped events: what they said is unknown. */
				vlog_limited(&p->log_limit, VLOG_INFO, TAG,
					     "%s: link events lost (receive buffer full): "
					     "checking the interfaces again",
					     p->out_name);
				look = true;
				continue;
			}
			int err = errno; /* the log call may change errno */

			vlog_limited(&p->log_limit, VLOG_WARN, TAG, "%s: link events: %s",
				     p->out_name, strerror(err));
			return -err;
		}
		/* Only the kernel speaks for the links. */
		if (sa.nl_family != AF_NETLINK || sa.nl_pid != 0)
			continue;
		if ((size_t)r > sizeof(buf)) {
			look = true; /* truncated: cannot tell what it said */
			continue;
		}
		n = linkmon_parse(buf, (size_t)r, msgs, CP_NL_MSGS, &resync);
		look = look || resync;
		for (unsigned int i = 0; i < n; i++) {
			if (!link_concerns(p, &msgs[i]))
				continue;
			look = true;
			if (msgs[i].del && !p->gone &&
			    ((unsigned int)msgs[i].ifindex == p->tx_ifindex ||
			     (unsigned int)msgs[i].ifindex == p->rx_ifindex))
				lost = true;
		}
	}
	if (!look)
		return 0;
	return (int)port_recheck(p, lost, ev, max);
}

int can_port_link_fd(const struct can_port *p)
{
	return p ? p->nl_fd : -1;
}

void can_port_get_stats(const struct can_port *p, struct can_port_stats *s)
{
	memset(s, 0, sizeof(*s));
	if (p)
		*s = p->stats;
}

int can_port_recv(struct can_port *p, int fd, struct can_port_event *ev, unsigned int max)
{
	struct canfd_frame frames[CP_BATCH];
	struct iovec iov[CP_BATCH];
	struct mmsghdr msgs[CP_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(uint32_t))];
		struct cmsghdr align;
	} ctl[CP_BATCH];
	unsigned int want, got = 0;
	bool is_tx, is_rx;
	int r;

	if (!p || (max > 0 && !ev))
		return -EINVAL;
	if (fd >= 0 && fd == p->nl_fd)
		return max == 0 ? 0 : link_events(p, ev, max);
	is_tx = fd >= 0 && fd == p->tx_fd;
	is_rx = fd >= 0 && fd == p->rx_fd;
	if (!is_tx && !is_rx)
		return -EBADF;
	if (max == 0)
		return 0;

	want = max < CP_BATCH ? max : CP_BATCH;
	/*
	 * On the tx socket one error frame can give two events (bus-off and
	 * restarted): read no more frames than leave room for that, so that
	 * nothing read is dropped and ev never overflows, whatever max is.
	 */
	if (is_tx && want > 1 && want > max / 2)
		want = max / 2;
	memset(msgs, 0, sizeof(msgs[0]) * want);
	for (unsigned int i = 0; i < want; i++) {
		iov[i].iov_base = &frames[i];
		iov[i].iov_len = sizeof(frames[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_control = ctl[i].buf;
		msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
	}
	r = recvmmsg(fd, msgs, want, MSG_DONTWAIT, NULL);
	if (r < 0) {
		/* ENETDOWN: the link went down; reading the error cleared it. */
		int err = errno;

		if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ENETDOWN)
			return 0;
		/* The interface was unregistered under the socket: unplugged. */
		if (err == ENODEV)
			return (int)port_recheck(p, true, ev, max);
		vlog_limited(&p->log_limit, VLOG_WARN, TAG, "%s: receive failed: %s",
			     fd == p->tx_fd ? p->out_name : p->in_name, strerror(err));
		return -err;
	}

	for (unsigned int i = 0; i < (unsigned int)r; i++) {
		struct msghdr *mh = &msgs[i].msg_hdr;
		const struct canfd_frame *cf = &frames[i];
		bool have_ovfl;
		uint32_t ovfl = ovfl_count(mh, &have_ovfl);

		if (have_ovfl) {
			if (is_rx && !p->same)
				p->ovfl_rx = ovfl;
			else
				p->ovfl_tx = ovfl;
		}
		if (msgs[i].msg_len < CAN_MTU || (mh->msg_flags & MSG_TRUNC))
			continue;

		if (cf->can_id & CAN_ERR_FLAG) {
			if (!is_tx)
				continue;
			/* Both bits at once with one slot left: the later state wins. */
			if ((cf->can_id & CAN_ERR_BUSOFF) && got < max &&
			    !((cf->can_id & CAN_ERR_RESTARTED) && got + 1 >= max)) {
				memset(&ev[got], 0, sizeof(ev[got]));
				ev[got++].type = CAN_PORT_EV_BUSOFF;
			}
			if ((cf->can_id & CAN_ERR_RESTARTED) && got < max) {
				memset(&ev[got], 0, sizeof(ev[got]));
				ev[got++].type = CAN_PORT_EV_RESTARTED;
			}
			continue;
		}

		if (mh->msg_flags & MSG_CONFIRM) {
			/* Our own frame came back: only the tx socket asks for that. */
			if (!is_tx)
				continue;
			if (from_socketcan(cf, msgs[i].msg_len, &ev[got].frame))
				ev[got++].type = CAN_PORT_EV_TX_DONE;
			continue;
		}
		/* Bus traffic on a separate tx socket (tx confirmation on) is not for the guest. */
		if (!is_rx)
			continue;
		if (!from_socketcan(cf, msgs[i].msg_len, &ev[got].frame))
			continue;
		/* The slot is reused by the next frame when this one is filtered out. */
		if (p->user_filter && !cfilt_match(&p->rx_filter, &ev[got].frame))
			continue;
		ev[got++].type = CAN_PORT_EV_FRAME;
	}
	return (int)got;
}

/* Bring a link up or down without libsocketcan (vcan and friends). */
static int link_flags(const char *name, bool up)
{
	struct ifreq ifr;
	int s, ret = 0;

	/* Any socket will do for interface ioctls; AF_CAN is there for sure. */
	s = raw_socket(0);
	if (s < 0)
		return s;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		ret = -errno;
		goto out;
	}
	if (up)
		ifr.ifr_flags = (short)(ifr.ifr_flags | IFF_UP);
	else
		ifr.ifr_flags = (short)(ifr.ifr_flags & ~IFF_UP);
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		ret = -errno;
out:
	close(s);
	return ret;
}

/*
 * Append attribute type with dlen bytes of data at the end (*len) of a
 * netlink message in buf: its offset. The callers' messages are far from
 * cap; past it nothing is written and the kernel gets a shorter message.
 */
static size_t nl_put(uint8_t *buf, size_t cap, size_t *len, unsigned short type, const void *d,
		     size_t dlen)
{
	size_t off = NLMSG_ALIGN(*len);
	struct rtattr a = {.rta_type = type, .rta_len = (unsigned short)RTA_LENGTH(dlen)};

	if (off + RTA_SPACE(dlen) > cap)
		return off;
	memcpy(buf + off, &a, sizeof(a));
	if (dlen)
		memcpy(buf + off + RTA_LENGTH(0), d, dlen);
	*len = off + RTA_SPACE(dlen);
	return off;
}

/* A nested attribute at offset off holds everything up to len. */
static void nl_close(uint8_t *buf, size_t off, size_t len)
{
	unsigned short l = (unsigned short)(len - off);

	memcpy(buf + off + offsetof(struct rtattr, rta_len), &l, sizeof(l));
}

/*
 * The data bit rate by rtnetlink (libsocketcan has no call for it): an
 * RTM_NEWLINK with IFLA_LINKINFO { "can", { IFLA_CAN_DATA_BITTIMING } }.
 * Only for a real CAN FD controller, whose link is down.
 */
int can_port_set_data_bitrate(const char *name, uint32_t dbitrate)
{
	/* One buffer, attributes appended at offsets: nothing is written past it. */
	union {
		struct nlmsghdr nh;
		uint8_t buf[512];
	} req;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	struct can_bittiming bt = {.bitrate = dbitrate};
	size_t len, linkinfo, data;
	char ack[512] __attribute__((aligned(NLMSG_ALIGNTO)));
	ssize_t n;

	ifi.ifi_index = (int)if_nametoindex(name);
	if (ifi.ifi_index == 0)
		return -ENODEV;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_type = RTM_NEWLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	memcpy(req.buf + NLMSG_HDRLEN, &ifi, sizeof(ifi));
	len = NLMSG_LENGTH(sizeof(ifi));
	linkinfo = nl_put(req.buf, sizeof(req.buf), &len, IFLA_LINKINFO, NULL, 0);
	(void)nl_put(req.buf, sizeof(req.buf), &len, IFLA_INFO_KIND, "can", 4);
	data = nl_put(req.buf, sizeof(req.buf), &len, IFLA_INFO_DATA, NULL, 0);
	(void)nl_put(req.buf, sizeof(req.buf), &len, IFLA_CAN_DATA_BITTIMING, &bt, sizeof(bt));
	nl_close(req.buf, data, len);
	nl_close(req.buf, linkinfo, len);
	req.nh.nlmsg_len = (uint32_t)len;

	/* The ack: an NLMSG_ERROR whose error is 0 on success. */
	n = rtnl_exchange(&req.nh, ack, sizeof(ack));
	if (n < 0)
		return (int)n;
	if ((size_t)n >= NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
		struct nlmsghdr *h = (struct nlmsghdr *)(void *)ack;

		if (h->nlmsg_type == NLMSG_ERROR)
			return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	}
	return 0;
}

/* On a real controller, before the link goes up: the bus's bit rates. */
static void set_bitrates(struct can_port *p)
{
	int ret;

	if (!p->bitrate || !p->has_state)
		return;
	ret = can_set_bitrate(p->out_name, p->bitrate);
	if (ret != 0)
		vlog_limited(&p->log_limit, VLOG_WARN, TAG, "%s: cannot set the bit rate %u: %s",
			     p->out_name, p->bitrate, strerror(errno));
	if (p->dbitrate) {
		ret = can_port_set_data_bitrate(p->out_name, p->dbitrate);
		if (ret < 0)
			vlog_limited(&p->log_limit, VLOG_WARN, TAG,
				     "%s: cannot set the data bit rate %u: %s", p->out_name,
				     p->dbitrate, strerror(-ret));
	}
}

/* Bit rates, then the link up. */
static int port_link_up(struct can_port *p)
{
	int ret;

	set_bitrates(p);
	if (can_do_start(p->out_name) == 0)
		return 0;
	ret = link_flags(p->out_name, true);
	if (ret < 0)
		vlog_limited(&p->log_limit, VLOG_WARN, TAG, "%s: cannot bring the link up: %s",
			     p->out_name, can_port_strerror(ret));
	return ret;
}

int can_port_start(struct can_port *p)
{
	int ret;

	if (!p)
		return -EINVAL;
	if (!p->link_ctl)
		return 0;
	if (p->gone) {
		/* A controller without its bus starts; the link follows when it is back. */
		p->want_up = true;
		return 0;
	}
	ret = port_link_up(p);
	p->want_up = ret == 0;
	return ret;
}

int can_port_stop(struct can_port *p)
{
	int ret;

	if (!p)
		return -EINVAL;
	if (!p->link_ctl)
		return 0;
	p->want_up = false;
	if (p->gone)
		return 0;
	if (can_do_stop(p->out_name) == 0)
		return 0;
	ret = link_flags(p->out_name, false);
	if (ret < 0)
		vlog_limited(&p->log_limit, VLOG_WARN, TAG, "%s: cannot bring the link down: %s",
			     p->out_name, can_port_strerror(ret));
	return ret;
}

int can_port_bus_off(const struct can_port *p)
{
	int state = 0;

	if (!p)
		return -EINVAL;
	/* vcan has no CAN link data: libsocketcan fails, and that is no error. */
	if (!p->has_state || p->gone || can_get_state(p->out_name, &state) != 0)
		return -ENODATA;
	return state == CAN_STATE_BUS_OFF ? 1 : 0;
}

unsigned long can_port_kernel_drops(const struct can_port *p)
{
	if (!p)
		return 0;
	return p->ovfl_past + (unsigned long)p->ovfl_tx + (unsigned long)(p->same ? 0 : p->ovfl_rx);
}
