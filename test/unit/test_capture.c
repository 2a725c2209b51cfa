/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The capture writer: pcapng blocks read back field by field, candump log
 * lines exactly, a full disk (/dev/full) stopping it with records counted
 * lost, and reopening after rotation. Never blocking: a FIFO without a
 * reader refused at once, one whose reader stopped reading filling the
 * bounded buffer and then dropping (counted), every record that reached it
 * whole. One file for two captures found however it is spelled, appending
 * after an outside truncation, start-up's emptying only at the first write.
 * (Wireshark's own reading is the VM tier's test, with tshark.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "capture.h"

static size_t slurp(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static struct cframe frame(uint32_t id, uint8_t flags, uint8_t len)
{
	struct cframe f = {.id = id, .flags = flags, .len = len};

	for (unsigned int i = 0; i < len; i++)
		f.data[i] = (uint8_t)(0x10 + i);
	return f;
}

/* The option of code `code` in [p, end), or NULL; its length in *len. */
static const uint8_t *find_opt(const uint8_t *p, const uint8_t *end, uint16_t code, uint16_t *len)
{
	while (p + 4 <= end) {
		uint16_t c = get16(p), l = get16(p + 2);

		if (c == 0)
			return NULL;
		if (c == code) {
			*len = l;
			return p + 4;
		}
		p += 4 + ((l + 3u) & ~3u);
	}
	return NULL;
}

static void test_pcapng_blocks(void **state)
{
	char path[] = "/tmp/vdc-cap-XXXXXX";
	static uint8_t b[1 << 16];
	struct cframe c1 = frame(0x123, 0, 3), c2 = frame(0x18daf1aa, CFRAME_EXT, 8);
	struct cframe c3 = frame(0x456, CFRAME_FD | CFRAME_BRS, 12);
	struct capture *c;
	size_t n, off;
	int fd = mkstemp(path);
	struct {
		uint32_t id, dir;
		uint8_t len, fdflags;
		const char *comment;
		size_t datalen;
	} want[] = {
	    {0x123, 2, 3, 0, "sent", 8},
	    {0x80000000u | 0x18daf1aa, 1, 8, 0, "dropped: backlog full", 8},
	    {0x456, 2, 12, 0x05, "denied", 64},
	};

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(capture_open(&c, path, "vcan0", "vcan0"), 0);
	capture_record(c, CAPTURE_TX, true, "sent", &c1, 1000000001234ull);
	capture_record(c, CAPTURE_RX, true, "dropped: backlog full", &c2, 1000000002000ull);
	capture_record(c, CAPTURE_TX, false, "denied", &c3, 1000000003000ull);
	assert_int_equal(capture_flush(c), 0);
	assert_int_equal(capture_written(c), 3);
	assert_int_equal(capture_lost(c), 0);
	capture_close(c);

	n = slurp(path, b, sizeof(b));
	/* Section header: type, magic, version 1.0; then one interface, SocketCAN, ns. */
	assert_int_equal(get32(b), 0x0a0d0d0a);
	assert_int_equal(get32(b + 8), 0x1a2b3c4d);
	assert_int_equal(get16(b + 12), 1);
	off = get32(b + 4);
	assert_int_equal(get32(b + off), 1);
	assert_int_equal(get16(b + off + 8), 227);
	{
		uint16_t l;
		const uint8_t *o = find_opt(b + off + 16, b + off + get32(b + off + 4) - 4, 9, &l);

		assert_non_null(o);
		assert_int_equal(*o, 9);
		o = find_opt(b + off + 16, b + off + get32(b + off + 4) - 4, 2, &l);
		assert_non_null(o);
		assert_memory_equal(o, "vcan0", 5);
	}
	off += get32(b + off + 4);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const uint8_t *e = b + off, *pkt = e + 28, *end;
		uint32_t blen = get32(e + 4), caplen = get32(e + 20);
		uint16_t l;
		const uint8_t *o;

		assert_true(off + blen <= n);
		assert_int_equal(get32(e), 6);
		assert_int_equal(get32(e + blen - 4), blen);
		assert_int_equal(caplen, 8 + want[i].datalen);
		/* The SocketCAN pseudo-header: big-endian id, length, FD flags. */
		assert_int_equal((uint32_t)pkt[0] << 24 | (uint32_t)pkt[1] << 16 |
				     (uint32_t)pkt[2] << 8 | pkt[3],
				 want[i].id);
		assert_int_equal(pkt[4], want[i].len);
		assert_int_equal(pkt[5], want[i].fdflags);
		assert_int_equal(pkt[8], 0x10);
		end = e + blen - 4;
		o = find_opt(pkt + ((caplen + 3u) & ~3u), end, 2, &l);
		assert_non_null(o);
		assert_int_equal(get32(o), want[i].dir);
		o = find_opt(pkt + ((caplen + 3u) & ~3u), end, 1, &l);
		assert_non_null(o);
		assert_int_equal(l, strlen(want[i].comment));
		assert_memory_equal(o, want[i].comment, l);
		off += blen;
	}
	/* The timestamp of the first: ns since the epoch, high then low word. */
	{
		size_t first = get32(b + 4) + get32(b + get32(b + 4) + 4);
		uint64_t ts = (uint64_t)get32(b + first + 12) << 32 | get32(b + first + 16);

		assert_int_equal(ts, 1000000001234ull);
	}
	assert_int_equal(off, n);
	unlink(path);
}

/* candump -l lines, what was on the bus only; canplayer reads these. */
static void test_candump_log(void **state)
{
	char path[] = "/tmp/vdc-cap-XXXXXX.log";
	char buf[4096] = {0};
	struct cframe c1 = frame(0x123, 0, 3), c2 = frame(0x18daf1aa, CFRAME_EXT, 2);
	struct cframe c3 = frame(0x456, CFRAME_FD | CFRAME_BRS, 12),
		      c4 = frame(0x7ff, CFRAME_RTR, 4);
	struct cframe c5 = frame(0x111, 0, 0);
	struct capture *c;
	int fd = mkstemps(path, 4);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(capture_open(&c, path, "vcan1", "vcan0"), 0);
	capture_record(c, CAPTURE_TX, true, "sent", &c1, 1436509052249713000ull);
	capture_record(c, CAPTURE_RX, true, "delivered", &c2, 1436509052250000999ull);
	capture_record(c, CAPTURE_TX, false, "denied", &c5, 1436509052250001000ull); /* not on the bus */
	capture_record(c, CAPTURE_TX, true, "sent", &c3, 1436509052300000000ull);
	capture_record(c, CAPTURE_RX, true, "delivered", &c4, 1436509052400000000ull);
	capture_close(c);
	slurp(path, (uint8_t *)buf, sizeof(buf) - 1);
	assert_string_equal(buf, "(1436509052.249713) vcan1 123#101112\n"
				 "(1436509052.250000) vcan0 18DAF1AA#1011\n"
				 "(1436509052.300000) vcan1 456##1101112131415161718191A1B\n"
				 "(1436509052.400000) vcan0 7FF#R4\n");
	unlink(path);
}

/* A full disk: the capture stops, says so once, counts what is lost. */
static void test_disk_full(void **state)
{
	struct cframe f = frame(0x123, 0, 8);
	struct capture *c;

	(void)state;
	assert_int_equal(capture_open(&c, "/dev/full", "vcan0", "vcan0"), 0);
	capture_record(c, CAPTURE_TX, true, "sent", &f, 1);
	capture_record(c, CAPTURE_TX, true, "sent", &f, 2);
	assert_int_equal(capture_flush(c), -ENOSPC);
	assert_int_equal(capture_written(c), 0);
	assert_int_equal(capture_lost(c), 2);
	capture_record(c, CAPTURE_RX, true, "delivered", &f, 3);
	assert_int_equal(capture_lost(c), 3);
	assert_int_equal(capture_flush(c), -EIO);
	capture_close(c);
	/* A file that cannot be created is an error at open. */
	assert_int_equal(capture_open(&c, "/nonexistent/dir/x.pcapng", "a", "a"), -ENOENT);
}

/* SIGHUP after rotation: a new file with its own header; the old one stays whole. */
static void test_reopen(void **state)
{
	char dir[] = "/tmp/vdc-cap-XXXXXX", path[64], moved[64];
	static uint8_t b[4096];
	struct cframe f = frame(0x123, 0, 1);
	struct capture *c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/now.log", dir);
	snprintf(moved, sizeof(moved), "%s/old.log", dir);
	assert_int_equal(capture_open(&c, path, "vcan0", "vcan0"), 0);
	capture_record(c, CAPTURE_TX, true, "sent", &f, 1000000000ull);
	assert_int_equal(capture_flush(c), 0);
	assert_int_equal(rename(path, moved), 0);
	capture_record(c, CAPTURE_TX, true, "sent", &f, 2000000000ull);
	assert_int_equal(capture_reopen(c), 0);
	f.id = 0x124;
	capture_record(c, CAPTURE_TX, true, "sent", &f, 3000000000ull);
	assert_int_equal(capture_flush(c), 0);
	b[slurp(moved, b, sizeof(b) - 1)] = 0;
	assert_string_equal((char *)b, "(1.000000) vcan0 123#10\n(2.000000) vcan0 123#10\n");
	b[slurp(path, b, sizeof(b) - 1)] = 0;
	assert_string_equal((char *)b, "(3.000000) vcan0 124#10\n");
	/* Reopening where nothing can be created stops it; traffic goes on. */
	unlink(path);
	unlink(moved);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(capture_reopen(c), -ENOENT);
	capture_record(c, CAPTURE_TX, true, "sent", &f, 4000000000ull);
	assert_int_equal(capture_lost(c), 1);
	assert_int_equal(capture_written(c), 3);
	capture_close(c);
}

/* A call that would block the loop is killed by this guard, failing the test. */
#define BLOCK_GUARD_S 10

/* A FIFO nobody reads: refused at once, in words, not waited on. */
static void test_fifo_without_reader(void **state)
{
	char dir[] = "/tmp/vdc-cap-XXXXXX", path[64];
	struct capture *c = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(BLOCK_GUARD_S);
	assert_int_equal(capture_open(&c, path, "vcan0", "vcan0"), -ENXIO);
	alarm(0);
	assert_null(c);
	assert_non_null(strstr(capture_strerror(path, -ENXIO), "no reader"));
	unlink(path);
	rmdir(dir);
}

/* Read what the FIFO holds now into buf at *len; bytes read. */
static size_t drain(int rfd, char *buf, size_t cap, size_t *len)
{
	size_t got = 0;
	ssize_t n;

	while (*len < cap && (n = read(rfd, buf + *len, cap - *len)) > 0) {
		*len += (size_t)n;
		got += (size_t)n;
	}
	return got;
}

/*
 * A FIFO whose reader stopped reading: the flushes never block, the buffer
 * fills to its bound, then records are dropped and counted; once the
 * reader reads again everything kept arrives, whole records only, and
 * written + dropped is every record.
 */
static void test_fifo_stalled_reader(void **state)
{
	char dir[] = "/tmp/vdc-cap-XXXXXX", path[64];
	static char got[4u << 20];
	struct cframe f = frame(0x123, 0, 8);
	struct pollfd pfd;
	unsigned int total = 0, lines = 0, prev = 0;
	size_t len = 0;
	struct capture *c;
	int rfd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo.log", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(rfd >= 0);
	assert_int_equal(capture_open(&c, path, "vcan0", "vcan0"), 0);
	/* Loop turns of 64 frames, each ending with the flush; nobody reads. */
	alarm(BLOCK_GUARD_S);
	for (unsigned int turn = 0; turn < 400; turn++) {
		for (unsigned int i = 0; i < 64; i++, total++)
			capture_record(c, CAPTURE_TX, true, "sent", &f, 1000000000ull + total * 1000ull);
		(void)capture_flush(c);
	}
	assert_int_equal(capture_flush(c), -EAGAIN);
	assert_true(capture_waiting(c));
	assert_true(capture_dropped(c) > 0);
	assert_int_equal(capture_lost(c), capture_dropped(c));
	/* What the loop waits for: the fd is not writable until the reader reads. */
	pfd = (struct pollfd){.fd = capture_fd(c), .events = POLLOUT};
	assert_int_equal(poll(&pfd, 1, 0), 0);

	/* A reader taking a page at a time while frames go on: kept, dropped, counted. */
	for (unsigned int turn = 0; turn < 400; turn++) {
		ssize_t n = read(rfd, got + len, 4096);

		if (n > 0)
			len += (size_t)n;
		for (unsigned int i = 0; i < 64; i++, total++)
			capture_record(c, CAPTURE_TX, true, "sent", &f, 1000000000ull + total * 1000ull);
		(void)capture_flush(c);
	}
	alarm(0);

	/* The reader reads again: what was kept arrives, then the capture goes on. */
	for (unsigned int tries = 0; capture_waiting(c) && tries < 10000; tries++) {
		drain(rfd, got, sizeof(got), &len);
		(void)capture_flush(c);
	}
	assert_false(capture_waiting(c));
	capture_record(c, CAPTURE_RX, true, "delivered", &f, 1000000000ull + total * 1000ull);
	total++;
	assert_int_equal(capture_flush(c), 0);
	drain(rfd, got, sizeof(got), &len);
	assert_true(len < sizeof(got));
	assert_int_equal(capture_written(c) + capture_dropped(c), total);
	/*
	 * Whole records only, as many as were counted written, each exactly as
	 * recorded (the time says which), in order (gaps are the drops).
	 */
	assert_int_equal(got[len - 1], '\n');
	got[len] = '\0';
	for (char *p = got, *save = NULL, *l; (l = strtok_r(p, "\n", &save)); p = NULL) {
		char want[64];
		unsigned int k;

		assert_int_equal(sscanf(l, "(1.%06u)", &k), 1);
		assert_true(lines == 0 || k > prev);
		snprintf(want, sizeof(want), "(1.%06u) vcan0 123#1011121314151617", k);
		assert_string_equal(l, want);
		prev = k;
		lines++;
	}
	assert_int_equal(lines, capture_written(c));
	assert_int_equal(prev, total - 1);

	/* The reader gone: the capture stops (EPIPE), counted, traffic goes on. */
	close(rfd);
	capture_record(c, CAPTURE_TX, true, "sent", &f, 3000000000ull);
	assert_int_equal(capture_flush(c), -EPIPE);
	assert_int_equal(capture_lost(c), capture_dropped(c) + 1);
	assert_int_equal(capture_fd(c), -1);
	capture_close(c);
	unlink(path);
	rmdir(dir);
}

/* The same file under two names is one file; another file is not. */
static void test_same_file(void **state)
{
	char dir[] = "/tmp/vdc-cap-XXXXXX", a[64], a2[80], b[64];
	struct capture *c1, *c2, *c3;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/a.pcapng", dir);
	snprintf(a2, sizeof(a2), "%s/./../%s/a.pcapng", dir, strrchr(dir, '/') + 1);
	snprintf(b, sizeof(b), "%s/b.pcapng", dir);
	assert_int_equal(capture_open(&c1, a, "vcan0", "vcan0"), 0);
	assert_int_equal(capture_open(&c2, a2, "vcan1", "vcan1"), 0);
	assert_int_equal(capture_open(&c3, b, "vcan1", "vcan1"), 0);
	assert_true(capture_same_file(c1, c2));
	assert_false(capture_same_file(c1, c3));
	assert_false(capture_same_file(c1, NULL));
	capture_close(c1);
	capture_close(c2);
	capture_close(c3);
	unlink(a);
	unlink(b);
	rmdir(dir);
}

/*
 * Start-up empties the file only at the first write: a start-up refused
 * after opening it (another device's file) leaves it as it was.
 */
static void test_emptied_at_first_write(void **state)
{
	char path[] = "/tmp/vdc-cap-XXXXXX.log";
	char buf[256];
	struct cframe f = frame(0x123, 0, 1);
	struct capture *c;
	int fd = mkstemps(path, 4);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "earlier run\n", 12), 12);
	close(fd);
	assert_int_equal(capture_open(&c, path, "vcan0", "vcan0"), 0);
	capture_close(c);
	slurp(path, (uint8_t *)buf, sizeof(buf));
	assert_memory_equal(buf, "earlier run\n", 12);

	assert_int_equal(capture_open(&c, path, "vcan0", "vcan0"), 0);
	capture_record(c, CAPTURE_TX, true, "sent", &f, 1000000000ull);
	assert_int_equal(capture_flush(c), 0);
	capture_close(c);
	buf[slurp(path, (uint8_t *)buf, sizeof(buf) - 1)] = 0;
	assert_string_equal(buf, "(1.000000) vcan0 123#10\n");
	unlink(path);
}

