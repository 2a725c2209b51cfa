/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Split virtqueue walker: crafted rings and descriptor tables in a test
 * arena registered as two guest regions. Guest physical addresses, frontend
 * user addresses and host pointers all differ, and the two regions are
 * adjacent in guest and user address space but not on the host, so any
 * mix-up of address spaces or a missed region split reads the wrong bytes.
 * Guard bytes around and between the regions must survive every test.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "gmem.h"
#include "vq.h"

#define GUARD 4096u
#define REG_SIZE 0x4000u
#define ARENA_SIZE (3 * GUARD + 2 * REG_SIZE)
#define GUARD_BYTE 0xa5

#define GPA_A 0x100000ull
#define GPA_B (GPA_A + REG_SIZE)
#define UVA_A 0x7f1200000000ull
#define UVA_B (UVA_A + REG_SIZE)

#define NUM 8u
/* Ring offsets inside region A. */
#define DESC_OFF 0x000u
#define AVAIL_OFF 0x200u
#define USED_OFF 0x400u
#define USED_SIZE (4 + 8 * NUM + 2)
/* Buffers live from here on, in A and in B. */
#define BUF_A (GPA_A + 0x1000)
#define BUF_B (GPA_B + 0x1000)

struct env {
	uint8_t *arena;
	struct gmem mem;
	struct vq q;
	uint16_t avail_idx; /* the guest's next avail idx */
	uint8_t used_snap[USED_SIZE];
};

static uint8_t *host_a(struct env *e)
{
	return e->arena + GUARD;
}

static uint8_t *host_b(struct env *e)
{
	return e->arena + 2 * GUARD + REG_SIZE;
}

/* Host address of a guest physical address inside A or B. */
static uint8_t *gpa_host(struct env *e, uint64_t gpa)
{
	if (gpa >= GPA_A && gpa < GPA_A + REG_SIZE)
		return host_a(e) + (gpa - GPA_A);
	assert_true(gpa >= GPA_B && gpa < GPA_B + REG_SIZE);
	return host_b(e) + (gpa - GPA_B);
}

static struct vring_desc *desc_table(struct env *e)
{
	return (struct vring_desc *)(void *)(host_a(e) + DESC_OFF);
}

static struct vring_avail *avail_ring(struct env *e)
{
	return (struct vring_avail *)(void *)(host_a(e) + AVAIL_OFF);
}

static struct vring_used *used_ring(struct env *e)
{
	return (struct vring_used *)(void *)(host_a(e) + USED_OFF);
}

static void put_desc(void *at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc d = {
	    .addr = htole64(addr),
	    .len = htole32(len),
	    .flags = htole16(flags),
	    .next = htole16(next),
	};
	memcpy(at, &d, sizeof(d));
}

static void set_desc(struct env *e, unsigned int i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	assert_true(i < NUM);
	put_desc(&desc_table(e)[i], addr, len, flags, next);
}

/* Entry i of an indirect table placed at guest address table_gpa. */
static void set_idesc(struct env *e, uint64_t table_gpa, unsigned int i, uint64_t addr,
		      uint32_t len, uint16_t flags, uint16_t next)
{
	put_desc(gpa_host(e, table_gpa + 16ull * i), addr, len, flags, next);
}

static void set_avail_idx(struct env *e, uint16_t idx)
{
	e->avail_idx = idx;
	avail_ring(e)->idx = htole16(idx);
}

/* Make head available, as a guest driver would. */
static void make_avail(struct env *e, uint16_t head)
{
	avail_ring(e)->ring[e->avail_idx % NUM] = htole16(head);
	set_avail_idx(e, (uint16_t)(e->avail_idx + 1));
}

static void snap_used(struct env *e)
{
	memcpy(e->used_snap, used_ring(e), USED_SIZE);
}

static void assert_used_untouched(struct env *e)
{
	assert_memory_equal(e->used_snap, used_ring(e), USED_SIZE);
}

static void assert_guards(struct env *e)
{
	static const unsigned int starts[] = {0, GUARD + REG_SIZE, 2 * GUARD + 2 * REG_SIZE};

	for (unsigned int g = 0; g < 3; g++)
		for (unsigned int i = 0; i < GUARD; i++)
			if (e->arena[starts[g] + i] != GUARD_BYTE)
				fail_msg("guard byte %u of guard %u changed", i, g);
}

