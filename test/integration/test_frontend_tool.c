/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The vhost-device-can-frontend binary, run for real against an in-process
 * backend and virtio-can device whose CAN port is a fake that records: what
 * the tool is told to send reaches the port, frames put into the device are
 * printed as candump prints them, NOT_OK answers are reported and fail the
 * exit status, usage errors exit 2 without connecting.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bthread.h"
#include "device.h"
#include "tfd.h"

#ifndef VDC_FRONTEND_PATH
#error "VDC_FRONTEND_PATH must name the frontend tool binary"
#endif

#define T_MS 10000
#define MAX_SENT 64
#define MAX_ARGS 32
#define OUT_CAP 16384

/* The fake CAN port: records what the device sends, fails ids on request. */
struct fport {
	pthread_mutex_t lock;
	struct cframe sent[MAX_SENT];
	unsigned int nsent;
	unsigned int nconfirmed;
	uint32_t fail_id; /* send of this id fails with ENOBUFS */
	bool fail;
	bool tx_confirm;
};

static int fp_send(void *p, const struct cframe *f, unsigned int n, int *res)
{
	struct fport *fp = p;

	pthread_mutex_lock(&fp->lock);
	for (unsigned int i = 0; i < n; i++) {
		if (fp->fail && f[i].id == fp->fail_id) {
			res[i] = -ENOBUFS;
			continue;
		}
		if (fp->nsent < MAX_SENT)
			fp->sent[fp->nsent++] = f[i];
		res[i] = 0;
	}
	pthread_mutex_unlock(&fp->lock);
	return 0;
}

static int fp_ok(void *p)
{
	(void)p;
	return 0;
}

static int fp_set_tx_confirm(void *p, bool on)
{
	struct fport *fp = p;

	pthread_mutex_lock(&fp->lock);
	fp->tx_confirm = on;
	pthread_mutex_unlock(&fp->lock);
	return 0;
}

static const struct device_port_ops fp_ops = {
    .send = fp_send, .start = fp_ok, .stop = fp_ok, .set_tx_confirm = fp_set_tx_confirm};

struct rig {
	struct fport port;
	struct device *dev;
	struct bthread *bkt;
	int fds_before;
};

static void set_backend(struct vu_backend *b, void *arg)
{
	device_set_backend(arg, b);
}

