/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The frontend's rings: set-up, their messages, and the driver's side. */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fe_priv.h"
#include "vhost-user/vlog.h"

static struct fe_ring *ring_of(struct fe *f, unsigned int q)
{
	return q < FE_MAX_QUEUES && f->rings[q].ready ? &f->rings[q] : NULL;
}

static const struct fe_ring *cring_of(const struct fe *f, unsigned int q)
{
	return q < FE_MAX_QUEUES && f->rings[q].ready ? &f->rings[q] : NULL;
}

static bool has_event_idx(const struct fe *f)
{
	return (f->features & FE_F_EVENT_IDX) != 0;
}

/* used_event lives after the avail ring, avail_event after the used ring. */
static uint16_t *used_event_of(struct fe_ring *r)
{
	return (uint16_t *)&r->avail->ring[r->num];
}

static uint16_t *avail_event_of(struct fe_ring *r)
{
	return (uint16_t *)&r->used->ring[r->num];
}

static void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

static uint16_t load16(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

void fe_ring_init(struct fe_ring *r)
{
	memset(r, 0, sizeof(*r));
	r->kick_fd = -1;
	r->call_fd = -1;
}

void fe_ring_fini(struct fe_ring *r)
{
	if (r->kick_fd >= 0)
		close(r->kick_fd);
	if (r->call_fd >= 0)
		close(r->call_fd);
	free(r->next);
	free(r->heads);
	fe_ring_init(r);
}

void fe_ring_disconnected(struct fe_ring *r)
{
	r->started = false;
}

int fe_ring_setup(struct fe *f, unsigned int q, uint16_t num)
{
	struct fe_ring *r;
	eventfd_t junk;
	uint64_t avail_size = 6 + 2 * (uint64_t)num;
	uint64_t used_size = 6 + 8 * (uint64_t)num;

	if (q >= FE_MAX_QUEUES || num == 0 || (num & (num - 1)))
		return -EINVAL;
	r = &f->rings[q];

	if (!r->ready || r->num != num) {
		struct vring_desc *desc;
		struct vring_avail *avail;
		struct vring_used *used;
		uint16_t *next;
		struct fe_head *heads;

		/* A new layout: the old ring memory stays unused in the arena. */
		desc = fe_alloc(f, 16 * (uint64_t)num, 16, &r->desc_gpa);
		avail = fe_alloc(f, avail_size, 2, &r->avail_gpa);
		used = fe_alloc(f, used_size, 4, &r->used_gpa);
		next = calloc(num, sizeof(*next));
		heads = calloc(num, sizeof(*heads));
		if (!desc || !avail || !used || !next || !heads) {
			free(next);
			free(heads);
			r->ready = false;
			return -ENOMEM;
		}
		free(r->next);
		free(r->heads);
		r->desc = desc;
		r->avail = avail;
		r->used = used;
		r->next = next;
		r->heads = heads;
		r->num = num;
	} else {
		/* Same layout: keep each head's indirect table. */
		for (unsigned int i = 0; i < num; i++) {
			r->heads[i].in_flight = false;
			r->heads[i].ndesc = 0;
			r->heads[i].in_len = 0;
		}
	}
	memset(r->desc, 0, 16 * (size_t)num);
	memset(r->avail, 0, (size_t)avail_size);
	memset(r->used, 0, (size_t)used_size);

	if (r->kick_fd < 0)
		r->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->call_fd < 0)
		r->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->kick_fd < 0 || r->call_fd < 0) {
		r->ready = false;
		return -errno;
	}
	/* Nothing from an earlier life of this ring may look like a signal. */
	while (eventfd_read(r->call_fd, &junk) == 0)
		;
	while (eventfd_read(r->kick_fd, &junk) == 0)
		;

	for (unsigned int i = 0; i < num; i++)
		r->next[i] = (uint16_t)(i + 1);
	r->free_head = 0;
	r->num_free = num;
	r->inflight = 0;
	r->avail_idx = 0;
	r->kicked_idx = 0;
	r->last_used = 0;
	r->base = 0;
	r->base_known = false;
	r->irq_off = false;
	r->started = false;
	r->ready = true;
	return 0;
}

