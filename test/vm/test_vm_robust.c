/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Robustness on real CAN (VM rig): the daemon binary under a flood from the
 * bus, a frontend that dies mid-traffic and the next one that takes over,
 * SIGTERM with a live session.
 *
 * - Flood: 100,000 frames written on vcan0 as fast as the kernel takes them
 *   while the guest takes every frame and reposts its buffer. Every frame
 *   written is delivered to the guest or counted as dropped (by the daemon:
 *   backlog full, socket buffer full; or by the network stack before any
 *   socket, which no reader can see), the guest gets exactly what the
 *   daemon says it delivered, in bus order, and the daemon's RSS stays put.
 * - Frontend killed: a guest in a child process, with traffic both ways,
 *   gets SIGKILL; the same daemon lets go of it (fds, guest memory) and
 *   serves the next guest, both ways, with nothing stale in between.
 * - SIGTERM during traffic: prompt exit 0, socket removed, counters printed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "vd.h"

#define FLOOD_N 100000u
#define WARMUP_N 5000u
#define RSS_BOUND_KB 1024
#define FLOOD_ID 0x123u
#define SYNC_ID 0x7feu	   /* sync frames: their seq numbers them */
#define OLD_TX_ID 0x300u   /* guest -> bus, the frontend that gets killed */
#define OLD_RX_ID 0x400u   /* bus -> guest, while that frontend lives */
#define NEW_TX_ID 0x500u   /* guest -> bus, the next frontend */
#define NEW_RX_ID 0x600u   /* bus -> guest, the next frontend */
#define TERM_BOUND_MS 2000 /* "prompt" exit after SIGTERM, TCG included */

/* ---- frames with a sequence number --------------------------------------- */

/* 8 bytes: le32 seq, then its complement (a torn or mixed-up frame shows). */
static void seq_fill(uint8_t data[8], uint32_t seq)
{
	uint32_t le = htole32(seq), inv = htole32(~seq);

	memcpy(data, &le, 4);
	memcpy(data + 4, &inv, 4);
}

static bool seq_get(const uint8_t *data, uint8_t len, uint32_t *seq)
{
	uint32_t le, inv;

	if (len != 8)
		return false;
	memcpy(&le, data, 4);
	memcpy(&inv, data + 4, 4);
	*seq = le32toh(le);
	return le32toh(inv) == ~*seq;
}

static struct cframe seq_frame(uint32_t id, uint32_t seq)
{
	struct cframe f = cf_make(id, 0, 8, 0);

	seq_fill(f.data, seq);
	return f;
}

/* write() one classic frame; ENOBUFS (vcan's queue is full) is retried. */
static int raw_write(int s, uint32_t id, uint32_t seq, unsigned long long *nobufs)
{
	struct can_frame cf;

	memset(&cf, 0, sizeof(cf));
	cf.can_id = id;
	cf.len = 8;
	seq_fill(cf.data, seq);
	for (;;) {
		struct pollfd p = {.fd = s, .events = POLLOUT};
		ssize_t n = write(s, &cf, sizeof(cf));

		if (n == (ssize_t)sizeof(cf))
			return 0;
		if (n >= 0)
			return -EIO;
		if (errno == EINTR)
			continue;
		if (errno != ENOBUFS)
			return -errno;
		/* Not written: let the readers run, then try the same frame again. */
		(*nobufs)++;
		(void)poll(&p, 1, 10);
		sched_yield();
	}
}

/* ---- flood --------------------------------------------------------------- */

/* A writer thread: count frames FLOOD_ID, seq 0.. (no cmocka calls in here). */
struct flood {
	int s;
	unsigned int count; /* 0: until stop */
	pthread_t thread;
	int stop, done; /* atomics */
	unsigned long long written, nobufs;
	int err;
	uint64_t ms;
};

static void *flood_main(void *arg)
{
	struct flood *w = arg;
	uint64_t t0 = vd_now_ms();

	while ((!w->count || w->written < w->count) &&
	       !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		int r = raw_write(w->s, FLOOD_ID, (uint32_t)w->written, &w->nobufs);

		if (r < 0) {
			w->err = -r;
			break;
		}
		w->written++;
	}
	w->ms = vd_now_ms() - t0;
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void flood_start(struct flood *w, int s, unsigned int count)
{
	memset(w, 0, sizeof(*w));
	w->s = s;
	w->count = count;
	assert_int_equal(pthread_create(&w->thread, NULL, flood_main, w), 0);
}

static bool flood_done(struct flood *w)
{
	return __atomic_load_n(&w->done, __ATOMIC_ACQUIRE);
}

static void flood_join(struct flood *w)
{
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(w->thread, NULL), 0);
	if (w->err)
		fail_msg("flood writer: %s after %llu frames", strerror(w->err), w->written);
}