static int setup(void **state)
{
	struct device_config cfg = {.name = "tool-test", .fd = true};
	struct rig *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	x->fds_before = tfd_count();
	pthread_mutex_init(&x->port.lock, NULL);
	assert_int_equal(device_new(&x->dev, &cfg, &fp_ops, &x->port), 0);
	assert_int_equal(bthread_start(&x->bkt, device_vu_device(x->dev)), 0);
	assert_int_equal(bthread_exec(x->bkt, set_backend, x->dev), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct rig *x = *state;

	bthread_stop(x->bkt);
	device_free(x->dev);
	pthread_mutex_destroy(&x->port.lock);
	/* Every pipe to the tool and every backend fd is closed. */
	assert_int_equal(tfd_count(), x->fds_before);
	free(x);
	return 0;
}

/* ---- running the tool ---- */

struct result {
	int status; /* exit code, or 128 + signal */
	char out[OUT_CAP];
	char err[OUT_CAP];
};

struct proc {
	pid_t pid;
	int out, err;
	size_t olen, elen;
	struct result *r;
};

/*
 * Start the tool with args (NULL-terminated, without the program), stdin
 * from in (NULL: empty); its output goes to r.
 */
static void spawn(struct proc *p, struct result *r, const char *in, const char *const *args)
{
	const char *argv[MAX_ARGS + 2] = {VDC_FRONTEND_PATH};
	int out[2], err[2], inp[2];
	int n = 1;

	while (args[n - 1]) {
		assert_true(n <= MAX_ARGS);
		argv[n] = args[n - 1];
		n++;
	}
	argv[n] = NULL;
	memset(p, 0, sizeof(*p));
	p->r = r;
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	assert_int_equal(pipe2(inp, O_CLOEXEC), 0);
	if (in) {
		/* Small enough for the pipe: written before the child runs. */
		assert_int_equal(write(inp[1], in, strlen(in)), (ssize_t)strlen(in));
	}
	close(inp[1]);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		dup2(inp[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		/* A hung tool dies instead of hanging the test. */
		alarm(60);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(inp[0]);
	close(out[1]);
	close(err[1]);
	p->out = out[0];
	p->err = err[0];
}

/* Read what the tool wrote until stderr holds needle (NULL: until both outputs close). */
static void pump(struct proc *p, const char *needle)
{
	struct result *r = p->r;

	while (p->out >= 0 || p->err >= 0) {
		struct pollfd pf[2] = {{.fd = p->out, .events = POLLIN},
				       {.fd = p->err, .events = POLLIN}};

		r->out[p->olen] = '\0';
		r->err[p->elen] = '\0';
		if (needle && strstr(r->err, needle))
			return;
		assert_true(poll(pf, 2, 70000) > 0);
		for (int i = 0; i < 2; i++) {
			int *fd = i ? &p->err : &p->out;
			char *buf = i ? r->err : r->out;
			size_t *len = i ? &p->elen : &p->olen;
			ssize_t n;

			if (!pf[i].revents)
				continue;
			n = read(*fd, buf + *len, OUT_CAP - 1 - *len);
			if (n <= 0) {
				close(*fd);
				*fd = -1;
				continue;
			}
			*len += (size_t)n;
		}
	}
	r->out[p->olen] = '\0';
	r->err[p->elen] = '\0';
	if (needle && !strstr(r->err, needle))
		fail_msg("the tool ended without writing '%s'; stderr: %s", needle, r->err);
}

/* Read both outputs until the tool closes them, then reap it. */
static void collect(struct proc *p)
{
	int st;

	pump(p, NULL);
	assert_int_equal(waitpid(p->pid, &st, 0), p->pid);
	p->r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void run(struct result *r, const char *in, const char *const *args)
{
	struct proc p;

	spawn(&p, r, in, args);
	collect(&p);
}

static bool pred_started(struct vu_backend *b, void *arg)
{
	(void)b;
	return device_started(arg);
}

static bool pred_stopped(struct vu_backend *b, void *arg)
{
	(void)b;
	return !device_started(arg);
}

static void inject(struct rig *x, const struct cframe *f, unsigned int n)
{
	assert_int_equal(bthread_device_rx(x->bkt, x->dev, f, n), 0);
}

/* The frames the port sent, compared with what was asked (BRS/ESI are the device's choice). */
static void expect_sent(struct rig *x, const struct cframe *want, unsigned int n)
{
	const unsigned int kept = CFRAME_EXT | CFRAME_FD | CFRAME_RTR;

	pthread_mutex_lock(&x->port.lock);
	assert_int_equal(x->port.nsent, n);
	for (unsigned int i = 0; i < n; i++) {
		const struct cframe *got = &x->port.sent[i];

		assert_int_equal(got->id, want[i].id);
		assert_int_equal(got->flags & kept, want[i].flags & kept);
		assert_int_equal(got->len, want[i].len);
		if (!(want[i].flags & CFRAME_RTR))
			assert_memory_equal(got->data, want[i].data, want[i].len);
	}
	pthread_mutex_unlock(&x->port.lock);
}

/* ---- tests ---- */

static void test_send_every_form(void **state)
{
	struct rig *x = *state;
	static struct result r;
	struct cframe want[7] = {
	    {.id = 0x123, .len = 4, .data = {0xde, 0xad, 0xbe, 0xef}},
	    {.id = 0x12345678, .flags = CFRAME_EXT, .len = 1, .data = {0x00}},
	    {.id = 0x123, .flags = CFRAME_FD, .len = 2, .data = {0xaa, 0xbb}},
	    {.id = 0x123, .flags = CFRAME_RTR, .len = 5},
	    {.id = 0x7ff, .flags = CFRAME_RTR, .len = 0},
	    {.id = 0x123, .len = 3, .data = {0x11, 0x22, 0x33}},
	    /* 9 bytes go out as 12, zero padded. */
	    {.id = 0x1abcdef0,
	     .flags = CFRAME_EXT | CFRAME_FD,
	     .len = 12,
	     .data = {1, 2, 3, 4, 5, 6, 7, 8, 9}},
	};
	const char *const args[] = {"-s",
				    bthread_path(x->bkt),
				    "-t",
				    "0",
				    "123#DEADBEEF",
				    "12345678#00",
				    "123##1AABB",
				    "123#R5",
				    "7FF#R",
				    "123#11.22.33",
				    "1ABCDEF0##0010203040506070809",
				    NULL};

	run(&r, NULL, args);
	assert_string_equal(r.err, "");
	assert_string_equal(r.out, "");
	assert_int_equal(r.status, 0);
	expect_sent(x, want, 7);
	/* It stopped the controller and disconnected. */
	assert_int_equal(bthread_wait_idle(x->bkt, 1, T_MS), 0);
	assert_int_equal(bthread_wait(x->bkt, pred_stopped, x->dev, T_MS), 0);
}

static void test_order_and_verbose(void **state)
{
	struct rig *x = *state;
	static struct result r;
	const struct cframe want[2] = {{.id = 0x100, .len = 1, .data = {0x01}},
				       {.id = 0x101, .len = 1, .data = {0x02}}};
	const char *const args[] = {"--socket-path",
				    bthread_path(x->bkt),
				    "--order=cloud-hypervisor",
				    "--timeout=0",
				    "-v",
				    "100#01",
				    "101#02",
				    NULL};

	run(&r, NULL, args);
	assert_int_equal(r.status, 0);
	expect_sent(x, want, 2);
	assert_non_null(strstr(r.err, "sent 100#01\n"));
	assert_non_null(strstr(r.err, "sent 101#02\n"));
	assert_non_null(strstr(r.err, "controller started"));
	assert_null(strstr(r.err, "NOT_OK"));
}

static void test_receive_candump_lines(void **state)
{
	struct rig *x = *state;
	static struct result r;
	struct cframe f[4] = {
	    {.id = 0x123, .len = 4, .data = {0xde, 0xad, 0xbe, 0xef}},
	    {.id = 0x1abcdef0, .flags = CFRAME_EXT | CFRAME_FD | CFRAME_BRS, .len = 12},
	    {.id = 0x10, .flags = CFRAME_RTR, .len = 3},
	    {.id = 0x5, .len = 0},
	};
	const char *const args[] = {"-s", bthread_path(x->bkt), "-n", "4", "-i", "vcan0", NULL};
	struct proc p;

	for (int i = 0; i < 12; i++)
		f[1].data[i] = (uint8_t)(0xa0 + i);
	/* After the extended frame, standard ids are indented as candump does. */
	spawn(&p, &r, NULL, args);
	assert_int_equal(bthread_wait(x->bkt, pred_started, x->dev, T_MS), 0);
	inject(x, f, 2);
	inject(x, f + 2, 2);
	collect(&p);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "");
	assert_string_equal(r.out, "  vcan0  123   [4]  DE AD BE EF\n"
				   "  vcan0  1ABCDEF0  [12]  A0 A1 A2 A3 A4 A5 A6 A7 A8 A9 AA AB\n"
				   "  vcan0       010   [3]  remote request\n"
				   "  vcan0       005   [0] \n");
}

/* Exactly --count lines, even when more frames arrive together. */
static void test_count_stops(void **state)
{
	struct rig *x = *state;
	static struct result r;
	struct cframe f[3] = {{.id = 0x1, .len = 1}, {.id = 0x2, .len = 1}, {.id = 0x3, .len = 1}};
	const char *const args[] = {"-s", bthread_path(x->bkt), "--count=2", NULL};
	struct proc p;

	spawn(&p, &r, NULL, args);
	assert_int_equal(bthread_wait(x->bkt, pred_started, x->dev, T_MS), 0);
	inject(x, f, 3);
	collect(&p);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "  virtio  001   [1]  00\n"
				   "  virtio  002   [1]  00\n");
}

static void test_count_short_of_timeout(void **state)
{
	struct rig *x = *state;
	static struct result r;
	const struct cframe f = {.id = 0x42, .len = 2, .data = {0x12, 0x34}};
	const char *const args[] = {"-s", bthread_path(x->bkt), "-n", "2", "-t", "2.5", NULL};
	struct proc p;

	spawn(&p, &r, NULL, args);
	assert_int_equal(bthread_wait(x->bkt, pred_started, x->dev, T_MS), 0);
	inject(x, &f, 1);
	collect(&p);
	assert_int_equal(r.status, 3);
	assert_string_equal(r.out, "  virtio  042   [2]  12 34\n");
	assert_non_null(strstr(r.err, "received 1 of 2 frames"));
}

static void test_not_ok_reported(void **state)
{
	struct rig *x = *state;
	static struct result r;
	const struct cframe want[2] = {{.id = 0x111, .len = 1, .data = {0x01}},
				       {.id = 0x112, .len = 1, .data = {0x03}}};
	const char *const args[] = {"-s",     bthread_path(x->bkt), "-t",	  "0",
				    "111#01", "666#02",		"112#03", NULL};

	pthread_mutex_lock(&x->port.lock);
	x->port.fail = true;
	x->port.fail_id = 0x666;
	pthread_mutex_unlock(&x->port.lock);
	run(&r, NULL, args);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "frame 666#02: NOT_OK\n"));
	assert_null(strstr(r.err, "111#01"));
	assert_null(strstr(r.err, "112#03"));
	assert_non_null(strstr(r.err, "1 frame(s) answered NOT_OK"));
	expect_sent(x, want, 2);
}

