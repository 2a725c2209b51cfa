/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Log lines a frontend or a guest can cause at will stay within the rate
 * limit (VLOG_LIMIT_BURST a second per object, plus one line saying how
 * many were held back) however often the peer repeats the fault: the real
 * backend in a thread, the frontend client repeating each fault hundreds of
 * times, stderr captured and its lines counted. test/lint/log_limits.sh
 * checks statically that every other log line is a start-up one.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bthread.h"
#include "fe.h"
#include "testdev.h"
#include "tfd.h"
#include "vhost-user/vlog.h"

#define T_MS 5000
#define REPEAT 400

struct fx {
	struct testdev dev;
	struct bthread *t;
	struct fe *f;
	int saved_stderr;
	FILE *log;
	struct timespec t0;
	int fds_before;
};

static int fx_setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	struct fe_start_opts o;

	assert_non_null(x);
	x->fds_before = tfd_count();
	/* Everything the backend's thread logs goes to a file we read back. */
	fflush(stderr);
	x->log = tmpfile();
	assert_non_null(x->log);
	x->saved_stderr = dup(STDERR_FILENO);
	assert_true(x->saved_stderr >= 0);
	assert_int_equal(dup2(fileno(x->log), STDERR_FILENO), STDERR_FILENO);
	testdev_init(&x->dev);
	assert_int_equal(bthread_start(&x->t, &x->dev.dev), 0);
	assert_int_equal(fe_new(&x->f, NULL), 0);
	assert_int_equal(fe_connect(x->f, bthread_path(x->t), T_MS), 0);
	fe_start_opts_default(&o);
	assert_int_equal(fe_start(x->f, &o), 0);
	clock_gettime(CLOCK_MONOTONIC, &x->t0);
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *x = *state;

	fe_free(x->f);
	assert_int_equal(bthread_error(x->t), 0);
	bthread_stop(x->t);
	testdev_fini(&x->dev);
	fflush(stderr);
	assert_int_equal(dup2(x->saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(x->saved_stderr);
	fclose(x->log);
	assert_int_equal(tfd_count(), x->fds_before);
	free(x);
	return 0;
}

/*
 * Most lines nobjects limits may let through since the fault began: a
 * burst and one "held back" line per object and window, in every window
 * the time since t0 touches.
 */
static unsigned int bound(struct fx *x, unsigned int nobjects)
{
	struct timespec now;
	uint64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (uint64_t)(now.tv_sec - x->t0.tv_sec) * 1000u +
	     (uint64_t)((now.tv_nsec - x->t0.tv_nsec) / 1000000);
	return nobjects * (VLOG_LIMIT_BURST + 1) * (unsigned int)(ms / VLOG_LIMIT_WINDOW_MS + 2);
}

/* Lines of the captured log that contain what (NULL: every line). */
static unsigned int count_lines(struct fx *x, const char *what)
{
	char line[1024];
	unsigned int n = 0;

	fflush(stderr);
	rewind(x->log);
	while (fgets(line, sizeof(line), x->log))
		if (!what || strstr(line, what))
			n++;
	fseek(x->log, 0, SEEK_END);
	return n;
}

/*
 * SET_VRING_ADDR outside guest memory, again and again: "cannot map ring"
 * (the ring's limit) and the rejection (the backend's) each stay within
 * their limit, though every message failed.
 */
static void test_ring_addresses_outside_memory(void **state)
{
	struct fx *x = *state;
	struct vhost_user_vring_addr a = {
	    .index = 0,
	    .desc_user_addr = 0x7ff000000000ull,
	    .avail_user_addr = 0x7ff000010000ull,
	    .used_user_addr = 0x7ff000020000ull,
	};
	unsigned int before = count_lines(x, NULL);

	for (unsigned int i = 0; i < REPEAT; i++)
		assert_int_equal(fe_set(x->f, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0),
				 -EREMOTEIO);
	assert_true(count_lines(x, "cannot map ring") >= 1);
	assert_true(count_lines(x, "cannot map ring") <= bound(x, 1));
	assert_true(count_lines(x, NULL) - before <= bound(x, 2));
}

/*
 * SET_VRING_KICK with an fd epoll refuses (/dev/null), again and again:
 * "cannot watch kick fd" and the rejection stay within their limits.
 */
static void test_unwatchable_kick_fd(void **state)
{
	struct fx *x = *state;
	unsigned int before = count_lines(x, NULL);
	uint64_t idx = 0;

	for (unsigned int i = 0; i < REPEAT; i++) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		assert_true(fd >= 0);
		assert_int_equal(fe_set(x->f, VHOST_USER_SET_VRING_KICK, &idx, sizeof(idx), &fd, 1),
				 -EREMOTEIO);
		close(fd);
	}
	assert_true(count_lines(x, "cannot watch kick fd") >= 1);
	assert_true(count_lines(x, "cannot watch kick fd") <= bound(x, 1));
	assert_true(count_lines(x, NULL) - before <= bound(x, 2));
}

static bool ring0_broken(struct vu_backend *b, void *arg)
{
	(void)arg;
	return vu_backend_vq(b, 0)->broken;
}

/*
 * A guest whose ring breaks again each time the frontend sets it up
 * (a chain outside guest memory, popped again at every start): "queue
 * broken" stays within the ring's limit, across the ring's resets.
 */
static void test_queue_broken_again_and_again(void **state)
{
	struct fx *x = *state;
	struct fe_sg bad = {.gpa = 0x7e0000000000ull, .len = 16};
	unsigned int before = count_lines(x, NULL);

	assert_int_equal(fe_ring_add(x->f, TESTDEV_Q_XFORM, &bad, 1, NULL, 0, NULL, NULL), 0);
	assert_int_equal(fe_ring_kick(x->f, TESTDEV_Q_XFORM, true), 1);
	assert_int_equal(bthread_wait(x->t, ring0_broken, NULL, T_MS), 0);
	for (unsigned int i = 0; i < REPEAT; i++) {
		assert_int_equal(fe_ring_set_addr(x->f, TESTDEV_Q_XFORM), 0);
		assert_int_equal(bthread_wait(x->t, ring0_broken, NULL, T_MS), 0);
	}
	assert_true(count_lines(x, "queue broken") >= 1);
	assert_true(count_lines(x, "queue broken") <= bound(x, 1));
	assert_true(count_lines(x, NULL) - before <= bound(x, 2));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_ring_addresses_outside_memory),
	    T(test_unwatchable_kick_fd),
	    T(test_queue_broken_again_and_again),
	};

	/* Every level the daemon logs by default, errors included. */
	vlog_set_level(VLOG_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
