/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * --capture: every frame of a device, both directions, with its outcome,
 * to a file Wireshark reads as it reads a capture of can0 (pcapng, link
 * type SocketCAN, the direction in each packet's flags, the outcome as its
 * comment), or, for a name ending in ".log", candump's log format that
 * canplayer replays (frames that were on the bus only: sent ones and those
 * from the bus; the format has no direction or outcome).
 *
 * Records go to a memory buffer (cap_record, in the frame path: a copy) and
 * to the file at the end of a loop turn (cap_flush). A write that fails
 * (disk full, file gone bad) stops the capture with one logged error; what
 * could not be written is counted as lost, and traffic goes on.
 */
#ifndef CAPTURE_H
#define CAPTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "cframe.h"

struct cap;

enum cap_dir {
	CAP_TX, /* guest -> bus (outbound) */
	CAP_RX, /* bus -> guest (inbound) */
};

/*
 * Create (truncate) path. tx_if and rx_if name the interfaces for the
 * candump format and the pcapng interface block. 0 or -errno.
 */
int cap_open(struct cap **out, const char *path, const char *tx_if, const char *rx_if);

/*
 * One frame: dir, whether it was on the bus (a sent TX frame, any frame
 * from the bus), its outcome in words ("sent", "denied", "dropped: backlog
 * full", ...), the time in ns since the epoch. Never blocks, never fails:
 * a full buffer or a stopped capture counts the record lost.
 */
void cap_record(struct cap *c, enum cap_dir dir, bool on_bus, const char *outcome,
		const struct cframe *f, uint64_t realtime_ns);

/* Write what is buffered. 0, or -errno once the capture stopped. */
int cap_flush(struct cap *c);

/*
 * Close the file and open path again, from scratch (after log rotation
 * moved it: SIGHUP). A failure stops the capture (logged). 0 or -errno.
 */
int cap_reopen(struct cap *c);

/* Records written, and records lost (buffer full, capture stopped). */
uint64_t cap_written(const struct cap *c);
uint64_t cap_lost(const struct cap *c);

/* Flush, close, free. NULL is a no-op. */
void cap_close(struct cap *c);

#endif
