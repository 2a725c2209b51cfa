/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A CAN controller driven by the kernel's CAN device layer, in the VM rig:
 * slcan (the serial-line adapter driver) on a pseudo-terminal. It is no
 * virtual bus: it has bit timing that libsocketcan sets and reads, and it
 * speaks the serial-line protocol on the pty, which the test reads and
 * writes as the adapter would. So --link-up --bitrate is checked end to
 * end against a real driver: on START the daemon sets the bit rate and
 * opens the controller ("S6" = 500 kbit/s, then "O"), a guest frame goes
 * out as "t<id><len><data>", a frame the adapter reports reaches the guest,
 * and STOP closes the controller ("C").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <linux/sockios.h>

#include <cmocka.h>

#include "vd.h"

#ifndef N_SLCAN
#define N_SLCAN 17 /* the line discipline's number (linux/tty.h) */
#endif

/* The adapter's side of the pty: everything the driver wrote, kept. */
struct adapter {
	int master, slave;
	char ifname[IFNAMSIZ];
	pthread_t thread;
	pthread_mutex_t lock;
	char seen[4096];
	size_t len;
	int stop;
};

static void *adapter_main(void *arg)
{
	struct adapter *a = arg;
	struct pollfd pfd = {.fd = a->master, .events = POLLIN};

	/* Read at once: the driver waits for its commands to leave the tty. */
	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		char buf[256];
		ssize_t n;

		if (poll(&pfd, 1, 20) <= 0)
			continue;
		n = read(a->master, buf, sizeof(buf));
		if (n <= 0)
			continue;
		pthread_mutex_lock(&a->lock);
		if (a->len + (size_t)n < sizeof(a->seen)) {
			memcpy(a->seen + a->len, buf, (size_t)n);
			a->len += (size_t)n;
			a->seen[a->len] = 0;
		}
		pthread_mutex_unlock(&a->lock);
	}
	return NULL;
}

/*
 * Whether the driver has written s, after the first occurrence of after
 * (NULL: anywhere), within wait_ms.
 */
static bool adapter_saw_after(struct adapter *a, const char *after, const char *s, int wait_ms)
{
	uint64_t end = vd_now_ms() + (uint64_t)wait_ms;

	for (;;) {
		const char *from;
		bool found;

		pthread_mutex_lock(&a->lock);
		from = after ? strstr(a->seen, after) : a->seen;
		found = from && strstr(from + (after ? strlen(after) : 0), s) != NULL;
		pthread_mutex_unlock(&a->lock);
		if (found)
			return true;
		if (vd_now_ms() >= end)
			return false;
		vd_sleep_ms(5);
	}
}

static bool adapter_saw(struct adapter *a, const char *s)
{
	return adapter_saw_after(a, NULL, s, VD_WAIT_MS);
}

/* An slcan interface on a new pty; skips when the rig's kernel has no slcan. */
static void adapter_open(struct adapter *a)
{
	int disc = N_SLCAN;
	struct termios tio;

	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	a->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(a->master >= 0);
	assert_int_equal(grantpt(a->master), 0);
	assert_int_equal(unlockpt(a->master), 0);
	a->slave = open(ptsname(a->master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(a->slave >= 0);
	/* Raw bytes both ways: no echo, no line editing, no CR translation. */
	assert_int_equal(tcgetattr(a->master, &tio), 0);
	cfmakeraw(&tio);
	assert_int_equal(tcsetattr(a->master, TCSANOW, &tio), 0);
	if (ioctl(a->slave, TIOCSETD, &disc) < 0) {
		printf("SKIPPED: no slcan line discipline in this kernel (%s)\n", strerror(errno));
		exit(77);
	}
	/* The driver names its interface; SIOCGIFNAME on the tty tells which. */
	assert_int_equal(ioctl(a->slave, SIOCGIFNAME, a->ifname), 0);
	assert_int_equal(pthread_create(&a->thread, NULL, adapter_main, a), 0);
}

static void adapter_close(struct adapter *a)
{
	__atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(a->thread, NULL), 0);
	/* Closing the tty detaches the discipline, and the interface goes. */
	close(a->slave);
	close(a->master);
	pthread_mutex_destroy(&a->lock);
}

static void test_slcan_bitrate_link_and_frames(void **state)
{
	struct cframe out = cf_make(0x123, 0, 2, 0), got, want = cf_make(0x321, 0, 2, 0);
	char out_text[32];
	struct adapter a;
	struct gdrv *c;
	struct vd d;

	(void)state;
	vd_skip_without_vcan();
	adapter_open(&a);
	vd_init(&d);
	vd_start(&d, a.ifname, a.ifname, "--link-up", "--bitrate=500k", NULL);
	/* A controller is no vcan: the daemon says nothing of pacing it alone. */
	assert_false(vd_log_has(&d, "no controller (vcan)"));
	/* Nothing is set before the guest's START. */
	assert_false(adapter_saw_after(&a, NULL, "S6\r", 0));

	c = vd_guest_open(&d, VD_NO_LATE_ACK);
	/* The bit rate as libsocketcan set it, then the controller opened. */
	if (!adapter_saw(&a, "S6\rO\r")) {
		vd_print_log(&d);
		fail_msg("the adapter saw \"%s\", want S6 then O", a.seen);
	}
	assert_int_equal(vd_sh("ip -details link show %s | grep -q 'bitrate 500000'", a.ifname), 0);
	assert_int_equal(vd_sh("ip link show %s | grep -q ',UP'", a.ifname), 0);

	/* Guest -> adapter: the frame in the serial-line protocol. */
	out.data[0] = 0xab;
	out.data[1] = 0xcd;
	assert_int_equal(gdrv_tx_sync(c, &out, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	snprintf(out_text, sizeof(out_text), "t%03X%u%02X%02X\r", out.id, out.len, out.data[0],
		 out.data[1]);
	if (!adapter_saw(&a, out_text))
		fail_msg("the adapter saw \"%s\", want %s", a.seen, out_text);

	/* Adapter -> guest: a frame the adapter reports from the bus. */
	want.data[0] = 0x5a;
	want.data[1] = 0xa5;
	assert_int_equal(write(a.master, "t32125AA5\r", 10), 10);
	vd_guest_rx(c, &got);
	vd_assert_guest_frame(&got, &want);

	/* STOP closes the controller and takes the link down. */
	assert_int_equal(gdrv_stop(c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	if (!adapter_saw_after(&a, out_text, "C\r", VD_WAIT_MS))
		fail_msg("the adapter saw \"%s\", want a C after the frame", a.seen);
	assert_int_not_equal(vd_sh("ip link show %s | grep -q ',UP'", a.ifname), 0);

	gdrv_close(c);
	vd_stop(&d);
	vd_cleanup(&d);
	adapter_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slcan_bitrate_link_and_frames),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
