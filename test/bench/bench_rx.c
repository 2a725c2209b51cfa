/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Bus -> guest throughput on real CAN (VM rig). A raw-socket writer floods
 * vcan0 for a few seconds while the guest driver takes every frame and
 * reposts its buffer: 80-byte buffers as a guest with CAN FD posts them
 * (classic 8-byte and FD 64-byte frames) and 24-byte ones as a classic-only
 * guest does. Baseline, same writer, same interface, same run: a
 * candump-style reader doing one read() per frame.
 *
 * Every frame written must be accounted for: delivered to the guest, or
 * counted as dropped by the daemon (backlog full, socket buffer overflow,
 * ...) or by the network stack before any socket. The program fails when
 * the numbers do not add up.
 *
 * Usage: bench_rx [SECONDS per run, default 3]
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench.h"

/* Frames per second a plain raw socket reads, one read() each. */
static double raw_read_rate(bool fd, double secs, double *cpu_us)
{
	struct bench_flood w;
	struct canfd_frame cf;
	unsigned long long n = 0;
	int s = vd_peer_open("vcan0");
	double t, c0 = bench_thread_cpu_s();

	bench_flood_start(&w, "vcan0", fd, secs, 0);
	for (;;) {
		ssize_t r = read(s, &cf, sizeof(cf));

		assert_true(r > 0);
		if ((cf.can_id & CAN_SFF_MASK) == VD_MARK_ID && cf.len == 4 &&
		    memcmp(cf.data, "MARK", 4) == 0)
			break;
		n++;
	}
	t = bench_now_s() - w.t_start;
	*cpu_us = (bench_thread_cpu_s() - c0) * 1e6 / (double)n;
	bench_flood_join(&w);
	close(s);
	printf("raw read (%s): %llu of %llu frames in %.2f s\n", fd ? "fd64" : "classic8", n,
	       w.written, t);
	return (double)n / t;
}

/* Frames per second the guest receives through the daemon. */
static double guest_rx_rate(bool fd_frames, bool fd_guest, double secs, const char *key,
			    double *dropped_pct, double *cpu_us)
{
	uint64_t features = VD_NO_LATE_ACK & (fd_guest ? ~0ull : ~(1ull << VIRTIO_CAN_F_CAN_FD));
	struct vd_stats st0, st1;
	struct bench_flood w;
	struct gdrv *c;
	struct cframe f;
	unsigned long long n = 0, extra = 0, sn0, sn1, delivered, dropped, sent;
	double t, c0;
	struct vd d;

	vd_init(&d);
	vd_start(&d, "vcan0", "vcan0", NULL);
	c = vd_guest_open(&d, features);
	assert_int_equal(gdrv_has(c, VIRTIO_CAN_F_CAN_FD), fd_guest);
	vd_stats(&d, &st0);
	assert_true(st0.rx_kernel != ~0ull); /* the daemon reports kernel drops */
	sn0 = vd_softnet_drops();
	c0 = bench_daemon_cpu_s(&d);

	bench_flood_start(&w, "vcan0", fd_frames, secs, 0);
	n = bench_rx_until_marker(c);
	t = bench_now_s() - w.t_start;
	*cpu_us = (bench_daemon_cpu_s(&d) - c0) * 1e6 / (double)n;
	bench_flood_join(&w);
	/* Markers sent after the first one the guest saw, or still queued. */
	while (gdrv_rx(c, &f, 300) == 1)
		extra++;
	vd_stats(&d, &st1);
	sn1 = vd_softnet_drops();

	delivered = st1.rx_delivered - st0.rx_delivered;
	dropped = vd_rx_drops(&st1) - vd_rx_drops(&st0) + (sn1 - sn0);
	sent = w.written + w.markers;
	printf("%s: written %llu + %llu markers; delivered %llu (guest took %llu), dropped %llu "
	       "(backlog full %llu, socket buffer %llu, stack %llu) in %.2f s\n",
	       key, w.written, w.markers, delivered, n + 1 + extra, dropped,
	       st1.rx_dropped_overflow - st0.rx_dropped_overflow, st1.rx_kernel - st0.rx_kernel,
	       sn1 - sn0, t);
	if (delivered + dropped != sent || n + 1 + extra != delivered) {
		vd_print_log(&d);
		fail_msg("%s: frames unaccounted for: sent %llu, delivered %llu + dropped %llu, "
			 "guest %llu",
			 key, sent, delivered, dropped, n + 1 + extra);
	}
	*dropped_pct = 100.0 * (double)dropped / (double)sent;
	gdrv_close(c);
	vd_stop(&d);
	vd_cleanup(&d);
	return (double)n / t;
}

static void run(void **state)
{
	double secs = bench_secs(bench_argc, bench_argv, 3.0);
	int reps = bench_reps();
	const struct {
		bool fd_frames, fd_guest;
		const char *key;
	} runs[] = {
	    {false, true, "rx_classic8_buf80"},
	    {false, false, "rx_classic8_buf24"},
	    {true, true, "rx_fd64_buf80"},
	};
	const size_t nruns = sizeof(runs) / sizeof(runs[0]);

	(void)state;
	for (int fd = 0; fd <= 1; fd++) {
		double base[BENCH_MAX_REPS], rate[3][BENCH_MAX_REPS], drop[3][BENCH_MAX_REPS];
		double base_cpu[BENCH_MAX_REPS], cpu[3][BENCH_MAX_REPS];
		char key[96];

		/* Baseline and daemon runs alternate, so drift hits both alike. */
		for (int r = 0; r < reps; r++) {
			base[r] = raw_read_rate(fd, secs, &base_cpu[r]);
			for (size_t i = 0; i < nruns; i++)
				if (runs[i].fd_frames == (bool)fd)
					rate[i][r] =
					    guest_rx_rate(runs[i].fd_frames, runs[i].fd_guest, secs,
							  runs[i].key, &drop[i][r], &cpu[i][r]);
		}
		bench_put_runsf(base, reps, "frames/s", "rx_%s_raw_read", fd ? "fd64" : "classic8");
		bench_put_runsf(base_cpu, reps, "us/frame", "rx_%s_raw_read_cpu",
				fd ? "fd64" : "classic8");
		for (size_t i = 0; i < nruns; i++) {
			double ratio[BENCH_MAX_REPS], cpu_ratio[BENCH_MAX_REPS];

			if (runs[i].fd_frames != (bool)fd)
				continue;
			/* Each ratio within one round, then the median of them. */
			for (int r = 0; r < reps; r++) {
				ratio[r] = rate[i][r] / base[r];
				/* > 1 means the daemon is cheaper per frame than the reader. */
				cpu_ratio[r] = base_cpu[r] / cpu[i][r];
			}
			bench_put_runs(runs[i].key, rate[i], reps, "frames/s");
			bench_put_runsf(ratio, reps, "x", "%s_ratio", runs[i].key);
			snprintf(key, sizeof(key), "%s_dropped_pct", runs[i].key);
			bench_put(key, bench_median(drop[i], reps), "%");
			bench_put_runsf(cpu[i], reps, "us/frame", "%s_daemon_cpu", runs[i].key);
			bench_put_runsf(cpu_ratio, reps, "x", "%s_daemon_cpu_ratio", runs[i].key);
		}
	}
}

BENCH_MAIN(run)
