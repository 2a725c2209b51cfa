/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Split virtqueue, device side. Everything in guest memory is hostile: each
 * field is read once into a local, every index and address is checked, and
 * any violation marks the queue broken (logged once), after which every
 * datapath call on it fails with -EIO until the ring is set up again.
 * A struct vq is its owner's (the backend's): vq never opens or closes its
 * fds. Not thread-safe: one ring, one thread.
 */
#ifndef VQ_H
#define VQ_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include <linux/virtio_ring.h>

#include "gmem.h"
#include "vlog.h"

/*
 * Most descriptors one chain may have, its direct and indirect ones and
 * zero-length ones included, when the queue is smaller (else the queue
 * size): the spec allows chains as long as the queue, and an indirect table
 * lets a chain be longer than a small queue (the Linux driver does that).
 * It bounds what one chain costs to read. A device that knows its requests
 * need fewer sets a lower bound (vq.max_chain).
 */
#define VQ_MAX_CHAIN 1024

/*
 * Most iovecs kept for one chain (readable + writable). Buffers adjacent in
 * host memory share an iovec, so only a chain of more than VQ_MAX_IOV
 * scattered pieces (or buffers crossing regions) has more; its iovecs past
 * VQ_MAX_IOV are dropped and truncated is set: the chain is still valid,
 * the device sees only its first VQ_MAX_IOV pieces.
 */
#define VQ_MAX_IOV 1024

/*
 * One popped chain: iov[0..nout) readable, iov[nout..nout+nin) writable.
 * The iovecs point into guest memory: valid while the ring stays mapped
 * (until queue_stop for a device). The struct is the caller's (it is large:
 * keep it off small stacks).
 */
struct vq_chain {
	uint16_t head; /* id to push back */
	unsigned int nout;
	unsigned int nin;
	uint64_t out_len; /* sum of the readable bytes in iov */
	uint64_t in_len;  /* sum of the writable bytes in iov */
	bool truncated;	  /* pieces past VQ_MAX_IOV iovecs were left out */
	struct iovec iov[VQ_MAX_IOV];
};

struct vq_used {
	uint32_t id;
	uint32_t len;
};

struct vq {
	unsigned int index;
	char tag[16]; /* "vq N", for logs */

	/* As the frontend set them. */
	uint16_t num; /* 0 = not set */
	uint32_t addr_flags;
	uint64_t desc_uaddr, avail_uaddr, used_uaddr, log_gaddr;
	bool addr_set;

	/* Translated by vq_map(); NULL when not mapped. */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;

	uint16_t last_avail;	 /* next avail index to pop */
	uint16_t used_idx;	 /* our copy of used->idx */
	uint16_t signalled_used; /* used_idx at the last call (EVENT_IDX) */
	bool signalled_used_valid;
	unsigned int inflight; /* popped, not yet pushed */

	int kick_fd; /* -1 when none */
	int call_fd;
	int err_fd;

	bool kicks_off; /* without EVENT_IDX: we set VRING_USED_F_NO_NOTIFY */
	bool resume;	/* vq_resume_later() was called: the backend kicks the device again */
	int wake_fd;	/* the backend's eventfd that wakes its loop; -1 when none */
	bool started;	/* kick fd received and ring usable */
	bool enabled;	/* SET_VRING_ENABLE */
	bool broken;
	/*
	 * Most buffer descriptors per chain (0: the generic bound). vq_init
	 * clears it; a device sets it when it takes the ring (queue_start).
	 */
	uint32_t max_chain;
	/*
	 * Descriptors read so far (ring and indirect ones, the chains that
	 * broke the queue included): the work a device budgets by.
	 */
	uint64_t walked;
	/*
	 * Lines about this ring (a guest or frontend can cause them at will)
	 * go through *log_limit: own_limit after vq_init; the backend points
	 * it at a limit that outlives the ring's resets.
	 */
	struct vlog_limit *log_limit;
	struct vlog_limit own_limit;

	/* Negotiated ring features. */
	bool event_idx;
	bool indirect;
	bool notify_on_empty;

	const struct gmem *mem;
};

/*
 * Reset to the state of a ring nobody set up; fds set to -1 (not closed: the
 * owner closes them first).
 */
void vq_init(struct vq *q, unsigned int index);

/*
 * Translate the ring addresses through mem (user addresses), checking
 * alignment (desc 16, avail 2, used 4) and that each ring lies inside one
 * region; then take used_idx from used->idx. Clears broken on success.
 * mem must stay as it is while q is mapped (vq_unmap before changing it).
 * -EINVAL when num or the addresses are not set, num is not a power of two
 * up to 32768, or an address is misaligned; -EFAULT when a ring is not
 * inside one region of mem. On an error q is unmapped; a ring outside
 * memory or misaligned is logged.
 */
