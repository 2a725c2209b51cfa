/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Backend: message validation, features, acks, ring parameters, config. */
#include "test_backend.h"
#include "tfd.h"

#define TB_OFFERED (TB_DEV_FEATURES | VU_BACKEND_TRANSPORT_FEATURES)

static void test_get_features_any_time(void **state)
{
	struct tb *t = tb_new();
	struct vu_msg r;

	(void)state;
	/* First message of a session. */
	tb_req(t, VHOST_USER_GET_FEATURES, 0, NULL, 0, NULL, 0);
	tb_reply(t, VHOST_USER_GET_FEATURES, &r);
	assert_int_equal(r.hdr.size, 8);
	assert_int_equal(r.payload.u64, TB_OFFERED);
	assert_true(r.payload.u64 & TB_F_PROTOCOL);
	/* Never offered: packed rings, IOMMU, dirty logging. */
	assert_false(r.payload.u64 & ((1ull << 34) | (1ull << 33) | (1ull << VHOST_F_LOG_ALL)));
	tb_negotiate(t, TB_OFFERED, tb_pf_all());
	assert_int_equal(tb_get_u64(t, VHOST_USER_GET_FEATURES), TB_OFFERED);
	/* In the middle of ring setup too. */
	tb_mem_table(t);
	tb_ring_setup(t, 0, 0);
	assert_int_equal(tb_get_u64(t, VHOST_USER_GET_FEATURES), TB_OFFERED);
	tb_free(t);
}

static void test_set_features(void **state)
{
	struct tb *t = tb_new();
	uint64_t some = (1ull << 32) | (1ull << 0);

	(void)state;
	assert_int_equal(vu_backend_features(t->b), 0);
	tb_set_u64(t, VHOST_USER_SET_FEATURES, TB_OFFERED);
	assert_int_equal(t->dev.features, TB_OFFERED);
	assert_int_equal(vu_backend_features(t->b), TB_OFFERED);
	for (unsigned int i = 0; i < TB_NUM_QUEUES; i++) {
		struct vq *q = vu_backend_vq(t->b, i);

		assert_true(q->event_idx && q->indirect && q->notify_on_empty);
	}
	assert_null(vu_backend_vq(t->b, TB_NUM_QUEUES));
	tb_set_u64(t, VHOST_USER_SET_FEATURES, some);
	assert_int_equal(vu_backend_features(t->b), some);
	for (unsigned int i = 0; i < TB_NUM_QUEUES; i++) {
		struct vq *q = vu_backend_vq(t->b, i);

		assert_false(q->event_idx || q->indirect || q->notify_on_empty);
	}
	tb_free(t);
}

static void test_set_features_rejected(void **state)
{
	static const uint64_t bad[] = {
	    1ull << 33,		     /* IOMMU_PLATFORM */
	    1ull << 34,		     /* RING_PACKED */
	    1ull << VHOST_F_LOG_ALL, /* no dirty logging */
	    1ull << 1,		     /* a device bit the device did not offer */
	    1ull << 63,
	};
	struct tb *t;

	(void)state;
	/* Without an ack asked for, the frontend must not go on: dropped. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = tb_new();
		tb_req(t, VHOST_USER_SET_FEATURES, 0, &(uint64_t){TB_OFFERED | bad[i]}, 8, NULL, 0);
		tb_dropped(t);
		assert_int_equal(t->dev.nlog, 1); /* the reset, not set_features */
		assert_int_equal(t->dev.resets, 1);
		tb_free(t);
	}
	/* With REPLY_ACK: a failure ack, nothing changes. */
	t = tb_new();
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	tb_set_u64(t, VHOST_USER_SET_FEATURES, 1ull << 32);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(tb_ack_u64(t, VHOST_USER_SET_FEATURES, TB_OFFERED | bad[i]),
				     0);
	assert_int_equal(vu_backend_features(t->b), 1ull << 32);
	assert_int_equal(t->dev.features, 1ull << 32);
	/* The device may refuse too. */
	t->dev.refuse_features = true;
	assert_int_not_equal(tb_ack_u64(t, VHOST_USER_SET_FEATURES, TB_OFFERED), 0);
	assert_int_equal(vu_backend_features(t->b), 1ull << 32);
	t->dev.refuse_features = false;
	assert_int_equal(tb_ack_u64(t, VHOST_USER_SET_FEATURES, TB_OFFERED), 0);
	assert_int_equal(vu_backend_features(t->b), TB_OFFERED);
	tb_free(t);
}

