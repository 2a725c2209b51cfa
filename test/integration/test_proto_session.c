/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Whole vhost-user sessions against the real backend (in a thread, on a
 * socket in a temporary directory) with the trivial test device: both
 * message orders and their variants, reconnection, frontends that vanish or
 * misbehave, config space and the backend channel, and fd hygiene.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bthread.h"
#include "fe.h"
#include "testdev.h"
#include "tfd.h"
#include "vhost-user/vlog.h"
#include "vhost-user/vu_msg.h"

#define T_MS 5000

struct fx {
	struct testdev dev;
	struct bthread *t;
	int fds_before;	 /* before the backend existed */
	int fds_running; /* with the backend up and nobody connected */
};

static int fx_setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	x->fds_before = tfd_count();
	testdev_init(&x->dev);
	assert_int_equal(bthread_start(&x->t, &x->dev.dev), 0);
	x->fds_running = tfd_count();
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *x = *state;

	assert_int_equal(bthread_error(x->t), 0);
	bthread_stop(x->t);
	testdev_fini(&x->dev);
	/* Everything the backend and the sessions opened is closed again. */
	assert_int_equal(tfd_count(), x->fds_before);
	free(x);
	return 0;
}

static struct fe *open_session(struct fx *x, const struct fe_start_opts *o)
{
	struct fe *f;

	assert_int_equal(fe_new(&f, NULL), 0);
	assert_int_equal(fe_connect(f, bthread_path(x->t), T_MS), 0);
	assert_int_equal(fe_start(f, o), 0);
	return f;
}

/* A session ended and the backend is back to waiting: nothing of it stays open. */
static void end_session(struct fx *x, struct fe *f, unsigned int sessions)
{
	fe_free(f);
	assert_int_equal(bthread_wait_idle(x->t, sessions, T_MS), 0);
	assert_int_equal(bthread_sessions(x->t), sessions);
	assert_int_equal(tfd_count(), x->fds_running);
}

/* Start, move data, stop; GET_VRING_BASE says how many chains were consumed. */
static void full_session(struct fx *x, const struct fe_start_opts *o)
{
	struct testdev_stats st;
	struct fe *f = open_session(x, o);
	uint16_t base;

	assert_int_equal(fe_num_rings(f), TESTDEV_NUM_QUEUES);
	assert_int_equal(bthread_wait(x->t, testdev_all_running, &x->dev, T_MS), 0);
	assert_int_equal(testdev_fe_xform(f, 40, NULL, 16, T_MS), 0);
	assert_int_equal(fe_stop(f), 0);
	assert_int_equal(fe_ring_get_base(f, TESTDEV_Q_XFORM, &base), 0);
	assert_int_equal(base, 40);
	testdev_snapshot(&x->dev, &st);
	assert_int_equal(st.stops[TESTDEV_Q_XFORM], 1);
	assert_int_equal(st.stops[TESTDEV_Q_HOLD], 1);
	assert_int_equal(st.running, 0);
	assert_int_equal(st.chains[TESTDEV_Q_XFORM], 40);
	assert_int_equal(st.pop_errors, 0);
	assert_int_equal(st.features & FE_F_VERSION_1, FE_F_VERSION_1);
	end_session(x, f, 1);
}

static void test_session_qemu(void **state)
{
	struct fe_start_opts o;

	fe_start_opts_default(&o);
	full_session(*state, &o);
}

static void test_session_cloud_hv(void **state)
{
	struct fe_start_opts o;

	fe_start_opts_default(&o);
	o.order = FE_ORDER_CLOUD_HV;
	full_session(*state, &o);
}

static void test_session_loopback_calls_first(void **state)
{
	struct fe_start_opts o;

	/* The call fds came before the memory: they must still be used. */
	fe_start_opts_default(&o);
	o.call_before_mem = true;
	full_session(*state, &o);
}

static void test_session_add_mem_reg(void **state)
{
	struct fe_start_opts o;

	fe_start_opts_default(&o);
	o.add_mem_reg = true;
	full_session(*state, &o);
}

static void test_session_cloud_hv_add_mem_reg_no_acks(void **state)
{
	struct fe_start_opts o;

	fe_start_opts_default(&o);
	o.order = FE_ORDER_CLOUD_HV;
	o.add_mem_reg = true;
	o.protocol_features &= ~(1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK);
	full_session(*state, &o);
}