/* ------------------------------------------------------------------------ */

static int ring_state_msg(struct fe *f, uint32_t request, unsigned int q, uint32_t num)
{
	struct vhost_user_vring_state s = {.index = q, .num = num};

	return fe_set(f, request, &s, sizeof(s), NULL, 0);
}

int fe_ring_set_num(struct fe *f, unsigned int q)
{
	struct fe_ring *r = ring_of(f, q);

	if (!r)
		return -EINVAL;
	return ring_state_msg(f, VHOST_USER_SET_VRING_NUM, q, r->num);
}

int fe_ring_set_base(struct fe *f, unsigned int q)
{
	struct fe_ring *r = ring_of(f, q);

	if (!r)
		return -EINVAL;
	/*
	 * Without an answer to GET_VRING_BASE (the backend went away), go on
	 * from what the device completed, as a VMM does; read it now, not at
	 * the disconnect, as the old backend may push until it lets go.
	 */
	if (!r->base_known)
		r->base = load16(&r->used->idx);
	r->base_known = false;
	return ring_state_msg(f, VHOST_USER_SET_VRING_BASE, q, r->base);
}

int fe_ring_set_addr(struct fe *f, unsigned int q)
{
	struct fe_ring *r = ring_of(f, q);
	struct vhost_user_vring_addr a;

	if (!r)
		return -EINVAL;
	a = (struct vhost_user_vring_addr){
	    .index = q,
	    .flags = 0,
	    .desc_user_addr = (uint64_t)(uintptr_t)r->desc,
	    .used_user_addr = (uint64_t)(uintptr_t)r->used,
	    .avail_user_addr = (uint64_t)(uintptr_t)r->avail,
	    .log_guest_addr = r->used_gpa,
	};
	return fe_set(f, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
}

static int ring_fd_msg(struct fe *f, uint32_t request, unsigned int q, int fd)
{
	uint64_t v = q;

	return fe_set(f, request, &v, sizeof(v), &fd, 1);
}

int fe_ring_set_kick(struct fe *f, unsigned int q)
{
	struct fe_ring *r = ring_of(f, q);
	int ret;

	if (!r)
		return -EINVAL;
	ret = ring_fd_msg(f, VHOST_USER_SET_VRING_KICK, q, r->kick_fd);
	if (ret == 0)
		r->started = true;
	return ret;
}

int fe_ring_set_call(struct fe *f, unsigned int q)
{
	struct fe_ring *r = ring_of(f, q);

	if (!r)
		return -EINVAL;
	return ring_fd_msg(f, VHOST_USER_SET_VRING_CALL, q, r->call_fd);
}

int fe_ring_set_enable(struct fe *f, unsigned int q, bool enable)
{
	if (q >= FE_MAX_QUEUES)
		return -EINVAL;
	return ring_state_msg(f, VHOST_USER_SET_VRING_ENABLE, q, enable ? 1 : 0);
}

int fe_ring_get_base(struct fe *f, unsigned int q, uint16_t *base)
{
	struct vhost_user_vring_state s = {.index = q, .num = 0};
	struct vhost_user_vring_state rep;
	struct fe_ring *r = ring_of(f, q);
	int ret;

	if (!r)
		return -EINVAL;
	ret = fe_get(f, VHOST_USER_GET_VRING_BASE, &s, sizeof(s), &rep, sizeof(rep));
	if (ret < 0)
		return ret;
	if (rep.index != q || rep.num > UINT16_MAX) {
		vlog_warn(FE_TAG, "GET_VRING_BASE %u answered index %u num %u", q, rep.index,
			  rep.num);
		return -EPROTO;
	}
	r->base = (uint16_t)rep.num;
	r->base_known = true;
	r->started = false;
	if (base)
		*base = r->base;
	return 0;
}

int fe_ring_kick_fd(const struct fe *f, unsigned int q)
{
	const struct fe_ring *r = cring_of(f, q);

	return r ? r->kick_fd : -1;
}

int fe_ring_call_fd(const struct fe *f, unsigned int q)
{
	const struct fe_ring *r = cring_of(f, q);

	return r ? r->call_fd : -1;
}

int fe_ring_gpas(const struct fe *f, unsigned int q, uint64_t *desc, uint64_t *avail,
		 uint64_t *used)
{
	const struct fe_ring *r = cring_of(f, q);

	if (!r)
		return -EINVAL;
	if (desc)
		*desc = r->desc_gpa;
	if (avail)
		*avail = r->avail_gpa;
	if (used)
		*used = r->used_gpa;
	return 0;
}

/* ------------------------------------------------------------------------ */

/* Walks the pieces of a chain: every buffer, split at seg_max bytes. */
struct piece_iter {
	const struct fe_sg *out, *in;
	unsigned int nout, nin;
	uint32_t seg_max;
	unsigned int buf; /* index over out then in */
	uint32_t off;	  /* inside the current buffer */
};

/* Next piece: 1 with gpa/len/write set, 0 at the end. */
static int piece_next(struct piece_iter *it, uint64_t *gpa, uint32_t *len, bool *write)
{
	const struct fe_sg *b;
	uint32_t left;

	if (it->buf >= it->nout + it->nin)
		return 0;
	*write = it->buf >= it->nout;
	b = *write ? &it->in[it->buf - it->nout] : &it->out[it->buf];
	left = b->len - it->off;
	*gpa = b->gpa + it->off;
	*len = it->seg_max && left > it->seg_max ? it->seg_max : left;
	it->off += *len;
	if (it->off >= b->len) {
		it->buf++;
		it->off = 0;
	}
	return 1;
}

static uint64_t count_pieces(const struct fe_sg *b, unsigned int n, uint32_t seg_max)
{
	uint64_t total = 0;

	for (unsigned int i = 0; i < n; i++)
		total += seg_max && b[i].len > seg_max
			     ? (b[i].len + (uint64_t)seg_max - 1) / seg_max
			     : 1;
	return total;
}

static void put_desc(struct vring_desc *d, uint64_t gpa, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	d->addr = htole64(gpa);
	d->len = htole32(len);
	d->flags = htole16(flags);
	d->next = htole16(next);
}

int fe_ring_add(struct fe *f, unsigned int q, const struct fe_sg *out, unsigned int nout,
		const struct fe_sg *in, unsigned int nin, const struct fe_add_opts *opts,
		uint16_t *head_out)
{
	struct fe_ring *r = ring_of(f, q);
	uint32_t seg_max = opts ? opts->seg_max : 0;
	bool indirect = opts && (opts->flags & FE_ADD_INDIRECT);
	struct piece_iter it = {.out = out, .in = in, .nout = nout, .nin = nin, .seg_max = seg_max};
	uint64_t total, gpa, in_len = 0;
	uint32_t len;
	bool write;
	uint16_t head, ndesc;

	if (!r || (nout && !out) || (nin && !in))
		return -EINVAL;
	total = count_pieces(out, nout, seg_max) + count_pieces(in, nin, seg_max);
	if (total == 0 || total > (indirect ? FE_MAX_INDIRECT : r->num))
		return -EINVAL;
	ndesc = indirect ? 1 : (uint16_t)total;
	if (ndesc > r->num_free)
		return -ENOSPC;
	for (unsigned int i = 0; i < nin; i++)
		in_len += in[i].len;

	head = r->free_head;
	if (indirect) {
		struct fe_head *h = &r->heads[head];
		unsigned int k = 0;

		if (!h->ind) {
			h->ind = fe_alloc(f, FE_MAX_INDIRECT * sizeof(struct vring_desc), 16,
					  &h->ind_gpa);
			if (!h->ind)
				return -ENOMEM;
		}
		while (piece_next(&it, &gpa, &len, &write)) {
			uint16_t fl = (uint16_t)((write ? VRING_DESC_F_WRITE : 0) |
						 (k + 1 < total ? VRING_DESC_F_NEXT : 0));

			put_desc(&h->ind[k], gpa, len, fl, (uint16_t)(k + 1 < total ? k + 1 : 0));
			k++;
		}
		put_desc(&r->desc[head], h->ind_gpa, (uint32_t)(total * sizeof(struct vring_desc)),
			 VRING_DESC_F_INDIRECT, 0);
		r->free_head = r->next[head];
	} else {
		uint16_t cur = head;
		unsigned int k = 0;

		while (piece_next(&it, &gpa, &len, &write)) {
			uint16_t fl = (uint16_t)((write ? VRING_DESC_F_WRITE : 0) |
						 (k + 1 < total ? VRING_DESC_F_NEXT : 0));

			put_desc(&r->desc[cur], gpa, len, fl,
				 (uint16_t)(k + 1 < total ? r->next[cur] : 0));
			cur = r->next[cur];
			k++;
		}
		r->free_head = cur;
	}
	r->num_free -= ndesc;
	r->heads[head].in_flight = true;
	r->heads[head].ndesc = ndesc;
	r->heads[head].in_len = in_len;
	r->inflight++;

	/* Publish: the entry, then (release) the index the device reads. */
	store16(&r->avail->ring[r->avail_idx & (r->num - 1)], head);
	r->avail_idx++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	store16(&r->avail->idx, r->avail_idx);
	if (head_out)
		*head_out = head;
	return 0;
}

int fe_ring_kick(struct fe *f, unsigned int q, bool force)
{
	struct fe_ring *r = ring_of(f, q);
	uint16_t new_idx, old_idx;
	bool need;

	if (!r)
		return -EINVAL;
	/* The device's suppression state must be read after our avail->idx store. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	new_idx = r->avail_idx;
	old_idx = r->kicked_idx;
	r->kicked_idx = new_idx;
	if (new_idx == old_idx) {
		need = false; /* nothing new to tell */
	} else if (has_event_idx(f)) {
		uint16_t ev = load16(avail_event_of(r));

		need = (uint16_t)(new_idx - ev - 1) < (uint16_t)(new_idx - old_idx);
	} else {
		need = !(load16(&r->used->flags) & VRING_USED_F_NO_NOTIFY);
	}
	if (!need && !force)
		return 0;
	if (eventfd_write(r->kick_fd, 1) < 0)
		return -errno;
	return 1;
}

