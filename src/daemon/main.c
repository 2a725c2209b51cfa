/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * vhost-device-can: a vhost-user backend giving a VM a VirtIO CAN device.
 * Parses and checks the options, opens the CAN port, then runs the loop.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "can_port.h"
#include "capture.h"
#include "loop.h"
#include "options.h"
#include "sandbox.h"
#include "sysd.h"
#include "vhost-user/vlog.h"

#define EXIT_USAGE 2

static int check_iface(const char *opt, const char *name, bool *fd)
{
	int ret = can_port_check(name, fd);

	if (ret < 0)
		fprintf(stderr, "vhost-device-can: %s=%s: %s\n", opt, name, can_port_strerror(ret));
	return ret;
}

/* Refuse a socket path we would not be allowed to replace, before opening anything. */
static int check_socket_path(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "vhost-device-can: --socket-path=%s: exists and is not a socket\n",
			path);
		return -EEXIST;
	}
	return 0;
}

/*
 * Give devices without a socket the ones systemd passed, in order, each
 * named by where it came from. 0 or -1 after a message.
 */
static int take_listen_fds(struct options *o)
{
	static struct sysd_listen l;
	int nlisten = sysd_listen_fds(&l);
	unsigned int want = 0, next = 0;

	for (unsigned int k = 0; k < o->ndev; k++)
		if (!o->dev[k].socket_path && o->dev[k].fd < 0)
			want++;
	if (nlisten == -ERANGE) {
		fprintf(stderr,
			"vhost-device-can: LISTEN_FDS=%s: too many sockets (at most %d are "
			"taken, one per device, up to %u devices)\n",
			l.count, SYSD_MAX_LISTEN_FDS, LOOP_MAX_DEVICES);
		return -1;
	}
	if (nlisten < 0) {
		fprintf(stderr, "vhost-device-can: LISTEN_FDS='%s' is not a number\n", l.count);
		return -1;
	}
	if (want && (unsigned int)nlisten != want) {
		if (nlisten == 0 && !o->with_device)
			fprintf(stderr, "vhost-device-can: missing --socket-path or --fd (and no "
					"socket passed by systemd)\n");
		else
			fprintf(stderr,
				"vhost-device-can: %u device(s) without a socket, but systemd "
				"passed %d socket(s)\n",
				want, nlisten);
		return -1;
	}
	for (unsigned int k = 0; k < o->ndev; k++) {
		struct dev_opts *d = &o->dev[k];
		const char *name;

		if (d->socket_path || d->fd >= 0)
			continue;
		name = l.names[next];
		d->fd = SYSD_LISTEN_FDS_START + (int)next++;
		if (*name)
			snprintf(d->fd_from, sizeof(d->fd_from), "LISTEN_FDS fd %d (name \"%s\")",
				 d->fd, name);
		else
			snprintf(d->fd_from, sizeof(d->fd_from), "LISTEN_FDS fd %d", d->fd);
	}
	return 0;
}

/* "--device #2 (vcan0)": device k, for a message naming two devices. */
static void dev_label(const struct dev_opts *d, unsigned int k, char *buf, size_t cap)
{
	if (d->name)
		snprintf(buf, cap, "--device #%u (name=%s)", k + 1, d->name);
	else if (strcmp(d->can_in, d->can_out) == 0)
		snprintf(buf, cap, "--device #%u (%s)", k + 1, d->can_out);
	else
		snprintf(buf, cap, "--device #%u (%s>%s)", k + 1, d->can_in, d->can_out);
}

/*
 * What a device would serve, to tell when two devices would serve one
 * socket: its fd's inode (dup'ed fds share it), and the socket file its
 * path names (or an inherited socket is bound to) as directory identity
 * plus last component, so that two spellings (a.sock and ./a.sock, a
 * symlinked or bind-mounted directory) compare equal.
 */
struct sock_ref {
	bool has_ino, has_file;
	dev_t dev, dir_dev;
	ino_t ino, dir_ino;
	const char *shown;    /* the path as given, or bound_path */
	char bound_path[108]; /* an inherited socket's own path (sun_path) */
	char base[108];	      /* the last component */
};

