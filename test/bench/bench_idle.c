/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Idle cost and memory of the daemon on real CAN (VM rig). A daemon with a
 * connected, started guest and a quiet bus for 10 seconds: the CPU time it
 * used in that time (clock ticks; one epoll loop with nothing to do should
 * use none). Its resident memory without shared memory (guest memory is a
 * shared mapping) after start, after a 100,000-frame flood from the bus, and
 * after a second one: bounded, and no growth from one flood to the next.
 *
 * Usage: bench_idle [IDLE SECONDS, default 10]
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench.h"

#define FLOOD_FRAMES 100000ull

/* A 100,000-frame flood into the guest; returns frames the guest took. */
static unsigned long long flood(struct gdrv *c)
{
	struct bench_flood w;
	struct cframe f;
	unsigned long long n = 0;

	bench_flood_start(&w, "vcan0", false, 600, FLOOD_FRAMES);
	n = bench_rx_until_marker(c);
	bench_flood_join(&w);
	while (gdrv_rx(c, &f, 300) == 1)
		;
	assert_int_equal(w.written, FLOOD_FRAMES);
	return n;
}

static void run(void **state)
{
	(void)state;
	double idle = bench_argc > 1 && atof(bench_argv[1]) > 0 ? atof(bench_argv[1]) : 10.0;
	unsigned long long t0, t1, got;
	long rss_start, rss_flood1, rss_flood2;
	struct gdrv *c;
	struct vd d;

	vd_init(&d);
	vd_start(&d, "vcan0", "vcan0", NULL);
	c = vd_guest_open(&d, VD_NO_LATE_ACK);
	vd_sleep_ms(500); /* let the connection's work settle */
	rss_start = bench_rss_private_kb(&d);

	t0 = vd_cpu_ticks(&d);
	vd_sleep_ms((unsigned int)(idle * 1000));
	t1 = vd_cpu_ticks(&d);
	printf("idle: %llu clock ticks (of %ld per second) in %.0f s\n", t1 - t0,
	       sysconf(_SC_CLK_TCK), idle);
	bench_put("idle_cpu_ticks", (double)(t1 - t0), "ticks");

	got = flood(c);
	rss_flood1 = bench_rss_private_kb(&d);
	printf("flood 1: guest took %llu of %llu frames\n", got, FLOOD_FRAMES);
	got = flood(c);
	rss_flood2 = bench_rss_private_kb(&d);
	printf("flood 2: guest took %llu of %llu frames\n", got, FLOOD_FRAMES);

	bench_put("rss_after_start", (double)rss_start, "KiB");
	bench_put("rss_after_flood", (double)rss_flood1, "KiB");
	bench_put("rss_after_2nd_flood", (double)rss_flood2, "KiB");
	bench_put("rss_growth_2nd_flood", (double)(rss_flood2 - rss_flood1), "KiB");
	gdrv_close(c);
	vd_stop(&d);
	vd_cleanup(&d);
}

BENCH_MAIN(run)