static void test_session_without_protocol_features(void **state)
{
	struct fx *x = *state;
	struct fe_start_opts o;
	struct fe *f;
	uint16_t base;

	/* No PROTOCOL_FEATURES: one ring, enabled as soon as it starts. */
	fe_start_opts_default(&o);
	o.features &= ~FE_F_PROTOCOL_FEATURES;
	f = open_session(x, &o);
	assert_int_equal(fe_num_rings(f), 1);
	assert_int_equal(fe_protocol_features(f), 0);
	assert_int_equal(testdev_fe_xform(f, 10, NULL, 4, T_MS), 0);
	assert_int_equal(fe_stop(f), 0);
	assert_int_equal(fe_ring_get_base(f, 0, &base), 0);
	assert_int_equal(base, 10);
	end_session(x, f, 1);
}

static void test_reconnect_again_and_again(void **state)
{
	struct fx *x = *state;

	for (unsigned int i = 1; i <= 4; i++) {
		struct fe_start_opts o;
		struct fe *f;

		fe_start_opts_default(&o);
		o.order = i % 2 ? FE_ORDER_QEMU : FE_ORDER_CLOUD_HV;
		f = open_session(x, &o);
		assert_int_equal(bthread_wait(x->t, testdev_all_running, &x->dev, T_MS), 0);
		assert_int_equal(testdev_fe_xform(f, 5, NULL, 5, T_MS), 0);
		/* Half of them leave without stopping their rings. */
		if (i % 2 == 0)
			assert_int_equal(fe_stop(f), 0);
		end_session(x, f, i);
	}
	{
		struct testdev_stats st;

		testdev_snapshot(&x->dev, &st);
		assert_int_equal(st.starts[TESTDEV_Q_XFORM], 4);
		assert_int_equal(st.stops[TESTDEV_Q_XFORM], 4);
		assert_true(st.resets >= 4);
	}
}

