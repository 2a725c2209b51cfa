/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Descriptor writers: tests and fuzz targets play the guest and write split
 * ring descriptors into guest memory themselves, little-endian as the
 * device reads them.
 */
#ifndef TDESC_H
#define TDESC_H

#include <stdint.h>

/* Write one descriptor at at (any alignment: fuzz targets use odd ones). */
void tdesc_put(void *at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);

#endif
