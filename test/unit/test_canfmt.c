/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * canfmt: cansend syntax in (every form, every refusal) and out, candump's
 * default line. Inputs are copied into buffers of their exact size without
 * a NUL, so a read past the end is caught by ASan.
 */
#include <errno.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "canfmt.h"

/* Parse s from a heap copy of exactly strlen(s) bytes. */
static int parse(const char *s, struct cframe *f)
{
	size_t n = strlen(s);
	char *copy = malloc(n ? n : 1);
	int ret;

	assert_non_null(copy);
	memcpy(copy, s, n);
	ret = canfmt_parse(copy, n, f);
	free(copy);
	return ret;
}

static void expect_frame(const char *s, uint32_t id, uint8_t flags, uint8_t len, const char *hex)
{
	struct cframe f;
	uint8_t want[CFRAME_MAX_DATA] = {0};
	size_t nhex = strlen(hex);

	memset(&f, 0xee, sizeof(f));
	assert_int_equal(parse(s, &f), 0);
	assert_int_equal(f.id, id);
	assert_int_equal(f.flags, flags);
	assert_int_equal(f.len, len);
	for (size_t i = 0; i + 2 <= nhex && i / 2 < CFRAME_MAX_DATA; i += 2) {
		char b[3] = {hex[i], hex[i + 1], 0};
		want[i / 2] = (uint8_t)strtoul(b, NULL, 16);
	}
	/* The whole data array is defined: given bytes, then zeros. */
	assert_memory_equal(f.data, want, sizeof(want));
}

static void expect_error(const char *s, int err)
{
	struct cframe f, before;

	memset(&f, 0x5a, sizeof(f));
	memcpy(&before, &f, sizeof(f));
	assert_int_equal(parse(s, &f), -err);
	/* A refused frame leaves *f alone. */
	assert_memory_equal(&f, &before, sizeof(f));
}

static void test_classic(void **state)
{
	(void)state;
	expect_frame("123#DEADBEEF", 0x123, 0, 4, "DEADBEEF");
	expect_frame("123#deadbeef", 0x123, 0, 4, "DEADBEEF");
	expect_frame("000#", 0, 0, 0, "");
	expect_frame("7FF#0011223344556677", 0x7ff, 0, 8, "0011223344556677");
	expect_frame("5AA#", 0x5aa, 0, 0, "");
	expect_frame("1bc#0a", 0x1bc, 0, 1, "0A");
}

static void test_extended(void **state)
{
	(void)state;
	expect_frame("12345678#00", 0x12345678, CFRAME_EXT, 1, "00");
	expect_frame("1FFFFFFF#", 0x1fffffff, CFRAME_EXT, 0, "");
	/* 8 digits make an extended frame even for a small id. */
	expect_frame("00000123#AA", 0x123, CFRAME_EXT, 1, "AA");
	expect_frame("1F334455#1122334455667788", 0x1f334455, CFRAME_EXT, 8, "1122334455667788");
}

static void test_separators(void **state)
{
	(void)state;
	expect_frame("123#11.22.33", 0x123, 0, 3, "112233");
	expect_frame("5A1#11.2233.44556677.88", 0x5a1, 0, 8, "1122334455667788");
	/* As cansend: a '.' may come first and last. */
	expect_frame("123#.11", 0x123, 0, 1, "11");
	expect_frame("123#11.", 0x123, 0, 1, "11");
	expect_frame("123#.", 0x123, 0, 0, "");
	expect_frame("123##1.AA.BB", 0x123, CFRAME_FD | CFRAME_BRS, 2, "AABB");
}

static void test_rtr(void **state)
{
	(void)state;
	expect_frame("123#R", 0x123, CFRAME_RTR, 0, "");
	expect_frame("123#R5", 0x123, CFRAME_RTR, 5, "");
	expect_frame("123#R0", 0x123, CFRAME_RTR, 0, "");
	expect_frame("123#R8", 0x123, CFRAME_RTR, 8, "");
	expect_frame("00000123#R3", 0x123, CFRAME_EXT | CFRAME_RTR, 3, "");
}

