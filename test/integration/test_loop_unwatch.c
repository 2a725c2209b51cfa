/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The loop takes a device's port fds out of its epoll set while a flooded
 * turn sends (the kernel would wake our entry for write space on every
 * frame it frees), and only then: single frames are sent with the port
 * watched. The fds are back in the set after the turn, a bus frame that
 * came meanwhile reaches the guest, and a port that cannot go back at once
 * is tried again on a timer instead of going deaf. The epoll set is read
 * where the kernel shows it: /proc/self/fdinfo of the loop's epoll fd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bthread.h"
#include "fakeport.h"
#include "loop_test.h"
#include "guest_driver.h"
#include "tfd.h"
#include "vhost-user/vlog.h"

#define T_MS 5000 /* a guard against hangs, not a timing assertion */
#define F_CLASSIC (1ull << VIRTIO_CAN_F_CAN_CLASSIC)
#define FLOOD 96 /* three full send batches of the device */
#define MAX_CALLS 256

struct fx {
	struct fakeport *p;
	struct fakeport_loop *d;
	struct gdrv *c;
	int epfd;    /* the loop's */
	int port_fd; /* the port's readable fd */
	int fds_before;

	/* Filled by the send hook, in the loop thread; read after a sync. */
	unsigned int ncalls;
	unsigned int call_n[MAX_CALLS];
	int call_watched[MAX_CALLS]; /* in_epoll_set() at the call */
	bool inject_in_flood;	     /* put one bus frame on the port while unwatched */
	int swap_fd;		     /* >= 0: while unwatched, dup2 it over port_fd */
	bool injected, swapped;
};

/*
 * Whether fd is in epoll set epfd, from the kernel's list of its entries:
 * 1 or 0, -1 when the list cannot be read. No cmocka asserts: the send
 * hook calls it in the loop thread.
 */
static int in_epoll_set(int epfd, int fd)
{
	char path[64], line[256];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		int tfd;

		if (sscanf(line, "tfd: %d", &tfd) == 1 && tfd == fd)
			found = 1;
	}
	fclose(f);
	return found;
}

/* Two bytes that follow from the id. */
static struct cframe frame(uint32_t id)
{
	return cf_make(id, 0, 2, (uint8_t)id);
}

static void on_send(void *arg, unsigned int n)
{
	struct fx *x = arg;
	int watched = in_epoll_set(x->epfd, x->port_fd);

	if (x->ncalls < MAX_CALLS) {
		x->call_n[x->ncalls] = n;
		x->call_watched[x->ncalls] = watched;
		x->ncalls++;
	}
	if (watched == 0 && x->inject_in_flood && !x->injected) {
		struct cframe f = frame(0x7e1);

		x->injected = fakeport_inject_frames(x->p, &f, 1) == 0;
	}
	if (watched == 0 && x->swap_fd >= 0 && !x->swapped)
		x->swapped = dup2(x->swap_fd, x->port_fd) == x->port_fd;
}

static void get_epfd(struct loop *m, void *arg)
{
	*(int *)arg = loop_test_epfd(m);
}

struct watched_arg {
	struct fx *x;
	int watched;
};

static void get_watched(struct loop *m, void *arg)
{
	struct watched_arg *a = arg;

	a->watched = in_epoll_set(loop_test_epfd(m), a->x->port_fd);
}

/* Whether the port is watched, seen in the loop thread between turns. */
static bool watched_now(struct fx *x)
{
	struct watched_arg a = {.x = x};

	assert_int_equal(fakeport_loop_exec(x->d, get_watched, &a), 0);
	assert_true(a.watched >= 0);
	return a.watched == 1;
}

static int fx_setup(void **state)
{
	static const struct device_config cfg = {.name = "unwatch"};
	struct fx *x = calloc(1, sizeof(*x));
	struct gdrv_opts o;
	struct loop_port dp;

	assert_non_null(x);
	x->swap_fd = -1;
	x->fds_before = tfd_count();
	assert_int_equal(fakeport_new(&x->p), 0);
	fakeport_loop_port(x->p, &dp);
	x->port_fd = dp.fds[0];
	assert_int_equal(fakeport_loop_start(&x->d, &cfg, x->p), 0);
	assert_int_equal(fakeport_loop_exec(x->d, get_epfd, &x->epfd), 0);
	gdrv_opts_default(&o);
	o.can_features = F_CLASSIC;
	assert_int_equal(gdrv_open(&x->c, fakeport_loop_path(x->d), &o, T_MS), 0);
	assert_int_equal(gdrv_start(x->c, T_MS), VIRTIO_CAN_RESULT_OK);
	fakeport_on_send(x->p, on_send, x);
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *x = *state;

	fakeport_on_send(x->p, NULL, NULL);
	gdrv_close(x->c);
	assert_int_equal(fakeport_loop_stop(x->d), 0);
	fakeport_free(x->p);
	if (x->swap_fd >= 0)
		close(x->swap_fd);
	assert_int_equal(tfd_count(), x->fds_before);
	free(x);
	return 0;
}

