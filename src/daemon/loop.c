/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "loop_test.h"
#include "vhost-user/vlog.h"

/* One device of the loop: what it serves, and the loop's state for it. */
struct loop_dev {
	struct device *dev;
	struct vu_backend *backend;
	const struct loop_port *port;
	bool once;	     /* serving one connected frontend: done when it leaves */
	struct capture *cap; /* --capture, or NULL; owned by the caller */
	/* The capture's fd is watched for EPOLLOUT while bytes wait for it. */
	bool capture_watched;
	bool capture_retry;	  /* waiting, but its fd cannot be watched: a timer */
	unsigned int capture_gen; /* capture_generation() when the watch was set */
	int epfd;
	unsigned int idx;
	int fds[LOOP_PORT_MAX_FDS]; /* the port's fds in the epoll set */
	unsigned int nfds;
	bool refresh;	/* the port said GONE or BACK: its fds changed */
	bool unwatched; /* port fds out of the epoll set for this turn's sends */
	bool flood;	/* this turn sent a batch of LOOP_UNWATCH_FRAMES or more */
	bool flooded;	/* and the turn before did */
	struct vlog_limit log_limit;
};

/* Defined here only: the daemon and the tests go through loop.h (and loop_test.h). */
struct loop {
	struct loop_turns turns; /* measured for loop_test_turns only */
	struct loop_dev devs[LOOP_MAX_DEVICES];
	unsigned int ndevs;
	int epfd;
};

/*
 * epoll tags: what became ready. Device i's sources are LOOP_TAG(i, kind);
 * the control fd has a tag of its own.
 */
enum {
	LOOP_KIND_BACKEND = 0,
	LOOP_KIND_PORT0 = 1, /* LOOP_KIND_PORT0 + i for port->fds[i] */
	LOOP_KIND_CAP = 15,  /* the capture's fd has room again */
};
#define LOOP_TAG(dev, kind) (((uint32_t)(dev) << 4) | (uint32_t)(kind))
#define LOOP_TAG_DEV(tag) ((tag) >> 4)
#define LOOP_TAG_KIND(tag) ((tag)&0xfu)
#define LOOP_TAG_CTL UINT32_MAX

/* Events read per recv call, and batches per wakeup so one busy bus
 * cannot starve the frontend connection or the signals. */
#define LOOP_RX_BATCH 64
#define LOOP_RX_BATCHES_PER_WAKEUP 8

static int loop_watch(int epfd, int fd, uint32_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

/*
 * A turn that sends at least this many frames in one call (a guest
 * flooding its TX queue) takes the port's fds out of the epoll set until
 * the turn ends. Each frame the kernel frees wakes every wait-queue entry
 * of its socket for write space (two per frame on vcan: the frame and its
 * local echo), and our entry would take the epoll lock each time for an
 * EPOLLOUT it never asked for. Out of the set, the sends skip that; at the
 * end of the turn the fds go back, and epoll reports at once what arrived
 * meanwhile. Two epoll_ctl calls a flooded turn, none in a quiet one. The
 * turn after a flooded one unwatches at its first send, however small: a
 * flood goes on in turns of any size.
 */
#define LOOP_UNWATCH_FRAMES 16

static void loop_unwatch(struct loop_dev *d)
{
	for (unsigned int i = 0; i < d->nfds; i++)
		(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->fds[i], NULL);
	d->unwatched = true;
}

/* The port's fds into the set (those already in it stay): 0 or -errno. */
static int loop_watch_port(struct loop_dev *d)
{
	for (unsigned int i = 0; i < d->nfds; i++) {
		int ret = loop_watch(d->epfd, d->fds[i], LOOP_TAG(d->idx, LOOP_KIND_PORT0 + i));

		if (ret < 0 && ret != -EEXIST)
			return ret;
	}
	return 0;
}

/* Back in the set: 0, or -errno with the device still out (tried again next turn). */
static int loop_rewatch(struct loop_dev *d)
{
	int ret = loop_watch_port(d);

	if (ret < 0) {
		vlog_limited(&d->log_limit, VLOG_WARN, NULL,
			     "device %u: cannot watch its CAN port again: %s", d->idx,
			     strerror(-ret));
		return ret;
	}
	d->unwatched = false;
	return 0;
}

/* The device is about to send n frames: a flood's turn sends with the port unwatched. */
static void loop_before_send(void *opaque, unsigned int n)
{
	struct loop_dev *d = opaque;

	if (n >= LOOP_UNWATCH_FRAMES)
		d->flood = true;
	/* A flood's turn also takes out the socket for its first, smaller call. */
	if ((d->flood || d->flooded) && !d->unwatched)
		loop_unwatch(d);
}

int loop_new(struct loop **out)
{
	struct loop *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m->epfd < 0) {
		int ret = -errno;

		free(m);
		return ret;
	}
	*out = m;
	return 0;
}

