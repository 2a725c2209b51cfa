/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The CAN port's contract where no CAN is needed: the error sentences,
 * every entry point given no port or no frames, and opening on a host that
 * may have no CAN at all.
 * The port against real vcan is test/vm/test_vm_can_port.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bthread.h"

#include "can_port.h"
#include "tfd.h"
#include "vhost-user/vlog.h"

/* The sentences name the cause; the sign of the code does not matter. */
static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(can_port_strerror(0), "no error");
	assert_non_null(strstr(can_port_strerror(-EAFNOSUPPORT), "no CAN support"));
	assert_non_null(strstr(can_port_strerror(EAFNOSUPPORT), "no CAN support"));
	assert_string_equal(can_port_strerror(-ENODEV), "no such network interface");
	assert_string_equal(can_port_strerror(-EMEDIUMTYPE), "not a CAN interface");
	/* Both permission errors say which capability is missing. */
	assert_non_null(strstr(can_port_strerror(-EPERM), "CAP_NET_ADMIN"));
	assert_non_null(strstr(can_port_strerror(-EACCES), "CAP_NET_RAW"));
	/* Anything else is the C library's text. */
	assert_string_equal(can_port_strerror(-EIO), strerror(EIO));
	assert_string_equal(can_port_strerror(EBUSY), strerror(EBUSY));
}

/* Missing arguments are -EINVAL, impossible names -ENODEV; nothing is opened. */
static void test_open_bad_arguments(void **state)
{
	char longname[IFNAMSIZ + 2];
	struct can_port_config cfg = {.in_ifname = "vcan0", .out_ifname = "vcan0"};
	struct can_port *p = (struct can_port *)&cfg; /* must come back NULL */
	int before = tfd_count();

	(void)state;
	assert_int_equal(can_port_open(NULL, &cfg), -EINVAL);
	assert_int_equal(can_port_open(&p, NULL), -EINVAL);
	cfg.in_ifname = NULL;
	assert_int_equal(can_port_open(&p, &cfg), -EINVAL);
	cfg.in_ifname = "vcan0";
	cfg.out_ifname = NULL;
	assert_int_equal(can_port_open(&p, &cfg), -EINVAL);

	cfg.out_ifname = "";
	assert_int_equal(can_port_open(&p, &cfg), -ENODEV);
	assert_null(p);
	memset(longname, 'c', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cfg.out_ifname = "vcan0";
	cfg.in_ifname = longname;
	p = (struct can_port *)&cfg;
	assert_int_equal(can_port_open(&p, &cfg), -ENODEV);
	assert_null(p);
	assert_int_equal(tfd_count(), before);
}

/*
 * An interface that does not exist: -EAFNOSUPPORT where the kernel has no
 * CAN (the check on the socket comes first), else -ENODEV. Either way no
 * port and no fd are left.
 */
static void test_open_missing_iface(void **state)
{
	struct can_port_config cfg = {.in_ifname = "vdccov0", .out_ifname = "vdccov0"};
	struct can_port *p = NULL;
	int before = tfd_count(), r;

	(void)state;
	r = can_port_open(&p, &cfg);
	assert_true(r == -EAFNOSUPPORT || r == -ENODEV);
	assert_null(p);
	assert_int_equal(can_port_check("vdccov0", NULL), r);
	assert_int_equal(tfd_count(), before);
}

/* Every call on no port fails or does nothing, and never crashes. */
static void test_no_port(void **state)
{
	struct cframe f;
	struct can_port_event ev;
	int fds[2] = {-7, -7}, res[1] = {12345};

	(void)state;
	memset(&f, 0, sizeof(f));
	can_port_close(NULL);
	assert_false(can_port_fd_capable(NULL));
	assert_int_equal(can_port_fds(NULL, fds), 0);
	assert_int_equal(fds[0], -7);
	assert_int_equal(can_port_set_tx_confirm(NULL, true), -EINVAL);
	assert_int_equal(can_port_send(NULL, &f, 1, res), -EINVAL);
	assert_int_equal(res[0], 12345);
	/* Nothing to send is done at once, whatever the rest. */
	assert_int_equal(can_port_send(NULL, NULL, 0, NULL), 0);
	assert_int_equal(can_port_recv(NULL, 3, &ev, 1), -EINVAL);
	assert_int_equal(can_port_start(NULL), -EINVAL);
	assert_int_equal(can_port_stop(NULL), -EINVAL);
	assert_int_equal(can_port_bus_off(NULL), -EINVAL);
	assert_int_equal(can_port_kernel_drops(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_strerror),
	    cmocka_unit_test(test_open_bad_arguments),
	    cmocka_unit_test(test_open_missing_iface),
	    cmocka_unit_test(test_no_port),
	};

	vlog_set_level(VLOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
