/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The CAN port against real vcan interfaces (run in the VM rig, where
 * vcan0 has MTU 72, vcan1 the default, vcan2 MTU 16). Independent peers:
 * plain raw sockets opened here, and can-utils cansend. Runs as root (the
 * VM rig): some tests make and remove interfaces of their own.
 * Exits 77 (skipped) where the kernel has no CAN or the interfaces are missing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/capability.h>
#include <linux/can/error.h>
#include <linux/can/raw.h>

#include <cmocka.h>

#include "can_port.h"
#include "tfd.h"
#include "vd.h"
#include "vhost-user/vlog.h"

#define WAIT_MS 5000 /* a guard against hangs, not a timing assertion */
#define MARK_ID 0x7ffu
#define MAX_EV 256

static int peer_open(const char *ifname, bool fd_frames)
{
	struct sockaddr_can addr = {.can_family = AF_CAN};
	int s = socket(AF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW);
	int one = 1;
	can_err_mask_t none = 0;

	assert_true(s >= 0);
	if (fd_frames)
		assert_int_equal(setsockopt(s, SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &one, sizeof(one)),
				 0);
	assert_int_equal(setsockopt(s, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &none, sizeof(none)), 0);
	addr.can_ifindex = (int)if_nametoindex(ifname);
	assert_true(addr.can_ifindex > 0);
	assert_int_equal(bind(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return s;
}

static void peer_send(int s, uint32_t can_id, uint8_t len, const void *data)
{
	struct can_frame cf;

	memset(&cf, 0, sizeof(cf));
	cf.can_id = can_id;
	cf.len = len;
	if (data && !(can_id & CAN_RTR_FLAG))
		memcpy(cf.data, data, len);
	assert_int_equal(write(s, &cf, sizeof(cf)), (ssize_t)sizeof(cf));
}

static void peer_send_fd(int s, uint32_t can_id, uint8_t len, uint8_t flags, const void *data)
{
	struct canfd_frame cf;

	memset(&cf, 0, sizeof(cf));
	cf.can_id = can_id;
	cf.len = len;
	cf.flags = flags;
	memcpy(cf.data, data, len);
	assert_int_equal(write(s, &cf, sizeof(cf)), (ssize_t)sizeof(cf));
}

/* Nothing (more) queued on a peer socket. */
static void peer_assert_empty(int s)
{
	struct canfd_frame cf;

	assert_int_equal(recv(s, &cf, sizeof(cf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

static void send_marker(int s)
{
	peer_send(s, MARK_ID, 4, "MARK");
}

static bool is_marker(const struct can_port_event *e)
{
	return e->type == CAN_PORT_EV_FRAME && e->frame.id == MARK_ID &&
	       !(e->frame.flags & CFRAME_EXT) && e->frame.len == 4 &&
	       memcmp(e->frame.data, "MARK", 4) == 0;
}

/*
 * Read every fd of the port until the marker frame arrived, then drain
 * what is left: the events in order, the marker included.
 */
static unsigned int collect(struct can_port *p, struct can_port_event *ev, unsigned int cap)
{
	struct pollfd pfd[2];
	int fds[2];
	unsigned int nfds = can_port_fds(p, fds), got = 0;
	bool marked = false;

	for (unsigned int i = 0; i < nfds; i++)
		pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
	while (!marked) {
		int r = poll(pfd, nfds, WAIT_MS);

		assert_true(r > 0); /* the marker must come */
		for (unsigned int i = 0; i < nfds; i++) {
			int n;

			if (!pfd[i].revents)
				continue;
			n = can_port_recv(p, fds[i], &ev[got], cap - got);
			assert_true(n >= 0);
			for (int k = 0; k < n; k++)
				if (is_marker(&ev[got + (unsigned int)k]))
					marked = true;
			got += (unsigned int)n;
			assert_true(got < cap);
		}
	}
	for (unsigned int i = 0; i < nfds; i++) {
		int n;

		while ((n = can_port_recv(p, fds[i], &ev[got], cap - got)) > 0)
			got += (unsigned int)n;
		assert_int_equal(n, 0);
	}
	return got;
}

static struct can_port *port_open(const char *in, const char *out, bool link_ctl)
{
	struct can_port_config cfg = {
	    .in_ifname = in, .out_ifname = out, .link_up_on_start = link_ctl};
	struct can_port *p = NULL;

	assert_int_equal(can_port_open(&p, &cfg), 0);
	assert_non_null(p);
	return p;
}

static bool cframe_equal(const struct cframe *a, const struct cframe *b)
{
	return a->id == b->id && a->flags == b->flags && a->len == b->len &&
	       ((a->flags & CFRAME_RTR) || memcmp(a->data, b->data, a->len) == 0);
}

static void assert_peer_got(int s, const struct cframe *f)
{
	struct canfd_frame cf;
	size_t n = vd_peer_recv(s, &cf, WAIT_MS);
	uint32_t want_id = f->id | ((f->flags & CFRAME_EXT) ? CAN_EFF_FLAG : 0) |
			   ((f->flags & CFRAME_RTR) ? CAN_RTR_FLAG : 0);

	assert_int_equal(n, (f->flags & CFRAME_FD) ? CANFD_MTU : CAN_MTU);
	assert_int_equal(cf.can_id, want_id);
	assert_int_equal(cf.len, f->len);
	if (f->flags & CFRAME_FD) {
		assert_int_equal(cf.flags & (CANFD_BRS | CANFD_ESI),
				 ((f->flags & CFRAME_BRS) ? CANFD_BRS : 0) |
				     ((f->flags & CFRAME_ESI) ? CANFD_ESI : 0));
	}
	if (!(f->flags & CFRAME_RTR))
		assert_memory_equal(cf.data, f->data, f->len);
}

static unsigned int if_flags(const char *ifname)
{
	char path[128];
	unsigned int flags = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/flags", ifname);
	f = fopen(path, "re");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%x", &flags), 1);
	fclose(f);
	return flags;
}

/* ---- tests -------------------------------------------------------------- */

static void test_check(void **state)
{
	char longname[IFNAMSIZ + 4];
	bool fd = false;
	int before = tfd_count();

	(void)state;
	assert_int_equal(can_port_check("vcan0", &fd), 0);
	assert_true(fd);
	fd = true;
	assert_int_equal(can_port_check("vcan2", &fd), 0);
	assert_false(fd);
	assert_int_equal(can_port_check("vcan1", NULL), 0);
	assert_int_equal(can_port_check("lo", &fd), -EMEDIUMTYPE);
	assert_int_equal(can_port_check("nosuchcan9", &fd), -ENODEV);
	assert_int_equal(can_port_check("", &fd), -ENODEV);
	assert_int_equal(can_port_check(NULL, &fd), -ENODEV);
	memset(longname, 'v', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(can_port_check(longname, &fd), -ENODEV);
	assert_int_equal(tfd_count(), before);

	assert_string_equal(can_port_strerror(-EAFNOSUPPORT),
			    "the kernel has no CAN support (CONFIG_CAN, can-raw)");
	assert_string_equal(can_port_strerror(-ENODEV), "no such network interface");
	assert_string_equal(can_port_strerror(-EMEDIUMTYPE), "not a CAN interface");
	assert_string_equal(can_port_strerror(ENODEV), "no such network interface");
	assert_string_equal(can_port_strerror(-ENOENT), strerror(ENOENT));
}

static void test_open_errors(void **state)
{
	struct can_port_config cfg = {.in_ifname = "vcan0", .out_ifname = "nosuchcan9"};
	struct can_port *p = (struct can_port *)&cfg; /* must be reset to NULL */
	int before = tfd_count();

	(void)state;
	assert_int_equal(can_port_open(&p, &cfg), -ENODEV);
	assert_null(p);
	cfg = (struct can_port_config){.in_ifname = "nosuchcan9", .out_ifname = "vcan0"};
	assert_int_equal(can_port_open(&p, &cfg), -ENODEV);
	cfg = (struct can_port_config){.in_ifname = "lo", .out_ifname = "vcan0"};
	assert_int_equal(can_port_open(&p, &cfg), -EMEDIUMTYPE);
	cfg = (struct can_port_config){.in_ifname = "vcan0", .out_ifname = "lo"};
	assert_int_equal(can_port_open(&p, &cfg), -EMEDIUMTYPE);
	cfg = (struct can_port_config){.in_ifname = "lo", .out_ifname = "lo"};
	assert_int_equal(can_port_open(&p, &cfg), -EMEDIUMTYPE);
	cfg = (struct can_port_config){.in_ifname = NULL, .out_ifname = "vcan0"};
	assert_int_equal(can_port_open(&p, &cfg), -EINVAL);
	assert_int_equal(can_port_open(&p, NULL), -EINVAL);
	assert_int_equal(tfd_count(), before);
}

static void test_open_modes(void **state)
{
	int before = tfd_count(), fds[2] = {-1, -1};
	struct can_port *p;

	(void)state;
	p = port_open("vcan0", "vcan0", false);
	assert_int_equal(can_port_fds(p, fds), 1);
	assert_true(fds[0] >= 0);
	assert_true(can_port_fd_capable(p));
	/* The raw socket and the link-event (rtnetlink) socket. */
	assert_int_equal(tfd_count(), before + 2);
	assert_true(can_port_link_fd(p) >= 0 && can_port_link_fd(p) != fds[0]);
	can_port_close(p);

	p = port_open("vcan1", "vcan0", false);
	assert_int_equal(can_port_fds(p, fds), 2);
	assert_true(fds[0] >= 0 && fds[1] >= 0 && fds[0] != fds[1]);
	assert_true(can_port_fd_capable(p));
	assert_int_equal(tfd_count(), before + 3);
	can_port_close(p);

	/* FD only when both sides carry it. */
	p = port_open("vcan2", "vcan0", false);
	assert_false(can_port_fd_capable(p));
	can_port_close(p);
	p = port_open("vcan0", "vcan2", false);
	assert_false(can_port_fd_capable(p));
	can_port_close(p);
	assert_int_equal(tfd_count(), before);
	can_port_close(NULL);
}

static void test_send_frames(void **state)
{
	struct cframe f[] = {
	    cf_make(0x123, 0, 4, 1),
	    cf_make(0x1234567, CFRAME_EXT, 8, 2),
	    cf_make(0x000, 0, 0, 0),
	    cf_make(0x321, CFRAME_RTR, 3, 0),
	    cf_make(0x1abcdef, CFRAME_EXT | CFRAME_RTR, 8, 0),
	    cf_make(0x456, CFRAME_FD | CFRAME_BRS, 64, 3),
	    cf_make(0x1fffffff, CFRAME_FD | CFRAME_EXT | CFRAME_ESI, 12, 4),
	    cf_make(0x7fe, CFRAME_FD, 0, 0),
	    cf_make(0x10, CFRAME_FD | CFRAME_BRS | CFRAME_ESI, 7, 5),
	};
	unsigned int n = sizeof(f) / sizeof(f[0]);
	int res[sizeof(f) / sizeof(f[0])];
	struct can_port *p;
	int peer;

	(void)state;
	p = port_open("vcan0", "vcan0", false);
	peer = peer_open("vcan0", true);
	memset(res, 0x55, sizeof(res));
	assert_int_equal(can_port_send(p, f, n, res), 0);
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(res[i], 0);
		assert_peer_got(peer, &f[i]);
	}
	peer_assert_empty(peer);
	assert_int_equal(can_port_send(p, f, 0, NULL), 0);
	close(peer);
	can_port_close(p);
}

/* More frames than one sendmmsg batch, all in order. */
static void test_send_many(void **state)
{
	enum { N = 100 };
	struct cframe f[N];
	int res[N];
	struct can_port *p;
	int peer;

	(void)state;
	for (unsigned int i = 0; i < N; i++)
		f[i] = cf_make(0x100 + i, 0, (uint8_t)(i % 9), (uint8_t)i);
	p = port_open("vcan1", "vcan1", false);
	peer = peer_open("vcan1", false);
	assert_int_equal(can_port_send(p, f, N, res), 0);
	for (unsigned int i = 0; i < N; i++) {
		assert_int_equal(res[i], 0);
		assert_peer_got(peer, &f[i]);
	}
	peer_assert_empty(peer);
	close(peer);
	can_port_close(p);
}

static void test_send_invalid_per_frame(void **state)
{
	struct cframe f[] = {
	    cf_make(0x101, 0, 2, 1),		   /* ok */
	    cf_make(0x102, CFRAME_FD, 8, 2),	   /* FD on a classic interface: EMSGSIZE */
	    cf_make(0x800, 0, 1, 3),		   /* standard id too large */
	    cf_make(0x20000000, CFRAME_EXT, 1, 4), /* extended id too large */
	    cf_make(0x103, 0, 9, 5),		   /* classic length > 8 */
	    cf_make(0x104, CFRAME_BRS, 1, 6),	   /* BRS on a classic frame */
	    cf_make(0x105, 0x80, 1, 7),		   /* unknown flag */
	    cf_make(0x106, 0, 8, 8),		   /* ok */
	};
	int res[8];
	struct can_port_stats st;
	struct can_port *p;
	int peer;

	(void)state;
	p = port_open("vcan2", "vcan2", false);
	assert_false(can_port_fd_capable(p));
	peer = peer_open("vcan2", false);
	assert_int_equal(can_port_send(p, f, 8, res), 0);
	assert_int_equal(res[0], 0);
	/* Refused for the link's MTU, and counted as such. */
	assert_int_equal(res[1], -EMSGSIZE);
	can_port_get_stats(p, &st);
	assert_int_equal(st.fd_refused, 1);
	for (unsigned int i = 2; i < 7; i++)
		assert_int_equal(res[i], -EINVAL);
	assert_int_equal(res[7], 0);
	assert_peer_got(peer, &f[0]);
	assert_peer_got(peer, &f[7]);
	peer_assert_empty(peer);
	can_port_close(p);

	/* FD-only rules on an FD interface. */
	{
		struct cframe g[] = {
		    cf_make(0x201, CFRAME_FD | CFRAME_RTR, 0, 0), /* no RTR in FD */
		    cf_make(0x202, CFRAME_FD, 13, 1),		  /* not a DLC length */
		    cf_make(0x203, CFRAME_FD, 65, 2),		  /* too long */
		    cf_make(0x204, CFRAME_FD, 20, 3),		  /* ok */
		};

		close(peer);
		p = port_open("vcan0", "vcan0", false);
		peer = peer_open("vcan0", true);
		assert_int_equal(can_port_send(p, g, 4, res), 0);
		assert_int_equal(res[0], -EINVAL);
		assert_int_equal(res[1], -EINVAL);
		assert_int_equal(res[2], -EINVAL);
		assert_int_equal(res[3], 0);
		assert_peer_got(peer, &g[3]);
		peer_assert_empty(peer);
		can_port_close(p);
	}
	close(peer);
}

static void test_recv_frames(void **state)
{
	struct can_port_event ev[MAX_EV];
	uint8_t d48[48];
	struct can_port *p;
	unsigned int n;
	int peer;

	(void)state;
	for (unsigned int i = 0; i < sizeof(d48); i++)
		d48[i] = (uint8_t)(0xa0 ^ i);
	p = port_open("vcan0", "vcan0", false);
	peer = peer_open("vcan0", true);
	peer_send(peer, 0x123, 3, "\x01\x02\x03");
	peer_send(peer, CAN_EFF_FLAG | 0x1abcdef0, 8, "\x10\x11\x12\x13\x14\x15\x16\x17");
	peer_send(peer, CAN_RTR_FLAG | 0x321, 5, NULL);
	peer_send(peer, CAN_EFF_FLAG | CAN_RTR_FLAG | 0x54321, 0, NULL);
	peer_send_fd(peer, 0x456, 48, CANFD_BRS | CANFD_ESI, d48);
	peer_send_fd(peer, CAN_EFF_FLAG | 0x77, 2, 0, "\xfe\xff");
	send_marker(peer);
	n = collect(p, ev, MAX_EV);
	assert_int_equal(n, 7);
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(ev[i].type, CAN_PORT_EV_FRAME);

	assert_int_equal(ev[0].frame.id, 0x123);
	assert_int_equal(ev[0].frame.flags, 0);
	assert_int_equal(ev[0].frame.len, 3);
	assert_memory_equal(ev[0].frame.data, "\x01\x02\x03", 3);

	assert_int_equal(ev[1].frame.id, 0x1abcdef0);
	assert_int_equal(ev[1].frame.flags, CFRAME_EXT);
	assert_int_equal(ev[1].frame.len, 8);
	assert_memory_equal(ev[1].frame.data, "\x10\x11\x12\x13\x14\x15\x16\x17", 8);

	assert_int_equal(ev[2].frame.id, 0x321);
	assert_int_equal(ev[2].frame.flags, CFRAME_RTR);
	assert_int_equal(ev[2].frame.len, 5); /* the DLC */

	assert_int_equal(ev[3].frame.id, 0x54321);
	assert_int_equal(ev[3].frame.flags, CFRAME_EXT | CFRAME_RTR);
	assert_int_equal(ev[3].frame.len, 0);

	assert_int_equal(ev[4].frame.id, 0x456);
	assert_int_equal(ev[4].frame.flags, CFRAME_FD | CFRAME_BRS | CFRAME_ESI);
	assert_int_equal(ev[4].frame.len, 48);
	assert_memory_equal(ev[4].frame.data, d48, 48);

	assert_int_equal(ev[5].frame.id, 0x77);
	assert_int_equal(ev[5].frame.flags, CFRAME_FD | CFRAME_EXT);
	assert_int_equal(ev[5].frame.len, 2);
	assert_memory_equal(ev[5].frame.data, "\xfe\xff", 2);

	assert_true(is_marker(&ev[6]));
	close(peer);
	can_port_close(p);
}

/* can-utils' cansend as an independent sender. */
static void test_recv_cansend(void **state)
{
	struct can_port_event ev[MAX_EV];
	struct can_port *p;
	unsigned int n;

	(void)state;
	if (vd_sh("command -v cansend >/dev/null") != 0) {
		printf("SKIPPED: cansend (can-utils) is not installed\n");
		skip();
	}
	p = port_open("vcan0", "vcan0", false);
	assert_int_equal(vd_sh("cansend vcan0 5A1#11.2233"), 0);
	assert_int_equal(vd_sh("cansend vcan0 1F334455#1122334455667788"), 0);
	assert_int_equal(vd_sh("cansend vcan0 123#R7"), 0);
	assert_int_equal(vd_sh("cansend vcan0 213##3112233445566778899AABBCC"), 0);
	assert_int_equal(vd_sh("cansend vcan0 7FF#4D41524B"), 0); /* the marker */
	n = collect(p, ev, MAX_EV);
	assert_int_equal(n, 5);
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(ev[i].type, CAN_PORT_EV_FRAME);
	assert_int_equal(ev[0].frame.id, 0x5a1);
	assert_int_equal(ev[0].frame.flags, 0);
	assert_int_equal(ev[0].frame.len, 3);
	assert_memory_equal(ev[0].frame.data, "\x11\x22\x33", 3);
	assert_int_equal(ev[1].frame.id, 0x1f334455);
	assert_int_equal(ev[1].frame.flags, CFRAME_EXT);
	assert_int_equal(ev[1].frame.len, 8);
	assert_int_equal(ev[2].frame.id, 0x123);
	assert_int_equal(ev[2].frame.flags, CFRAME_RTR);
	assert_int_equal(ev[2].frame.len, 7);
	assert_int_equal(ev[3].frame.id, 0x213);
	assert_int_equal(ev[3].frame.flags, CFRAME_FD | CFRAME_BRS | CFRAME_ESI);
	assert_int_equal(ev[3].frame.len, 12);
	assert_memory_equal(ev[3].frame.data, "\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc",
			    12);
	assert_true(is_marker(&ev[4]));
	can_port_close(p);
}

/* One socket for in == out: the guest's own frames never come back. */
static void test_same_iface_no_own_frames(void **state)
{
	struct can_port_event ev[MAX_EV];
	struct cframe f[5];
	int res[5];
	struct can_port *p;
	unsigned int n;
	int peer;

	(void)state;
	for (unsigned int i = 0; i < 5; i++)
		f[i] = cf_make(0x300 + i, 0, 8, (uint8_t)i);
	p = port_open("vcan0", "vcan0", false);
	peer = peer_open("vcan0", true);
	assert_int_equal(can_port_send(p, f, 5, res), 0);
	for (unsigned int i = 0; i < 5; i++) {
		assert_int_equal(res[i], 0);
		assert_peer_got(peer, &f[i]); /* they did go out */
	}
	send_marker(peer);
	n = collect(p, ev, MAX_EV);
	assert_int_equal(n, 1);
	assert_true(is_marker(&ev[0]));
	close(peer);
	can_port_close(p);
}

static void test_tx_confirm_same_iface(void **state)
{
	struct can_port_event ev[MAX_EV];
	struct cframe f[3] = {
	    cf_make(0x400, 0, 2, 1),
	    cf_make(0x1400, CFRAME_EXT, 8, 2),
	    cf_make(0x401, CFRAME_FD | CFRAME_BRS, 16, 3),
	};
	int res[3];
	struct can_port *p;
	unsigned int n;
	int peer;

	(void)state;
	p = port_open("vcan0", "vcan0", false);
	peer = peer_open("vcan0", true);
	assert_int_equal(can_port_set_tx_confirm(p, true), 0);
	assert_int_equal(can_port_send(p, f, 3, res), 0);
	send_marker(peer);
	n = collect(p, ev, MAX_EV);
	assert_int_equal(n, 4);
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(ev[i].type, CAN_PORT_EV_TX_DONE);
		assert_true(cframe_equal(&ev[i].frame, &f[i]));
	}
	assert_true(is_marker(&ev[3]));

	/* Off again: no echoes at all. */
	assert_int_equal(can_port_set_tx_confirm(p, false), 0);
	assert_int_equal(can_port_send(p, f, 3, res), 0);
	send_marker(peer);
	n = collect(p, ev, MAX_EV);
	assert_int_equal(n, 1);
	assert_true(is_marker(&ev[0]));
	close(peer);
	can_port_close(p);
}

/* in = vcan1, out = vcan0: bus frames only from in, confirmations and errors from out. */
static void test_split_ifaces(void **state)
{
	struct can_port_event ev[MAX_EV];
	struct cframe c = cf_make(0x501, 0, 3, 9), e = cf_make(0x502, CFRAME_FD, 24, 7);
	int res[1];
	struct can_port *p;
	unsigned int n;
	int peer_out, peer_in;

	(void)state;
	p = port_open("vcan1", "vcan0", false);
	peer_out = peer_open("vcan0", true);
	peer_in = peer_open("vcan1", true);

	peer_send(peer_out, 0x5a0, 1, "\x01"); /* other traffic on out: not for the guest */
	peer_send(peer_in, 0x5b0, 2, "\x02\x03");
	send_marker(peer_in);
	n = collect(p, ev, MAX_EV);
	assert_int_equal(n, 2);
	assert_int_equal(ev[0].type, CAN_PORT_EV_FRAME);
	assert_int_equal(ev[0].frame.id, 0x5b0);
	assert_true(is_marker(&ev[1]));

	/* The guest's frames go out on out, and only there. */
	assert_int_equal(can_port_send(p, &c, 1, res), 0);
	assert_int_equal(res[0], 0);
	assert_peer_got(peer_out, &c);
	peer_assert_empty(peer_out);
	peer_assert_empty(peer_in);

	/* Confirmations come from out; out's other traffic still does not. */
	assert_int_equal(can_port_set_tx_confirm(p, true), 0);
	peer_send(peer_out, 0x5a1, 1, "\x04");
	assert_int_equal(can_port_send(p, &e, 1, res), 0);
	assert_int_equal(res[0], 0);
	send_marker(peer_in);
	n = collect(p, ev, MAX_EV);
	assert_int_equal(n, 2);
	{
		unsigned int tx = 0, mark = 0;

		for (unsigned int i = 0; i < n; i++) {
			if (ev[i].type == CAN_PORT_EV_TX_DONE) {
				assert_true(cframe_equal(&ev[i].frame, &e));
				tx++;
			} else if (is_marker(&ev[i])) {
				mark++;
			}
		}
		assert_int_equal(tx, 1);
		assert_int_equal(mark, 1);
	}

	/* Off: the tx socket takes no bus frames again. */
	assert_int_equal(can_port_set_tx_confirm(p, false), 0);
	peer_send(peer_out, 0x5a2, 1, "\x05");
	assert_int_equal(can_port_send(p, &c, 1, res), 0);
	send_marker(peer_in);
	n = collect(p, ev, MAX_EV);
	assert_int_equal(n, 1);
	assert_true(is_marker(&ev[0]));

	/* Error frames count on out only. */
	peer_send(peer_in, CAN_ERR_FLAG | CAN_ERR_BUSOFF, CAN_ERR_DLC, NULL);
	peer_send(peer_out, CAN_ERR_FLAG | CAN_ERR_BUSOFF, CAN_ERR_DLC, NULL);
	send_marker(peer_in);
	n = collect(p, ev, MAX_EV);
	assert_int_equal(n, 2);
	assert_true((ev[0].type == CAN_PORT_EV_BUSOFF && is_marker(&ev[1])) ||
		    (ev[1].type == CAN_PORT_EV_BUSOFF && is_marker(&ev[0])));

	close(peer_in);
	close(peer_out);
	can_port_close(p);
}

/* Error frames injected by another raw socket on the interface. */
static void test_error_frames(void **state)
{
	struct can_port_event ev[MAX_EV];
	struct can_port *p;
	unsigned int n;
	int peer;

	(void)state;
	p = port_open("vcan0", "vcan0", false);
	peer = peer_open("vcan0", true);
	peer_send(peer, CAN_ERR_FLAG | CAN_ERR_BUSOFF, CAN_ERR_DLC, NULL);
	peer_send(peer, CAN_ERR_FLAG | CAN_ERR_CRTL, CAN_ERR_DLC, NULL); /* ignored */
	peer_send(peer, CAN_ERR_FLAG | CAN_ERR_ACK, CAN_ERR_DLC, NULL);	 /* ignored */
	peer_send(peer, CAN_ERR_FLAG | CAN_ERR_RESTARTED, CAN_ERR_DLC, NULL);
	peer_send(peer, CAN_ERR_FLAG | CAN_ERR_BUSOFF | CAN_ERR_RESTARTED, CAN_ERR_DLC, NULL);
	send_marker(peer);
	n = collect(p, ev, MAX_EV);
	assert_int_equal(n, 5);
	assert_int_equal(ev[0].type, CAN_PORT_EV_BUSOFF);
	assert_int_equal(ev[1].type, CAN_PORT_EV_RESTARTED);
	assert_int_equal(ev[2].type, CAN_PORT_EV_BUSOFF);
	assert_int_equal(ev[3].type, CAN_PORT_EV_RESTARTED);
	assert_true(is_marker(&ev[4]));

	/* With a single free slot, bus-off + restarted reports the later state. */
	peer_send(peer, CAN_ERR_FLAG | CAN_ERR_BUSOFF | CAN_ERR_RESTARTED, CAN_ERR_DLC, NULL);
	{
		struct pollfd pfd;
		int fds[2];

		can_port_fds(p, fds);
		pfd = (struct pollfd){.fd = fds[0], .events = POLLIN};
		assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
		assert_int_equal(can_port_recv(p, fds[0], ev, 1), 1);
		assert_int_equal(ev[0].type, CAN_PORT_EV_RESTARTED);
	}
	close(peer);
	can_port_close(p);
}

/*
 * A maximum of 2 with error frames that give two events each: never more
 * than max events written (the slot after them stays untouched), and none
 * lost over the calls that follow.
 */
static void test_error_frames_small_max(void **state)
{
	static const enum can_port_event_type want[] = {CAN_PORT_EV_BUSOFF, CAN_PORT_EV_RESTARTED,
							CAN_PORT_EV_BUSOFF, CAN_PORT_EV_RESTARTED};
	struct can_port_event ev[3];
	struct can_port *p;
	unsigned int got = 0;
	int peer, fds[2];

	(void)state;
	p = port_open("vcan0", "vcan0", false);
	peer = peer_open("vcan0", true);
	peer_send(peer, CAN_ERR_FLAG | CAN_ERR_BUSOFF | CAN_ERR_RESTARTED, CAN_ERR_DLC, NULL);
	peer_send(peer, CAN_ERR_FLAG | CAN_ERR_BUSOFF, CAN_ERR_DLC, NULL);
	peer_send(peer, CAN_ERR_FLAG | CAN_ERR_RESTARTED, CAN_ERR_DLC, NULL);
	can_port_fds(p, fds);
	while (got < 4) {
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		int n;

		memset(ev, 0x5c, sizeof(ev));
		assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
		n = can_port_recv(p, fds[0], ev, 2);
		assert_true(n >= 1 && n <= 2);
		for (int i = 0; i < n; i++)
			assert_int_equal(ev[i].type, want[got++]);
		for (size_t b = 0; b < sizeof(ev[2]); b++)
			assert_int_equal(((const uint8_t *)&ev[2])[b], 0x5c);
	}
	close(peer);
	can_port_close(p);
}

static void test_recv_args(void **state)
{
	struct can_port_event ev[4];
	struct can_port *p;
	int fds[2];

	(void)state;
	p = port_open("vcan0", "vcan0", false);
	can_port_fds(p, fds);
	assert_int_equal(can_port_recv(p, -1, ev, 4), -EBADF);
	assert_int_equal(can_port_recv(p, 0, ev, 4), -EBADF);
	assert_int_equal(can_port_recv(p, fds[0], ev, 0), 0);
	assert_int_equal(can_port_recv(p, fds[0], ev, 4), 0); /* nothing queued */
	assert_int_equal(can_port_recv(NULL, fds[0], ev, 4), -EINVAL);
	can_port_close(p);
}

static void test_bus_off_unknown_on_vcan(void **state)
{
	struct can_port *p;

	(void)state;
	p = port_open("vcan0", "vcan0", false);
	assert_int_equal(can_port_bus_off(p), -ENODATA);
	can_port_close(p);
}

#define TIF "vcpt0"

static int tif_setup(void **state)
{
	(void)state;
	(void)vd_sh("ip link del dev " TIF " 2>/dev/null");
	if (vd_sh("ip link add dev " TIF " type vcan && ip link set dev " TIF " mtu 72 up") != 0)
		return -1;
	return 0;
}

static int tif_teardown(void **state)
{
	(void)state;
	return vd_sh("ip link del dev " TIF) == 0 ? 0 : -1;
}

/* Link down: every frame fails with an errno; after link up they go out. */
static void test_link_down_up(void **state)
{
	struct cframe f[3] = {
	    cf_make(0x601, 0, 1, 1),
	    cf_make(0x602, CFRAME_FD, 12, 2),
	    cf_make(0x603, CFRAME_EXT, 8, 3),
	};
	struct can_port_event ev[MAX_EV];
	int res[3], fds[2];
	struct can_port *p;
	int peer, before = tfd_count();

	(void)state;
	p = port_open(TIF, TIF, true);
	peer = peer_open(TIF, true);
	assert_int_equal(can_port_stop(p), 0);
	assert_false(if_flags(TIF) & IFF_UP);
	memset(res, 0, sizeof(res));
	assert_int_equal(can_port_send(p, f, 3, res), 0);
	for (unsigned int i = 0; i < 3; i++)
		assert_true(res[i] < 0);
	/* Reading the port after a link down is no error. */
	can_port_fds(p, fds);
	assert_true(can_port_recv(p, fds[0], ev, MAX_EV) >= 0);

	assert_int_equal(can_port_start(p), 0);
	assert_true(if_flags(TIF) & IFF_UP);
	assert_int_equal(can_port_send(p, f, 3, res), 0);
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(res[i], 0);
		assert_peer_got(peer, &f[i]);
	}
	peer_assert_empty(peer);
	close(peer);
	can_port_close(p);

	/* Without link control, start/stop leave the link alone. */
	p = port_open(TIF, TIF, false);
	assert_int_equal(can_port_stop(p), 0);
	assert_true(if_flags(TIF) & IFF_UP);
	assert_int_equal(vd_sh("ip link set dev " TIF " down"), 0);
	assert_int_equal(can_port_start(p), 0);
	assert_false(if_flags(TIF) & IFF_UP);
	assert_int_equal(vd_sh("ip link set dev " TIF " up"), 0);
	can_port_close(p);
	assert_int_equal(tfd_count(), before);
}

/*
 * The kernel refuses a frame in the middle of a batch (an FD frame after the
 * interface lost CAN FD under the open port): the frames around it still go.
 */
static void test_partial_batch(void **state)
{
	struct cframe f[5] = {
	    cf_make(0x611, 0, 2, 1),	      cf_make(0x612, CFRAME_FD, 16, 2),
	    cf_make(0x613, 0, 3, 3),	      cf_make(0x614, CFRAME_FD, 8, 4),
	    cf_make(0x615, CFRAME_EXT, 1, 5),
	};
	int res[5];
	struct can_port *p;
	int peer;

	(void)state;
	p = port_open(TIF, TIF, false);
	assert_true(can_port_fd_capable(p));
	assert_int_equal(vd_sh("ip link set dev " TIF " down && ip link set dev " TIF
			       " mtu 16 && ip link set dev " TIF " up"),
			 0);
	peer = peer_open(TIF, false);
	memset(res, 0x55, sizeof(res));
	assert_int_equal(can_port_send(p, f, 5, res), 0);
	assert_int_equal(res[0], 0);
	assert_true(res[1] < 0);
	assert_int_equal(res[2], 0);
	assert_true(res[3] < 0);
	assert_int_equal(res[4], 0);
	assert_peer_got(peer, &f[0]);
	assert_peer_got(peer, &f[2]);
	assert_peer_got(peer, &f[4]);
	peer_assert_empty(peer);
	close(peer);
	can_port_close(p);
}

/* Frames the kernel dropped for a full receive queue are counted. */
static void test_kernel_drops(void **state)
{
	enum { FLOOD = 20000 };
	struct can_port_event ev[MAX_EV];
	struct can_port *p;
	unsigned long got = 0, drops;
	int peer, fds[2], n;

	(void)state;
	p = port_open(TIF, TIF, false);
	peer = peer_open(TIF, false);
	assert_int_equal(can_port_kernel_drops(p), 0);
	for (unsigned int i = 0; i < FLOOD; i++)
		peer_send(peer, 0x100 + (i & 0xff), 1, "\x00");
	can_port_fds(p, fds);
	while ((n = can_port_recv(p, fds[0], ev, MAX_EV)) > 0)
		got += (unsigned long)n;
	assert_int_equal(n, 0);
	/* The count rides on the next frame queued after the drops. */
	send_marker(peer);
	n = (int)collect(p, ev, MAX_EV);
	assert_int_equal(n, 1);
	got += 1;
	drops = can_port_kernel_drops(p);
	printf("flood: %lu received, %lu dropped by the kernel\n", got, drops);
	assert_true(drops > 0);
	assert_int_equal(got + drops, FLOOD + 1);
	close(peer);
	can_port_close(p);
}

/*
 * The port's own interfaces COV_OUT and COV_IN, made and removed around each
 * test: no fd left for a socket, link control without CAP_NET_ADMIN and on
 * an interface that went away, the kernel's drop count on a separate rx
 * socket, bus traffic reaching the tx socket while transmit confirmation
 * is on.
 */
#define COV_OUT "vcpt1"
#define COV_IN "vcpt2"

static int ifs_setup(void **state)
{
	(void)state;
	(void)vd_sh("ip link del dev " COV_OUT " 2>/dev/null; ip link del dev " COV_IN
		    " 2>/dev/null");
	return vd_sh("ip link add dev " COV_OUT " type vcan && ip link set dev " COV_OUT
		     " mtu 72 up && "
		     "ip link add dev " COV_IN " type vcan && ip link set dev " COV_IN
		     " mtu 72 up") == 0
		   ? 0
		   : -1;
}

/* A test may have removed an interface itself. */
static int ifs_teardown(void **state)
{
	(void)state;
	(void)vd_sh("ip link del dev " COV_OUT " 2>/dev/null; ip link del dev " COV_IN
		    " 2>/dev/null");
	return 0;
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

/* No fd left for a socket: the check and the open say so (-EMFILE), not "no CAN". */
static void test_out_of_fds(void **state)
{
	struct can_port_config cfg = {.in_ifname = COV_OUT, .out_ifname = COV_OUT};
	struct can_port *p = NULL;
	struct rlimit rl, old;
	int base = tfd_next();

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	rl = old;
	rl.rlim_cur = (rlim_t)base;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_int_equal(can_port_check(COV_OUT, NULL), -EMFILE);
	assert_int_equal(can_port_open(&p, &cfg), -EMFILE);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_null(p);
	assert_int_equal(tfd_next(), base);
	/* With fds again, the same interface checks fine. */
	assert_int_equal(can_port_check(COV_OUT, NULL), 0);
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
	p = port_open(COV_OUT, COV_OUT, true);
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
	assert_true((if_flags(COV_OUT) & IFF_UP));
	/* As root the same port does control the link. */
	assert_int_equal(can_port_stop(p), 0);
	assert_false((if_flags(COV_OUT) & IFF_UP));
	assert_int_equal(can_port_start(p), 0);
	assert_true((if_flags(COV_OUT) & IFF_UP));
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
	p = port_open(COV_OUT, COV_OUT, true);
	assert_int_equal(can_port_fds(p, fds), 1);
	lfd = can_port_link_fd(p);
	assert_true(lfd >= 0);
	assert_int_equal(vd_sh("ip link del dev " COV_OUT), 0);

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
	assert_int_equal(vd_sh("ip link add dev " COV_OUT " mtu 72 type vcan"), 0);
	while (n == 0 && tfd_readable(lfd, WAIT_MS))
		n = can_port_recv(p, lfd, ev, 4);
	assert_int_equal(n, 1);
	assert_int_equal(ev[0].type, CAN_PORT_EV_BACK);
	assert_int_equal(can_port_fds(p, fds), 1);
	assert_true((if_flags(COV_OUT) & IFF_UP));
	peer = peer_open(COV_OUT, false);
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
	p = port_open(COV_IN, COV_OUT, false);
	assert_int_equal(can_port_fds(p, fds), 2);
	peer = peer_open(COV_IN, false);
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
	p = port_open(COV_IN, COV_OUT, false);
	assert_int_equal(can_port_fds(p, fds), 2);
	assert_int_equal(can_port_set_tx_confirm(p, true), 0);
	peer = peer_open(COV_OUT, false);

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

static bool rig_ready(void)
{
	bool fd0 = false, fd2 = true;
	int r = can_port_check("vcan0", &fd0);

	if (r < 0) {
		printf("SKIPPED: vcan0: %s (run through scripts/vm-test.sh)\n",
		       can_port_strerror(r));
		return false;
	}
	if (can_port_check("vcan1", NULL) < 0 || can_port_check("vcan2", &fd2) < 0 || !fd0 || fd2) {
		printf("SKIPPED: needs vcan0 (MTU 72), vcan1 and vcan2 (MTU 16) as the VM rig "
		       "makes them\n");
		return false;
	}
	return true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_open_errors),
	    cmocka_unit_test(test_open_modes),
	    cmocka_unit_test(test_send_frames),
	    cmocka_unit_test(test_send_many),
	    cmocka_unit_test(test_send_invalid_per_frame),
	    cmocka_unit_test(test_recv_frames),
	    cmocka_unit_test(test_recv_cansend),
	    cmocka_unit_test(test_same_iface_no_own_frames),
	    cmocka_unit_test(test_tx_confirm_same_iface),
	    cmocka_unit_test(test_split_ifaces),
	    cmocka_unit_test(test_error_frames),
	    cmocka_unit_test(test_error_frames_small_max),
	    cmocka_unit_test(test_recv_args),
	    cmocka_unit_test(test_bus_off_unknown_on_vcan),
	    cmocka_unit_test_setup_teardown(test_link_down_up, tif_setup, tif_teardown),
	    cmocka_unit_test_setup_teardown(test_partial_batch, tif_setup, tif_teardown),
	    cmocka_unit_test_setup_teardown(test_kernel_drops, tif_setup, tif_teardown),
	    cmocka_unit_test_setup_teardown(test_out_of_fds, ifs_setup, ifs_teardown),
	    cmocka_unit_test_setup_teardown(test_link_ctl_not_permitted, ifs_setup, ifs_teardown),
	    cmocka_unit_test_setup_teardown(test_iface_gone, ifs_setup, ifs_teardown),
	    cmocka_unit_test_setup_teardown(test_split_rx_kernel_drops, ifs_setup, ifs_teardown),
	    cmocka_unit_test_setup_teardown(test_split_tx_confirm_ignores_bus, ifs_setup,
					    ifs_teardown),
	};

	if (!rig_ready())
		return 77;
	vlog_set_level(VLOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
