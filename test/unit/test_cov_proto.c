/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * proto/ paths the other unit tests leave out (found with scripts/coverage.sh):
 * a device whose config callbacks fail, the default ring size limit, a peer
 * that stalls mid-message, saturated and unwritable call fds, bad arguments.
 */
#include "test_backend.h"

#include <sys/time.h>

#include "tfd.h"
#include "vhost-user/gmem.h"
#include "vhost-user/vlog.h"
#include "vhost-user/vq.h"

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

/* No path: refused before anything is created. */
static void test_listen_empty_path(void **state)
{
	struct vu_device vd = {.name = "nopath", .num_queues = 1, .ops = &tb_ops};
	char dir[] = "/tmp/vdc-cov-XXXXXX", path[64];
	struct vu_backend *b;
	int fds = tfd_count();

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	assert_int_equal(vu_backend_new(&b, &vd), 0);
	assert_int_equal(vu_backend_listen(b, ""), -EINVAL);
	assert_int_equal(vu_backend_listen(b, NULL), -EINVAL);
	/* Nothing half-done: a real path still works afterwards. */
	assert_int_equal(vu_backend_listen(b, path), 0);
	vu_backend_free(b);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(tfd_count(), fds);
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

static void set_rcvtimeo_ms(int fd, long ms)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = ms * 1000};

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

/* A peer that stops mid-header: -ETIMEDOUT once the receive timeout expires. */
static void test_recv_stall_in_header(void **state)
{
	struct vhost_user_hdr h = {.request = VHOST_USER_GET_FEATURES, .flags = VHOST_USER_VERSION};
	struct vu_msg m;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	set_rcvtimeo_ms(sv[1], 50);
	assert_int_equal(send(sv[0], &h, 5, 0), 5);
	assert_int_equal(vu_msg_recv(sv[1], &m), -ETIMEDOUT);
	assert_int_equal(m.nfds, 0);
	close(sv[0]);
	close(sv[1]);
}

/* Stalled mid-payload with an fd attached: -ETIMEDOUT and the fd is closed. */
static void test_recv_stall_in_payload(void **state)
{
	struct vu_msg out, in;
	int fds = tfd_count();
	int sv[2], efd;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	set_rcvtimeo_ms(sv[1], 50);
	efd = eventfd(0, EFD_CLOEXEC);
	assert_true(efd >= 0);
	memset(&out, 0, sizeof(out));
	out.hdr.request = VHOST_USER_SET_VRING_KICK;
	out.hdr.flags = VHOST_USER_VERSION;
	out.hdr.size = 8;
	out.fds[0] = efd;
	out.nfds = 1;
	/* Send the header with the fd and 3 of the 8 payload bytes, by hand. */
	{
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {.iov_base = &out, .iov_len = VHOST_USER_HDR_SIZE + 3};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf)};
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &efd, sizeof(int));
		assert_int_equal(sendmsg(sv[0], &mh, 0), (ssize_t)(VHOST_USER_HDR_SIZE + 3));
	}
	close(efd);
	assert_int_equal(vu_msg_recv(sv[1], &in), -ETIMEDOUT);
	assert_int_equal(in.nfds, 0);
	close(sv[0]);
	close(sv[1]);
	/* The received copy of the eventfd did not leak. */
	assert_int_equal(tfd_count(), fds);
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

static void test_gmem_add_host_null(void **state)
{
	struct vhost_user_mem_region r = tb_region(0x1000, 0x1000, 0x7f0000001000ull, 0);
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

static void test_vlog_level_round_trip(void **state)
{
	enum vlog_level saved = vlog_get_level();

	(void)state;
	vlog_set_level(VLOG_DEBUG);
	assert_int_equal(vlog_get_level(), VLOG_DEBUG);
	vlog_set_level(VLOG_ERR);
	assert_int_equal(vlog_get_level(), VLOG_ERR);
	vlog_set_level(saved);
	assert_int_equal(vlog_get_level(), saved);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_config_device_error),
	    cmocka_unit_test(test_set_config_device_refuses),
	    cmocka_unit_test(test_new_config_size_limit),
	    cmocka_unit_test(test_listen_empty_path),
	    cmocka_unit_test(test_vring_num_default_limit),
	    cmocka_unit_test(test_recv_stall_in_header),
	    cmocka_unit_test(test_recv_stall_in_payload),
	    cmocka_unit_test(test_notify_saturated_call_fd),
	    cmocka_unit_test(test_notify_unwritable_call_fd),
	    cmocka_unit_test(test_gmem_add_host_null),
	    cmocka_unit_test(test_vlog_level_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