/* The socket file path names; false when its directory cannot be looked at. */
static bool sock_ref_file(const char *path, struct sock_ref *r)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	struct stat st;

	if (slash)
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	else
		snprintf(dir, sizeof(dir), ".");
	if (stat(dir, &st) != 0 || snprintf(r->base, sizeof(r->base), "%s",
					    slash ? slash + 1 : path) >= (int)sizeof(r->base))
		return false;
	r->dir_dev = st.st_dev;
	r->dir_ino = st.st_ino;
	r->shown = path;
	return true;
}

static void sock_ref_get(const struct dev_opts *d, struct sock_ref *r)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	struct stat st;

	memset(r, 0, sizeof(*r));
	if (d->socket_path) {
		r->has_file = sock_ref_file(d->socket_path, r);
		return;
	}
	if (fstat(d->fd, &st) == 0) {
		r->has_ino = true;
		r->dev = st.st_dev;
		r->ino = st.st_ino;
	}
	memset(&sa, 0, sizeof(sa));
	if (getsockname(d->fd, (struct sockaddr *)&sa, &len) == 0 && sa.sun_family == AF_UNIX &&
	    len > offsetof(struct sockaddr_un, sun_path) && sa.sun_path[0] != '\0') {
		snprintf(r->bound_path, sizeof(r->bound_path), "%.*s", (int)sizeof(sa.sun_path),
			 sa.sun_path);
		r->has_file = sock_ref_file(r->bound_path, r);
	}
}

/*
 * No two devices may serve one socket: the same fd, two fds of one socket,
 * or one socket file under two spellings (also an inherited socket's own
 * path). Two devices would accept on it, and a VM get whichever bus answers
 * first; for a path, the second would take the first for another process.
 * Checked once every fd is assigned (systemd's too). 0 or -1 after a
 * message naming both devices.
 */
static int check_one_socket_each(const struct options *o)
{
	static struct sock_ref refs[LOOP_MAX_DEVICES];
	char a[2 * IFNAMSIZ + 32], b[2 * IFNAMSIZ + 32];

	for (unsigned int k = 0; k < o->ndev; k++)
		sock_ref_get(&o->dev[k], &refs[k]);
	for (unsigned int k = 0; k < o->ndev; k++) {
		const struct dev_opts *d = &o->dev[k];
		const struct sock_ref *r = &refs[k];

		for (unsigned int j = 0; j < k; j++) {
			const struct dev_opts *e = &o->dev[j];
			const struct sock_ref *q = &refs[j];

			dev_label(e, j, a, sizeof(a));
			dev_label(d, k, b, sizeof(b));
			if (d->fd >= 0 && e->fd >= 0 &&
			    (d->fd == e->fd ||
			     (r->has_ino && q->has_ino && r->dev == q->dev && r->ino == q->ino))) {
				fprintf(stderr,
					"vhost-device-can: one socket given twice: %s has %s, %s "
					"has %s%s; a socket is served by one device\n",
					a, e->fd_from, b, d->fd_from,
					d->fd == e->fd ? "" : " (the same socket)");
				return -1;
			}
			if (r->has_file && q->has_file && r->dir_dev == q->dir_dev &&
			    r->dir_ino == q->dir_ino && strcmp(r->base, q->base) == 0) {
				fprintf(stderr,
					"vhost-device-can: socket path given twice: %s has %s%s%s, "
					"%s has %s%s%s: the same socket file\n",
					a, q->shown, e->socket_path ? "" : " by ",
					e->socket_path ? "" : e->fd_from, b, r->shown,
					d->socket_path ? "" : " by ",
					d->socket_path ? "" : d->fd_from);
				return -1;
			}
		}
	}
	return 0;
}

/*
 * Give devices without a socket the ones systemd passed; then check that
 * no socket is given twice, and every device's socket (path or fd) and
 * interfaces, before anything is opened or listened on. 0 or -1 after a
 * message.
 */
static int check_devices(struct options *o)
{
	if (take_listen_fds(o) < 0 || check_one_socket_each(o) < 0)
		return -1;
	for (unsigned int k = 0; k < o->ndev; k++) {
		struct dev_opts *d = &o->dev[k];
		const char *why;

		if (d->socket_path && check_socket_path(d->socket_path) < 0)
			return -1;
		if (d->fd >= 0 && sysd_check_socket(d->fd, &d->listening, &why) < 0) {
			fprintf(stderr, "vhost-device-can: %s: %s\n", d->fd_from, why);
			return -1;
		}
	}
	for (unsigned int k = 0; k < o->ndev; k++) {
		struct dev_opts *d = &o->dev[k];
		bool in = false, out = false;

		if (check_iface("--can-in", d->can_in, &in) < 0 ||
		    check_iface("--can-out", d->can_out, &out) < 0)
			return -1;
	}
	return 0;
}

