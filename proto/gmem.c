/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Guest memory regions. Every field of a region comes from the frontend and
 * is checked before use: sizes and ends must not wrap, ranges must not
 * overlap (a translation must have exactly one answer), and a translation
 * never returns bytes past the end of the region it found.
 */
#include "gmem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void gmem_init(struct gmem *m)
{
	memset(m, 0, sizeof(*m));
}

/* [a, a+alen) and [b, b+blen) intersect; both lengths non-zero, no wrap. */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/*
 * Region ends are exclusive and must be representable, so a region may not
 * end exactly at 2^64: that costs nothing real and keeps every check simple.
 */
static int gmem_validate(const struct gmem *m, const struct vhost_user_mem_region *r)
{
	uint64_t size = r->memory_size;

	if (size == 0)
		return -EINVAL;
	if (r->guest_phys_addr > UINT64_MAX - size || r->userspace_addr > UINT64_MAX - size ||
	    r->mmap_offset > UINT64_MAX - size)
		return -EINVAL;
	if ((uint64_t)(r->mmap_offset + size) > (uint64_t)SIZE_MAX)
		return -EINVAL;
	for (unsigned int i = 0; i < m->nregions; i++) {
		const struct gmem_region *e = &m->regions[i];

		if (ranges_overlap(e->gpa, e->size, r->guest_phys_addr, size) ||
		    ranges_overlap(e->uaddr, e->size, r->userspace_addr, size))
			return -EINVAL;
	}
	if (m->nregions >= GMEM_MAX_REGIONS)
		return -ENOSPC;
	return 0;
}

static void gmem_store(struct gmem *m, const struct vhost_user_mem_region *r, uint8_t *host,
		       void *base, size_t len)
{
	struct gmem_region *e = &m->regions[m->nregions++];

	e->gpa = r->guest_phys_addr;
	e->size = r->memory_size;
	e->uaddr = r->userspace_addr;
	e->mmap_offset = r->mmap_offset;
	e->host = host;
	e->mmap_base = base;
	e->mmap_len = len;
}

/*
 * Length to map: hugetlbfs wants whole huge pages (it reports the huge page
 * size as st_blksize), so round up to the block size when that is a larger
 * power of two than a normal page.
 */
static size_t gmem_map_len(int fd, size_t len)
{
	struct stat st;
	long page = sysconf(_SC_PAGESIZE);
	size_t align;

	if (fstat(fd, &st) != 0 || page <= 0 || st.st_blksize <= page)
		return len;
	align = (size_t)st.st_blksize;
	if ((align & (align - 1)) != 0 || len > SIZE_MAX - (align - 1))
		return len;
	return (len + align - 1) & ~(align - 1);
}

int gmem_add(struct gmem *m, const struct vhost_user_mem_region *r, int fd)
{
	size_t len;
	void *base;
	int ret;

	ret = gmem_validate(m, r);
	if (ret)
		return ret;
	if (fd < 0)
		return -EBADF;
	len = gmem_map_len(fd, (size_t)(r->memory_size + r->mmap_offset));
	base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (base == MAP_FAILED)
		return -errno;
	gmem_store(m, r, (uint8_t *)base + r->mmap_offset, base, len);
	return 0;
}

int gmem_add_host(struct gmem *m, const struct vhost_user_mem_region *r, void *host)
{
	int ret;

	ret = gmem_validate(m, r);
	if (ret)
		return ret;
	if (!host)
		return -EINVAL;
	gmem_store(m, r, host, NULL, 0);
	return 0;
}

static void gmem_unmap(struct gmem_region *e)
{
	if (e->mmap_base)
		munmap(e->mmap_base, e->mmap_len);
	memset(e, 0, sizeof(*e));
}

int gmem_remove(struct gmem *m, const struct vhost_user_mem_region *r)
{
	/* The spec says mmap_offset is to be ignored when matching. */
	for (unsigned int i = 0; i < m->nregions; i++) {
		struct gmem_region *e = &m->regions[i];

		if (e->gpa != r->guest_phys_addr || e->size != r->memory_size ||
		    e->uaddr != r->userspace_addr)
			continue;
		gmem_unmap(e);
		memmove(e, e + 1, (m->nregions - i - 1) * sizeof(*e));
		m->nregions--;
		memset(&m->regions[m->nregions], 0, sizeof(*e));
		return 0;
	}
	return -ENOENT;
}

void gmem_clear(struct gmem *m)
{
	for (unsigned int i = 0; i < m->nregions; i++)
		gmem_unmap(&m->regions[i]);
	m->nregions = 0;
}

/* Region holding addr, keyed by gpa (uva false) or user address (uva true). */
static const struct gmem_region *gmem_find(const struct gmem *m, uint64_t addr, bool uva,
					   uint64_t *off)
{
	for (unsigned int i = 0; i < m->nregions && i < GMEM_MAX_REGIONS; i++) {
		const struct gmem_region *e = &m->regions[i];
		uint64_t start = uva ? e->uaddr : e->gpa;

		if (addr >= start && addr - start < e->size) {
			*off = addr - start;
			return e;
		}
	}
	return NULL;
}

static void *gmem_translate(const struct gmem *m, uint64_t addr, bool uva, uint64_t *len)
{
	const struct gmem_region *e;
	uint64_t off;

	e = gmem_find(m, addr, uva, &off);
	if (!e)
		return NULL;
	if (*len > e->size - off)
		*len = e->size - off;
	return e->host + off;
}

static void *gmem_range(const struct gmem *m, uint64_t addr, bool uva, uint64_t len)
{
	const struct gmem_region *e;
	uint64_t off;

	if (len == 0)
		return NULL;
	e = gmem_find(m, addr, uva, &off);
	if (!e || len > e->size - off)
		return NULL;
	return e->host + off;
}

void *gmem_gpa_to_host(const struct gmem *m, uint64_t gpa, uint64_t *len)
{
	return gmem_translate(m, gpa, false, len);
}

void *gmem_uva_to_host(const struct gmem *m, uint64_t uva, uint64_t *len)
{
	return gmem_translate(m, uva, true, len);
}

void *gmem_gpa_range(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	return gmem_range(m, gpa, false, len);
}

void *gmem_uva_range(const struct gmem *m, uint64_t uva, uint64_t len)
{
	return gmem_range(m, uva, true, len);
}
