/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon started the ways service managers start vhost-user backends,
 * on real vcan (VM rig): an inherited listening socket (--fd) with READY=1
 * on NOTIFY_SOCKET, an inherited connected socket (exit when it closes),
 * systemd-socket-activate, and four devices in one process with one
 * frontend killed mid-traffic.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <setjmp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "vd.h"

/* A datagram socket bound at path, as a service manager's notify socket. */
static int notify_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return s;
}

/* One frame each way between the guest c and a peer on ifname. */
static void frames_cross(struct gdrv *c, const char *ifname, uint32_t id)
{
	struct cframe f = cf_make(id, 0, 8, (uint8_t)id), got;
	int peer = vd_peer_open(ifname);

	assert_int_equal(gdrv_tx_sync(c, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(peer, &f);
	f.id = id + 1;
	vd_peer_send(peer, &f);
	vd_guest_rx(c, &got);
	vd_assert_guest_frame(&got, &f);
	vd_peer_close(&peer);
}

static struct gdrv *guest_on(const char *path)
{
	struct gdrv_opts o;
	struct gdrv *c = NULL;

	gdrv_opts_default(&o);
	o.can_features = VD_NO_LATE_ACK;
	assert_int_equal(gdrv_open(&c, path, &o, VD_WAIT_MS), 0);
	assert_int_equal(gdrv_start(c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	return c;
}

/*
 * --fd with a listening socket: READY=1 arrives once it is served, frames
 * cross, SIGTERM ends it with 0, and the socket file (not the daemon's) is
 * left where it was.
 */
static void test_fd_listening_ready(void **state)
{
	const char *args[] = {"--fd=3", "-i", "vcan0", "-o", "vcan0", "-v", NULL};
	char notify[128], msg[256];
	struct pollfd pfd;
	struct gdrv *c;
	struct stat st;
	struct vd d;
	ssize_t n;
	int ls, ns;

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	snprintf(notify, sizeof(notify), "%s/notify", d.dir);
	ns = notify_socket(notify);
	ls = vd_listen_at(d.sock);
	vd_spawn_with(&d, NULL, ls, notify, args);
	close(ls);
	pfd = (struct pollfd){.fd = ns, .events = POLLIN};
	if (poll(&pfd, 1, VD_WAIT_MS) != 1) {
		vd_print_log(&d);
		fail_msg("no READY=1 within %d ms", VD_WAIT_MS);
	}
	n = recv(ns, msg, sizeof(msg) - 1, 0);
	assert_true(n > 0);
	msg[n] = '\0';
	assert_non_null(strstr(msg, "READY=1"));
	c = guest_on(d.sock);
	frames_cross(c, "vcan0", 0x310);
	gdrv_close(c);
	/* Listening: the next frontend is served too. */
	c = guest_on(d.sock);
	frames_cross(c, "vcan0", 0x320);
	gdrv_close(c);
	assert_int_equal(kill(d.pid, SIGTERM), 0);
	assert_true(vd_wait_exit(&d, VD_WAIT_MS));
	assert_int_equal(d.status, 0);
	assert_int_equal(stat(d.sock, &st), 0);
	close(ns);
	unlink(notify);
	vd_cleanup(&d);
}

/* --fd with a connected socket: one frontend, and the daemon exits 0 when it leaves. */
static void test_fd_connected_exits_with_it(void **state)
{
	const char *args[] = {"--fd=3", "-i", "vcan0", "-o", "vcan0", "-v", NULL};
	struct gdrv_opts o;
	struct gdrv *c = NULL;
	struct vd d;
	int sv[2];

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	vd_spawn_with(&d, NULL, sv[1], NULL, args);
	close(sv[1]);
	gdrv_opts_default(&o);
	o.can_features = VD_NO_LATE_ACK;
	assert_int_equal(gdrv_open_fd(&c, sv[0], &o, VD_WAIT_MS), 0);
	assert_int_equal(gdrv_start(c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	frames_cross(c, "vcan0", 0x330);
	assert_true(vd_running(&d));
	gdrv_close(c);
	if (!vd_wait_exit(&d, VD_WAIT_MS)) {
		vd_print_log(&d);
		fail_msg("the daemon did not exit when its connection closed");
	}
	assert_int_equal(d.status, 0);
	vd_cleanup(&d);
}

/* Socket activation by systemd's own tool: it listens, passes the socket on. */
static void test_systemd_socket_activate(void **state)
{
	const char *wrapper[] = {"/usr/bin/systemd-socket-activate", "-l", NULL, NULL};
	const char *args[] = {"-i", "vcan0", "-o", "vcan0", "-v", NULL};
	struct gdrv *c;
	struct vd d;

	(void)state;
	vd_skip_without_vcan();
	if (access(wrapper[0], X_OK) != 0) {
		printf("SKIPPED: %s not installed (Debian package systemd)\n", wrapper[0]);
		skip();
	}
	vd_init(&d);
	wrapper[2] = d.sock;
	vd_spawn_with(&d, wrapper, -1, NULL, args);
	/* The tool creates the socket; the daemon starts on the first connection. */
	c = guest_on(d.sock);
	frames_cross(c, "vcan0", 0x340);
	gdrv_close(c);
	c = guest_on(d.sock);
	frames_cross(c, "vcan0", 0x350);
	gdrv_close(c);
	if (!vd_log_has(&d, "inherited listening socket")) {
		vd_print_log(&d);
		fail_msg("the daemon did not take the socket systemd passed");
	}
	assert_int_equal(kill(d.pid, SIGTERM), 0);
	assert_true(vd_wait_exit(&d, VD_WAIT_MS));
	assert_int_equal(d.status, 0);
	vd_cleanup(&d);
}

/* ---- four devices in one process ---------------------------------------- */

#define NDEV 4
#define ROUNDS 40
#define BATCH 16
#define KILL_DEV 3
#define KILL_ROUND (ROUNDS / 2)

static const char *const ifs[NDEV] = {"vcan0", "vcan1", "vcan2", "vcan3"};

/* Device k's counters from the last SIGUSR1 block ("devK: tx: ok ..."). */
static void dev_stats(struct vd *d, unsigned int k, struct vd_stats *s)
{
	static char buf[1 << 20];
	char prefix[16];

	vd_stats(d, s); /* waits for a fresh block; its values are device 3's */
	vd_read_file(d->log, buf, sizeof(buf));
	snprintf(prefix, sizeof(prefix), "dev%u: ", k);
	vd_parse_outcomes(buf, prefix, s);
}

/* Extended (29-bit) ids that say which device, direction and frame. */
static uint32_t frame_id(unsigned int dev, unsigned int n, bool to_guest)
{
	return (to_guest ? 0x10000000u : 0) | (dev << 20) | n;
}

/*
 * Four devices on four vcan interfaces, traffic both ways on all of them at
 * once, in rounds; half way the frontend of device 3 is killed with
 * requests in flight. The other three see every frame, in order, and
 * their counters say so; device 3 serves a new frontend afterwards.
 */
static void test_four_devices_one_killed(void **state)
{
	struct gdrv *c[NDEV];
	int peer[NDEV];
	char spec[NDEV][512];
	const char *args[2 * NDEV + 2];
	struct vd d;
	char sock[NDEV][96];
	unsigned int na = 0;

	(void)state;
	vd_skip_without_vcan();
	if (vd_sh("ip link show vcan3 >/dev/null 2>&1 || "
		  "{ ip link add dev vcan3 type vcan && ip link set up vcan3; }") != 0)
		fail_msg("cannot create vcan3");
	vd_init(&d);
	for (unsigned int k = 0; k < NDEV; k++) {
		snprintf(sock[k], sizeof(sock[k]), "%s/dev%u.sock", d.dir, k);
		snprintf(spec[k], sizeof(spec[k]), "socket-path=%s,can-in=%s,can-out=%s,name=dev%u",
			 sock[k], ifs[k], ifs[k], k);
		args[na++] = "--device";
		args[na++] = spec[k];
	}
	args[na++] = "-v";
	args[na] = NULL;
	vd_spawn(&d, args);
	for (unsigned int k = 0; k < NDEV; k++) {
		struct stat st;
		uint64_t end = vd_now_ms() + VD_WAIT_MS;

		while (stat(sock[k], &st) != 0) {
			if (!vd_running(&d) || vd_now_ms() > end) {
				vd_print_log(&d);
				fail_msg("device %u never listened", k);
			}
			vd_sleep_ms(5);
		}
		peer[k] = vd_peer_open(ifs[k]);
		c[k] = guest_on(sock[k]);
	}

	for (unsigned int r = 0; r < ROUNDS; r++) {
		/* Everything of this round first, on all devices at once... */
		for (unsigned int k = 0; k < NDEV; k++) {
			if (!c[k])
				continue;
			for (unsigned int i = 0; i < BATCH; i++) {
				struct cframe f = cf_make(frame_id(k, r * BATCH + i, false),
							  CFRAME_EXT, 8, (uint8_t)i);

				assert_true(gdrv_tx(c[k], &f) >= 0);
				f.id = frame_id(k, r * BATCH + i, true);
				vd_peer_send(peer[k], &f);
			}
		}
		if (r == KILL_ROUND) {
			/* The VMM dies with requests and frames in flight. */
			gdrv_close(c[KILL_DEV]);
			c[KILL_DEV] = NULL;
		}
		/* ...then every device's results, checked in order. */
		for (unsigned int k = 0; k < NDEV; k++) {
			if (!c[k])
				continue;
			for (unsigned int i = 0; i < BATCH; i++) {
				struct cframe want = cf_make(frame_id(k, r * BATCH + i, false),
							     CFRAME_EXT, 8, (uint8_t)i),
					      got;
				uint8_t result = 0xee;
				int token;

				vd_assert_bus_frame(peer[k], &want);
				assert_int_equal(gdrv_tx_wait(c[k], VD_WAIT_MS, &token, &result),
						 1);
				assert_int_equal(result, VIRTIO_CAN_RESULT_OK);
				want.id = frame_id(k, r * BATCH + i, true);
				vd_guest_rx(c[k], &got);
				vd_assert_guest_frame(&got, &want);
			}
		}
	}
	/* The survivors' counters: every frame, nothing dropped or failed. */
	for (unsigned int k = 0; k < NDEV; k++) {
		struct vd_stats s;

		if (k == KILL_DEV)
			continue;
		dev_stats(&d, k, &s);
		assert_int_equal(s.tx_ok, ROUNDS * BATCH);
		assert_int_equal(s.tx_rejected + s.tx_failed + s.tx_timeout + s.tx_stopped, 0);
		assert_int_equal(s.rx_delivered, ROUNDS * BATCH);
		assert_int_equal(s.rx_dropped_stopped + s.rx_dropped_type + s.rx_dropped_overflow +
				     s.rx_dropped_small,
				 0);
		vd_assert_bus_quiet(peer[k]);
	}
	/* The killed device serves its next frontend. */
	c[KILL_DEV] = guest_on(sock[KILL_DEV]);
	frames_cross(c[KILL_DEV], ifs[KILL_DEV], 0x360);
	for (unsigned int k = 0; k < NDEV; k++) {
		gdrv_close(c[k]);
		vd_peer_close(&peer[k]);
	}
	assert_int_equal(kill(d.pid, SIGTERM), 0);
	assert_true(vd_wait_exit(&d, VD_WAIT_MS));
	assert_int_equal(d.status, 0);
	for (unsigned int k = 0; k < NDEV; k++)
		unlink(sock[k]);
	vd_cleanup(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fd_listening_ready),
	    cmocka_unit_test(test_fd_connected_exits_with_it),
	    cmocka_unit_test(test_systemd_socket_activate),
	    cmocka_unit_test(test_four_devices_one_killed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