/* The real port behind the device's port interface. */
static int port_send(void *p, const struct cframe *f, unsigned int n, int *res)
{
	return can_port_send(p, f, n, res);
}

static int port_start(void *p)
{
	return can_port_start(p);
}

static int port_stop(void *p)
{
	return can_port_stop(p);
}

static int port_set_tx_confirm(void *p, bool on)
{
	return can_port_set_tx_confirm(p, on);
}

static int port_recv(void *p, int fd, struct can_port_event *ev, unsigned int max)
{
	return can_port_recv(p, fd, ev, max);
}

/* The raw sockets (none while unplugged) and the link-event fd. */
static unsigned int port_get_fds(void *p, int fds[LOOP_PORT_MAX_FDS])
{
	unsigned int n = can_port_fds(p, fds);

	fds[n++] = can_port_link_fd(p);
	return n;
}

static const struct device_port_ops port_ops = {
    .send = port_send,
    .start = port_start,
    .stop = port_stop,
    .set_tx_confirm = port_set_tx_confirm,
};

/* What each device owns besides what the loop holds. */
struct dev_run {
	struct can_port *port;
	struct capture *cap;
	struct loop_port dport;
	struct gmem_budget mem; /* --guest-mem-limit */
	char name[2 * IFNAMSIZ + 8];
};

struct sig_ctx {
	int sfd;
	struct dev_run *runs;
	unsigned int nruns;
};

/*
 * The devices' counters, then the frames the kernel dropped before we could
 * read them (receive buffer full): without those a flood's count cannot add up.
 */
static void print_stats(struct loop *m, const struct dev_run *runs, unsigned int n)
{
	loop_print_stats(m, stderr);
	for (unsigned int k = 0; k < n; k++) {
		struct can_port_stats ps;

		can_port_get_stats(runs[k].port, &ps);
		fprintf(stderr,
			"%s%slink: lost %lu, bound again %lu, CAN FD frames refused (classic MTU) "
			"%lu\n",
			n > 1 ? runs[k].name : "", n > 1 ? ": " : "", ps.lost, ps.rebound,
			ps.fd_refused);
		fprintf(stderr, "%s%srx: dropped by the kernel (socket buffer full) %lu\n",
			n > 1 ? runs[k].name : "", n > 1 ? ": " : "",
			can_port_kernel_drops(runs[k].port));
		if (runs[k].cap)
			fprintf(stderr,
				"%s%scapture: %llu records written, %llu lost (%llu dropped: the "
				"target did not keep up)\n",
				n > 1 ? runs[k].name : "", n > 1 ? ": " : "",
				(unsigned long long)capture_written(runs[k].cap),
				(unsigned long long)capture_lost(runs[k].cap),
				(unsigned long long)capture_dropped(runs[k].cap));
	}
	fflush(stderr);
}

static int on_signal(struct loop *m, void *arg)
{
	struct sig_ctx *ctx = arg;
	struct signalfd_siginfo si;

	while (read(ctx->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			print_stats(m, ctx->runs, ctx->nruns);
			continue;
		}
		if (si.ssi_signo == SIGHUP) {
			/* Log rotation moved the capture files: start new ones. */
			for (unsigned int k = 0; k < ctx->nruns; k++)
				(void)capture_reopen(ctx->runs[k].cap);
			continue;
		}
		vlog_info(NULL, "%s received, stopping", strsignal((int)si.ssi_signo));
		return 1;
	}
	return 0;
}

/*
 * Open device k's capture (none blocks: a FIFO needs its reader already)
 * and refuse a file that an earlier device (runs[0..k-1]) writes: compared
 * by device and inode, so two spellings of one file are caught. 0 or -1
 * after a message.
 */
static int open_capture(const struct dev_opts *d, struct dev_run *r, const struct dev_run *runs,
			unsigned int k)
{
	int ret = capture_open(&r->cap, d->capture, d->can_out, d->can_in);

	if (ret < 0) {
		vlog_err(r->name, "--capture=%s: %s", d->capture, capture_strerror(d->capture, ret));
		return -1;
	}
	for (unsigned int j = 0; j < k; j++) {
		if (capture_same_file(runs[j].cap, r->cap)) {
			vlog_err(r->name,
				 "--capture=%s: the file device %s already captures to; give "
				 "each device a file of its own (capture= in --device)",
				 d->capture, runs[j].name);
			capture_close(r->cap);
			r->cap = NULL;
			return -1;
		}
	}
	return 0;
}

