/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* virtio-can frame checks and conversion, without queues. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "device_frame.h"

#define ALL_TYPES (DEVICE_F_CLASSIC | DEVICE_F_FD | DEVICE_F_RTR)

static void test_fd_len_valid(void **state)
{
	unsigned int ok = 0;

	(void)state;
	for (unsigned int len = 0; len <= 70; len++)
		if (device_fd_len_valid(len))
			ok++;
	/* 0..8 and 12, 16, 20, 24, 32, 48, 64. */
	assert_int_equal(ok, 9 + 7);
	assert_true(device_fd_len_valid(8));
	assert_true(device_fd_len_valid(12));
	assert_true(device_fd_len_valid(64));
	assert_false(device_fd_len_valid(9));
	assert_false(device_fd_len_valid(63));
	assert_false(device_fd_len_valid(65));
	assert_false(device_fd_len_valid(0xffff));
}

/* Encoding writes little-endian at the spec's offsets and decodes back. */
static void test_hdr_layout(void **state)
{
	struct device_hdr h = {
	    .msg_type = 0x0101, .length = 0x0840, .flags = 0x12345678, .can_id = 0x0abcdef1};
	struct device_hdr back;
	uint8_t raw[VIRTIO_CAN_HDR_SIZE];
	const uint8_t want[VIRTIO_CAN_HDR_SIZE] = {0x01, 0x01, 0x40, 0x08, 0,	 0,    0,    0,
						   0x78, 0x56, 0x34, 0x12, 0xf1, 0xde, 0xbc, 0x0a};

	(void)state;
	memset(raw, 0xee, sizeof(raw));
	device_hdr_encode(&h, raw);
	assert_memory_equal(raw, want, sizeof(want));
	device_hdr_decode(raw, &back);
	assert_int_equal(back.msg_type, h.msg_type);
	assert_int_equal(back.length, h.length);
	assert_int_equal(back.flags, h.flags);
	assert_int_equal(back.can_id, h.can_id);
}

/* Reserved fields of a TX header are ignored, not taken as flags or length. */
static void test_hdr_reserved_ignored(void **state)
{
	uint8_t raw[VIRTIO_CAN_HDR_SIZE] = {0x01, 0x00, 0x02, 0x00, 0xff, 0xff, 0xff, 0xff,
					    0x00, 0x00, 0x00, 0x00, 0x23, 0x01, 0x00, 0x00};
	struct device_hdr h;

	(void)state;
	device_hdr_decode(raw, &h);
	assert_int_equal(h.msg_type, VIRTIO_CAN_TX);
	assert_int_equal(h.length, 2);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.can_id, 0x123);
	assert_null(device_tx_check(&h, ALL_TYPES));
}

static void test_tx_check_boundaries(void **state)
{
	struct device_hdr h = {.msg_type = VIRTIO_CAN_TX};

	(void)state;
	h.can_id = 0x7ff;
	assert_null(device_tx_check(&h, ALL_TYPES));
	h.can_id = 0x800;
	assert_non_null(device_tx_check(&h, ALL_TYPES));
	h.flags = VIRTIO_CAN_FLAGS_EXTENDED;
	assert_null(device_tx_check(&h, ALL_TYPES));
	h.can_id = 0x1fffffff;
	assert_null(device_tx_check(&h, ALL_TYPES));
	h.can_id = 0x20000000;
	assert_non_null(device_tx_check(&h, ALL_TYPES));
	h.can_id = 1;
	h.length = 8;
	assert_null(device_tx_check(&h, ALL_TYPES));
	h.length = 9;
	assert_non_null(device_tx_check(&h, ALL_TYPES));
	h.flags |= VIRTIO_CAN_FLAGS_FD;
	assert_non_null(device_tx_check(&h, ALL_TYPES));
	h.length = 48;
	assert_null(device_tx_check(&h, ALL_TYPES));
}

static void test_tx_to_cframe_flags(void **state)
{
	struct device_hdr h = {.msg_type = VIRTIO_CAN_TX,
			    .length = 12,
			    .can_id = 0x1234567,
			    .flags = VIRTIO_CAN_FLAGS_EXTENDED | VIRTIO_CAN_FLAGS_FD};
	struct cframe f;

	(void)state;
	memset(&f, 0xee, sizeof(f));
	device_tx_to_cframe(&h, &f);
	assert_int_equal(f.id, 0x1234567);
	assert_int_equal(f.len, 12);
	assert_int_equal(f.flags, CFRAME_EXT | CFRAME_FD | CFRAME_BRS);
	for (unsigned int i = 0; i < CFRAME_MAX_DATA; i++)
		assert_int_equal(f.data[i], 0);

	h.flags = VIRTIO_CAN_FLAGS_RTR;
	h.length = 3;
	h.can_id = 0x12;
	device_tx_to_cframe(&h, &f);
	assert_int_equal(f.flags, CFRAME_RTR);
	assert_int_equal(f.len, 3);
}

