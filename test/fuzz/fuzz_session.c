/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A hostile frontend and a hostile guest against the daemon's loop.
 *
 * Two real backends and virtio-can devices in one loop (loop_init, loop_add,
 * as the daemon wires them), each on its own fake CAN port and attached to
 * one end of its own socketpair. The harness holds the other ends and
 * writes whole vhost-user messages on them, with SCM_RIGHTS fds of every
 * kind; between messages it plays the guests: it edits the rings in the
 * memfds it handed over, kicks, and injects bus events into the fake ports.
 * Both devices read one session clock (device_port_ops.now_ms) that moves only
 * when a step says so. After every step the loop runs one turn of loop_run()
 * itself, which cannot sleep (its control fd is always readable), so a step
 * that hangs is a libFuzzer timeout and one that spins is caught by a CPU
 * bound per turn. At the end a fresh frontend must still be served by each
 * device, and after teardown the fd count must be what it was.
 *
 * Invariants (abort, so libFuzzer reports a crash):
 *  - after every loop turn, every device, whatever its guest did: no
 *    wakeup of a queue read more descriptors than its budget
 *    (device_stats.walk_max against DEVICE_TX_BUDGET, _RX_, _CTRL_);
 *  - after every loop turn, on a device driven only as a driver would (no
 *    raw message, descriptor, avail or memory scribble, cut-short write,
 *    eager repost: see struct fdev.tainted), on the rings the harness set up
 *    itself: every used entry is a request in flight, so each request made
 *    available is used exactly once, never twice, never one not in flight,
 *    and the ring is never declared broken;
 *  - after OP_CTRL and OP_BUS: a stopped controller (STOP, bus-off, never
 *    started) empties its TX ring within STOPPED_TURNS turns with the clock
 *    standing still;
 *  - at OP_SETTLE and at the end: the guest goes quiet, the clock
 *    moves SETTLE_STEP_MS a turn, past the pacing horizon (DEVICE_PACE_AHEAD_NS
 *    and the frames' bus time) and every LATE_TX_ACK deadline: started or
 *    stopped, no TX or control request of a live ring (ring_live) is left.
 * The guest kicks only when the device asks (need_kick) or the input says
 * so; a kick the device asked for and did not get is given before these
 * checks (struct track.owed), so a device that turns kicks off and never
 * looks at its ring again is caught, and a guest that skipped one is not
 * blamed on it.
 *
 * Input: one session byte (and a second when its bit 7 is set), then at
 * most MAX_STEPS steps; each step is an op byte (bits 0..3 the op, mod
 * OP_COUNT; bit 6 the device, 0 or 1; bit 7 set: no loop turn after it)
 * and the op's operands, read as the op needs them (see sess_step). Reads
 * past the end give zeros. Session byte, for both devices:
 *   bit 0  memfds may be smaller than their region (see short_memfd_ok)
 *   bit 1  offer CAN FD
 *   bit 2  small send buffer on the backends' ends (a reply can find no room)
 *   bit 3  message deadline 1 ms, LATE_TX_ACK timeout 1 ms (with OP_CONN wait)
 *   bits 4..5  RX backlog 1, 4, 16 or 64
 *   bit 6  an eager guest on device 0: reposts TX chains the moment they are sent
 *   bit 7  the second byte follows
 * Second byte: bits 0..2 device 0's --bitrate, bits 3..5 device 1's (0 none,
 * 10k, 20k, 50k, 125k, 250k, 500k, 1M: struct bitrates), bit 6 data bit rate
 * 2M (else as the bit rate), bit 7 unused.
 * test/fuzz/gen_corpus.py writes seeds in this format.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "loop.h"
#include "fakeport.h"
#include "fuzz_util.h"
#include "device.h"
#include "device_frame.h"
#include "tdesc.h"
#include "tfd.h"
#include "virtio_can.h"
#include "vhost-user/vq.h"
#include "vhost-user/vlog.h"
#include "vhost-user/vu_backend.h"
#include "vhost-user/vu_msg.h"

#define MAX_STEPS 64
#define NQ 3			/* virtio-can rings */
#define MAX_MAPS 8		/* guest regions the harness keeps mapped */
#define MAX_HELD 48		/* far ends of fds we sent, kept open */
#define FD_BUDGET 160		/* fd kinds made per input: stays far below RLIMIT_NOFILE */
#define REGION_CAP (256u << 10) /* honest region sizes and offsets are folded to this */
#define RING_SPAN 8192u		/* per ring in SETUP: desc 4096, avail 1024, used 3072 */
#define HEAP_START (NQ * RING_SPAN)
#define UA_BASE 0x7f0000000000ull
#define MAX_PENDING_EVENTS 256 /* bus events in the fake port's pipe: never a blocking write */
#define MAX_WAITS 4
#define TURN_CPU_LIMIT_NS 1000000000ull
#define PROBE_TURNS 32
#define MAX_REPOSTS 1024  /* chains an eager guest reposts per input */
#define NDEV 2		  /* devices in the loop */
#define TRACK_MAX_NUM 256 /* largest ring whose requests are tracked (setup_ring's) */
#define CLOCK_START_MS 1000000u
/*
 * Turns a settle may take: with the clock SETTLE_STEP_MS ahead each turn,
 * pacing lets at least one frame go per turn (the slowest frame, 10 kbit/s
 * CAN FD of 64 bytes, is under 100 ms), so a 256-entry ring drains and every
 * LATE_TX_ACK deadline passes well within it.
 */
#define SETTLE_TURNS 1024
#define SETTLE_STEP_MS 100u
#define STOPPED_TURNS 4 /* a stopped controller refuses a kicked TX ring within these */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Whether bit 0 of the session byte may hand over memfds smaller than their
 * region (the backend must refuse them: fstat). On unless
 * VDC_FUZZ_HONEST_MEMFD is set. Set once, before the first input.
 */
static bool short_memfd_ok;
/* VDC_FUZZ_VERBOSE: the daemon's debug log and a summary per input (seeds). */
static bool verbose;

enum op {
	OP_MSG,	  /* one message as the input spells it */
	OP_SETUP, /* a canned sequence: handshake, memory, a ring, all rings */
	OP_POST,  /* the guest posts a chain (and kicks) */
	OP_DESC,  /* the guest writes one descriptor, any values */
	OP_AVAIL, /* the guest writes avail ring entries, idx or flags */
	OP_POKE,  /* the guest writes bytes anywhere in its memory */
	OP_KICK,
	OP_BUS,	   /* frames and events from the bus */
	OP_CONN,   /* the connection itself: garbage, half messages, hang-ups */
	OP_TURNS,  /* more turns of the loop */
	OP_SHRINK, /* the frontend truncates a region's memfd under the device */
	OP_CTRL,   /* the guest asks for controller START or STOP */
	OP_CLOCK,  /* the devices' clock moves */
	OP_SETTLE, /* the guest goes quiet: every request must complete (sess_settle) */
	OP_COUNT,
};

/* What an fd handed to the backend is (low 4 bits of a kind byte, mod FK_COUNT). */
enum fd_kind {
	FK_MEMFD,	/* as large as its region needs */
	FK_MEMFD_SIZED, /* (param) pages: may be short, see short_memfd_ok */
	FK_EVENTFD,
	FK_EVENTFD_SEM,	 /* EFD_SEMAPHORE, count param << 28 */
	FK_PIPE_R,	 /* read end; we keep the write end (param bit 1: a byte waits) */
	FK_PIPE_R_HUP,	 /* read end; write end closed */
	FK_PIPE_W,	 /* write end; we keep the read end and never read */
	FK_PIPE_W_FULL,	 /* write end of a full pipe */
	FK_PIPE_W_HUP,	 /* write end; read end closed */
	FK_STREAM,	 /* unix stream socket; we keep its peer */
	FK_STREAM_HUP,	 /* unix stream socket whose peer is closed */
	FK_DGRAM,	 /* unix datagram socket; we keep its peer */
	FK_STREAM_LOWAT, /* unix stream socket with SO_RCVLOWAT set */
	FK_DEVNULL,
	FK_CLOSED, /* an eventfd we close once sent: the backend holds the only copy */
	FK_COUNT,
};

/* One fd to send (closed once sent) and what we keep of it (-1: nothing). */
struct xfd {
	int send;
	int keep;
};

/* A region as the frontend described it, and our own mapping of its fd. */
struct gmap {
	uint64_t gpa, size, uaddr, off;
	uint8_t *p;
	size_t len;    /* what we may touch: the fd's real size (less once shrunk) */
	size_t maplen; /* of our mapping, for munmap */
	int fd;	       /* our copy of the fd, to shrink it (OP_SHRINK) */
};

/* A ring as the frontend set it up; the guest edits it through the maps. */
struct ring_view {
	uint16_t num;
	uint64_t desc, avail, used;
	uint16_t next_desc; /* where the guest driver puts its next chain */
	int kick;	    /* our end of the kick fd, -1 when none */
};

/*
 * What the harness knows of one ring's requests, to check that each one the
 * guest made available is used exactly once: the heads in flight and the
 * descriptors they hold, and how far it has read the used ring. Only for
 * rings the harness set up itself (setup_ring) and drove as a driver would;
 * anything hostile on the device ends the tracking (struct fdev.tainted).
 */
struct track {
	bool on;     /* set up by setup_ring, rings in the maps we know */
	bool resync; /* set up, not yet served a turn: take used->idx then */
	bool live;   /* an eventfd kick: the ring can be woken */
	bool owed;   /* the device asked for a kick the guest has not given yet */
	uint16_t last_used;
	unsigned int inflight;
	unsigned int seen;	      /* used entries checked */
	uint8_t chain[TRACK_MAX_NUM]; /* per head: descriptors held, 0 = not in flight */
	bool busy[TRACK_MAX_NUM];     /* descriptor held by a chain in flight */
};

/* One device of the loop, its fake port and its frontend + guest. */
struct fdev {
	unsigned int idx; /* in the loop */
	struct loop **m;  /* the session's, once made */
	struct fakeport *port;
	struct loop_port dp;
	struct device_port_ops ops; /* the fake port's, with the session's clock */
	int peer;		 /* our end of the connection, -1 when none */
	bool deaf;
	bool small_sndbuf;
	unsigned int reposts; /* the eager guest's chains left */
	bool tainted;	      /* driven hostile: no more request tracking */
	uint64_t feat_sent;   /* the features of our last SET_FEATURES */
	size_t heap;	      /* next buffer offset in maps[0] */
	struct gmap maps[MAX_MAPS];
	unsigned int nmaps;
	struct ring_view rv[NQ];
	struct track tr[NQ];
};

struct sess {
	struct fuzz_in in;
	struct loop *m;
	bool inited;
	int ctl; /* always readable: loop_run() makes one turn and returns */
	bool short_ok;
	bool checking; /* inside an invariant check: no nested checks */
	unsigned int waits;
	unsigned int fds_made;
	int held[MAX_HELD];
	unsigned int nheld;
	struct fdev dev[NDEV];
	struct fdev *d; /* the device the current step acts on */
};

/* The session's clock, the devices' now_ms: it only moves when a step says so. */
static uint64_t fake_now_ms;

static uint64_t fake_clock(void *port)
{
	(void)port;
	return fake_now_ms;
}

static struct vu_backend *dev_backend(const struct fdev *d)
{
	return loop_backend(*d->m, d->idx);
}

static struct device *dev_vcd(const struct fdev *d)
{
	return loop_device(*d->m, d->idx);
}

static int sess_stop_turn(struct loop *m, void *arg)
{
	(void)m;
	(void)arg;
	return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	verbose = getenv("VDC_FUZZ_VERBOSE") != NULL;
	vlog_set_level(verbose ? VLOG_DEBUG : VLOG_ERR);
	short_memfd_ok = getenv("VDC_FUZZ_HONEST_MEMFD") == NULL;
	return 0;
}

static uint64_t fuzz_u64(struct fuzz_in *in)
{
	uint64_t lo = fuzz_u32(in);

	return lo | ((uint64_t)fuzz_u32(in) << 32);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
		abort();
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the frontend's side of the connection ---- */

/* Read and drop whatever the backend sent us, closing any fds in it. */
static void drain_socket(int fd)
{
	for (int i = 0; fd >= 0 && i < 256; i++) {
		uint8_t buf[4096];
		union {
			struct cmsghdr h;
			uint8_t b[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		} cbuf;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = cbuf.b,
				    .msg_controllen = sizeof(cbuf.b)};
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n <= 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			size_t k;

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t j = 0; j < k; j++) {
				int rfd;

				memcpy(&rfd, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
				close(rfd);
			}
		}
	}
}

/* A new connection: our end in d->peer, the backend's end returned. */
static int dev_socketpair(struct fdev *d)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	if (d->small_sndbuf) {
		int v = 1; /* the kernel rounds it up to its minimum: a few replies fill it */

		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	}
	set_nonblock(sv[1]);
	d->peer = sv[1];
	return sv[0];
}

