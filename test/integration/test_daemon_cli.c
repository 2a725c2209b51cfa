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
#include <sys/un.h>
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
/* Or, when set, LISTEN_FDS=child_listen_text (anything, for the refusals). */
static const char *child_listen_text;
/* With either: LISTEN_FDNAMES, when set. */
static const char *child_fdnames;
/* When >= 0: becomes fd 3 in the child (where systemd puts the first socket). */
static int child_fd3 = -1;

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
		if (child_fd3 >= 0 && dup2(child_fd3, 3) != 3)
			_exit(126);
		if (child_listen_fds > 0 || child_listen_text) {
			char v[32];

			snprintf(v, sizeof(v), "%d", (int)getpid());
			setenv("LISTEN_PID", v, 1);
			snprintf(v, sizeof(v), "%d", child_listen_fds);
			setenv("LISTEN_FDS", child_listen_text ? child_listen_text : v, 1);
			if (child_fdnames)
				setenv("LISTEN_FDNAMES", child_fdnames, 1);
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
 * A device's option and its --device key are one thing: --name as an
 * option, link-up=1 as a key, and the same bound both ways. Accepted means
 * the daemon gets as far as the interfaces (exit 1, not 2).
 */
static void test_device_keys_as_options(void **state)
{
	struct run r;

	(void)state;
	run_daemon(&r, "--name=bus0", "-s", "/nonexistent-dir/x.sock", "-i", "no-such-can0", "-o",
		   "no-such-can0", NULL);
	assert_int_equal(r.status, 1);
	run_daemon(&r, "--device",
		   "socket-path=/nonexistent-dir/x.sock,can-in=no-such-can0,can-out=no-such-can0,"
		   "link-up=1",
		   NULL);
	assert_int_equal(r.status, 1);
	run_daemon(&r, "-s", "/nonexistent-dir/x.sock", "-i", "no-such-can0", "-o", "no-such-can0",
		   "--tx-ack-timeout=600001", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "--tx-ack-timeout: '600001' is not a number in 1..600000"));
	run_daemon(&r, "--device",
		   "socket-path=/nonexistent-dir/x.sock,can-in=no-such-can0,can-out=no-such-can0,"
		   "tx-ack-timeout=600001",
		   NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(
	    strstr(r.err, "--device tx-ack-timeout: '600001' is not a number in 1..600000"));
	run_daemon(&r, "--help", NULL);
	assert_non_null(strstr(r.out, "--name=NAME"));
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

/* The child's environment back to none, also after a failed test. */
static int reset_child(void **state)
{
	(void)state;
	child_listen_fds = 0;
	child_listen_text = NULL;
	child_fdnames = NULL;
	child_fd3 = -1;
	return 0;
}

/* A listening unix socket at path (inherited by the daemon: no CLOEXEC). */
static int listening_at(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(s >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s, 1), 0);
	return s;
}

static void assert_err_has(const struct run *r, const char *want)
{
	if (!strstr(r->err, want))
		fail_msg("want '%s' in stderr: %s", want, r->err);
}

/*
 * One socket for two devices is refused at start-up, naming both devices
 * and where each got the fd, before any interface or socket is touched:
 * also when one of them takes its fd from systemd (assigned after the
 * command line was read: the check used to run before that, and both
 * devices then accepted on fd 3), and for two fds of one socket (dup).
 */
static void test_fd_given_twice(void **state)
{
	char dir[] = "/tmp/vdc-cli-XXXXXX", path[64], spec1[64], spec2[64];
	int l, l2;
	struct run r;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/l.sock", dir);
	l = listening_at(path);
	child_fd3 = l;
	child_listen_fds = 1;
	run_daemon(&r, "--device", "fd=3,can-in=nosuchcan7,can-out=nosuchcan7", "--device",
		   "can-in=nosuchcan8,can-out=nosuchcan8", NULL);
	assert_int_equal(r.status, 1);
	assert_err_has(&r, "one socket given twice: --device #1 (nosuchcan7) has --device fd=3, "
			   "--device #2 (nosuchcan8) has LISTEN_FDS fd 3;");
	assert_null(strstr(r.err, "nosuchcan7:"));
	assert_null(strstr(r.err, "--can-in"));
	/* The other way round, the systemd socket named by LISTEN_FDNAMES. */
	child_fdnames = "can-b.socket";
	run_daemon(&r, "--device", "can-in=nosuchcan7,can-out=nosuchcan7,name=a", "--device",
		   "can-in=nosuchcan7,can-out=nosuchcan8,fd=3", NULL);
	child_fdnames = NULL;
	child_listen_fds = 0;
	child_fd3 = -1;
	assert_int_equal(r.status, 1);
	assert_err_has(&r, "--device #1 (name=a) has LISTEN_FDS fd 3 (name \"can-b.socket\"), "
			   "--device #2 (nosuchcan7>nosuchcan8) has --device fd=3;");
	/* Two fds, one socket. */
	l2 = dup(l);
	assert_true(l2 > l);
	snprintf(spec1, sizeof(spec1), "fd=%d,can-in=nosuchcan7,can-out=nosuchcan7", l);
	snprintf(spec2, sizeof(spec2), "fd=%d,can-in=nosuchcan7,can-out=nosuchcan7", l2);
	run_daemon(&r, "--device", spec1, "--device", spec2, NULL);
	assert_int_equal(r.status, 1);
	assert_err_has(&r, "one socket given twice");
	assert_err_has(&r, "(the same socket)");
	close(l2);
	close(l);
	unlink(path);
	rmdir(dir);
}

/*
 * One socket file under two spellings (./, a symlinked directory, and an
 * inherited socket's own path): "given twice" at start-up, nothing created.
 * It used to pass the checks, and the second device then took the first,
 * in the same process, for "another process listening".
 */
static void test_socket_path_two_spellings(void **state)
{
	char dir[] = "/tmp/vdc-cli-XXXXXX", link[64], a[64], a2[64], a3[64], spec1[128], spec2[128];
	const char *second[2];
	struct stat st;
	struct run r;
	int l;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(link, sizeof(link), "%s/link", dir);
	assert_int_equal(symlink(".", link), 0);
	snprintf(a, sizeof(a), "%s/a.sock", dir);
	snprintf(a2, sizeof(a2), "%s/./a.sock", dir);
	snprintf(a3, sizeof(a3), "%s/link/a.sock", dir);
	second[0] = a2;
	second[1] = a3;
	snprintf(spec1, sizeof(spec1), "socket-path=%s,can-in=nosuchcan7,can-out=nosuchcan7", a);
	for (unsigned int i = 0; i < 2; i++) {
		snprintf(spec2, sizeof(spec2),
			 "socket-path=%s,can-in=nosuchcan8,can-out=nosuchcan8", second[i]);
		run_daemon(&r, "--device", spec1, "--device", spec2, NULL);
		assert_int_equal(r.status, 1);
		assert_err_has(&r, "socket path given twice: --device #1 (nosuchcan7) has ");
		assert_err_has(&r, second[i]);
		assert_err_has(&r, "the same socket file");
		assert_null(strstr(r.err, "another process"));
		assert_null(strstr(r.err, "--can-in"));
		assert_int_equal(lstat(a, &st), -1);
	}
	/* Different names in one directory are two sockets: past this check. */
	snprintf(spec2, sizeof(spec2), "socket-path=%s/b.sock,can-in=nosuchcan8,can-out=nosuchcan8",
		 dir);
	run_daemon(&r, "--device", spec1, "--device", spec2, NULL);
	assert_int_equal(r.status, 1);
	assert_null(strstr(r.err, "given twice"));
	assert_err_has(&r, "--can-in=nosuchcan7");
	/* An inherited listening socket and a path to the file it is bound to. */
	l = listening_at(a);
	snprintf(spec1, sizeof(spec1), "fd=%d,can-in=nosuchcan7,can-out=nosuchcan7", l);
	snprintf(spec2, sizeof(spec2), "socket-path=%s,can-in=nosuchcan8,can-out=nosuchcan8", a3);
	run_daemon(&r, "--device", spec1, "--device", spec2, NULL);
	assert_int_equal(r.status, 1);
	assert_err_has(&r, "socket path given twice");
	assert_err_has(&r, " by --device fd=");
	close(l);
	unlink(a);
	unlink(link);
	rmdir(dir);
}

/* LISTEN_FDS refused for what it is: too many (naming the bound), or not a number. */
static void test_activation_refused(void **state)
{
	struct run r;

	(void)state;
	child_listen_text = "65";
	run_daemon(&r, "-i", "nosuchcan7", "-o", "nosuchcan7", NULL);
	assert_int_equal(r.status, 1);
	assert_err_has(&r, "LISTEN_FDS=65: too many sockets (at most 64 are taken");
	assert_null(strstr(r.err, "not a number"));
	child_listen_text = "two";
	run_daemon(&r, "-i", "nosuchcan7", "-o", "nosuchcan7", NULL);
	child_listen_text = NULL;
	assert_int_equal(r.status, 1);
	assert_err_has(&r, "LISTEN_FDS='two' is not a number");
}

/* A systemd socket is named by where it came from, never as a --fd not given. */
static void test_activation_fd_named(void **state)
{
	int p[2];
	struct run r;

	(void)state;
	assert_int_equal(pipe(p), 0);
	child_fd3 = p[0];
	child_listen_fds = 1;
	run_daemon(&r, "-i", "nosuchcan7", "-o", "nosuchcan7", NULL);
	assert_int_equal(r.status, 1);
	assert_err_has(&r, "vhost-device-can: LISTEN_FDS fd 3: not a socket");
	assert_null(strstr(r.err, "--fd"));
	child_fdnames = "can0.socket";
	run_daemon(&r, "-i", "nosuchcan7", "-o", "nosuchcan7", NULL);
	assert_int_equal(r.status, 1);
	assert_err_has(&r, "LISTEN_FDS fd 3 (name \"can0.socket\"): not a socket");
	child_fdnames = NULL;
	child_listen_fds = 0;
	child_fd3 = -1;
	close(p[0]);
	close(p[1]);
}

/* The guest memory limits take sizes with binary suffixes, within 1M..4096P. */
static void test_guest_mem_sizes(void **state)
{
	static const char *const bad[] = {"0", "512K", "1x", "1Tb", "-1", "5000P", "1 ", ""};
	static const char *const good[] = {"1M", "64m", "1GiB", "16G", "1T", "4096P", "1048576"};
	char arg[64];
	struct run r;

	(void)state;
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(arg, sizeof(arg), "--guest-mem-limit=%s", bad[i]);
		run_daemon(&r, "-s", "x", "-i", "a", "-o", "b", arg, NULL);
		assert_int_equal(r.status, 2);
		assert_non_null(strstr(r.err, "--guest-mem-limit: '"));
		assert_non_null(strstr(r.err, "is not a size from 1M to 4096P"));
		snprintf(arg, sizeof(arg), "--guest-mem-total=%s", bad[i]);
		run_daemon(&r, "-s", "x", "-i", "a", "-o", "b", arg, NULL);
		assert_int_equal(r.status, 2);
		assert_non_null(strstr(r.err, "--guest-mem-total: '"));
		snprintf(arg, sizeof(arg),
			 "socket-path=/tmp/a.sock,can-in=a,can-out=b,"
			 "guest-mem-limit=%s",
			 bad[i]);
		run_daemon(&r, "--device", arg, NULL);
		assert_int_equal(r.status, 2);
		assert_true(strstr(r.err, "--device guest-mem-limit: '") ||
			    strstr(r.err, "'guest-mem-limit' needs a value"));
	}
	/* Accepted: the daemon gets as far as the interfaces (exit 1, not 2). */
	for (unsigned int i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(arg, sizeof(arg), "--guest-mem-limit=%s", good[i]);
		run_daemon(&r, "-s", "/nonexistent-dir/x.sock", "-i", "no-such-can0", "-o",
			   "no-such-can0", arg, "--guest-mem-total=8T", NULL);
		assert_int_equal(r.status, 1);
		assert_null(strstr(r.err, "is not a size"));
	}
	run_daemon(&r, "--help", NULL);
	assert_non_null(strstr(r.out, "--guest-mem-limit=SIZE"));
	assert_non_null(strstr(r.out, "--guest-mem-total=SIZE"));
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
	    cmocka_unit_test(test_device_keys_as_options),
	    cmocka_unit_test(test_device_checked_before_listening),
	    cmocka_unit_test(test_activation_count),
	    cmocka_unit_test_teardown(test_fd_given_twice, reset_child),
	    cmocka_unit_test_teardown(test_socket_path_two_spellings, reset_child),
	    cmocka_unit_test_teardown(test_activation_refused, reset_child),
	    cmocka_unit_test_teardown(test_activation_fd_named, reset_child),
	    cmocka_unit_test(test_guest_mem_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
