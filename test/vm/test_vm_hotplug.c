/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * An adapter unplugged and plugged back (VM rig, real daemon, real vcan):
 * the test's own vcan interfaces are deleted and re-created, renamed away
 * and back, with traffic both ways, with a frontend connected and between
 * frontends. While the interface is gone, TX requests complete NOT_OK
 * (never hang) and the connected guest sees bus-off; once it is back, frames
 * pass both ways again; the log says each step. And an MTU shrink under CAN
 * FD: the guest's FD frames fail, one log line per change, counted.
 *
 * The rig's vcan0/1/2 are shared by every VM test: these tests make and
 * remove their own (vcanhp*).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "vd.h"

#define IF_A "vcanhp0"
#define IF_B "vcanhp1"
#define IF_C "vcanhp2"
#define IF_C_AWAY "vcanhp2x"
#define IF_C_OTHER "vcanhp2y"
#define IF_D "vcanhp3"
#define IF_E "vcanhp4"
#define IF_IN "vcanhp5"
#define IF_OUT "vcanhp6"

static const char *const all_ifs[] = {IF_A, IF_B, IF_C,	 IF_C_AWAY, IF_C_OTHER,
				      IF_D, IF_E, IF_IN, IF_OUT};

static void if_del_quiet(const char *name)
{
	(void)vd_sh("ip link del dev %s 2>/dev/null", name);
}

/* A vcan of that MTU from its first moment, up: an adapter plugged in. */
static void if_add(const char *name, unsigned int mtu)
{
	assert_int_equal(
	    vd_sh("ip link add dev %s mtu %u type vcan && ip link set dev %s up", name, mtu, name),
	    0);
}

static void if_del(const char *name)
{
	assert_int_equal(vd_sh("ip link del dev %s", name), 0);
}

/*
 * A fresh adapter ifname of that MTU, the daemon on it, a peer on it and a
 * started guest with can_features; fd, if set, then passes guest -> bus.
 */
