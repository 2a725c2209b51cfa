/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * vhost-device-can-frontend: try or debug the daemon without a VM. It plays
 * the VMM and the guest's virtio-can driver (this folder's library): connects to the
 * daemon's socket, sets up guest memory and the three rings, sends START,
 * transmits the frames it is given in cansend syntax and prints what the
 * guest receives as candump does.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "canfmt.h"
#include "guest_driver.h"
#include "vhost-user/vlog.h"

#define PROG "vhost-device-can-frontend"
#define EXIT_USAGE 2
#define EXIT_SHORT 3 /* --count frames did not all arrive */

#define QUEUE_SIZE 256
#define CONNECT_TIMEOUT_MS 10000 /* default --wait */
#define CTRL_TIMEOUT_MS 5000
/* A TX request still unanswered this long after the last progress has failed. */
#define TX_ANSWER_TIMEOUT_MS 10000
#define LINE_CAP 512
#define MAX_TIMEOUT_S 2000000.0

static void usage(FILE *f)
{
	fprintf(f, "Usage: " PROG " -s PATH [OPTION]... [FRAME]...\n"
		   "\n"
		   "Plays a virtual machine with a VirtIO CAN device against a running\n"
		   "vhost-device-can, for trying or debugging it without a VM: connects to\n"
		   "the daemon's socket as a VMM does, sets up guest memory and the rings,\n"
		   "starts the controller (START), transmits each FRAME from the guest and\n"
		   "prints every frame the guest receives, one line each, as candump does.\n"
		   "\n"
		   "Options:\n"
		   "  -s, --socket-path=PATH  the daemon's socket\n"
		   "  -w, --wait=SECONDS      how long to wait for the socket to accept a\n"
		   "                          connection while the daemon starts (default 10)\n"
		   "  -n, --count=N           exit after receiving N frames\n"
		   "  -t, --timeout=SECONDS   listen this long after the start (decimals\n"
		   "                          allowed; 0: send and exit); default: until\n"
		   "                          SIGINT or SIGTERM\n"
		   "  -i, --interface=NAME    interface name printed on received frames\n"
		   "                          (default \"virtio\"; at most 15 characters)\n"
		   "      --no-fd             do not negotiate CAN FD\n"
		   "      --late-tx-ack       negotiate LATE_TX_ACK: a frame is answered once\n"
		   "                          it was confirmed on the bus\n"
		   "      --order=ORDER       the VMM's message order: qemu (default) or\n"
		   "                          cloud-hypervisor\n"
		   "  -v, --verbose           report each frame sent and the session's steps\n"
		   "                          on stderr (twice: the protocol's debug log)\n"
		   "  -V, --version           print the version and exit\n"
		   "  -h, --help              print this text and exit\n"
		   "\n"
		   "Frames, in can-utils cansend syntax:\n"
		   "  123#DEADBEEF      standard id (3 hex digits), 0..8 data bytes\n"
		   "  12345678#00       extended id (8 hex digits)\n"
		   "  123#11.22.33      bytes may be separated by dots\n"
		   "  123#R  123#R5     remote request, optionally with a length 0..8\n"
		   "  123##1AABB        CAN FD: '##', a flags digit (1 = BRS, 2 = ESI),\n"
		   "                    0..64 data bytes\n"
		   "  -                 read frames from standard input, one per line\n"
		   "A CAN FD length that no DLC expresses (such as 9) is padded with zero\n"
		   "bytes to the next one (12), as a CAN FD controller sends it. virtio-can\n"
		   "carries no BRS or ESI flag: the device chooses them. Frames go out in\n"
		   "order; the arguments are all checked before anything is sent.\n"
		   "\n"
		   "Received frames are printed on stdout like candump's default output:\n"
		   "  \"  virtio  123   [4]  DE AD BE EF\"      classic\n"
		   "  \"  virtio  123  [12]  00 11 22 ...\"     CAN FD (two-digit length)\n"
		   "  \"  virtio  123   [2]  remote request\"   remote request\n"
		   "As candump, once an extended id was printed, standard ids move right\n"
		   "to line up with them (\"  virtio       123   [4]  DE AD BE EF\").\n"
		   "A TX request the device answers with NOT_OK is reported on stderr with\n"
		   "the frame. The program exits when every frame was sent and answered and\n"
		   "then --count frames arrived or --timeout passed; SIGINT and SIGTERM end\n"
		   "it at once. It sends STOP before it disconnects.\n"
		   "\n"
		   "Examples:\n"
		   "  " PROG " -s /tmp/can.sock 123#DEADBEEF 12345678##1.11.22 -t 0\n"
		   "  " PROG " -s /tmp/can.sock -n 10 -i vcan0\n"
		   "  printf '123#01\\n124#02\\n' | " PROG " -s /tmp/can.sock - -t 1\n"
		   "\n"
		   "Exit status: 0 when every frame was answered OK (and --count frames\n"
		   "arrived), 1 when a frame got NOT_OK or no answer or on any other\n"
		   "failure, 2 on a usage error, 3 when fewer than --count frames arrived\n"
		   "(before --timeout passed or a signal came).\n");
}

