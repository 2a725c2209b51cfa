/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Backend: ring lifecycle, memory tables and their effect on running rings, resets. */
#include "test_backend.h"
#include "tfd.h"

#define TB_OFFERED (TB_DEV_FEATURES | VU_BACKEND_TRANSPORT_FEATURES)

/* used->idx of ring i in the test's view of guest memory. */
static void set_used_idx(uint8_t *mem, unsigned int i, uint16_t v)
{
	memcpy(mem + i * TB_RING_STRIDE + TB_USED_OFF + 2, &v, 2);
}

static void test_ring_lifecycle_with_enable(void **state)
{
	struct tb *t = tb_new();
	struct vq *q = vu_backend_vq(t->b, 0);
	struct vu_msg r;
	int call, kick, c0;

	(void)state;
	tb_negotiate(t, TB_OFFERED, tb_pf_all());
	tb_mem_table(t);
	set_used_idx(t->mem, 0, 7);
	tb_ring_setup(t, 0, 5);
	call = tb_ring_fd(t, VHOST_USER_SET_VRING_CALL, 0);
	c0 = tfd_count();
	kick = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 0);
	tb_no_reply(t);
	/* Started, but PROTOCOL_FEATURES was negotiated: not enabled, not the device's. */
	assert_true(q->started);
	assert_false(q->enabled);
	assert_int_equal(t->dev.starts[0], 0);
	assert_int_equal(tb_eventfd_read(call), 0);

	/* ENABLE 1: start, one kick to process what is there, one call. */
	unsigned int mark = t->dev.nlog;
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_ENABLE, 0, 1), 0);
	assert_int_equal(t->dev.starts[0], 1);
	assert_int_equal(t->dev.kicks[0], 1);
	int s = tb_find(&t->dev, TB_EV_START, 0, mark);
	assert_true(s >= 0 && tb_find(&t->dev, TB_EV_KICK, 0, (unsigned int)s) > s);
	assert_true(t->dev.start_had_rings[0]);
	assert_int_equal(t->dev.start_used_idx[0], 7);
	assert_int_equal(q->last_avail, 5);
	assert_int_equal(tb_eventfd_read(call), 1);
	/* The device's pointers are into the memory the test writes. */
	set_used_idx(t->mem, 0, 8);
	assert_int_equal(q->used->idx, 8);

	/* A guest kick reaches the device once, and is consumed. */
	tb_eventfd_signal(kick);
	tb_dispatch(t);
	assert_int_equal(t->dev.kicks[0], 2);
	assert_int_equal(tb_eventfd_read(kick), 0);
	tb_dispatch(t);
	assert_int_equal(t->dev.kicks[0], 2);

	/* ENABLE 0: stopped; a kick meanwhile is consumed but not delivered. */
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_ENABLE, 0, 0), 0);
	assert_int_equal(t->dev.stops[0], 1);
	tb_eventfd_signal(kick);
	tb_dispatch(t);
	assert_int_equal(t->dev.kicks[0], 2);
	assert_int_equal(tb_eventfd_read(kick), 0);
	/* ENABLE 1 again: start, kick, call. */
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_ENABLE, 0, 1), 0);
	assert_int_equal(t->dev.starts[0], 2);
	assert_int_equal(t->dev.kicks[0], 3);
	assert_int_equal(tb_eventfd_read(call), 1);

	/* GET_VRING_BASE: queue_stop before the reply, then {index, last_avail}. */
	q->last_avail = 9; /* as if the device had popped four chains */
	tb_req(t, VHOST_USER_GET_VRING_BASE, 0, &(struct vhost_user_vring_state){0, 0}, 8, NULL, 0);
	assert_int_equal(t->dev.stops[0], 2);
	assert_false(t->dev.reply_before_stop);
	tb_reply(t, VHOST_USER_GET_VRING_BASE, &r);
	assert_int_equal(r.hdr.size, 8);
	assert_int_equal(r.payload.state.index, 0);
	assert_int_equal(r.payload.state.num, 9);
	assert_false(q->started);
	assert_int_equal(q->kick_fd, -1);
	assert_null(q->desc);
	/* The backend's copy of the kick fd is gone; kicks are not watched. */
	assert_int_equal(tfd_count(), c0 + 1);
	tb_eventfd_signal(kick);
	tb_dispatch(t);
	assert_int_equal(t->dev.kicks[0], 3);

	/* NUM and BASE are allowed again, and a new kick fd restarts it. */
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_BASE, 0, 9), 0);
	close(kick);
	kick = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 0);
	assert_true(q->started && q->enabled);
	assert_int_equal(t->dev.starts[0], 3);
	close(kick);
	close(call);
	tb_free(t);
}

