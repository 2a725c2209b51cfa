/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "sysd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int sysd_parse(const char *s, unsigned long *out)
{
	char *end;

	if (!s || !*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (*end)
		return -EINVAL;
	return errno ? -ERANGE : 0; /* all digits, but beyond unsigned long */
}

/* Copy at most cap - 1 bytes of s; "" if any is not printable ASCII. */
static void sysd_copy_printable(char *dst, size_t cap, const char *s, size_t len)
{
	dst[0] = '\0';
	if (len >= cap)
		len = cap - 1;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

/*
 * LISTEN_FDNAMES into l->names when it has exactly n entries, each short
 * and printable (they end up in log lines); else every name stays "".
 */
static void sysd_names(const char *s, unsigned long n, struct sysd_listen *l)
{
	unsigned long k = 0;

	if (!s || !n)
		return;
	for (const char *p = s;; p++) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);

		if (k >= n || len >= SYSD_FDNAME_MAX)
			goto bad;
		sysd_copy_printable(l->names[k], SYSD_FDNAME_MAX, p, len);
		if (len && !l->names[k][0])
			goto bad;
		k++;
		if (!colon)
			break;
		p = colon;
	}
	if (k == n)
		return;
bad:
	for (unsigned long i = 0; i < n && i < SYSD_MAX_LISTEN_FDS; i++)
		l->names[i][0] = '\0';
}

int sysd_listen_fds(struct sysd_listen *l)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	unsigned long pid, n;
	int ret = 0;

	if (l) {
		memset(l->count, 0, sizeof(l->count));
		for (unsigned int i = 0; i < SYSD_MAX_LISTEN_FDS; i++)
			l->names[i][0] = '\0';
	}
	if (!pid_s || !fds_s)
		goto out;
	if (sysd_parse(pid_s, &pid) || pid != (unsigned long)getpid())
		goto out; /* meant for another process */
	if (l)
		sysd_copy_printable(l->count, sizeof(l->count), fds_s, strlen(fds_s));
	ret = sysd_parse(fds_s, &n);
	if (ret < 0)
		goto out;
	if (n > SYSD_MAX_LISTEN_FDS) {
		ret = -ERANGE;
		goto out;
	}
	for (unsigned long i = 0; i < n; i++) {
		int fd = SYSD_LISTEN_FDS_START + (int)i;
		int fl = fcntl(fd, F_GETFD);

		if (fl >= 0)
			fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
	if (l)
		sysd_names(getenv("LISTEN_FDNAMES"), n, l);
	ret = (int)n;
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return ret;
}

int sysd_check_socket(int fd, bool *listening, const char **why)
{
	struct sockaddr_un peer;
	socklen_t len = sizeof(int), plen = sizeof(peer);
	struct stat st;
	int v = 0;

	*why = "";
	if (fd < 0 || fstat(fd, &st) != 0) {
		*why = "not an open file descriptor";
		return -EBADF;
	}
	if (!S_ISSOCK(st.st_mode)) {
		*why = "not a socket";
		return -ENOTSOCK;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) != 0 || v != AF_UNIX) {
		*why = "not a unix socket";
		return -EAFNOSUPPORT;
	}
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) != 0 || v != SOCK_STREAM) {
		*why = "not a stream socket (vhost-user needs SOCK_STREAM)";
		return -EPROTOTYPE;
	}
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0)
		v = 0;
	if (v) {
		*listening = true;
		return 0;
	}
	/* Not listening: it must have a peer to serve. */
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0) {
		*why = "neither listening nor connected";
		return -ENOTCONN;
	}
	*listening = false;
	return 0;
}

int sysd_notify_open(int *out)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t salen;
	size_t n;
	int fd;

	*out = -1;
	if (!path || !*path)
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&sa, salen) != 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	*out = fd;
	return 1;
}

int sysd_notify_send(int fd, const char *state)
{
	return send(fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 1;
}

int sysd_notify(const char *state)
{
	int fd, ret = sysd_notify_open(&fd);

	if (ret <= 0)
		return ret;
	ret = sysd_notify_send(fd, state);
	close(fd);
	return ret;
}