int vq_map(struct vq *q, const struct gmem *mem);

/* Forget the translated pointers (memory is about to change). Never fails. */
void vq_unmap(struct vq *q);

/*
 * Most descriptors one vq_pop() on q reads, whatever the guest wrote: the
 * chain bound plus one indirect descriptor. A device that checks this
 * against what is left of its budget before each pop never overruns it.
 */
unsigned int vq_pop_cost_max(const struct vq *q);

/* Mark broken and log why (once, rate-limited); a no-op when already broken. */
void vq_set_broken(struct vq *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Number of chains the guest has made available and we have not popped; 0
 * when q is not mapped; -EIO when broken (or the avail index is impossible,
 * which breaks it).
 */
int vq_avail_count(struct vq *q);

/*
 * Pop the next available chain into c. Returns 1 when a chain was popped,
 * 0 when the ring is empty (or q is not mapped), -EIO when the ring is (or
 * just became) broken.
 * While the device drains, the guest need not kick: without EVENT_IDX the
 * first pop sets VRING_USED_F_NO_NOTIFY; with it avail_event is left alone.
 * A 0 turns kicks back on (clears the flag, or avail_event = last_avail)
 * and checks again after a full barrier, so a caller may sleep on the kick
 * fd after 0. A device that needs kicks must therefore pop until 0.
 */
int vq_pop(struct vq *q, struct vq_chain *c);

/*
 * Return a popped chain: write the used element and publish used->idx. 0, or
 * -EIO when q is broken or not mapped, or when head is out of the ring or
 * more chains are pushed than are in flight (both break q). Does not
 * notify: see vq_notify.
 */
int vq_push(struct vq *q, uint16_t head, uint32_t len);

/* Same for n chains with a single used->idx update; n 0 is a no-op. All or none are pushed. */
int vq_push_batch(struct vq *q, const struct vq_used *elems, unsigned int n);

/*
 * Whether the guest wants an interrupt now (EVENT_IDX, NO_INTERRUPT,
 * NOTIFY_ON_EMPTY); false when q is broken or not mapped. With EVENT_IDX it
 * records the used index as signalled: call it only when about to signal.
 */
bool vq_should_notify(struct vq *q);

/*
 * Signal the call fd if vq_should_notify(). 0 (also with no call fd, or a
 * saturated eventfd), -EIO when q is broken, or -errno from the write.
 */
int vq_notify(struct vq *q);

/* Signal the call fd unconditionally (after a ring (re)starts); errors as vq_notify. */
int vq_notify_force(struct vq *q);

/*
 * Ask the guest for kicks (enable=true) or not. With enable=true returns
 * true when buffers arrived meanwhile (re-check after a full barrier);
 * false otherwise, and when q is broken or not mapped (nothing written).
 */
bool vq_set_kick_notify(struct vq *q, bool enable);

/*
 * Consume a pending kick from kick_fd, which must be non-blocking. 0 (also
 * with no kick fd, or nothing pending), -EPIPE when the fd reached end of
 * file (its writer hung up), or -errno from read.
 */
int vq_drain_kick(struct vq *q);

/*
 * The device stopped on its per-wakeup budget with work left on q: the
 * backend calls queue_kick again on its next dispatch, after every other
 * ready source had its turn, so no queue delays another by more than one
 * budget. The guest need not kick meanwhile (kicks stay off until a pop
 * finds the ring empty).
 */
void vq_resume_later(struct vq *q);

/*
 * Copy between a chain's iovecs and a flat buffer, starting at byte off of
 * the iovecs. Returns the bytes copied: less than len when the iovecs end
 * first. For a chain c: the readable part is (c->iov, c->nout), the
 * writable part (c->iov + c->nout, c->nin).
 */
size_t vq_iov_read_pieces(const struct iovec *iov, unsigned int n, size_t off, void *buf,
			  size_t len);

/*
 * vq_iov_read_pieces with the common case inline: all of it inside the
 * first iovec (the layout every driver uses for a request's header and
 * payload), one copy without the walk.
 */
static inline size_t vq_iov_read(const struct iovec *iov, unsigned int n, size_t off, void *buf,
				 size_t len)
{
	if (n > 0 && len > 0 && off <= iov[0].iov_len && len <= iov[0].iov_len - off) {
		memcpy(buf, (const uint8_t *)iov[0].iov_base + off, len);
		return len;
	}
	return vq_iov_read_pieces(iov, n, off, buf, len);
}

size_t vq_iov_write(const struct iovec *iov, unsigned int n, size_t off, const void *buf,
		    size_t len);

#endif
