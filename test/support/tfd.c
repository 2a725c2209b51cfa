/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* File descriptors as tests see them: counts, the next number, readability. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tfd.h"

/* Walk /proc/.../fd: how many entries and the highest, the stream's own fd left out. */
static void tfd_scan(const char *path, bool self, int *count, int *highest)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d)
		abort();
	*count = 0;
	*highest = -1;
	while ((e = readdir(d)) != NULL) {
		int v;

		if (e->d_name[0] == '.')
			continue;
		v = atoi(e->d_name);
		if (self && v == dirfd(d))
			continue;
		(*count)++;
		if (v > *highest)
			*highest = v;
	}
	closedir(d);
}

int tfd_count(void)
{
	int n, hi;

	tfd_scan("/proc/self/fd", true, &n, &hi);
	return n;
}

int tfd_count_pid(pid_t pid)
{
	char path[64];
	int n, hi;

	if (pid == 0)
		return tfd_count();
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	tfd_scan(path, false, &n, &hi);
	return n;
}

int tfd_highest(void)
{
	int n, hi;

	tfd_scan("/proc/self/fd", true, &n, &hi);
	return hi;
}

int tfd_next(void)
{
	int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		abort(); /* no fd at all: the test cannot measure anything */
	close(fd);
	return fd;
}

bool tfd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

rlim_t tfd_cap(rlim_t limit)
{
	struct rlimit rl;
	rlim_t old;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		abort();
	old = rl.rlim_cur;
	rl.rlim_cur = limit;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		abort();
	return old;
}

bool tfd_readable(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}
