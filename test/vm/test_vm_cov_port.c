/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The CAN port on real vcan where test_vm_can_port does not take it (found
 * with scripts/coverage.sh): no fd left for a socket, link control without
 * CAP_NET_ADMIN and on an interface that went away, the kernel's drop count
 * on a separate rx socket, and bus traffic reaching the tx socket while
 * transmit confirmation is on. Runs in the VM rig as root; its own
 * interfaces vcov0 and vcov1 are made and removed around each test.
 * Exits 77 (skipped) where the kernel has no CAN.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include <linux/can.h>
#include <linux/capability.h>
#include <linux/can/raw.h>

#include <cmocka.h>

#include "can_port.h"
#include "tfd.h"
#include "vhost-user/vlog.h"

#define IF_OUT "vcov0"
#define IF_IN "vcov1"
#define WAIT_MS 5000 /* a guard against hangs, not a timing assertion */

/* ---- helpers ------------------------------------------------------------ */

static int run(const char *cmd)
{
	int st = system(cmd);

	return (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
}

static int ifs_setup(void **state)
{
	(void)state;
	(void)run("ip link del dev " IF_OUT " 2>/dev/null; ip link del dev " IF_IN " 2>/dev/null");
	return run("ip link add dev " IF_OUT " type vcan && ip link set dev " IF_OUT
		   " mtu 72 up && "
		   "ip link add dev " IF_IN " type vcan && ip link set dev " IF_IN
		   " mtu 72 up") == 0
		   ? 0
		   : -1;
}

/* A test may have removed an interface itself. */
static int ifs_teardown(void **state)
{
	(void)state;
	(void)run("ip link del dev " IF_OUT " 2>/dev/null; ip link del dev " IF_IN " 2>/dev/null");
	return 0;
}

static bool link_up(const char *ifname)
{
	char path[96];
	unsigned int flags = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/flags", ifname);
	f = fopen(path, "re");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%x", &flags), 1);
	fclose(f);
	return flags & IFF_UP;
}

static struct can_port *open_port(const char *in, const char *out, bool link_ctl)
{
	struct can_port_config cfg = {
	    .in_ifname = in, .out_ifname = out, .link_up_on_start = link_ctl};
	struct can_port *p = NULL;

	assert_int_equal(can_port_open(&p, &cfg), 0);
	assert_non_null(p);
	return p;
}

/* A raw socket on ifname that sends classic frames and takes no error frames. */
static int bus_peer(const char *ifname)
{
	struct sockaddr_can addr = {.can_family = AF_CAN};
	can_err_mask_t no_errors = 0;
	int s = socket(AF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW);

	assert_true(s >= 0);
	assert_int_equal(
	    setsockopt(s, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &no_errors, sizeof(no_errors)), 0);
	addr.can_ifindex = (int)if_nametoindex(ifname);
	assert_true(addr.can_ifindex > 0);
	assert_int_equal(bind(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return s;
}

static void bus_send(int s, uint32_t id, uint8_t byte)
{
	struct can_frame cf;

	memset(&cf, 0, sizeof(cf));
	cf.can_id = id;
	cf.len = 1;
	cf.data[0] = byte;
	assert_int_equal(write(s, &cf, sizeof(cf)), (ssize_t)sizeof(cf));
}

static short poll_events(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, timeout_ms) == 1 ? pfd.revents : 0;
}

/* ---- tests -------------------------------------------------------------- */

/* No fd left for a socket: the check and the open say so (-EMFILE), not "no CAN". */
static void test_out_of_fds(void **state)
{
	struct can_port_config cfg = {.in_ifname = IF_OUT, .out_ifname = IF_OUT};
	struct can_port *p = NULL;
	struct rlimit rl, old;
	int base = tfd_next();

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	rl = old;
	rl.rlim_cur = (rlim_t)base;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_int_equal(can_port_check(IF_OUT, NULL), -EMFILE);
	assert_int_equal(can_port_open(&p, &cfg), -EMFILE);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_null(p);
	assert_int_equal(tfd_next(), base);
	/* With fds again, the same interface checks fine. */
	assert_int_equal(can_port_check(IF_OUT, NULL), 0);
}

/* Drop CAP_NET_ADMIN from this process (it stays root otherwise). 0 or -1. */
static int drop_net_admin(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	const uint32_t bit = 1u << (CAP_NET_ADMIN % 32);
	const unsigned int word = CAP_NET_ADMIN / 32;

	if (syscall(SYS_capget, &hdr, data) != 0)
		return -1;
	data[word].effective &= ~bit;
	data[word].permitted &= ~bit;
	data[word].inheritable &= ~bit;
	return (int)syscall(SYS_capset, &hdr, data);
}

/*
 * Link control without CAP_NET_ADMIN (the port opened with it, then the
 * process lost it): both ways fail with -EPERM, through libsocketcan and
 * then the plain ioctl, and the link stays as it was.
 */
static void test_link_ctl_not_permitted(void **state)
{
	int res[2] = {1, 1}, pfd[2], st;
	struct can_port *p;
	pid_t pid;

	(void)state;
	p = open_port(IF_OUT, IF_OUT, true);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/*
		 * No cmocka here: the results go to the parent through the
		 * pipe. Still root, and exit() rather than _exit(), so that a
		 * coverage build writes this process's counters too.
		 */
		if (drop_net_admin() != 0)
			exit(2);
		res[0] = can_port_stop(p);
		res[1] = can_port_start(p);
		exit(write(pfd[1], res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : 3);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], res, sizeof(res)), (ssize_t)sizeof(res));
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(res[0], -EPERM);
	assert_int_equal(res[1], -EPERM);
	assert_true(link_up(IF_OUT));
	/* As root the same port does control the link. */
	assert_int_equal(can_port_stop(p), 0);
	assert_false(link_up(IF_OUT));
	assert_int_equal(can_port_start(p), 0);
	assert_true(link_up(IF_OUT));
	can_port_close(p);
}