static void add_region(struct env *e, uint64_t gpa, uint64_t uva, void *host)
{
	struct vhost_user_mem_region r = {
	    .guest_phys_addr = gpa,
	    .memory_size = REG_SIZE,
	    .userspace_addr = uva,
	    .mmap_offset = 0,
	};
	assert_int_equal(gmem_add_host(&e->mem, &r, host), 0);
}

static void set_ring_addrs(struct env *e, uint16_t num, uint64_t desc, uint64_t avail,
			   uint64_t used)
{
	e->q.num = num;
	e->q.desc_uaddr = desc;
	e->q.avail_uaddr = avail;
	e->q.used_uaddr = used;
	e->q.addr_set = true;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->arena = aligned_alloc(4096, ARENA_SIZE);
	assert_non_null(e->arena);
	memset(e->arena, GUARD_BYTE, ARENA_SIZE);
	memset(host_a(e), 0, REG_SIZE);
	memset(host_b(e), 0, REG_SIZE);
	gmem_init(&e->mem);
	add_region(e, GPA_A, UVA_A, host_a(e));
	add_region(e, GPA_B, UVA_B, host_b(e));
	vq_init(&e->q, 1);
	set_ring_addrs(e, NUM, UVA_A + DESC_OFF, UVA_A + AVAIL_OFF, UVA_A + USED_OFF);
	*state = e;
	return 0;
}

/* setup() plus a mapped ring. */
static int setup_mapped(void **state)
{
	struct env *e;

	setup(state);
	e = *state;
	assert_int_equal(vq_map(&e->q, &e->mem), 0);
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	assert_guards(e);
	if (e->q.kick_fd >= 0)
		close(e->q.kick_fd);
	if (e->q.call_fd >= 0)
		close(e->q.call_fd);
	gmem_clear(&e->mem);
	free(e->arena);
	free(e);
	return 0;
}

/* The queue is broken and stays so even once the guest offers a sane chain. */
static void assert_stays_broken(struct env *e)
{
	struct vq_chain c;

	assert_true(e->q.broken);
	set_desc(e, 0, BUF_A, 16, 0, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), -EIO);
	assert_int_equal(vq_avail_count(&e->q), -EIO);
	assert_int_equal(vq_push(&e->q, 0, 0), -EIO);
	assert_false(vq_should_notify(&e->q));
	assert_false(vq_set_kick_notify(&e->q, true));
}

/* Pop must fail with -EIO, touch nothing in the used ring, and stay broken. */
static void assert_pop_breaks(struct env *e)
{
	struct vq_chain c;
	uint16_t last = e->q.last_avail;
	unsigned int inflight = e->q.inflight;

	snap_used(e);
	assert_false(e->q.broken);
	assert_int_equal(vq_pop(&e->q, &c), -EIO);
	assert_true(e->q.broken);
	assert_int_equal(e->q.last_avail, last);
	assert_int_equal(e->q.inflight, inflight);
	assert_used_untouched(e);
	assert_stays_broken(e);
}

/* ---- init and map ---- */

static void test_init(void **state)
{
	struct vq q;
	struct vq_chain c;

	(void)state;
	memset(&q, 0x5a, sizeof(q));
	vq_init(&q, 2);
	assert_int_equal(q.index, 2);
	assert_string_equal(q.tag, "vq 2");
	assert_int_equal(q.kick_fd, -1);
	assert_int_equal(q.call_fd, -1);
	assert_int_equal(q.err_fd, -1);
	assert_int_equal(q.num, 0);
	assert_false(q.addr_set);
	assert_false(q.broken);
	assert_null(q.desc);
	assert_null(q.avail);
	assert_null(q.used);
	assert_null(q.mem);
	assert_int_equal(q.inflight, 0);
	/* Not mapped: nothing to pop, nothing can be pushed. */
	assert_int_equal(vq_pop(&q, &c), 0);
	assert_int_equal(vq_avail_count(&q), 0);
	assert_int_equal(vq_push(&q, 0, 0), -EIO);
	assert_false(vq_should_notify(&q));
	assert_false(vq_set_kick_notify(&q, true));
	assert_int_equal(vq_notify(&q), 0);
}

