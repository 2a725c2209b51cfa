/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon's confinement of itself once start-up is done (sockets bound,
 * interfaces checked, capture files open): from then on it parses what two
 * untrusted parties send, so a mistake in that code must find a process
 * that can do nothing but serve its devices.
 *
 * In order: resource limits (RLIMIT_NOFILE to what the devices need,
 * RLIMIT_CORE 0), the filesystem (Landlock: nothing but creating and
 * writing files in the capture files' folders and removing the sockets'
 * files), capabilities (none, or CAP_NET_ADMIN alone when an option needs
 * it; bounding and ambient sets emptied), PR_SET_NO_NEW_PRIVS, and a
 * seccomp filter (libseccomp) allowing only the system calls, socket
 * families and ioctls the loop makes, for the native architecture only.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <stdbool.h>

enum sandbox_seccomp {
	SANDBOX_SECCOMP_KILL, /* a call outside the list kills the process */
	SANDBOX_SECCOMP_LOG,  /* it is allowed and logged by the kernel (diagnosis) */
};

#define SANDBOX_MAX_PATHS 32

struct sandbox_config {
	enum sandbox_seccomp seccomp;
	bool net_admin; /* keep CAP_NET_ADMIN (--link-up, bit rates) if held */
	bool core_dumps;	  /* leave RLIMIT_CORE as it is */
	unsigned long nofile; /* RLIMIT_NOFILE (raised to the fds open now + 16) */
	/* Files reopened later (capture, on SIGHUP): their folders stay writable. */
	const char *write_files[SANDBOX_MAX_PATHS];
	unsigned int nwrite;
	/* Files removed at exit (listening sockets): their folders allow that. */
	const char *remove_files[SANDBOX_MAX_PATHS];
	unsigned int nremove;
};

/*
 * Confine the calling process (single-threaded) as cfg says, logging what
 * was done and what the kernel could not do (no Landlock: a warning).
 * 0, or -errno after a message naming the step that failed.
 */
int sandbox_apply(const struct sandbox_config *cfg);

/*
 * Only the seccomp filter (with PR_SET_NO_NEW_PRIVS, which it needs): for
 * the test that tries what the daemon must never do. 0 or -errno.
 */
int sandbox_install_seccomp(enum sandbox_seccomp mode);

/*
 * The Landlock ABI version of the running kernel, or -errno (-ENOSYS,
 * -EOPNOTSUPP: not built in or not enabled at boot).
 */
int sandbox_landlock_abi(void);

#endif
