/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * How long the daemon's loop can be kept away from everything else: the
 * daemon's own loop (loop_run in a thread, fake CAN port that only counts)
 * while a guest keeps its TX ring full flat out (txflood: every request is
 * reposted the moment it is sent). Meanwhile, every 10 ms, a frontend
 * message (GET_CONFIG) is timed to its reply and a frame injected on the
 * bus side is timed to its arrival in the guest's Rxq.
 *
 * Usage: bench_loop [--smoke] [SECONDS]     (default 3 s)
 * Prints BENCH lines: the longest and 99th-percentile loop turn (time away
 * from epoll_wait), and the median and worst wait of a message and of a
 * frame, on this host. A figure, not a pass/fail check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fakeport.h"
#include "loop_test.h"
#include "guest_driver.h"
#include "txflood.h"
#include "vhost-user/vlog.h"

#define T_MS 10000 /* guard against hangs only */
#define MAX_SAMPLES 100000

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "bench_loop: %s:%d: check failed: %s\n", __FILE__,         \
				__LINE__, #cond);                                                  \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(uint64_t *v, unsigned int n, double p)
{
	unsigned int i;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	i = (unsigned int)(p * (n - 1));
	return (double)v[i] / 1000.0;
}

static void put(const char *key, double value, const char *unit)
{
	printf("BENCH %s %.6g %s\n", key, value, unit);
	fflush(stdout);
}

static void turns_on(struct loop *m, void *arg)
{
	(void)arg;
	memset(loop_test_turns(m), 0, sizeof(struct loop_turns));
	loop_test_turns(m)->on = true;
}

static void turns_take(struct loop *m, void *arg)
{
	*(struct loop_turns *)arg = *loop_test_turns(m);
	loop_test_turns(m)->on = false;
}

/* Upper bound of the bucket where the p-th fraction of the turns falls. */
static double turns_pct_us(const struct loop_turns *t, double p)
{
	uint64_t want = (uint64_t)(p * (double)t->n), seen = 0;

	for (unsigned int k = 0; k < LOOP_TURN_BUCKETS; k++) {
		seen += t->log2_ns[k];
		if (seen > want)
			return (double)(2ull << k) / 1000.0;
	}
	return (double)t->max_ns / 1000.0;
}

int main(int argc, char **argv)
{
	static uint64_t msg_ns[MAX_SAMPLES], frame_ns[MAX_SAMPLES];
	struct device_config cfg = {.name = "bench-loop"};
	struct timespec gap = {.tv_nsec = 10 * 1000000L};
	static struct txflood fl;
	struct fakeport_loop *d = NULL;
	struct fakeport *p = NULL;
	struct gdrv *c = NULL;
	struct gdrv_opts o;
	struct loop_turns turns;
	unsigned int nmsg = 0, nframe = 0, sent0, sent1;
	double secs = 3;
	uint64_t t0, end;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--smoke") == 0)
			secs = 0.2;
		else
			secs = atof(argv[i]);
	}
	CHECK(secs > 0);
	vlog_set_level(VLOG_ERR);
	CHECK(fakeport_new(&p) == 0);
	fakeport_count_only(p, true);
	CHECK(fakeport_loop_start(&d, &cfg, p) == 0);
	gdrv_opts_default(&o);
	o.can_features = 1ull << VIRTIO_CAN_F_CAN_CLASSIC;
	CHECK(gdrv_open(&c, fakeport_loop_path(d), &o, T_MS) == 0);
	CHECK(gdrv_start(c, T_MS) == VIRTIO_CAN_RESULT_OK);

	CHECK(fakeport_loop_exec(d, turns_on, NULL) == 0);
	CHECK(txflood_start(&fl, c, p, d, (int)(secs * 1000) + 5000) == 0);
	sent0 = fakeport_sent_count(p);
	t0 = now_ns();
	end = t0 + (uint64_t)(secs * 1e9);
	while (now_ns() < end && nmsg < MAX_SAMPLES) {
		struct cframe in = {.id = 0x7ff, .len = 8}, got;
		uint64_t t = now_ns();

		CHECK(gdrv_status(c) >= 0);
		msg_ns[nmsg++] = now_ns() - t;
		t = now_ns();
		memcpy(in.data, &t, sizeof(t));
		CHECK(fakeport_inject_frames(p, &in, 1) == 0);
		CHECK(gdrv_rx(c, &got, T_MS) == 1);
		frame_ns[nframe++] = now_ns() - t;
		CHECK(got.id == in.id && memcmp(got.data, &t, sizeof(t)) == 0);
		nanosleep(&gap, NULL);
	}
	sent1 = fakeport_sent_count(p);
	CHECK(txflood_running(&fl));
	CHECK(fakeport_loop_exec(d, turns_take, &turns) == 0);
	CHECK(txflood_stop(&fl, d) == 0);

	printf("bench_loop: %.1f s with the guest refilling its TX ring flat out: %u TX frames "
	       "(%.0f/s), %llu loop turns\n",
	       (double)(now_ns() - t0) / 1e9, sent1 - sent0,
	       (double)(sent1 - sent0) / ((double)(now_ns() - t0) / 1e9),
	       (unsigned long long)turns.n);
	put("loop_tx_flood_fps", (double)(sent1 - sent0) / ((double)(now_ns() - t0) / 1e9),
	    "frames/s");
	put("loop_turn_max", (double)turns.max_ns / 1000.0, "us");
	put("loop_turn_p99", turns_pct_us(&turns, 0.99), "us");
	put("loop_turn_mean", turns.n ? (double)turns.sum_ns / (double)turns.n / 1000.0 : 0, "us");
	put("loop_msg_wait_p50", pct_us(msg_ns, nmsg, 0.5), "us");
	put("loop_msg_wait_max", pct_us(msg_ns, nmsg, 1.0), "us");
	put("loop_frame_wait_p50", pct_us(frame_ns, nframe, 0.5), "us");
	put("loop_frame_wait_max", pct_us(frame_ns, nframe, 1.0), "us");

	gdrv_close(c);
	CHECK(fakeport_loop_stop(d) == 0);
	fakeport_free(p);
	return 0;
}
