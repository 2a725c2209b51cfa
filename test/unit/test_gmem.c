/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Guest memory: mapping from memfds, validation, translation bounds, fd hygiene. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tfd.h"
#include "vhost-user/gmem.h"

#define PAGE 4096u

static int make_memfd(size_t size)
{
	int fd = memfd_create("gmem-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static struct vhost_user_mem_region region(uint64_t gpa, uint64_t size, uint64_t uaddr,
					   uint64_t off)
{
	struct vhost_user_mem_region r = {
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = uaddr,
	    .mmap_offset = off,
	};
	return r;
}

/* Two regions whose gpa differs from uaddr, the second at a non-zero fd offset. */
static void test_two_regions_translate(void **state)
{
	struct gmem m;
	struct vhost_user_mem_region r0 = region(0x0, 4 * PAGE, 0x7f0000000000ull, 0);
	struct vhost_user_mem_region r1 = region(0x100000, 2 * PAGE, 0x7f1000000000ull, 3 * PAGE);
	int fd0 = make_memfd(4 * PAGE), fd1 = make_memfd(5 * PAGE);
	uint8_t byte = 0;
	uint64_t len;
	uint8_t *p;

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_add(&m, &r0, fd0), 0);
	assert_int_equal(gmem_add(&m, &r1, fd1), 0);
	assert_int_equal(m.nregions, 2);

	/* gpa 0x100010 is byte 3*PAGE + 0x10 of fd1. */
	len = 64;
	p = gmem_gpa_to_host(&m, 0x100010, &len);
	assert_non_null(p);
	assert_int_equal(len, 64);
	*p = 0xab;
	assert_int_equal(pread(fd1, &byte, 1, 3 * PAGE + 0x10), 1);
	assert_int_equal(byte, 0xab);

	/* The same byte by user address. */
	len = 1;
	assert_ptr_equal(gmem_uva_to_host(&m, 0x7f1000000010ull, &len), p);
	/* A user address is not a gpa and vice versa. */
	len = 1;
	assert_null(gmem_gpa_to_host(&m, 0x7f1000000010ull, &len));
	len = 1;
	assert_null(gmem_uva_to_host(&m, 0x100010, &len));

	/* Region 0, by gpa, backed at offset 0 of fd0. */
	len = 1;
	p = gmem_gpa_to_host(&m, 2 * PAGE + 5, &len);
	assert_non_null(p);
	*p = 0x5a;
	assert_int_equal(pread(fd0, &byte, 1, 2 * PAGE + 5), 1);
	assert_int_equal(byte, 0x5a);
	assert_ptr_equal(gmem_uva_range(&m, 0x7f0000000000ull + 2 * PAGE + 5, 1), p);
	assert_ptr_equal(gmem_gpa_range(&m, 2 * PAGE + 5, 1), p);

	gmem_clear(&m);
	assert_int_equal(m.nregions, 0);
	len = 1;
	assert_null(gmem_gpa_to_host(&m, 0x100010, &len));
	close(fd0);
	close(fd1);
}

/* The contiguous length stops at the end of the region; the next region continues. */
static void test_crossing_regions(void **state)
{
	struct gmem m;
	struct vhost_user_mem_region r0 = region(0x10000, PAGE, 0x1000000, 0);
	struct vhost_user_mem_region r1 = region(0x11000, PAGE, 0x3000000, 0);
	int fd0 = make_memfd(PAGE), fd1 = make_memfd(PAGE);
	uint8_t *p0, *p1;
	uint64_t len;

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_add(&m, &r0, fd0), 0);
	assert_int_equal(gmem_add(&m, &r1, fd1), 0);

	len = 256;
	p0 = gmem_gpa_to_host(&m, 0x11000 - 100, &len);
	assert_non_null(p0);
	assert_int_equal(len, 100);
	len = 156;
	p1 = gmem_gpa_to_host(&m, 0x11000, &len);
	assert_non_null(p1);
	assert_int_equal(len, 156);
	assert_ptr_equal(p1, m.regions[1].host);

	/* A range across the boundary is in no single region. */
	assert_null(gmem_gpa_range(&m, 0x11000 - 100, 256));
	assert_non_null(gmem_gpa_range(&m, 0x11000 - 100, 100));
	/* By user address the two are not even adjacent. */
	len = 256;
	assert_non_null(gmem_uva_to_host(&m, 0x1000000 + PAGE - 10, &len));
	assert_int_equal(len, 10);
	len = 1;
	assert_null(gmem_uva_to_host(&m, 0x1000000 + PAGE, &len));

	gmem_clear(&m);
	close(fd0);
	close(fd1);
}

