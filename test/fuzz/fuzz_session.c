/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A hostile frontend and a hostile guest against the daemon's loop.
 *
 * The real backend and virtio-can device on a fake CAN port (dmn_init, as
 * the daemon wires them), attached to one end of a socketpair. The harness
 * holds the other end and writes whole vhost-user messages on it, with
 * SCM_RIGHTS fds of every kind; between messages it plays the guest: it
 * edits the rings in the memfds it handed over, kicks, and injects bus
 * events into the fake port. After every step the loop runs one turn of
 * dmn_run() itself, which cannot sleep (its control fd is always readable),
 * so a step that hangs is a libFuzzer timeout and one that spins is caught
 * by a CPU bound per turn. At the end a fresh frontend must still be
 * served, and after teardown the fd count must be what it was.
 *
 * Input: one session byte, then at most MAX_STEPS steps; each step is an op
 * byte (bits 0..3 the op, mod OP_COUNT; bit 7 set: no loop turn after it)
 * and the op's operands, read as the op needs them (see sess_step). Reads
 * past the end give zeros. Session byte:
 *   bit 0  memfds may be smaller than their region (see short_memfd_ok)
 *   bit 1  offer CAN FD
 *   bit 2  small send buffer on the backend's end (a reply can find no room)
 *   bit 3  message deadline 1 ms, LATE_TX_ACK timeout 1 ms (with OP_CONN wait)
 *   bits 4..5  RX backlog 1, 4, 16 or 64
 *   bit 6  an eager guest: reposts TX chains the moment they are sent
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dmn.h"
#include "fakeport.h"
#include "fuzz_util.h"
#include "vcd.h"
#include "vcd_frame.h"
#include "vlog.h"
#include "vu_backend.h"
#include "vu_msg.h"

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
#define MAX_REPOSTS 1024 /* chains an eager guest reposts per input */

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

struct sess {
	struct fuzz_in in;
	struct fakeport *port;
	struct dmn_port dp;
	struct dmn m;
	bool inited;
	int ctl;  /* always readable: dmn_run() makes one turn and returns */
	int peer; /* our end of the connection, -1 when none */
	bool deaf;
	bool short_ok;
	bool small_sndbuf;
	unsigned int waits;
	unsigned int reposts; /* the eager guest's chains left */
	unsigned int fds_made;
	size_t heap; /* next buffer offset in maps[0] */
	struct gmap maps[MAX_MAPS];
	unsigned int nmaps;
	struct ring_view rv[NQ];
	int held[MAX_HELD];
	unsigned int nheld;
};

static int sess_stop_turn(struct dmn *m, void *arg)
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

/* A new connection: our end in s->peer, the backend's end returned. */
static int sess_socketpair(struct sess *s)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	if (s->small_sndbuf) {
		int v = 1; /* the kernel rounds it up to its minimum: a few replies fill it */

		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	}
	set_nonblock(sv[1]);
	s->peer = sv[1];
	return sv[0];
}

/* The daemon's device and backend on the fake port, serving a first frontend. */
static void sess_open(struct sess *s)
{
	struct vcd_config cfg = {.name = "fuzz-can"};
	uint8_t f = fuzz_u8(&s->in);

	s->short_ok = (f & 1) && short_memfd_ok;
	cfg.fd = f & 2;
	s->small_sndbuf = f & 4;
	cfg.tx_ack_timeout_ms = (f & 8) ? 1 : VCD_DEFAULT_TX_ACK_TIMEOUT_MS;
	cfg.rx_backlog = 1u << (2 * ((f >> 4) & 3));
	if (f & 0x40)
		s->reposts = MAX_REPOSTS;
	fakeport_dmn_port(s->port, &s->dp);
	/* dmn_init takes the backend's end, also on failure. */
	if (dmn_init(&s->m, &cfg, &s->dp, NULL, sess_socketpair(s)) != 0)
		abort();
	s->inited = true;
	if (f & 8)
		vu_backend_set_msg_timeout(s->m.backend, 1);
}

static void sess_connect(struct sess *s)
{
	if (vu_backend_attach(s->m.backend, sess_socketpair(s)) != 0)
		abort();
}

static void sess_hang_up(struct sess *s)
{
	if (s->peer >= 0)
		close(s->peer);
	s->peer = -1;
}

