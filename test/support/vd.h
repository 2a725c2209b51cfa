/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The real daemon under test, for the real-CAN tests (test/vm) and the
 * benchmarks: the daemon binary run with fork/exec (stderr to a log file),
 * a guest driver over a real unix socket and memfd memory (gdrv), and raw
 * AF_CAN sockets as independent peers on the bus. Meant for the VM rig
 * (vcan0 and vcan1 MTU 72, vcan2 MTU 16); the programs exit 77 without CAN.
 * Failures are cmocka assertions: call these from cmocka tests only.
 *
 * Every wait is bounded: the timeouts only guard against hangs.
 */
#ifndef VD_H
#define VD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/can.h>

#include "cframe.h"
#include "device.h"
#include "guest_driver.h"
#include "virtio_can.h"

#define VD_WAIT_MS 10000  /* guard against hangs, never a timing assertion */
#define VD_MARK_ID 0x7ffu /* the marker frame: "everything before it has passed" */
#define VD_ALL_CAN ~0ull  /* gdrv_opts.can_features: everything offered */
#define VD_NO_LATE_ACK (~0ull & ~(1ull << VIRTIO_CAN_F_LATE_TX_ACK))

/* ---- small things ------------------------------------------------------- */

/* CLOCK_MONOTONIC in ms. */
uint64_t vd_now_ms(void);

/* Sleep ms, through signals. */
void vd_sleep_ms(unsigned int ms);

/* Run a shell command (printf-style, 511 bytes at most): its exit code, or -1. */
int vd_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Skip (exit 77) where the kernel has no CAN or the rig's interfaces are missing. */
void vd_skip_without_vcan(void);

/* Read a whole (small) file into buf, NUL-terminated; bytes read. */
size_t vd_read_file(const char *path, char *buf, size_t cap);

/* ---- the daemon under test ---------------------------------------------- */

struct vd {
	pid_t pid;  /* 0 when not running */
	int status; /* exit code, or 128 + signal, once reaped */
	char dir[64];
	char sock[96];
	char log[96];
};

/* A fresh temporary directory for the socket and the log; nothing runs yet. */
void vd_init(struct vd *d);

/* Print the daemon's log (its first 64 KiB) to stdout. */
void vd_print_log(const struct vd *d);

/* A unix stream socket listening at path, as a service manager makes one. */
int vd_listen_at(const char *path);

#define VD_FD 3 /* where vd_spawn_with puts an inherited socket in the daemon */

/*
 * Run the daemon (or, with wrapper, wrapper then the daemon) with args
 * (NULL-terminated, without argv[0]); no waiting. pass_fd (if >= 0) becomes
 * fd VD_FD in it, notify (if set) its NOTIFY_SOCKET; nothing else of the
 * test (a frontend's memfds, peers) leaks into it.
 */
void vd_spawn_with(struct vd *d, const char *const *wrapper, int pass_fd, const char *notify,
		   const char *const *args);

/* Run the daemon with argv (NULL-terminated, without argv[0]); no waiting. */
void vd_spawn(struct vd *d, const char *const *args);

/* Reap the daemon if it exited within timeout_ms: true with d->status set. */
bool vd_wait_exit(struct vd *d, int timeout_ms);

/* Whether the daemon still runs (reaped, with d->status set, once it does not). */
bool vd_running(struct vd *d);

/*
 * Start the daemon on in/out with extra options (NULL-terminated) and wait
 * until its socket exists. Fails the test (log printed) if it exits first.
 */
void vd_start(struct vd *d, const char *in, const char *out, ...);

/* Run the daemon with args to completion (it must exit by itself): its status. */
int vd_run_to_exit(struct vd *d, const char *const *args);

/* SIGTERM; the daemon must exit with 0 and remove its socket. */
void vd_stop(struct vd *d);

/* Teardown: kill what still runs, remove the files. */
void vd_cleanup(struct vd *d);

/* The counters SIGUSR1 prints. */
#define VD_OUTCOME_FIELD(id, counter, name, label) unsigned long long counter;
struct vd_stats {
	/* By the names of struct device_stats, or by enum device_outcome. */
	union {
		unsigned long long outcome[DEVICE_OUTCOME_COUNT];
		struct {
			DEVICE_OUTCOMES(VD_OUTCOME_FIELD)
		};
	};
	unsigned long long busoff;
	unsigned long long rx_kernel; /* ~0 when the daemon does not print it */
};

/* How many times what occurs in s. */
unsigned int vd_count_str(const char *s, const char *what);

/* The last occurrence of what in s, or NULL. */
const char *vd_last_str(const char *s, const char *what);

/*
 * The outcome counters of the last block in buf whose lines start with
 * prefix ("" or "dev1: "), as the daemon prints them: "tx: ok N, rejected
 * N, ..." in the order of device.h's table.
 */