int fe_ring_get_used(struct fe *f, unsigned int q, uint32_t *id, uint32_t *len)
{
	struct fe_ring *r = ring_of(f, q);
	struct vring_used_elem *e;
	struct fe_head *h;
	uint16_t idx, cur;
	uint32_t eid, elen;

	if (!r)
		return -EINVAL;
	idx = le16toh(__atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE));
	if (idx == r->last_used)
		return 0;
	if ((uint16_t)(idx - r->last_used) > r->inflight) {
		vlog_warn(FE_TAG, "ring %u: used idx %u, %u taken, only %u in flight", q, idx,
			  r->last_used, r->inflight);
		return -EPROTO;
	}
	e = &r->used->ring[r->last_used & (r->num - 1)];
	eid = le32toh(__atomic_load_n(&e->id, __ATOMIC_RELAXED));
	elen = le32toh(__atomic_load_n(&e->len, __ATOMIC_RELAXED));
	if (eid >= r->num || !r->heads[eid].in_flight) {
		vlog_warn(FE_TAG, "ring %u: used id %u is no chain in flight", q, eid);
		return -EPROTO;
	}
	h = &r->heads[eid];
	if (elen > h->in_len) {
		vlog_warn(FE_TAG, "ring %u: used len %u > %llu writable bytes", q, elen,
			  (unsigned long long)h->in_len);
		return -EPROTO;
	}

	/* Give the descriptors back, following our own links. */
	cur = (uint16_t)eid;
	for (unsigned int i = 1; i < h->ndesc; i++)
		cur = r->next[cur];
	r->next[cur] = r->free_head;
	r->free_head = (uint16_t)eid;
	r->num_free += h->ndesc;
	h->in_flight = false;
	r->inflight--;
	r->last_used++;

	if (has_event_idx(f) && !r->irq_off) {
		/* Ask to be told about the next entry, then look again (full barrier). */
		store16(used_event_of(r), r->last_used);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	if (id)
		*id = eid;
	if (len)
		*len = elen;
	return 1;
}

