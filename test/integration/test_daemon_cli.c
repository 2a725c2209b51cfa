/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon binary's command line and start-up checks, run for real.
 * What needs CAN in the kernel (an existing vcan) is covered by the VM suite;
 * here the host kernel decides which message a bad interface gets.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/can.h>

#include <cmocka.h>

#ifndef VDC_DAEMON_PATH
#error "VDC_DAEMON_PATH must name the daemon binary"
#endif

struct run {
	int status; /* exit code, or 128 + signal */
	char out[8192];
	char err[8192];
};

static void read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
}

/* When > 0, the child gets LISTEN_PID (its own) and LISTEN_FDS=child_listen_fds. */
static int child_listen_fds;

/* Run the daemon with the given arguments (NULL-terminated), capture its output. */
static void run_daemon(struct run *r, ...)
{
	const char *argv[16] = {VDC_DAEMON_PATH};
	int out[2], err[2], st, argc = 1;
	va_list ap;
	pid_t pid;

	va_start(ap, r);
	while (argc < 15 && (argv[argc] = va_arg(ap, const char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;

	assert_int_equal(pipe(out), 0);
	assert_int_equal(pipe(err), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		alarm(20); /* a start-up check must never hang */
		if (child_listen_fds > 0) {
			char v[32];

			snprintf(v, sizeof(v), "%d", (int)getpid());
			setenv("LISTEN_PID", v, 1);
			snprintf(v, sizeof(v), "%d", child_listen_fds);
			setenv("LISTEN_FDS", v, 1);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	/* Outputs are small: read stderr after stdout without deadlock risk. */
	read_all(out[0], r->out, sizeof(r->out));
	read_all(err[0], r->err, sizeof(r->err));
	close(out[0]);
	close(err[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool kernel_has_can(void)
{
	int s = socket(AF_CAN, SOCK_RAW, CAN_RAW);

	if (s < 0)
		return false;
	close(s);
	return true;
}

static void test_help(void **state)
{
	struct run r;

	(void)state;
	run_daemon(&r, "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Usage: vhost-device-can"));
	assert_non_null(strstr(r.out, "--socket-path=PATH"));
	assert_non_null(strstr(r.out, "--can-in=IFACE"));
	assert_non_null(strstr(r.out, "--can-out=IFACE"));
	run_daemon(&r, "-h", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Usage: vhost-device-can"));
}

static void test_version(void **state)
{
	struct run r;

	(void)state;
	run_daemon(&r, "--version", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "vhost-device-can " VDC_VERSION "\n");
}

static void test_missing_all(void **state)
{
	struct run r;

	(void)state;
	run_daemon(&r, NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "missing --socket-path --can-in --can-out"));
}

static void test_missing_can_out(void **state)
{
	struct run r;

	(void)state;
	run_daemon(&r, "-s", "/tmp/x.sock", "-i", "vcan0", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "missing --can-out"));
	assert_null(strstr(r.err, "--can-in "));
}

static void test_bad_numbers(void **state)
{
	struct run r;

	(void)state;
	run_daemon(&r, "-s", "x", "-i", "a", "-o", "b", "--rx-backlog=0", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "--rx-backlog: '0' is not a number"));
	run_daemon(&r, "-s", "x", "-i", "a", "-o", "b", "--tx-ack-timeout=12ms", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "--tx-ack-timeout: '12ms'"));
}

static void test_unknown_option(void **state)
{
	struct run r;

	(void)state;
	run_daemon(&r, "--frobnicate", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "--help"));
	run_daemon(&r, "-s", "x", "-i", "a", "-o", "b", "extra", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "unexpected argument 'extra'"));
}

/* The first thing a user on a stripped kernel sees. */
static void test_no_such_interface(void **state)
{
	char dir[] = "/tmp/vdc-cli-XXXXXX", path[64];
	struct stat st;
	struct run r;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/can.sock", dir);
	run_daemon(&r, "--socket-path", path, "--can-in=nosuchcan7", "--can-out=nosuchcan7", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "--can-in=nosuchcan7"));
	if (kernel_has_can())
		assert_non_null(strstr(r.err, "no such network interface"));
	else
		assert_non_null(strstr(r.err, "the kernel has no CAN support"));
	/* Checks come before listening: nothing was created. */
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
	rmdir(dir);
}

/* A path that is something else than a socket is never replaced. */
static void test_socket_path_not_a_socket(void **state)
{
	char dir[] = "/tmp/vdc-cli-XXXXXX", path[64];
	struct stat st;
	struct run r;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/precious", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("keep me\n", f);
	fclose(f);
	run_daemon(&r, "-s", path, "-i", "nosuchcan7", "-o", "nosuchcan7", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "exists and is not a socket"));
	assert_non_null(strstr(r.err, path));
	/* The file is untouched. */
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 8);
	/* A directory is refused the same way. */
	run_daemon(&r, "-s", dir, "-i", "nosuchcan7", "-o", "nosuchcan7", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "exists and is not a socket"));
	assert_int_equal(unlink(path), 0);
	rmdir(dir);
}

/*
 * --print-capabilities: JSON on stdout, exit 0, before any other check (an
 * unknown option and a missing interface change nothing). Parsed by
 * Python's json module, the way a manager would read it.
 */