void vd_parse_outcomes(const char *buf, const char *prefix, struct vd_stats *s);

/* Parse the last block of counters in buf (a daemon log) into s. */
void vd_parse_stats(const char *buf, struct vd_stats *s);

/* SIGUSR1, wait for the new block of counters in the log, parse it. */
void vd_stats(struct vd *d, struct vd_stats *s);

/* Whether the daemon's log holds what. */
bool vd_log_has(const struct vd *d, const char *what);

/* How many times what occurs in the daemon's log (its first MiB). */
unsigned int vd_log_count(const struct vd *d, const char *what);

/* Wait until the daemon's log holds what at least n times (fails after VD_WAIT_MS). */
void vd_wait_log(const struct vd *d, const char *what, unsigned int n);

/* Every frame from the bus the daemon counted as dropped, for whatever reason. */
unsigned long long vd_rx_drops(const struct vd_stats *s);

/* Frames the network stack dropped before any socket (softnet backlog full). */
unsigned long long vd_softnet_drops(void);

/* Field of /proc/PID/status in kB (VmRSS ...). */
long vd_status_kb(const struct vd *d, const char *field);

/* utime + stime of the daemon in clock ticks. */
unsigned long long vd_cpu_ticks(const struct vd *d);

/* The daemon's open fds. */
int vd_count_fds(const struct vd *d);

/* ---- the guest ---------------------------------------------------------- */

/* Open a guest driver on the daemon with can_features, not started. */
struct gdrv *vd_guest_open_only(const struct vd *d, uint64_t can_features);

/* The same, then START. */
struct gdrv *vd_guest_open(const struct vd *d, uint64_t can_features);

/* A started guest (LATE_TX_ACK not offered) on the device at path of daemon d. */
struct gdrv *vd_guest_at(const struct vd *d, const char *path);

/* ---- frames ------------------------------------------------------------- */

/* The marker frame (VD_MARK_ID, "MARK"): everything sent before it has passed. */
struct cframe vd_marker(void);

/* Whether f is the marker frame. */
bool vd_is_marker(const struct cframe *f);

/* The set of the issue: classic standard and extended, RTR, FD 12 and 64. */
#define VD_N_SET 5
void vd_frame_set(struct cframe set[VD_N_SET]);

/* What the guest received against what was sent (virtio has no BRS/ESI). */
void vd_assert_guest_frame(const struct cframe *got, const struct cframe *want);

/* One frame into the guest (the test fails if none comes). */
void vd_guest_rx(struct gdrv *c, struct cframe *f);

/* ---- peers on the bus (raw sockets) ------------------------------------- */

/* A raw CAN socket bound to ifname, FD frames on, error frames off. */
int vd_peer_open(const char *ifname);

/* Close *s if open; *s becomes -1. */
void vd_peer_close(int *s);

/* Write f on the bus as a raw frame (FD with BRS when asked). */
void vd_peer_send(int s, const struct cframe *f);

/* The marker frame on the bus. */
void vd_peer_send_marker(int s);

/* An error frame as a controller would report it (vcan passes it on). */
void vd_peer_send_error(int s, uint32_t err_class);

/* One frame from a peer socket: its size, or 0 when none came in time. */
size_t vd_peer_recv(int s, struct canfd_frame *cf, int timeout_ms);

/*
 * The next frame on the bus is f, as the guest sent it: FD frames carry BRS
 * (the daemon's documented policy) and never ESI.
 */
void vd_assert_bus_frame(int s, const struct cframe *f);

/* Nothing (more) on a peer socket right now. */
void vd_assert_bus_quiet(int s);

/* The guest sends the marker (OK); the peer sees it next. Everything sent
 * before it has then passed the daemon. */
void vd_guest_marker_through(struct gdrv *c, int peer);

/* A peer sends the marker; the guest's next frame is that marker. */
void vd_bus_marker_through(struct gdrv *c, int peer);

/* ip link set ifname up or down (the test fails if it cannot). */
void vd_link_set(const char *ifname, bool up);

/* ---- the usual fixture --------------------------------------------------- */

/* A daemon, a guest driver on it, a raw peer on the bus, a helper process. */
struct vd_fixture {
	struct vd d;
	struct gdrv *c; /* closed at teardown */
	int peer;	/* closed at teardown */
	pid_t child;	/* killed and reaped at teardown when > 0 */
	bool passed;	/* the daemon's log is printed at teardown unless set */
};

/* cmocka setup: *state becomes a fresh fixture (vd_init'ed, nothing open). */
int vd_fixture_setup(void **state);

/* cmocka teardown: close, kill and remove what the fixture holds; free it. */
int vd_fixture_teardown(void **state);

/*
 * Start the daemon on in/out (extra options none), open a peer on in and a
 * guest with can_features: the daemon serves.
 */
void vd_fixture_serve(struct vd_fixture *t, const char *in, const char *out, uint64_t can_features);

#endif
