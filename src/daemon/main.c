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
#include "sandbox.h"
#include "cfilt.h"
#include "loop.h"
#include "sysd.h"
#include "vdc_version.h"
#include "vhost-user/vlog.h"

#define EXIT_USAGE 2

/*
 * Defaults of the limits on mapped guest memory. A VM's RAM is typically a
 * few GiB to tens of GiB, rarely hundreds: 1 TiB a device refuses no
 * plausible VM yet keeps a frontend from reserving the address space (any
 * size maps at once from a sparse file). 4 TiB a process lets several such
 * VMs share it and stays a small part of the 128 TiB a process has on
 * x86-64 (also while a new table and the one it replaces are both mapped).
 */
#define DEFAULT_GUEST_MEM_LIMIT (1ull << 40)
#define DEFAULT_GUEST_MEM_TOTAL (4ull << 40)
/* The smallest limit accepted: below it no VM boots anyway. */
#define MIN_GUEST_MEM (1ull << 20)
#define MAX_GUEST_MEM (1ull << 62)

/* One device as the options describe it. */
struct dev_opts {
	const char *socket_path;
	int fd;		/* inherited socket, -1 for none */
	bool listening; /* fd is a listening socket (found by check_devices) */
	/* Where fd came from, for messages: --fd=3, --device fd=3, LISTEN_FDS fd 3 */
	char fd_from[SYSD_FDNAME_MAX + 48];
	const char *can_in;
	const char *can_out;
	const char *name; /* for logs and counters; NULL: from the interfaces */
	unsigned int rx_backlog;
	unsigned int tx_ack_timeout_ms;
	bool link_up;
	bool no_fd;
	bool has_tx_allow, has_rx_filter;
	const char *capture;	    /* --capture FILE, or NULL */
	uint32_t bitrate, dbitrate; /* --bitrate; 0: no pacing */
	uint64_t guest_mem_limit;   /* --guest-mem-limit: bytes its frontend may map */
	struct cfilt tx_allow;
	struct cfilt rx_filter;
};