static void test_ring_enabled_without_protocol_features(void **state)
{
	struct tb *t = tb_new();
	struct vq *q = vu_backend_vq(t->b, 1);
	int kick;

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_FEATURES, TB_OFFERED & ~TB_F_PROTOCOL);
	tb_mem_table(t);
	tb_ring_setup(t, 1, 0);
	kick = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 1);
	tb_no_reply(t);
	assert_true(q->started && q->enabled);
	assert_int_equal(t->dev.starts[1], 1);
	assert_int_equal(t->dev.kicks[1], 1);
	/* No call fd: the forced notification is skipped, nothing breaks. */
	assert_false(q->broken);
	close(kick);
	tb_free(t);
}

static void test_ring_waits_for_memory(void **state)
{
	struct tb *t = tb_new();
	struct vq *q = vu_backend_vq(t->b, 2);
	int call, kick;

	(void)state;
	/* The virtio-loopback order: CALL and the ring before the memory table. */
	tb_set_u64(t, VHOST_USER_SET_FEATURES, TB_OFFERED & ~TB_F_PROTOCOL);
	call = tb_ring_fd(t, VHOST_USER_SET_VRING_CALL, 2);
	tb_ring_setup(t, 2, 0);
	kick = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 2);
	tb_no_reply(t);
	assert_false(q->started);
	assert_int_equal(t->dev.starts[2], 0);
	tb_mem_table(t);
	assert_true(q->started);
	assert_int_equal(t->dev.starts[2], 1);
	assert_int_equal(tb_eventfd_read(call), 1);
	close(kick);
	close(call);
	tb_free(t);
}

static void test_kick_cannot_start_outside_memory(void **state)
{
	struct tb *t = tb_new();
	struct vq *q = vu_backend_vq(t->b, 0);
	struct vhost_user_vring_addr a = tb_addr(0);
	uint64_t v = 0;
	int kick, c0;

	(void)state;
	tb_negotiate(t, TB_OFFERED, tb_pf_all());
	tb_req(t, VHOST_USER_SET_VRING_NUM, 0,
	       &(struct vhost_user_vring_state){.index = 0, .num = TB_RING_NUM}, 8, NULL, 0);
	/* Stored before there is memory; outside the memory that comes later. */
	a.used_user_addr = TB_UVA + 2 * TB_MEM_SIZE;
	tb_req(t, VHOST_USER_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
	tb_mem_table(t);
	tb_no_reply(t);
	c0 = tfd_count();
	kick = eventfd(0, EFD_CLOEXEC);
	assert_int_not_equal(tb_ack(t, VHOST_USER_SET_VRING_KICK, &v, 8, &kick, 1), 0);
	assert_false(q->started);
	assert_int_equal(q->kick_fd, -1);
	close(kick);
	assert_int_equal(tfd_count(), c0);
	assert_int_equal(t->dev.starts[0], 0);
	tb_free(t);
}

static void test_num_base_refused_while_started(void **state)
{
	struct tb *t = tb_new();
	int kick;

	(void)state;
	tb_negotiate(t, TB_OFFERED, tb_pf_all());
	tb_mem_table(t);
	tb_ring_setup(t, 0, 0);
	kick = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 0);
	assert_int_not_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, 0, 128), 0);
	assert_int_not_equal(tb_ack_state(t, VHOST_USER_SET_VRING_BASE, 0, 3), 0);
	assert_int_equal(vu_backend_vq(t->b, 0)->num, TB_RING_NUM);
	assert_int_equal(vu_backend_vq(t->b, 0)->last_avail, 0);
	/* Other rings are not affected. */
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, 1, 128), 0);
	close(kick);
	tb_free(t);
}