static void test_translation_bounds(void **state)
{
	static uint8_t backing[256];
	struct gmem m;
	struct vhost_user_mem_region r = region(1000, sizeof(backing), 5000, 0);
	uint64_t len;

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_add_host(&m, &r, backing), 0);

	len = 1;
	assert_null(gmem_gpa_to_host(&m, 999, &len));
	len = 1;
	assert_ptr_equal(gmem_gpa_to_host(&m, 1000, &len), backing);
	len = UINT64_MAX;
	assert_ptr_equal(gmem_gpa_to_host(&m, 1255, &len), backing + 255);
	assert_int_equal(len, 1);
	len = 1;
	assert_null(gmem_gpa_to_host(&m, 1256, &len));
	len = 1;
	assert_null(gmem_gpa_to_host(&m, UINT64_MAX, &len));

	assert_ptr_equal(gmem_gpa_range(&m, 1000, 256), backing);
	assert_null(gmem_gpa_range(&m, 1000, 257));
	assert_null(gmem_gpa_range(&m, 1001, 256));
	assert_null(gmem_gpa_range(&m, 1000, 0));
	assert_null(gmem_gpa_range(&m, 1100, UINT64_MAX));
	assert_ptr_equal(gmem_uva_range(&m, 5000, 256), backing);
	assert_null(gmem_uva_range(&m, 4999, 2));
	assert_null(gmem_uva_range(&m, 5255, 2));
	gmem_clear(&m);
}

static void test_reject_invalid(void **state)
{
	static uint8_t backing[PAGE];
	struct gmem m;
	struct vhost_user_mem_region ok = region(0x10000, 0x1000, 0x90000, 0);
	struct {
		struct vhost_user_mem_region r;
		int err;
	} cases[] = {
	    {region(0x20000, 0, 0xa0000, 0), -EINVAL},
	    {region(UINT64_MAX - 0xfff, 0x1000, 0xa0000, 0), -EINVAL},
	    {region(0x20000, 0x1000, UINT64_MAX - 0x7ff, 0), -EINVAL},
	    {region(0x20000, 0x1000, 0xa0000, UINT64_MAX - 0xff), -EINVAL},
	    {region(0x20000, UINT64_MAX, 0xa0000, 0), -EINVAL},
	    /* gpa overlaps the existing region (start, middle, around). */
	    {region(0x10000, 0x1000, 0xa0000, 0), -EINVAL},
	    {region(0x10fff, 0x1000, 0xa0000, 0), -EINVAL},
	    {region(0x0f000, 0x3000, 0xa0000, 0), -EINVAL},
	    {region(0x0f001, 0x1000, 0xa0000, 0), -EINVAL},
	    /* uaddr overlaps, gpa does not. */
	    {region(0x20000, 0x1000, 0x90800, 0), -EINVAL},
	    {region(0x20000, 0x1000, 0x8f001, 0), -EINVAL},
	};
	int fd = make_memfd(PAGE);
	int fds = tfd_count();

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_add_host(&m, &ok, backing), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("case %zu\n", i);
		assert_int_equal(gmem_add(&m, &cases[i].r, fd), cases[i].err);
		assert_int_equal(gmem_add_host(&m, &cases[i].r, backing), cases[i].err);
		assert_int_equal(m.nregions, 1);
	}
	/* Adjacent on both sides is fine. */
	struct vhost_user_mem_region below = region(0x0f000, 0x1000, 0x8f000, 0);
	struct vhost_user_mem_region above = region(0x11000, 0x1000, 0x91000, 0);
	assert_int_equal(gmem_add(&m, &below, fd), 0);
	assert_int_equal(gmem_add(&m, &above, fd), 0);
	assert_int_equal(m.nregions, 3);
	/* A negative fd or one that cannot be mapped. */
	struct vhost_user_mem_region fresh = region(0x40000, 0x1000, 0xc0000, 0);
	assert_int_equal(gmem_add(&m, &fresh, -1), -EBADF);
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_true(gmem_add(&m, &fresh, p[0]) < 0);
	close(p[0]);
	close(p[1]);
	assert_int_equal(m.nregions, 3);
	gmem_clear(&m);
	assert_int_equal(tfd_count(), fds);
	close(fd);
}

