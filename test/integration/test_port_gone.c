/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon's answer to a CAN port whose interface went away and came
 * back (CAN_PORT_EV_GONE / _BACK), through its real loop and a real unix
 * socket, with the fake port: GONE is bus-off for the guest (config change,
 * pending requests NOT_OK, TX refused before the port), BACK leaves the
 * bus-off bit for the guest's START to clear, and after START frames pass
 * both ways. The real port's side is tested on vcan (test_vm_hotplug).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fakeport.h"
#include "guest_driver.h"

#define T_MS 5000

struct fx {
	struct fakeport *p;
	struct fakeport_loop *d;
	struct gdrv *c;
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	struct device_config cfg = {
	    .name = "gone-test",
	    .rx_backlog = 16,
	    .tx_ack_timeout_ms = 600000,
	};
	struct gdrv_opts o;

	assert_non_null(x);
	assert_int_equal(fakeport_new(&x->p), 0);
	assert_int_equal(fakeport_loop_start(&x->d, &cfg, x->p), 0);
	gdrv_opts_default(&o);
	assert_int_equal(gdrv_open(&x->c, fakeport_loop_path(x->d), &o, T_MS), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	gdrv_close(x->c);
	assert_int_equal(fakeport_loop_stop(x->d), 0);
	fakeport_free(x->p);
	free(x);
	return 0;
}

static void tx_result(struct gdrv *c, int want_token, uint8_t want)
{
	int token = -1;
	uint8_t result = 0xff;

	assert_int_equal(gdrv_tx_wait(c, T_MS, &token, &result), 1);
	assert_int_equal(token, want_token);
	assert_int_equal(result, want);
}

static void test_gone_then_back(void **state)
{
	struct fx *x = *state;
	const struct cframe a = cf_make(0x100, 0, 2, 1), b = cf_make(0x101, 0, 2, 2);
	const struct cframe bus = cf_make(0x200, 0, 3, 3);
	struct cframe echo, got;
	struct device_stats s;
	int ta;

	assert_true(gdrv_has(x->c, VIRTIO_CAN_F_LATE_TX_ACK));
	assert_int_equal(gdrv_start(x->c, T_MS), VIRTIO_CAN_RESULT_OK);
	ta = gdrv_tx(x->c, &a);
	assert_true(ta >= 0);
	assert_int_equal(fakeport_wait_sent(x->p, 1, T_MS), 0);

	/* Unplugged: the guest is told, the pending request fails. */
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_GONE, NULL), 0);
	assert_int_equal(gdrv_wait_config_change(x->c, T_MS), 0);
	assert_int_equal(gdrv_status(x->c), VIRTIO_CAN_S_CTRL_BUSOFF);
	tx_result(x->c, ta, VIRTIO_CAN_RESULT_NOT_OK);
	/* While gone: refused before the port, bus frames not delivered. */
	assert_int_equal(gdrv_tx_sync(x->c, &b, T_MS), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(fakeport_sent_count(x->p), 1);
	assert_int_equal(fakeport_inject_frames(x->p, &bus, 1), 0);
	assert_int_equal(fakeport_loop_sync(x->d, T_MS), 0);
	assert_int_equal(gdrv_rx(x->c, &got, 0), -ETIMEDOUT);

	/* Back: bus-off stays until the guest's START. */
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_BACK, NULL), 0);
	assert_int_equal(fakeport_loop_sync(x->d, T_MS), 0);
	assert_int_equal(gdrv_status(x->c), VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_int_equal(gdrv_start(x->c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_status(x->c), 0);
	ta = gdrv_tx(x->c, &b);
	assert_int_equal(fakeport_wait_sent(x->p, 2, T_MS), 0);
	assert_int_equal(fakeport_sent(x->p, 1, &echo), 0);
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_TX_DONE, &echo), 0);
	tx_result(x->c, ta, VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_inject_frames(x->p, &bus, 1), 0);
	assert_int_equal(gdrv_rx(x->c, &got, T_MS), 1);
	assert_int_equal(got.id, bus.id);

	assert_int_equal(fakeport_loop_stats(x->d, &s), 0);
	assert_int_equal(s.busoff_events, 1);
	assert_int_equal(s.tx_stopped, 1);
	assert_int_equal(s.tx_ok, 1);
}

/* A second GONE while gone (both interfaces, or an ENODEV after the event) changes nothing. */
static void test_gone_twice(void **state)
{
	struct fx *x = *state;

	assert_int_equal(gdrv_start(x->c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_GONE, NULL), 0);
	assert_int_equal(gdrv_wait_config_change(x->c, T_MS), 0);
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_GONE, NULL), 0);
	assert_int_equal(fakeport_loop_sync(x->d, T_MS), 0);
	assert_int_equal(gdrv_wait_config_change(x->c, 0), -ETIMEDOUT);
	assert_int_equal(gdrv_status(x->c), VIRTIO_CAN_S_CTRL_BUSOFF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_gone_then_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gone_twice, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