/* SET_VRING_ADDR on a running ring takes it from the device and gives it back. */
static void test_addr_on_running_ring(void **state)
{
	struct tb *t = tb_new();
	struct vhost_user_vring_addr a = tb_addr(0);
	int kick;

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_FEATURES, TB_OFFERED & ~TB_F_PROTOCOL);
	tb_mem_table(t);
	tb_ring_setup(t, 0, 0);
	kick = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 0);
	assert_int_equal(t->dev.starts[0], 1);
	a.desc_user_addr = TB_UVA + 0x8000;
	tb_req(t, VHOST_USER_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
	tb_no_reply(t);
	assert_int_equal(t->dev.stops[0], 1);
	assert_int_equal(t->dev.starts[0], 2);
	/* The new desc address is what the device sees. */
	t->mem[0x8000] = 0x77;
	assert_non_null(vu_backend_vq(t->b, 0)->desc);
	assert_int_equal(((uint8_t *)vu_backend_vq(t->b, 0)->desc)[0], 0x77);
	close(kick);
	tb_free(t);
}

static void send_table_ack(struct tb *t, const struct vhost_user_mem_region *r, unsigned int n,
			   const int *fds, uint64_t expect_ok)
{
	struct vu_msg reply;

	tb_send_mem_table(t, VHOST_USER_NEED_REPLY_MASK, r, n, fds, n);
	tb_dispatch(t);
	tb_reply(t, VHOST_USER_SET_MEM_TABLE, &reply);
	assert_int_equal(reply.hdr.size, 8);
	if (expect_ok)
		assert_int_equal(reply.payload.u64, 0);
	else
		assert_int_not_equal(reply.payload.u64, 0);
	tb_no_reply(t);
}

