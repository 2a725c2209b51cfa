/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "capture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "canfmt.h"
#include "vhost-user/vlog.h"

#define CAPTURE_BUF (512u * 1024u)
#define CAPTURE_REC_MAX 256 /* the largest record of either format */
/* Records the buffer can hold: none is shorter than 16 bytes. */
#define CAPTURE_RECS (CAPTURE_BUF / 16u)

/* pcapng: block types, options, and the SocketCAN link type. */
#define PCAPNG_SHB 0x0a0d0d0au
#define PCAPNG_IDB 0x00000001u
#define PCAPNG_EPB 0x00000006u
#define PCAPNG_MAGIC 0x1a2b3c4du
#define OPT_END 0
#define OPT_COMMENT 1
#define OPT_IF_NAME 2
#define OPT_IF_TSRESOL 9
#define OPT_EPB_FLAGS 2
#define LINKTYPE_CAN_SOCKETCAN 227
#define EPB_INBOUND 1u
#define EPB_OUTBOUND 2u
/* The SocketCAN pseudo-header's flag bits (CAN FD). */
#define SCAN_EFF 0x80000000u
#define SCAN_RTR 0x40000000u
#define SCAN_FD_BRS 0x01u
#define SCAN_FD_ESI 0x02u
#define SCAN_FD_FDF 0x04u

/*
 * The buffer holds buf[head, len): the bytes the target has not taken yet,
 * the file's header (hdr_left bytes, after an open) first, then whole
 * records whose lengths are in the ring rlen (rcount of them from rfirst;
 * rdone bytes of the oldest already written), so that a partial write to a
 * pipe still counts exactly the records that reached it.
 */
struct capture {
	int fd;
	unsigned int gen; /* bumped each time fd is closed */
	bool pcapng;
	bool stopped;
	bool regular;  /* a regular file (not a FIFO or a device) */
	bool fresh;    /* opened at start-up: emptied at the first write */
	bool waiting;  /* the target was not writable: bytes wait for it */
	bool dropping; /* in a run of dropped records */
	dev_t dev;     /* the file's identity, to find two devices sharing it */
	ino_t ino;
	char *path;
	char tx_if[32], rx_if[32];
	uint8_t *buf;
	size_t head, len, hdr_left;
	uint16_t *rlen;
	size_t rfirst, rcount, rdone;
	uint64_t written, lost, dropped;
	struct vlog_limit log_limit;
};

static size_t pad4(size_t n)
{
	return (n + 3u) & ~(size_t)3u;
}

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
	return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
	return p + 4;
}

/* An option: code, length, value padded to 4 bytes. */
static uint8_t *put_opt(uint8_t *p, uint16_t code, const void *v, uint16_t len)
{
	p = put16(p, code);
	p = put16(p, len);
	if (len)
		memcpy(p, v, len);
	memset(p + len, 0, pad4(len) - len);
	return p + pad4(len);
}

/* The file's header: a section header block and one interface block. */
static size_t pcapng_header(const struct capture *c, uint8_t *b)
{
	uint8_t *p = b, *idb;
	char name[80];
	uint8_t tsresol = 9; /* nanoseconds */
	uint64_t section_len = UINT64_MAX;

	p = put32(p, PCAPNG_SHB);
	p = put32(p, 28);
	p = put32(p, PCAPNG_MAGIC);
	p = put16(p, 1);
	p = put16(p, 0);
	memcpy(p, &section_len, 8);
	p += 8;
	p = put32(p, 28);

	idb = p;
	p = put32(p, PCAPNG_IDB);
	p += 4; /* length, below */
	p = put16(p, LINKTYPE_CAN_SOCKETCAN);
	p = put16(p, 0);
	p = put32(p, 0); /* no snap length */
	if (strcmp(c->tx_if, c->rx_if) == 0)
		snprintf(name, sizeof(name), "%s", c->tx_if);
	else
		snprintf(name, sizeof(name), "%s>%s", c->rx_if, c->tx_if);
	p = put_opt(p, OPT_IF_NAME, name, (uint16_t)strlen(name));
	p = put_opt(p, OPT_IF_TSRESOL, &tsresol, 1);
	p = put_opt(p, OPT_END, NULL, 0);
	p = put32(p, (uint32_t)(p - idb + 4));
	put32(idb + 4, (uint32_t)(p - idb));
	return (size_t)(p - b);
}

