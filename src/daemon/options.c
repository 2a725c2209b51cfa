/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "vdc_version.h"
#include "vhost-user/vlog.h"

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

#define OPTIONS_STR(x) #x
#define OPTIONS_XSTR(x) OPTIONS_STR(x)

/* The process's options that are not a device's: options_parse's switch. */
enum {
	OPTIONS_ID_DEVICE = 1,
	OPTIONS_ID_GUEST_MEM_TOTAL,
	OPTIONS_ID_SANDBOX,
	OPTIONS_ID_SECCOMP,
	OPTIONS_ID_CORE_DUMPS,
	OPTIONS_ID_PRINT_CAPS,
	OPTIONS_ID_VERBOSE,
	OPTIONS_ID_QUIET,
	OPTIONS_ID_VERSION,
	OPTIONS_ID_HELP,
};

#define AT(field) offsetof(struct dev_opts, field)

/* A row in a few lines, not one field a line. */
/* clang-format off */
const struct options_key options_keys[] = {
    {.name = "socket-path", .letter = 's', .kind = OPTIONS_TEXT, .scope = OPTIONS_SINGLE,
     .at = AT(socket_path), .arg = "PATH",
     .help = "unix socket to listen on (a stale socket file is\n"
	     "replaced; any other existing file is an error)"},
    {.name = "fd", .kind = OPTIONS_FD, .scope = OPTIONS_SINGLE, .min = 0, .max = INT_MAX,
     .at = AT(fd), .arg = "FDNUM",
     .help = "serve the inherited unix socket FDNUM instead: a\n"
	     "listening one (frontends one at a time) or a\n"
	     "connected one (exit when it closes)"},
    {.name = "can-in", .letter = 'i', .kind = OPTIONS_TEXT, .scope = OPTIONS_SINGLE,
     .at = AT(can_in), .arg = "IFACE",
     .help = "CAN interface whose frames go to the guest"},
    {.name = "can-out", .letter = 'o', .kind = OPTIONS_TEXT, .scope = OPTIONS_SINGLE,
     .at = AT(can_out), .arg = "IFACE",
     .help = "CAN interface the guest's frames are sent on"},
    {.name = "name", .kind = OPTIONS_TEXT, .scope = OPTIONS_SINGLE, .at = AT(name), .arg = "NAME",
     .help = "the device's name in logs and counters (default:\n"
	     "its interface, or IN>OUT when they differ)"},
    {.name = "rx-backlog", .kind = OPTIONS_UINT, .scope = OPTIONS_DEVICE, .min = 1,
     .max = 1u << 20, .at = AT(rx_backlog), .arg = "N",
     .help = "frames kept while the guest has no free RX buffer\n"
	     "(default " OPTIONS_XSTR(DEVICE_DEFAULT_RX_BACKLOG) ", at most 1048576); "
	     "beyond that the\n"
	     "newest are dropped and counted"},
    {.name = "tx-ack-timeout", .kind = OPTIONS_UINT, .scope = OPTIONS_DEVICE, .min = 1,
     .max = 600000, .at = AT(tx_ack_timeout_ms), .arg = "MS",
     .help = "with LATE_TX_ACK, fail a TX request whose frame\n"
	     "was not confirmed on the bus after MS ms\n"
	     "(default " OPTIONS_XSTR(DEVICE_DEFAULT_TX_ACK_TIMEOUT_MS) ", at most 600000)"},
    {.name = "link-up", .kind = OPTIONS_FLAG, .scope = OPTIONS_DEVICE, .at = AT(link_up),
     .help = "bring the out interface up on the guest's START\n"
	     "and down on STOP (needs CAP_NET_ADMIN)"},
    {.name = "no-fd", .kind = OPTIONS_FLAG, .scope = OPTIONS_DEVICE, .at = AT(no_fd),
     .help = "do not offer CAN FD, even on CAN FD interfaces"},
    {.name = "tx-allow", .kind = OPTIONS_FILTERS, .scope = OPTIONS_DEVICE, .at = AT(tx_allow),
     .at2 = AT(has_tx_allow), .arg = "FILTERS",
     .help = "ids the guest may send, in candump's syntax\n"
	     "(id:mask or id~mask, comma separated, hex; 8\n"
	     "digits: extended); others complete NOT_OK and\n"
	     "are counted as denied"},
    {.name = "rx-filter", .kind = OPTIONS_FILTERS, .scope = OPTIONS_DEVICE, .at = AT(rx_filter),
     .at2 = AT(has_rx_filter), .arg = "FILTERS",
     .help = "frames of --can-in the guest receives, same syntax,\n"
	     "applied in the kernel (CAN_RAW_FILTER)"},
    {.name = "bitrate", .kind = OPTIONS_BITRATE, .scope = OPTIONS_DEVICE, .at = AT(bitrate),
     .at2 = AT(dbitrate), .arg = "BPS[,DATA_BPS]",
     .help = "pace the guest's frames to a bus of BPS (CAN FD\n"
	     "data phase at DATA_BPS; k and M suffixes); with\n"
	     "--link-up on a real controller, also set them"},
    {.name = "capture", .kind = OPTIONS_TEXT, .scope = OPTIONS_DEVICE, .at = AT(capture),
     .arg = "FILE",
     .help = "record every frame, both ways, with its outcome:\n"
	     "pcapng for Wireshark, or candump's log format\n"
	     "when FILE ends in .log (SIGHUP reopens it)"},
    {.name = "guest-mem-limit", .kind = OPTIONS_SIZE, .scope = OPTIONS_DEVICE,
     .at = AT(guest_mem_limit), .arg = "SIZE",
     .help = "guest memory one device's frontend may map\n"
	     "(default 1T; K, M, G, T, P: powers of 1024);\n"
	     "a memory table asking more is refused"},
    {.name = "device", .kind = OPTIONS_OTHER, .scope = OPTIONS_PROCESS, .id = OPTIONS_ID_DEVICE,
     .arg = "SPEC",
     .help = "one device (repeatable, up to " OPTIONS_XSTR(LOOP_MAX_DEVICES) ") in this\n"
	     "process: SPEC is KEY=VALUE,... whose keys are\n"
	     "the device options above without their dashes:\n"
	     "socket-path or fd, can-in and can-out needed,\n"
	     "the others optional; a flag alone or =1 or =0;\n"
	     "'+' for ',' inside a value. Not together with\n"
	     "-s, --fd, -i, -o or --name; the other device\n"
	     "options given as options are every device's\n"
	     "defaults"},
    {.name = "guest-mem-total", .kind = OPTIONS_OTHER, .scope = OPTIONS_PROCESS,
     .id = OPTIONS_ID_GUEST_MEM_TOTAL, .arg = "SIZE",
     .help = "guest memory all devices of this process may\n"
	     "map together (default 4T)"},
    {.name = "sandbox", .kind = OPTIONS_OTHER, .scope = OPTIONS_PROCESS, .id = OPTIONS_ID_SANDBOX,
     .arg = "on|none",
     .help = "once started, confine the process (default on):\n"
	     "no capabilities (CAP_NET_ADMIN alone with\n"
	     "--link-up), no files but the capture folders, a\n"
	     "system call filter; none turns it all off"},
    {.name = "seccomp", .kind = OPTIONS_OTHER, .scope = OPTIONS_PROCESS, .id = OPTIONS_ID_SECCOMP,
     .arg = "kill|log",
     .help = "a system call outside the filter kills the process\n"
	     "(default), or is only logged by the kernel"},
    {.name = "core-dumps", .kind = OPTIONS_OTHER, .scope = OPTIONS_PROCESS,
     .id = OPTIONS_ID_CORE_DUMPS,
     .help = "keep the core dump limit (the sandbox sets it to 0)"},
    {.name = "print-capabilities", .kind = OPTIONS_OTHER, .scope = OPTIONS_PROCESS,
     .id = OPTIONS_ID_PRINT_CAPS,
     .help = "print the backend's capabilities as JSON, exit"},
    {.name = "verbose", .letter = 'v', .kind = OPTIONS_OTHER, .scope = OPTIONS_PROCESS,
     .id = OPTIONS_ID_VERBOSE,
     .help = "more log output (repeat for debug)"},
    {.name = "quiet", .letter = 'q', .kind = OPTIONS_OTHER, .scope = OPTIONS_PROCESS,
     .id = OPTIONS_ID_QUIET,
     .help = "errors only"},
    {.name = "version", .letter = 'V', .kind = OPTIONS_OTHER, .scope = OPTIONS_PROCESS,
     .id = OPTIONS_ID_VERSION,
     .help = "print the version and exit"},
    {.name = "help", .letter = 'h', .kind = OPTIONS_OTHER, .scope = OPTIONS_PROCESS,
     .id = OPTIONS_ID_HELP,
     .help = "print this text and exit"},
};
/* clang-format on */

