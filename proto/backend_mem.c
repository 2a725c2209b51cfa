/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Memory table handlers: SET_MEM_TABLE replaces the whole table (built aside,
 * so a failure leaves the old one), ADD/REM_MEM_REG change one region. Rings
 * are taken from the device before any mapping they use goes away.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend_priv.h"
#include "vlog.h"

int vub_h_set_mem_table(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_mem_table *t = &m->payload.mem;
	struct gmem fresh;
	uint32_t n;
	int ret;

	(void)reply;
	if (m->hdr.size < 8)
		return vub_reject(b, m, -EPROTO, "payload of %u bytes has no region count",
				  m->hdr.size);
	n = t->nregions;
	if (n == 0 || n > VHOST_USER_MEM_TABLE_MAX_REGIONS)
		return vub_reject(b, m, -EPROTO, "%u regions (1..%u allowed)", n,
				  VHOST_USER_MEM_TABLE_MAX_REGIONS);
	if (m->hdr.size != 8 + n * sizeof(struct vhost_user_mem_region))
		return vub_reject(b, m, -EPROTO, "payload of %u bytes for %u regions", m->hdr.size,
				  n);
	if (m->nfds != n)
		return vub_reject(b, m, -EPROTO, "%u fds for %u regions", m->nfds, n);

	/* Build the new table aside: on any failure the old one stays. */
	gmem_init(&fresh);
	for (uint32_t i = 0; i < n; i++) {
		const struct vhost_user_mem_region *r = &t->regions[i];

		ret = gmem_add(&fresh, r, m->fds[i]);
		if (ret) {
			gmem_clear(&fresh);
			return vub_reject(b, m, ret,
					  "region %u (gpa 0x%llx size 0x%llx uaddr 0x%llx offset "
					  "0x%llx): %s (%s)",
					  i, (unsigned long long)r->guest_phys_addr,
					  (unsigned long long)r->memory_size,
					  (unsigned long long)r->userspace_addr,
					  (unsigned long long)r->mmap_offset, gmem_why(&fresh),
					  strerror(-ret));
		}
	}
	/* The mappings hold the memory; the fds are closed by the caller. */
	vub_rings_suspend(b);
	gmem_clear(&b->mem);
	b->mem = fresh;
	vlog_limited(&b->log_limit, VLOG_INFO, b->tag, "memory table of %u regions", n);
	vub_rings_resume(b);
	return 0;
}

int vub_h_get_max_mem_slots(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	(void)b;
	(void)m;
	return vub_reply_u64(reply, GMEM_MAX_REGIONS);
}

int vub_h_add_mem_reg(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_mem_region *r = &m->payload.mem_reg.region;
	int ret;

	(void)reply;
	/* Adding leaves existing mappings where they are: running rings stay. */
	ret = gmem_add(&b->mem, r, m->fds[0]);
	if (ret)
		return vub_reject(
		    b, m, ret, "region gpa 0x%llx size 0x%llx uaddr 0x%llx offset 0x%llx: %s (%s)",
		    (unsigned long long)r->guest_phys_addr, (unsigned long long)r->memory_size,
		    (unsigned long long)r->userspace_addr, (unsigned long long)r->mmap_offset,
		    gmem_why(&b->mem), strerror(-ret));
	vub_rings_resume(b);
	return 0;
}

int vub_h_rem_mem_reg(struct vu_backend *b, struct vu_msg *m, struct vu_msg *reply)
{
	const struct vhost_user_mem_region *r = &m->payload.mem_reg.region;
	bool found = false;

	(void)reply;
	for (unsigned int i = 0; i < b->mem.nregions; i++) {
		const struct gmem_region *e = &b->mem.regions[i];

		if (e->gpa == r->guest_phys_addr && e->size == r->memory_size &&
		    e->uaddr == r->userspace_addr)
			found = true;
	}
	if (!found)
		return vub_reject(b, m, -ENOENT, "no region gpa 0x%llx size 0x%llx uaddr 0x%llx",
				  (unsigned long long)r->guest_phys_addr,
				  (unsigned long long)r->memory_size,
				  (unsigned long long)r->userspace_addr);
	vub_rings_suspend(b);
	gmem_remove(&b->mem, r);
	vub_rings_resume(b);
	return 0;
}

int vu_backend_check_memory(struct vu_backend *b)
{
	unsigned int faults = gmem_fault_count();

	/* One atomic load a call unless a fault was caught somewhere. */
	if (faults == b->faults_seen)
		return 0;
	b->faults_seen = faults;
	if (!gmem_lost(&b->mem))
		return 0;
	vlog_limited(&b->log_limit, VLOG_ERR, b->tag,
		     "guest memory vanished under a mapping (its file shrank or lost its pages): "
		     "dropping the frontend");
	vu_backend_disconnect(b);
	return -EFAULT;
}