/* One enhanced packet block; its SocketCAN pseudo-header is big-endian. */
static size_t pcapng_packet(uint8_t *b, enum capture_dir dir, const char *outcome,
			    const struct cframe *f, uint64_t ns)
{
	bool fd = f->flags & CFRAME_FD;
	size_t dlen = fd ? 64 : 8, clen = strlen(outcome);
	uint32_t id = f->id | ((f->flags & CFRAME_EXT) ? SCAN_EFF : 0) |
		      ((f->flags & CFRAME_RTR) ? SCAN_RTR : 0);
	uint32_t flags = dir == CAPTURE_TX ? EPB_OUTBOUND : EPB_INBOUND;
	uint8_t *p = b, *pkt;

	if (clen > 100)
		clen = 100;
	p = put32(p, PCAPNG_EPB);
	p += 4;
	p = put32(p, 0); /* interface 0 */
	p = put32(p, (uint32_t)(ns >> 32));
	p = put32(p, (uint32_t)ns);
	p = put32(p, (uint32_t)(8 + dlen));
	p = put32(p, (uint32_t)(8 + dlen));
	pkt = p;
	memset(pkt, 0, 8 + dlen);
	pkt[0] = (uint8_t)(id >> 24);
	pkt[1] = (uint8_t)(id >> 16);
	pkt[2] = (uint8_t)(id >> 8);
	pkt[3] = (uint8_t)id;
	pkt[4] = f->len;
	if (fd)
		pkt[5] = SCAN_FD_FDF | ((f->flags & CFRAME_BRS) ? SCAN_FD_BRS : 0) |
			 ((f->flags & CFRAME_ESI) ? SCAN_FD_ESI : 0);
	if (!(f->flags & CFRAME_RTR))
		memcpy(pkt + 8, f->data, f->len > dlen ? dlen : f->len);
	p += pad4(8 + dlen);
	p = put_opt(p, OPT_EPB_FLAGS, &flags, 4);
	p = put_opt(p, OPT_COMMENT, outcome, (uint16_t)clen);
	p = put_opt(p, OPT_END, NULL, 0);
	p = put32(p, (uint32_t)(p - b + 4));
	put32(b + 4, (uint32_t)(p - b));
	return (size_t)(p - b);
}

/*
 * One line of candump -l: "(secs.usecs) iface id#data", the frame in
 * cansend's syntax by canfmt (as the frontend tool writes it). 0 for a
 * frame canfmt refuses (no bus carries it: never one the log records).
 */
static size_t candump_line(uint8_t *b, const char *ifname, const struct cframe *f, uint64_t ns)
{
	char *s = (char *)b;
	int n, len;

	n = snprintf(s, CAPTURE_REC_MAX, "(%llu.%06llu) %s ", (unsigned long long)(ns / 1000000000u),
		     (unsigned long long)(ns % 1000000000u / 1000u), ifname);
	if (n < 0 || n >= CAPTURE_REC_MAX - 1)
		return 0;
	/* The room for the frame, and one byte more for its newline. */
	len = canfmt_cansend(s + n, (size_t)(CAPTURE_REC_MAX - n - 1), f);
	if (len < 0)
		return 0;
	n += len;
	s[n++] = '\n';
	return (size_t)n;
}