struct options {
	struct dev_opts dev[LOOP_MAX_DEVICES];
	unsigned int ndev;
	bool with_device; /* --device given (else one device from -s/-i/-o) */
	int verbosity;	  /* vlog level */
	/* --guest-mem-total: bytes all frontends of the process may map */
	uint64_t guest_mem_total;
	bool no_sandbox;		     /* --sandbox=none */
	enum sandbox_seccomp seccomp; /* --seccomp */
	bool core_dumps;	      /* --core-dumps */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vhost-device-can -s PATH -i IFACE -o IFACE [OPTION]...\n"
		"       vhost-device-can --fd=FDNUM -i IFACE -o IFACE [OPTION]...\n"
		"       vhost-device-can --device socket-path=PATH,can-in=IFACE,can-out=IFACE[,...]"
		"...\n"
		"       vhost-device-can --print-capabilities\n"
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
		"      --fd=FDNUM            serve the inherited unix socket FDNUM instead: a\n"
		"                            listening one (frontends one at a time) or a\n"
		"                            connected one (exit when it closes)\n"
		"  -i, --can-in=IFACE        CAN interface whose frames go to the guest\n"
		"  -o, --can-out=IFACE       CAN interface the guest's frames are sent on\n"
		"      --device=SPEC         one more device (repeatable, up to %u) in the same\n"
		"                            process: SPEC is KEY=VALUE,... with the keys\n"
		"                            socket-path or fd, can-in, can-out, and optionally\n"
		"                            name, rx-backlog, tx-ack-timeout, link-up, no-fd,\n"
		"                            tx-allow, rx-filter (filters joined by '+'),\n"
		"                            capture, bitrate, guest-mem-limit;\n"
		"                            not together with -s, --fd, -i or -o\n"
		"      --rx-backlog=N        frames kept while the guest has no free RX buffer\n"
		"                            (default %u); beyond that the newest are dropped\n"
		"                            and counted\n"
		"      --tx-ack-timeout=MS   with LATE_TX_ACK, fail a TX request whose frame\n"
		"                            was not confirmed on the bus after MS ms\n"
		"                            (default %u)\n"
		"      --link-up             bring the out interface up on the guest's START\n"
		"                            and down on STOP (needs CAP_NET_ADMIN)\n"
		"      --no-fd               do not offer CAN FD, even on CAN FD interfaces\n"
		"      --tx-allow=FILTERS    ids the guest may send, in candump's syntax\n"
		"                            (id:mask or id~mask, comma separated, hex; 8\n"
		"                            digits: extended); others complete NOT_OK and\n"
		"                            are counted as denied\n"
		"      --rx-filter=FILTERS   frames of --can-in the guest receives, same syntax,\n"
		"                            applied in the kernel (CAN_RAW_FILTER)\n"
		"      --bitrate=BPS[,DATA_BPS]  pace the guest's frames to a bus of BPS (CAN FD\n"
		"                            data phase at DATA_BPS; k and M suffixes); with\n"
		"                            --link-up on a real controller, also set them\n"
		"      --capture=FILE        record every frame, both ways, with its outcome:\n"
		"                            pcapng for Wireshark, or candump's log format\n"
		"                            when FILE ends in .log (SIGHUP reopens it)\n"
		"      --guest-mem-limit=SIZE  guest memory one device's frontend may map\n"
		"                            (default 1T; K, M, G, T, P: powers of 1024);\n"
		"                            a memory table asking more is refused; with\n"
		"                            --device, every device's default\n"
		"      --guest-mem-total=SIZE  guest memory all devices of this process may\n"
		"                            map together (default 4T)\n"
		"      --sandbox=on|none     once started, confine the process (default on):\n"
		"                            no capabilities (CAP_NET_ADMIN alone with\n"
		"                            --link-up), no files but the capture folders, a\n"
		"                            system call filter; none turns it all off\n"
		"      --seccomp=kill|log    a system call outside the filter kills the process\n"
		"                            (default), or is only logged by the kernel\n"
		"      --core-dumps          keep the core dump limit (the sandbox sets it to 0)\n"
		"      --print-capabilities  print the backend's capabilities as JSON, exit\n"
		"  -v, --verbose             more log output (repeat for debug)\n"
		"  -q, --quiet               errors only\n"
		"  -V, --version             print the version and exit\n"
		"  -h, --help                print this text and exit\n"
		"\n"
		"With --device, --rx-backlog, --tx-ack-timeout, --link-up and --no-fd are the\n"
		"defaults of every device. Without -s or --fd (or socket-path/fd in a\n"
		"--device), the sockets come from systemd socket activation (LISTEN_FDS), in\n"
		"order. READY=1 goes to NOTIFY_SOCKET once every socket is served.\n"
		"\n"
		"CAN FD is offered when both interfaces have the CAN FD MTU (72). Logs go\n"
		"to stderr. SIGINT and SIGTERM stop the daemon and remove the socket;\n"
		"SIGUSR1 prints the frame counters, which are also printed at exit.\n"
		"\n"
		"Example:\n"
		"  ip link add dev vcan0 type vcan && ip link set up vcan0\n"
		"  vhost-device-can --socket-path=/tmp/can.sock --can-in=vcan0 --can-out=vcan0\n"
		"\n"
		"Exit status: 0 after SIGINT/SIGTERM (or when a --fd connection closed), 1 on\n"
		"a start-up or runtime error, 2 on a usage error.\n",
		LOOP_MAX_DEVICES, DEVICE_DEFAULT_RX_BACKLOG, DEVICE_DEFAULT_TX_ACK_TIMEOUT_MS);
}

/*
 * The conventions of QEMU's vhost-user.rst. Its schema (vhost-user.json)
 * has no CAN type; "can" is what a CAN entry would be called, and the
 * features name what a manager may want to know before starting us.
 */
