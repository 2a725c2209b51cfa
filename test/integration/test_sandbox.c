/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon's confinement, tried from the inside: each case forks a
 * child that confines itself with the daemon's own code (sandbox.c) and
 * then tries one thing the daemon must never do. Kill mode: the child dies
 * of SIGSYS. Log mode: the call goes through (the kernel logs it). The
 * filesystem (Landlock) refuses writes outside the capture folders with
 * EACCES, and the capability sets end up empty, or CAP_NET_ADMIN alone.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/can.h>
#include <linux/netlink.h>

#include <cmocka.h>

#include "can_port.h"
#include "sandbox.h"

#define CAP_NET_ADMIN_BIT 12
#include "tfd.h"
#include "vhost-user/vlog.h"

/* Run fn in a child confined by the seccomp filter alone: its wait status. */
static int in_child(enum sandbox_seccomp mode, int (*fn)(void))
{
	int st;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (sandbox_install_seccomp(mode) != 0)
			_exit(100);
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void assert_killed(int (*fn)(void), const char *what)
{
	int st = in_child(SANDBOX_SECCOMP_KILL, fn);

	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS)
		fail_msg("%s: not killed by the filter (status %#x)", what, st);
}

static void assert_lives(enum sandbox_seccomp mode, int (*fn)(void), const char *what)
{
	int st = in_child(mode, fn);

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("%s: the child did not live through it (status %#x)", what, st);
}

static int do_execve(void)
{
	char *const argv[] = {"true", NULL};

	execve("/bin/true", argv, environ);
	return 1;
}

#ifndef VDC_SANITIZERS
static int do_ptrace(void)
{
	(void)ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	return 1;
}
#endif

static int do_socket_inet(void)
{
	(void)socket(AF_INET, SOCK_STREAM, 0);
	return 1;
}

static int do_socket_inet_ok(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0)
		return 1;
	close(s);
	return 0;
}

static int do_socket_unix(void)
{
	(void)socket(AF_UNIX, SOCK_DGRAM, 0);
	return 1;
}

static int do_socket_uevent(void)
{
	(void)socket(AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT);
	return 1;
}

static int do_mount(void)
{
	(void)mount("none", "/mnt", "tmpfs", 0, NULL);
	return 1;
}

static int do_setuid(void)
{
	(void)setuid(0);
	return 1;
}

static int do_mmap_exec(void)
{
	(void)mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return 1;
}

static int do_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	/* Any fd: the call itself is what is refused. */
	(void)connect(0, (struct sockaddr *)&sa, sizeof(sa));
	return 1;
}

static int do_kill_parent(void)
{
	(void)kill(getppid(), 0);
	return 1;
}

static int do_unshare(void)
{
	(void)unshare(CLONE_NEWUSER);
	return 1;
}

/* if_nametoindex as a shared library finds it: the first in the process. */
static unsigned int lookup_ifindex(const char *name)
{
	unsigned int (*fn)(const char *) =
	    (unsigned int (*)(const char *))dlsym(RTLD_DEFAULT, "if_nametoindex");

	/* The port's code is linked here, as in the daemon. */
	(void)can_port_strerror(0);
	return fn ? fn(name) : 0;
}

/* What the loop does: the same calls must pass (results do not matter here). */
static int do_daemon_calls(void)
{
	int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	int can = socket(AF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW);
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (nl < 0)
		return 2;
	/* The host kernel may lack CAN: EAFNOSUPPORT, not death, is the point. */
	if (can < 0 && errno != EAFNOSUPPORT)
		return 3;
	if (p == MAP_FAILED || munmap(p, 4096) != 0)
		return 4;
	/*
	 * Name lookups as libsocketcan makes them (--link-up at a guest's
	 * START, a re-plug): the first if_nametoindex of the process, the
	 * port's own.
	 */
	if (lookup_ifindex("lo") != 1)
		return 5;
	close(nl);
	if (can >= 0)
		close(can);
	return 0;
}

