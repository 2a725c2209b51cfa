/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The deployment the README prescribes for VMs that do not trust each
 * other: one daemon process per VM, each in its own memory cgroup (one
 * systemd unit per VM). A guest can make its backend write to guest pages
 * nobody touched yet, and the kernel charges such a page to its first
 * writer: the backend. This test plays that guest against daemon A (TX
 * requests whose result byte lies on a fresh page each time) until A's
 * cgroup hits its limit, and checks that daemon B, another VM's backend in
 * its own cgroup, neither dies nor stops passing frames. Real daemons, real
 * unix sockets, real vcan, real cgroup v2 memory limits (VM rig).
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#include <linux/magic.h>

#include <cmocka.h>

#include "vd.h"

#define CG_ROOT "/sys/fs/cgroup"
#define CG_LIMIT "64M"
#define GIB (1ull << 30)
#define MIB (1ull << 20)
/* The hostile guest's RAM: sparse, never touched by the guest itself. */
#define HOSTILE_RAM (512 * MIB)
/* Result bytes go from here on, past whatever the client's rings took. */
#define FRESH_FROM (64 * MIB)
#define PAGE 4096u

/* cgroup v2 with the memory controller at CG_ROOT, mounted if need be. */
static bool cgroup_memory_ready(void)
{
	struct statfs sf;
	char buf[512];

	if (statfs(CG_ROOT, &sf) != 0)
		return false;
	if ((unsigned long)sf.f_type != CGROUP2_SUPER_MAGIC &&
	    mount("cgroup2", CG_ROOT, "cgroup2", 0, NULL) != 0)
		return false;
	vd_read_file(CG_ROOT "/cgroup.controllers", buf, sizeof(buf));
	if (!strstr(buf, "memory"))
		return false;
	return vd_sh("echo +memory > %s/cgroup.subtree_control", CG_ROOT) == 0;
}

static void cg_make(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), CG_ROOT "/%s", name);
	if (mkdir(path, 0755) != 0)
		assert_int_equal(errno, EEXIST);
	assert_int_equal(vd_sh("echo %s > %s/memory.max", CG_LIMIT, path), 0);
	assert_int_equal(vd_sh("echo 0 > %s/memory.swap.max 2>/dev/null || true", path), 0);
}

/* A counter of CG_ROOT/name/memory.events ("oom_kill", ...). */
static unsigned long long cg_event(const char *name, const char *key)
{
	char path[128], buf[1024];
	const char *p;

	snprintf(path, sizeof(path), CG_ROOT "/%s/memory.events", name);
	vd_read_file(path, buf, sizeof(buf));
	p = strstr(buf, key);
	assert_non_null(p);
	return strtoull(p + strlen(key), NULL, 10);
}

static void cg_remove(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), CG_ROOT "/%s", name);
	(void)rmdir(path);
}

/* The daemon on ifname, its process moved into cgroup cg before exec. */
static void vd_start_in(struct vd *d, const char *cg, const char *ifname)
{
	char script[160];
	const char *wrap[] = {"/bin/sh", "-c", script, NULL};
	const char *args[] = {"--socket-path", d->sock, "-i", ifname, "-o", ifname, "-v", NULL};
	uint64_t end = vd_now_ms() + VD_WAIT_MS;
	struct stat st;

	snprintf(script, sizeof(script), "echo $$ > " CG_ROOT "/%s/cgroup.procs && exec \"$0\" \"$@\"",
		 cg);
	vd_spawn_with(d, wrap, -1, NULL, args);
	while (stat(d->sock, &st) != 0) {
		if (vd_wait_exit(d, 0)) {
			vd_print_log(d);
			fail_msg("daemon in %s exited (%d) before listening", cg, d->status);
		}
		assert_true(vd_now_ms() < end);
		vd_sleep_ms(5);
	}
}

/*
 * The hostile guest: 4 MiB for rings and its one TX header, and
 * HOSTILE_RAM it never touches. Every TX request's result byte is on a
 * page of that RAM nobody wrote yet. Runs until the backend is gone or
 * every page was used: the number of requests the backend completed.
 */