static void test_protocol_features(void **state)
{
	struct tb *t;
	uint64_t pf;

	(void)state;
	t = tb_new();
	pf = tb_get_u64(t, VHOST_USER_GET_PROTOCOL_FEATURES);
	assert_int_equal(pf, VU_BACKEND_PROTOCOL_FEATURES);
	assert_true(pf & (1ull << VHOST_USER_PROTOCOL_F_CONFIG));
	assert_false(pf & (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD));
	assert_false(pf & (1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	/* Valid before SET_FEATURES: MQ works at once. */
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, 1ull << VHOST_USER_PROTOCOL_F_MQ);
	assert_int_equal(tb_get_u64(t, VHOST_USER_GET_QUEUE_NUM), TB_NUM_QUEUES);
	/* Unoffered bits with REPLY_ACK negotiated: failure ack, state kept. */
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	assert_int_not_equal(tb_ack_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES,
					tb_pf_all() | (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD)),
			     0);
	assert_int_equal(tb_get_u64(t, VHOST_USER_GET_QUEUE_NUM), TB_NUM_QUEUES);
	tb_free(t);

	/* Unoffered bits without an ack: dropped. */
	t = tb_new();
	tb_req(t, VHOST_USER_SET_PROTOCOL_FEATURES, 0,
	       &(uint64_t){1ull << VHOST_USER_PROTOCOL_F_STATUS}, 8, NULL, 0);
	tb_dropped(t);
	tb_free(t);

	/* No config space: no CONFIG, and asking for it is refused. */
	t = tb_new_dev(0, &tb_ops);
	pf = tb_get_u64(t, VHOST_USER_GET_PROTOCOL_FEATURES);
	assert_int_equal(pf,
			 VU_BACKEND_PROTOCOL_FEATURES & ~(1ull << VHOST_USER_PROTOCOL_F_CONFIG));
	tb_req(t, VHOST_USER_SET_PROTOCOL_FEATURES, 0, &(uint64_t){VU_BACKEND_PROTOCOL_FEATURES}, 8,
	       NULL, 0);
	tb_dropped(t);
	tb_free(t);
}

static void test_reply_ack(void **state)
{
	struct tb *t = tb_new();
	struct vu_msg r;

	(void)state;
	/* NEED_REPLY without REPLY_ACK negotiated: no reply. */
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, 1ull << VHOST_USER_PROTOCOL_F_MQ);
	tb_req(t, VHOST_USER_SET_OWNER, VHOST_USER_NEED_REPLY_MASK, NULL, 0, NULL, 0);
	tb_no_reply(t);

	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	assert_int_equal(tb_ack(t, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0), 0);
	/* No NEED_REPLY: no ack. */
	tb_req(t, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0);
	tb_no_reply(t);
	/* A GET has its own reply and never an ack on top. */
	tb_req(t, VHOST_USER_GET_FEATURES, VHOST_USER_NEED_REPLY_MASK, NULL, 0, NULL, 0);
	assert_int_equal(tb_reply_u64(t, VHOST_USER_GET_FEATURES), TB_OFFERED);
	tb_no_reply(t);
	tb_req(t, VHOST_USER_GET_QUEUE_NUM, VHOST_USER_NEED_REPLY_MASK, NULL, 0, NULL, 0);
	assert_int_equal(tb_reply_u64(t, VHOST_USER_GET_QUEUE_NUM), TB_NUM_QUEUES);
	tb_no_reply(t);
	tb_req(t, VHOST_USER_GET_VRING_BASE, VHOST_USER_NEED_REPLY_MASK,
	       &(struct vhost_user_vring_state){.index = 1}, 8, NULL, 0);
	tb_reply(t, VHOST_USER_GET_VRING_BASE, &r);
	assert_int_equal(r.hdr.size, 8);
	tb_no_reply(t);
	/* Failure ack for an invalid value; the connection goes on. */
	assert_int_not_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, 7, 256), 0);
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, 2, 256), 0);
	tb_free(t);
}

/* One session per case: send it, expect the connection dropped and no fd kept. */
static void expect_dropped(uint32_t req, uint32_t flags, const void *payload, uint32_t size,
			   unsigned int nfds, uint64_t pf)
{
	struct tb *t = tb_new();
	int fds[4];

	assert_true(nfds <= 4);
	if (pf)
		tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, pf);
	for (unsigned int i = 0; i < nfds; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	tb_send(t, req, flags, payload, size, fds, nfds);
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	tb_dispatch(t);
	/* Dropped, and no ack first (the first thing read is EOF). */
	tb_dropped(t);
	assert_int_equal(t->dev.resets, 1);
	tb_free(t);
}

static void test_unknown_requests(void **state)
{
	static const uint32_t ids[] = {
	    0,
	    VHOST_USER_SET_LOG_BASE,
	    VHOST_USER_SET_LOG_FD,
	    19,
	    20,
	    22,
	    23,
	    26,
	    27,
	    28,
	    29,
	    30,
	    31,
	    32,
	    33,
	    35,
	    39,
	    40,
	    1000,
	    UINT32_MAX,
	};
	uint8_t zero[40] = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		print_message("request %u\n", ids[i]);
		expect_dropped(ids[i], 0, zero, 16, 0, 0);
		expect_dropped(ids[i], VHOST_USER_NEED_REPLY_MASK, zero, 16, 1, tb_pf_all());
	}
}