const unsigned int options_nkeys = sizeof(options_keys) / sizeof(options_keys[0]);

/* The usage's columns: options from 2, their text from 28. */
#define OPTIONS_HELP_COL 28

static void usage_key(FILE *f, const struct options_key *k)
{
	char left[64];
	const char *h = k->help;
	int n;

	if (k->letter)
		n = snprintf(left, sizeof(left), "  -%c, --%s", k->letter, k->name);
	else
		n = snprintf(left, sizeof(left), "      --%s", k->name);
	if (k->arg)
		n += snprintf(left + n, sizeof(left) - (size_t)n, "=%s", k->arg);
	fprintf(f, "%s", left);
	/* Two blanks at least; a long left side pushes its first line right. */
	fprintf(f, "%*s", n + 2 < OPTIONS_HELP_COL ? OPTIONS_HELP_COL - n : 2, "");
	for (;;) {
		const char *nl = strchr(h, '\n');

		if (!nl) {
			fprintf(f, "%s\n", h);
			return;
		}
		fprintf(f, "%.*s\n%*s", (int)(nl - h), h, OPTIONS_HELP_COL, "");
		h = nl + 1;
	}
}

void options_usage(FILE *f)
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
		"Options of a device (also the keys of --device):\n");
	for (unsigned int i = 0; i < options_nkeys; i++)
		if (options_keys[i].scope != OPTIONS_PROCESS)
			usage_key(f, &options_keys[i]);
	fprintf(f, "\nOptions of the process:\n");
	for (unsigned int i = 0; i < options_nkeys; i++)
		if (options_keys[i].scope == OPTIONS_PROCESS)
			usage_key(f, &options_keys[i]);
	fprintf(f, "\n"
		   "Without -s or --fd (or socket-path/fd in a --device), the sockets come from\n"
		   "systemd socket activation (LISTEN_FDS), in order. READY=1 goes to\n"
		   "NOTIFY_SOCKET once every socket is served.\n"
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
		   "a start-up or runtime error, 2 on a usage error.\n");
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