static void test_map_ok(void **state)
{
	struct env *e = *state;

	used_ring(e)->idx = htole16(1234);
	e->q.last_avail = 1230;
	e->q.signalled_used_valid = true;
	e->q.broken = true;
	assert_int_equal(vq_map(&e->q, &e->mem), 0);
	assert_ptr_equal(e->q.desc, desc_table(e));
	assert_ptr_equal(e->q.avail, avail_ring(e));
	assert_ptr_equal(e->q.used, used_ring(e));
	assert_ptr_equal(e->q.mem, &e->mem);
	assert_int_equal(e->q.used_idx, 1234);
	assert_int_equal(e->q.last_avail, 1230); /* SET_VRING_BASE's, untouched */
	assert_false(e->q.signalled_used_valid);
	assert_false(e->q.broken);

	vq_unmap(&e->q);
	assert_null(e->q.desc);
	assert_null(e->q.avail);
	assert_null(e->q.used);
}

/* Rings in region B (user addresses) land on B's host memory. */
static void test_map_region_b(void **state)
{
	struct env *e = *state;

	set_ring_addrs(e, NUM, UVA_B + 0x100, UVA_B + 0x202, UVA_B + 0x404);
	assert_int_equal(vq_map(&e->q, &e->mem), 0);
	assert_ptr_equal(e->q.desc, host_b(e) + 0x100);
	assert_ptr_equal(e->q.avail, host_b(e) + 0x202);
	assert_ptr_equal(e->q.used, host_b(e) + 0x404);
}

static void expect_map_fails(struct env *e, int err)
{
	e->q.broken = true;
	assert_int_equal(vq_map(&e->q, &e->mem), err);
	assert_null(e->q.desc);
	assert_null(e->q.avail);
	assert_null(e->q.used);
	assert_true(e->q.broken); /* only a successful map clears it */
}

static void test_map_rejects(void **state)
{
	struct env *e = *state;
	const uint64_t d = UVA_A + DESC_OFF, a = UVA_A + AVAIL_OFF, u = UVA_A + USED_OFF;

	/* Not set up. */
	set_ring_addrs(e, 0, d, a, u);
	expect_map_fails(e, -EINVAL);
	set_ring_addrs(e, NUM, d, a, u);
	e->q.addr_set = false;
	expect_map_fails(e, -EINVAL);
	set_ring_addrs(e, NUM, d, a, u);
	assert_int_equal(vq_map(&e->q, NULL), -EINVAL);

	/* Queue sizes a split ring cannot have. */
	set_ring_addrs(e, 6, d, a, u);
	expect_map_fails(e, -EINVAL);
	set_ring_addrs(e, 65535, d, a, u);
	expect_map_fails(e, -EINVAL);

	/* Misaligned rings. */
	set_ring_addrs(e, NUM, d + 8, a, u);
	expect_map_fails(e, -EINVAL);
	set_ring_addrs(e, NUM, d, a + 1, u);
	expect_map_fails(e, -EINVAL);
	set_ring_addrs(e, NUM, d, a, u + 2);
	expect_map_fails(e, -EINVAL);

	/* Guest physical addresses are not user addresses. */
	set_ring_addrs(e, NUM, GPA_A + DESC_OFF, a, u);
	expect_map_fails(e, -EFAULT);
	set_ring_addrs(e, NUM, d, GPA_A + AVAIL_OFF, u);
	expect_map_fails(e, -EFAULT);
	set_ring_addrs(e, NUM, d, a, GPA_A + USED_OFF);
	expect_map_fails(e, -EFAULT);

	/* Outside memory. */
	set_ring_addrs(e, NUM, UVA_A - 0x1000, a, u);
	expect_map_fails(e, -EFAULT);
	set_ring_addrs(e, NUM, d, a, UVA_B + REG_SIZE + 0x100);
	expect_map_fails(e, -EFAULT);

	/* Straddling A and B, although both are mapped and adjacent in uva. */
	set_ring_addrs(e, NUM, UVA_B - 64, a, u); /* desc needs 128 */
	expect_map_fails(e, -EFAULT);
	set_ring_addrs(e, NUM, d, UVA_B - (4 + 2 * NUM), u); /* used_event outside A */
	expect_map_fails(e, -EFAULT);
	set_ring_addrs(e, NUM, d, a, UVA_B - (4 + 8 * NUM)); /* avail_event outside A */
	expect_map_fails(e, -EFAULT);
	/* The same sizes fit at the end of A. */
	set_ring_addrs(e, NUM, UVA_B - 16 * NUM, UVA_B - (4 + 2 * NUM + 2) - 0x200, UVA_B - 0x400);
	assert_int_equal(vq_map(&e->q, &e->mem), 0);
	set_ring_addrs(e, NUM, d, UVA_B - (4 + 2 * NUM + 2), UVA_B - 0x400);
	assert_int_equal(vq_map(&e->q, &e->mem), 0);
	set_ring_addrs(e, NUM, d, a, UVA_B - (4 + 8 * NUM + 2) - 2);
	assert_int_equal(vq_map(&e->q, &e->mem), 0);
}

