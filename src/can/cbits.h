/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * How long a frame occupies a CAN bus: its bits on the wire, from the start
 * of frame to the end of the inter-frame space, with the stuff bits its own
 * content causes (computed, not the worst case):
 * - classic: SOF, arbitration, control, data and the real CRC-15 are
 *   stuffed (a bit of opposite value after five equal ones, counted in the
 *   next run); then CRC delimiter, ACK slot and delimiter, 7 EOF, 3 IFS.
 * - CAN FD (ISO 11898-1:2015): SOF to the end of data is stuffed the same
 *   way; then the stuff count (4 bits), the CRC (17 bits up to 16 data
 *   bytes, 21 above) and their fixed stuff bits (6 or 7); then as classic.
 *   With BRS, the bits after BRS up to the end of the CRC go at the data
 *   bit rate (BRS itself and the CRC delimiter count at the nominal one:
 *   the switch points are taken at bit boundaries). The CRC bits' values
 *   do not matter: they are stuffed with fixed bits only.
 */
#ifndef CBITS_H
#define CBITS_H

#include <stdint.h>

#include "cframe.h"

struct cbits {
	unsigned int nominal; /* bits at the nominal (arbitration) bit rate */
	unsigned int data;    /* bits at the data bit rate (CAN FD with BRS), else 0 */
	unsigned int stuff;   /* of those, dynamic stuff bits */
};

void cbits_frame(const struct cframe *f, struct cbits *out);

/* Nanoseconds on a bus of bitrate (and dbitrate for the data phase; 0: the same). */
uint64_t cbits_frame_ns(const struct cframe *f, uint32_t bitrate, uint32_t dbitrate);

#endif
