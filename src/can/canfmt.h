/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * CAN frames as text, the way can-utils writes them: cansend's compact
 * syntax in and out, and candump's default line out. Pure functions on
 * struct cframe; they read at most the bytes they are given and write at
 * most the buffer they are given, whatever the input.
 *
 * The compact syntax (cansend):
 *   123#DEADBEEF        standard id (3 hex digits), 0..8 data bytes
 *   12345678#00         extended id (8 hex digits)
 *   123#11.22.33        a '.' may precede any byte and end the data
 *   123#R  123#R5       remote request, with an optional DLC 0..8
 *   123##1AABB          CAN FD: '##', one flags nibble (1 = BRS, 2 = ESI,
 *                       4 = FDF, accepted and implied), 0..64 data bytes
 * Differences from cansend, all refusals of what cansend would send anyway
 * or what virtio-can cannot carry: a standard id above 7FF, an extended id
 * above 1FFFFFFF (cansend turns those bits into error-frame flags), data
 * longer than the frame allows (cansend drops the rest silently), flags
 * nibble 8..F, CAN XL ids (5 digits) and the raw DLC suffix "_9".."_F".
 *
 * CAN FD lengths: cansend hands a length such as 9 to the kernel as is,
 * and a CAN FD controller then sends the next length a DLC can express
 * (12), padded. virtio-can carries only those lengths (0..8, 12, 16, 20,
 * 24, 32, 48, 64), so the parser does what the controller would: it pads
 * with zero bytes up to the next one.
 */
#ifndef CANFMT_H
#define CANFMT_H

#include <stdbool.h>
#include <stddef.h>

#include "cframe.h"

/* What canfmt_parse refuses; it returns the negated code. */
enum canfmt_err {
	CANFMT_E_EMPTY = 1, /* nothing to parse */
	CANFMT_E_NO_HASH,   /* no '#' after the identifier */
	CANFMT_E_ID_FORM,   /* the identifier is not 3 or 8 hex digits */
	CANFMT_E_ID_RANGE,  /* id above 7FF (3 digits) or 1FFFFFFF (8 digits) */
	CANFMT_E_HEX,	    /* a data character that is not a hex digit */
	CANFMT_E_ODD,	    /* a byte with one hex digit only */
	CANFMT_E_TOO_LONG,  /* more than 8 (classic) or 64 (CAN FD) bytes */
	CANFMT_E_FD_FLAGS,  /* CAN FD flags nibble missing or 8..F */
	CANFMT_E_RTR_LEN,   /* remote request DLC not 0..8 */
	CANFMT_E_TRAILING,  /* characters after a remote request */
	CANFMT_E_RAW_DLC,   /* "_X" raw DLC: virtio-can has no field for it */
	CANFMT_E_MAX
};

/* A message for a canfmt_err (positive or negated); never NULL. */
const char *canfmt_strerror(int err);

/*
 * Parse s[0..n) (n bytes exactly; a NUL byte is just an invalid character)
 * into *f. 0, or a negated canfmt_err with *f left untouched.
 */
int canfmt_parse(const char *s, size_t n, struct cframe *f);

/* The same for a NUL-terminated string. */
int canfmt_parse_str(const char *s, struct cframe *f);

/* The CAN FD length a controller sends for len bytes: len rounded up. */
unsigned int canfmt_fd_len_round(unsigned int len);

/*
 * Whether f is a frame these functions can write: known flags, id in its
 * range, classic length <= 8 (RTR: DLC <= 8), CAN FD length <= 64 and no
 * RTR, BRS/ESI only with CAN FD. CAN FD lengths that no DLC expresses
 * (a vcan carries them) are valid here.
 */
bool canfmt_valid(const struct cframe *f);

/* Buffer sizes that always suffice (with the terminating NUL). */
#define CANFMT_SEND_MAX 144 /* 8 + "##" + 1 + 128 */
#define CANFMT_DUMP_IFNAME_MAX 15
#define CANFMT_DUMP_MAX 232 /* with an ifname of at most 15 bytes */

/*
 * Write f in cansend's compact syntax ("123#DEADBEEF", "123##1AABB",
 * "123#R5"): the length written (without the NUL), -EINVAL when f is not
 * valid, -ENOSPC when buf is too small (buf then holds "" if size > 0).
 */
int canfmt_cansend(char *buf, size_t size, const struct cframe *f);

/* candump's view flag this formatter knows. */
#define CANFMT_VIEW_INDENT_SFF 0x1u /* standard ids in the extended ids' column */

/*
 * Write f as candump prints it by default (no timestamp, no ASCII), for
 * the interface ifname, without the newline:
 *   "  vcan0  123   [4]  DE AD BE EF"        classic
 *   "  vcan0  12345678   [1]  00"            extended
 *   "  vcan0  123  [12]  00 11 22 ..."       CAN FD (two-digit length)
 *   "  vcan0  123   [5]  remote request"     remote request
 * An empty frame ends in one blank, as candump's does. candump indents
 * standard ids by 5 columns once it has printed an extended frame, so that
 * the columns line up: view CANFMT_VIEW_INDENT_SFF does that
 * ("  vcan0       123   [4]  DE AD BE EF"); the caller keeps that state.
 * Returns as canfmt_cansend; -EINVAL also for unknown view bits.
 */
int canfmt_candump(char *buf, size_t size, const char *ifname, const struct cframe *f,
		   unsigned int view);

#endif