static void test_reconnect_same_guest(void **state)
{
	struct fx *x = *state;
	struct fe_start_opts o;
	struct fe *f;
	uint16_t base;

	fe_start_opts_default(&o);
	f = open_session(x, &o);
	assert_int_equal(testdev_fe_xform(f, 7, NULL, 3, T_MS), 0);
	assert_int_equal(fe_stop(f), 0);
	fe_disconnect(f);
	assert_int_equal(bthread_wait_idle(x->t, 1, T_MS), 0);

	/* The same guest, its rings mid-way: the ring goes on from 7. */
	assert_int_equal(fe_connect(f, bthread_path(x->t), T_MS), 0);
	assert_int_equal(fe_start(f, &o), 0);
	assert_int_equal(testdev_fe_xform(f, 5, NULL, 3, T_MS), 0);
	fe_disconnect(f);
	assert_int_equal(bthread_wait_idle(x->t, 2, T_MS), 0);

	/* Gone without GET_VRING_BASE: the next start uses the used index. */
	assert_int_equal(fe_connect(f, bthread_path(x->t), T_MS), 0);
	assert_int_equal(fe_start(f, &o), 0);
	assert_int_equal(testdev_fe_xform(f, 3, NULL, 3, T_MS), 0);
	assert_int_equal(fe_stop(f), 0);
	assert_int_equal(fe_ring_get_base(f, TESTDEV_Q_XFORM, &base), 0);
	assert_int_equal(base, 15);
	end_session(x, f, 3);
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

static void test_memory_change_mid_session(void **state)
{
	struct fx *x = *state;
	struct held_want w = {&x->dev, 2};
	struct fe_start_opts o;
	struct fe *f;
	uint32_t id, len;
	uint16_t base;

	fe_start_opts_default(&o);
	o.add_mem_reg = true;
	f = open_session(x, &o);
	assert_int_equal(testdev_fe_xform(f, 5, NULL, 5, T_MS), 0);
	/* Two chains in the device's hands while the memory changes. */
	for (int i = 0; i < 2; i++) {
		struct fe_sg in = {.len = 16};

		assert_non_null(fe_alloc(f, 16, 8, &in.gpa));
		assert_int_equal(fe_ring_add(f, TESTDEV_Q_HOLD, NULL, 0, &in, 1, NULL, NULL), 0);
	}
	assert_int_equal(fe_ring_kick(f, TESTDEV_Q_HOLD, false), 1);
	assert_int_equal(bthread_wait(x->t, holding, &w, T_MS), 0);

	/* A whole new table (QEMU after a hotplug): given back, then running again. */
	assert_int_equal(fe_set_mem_table(f), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(fe_ring_get_used(f, TESTDEV_Q_HOLD, &id, &len), 1);
		assert_int_equal(len, 0);
	}
	assert_int_equal(testdev_fe_xform(f, 5, NULL, 5, T_MS), 0);

	/* One region away and back (the rings live partly in it). */
	assert_int_equal(fe_rem_mem_reg(f, 1), 0);
	assert_int_equal(fe_add_mem_reg(f, 1), 0);
	assert_int_equal(testdev_fe_xform(f, 5, NULL, 5, T_MS), 0);
	assert_int_equal(fe_stop(f), 0);
	assert_int_equal(fe_ring_get_base(f, TESTDEV_Q_XFORM, &base), 0);
	assert_int_equal(base, 15);
	end_session(x, f, 1);
}

/* A frontend that sent a few messages and went away, in several ways. */
static void vanish(struct fx *x, unsigned int how)
{
	struct fe *f;
	uint64_t v;

	assert_int_equal(fe_new(&f, NULL), 0);
	assert_int_equal(fe_connect(f, bthread_path(x->t), T_MS), 0);
	assert_int_equal(fe_get_features(f, &v), 0);
	assert_int_equal(fe_set_owner(f), 0);
	if (how >= 1) {
		assert_int_equal(fe_set_features(f, FE_F_VERSION_1), 0);
		assert_int_equal(fe_set_mem_table(f), 0);
	}
	if (how >= 2) {
		/* One ring running (no PROTOCOL_FEATURES: enabled at once), no call fd. */
		assert_int_equal(fe_ring_setup(f, 0, 64), 0);
		assert_int_equal(fe_ring_set_num(f, 0), 0);
		assert_int_equal(fe_ring_set_addr(f, 0), 0);
		assert_int_equal(fe_ring_set_kick(f, 0), 0);
	}
	if (how >= 3) {
		/* Half a message: a header promising a payload that never comes. */
		struct vhost_user_hdr h = {
		    .request = VHOST_USER_SET_VRING_NUM, .flags = 1, .size = 8};

		assert_int_equal(fe_send_raw(f, &h, NULL, 0, NULL, 0), 0);
	}
	fe_free(f);
}

static void test_vanished_mid_handshake(void **state)
{
	struct fx *x = *state;
	struct fe_start_opts o;

	for (unsigned int how = 0; how < 4; how++) {
		vanish(x, how);
		assert_int_equal(bthread_wait_idle(x->t, how + 1, T_MS), 0);
		assert_int_equal(tfd_count(), x->fds_running);
	}
	/* The next frontend gets a working backend. */
	fe_start_opts_default(&o);
	{
		struct fe *f = open_session(x, &o);

		assert_int_equal(testdev_fe_xform(f, 8, NULL, 8, T_MS), 0);
		end_session(x, f, 5);
	}
}

static void test_protocol_error_ends_connection_only(void **state)
{
	struct fx *x = *state;
	struct fe_start_opts o;
	struct fe *f;
	uint64_t v;

	fe_start_opts_default(&o);
	f = open_session(x, &o);
	/* An unknown request: the backend hangs up, sends nothing. */
	assert_int_equal(fe_send(f, 200, 0, NULL, 0, NULL, 0), 0);
	assert_int_equal(fe_wait_closed(f, T_MS), 0);
	end_session(x, f, 1);

	/* A reply flag on a request. */
	assert_int_equal(fe_new(&f, NULL), 0);
	assert_int_equal(fe_connect(f, bthread_path(x->t), T_MS), 0);
	assert_int_equal(
	    fe_send(f, VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_MASK, NULL, 0, NULL, 0), 0);
	assert_int_equal(fe_wait_closed(f, T_MS), 0);
	end_session(x, f, 2);

	/* A bad value with an ack asked for: a failure ack, the connection stays. */
	f = open_session(x, &o);
	assert_true(fe_protocol_features(f) & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
	assert_int_equal(fe_set_features(f, 1ull << 60), -EREMOTEIO);
	assert_int_equal(fe_get_features(f, &v), 0);
	assert_int_equal(testdev_fe_xform(f, 3, NULL, 3, T_MS), 0);
	end_session(x, f, 3);
}

/* ------------------------------------------------------------------------ */
/* Config space */

static void test_get_config_sizes(void **state)
{
	struct fx *x = *state;
	struct fe_start_opts o;
	struct fe *f;
	uint8_t buf[VHOST_USER_MAX_CONFIG_SIZE];

	fe_start_opts_default(&o);
	f = open_session(x, &o);
	assert_true(fe_protocol_features(f) & (1ull << VHOST_USER_PROTOCOL_F_CONFIG));

	/* Every size inside the config space: exactly that many bytes back. */
	for (uint32_t off = 0; off < TESTDEV_CONFIG_SIZE; off++) {
		for (uint32_t size = 1; off + size <= TESTDEV_CONFIG_SIZE; size++) {
			memset(buf, 0xcc, sizeof(buf));
			assert_int_equal(fe_get_config(f, off, buf, size), 0);
			for (uint32_t i = 0; i < size; i++)
				assert_int_equal(buf[i], 0x10 + off + i);
			assert_int_equal(buf[size], 0xcc);
		}
	}

	/* Reaching past it: exactly the size asked, the device's bytes then zeros. */
	for (uint32_t k = 0; k < 3; k++) {
		static const struct {
			uint32_t off, size;
		} past[] = {{0, TESTDEV_CONFIG_SIZE + 1}, {TESTDEV_CONFIG_SIZE, 1}, {4, 200}};

		memset(buf, 0xcc, sizeof(buf));
		assert_int_equal(fe_get_config(f, past[k].off, buf, past[k].size), 0);
		for (uint32_t i = 0; i < past[k].size; i++) {
			uint32_t at = past[k].off + i;

			assert_int_equal(buf[i], at < TESTDEV_CONFIG_SIZE ? 0x10 + at : 0);
		}
	}

	/* SET_CONFIG writes through the device; a read sees it. */
	assert_int_equal(fe_set_config(f, 2, "\xa1\xa2\xa3", 3), 0);
	assert_int_equal(fe_get_config(f, 0, buf, TESTDEV_CONFIG_SIZE), 0);
	assert_memory_equal(buf, "\x10\x11\xa1\xa2\xa3\x15\x16\x17", TESTDEV_CONFIG_SIZE);
	/* Past the end it is refused (with an ack: the connection stays). */
	assert_int_equal(fe_set_config(f, 6, "\x01\x02\x03", 3), -EREMOTEIO);
	assert_int_equal(fe_get_config(f, 6, buf, 2), 0);
	assert_memory_equal(buf, "\x16\x17", 2);
	end_session(x, f, 1);
}

static void test_config_change_message(void **state)
{
	struct fx *x = *state;
	struct fe_start_opts o;
	struct testdev_stats st;
	struct fe *f;
	uint8_t b0;

	fe_start_opts_default(&o);
	f = open_session(x, &o);
	assert_true(fe_backend_channel_fd(f) >= 0);
	assert_int_equal(fe_wait_config_change(f, 0), -ETIMEDOUT);
	assert_int_equal(bthread_exec(x->t, testdev_config_bump, &x->dev), 0);
	assert_int_equal(fe_wait_config_change(f, T_MS), 0);
	assert_int_equal(fe_get_config(f, 0, &b0, 1), 0);
	assert_int_equal(b0, 0x11);
	/* Twice: the channel stays usable. */
	assert_int_equal(bthread_exec(x->t, testdev_config_bump, &x->dev), 0);
	assert_int_equal(fe_wait_config_change(f, T_MS), 0);
	testdev_snapshot(&x->dev, &st);
	assert_int_equal(st.config_changed, 0);
	end_session(x, f, 1);

	/* Without BACKEND_REQ there is nobody to tell. */
	fe_start_opts_default(&o);
	o.protocol_features &= ~(1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ);
	f = open_session(x, &o);
	assert_int_equal(fe_backend_channel_fd(f), -1);
	assert_int_equal(bthread_exec(x->t, testdev_config_bump, &x->dev), 0);
	testdev_snapshot(&x->dev, &st);
	assert_int_equal(st.config_changed, -ENOTCONN);
	end_session(x, f, 2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_session_qemu),
	    T(test_session_cloud_hv),
	    T(test_session_loopback_calls_first),
	    T(test_session_add_mem_reg),
	    T(test_session_cloud_hv_add_mem_reg_no_acks),
	    T(test_session_without_protocol_features),
	    T(test_memory_change_mid_session),
	    T(test_reconnect_again_and_again),
	    T(test_reconnect_same_guest),
	    T(test_vanished_mid_handshake),
	    T(test_protocol_error_ends_connection_only),
	    T(test_get_config_sizes),
	    T(test_config_change_message),
	};

	/* Errors the tests provoke are logged; keep the output readable. */
	if (!getenv("VDC_TEST_VERBOSE"))
		vlog_set_level(VLOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
