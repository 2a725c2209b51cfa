/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A fake CAN port and the daemon's own event loop around it, for host
 * integration tests and benchmarks.
 *
 * The fake port implements the device's device_port_ops: send() records the
 * frames (or fails those it was told to fail). Its receive side is a pipe:
 * the test writes struct can_port_event records into it, and the loop reads
 * them through loop_port.recv exactly as it reads the real port's socket, so
 * frames from the bus, TX echoes, bus-off and restarts take the daemon's
 * real path. The port's accessors are thread-safe (the loop calls send()
 * in its thread while the test reads what was sent in its own).
 *
 * The runner (fakeport_loop_*) is the daemon minus SocketCAN: loop_init()
 * listening on a socket in a fresh temporary directory, and loop_run() in a
 * thread, with an eventfd as its control fd. The device and the backend
 * are single-threaded: the test reaches them only through fakeport_loop_exec,
 * which runs a function in the loop thread.
 */
#ifndef FAKEPORT_H
#define FAKEPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "can_port.h"
#include "cframe.h"
#include "loop.h"
#include "device.h"

struct fakeport;

int fakeport_new(struct fakeport **out);
/* Close the pipe, free the records. NULL is a no-op. */
void fakeport_free(struct fakeport *p);

/* Fill dp so that loop_init() uses this port (p must outlive the loop). */
void fakeport_loop_port(struct fakeport *p, struct loop_port *dp);

/* ---- The bus side: what the loop will read ---- */

/* Write n events into the pipe (blocks while it is full). 0 or -errno. */
int fakeport_inject(struct fakeport *p, const struct can_port_event *ev, unsigned int n);
/* n frames from the bus. */
int fakeport_inject_frames(struct fakeport *p, const struct cframe *f, unsigned int n);
/* One event without a frame (BUSOFF, RESTARTED) or an echo (TX_DONE of f). */
int fakeport_inject_event(struct fakeport *p, enum can_port_event_type type,
			  const struct cframe *f);

/* Events injected so far, and read by the loop so far. */
uint64_t fakeport_injected(struct fakeport *p);
uint64_t fakeport_consumed(struct fakeport *p);

/* Wait until the loop has read every injected event: 0 or -ETIMEDOUT. */
int fakeport_wait_consumed(struct fakeport *p, int timeout_ms);

/* ---- The send side: what the device handed to the port ---- */

/* Frames sent (recorded) so far; failed frames are not recorded. */
unsigned int fakeport_sent_count(struct fakeport *p);
/* Copy sent frame i: 0, or -ENOENT when there is none. */
int fakeport_sent(struct fakeport *p, unsigned int i, struct cframe *f);
/* Wait until at least n frames were recorded: 0 or -ETIMEDOUT. */
int fakeport_wait_sent(struct fakeport *p, unsigned int n, int timeout_ms);
/* Forget the recorded frames (the count starts again at 0). */
void fakeport_clear_sent(struct fakeport *p);

/* Fail the next n frames handed to send() with err (a -errno), per frame. */
void fakeport_fail_next(struct fakeport *p, unsigned int n, int err);
/* Make every send() call fail as a whole with err; 0 = stop failing. */
void fakeport_fail_calls(struct fakeport *p, int err);
/* Frames failed so far (per frame or by a whole failed call). */
unsigned int fakeport_failed_count(struct fakeport *p);
/* send() calls so far (the device batches: calls <= frames). */
unsigned int fakeport_send_calls(struct fakeport *p);

/* Count sent frames without keeping them (floods of millions); off by default. */
void fakeport_count_only(struct fakeport *p, bool on);

/*
 * Call fn(arg, n) in the loop thread at the end of every send() of n frames
 * (NULL: none): a guest vCPU that reacts at once, e.g. one that reposts
 * what the device is sending, so the ring never runs empty.
 */
void fakeport_on_send(struct fakeport *p, void (*fn)(void *arg, unsigned int n), void *arg);

/* Make start() fail with err (0 = succeed). */
void fakeport_fail_start(struct fakeport *p, int err);
unsigned int fakeport_starts(struct fakeport *p);
unsigned int fakeport_stops(struct fakeport *p);
/* Last set_tx_confirm() value. */
bool fakeport_tx_confirm(struct fakeport *p);

/* ---- The daemon's loop in a thread ---- */

struct fakeport_loop;

/*
 * Make a temporary directory, loop_init() listening on a socket in it with
 * cfg and port p (p must outlive the runner), start loop_run() in a thread.
 */
int fakeport_loop_start(struct fakeport_loop **out, const struct device_config *cfg, struct fakeport *p);

/*
 * One more device in the same loop (loop_add, run in the loop thread), on
 * port p, listening at *path (in the runner's directory). At most 4.
 */
int fakeport_loop_add(struct fakeport_loop *d, const struct device_config *cfg, struct fakeport *p,
		     const char **path);

/*
 * Stop the loop (through its control fd), join it, loop_free(), remove the
 * directory. Returns what loop_run() returned. NULL is a no-op (0).
 */
int fakeport_loop_stop(struct fakeport_loop *d);

const char *fakeport_loop_path(const struct fakeport_loop *d);

/* Run fn(m, arg) in the loop thread; 0, or -ESRCH when the loop has ended. */
int fakeport_loop_exec(struct fakeport_loop *d, void (*fn)(struct loop *m, void *arg), void *arg);

/*
 * Make the loop run an empty request and wait up to timeout_ms for it: 0, or
 * -ETIMEDOUT when the loop did not get to its control fd in time (it is
 * stuck in a call, or busy past the bound). Safe to give up on: the loop
 * ends the request by itself when it gets there.
 */
int fakeport_loop_ping(struct fakeport_loop *d, int timeout_ms);

/*
 * Wait until the loop has read and handled every event injected into the
 * port so far: 0 or -ETIMEDOUT / -ESRCH.
 */
int fakeport_loop_sync(struct fakeport_loop *d, int timeout_ms);

/* The device's counters, read in the loop thread. */
int fakeport_loop_stats(struct fakeport_loop *d, struct device_stats *s);

/* The loop has ended (loop_run returned), and what it returned. */
bool fakeport_loop_exited(struct fakeport_loop *d, int *ret);

#endif