static void test_bad_flags(void **state)
{
	struct tb *t;
	struct vhost_user_hdr h = {.request = VHOST_USER_GET_FEATURES, .size = 0};

	(void)state;
	/* A request carrying the reply bit. */
	expect_dropped(VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_MASK, NULL, 0, 0, 0);
	expect_dropped(VHOST_USER_SET_OWNER, VHOST_USER_REPLY_MASK, NULL, 0, 1, tb_pf_all());
	/* Reserved flag bits and bad versions (written raw: vu_msg_send would not check). */
	static const uint32_t flags[] = {0x0, 0x2, 0x3, 0x11, 0x101, 0x80000001u};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		t = tb_new();
		h.flags = flags[i];
		assert_int_equal(send(t->fe, &h, sizeof(h), 0), (ssize_t)sizeof(h));
		tb_dispatch(t);
		tb_dropped(t);
		tb_free(t);
	}
	/* An oversized payload announced in the header. */
	t = tb_new();
	h.flags = VHOST_USER_VERSION;
	h.request = VHOST_USER_SET_FEATURES;
	h.size = VHOST_USER_MAX_PAYLOAD + 1;
	assert_int_equal(send(t->fe, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	tb_dispatch(t);
	tb_dropped(t);
	tb_free(t);
}

static void test_wrong_sizes(void **state)
{
	static const struct {
		uint32_t req;
		uint32_t size;
	} cases[] = {
	    {VHOST_USER_GET_FEATURES, 0},
	    {VHOST_USER_SET_FEATURES, 8},
	    {VHOST_USER_SET_OWNER, 0},
	    {VHOST_USER_RESET_OWNER, 0},
	    {VHOST_USER_SET_VRING_NUM, 8},
	    {VHOST_USER_SET_VRING_ADDR, 40},
	    {VHOST_USER_SET_VRING_BASE, 8},
	    {VHOST_USER_GET_VRING_BASE, 8},
	    {VHOST_USER_GET_PROTOCOL_FEATURES, 0},
	    {VHOST_USER_SET_PROTOCOL_FEATURES, 8},
	    {VHOST_USER_GET_QUEUE_NUM, 0},
	    {VHOST_USER_SET_VRING_ENABLE, 8},
	    {VHOST_USER_RESET_DEVICE, 0},
	    {VHOST_USER_GET_MAX_MEM_SLOTS, 0},
	    {VHOST_USER_ADD_MEM_REG, 40},
	    {VHOST_USER_REM_MEM_REG, 40},
	    {VHOST_USER_SET_VRING_KICK, 8},
	    {VHOST_USER_SET_VRING_CALL, 8},
	    {VHOST_USER_SET_VRING_ERR, 8},
	    {VHOST_USER_SET_BACKEND_REQ_FD, 0},
	};
	uint8_t payload[64];

	(void)state;
	/* The no-fd bit so that KICK/CALL/ERR need no fd. */
	memset(payload, 0, sizeof(payload));
	payload[1] = 0x01;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t s = cases[i].size;
		unsigned int nfds = 0;

		if (cases[i].req == VHOST_USER_ADD_MEM_REG ||
		    cases[i].req == VHOST_USER_SET_BACKEND_REQ_FD)
			nfds = 1;
		print_message("%s\n", vu_msg_name(cases[i].req));
		expect_dropped(cases[i].req, VHOST_USER_NEED_REPLY_MASK, payload, s + 1, nfds,
			       tb_pf_all());
		expect_dropped(cases[i].req, 0, payload, s + 8, nfds, tb_pf_all());
		if (s)
			expect_dropped(cases[i].req, VHOST_USER_NEED_REPLY_MASK, payload, s - 1,
				       nfds, tb_pf_all());
		if (s > 4)
			expect_dropped(cases[i].req, 0, payload, 4, nfds, tb_pf_all());
	}
}

static void test_wrong_fd_counts(void **state)
{
	uint64_t idx0 = 0, nofd0 = VHOST_USER_VRING_NOFD_MASK;
	struct vhost_user_mem_reg reg = {.region = tb_region(TB_GPA, TB_MEM_SIZE, TB_UVA, 0)};
	struct vhost_user_mem_table mt = {.nregions = 1,
					  .regions = {tb_region(TB_GPA, TB_MEM_SIZE, TB_UVA, 0)}};

	(void)state;
	expect_dropped(VHOST_USER_SET_FEATURES, 0, &(uint64_t){TB_OFFERED}, 8, 1, 0);
	expect_dropped(VHOST_USER_GET_FEATURES, 0, NULL, 0, 1, 0);
	expect_dropped(VHOST_USER_SET_OWNER, VHOST_USER_NEED_REPLY_MASK, NULL, 0, 2, tb_pf_all());
	expect_dropped(VHOST_USER_SET_VRING_KICK, 0, &idx0, 8, 0, 0);
	expect_dropped(VHOST_USER_SET_VRING_KICK, 0, &nofd0, 8, 1, 0);
	expect_dropped(VHOST_USER_SET_VRING_CALL, 0, &idx0, 8, 2, 0);
	expect_dropped(VHOST_USER_SET_VRING_CALL, VHOST_USER_NEED_REPLY_MASK, &nofd0, 8, 1,
		       tb_pf_all());
	expect_dropped(VHOST_USER_SET_VRING_ERR, 0, &idx0, 8, 0, 0);
	expect_dropped(VHOST_USER_SET_VRING_NUM, 0, &(struct vhost_user_vring_state){0, 256}, 8, 1,
		       0);
	expect_dropped(VHOST_USER_SET_BACKEND_REQ_FD, 0, NULL, 0, 0, tb_pf_all());
	expect_dropped(VHOST_USER_SET_BACKEND_REQ_FD, 0, NULL, 0, 2, tb_pf_all());
	expect_dropped(VHOST_USER_ADD_MEM_REG, 0, &reg, sizeof(reg), 0, tb_pf_all());
	expect_dropped(VHOST_USER_ADD_MEM_REG, VHOST_USER_NEED_REPLY_MASK, &reg, sizeof(reg), 2,
		       tb_pf_all());
	expect_dropped(VHOST_USER_REM_MEM_REG, 0, &reg, sizeof(reg), 2, tb_pf_all());
	expect_dropped(VHOST_USER_SET_MEM_TABLE, 0, &mt, 8 + 32, 0, 0);
	expect_dropped(VHOST_USER_SET_MEM_TABLE, VHOST_USER_NEED_REPLY_MASK, &mt, 8 + 32, 2,
		       tb_pf_all());
	expect_dropped(VHOST_USER_GET_CONFIG, 0,
		       &(struct vhost_user_config){.offset = 0, .size = 4}, 16, 1, tb_pf_all());
}