static unsigned long hostile_guest(const char *sock)
{
	struct fe_mem_spec spec = {
	    .nregions = 2,
	    .regions = {{.gpa = 0, .size = 4 * MIB}, {.gpa = GIB, .size = HOSTILE_RAM}},
	};
	struct fe_start_opts o;
	struct virtio_can_hdr *h;
	unsigned long done = 0;
	uint64_t hdr_gpa, next = GIB + FRESH_FROM;
	struct fe *f;

	assert_int_equal(fe_new(&f, &spec), 0);
	h = fe_alloc_in(f, 0, sizeof(*h), 8, &hdr_gpa);
	assert_non_null(h);
	*h = (struct virtio_can_hdr){.msg_type = htole16(VIRTIO_CAN_TX), .can_id = htole32(0x123)};
	fe_start_opts_default(&o);
	o.features |= 1ull << VIRTIO_CAN_F_CAN_CLASSIC;
	assert_int_equal(fe_connect(f, sock, VD_WAIT_MS), 0);
	assert_int_equal(fe_start(f, &o), 0);
	/* No START: a stopped controller still writes NOT_OK into each result. */
	while (next + PAGE <= GIB + HOSTILE_RAM) {
		const struct fe_sg out = {.gpa = hdr_gpa, .len = sizeof(*h)};
		uint32_t id, len;
		int r;

		while (fe_ring_num_free(f, VIRTIO_CAN_QUEUE_TX) >= 2 && next + PAGE <= GIB + HOSTILE_RAM) {
			const struct fe_sg in = {.gpa = next, .len = 1};

			assert_int_equal(fe_ring_add(f, VIRTIO_CAN_QUEUE_TX, &out, 1, &in, 1, NULL, NULL), 0);
			next += PAGE;
		}
		if (fe_ring_kick(f, VIRTIO_CAN_QUEUE_TX, true) < 0)
			break;
		while ((r = fe_ring_wait_used(f, VIRTIO_CAN_QUEUE_TX, 2000, &id, &len)) == 1) {
			done++;
			if (fe_ring_inflight(f, VIRTIO_CAN_QUEUE_TX) == 0)
				break;
		}
		if (r != 1)
			break; /* the backend is gone (or stuck: the caller checks which) */
	}
	fe_free(f);
	return done;
}

static void test_one_guest_cannot_oom_another_vms_backend(void **state)
{
	struct vd a, b;
	struct gdrv *gb;
	unsigned long done;
	int peer;

	(void)state;
	vd_skip_without_vcan();
	if (!cgroup_memory_ready()) {
		printf("SKIPPED: no cgroup v2 memory controller at %s\n", CG_ROOT);
		exit(77);
	}
	cg_make("vdc-vm-a");
	cg_make("vdc-vm-b");
	vd_init(&a);
	vd_init(&b);
	vd_start_in(&a, "vdc-vm-a", "vcan1");
	vd_start_in(&b, "vdc-vm-b", "vcan0");

	/* VM B's guest works before ... */
	gb = vd_guest_open(&b, VD_NO_LATE_ACK);
	peer = vd_peer_open("vcan0");
	vd_guest_marker_through(gb, peer);
	vd_bus_marker_through(gb, peer);

	/* ... VM A's guest makes its own backend write 448 MiB of fresh pages ... */
	done = hostile_guest(a.sock);
	printf("hostile guest: %lu requests completed before its backend went\n", done);
	/* The attack was real: A's cgroup hit its limit and its daemon died of it. */
	assert_true(vd_wait_exit(&a, VD_WAIT_MS));
	assert_true(cg_event("vdc-vm-a", "oom_kill ") >= 1);
	assert_int_equal(a.status, 128 + SIGKILL);
	assert_true(done > 0);

	/* ... and VM B's backend neither died nor stopped serving. */
	assert_true(vd_running(&b));
	assert_int_equal(cg_event("vdc-vm-b", "oom_kill "), 0);
	vd_guest_marker_through(gb, peer);
	vd_bus_marker_through(gb, peer);

	gdrv_close(gb);
	vd_peer_close(&peer);
	vd_stop(&b);
	vd_cleanup(&a);
	vd_cleanup(&b);
	cg_remove("vdc-vm-a");
	cg_remove("vdc-vm-b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_guest_cannot_oom_another_vms_backend),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
