/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Harness shared by the test_backend*.c programs: a trivial device that
 * records its callbacks, and a test that plays the frontend over a
 * socketpair attached with vu_backend_attach().
 */
#ifndef TEST_BACKEND_H
#define TEST_BACKEND_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tfd.h"
#include "vhost-user/vhost_user.h"
#include "vhost-user/vu_backend.h"
#include "vhost-user/vu_msg.h"

#define TB_UNUSED __attribute__((unused))

#define TB_NUM_QUEUES 3
#define TB_CONFIG_SIZE 16
#define TB_DEV_FEATURES ((1ull << 0) | (1ull << 3))
#define TB_F_PROTOCOL (1ull << VHOST_USER_F_PROTOCOL_FEATURES)

/* Guest memory used by most tests: one memfd, gpa != user address. */
#define TB_MEM_SIZE 0x10000ull
#define TB_GPA 0x100000ull
#define TB_UVA 0x7f0000000000ull
/* A ring of TB_RING_NUM entries at these offsets into that memory. */
#define TB_RING_NUM 256u
#define TB_DESC_OFF 0x0000ull
#define TB_AVAIL_OFF 0x1000ull
#define TB_USED_OFF 0x2000ull
#define TB_RING_STRIDE 0x4000ull /* ring i at i * stride */

enum tb_event {
	TB_EV_START = 1,
	TB_EV_STOP,
	TB_EV_KICK,
	TB_EV_RESET,
	TB_EV_FEATURES,
};

struct tb_log {
	enum tb_event ev;
	unsigned int q;
};

struct tb_dev {
	struct tb_log log[256];
	unsigned int nlog;
	unsigned int starts[VU_MAX_QUEUES], stops[VU_MAX_QUEUES], kicks[VU_MAX_QUEUES];
	unsigned int resets;
	uint64_t features;
	bool refuse_features;
	uint8_t config[TB_CONFIG_SIZE];
	unsigned int set_config_calls;
	unsigned int config_oob; /* calls outside config space */
	/* Checked in queue_stop: nothing may have been replied yet. */
	int fe;
	bool reply_before_stop;
	/* What the ring looked like when the device got it. */
	bool start_had_rings[VU_MAX_QUEUES];
	uint16_t start_used_idx[VU_MAX_QUEUES];
};

static TB_UNUSED void tb_log(struct tb_dev *d, enum tb_event ev, unsigned int q)
{
	if (d->nlog < sizeof(d->log) / sizeof(d->log[0]))
		d->log[d->nlog++] = (struct tb_log){ev, q};
}

static int tb_set_features(void *opaque, uint64_t f)
{
	struct tb_dev *d = opaque;

	tb_log(d, TB_EV_FEATURES, 0);
	if (d->refuse_features)
		return -EINVAL;
	d->features = f;
	return 0;
}

static int tb_get_config(void *opaque, uint32_t off, uint8_t *buf, uint32_t size)
{
	struct tb_dev *d = opaque;

	/* The backend must not ask: counted so that tests can tell. */
	if (off > TB_CONFIG_SIZE || size > TB_CONFIG_SIZE - off) {
		d->config_oob++;
		return -EINVAL;
	}
	memcpy(buf, d->config + off, size);
	return 0;
}

static int tb_set_config(void *opaque, uint32_t off, const uint8_t *buf, uint32_t size)
{
	struct tb_dev *d = opaque;

	d->set_config_calls++;
	if (off > TB_CONFIG_SIZE || size > TB_CONFIG_SIZE - off) {
		d->config_oob++;
		return -EINVAL;
	}
	memcpy(d->config + off, buf, size);
	return 0;
}

static void tb_queue_start(void *opaque, struct vq *q)
{
	struct tb_dev *d = opaque;

	tb_log(d, TB_EV_START, q->index);
	d->starts[q->index]++;
	d->start_had_rings[q->index] = q->desc && q->avail && q->used && q->started && q->enabled;
	d->start_used_idx[q->index] = q->used_idx;
}

