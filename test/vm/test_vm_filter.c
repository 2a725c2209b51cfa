/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * --tx-allow and --rx-filter on real vcan (VM rig): the daemon binary, a
 * guest driver and raw peers. Denied frames never reach the bus and are
 * counted; filtered frames never reach the guest, with and without
 * LATE_TX_ACK (whose own-frame echoes must still pass); error frames are
 * handled as without a filter.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdio.h>
#include <sys/stat.h>

#include <linux/can/error.h>

#include <cmocka.h>

#include "vd.h"

/* The "denied N" of the last counters block. */
static unsigned long long denied(struct vd *d)
{
	static char buf[1 << 16];
	unsigned long long n = ~0ull;
	const char *p;

	vd_read_file(d->log, buf, sizeof(buf));
	p = vd_last_str(buf, ", denied ");
	assert_non_null(p);
	assert_int_equal(sscanf(p, ", denied %llu", &n), 1);
	return n;
}

static void test_tx_allow(void **state)
{
	struct vd_fixture *t = *state;
	struct cframe ok1 = cf_make(0x123, 0, 2, 1), no1 = cf_make(0x223, 0, 2, 2);
	struct cframe ok2 = cf_make(0x18daf1aa, CFRAME_EXT, 8, 3);
	struct cframe no2 = cf_make(0x18daf2aa, CFRAME_EXT, 8, 4);
	struct vd_stats s;

	vd_skip_without_vcan();
	vd_start(&t->d, "vcan0", "vcan0", "--tx-allow=100:700,18DAF100:9FFFFF00,7ff:7ff", NULL);
	t->peer = vd_peer_open("vcan0");
	t->c = vd_guest_open(&t->d, VD_NO_LATE_ACK);
	assert_int_equal(gdrv_tx_sync(t->c, &ok1, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_tx_sync(t->c, &no1, VD_WAIT_MS), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(gdrv_tx_sync(t->c, &ok2, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_tx_sync(t->c, &no2, VD_WAIT_MS), VIRTIO_CAN_RESULT_NOT_OK);
	/* Exactly the allowed ones, in order, then the marker. */
	vd_assert_bus_frame(t->peer, &ok1);
	vd_assert_bus_frame(t->peer, &ok2);
	vd_guest_marker_through(t->c, t->peer);
	vd_assert_bus_quiet(t->peer);
	vd_stats(&t->d, &s);
	assert_int_equal(s.tx_ok, 3);
	assert_int_equal(s.tx_rejected, 0);
	assert_int_equal(denied(&t->d), 2);
	assert_true(vd_log_has(&t->d, "denied (not in --tx-allow)"));
	vd_stop(&t->d);
	t->passed = true;
}

/* Frames outside the rx filter never reach the guest; the kernel drops them. */
static void rx_filtered(struct vd_fixture *t, bool late_ack)
{
	struct cframe in1 = cf_make(0x123, 0, 2, 1), out1 = cf_make(0x124, 0, 2, 2);
	struct cframe in2 = cf_make(0x7e8, 0, 8, 3), out2 = cf_make(0x7f0, 0, 8, 4);
	struct cframe mine = cf_make(0x555, 0, 1, 5), got;
	struct vd_stats s;

	vd_start(&t->d, "vcan0", "vcan0", "--rx-filter=123:7ff,7e8:7f8,7ff:7ff", NULL);
	t->peer = vd_peer_open("vcan0");
	t->c = vd_guest_open(&t->d, late_ack ? VD_ALL_CAN : VD_NO_LATE_ACK);
	assert_int_equal(gdrv_has(t->c, VIRTIO_CAN_F_LATE_TX_ACK), late_ack);
	/* The guest's own frame is outside the filter: with LATE_TX_ACK its echo must pass. */
	assert_int_equal(gdrv_tx_sync(t->c, &mine, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(t->peer, &mine);
	vd_peer_send(t->peer, &out1);
	vd_peer_send(t->peer, &in1);
	vd_peer_send(t->peer, &out2);
	vd_peer_send(t->peer, &in2);
	vd_guest_rx(t->c, &got);
	vd_assert_guest_frame(&got, &in1);
	vd_guest_rx(t->c, &got);
	vd_assert_guest_frame(&got, &in2);
	vd_bus_marker_through(t->c, t->peer);
	vd_stats(&t->d, &s);
	assert_int_equal(s.rx_delivered, 3);
	assert_int_equal(vd_rx_drops(&s), 0); /* filtered is not dropped */
	assert_int_equal(s.tx_ok, 1);
	assert_int_equal(s.tx_timeout, 0);
	/* Error frames are handled as without a filter. */
	vd_peer_send_error(t->peer, CAN_ERR_BUSOFF);
	{
		uint64_t end = vd_now_ms() + VD_WAIT_MS;

		while (!(gdrv_status(t->c) & VIRTIO_CAN_S_CTRL_BUSOFF)) {
			if (vd_now_ms() > end)
				fail_msg("bus-off not seen through the rx filter");
			vd_sleep_ms(10);
		}
	}
	vd_stop(&t->d);
}

static void test_rx_filter(void **state)
{
	struct vd_fixture *t = *state;

	vd_skip_without_vcan();
	rx_filtered(t, false);
	t->passed = true;
}

static void test_rx_filter_late_ack(void **state)
{
	struct vd_fixture *t = *state;

	vd_skip_without_vcan();
	rx_filtered(t, true);
	t->passed = true;
}

/* A bad list exits 2 naming the bad part, before anything listens. */
static void test_bad_filter(void **state)
{
	struct vd_fixture *t = *state;
	const char *args[] = {
	    "-s", t->d.sock, "-i", "vcan0", "-o", "vcan0", "--rx-filter=123:7ff,12g:1", NULL};
	struct stat st;

	vd_skip_without_vcan();
	assert_int_equal(vd_run_to_exit(&t->d, args), 2);
	assert_true(vd_log_has(&t->d, "--rx-filter: '12g:1'"));
	assert_int_equal(stat(t->d.sock, &st), -1);
	t->passed = true;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, vd_fixture_setup, vd_fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_tx_allow),
	    T(test_rx_filter),
	    T(test_rx_filter_late_ack),
	    T(test_bad_filter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
