/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The frontend test client itself, against a scripted peer on a socketpair
 * (no backend): reply checks, acks, guest memory layout, message orders,
 * descriptor layouts, kick suppression and used-ring handling. The other
 * protocol tests trust these parts of the client.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <linux/virtio_ring.h>

#include "fe.h"
#include "tfd.h"
#include "vhost-user/vlog.h"
#include "vhost-user/vu_msg.h"

#define T_TIMEOUT_MS 5000

struct pair {
	struct fe *f;
	int peer;
};

static void pair_open(struct pair *p)
{
	struct timeval tv = {.tv_sec = T_TIMEOUT_MS / 1000};
	int sv[2];

	assert_int_equal(fe_new(&p->f, NULL), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(fe_attach(p->f, sv[0]), 0);
	/* The peer never blocks forever on a client that sent nothing. */
	setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	p->peer = sv[1];
}

static void pair_close(struct pair *p)
{
	fe_free(p->f);
	close(p->peer);
}

static void send_msg(int sock, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
		     const int *fds, unsigned int nfds)
{
	struct vu_msg m = {.hdr = {.request = request, .flags = flags, .size = size}};

	if (size)
		memcpy(&m.payload, payload, size);
	for (unsigned int i = 0; i < nfds; i++)
		m.fds[i] = fds[i];
	m.nfds = nfds;
	assert_int_equal(vu_msg_send(sock, &m), 0);
}

static void reply_u64(int sock, uint32_t request, uint64_t v)
{
	send_msg(sock, request, VHOST_USER_REPLY_FLAGS, &v, sizeof(v), NULL, 0);
}

static void peer_recv(struct pair *p, struct vu_msg *m, uint32_t request)
{
	assert_int_equal(vu_msg_recv(p->peer, m), 0);
	assert_int_equal(m->hdr.request, request);
}

/* ------------------------------------------------------------------------ */
/* Replies */

static void test_reply_checks(void **state)
{
	struct pair p;
	struct vu_msg m;
	uint64_t v = 0;
	uint32_t short_v = 7;

	(void)state;
	pair_open(&p);

	/* A good reply. The reply is queued first: the client reads it after sending. */
	reply_u64(p.peer, VHOST_USER_GET_FEATURES, 0x1234);
	assert_int_equal(fe_get_features(p.f, &v), 0);
	assert_int_equal(v, 0x1234);
	assert_int_equal(fe_offered_features(p.f), 0x1234);
	peer_recv(&p, &m, VHOST_USER_GET_FEATURES);
	assert_int_equal(m.hdr.flags, VHOST_USER_VERSION);
	assert_int_equal(m.hdr.size, 0);

	/* Reply flag missing. */
	send_msg(p.peer, VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, &v, 8, NULL, 0);
	assert_int_equal(fe_get_features(p.f, NULL), -EPROTO);
	/* Need-reply set on a reply: flags must be exactly 0x5. */
	send_msg(p.peer, VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_FLAGS | 0x8, &v, 8, NULL, 0);
	assert_int_equal(fe_get_features(p.f, NULL), -EPROTO);
	/* Another request's reply. */
	reply_u64(p.peer, VHOST_USER_GET_PROTOCOL_FEATURES, 1);
	assert_int_equal(fe_get_features(p.f, NULL), -EPROTO);
	/* Wrong size. */
	send_msg(p.peer, VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_FLAGS, &short_v, 4, NULL, 0);
	assert_int_equal(fe_get_features(p.f, NULL), -EPROTO);
	/* GET_VRING_BASE wants 8 bytes; 16 is wrong too. */
	{
		uint8_t big[16] = {0};

		assert_int_equal(fe_ring_setup(p.f, 0, 8), 0);
		send_msg(p.peer, VHOST_USER_GET_VRING_BASE, VHOST_USER_REPLY_FLAGS, big, 16, NULL,
			 0);
		assert_int_equal(fe_ring_get_base(p.f, 0, NULL), -EPROTO);
	}
	pair_close(&p);
}

static void test_reply_with_fd_is_refused(void **state)
{
	struct pair p;
	uint64_t v = 1;
	int before, efd;

	(void)state;
	pair_open(&p);
	before = tfd_count();
	efd = eventfd(0, EFD_CLOEXEC);
	send_msg(p.peer, VHOST_USER_GET_FEATURES, VHOST_USER_REPLY_FLAGS, &v, 8, &efd, 1);
	close(efd);
	assert_int_equal(fe_get_features(p.f, NULL), -EPROTO);
	/* The fd that came with the reply was closed. */
	assert_int_equal(tfd_count(), before);
	pair_close(&p);
}

static void test_no_reply_times_out(void **state)
{
	struct pair p;

	(void)state;
	pair_open(&p);
	fe_set_timeout(p.f, 50);
	assert_int_equal(fe_get_features(p.f, NULL), -ETIMEDOUT);
	pair_close(&p);
}

static void test_peer_closed(void **state)
{
	struct pair p;

	(void)state;
	pair_open(&p);
	close(p.peer);
	p.peer = -1;
	/* Either the send or the read sees it; never a SIGPIPE. */
	int ret = fe_get_features(p.f, NULL);

	assert_true(ret == -ECONNRESET || ret == -EPIPE);
	assert_int_equal(fe_wait_closed(p.f, 100), 0);
	fe_free(p.f);
}

static void test_acks(void **state)
{
	struct pair p;
	struct vu_msg m;

	(void)state;
	pair_open(&p);

	/* Acks off: no need-reply, no wait. */
	assert_int_equal(fe_set_owner(p.f), 0);
	peer_recv(&p, &m, VHOST_USER_SET_OWNER);
	assert_int_equal(m.hdr.flags, VHOST_USER_VERSION);

	fe_set_acks(p.f, true);
	reply_u64(p.peer, VHOST_USER_SET_OWNER, 0);
	assert_int_equal(fe_set_owner(p.f), 0);
	peer_recv(&p, &m, VHOST_USER_SET_OWNER);
	assert_int_equal(m.hdr.flags, VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK);

	reply_u64(p.peer, VHOST_USER_SET_FEATURES, 1);
	assert_int_equal(fe_set_features(p.f, 0x100000000ull), -EREMOTEIO);
	/* A refused SET_FEATURES does not count as set. */
	assert_int_equal(fe_features(p.f), 0);
	peer_recv(&p, &m, VHOST_USER_SET_FEATURES);
	assert_int_equal(m.payload.u64, 0x100000000ull);

	/* A GET never asks for an ack: its reply is the answer. */
	reply_u64(p.peer, VHOST_USER_GET_QUEUE_NUM, 3);
	uint64_t n = 0;

	assert_int_equal(fe_get_queue_num(p.f, &n), 0);
	assert_int_equal(n, 3);
	peer_recv(&p, &m, VHOST_USER_GET_QUEUE_NUM);
	assert_int_equal(m.hdr.flags, VHOST_USER_VERSION);
	pair_close(&p);
}

static void test_get_config(void **state)
{
	struct vhost_user_config c = {.offset = 2, .size = 4};
	struct pair p;
	struct vu_msg m;
	uint8_t buf[4];

	(void)state;
	pair_open(&p);
	memcpy(c.region, "\x01\x02\x03\x04", 4);
	send_msg(p.peer, VHOST_USER_GET_CONFIG, VHOST_USER_REPLY_FLAGS, &c, 16, NULL, 0);
	assert_int_equal(fe_get_config(p.f, 2, buf, 4), 0);
	assert_memory_equal(buf, "\x01\x02\x03\x04", 4);
	peer_recv(&p, &m, VHOST_USER_GET_CONFIG);
	/* As QEMU: 12 header bytes and room for the data. */
	assert_int_equal(m.hdr.size, 16);
	assert_int_equal(m.payload.config.offset, 2);
	assert_int_equal(m.payload.config.size, 4);

	/* Reply size not 12 + size. */
	send_msg(p.peer, VHOST_USER_GET_CONFIG, VHOST_USER_REPLY_FLAGS, &c, 14, NULL, 0);
	assert_int_equal(fe_get_config(p.f, 2, buf, 4), -EPROTO);
	/* Right size, but not the size or offset asked. */
	c.offset = 0;
	send_msg(p.peer, VHOST_USER_GET_CONFIG, VHOST_USER_REPLY_FLAGS, &c, 16, NULL, 0);
	assert_int_equal(fe_get_config(p.f, 2, buf, 4), -EPROTO);
	pair_close(&p);
}

/* ------------------------------------------------------------------------ */
/* Guest memory */

static void test_memory_layout(void **state)
{
	struct pair p;
	struct vu_msg m;
	struct vhost_user_mem_region r[2];

	(void)state;
	pair_open(&p);
	assert_int_equal(fe_nregions(p.f), 2);
	assert_int_equal(fe_region(p.f, 0, &r[0]), 0);
	assert_int_equal(fe_region(p.f, 1, &r[1]), 0);
	for (int i = 0; i < 2; i++) {
		struct stat st;

		assert_true(r[i].guest_phys_addr != r[i].userspace_addr);
		assert_int_equal(fstat(fe_region_fd(p.f, i), &st), 0);
		assert_true((uint64_t)st.st_size >= r[i].mmap_offset + r[i].memory_size);
	}
	assert_int_equal(r[0].mmap_offset, 0);
	assert_true(r[1].mmap_offset > 0);
	{
		struct stat st;

		/* The memfd is bigger than offset + size: bytes after the region too. */
		assert_int_equal(fstat(fe_region_fd(p.f, 1), &st), 0);
		assert_true((uint64_t)st.st_size > r[1].mmap_offset + r[1].memory_size);
	}

	/* The table as a backend sees it: map each fd and find the same bytes. */
	assert_int_equal(fe_set_mem_table(p.f), 0);
	peer_recv(&p, &m, VHOST_USER_SET_MEM_TABLE);
	assert_int_equal(m.nfds, 2);
	assert_int_equal(m.hdr.size, 8 + 2 * sizeof(struct vhost_user_mem_region));
	assert_int_equal(m.payload.mem.nregions, 2);
	for (unsigned int i = 0; i < 2; i++) {
		const struct vhost_user_mem_region *w = &m.payload.mem.regions[i];
		size_t len = w->mmap_offset + w->memory_size;
		uint8_t *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m.fds[i], 0);
		uint8_t *ours;

		assert_memory_equal(w, &r[i], sizeof(*w));
		assert_true(base != MAP_FAILED);
		ours = fe_gpa_to_ptr(p.f, w->guest_phys_addr + 100, 8);
		assert_non_null(ours);
		assert_ptr_equal(ours, (uint8_t *)(uintptr_t)w->userspace_addr + 100);
		memcpy(base + w->mmap_offset + 100, "backend", 8);
		assert_memory_equal(ours, "backend", 8);
		if (w->mmap_offset)
			/* What lies before the region is poison, not guest memory. */
			assert_int_equal(base[w->mmap_offset - 1], 0xa5);
		munmap(base, len);
	}
	vu_msg_close_fds(&m);
	pair_close(&p);
}

