/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Helpers of the benchmarks: figures, medians, floods from the bus and the guest. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench.h"

int bench_argc;
char **bench_argv;

double bench_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_daemon_cpu_s(const struct vd *d)
{
	return (double)vd_cpu_ticks(d) / (double)sysconf(_SC_CLK_TCK);
}

void bench_put(const char *key, double value, const char *unit)
{
	printf("BENCH %s %.6g %s\n", key, value, unit);
	fflush(stdout);
}

double bench_secs(int argc, char **argv, double def)
{
	double s = argc > 1 ? atof(argv[1]) : def;

	return s > 0 ? s : def;
}

int bench_reps(void)
{
	const char *e = getenv("BENCH_REPS");
	int n = e ? atoi(e) : 5;

	return n < 1 ? 1 : n > BENCH_MAX_REPS ? BENCH_MAX_REPS : n;
}

double bench_median(const double *v, int n)
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

double bench_put_runs(const char *key, const double *v, int n, const char *unit)
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

double bench_put_runsf(const double *v, int n, const char *unit, const char *fmt, ...)
{
	char key[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	return bench_put_runs(key, v, n, unit);
}

struct cframe bench_frame(bool fd, uint32_t seq)
{
	return cf_make(0x100 + (seq & 0xff), fd ? CFRAME_FD : 0, fd ? 64 : 8, (uint8_t)seq);
}

static void *bench_flood_main(void *arg)
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
		struct cframe m = vd_marker();
		struct canfd_frame mf = {.can_id = m.id, .len = m.len};

		memcpy(mf.data, m.data, m.len);
		if (!w->err && write(s, &mf, CAN_MTU) == CAN_MTU)
			w->markers++;
		else if (!w->err && errno != ENOBUFS)
			w->err = errno;
		vd_sleep_ms(50);
	}
	return NULL;
}

void bench_flood_start(struct bench_flood *w, const char *ifname, bool fd, double secs,
		       unsigned long long limit)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->secs = secs;
	w->limit = limit;
	w->sock = vd_peer_open(ifname);
	assert_int_equal(pthread_create(&w->thread, NULL, bench_flood_main, w), 0);
}

void bench_flood_join(struct bench_flood *w)
{
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(w->thread, NULL), 0);
	close(w->sock);
	if (w->err)
		fail_msg("flood writer: %s after %llu frames", strerror(w->err), w->written);
}

int bench_guest_txflood(struct gdrv *c, bool fd, const struct cframe *fixed, double secs,
			struct bench_txflood *out)
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
		if (gdrv_tx_wait(c, VD_WAIT_MS, &tok, &res) != 1)
			return ETIMEDOUT;
		do {
			out->done++;
			out->not_ok += res != VIRTIO_CAN_RESULT_OK;
		} while (gdrv_tx_wait(c, 0, &tok, &res) == 1);
		out->t = bench_now_s() - t0;
	} while (out->t < secs);
	while (gdrv_tx_pending(c)) {
		if (gdrv_tx_wait(c, VD_WAIT_MS, &tok, &res) != 1)
			return ETIMEDOUT;
		out->drained++;
		out->not_ok += res != VIRTIO_CAN_RESULT_OK;
	}
	return 0;
}

long bench_rss_private_kb(const struct vd *d)
{
	return vd_status_kb(d, "RssAnon") + vd_status_kb(d, "RssFile");
}

unsigned long long bench_rx_until_marker(struct gdrv *c)
{
	unsigned long long n = 0;
	struct cframe f;

	for (;;) {
		vd_guest_rx(c, &f);
		if (vd_is_marker(&f))
			return n;
		n++;
	}
}