/*
 * The interface is deleted under an open port: the socket's ENODEV makes
 * the port let go (GONE; no raw fds; sends fail per frame with -ENODEV;
 * STOP and START are accepted and remembered). Created again, the link fd
 * reports it: the port binds again (BACK), brings the link up for the
 * started controller, and frames pass.
 */
static void test_iface_gone(void **state)
{
	struct can_port_event ev[4];
	struct can_port_stats st;
	struct cframe f;
	struct can_frame cf;
	struct can_port *p;
	int fds[2], res[1] = {0}, lfd, n = 0, peer;

	(void)state;
	p = open_port(IF_OUT, IF_OUT, true);
	assert_int_equal(can_port_fds(p, fds), 1);
	lfd = can_port_link_fd(p);
	assert_true(lfd >= 0);
	assert_int_equal(run("ip link del dev " IF_OUT), 0);

	/* An error, not data: what epoll reports to the daemon's loop. */
	assert_true(poll_events(fds[0], WAIT_MS) & POLLERR);
	assert_int_equal(can_port_recv(p, fds[0], ev, 4), 1);
	assert_int_equal(ev[0].type, CAN_PORT_EV_GONE);
	assert_int_equal(can_port_fds(p, fds), 0);
	assert_int_equal(can_port_recv(p, fds[0], ev, 4), -EBADF);
	/* The link events of the deletion say nothing new. */
	while (tfd_readable(lfd, 200))
		assert_int_equal(can_port_recv(p, lfd, ev, 4), 0);

	memset(&f, 0, sizeof(f));
	f.id = 0x321;
	f.len = 1;
	assert_int_equal(can_port_send(p, &f, 1, res), 0);
	assert_int_equal(res[0], -ENODEV);
	assert_int_equal(can_port_stop(p), 0);
	assert_int_equal(can_port_start(p), 0);

	/* Plugged back, down: the port binds and brings it up. */
	assert_int_equal(run("ip link add dev " IF_OUT " mtu 72 type vcan"), 0);
	while (n == 0 && tfd_readable(lfd, WAIT_MS))
		n = can_port_recv(p, lfd, ev, 4);
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].type, CAN_PORT_EV_BACK);
	assert_int_equal(can_port_fds(p, fds), 1);
	assert_true(link_up(IF_OUT));
	peer = bus_peer(IF_OUT);
	assert_int_equal(can_port_send(p, &f, 1, res), 0);
	assert_int_equal(res[0], 0);
	assert_true(tfd_readable(peer, WAIT_MS));
	assert_int_equal(read(peer, &cf, sizeof(cf)), (ssize_t)sizeof(cf));
	assert_int_equal(cf.can_id, 0x321);
	close(peer);
	can_port_get_stats(p, &st);
	assert_int_equal(st.lost, 1);
	assert_int_equal(st.rebound, 1);
	can_port_close(p);
}

