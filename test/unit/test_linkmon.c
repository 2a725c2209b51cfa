/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * rtnetlink link messages as linkmon_parse reads them: well-formed ones,
 * what it must skip, and hostile lengths (headers and attributes that claim
 * more than there is, or too little), plus random bytes at every length.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "linkmon.h"

/* A datagram under construction. */
struct dg {
	unsigned char b[4096];
	size_t len;
	size_t msg; /* offset of the message being built */
};

static void dg_msg(struct dg *d, uint16_t type, int ifindex, unsigned int flags)
{
	struct nlmsghdr h = {.nlmsg_type = type};
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex, .ifi_flags = flags};

	d->len = NLMSG_ALIGN(d->len);
	d->msg = d->len;
	memcpy(d->b + d->len, &h, sizeof(h));
	memcpy(d->b + d->len + NLMSG_HDRLEN, &ifi, sizeof(ifi));
	d->len += NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(ifi));
}

/* An attribute of plen payload bytes (rta_len says exactly that). */
static void dg_attr(struct dg *d, uint16_t type, const void *payload, size_t plen)
{
	struct rtattr a = {.rta_len = (unsigned short)RTA_LENGTH(plen), .rta_type = type};

	d->len = RTA_ALIGN(d->len);
	memcpy(d->b + d->len, &a, sizeof(a));
	memcpy(d->b + d->len + sizeof(a), payload, plen);
	d->len += RTA_LENGTH(plen);
}

/* Close the message: its nlmsg_len covers everything since dg_msg. */
static void dg_end(struct dg *d)
{
	uint32_t len = (uint32_t)(d->len - d->msg);

	memcpy(d->b + d->msg + offsetof(struct nlmsghdr, nlmsg_len), &len, sizeof(len));
}

static void dg_link(struct dg *d, uint16_t type, int ifindex, const char *name, uint32_t mtu)
{
	uint32_t qlen = 1000;

	dg_msg(d, type, ifindex, 0x41);
	dg_attr(d, IFLA_TXQLEN, &qlen, sizeof(qlen));
	if (name)
		dg_attr(d, IFLA_IFNAME, name, strlen(name) + 1);
	if (mtu)
		dg_attr(d, IFLA_MTU, &mtu, sizeof(mtu));
	dg_end(d);
}

static void set_u32(struct dg *d, size_t off, uint32_t v)
{
	memcpy(d->b + off, &v, sizeof(v));
}

static void set_u16(struct dg *d, size_t off, uint16_t v)
{
	memcpy(d->b + off, &v, sizeof(v));
}

/* Offset of the first attribute of the message at off. */
#define ATTR0(off) ((off) + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct ifinfomsg)))

static void test_newlink(void **state)
{
	struct dg d = {0};
	struct linkmon_msg m[4];
	bool resync = true;

	(void)state;
	dg_link(&d, RTM_NEWLINK, 7, "vcanhp0", 72);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 1);
	assert_false(resync);
	assert_false(m[0].del);
	assert_int_equal(m[0].ifindex, 7);
	assert_string_equal(m[0].name, "vcanhp0");
	assert_int_equal(m[0].mtu, 72);
	assert_int_equal(m[0].flags, 0x41);
}

static void test_dellink_and_several(void **state)
{
	struct dg d = {0};
	struct linkmon_msg m[4];
	bool resync = true;

	(void)state;
	dg_link(&d, RTM_DELLINK, 7, "vcanhp0", 0);
	dg_link(&d, RTM_NEWLINK, 9, "vcanhp0", 16);
	dg_link(&d, RTM_NEWLINK, 10, NULL, 0); /* no name, no MTU: still a hint */
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 3);
	assert_false(resync);
	assert_true(m[0].del);
	assert_int_equal(m[0].ifindex, 7);
	assert_int_equal(m[0].mtu, 0);
	assert_false(m[1].del);
	assert_int_equal(m[1].ifindex, 9);
	assert_int_equal(m[1].mtu, 16);
	assert_string_equal(m[2].name, "");
	assert_int_equal(m[2].ifindex, 10);
}

