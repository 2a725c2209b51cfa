/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * --bitrate on real vcan (VM rig): the daemon says it paces (vcan has no
 * bit timing), and a guest that sends as fast as it can takes at least as
 * long as the bus would need for its frames (less the booking window).
 * Only a lower bound: a slow VM may take longer, never shorter.
 */
#define _GNU_SOURCE
#include "test_vm_daemon.h"

#include "can_port.h"
#include "cbits.h"
#include "vcd.h"

static void test_paced_no_faster_than_the_bus(void **state)
{
	enum { N = 60 };
	struct cframe f = cf_make(0x123, 0, 8, 0x11);
	/* The last frame may leave as soon as the N - 1 before it had their time. */
	uint64_t bus_ns = (N - 1) * cbits_frame_ns(&f, 125000, 0), t0, t1;
	struct fecan *c;
	struct vd d;
	int peer;

	(void)state;
	skip_without_vcan();
	vd_init(&d);
	vd_start(&d, "vcan0", "vcan0", "--bitrate=125k", NULL);
	assert_true(vd_log_has(&d, "paced by the daemon"));
	peer = peer_open("vcan0");
	c = guest_open(&d, NO_LATE_ACK);
	t0 = now_ms();
	for (unsigned int i = 0; i < N; i++) {
		while (fecan_tx(c, &f) < 0) {
			uint8_t res;
			int tok;

			assert_int_equal(fecan_tx_wait(c, WAIT_MS, &tok, &res), 1);
		}
	}
	for (unsigned int i = 0; i < N; i++)
		assert_bus_frame(peer, &f);
	t1 = now_ms();
	/* N frames of about 0.93 ms each: at least (N - 1) * 0.93 ms less the window. */
	if ((t1 - t0) * 1000000u + VCD_PACE_AHEAD_NS < bus_ns)
		fail_msg("%u frames on the bus in %llu ms; a 125 kbit/s bus needs %llu ms", N,
			 (unsigned long long)(t1 - t0), (unsigned long long)(bus_ns / 1000000u));
	fecan_close(c);
	peer_close(&peer);
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
	skip_without_vcan();
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
	skip_without_vcan();
	vd_init(&d);
	assert_int_equal(vd_run_to_exit(&d, args), 2);
	assert_true(vd_log_has(&d, "--bitrate: '2M' is not a bit rate"));
	vd_cleanup(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paced_no_faster_than_the_bus),
	    cmocka_unit_test(test_bad_bitrate),
	    cmocka_unit_test(test_data_bitrate_netlink),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