static void test_full_table(void **state)
{
	static uint8_t backing[PAGE];
	struct gmem m;
	struct vhost_user_mem_region r;
	int fd = make_memfd(PAGE);

	(void)state;
	gmem_init(&m);
	for (unsigned int i = 0; i < GMEM_MAX_REGIONS; i++) {
		r = region(i * 0x10000ull, 0x1000, 0x1000000 + i * 0x10000ull, 0);
		if (i % 2)
			assert_int_equal(gmem_add(&m, &r, fd), 0);
		else
			assert_int_equal(gmem_add_host(&m, &r, backing), 0);
	}
	assert_int_equal(m.nregions, GMEM_MAX_REGIONS);
	r = region(0x10000000, 0x1000, 0x20000000, 0);
	assert_int_equal(gmem_add(&m, &r, fd), -ENOSPC);
	assert_int_equal(gmem_add_host(&m, &r, backing), -ENOSPC);
	/* The last region still translates. */
	assert_non_null(gmem_gpa_range(&m, (GMEM_MAX_REGIONS - 1) * 0x10000ull, 0x1000));
	/* Freeing a slot makes room. */
	r = region(0, 0x1000, 0x1000000, 0);
	assert_int_equal(gmem_remove(&m, &r), 0);
	r = region(0x10000000, 0x1000, 0x20000000, 0);
	assert_int_equal(gmem_add(&m, &r, fd), 0);
	gmem_clear(&m);
	close(fd);
}

static void test_remove(void **state)
{
	struct gmem m;
	struct vhost_user_mem_region r0 = region(0x0, PAGE, 0x100000, 0);
	struct vhost_user_mem_region r1 = region(0x10000, PAGE, 0x200000, PAGE);
	struct vhost_user_mem_region r2 = region(0x20000, PAGE, 0x300000, 0);
	struct vhost_user_mem_region q;
	int fd = make_memfd(2 * PAGE);
	unsigned char vec;
	void *base;

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_add(&m, &r0, fd), 0);
	assert_int_equal(gmem_add(&m, &r1, fd), 0);
	assert_int_equal(gmem_add(&m, &r2, fd), 0);
	base = m.regions[1].mmap_base;
	assert_int_equal(mincore(base, PAGE, &vec), 0);

	/* Each of gpa, size and uaddr must match. */
	q = region(0x10000, 2 * PAGE, 0x200000, PAGE);
	assert_int_equal(gmem_remove(&m, &q), -ENOENT);
	q = region(0x11000, PAGE, 0x200000, PAGE);
	assert_int_equal(gmem_remove(&m, &q), -ENOENT);
	q = region(0x10000, PAGE, 0x201000, PAGE);
	assert_int_equal(gmem_remove(&m, &q), -ENOENT);
	assert_int_equal(m.nregions, 3);
	/* mmap_offset is ignored. */
	q = region(0x10000, PAGE, 0x200000, 12345);
	assert_int_equal(gmem_remove(&m, &q), 0);
	assert_int_equal(m.nregions, 2);
	/* Unmapped. */
	assert_int_equal(mincore(base, PAGE, &vec), -1);
	assert_int_equal(errno, ENOMEM);
	assert_null(gmem_gpa_range(&m, 0x10000, 1));
	assert_non_null(gmem_gpa_range(&m, 0x0, PAGE));
	assert_non_null(gmem_gpa_range(&m, 0x20000, PAGE));
	assert_int_equal(gmem_remove(&m, &q), -ENOENT);
	/* The freed range can be added again. */
	assert_int_equal(gmem_add(&m, &r1, fd), 0);
	assert_non_null(gmem_uva_range(&m, 0x200000, PAGE));
	gmem_clear(&m);
	close(fd);
}

/* The fd belongs to the caller: neither add nor clear closes or duplicates it. */
static void test_fd_hygiene(void **state)
{
	struct gmem m;
	struct vhost_user_mem_region r = region(0, 2 * PAGE, 0x100000, 0);
	int fd = make_memfd(2 * PAGE);
	int before = tfd_count();
	void *base;
	unsigned char vec[2];

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_add(&m, &r, fd), 0);
	assert_int_equal(tfd_count(), before);
	assert_true(fcntl(fd, F_GETFD) >= 0);
	base = m.regions[0].mmap_base;
	assert_non_null(base);
	assert_true(m.regions[0].mmap_len >= 2 * PAGE);
	/* Memory stays mapped after the caller closes the fd. */
	close(fd);
	uint8_t *p = gmem_gpa_range(&m, PAGE, 1);
	assert_non_null(p);
	*p = 1;
	gmem_clear(&m);
	assert_int_equal(mincore(base, 2 * PAGE, vec), -1);
	assert_int_equal(tfd_count(), before - 1);
}

