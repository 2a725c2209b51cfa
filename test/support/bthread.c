/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* A backend served by an epoll loop in its own thread (integration tests). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bthread.h"
#include "device.h"
#include "tmbox.h"

enum { BTHREAD_EV_WAKE = 1, BTHREAD_EV_BACKEND = 2 };

struct bthread {
	struct vu_backend *b;
	pthread_t thread;
	bool thread_running;
	int ep;
	char dir[64];
	char path[96];
	/* The test thread's requests; its lock and cond also guard what follows. */
	struct tmbox mb;
	int error;
	/* Dispatches so far: what bthread_wait waits on. */
	unsigned long gen;
};

static void *loop(void *opaque)
{
	struct bthread *t = opaque;

	for (;;) {
		struct epoll_event ev[4];
		bool backend = false, wake = false;
		int n = epoll_wait(t->ep, ev, 4, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pthread_mutex_lock(&t->mb.lock);
			t->error = -errno;
			pthread_mutex_unlock(&t->mb.lock);
			break;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u32 == BTHREAD_EV_WAKE)
				wake = true;
			else
				backend = true;
		}
		if (wake && tmbox_serve(&t->mb, t->b))
			break;
		if (backend) {
			int ret = vu_backend_dispatch(t->b);

			pthread_mutex_lock(&t->mb.lock);
			if (ret < 0 && t->error == 0)
				t->error = ret;
			t->gen++;
			pthread_cond_broadcast(&t->mb.cond);
			pthread_mutex_unlock(&t->mb.lock);
			if (ret < 0)
				break;
		}
	}
	tmbox_exited(&t->mb);
	return NULL;
}

static void bthread_free(struct bthread *t)
{
	if (t->b)
		vu_backend_free(t->b);
	if (t->dir[0])
		rmdir(t->dir);
	if (t->ep >= 0)
		close(t->ep);
	tmbox_fini(&t->mb);
	free(t);
}

int bthread_start(struct bthread **out, const struct vu_device *dev)
{
	struct epoll_event ev = {.events = EPOLLIN};
	const char *tmp = getenv("TMPDIR");
	struct bthread *t;
	int ret;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ep = -1;
	t->mb.wake_fd = -1;
	ret = tmbox_init(&t->mb);
	if (ret < 0)
		goto err;

	if (!tmp || !tmp[0] || strlen(tmp) > 32)
		tmp = "/tmp";
	snprintf(t->dir, sizeof(t->dir), "%s/vdc-XXXXXX", tmp);
	if (!mkdtemp(t->dir)) {
		ret = -errno;
		t->dir[0] = '\0';
		goto err;
	}
	snprintf(t->path, sizeof(t->path), "%s/vhost.sock", t->dir);

	ret = vu_backend_new(&t->b, dev);
	if (ret < 0) {
		t->b = NULL;
		goto err;
	}
	ret = vu_backend_listen(t->b, t->path);
	if (ret < 0)
		goto err;

	t->ep = epoll_create1(EPOLL_CLOEXEC);
	if (t->ep < 0) {
		ret = -errno;
		goto err;
	}
	ev.data.u32 = BTHREAD_EV_WAKE;
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, tmbox_fd(&t->mb), &ev) < 0) {
		ret = -errno;
		goto err;
	}
	ev.data.u32 = BTHREAD_EV_BACKEND;
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, vu_backend_fd(t->b), &ev) < 0) {
		ret = -errno;
		goto err;
	}
	ret = -pthread_create(&t->thread, NULL, loop, t);
	if (ret < 0)
		goto err;
	t->thread_running = true;
	*out = t;
	return 0;

err:
	bthread_free(t);
	return ret;
}

void bthread_stop(struct bthread *t)
{
	if (!t)
		return;
	if (t->thread_running) {
		tmbox_stop(&t->mb);
		pthread_join(t->thread, NULL);
	}
	bthread_free(t);
}

const char *bthread_path(const struct bthread *t)
{
	return t->path;
}

/* bthread_exec's function and argument, called through the mailbox. */
struct bthread_call {
	void (*fn)(struct vu_backend *b, void *arg);
	void *arg;
};

static void bthread_call(void *ctx, void *arg)
{
	struct bthread_call *c = arg;

	c->fn(ctx, c->arg);
}

int bthread_exec(struct bthread *t, void (*fn)(struct vu_backend *b, void *arg), void *arg)
{
	struct bthread_call c = {.fn = fn, .arg = arg};

	return tmbox_exec(&t->mb, bthread_call, &c);
}

struct pred_call {
	bool (*pred)(struct vu_backend *b, void *arg);
	void *arg;
	struct bthread *t;
	bool result;
	unsigned long gen;
};

static void eval_pred(struct vu_backend *b, void *opaque)
{
	struct pred_call *pc = opaque;

	pc->result = pc->pred(b, pc->arg);
	/* gen only moves in this thread: the value seen goes with the result. */
	pthread_mutex_lock(&pc->t->mb.lock);
	pc->gen = pc->t->gen;
	pthread_mutex_unlock(&pc->t->mb.lock);
}

int bthread_wait(struct bthread *t, bool (*pred)(struct vu_backend *b, void *arg), void *arg,
	     int timeout_ms)
{
	struct timespec dl = tmbox_deadline(timeout_ms);
	struct pred_call pc = {.pred = pred, .arg = arg, .t = t};

	for (;;) {
		int ret = bthread_exec(t, eval_pred, &pc);

		if (ret < 0)
			return ret;
		if (pc.result)
			return 0;
		pthread_mutex_lock(&t->mb.lock);
		while (t->gen == pc.gen && !t->mb.exited) {
			if (pthread_cond_timedwait(&t->mb.cond, &t->mb.lock, &dl) == ETIMEDOUT) {
				pthread_mutex_unlock(&t->mb.lock);
				return -ETIMEDOUT;
			}
		}
		pthread_mutex_unlock(&t->mb.lock);
	}
}

static void get_sessions(struct vu_backend *b, void *arg)
{
	*(unsigned int *)arg = vu_backend_sessions(b);
}

unsigned int bthread_sessions(struct bthread *t)
{
	unsigned int n = 0;

	bthread_exec(t, get_sessions, &n);
	return n;
}

static void get_connected(struct vu_backend *b, void *arg)
{
	*(bool *)arg = vu_backend_connected(b);
}

bool bthread_connected(struct bthread *t)
{
	bool c = false;

	bthread_exec(t, get_connected, &c);
	return c;
}

static bool idle_after(struct vu_backend *b, void *arg)
{
	return vu_backend_sessions(b) >= *(unsigned int *)arg && !vu_backend_connected(b);
}

int bthread_wait_idle(struct bthread *t, unsigned int sessions, int timeout_ms)
{
	return bthread_wait(t, idle_after, &sessions, timeout_ms);
}

int bthread_error(struct bthread *t)
{
	int e;

	pthread_mutex_lock(&t->mb.lock);
	e = t->error;
	pthread_mutex_unlock(&t->mb.lock);
	return e;
}

struct bthread_rx {
	struct device *dev;
	const struct cframe *f;
	unsigned int n;
};

static void bthread_rx_main(struct vu_backend *b, void *arg)
{
	struct bthread_rx *in = arg;

	(void)b;
	device_rx_frames(in->dev, in->f, in->n);
}

int bthread_device_rx(struct bthread *t, struct device *dev, const struct cframe *f, unsigned int n)
{
	struct bthread_rx in = {.dev = dev, .f = f, .n = n};

	return bthread_exec(t, bthread_rx_main, &in);
}
