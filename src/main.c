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
#include <sys/stat.h>
#include <unistd.h>

#include "can_port.h"
#include "dmn.h"
#include "vdc_version.h"
#include "vlog.h"

#define EXIT_USAGE 2

struct options {
	const char *socket_path;
	const char *can_in;
	const char *can_out;
	unsigned int rx_backlog;
	unsigned int tx_ack_timeout_ms;
	bool link_up;
	bool no_fd;
	int verbosity; /* vlog level */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vhost-device-can -s PATH -i IFACE -o IFACE [OPTION]...\n"
		"\n"
		"A vhost-user backend that gives a virtual machine a VirtIO CAN controller\n"
		"(virtio device 36). The VMM connects to PATH; frames the guest transmits go\n"
		"out on --can-out, frames seen on --can-in are delivered to the guest. Give\n"
		"the same interface for both for the usual setup: the guest then never\n"
		"receives its own frames back.\n"
		"\n"
		"Options:\n"
		"  -s, --socket-path=PATH    unix socket to listen on (a stale socket file is\n"
		"                            replaced; any other existing file is an error)\n"
		"  -i, --can-in=IFACE        CAN interface whose frames go to the guest\n"
		"  -o, --can-out=IFACE       CAN interface the guest's frames are sent on\n"
		"      --rx-backlog=N        frames kept while the guest has no free RX buffer\n"
		"                            (default %u); beyond that the newest are dropped\n"
		"                            and counted\n"
		"      --tx-ack-timeout=MS   with LATE_TX_ACK, fail a TX request whose frame\n"
		"                            was not confirmed on the bus after MS ms\n"
		"                            (default %u)\n"
		"      --link-up             bring the out interface up on the guest's START\n"
		"                            and down on STOP (needs CAP_NET_ADMIN)\n"
		"      --no-fd               do not offer CAN FD, even on CAN FD interfaces\n"
		"  -v, --verbose             more log output (repeat for debug)\n"
		"  -q, --quiet               errors only\n"
		"  -V, --version             print the version and exit\n"
		"  -h, --help                print this text and exit\n"
		"\n"
		"CAN FD is offered when both interfaces have the CAN FD MTU (72). Logs go\n"
		"to stderr. SIGINT and SIGTERM stop the daemon and remove the socket;\n"
		"SIGUSR1 prints the frame counters, which are also printed at exit.\n"
		"\n"
		"Example:\n"
		"  ip link add dev vcan0 type vcan && ip link set up vcan0\n"
		"  vhost-device-can --socket-path=/tmp/can.sock --can-in=vcan0 --can-out=vcan0\n"
		"\n"
		"Exit status: 0 after SIGINT/SIGTERM, 1 on a start-up or runtime error,\n"
		"2 on a usage error.\n",
		VCD_DEFAULT_RX_BACKLOG, VCD_DEFAULT_TX_ACK_TIMEOUT_MS);
}

static int parse_uint(const char *opt, const char *s, unsigned int min, unsigned int max,
		      unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "vhost-device-can: %s: '%s' is not a number in %u..%u\n", opt, s,
			min, max);
		return -EINVAL;
	}
	*out = (unsigned int)v;
	return 0;
}

