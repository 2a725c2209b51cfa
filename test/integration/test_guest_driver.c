/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The guest virtio-can driver of the test client (gdrv) against the real
 * backend and device, with a port that only records: the driver's own
 * behaviour (buffers, reposting, result bytes, reconnection).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bthread.h"
#include "guest_driver.h"
#include "device.h"

#define T_MS 5000

struct rec_port {
	pthread_mutex_t lock;
	struct cframe sent[64];
	unsigned int nsent;
};

static int rec_send(void *p, const struct cframe *f, unsigned int n, int *res)
{
	struct rec_port *r = p;

	pthread_mutex_lock(&r->lock);
	for (unsigned int i = 0; i < n; i++) {
		if (r->nsent < 64)
			r->sent[r->nsent++] = f[i];
		res[i] = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static int rec_ok(void *p)
{
	(void)p;
	return 0;
}

static int rec_confirm(void *p, bool on)
{
	(void)p;
	(void)on;
	return 0;
}

static const struct device_port_ops rec_ops = {
	.send = rec_send, .start = rec_ok, .stop = rec_ok, .set_tx_confirm = rec_confirm};

struct fx {
	struct rec_port port;
	struct device *dev;
	struct bthread *bkt;
	struct gdrv *can;
};

static int setup(void **state)
{
	struct device_config cfg = {.name = "t", .fd = true, .rx_backlog = 16,
				 .tx_ack_timeout_ms = 1000};
	struct gdrv_opts o;
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	pthread_mutex_init(&x->port.lock, NULL);
	assert_int_equal(device_new(&x->dev, &cfg, &rec_ops, &x->port), 0);
	assert_int_equal(bthread_start(&x->bkt, device_vu_device(x->dev)), 0);
	gdrv_opts_default(&o);
	o.can_features &= ~(1ull << VIRTIO_CAN_F_LATE_TX_ACK);
	assert_int_equal(gdrv_open(&x->can, bthread_path(x->bkt), &o, T_MS), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	gdrv_close(x->can);
	bthread_stop(x->bkt);
	device_free(x->dev);
	pthread_mutex_destroy(&x->port.lock);
	free(x);
	return 0;
}

static void test_features_and_buffers(void **state)
{
	struct fx *x = *state;

	assert_true(gdrv_has(x->can, VIRTIO_CAN_F_CAN_CLASSIC));
	assert_true(gdrv_has(x->can, VIRTIO_CAN_F_CAN_FD));
	assert_true(gdrv_has(x->can, VIRTIO_CAN_F_RTR_FRAMES));
	assert_false(gdrv_has(x->can, VIRTIO_CAN_F_LATE_TX_ACK));
	assert_int_equal(gdrv_rx_posted(x->can), 256);
	assert_int_equal(gdrv_status(x->can), 0);
}

static void test_tx(void **state)
{
	struct fx *x = *state;
	struct cframe f = {.id = 0x123, .len = 4, .data = {0xde, 0xad, 0xbe, 0xef}};
	struct cframe fd = {.id = 0x1abcdef, .flags = CFRAME_EXT | CFRAME_FD, .len = 12};
	struct virtio_can_hdr bad = {.msg_type = VIRTIO_CAN_TX, .length = 1, .can_id = 0x800};

	for (int i = 0; i < 12; i++)
		fd.data[i] = (uint8_t)i;
	/* Stopped: refused. */
	assert_int_equal(gdrv_tx_sync(x->can, &f, T_MS), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(gdrv_start(x->can, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_tx_sync(x->can, &f, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_tx_sync(x->can, &fd, T_MS), VIRTIO_CAN_RESULT_OK);
	/* A standard id above 0x7ff: refused by the device, never sent. */
	assert_true(gdrv_tx_raw(x->can, &bad, "x", 1) >= 0);
	{
		int token;
		uint8_t result;

		assert_int_equal(gdrv_tx_wait(x->can, T_MS, &token, &result), 1);
		assert_int_equal(result, VIRTIO_CAN_RESULT_NOT_OK);
	}
	assert_int_equal(gdrv_tx_pending(x->can), 0);
	pthread_mutex_lock(&x->port.lock);
	assert_int_equal(x->port.nsent, 2);
	assert_int_equal(x->port.sent[0].id, 0x123);
	assert_memory_equal(x->port.sent[0].data, f.data, 4);
	assert_int_equal(x->port.sent[1].flags & (CFRAME_EXT | CFRAME_FD), CFRAME_EXT | CFRAME_FD);
	assert_memory_equal(x->port.sent[1].data, fd.data, 12);
	pthread_mutex_unlock(&x->port.lock);
	assert_int_equal(gdrv_stop(x->can, T_MS), VIRTIO_CAN_RESULT_OK);
}

static void test_rx_and_repost(void **state)
{
	struct fx *x = *state;
	struct cframe in[3], got;
	uint32_t used;

	in[0] = (struct cframe){.id = 0x7ff, .len = 8, .data = {1, 2, 3, 4, 5, 6, 7, 8}};
	in[1] = (struct cframe){.id = 0x10, .flags = CFRAME_RTR, .len = 3};
	in[2] = (struct cframe){.id = 0x1fffffff, .flags = CFRAME_EXT | CFRAME_FD, .len = 64};
	memset(in[2].data, 0x5a, 64);
	assert_int_equal(gdrv_start(x->can, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(bthread_device_rx(x->bkt, x->dev, in, 3), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(gdrv_rx(x->can, &got, T_MS), 1);
		assert_int_equal(got.id, in[i].id);
		assert_int_equal(got.flags, in[i].flags);
		assert_int_equal(got.len, in[i].len);
		if (!(got.flags & CFRAME_RTR))
			assert_memory_equal(got.data, in[i].data, got.len);
		gdrv_rx_last(x->can, NULL, &used);
		assert_int_equal(used, VIRTIO_CAN_HDR_SIZE + in[i].len);
		/* Every buffer taken went straight back. */
		assert_int_equal(gdrv_rx_posted(x->can), 256);
	}
	assert_int_equal(gdrv_rx(x->can, &got, 0), -ETIMEDOUT);
}

static void test_reconnect(void **state)
{
	struct fx *x = *state;
	struct cframe f = {.id = 0x42, .len = 1, .data = {9}};

	assert_int_equal(gdrv_start(x->can, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_reconnect(x->can, bthread_path(x->bkt), T_MS), 0);
	/* The device was reset with the old frontend: START again, as the driver does. */
	assert_int_equal(gdrv_tx_sync(x->can, &f, T_MS), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(gdrv_start(x->can, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_tx_sync(x->can, &f, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(bthread_sessions(x->bkt), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_features_and_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_and_repost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
