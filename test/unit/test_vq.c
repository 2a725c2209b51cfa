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
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "tdesc.h"
#include "tfd.h"
#include "vhost-user/gmem.h"
#include "vhost-user/vq.h"

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

static void set_desc(struct env *e, unsigned int i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	assert_true(i < NUM);
	tdesc_put(&desc_table(e)[i], addr, len, flags, next);
}

/* Entry i of an indirect table placed at guest address table_gpa. */
static void set_idesc(struct env *e, uint64_t table_gpa, unsigned int i, uint64_t addr,
		      uint32_t len, uint16_t flags, uint16_t next)
{
	tdesc_put(gpa_host(e, table_gpa + 16ull * i), addr, len, flags, next);
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
	/* The two readable buffers are adjacent: one iovec. */
	assert_int_equal(c.nout, 1);
	assert_int_equal(c.nin, 2);
	assert_int_equal(c.out_len, 80);
	assert_int_equal(c.in_len, 17);
	assert_ptr_equal(c.iov[0].iov_base, gpa_host(e, BUF_A));
	assert_int_equal(c.iov[0].iov_len, 80);
	assert_ptr_equal(c.iov[1].iov_base, gpa_host(e, BUF_B));
	assert_int_equal(c.iov[1].iov_len, 16);
	assert_ptr_equal(c.iov[2].iov_base, gpa_host(e, BUF_B + 64));
	assert_int_equal(c.iov[2].iov_len, 1);
	assert_false(c.truncated);
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

/* The order rule holds for descriptors, even ones adding no iovec. */
static void test_bad_read_after_empty_write(void **state)
{
	struct env *e = *state;

	set_desc(e, 0, BUF_A, 0, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
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

/* Make a one-descriptor chain available at head, pop it and push it back. */
static void pop_push(struct env *e, uint16_t head)
{
	struct vq_chain c;

	set_desc(e, head, BUF_A, 1, VRING_DESC_F_WRITE, 0);
	make_avail(e, head);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.head, head);
	assert_int_equal(vq_push(&e->q, head, 1), 0);
}

static uint16_t used_event_get(struct env *e)
{
	return le16toh(avail_ring(e)->ring[NUM]);
}

static void used_event_set(struct env *e, uint16_t v)
{
	avail_ring(e)->ring[NUM] = htole16(v);
	assert_int_equal(used_event_get(e), v);
}

static uint16_t avail_event_get(struct env *e)
{
	uint16_t v;

	memcpy(&v, &used_ring(e)->ring[NUM], sizeof(v));
	return le16toh(v);
}

static void avail_event_set(struct env *e, uint16_t v)
{
	v = htole16(v);
	memcpy(&used_ring(e)->ring[NUM], &v, sizeof(v));
}

/* ---- more popping ---- */

/* 16-bit indices wrap: last_avail 65535 -> 0, used idx 65535 -> 0. */
static void test_index_wrap(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	used_ring(e)->idx = htole16(65535);
	e->q.last_avail = 65534;
	set_avail_idx(e, 65534);
	assert_int_equal(vq_map(&e->q, &e->mem), 0);
	assert_int_equal(e->q.used_idx, 65535);

	set_desc(e, 1, BUF_A, 1, 0, 0);
	set_desc(e, 2, BUF_A + 1, 2, 0, 0);
	set_desc(e, 3, BUF_A + 3, 3, 0, 0);
	make_avail(e, 1); /* slot 65534 % 8 = 6 */
	make_avail(e, 2); /* slot 7 */
	make_avail(e, 3); /* idx wrapped: slot 0 */
	assert_int_equal(e->avail_idx, 1);
	assert_int_equal(vq_avail_count(&e->q), 3);

	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.head, 1);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.head, 2);
	assert_int_equal(e->q.last_avail, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.head, 3);
	assert_int_equal(c.out_len, 3);
	assert_int_equal(e->q.last_avail, 1);
	assert_int_equal(vq_pop(&e->q, &c), 0);

	/* used idx 65535 writes slot 7, then wraps to 0. */
	assert_int_equal(vq_push(&e->q, 1, 11), 0);
	assert_int_equal(le16toh(used_ring(e)->idx), 0);
	assert_int_equal(le32toh(used_ring(e)->ring[7].id), 1);
	assert_int_equal(le32toh(used_ring(e)->ring[7].len), 11);
	assert_int_equal(vq_push(&e->q, 2, 22), 0);
	assert_int_equal(le16toh(used_ring(e)->idx), 1);
	assert_int_equal(le32toh(used_ring(e)->ring[0].id), 2);
	assert_false(e->q.broken);
}

/*
 * With EVENT_IDX popping does not move avail_event (the guest need not kick
 * while the device drains); the empty pop that ends the drain moves it to
 * the new last_avail. Without EVENT_IDX avail_event is never written.
 */