/* --bitrate choices of the second session byte (0: no pacing). */
static const uint32_t bitrates[8] = {0, 10000, 20000, 50000, 125000, 250000, 500000, 1000000};

/*
 * The daemon's devices and backends on their fake ports in one loop, each
 * serving a first frontend; both read the session's clock.
 */
static void sess_open(struct sess *s)
{
	struct device_config cfg = {.name = "fuzz-can0"};
	uint8_t f = fuzz_u8(&s->in), g = 0;

	if (f & 0x80)
		g = fuzz_u8(&s->in);
	s->short_ok = (f & 1) && short_memfd_ok;
	cfg.fd = f & 2;
	cfg.tx_ack_timeout_ms = (f & 8) ? 1 : DEVICE_DEFAULT_TX_ACK_TIMEOUT_MS;
	cfg.rx_backlog = 1u << (2 * ((f >> 4) & 3));
	cfg.dbitrate = (g & 0x40) ? 2000000u : 0;
	for (unsigned int i = 0; i < NDEV; i++) {
		struct fdev *d = &s->dev[i];

		d->small_sndbuf = f & 4;
		fakeport_loop_port(d->port, &d->dp);
		d->ops = *d->dp.ops;
		d->ops.now_ms = fake_clock;
		d->dp.ops = &d->ops;
	}
	if (f & 0x40)
		s->dev[0].reposts = MAX_REPOSTS;
	cfg.bitrate = bitrates[g & 7];
	/* loop_init takes the backend's end, also on failure. */
	if (loop_init(&s->m, &cfg, &s->dev[0].dp, NULL, dev_socketpair(&s->dev[0])) != 0)
		abort();
	s->inited = true;
	cfg.name = "fuzz-can1";
	cfg.bitrate = bitrates[(g >> 3) & 7];
	{
		struct loop_sock sock = {.path = NULL, .listen_fd = -1, .conn_fd = -1};

		sock.conn_fd = dev_socketpair(&s->dev[1]);
		if (loop_add(s->m, &cfg, &s->dev[1].dp, &sock) != 0)
			abort();
	}
	for (unsigned int i = 0; f & 8 && i < NDEV; i++)
		vu_backend_set_msg_timeout(dev_backend(&s->dev[i]), 1);
}

/* Forget what we tracked of d's rings: its rings are gone or elsewhere now. */
static void dev_untrack(struct fdev *d)
{
	for (unsigned int q = 0; q < NQ; q++) {
		if (verbose && d->tr[q].on)
			fprintf(
			    stderr,
			    "fuzz_session: device %u ring %u%s: %u used checked, %u in flight\n",
			    d->idx, q, d->tainted ? " (hostile)" : "", d->tr[q].seen,
			    d->tr[q].inflight);
		memset(&d->tr[q], 0, sizeof(d->tr[q]));
	}
}

static void dev_connect(struct fdev *d)
{
	dev_untrack(d);
	if (vu_backend_attach(dev_backend(d), dev_socketpair(d)) != 0)
		abort();
}

static void dev_hang_up(struct fdev *d)
{
	if (d->peer >= 0)
		close(d->peer);
	d->peer = -1;
	dev_untrack(d);
}

static void sess_check(struct sess *s);

/*
 * One turn of the daemon's loop: its epoll set, the backend's dispatch, the
 * port, device_tick. It cannot sleep: the control fd is readable. Then the
 * invariants (sess_check).
 */
static void sess_loop_turn(struct sess *s)
{
	uint64_t t0 = cpu_ns(), dt;

	if (loop_run(s->m, s->ctl, sess_stop_turn, s) != 0)
		abort();
	dt = cpu_ns() - t0;
	if (dt > TURN_CPU_LIMIT_NS) {
		fprintf(stderr, "fuzz_session: one loop turn took %llu ms of CPU\n",
			(unsigned long long)(dt / 1000000u));
		abort();
	}
	sess_check(s);
}

/* Hang up: the loop must notice within a bounded number of turns. */
static void sess_let_go(struct sess *s, struct fdev *d)
{
	dev_hang_up(d);
	for (int i = 0; i < PROBE_TURNS && vu_backend_connected(dev_backend(d)); i++)
		sess_loop_turn(s);
	if (vu_backend_connected(dev_backend(d))) {
		fprintf(stderr, "fuzz_session: a frontend that hung up is still served\n");
		abort();
	}
}

/* A turn, then what a frontend does: read replies, come back when dropped. */
static void sess_turn(struct sess *s)
{
	sess_loop_turn(s);
	for (unsigned int i = 0; i < NDEV; i++) {
		struct fdev *d = &s->dev[i];

		if (!d->deaf)
			drain_socket(d->peer);
		if (!vu_backend_connected(dev_backend(d))) {
			dev_hang_up(d);
			dev_connect(d);
		}
	}
}

/*
 * Write buf (fds with its first byte) without ever blocking: what the
 * socket does not take now gets a turn of the loop and a few more tries.
 * false when the bytes did not all go (the connection may be a new one).
 */
