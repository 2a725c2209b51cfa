/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The backend's own resources running out, and connections it cannot take:
 * vu_backend_new() and vu_backend_listen() with no fd left to open,
 * vu_backend_attach() of fds it cannot use, a connection that reports an
 * error without data. Each must fail cleanly (no fd left open) and leave the
 * process able to go on; found with scripts/coverage.sh.
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
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "bthread.h"

#include "tfd.h"
#include "vhost-user/vlog.h"
#include "vhost-user/vu_backend.h"

static const struct vu_device cov_dev = {
    .name = "cov",
    .num_queues = 3,
    .max_queue_size = 256,
};

/*
 * With room for 0, 1, 2, ... more fds, creating a backend fails with
 * -EMFILE and leaves nothing open, until there is room for all it needs.
 */
static void test_new_out_of_fds(void **state)
{
	struct vu_backend *b = (struct vu_backend *)&b; /* must be reset to NULL */
	int base = tfd_next(), ret = -EMFILE;
	unsigned int failures = 0;
	rlim_t old;

	(void)state;
	for (int room = 0; room < 16; room++) {
		old = tfd_cap((rlim_t)(base + room));
		ret = vu_backend_new(&b, &cov_dev);
		tfd_cap(old);
		if (ret == 0)
			break;
		assert_int_equal(ret, -EMFILE);
		assert_null(b);
		assert_int_equal(tfd_next(), base);
		failures++;
	}
	assert_int_equal(ret, 0);
	/*
	 * An epoll fd, an eventfd and a timerfd: at least three rooms fail
	 * (more when fds above base were already in use).
	 */
	assert_true(failures >= 3);
	vu_backend_free(b);
	assert_int_equal(tfd_next(), base);
}

/* A stale socket file at path: bound once, its listener gone. */
static void make_stale_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
}

/*
 * Another process's live socket at path, and no fd to probe it with: the
 * listen fails with -EMFILE and the live socket stays (it was taken for a
 * stale one and removed before).
 */
static void test_listen_out_of_fds_keeps_live_socket(void **state)
{
	char dir[] = "/tmp/vdc-cov.XXXXXX", path[64];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct vu_backend *b = NULL;
	struct stat st, st2;
	int live, probe, base;
	rlim_t old;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	live = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(live >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(live, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(live, 4), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(vu_backend_new(&b, &cov_dev), 0);
	base = tfd_next();

	old = tfd_cap((rlim_t)base);
	assert_int_equal(vu_backend_listen(b, path), -EMFILE);
	tfd_cap(old);
	assert_int_equal(lstat(path, &st2), 0);
	assert_int_equal(st2.st_ino, st.st_ino);
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(probe >= 0);
	assert_int_equal(connect(probe, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(probe);
	/* With fds: the live listener is seen and left alone. */
	assert_int_equal(vu_backend_listen(b, path), -EADDRINUSE);
	vu_backend_free(b);
	close(live);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

/* An inherited socket to listen on must be one: closed or not listening is refused. */
static void test_listen_fd_refused(void **state)
{
	struct vu_backend *b = NULL;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), base;

	(void)state;
	assert_true(s >= 0);
	assert_int_equal(vu_backend_new(&b, &cov_dev), 0);
	base = tfd_next();
	assert_int_equal(vu_backend_listen_fd(b, -1), -EBADF);
	/* Not listening: refused, and the fd is taken (closed). */
	assert_int_equal(vu_backend_listen_fd(b, s), -EINVAL);
	assert_false(tfd_is_open(s));
	assert_true(tfd_next() <= base);
	vu_backend_free(b);
}

/*
 * No fd for the listening socket: -EMFILE, nothing left open, and the same
 * backend listens on the path once fds are available again.
 */
static void test_listen_out_of_fds(void **state)
{
	char dir[] = "/tmp/vdc-cov.XXXXXX", path[64];
	struct vu_backend *b = NULL;
	struct stat st;
	int base;
	rlim_t old;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	make_stale_socket(path);
	assert_int_equal(vu_backend_new(&b, &cov_dev), 0);
	base = tfd_next();

	old = tfd_cap((rlim_t)base);
	assert_int_equal(vu_backend_listen(b, path), -EMFILE);
	tfd_cap(old);
	assert_int_equal(tfd_next(), base);

	assert_int_equal(vu_backend_listen(b, path), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	vu_backend_free(b);
	/* The backend removes the socket it made. */
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(rmdir(dir), 0);
}

/* fds the backend cannot serve are refused and closed; it stays free for the next. */
static void test_attach_unusable_fds(void **state)
{
	struct vu_backend *b = NULL;
	int sv[2], file, unused;

	(void)state;
	assert_int_equal(vu_backend_new(&b, &cov_dev), 0);

	/* Not an open fd at all. */
	unused = tfd_next();
	assert_int_equal(vu_backend_attach(b, unused), -EBADF);
	assert_false(vu_backend_connected(b));

	/* A file epoll cannot watch. */
	file = memfd_create("not-a-socket", MFD_CLOEXEC);
	assert_true(file >= 0);
	assert_int_equal(vu_backend_attach(b, file), -EPERM);
	assert_false(tfd_is_open(file));
	assert_false(vu_backend_connected(b));

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(vu_backend_attach(b, sv[1]), 0);
	assert_true(vu_backend_connected(b));
	vu_backend_free(b);
	close(sv[0]);
}

/*
 * A connection that signals an error but no data (the write end of a pipe
 * whose reader left): the backend drops it and takes the next one.
 */
static void test_conn_error_without_data(void **state)
{
	struct vu_backend *b = NULL;
	int p[2], sv[2], base;

	(void)state;
	base = tfd_next();
	assert_int_equal(vu_backend_new(&b, &cov_dev), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(vu_backend_attach(b, p[1]), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);

	/* One frontend at a time: a second one is refused (and closed) while it lasts. */
	assert_int_equal(vu_backend_attach(b, sv[1]), -EBUSY);
	assert_false(tfd_is_open(sv[1]));
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_true(vu_backend_connected(b));

	close(p[0]);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_false(vu_backend_connected(b));

	close(sv[0]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(vu_backend_attach(b, sv[1]), 0);
	assert_true(vu_backend_connected(b));
	vu_backend_free(b);
	close(sv[0]);
	/* The pipe's write end went with the dropped connection. */
	assert_int_equal(tfd_next(), base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_out_of_fds),
	    cmocka_unit_test(test_listen_out_of_fds),
	    cmocka_unit_test(test_listen_out_of_fds_keeps_live_socket),
	    cmocka_unit_test(test_listen_fd_refused),
	    cmocka_unit_test(test_attach_unusable_fds),
	    cmocka_unit_test(test_conn_error_without_data),
	};

	vlog_set_level(VLOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
