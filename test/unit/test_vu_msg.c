/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* vhost-user message I/O over socketpairs: framing, fds, short reads, errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <linux/sockios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tfd.h"
#include "vhost-user/vu_msg.h"

static void make_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Send raw bytes with n fds attached (any n the kernel allows). */
static void send_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
	char ctl[CMSG_SPACE(64 * sizeof(int))];
	struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	assert_true(nfds <= 64);
	if (nfds) {
		struct cmsghdr *c;

		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void test_roundtrip_with_fds(void **state)
{
	struct vu_msg out = {0}, in;
	int sv[2], efd[3];
	int before;

	(void)state;
	make_pair(sv);
	for (int i = 0; i < 3; i++)
		efd[i] = memfd_create("t", MFD_CLOEXEC);
	before = tfd_count();

	out.hdr.request = VHOST_USER_SET_MEM_TABLE;
	out.hdr.flags = VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK;
	out.hdr.size = 8 + 3 * 32;
	out.payload.mem.nregions = 3;
	out.payload.mem.regions[2].mmap_offset = 0x1122334455667788ull;
	out.nfds = 3;
	memcpy(out.fds, efd, sizeof(efd));
	assert_int_equal(vu_msg_send(sv[0], &out), 0);
	/* The sender keeps its fds. */
	for (int i = 0; i < 3; i++)
		assert_true(fcntl(efd[i], F_GETFD) >= 0);

	assert_int_equal(vu_msg_recv(sv[1], &in), 0);
	assert_int_equal(in.hdr.request, VHOST_USER_SET_MEM_TABLE);
	assert_int_equal(in.hdr.flags, VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK);
	assert_int_equal(in.hdr.size, 8 + 3 * 32);
	assert_int_equal(in.payload.mem.nregions, 3);
	assert_int_equal(in.payload.mem.regions[2].mmap_offset, 0x1122334455667788ull);
	assert_int_equal(in.nfds, 3);
	for (int i = 0; i < 3; i++) {
		assert_true(same_file(in.fds[i], efd[i]));
		assert_true(fcntl(in.fds[i], F_GETFD) & FD_CLOEXEC);
	}
	assert_int_equal(tfd_count(), before + 3);

	/* take_fd hands one over and leaves -1 behind; close_fds closes the rest. */
	int fd = vu_msg_take_fd(&in, 1);
	assert_true(fd >= 0);
	assert_int_equal(vu_msg_take_fd(&in, 1), -1);
	assert_int_equal(vu_msg_take_fd(&in, 3), -1);
	vu_msg_close_fds(&in);
	assert_int_equal(in.nfds, 0);
	assert_int_equal(tfd_count(), before + 1);
	assert_true(fcntl(fd, F_GETFD) >= 0);
	close(fd);

	for (int i = 0; i < 3; i++)
		close(efd[i]);
	close(sv[0]);
	close(sv[1]);
}

static void test_zero_payload_and_reply_flag(void **state)
{
	struct vu_msg out = {0}, in;
	int sv[2];

	(void)state;
	make_pair(sv);
	out.hdr.request = VHOST_USER_GET_FEATURES;
	out.hdr.flags = VHOST_USER_REPLY_FLAGS;
	out.hdr.size = 0;
	assert_int_equal(vu_msg_send(sv[0], &out), 0);
	out.hdr.size = 8;
	out.payload.u64 = 0xdeadbeefcafef00dull;
	assert_int_equal(vu_msg_send(sv[0], &out), 0);

	assert_int_equal(vu_msg_recv(sv[1], &in), 0);
	assert_int_equal(in.hdr.size, 0);
	assert_int_equal(in.hdr.flags, VHOST_USER_REPLY_FLAGS);
	assert_int_equal(in.nfds, 0);
	assert_int_equal(vu_msg_recv(sv[1], &in), 0);
	assert_int_equal(in.hdr.size, 8);
	assert_int_equal(in.payload.u64, 0xdeadbeefcafef00dull);
	close(sv[0]);
	close(sv[1]);
}

static void test_send_rejects_bad_message(void **state)
{
	struct vu_msg out = {0};
	int sv[2];

	(void)state;
	make_pair(sv);
	out.hdr.flags = VHOST_USER_VERSION;
	out.hdr.size = VHOST_USER_MAX_PAYLOAD + 1;
	assert_int_equal(vu_msg_send(sv[0], &out), -EINVAL);
	out.hdr.size = 0;
	out.nfds = VHOST_USER_MAX_FDS + 1;
	assert_int_equal(vu_msg_send(sv[0], &out), -EINVAL);
	/* The peer is gone: EPIPE, and no SIGPIPE kills the test. */
	out.nfds = 0;
	close(sv[1]);
	assert_int_equal(vu_msg_send(sv[0], &out), -EPIPE);
	close(sv[0]);
}

/* More fds than the receive buffer holds: MSG_CTRUNC, every received fd closed. */
static void test_too_many_fds(void **state)
{
	struct vhost_user_hdr h = {
	    .request = VHOST_USER_SET_MEM_TABLE, .flags = VHOST_USER_VERSION, .size = 0};
	struct vu_msg in;
	int sv[2], fds[12];
	int before;

	(void)state;
	make_pair(sv);
	before = tfd_count();
	for (int i = 0; i < 12; i++)
		fds[i] = memfd_create("t", MFD_CLOEXEC);
	send_raw(sv[0], &h, sizeof(h), fds, 12);
	for (int i = 0; i < 12; i++)
		close(fds[i]);
	assert_int_equal(vu_msg_recv(sv[1], &in), -EPROTO);
	assert_int_equal(in.nfds, 0);
	assert_int_equal(tfd_count(), before);

	/* Exactly VHOST_USER_MAX_FDS is fine. */
	for (int i = 0; i < VHOST_USER_MAX_FDS; i++)
		fds[i] = memfd_create("t", MFD_CLOEXEC);
	send_raw(sv[0], &h, sizeof(h), fds, VHOST_USER_MAX_FDS);
	for (int i = 0; i < VHOST_USER_MAX_FDS; i++)
		close(fds[i]);
	assert_int_equal(vu_msg_recv(sv[1], &in), 0);
	assert_int_equal(in.nfds, VHOST_USER_MAX_FDS);
	vu_msg_close_fds(&in);
	assert_int_equal(tfd_count(), before);
	close(sv[0]);
	close(sv[1]);
}

/* Header flag and size checks: each failure closes the fds that came with it. */
static void test_bad_headers(void **state)
{
	static const struct {
		uint32_t flags;
		uint32_t size;
	} bad[] = {
	    {0x0, 0},
	    {0x2, 0},
	    {0x3, 0},
	    {VHOST_USER_VERSION | 0x10, 0},
	    {VHOST_USER_VERSION | 0x100, 0},
	    {VHOST_USER_VERSION | 0x80000000u, 0},
	    {VHOST_USER_VERSION, VHOST_USER_MAX_PAYLOAD + 1},
	    {VHOST_USER_VERSION, UINT32_MAX},
	};
	struct vu_msg in;
	int before = tfd_count();

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vhost_user_hdr h = {
		    .request = 1, .flags = bad[i].flags, .size = bad[i].size};
		int sv[2], fd;

		print_message("case %zu\n", i);
		make_pair(sv);
		fd = memfd_create("t", MFD_CLOEXEC);
		send_raw(sv[0], &h, sizeof(h), &fd, 1);
		close(fd);
		/*
		 * Whatever the header announces is there (up to a bit more than
		 * the largest payload), then EOF: only the header check can fail it.
		 */
		{
			static uint8_t fill[VHOST_USER_MAX_PAYLOAD + 1];
			size_t n = bad[i].size < sizeof(fill) ? bad[i].size : sizeof(fill);

			if (n)
				send_raw(sv[0], fill, n, NULL, 0);
		}
		shutdown(sv[0], SHUT_WR);
		assert_int_equal(vu_msg_recv(sv[1], &in), -EPROTO);
		assert_int_equal(in.nfds, 0);
		close(sv[0]);
		close(sv[1]);
		assert_int_equal(tfd_count(), before);
	}
	/* The largest payload is accepted; every known flag bit is. */
	{
		struct vu_msg *out = calloc(1, sizeof(*out));
		int sv[2];

		make_pair(sv);
		out->hdr.request = 1;
		out->hdr.flags =
		    VHOST_USER_VERSION | VHOST_USER_REPLY_MASK | VHOST_USER_NEED_REPLY_MASK;
		out->hdr.size = VHOST_USER_MAX_PAYLOAD;
		memset(&out->payload, 0x5c, VHOST_USER_MAX_PAYLOAD);
		assert_int_equal(vu_msg_send(sv[0], out), 0);
		assert_int_equal(vu_msg_recv(sv[1], &in), 0);
		assert_int_equal(in.hdr.size, VHOST_USER_MAX_PAYLOAD);
		assert_memory_equal(&in.payload, &out->payload, VHOST_USER_MAX_PAYLOAD);
		free(out);
		close(sv[0]);
		close(sv[1]);
	}
}

