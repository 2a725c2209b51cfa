/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Descriptor writers: a guest's split ring descriptor, little-endian. */
#include <endian.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include "tdesc.h"

void tdesc_put(void *at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc d = {
	    .addr = htole64(addr),
	    .len = htole32(len),
	    .flags = htole16(flags),
	    .next = htole16(next),
	};

	memcpy(at, &d, sizeof(d));
}