static void print_capabilities(void)
{
	printf("{\n"
	       "  \"type\": \"can\",\n"
	       "  \"features\": [\n"
	       "    \"can-fd\",\n"
	       "    \"late-tx-ack\",\n"
	       "    \"multi-device\",\n"
	       "    \"socket-activation\"\n"
	       "  ]\n"
	       "}\n");
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

static int parse_fd(const char *opt, const char *s, int *fd)
{
	unsigned int v;

	if (parse_uint(opt, s, 0, INT_MAX, &v) < 0)
		return -EINVAL;
	*fd = (int)v;
	return 0;
}

/* A size in bytes: digits with an optional K, M, G, T or P (powers of 1024, "iB" allowed). */
static int parse_size(const char *opt, const char *s, uint64_t *out)
{
	static const char units[] = "KMGTP";
	unsigned long long v;
	unsigned int shift = 0;
	const char *u;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!errno && end != s && s[0] != '-' && (*end & ~0x20) &&
	    (u = strchr(units, *end & ~0x20))) {
		shift = 10 * (unsigned int)(u - units + 1);
		end++;
		if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)
			end += strlen(end);
	}
	if (errno || end == s || *end || s[0] == '-' || v > (MAX_GUEST_MEM >> shift) ||
	    (v << shift) < MIN_GUEST_MEM) {
		fprintf(stderr,
			"vhost-device-can: %s: '%s' is not a size from 1M to 4096P (a number with "
			"K, M, G, T or P)\n",
			opt, s);
		return -EINVAL;
	}
	*out = (uint64_t)v << shift;
	return 0;
}

/*
 * A filter list for opt; sep is the entry separator (',' on the command
 * line, '+' inside --device, whose own separator is ','). 0 or -1.
 */
