/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Two devices in one loop (the daemon's dmn_run in a thread, two fake CAN
 * ports, two unix sockets): whatever the guest or frontend of device A
 * does (flood its TX ring, break its queue, see its bus go off, vanish),
 * device B's frames pass both ways and its counters and status are its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bkt.h"
#include "fakeport.h"
#include "fecan.h"
#include "txflood.h"
#include "vlog.h"

#define T_MS 5000
#define F_CLASSIC (1ull << VIRTIO_CAN_F_CAN_CLASSIC)

struct fx {
	struct fakeport *pa, *pb;
	struct fakeport_dmn *d;
	struct fecan *a, *b;
	const char *path_b;
	int fds_before;
};

static struct fecan *guest(const char *path)
{
	struct fecan_opts o;
	struct fecan *c = NULL;

	fecan_opts_default(&o);
	o.can_features = F_CLASSIC;
	assert_int_equal(fecan_open(&c, path, &o, T_MS), 0);
	assert_int_equal(fecan_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	return c;
}

static int fx_setup(void **state)
{
	static const struct vcd_config cfg_a = {.name = "dev-a"}, cfg_b = {.name = "dev-b"};
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	x->fds_before = bkt_count_fds();
	assert_int_equal(fakeport_new(&x->pa), 0);
	assert_int_equal(fakeport_new(&x->pb), 0);
	assert_int_equal(fakeport_dmn_start(&x->d, &cfg_a, x->pa), 0);
	assert_int_equal(fakeport_dmn_add(x->d, &cfg_b, x->pb, &x->path_b), 0);
	x->a = guest(fakeport_dmn_path(x->d));
	x->b = guest(x->path_b);
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *x = *state;

	fecan_close(x->a);
	fecan_close(x->b);
	assert_int_equal(fakeport_dmn_stop(x->d), 0);
	fakeport_free(x->pa);
	fakeport_free(x->pb);
	assert_int_equal(bkt_count_fds(), x->fds_before);
	free(x);
	return 0;
}

/* Two bytes that follow from the id. */
static struct cframe frame(uint32_t id)
{
	return cf_make(id, 0, 2, (uint8_t)id);
}

/* n frames each way through device B, every one checked. */
static void b_works(struct fx *x, unsigned int n, uint32_t base)
{
	unsigned int sent0 = fakeport_sent_count(x->pb);

	for (unsigned int i = 0; i < n; i++) {
		struct cframe f = frame(base + i), got;

		assert_int_equal(fecan_tx_sync(x->b, &f, T_MS), VIRTIO_CAN_RESULT_OK);
		assert_int_equal(fakeport_inject_frames(x->pb, &f, 1), 0);
		assert_int_equal(fecan_rx(x->b, &got, T_MS), 1);
		assert_int_equal(got.id, f.id);
		assert_memory_equal(got.data, f.data, f.len);
	}
	assert_int_equal(fakeport_sent_count(x->pb), sent0 + n);
	for (unsigned int i = 0; i < n; i++) {
		struct cframe f;

		assert_int_equal(fakeport_sent(x->pb, sent0 + i, &f), 0);
		assert_int_equal(f.id, base + i);
	}
}

struct dev_stats {
	unsigned int idx;
	struct vcd_stats s;
};

static void get_dev_stats(struct dmn *m, void *arg)
{
	struct dev_stats *ds = arg;

	vcd_get_stats(m->devs[ds->idx].dev, &ds->s);
}

static struct vcd_stats stats_of(struct fx *x, unsigned int idx)
{
	struct dev_stats ds = {.idx = idx};

	assert_int_equal(fakeport_dmn_exec(x->d, get_dev_stats, &ds), 0);
	return ds.s;
}

/* A's guest reposts every TX request at once; B's frames still pass. */
static void test_flood_on_a(void **state)
{
	struct fx *x = *state;
	static struct txflood fl;
	struct vcd_stats b;

	fakeport_count_only(x->pa, true);
	assert_int_equal(txflood_start(&fl, x->a, x->pa, x->d, 30000), 0);
	b_works(x, 50, 0x100);
	assert_true(txflood_running(&fl));
	assert_int_equal(txflood_stop(&fl, x->d), 0);
	assert_true(fakeport_sent_count(x->pa) > 0);
	b = stats_of(x, 1);
	assert_int_equal(b.tx_ok, 50);
	assert_int_equal(b.rx_delivered, 50);
}

/* A's guest breaks its TX queue (a buffer outside guest memory). */
static void test_broken_queue_on_a(void **state)
{
	struct fx *x = *state;
	struct fe_sg bad = {.gpa = 0x7e0000000000ull, .len = 24};
	struct fe_sg res = {.gpa = 0x7e0000001000ull, .len = 1};
	struct cframe f = frame(0x55);

	assert_int_equal(
	    fe_ring_add(fecan_fe(x->a), VIRTIO_CAN_QUEUE_TX, &bad, 1, &res, 1, NULL, NULL), 0);
	assert_int_equal(fe_ring_kick(fecan_fe(x->a), VIRTIO_CAN_QUEUE_TX, true), 1);
	assert_int_equal(fakeport_dmn_ping(x->d, T_MS), 0);
	b_works(x, 20, 0x200);
	/* A's TX queue is broken: its next request is never answered. */
	assert_true(fecan_tx(x->a, &f) >= 0);
	assert_int_equal(fakeport_dmn_ping(x->d, T_MS), 0);
	assert_int_equal(fakeport_sent_count(x->pa), 0);
	/* B still works after A's next frame too. */
	b_works(x, 5, 0x220);
}

/* A's bus goes off: A reports it, B's status and frames are untouched. */
static void test_bus_off_on_a(void **state)
{
	struct fx *x = *state;
	struct vcd_stats a, b;
	struct cframe f = frame(0x66);

	assert_int_equal(fakeport_inject_event(x->pa, CAN_PORT_EV_BUSOFF, NULL), 0);
	assert_int_equal(fakeport_dmn_sync(x->d, T_MS), 0);
	assert_true(fecan_status(x->a) & VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_false(fecan_status(x->b) & VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_int_equal(fecan_tx_sync(x->a, &f, T_MS), VIRTIO_CAN_RESULT_NOT_OK);
	b_works(x, 20, 0x300);
	a = stats_of(x, 0);
	b = stats_of(x, 1);
	assert_int_equal(a.busoff_events, 1);
	assert_int_equal(b.busoff_events, 0);
	assert_int_equal(b.tx_ok, 20);
}

/* A's frontend vanishes mid-session; B goes on, A serves its next frontend. */
static void test_disconnect_on_a(void **state)
{
	struct fx *x = *state;
	struct cframe f = frame(0x77);

	assert_true(fecan_tx(x->a, &f) >= 0);
	fecan_close(x->a);
	x->a = NULL;
	b_works(x, 20, 0x400);
	x->a = guest(fakeport_dmn_path(x->d));
	assert_int_equal(fecan_tx_sync(x->a, &f, T_MS), VIRTIO_CAN_RESULT_OK);
	b_works(x, 5, 0x420);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_flood_on_a),
	    T(test_broken_queue_on_a),
	    T(test_bus_off_on_a),
	    T(test_disconnect_on_a),
	};

	if (!getenv("VDC_TEST_VERBOSE"))
		vlog_set_level(VLOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
