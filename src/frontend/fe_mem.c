/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Guest memory of the frontend: memfd regions and a bump allocator. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fe_priv.h"
#include "vhost-user/vlog.h"

#define MIB (1024ull * 1024ull)

/* Poison outside the regions: a backend ignoring mmap_offset sees it. */
#define FE_POISON 0xa5

void fe_mem_spec_default(struct fe_mem_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->nregions = 2;
	s->regions[0] = (struct fe_region_spec){.gpa = 0, .size = 4 * MIB};
	s->regions[1] = (struct fe_region_spec){
	    .gpa = 4096 * MIB, .size = 4 * MIB, .mmap_offset = 1 * MIB, .fd_size = 6 * MIB};
}

static bool spec_overlaps(const struct fe_region_spec *a, const struct fe_region_spec *b)
{
	return a->gpa < b->gpa + b->size && b->gpa < a->gpa + a->size;
}

static int region_create(struct fe_region *r, const struct fe_region_spec *s, unsigned int i)
{
	uint64_t fd_size = s->fd_size ? s->fd_size : s->mmap_offset + s->size;
	long page = sysconf(_SC_PAGESIZE);
	char name[32];
	int ret;

	if (s->size == 0 || s->mmap_offset > UINT64_MAX - s->size ||
	    fd_size < s->mmap_offset + s->size || s->gpa > UINT64_MAX - s->size ||
	    fd_size > SIZE_MAX || s->mmap_offset % (uint64_t)page != 0 ||
	    s->gpa % (uint64_t)page != 0)
		return -EINVAL;

	snprintf(name, sizeof(name), "fe-guest-%u", i);
	r->fd = memfd_create(name, MFD_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	if (ftruncate(r->fd, (off_t)fd_size) < 0) {
		ret = -errno;
		goto err_fd;
	}
	r->map = mmap(NULL, (size_t)fd_size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (r->map == MAP_FAILED) {
		r->map = NULL;
		ret = -errno;
		goto err_fd;
	}
	r->map_len = (size_t)fd_size;
	r->host = r->map + s->mmap_offset;
	r->gpa = s->gpa;
	r->size = s->size;
	r->mmap_offset = s->mmap_offset;
	r->used = 0;
	memset(r->map, FE_POISON, (size_t)s->mmap_offset);
	memset(r->host + s->size, FE_POISON, (size_t)(fd_size - s->mmap_offset - s->size));
	return 0;

err_fd:
	close(r->fd);
	r->fd = -1;
	return ret;
}

int fe_mem_init(struct fe *f, const struct fe_mem_spec *spec)
{
	struct fe_mem_spec def;
	int ret;

	if (!spec) {
		fe_mem_spec_default(&def);
		spec = &def;
	}
	if (spec->nregions == 0 || spec->nregions > FE_MAX_REGIONS)
		return -EINVAL;
	for (unsigned int i = 0; i < spec->nregions; i++)
		for (unsigned int j = 0; j < i; j++)
			if (spec_overlaps(&spec->regions[i], &spec->regions[j]))
				return -EINVAL;

	for (unsigned int i = 0; i < FE_MAX_REGIONS; i++)
		f->regions[i].fd = -1;
	for (unsigned int i = 0; i < spec->nregions; i++) {
		ret = region_create(&f->regions[i], &spec->regions[i], i);
		if (ret < 0) {
			fe_mem_fini(f);
			return ret;
		}
		f->nregions = i + 1;
	}
	return 0;
}

void fe_mem_fini(struct fe *f)
{
	for (unsigned int i = 0; i < f->nregions; i++) {
		struct fe_region *r = &f->regions[i];

		if (r->map)
			munmap(r->map, r->map_len);
		if (r->fd >= 0)
			close(r->fd);
		memset(r, 0, sizeof(*r));
		r->fd = -1;
	}
	f->nregions = 0;
}

void *fe_alloc_in(struct fe *f, unsigned int i, uint64_t size, uint64_t align, uint64_t *gpa)
{
	struct fe_region *r;
	uint64_t start;

	if (i >= f->nregions || size == 0)
		return NULL;
	if (align == 0)
		align = 8;
	if (align & (align - 1))
		return NULL;
	r = &f->regions[i];
	/* gpa and host pointer are both page aligned: aligning one aligns both. */
	start = (r->gpa + r->used + align - 1) & ~(align - 1);
	start -= r->gpa;
	if (start > r->size || size > r->size - start)
		return NULL;
	r->used = start + size;
	if (gpa)
		*gpa = r->gpa + start;
	return r->host + start;
}

void *fe_alloc(struct fe *f, uint64_t size, uint64_t align, uint64_t *gpa)
{
	for (unsigned int k = 0; k < f->nregions; k++) {
		unsigned int i = (f->alloc_next + k) % f->nregions;
		void *p = fe_alloc_in(f, i, size, align, gpa);

		if (p) {
			f->alloc_next = (i + 1) % f->nregions;
			return p;
		}
	}
	vlog_warn(FE_TAG, "guest memory full (%llu bytes asked)", (unsigned long long)size);
	return NULL;
}

void *fe_gpa_to_ptr(const struct fe *f, uint64_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < f->nregions; i++) {
		const struct fe_region *r = &f->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int fe_ptr_to_gpa(const struct fe *f, const void *p, uint64_t *gpa)
{
	uintptr_t a = (uintptr_t)p;

	for (unsigned int i = 0; i < f->nregions; i++) {
		const struct fe_region *r = &f->regions[i];
		uintptr_t h = (uintptr_t)r->host;

		if (a >= h && a - h < r->size) {
			*gpa = r->gpa + (a - h);
			return 0;
		}
	}
	return -EFAULT;
}

unsigned int fe_nregions(const struct fe *f)
{
	return f->nregions;
}

int fe_region(const struct fe *f, unsigned int i, struct vhost_user_mem_region *r)
{
	if (i >= f->nregions)
		return -EINVAL;
	r->guest_phys_addr = f->regions[i].gpa;
	r->memory_size = f->regions[i].size;
	r->userspace_addr = (uint64_t)(uintptr_t)f->regions[i].host;
	r->mmap_offset = f->regions[i].mmap_offset;
	return 0;
}

int fe_region_fd(const struct fe *f, unsigned int i)
{
	return i < f->nregions ? f->regions[i].fd : -1;
}