static void test_fd(void **state)
{
	(void)state;
	expect_frame("123##1AABB", 0x123, CFRAME_FD | CFRAME_BRS, 2, "AABB");
	expect_frame("123##0", 0x123, CFRAME_FD, 0, "");
	expect_frame("123##2", 0x123, CFRAME_FD | CFRAME_ESI, 0, "");
	expect_frame("123##3FF", 0x123, CFRAME_FD | CFRAME_BRS | CFRAME_ESI, 1, "FF");
	/* 4 is FDF, implied by "##". */
	expect_frame("123##4FF", 0x123, CFRAME_FD, 1, "FF");
	expect_frame("123##7FF", 0x123, CFRAME_FD | CFRAME_BRS | CFRAME_ESI, 1, "FF");
	expect_frame("12345678##0"
		     "00112233445566778899AABBCCDDEEFF"
		     "00112233445566778899AABBCCDDEEFF"
		     "00112233445566778899AABBCCDDEEFF"
		     "00112233445566778899AABBCCDDEEFF",
		     0x12345678, CFRAME_EXT | CFRAME_FD, 64,
		     "00112233445566778899AABBCCDDEEFF"
		     "00112233445566778899AABBCCDDEEFF"
		     "00112233445566778899AABBCCDDEEFF"
		     "00112233445566778899AABBCCDDEEFF");
	expect_frame("123##0001122334455667788", 0x123, CFRAME_FD, 12, "001122334455667788000000");
}

/* Lengths no DLC expresses are padded with zeros up to the next one. */
static void test_fd_rounding(void **state)
{
	static const struct {
		unsigned int in, out;
	} cases[] = {{0, 0},   {8, 8},	 {9, 12},  {12, 12}, {13, 16}, {17, 20}, {21, 24},
		     {25, 32}, {31, 32}, {33, 48}, {47, 48}, {49, 64}, {63, 64}, {64, 64}};
	char s[8 + 2 + 1 + 2 * 64 + 1];

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct cframe f;
		size_t n = (size_t)snprintf(s, sizeof(s), "321##0");

		for (unsigned int i = 0; i < cases[c].in; i++)
			n += (size_t)snprintf(s + n, sizeof(s) - n, "%02X", (i + 1) & 0xff);
		assert_int_equal(parse(s, &f), 0);
		assert_int_equal(f.len, cases[c].out);
		for (unsigned int i = 0; i < cases[c].out; i++)
			assert_int_equal(f.data[i], i < cases[c].in ? i + 1 : 0);
		assert_int_equal(canfmt_fd_len_round(cases[c].in), cases[c].out);
	}
	assert_int_equal(canfmt_fd_len_round(65), 64);
	assert_int_equal(canfmt_fd_len_round(1000), 64);
}

static void test_errors_id(void **state)
{
	(void)state;
	expect_error("", CANFMT_E_EMPTY);
	expect_error("123", CANFMT_E_NO_HASH);
	expect_error("123DEADBEEF", CANFMT_E_NO_HASH);
	expect_error("#", CANFMT_E_ID_FORM);
	expect_error("#00", CANFMT_E_ID_FORM);
	expect_error("12#00", CANFMT_E_ID_FORM);
	expect_error("1234#00", CANFMT_E_ID_FORM);
	expect_error("12345#00", CANFMT_E_ID_FORM); /* CAN XL form */
	expect_error("1234567#00", CANFMT_E_ID_FORM);
	expect_error("123456789#00", CANFMT_E_ID_FORM);
	expect_error("12G#00", CANFMT_E_ID_FORM);
	expect_error(" 12#00", CANFMT_E_ID_FORM);
	expect_error("1234567x#00", CANFMT_E_ID_FORM);
	expect_error("800#00", CANFMT_E_ID_RANGE);
	expect_error("FFF#", CANFMT_E_ID_RANGE);
	expect_error("20000000#00", CANFMT_E_ID_RANGE);
	expect_error("FFFFFFFF#00", CANFMT_E_ID_RANGE);
}

