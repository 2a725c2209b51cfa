/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Memory table handlers: SET_MEM_TABLE replaces the whole table (built aside,
 * so a failure leaves the old one), ADD/REM_MEM_REG change one region. Rings
 * are taken from the device before any mapping they use goes away. Every
 * mapping is charged to the budgets the backend was given (a limit per
 * device, a total shared by the process): a refusal names the limit.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend_priv.h"
#include "vhost-user/vlog.h"

/* v bytes in the largest binary unit it reaches, exact when it can be. */
static const char *vub_size(char *buf, size_t cap, uint64_t v)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	unsigned int u = 0;

	while (u + 1 < sizeof(unit) / sizeof(unit[0]) && v >> (10 * (u + 1)))
		u++;
	if (u == 0 || (v & ((1ull << (10 * u)) - 1)) == 0)
		snprintf(buf, cap, "%llu %s", (unsigned long long)(v >> (10 * u)), unit[u]);
	else
		snprintf(buf, cap, "%.1f %s", (double)v / (double)(1ull << (10 * u)), unit[u]);
	return buf;
}

/*
 * A budget refused a mapping: say which limit, what was asked, what others
 * hold, and how to raise it (the budget's own words). Returns -EDQUOT.
 */
static int vub_refuse_mem(struct vu_backend *b, const struct vu_msg *m,
			  const struct gmem_budget *over, const char *what, uint64_t asked,
			  uint64_t mapped)
{
	char a[24], h[24], l[24];

	return vub_reject(b, m, -EDQUOT,
			  "refused: %s asks %s of guest memory; the %s limit on mapped guest "
			  "memory is %s, %s of it in use (raise it with %s)",
			  what, vub_size(a, sizeof(a), asked), over->name ? over->name : "",
			  vub_size(l, sizeof(l), over->limit), vub_size(h, sizeof(h), mapped),
			  over->raise ? over->raise : "the backend's options");
}

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

	/*
	 * Build the new table aside: on any failure the old one stays. It
	 * replaces the old one, so the limits apply to it alone.
	 */
	gmem_init_like(&fresh, &b->mem);
	gmem_budget_lend(&b->mem);
	for (uint32_t i = 0; i < n; i++) {
		const struct vhost_user_mem_region *r = &t->regions[i];

		ret = gmem_add(&fresh, r, m->fds[i]);
		if (ret == -EDQUOT) {
			uint64_t total = 0;
			char what[48];

			for (uint32_t k = 0; k < n; k++)
				total = t->regions[k].memory_size > UINT64_MAX - total
					    ? UINT64_MAX
					    : total + t->regions[k].memory_size;
			gmem_clear(&fresh);
			/* What others hold: the old table is lent back, not yet reclaimed. */
			snprintf(what, sizeof(what), "a table of %u region%s", n,
				 n == 1 ? "" : "s");
			ret = vub_refuse_mem(b, m, fresh.over, what, total,
					     gmem_budget_used(fresh.over));
			gmem_budget_reclaim(&b->mem);
			return ret;
		}
		if (ret) {
			gmem_clear(&fresh);
			gmem_budget_reclaim(&b->mem);
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
	if (ret == -EDQUOT)
		return vub_refuse_mem(b, m, b->mem.over, "a region", b->mem.over_asked,
				      gmem_budget_used(b->mem.over));
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

int vu_backend_add_mem_budget(struct vu_backend *b, struct gmem_budget *budget)
{
	return gmem_add_budget(&b->mem, budget);
}