static void test_mem_table_validation(void **state)
{
	struct tb *t = tb_new();
	struct vhost_user_mem_region r[3];
	int fds[3], c0;

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	for (int i = 0; i < 3; i++)
		fds[i] = t->memfd;
	c0 = tfd_count();

	/* Two regions, one at a non-zero offset; gpa != user address. */
	r[0] = tb_region(0x0, 0x4000, 0x500000, 0);
	r[1] = tb_region(0x10000, 0x4000, 0x600000, 0x8000);
	send_table_ack(t, r, 2, fds, 1);
	/* Every region fd was closed after mapping; the test's own mapping and two more. */
	assert_int_equal(tfd_count(), c0);
	assert_int_equal(tb_count_maps("memfd:guest"), 3);
	/* Failures keep the old table: overlap in gpa, in uaddr, zero size, wraps. */
	r[2] = tb_region(0x12000, 0x4000, 0x700000, 0);
	send_table_ack(t, r, 3, fds, 0);
	r[2] = tb_region(0x20000, 0x4000, 0x5ff000, 0);
	send_table_ack(t, r, 3, fds, 0);
	r[2] = tb_region(0x20000, 0, 0x700000, 0);
	send_table_ack(t, r, 3, fds, 0);
	r[2] = tb_region(UINT64_MAX - 0xfff, 0x2000, 0x700000, 0);
	send_table_ack(t, r, 3, fds, 0);
	r[2] = tb_region(0x20000, 0x1000, UINT64_MAX, 0);
	send_table_ack(t, r, 3, fds, 0);
	r[2] = tb_region(0x20000, 0x1000, 0x700000, UINT64_MAX - 0x10);
	send_table_ack(t, r, 3, fds, 0);
	/* Nothing of the failed tables stays mapped or open. */
	assert_int_equal(tfd_count(), c0);
	assert_int_equal(tb_count_maps("memfd:guest"), 3);

	/* The old table is intact: a ring at 0x600000 + x lives at file offset 0x8000 + x. */
	struct vhost_user_vring_addr a = {.index = 0,
					  .desc_user_addr = 0x600000,
					  .avail_user_addr = 0x601000,
					  .used_user_addr = 0x602000};
	uint16_t used = 0x4242;
	memcpy(t->mem + 0x8000 + 0x2000 + 2, &used, 2);
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, 0, TB_RING_NUM), 0);
	assert_int_equal(tb_ack(t, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	int kick = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 0);
	tb_no_reply(t);
	assert_int_equal(t->dev.starts[0], 1);
	assert_int_equal(t->dev.start_used_idx[0], 0x4242);
	close(kick);
	tb_free(t);

	/* Malformed tables end the connection: no regions, too many, sizes, fds. */
	struct {
		uint32_t n;    /* nregions field */
		uint32_t size; /* payload size */
		unsigned int nfds;
	} bad[] = {
	    {0, 8, 0},	    {0, 8 + 32, 1},	     {9, 8 + 8 * 32, 8}, {2, 8 + 32, 2},
	    {1, 8 + 64, 1}, {1, 8 + 32, 0},	     {2, 8 + 64, 1},	 {1, 8 + 32, 2},
	    {1, 4, 1},	    {UINT32_MAX, 8 + 32, 1},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vhost_user_mem_table mt;
		int f[8];

		print_message("case %zu\n", i);
		t = tb_new();
		tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
		memset(&mt, 0, sizeof(mt));
		mt.nregions = bad[i].n;
		for (unsigned int j = 0; j < 8; j++) {
			mt.regions[j] =
			    tb_region(j * 0x10000ull, 0x1000, 0x500000 + j * 0x10000ull, 0);
			f[j] = t->memfd;
		}
		tb_send(t, VHOST_USER_SET_MEM_TABLE, VHOST_USER_NEED_REPLY_MASK, &mt, bad[i].size,
			f, bad[i].nfds);
		tb_dispatch(t);
		tb_dropped(t);
		tb_free(t);
	}
}

