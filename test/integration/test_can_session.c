/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon's device as a guest sees it: the daemon's own event loop
 * (loop_init/loop_run in a thread) with a fake CAN port, driven over a real
 * unix socket by the frontend client's virtio-can driver (gdrv), as the
 * Linux driver would drive it, in QEMU's and cloud-hypervisor's message
 * orders. What enters from the "bus" (frames, TX echoes, bus-off) goes
 * through the fake port's pipe and the loop, as the real port's would.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bthread.h"
#include "fakeport.h"
#include "guest_driver.h"
#include "tfd.h"
#include "vhost-user/vlog.h"

#define T_MS 5000
/* LATE_TX_ACK timeout that no test waits for: an echo is never "late". */
#define T_ACK_NEVER_MS 600000

#define F_CLASSIC (1ull << VIRTIO_CAN_F_CAN_CLASSIC)
#define F_FD (1ull << VIRTIO_CAN_F_CAN_FD)
#define F_RTR (1ull << VIRTIO_CAN_F_RTR_FRAMES)
#define F_LATE (1ull << VIRTIO_CAN_F_LATE_TX_ACK)
#define F_ALL (F_CLASSIC | F_FD | F_RTR | F_LATE)

#define KIND (CFRAME_EXT | CFRAME_FD | CFRAME_RTR)

/* fe_start's default ring size: gdrv fills the Rxq with this many buffers. */
#define QSIZE 256

struct fx {
	struct fakeport *p;
	struct fakeport_loop *d;
	int fds_before; /* before the port and the daemon existed */
};

static int fx_setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	x->fds_before = tfd_count();
	assert_true(x->fds_before > 0);
	assert_int_equal(fakeport_new(&x->p), 0);
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *x = *state;
	int ret = 0;

	if (x->d)
		assert_false(fakeport_loop_exited(x->d, &ret));
	assert_int_equal(fakeport_loop_stop(x->d), 0);
	fakeport_free(x->p);
	/* Every fd of the daemon, its sessions and the port is closed again. */
	assert_int_equal(tfd_count(), x->fds_before);
	free(x);
	return 0;
}

/* Start the daemon: rx_backlog 0 and ack_ms 0 mean the defaults. */
static void fx_up(struct fx *x, bool fd, unsigned int rx_backlog, unsigned int ack_ms)
{
	struct device_config cfg = {
	    .name = "can-test",
	    .fd = fd,
	    .rx_backlog = rx_backlog,
	    .tx_ack_timeout_ms = ack_ms,
	};

	assert_int_equal(fakeport_loop_start(&x->d, &cfg, x->p), 0);
}

static struct gdrv *can_open(struct fx *x, enum fe_order order, uint64_t can_features,
			      unsigned int rx_buffers)
{
	struct gdrv_opts o;
	struct gdrv *c = NULL;

	gdrv_opts_default(&o);
	o.start.order = order;
	o.can_features = can_features;
	o.rx_buffers = rx_buffers;
	assert_int_equal(gdrv_open(&c, fakeport_loop_path(x->d), &o, T_MS), 0);
	assert_non_null(c);
	/* Never a device feature the guest did not ask for. */
	assert_int_equal(gdrv_features(c) & F_ALL & ~can_features, 0);
	return c;
}

static void sync_loop(struct fx *x)
{
	assert_int_equal(fakeport_loop_sync(x->d, T_MS), 0);
}

static void stats(struct fx *x, struct device_stats *s)
{
	assert_int_equal(fakeport_loop_stats(x->d, s), 0);
}

/* ---- Reading the backend and the Rxq in the loop thread ---- */

struct conn_state {
	bool connected;
	unsigned int sessions;
};

static void get_conn_state(struct loop *m, void *arg)
{
	struct conn_state *cs = arg;

	cs->connected = vu_backend_connected(loop_backend(m, 0));
	cs->sessions = vu_backend_sessions(loop_backend(m, 0));
}

/* Wait until the daemon served n sessions and has no frontend now. */
static void wait_idle(struct fx *x, unsigned int sessions)
{
	struct timespec pause = {.tv_nsec = 2000000};

	for (int waited = 0; waited < T_MS; waited += 2) {
		struct conn_state cs;

		assert_int_equal(fakeport_loop_exec(x->d, get_conn_state, &cs), 0);
		if (!cs.connected && cs.sessions >= sessions) {
			assert_int_equal(cs.sessions, sessions);
			return;
		}
		nanosleep(&pause, NULL);
	}
	fail_msg("the daemon did not see the frontend go");
}

struct ring_state {
	bool started;
	unsigned int held; /* popped and not pushed back */
	int avail;	   /* made available and not popped */
	uint16_t used_idx;
};

static void get_rxq_state(struct loop *m, void *arg)
{
	struct ring_state *rs = arg;
	struct vq *q = vu_backend_vq(loop_backend(m, 0), VIRTIO_CAN_QUEUE_RX);

	rs->started = q && q->started;
	if (!rs->started)
		return;
	rs->held = q->inflight;
	rs->avail = vq_avail_count(q);
	rs->used_idx = q->used_idx;
}

/*
 * Every RX buffer the guest posted is either used (waiting for the guest)
 * or still available: the device holds none.
 */
static void assert_no_rx_held(struct fx *x, struct gdrv *c)
{
	struct fe *f = gdrv_fe(c);
	struct ring_state rs = {0};
	uint16_t waiting;

	sync_loop(x);
	assert_int_equal(fakeport_loop_exec(x->d, get_rxq_state, &rs), 0);
	assert_true(rs.started);
	assert_int_equal(rs.held, 0);
	assert_true(rs.avail >= 0);
	waiting = (uint16_t)(rs.used_idx - fe_ring_last_used(f, VIRTIO_CAN_QUEUE_RX));
	assert_int_equal(fe_ring_inflight(f, VIRTIO_CAN_QUEUE_RX),
			 waiting + (unsigned int)rs.avail);
	assert_int_equal(gdrv_rx_posted(c), fe_ring_inflight(f, VIRTIO_CAN_QUEUE_RX));
}

/* ---- Frames ---- */

static struct cframe mkframe(uint32_t id, uint8_t flags, uint8_t len, uint8_t seed)
{
	struct cframe f;

	memset(&f, 0, sizeof(f));
	f.id = id;
	f.flags = flags;
	f.len = len;
	if (!(flags & CFRAME_RTR))
		for (unsigned int i = 0; i < len; i++)
			f.data[i] = (uint8_t)(seed + 31 * i);
	return f;
}

/* Same frame as the guest sees frames: id, kind, length, data (not for RTR). */
static void assert_same_frame(const struct cframe *got, const struct cframe *want)
{
	assert_int_equal(got->id, want->id);
	assert_int_equal(got->flags & KIND, want->flags & KIND);
	assert_int_equal(got->len, want->len);
	if (!(want->flags & CFRAME_RTR))
		assert_memory_equal(got->data, want->data, want->len);
}

/* Frame i the port sent is want; CAN FD frames go out with BRS, never ESI. */
static void assert_sent(struct fx *x, unsigned int i, const struct cframe *want)
{
	struct cframe got;

	assert_int_equal(fakeport_sent(x->p, i, &got), 0);
	assert_same_frame(&got, want);
	if (want->flags & CFRAME_FD)
		assert_int_equal(got.flags, (want->flags & KIND) | CFRAME_BRS);
	else
		assert_int_equal(got.flags, want->flags & KIND);
}

