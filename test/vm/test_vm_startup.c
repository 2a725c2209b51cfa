/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Start-up with several devices on real vcan (VM rig), where the interface
 * checks pass and only the socket check can stop the daemon:
 *
 * - --device fd=3 plus a device taking systemd's socket (LISTEN_FDS=1,
 *   which is fd 3 as well): refused, naming both devices. The daemon used
 *   to serve fd 3 with both devices, and a VM got whichever bus answered.
 * - One socket file spelt two ways (DIR/a.sock, DIR/./a.sock): refused as
 *   given twice, before listening. The second device used to take the
 *   first one's socket for another process's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/can.h>
#include <linux/can/error.h>
#include <linux/can/raw.h>

#include <cmocka.h>

#include "vd.h"

#include <sys/un.h>

/* The daemon must exit by itself (a start-up error): its status; the log on failure. */
static int vd_exit_status(struct vd *d)
{
	if (!vd_wait_exit(d, VD_WAIT_MS)) {
		kill(d->pid, SIGKILL);
		vd_wait_exit(d, VD_WAIT_MS);
		vd_print_log(d);
		fail_msg("the daemon did not exit: it started serving");
	}
	return d->status;
}

static void assert_log_has(const struct vd *d, const char *what)
{
	if (!vd_log_has(d, what)) {
		vd_print_log(d);
		fail_msg("'%s' not in the daemon's log", what);
	}
}

static void test_fd_and_activation_one_socket(void **state)
{
	/* sh's pid is the daemon's after exec: LISTEN_PID names it, as systemd would. */
	const char *const wrap[] = {"/bin/sh", "-c",
				    "export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" \"$@\"", NULL};
	const char *args[] = {
	    "--device", "fd=3,can-in=vcan0,can-out=vcan0,name=a",
	    "--device", "can-in=vcan1,can-out=vcan1,name=b",
	    NULL,
	};
	struct vd d;
	int ls;

	(void)state;
	vd_init(&d);
	ls = vd_listen_at(d.sock);
	vd_spawn_with(&d, wrap, ls, NULL, args);
	close(ls);
	assert_int_equal(vd_exit_status(&d), 1);
	assert_log_has(&d, "one socket given twice: --device #1 (name=a) has --device fd=3, "
			   "--device #2 (name=b) has LISTEN_FDS fd 3;");
	assert_false(vd_log_has(&d, "ready:"));
	vd_cleanup(&d);
}

static void test_path_two_spellings(void **state)
{
	char a[160], b[160], spec_a[256], spec_b[256];
	const char *args[] = {"--device", spec_a, "--device", spec_b, "-v", NULL};
	struct stat st;
	struct vd d;

	(void)state;
	vd_init(&d);
	snprintf(a, sizeof(a), "%s/a.sock", d.dir);
	snprintf(b, sizeof(b), "%s/./a.sock", d.dir);
	snprintf(spec_a, sizeof(spec_a), "socket-path=%s,can-in=vcan0,can-out=vcan0", a);
	snprintf(spec_b, sizeof(spec_b), "socket-path=%s,can-in=vcan1,can-out=vcan1", b);
	vd_spawn(&d, args);
	assert_int_equal(vd_exit_status(&d), 1);
	assert_log_has(&d, "socket path given twice: --device #1 (vcan0) has ");
	assert_log_has(&d, b);
	assert_false(vd_log_has(&d, "another process"));
	assert_false(vd_log_has(&d, "ready:"));
	/* Refused before listening: no socket file was made. */
	assert_int_equal(lstat(a, &st), -1);
	assert_int_equal(errno, ENOENT);
	vd_cleanup(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fd_and_activation_one_socket),
	    cmocka_unit_test(test_path_two_spellings),
	};

	vd_skip_without_vcan();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
