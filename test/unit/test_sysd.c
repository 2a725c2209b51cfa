/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The service manager glue: LISTEN_FDS, NOTIFY_SOCKET, inherited socket checks. */
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
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "sysd.h"

static void set_listen(const char *pid, const char *fds)
{
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", fds, 1);
	setenv("LISTEN_FDNAMES", "x", 1);
}

static void assert_listen_env_gone(void)
{
	assert_null(getenv("LISTEN_PID"));
	assert_null(getenv("LISTEN_FDS"));
	assert_null(getenv("LISTEN_FDNAMES"));
}

static void test_listen_fds(void **state)
{
	char me[32];
	int fd, saved, saved_flags;

	(void)state;
	snprintf(me, sizeof(me), "%d", (int)getpid());
	/* Nothing set. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	assert_int_equal(sysd_listen_fds(NULL), 0);
	/* Meant for another process: ignored, and removed all the same. */
	set_listen("1", "2");
	assert_int_equal(sysd_listen_fds(NULL), 0);
	assert_listen_env_gone();
	/* Garbage. */
	set_listen(me, "two");
	assert_int_equal(sysd_listen_fds(NULL), -EINVAL);
	assert_listen_env_gone();
	set_listen(me, "-1");
	assert_int_equal(sysd_listen_fds(NULL), -EINVAL);
	set_listen("12x", "1");
	assert_int_equal(sysd_listen_fds(NULL), 0);
	/* Ours: the count, and fd 3 made close-on-exec (fd 3 kept aside if in use). */
	saved_flags = fcntl(SYSD_LISTEN_FDS_START, F_GETFD);
	saved = saved_flags >= 0 ? fcntl(SYSD_LISTEN_FDS_START, F_DUPFD_CLOEXEC, 10) : -1;
	fd = dup2(0, SYSD_LISTEN_FDS_START);
	assert_int_equal(fcntl(fd, F_SETFD, 0), 0);
	assert_int_equal(fd, SYSD_LISTEN_FDS_START);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	set_listen(me, "1");
	assert_int_equal(sysd_listen_fds(NULL), 1);
	assert_listen_env_gone();
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);
	if (saved >= 0) {
		dup2(saved, SYSD_LISTEN_FDS_START);
		fcntl(SYSD_LISTEN_FDS_START, F_SETFD, saved_flags);
		close(saved);
	}
}

/*
 * Why LISTEN_FDS is refused is told apart: not a number (-EINVAL) or a
 * number beyond what is taken (-ERANGE, also past unsigned long). The
 * text given is kept for the message either way.
 */
static void test_listen_fds_refused(void **state)
{
	static const struct {
		const char *fds;
		int want;
	} cases[] = {
	    {"two", -EINVAL}, {"", -EINVAL},	 {"-1", -EINVAL},
	    {"+1", -EINVAL},  {" 1", -EINVAL},	 {"1x", -EINVAL},
	    {"65", -ERANGE},  {"4096", -ERANGE}, {"99999999999999999999999999", -ERANGE},
	};
	static struct sysd_listen l;
	char me[32];

	(void)state;
	snprintf(me, sizeof(me), "%d", (int)getpid());
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_listen(me, cases[i].fds);
		if (sysd_listen_fds(&l) != cases[i].want)
			fail_msg("LISTEN_FDS='%s': want %d", cases[i].fds, cases[i].want);
		assert_listen_env_gone();
		assert_string_equal(l.count, cases[i].fds[0] == '9' ? "99999999999999999999999"
								    : cases[i].fds);
	}
	/* 0 and the bound itself are in range (64 only marks fds 3..66 CLOEXEC here). */
	set_listen(me, "0");
	assert_int_equal(sysd_listen_fds(&l), 0);
	set_listen(me, "64");
	assert_int_equal(sysd_listen_fds(&l), SYSD_MAX_LISTEN_FDS);
	assert_string_equal(l.count, "64");
	/* Unprintable text is not kept for a log line. */
	set_listen(me, "6\x1b[5");
	assert_int_equal(sysd_listen_fds(&l), -EINVAL);
	assert_string_equal(l.count, "");
}

