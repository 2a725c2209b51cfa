/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Limits on mapped guest memory, with the real daemon and several devices
 * in one process: a frontend asking for a huge sparse memory table is
 * refused with a log line naming the limit, and the other devices go on
 * mapping ordinary tables and passing frames; the per-device limit (also
 * set per --device) and the per-process limit each hold, through
 * SET_MEM_TABLE and ADD_MEM_REG alike; bytes come back with REM_MEM_REG and
 * when a frontend leaves.
 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vd.h"

#define MiB (1ull << 20)
#define TiB (1ull << 40)

/* The daemon with one --device per spec (each "NAME:IFACE[:extra]"); sockets in d->dir. */
static void start_devices(struct vd *d, char sock[][128], unsigned int n, const char *const *specs,
			  const char *const *extra)
{
	static char spec[4][256];
	const char *args[24];
	unsigned int na = 0;

	vd_init(d);
	for (unsigned int k = 0; k < n; k++) {
		char name[16], ifname[16];
		const char *more = "";

		assert_int_equal(sscanf(specs[k], "%15[^:]:%15[^:]", name, ifname), 2);
		if (strchr(strchr(specs[k], ':') + 1, ':'))
			more = strchr(strchr(specs[k], ':') + 1, ':') + 1;
		snprintf(sock[k], 128, "%s/%s.sock", d->dir, name);
		snprintf(spec[k], sizeof(spec[k]),
			 "socket-path=%s,can-in=%s,can-out=%s,name=%s%s%s", sock[k], ifname, ifname,
			 name, *more ? "," : "", more);
		args[na++] = "--device";
		args[na++] = spec[k];
	}
	for (unsigned int i = 0; extra && extra[i]; i++)
		args[na++] = extra[i];
	args[na] = NULL;
	vd_spawn(d, args);
	for (unsigned int k = 0; k < n; k++) {
		uint64_t end = vd_now_ms() + VD_WAIT_MS;
		struct stat st;

		while (stat(sock[k], &st) != 0) {
			if (!vd_running(d) || vd_now_ms() > end) {
				vd_print_log(d);
				fail_msg("device %u never listened", k);
			}
			vd_sleep_ms(5);
		}
	}
}

/*
 * A frontend with guest memory as spec (NULL: fe's default), negotiated up
 * to the memory table: REPLY_ACK (every refusal answered) and
 * CONFIGURE_MEM_SLOTS (ADD/REM_MEM_REG).
 */