static void test_kill_mode_kills_what_the_daemon_never_does(void **state)
{
	(void)state;
	assert_killed(do_execve, "execve");
	assert_killed(do_socket_inet, "socket(AF_INET)");
	assert_killed(do_socket_unix, "socket(AF_UNIX)");
	assert_killed(do_socket_uevent, "socket(AF_NETLINK, KOBJECT_UEVENT)");
	assert_killed(do_mount, "mount");
	assert_killed(do_setuid, "setuid");
	assert_killed(do_mmap_exec, "mmap(PROT_EXEC)");
	assert_killed(do_connect, "connect");
	assert_killed(do_kill_parent, "kill(another process)");
	assert_killed(do_unshare, "unshare");
#ifndef VDC_SANITIZERS
	assert_killed(do_ptrace, "ptrace");
#else
	/* LeakSanitizer stops the world with ptrace: sanitizer builds allow it. */
	printf("SKIPPED: ptrace (allowed in sanitizer builds)\n");
#endif
}

static void test_daemon_calls_pass(void **state)
{
	(void)state;
	assert_lives(SANDBOX_SECCOMP_KILL, do_daemon_calls, "the loop's calls");
}

static void test_log_mode_lets_calls_through(void **state)
{
	(void)state;
	assert_lives(SANDBOX_SECCOMP_LOG, do_socket_inet_ok, "socket(AF_INET) in log mode");
}

/* ---- the whole sandbox: filesystem, capabilities, limits ---------------- */

static char dir_cap[64], dir_sock[64], dir_other[64];

static int sbx_setup(void **state)
{
	(void)state;
	snprintf(dir_cap, sizeof(dir_cap), "/tmp/vdc-sbx-cap.XXXXXX");
	snprintf(dir_sock, sizeof(dir_sock), "/tmp/vdc-sbx-sock.XXXXXX");
	snprintf(dir_other, sizeof(dir_other), "/tmp/vdc-sbx-other.XXXXXX");
	if (!mkdtemp(dir_cap) || !mkdtemp(dir_sock) || !mkdtemp(dir_other))
		return -1;
	return 0;
}

static void rm_dir(const char *d)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", d);
}

static int sbx_teardown(void **state)
{
	(void)state;
	rm_dir(dir_cap);
	rm_dir(dir_sock);
	rm_dir(dir_other);
	return 0;
}

/* A line "Key:\tvalue" of /proc/PID/status (from outside: the child cannot read /proc). */
static unsigned long long status_field(pid_t pid, const char *key, int base)
{
	char line[256], path[64];
	FILE *f;
	unsigned long long v = ~0ull;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':')
			v = strtoull(line + strlen(key) + 1, NULL, base);
	fclose(f);
	return v;
}

/*
 * In a child: the whole sandbox as the daemon applies it with a capture
 * file in dir_cap and a socket in dir_sock; a byte on ready when done, then
 * (after a byte on go) every check, each failing with its own exit code.
 */