static void test_alloc_and_translate(void **state)
{
	struct fe *f;
	struct fe_mem_spec s;
	uint64_t gpa[3], g;
	void *ptr[3];

	(void)state;
	fe_mem_spec_default(&s);
	s.regions[0].size = 64 * 1024;
	s.regions[1].size = 64 * 1024;
	assert_int_equal(fe_new(&f, &s), 0);

	/* Round-robin over the regions, aligned as asked. */
	for (int i = 0; i < 3; i++) {
		ptr[i] = fe_alloc(f, 100, 64, &gpa[i]);
		assert_non_null(ptr[i]);
		assert_int_equal(gpa[i] % 64, 0);
		assert_int_equal((uintptr_t)ptr[i] % 64, 0);
		assert_ptr_equal(fe_gpa_to_ptr(f, gpa[i], 100), ptr[i]);
		assert_int_equal(fe_ptr_to_gpa(f, ptr[i], &g), 0);
		assert_int_equal(g, gpa[i]);
	}
	assert_true(gpa[0] < s.regions[1].gpa);
	assert_true(gpa[1] >= s.regions[1].gpa);
	assert_true(gpa[2] < s.regions[1].gpa);

	/* Ranges leaving a region, or in none, do not translate. */
	assert_null(fe_gpa_to_ptr(f, s.regions[0].gpa + s.regions[0].size - 4, 8));
	assert_null(fe_gpa_to_ptr(f, s.regions[0].gpa + s.regions[0].size + 4096, 1));
	assert_int_equal(fe_ptr_to_gpa(f, &g, &g), -EFAULT);

	/* Full: neither region has room. */
	assert_null(fe_alloc(f, 64 * 1024, 8, &g));
	assert_non_null(fe_alloc_in(f, 1, 1024, 8, &g));
	assert_true(g >= s.regions[1].gpa);
	assert_null(fe_alloc_in(f, 2, 8, 8, &g));
	fe_free(f);

	/* Overlapping regions and unaligned offsets are refused. */
	fe_mem_spec_default(&s);
	s.regions[1].gpa = s.regions[0].gpa + 4096;
	assert_int_equal(fe_new(&f, &s), -EINVAL);
	fe_mem_spec_default(&s);
	s.regions[1].mmap_offset = 100;
	assert_int_equal(fe_new(&f, &s), -EINVAL);
}