static bool sess_write(struct sess *s, const void *buf, size_t len, const struct xfd *x,
		       unsigned int nx)
{
	int peer = s->d->peer;
	size_t done = 0;

	for (int tries = 0; done < len && tries < 8; tries++) {
		union {
			struct cmsghdr h;
			uint8_t b[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		} cbuf;
		struct iovec iov = {.iov_base = (uint8_t *)(uintptr_t)buf + done,
				    .iov_len = len - done};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		unsigned int n = 0;
		ssize_t w;

		memset(&cbuf, 0, sizeof(cbuf));
		for (unsigned int i = 0; done == 0 && i < nx && n < VHOST_USER_MAX_FDS; i++)
			if (x[i].send >= 0)
				memcpy(CMSG_DATA(&cbuf.h) + sizeof(int) * n++, &x[i].send,
				       sizeof(int));
		if (n > 0) {
			mh.msg_control = cbuf.b;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
			cbuf.h.cmsg_level = SOL_SOCKET;
			cbuf.h.cmsg_type = SCM_RIGHTS;
			cbuf.h.cmsg_len = CMSG_LEN(sizeof(int) * n);
		}
		w = sendmsg(peer, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			done += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		sess_turn(s);
		if (s->d->peer != peer)
			return false;
	}
	if (done != len)
		s->d->tainted = true; /* a message cut short: the rings are anyone's guess */
	return done == len;
}

/* ---- fds of every kind ---- */

static void hold(struct sess *s, int fd)
{
	if (fd < 0)
		return;
	/* Out of room: the far end simply goes away, which is a case too. */
	if (s->nheld == MAX_HELD) {
		close(fd);
		return;
	}
	s->held[s->nheld++] = fd;
}

static void unmap_all(struct fdev *d)
{
	for (unsigned int i = 0; i < d->nmaps; i++) {
		munmap(d->maps[i].p, d->maps[i].maplen);
		if (d->maps[i].fd >= 0)
			close(d->maps[i].fd);
	}
	d->nmaps = 0;
	d->heap = 0;
	/* The rings now lie in memory we do not know yet. */
	dev_untrack(d);
}

/* Map a memfd we are about to send for region r, to play the guest in it. */
static void map_region(struct sess *s, int fd, size_t len, const struct vhost_user_mem_region *r)
{
	struct gmap *g;
	void *p;

	if (len == 0 || s->d->nmaps == MAX_MAPS)
		return;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		abort();
	g = &s->d->maps[s->d->nmaps++];
	g->gpa = r->guest_phys_addr;
	g->size = r->memory_size;
	g->uaddr = r->userspace_addr;
	g->off = r->mmap_offset;
	g->p = p;
	g->len = len;
	g->maplen = len;
	g->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

static void fill_pipe(int wfd)
{
	static const uint8_t junk[4096];
	int fl = fcntl(wfd, F_GETFL);

	fcntl(wfd, F_SETPIPE_SZ, 4096);
	fcntl(wfd, F_SETFL, fl | O_NONBLOCK);
	for (int i = 0; i < 32 && write(wfd, junk, sizeof(junk)) > 0; i++)
		;
	fcntl(wfd, F_SETFL, fl);
}

/*
 * Make an fd of the kind kb names. honest: the size a memfd needs for its
 * region; r: the region it is for (we map it), or NULL.
 */
static struct xfd make_fd(struct sess *s, uint8_t kb, uint64_t honest,
			  const struct vhost_user_mem_region *r)
{
	struct xfd x = {-1, -1};
	unsigned int param = kb >> 4;
	int p[2];

	if (s->fds_made >= FD_BUDGET)
		return x;
	s->fds_made++;
	switch ((kb & 15u) % FK_COUNT) {
	case FK_MEMFD:
	case FK_MEMFD_SIZED: {
		uint64_t size = honest;

		if ((kb & 15u) == FK_MEMFD_SIZED && s->short_ok)
			size = (uint64_t)param << 12;
		x.send = memfd_create("fuzz-guest", MFD_CLOEXEC);
		if (x.send < 0 || ftruncate(x.send, (off_t)size) != 0)
			abort();
		if (r)
			map_region(s, x.send, (size_t)size, r);
		break;
	}
	case FK_EVENTFD:
		x.send = x.keep = eventfd(0, EFD_CLOEXEC | ((param & 1) ? EFD_NONBLOCK : 0));
		break;
	case FK_EVENTFD_SEM:
		x.send = x.keep = eventfd(param << 28, EFD_CLOEXEC | EFD_SEMAPHORE);
		break;
	case FK_PIPE_R:
	case FK_PIPE_R_HUP:
		if (pipe2(p, O_CLOEXEC | ((param & 1) ? O_NONBLOCK : 0)) != 0)
			abort();
		set_nonblock(p[1]);
		if (param & 2)
			(void)!write(p[1], "k", 1);
		x.send = p[0];
		if ((kb & 15u) == FK_PIPE_R)
			x.keep = p[1];
		else
			close(p[1]);
		break;
	case FK_PIPE_W:
	case FK_PIPE_W_FULL:
	case FK_PIPE_W_HUP:
		if (pipe2(p, O_CLOEXEC | ((param & 1) ? O_NONBLOCK : 0)) != 0)
			abort();
		if ((kb & 15u) == FK_PIPE_W_FULL)
			fill_pipe(p[1]);
		x.send = p[1];
		if ((kb & 15u) == FK_PIPE_W_HUP)
			close(p[0]);
		else
			x.keep = p[0];
		break;
	case FK_STREAM:
	case FK_STREAM_HUP:
	case FK_DGRAM:
	case FK_STREAM_LOWAT: {
		int type = (kb & 15u) == FK_DGRAM ? SOCK_DGRAM : SOCK_STREAM;

		if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, p) != 0)
			abort();
		set_nonblock(p[1]);
		if ((kb & 15u) == FK_STREAM_LOWAT) {
			int v = 1 + (int)param * 4096;

			setsockopt(p[0], SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v));
		}
		x.send = p[0];
		if ((kb & 15u) == FK_STREAM_HUP)
			close(p[1]);
		else
			x.keep = p[1];
		break;
	}
	case FK_DEVNULL:
		x.send = open("/dev/null", O_RDWR | O_CLOEXEC);
		break;
	case FK_CLOSED:
		x.send = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		break;
	}
	if (x.send < 0)
		abort();
	return x;
}

/* ---- messages ---- */

static bool is_region_msg(uint32_t req)
{
	return req == VHOST_USER_SET_MEM_TABLE || req == VHOST_USER_ADD_MEM_REG ||
	       req == VHOST_USER_REM_MEM_REG;
}

/* The regions a message describes: n of them at *out. */
static unsigned int msg_regions(uint32_t req, union vhost_user_payload *p,
				struct vhost_user_mem_region **out)
{
	if (req == VHOST_USER_SET_MEM_TABLE) {
		*out = p->mem.regions;
		return p->mem.nregions < VHOST_USER_MEM_TABLE_MAX_REGIONS
			   ? p->mem.nregions
			   : VHOST_USER_MEM_TABLE_MAX_REGIONS;
	}
	if (req == VHOST_USER_ADD_MEM_REG || req == VHOST_USER_REM_MEM_REG) {
		*out = &p->mem_reg.region;
		return 1;
	}
	*out = NULL;
	return 0;
}

/* The fds a well-behaved frontend attaches to req. */
static unsigned int natural_fds(uint32_t req, const union vhost_user_payload *p, uint8_t *kinds)
{
	switch (req) {
	case VHOST_USER_SET_MEM_TABLE: {
		unsigned int n = p->mem.nregions < VHOST_USER_MEM_TABLE_MAX_REGIONS
				     ? p->mem.nregions
				     : VHOST_USER_MEM_TABLE_MAX_REGIONS;

		memset(kinds, FK_MEMFD, n);
		return n;
	}
	case VHOST_USER_ADD_MEM_REG:
	case VHOST_USER_REM_MEM_REG:
	case VHOST_USER_SET_LOG_BASE:
	case VHOST_USER_SET_INFLIGHT_FD:
		kinds[0] = FK_MEMFD;
		return 1;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		if (p->u64 & VHOST_USER_VRING_NOFD_MASK)
			return 0;
		kinds[0] = FK_EVENTFD | 0x10; /* non-blocking, as QEMU's */
		return 1;
	case VHOST_USER_SET_LOG_FD:
		kinds[0] = FK_EVENTFD;
		return 1;
	case VHOST_USER_SET_BACKEND_REQ_FD:
		kinds[0] = FK_STREAM;
		return 1;
	default:
		return 0;
	}
}

/* Note what a frontend would remember of the rings it set up. */
static void track_rings(struct sess *s, uint32_t req, const union vhost_user_payload *p,
			uint32_t size)
{
	if (req == VHOST_USER_SET_VRING_NUM && size >= 8 && p->state.index < NQ) {
		s->d->rv[p->state.index].num = (uint16_t)p->state.num;
		s->d->rv[p->state.index].next_desc = 0;
	}
	if (req == VHOST_USER_SET_VRING_ADDR && size >= sizeof(p->addr) && p->addr.index < NQ) {
		struct ring_view *v = &s->d->rv[p->addr.index];

		v->desc = p->addr.desc_user_addr;
		v->avail = p->addr.avail_user_addr;
		v->used = p->addr.used_user_addr;
	}
}

/*
 * Send one message with fds of the given kinds (memfds for regions sized
 * and mapped for them), then close what was sent and keep the far ends:
 * a kick fd's far end becomes the ring's kick, the rest are held.
 */
