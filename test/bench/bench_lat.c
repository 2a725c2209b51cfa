/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Round-trip latency guest -> bus -> guest on real CAN (VM rig): the guest
 * sends a frame through the daemon, a peer on vcan0 echoes it back under
 * another id, and the guest receives the echo. Beside it, in the same run
 * on the same interface with the same echoing peer: a raw-socket ping-pong
 * (write, then read the echo), and a relay: a thread that does what any
 * backend outside the guest's thread must do, woken by an eventfd, sending
 * the frame on a raw socket, reading the echo and waking the caller through
 * another eventfd, with nothing else (no rings, no guest memory). The raw
 * ping-pong hands off twice per round trip, the relay and the daemon four
 * times. Prints p50 and p99 of each in microseconds.
 *
 * Usage: bench_lat [SECONDS per run, default 3]
 */
#define _GNU_SOURCE
#include <sys/eventfd.h>

#include <poll.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench.h"

#define PING_ID 0x200u
#define PONG_ID 0x201u
#define MAX_SAMPLES 100000

/* The echoing peer: every PING_ID frame comes back as PONG_ID. */
struct echo {
	pthread_t thread;
	int sock; /* bound before the thread starts: no ping is missed */
	int stop;
	unsigned long long echoed;
};

static void *echo_main(void *arg)
{
	struct echo *e = arg;
	int s = e->sock;
	struct pollfd pfd = {.fd = s, .events = POLLIN};

	while (!__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
		struct canfd_frame cf;
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = read(s, &cf, sizeof(cf));
		if (n <= 0 || cf.can_id != PING_ID)
			continue;
		cf.can_id = PONG_ID;
		assert_int_equal(write(s, &cf, (size_t)n), n);
		e->echoed++;
	}
	close(s);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* p50 and p99 in microseconds of one run's n samples (seconds). */
struct pcts {
	double p50, p99;
};

static struct pcts report(const char *key, double *v, size_t n)
{
	struct pcts p;

	assert_true(n > 0);
	qsort(v, n, sizeof(*v), cmp_double);
	p.p50 = v[n / 2] * 1e6;
	p.p99 = v[(n * 99) / 100] * 1e6;
	printf("%s: %zu round trips, p50 %.1f us, p99 %.1f us\n", key, n, p.p50, p.p99);
	return p;
}

/* The ping the raw socket and the relay send: PING_ID, 8 bytes of seq. */
static struct canfd_frame ping_frame(uint64_t seq)
{
	struct canfd_frame cf;

	memset(&cf, 0, sizeof(cf));
	cf.can_id = PING_ID;
	cf.len = 8;
	memcpy(cf.data, &seq, 8);
	return cf;
}

static struct pcts raw_ping_pong(double secs, double *v)
{
	int s = vd_peer_open("vcan0");
	struct canfd_frame cf;
	size_t n = 0;
	double t0 = bench_now_s();

	do {
		double a = bench_now_s();

		cf = ping_frame(n);
		assert_int_equal(write(s, &cf, CAN_MTU), CAN_MTU);
		/* Our own frame does not come back to us: the next one is the echo. */
		assert_true(vd_peer_recv(s, &cf, VD_WAIT_MS) > 0);
		assert_int_equal(cf.can_id, PONG_ID);
		v[n++] = bench_now_s() - a;
	} while (n < MAX_SAMPLES && bench_now_s() - t0 < secs);
	close(s);
	return report("rtt_raw", v, n);
}

/* The relay: kick and call are eventfds, as a guest's kick and interrupt. */
struct relay {
	pthread_t thread;
	int kick, call, sock;
	int stop;
	uint64_t seq; /* written by the caller before each kick */
};

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	struct pollfd pfd = {.fd = r->kick, .events = POLLIN};

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		struct canfd_frame cf;
		eventfd_t v;

		if (poll(&pfd, 1, 50) <= 0 || eventfd_read(r->kick, &v) < 0)
			continue;
		cf = ping_frame(r->seq);
		if (write(r->sock, &cf, CAN_MTU) != CAN_MTU ||
		    vd_peer_recv(r->sock, &cf, VD_WAIT_MS) == 0)
			break; /* the caller times out and fails */
		eventfd_write(r->call, 1);
	}
	return NULL;
}