static void test_eof(void **state)
{
	struct vhost_user_hdr h = {.request = 1, .flags = VHOST_USER_VERSION, .size = 8};
	struct vu_msg in;
	int sv[2], fd;
	int before = tfd_count();

	(void)state;
	/* Before any byte. */
	make_pair(sv);
	close(sv[0]);
	assert_int_equal(vu_msg_recv(sv[1], &in), -ECONNRESET);
	close(sv[1]);

	/* Inside the header, with an fd that must not leak. */
	make_pair(sv);
	fd = memfd_create("t", MFD_CLOEXEC);
	send_raw(sv[0], &h, 5, &fd, 1);
	close(fd);
	close(sv[0]);
	assert_int_equal(vu_msg_recv(sv[1], &in), -EPROTO);
	assert_int_equal(in.nfds, 0);
	close(sv[1]);
	assert_int_equal(tfd_count(), before);

	/* Inside the payload. */
	make_pair(sv);
	fd = memfd_create("t", MFD_CLOEXEC);
	send_raw(sv[0], &h, sizeof(h), &fd, 1);
	close(fd);
	send_raw(sv[0], "abc", 3, NULL, 0);
	shutdown(sv[0], SHUT_WR);
	assert_int_equal(vu_msg_recv(sv[1], &in), -EPROTO);
	assert_int_equal(in.nfds, 0);
	close(sv[0]);
	close(sv[1]);

	/* A whole message followed by EOF: the message, then -ECONNRESET. */
	make_pair(sv);
	send_raw(sv[0], &h, sizeof(h), NULL, 0);
	send_raw(sv[0], "12345678", 8, NULL, 0);
	close(sv[0]);
	assert_int_equal(vu_msg_recv(sv[1], &in), 0);
	assert_memory_equal(in.payload.raw, "12345678", 8);
	assert_int_equal(vu_msg_recv(sv[1], &in), -ECONNRESET);
	close(sv[1]);
	assert_int_equal(tfd_count(), before);
}

