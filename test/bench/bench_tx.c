/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Guest -> bus throughput on real CAN (VM rig): the guest driver keeps the
 * Txq (256 entries) full against the real daemon on vcan0 and counts TX
 * completions per second, with EVENT_IDX + INDIRECT_DESC negotiated and
 * without, for classic 8-byte and FD 64-byte frames. Baselines, on the same
 * interface in the same rounds: a raw AF_CAN socket doing one write() per
 * frame, one sendmmsg() per 32, and that batched sender with its socket
 * also registered for reading (as the daemon's is).
 *
 * Usage: bench_tx [SECONDS per run, default 3]
 */
#define _GNU_SOURCE
#include <sys/epoll.h>

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench.h"

/* Frames per second written by one raw socket, one write() each. */
static double raw_write_rate(bool fd, double secs, double *cpu_us)
{
	int s = vd_peer_open("vcan0");
	struct canfd_frame cf;
	size_t size = fd ? CANFD_MTU : CAN_MTU;
	unsigned long long n = 0, nobufs = 0;
	double t0 = bench_now_s(), c0 = bench_thread_cpu_s(), t;

	memset(&cf, 0, sizeof(cf));
	cf.can_id = 0x100;
	cf.len = fd ? 64 : 8;
	do {
		/* Check the clock every 256 frames: the loop is the measurement. */
		for (unsigned int i = 0; i < 256; i++) {
			cf.data[0] = (uint8_t)n;
			if (write(s, &cf, size) == (ssize_t)size) {
				n++;
			} else {
				assert_int_equal(errno, ENOBUFS);
				nobufs++;
			}
		}
		t = bench_now_s() - t0;
	} while (t < secs);
	*cpu_us = (bench_thread_cpu_s() - c0) * 1e6 / (double)n;
	close(s);
	if (nobufs)
		printf("raw write: %llu ENOBUFS\n", nobufs);
	return (double)n / t;
}

/*
 * The real limit of this path on this kernel: one sendmmsg() per 32 frames
 * (the daemon's own batch), same frames, same interface. With listening,
 * the socket is also in an epoll set for reading, as the daemon's one
 * socket for both directions of an interface must be: the kernel then
 * wakes that set's wait queue entry for every frame it frees (the socket
 * has write space again), a cost no send-only socket pays.
 */
static double raw_sendmmsg_rate(bool fd, bool listening, double secs, double *cpu_us)
{
	enum { B = 32 };
	int s = vd_peer_open("vcan0"), ep = -1;
	struct canfd_frame cf[B];
	struct iovec iov[B];
	struct mmsghdr mm[B];
	size_t size = fd ? CANFD_MTU : CAN_MTU;
	unsigned long long n = 0, nobufs = 0;
	double t0 = bench_now_s(), c0 = bench_thread_cpu_s(), t;

	if (listening) {
		struct epoll_event ev = {.events = EPOLLIN};

		ep = epoll_create1(EPOLL_CLOEXEC);
		assert_true(ep >= 0);
		assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev), 0);
	}
	memset(cf, 0, sizeof(cf));
	memset(mm, 0, sizeof(mm));
	for (unsigned int i = 0; i < B; i++) {
		cf[i].can_id = 0x100;
		cf[i].len = fd ? 64 : 8;
		iov[i] = (struct iovec){.iov_base = &cf[i], .iov_len = size};
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	do {
		for (unsigned int k = 0; k < 8; k++) {
			int r;

			for (unsigned int i = 0; i < B; i++)
				cf[i].data[0] = (uint8_t)(n + i);
			r = sendmmsg(s, mm, B, 0);
			if (r > 0) {
				n += (unsigned long long)r;
			} else {
				assert_int_equal(errno, ENOBUFS);
				nobufs++;
			}
		}
		t = bench_now_s() - t0;
	} while (t < secs);
	*cpu_us = (bench_thread_cpu_s() - c0) * 1e6 / (double)n;
	close(s);
	if (ep >= 0)
		close(ep);
	if (nobufs)
		printf("raw sendmmsg: %llu ENOBUFS\n", nobufs);
	return (double)n / t;
}