/*
 * Open device k's port and add it to the loop. Its inherited fd (if any) is
 * taken, also on failure. 0 or -1 after a message.
 */
static int start_device(struct loop *m, const struct dev_opts *d, struct dev_run *runs,
			unsigned int k, struct gmem_budget *total)
{
	struct dev_run *r = &runs[k];
	struct can_port_config pcfg = {0};
	struct device_config dcfg = {0};
	struct loop_sock sock = {.path = d->socket_path, .listen_fd = -1, .conn_fd = -1};
	unsigned int idx;
	int ret;

	if (d->name)
		snprintf(r->name, sizeof(r->name), "%s", d->name);
	else if (strcmp(d->can_in, d->can_out) == 0)
		snprintf(r->name, sizeof(r->name), "%s", d->can_out);
	else
		snprintf(r->name, sizeof(r->name), "%s>%s", d->can_in, d->can_out);

	pcfg.in_ifname = d->can_in;
	pcfg.out_ifname = d->can_out;
	pcfg.link_up_on_start = d->link_up;
	pcfg.rx_filter = d->has_rx_filter ? &d->rx_filter : NULL;
	pcfg.bitrate = d->bitrate;
	pcfg.dbitrate = d->dbitrate;
	ret = can_port_open(&r->port, &pcfg);
	if (ret < 0) {
		vlog_err(r->name, "cannot open the CAN interfaces: %s", strerror(-ret));
		goto fail_fd;
	}
	r->dport.ops = &port_ops;
	r->dport.recv = port_recv;
	r->dport.port = r->port;
	r->dport.get_fds = port_get_fds;
	r->dport.nfds = port_get_fds(r->port, r->dport.fds);

	dcfg.name = r->name;
	dcfg.fd = !d->no_fd && can_port_fd_capable(r->port);
	dcfg.rx_backlog = d->rx_backlog;
	dcfg.tx_ack_timeout_ms = d->tx_ack_timeout_ms;
	dcfg.tx_allow = d->has_tx_allow ? &d->tx_allow : NULL;
	dcfg.bitrate = d->bitrate;
	dcfg.dbitrate = d->dbitrate;
	if (!d->socket_path) {
		/* check_devices found which kind it is. */
		if (d->listening)
			sock.listen_fd = d->fd;
		else
			sock.conn_fd = d->fd;
	}
	if (d->capture && open_capture(d, r, runs, k) < 0)
		goto fail_fd;
	ret = loop_add(m, &dcfg, &r->dport, &sock);
	if (ret < 0) {
		if (d->socket_path)
			vlog_err(r->name, "--socket-path=%s: %s", d->socket_path,
				 ret == -EADDRINUSE ? "another process is listening on it"
						    : strerror(-ret));
		else
			vlog_err(r->name, "%s: %s", d->fd_from, strerror(-ret));
		return -1;
	}
	idx = loop_ndevs(m) - 1; /* the one just added */
	if (r->cap)
		loop_set_capture(m, idx, r->cap);
	/* Before the loop runs: no frontend has mapped anything yet. */
	r->mem = (struct gmem_budget)GMEM_BUDGET_INIT(
	    d->guest_mem_limit, "per-device",
	    "--guest-mem-limit, or guest-mem-limit= in its --device");
	ret = vu_backend_add_mem_budget(loop_backend(m, idx), &r->mem);
	if (ret == 0)
		ret = vu_backend_add_mem_budget(loop_backend(m, idx), total);
	if (ret < 0) {
		vlog_err(r->name, "guest memory limits: %s", strerror(-ret));
		return -1;
	}
	vlog_info(r->name, "ready: in %s, out %s, CAN FD %s, %s", d->can_in, d->can_out,
		  dcfg.fd ? "offered" : "not offered",
		  d->socket_path ? d->socket_path
				 : (d->listening ? "inherited listening socket"
						 : "inherited connection (exit when it closes)"));
	return 0;

fail_fd:
	if (!d->socket_path && d->fd >= 0)
		close(d->fd);
	return -1;
}

