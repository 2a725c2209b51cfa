/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* A fake CAN port fed through a pipe, and the daemon's loop in a thread. */
#define _GNU_SOURCE
#include "fakeport.h"
#include "tmbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct fakeport {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int rfd; /* the loop reads events here (non-blocking) */
	int wfd; /* the test writes them here (blocking) */
	uint64_t injected;
	uint64_t consumed;

	struct cframe *sent;
	unsigned int nsent, sent_cap;
	unsigned int fail_next;
	int fail_err;
	int fail_call_err;
	unsigned int failed;
	unsigned int calls;

	int start_err;
	unsigned int starts, stops;
	bool tx_confirm;

	bool count_only; /* count sent frames, keep none (long floods) */
	void (*on_send)(void *arg, unsigned int n);
	void *on_send_arg;
};

/* Records per write: at most PIPE_BUF bytes, so each write is atomic and the
 * pipe only ever holds whole records. */
#define FAKEPORT_CHUNK (PIPE_BUF / sizeof(struct can_port_event))

/* ---- device_port_ops, called in the loop thread ---- */

static int fp_send(void *port, const struct cframe *f, unsigned int n, int *res)
{
	struct fakeport *p = port;
	void (*hook)(void *arg, unsigned int n);
	void *hook_arg;
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	p->calls++;
	if (p->fail_call_err) {
		p->failed += n;
		ret = p->fail_call_err;
		goto out;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (p->fail_next > 0) {
			p->fail_next--;
			p->failed++;
			res[i] = p->fail_err;
			continue;
		}
		if (p->count_only) {
			p->nsent++;
			res[i] = 0;
			continue;
		}
		if (p->nsent >= p->sent_cap) {
			unsigned int cap = p->sent_cap ? 2 * p->sent_cap : 256;

			/* Counted-only frames before this one still take their index. */
			while (cap <= p->nsent)
				cap *= 2;
			struct cframe *s = realloc(p->sent, cap * sizeof(*s));

			if (!s) {
				res[i] = -ENOMEM;
				p->failed++;
				continue;
			}
			p->sent = s;
			p->sent_cap = cap;
		}
		p->sent[p->nsent++] = f[i];
		res[i] = 0;
	}
	pthread_cond_broadcast(&p->cond);
out:
	hook = p->on_send;
	hook_arg = p->on_send_arg;
	pthread_mutex_unlock(&p->lock);
	if (hook)
		hook(hook_arg, n);
	return ret;
}

void fakeport_count_only(struct fakeport *p, bool on)
{
	pthread_mutex_lock(&p->lock);
	p->count_only = on;
	pthread_mutex_unlock(&p->lock);
}

void fakeport_on_send(struct fakeport *p, void (*fn)(void *arg, unsigned int n), void *arg)
{
	pthread_mutex_lock(&p->lock);
	p->on_send = fn;
	p->on_send_arg = arg;
	pthread_mutex_unlock(&p->lock);
}

static int fp_start(void *port)
{
	struct fakeport *p = port;
	int ret;

	pthread_mutex_lock(&p->lock);
	ret = p->start_err;
	if (ret == 0)
		p->starts++;
	pthread_mutex_unlock(&p->lock);
	return ret;
}