/* A receive timeout mid-message is reported, not waited out forever. */
static void test_stall_mid_message(void **state)
{
	struct vhost_user_hdr h = {.request = 1, .flags = VHOST_USER_VERSION, .size = 8};
	struct timeval tv = {.tv_sec = 0, .tv_usec = 50000};
	struct vu_msg in;
	int sv[2];

	(void)state;
	make_pair(sv);
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	/* Nothing at all: the caller's try again. */
	assert_int_equal(vu_msg_recv(sv[1], &in), -EAGAIN);
	send_raw(sv[0], &h, sizeof(h), NULL, 0);
	assert_int_equal(vu_msg_recv(sv[1], &in), -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
}

struct trickle {
	int sock;
	const uint8_t *buf;
	size_t len;
	int fd;
	int ok;
};

/*
 * Send one byte at a time and wait until the reader consumed it (SIOCOUTQ is
 * the unread byte count of a unix socket), so every read is a short one.
 */
static void *trickle_thread(void *arg)
{
	struct trickle *t = arg;

	for (size_t i = 0; i < t->len; i++) {
		char ctl[CMSG_SPACE(sizeof(int))];
		struct iovec iov = {.iov_base = (void *)(uintptr_t)(t->buf + i), .iov_len = 1};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		int pending = 1;

		if (i == 0 && t->fd >= 0) {
			struct cmsghdr *c;

			memset(ctl, 0, sizeof(ctl));
			mh.msg_control = ctl;
			mh.msg_controllen = sizeof(ctl);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &t->fd, sizeof(int));
		}
		if (sendmsg(t->sock, &mh, MSG_NOSIGNAL) != 1)
			return NULL;
		/* Guard against hangs only: 10 s per byte. */
		for (int w = 0; w < 10000 && pending > 0; w++) {
			if (ioctl(t->sock, SIOCOUTQ, &pending) != 0)
				return NULL;
			if (pending > 0)
				sleep_ms(1);
		}
	}
	t->ok = 1;
	return NULL;
}