/* ---- popping ---- */

static void test_pop_empty(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	assert_int_equal(vq_avail_count(&e->q), 0);
	assert_int_equal(vq_pop(&e->q, &c), 0);
	assert_int_equal(e->q.last_avail, 0);
	assert_int_equal(e->q.inflight, 0);
	assert_false(e->q.broken);
}

static void test_pop_direct_chain(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	/* 5 -> 2 -> 7, all readable, in both regions. */
	set_desc(e, 5, BUF_A, 100, VRING_DESC_F_NEXT, 2);
	set_desc(e, 2, BUF_B + 0x10, 200, VRING_DESC_F_NEXT, 7);
	set_desc(e, 7, BUF_A + 0x800, 3, 0, 0);
	make_avail(e, 5);
	assert_int_equal(vq_avail_count(&e->q), 1);

	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.head, 5);
	assert_int_equal(c.nout, 3);
	assert_int_equal(c.nin, 0);
	assert_int_equal(c.out_len, 303);
	assert_int_equal(c.in_len, 0);
	assert_ptr_equal(c.iov[0].iov_base, gpa_host(e, BUF_A));
	assert_int_equal(c.iov[0].iov_len, 100);
	assert_ptr_equal(c.iov[1].iov_base, gpa_host(e, BUF_B + 0x10));
	assert_int_equal(c.iov[1].iov_len, 200);
	assert_ptr_equal(c.iov[2].iov_base, gpa_host(e, BUF_A + 0x800));
	assert_int_equal(c.iov[2].iov_len, 3);
	assert_int_equal(e->q.last_avail, 1);
	assert_int_equal(e->q.inflight, 1);
	assert_int_equal(vq_avail_count(&e->q), 0);
	assert_int_equal(vq_pop(&e->q, &c), 0);
	assert_false(e->q.broken);
}

static void test_pop_read_write_split(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	set_desc(e, 0, BUF_A, 8, VRING_DESC_F_NEXT, 1);
	set_desc(e, 1, BUF_A + 8, 72, VRING_DESC_F_NEXT, 2);
	set_desc(e, 2, BUF_B, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	set_desc(e, 3, BUF_B + 64, 1, VRING_DESC_F_WRITE, 0);
	make_avail(e, 0);

	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.head, 0);
	assert_int_equal(c.nout, 2);
	assert_int_equal(c.nin, 2);
	assert_int_equal(c.out_len, 80);
	assert_int_equal(c.in_len, 17);
	assert_ptr_equal(c.iov[2].iov_base, gpa_host(e, BUF_B));
	assert_int_equal(c.iov[2].iov_len, 16);
	assert_ptr_equal(c.iov[3].iov_base, gpa_host(e, BUF_B + 64));
	assert_int_equal(c.iov[3].iov_len, 1);
}

/* Chains popped in avail order, each with its own head. */
static void test_pop_several(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	set_desc(e, 3, BUF_A, 10, 0, 0);
	set_desc(e, 1, BUF_A + 0x100, 20, VRING_DESC_F_WRITE, 0);
	make_avail(e, 3);
	make_avail(e, 1);
	assert_int_equal(vq_avail_count(&e->q), 2);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.head, 3);
	assert_int_equal(c.out_len, 10);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.head, 1);
	assert_int_equal(c.nout, 0);
	assert_int_equal(c.nin, 1);
	assert_int_equal(c.in_len, 20);
	assert_int_equal(e->q.inflight, 2);
	assert_int_equal(vq_pop(&e->q, &c), 0);
}

