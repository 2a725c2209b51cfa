/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * --capture's cost on real vcan (VM rig): guest -> bus with the Txq kept
 * full, and bus -> guest under a flood, each with the capture off and on
 * (pcapng on the VM's tmpfs), runs interleaved (off, on, off, on, ...) so
 * drift hits both alike. Prints the medians and the on/off ratio, and
 * checks that every frame reached the capture.
 *
 * Usage: bench_capture [SECONDS per run, default 3]
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench.h"

static double tx_rate(bool cap, double secs)
{
	char path[160], arg[200];
	struct gdrv *c;
	struct vd d;
	struct bench_txflood fl;
	unsigned long long all;

	vd_init(&d);
	snprintf(path, sizeof(path), "%s/c.pcapng", d.dir);
	snprintf(arg, sizeof(arg), "--capture=%s", path);
	vd_start(&d, "vcan0", "vcan0", cap ? arg : "-v", NULL);
	c = vd_guest_open(&d, VD_NO_LATE_ACK & ~(1ull << VIRTIO_CAN_F_CAN_FD));
	assert_int_equal(bench_guest_txflood(c, false, NULL, secs, &fl), 0);
	all = fl.done + fl.drained;
	gdrv_close(c);
	vd_stop(&d);
	if (cap) {
		char want[96];

		/* Every request got a record (sent). */
		snprintf(want, sizeof(want), "capture: %llu records written, 0 lost", all);
		if (!vd_log_has(&d, want)) {
			vd_print_log(&d);
			fail_msg("the capture does not hold all %llu frames", all);
		}
		unlink(path);
	}
	vd_cleanup(&d);
	return (double)fl.done / fl.t;
}

static double rx_rate(bool cap, double secs)
{
	char path[160], arg[200];
	struct bench_flood w;
	struct gdrv *c;
	unsigned long long n = 0;
	struct vd d;
	double t;

	vd_init(&d);
	snprintf(path, sizeof(path), "%s/c.pcapng", d.dir);
	snprintf(arg, sizeof(arg), "--capture=%s", path);
	vd_start(&d, "vcan0", "vcan0", cap ? arg : "-v", NULL);
	c = vd_guest_open(&d, VD_NO_LATE_ACK);
	bench_flood_start(&w, "vcan0", false, secs, 0);
	n = bench_rx_until_marker(c);
	t = bench_now_s() - w.t_start;
	bench_flood_join(&w);
	gdrv_close(c);
	vd_stop(&d);
	if (cap) {
		/* Written + lost = every frame the daemon read, delivered or dropped. */
		if (!vd_log_has(&d, "0 lost")) {
			vd_print_log(&d);
			fail_msg("the capture lost records");
		}
		unlink(path);
	}
	vd_cleanup(&d);
	return (double)n / t;
}

static void run(void **state)
{
	double secs = bench_secs(bench_argc, bench_argv, 3.0);
	int reps = bench_reps();

	(void)state;
	for (int rx = 0; rx <= 1; rx++) {
		double off[BENCH_MAX_REPS], on[BENCH_MAX_REPS], ratio[BENCH_MAX_REPS];

		/* Off and on alternate; each ratio is taken within one round. */
		for (int r = 0; r < reps; r++) {
			off[r] = rx ? rx_rate(false, secs) : tx_rate(false, secs);
			on[r] = rx ? rx_rate(true, secs) : tx_rate(true, secs);
			ratio[r] = on[r] / off[r];
			printf("capture %s run %d: off %.0f, on %.0f frames/s\n",
			       rx ? "bus -> guest" : "guest -> bus", r, off[r], on[r]);
		}
		bench_put_runsf(off, reps, "frames/s", "capture_%s_off", rx ? "rx" : "tx");
		bench_put_runsf(on, reps, "frames/s", "capture_%s_on", rx ? "rx" : "tx");
		bench_put_runsf(ratio, reps, "x", "capture_%s_ratio", rx ? "rx" : "tx");
	}
}

BENCH_MAIN(run)
