/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * --bitrate on real vcan (VM rig): the daemon says it paces (vcan has no
 * bit timing), and a guest that sends as fast as it can takes at least as
 * long as the bus would need for its frames (less the booking window).
 * Only a lower bound: a slow VM may take longer, never shorter. Pacing
 * across STOP/START and the echo deadline of paced frames.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>

#include <cmocka.h>

#include "vd.h"

#include "can_port.h"
#include "cbits.h"
#include "device.h"

static void test_paced_no_faster_than_the_bus(void **state)
{
	enum { N = 60 };
	struct cframe f = cf_make(0x123, 0, 8, 0x11);
	/* The last frame may leave as soon as the N - 1 before it had their time. */
	uint64_t bus_ns = (N - 1) * cbits_frame_ns(&f, 125000, 0), t0, t1;
	struct gdrv *c;
	struct vd d;
	int peer;

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	vd_start(&d, "vcan0", "vcan0", "--bitrate=125k", NULL);
	assert_true(vd_log_has(&d, "paced by the daemon"));
	peer = vd_peer_open("vcan0");
	c = vd_guest_open(&d, VD_NO_LATE_ACK);
	t0 = vd_now_ms();
	for (unsigned int i = 0; i < N; i++) {
		while (gdrv_tx(c, &f) < 0) {
			uint8_t res;
			int tok;

			assert_int_equal(gdrv_tx_wait(c, VD_WAIT_MS, &tok, &res), 1);
		}
	}
	for (unsigned int i = 0; i < N; i++)
		vd_assert_bus_frame(peer, &f);
	t1 = vd_now_ms();
	/* N frames of about 0.93 ms each: at least (N - 1) * 0.93 ms less the window. */
	if ((t1 - t0) * 1000000u + DEVICE_PACE_AHEAD_NS < bus_ns)
		fail_msg("%u frames on the bus in %llu ms; a 125 kbit/s bus needs %llu ms", N,
			 (unsigned long long)(t1 - t0), (unsigned long long)(bus_ns / 1000000u));
	gdrv_close(c);
	vd_peer_close(&peer);
	vd_stop(&d);
	vd_cleanup(&d);
}

/*
 * STOP while frames wait for bus time (--bitrate=10k, EVENT_IDX as the
 * client negotiates by default): 6 frames of about 13 ms each queued with
 * one kick, STOP at once. All 6 complete, those on the bus OK and the rest
 * NOT_OK as stopped; after START a new frame completes OK and is the next
 * frame on the bus: nothing queued before STOP goes out after it. Main
 * left 3 of the 6 uncompleted and the new frame stalled (no kick asked).
 */
