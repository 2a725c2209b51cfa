/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Helpers of the benchmarks (test/bench/bench_*.c, run by scripts/bench.sh).
 * They reuse the real-CAN test helpers (the daemon under test, the guest
 * driver, raw peers); a failed check ends the program with a non-zero
 * status. Each figure is printed as one line
 *   BENCH <key> <value> <unit>
 * which scripts/bench.sh collects into its table and JSON.
 */
#ifndef BENCH_H
#define BENCH_H

#include "../vm/test_vm_daemon.h"

static inline double bench_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void bench_put(const char *key, double value, const char *unit)
{
	printf("BENCH %s %.6g %s\n", key, value, unit);
	fflush(stdout);
}

/* Seconds per timed run: argv[1] when given, else def. */
static inline double bench_secs(int argc, char **argv, double def)
{
	double s = argc > 1 ? atof(argv[1]) : def;

	return s > 0 ? s : def;
}

/* A frame of the benchmark: classic 8 bytes or FD 64 bytes. */
static inline struct cframe bench_frame(bool fd, uint32_t seq)
{
	return cf_make(0x100 + (seq & 0xff), fd ? CFRAME_FD : 0, fd ? 64 : 8, (uint8_t)seq);
}

#endif
