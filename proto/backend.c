/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The vhost-user backend: connection lifecycle and I/O, and the public
 * vu_backend_* API. The top of the backend's chain: it calls backend_msg.c
 * (backend_msg_*) and nothing else of the backend.
 *
 * I/O: the connection is non-blocking. A message is read as far as it has
 * arrived and kept until the rest comes, so a frontend that writes a message
 * in pieces works and one that stops half way costs the loop nothing; a
 * deadline per message (a timerfd) ends a frontend that never finishes. A
 * reply that does not fit the socket's send buffer (a frontend that stopped
 * reading) ends the connection instead of waiting. Nothing here waits on
 * the frontend.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend_priv.h"
#include "vhost-user/vlog.h"

/* Default bound on the time from a message's first byte to its last. */
#define MSG_TIMEOUT_MS 5000
/* Messages handled per dispatch before kicks get a turn. */
#define MSGS_PER_DISPATCH 32

/* ---- connection lifecycle ---- */

int vu_backend_new(struct vu_backend **out, const struct vu_device *dev)
{
	struct epoll_event wake = {.events = EPOLLIN, .data.u64 = BACKEND_EV_WAKE};
	struct epoll_event timer = {.events = EPOLLIN, .data.u64 = BACKEND_EV_TIMER};
	struct vu_backend *b;

	*out = NULL;
	if (!dev || dev->num_queues == 0 || dev->num_queues > VU_MAX_QUEUES)
		return -EINVAL;
	if (dev->config_size > VHOST_USER_MAX_CONFIG_SIZE)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->dev = dev;
	b->tag = dev->name ? dev->name : "vhost-user";
	b->listen_fd = -1;
	b->spare_fd = -1;
	b->conn_fd = -1;
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	b->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	b->msg_timeout_ms = MSG_TIMEOUT_MS;
	if (b->epfd < 0 || b->wake_fd < 0 || b->timer_fd < 0 ||
	    epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->wake_fd, &wake) != 0 ||
	    epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->timer_fd, &timer) != 0) {
		int ret = -errno;

		backend_close_fd(&b->timer_fd);
		backend_close_fd(&b->wake_fd);
		backend_close_fd(&b->epfd);
		free(b);
		return ret;
	}
	backend_msg_init(b);
	*out = b;
	return 0;
}

static void watch_listen(struct vu_backend *b)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = BACKEND_EV_LISTEN};

	if (b->listen_fd >= 0 && epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->listen_fd, &ev) != 0)
		vlog_limited(&b->log_limit, VLOG_ERR, b->tag,
			     "cannot watch the listening socket: %s", strerror(errno));
}

/* Arm (ms > 0) or disarm (0) the message deadline. */
static void set_msg_deadline(struct vu_backend *b, unsigned int ms)
{
	struct itimerspec its = {
	    .it_value = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L},
	};

	if (timerfd_settime(b->timer_fd, 0, &its, NULL) != 0)
		vlog_limited(&b->log_limit, VLOG_ERR, b->tag, "message deadline: %s",
			     strerror(errno));
	b->rx_timed = ms > 0;
}

void vu_backend_disconnect(struct vu_backend *b)
{
	if (b->conn_fd < 0)
		return;
	vlog_limited(&b->log_limit, VLOG_INFO, b->tag, "frontend disconnected");
	/* Half a message and its fds go with the connection. */
	if (b->rx_got)
		vu_msg_close_fds(&b->rx);
	b->rx_got = 0;
	if (b->rx_timed)
		set_msg_deadline(b, 0);
	backend_msg_end_session(b);
	epoll_ctl(b->epfd, EPOLL_CTL_DEL, b->conn_fd, NULL);
	backend_close_fd(&b->conn_fd);
	watch_listen(b);
}