static void sess_msg(struct sess *s, uint32_t req, uint32_t flags, union vhost_user_payload *p,
		     uint32_t size, const uint8_t *kinds, unsigned int nkinds)
{
	struct vhost_user_mem_region *regs;
	unsigned int nregs = msg_regions(req, p, &regs);
	uint8_t buf[VHOST_USER_HDR_SIZE + VHOST_USER_MAX_PAYLOAD];
	struct vhost_user_hdr h = {.request = req, .flags = flags, .size = size};
	struct xfd x[VHOST_USER_MAX_FDS];
	unsigned int nx = 0;
	uint32_t len = size < VHOST_USER_MAX_PAYLOAD ? size : VHOST_USER_MAX_PAYLOAD;

	if (req == VHOST_USER_SET_MEM_TABLE)
		unmap_all(s->d);
	for (unsigned int i = 0; i < nkinds && i < VHOST_USER_MAX_FDS; i++) {
		const struct vhost_user_mem_region *r = i < nregs ? &regs[i] : NULL;
		uint64_t honest = r ? r->mmap_offset + r->memory_size : 4096;

		/* An honest size we cannot make (raw, huge) is a short one. */
		if (honest > 2ull * REGION_CAP)
			honest = 2ull * REGION_CAP;
		x[nx] = make_fd(s, kinds[i], honest, is_region_msg(req) ? r : NULL);
		if (x[nx].send >= 0)
			nx++;
	}
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), p, len);
	track_rings(s, req, p, size);
	(void)sess_write(s, buf, sizeof(h) + len, x, nx);

	for (unsigned int i = 0; i < nx; i++) {
		if (x[i].send != x[i].keep)
			close(x[i].send);
		if (x[i].keep < 0)
			continue;
		if (i == 0 && req == VHOST_USER_SET_VRING_KICK && (p->u64 & 0xff) < NQ) {
			struct ring_view *v = &s->d->rv[p->u64 & 0xff];

			if (v->kick >= 0)
				close(v->kick);
			v->kick = x[i].keep;
		} else {
			hold(s, x[i].keep);
		}
	}
}

static void sess_msg_empty(struct sess *s, uint32_t req)
{
	union vhost_user_payload p;

	memset(&p, 0, sizeof(p));
	sess_msg(s, req, VHOST_USER_VERSION, &p, 0, NULL, 0);
}

static void sess_msg_u64(struct sess *s, uint32_t req, uint64_t v, const uint8_t *kinds,
			 unsigned int nkinds)
{
	union vhost_user_payload p;

	memset(&p, 0, sizeof(p));
	p.u64 = v;
	sess_msg(s, req, VHOST_USER_VERSION, &p, 8, kinds, nkinds);
}

static void sess_msg_state(struct sess *s, uint32_t req, uint32_t index, uint32_t num)
{
	union vhost_user_payload p;

	memset(&p, 0, sizeof(p));
	p.state.index = index;
	p.state.num = num;
	sess_msg(s, req, VHOST_USER_VERSION, &p, 8, NULL, 0);
}

/* Payload bytes from the input, as many as req naturally has; returns that size. */
static uint32_t take_payload(struct sess *s, uint32_t req, union vhost_user_payload *p)
{
	uint32_t n;

	switch (req) {
	case VHOST_USER_GET_FEATURES:
	case VHOST_USER_SET_OWNER:
	case VHOST_USER_RESET_OWNER:
	case VHOST_USER_GET_PROTOCOL_FEATURES:
	case VHOST_USER_GET_QUEUE_NUM:
	case VHOST_USER_SET_BACKEND_REQ_FD:
	case VHOST_USER_RESET_DEVICE:
	case VHOST_USER_GET_MAX_MEM_SLOTS:
		return 0;
	case VHOST_USER_SET_VRING_ADDR:
		fuzz_take(&s->in, p, sizeof(p->addr));
		return sizeof(p->addr);
	case VHOST_USER_SET_MEM_TABLE:
		fuzz_take(&s->in, p, 8);
		n = p->mem.nregions < VHOST_USER_MEM_TABLE_MAX_REGIONS
			? p->mem.nregions
			: VHOST_USER_MEM_TABLE_MAX_REGIONS;
		fuzz_take(&s->in, p->mem.regions, n * sizeof(p->mem.regions[0]));
		return 8 + n * (uint32_t)sizeof(p->mem.regions[0]);
	case VHOST_USER_ADD_MEM_REG:
	case VHOST_USER_REM_MEM_REG:
		fuzz_take(&s->in, p, sizeof(p->mem_reg));
		return sizeof(p->mem_reg);
	case VHOST_USER_SET_LOG_BASE:
		fuzz_take(&s->in, p, sizeof(p->log));
		return sizeof(p->log);
	case VHOST_USER_GET_CONFIG:
	case VHOST_USER_SET_CONFIG:
		fuzz_take(&s->in, p, VHOST_USER_CONFIG_HDR_SIZE);
		n = p->config.size < VHOST_USER_MAX_CONFIG_SIZE ? p->config.size
								: VHOST_USER_MAX_CONFIG_SIZE;
		fuzz_take(&s->in, p->config.region, n);
		return VHOST_USER_CONFIG_HDR_SIZE + n;
	default:
		fuzz_take(&s->in, p, 8);
		return 8;
	}
}

/*
 * OP_MSG: u8 request (>= 240: taken as is, an unknown request), u8 mode,
 * [u32 flags], [u16 size], payload, [kind bytes].
 * mode: bit 0 NEED_REPLY, bit 1 raw flags follow, bit 2 raw size follows,
 * bit 3 keep region sizes raw (only with short memfds allowed), bits 4..7
 * fds: 0 natural, 1..9 that many minus one with a kind byte each, 10..15
 * the natural count with one kind byte for all.
 */
static void op_msg(struct sess *s)
{
	uint8_t rb = fuzz_u8(&s->in), mode = fuzz_u8(&s->in);
	uint32_t req = rb < 240 ? rb % VHOST_USER_REQUEST_MAX : rb;
	uint32_t flags = VHOST_USER_VERSION | ((mode & 1) ? VHOST_USER_NEED_REPLY_MASK : 0);
	uint32_t size, raw_size = 0;
	union vhost_user_payload p;
	struct vhost_user_mem_region *regs;
	uint8_t kinds[VHOST_USER_MAX_FDS];
	unsigned int nk, fdm = mode >> 4;

	memset(&p, 0, sizeof(p));
	if (mode & 2)
		flags = fuzz_u32(&s->in);
	if (mode & 4)
		raw_size = fuzz_u16(&s->in) % (VHOST_USER_MAX_PAYLOAD + 1);
	size = take_payload(s, req, &p);
	if (mode & 4)
		size = raw_size;
	/* Honest sizes need a memfd that can back the whole region. */
	if (!s->short_ok || !(mode & 8)) {
		unsigned int n = msg_regions(req, &p, &regs);

		for (unsigned int i = 0; i < n; i++) {
			regs[i].memory_size %= REGION_CAP + 1;
			regs[i].mmap_offset %= REGION_CAP + 1;
		}
	}
	nk = natural_fds(req, &p, kinds);
	if (fdm >= 1 && fdm <= 9) {
		nk = fdm - 1;
		for (unsigned int i = 0; i < nk; i++)
			kinds[i] = fuzz_u8(&s->in);
	} else if (fdm >= 10) {
		uint8_t k = fuzz_u8(&s->in);

		memset(kinds, k, nk);
	}
	sess_msg(s, req, flags, &p, size, kinds, nk);
}

static void setup_handshake(struct sess *s)
{
	uint8_t pb = fuzz_u8(&s->in);
	uint64_t f = VU_BACKEND_TRANSPORT_FEATURES | DEVICE_F_ALL;
	static const uint64_t drop[8] = {
	    1ull << 29, 1ull << 28,	   1ull << VHOST_USER_F_PROTOCOL_FEATURES,
	    0,		DEVICE_F_LATE_TX_ACK, DEVICE_F_FD,
	    1ull << 24, DEVICE_F_CLASSIC,
	};
	uint8_t stream = FK_STREAM;

	for (unsigned int i = 0; i < 8; i++)
		if (pb & (1u << i))
			f &= ~drop[i];
	sess_msg_empty(s, VHOST_USER_SET_OWNER);
	sess_msg_empty(s, VHOST_USER_GET_FEATURES);
	if (f & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
		sess_msg_empty(s, VHOST_USER_GET_PROTOCOL_FEATURES);
		sess_msg_u64(s, VHOST_USER_SET_PROTOCOL_FEATURES, VU_BACKEND_PROTOCOL_FEATURES,
			     NULL, 0);
		if (pb & 8) {
			union vhost_user_payload p;

			memset(&p, 0, sizeof(p));
			sess_msg(s, VHOST_USER_SET_BACKEND_REQ_FD, VHOST_USER_VERSION, &p, 0,
				 &stream, 1);
		}
	}
	/* Other ring features under running rings: no driver does that. */
	for (unsigned int q = 0; q < NQ; q++)
		if (s->d->tr[q].on && f != s->d->feat_sent)
			s->d->tainted = true;
	s->d->feat_sent = f;
	sess_msg_u64(s, VHOST_USER_SET_FEATURES, f, NULL, 0);
}