/* Other message types are skipped; error and overrun ask for a re-check. */
static void test_other_types(void **state)
{
	struct dg d = {0};
	struct linkmon_msg m[4];
	bool resync = true;

	(void)state;
	dg_msg(&d, RTM_NEWADDR, 3, 0);
	dg_end(&d);
	dg_msg(&d, NLMSG_DONE, 0, 0);
	dg_end(&d);
	dg_link(&d, RTM_NEWLINK, 4, "can0", 0);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 1);
	assert_false(resync);
	assert_int_equal(m[0].ifindex, 4);

	memset(&d, 0, sizeof(d));
	dg_msg(&d, NLMSG_OVERRUN, 0, 0);
	dg_end(&d);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);

	memset(&d, 0, sizeof(d));
	dg_msg(&d, NLMSG_ERROR, 0, 0);
	dg_end(&d);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);

	assert_int_equal(linkmon_parse(NULL, 0, m, 4, &resync), 0);
	assert_false(resync);
	assert_int_equal(linkmon_parse(d.b, 0, m, 4, &resync), 0);
	assert_false(resync);
}

/* nlmsg_len past the datagram, below a header, huge; a torn header. */
static void test_hostile_header(void **state)
{
	struct dg d = {0};
	struct linkmon_msg m[4];
	bool resync;

	(void)state;
	dg_link(&d, RTM_NEWLINK, 7, "vcanhp0", 72);
	set_u32(&d, 0, (uint32_t)d.len + 4);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);
	set_u32(&d, 0, 0xffffffffu);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);
	set_u32(&d, 0, (uint32_t)sizeof(struct nlmsghdr) - 1);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);
	set_u32(&d, 0, 0);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);
	/* Fewer bytes than a header. */
	assert_int_equal(linkmon_parse(d.b, sizeof(struct nlmsghdr) - 1, m, 4, &resync), 0);
	assert_true(resync);

	/* A good message, then a torn one: the first counts, the rest is distrusted. */
	memset(&d, 0, sizeof(d));
	dg_link(&d, RTM_NEWLINK, 7, "vcanhp0", 72);
	dg_link(&d, RTM_NEWLINK, 8, "vcanhp1", 72);
	assert_int_equal(linkmon_parse(d.b, d.len - 3, m, 4, &resync), 1);
	assert_true(resync);
	assert_int_equal(m[0].ifindex, 7);
}

/* A header without room for its ifinfomsg, or with no usable index. */
static void test_hostile_ifinfo(void **state)
{
	struct dg d = {0};
	struct linkmon_msg m[4];
	bool resync;

	(void)state;
	dg_msg(&d, RTM_NEWLINK, 7, 0);
	set_u32(&d, 0, NLMSG_HDRLEN + 8); /* half an ifinfomsg */
	assert_int_equal(linkmon_parse(d.b, NLMSG_HDRLEN + 8, m, 4, &resync), 0);
	assert_true(resync);

	memset(&d, 0, sizeof(d));
	dg_link(&d, RTM_NEWLINK, 0, "vcanhp0", 72);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);
	memset(&d, 0, sizeof(d));
	dg_link(&d, RTM_DELLINK, -5, "vcanhp0", 72);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);
}

/* Attributes claiming more than the message, less than their header, names without NUL. */
static void test_hostile_attrs(void **state)
{
	const char long_name[IFNAMSIZ + 4] = "abcdefghijklmnopqrs"; /* no NUL in IFNAMSIZ */
	struct dg d = {0};
	struct linkmon_msg m[4];
	uint16_t mtu16 = 72;
	bool resync;

	(void)state;
	/* rta_len past the message end (the datagram goes on: another message). */
	dg_link(&d, RTM_NEWLINK, 7, "vcanhp0", 72);
	set_u16(&d, ATTR0(0), 200);
	dg_link(&d, RTM_NEWLINK, 8, "vcanhp1", 72);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 1);
	assert_true(resync);
	assert_int_equal(m[0].ifindex, 8); /* the good one after it still counts */

	/* rta_len below an attribute header: no endless loop, no read past. */
	memset(&d, 0, sizeof(d));
	dg_link(&d, RTM_NEWLINK, 7, "vcanhp0", 72);
	set_u16(&d, ATTR0(0), 2);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);
	set_u16(&d, ATTR0(0), 0);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);

	/* A name without its NUL, one longer than IFNAMSIZ, an empty one. */
	memset(&d, 0, sizeof(d));
	dg_msg(&d, RTM_NEWLINK, 7, 0);
	dg_attr(&d, IFLA_IFNAME, "vcan", 4);
	dg_end(&d);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);
	memset(&d, 0, sizeof(d));
	dg_msg(&d, RTM_NEWLINK, 7, 0);
	dg_attr(&d, IFLA_IFNAME, long_name, sizeof(long_name));
	dg_end(&d);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);
	memset(&d, 0, sizeof(d));
	dg_msg(&d, RTM_NEWLINK, 7, 0);
	dg_attr(&d, IFLA_IFNAME, "", 1);
	dg_end(&d);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);
	/* The longest name there can be (15 bytes and the NUL) is fine. */
	memset(&d, 0, sizeof(d));
	dg_link(&d, RTM_NEWLINK, 7, "abcdefghijklmno", 0);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 1);
	assert_false(resync);
	assert_string_equal(m[0].name, "abcdefghijklmno");

	/* An MTU of 2 bytes. */
	memset(&d, 0, sizeof(d));
	dg_msg(&d, RTM_NEWLINK, 7, 0);
	dg_attr(&d, IFLA_MTU, &mtu16, sizeof(mtu16));
	dg_end(&d);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 4, &resync), 0);
	assert_true(resync);
}