static void plug_and_serve(struct vd_fixture *t, const char *ifname, unsigned int mtu,
			   uint64_t can_features, const struct cframe *fd)
{
	if_add(ifname, mtu);
	vd_fixture_serve(t, ifname, ifname, can_features);
	if (fd) {
		assert_true(gdrv_has(t->c, VIRTIO_CAN_F_CAN_FD));
		assert_int_equal(gdrv_tx_sync(t->c, fd, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
		vd_assert_bus_frame(t->peer, fd);
	}
}

static void ifs_del_quiet(void)
{
	for (unsigned int i = 0; i < sizeof(all_ifs) / sizeof(all_ifs[0]); i++)
		if_del_quiet(all_ifs[i]);
}

static int setup(void **state)
{
	ifs_del_quiet();
	return vd_fixture_setup(state);
}

static int teardown(void **state)
{
	vd_fixture_teardown(state);
	ifs_del_quiet();
	return 0;
}

/* ---- the log and the counters -------------------------------------------- */

static char logbuf[1 << 20];

struct link_stats {
	unsigned long lost, rebound, fd_refused;
	struct vd_stats vd;
};

/* SIGUSR1: the device's counters and the port's link line. */
static void link_stats(struct vd_fixture *t, struct link_stats *ls)
{
	const char *l;

	vd_stats(&t->d, &ls->vd);
	vd_read_file(t->d.log, logbuf, sizeof(logbuf));
	l = vd_last_str(logbuf, "link: lost ");
	if (!l) {
		vd_print_log(&t->d);
		fail_msg("no 'link:' line in the counters");
	}
	assert_int_equal(sscanf(l,
				"link: lost %lu, bound again %lu, CAN FD frames refused (classic "
				"MTU) %lu",
				&ls->lost, &ls->rebound, &ls->fd_refused),
			 3);
}

/* ---- traffic ----------------------------------------------------------------- */

/* Whatever the guest got so far goes. */
static void guest_drain(struct gdrv *c)
{
	struct cframe f;

	while (gdrv_rx(c, &f, 50) == 1)
		;
}

/* Frames pass both ways: guest -> bus and bus -> guest, in order. */
static void both_ways(struct vd_fixture *t)
{
	guest_drain(t->c);
	vd_guest_marker_through(t->c, t->peer);
	vd_bus_marker_through(t->c, t->peer);
}

/* A peer on the bus writing frames until its interface goes away. */
struct writer {
	pthread_t th;
	int s;
	unsigned int sent;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct can_frame cf;

	memset(&cf, 0, sizeof(cf));
	cf.can_id = 0x2a0;
	cf.len = 4;
	for (;;) {
		ssize_t n = write(w->s, &cf, sizeof(cf));

		if (n < 0 && errno != ENOBUFS && errno != EAGAIN)
			break; /* ENXIO/ENODEV: unplugged */
		if (n > 0)
			w->sent++;
		memcpy(cf.data, &w->sent, sizeof(w->sent));
		vd_sleep_ms(1);
	}
	return NULL;
}

/* Deletes the interface a little after it starts. */
struct deleter {
	pthread_t th;
	const char *ifname;
	int rc;
	bool done;
};

static void *deleter_main(void *arg)
{
	struct deleter *d = arg;

	vd_sleep_ms(50);
	d->rc = vd_sh("ip link del dev %s", d->ifname);
	__atomic_store_n(&d->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Traffic both ways while the interface is deleted under it: the guest
 * keeps sending in batches of 8 and a peer keeps writing, and meanwhile
 * another thread deletes the interface. Every TX request completes (OK
 * before, NOT_OK after), none hangs, and both ways carried frames.
 */
static void delete_under_traffic(struct vd_fixture *t, const char *ifname)
{
	struct writer w = {.s = vd_peer_open(ifname)};
	struct deleter del = {.ifname = ifname};
	unsigned int ok = 0, not_ok = 0, rx = 0, seq = 0;
	uint64_t end = vd_now_ms() + VD_WAIT_MS;
	struct cframe got;

	assert_int_equal(pthread_create(&w.th, NULL, writer_main, &w), 0);
	assert_int_equal(pthread_create(&del.th, NULL, deleter_main, &del), 0);
	while (!(__atomic_load_n(&del.done, __ATOMIC_ACQUIRE) && not_ok > 0)) {
		struct cframe f[8];
		int queued;

		if (vd_now_ms() >= end) {
			vd_print_log(&t->d);
			fail_msg("no NOT_OK within %d ms of the unplug (%u OK)", VD_WAIT_MS, ok);
		}
		for (unsigned int i = 0; i < 8; i++, seq++)
			f[i] = cf_make(0x100 + (seq & 0xff), 0, 8, (uint8_t)seq);
		queued = gdrv_tx_many(t->c, f, 8);
		assert_true(queued > 0);
		for (int i = 0; i < queued; i++) {
			uint8_t result = 0xee;
			int token;

			if (gdrv_tx_wait(t->c, VD_WAIT_MS, &token, &result) != 1) {
				vd_print_log(&t->d);
				fail_msg("a TX request never completed around the unplug");
			}
			if (result == VIRTIO_CAN_RESULT_OK)
				ok++;
			else if (result == VIRTIO_CAN_RESULT_NOT_OK)
				not_ok++;
			else
				fail_msg("result byte %#x", result);
		}
		while (gdrv_rx(t->c, &got, 0) == 1)
			rx++;
	}
	assert_int_equal(pthread_join(del.th, NULL), 0);
	assert_int_equal(del.rc, 0);
	assert_int_equal(pthread_join(w.th, NULL), 0);
	close(w.s);
	printf("%s deleted under traffic: bus wrote %u frames, guest got %u; guest TX %u OK, "
	       "%u NOT_OK\n",
	       ifname, w.sent, rx, ok, not_ok);
	assert_true(ok > 0);
	assert_true(rx > 0);
}

/* While the interface is gone: the guest's frame completes NOT_OK, at once. */
static void tx_fails_while_gone(struct vd_fixture *t)
{
	struct cframe f = cf_make(0x321, 0, 2, 9);
	uint64_t t0 = vd_now_ms();

	assert_int_equal(gdrv_tx_sync(t->c, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_NOT_OK);
	printf("TX while unplugged: NOT_OK after %llu ms\n",
	       (unsigned long long)(vd_now_ms() - t0));
}

/* The connected guest was told: config change, bus-off in the status. */
static void guest_sees_bus_off(struct vd_fixture *t)
{
	assert_int_equal(gdrv_wait_config_change(t->c, VD_WAIT_MS), 0);
	assert_int_equal(gdrv_status(t->c), VIRTIO_CAN_S_CTRL_BUSOFF);
}

/* ---- tests ------------------------------------------------------------------ */

/*
 * Deleted under traffic and re-created with the same MTU, the frontend
 * connected throughout: bus-off while gone, START once it is back, then
 * classic and CAN FD frames pass both ways on the new interface.
 */
static void test_delete_recreate_same_mtu(void **state)
{
	struct vd_fixture *t = *state;
	struct cframe fd = cf_make(0x1abc, CFRAME_EXT | CFRAME_FD, 64, 3);
	struct link_stats ls;

	vd_skip_without_vcan();
	plug_and_serve(t, IF_A, 72, VD_ALL_CAN, NULL);
	assert_true(gdrv_has(t->c, VIRTIO_CAN_F_CAN_FD));
	assert_true(gdrv_has(t->c, VIRTIO_CAN_F_LATE_TX_ACK));
	both_ways(t);

	vd_peer_close(&t->peer);
	delete_under_traffic(t, IF_A);
	guest_sees_bus_off(t);
	vd_wait_log(&t->d, IF_A ": gone", 1);
	tx_fails_while_gone(t);

	if_add(IF_A, 72);
	vd_wait_log(&t->d, IF_A ": back", 1);
	/* Bus-off stays until the guest restarts its controller. */
	assert_int_equal(gdrv_status(t->c), VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_int_equal(gdrv_start(t->c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_status(t->c), 0);
	t->peer = vd_peer_open(IF_A);
	both_ways(t);
	assert_int_equal(gdrv_tx_sync(t->c, &fd, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(t->peer, &fd);

	link_stats(t, &ls);
	assert_int_equal(ls.lost, 1);
	assert_int_equal(ls.rebound, 1);
	assert_int_equal(ls.fd_refused, 0);
	assert_int_equal(ls.vd.busoff, 1);
	assert_int_equal(vd_log_count(&t->d, "receive failed"), 0);
	vd_stop(&t->d);
	t->passed = true;
}

/*
 * Re-created with a smaller MTU than the device offered (CAN FD offered,
 * the new link classic only): classic frames pass, FD frames complete
 * NOT_OK and are counted, the log says why. START while unplugged is
 * accepted (a controller without its bus) and TX fails until it is back.
 */
static void test_recreate_smaller_mtu(void **state)
{
	struct vd_fixture *t = *state;
	struct cframe fd = cf_make(0x77, CFRAME_FD, 16, 5);
	struct link_stats ls;

	vd_skip_without_vcan();
	plug_and_serve(t, IF_B, 72, VD_ALL_CAN, &fd);

	vd_peer_close(&t->peer);
	delete_under_traffic(t, IF_B);
	guest_sees_bus_off(t);
	vd_wait_log(&t->d, IF_B ": gone", 1);
	assert_int_equal(gdrv_start(t->c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	tx_fails_while_gone(t);

	if_add(IF_B, 16);
	vd_wait_log(&t->d, IF_B ": back", 1);
	vd_wait_log(&t->d, IF_B ": back with MTU 16 (classic CAN only)", 1);
	t->peer = vd_peer_open(IF_B);
	/* Started while gone: no second START needed. */
	both_ways(t);
	assert_int_equal(gdrv_tx_sync(t->c, &fd, VD_WAIT_MS), VIRTIO_CAN_RESULT_NOT_OK);
	vd_assert_bus_quiet(t->peer);
	vd_guest_marker_through(t->c, t->peer);

	link_stats(t, &ls);
	assert_int_equal(ls.lost, 1);
	assert_int_equal(ls.rebound, 1);
	assert_int_equal(ls.fd_refused, 1);
	vd_stop(&t->d);
	t->passed = true;
}

/*
 * Renamed away (gone) and back (the same interface), then away again and
 * another interface renamed to the name: the port follows the name, and
 * the renamed-away interface no longer reaches the guest.
 */
static void test_rename_away_and_back(void **state)
{
	struct vd_fixture *t = *state;
	struct link_stats ls;
	struct cframe stray = cf_make(0x3aa, 0, 1, 1), got;
	int away;

	vd_skip_without_vcan();
	plug_and_serve(t, IF_C, 16, VD_NO_LATE_ACK, NULL);
	both_ways(t);

	/* A link is renamed only while down. */
	assert_int_equal(vd_sh("ip link set dev %s down && ip link set dev %s name %s && "
			       "ip link set dev %s up",
			       IF_C, IF_C, IF_C_AWAY, IF_C_AWAY),
			 0);
	guest_sees_bus_off(t);
	vd_wait_log(&t->d, IF_C ": gone", 1);
	tx_fails_while_gone(t);

	assert_int_equal(vd_sh("ip link set dev %s down && ip link set dev %s name %s && "
			       "ip link set dev %s up",
			       IF_C_AWAY, IF_C_AWAY, IF_C, IF_C),
			 0);
	vd_wait_log(&t->d, IF_C ": back", 1);
	assert_int_equal(gdrv_start(t->c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_peer_close(&t->peer);
	t->peer = vd_peer_open(IF_C);
	both_ways(t);

	/* Away again; another adapter takes the name. */
	assert_int_equal(vd_sh("ip link set dev %s down && ip link set dev %s name %s && "
			       "ip link set dev %s up",
			       IF_C, IF_C, IF_C_AWAY, IF_C_AWAY),
			 0);
	guest_sees_bus_off(t);
	vd_wait_log(&t->d, IF_C ": gone", 2);
	assert_int_equal(vd_sh("ip link add dev %s type vcan && ip link set dev %s mtu 16 && "
			       "ip link set dev %s name %s && ip link set dev %s up",
			       IF_C_OTHER, IF_C_OTHER, IF_C_OTHER, IF_C, IF_C),
			 0);
	vd_wait_log(&t->d, IF_C ": back", 2);
	assert_int_equal(gdrv_start(t->c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_peer_close(&t->peer);
	t->peer = vd_peer_open(IF_C);
	both_ways(t);
	/* The old adapter, now under another name, is not this device's bus. */
	away = vd_peer_open(IF_C_AWAY);
	vd_peer_send(away, &stray);
	close(away);
	vd_bus_marker_through(t->c, t->peer);
	assert_int_equal(gdrv_rx(t->c, &got, 100), -ETIMEDOUT);

	link_stats(t, &ls);
	assert_int_equal(ls.lost, 2);
	assert_int_equal(ls.rebound, 2);
	vd_stop(&t->d);
	t->passed = true;
}

/*
 * Between frontends: unplugged with no frontend; a frontend that connects
 * while it is gone starts, its TX fails, and its frames pass once the
 * interface is back; unplugged and plugged again with nobody connected,
 * the next frontend finds everything working.
 */
static void test_between_frontends(void **state)
{
	struct vd_fixture *t = *state;
	struct link_stats ls;

	vd_skip_without_vcan();
	plug_and_serve(t, IF_D, 72, VD_ALL_CAN, NULL);
	both_ways(t);
	gdrv_close(t->c);
	t->c = NULL;
	vd_peer_close(&t->peer);

	if_del(IF_D);
	vd_wait_log(&t->d, IF_D ": gone", 1);
	t->c = vd_guest_open(&t->d, VD_ALL_CAN); /* START accepted without a bus */
	assert_int_equal(gdrv_status(t->c), 0);
	tx_fails_while_gone(t);
	if_add(IF_D, 72);
	vd_wait_log(&t->d, IF_D ": back", 1);
	t->peer = vd_peer_open(IF_D);
	both_ways(t);
	gdrv_close(t->c);
	t->c = NULL;
	vd_peer_close(&t->peer);

	if_del(IF_D);
	vd_wait_log(&t->d, IF_D ": gone", 2);
	if_add(IF_D, 72);
	vd_wait_log(&t->d, IF_D ": back", 2);
	t->c = vd_guest_open(&t->d, VD_ALL_CAN);
	t->peer = vd_peer_open(IF_D);
	both_ways(t);

	link_stats(t, &ls);
	assert_int_equal(ls.lost, 2);
	assert_int_equal(ls.rebound, 2);
	vd_stop(&t->d);
	t->passed = true;
}

/*
 * The MTU shrinks under CAN FD while the daemon serves (72 -> 16): the
 * guest's FD frames complete NOT_OK, the log says so once for the change
 * (not per frame), the counter counts each; classic frames pass. Back at
 * 72, FD frames pass again.
 */
static void test_mtu_shrink_logged(void **state)
{
	struct vd_fixture *t = *state;
	struct cframe fd = cf_make(0x55, CFRAME_FD, 32, 1);
	struct link_stats ls;

	vd_skip_without_vcan();
	plug_and_serve(t, IF_E, 72, VD_ALL_CAN, &fd);

	/* vcan changes its MTU only while down. */
	assert_int_equal(vd_sh("ip link set dev %s down && ip link set dev %s mtu 16 && "
			       "ip link set dev %s up",
			       IF_E, IF_E, IF_E),
			 0);
	vd_wait_log(&t->d, IF_E ": MTU is now 16", 1);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(gdrv_tx_sync(t->c, &fd, VD_WAIT_MS), VIRTIO_CAN_RESULT_NOT_OK);
	vd_guest_marker_through(t->c, t->peer);
	vd_bus_marker_through(t->c, t->peer);
	assert_int_equal(vd_log_count(&t->d, IF_E ": MTU is now 16"), 1);
	link_stats(t, &ls);
	assert_int_equal(ls.fd_refused, 3);
	assert_int_equal(ls.lost, 0);
	assert_int_equal(ls.vd.busoff, 0);

	assert_int_equal(vd_sh("ip link set dev %s down && ip link set dev %s mtu 72 && "
			       "ip link set dev %s up",
			       IF_E, IF_E, IF_E),
			 0);
	vd_wait_log(&t->d, IF_E ": MTU is now 72", 1);
	assert_int_equal(gdrv_tx_sync(t->c, &fd, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(t->peer, &fd);
	assert_int_equal(vd_log_count(&t->d, IF_E ": MTU is now 16"), 1);
	vd_stop(&t->d);
	t->passed = true;
}

/*
 * Two interfaces (in != out), an rx filter and LATE_TX_ACK (transmit
 * confirmation on the tx socket): in is unplugged, so the device is gone
 * as a whole; back, both sockets are bound again with the filter and the
 * confirmation, and out's own interface was never touched.
 */
static void test_split_in_unplugged(void **state)
{
	struct vd_fixture *t = *state;
	const struct cframe filtered = cf_make(0x124, 0, 1, 1);
	struct link_stats ls;
	int out_peer;

	vd_skip_without_vcan();
	if_add(IF_IN, 72);
	if_add(IF_OUT, 72);
	vd_start(&t->d, IF_IN, IF_OUT, "--rx-filter=123:7ff,7ff:7ff", NULL);
	t->peer = vd_peer_open(IF_IN);
	out_peer = vd_peer_open(IF_OUT);
	t->c = vd_guest_open(&t->d, VD_ALL_CAN);
	assert_true(gdrv_has(t->c, VIRTIO_CAN_F_LATE_TX_ACK));
	vd_guest_marker_through(t->c, out_peer);
	vd_bus_marker_through(t->c, t->peer);

	vd_peer_close(&t->peer);
	if_del(IF_IN);
	guest_sees_bus_off(t);
	vd_wait_log(&t->d, IF_IN ": gone", 1);
	tx_fails_while_gone(t);
	if_add(IF_IN, 72);
	vd_wait_log(&t->d, "in " IF_IN ", out " IF_OUT ": back", 1);
	assert_int_equal(gdrv_start(t->c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	t->peer = vd_peer_open(IF_IN);
	/* The filter holds on the new socket; LATE_TX_ACK gets its echoes. */
	vd_peer_send(t->peer, &filtered);
	vd_bus_marker_through(t->c, t->peer);
	vd_guest_marker_through(t->c, out_peer);
	close(out_peer);

	link_stats(t, &ls);
	assert_int_equal(ls.lost, 1);
	assert_int_equal(ls.rebound, 1);
	assert_int_equal(ls.vd.tx_timeout, 0);
	vd_stop(&t->d);
	t->passed = true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_delete_recreate_same_mtu, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recreate_smaller_mtu, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rename_away_and_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_between_frontends, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mtu_shrink_logged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_split_in_unplugged, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