/* Map the test's memfd range [off, off+size) as a region at gpa/uva. */
static void ring_at(struct tb *t, unsigned int i, uint64_t uva)
{
	struct vhost_user_vring_addr a = {.index = i,
					  .desc_user_addr = uva + TB_DESC_OFF,
					  .avail_user_addr = uva + TB_AVAIL_OFF,
					  .used_user_addr = uva + TB_USED_OFF};

	tb_req(t, VHOST_USER_SET_VRING_NUM, 0,
	       &(struct vhost_user_vring_state){.index = i, .num = TB_RING_NUM}, 8, NULL, 0);
	tb_req(t, VHOST_USER_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
	tb_no_reply(t);
}

static void test_mem_table_replace_restarts_rings(void **state)
{
	struct tb *t = tb_new();
	struct vhost_user_mem_region r[2];
	int kick0, kick1, call0, other, fds[2];
	uint8_t *om;
	unsigned int mark;

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	tb_set_u64(t, VHOST_USER_SET_FEATURES, TB_OFFERED & ~TB_F_PROTOCOL);
	tb_mem_table(t);
	tb_ring_setup(t, 0, 0);
	tb_ring_setup(t, 1, 0);
	call0 = tb_ring_fd(t, VHOST_USER_SET_VRING_CALL, 0);
	kick0 = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 0);
	kick1 = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 1);
	assert_int_equal(t->dev.starts[0], 1);
	assert_int_equal(t->dev.starts[1], 1);
	assert_int_equal(tb_eventfd_read(call0), 1);

	/* A second memfd: ring 0's addresses move to it, ring 1's go nowhere. */
	other = memfd_create("other", MFD_CLOEXEC);
	assert_int_equal(ftruncate(other, 0x8000), 0);
	om = mmap(NULL, 0x8000, PROT_READ | PROT_WRITE, MAP_SHARED, other, 0);
	assert_true(om != MAP_FAILED);
	uint16_t used = 31;
	memcpy(om + TB_USED_OFF + 2, &used, 2);
	r[0] = tb_region(0x0, 0x4000, TB_UVA, 0);
	r[1] = tb_region(0x20000, 0x1000, 0x900000, 0);
	fds[0] = other;
	fds[1] = other;

	/* A failing replacement touches no ring. */
	struct vhost_user_mem_region bad[2] = {r[0], tb_region(0x2000, 0x1000, 0x900000, 0)};
	mark = t->dev.nlog;
	send_table_ack(t, bad, 2, fds, 0);
	assert_int_equal(t->dev.nlog, mark);
	assert_true(vu_backend_vq(t->b, 1)->started);

	mark = t->dev.nlog;
	send_table_ack(t, r, 2, fds, 1);
	/* Both stopped before anything restarted, while the old memory was mapped. */
	int stop0 = tb_find(&t->dev, TB_EV_STOP, 0, mark);
	int stop1 = tb_find(&t->dev, TB_EV_STOP, 1, mark);
	int start0 = tb_find(&t->dev, TB_EV_START, 0, mark);
	assert_true(stop0 >= 0 && stop1 >= 0 && start0 >= 0);
	assert_true(stop0 < start0 && stop1 < start0);
	assert_int_equal(tb_find(&t->dev, TB_EV_START, 1, mark), -1);
	/* Ring 0 runs on the new memory; its used index comes from there. */
	assert_int_equal(t->dev.start_used_idx[0], 31);
	assert_int_equal(vu_backend_vq(t->b, 0)->used->idx, 31);
	om[TB_DESC_OFF] = 0x99;
	assert_int_equal(((uint8_t *)vu_backend_vq(t->b, 0)->desc)[0], 0x99);
	/* A kick after the restart: the call fd was signalled again on restart. */
	assert_int_equal(tb_eventfd_read(call0), 1);
	tb_eventfd_signal(kick0);
	tb_eventfd_signal(kick1);
	tb_dispatch(t);
	assert_int_equal(t->dev.kicks[0], 3); /* start, restart, this kick */
	assert_int_equal(t->dev.kicks[1], 1); /* only its first start */
	assert_false(vu_backend_vq(t->b, 1)->started);

	/* Ring 1 comes back when memory for it does. */
	tb_mem_table(t);
	assert_true(vu_backend_vq(t->b, 1)->started);
	assert_int_equal(t->dev.starts[1], 2);

	munmap(om, 0x8000);
	close(other);
	close(kick0);
	close(kick1);
	close(call0);
	tb_free(t);
}

static uint64_t mem_reg_ack(struct tb *t, uint32_t req, struct vhost_user_mem_region r, int fd)
{
	struct vhost_user_mem_reg m = {.padding = 0, .region = r};

	return tb_ack(t, req, &m, sizeof(m), &fd, fd >= 0 ? 1 : 0);
}