static void receive(struct gdrv *c, const struct cframe *want)
{
	struct cframe got;
	uint32_t used;

	assert_int_equal(gdrv_rx(c, &got, T_MS), 1);
	assert_same_frame(&got, want);
	gdrv_rx_last(c, NULL, &used);
	assert_int_equal(used, VIRTIO_CAN_HDR_SIZE + want->len);
}

/* Nothing (more) reaches the guest once the loop handled what was injected. */
static void assert_no_rx(struct fx *x, struct gdrv *c)
{
	struct cframe got;

	sync_loop(x);
	assert_int_equal(gdrv_rx(c, &got, 0), -ETIMEDOUT);
}

static void assert_no_tx_completion(struct fx *x, struct gdrv *c)
{
	int token;
	uint8_t result;

	sync_loop(x);
	assert_int_equal(gdrv_tx_wait(c, 0, &token, &result), -ETIMEDOUT);
}

static void tx_result(struct gdrv *c, int want_token, uint8_t want_result)
{
	int token = -1;
	uint8_t result = 0xff;

	assert_int_equal(gdrv_tx_wait(c, T_MS, &token, &result), 1);
	assert_int_equal(token, want_token);
	assert_int_equal(result, want_result);
}

/* n completions, in any order: each one of tok[], once, with want_result. */
static void tx_results(struct gdrv *c, const int *tok, unsigned int n, uint8_t want_result)
{
	bool seen[64] = {false};

	assert_true(n <= 64);
	for (unsigned int i = 0; i < n; i++) {
		int token = -1;
		uint8_t result = 0xff;
		unsigned int j;

		assert_int_equal(gdrv_tx_wait(c, T_MS, &token, &result), 1);
		assert_int_equal(result, want_result);
		for (j = 0; j < n && tok[j] != token; j++)
			;
		assert_true(j < n);
		assert_false(seen[j]);
		seen[j] = true;
	}
}

static uint64_t rx_accounted(const struct device_stats *s)
{
	return s->rx_delivered + s->rx_dropped_stopped + s->rx_dropped_type +
	       s->rx_dropped_overflow + s->rx_dropped_small;
}

/* ---- A whole session ---- */