static void test_errors_data(void **state)
{
	(void)state;
	expect_error("123#DEADBEEG", CANFMT_E_HEX);
	expect_error("123#XY", CANFMT_E_HEX);
	expect_error("123#11 22", CANFMT_E_HEX);
	expect_error("123#11..22", CANFMT_E_HEX);
	expect_error("123#11#22", CANFMT_E_HEX);
	expect_error("123#11\n", CANFMT_E_HEX);
	expect_error("123#ABC", CANFMT_E_ODD);
	expect_error("123#A", CANFMT_E_ODD);
	expect_error("123#1.22", CANFMT_E_ODD);
	expect_error("123##1A", CANFMT_E_ODD);
	expect_error("123#001122334455667788", CANFMT_E_TOO_LONG);
	expect_error("123#00.11.22.33.44.55.66.77.8", CANFMT_E_TOO_LONG);
	expect_error("12345678#001122334455667788", CANFMT_E_TOO_LONG);
	expect_error("123##0"
		     "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"
		     "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"
		     "00",
		     CANFMT_E_TOO_LONG);
}

static void test_errors_forms(void **state)
{
	(void)state;
	expect_error("123##", CANFMT_E_FD_FLAGS);
	expect_error("123##G", CANFMT_E_FD_FLAGS);
	expect_error("123##8", CANFMT_E_FD_FLAGS);
	expect_error("123##F00", CANFMT_E_FD_FLAGS);
	expect_error("123##.1", CANFMT_E_FD_FLAGS);
	expect_error("123##R", CANFMT_E_FD_FLAGS);
	expect_error("123##0R", CANFMT_E_HEX);
	expect_error("123#R9", CANFMT_E_RTR_LEN);
	expect_error("123#RF", CANFMT_E_RTR_LEN);
	expect_error("123#R12", CANFMT_E_RTR_LEN);
	expect_error("123#R1x", CANFMT_E_TRAILING);
	expect_error("123#Rx", CANFMT_E_TRAILING);
	expect_error("123#R.", CANFMT_E_TRAILING);
	expect_error("123#r", CANFMT_E_HEX);
	expect_error("123#R8_9", CANFMT_E_RAW_DLC);
	expect_error("123#R_9", CANFMT_E_RAW_DLC);
	expect_error("123#1122334455667788_B", CANFMT_E_RAW_DLC);
	/* Only after 8 bytes, as cansend. */
	expect_error("123#11_B", CANFMT_E_HEX);
}

/* n bytes are all that is read: a NUL or more text beyond them does not count. */
static void test_length_bound(void **state)
{
	const char s[] = "123#DEADBEEF";
	const char nul[] = "123#DE\0AD";
	struct cframe f;

	(void)state;
	assert_int_equal(canfmt_parse(s, 8, &f), 0);
	assert_int_equal(f.len, 2);
	assert_int_equal(f.data[1], 0xad);
	assert_int_equal(canfmt_parse(s, 3, &f), -CANFMT_E_NO_HASH);
	assert_int_equal(canfmt_parse(s, 0, &f), -CANFMT_E_EMPTY);
	assert_int_equal(canfmt_parse(NULL, 4, &f), -CANFMT_E_EMPTY);
	assert_int_equal(canfmt_parse(nul, sizeof(nul) - 1, &f), -CANFMT_E_HEX);
	assert_int_equal(canfmt_parse_str(nul, &f), 0);
	assert_int_equal(f.len, 1);
	assert_int_equal(canfmt_parse_str(NULL, &f), -CANFMT_E_EMPTY);
}

static void test_strerror(void **state)
{
	(void)state;
	for (int e = 1; e < CANFMT_E_MAX; e++) {
		const char *m = canfmt_strerror(-e);

		assert_non_null(m);
		assert_string_equal(m, canfmt_strerror(e));
		assert_string_not_equal(m, "unknown error");
		for (int o = 1; o < e; o++)
			assert_string_not_equal(m, canfmt_strerror(o));
	}
	assert_string_equal(canfmt_strerror(0), "no error");
	assert_string_equal(canfmt_strerror(CANFMT_E_MAX), "unknown error");
	assert_string_equal(canfmt_strerror(-1000), "unknown error");
	assert_string_equal(canfmt_strerror(INT32_MIN), "unknown error");
}

static struct cframe frame(uint32_t id, uint8_t flags, uint8_t len, const uint8_t *data)
{
	struct cframe f = {.id = id, .flags = flags, .len = len};

	if (data)
		memcpy(f.data, data, len < sizeof(f.data) ? len : sizeof(f.data));
	return f;
}

static const uint8_t seq[64] = {
    0xde, 0xad, 0xbe, 0xef, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0xff};