/* What the guest took: flood frames in strictly rising order, sync frames. */
struct rx_tally {
	unsigned long long flood, sync;
	long long last_seq;
	uint32_t last_sync;
};

static void tally(struct rx_tally *r, const struct cframe *f)
{
	uint32_t seq = 0;

	if (f->flags & (CFRAME_EXT | CFRAME_FD | CFRAME_RTR) || !seq_get(f->data, f->len, &seq))
		fail_msg("the guest got a frame %#x (flags %#x, len %u) nobody sent", f->id,
			 f->flags, f->len);
	if (f->id == FLOOD_ID) {
		/* Drops leave gaps; a duplicate or a reordering is a bug. */
		if ((long long)seq <= r->last_seq)
			fail_msg("flood frame %u after %lld", seq, r->last_seq);
		r->last_seq = seq;
		r->flood++;
	} else if (f->id == SYNC_ID) {
		if (seq <= r->last_sync)
			fail_msg("sync frame %u after %u", seq, r->last_sync);
		r->last_sync = seq;
		r->sync++;
	} else {
		fail_msg("the guest got a frame %#x nobody sent", f->id);
	}
}

/*
 * Sync frames from s until the guest takes the newest one sent: then
 * everything written before it has passed the daemon (delivered or
 * dropped) and nothing of ours is left anywhere. A sync frame can be
 * dropped like any other, so a new one goes out when none came in time.
 */
static void sync_guest(struct gdrv *c, int s, struct rx_tally *r, unsigned long long *sent)
{
	unsigned long long nobufs = 0;
	uint32_t want = r->last_sync;

	for (unsigned int tries = 0; tries < 50; tries++) {
		uint64_t end = vd_now_ms() + 500;
		struct cframe f;

		want++;
		assert_int_equal(raw_write(s, SYNC_ID, want, &nobufs), 0);
		(*sent)++;
		while (vd_now_ms() < end) {
			int ret = gdrv_rx(c, &f, (int)(end - vd_now_ms()));

			if (ret == -ETIMEDOUT)
				break;
			if (ret != 1)
				fail_msg("guest RX: %d", ret);
			tally(r, &f);
			if (r->last_sync == want)
				return;
		}
	}
	fail_msg("no sync frame reached the guest");
}

/*
 * Write n frames from a thread while the guest takes what comes, then sync.
 * Once, after stall_at frames, the guest stops taking (a busy guest) until
 * the daemon reports backlog-full drops: that path is counted too, and the
 * backlog ring is filled to the brim.
 */
static void flood_run(struct vd_fixture *t, unsigned int n, unsigned long long stall_at,
		      struct rx_tally *r, unsigned long long *sent, struct flood *w)
{
	bool stalled = false;
	struct cframe f;

	flood_start(w, t->peer, n);
	while (!flood_done(w)) {
		int ret;

		if (!stalled && r->flood >= stall_at) {
			struct vd_stats s0, s;
			uint64_t end = vd_now_ms() + VD_WAIT_MS;

			vd_stats(&t->d, &s0);
			do {
				if (vd_now_ms() >= end || flood_done(w))
					fail_msg("no backlog-full drop while the guest stalled");
				vd_sleep_ms(50);
				vd_stats(&t->d, &s);
			} while (s.rx_dropped_overflow == s0.rx_dropped_overflow);
			stalled = true;
		}
		ret = gdrv_rx(t->c, &f, 20);
		if (ret == 1)
			tally(r, &f);
		else if (ret != -ETIMEDOUT)
			fail_msg("guest RX during the flood: %d", ret);
	}
	flood_join(w);
	*sent += w->written;
	sync_guest(t->c, t->peer, r, sent);
}