static void test_pop_sets_avail_event(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	set_desc(e, 0, BUF_A, 1, 0, 0);
	avail_event_set(e, 0xbeef);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(vq_pop(&e->q, &c), 0);
	assert_int_equal(avail_event_get(e), 0xbeef);

	e->q.event_idx = true;
	make_avail(e, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(avail_event_get(e), 0xbeef);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(avail_event_get(e), 0xbeef);
	assert_int_equal(vq_pop(&e->q, &c), 0);
	assert_int_equal(avail_event_get(e), 3);
}

/*
 * With EVENT_IDX an empty pop re-arms the kick at last_avail, also when no
 * pop moved it (a ring restarted at a base).
 */
static void test_empty_pop_arms_kick(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	e->q.event_idx = true;
	e->q.last_avail = 5;
	set_avail_idx(e, 5);
	avail_event_set(e, 0xbeef);
	assert_int_equal(vq_pop(&e->q, &c), 0);
	assert_int_equal(avail_event_get(e), 5);
	assert_false(e->q.broken);

	/* Without EVENT_IDX avail_event is not ours to write. */
	e->q.event_idx = false;
	avail_event_set(e, 0xbeef);
	assert_int_equal(vq_pop(&e->q, &c), 0);
	assert_int_equal(avail_event_get(e), 0xbeef);
}

/*
 * Without EVENT_IDX the first pop of a drain turns kicks off in used->flags
 * and the empty pop that ends it turns them on again; with EVENT_IDX the
 * flags are never written. A flag left set by a drain cut short is taken
 * over by vq_map and cleared by the next empty pop.
 */
static void test_pop_suppresses_kicks(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	set_desc(e, 0, BUF_A, 1, 0, 0);
	make_avail(e, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(le16toh(used_ring(e)->flags), VRING_USED_F_NO_NOTIFY);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(le16toh(used_ring(e)->flags), VRING_USED_F_NO_NOTIFY);
	assert_int_equal(vq_pop(&e->q, &c), 0);
	assert_int_equal(le16toh(used_ring(e)->flags), 0);
	assert_int_equal(vq_push(&e->q, 0, 0), 0);
	assert_int_equal(vq_push(&e->q, 0, 0), 0);

	/* Cut short: the flag stays; a new mapping sees it and the drain ends it. */
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(vq_push(&e->q, 0, 0), 0);
	assert_int_equal(vq_map(&e->q, &e->mem), 0);
	assert_int_equal(le16toh(used_ring(e)->flags), VRING_USED_F_NO_NOTIFY);
	assert_int_equal(vq_pop(&e->q, &c), 0);
	assert_int_equal(le16toh(used_ring(e)->flags), 0);

	e->q.event_idx = true;
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(vq_pop(&e->q, &c), 0);
	assert_int_equal(le16toh(used_ring(e)->flags), 0);
}

/*
 * A chain of many small scattered pieces (a guest may split a buffer so):
 * valid up to the chain limit, 100 here, once more than the old 64.
 */
static void test_pop_long_chain(void **state)
{
	struct env *e = *state;
	const uint64_t t = BUF_A;
	const unsigned int n = 100;
	struct vq_chain c;

	e->q.indirect = true;
	for (unsigned int i = 0; i < n; i++)
		set_idesc(e, t, i, BUF_B + 4 * i, 2,
			  (i >= n / 2 ? VRING_DESC_F_WRITE : 0) |
			      (i + 1 < n ? VRING_DESC_F_NEXT : 0),
			  (uint16_t)(i + 1));
	set_desc(e, 0, t, n * 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.nout, n / 2);
	assert_int_equal(c.nin, n / 2);
	assert_int_equal(c.out_len + c.in_len, 2 * n);
	assert_false(c.truncated);
	for (unsigned int i = 0; i < n; i++)
		assert_ptr_equal(c.iov[i].iov_base, gpa_host(e, BUF_B + 4 * i));
}

/* Adjacent pieces in one direction share an iovec; a change of direction does not. */
static void test_pop_coalesces_adjacent(void **state)
{
	struct env *e = *state;
	const uint64_t t = BUF_B;
	struct vq_chain c;

	e->q.indirect = true;
	for (unsigned int i = 0; i < 12; i++)
		set_idesc(e, t, i, BUF_A + i, 1,
			  (i >= 10 ? VRING_DESC_F_WRITE : 0) | (i < 11 ? VRING_DESC_F_NEXT : 0),
			  (uint16_t)(i + 1));
	set_desc(e, 0, t, 12 * 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.nout, 1);
	assert_int_equal(c.nin, 1);
	assert_int_equal(c.iov[0].iov_len, 10);
	assert_ptr_equal(c.iov[1].iov_base, gpa_host(e, BUF_A + 10));
	assert_int_equal(c.iov[1].iov_len, 2);
}

/*
 * Zero-length descriptors count against the chain limit: VQ_MAX_CHAIN of
 * them are a valid (empty) chain, one more breaks the queue. Before, an
 * indirect table of 32768 of them was walked whole.
 */
static void test_pop_chain_limit_counts_zero_length(void **state)
{
	struct env *e = *state;
	const uint64_t t = BUF_A; /* the table runs on into region B */
	struct vq_chain c;

	e->q.indirect = true;
	for (unsigned int i = 0; i <= VQ_MAX_CHAIN; i++)
		set_idesc(e, t, i, BUF_B, 0, VRING_DESC_F_NEXT, (uint16_t)(i + 1));
	set_idesc(e, t, VQ_MAX_CHAIN - 1, BUF_B, 0, 0, 0);
	set_desc(e, 0, t, VQ_MAX_CHAIN * 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.nout + c.nin, 0);

	set_idesc(e, t, VQ_MAX_CHAIN - 1, BUF_B, 0, VRING_DESC_F_NEXT, VQ_MAX_CHAIN);
	set_idesc(e, t, VQ_MAX_CHAIN, BUF_B, 0, 0, 0);
	set_desc(e, 1, t, (VQ_MAX_CHAIN + 1) * 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(e, 1);
	assert_pop_breaks(e);
}

/*
 * More pieces than VQ_MAX_IOV (buffers crossing 30 regions adjacent in gpa
 * but not on the host): the chain is valid, its first VQ_MAX_IOV pieces are
 * kept and it says it was truncated.
 */
static void test_pop_truncated_iovecs(void **state)
{
	enum { NREG = 30, RSZ = 64, NBUF = 35 };
	static uint8_t host[NREG][2 * RSZ];
	struct env *e = *state;
	const uint64_t base = 0x10000000, t = BUF_A;
	struct vq_chain c;

	for (unsigned int k = 0; k < NREG; k++) {
		struct vhost_user_mem_region r = {
		    .guest_phys_addr = base + k * RSZ,
		    .memory_size = RSZ,
		    .userspace_addr = 0x7f5000000000ull + k * 2 * RSZ,
		};
		assert_int_equal(gmem_add_host(&e->mem, &r, host[k]), 0);
	}
	e->q.indirect = true;
	for (unsigned int i = 0; i < NBUF; i++)
		set_idesc(e, t, i, base, NREG * RSZ, i + 1 < NBUF ? VRING_DESC_F_NEXT : 0,
			  (uint16_t)(i + 1));
	set_desc(e, 0, t, NBUF * 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_true(c.truncated);
	assert_int_equal(c.nout, VQ_MAX_IOV);
	assert_int_equal(c.out_len, (uint64_t)VQ_MAX_IOV * RSZ);
	assert_ptr_equal(c.iov[VQ_MAX_IOV - 1].iov_base, host[(VQ_MAX_IOV - 1) % NREG]);
	assert_false(e->q.broken);
}

/* An indirect table contiguous in guest memory across the A/B boundary. */
static void test_pop_indirect_spanning_regions(void **state)
{
	struct env *e = *state;
	const uint64_t t = GPA_B - 24; /* entry 1 straddles the boundary */
	uint8_t raw[16];
	struct vq_chain c;

	e->q.indirect = true;
	set_idesc(e, t, 0, BUF_A, 5, VRING_DESC_F_NEXT, 1);
	/* Entry 1 by hand: 8 bytes at the end of A, 8 at the start of B. */
	tdesc_put(raw, BUF_B + 0x20, 6, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	memcpy(host_a(e) + REG_SIZE - 8, raw, 8);
	memcpy(host_b(e), raw + 8, 8);
	set_idesc(e, t, 2, BUF_B + 0x40, 7, VRING_DESC_F_WRITE, 0);
	set_desc(e, 2, t, 48, VRING_DESC_F_INDIRECT, 0);
	make_avail(e, 2);

	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.nout, 1);
	assert_int_equal(c.nin, 2);
	assert_ptr_equal(c.iov[0].iov_base, gpa_host(e, BUF_A));
	assert_ptr_equal(c.iov[1].iov_base, gpa_host(e, BUF_B + 0x20));
	assert_int_equal(c.iov[1].iov_len, 6);
	assert_ptr_equal(c.iov[2].iov_base, gpa_host(e, BUF_B + 0x40));
	assert_int_equal(c.in_len, 13);
}

/* An indirect descriptor ending a direct chain (no NEXT on it) is followed. */
static void test_pop_indirect_after_direct(void **state)
{
	struct env *e = *state;
	const uint64_t t = BUF_B + 0x100;
	struct vq_chain c;

	e->q.indirect = true;
	set_idesc(e, t, 0, BUF_A + 0x10, 4, VRING_DESC_F_NEXT, 1);
	set_idesc(e, t, 1, BUF_A + 0x20, 8, VRING_DESC_F_WRITE, 0);
	set_desc(e, 0, BUF_A, 2, VRING_DESC_F_NEXT, 5);
	set_desc(e, 5, t, 32, VRING_DESC_F_INDIRECT, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.head, 0);
	assert_int_equal(c.nout, 2);
	assert_int_equal(c.nin, 1);
	assert_int_equal(c.out_len, 6);
	assert_int_equal(c.in_len, 8);
	assert_ptr_equal(c.iov[1].iov_base, gpa_host(e, BUF_A + 0x10));
}

/* A broken queue is usable again once the ring is set up again. */
static void test_remap_clears_broken(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	make_avail(e, NUM);
	assert_int_equal(vq_pop(&e->q, &c), -EIO);
	assert_true(e->q.broken);
	/* The frontend resets the ring: new base, sane contents. */
	avail_ring(e)->ring[0] = htole16(0);
	e->q.last_avail = 0;
	assert_int_equal(vq_map(&e->q, &e->mem), 0);
	assert_false(e->q.broken);
	set_desc(e, 0, BUF_A, 9, 0, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.out_len, 9);
}

/* The reason is logged once, however often the queue is found broken. */
static void test_broken_logged_once(void **state)
{
	struct env *e = *state;
	struct vq_chain c;
	char buf[4096];
	FILE *f = tmpfile();
	int saved;
	ssize_t n;
	char *p;
	int lines = 0;

	assert_non_null(f);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);

	vq_set_broken(&e->q, "first reason %d", 42);
	vq_set_broken(&e->q, "second reason");
	make_avail(e, NUM);
	assert_int_equal(vq_pop(&e->q, &c), -EIO);

	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	n = pread(fileno(f), buf, sizeof(buf) - 1, 0);
	fclose(f);
	assert_true(n > 0);
	buf[n] = 0;
	for (p = buf; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, 1);
	assert_non_null(strstr(buf, "vq 1"));
	assert_non_null(strstr(buf, "first reason 42"));
	assert_null(strstr(buf, "second"));
}

/* Alignment is checked on the user address and on the host pointer. */
static void test_map_alignment_both_spaces(void **state)
{
	struct env *e = *state;
	const uint64_t uva = 0x7f3400000000ull;
	const uint64_t d = UVA_A + DESC_OFF, a = UVA_A + AVAIL_OFF, u = UVA_A + USED_OFF;
	struct vhost_user_mem_region r = {
	    .guest_phys_addr = 0x200000,
	    .memory_size = 0x1000,
	    .userspace_addr = uva,
	};

	/* A region whose host pointer is 2 bytes off its user address's alignment. */
	assert_int_equal(gmem_add_host(&e->mem, &r, host_a(e) + 0x2002), 0);
	set_ring_addrs(e, NUM, uva + 0xe, a, u);
	assert_int_equal(vq_map(&e->q, &e->mem), -EINVAL); /* host aligned, uaddr not */
	set_ring_addrs(e, NUM, uva + 0x10, a, u);
	assert_int_equal(vq_map(&e->q, &e->mem), -EINVAL); /* uaddr aligned, host not */
	set_ring_addrs(e, NUM, d, a, uva + 0x402);
	assert_int_equal(vq_map(&e->q, &e->mem), -EINVAL);
	set_ring_addrs(e, NUM, d, a, uva + 0x400);
	assert_int_equal(vq_map(&e->q, &e->mem), -EINVAL);
	set_ring_addrs(e, NUM, d, uva + 0x200, u);
	assert_int_equal(vq_map(&e->q, &e->mem), 0);
	assert_ptr_equal(e->q.avail, host_a(e) + 0x2202);
	assert_int_equal(gmem_remove(&e->mem, &r), 0);
}

/* Indirect tables up to 32768 entries; one more is refused even in memory. */
static void test_indirect_size_limit(void **state)
{
	struct env *e = *state;
	const uint64_t gpa = 0x40000000;
	const size_t len = (32768 + 1) * 16;
	struct vhost_user_mem_region r = {
	    .guest_phys_addr = gpa,
	    .memory_size = len,
	    .userspace_addr = 0x7f5600000000ull,
	};
	uint8_t *big = calloc(1, len);
	struct vq_chain c;

	assert_non_null(big);
	assert_int_equal(gmem_add_host(&e->mem, &r, big), 0);
	e->q.indirect = true;
	tdesc_put(big, BUF_A, 4, 0, 0);
	set_desc(e, 0, gpa, 32768 * 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.out_len, 4);
	set_desc(e, 1, gpa, 32769 * 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(e, 1);
	assert_pop_breaks(e);
	assert_int_equal(gmem_remove(&e->mem, &r), 0);
	free(big);
}

/* ---- more hostile guests ---- */

static void test_bad_indirect_not_negotiated(void **state)
{
	struct env *e = *state;

	set_idesc(e, BUF_B, 0, BUF_A, 4, 0, 0);
	set_desc(e, 0, BUF_B, 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(e, 0);
	assert_pop_breaks(e);
}

static void bad_indirect(struct env *e, uint64_t table, uint32_t len, uint16_t flags)
{
	e->q.indirect = true;
	set_desc(e, 0, table, len, VRING_DESC_F_INDIRECT | flags, 1);
	set_desc(e, 1, BUF_A, 4, 0, 0);
	make_avail(e, 0);
	assert_pop_breaks(e);
}

static void test_bad_indirect_len_zero(void **state)
{
	struct env *e = *state;

	set_idesc(e, BUF_B, 0, BUF_A, 4, 0, 0);
	bad_indirect(e, BUF_B, 0, 0);
}

static void test_bad_indirect_len_odd(void **state)
{
	struct env *e = *state;

	set_idesc(e, BUF_B, 0, BUF_A, 4, 0, 0);
	set_idesc(e, BUF_B, 1, BUF_A, 4, 0, 0);
	bad_indirect(e, BUF_B, 24, 0);
}

static void test_bad_indirect_too_long(void **state)
{
	struct env *e = *state;

	/* Rejected on its length alone, before looking at memory. */
	bad_indirect(e, BUF_B, (32768 + 1) * 16, 0);
}

static void test_bad_indirect_with_next(void **state)
{
	struct env *e = *state;

	set_idesc(e, BUF_B, 0, BUF_A, 4, 0, 0);
	bad_indirect(e, BUF_B, 16, VRING_DESC_F_NEXT);
}

static void test_bad_indirect_outside(void **state)
{
	struct env *e = *state;

	bad_indirect(e, GPA_A - 0x100, 32, 0);
}

static void test_bad_indirect_partly_outside(void **state)
{
	struct env *e = *state;

	set_idesc(e, GPA_B + REG_SIZE - 16, 0, BUF_A, 4, 0, 0);
	bad_indirect(e, GPA_B + REG_SIZE - 16, 32, 0);
}

static void test_bad_indirect_wraps(void **state)
{
	struct env *e = *state;

	bad_indirect(e, UINT64_MAX - 15, 32, 0);
}

static void test_bad_indirect_nested(void **state)
{
	struct env *e = *state;

	set_idesc(e, BUF_B, 0, BUF_A, 4, VRING_DESC_F_NEXT, 1);
	set_idesc(e, BUF_B, 1, BUF_B + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	set_idesc(e, BUF_B + 0x100, 0, BUF_A, 4, 0, 0);
	bad_indirect(e, BUF_B, 32, 0);
}

static void test_bad_indirect_loop(void **state)
{
	struct env *e = *state;

	set_idesc(e, BUF_B, 0, BUF_A, 4, VRING_DESC_F_NEXT, 1);
	set_idesc(e, BUF_B, 1, BUF_A, 4, VRING_DESC_F_NEXT, 2);
	set_idesc(e, BUF_B, 2, BUF_A, 4, VRING_DESC_F_NEXT, 1);
	bad_indirect(e, BUF_B, 48, 0);
}

static void test_bad_indirect_next(void **state)
{
	struct env *e = *state;

	/* next 3 fits the ring of 8 but not this table of 3. */
	set_idesc(e, BUF_B, 0, BUF_A, 4, VRING_DESC_F_NEXT, 3);
	set_idesc(e, BUF_B, 3, BUF_A, 4, 0, 0);
	bad_indirect(e, BUF_B, 48, 0);
}

static void test_bad_indirect_read_after_write(void **state)
{
	struct env *e = *state;

	set_idesc(e, BUF_B, 0, BUF_A, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_idesc(e, BUF_B, 1, BUF_A, 4, 0, 0);
	bad_indirect(e, BUF_B, 32, 0);
}

/* Writable in the direct part, readable inside the indirect table. */
static void test_bad_read_after_write_into_indirect(void **state)
{
	struct env *e = *state;

	e->q.indirect = true;
	set_idesc(e, BUF_B, 0, BUF_A, 4, 0, 0);
	set_desc(e, 0, BUF_A, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(e, 1, BUF_B, 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(e, 0);
	assert_pop_breaks(e);
}

static void test_bad_buffer_wraps(void **state)
{
	struct env *e = *state;

	set_desc(e, 0, UINT64_MAX - 0xff, 0x200, 0, 0);
	make_avail(e, 0);
	assert_pop_breaks(e);
}

/* Buffers in the guard gap: adjacent on the host, not guest memory. */
static void test_bad_buffer_past_region(void **state)
{
	struct env *e = *state;

	set_desc(e, 0, BUF_A, 4, VRING_DESC_F_NEXT, 1);
	set_desc(e, 1, GPA_B + REG_SIZE, 1, VRING_DESC_F_WRITE, 0);
	make_avail(e, 0);
	assert_pop_breaks(e);
}

static void test_bad_inflight(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	for (uint16_t i = 0; i < NUM; i++) {
		set_desc(e, i, BUF_A, 1, 0, 0);
		make_avail(e, i);
		assert_int_equal(vq_pop(&e->q, &c), 1);
	}
	assert_int_equal(e->q.inflight, NUM);
	/* The guest reuses head 0 although we never returned it. */
	make_avail(e, 0);
	assert_int_equal(vq_avail_count(&e->q), 1);
	assert_pop_breaks(e);
}

static void test_bad_push_nothing_inflight(void **state)
{
	struct env *e = *state;
	struct vq_used u[2] = {{.id = 0, .len = 0}, {.id = 1, .len = 0}};
	struct vq_chain c;

	snap_used(e);
	assert_int_equal(vq_push(&e->q, 0, 0), -EIO);
	assert_true(e->q.broken);
	assert_used_untouched(e);

	/* Two pushed with one in flight. */
	e->q.broken = false;
	set_desc(e, 0, BUF_A, 1, 0, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	snap_used(e);
	assert_int_equal(vq_push_batch(&e->q, u, 2), -EIO);
	assert_true(e->q.broken);
	assert_used_untouched(e);
	assert_int_equal(e->q.inflight, 1);
}

/* A bad id anywhere in a batch: nothing of the batch is published. */
static void test_bad_push_batch_head(void **state)
{
	struct env *e = *state;
	struct vq_used u[3] = {{.id = 0, .len = 1}, {.id = 0x10000, .len = 2}, {.id = 1, .len = 3}};
	struct vq_chain c;

	for (uint16_t i = 0; i < 3; i++) {
		set_desc(e, i, BUF_A, 1, 0, 0);
		make_avail(e, i);
		assert_int_equal(vq_pop(&e->q, &c), 1);
	}
	snap_used(e);
	assert_int_equal(vq_push_batch(&e->q, u, 3), -EIO);
	assert_used_untouched(e);
	assert_int_equal(e->q.used_idx, 0);
	assert_stays_broken(e);
}

/* ---- notifications ---- */

static void test_notify_no_event_idx(void **state)
{
	struct env *e = *state;

	used_event_set(e, 0x7000); /* ignored without EVENT_IDX */
	assert_true(vq_should_notify(&e->q));
	pop_push(e, 0);
	assert_true(vq_should_notify(&e->q));
	avail_ring(e)->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	pop_push(e, 1);
	assert_false(vq_should_notify(&e->q));
	avail_ring(e)->flags = 0;
	assert_true(vq_should_notify(&e->q));
}

static void test_notify_event_idx(void **state)
{
	struct env *e = *state;

	e->q.event_idx = true;
	/* The first call after map always signals. */
	used_event_set(e, 0x7000);
	assert_true(vq_should_notify(&e->q));
	assert_true(e->q.signalled_used_valid);
	assert_int_equal(e->q.signalled_used, 0);
	/* Nothing new since: no. */
	assert_false(vq_should_notify(&e->q));

	/* used 0 -> 1, guest waits for entry 0: yes. */
	used_event_set(e, 0);
	pop_push(e, 0);
	assert_true(vq_should_notify(&e->q));
	assert_int_equal(e->q.signalled_used, 1);

	/* used 1 -> 2, guest waits for entry 5: no. */
	used_event_set(e, 5);
	pop_push(e, 1);
	assert_false(vq_should_notify(&e->q));
	assert_int_equal(e->q.signalled_used, 2);

	/* 2 -> 5: entry 5 not written yet. */
	pop_push(e, 2);
	pop_push(e, 3);
	pop_push(e, 4);
	assert_false(vq_should_notify(&e->q));
	/* 5 -> 6: entry 5 written now. */
	pop_push(e, 5);
	assert_true(vq_should_notify(&e->q));

	/* 6 -> 9 passes 7 inside the step: yes, and NO_INTERRUPT is ignored. */
	avail_ring(e)->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	used_event_set(e, 7);
	pop_push(e, 6);
	pop_push(e, 7);
	pop_push(e, 0);
	assert_true(vq_should_notify(&e->q));
	assert_int_equal(e->q.signalled_used, 9);

	/* Re-mapping forgets what was signalled. */
	used_event_set(e, 0x7000);
	assert_int_equal(vq_map(&e->q, &e->mem), 0);
	assert_true(vq_should_notify(&e->q));
}

static void test_notify_event_idx_wrap(void **state)
{
	struct env *e = *state;

	used_ring(e)->idx = htole16(65534);
	e->q.last_avail = 0xfff0;
	set_avail_idx(e, 0xfff0);
	e->q.event_idx = true;
	assert_int_equal(vq_map(&e->q, &e->mem), 0);
	assert_true(vq_should_notify(&e->q)); /* first */
	assert_int_equal(e->q.signalled_used, 65534);

	/* 65534 -> 1 across the wrap; the guest waits for entry 65535. */
	used_event_set(e, 65535);
	pop_push(e, 0);
	pop_push(e, 1);
	pop_push(e, 2);
	assert_int_equal(e->q.used_idx, 1);
	assert_true(vq_should_notify(&e->q));

	/* 1 -> 2, guest still at 65535 (long passed): no. */
	pop_push(e, 3);
	assert_false(vq_should_notify(&e->q));
}

static void test_notify_on_empty(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	e->q.event_idx = true;
	assert_true(vq_should_notify(&e->q)); /* first */
	used_event_set(e, 0x7000);

	/* Something in flight: the guest's event index decides (no). */
	e->q.notify_on_empty = true;
	set_desc(e, 0, BUF_A, 1, 0, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_false(vq_should_notify(&e->q));
	/* Ring empty and nothing in flight: yes despite the event index. */
	assert_int_equal(vq_push(&e->q, 0, 0), 0);
	assert_true(vq_should_notify(&e->q));
	/* Available but not popped: not empty. */
	make_avail(e, 0);
	assert_false(vq_should_notify(&e->q));
	/* Without the feature: no. */
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(vq_push(&e->q, 0, 0), 0);
	e->q.notify_on_empty = false;
	assert_false(vq_should_notify(&e->q));

	/* Without EVENT_IDX it overrides NO_INTERRUPT. */
	e->q.event_idx = false;
	avail_ring(e)->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	assert_false(vq_should_notify(&e->q));
	e->q.notify_on_empty = true;
	assert_true(vq_should_notify(&e->q));
}

/* Count of the eventfd, 0 when nothing was written. */
static uint64_t eventfd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) < 0) {
		assert_int_equal(errno, EAGAIN);
		return 0;
	}
	return v;
}

static void test_notify_writes_call_fd(void **state)
{
	struct env *e = *state;
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	assert_true(fd >= 0);
	/* No call fd: nothing to do, no error. */
	assert_int_equal(vq_notify(&e->q), 0);
	assert_int_equal(vq_notify_force(&e->q), 0);

	e->q.call_fd = fd;
	assert_int_equal(vq_notify(&e->q), 0);
	assert_int_equal(eventfd_take(fd), 1);
	avail_ring(e)->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	assert_int_equal(vq_notify(&e->q), 0);
	assert_int_equal(eventfd_take(fd), 0);
	assert_int_equal(vq_notify_force(&e->q), 0);
	assert_int_equal(eventfd_take(fd), 1);

	/* Broken: nothing written. */
	avail_ring(e)->flags = 0;
	vq_set_broken(&e->q, "test");
	assert_int_equal(vq_notify(&e->q), -EIO);
	assert_int_equal(vq_notify_force(&e->q), -EIO);
	assert_int_equal(eventfd_take(fd), 0);
}

/* ---- kick suppression ---- */

static void test_kick_notify_flags(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	avail_event_set(e, 0x4444);
	assert_false(vq_set_kick_notify(&e->q, false));
	assert_int_equal(le16toh(used_ring(e)->flags), VRING_USED_F_NO_NOTIFY);
	assert_false(vq_set_kick_notify(&e->q, true));
	assert_int_equal(le16toh(used_ring(e)->flags), 0);

	/* A buffer arrived while kicks were off: the re-check sees it. */
	assert_false(vq_set_kick_notify(&e->q, false));
	set_desc(e, 0, BUF_A, 1, 0, 0);
	make_avail(e, 0);
	assert_true(vq_set_kick_notify(&e->q, true));
	assert_int_equal(le16toh(used_ring(e)->flags), 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_false(vq_set_kick_notify(&e->q, true));
	/* avail_event is not ours to touch in this mode. */
	assert_int_equal(avail_event_get(e), 0x4444);
}

static void test_kick_notify_event_idx(void **state)
{
	struct env *e = *state;
	struct vq_chain c;

	e->q.event_idx = true;
	e->q.last_avail = 0x1234;
	set_avail_idx(e, 0x1234);
	avail_event_set(e, 0x4444);

	/* Disabling leaves avail_event alone; flags are never used. */
	assert_false(vq_set_kick_notify(&e->q, false));
	assert_int_equal(avail_event_get(e), 0x4444);
	assert_int_equal(le16toh(used_ring(e)->flags), 0);

	assert_false(vq_set_kick_notify(&e->q, true));
	assert_int_equal(avail_event_get(e), 0x1234);
	assert_int_equal(le16toh(used_ring(e)->flags), 0);

	/* Arrived meanwhile. */
	set_desc(e, 2, BUF_A, 1, 0, 0);
	make_avail(e, 2);
	assert_true(vq_set_kick_notify(&e->q, true));
	assert_int_equal(avail_event_get(e), 0x1234);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.head, 2);
	assert_false(vq_set_kick_notify(&e->q, true));
	assert_int_equal(avail_event_get(e), 0x1235);
}

static void test_drain_kick(void **state)
{
	struct env *e = *state;
	uint64_t three = 3;
	/* Non-blocking, as the backend makes every kick fd on receipt. */
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int p[2];

	assert_true(fd >= 0);
	assert_int_equal(vq_drain_kick(&e->q), 0); /* no fd: nothing */
	e->q.kick_fd = fd;
	assert_int_equal(write(fd, &three, sizeof(three)), sizeof(three));
	assert_true(tfd_readable(fd, 0));
	assert_int_equal(vq_drain_kick(&e->q), 0);
	assert_false(tfd_readable(fd, 0));
	/* Nothing pending: must not block. */
	assert_int_equal(vq_drain_kick(&e->q), 0);
	assert_false(tfd_readable(fd, 0));
	close(fd);

	/* A pipe whose writer hung up: end of file, said so. */
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	close(p[1]);
	e->q.kick_fd = p[0];
	assert_int_equal(vq_drain_kick(&e->q), -EPIPE);
	close(p[0]);
	e->q.kick_fd = -1;
}

/* ---- iov copies ---- */

static void test_iov_read_write(void **state)
{
	uint8_t a[3], b[1], d[5];
	struct iovec iov[4] = {
	    {.iov_base = a, .iov_len = sizeof(a)},
	    {.iov_base = b, .iov_len = 0},
	    {.iov_base = b, .iov_len = sizeof(b)},
	    {.iov_base = d, .iov_len = sizeof(d)},
	};
	uint8_t out[16], in[16];

	(void)state;
	for (unsigned int i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(0x10 + i);
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(d, 0, sizeof(d));

	/* Bytes 2..6: end of a, all of b, start of d. */
	assert_int_equal(vq_iov_write(iov, 4, 2, in, 5), 5);
	assert_int_equal(a[0], 0);
	assert_int_equal(a[1], 0);
	assert_int_equal(a[2], 0x10);
	assert_int_equal(b[0], 0x11);
	assert_int_equal(d[0], 0x12);
	assert_int_equal(d[2], 0x14);
	assert_int_equal(d[3], 0);

	memset(out, 0xee, sizeof(out));
	assert_int_equal(vq_iov_read(iov, 4, 1, out, 4), 4);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 0x10);
	assert_int_equal(out[2], 0x11);
	assert_int_equal(out[3], 0x12);
	assert_int_equal(out[4], 0xee);

	/* Short at the end: 9 bytes in all. */
	assert_int_equal(vq_iov_write(iov, 4, 7, in, sizeof(in)), 2);
	assert_int_equal(d[3], 0x10);
	assert_int_equal(d[4], 0x11);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(vq_iov_read(iov, 4, 0, out, sizeof(out)), 9);
	assert_int_equal(out[8], 0x11);
	assert_int_equal(out[9], 0xee);
	/* Offset at or past the end, zero length, no iovecs. */
	assert_int_equal(vq_iov_read(iov, 4, 9, out, 4), 0);
	assert_int_equal(vq_iov_read(iov, 4, 100, out, 4), 0);
	assert_int_equal(vq_iov_write(iov, 4, 9, in, 4), 0);
	assert_int_equal(vq_iov_read(iov, 4, 0, out, 0), 0);
	assert_int_equal(vq_iov_read(iov, 0, 0, out, 4), 0);
	assert_int_equal(vq_iov_write(iov, 0, 0, in, 4), 0);
}

/* Copies through a popped chain reach the guest buffers across regions. */
static void test_iov_through_chain(void **state)
{
	struct env *e = *state;
	const char msg[] = "0123456789abcdefghij";
	char back[sizeof(msg)];
	struct vq_chain c;

	set_desc(e, 0, BUF_A, 2, VRING_DESC_F_NEXT, 1);
	set_desc(e, 1, GPA_B - 5, (uint32_t)sizeof(msg) - 2, VRING_DESC_F_WRITE, 0);
	make_avail(e, 0);
	assert_int_equal(vq_pop(&e->q, &c), 1);
	assert_int_equal(c.nin, 2);
	assert_int_equal(vq_iov_write(c.iov + c.nout, c.nin, 0, msg + 2, sizeof(msg) - 2),
			 sizeof(msg) - 2);
	assert_memory_equal(host_a(e) + REG_SIZE - 5, msg + 2, 5);
	assert_memory_equal(host_b(e), msg + 7, sizeof(msg) - 7);
	memcpy(gpa_host(e, BUF_A), msg, 2);
	assert_int_equal(vq_iov_read(c.iov, c.nout + c.nin, 0, back, sizeof(back)), sizeof(msg));
	assert_memory_equal(back, msg, sizeof(msg));
}

/* A call counter at its maximum: the guest has a signal pending, not an error. */
static void test_notify_saturated_call_fd(void **state)
{
	const uint64_t full = UINT64_MAX - 1; /* largest value an eventfd holds */
	struct vq q;
	uint64_t v = 0;
	int fd;

	(void)state;
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(fd >= 0);
	vq_init(&q, 0);
	q.call_fd = fd;
	assert_int_equal(vq_notify_force(&q), 0);
	assert_int_equal(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v));
	assert_int_equal(v, 1);
	assert_int_equal(write(fd, &full, sizeof(full)), (ssize_t)sizeof(full));
	assert_int_equal(vq_notify_force(&q), 0);
	assert_false(q.broken);
	assert_int_equal(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v));
	assert_int_equal(v, full);
	close(fd);
}

/* A call fd that cannot be written: the error is returned, not swallowed. */
static void test_notify_unwritable_call_fd(void **state)
{
	struct vq q;
	int fd;

	(void)state;
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	vq_init(&q, 0);
	q.call_fd = fd;
	assert_int_equal(vq_notify_force(&q), -EBADF);
	close(fd);
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
	    cmocka_unit_test_setup_teardown(test_bad_read_after_empty_write, setup_mapped,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_avail_jump, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_push_head, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_index_wrap, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_pop_sets_avail_event, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_pop_arms_kick, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_pop_suppresses_kicks, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_pop_long_chain, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_pop_coalesces_adjacent, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_pop_chain_limit_counts_zero_length, setup_mapped,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_pop_truncated_iovecs, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_pop_indirect_spanning_regions, setup_mapped,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_pop_indirect_after_direct, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_remap_clears_broken, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_broken_logged_once, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_indirect_not_negotiated, setup_mapped,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_indirect_len_zero, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_indirect_len_odd, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_indirect_too_long, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_indirect_with_next, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_indirect_outside, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_indirect_partly_outside, setup_mapped,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_indirect_wraps, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_indirect_nested, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_indirect_loop, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_indirect_next, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_indirect_read_after_write, setup_mapped,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_read_after_write_into_indirect, setup_mapped,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_buffer_wraps, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_buffer_past_region, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_inflight, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_push_nothing_inflight, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_push_batch_head, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_notify_no_event_idx, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_notify_event_idx, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_notify_event_idx_wrap, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_notify_on_empty, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_notify_writes_call_fd, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_kick_notify_flags, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_kick_notify_event_idx, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_kick, setup_mapped, teardown),
	    cmocka_unit_test(test_iov_read_write),
	    cmocka_unit_test_setup_teardown(test_map_alignment_both_spaces, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_indirect_size_limit, setup_mapped, teardown),
	    cmocka_unit_test_setup_teardown(test_iov_through_chain, setup_mapped, teardown),
	    cmocka_unit_test(test_notify_saturated_call_fd),
	    cmocka_unit_test(test_notify_unwritable_call_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