/* FLOOD frames in one kick; all sent and completed OK. */
static void flood(struct fx *x, uint32_t base)
{
	struct cframe f[FLOOD];
	unsigned int sent0 = fakeport_sent_count(x->p);

	for (unsigned int i = 0; i < FLOOD; i++)
		f[i] = frame(base + i);
	assert_int_equal(gdrv_tx_many(x->c, f, FLOOD), FLOOD);
	assert_int_equal(fakeport_wait_sent(x->p, sent0 + FLOOD, T_MS), 0);
	for (unsigned int i = 0; i < FLOOD; i++) {
		int token;
		uint8_t res;

		assert_int_equal(gdrv_tx_wait(x->c, T_MS, &token, &res), 1);
		assert_int_equal(res, VIRTIO_CAN_RESULT_OK);
	}
}

/* One frame from the bus reaches the guest. */
static void bus_to_guest(struct fx *x, uint32_t id, bool inject)
{
	struct cframe f = frame(id), got;

	if (inject)
		assert_int_equal(fakeport_inject_frames(x->p, &f, 1), 0);
	assert_int_equal(gdrv_rx(x->c, &got, T_MS), 1);
	assert_int_equal(got.id, id);
	assert_memory_equal(got.data, f.data, f.len);
}

/*
 * A flood's batches go out with the port out of the set; after the turn it
 * is back, and the bus frame that came during the sends reaches the guest.
 */
static void test_flood_sends_unwatched(void **state)
{
	struct fx *x = *state;
	unsigned int big = 0;

	assert_true(watched_now(x));
	x->inject_in_flood = true;
	flood(x, 0x100);
	assert_true(x->ncalls >= 1);
	for (unsigned int i = 0; i < x->ncalls; i++) {
		if (x->call_n[i] >= 16) {
			big++;
			assert_int_equal(x->call_watched[i], 0);
		}
	}
	assert_true(big >= 1);
	assert_true(x->injected);
	assert_true(watched_now(x));
	bus_to_guest(x, 0x7e1, false);
	/* And frames keep coming both ways. */
	bus_to_guest(x, 0x7e2, true);
	assert_int_equal(gdrv_tx_sync(x->c, &(struct cframe){.id = 0x42, .len = 0}, T_MS),
			 VIRTIO_CAN_RESULT_OK);
}

/* Frames sent one by one never take the port out: no epoll_ctl per frame. */
static void test_single_frames_stay_watched(void **state)
{
	struct fx *x = *state;

	for (uint32_t i = 0; i < 20; i++) {
		struct cframe f = frame(0x200 + i);

		assert_int_equal(gdrv_tx_sync(x->c, &f, T_MS), VIRTIO_CAN_RESULT_OK);
	}
	assert_int_equal(x->ncalls, 20);
	for (unsigned int i = 0; i < x->ncalls; i++) {
		assert_int_equal(x->call_n[i], 1);
		assert_int_equal(x->call_watched[i], 1);
	}
	assert_true(watched_now(x));
}

/*
 * The port's fd cannot go back into the set after the flood (it became a
 * regular file, which epoll refuses). The loop stays up and tries again on
 * its own: once the fd is a pipe again, a bus frame reaches the guest
 * though nothing else wakes the loop.
 */
static void test_rewatch_retried(void **state)
{
	struct fx *x = *state;
	char path[] = "/tmp/vdc-unwatch-XXXXXX";
	int file = mkstemp(path), pipe_fd;

	assert_true(file >= 0);
	unlink(path);
	pipe_fd = dup(x->port_fd);
	assert_true(pipe_fd >= 0);
	x->swap_fd = file;
	flood(x, 0x300);
	assert_true(x->swapped);
	assert_false(watched_now(x));
	/* The pipe back in place from this thread: the loop sleeps meanwhile. */
	assert_int_equal(dup2(pipe_fd, x->port_fd), x->port_fd);
	close(pipe_fd);
	bus_to_guest(x, 0x7e3, true);
	assert_true(watched_now(x));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_flood_sends_unwatched, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_single_frames_stay_watched, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rewatch_retried, fx_setup, fx_teardown),
	};

	vlog_set_level(VLOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
