/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The real daemon under test, a guest driver on it, raw peers on the bus. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/can/error.h>
#include <linux/can/raw.h>

#include <cmocka.h>

#include "device.h"
#include "tfd.h"
#include "vd.h"

#ifndef VDC_DAEMON_PATH
#error "VDC_DAEMON_PATH must name the daemon binary"
#endif

uint64_t vd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void vd_sleep_ms(unsigned int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int vd_sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
}

void vd_skip_without_vcan(void)
{
	const char *ifs[] = {"vcan0", "vcan1", "vcan2"};
	int s = socket(AF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW);

	if (s < 0) {
		printf("SKIPPED: no CAN in this kernel (%s); run in scripts/vm-test.sh\n",
		       strerror(errno));
		exit(77);
	}
	close(s);
	for (unsigned int i = 0; i < 3; i++) {
		if (if_nametoindex(ifs[i]) == 0) {
			printf("SKIPPED: %s is missing (the VM rig creates it)\n", ifs[i]);
			exit(77);
		}
	}
}

size_t vd_read_file(const char *path, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	buf[0] = '\0';
	if (fd < 0)
		return 0;
	while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	return len;
}

void vd_init(struct vd *d)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/vdc-e2e.XXXXXX");
	assert_non_null(mkdtemp(d->dir));
	snprintf(d->sock, sizeof(d->sock), "%s/can.sock", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/daemon.log", d->dir);
}

void vd_print_log(const struct vd *d)
{
	static char buf[1 << 16];

	if (!d->dir[0])
		return;
	vd_read_file(d->log, buf, sizeof(buf));
	printf("---- daemon log (%s) ----\n%s---- end of daemon log ----\n", d->log, buf);
	fflush(stdout);
}

int vd_listen_at(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s, 4), 0);
	return s;
}