static void expect_view(const struct cframe *f, const char *ifname, unsigned int view,
			const char *want)
{
	char buf[CANFMT_DUMP_MAX];

	assert_int_equal(canfmt_candump(buf, sizeof(buf), ifname, f, view), (int)strlen(want));
	assert_string_equal(buf, want);
}

static void expect_dump(const struct cframe *f, const char *ifname, const char *want)
{
	expect_view(f, ifname, 0, want);
}

static void test_candump(void **state)
{
	struct cframe f;

	(void)state;
	f = frame(0x123, 0, 4, seq);
	expect_dump(&f, "vcan0", "  vcan0  123   [4]  DE AD BE EF");
	expect_dump(&f, "virtio", "  virtio  123   [4]  DE AD BE EF");
	f = frame(0x12345678, CFRAME_EXT, 1, (const uint8_t[]){0});
	expect_dump(&f, "vcan0", "  vcan0  12345678   [1]  00");
	f = frame(0x5, CFRAME_EXT, 0, NULL);
	expect_dump(&f, "can1", "  can1  00000005   [0] ");
	f = frame(0x7ff, 0, 0, NULL);
	expect_dump(&f, "vcan0", "  vcan0  7FF   [0] ");
	f = frame(0x1, 0, 8, seq);
	expect_dump(&f, "vcan0", "  vcan0  001   [8]  DE AD BE EF 04 05 06 07");
	f = frame(0x123, CFRAME_RTR, 5, NULL);
	expect_dump(&f, "vcan0", "  vcan0  123   [5]  remote request");
	f = frame(0x123, CFRAME_RTR | CFRAME_EXT, 0, NULL);
	expect_dump(&f, "vcan0", "  vcan0  00000123   [0]  remote request");
	f = frame(0x123, CFRAME_FD | CFRAME_BRS, 4, seq);
	expect_dump(&f, "vcan0", "  vcan0  123  [04]  DE AD BE EF");
	f = frame(0x123, CFRAME_FD, 0, NULL);
	expect_dump(&f, "vcan0", "  vcan0  123  [00] ");
	f = frame(0x1abcdef0, CFRAME_FD | CFRAME_EXT | CFRAME_ESI, 12, seq);
	expect_dump(&f, "vcan0", "  vcan0  1ABCDEF0  [12]  DE AD BE EF 04 05 06 07 08 09 0A 0B");
	/* A vcan carries FD lengths no DLC expresses: shown as they are. */
	f = frame(0x123, CFRAME_FD, 9, seq);
	expect_dump(&f, "vcan0", "  vcan0  123  [09]  DE AD BE EF 04 05 06 07 08");
}

/* After an extended frame candump moves standard ids into the extended column. */
static void test_candump_indent(void **state)
{
	const unsigned int in = CANFMT_VIEW_INDENT_SFF;
	char buf[CANFMT_DUMP_MAX];
	struct cframe f;

	(void)state;
	f = frame(0x123, 0, 4, seq);
	expect_view(&f, "vcan0", in, "  vcan0       123   [4]  DE AD BE EF");
	f = frame(0x123, CFRAME_FD, 8, seq);
	expect_view(&f, "vcan0", in, "  vcan0       123  [08]  DE AD BE EF 04 05 06 07");
	f = frame(0x321, CFRAME_RTR, 2, NULL);
	expect_view(&f, "vcan0", in, "  vcan0       321   [2]  remote request");
	f = frame(0x7, 0, 0, NULL);
	expect_view(&f, "vcan0", in, "  vcan0       007   [0] ");
	/* Extended ids are where they were. */
	f = frame(0x12345678, CFRAME_EXT, 1, (const uint8_t[]){0});
	expect_view(&f, "vcan0", in, "  vcan0  12345678   [1]  00");
	f = frame(0x123, 0, 0, NULL);
	assert_int_equal(canfmt_candump(buf, sizeof(buf), "vcan0", &f, 0x2), -EINVAL);
	assert_int_equal(canfmt_candump(buf, sizeof(buf), "vcan0", &f, ~0u), -EINVAL);
}

