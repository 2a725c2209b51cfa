/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* CAN id filters: candump's syntax, its limits and garbage, and the match. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cfilt.h"

static struct cframe std_frame(uint32_t id)
{
	struct cframe f = {.id = id, .flags = 0, .len = 0};

	return f;
}

static struct cframe ext_frame(uint32_t id)
{
	struct cframe f = {.id = id, .flags = CFRAME_EXT, .len = 0};

	return f;
}

static void test_parse_forms(void **state)
{
	struct cfilt f;
	char why[160];

	(void)state;
	assert_int_equal(cfilt_parse(&f, "123:7ff", why, sizeof(why)), 0);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.rule[0].id, 0x123);
	assert_int_equal(f.rule[0].mask, 0x7ff);
	assert_false(f.rule[0].inverted);
	/* 0x optional, upper case, inverted, several. */
	assert_int_equal(cfilt_parse(&f, "0x123:0X7FF,200~700,0x1f", why, sizeof(why)), -EINVAL);
	assert_int_equal(cfilt_parse(&f, "0x123:0X7FF,200~700", why, sizeof(why)), 0);
	assert_int_equal(f.n, 2);
	assert_true(f.rule[1].inverted);
	assert_int_equal(f.rule[1].id, 0x200);
	assert_int_equal(f.rule[1].mask, 0x700);
	/* 8 digits: extended, as candump. */
	assert_int_equal(cfilt_parse(&f, "00000123:1fffffff", why, sizeof(why)), 0);
	assert_int_equal(f.rule[0].id, CFILT_EFF | 0x123);
	assert_int_equal(f.rule[0].mask, 0x1fffffff);
	/* Flags written out. */
	assert_int_equal(cfilt_parse(&f, "80000123:C0000000", why, sizeof(why)), 0);
	assert_int_equal(f.rule[0].id, CFILT_EFF | 0x123);
	assert_int_equal(f.rule[0].mask, CFILT_EFF | CFILT_RTR);
}

static void test_parse_limits_and_garbage(void **state)
{
	static const struct {
		const char *text;
		const char *why;
	} bad[] = {
	    {"", "empty"},
	    {"123", "'123': not id:mask or id~mask"},
	    {"123:", "'123:': the mask"},
	    {":7ff", "':7ff': the id"},
	    {"123456789:7ff", "the id is not a hex number"},
	    {"12g:7ff", "'12g:7ff': the id"},
	    {"123:7fz", "the mask"},
	    {"0x:7ff", "the id"},
	    {"20000000:0", "error flag"},
	    {"123:20000000", "error flag"},
	    {"123:7ff,", "an empty entry"},
	    {",123:7ff", "an empty entry"},
	    {"123:7ff,,1:1", "an empty entry"},
	    {"123 :7ff", "the id"},
	};
	char text[64 * 10 + 16], why[160];
	struct cfilt f;
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cfilt_parse(&f, bad[i].text, why, sizeof(why)), -EINVAL);
		if (!strstr(why, bad[i].why))
			fail_msg("'%s': want '%s' in '%s'", bad[i].text, bad[i].why, why);
	}
	assert_int_equal(cfilt_parse(&f, NULL, why, sizeof(why)), -EINVAL);
	/* CFILT_MAX entries are fine, one more is not. */
	for (unsigned int i = 0; i < CFILT_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%x:7ff", i ? "," : "", i);
	assert_int_equal(cfilt_parse(&f, text, why, sizeof(why)), 0);
	assert_int_equal(f.n, CFILT_MAX);
	snprintf(text + n, sizeof(text) - n, ",1:1");
	assert_int_equal(cfilt_parse(&f, text, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "more than 64 filters"));
}

/* Hand-worked cases of SocketCAN's rule: (id & mask) == (rule & mask), "~" negates. */
static void test_match(void **state)
{
	struct cfilt f;
	char why[160];
	struct cframe rtr = std_frame(0x123);

	(void)state;
	rtr.flags = CFRAME_RTR;
	assert_int_equal(cfilt_parse(&f, "123:7ff", why, sizeof(why)), 0);
	assert_true(cfilt_match(&f, &(struct cframe){.id = 0x123}));
	assert_false(cfilt_match(&f, &(struct cframe){.id = 0x124}));
	/* The mask has no EFF bit: an extended 0x123 matches too (as in the kernel). */
	assert_true(cfilt_match(&f, &(struct cframe){.id = 0x123, .flags = CFRAME_EXT}));
	assert_true(cfilt_match(&f, &rtr));
	/* With the EFF bit in the mask, only standard frames. */
	assert_int_equal(cfilt_parse(&f, "123:800007ff", why, sizeof(why)), 0);
	assert_true(cfilt_match(&f, &(struct cframe){.id = 0x123}));
	assert_false(cfilt_match(&f, &(struct cframe){.id = 0x123, .flags = CFRAME_EXT}));
	/* A range: 0x100..0x1ff. */
	assert_int_equal(cfilt_parse(&f, "100:700", why, sizeof(why)), 0);
	for (uint32_t id = 0; id <= 0x7ff; id++) {
		struct cframe fr = std_frame(id);

		assert_int_equal(cfilt_match(&f, &fr), id >= 0x100 && id <= 0x1ff);
	}
	/* Inverted: everything but 0x100..0x1ff. */
	assert_int_equal(cfilt_parse(&f, "100~700", why, sizeof(why)), 0);
	assert_false(cfilt_match(&f, &(struct cframe){.id = 0x150}));
	assert_true(cfilt_match(&f, &(struct cframe){.id = 0x250}));
	/* Extended ids by 8 digits: EFF in the id, so a standard frame never matches. */
	assert_int_equal(cfilt_parse(&f, "18DAF100:9FFFFF00", why, sizeof(why)), 0);
	{
		struct cframe a = ext_frame(0x18daf1aa), b = ext_frame(0x18daf2aa),
			      c = std_frame(0x100);

		assert_true(cfilt_match(&f, &a));
		assert_false(cfilt_match(&f, &b));
		assert_false(cfilt_match(&f, &c));
	}
	/* A list is an OR; an empty list matches nothing. */
	assert_int_equal(cfilt_parse(&f, "100:7ff,200:7ff", why, sizeof(why)), 0);
	assert_true(cfilt_match(&f, &(struct cframe){.id = 0x200}));
	assert_false(cfilt_match(&f, &(struct cframe){.id = 0x300}));
	f.n = 0;
	assert_false(cfilt_match(&f, &(struct cframe){.id = 0x100}));
	/* The key is SocketCAN's can_id. */
	assert_int_equal(cfilt_key(&rtr), CFILT_RTR | 0x123);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_forms),
	    cmocka_unit_test(test_parse_limits_and_garbage),
	    cmocka_unit_test(test_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
