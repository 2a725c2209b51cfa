/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Buffers through the real backend's rings, driven by the frontend client
 * as a guest driver: direct, split and indirect chains with EVENT_IDX on and
 * off, ring sizes, index wrap-around, call notifications and their
 * suppression, GET_VRING_BASE with chains held, and a ring restart that
 * finds buffers already waiting.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include <cmocka.h>

#include "bthread.h"
#include "fe.h"
#include "testdev.h"
#include "tfd.h"
#include "vhost-user/vlog.h"

#define T_MS 5000

struct xcase {
	bool event_idx;
	struct fe_add_opts add;
	unsigned int batch;
	unsigned int n;
	uint16_t queue_size;
};

struct fx {
	struct testdev dev;
	struct bthread *t;
	int fds_before;
	const struct xcase *c;
};

static int fx_setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	x->c = *state; /* the case, for parameterized tests */
	x->fds_before = tfd_count();
	testdev_init(&x->dev);
	assert_int_equal(bthread_start(&x->t, &x->dev.dev), 0);
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *x = *state;

	assert_int_equal(bthread_error(x->t), 0);
	bthread_stop(x->t);
	testdev_fini(&x->dev);
	assert_int_equal(tfd_count(), x->fds_before);
	free(x);
	return 0;
}

struct held_want {
	struct testdev *d;
	unsigned int n;
};

static bool holding(struct vu_backend *b, void *arg)
{
	struct held_want *w = arg;
	struct testdev_stats st;

	(void)b;
	testdev_snapshot(w->d, &st);
	return st.held == w->n;
}

static void wait_held(struct fx *x, unsigned int n)
{
	struct held_want w = {&x->dev, n};

	assert_int_equal(bthread_wait(x->t, holding, &w, T_MS), 0);
}

static struct fe *open_session(struct fx *x, bool event_idx, uint64_t extra_features,
			       uint16_t queue_size)
{
	struct fe_start_opts o;
	struct fe *f;

	fe_start_opts_default(&o);
	if (!event_idx)
		o.features &= ~FE_F_EVENT_IDX;
	o.features |= extra_features;
	if (queue_size)
		o.queue_size = queue_size;
	assert_int_equal(fe_new(&f, NULL), 0);
	assert_int_equal(fe_connect(f, bthread_path(x->t), T_MS), 0);
	assert_int_equal(fe_start(f, &o), 0);
	assert_int_equal(fe_ring_event_idx(f, 0), event_idx);
	assert_int_equal(bthread_wait(x->t, testdev_all_running, &x->dev, T_MS), 0);
	return f;
}

static void close_session(struct fx *x, struct fe *f, unsigned int sessions)
{
	struct testdev_stats st;

	fe_free(f);
	assert_int_equal(bthread_wait_idle(x->t, sessions, T_MS), 0);
	testdev_snapshot(&x->dev, &st);
	assert_int_equal(st.pop_errors, 0);
}

/* Add n chains of one writable 16-byte buffer to queue q and kick. */
static void post_writable(struct fe *f, unsigned int q, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		struct fe_sg in;

		assert_non_null(fe_alloc(f, 16, 8, &in.gpa));
		in.len = 16;
		assert_int_equal(fe_ring_add(f, q, NULL, 0, &in, 1, NULL, NULL), 0);
	}
	assert_int_equal(fe_ring_kick(f, q, false), 1);
}