/* Too many fds for one message: the message layer already refuses, nothing leaks. */
static void test_too_many_fds(void **state)
{
	struct tb *t = tb_new();
	struct vhost_user_hdr h = {.request = VHOST_USER_SET_OWNER, .flags = VHOST_USER_VERSION};
	char ctl[CMSG_SPACE(12 * sizeof(int))];
	struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	struct cmsghdr *c;
	int fds[12];

	(void)state;
	memset(ctl, 0, sizeof(ctl));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	for (int i = 0; i < 12; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	assert_int_equal(sendmsg(t->fe, &mh, 0), (ssize_t)sizeof(h));
	for (int i = 0; i < 12; i++)
		close(fds[i]);
	tb_dispatch(t);
	tb_dropped(t);
	tb_free(t);
}

static void test_feature_gates(void **state)
{
	struct vhost_user_mem_reg reg = {.region = tb_region(TB_GPA, TB_MEM_SIZE, TB_UVA, 0)};
	struct vhost_user_config cfg = {.offset = 0, .size = 4};
	uint64_t mq = 1ull << VHOST_USER_PROTOCOL_F_MQ;
	struct tb *t;

	(void)state;
	/* Nothing negotiated, or only MQ: each gated request is a protocol error. */
	expect_dropped(VHOST_USER_GET_QUEUE_NUM, 0, NULL, 0, 0, 0);
	expect_dropped(VHOST_USER_GET_CONFIG, 0, &cfg, 16, 0, mq);
	expect_dropped(VHOST_USER_SET_CONFIG, 0, &cfg, 16, 0, mq);
	expect_dropped(VHOST_USER_GET_MAX_MEM_SLOTS, 0, NULL, 0, 0, mq);
	expect_dropped(VHOST_USER_ADD_MEM_REG, 0, &reg, sizeof(reg), 1, mq);
	expect_dropped(VHOST_USER_REM_MEM_REG, 0, &reg, sizeof(reg), 0, mq);
	expect_dropped(VHOST_USER_SET_BACKEND_REQ_FD, 0, NULL, 0, 1, mq);
	expect_dropped(VHOST_USER_RESET_DEVICE, 0, NULL, 0, 0, mq);

	t = tb_new();
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	assert_int_equal(tb_get_u64(t, VHOST_USER_GET_QUEUE_NUM), TB_NUM_QUEUES);
	assert_int_equal(tb_get_u64(t, VHOST_USER_GET_MAX_MEM_SLOTS), GMEM_MAX_REGIONS);
	assert_int_equal(tb_ack(t, VHOST_USER_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	tb_free(t);
}

static void test_vring_num(void **state)
{
	static const uint32_t bad[] = {0, 3, 100, 255, 257, 32767, 32769, 65536, UINT32_MAX};
	static const uint32_t good[] = {1, 2, 256, 1024, 32768};
	struct tb *t = tb_new();

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, 1, good[i]), 0);
		assert_int_equal(vu_backend_vq(t->b, 1)->num, good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_not_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, 1, bad[i]), 0);
		assert_int_equal(vu_backend_vq(t->b, 1)->num, 32768);
	}
	assert_int_not_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, TB_NUM_QUEUES, 256), 0);
	assert_int_not_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, 255, 256), 0);
	assert_int_not_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, UINT32_MAX, 256), 0);
	tb_free(t);

	/* The device's own limit. */
	t = tb_new();
	t->vd.max_queue_size = 256;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, 0, 256), 0);
	assert_int_not_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, 0, 512), 0);
	tb_free(t);

	/* Without an ack to carry the failure: dropped. */
	t = tb_new();
	tb_req(t, VHOST_USER_SET_VRING_NUM, 0, &(struct vhost_user_vring_state){0, 3}, 8, NULL, 0);
	tb_dropped(t);
	tb_free(t);
	t = tb_new();
	tb_req(t, VHOST_USER_SET_VRING_NUM, 0, &(struct vhost_user_vring_state){3, 256}, 8, NULL,
	       0);
	tb_dropped(t);
	tb_free(t);
}