static struct fe *fe_on(const char *path, const struct fe_mem_spec *spec)
{
	const uint64_t want = (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
			      (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
	struct fe *f = NULL;
	uint64_t v;

	assert_int_equal(fe_new(&f, spec), 0);
	fe_set_timeout(f, VD_WAIT_MS);
	assert_int_equal(fe_connect(f, path, VD_WAIT_MS), 0);
	assert_int_equal(fe_get_features(f, &v), 0);
	assert_int_equal(fe_get_protocol_features(f, &v), 0);
	assert_int_equal(v & want, want);
	assert_int_equal(fe_set_protocol_features(f, want), 0);
	assert_int_equal(fe_set_owner(f), 0);
	fe_set_acks(f, true);
	return f;
}

/* Guest memory of regions of the given sizes, 1 GiB apart. */
static struct fe_mem_spec mem_of(unsigned int n, const uint64_t *sizes)
{
	struct fe_mem_spec s;

	memset(&s, 0, sizeof(s));
	s.nregions = n;
	for (unsigned int i = 0; i < n; i++) {
		s.regions[i].gpa = (uint64_t)i << 30;
		s.regions[i].size = sizes[i];
	}
	return s;
}

/*
 * A set-type request r gave (with REPLY_ACK): refused with a non-zero ack,
 * the connection goes on, as for any failed memory message.
 */
static void assert_refused(const struct vd *d, struct fe *f, int r)
{
	uint64_t v;

	if (r != -EREMOTEIO) {
		vd_print_log(d);
		fail_msg("the request was not refused: %d (%s)", r, r ? strerror(-r) : "accepted");
	}
	assert_int_equal(fe_get_features(f, &v), 0);
}

/* One frame each way between a started guest and a peer on its bus. */
static void frames_pass(struct gdrv *c, int peer, uint32_t id)
{
	struct cframe out = cf_make(id, 0, 8, 0x11), in = cf_make(id + 1, 0, 5, 0x22), got;

	assert_int_equal(gdrv_tx_sync(c, &out, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(peer, &out);
	vd_peer_send(peer, &in);
	vd_guest_rx(c, &got);
	vd_assert_guest_frame(&got, &in);
}

/* ADD_MEM_REG (or, without fd, REM_MEM_REG) of size bytes of fd at slot's addresses. */
static int mem_reg(struct fe *f, uint32_t request, unsigned int slot, uint64_t size, int fd)
{
	struct vhost_user_mem_reg m = {0};

	m.region.guest_phys_addr = (uint64_t)slot << 47;
	m.region.userspace_addr = (uint64_t)(slot + 1) << 47;
	m.region.memory_size = size;
	return fe_set(f, request, &m, sizeof(m), fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
}

/*
 * Frontend A takes all the address space it can get: regions of a sparse
 * memfd (nothing behind them) added with ADD_MEM_REG, each the largest the
 * backend accepts, found by bisection (a refusal with REPLY_ACK keeps the
 * connection; an accepted probe is removed again), until a slot gets
 * nothing or all 32 are used. Each region then fills the largest hole left
 * in the daemon's address space. The bytes it was given.
 */
static uint64_t grab_address_space(const struct vd *d, struct fe *f, int fd)
{
	const uint64_t page = 4096;
	uint64_t held = 0;

	for (unsigned int slot = 0; slot < 32; slot++) {
		uint64_t lo = 0, hi = (128 * TiB) / page + 1; /* pages: lo fits, hi does not */

		while (hi - lo > 1) {
			uint64_t mid = lo + (hi - lo) / 2;
			int r = mem_reg(f, VHOST_USER_ADD_MEM_REG, slot, mid * page, fd);

			if (r == 0) {
				assert_int_equal(
				    mem_reg(f, VHOST_USER_REM_MEM_REG, slot, mid * page, -1), 0);
				lo = mid;
			} else if (r == -EREMOTEIO) {
				hi = mid;
			} else {
				vd_print_log(d);
				fail_msg("ADD_MEM_REG: %s", strerror(-r));
			}
		}
		if (lo == 0)
			break;
		assert_int_equal(mem_reg(f, VHOST_USER_ADD_MEM_REG, slot, lo * page, fd), 0);
		held += lo * page;
	}
	return held;
}

/*
 * The attack with the default limits. Frontend A first sends a
 * table of 7 sparse memfds of 18 TiB each (126 TiB), then takes what it
 * can region by region; before the limits it was given nearly the whole
 * address space and the next device's ordinary table failed with ENOMEM.
 * Now the table is refused, the log saying which device, what was asked,
 * the limit and the option, and A gets its 1 TiB and no more; device B
 * then maps its 8 MiB and frames pass both ways; A's next, ordinary,
 * frontend works too.
 */
static void test_huge_sparse_table_refused(void **state)
{
	static const char *const specs[] = {"devA:vcan0", "devB:vcan1"};
	struct vhost_user_mem_table t;
	char sock[2][128];
	int fds[7], peer_a, peer_b, r, big;
	struct gdrv *b, *a;
	uint64_t held;
	struct fe *f;
	struct vd d;

	(void)state;
	vd_skip_without_vcan();
	start_devices(&d, sock, 2, specs, NULL);
	peer_a = vd_peer_open("vcan0");
	peer_b = vd_peer_open("vcan1");

	f = fe_on(sock[0], NULL);
	memset(&t, 0, sizeof(t));
	t.nregions = 7;
	for (unsigned int i = 0; i < 7; i++) {
		fds[i] = memfd_create("huge", MFD_CLOEXEC);
		assert_true(fds[i] >= 0);
		assert_int_equal(ftruncate(fds[i], (off_t)(18 * TiB)), 0);
		t.regions[i].guest_phys_addr = (uint64_t)i * 32 * TiB;
		t.regions[i].memory_size = 18 * TiB;
		t.regions[i].userspace_addr = (uint64_t)(i + 1) * 32 * TiB;
		t.regions[i].mmap_offset = 0;
	}
	r = fe_set(f, VHOST_USER_SET_MEM_TABLE, &t,
		   (uint32_t)(8 + 7 * sizeof(struct vhost_user_mem_region)), fds, 7);
	assert_refused(&d, f, r);
	vd_wait_log(
	    &d,
	    "devA: SET_MEM_TABLE: refused: a table of 7 regions asks 126 TiB of guest "
	    "memory; the per-device limit on mapped guest memory is 1 TiB, 0 B of it in use "
	    "(raise it with --guest-mem-limit, or guest-mem-limit= in its --device)",
	    1);
	for (unsigned int i = 0; i < 7; i++)
		close(fds[i]);

	big = memfd_create("huge", MFD_CLOEXEC);
	assert_true(big >= 0);
	assert_int_equal(ftruncate(big, (off_t)(128 * TiB)), 0);
	held = grab_address_space(&d, f, big);
	close(big);
	printf("frontend A was given %llu MiB of address space\n",
	       (unsigned long long)(held / MiB));
	assert_int_equal(held, 1 * TiB);
	vd_wait_log(
	    &d,
	    "devA: ADD_MEM_REG: refused: a region asks 64 TiB of guest memory; the per-device "
	    "limit on mapped guest memory is 1 TiB, 0 B of it in use",
	    1);

	/* While A holds its share, the other device's ordinary table (8 MiB) maps. */
	b = vd_guest_at(&d, sock[1]);
	frames_pass(b, peer_b, 0x120);
	/* A's frontend leaves; its device serves the next one. */
	fe_free(f);
	a = vd_guest_at(&d, sock[0]);
	frames_pass(a, peer_a, 0x130);
	frames_pass(b, peer_b, 0x140);
	assert_true(vd_running(&d));

	gdrv_close(a);
	gdrv_close(b);
	vd_peer_close(&peer_a);
	vd_peer_close(&peer_b);
	vd_stop(&d);
	vd_cleanup(&d);
}

/*
 * --guest-mem-limit=16M --guest-mem-total=24M, devices A and B, and C with
 * guest-mem-limit=4M of its own. Each limit refuses what passes it (and
 * only what passes it), by SET_MEM_TABLE and ADD_MEM_REG; REM_MEM_REG and
 * a frontend leaving give bytes back.
 */
static void test_limits_hold_and_bytes_return(void **state)
{
	static const char *const specs[] = {"devA:vcan0", "devB:vcan1",
					    "devC:vcan2:guest-mem-limit=4M"};
	static const char *const extra[] = {"--guest-mem-limit=16M", "--guest-mem-total=24M", NULL};
	const uint64_t s8[] = {8 * MiB}, s20[] = {20 * MiB}, s16[] = {16 * MiB}, s4[] = {4 * MiB},
		       sb[] = {8 * MiB, 8 * MiB, 4 * MiB};
	struct fe_mem_spec m8 = mem_of(1, s8), m20 = mem_of(1, s20), m16 = mem_of(1, s16),
			   m4 = mem_of(1, s4), mb = mem_of(3, sb);
	char sock[3][128];
	struct fe *a, *b, *c;
	struct gdrv *g;
	int peer;
	struct vd d;

	(void)state;
	vd_skip_without_vcan();
	start_devices(&d, sock, 3, specs, extra);

	/* The per-device limit given in C's --device: 8 MiB > 4 MiB. */
	c = fe_on(sock[2], &m8);
	assert_refused(&d, c, fe_set_mem_table(c));
	fe_free(c);
	vd_wait_log(&d,
		    "devC: SET_MEM_TABLE: refused: a table of 1 region asks 8 MiB of guest memory; "
		    "the per-device limit on mapped guest memory is 4 MiB, 0 B of it in use",
		    1);

	/* --guest-mem-limit: 20 MiB > 16 MiB though the total has room; 16 MiB is fine. */
	a = fe_on(sock[0], &m20);
	assert_refused(&d, a, fe_set_mem_table(a));
	fe_free(a);
	vd_wait_log(
	    &d,
	    "devA: SET_MEM_TABLE: refused: a table of 1 region asks 20 MiB of guest memory; "
	    "the per-device limit on mapped guest memory is 16 MiB",
	    1);
	a = fe_on(sock[0], &m16);
	assert_int_equal(fe_set_mem_table(a), 0);

	/* --guest-mem-total: B's second 8 MiB fits its own 16 MiB, not 16 + 16 > 24. */
	b = fe_on(sock[1], &mb);
	assert_int_equal(fe_add_mem_reg(b, 0), 0);
	assert_refused(&d, b, fe_add_mem_reg(b, 1));
	vd_wait_log(
	    &d,
	    "devB: ADD_MEM_REG: refused: a region asks 8 MiB of guest memory; the "
	    "per-process limit on mapped guest memory is 24 MiB, 24 MiB of it in use (raise "
	    "it with --guest-mem-total)",
	    1);
	/* Nor C's 4 MiB, within its own limit. */
	c = fe_on(sock[2], &m4);
	assert_refused(&d, c, fe_set_mem_table(c));
	vd_wait_log(&d, "devC: SET_MEM_TABLE: refused: a table of 1 region asks 4 MiB", 1);

	/* A leaves: its 16 MiB come back, so B grows to 16 and C maps its 4. */
	fe_free(a);
	vd_wait_log(&d, "devA: frontend disconnected", 2);
	assert_int_equal(fe_add_mem_reg(b, 1), 0);
	assert_int_equal(fe_set_mem_table(c), 0);

	/* REM_MEM_REG gives back: removed and added again stays at 16 MiB. */
	assert_int_equal(fe_rem_mem_reg(b, 1), 0);
	assert_int_equal(fe_add_mem_reg(b, 1), 0);
	/* ADD_MEM_REG counts against the device too: 16 + 4 > 16 (the total has room). */
	assert_refused(&d, b, fe_add_mem_reg(b, 2));
	vd_wait_log(
	    &d,
	    "devB: ADD_MEM_REG: refused: a region asks 4 MiB of guest memory; the per-device "
	    "limit on mapped guest memory is 16 MiB, 16 MiB of it in use",
	    1);

	/* B leaves too: A's new guest (8 MiB; 4 + 8 <= 24) maps and passes frames. */
	fe_free(b);
	vd_wait_log(&d, "devB: frontend disconnected", 1);
	peer = vd_peer_open("vcan0");
	g = vd_guest_at(&d, sock[0]);
	frames_pass(g, peer, 0x220);
	gdrv_close(g);
	fe_free(c);
	vd_peer_close(&peer);
	vd_stop(&d);
	vd_cleanup(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_huge_sparse_table_refused),
	    cmocka_unit_test(test_limits_hold_and_bytes_return),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