/* A flag's value: none or 1 sets it, 0 clears it. 0 or -1 after a message. */
static int parse_flag(const char *opt, const char *s, bool *out)
{
	if (!s || strcmp(s, "1") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(s, "0") == 0) {
		*out = false;
		return 0;
	}
	fprintf(stderr, "vhost-device-can: %s: '%s' is not 1 or 0\n", opt, s);
	return -1;
}

/*
 * Key k's value v into d. shown names it in messages ("--rx-backlog",
 * "--device rx-backlog"); sep joins a list's entries (',', '+' in a
 * --device). 0 or -1 after a message.
 */
static int parse_key(const struct options_key *k, const char *shown, const char *v, char sep,
		     struct dev_opts *d)
{
	char *at = (char *)d + k->at;

	switch (k->kind) {
	case OPTIONS_TEXT:
		*(const char **)(void *)at = v;
		return 0;
	case OPTIONS_FLAG:
		return parse_flag(shown, v, (bool *)(void *)at);
	case OPTIONS_UINT:
		return parse_uint(shown, v, k->min, k->max, (unsigned int *)(void *)at) < 0 ? -1
											    : 0;
	case OPTIONS_FD:
		if (parse_fd(shown, v, &d->fd) < 0)
			return -1;
		snprintf(d->fd_from, sizeof(d->fd_from), "%s=%d", shown, d->fd);
		return 0;
	case OPTIONS_SIZE:
		return parse_size(shown, v, (uint64_t *)(void *)at) < 0 ? -1 : 0;
	case OPTIONS_FILTERS:
		return parse_filters(shown, v, sep, (struct cfilt *)(void *)at,
				     (bool *)(void *)((char *)d + k->at2));
	case OPTIONS_BITRATE:
		return parse_bitrate(shown, v, sep, d);
	case OPTIONS_OTHER:
		break;
	}
	return -1;
}