static void test_add_rem_mem_reg(void **state)
{
	struct tb *t = tb_new();
	struct vhost_user_mem_region a = tb_region(0x0, 0x8000, TB_UVA, 0);
	struct vhost_user_mem_region b = tb_region(0x8000, 0x8000, 0x500000, 0x8000);
	struct vq *q = vu_backend_vq(t->b, 0);
	int kick, c0;

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	tb_set_u64(t, VHOST_USER_SET_FEATURES, TB_OFFERED & ~TB_F_PROTOCOL);
	assert_int_equal(tb_get_u64(t, VHOST_USER_GET_MAX_MEM_SLOTS), GMEM_MAX_REGIONS);
	c0 = tfd_count();
	/* The ring is set up before any memory: ADD_MEM_REG starts it. */
	ring_at(t, 0, TB_UVA);
	kick = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 0);
	assert_false(q->started);
	assert_int_equal(mem_reg_ack(t, VHOST_USER_ADD_MEM_REG, a, t->memfd), 0);
	assert_true(q->started);
	assert_int_equal(t->dev.starts[0], 1);
	/* Overlaps: refused. */
	assert_int_not_equal(mem_reg_ack(t, VHOST_USER_ADD_MEM_REG,
					 tb_region(0x7000, 0x2000, 0x700000, 0), t->memfd),
			     0);
	assert_int_not_equal(mem_reg_ack(t, VHOST_USER_ADD_MEM_REG,
					 tb_region(0x100000, 0x2000, TB_UVA + 0x7000, 0), t->memfd),
			     0);
	assert_int_not_equal(
	    mem_reg_ack(t, VHOST_USER_ADD_MEM_REG, tb_region(0x100000, 0, 0x700000, 0), t->memfd),
	    0);
	/* Adding leaves the running ring alone. */
	assert_int_equal(mem_reg_ack(t, VHOST_USER_ADD_MEM_REG, b, t->memfd), 0);
	assert_int_equal(t->dev.stops[0], 0);
	/* The region fds were closed (kick is the one fd the backend keeps). */
	assert_int_equal(tfd_count(), c0 + 2);

	/* Removing: a region that is not there changes nothing. */
	struct vhost_user_mem_region nb = b;
	nb.memory_size = 0x4000;
	assert_int_not_equal(mem_reg_ack(t, VHOST_USER_REM_MEM_REG, nb, -1), 0);
	assert_int_equal(t->dev.stops[0], 0);
	/* Removing B (fd sent along, closed unused; offset ignored) restarts the ring. */
	nb = b;
	nb.mmap_offset = 0;
	assert_int_equal(mem_reg_ack(t, VHOST_USER_REM_MEM_REG, nb, t->memfd), 0);
	assert_int_equal(t->dev.stops[0], 1);
	assert_int_equal(t->dev.starts[0], 2);
	assert_int_equal(tfd_count(), c0 + 2);
	/* Removing A, without an fd: the ring has nowhere to live. */
	assert_int_equal(mem_reg_ack(t, VHOST_USER_REM_MEM_REG, a, -1), 0);
	assert_int_equal(t->dev.stops[0], 2);
	assert_int_equal(t->dev.starts[0], 2);
	assert_false(q->started);
	assert_true(q->kick_fd >= 0);

	/* Every slot can be filled, and no more. */
	for (unsigned int i = 0; i < GMEM_MAX_REGIONS; i++)
		assert_int_equal(
		    mem_reg_ack(t, VHOST_USER_ADD_MEM_REG,
				tb_region(i * 0x1000ull, 0x1000, 0x10000000 + i * 0x1000ull, 0),
				t->memfd),
		    0);
	assert_int_not_equal(mem_reg_ack(t, VHOST_USER_ADD_MEM_REG,
					 tb_region(0x1000000, 0x1000, 0x20000000, 0), t->memfd),
			     0);
	assert_int_equal(tfd_count(), c0 + 2);
	close(kick);
	tb_free(t);
}

static void reset_case(uint32_t req)
{
	struct tb *t = tb_new();
	struct vq *q = vu_backend_vq(t->b, 0);
	int kick, call, c0;
	unsigned int mark;

	tb_negotiate(t, TB_OFFERED & ~TB_F_PROTOCOL, tb_pf_all());
	tb_mem_table(t);
	c0 = tfd_count();
	tb_ring_setup(t, 0, 3);
	call = tb_ring_fd(t, VHOST_USER_SET_VRING_CALL, 0);
	kick = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 0);
	assert_int_equal(t->dev.starts[0], 1);

	mark = t->dev.nlog;
	assert_int_equal(tb_ack(t, req, NULL, 0, NULL, 0), 0);
	/* queue_stop, then the device reset. */
	int stop = tb_find(&t->dev, TB_EV_STOP, 0, mark);
	int reset = tb_find(&t->dev, TB_EV_RESET, 0, mark);
	assert_true(stop >= 0 && reset > stop);
	/* Ring state and virtio features are gone, their fds closed. */
	assert_int_equal(vu_backend_features(t->b), 0);
	assert_false(q->started);
	assert_false(q->enabled);
	assert_int_equal(q->num, 0);
	assert_int_equal(q->last_avail, 0);
	assert_int_equal(q->kick_fd, -1);
	assert_int_equal(q->call_fd, -1);
	assert_int_equal(tfd_count(), c0 + 2); /* the test's own two */
	/* The connection, the protocol features and the memory stay. */
	assert_true(vu_backend_connected(t->b));
	assert_int_equal(tb_get_u64(t, VHOST_USER_GET_QUEUE_NUM), TB_NUM_QUEUES);
	tb_set_u64(t, VHOST_USER_SET_FEATURES, TB_OFFERED & ~TB_F_PROTOCOL);
	tb_ring_setup(t, 0, 0);
	close(kick);
	kick = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 0);
	assert_true(q->started);
	assert_int_equal(t->dev.starts[0], 2);
	close(kick);
	close(call);
	tb_free(t);
}