/* Truncated from outside (copytruncate): the next record goes at the start, no hole. */
static void test_append_after_truncation(void **state)
{
	char path[] = "/tmp/vdc-cap-XXXXXX.log";
	char buf[256];
	struct cframe f = frame(0x123, 0, 1);
	struct stat st;
	struct capture *c;
	int fd = mkstemps(path, 4);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(capture_open(&c, path, "vcan0", "vcan0"), 0);
	for (unsigned int i = 0; i < 20; i++)
		capture_record(c, CAPTURE_TX, true, "sent", &f, 1000000000ull);
	assert_int_equal(capture_flush(c), 0);
	assert_int_equal(truncate(path, 0), 0);
	f.id = 0x124;
	capture_record(c, CAPTURE_TX, true, "sent", &f, 2000000000ull);
	assert_int_equal(capture_flush(c), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, strlen("(2.000000) vcan0 124#10\n"));
	buf[slurp(path, (uint8_t *)buf, sizeof(buf) - 1)] = 0;
	assert_string_equal(buf, "(2.000000) vcan0 124#10\n");
	capture_close(c);
	unlink(path);
}

/*
 * SIGHUP's reopen never blocks either: rotated onto a FIFO nobody reads,
 * it stops the capture (counted); the next reopen, with a reader, goes on.
 */
