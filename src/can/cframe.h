/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A CAN or CAN FD frame as the device and the CAN port exchange it: neither
 * virtio's layout nor SocketCAN's, so each side converts at its own border.
 */
#ifndef CFRAME_H
#define CFRAME_H

#include <stdbool.h>
#include <stdint.h>

#define CFRAME_EXT 0x01u /* 29-bit identifier */
#define CFRAME_FD 0x02u	 /* CAN FD frame */
#define CFRAME_RTR 0x04u /* remote request (classic only) */
#define CFRAME_BRS 0x08u /* FD bit rate switch */
#define CFRAME_ESI 0x10u /* FD error state indicator */

#define CFRAME_MAX_DATA 64

struct cframe {
	uint32_t id;   /* 11 or 29 bits, no flag bits */
	uint8_t flags; /* CFRAME_* */
	uint8_t len;   /* payload bytes (for RTR: the requested DLC) */
	uint8_t data[CFRAME_MAX_DATA];
};

/* A length CAN FD can carry: 0-8, then 12, 16, 20, 24, 32, 48 or 64. */
static inline bool cframe_fd_len_valid(unsigned int len)
{
	switch (len) {
	case 12:
	case 16:
	case 20:
	case 24:
	case 32:
	case 48:
	case 64:
		return true;
	default:
		return len <= 8;
	}
}

#endif