struct item {
	bool from_stdin; /* "-": frames from stdin go here */
	struct cframe f;
};

struct options {
	const char *socket_path;
	const char *ifname;
	unsigned long count; /* 0: no count */
	long timeout_ms;     /* -1: forever */
	long wait_ms;
	bool no_fd;
	bool late_tx_ack;
	enum fe_order order;
	int verbosity;
	struct item *items;
	unsigned int nitems;
};

struct linebuf {
	char buf[LINE_CAP];
	size_t len;
	bool eof;
	bool skipping; /* dropping the rest of a line that was too long */
	unsigned long lineno;
};

struct run {
	const struct options *o;
	struct gdrv *c;
	struct fe *fe;
	int sfd;
	/* sending */
	unsigned int next; /* next item */
	bool stdin_active;
	struct linebuf in;
	bool has_held; /* a frame waiting for room in the Txq */
	struct cframe held;
	struct cframe pending[QUEUE_SIZE]; /* by token */
	bool in_flight[QUEUE_SIZE];
	int64_t tx_progress_ms;
	/* receiving */
	unsigned long received;
	unsigned int view; /* candump's CANFMT_VIEW_* */
	/* outcome */
	unsigned long not_ok;
	bool failed;
	bool fatal;
	bool conn_lost;
	bool stop;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void frame_text(const struct cframe *f, char *buf, size_t size)
{
	if (canfmt_cansend(buf, size, f) < 0)
		snprintf(buf, size, "(unprintable frame)");
}

static int parse_count(const char *s, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || s[0] == '+' || v < 1 || v > 1000000000ul) {
		fprintf(stderr, PROG ": --count: '%s' is not a number in 1..1000000000\n", s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_seconds(const char *opt, const char *s, long *out_ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	/* The comparisons also refuse NaN. */
	if (errno || end == s || *end || !(v >= 0.0 && v <= MAX_TIMEOUT_S)) {
		fprintf(stderr, PROG ": %s: '%s' is not a number of seconds in 0..%.0f\n", opt, s,
			MAX_TIMEOUT_S);
		return -EINVAL;
	}
	*out_ms = (long)(v * 1000.0 + 0.5);
	return 0;
}

static void try_help(void)
{
	fprintf(stderr, "Try '" PROG " --help' for more information.\n");
}

/* 0 to run, 1 when done (help, version), -1 on a usage error. */
static int parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_NO_FD = 256, OPT_LATE_TX_ACK, OPT_ORDER };
	static const struct option longopts[] = {
	    {"socket-path", required_argument, NULL, 's'},
	    {"count", required_argument, NULL, 'n'},
	    {"timeout", required_argument, NULL, 't'},
	    {"wait", required_argument, NULL, 'w'},
	    {"interface", required_argument, NULL, 'i'},
	    {"no-fd", no_argument, NULL, OPT_NO_FD},
	    {"late-tx-ack", no_argument, NULL, OPT_LATE_TX_ACK},
	    {"order", required_argument, NULL, OPT_ORDER},
	    {"verbose", no_argument, NULL, 'v'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool have_stdin = false;
	int c;

	while ((c = getopt_long(argc, argv, "s:n:t:w:i:vVh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket_path = optarg;
			break;
		case 'n':
			if (parse_count(optarg, &o->count) < 0)
				return -1;
			break;
		case 't':
			if (parse_seconds("--timeout", optarg, &o->timeout_ms) < 0)
				return -1;
			break;
		case 'w':
			if (parse_seconds("--wait", optarg, &o->wait_ms) < 0)
				return -1;
			break;
		case 'i':
			if (!optarg[0] || strlen(optarg) > CANFMT_DUMP_IFNAME_MAX) {
				fprintf(stderr,
					PROG ": --interface: the name must have 1..%d characters\n",
					CANFMT_DUMP_IFNAME_MAX);
				return -1;
			}
			o->ifname = optarg;
			break;
		case OPT_NO_FD:
			o->no_fd = true;
			break;
		case OPT_LATE_TX_ACK:
			o->late_tx_ack = true;
			break;
		case OPT_ORDER:
			if (strcmp(optarg, "qemu") == 0) {
				o->order = FE_ORDER_QEMU;
			} else if (strcmp(optarg, "cloud-hypervisor") == 0) {
				o->order = FE_ORDER_CLOUD_HV;
			} else {
				fprintf(stderr,
					PROG ": --order: '%s' is not qemu or cloud-hypervisor\n",
					optarg);
				return -1;
			}
			break;
		case 'v':
			o->verbosity++;
			break;
		case 'V':
			printf(PROG " %s\n", VDC_VERSION);
			return 1;
		case 'h':
			usage(stdout);
			return 1;
		default:
			try_help();
			return -1;
		}
	}
	if (!o->socket_path) {
		fprintf(stderr, PROG ": missing --socket-path\n");
		try_help();
		return -1;
	}
	o->nitems = (unsigned int)(argc - optind);
	o->items = calloc(o->nitems ? o->nitems : 1, sizeof(*o->items));
	if (!o->items) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	/* Every argument is checked before anything is sent. */
	for (unsigned int i = 0; i < o->nitems; i++) {
		const char *a = argv[optind + (int)i];
		int ret;

		if (strcmp(a, "-") == 0) {
			if (have_stdin) {
				fprintf(stderr, PROG ": '-' (standard input) given twice\n");
				return -1;
			}
			have_stdin = true;
			o->items[i].from_stdin = true;
			continue;
		}
		ret = canfmt_parse_str(a, &o->items[i].f);
		if (ret < 0) {
			fprintf(stderr, PROG ": frame '%s': %s\n", a, canfmt_strerror(ret));
			try_help();
			return -1;
		}
	}
	return 0;
}

static void report_answer(struct run *r, int token, uint8_t result)
{
	char text[CANFMT_SEND_MAX];

	if (token < 0 || token >= QUEUE_SIZE || !r->in_flight[token]) {
		fprintf(stderr, PROG ": the device answered a TX request that is not pending\n");
		r->fatal = true;
		return;
	}
	r->in_flight[token] = false;
	frame_text(&r->pending[token], text, sizeof(text));
	if (result == VIRTIO_CAN_RESULT_OK) {
		if (r->o->verbosity > 0)
			fprintf(stderr, PROG ": sent %s\n", text);
		return;
	}
	r->not_ok++;
	if (result == VIRTIO_CAN_RESULT_NOT_OK)
		fprintf(stderr, PROG ": frame %s: NOT_OK\n", text);
	else
		fprintf(stderr, PROG ": frame %s: NOT_OK (result byte %u)\n", text, result);
}

/* Take every TX answer the device has pushed. */
static void drain_tx(struct run *r)
{
	for (;;) {
		uint8_t result;
		int token, ret = gdrv_tx_wait(r->c, 0, &token, &result);

		if (ret == -ETIMEDOUT)
			return;
		if (ret < 0) {
			fprintf(stderr, PROG ": TX queue: %s\n", strerror(-ret));
			r->fatal = true;
			return;
		}
		r->tx_progress_ms = now_ms();
		report_answer(r, token, result);
		if (r->fatal)
			return;
	}
}

static void report_bad_rx(struct run *r)
{
	struct virtio_can_hdr h;
	uint32_t used;

	gdrv_rx_last(r->c, &h, &used);
	fprintf(stderr,
		PROG ": received a frame the Linux driver would drop (msg_type 0x%04x, "
		     "flags 0x%08x, can_id 0x%08x, length %u, used length %u)\n",
		le16toh(h.msg_type), le32toh(h.flags), le32toh(h.can_id), le16toh(h.length), used);
	r->failed = true;
}

/* Take every received frame and print the first --count of them. */
static void drain_rx(struct run *r)
{
	for (;;) {
		char line[CANFMT_DUMP_MAX];
		struct cframe f;
		int ret = gdrv_rx(r->c, &f, 0);

		if (ret == -ETIMEDOUT)
			return;
		if (ret == -EPROTO) {
			report_bad_rx(r);
			continue;
		}
		if (ret < 0) {
			fprintf(stderr, PROG ": RX queue: %s\n", strerror(-ret));
			r->fatal = true;
			return;
		}
		if (r->o->count && r->received >= r->o->count)
			continue;
		/* As candump: once an extended id was printed, standard ids line up with them. */
		if (f.flags & CFRAME_EXT)
			r->view |= CANFMT_VIEW_INDENT_SFF;
		if (canfmt_candump(line, sizeof(line), r->o->ifname, &f, r->view) < 0) {
			report_bad_rx(r);
			continue;
		}
		puts(line);
		r->received++;
	}
}

static void trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
		(*n)--;
}

/*
 * The next frame from stdin's buffered lines: 1 with *f, 0 when more input
 * is needed, -1 at the end of input. Bad lines are reported and skipped.
 */
static int stdin_frame(struct run *r, struct cframe *f)
{
	struct linebuf *lb = &r->in;

	for (;;) {
		char *nl = memchr(lb->buf, '\n', lb->len);
		size_t take, n;
		const char *s = lb->buf;
		int ret;

		if (!nl && lb->len == sizeof(lb->buf)) {
			if (!lb->skipping) {
				lb->lineno++;
				fprintf(stderr, PROG ": stdin line %lu: longer than %d bytes\n",
					lb->lineno, LINE_CAP - 1);
				r->failed = true;
			}
			lb->skipping = true;
			lb->len = 0;
			continue;
		}
		if (!nl && !(lb->eof && lb->len))
			return lb->eof ? -1 : 0;
		n = nl ? (size_t)(nl - lb->buf) : lb->len;
		take = nl ? n + 1 : n;
		if (lb->skipping) {
			lb->skipping = false;
			memmove(lb->buf, lb->buf + take, lb->len - take);
			lb->len -= take;
			continue;
		}
		lb->lineno++;
		trim(&s, &n);
		ret = n ? canfmt_parse(s, n, f) : 1;
		if (ret < 0) {
			fprintf(stderr, PROG ": stdin line %lu: '%.*s': %s\n", lb->lineno, (int)n,
				s, canfmt_strerror(ret));
			r->failed = true;
		}
		memmove(lb->buf, lb->buf + take, lb->len - take);
		lb->len -= take;
		if (ret == 0)
			return 1;
	}
}

static void read_stdin(struct run *r)
{
	struct linebuf *lb = &r->in;
	ssize_t n;

	do {
		n = read(STDIN_FILENO, lb->buf + lb->len, sizeof(lb->buf) - lb->len);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		fprintf(stderr, PROG ": reading standard input: %s\n", strerror(errno));
		r->failed = true;
		lb->eof = true;
		return;
	}
	if (n == 0)
		lb->eof = true;
	lb->len += (size_t)n;
}

/* The next frame to send: 1 with *f, 0 when waiting for stdin, -1 when there is none left. */
static int next_frame(struct run *r, struct cframe *f)
{
	for (;;) {
		if (r->stdin_active) {
			int ret = stdin_frame(r, f);

			if (ret >= 0)
				return ret;
			r->stdin_active = false;
		}
		if (r->next >= r->o->nitems)
			return -1;
		if (r->o->items[r->next].from_stdin) {
			r->stdin_active = true;
			r->next++;
			continue;
		}
		*f = r->o->items[r->next++].f;
		return 1;
	}
}

/* Queue frames until the sources run dry or the Txq is full. */
static void feed(struct run *r)
{
	while (!r->fatal && !r->stop) {
		struct cframe f;
		int token;

		if (r->has_held) {
			f = r->held;
		} else if (next_frame(r, &f) <= 0) {
			return;
		}
		token = gdrv_tx(r->c, &f);
		if (token == -ENOSPC) {
			r->held = f;
			r->has_held = true;
			return;
		}
		if (token < 0 || token >= QUEUE_SIZE || r->in_flight[token]) {
			fprintf(stderr, PROG ": cannot queue a TX request: %s\n",
				token < 0 ? strerror(-token) : "bad token");
			r->fatal = true;
			return;
		}
		r->has_held = false;
		if (gdrv_tx_pending(r->c) == 1)
			r->tx_progress_ms = now_ms();
		r->pending[token] = f;
		r->in_flight[token] = true;
	}
}

static bool sending_done(const struct run *r)
{
	return !r->has_held && !r->stdin_active && r->next >= r->o->nitems &&
	       gdrv_tx_pending(r->c) == 0;
}

static void on_config_change(struct run *r)
{
	uint32_t request, size;
	int ret = fe_backend_recv(r->fe, 0, &request, &size), status;

	if (ret == -ETIMEDOUT)
		return;
	if (ret < 0) {
		/* The daemon closed its channel: the main socket will tell why. */
		return;
	}
	if (request != VHOST_USER_BACKEND_CONFIG_CHANGE_MSG) {
		fprintf(stderr, PROG ": backend channel: unexpected request %u\n", request);
		return;
	}
	status = gdrv_status(r->c);
	if (status < 0)
		fprintf(stderr, PROG ": config change; reading the status failed: %s\n",
			strerror(-status));
	else
		fprintf(stderr, PROG ": config change: controller status 0x%x%s\n",
			(unsigned int)status,
			((unsigned int)status & VIRTIO_CAN_S_CTRL_BUSOFF)
			    ? " (bus-off: the controller stopped)"
			    : "");
}

static void consume_eventfd(int fd)
{
	eventfd_t v;

	(void)eventfd_read(fd, &v);
}

static void on_signal(struct run *r)
{
	struct signalfd_siginfo si;

	while (read(r->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (r->o->verbosity > 0)
			fprintf(stderr, PROG ": %s, stopping\n", strsignal((int)si.ssi_signo));
		r->stop = true;
	}
}

enum { P_SIG, P_RX, P_TX, P_SOCK, P_CHAN, P_STDIN, P_N };

static void loop(struct run *r, int64_t deadline)
{
	int rx_fd = fe_ring_call_fd(r->fe, VIRTIO_CAN_QUEUE_RX);
	int tx_fd = fe_ring_call_fd(r->fe, VIRTIO_CAN_QUEUE_TX);

	for (;;) {
		struct pollfd p[P_N];
		int64_t now, wait = -1;
		int ret;

		feed(r);
		if (r->fatal || r->stop)
			return;
		now = now_ms();
		if (sending_done(r)) {
			if (r->o->count && r->received >= r->o->count)
				return;
			if (deadline >= 0 && now >= deadline)
				return;
			if (deadline >= 0)
				wait = deadline - now;
		}
		if (gdrv_tx_pending(r->c) > 0) {
			int64_t left = r->tx_progress_ms + TX_ANSWER_TIMEOUT_MS - now;

			if (left <= 0) {
				fprintf(stderr,
					PROG ": no answer from the device for %u TX request(s)"
					     " in %d s\n",
					gdrv_tx_pending(r->c), TX_ANSWER_TIMEOUT_MS / 1000);
				r->fatal = true;
				return;
			}
			if (wait < 0 || left < wait)
				wait = left;
		}
		p[P_SIG] = (struct pollfd){.fd = r->sfd, .events = POLLIN};
		p[P_RX] = (struct pollfd){.fd = rx_fd, .events = POLLIN};
		p[P_TX] = (struct pollfd){.fd = tx_fd, .events = POLLIN};
		p[P_SOCK] = (struct pollfd){.fd = fe_sock(r->fe), .events = POLLIN};
		p[P_CHAN] = (struct pollfd){.fd = fe_backend_channel_fd(r->fe), .events = POLLIN};
		/* stdin only when its buffered lines are used up and the Txq has room. */
		p[P_STDIN] = (struct pollfd){.fd = -1, .events = POLLIN};
		if (r->stdin_active && !r->in.eof && !r->has_held)
			p[P_STDIN].fd = STDIN_FILENO;
		do {
			ret = poll(p, P_N, wait > INT32_MAX ? INT32_MAX : (int)wait);
		} while (ret < 0 && errno == EINTR);
		if (ret < 0) {
			fprintf(stderr, PROG ": poll: %s\n", strerror(errno));
			r->fatal = true;
			return;
		}
		if (p[P_SIG].revents)
			on_signal(r);
		/* The eventfd first, the ring after: a signal in between is not lost. */
		if (p[P_TX].revents) {
			consume_eventfd(tx_fd);
			drain_tx(r);
		}
		if (p[P_RX].revents) {
			consume_eventfd(rx_fd);
			drain_rx(r);
		}
		if (p[P_CHAN].revents)
			on_config_change(r);
		if (p[P_STDIN].revents)
			read_stdin(r);
		if (p[P_SOCK].revents) {
			fprintf(stderr, PROG ": the daemon closed the connection\n");
			r->conn_lost = true;
			r->fatal = true;
			return;
		}
	}
}

/* STOP, then take the answers it forced (pending requests end NOT_OK). */
static void finish(struct run *r)
{
	int ret;

	if (r->conn_lost)
		return;
	ret = gdrv_stop(r->c, CTRL_TIMEOUT_MS);
	if (ret != VIRTIO_CAN_RESULT_OK)
		fprintf(stderr, PROG ": STOP: %s\n",
			ret < 0 ? strerror(-ret) : "the device answered NOT_OK");
	else if (r->o->verbosity > 0)
		fprintf(stderr, PROG ": controller stopped\n");
	while (gdrv_tx_pending(r->c) > 0) {
		uint8_t result;
		int token;

		ret = gdrv_tx_wait(r->c, CTRL_TIMEOUT_MS, &token, &result);
		if (ret < 0)
			break;
		report_answer(r, token, result);
	}
	if (gdrv_tx_pending(r->c) > 0) {
		fprintf(stderr, PROG ": %u TX request(s) never answered\n", gdrv_tx_pending(r->c));
		r->failed = true;
	}
}

static int session(const struct options *o)
{
	struct gdrv_opts fo;
	struct run *r;
	sigset_t mask;
	int64_t deadline = -1;
	int ret, status = EXIT_FAILURE;

	r = calloc(1, sizeof(*r));
	if (!r) {
		fprintf(stderr, PROG ": out of memory\n");
		return EXIT_FAILURE;
	}
	r->o = o;
	r->sfd = -1;

	gdrv_opts_default(&fo);
	fo.start.order = o->order;
	fo.start.queue_size = QUEUE_SIZE;
	fo.can_features = (1ull << VIRTIO_CAN_F_CAN_CLASSIC) | (1ull << VIRTIO_CAN_F_RTR_FRAMES);
	if (!o->no_fd)
		fo.can_features |= 1ull << VIRTIO_CAN_F_CAN_FD;
	if (o->late_tx_ack)
		fo.can_features |= 1ull << VIRTIO_CAN_F_LATE_TX_ACK;
	ret = gdrv_open(&r->c, o->socket_path, &fo,
			 o->wait_ms > INT32_MAX ? INT32_MAX : (int)o->wait_ms);
	if (ret < 0) {
		fprintf(stderr, PROG ": cannot set up a session with %s: %s\n", o->socket_path,
			strerror(-ret));
		goto out;
	}
	r->fe = gdrv_fe(r->c);
	if (o->verbosity > 0)
		fprintf(
		    stderr, PROG ": connected to %s (CAN FD %s, LATE_TX_ACK %s)\n", o->socket_path,
		    gdrv_has(r->c, VIRTIO_CAN_F_CAN_FD) ? "negotiated" : "not negotiated",
		    gdrv_has(r->c, VIRTIO_CAN_F_LATE_TX_ACK) ? "negotiated" : "not negotiated");
	/* Before START: once the controller runs, SIGINT and SIGTERM stop it cleanly. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	r->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (r->sfd < 0) {
		fprintf(stderr, PROG ": signalfd: %s\n", strerror(errno));
		goto out;
	}
	ret = gdrv_start(r->c, CTRL_TIMEOUT_MS);
	if (ret != VIRTIO_CAN_RESULT_OK) {
		fprintf(stderr, PROG ": START: %s\n",
			ret < 0 ? strerror(-ret) : "the device answered NOT_OK");
		goto out;
	}
	if (o->verbosity > 0)
		fprintf(stderr, PROG ": controller started\n");
	if (o->timeout_ms >= 0)
		deadline = now_ms() + o->timeout_ms;

	loop(r, deadline);
	finish(r);
	if (r->fatal || r->failed || r->not_ok)
		status = EXIT_FAILURE;
	else if (o->count && r->received < o->count)
		status = EXIT_SHORT;
	else
		status = EXIT_SUCCESS;
	if (status == EXIT_SHORT)
		fprintf(stderr, PROG ": received %lu of %lu frames\n", r->received, o->count);
	if (r->not_ok)
		fprintf(stderr, PROG ": %lu frame(s) answered NOT_OK\n", r->not_ok);
out:
	gdrv_close(r->c);
	if (r->sfd >= 0)
		close(r->sfd);
	free(r);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = {
	    .ifname = "virtio",
	    .timeout_ms = -1,
	    .wait_ms = CONNECT_TIMEOUT_MS,
	    .order = FE_ORDER_QEMU,
	};
	int ret, status;

	ret = parse_options(argc, argv, &o);
	if (ret) {
		free(o.items);
		return ret > 0 ? EXIT_SUCCESS : EXIT_USAGE;
	}
	vlog_set_level(o.verbosity >= 2 ? VLOG_DEBUG : VLOG_WARN);
	vlog_set_name(PROG);
	/* Each received frame reaches a pipe at once. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	status = session(&o);
	free(o.items);
	return status;
}