static void test_short_reads(void **state)
{
	struct {
		struct vhost_user_hdr h;
		struct vhost_user_vring_addr a;
	} __attribute__((packed)) wire = {
	    .h = {.request = VHOST_USER_SET_VRING_ADDR,
		  .flags = VHOST_USER_VERSION,
		  .size = sizeof(struct vhost_user_vring_addr)},
	    .a = {.index = 2,
		  .desc_user_addr = 0x1000,
		  .used_user_addr = 0x2000,
		  .avail_user_addr = 0x3000,
		  .log_guest_addr = 0x123456789abcull},
	};
	struct trickle t = {.buf = (const uint8_t *)&wire, .len = sizeof(wire)};
	struct vu_msg in;
	pthread_t th;
	int sv[2];
	int before;

	(void)state;
	make_pair(sv);
	t.sock = sv[0];
	t.fd = memfd_create("t", MFD_CLOEXEC);
	before = tfd_count();
	assert_int_equal(pthread_create(&th, NULL, trickle_thread, &t), 0);
	assert_int_equal(vu_msg_recv(sv[1], &in), 0);
	pthread_join(th, NULL);
	assert_int_equal(t.ok, 1);
	assert_int_equal(in.hdr.request, VHOST_USER_SET_VRING_ADDR);
	assert_int_equal(in.hdr.size, sizeof(struct vhost_user_vring_addr));
	assert_memory_equal(&in.payload.addr, &wire.a, sizeof(wire.a));
	assert_int_equal(in.nfds, 1);
	assert_true(same_file(in.fds[0], t.fd));
	vu_msg_close_fds(&in);
	assert_int_equal(tfd_count(), before);
	close(t.fd);
	close(sv[0]);
	close(sv[1]);
}

static volatile sig_atomic_t signals_seen;

static void on_signal(int sig)
{
	(void)sig;
	signals_seen++;
}

struct interrupter {
	pid_t tid;
	pthread_t target;
	int sock;
};

/* The target is asleep in a syscall when its /proc state is 'S'. */
static bool thread_sleeping(pid_t tid)
{
	char path[64], buf[256];
	ssize_t n;
	char *p;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'S';
}

static void *interrupt_thread(void *arg)
{
	struct interrupter *it = arg;
	struct vhost_user_hdr h = {.request = 3, .flags = VHOST_USER_VERSION, .size = 8};
	uint64_t v = 42;

	/* Interrupt the header read, then the payload read. */
	for (int round = 0; round < 2; round++) {
		for (int w = 0; w < 10000 && !thread_sleeping(it->tid); w++)
			sleep_ms(1);
		pthread_kill(it->target, SIGUSR1);
		sleep_ms(20);
		if (round == 0)
			send(it->sock, &h, sizeof(h), MSG_NOSIGNAL);
	}
	send(it->sock, &v, sizeof(v), MSG_NOSIGNAL);
	return NULL;
}

static void test_eintr_retried(void **state)
{
	struct sigaction sa = {.sa_handler = on_signal}, old;
	struct interrupter it;
	struct vu_msg in;
	pthread_t th;
	int sv[2];

	(void)state;
	make_pair(sv);
	sa.sa_flags = 0; /* no SA_RESTART: the syscall fails with EINTR */
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	it.tid = gettid();
	it.target = pthread_self();
	it.sock = sv[0];
	signals_seen = 0;
	assert_int_equal(pthread_create(&th, NULL, interrupt_thread, &it), 0);
	assert_int_equal(vu_msg_recv(sv[1], &in), 0);
	pthread_join(th, NULL);
	assert_int_equal(signals_seen, 2);
	assert_int_equal(in.hdr.request, 3);
	assert_int_equal(in.payload.u64, 42);
	sigaction(SIGUSR1, &old, NULL);
	close(sv[0]);
	close(sv[1]);
}

/*
 * A peer that stops reading cannot block the sender forever when the socket
 * has a send timeout: the send fails, and no partial message is reported as
 * success.
 */