int fe_ring_wait_call(struct fe *f, unsigned int q, int timeout_ms)
{
	struct fe_ring *r = ring_of(f, q);
	eventfd_t v;
	int ret;

	if (!r)
		return -EINVAL;
	ret = fe_poll_in(r->call_fd, timeout_ms);
	if (ret == 0)
		return -ETIMEDOUT;
	if (ret < 0)
		return ret;
	if (eventfd_read(r->call_fd, &v) < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	return v > INT_MAX ? INT_MAX : (int)v;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The clock is read only after a wake-up that brought nothing (the deadline
 * then runs from there, so a wait lasts at most twice timeout_ms): a clock
 * read costs an emulated device access in the VM rig, and the benchmarks
 * measure the daemon, not this driver.
 */
int fe_ring_wait_used(struct fe *f, unsigned int q, int timeout_ms, uint32_t *id, uint32_t *len)
{
	int64_t deadline = -1, left = timeout_ms;
	bool timed_out = timeout_ms <= 0;

	for (;;) {
		int ret = fe_ring_get_used(f, q, id, len);

		if (ret != 0)
			return ret;
		if (timed_out)
			return -ETIMEDOUT;
		if (deadline >= 0) {
			left = deadline - mono_ms();
			if (left <= 0)
				return -ETIMEDOUT;
		}
		ret = fe_ring_wait_call(f, q, (int)left);
		if (ret == -ETIMEDOUT)
			timed_out = true; /* one last look at the ring */
		else if (ret < 0)
			return ret;
		else if (deadline < 0)
			deadline = mono_ms() + timeout_ms;
	}
}

void fe_ring_set_interrupts(struct fe *f, unsigned int q, bool on)
{
	struct fe_ring *r = ring_of(f, q);

	if (!r)
		return;
	r->irq_off = !on;
	store16(&r->avail->flags, on ? 0 : VRING_AVAIL_F_NO_INTERRUPT);
	/* An index already passed is never reached again: no interrupt. */
	store16(used_event_of(r), on ? r->last_used : (uint16_t)(r->last_used - 1));
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

unsigned int fe_ring_inflight(const struct fe *f, unsigned int q)
{
	const struct fe_ring *r = cring_of(f, q);

	return r ? r->inflight : 0;
}

unsigned int fe_ring_num_free(const struct fe *f, unsigned int q)
{
	const struct fe_ring *r = cring_of(f, q);

	return r ? r->num_free : 0;
}

uint16_t fe_ring_avail_idx(const struct fe *f, unsigned int q)
{
	const struct fe_ring *r = cring_of(f, q);

	return r ? r->avail_idx : 0;
}

uint16_t fe_ring_last_used(const struct fe *f, unsigned int q)
{
	const struct fe_ring *r = cring_of(f, q);

	return r ? r->last_used : 0;
}

bool fe_ring_event_idx(const struct fe *f, unsigned int q)
{
	return cring_of(f, q) && has_event_idx(f);
}