/* A region must lie inside its file: one page past the end would fault. */
static void test_region_past_end_of_file(void **state)
{
	struct gmem m;
	struct vhost_user_mem_region r = region(0, 4 * PAGE, 0x100000, PAGE);
	int fd = make_memfd(4 * PAGE);

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_add(&m, &r, fd), -EINVAL);
	assert_non_null(strstr(gmem_why(&m), "end of its file"));
	assert_int_equal(m.nregions, 0);
	/* Growing the file to offset + size makes it fit exactly. */
	assert_int_equal(ftruncate(fd, 5 * PAGE), 0);
	assert_int_equal(gmem_add(&m, &r, fd), 0);
	assert_string_equal(gmem_why(&m), "");
	gmem_clear(&m);
	close(fd);
}

/* Guest RAM is a file or a memory device; pipes, sockets, eventfds are not. */
static void test_region_fd_not_memory(void **state)
{
	struct gmem m;
	struct vhost_user_mem_region r = region(0, PAGE, 0x100000, 0);
	int p[2], sv[2], efd = eventfd(0, EFD_CLOEXEC), fds;

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_true(efd >= 0);
	fds = tfd_count();
	gmem_init(&m);
	int bad[] = {p[0], p[1], sv[0], efd};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(gmem_add(&m, &r, bad[i]), -EINVAL);
		assert_non_null(strstr(gmem_why(&m), "not a file"));
	}
	assert_int_equal(m.nregions, 0);
	assert_int_equal(tfd_count(), fds);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	close(efd);
}

/* Only the pages from the offset (rounded down) on are mapped. */
static void test_map_from_offset(void **state)
{
	struct gmem m;
	struct vhost_user_mem_region r = region(0x8000, PAGE, 0x100000, 6 * PAGE + 0x10);
	int fd = make_memfd(8 * PAGE);
	uint8_t byte = 0x3c;
	uint8_t *p;

	(void)state;
	gmem_init(&m);
	assert_int_equal(pwrite(fd, &byte, 1, 6 * PAGE + 0x10), 1);
	assert_int_equal(gmem_add(&m, &r, fd), 0);
	/* 0x10 bytes before the region plus one page: two pages, not seven. */
	assert_int_equal(m.regions[0].mmap_len, 2 * PAGE);
	assert_ptr_equal(m.regions[0].host, (uint8_t *)m.regions[0].mmap_base + 0x10);
	p = gmem_gpa_range(&m, 0x8000, PAGE);
	assert_non_null(p);
	assert_int_equal(p[0], 0x3c);
	gmem_clear(&m);
	close(fd);
}

/*
 * The frontend truncates the file under a live mapping: the next access
 * would be SIGBUS. It reads zeros instead, the region is marked lost, and
 * the table can still be cleared.
 */
static void test_file_shrinks_under_mapping(void **state)
{
	struct gmem m;
	struct vhost_user_mem_region r0 = region(0, 2 * PAGE, 0x100000, 0);
	struct vhost_user_mem_region r1 = region(0x10000, PAGE, 0x200000, 0);
	int fd0 = make_memfd(2 * PAGE), fd1 = make_memfd(PAGE);
	unsigned int faults = gmem_fault_count();
	volatile uint8_t *p;
	uint8_t one = 1;

	(void)state;
	gmem_init(&m);
	assert_int_equal(pwrite(fd0, &one, 1, PAGE), 1);
	assert_int_equal(gmem_add(&m, &r0, fd0), 0);
	assert_int_equal(gmem_add(&m, &r1, fd1), 0);
	p = gmem_gpa_range(&m, 0, 2 * PAGE);
	assert_non_null(p);
	assert_int_equal(p[PAGE], 1);
	assert_false(gmem_lost(&m));

	assert_int_equal(ftruncate(fd0, 0), 0);
	assert_int_equal(p[PAGE], 0); /* caught, retried on zero pages */
	p[0] = 7;		      /* writes land in the replacement */
	assert_int_equal(p[0], 7);
	assert_true(gmem_lost(&m));
	assert_int_equal(gmem_fault_count(), faults + 1);
	/* The other region is untouched. */
	*(volatile uint8_t *)gmem_gpa_range(&m, 0x10000, 1) = 2;
	assert_int_equal(pread(fd1, &one, 1, 0), 1);
	assert_int_equal(one, 2);
	gmem_clear(&m);
	assert_false(gmem_lost(&m));
	close(fd0);
	close(fd1);
}

