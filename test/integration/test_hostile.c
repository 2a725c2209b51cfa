/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A hostile frontend against the daemon's own event loop (loop_run in a
 * thread, fake CAN port) over a real unix socket: fds that block, hang up
 * or are never read. Each test shows that the loop keeps turning (it
 * answers the test through its control fd within a bound) and that the
 * worst the frontend gets is to lose its own connection.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bthread.h"
#include "fakeport.h"
#include "guest_driver.h"
#include "tfd.h"
#include "txflood.h"
#include "vhost-user/vlog.h"

#define T_MS 5000
#define F_CLASSIC (1ull << VIRTIO_CAN_F_CAN_CLASSIC)

struct fx {
	struct fakeport *p;
	struct fakeport_loop *d;
	struct gdrv *c;
	int fds_before;
};

static int fx_setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	struct device_config cfg = {.name = "can-hostile"};
	struct gdrv_opts o;

	assert_non_null(x);
	x->fds_before = tfd_count();
	assert_int_equal(fakeport_new(&x->p), 0);
	assert_int_equal(fakeport_loop_start(&x->d, &cfg, x->p), 0);
	gdrv_opts_default(&o);
	o.can_features = F_CLASSIC;
	assert_int_equal(gdrv_open(&x->c, fakeport_loop_path(x->d), &o, T_MS), 0);
	assert_int_equal(gdrv_start(x->c, T_MS), VIRTIO_CAN_RESULT_OK);
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *x = *state;
	int ret = 0;

	/* A test that failed may have left its guest hook behind. */
	fakeport_on_send(x->p, NULL, NULL);
	gdrv_close(x->c);
	assert_false(fakeport_loop_exited(x->d, &ret));
	assert_int_equal(fakeport_loop_stop(x->d), 0);
	fakeport_free(x->p);
	assert_int_equal(tfd_count(), x->fds_before);
	free(x);
	return 0;
}

/* The loop answers its control fd within a bound: it is not stuck in a call. */
#define T_ALIVE_MS 2000
static void assert_loop_alive(struct fx *x)
{
	assert_int_equal(fakeport_loop_ping(x->d, T_ALIVE_MS), 0);
}

/* SET_VRING_CALL / KICK of ring q with fd (the backend gets its own copy). */
static void set_ring_fd(struct fx *x, uint32_t request, unsigned int q, int fd)
{
	uint64_t v = q;

	assert_int_equal(fe_set(gdrv_fe(x->c), request, &v, sizeof(v), &fd, 1), 0);
}

static struct cframe frame(uint32_t id)
{
	struct cframe f;

	memset(&f, 0, sizeof(f));
	f.id = id;
	f.len = 1;
	f.data[0] = 0x5a;
	return f;
}

static void fill_pipe(int wfd)
{
	uint8_t buf[4096] = {0};
	int fl = fcntl(wfd, F_GETFL);

	assert_int_equal(fcntl(wfd, F_SETFL, fl | O_NONBLOCK), 0);
	while (write(wfd, buf, sizeof(buf)) > 0)
		;
	assert_int_equal(errno, EAGAIN);
	/* Given back blocking: that is how a careless frontend would pass it. */
	assert_int_equal(fcntl(wfd, F_SETFL, fl & ~O_NONBLOCK), 0);
}

/*
 * A call fd that is a full pipe nobody reads: a blocking write() on it would
 * freeze the loop at the first interrupt. The backend makes it non-blocking.
 */
static void test_call_fd_full_pipe(void **state)
{
	struct fx *x = *state;
	struct cframe f = frame(0x123);
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fill_pipe(p[1]);
	set_ring_fd(x, VHOST_USER_SET_VRING_CALL, VIRTIO_CAN_QUEUE_TX, p[1]);
	close(p[1]);
	/* Completing this request signals the call fd. */
	assert_true(gdrv_tx(x->c, &f) >= 0);
	assert_int_equal(fakeport_wait_sent(x->p, 1, T_MS), 0);
	assert_loop_alive(x);
	/* And the frontend is served as before. */
	assert_true(gdrv_status(x->c) >= 0);
	close(p[0]);
}

/*
 * A kick fd that polls readable but whose read() would block: a unix socket
 * with SO_RCVLOWAT 8 holding one byte. poll-then-blocking-read froze here.
 */
static void test_kick_fd_rcvlowat_socket(void **state)
{
	struct fx *x = *state;
	int sv[2], lowat = 8;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat)), 0);
	set_ring_fd(x, VHOST_USER_SET_VRING_KICK, VIRTIO_CAN_QUEUE_TX, sv[0]);
	close(sv[0]);
	assert_int_equal(write(sv[1], "k", 1), 1);
	assert_loop_alive(x);
	assert_true(gdrv_status(x->c) >= 0);
	close(sv[1]);
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * A kick fd that is a pipe whose writer hung up: readable (EOF) forever. It
 * must neither spin the loop nor stay: the frontend broke its ring and loses
 * the connection, and the daemon sleeps again.
 */