static int parse_filters(const char *opt, const char *text, char sep, struct cfilt *f, bool *has)
{
	char buf[4096], why[160];

	if (strlen(text) >= sizeof(buf)) {
		fprintf(stderr, "vhost-device-can: %s: the list is too long\n", opt);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", text);
	for (char *c = buf; *c; c++)
		if (*c == sep)
			*c = ',';
	if (cfilt_parse(f, buf, why, sizeof(why)) < 0) {
		fprintf(stderr, "vhost-device-can: %s: %s\n", opt, why);
		return -1;
	}
	*has = true;
	return 0;
}

/* One bit rate: digits with an optional k or M. 0 or -1 after a message. */
static int parse_rate(const char *opt, const char *s, size_t len, uint32_t max, uint32_t *out)
{
	unsigned long long v = 0, mul = 1;
	size_t i = 0;

	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		v = v * 10 + (unsigned long long)(s[i] - '0');
	if (i < len && (s[i] == 'k' || s[i] == 'K'))
		mul = 1000, i++;
	else if (i < len && s[i] == 'M')
		mul = 1000000, i++;
	if (i == 0 || i != len || i > 12 || v * mul < 1000 || v * mul > max) {
		fprintf(stderr, "vhost-device-can: %s: '%.*s' is not a bit rate in 1000..%u\n", opt,
			(int)len, s, max);
		return -1;
	}
	*out = (uint32_t)(v * mul);
	return 0;
}

/* BPS[<sep>DATA_BPS] into d. */
static int parse_bitrate(const char *opt, const char *s, char sep, struct dev_opts *d)
{
	const char *comma = strchr(s, sep);

	d->dbitrate = 0;
	if (parse_rate(opt, s, comma ? (size_t)(comma - s) : strlen(s), 1000000, &d->bitrate) < 0)
		return -1;
	if (comma && parse_rate(opt, comma + 1, strlen(comma + 1), 16000000, &d->dbitrate) < 0)
		return -1;
	if (d->dbitrate && d->dbitrate < d->bitrate) {
		fprintf(stderr,
			"vhost-device-can: %s: the data bit rate is below the nominal one\n", opt);
		return -1;
	}
	return 0;
}

/*
 * One --device SPEC into d (which holds the defaults). SPEC is modified
 * (split at commas). 0 or -1 after a message naming the bad part.
 */
static int parse_device(char *spec, struct dev_opts *d)
{
	char *save = NULL;

	for (char *kv = strtok_r(spec, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');

		if (v)
			*v++ = '\0';
		if (strcmp(kv, "link-up") == 0 && !v) {
			d->link_up = true;
		} else if (strcmp(kv, "no-fd") == 0 && !v) {
			d->no_fd = true;
		} else if (!v || !*v) {
			fprintf(stderr, "vhost-device-can: --device: '%s' needs a value\n", kv);
			return -1;
		} else if (strcmp(kv, "socket-path") == 0) {
			d->socket_path = v;
		} else if (strcmp(kv, "fd") == 0) {
			if (parse_fd("--device fd", v, &d->fd) < 0)
				return -1;
			snprintf(d->fd_from, sizeof(d->fd_from), "--device fd=%d", d->fd);
		} else if (strcmp(kv, "can-in") == 0) {
			d->can_in = v;
		} else if (strcmp(kv, "can-out") == 0) {
			d->can_out = v;
		} else if (strcmp(kv, "name") == 0) {
			d->name = v;
		} else if (strcmp(kv, "bitrate") == 0) {
			if (parse_bitrate("--device bitrate", v, '+', d) < 0)
				return -1;
		} else if (strcmp(kv, "capture") == 0) {
			d->capture = v;
		} else if (strcmp(kv, "tx-allow") == 0) {
			if (parse_filters("--device tx-allow", v, '+', &d->tx_allow,
					  &d->has_tx_allow) < 0)
				return -1;
		} else if (strcmp(kv, "rx-filter") == 0) {
			if (parse_filters("--device rx-filter", v, '+', &d->rx_filter,
					  &d->has_rx_filter) < 0)
				return -1;
		} else if (strcmp(kv, "rx-backlog") == 0) {
			if (parse_uint("--device rx-backlog", v, 1, 1u << 20, &d->rx_backlog) < 0)
				return -1;
		} else if (strcmp(kv, "guest-mem-limit") == 0) {
			if (parse_size("--device guest-mem-limit", v, &d->guest_mem_limit) < 0)
				return -1;
		} else if (strcmp(kv, "tx-ack-timeout") == 0) {
			if (parse_uint("--device tx-ack-timeout", v, 1, 600000,
				       &d->tx_ack_timeout_ms) < 0)
				return -1;
		} else {
			fprintf(stderr, "vhost-device-can: --device: unknown key '%s'\n", kv);
			return -1;
		}
	}
	return 0;
}

static void dev_defaults(struct dev_opts *d)
{
	*d = (struct dev_opts){
	    .fd = -1,
	    .rx_backlog = DEVICE_DEFAULT_RX_BACKLOG,
	    .tx_ack_timeout_ms = DEVICE_DEFAULT_TX_ACK_TIMEOUT_MS,
	    .guest_mem_limit = DEFAULT_GUEST_MEM_LIMIT,
	};
}

/* systemd passed this process sockets (looked at, not taken: sysd_listen_fds does). */
static bool activation_pending(void)
{
	const char *pid = getenv("LISTEN_PID");

	return pid && getenv("LISTEN_FDS") && strtoul(pid, NULL, 10) == (unsigned long)getpid();
}

static int usage_error(void)
{
	fprintf(stderr, "Try 'vhost-device-can --help' for more information.\n");
	return -1;
}

/* 0 to run, 1 when done (help, version), or -1 on a usage error. */
static int parse_options(int argc, char **argv, struct options *o)
{
	enum {
		OPT_RX_BACKLOG = 256,
		OPT_TX_ACK_TIMEOUT,
		OPT_LINK_UP,
		OPT_NO_FD,
		OPT_FD,
		OPT_DEVICE,
		OPT_PRINT_CAPS,
		OPT_TX_ALLOW,
		OPT_RX_FILTER,
		OPT_CAPTURE,
		OPT_BITRATE,
		OPT_GUEST_MEM_LIMIT,
		OPT_GUEST_MEM_TOTAL,
		OPT_SANDBOX,
		OPT_SECCOMP,
		OPT_CORE_DUMPS,
	};
	static const struct option longopts[] = {
	    {"socket-path", required_argument, NULL, 's'},
	    {"fd", required_argument, NULL, OPT_FD},
	    {"can-in", required_argument, NULL, 'i'},
	    {"can-out", required_argument, NULL, 'o'},
	    {"device", required_argument, NULL, OPT_DEVICE},
	    {"rx-backlog", required_argument, NULL, OPT_RX_BACKLOG},
	    {"tx-ack-timeout", required_argument, NULL, OPT_TX_ACK_TIMEOUT},
	    {"link-up", no_argument, NULL, OPT_LINK_UP},
	    {"no-fd", no_argument, NULL, OPT_NO_FD},
	    {"print-capabilities", no_argument, NULL, OPT_PRINT_CAPS},
	    {"tx-allow", required_argument, NULL, OPT_TX_ALLOW},
	    {"rx-filter", required_argument, NULL, OPT_RX_FILTER},
	    {"capture", required_argument, NULL, OPT_CAPTURE},
	    {"bitrate", required_argument, NULL, OPT_BITRATE},
	    {"guest-mem-limit", required_argument, NULL, OPT_GUEST_MEM_LIMIT},
	    {"guest-mem-total", required_argument, NULL, OPT_GUEST_MEM_TOTAL},
	    {"sandbox", required_argument, NULL, OPT_SANDBOX},
	    {"seccomp", required_argument, NULL, OPT_SECCOMP},
	    {"core-dumps", no_argument, NULL, OPT_CORE_DUMPS},
	    {"verbose", no_argument, NULL, 'v'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct dev_opts g; /* -s/-i/-o/--fd and the defaults */
	char *specs[LOOP_MAX_DEVICES];
	unsigned int nspecs = 0;
	bool single = false;
	int c;

	/* Before any other check, as the conventions ask: no interface needed. */
	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--print-capabilities") == 0) {
			print_capabilities();
			return 1;
		}
	}
	memset(o, 0, sizeof(*o));
	o->verbosity = VLOG_INFO;
	o->guest_mem_total = DEFAULT_GUEST_MEM_TOTAL;
	dev_defaults(&g);
	while ((c = getopt_long(argc, argv, "s:i:o:vqVh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			g.socket_path = optarg;
			single = true;
			break;
		case OPT_FD:
			if (parse_fd("--fd", optarg, &g.fd) < 0)
				return -1;
			snprintf(g.fd_from, sizeof(g.fd_from), "--fd=%d", g.fd);
			single = true;
			break;
		case 'i':
			g.can_in = optarg;
			single = true;
			break;
		case 'o':
			g.can_out = optarg;
			single = true;
			break;
		case OPT_DEVICE:
			if (nspecs >= LOOP_MAX_DEVICES) {
				fprintf(stderr, "vhost-device-can: more than %u --device options\n",
					LOOP_MAX_DEVICES);
				return -1;
			}
			specs[nspecs++] = optarg;
			break;
		case OPT_RX_BACKLOG:
			if (parse_uint("--rx-backlog", optarg, 1, 1u << 20, &g.rx_backlog) < 0)
				return -1;
			break;
		case OPT_TX_ACK_TIMEOUT:
			if (parse_uint("--tx-ack-timeout", optarg, 1, 600000,
				       &g.tx_ack_timeout_ms) < 0)
				return -1;
			break;
		case OPT_LINK_UP:
			g.link_up = true;
			break;
		case OPT_NO_FD:
			g.no_fd = true;
			break;
		case OPT_TX_ALLOW:
			if (parse_filters("--tx-allow", optarg, ',', &g.tx_allow, &g.has_tx_allow) <
			    0)
				return -1;
			break;
		case OPT_BITRATE:
			if (parse_bitrate("--bitrate", optarg, ',', &g) < 0)
				return -1;
			break;
		case OPT_CAPTURE:
			g.capture = optarg;
			break;
		case OPT_GUEST_MEM_LIMIT:
			if (parse_size("--guest-mem-limit", optarg, &g.guest_mem_limit) < 0)
				return -1;
			break;
		case OPT_GUEST_MEM_TOTAL:
			if (parse_size("--guest-mem-total", optarg, &o->guest_mem_total) < 0)
				return -1;
			break;
		case OPT_SANDBOX:
			if (strcmp(optarg, "on") != 0 && strcmp(optarg, "none") != 0) {
				fprintf(stderr, "vhost-device-can: --sandbox: '%s' is not on or none\n",
					optarg);
				return -1;
			}
			o->no_sandbox = strcmp(optarg, "none") == 0;
			break;
		case OPT_SECCOMP:
			if (strcmp(optarg, "kill") != 0 && strcmp(optarg, "log") != 0) {
				fprintf(stderr, "vhost-device-can: --seccomp: '%s' is not kill or log\n",
					optarg);
				return -1;
			}
			o->seccomp = strcmp(optarg, "log") == 0 ? SANDBOX_SECCOMP_LOG
							      : SANDBOX_SECCOMP_KILL;
			break;
		case OPT_CORE_DUMPS:
			o->core_dumps = true;
			break;
		case OPT_RX_FILTER:
			if (parse_filters("--rx-filter", optarg, ',', &g.rx_filter,
					  &g.has_rx_filter) < 0)
				return -1;
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
			return usage_error();
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vhost-device-can: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (single && nspecs) {
		fprintf(stderr,
			"vhost-device-can: --device cannot be mixed with -s, --fd, -i or -o: "
			"give every device as a --device\n");
		return usage_error();
	}
	if (!nspecs) {
		o->dev[0] = g;
		o->ndev = 1;
	}
	for (unsigned int k = 0; k < nspecs; k++) {
		struct dev_opts *d = &o->dev[k];

		*d = g; /* the defaults */
		if (parse_device(specs[k], d) < 0)
			return usage_error();
	}
	if (nspecs)
		o->ndev = nspecs;
	o->with_device = nspecs > 0;
	for (unsigned int k = 0; k < o->ndev; k++) {
		struct dev_opts *d = &o->dev[k];
		const char *what = o->with_device ? "--device: " : "";
		bool no_sock;

		if (d->socket_path && d->fd >= 0) {
			fprintf(stderr,
				"vhost-device-can: %sgive a socket path or an fd, not both\n",
				what);
			return usage_error();
		}
		/* Single device: a socket is needed unless systemd passes one. */
		no_sock = !o->with_device && !d->socket_path && d->fd < 0 && !activation_pending();
		if (!d->can_in || !d->can_out || no_sock) {
			fprintf(stderr, "vhost-device-can: %smissing %s%s%s\n", what,
				no_sock ? "--socket-path " : "",
				!d->can_in ? (o->with_device ? "can-in " : "--can-in ") : "",
				!d->can_out ? (o->with_device ? "can-out" : "--can-out") : "");
			if (no_sock)
				fprintf(stderr, "(the socket may also be --fd=FDNUM, or come from "
						"systemd socket activation)\n");
			return usage_error();
		}
		for (unsigned int j = 0; j < k; j++) {
			if (d->socket_path && o->dev[j].socket_path &&
			    strcmp(d->socket_path, o->dev[j].socket_path) == 0) {
				fprintf(stderr,
					"vhost-device-can: --device: socket path %s given twice\n",
					d->socket_path);
				return usage_error();
			}
		}
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
	if (r->cap)
		loop_set_capture(m, m->ndevs - 1, r->cap);
	/* Before the loop runs: no frontend has mapped anything yet. */
	r->mem = (struct gmem_budget)GMEM_BUDGET_INIT(
	    d->guest_mem_limit, "per-device",
	    "--guest-mem-limit, or guest-mem-limit= in its --device");
	ret = vu_backend_add_mem_budget(m->devs[m->ndevs - 1].backend, &r->mem);
	if (ret == 0)
		ret = vu_backend_add_mem_budget(m->devs[m->ndevs - 1].backend, total);
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
	struct loop m = {.epfd = -1};
	struct sig_ctx sctx;
	static struct options o;
	static struct gmem_budget mem_total;
	unsigned int started = 0;
	bool inited = false;
	sigset_t mask;
	int sfd = -1, notify_fd = -1, ret, status = EXIT_FAILURE;

	ret = parse_options(argc, argv, &o);
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
	ret = loop_open(&m);
	if (ret < 0) {
		vlog_err(NULL, "epoll: %s", strerror(-ret));
		goto out;
	}
	inited = true;
	mem_total = (struct gmem_budget)GMEM_BUDGET_INIT(o.guest_mem_total, "per-process",
							 "--guest-mem-total");
	for (; started < o.ndev; started++)
		if (start_device(&m, &o.dev[started], runs, started, &mem_total) < 0)
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
	ret = loop_run(&m, sfd, on_signal, &sctx);
	if (ret < 0) {
		vlog_err(NULL, "event loop: %s", strerror(-ret));
		goto out;
	}
	status = EXIT_SUCCESS;
out:
	if (inited) {
		if (m.ndevs)
			print_stats(&m, runs, m.ndevs);
		loop_fini(&m);
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