/*
 * The handler takes only faults inside a gmem mapping: any other SIGBUS
 * (a mapping of the program's own, or one sent with raise/tgkill, kill or
 * sigqueue) still kills, at once: a sent one must not fall through to
 * the fault below.
 */
static void test_foreign_sigbus_still_kills(void **state)
{
	struct gmem m;
	struct vhost_user_mem_region r = region(0, PAGE, 0x100000, 0);
	int fd = make_memfd(PAGE), status;

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_add(&m, &r, fd), 0); /* handler installed */
	for (int how = 0; how < 4; how++) {
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			int own = memfd_create("own", 0);
			volatile uint8_t *q;

			signal(SIGBUS, SIG_DFL);
			/* As a program would after the backend's first mapping. */
			assert_int_equal(
			    gmem_add(&m,
				     &(struct vhost_user_mem_region){0x10000, PAGE, 0x200000, 0},
				     fd),
			    0);
			if (how == 1)
				raise(SIGBUS);
			else if (how == 2)
				kill(getpid(), SIGBUS);
			else if (how == 3)
				sigqueue(getpid(), SIGBUS, (union sigval){.sival_int = 1});
			if (how > 0)
				_exit(4); /* the sent SIGBUS was swallowed */
			if (own < 0 || ftruncate(own, PAGE) != 0)
				_exit(3);
			q = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, own, 0);
			if (q == MAP_FAILED || ftruncate(own, 0) != 0)
				_exit(3);
			(void)q[0];
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGBUS)
			fail_msg("case %d: status 0x%x, not killed by SIGBUS", how, status);
	}
	gmem_clear(&m);
	close(fd);
}

/* Odd fds: closed, a memory device that cannot be mapped, one that can. */
static void test_region_odd_fds(void **state)
{
	struct gmem m;
	struct vhost_user_mem_region r = region(0, PAGE, 0x100000, 0);
	struct vhost_user_mem_region huge = region(0, SIZE_MAX - 16, 0, 0);
	int fd = make_memfd(PAGE), null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	int zero_fd = open("/dev/zero", O_RDWR | O_CLOEXEC);

	(void)state;
	gmem_init(&m);
	close(fd); /* still >= 0, no longer open */
	assert_int_equal(gmem_add(&m, &r, fd), -EBADF);
	assert_non_null(strstr(gmem_why(&m), "fstat"));
	assert_true(null_fd >= 0 && zero_fd >= 0);
	/* A character device has no size to check; /dev/null cannot be mapped. */
	assert_true(gmem_add(&m, &r, null_fd) < 0);
	assert_non_null(strstr(gmem_why(&m), "mmap"));
	/* Too large to map at all, whatever the device. */
	assert_int_equal(gmem_add(&m, &huge, zero_fd), -EINVAL);
	assert_non_null(strstr(gmem_why(&m), "too large"));
	assert_int_equal(m.nregions, 0);
	close(null_fd);
	close(zero_fd);
}

/* The handler's table is bounded: past it a mapping is refused and undone. */
static void test_guard_table_full(void **state)
{
	enum { NG = 40 };
	struct gmem *ms = calloc(NG, sizeof(*ms));
	int fd = make_memfd(PAGE), ret = 0;
	unsigned int mapped = 0;

	(void)state;
	assert_non_null(ms);
	for (unsigned int g = 0; g < NG && ret == 0; g++) {
		gmem_init(&ms[g]);
		for (unsigned int i = 0; i < GMEM_MAX_REGIONS; i++) {
			struct vhost_user_mem_region r =
			    region((uint64_t)i * PAGE, PAGE, 0x100000 + (uint64_t)i * PAGE, 0);

			ret = gmem_add(&ms[g], &r, fd);
			if (ret)
				break;
			mapped++;
		}
	}
	assert_int_equal(ret, -ENOSPC);
	assert_non_null(strstr(gmem_why(&ms[mapped / GMEM_MAX_REGIONS]), "too many mappings"));
	assert_true(mapped >= 1000 && mapped < NG * GMEM_MAX_REGIONS);
	for (unsigned int g = 0; g < NG; g++)
		gmem_clear(&ms[g]);
	/* All released: mapping works again. */
	{
		struct vhost_user_mem_region r = region(0, PAGE, 0x100000, 0);

		assert_int_equal(gmem_add(&ms[0], &r, fd), 0);
		gmem_clear(&ms[0]);
	}
	free(ms);
	close(fd);
}

