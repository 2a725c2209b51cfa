/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * File descriptors as tests see them: how many this process (or another)
 * has open, which number the next one gets, whether one is readable. Tests
 * compare counts before and after to prove that every path closes its fds.
 * Failures to read /proc abort: a test that cannot count cannot pass.
 */
#ifndef TFD_H
#define TFD_H

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

/* Open fds of this process, the directory stream's own not counted. */
int tfd_count(void);

/* Open fds of process pid (/proc/pid/fd; this process's count for pid 0). */
int tfd_count_pid(pid_t pid);

/* The highest fd open now, the directory stream's own not counted. */
int tfd_highest(void);

/* The fd number the next open would get. */
int tfd_next(void);

/* Whether fd is open. */
bool tfd_is_open(int fd);

/*
 * Set the soft RLIMIT_NOFILE to limit (fds numbered limit and above cannot
 * be opened): the old soft limit. Tests use it to run out of fds.
 */
rlim_t tfd_cap(rlim_t limit);

/* Whether fd has data (or an end of file) to read within timeout_ms (0: now). */
bool tfd_readable(int fd, int timeout_ms);

#endif