void vd_spawn_with(struct vd *d, const char *const *wrapper, int pass_fd, const char *notify,
		   const char *const *args)
{
	const char *argv[40];
	unsigned int argc = 0;
	pid_t pid;

	for (unsigned int i = 0; wrapper && wrapper[i] && argc < 8; i++)
		argv[argc++] = wrapper[i];
	argv[argc++] = VDC_DAEMON_PATH;
	for (unsigned int i = 0; args[i] && argc < 39; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		if (pass_fd >= 0 && dup2(pass_fd, VD_FD) < 0)
			_exit(126);
		/* dup2 onto itself keeps FD_CLOEXEC: the daemon would find fd 3 closed. */
		if (pass_fd == VD_FD && fcntl(VD_FD, F_SETFD, 0) < 0)
			_exit(126);
		close_range(pass_fd >= 0 ? VD_FD + 1 : VD_FD, ~0u, 0);
		if (notify)
			setenv("NOTIFY_SOCKET", notify, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	d->pid = pid;
	d->status = -1;
}

void vd_spawn(struct vd *d, const char *const *args)
{
	vd_spawn_with(d, NULL, -1, NULL, args);
}

bool vd_wait_exit(struct vd *d, int timeout_ms)
{
	uint64_t end = vd_now_ms() + (uint64_t)timeout_ms;
	int st;

	if (!d->pid)
		return true;
	for (;;) {
		pid_t r = waitpid(d->pid, &st, WNOHANG);

		if (r == d->pid) {
			d->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			d->pid = 0;
			return true;
		}
		assert_int_equal(r, 0);
		if (vd_now_ms() >= end)
			return false;
		vd_sleep_ms(5);
	}
}

bool vd_running(struct vd *d)
{
	return d->pid && !vd_wait_exit(d, 0);
}

void vd_start(struct vd *d, const char *in, const char *out, ...)
{
	const char *args[20] = {"--socket-path", d->sock, "--can-in", in, "--can-out", out, "-v"};
	unsigned int n = 7;
	uint64_t end = vd_now_ms() + VD_WAIT_MS;
	struct stat st;
	va_list ap;

	va_start(ap, out);
	while (n < 19 && (args[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	args[n] = NULL;
	vd_spawn(d, args);
	while (stat(d->sock, &st) != 0 || !S_ISSOCK(st.st_mode)) {
		if (vd_wait_exit(d, 0)) {
			vd_print_log(d);
			fail_msg("the daemon exited (%d) before listening", d->status);
		}
		if (vd_now_ms() >= end) {
			vd_print_log(d);
			fail_msg("no socket at %s after %d ms", d->sock, VD_WAIT_MS);
		}
		vd_sleep_ms(5);
	}
}

int vd_run_to_exit(struct vd *d, const char *const *args)
{
	vd_spawn(d, args);
	if (!vd_wait_exit(d, VD_WAIT_MS)) {
		kill(d->pid, SIGKILL);
		vd_wait_exit(d, VD_WAIT_MS);
		vd_print_log(d);
		fail_msg("the daemon did not exit by itself");
	}
	return d->status;
}

void vd_stop(struct vd *d)
{
	struct stat st;

	assert_true(d->pid > 0);
	assert_int_equal(kill(d->pid, SIGTERM), 0);
	if (!vd_wait_exit(d, VD_WAIT_MS)) {
		vd_print_log(d);
		fail_msg("the daemon did not exit within %d ms of SIGTERM", VD_WAIT_MS);
	}
	if (d->status != 0) {
		vd_print_log(d);
		fail_msg("the daemon exited with %d after SIGTERM", d->status);
	}
	assert_int_equal(lstat(d->sock, &st), -1);
	assert_int_equal(errno, ENOENT);
}

void vd_cleanup(struct vd *d)
{
	if (d->pid) {
		kill(d->pid, SIGKILL);
		(void)vd_wait_exit(d, VD_WAIT_MS);
	}
	if (d->dir[0]) {
		unlink(d->sock);
		unlink(d->log);
		rmdir(d->dir);
		d->dir[0] = '\0';
	}
}

unsigned int vd_count_str(const char *s, const char *what)
{
	unsigned int n = 0;

	while ((s = strstr(s, what)) != NULL) {
		n++;
		s += strlen(what);
	}
	return n;
}

const char *vd_last_str(const char *s, const char *what)
{
	const char *last = NULL;

	while ((s = strstr(s, what)) != NULL) {
		last = s;
		s += strlen(what);
	}
	return last;
}

void vd_parse_outcomes(const char *buf, const char *prefix, struct vd_stats *s)
{
	const char *p = NULL;
	char key[128];

	for (unsigned int o = 0; o < DEVICE_OUTCOME_COUNT; o++) {
		int used = 0;

		if (o == 0 || device_outcome_is_tx(o - 1) != device_outcome_is_tx(o)) {
			assert_true(snprintf(key, sizeof(key), "%s%s: %s ", prefix,
					     device_outcome_is_tx(o) ? "tx" : "rx",
					     device_outcome_label(o)) < (int)sizeof(key));
			p = vd_last_str(buf, key);
			assert_non_null(p);
			p += strlen(key) - strlen(device_outcome_label(o)) - 1;
		} else {
			assert_int_equal(strncmp(p, ", ", 2), 0);
			p += 2;
		}
		assert_int_equal(
		    strncmp(p, device_outcome_label(o), strlen(device_outcome_label(o))), 0);
		p += strlen(device_outcome_label(o));
		assert_int_equal(sscanf(p, " %llu%n", &s->outcome[o], &used), 1);
		p += used;
	}
}

void vd_parse_stats(const char *buf, struct vd_stats *s)
{
	const char *bo, *kd;

	bo = vd_last_str(buf, "bus-off events:");
	assert_non_null(bo);
	memset(s, 0, sizeof(*s));
	vd_parse_outcomes(buf, "", s);
	assert_int_equal(sscanf(bo, "bus-off events: %llu", &s->busoff), 1);
	kd = vd_last_str(buf, "rx: dropped by the kernel (socket buffer full) ");
	s->rx_kernel = ~0ull;
	if (kd)
		assert_int_equal(sscanf(kd, "rx: dropped by the kernel (socket buffer full) %llu",
					&s->rx_kernel),
				 1);
}

void vd_stats(struct vd *d, struct vd_stats *s)
{
	static char buf[1 << 20];
	const char *bo, *kd;
	unsigned int before;
	uint64_t end = vd_now_ms() + VD_WAIT_MS;

	vd_read_file(d->log, buf, sizeof(buf));
	before = vd_count_str(buf, "bus-off events:");
	assert_int_equal(kill(d->pid, SIGUSR1), 0);
	for (;;) {
		vd_sleep_ms(10);
		vd_read_file(d->log, buf, sizeof(buf));
		/* The kernel line comes last; wait for the whole block. */
		if (vd_count_str(buf, "bus-off events:") > before &&
		    (bo = vd_last_str(buf, "bus-off events:")) && strchr(bo, '\n') &&
		    (!strstr(buf, "rx: dropped by the kernel") ||
		     ((kd = vd_last_str(buf, "rx: dropped by the kernel")) > bo &&
		      strchr(kd, '\n'))))
			break;
		if (vd_now_ms() >= end || !vd_running(d)) {
			vd_print_log(d);
			fail_msg("no counters in the log after SIGUSR1");
		}
	}
	vd_parse_stats(buf, s);
}

bool vd_log_has(const struct vd *d, const char *what)
{
	static char buf[1 << 16];

	vd_read_file(d->log, buf, sizeof(buf));
	return strstr(buf, what) != NULL;
}

unsigned int vd_log_count(const struct vd *d, const char *what)
{
	static char buf[1 << 20];

	vd_read_file(d->log, buf, sizeof(buf));
	return vd_count_str(buf, what);
}

void vd_wait_log(const struct vd *d, const char *what, unsigned int n)
{
	uint64_t end = vd_now_ms() + VD_WAIT_MS;

	while (vd_log_count(d, what) < n) {
		if (vd_now_ms() >= end) {
			vd_print_log(d);
			fail_msg("'%s' not %u times in the log after %d ms", what, n, VD_WAIT_MS);
		}
		vd_sleep_ms(10);
	}
}

unsigned long long vd_rx_drops(const struct vd_stats *s)
{
	return s->rx_dropped_stopped + s->rx_dropped_type + s->rx_dropped_overflow +
	       s->rx_dropped_small + s->rx_kernel;
}

unsigned long long vd_softnet_drops(void)
{
	char buf[8192], *line, *save = NULL;
	unsigned long long sum = 0;

	if (vd_read_file("/proc/net/softnet_stat", buf, sizeof(buf)) == 0)
		return 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned int processed, dropped;

		if (sscanf(line, "%x %x", &processed, &dropped) == 2)
			sum += dropped;
	}
	return sum;
}

long vd_status_kb(const struct vd *d, const char *field)
{
	char path[64], buf[4096];
	const char *p;
	long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
	assert_true(vd_read_file(path, buf, sizeof(buf)) > 0);
	p = strstr(buf, field);
	assert_non_null(p);
	assert_int_equal(sscanf(p + strlen(field), ": %ld kB", &v), 1);
	return v;
}

unsigned long long vd_cpu_ticks(const struct vd *d)
{
	char path[64], buf[1024];
	unsigned long long ut = 0, st = 0;
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)d->pid);
	assert_true(vd_read_file(path, buf, sizeof(buf)) > 0);
	/* After "(comm)": state is field 3, utime 14, stime 15. */
	p = strrchr(buf, ')');
	assert_non_null(p);
	assert_int_equal(
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st), 2);
	return ut + st;
}

int vd_count_fds(const struct vd *d)
{
	return tfd_count_pid(d->pid);
}

struct gdrv *vd_guest_open_only(const struct vd *d, uint64_t can_features)
{
	struct gdrv_opts o;
	struct gdrv *c = NULL;
	int r;

	gdrv_opts_default(&o);
	o.can_features = can_features;
	r = gdrv_open(&c, d->sock, &o, VD_WAIT_MS);
	if (r < 0)
		vd_print_log(d);
	assert_int_equal(r, 0);
	assert_non_null(c);
	return c;
}

struct gdrv *vd_guest_open(const struct vd *d, uint64_t can_features)
{
	struct gdrv *c = vd_guest_open_only(d, can_features);

	assert_int_equal(gdrv_start(c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	return c;
}

struct gdrv *vd_guest_at(const struct vd *d, const char *path)
{
	struct gdrv_opts o;
	struct gdrv *c = NULL;
	int r;

	gdrv_opts_default(&o);
	o.can_features = VD_NO_LATE_ACK;
	r = gdrv_open(&c, path, &o, VD_WAIT_MS);
	if (r < 0) {
		vd_print_log(d);
		fail_msg("no answer from the device at %s: %s", path, strerror(-r));
	}
	assert_int_equal(gdrv_start(c, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	return c;
}

struct cframe vd_marker(void)
{
	struct cframe f = cf_make(VD_MARK_ID, 0, 4, 0);

	memcpy(f.data, "MARK", 4);
	return f;
}

bool vd_is_marker(const struct cframe *f)
{
	return f->id == VD_MARK_ID && !(f->flags & (CFRAME_EXT | CFRAME_FD | CFRAME_RTR)) &&
	       f->len == 4 && memcmp(f->data, "MARK", 4) == 0;
}

void vd_frame_set(struct cframe set[VD_N_SET])
{
	set[0] = cf_make(0x123, 0, 3, 0x10);
	set[1] = cf_make(0x1abcdef, CFRAME_EXT, 8, 0x20);
	set[2] = cf_make(0x456, CFRAME_RTR, 4, 0);
	set[3] = cf_make(0x321, CFRAME_FD, 12, 0x30);
	set[4] = cf_make(0x1fffffff, CFRAME_EXT | CFRAME_FD, 64, 0x40);
}

void vd_assert_guest_frame(const struct cframe *got, const struct cframe *want)
{
	const uint8_t kind = CFRAME_EXT | CFRAME_FD | CFRAME_RTR;

	assert_int_equal(got->id, want->id);
	assert_int_equal(got->flags & kind, want->flags & kind);
	assert_int_equal(got->len, want->len);
	if (!(want->flags & CFRAME_RTR))
		assert_memory_equal(got->data, want->data, want->len);
}

void vd_guest_rx(struct gdrv *c, struct cframe *f)
{
	int r = gdrv_rx(c, f, VD_WAIT_MS);

	if (r != 1)
		fail_msg("guest RX: %d (%s)", r, r < 0 ? strerror(-r) : "?");
}

int vd_peer_open(const char *ifname)
{
	struct sockaddr_can addr = {.can_family = AF_CAN};
	int s = socket(AF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW);
	int one = 1;
	can_err_mask_t none = 0;

	assert_true(s >= 0);
	/* Refused on a classic interface only when sending FD; receiving is fine. */
	assert_int_equal(setsockopt(s, SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &one, sizeof(one)), 0);
	assert_int_equal(setsockopt(s, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &none, sizeof(none)), 0);
	addr.can_ifindex = (int)if_nametoindex(ifname);
	assert_true(addr.can_ifindex > 0);
	assert_int_equal(bind(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return s;
}

void vd_peer_close(int *s)
{
	if (*s >= 0)
		close(*s);
	*s = -1;
}

void vd_peer_send(int s, const struct cframe *f)
{
	struct canfd_frame cf;
	size_t size = (f->flags & CFRAME_FD) ? CANFD_MTU : CAN_MTU;

	memset(&cf, 0, sizeof(cf));
	cf.can_id = f->id | ((f->flags & CFRAME_EXT) ? CAN_EFF_FLAG : 0) |
		    ((f->flags & CFRAME_RTR) ? CAN_RTR_FLAG : 0);
	cf.len = f->len;
	if (f->flags & CFRAME_BRS)
		cf.flags |= CANFD_BRS;
	if (!(f->flags & CFRAME_RTR))
		memcpy(cf.data, f->data, f->len);
	assert_int_equal(write(s, &cf, size), (ssize_t)size);
}

void vd_peer_send_marker(int s)
{
	struct cframe m = vd_marker();

	vd_peer_send(s, &m);
}

void vd_peer_send_error(int s, uint32_t err_class)
{
	struct can_frame cf;

	memset(&cf, 0, sizeof(cf));
	cf.can_id = CAN_ERR_FLAG | err_class;
	cf.len = CAN_ERR_DLC;
	assert_int_equal(write(s, &cf, sizeof(cf)), (ssize_t)sizeof(cf));
}

size_t vd_peer_recv(int s, struct canfd_frame *cf, int timeout_ms)
{
	struct pollfd pfd = {.fd = s, .events = POLLIN};

	/* A link that went down leaves ENETDOWN to read once: skip it. */
	for (int tries = 0; tries < 3; tries++) {
		ssize_t n;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return 0;
		n = recv(s, cf, sizeof(*cf), MSG_DONTWAIT);
		if (n > 0)
			return (size_t)n;
		if (n < 0 && errno != ENETDOWN)
			return 0;
	}
	return 0;
}

void vd_assert_bus_frame(int s, const struct cframe *f)
{
	struct canfd_frame cf;
	size_t n = vd_peer_recv(s, &cf, VD_WAIT_MS);
	uint32_t want_id = f->id | ((f->flags & CFRAME_EXT) ? CAN_EFF_FLAG : 0) |
			   ((f->flags & CFRAME_RTR) ? CAN_RTR_FLAG : 0);

	if (n == 0)
		fail_msg("frame %#x never appeared on the bus", f->id);
	assert_int_equal(n, (f->flags & CFRAME_FD) ? CANFD_MTU : CAN_MTU);
	assert_int_equal(cf.can_id, want_id);
	assert_int_equal(cf.len, f->len);
	if (f->flags & CFRAME_FD)
		assert_int_equal(cf.flags & (CANFD_BRS | CANFD_ESI), CANFD_BRS);
	if (!(f->flags & CFRAME_RTR))
		assert_memory_equal(cf.data, f->data, f->len);
}

void vd_assert_bus_quiet(int s)
{
	struct canfd_frame cf;
	ssize_t n = recv(s, &cf, sizeof(cf), MSG_DONTWAIT);

	if (n > 0)
		fail_msg("unexpected frame %#x (%zd bytes) on the bus", cf.can_id, n);
	assert_int_equal(n, -1);
	assert_true(errno == EAGAIN || errno == ENETDOWN);
}

void vd_guest_marker_through(struct gdrv *c, int peer)
{
	struct cframe m = vd_marker();

	assert_int_equal(gdrv_tx_sync(c, &m, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(peer, &m);
}

void vd_bus_marker_through(struct gdrv *c, int peer)
{
	struct cframe got;

	vd_peer_send_marker(peer);
	vd_guest_rx(c, &got);
	if (!vd_is_marker(&got))
		fail_msg("guest got frame %#x (flags %#x, len %u) before the marker", got.id,
			 got.flags, got.len);
}

void vd_link_set(const char *ifname, bool up)
{
	assert_int_equal(vd_sh("ip link set dev %s %s", ifname, up ? "up" : "down"), 0);
}

int vd_fixture_setup(void **state)
{
	struct vd_fixture *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	vd_init(&t->d);
	t->peer = -1;
	*state = t;
	return 0;
}

int vd_fixture_teardown(void **state)
{
	struct vd_fixture *t = *state;

	if (t->child > 0) {
		kill(t->child, SIGKILL);
		waitpid(t->child, NULL, 0);
	}
	gdrv_close(t->c);
	vd_peer_close(&t->peer);
	if (!t->passed || getenv("VDC_E2E_LOG"))
		vd_print_log(&t->d);
	vd_cleanup(&t->d);
	free(t);
	return 0;
}

void vd_fixture_serve(struct vd_fixture *t, const char *in, const char *out, uint64_t can_features)
{
	vd_start(&t->d, in, out, NULL);
	t->peer = vd_peer_open(in);
	t->c = vd_guest_open(&t->d, can_features);
}