/*
 * A fault outside guest memory goes to the handler that was there before
 * (an SA_SIGINFO one, then a plain one): here each jumps back to the test.
 */
static sigjmp_buf chain_env;
static volatile sig_atomic_t chain_hits;

static void chain_info(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	chain_hits++;
	siglongjmp(chain_env, 1);
}

static void chain_plain(int sig)
{
	(void)sig;
	chain_hits++;
	siglongjmp(chain_env, 1);
}

static void fault_outside(void)
{
	int own = memfd_create("own", MFD_CLOEXEC);
	volatile uint8_t *q;

	assert_true(own >= 0);
	assert_int_equal(ftruncate(own, PAGE), 0);
	q = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, own, 0);
	assert_true(q != MAP_FAILED);
	assert_int_equal(ftruncate(own, 0), 0);
	if (sigsetjmp(chain_env, 1) == 0)
		(void)q[0];
	munmap((void *)q, PAGE);
	close(own);
}

static void test_foreign_sigbus_chained(void **state)
{
	struct vhost_user_mem_region r = region(0, PAGE, 0x100000, 0);
	int fd = make_memfd(PAGE);
	struct sigaction sa;
	struct gmem m;

	(void)state;
	for (int plain = 0; plain < 2; plain++) {
		memset(&sa, 0, sizeof(sa));
		sigemptyset(&sa.sa_mask);
		if (plain) {
			sa.sa_handler = chain_plain;
		} else {
			sa.sa_sigaction = chain_info;
			sa.sa_flags = SA_SIGINFO;
		}
		assert_int_equal(sigaction(SIGBUS, &sa, NULL), 0);
		gmem_init(&m);
		assert_int_equal(gmem_add(&m, &r, fd), 0); /* ours, on top of it */
		chain_hits = 0;
		fault_outside();
		assert_int_equal(chain_hits, 1);
		assert_false(gmem_lost(&m));
		gmem_clear(&m);
	}
	close(fd);
}

/* ---- budgets: limits on the bytes mapped ---- */

/* One table, one budget: charged whole pages, refused past the limit, given back. */
static void test_budget_one_table(void **state)
{
	struct gmem_budget dev = GMEM_BUDGET_INIT(4 * PAGE, "per-device", "--opt");
	struct gmem m;
	struct vhost_user_mem_region r0 = region(0x0, 2 * PAGE, 0x100000, 0);
	struct vhost_user_mem_region r1 = region(0x10000, 3 * PAGE, 0x200000, 0);
	struct vhost_user_mem_region r2 = region(0x20000, 1, 0x300000, 0);
	struct vhost_user_mem_region r3 = region(0x30000, PAGE, 0x400000, 0);
	int fd = make_memfd(4 * PAGE);

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_add_budget(&m, &dev), 0);
	assert_int_equal(gmem_add(&m, &r0, fd), 0);
	assert_int_equal(gmem_budget_used(&dev), 2 * PAGE);
	assert_null(m.over);

	/* 2 + 3 pages pass 4: refused before anything is mapped. */
	assert_int_equal(gmem_add(&m, &r1, fd), -EDQUOT);
	assert_ptr_equal(m.over, &dev);
	assert_int_equal(m.over_asked, 3 * PAGE);
	assert_string_equal(gmem_why(&m), "over a limit on mapped guest memory");
	assert_int_equal(m.nregions, 1);
	assert_int_equal(gmem_budget_used(&dev), 2 * PAGE);

	/* One byte costs the page it is mapped with. */
	assert_int_equal(gmem_add(&m, &r2, fd), 0);
	assert_int_equal(gmem_budget_used(&dev), 3 * PAGE);
	assert_null(m.over);
	/* Exactly at the limit is allowed. */
	assert_int_equal(gmem_add(&m, &r3, fd), 0);
	assert_int_equal(gmem_budget_used(&dev), 4 * PAGE);

	/* Budgets are fixed while anything is mapped. */
	assert_int_equal(gmem_add_budget(&m, &dev), -EBUSY);

	/* Removing and clearing give the bytes back. */
	assert_int_equal(gmem_remove(&m, &r0), 0);
	assert_int_equal(gmem_budget_used(&dev), 2 * PAGE);
	assert_int_equal(gmem_add(&m, &r1, fd), -EDQUOT);
	gmem_clear(&m);
	assert_int_equal(gmem_budget_used(&dev), 0);
	assert_int_equal(gmem_add(&m, &r1, fd), 0);
	assert_int_equal(gmem_budget_used(&dev), 3 * PAGE);
	gmem_clear(&m);
	assert_int_equal(gmem_budget_used(&dev), 0);
	close(fd);
}

