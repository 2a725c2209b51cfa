/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The frontend tool's cansend-syntax parser on arbitrary bytes. A frame it
 * accepts must be valid, must format (cansend and candump syntax) into the
 * documented buffer sizes, and must parse back to the same frame.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canfmt.h"
#include "cframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int frame_cmp(const struct cframe *a, const struct cframe *b)
{
	size_t n = (a->flags & CFRAME_RTR) ? 0 : a->len;

	if (a->id != b->id || a->flags != b->flags || a->len != b->len)
		return 1;
	return memcmp(a->data, b->data, n);
}

/* The input's bytes as a frame: the formatters must refuse it or round-trip it. */
static void format_raw(const uint8_t *data, size_t size)
{
	struct cframe f, g;
	char text[CANFMT_SEND_MAX];
	char dump[CANFMT_DUMP_MAX];
	unsigned int view;
	int n;

	memset(&f, 0, sizeof(f));
	memcpy(&f, data, size < sizeof(f) ? size : sizeof(f));
	n = canfmt_cansend(text, sizeof(text), &f);
	if (n < 0 && canfmt_valid(&f))
		abort();
	if (n >= 0) {
		if (!canfmt_valid(&f) || canfmt_parse(text, (size_t)n, &g) != 0)
			abort();
		/* Parsing pads CAN FD lengths no DLC expresses; compare those bytes only. */
		if (g.id != f.id || g.flags != f.flags ||
		    g.len != ((f.flags & CFRAME_FD) ? canfmt_fd_len_round(f.len) : f.len) ||
		    memcmp(g.data, f.data, (f.flags & CFRAME_RTR) ? 0 : f.len) != 0)
			abort();
	}
	/* Unknown view bits are refused like invalid frames. */
	view = size ? data[size - 1] & 3u : 0;
	n = canfmt_candump(dump, sizeof(dump), "vcan0", &f, view);
	if ((n < 0) != (canfmt_valid(&f) && !(view & ~CANFMT_VIEW_INDENT_SFF) ? 0 : 1) ||
	    (n >= 0 && (size_t)n >= sizeof(dump)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cframe f, g;
	char text[CANFMT_SEND_MAX];
	char dump[CANFMT_DUMP_MAX];
	int n;

	format_raw(data, size);
	memset(&f, 0xa5, sizeof(f));
	if (canfmt_parse((const char *)data, size, &f) != 0)
		return 0;
	if (!canfmt_valid(&f))
		abort();
	n = canfmt_cansend(text, sizeof(text), &f);
	if (n <= 0 || (size_t)n >= sizeof(text) || strlen(text) != (size_t)n)
		abort();
	memset(&g, 0x5a, sizeof(g));
	if (canfmt_parse(text, (size_t)n, &g) != 0 || frame_cmp(&f, &g) != 0)
		abort();
	if (canfmt_parse_str(text, &g) != 0 || frame_cmp(&f, &g) != 0)
		abort();
	n = canfmt_candump(dump, sizeof(dump), "vcan0", &f, size & 1 ? CANFMT_VIEW_INDENT_SFF : 0);
	if (n <= 0 || (size_t)n >= sizeof(dump) || strlen(dump) != (size_t)n)
		abort();
	return 0;
}
