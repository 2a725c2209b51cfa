/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * CAN id filters in candump's syntax, for --tx-allow and --rx-filter:
 * "id:mask" matches a frame when frame_id & mask == id & mask, "id~mask"
 * when it does not; a list (comma separated) matches when any entry does.
 * Numbers are hex, "0x" optional. An id of 8 hex digits is extended (the
 * EFF flag is set on it, as candump does), and the flags may be written
 * out: 0x80000000 EFF, 0x40000000 RTR, in the id and in the mask, with
 * SocketCAN's meaning. Frame ids compare as SocketCAN's can_id does: the
 * 11- or 29-bit id with the EFF and RTR flags.
 */
#ifndef CFILT_H
#define CFILT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cframe.h"

#define CFILT_MAX 64 /* entries in one list */

#define CFILT_EFF 0x80000000u
#define CFILT_RTR 0x40000000u
#define CFILT_ERR 0x20000000u /* refused: error frames are not filtered here */

struct cfilt_rule {
	uint32_t id;   /* with CFILT_EFF / CFILT_RTR */
	uint32_t mask; /* likewise */
	bool inverted; /* "~": matches when the masked ids differ */
};

struct cfilt {
	unsigned int n;
	struct cfilt_rule rule[CFILT_MAX];
};

/*
 * Parse text into f. 0, or -EINVAL with why (of size cap) naming the bad
 * part: "'12g:7ff': not a hex number", "more than 64 filters", ...
 */
int cfilt_parse(struct cfilt *f, const char *text, char *why, size_t cap);

/* The frame's id as the rules compare it. */
uint32_t cfilt_key(const struct cframe *fr);

/* Whether any rule of f matches fr (an empty list matches nothing). */
bool cfilt_match(const struct cfilt *f, const struct cframe *fr);

#endif