static void test_print_capabilities(void **state)
{
	char path[] = "/tmp/vdc-caps-XXXXXX";
	char cmd[512];
	struct run r;
	FILE *f;
	int fd;

	(void)state;
	run_daemon(&r, "--frobnicate", "-i", "nosuchcan7", "--print-capabilities", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(r.out, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import json,sys; c = json.load(open(sys.argv[1])); "
		 "assert c[\"type\"] == \"can\", c; "
		 "assert all(isinstance(x, str) for x in c[\"features\"]), c' %s",
		 path);
	assert_int_equal(system(cmd), 0);
	unlink(path);
}

/* A wrong --fd exits 1 naming the fd and what is wrong, before the interfaces. */
static void test_fd_wrong(void **state)
{
	struct {
		int domain, type;
		bool do_pipe;
		const char *why;
	} cases[] = {
	    {0, 0, true, "not a socket"},
	    {AF_INET, SOCK_STREAM, false, "not a unix socket"},
	    {AF_UNIX, SOCK_DGRAM, false, "not a stream socket"},
	    {AF_UNIX, SOCK_STREAM, false, "neither listening nor connected"},
	};
	char arg[32], want[64];
	struct run r;

	(void)state;
	run_daemon(&r, "--fd=57", "-i", "nosuchcan7", "-o", "nosuchcan7", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "--fd=57: not an open file descriptor"));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int p[2] = {-1, -1}, fd;

		if (cases[i].do_pipe) {
			assert_int_equal(pipe(p), 0);
			fd = p[0];
		} else {
			fd = socket(cases[i].domain, cases[i].type, 0);
		}
		assert_true(fd >= 0);
		snprintf(arg, sizeof(arg), "--fd=%d", fd);
		run_daemon(&r, arg, "-i", "nosuchcan7", "-o", "nosuchcan7", NULL);
		assert_int_equal(r.status, 1);
		snprintf(want, sizeof(want), "%s: %s", arg, cases[i].why);
		if (!strstr(r.err, want))
			fail_msg("case %zu: want '%s' in: %s", i, want, r.err);
		close(fd);
		if (p[1] >= 0)
			close(p[1]);
	}
	/* A socket path and an fd at once. */
	run_daemon(&r, "-s", "/tmp/x.sock", "--fd=0", "-i", "a", "-o", "b", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "not both"));
}

/* --device: its own syntax errors, and no mixing with the one-device options. */
static void test_device_usage(void **state)
{
	struct run r;

	(void)state;
	run_daemon(&r, "--device", "socket-path=/tmp/a.sock,can-in=a,can-out=b", "-i", "x", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "cannot be mixed"));
	run_daemon(&r, "--device", "socket-path=/tmp/a.sock,can-in=a,can-ot=b", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "unknown key 'can-ot'"));
	run_daemon(&r, "--device", "socket-path=/tmp/a.sock,can-in=a", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "--device: missing can-out"));
	run_daemon(&r, "--device", "socket-path=/tmp/a.sock,can-in=a,can-out=b,rx-backlog=0", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "rx-backlog: '0' is not a number"));
	run_daemon(&r, "--device", "socket-path=/tmp/a.sock,can-in=a,can-out=b", "--device",
		   "socket-path=/tmp/a.sock,can-in=c,can-out=d", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "socket path /tmp/a.sock given twice"));
	run_daemon(&r, "--device", "socket-path=/tmp/a.sock,can-in=a,can-out", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "'can-out' needs a value"));
}

/*
 * Every device is checked before any listens: the second device's bad
 * socket path leaves the first one's socket uncreated.
 */
static void test_device_checked_before_listening(void **state)
{
	char dir[] = "/tmp/vdc-cli-XXXXXX", a[64], b[64], spec_a[128], spec_b[128];
	struct stat st;
	struct run r;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/a.sock", dir);
	snprintf(b, sizeof(b), "%s/b.file", dir);
	f = fopen(b, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(spec_a, sizeof(spec_a), "socket-path=%s,can-in=nosuchcan7,can-out=nosuchcan7", a);
	snprintf(spec_b, sizeof(spec_b), "socket-path=%s,can-in=nosuchcan7,can-out=nosuchcan7", b);
	run_daemon(&r, "--device", spec_a, "--device", spec_b, NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "exists and is not a socket"));
	assert_int_equal(stat(a, &st), -1);
	unlink(b);
	rmdir(dir);
}

/* systemd passing a different number of sockets than devices need: exit 1. */
static void test_activation_count(void **state)
{
	struct run r;

	(void)state;
	child_listen_fds = 2;
	run_daemon(&r, "-i", "nosuchcan7", "-o", "nosuchcan7", NULL);
	child_listen_fds = 0;
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "1 device(s) without a socket, but systemd passed 2"));
	/* Without activation, a missing socket is a usage error. */
	run_daemon(&r, "-i", "nosuchcan7", "-o", "nosuchcan7", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "missing --socket-path"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_help),
	    cmocka_unit_test(test_version),
	    cmocka_unit_test(test_missing_all),
	    cmocka_unit_test(test_missing_can_out),
	    cmocka_unit_test(test_bad_numbers),
	    cmocka_unit_test(test_unknown_option),
	    cmocka_unit_test(test_no_such_interface),
	    cmocka_unit_test(test_socket_path_not_a_socket),
	    cmocka_unit_test(test_print_capabilities),
	    cmocka_unit_test(test_fd_wrong),
	    cmocka_unit_test(test_device_usage),
	    cmocka_unit_test(test_device_checked_before_listening),
	    cmocka_unit_test(test_activation_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
