/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The backend and the device in this process (the frontend client's
 * backend-in-a-thread) with a port that only counts, driven by the guest
 * driver (gdrv) over a real unix socket: the daemon's datapath without
 * CAN. Runs on any host, so it is the smoke test of the benchmarks (label
 * bench, tiny counts, no assertion on speed) and the program scripts/bench.sh
 * runs under callgrind for instructions per frame.
 *
 * Usage: bench_inproc [--smoke] [--frames N] [--tx|--rx] [--no-event-idx]
 * Prints BENCH lines: frames per second here (host, not a VM figure).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bthread.h"
#include "guest_driver.h"
#include "device.h"

#define T_MS 10000 /* guard against hangs only */
#define RX_BATCH 64

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "bench_inproc: %s:%d: check failed: %s\n", __FILE__,       \
				__LINE__, #cond);                                                  \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

struct count_port {
	uint64_t sent; /* written in the loop thread, read after bthread_stop */
};

static int cp_send(void *p, const struct cframe *f, unsigned int n, int *res)
{
	struct count_port *c = p;

	(void)f;
	for (unsigned int i = 0; i < n; i++)
		res[i] = 0;
	__atomic_add_fetch(&c->sent, n, __ATOMIC_RELAXED);
	return 0;
}

static int cp_ok(void *p)
{
	(void)p;
	return 0;
}

static int cp_confirm(void *p, bool on)
{
	(void)p;
	(void)on;
	return 0;
}

static const struct device_port_ops cp_ops = {
    .send = cp_send, .start = cp_ok, .stop = cp_ok, .set_tx_confirm = cp_confirm};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct cframe frame(bool fd, uint32_t seq)
{
	struct cframe f;

	memset(&f, 0, sizeof(f));
	f.id = 0x100 + (seq & 0xff);
	f.flags = fd ? CFRAME_FD : 0;
	f.len = fd ? 64 : 8;
	for (unsigned int i = 0; i < f.len; i++)
		f.data[i] = (uint8_t)(seq + i);
	return f;
}

/* Keep the Txq full until n completions came back. */
static void run_tx(struct gdrv *c, bool fd, unsigned long n)
{
	unsigned long sent = 0, done = 0;

	while (done < n) {
		uint8_t res = 0;
		int tok, r = 0;

		while (sent < n) {
			struct cframe f = frame(fd, (uint32_t)sent);

			r = gdrv_tx(c, &f);
			if (r < 0)
				break;
			sent++;
		}
		CHECK(r >= 0 || r == -ENOSPC);
		r = gdrv_tx_wait(c, T_MS, &tok, &res);
		if (r != 1)
			fprintf(stderr, "bench_inproc: no TX completion (%d) after %lu of %lu\n", r,
				done, n);
		CHECK(r == 1);
		do {
			CHECK(res == VIRTIO_CAN_RESULT_OK);
			done++;
		} while (gdrv_tx_wait(c, 0, &tok, &res) == 1);
	}
}

/* Hand the device frames from "the bus" in batches; the guest takes each. */
static void run_rx(struct bthread *t, struct device *dev, struct gdrv *c, bool fd, unsigned long n)
{
	struct cframe in[RX_BATCH];
	unsigned int k;
	unsigned long got = 0;

	while (got < n) {
		k = (unsigned int)(n - got < RX_BATCH ? n - got : RX_BATCH);
		for (unsigned int i = 0; i < k; i++)
			in[i] = frame(fd, (uint32_t)(got + i));
		CHECK(bthread_device_rx(t, dev, in, k) == 0);
		for (unsigned int i = 0; i < k; i++) {
			struct cframe f;
			int r = gdrv_rx(c, &f, T_MS);

			if (r != 1)
				fprintf(stderr, "bench_inproc: no RX frame (%d) after %lu of %lu\n",
					r, got, n);
			CHECK(r == 1);
			CHECK(f.id == in[i].id && f.len == in[i].len);
			CHECK(memcmp(f.data, in[i].data, f.len) == 0);
		}
		got += k;
	}
}

int main(int argc, char **argv)
{
	struct device_config cfg = {
	    .name = "bench", .fd = true, .rx_backlog = 1024, .tx_ack_timeout_ms = 1000};
	unsigned long frames = 100000;
	bool tx = true, rx = true, evidx = true;
	struct count_port port = {0};
	struct device_stats st;
	struct gdrv_opts o;
	struct gdrv *c = NULL;
	struct device *dev = NULL;
	struct bthread *t = NULL;
	double t0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--smoke") == 0)
			frames = 1000;
		else if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc)
			frames = strtoul(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--tx") == 0)
			rx = false;
		else if (strcmp(argv[i], "--rx") == 0)
			tx = false;
		else if (strcmp(argv[i], "--no-event-idx") == 0)
			evidx = false;
		else {
			fprintf(stderr, "usage: bench_inproc [--smoke] [--frames N] [--tx|--rx] "
					"[--no-event-idx]\n");
			return 2;
		}
	}
	CHECK(frames > 0);
	CHECK(device_new(&dev, &cfg, &cp_ops, &port) == 0);
	CHECK(bthread_start(&t, device_vu_device(dev)) == 0);
	gdrv_opts_default(&o);
	o.can_features &= ~(1ull << VIRTIO_CAN_F_LATE_TX_ACK);
	if (!evidx)
		o.start.features &= ~(FE_F_EVENT_IDX | FE_F_INDIRECT_DESC);
	CHECK(gdrv_open(&c, bthread_path(t), &o, T_MS) == 0);
	CHECK(gdrv_start(c, T_MS) == VIRTIO_CAN_RESULT_OK);

	for (int fd = 0; fd <= 1; fd++) {
		const char *kind = fd ? "fd64" : "classic8";

		if (tx) {
			t0 = now_s();
			run_tx(c, fd, frames);
			printf("BENCH inproc_tx_%s %.6g frames/s\n", kind,
			       (double)frames / (now_s() - t0));
		}
		if (rx) {
			t0 = now_s();
			run_rx(t, dev, c, fd, frames);
			printf("BENCH inproc_rx_%s %.6g frames/s\n", kind,
			       (double)frames / (now_s() - t0));
		}
	}
	gdrv_close(c);
	bthread_stop(t);
	device_get_stats(dev, &st);
	device_free(dev);
	/* Every frame accounted for: the smoke test's real check. */
	CHECK(st.tx_ok == (tx ? 2 * frames : 0) && port.sent == st.tx_ok);
	CHECK(st.rx_delivered == (rx ? 2 * frames : 0));
	printf("bench_inproc: %lu frames each way and kind, all accounted for\n", frames);
	return 0;
}