static bool capture_ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The fd goes: anything watching it (the loop's epoll) must forget it. */
static void capture_close_fd(struct capture *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->gen++;
}

/*
 * Open path for appending, never blocking: O_NONBLOCK makes a FIFO without
 * a reader fail at once (ENXIO) instead of waiting for one, and makes later
 * writes to a pipe return EAGAIN instead of sleeping. O_APPEND: whoever
 * truncates the file behind our back (copytruncate) gets no hole of zeros.
 * The buffer starts again with the file's header.
 */
static int capture_start_file(struct capture *c, bool fresh)
{
	struct stat st;

	c->fd = open(c->path, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0644);
	if (c->fd < 0)
		return -errno;
	if (fstat(c->fd, &st) < 0) {
		int err = errno;

		capture_close_fd(c);
		return -err;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->regular = S_ISREG(st.st_mode);
	c->fresh = fresh && c->regular;
	c->head = c->len = c->hdr_left = 0;
	c->rfirst = c->rcount = c->rdone = 0;
	if (c->pcapng)
		c->len = c->hdr_left = pcapng_header(c, c->buf);
	c->waiting = false;
	c->stopped = false;
	return 0;
}

int capture_open(struct capture **out, const char *path, const char *tx_if, const char *rx_if)
{
	struct capture *c;
	int ret;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->path = strdup(path);
	c->buf = malloc(CAPTURE_BUF);
	c->rlen = calloc(CAPTURE_RECS, sizeof(*c->rlen));
	if (!c->path || !c->buf || !c->rlen) {
		ret = -ENOMEM;
		goto fail;
	}
	c->pcapng = !capture_ends_with(path, ".log");
	snprintf(c->tx_if, sizeof(c->tx_if), "%s", tx_if);
	snprintf(c->rx_if, sizeof(c->rx_if), "%s", rx_if);
	ret = capture_start_file(c, true);
	if (ret < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	free(c->rlen);
	free(c->buf);
	free(c->path);
	free(c);
	return ret;
}

const char *capture_strerror(const char *path, int err)
{
	struct stat st;

	if (err == -ENXIO && stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
		return "a FIFO with no reader (start its reader first)";
	if (err == -ENXIO && stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		return "a socket, not a file or FIFO";
	return strerror(-err);
}

bool capture_same_file(const struct capture *a, const struct capture *b)
{
	return a && b && a->dev == b->dev && a->ino == b->ino;
}

/* A record that found no room: counted, and each run of them logged once. */
static void capture_drop(struct capture *c)
{
	c->lost++;
	c->dropped++;
	if (c->dropping)
		return;
	c->dropping = true;
	vlog_limited(&c->log_limit, VLOG_WARN, NULL,
		     "capture to %s: the target does not keep up and %u KiB wait for it; "
		     "dropping records (%llu so far), traffic goes on",
		     c->path, CAPTURE_BUF / 1024u, (unsigned long long)c->dropped);
}

/*
 * Move what is left to the front, so that the free room is all at the end;
 * only once a quarter of the buffer is free there, so that a target taking
 * a page at a time does not cost a move of the whole buffer per page.
 */
static void capture_compact(struct capture *c)
{
	if (c->head < CAPTURE_BUF / 4u)
		return;
	memmove(c->buf, c->buf + c->head, c->len - c->head);
	c->len -= c->head;
	c->head = 0;
}

void capture_record(struct capture *c, enum capture_dir dir, bool on_bus, const char *outcome,
		const struct cframe *f, uint64_t realtime_ns)
{
	size_t n;

	if (!c->pcapng && !on_bus)
		return; /* the candump log holds what was on the bus only */
	if (c->stopped) {
		c->lost++;
		return;
	}
	if (CAPTURE_BUF - c->len < CAPTURE_REC_MAX)
		capture_compact(c);
	if (CAPTURE_BUF - c->len < CAPTURE_REC_MAX || c->rcount == CAPTURE_RECS) {
		capture_drop(c);
		return;
	}
	if (c->pcapng)
		n = pcapng_packet(c->buf + c->len, dir, outcome, f, realtime_ns);
	else
		n = candump_line(c->buf + c->len, dir == CAPTURE_TX ? c->tx_if : c->rx_if, f,
				 realtime_ns);
	if (n == 0) {
		c->lost++;
		return;
	}
	c->len += n;
	c->rlen[(c->rfirst + c->rcount) % CAPTURE_RECS] = (uint16_t)n;
	c->rcount++;
}

static void capture_stop(struct capture *c, int err)
{
	c->lost += c->rcount;
	vlog_err(NULL, "capture to %s stopped: %s; traffic goes on, %llu record(s) lost so far",
		 c->path, strerror(err), (unsigned long long)c->lost);
	c->head = c->len = c->hdr_left = 0;
	c->rcount = c->rdone = 0;
	c->waiting = false;
	c->stopped = true;
	capture_close_fd(c);
}

/* w more bytes reached the target: the header's first, then whole records. */
static void capture_advance(struct capture *c, size_t w)
{
	size_t h = w < c->hdr_left ? w : c->hdr_left;

	c->head += w;
	c->hdr_left -= h;
	w -= h;
	while (w > 0) {
		size_t left = c->rlen[c->rfirst] - c->rdone;

		if (w < left) {
			c->rdone += w;
			return;
		}
		w -= left;
		c->rdone = 0;
		c->rfirst = (c->rfirst + 1) % CAPTURE_RECS;
		c->rcount--;
		c->written++;
	}
}

int capture_flush(struct capture *c)
{
	if (!c)
		return 0;
	if (c->stopped)
		return -EIO;
	/* Start-up's file starts empty, but only once it is truly ours to write. */
	if (c->fresh) {
		c->fresh = false;
		if (ftruncate(c->fd, 0) < 0) {
			int err = errno;

			capture_stop(c, err);
			return -err;
		}
	}
	while (c->head < c->len) {
		ssize_t w = write(c->fd, c->buf + c->head, c->len - c->head);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* Kept for later: the loop waits for the target to take more. */
			c->waiting = true;
			return -EAGAIN;
		}
		if (w <= 0) {
			int err = w < 0 ? errno : ENOSPC;

			capture_stop(c, err);
			return -err;
		}
		capture_advance(c, (size_t)w);
	}
	c->head = c->len = 0;
	c->waiting = false;
	if (c->dropping) {
		c->dropping = false;
		vlog_limited(&c->log_limit, VLOG_INFO, NULL,
			     "capture to %s: caught up; %llu record(s) dropped so far", c->path,
			     (unsigned long long)c->dropped);
	}
	return 0;
}

int capture_reopen(struct capture *c)
{
	int ret;

	if (!c)
		return 0;
	if (!c->stopped) {
		/* What the old target does not take now goes nowhere. */
		(void)capture_flush(c);
		c->lost += c->rcount;
	}
	capture_close_fd(c);
	ret = capture_start_file(c, false);
	if (ret < 0) {
		c->head = c->len = c->hdr_left = 0;
		c->rcount = c->rdone = 0;
		c->waiting = false;
		c->stopped = true;
		vlog_err(NULL, "capture: reopening %s: %s; capture stopped, traffic goes on",
			 c->path, capture_strerror(c->path, ret));
		return ret;
	}
	vlog_info(NULL, "capture: %s reopened", c->path);
	return 0;
}

int capture_fd(const struct capture *c)
{
	return c ? c->fd : -1;
}

unsigned int capture_generation(const struct capture *c)
{
	return c ? c->gen : 0;
}

bool capture_waiting(const struct capture *c)
{
	return c && !c->stopped && c->waiting;
}

uint64_t capture_written(const struct capture *c)
{
	return c ? c->written : 0;
}

uint64_t capture_lost(const struct capture *c)
{
	return c ? c->lost : 0;
}

uint64_t capture_dropped(const struct capture *c)
{
	return c ? c->dropped : 0;
}

void capture_close(struct capture *c)
{
	if (!c)
		return;
	/* Nothing recorded since start-up: the file stays as it was. */
	if (!c->stopped && !(c->fresh && c->rcount == 0))
		(void)capture_flush(c);
	if (!c->stopped)
		c->lost += c->rcount;
	capture_close_fd(c);
	free(c->rlen);
	free(c->buf);
	free(c->path);
	free(c);
}
