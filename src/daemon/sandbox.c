/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon confines itself (see sandbox.h). Libraries: libseccomp builds
 * the filter (architecture checks, syscall numbers per architecture,
 * argument comparisons done right on 32- and 64-bit), libcap-ng sets the
 * capability sets (bounding, ambient, effective, permitted: four kernel
 * interfaces with their own ordering rules). Landlock has no library in
 * Debian 12: its three system calls are used directly, with the rights
 * the running kernel knows (ABI 1 to 6).
 */
#define _GNU_SOURCE
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <linux/can.h>
#include <linux/landlock.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cap-ng.h>
#include <seccomp.h>

#include "vhost-user/vlog.h"

/* Rights newer than Debian 12's kernel headers. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ull << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ull << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ull << 15)
#endif
#define SBX_LL_NET_BIND_TCP (1ull << 0)
#define SBX_LL_NET_CONNECT_TCP (1ull << 1)
#define SBX_LL_SCOPE_ABSTRACT_UNIX (1ull << 0)
#define SBX_LL_SCOPE_SIGNAL (1ull << 1)

/* struct landlock_ruleset_attr as of ABI 6; its size tells the kernel which fields we fill. */
struct sbx_ll_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;	     /* ABI 6 */
};

int sandbox_landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return v < 0 ? -errno : (int)v;
}

/* Every filesystem right the kernel of this ABI can refuse. */
static uint64_t ll_fs_rights(int abi)
{
	uint64_t r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */

	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

static int ll_allow_dir_of(int ruleset, const char *file, uint64_t rights)
{
	struct landlock_path_beneath_attr pb = {.allowed_access = rights};
	char buf[PATH_MAX];
	int ret = 0;

	if (snprintf(buf, sizeof(buf), "%s", file) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	pb.parent_fd = open(dirname(buf), O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pb.parent_fd < 0)
		return -errno;
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0)
		ret = -errno;
	close(pb.parent_fd);
	return ret;
}

/*
 * The filesystem: nothing at all, but creating and writing files in the
 * capture files' folders and removing files in the sockets' folders.
 * PR_SET_NO_NEW_PRIVS must be set. 0, 1 when the kernel has no Landlock
 * (logged, not fatal: the seccomp filter still stands), or -errno.
 */
static int sandbox_landlock(const struct sandbox_config *cfg)
{
	struct sbx_ll_attr attr = {0};
	size_t attr_size = sizeof(attr.handled_access_fs);
	int abi = sandbox_landlock_abi(), rs, ret = 0;

	if (abi < 0) {
		vlog_warn(NULL, "sandbox: the kernel has no Landlock (%s): the filesystem is not "
				"confined",
			  strerror(-abi));
		return 1;
	}
	attr.handled_access_fs = ll_fs_rights(abi);
	if (abi >= 4) {
		/* No TCP at all (the seccomp filter refuses AF_INET already). */
		attr.handled_access_net = SBX_LL_NET_BIND_TCP | SBX_LL_NET_CONNECT_TCP;
		attr_size = offsetof(struct sbx_ll_attr, scoped);
	}
	if (abi >= 6) {
		attr.scoped = SBX_LL_SCOPE_ABSTRACT_UNIX | SBX_LL_SCOPE_SIGNAL;
		attr_size = sizeof(attr);
	}
	rs = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (rs < 0) {
		ret = -errno;
		vlog_err(NULL, "sandbox: Landlock ruleset: %s", strerror(-ret));
		return ret;
	}
	for (unsigned int i = 0; i < cfg->nwrite && ret == 0; i++) {
		uint64_t w = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG |
			     (abi >= 3 ? LANDLOCK_ACCESS_FS_TRUNCATE : 0);

		ret = ll_allow_dir_of(rs, cfg->write_files[i], w);
		if (ret < 0)
			vlog_err(NULL, "sandbox: Landlock rule for the folder of %s: %s",
				 cfg->write_files[i], strerror(-ret));
	}
	for (unsigned int i = 0; i < cfg->nremove && ret == 0; i++) {
		ret = ll_allow_dir_of(rs, cfg->remove_files[i], LANDLOCK_ACCESS_FS_REMOVE_FILE);
		if (ret < 0)
			vlog_err(NULL, "sandbox: Landlock rule for the folder of %s: %s",
				 cfg->remove_files[i], strerror(-ret));
	}
#ifdef VDC_SANITIZERS
	/* LeakSanitizer reads /proc/self/maps and the task list at exit. */
	if (ret == 0) {
		struct landlock_path_beneath_attr pb = {
		    .allowed_access = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR};

		pb.parent_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (pb.parent_fd >= 0) {
			(void)syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
			close(pb.parent_fd);
		}
	}
#endif
	if (ret == 0 && syscall(SYS_landlock_restrict_self, rs, 0) != 0) {
		ret = -errno;
		vlog_err(NULL, "sandbox: Landlock: %s", strerror(-ret));
	}
	close(rs);
	if (ret == 0)
		vlog_info(NULL, "sandbox: filesystem closed (Landlock ABI %d): %u capture folder(s) "
				"writable, %u socket folder(s) for removal",
			  abi, cfg->nwrite, cfg->nremove);
	return ret;
}

/* The highest fd open now, or -1 when /proc is not there to tell. */
static int highest_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int hi = -1;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		long v = strtol(e->d_name, NULL, 10);

		if (e->d_name[0] != '.' && v > hi && v != dirfd(d))
			hi = (int)v;
	}
	closedir(d);
	return hi;
}