/* Two tables with a budget each and a shared total: each limit holds on its own. */
static void test_budget_shared_total(void **state)
{
	struct gmem_budget total = GMEM_BUDGET_INIT(6 * PAGE, "per-process", "--total");
	struct gmem_budget da = GMEM_BUDGET_INIT(4 * PAGE, "per-device", "--dev");
	struct gmem_budget db = GMEM_BUDGET_INIT(4 * PAGE, "per-device", "--dev");
	struct gmem a, b;
	struct vhost_user_mem_region r4 = region(0x0, 4 * PAGE, 0x100000, 0);
	struct vhost_user_mem_region r2 = region(0x100000, 2 * PAGE, 0x900000, 0);
	struct vhost_user_mem_region r2b = region(0x200000, 2 * PAGE, 0xa00000, 0);
	struct vhost_user_mem_region r5 = region(0x0, 5 * PAGE, 0x100000, 0);
	int fd = make_memfd(8 * PAGE);

	(void)state;
	gmem_init(&a);
	gmem_init(&b);
	assert_int_equal(gmem_add_budget(&a, &da), 0);
	assert_int_equal(gmem_add_budget(&a, &total), 0);
	assert_int_equal(gmem_add_budget(&b, &db), 0);
	assert_int_equal(gmem_add_budget(&b, &total), 0);

	/* The per-device limit holds though the total has room. */
	assert_int_equal(gmem_add(&a, &r5, fd), -EDQUOT);
	assert_ptr_equal(a.over, &da);
	assert_int_equal(gmem_budget_used(&total), 0);

	assert_int_equal(gmem_add(&a, &r4, fd), 0);
	/* The total holds though b's own budget has room; b's is not charged either. */
	assert_int_equal(gmem_add(&b, &r4, fd), -EDQUOT);
	assert_ptr_equal(b.over, &total);
	assert_int_equal(b.over_asked, 4 * PAGE);
	assert_int_equal(gmem_budget_used(&db), 0);
	assert_int_equal(gmem_budget_used(&total), 4 * PAGE);
	assert_int_equal(gmem_add(&b, &r2, fd), 0);
	assert_int_equal(gmem_budget_used(&total), 6 * PAGE);

	/* Full: b cannot grow while a holds its 4 pages. */
	assert_int_equal(gmem_add(&b, &r2b, fd), -EDQUOT);
	assert_ptr_equal(b.over, &total);

	/* a's frontend leaves: its bytes return to the total, b may grow. */
	gmem_clear(&a);
	assert_int_equal(gmem_budget_used(&da), 0);
	assert_int_equal(gmem_budget_used(&total), 2 * PAGE);
	assert_int_equal(gmem_add(&b, &r2b, fd), 0);
	assert_int_equal(gmem_budget_used(&db), 4 * PAGE);
	assert_int_equal(gmem_budget_used(&total), 4 * PAGE);
	/* And b's own limit still holds. */
	assert_int_equal(gmem_add(&b, &r4, fd), -EDQUOT);
	assert_ptr_equal(b.over, &db);
	gmem_clear(&b);
	assert_int_equal(gmem_budget_used(&total), 0);
	close(fd);
}

/* A replacement table is charged as if the old one were gone, and the old one comes back. */
static void test_budget_replace(void **state)
{
	struct gmem_budget dev = GMEM_BUDGET_INIT(4 * PAGE, "per-device", "--dev");
	struct gmem old, fresh;
	struct vhost_user_mem_region r3 = region(0x0, 3 * PAGE, 0x100000, 0);
	struct vhost_user_mem_region r4 = region(0x0, 4 * PAGE, 0x100000, 0);
	struct vhost_user_mem_region r5 = region(0x0, 5 * PAGE, 0x100000, 0);
	int fd = make_memfd(8 * PAGE);

	(void)state;
	gmem_init(&old);
	assert_int_equal(gmem_add_budget(&old, &dev), 0);
	assert_int_equal(gmem_add(&old, &r3, fd), 0);

	/* Refused replacement: the old table is charged again. */
	gmem_init_like(&fresh, &old);
	assert_int_equal(fresh.nbudgets, 1);
	gmem_budget_lend(&old);
	assert_int_equal(gmem_budget_used(&dev), 0);
	assert_int_equal(gmem_add(&fresh, &r5, fd), -EDQUOT);
	gmem_clear(&fresh);
	gmem_budget_reclaim(&old);
	assert_int_equal(gmem_budget_used(&dev), 3 * PAGE);
	gmem_budget_reclaim(&old); /* twice charges nothing more */
	assert_int_equal(gmem_budget_used(&dev), 3 * PAGE);

	/* 3 + 4 pages would pass 4, but the 4 replace the 3. */
	gmem_init_like(&fresh, &old);
	gmem_budget_lend(&old);
	assert_int_equal(gmem_add(&fresh, &r4, fd), 0);
	gmem_clear(&old); /* lent: gives nothing back twice */
	assert_int_equal(gmem_budget_used(&dev), 4 * PAGE);
	old = fresh;
	gmem_clear(&old);
	assert_int_equal(gmem_budget_used(&dev), 0);
	close(fd);
}