static int fp_stop(void *port)
{
	struct fakeport *p = port;

	pthread_mutex_lock(&p->lock);
	p->stops++;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static int fp_set_tx_confirm(void *port, bool on)
{
	struct fakeport *p = port;

	pthread_mutex_lock(&p->lock);
	p->tx_confirm = on;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static int fp_recv(void *port, int fd, struct can_port_event *ev, unsigned int max)
{
	struct fakeport *p = port;
	ssize_t r = read(fd, ev, max * sizeof(*ev));
	unsigned int n;

	if (r < 0)
		return -errno;
	if (r % (ssize_t)sizeof(*ev) != 0)
		return -EPROTO; /* cannot happen: writes are atomic whole records */
	n = (unsigned int)(r / (ssize_t)sizeof(*ev));
	pthread_mutex_lock(&p->lock);
	p->consumed += n;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return (int)n;
}

static const struct device_port_ops fp_ops = {
    .send = fp_send,
    .start = fp_start,
    .stop = fp_stop,
    .set_tx_confirm = fp_set_tx_confirm,
    .now_ms = NULL,
};

int fakeport_new(struct fakeport **out)
{
	struct fakeport *p = calloc(1, sizeof(*p));
	int fds[2];

	*out = NULL;
	if (!p)
		return -ENOMEM;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		int ret = -errno;

		free(p);
		return ret;
	}
	/* The loop must never block on the port. */
	fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
	p->rfd = fds[0];
	p->wfd = fds[1];
	pthread_mutex_init(&p->lock, NULL);
	tmbox_cond_init(&p->cond);
	*out = p;
	return 0;
}

void fakeport_free(struct fakeport *p)
{
	if (!p)
		return;
	close(p->rfd);
	close(p->wfd);
	free(p->sent);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void fakeport_loop_port(struct fakeport *p, struct loop_port *dp)
{
	memset(dp, 0, sizeof(*dp));
	dp->ops = &fp_ops;
	dp->recv = fp_recv;
	dp->port = p;
	dp->fds[0] = p->rfd;
	dp->nfds = 1;
}

/* ---- Bus side ---- */

int fakeport_inject(struct fakeport *p, const struct can_port_event *ev, unsigned int n)
{
	while (n > 0) {
		unsigned int k = n < FAKEPORT_CHUNK ? n : (unsigned int)FAKEPORT_CHUNK;
		size_t len = k * sizeof(*ev);
		ssize_t r = write(p->wfd, ev, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if ((size_t)r != len)
			return -EIO;
		pthread_mutex_lock(&p->lock);
		p->injected += k;
		pthread_mutex_unlock(&p->lock);
		ev += k;
		n -= k;
	}
	return 0;
}

int fakeport_inject_frames(struct fakeport *p, const struct cframe *f, unsigned int n)
{
	struct can_port_event ev[FAKEPORT_CHUNK];

	while (n > 0) {
		unsigned int k = n < FAKEPORT_CHUNK ? n : (unsigned int)FAKEPORT_CHUNK;
		int ret;

		memset(ev, 0, k * sizeof(ev[0]));
		for (unsigned int i = 0; i < k; i++) {
			ev[i].type = CAN_PORT_EV_FRAME;
			ev[i].frame = f[i];
		}
		ret = fakeport_inject(p, ev, k);
		if (ret < 0)
			return ret;
		f += k;
		n -= k;
	}
	return 0;
}

int fakeport_inject_event(struct fakeport *p, enum can_port_event_type type, const struct cframe *f)
{
	struct can_port_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	if (f)
		ev.frame = *f;
	return fakeport_inject(p, &ev, 1);
}

uint64_t fakeport_injected(struct fakeport *p)
{
	uint64_t n;

	pthread_mutex_lock(&p->lock);
	n = p->injected;
	pthread_mutex_unlock(&p->lock);
	return n;
}

uint64_t fakeport_consumed(struct fakeport *p)
{
	uint64_t n;

	pthread_mutex_lock(&p->lock);
	n = p->consumed;
	pthread_mutex_unlock(&p->lock);
	return n;
}

int fakeport_wait_consumed(struct fakeport *p, int timeout_ms)
{
	struct timespec dl = tmbox_deadline(timeout_ms);
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	while (p->consumed < p->injected) {
		if (pthread_cond_timedwait(&p->cond, &p->lock, &dl) == ETIMEDOUT) {
			ret = p->consumed < p->injected ? -ETIMEDOUT : 0;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

/* ---- Send side ---- */

unsigned int fakeport_sent_count(struct fakeport *p)
{
	unsigned int n;

	pthread_mutex_lock(&p->lock);
	n = p->nsent;
	pthread_mutex_unlock(&p->lock);
	return n;
}

int fakeport_sent(struct fakeport *p, unsigned int i, struct cframe *f)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&p->lock);
	if (i < p->nsent && i < p->sent_cap && !p->count_only) {
		*f = p->sent[i];
		ret = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int fakeport_wait_sent(struct fakeport *p, unsigned int n, int timeout_ms)
{
	struct timespec dl = tmbox_deadline(timeout_ms);
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	while (p->nsent < n) {
		if (pthread_cond_timedwait(&p->cond, &p->lock, &dl) == ETIMEDOUT) {
			ret = p->nsent < n ? -ETIMEDOUT : 0;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void fakeport_clear_sent(struct fakeport *p)
{
	pthread_mutex_lock(&p->lock);
	p->nsent = 0;
	pthread_mutex_unlock(&p->lock);
}

void fakeport_fail_next(struct fakeport *p, unsigned int n, int err)
{
	pthread_mutex_lock(&p->lock);
	p->fail_next = n;
	p->fail_err = err;
	pthread_mutex_unlock(&p->lock);
}

void fakeport_fail_calls(struct fakeport *p, int err)
{
	pthread_mutex_lock(&p->lock);
	p->fail_call_err = err;
	pthread_mutex_unlock(&p->lock);
}

unsigned int fakeport_failed_count(struct fakeport *p)
{
	unsigned int n;

	pthread_mutex_lock(&p->lock);
	n = p->failed;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned int fakeport_send_calls(struct fakeport *p)
{
	unsigned int n;

	pthread_mutex_lock(&p->lock);
	n = p->calls;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void fakeport_fail_start(struct fakeport *p, int err)
{
	pthread_mutex_lock(&p->lock);
	p->start_err = err;
	pthread_mutex_unlock(&p->lock);
}

unsigned int fakeport_starts(struct fakeport *p)
{
	unsigned int n;

	pthread_mutex_lock(&p->lock);
	n = p->starts;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned int fakeport_stops(struct fakeport *p)
{
	unsigned int n;

	pthread_mutex_lock(&p->lock);
	n = p->stops;
	pthread_mutex_unlock(&p->lock);
	return n;
}

bool fakeport_tx_confirm(struct fakeport *p)
{
	bool on;

	pthread_mutex_lock(&p->lock);
	on = p->tx_confirm;
	pthread_mutex_unlock(&p->lock);
	return on;
}

/* ---- The daemon's loop in a thread ---- */

#define FPD_MAX_EXTRA 4

struct fakeport_loop {
	struct loop *m;
	struct loop_port dp;
	struct fakeport *p;
	/* Devices added with fakeport_loop_add: their ports and socket paths. */
	struct loop_port extra_dp[FPD_MAX_EXTRA];
	char extra_path[FPD_MAX_EXTRA][112];
	unsigned int nextra;
	pthread_t thread;
	bool thread_running;
	bool inited;
	char dir[64];
	char path[96];
	/* The test thread's requests; the loop's control fd is its wake-up. */
	struct tmbox mb;
	int ret; /* loop_run's, under mb.lock */
};

/* loop_run's control callback: run the posted request, say whether to stop. */
static int fpl_on_ctl(struct loop *m, void *arg)
{
	struct fakeport_loop *d = arg;

	return tmbox_serve(&d->mb, m) ? 1 : 0;
}

static void *fpl_thread(void *opaque)
{
	struct fakeport_loop *d = opaque;
	int ret = loop_run(d->m, tmbox_fd(&d->mb), fpl_on_ctl, d);

	pthread_mutex_lock(&d->mb.lock);
	d->ret = ret;
	pthread_mutex_unlock(&d->mb.lock);
	tmbox_exited(&d->mb);
	return NULL;
}

struct fpl_add {
	const struct device_config *cfg;
	struct loop_port *dp;
	const char *path;
	int ret;
};

static void fpl_do_add(struct loop *m, void *arg)
{
	struct fpl_add *a = arg;
	struct loop_sock sock = {.path = a->path, .listen_fd = -1, .conn_fd = -1};

	a->ret = loop_add(m, a->cfg, a->dp, &sock);
}

int fakeport_loop_add(struct fakeport_loop *d, const struct device_config *cfg, struct fakeport *p,
		     const char **path)
{
	struct fpl_add a;
	unsigned int k = d->nextra;
	int ret;

	if (k >= FPD_MAX_EXTRA)
		return -ENOSPC;
	snprintf(d->extra_path[k], sizeof(d->extra_path[k]), "%s/vhost-%u.sock", d->dir, k + 1);
	fakeport_loop_port(p, &d->extra_dp[k]);
	a = (struct fpl_add){.cfg = cfg, .dp = &d->extra_dp[k], .path = d->extra_path[k]};
	ret = fakeport_loop_exec(d, fpl_do_add, &a);
	if (ret < 0)
		return ret;
	if (a.ret < 0)
		return a.ret;
	d->nextra++;
	*path = d->extra_path[k];
	return 0;
}

static void fpl_free(struct fakeport_loop *d)
{
	if (d->inited)
		loop_free(d->m);
	if (d->dir[0])
		rmdir(d->dir);
	tmbox_fini(&d->mb);
	free(d);
}

int fakeport_loop_start(struct fakeport_loop **out, const struct device_config *cfg, struct fakeport *p)
{
	const char *tmp = getenv("TMPDIR");
	struct fakeport_loop *d;
	int ret;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->p = p;
	ret = tmbox_init(&d->mb);
	if (ret < 0) {
		free(d);
		return ret;
	}

	if (!tmp || !tmp[0] || strlen(tmp) > 32)
		tmp = "/tmp";
	snprintf(d->dir, sizeof(d->dir), "%s/vdc-XXXXXX", tmp);
	if (!mkdtemp(d->dir)) {
		ret = -errno;
		d->dir[0] = '\0';
		goto err;
	}
	snprintf(d->path, sizeof(d->path), "%s/vhost.sock", d->dir);

	fakeport_loop_port(p, &d->dp);
	ret = loop_init(&d->m, cfg, &d->dp, d->path, -1);
	if (ret < 0)
		goto err;
	d->inited = true;
	ret = -pthread_create(&d->thread, NULL, fpl_thread, d);
	if (ret < 0)
		goto err;
	d->thread_running = true;
	*out = d;
	return 0;

err:
	fpl_free(d);
	return ret;
}

int fakeport_loop_stop(struct fakeport_loop *d)
{
	int ret;

	if (!d)
		return 0;
	if (d->thread_running) {
		tmbox_stop(&d->mb);
		pthread_join(d->thread, NULL);
	}
	ret = d->ret;
	fpl_free(d);
	return ret;
}

const char *fakeport_loop_path(const struct fakeport_loop *d)
{
	return d->path;
}

/* fakeport_loop_exec's function and argument, called through the mailbox. */
struct fpl_call {
	void (*fn)(struct loop *m, void *arg);
	void *arg;
};

static void fpl_call(void *ctx, void *arg)
{
	struct fpl_call *c = arg;

	c->fn(ctx, c->arg);
}

int fakeport_loop_exec(struct fakeport_loop *d, void (*fn)(struct loop *m, void *arg), void *arg)
{
	struct fpl_call c = {.fn = fn, .arg = arg};

	return tmbox_exec(&d->mb, fpl_call, &c);
}

static void fpl_nothing(struct loop *m, void *arg)
{
	(void)m;
	(void)arg;
}

int fakeport_loop_ping(struct fakeport_loop *d, int timeout_ms)
{
	return tmbox_ping(&d->mb, timeout_ms);
}

int fakeport_loop_sync(struct fakeport_loop *d, int timeout_ms)
{
	int ret = fakeport_wait_consumed(d->p, timeout_ms);

	if (ret < 0)
		return ret;
	/*
	 * The loop counts events as read before it hands them to the device,
	 * in the same callback: a request it runs after that sees them handled.
	 */
	return fakeport_loop_exec(d, fpl_nothing, NULL);
}

static void fpl_get_stats(struct loop *m, void *arg)
{
	device_get_stats(loop_device(m, 0), arg);
}

int fakeport_loop_stats(struct fakeport_loop *d, struct device_stats *s)
{
	memset(s, 0, sizeof(*s));
	return fakeport_loop_exec(d, fpl_get_stats, s);
}

bool fakeport_loop_exited(struct fakeport_loop *d, int *ret)
{
	bool e;

	pthread_mutex_lock(&d->mb.lock);
	e = d->mb.exited;
	if (ret)
		*ret = d->ret;
	pthread_mutex_unlock(&d->mb.lock);
	return e;
}