void vu_backend_free(struct vu_backend *b)
{
	struct stat st;

	if (!b)
		return;
	vu_backend_disconnect(b);
	backend_close_fd(&b->listen_fd);
	backend_close_fd(&b->spare_fd);
	/* Remove the socket file only if it is still the one we created. */
	if (b->sock_path && lstat(b->sock_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == b->sock_dev && st.st_ino == b->sock_ino)
		unlink(b->sock_path);
	free(b->sock_path);
	backend_close_fd(&b->timer_fd);
	backend_close_fd(&b->wake_fd);
	backend_close_fd(&b->epfd);
	free(b);
}

/*
 * Whether something accepts connections on path: 1 yes, 0 no (stale), or
 * -errno when it cannot be told (no fd for the probe): then nothing may be
 * removed, or another process's live socket would go.
 */
static int socket_alive(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	bool alive;

	if (fd < 0)
		return -errno;
	/* A full backlog (EAGAIN) still means someone listens. */
	alive = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN ||
		errno == EINPROGRESS;
	close(fd);
	return alive;
}

/*
 * The fd kept in reserve for a frontend arriving when none is left. An
 * eventfd, not a file: a process confined after start-up (no file may be
 * opened) must be able to take it again after each use.
 */
static int new_spare_fd(void)
{
	return eventfd(0, EFD_CLOEXEC);
}

int vu_backend_listen(struct vu_backend *b, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd = -1, ret;

	if (b->listen_fd >= 0)
		return -EBUSY;
	if (!path || !*path)
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			vlog_err(b->tag, "%s exists and is not a socket", path);
			return -EEXIST;
		}
		ret = socket_alive(&sa);
		if (ret < 0)
			return ret;
		if (ret > 0) {
			vlog_err(b->tag, "%s: another process is listening", path);
			return -EADDRINUSE;
		}
		if (unlink(path) != 0 && errno != ENOENT)
			return -errno;
		vlog_info(b->tag, "%s: replaced a stale socket", path);
	}

	b->sock_path = strdup(path);
	if (!b->sock_path)
		return -ENOMEM;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
		ret = -errno;
		goto fail;
	}
	if (lstat(path, &st) == 0) {
		b->sock_dev = st.st_dev;
		b->sock_ino = st.st_ino;
	}
	if (listen(fd, 1) != 0) {
		ret = -errno;
		unlink(path);
		goto fail;
	}
	b->listen_fd = fd;
	b->spare_fd = new_spare_fd();
	if (b->conn_fd < 0)
		watch_listen(b);
	vlog_info(b->tag, "listening on %s", path);
	return 0;

fail:
	if (fd >= 0)
		close(fd);
	free(b->sock_path);
	b->sock_path = NULL;
	return ret;
}

int vu_backend_listen_fd(struct vu_backend *b, int fd)
{
	socklen_t len = sizeof(int);
	int v = 0, fl, ret;

	if (fd < 0)
		return -EBADF;
	if (b->listen_fd >= 0) {
		ret = -EBUSY;
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || !v) {
		ret = -EINVAL;
		goto fail;
	}
	/* accept() must never wait: the listening socket is polled. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		ret = -errno;
		goto fail;
	}
	b->listen_fd = fd;
	b->spare_fd = new_spare_fd();
	if (b->conn_fd < 0)
		watch_listen(b);
	vlog_info(b->tag, "listening on an inherited socket (fd %d)", fd);
	return 0;
fail:
	close(fd);
	return ret;
}

/* Take conn as the frontend's connection. Closes it on failure. */
static int serve(struct vu_backend *b, int conn)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int flags, ret;

	if (b->conn_fd >= 0) {
		close(conn);
		return -EBUSY;
	}
	/* Non-blocking: a message is read as far as it has arrived, never waited for. */
	flags = fcntl(conn, F_GETFL);
	if (flags < 0 || fcntl(conn, F_SETFL, flags | O_NONBLOCK) != 0) {
		ret = -errno;
		close(conn);
		return ret;
	}
	b->sessions++;
	ev.data.u64 = BACKEND_EV_CONN | b->sessions;
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, conn, &ev) != 0) {
		ret = -errno;
		close(conn);
		return ret;
	}
	/* One frontend at a time: others wait in the backlog. */
	if (b->listen_fd >= 0)
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, b->listen_fd, NULL);
	b->conn_fd = conn;
	vlog_limited(&b->log_limit, VLOG_INFO, b->tag, "frontend connected (session %u)",
		     b->sessions);
	return 0;
}

int vu_backend_attach(struct vu_backend *b, int conn_fd)
{
	if (conn_fd < 0)
		return -EBADF;
	return serve(b, conn_fd);
}

int vu_backend_fd(const struct vu_backend *b)
{
	return b->epfd;
}

