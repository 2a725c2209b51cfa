/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Split virtqueue walker, device side.
 *
 * Security model: the three rings and every descriptor table live in guest
 * memory that the guest may rewrite at any moment. Each guest field is read
 * exactly once into a local and checked before use; descriptors are copied
 * whole before any field is looked at. Every index is bounded by the table it
 * indexes, every chain walk is bounded by the table size, and every buffer is
 * translated through the region table so that no iovec ever points outside
 * mapped guest memory. A violation marks the queue broken; it stays broken
 * until vq_map() sets it up again.
 */
#include "vhost-user/vq.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vhost-user/vlog.h"

/* Largest split queue size the spec allows; also our indirect table bound. */
#define VQ_MAX_NUM 32768u
#define VQ_DESC_SIZE 16u

static uint16_t vq_load16(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static void vq_store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

static bool vq_mapped(const struct vq *q)
{
	return q->desc && q->avail && q->used && q->mem;
}

/* avail->ring[num]: the guest's used_event (EVENT_IDX). */
static uint16_t *vq_used_event(struct vq *q)
{
	return &q->avail->ring[q->num];
}

/* used->ring[num]: our avail_event (EVENT_IDX). */
static uint16_t *vq_avail_event(struct vq *q)
{
	return (uint16_t *)(void *)&q->used->ring[q->num];
}

void vq_init(struct vq *q, unsigned int index)
{
	memset(q, 0, sizeof(*q));
	q->index = index;
	snprintf(q->tag, sizeof(q->tag), "vq %u", index % 1000u);
	q->kick_fd = -1;
	q->call_fd = -1;
	q->err_fd = -1;
	q->wake_fd = -1;
	q->log_limit = &q->own_limit;
}

/* Where q's lines are counted; a vq zeroed without vq_init counts its own. */
static struct vlog_limit *vq_limit(struct vq *q)
{
	return q->log_limit ? q->log_limit : &q->own_limit;
}

/* Buffer descriptors one chain of q may have. */
static uint32_t vq_chain_limit(const struct vq *q)
{
	if (q->max_chain)
		return q->max_chain;
	return q->num > VQ_MAX_CHAIN ? q->num : VQ_MAX_CHAIN;
}

unsigned int vq_pop_cost_max(const struct vq *q)
{
	return vq_chain_limit(q) + 1;
}

/* Translate one ring: aligned in both address spaces and inside one region. */
static void *vq_map_ring(const struct gmem *mem, uint64_t uaddr, uint64_t size, uint64_t align,
			 int *err)
{
	void *p;

	if (uaddr % align) {
		*err = -EINVAL;
		return NULL;
	}
	p = gmem_uva_range(mem, uaddr, size);
	if (!p) {
		*err = -EFAULT;
		return NULL;
	}
	/* The host mapping must keep the alignment for the typed accesses. */
	if ((uintptr_t)p % align) {
		*err = -EINVAL;
		return NULL;
	}
	return p;
}

int vq_map(struct vq *q, const struct gmem *mem)
{
	uint64_t num = q->num;
	void *desc, *avail, *used;
	int err = 0;

	vq_unmap(q);
	if (!mem || !q->addr_set || num == 0)
		return -EINVAL;
	/* The 16-bit free-running indices only wrap cleanly for a power of two. */
	if (num > VQ_MAX_NUM || (num & (num - 1)))
		return -EINVAL;

	desc = vq_map_ring(mem, q->desc_uaddr, VQ_DESC_SIZE * num, 16, &err);
	if (!desc)
		goto fail;
	avail = vq_map_ring(mem, q->avail_uaddr, 4 + 2 * num + 2, 2, &err);
	if (!avail)
		goto fail;
	used = vq_map_ring(mem, q->used_uaddr, 4 + 8 * num + 2, 4, &err);
	if (!used)
		goto fail;

	q->desc = desc;
	q->avail = avail;
	q->used = used;
	q->mem = mem;
	q->used_idx = vq_load16(&q->used->idx);
	q->signalled_used = q->used_idx;
	q->signalled_used_valid = false;
	/* A drain cut short by a disconnect may have left kicks off. */
	q->kicks_off = (vq_load16(&q->used->flags) & VRING_USED_F_NO_NOTIFY) != 0;
	q->broken = false;
	return 0;

fail:
	vlog_limited(vq_limit(q), VLOG_ERR, q->tag,
		     "cannot map ring (num %u, desc 0x%llx, avail 0x%llx, used 0x%llx): %s", q->num,
		     (unsigned long long)q->desc_uaddr, (unsigned long long)q->avail_uaddr,
		     (unsigned long long)q->used_uaddr,
		     err == -EFAULT ? "outside guest memory" : "misaligned");
	return err;
}

void vq_unmap(struct vq *q)
{
	q->desc = NULL;
	q->avail = NULL;
	q->used = NULL;
	q->mem = NULL;
}

void vq_set_broken(struct vq *q, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	if (q->broken)
		return;
	q->broken = true;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* A guest can break its ring again after every reset. */
	vlog_limited(vq_limit(q), VLOG_ERR, q->tag, "queue broken: %s", why);
}

/* Chains available past last_avail; -EIO (and broken) when that exceeds num. */
static int vq_pending(struct vq *q)
{
	uint16_t idx = vq_load16(&q->avail->idx);
	uint16_t n = (uint16_t)(idx - q->last_avail);

	if (n > q->num) {
		vq_set_broken(q, "avail idx %u moved %u past %u, more than num %u", idx, n,
			      q->last_avail, q->num);
		return -EIO;
	}
	return n;
}

int vq_avail_count(struct vq *q)
{
	if (q->broken)
		return -EIO;
	if (!vq_mapped(q))
		return 0;
	return vq_pending(q);
}

/*
 * Append the guest buffer [addr, addr+len) to c, one iovec per region
 * crossed; a piece that continues the last iovec in host memory (same
 * direction) extends it. The whole buffer is checked even when c is full.
 */
__attribute__((noinline)) static int vq_add_pieces(struct vq *q, struct vq_chain *c, uint64_t addr,
						   uint32_t len, bool writable)
{
	uint64_t left = len;

	if (addr + len < addr) {
		vq_set_broken(q, "buffer 0x%llx+%u wraps around", (unsigned long long)addr, len);
		return -EIO;
	}
	while (left) {
		uint64_t chunk = left;
		uint8_t *p = gmem_gpa_to_host(q->mem, addr, &chunk);
		unsigned int n = c->nout + c->nin;
		struct iovec *last = n ? &c->iov[n - 1] : NULL;

		if (!p || chunk == 0 || chunk > left) {
			vq_set_broken(q, "buffer 0x%llx+%u not in guest memory (at 0x%llx)",
				      (unsigned long long)(addr - (len - left)), len,
				      (unsigned long long)addr);
			return -EIO;
		}
		addr += chunk;
		left -= chunk;
		if (c->truncated)
			continue;
		/* nin > 0 means the last iovec is writable (they come last). */
		if (last && (c->nin > 0) == writable &&
		    (uint8_t *)last->iov_base + last->iov_len == p &&
		    last->iov_len <= SIZE_MAX - chunk) {
			last->iov_len += (size_t)chunk;
		} else if (n < VQ_MAX_IOV) {
			c->iov[n].iov_base = p;
			c->iov[n].iov_len = (size_t)chunk;
			if (writable)
				c->nin++;
			else
				c->nout++;
		} else {
			c->truncated = true;
			continue;
		}
		if (writable)
			c->in_len += chunk;
		else
			c->out_len += chunk;
	}
	return 0;
}

/*
 * The common case inline: a buffer inside one region that gets an iovec of
 * its own; anything else (crossing regions, continuing the last iovec, c
 * full or truncated, a wrap, memory not there) is vq_add_pieces's.
 */
static inline int vq_add_buffer(struct vq *q, struct vq_chain *c, uint64_t addr, uint32_t len,
				bool writable)
{
	unsigned int n = c->nout + c->nin;
	uint64_t chunk = len;
	uint8_t *p;

	if (len == 0)
		return 0;
	if (n >= VQ_MAX_IOV || c->truncated || addr + len < addr)
		return vq_add_pieces(q, c, addr, len, writable);
	p = gmem_gpa_to_host(q->mem, addr, &chunk);
	if (!p || chunk != len ||
	    (n > 0 && (c->nin > 0) == writable &&
	     (uint8_t *)c->iov[n - 1].iov_base + c->iov[n - 1].iov_len == p))
		return vq_add_pieces(q, c, addr, len, writable);
	c->iov[n].iov_base = p;
	c->iov[n].iov_len = len;
	if (writable) {
		c->nin++;
		c->in_len += len;
	} else {
		c->nout++;
		c->out_len += len;
	}
	return 0;
}

/*
 * A descriptor table: the ring's own, or an indirect one. An indirect table
 * is contiguous in guest physical memory but may span adjacent regions that
 * are not adjacent on the host; then host is NULL and each descriptor is
 * gathered through the region table.
 */
struct vq_table {
	const uint8_t *host;
	uint64_t gpa;
	uint32_t size; /* entries */
};

/* Whether [gpa, gpa+len) is all guest memory, possibly over several regions. */
static bool vq_gpa_covered(const struct gmem *mem, uint64_t gpa, uint64_t len)
{
	while (len) {
		uint64_t chunk = len;

		if (!gmem_gpa_to_host(mem, gpa, &chunk) || chunk == 0 || chunk > len)
			return false;
		gpa += chunk;
		len -= chunk;
	}
	return true;
}

/* Copy entry i (< t->size) of t: one read of guest memory per byte. */
static int vq_read_desc(const struct vq *q, const struct vq_table *t, uint32_t i,
			struct vring_desc *d)
{
	uint8_t *dst = (uint8_t *)d;
	uint64_t gpa = t->gpa + (uint64_t)i * VQ_DESC_SIZE;
	uint64_t done = 0;

	if (t->host) {
		memcpy(d, t->host + (size_t)i * VQ_DESC_SIZE, sizeof(*d));
		return 0;
	}
	while (done < sizeof(*d)) {
		uint64_t chunk = sizeof(*d) - done;
		const void *p = gmem_gpa_to_host(q->mem, gpa, &chunk);

		if (!p || chunk == 0 || chunk > sizeof(*d) - done)
			return -EIO;
		memcpy(dst + done, p, (size_t)chunk);
		done += chunk;
		gpa += chunk;
	}
	return 0;
}

/* Switch t to the indirect table named by (addr, len); checks it whole. */
static int vq_open_indirect(struct vq *q, uint16_t head, uint64_t addr, uint32_t len,
			    struct vq_table *t)
{
	uint64_t chunk;

	if (len == 0 || len % VQ_DESC_SIZE || len / VQ_DESC_SIZE > VQ_MAX_NUM) {
		vq_set_broken(q, "indirect table of bad length %u at head %u", len, head);
		return -EIO;
	}
	if (addr + len < addr) {
		vq_set_broken(q, "indirect table 0x%llx+%u wraps around", (unsigned long long)addr,
			      len);
		return -EIO;
	}
	/*
	 * One lookup in the common case, the table inside one region (read
	 * through memcpy, so it needs no alignment); else it must still be
	 * all guest memory, gathered entry by entry.
	 */
	chunk = len;
	t->host = gmem_gpa_to_host(q->mem, addr, &chunk);
	if (!t->host || chunk != len) {
		t->host = NULL;
		if (!vq_gpa_covered(q->mem, addr, len)) {
			vq_set_broken(q, "indirect table 0x%llx+%u not in guest memory",
				      (unsigned long long)addr, len);
			return -EIO;
		}
	}
	t->gpa = addr;
	t->size = len / VQ_DESC_SIZE;
	return 0;
}

/* Walk the chain starting at head (already checked < num) into c. */
static int vq_walk(struct vq *q, uint16_t head, struct vq_chain *c)
{
	struct vq_table t = {.host = (const uint8_t *)q->desc, .gpa = 0, .size = q->num};
	uint32_t i = head;
	uint32_t seen = 0;  /* in the current table */
	uint32_t total = 0; /* buffer descriptors in the chain */
	uint32_t reads = 0; /* descriptors read, the indirect one included */
	uint32_t limit = vq_chain_limit(q);
	bool indirect = false;
	bool writable = false; /* by descriptor, zero-length ones included */

	c->head = head;
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	c->truncated = false;

	for (;;) {
		struct vring_desc d;
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;

		/* Without a loop every entry is visited at most once. */
		if (++seen > t.size) {
			vq_set_broken(q, "chain at head %u loops (more than %u descriptors)", head,
				      t.size);
			return -EIO;
		}
		/*
		 * At most one indirect descriptor besides the buffers: what a
		 * pop costs stays within vq_pop_cost_max, broken chains too.
		 */
		if (reads == limit + 1) {
			vq_set_broken(q, "chain at head %u longer than %u descriptors", head,
				      limit);
			return -EIO;
		}
		reads++;
		q->walked++;
		if (vq_read_desc(q, &t, i, &d)) {
			vq_set_broken(q, "indirect table at head %u vanished", head);
			return -EIO;
		}
		addr = le64toh(d.addr);
		len = le32toh(d.len);
		flags = le16toh(d.flags);
		next = le16toh(d.next);

		if (flags & VRING_DESC_F_INDIRECT) {
			if (!q->indirect) {
				vq_set_broken(q, "indirect descriptor without INDIRECT_DESC");
				return -EIO;
			}
			if (indirect) {
				vq_set_broken(q, "nested indirect descriptor at head %u", head);
				return -EIO;
			}
			if (flags & VRING_DESC_F_NEXT) {
				vq_set_broken(q, "indirect descriptor with NEXT at head %u", head);
				return -EIO;
			}
			if (vq_open_indirect(q, head, addr, len, &t))
				return -EIO;
			i = 0;
			seen = 0;
			indirect = true;
			continue;
		}
		/* Every buffer descriptor counts, zero-length ones too: each costs a read. */
		if (++total > limit) {
			vq_set_broken(q, "chain at head %u longer than %u descriptors", head,
				      limit);
			return -EIO;
		}

		if (flags & VRING_DESC_F_WRITE) {
			writable = true;
			if (vq_add_buffer(q, c, addr, len, true))
				return -EIO;
		} else {
			if (writable) {
				vq_set_broken(q, "readable descriptor after writable at head %u",
					      head);
				return -EIO;
			}
			if (vq_add_buffer(q, c, addr, len, false))
				return -EIO;
		}

		if (!(flags & VRING_DESC_F_NEXT))
			return 0;
		if (next >= t.size) {
			vq_set_broken(q, "next %u out of table of %u at head %u", next, t.size,
				      head);
			return -EIO;
		}
		i = next;
	}
}

int vq_pop(struct vq *q, struct vq_chain *c)
{
	uint16_t head;
	int n;

	if (q->broken)
		return -EIO;
	if (!vq_mapped(q))
		return 0;
	n = vq_pending(q);
	if (n == 0 && (q->event_idx || q->kicks_off)) {
		/*
		 * Empty: ask for a kick at the next buffer, then look once more
		 * (vq_set_kick_notify has the full barrier). Without it our store
		 * can still sit in the store buffer when the guest, having
		 * published a new idx, reads the old threshold: no kick, and the
		 * queue stalls. So a 0 from here always means a kick will come.
		 */
		vq_set_kick_notify(q, true);
		n = vq_pending(q);
	}
	if (n <= 0)
		return n;
	if (q->inflight >= q->num) {
		vq_set_broken(q, "more than num %u chains in flight", q->num);
		return -EIO;
	}
	/* Ring entries are read only after the idx that published them. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	head = vq_load16(&q->avail->ring[q->last_avail % q->num]);
	if (head >= q->num) {
		vq_set_broken(q, "head %u out of ring of %u", head, q->num);
		return -EIO;
	}
	if (vq_walk(q, head, c))
		return -EIO;

	q->last_avail++;
	q->inflight++;
	/*
	 * No kicks while we drain (as vhost does): with EVENT_IDX avail_event
	 * stays where the last empty pop left it, so the guest's new buffers
	 * are past it; without, we say so in used->flags. The empty pop that
	 * ends the drain asks for kicks again.
	 */
	if (!q->event_idx && !q->kicks_off)
		vq_set_kick_notify(q, false);
	return 1;
}

int vq_push_batch(struct vq *q, const struct vq_used *elems, unsigned int n)
{
	unsigned int k;

	if (q->broken)
		return -EIO;
	if (!vq_mapped(q))
		return -EIO;
	if (n == 0)
		return 0;
	if (n > q->inflight) {
		vq_set_broken(q, "pushing %u chains with %u in flight", n, q->inflight);
		return -EIO;
	}
	for (k = 0; k < n; k++) {
		if (elems[k].id >= q->num) {
			vq_set_broken(q, "pushing head %u out of ring of %u", elems[k].id, q->num);
			return -EIO;
		}
	}
	for (k = 0; k < n; k++) {
		struct vring_used_elem *e = &q->used->ring[(uint16_t)(q->used_idx + k) % q->num];

		__atomic_store_n(&e->id, htole32(elems[k].id), __ATOMIC_RELAXED);
		__atomic_store_n(&e->len, htole32(elems[k].len), __ATOMIC_RELAXED);
	}
	q->used_idx = (uint16_t)(q->used_idx + n);
	/* The guest must see the elements before the idx that publishes them. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&q->used->idx, htole16(q->used_idx), __ATOMIC_RELAXED);
	q->inflight -= n;
	return 0;
}

int vq_push(struct vq *q, uint16_t head, uint32_t len)
{
	struct vq_used e = {.id = head, .len = len};

	return vq_push_batch(q, &e, 1);
}

/* The spec's need_event: did new pass event since old? */
static bool vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool vq_should_notify(struct vq *q)
{
	uint16_t old = q->signalled_used;
	bool valid = q->signalled_used_valid;

	if (q->broken || !vq_mapped(q))
		return false;
	/* Our used->idx store must be visible before we read the guest's flags. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	if (q->event_idx) {
		q->signalled_used = q->used_idx;
		q->signalled_used_valid = true;
	}
	if (q->notify_on_empty && q->inflight == 0 && vq_load16(&q->avail->idx) == q->last_avail)
		return true;
	if (!q->event_idx)
		return !(vq_load16(&q->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	return vq_need_event(vq_load16(vq_used_event(q)), q->used_idx, old);
}

static int vq_signal(int fd)
{
	uint64_t one = 1;
	ssize_t r;

	do {
		r = write(fd, &one, sizeof(one));
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		/* A saturated counter means a signal is already pending. */
		if (errno == EAGAIN)
			return 0;
		return -errno;
	}
	return r == (ssize_t)sizeof(one) ? 0 : -EIO;
}

int vq_notify(struct vq *q)
{
	if (q->broken)
		return -EIO;
	if (q->call_fd < 0)
		return 0;
	if (!vq_should_notify(q))
		return 0;
	return vq_signal(q->call_fd);
}

int vq_notify_force(struct vq *q)
{
	if (q->broken)
		return -EIO;
	if (q->call_fd < 0)
		return 0;
	return vq_signal(q->call_fd);
}

bool vq_set_kick_notify(struct vq *q, bool enable)
{
	if (q->broken || !vq_mapped(q))
		return false;
	if (!q->event_idx) {
		vq_store16(&q->used->flags, enable ? 0 : VRING_USED_F_NO_NOTIFY);
		q->kicks_off = !enable;
	} else if (enable)
		vq_store16(vq_avail_event(q), q->last_avail);
	if (!enable)
		return false;
	/* A buffer made available before the guest saw our store gets no kick. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vq_load16(&q->avail->idx) != q->last_avail;
}

int vq_drain_kick(struct vq *q)
{
	uint8_t buf[64];
	ssize_t r;

	if (q->kick_fd < 0)
		return 0;
	/*
	 * The fd is non-blocking (the backend made it so): an eventfd drained
	 * by someone else, or a socket below its low-water mark, gives EAGAIN
	 * here instead of a read that never returns. An eventfd gives 8 bytes;
	 * anything else gets one bounded read, the edge-triggered watch does
	 * the rest.
	 */
	do {
		r = read(q->kick_fd, buf, sizeof(buf));
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return -EPIPE;
	if (r < 0 && errno != EAGAIN) {
		int err = errno; /* the log call may change errno */

		vlog_limited(vq_limit(q), VLOG_WARN, q->tag, "reading kick fd: %s",
			     strerror(err));
		return -err;
	}
	return 0;
}

void vq_resume_later(struct vq *q)
{
	uint64_t one = 1;

	if (q->resume)
		return;
	q->resume = true;
	/* EAGAIN: the counter is saturated, a wake-up is pending anyway. */
	if (q->wake_fd >= 0 && write(q->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vlog_limited(vq_limit(q), VLOG_WARN, q->tag, "cannot wake the loop: %s",
			     strerror(errno));
}

/* Copy len bytes between flat and the iovec's bytes from off: into it or out of it. */
static size_t iov_copy(const struct iovec *iov, unsigned int n, size_t off, uint8_t *flat,
		       size_t len, bool to_iov)
{
	size_t done = 0;
	unsigned int k;

	for (k = 0; k < n && done < len; k++) {
		size_t l = iov[k].iov_len;
		uint8_t *piece = iov[k].iov_base;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len - done)
			l = len - done;
		if (to_iov)
			memcpy(piece + off, flat + done, l);
		else
			memcpy(flat + done, piece + off, l);
		done += l;
		off = 0;
	}
	return done;
}

size_t vq_iov_read_pieces(const struct iovec *iov, unsigned int n, size_t off, void *buf,
			  size_t len)
{
	return iov_copy(iov, n, off, buf, len, false);
}

size_t vq_iov_write(const struct iovec *iov, unsigned int n, size_t off, const void *buf,
		    size_t len)
{
	/* Only read from when to_iov: iov_copy takes one flat pointer for both ways. */
	return iov_copy(iov, n, off, (uint8_t *)(uintptr_t)buf, len, true);
}
