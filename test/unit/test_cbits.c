/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* A frame's bits on the wire, against frames counted by hand and the known bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cbits.h"

/*
 * Standard id 0, no data: SOF, id, RTR, IDE, r0, DLC are 19 dominant bits
 * and the CRC of all-zero bits is zero: 34 equal bits, a stuff bit after
 * every five (6), then 13 fixed bits. 53 bits, 53 us at 1 Mbit/s.
 */
static void test_classic_all_dominant(void **state)
{
	struct cframe f = {.id = 0, .len = 0};
	struct cbits b;

	(void)state;
	cbits_frame(&f, &b);
	assert_int_equal(b.stuff, 6);
	assert_int_equal(b.nominal, 53);
	assert_int_equal(b.data, 0);
	assert_int_equal(cbits_frame_ns(&f, 1000000, 0), 53000);
	assert_int_equal(cbits_frame_ns(&f, 125000, 0), 53 * 8000);
}

/*
 * CAN FD, standard id 0, no data, BRS: SOF + id + RRS + IDE are 14 dominant
 * bits (stuff after the 5th and 10th), then FDF 1, res 0, BRS 1 (17 bits
 * at the nominal rate so far); ESI 0 and DLC 0000 are five dominant bits
 * (a stuff bit, in the data phase). Data phase: 5 + 1 + stuff count 4 +
 * CRC-17 + 6 fixed stuff bits = 33. Nominal: 17 + 2 + 13 = 32.
 */
static void test_fd_brs_counted_by_hand(void **state)
{
	struct cframe f = {.id = 0, .flags = CFRAME_FD | CFRAME_BRS, .len = 0};
	struct cbits b;

	(void)state;
	cbits_frame(&f, &b);
	assert_int_equal(b.stuff, 3);
	assert_int_equal(b.nominal, 32);
	assert_int_equal(b.data, 33);
	assert_int_equal(cbits_frame_ns(&f, 500000, 2000000), 32 * 2000 + 33 * 500);
	/* Without BRS everything is nominal: 22 + 3 + 27 + 13. */
	f.flags = CFRAME_FD;
	cbits_frame(&f, &b);
	assert_int_equal(b.nominal, 65);
	assert_int_equal(b.data, 0);
	/*
	 * More than 16 bytes: CRC-21 and 7 fixed stuff bits. With 0x55 data
	 * nothing after BRS is stuffed, so 20 bytes take 4 * 8 + 4 + 1 bits
	 * more than 16 in the data phase, and the same nominal bits.
	 */
	{
		struct cframe f16 = {.id = 0x123, .flags = CFRAME_FD | CFRAME_BRS, .len = 16};
		struct cframe f20 = f16;
		struct cbits b16, b20;

		f20.len = 20;
		memset(f16.data, 0x55, sizeof(f16.data));
		memset(f20.data, 0x55, sizeof(f20.data));
		cbits_frame(&f16, &b16);
		cbits_frame(&f20, &b20);
		assert_int_equal(b20.nominal, b16.nominal);
		assert_int_equal(b20.data, b16.data + 4 * 8 + 4 + 1);
	}
}

/*
 * Without stuffing, the textbook lengths (with the 3-bit inter-frame
 * space): standard 47 + 8n, extended 67 + 8n; with it, at most one stuff
 * bit per 4 of the 34 (54) + 8n stuffed bits. Random frames stay within.
 */
static void test_bounds(void **state)
{
	(void)state;
	srand(1);
	for (int k = 0; k < 20000; k++) {
		struct cframe f = {.len = (uint8_t)(rand() % 9)};
		bool ext = rand() & 1;
		unsigned int base, stuffed, total;
		struct cbits b;

		f.flags = ext ? CFRAME_EXT : 0;
		f.id = (uint32_t)rand() & (ext ? 0x1fffffffu : 0x7ffu);
		for (unsigned int i = 0; i < f.len; i++)
			f.data[i] = (uint8_t)rand();
		cbits_frame(&f, &b);
		base = (ext ? 67 : 47) + 8u * f.len;
		stuffed = (ext ? 54 : 34) + 8u * f.len;
		total = b.nominal;
		assert_int_equal(total - b.stuff, base);
		assert_true(b.stuff <= (stuffed - 1) / 4);
	}
	/* The classic figures: 8 bytes are 111 (std) and 131 (ext) bits unstuffed. */
	{
		struct cframe s8 = {.id = 0x555, .len = 8},
			      e8 = {.id = 0x5555555, .flags = CFRAME_EXT, .len = 8};
		struct cbits b;

		memset(s8.data, 0x55, 8);
		memset(e8.data, 0x55, 8);
		cbits_frame(&s8, &b);
		assert_int_equal(b.nominal - b.stuff, 111);
		cbits_frame(&e8, &b);
		assert_int_equal(b.nominal - b.stuff, 131);
	}
}

/* A remote request has no data field whatever its DLC. */
static void test_rtr(void **state)
{
	struct cframe r = {.id = 0x123, .flags = CFRAME_RTR, .len = 8};
	struct cframe d0 = {.id = 0x123, .len = 0};
	struct cbits br, bd;

	(void)state;
	cbits_frame(&r, &br);
	cbits_frame(&d0, &bd);
	assert_int_equal(br.nominal - br.stuff, bd.nominal - bd.stuff);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_classic_all_dominant),
	    cmocka_unit_test(test_fd_brs_counted_by_hand),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_rtr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