static void traffic(struct fx *x, struct gdrv *c)
{
	const struct cframe tx[] = {
	    mkframe(0x123, 0, 8, 1),
	    mkframe(0x1abcdef0 & 0x1fffffff, CFRAME_EXT, 5, 2),
	    mkframe(0x7ff, CFRAME_RTR, 4, 0),
	    mkframe(0x1fffffff, CFRAME_EXT | CFRAME_RTR, 0, 0),
	    mkframe(0x456, CFRAME_FD, 64, 3),
	    mkframe(0x10000, CFRAME_EXT | CFRAME_FD, 12, 4),
	    mkframe(0x5, 0, 0, 0),
	};
	const struct cframe rx[] = {
	    mkframe(0x321, 0, 8, 5),
	    mkframe(0x1234567, CFRAME_EXT, 3, 6),
	    mkframe(0x6, CFRAME_RTR, 3, 0),
	    /* BRS and ESI have no virtio flag: the guest sees a plain FD frame. */
	    mkframe(0x7ff, CFRAME_FD | CFRAME_BRS | CFRAME_ESI, 64, 7),
	    mkframe(0x1fffffff, CFRAME_EXT | CFRAME_FD | CFRAME_BRS, 20, 8),
	    /* An extended frame with a small id stays extended. */
	    mkframe(0x5, CFRAME_EXT, 2, 10),
	    mkframe(0x0, CFRAME_FD, 0, 0),
	    mkframe(0x99, 0, 1, 9),
	};
	unsigned int sent0 = fakeport_sent_count(x->p);

	for (unsigned int i = 0; i < sizeof(tx) / sizeof(tx[0]); i++)
		assert_int_equal(gdrv_tx_sync(c, &tx[i], T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_sent_count(x->p), sent0 + sizeof(tx) / sizeof(tx[0]));
	for (unsigned int i = 0; i < sizeof(tx) / sizeof(tx[0]); i++)
		assert_sent(x, sent0 + i, &tx[i]);
	/* The guest's own frames never come back to it. */
	assert_no_rx(x, c);

	assert_int_equal(fakeport_inject_frames(x->p, rx, sizeof(rx) / sizeof(rx[0])), 0);
	for (unsigned int i = 0; i < sizeof(rx) / sizeof(rx[0]); i++)
		receive(c, &rx[i]);
	assert_no_rx(x, c);
	assert_int_equal(fakeport_sent_count(x->p), sent0 + sizeof(tx) / sizeof(tx[0]));
}

/*
 * QEMU stopping the device: ENABLE 0 and GET_VRING_BASE of every ring. The
 * device consumed every chain the guest made available and holds none:
 * each base is the guest's avail index and its used index.
 */
static void stop_rings_as_qemu(struct gdrv *c)
{
	struct fe *f = gdrv_fe(c);

	for (unsigned int q = 0; q < VIRTIO_CAN_NUM_QUEUES; q++) {
		uint16_t base;

		assert_int_equal(fe_ring_set_enable(f, q, false), 0);
		assert_int_equal(fe_ring_get_base(f, q, &base), 0);
		if (q == VIRTIO_CAN_QUEUE_RX) {
			assert_int_equal(base, fe_ring_last_used(f, q));
		} else {
			assert_int_equal(base, fe_ring_avail_idx(f, q));
			assert_int_equal(base, fe_ring_last_used(f, q));
		}
	}
}

static void session(void **state, enum fe_order order)
{
	struct fx *x = *state;
	struct device_stats s;
	struct gdrv *c;

	fx_up(x, true, 0, 0);
	c = can_open(x, order, F_CLASSIC | F_FD | F_RTR, 0);
	assert_true(gdrv_has(c, VIRTIO_CAN_F_CAN_FD));
	assert_true(gdrv_has(c, VIRTIO_CAN_F_RTR_FRAMES));
	assert_false(gdrv_has(c, VIRTIO_CAN_F_LATE_TX_ACK));
	assert_int_equal(gdrv_rx_posted(c), QSIZE);
	assert_false(fakeport_tx_confirm(x->p));

	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_starts(x->p), 1);
	assert_int_equal(gdrv_status(c), 0);
	traffic(x, c);
	assert_int_equal(gdrv_stop(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_stops(x->p), 1);
	if (order == FE_ORDER_QEMU)
		stop_rings_as_qemu(c);

	/*
	 * A VMM that restarts: the same guest memory, a new connection (QEMU
	 * gives the bases it got back, cloud-hypervisor the used indexes).
	 */
	assert_int_equal(gdrv_reconnect(c, fakeport_loop_path(x->d), T_MS), 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_starts(x->p), 2);
	traffic(x, c);
	assert_no_rx_held(x, c);

	stats(x, &s);
	assert_int_equal(s.tx_ok, 14);
	assert_int_equal(s.tx_rejected + s.tx_failed + s.tx_timeout + s.tx_stopped, 0);
	assert_int_equal(s.rx_delivered, 16);
	assert_int_equal(rx_accounted(&s), 16);
	assert_int_equal(s.busoff_events, 0);
	gdrv_close(c);
	wait_idle(x, 2);
}

static void test_session_qemu(void **state)
{
	session(state, FE_ORDER_QEMU);
}

static void test_session_cloud_hv(void **state)
{
	session(state, FE_ORDER_CLOUD_HV);
}

/*
 * The VMM reconnects while the controller runs, keeping guest memory: the
 * requests pending at the disconnect come back NOT_OK, frames already
 * delivered stay with the guest, and the device starts again stopped.
 */
static void test_reconnect_while_started(void **state)
{
	struct fx *x = *state;
	struct cframe rx[5];
	const struct cframe a = mkframe(0x10, 0, 1, 1);
	const struct cframe b = mkframe(0x11, 0, 1, 2);
	struct cframe echo;
	struct gdrv *c;
	int ta, tb;

	fx_up(x, true, 0, T_ACK_NEVER_MS);
	c = can_open(x, FE_ORDER_QEMU, F_ALL, 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	ta = gdrv_tx(c, &a);
	tb = gdrv_tx(c, &b);
	assert_true(ta >= 0 && tb >= 0);
	for (unsigned int i = 0; i < 5; i++)
		rx[i] = mkframe(0x20 + i, 0, 8, (uint8_t)i);
	assert_int_equal(fakeport_inject_frames(x->p, rx, 5), 0);
	assert_int_equal(fakeport_wait_sent(x->p, 2, T_MS), 0);
	sync_loop(x);

	assert_int_equal(gdrv_reconnect(c, fakeport_loop_path(x->d), T_MS), 0);
	tx_results(c, (const int[]){ta, tb}, 2, VIRTIO_CAN_RESULT_NOT_OK);
	for (unsigned int i = 0; i < 5; i++)
		receive(c, &rx[i]);
	assert_no_rx(x, c);
	assert_no_rx_held(x, c);

	/* Reset with the old connection: stopped until START. */
	assert_int_equal(gdrv_tx_sync(c, &a, T_MS), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	ta = gdrv_tx(c, &a);
	assert_int_equal(fakeport_wait_sent(x->p, 3, T_MS), 0);
	assert_int_equal(fakeport_sent(x->p, 2, &echo), 0);
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_TX_DONE, &echo), 0);
	tx_result(c, ta, VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_inject_frames(x->p, &rx[0], 1), 0);
	receive(c, &rx[0]);
	gdrv_close(c);
	wait_idle(x, 2);
}

struct printed {
	char *buf;
	size_t len;
};

static void print_in_loop(struct loop *m, void *arg)
{
	struct printed *p = arg;
	FILE *f = open_memstream(&p->buf, &p->len);

	if (!f)
		return;
	loop_print_stats(m, f);
	fclose(f);
}

/*
 * What loop_print_stats() writes, printed in the loop thread: want, then
 * the line of the work done per wake-up (its figures depend on how the
 * loop's turns fell, not on the session).
 */
static void counters_printed(struct fx *x, const char *want)
{
	struct printed p = {0};
	unsigned long long tx, rx, ctrl;

	assert_int_equal(fakeport_loop_exec(x->d, print_in_loop, &p), 0);
	assert_non_null(p.buf);
	assert_true(p.len > strlen(want));
	assert_memory_equal(p.buf, want, strlen(want));
	assert_int_equal(sscanf(p.buf + strlen(want),
				"work: most descriptors read in one wake-up: tx %llu, rx %llu, "
				"control %llu\n",
				&tx, &rx, &ctrl),
			 3);
	assert_true(tx <= 1024 && rx <= 512 && ctrl <= 64);
	free(p.buf);
}

/* Without CAN_FD (not offered, or not accepted) and without RTR_FRAMES. */
static void test_types_not_negotiated(void **state)
{
	struct fx *x = *state;
	const struct cframe fd = mkframe(0x100, CFRAME_FD, 16, 1);
	const struct cframe rtr = mkframe(0x101, CFRAME_RTR, 2, 0);
	const struct cframe classic = mkframe(0x102, 0, 2, 2);
	struct device_stats s;
	struct gdrv *c;

	fx_up(x, false, 0, 0);
	c = can_open(x, FE_ORDER_QEMU, F_ALL & ~F_RTR & ~F_LATE, 0);
	assert_false(gdrv_has(c, VIRTIO_CAN_F_CAN_FD)); /* not offered */
	assert_false(gdrv_has(c, VIRTIO_CAN_F_RTR_FRAMES));
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);

	assert_int_equal(gdrv_tx_sync(c, &fd, T_MS), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(gdrv_tx_sync(c, &rtr, T_MS), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(gdrv_tx_sync(c, &classic, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_sent_count(x->p), 1);
	assert_sent(x, 0, &classic);

	/* From the bus: what the guest did not negotiate is dropped, counted. */
	assert_int_equal(fakeport_inject_frames(x->p, &fd, 1), 0);
	assert_int_equal(fakeport_inject_frames(x->p, &rtr, 1), 0);
	assert_int_equal(fakeport_inject_frames(x->p, &classic, 1), 0);
	receive(c, &classic);
	assert_no_rx(x, c);
	stats(x, &s);
	assert_int_equal(s.tx_rejected, 2);
	assert_int_equal(s.rx_dropped_type, 2);
	assert_int_equal(s.rx_delivered, 1);
	/* The same counters as the daemon prints them (at exit, on SIGUSR1). */
	counters_printed(x, "tx: ok 1, rejected 2, failed 0, ack timeout 0, stopped 0, denied 0\n"
			    "rx: delivered 1, dropped: stopped 0, type 2, backlog full 0, "
			    "buffer too small 0\n"
			    "bus-off events: 0\n");
	gdrv_close(c);
}

/* ---- Controller state ---- */

static void test_start_twice_stop_fails_pending(void **state)
{
	struct fx *x = *state;
	struct cframe f[3];
	struct device_stats s;
	struct gdrv *c;
	int tok[3];

	fx_up(x, true, 0, T_ACK_NEVER_MS);
	c = can_open(x, FE_ORDER_QEMU, F_ALL, 0);
	assert_true(gdrv_has(c, VIRTIO_CAN_F_LATE_TX_ACK));
	assert_true(fakeport_tx_confirm(x->p));
	/* STOP while stopped, START while started: both succeed. */
	assert_int_equal(gdrv_stop(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_status(c), 0);

	/* Three frames sent, waiting for their echoes. */
	for (int i = 0; i < 3; i++) {
		f[i] = mkframe(0x200 + (uint32_t)i, 0, 2, (uint8_t)i);
		tok[i] = gdrv_tx(c, &f[i]);
		assert_true(tok[i] >= 0);
	}
	assert_int_equal(fakeport_wait_sent(x->p, 3, T_MS), 0);
	assert_no_tx_completion(x, c);
	assert_int_equal(gdrv_tx_pending(c), 3);

	assert_int_equal(gdrv_stop(c, T_MS), VIRTIO_CAN_RESULT_OK);
	tx_results(c, tok, 3, VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(gdrv_tx_pending(c), 0);

	/* Stopped: refused without reaching the port; a late echo changes nothing. */
	assert_int_equal(gdrv_tx_sync(c, &f[0], T_MS), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(fakeport_sent_count(x->p), 3);
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_TX_DONE, &f[1]), 0);
	assert_no_tx_completion(x, c);

	stats(x, &s);
	assert_int_equal(s.tx_stopped, 3);
	assert_int_equal(s.tx_rejected, 1);
	assert_int_equal(s.tx_ok, 0);
	gdrv_close(c);
}

/* A port that cannot start: START is NOT_OK, and nothing is sent. */
static void test_start_fails_on_port(void **state)
{
	struct fx *x = *state;
	const struct cframe f = mkframe(0x1, 0, 1, 1);
	struct gdrv *c;

	fx_up(x, false, 0, 0);
	c = can_open(x, FE_ORDER_QEMU, F_ALL & ~F_LATE, 0);
	fakeport_fail_start(x->p, -ENETDOWN);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(gdrv_tx_sync(c, &f, T_MS), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(fakeport_sent_count(x->p), 0);
	fakeport_fail_start(x->p, 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_tx_sync(c, &f, T_MS), VIRTIO_CAN_RESULT_OK);
	gdrv_close(c);
}

/* ---- LATE_TX_ACK ---- */

static void test_late_tx_ack_echo(void **state)
{
	struct fx *x = *state;
	const struct cframe a = mkframe(0x300, 0, 8, 1);
	const struct cframe b = mkframe(0x1300, CFRAME_EXT | CFRAME_FD, 32, 2);
	const struct cframe other = mkframe(0x300, 0, 8, 9); /* same id, other data */
	struct cframe echo_a, echo_b, got;
	struct device_stats s;
	struct gdrv *c;
	int ta, tb;

	fx_up(x, true, 0, T_ACK_NEVER_MS);
	c = can_open(x, FE_ORDER_QEMU, F_ALL, 0);
	assert_true(fakeport_tx_confirm(x->p));
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);

	ta = gdrv_tx(c, &a);
	tb = gdrv_tx(c, &b);
	assert_true(ta >= 0 && tb >= 0);
	assert_int_equal(fakeport_wait_sent(x->p, 2, T_MS), 0);
	assert_sent(x, 0, &a);
	assert_sent(x, 1, &b);
	/* Handed to the port is not enough: no result before the echo. */
	assert_no_tx_completion(x, c);

	/* An echo of a frame nobody sent completes nothing. */
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_TX_DONE, &other), 0);
	assert_no_tx_completion(x, c);

	/* Echoes as the port reports them (with BRS), out of order. */
	assert_int_equal(fakeport_sent(x->p, 1, &echo_b), 0);
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_TX_DONE, &echo_b), 0);
	tx_result(c, tb, VIRTIO_CAN_RESULT_OK);
	assert_no_tx_completion(x, c);
	assert_int_equal(fakeport_sent(x->p, 0, &echo_a), 0);
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_TX_DONE, &echo_a), 0);
	tx_result(c, ta, VIRTIO_CAN_RESULT_OK);

	/* A second echo of the same frame has nothing left to complete. */
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_TX_DONE, &echo_a), 0);
	assert_no_tx_completion(x, c);
	stats(x, &s);
	assert_int_equal(s.tx_ok, 2);
	assert_int_equal(s.tx_timeout + s.tx_stopped + s.tx_failed, 0);
	/* Echoes are confirmations, not traffic: none reached the guest's Rxq. */
	assert_int_equal(gdrv_rx(c, &got, 50), -ETIMEDOUT);
	assert_int_equal(s.rx_delivered, 0);
	assert_int_equal(rx_accounted(&s), 0);
	gdrv_close(c);
}