static void test_vring_base(void **state)
{
	struct tb *t = tb_new();
	struct vu_msg r;

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_BASE, 2, 0xffff), 0);
	assert_int_equal(vu_backend_vq(t->b, 2)->last_avail, 0xffff);
	assert_int_not_equal(tb_ack_state(t, VHOST_USER_SET_VRING_BASE, 2, 0x10000), 0);
	assert_int_not_equal(tb_ack_state(t, VHOST_USER_SET_VRING_BASE, 2, UINT32_MAX), 0);
	assert_int_not_equal(tb_ack_state(t, VHOST_USER_SET_VRING_BASE, 3, 1), 0);
	assert_int_equal(vu_backend_vq(t->b, 2)->last_avail, 0xffff);
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_BASE, 2, 17), 0);
	/* GET_VRING_BASE on a ring that never started answers the same. */
	tb_req(t, VHOST_USER_GET_VRING_BASE, 0, &(struct vhost_user_vring_state){2, 0}, 8, NULL, 0);
	tb_reply(t, VHOST_USER_GET_VRING_BASE, &r);
	assert_int_equal(r.hdr.size, 8);
	assert_int_equal(r.payload.state.index, 2);
	assert_int_equal(r.payload.state.num, 17);
	tb_free(t);

	/* GET_VRING_BASE for a ring that does not exist cannot fail softly. */
	t = tb_new();
	tb_req(t, VHOST_USER_GET_VRING_BASE, 0, &(struct vhost_user_vring_state){3, 0}, 8, NULL, 0);
	tb_dropped(t);
	tb_free(t);
}

static uint64_t addr_ack(struct tb *t, struct vhost_user_vring_addr a)
{
	return tb_ack(t, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
}

static void test_vring_addr(void **state)
{
	struct tb *t = tb_new();
	struct vhost_user_vring_addr a;
	struct vq *q = vu_backend_vq(t->b, 0);

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	/* Before memory: stored, checked later. */
	a = tb_addr(0);
	a.desc_user_addr = 0x1234560;
	assert_int_equal(addr_ack(t, a), 0);
	assert_true(q->addr_set);
	assert_int_equal(q->desc_uaddr, 0x1234560);

	tb_mem_table(t);
	/* Memory but no size yet: stored. */
	assert_int_equal(addr_ack(t, tb_addr(0)), 0);
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_NUM, 0, TB_RING_NUM), 0);

	/* With memory and size: checked now. */
	a = tb_addr(0);
	a.desc_user_addr = TB_GPA; /* a guest physical address is not a user address */
	assert_int_not_equal(addr_ack(t, a), 0);
	assert_false(q->addr_set);
	a = tb_addr(0);
	a.used_user_addr = TB_UVA + TB_MEM_SIZE;
	assert_int_not_equal(addr_ack(t, a), 0);
	a = tb_addr(0);
	a.avail_user_addr = TB_UVA + TB_MEM_SIZE - 4; /* starts inside, ends outside */
	assert_int_not_equal(addr_ack(t, a), 0);
	a = tb_addr(0);
	a.desc_user_addr = TB_UVA + TB_MEM_SIZE - 16 * TB_RING_NUM + 16;
	assert_int_not_equal(addr_ack(t, a), 0);
	a = tb_addr(0);
	a.desc_user_addr += 8; /* desc needs 16 */
	assert_int_not_equal(addr_ack(t, a), 0);
	a = tb_addr(0);
	a.avail_user_addr += 1; /* avail needs 2 */
	assert_int_not_equal(addr_ack(t, a), 0);
	a = tb_addr(0);
	a.used_user_addr += 2; /* used needs 4 */
	assert_int_not_equal(addr_ack(t, a), 0);
	a = tb_addr(0);
	a.desc_user_addr = UINT64_MAX - 15;
	assert_int_not_equal(addr_ack(t, a), 0);
	a = tb_addr(0);
	a.flags = 0x2;
	assert_int_not_equal(addr_ack(t, a), 0);
	a = tb_addr(0);
	a.flags = 0x1; /* VHOST_VRING_F_LOG without LOG_ALL offered */
	assert_int_not_equal(addr_ack(t, a), 0);
	a = tb_addr(0);
	a.index = TB_NUM_QUEUES;
	assert_int_not_equal(addr_ack(t, a), 0);
	assert_false(q->addr_set);

	a = tb_addr(0);
	assert_int_equal(addr_ack(t, a), 0);
	assert_true(q->addr_set);
	assert_int_equal(q->avail_uaddr, a.avail_user_addr);
	assert_int_equal(q->used_uaddr, a.used_user_addr);
	/* Checked, not started: no pointers held. */
	assert_null(q->desc);
	assert_false(q->started);
	tb_free(t);

	/* Without an ack: dropped. */
	t = tb_new();
	tb_mem_table(t);
	tb_set_u64(t, VHOST_USER_SET_VRING_NUM, ((uint64_t)TB_RING_NUM << 32) | 0);
	a = tb_addr(0);
	a.used_user_addr = TB_UVA + TB_MEM_SIZE;
	tb_req(t, VHOST_USER_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
	tb_dropped(t);
	tb_free(t);
}

