/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * SIGBUS and the real daemon (VM rig, real vcan): the two kinds must not be
 * confused.
 *
 * - Guest memory that vanishes (the frontend truncates its memfd) faults
 *   the daemon's next access to it: caught, only that frontend is dropped,
 *   the next one is served both ways.
 * - A SIGBUS sent with kill (or sigqueue) is not a fault: it ends the
 *   daemon at once, as SIGBUS's default action does and the README says,
 *   also after guest memory was mapped (which installs the handler) and
 *   after a fault was caught. The daemon used to swallow the first one.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdio.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "vd.h"

#include "fe.h"

#define DIE_BOUND_MS 2000 /* "promptly", TCG included */

/* A guest, started, whose frames reach the bus: guest memory is mapped. */
static void guest_serving(struct vd_fixture *t, uint32_t id)
{
	struct cframe f = cf_make(id, 0, 2, 0x11);

	t->c = vd_guest_open(&t->d, VD_NO_LATE_ACK);
	assert_int_equal(gdrv_tx_sync(t->c, &f, VD_WAIT_MS), VIRTIO_CAN_RESULT_OK);
	vd_assert_bus_frame(t->peer, &f);
}

/* SIGBUS sent with kill or sigqueue: the daemon must die of it within the bound. */
static void assert_sent_sigbus_kills(struct vd_fixture *t, bool queued)
{
	uint64_t t0 = vd_now_ms(), ms;

	if (queued)
		assert_int_equal(sigqueue(t->d.pid, SIGBUS, (union sigval){.sival_int = 7}), 0);
	else
		assert_int_equal(kill(t->d.pid, SIGBUS), 0);
	if (!vd_wait_exit(&t->d, DIE_BOUND_MS)) {
		vd_print_log(&t->d);
		fail_msg("the daemon still runs %d ms after a SIGBUS sent with %s", DIE_BOUND_MS,
			 queued ? "sigqueue" : "kill");
	}
	ms = vd_now_ms() - t0;
	printf("%s SIGBUS: daemon ended after %llu ms, status %d\n", queued ? "sigqueue" : "kill",
	       (unsigned long long)ms, t->d.status);
	/* Killed by the signal (128 + SIGBUS), not an exit of its own. */
	assert_int_equal(t->d.status, 128 + SIGBUS);
}

/* kill -BUS with a guest mapped: the daemon ends, it does not serve on. */
static void test_kill_bus_ends_daemon(void **state)
{
	struct vd_fixture *t = *state;

	vd_start(&t->d, "vcan0", "vcan0", NULL);
	t->peer = vd_peer_open("vcan0");
	guest_serving(t, 0x101);
	assert_sent_sigbus_kills(t, false);
	t->passed = true;
}

/*
 * Guest memory truncated under the daemon: that frontend is dropped and the
 * daemon serves the next one; then a sigqueue'd SIGBUS still ends it.
 */
static void test_guest_fault_caught_sent_one_not(void **state)
{
	struct vd_fixture *t = *state;
	struct cframe in = cf_make(0x202, 0, 1, 0x22), got;
	struct fe *f;
	uint64_t one = 1;
	pid_t pid;

	vd_start(&t->d, "vcan0", "vcan0", NULL);
	pid = t->d.pid;
	t->peer = vd_peer_open("vcan0");
	guest_serving(t, 0x201);

	/* Only the socket and the kick fd are touched after this: our mapping is gone too. */
	f = gdrv_fe(t->c);
	for (unsigned int i = 0; i < fe_nregions(f); i++)
		assert_int_equal(ftruncate(fe_region_fd(f, i), 0), 0);
	assert_int_equal(write(fe_ring_kick_fd(f, VIRTIO_CAN_QUEUE_TX), &one, sizeof(one)),
			 (ssize_t)sizeof(one));
	assert_int_equal(fe_wait_closed(f, VD_WAIT_MS), 0);
	gdrv_close(t->c);
	t->c = NULL;
	assert_true(vd_running(&t->d));
	assert_int_equal(t->d.pid, pid);
	assert_true(vd_log_has(&t->d, "guest memory vanished under a mapping"));

	/* The next frontend, both ways. */
	guest_serving(t, 0x203);
	vd_peer_send(t->peer, &in);
	vd_guest_rx(t->c, &got);
	vd_assert_guest_frame(&got, &in);

	assert_sent_sigbus_kills(t, true);
	t->passed = true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_kill_bus_ends_daemon, vd_fixture_setup,
					    vd_fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_guest_fault_caught_sent_one_not, vd_fixture_setup,
					    vd_fixture_teardown),
	};

	vd_skip_without_vcan();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
