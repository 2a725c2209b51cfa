/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Several devices in one daemon on real CAN (VM rig): 1, 2 and 4 devices
 * (--device on vcan0..vcan3), every guest at once keeping its Txq full
 * (guest -> bus), then every bus flooded at once (bus -> guest). Prints the
 * aggregate frames/s and the slowest device's share against the fastest:
 * one thread serves them all, so the question is whether they share it
 * fairly and what the total costs.
 *
 * Usage: bench_multi [SECONDS per run, default 3]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "bench.h"

#define MAX_DEV 4

static const char *const ifs[MAX_DEV] = {"vcan0", "vcan1", "vcan2", "vcan3"};

struct guest_run {
	struct gdrv *c;
	double secs;
	pthread_t thread;
	unsigned long long done, not_ok;
	double t;
	int err; /* no cmocka calls in threads */
};

/* One guest keeping its Txq full for secs: completions. */
static void *tx_main(void *arg)
{
	struct guest_run *g = arg;
	struct bench_txflood fl;

	g->err = bench_guest_txflood(g->c, false, NULL, g->secs, &fl);
	g->done = fl.done;
	g->not_ok = fl.not_ok;
	g->t = fl.t;
	return NULL;
}

/* One guest taking frames until the flood's marker: frames. */
static void *rx_main(void *arg)
{
	struct guest_run *g = arg;
	double t0 = bench_now_s();
	struct cframe f;

	for (;;) {
		int r = gdrv_rx(g->c, &f, VD_WAIT_MS);

		if (r != 1) {
			g->err = r < 0 ? -r : ETIMEDOUT;
			break;
		}
		if (vd_is_marker(&f))
			break;
		g->done++;
	}
	g->t = bench_now_s() - t0;
	return NULL;
}

/* Start the daemon with n devices and a started guest on each. */
static void start(struct vd *d, unsigned int n, struct gdrv **c)
{
	static char spec[MAX_DEV][256];
	static char sock[MAX_DEV][96];
	const char *args[2 * MAX_DEV + 2];
	unsigned int na = 0;

	vd_init(d);
	for (unsigned int k = 0; k < n; k++) {
		snprintf(sock[k], sizeof(sock[k]), "%s/d%u.sock", d->dir, k);
		snprintf(spec[k], sizeof(spec[k]),
			 "socket-path=%.96s,can-in=%s,can-out=%s,name=d%u", sock[k], ifs[k], ifs[k],
			 k);
		args[na++] = "--device";
		args[na++] = spec[k];
	}
	args[na] = NULL;
	vd_spawn(d, args);
	for (unsigned int k = 0; k < n; k++) {
		struct gdrv_opts o;
		struct stat st;
		uint64_t end = vd_now_ms() + VD_WAIT_MS;

		while (stat(sock[k], &st) != 0) {
			if (!vd_running(d) || vd_now_ms() > end) {
				vd_print_log(d);
				fail_msg("device %u never listened", k);
			}
			vd_sleep_ms(5);
		}
		gdrv_opts_default(&o);
		o.can_features = VD_NO_LATE_ACK & ~(1ull << VIRTIO_CAN_F_CAN_FD);
		o.start.queue_size = 256;
		c[k] = NULL;
		assert_int_equal(gdrv_open(&c[k], sock[k], &o, VD_WAIT_MS), 0);
		assert_int_equal(gdrv_start(c[k], VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	}
}

static void stop(struct vd *d, unsigned int n, struct gdrv **c)
{
	for (unsigned int k = 0; k < n; k++)
		gdrv_close(c[k]);
	assert_int_equal(kill(d->pid, SIGTERM), 0);
	assert_true(vd_wait_exit(d, VD_WAIT_MS));
	assert_int_equal(d->status, 0);
	vd_cleanup(d);
}

/* Aggregate rate of n devices at once; *fair = slowest / fastest device. */
static double multi_rate(unsigned int n, bool rx, double secs, double *fair)
{
	struct guest_run g[MAX_DEV];
	struct bench_flood w[MAX_DEV];
	struct gdrv *c[MAX_DEV];
	double sum = 0, lo = 0, hi = 0;
	struct vd d;

	start(&d, n, c);
	memset(g, 0, sizeof(g));
	for (unsigned int k = 0; k < n; k++) {
		g[k].c = c[k];
		g[k].secs = secs;
		if (rx)
			bench_flood_start(&w[k], ifs[k], false, secs, 0);
		assert_int_equal(pthread_create(&g[k].thread, NULL, rx ? rx_main : tx_main, &g[k]),
				 0);
	}
	for (unsigned int k = 0; k < n; k++) {
		double r;

		assert_int_equal(pthread_join(g[k].thread, NULL), 0);
		if (rx)
			bench_flood_join(&w[k]);
		if (g[k].err)
			fail_msg("device %u: %s after %llu frames", k, strerror(g[k].err),
				 g[k].done);
		if (!rx && g[k].not_ok)
			fail_msg("device %u: %llu TX requests NOT_OK", k, g[k].not_ok);
		r = (double)g[k].done / g[k].t;
		printf("  %u device(s), %s, device %u (%s): %.0f frames/s\n", n,
		       rx ? "bus -> guest" : "guest -> bus", k, ifs[k], r);
		sum += r;
		lo = k == 0 || r < lo ? r : lo;
		hi = k == 0 || r > hi ? r : hi;
	}
	*fair = hi > 0 ? lo / hi : 0;
	stop(&d, n, c);
	return sum;
}

static void run(void **state)
{
	static const unsigned int counts[] = {1, 2, 4};
	double secs = bench_secs(bench_argc, bench_argv, 3.0);

	(void)state;
	if (vd_sh("ip link show vcan3 >/dev/null 2>&1 || "
		  "{ ip link add dev vcan3 type vcan && ip link set up vcan3; }") != 0)
		fail_msg("cannot create vcan3");
	for (int rx = 0; rx <= 1; rx++) {
		for (unsigned int i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
			char key[64];
			double fair, total = multi_rate(counts[i], rx, secs, &fair);

			snprintf(key, sizeof(key), "multi_%s_%udev", rx ? "rx" : "tx", counts[i]);
			bench_put(key, total, "frames/s");
			snprintf(key, sizeof(key), "multi_%s_%udev_fairness", rx ? "rx" : "tx",
				 counts[i]);
			bench_put(key, fair, "min/max");
		}
	}
}

BENCH_MAIN(run)