/* The longest line with the longest name fits CANFMT_DUMP_MAX exactly or with room. */
static void test_candump_longest(void **state)
{
	char buf[CANFMT_DUMP_MAX];
	char want[CANFMT_DUMP_MAX];
	struct cframe f = frame(0x1fffffff, CFRAME_EXT | CFRAME_FD, 64, seq);
	const char *name = "abcdefghijklmno";
	size_t n;
	int len;

	(void)state;
	assert_int_equal(strlen(name), CANFMT_DUMP_IFNAME_MAX);
	n = (size_t)snprintf(want, sizeof(want), "  %s  1FFFFFFF  [64] ", name);
	for (unsigned int i = 0; i < 64; i++)
		n += (size_t)snprintf(want + n, sizeof(want) - n, " %02X", seq[i]);
	len = canfmt_candump(buf, sizeof(buf), name, &f, 0);
	assert_int_equal(len, (int)n);
	assert_true(n < sizeof(buf));
	assert_string_equal(buf, want);
}

static void expect_send(const struct cframe *f, const char *want)
{
	char buf[CANFMT_SEND_MAX];
	struct cframe back;

	assert_int_equal(canfmt_cansend(buf, sizeof(buf), f), (int)strlen(want));
	assert_string_equal(buf, want);
	/* What it writes parses back to the same frame. */
	assert_int_equal(canfmt_parse_str(buf, &back), 0);
	assert_int_equal(back.id, f->id);
	assert_int_equal(back.flags, f->flags);
	assert_int_equal(back.len, f->len);
	assert_memory_equal(back.data, f->data, f->len);
}

static void test_cansend_format(void **state)
{
	char want[CANFMT_SEND_MAX];
	struct cframe f;
	size_t n;

	(void)state;
	f = frame(0x123, 0, 4, seq);
	expect_send(&f, "123#DEADBEEF");
	f = frame(0x12345678, CFRAME_EXT, 1, (const uint8_t[]){0});
	expect_send(&f, "12345678#00");
	f = frame(0x0, 0, 0, NULL);
	expect_send(&f, "000#");
	f = frame(0x123, CFRAME_RTR, 0, NULL);
	expect_send(&f, "123#R");
	f = frame(0x123, CFRAME_RTR | CFRAME_EXT, 8, NULL);
	expect_send(&f, "00000123#R8");
	f = frame(0x123, CFRAME_FD, 2, (const uint8_t[]){0xaa, 0xbb});
	expect_send(&f, "123##0AABB");
	f = frame(0x123, CFRAME_FD | CFRAME_BRS, 2, (const uint8_t[]){0xaa, 0xbb});
	expect_send(&f, "123##1AABB");
	f = frame(0x123, CFRAME_FD | CFRAME_ESI, 0, NULL);
	expect_send(&f, "123##2");
	f = frame(0x123, CFRAME_FD | CFRAME_BRS | CFRAME_ESI, 1, seq);
	expect_send(&f, "123##3DE");

	f = frame(0x1fffffff, CFRAME_EXT | CFRAME_FD | CFRAME_BRS | CFRAME_ESI, 64, seq);
	n = (size_t)snprintf(want, sizeof(want), "1FFFFFFF##3");
	for (unsigned int i = 0; i < 64; i++)
		n += (size_t)snprintf(want + n, sizeof(want) - n, "%02X", seq[i]);
	assert_true(n < CANFMT_SEND_MAX);
	expect_send(&f, want);
}

/* Frames that cannot exist are refused by both writers, whatever the buffer. */
static void test_format_invalid(void **state)
{
	const struct cframe bad[] = {
	    frame(0x800, 0, 0, NULL),
	    frame(0x20000000, CFRAME_EXT, 0, NULL),
	    frame(0xffffffff, CFRAME_EXT, 0, NULL),
	    frame(0x123, 0, 9, seq),
	    frame(0x123, CFRAME_RTR, 9, NULL),
	    frame(0x123, CFRAME_FD, 65, seq),
	    frame(0x123, CFRAME_FD, 255, seq),
	    frame(0x123, CFRAME_FD | CFRAME_RTR, 0, NULL),
	    frame(0x123, CFRAME_BRS, 0, NULL),
	    frame(0x123, CFRAME_ESI, 0, NULL),
	    frame(0x123, 0x20, 0, NULL),
	    frame(0x123, 0x80, 0, NULL),
	};
	char buf[CANFMT_DUMP_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(canfmt_valid(&bad[i]));
		assert_int_equal(canfmt_cansend(buf, sizeof(buf), &bad[i]), -EINVAL);
		assert_int_equal(canfmt_candump(buf, sizeof(buf), "vcan0", &bad[i], 0), -EINVAL);
	}
	assert_false(canfmt_valid(NULL));
	assert_int_equal(canfmt_cansend(buf, sizeof(buf), NULL), -EINVAL);
	assert_int_equal(canfmt_candump(buf, sizeof(buf), "vcan0", NULL, 0), -EINVAL);
	assert_int_equal(canfmt_candump(buf, sizeof(buf), NULL, &(struct cframe){0}, 0), -EINVAL);
	assert_int_equal(canfmt_cansend(NULL, 10, &(struct cframe){0}), -EINVAL);
}

