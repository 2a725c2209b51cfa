/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * End to end on real CAN (VM rig): the daemon binary, a guest driver over
 * its unix socket with memfd memory, and raw sockets or can-utils on vcan
 * as independent peers. Frames both ways, split interfaces, rejected
 * frames, CAN FD on a classic interface, LATE_TX_ACK, bus-off, link down.
 *
 * "Nothing else arrived" is never checked by waiting: a marker frame is
 * sent after the frames under test, and it must be the next one seen.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <linux/can/error.h>

#include <cmocka.h>

#include "vd.h"

struct t {
	struct vd d;
	struct gdrv *c;
	int peer[3];
	bool down[3]; /* vcanN taken down by the test: bring it back */
	bool passed;
};

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	vd_init(&t->d);
	for (unsigned int i = 0; i < 3; i++)
		t->peer[i] = -1;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	gdrv_close(t->c);
	for (unsigned int i = 0; i < 3; i++) {
		char name[8];

		vd_peer_close(&t->peer[i]);
		snprintf(name, sizeof(name), "vcan%u", i);
		if (t->down[i] && vd_sh("ip link set dev %s up", name) != 0)
			printf("could not bring %s back up\n", name);
	}
	if (!t->passed || getenv("VDC_E2E_LOG"))
		vd_print_log(&t->d);
	vd_cleanup(&t->d);
	free(t);
	return 0;
}

/* A TX request with a hand-made header (little-endian on the wire). */
static uint8_t tx_raw_result(struct gdrv *c, uint16_t msg_type, uint32_t flags, uint32_t id,
			     uint16_t len)
{
	struct virtio_can_hdr h = {0};
	uint8_t data[VIRTIO_CAN_MAX_FD_LEN] = {0};
	uint8_t result = 0xee;
	int token, done;

	h.msg_type = htole16(msg_type);
	h.length = htole16(len);
	h.flags = htole32(flags);
	h.can_id = htole32(id);
	token = gdrv_tx_raw(c, &h, data, len > sizeof(data) ? sizeof(data) : len);
	assert_true(token >= 0);
	assert_int_equal(gdrv_tx_wait(c, VD_WAIT_MS, &done, &result), 1);
	assert_int_equal(done, token);
	return result;
}

/* ---- guest -> bus ------------------------------------------------------- */