static void test_vring_fds(void **state)
{
	struct tb *t = tb_new();
	struct vq *q = vu_backend_vq(t->b, 1);
	int c0, fd;

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	c0 = tfd_count();

	/* CALL: kept; replacing closes the old one; the no-fd bit means none. */
	fd = tb_ring_fd(t, VHOST_USER_SET_VRING_CALL, 1);
	tb_no_reply(t);
	close(fd);
	assert_true(q->call_fd >= 0);
	assert_int_equal(tfd_count(), c0 + 1);
	fd = tb_ring_fd(t, VHOST_USER_SET_VRING_CALL, 1);
	close(fd);
	assert_int_equal(tfd_count(), c0 + 1);
	assert_int_equal(tb_ack_u64(t, VHOST_USER_SET_VRING_CALL, 1 | VHOST_USER_VRING_NOFD_MASK),
			 0);
	assert_int_equal(q->call_fd, -1);
	assert_int_equal(tfd_count(), c0);

	/* ERR the same. */
	fd = tb_ring_fd(t, VHOST_USER_SET_VRING_ERR, 1);
	close(fd);
	assert_true(q->err_fd >= 0);
	fd = tb_ring_fd(t, VHOST_USER_SET_VRING_ERR, 1);
	close(fd);
	assert_int_equal(tfd_count(), c0 + 1);
	assert_int_equal(tb_ack_u64(t, VHOST_USER_SET_VRING_ERR, 1 | VHOST_USER_VRING_NOFD_MASK),
			 0);
	assert_int_equal(q->err_fd, -1);

	/* KICK without memory: kept, ring not started; no-fd: none. */
	fd = tb_ring_fd(t, VHOST_USER_SET_VRING_KICK, 1);
	close(fd);
	assert_true(q->kick_fd >= 0);
	assert_false(q->started);
	assert_int_equal(tb_ack_u64(t, VHOST_USER_SET_VRING_KICK, 1 | VHOST_USER_VRING_NOFD_MASK),
			 0);
	assert_int_equal(q->kick_fd, -1);
	assert_int_equal(tfd_count(), c0);

	/* Invalid values with an fd: failure ack and the fd closed. */
	static const uint64_t bad[] = {TB_NUM_QUEUES, 0xff, 0x200, 1ull << 32};
	static const uint32_t reqs[] = {VHOST_USER_SET_VRING_KICK, VHOST_USER_SET_VRING_CALL,
					VHOST_USER_SET_VRING_ERR};
	for (size_t r = 0; r < 3; r++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			fd = eventfd(0, EFD_CLOEXEC);
			assert_int_not_equal(tb_ack(t, reqs[r], &bad[i], 8, &fd, 1), 0);
			close(fd);
			assert_int_equal(tfd_count(), c0);
		}
		/* Out of range with the no-fd bit. */
		assert_int_not_equal(
		    tb_ack_u64(t, reqs[r], TB_NUM_QUEUES | VHOST_USER_VRING_NOFD_MASK), 0);
	}
	tb_free(t);
}

static void test_vring_enable_values(void **state)
{
	struct tb *t = tb_new();

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_ENABLE, 0, 1), 0);
	assert_true(vu_backend_vq(t->b, 0)->enabled);
	assert_int_not_equal(tb_ack_state(t, VHOST_USER_SET_VRING_ENABLE, 0, 2), 0);
	assert_true(vu_backend_vq(t->b, 0)->enabled);
	assert_int_not_equal(tb_ack_state(t, VHOST_USER_SET_VRING_ENABLE, TB_NUM_QUEUES, 1), 0);
	assert_int_equal(tb_ack_state(t, VHOST_USER_SET_VRING_ENABLE, 0, 0), 0);
	assert_false(vu_backend_vq(t->b, 0)->enabled);
	tb_free(t);
}

static void get_config(struct tb *t, uint32_t off, uint32_t size, struct vu_msg *r)
{
	struct vhost_user_config c = {.offset = off, .size = size};

	tb_req(t, VHOST_USER_GET_CONFIG, 0, &c, VHOST_USER_CONFIG_HDR_SIZE + size, NULL, 0);
	tb_reply(t, VHOST_USER_GET_CONFIG, r);
	tb_no_reply(t);
}