static void test_add_rem_mem_reg(void **state)
{
	struct pair p;
	struct vu_msg m;
	struct vhost_user_mem_region r;

	(void)state;
	pair_open(&p);
	assert_int_equal(fe_add_mem_reg(p.f, 1), 0);
	peer_recv(&p, &m, VHOST_USER_ADD_MEM_REG);
	assert_int_equal(m.hdr.size, sizeof(struct vhost_user_mem_reg));
	assert_int_equal(m.nfds, 1);
	assert_int_equal(fe_region(p.f, 1, &r), 0);
	assert_memory_equal(&m.payload.mem_reg.region, &r, sizeof(r));
	vu_msg_close_fds(&m);

	assert_int_equal(fe_rem_mem_reg(p.f, 1), 0);
	peer_recv(&p, &m, VHOST_USER_REM_MEM_REG);
	assert_int_equal(m.nfds, 0);
	assert_memory_equal(&m.payload.mem_reg.region, &r, sizeof(r));
	assert_int_equal(fe_add_mem_reg(p.f, 5), -EINVAL);
	pair_close(&p);
}

/* ------------------------------------------------------------------------ */
/* Backend channel */

static void test_backend_channel(void **state)
{
	struct pair p;
	struct vu_msg m;
	int chan, before;
	uint32_t req, size;

	(void)state;
	before = tfd_count();
	pair_open(&p);
	assert_int_equal(fe_wait_config_change(p.f, 10), -ENOTCONN);
	assert_int_equal(fe_backend_channel_open(p.f), 0);
	peer_recv(&p, &m, VHOST_USER_SET_BACKEND_REQ_FD);
	assert_int_equal(m.nfds, 1);
	chan = vu_msg_take_fd(&m, 0);

	/* Nothing yet. */
	assert_int_equal(fe_wait_config_change(p.f, 20), -ETIMEDOUT);

	/* A config change asking for a reply gets a u64 0. */
	send_msg(chan, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG,
		 VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK, NULL, 0, NULL, 0);
	assert_int_equal(fe_wait_config_change(p.f, T_TIMEOUT_MS), 0);
	assert_int_equal(vu_msg_recv(chan, &m), 0);
	assert_int_equal(m.hdr.request, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
	assert_int_equal(m.hdr.flags, VHOST_USER_REPLY_FLAGS);
	assert_int_equal(m.hdr.size, 8);
	assert_int_equal(m.payload.u64, 0);

	/* Without need-reply: no reply. */
	send_msg(chan, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, VHOST_USER_VERSION, NULL, 0, NULL, 0);
	assert_int_equal(fe_wait_config_change(p.f, T_TIMEOUT_MS), 0);
	assert_false(tfd_readable(chan, 0));

	/* Another message is not a config change; its fd is closed. */
	{
		int efd = eventfd(0, EFD_CLOEXEC);
		uint64_t v = 0;

		send_msg(chan, VHOST_USER_BACKEND_IOTLB_MSG, VHOST_USER_VERSION, &v, 8, &efd, 1);
		close(efd);
	}
	assert_int_equal(fe_wait_config_change(p.f, T_TIMEOUT_MS), -EPROTO);
	send_msg(chan, 77, VHOST_USER_VERSION, NULL, 0, NULL, 0);
	assert_int_equal(fe_backend_recv(p.f, T_TIMEOUT_MS, &req, &size), 0);
	assert_int_equal(req, 77);
	assert_int_equal(size, 0);

	close(chan);
	assert_int_equal(fe_wait_config_change(p.f, T_TIMEOUT_MS), -ECONNRESET);
	pair_close(&p);
	assert_int_equal(tfd_count(), before);
}

/* ------------------------------------------------------------------------ */
/* Message orders, against a scripted backend in a thread */

#define FAKE_MAX 128

struct fake {
	int sock;
	uint64_t features;
	uint64_t protocol;
	uint64_t queue_num;
	uint32_t vring_base; /* GET_VRING_BASE's answer */
	unsigned int n;
	uint32_t req[FAKE_MAX];
	uint32_t flags[FAKE_MAX];
	uint32_t idx[FAKE_MAX]; /* ring index of ring messages, else 0 */
	uint64_t val[FAKE_MAX]; /* u64 payload or state.num */
	unsigned int nfds[FAKE_MAX];
	pthread_t th;
};

static void *fake_loop(void *arg)
{
	struct fake *k = arg;
	struct vu_msg m;

	while (vu_msg_recv(k->sock, &m) == 0) {
		uint32_t r = m.hdr.request;
		unsigned int i = k->n < FAKE_MAX ? k->n++ : FAKE_MAX - 1;

		k->req[i] = r;
		k->flags[i] = m.hdr.flags;
		k->nfds[i] = m.nfds;
		k->idx[i] = 0;
		k->val[i] = m.hdr.size >= 8 ? m.payload.u64 : 0;
		switch (r) {
		case VHOST_USER_SET_VRING_NUM:
		case VHOST_USER_SET_VRING_BASE:
		case VHOST_USER_SET_VRING_ENABLE:
		case VHOST_USER_GET_VRING_BASE:
		case VHOST_USER_SET_VRING_ADDR:
			k->idx[i] = m.payload.state.index;
			k->val[i] = m.payload.state.num;
			break;
		case VHOST_USER_SET_VRING_KICK:
		case VHOST_USER_SET_VRING_CALL:
			k->idx[i] = (uint32_t)(m.payload.u64 & VHOST_USER_VRING_IDX_MASK);
			break;
		}
		vu_msg_close_fds(&m);

		switch (r) {
		case VHOST_USER_GET_FEATURES:
			reply_u64(k->sock, r, k->features);
			break;
		case VHOST_USER_GET_PROTOCOL_FEATURES:
			reply_u64(k->sock, r, k->protocol);
			break;
		case VHOST_USER_GET_QUEUE_NUM:
			reply_u64(k->sock, r, k->queue_num);
			break;
		case VHOST_USER_GET_MAX_MEM_SLOTS:
			reply_u64(k->sock, r, 32);
			break;
		case VHOST_USER_GET_VRING_BASE: {
			struct vhost_user_vring_state s = {.index = m.payload.state.index,
							   .num = k->vring_base};

			send_msg(k->sock, r, VHOST_USER_REPLY_FLAGS, &s, sizeof(s), NULL, 0);
			break;
		}
		default:
			if (m.hdr.flags & VHOST_USER_NEED_REPLY_MASK)
				reply_u64(k->sock, r, 0);
		}
	}
	return NULL;
}

static const uint64_t all_protocol =
    (1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
    (1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ) | (1ull << VHOST_USER_PROTOCOL_F_CONFIG) |
    (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);

/* One session of f with a fake backend: start, maybe stop, disconnect. */
static void fake_session(struct fake *k, struct fe *f, uint64_t features,
			 const struct fe_start_opts *o, bool stop, uint32_t vring_base)
{
	int sv[2];

	memset(k, 0, sizeof(*k));
	k->features = features;
	k->protocol = all_protocol;
	k->queue_num = 2;
	k->vring_base = vring_base;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	k->sock = sv[1];
	assert_int_equal(pthread_create(&k->th, NULL, fake_loop, k), 0);
	assert_int_equal(fe_attach(f, sv[0]), 0);
	assert_int_equal(fe_start(f, o), 0);
	if (stop)
		assert_int_equal(fe_stop(f), 0);
	/* Closing makes the fake's read fail: after the join, k is ours. */
	fe_disconnect(f);
	pthread_join(k->th, NULL);
	close(k->sock);
}

static void fake_run(struct fake *k, struct fe **fp, uint64_t features,
		     const struct fe_start_opts *o, bool stop)
{
	assert_int_equal(fe_new(fp, NULL), 0);
	fake_session(k, *fp, features, o, stop, 0);
}

struct step {
	uint32_t req;
	uint32_t idx;
};

#define S(r)                                                                                       \
	{                                                                                          \
		VHOST_USER_##r, 0                                                                  \
	}
#define R(r, i)                                                                                    \
	{                                                                                          \
		VHOST_USER_##r, i                                                                  \
	}

static void expect_steps(const struct fake *k, const struct step *s, unsigned int n)
{
	for (unsigned int i = 0; i < n && i < k->n; i++) {
		if (k->req[i] != s[i].req || k->idx[i] != s[i].idx)
			fail_msg("step %u: got %s (%u) ring %u, want %s ring %u", i,
				 vu_msg_name(k->req[i]), k->req[i], k->idx[i],
				 vu_msg_name(s[i].req), s[i].idx);
	}
	assert_int_equal(k->n, n);
}

static unsigned int find(const struct fake *k, uint32_t req)
{
	for (unsigned int i = 0; i < k->n; i++)
		if (k->req[i] == req)
			return i;
	fail_msg("%s never sent", vu_msg_name(req));
	return 0;
}

static const uint64_t all_features = FE_F_VERSION_1 | FE_F_PROTOCOL_FEATURES | FE_F_EVENT_IDX |
				     FE_F_INDIRECT_DESC | FE_F_NOTIFY_ON_EMPTY | 0x7;

static void test_order_qemu(void **state)
{
	static const struct step want[] = {
	    S(GET_FEATURES),	    S(GET_PROTOCOL_FEATURES), S(SET_PROTOCOL_FEATURES),
	    S(GET_QUEUE_NUM),	    S(GET_MAX_MEM_SLOTS),     S(SET_BACKEND_REQ_FD),
	    S(SET_OWNER),	    S(SET_FEATURES),	      S(SET_MEM_TABLE),
	    R(SET_VRING_NUM, 0),    R(SET_VRING_BASE, 0),     R(SET_VRING_ADDR, 0),
	    R(SET_VRING_KICK, 0),   R(SET_VRING_CALL, 0),     R(SET_VRING_ENABLE, 0),
	    R(SET_VRING_NUM, 1),    R(SET_VRING_BASE, 1),     R(SET_VRING_ADDR, 1),
	    R(SET_VRING_KICK, 1),   R(SET_VRING_CALL, 1),     R(SET_VRING_ENABLE, 1),
	    R(SET_VRING_ENABLE, 0), R(GET_VRING_BASE, 0),     R(SET_VRING_ENABLE, 1),
	    R(GET_VRING_BASE, 1),
	};
	struct fe_start_opts o;
	struct fake k;
	struct fe *f;
	unsigned int i;

	(void)state;
	fe_start_opts_default(&o);
	fake_run(&k, &f, all_features, &o, true);
	expect_steps(&k, want, sizeof(want) / sizeof(want[0]));

	/* Acks start right after REPLY_ACK was negotiated; GETs never ask. */
	assert_int_equal(k.flags[find(&k, VHOST_USER_SET_PROTOCOL_FEATURES)], 1);
	assert_int_equal(k.flags[find(&k, VHOST_USER_SET_OWNER)], 9);
	assert_int_equal(k.flags[find(&k, VHOST_USER_GET_VRING_BASE)], 1);
	/* What was asked for and offered, nothing else. */
	assert_int_equal(k.val[find(&k, VHOST_USER_SET_FEATURES)],
			 all_features & ~(FE_F_NOTIFY_ON_EMPTY | 0x7));
	assert_int_equal(fe_features(f), all_features & ~(FE_F_NOTIFY_ON_EMPTY | 0x7));
	assert_int_equal(k.val[find(&k, VHOST_USER_SET_PROTOCOL_FEATURES)], all_protocol);
	assert_int_equal(k.nfds[find(&k, VHOST_USER_SET_MEM_TABLE)], 2);
	assert_int_equal(k.nfds[find(&k, VHOST_USER_SET_BACKEND_REQ_FD)], 1);
	i = find(&k, VHOST_USER_SET_VRING_NUM);
	assert_int_equal(k.val[i], 256);
	i = find(&k, VHOST_USER_SET_VRING_ENABLE);
	assert_int_equal(k.val[i], 1);
	assert_int_equal(k.val[21], 0); /* the stop's ENABLE 0 */
	assert_int_equal(k.nfds[find(&k, VHOST_USER_SET_VRING_KICK)], 1);
	assert_int_equal(k.nfds[find(&k, VHOST_USER_SET_VRING_CALL)], 1);
	assert_int_equal(fe_num_rings(f), 2);
	fe_free(f);
}

static void test_order_cloud_hv(void **state)
{
	static const struct step want[] = {
	    S(SET_OWNER),
	    S(GET_FEATURES),
	    S(GET_PROTOCOL_FEATURES),
	    S(SET_PROTOCOL_FEATURES),
	    S(GET_QUEUE_NUM),
	    S(SET_FEATURES),
	    S(SET_MEM_TABLE),
	    R(SET_VRING_NUM, 0),
	    R(SET_VRING_NUM, 1),
	    R(SET_VRING_ADDR, 0),
	    R(SET_VRING_BASE, 0),
	    R(SET_VRING_CALL, 0),
	    R(SET_VRING_KICK, 0),
	    R(SET_VRING_ADDR, 1),
	    R(SET_VRING_BASE, 1),
	    R(SET_VRING_CALL, 1),
	    R(SET_VRING_KICK, 1),
	    R(SET_VRING_ENABLE, 0),
	    R(SET_VRING_ENABLE, 1),
	    S(SET_BACKEND_REQ_FD),
	};
	struct fe_start_opts o;
	struct fake k;
	struct fe *f;

	(void)state;
	fe_start_opts_default(&o);
	o.order = FE_ORDER_CLOUD_HV;
	fake_run(&k, &f, all_features, &o, false);
	expect_steps(&k, want, sizeof(want) / sizeof(want[0]));
	fe_free(f);
}

static void test_order_loopback_and_add_mem_reg(void **state)
{
	static const struct step want[] = {
	    S(GET_FEATURES),	    S(GET_PROTOCOL_FEATURES), S(SET_PROTOCOL_FEATURES),
	    S(GET_QUEUE_NUM),	    S(GET_MAX_MEM_SLOTS),     S(SET_BACKEND_REQ_FD),
	    S(SET_OWNER),	    S(SET_FEATURES),	      R(SET_VRING_CALL, 0),
	    R(SET_VRING_CALL, 1),   S(ADD_MEM_REG),	      S(ADD_MEM_REG),
	    R(SET_VRING_NUM, 0),    R(SET_VRING_BASE, 0),     R(SET_VRING_ADDR, 0),
	    R(SET_VRING_KICK, 0),   R(SET_VRING_ENABLE, 0),   R(SET_VRING_NUM, 1),
	    R(SET_VRING_BASE, 1),   R(SET_VRING_ADDR, 1),     R(SET_VRING_KICK, 1),
	    R(SET_VRING_ENABLE, 1),
	};
	struct fe_start_opts o;
	struct fake k;
	struct fe *f;

	(void)state;
	fe_start_opts_default(&o);
	o.call_before_mem = true;
	o.add_mem_reg = true;
	fake_run(&k, &f, all_features, &o, false);
	expect_steps(&k, want, sizeof(want) / sizeof(want[0]));
	assert_int_equal(k.nfds[find(&k, VHOST_USER_ADD_MEM_REG)], 1);
	fe_free(f);
}

static void test_order_without_protocol_features(void **state)
{
	static const struct step want[] = {
	    S(GET_FEATURES),	  S(SET_OWNER),		S(SET_FEATURES),      S(SET_MEM_TABLE),
	    R(SET_VRING_NUM, 0),  R(SET_VRING_BASE, 0), R(SET_VRING_ADDR, 0), R(SET_VRING_KICK, 0),
	    R(SET_VRING_CALL, 0), R(GET_VRING_BASE, 0),
	};
	struct fe_start_opts o;
	struct fake k;
	struct fe *f;

	(void)state;
	fe_start_opts_default(&o);
	/* Without PROTOCOL_FEATURES: one ring, no ENABLE, no acks. */
	fake_run(&k, &f, FE_F_VERSION_1 | FE_F_EVENT_IDX, &o, true);
	expect_steps(&k, want, sizeof(want) / sizeof(want[0]));
	for (unsigned int i = 0; i < k.n; i++)
		assert_int_equal(k.flags[i], VHOST_USER_VERSION);
	assert_int_equal(fe_num_rings(f), 1);
	assert_int_equal(fe_protocol_features(f), 0);
	fe_free(f);
}

static void test_start_needs_queues(void **state)
{
	struct fe_start_opts o;
	struct fake k;
	struct fe *f;
	int sv[2];

	(void)state;
	memset(&k, 0, sizeof(k));
	k.features = all_features;
	k.protocol = all_protocol;
	k.queue_num = 2;
	fe_start_opts_default(&o);
	o.num_queues = 3;
	assert_int_equal(fe_new(&f, NULL), 0);
	assert_int_equal(fe_start(f, &o), -ENOTCONN);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	k.sock = sv[1];
	assert_int_equal(pthread_create(&k.th, NULL, fake_loop, &k), 0);
	assert_int_equal(fe_attach(f, sv[0]), 0);
	assert_int_equal(fe_start(f, &o), -ENOTSUP);
	fe_disconnect(f);
	pthread_join(k.th, NULL);
	close(k.sock);
	fe_free(f);
}

/* The SET_VRING_BASE value ring q got in session k. */
static uint64_t base_sent(const struct fake *k, unsigned int q)
{
	for (unsigned int i = 0; i < k->n; i++)
		if (k->req[i] == VHOST_USER_SET_VRING_BASE && k->idx[i] == q)
			return k->val[i];
	fail_msg("no SET_VRING_BASE for ring %u", q);
	return 0;
}

static void test_base_across_reconnects(void **state)
{
	struct fe_start_opts o;
	struct fake k;
	struct fe *f;
	uint64_t u;
	uint16_t *used_idx;

	(void)state;
	fe_start_opts_default(&o);
	assert_int_equal(fe_new(&f, NULL), 0);
	/* A new ring starts at 0; the stop's GET_VRING_BASE says 5. */
	fake_session(&k, f, all_features, &o, true, 5);
	assert_int_equal(base_sent(&k, 0), 0);
	assert_int_equal(base_sent(&k, 1), 0);

	/* Next time both go on from 5; this session ends without a stop. */
	fake_session(&k, f, all_features, &o, false, 0);
	assert_int_equal(base_sent(&k, 0), 5);
	assert_int_equal(base_sent(&k, 1), 5);

	/*
	 * The backend that went away had completed 3 on ring 0 (its used->idx,
	 * written after the disconnect): the next start reads it then.
	 */
	assert_int_equal(fe_ring_gpas(f, 0, NULL, NULL, &u), 0);
	used_idx = (uint16_t *)fe_gpa_to_ptr(f, u + 2, 2);
	assert_non_null(used_idx);
	*used_idx = 3;
	fake_session(&k, f, all_features, &o, false, 0);
	assert_int_equal(base_sent(&k, 0), 3);
	assert_int_equal(base_sent(&k, 1), 0);
	fe_free(f);
}

/* ------------------------------------------------------------------------ */
/* The driver's side of a ring, with the test playing the device */

struct dev_view {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t num;
};

static void view_ring(struct fe *f, unsigned int q, uint16_t num, struct dev_view *v)
{
	uint64_t d, a, u;

	assert_int_equal(fe_ring_gpas(f, q, &d, &a, &u), 0);
	v->num = num;
	v->desc = fe_gpa_to_ptr(f, d, 16ull * num);
	v->avail = fe_gpa_to_ptr(f, a, 6 + 2ull * num);
	v->used = fe_gpa_to_ptr(f, u, 6 + 8ull * num);
	assert_non_null(v->desc);
	assert_non_null(v->avail);
	assert_non_null(v->used);
	assert_int_equal(d % 16, 0);
	assert_int_equal(u % 4, 0);
}

/* A frontend whose features say event_idx or not (SET_FEATURES to a peer). */
static void ring_pair(struct pair *p, bool event_idx, uint16_t num, struct dev_view *v)
{
	struct vu_msg m;

	pair_open(p);
	assert_int_equal(fe_set_features(p->f, FE_F_VERSION_1 | (event_idx ? FE_F_EVENT_IDX : 0)),
			 0);
	peer_recv(p, &m, VHOST_USER_SET_FEATURES);
	assert_int_equal(fe_ring_setup(p->f, 0, num), 0);
	assert_int_equal(fe_ring_event_idx(p->f, 0), event_idx);
	view_ring(p->f, 0, num, v);
}

static void check_desc(const struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags)
{
	assert_int_equal(d->addr, addr);
	assert_int_equal(d->len, len);
	assert_int_equal(d->flags, flags);
}

static void device_push(struct dev_view *v, uint32_t id, uint32_t len)
{
	uint16_t idx = v->used->idx;

	v->used->ring[idx % v->num].id = id;
	v->used->ring[idx % v->num].len = len;
	__atomic_store_n(&v->used->idx, (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static void test_chain_layouts(void **state)
{
	struct fe_sg out[2] = {{0x1000, 16}, {0x2000, 8}};
	struct fe_sg in[1] = {{0x3000, 10}};
	struct fe_add_opts split = {.seg_max = 3};
	struct fe_add_opts ind = {.flags = FE_ADD_INDIRECT};
	struct dev_view v;
	struct pair p;
	uint16_t h, i;

	(void)state;
	ring_pair(&p, false, 16, &v);

	/* Direct: one descriptor per buffer, readable first, linked by next. */
	assert_int_equal(fe_ring_add(p.f, 0, out, 2, in, 1, NULL, &h), 0);
	assert_int_equal(v.avail->idx, 1);
	assert_int_equal(v.avail->ring[0], h);
	check_desc(&v.desc[h], 0x1000, 16, VRING_DESC_F_NEXT);
	i = v.desc[h].next;
	check_desc(&v.desc[i], 0x2000, 8, VRING_DESC_F_NEXT);
	i = v.desc[i].next;
	check_desc(&v.desc[i], 0x3000, 10, VRING_DESC_F_WRITE);
	assert_int_equal(fe_ring_num_free(p.f, 0), 13);

	/* Split: 16 -> 3+3+3+3+3+1, 8 -> 3+3+2, 10 -> 3+3+3+1. */
	assert_int_equal(fe_ring_add(p.f, 0, out, 2, in, 1, &split, &h), 0);
	assert_int_equal(fe_ring_num_free(p.f, 0), 0);
	{
		static const uint32_t lens[] = {3, 3, 3, 3, 3, 1, 3, 3, 2, 3, 3, 3, 1};
		static const uint64_t addrs[] = {0x1000, 0x1003, 0x1006, 0x1009, 0x100c,
						 0x100f, 0x2000, 0x2003, 0x2006, 0x3000,
						 0x3003, 0x3006, 0x3009};

		i = h;
		for (unsigned int k = 0; k < 13; k++) {
			uint16_t fl = (uint16_t)((k >= 9 ? VRING_DESC_F_WRITE : 0) |
						 (k < 12 ? VRING_DESC_F_NEXT : 0));

			check_desc(&v.desc[i], addrs[k], lens[k], fl);
			i = v.desc[i].next;
		}
	}
	/* No room for more. */
	assert_int_equal(fe_ring_add(p.f, 0, out, 1, NULL, 0, NULL, NULL), -ENOSPC);
	assert_int_equal(fe_ring_add(p.f, 0, NULL, 0, NULL, 0, NULL, NULL), -EINVAL);

	/* Take both back; then an indirect chain uses one ring descriptor. */
	device_push(&v, v.avail->ring[0], 10);
	device_push(&v, v.avail->ring[1], 0);
	uint32_t id, len;

	assert_int_equal(fe_ring_get_used(p.f, 0, &id, &len), 1);
	assert_int_equal(len, 10);
	assert_int_equal(fe_ring_get_used(p.f, 0, &id, &len), 1);
	assert_int_equal(fe_ring_get_used(p.f, 0, &id, &len), 0);
	assert_int_equal(fe_ring_num_free(p.f, 0), 16);
	assert_int_equal(fe_ring_inflight(p.f, 0), 0);

	assert_int_equal(fe_ring_add(p.f, 0, out, 2, in, 1, &ind, &h), 0);
	assert_int_equal(fe_ring_num_free(p.f, 0), 15);
	assert_int_equal(v.desc[h].flags, VRING_DESC_F_INDIRECT);
	assert_int_equal(v.desc[h].len, 3 * 16);
	{
		struct vring_desc *t = fe_gpa_to_ptr(p.f, v.desc[h].addr, 48);

		assert_non_null(t);
		assert_int_equal(v.desc[h].addr % 16, 0);
		check_desc(&t[0], 0x1000, 16, VRING_DESC_F_NEXT);
		assert_int_equal(t[0].next, 1);
		check_desc(&t[1], 0x2000, 8, VRING_DESC_F_NEXT);
		assert_int_equal(t[1].next, 2);
		check_desc(&t[2], 0x3000, 10, VRING_DESC_F_WRITE);
	}
	/* Indirect tables are bounded. */
	{
		struct fe_add_opts tiny = {.flags = FE_ADD_INDIRECT, .seg_max = 1};
		struct fe_sg big = {0x1000, FE_MAX_INDIRECT + 1};

		assert_int_equal(fe_ring_add(p.f, 0, &big, 1, NULL, 0, &tiny, NULL), -EINVAL);
	}
	pair_close(&p);
}

static void test_used_checks(void **state)
{
	struct fe_sg in = {0x3000, 10};
	struct dev_view v;
	struct pair p;
	uint16_t h;
	uint32_t id, len;

	(void)state;
	ring_pair(&p, false, 8, &v);
	assert_int_equal(fe_ring_add(p.f, 0, NULL, 0, &in, 1, NULL, &h), 0);

	/* An id that is no chain in flight. */
	device_push(&v, (uint32_t)(h + 1), 0);
	assert_int_equal(fe_ring_get_used(p.f, 0, &id, &len), -EPROTO);
	v.used->idx--;
	/* An id beyond the ring. */
	device_push(&v, 8, 0);
	assert_int_equal(fe_ring_get_used(p.f, 0, &id, &len), -EPROTO);
	v.used->idx--;
	/* More written than the chain could hold. */
	device_push(&v, h, 11);
	assert_int_equal(fe_ring_get_used(p.f, 0, &id, &len), -EPROTO);
	v.used->idx--;
	/* used->idx ahead of what is in flight. */
	v.used->idx = 2;
	assert_int_equal(fe_ring_get_used(p.f, 0, &id, &len), -EPROTO);
	v.used->idx = 0;
	/* The right entry. */
	device_push(&v, h, 10);
	assert_int_equal(fe_ring_get_used(p.f, 0, &id, &len), 1);
	assert_int_equal(id, h);
	assert_int_equal(len, 10);
	/* Used twice is one too many. */
	device_push(&v, h, 10);
	assert_int_equal(fe_ring_get_used(p.f, 0, &id, &len), -EPROTO);
	pair_close(&p);
}

static uint16_t *avail_event(struct dev_view *v)
{
	return (uint16_t *)&v->used->ring[v->num];
}

static uint16_t *used_event(struct dev_view *v)
{
	return (uint16_t *)&v->avail->ring[v->num];
}

static void test_kick_suppression(void **state)
{
	struct fe_sg b = {0x1000, 4};
	struct dev_view v;
	struct pair p;
	int kfd;
	eventfd_t cnt;

	(void)state;
	/* Without EVENT_IDX: used->flags NO_NOTIFY. */
	ring_pair(&p, false, 8, &v);
	kfd = fe_ring_kick_fd(p.f, 0);
	assert_int_equal(fe_ring_add(p.f, 0, &b, 1, NULL, 0, NULL, NULL), 0);
	assert_int_equal(fe_ring_kick(p.f, 0, false), 1);
	assert_int_equal(eventfd_read(kfd, &cnt), 0);
	v.used->flags = VRING_USED_F_NO_NOTIFY;
	assert_int_equal(fe_ring_add(p.f, 0, &b, 1, NULL, 0, NULL, NULL), 0);
	assert_int_equal(fe_ring_kick(p.f, 0, false), 0);
	assert_false(tfd_readable(kfd, 0));
	assert_int_equal(fe_ring_kick(p.f, 0, true), 1);
	assert_int_equal(eventfd_read(kfd, &cnt), 0);
	v.used->flags = 0;
	/* Nothing new since the last kick: nothing to say. */
	assert_int_equal(fe_ring_kick(p.f, 0, false), 0);
	pair_close(&p);

	/* With EVENT_IDX: avail_event. */
	ring_pair(&p, true, 8, &v);
	kfd = fe_ring_kick_fd(p.f, 0);
	/* The device wants a kick when index 0 is made available. */
	*avail_event(&v) = 0;
	assert_int_equal(fe_ring_add(p.f, 0, &b, 1, NULL, 0, NULL, NULL), 0);
	assert_int_equal(fe_ring_kick(p.f, 0, false), 1);
	assert_int_equal(eventfd_read(kfd, &cnt), 0);
	/* Not at 1 (it still has to read index 0 .. it asked for 3). */
	*avail_event(&v) = 3;
	assert_int_equal(fe_ring_add(p.f, 0, &b, 1, NULL, 0, NULL, NULL), 0);
	assert_int_equal(fe_ring_kick(p.f, 0, false), 0);
	assert_false(tfd_readable(kfd, 0));
	/* Two more make index 3 available: kick. */
	assert_int_equal(fe_ring_add(p.f, 0, &b, 1, NULL, 0, NULL, NULL), 0);
	assert_int_equal(fe_ring_add(p.f, 0, &b, 1, NULL, 0, NULL, NULL), 0);
	assert_int_equal(fe_ring_kick(p.f, 0, false), 1);
	assert_int_equal(eventfd_read(kfd, &cnt), 0);
	/* used->flags means nothing with EVENT_IDX. */
	v.used->flags = VRING_USED_F_NO_NOTIFY;
	*avail_event(&v) = 4;
	assert_int_equal(fe_ring_add(p.f, 0, &b, 1, NULL, 0, NULL, NULL), 0);
	assert_int_equal(fe_ring_kick(p.f, 0, false), 1);
	pair_close(&p);
}

static void test_interrupt_suppression(void **state)
{
	struct fe_sg in = {0x1000, 4};
	struct dev_view v;
	struct pair p;
	uint32_t id, len;
	uint16_t h;

	(void)state;
	ring_pair(&p, true, 8, &v);
	assert_int_equal(*used_event(&v), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(fe_ring_add(p.f, 0, NULL, 0, &in, 1, NULL, &h), 0);
	device_push(&v, v.avail->ring[0], 0);
	assert_int_equal(fe_ring_get_used(p.f, 0, &id, &len), 1);
	/* Having taken one, it asks to hear of the next. */
	assert_int_equal(*used_event(&v), 1);
	fe_ring_set_interrupts(p.f, 0, false);
	assert_int_equal(v.avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
	/* An index already passed: need_event stays false for any new one. */
	assert_int_equal(*used_event(&v), 0);
	device_push(&v, v.avail->ring[1], 0);
	assert_int_equal(fe_ring_get_used(p.f, 0, &id, &len), 1);
	assert_int_equal(*used_event(&v), 0);
	fe_ring_set_interrupts(p.f, 0, true);
	assert_int_equal(v.avail->flags, 0);
	assert_int_equal(*used_event(&v), 2);
	pair_close(&p);
}

static void test_wait_call(void **state)
{
	struct fe_sg in = {0x1000, 4};
	struct dev_view v;
	struct pair p;
	uint32_t id, len;
	int cfd;

	(void)state;
	ring_pair(&p, false, 8, &v);
	cfd = fe_ring_call_fd(p.f, 0);
	assert_int_equal(fe_ring_wait_call(p.f, 0, 10), -ETIMEDOUT);
	eventfd_write(cfd, 2);
	assert_int_equal(fe_ring_wait_call(p.f, 0, T_TIMEOUT_MS), 2);
	assert_int_equal(fe_ring_wait_used(p.f, 0, 10, &id, &len), -ETIMEDOUT);
	assert_int_equal(fe_ring_add(p.f, 0, NULL, 0, &in, 1, NULL, NULL), 0);
	device_push(&v, v.avail->ring[0], 3);
	eventfd_write(cfd, 1);
	assert_int_equal(fe_ring_wait_used(p.f, 0, T_TIMEOUT_MS, &id, &len), 1);
	assert_int_equal(len, 3);
	pair_close(&p);
}

static void test_index_wrap(void **state)
{
	struct fe_sg in = {0x1000, 4};
	struct dev_view v;
	struct pair p;
	uint32_t id, len;

	(void)state;
	ring_pair(&p, true, 4, &v);
	/* Past 65535 both indices wrap; the ring goes on. */
	for (unsigned int i = 0; i < 70000; i++) {
		uint16_t h;

		assert_int_equal(fe_ring_add(p.f, 0, NULL, 0, &in, 1, NULL, &h), 0);
		assert_int_equal(v.avail->ring[(uint16_t)i % 4], h);
		device_push(&v, h, i & 3);
		assert_int_equal(fe_ring_get_used(p.f, 0, &id, &len), 1);
		assert_int_equal(id, h);
		assert_int_equal(len, i & 3);
	}
	assert_int_equal(fe_ring_avail_idx(p.f, 0), (uint16_t)70000);
	assert_int_equal(fe_ring_last_used(p.f, 0), (uint16_t)70000);
	assert_int_equal(fe_ring_num_free(p.f, 0), 4);
	pair_close(&p);
}

/* ------------------------------------------------------------------------ */
/* Connecting */

static void test_connect(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[] = "/tmp/vdc-fe-XXXXXX";
	struct fe *f;
	int lfd, cfd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
	assert_int_equal(fe_new(&f, NULL), 0);

	/* Nobody there: retried for the time given, then the error. */
	assert_int_equal(fe_connect(f, sa.sun_path, 60), -ENOENT);
	assert_false(fe_connected(f));

	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(fe_connect(f, sa.sun_path, T_TIMEOUT_MS), 0);
	assert_true(fe_connected(f));
	assert_int_equal(fe_connect(f, sa.sun_path, T_TIMEOUT_MS), -EISCONN);
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(cfd >= 0);
	fe_disconnect(f);
	assert_int_equal(fe_sock(f), -1);
	{
		char c;

		assert_int_equal(read(cfd, &c, 1), 0);
	}
	close(cfd);
	close(lfd);
	fe_free(f);
	unlink(sa.sun_path);
	rmdir(dir);
}

static void test_no_fd_leak(void **state)
{
	struct fe_start_opts o;
	struct fake k;
	struct fe *f;
	int before = tfd_count();

	(void)state;
	fe_start_opts_default(&o);
	fake_run(&k, &f, all_features, &o, true);
	fe_free(f);
	assert_int_equal(tfd_count(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_checks),
	    cmocka_unit_test(test_reply_with_fd_is_refused),
	    cmocka_unit_test(test_no_reply_times_out),
	    cmocka_unit_test(test_peer_closed),
	    cmocka_unit_test(test_acks),
	    cmocka_unit_test(test_get_config),
	    cmocka_unit_test(test_memory_layout),
	    cmocka_unit_test(test_alloc_and_translate),
	    cmocka_unit_test(test_add_rem_mem_reg),
	    cmocka_unit_test(test_backend_channel),
	    cmocka_unit_test(test_order_qemu),
	    cmocka_unit_test(test_order_cloud_hv),
	    cmocka_unit_test(test_order_loopback_and_add_mem_reg),
	    cmocka_unit_test(test_order_without_protocol_features),
	    cmocka_unit_test(test_start_needs_queues),
	    cmocka_unit_test(test_base_across_reconnects),
	    cmocka_unit_test(test_chain_layouts),
	    cmocka_unit_test(test_used_checks),
	    cmocka_unit_test(test_kick_suppression),
	    cmocka_unit_test(test_interrupt_suppression),
	    cmocka_unit_test(test_wait_call),
	    cmocka_unit_test(test_index_wrap),
	    cmocka_unit_test(test_connect),
	    cmocka_unit_test(test_no_fd_leak),
	};

	/* The client's complaints about the peer's misdeeds are expected. */
	if (!getenv("VDC_TEST_VERBOSE"))
		vlog_set_level(VLOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
