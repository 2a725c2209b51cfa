/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Backend: listening socket, sessions, disconnect, backend channel; and its
 * own resources running out: vu_backend_new() and vu_backend_listen() with
 * no fd left to open, vu_backend_attach() of fds it cannot use, a connection
 * that reports an error without data. Each must fail cleanly (no fd left
 * open) and leave the process able to go on.
 */
#include "test_backend.h"

#include "sandbox.h"
#include "tfd.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#define TB_OFFERED (TB_DEV_FEATURES | VU_BACKEND_TRANSPORT_FEATURES)

struct conn_env {
	char dir[64];
	char path[128];
	struct tb_dev dev;
	struct vu_device vd;
	int fds_at_start;
};

static int env_setup(void **state)
{
	struct conn_env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->fds_at_start = tfd_count();
	snprintf(e->dir, sizeof(e->dir), "/tmp/vdc-backend-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/sock", e->dir);
	e->vd.name = "conntest";
	e->vd.features = TB_DEV_FEATURES;
	e->vd.num_queues = TB_NUM_QUEUES;
	e->vd.max_queue_size = 1024;
	e->vd.config_size = TB_CONFIG_SIZE;
	e->vd.ops = &tb_ops;
	e->vd.opaque = &e->dev;
	e->dev.fe = -1;
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct conn_env *e = *state;

	unlink(e->path);
	rmdir(e->dir);
	assert_int_equal(tfd_count(), e->fds_at_start);
	free(e);
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Make a socket file nobody listens on (a daemon that died). */
static void make_stale_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	close(fd);
}

static void send_get_features(int fd)
{
	struct vu_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr.request = VHOST_USER_GET_FEATURES;
	m.hdr.flags = VHOST_USER_VERSION;
	assert_int_equal(vu_msg_send(fd, &m), 0);
}

static uint64_t recv_u64(int fd, uint32_t req)
{
	struct vu_msg m;

	assert_int_equal(vu_msg_recv(fd, &m), 0);
	assert_int_equal(m.hdr.request, req);
	assert_int_equal(m.hdr.flags, VHOST_USER_REPLY_FLAGS);
	assert_int_equal(m.hdr.size, 8);
	return m.payload.u64;
}