/* More messages than room: the first max are kept, the caller re-checks. */
static void test_more_than_max(void **state)
{
	struct dg d = {0};
	struct linkmon_msg m[2];
	bool resync;

	(void)state;
	for (int i = 1; i <= 5; i++)
		dg_link(&d, RTM_NEWLINK, i, "x", 16);
	assert_int_equal(linkmon_parse(d.b, d.len, m, 2, &resync), 2);
	assert_true(resync);
	assert_int_equal(m[1].ifindex, 2);
	assert_int_equal(linkmon_parse(d.b, d.len, NULL, 0, &resync), 0);
	assert_true(resync);
}

/* Read at any alignment (a datagram is not always where it is expected). */
static void test_unaligned(void **state)
{
	struct dg d = {0};
	static unsigned char shifted[sizeof(d.b) + 1];
	struct linkmon_msg m[1];
	bool resync;

	(void)state;
	dg_link(&d, RTM_NEWLINK, 7, "vcanhp0", 72);
	memcpy(shifted + 1, d.b, d.len);
	assert_int_equal(linkmon_parse(shifted + 1, d.len, m, 1, &resync), 1);
	assert_false(resync);
	assert_string_equal(m[0].name, "vcanhp0");
	assert_int_equal(m[0].mtu, 72);
}

/* Random bytes, and a real message with random damage, at every length. */
static void test_random(void **state)
{
	struct dg d = {0};
	struct linkmon_msg m[3];
	unsigned int seed = 12345;
	bool resync;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t len;
		unsigned int n;

		memset(&d, 0, sizeof(d));
		if (round % 2) {
			dg_link(&d, RTM_NEWLINK, 7, "vcanhp0", 72);
			dg_link(&d, RTM_DELLINK, 8, "vcanhp1", 16);
			for (int k = 0; k < 3; k++)
				d.b[rand_r(&seed) % d.len] = (unsigned char)rand_r(&seed);
			len = (size_t)rand_r(&seed) % (d.len + 1);
		} else {
			len = (size_t)rand_r(&seed) % 200;
			for (size_t k = 0; k < len; k++)
				d.b[k] = (unsigned char)rand_r(&seed);
			/* Often a plausible header, so the walk goes deeper. */
			if (len >= 16 && rand_r(&seed) % 2) {
				set_u32(&d, 0, (uint32_t)(rand_r(&seed) % (len + 8)));
				set_u16(&d, 4, RTM_NEWLINK);
			}
		}
		n = linkmon_parse(d.b, len, m, 3, &resync);
		assert_true(n <= 3);
		for (unsigned int i = 0; i < n; i++) {
			assert_true(m[i].ifindex > 0);
			assert_true(strnlen(m[i].name, IFNAMSIZ) < IFNAMSIZ);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_newlink),	   cmocka_unit_test(test_dellink_and_several),
	    cmocka_unit_test(test_other_types),	   cmocka_unit_test(test_hostile_header),
	    cmocka_unit_test(test_hostile_ifinfo), cmocka_unit_test(test_hostile_attrs),
	    cmocka_unit_test(test_more_than_max),  cmocka_unit_test(test_unaligned),
	    cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