static void test_kick_fd_hung_up_pipe(void **state)
{
	struct fx *x = *state;
	struct timespec idle = {.tv_nsec = 300 * 1000000L};
	double before;
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	set_ring_fd(x, VHOST_USER_SET_VRING_KICK, VIRTIO_CAN_QUEUE_TX, p[0]);
	close(p[0]);
	close(p[1]);
	assert_int_equal(fe_wait_closed(gdrv_fe(x->c), T_MS), 0);
	assert_loop_alive(x);
	/* Idle now: this process (the loop and us sleeping) uses next to no CPU. */
	before = cpu_s();
	nanosleep(&idle, NULL);
	assert_true(cpu_s() - before < 0.1);
}

/*
 * A guest that keeps its TX ring full must not keep the loop from anything
 * else: while it reposts every request at once (txflood), the loop answers
 * its control fd, serves a frontend message, and delivers a frame from the
 * bus. Before the per-wakeup budget one call drained the ring for as long
 * as the guest kept it full.
 */
static void test_tx_refilling_guest_starves_nothing(void **state)
{
	struct fx *x = *state;
	/* Static: the hook may still run if the test fails half way. */
	static struct txflood fl;
	struct cframe in = frame(0x321), got;
	unsigned int base;

	assert_int_equal(txflood_start(&fl, x->c, x->p, x->d, 2 * T_ALIVE_MS), 0);
	base = fakeport_sent_count(x->p);
	assert_int_equal(fakeport_wait_sent(x->p, base + 10u * 256, T_MS), 0);
	/* Flat out now, and the loop still gets to everything else. */
	assert_loop_alive(x);
	assert_true(gdrv_status(x->c) >= 0);
	assert_int_equal(fakeport_inject_frames(x->p, &in, 1), 0);
	assert_int_equal(gdrv_rx(x->c, &got, T_ALIVE_MS), 1);
	assert_int_equal(got.id, in.id);
	assert_true(txflood_running(&fl));
	assert_int_equal(txflood_stop(&fl, x->d), 0);
	assert_true(fl.moved > 10u * 256);
}

static void set_msg_timeout_1s(struct loop *m, void *arg)
{
	(void)arg;
	vu_backend_set_msg_timeout(loop_backend(m, 0), 1000);
}

/*
 * A frontend dribbling a message one byte every 100 ms: the loop serves
 * everything else meanwhile, and the message's deadline (1 s here) ends the
 * connection; the next frontend is served. Before, the loop sat in a
 * blocking read for the whole message (each byte restarted its timeout).
 */
static void test_dribbled_message(void **state)
{
	struct fx *x = *state;
	struct fe *f = gdrv_fe(x->c);
	struct timespec gap = {.tv_nsec = 100 * 1000000L};
	struct {
		struct vhost_user_hdr h;
		uint64_t v;
	} __attribute__((packed)) msg = {
	    .h = {.request = VHOST_USER_SET_FEATURES, .flags = VHOST_USER_VERSION, .size = 8},
	    .v = 0,
	};
	const uint8_t *p = (const uint8_t *)&msg;
	unsigned int sent = 0;

	assert_int_equal(fakeport_loop_exec(x->d, set_msg_timeout_1s, NULL), 0);
	for (; sent < sizeof(msg); sent++) {
		if (send(fe_sock(f), p + sent, 1, MSG_NOSIGNAL) != 1)
			break;
		assert_loop_alive(x);
		nanosleep(&gap, NULL);
	}
	/* 20 bytes at 100 ms take 2 s: the deadline came first. */
	assert_true(sent < sizeof(msg));
	assert_int_equal(fe_wait_closed(f, T_MS), 0);
	assert_loop_alive(x);
	assert_int_equal(gdrv_reconnect(x->c, fakeport_loop_path(x->d), T_MS), 0);
	assert_true(gdrv_status(x->c) >= 0);
}

/*
 * A frontend that sends requests and never reads the replies: once the
 * replies fill the socket, the backend drops it rather than wait for room.
 */
static void test_replies_never_read(void **state)
{
	struct fx *x = *state;
	struct fe *f = gdrv_fe(x->c);
	struct vhost_user_hdr h = {.request = VHOST_USER_GET_FEATURES, .flags = VHOST_USER_VERSION};
	int fl = fcntl(fe_sock(f), F_GETFL);
	unsigned int n = 0;

	assert_int_equal(fcntl(fe_sock(f), F_SETFL, fl | O_NONBLOCK), 0);
	/* Requests until our own send buffer is full, the backend's replies too. */
	for (int idle = 0; idle < 50 && n < 1000000; n++) {
		if (send(fe_sock(f), &h, sizeof(h), MSG_NOSIGNAL) == (ssize_t)sizeof(h)) {
			idle = 0;
			continue;
		}
		if (errno != EAGAIN)
			break;
		/* Let the loop read what it can, then try again. */
		assert_loop_alive(x);
		idle++;
	}
	assert_loop_alive(x);
	assert_int_equal(fcntl(fe_sock(f), F_SETFL, fl), 0);
	assert_int_equal(fe_wait_closed(f, T_MS), 0);
	assert_int_equal(gdrv_reconnect(x->c, fakeport_loop_path(x->d), T_MS), 0);
	assert_true(gdrv_status(x->c) >= 0);
}