static void test_listen_regular_file(void **state)
{
	struct conn_env *e = *state;
	struct vu_backend *b;
	struct stat st;
	int fd;

	fd = open(e->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	assert_int_equal(vu_backend_new(&b, &e->vd), 0);
	assert_int_equal(vu_backend_listen(b, e->path), -EEXIST);
	vu_backend_free(b);
	/* Untouched. */
	assert_int_equal(stat(e->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 4);
	unlink(e->path);

	/* A directory is not a socket either. */
	assert_int_equal(mkdir(e->path, 0700), 0);
	assert_int_equal(vu_backend_new(&b, &e->vd), 0);
	assert_int_equal(vu_backend_listen(b, e->path), -EEXIST);
	vu_backend_free(b);
	assert_int_equal(rmdir(e->path), 0);
}

static void test_listen_bad_paths(void **state)
{
	struct conn_env *e = *state;
	struct vu_backend *b;
	char longp[200];

	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	assert_int_equal(vu_backend_new(&b, &e->vd), 0);
	assert_int_equal(vu_backend_listen(b, longp), -ENAMETOOLONG);
	assert_int_equal(vu_backend_listen(b, "/nonexistent-dir-vdc/sock"), -ENOENT);
	assert_int_equal(vu_backend_listen(b, e->path), 0);
	/* Once is enough. */
	assert_int_equal(vu_backend_listen(b, e->path), -EBUSY);
	vu_backend_free(b);
}

static void test_listen_stale_socket(void **state)
{
	struct conn_env *e = *state;
	struct vu_backend *b;
	struct stat st;
	int c;

	make_stale_socket(e->path);
	assert_int_equal(vu_backend_new(&b, &e->vd), 0);
	assert_int_equal(vu_backend_listen(b, e->path), 0);
	/* It is a live socket now: connecting works and is served. */
	c = connect_to(e->path);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_true(vu_backend_connected(b));
	assert_int_equal(vu_backend_sessions(b), 1);
	send_get_features(c);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_int_equal(recv_u64(c, VHOST_USER_GET_FEATURES), TB_OFFERED);
	close(c);
	/* free removes the socket it created. */
	vu_backend_free(b);
	assert_int_equal(lstat(e->path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_listen_live_socket(void **state)
{
	struct conn_env *e = *state;
	struct vu_backend *b1, *b2;
	struct stat st;

	assert_int_equal(vu_backend_new(&b1, &e->vd), 0);
	assert_int_equal(vu_backend_new(&b2, &e->vd), 0);
	assert_int_equal(vu_backend_listen(b1, e->path), 0);
	assert_int_equal(vu_backend_listen(b2, e->path), -EADDRINUSE);
	/* The probe did not disturb the first one beyond a connection it will see close. */
	vu_backend_free(b2);
	assert_int_equal(lstat(e->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	vu_backend_free(b1);
	assert_int_equal(lstat(e->path, &st), -1);
}

/* free does not remove a socket file that another process put in its place. */
static void test_free_keeps_foreign_socket(void **state)
{
	struct conn_env *e = *state;
	struct vu_backend *b;
	struct stat st;

	assert_int_equal(vu_backend_new(&b, &e->vd), 0);
	assert_int_equal(vu_backend_listen(b, e->path), 0);
	unlink(e->path);
	make_stale_socket(e->path);
	vu_backend_free(b);
	assert_int_equal(lstat(e->path, &st), 0);
	unlink(e->path);
}

/*
 * Out of fds: the waiting frontend is hung up on (through the spare fd)
 * instead of staying in the backlog, where the level-triggered listening
 * socket would wake the loop forever.
 */
static void test_accept_out_of_fds(void **state)
{
	struct conn_env *e = *state;
	struct rlimit old, low;
	struct vu_backend *b;
	bool connected, still_ready;
	char byte;
	int c, lowest, r1, r2;

	assert_int_equal(vu_backend_new(&b, &e->vd), 0);
	assert_int_equal(vu_backend_listen(b, e->path), 0);
	c = connect_to(e->path);
	assert_true(tfd_readable(vu_backend_fd(b), 0));
	/* A limit at the lowest free fd: no new fd fits. */
	lowest = dup(0);
	assert_true(lowest >= 0);
	close(lowest);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	r1 = vu_backend_dispatch(b);
	r2 = vu_backend_dispatch(b);
	connected = vu_backend_connected(b);
	still_ready = tfd_readable(vu_backend_fd(b), 0);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);

	assert_int_equal(r1, 0);
	assert_int_equal(r2, 0);
	assert_false(connected);
	assert_false(still_ready);
	assert_int_equal(recv(c, &byte, 1, 0), 0);
	close(c);
	/* With fds again, the next frontend is served. */
	c = connect_to(e->path);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_true(vu_backend_connected(b));
	send_get_features(c);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_int_equal(recv_u64(c, VHOST_USER_GET_FEATURES), TB_OFFERED);
	close(c);
	vu_backend_free(b);
}

/*
 * The same in a process confined as the daemon is (no file may be opened):
 * the spare fd must come back after each frontend it hung up on, or the
 * second one stays in the backlog and the loop wakes for it forever.
 */
static void test_accept_out_of_fds_confined(void **state)
{
	struct conn_env *e = *state;
	bool hung_up[2] = {false, false};
	int ready[2], go[2], st;
	char b = 0;
	pid_t pid;

	if (sandbox_landlock_abi() <= 0) {
		printf("SKIPPED: no Landlock in this kernel\n");
		skip();
	}
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sandbox_config cfg = {.seccomp = SANDBOX_SECCOMP_KILL, .nofile = 1};
		struct vu_backend *bk;

		close(ready[0]);
		close(go[1]);
		if (vu_backend_new(&bk, &e->vd) != 0 || vu_backend_listen(bk, e->path) != 0)
			_exit(10);
		cfg.remove_files[cfg.nremove++] = e->path;
		if (sandbox_apply(&cfg) != 0)
			_exit(11);
		for (int k = 0; k < 2; k++) {
			/* Every fd the limit allows, taken. */
			while (eventfd(0, EFD_CLOEXEC) >= 0)
				;
			if (write(ready[1], &b, 1) != 1 || read(go[0], &b, 1) != 1)
				_exit(12);
			if (vu_backend_dispatch(bk) != 0)
				_exit(13);
			/* Alive (the socket still listening) until the parent looked. */
			if (write(ready[1], &b, 1) != 1 || read(go[0], &b, 1) != 1)
				_exit(14);
		}
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	for (int k = 0; k < 2; k++) {
		struct pollfd pfd = {.events = POLLIN};
		char byte;

		if (read(ready[0], &b, 1) != 1)
			break;
		pfd.fd = connect_to(e->path);
		/* Hung up on by that dispatch, the second frontend too. */
		hung_up[k] = write(go[1], &b, 1) == 1 && read(ready[0], &b, 1) == 1 &&
			     poll(&pfd, 1, 0) == 1 && recv(pfd.fd, &byte, 1, MSG_DONTWAIT) == 0;
		close(pfd.fd);
		if (write(go[1], &b, 1) != 1)
			break;
	}
	close(ready[0]);
	close(go[1]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	for (int k = 0; k < 2; k++)
		if (!hung_up[k])
			fail_msg("frontend %d left waiting in the backlog", k + 1);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_one_frontend_at_a_time(void **state)
{
	struct conn_env *e = *state;
	struct vu_backend *b;
	int c1, c2;

	assert_int_equal(vu_backend_new(&b, &e->vd), 0);
	assert_int_equal(vu_backend_listen(b, e->path), 0);
	assert_false(vu_backend_connected(b));
	assert_int_equal(vu_backend_sessions(b), 0);
	c1 = connect_to(e->path);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_true(vu_backend_connected(b));
	assert_int_equal(vu_backend_sessions(b), 1);

	/* A second frontend waits in the backlog; the backend's fd stays quiet. */
	c2 = connect_to(e->path);
	assert_false(tfd_readable(vu_backend_fd(b), 0));
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_int_equal(vu_backend_sessions(b), 1);
	send_get_features(c2);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_false(tfd_readable(c2, 0));
	/* attach is refused while connected, and takes (closes) the fd. */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(vu_backend_attach(b, sv[1]), -EBUSY);
	assert_false(tfd_is_open(sv[1]));
	close(sv[0]);

	/* The first leaves; then the second is served. */
	close(c1);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_false(vu_backend_connected(b));
	assert_int_equal(e->dev.resets, 1);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_true(vu_backend_connected(b));
	assert_int_equal(vu_backend_sessions(b), 2);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_int_equal(recv_u64(c2, VHOST_USER_GET_FEATURES), TB_OFFERED);
	close(c2);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_false(vu_backend_connected(b));
	vu_backend_free(b);
}

/* A whole session, dropped by EOF: everything reset; a second session starts clean. */
static void test_disconnect_resets_everything(void **state)
{
	struct conn_env *e = *state;
	struct tb *t = tb_new();
	struct vq *q = vu_backend_vq(t->b, 0);
	int kick, call, ch[2], before;
	unsigned int mark;

	(void)e;
	tb_negotiate(t, TB_OFFERED & ~TB_F_PROTOCOL, tb_pf_all());
	tb_mem_table(t);
	tb_ring_setup(t, 0, 0);
	call = tb_ring_fd(t, VHOST_USER_SET_VRING_CALL, 0);
	kick = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch), 0);
	tb_req(t, VHOST_USER_SET_BACKEND_REQ_FD, 0, NULL, 0, &ch[1], 1);
	close(ch[1]);
	tb_no_reply(t);
	assert_true(q->started);
	unsigned char vec;
	void *ring = q->desc;
	assert_int_equal(mincore((void *)((uintptr_t)ring & ~0xfffull), 1, &vec), 0);

	mark = t->dev.nlog;
	close(t->fe);
	t->fe = -1;
	t->dev.fe = -1;
	tb_dispatch(t);
	assert_false(vu_backend_connected(t->b));
	int stop = tb_find(&t->dev, TB_EV_STOP, 0, mark);
	int reset = tb_find(&t->dev, TB_EV_RESET, 0, mark);
	assert_true(stop >= 0 && reset > stop);
	/* Unmapped, every fd closed, state back to the start. */
	assert_int_equal(mincore((void *)((uintptr_t)ring & ~0xfffull), 1, &vec), -1);
	assert_false(q->started);
	assert_int_equal(q->kick_fd, -1);
	assert_int_equal(q->call_fd, -1);
	assert_int_equal(q->num, 0);
	assert_int_equal(vu_backend_features(t->b), 0);
	assert_int_equal(vu_backend_config_changed(t->b), -ENOTCONN);
	/* The peer of the backend channel sees it closed. */
	char c;
	assert_int_equal(recv(ch[0], &c, 1, MSG_DONTWAIT), 0);
	close(ch[0]);
	close(kick);
	close(call);
	before = tfd_count();

	/* Second session: protocol features must be negotiated again. */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(vu_backend_attach(t->b, sv[1]), 0);
	t->fe = sv[0];
	t->dev.fe = sv[0];
	assert_int_equal(vu_backend_sessions(t->b), 2);
	assert_int_equal(tb_get_u64(t, VHOST_USER_GET_FEATURES), TB_OFFERED);
	tb_req(t, VHOST_USER_GET_QUEUE_NUM, 0, NULL, 0, NULL, 0);
	tb_dropped(t);
	assert_int_equal(tfd_count(), before + 1); /* our end, not yet closed */
	tb_free(t);
}

/* A protocol error drops the frontend and the next one is accepted. */
static void test_protocol_error_then_next_frontend(void **state)
{
	struct conn_env *e = *state;
	struct vu_backend *b;
	struct vu_msg m;
	char c;
	int c1, c2;

	assert_int_equal(vu_backend_new(&b, &e->vd), 0);
	assert_int_equal(vu_backend_listen(b, e->path), 0);
	c1 = connect_to(e->path);
	assert_int_equal(vu_backend_dispatch(b), 0);
	memset(&m, 0, sizeof(m));
	m.hdr.request = VHOST_USER_SET_LOG_BASE;
	m.hdr.flags = VHOST_USER_VERSION;
	m.hdr.size = 16;
	assert_int_equal(vu_msg_send(c1, &m), 0);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_false(vu_backend_connected(b));
	assert_int_equal(recv(c1, &c, 1, 0), 0);
	close(c1);

	c2 = connect_to(e->path);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_true(vu_backend_connected(b));
	assert_int_equal(vu_backend_sessions(b), 2);
	send_get_features(c2);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_int_equal(recv_u64(c2, VHOST_USER_GET_FEATURES), TB_OFFERED);
	close(c2);
	vu_backend_free(b);
}

/* Several messages sent at once are all handled; EOF after them too. */
static void test_burst_then_eof(void **state)
{
	struct tb *t = tb_new();

	(void)state;
	tb_send(t, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0);
	tb_send(t, VHOST_USER_GET_FEATURES, 0, NULL, 0, NULL, 0);
	tb_send(t, VHOST_USER_GET_PROTOCOL_FEATURES, 0, NULL, 0, NULL, 0);
	shutdown(t->fe, SHUT_WR);
	tb_dispatch(t);
	assert_int_equal(tb_reply_u64(t, VHOST_USER_GET_FEATURES), TB_OFFERED);
	assert_int_equal(tb_reply_u64(t, VHOST_USER_GET_PROTOCOL_FEATURES),
			 VU_BACKEND_PROTOCOL_FEATURES);
	tb_dispatch(t);
	tb_dropped(t);
	tb_free(t);
}

static void test_backend_channel(void **state)
{
	struct tb *t = tb_new();
	struct vhost_user_hdr h;
	int ch[2], ch2[2], c0;

	(void)state;
	assert_int_equal(vu_backend_config_changed(t->b), -ENOTCONN);
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	c0 = tfd_count();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch), 0);
	assert_int_equal(tb_ack(t, VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, &ch[1], 1), 0);
	close(ch[1]);
	assert_int_equal(vu_backend_config_changed(t->b), 0);
	assert_int_equal(recv(ch[0], &h, sizeof(h), MSG_DONTWAIT), (ssize_t)sizeof(h));
	assert_int_equal(h.request, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
	assert_int_equal(h.flags, VHOST_USER_VERSION); /* no need-reply: never waits */
	assert_int_equal(h.size, 0);
	assert_false(tfd_readable(ch[0], 0));
	/* Nothing went to the main connection. */
	tb_no_reply(t);

	/* A new channel replaces (and closes) the old one. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch2), 0);
	tb_req(t, VHOST_USER_SET_BACKEND_REQ_FD, 0, NULL, 0, &ch2[1], 1);
	close(ch2[1]);
	char c;
	assert_int_equal(recv(ch[0], &c, 1, MSG_DONTWAIT), 0);
	close(ch[0]);
	assert_int_equal(tfd_count(), c0 + 2);
	assert_int_equal(vu_backend_config_changed(t->b), 0);
	assert_int_equal(recv(ch2[0], &h, sizeof(h), MSG_DONTWAIT), (ssize_t)sizeof(h));
	/* The frontend closed its end: an error, not a signal. */
	close(ch2[0]);
	assert_int_equal(vu_backend_config_changed(t->b), -EPIPE);
	assert_int_equal(vu_backend_config_changed(t->b), -ENOTCONN);
	/* The backend closed its dead channel. */
	assert_int_equal(tfd_count(), c0);
	tb_free(t);
}

/*
 * The --fd case, and any connection: the backend reads non-blocking. Half a
 * header is kept (no reply, still connected, the dispatch returns at once),
 * and the message is handled when the rest arrives.
 */
static void test_attach_partial_message(void **state)
{
	struct conn_env *e = *state;
	struct vu_backend *b;
	struct vhost_user_hdr h = {
	    .request = VHOST_USER_GET_FEATURES, .flags = VHOST_USER_VERSION, .size = 0};
	uint8_t byte;
	int sv[2];

	assert_int_equal(vu_backend_new(&b, &e->vd), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(vu_backend_attach(b, sv[1]), 0);
	assert_true(fcntl(sv[1], F_GETFL) & O_NONBLOCK);
	assert_int_equal(vu_backend_attach(b, -1), -EBADF);
	assert_int_equal(send(sv[0], &h, 6, 0), 6);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_true(vu_backend_connected(b));
	assert_int_equal(recv(sv[0], &byte, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(send(sv[0], (char *)&h + 6, 6, 0), 6);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_true(vu_backend_connected(b));
	assert_int_equal(recv_u64(sv[0], VHOST_USER_GET_FEATURES), TB_OFFERED);
	close(sv[0]);
	vu_backend_free(b);
}

static void test_new_rejects_bad_device(void **state)
{
	struct conn_env *e = *state;
	struct vu_backend *b = (struct vu_backend *)1;

	e->vd.num_queues = 0;
	assert_int_equal(vu_backend_new(&b, &e->vd), -EINVAL);
	assert_null(b);
	e->vd.num_queues = VU_MAX_QUEUES + 1;
	assert_int_equal(vu_backend_new(&b, &e->vd), -EINVAL);
	e->vd.num_queues = TB_NUM_QUEUES;
	assert_int_equal(vu_backend_new(&b, NULL), -EINVAL);
	vu_backend_free(NULL);
}

static const struct vu_device bare_dev = {
    .name = "bare",
    .num_queues = 3,
    .max_queue_size = 256,
};

/*
 * With room for 0, 1, 2, ... more fds, creating a backend fails with
 * -EMFILE and leaves nothing open, until there is room for all it needs.
 */
static void test_new_out_of_fds(void **state)
{
	struct vu_backend *b = (struct vu_backend *)&b; /* must be reset to NULL */
	int base = tfd_next(), ret = -EMFILE;
	unsigned int failures = 0;
	rlim_t old;

	(void)state;
	for (int room = 0; room < 16; room++) {
		old = tfd_cap((rlim_t)(base + room));
		ret = vu_backend_new(&b, &bare_dev);
		tfd_cap(old);
		if (ret == 0)
			break;
		assert_int_equal(ret, -EMFILE);
		assert_null(b);
		assert_int_equal(tfd_next(), base);
		failures++;
	}
	assert_int_equal(ret, 0);
	/*
	 * An epoll fd, an eventfd and a timerfd: at least three rooms fail
	 * (more when fds above base were already in use).
	 */
	assert_true(failures >= 3);
	vu_backend_free(b);
	assert_int_equal(tfd_next(), base);
}

/*
 * Another process's live socket at path, and no fd to probe it with: the
 * listen fails with -EMFILE and the live socket stays (it was taken for a
 * stale one and removed before).
 */
static void test_listen_out_of_fds_keeps_live_socket(void **state)
{
	char dir[] = "/tmp/vdc-conn.XXXXXX", path[64];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct vu_backend *b = NULL;
	struct stat st, st2;
	int live, probe, base;
	rlim_t old;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	live = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(live >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(live, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(live, 4), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(vu_backend_new(&b, &bare_dev), 0);
	base = tfd_next();

	old = tfd_cap((rlim_t)base);
	assert_int_equal(vu_backend_listen(b, path), -EMFILE);
	tfd_cap(old);
	assert_int_equal(lstat(path, &st2), 0);
	assert_int_equal(st2.st_ino, st.st_ino);
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(probe >= 0);
	assert_int_equal(connect(probe, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(probe);
	/* With fds: the live listener is seen and left alone. */
	assert_int_equal(vu_backend_listen(b, path), -EADDRINUSE);
	vu_backend_free(b);
	close(live);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

/* An inherited socket to listen on must be one: closed or not listening is refused. */
static void test_listen_fd_refused(void **state)
{
	struct vu_backend *b = NULL;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), base;

	(void)state;
	assert_true(s >= 0);
	assert_int_equal(vu_backend_new(&b, &bare_dev), 0);
	base = tfd_next();
	assert_int_equal(vu_backend_listen_fd(b, -1), -EBADF);
	/* Not listening: refused, and the fd is taken (closed). */
	assert_int_equal(vu_backend_listen_fd(b, s), -EINVAL);
	assert_false(tfd_is_open(s));
	assert_true(tfd_next() <= base);
	vu_backend_free(b);
}

/*
 * No fd for the listening socket: -EMFILE, nothing left open, and the same
 * backend listens on the path once fds are available again.
 */
static void test_listen_out_of_fds(void **state)
{
	char dir[] = "/tmp/vdc-conn.XXXXXX", path[64];
	struct vu_backend *b = NULL;
	struct stat st;
	int base;
	rlim_t old;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	make_stale_socket(path);
	assert_int_equal(vu_backend_new(&b, &bare_dev), 0);
	base = tfd_next();

	old = tfd_cap((rlim_t)base);
	assert_int_equal(vu_backend_listen(b, path), -EMFILE);
	tfd_cap(old);
	assert_int_equal(tfd_next(), base);

	assert_int_equal(vu_backend_listen(b, path), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	vu_backend_free(b);
	/* The backend removes the socket it made. */
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(rmdir(dir), 0);
}

/* fds the backend cannot serve are refused and closed; it stays free for the next. */
static void test_attach_unusable_fds(void **state)
{
	struct vu_backend *b = NULL;
	int sv[2], file, unused;

	(void)state;
	assert_int_equal(vu_backend_new(&b, &bare_dev), 0);

	/* Not an open fd at all. */
	unused = tfd_next();
	assert_int_equal(vu_backend_attach(b, unused), -EBADF);
	assert_false(vu_backend_connected(b));

	/* A file epoll cannot watch. */
	file = memfd_create("not-a-socket", MFD_CLOEXEC);
	assert_true(file >= 0);
	assert_int_equal(vu_backend_attach(b, file), -EPERM);
	assert_false(tfd_is_open(file));
	assert_false(vu_backend_connected(b));

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(vu_backend_attach(b, sv[1]), 0);
	assert_true(vu_backend_connected(b));
	vu_backend_free(b);
	close(sv[0]);
}

/*
 * A connection that signals an error but no data (the write end of a pipe
 * whose reader left): the backend drops it and takes the next one.
 */
static void test_conn_error_without_data(void **state)
{
	struct vu_backend *b = NULL;
	int p[2], sv[2], base;

	(void)state;
	base = tfd_next();
	assert_int_equal(vu_backend_new(&b, &bare_dev), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(vu_backend_attach(b, p[1]), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);

	/* One frontend at a time: a second one is refused (and closed) while it lasts. */
	assert_int_equal(vu_backend_attach(b, sv[1]), -EBUSY);
	assert_false(tfd_is_open(sv[1]));
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_true(vu_backend_connected(b));

	close(p[0]);
	assert_int_equal(vu_backend_dispatch(b), 0);
	assert_false(vu_backend_connected(b));

	close(sv[0]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(vu_backend_attach(b, sv[1]), 0);
	assert_true(vu_backend_connected(b));
	vu_backend_free(b);
	close(sv[0]);
	/* The pipe's write end went with the dropped connection. */
	assert_int_equal(tfd_next(), base);
}

/* No path: refused before anything is created. */
static void test_listen_empty_path(void **state)
{
	struct vu_device vd = {.name = "nopath", .num_queues = 1, .ops = &tb_ops};
	char dir[] = "/tmp/vdc-nopath-XXXXXX", path[64];
	struct vu_backend *b;
	int fds = tfd_count();

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	assert_int_equal(vu_backend_new(&b, &vd), 0);
	assert_int_equal(vu_backend_listen(b, ""), -EINVAL);
	assert_int_equal(vu_backend_listen(b, NULL), -EINVAL);
	/* Nothing half-done: a real path still works afterwards. */
	assert_int_equal(vu_backend_listen(b, path), 0);
	vu_backend_free(b);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(tfd_count(), fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_listen_regular_file, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_listen_bad_paths, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_listen_stale_socket, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_listen_live_socket, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_free_keeps_foreign_socket, env_setup,
					    env_teardown),
	    cmocka_unit_test_setup_teardown(test_one_frontend_at_a_time, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_accept_out_of_fds, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_accept_out_of_fds_confined, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_disconnect_resets_everything, env_setup,
					    env_teardown),
	    cmocka_unit_test_setup_teardown(test_protocol_error_then_next_frontend, env_setup,
					    env_teardown),
	    cmocka_unit_test(test_burst_then_eof),
	    cmocka_unit_test(test_backend_channel),
	    cmocka_unit_test_setup_teardown(test_attach_partial_message, env_setup, env_teardown),
	    cmocka_unit_test_setup_teardown(test_new_rejects_bad_device, env_setup, env_teardown),
	    cmocka_unit_test(test_new_out_of_fds),
	    cmocka_unit_test(test_listen_out_of_fds),
	    cmocka_unit_test(test_listen_out_of_fds_keeps_live_socket),
	    cmocka_unit_test(test_listen_fd_refused),
	    cmocka_unit_test(test_attach_unusable_fds),
	    cmocka_unit_test(test_conn_error_without_data),
	    cmocka_unit_test(test_listen_empty_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
