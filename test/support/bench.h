/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Helpers of the benchmarks (test/bench/bench_*.c, run by scripts/bench.sh).
 * They reuse the real-CAN test helpers (vd.h: the daemon under test, the
 * guest driver, raw peers); a failed check ends the program with a non-zero
 * status. Each figure is printed as one line
 *   BENCH <key> <value> <unit>
 * which scripts/bench.sh collects into its table and JSON.
 */
#ifndef BENCH_H
#define BENCH_H

#include <pthread.h>
#include <stdbool.h>

#include "vd.h"

double bench_now_s(void);

/* CPU seconds of this thread (the raw-socket baselines run in one thread). */
double bench_thread_cpu_s(void);

/* CPU seconds the daemon used so far (user + system, in clock ticks). */
double bench_daemon_cpu_s(const struct vd *d);

void bench_put(const char *key, double value, const char *unit);

/* Seconds per timed run: argv[1] when given, else def. */
double bench_secs(int argc, char **argv, double def);

/*
 * Repetitions of each timed run (BENCH_REPS, default 5): figures are medians,
 * each with its spread, of runs that alternate with their baseline's.
 */
#define BENCH_MAX_REPS 15
int bench_reps(void);

double bench_median(const double *v, int n);

/*
 * The median of n runs as <key>, and their spread as <key>_spread: the
 * range (max - min) in percent of the median. Returns the median.
 */
double bench_put_runs(const char *key, const double *v, int n, const char *unit);

/* bench_put_runs under a key given as a printf format. */
double bench_put_runsf(const double *v, int n, const char *unit, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * A benchmark's body runs as one cmocka test, so that a failed check is
 * reported with its place and the program exits non-zero.
 */
extern int bench_argc;
extern char **bench_argv;

#define BENCH_MAIN(body)                                                                           \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		const struct CMUnitTest t[] = {cmocka_unit_test(body)};                            \
                                                                                                   \
		bench_argc = argc;                                                                 \
		bench_argv = argv;                                                                 \
		vd_skip_without_vcan();                                                            \
		return cmocka_run_group_tests_name(#body, t, NULL, NULL);                          \
	}

/* A frame of the benchmark: classic 8 bytes or FD 64 bytes. */
struct cframe bench_frame(bool fd, uint32_t seq);

/*
 * A flood from the bus: a thread writing frames on an interface through its
 * own raw socket, one write() each, as fast as the kernel takes them, for
 * `secs` seconds or `limit` frames (whichever comes first; 0 = no limit).
 * Then it sends the marker frame again every 50 ms until the receiver sets
 * `stop`: a marker can be dropped like any frame in a flood.
 */
struct bench_flood {
	int sock; /* opened and closed by the test thread */
	bool fd;
	double secs;
	unsigned long long limit;
	pthread_t thread;
	/* Results, read after bench_flood_join(). */
	unsigned long long written, nobufs, markers;
	double t_start, t_end;
	int err;  /* a write failed otherwise than ENOBUFS (no cmocka calls in the thread) */
	int stop; /* atomic: the receiver saw a marker */
};

void bench_flood_start(struct bench_flood *w, const char *ifname, bool fd, double secs,
		       unsigned long long limit);

void bench_flood_join(struct bench_flood *w);

/* Frames the guest receives before the marker (which it then has taken too). */
unsigned long long bench_rx_until_marker(struct gdrv *c);

/*
 * A guest flooding its Txq for secs: fill the ring, take back every
 * completion there is, again; then wait for the rest. Frames are `fixed`,
 * or bench_frame(fd, n) for the n-th when fixed is NULL. No cmocka calls:
 * threads run it. Returns 0, or a positive errno (ETIMEDOUT: no completion
 * in VD_WAIT_MS; the queueing error otherwise) with the counts so far.
 */
struct bench_txflood {
	unsigned long long done;    /* completions within secs */
	unsigned long long drained; /* completions after it */
	unsigned long long not_ok;  /* of both, the ones that were not OK */
	double t;		    /* when the last completion within secs came */
};

int bench_guest_txflood(struct gdrv *c, bool fd, const struct cframe *fixed, double secs,
			struct bench_txflood *out);

/* The daemon's RSS without shared memory (guest memory is shared), in kB. */
long bench_rss_private_kb(const struct vd *d);

#endif