/* The Linux driver keeps up to 128 TX requests in flight. */
static void test_late_tx_ack_many(void **state)
{
	struct fx *x = *state;
	enum { N = 128 };
	struct cframe f[N];
	int tok[N];
	struct device_stats s;
	struct gdrv *c;

	fx_up(x, true, 0, T_ACK_NEVER_MS);
	c = can_open(x, FE_ORDER_CLOUD_HV, F_ALL, 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	for (unsigned int i = 0; i < N; i++) {
		/* Pairs of identical frames: an echo completes the older of the two. */
		f[i] = mkframe(0x100 + i / 2, (i % 4 < 2) ? 0 : CFRAME_FD, 8, (uint8_t)(i / 2));
		tok[i] = gdrv_tx(c, &f[i]);
		assert_true(tok[i] >= 0);
	}
	assert_int_equal(fakeport_wait_sent(x->p, N, T_MS), 0);
	assert_no_tx_completion(x, c);

	/* Echoes of the odd frames first, newest first, then the even ones. */
	for (int i = N - 1; i >= 0; i -= 2) {
		struct cframe echo;

		assert_int_equal(fakeport_sent(x->p, (unsigned int)i, &echo), 0);
		assert_same_frame(&echo, &f[i]);
		assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_TX_DONE, &echo), 0);
	}
	{
		int even[N / 2];

		for (unsigned int i = 0; i < N / 2; i++)
			even[i] = tok[2 * i];
		/* Each echo matched the oldest of its pair: the even ones are done. */
		tx_results(c, even, N / 2, VIRTIO_CAN_RESULT_OK);
		assert_no_tx_completion(x, c);
	}
	for (int i = N - 2; i >= 0; i -= 2) {
		struct cframe echo;

		assert_int_equal(fakeport_sent(x->p, (unsigned int)i, &echo), 0);
		assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_TX_DONE, &echo), 0);
	}
	{
		int odd[N / 2];

		for (unsigned int i = 0; i < N / 2; i++)
			odd[i] = tok[2 * i + 1];
		tx_results(c, odd, N / 2, VIRTIO_CAN_RESULT_OK);
	}
	assert_int_equal(gdrv_tx_pending(c), 0);
	stats(x, &s);
	assert_int_equal(s.tx_ok, N);
	assert_int_equal(s.tx_timeout + s.tx_stopped + s.tx_failed + s.tx_rejected, 0);
	gdrv_close(c);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_late_tx_ack_timeout(void **state)
{
	struct fx *x = *state;
	const struct cframe a = mkframe(0x301, 0, 1, 1);
	struct cframe echo;
	struct device_stats s;
	struct gdrv *c;
	int64_t t0;
	int ta;

	fx_up(x, false, 0, 50);
	c = can_open(x, FE_ORDER_QEMU, F_ALL, 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);

	t0 = mono_ms();
	ta = gdrv_tx(c, &a);
	assert_true(ta >= 0);
	/* No echo: NOT_OK once the timeout passed, never before. */
	tx_result(c, ta, VIRTIO_CAN_RESULT_NOT_OK);
	assert_true(mono_ms() - t0 >= 49);
	assert_int_equal(fakeport_sent_count(x->p), 1);

	/* The echo that comes too late completes nothing. */
	assert_int_equal(fakeport_sent(x->p, 0, &echo), 0);
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_TX_DONE, &echo), 0);
	assert_no_tx_completion(x, c);

	/* Several waiting: each one times out, none is forgotten. */
	for (int i = 0; i < 3; i++)
		assert_true(gdrv_tx(c, &a) >= 0);
	for (int i = 0; i < 3; i++) {
		int token;
		uint8_t result;

		assert_int_equal(gdrv_tx_wait(c, T_MS, &token, &result), 1);
		assert_int_equal(result, VIRTIO_CAN_RESULT_NOT_OK);
	}
	assert_int_equal(gdrv_tx_pending(c), 0);
	assert_int_equal(fakeport_sent_count(x->p), 4);
	stats(x, &s);
	assert_int_equal(s.tx_timeout, 4);
	assert_int_equal(s.tx_ok + s.tx_stopped + s.tx_failed, 0);
	gdrv_close(c);
}