static void loop_dev_free(struct loop_dev *d)
{
	if (d->backend)
		vu_backend_free(d->backend);
	if (d->dev)
		device_free(d->dev);
	memset(d, 0, sizeof(*d));
}

static void loop_close_sock(const struct loop_sock *sock)
{
	if (sock->listen_fd >= 0)
		close(sock->listen_fd);
	if (sock->conn_fd >= 0)
		close(sock->conn_fd);
}

int loop_add(struct loop *m, const struct device_config *cfg, const struct loop_port *port,
	    const struct loop_sock *sock)
{
	struct loop_sock s = *sock;
	struct loop_dev *d;
	unsigned int idx = m->ndevs;
	int ret;

	if (idx >= LOOP_MAX_DEVICES) {
		ret = -ENOSPC;
		goto fail_sock;
	}
	d = &m->devs[idx];
	memset(d, 0, sizeof(*d));
	d->port = port;
	d->epfd = m->epfd;
	d->idx = idx;
	d->nfds = port->nfds < LOOP_PORT_MAX_FDS ? port->nfds : LOOP_PORT_MAX_FDS;
	memcpy(d->fds, port->fds, sizeof(d->fds[0]) * d->nfds);
	ret = device_new(&d->dev, cfg, port->ops, port->port);
	if (ret < 0)
		goto fail_sock;
	device_set_before_send(d->dev, loop_before_send, d);
	ret = vu_backend_new(&d->backend, device_vu_device(d->dev));
	if (ret < 0)
		goto fail;
	device_set_backend(d->dev, d->backend);

	/* Each branch takes its fd, also on failure. */
	if (s.path) {
		ret = vu_backend_listen(d->backend, s.path);
	} else if (s.listen_fd >= 0) {
		ret = vu_backend_listen_fd(d->backend, s.listen_fd);
		s.listen_fd = -1;
	} else {
		ret = vu_backend_attach(d->backend, s.conn_fd);
		s.conn_fd = -1;
		d->once = true;
	}
	if (ret < 0)
		goto fail;

	ret = loop_watch(m->epfd, vu_backend_fd(d->backend), LOOP_TAG(idx, LOOP_KIND_BACKEND));
	if (ret == 0)
		ret = loop_watch_port(d);
	if (ret < 0) {
		/* Out of the set again: the fds stay open elsewhere (the port's). */
		epoll_ctl(m->epfd, EPOLL_CTL_DEL, vu_backend_fd(d->backend), NULL);
		for (unsigned int i = 0; i < d->nfds; i++)
			epoll_ctl(m->epfd, EPOLL_CTL_DEL, d->fds[i], NULL);
		goto fail;
	}
	m->ndevs++;
	return 0;

fail:
	loop_dev_free(d);
fail_sock:
	loop_close_sock(&s);
	return ret;
}

int loop_init(struct loop **out, const struct device_config *cfg, const struct loop_port *port,
	      const char *socket_path, int conn_fd)
{
	struct loop_sock sock = {.path = socket_path, .listen_fd = -1, .conn_fd = -1};
	int ret;

	if (!socket_path)
		sock.conn_fd = conn_fd;
	ret = loop_new(out);
	if (ret < 0) {
		loop_close_sock(&sock);
		return ret;
	}
	ret = loop_add(*out, cfg, port, &sock);
	if (ret < 0) {
		loop_free(*out);
		*out = NULL;
	}
	return ret;
}

unsigned int loop_ndevs(const struct loop *m)
{
	return m->ndevs;
}

