/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon's confinement, seen from outside on real vcan (VM rig): what
 * /proc/PID/status shows of the running daemon (seccomp, no new
 * privileges, capabilities with and without --link-up), a capture rotated
 * with SIGHUP inside the sandbox, a start as an unprivileged user with no
 * capabilities at all, and --sandbox=none.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "vd.h"

#define CAP_NET_ADMIN_MASK (1ull << 12)
#define NOBODY 65534

/* A field of /proc/PID/status ("CapEff", ...), parsed in base. */
static unsigned long long pid_status(pid_t pid, const char *key, int base)
{
	char path[64], buf[4096];
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	vd_read_file(path, buf, sizeof(buf));
	p = buf;
	while ((p = strstr(p, key)) != NULL) {
		if ((p == buf || p[-1] == '\n') && p[strlen(key)] == ':')
			return strtoull(p + strlen(key) + 1, NULL, base);
		p++;
	}
	fail_msg("no %s in %s", key, path);
	return 0;
}

/* The daemon is past start-up once a frontend is served: it has confined itself. */
static void serve_one_frame(struct vd *d, const char *ifname)
{
	struct gdrv *c = vd_guest_open(d, VD_NO_LATE_ACK);
	int peer = vd_peer_open(ifname);

	vd_guest_marker_through(c, peer);
	vd_bus_marker_through(c, peer);
	gdrv_close(c);
	vd_peer_close(&peer);
}

static void test_confined_by_default(void **state)
{
	struct vd d;

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	vd_start(&d, "vcan1", "vcan1", NULL);
	serve_one_frame(&d, "vcan1");
	assert_int_equal(pid_status(d.pid, "Seccomp", 10), 2);
	assert_int_equal(pid_status(d.pid, "NoNewPrivs", 10), 1);
	assert_int_equal(pid_status(d.pid, "CapEff", 16), 0);
	assert_int_equal(pid_status(d.pid, "CapPrm", 16), 0);
	assert_int_equal(pid_status(d.pid, "CapBnd", 16), 0);
	assert_int_equal(pid_status(d.pid, "CapAmb", 16), 0);
	assert_true(vd_log_has(&d, "sandbox: system call filter on"));
	vd_stop(&d);
	vd_cleanup(&d);
}

/* --link-up keeps CAP_NET_ADMIN, and only it; START and STOP still work. */
static void test_link_up_keeps_net_admin_only(void **state)
{
	struct gdrv *c;
	struct vd d;
	int peer;

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	vd_start(&d, "vcan1", "vcan1", "--link-up", NULL);
	c = vd_guest_open(&d, VD_NO_LATE_ACK);
	assert_int_equal(pid_status(d.pid, "CapEff", 16), CAP_NET_ADMIN_MASK);
	assert_int_equal(pid_status(d.pid, "CapPrm", 16), CAP_NET_ADMIN_MASK);
	assert_int_equal(pid_status(d.pid, "CapBnd", 16), 0);
	assert_int_equal(pid_status(d.pid, "Seccomp", 10), 2);
	/* STOP takes the link down and START brings it up, inside the sandbox. */
	assert_int_equal(gdrv_stop(c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_start(c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	peer = vd_peer_open("vcan1");
	vd_guest_marker_through(c, peer);
	vd_peer_close(&peer);
	gdrv_close(c);
	assert_true(vd_running(&d));
	vd_stop(&d);
	vd_cleanup(&d);
	vd_link_set("vcan1", true);
}

/* Log rotation: the capture file moved away, SIGHUP, a new file is made and written. */
static void test_capture_rotates_in_sandbox(void **state)
{
	char cap[160], arg[200], moved[176], buf[1 << 14];
	struct vd d;

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	snprintf(cap, sizeof(cap), "%s/can.log", d.dir);
	snprintf(moved, sizeof(moved), "%s.1", cap);
	snprintf(arg, sizeof(arg), "--capture=%s", cap);
	vd_start(&d, "vcan1", "vcan1", arg, NULL);
	serve_one_frame(&d, "vcan1");
	assert_int_equal(rename(cap, moved), 0);
	assert_int_equal(kill(d.pid, SIGHUP), 0);
	serve_one_frame(&d, "vcan1");
	vd_stop(&d);
	/* Both files hold markers: the new one was created by the confined daemon. */
	vd_read_file(moved, buf, sizeof(buf));
	assert_non_null(strstr(buf, "7FF#4D41524B"));
	vd_read_file(cap, buf, sizeof(buf));
	assert_non_null(strstr(buf, "7FF#4D41524B"));
	unlink(cap);
	unlink(moved);
	vd_cleanup(&d);
}

/* An unprivileged user, no capabilities at all: vcan needs none. */
static void test_unprivileged_start(void **state)
{
	const char *wrap[] = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			      "--inh-caps=-all", NULL};
	struct vd d;
	uint64_t end;
	struct stat st;

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	assert_int_equal(chown(d.dir, NOBODY, NOBODY), 0);
	{
		const char *args[] = {"--socket-path", d.sock, "-i", "vcan1", "-o", "vcan1", "-v",
				      NULL};

		/* The log file is opened by the test (root) before the switch. */
		vd_spawn_with(&d, wrap, -1, NULL, args);
	}
	end = vd_now_ms() + VD_WAIT_MS;
	while (stat(d.sock, &st) != 0) {
		if (vd_wait_exit(&d, 0)) {
			vd_print_log(&d);
			fail_msg("the unprivileged daemon exited (%d)", d.status);
		}
		assert_true(vd_now_ms() < end);
		vd_sleep_ms(5);
	}
	serve_one_frame(&d, "vcan1");
	assert_int_equal(pid_status(d.pid, "Uid", 10), NOBODY);
	assert_int_equal(pid_status(d.pid, "CapEff", 16), 0);
	assert_int_equal(pid_status(d.pid, "Seccomp", 10), 2);
	vd_stop(&d);
	vd_cleanup(&d);
}

/* --sandbox=none: said in the log, and nothing confined. */
static void test_sandbox_none(void **state)
{
	struct vd d;

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	vd_start(&d, "vcan1", "vcan1", "--sandbox=none", NULL);
	serve_one_frame(&d, "vcan1");
	assert_int_equal(pid_status(d.pid, "Seccomp", 10), 0);
	assert_true(pid_status(d.pid, "CapEff", 16) != 0);
	assert_true(vd_log_has(&d, "--sandbox=none: the process is not confined"));
	vd_stop(&d);
	vd_cleanup(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_confined_by_default),
	    cmocka_unit_test(test_link_up_keeps_net_admin_only),
	    cmocka_unit_test(test_capture_rotates_in_sandbox),
	    cmocka_unit_test(test_unprivileged_start),
	    cmocka_unit_test(test_sandbox_none),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