static void test_reset_owner(void **state)
{
	(void)state;
	reset_case(VHOST_USER_RESET_OWNER);
}

static void test_reset_device(void **state)
{
	(void)state;
	reset_case(VHOST_USER_RESET_DEVICE);
}

/* Kicks of several rings in one dispatch go to the right ring. */
static void test_kicks_routed(void **state)
{
	struct tb *t = tb_new();
	int kick[TB_NUM_QUEUES];

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_FEATURES, TB_OFFERED & ~TB_F_PROTOCOL);
	tb_mem_table(t);
	for (unsigned int i = 0; i < TB_NUM_QUEUES; i++) {
		tb_ring_setup(t, i, 0);
		kick[i] = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, i);
		assert_int_equal(t->dev.kicks[i], 1);
	}
	tb_eventfd_signal(kick[0]);
	tb_eventfd_signal(kick[2]);
	/* The backend's fd becomes readable for a kick. */
	struct pollfd p = {.fd = vu_backend_fd(t->b), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 1);
	tb_dispatch(t);
	assert_int_equal(t->dev.kicks[0], 2);
	assert_int_equal(t->dev.kicks[1], 1);
	assert_int_equal(t->dev.kicks[2], 2);
	/* Nothing left: not readable any more. */
	assert_int_equal(poll(&p, 1, 0), 0);
	for (unsigned int i = 0; i < TB_NUM_QUEUES; i++)
		close(kick[i]);
	tb_free(t);
}

/* A device that states no ring size limit gets the protocol's. */
static void test_vring_num_default_limit(void **state)
{
	struct tb *t = tb_new();

	(void)state;
	t->vd.max_queue_size = 0;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, 0, VHOST_USER_MAX_QUEUE_SIZE),
			 0);
	assert_int_equal(vu_backend_vq(t->b, 0)->num, VHOST_USER_MAX_QUEUE_SIZE);
	assert_int_not_equal(
	    tb_ack_state(t, VHOST_USER_SET_VRING_NUM, 0, 2 * VHOST_USER_MAX_QUEUE_SIZE), 0);
	assert_int_equal(vu_backend_vq(t->b, 0)->num, VHOST_USER_MAX_QUEUE_SIZE);
	tb_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ring_lifecycle_with_enable),
	    cmocka_unit_test(test_ring_enabled_without_protocol_features),
	    cmocka_unit_test(test_ring_waits_for_memory),
	    cmocka_unit_test(test_kick_cannot_start_outside_memory),
	    cmocka_unit_test(test_num_base_refused_while_started),
	    cmocka_unit_test(test_addr_on_running_ring),
	    cmocka_unit_test(test_mem_table_validation),
	    cmocka_unit_test(test_mem_table_replace_restarts_rings),
	    cmocka_unit_test(test_add_rem_mem_reg),
	    cmocka_unit_test(test_reset_owner),
	    cmocka_unit_test(test_reset_device),
	    cmocka_unit_test(test_kicks_routed),
	    cmocka_unit_test(test_vring_num_default_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
