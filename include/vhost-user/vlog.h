/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Logging to stderr with a level and a tag (the object concerned, e.g. the
 * device name or "vq 1"). The threshold is the one piece of process-wide
 * state outside main: main sets it once before anything else runs.
 * Lines are "NAME: LEVEL: TAG: text", one fprintf each, cut at 511 bytes of
 * text. Nothing here fails or returns an error.
 */
#ifndef VLOG_H
#define VLOG_H

#include <stdbool.h>

enum vlog_level {
	VLOG_ERR = 0,
	VLOG_WARN = 1,
	VLOG_INFO = 2,
	VLOG_DEBUG = 3,
};

/* Lines above level are dropped (default VLOG_INFO). */
void vlog_set_level(enum vlog_level level);
enum vlog_level vlog_get_level(void);
/*
 * Prefix every line with this name (the daemon's device name; default
 * "vhost-device-can"). Not copied: name must stay valid while lines are
 * written.
 */
void vlog_set_name(const char *name);

/* One line at level, tagged with tag (NULL: no tag), to stderr. */
void vlog(enum vlog_level level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * A rate limit for lines a peer can cause at will (a guest's malformed
 * requests, a frontend's rejected messages): at most VLOG_LIMIT_BURST lines
 * per VLOG_LIMIT_WINDOW_MS; the rest are counted, and the first line of a
 * later window says how many were held back. Zero-initialised is ready.
 */
#define VLOG_LIMIT_BURST 10
#define VLOG_LIMIT_WINDOW_MS 1000

struct vlog_limit {
	unsigned int burst; /* lines per window; 0: VLOG_LIMIT_BURST */
	unsigned long long window_start_ms;
	unsigned int count;
	unsigned int suppressed;
	unsigned long long total_suppressed;
};

/*
 * Whether a line may go out at now_ms (counting it against l). When it may,
 * *held gets the number of lines held back since the last one that went
 * out; else *held is 0. A clock that went back starts a new window.
 */
bool vlog_limit_ok(struct vlog_limit *l, unsigned long long now_ms, unsigned int *held);

/*
 * vlog() through the limit l, on CLOCK_MONOTONIC; a line above the level
 * threshold is dropped without counting. l is the caller's, one
 * thread's at a time.
 */
void vlog_limited(struct vlog_limit *l, enum vlog_level level, const char *tag, const char *fmt,
		  ...) __attribute__((format(printf, 4, 5)));

#define vlog_err(tag, ...) vlog(VLOG_ERR, tag, __VA_ARGS__)
#define vlog_warn(tag, ...) vlog(VLOG_WARN, tag, __VA_ARGS__)
#define vlog_info(tag, ...) vlog(VLOG_INFO, tag, __VA_ARGS__)
#define vlog_debug(tag, ...) vlog(VLOG_DEBUG, tag, __VA_ARGS__)

#endif