static void reopen_frontend(struct fx *x)
{
	struct gdrv_opts o;

	gdrv_close(x->c);
	x->c = NULL;
	gdrv_opts_default(&o);
	o.can_features = F_CLASSIC;
	assert_int_equal(gdrv_open(&x->c, fakeport_loop_path(x->d), &o, T_MS), 0);
	assert_int_equal(gdrv_start(x->c, T_MS), VIRTIO_CAN_RESULT_OK);
}

/*
 * Truncate every guest memory file: the daemon's mappings lose their pages.
 * The frontend is connected afresh first: cmocka puts its own SIGBUS
 * handler in place for each test body, and the backend's is installed (on
 * top of it) when guest memory is mapped, so that must happen in the body.
 */
static void shrink_guest_memory(struct fx *x)
{
	struct fe *f;

	reopen_frontend(x);
	f = gdrv_fe(x->c);

	for (unsigned int i = 0; i < fe_nregions(f); i++)
		assert_int_equal(ftruncate(fe_region_fd(f, i), 0), 0);
}

/* After losing its memory: the frontend is gone, a new one is served. */
static void assert_next_frontend_served(struct fx *x)
{
	struct cframe in = frame(0x123), got;

	assert_int_equal(fe_wait_closed(gdrv_fe(x->c), T_MS), 0);
	assert_loop_alive(x);
	reopen_frontend(x);
	assert_int_equal(fakeport_inject_frames(x->p, &in, 1), 0);
	assert_int_equal(gdrv_rx(x->c, &got, T_MS), 1);
	assert_int_equal(got.id, 0x123);
}

/*
 * The frontend shrinks guest memory under the running device, then kicks
 * TX: the daemon's next read of the ring faulted (SIGBUS) and killed it.
 * Now the fault is caught, and the frontend that broke its memory is
 * dropped. The test touches only the socket and the kick fd after the
 * shrink: its own mapping of guest memory is gone too.
 */
static void test_guest_memory_shrinks_tx(void **state)
{
	struct fx *x = *state;

	uint64_t one = 1;

	shrink_guest_memory(x);
	assert_int_equal(
	    write(fe_ring_kick_fd(gdrv_fe(x->c), VIRTIO_CAN_QUEUE_TX), &one, sizeof(one)),
	    sizeof(one));
	assert_next_frontend_served(x);
}

/* The same, the fault taken by a frame from the bus filling an RX buffer. */
static void test_guest_memory_shrinks_rx(void **state)
{
	struct fx *x = *state;
	struct cframe in = frame(0x77);

	shrink_guest_memory(x);
	assert_int_equal(fakeport_inject_frames(x->p, &in, 1), 0);
	assert_next_frontend_served(x);
}

/*
 * A memory table whose region the file does not cover: refused (REPLY_ACK
 * -EREMOTEIO), and the running device keeps its old table and works on.
 */
static void test_region_larger_than_file(void **state)
{
	struct fx *x = *state;
	struct fe *f = gdrv_fe(x->c);
	struct cframe in = frame(0x42), got;
	int fd = fe_region_fd(f, 1);

	/*
	 * Region 1 is 4 MiB at offset 1 MiB of a 6 MiB file: make it 4 MiB (only
	 * the last MiB of the region is cut, where nothing was allocated).
	 */
	assert_int_equal(ftruncate(fd, 4 << 20), 0);
	assert_int_equal(fe_set_mem_table(f), -EREMOTEIO);
	assert_int_equal(ftruncate(fd, 6 << 20), 0);
	assert_true(fe_connected(f));
	assert_int_equal(fakeport_inject_frames(x->p, &in, 1), 0);
	assert_int_equal(gdrv_rx(x->c, &got, T_MS), 1);
	assert_int_equal(got.id, 0x42);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_call_fd_full_pipe),	     T(test_kick_fd_rcvlowat_socket),
	    T(test_kick_fd_hung_up_pipe),    T(test_tx_refilling_guest_starves_nothing),
	    T(test_dribbled_message),	     T(test_replies_never_read),
	    T(test_guest_memory_shrinks_tx), T(test_guest_memory_shrinks_rx),
	    T(test_region_larger_than_file),
	};

	if (!getenv("VDC_TEST_VERBOSE"))
		vlog_set_level(VLOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