/* --no-fd: a CAN FD frame is a type that was not negotiated, refused by the device. */
static void test_no_fd(void **state)
{
	struct rig *x = *state;
	static struct result r;
	const struct cframe want = {.id = 0x200, .len = 1, .data = {0x01}};
	const char *const args[] = {"-s", bthread_path(x->bkt), "--no-fd",	    "-t",
				    "0",  "200#01",	    "201##1112233", NULL};

	run(&r, NULL, args);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "frame 201##1112233: NOT_OK\n"));
	expect_sent(x, &want, 1);
}

static bool pred_confirm_all(struct vu_backend *b, void *arg)
{
	struct rig *x = arg;
	bool on;

	(void)b;
	pthread_mutex_lock(&x->port.lock);
	on = x->port.tx_confirm;
	while (on && x->port.nconfirmed < x->port.nsent) {
		struct cframe f = x->port.sent[x->port.nconfirmed++];

		pthread_mutex_unlock(&x->port.lock);
		device_tx_confirmed(x->dev, &f);
		pthread_mutex_lock(&x->port.lock);
	}
	on = on && x->port.nconfirmed == 2;
	pthread_mutex_unlock(&x->port.lock);
	return on;
}

/* --late-tx-ack negotiates it: the device turns confirmations on, answers after them. */
static void test_late_tx_ack(void **state)
{
	struct rig *x = *state;
	static struct result r;
	const char *const args[] = {"-s", bthread_path(x->bkt), "--late-tx-ack", "-t", "0",
				    "-v", "300#01",	    "301#02",	     NULL};
	struct proc p;

	spawn(&p, &r, NULL, args);
	assert_int_equal(bthread_wait(x->bkt, pred_confirm_all, x, T_MS), 0);
	collect(&p);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.err, "LATE_TX_ACK negotiated"));
	assert_non_null(strstr(r.err, "sent 300#01\n"));
	assert_non_null(strstr(r.err, "sent 301#02\n"));
}