struct device *loop_device(struct loop *m, unsigned int idx)
{
	return idx < m->ndevs ? m->devs[idx].dev : NULL;
}

struct vu_backend *loop_backend(struct loop *m, unsigned int idx)
{
	return idx < m->ndevs ? m->devs[idx].backend : NULL;
}

struct loop_turns *loop_test_turns(struct loop *m)
{
	return &m->turns;
}

int loop_test_epfd(const struct loop *m)
{
	return m->epfd;
}

/* Hand a run of events to the device, frames in one batch. */
static void loop_deliver(struct loop_dev *m, const struct can_port_event *ev, unsigned int n)
{
	struct cframe frames[LOOP_RX_BATCH];
	unsigned int nframes = 0;

	for (unsigned int i = 0; i < n; i++) {
		if (ev[i].type == CAN_PORT_EV_FRAME) {
			frames[nframes++] = ev[i].frame;
			continue;
		}
		/* Keep the bus order: frames before an event go first. */
		if (nframes) {
			device_rx_frames(m->dev, frames, nframes);
			nframes = 0;
		}
		switch (ev[i].type) {
		case CAN_PORT_EV_TX_DONE:
			device_tx_confirmed(m->dev, &ev[i].frame);
			break;
		case CAN_PORT_EV_BUSOFF:
			device_bus_off(m->dev);
			break;
		case CAN_PORT_EV_RESTARTED:
			device_bus_restarted(m->dev);
			break;
		case CAN_PORT_EV_GONE:
			/*
			 * No bus behind the controller: the one state the spec lets
			 * the device report by itself; the guest STARTs again. With
			 * no frontend there is nobody to tell: the next one starts
			 * from a reset device.
			 */
			if (vu_backend_connected(m->backend))
				device_bus_off(m->dev);
			m->refresh = true;
			break;
		case CAN_PORT_EV_BACK:
			device_bus_restarted(m->dev);
			m->refresh = true;
			break;
		case CAN_PORT_EV_FRAME:
			break;
		}
	}
	if (nframes)
		device_rx_frames(m->dev, frames, nframes);
}

static void loop_port_read(struct loop_dev *m, int fd)
{
	struct can_port_event ev[LOOP_RX_BATCH];

	for (int round = 0; round < LOOP_RX_BATCHES_PER_WAKEUP; round++) {
		int n = m->port->recv(m->port->port, fd, ev, LOOP_RX_BATCH);

		/* n < 0: the port logged it; a CAN error is never fatal. */
		if (n <= 0)
			return;
		loop_deliver(m, ev, (unsigned int)n);
		/* fd may be closed now. */
		if (n < LOOP_RX_BATCH || m->refresh)
			return;
	}
}

/*
 * The port closed or opened sockets: the set gets its fds now. Closed fds
 * left the set by themselves; a number reused by a new socket is added.
 */
static void loop_refresh_fds(struct loop_dev *d)
{
	int fds[LOOP_PORT_MAX_FDS];
	unsigned int n;

	d->refresh = false;
	if (!d->port->get_fds)
		return;
	n = d->port->get_fds(d->port->port, fds);
	if (n > LOOP_PORT_MAX_FDS)
		n = LOOP_PORT_MAX_FDS;
	if (!d->unwatched)
		loop_unwatch(d);
	memcpy(d->fds, fds, sizeof(fds[0]) * n);
	d->nfds = n;
	/* On failure it stays out and is tried again at the end of the turn. */
	(void)loop_rewatch(d);
}

/* Every batch of this wake-up reaches the guest with one interrupt. */
static int loop_port_ready(struct loop_dev *m, int fd)
{
	device_rx_hold(m->dev);
	loop_port_read(m, fd);
	device_rx_release(m->dev);
	if (m->refresh)
		loop_refresh_fds(m);
	return 0;
}

static uint64_t loop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void loop_turn_done(struct loop_turns *t, uint64_t start_ns)
{
	uint64_t ns = loop_now_ns() - start_ns;
	unsigned int k = 0;

	while (k + 1 < LOOP_TURN_BUCKETS && (ns >> (k + 1)) != 0)
		k++;
	t->n++;
	t->sum_ns += ns;
	if (ns > t->max_ns)
		t->max_ns = ns;
	t->log2_ns[k]++;
}

