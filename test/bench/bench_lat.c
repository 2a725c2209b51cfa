/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Round-trip latency guest -> bus -> guest on real CAN (VM rig): the guest
 * sends a frame through the daemon, a peer on vcan0 echoes it back under
 * another id, and the guest receives the echo. Beside it, in the same run
 * on the same interface with the same echoing peer: a raw-socket ping-pong
 * (write, then read the echo). Prints p50 and p99 of each in microseconds.
 *
 * Usage: bench_lat [SECONDS per run, default 3]
 */
#define _GNU_SOURCE
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

/* Sort and print p50/p99 of n samples (seconds) under key. */
static double report(const char *key, double *v, size_t n)
{
	char k[96];
	double p50, p99;

	assert_true(n > 0);
	qsort(v, n, sizeof(*v), cmp_double);
	p50 = v[n / 2] * 1e6;
	p99 = v[(n * 99) / 100] * 1e6;
	printf("%s: %zu round trips\n", key, n);
	snprintf(k, sizeof(k), "%s_p50", key);
	bench_put(k, p50, "us");
	snprintf(k, sizeof(k), "%s_p99", key);
	bench_put(k, p99, "us");
	return p50;
}

static double raw_ping_pong(double secs, double *v)
{
	int s = peer_open("vcan0");
	struct canfd_frame cf;
	size_t n = 0;
	double t0 = bench_now_s();

	do {
		double a = bench_now_s();

		memset(&cf, 0, sizeof(cf));
		cf.can_id = PING_ID;
		cf.len = 8;
		memcpy(cf.data, &n, sizeof(n) < 8 ? sizeof(n) : 8);
		assert_int_equal(write(s, &cf, CAN_MTU), CAN_MTU);
		/* Our own frame does not come back to us: the next one is the echo. */
		assert_true(peer_recv(s, &cf, WAIT_MS) > 0);
		assert_int_equal(cf.can_id, PONG_ID);
		v[n++] = bench_now_s() - a;
	} while (n < MAX_SAMPLES && bench_now_s() - t0 < secs);
	close(s);
	return report("rtt_raw", v, n);
}

static double guest_ping_pong(double secs, double *v)
{
	struct vd d;
	struct fecan *c;
	size_t n = 0;
	double t0;

	vd_init(&d);
	vd_start(&d, "vcan0", "vcan0", NULL);
	c = guest_open(&d, NO_LATE_ACK);
	t0 = bench_now_s();
	do {
		struct cframe f = cf_make(PING_ID, 0, 8, (uint8_t)n), got;
		uint8_t res = 0;
		double a = bench_now_s();
		int tok;

		assert_true(fecan_tx(c, &f) >= 0);
		guest_rx(c, &got);
		v[n++] = bench_now_s() - a;
		assert_int_equal(got.id, PONG_ID);
		assert_memory_equal(got.data, f.data, 8);
		assert_int_equal(fecan_tx_wait(c, WAIT_MS, &tok, &res), 1);
		assert_int_equal(res, VIRTIO_CAN_RESULT_OK);
	} while (n < MAX_SAMPLES && bench_now_s() - t0 < secs);
	fecan_close(c);
	vd_stop(&d);
	vd_cleanup(&d);
	return report("rtt_guest", v, n);
}

static void run(void **state)
{
	(void)state;
	double secs = bench_secs(bench_argc, bench_argv, 3.0);
	double *v = calloc(MAX_SAMPLES, sizeof(double));
	struct echo e = {0};
	double raw, guest;

	assert_non_null(v);
	e.sock = peer_open("vcan0");
	assert_int_equal(pthread_create(&e.thread, NULL, echo_main, &e), 0);
	raw = raw_ping_pong(secs, v);
	guest = guest_ping_pong(secs, v);
	__atomic_store_n(&e.stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(e.thread, NULL), 0);
	bench_put("rtt_p50_ratio", guest / raw, "x");
	free(v);
}

BENCH_MAIN(run)