static int sandbox_rlimits(const struct sandbox_config *cfg)
{
	struct rlimit rl;
	int hi = highest_fd();

	if (!cfg->core_dumps) {
		rl = (struct rlimit){0, 0};
		if (setrlimit(RLIMIT_CORE, &rl) != 0)
			return -errno;
	}
	if (cfg->nofile && hi >= 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t want = cfg->nofile;

		if (want < (rlim_t)hi + 16)
			want = (rlim_t)hi + 16;
		if (want < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max = want;
			if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
				return -errno;
		}
		vlog_info(NULL, "sandbox: at most %llu open files, no core dumps%s",
			  (unsigned long long)rl.rlim_cur, cfg->core_dumps ? " (kept)" : "");
	}
	return 0;
}

static int sandbox_caps(const struct sandbox_config *cfg)
{
	bool keep, bounds;
	int ret;

	capng_get_caps_process();
	keep = cfg->net_admin && capng_have_capability(CAPNG_PERMITTED, CAP_NET_ADMIN);
	/* Only a process holding CAP_SETPCAP may shrink its bounding set. */
	bounds = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
	capng_clear(CAPNG_SELECT_ALL);
	if (keep &&
	    capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_NET_ADMIN) != 0)
		return -EINVAL;
	ret = capng_apply(bounds ? CAPNG_SELECT_ALL : (CAPNG_SELECT_CAPS | CAPNG_SELECT_AMBIENT));
	if (ret != 0)
		return -EPERM;
	if (cfg->net_admin && !keep)
		vlog_warn(NULL, "sandbox: CAP_NET_ADMIN is needed by the options but not held: "
				"link changes will fail");
	vlog_info(NULL, "sandbox: capabilities: %s%s", keep ? "CAP_NET_ADMIN only" : "none",
		  bounds ? ", bounding set emptied" : "");
	return 0;
}

/* Calls allowed with any arguments. Names unknown on an architecture are skipped. */
static const char *const sbx_calls[] = {
    /* I/O on the fds it holds */
    "read", "write", "readv", "writev", "close", "lseek", "fcntl", "fstat", "newfstatat",
    "statx", "ftruncate", "fsync", "fdatasync",
    /* the loop */
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "timerfd_create", "timerfd_settime",
    "timerfd_gettime", "eventfd2",
    /* sockets it has (frontends, CAN, netlink) */
    "accept4", "recvmsg", "sendmsg", "recvmmsg", "sendmmsg", "recvfrom", "sendto", "getsockopt",
    "setsockopt", "bind", "getsockname", "shutdown",
    /* memory: guest regions come and go; never executable (see below) */
    "munmap", "madvise", "mremap", "brk",
    /* signals (signalfd, the SIGBUS handler) and time */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "clock_gettime",
    "clock_getres", "gettimeofday", "clock_nanosleep", "nanosleep", "restart_syscall",
    /* capture files reopened on SIGHUP (Landlock says where), socket files removed */
    "openat", "unlink", "unlinkat",
    /* the C library */
    "getpid", "gettid", "futex", "getrandom", "sched_yield", "exit", "exit_group",
#ifdef VDC_SANITIZERS
    /* ASan/UBSan/LSan runtime: leak check at exit stops the world with ptrace */
    "clone", "clone3", "ptrace", "wait4", "prctl", "sched_getaffinity", "readlink", "readlinkat",
    "getdents64", "getppid", "open", "pipe2", "dup", "dup2", "dup3",
#endif
};