static void test_guest_to_bus(void **state)
{
	struct t *t = *state;
	struct cframe set[VD_N_SET];
	struct vd_stats s;

	vd_start(&t->d, "vcan0", "vcan0", NULL);
	t->peer[0] = vd_peer_open("vcan0");
	t->c = vd_guest_open(&t->d, VD_NO_LATE_ACK);
	assert_true(gdrv_has(t->c, VIRTIO_CAN_F_CAN_CLASSIC));
	assert_true(gdrv_has(t->c, VIRTIO_CAN_F_CAN_FD));
	assert_true(gdrv_has(t->c, VIRTIO_CAN_F_RTR_FRAMES));
	assert_false(gdrv_has(t->c, VIRTIO_CAN_F_LATE_TX_ACK));

	vd_frame_set(set);
	for (unsigned int i = 0; i < VD_N_SET; i++)
		assert_int_equal(gdrv_tx_sync(t->c, &set[i], VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	/* Each exactly once, in order, then the marker and nothing else. */
	for (unsigned int i = 0; i < VD_N_SET; i++)
		vd_assert_bus_frame(t->peer[0], &set[i]);
	vd_guest_marker_through(t->c, t->peer[0]);
	vd_assert_bus_quiet(t->peer[0]);

	vd_stats(&t->d, &s);
	assert_int_equal(s.tx_ok, VD_N_SET + 1);
	assert_int_equal(s.tx_rejected + s.tx_failed + s.tx_timeout + s.tx_stopped, 0);
	vd_stop(&t->d);
	t->passed = true;
}

/* ---- bus -> guest ------------------------------------------------------- */

/* can-utils' cansend syntax for f. */
static void cansend_arg(const struct cframe *f, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, (f->flags & CFRAME_EXT) ? "%08X" : "%03X", f->id);

	if (f->flags & CFRAME_RTR) {
		snprintf(buf + n, cap - (size_t)n, "#R%u", f->len);
		return;
	}
	if (f->flags & CFRAME_FD)
		n += snprintf(buf + n, cap - (size_t)n, "##%X", (f->flags & CFRAME_BRS) ? 1 : 0);
	else
		n += snprintf(buf + n, cap - (size_t)n, "#");
	for (unsigned int i = 0; i < f->len; i++)
		n += snprintf(buf + n, cap - (size_t)n, "%02X", f->data[i]);
}

static void test_bus_to_guest(void **state)
{
	struct t *t = *state;
	struct cframe set[VD_N_SET], got;
	struct virtio_can_hdr h;
	uint32_t used = 0;
	struct vd_stats s;
	unsigned int expect = VD_N_SET + 1;
	char arg[200];

	vd_start(&t->d, "vcan0", "vcan0", NULL);
	t->peer[0] = vd_peer_open("vcan0");
	t->c = vd_guest_open(&t->d, VD_NO_LATE_ACK);
	vd_frame_set(set);
	set[4].flags |= CFRAME_BRS; /* one FD frame with BRS, one without */

	/* Through a raw socket. */
	for (unsigned int i = 0; i < VD_N_SET; i++)
		vd_peer_send(t->peer[0], &set[i]);
	for (unsigned int i = 0; i < VD_N_SET; i++) {
		vd_guest_rx(t->c, &got);
		vd_assert_guest_frame(&got, &set[i]);
		gdrv_rx_last(t->c, &h, &used);
		/* RTR too: the Linux driver drops used < 16 + length. */
		assert_int_equal(used, VIRTIO_CAN_HDR_SIZE + set[i].len);
		assert_int_equal(le16toh(h.msg_type), VIRTIO_CAN_RX);
	}
	vd_bus_marker_through(t->c, t->peer[0]);

	/* Through can-utils' cansend, an independent sender. */
	if (vd_sh("command -v cansend >/dev/null") != 0) {
		printf("cansend (can-utils) is not installed: that half is not run\n");
	} else {
		for (unsigned int i = 0; i < VD_N_SET; i++) {
			cansend_arg(&set[i], arg, sizeof(arg));
			assert_int_equal(vd_sh("cansend vcan0 %s", arg), 0);
		}
		for (unsigned int i = 0; i < VD_N_SET; i++) {
			vd_guest_rx(t->c, &got);
			vd_assert_guest_frame(&got, &set[i]);
		}
		vd_bus_marker_through(t->c, t->peer[0]);
		expect += VD_N_SET + 1;
	}

	vd_stats(&t->d, &s);
	assert_int_equal(s.rx_delivered, expect);
	assert_int_equal(s.rx_dropped_stopped + s.rx_dropped_type + s.rx_dropped_overflow +
			     s.rx_dropped_small,
			 0);
	vd_stop(&t->d);
	t->passed = true;
}

/* A guest without CAN FD: FD frames from the bus are not given to it. */
static void test_bus_fd_to_classic_guest(void **state)
{
	struct t *t = *state;
	struct cframe set[VD_N_SET], got;
	struct vd_stats s;

	vd_start(&t->d, "vcan0", "vcan0", NULL);
	t->peer[0] = vd_peer_open("vcan0");
	t->c = vd_guest_open(&t->d, VD_NO_LATE_ACK & ~(1ull << VIRTIO_CAN_F_CAN_FD));
	assert_false(gdrv_has(t->c, VIRTIO_CAN_F_CAN_FD));

	vd_frame_set(set);
	for (unsigned int i = 0; i < VD_N_SET; i++)
		vd_peer_send(t->peer[0], &set[i]);
	for (unsigned int i = 0; i < VD_N_SET; i++) {
		if (set[i].flags & CFRAME_FD)
			continue;
		vd_guest_rx(t->c, &got);
		vd_assert_guest_frame(&got, &set[i]);
	}
	vd_bus_marker_through(t->c, t->peer[0]);

	vd_stats(&t->d, &s);
	assert_int_equal(s.rx_dropped_type, 2);
	vd_stop(&t->d);
	t->passed = true;
}

/* ---- interfaces --------------------------------------------------------- */

/* --can-in vcan0, --can-out vcan1: each direction on its own interface. */
static void test_split_ifaces(void **state)
{
	struct t *t = *state;
	struct cframe set[VD_N_SET], got, other = cf_make(0x55, 0, 2, 0x99);
	struct vd_stats s;

	vd_start(&t->d, "vcan0", "vcan1", NULL);
	t->peer[0] = vd_peer_open("vcan0");
	t->peer[1] = vd_peer_open("vcan1");
	t->c = vd_guest_open(&t->d, VD_NO_LATE_ACK);
	assert_true(gdrv_has(t->c, VIRTIO_CAN_F_CAN_FD));
	vd_frame_set(set);

	/* Guest frames go out on vcan1 only. */
	for (unsigned int i = 0; i < VD_N_SET; i++)
		assert_int_equal(gdrv_tx_sync(t->c, &set[i], VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	for (unsigned int i = 0; i < VD_N_SET; i++)
		vd_assert_bus_frame(t->peer[1], &set[i]);
	vd_guest_marker_through(t->c, t->peer[1]);
	vd_assert_bus_quiet(t->peer[0]);

	/* vcan0's frames come in; vcan1's traffic does not. */
	vd_peer_send(t->peer[1], &other);
	for (unsigned int i = 0; i < VD_N_SET; i++)
		vd_peer_send(t->peer[0], &set[i]);
	for (unsigned int i = 0; i < VD_N_SET; i++) {
		vd_guest_rx(t->c, &got);
		vd_assert_guest_frame(&got, &set[i]);
	}
	/* A second round: a vcan1 frame wrongly read would be counted by now. */
	vd_bus_marker_through(t->c, t->peer[0]);
	vd_bus_marker_through(t->c, t->peer[0]);

	vd_stats(&t->d, &s);
	assert_int_equal(s.rx_delivered, VD_N_SET + 2);
	assert_int_equal(s.tx_ok, VD_N_SET + 1);
	vd_stop(&t->d);
	t->passed = true;
}

/* One interface both ways: the guest's own frames never come back to it. */
static void test_same_iface_no_own_frames(void **state)
{
	struct t *t = *state;
	const uint64_t variants[2] = {VD_NO_LATE_ACK, VD_ALL_CAN};
	struct cframe set[VD_N_SET];
	struct vd_stats s;

	vd_start(&t->d, "vcan0", "vcan0", NULL);
	t->peer[0] = vd_peer_open("vcan0");
	vd_frame_set(set);
	/* Without and with LATE_TX_ACK (the port then reads its own echoes). */
	for (unsigned int v = 0; v < 2; v++) {
		t->c = vd_guest_open(&t->d, variants[v]);
		assert_int_equal(gdrv_has(t->c, VIRTIO_CAN_F_LATE_TX_ACK), v == 1);
		for (unsigned int i = 0; i < VD_N_SET; i++)
			assert_int_equal(gdrv_tx_sync(t->c, &set[i], VD_WAIT_MS),
					 VIRTIO_CAN_RESULT_OK);
		for (unsigned int i = 0; i < VD_N_SET; i++)
			vd_assert_bus_frame(t->peer[0], &set[i]);
		vd_bus_marker_through(t->c, t->peer[0]);
		gdrv_close(t->c);
		t->c = NULL;
	}
	vd_stats(&t->d, &s);
	assert_int_equal(s.rx_delivered, 2);
	assert_int_equal(s.tx_ok, 2 * VD_N_SET);
	vd_stop(&t->d);
	t->passed = true;
}

/* ---- frames the device must refuse -------------------------------------- */

static void test_rejected_frames(void **state)
{
	struct t *t = *state;
	const uint32_t ext = VIRTIO_CAN_FLAGS_EXTENDED, fd = VIRTIO_CAN_FLAGS_FD;
	struct vd_stats s;

	vd_start(&t->d, "vcan0", "vcan0", NULL);
	t->peer[0] = vd_peer_open("vcan0");
	t->c = vd_guest_open(&t->d, VD_NO_LATE_ACK);

	/* Standard id above 11 bits, extended id above 29 bits. */
	assert_int_equal(tx_raw_result(t->c, VIRTIO_CAN_TX, 0, 0x800, 1), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(tx_raw_result(t->c, VIRTIO_CAN_TX, ext, 0x20000000, 1),
			 VIRTIO_CAN_RESULT_NOT_OK);
	/* Classic length 9; an FD length that is no DLC length; above 64. */
	assert_int_equal(tx_raw_result(t->c, VIRTIO_CAN_TX, 0, 0x100, 9), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(tx_raw_result(t->c, VIRTIO_CAN_TX, fd, 0x100, 13),
			 VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(tx_raw_result(t->c, VIRTIO_CAN_TX, fd, 0x100, 65),
			 VIRTIO_CAN_RESULT_NOT_OK);
	/* RTR on FD, an undefined flag, a wrong msg_type. */
	assert_int_equal(tx_raw_result(t->c, VIRTIO_CAN_TX, fd | VIRTIO_CAN_FLAGS_RTR, 0x100, 0),
			 VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(tx_raw_result(t->c, VIRTIO_CAN_TX, 0x1, 0x100, 1),
			 VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(tx_raw_result(t->c, VIRTIO_CAN_RX, 0, 0x100, 1), VIRTIO_CAN_RESULT_NOT_OK);

	/* None of them reached the bus: the marker is the first frame there. */
	vd_guest_marker_through(t->c, t->peer[0]);
	vd_assert_bus_quiet(t->peer[0]);
	vd_stats(&t->d, &s);
	assert_int_equal(s.tx_rejected, 8);
	assert_int_equal(s.tx_ok, 1);
	vd_stop(&t->d);
	t->passed = true;
}

/*
 * vcan2 has the classic MTU: CAN FD is not offered, FD requests are refused
 * and never sent, classic traffic works both ways. The same when only one
 * side is classic, and with --no-fd on an FD interface.
 */
static void test_fd_not_offered(void **state)
{
	struct t *t = *state;
	const char *cfg[3][3] = {
	    {"vcan2", "vcan2", NULL}, {"vcan0", "vcan2", NULL}, {"vcan0", "vcan0", "--no-fd"}};
	struct cframe classic = cf_make(0x2aa, 0, 8, 0x11), got;
	int out_peer;

	for (unsigned int k = 0; k < 3; k++) {
		if (k > 0) {
			vd_stop(&t->d);
			vd_cleanup(&t->d);
			vd_init(&t->d);
			gdrv_close(t->c);
			t->c = NULL;
			for (unsigned int i = 0; i < 3; i++)
				vd_peer_close(&t->peer[i]);
		}
		vd_start(&t->d, cfg[k][0], cfg[k][1], cfg[k][2], NULL);
		out_peer = vd_peer_open(cfg[k][1]);
		t->peer[1] = out_peer;
		t->peer[0] = vd_peer_open(cfg[k][0]);
		t->c = vd_guest_open(&t->d, VD_ALL_CAN);

		assert_false(fe_offered_features(gdrv_fe(t->c)) & (1ull << VIRTIO_CAN_F_CAN_FD));
		assert_false(gdrv_has(t->c, VIRTIO_CAN_F_CAN_FD));
		assert_true(gdrv_has(t->c, VIRTIO_CAN_F_CAN_CLASSIC));
		/* A guest that sends FD anyway is refused. */
		assert_int_equal(tx_raw_result(t->c, VIRTIO_CAN_TX, VIRTIO_CAN_FLAGS_FD, 0x100, 12),
				 VIRTIO_CAN_RESULT_NOT_OK);
		assert_int_equal(gdrv_tx_sync(t->c, &classic, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
		vd_assert_bus_frame(out_peer, &classic);
		vd_guest_marker_through(t->c, out_peer);
		vd_assert_bus_quiet(out_peer);

		vd_peer_send(t->peer[0], &classic);
		vd_guest_rx(t->c, &got);
		vd_assert_guest_frame(&got, &classic);
		vd_bus_marker_through(t->c, t->peer[0]);
		assert_true(vd_log_has(&t->d, "CAN FD not offered"));
	}
	vd_stop(&t->d);
	t->passed = true;
}

/* ---- LATE_TX_ACK -------------------------------------------------------- */

/*
 * With LATE_TX_ACK every request completes OK once the port saw the frame
 * come back from the bus (vcan echoes at once): a request whose echo never
 * matched would complete NOT_OK after --tx-ack-timeout (counted as "ack
 * timeout"). Same interface and split interfaces.
 */
static void test_late_tx_ack(void **state)
{
	struct t *t = *state;
	const char *out_if[2] = {"vcan0", "vcan1"};
	struct cframe set[VD_N_SET], other = cf_make(0x66, 0, 1, 0x5);
	enum { BURST = 200 };

	vd_frame_set(set);
	for (unsigned int k = 0; k < 2; k++) {
		struct vd_stats s;
		unsigned int sent = 0, done = 0;

		if (k > 0) {
			vd_stop(&t->d);
			vd_cleanup(&t->d);
			vd_init(&t->d);
			gdrv_close(t->c);
			t->c = NULL;
			for (unsigned int i = 0; i < 3; i++)
				vd_peer_close(&t->peer[i]);
		}
		vd_start(&t->d, "vcan0", out_if[k], NULL);
		t->peer[0] = vd_peer_open("vcan0");
		t->peer[1] = vd_peer_open(out_if[k]);
		t->c = vd_guest_open(&t->d, VD_ALL_CAN);
		assert_true(gdrv_has(t->c, VIRTIO_CAN_F_LATE_TX_ACK));

		for (unsigned int i = 0; i < VD_N_SET; i++)
			assert_int_equal(gdrv_tx_sync(t->c, &set[i], VD_WAIT_MS),
					 VIRTIO_CAN_RESULT_OK);
		for (unsigned int i = 0; i < VD_N_SET; i++)
			vd_assert_bus_frame(t->peer[1], &set[i]);

		/* A burst larger than the Txq holds: many requests in flight at once. */
		while (done < BURST) {
			int token, r;
			uint8_t result;

			if (sent < BURST) {
				struct cframe f =
				    cf_make(0x200 + (sent % 0x100), 0, 8, (uint8_t)sent);

				r = gdrv_tx(t->c, &f);
				if (r >= 0) {
					sent++;
					continue;
				}
				assert_int_equal(r, -ENOSPC);
			}
			assert_int_equal(gdrv_tx_wait(t->c, VD_WAIT_MS, &token, &result), 1);
			assert_int_equal(result, VIRTIO_CAN_RESULT_OK);
			done++;
		}
		for (unsigned int i = 0; i < BURST; i++) {
			struct cframe f = cf_make(0x200 + (i % 0x100), 0, 8, (uint8_t)i);

			vd_assert_bus_frame(t->peer[1], &f);
		}
		vd_guest_marker_through(t->c, t->peer[1]);

		/* Split: the port now reads every frame on out; still none for the guest. */
		if (k == 1)
			vd_peer_send(t->peer[1], &other);
		vd_bus_marker_through(t->c, t->peer[0]);
		vd_bus_marker_through(t->c, t->peer[0]);

		vd_stats(&t->d, &s);
		assert_int_equal(s.tx_ok, VD_N_SET + BURST + 1);
		assert_int_equal(s.tx_timeout + s.tx_failed + s.tx_stopped + s.tx_rejected, 0);
		assert_int_equal(s.rx_delivered, 2);
	}
	vd_stop(&t->d);
	t->passed = true;
}

/* ---- bus-off ------------------------------------------------------------ */

/*
 * Send markers from peer until the guest gets one (skipping other frames):
 * the daemon's socket then had room again and everything before the marker
 * has passed. A marker the kernel dropped on a full socket is sent again.
 */
static void drain_until_marker(struct gdrv *c, int peer)
{
	for (unsigned int tries = 0; tries < 100; tries++) {
		struct cframe got;

		vd_peer_send_marker(peer);
		while (gdrv_rx(c, &got, 300) == 1)
			if (vd_is_marker(&got))
				return;
	}
	fail_msg("the marker never reached the guest");
}

/*
 * Bus-off with TX requests pending. They must be pending when the error
 * frame comes, i.e. sent with LATE_TX_ACK and not yet confirmed; on vcan the
 * echo comes at once, so the test makes the daemon lose the echoes: while
 * it is stopped (SIGSTOP) a peer floods its socket full, the guest queues
 * K requests, and on SIGCONT it sends them while its socket has room for
 * at most one batch of echoes. The rest stay pending (--tx-ack-timeout is
 * long) until a bus-off error frame fails them.
 */
static void test_bus_off(void **state)
{
	struct t *t = *state;
	struct cframe before = cf_make(0x10, 0, 1, 1), during = cf_make(0x20, 0, 1, 2);
	struct cframe after = cf_make(0x30, 0, 1, 3), bus = cf_make(0x40, 0, 1, 4);
	struct cframe flood = cf_make(0x50, 0, 8, 5), got;
	struct canfd_frame cf;
	struct vd_stats s0, s;
	enum { K = 240, FLOOD = 5000 };
	unsigned int ok = 0, not_ok = 0;
	int err_peer;

	vd_start(&t->d, "vcan0", "vcan0", "--tx-ack-timeout=600000", NULL);
	t->peer[0] = vd_peer_open("vcan0");
	err_peer = t->peer[1] = vd_peer_open("vcan0"); /* never read: it sends */
	t->c = vd_guest_open(&t->d, VD_ALL_CAN);
	assert_true(gdrv_has(t->c, VIRTIO_CAN_F_LATE_TX_ACK));
	assert_int_equal(gdrv_status(t->c), 0);
	assert_int_equal(gdrv_tx_sync(t->c, &before, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(t->peer[0], &before);
	vd_stats(&t->d, &s0);

	assert_int_equal(kill(t->d.pid, SIGSTOP), 0);
	for (unsigned int i = 0; i < FLOOD; i++)
		vd_peer_send(t->peer[0], &flood);
	for (unsigned int i = 0; i < K; i++) {
		struct cframe f = cf_make(0x100 + i, 0, 2, (uint8_t)i);

		assert_true(gdrv_tx(t->c, &f) >= 0);
	}
	assert_int_equal(kill(t->d.pid, SIGCONT), 0);
	drain_until_marker(t->c, t->peer[0]);
	/* Everything before the marker was read: what is still pending waits for its echo. */
	vd_stats(&t->d, &s);
	assert_int_equal(s.busoff, 0);
	assert_true(s.tx_ok - s0.tx_ok < K);

	vd_peer_send_error(err_peer, CAN_ERR_BUSOFF);
	for (unsigned int i = 0; i < K; i++) {
		uint8_t result = 0xee;
		int token;

		assert_int_equal(gdrv_tx_wait(t->c, VD_WAIT_MS, &token, &result), 1);
		if (result == VIRTIO_CAN_RESULT_OK)
			ok++;
		else if (result == VIRTIO_CAN_RESULT_NOT_OK)
			not_ok++;
		else
			fail_msg("result byte %#x", result);
	}
	assert_int_equal(gdrv_wait_config_change(t->c, VD_WAIT_MS), 0);
	assert_int_equal(gdrv_status(t->c), VIRTIO_CAN_S_CTRL_BUSOFF);
	vd_stats(&t->d, &s);
	printf("%u requests confirmed before bus-off, %u failed at bus-off\n", ok, not_ok);
	assert_int_equal(s.busoff, 1);
	assert_true(not_ok > 0);
	assert_int_equal(s.tx_stopped - s0.tx_stopped, not_ok);
	assert_int_equal(s.tx_ok - s0.tx_ok, ok);
	assert_int_equal(s.tx_timeout, 0);

	/* Bus-off: TX refused and not sent, bus traffic not delivered. */
	assert_int_equal(gdrv_tx_sync(t->c, &during, VD_WAIT_MS), VIRTIO_CAN_RESULT_NOT_OK);
	vd_peer_send(err_peer, &bus);
	vd_stats(&t->d, &s);
	assert_int_equal(s.tx_rejected - s0.tx_rejected, 1);

	/* START recovers: status 0, TX and RX again. */
	assert_int_equal(gdrv_start(t->c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_status(t->c), 0);
	assert_int_equal(gdrv_tx_sync(t->c, &after, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	/* On the bus: the K frames (all were sent), the other peer's, never "during". */
	for (unsigned int seen = 0;; seen++) {
		size_t n = vd_peer_recv(t->peer[0], &cf, VD_WAIT_MS);

		assert_true(n > 0);
		assert_true(seen <= K + 1);
		assert_int_not_equal(cf.can_id, during.id);
		if (cf.can_id == after.id)
			break;
		assert_true(cf.can_id == bus.id || (cf.can_id >= 0x100 && cf.can_id < 0x100 + K));
	}
	/* Frames of the bus-off time were dropped, not kept for later. */
	vd_bus_marker_through(t->c, t->peer[0]);
	vd_peer_send(err_peer, &bus);
	vd_guest_rx(t->c, &got);
	vd_assert_guest_frame(&got, &bus);
	vd_stop(&t->d);
	t->passed = true;
}

/* ---- link down ---------------------------------------------------------- */

static void test_link_down(void **state)
{
	struct t *t = *state;
	struct cframe f = cf_make(0x77, 0, 4, 9), got;
	unsigned long long ticks;
	struct vd_stats s;

	vd_start(&t->d, "vcan0", "vcan0", NULL);
	t->peer[0] = vd_peer_open("vcan0");
	t->c = vd_guest_open(&t->d, VD_NO_LATE_ACK);
	assert_int_equal(gdrv_tx_sync(t->c, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(t->peer[0], &f);

	t->down[0] = true;
	vd_link_set("vcan0", false);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(gdrv_tx_sync(t->c, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_NOT_OK);
	/* The daemon lives on, its connection too, and it does not spin on the error. */
	ticks = vd_cpu_ticks(&t->d);
	vd_sleep_ms(1000);
	assert_true(vd_running(&t->d));
	assert_int_equal(gdrv_status(t->c), 0);
	assert_true(vd_cpu_ticks(&t->d) - ticks <= 10);
	vd_stats(&t->d, &s);
	assert_int_equal(s.tx_failed, 3);

	vd_link_set("vcan0", true);
	t->down[0] = false;
	assert_int_equal(gdrv_tx_sync(t->c, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(t->peer[0], &f);
	vd_guest_marker_through(t->c, t->peer[0]);
	vd_peer_send(t->peer[0], &f);
	vd_guest_rx(t->c, &got);
	vd_assert_guest_frame(&got, &f);
	vd_bus_marker_through(t->c, t->peer[0]);

	/* The same with LATE_TX_ACK: a frame that cannot be sent fails at once. */
	gdrv_close(t->c);
	t->c = vd_guest_open(&t->d, VD_ALL_CAN);
	t->down[0] = true;
	vd_link_set("vcan0", false);
	assert_int_equal(gdrv_tx_sync(t->c, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_NOT_OK);
	vd_link_set("vcan0", true);
	t->down[0] = false;
	assert_int_equal(gdrv_tx_sync(t->c, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(t->peer[0], &f);
	vd_stats(&t->d, &s);
	assert_int_equal(s.tx_timeout, 0);
	vd_stop(&t->d);
	t->passed = true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_guest_to_bus, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bus_to_guest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bus_fd_to_classic_guest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_split_ifaces, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_same_iface_no_own_frames, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rejected_frames, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fd_not_offered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_late_tx_ack, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bus_off, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_link_down, setup, teardown),
	};

	vd_skip_without_vcan();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