static void test_get_config(void **state)
{
	struct tb *t = tb_new();
	struct vu_msg r;

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	get_config(t, 0, TB_CONFIG_SIZE, &r);
	assert_int_equal(r.hdr.size, VHOST_USER_CONFIG_HDR_SIZE + TB_CONFIG_SIZE);
	assert_int_equal(r.payload.config.offset, 0);
	assert_int_equal(r.payload.config.size, TB_CONFIG_SIZE);
	assert_memory_equal(r.payload.config.region, t->dev.config, TB_CONFIG_SIZE);
	get_config(t, 4, 2, &r);
	assert_int_equal(r.hdr.size, VHOST_USER_CONFIG_HDR_SIZE + 2);
	assert_int_equal(r.payload.config.offset, 4);
	assert_int_equal(r.payload.config.region[0], 0xa4);
	assert_int_equal(r.payload.config.region[1], 0xa5);
	/*
	 * Past the end of config space: still exactly the size asked, the
	 * device's bytes where they fall and zeros after (QEMU's generic device
	 * may declare more config space than the device has).
	 */
	get_config(t, 10, 8, &r);
	assert_int_equal(r.hdr.size, VHOST_USER_CONFIG_HDR_SIZE + 8);
	assert_memory_equal(r.payload.config.region, t->dev.config + 10, TB_CONFIG_SIZE - 10);
	assert_memory_equal(r.payload.config.region + TB_CONFIG_SIZE - 10, "\0\0", 2);
	get_config(t, UINT32_MAX, 1, &r);
	assert_int_equal(r.hdr.size, VHOST_USER_CONFIG_HDR_SIZE + 1);
	assert_int_equal(r.payload.config.region[0], 0);
	get_config(t, TB_CONFIG_SIZE, 4, &r);
	assert_int_equal(r.hdr.size, VHOST_USER_CONFIG_HDR_SIZE + 4);
	assert_memory_equal(r.payload.config.region, "\0\0\0\0", 4);
	/* The backend clipped the read itself: the device was never asked out of bounds. */
	assert_int_equal(t->dev.config_oob, 0);
	/* NEED_REPLY changes nothing: one reply. */
	tb_req(t, VHOST_USER_GET_CONFIG, VHOST_USER_NEED_REPLY_MASK,
	       &(struct vhost_user_config){.offset = 0, .size = 1}, 13, NULL, 0);
	tb_reply(t, VHOST_USER_GET_CONFIG, &r);
	assert_int_equal(r.hdr.size, 13);
	tb_no_reply(t);
	tb_free(t);

	/* Malformed: size 0, size over the limit, payload not 12 + size. */
	struct vhost_user_config c = {.offset = 0, .size = 0};
	expect_dropped(VHOST_USER_GET_CONFIG, 0, &c, 12, 0, tb_pf_all());
	c.size = 4;
	expect_dropped(VHOST_USER_GET_CONFIG, 0, &c, 12 + 8, 0, tb_pf_all());
	expect_dropped(VHOST_USER_GET_CONFIG, 0, &c, 12 + 3, 0, tb_pf_all());
	expect_dropped(VHOST_USER_GET_CONFIG, 0, &c, 8, 0, tb_pf_all());
	c.size = VHOST_USER_MAX_CONFIG_SIZE + 1;
	expect_dropped(VHOST_USER_GET_CONFIG, 0, &c, 12 + VHOST_USER_MAX_CONFIG_SIZE, 0,
		       tb_pf_all());
}

static void test_set_config(void **state)
{
	struct tb *t = tb_new();
	struct vhost_user_config c = {.offset = 2, .size = 2, .region = {0x11, 0x22}};
	struct vu_msg r;

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	assert_int_equal(tb_ack(t, VHOST_USER_SET_CONFIG, &c, 14, NULL, 0), 0);
	assert_int_equal(t->dev.config[2], 0x11);
	assert_int_equal(t->dev.config[3], 0x22);
	get_config(t, 0, 4, &r);
	assert_int_equal(r.payload.config.region[2], 0x11);
	c.offset = TB_CONFIG_SIZE - 1;
	assert_int_not_equal(tb_ack(t, VHOST_USER_SET_CONFIG, &c, 14, NULL, 0), 0);
	assert_int_equal(t->dev.set_config_calls, 1);
	assert_int_equal(t->dev.config_oob, 0);
	tb_free(t);

	/* A read-only config space. */
	t = tb_new_dev(TB_CONFIG_SIZE, &tb_ops_ro);
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	c.offset = 0;
	assert_int_not_equal(tb_ack(t, VHOST_USER_SET_CONFIG, &c, 14, NULL, 0), 0);
	assert_int_equal(t->dev.config[0], 0xa0);
	tb_free(t);

	c.offset = 0;
	expect_dropped(VHOST_USER_SET_CONFIG, VHOST_USER_NEED_REPLY_MASK, &c, 15, 0, tb_pf_all());
	c.size = 0;
	expect_dropped(VHOST_USER_SET_CONFIG, VHOST_USER_NEED_REPLY_MASK, &c, 12, 0, tb_pf_all());
}

static void test_handle_msg_direct(void **state)
{
	struct tb *t = tb_new();
	struct vu_msg m;
	int fd = eventfd(0, EFD_CLOEXEC);
	int c0 = tfd_count();

	(void)state;
	/* A protocol error is returned; the fds it carried are closed. */
	memset(&m, 0, sizeof(m));
	m.hdr.request = VHOST_USER_SET_LOG_FD;
	m.hdr.flags = VHOST_USER_VERSION;
	m.hdr.size = 0;
	m.fds[0] = fd;
	m.nfds = 1;
	assert_int_equal(vu_backend_handle_msg(t->b, &m), -EPROTO);
	assert_int_equal(m.nfds, 0);
	assert_false(tfd_is_open(fd));
	assert_int_equal(tfd_count(), c0 - 1);
	/* A GET replies on the connection. */
	memset(&m, 0, sizeof(m));
	m.hdr.request = VHOST_USER_GET_FEATURES;
	m.hdr.flags = VHOST_USER_VERSION;
	assert_int_equal(vu_backend_handle_msg(t->b, &m), 0);
	assert_int_equal(tb_reply_u64(t, VHOST_USER_GET_FEATURES), TB_OFFERED);
	tb_free(t);
}