/*
 * Open files a device may need at once: its listening and connected
 * sockets, the backend's timer and wake fds, three kick, call and error
 * fds, the backend channel, up to 8 region fds arriving in one message,
 * its CAN, netlink and capture fds, with room to spare.
 */
#define FDS_PER_DEVICE 40
#define FDS_BASE 16

/* Confine the process once every device is started (see sandbox.h). 0 or -1. */
static int confine(const struct options *o, const struct dev_run *runs)
{
	static struct sandbox_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.seccomp = o->seccomp;
	cfg.core_dumps = o->core_dumps;
	cfg.nofile = FDS_BASE + FDS_PER_DEVICE * o->ndev;
	for (unsigned int k = 0; k < o->ndev; k++) {
		const struct dev_opts *d = &o->dev[k];

		/* Link up/down and bit rates (re-applied after a re-plug too). */
		if (d->link_up)
			cfg.net_admin = true;
		if (runs[k].cap && cfg.nwrite < SANDBOX_MAX_PATHS)
			cfg.write_files[cfg.nwrite++] = d->capture;
		if (d->socket_path && cfg.nremove < SANDBOX_MAX_PATHS)
			cfg.remove_files[cfg.nremove++] = d->socket_path;
	}
	return sandbox_apply(&cfg) < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	static struct dev_run runs[LOOP_MAX_DEVICES];
	struct loop *m = NULL;
	struct sig_ctx sctx;
	static struct options o;
	static struct gmem_budget mem_total;
	unsigned int started = 0;
	sigset_t mask;
	int sfd = -1, notify_fd = -1, ret, status = EXIT_FAILURE;

	ret = options_parse(argc, argv, &o);
	if (ret)
		return ret > 0 ? EXIT_SUCCESS : EXIT_USAGE;
	vlog_set_level((enum vlog_level)o.verbosity);

	/* Sockets first: their checks need no CAN in the kernel. */
	if (check_devices(&o) < 0)
		return EXIT_FAILURE;
	vlog_set_name("vhost-device-can");

	/* A frontend that vanishes mid-write must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) {
		vlog_err(NULL, "signalfd: %s", strerror(errno));
		goto out;
	}
	ret = loop_new(&m);
	if (ret < 0) {
		vlog_err(NULL, "epoll: %s", strerror(-ret));
		goto out;
	}
	mem_total = (struct gmem_budget)GMEM_BUDGET_INIT(o.guest_mem_total, "per-process",
							 "--guest-mem-total");
	for (; started < o.ndev; started++)
		if (start_device(m, &o.dev[started], runs, started, &mem_total) < 0)
			goto out;
	/* The sandbox allows no new sockets but CAN and netlink: connect it now. */
	ret = sysd_notify_open(&notify_fd);
	if (ret < 0)
		vlog_warn(NULL, "NOTIFY_SOCKET: %s", strerror(-ret));
	if (!o.no_sandbox) {
		if (confine(&o, runs) < 0)
			goto out;
	} else {
		vlog_warn(NULL, "--sandbox=none: the process is not confined");
	}
	/* Every socket is served: a service manager may start the VMs now. */
	if (notify_fd >= 0) {
		ret = sysd_notify_send(notify_fd, "READY=1\nSTATUS=serving");
		if (ret < 0)
			vlog_warn(NULL, "NOTIFY_SOCKET: %s", strerror(-ret));
		close(notify_fd);
		notify_fd = -1;
	}

	sctx.sfd = sfd;
	sctx.runs = runs;
	sctx.nruns = o.ndev;
	ret = loop_run(m, sfd, on_signal, &sctx);
	if (ret < 0) {
		vlog_err(NULL, "event loop: %s", strerror(-ret));
		goto out;
	}
	status = EXIT_SUCCESS;
out:
	if (m) {
		if (loop_ndevs(m))
			print_stats(m, runs, loop_ndevs(m));
		loop_free(m);
	}
	/* The fds of devices not tried yet were never taken. */
	for (unsigned int k = started + 1; k < o.ndev; k++)
		if (!o.dev[k].socket_path && o.dev[k].fd >= 0)
			close(o.dev[k].fd);
	for (unsigned int k = 0; k < o.ndev; k++) {
		if (runs[k].port)
			can_port_close(runs[k].port);
		capture_close(runs[k].cap);
	}
	if (sfd >= 0)
		close(sfd);
	if (notify_fd >= 0)
		close(notify_fd);
	return status;
}
