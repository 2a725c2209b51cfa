/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * if_nametoindex for the whole daemon, libsocketcan's calls included.
 *
 * glibc's asks the kernel on a socket of the first family it can open:
 * AF_UNIX, then AF_INET. The sandbox allows neither (an AF_UNIX datagram
 * socket could reach any socket file on the host), so every lookup made
 * after start-up (a guest's START with --link-up, a re-plugged adapter)
 * would kill the process. This definition takes the place of glibc's (the
 * executable's symbols come first, also for the shared libraries it
 * loads) and asks on a route netlink socket, which the sandbox allows: the
 * same ioctl, the same answer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>

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
