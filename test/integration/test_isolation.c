/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Two devices in one loop (the daemon's loop_run in a thread, two fake CAN
 * ports, two unix sockets): whatever the guest or frontend of device A
 * does (flood its TX ring, break its queue, see its bus go off, vanish),
 * device B's frames pass both ways and its counters and status are its own,
 * and the loop serves B between any two budgets of A's work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bthread.h"
#include "fakeport.h"
#include "guest_driver.h"
#include "tfd.h"
#include "txflood.h"
#include "device.h"
#include "virtio_can.h"
#include "vhost-user/vlog.h"

#define T_MS 5000
#define F_CLASSIC (1ull << VIRTIO_CAN_F_CAN_CLASSIC)

struct fx {
	struct fakeport *pa, *pb;
	struct fakeport_loop *d;
	struct gdrv *a, *b;
	const char *path_b;
	int fds_before;
};

static struct gdrv *guest(const char *path)
{
	struct gdrv_opts o;
	struct gdrv *c = NULL;

	gdrv_opts_default(&o);
	o.can_features = F_CLASSIC;
	assert_int_equal(gdrv_open(&c, path, &o, T_MS), 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	return c;
}

static int fx_setup(void **state)
{
	static const struct device_config cfg_a = {.name = "dev-a"}, cfg_b = {.name = "dev-b"};
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	x->fds_before = tfd_count();
	assert_int_equal(fakeport_new(&x->pa), 0);
	assert_int_equal(fakeport_new(&x->pb), 0);
	assert_int_equal(fakeport_loop_start(&x->d, &cfg_a, x->pa), 0);
	assert_int_equal(fakeport_loop_add(x->d, &cfg_b, x->pb, &x->path_b), 0);
	x->a = guest(fakeport_loop_path(x->d));
	x->b = guest(x->path_b);
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *x = *state;

	gdrv_close(x->a);
	gdrv_close(x->b);
	assert_int_equal(fakeport_loop_stop(x->d), 0);
	fakeport_free(x->pa);
	fakeport_free(x->pb);
	assert_int_equal(tfd_count(), x->fds_before);
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

		assert_int_equal(gdrv_tx_sync(x->b, &f, T_MS), VIRTIO_CAN_RESULT_OK);
		assert_int_equal(fakeport_inject_frames(x->pb, &f, 1), 0);
		assert_int_equal(gdrv_rx(x->b, &got, T_MS), 1);
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
	struct device_stats s;
};

static void get_dev_stats(struct loop *m, void *arg)
{
	struct dev_stats *ds = arg;

	device_get_stats(loop_device(m, ds->idx), &ds->s);
}

static struct device_stats stats_of(struct fx *x, unsigned int idx)
{
	struct dev_stats ds = {.idx = idx};

	assert_int_equal(fakeport_loop_exec(x->d, get_dev_stats, &ds), 0);
	return ds.s;
}

/* A's guest reposts every TX request at once; B's frames still pass. */
static void test_flood_on_a(void **state)
{
	struct fx *x = *state;
	static struct txflood fl;
	struct device_stats b;

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
	    fe_ring_add(gdrv_fe(x->a), VIRTIO_CAN_QUEUE_TX, &bad, 1, &res, 1, NULL, NULL), 0);
	assert_int_equal(fe_ring_kick(gdrv_fe(x->a), VIRTIO_CAN_QUEUE_TX, true), 1);
	assert_int_equal(fakeport_loop_ping(x->d, T_MS), 0);
	b_works(x, 20, 0x200);
	/* A's TX queue is broken: its next request is never answered. */
	assert_true(gdrv_tx(x->a, &f) >= 0);
	assert_int_equal(fakeport_loop_ping(x->d, T_MS), 0);
	assert_int_equal(fakeport_sent_count(x->pa), 0);
	/* B still works after A's next frame too. */
	b_works(x, 5, 0x220);
}

