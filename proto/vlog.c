/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "vhost-user/vlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum vlog_level vlog_threshold = VLOG_INFO;
static const char *vlog_name = "vhost-device-can";

static const char *const vlog_level_names[] = {"error", "warning", "info", "debug"};

void vlog_set_level(enum vlog_level level)
{
	vlog_threshold = level;
}

enum vlog_level vlog_get_level(void)
{
	return vlog_threshold;
}

void vlog_set_name(const char *name)
{
	vlog_name = name;
}

static void vlog_line(enum vlog_level level, const char *tag, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vlog_line(enum vlog_level level, const char *tag, const char *fmt, va_list ap)
{
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	/* One fprintf per line so lines from threads do not interleave. */
	fprintf(stderr, "%s: %s: %s%s%s\n", vlog_name, vlog_level_names[level], tag ? tag : "",
		tag ? ": " : "", line);
}

void vlog(enum vlog_level level, const char *tag, const char *fmt, ...)
{
	va_list ap;

	if (level > vlog_threshold)
		return;
	va_start(ap, fmt);
	vlog_line(level, tag, fmt, ap);
	va_end(ap);
}

bool vlog_limit_ok(struct vlog_limit *l, unsigned long long now_ms, unsigned int *held)
{
	*held = 0;
	if (l->count == 0 || now_ms - l->window_start_ms >= VLOG_LIMIT_WINDOW_MS ||
	    now_ms < l->window_start_ms) {
		l->window_start_ms = now_ms;
		l->count = 0;
	}
	if (l->count >= (l->burst ? l->burst : VLOG_LIMIT_BURST)) {
		l->suppressed++;
		l->total_suppressed++;
		return false;
	}
	l->count++;
	*held = l->suppressed;
	l->suppressed = 0;
	return true;
}

void vlog_limited(struct vlog_limit *l, enum vlog_level level, const char *tag, const char *fmt,
		  ...)
{
	struct timespec ts;
	unsigned int held;
	va_list ap;

	if (level > vlog_threshold)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (!vlog_limit_ok(l,
			   (unsigned long long)ts.tv_sec * 1000ull +
			       (unsigned long long)ts.tv_nsec / 1000000ull,
			   &held))
		return;
	if (held)
		vlog(level, tag, "%u similar lines held back (rate limit)", held);
	va_start(ap, fmt);
	vlog_line(level, tag, fmt, ap);
	va_end(ap);
}
