/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The real daemon's start-up and options on real vcan (VM rig). With
 * several devices, where the interface checks pass and only the socket
 * check can stop the daemon:
 *
 * - --device fd=3 plus a device taking systemd's socket (LISTEN_FDS=1,
 *   which is fd 3 as well): refused, naming both devices. The daemon used
 *   to serve fd 3 with both devices, and a VM got whichever bus answered.
 * - One socket file spelt two ways (DIR/a.sock, DIR/./a.sock): refused as
 *   given twice, before listening. The second device used to take the
 *   first one's socket for another process's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "vd.h"
#include "vhost-user/vlog.h"

/* The daemon must exit by itself (a start-up error): its status; the log on failure. */
static int vd_exit_status(struct vd *d)
{
	if (!vd_wait_exit(d, VD_WAIT_MS)) {
		kill(d->pid, SIGKILL);
		vd_wait_exit(d, VD_WAIT_MS);
		vd_print_log(d);
		fail_msg("the daemon did not exit: it started serving");
	}
	return d->status;
}

static void assert_log_has(const struct vd *d, const char *what)
{
	if (!vd_log_has(d, what)) {
		vd_print_log(d);
		fail_msg("'%s' not in the daemon's log", what);
	}
}

static void test_fd_and_activation_one_socket(void **state)
{
	/* sh's pid is the daemon's after exec: LISTEN_PID names it, as systemd would. */
	const char *const wrap[] = {"/bin/sh", "-c",
				    "export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" \"$@\"", NULL};
	const char *args[] = {
	    "--device", "fd=3,can-in=vcan0,can-out=vcan0,name=a",
	    "--device", "can-in=vcan1,can-out=vcan1,name=b",
	    NULL,
	};
	struct vd d;
	int ls;

	(void)state;
	vd_init(&d);
	ls = vd_listen_at(d.sock);
	vd_spawn_with(&d, wrap, ls, NULL, args);
	close(ls);
	assert_int_equal(vd_exit_status(&d), 1);
	assert_log_has(&d, "one socket given twice: --device #1 (name=a) has --device fd=3, "
			   "--device #2 (name=b) has LISTEN_FDS fd 3;");
	assert_false(vd_log_has(&d, "ready:"));
	vd_cleanup(&d);
}

static void test_path_two_spellings(void **state)
{
	char a[160], b[160], spec_a[256], spec_b[256];
	const char *args[] = {"--device", spec_a, "--device", spec_b, "-v", NULL};
	struct stat st;
	struct vd d;

	(void)state;
	vd_init(&d);
	snprintf(a, sizeof(a), "%s/a.sock", d.dir);
	snprintf(b, sizeof(b), "%s/./a.sock", d.dir);
	snprintf(spec_a, sizeof(spec_a), "socket-path=%s,can-in=vcan0,can-out=vcan0", a);
	snprintf(spec_b, sizeof(spec_b), "socket-path=%s,can-in=vcan1,can-out=vcan1", b);
	vd_spawn(&d, args);
	assert_int_equal(vd_exit_status(&d), 1);
	assert_log_has(&d, "socket path given twice: --device #1 (vcan0) has ");
	assert_log_has(&d, b);
	assert_false(vd_log_has(&d, "another process"));
	assert_false(vd_log_has(&d, "ready:"));
	/* Refused before listening: no socket file was made. */
	assert_int_equal(lstat(a, &st), -1);
	assert_int_equal(errno, ENOENT);
	vd_cleanup(&d);
}

/*
 * Options and start-up paths on an interface of the test's own (TIF, made
 * and removed around each test): --link-up bringing the out interface up on
 * START and down on STOP, --quiet, --tx-ack-timeout, and a second daemon
 * refused a socket path the first one serves.
 */
#define TIF "vstart0"

struct fx {
	struct vd d[2];
	struct gdrv *c;
	int peer;
};

static int opts_setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	if (!x)
		return -1;
	x->peer = -1;
	vd_init(&x->d[0]);
	vd_init(&x->d[1]);
	(void)vd_sh("ip link del dev " TIF " 2>/dev/null");
	if (vd_sh("ip link add dev " TIF " type vcan && ip link set dev " TIF " mtu 72") != 0)
		return -1;
	*state = x;
	return 0;
}

static int opts_teardown(void **state)
{
	struct fx *x = *state;

	if (x->c)
		gdrv_close(x->c);
	vd_peer_close(&x->peer);
	vd_cleanup(&x->d[0]);
	vd_cleanup(&x->d[1]);
	(void)vd_sh("ip link del dev " TIF " 2>/dev/null");
	free(x);
	return 0;
}

