/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "dmn.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "vlog.h"

/* epoll tags: what became ready. */
enum {
	DMN_TAG_BACKEND = 1,
	DMN_TAG_CTL = 2,
	DMN_TAG_PORT0 = 3, /* DMN_TAG_PORT0 + i for port->fds[i] */
};

/* Events read per recv call, and batches per wakeup so one busy bus
 * cannot starve the frontend connection or the signals. */
#define DMN_RX_BATCH 64
#define DMN_RX_BATCHES_PER_WAKEUP 8

static int dmn_watch(int epfd, int fd, uint32_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

int dmn_init(struct dmn *m, const struct vcd_config *cfg, const struct dmn_port *port,
	     const char *socket_path, int conn_fd)
{
	int ret;

	memset(m, 0, sizeof(*m));
	m->epfd = -1;
	m->port = port;

	ret = vcd_new(&m->dev, cfg, port->ops, port->port);
	if (ret < 0)
		goto fail_conn;
	ret = vu_backend_new(&m->backend, vcd_vu_device(m->dev));
	if (ret < 0)
		goto fail;
	vcd_set_backend(m->dev, m->backend);

	if (socket_path) {
		ret = vu_backend_listen(m->backend, socket_path);
	} else {
		ret = vu_backend_attach(m->backend, conn_fd);
		conn_fd = -1; /* taken, also on failure */
	}
	if (ret < 0)
		goto fail;

	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m->epfd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = dmn_watch(m->epfd, vu_backend_fd(m->backend), DMN_TAG_BACKEND);
	for (unsigned int i = 0; ret == 0 && i < port->nfds; i++)
		ret = dmn_watch(m->epfd, port->fds[i], DMN_TAG_PORT0 + i);
	if (ret < 0)
		goto fail;
	return 0;

fail:
	dmn_fini(m);
fail_conn:
	if (conn_fd >= 0)
		close(conn_fd);
	return ret;
}

/* Hand a run of events to the device, frames in one batch. */
static void dmn_deliver(struct dmn *m, const struct can_port_event *ev, unsigned int n)
{
	struct cframe frames[DMN_RX_BATCH];
	unsigned int nframes = 0;

	for (unsigned int i = 0; i < n; i++) {
		if (ev[i].type == CAN_PORT_EV_FRAME) {
			frames[nframes++] = ev[i].frame;
			continue;
		}
		/* Keep the bus order: frames before an event go first. */
		if (nframes) {
			vcd_rx_frames(m->dev, frames, nframes);
			nframes = 0;
		}
		switch (ev[i].type) {
		case CAN_PORT_EV_TX_DONE:
			vcd_tx_confirmed(m->dev, &ev[i].frame);
			break;
		case CAN_PORT_EV_BUSOFF:
			vcd_bus_off(m->dev);
			break;
		case CAN_PORT_EV_RESTARTED:
			vcd_bus_restarted(m->dev);
			break;
		case CAN_PORT_EV_FRAME:
			break;
		}
	}
	if (nframes)
		vcd_rx_frames(m->dev, frames, nframes);
}

static int dmn_port_ready(struct dmn *m, int fd)
{
	struct can_port_event ev[DMN_RX_BATCH];

	for (int round = 0; round < DMN_RX_BATCHES_PER_WAKEUP; round++) {
		int n = m->port->recv(m->port->port, fd, ev, DMN_RX_BATCH);

		if (n == -EAGAIN || n == -EINTR || n == 0)
			return 0;
		if (n < 0) {
			/* The port logged it; a CAN error is never fatal. */
			return 0;
		}
		dmn_deliver(m, ev, (unsigned int)n);
		if (n < DMN_RX_BATCH)
			return 0;
	}
	return 0;
}

static uint64_t dmn_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void dmn_turn_done(struct dmn_turns *t, uint64_t start_ns)
{
	uint64_t ns = dmn_now_ns() - start_ns;
	unsigned int k = 0;

	while (k + 1 < DMN_TURN_BUCKETS && (ns >> (k + 1)) != 0)
		k++;
	t->n++;
	t->sum_ns += ns;
	if (ns > t->max_ns)
		t->max_ns = ns;
	t->log2_ns[k]++;
}

int dmn_run(struct dmn *m, int ctl_fd, int (*on_ctl)(struct dmn *m, void *arg), void *arg)
{
	struct epoll_event evs[8];
	int ret;

	ret = dmn_watch(m->epfd, ctl_fd, DMN_TAG_CTL);
	if (ret < 0)
		return ret;

	for (;;) {
		int n = epoll_wait(m->epfd, evs, 8, vcd_timeout_ms(m->dev));
		uint64_t start_ns = m->turns.on ? dmn_now_ns() : 0;
		bool stop = false;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			uint32_t tag = evs[i].data.u32;

			if (tag == DMN_TAG_BACKEND) {
				ret = vu_backend_dispatch(m->backend);
				if (ret < 0) {
					vlog_err(NULL, "backend: %s", strerror(-ret));
					goto out;
				}
			} else if (tag == DMN_TAG_CTL) {
				stop = stop || on_ctl(m, arg) != 0;
			} else {
				dmn_port_ready(m, m->port->fds[tag - DMN_TAG_PORT0]);
			}
		}
		vcd_tick(m->dev);
		/* Bus frames and ticks write guest memory outside the dispatch. */
		vu_backend_check_memory(m->backend);
		/* start_ns is 0 for a turn that began before measuring was on */
		if (m->turns.on && start_ns != 0)
			dmn_turn_done(&m->turns, start_ns);
		if (stop) {
			ret = 0;
			break;
		}
	}
out:
	epoll_ctl(m->epfd, EPOLL_CTL_DEL, ctl_fd, NULL);
	return ret;
}

void dmn_print_stats(struct dmn *m, FILE *f)
{
	struct vcd_stats s;

	vcd_get_stats(m->dev, &s);
	fprintf(f,
		"tx: ok %llu, rejected %llu, failed %llu, ack timeout %llu, stopped %llu\n"
		"rx: delivered %llu, dropped: stopped %llu, type %llu, backlog full %llu, "
		"buffer too small %llu\n"
		"bus-off events: %llu\n",
		(unsigned long long)s.tx_ok, (unsigned long long)s.tx_rejected,
		(unsigned long long)s.tx_failed, (unsigned long long)s.tx_timeout,
		(unsigned long long)s.tx_stopped, (unsigned long long)s.rx_delivered,
		(unsigned long long)s.rx_dropped_stopped, (unsigned long long)s.rx_dropped_type,
		(unsigned long long)s.rx_dropped_overflow, (unsigned long long)s.rx_dropped_small,
		(unsigned long long)s.busoff_events);
	fflush(f);
}

void dmn_fini(struct dmn *m)
{
	if (m->backend) {
		vu_backend_free(m->backend);
		m->backend = NULL;
	}
	if (m->dev) {
		vcd_free(m->dev);
		m->dev = NULL;
	}
	if (m->epfd >= 0) {
		close(m->epfd);
		m->epfd = -1;
	}
}