static void loop_observe(void *opaque, enum device_outcome o, const struct cframe *f)
{
	struct capture *cap = opaque;
	struct timespec ts;
	bool tx = device_outcome_is_tx(o);

	clock_gettime(CLOCK_REALTIME, &ts);
	/* Every frame from the bus was on it; of the guest's, the sent ones. */
	capture_record(cap, tx ? CAPTURE_TX : CAPTURE_RX, !tx || o == DEVICE_TX_SENT, device_outcome_name(o), f,
		   (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

/* Stop watching the capture's fd (still open: the same one as when watched). */
static void loop_cap_unwatch(struct loop_dev *d)
{
	if (d->capture_watched && d->capture_gen == capture_generation(d->cap))
		(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, capture_fd(d->cap), NULL);
	d->capture_watched = false;
	d->capture_retry = false;
}

/*
 * After a flush: watch the capture's fd for room while bytes wait for it,
 * and not otherwise. A closed fd (the capture stopped or was reopened:
 * a new generation) left the epoll set by itself, and its number may be
 * another's by now: it is forgotten, never removed by number.
 */
static void loop_cap_watch(struct loop_dev *d)
{
	bool want = capture_waiting(d->cap);
	unsigned int gen = capture_generation(d->cap);
	struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = LOOP_TAG(d->idx, LOOP_KIND_CAP)};

	if (d->capture_watched && d->capture_gen != gen)
		d->capture_watched = false;
	if (!want) {
		loop_cap_unwatch(d);
		return;
	}
	if (d->capture_watched)
		return;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, capture_fd(d->cap), &ev) == 0) {
		d->capture_watched = true;
		d->capture_gen = gen;
		d->capture_retry = false;
		return;
	}
	/* EPERM: a regular file, which epoll cannot watch; try again on a timer. */
	if (errno != EPERM)
		vlog_limited(&d->log_limit, VLOG_WARN, NULL,
			     "device %u: cannot watch its capture file: %s", d->idx,
			     strerror(errno));
	d->capture_retry = true;
}

void loop_set_capture(struct loop *m, unsigned int idx, struct capture *cap)
{
	if (idx >= m->ndevs)
		return;
	if (m->devs[idx].cap)
		loop_cap_unwatch(&m->devs[idx]);
	m->devs[idx].cap = cap;
	device_set_observer(m->devs[idx].dev, cap ? loop_observe : NULL, cap);
}

/* A port that could not go back into the set is read again this often. */
#define LOOP_REWATCH_MS 10
/* A capture waiting on an fd epoll cannot watch is tried again this often. */
#define LOOP_CAP_RETRY_MS 20

/* Milliseconds until the first device's timer, -1 when none has one. */
static int loop_timeout_ms(struct loop *m)
{
	int t = -1;

	for (unsigned int i = 0; i < m->ndevs; i++) {
		int d = device_timeout_ms(m->devs[i].dev);

		if (m->devs[i].unwatched && (d < 0 || d > LOOP_REWATCH_MS))
			d = LOOP_REWATCH_MS;
		if (m->devs[i].capture_retry && (d < 0 || d > LOOP_CAP_RETRY_MS))
			d = LOOP_CAP_RETRY_MS;
		if (d >= 0 && (t < 0 || d < t))
			t = d;
	}
	return t;
}

/* Every device served its one frontend and that one left. */
static bool loop_all_done(const struct loop *m)
{
	for (unsigned int i = 0; i < m->ndevs; i++)
		if (!m->devs[i].once || vu_backend_connected(m->devs[i].backend))
			return false;
	return m->ndevs > 0;
}