/*
 * A sparse file of 64 TiB costs nothing to make and would map at once: the
 * limit refuses it before mmap. A mapping that fails later gives its charge back.
 */
static void test_budget_huge_and_failed_map(void **state)
{
	struct gmem_budget dev = GMEM_BUDGET_INIT(1ull << 40, "per-device", "--dev");
	struct gmem m;
	struct vhost_user_mem_region huge = region(0x0, 64ull << 40, 0x100000, 0);
	struct vhost_user_mem_region small = region(0x0, PAGE, 0x100000, 0);
	int fd = memfd_create("gmem-huge", MFD_CLOEXEC), ro;
	char path[64];

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(64ull << 40)), 0);
	gmem_init(&m);
	assert_int_equal(gmem_add_budget(&m, &dev), 0);
	assert_int_equal(gmem_add(&m, &huge, fd), -EDQUOT);
	assert_int_equal(m.over_asked, 64ull << 40);
	assert_int_equal(m.nregions, 0);
	assert_int_equal(gmem_budget_used(&dev), 0);

	/* Read-only: a shared writable mapping fails with EACCES, after the charge. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(ro >= 0);
	assert_int_equal(gmem_add(&m, &small, ro), -EACCES);
	assert_int_equal(gmem_budget_used(&dev), 0);
	assert_int_equal(gmem_add(&m, &small, fd), 0);
	assert_int_equal(gmem_budget_used(&dev), PAGE);
	gmem_clear(&m);
	assert_int_equal(gmem_budget_used(&dev), 0);

	/* At most GMEM_MAX_BUDGETS. */
	gmem_init(&m);
	for (unsigned int i = 0; i < GMEM_MAX_BUDGETS; i++)
		assert_int_equal(gmem_add_budget(&m, &dev), 0);
	assert_int_equal(gmem_add_budget(&m, &dev), -ENOSPC);
	close(ro);
	close(fd);
}

static void test_gmem_add_host_null(void **state)
{
	struct vhost_user_mem_region r = region(0x1000, 0x1000, 0x7f0000001000ull, 0);
	static uint8_t backing[0x1000];
	struct gmem m;
	uint64_t len = 1;

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_add_host(&m, &r, NULL), -EINVAL);
	assert_int_equal(m.nregions, 0);
	assert_null(gmem_gpa_to_host(&m, 0x1000, &len));
	/* The same region with memory behind it is accepted. */
	assert_int_equal(gmem_add_host(&m, &r, backing), 0);
	len = 1;
	assert_ptr_equal(gmem_gpa_to_host(&m, 0x1000, &len), backing);
	gmem_clear(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_two_regions_translate),
	    cmocka_unit_test(test_crossing_regions),
	    cmocka_unit_test(test_translation_bounds),
	    cmocka_unit_test(test_reject_invalid),
	    cmocka_unit_test(test_full_table),
	    cmocka_unit_test(test_remove),
	    cmocka_unit_test(test_fd_hygiene),
	    cmocka_unit_test(test_region_past_end_of_file),
	    cmocka_unit_test(test_region_fd_not_memory),
	    cmocka_unit_test(test_map_from_offset),
	    cmocka_unit_test(test_file_shrinks_under_mapping),
	    cmocka_unit_test(test_foreign_sigbus_still_kills),
	    cmocka_unit_test(test_region_odd_fds),
	    cmocka_unit_test(test_guard_table_full),
	    cmocka_unit_test(test_foreign_sigbus_chained),
	    cmocka_unit_test(test_budget_one_table),
	    cmocka_unit_test(test_budget_shared_total),
	    cmocka_unit_test(test_budget_replace),
	    cmocka_unit_test(test_budget_huge_and_failed_map),
	    cmocka_unit_test(test_gmem_add_host_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
