/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Guest memory: the region table a frontend gave us, mapped into this
 * process, and bounded translation of guest physical addresses (used by
 * descriptors) and frontend user addresses (used by SET_VRING_ADDR).
 * A struct gmem is the caller's (embedded, not allocated); it owns its
 * mappings and unmaps them in gmem_remove and gmem_clear. Not thread-safe:
 * one table, one thread (budgets may be shared across threads).
 */
#ifndef GMEM_H
#define GMEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhost_user.h"

/* Slots advertised by GET_MAX_MEM_SLOTS. */
#define GMEM_MAX_REGIONS 32

/*
 * A cap on the bytes of guest memory mapped, charged by every table that
 * points at it: one budget per table bounds what one frontend may map, one
 * budget shared by several tables bounds their total (several backends of
 * one process). Each mapping is charged whole (its length rounded to pages)
 * before it is made and given back when it is unmapped. used is atomic:
 * backends may run in threads. The names are the caller's and only go into
 * refusals: name says which limit ("per-device"), raise how to raise it
 * (an option). limit 0 means no limit.
 */
struct gmem_budget {
	uint64_t limit;
	_Atomic uint64_t used;
	const char *name;
	const char *raise;
};

#define GMEM_BUDGET_INIT(lim, nm, how)                                                             \
	{                                                                                          \
		.limit = (lim), .used = 0, .name = (nm), .raise = (how)                            \
	}

/* Budgets one table may be charged to. */
#define GMEM_MAX_BUDGETS 4

/* Bytes charged to b now (all the tables charged to it). */
uint64_t gmem_budget_used(const struct gmem_budget *b);

struct gmem_region {
	uint64_t gpa;	      /* guest physical start */
	uint64_t size;	      /* bytes */
	uint64_t uaddr;	      /* frontend user address of the start */
	uint64_t mmap_offset; /* offset of the region in its fd */
	uint8_t *host;	      /* our pointer to the start (mmap_base + mmap_offset) */
	void *mmap_base;      /* NULL for regions we did not map (tests) */
	size_t mmap_len;
	int guard; /* slot in the SIGBUS handler's table, -1 for none */
	/* mmap_len is charged to the table's budgets */
	bool charged;
};

struct gmem {
	struct gmem_region regions[GMEM_MAX_REGIONS];
	unsigned int nregions;
	const char *why; /* what was wrong with the last region refused */
	struct gmem_budget *budgets[GMEM_MAX_BUDGETS];
	unsigned int nbudgets;
	/* When a budget refused the last region: which one, and the bytes asked. */
	const struct gmem_budget *over;
	uint64_t over_asked;
};

/* An empty table charged to no budget (nothing to free: no error). */
void gmem_init(struct gmem *m);

/*
 * Charge m's future mappings to b too (b must outlive m's mappings).
 * -ENOSPC past GMEM_MAX_BUDGETS, -EBUSY while m has mappings.
 */
int gmem_add_budget(struct gmem *m, struct gmem_budget *b);

/* An empty table charged to the same budgets as like (a replacement being built). */
void gmem_init_like(struct gmem *m, const struct gmem *like);

/*
 * Give m's charges back while a replacement table is built, so that the
 * limit bounds the table a frontend holds, not the old and new ones together
 * for the moment both are mapped. gmem_budget_reclaim charges them again
 * (the replacement failed: m stays), whatever the limits say by then.
 */
void gmem_budget_lend(struct gmem *m);
void gmem_budget_reclaim(struct gmem *m);

/*
 * Validate and map one region from fd (MAP_SHARED, from its offset rounded
 * down to the page or huge page). The fd is not taken: the caller closes it
 * (the mapping stays). On an error nothing is mapped or charged and m's
 * regions are as before. Errors: -EINVAL for a zero size, overflow of gpa+size, uaddr+size
 * or offset+size, a range overlapping an existing region, an fd that is not
 * a regular file or a character device, or a file smaller than offset+size;
 * -EBADF when fd < 0; -ENOSPC when all GMEM_MAX_REGIONS slots are used, or
 * the process-wide table of guarded mappings is full; -EDQUOT when the
 * mapping would take one of m's budgets past its limit (m->over and
 * m->over_asked say which and how much); -errno from fstat or mmap.
 * gmem_why() then says which in words.
 *
 * The first mapping installs a process-wide SIGBUS handler (see gmem.c): a
 * mapping whose memory vanishes later reads as zeros and is marked lost.
 */
int gmem_add(struct gmem *m, const struct vhost_user_mem_region *r, int fd);

/*
 * Add a region backed by memory the caller owns (unit tests and fuzzing):
 * host must stay valid while the region is in m. Same validation as
 * gmem_add (-EINVAL, -ENOSPC), -EINVAL for a NULL host; nothing is mapped,
 * unmapped or charged.
 */
int gmem_add_host(struct gmem *m, const struct vhost_user_mem_region *r, void *host);

/*
 * Remove (and unmap) the region matching r's gpa, size and uaddr (its
 * mmap_offset is ignored), giving its bytes back to the budgets. Pointers
 * into it are invalid afterwards. -ENOENT when no region matches.
 */
int gmem_remove(struct gmem *m, const struct vhost_user_mem_region *r);

/* What was wrong with the region gmem_add refused last ("" if none); a static string. */
const char *gmem_why(const struct gmem *m);

/*
 * True when the memory under one of m's mappings vanished (a SIGBUS was
 * caught there): the frontend broke guest memory and must be dropped.
 */
bool gmem_lost(const struct gmem *m);

/* Faults caught so far in the whole process: a cheap "anything new?" test. */
unsigned int gmem_fault_count(void);

/*
 * Unmap every region (bytes back to the budgets); every pointer into them is
 * invalid afterwards. The table is empty, its budgets stay.
 */
void gmem_clear(struct gmem *m);

/*
 * Translate a guest physical address. Returns the host pointer and stores
 * in *len the number of bytes contiguous from there inside that region,
 * at most the *len asked for. NULL when gpa is in no region. The pointer is
 * valid until the region is removed or the table cleared.
 */
void *gmem_gpa_to_host(const struct gmem *m, uint64_t gpa, uint64_t *len);

/* Same for a frontend user address. */
void *gmem_uva_to_host(const struct gmem *m, uint64_t uva, uint64_t *len);

/* A whole [gpa, gpa+len) inside one region, or NULL. len 0 is rejected. */
void *gmem_gpa_range(const struct gmem *m, uint64_t gpa, uint64_t len);
void *gmem_uva_range(const struct gmem *m, uint64_t uva, uint64_t len);

#endif