/*
 * One region of 32 KiB + (u8 % 57) pages at u8 where, on a memfd of kind
 * u8 (0: honest; FK_MEMFD_SIZED: short when allowed).
 */
static void setup_memory(struct sess *s)
{
	uint8_t pages = fuzz_u8(&s->in), where = fuzz_u8(&s->in);
	uint8_t kind = fuzz_u8(&s->in);
	union vhost_user_payload p;

	memset(&p, 0, sizeof(p));
	p.mem.nregions = 1;
	p.mem.regions[0].guest_phys_addr = (uint64_t)(where & 15) << 28;
	p.mem.regions[0].memory_size = (8u + pages % 57u) << 12;
	p.mem.regions[0].userspace_addr = UA_BASE + ((uint64_t)(where >> 4) << 32);
	sess_msg(s, VHOST_USER_SET_MEM_TABLE, VHOST_USER_VERSION, &p, 8 + sizeof(p.mem.regions[0]),
		 &kind, 1);
}

/* Our pointer to [uva, uva+len) in guest memory, or NULL. */
static uint8_t *uva_ptr(struct fdev *d, uint64_t uva, size_t len)
{
	for (unsigned int i = 0; i < d->nmaps; i++) {
		const struct gmap *g = &d->maps[i];
		uint64_t at;

		if (uva < g->uaddr || uva - g->uaddr >= g->size)
			continue;
		at = g->off + (uva - g->uaddr);
		if (at < g->len && len <= g->len - at)
			return g->p + at;
	}
	return NULL;
}

/* Ring q of 2^((pb >> 2) % 9) entries at its place in maps[0], with a kick of kind kb. */
static void setup_ring(struct sess *s, unsigned int q, uint8_t pb, uint8_t kb)
{
	uint64_t base = (s->d->nmaps ? s->d->maps[0].uaddr : UA_BASE) + q * RING_SPAN;
	uint32_t num = 1u << ((pb >> 2) % 9);
	union vhost_user_payload p;
	uint8_t call = FK_EVENTFD | 0x10;
	struct track *tr;
	uint8_t *mem;

	/* A driver starts from clean rings. */
	mem = uva_ptr(s->d, base, RING_SPAN);
	if (mem)
		memset(mem, 0, RING_SPAN);
	/* As a frontend stops a ring before it sets it up again. */
	sess_msg_state(s, VHOST_USER_GET_VRING_BASE, q, 0);
	sess_msg_state(s, VHOST_USER_SET_VRING_NUM, q, num);
	memset(&p, 0, sizeof(p));
	p.addr.index = q;
	p.addr.desc_user_addr = base;
	p.addr.avail_user_addr = base + 4096;
	p.addr.used_user_addr = base + 4096 + 1024;
	sess_msg(s, VHOST_USER_SET_VRING_ADDR, VHOST_USER_VERSION, &p, sizeof(p.addr), NULL, 0);
	sess_msg_state(s, VHOST_USER_SET_VRING_BASE, q, 0);
	sess_msg_u64(s, VHOST_USER_SET_VRING_CALL, q, &call, 1);
	sess_msg_u64(s, VHOST_USER_SET_VRING_KICK, q, &kb, 1);
	sess_msg_state(s, VHOST_USER_SET_VRING_ENABLE, q, 1);
	/* A ring of ours from here: its requests are tracked once it is served. */
	tr = &s->d->tr[q];
	memset(tr, 0, sizeof(*tr));
	tr->on = mem && num <= TRACK_MAX_NUM;
	tr->resync = true;
	tr->live = (kb & 15u) == FK_EVENTFD && s->d->rv[q].kick >= 0;
}

/*
 * OP_SETUP: u8 which % 4, then its operands. 0: the handshake (u8: bits
 * of setup_handshake's drop[] to leave out; bit 3 adds a backend channel);
 * 1: a memory table (u8 pages, u8 where, u8 fd kind); 2: one ring (u8: bits 0..1 the
 * ring, the rest its log2 size; u8 kick kind); 3: all rings (u8 as in 2).
 */
static void op_setup(struct sess *s)
{
	uint8_t which = fuzz_u8(&s->in), pb, kb;

	switch (which % 4) {
	case 0:
		setup_handshake(s);
		break;
	case 1:
		setup_memory(s);
		break;
	case 2:
		pb = fuzz_u8(&s->in);
		kb = fuzz_u8(&s->in);
		setup_ring(s, (pb & 3u) % NQ, pb, kb);
		break;
	default:
		pb = fuzz_u8(&s->in);
		for (unsigned int q = 0; q < NQ; q++)
			setup_ring(s, q, pb, FK_EVENTFD | 0x10);
		break;
	}
}

/* ---- the guest ---- */

/* Our pointer to n bytes of guest-physical heap in maps[0], and its gpa. */
static uint8_t *galloc(struct sess *s, size_t n, uint64_t *gpa)
{
	struct gmap *g = &s->d->maps[0];
	size_t lim;

	if (s->d->nmaps == 0 || g->off >= g->len)
		return NULL;
	lim = g->len - g->off < g->size ? g->len - g->off : g->size;
	if (lim < HEAP_START + n)
		return NULL;
	s->d->heap = (s->d->heap + 15) & ~(size_t)15;
	if (s->d->heap < HEAP_START || s->d->heap + n > lim)
		s->d->heap = HEAP_START; /* the guest reuses its buffers: hostile, legal */
	*gpa = g->gpa + s->d->heap;
	s->d->heap += n;
	return g->p + g->off + s->d->heap - n;
}

static void kick(struct fdev *d, unsigned int q)
{
	uint64_t one = 1;

	d->tr[q].owed = false;
	if (d->rv[q].kick >= 0)
		(void)!write(d->rv[q].kick, &one, sizeof(one));
}

/* Make head available on ring q as the driver does: entry, barrier, idx. */
static bool publish(struct sess *s, unsigned int q, uint16_t head, uint16_t *old)
{
	struct ring_view *v = &s->d->rv[q];
	uint8_t *av = uva_ptr(s->d, v->avail, 4 + 2u * (v->num ? v->num : 1));
	uint16_t idx;

	if (!av)
		return false;
	memcpy(&idx, av + 2, 2);
	idx = le16toh(idx);
	*old = idx;
	head = htole16(head);
	memcpy(av + 4 + 2u * (v->num ? idx % v->num : 0), &head, 2);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	idx = htole16((uint16_t)(idx + 1));
	memcpy(av + 2, &idx, 2);
	return true;
}

/* A chain the guest posts: up to 4 segments (readable ones with contents). */
struct chain_spec {
	unsigned int n;
	uint32_t len[4];
	bool writable[4];
	uint8_t data[4][24];
};

/*
 * Whether a driver must kick after moving ring q's avail index from old to
 * old + 1, as the device asked in the used ring: without EVENT_IDX unless
 * VRING_USED_F_NO_NOTIFY, with it when the index passed avail_event.
 */
static bool need_kick(struct fdev *d, unsigned int q, uint16_t old)
{
	uint16_t num = d->rv[q].num, v;
	uint8_t *used = num ? uva_ptr(d, d->rv[q].used, 6 + 8u * num) : NULL;

	if (!used)
		return true;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vu_backend_features(dev_backend(d)) & (1ull << 29)) {
		memcpy(&v, used + 4 + 8u * num, 2);
		v = le16toh(v);
		return (uint16_t)(old - v) < 1; /* vring_need_event(v, old + 1, old) */
	}
	memcpy(&v, used, 2);
	return !(le16toh(v) & 1);
}

/*
 * Note a chain of cnt descriptors at head as in flight on a tracked ring;
 * false when it would reuse descriptors still in flight (a hostile guest).
 */
static bool track_post(struct fdev *d, unsigned int q, uint16_t head, unsigned int cnt)
{
	struct track *tr = &d->tr[q];
	uint16_t num = d->rv[q].num;

	if (d->tainted || !tr->on)
		return true;
	if (tr->resync || num == 0 || cnt > num)
		return false;
	for (unsigned int k = 0; k < cnt; k++)
		if (tr->busy[(head + k) % num])
			return false;
	for (unsigned int k = 0; k < cnt; k++)
		tr->busy[(head + k) % num] = true;
	tr->chain[head] = (uint8_t)cnt;
	tr->inflight++;
	return true;
}

/*
 * The guest posts chain c on ring q of s->d (in a table of its own when
 * indirect) and kicks when asked. Anything it cannot do as a driver would
 * (no room, descriptors still in flight) ends the device's tracking.
 */
