/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* A mailbox between a test thread and a loop thread (see tmbox.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tmbox.h"

struct timespec tmbox_deadline(int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

void tmbox_cond_init(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

int tmbox_init(struct tmbox *mb)
{
	*mb = (struct tmbox){.wake_fd = -1};
	mb->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (mb->wake_fd < 0)
		return -errno;
	pthread_mutex_init(&mb->lock, NULL);
	tmbox_cond_init(&mb->cond);
	return 0;
}

void tmbox_fini(struct tmbox *mb)
{
	if (mb->wake_fd < 0)
		return;
	close(mb->wake_fd);
	mb->wake_fd = -1;
	pthread_cond_destroy(&mb->cond);
	pthread_mutex_destroy(&mb->lock);
}

bool tmbox_serve(struct tmbox *mb, void *ctx)
{
	void (*fn)(void *ctx, void *arg);
	void *arg;
	eventfd_t v;
	bool stop;

	eventfd_read(mb->wake_fd, &v);
	pthread_mutex_lock(&mb->lock);
	stop = mb->stop;
	fn = mb->busy && !mb->done ? mb->fn : NULL;
	arg = mb->arg;
	pthread_mutex_unlock(&mb->lock);
	if (stop || !fn)
		return stop;
	fn(ctx, arg);
	pthread_mutex_lock(&mb->lock);
	mb->done = true;
	if (mb->abandoned) {
		mb->busy = false;
		mb->abandoned = false;
	}
	pthread_cond_broadcast(&mb->cond);
	pthread_mutex_unlock(&mb->lock);
	return false;
}

void tmbox_exited(struct tmbox *mb)
{
	pthread_mutex_lock(&mb->lock);
	mb->exited = true;
	pthread_cond_broadcast(&mb->cond);
	pthread_mutex_unlock(&mb->lock);
}

/* Post fn under the lock, waiting for the box to be free (until dl if given). */
static int post(struct tmbox *mb, void (*fn)(void *ctx, void *arg), void *arg,
		const struct timespec *dl)
{
	int ret = 0;

	while (mb->busy && !mb->exited && ret == 0)
		ret = dl ? pthread_cond_timedwait(&mb->cond, &mb->lock, dl)
			 : pthread_cond_wait(&mb->cond, &mb->lock);
	if (mb->exited)
		return -ESRCH;
	if (ret)
		return -ETIMEDOUT;
	mb->fn = fn;
	mb->arg = arg;
	mb->busy = true;
	mb->done = false;
	return 0;
}

int tmbox_exec(struct tmbox *mb, void (*fn)(void *ctx, void *arg), void *arg)
{
	int ret;

	pthread_mutex_lock(&mb->lock);
	ret = post(mb, fn, arg, NULL);
	pthread_mutex_unlock(&mb->lock);
	if (ret < 0)
		return ret;
	eventfd_write(mb->wake_fd, 1);

	pthread_mutex_lock(&mb->lock);
	while (!mb->done && !mb->exited)
		pthread_cond_wait(&mb->cond, &mb->lock);
	ret = mb->done ? 0 : -ESRCH;
	mb->busy = false;
	pthread_cond_broadcast(&mb->cond);
	pthread_mutex_unlock(&mb->lock);
	return ret;
}

static void nothing(void *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
}

int tmbox_ping(struct tmbox *mb, int timeout_ms)
{
	struct timespec dl = tmbox_deadline(timeout_ms);
	int ret;

	pthread_mutex_lock(&mb->lock);
	ret = post(mb, nothing, NULL, &dl);
	pthread_mutex_unlock(&mb->lock);
	if (ret < 0)
		return ret;
	eventfd_write(mb->wake_fd, 1);

	pthread_mutex_lock(&mb->lock);
	while (!mb->done && !mb->exited && ret == 0)
		ret = pthread_cond_timedwait(&mb->cond, &mb->lock, &dl);
	if (mb->done) {
		ret = 0;
		mb->busy = false;
	} else {
		/* nothing() needs no caller: the loop thread ends it when it gets there. */
		mb->abandoned = true;
		ret = mb->exited ? -ESRCH : -ETIMEDOUT;
	}
	pthread_cond_broadcast(&mb->cond);
	pthread_mutex_unlock(&mb->lock);
	return ret;
}

void tmbox_stop(struct tmbox *mb)
{
	pthread_mutex_lock(&mb->lock);
	mb->stop = true;
	pthread_mutex_unlock(&mb->lock);
	eventfd_write(mb->wake_fd, 1);
}