static const struct options_key *find_key(const char *name)
{
	for (unsigned int i = 0; i < options_nkeys; i++)
		if (strcmp(options_keys[i].name, name) == 0)
			return &options_keys[i];
	return NULL;
}

/*
 * One --device SPEC into d (which holds the defaults). SPEC is modified
 * (split at commas). 0 or -1 after a message naming the bad part.
 */
static int parse_device(char *spec, struct dev_opts *d)
{
	char *save = NULL;

	for (char *kv = strtok_r(spec, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		const struct options_key *k;
		char *v = strchr(kv, '=');
		char shown[64];

		if (v)
			*v++ = '\0';
		k = find_key(kv);
		if (!k || k->scope == OPTIONS_PROCESS) {
			fprintf(stderr, "vhost-device-can: --device: unknown key '%s'\n", kv);
			return -1;
		}
		if (k->kind != OPTIONS_FLAG && (!v || !*v)) {
			fprintf(stderr, "vhost-device-can: --device: '%s' needs a value\n", kv);
			return -1;
		}
		snprintf(shown, sizeof(shown), "--device %s", k->name);
		if (parse_key(k, shown, v, '+', d) < 0)
			return -1;
	}
	return 0;
}

/* "-s, --fd, -i, -o or --name": what describes the one device only. */
static void single_list(char *buf, size_t cap)
{
	unsigned int n = 0, total = 0;
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < options_nkeys; i++)
		total += options_keys[i].scope == OPTIONS_SINGLE;
	for (unsigned int i = 0; i < options_nkeys; i++) {
		const struct options_key *k = &options_keys[i];
		char opt[32];

		if (k->scope != OPTIONS_SINGLE || len >= cap)
			continue;
		if (k->letter)
			snprintf(opt, sizeof(opt), "-%c", k->letter);
		else
			snprintf(opt, sizeof(opt), "--%s", k->name);
		n++;
		len += (size_t)snprintf(buf + len, cap - len, "%s%s",
					n == 1 ? "" : (n == total ? " or " : ", "), opt);
	}
}

