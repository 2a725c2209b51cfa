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
	int guard; /* slot in the SIGBUS handler's table, -1 for none */
};

struct gmem {
	struct gmem_region regions[GMEM_MAX_REGIONS];
	unsigned int nregions;
	const char *why; /* what was wrong with the last region refused */
};

void gmem_init(struct gmem *m);

/*
 * Validate and map one region from fd (MAP_SHARED, from its offset rounded
 * down to the page or huge page). The fd is not taken: the caller closes it.
 * Errors: -EINVAL for a zero size, overflow of gpa+size, uaddr+size or
 * offset+size, a range overlapping an existing region, an fd that is not a
 * regular file or a character device, or a file smaller than offset+size;
 * -ENOSPC when all slots are used; -errno from fstat or mmap. gmem_why()
 * then says which in words.
 *
 * The first mapping installs a process-wide SIGBUS handler (see gmem.c): a
 * mapping whose memory vanishes later reads as zeros and is marked lost.
 */
int gmem_add(struct gmem *m, const struct vhost_user_mem_region *r, int fd);

/*
 * Add a region backed by memory the caller owns (unit tests and fuzzing):
 * same validation as gmem_add, nothing is mapped or unmapped.
 */
int gmem_add_host(struct gmem *m, const struct vhost_user_mem_region *r, void *host);

/* Remove (and unmap) the region matching r's gpa, size and uaddr; -ENOENT. */
int gmem_remove(struct gmem *m, const struct vhost_user_mem_region *r);

/* What was wrong with the region gmem_add refused last ("" if none). */
const char *gmem_why(const struct gmem *m);

/*
 * True when the memory under one of m's mappings vanished (a SIGBUS was
 * caught there): the frontend broke guest memory and must be dropped.
 */
bool gmem_lost(const struct gmem *m);

/* Faults caught so far in the whole process: a cheap "anything new?" test. */
unsigned int gmem_fault_count(void);

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