int loop_run(struct loop *m, int ctl_fd, int (*on_ctl)(struct loop *m, void *arg), void *arg)
{
	/* Room for every source of every device: each gets its turn each wait. */
	struct epoll_event evs[LOOP_MAX_DEVICES * (2 + LOOP_PORT_MAX_FDS) + 1];
	int ret;

	ret = loop_watch(m->epfd, ctl_fd, LOOP_TAG_CTL);
	if (ret < 0)
		return ret;

	for (;;) {
		int n = epoll_wait(m->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])),
				   loop_timeout_ms(m));
		uint64_t start_ns = m->turns.on ? loop_now_ns() : 0;
		bool stop = false;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			uint32_t tag = evs[i].data.u32;
			struct loop_dev *d;

			if (tag == LOOP_TAG_CTL) {
				stop = stop || on_ctl(m, arg) != 0;
				continue;
			}
			if (LOOP_TAG_DEV(tag) >= m->ndevs)
				continue;
			d = &m->devs[LOOP_TAG_DEV(tag)];
			if (LOOP_TAG_KIND(tag) == LOOP_KIND_BACKEND) {
				ret = vu_backend_dispatch(d->backend);
				if (ret < 0) {
					vlog_err(NULL, "backend: %s", strerror(-ret));
					goto out;
				}
			} else if (LOOP_TAG_KIND(tag) == LOOP_KIND_CAP) {
				/* Room in the capture's target: the flush below uses it. */
			} else if (LOOP_TAG_KIND(tag) - LOOP_KIND_PORT0 < d->nfds) {
				loop_port_ready(d, d->fds[LOOP_TAG_KIND(tag) - LOOP_KIND_PORT0]);
			}
		}
		for (unsigned int i = 0; i < m->ndevs; i++) {
			device_tick(m->devs[i].dev);
			/* Bus frames and ticks write guest memory outside the dispatch. */
			vu_backend_check_memory(m->devs[i].backend);
			/* The capture's one write, after the turn's frames; never blocks. */
			if (m->devs[i].cap) {
				(void)capture_flush(m->devs[i].cap);
				loop_cap_watch(&m->devs[i]);
			}
			m->devs[i].flooded = m->devs[i].flood;
			m->devs[i].flood = false;
			if (m->devs[i].unwatched)
				(void)loop_rewatch(&m->devs[i]);
		}
		/* start_ns is 0 for a turn that began before measuring was on */
		if (m->turns.on && start_ns != 0)
			loop_turn_done(&m->turns, start_ns);
		if (stop || loop_all_done(m)) {
			ret = 0;
			break;
		}
	}
out:
	epoll_ctl(m->epfd, EPOLL_CTL_DEL, ctl_fd, NULL);
	return ret;
}

/* "tx: ok 1, rejected 0, ...": one line per direction, from device.h's table. */
static void loop_print_outcomes(FILE *f, const char *p, const char *sep,
				const struct device_stats *s)
{
	for (unsigned int o = 0; o < DEVICE_OUTCOME_COUNT; o++) {
		bool tx = device_outcome_is_tx(o);
		bool last = o + 1 == DEVICE_OUTCOME_COUNT || device_outcome_is_tx(o + 1) != tx;

		if (o == 0 || device_outcome_is_tx(o - 1) != tx)
			fprintf(f, "%s%s%s: ", p, sep, tx ? "tx" : "rx");
		fprintf(f, "%s %llu%s", device_outcome_label(o), (unsigned long long)s->outcome[o],
			last ? "\n" : ", ");
	}
}

void loop_print_stats(struct loop *m, FILE *f)
{
	for (unsigned int i = 0; i < m->ndevs; i++) {
		const char *p = m->ndevs > 1 ? device_name(m->devs[i].dev) : "";
		const char *sep = m->ndevs > 1 ? ": " : "";
		struct device_stats s;

		device_get_stats(m->devs[i].dev, &s);
		loop_print_outcomes(f, p, sep, &s);
		fprintf(f,
			"%s%sbus-off events: %llu\n"
			"%s%swork: most descriptors read in one wake-up: tx %llu, rx %llu, "
			"control %llu\n",
			p, sep, (unsigned long long)s.busoff_events, p, sep,
			(unsigned long long)s.walk_max[DEVICE_QUEUE_TX],
			(unsigned long long)s.walk_max[DEVICE_QUEUE_RX],
			(unsigned long long)s.walk_max[DEVICE_QUEUE_CTRL]);
	}
	fflush(f);
}

void loop_free(struct loop *m)
{
	if (!m)
		return;
	for (unsigned int i = 0; i < m->ndevs; i++)
		loop_dev_free(&m->devs[i]);
	if (m->epfd >= 0)
		close(m->epfd);
	free(m);
}