static void accept_frontend(struct vu_backend *b)
{
	int fd;

	if (b->listen_fd < 0 || b->conn_fd >= 0)
		return;
	do {
		fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && b->spare_fd >= 0) {
		/*
		 * Out of fds: the frontend would stay in the backlog and the
		 * level-triggered listening socket would wake us forever. Use the
		 * spare fd to take it and hang up on it.
		 */
		vlog_limited(&b->log_limit, VLOG_ERR, b->tag, "accept: %s: refusing the frontend",
			     strerror(errno));
		backend_close_fd(&b->spare_fd);
		fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			close(fd);
		b->spare_fd = new_spare_fd();
		return;
	}
	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
			vlog_limited(&b->log_limit, VLOG_ERR, b->tag, "accept: %s",
				     strerror(errno));
		return;
	}
	if (serve(b, fd) != 0)
		vlog_limited(&b->log_limit, VLOG_ERR, b->tag, "cannot serve the new connection");
}

/*
 * Handle the messages that have arrived, at most MSGS_PER_DISPATCH. A
 * message that is still arriving is kept, with a deadline: a frontend that
 * dribbles one byte at a time loses its connection once the deadline
 * passes, and meanwhile costs the loop nothing.
 */
static void serve_messages(struct vu_backend *b)
{
	for (int n = 0; n < MSGS_PER_DISPATCH && b->conn_fd >= 0; n++) {
		int ret = vu_msg_recv_some(b->conn_fd, &b->rx, &b->rx_got);

		if (ret == 0) {
			if (b->rx_got > 0 && !b->rx_timed)
				set_msg_deadline(b, b->msg_timeout_ms);
			return;
		}
		if (ret < 0) {
			if (ret != -ECONNRESET)
				vlog_limited(&b->log_limit, VLOG_ERR, b->tag,
					     "receiving a message: %s", strerror(-ret));
			vu_backend_disconnect(b);
			return;
		}
		b->rx_got = 0;
		if (b->rx_timed)
			set_msg_deadline(b, 0);
		ret = backend_msg_handle(b, &b->rx);
		if (ret) {
			vlog_limited(&b->log_limit, VLOG_ERR, b->tag,
				     "%s failed (%s): dropping the frontend",
				     vu_msg_name(b->rx.hdr.request), strerror(-ret));
			vu_backend_disconnect(b);
			return;
		}
	}
}