/* ---- TX failures from the port ---- */

static void test_tx_port_failure(void **state)
{
	struct fx *x = *state;
	struct cframe f[4];
	struct device_stats s;
	struct gdrv *c;
	int tok[4];

	fx_up(x, false, 0, 0);
	c = can_open(x, FE_ORDER_QEMU, F_ALL & ~F_LATE, 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	for (int i = 0; i < 4; i++)
		f[i] = mkframe(0x400 + (uint32_t)i, 0, 4, (uint8_t)i);

	/* One frame refused (ENOBUFS): NOT_OK for that one only. */
	fakeport_fail_next(x->p, 1, -ENOBUFS);
	assert_int_equal(gdrv_tx_sync(c, &f[0], T_MS), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(gdrv_tx_sync(c, &f[1], T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_sent_count(x->p), 1);
	assert_sent(x, 0, &f[1]);

	/* A whole send call failing: NOT_OK, then the port works again. */
	fakeport_fail_calls(x->p, -ENETDOWN);
	assert_int_equal(gdrv_tx_sync(c, &f[2], T_MS), VIRTIO_CAN_RESULT_NOT_OK);
	fakeport_fail_calls(x->p, 0);
	assert_int_equal(gdrv_tx_sync(c, &f[3], T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_sent_count(x->p), 2);
	assert_sent(x, 1, &f[3]);

	/* Several in flight, the first one refused: only that one is NOT_OK. */
	fakeport_fail_next(x->p, 1, -ENOBUFS);
	for (int i = 0; i < 4; i++) {
		tok[i] = gdrv_tx(c, &f[i]);
		assert_true(tok[i] >= 0);
	}
	for (int i = 0; i < 4; i++) {
		int token;
		uint8_t result;

		assert_int_equal(gdrv_tx_wait(c, T_MS, &token, &result), 1);
		assert_int_equal(result,
				 token == tok[0] ? VIRTIO_CAN_RESULT_NOT_OK : VIRTIO_CAN_RESULT_OK);
	}
	assert_int_equal(fakeport_sent_count(x->p), 5);
	for (unsigned int i = 1; i < 4; i++)
		assert_sent(x, 1 + i, &f[i]);

	/* Not a bus-off: the controller is still started, status clear. */
	assert_int_equal(gdrv_status(c), 0);
	stats(x, &s);
	assert_int_equal(s.tx_failed, 3);
	assert_int_equal(s.tx_ok, 5);
	assert_int_equal(s.busoff_events, 0);
	gdrv_close(c);
}

/* The refused frame is the one the port refused, with others in flight. */
static void test_tx_port_failure_in_batch(void **state)
{
	struct fx *x = *state;
	struct cframe f[8];
	struct gdrv *c;
	int tok[8];

	fx_up(x, false, 0, T_ACK_NEVER_MS);
	c = can_open(x, FE_ORDER_CLOUD_HV, F_ALL, 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	/*
	 * With LATE_TX_ACK the ones sent stay pending: the failed one is
	 * completed at once, NOT_OK, whichever batch it was in.
	 */
	fakeport_fail_next(x->p, 1, -ENOBUFS);
	for (int i = 0; i < 8; i++) {
		f[i] = mkframe(0x500 + (uint32_t)i, 0, 1, (uint8_t)i);
		tok[i] = gdrv_tx(c, &f[i]);
		assert_true(tok[i] >= 0);
	}
	assert_int_equal(fakeport_wait_sent(x->p, 7, T_MS), 0);
	{
		int token;
		uint8_t result;

		/* The first frame handed to the port is the one refused. */
		assert_int_equal(gdrv_tx_wait(c, T_MS, &token, &result), 1);
		assert_int_equal(token, tok[0]);
		assert_int_equal(result, VIRTIO_CAN_RESULT_NOT_OK);
	}
	assert_no_tx_completion(x, c);
	for (int i = 1; i < 8; i++) {
		struct cframe echo;

		assert_int_equal(fakeport_sent(x->p, (unsigned int)i - 1, &echo), 0);
		assert_same_frame(&echo, &f[i]);
		assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_TX_DONE, &echo), 0);
	}
	tx_results(c, tok + 1, 7, VIRTIO_CAN_RESULT_OK);
	gdrv_close(c);
}

/* ---- Bus-off ---- */

static void bus_off(void **state, enum fe_order order)
{
	struct fx *x = *state;
	const struct cframe a = mkframe(0x600, 0, 2, 1);
	const struct cframe b = mkframe(0x601, CFRAME_EXT, 3, 2);
	const struct cframe bus = mkframe(0x602, 0, 1, 3);
	struct cframe echo;
	struct device_stats s;
	struct gdrv *c;
	int ta, tb;

	fx_up(x, true, 0, T_ACK_NEVER_MS);
	c = can_open(x, order, F_ALL, 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	ta = gdrv_tx(c, &a);
	tb = gdrv_tx(c, &b);
	assert_true(ta >= 0 && tb >= 0);
	assert_int_equal(fakeport_wait_sent(x->p, 2, T_MS), 0);
	assert_no_tx_completion(x, c);

	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_BUSOFF, NULL), 0);
	assert_int_equal(gdrv_wait_config_change(c, T_MS), 0);
	assert_int_equal(gdrv_status(c), VIRTIO_CAN_S_CTRL_BUSOFF);
	tx_results(c, (const int[]){ta, tb}, 2, VIRTIO_CAN_RESULT_NOT_OK);

	/* Bus-off: TX refused without reaching the port, RX not delivered. */
	assert_int_equal(gdrv_tx_sync(c, &a, T_MS), VIRTIO_CAN_RESULT_NOT_OK);
	assert_int_equal(fakeport_sent_count(x->p), 2);
	assert_int_equal(fakeport_inject_frames(x->p, &bus, 1), 0);
	assert_no_rx(x, c);

	/* The controller recovering on its own does not clear the bit: START does. */
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_RESTARTED, NULL), 0);
	sync_loop(x);
	assert_int_equal(gdrv_status(c), VIRTIO_CAN_S_CTRL_BUSOFF);
	/* A second bus-off report while bus-off changes nothing. */
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_BUSOFF, NULL), 0);
	sync_loop(x);
	assert_int_equal(gdrv_wait_config_change(c, 0), -ETIMEDOUT);

	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_status(c), 0);
	ta = gdrv_tx(c, &a);
	assert_int_equal(fakeport_wait_sent(x->p, 3, T_MS), 0);
	assert_int_equal(fakeport_sent(x->p, 2, &echo), 0);
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_TX_DONE, &echo), 0);
	tx_result(c, ta, VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_inject_frames(x->p, &bus, 1), 0);
	receive(c, &bus);

	stats(x, &s);
	assert_int_equal(s.busoff_events, 1);
	assert_int_equal(s.tx_stopped, 2);
	assert_int_equal(s.tx_rejected, 1);
	assert_int_equal(s.tx_ok, 1);
	assert_int_equal(s.rx_dropped_stopped, 1);
	assert_int_equal(s.rx_delivered, 1);
	counters_printed(x, "tx: ok 1, rejected 1, failed 0, ack timeout 0, stopped 2, denied 0\n"
			    "rx: delivered 1, dropped: stopped 1, type 0, backlog full 0, "
			    "buffer too small 0\n"
			    "bus-off events: 1\n");
	gdrv_close(c);
}

