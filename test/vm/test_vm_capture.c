/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * --capture on real vcan (VM rig), checked with the real readers: known
 * traffic both ways (sent, denied, delivered, and frames from the bus while
 * the controller is stopped), then tshark must show exactly those frames,
 * ids, data, directions, outcomes and order; and canplayer replaying the
 * candump log onto vcan must put exactly the frames that were on the bus
 * back on it.
 */
#define _GNU_SOURCE
#include "test_vm_daemon.h"

static void skip_without(const char *tool)
{
	if (sh("command -v %s >/dev/null 2>&1", tool) != 0) {
		printf("SKIPPED: %s not installed\n", tool);
		skip();
	}
}

/* The traffic of both tests; returns the frames that were on the bus. */
static unsigned int traffic(struct vd *d, int peer, struct cframe *bus)
{
	struct cframe tx1 = cf_make(0x123, 0, 3, 1), denied = cf_make(0x300, 0, 2, 2);
	struct cframe rx1 = cf_make(0x124, 0, 4, 3), tx2 = cf_make(0x18daf1aa, CFRAME_EXT, 8, 4);
	struct cframe rx2 = cf_make(0x125, CFRAME_FD | CFRAME_BRS, 12, 5), got;
	struct fecan *c = guest_open(d, NO_LATE_ACK);
	unsigned int n = 0;

	assert_int_equal(fecan_tx_sync(c, &tx1, WAIT_MS), VIRTIO_CAN_RESULT_OK);
	assert_bus_frame(peer, &tx1);
	bus[n++] = tx1;
	assert_int_equal(fecan_tx_sync(c, &denied, WAIT_MS), VIRTIO_CAN_RESULT_NOT_OK);
	peer_send(peer, &rx1);
	guest_rx(c, &got);
	assert_guest_frame(&got, &rx1);
	bus[n++] = rx1;
	assert_int_equal(fecan_tx_sync(c, &tx2, WAIT_MS), VIRTIO_CAN_RESULT_OK);
	assert_bus_frame(peer, &tx2);
	bus[n++] = tx2;
	peer_send(peer, &rx2);
	guest_rx(c, &got);
	assert_guest_frame(&got, &rx2);
	bus[n++] = rx2;
	fecan_close(c);
	return n;
}

static void test_capture_pcapng_tshark(void **state)
{
	/* cf_make's data: seed + 7 * i. */
	const char *want = "291\t0\t01080f\t0x00000002\tsent\n"
			   "768\t0\t0209\t0x00000002\tdenied\n"
			   "292\t0\t030a1118\t0x00000001\tdelivered\n"
			   "417001898\t1\t040b121920272e35\t0x00000002\tsent\n"
			   "293\t0\t050c131a21282f363d444b52\t0x00000001\tdelivered\n";
	char cap[160], arg[200], out[160], cmd[512];
	static char got[4096];
	struct cframe bus[8];
	struct vd d;
	int peer;

	(void)state;
	skip_without_vcan();
	skip_without("tshark");
	vd_init(&d);
	snprintf(cap, sizeof(cap), "%s/can.pcapng", d.dir);
	snprintf(arg, sizeof(arg), "--capture=%s", cap);
	vd_start(&d, "vcan0", "vcan0", arg, "--tx-allow=100:700,18DAF1AA:1FFFFFFF", NULL);
	peer = peer_open("vcan0");
	assert_int_equal(traffic(&d, peer, bus), 4);
	vd_stop(&d);
	assert_true(vd_log_has(&d, "capture: 5 records written, 0 lost"));
	snprintf(out, sizeof(out), "%s/tshark.txt", d.dir);
	snprintf(cmd, sizeof(cmd),
		 "tshark -r %s -T fields -e can.id -e can.flags.xtd -e data.data "
		 "-e frame.packet_flags_direction -e frame.comment >%s 2>/dev/null",
		 cap, out);
	assert_int_equal(sh("%s", cmd), 0);
	read_file(out, got, sizeof(got));
	if (strcmp(got, want) != 0)
		fail_msg("tshark read:\n%s\nwant:\n%s", got, want);
	peer_close(&peer);
	unlink(out);
	unlink(cap);
	vd_cleanup(&d);
}

static void test_capture_log_canplayer(void **state)
{
	char cap[160], arg[200];
	struct cframe bus[8];
	struct vd d;
	unsigned int n;
	int peer;

	(void)state;
	skip_without_vcan();
	skip_without("canplayer");
	vd_init(&d);
	snprintf(cap, sizeof(cap), "%s/can.log", d.dir);
	snprintf(arg, sizeof(arg), "--capture=%s", cap);
	vd_start(&d, "vcan0", "vcan0", arg, "--tx-allow=100:700,18DAF1AA:1FFFFFFF", NULL);
	peer = peer_open("vcan0");
	n = traffic(&d, peer, bus);
	vd_stop(&d);
	/* Replayed onto vcan0 (no daemon now): exactly the frames that were on the bus. */
	assert_int_equal(sh("canplayer -t -I %s", cap), 0);
	for (unsigned int i = 0; i < n; i++)
		assert_bus_frame(peer, &bus[i]);
	assert_bus_quiet(peer);
	peer_close(&peer);
	unlink(cap);
	vd_cleanup(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_capture_pcapng_tshark),
	    cmocka_unit_test(test_capture_log_canplayer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
