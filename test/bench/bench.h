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

#include <pthread.h>
#include <sched.h>

#include "../vm/test_vm_daemon.h"

static inline double bench_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this thread (the raw-socket baselines run in one thread). */
static inline double bench_thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds the daemon used so far (user + system, in clock ticks). */
static inline double bench_daemon_cpu_s(const struct vd *d)
{
	return (double)vd_cpu_ticks(d) / (double)sysconf(_SC_CLK_TCK);
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

/*
 * Repetitions of each timed run (BENCH_REPS, default 5): figures are medians,
 * each with its spread, of runs that alternate with their baseline's.
 */
#define BENCH_MAX_REPS 15
static inline int bench_reps(void)
{
	const char *e = getenv("BENCH_REPS");
	int n = e ? atoi(e) : 5;

	return n < 1 ? 1 : n > BENCH_MAX_REPS ? BENCH_MAX_REPS : n;
}

static inline double bench_median(const double *v, int n)
{
	double s[BENCH_MAX_REPS];

	memcpy(s, v, (size_t)n * sizeof(*v));
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
			double t = s[j];

			s[j] = s[j - 1];
			s[j - 1] = t;
		}
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/*
 * The median of n runs as <key>, and their spread as <key>_spread: the
 * range (max - min) in percent of the median. Returns the median.
 */
static inline double bench_put_runs(const char *key, const double *v, int n, const char *unit)
{
	double m = bench_median(v, n), lo = v[0], hi = v[0];
	char k[128];

	for (int i = 1; i < n; i++) {
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	printf("%s: median %.4g of %d runs, min %.4g, max %.4g %s\n", key, m, n, lo, hi, unit);
	bench_put(key, m, unit);
	snprintf(k, sizeof(k), "%s_spread", key);
	bench_put(k, m != 0 ? (hi - lo) * 100.0 / m : 0, "%");
	return m;
}

/* bench_put_runs under a key given as a printf format. */
__attribute__((format(printf, 4, 5))) static inline double
bench_put_runsf(const double *v, int n, const char *unit, const char *fmt, ...)
{
	char key[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	return bench_put_runs(key, v, n, unit);
}

/*
 * A benchmark's body runs as one cmocka test, so that a failed check is
 * reported with its place and the program exits non-zero.
 */
static int bench_argc;
static char **bench_argv;

#define BENCH_MAIN(body)                                                                           \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		const struct CMUnitTest t[] = {cmocka_unit_test(body)};                            \
                                                                                                   \
		bench_argc = argc;                                                                 \
		bench_argv = argv;                                                                 \
		skip_without_vcan();                                                               \
		return cmocka_run_group_tests_name(#body, t, NULL, NULL);                          \
	}

/* A frame of the benchmark: classic 8 bytes or FD 64 bytes. */
static inline struct cframe bench_frame(bool fd, uint32_t seq)
{
	return cf_make(0x100 + (seq & 0xff), fd ? CFRAME_FD : 0, fd ? 64 : 8, (uint8_t)seq);
}

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

static inline void *bench_flood_main(void *arg)
{
	struct bench_flood *w = arg;
	int s = w->sock;
	struct canfd_frame cf;
	size_t size = w->fd ? CANFD_MTU : CAN_MTU;
	double t;

	memset(&cf, 0, sizeof(cf));
	cf.can_id = 0x100;
	cf.len = w->fd ? 64 : 8;
	w->t_start = bench_now_s();
	do {
		for (unsigned int i = 0; i < 256; i++) {
			cf.data[0] = (uint8_t)w->written;
			if (write(s, &cf, size) == (ssize_t)size) {
				w->written++;
			} else if (errno == ENOBUFS) {
				/* The socket's send queue is full: let the readers run. */
				w->nobufs++;
				sched_yield();
			} else {
				w->err = errno;
				break;
			}
			if (w->limit && w->written >= w->limit)
				break;
		}
		t = bench_now_s() - w->t_start;
	} while (!w->err && t < w->secs && (!w->limit || w->written < w->limit));
	w->t_end = bench_now_s();
	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		struct cframe m = cf_marker();
		struct canfd_frame mf = {.can_id = m.id, .len = m.len};

		memcpy(mf.data, m.data, m.len);
		if (!w->err && write(s, &mf, CAN_MTU) == CAN_MTU)
			w->markers++;
		else if (!w->err && errno != ENOBUFS)
			w->err = errno;
		sleep_ms(50);
	}
	return NULL;
}

static inline void bench_flood_start(struct bench_flood *w, const char *ifname, bool fd,
				     double secs, unsigned long long limit)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->secs = secs;
	w->limit = limit;
	w->sock = peer_open(ifname);
	assert_int_equal(pthread_create(&w->thread, NULL, bench_flood_main, w), 0);
}

static inline void bench_flood_join(struct bench_flood *w)
{
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(w->thread, NULL), 0);
	close(w->sock);
	if (w->err)
		fail_msg("flood writer: %s after %llu frames", strerror(w->err), w->written);
}

/*
 * A guest flooding its Txq for secs: fill the ring, take back every
 * completion there is, again; then wait for the rest. Frames are `fixed`,
 * or bench_frame(fd, n) for the n-th when fixed is NULL. No cmocka calls:
 * threads run it. Returns 0, or a positive errno (ETIMEDOUT: no completion
 * in WAIT_MS; the queueing error otherwise) with the counts so far.
 */
struct bench_txflood {
	unsigned long long done;    /* completions within secs */
	unsigned long long drained; /* completions after it */
	unsigned long long not_ok;  /* of both, the ones that were not OK */
	double t;		    /* when the last completion within secs came */
};

static inline int bench_guest_txflood(struct gdrv *c, bool fd, const struct cframe *fixed,
				      double secs, struct bench_txflood *out)
{
	unsigned long long sent = 0;
	double t0 = bench_now_s();
	uint8_t res = 0;
	int tok, r;

	memset(out, 0, sizeof(*out));
	do {
		struct cframe f = fixed ? *fixed : bench_frame(fd, (uint32_t)sent);

		while ((r = gdrv_tx(c, &f)) >= 0) {
			sent++;
			if (!fixed)
				f = bench_frame(fd, (uint32_t)sent);
		}
		if (r != -ENOSPC)
			return -r;
		if (gdrv_tx_wait(c, WAIT_MS, &tok, &res) != 1)
			return ETIMEDOUT;
		do {
			out->done++;
			out->not_ok += res != VIRTIO_CAN_RESULT_OK;
		} while (gdrv_tx_wait(c, 0, &tok, &res) == 1);
		out->t = bench_now_s() - t0;
	} while (out->t < secs);
	while (gdrv_tx_pending(c)) {
		if (gdrv_tx_wait(c, WAIT_MS, &tok, &res) != 1)
			return ETIMEDOUT;
		out->drained++;
		out->not_ok += res != VIRTIO_CAN_RESULT_OK;
	}
	return 0;
}

/* The daemon's RSS without shared memory (guest memory is shared), in kB. */
static inline long bench_rss_private_kb(const struct vd *d)
{
	return vd_status_kb(d, "RssAnon") + vd_status_kb(d, "RssFile");
}

#endif