static void test_send_full_socket(void **state)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = 20000};
	struct vu_msg out = {0};
	char junk[4096] = {0};
	int sv[2], rc;

	(void)state;
	make_pair(sv);
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	while (send(sv[0], junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
		;
	out.hdr.request = VHOST_USER_GET_FEATURES;
	out.hdr.flags = VHOST_USER_REPLY_FLAGS;
	out.hdr.size = 8;
	rc = vu_msg_send(sv[0], &out);
	assert_true(rc == -EAGAIN || rc == -EWOULDBLOCK);
	close(sv[0]);
	close(sv[1]);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(vu_msg_name(VHOST_USER_GET_FEATURES), "GET_FEATURES");
	assert_string_equal(vu_msg_name(VHOST_USER_SET_MEM_TABLE), "SET_MEM_TABLE");
	assert_string_equal(vu_msg_name(VHOST_USER_REM_MEM_REG), "REM_MEM_REG");
	assert_string_equal(vu_msg_name(0), "UNKNOWN");
	assert_string_equal(vu_msg_name(VHOST_USER_REQUEST_MAX), "UNKNOWN");
	assert_string_equal(vu_msg_name(UINT32_MAX), "UNKNOWN");
}

/*
 * The one list of requests: ids 1..VHOST_USER_REQUEST_MAX-1, each once, in
 * order, and each id's name is the one the list gives it (no second table
 * of names to drift).
 */
static void test_request_list(void **state)
{
	static const struct {
		uint32_t id;
		const char *name;
	} list[] = {
#define LIST_ROW(name, id) {VHOST_USER_##name, #name},
	    VHOST_USER_REQUEST_LIST(LIST_ROW)
#undef LIST_ROW
	};
	const size_t n = sizeof(list) / sizeof(list[0]);

	(void)state;
	assert_int_equal(n, VHOST_USER_REQUEST_MAX - 1);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(list[i].id, i + 1);
		assert_string_equal(vu_msg_name(list[i].id), list[i].name);
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(list[k].name, list[i].name);
	}
}

static void set_rcvtimeo_ms(int fd, long ms)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = ms * 1000};

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

/* A peer that stops mid-header: -ETIMEDOUT once the receive timeout expires. */
static void test_recv_stall_in_header(void **state)
{
	struct vhost_user_hdr h = {.request = VHOST_USER_GET_FEATURES, .flags = VHOST_USER_VERSION};
	struct vu_msg m;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	set_rcvtimeo_ms(sv[1], 50);
	assert_int_equal(send(sv[0], &h, 5, 0), 5);
	assert_int_equal(vu_msg_recv(sv[1], &m), -ETIMEDOUT);
	assert_int_equal(m.nfds, 0);
	close(sv[0]);
	close(sv[1]);
}

/* Stalled mid-payload with an fd attached: -ETIMEDOUT and the fd is closed. */
static void test_recv_stall_in_payload(void **state)
{
	struct vu_msg out, in;
	int fds = tfd_count();
	int sv[2], efd;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	set_rcvtimeo_ms(sv[1], 50);
	efd = eventfd(0, EFD_CLOEXEC);
	assert_true(efd >= 0);
	memset(&out, 0, sizeof(out));
	out.hdr.request = VHOST_USER_SET_VRING_KICK;
	out.hdr.flags = VHOST_USER_VERSION;
	out.hdr.size = 8;
	out.fds[0] = efd;
	out.nfds = 1;
	/* Send the header with the fd and 3 of the 8 payload bytes, by hand. */
	{
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {.iov_base = &out, .iov_len = VHOST_USER_HDR_SIZE + 3};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf)};
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &efd, sizeof(int));
		assert_int_equal(sendmsg(sv[0], &mh, 0), (ssize_t)(VHOST_USER_HDR_SIZE + 3));
	}
	close(efd);
	assert_int_equal(vu_msg_recv(sv[1], &in), -ETIMEDOUT);
	assert_int_equal(in.nfds, 0);
	close(sv[0]);
	close(sv[1]);
	/* The received copy of the eventfd did not leak. */
	assert_int_equal(tfd_count(), fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_with_fds),
	    cmocka_unit_test(test_zero_payload_and_reply_flag),
	    cmocka_unit_test(test_send_rejects_bad_message),
	    cmocka_unit_test(test_too_many_fds),
	    cmocka_unit_test(test_bad_headers),
	    cmocka_unit_test(test_eof),
	    cmocka_unit_test(test_stall_mid_message),
	    cmocka_unit_test(test_short_reads),
	    cmocka_unit_test(test_eintr_retried),
	    cmocka_unit_test(test_send_full_socket),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_request_list),
	    cmocka_unit_test(test_recv_stall_in_header),
	    cmocka_unit_test(test_recv_stall_in_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