/* Read fd until it has nothing more for ms: how many frames came. */
static unsigned long drain_frames(struct can_port *p, int fd, int ms)
{
	struct can_port_event ev[64];
	unsigned long got = 0;
	int n;

	while (tfd_readable(fd, ms)) {
		while ((n = can_port_recv(p, fd, ev, 64)) > 0) {
			for (int i = 0; i < n; i++)
				assert_int_equal(ev[i].type, CAN_PORT_EV_FRAME);
			got += (unsigned long)n;
		}
		assert_int_equal(n, 0);
	}
	return got;
}

/*
 * in != out: a flood on in overflows the rx socket; what the kernel dropped
 * is counted on that socket, and received + dropped adds up to what was sent.
 */
static void test_split_rx_kernel_drops(void **state)
{
	enum { FLOOD = 20000 };
	struct can_port *p;
	unsigned long got;
	int peer, fds[2];

	(void)state;
	p = open_port(IF_IN, IF_OUT, false);
	assert_int_equal(can_port_fds(p, fds), 2);
	peer = bus_peer(IF_IN);
	for (unsigned int i = 0; i < FLOOD; i++)
		bus_send(peer, 0x200 + (i & 0xff), (uint8_t)i);
	got = drain_frames(p, fds[0], 0);
	/* The drop count arrives with the next frame queued after the drops. */
	bus_send(peer, 0x7ff, 0);
	got += drain_frames(p, fds[0], WAIT_MS / 10);
	printf("split flood: %lu received, %lu dropped by the kernel\n", got,
	       can_port_kernel_drops(p));
	assert_true(can_port_kernel_drops(p) > 0);
	assert_int_equal(got + can_port_kernel_drops(p), FLOOD + 1);
	/* The tx socket took no bus frames. */
	assert_false(tfd_readable(fds[1], 0));
	close(peer);
	can_port_close(p);
}

/*
 * in != out with transmit confirmation: the tx socket then accepts every
 * frame on out, but another node's frame there is neither an echo nor for
 * the guest: it is consumed and dropped. Our own frame still comes back as
 * TX_DONE.
 */
static void test_split_tx_confirm_ignores_bus(void **state)
{
	struct can_port_event ev[4];
	struct cframe f;
	struct can_port *p;
	int peer, fds[2], res[1] = {1};

	(void)state;
	p = open_port(IF_IN, IF_OUT, false);
	assert_int_equal(can_port_fds(p, fds), 2);
	assert_int_equal(can_port_set_tx_confirm(p, true), 0);
	peer = bus_peer(IF_OUT);

	bus_send(peer, 0x155, 0x55);
	assert_true(tfd_readable(fds[1], WAIT_MS));
	assert_int_equal(can_port_recv(p, fds[1], ev, 4), 0);
	assert_false(tfd_readable(fds[1], 0));
	assert_false(tfd_readable(fds[0], 0));

	memset(&f, 0, sizeof(f));
	f.id = 0x156;
	f.len = 2;
	f.data[0] = 0xab;
	f.data[1] = 0xcd;
	assert_int_equal(can_port_send(p, &f, 1, res), 0);
	assert_int_equal(res[0], 0);
	assert_true(tfd_readable(fds[1], WAIT_MS));
	assert_int_equal(can_port_recv(p, fds[1], ev, 4), 1);
	assert_int_equal(ev[0].type, CAN_PORT_EV_TX_DONE);
	assert_int_equal(ev[0].frame.id, 0x156);
	assert_int_equal(ev[0].frame.len, 2);
	assert_memory_equal(ev[0].frame.data, f.data, 2);
	close(peer);
	can_port_close(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_out_of_fds, ifs_setup, ifs_teardown),
	    cmocka_unit_test_setup_teardown(test_link_ctl_not_permitted, ifs_setup, ifs_teardown),
	    cmocka_unit_test_setup_teardown(test_iface_gone, ifs_setup, ifs_teardown),
	    cmocka_unit_test_setup_teardown(test_split_rx_kernel_drops, ifs_setup, ifs_teardown),
	    cmocka_unit_test_setup_teardown(test_split_tx_confirm_ignores_bus, ifs_setup,
					    ifs_teardown),
	};
	int s = socket(AF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW);

	if (s < 0) {
		printf("SKIPPED: no CAN in this kernel (%s); run in scripts/vm-test.sh\n",
		       strerror(errno));
		return 77;
	}
	close(s);
	if (geteuid() != 0) {
		printf("SKIPPED: needs root to make and remove vcan interfaces\n");
		return 77;
	}
	vlog_set_level(VLOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