static void paced_stop_start(uint64_t features)
{
	enum { N = 6 };
	struct cframe f[N], n = cf_make(0x200, 0, 8, 0x55);
	bool done[N] = {false};
	unsigned int nok = 0, seen = 0;
	struct canfd_frame cf;
	struct vd_stats s;
	struct gdrv *c;
	struct vd d;
	int peer;

	vd_init(&d);
	vd_start(&d, "vcan0", "vcan0", "--bitrate=10k", NULL);
	peer = vd_peer_open("vcan0");
	c = vd_guest_open(&d, features);
	assert_true(fe_ring_event_idx(gdrv_fe(c), VIRTIO_CAN_QUEUE_TX));
	for (unsigned int i = 0; i < N; i++)
		f[i] = cf_make(0x100 + i, 0, 8, (uint8_t)(0x10 * i));
	assert_int_equal(gdrv_tx_many(c, f, N), N);
	assert_int_equal(gdrv_stop(c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	for (unsigned int i = 0; i < N; i++) {
		uint8_t res;
		int tok;

		if (gdrv_tx_wait(c, VD_WAIT_MS, &tok, &res) != 1) {
			vd_print_log(&d);
			fail_msg("%u of %u TX requests never completed after STOP", N - i, N);
		}
		/* A fresh client hands out slots 0, 1, ... in order. */
		assert_true(tok >= 0 && tok < N && !done[tok]);
		done[tok] = true;
		nok += res == VIRTIO_CAN_RESULT_OK;
	}
	assert_int_equal(gdrv_tx_pending(c), 0);
	vd_stats(&d, &s);
	assert_int_equal(s.tx_ok, nok);
	assert_int_equal(s.tx_stopped, N - nok);
	print_message("STOP: %u of %u completed OK, %u NOT_OK (stopped)\n", nok, N, N - nok);
	if (nok == N)
		fail_msg("all %u frames were on the bus before STOP: nothing waited", N);
	/* What reached the bus before START: frames of the burst, in order. */
	while (vd_peer_recv(peer, &cf, 300) > 0) {
		while (seen < N && cf.can_id != f[seen].id)
			seen++;
		if (seen == N)
			fail_msg("frame %#x on the bus is none of the burst's", cf.can_id);
		seen++;
	}

	assert_int_equal(gdrv_start(c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	if (gdrv_tx_sync(c, &n, VD_WAIT_MS) != VIRTIO_CAN_RESULT_OK) {
		vd_print_log(&d);
		fail_msg("the first frame after START did not complete OK");
	}
	vd_assert_bus_frame(peer, &n);
	vd_sleep_ms(200);
	vd_assert_bus_quiet(peer);
	vd_stats(&d, &s);
	assert_int_equal(s.tx_ok, nok + 1);
	gdrv_close(c);
	vd_peer_close(&peer);
	vd_stop(&d);
	vd_cleanup(&d);
}

static void test_paced_stop_start(void **state)
{
	(void)state;
	vd_skip_without_vcan();
	paced_stop_start(VD_NO_LATE_ACK);
}

static void test_paced_stop_start_late_ack(void **state)
{
	(void)state;
	vd_skip_without_vcan();
	paced_stop_start(VD_ALL_CAN);
}

/*
 * --bitrate=20k --tx-ack-timeout=10 with LATE_TX_ACK: a frame is handed to
 * vcan up to 8 ms plus its own 5.5 ms before its slot ends, and vcan
 * echoes it at once. A burst of 10 completes OK, all of it on the bus;
 * main reported 2 to 8 of them as "ack timeout".
 */
static void test_paced_ack_deadline(void **state)
{
	enum { N = 10 };
	struct cframe f[N];
	struct vd_stats s;
	struct gdrv *c;
	struct vd d;
	int peer;

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	vd_start(&d, "vcan0", "vcan0", "--bitrate=20k", "--tx-ack-timeout=10", NULL);
	peer = vd_peer_open("vcan0");
	c = vd_guest_open(&d, VD_ALL_CAN);
	assert_true(gdrv_has(c, VIRTIO_CAN_F_LATE_TX_ACK));
	for (unsigned int i = 0; i < N; i++)
		f[i] = cf_make(0x100 + i, 0, 8, (uint8_t)i);
	assert_int_equal(gdrv_tx_many(c, f, N), N);
	for (unsigned int i = 0; i < N; i++) {
		uint8_t res;
		int tok;

		assert_int_equal(gdrv_tx_wait(c, VD_WAIT_MS, &tok, &res), 1);
		if (res != VIRTIO_CAN_RESULT_OK) {
			vd_print_log(&d);
			fail_msg("frame %#x completed NOT_OK", f[tok].id);
		}
	}
	for (unsigned int i = 0; i < N; i++)
		vd_assert_bus_frame(peer, &f[i]);
	vd_stats(&d, &s);
	print_message("burst: ok %llu, ack timeout %llu\n", s.tx_ok, s.tx_timeout);
	assert_int_equal(s.tx_ok, N);
	assert_int_equal(s.tx_timeout, 0);
	gdrv_close(c);
	vd_peer_close(&peer);
	vd_stop(&d);
	vd_cleanup(&d);
}

/*
 * The data bit rate goes by rtnetlink: the request reaches the kernel and
 * its answer comes back; vcan has no bit timing and says so.
 */
static void test_data_bitrate_netlink(void **state)
{
	int ret;

	(void)state;
	vd_skip_without_vcan();
	ret = can_port_set_data_bitrate("vcan0", 2000000);
	if (ret != -EOPNOTSUPP && ret != -EINVAL)
		fail_msg("vcan0: %d (%s), want the kernel's refusal", ret, strerror(-ret));
	assert_int_equal(can_port_set_data_bitrate("nosuchcan7", 2000000), -ENODEV);
}

/* A bad rate exits 2 naming it. */
static void test_bad_bitrate(void **state)
{
	const char *args[] = {"-s",    "/tmp/vdc-pace.sock", "-i", "vcan0", "-o",
			      "vcan0", "--bitrate=2M",	     NULL};
	struct vd d;

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	assert_int_equal(vd_run_to_exit(&d, args), 2);
	assert_true(vd_log_has(&d, "--bitrate: '2M' is not a bit rate"));
	vd_cleanup(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paced_no_faster_than_the_bus),
	    cmocka_unit_test(test_paced_stop_start),
	    cmocka_unit_test(test_paced_stop_start_late_ack),
	    cmocka_unit_test(test_paced_ack_deadline),
	    cmocka_unit_test(test_bad_bitrate),
	    cmocka_unit_test(test_data_bitrate_netlink),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