static int fail_get_config(void *opaque, uint32_t off, uint8_t *buf, uint32_t size)
{
	struct tb_dev *d = opaque;

	(void)off;
	(void)size;
	/* Scribble, so that a backend that used the bytes anyway would show it. */
	memset(buf, 0xee, size);
	d->config_oob++; /* here: counts the calls */
	return -EIO;
}

static int fail_set_config(void *opaque, uint32_t off, const uint8_t *buf, uint32_t size)
{
	struct tb_dev *d = opaque;

	(void)off;
	(void)buf;
	(void)size;
	d->set_config_calls++;
	return -EINVAL;
}

static const struct vu_device_ops failing_config_ops = {
    .set_features = tb_set_features,
    .get_config = fail_get_config,
    .set_config = fail_set_config,
    .queue_start = tb_queue_start,
    .queue_stop = tb_queue_stop,
    .queue_kick = tb_queue_kick,
    .reset = tb_reset,
};

/* The spec's way to fail GET_CONFIG is an empty reply; the session goes on. */
static void test_get_config_device_error(void **state)
{
	struct tb *t = tb_new_dev(TB_CONFIG_SIZE, &failing_config_ops);
	struct vhost_user_config c = {.offset = 0, .size = 4};
	struct vu_msg r;

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	tb_req(t, VHOST_USER_GET_CONFIG, 0, &c, VHOST_USER_CONFIG_HDR_SIZE + 4, NULL, 0);
	tb_reply(t, VHOST_USER_GET_CONFIG, &r);
	assert_int_equal(r.hdr.size, 0);
	assert_int_equal(t->dev.config_oob, 1);
	tb_no_reply(t);
	/* Still served. */
	assert_int_equal(tb_get_u64(t, VHOST_USER_GET_QUEUE_NUM), TB_NUM_QUEUES);
	tb_free(t);
}

/* A device refusing a write: a failure ack, the connection kept. */
static void test_set_config_device_refuses(void **state)
{
	struct tb *t = tb_new_dev(TB_CONFIG_SIZE, &failing_config_ops);
	struct vhost_user_config c = {.offset = 0, .size = 2, .region = {1, 2}};

	(void)state;
	tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, tb_pf_all());
	assert_int_not_equal(
	    tb_ack(t, VHOST_USER_SET_CONFIG, &c, VHOST_USER_CONFIG_HDR_SIZE + 2, NULL, 0), 0);
	assert_int_equal(t->dev.set_config_calls, 1);
	assert_true(vu_backend_connected(t->b));
	tb_free(t);
}

static void test_new_config_size_limit(void **state)
{
	struct vu_device vd = {
	    .name = "limit",
	    .num_queues = 1,
	    .max_queue_size = 256,
	    .config_size = VHOST_USER_MAX_CONFIG_SIZE + 1,
	    .ops = &tb_ops,
	};
	struct vu_backend *b = (struct vu_backend *)&vd; /* must be reset to NULL */
	int fds = tfd_count();

	(void)state;
	assert_int_equal(vu_backend_new(&b, &vd), -EINVAL);
	assert_null(b);
	assert_int_equal(tfd_count(), fds);
	vd.config_size = VHOST_USER_MAX_CONFIG_SIZE;
	assert_int_equal(vu_backend_new(&b, &vd), 0);
	assert_non_null(b);
	vu_backend_free(b);
	assert_int_equal(tfd_count(), fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_features_any_time),
	    cmocka_unit_test(test_set_features),
	    cmocka_unit_test(test_set_features_rejected),
	    cmocka_unit_test(test_protocol_features),
	    cmocka_unit_test(test_reply_ack),
	    cmocka_unit_test(test_unknown_requests),
	    cmocka_unit_test(test_bad_flags),
	    cmocka_unit_test(test_wrong_sizes),
	    cmocka_unit_test(test_wrong_fd_counts),
	    cmocka_unit_test(test_too_many_fds),
	    cmocka_unit_test(test_feature_gates),
	    cmocka_unit_test(test_vring_num),
	    cmocka_unit_test(test_vring_base),
	    cmocka_unit_test(test_vring_addr),
	    cmocka_unit_test(test_vring_fds),
	    cmocka_unit_test(test_vring_enable_values),
	    cmocka_unit_test(test_get_config),
	    cmocka_unit_test(test_set_config),
	    cmocka_unit_test(test_handle_msg_direct),
	    cmocka_unit_test(test_get_config_device_error),
	    cmocka_unit_test(test_set_config_device_refuses),
	    cmocka_unit_test(test_new_config_size_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