static void test_stdin_frames(void **state)
{
	struct rig *x = *state;
	static struct result r;
	const struct cframe want[4] = {{.id = 0x100, .len = 0},
				       {.id = 0x150, .len = 1, .data = {0x01}},
				       {.id = 0x151, .len = 2, .data = {0x02, 0x03}},
				       {.id = 0x200, .len = 0}};
	const char *const args[] = {"-s", bthread_path(x->bkt), "-t", "0", "100#", "-", "200#", NULL};

	run(&r, "150#01\n\n  151#02.03 \r\n", args);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.err, "");
	expect_sent(x, want, 4);
}

static void test_stdin_bad_line(void **state)
{
	struct rig *x = *state;
	static struct result r;
	const struct cframe want[2] = {{.id = 0x150, .len = 1, .data = {0x01}},
				       {.id = 0x152, .len = 1, .data = {0x04}}};
	const char *const args[] = {"-s", bthread_path(x->bkt), "-t", "0", "-", NULL};

	/* No newline at the end: the last line still counts. */
	run(&r, "150#01\n151#0\n152#04", args);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "stdin line 2: '151#0': a data byte needs two hex digits"));
	expect_sent(x, want, 2);
}

static void test_sigint_stops(void **state)
{
	struct rig *x = *state;
	static struct result r;
	const char *const args[] = {"-s", bthread_path(x->bkt), NULL};
	struct proc p;

	spawn(&p, &r, NULL, args);
	assert_int_equal(bthread_wait(x->bkt, pred_started, x->dev, T_MS), 0);
	assert_int_equal(kill(p.pid, SIGINT), 0);
	collect(&p);
	assert_int_equal(r.status, 0);
	assert_int_equal(bthread_wait(x->bkt, pred_stopped, x->dev, T_MS), 0);
	assert_int_equal(bthread_wait_idle(x->bkt, 1, T_MS), 0);
}

static void do_bus_off(struct vu_backend *b, void *arg)
{
	(void)b;
	device_bus_off(arg);
}

static void test_bus_off_reported(void **state)
{
	struct rig *x = *state;
	static struct result r;
	const char *const args[] = {"-s", bthread_path(x->bkt), NULL};
	struct proc p;

	spawn(&p, &r, NULL, args);
	assert_int_equal(bthread_wait(x->bkt, pred_started, x->dev, T_MS), 0);
	assert_int_equal(bthread_exec(x->bkt, do_bus_off, x->dev), 0);
	pump(&p, "bus-off");
	assert_int_equal(kill(p.pid, SIGTERM), 0);
	collect(&p);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.err, "config change: controller status 0x1 (bus-off"));
}