int options_parse(int argc, char **argv, struct options *o)
{
	struct option longopts[sizeof(options_keys) / sizeof(options_keys[0]) + 1];
	char shortopts[2 * sizeof(options_keys) / sizeof(options_keys[0]) + 1];
	struct dev_opts g; /* -s/-i/-o/--fd/--name and the defaults */
	char *specs[LOOP_MAX_DEVICES];
	unsigned int nspecs = 0, ns = 0;
	bool single = false;
	int c, idx;

	/* Before any other check, as the conventions ask: no interface needed. */
	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--print-capabilities") == 0) {
			print_capabilities();
			return 1;
		}
	}
	for (unsigned int i = 0; i < options_nkeys; i++) {
		const struct options_key *k = &options_keys[i];

		/* A flag may be given a value (=1, =0) as in --device. */
		longopts[i] = (struct option){
		    k->name,
		    !k->arg ? (k->kind == OPTIONS_FLAG ? optional_argument : no_argument)
			    : required_argument,
		    NULL, k->letter ? k->letter : 256 + (int)i};
		if (k->letter) {
			shortopts[ns++] = k->letter;
			if (k->arg)
				shortopts[ns++] = ':';
		}
	}
	longopts[options_nkeys] = (struct option){NULL, 0, NULL, 0};
	shortopts[ns] = '\0';

	memset(o, 0, sizeof(*o));
	o->verbosity = VLOG_INFO;
	o->guest_mem_total = DEFAULT_GUEST_MEM_TOTAL;
	dev_defaults(&g);
	optind = 0; /* glibc: start afresh, also when called again (tests) */
	while ((c = getopt_long(argc, argv, shortopts, longopts, &idx)) != -1) {
		const struct options_key *k = NULL;
		char shown[64];

		if (c >= 256 && c < 256 + (int)options_nkeys) {
			k = &options_keys[c - 256];
		} else {
			for (unsigned int i = 0; i < options_nkeys && c != '?'; i++)
				if (options_keys[i].letter == c)
					k = &options_keys[i];
		}
		if (!k)
			return usage_error();
		if (k->scope != OPTIONS_PROCESS) {
			snprintf(shown, sizeof(shown), "--%s", k->name);
			if (parse_key(k, shown, optarg, ',', &g) < 0)
				return -1;
			single = single || k->scope == OPTIONS_SINGLE;
			continue;
		}
		switch (k->id) {
		case OPTIONS_ID_DEVICE:
			if (nspecs >= LOOP_MAX_DEVICES) {
				fprintf(stderr, "vhost-device-can: more than %u --device options\n",
					LOOP_MAX_DEVICES);
				return -1;
			}
			specs[nspecs++] = optarg;
			break;
		case OPTIONS_ID_GUEST_MEM_TOTAL:
			if (parse_size("--guest-mem-total", optarg, &o->guest_mem_total) < 0)
				return -1;
			break;
		case OPTIONS_ID_SANDBOX:
			if (strcmp(optarg, "on") != 0 && strcmp(optarg, "none") != 0) {
				fprintf(stderr,
					"vhost-device-can: --sandbox: '%s' is not on or none\n",
					optarg);
				return -1;
			}
			o->no_sandbox = strcmp(optarg, "none") == 0;
			break;
		case OPTIONS_ID_SECCOMP:
			if (strcmp(optarg, "kill") != 0 && strcmp(optarg, "log") != 0) {
				fprintf(stderr,
					"vhost-device-can: --seccomp: '%s' is not kill or log\n",
					optarg);
				return -1;
			}
			o->seccomp =
			    strcmp(optarg, "log") == 0 ? SANDBOX_SECCOMP_LOG : SANDBOX_SECCOMP_KILL;
			break;
		case OPTIONS_ID_CORE_DUMPS:
			o->core_dumps = true;
			break;
		case OPTIONS_ID_VERBOSE:
			if (o->verbosity < VLOG_DEBUG)
				o->verbosity++;
			break;
		case OPTIONS_ID_QUIET:
			o->verbosity = VLOG_ERR;
			break;
		case OPTIONS_ID_VERSION:
			printf("%s\n", vdc_version());
			return 1;
		case OPTIONS_ID_HELP:
			options_usage(stdout);
			return 1;
		default: /* --print-capabilities was handled above */
			return usage_error();
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vhost-device-can: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (single && nspecs) {
		char list[64];

		single_list(list, sizeof(list));
		fprintf(stderr,
			"vhost-device-can: --device cannot be mixed with %s: give every "
			"device as a --device\n",
			list);
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