/*
 * Bus order across event kinds: frames read in the same batch as a bus-off,
 * but before it, reach the guest; the one after it does not.
 */
static void test_bus_order_with_bus_off(void **state)
{
	struct fx *x = *state;
	const struct cframe f1 = mkframe(0x631, 0, 1, 1);
	const struct cframe f2 = mkframe(0x632, 0, 2, 2);
	const struct cframe f3 = mkframe(0x633, 0, 3, 3);
	const struct can_port_event ev[4] = {
	    {.type = CAN_PORT_EV_FRAME, .frame = f1},
	    {.type = CAN_PORT_EV_FRAME, .frame = f2},
	    {.type = CAN_PORT_EV_BUSOFF},
	    {.type = CAN_PORT_EV_FRAME, .frame = f3},
	};
	struct device_stats s;
	struct gdrv *c;

	fx_up(x, false, 0, 0);
	c = can_open(x, FE_ORDER_QEMU, F_CLASSIC, 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_inject(x->p, ev, 4), 0);
	receive(c, &f1);
	receive(c, &f2);
	assert_int_equal(gdrv_wait_config_change(c, T_MS), 0);
	assert_int_equal(gdrv_status(c), VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_no_rx(x, c);
	stats(x, &s);
	assert_int_equal(s.rx_delivered, 2);
	assert_int_equal(s.rx_dropped_stopped, 1);
	assert_int_equal(s.busoff_events, 1);
	gdrv_close(c);
}

static void test_bus_off_qemu(void **state)
{
	bus_off(state, FE_ORDER_QEMU);
}

static void test_bus_off_cloud_hv(void **state)
{
	bus_off(state, FE_ORDER_CLOUD_HV);
}

/* ---- Config space ---- */

/* QEMU's generic device with config_size=16 reads 16 bytes. */
static void test_get_config_16(void **state)
{
	struct fx *x = *state;
	uint8_t cfg[16], zeros[14] = {0};
	struct gdrv *c;

	fx_up(x, false, 0, 0);
	c = can_open(x, FE_ORDER_QEMU, F_ALL, 0);
	memset(cfg, 0xa5, sizeof(cfg));
	assert_int_equal(fe_get_config(gdrv_fe(c), 0, cfg, sizeof(cfg)), 0);
	assert_int_equal(cfg[0], 0);
	assert_int_equal(cfg[1], 0);
	assert_memory_equal(cfg + 2, zeros, sizeof(zeros));

	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_BUSOFF, NULL), 0);
	assert_int_equal(gdrv_wait_config_change(c, T_MS), 0);
	memset(cfg, 0xa5, sizeof(cfg));
	assert_int_equal(fe_get_config(gdrv_fe(c), 0, cfg, sizeof(cfg)), 0);
	/* le16 status first: the bus-off bit is bit 0 of byte 0. */
	assert_int_equal(cfg[0], VIRTIO_CAN_S_CTRL_BUSOFF);
	assert_int_equal(cfg[1], 0);
	assert_memory_equal(cfg + 2, zeros, sizeof(zeros));
	gdrv_close(c);
}

/* ---- RX ---- */

static void test_rx_while_stopped(void **state)
{
	struct fx *x = *state;
	struct cframe f[10];
	const struct cframe late = mkframe(0x200, 0, 2, 9);
	struct device_stats s;
	struct gdrv *c;

	/* 4 RX buffers, a backlog of 8. */
	fx_up(x, false, 8, 0);
	c = can_open(x, FE_ORDER_QEMU, F_ALL, 4);
	assert_int_equal(gdrv_rx_posted(c), 4);
	for (unsigned int i = 0; i < 10; i++)
		f[i] = mkframe(0x100 + i, 0, 1, (uint8_t)i);

	/* Before START: dropped, counted. */
	assert_int_equal(fakeport_inject_frames(x->p, f, 5), 0);
	assert_no_rx(x, c);
	stats(x, &s);
	assert_int_equal(s.rx_dropped_stopped, 5);
	assert_int_equal(s.rx_delivered, 0);

	/* Started: 4 into the guest's buffers, 6 kept in the backlog. */
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_inject_frames(x->p, f, 10), 0);
	sync_loop(x);
	stats(x, &s);
	assert_int_equal(s.rx_delivered, 4);

	/* STOP: the backlog is stale, dropped; frames while stopped too. */
	assert_int_equal(gdrv_stop(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_inject_frames(x->p, f, 3), 0);
	sync_loop(x);
	stats(x, &s);
	assert_int_equal(s.rx_dropped_stopped, 5 + 6 + 3);

	/* What was delivered before STOP is the guest's; nothing more comes. */
	for (unsigned int i = 0; i < 4; i++)
		receive(c, &f[i]);
	assert_no_rx(x, c);

	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_no_rx(x, c);
	assert_int_equal(fakeport_inject_frames(x->p, &late, 1), 0);
	receive(c, &late);
	assert_no_rx(x, c);
	assert_no_rx_held(x, c);
	stats(x, &s);
	assert_int_equal(s.rx_delivered, 5);
	assert_int_equal(rx_accounted(&s), fakeport_injected(x->p));
	gdrv_close(c);
}

static void test_rx_backlog(void **state)
{
	struct fx *x = *state;
	enum { NBUF = 16, BACKLOG = 32, EXTRA = 20, N = NBUF + BACKLOG + EXTRA };
	struct cframe f[N];
	struct device_stats s;
	struct gdrv *c;

	fx_up(x, true, BACKLOG, 0);
	c = can_open(x, FE_ORDER_CLOUD_HV, F_ALL, NBUF);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	for (unsigned int i = 0; i < N; i++)
		f[i] = mkframe(0x10000 + i, (i % 3) ? CFRAME_EXT : CFRAME_EXT | CFRAME_FD,
			       (i % 3) ? 8 : 48, (uint8_t)i);

	/* The guest does not take anything meanwhile. */
	assert_int_equal(fakeport_inject_frames(x->p, f, N), 0);
	sync_loop(x);
	stats(x, &s);
	assert_int_equal(s.rx_delivered, NBUF);
	assert_int_equal(s.rx_dropped_overflow, EXTRA);
	assert_no_rx_held(x, c);

	/* Taking (and reposting) drains the backlog: the oldest frames, in order. */
	for (unsigned int i = 0; i < NBUF + BACKLOG; i++)
		receive(c, &f[i]);
	assert_no_rx(x, c);
	assert_no_rx_held(x, c);
	stats(x, &s);
	assert_int_equal(s.rx_delivered, NBUF + BACKLOG);
	assert_int_equal(s.rx_dropped_overflow, EXTRA);
	/* Nothing lost silently. */
	assert_int_equal(rx_accounted(&s), N);
	assert_int_equal(fakeport_injected(x->p), N);
	gdrv_close(c);
}