/* ioctls on sockets: interface lookups, link flags (--link-up), queue levels. */
static const unsigned long sbx_ioctls[] = {
    SIOCGIFINDEX, SIOCGIFNAME, SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFFLAGS, SIOCSIFFLAGS, FIONREAD,
    FIONBIO,
};

/* Argument arg equals v (the SCMP_A* macros leave datum_b to the compiler's mercy). */
static struct scmp_arg_cmp arg_eq(unsigned int arg, scmp_datum_t v)
{
	return (struct scmp_arg_cmp){.arg = arg, .op = SCMP_CMP_EQ, .datum_a = v, .datum_b = 0};
}

/* (argument arg & mask) == v. */
static struct scmp_arg_cmp arg_masked(unsigned int arg, scmp_datum_t mask, scmp_datum_t v)
{
	return (struct scmp_arg_cmp){
	    .arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = mask, .datum_b = v};
}

static int sbx_rule(scmp_filter_ctx ctx, const char *name, unsigned int n,
		    const struct scmp_arg_cmp *args)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not a call of this architecture */
	return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, args);
}

int sandbox_install_seccomp(enum sandbox_seccomp mode)
{
	scmp_filter_ctx ctx;
	pid_t self = getpid();
	int ret = 0;

	/* Foreign architectures (x32 on x86_64, 32-bit on arm64) are killed by default. */
	ctx = seccomp_init(mode == SANDBOX_SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(sbx_calls) / sizeof(sbx_calls[0]) && ret == 0; i++)
		ret = sbx_rule(ctx, sbx_calls[i], 0, NULL);
	/* Memory is never made executable. */
	if (ret == 0) {
		const struct scmp_arg_cmp noexec = arg_masked(2, PROT_EXEC, 0);

		ret = sbx_rule(ctx, "mmap", 1, &noexec);
		if (ret == 0)
			ret = sbx_rule(ctx, "mprotect", 1, &noexec);
	}
	/* Sockets of two families only: CAN (re-bind after a hotplug) and route netlink. */
	if (ret == 0) {
		const struct scmp_arg_cmp can = arg_eq(0, AF_CAN);
		const struct scmp_arg_cmp nl[2] = {arg_eq(0, AF_NETLINK), arg_eq(2, NETLINK_ROUTE)};

		ret = sbx_rule(ctx, "socket", 1, &can);
		if (ret == 0)
			ret = sbx_rule(ctx, "socket", 2, nl);
	}
	for (size_t i = 0; i < sizeof(sbx_ioctls) / sizeof(sbx_ioctls[0]) && ret == 0; i++) {
		const struct scmp_arg_cmp req = arg_eq(1, sbx_ioctls[i]);

		ret = sbx_rule(ctx, "ioctl", 1, &req);
	}
	/* raise() (a SIGBUS not ours is re-raised): to this process only. */
	if (ret == 0) {
		const struct scmp_arg_cmp me = arg_eq(0, (scmp_datum_t)self);

		ret = sbx_rule(ctx, "tgkill", 1, &me);
		if (ret == 0)
			ret = sbx_rule(ctx, "kill", 1, &me);
	}
	if (ret == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		ret = -errno;
	if (ret == 0)
		ret = seccomp_load(ctx);
	seccomp_release(ctx);
	return ret;
}

int sandbox_apply(const struct sandbox_config *cfg)
{
	int ret;

	ret = sandbox_rlimits(cfg);
	if (ret < 0) {
		vlog_err(NULL, "sandbox: resource limits: %s", strerror(-ret));
		return ret;
	}
	ret = sandbox_caps(cfg);
	if (ret < 0) {
		vlog_err(NULL, "sandbox: capabilities: %s", strerror(-ret));
		return ret;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		ret = -errno;
		vlog_err(NULL, "sandbox: no_new_privs: %s", strerror(-ret));
		return ret;
	}
#ifdef VDC_COVERAGE
	/* gcov writes .gcda files wherever the build was, at exit. */
	vlog_warn(NULL, "sandbox: coverage build: no filesystem confinement, no seccomp filter");
	return 0;
#else
	ret = sandbox_landlock(cfg);
	if (ret < 0)
		return ret;
#endif
	ret = sandbox_install_seccomp(cfg->seccomp);
	if (ret < 0) {
		vlog_err(NULL, "sandbox: seccomp filter: %s", strerror(-ret));
		return ret;
	}
	vlog_info(NULL, "sandbox: system call filter on (%s)",
		  cfg->seccomp == SANDBOX_SECCOMP_LOG ? "log: calls outside it are logged"
						      : "calls outside it kill the process");
	return 0;
}