/* A's bus goes off: A reports it, B's status and frames are untouched. */
static void test_bus_off_on_a(void **state)
{
	struct fx *x = *state;
	struct device_stats a, b;
	struct cframe f = frame(0x66);

	assert_int_equal(fakeport_inject_event(x->pa, CAN_PORT_EV_BUSOFF, NULL), 0);
	assert_int_equal(fakeport_loop_sync(x->d, T_MS), 0);
	assert_true(gdrv_status(x->a) & VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_false(gdrv_status(x->b) & VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_int_equal(gdrv_tx_sync(x->a, &f, T_MS), VIRTIO_CAN_RESULT_NOT_OK);
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

	assert_true(gdrv_tx(x->a, &f) >= 0);
	gdrv_close(x->a);
	x->a = NULL;
	b_works(x, 20, 0x400);
	x->a = guest(fakeport_loop_path(x->d));
	assert_int_equal(gdrv_tx_sync(x->a, &f, T_MS), VIRTIO_CAN_RESULT_OK);
	b_works(x, 5, 0x420);
}

/* Reopen A's guest with queues of size num: 0 or the error of the session. */
static int a_reopen(struct fx *x, uint16_t num)
{
	struct gdrv_opts o;
	int ret;

	gdrv_close(x->a);
	x->a = NULL;
	gdrv_opts_default(&o);
	o.can_features = F_CLASSIC;
	o.start.queue_size = num;
	ret = gdrv_open(&x->a, fakeport_loop_path(x->d), &o, T_MS);
	if (ret == 0)
		ret = gdrv_start(x->a, T_MS) == VIRTIO_CAN_RESULT_OK ? 0 : -EIO;
	return ret;
}

/* The largest queue the README promises is accepted; twice that is refused. */
static void test_queue_size_limit(void **state)
{
	struct fx *x = *state;

	assert_true(a_reopen(x, 2 * DEVICE_MAX_QUEUE_SIZE) < 0);
	b_works(x, 5, 0x500);
	assert_int_equal(a_reopen(x, DEVICE_MAX_QUEUE_SIZE), 0);
	b_works(x, 5, 0x510);
}

/*
 * A hostile guest's TX chain of n direct descriptors (a 16-byte header, then
 * 1-byte readable pieces, then the result byte), for an empty classic frame.
 */
static uint16_t a_long_chain(struct fx *x, unsigned int n)
{
	static struct fe_sg out[DEVICE_MAX_CHAIN + 1];
	struct fe *fe = gdrv_fe(x->a);
	struct virtio_can_hdr *h;
	struct fe_sg res;
	uint64_t gpa, pad;
	uint16_t head;

	assert_true(n >= 3 && n <= DEVICE_MAX_CHAIN + 1);
	h = fe_alloc(fe, sizeof(*h), 16, &gpa);
	assert_non_null(h);
	memset(h, 0, sizeof(*h));
	h->msg_type = htole16(VIRTIO_CAN_TX);
	h->can_id = htole32(0x123);
	out[0] = (struct fe_sg){gpa, sizeof(*h)};
	assert_non_null(fe_alloc(fe, 1, 8, &pad));
	for (unsigned int i = 1; i < n - 1; i++)
		out[i] = (struct fe_sg){pad, 1};
	assert_non_null(fe_alloc(fe, 1, 8, &res.gpa));
	res.len = 1;
	assert_int_equal(fe_ring_add(fe, VIRTIO_CAN_QUEUE_TX, out, n - 1, &res, 1, NULL, &head), 0);
	return head;
}

/* Reposts one head: every frame the device sends makes it available again. */
struct repost {
	struct vring_avail *avail;
	uint16_t num, head, idx;
	bool on; /* read and written in the loop thread only, after the start */
};

static void repost_hook(void *arg, unsigned int n)
{
	struct repost *r = arg;

	if (!r->on)
		return;
	for (; n > 0; n--)
		r->avail->ring[r->idx++ % r->num] = htole16(r->head);
	__atomic_store_n(&r->avail->idx, htole16(r->idx), __ATOMIC_RELEASE);
}

static void repost_off(struct loop *m, void *arg)
{
	(void)m;
	((struct repost *)arg)->on = false;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * A's guest fills its largest ring with one chain of the longest length the
 * device serves, and reposts it as fast as the device completes it. B's
 * GET_FEATURES round trips and frames go on, and no wakeup of A's Txq
 * reads more than DEVICE_TX_BUDGET descriptors: that, not a time, is what
 * bounds B's wait (the round trips are printed, not asserted). With chains
 * counted instead (256 per wakeup), A's wakeups read 256 x 16.
 */
static void test_long_chains_on_a(void **state)
{
	struct fx *x = *state;
	static struct repost r;
	struct fe *fe;
	uint64_t desc, avail, used, worst = 0, sum = 0;
	struct device_stats a;
	const unsigned int rounds = 300;

	assert_int_equal(a_reopen(x, DEVICE_MAX_QUEUE_SIZE), 0);
	fe = gdrv_fe(x->a);
	fakeport_count_only(x->pa, true);
	memset(&r, 0, sizeof(r));
	r.num = DEVICE_MAX_QUEUE_SIZE;
	r.head = a_long_chain(x, DEVICE_MAX_CHAIN);
	assert_int_equal(fe_ring_gpas(fe, VIRTIO_CAN_QUEUE_TX, &desc, &avail, &used), 0);
	r.avail = fe_gpa_to_ptr(fe, avail, 4 + 2u * r.num);
	assert_non_null(r.avail);
	/* Not kicked yet: the device has not seen the chain. */
	r.idx = le16toh(r.avail->idx);
	fakeport_on_send(x->pa, repost_hook, &r);
	r.on = true;
	for (unsigned int i = 0; i < r.num - 1u; i++)
		r.avail->ring[r.idx++ % r.num] = htole16(r.head);
	__atomic_store_n(&r.avail->idx, htole16(r.idx), __ATOMIC_RELEASE);
	assert_int_equal(fe_ring_kick(fe, VIRTIO_CAN_QUEUE_TX, true), 1);

	for (unsigned int i = 0; i < rounds; i++) {
		uint64_t f, t0 = now_ns(), dt;

		assert_int_equal(fe_get_features(gdrv_fe(x->b), &f), 0);
		dt = now_ns() - t0;
		sum += dt;
		if (dt > worst)
			worst = dt;
	}
	b_works(x, 20, 0x600);
	assert_int_equal(fakeport_loop_exec(x->d, repost_off, &r), 0);
	assert_int_equal(fakeport_loop_sync(x->d, T_MS), 0);
	fakeport_on_send(x->pa, NULL, NULL);
	a = stats_of(x, 0);
	print_message("B's GET_FEATURES under A's chains of %u descriptors (queue %u): "
		      "mean %llu us, worst %llu us; A sent %llu frames, "
		      "at most %llu descriptors per wakeup (budget %u)\n",
		      DEVICE_MAX_CHAIN, DEVICE_MAX_QUEUE_SIZE, (unsigned long long)(sum / rounds / 1000),
		      (unsigned long long)(worst / 1000), (unsigned long long)a.tx_ok,
		      (unsigned long long)a.walk_max[0], DEVICE_TX_BUDGET);
	/* The flood ran: many budgets' worth of A's work while B was served. */
	assert_true(a.tx_ok > 10ull * DEVICE_TX_BUDGET / DEVICE_MAX_CHAIN);
	assert_true(a.walk_max[VIRTIO_CAN_QUEUE_TX] <= DEVICE_TX_BUDGET);
	assert_true(a.walk_max[VIRTIO_CAN_QUEUE_TX] > DEVICE_TX_BUDGET - (DEVICE_MAX_CHAIN + 1));
	assert_int_equal(stats_of(x, 1).tx_ok, 20);
}

/* One descriptor more than a request may have breaks A's Txq, not B. */
static void test_overlong_chain_on_a(void **state)
{
	struct fx *x = *state;

	(void)a_long_chain(x, DEVICE_MAX_CHAIN + 1);
	assert_int_equal(fe_ring_kick(gdrv_fe(x->a), VIRTIO_CAN_QUEUE_TX, true), 1);
	assert_int_equal(fakeport_loop_ping(x->d, T_MS), 0);
	assert_int_equal(fakeport_sent_count(x->pa), 0);
	assert_int_equal(stats_of(x, 0).tx_ok, 0);
	b_works(x, 5, 0x700);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_flood_on_a),		 T(test_broken_queue_on_a), T(test_bus_off_on_a),
	    T(test_disconnect_on_a),	 T(test_queue_size_limit),  T(test_long_chains_on_a),
	    T(test_overlong_chain_on_a),
	};

	if (!getenv("VDC_TEST_VERBOSE"))
		vlog_set_level(VLOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