static void post_chain(struct sess *s, unsigned int q, const struct chain_spec *c, bool indirect,
		       bool do_kick)
{
	struct fdev *dv = s->d;
	struct ring_view *v = &dv->rv[q];
	uint8_t segs[4][16];
	uint16_t num = v->num ? v->num : 1;
	uint16_t head = (uint16_t)(v->next_desc % num);
	unsigned int n = c->n;
	uint16_t old = 0;
	bool ok = true;

	for (unsigned int i = 0; i < n; i++) {
		uint32_t len = c->len[i];
		uint64_t gpa = 0;
		uint8_t *b = galloc(s, len ? len : 1, &gpa);
		size_t k = len < sizeof(c->data[i]) ? len : sizeof(c->data[i]);

		ok = ok && b;
		if (!c->writable[i]) {
			if (b) {
				memcpy(b, c->data[i], k);
				memset(b + k, 0x5a, len - k);
			}
		} else if (b) {
			memset(b, 0xee, len);
		}
		tdesc_put(segs[i], gpa, len, c->writable[i] ? VRING_DESC_F_WRITE : 0, 0);
	}
	/* What the spec asks of a driver: readable first, indirect only when agreed. */
	for (unsigned int i = 1; i < n; i++)
		ok = ok && (c->writable[i] || !c->writable[i - 1]);
	if (indirect && !(vu_backend_features(dev_backend(dv)) & dv->feat_sent & (1ull << 28)))
		ok = false;
	if (!ok || !track_post(dv, q, head, indirect ? 1 : n))
		dv->tainted = true;
	if (indirect) {
		uint64_t tgpa = 0;
		uint8_t *t = galloc(s, 16 * n, &tgpa);
		uint8_t *d = uva_ptr(s->d, v->desc + 16u * head, 16);

		if (!t || !d) {
			dv->tainted = true;
			return;
		}
		for (unsigned int i = 0; i < n; i++) {
			struct vring_desc e;

			memcpy(&e, segs[i], 16);
			if (i + 1 < n)
				e.flags |= htole16(VRING_DESC_F_NEXT);
			e.next = htole16((uint16_t)(i + 1));
			memcpy(t + 16 * i, &e, 16);
		}
		tdesc_put(d, tgpa, 16 * n, VRING_DESC_F_INDIRECT, 0);
		v->next_desc = (uint16_t)((head + 1) % num);
	} else {
		for (unsigned int i = 0; i < n; i++) {
			uint16_t at = (uint16_t)((head + i) % num);
			uint8_t *d = uva_ptr(s->d, v->desc + 16u * at, 16);
			struct vring_desc e;

			if (!d) {
				dv->tainted = true;
				return;
			}
			memcpy(&e, segs[i], 16);
			if (i + 1 < n)
				e.flags |= htole16(VRING_DESC_F_NEXT);
			e.next = htole16((uint16_t)((at + 1) % num));
			memcpy(d, &e, 16);
		}
		v->next_desc = (uint16_t)((head + n) % num);
	}
	if (!publish(s, q, head, &old))
		dv->tainted = true;
	/*
	 * Not kicking when the device asked is a driver's mistake: its ring may
	 * rightly wait, until a later kick pays what is owed.
	 */
	if (do_kick)
		kick(dv, q);
	else if (need_kick(dv, q, old))
		dv->tr[q].owed = true;
}

/*
 * OP_POST: u8 q (bits 0..1 the ring, % 3; bit 6 indirect, bit 7 kick), u8 shape (1 + shape % 4
 * segments), per segment u8 length, u8 flags (bit 0 writable) and for a
 * readable one up to 24 bytes of contents (a virtio-can header fits).
 */
static void op_post(struct sess *s)
{
	uint8_t qb = fuzz_u8(&s->in), shape = fuzz_u8(&s->in);
	struct chain_spec c;

	memset(&c, 0, sizeof(c));
	c.n = 1 + shape % 4u;
	for (unsigned int i = 0; i < c.n; i++) {
		c.len[i] = fuzz_u8(&s->in);
		c.writable[i] = fuzz_u8(&s->in) & 1;
		if (!c.writable[i])
			fuzz_take(&s->in, c.data[i],
				  c.len[i] < sizeof(c.data[i]) ? c.len[i] : sizeof(c.data[i]));
	}
	post_chain(s, (qb & 3u) % NQ, &c, qb & 0x40, qb & 0x80);
}

/*
 * OP_CTRL: u8 b: the guest asks for controller START (bit 0 clear) or STOP
 * (set) on the Controlq as the Linux driver does (msg_type, a result byte),
 * and kicks unless bit 1 is set.
 */
static void op_ctrl(struct sess *s)
{
	uint8_t b = fuzz_u8(&s->in);
	uint16_t type =
	    htole16((b & 1) ? VIRTIO_CAN_SET_CTRL_MODE_STOP : VIRTIO_CAN_SET_CTRL_MODE_START);
	struct chain_spec c;

	memset(&c, 0, sizeof(c));
	c.n = 2;
	c.len[0] = 2;
	memcpy(c.data[0], &type, 2);
	c.len[1] = 1;
	c.writable[1] = true;
	post_chain(s, VIRTIO_CAN_QUEUE_CTRL, &c, false, !(b & 2));
}

/* OP_CLOCK: u8 t: the clock moves (t & 63) << 3 * (t >> 6) ms (up to 32 s). */
static void op_clock(struct sess *s)
{
	uint8_t t = fuzz_u8(&s->in);

	fake_now_ms += (uint64_t)(t & 63u) << (3u * (t >> 6));
}

/*
 * OP_DESC: u8 q, u8 index, u8 mode, addr (mode bit 0: u64, else u16 offset
 * from maps[0]'s gpa), len (bit 1: u32, else u8), flags (bit 2: u16, else
 * mode bits 4..6), u8 next.
 */
static void op_desc(struct sess *s)
{
	unsigned int q = fuzz_u8(&s->in) % NQ;
	uint8_t i = fuzz_u8(&s->in), mode = fuzz_u8(&s->in);
	struct ring_view *v = &s->d->rv[q];
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint8_t next;
	uint8_t *d;

	if (mode & 1)
		addr = fuzz_u64(&s->in);
	else
		addr = (s->d->nmaps ? s->d->maps[0].gpa : 0) + fuzz_u16(&s->in);
	len = (mode & 2) ? fuzz_u32(&s->in) : fuzz_u8(&s->in);
	flags = (mode & 4) ? fuzz_u16(&s->in) : (uint16_t)((mode >> 4) & 7);
	next = fuzz_u8(&s->in);
	d = uva_ptr(s->d, v->desc + 16u * (v->num ? i % v->num : i), 16);
	if (d)
		tdesc_put(d, addr, len, flags, next);
}

/*
 * OP_AVAIL: u8 q, u8 how: bit 0 set idx to a u16 (no entry), bit 7 set
 * flags to a u16, else an entry: u16 head, idx += 1 + (how >> 1 & 3).
 */
static void op_avail(struct sess *s)
{
	unsigned int q = fuzz_u8(&s->in) % NQ;
	uint8_t how = fuzz_u8(&s->in);
	struct ring_view *v = &s->d->rv[q];
	uint8_t *av = uva_ptr(s->d, v->avail, 4 + 2u * (v->num ? v->num : 1));
	uint16_t val = fuzz_u16(&s->in), idx;

	if (!av)
		return;
	memcpy(&idx, av + 2, 2);
	idx = le16toh(idx);
	if (how & 0x80) {
		val = htole16(val);
		memcpy(av, &val, 2);
	} else if (how & 1) {
		val = htole16(val);
		memcpy(av + 2, &val, 2);
	} else {
		val = htole16(val);
		memcpy(av + 4 + 2u * (v->num ? idx % v->num : 0), &val, 2);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		idx = htole16((uint16_t)(idx + 1 + ((how >> 1) & 3)));
		memcpy(av + 2, &idx, 2);
	}
}

/*
 * OP_POKE: u8 where, u16 offset, u8 length (1..32), bytes. where bit 7:
 * relative to ring (where >> 1 & 3) % 3's desc, avail or used ((where >> 3
 * & 3) % 3); else into mapping where % nmaps.
 */
static void op_poke(struct sess *s)
{
	uint8_t where = fuzz_u8(&s->in);
	uint16_t off = fuzz_u16(&s->in);
	size_t len = 1 + fuzz_u8(&s->in) % 32u;
	uint8_t bytes[32];
	uint8_t *at = NULL;

	fuzz_take(&s->in, bytes, len);
	if (where & 0x80) {
		const struct ring_view *v = &s->d->rv[((where >> 1) & 3u) % NQ];
		unsigned int part = ((where >> 3) & 3u) % 3u;
		uint64_t base = part == 0 ? v->desc : part == 1 ? v->avail : v->used;

		at = uva_ptr(s->d, base + off, len);
	} else if (s->d->nmaps) {
		const struct gmap *g = &s->d->maps[where % s->d->nmaps];

		if (g->len >= len)
			at = g->p + off % (g->len - len + 1);
	}
	if (at)
		memcpy(at, bytes, len);
}

/*
 * The fake port's send hook, in the loop: a guest vCPU that makes the TX
 * chains just sent available again at once, as many as the ring has room
 * for, so the ring does not run empty while the device drains it. Only the
 * device's per-wakeup budget lets the loop do anything else meanwhile.
 */
static void eager_repost(void *arg, unsigned int n)
{
	struct fdev *d = arg;
	const struct ring_view *v = &d->rv[0];
	uint8_t *av = uva_ptr(d, v->avail, 4), *used = uva_ptr(d, v->used, 4);
	uint16_t a, u, room;

	if (!av || !used || v->num == 0 || d->reposts == 0)
		return;
	memcpy(&a, av + 2, 2);
	memcpy(&u, used + 2, 2);
	a = le16toh(a);
	u = le16toh(u);
	room = (uint16_t)(a - u) < v->num ? (uint16_t)(v->num - (uint16_t)(a - u)) : 0;
	if (n > room)
		n = room;
	if (n > d->reposts)
		n = d->reposts;
	d->reposts -= n;
	/* The same heads again, still in flight as far as we know: no tracking. */
	if (n > 0)
		d->tainted = true;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	a = htole16((uint16_t)(a + n));
	memcpy(av + 2, &a, 2);
}