static int confined_child(bool net_admin, int ready, int go)
{
	struct sandbox_config cfg = {.seccomp = SANDBOX_SECCOMP_KILL, .net_admin = net_admin,
				     .nofile = 64};
	char cap[128], sock[128], other[128], rotated[128], b = 0;
	bool landlock = sandbox_landlock_abi() > 0;
	int fd;

	snprintf(cap, sizeof(cap), "%s/can0.log", dir_cap);
	snprintf(rotated, sizeof(rotated), "%s/can0.log.new", dir_cap);
	snprintf(sock, sizeof(sock), "%s/can0.sock", dir_sock);
	snprintf(other, sizeof(other), "%s/x", dir_other);
	fd = open(sock, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return 10;
	close(fd);
	cfg.write_files[cfg.nwrite++] = cap;
	cfg.remove_files[cfg.nremove++] = sock;
	if (sandbox_apply(&cfg) != 0)
		return 11;
	if (write(ready, &b, 1) != 1 || read(go, &b, 1) != 1)
		return 12;
	if (!landlock)
		return 0;
	/* The capture folder: create and write (rotation makes a new file). */
	fd = open(rotated, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return 20;
	close(fd);
	/* Anywhere else: no writing, no reading. */
	if (open(other, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) >= 0 || errno != EACCES)
		return 21;
	if (open("/etc/hostname", O_RDONLY | O_CLOEXEC) >= 0 || errno != EACCES)
		return 22;
	/* No removing in the capture folder; the socket's own may. */
	if (unlink(rotated) == 0 || errno != EACCES)
		return 23;
	if (unlink(sock) != 0)
		return 24;
	return 0;
}

/* What /proc/PID/status and the limits show of the confined child. */
struct seen {
	unsigned long long nnp, seccomp, eff, prm, amb, bnd;
	struct rlimit core, nofile;
};

/* The child confines itself; what the kernel shows of it is checked here. */
static void run_confined(bool net_admin)
{
	uint64_t want = net_admin && getuid() == 0 ? 1ull << CAP_NET_ADMIN_BIT : 0;
	struct rlimit before;
	struct seen v;
	int ready[2], go[2], st, hi;
	bool got;
	char b = 0;
	pid_t pid;

	memset(&v, 0xff, sizeof(v));
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &before), 0);
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	hi = tfd_highest();
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		_exit(confined_child(net_admin, ready[1], go[0]));
	}
	close(ready[1]);
	close(go[0]);
	got = read(ready[0], &b, 1) == 1;
	if (got) {
		v.nnp = status_field(pid, "NoNewPrivs", 10);
		v.seccomp = status_field(pid, "Seccomp", 10);
		v.eff = status_field(pid, "CapEff", 16);
		v.prm = status_field(pid, "CapPrm", 16);
		v.amb = status_field(pid, "CapAmb", 16);
		v.bnd = status_field(pid, "CapBnd", 16);
		(void)prlimit(pid, RLIMIT_CORE, NULL, &v.core);
		(void)prlimit(pid, RLIMIT_NOFILE, NULL, &v.nofile);
		(void)write(go[1], &b, 1);
	}
	close(ready[0]);
	close(go[1]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("confined child failed check %d (status %#x)",
			 WIFEXITED(st) ? WEXITSTATUS(st) : -1, st);
	assert_true(got);
	assert_int_equal(v.nnp, 1);
	assert_int_equal(v.seccomp, 2);
	assert_int_equal(v.eff, want);
	assert_int_equal(v.prm, want);
	assert_int_equal(v.amb, 0);
	if (getuid() == 0)
		assert_int_equal(v.bnd, 0);
	/* No core dumps; open files: what was asked (64), or the highest fd open + 16. */
	assert_int_equal(v.core.rlim_cur, 0);
	assert_true(v.nofile.rlim_cur <= (hi + 16 > 64 ? (rlim_t)hi + 16 : 64));
	assert_true(v.nofile.rlim_cur < before.rlim_cur);
}

static void test_confined_without_capabilities(void **state)
{
	(void)state;
	if (sandbox_landlock_abi() <= 0)
		printf("SKIPPED: the filesystem checks (this kernel has no Landlock)\n");
	run_confined(false);
}

static void test_confined_keeps_net_admin_only(void **state)
{
	(void)state;
	if (getuid() != 0)
		printf("SKIPPED: CAP_NET_ADMIN kept (not root: nothing to keep)\n");
	run_confined(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kill_mode_kills_what_the_daemon_never_does),
	    cmocka_unit_test(test_daemon_calls_pass),
	    cmocka_unit_test(test_log_mode_lets_calls_through),
	    cmocka_unit_test(test_confined_without_capabilities),
	    cmocka_unit_test(test_confined_keeps_net_admin_only),
	};

	vlog_set_level(VLOG_WARN);
	return cmocka_run_group_tests(tests, sbx_setup, sbx_teardown);
}