/*
 * One turn of the daemon's loop: its epoll set, the backend's dispatch, the
 * port, vcd_tick. It cannot sleep: the control fd is readable.
 */
static void sess_loop_turn(struct sess *s)
{
	uint64_t t0 = cpu_ns(), dt;

	if (dmn_run(&s->m, s->ctl, sess_stop_turn, s) != 0)
		abort();
	dt = cpu_ns() - t0;
	if (dt > TURN_CPU_LIMIT_NS) {
		fprintf(stderr, "fuzz_session: one loop turn took %llu ms of CPU\n",
			(unsigned long long)(dt / 1000000u));
		abort();
	}
}

/* Hang up: the loop must notice within a bounded number of turns. */
static void sess_let_go(struct sess *s)
{
	sess_hang_up(s);
	for (int i = 0; i < PROBE_TURNS && vu_backend_connected(s->m.backend); i++)
		sess_loop_turn(s);
	if (vu_backend_connected(s->m.backend)) {
		fprintf(stderr, "fuzz_session: a frontend that hung up is still served\n");
		abort();
	}
}

/* A turn, then what a frontend does: read replies, come back when dropped. */
static void sess_turn(struct sess *s)
{
	sess_loop_turn(s);
	if (!s->deaf)
		drain_socket(s->peer);
	if (!vu_backend_connected(s->m.backend)) {
		sess_hang_up(s);
		sess_connect(s);
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
	int peer = s->peer;
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
		if (s->peer != peer)
			return false;
	}
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

static void unmap_all(struct sess *s)
{
	for (unsigned int i = 0; i < s->nmaps; i++) {
		munmap(s->maps[i].p, s->maps[i].maplen);
		if (s->maps[i].fd >= 0)
			close(s->maps[i].fd);
	}
	s->nmaps = 0;
	s->heap = 0;
}

/* Map a memfd we are about to send for region r, to play the guest in it. */
static void map_region(struct sess *s, int fd, size_t len, const struct vhost_user_mem_region *r)
{
	struct gmap *g;
	void *p;

	if (len == 0 || s->nmaps == MAX_MAPS)
		return;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		abort();
	g = &s->maps[s->nmaps++];
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
		s->rv[p->state.index].num = (uint16_t)p->state.num;
		s->rv[p->state.index].next_desc = 0;
	}
	if (req == VHOST_USER_SET_VRING_ADDR && size >= sizeof(p->addr) && p->addr.index < NQ) {
		struct ring_view *v = &s->rv[p->addr.index];

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
		unmap_all(s);
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
			struct ring_view *v = &s->rv[p->u64 & 0xff];

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
	uint64_t f = VU_BACKEND_TRANSPORT_FEATURES | VCD_F_ALL;
	static const uint64_t drop[8] = {
	    1ull << 29, 1ull << 28,	   1ull << VHOST_USER_F_PROTOCOL_FEATURES,
	    0,		VCD_F_LATE_TX_ACK, VCD_F_FD,
	    1ull << 24, VCD_F_CLASSIC,
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
static uint8_t *uva_ptr(struct sess *s, uint64_t uva, size_t len)
{
	for (unsigned int i = 0; i < s->nmaps; i++) {
		const struct gmap *g = &s->maps[i];
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
	uint64_t base = (s->nmaps ? s->maps[0].uaddr : UA_BASE) + q * RING_SPAN;
	uint32_t num = 1u << ((pb >> 2) % 9);
	union vhost_user_payload p;
	uint8_t call = FK_EVENTFD | 0x10;
	uint8_t *mem;

	/* A driver starts from clean rings. */
	mem = uva_ptr(s, base, RING_SPAN);
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
	struct gmap *g = &s->maps[0];
	size_t lim;

	if (s->nmaps == 0 || g->off >= g->len)
		return NULL;
	lim = g->len - g->off < g->size ? g->len - g->off : g->size;
	if (lim < HEAP_START + n)
		return NULL;
	s->heap = (s->heap + 15) & ~(size_t)15;
	if (s->heap < HEAP_START || s->heap + n > lim)
		s->heap = HEAP_START; /* the guest reuses its buffers: hostile, legal */
	*gpa = g->gpa + s->heap;
	s->heap += n;
	return g->p + g->off + s->heap - n;
}

static void put_desc(uint8_t *at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc d = {
	    .addr = htole64(addr),
	    .len = htole32(len),
	    .flags = htole16(flags),
	    .next = htole16(next),
	};

	memcpy(at, &d, sizeof(d));
}

static void kick(struct sess *s, unsigned int q)
{
	uint64_t one = 1;

	if (s->rv[q].kick >= 0)
		(void)!write(s->rv[q].kick, &one, sizeof(one));
}

/* Make head available on ring q as the driver does: entry, barrier, idx. */
static void publish(struct sess *s, unsigned int q, uint16_t head)
{
	struct ring_view *v = &s->rv[q];
	uint8_t *av = uva_ptr(s, v->avail, 4 + 2u * (v->num ? v->num : 1));
	uint16_t idx;

	if (!av)
		return;
	memcpy(&idx, av + 2, 2);
	idx = le16toh(idx);
	head = htole16(head);
	memcpy(av + 4 + 2u * (v->num ? idx % v->num : 0), &head, 2);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	idx = htole16((uint16_t)(idx + 1));
	memcpy(av + 2, &idx, 2);
}

/*
 * OP_POST: u8 q (bits 0..1 the ring, % 3; bit 6 indirect, bit 7 kick), u8 shape (1 + shape % 4
 * segments), per segment u8 length, u8 flags (bit 0 writable) and for a
 * readable one up to 24 bytes of contents (a virtio-can header fits).
 */
static void op_post(struct sess *s)
{
	uint8_t qb = fuzz_u8(&s->in), shape = fuzz_u8(&s->in);
	unsigned int q = (qb & 3u) % NQ, n = 1 + shape % 4u;
	struct ring_view *v = &s->rv[q];
	bool indirect = qb & 0x40;
	uint8_t segs[4][16];
	uint16_t num = v->num ? v->num : 1;
	uint16_t head = (uint16_t)(v->next_desc % num);

	for (unsigned int i = 0; i < n; i++) {
		uint32_t len = fuzz_u8(&s->in);
		uint8_t fl = fuzz_u8(&s->in);
		uint64_t gpa = 0;
		uint8_t *b = galloc(s, len ? len : 1, &gpa);
		uint8_t tmp[24];
		size_t k = len < sizeof(tmp) ? len : sizeof(tmp);

		if (!(fl & 1)) {
			fuzz_take(&s->in, tmp, k);
			if (b) {
				memcpy(b, tmp, k);
				memset(b + k, 0x5a, len - k);
			}
		} else if (b) {
			memset(b, 0xee, len);
		}
		put_desc(segs[i], gpa, len, (fl & 1) ? VRING_DESC_F_WRITE : 0, 0);
	}
	if (indirect) {
		uint64_t tgpa = 0;
		uint8_t *t = galloc(s, 16 * n, &tgpa);
		uint8_t *d = uva_ptr(s, v->desc + 16u * head, 16);

		if (!t || !d)
			return;
		for (unsigned int i = 0; i < n; i++) {
			struct vring_desc e;

			memcpy(&e, segs[i], 16);
			if (i + 1 < n)
				e.flags |= htole16(VRING_DESC_F_NEXT);
			e.next = htole16((uint16_t)(i + 1));
			memcpy(t + 16 * i, &e, 16);
		}
		put_desc(d, tgpa, 16 * n, VRING_DESC_F_INDIRECT, 0);
		v->next_desc = (uint16_t)((head + 1) % num);
	} else {
		for (unsigned int i = 0; i < n; i++) {
			uint16_t at = (uint16_t)((head + i) % num);
			uint8_t *d = uva_ptr(s, v->desc + 16u * at, 16);
			struct vring_desc e;

			if (!d)
				return;
			memcpy(&e, segs[i], 16);
			if (i + 1 < n)
				e.flags |= htole16(VRING_DESC_F_NEXT);
			e.next = htole16((uint16_t)((at + 1) % num));
			memcpy(d, &e, 16);
		}
		v->next_desc = (uint16_t)((head + n) % num);
	}
	publish(s, q, head);
	if (qb & 0x80)
		kick(s, q);
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
	struct ring_view *v = &s->rv[q];
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint8_t next;
	uint8_t *d;

	if (mode & 1)
		addr = fuzz_u64(&s->in);
	else
		addr = (s->nmaps ? s->maps[0].gpa : 0) + fuzz_u16(&s->in);
	len = (mode & 2) ? fuzz_u32(&s->in) : fuzz_u8(&s->in);
	flags = (mode & 4) ? fuzz_u16(&s->in) : (uint16_t)((mode >> 4) & 7);
	next = fuzz_u8(&s->in);
	d = uva_ptr(s, v->desc + 16u * (v->num ? i % v->num : i), 16);
	if (d)
		put_desc(d, addr, len, flags, next);
}

/*
 * OP_AVAIL: u8 q, u8 how: bit 0 set idx to a u16 (no entry), bit 7 set
 * flags to a u16, else an entry: u16 head, idx += 1 + (how >> 1 & 3).
 */
static void op_avail(struct sess *s)
{
	unsigned int q = fuzz_u8(&s->in) % NQ;
	uint8_t how = fuzz_u8(&s->in);
	struct ring_view *v = &s->rv[q];
	uint8_t *av = uva_ptr(s, v->avail, 4 + 2u * (v->num ? v->num : 1));
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
		const struct ring_view *v = &s->rv[((where >> 1) & 3u) % NQ];
		unsigned int part = ((where >> 3) & 3u) % 3u;
		uint64_t base = part == 0 ? v->desc : part == 1 ? v->avail : v->used;

		at = uva_ptr(s, base + off, len);
	} else if (s->nmaps) {
		const struct gmap *g = &s->maps[where % s->nmaps];

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
	struct sess *s = arg;
	const struct ring_view *v = &s->rv[0];
	uint8_t *av = uva_ptr(s, v->avail, 4), *used = uva_ptr(s, v->used, 4);
	uint16_t a, u, room;

	if (!av || !used || v->num == 0 || s->reposts == 0)
		return;
	memcpy(&a, av + 2, 2);
	memcpy(&u, used + 2, 2);
	a = le16toh(a);
	u = le16toh(u);
	room = (uint16_t)(a - u) < v->num ? (uint16_t)(v->num - (uint16_t)(a - u)) : 0;
	if (n > room)
		n = room;
	if (n > s->reposts)
		n = s->reposts;
	s->reposts -= n;
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

	if (s->nmaps == 0)
		return;
	g = &s->maps[which % s->nmaps];
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
			kick(s, i);
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
	unsigned int sent = fakeport_sent_count(s->port);

	memset(ev, 0, sizeof(ev));
	for (unsigned int i = 0; i < n; i++) {
		uint8_t t = fuzz_u8(&s->in);
		struct cframe *f = &ev[i].frame;

		ev[i].type = (enum can_port_event_type)(t % 4);
		if (ev[i].type == CAN_PORT_EV_BUSOFF || ev[i].type == CAN_PORT_EV_RESTARTED)
			continue;
		if (ev[i].type == CAN_PORT_EV_TX_DONE && (t & 0x80) && sent > 0 &&
		    fakeport_sent(s->port, sent - 1 - ((t >> 4) & 7u) % sent, f) == 0)
			continue;
		f->id = fuzz_u32(&s->in);
		f->flags = fuzz_u8(&s->in);
		/* The real port never hands over more than 64 bytes. */
		f->len = (uint8_t)(fuzz_u8(&s->in) % (CFRAME_MAX_DATA + 1));
		fuzz_take(&s->in, f->data, f->len);
	}
	if (fakeport_injected(s->port) - fakeport_consumed(s->port) + n > MAX_PENDING_EVENTS)
		return;
	if (fakeport_inject(s->port, ev, n) != 0)
		abort();
}

/*
 * OP_CONN: u8 what % 6: 0 raw bytes (u8 length % 64, bytes); 1 a header
 * (12 bytes) with fds (u8 count % 9, kind bytes) and no payload yet; 2 stop
 * or resume reading replies; 3 hang up (a new frontend connects); 4 shut
 * down our writing side; 5 wait 1.5 ms (message deadline, TX ack timeout).
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
		s->deaf = !s->deaf;
		break;
	case 3:
		sess_let_go(s);
		sess_connect(s);
		break;
	case 4:
		shutdown(s->peer, SHUT_WR);
		break;
	default:
		if (s->waits++ < MAX_WAITS)
			usleep(1500);
		break;
	}
}

static void sess_step(struct sess *s)
{
	uint8_t op = fuzz_u8(&s->in);
	unsigned int turns = 1;

	switch ((op & 15u) % OP_COUNT) {
	case OP_MSG:
		op_msg(s);
		break;
	case OP_SETUP:
		op_setup(s);
		break;
	case OP_POST:
		op_post(s);
		break;
	case OP_DESC:
		op_desc(s);
		break;
	case OP_AVAIL:
		op_avail(s);
		break;
	case OP_POKE:
		op_poke(s);
		break;
	case OP_KICK:
		op_kick(s);
		break;
	case OP_BUS:
		op_bus(s);
		break;
	case OP_CONN:
		op_conn(s);
		break;
	case OP_SHRINK:
		op_shrink(s);
		break;
	default:
		turns = 1 + fuzz_u8(&s->in) % 4u;
		break;
	}
	if (op & 0x80)
		turns = 0;
	for (unsigned int i = 0; i < turns; i++)
		sess_turn(s);
}

/*
 * The loop must still work: the frontend hangs up and is let go within a
 * bounded number of turns, and a new one gets its GET_FEATURES answered.
 */
static void sess_probe(struct sess *s)
{
	struct vhost_user_hdr h = {.request = VHOST_USER_GET_FEATURES, .flags = VHOST_USER_VERSION};
	uint8_t reply[VHOST_USER_HDR_SIZE + 8] = {0};
	uint64_t feat;
	ssize_t n = -1;

	sess_let_go(s);
	s->small_sndbuf = false;
	sess_connect(s);
	if (send(s->peer, &h, sizeof(h), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(h))
		abort();
	for (int i = 0; i < 2 && n < 0; i++) {
		sess_loop_turn(s);
		n = recv(s->peer, reply, sizeof(reply), MSG_DONTWAIT);
	}
	memcpy(&h, reply, sizeof(h));
	memcpy(&feat, reply + sizeof(h), sizeof(feat));
	if (n != (ssize_t)sizeof(reply) || h.request != VHOST_USER_GET_FEATURES ||
	    !(h.flags & VHOST_USER_REPLY_MASK) ||
	    (feat & VU_BACKEND_TRANSPORT_FEATURES) != VU_BACKEND_TRANSPORT_FEATURES) {
		fprintf(stderr, "fuzz_session: a new frontend is not served (%zd bytes)\n", n);
		abort();
	}
}

static void sess_close(struct sess *s)
{
	if (verbose && s->inited) {
		struct vcd_stats st;

		vcd_get_stats(s->m.dev, &st);
		fprintf(stderr,
			"fuzz_session: %u sessions, tx ok %llu rejected %llu failed %llu timeout "
			"%llu, rx delivered %llu, bus events read %llu\n",
			vu_backend_sessions(s->m.backend), (unsigned long long)st.tx_ok,
			(unsigned long long)st.tx_rejected, (unsigned long long)st.tx_failed,
			(unsigned long long)st.tx_timeout, (unsigned long long)st.rx_delivered,
			(unsigned long long)fakeport_consumed(s->port));
	}
	if (s->inited)
		dmn_fini(&s->m);
	sess_hang_up(s);
	for (unsigned int i = 0; i < NQ; i++)
		if (s->rv[i].kick >= 0)
			close(s->rv[i].kick);
	for (unsigned int i = 0; i < s->nheld; i++)
		close(s->held[i]);
	unmap_all(s);
	if (s->ctl >= 0)
		close(s->ctl);
	fakeport_free(s->port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fds_before = fuzz_count_fds(), fds_after;
	struct sess *s = calloc(1, sizeof(*s));

	if (!s)
		abort();
	s->in.p = data;
	s->in.left = size;
	s->peer = -1;
	for (unsigned int i = 0; i < NQ; i++)
		s->rv[i].kick = -1;
	s->ctl = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->ctl < 0 || fakeport_new(&s->port) != 0)
		abort();
	fakeport_on_send(s->port, eager_repost, s);
	sess_open(s);

	for (unsigned int i = 0; i < MAX_STEPS && s->in.left > 0; i++)
		sess_step(s);
	sess_probe(s);

	sess_close(s);
	free(s);
	fds_after = fuzz_count_fds();
	if (fds_after != fds_before) {
		fprintf(stderr, "fuzz_session: %d fds before the input, %d after\n", fds_before,
			fds_after);
		abort();
	}
	return 0;
}
