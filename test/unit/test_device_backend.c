/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The device behind a real vhost-user backend: bus-off reaches the
 * frontend as CONFIG_CHANGE_MSG on the backend channel, and GET_CONFIG
 * answers the status the device holds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "device.h"
#include "tfd.h"
#include "vhost-user/vhost_user.h"
#include "virtio_can.h"
#include "vhost-user/vu_backend.h"
#include "vhost-user/vu_msg.h"

static int ok_send(void *port, const struct cframe *f, unsigned int n, int *res)
{
	(void)port;
	(void)f;
	for (unsigned int i = 0; i < n; i++)
		res[i] = 0;
	return 0;
}

static const struct device_port_ops ops = {.send = ok_send};

struct rig {
	struct device *d;
	struct vu_backend *b;
	int front; /* our end of the vhost-user connection */
	int before_fds;
};

static void rig_open(struct rig *r)
{
	struct device_config cfg = {.name = "can-backend-test"};
	int sv[2];

	r->before_fds = tfd_count();
	assert_int_equal(device_new(&r->d, &cfg, &ops, NULL), 0);
	assert_int_equal(vu_backend_new(&r->b, device_vu_device(r->d)), 0);
	device_set_backend(r->d, r->b);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(vu_backend_attach(r->b, sv[1]), 0);
	r->front = sv[0];
}

static void rig_close(struct rig *r)
{
	vu_backend_free(r->b);
	device_free(r->d);
	close(r->front);
	assert_int_equal(tfd_count(), r->before_fds);
}

static void msg_init(struct vu_msg *m, uint32_t request, uint32_t size)
{
	memset(m, 0, sizeof(*m));
	m->hdr.request = request;
	m->hdr.flags = VHOST_USER_VERSION;
	m->hdr.size = size;
}

/* Negotiate BACKEND_REQ and CONFIG, and hand over a backend channel. */
static int open_channel(struct rig *r)
{
	struct vu_msg m;
	int sv[2];

	msg_init(&m, VHOST_USER_SET_PROTOCOL_FEATURES, 8);
	m.payload.u64 =
	    (1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ) | (1ull << VHOST_USER_PROTOCOL_F_CONFIG);
	assert_int_equal(vu_backend_handle_msg(r->b, &m), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	msg_init(&m, VHOST_USER_SET_BACKEND_REQ_FD, 0);
	m.fds[0] = sv[1];
	m.nfds = 1;
	assert_int_equal(vu_backend_handle_msg(r->b, &m), 0);
	return sv[0];
}

static uint16_t read_status(struct rig *r)
{
	struct vu_msg m;

	msg_init(&m, VHOST_USER_GET_CONFIG, VHOST_USER_CONFIG_HDR_SIZE + 2);
	m.payload.config.offset = 0;
	m.payload.config.size = 2;
	assert_int_equal(vu_backend_handle_msg(r->b, &m), 0);
	assert_int_equal(vu_msg_recv(r->front, &m), 0);
	assert_int_equal(m.hdr.request, VHOST_USER_GET_CONFIG);
	assert_int_equal(m.hdr.size, VHOST_USER_CONFIG_HDR_SIZE + 2);
	return (uint16_t)(m.payload.config.region[0] | m.payload.config.region[1] << 8);
}

static void test_bus_off_sends_config_change(void **state)
{
	struct rig r;
	struct vhost_user_hdr h;
	int chan;

	(void)state;
	rig_open(&r);
	chan = open_channel(&r);
	assert_int_equal(read_status(&r), 0);
	assert_false(tfd_readable(chan, 0));

	device_bus_off(r.d);
	assert_true(tfd_readable(chan, 0));
	assert_int_equal(recv(chan, &h, sizeof(h), MSG_DONTWAIT), sizeof(h));
	assert_int_equal(h.request, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
	assert_int_equal(h.flags & VHOST_USER_VERSION_MASK, VHOST_USER_VERSION);
	assert_int_equal(h.size, 0);
	/* Nothing more: one message per bus-off. */
	assert_false(tfd_readable(chan, 0));
	/* The driver reads the config space after the message. */
	assert_int_equal(read_status(&r), VIRTIO_CAN_S_CTRL_BUSOFF);

	close(chan);
	rig_close(&r);
}

/* Without a backend channel bus-off still happens; nothing is sent. */
static void test_bus_off_without_channel(void **state)
{
	struct rig r;
	struct device_stats s;

	(void)state;
	rig_open(&r);
	device_bus_off(r.d);
	assert_int_equal(device_status(r.d), VIRTIO_CAN_S_CTRL_BUSOFF);
	device_get_stats(r.d, &s);
	assert_int_equal(s.busoff_events, 1);
	assert_false(tfd_readable(r.front, 0));
	assert_true(vu_backend_connected(r.b));
	rig_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bus_off_sends_config_change),
	    cmocka_unit_test(test_bus_off_without_channel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
