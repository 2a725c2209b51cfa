/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The real daemon's options and start-up paths that the other end-to-end
 * tests leave out (found with scripts/coverage.sh): --link-up bringing the
 * out interface up on START and down on STOP, --quiet, --tx-ack-timeout,
 * and a second daemon refused a socket path the first one serves.
 * Exits 77 without CAN (run in scripts/vm-test.sh).
 */
#define _GNU_SOURCE /* close_range, in the shared helpers */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/can.h>
#include <linux/can/error.h>
#include <linux/can/raw.h>

#include <cmocka.h>

#include "vd.h"

#include "vhost-user/vlog.h"

#define TIF "vcovd0"

struct fx {
	struct vd d[2];
	struct gdrv *c;
	int peer;
};

static int setup(void **state)
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

static int teardown(void **state)
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
	    cmocka_unit_test_setup_teardown(test_link_up_follows_start_stop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quiet, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_socket_in_use, setup, teardown),
	};

	vd_skip_without_vcan();
	vlog_set_level(VLOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