/* LISTEN_FDNAMES: kept when it names every fd passed, printable; else none. */
static void test_listen_fdnames(void **state)
{
	static const struct {
		const char *names, *first, *second;
	} cases[] = {
	    {"can-a.socket:can-b", "can-a.socket", "can-b"},
	    {":b", "", "b"},
	    {"a", "", ""},	 /* one name for two fds */
	    {"a:b:c", "", ""},	 /* three */
	    {"a:b\x01", "", ""}, /* a control character */
	};
	static struct sysd_listen l;
	char me[32];
	int flags[2];

	(void)state;
	snprintf(me, sizeof(me), "%d", (int)getpid());
	/* fds 3 and 4 get CLOEXEC: keep whatever the test process has there. */
	for (int i = 0; i < 2; i++)
		flags[i] = fcntl(SYSD_LISTEN_FDS_START + i, F_GETFD);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_listen(me, "2");
		setenv("LISTEN_FDNAMES", cases[i].names, 1);
		assert_int_equal(sysd_listen_fds(&l), 2);
		assert_listen_env_gone();
		assert_string_equal(l.count, "2");
		assert_string_equal(l.names[0], cases[i].first);
		assert_string_equal(l.names[1], cases[i].second);
	}
	/* None given: none kept, also from an earlier call. */
	set_listen(me, "2");
	unsetenv("LISTEN_FDNAMES");
	assert_int_equal(sysd_listen_fds(&l), 2);
	assert_string_equal(l.names[0], "");
	for (int i = 0; i < 2; i++)
		if (flags[i] >= 0)
			fcntl(SYSD_LISTEN_FDS_START + i, F_SETFD, flags[i]);
}

static int bound_dgram(struct sockaddr_un *sa, socklen_t len)
{
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)sa, len), 0);
	return s;
}

static void assert_got(int s, const char *want)
{
	char buf[64];
	ssize_t n = recv(s, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void test_notify(void **state)
{
	char dir[] = "/tmp/vdc-sysd.XXXXXX", abstract[64];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;
	int s;

	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(sysd_notify("READY=1"), 0);
	/* A path. */
	assert_non_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
	s = bound_dgram(&sa, sizeof(sa));
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	assert_int_equal(sysd_notify("READY=1"), 1);
	assert_got(s, "READY=1");
	close(s);
	unlink(sa.sun_path);
	rmdir(dir);
	/* The abstract namespace ('@' for the leading NUL). */
	snprintf(abstract, sizeof(abstract), "@vdc-sysd-%d", (int)getpid());
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, abstract + 1, strlen(abstract) - 1);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(abstract));
	s = bound_dgram(&sa, len);
	setenv("NOTIFY_SOCKET", abstract, 1);
	assert_int_equal(sysd_notify("STATUS=x"), 1);
	assert_got(s, "STATUS=x");
	close(s);
	/* Nobody there, or nonsense: an error, never a wait. */
	setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1);
	assert_true(sysd_notify("READY=1") < 0);
	setenv("NOTIFY_SOCKET", "relative", 1);
	assert_int_equal(sysd_notify("READY=1"), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

static void test_check_socket(void **state)
{
	int sv[2], l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[] = "/tmp/vdc-sysd.XXXXXX";
	const char *why;
	bool listening = false;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(sysd_check_socket(sv[0], &listening, &why), 0);
	assert_false(listening);
	assert_non_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/l", dir);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(sysd_check_socket(l, &listening, &why), -ENOTCONN);
	assert_non_null(strstr(why, "neither listening nor connected"));
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(sysd_check_socket(l, &listening, &why), 0);
	assert_true(listening);
	assert_int_equal(sysd_check_socket(-1, &listening, &why), -EBADF);
	close(sv[0]);
	close(sv[1]);
	close(l);
	unlink(sa.sun_path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_listen_fds),	   cmocka_unit_test(test_listen_fds_refused),
	    cmocka_unit_test(test_listen_fdnames), cmocka_unit_test(test_notify),
	    cmocka_unit_test(test_check_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