static bool is_up(const char *ifname)
{
	char path[96], buf[32];

	snprintf(path, sizeof(path), "/sys/class/net/%s/flags", ifname);
	assert_true(vd_read_file(path, buf, sizeof(buf)) > 0);
	return strtoul(buf, NULL, 16) & IFF_UP;
}

/*
 * --link-up: the link stays as it is until the guest's START, is up (frames
 * go out) after it, and down again after STOP.
 */
static void test_link_up_follows_start_stop(void **state)
{
	struct fx *x = *state;
	struct cframe f = cf_make(0x2a1, 0, 3, 9);

	assert_false(is_up(TIF));
	vd_start(&x->d[0], TIF, TIF, "--link-up", NULL);
	x->peer = vd_peer_open(TIF);
	x->c = vd_guest_open_only(&x->d[0], VD_ALL_CAN);
	assert_false(is_up(TIF));

	assert_int_equal(gdrv_start(x->c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	assert_true(is_up(TIF));
	assert_int_equal(gdrv_tx_sync(x->c, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(x->peer, &f);

	assert_int_equal(gdrv_stop(x->c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	assert_false(is_up(TIF));
	gdrv_close(x->c);
	x->c = NULL;
	vd_stop(&x->d[0]);
}

/*
 * --quiet keeps the informational lines out of the log (a verbose run has
 * them) while the daemon works as ever; --tx-ack-timeout is accepted.
 */
static void test_quiet(void **state)
{
	struct fx *x = *state;
	const char *args[] = {"--socket-path", x->d[1].sock, "--can-in", TIF,
			      "--can-out",     TIF,	     "-q",	 "--tx-ack-timeout",
			      "2000",	       NULL};

	vd_link_set(TIF, true);
	vd_start(&x->d[0], TIF, TIF, NULL);
	vd_stop(&x->d[0]);
	assert_true(vd_log_has(&x->d[0], "ready:"));
	assert_true(vd_log_has(&x->d[0], "listening on"));

	vd_spawn(&x->d[1], args);
	for (uint64_t end = vd_now_ms() + VD_WAIT_MS; access(x->d[1].sock, F_OK) != 0;) {
		if (!vd_running(&x->d[1]) || vd_now_ms() >= end) {
			vd_print_log(&x->d[1]);
			fail_msg("the quiet daemon did not come up");
		}
		vd_sleep_ms(5);
	}
	x->peer = vd_peer_open(TIF);
	x->c = vd_guest_open(&x->d[1], VD_ALL_CAN);
	vd_guest_marker_through(x->c, x->peer);
	gdrv_close(x->c);
	x->c = NULL;
	vd_stop(&x->d[1]);
	assert_false(vd_log_has(&x->d[1], "ready:"));
	assert_false(vd_log_has(&x->d[1], "listening on"));
	assert_false(vd_log_has(&x->d[1], "connected"));
}

/*
 * A second daemon on the socket path the first one listens on exits 1 and
 * says why; the first one keeps its socket and serves on.
 */
static void test_socket_in_use(void **state)
{
	struct fx *x = *state;
	const char *args[] = {"--socket-path", x->d[0].sock, "--can-in", TIF,
			      "--can-out",     TIF,	     NULL};

	vd_link_set(TIF, true);
	vd_start(&x->d[0], TIF, TIF, NULL);
	assert_int_equal(vd_run_to_exit(&x->d[1], args), 1);
	if (!vd_log_has(&x->d[1], "another process is listening on it")) {
		vd_print_log(&x->d[1]);
		fail_msg("the second daemon did not say why it stopped");
	}
	x->peer = vd_peer_open(TIF);
	x->c = vd_guest_open(&x->d[0], VD_ALL_CAN);
	vd_guest_marker_through(x->c, x->peer);
	gdrv_close(x->c);
	x->c = NULL;
	vd_stop(&x->d[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fd_and_activation_one_socket),
	    cmocka_unit_test(test_path_two_spellings),
	    cmocka_unit_test_setup_teardown(test_link_up_follows_start_stop, opts_setup,
					    opts_teardown),
	    cmocka_unit_test_setup_teardown(test_quiet, opts_setup, opts_teardown),
	    cmocka_unit_test_setup_teardown(test_socket_in_use, opts_setup, opts_teardown),
	};

	vd_skip_without_vcan();
	vlog_set_level(VLOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
