/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "vlog.h"

#include <stdarg.h>
#include <stdio.h>

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

void vlog(enum vlog_level level, const char *tag, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (level > vlog_threshold)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line so lines from threads do not interleave. */
	fprintf(stderr, "%s: %s: %s%s%s\n", vlog_name, vlog_level_names[level], tag ? tag : "",
		tag ? ": " : "", line);
}