static void test_flood_accounted(void **state)
{
	struct vd_fixture *t = *state;
	struct rx_tally r = {.last_seq = -1};
	unsigned long long sent = 0, sn0, sn1, delivered, dropped, stack, guest;
	struct vd_stats s0, s1;
	struct flood w;
	long rss0, rss1, anon0, anon1;
	uint64_t t0;

	vd_fixture_serve(t, "vcan0", "vcan0", VD_NO_LATE_ACK);

	/*
	 * A first burst touches everything the datapath uses (backlog ring,
	 * batch arrays, the guest's RX buffers): growth after that is a leak.
	 */
	flood_run(t, WARMUP_N, WARMUP_N / 5, &r, &sent, &w);
	vd_stats(&t->d, &s0);
	assert_true(s0.rx_kernel != ~0ull); /* the daemon reports kernel drops */
	rss0 = vd_status_kb(&t->d, "VmRSS");
	anon0 = vd_status_kb(&t->d, "RssAnon");
	sn0 = vd_softnet_drops();

	memset(&r, 0, sizeof(r));
	r.last_seq = -1;
	sent = 0;
	t0 = vd_now_ms();
	flood_run(t, FLOOD_N, FLOOD_N / 5, &r, &sent, &w);
	vd_stats(&t->d, &s1);
	sn1 = vd_softnet_drops();
	rss1 = vd_status_kb(&t->d, "VmRSS");
	anon1 = vd_status_kb(&t->d, "RssAnon");

	assert_int_equal(w.written, FLOOD_N);
	delivered = s1.rx_delivered - s0.rx_delivered;
	dropped = vd_rx_drops(&s1) - vd_rx_drops(&s0);
	stack = sn1 - sn0;
	guest = r.flood + r.sync;
	printf("flood: %llu frames written in %llu ms (%llu ENOBUFS retries) + %llu sync; "
	       "delivered %llu (guest took %llu flood + %llu sync), dropped by the daemon "
	       "%llu (backlog full %llu, socket buffer %llu, stopped %llu, type %llu, "
	       "small %llu), by the stack %llu; %llu ms in all\n",
	       w.written, (unsigned long long)w.ms, w.nobufs, sent - w.written, delivered, r.flood,
	       r.sync, dropped, s1.rx_dropped_overflow - s0.rx_dropped_overflow,
	       s1.rx_kernel - s0.rx_kernel, s1.rx_dropped_stopped - s0.rx_dropped_stopped,
	       s1.rx_dropped_type - s0.rx_dropped_type, s1.rx_dropped_small - s0.rx_dropped_small,
	       stack, (unsigned long long)(vd_now_ms() - t0));
	printf("flood: VmRSS %ld -> %ld kB, RssAnon %ld -> %ld kB\n", rss0, rss1, anon0, anon1);

	/* The guest got exactly what the daemon says it delivered. */
	assert_int_equal(guest, delivered);
	/* Every frame written is delivered or counted as dropped: no hole. */
	if (delivered + dropped + stack != sent)
		fail_msg("sent %llu != delivered %llu + dropped %llu + stack %llu", sent, delivered,
			 dropped, stack);
	assert_true(s1.rx_dropped_overflow >
		    s0.rx_dropped_overflow); /* the stall overflowed the backlog */
	/* Only overflow can drop here: started, classic frames, 80-byte buffers. */
	assert_int_equal(s1.rx_dropped_stopped - s0.rx_dropped_stopped, 0);
	assert_int_equal(s1.rx_dropped_type - s0.rx_dropped_type, 0);
	assert_int_equal(s1.rx_dropped_small - s0.rx_dropped_small, 0);
	/* The backlog is a fixed ring: no growth with the flood. */
	if (rss1 - rss0 > RSS_BOUND_KB)
		fail_msg("VmRSS grew by %ld kB during the flood", rss1 - rss0);

	/* And the daemon still works both ways. */
	vd_guest_marker_through(t->c, t->peer);
	vd_bus_marker_through(t->c, t->peer);
	vd_stop(&t->d);
	t->passed = true;
}

/* ---- frontend killed mid-traffic ----------------------------------------- */

/* Shared with the child: what its guest did so far. */
struct child_ctr {
	unsigned long long submitted, tx_ok, tx_not_ok, rx, rx_bad;
	int ready;
};