static void test_rx_encode(void **state)
{
	struct cframe f = {
	    .id = 0x1abcdef, .flags = CFRAME_EXT | CFRAME_FD | CFRAME_BRS | CFRAME_ESI, .len = 16};
	uint8_t buf[VIRTIO_CAN_HDR_SIZE + CFRAME_MAX_DATA];
	struct device_hdr h;

	(void)state;
	for (unsigned int i = 0; i < 16; i++)
		f.data[i] = (uint8_t)(0xa0 + i);
	assert_int_equal(device_rx_encode(&f, buf), 32);
	device_hdr_decode(buf, &h);
	assert_int_equal(h.msg_type, VIRTIO_CAN_RX);
	assert_int_equal(h.length, 16);
	/* BRS and ESI have no virtio flag. */
	assert_int_equal(h.flags, VIRTIO_CAN_FLAGS_EXTENDED | VIRTIO_CAN_FLAGS_FD);
	assert_int_equal(h.can_id, 0x1abcdef);
	assert_memory_equal(buf + 16, f.data, 16);

	/* RTR: the DLC as length, zeros as payload. */
	memset(buf, 0xee, sizeof(buf));
	struct cframe r = {.id = 0x55, .flags = CFRAME_RTR, .len = 5};
	memset(r.data, 0x77, sizeof(r.data));
	assert_int_equal(device_rx_encode(&r, buf), 21);
	device_hdr_decode(buf, &h);
	assert_int_equal(h.flags, VIRTIO_CAN_FLAGS_RTR);
	assert_int_equal(h.length, 5);
	for (unsigned int i = 0; i < 5; i++)
		assert_int_equal(buf[16 + i], 0);
}

static void test_rx_check(void **state)
{
	struct cframe f = {.id = 0x7ff, .len = 8};

	(void)state;
	assert_null(device_rx_check(&f, DEVICE_F_CLASSIC));
	assert_non_null(device_rx_check(&f, DEVICE_F_FD));
	f.id = 0x800;
	assert_non_null(device_rx_check(&f, DEVICE_F_CLASSIC));
	f.id = 1;
	f.flags = CFRAME_RTR;
	assert_non_null(device_rx_check(&f, DEVICE_F_CLASSIC));
	assert_null(device_rx_check(&f, DEVICE_F_CLASSIC | DEVICE_F_RTR));
	f.flags = CFRAME_FD;
	f.len = 20;
	assert_non_null(device_rx_check(&f, DEVICE_F_CLASSIC));
	assert_null(device_rx_check(&f, DEVICE_F_FD));
	f.len = 21;
	assert_non_null(device_rx_check(&f, DEVICE_F_FD));
}

static void test_cframe_same(void **state)
{
	struct cframe a = {.id = 0x10, .flags = CFRAME_FD | CFRAME_BRS, .len = 12};
	struct cframe b;

	(void)state;
	memset(a.data, 0x5a, sizeof(a.data));
	b = a;
	assert_true(device_cframe_same(&a, &b));
	/* Bytes past len do not count, nor BRS/ESI. */
	b.data[40] = 0;
	b.flags = CFRAME_FD | CFRAME_ESI;
	assert_true(device_cframe_same(&a, &b));
	b = a;
	b.data[11] ^= 1;
	assert_false(device_cframe_same(&a, &b));
	b = a;
	b.len = 8;
	assert_false(device_cframe_same(&a, &b));
	b = a;
	b.id = 0x11;
	assert_false(device_cframe_same(&a, &b));
	b = a;
	b.flags |= CFRAME_EXT;
	assert_false(device_cframe_same(&a, &b));
	/* RTR payload bytes are not compared. */
	struct cframe r1 = {.id = 3, .flags = CFRAME_RTR, .len = 2, .data = {1, 2}};
	struct cframe r2 = {.id = 3, .flags = CFRAME_RTR, .len = 2, .data = {7, 7}};
	assert_true(device_cframe_same(&r1, &r2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fd_len_valid),
	    cmocka_unit_test(test_hdr_layout),
	    cmocka_unit_test(test_hdr_reserved_ignored),
	    cmocka_unit_test(test_tx_check_boundaries),
	    cmocka_unit_test(test_tx_to_cframe_flags),
	    cmocka_unit_test(test_rx_encode),
	    cmocka_unit_test(test_rx_check),
	    cmocka_unit_test(test_cframe_same),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