static void test_daemon_gone(void **state)
{
	struct rig *x = *state;
	static struct result r;
	const char *const args[] = {"-s", bthread_path(x->bkt), NULL};
	struct proc p;

	spawn(&p, &r, NULL, args);
	assert_int_equal(bthread_wait(x->bkt, pred_started, x->dev, T_MS), 0);
	bthread_stop(x->bkt);
	x->bkt = NULL;
	collect(&p);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "the daemon closed the connection"));
}

static void test_no_daemon(void **state)
{
	static struct result r;
	const char *const args[] = {"-s", "/nonexistent/vdc-no-such.sock", "-w", "0.2", "-t", "0",
				    NULL};

	(void)state;
	run(&r, NULL, args);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "/nonexistent/vdc-no-such.sock"));
}

static void expect_usage_error(struct rig *x, const char *const *args, const char *msg)
{
	static struct result r;

	run(&r, NULL, args);
	assert_int_equal(r.status, 2);
	assert_string_equal(r.out, "");
	if (!strstr(r.err, msg))
		fail_msg("stderr '%s' lacks '%s'", r.err, msg);
	/* Nothing connected. */
	assert_int_equal(bthread_sessions(x->bkt), 0);
	assert_false(bthread_connected(x->bkt));
}

static void test_usage_errors(void **state)
{
	struct rig *x = *state;
	const char *s = bthread_path(x->bkt);

	expect_usage_error(x, (const char *const[]){"123#00", NULL}, "missing --socket-path");
	expect_usage_error(x, (const char *const[]){"-s", s, "12#00", NULL}, "frame '12#00'");
	expect_usage_error(x, (const char *const[]){"-s", s, "123#00", "800#00", NULL},
			   "frame '800#00': identifier out of range");
	expect_usage_error(x, (const char *const[]){"-s", s, "123#0", NULL},
			   "needs two hex digits");
	expect_usage_error(x, (const char *const[]){"-s", s, "123#001122334455667788", NULL},
			   "too much data");
	expect_usage_error(x, (const char *const[]){"-s", s, "--bogus", NULL}, "--help");
	expect_usage_error(x, (const char *const[]){"-s", s, "-n", "0", NULL}, "--count");
	expect_usage_error(x, (const char *const[]){"-s", s, "-n", "x", NULL}, "--count");
	expect_usage_error(x, (const char *const[]){"-s", s, "-t", "-1", NULL}, "--timeout");
	expect_usage_error(x, (const char *const[]){"-s", s, "-t", "nan", NULL}, "--timeout");
	expect_usage_error(x, (const char *const[]){"-s", s, "-t", "1s", NULL}, "--timeout");
	expect_usage_error(x, (const char *const[]){"-s", s, "--order=xen", NULL}, "--order");
	expect_usage_error(x, (const char *const[]){"-s", s, "--wait=-2", NULL}, "--wait");
	expect_usage_error(x, (const char *const[]){"-s", s, "-i", "abcdefghijklmnop", NULL},
			   "--interface");
	expect_usage_error(x, (const char *const[]){"-s", s, "-i", "", NULL}, "--interface");
	expect_usage_error(x, (const char *const[]){"-s", s, "-", "-", NULL}, "given twice");
	expect_usage_error(x, (const char *const[]){"-s", NULL}, "--help");
}

static void test_help_version(void **state)
{
	static struct result r;

	(void)state;
	run(&r, NULL, (const char *const[]){"--help", NULL});
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Usage: vhost-device-can-frontend -s PATH"));
	for (const char *const *o = (const char *const[]){"--socket-path", "--count", "--timeout",
							  "--interface", "--no-fd", "--late-tx-ack",
							  "--order", "--wait", "--version", NULL};
	     *o; o++)
		assert_non_null(strstr(r.out, *o));
	run(&r, NULL, (const char *const[]){"-h", NULL});
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Usage: vhost-device-can-frontend"));
	run(&r, NULL, (const char *const[]){"--version", NULL});
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "vhost-device-can-frontend " VDC_VERSION "\n");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_send_every_form),
	    T(test_order_and_verbose),
	    T(test_receive_candump_lines),
	    T(test_count_stops),
	    T(test_count_short_of_timeout),
	    T(test_not_ok_reported),
	    T(test_no_fd),
	    T(test_late_tx_ack),
	    T(test_stdin_frames),
	    T(test_stdin_bad_line),
	    T(test_sigint_stops),
	    T(test_bus_off_reported),
	    T(test_daemon_gone),
	    T(test_no_daemon),
	    T(test_usage_errors),
	    T(test_help_version),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
