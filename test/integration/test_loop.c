/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon's loop: loop_init() serving an already connected fd, failing
 * at each of its steps without leaving anything open, loop_run() with a bad
 * control fd, and the turn statistics the benchmarks switch on. (The port
 * fds out of the epoll set during a flooded turn: test_loop_unwatch.c.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bthread.h"

#include "fakeport.h"
#include "tfd.h"
#include "loop_test.h"
#include "vhost-user/vlog.h"

#define WAIT_MS 5000 /* a guard against hangs, not a timing assertion */

static const struct device_config cov_cfg = {.name = "cov", .rx_backlog = 64};

struct cov_fx {
	struct fakeport *p;
	struct loop_port dp;
};

static int fx_setup(void **state)
{
	struct cov_fx *x = calloc(1, sizeof(*x));

	if (!x || fakeport_new(&x->p) != 0)
		return -1;
	fakeport_loop_port(x->p, &x->dp);
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct cov_fx *x = *state;

	fakeport_free(x->p);
	free(x);
	return 0;
}

/*
 * Serving a connected fd (no socket path): every step that needs an fd
 * fails in turn with -EMFILE; each failure closes the connection it was
 * given and leaves nothing else open. With room enough it serves.
 */
static void test_init_conn_fd_out_of_fds(void **state)
{
	struct cov_fx *x = *state;
	unsigned int failures = 0;
	int ret = -EMFILE;
	struct loop *m;

	for (int room = 0; room < 16; room++) {
		int sv[2], before, base;
		rlim_t old;

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		before = tfd_count();
		base = tfd_next();
		old = tfd_cap((rlim_t)(base + room));
		ret = loop_init(&m, &cov_cfg, &x->dp, NULL, sv[1]);
		tfd_cap(old);
		if (ret == 0) {
			assert_true(vu_backend_connected(loop_backend(m, 0)));
			loop_free(m);
			close(sv[0]);
			break;
		}
		assert_int_equal(ret, -EMFILE);
		assert_false(tfd_is_open(sv[1]));
		assert_int_equal(tfd_count(), before - 1);
		close(sv[0]);
		failures++;
	}
	assert_int_equal(ret, 0);
	/*
	 * The backend's three fds, then the loop's epoll fd: at least four
	 * rooms fail (more when fds above base were already in use).
	 */
	assert_true(failures >= 4);
}

/* A port without send() is refused by the device: -EINVAL, the connection closed. */
static void test_init_bad_port_closes_conn(void **state)
{
	struct cov_fx *x = *state;
	struct device_port_ops ops = *x->dp.ops;
	struct loop_port dp = x->dp;
	int sv[2], before;
	struct loop *m;
	char c;

	ops.send = NULL;
	dp.ops = &ops;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	before = tfd_count();
	assert_int_equal(loop_init(&m, &cov_cfg, &dp, NULL, sv[1]), -EINVAL);
	assert_false(tfd_is_open(sv[1]));
	assert_int_equal(tfd_count(), before - 1);
	/* The frontend's end sees the hang-up. */
	assert_int_equal(read(sv[0], &c, 1), 0);
	close(sv[0]);

	/* Neither a path nor a connection: -EBADF. */
	before = tfd_count();
	assert_int_equal(loop_init(&m, &cov_cfg, &x->dp, NULL, -1), -EBADF);
	assert_int_equal(tfd_count(), before);
}

/*
 * A port fd epoll cannot watch: -EPERM, and the socket the backend was
 * already listening on is closed and removed again.
 */
static void test_init_unwatchable_port_fd(void **state)
{
	struct cov_fx *x = *state;
	char dir[] = "/tmp/vdc-cov.XXXXXX", path[64];
	struct loop_port dp = x->dp;
	struct stat st;
	struct loop *m;
	int file, before;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	file = memfd_create("not-pollable", MFD_CLOEXEC);
	assert_true(file >= 0);
	assert_true(dp.nfds < 2);
	dp.fds[dp.nfds++] = file;
	before = tfd_count();
	assert_int_equal(loop_init(&m, &cov_cfg, &dp, path, -1), -EPERM);
	assert_int_equal(tfd_count(), before);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
	close(file);
	assert_int_equal(rmdir(dir), 0);
}

static int never_called(struct loop *m, void *arg)
{
	(void)m;
	(void)arg;
	fail_msg("on_ctl called for a control fd that could not be watched");
	return 1;
}

/* A control fd that cannot be watched ends loop_run() at once with the error. */
static void test_run_bad_ctl_fd(void **state)
{
	struct cov_fx *x = *state;
	int sv[2];
	struct loop *m;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(loop_init(&m, &cov_cfg, &x->dp, NULL, sv[1]), 0);
	assert_int_equal(loop_run(m, -1, never_called, NULL), -EBADF);
	assert_int_equal(loop_run(m, tfd_next(), never_called, NULL), -EBADF);
	loop_free(m);
	close(sv[0]);
}

struct turns_arg {
	bool on;
	struct loop_turns copy;
};

static void turns_switch(struct loop *m, void *arg)
{
	struct turns_arg *a = arg;

	loop_test_turns(m)->on = a->on;
	a->copy = *loop_test_turns(m);
}

static struct loop_turns turns_set(struct fakeport_loop *d, bool on)
{
	struct turns_arg a = {.on = on};

	assert_int_equal(fakeport_loop_exec(d, turns_switch, &a), 0);
	return a.copy;
}

/* Frames from the bus wake the loop; the device drops them (not started). */
static void bus_frames(struct fakeport *p, unsigned int n)
{
	struct cframe f;

	memset(&f, 0, sizeof(f));
	f.id = 0x123;
	f.len = 1;
	for (unsigned int i = 0; i < n; i++) {
		f.data[0] = (uint8_t)i;
		assert_int_equal(fakeport_inject_frames(p, &f, 1), 0);
		assert_int_equal(fakeport_wait_consumed(p, WAIT_MS), 0);
	}
}

/*
 * Turns are measured only while measuring is on: none before, some while
 * on, none after; the histogram adds up to the count and holds the longest.
 */
static void test_turns_measured_only_when_on(void **state)
{
	struct cov_fx *x = *state;
	struct fakeport_loop *d = NULL;
	struct loop_turns t, after;
	uint64_t in_buckets = 0;
	int top = -1;

	assert_int_equal(fakeport_loop_start(&d, &cov_cfg, x->p), 0);
	bus_frames(x->p, 5);
	t = turns_set(d, true);
	assert_int_equal(t.n, 0);

	bus_frames(x->p, 20);
	t = turns_set(d, false);
	/* At least one turn per wakeup the frames caused; the switch turns are not counted. */
	assert_true(t.n >= 1);
	assert_true(t.max_ns <= t.sum_ns);
	for (int k = 0; k < LOOP_TURN_BUCKETS; k++) {
		in_buckets += t.log2_ns[k];
		if (t.log2_ns[k])
			top = k;
	}
	assert_int_equal(in_buckets, t.n);
	/* The longest turn lies in the highest bucket used: [2^top, 2^(top+1)) ns. */
	assert_true(top >= 0);
	if (top > 0)
		assert_int_equal(t.max_ns >> top, 1);
	else
		assert_true(t.max_ns <= 1);

	bus_frames(x->p, 5);
	after = turns_set(d, false);
	assert_int_equal(after.n, t.n);
	assert_int_equal(after.sum_ns, t.sum_ns);
	assert_int_equal(fakeport_loop_stop(d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_init_conn_fd_out_of_fds, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_init_bad_port_closes_conn, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_init_unwatchable_port_fd, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_run_bad_ctl_fd, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_turns_measured_only_when_on, fx_setup,
					    fx_teardown),
	};

	vlog_set_level(VLOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