/* Every buffer too small gives -ENOSPC, an empty string, and no write past its size. */
static void test_small_buffers(void **state)
{
	struct cframe f = frame(0x1abcdef0, CFRAME_EXT | CFRAME_FD, 16, seq);
	char full[CANFMT_DUMP_MAX];
	char buf[CANFMT_DUMP_MAX + 1];
	int need_dump, need_send;

	(void)state;
	need_dump = canfmt_candump(full, sizeof(full), "vcan0", &f, 0);
	assert_true(need_dump > 0);
	for (size_t size = 0; size <= (size_t)need_dump; size++) {
		memset(buf, 'x', sizeof(buf));
		assert_int_equal(canfmt_candump(buf, size, "vcan0", &f, 0), -ENOSPC);
		if (size > 0)
			assert_int_equal(buf[0], '\0');
		for (size_t i = size; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 'x');
	}
	assert_int_equal(canfmt_candump(buf, (size_t)need_dump + 1, "vcan0", &f, 0), need_dump);
	assert_string_equal(buf, full);

	need_send = canfmt_cansend(full, sizeof(full), &f);
	assert_true(need_send > 0);
	for (size_t size = 0; size <= (size_t)need_send; size++) {
		memset(buf, 'x', sizeof(buf));
		assert_int_equal(canfmt_cansend(buf, size, &f), -ENOSPC);
		for (size_t i = size; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 'x');
	}
	assert_int_equal(canfmt_cansend(buf, (size_t)need_send + 1, &f), need_send);
	assert_string_equal(buf, full);
}

/*
 * Every frame the parser accepts is valid and writes back to text that
 * parses to the same frame: checked over a sweep of generated inputs.
 */
static void test_parse_sweep(void **state)
{
	static const char alphabet[] = "0123456789AaFf#R._xG \0";
	char s[12];
	unsigned int accepted = 0;

	(void)state;
	/* Every 6-character string over a small alphabet after a fixed id. */
	memcpy(s, "1A5#", 4);
	for (unsigned long k = 0; k < 22ul * 22 * 22 * 22; k++) {
		unsigned long v = k;
		size_t n = 4;
		struct cframe f, back;
		char out[CANFMT_SEND_MAX];

		for (int d = 0; d < 4; d++, v /= 22)
			s[n++] = alphabet[v % 22];
		if (canfmt_parse(s, n, &f) != 0)
			continue;
		accepted++;
		assert_true(canfmt_valid(&f));
		assert_true(canfmt_cansend(out, sizeof(out), &f) > 0);
		assert_int_equal(canfmt_parse_str(out, &back), 0);
		assert_int_equal(back.id, f.id);
		assert_int_equal(back.flags, f.flags);
		assert_int_equal(back.len, f.len);
		assert_memory_equal(back.data, f.data, sizeof(f.data));
	}
	assert_true(accepted > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_classic),
	    cmocka_unit_test(test_extended),
	    cmocka_unit_test(test_separators),
	    cmocka_unit_test(test_rtr),
	    cmocka_unit_test(test_fd),
	    cmocka_unit_test(test_fd_rounding),
	    cmocka_unit_test(test_errors_id),
	    cmocka_unit_test(test_errors_data),
	    cmocka_unit_test(test_errors_forms),
	    cmocka_unit_test(test_length_bound),
	    cmocka_unit_test(test_strerror),
	    cmocka_unit_test(test_candump),
	    cmocka_unit_test(test_candump_indent),
	    cmocka_unit_test(test_candump_longest),
	    cmocka_unit_test(test_cansend_format),
	    cmocka_unit_test(test_format_invalid),
	    cmocka_unit_test(test_small_buffers),
	    cmocka_unit_test(test_parse_sweep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
