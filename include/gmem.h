/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Guest memory: the region table a frontend gave us, mapped into this
 * process, and bounded translation of guest physical addresses (used by
 * descriptors) and frontend user addresses (used by SET_VRING_ADDR).
 */
#ifndef GMEM_H
#define GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhost_user.h"

/* Slots advertised by GET_MAX_MEM_SLOTS. */
#define GMEM_MAX_REGIONS 32

struct gmem_region {
	uint64_t gpa;	      /* guest physical start */
	uint64_t size;	      /* bytes */
	uint64_t uaddr;	      /* frontend user address of the start */
	uint64_t mmap_offset; /* offset of the region in its fd */
	uint8_t *host;	      /* our pointer to the start (mmap_base + mmap_offset) */
	void *mmap_base;      /* NULL for regions we did not map (tests) */
	size_t mmap_len;
};

struct gmem {
	struct gmem_region regions[GMEM_MAX_REGIONS];
	unsigned int nregions;
};

void gmem_init(struct gmem *m);

/*
 * Validate and map one region from fd (MAP_SHARED). The fd is not taken: the
 * caller closes it. Errors: -EINVAL for a zero size, overflow of gpa+size,
 * uaddr+size or offset+size, or a range overlapping an existing region;
 * -ENOSPC when all slots are used; -errno from mmap.
 */
int gmem_add(struct gmem *m, const struct vhost_user_mem_region *r, int fd);

/*
 * Add a region backed by memory the caller owns (unit tests and fuzzing):
 * same validation as gmem_add, nothing is mapped or unmapped.
 */
int gmem_add_host(struct gmem *m, const struct vhost_user_mem_region *r, void *host);

/* Remove (and unmap) the region matching r's gpa, size and uaddr; -ENOENT. */
int gmem_remove(struct gmem *m, const struct vhost_user_mem_region *r);

/* Unmap every region. The table is empty afterwards. */
void gmem_clear(struct gmem *m);

/*
 * Translate a guest physical address. Returns the host pointer and stores
 * in *len the number of bytes contiguous from there inside that region,
 * at most the *len asked for. NULL when gpa is in no region.
 */
void *gmem_gpa_to_host(const struct gmem *m, uint64_t gpa, uint64_t *len);

/* Same for a frontend user address. */
void *gmem_uva_to_host(const struct gmem *m, uint64_t uva, uint64_t *len);

/* A whole [gpa, gpa+len) inside one region, or NULL. len 0 is rejected. */
void *gmem_gpa_range(const struct gmem *m, uint64_t gpa, uint64_t len);
void *gmem_uva_range(const struct gmem *m, uint64_t uva, uint64_t len);

#endif