static unsigned long long ctr_get(unsigned long long *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

static void ctr_inc(unsigned long long *v)
{
	__atomic_add_fetch(v, 1, __ATOMIC_RELAXED);
}

/*
 * The doomed guest, in a child process: keep up to 64 OLD_TX_ID requests
 * in flight, take every bus frame. Never returns; no cmocka in here.
 */
static void __attribute__((noreturn)) child_guest(const char *sock, struct child_ctr *ctr)
{
	struct gdrv_opts o;
	struct gdrv *c = NULL;
	uint32_t seq = 0;

	gdrv_opts_default(&o);
	o.can_features = VD_NO_LATE_ACK;
	if (gdrv_open(&c, sock, &o, VD_WAIT_MS) < 0)
		_exit(10);
	if (gdrv_start(c, VD_WAIT_MS) != VIRTIO_CAN_RESULT_OK)
		_exit(11);
	__atomic_store_n(&ctr->ready, 1, __ATOMIC_RELEASE);
	for (;;) {
		struct cframe f;
		uint8_t result;
		int token, ret;

		while (gdrv_tx_pending(c) < 64) {
			f = seq_frame(OLD_TX_ID, seq);
			ret = gdrv_tx(c, &f);
			if (ret == -ENOSPC)
				break;
			if (ret < 0)
				_exit(12);
			seq++;
			ctr_inc(&ctr->submitted);
		}
		while ((ret = gdrv_tx_wait(c, 0, &token, &result)) == 1)
			ctr_inc(result == VIRTIO_CAN_RESULT_OK ? &ctr->tx_ok : &ctr->tx_not_ok);
		if (ret != -ETIMEDOUT)
			_exit(13);
		while ((ret = gdrv_rx(c, &f, 2)) == 1) {
			uint32_t v;

			ctr_inc(f.id == OLD_RX_ID && seq_get(f.data, f.len, &v) ? &ctr->rx
										: &ctr->rx_bad);
		}
		if (ret != -ETIMEDOUT)
			_exit(14);
	}
}

/* The old guests' frames on the bus: each guest's seq 0, 1, 2 ... once each. */
struct bus_tally {
	unsigned long long seen, total;
};

/*
 * The bus reader of this test: a peer with a big receive buffer (the test
 * may be descheduled while the daemon sends) that reports its own drops,
 * so a frame lost by the reader is never blamed on the daemon.
 */
static int tap_open(const char *ifname)
{
	int s = vd_peer_open(ifname), one = 1, size = 8 << 20;

	if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)), 0);
	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)), 0);
	return s;
}

/* One frame from the tap: its size, or 0 when none came in time. */
static size_t tap_recv(int s, struct canfd_frame *cf, int timeout_ms)
{
	struct pollfd pfd = {.fd = s, .events = POLLIN};
	char ctl[CMSG_SPACE(sizeof(uint32_t))];
	struct iovec iov = {.iov_base = cf, .iov_len = sizeof(*cf)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	struct cmsghdr *c;
	ssize_t n;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	n = recvmsg(s, &mh, MSG_DONTWAIT);
	if (n <= 0)
		return 0;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		uint32_t drops;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL)
			continue;
		memcpy(&drops, CMSG_DATA(c), sizeof(drops));
		if (drops)
			fail_msg("the test's own bus reader dropped %u frames (receive buffer "
				 "full): the check is void, not the daemon's fault",
				 drops);
	}
	return (size_t)n;
}

/* Take what is on the tap now; every frame must be the old guest's next one. */
static void take_old_frames(int s, struct bus_tally *b, int timeout_ms)
{
	struct canfd_frame cf;

	while (tap_recv(s, &cf, timeout_ms) > 0) {
		uint32_t seq = 0;

		if (cf.can_id != OLD_TX_ID || !seq_get(cf.data, cf.len, &seq))
			fail_msg("frame %#x on the bus from nobody", cf.can_id);
		if (seq != b->seen)
			fail_msg("old guest's frame %u on the bus, expected %llu", seq, b->seen);
		b->seen++;
		b->total++;
		timeout_ms = 0;
	}
}

static int count_guest_maps(const struct vd *d)
{
	static char buf[1 << 16];
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)d->pid);
	assert_true(vd_read_file(path, buf, sizeof(buf)) > 0);
	return (int)vd_count_str(buf, "memfd:fe-guest");
}

