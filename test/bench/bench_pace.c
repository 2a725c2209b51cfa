/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * --bitrate on real vcan (VM rig): the guest keeps its Txq full, the daemon
 * paces it to 125 kbit/s, 500 kbit/s and 1 Mbit/s; a raw peer on vcan0
 * takes the frames with kernel timestamps. Prints the frame rate seen on
 * the bus against the theoretical rate of that bus for the same frame
 * (cbits), and the spread of the gaps between frames (the daemon books up
 * up to DEVICE_PACE_AHEAD_NS ahead, so frames leave in bursts).
 *
 * Usage: bench_pace [SECONDS per rate, default 3]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench.h"

#include "cbits.h"

/* Frames booked ahead at the start (a whole window at once): not steady state. */
#define SKIP 100

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Frames from s with their kernel receive times, in batches: the reader
 * sleeps 2 ms between batches (one recvmmsg for up to 64 at a time) so that
 * it takes the CPU 500 times a second instead of once per frame (on the
 * rig's two vCPUs a reader woken per frame is what limits the sender); the
 * kernel timestamps stay exact, and 2 ms of a 1 Mbit/s bus (about 18
 * frames) fit the socket's receive buffer. Stops after 500 ms without a
 * frame. The count.
 */
static unsigned int recv_all(int s, uint64_t *ts, unsigned int cap)
{
	enum { B = 64 };
	static struct canfd_frame cf[B];
	static char ctl[B][CMSG_SPACE(sizeof(struct timespec))];
	static struct iovec iov[B];
	static struct mmsghdr mm[B];
	unsigned int n = 0, idle_ms = 0;

	while (n < cap && idle_ms < 500) {
		int got;

		for (unsigned int i = 0; i < B; i++) {
			iov[i] = (struct iovec){.iov_base = &cf[i], .iov_len = sizeof(cf[i])};
			memset(&mm[i], 0, sizeof(mm[i]));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_control = ctl[i];
			mm[i].msg_hdr.msg_controllen = sizeof(ctl[i]);
		}
		got = recvmmsg(s, mm, B, MSG_DONTWAIT, NULL);
		if (got <= 0) {
			assert_true(got == 0 || errno == EAGAIN);
			vd_sleep_ms(2);
			idle_ms += 2;
			continue;
		}
		idle_ms = 0;
		for (int i = 0; i < got && n < cap; i++) {
			struct cmsghdr *c = CMSG_FIRSTHDR(&mm[i].msg_hdr);

			assert_false(mm[i].msg_hdr.msg_flags & MSG_CTRUNC);
			for (; c; c = CMSG_NXTHDR(&mm[i].msg_hdr, c)) {
				if (c->cmsg_level == SOL_SOCKET &&
				    c->cmsg_type == SCM_TIMESTAMPNS) {
					struct timespec t;

					memcpy(&t, CMSG_DATA(c), sizeof(t));
					ts[n++] =
					    (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
				}
			}
		}
	}
	return n;
}

struct pacer {
	struct gdrv *c;
	double secs;
	unsigned long long done;
	int err;
	pthread_t thread;
};

static void *guest_main(void *arg)
{
	struct pacer *p = arg;
	struct cframe f = cf_make(0x123, 0, 8, 0x11);
	struct bench_txflood fl;

	p->err = bench_guest_txflood(p->c, false, &f, p->secs, &fl);
	if (!p->err && fl.not_ok)
		p->err = EIO;
	p->done = fl.done;
	return NULL;
}

static void pace_run(uint32_t rate, double secs)
{
	static uint64_t ts[200000];
	struct cframe f = cf_make(0x123, 0, 8, 0x11);
	uint64_t frame_ns = rate ? cbits_frame_ns(&f, rate, 0) : 1, *gaps;
	char arg[32], key[64];
	struct pacer p = {.secs = secs};
	unsigned int n = 0, ng;
	double measured, theory;
	struct vd d;
	int s, one = 1;

	vd_init(&d);
	snprintf(arg, sizeof(arg), "--bitrate=%u", rate);
	/* rate 0: unpaced, the rig's own ceiling for this path. */
	vd_start(&d, "vcan0", "vcan0", rate ? arg : "-v", NULL);
	if (rate && !vd_log_has(&d, "paced by the daemon"))
		fail_msg("the daemon did not say that it paces on vcan");
	s = vd_peer_open("vcan0");
	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)), 0);
	p.c = vd_guest_open(&d, VD_NO_LATE_ACK);
	assert_int_equal(pthread_create(&p.thread, NULL, guest_main, &p), 0);
	n = recv_all(s, ts, sizeof(ts) / sizeof(ts[0]));
	assert_int_equal(pthread_join(p.thread, NULL), 0);
	if (p.err)
		fail_msg("guest: %s", strerror(p.err));
	assert_true(n > 2 * SKIP);
	/* Leave out the first frames (booked ahead at once): steady state only. */
	measured = (double)(n - SKIP - 1) * 1e9 / (double)(ts[n - 1] - ts[SKIP]);
	theory = rate ? 1e9 / (double)frame_ns : 0;
	gaps = calloc(n, sizeof(*gaps));
	assert_non_null(gaps);
	for (unsigned int i = SKIP + 1; i < n; i++)
		gaps[i - SKIP - 1] = ts[i] - ts[i - 1];
	ng = n - SKIP - 1;
	qsort(gaps, ng, sizeof(*gaps), cmp_u64);
	printf("pace %u bit/s: %u frames of %llu ns on the bus; %.1f frames/s against %.1f "
	       "(%.2f%%); gaps p1 %.1f us, p50 %.1f us, p99 %.1f us, max %.1f us\n",
	       rate, n, (unsigned long long)frame_ns, measured, theory,
	       theory > 0 ? 100.0 * (measured - theory) / theory : 0, (double)gaps[ng / 100] / 1e3,
	       (double)gaps[ng / 2] / 1e3, (double)gaps[ng * 99 / 100] / 1e3,
	       (double)gaps[ng - 1] / 1e3);
	snprintf(key, sizeof(key), "pace_%u_fps", rate);
	bench_put(key, measured, "frames/s");
	snprintf(key, sizeof(key), "pace_%u_theory_fps", rate);
	bench_put(key, theory, "frames/s");
	snprintf(key, sizeof(key), "pace_%u_ratio", rate);
	bench_put(key, theory > 0 ? measured / theory : 0, "x");
	snprintf(key, sizeof(key), "pace_%u_gap_p50", rate);
	bench_put(key, (double)gaps[ng / 2] / 1e3, "us");
	snprintf(key, sizeof(key), "pace_%u_gap_p99", rate);
	bench_put(key, (double)gaps[ng * 99 / 100] / 1e3, "us");
	/* Pacing is a ceiling: never faster than the bus (beyond clock noise). */
	if (rate && measured > theory * 1.02)
		fail_msg("%u bit/s: %.1f frames/s is faster than the bus's %.1f", rate, measured,
			 theory);
	free(gaps);
	gdrv_close(p.c);
	close(s);
	vd_stop(&d);
	vd_cleanup(&d);
}

static void run(void **state)
{
	static const uint32_t rates[] = {0, 125000, 500000, 1000000};
	double secs = bench_secs(bench_argc, bench_argv, 3.0);

	(void)state;
	for (unsigned int i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		pace_run(rates[i], secs);
}

BENCH_MAIN(run)