static void test_reopen_fifo(void **state)
{
	char dir[] = "/tmp/vdc-cap-XXXXXX", path[64];
	char buf[256] = {0};
	struct cframe f = frame(0x123, 0, 1);
	struct capture *c;
	int rfd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/now.log", dir);
	assert_int_equal(capture_open(&c, path, "vcan0", "vcan0"), 0);
	capture_record(c, CAPTURE_TX, true, "sent", &f, 1000000000ull);
	assert_int_equal(capture_flush(c), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(BLOCK_GUARD_S);
	assert_int_equal(capture_reopen(c), -ENXIO);
	alarm(0);
	capture_record(c, CAPTURE_TX, true, "sent", &f, 2000000000ull);
	assert_int_equal(capture_lost(c), 1);
	rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(rfd >= 0);
	assert_int_equal(capture_reopen(c), 0);
	capture_record(c, CAPTURE_TX, true, "sent", &f, 3000000000ull);
	assert_int_equal(capture_flush(c), 0);
	assert_int_equal(read(rfd, buf, sizeof(buf) - 1), 24);
	assert_string_equal(buf, "(3.000000) vcan0 123#10\n");
	assert_int_equal(capture_written(c), 2);
	capture_close(c);
	close(rfd);
	unlink(path);
	rmdir(dir);
}

/* A reopen of a file that was not moved keeps it and appends a new pcapng section. */
static void test_reopen_unmoved_appends(void **state)
{
	char path[] = "/tmp/vdc-cap-XXXXXX";
	static uint8_t b[4096];
	struct cframe f = frame(0x123, 0, 1);
	size_t n, off = 0;
	unsigned int shb = 0, epb = 0;
	struct capture *c;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(capture_open(&c, path, "vcan0", "vcan0"), 0);
	capture_record(c, CAPTURE_TX, true, "sent", &f, 1);
	assert_int_equal(capture_flush(c), 0);
	assert_int_equal(capture_reopen(c), 0);
	capture_record(c, CAPTURE_TX, true, "sent", &f, 2);
	capture_close(c);
	n = slurp(path, b, sizeof(b));
	while (off + 8 <= n) {
		shb += get32(b + off) == 0x0a0d0d0a;
		epb += get32(b + off) == 6;
		off += get32(b + off + 4);
	}
	assert_int_equal(off, n);
	assert_int_equal(shb, 2);
	assert_int_equal(epb, 2);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pcapng_blocks),
	    cmocka_unit_test(test_candump_log),
	    cmocka_unit_test(test_disk_full),
	    cmocka_unit_test(test_reopen),
	    cmocka_unit_test(test_fifo_without_reader),
	    cmocka_unit_test(test_fifo_stalled_reader),
	    cmocka_unit_test(test_same_file),
	    cmocka_unit_test(test_emptied_at_first_write),
	    cmocka_unit_test(test_append_after_truncation),
	    cmocka_unit_test(test_reopen_fifo),
	    cmocka_unit_test(test_reopen_unmoved_appends),
	};

	/* A FIFO whose reader left gives EPIPE, as in the daemon. */
	signal(SIGPIPE, SIG_IGN);

	return cmocka_run_group_tests(tests, NULL, NULL);
}