/* The daemon's fd table, for a failure message. */
static void print_fds(const struct vd *d)
{
	char dir[64], path[384], target[256];
	struct dirent *e;
	DIR *dp;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)d->pid);
	dp = opendir(dir);
	if (!dp)
		return;
	while ((e = readdir(dp))) {
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		printf("daemon fd %s -> %s\n", e->d_name, target);
	}
	closedir(dp);
}

/* What one round leaves for the next checks. */
struct kill_ctx {
	int fds_idle, fds_session;
	unsigned long long bus_sent, nobufs, stack0;
	struct bus_tally b;
};

static void write_old_rx(struct vd_fixture *t, struct kill_ctx *k)
{
	assert_int_equal(raw_write(t->peer, OLD_RX_ID, (uint32_t)k->bus_sent, &k->nobufs), 0);
	k->bus_sent++;
}

/*
 * One doomed guest: start it in a child, run traffic both ways until both
 * directions flowed, then SIGKILL it. frozen: the daemon is stopped first
 * and the child goes on queueing requests and the bus on sending frames,
 * so kicks, TX chains and bus frames are surely pending when it dies.
 */
static void kill_round(struct vd_fixture *t, struct kill_ctx *k, bool frozen)
{
	struct child_ctr *ctr;
	unsigned long long at_kill_tx, at_kill_rx, pending;
	struct vd_stats s;
	uint64_t end;
	int st, fds;

	ctr = mmap(NULL, sizeof(*ctr), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(ctr != MAP_FAILED);
	memset(ctr, 0, sizeof(*ctr));
	k->b.seen = 0;
	fflush(stdout);
	fflush(stderr);
	t->child = fork();
	assert_true(t->child >= 0);
	if (t->child == 0) {
		close(t->peer);
		child_guest(t->d.sock, ctr);
	}

	end = vd_now_ms() + VD_WAIT_MS;
	while (!__atomic_load_n(&ctr->ready, __ATOMIC_ACQUIRE)) {
		if (vd_now_ms() >= end || waitpid(t->child, &st, WNOHANG) != 0)
			fail_msg("the guest in the child did not start");
		vd_sleep_ms(5);
	}
	fds = vd_count_fds(&t->d);
	if (k->fds_session)
		assert_int_equal(fds, k->fds_session);
	k->fds_session = fds;
	assert_true(count_guest_maps(&t->d) > 0);
	while (ctr_get(&ctr->tx_ok) < 300 || ctr_get(&ctr->rx) < 100 || k->b.seen < 100) {
		if (vd_now_ms() >= end || waitpid(t->child, &st, WNOHANG) != 0)
			fail_msg("traffic did not flow: tx %llu, rx %llu, bus %llu",
				 ctr_get(&ctr->tx_ok), ctr_get(&ctr->rx), k->b.seen);
		write_old_rx(t, k);
		take_old_frames(t->peer, &k->b, 1);
	}

	if (frozen) {
		assert_int_equal(kill(t->d.pid, SIGSTOP), 0);
		/*
		 * Requests the frozen daemon has not taken, kicks it has not read:
		 * first let the child take what was completed before the stop.
		 */
		vd_sleep_ms(100);
		end = vd_now_ms() + VD_WAIT_MS;
		while (ctr_get(&ctr->submitted) - ctr_get(&ctr->tx_ok) < 32) {
			if (vd_now_ms() >= end)
				fail_msg("the child queued nothing while the daemon was stopped");
			vd_sleep_ms(5);
		}
		for (unsigned int i = 0; i < 100; i++)
			write_old_rx(t, k);
	}
	/* Gone without a word, in the middle of it. */
	pending = ctr_get(&ctr->submitted) - ctr_get(&ctr->tx_ok);
	at_kill_tx = ctr_get(&ctr->tx_ok);
	at_kill_rx = ctr_get(&ctr->rx);
	assert_int_equal(kill(t->child, SIGKILL), 0);
	if (frozen)
		assert_int_equal(kill(t->d.pid, SIGCONT), 0);
	for (unsigned int i = 0; i < 200; i++)
		write_old_rx(t, k);
	assert_int_equal(waitpid(t->child, &st, 0), t->child);
	t->child = 0;
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		fail_msg("the guest in the child ended by itself (status %#x)", st);
	assert_int_equal(ctr->rx_bad, 0);
	assert_int_equal(ctr->tx_not_ok, 0);
	munmap(ctr, sizeof(*ctr));

	/* The daemon lives on and lets go of it: no fd, no guest memory left. */
	end = vd_now_ms() + VD_WAIT_MS;
	while (vd_count_fds(&t->d) != k->fds_idle || count_guest_maps(&t->d) != 0) {
		if (!vd_running(&t->d)) {
			vd_print_log(&t->d);
			fail_msg("the daemon died with its frontend (status %d)", t->d.status);
		}
		if (vd_now_ms() >= end) {
			print_fds(&t->d);
			fail_msg("the daemon still holds %d fds (%d idle), %d guest mappings",
				 vd_count_fds(&t->d), k->fds_idle, count_guest_maps(&t->d));
		}
		take_old_frames(t->peer, &k->b, 0);
		vd_sleep_ms(10);
	}

	/*
	 * Once it let go nothing more of that guest can come: every request it
	 * completed OK went on the bus once, in order (and those it took after
	 * the kill too); every bus frame was delivered or dropped.
	 */
	take_old_frames(t->peer, &k->b, 0);
	end = vd_now_ms() + VD_WAIT_MS;
	for (;;) {
		vd_stats(&t->d, &s);
		if (s.rx_delivered + vd_rx_drops(&s) + (vd_softnet_drops() - k->stack0) ==
		    k->bus_sent)
			break;
		if (vd_now_ms() >= end)
			fail_msg("bus frames: %llu sent, %llu delivered + %llu dropped",
				 k->bus_sent, s.rx_delivered, vd_rx_drops(&s));
		vd_sleep_ms(50);
	}
	printf("%s kill: child had %llu TX OK (%llu pending), %llu RX; on the bus %llu of its "
	       "frames (daemon tx ok %llu in all); bus frames %llu: delivered %llu, dropped "
	       "stopped %llu, full %llu, kernel %llu\n",
	       frozen ? "frozen" : "live", at_kill_tx, pending, at_kill_rx, k->b.seen, s.tx_ok,
	       k->bus_sent, s.rx_delivered, s.rx_dropped_stopped, s.rx_dropped_overflow,
	       s.rx_kernel);
	assert_int_equal(k->b.total, s.tx_ok);
	assert_true(k->b.seen >= at_kill_tx);
	assert_int_equal(s.tx_failed + s.tx_rejected + s.tx_timeout, 0);
	assert_int_equal(s.rx_dropped_small + s.rx_dropped_type, 0);
}

static void test_frontend_killed(void **state)
{
	struct vd_fixture *t = *state;
	struct kill_ctx k = {0};
	struct vd_stats s0, s1;
	struct cframe f, got;
	pid_t pid0;

	vd_start(&t->d, "vcan0", "vcan0", NULL);
	pid0 = t->d.pid;
	t->peer = tap_open("vcan0");
	/*
	 * The socket exists before the daemon has all its fds: once it answers
	 * SIGUSR1 its loop runs and the idle fd count is final.
	 */
	vd_stats(&t->d, &s0);
	k.fds_idle = vd_count_fds(&t->d);
	if (getenv("VDC_E2E_LOG"))
		print_fds(&t->d);
	k.stack0 = vd_softnet_drops();

	kill_round(t, &k, false);
	kill_round(t, &k, true);
	assert_int_equal(t->d.pid, pid0);
	assert_int_equal(vd_log_count(&t->d, "frontend disconnected"), 2);

	/* The next frontend: START, then both ways, nothing of the old sessions. */
	vd_stats(&t->d, &s0);
	t->c = vd_guest_open(&t->d, VD_NO_LATE_ACK);
	assert_int_equal(vd_count_fds(&t->d), k.fds_session);
	for (uint32_t i = 0; i < 20; i++) {
		f = seq_frame(NEW_TX_ID, i);
		assert_int_equal(gdrv_tx_sync(t->c, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	}
	for (uint32_t i = 0; i < 20; i++) {
		f = seq_frame(NEW_TX_ID, i);
		vd_assert_bus_frame(t->peer, &f);
	}
	vd_guest_marker_through(t->c, t->peer);
	vd_assert_bus_quiet(t->peer);
	for (uint32_t i = 0; i < 20; i++) {
		f = seq_frame(NEW_RX_ID, i);
		vd_peer_send(t->peer, &f);
	}
	for (uint32_t i = 0; i < 20; i++) {
		f = seq_frame(NEW_RX_ID, i);
		vd_guest_rx(t->c, &got);
		vd_assert_guest_frame(&got, &f);
	}
	vd_bus_marker_through(t->c, t->peer);
	vd_stats(&t->d, &s1);
	assert_int_equal(s1.tx_ok - s0.tx_ok, 21);
	assert_int_equal(s1.rx_delivered - s0.rx_delivered, 21);
	assert_int_equal(vd_rx_drops(&s1) - vd_rx_drops(&s0), 0);
	assert_int_equal(t->d.pid, pid0);
	vd_stop(&t->d);
	t->passed = true;
}

/* ---- SIGTERM during traffic ---------------------------------------------- */

static void test_sigterm_live_session(void **state)
{
	struct vd_fixture *t = *state;
	static char log[1 << 20];
	struct vd_stats s0, s1;
	struct flood w;
	struct cframe f, got;
	const char *stop_line, *counters;
	unsigned int queued = 0;
	uint64_t t0, ms;
	struct stat st;
	pid_t pid;

	vd_fixture_serve(t, "vcan0", "vcan0", VD_NO_LATE_ACK);
	for (uint32_t i = 0; i < 10; i++) {
		f = seq_frame(NEW_TX_ID, i);
		assert_int_equal(gdrv_tx_sync(t->c, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
		vd_assert_bus_frame(t->peer, &f);
		f = seq_frame(NEW_RX_ID, i);
		vd_peer_send(t->peer, &f);
		vd_guest_rx(t->c, &got);
		vd_assert_guest_frame(&got, &f);
	}
	vd_stats(&t->d, &s0);
	assert_int_equal(s0.tx_ok, 10);
	assert_int_equal(s0.rx_delivered, 10);

	/* In flight: a flood from the bus and a Txq full of requests. */
	flood_start(&w, t->peer, 0);
	for (uint32_t i = 0; i < 256; i++) {
		f = seq_frame(OLD_TX_ID, i);
		if (gdrv_tx(t->c, &f) < 0)
			break;
		queued++;
	}
	while (w.written < 2000 && !flood_done(&w))
		vd_sleep_ms(5);

	pid = t->d.pid;
	t0 = vd_now_ms();
	assert_int_equal(kill(pid, SIGTERM), 0);
	if (!vd_wait_exit(&t->d, VD_WAIT_MS))
		fail_msg("the daemon did not exit within %d ms of SIGTERM", VD_WAIT_MS);
	ms = vd_now_ms() - t0;
	flood_join(&w);
	printf("exit %d %llu ms after SIGTERM (%u TX queued, %llu frames flooded)\n", t->d.status,
	       (unsigned long long)ms, queued, w.written);
	assert_int_equal(t->d.status, 0);
	if (ms > TERM_BOUND_MS)
		fail_msg("exit took %llu ms after SIGTERM", (unsigned long long)ms);
	assert_int_equal(lstat(t->d.sock, &st), -1);
	assert_int_equal(errno, ENOENT);
	/* Reaped: no such process any more. */
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);

	/* The counters come at exit, after the stop, and make sense. */
	vd_read_file(t->d.log, log, sizeof(log));
	stop_line = strstr(log, "received, stopping");
	counters = vd_last_str(log, "tx: ok ");
	assert_non_null(stop_line);
	assert_non_null(counters);
	if (counters < stop_line)
		fail_msg("no counters after the stop");
	assert_non_null(strstr(stop_line, "rx: dropped by the kernel (socket buffer full) "));
	vd_parse_stats(log, &s1);
	assert_true(s1.rx_kernel != ~0ull);
	assert_true(s1.tx_ok >= s0.tx_ok && s1.tx_ok <= s0.tx_ok + queued);
	assert_true(s1.rx_delivered >= s0.rx_delivered);
	/* Frames still in the socket at exit are in no counter: at most what was sent. */
	assert_true(s1.rx_delivered + vd_rx_drops(&s1) <=
		    s0.rx_delivered + vd_rx_drops(&s0) + w.written);
	assert_int_equal(s1.tx_rejected + s1.tx_failed + s1.tx_timeout, 0);
	t->passed = true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_flood_accounted, vd_fixture_setup,
					    vd_fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_frontend_killed, vd_fixture_setup,
					    vd_fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_sigterm_live_session, vd_fixture_setup,
					    vd_fixture_teardown),
	};

	vd_skip_without_vcan();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