static void test_pop_zero_length(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	/* A zero-length descriptor needs no memory behind it. */
	set_desc(e, 0, 0xdead00000000ull, 0, VRING_DESC_F_NEXT, 1);
	set_desc(e, 1, BUF_A, 4, VRING_DESC_F_NEXT, 2);
	set_desc(e, 2, 0, 0, VRING_DESC_F_WRITE, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.nout, 1);
	assert_int_equal(c.nin, 0);
	assert_ptr_equal(c.iov[0].iov_base, gpa_host(e, BUF_A));
	assert_int_equal(c.out_len, 4);
}

static void test_pop_cross_regions(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	/* 100 bytes at the end of A, 200 at the start of B: two iovecs. */
	set_desc(e, 0, GPA_B - 100, 300, VRING_DESC_F_WRITE, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.nin, 2);
	assert_int_equal(c.in_len, 300);
	assert_ptr_equal(c.iov[0].iov_base, host_a(e) + REG_SIZE - 100);
	assert_int_equal(c.iov[0].iov_len, 100);
	assert_ptr_equal(c.iov[1].iov_base, host_b(e));
	assert_int_equal(c.iov[1].iov_len, 200);
}

static void test_pop_indirect(void **state)
{
	struct env *e = *state;
	/* Deliberately not 16-aligned, in region B. */
	const uint64_t t = BUF_B + 8;
	struct vq_chain c;

	e->q.indirect = true;
	set_idesc(e, t, 0, BUF_A, 12, VRING_DESC_F_NEXT, 2);
	set_idesc(e, t, 2, BUF_A + 0x40, 30, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_idesc(e, t, 1, GPA_B - 10, 20, VRING_DESC_F_WRITE, 0);
	/* WRITE on the descriptor naming the table is ignored, as the spec says. */
	set_desc(e, 4, t, 3 * 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
	make_avail(e, 4);

	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.head, 4);
	assert_int_equal(c.nout, 1);
	assert_int_equal(c.nin, 3);
	assert_int_equal(c.out_len, 12);
	assert_int_equal(c.in_len, 50);
	assert_ptr_equal(c.iov[0].iov_base, gpa_host(e, BUF_A));
	assert_ptr_equal(c.iov[1].iov_base, gpa_host(e, BUF_A + 0x40));
	assert_ptr_equal(c.iov[2].iov_base, host_a(e) + REG_SIZE - 10);
	assert_int_equal(c.iov[2].iov_len, 10);
	assert_ptr_equal(c.iov[3].iov_base, host_b(e));
	assert_int_equal(c.iov[3].iov_len, 10);
	assert_int_equal(e->q.inflight, 1);
}

/* ---- pushing ---- */

static void test_push(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	set_desc(e, 6, BUF_A, 10, VRING_DESC_F_WRITE, 0);
	make_avail(e, 6);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(vq_push(&e->q, c.head, 7), 0);
	assert_int_equal(le32toh(used_ring(e)->ring[0].id), 6);
	assert_int_equal(le32toh(used_ring(e)->ring[0].len), 7);
	assert_int_equal(le16toh(used_ring(e)->idx), 1);
	assert_int_equal(e->q.used_idx, 1);
	assert_int_equal(e->q.inflight, 0);
	assert_false(e->q.broken);
}

static void test_push_batch(void **state)
{
	struct env *e = *state;
	struct vq_used u[3] = {{.id = 2, .len = 20}, {.id = 0, .len = 0}, {.id = 7, .len = 70}};
	struct vq_chain c;

	used_ring(e)->idx = htole16(6);
	assert_int_equal(vq_map(&e->q, &e->mem), 0);
	for (unsigned int i = 0; i < 3; i++) {
		set_desc(e, u[i].id, BUF_A, 1, VRING_DESC_F_WRITE, 0);
		make_avail(e, (uint16_t)u[i].id);
		assert_int_equal(vq_pop(&e->q, &c), 1);
	}
	assert_int_equal(e->q.inflight, 3);
	assert_int_equal(vq_push_batch(&e->q, u, 0), 0);
	assert_int_equal(le16toh(used_ring(e)->idx), 6);
	assert_int_equal(vq_push_batch(&e->q, u, 3), 0);
	/* Slots 6, 7, then 0 (wraps inside the ring). */
	assert_int_equal(le32toh(used_ring(e)->ring[6].id), 2);
	assert_int_equal(le32toh(used_ring(e)->ring[6].len), 20);
	assert_int_equal(le32toh(used_ring(e)->ring[7].id), 0);
	assert_int_equal(le32toh(used_ring(e)->ring[0].id), 7);
	assert_int_equal(le32toh(used_ring(e)->ring[0].len), 70);
	assert_int_equal(le16toh(used_ring(e)->idx), 9);
	assert_int_equal(e->q.used_idx, 9);
	assert_int_equal(e->q.inflight, 0);
}

/* ---- hostile guests: each breaks the queue for good ---- */

static void test_bad_loop(void **state)
{
	struct env *e = *state;

	set_desc(e, 0, BUF_A, 4, VRING_DESC_F_NEXT, 1);
	set_desc(e, 1, BUF_A + 4, 4, VRING_DESC_F_NEXT, 0);
	make_avail(e, 0);
	assert_pop_breaks(e);
}

static void test_bad_self_loop_zero_len(void **state)
{
	struct env *e = *state;

	/* Zero-length descriptors add no iovec: only the walk bound stops this. */
	set_desc(e, 3, 0, 0, VRING_DESC_F_NEXT, 3);
	make_avail(e, 3);
	assert_pop_breaks(e);
}

static void test_bad_head(void **state)
{
	struct env *e = *state;

	make_avail(e, NUM);
	assert_pop_breaks(e);
}

static void test_bad_next(void **state)
{
	struct env *e = *state;

	set_desc(e, 0, BUF_A, 4, VRING_DESC_F_NEXT, NUM);
	make_avail(e, 0);
	assert_pop_breaks(e);
}

static void test_bad_buffer_outside(void **state)
{
	struct env *e = *state;

	set_desc(e, 0, GPA_A - 0x1000, 16, 0, 0);
	make_avail(e, 0);
	assert_pop_breaks(e);
}

static void test_bad_buffer_partly_outside(void **state)
{
	struct env *e = *state;

	set_desc(e, 0, GPA_B + REG_SIZE - 8, 16, VRING_DESC_F_WRITE, 0);
	make_avail(e, 0);
	assert_pop_breaks(e);
}

static void test_bad_read_after_write(void **state)
{
	struct env *e = *state;

	set_desc(e, 0, BUF_A, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(e, 1, BUF_A + 4, 4, 0, 0);
	make_avail(e, 0);
	assert_pop_breaks(e);
}

static void test_bad_avail_jump(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	set_desc(e, 0, BUF_A, 4, 0, 0);
	for (unsigned int i = 0; i < NUM; i++)
		make_avail(e, 0);
	/* Exactly num is fine. */
	assert_int_equal(vq_avail_count(&e->q), NUM);
	set_avail_idx(e, NUM + 1);
	snap_used(e);
	assert_int_equal(vq_avail_count(&e->q), -EIO);
	assert_true(e->q.broken);
	assert_int_equal(vq_pop(&e->q, &c), -EIO);
	assert_used_untouched(e);
	assert_stays_broken(e);
}

static void test_bad_push_head(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	set_desc(e, 0, BUF_A, 4, 0, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	snap_used(e);
	assert_int_equal(vq_push(&e->q, NUM, 0), -EIO);
	assert_true(e->q.broken);
	assert_used_untouched(e);
	assert_int_equal(e->q.inflight, 1);
	assert_stays_broken(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init),
	    cmocka_unit_test_setup_teardown(test_map_ok, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_map_region_b, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_map_rejects, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pop_empty, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_pop_direct_chain, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_pop_read_write_split, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_pop_several, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_pop_zero_length, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_pop_cross_regions, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_pop_indirect, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_push, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_push_batch, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_loop, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_self_loop_zero_len, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_head, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_next, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_buffer_outside, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_buffer_partly_outside, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_read_after_write, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_avail_jump, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_push_head, setup_mapped, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