/* OP_KICK: u8, % 4: a ring, or 3: all of them. */
/*
 * The frontend shrinks a memfd it gave: the daemon's next access there is a
 * SIGBUS it must survive (and drop us for). We stop touching what is gone.
 */
static void op_shrink(struct sess *s)
{
	uint8_t which = fuzz_u8(&s->in), pages = fuzz_u8(&s->in);
	struct gmap *g;
	size_t len;

	if (s->d->nmaps == 0)
		return;
	g = &s->d->maps[which % s->d->nmaps];
	len = (size_t)pages * 4096u;
	if (g->fd < 0 || len >= g->len || ftruncate(g->fd, (off_t)len) != 0)
		return;
	g->len = len;
}

static void op_kick(struct sess *s)
{
	unsigned int q = fuzz_u8(&s->in) % 4u;

	for (unsigned int i = 0; i < NQ; i++)
		if (q == NQ || q == i)
			kick(s->d, i);
}

/*
 * OP_BUS: u8 count (1 + % 8), per event u8 type (% 4; a TX_DONE with bit 7
 * echoes one of the last frames sent, else each frame is u32 id, u8 flags,
 * u8 length (% 65) and that many bytes).
 */
static void op_bus(struct sess *s)
{
	unsigned int n = 1 + fuzz_u8(&s->in) % 8u;
	struct can_port_event ev[8];
	unsigned int sent = fakeport_sent_count(s->d->port);

	memset(ev, 0, sizeof(ev));
	for (unsigned int i = 0; i < n; i++) {
		uint8_t t = fuzz_u8(&s->in);
		struct cframe *f = &ev[i].frame;

		ev[i].type = (enum can_port_event_type)(t % 4);
		if (ev[i].type == CAN_PORT_EV_BUSOFF || ev[i].type == CAN_PORT_EV_RESTARTED)
			continue;
		if (ev[i].type == CAN_PORT_EV_TX_DONE && (t & 0x80) && sent > 0 &&
		    fakeport_sent(s->d->port, sent - 1 - ((t >> 4) & 7u) % sent, f) == 0)
			continue;
		f->id = fuzz_u32(&s->in);
		f->flags = fuzz_u8(&s->in);
		/* The real port never hands over more than 64 bytes. */
		f->len = (uint8_t)(fuzz_u8(&s->in) % (CFRAME_MAX_DATA + 1));
		fuzz_take(&s->in, f->data, f->len);
	}
	if (fakeport_injected(s->d->port) - fakeport_consumed(s->d->port) + n > MAX_PENDING_EVENTS)
		return;
	if (fakeport_inject(s->d->port, ev, n) != 0)
		abort();
}

/*
 * OP_CONN: u8 what % 6: 0 raw bytes (u8 length % 64, bytes); 1 a header
 * (12 bytes) with fds (u8 count % 9, kind bytes) and no payload yet; 2 stop
 * or resume reading replies; 3 hang up (a new frontend connects); 4 shut
 * down our writing side; 5 wait 1.5 ms (message deadline) and move the clock
 * 2 ms (TX ack timeout).
 */
static void op_conn(struct sess *s)
{
	uint8_t what = fuzz_u8(&s->in) % 6u;
	uint8_t buf[64];
	size_t len;

	switch (what) {
	case 0:
		len = fuzz_u8(&s->in) % 64u;
		fuzz_take(&s->in, buf, len);
		(void)sess_write(s, buf, len, NULL, 0);
		break;
	case 1: {
		struct xfd x[VHOST_USER_MAX_FDS];
		unsigned int n = fuzz_u8(&s->in) % 9u, nx = 0;

		fuzz_take(&s->in, buf, VHOST_USER_HDR_SIZE);
		for (unsigned int i = 0; i < n; i++) {
			x[nx] = make_fd(s, fuzz_u8(&s->in), 4096, NULL);
			if (x[nx].send >= 0)
				nx++;
		}
		(void)sess_write(s, buf, VHOST_USER_HDR_SIZE, x, nx);
		for (unsigned int i = 0; i < nx; i++) {
			if (x[i].send != x[i].keep)
				close(x[i].send);
			hold(s, x[i].keep);
		}
		break;
	}
	case 2:
		s->d->deaf = !s->d->deaf;
		break;
	case 3:
		sess_let_go(s, s->d);
		dev_connect(s->d);
		break;
	case 4:
		shutdown(s->d->peer, SHUT_WR);
		s->d->tainted = true;
		break;
	default:
		if (s->waits++ < MAX_WAITS)
			usleep(1500);
		/* The devices' clock too: LATE_TX_ACK deadlines pass. */
		fake_now_ms += 2;
		break;
	}
}

/* ---- the invariants ---- */

/*
 * Requests of ring q of d must complete: we track it, the guest drove the
 * device only as a driver does, the ring runs (not broken) and can be
 * kicked. Not the Rxq: its buffers wait for frames from the bus.
 */
static bool ring_live(struct fdev *d, unsigned int q)
{
	const struct track *tr = &d->tr[q];
	struct vq *vq;

	if (d->tainted || !tr->on || tr->resync || !tr->live || d->peer < 0 ||
	    !vu_backend_connected(dev_backend(d)))
		return false;
	vq = vu_backend_vq(dev_backend(d), q);
	return vq && vq->started && vq->enabled && !vq->broken && vq->num == d->rv[q].num;
}

static void fail(const struct fdev *d, unsigned int q, const char *what, unsigned int n)
{
	struct device_stats st;

	device_get_stats(dev_vcd(d), &st);
	fprintf(stderr,
		"fuzz_session: device %u ring %u: %s (%u); controller %s, tx ok %llu "
		"rejected %llu failed %llu timeout %llu stopped %llu\n",
		d->idx, q, what, n, device_started(dev_vcd(d)) ? "started" : "stopped",
		(unsigned long long)st.tx_ok, (unsigned long long)st.tx_rejected,
		(unsigned long long)st.tx_failed, (unsigned long long)st.tx_timeout,
		(unsigned long long)st.tx_stopped);
	abort();
}

/* The backend has read every byte we sent d (the messages were all handled). */
static bool dev_sent_all(const struct fdev *d)
{
	int n = 0;

	return d->peer < 0 || (ioctl(d->peer, SIOCOUTQ, &n) == 0 && n == 0);
}

/*
 * Read what the device used on a tracked ring since the last turn: each
 * entry must be a head in flight, which is then no longer (used exactly
 * once: never twice, never one the guest did not make available).
 */
