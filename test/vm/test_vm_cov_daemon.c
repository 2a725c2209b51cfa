/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The real daemon's options and start-up paths that the other end-to-end
 * tests leave out (found with scripts/coverage.sh): --link-up bringing the
 * out interface up on START and down on STOP, --quiet, --tx-ack-timeout,
 * and a second daemon refused a socket path the first one serves.
 * Exits 77 without CAN (run in scripts/vm-test.sh).
 */
#define _GNU_SOURCE /* close_range, in the shared helpers */
#include "test_vm_daemon.h"

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
	(void)sh("ip link del dev " TIF " 2>/dev/null");
	if (sh("ip link add dev " TIF " type vcan && ip link set dev " TIF " mtu 72") != 0)
		return -1;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	if (x->c)
		gdrv_close(x->c);
	peer_close(&x->peer);
	vd_cleanup(&x->d[0]);
	vd_cleanup(&x->d[1]);
	(void)sh("ip link del dev " TIF " 2>/dev/null");
	free(x);
	return 0;
}

static bool is_up(const char *ifname)
{
	char path[96], buf[32];

	snprintf(path, sizeof(path), "/sys/class/net/%s/flags", ifname);
	assert_true(read_file(path, buf, sizeof(buf)) > 0);
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
	x->peer = peer_open(TIF);
	x->c = guest_open_only(&x->d[0], ALL_CAN);
	assert_false(is_up(TIF));

	assert_int_equal(gdrv_start(x->c, WAIT_MS), VIRTIO_CAN_RESULT_OK);
	assert_true(is_up(TIF));
	assert_int_equal(gdrv_tx_sync(x->c, &f, WAIT_MS), VIRTIO_CAN_RESULT_OK);
	assert_bus_frame(x->peer, &f);

	assert_int_equal(gdrv_stop(x->c, WAIT_MS), VIRTIO_CAN_RESULT_OK);
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

	link_set(TIF, true);
	vd_start(&x->d[0], TIF, TIF, NULL);
	vd_stop(&x->d[0]);
	assert_true(vd_log_has(&x->d[0], "ready:"));
	assert_true(vd_log_has(&x->d[0], "listening on"));

	vd_spawn(&x->d[1], args);
	for (uint64_t end = now_ms() + WAIT_MS; access(x->d[1].sock, F_OK) != 0;) {
		if (!vd_running(&x->d[1]) || now_ms() >= end) {
			vd_print_log(&x->d[1]);
			fail_msg("the quiet daemon did not come up");
		}
		sleep_ms(5);
	}
	x->peer = peer_open(TIF);
	x->c = guest_open(&x->d[1], ALL_CAN);
	guest_marker_through(x->c, x->peer);
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

	link_set(TIF, true);
	vd_start(&x->d[0], TIF, TIF, NULL);
	assert_int_equal(vd_run_to_exit(&x->d[1], args), 1);
	if (!vd_log_has(&x->d[1], "another process is listening on it")) {
		vd_print_log(&x->d[1]);
		fail_msg("the second daemon did not say why it stopped");
	}
	x->peer = peer_open(TIF);
	x->c = guest_open(&x->d[0], ALL_CAN);
	guest_marker_through(x->c, x->peer);
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

	skip_without_vcan();
	vlog_set_level(VLOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