/* TX completions per second of the daemon with the Txq kept full. */
static double guest_tx_rate(bool fd, bool evidx_indirect, double secs, const char *key,
			    unsigned long long *not_ok_sum, double *cpu_us)
{
	struct vd d;
	struct gdrv_opts o;
	struct gdrv *c = NULL;
	struct vd_stats st;
	struct bench_txflood fl;
	double c0;

	vd_init(&d);
	vd_start(&d, "vcan0", "vcan0", NULL);
	gdrv_opts_default(&o);
	o.can_features = VD_NO_LATE_ACK;
	o.start.queue_size = 256;
	if (!evidx_indirect)
		o.start.features &= ~(FE_F_EVENT_IDX | FE_F_INDIRECT_DESC);
	assert_int_equal(gdrv_open(&c, d.sock, &o, VD_WAIT_MS), 0);
	assert_int_equal(!!(gdrv_features(c) & FE_F_EVENT_IDX), evidx_indirect);
	assert_int_equal(!!(gdrv_features(c) & FE_F_INDIRECT_DESC), evidx_indirect);
	assert_int_equal(gdrv_start(c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);

	c0 = bench_daemon_cpu_s(&d);
	assert_int_equal(bench_guest_txflood(c, fd, NULL, secs, &fl), 0);
	/* The CPU ran until the last completion, the drained ones included. */
	*cpu_us = (bench_daemon_cpu_s(&d) - c0) * 1e6 / (double)(fl.done + fl.drained);
	vd_stats(&d, &st);
	printf("%s: %llu completions in %.2f s (%llu NOT_OK); daemon tx ok %llu, failed %llu\n",
	       key, fl.done, fl.t, fl.not_ok, st.tx_ok, st.tx_failed);
	*not_ok_sum += fl.not_ok;
	gdrv_close(c);
	vd_stop(&d);
	vd_cleanup(&d);
	return (double)fl.done / fl.t;
}

static void run(void **state)
{
	double secs = bench_secs(bench_argc, bench_argv, 3.0);
	int reps = bench_reps();

	(void)state;
	for (int fd = 0; fd <= 1; fd++) {
		const char *kind = fd ? "fd64" : "classic8";
		double base[BENCH_MAX_REPS], base_cpu[BENCH_MAX_REPS];
		double mmsg[BENCH_MAX_REPS], mmsg_cpu[BENCH_MAX_REPS];
		double lmmsg[BENCH_MAX_REPS], lmmsg_cpu[BENCH_MAX_REPS];
		double rate[2][BENCH_MAX_REPS], cpu[2][BENCH_MAX_REPS];
		unsigned long long not_ok[2] = {0, 0};
		char key[96];

		/*
		 * Baseline and daemon runs alternate, so drift hits both alike;
		 * every ratio is taken within one round, then the median of them.
		 */
		for (int r = 0; r < reps; r++) {
			/*
			 * In an order that puts each daemon run next to the
			 * baselines it is compared with (the host's load comes in
			 * phases of seconds): write, no EVENT_IDX, sendmmsg, EVENT_IDX
			 * (as the Linux driver negotiates), listening sendmmsg.
			 */
			base[r] = raw_write_rate(fd, secs, &base_cpu[r]);
			printf("tx_%s_raw_write: %.0f frames/s\n", kind, base[r]);
			snprintf(key, sizeof(key), "tx_%s_noevidx", kind);
			rate[0][r] = guest_tx_rate(fd, false, secs, key, &not_ok[0], &cpu[0][r]);
			mmsg[r] = raw_sendmmsg_rate(fd, false, secs, &mmsg_cpu[r]);
			printf("tx_%s_raw_sendmmsg: %.0f frames/s\n", kind, mmsg[r]);
			snprintf(key, sizeof(key), "tx_%s_evidx", kind);
			rate[1][r] = guest_tx_rate(fd, true, secs, key, &not_ok[1], &cpu[1][r]);
			lmmsg[r] = raw_sendmmsg_rate(fd, true, secs, &lmmsg_cpu[r]);
			printf("tx_%s_raw_sendmmsg_listening: %.0f frames/s\n", kind, lmmsg[r]);
		}
		bench_put_runsf(base, reps, "frames/s", "tx_%s_raw_write", kind);
		bench_put_runsf(base_cpu, reps, "us/frame", "tx_%s_raw_write_cpu", kind);
		bench_put_runsf(mmsg, reps, "frames/s", "tx_%s_raw_sendmmsg", kind);
		bench_put_runsf(mmsg_cpu, reps, "us/frame", "tx_%s_raw_sendmmsg_cpu", kind);
		bench_put_runsf(lmmsg, reps, "frames/s", "tx_%s_raw_sendmmsg_listening", kind);
		bench_put_runsf(lmmsg_cpu, reps, "us/frame", "tx_%s_raw_sendmmsg_listening_cpu",
				kind);
		for (int ev = 1; ev >= 0; ev--) {
			const char *e = ev ? "evidx" : "noevidx";
			double vs_write[BENCH_MAX_REPS], vs_mmsg[BENCH_MAX_REPS];
			double cpu_vs_mmsg[BENCH_MAX_REPS], vs_lmmsg[BENCH_MAX_REPS];
			double cpu_vs_lmmsg[BENCH_MAX_REPS];

			for (int r = 0; r < reps; r++) {
				vs_write[r] = rate[ev][r] / base[r];
				/* Against the batched sender: the path's real limit. */
				vs_mmsg[r] = rate[ev][r] / mmsg[r];
				/* Daemon CPU per frame against the batched sender's. */
				cpu_vs_mmsg[r] = cpu[ev][r] / mmsg_cpu[r];
				/* And against the batched sender that also listens. */
				vs_lmmsg[r] = rate[ev][r] / lmmsg[r];
				cpu_vs_lmmsg[r] = cpu[ev][r] / lmmsg_cpu[r];
			}
			bench_put_runsf(rate[ev], reps, "frames/s", "tx_%s_%s", kind, e);
			bench_put_runsf(vs_write, reps, "x", "tx_%s_%s_ratio", kind, e);
			bench_put_runsf(vs_mmsg, reps, "x", "tx_%s_%s_vs_sendmmsg", kind, e);
			bench_put_runsf(cpu[ev], reps, "us/frame", "tx_%s_%s_daemon_cpu", kind, e);
			bench_put_runsf(cpu_vs_mmsg, reps, "x", "tx_%s_%s_cpu_vs_sendmmsg", kind,
					e);
			bench_put_runsf(vs_lmmsg, reps, "x", "tx_%s_%s_vs_sendmmsg_listening", kind,
					e);
			bench_put_runsf(cpu_vs_lmmsg, reps, "x",
					"tx_%s_%s_cpu_vs_sendmmsg_listening", kind, e);
			snprintf(key, sizeof(key), "tx_%s_%s_not_ok", kind, e);
			bench_put(key, (double)not_ok[ev], "frames");
		}
	}
}

BENCH_MAIN(run)
