/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * --capture: every frame of a device, both directions, with its outcome,
 * to a file Wireshark reads as it reads a capture of can0 (pcapng, link
 * type SocketCAN, the direction in each packet's flags, the outcome as its
 * comment), or, for a name ending in ".log", candump's log format that
 * canplayer replays (frames that were on the bus only: sent ones and those
 * from the bus; the format has no direction or outcome).
 *
 * Records go to a memory buffer (capture_record, in the frame path: a copy) and
 * to the file at the end of a loop turn (capture_flush). Nothing here ever
 * blocks the loop: the file is opened and written with O_NONBLOCK, so a
 * FIFO without a reader fails to open at once, and a target that takes
 * nothing more (a FIFO whose reader stopped) leaves its bytes in the buffer
 * (the loop then waits for it to be writable, capture_waiting); once the
 * bounded buffer is full, records are dropped and counted (capture_dropped),
 * with one rate-limited line per run of drops. (A regular file is written
 * from the loop too: the page cache takes it at memory speed; see the
 * README on slow disks.) A write that fails (disk full, reader gone) stops
 * the capture with one logged error; what could not be written is counted
 * as lost, and traffic goes on.
 */
#ifndef CAPTURE_H
#define CAPTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "cframe.h"

struct capture;

enum capture_dir {
	CAPTURE_TX, /* guest -> bus (outbound) */
	CAPTURE_RX, /* bus -> guest (inbound) */
};

/*
 * Open path for appending (created if need be), without blocking: -ENXIO
 * for a FIFO that has no reader. A regular file is emptied at the first
 * write (so a refused start-up leaves it as it was): each run of the daemon
 * starts a capture of its own. tx_if and rx_if name the interfaces for the
 * candump format and the pcapng interface block. 0 or -errno.
 */
int capture_open(struct capture **out, const char *path, const char *tx_if, const char *rx_if);

/* What capture_open's or capture_reopen's err (-errno) means for path, in words. */
const char *capture_strerror(const char *path, int err);

/* Whether a and b write the same file (device and inode, however spelled). */
bool capture_same_file(const struct capture *a, const struct capture *b);

/*
 * One frame: dir, whether it was on the bus (a sent TX frame, any frame
 * from the bus), its outcome in words ("sent", "denied", "dropped: backlog
 * full", ...), the time in ns since the epoch. Never blocks, never fails:
 * a full buffer or a stopped capture counts the record lost.
 */
void capture_record(struct capture *c, enum capture_dir dir, bool on_bus, const char *outcome,
		const struct cframe *f, uint64_t realtime_ns);

/*
 * Write what is buffered, as much as the target takes now. 0 when all is
 * written; -EAGAIN when some waits (capture_waiting: wait until capture_fd is
 * writable); another -errno once the capture stopped.
 */
int capture_flush(struct capture *c);

/*
 * Close the file and open path again, without blocking (after log rotation
 * moved it: SIGHUP), appending: a file that was not moved keeps what it
 * holds, and a pcapng file gets a new section. What the old file did not
 * take is lost. A failure (a FIFO without a reader too) stops the capture
 * (logged); the next reopen tries again. 0 or -errno.
 */
int capture_reopen(struct capture *c);

/* The fd written to (-1 when stopped), and a count bumped each time an fd is closed. */
int capture_fd(const struct capture *c);
unsigned int capture_generation(const struct capture *c);

/* Bytes wait for the target to become writable (the last flush got -EAGAIN). */
bool capture_waiting(const struct capture *c);

/*
 * Records written, records lost (never written, for any reason), and of
 * those the ones dropped because the target did not keep up (buffer full).
 */
uint64_t capture_written(const struct capture *c);
uint64_t capture_lost(const struct capture *c);
uint64_t capture_dropped(const struct capture *c);

/* Flush (what the target takes now), close, free. NULL is a no-op. */
void capture_close(struct capture *c);

#endif