static void check_used(struct fdev *d, unsigned int q)
{
	struct track *tr = &d->tr[q];
	uint16_t num = d->rv[q].num, idx;
	uint8_t *used = num ? uva_ptr(d, d->rv[q].used, 4 + 8u * num) : NULL;

	if (!tr->on)
		return;
	if (!used) {
		d->tainted = true; /* shrunk away: no more to read */
		return;
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	memcpy(&idx, used + 2, 2);
	idx = le16toh(idx);
	if (tr->resync) {
		/* Our set-up handled: the device goes on from the index it found. */
		if (dev_sent_all(d)) {
			tr->last_used = idx;
			tr->resync = false;
		}
		return;
	}
	if ((uint16_t)(idx - tr->last_used) > tr->inflight)
		fail(d, q, "more requests used than were in flight",
		     (uint16_t)(idx - tr->last_used));
	for (; tr->last_used != idx; tr->last_used++) {
		uint32_t id;

		memcpy(&id, used + 4 + 8u * (tr->last_used % num), 4);
		id = le32toh(id);
		if (id >= num || tr->chain[id] == 0)
			fail(d, q, "used id not in flight (used twice, or never made available)",
			     id);
		for (unsigned int k = 0; k < tr->chain[id]; k++)
			tr->busy[(id + k) % num] = false;
		tr->chain[id] = 0;
		tr->inflight--;
		tr->seen++;
	}
}

/*
 * After every loop turn. Every device: no wakeup of a queue read more
 * descriptors than its budget (device_stats.walk_max), whatever its guest
 * does. Every device driven as a driver would: requests used exactly once.
 */
static void sess_check(struct sess *s)
{
	static const unsigned int budget[NQ] = {DEVICE_TX_BUDGET, DEVICE_RX_BUDGET, DEVICE_CTRL_BUDGET};

	for (unsigned int i = 0; i < NDEV; i++) {
		struct fdev *d = &s->dev[i];
		struct device_stats st;

		device_get_stats(dev_vcd(d), &st);
		for (unsigned int q = 0; q < NQ; q++) {
			if (st.walk_max[q] > budget[q])
				fail(d, q, "one wakeup read more descriptors than the budget",
				     (unsigned int)st.walk_max[q]);
			if (!d->tainted)
				check_used(d, q);
			if (!d->tainted && d->tr[q].on && !d->tr[q].resync) {
				const struct vq *vq = vu_backend_vq(dev_backend(d), q);

				if (vq && vq->broken)
					fail(d, q, "ring broken though its guest did nothing wrong",
					     d->tr[q].inflight);
			}
		}
	}
}

static unsigned int live_pending(struct fdev *d, unsigned int q)
{
	return ring_live(d, q) ? d->tr[q].inflight : 0;
}

/*
 * A stopped controller (never started, STOP, bus-off) refuses TX at once:
 * with any kick it asked for given, no TX request of a live ring may be left in flight within
 * STOPPED_TURNS turns, with the clock standing still.
 */
static void sess_check_stopped(struct sess *s)
{
	for (unsigned int i = 0; i < NDEV; i++) {
		struct fdev *d = &s->dev[i];
		bool waited = false;

		for (unsigned int t = 0; t < STOPPED_TURNS; t++) {
			if (device_started(dev_vcd(d)) || live_pending(d, VIRTIO_CAN_QUEUE_TX) == 0)
				break;
			if (d->tr[VIRTIO_CAN_QUEUE_TX].owed)
				kick(d, VIRTIO_CAN_QUEUE_TX);
			waited = true;
			sess_turn(s);
		}
		if (waited && !device_started(dev_vcd(d)) && live_pending(d, VIRTIO_CAN_QUEUE_TX))
			fail(d, VIRTIO_CAN_QUEUE_TX,
			     "TX requests left while the controller is stopped",
			     live_pending(d, VIRTIO_CAN_QUEUE_TX));
	}
}

/*
 * The guest goes quiet (it gives the kicks it owes); the clock moves well
 * past the pacing horizon (DEVICE_PACE_AHEAD_NS and the frames' bus time) and
 * every LATE_TX_ACK deadline. Started or stopped, no TX or control request
 * of a live ring may be left in flight after SETTLE_TURNS turns.
 */
static void sess_settle(struct sess *s)
{
	unsigned int left = 0;

	for (unsigned int i = 0; i < NDEV; i++)
		for (unsigned int q = 0; q < NQ; q++)
			if (ring_live(&s->dev[i], q) && s->dev[i].tr[q].owed)
				kick(&s->dev[i], q);
	for (unsigned int t = 0; t < SETTLE_TURNS; t++) {
		left = 0;
		for (unsigned int i = 0; i < NDEV; i++)
			left += live_pending(&s->dev[i], VIRTIO_CAN_QUEUE_TX) +
				live_pending(&s->dev[i], VIRTIO_CAN_QUEUE_CTRL);
		if (left == 0)
			return;
		fake_now_ms += SETTLE_STEP_MS;
		sess_turn(s);
	}
	for (unsigned int i = 0; i < NDEV; i++) {
		if (live_pending(&s->dev[i], VIRTIO_CAN_QUEUE_TX))
			fail(&s->dev[i], VIRTIO_CAN_QUEUE_TX, "TX requests never completed",
			     live_pending(&s->dev[i], VIRTIO_CAN_QUEUE_TX));
		if (live_pending(&s->dev[i], VIRTIO_CAN_QUEUE_CTRL))
			fail(&s->dev[i], VIRTIO_CAN_QUEUE_CTRL, "control requests never completed",
			     live_pending(&s->dev[i], VIRTIO_CAN_QUEUE_CTRL));
	}
}

static void sess_step(struct sess *s)
{
	uint8_t op = fuzz_u8(&s->in);
	unsigned int turns = 1;
	bool hostile = false, stopped_check = false;

	s->d = &s->dev[(op >> 6) & 1u];
	switch ((op & 15u) % OP_COUNT) {
	case OP_MSG:
		op_msg(s);
		hostile = true;
		break;
	case OP_SETUP:
		op_setup(s);
		break;
	case OP_POST:
		op_post(s);
		break;
	case OP_DESC:
		op_desc(s);
		hostile = true;
		break;
	case OP_AVAIL:
		op_avail(s);
		hostile = true;
		break;
	case OP_POKE:
		op_poke(s);
		hostile = true;
		break;
	case OP_KICK:
		op_kick(s);
		break;
	case OP_BUS:
		op_bus(s);
		stopped_check = true;
		break;
	case OP_CONN:
		op_conn(s);
		break;
	case OP_SHRINK:
		op_shrink(s);
		hostile = true;
		break;
	case OP_CTRL:
		op_ctrl(s);
		stopped_check = true;
		break;
	case OP_CLOCK:
		op_clock(s);
		break;
	case OP_SETTLE:
		sess_settle(s);
		turns = 0;
		break;
	default: /* OP_TURNS */
		turns = 1 + fuzz_u8(&s->in) % 4u;
		break;
	}
	/* Rings written behind the driver's back, raw messages: no tracking. */
	if (hostile)
		s->d->tainted = true;
	if (op & 0x80)
		turns = 0;
	for (unsigned int i = 0; i < turns; i++)
		sess_turn(s);
	if (stopped_check && turns > 0)
		sess_check_stopped(s);
}

/*
 * The loop must still work: the frontend hangs up and is let go within a
 * bounded number of turns, and a new one gets its GET_FEATURES answered.
 */
static void sess_probe(struct sess *s, struct fdev *d)
{
	struct vhost_user_hdr h = {.request = VHOST_USER_GET_FEATURES, .flags = VHOST_USER_VERSION};
	uint8_t reply[VHOST_USER_HDR_SIZE + 8] = {0};
	uint64_t feat;
	ssize_t n = -1;

	sess_let_go(s, d);
	d->small_sndbuf = false;
	dev_connect(d);
	if (send(d->peer, &h, sizeof(h), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(h))
		abort();
	for (int i = 0; i < 2 && n < 0; i++) {
		sess_loop_turn(s);
		n = recv(d->peer, reply, sizeof(reply), MSG_DONTWAIT);
	}
	memcpy(&h, reply, sizeof(h));
	memcpy(&feat, reply + sizeof(h), sizeof(feat));
	if (n != (ssize_t)sizeof(reply) || h.request != VHOST_USER_GET_FEATURES ||
	    !(h.flags & VHOST_USER_REPLY_MASK) ||
	    (feat & VU_BACKEND_TRANSPORT_FEATURES) != VU_BACKEND_TRANSPORT_FEATURES) {
		fprintf(stderr,
			"fuzz_session: device %u: a new frontend is not served (%zd bytes)\n",
			d->idx, n);
		abort();
	}
}

static void sess_close(struct sess *s)
{
	for (unsigned int i = 0; verbose && s->inited && i < NDEV; i++) {
		struct fdev *d = &s->dev[i];
		struct device_stats st;

		device_get_stats(dev_vcd(d), &st);
		fprintf(stderr,
			"fuzz_session: device %u%s: %u sessions, tx ok %llu rejected %llu failed "
			"%llu timeout %llu stopped %llu, rx delivered %llu, bus events read %llu, "
			"busoff %llu, walk max %llu/%llu/%llu\n",
			i, d->tainted ? " (hostile)" : "", vu_backend_sessions(dev_backend(d)),
			(unsigned long long)st.tx_ok, (unsigned long long)st.tx_rejected,
			(unsigned long long)st.tx_failed, (unsigned long long)st.tx_timeout,
			(unsigned long long)st.tx_stopped, (unsigned long long)st.rx_delivered,
			(unsigned long long)fakeport_consumed(d->port),
			(unsigned long long)st.busoff_events, (unsigned long long)st.walk_max[0],
			(unsigned long long)st.walk_max[1], (unsigned long long)st.walk_max[2]);
	}
	if (s->inited)
		loop_free(s->m);
	for (unsigned int i = 0; i < NDEV; i++) {
		struct fdev *d = &s->dev[i];

		dev_hang_up(d);
		for (unsigned int q = 0; q < NQ; q++)
			if (d->rv[q].kick >= 0)
				close(d->rv[q].kick);
		unmap_all(d);
		fakeport_free(d->port);
	}
	for (unsigned int i = 0; i < s->nheld; i++)
		close(s->held[i]);
	if (s->ctl >= 0)
		close(s->ctl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fds_before = tfd_count(), fds_after;
	struct sess *s = calloc(1, sizeof(*s));

	if (!s)
		abort();
	s->in.p = data;
	s->in.left = size;
	fake_now_ms = CLOCK_START_MS;
	for (unsigned int i = 0; i < NDEV; i++) {
		struct fdev *d = &s->dev[i];

		d->idx = i;
		d->m = &s->m;
		d->peer = -1;
		for (unsigned int q = 0; q < NQ; q++)
			d->rv[q].kick = -1;
		if (fakeport_new(&d->port) != 0)
			abort();
	}
	s->d = &s->dev[0];
	s->ctl = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->ctl < 0)
		abort();
	fakeport_on_send(s->dev[0].port, eager_repost, &s->dev[0]);
	sess_open(s);

	for (unsigned int i = 0; i < MAX_STEPS && s->in.left > 0; i++)
		sess_step(s);
	sess_settle(s);
	for (unsigned int i = 0; i < NDEV; i++)
		sess_probe(s, &s->dev[i]);

	sess_close(s);
	free(s);
	fds_after = tfd_count();
	if (fds_after != fds_before) {
		fprintf(stderr, "fuzz_session: %d fds before the input, %d after\n", fds_before,
			fds_after);
		abort();
	}
	return 0;
}