struct flood {
	struct fakeport *p;
	unsigned int n;
	int ret;
};

static void *flood_thread(void *arg)
{
	struct flood *fl = arg;
	struct cframe f[64];

	for (unsigned int i = 0; i < fl->n && fl->ret == 0; i += 64) {
		unsigned int k = fl->n - i < 64 ? fl->n - i : 64;

		for (unsigned int j = 0; j < k; j++)
			f[j] = mkframe(i + j, CFRAME_EXT, 1, (uint8_t)(i + j));
		fl->ret = fakeport_inject_frames(fl->p, f, k);
	}
	return NULL;
}

/*
 * A flood while the guest takes frames as fast as it can: every frame is
 * delivered or counted as dropped, the guest sees them in bus order, and
 * the device holds no RX buffer afterwards: the guest keeps receiving.
 */
static void test_rx_flood(void **state)
{
	struct fx *x = *state;
	struct flood fl = {.p = x->p, .n = 20000};
	const struct cframe after = mkframe(0x7ff, 0, 8, 0x42);
	unsigned int received = 0;
	uint32_t next_min = 0;
	struct device_stats s;
	struct gdrv *c;
	pthread_t th;
	bool joined = false;
	int64_t give_up;

	fx_up(x, false, 64, 0);
	c = can_open(x, FE_ORDER_QEMU, F_ALL, 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(pthread_create(&th, NULL, flood_thread, &fl), 0);
	give_up = mono_ms() + 60000;
	for (;;) {
		struct cframe got;
		int r = gdrv_rx(c, &got, 20);

		if (r == 1) {
			/* Bus order, with gaps only where frames were dropped. */
			assert_true(got.id >= next_min);
			assert_int_equal(got.data[0], (uint8_t)got.id);
			next_min = got.id + 1;
			received++;
			continue;
		}
		assert_int_equal(r, -ETIMEDOUT);
		assert_true(mono_ms() < give_up);
		if (joined) {
			/* Done: every frame accounted for, every delivered one taken. */
			stats(x, &s);
			if (rx_accounted(&s) == fl.n && s.rx_delivered == received)
				break;
		} else if (fakeport_consumed(x->p) == fl.n) {
			pthread_join(th, NULL);
			joined = true;
			sync_loop(x);
		}
	}
	assert_int_equal(fl.ret, 0);
	stats(x, &s);
	assert_int_equal(s.rx_delivered, received);
	assert_int_equal(rx_accounted(&s), fl.n);
	assert_int_equal(s.rx_delivered + s.rx_dropped_overflow, fl.n);
	assert_no_rx_held(x, c);

	/* The same flood with the guest not taking anything. */
	fl.ret = 0;
	assert_int_equal(pthread_create(&th, NULL, flood_thread, &fl), 0);
	pthread_join(th, NULL);
	assert_int_equal(fl.ret, 0);
	assert_no_rx_held(x, c);
	stats(x, &s);
	assert_int_equal(s.rx_delivered, received + QSIZE);
	/* The backlog (64) is neither delivered nor dropped yet. */
	assert_int_equal(rx_accounted(&s) + 64, 2 * fl.n);
	assert_int_equal(s.rx_delivered + s.rx_dropped_overflow + 64, 2 * fl.n);

	/* Take it all (the oldest first); the guest still receives. */
	for (unsigned int i = 0; i < QSIZE + 64; i++) {
		struct cframe got;

		assert_int_equal(gdrv_rx(c, &got, T_MS), 1);
		assert_int_equal(got.id, i);
	}
	assert_no_rx(x, c);
	stats(x, &s);
	assert_int_equal(rx_accounted(&s), 2 * fl.n);
	assert_int_equal(fakeport_inject_frames(x->p, &after, 1), 0);
	receive(c, &after);
	assert_no_rx_held(x, c);
	gdrv_close(c);
}

/*
 * A guest that negotiated CAN FD but posts classic-sized buffers (24 bytes):
 * a 64-byte frame does not fit; that buffer comes back empty (the driver
 * drops it) and the frame is counted, the ring does not stall.
 */
static void test_rx_buffer_too_small(void **state)
{
	struct fx *x = *state;
	const struct cframe big = mkframe(0x1, CFRAME_FD, 64, 1);
	const struct cframe fits = mkframe(0x2, CFRAME_FD, 8, 2);
	struct gdrv_opts o;
	struct device_stats s;
	struct gdrv *c = NULL;
	struct cframe got;
	uint32_t used;

	fx_up(x, true, 0, 0);
	gdrv_opts_default(&o);
	o.rx_buf_size = VIRTIO_CAN_HDR_SIZE + 8;
	o.rx_buffers = 4;
	assert_int_equal(gdrv_open(&c, fakeport_loop_path(x->d), &o, T_MS), 0);
	assert_true(gdrv_has(c, VIRTIO_CAN_F_CAN_FD));
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);

	assert_int_equal(fakeport_inject_frames(x->p, &big, 1), 0);
	assert_int_equal(fakeport_inject_frames(x->p, &fits, 1), 0);
	assert_int_equal(gdrv_rx(c, &got, T_MS), -EPROTO);
	gdrv_rx_last(c, NULL, &used);
	assert_int_equal(used, 0);
	receive(c, &fits);
	/* More of them than buffers: each costs one buffer, which comes back. */
	for (unsigned int i = 0; i < 10; i++) {
		assert_int_equal(fakeport_inject_frames(x->p, &big, 1), 0);
		assert_int_equal(gdrv_rx(c, &got, T_MS), -EPROTO);
	}
	assert_int_equal(fakeport_inject_frames(x->p, &fits, 1), 0);
	receive(c, &fits);
	assert_no_rx_held(x, c);
	stats(x, &s);
	assert_int_equal(s.rx_dropped_small, 11);
	assert_int_equal(s.rx_delivered, 2);
	gdrv_close(c);
}

/* ---- Frontends that vanish ---- */