/* 0 to run, 1 when done (help, version), or -1 on a usage error. */
static int parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_RX_BACKLOG = 256, OPT_TX_ACK_TIMEOUT, OPT_LINK_UP, OPT_NO_FD };
	static const struct option longopts[] = {
	    {"socket-path", required_argument, NULL, 's'},
	    {"can-in", required_argument, NULL, 'i'},
	    {"can-out", required_argument, NULL, 'o'},
	    {"rx-backlog", required_argument, NULL, OPT_RX_BACKLOG},
	    {"tx-ack-timeout", required_argument, NULL, OPT_TX_ACK_TIMEOUT},
	    {"link-up", no_argument, NULL, OPT_LINK_UP},
	    {"no-fd", no_argument, NULL, OPT_NO_FD},
	    {"verbose", no_argument, NULL, 'v'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct options){
	    .rx_backlog = VCD_DEFAULT_RX_BACKLOG,
	    .tx_ack_timeout_ms = VCD_DEFAULT_TX_ACK_TIMEOUT_MS,
	    .verbosity = VLOG_INFO,
	};
	while ((c = getopt_long(argc, argv, "s:i:o:vqVh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket_path = optarg;
			break;
		case 'i':
			o->can_in = optarg;
			break;
		case 'o':
			o->can_out = optarg;
			break;
		case OPT_RX_BACKLOG:
			if (parse_uint("--rx-backlog", optarg, 1, 1u << 20, &o->rx_backlog) < 0)
				return -1;
			break;
		case OPT_TX_ACK_TIMEOUT:
			if (parse_uint("--tx-ack-timeout", optarg, 1, 600000,
				       &o->tx_ack_timeout_ms) < 0)
				return -1;
			break;
		case OPT_LINK_UP:
			o->link_up = true;
			break;
		case OPT_NO_FD:
			o->no_fd = true;
			break;
		case 'v':
			if (o->verbosity < VLOG_DEBUG)
				o->verbosity++;
			break;
		case 'q':
			o->verbosity = VLOG_ERR;
			break;
		case 'V':
			printf("%s\n", vdc_version());
			return 1;
		case 'h':
			usage(stdout);
			return 1;
		default:
			fprintf(stderr, "Try 'vhost-device-can --help' for more information.\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vhost-device-can: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!o->socket_path || !o->can_in || !o->can_out) {
		fprintf(stderr, "vhost-device-can: missing %s%s%s\n",
			!o->socket_path ? "--socket-path " : "", !o->can_in ? "--can-in " : "",
			!o->can_out ? "--can-out" : "");
		fprintf(stderr, "Try 'vhost-device-can --help' for more information.\n");
		return -1;
	}
	return 0;
}

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

static const struct vcd_port_ops port_ops = {
    .send = port_send,
    .start = port_start,
    .stop = port_stop,
    .set_tx_confirm = port_set_tx_confirm,
};

struct sig_ctx {
	int sfd;
	struct can_port *port;
};

/*
 * The device's counters, then the frames the kernel dropped before we could
 * read them (receive buffer full): without those a flood's count cannot add up.
 */
static void print_stats(struct dmn *m, struct can_port *port)
{
	dmn_print_stats(m, stderr);
	fprintf(stderr, "rx: dropped by the kernel (socket buffer full) %lu\n",
		can_port_kernel_drops(port));
	fflush(stderr);
}

static int on_signal(struct dmn *m, void *arg)
{
	struct sig_ctx *ctx = arg;
	struct signalfd_siginfo si;

	while (read(ctx->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			print_stats(m, ctx->port);
			continue;
		}
		vlog_info(NULL, "%s received, stopping", strsignal((int)si.ssi_signo));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct can_port_config pcfg = {0};
	struct can_port *port = NULL;
	struct dmn_port dport = {0};
	struct vcd_config dcfg = {0};
	struct dmn m = {.epfd = -1};
	struct sig_ctx sctx;
	struct options o;
	char name[2 * IFNAMSIZ + 8];
	bool fd_in = false, fd_out = false, inited = false;
	sigset_t mask;
	int sfd = -1, ret, status = EXIT_FAILURE;

	ret = parse_options(argc, argv, &o);
	if (ret)
		return ret > 0 ? EXIT_SUCCESS : EXIT_USAGE;
	vlog_set_level((enum vlog_level)o.verbosity);

	/* The socket path first: its check needs no CAN in the kernel. */
	if (check_socket_path(o.socket_path) < 0 || check_iface("--can-in", o.can_in, &fd_in) < 0 ||
	    check_iface("--can-out", o.can_out, &fd_out) < 0)
		return EXIT_FAILURE;

	if (strcmp(o.can_in, o.can_out) == 0)
		snprintf(name, sizeof(name), "%s", o.can_out);
	else
		snprintf(name, sizeof(name), "%s>%s", o.can_in, o.can_out);
	vlog_set_name("vhost-device-can");

	/* A frontend that vanishes mid-write must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) {
		vlog_err(name, "signalfd: %s", strerror(errno));
		goto out;
	}

	pcfg.in_ifname = o.can_in;
	pcfg.out_ifname = o.can_out;
	pcfg.link_up_on_start = o.link_up;
	ret = can_port_open(&port, &pcfg);
	if (ret < 0) {
		vlog_err(name, "cannot open the CAN interfaces: %s", strerror(-ret));
		goto out;
	}

	dport.ops = &port_ops;
	dport.recv = port_recv;
	dport.port = port;
	dport.nfds = can_port_fds(port, dport.fds);

	dcfg.name = name;
	dcfg.fd = !o.no_fd && can_port_fd_capable(port);
	dcfg.rx_backlog = o.rx_backlog;
	dcfg.tx_ack_timeout_ms = o.tx_ack_timeout_ms;
	ret = dmn_init(&m, &dcfg, &dport, o.socket_path, -1);
	if (ret < 0) {
		vlog_err(name, "--socket-path=%s: %s", o.socket_path,
			 ret == -EADDRINUSE ? "another process is listening on it"
					    : strerror(-ret));
		goto out;
	}
	inited = true;
	vlog_info(name, "ready: in %s, out %s, CAN FD %s", o.can_in, o.can_out,
		  dcfg.fd ? "offered" : "not offered");

	sctx.sfd = sfd;
	sctx.port = port;
	ret = dmn_run(&m, sfd, on_signal, &sctx);
	if (ret < 0) {
		vlog_err(name, "event loop: %s", strerror(-ret));
		goto out;
	}
	status = EXIT_SUCCESS;
out:
	if (inited) {
		print_stats(&m, port);
		dmn_fini(&m);
	}
	if (port)
		can_port_close(port);
	if (sfd >= 0)
		close(sfd);
	return status;
}