static struct pcts relay_ping_pong(double secs, double *v)
{
	struct relay r = {.sock = vd_peer_open("vcan0")};
	struct pollfd pfd;
	size_t n = 0;
	double t0;

	r.kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r.call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(r.kick >= 0 && r.call >= 0);
	assert_int_equal(pthread_create(&r.thread, NULL, relay_main, &r), 0);
	pfd = (struct pollfd){.fd = r.call, .events = POLLIN};
	t0 = bench_now_s();
	do {
		double a = bench_now_s();
		eventfd_t x;

		r.seq = n;
		assert_int_equal(eventfd_write(r.kick, 1), 0);
		assert_int_equal(poll(&pfd, 1, VD_WAIT_MS), 1);
		assert_int_equal(eventfd_read(r.call, &x), 0);
		v[n++] = bench_now_s() - a;
	} while (n < MAX_SAMPLES && bench_now_s() - t0 < secs);
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(r.thread, NULL), 0);
	close(r.kick);
	close(r.call);
	close(r.sock);
	return report("rtt_relay", v, n);
}

static struct pcts guest_ping_pong(double secs, double *v)
{
	struct vd d;
	struct gdrv *c;
	size_t n = 0;
	double t0;

	vd_init(&d);
	vd_start(&d, "vcan0", "vcan0", NULL);
	c = vd_guest_open(&d, VD_NO_LATE_ACK);
	t0 = bench_now_s();
	do {
		struct cframe f = cf_make(PING_ID, 0, 8, (uint8_t)n), got;
		uint8_t res = 0;
		double a = bench_now_s();
		int tok;

		assert_true(gdrv_tx(c, &f) >= 0);
		vd_guest_rx(c, &got);
		v[n++] = bench_now_s() - a;
		assert_int_equal(got.id, PONG_ID);
		assert_memory_equal(got.data, f.data, 8);
		assert_int_equal(gdrv_tx_wait(c, VD_WAIT_MS, &tok, &res), 1);
		assert_int_equal(res, VIRTIO_CAN_RESULT_OK);
	} while (n < MAX_SAMPLES && bench_now_s() - t0 < secs);
	gdrv_close(c);
	vd_stop(&d);
	vd_cleanup(&d);
	return report("rtt_guest", v, n);
}

static void run(void **state)
{
	(void)state;
	double secs = bench_secs(bench_argc, bench_argv, 3.0);
	int reps = bench_reps();
	double *v = calloc(MAX_SAMPLES, sizeof(double));
	double raw50[BENCH_MAX_REPS], raw99[BENCH_MAX_REPS], g50[BENCH_MAX_REPS],
	    g99[BENCH_MAX_REPS], ratio[BENCH_MAX_REPS], rel50[BENCH_MAX_REPS],
	    rel99[BENCH_MAX_REPS], vs_relay[BENCH_MAX_REPS];
	struct echo e = {0};

	assert_non_null(v);
	e.sock = vd_peer_open("vcan0");
	assert_int_equal(pthread_create(&e.thread, NULL, echo_main, &e), 0);
	/* Raw, relay and guest runs alternate; each ratio is taken within one round. */
	for (int r = 0; r < reps; r++) {
		struct pcts raw = raw_ping_pong(secs, v), rel = relay_ping_pong(secs, v);
		struct pcts g = guest_ping_pong(secs, v);

		raw50[r] = raw.p50;
		raw99[r] = raw.p99;
		g50[r] = g.p50;
		g99[r] = g.p99;
		ratio[r] = g.p50 / raw.p50;
		rel50[r] = rel.p50;
		rel99[r] = rel.p99;
		vs_relay[r] = g.p50 / rel.p50;
	}
	__atomic_store_n(&e.stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(e.thread, NULL), 0);
	bench_put_runs("rtt_raw_p50", raw50, reps, "us");
	bench_put_runs("rtt_raw_p99", raw99, reps, "us");
	bench_put_runs("rtt_relay_p50", rel50, reps, "us");
	bench_put_runs("rtt_relay_p99", rel99, reps, "us");
	bench_put_runs("rtt_guest_p50", g50, reps, "us");
	bench_put_runs("rtt_guest_p99", g99, reps, "us");
	bench_put_runs("rtt_p50_ratio", ratio, reps, "x");
	bench_put_runs("rtt_p50_vs_relay", vs_relay, reps, "x");
	free(v);
}

BENCH_MAIN(run)