static void msg_timed_out(struct vu_backend *b)
{
	uint64_t v;

	if (read(b->timer_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		vlog_limited(&b->log_limit, VLOG_WARN, b->tag, "timer fd: %s", strerror(errno));
	/* Stale when the message completed, or the frontend left, meanwhile. */
	if (!b->rx_timed || b->rx_got == 0 || b->conn_fd < 0)
		return;
	b->rx_timed = false;
	vlog_limited(&b->log_limit, VLOG_ERR, b->tag,
		     "a message stayed incomplete for %u ms (%zu bytes arrived): dropping the "
		     "frontend",
		     b->msg_timeout_ms, b->rx_got);
	vu_backend_disconnect(b);
}

/* Rings that stopped on their budget at the last turn: cleared, and which. */
static unsigned int take_resumes(struct vu_backend *b)
{
	unsigned int want = 0;
	uint64_t v;

	for (unsigned int i = 0; i < backend_num_queues(b); i++) {
		if (!b->vqs[i].resume)
			continue;
		b->vqs[i].resume = false;
		want |= 1u << i;
	}
	/* A flag set means a wake-up was written since the last read. */
	if (want && read(b->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		vlog_limited(&b->log_limit, VLOG_WARN, b->tag, "wake fd: %s", strerror(errno));
	return want;
}

static void resume_ring(struct vu_backend *b, unsigned int i)
{
	const struct vu_device_ops *ops = b->dev->ops;

	if (b->active[i] && b->vqs[i].started && ops && ops->queue_kick)
		ops->queue_kick(b->dev->opaque, &b->vqs[i]);
}

static void handle_kick(struct vu_backend *b, unsigned int i, uint32_t events)
{
	const struct vu_device_ops *ops = b->dev->ops;
	struct vq *q;

	if (i >= backend_num_queues(b))
		return;
	q = &b->vqs[i];
	/* The event may be stale: an earlier one in this batch stopped the ring. */
	if (!q->started)
		return;
	/*
	 * A kick fd that hung up (a pipe whose writer closed) can never kick
	 * again: the frontend broke its ring, and loses the connection.
	 */
	if ((events & (EPOLLHUP | EPOLLERR)) || vq_drain_kick(q) == -EPIPE) {
		vlog_limited(&b->log_limit, VLOG_ERR, q->tag,
			     "kick fd hung up: dropping the frontend");
		vu_backend_disconnect(b);
		return;
	}
	if (b->active[i] && ops && ops->queue_kick)
		ops->queue_kick(b->dev->opaque, q);
}

int vu_backend_dispatch(struct vu_backend *b)
{
	struct epoll_event evs[VU_MAX_QUEUES + 4];
	unsigned int resumes, kicked = 0;
	int n;

	/*
	 * Taken before the events: a ring that stops on its budget again in
	 * this dispatch is resumed at the next one, after the caller's other
	 * sources (CAN sockets, signals) had their turn.
	 */
	resumes = take_resumes(b);

	do {
		n = epoll_wait(b->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		int ret = -errno;

		vlog_limited(&b->log_limit, VLOG_ERR, b->tag, "epoll_wait: %s", strerror(errno));
		return ret;
	}
	for (int i = 0; i < n; i++) {
		uint64_t d = evs[i].data.u64;

		switch (BACKEND_EV_KIND(d)) {
		case BACKEND_EV_LISTEN:
			accept_frontend(b);
			break;
		case BACKEND_EV_CONN:
			/* Stale when the connection it was for is gone. */
			if (b->conn_fd < 0 || BACKEND_EV_ARG(d) != b->sessions)
				break;
			if (evs[i].events & EPOLLIN)
				serve_messages(b);
			else if (evs[i].events & (EPOLLHUP | EPOLLERR))
				vu_backend_disconnect(b);
			break;
		case BACKEND_EV_KICK:
			handle_kick(b, BACKEND_EV_ARG(d), evs[i].events);
			if (BACKEND_EV_ARG(d) < VU_MAX_QUEUES)
				kicked |= 1u << BACKEND_EV_ARG(d);
			break;
		case BACKEND_EV_TIMER:
			msg_timed_out(b);
			break;
		default: /* BACKEND_EV_WAKE: read by take_resumes */
			break;
		}
	}
	/* One budget per ring and dispatch: a kicked ring already had its turn. */
	for (unsigned int i = 0; i < backend_num_queues(b); i++)
		if ((resumes & ~kicked) & (1u << i))
			resume_ring(b, i);
	vu_backend_check_memory(b);
	return 0;
}

int vu_backend_handle_msg(struct vu_backend *b, struct vu_msg *m)
{
	return backend_msg_handle(b, m);
}

int vu_backend_check_memory(struct vu_backend *b)
{
	unsigned int faults = gmem_fault_count();

	/* One atomic load a call unless a fault was caught somewhere. */
	if (faults == b->faults_seen)
		return 0;
	b->faults_seen = faults;
	if (!gmem_lost(&b->mem))
		return 0;
	vlog_limited(&b->log_limit, VLOG_ERR, b->tag,
		     "guest memory vanished under a mapping (its file shrank or lost its pages): "
		     "dropping the frontend");
	vu_backend_disconnect(b);
	return -EFAULT;
}

int vu_backend_add_mem_budget(struct vu_backend *b, struct gmem_budget *budget)
{
	return gmem_add_budget(&b->mem, budget);
}

bool vu_backend_connected(const struct vu_backend *b)
{
	return b->conn_fd >= 0;
}

struct vq *vu_backend_vq(struct vu_backend *b, unsigned int idx)
{
	if (idx >= backend_num_queues(b))
		return NULL;
	return &b->vqs[idx];
}

uint64_t vu_backend_features(const struct vu_backend *b)
{
	return b->features;
}

int vu_backend_config_changed(struct vu_backend *b)
{
	struct vhost_user_hdr h = {
	    .request = VHOST_USER_BACKEND_CONFIG_CHANGE_MSG,
	    .flags = VHOST_USER_VERSION,
	    .size = 0,
	};
	ssize_t n;

	if (b->backend_fd < 0)
		return -ENOTCONN;
	/* Never wait on the frontend: a full channel drops the notification. */
	do {
		n = send(b->backend_fd, &h, sizeof(h), MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		int ret = -errno;

		vlog_limited(&b->log_limit, VLOG_WARN, b->tag, "config change notification: %s",
			     strerror(errno));
		if (ret == -EPIPE || ret == -ECONNRESET)
			backend_close_fd(&b->backend_fd);
		return ret;
	}
	/* A 12-byte write to a unix stream socket is not split. */
	return n == (ssize_t)sizeof(h) ? 0 : -EIO;
}

void vu_backend_set_msg_timeout(struct vu_backend *b, unsigned int ms)
{
	b->msg_timeout_ms = ms ? ms : MSG_TIMEOUT_MS;
}

unsigned int vu_backend_sessions(const struct vu_backend *b)
{
	return b->sessions;
}
