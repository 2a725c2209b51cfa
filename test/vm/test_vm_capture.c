/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * --capture on real vcan (VM rig), checked with the real readers: known
 * traffic both ways (sent, denied, delivered, and frames from the bus while
 * the controller is stopped), then tshark must show exactly those frames,
 * ids, data, directions, outcomes and order; and canplayer replaying the
 * candump log onto vcan must put exactly the frames that were on the bus
 * back on it.
 *
 * Never blocking on the target: a capture FIFO whose reader stopped reading
 * must not hold the loop (another device keeps answering and passing
 * frames; the records past the bound are dropped and counted); a FIFO
 * without a reader is refused at start-up with a message, and SIGHUP's
 * reopen onto one does not hang the daemon. Two devices naming one capture
 * file, however spelled, are refused.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "vd.h"

static void skip_without(const char *tool)
{
	if (vd_sh("command -v %s >/dev/null 2>&1", tool) != 0) {
		printf("SKIPPED: %s not installed\n", tool);
		skip();
	}
}

/* The traffic of both tests; returns the frames that were on the bus. */
static unsigned int traffic(struct vd *d, int peer, struct cframe *bus)
{
	struct cframe tx1 = cf_make(0x123, 0, 3, 1), denied = cf_make(0x300, 0, 2, 2);
	struct cframe rx1 = cf_make(0x124, 0, 4, 3), tx2 = cf_make(0x18daf1aa, CFRAME_EXT, 8, 4);
	struct cframe rx2 = cf_make(0x125, CFRAME_FD | CFRAME_BRS, 12, 5), got;
	struct gdrv *c = vd_guest_open(d, VD_NO_LATE_ACK);
	unsigned int n = 0;

	assert_int_equal(gdrv_tx_sync(c, &tx1, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(peer, &tx1);
	bus[n++] = tx1;
	assert_int_equal(gdrv_tx_sync(c, &denied, VD_WAIT_MS), VIRTIO_CAN_RESULT_NOT_OK);
	vd_peer_send(peer, &rx1);
	vd_guest_rx(c, &got);
	vd_assert_guest_frame(&got, &rx1);
	bus[n++] = rx1;
	assert_int_equal(gdrv_tx_sync(c, &tx2, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(peer, &tx2);
	bus[n++] = tx2;
	vd_peer_send(peer, &rx2);
	vd_guest_rx(c, &got);
	vd_assert_guest_frame(&got, &rx2);
	bus[n++] = rx2;
	gdrv_close(c);
	return n;
}

static void test_capture_pcapng_tshark(void **state)
{
	/* cf_make's data: seed + 7 * i. */
	const char *want = "291\t0\t01080f\t0x00000002\tsent\n"
			   "768\t0\t0209\t0x00000002\tdenied\n"
			   "292\t0\t030a1118\t0x00000001\tdelivered\n"
			   "417001898\t1\t040b121920272e35\t0x00000002\tsent\n"
			   "293\t0\t050c131a21282f363d444b52\t0x00000001\tdelivered\n";
	char cap[160], arg[200], out[160], cmd[512];
	static char got[4096];
	struct cframe bus[8];
	struct vd d;
	int peer;

	(void)state;
	vd_skip_without_vcan();
	skip_without("tshark");
	vd_init(&d);
	snprintf(cap, sizeof(cap), "%s/can.pcapng", d.dir);
	snprintf(arg, sizeof(arg), "--capture=%s", cap);
	vd_start(&d, "vcan0", "vcan0", arg, "--tx-allow=100:700,18DAF1AA:1FFFFFFF", NULL);
	peer = vd_peer_open("vcan0");
	assert_int_equal(traffic(&d, peer, bus), 4);
	vd_stop(&d);
	assert_true(vd_log_has(&d, "capture: 5 records written, 0 lost"));
	snprintf(out, sizeof(out), "%s/tshark.txt", d.dir);
	snprintf(cmd, sizeof(cmd),
		 "tshark -r %s -T fields -e can.id -e can.flags.xtd -e data.data "
		 "-e frame.packet_flags_direction -e frame.comment >%s 2>/dev/null",
		 cap, out);
	assert_int_equal(vd_sh("%s", cmd), 0);
	vd_read_file(out, got, sizeof(got));
	if (strcmp(got, want) != 0)
		fail_msg("tshark read:\n%s\nwant:\n%s", got, want);
	vd_peer_close(&peer);
	unlink(out);
	unlink(cap);
	vd_cleanup(&d);
}

static void test_capture_log_canplayer(void **state)
{
	char cap[160], arg[200];
	struct cframe bus[8];
	struct vd d;
	unsigned int n;
	int peer;

	(void)state;
	vd_skip_without_vcan();
	skip_without("canplayer");
	vd_init(&d);
	snprintf(cap, sizeof(cap), "%s/can.log", d.dir);
	snprintf(arg, sizeof(arg), "--capture=%s", cap);
	vd_start(&d, "vcan0", "vcan0", arg, "--tx-allow=100:700,18DAF1AA:1FFFFFFF", NULL);
	peer = vd_peer_open("vcan0");
	n = traffic(&d, peer, bus);
	vd_stop(&d);
	/* Replayed onto vcan0 (no daemon now): exactly the frames that were on the bus. */
	assert_int_equal(vd_sh("canplayer -t -I %s", cap), 0);
	for (unsigned int i = 0; i < n; i++)
		vd_assert_bus_frame(peer, &bus[i]);
	vd_assert_bus_quiet(peer);
	vd_peer_close(&peer);
	unlink(cap);
	vd_cleanup(&d);
}

/* Wait until path is a socket (the device listens); fails if the daemon exits. */
static void wait_listening(struct vd *d, const char *path)
{
	uint64_t end = vd_now_ms() + VD_WAIT_MS;
	struct stat st;

	while (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
		if (!vd_running(d) || vd_now_ms() > end) {
			vd_print_log(d);
			fail_msg("no socket at %s", path);
		}
		vd_sleep_ms(5);
	}
}

/* The daemon must end by itself soon, or at the latest on SIGTERM: its status. */
static int exits_soon(struct vd *d, int timeout_ms)
{
	if (vd_wait_exit(d, timeout_ms))
		return d->status;
	kill(d->pid, SIGTERM);
	if (!vd_wait_exit(d, 2000)) {
		vd_print_log(d);
		kill(d->pid, SIGKILL);
		(void)vd_wait_exit(d, VD_WAIT_MS);
		fail_msg("still running %d ms after start, and 2 s after SIGTERM", timeout_ms);
	}
	vd_print_log(d);
	fail_msg("still running %d ms after start (SIGTERM ended it)", timeout_ms);
	return -1;
}

/*
 * A FIFO nobody reads yet: the daemon says so, naming it, and exits
 * non-zero before listening (it used to sleep in open() with SIGTERM
 * blocked, until SIGKILL).
 */
static void test_capture_fifo_without_reader(void **state)
{
	char fifo[160], arg[200];
	const char *args[] = {"--socket-path", NULL, "-i", "vcan0", "-o", "vcan0", arg, NULL};
	uint64_t t0;
	struct vd d;
	struct stat st;

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	args[1] = d.sock;
	snprintf(fifo, sizeof(fifo), "%s/cap.fifo", d.dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(arg, sizeof(arg), "--capture=%s", fifo);
	t0 = vd_now_ms();
	vd_spawn(&d, args);
	assert_int_not_equal(exits_soon(&d, 5000), 0);
	printf("refused in %llu ms\n", (unsigned long long)(vd_now_ms() - t0));
	assert_true(vd_log_has(&d, fifo));
	assert_true(vd_log_has(&d, "a FIFO with no reader"));
	assert_int_equal(lstat(d.sock, &st), -1);
	unlink(fifo);
	vd_cleanup(&d);
}

/*
 * SIGHUP after the capture's path became a FIFO nobody reads: the daemon
 * says so and serves on (the reopen used to sleep in open()); SIGHUP with a
 * reader there resumes the capture into it; SIGTERM ends it with 0.
 */
static void test_capture_reopen_fifo(void **state)
{
	char cap[160], arg[200], buf[256] = {0};
	struct cframe f = cf_make(0x123, 0, 2, 1), g = cf_make(0x124, 0, 2, 2);
	struct gdrv *c;
	struct vd d;
	int peer, rfd;

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	snprintf(cap, sizeof(cap), "%s/can.log", d.dir);
	snprintf(arg, sizeof(arg), "--capture=%s", cap);
	vd_start(&d, "vcan0", "vcan0", arg, NULL);
	peer = vd_peer_open("vcan0");
	assert_int_equal(unlink(cap), 0);
	assert_int_equal(mkfifo(cap, 0600), 0);
	assert_int_equal(kill(d.pid, SIGHUP), 0);
	c = vd_guest_open(&d, VD_NO_LATE_ACK);
	assert_int_equal(gdrv_tx_sync(c, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(peer, &f);
	assert_true(vd_log_has(&d, "a FIFO with no reader"));

	rfd = open(cap, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(rfd >= 0);
	assert_int_equal(kill(d.pid, SIGHUP), 0);
	for (uint64_t end = vd_now_ms() + VD_WAIT_MS; !vd_log_has(&d, "reopened");) {
		if (vd_now_ms() > end)
			fail_msg("no second reopen");
		vd_sleep_ms(10);
	}
	assert_int_equal(gdrv_tx_sync(c, &g, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(peer, &g);
	{
		struct pollfd pfd = {.fd = rfd, .events = POLLIN};

		assert_int_equal(poll(&pfd, 1, VD_WAIT_MS), 1);
	}
	assert_true(read(rfd, buf, sizeof(buf) - 1) > 0);
	assert_non_null(strstr(buf, " vcan0 124#"));
	gdrv_close(c);
	vd_stop(&d);
	close(rfd);
	vd_peer_close(&peer);
	unlink(cap);
	vd_cleanup(&d);
}

/*
 * Two devices, one capture file: refused with a message, whether spelled
 * the same, "./x" and "x", or absolute and relative; a file already there
 * is left as it was. (They used to both write it, from offset 0: the
 * daemon counted 20 + 20 records, the file held 20.)
 */
static void test_capture_same_file_refused(void **state)
{
	const char *pairs[][2] = {
	    {"x.pcapng", "x.pcapng"},
	    {"./x.pcapng", "x.pcapng"},
	    {NULL, "x.pcapng"}, /* absolute, then relative */
	};
	char abs[160], spec[2][512], sock[2][96], buf[64], script[128];
	/* The daemon runs in d.dir: relative names are relative to it. */
	const char *in_dir[] = {"/bin/sh", "-c", script, "sh", NULL};
	struct vd d;

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	snprintf(script, sizeof(script), "cd '%s' && exec \"$@\"", d.dir);
	snprintf(abs, sizeof(abs), "%s/x.pcapng", d.dir);
	{
		FILE *f = fopen(abs, "w");

		assert_non_null(f);
		fputs("an earlier capture\n", f);
		fclose(f);
	}
	for (unsigned int i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		const char *args[] = {"--device", spec[0], "--device", spec[1], "-v", NULL};
		struct stat st;

		for (unsigned int k = 0; k < 2; k++) {
			snprintf(sock[k], sizeof(sock[k]), "%s/dev%u.sock", d.dir, k);
			snprintf(
			    spec[k], sizeof(spec[k]),
			    "socket-path=%s,can-in=vcan%u,can-out=vcan%u,name=dev%u,capture=%s",
			    sock[k], k, k, k, pairs[i][k] ? pairs[i][k] : abs);
		}
		unlink(d.log);
		vd_spawn_with(&d, in_dir, -1, NULL, args);
		assert_int_not_equal(exits_soon(&d, 5000), 0);
		if (!vd_log_has(&d, "the file device dev0 already captures to")) {
			vd_print_log(&d);
			fail_msg("no message for %s and %s", spec[0], spec[1]);
		}
		assert_int_equal(lstat(sock[0], &st), -1);
		assert_int_equal(lstat(sock[1], &st), -1);
		vd_read_file(abs, buf, sizeof(buf));
		assert_string_equal(buf, "an earlier capture\n");
	}
	unlink(abs);
	vd_cleanup(&d);
}

/* Count the pcapng blocks in buf[0, len) of the given type; *used: bytes of whole blocks. */
static unsigned int pcapng_count(const uint8_t *buf, size_t len, uint32_t type, size_t *used)
{
	unsigned int n = 0;
	size_t off = 0;

	while (off + 8 <= len) {
		uint32_t t, blen;

		memcpy(&t, buf + off, 4);
		memcpy(&blen, buf + off + 4, 4);
		assert_true(blen >= 12 && blen % 4 == 0);
		if (off + blen > len)
			break;
		n += t == type;
		off += blen;
	}
	*used = off;
	return n;
}

/* Device name's capture counters, from the last block of counters in the log. */
static void capture_counts(const struct vd *d, const char *name, unsigned long long *written,
		       unsigned long long *lost, unsigned long long *dropped)
{
	static char buf[1 << 20];
	char key[64];
	const char *p;

	vd_read_file(d->log, buf, sizeof(buf));
	snprintf(key, sizeof(key), "%s: capture: ", name);
	p = vd_last_str(buf, key);
	assert_non_null(p);
	assert_int_equal(sscanf(p + strlen(key), "%llu records written, %llu lost (%llu dropped",
				written, lost, dropped),
			 3);
}

/* Every frame device name saw (each is one capture record), from the last counters. */
static unsigned long long frames_seen(const struct vd *d, const char *name)
{
	static char buf[1 << 20];
	unsigned long long sum = 0;
	struct vd_stats s;
	char prefix[64];

	vd_read_file(d->log, buf, sizeof(buf));
	snprintf(prefix, sizeof(prefix), "%s: ", name);
	vd_parse_outcomes(buf, prefix, &s);
	for (unsigned int i = 0; i < DEVICE_OUTCOME_COUNT; i++)
		sum += s.outcome[i];
	return sum;
}

/* SIGUSR1, then wait for device name's capture line to appear once more. */
static void usr1_wait(struct vd *d, const char *name)
{
	static char buf[1 << 20];
	char key[64];
	unsigned int before;
	const char *p;
	uint64_t end = vd_now_ms() + VD_WAIT_MS;

	snprintf(key, sizeof(key), "%s: capture: ", name);
	vd_read_file(d->log, buf, sizeof(buf));
	before = vd_count_str(buf, key);
	assert_int_equal(kill(d->pid, SIGUSR1), 0);
	for (;;) {
		vd_sleep_ms(10);
		vd_read_file(d->log, buf, sizeof(buf));
		if (vd_count_str(buf, key) > before && (p = vd_last_str(buf, key)) &&
		    strchr(p, '\n'))
			return;
		if (vd_now_ms() > end) {
			vd_print_log(d);
			fail_msg("no counters after SIGUSR1");
		}
	}
}

/*
 * Two devices in one daemon; dev0 captures into a FIFO whose reader
 * opened it and then reads nothing; dev0's bus is flooded so the FIFO and
 * the capture's buffer fill. dev1 (no capture) must keep answering a new
 * frontend and passing frames both ways, and so must dev0; dev0's capture
 * counts its drops and SIGUSR1 prints them. Then the reader reads: every
 * record the daemon counts written arrives, whole, and written + lost is
 * every frame dev0 saw. (The loop used to sleep in write() after some 544
 * frames, every device with it.)
 */
#define FLOOD_FRAMES 30000u
#define FLOOD_BATCH 100u
static void test_capture_stalled_fifo_isolated(void **state)
{
	static uint8_t got[8u << 20];
	char fifo[160], spec[2][512], sock[2][96];
	const char *args[] = {"--device", spec[0], "--device", spec[1], "-v", NULL};
	struct cframe f = cf_make(0x321, 0, 8, 9), b = cf_make(0x322, 0, 8, 10), r;
	struct gdrv *c0, *c1;
	unsigned long long written, lost, dropped, seen, ticks;
	uint64_t t0, t_idle, t_open, t_tx, t_rx;
	size_t len = 0, used = 0;
	unsigned int epb;
	int peer0, peer1, rfd;
	struct vd d;

	(void)state;
	vd_skip_without_vcan();
	vd_init(&d);
	snprintf(fifo, sizeof(fifo), "%s/dev0.fifo", d.dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	/* The reader opens it, and then does not read. */
	rfd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(rfd >= 0);
	for (unsigned int k = 0; k < 2; k++) {
		snprintf(sock[k], sizeof(sock[k]), "%s/dev%u.sock", d.dir, k);
		snprintf(spec[k], sizeof(spec[k]),
			 "socket-path=%s,can-in=vcan%u,can-out=vcan%u,name=dev%u%s%s", sock[k], k,
			 k, k, k == 0 ? ",capture=" : "", k == 0 ? fifo : "");
	}
	vd_spawn(&d, args);
	wait_listening(&d, sock[0]);
	wait_listening(&d, sock[1]);
	peer0 = vd_peer_open("vcan0");
	peer1 = vd_peer_open("vcan1");
	/* For comparison: dev1's frontend start-up with nothing stuck. */
	t0 = vd_now_ms();
	c1 = vd_guest_at(&d, sock[1]);
	t_idle = vd_now_ms() - t0;
	gdrv_close(c1);

	/* dev0 has no frontend: each frame is a record "dropped: controller stopped". */
	for (unsigned int i = 0; i < FLOOD_FRAMES; i++) {
		struct cframe x = cf_make(0x100 + (i % 0x100), 0, 8, (uint8_t)i);

		vd_peer_send(peer0, &x);
		if (i % FLOOD_BATCH == FLOOD_BATCH - 1)
			vd_sleep_ms(1);
	}

	/* dev1 answers a new frontend, sends and receives, while dev0's FIFO is stuck. */
	t0 = vd_now_ms();
	c1 = vd_guest_at(&d, sock[1]);
	t_open = vd_now_ms() - t0;
	t0 = vd_now_ms();
	assert_int_equal(gdrv_tx_sync(c1, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(peer1, &f);
	t_tx = vd_now_ms() - t0;
	t0 = vd_now_ms();
	vd_peer_send(peer1, &b);
	vd_guest_rx(c1, &r);
	vd_assert_guest_frame(&r, &b);
	t_rx = vd_now_ms() - t0;
	printf("dev1 while dev0's capture is stuck: frontend started in %llu ms (%llu ms before), "
	       "TX %llu ms, RX %llu ms\n",
	       (unsigned long long)t_open, (unsigned long long)t_idle, (unsigned long long)t_tx,
	       (unsigned long long)t_rx);
	/* So does dev0 itself. */
	c0 = vd_guest_at(&d, sock[0]);
	assert_int_equal(gdrv_tx_sync(c0, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(peer0, &f);

	/* The drops are counted and reported, and the log says so. */
	usr1_wait(&d, "dev0");
	capture_counts(&d, "dev0", &written, &lost, &dropped);
	printf("stuck: %llu records written, %llu lost, %llu dropped\n", written, lost, dropped);
	assert_true(dropped > 0);
	assert_true(vd_log_has(&d, "the target does not keep up"));
	/* Waiting on the target costs no CPU: the loop sleeps until it has room. */
	ticks = vd_cpu_ticks(&d);
	vd_sleep_ms(1000);
	ticks = vd_cpu_ticks(&d) - ticks;
	printf("stuck and idle: %llu CPU ticks in 1 s\n", ticks);
	assert_true(ticks <= 5);

	/*
	 * The reader reads again: everything kept arrives with no more traffic
	 * (the loop was waiting for room, not for the next frame).
	 */
	for (uint64_t quiet = vd_now_ms() + 1000; vd_now_ms() < quiet;) {
		struct pollfd pfd = {.fd = rfd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(rfd, got + len, sizeof(got) - len);
		if (n > 0) {
			len += (size_t)n;
			quiet = vd_now_ms() + 1000;
		}
		assert_true(len < sizeof(got));
	}
	usr1_wait(&d, "dev0");
	capture_counts(&d, "dev0", &written, &lost, &dropped);
	seen = frames_seen(&d, "dev0");
	epb = pcapng_count(got, len, 6, &used);
	printf("caught up: %u records read from the FIFO; %llu written, %llu lost, %llu frames "
	       "seen\n",
	       epb, written, lost, seen);
	assert_int_equal(epb, written);
	assert_int_equal(written + lost, seen);
	/* Caught up, the fd has room but nothing waits for it: not watched, no spinning. */
	ticks = vd_cpu_ticks(&d);
	vd_sleep_ms(1000);
	ticks = vd_cpu_ticks(&d) - ticks;
	printf("caught up and idle: %llu CPU ticks in 1 s\n", ticks);
	assert_true(ticks <= 5);
	gdrv_close(c0);
	gdrv_close(c1);
	assert_int_equal(kill(d.pid, SIGTERM), 0);
	assert_true(vd_wait_exit(&d, VD_WAIT_MS));
	assert_int_equal(d.status, 0);
	for (ssize_t n; (n = read(rfd, got + len, sizeof(got) - len)) > 0;)
		len += (size_t)n;
	epb = pcapng_count(got, len, 6, &used);
	assert_int_equal(used, len);
	capture_counts(&d, "dev0", &written, &lost, &dropped);
	seen = frames_seen(&d, "dev0");
	printf("at exit: %u records read from the FIFO; %llu written, %llu lost (%llu dropped), "
	       "%llu frames seen\n",
	       epb, written, lost, dropped, seen);
	assert_int_equal(epb, written);
	assert_int_equal(written + lost, seen);
	close(rfd);
	vd_peer_close(&peer0);
	vd_peer_close(&peer1);
	unlink(fifo);
	unlink(sock[0]);
	unlink(sock[1]);
	vd_cleanup(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_capture_pcapng_tshark),
	    cmocka_unit_test(test_capture_log_canplayer),
	    cmocka_unit_test(test_capture_fifo_without_reader),
	    cmocka_unit_test(test_capture_reopen_fifo),
	    cmocka_unit_test(test_capture_same_file_refused),
	    cmocka_unit_test(test_capture_stalled_fifo_isolated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