static bool call_pending(struct fe *f, unsigned int q)
{
	struct pollfd p = {.fd = fe_ring_call_fd(f, q), .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

static void drain_call(struct fe *f, unsigned int q)
{
	eventfd_t v;

	eventfd_read(fe_ring_call_fd(f, q), &v);
}

static void take_used(struct fe *f, unsigned int q, unsigned int n, uint32_t want_len)
{
	uint32_t id, len;

	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(fe_ring_get_used(f, q, &id, &len), 1);
		assert_int_equal(len, want_len);
	}
	assert_int_equal(fe_ring_get_used(f, q, &id, &len), 0);
}

/* ------------------------------------------------------------------------ */

static void test_transfer(void **state)
{
	struct fx *x = *state;
	const struct xcase *c = x->c;
	struct fe *f = open_session(x, c->event_idx, 0, c->queue_size);
	struct testdev_stats st;
	uint16_t base;

	assert_int_equal(testdev_fe_xform(f, c->n, &c->add, c->batch, T_MS), 0);
	assert_int_equal(fe_ring_inflight(f, TESTDEV_Q_XFORM), 0);
	assert_int_equal(fe_stop(f), 0);
	assert_int_equal(fe_ring_get_base(f, TESTDEV_Q_XFORM, &base), 0);
	assert_int_equal(base, (uint16_t)c->n);
	testdev_snapshot(&x->dev, &st);
	assert_int_equal(st.chains[TESTDEV_Q_XFORM], c->n);
	close_session(x, f, 1);
}

static const struct xcase c_direct = {false, {0, 0}, 32, 600, 0};
static const struct xcase c_direct_ev = {true, {0, 0}, 32, 600, 0};
static const struct xcase c_split = {false, {0, 3}, 8, 200, 0};
static const struct xcase c_split_ev = {true, {0, 3}, 8, 200, 0};
/* Up to 32 + 32 descriptors per chain, each its own piece. */
static const struct xcase c_split_max = {true, {0, 2}, 8, 100, 0};
static const struct xcase c_indirect = {false, {FE_ADD_INDIRECT, 0}, 32, 300, 0};
static const struct xcase c_indirect_ev = {true, {FE_ADD_INDIRECT, 0}, 32, 300, 0};
static const struct xcase c_indirect_split = {true, {FE_ADD_INDIRECT, 5}, 32, 300, 0};
/* Past 65535: avail, used and the event indices all wrap. */
static const struct xcase c_wrap = {true, {0, 0}, 128, 70000, 0};
static const struct xcase c_wrap_noev = {false, {0, 0}, 128, 70000, 0};
/* One descriptor: only an indirect chain fits. */
static const struct xcase c_size1 = {true, {FE_ADD_INDIRECT, 0}, 1, 50, 1};
static const struct xcase c_size2 = {false, {0, 0}, 2, 50, 2};
static const struct xcase c_size1024 = {true, {0, 0}, 512, 3000, 1024};

static void test_queue_size_limit(void **state)
{
	struct fx *x = *state;
	struct fe_start_opts o;
	struct fe *f;

	/* The device takes at most 1024 entries: 2048 is refused (acked). */
	fe_start_opts_default(&o);
	o.queue_size = 2048;
	assert_int_equal(fe_new(&f, NULL), 0);
	assert_int_equal(fe_connect(f, bthread_path(x->t), T_MS), 0);
	assert_int_equal(fe_start(f, &o), -EREMOTEIO);
	close_session(x, f, 1);
}

/* ------------------------------------------------------------------------ */
/* Notifications */

static void notifications(struct fx *x, bool event_idx)
{
	struct fe *f = open_session(x, event_idx, 0, 0);
	const unsigned int q = TESTDEV_Q_HOLD;

	/* Interrupts wanted: releasing held chains signals the call fd. */
	post_writable(f, q, 3);
	wait_held(x, 3);
	drain_call(f, q);
	assert_int_equal(bthread_exec(x->t, testdev_release, &x->dev), 0);
	assert_true(call_pending(f, q));
	assert_true(fe_ring_wait_call(f, q, 0) > 0);
	take_used(f, q, 3, 0);

	/* Not wanted (NO_INTERRUPT, or used_event already passed): silence. */
	fe_ring_set_interrupts(f, q, false);
	post_writable(f, q, 3);
	wait_held(x, 3);
	drain_call(f, q);
	assert_int_equal(bthread_exec(x->t, testdev_release, &x->dev), 0);
	assert_false(call_pending(f, q));
	take_used(f, q, 3, 0);

	/* Wanted again. */
	fe_ring_set_interrupts(f, q, true);
	post_writable(f, q, 2);
	wait_held(x, 2);
	drain_call(f, q);
	assert_int_equal(bthread_exec(x->t, testdev_release, &x->dev), 0);
	assert_true(call_pending(f, q));
	take_used(f, q, 2, 0);

	/* Queue 0 signals every completion the driver waits for. */
	assert_int_equal(testdev_fe_xform(f, 20, NULL, 1, T_MS), 0);
	close_session(x, f, 1);
}

static void test_notifications(void **state)
{
	notifications(*state, false);
}

static void test_notifications_event_idx(void **state)
{
	notifications(*state, true);
}

static void test_notify_on_empty(void **state)
{
	struct fx *x = *state;
	struct fe *f = open_session(x, false, FE_F_NOTIFY_ON_EMPTY, 0);
	const unsigned int q = TESTDEV_Q_HOLD;

	assert_true(fe_features(f) & FE_F_NOTIFY_ON_EMPTY);
	/* NO_INTERRUPT, but the ring ran empty: the device signals anyway. */
	fe_ring_set_interrupts(f, q, false);
	post_writable(f, q, 2);
	wait_held(x, 2);
	drain_call(f, q);
	assert_int_equal(bthread_exec(x->t, testdev_release, &x->dev), 0);
	assert_true(call_pending(f, q));
	take_used(f, q, 2, 0);
	close_session(x, f, 1);
}

/* ------------------------------------------------------------------------ */
/* Stopping and restarting rings */

static void test_get_vring_base_with_held_chains(void **state)
{
	struct fx *x = *state;
	struct fe *f = open_session(x, true, 0, 0);
	struct testdev_stats st;
	uint16_t base;

	assert_int_equal(testdev_fe_xform(f, 4, NULL, 2, T_MS), 0);
	post_writable(f, TESTDEV_Q_HOLD, 5);
	wait_held(x, 5);
	assert_int_equal(fe_ring_inflight(f, TESTDEV_Q_HOLD), 5);

	/* ENABLE 0 then GET_VRING_BASE: the device gives back what it holds. */
	assert_int_equal(fe_stop(f), 0);
	assert_int_equal(fe_ring_get_base(f, TESTDEV_Q_HOLD, &base), 0);
	assert_int_equal(base, 5);
	assert_int_equal(fe_ring_get_base(f, TESTDEV_Q_XFORM, &base), 0);
	assert_int_equal(base, 4);
	take_used(f, TESTDEV_Q_HOLD, 5, 0);
	assert_int_equal(fe_ring_inflight(f, TESTDEV_Q_HOLD), 0);
	testdev_snapshot(&x->dev, &st);
	assert_int_equal(st.running, 0);
	assert_int_equal(st.held, 0);
	close_session(x, f, 1);
}

static void test_restart_finds_waiting_buffers(void **state)
{
	struct fx *x = *state;
	struct fe_start_opts o;
	struct fe *f = open_session(x, true, 0, 0);
	uint8_t *out[3], *in[3];
	uint32_t id, len;
	uint16_t head[3];

	assert_int_equal(testdev_fe_xform(f, 2, NULL, 2, T_MS), 0);
	assert_int_equal(fe_stop(f), 0);

	/* Buffers made available while the ring is stopped; the kick reaches nobody. */
	for (int i = 0; i < 3; i++) {
		struct fe_sg so, si;

		out[i] = fe_alloc(f, 8, 8, &so.gpa);
		in[i] = fe_alloc(f, 8, 8, &si.gpa);
		assert_non_null(out[i]);
		assert_non_null(in[i]);
		so.len = si.len = 8;
		memcpy(out[i], "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
		out[i][0] = (uint8_t)i;
		assert_int_equal(fe_ring_add(f, TESTDEV_Q_XFORM, &so, 1, &si, 1, NULL, &head[i]), 0);
	}
	fe_ring_kick(f, TESTDEV_Q_XFORM, true);
	fe_disconnect(f);
	assert_int_equal(bthread_wait_idle(x->t, 1, T_MS), 0);

	/* The next start (base 2) processes them and signals, with no kick. */
	drain_call(f, TESTDEV_Q_XFORM);
	assert_int_equal(fe_connect(f, bthread_path(x->t), T_MS), 0);
	fe_start_opts_default(&o);
	assert_int_equal(fe_start(f, &o), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(fe_ring_wait_used(f, TESTDEV_Q_XFORM, T_MS, &id, &len), 1);
		assert_int_equal(id, head[i]);
		assert_int_equal(len, 8);
		assert_int_equal(in[i][0], (uint8_t)~i);
		assert_int_equal(in[i][7], (uint8_t)~8);
	}
	close_session(x, f, 2);
}

static void test_start_signals(void **state)
{
	struct fx *x = *state;
	struct fe_start_opts o;
	struct fe *f;

	/*
	 * A (re)started ring gets a call, for calls lost across reconnects, even
	 * with nothing used and NO_INTERRUPT set: the device is silent then, so
	 * the call is the backend's.
	 */
	assert_int_equal(fe_new(&f, NULL), 0);
	for (unsigned int q = 0; q < TESTDEV_NUM_QUEUES; q++) {
		assert_int_equal(fe_ring_setup(f, q, 256), 0);
		fe_ring_set_interrupts(f, q, false);
	}
	fe_start_opts_default(&o);
	o.features &= ~FE_F_EVENT_IDX;
	assert_int_equal(fe_connect(f, bthread_path(x->t), T_MS), 0);
	assert_int_equal(fe_start(f, &o), 0);
	assert_int_equal(bthread_wait(x->t, testdev_all_running, &x->dev, T_MS), 0);
	for (unsigned int q = 0; q < TESTDEV_NUM_QUEUES; q++)
		assert_true(fe_ring_wait_call(f, q, 0) >= 1);
	close_session(x, f, 1);
}

static void test_disconnect_with_chains_held(void **state)
{
	struct fx *x = *state;
	struct fe_start_opts o;
	struct fe *f = open_session(x, true, 0, 0);
	struct testdev_stats st;

	/* Gone with chains in the device's hands: it must give them back. */
	post_writable(f, TESTDEV_Q_HOLD, 4);
	wait_held(x, 4);
	fe_disconnect(f);
	assert_int_equal(bthread_wait_idle(x->t, 1, T_MS), 0);
	testdev_snapshot(&x->dev, &st);
	assert_int_equal(st.held, 0);
	take_used(f, TESTDEV_Q_HOLD, 4, 0);

	/* And the same guest goes on from there. */
	assert_int_equal(fe_connect(f, bthread_path(x->t), T_MS), 0);
	fe_start_opts_default(&o);
	assert_int_equal(fe_start(f, &o), 0);
	post_writable(f, TESTDEV_Q_HOLD, 2);
	wait_held(x, 2);
	assert_int_equal(bthread_exec(x->t, testdev_release, &x->dev), 0);
	take_used(f, TESTDEV_Q_HOLD, 2, 0);
	assert_int_equal(testdev_fe_xform(f, 10, NULL, 4, T_MS), 0);
	close_session(x, f, 2);
}

#define XT(name, c)                                                                                \
	{                                                                                          \
		name, test_transfer, fx_setup, fx_teardown, (void *)(c)                            \
	}
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    XT("transfer direct", &c_direct),
	    XT("transfer direct event_idx", &c_direct_ev),
	    XT("transfer split", &c_split),
	    XT("transfer split event_idx", &c_split_ev),
	    XT("transfer split to 64 descriptors", &c_split_max),
	    XT("transfer indirect", &c_indirect),
	    XT("transfer indirect event_idx", &c_indirect_ev),
	    XT("transfer indirect split", &c_indirect_split),
	    XT("transfer wrap event_idx", &c_wrap),
	    XT("transfer wrap", &c_wrap_noev),
	    XT("transfer ring of 1", &c_size1),
	    XT("transfer ring of 2", &c_size2),
	    XT("transfer ring of 1024", &c_size1024),
	    T(test_queue_size_limit),
	    T(test_notifications),
	    T(test_notifications_event_idx),
	    T(test_notify_on_empty),
	    T(test_get_vring_base_with_held_chains),
	    T(test_restart_finds_waiting_buffers),
	    T(test_start_signals),
	    T(test_disconnect_with_chains_held),
	};

	if (!getenv("VDC_TEST_VERBOSE"))
		vlog_set_level(VLOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