static void tb_queue_stop(void *opaque, struct vq *q)
{
	struct tb_dev *d = opaque;
	struct pollfd p = {.fd = d->fe, .events = POLLIN};

	tb_log(d, TB_EV_STOP, q->index);
	d->stops[q->index]++;
	if (d->fe >= 0 && poll(&p, 1, 0) > 0)
		d->reply_before_stop = true;
}

static void tb_queue_kick(void *opaque, struct vq *q)
{
	struct tb_dev *d = opaque;

	tb_log(d, TB_EV_KICK, q->index);
	d->kicks[q->index]++;
}

static void tb_reset(void *opaque)
{
	struct tb_dev *d = opaque;

	tb_log(d, TB_EV_RESET, 0);
	d->resets++;
}

static TB_UNUSED const struct vu_device_ops tb_ops = {
    .set_features = tb_set_features,
    .get_config = tb_get_config,
    .set_config = tb_set_config,
    .queue_start = tb_queue_start,
    .queue_stop = tb_queue_stop,
    .queue_kick = tb_queue_kick,
    .reset = tb_reset,
};

static TB_UNUSED const struct vu_device_ops tb_ops_ro = {
    .set_features = tb_set_features,
    .get_config = tb_get_config,
    .set_config = NULL,
    .queue_start = tb_queue_start,
    .queue_stop = tb_queue_stop,
    .queue_kick = tb_queue_kick,
    .reset = tb_reset,
};

struct tb {
	struct tb_dev dev;
	struct vu_device vd;
	struct vu_backend *b;
	int fe;	      /* the frontend's end */
	int memfd;    /* guest memory */
	uint8_t *mem; /* the test's own mapping of it */
	int fds_at_start;
};