static void test_vanishing_frontends(void **state)
{
	struct fx *x = *state;
	enum { ROUNDS = 4 };
	const struct cframe rx = mkframe(0x700, 0, 8, 1);
	struct cframe many[300];
	struct flood fl = {.p = x->p, .n = 5000};
	struct device_stats s;
	struct gdrv *c;
	pthread_t th;
	int fds_running;

	fx_up(x, true, 16, T_ACK_NEVER_MS);
	fds_running = tfd_count();
	for (unsigned int i = 0; i < 300; i++)
		many[i] = mkframe(i, 0, 2, (uint8_t)i);

	for (unsigned int round = 0; round < ROUNDS; round++) {
		enum fe_order order = round % 2 ? FE_ORDER_CLOUD_HV : FE_ORDER_QEMU;

		c = can_open(x, order, F_ALL, 0);
		assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
		/* Mid-traffic: TX waiting for echoes, RX buffers used, a backlog. */
		for (unsigned int i = 0; i < 3; i++)
			assert_true(gdrv_tx(c, &many[i]) >= 0);
		assert_int_equal(fakeport_inject_frames(x->p, many, 300), 0);
		assert_int_equal(fakeport_wait_sent(x->p, 3 * (round + 1), T_MS), 0);
		sync_loop(x);
		/* Gone without STOP, without GET_VRING_BASE. */
		gdrv_close(c);
		wait_idle(x, round + 1);
		assert_int_equal(tfd_count(), fds_running);
	}

	/* One more, gone while the bus floods it. */
	c = can_open(x, FE_ORDER_CLOUD_HV, F_ALL, 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(pthread_create(&th, NULL, flood_thread, &fl), 0);
	for (unsigned int i = 0; i < 50; i++) {
		struct cframe got;

		assert_int_equal(gdrv_rx(c, &got, T_MS), 1);
	}
	gdrv_close(c);
	pthread_join(th, NULL);
	assert_int_equal(fl.ret, 0);
	wait_idle(x, ROUNDS + 1);
	assert_int_equal(tfd_count(), fds_running);

	/* A new frontend works, and nothing of the old ones reaches it. */
	c = can_open(x, FE_ORDER_QEMU, F_ALL, 0);
	assert_no_rx(x, c);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_no_rx(x, c);
	assert_no_tx_completion(x, c);
	assert_int_equal(fakeport_inject_frames(x->p, &rx, 1), 0);
	receive(c, &rx);
	{
		struct cframe echo;
		int t = gdrv_tx(c, &rx);

		assert_int_equal(fakeport_wait_sent(x->p, 3 * ROUNDS + 1, T_MS), 0);
		assert_int_equal(fakeport_sent(x->p, 3 * ROUNDS, &echo), 0);
		assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_TX_DONE, &echo), 0);
		tx_result(c, t, VIRTIO_CAN_RESULT_OK);
	}
	stats(x, &s);
	/* The pending requests of every vanished frontend were completed. */
	assert_int_equal(s.tx_stopped, 3 * ROUNDS);
	assert_int_equal(s.tx_ok, 1);
	assert_int_equal(rx_accounted(&s), 300 * ROUNDS + fl.n + 1);
	gdrv_close(c);
	wait_idle(x, ROUNDS + 2);
	assert_int_equal(tfd_count(), fds_running);
}

/* A frontend breaking the protocol loses its connection; the loop goes on. */
static void test_protocol_error_mid_session(void **state)
{
	struct fx *x = *state;
	const struct cframe f = mkframe(0x42, 0, 1, 1);
	struct gdrv *c;
	int fds_running, ret = 0;

	fx_up(x, false, 0, 0);
	fds_running = tfd_count();
	c = can_open(x, FE_ORDER_QEMU, F_ALL & ~F_LATE, 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_inject_frames(x->p, &f, 1), 0);
	receive(c, &f);
	/* An unknown request. */
	assert_int_equal(fe_send(gdrv_fe(c), 200, 0, NULL, 0, NULL, 0), 0);
	assert_int_equal(fe_wait_closed(gdrv_fe(c), T_MS), 0);
	gdrv_close(c);
	wait_idle(x, 1);
	assert_false(fakeport_loop_exited(x->d, &ret));
	assert_int_equal(tfd_count(), fds_running);

	c = can_open(x, FE_ORDER_CLOUD_HV, F_ALL & ~F_LATE, 0);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(gdrv_tx_sync(c, &f, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_inject_frames(x->p, &f, 1), 0);
	receive(c, &f);
	gdrv_close(c);
	wait_idle(x, 2);
}

/* ---- No busy waiting ---- */

static void thread_cpu(struct loop *m, void *arg)
{
	(void)m;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, arg);
}

/*
 * CPU time of the loop thread over ~300 ms of idleness. A sanity bound:
 * a spinning loop burns a good part of it, a sleeping one next to nothing.
 */
static void assert_idle(struct fx *x)
{
	struct timespec a, b, pause = {.tv_nsec = 300000000};
	int64_t used_us;

	sync_loop(x);
	assert_int_equal(fakeport_loop_exec(x->d, thread_cpu, &a), 0);
	nanosleep(&pause, NULL);
	assert_int_equal(fakeport_loop_exec(x->d, thread_cpu, &b), 0);
	used_us = (int64_t)(b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
	assert_true(used_us >= 0);
	if (used_us > 30000)
		fail_msg("the idle loop used %lld us of CPU in 300 ms", (long long)used_us);
}

static void test_idle_loop_sleeps(void **state)
{
	struct fx *x = *state;
	const struct cframe f = mkframe(0x1, 0, 1, 1);
	struct gdrv *c;
	int t;

	fx_up(x, true, 0, T_ACK_NEVER_MS);
	/* Listening, nobody connected. */
	assert_idle(x);

	c = can_open(x, FE_ORDER_QEMU, F_ALL, 0);
	/* Connected, stopped. */
	assert_idle(x);
	assert_int_equal(gdrv_start(c, T_MS), VIRTIO_CAN_RESULT_OK);
	assert_int_equal(fakeport_inject_frames(x->p, &f, 1), 0);
	receive(c, &f);
	/* Started, after traffic. */
	assert_idle(x);
	/* A second frontend knocking while the first is served (it waits its turn). */
	{
		struct fe *other;

		assert_int_equal(fe_new(&other, NULL), 0);
		assert_int_equal(fe_connect(other, fakeport_loop_path(x->d), T_MS), 0);
		assert_idle(x);
		fe_free(other);
	}

	/* A TX request waiting for its echo: the loop sleeps until its deadline. */
	t = gdrv_tx(c, &f);
	assert_int_equal(fakeport_wait_sent(x->p, 1, T_MS), 0);
	assert_idle(x);
	assert_int_equal(fakeport_inject_event(x->p, CAN_PORT_EV_BUSOFF, NULL), 0);
	tx_result(c, t, VIRTIO_CAN_RESULT_NOT_OK);
	/* Bus-off. */
	assert_idle(x);
	/* Rings stopped as QEMU stops them, and a guest still kicking them. */
	assert_int_equal(fe_stop(gdrv_fe(c)), 0);
	for (unsigned int q = 0; q < VIRTIO_CAN_NUM_QUEUES; q++)
		assert_int_equal(fe_ring_kick(gdrv_fe(c), q, true), 1);
	assert_idle(x);
	gdrv_close(c);
	/* The one that knocked is served next, and finds nobody there. */
	wait_idle(x, 2);
	/* Again nobody connected. */
	assert_idle(x);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_session_qemu),
	    T(test_session_cloud_hv),
	    T(test_reconnect_while_started),
	    T(test_types_not_negotiated),
	    T(test_start_twice_stop_fails_pending),
	    T(test_start_fails_on_port),
	    T(test_late_tx_ack_echo),
	    T(test_late_tx_ack_many),
	    T(test_late_tx_ack_timeout),
	    T(test_tx_port_failure),
	    T(test_tx_port_failure_in_batch),
	    T(test_bus_off_qemu),
	    T(test_bus_off_cloud_hv),
	    T(test_bus_order_with_bus_off),
	    T(test_get_config_16),
	    T(test_rx_while_stopped),
	    T(test_rx_backlog),
	    T(test_rx_flood),
	    T(test_rx_buffer_too_small),
	    T(test_vanishing_frontends),
	    T(test_protocol_error_mid_session),
	    T(test_idle_loop_sleeps),
	};

	if (!getenv("VDC_TEST_VERBOSE"))
		vlog_set_level(VLOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