static TB_UNUSED struct tb *tb_new_dev(uint32_t config_size, const struct vu_device_ops *ops)
{
	struct tb *t = calloc(1, sizeof(*t));
	int sv[2];

	assert_non_null(t);
	t->fds_at_start = tfd_count();
	t->vd.name = "testdev";
	t->vd.features = TB_DEV_FEATURES;
	t->vd.num_queues = TB_NUM_QUEUES;
	t->vd.max_queue_size = VHOST_USER_MAX_QUEUE_SIZE;
	t->vd.config_size = config_size;
	t->vd.ops = ops;
	t->vd.opaque = &t->dev;
	for (unsigned int i = 0; i < TB_CONFIG_SIZE; i++)
		t->dev.config[i] = (uint8_t)(0xa0 + i);
	assert_int_equal(vu_backend_new(&t->b, &t->vd), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	t->fe = sv[0];
	t->dev.fe = sv[0];
	assert_int_equal(vu_backend_attach(t->b, sv[1]), 0);
	assert_true(vu_backend_connected(t->b));

	t->memfd = memfd_create("guest", MFD_CLOEXEC);
	assert_true(t->memfd >= 0);
	assert_int_equal(ftruncate(t->memfd, (off_t)TB_MEM_SIZE), 0);
	t->mem = mmap(NULL, TB_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, t->memfd, 0);
	assert_true(t->mem != MAP_FAILED);
	return t;
}

static TB_UNUSED struct tb *tb_new(void)
{
	return tb_new_dev(TB_CONFIG_SIZE, &tb_ops);
}

/* Free everything; no fd may outlive the session. */
static TB_UNUSED void tb_free(struct tb *t)
{
	int fds = t->fds_at_start;

	vu_backend_free(t->b);
	if (t->fe >= 0)
		close(t->fe);
	close(t->memfd);
	munmap(t->mem, TB_MEM_SIZE);
	free(t);
	assert_int_equal(tfd_count(), fds);
}

/* Send a request as the frontend. */
static TB_UNUSED void tb_send(struct tb *t, uint32_t req, uint32_t flags, const void *payload,
			      uint32_t size, const int *fds, unsigned int nfds)
{
	struct vu_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr.request = req;
	m.hdr.flags = VHOST_USER_VERSION | flags;
	m.hdr.size = size;
	if (size)
		memcpy(&m.payload, payload, size);
	m.nfds = nfds;
	if (nfds)
		memcpy(m.fds, fds, nfds * sizeof(int));
	assert_int_equal(vu_msg_send(t->fe, &m), 0);
}

static TB_UNUSED void tb_dispatch(struct tb *t)
{
	assert_int_equal(vu_backend_dispatch(t->b), 0);
}

/* Send and let the backend handle it. */
static TB_UNUSED void tb_req(struct tb *t, uint32_t req, uint32_t flags, const void *payload,
			     uint32_t size, const int *fds, unsigned int nfds)
{
	tb_send(t, req, flags, payload, size, fds, nfds);
	tb_dispatch(t);
}

static TB_UNUSED bool tb_fe_readable(struct tb *t)
{
	return tfd_readable(t->fe, 0);
}

/* The reply must already be there (the backend is synchronous). */
static TB_UNUSED void tb_reply(struct tb *t, uint32_t req, struct vu_msg *r)
{
	assert_true(tb_fe_readable(t));
	assert_int_equal(vu_msg_recv(t->fe, r), 0);
	assert_int_equal(r->hdr.request, req);
	assert_int_equal(r->hdr.flags, VHOST_USER_REPLY_FLAGS);
	assert_int_equal(r->nfds, 0);
}

static TB_UNUSED uint64_t tb_reply_u64(struct tb *t, uint32_t req)
{
	struct vu_msg r;

	tb_reply(t, req, &r);
	assert_int_equal(r.hdr.size, 8);
	return r.payload.u64;
}

static TB_UNUSED void tb_no_reply(struct tb *t)
{
	assert_false(tb_fe_readable(t));
	assert_true(vu_backend_connected(t->b));
}

/* The backend dropped the connection: the frontend sees EOF. */
static TB_UNUSED void tb_dropped(struct tb *t)
{
	char c;

	assert_false(vu_backend_connected(t->b));
	assert_true(tb_fe_readable(t));
	assert_int_equal(recv(t->fe, &c, 1, MSG_DONTWAIT), 0);
}

static TB_UNUSED uint64_t tb_get_u64(struct tb *t, uint32_t req)
{
	tb_req(t, req, 0, NULL, 0, NULL, 0);
	return tb_reply_u64(t, req);
}

static TB_UNUSED void tb_set_u64(struct tb *t, uint32_t req, uint64_t v)
{
	tb_req(t, req, 0, &v, 8, NULL, 0);
	tb_no_reply(t);
}

/* A set-type request with NEED_REPLY; returns the ack value. */
static TB_UNUSED uint64_t tb_ack(struct tb *t, uint32_t req, const void *payload, uint32_t size,
				 const int *fds, unsigned int nfds)
{
	uint64_t v;

	tb_req(t, req, VHOST_USER_NEED_REPLY_MASK, payload, size, fds, nfds);
	v = tb_reply_u64(t, req);
	assert_false(tb_fe_readable(t)); /* one reply, never two */
	assert_true(vu_backend_connected(t->b));
	return v;
}

static TB_UNUSED uint64_t tb_ack_u64(struct tb *t, uint32_t req, uint64_t v)
{
	return tb_ack(t, req, &v, 8, NULL, 0);
}

static TB_UNUSED uint64_t tb_ack_state(struct tb *t, uint32_t req, uint32_t index, uint32_t num)
{
	struct vhost_user_vring_state s = {.index = index, .num = num};

	return tb_ack(t, req, &s, sizeof(s), NULL, 0);
}

/* Negotiate features; protocol features include REPLY_ACK unless told otherwise. */
static TB_UNUSED void tb_negotiate(struct tb *t, uint64_t features, uint64_t pfeatures)
{
	if (pfeatures)
		tb_set_u64(t, VHOST_USER_SET_PROTOCOL_FEATURES, pfeatures);
	tb_set_u64(t, VHOST_USER_SET_FEATURES, features);
}

static TB_UNUSED uint64_t tb_pf_all(void)
{
	return VU_BACKEND_PROTOCOL_FEATURES;
}

static TB_UNUSED struct vhost_user_mem_region tb_region(uint64_t gpa, uint64_t size, uint64_t uva,
							uint64_t off)
{
	struct vhost_user_mem_region r = {
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = uva,
	    .mmap_offset = off,
	};
	return r;
}

/* SET_MEM_TABLE of n regions, one fd each; returns the ack (NEED_REPLY) or -1 without. */
static TB_UNUSED void tb_send_mem_table(struct tb *t, uint32_t flags,
					const struct vhost_user_mem_region *r, unsigned int n,
					const int *fds, unsigned int nfds)
{
	struct vhost_user_mem_table mt;

	memset(&mt, 0, sizeof(mt));
	mt.nregions = n;
	memcpy(mt.regions, r, n * sizeof(*r));
	tb_send(t, VHOST_USER_SET_MEM_TABLE, flags, &mt, 8 + n * 32, fds, nfds);
}

/* The standard table: all of the memfd at TB_GPA / TB_UVA. */
static TB_UNUSED void tb_mem_table(struct tb *t)
{
	struct vhost_user_mem_region r = tb_region(TB_GPA, TB_MEM_SIZE, TB_UVA, 0);

	tb_send_mem_table(t, 0, &r, 1, &t->memfd, 1);
	tb_dispatch(t);
	tb_no_reply(t);
}

static TB_UNUSED struct vhost_user_vring_addr tb_addr(unsigned int i)
{
	struct vhost_user_vring_addr a = {
	    .index = i,
	    .desc_user_addr = TB_UVA + i * TB_RING_STRIDE + TB_DESC_OFF,
	    .avail_user_addr = TB_UVA + i * TB_RING_STRIDE + TB_AVAIL_OFF,
	    .used_user_addr = TB_UVA + i * TB_RING_STRIDE + TB_USED_OFF,
	};
	return a;
}

/* NUM, BASE, ADDR for ring i (no kick yet). */
static TB_UNUSED void tb_ring_setup(struct tb *t, unsigned int i, uint16_t base)
{
	struct vhost_user_vring_state s = {.index = i, .num = TB_RING_NUM};
	struct vhost_user_vring_addr a = tb_addr(i);

	tb_req(t, VHOST_USER_SET_VRING_NUM, 0, &s, sizeof(s), NULL, 0);
	s.num = base;
	tb_req(t, VHOST_USER_SET_VRING_BASE, 0, &s, sizeof(s), NULL, 0);
	tb_req(t, VHOST_USER_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
	tb_no_reply(t);
}

/* SET_VRING_KICK/CALL with a new eventfd; the test keeps its copy (returned). */
static TB_UNUSED int tb_ring_fd(struct tb *t, uint32_t req, unsigned int i)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint64_t v = i;

	assert_true(fd >= 0);
	tb_req(t, req, 0, &v, 8, &fd, 1);
	return fd;
}

/* Read an eventfd's counter (0 when not signalled). */
static TB_UNUSED uint64_t tb_eventfd_read(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

static TB_UNUSED void tb_eventfd_signal(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
}

/* Mappings of this process whose /proc/self/maps line contains what. */
static TB_UNUSED int tb_count_maps(const char *what)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, what))
			n++;
	fclose(f);
	return n;
}

/* Index of the first log entry (ev, q) at or after from, or -1. */
static TB_UNUSED int tb_find(const struct tb_dev *d, enum tb_event ev, unsigned int q,
			     unsigned int from)
{
	for (unsigned int i = from; i < d->nlog; i++)
		if (d->log[i].ev == ev && d->log[i].q == q)
			return (int)i;
	return -1;
}

#endif
