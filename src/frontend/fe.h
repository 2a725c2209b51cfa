/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A vhost-user frontend, written from the frontend's side: it plays the VMM
 * (the control messages on the unix socket, guest memory in memfds, the
 * eventfds) and the guest driver (split rings in that memory). Used by the
 * integration tests and by the command-line frontend tool.
 *
 * One struct fe is one frontend: guest memory and rings live as long as it
 * does; the connection to a backend can be made, dropped and made again
 * (fe_connect / fe_disconnect), as a VMM reconnecting keeps its guest.
 *
 * Everything is synchronous: every wait is a poll() bounded by the frontend's
 * timeout (fe_set_timeout), so a silent backend fails a call with
 * -ETIMEDOUT instead of hanging. Functions return 0 (or a count) or -errno:
 *   -ETIMEDOUT   nothing came in time
 *   -EPROTO      the backend broke the protocol (bad reply flags, request id,
 *                size, fds; a used ring entry for no chain in flight, ...)
 *   -EREMOTEIO   the backend answered a need-reply ack with non-zero
 *   -ECONNRESET  the backend closed the connection
 *   -ENOTCONN    no connection
 * Sends use MSG_NOSIGNAL: a backend that went away gives -EPIPE, not SIGPIPE.
 */
#ifndef FE_H
#define FE_H

#include <stdbool.h>
#include <stdint.h>

#include "vhost-user/vhost_user.h"

struct fe;

#define FE_MAX_REGIONS 8   /* guest memory regions of one frontend */
#define FE_MAX_QUEUES 8	   /* rings of one frontend */
#define FE_MAX_INDIRECT 64 /* entries of one indirect table */
#define FE_DEFAULT_TIMEOUT_MS 5000

/* Virtio feature bits the frontend itself cares about. */
#define FE_F_NOTIFY_ON_EMPTY (1ull << 24)
#define FE_F_INDIRECT_DESC (1ull << 28)
#define FE_F_EVENT_IDX (1ull << 29)
#define FE_F_PROTOCOL_FEATURES (1ull << VHOST_USER_F_PROTOCOL_FEATURES)
#define FE_F_VERSION_1 (1ull << 32)

/* ------------------------------------------------------------------------ */
/* Guest memory */

/*
 * One region: guest physical address, size, and where it starts in its
 * memfd (gpa and offset page aligned). fd_size is the memfd's size (0:
 * mmap_offset + size); bytes of the memfd outside the region are filled
 * with 0xa5, so a backend that ignores mmap_offset reads garbage. The
 * frontend's user address of a region is where this process mapped it.
 */
struct fe_region_spec {
	uint64_t gpa;
	uint64_t size;
	uint64_t mmap_offset;
	uint64_t fd_size;
};

struct fe_mem_spec {
	unsigned int nregions;
	struct fe_region_spec regions[FE_MAX_REGIONS];
};

/*
 * The default layout: region 0 at gpa 0, 4 MiB, offset 0; region 1 at gpa
 * 4 GiB, 4 MiB, at offset 1 MiB of a 6 MiB memfd. Both gpas differ from the
 * user addresses.
 */
void fe_mem_spec_default(struct fe_mem_spec *s);

/* Create a frontend with guest memory laid out as spec (NULL: the default). */
int fe_new(struct fe **out, const struct fe_mem_spec *spec);

/* Disconnect, close every fd, unmap guest memory, free. NULL is a no-op. */
void fe_free(struct fe *f);

/*
 * Allocate size bytes of guest memory aligned to align (a power of 2, 0 means
 * 8), never crossing a region. Allocations go round-robin over the regions
 * that have room, so rings and buffers spread over all of them; nothing is
 * ever freed. Returns the pointer and stores the gpa; NULL when full.
 */
void *fe_alloc(struct fe *f, uint64_t size, uint64_t align, uint64_t *gpa);

/* The same inside region i only. */
void *fe_alloc_in(struct fe *f, unsigned int i, uint64_t size, uint64_t align, uint64_t *gpa);

/* Pointer to [gpa, gpa + len) when all of it lies in one region, else NULL. */
void *fe_gpa_to_ptr(const struct fe *f, uint64_t gpa, uint64_t len);

/* The gpa of a pointer into guest memory; -EFAULT when p is not in it. */
int fe_ptr_to_gpa(const struct fe *f, const void *p, uint64_t *gpa);

unsigned int fe_nregions(const struct fe *f);

/* Region i as sent on the wire (user address = where we mapped it). */
int fe_region(const struct fe *f, unsigned int i, struct vhost_user_mem_region *r);

/* The memfd of region i (still owned by f), or -1. */
int fe_region_fd(const struct fe *f, unsigned int i);

/* ------------------------------------------------------------------------ */
/* Connection and messages */

/*
 * Connect to the backend listening at path, retrying while the socket does
 * not exist or refuses (the daemon is starting) for up to timeout_ms.
 * -EISCONN when already connected.
 */
int fe_connect(struct fe *f, const char *path, int timeout_ms);

/* Use an already connected socket (takes fd, also on error). */
int fe_attach(struct fe *f, int fd);

/*
 * Close the connection and the backend channel. Guest memory, rings and
 * eventfds stay, for a later fe_connect and fe_start (see fe_ring_set_base).
 */
void fe_disconnect(struct fe *f);

bool fe_connected(const struct fe *f);
int fe_sock(const struct fe *f); /* -1 when not connected */

/* Bound on every wait for the backend (replies, used entries, channel). */
void fe_set_timeout(struct fe *f, int timeout_ms);

/*
 * Ask for an ack (need-reply) on every set-type message and fail the call
 * with -EREMOTEIO when it is non-zero. fe_start turns this on when REPLY_ACK
 * was negotiated; only meaningful then.
 */
void fe_set_acks(struct fe *f, bool on);

/* Send one request: version flag | extra_flags, payload, fds (not closed). */
int fe_send(struct fe *f, uint32_t request, uint32_t extra_flags, const void *payload,
	    uint32_t size, const int *fds, unsigned int nfds);

/*
 * Send arbitrary bytes as a message: hdr as given (size may lie), then len
 * payload bytes, fds with the header. For tests of malformed input.
 */
int fe_send_raw(struct fe *f, const struct vhost_user_hdr *hdr, const void *payload, uint32_t len,
		const int *fds, unsigned int nfds);

/*
 * Wait for the reply to request: flags exactly 0x5, the same request id,
 * exactly size payload bytes, no fds; otherwise -EPROTO.
 */
int fe_recv_reply(struct fe *f, uint32_t request, void *reply, uint32_t size);

/* A request that always has a reply (GET_*): send, then fe_recv_reply. */
int fe_get(struct fe *f, uint32_t request, const void *payload, uint32_t size, void *reply,
	   uint32_t reply_size);

/* A set-type request: send; with acks on, ask for and check the ack. */
int fe_set(struct fe *f, uint32_t request, const void *payload, uint32_t size, const int *fds,
	   unsigned int nfds);

int fe_get_u64(struct fe *f, uint32_t request, uint64_t *val);
int fe_set_u64(struct fe *f, uint32_t request, uint64_t val);

/*
 * Wait until the backend closes the connection (reads and drops anything it
 * still sends). 0 once closed, -ETIMEDOUT. For tests of protocol errors.
 */
int fe_wait_closed(struct fe *f, int timeout_ms);

/* The usual messages. Each stores what it learnt (see the getters below). */
int fe_get_features(struct fe *f, uint64_t *features);
int fe_set_features(struct fe *f, uint64_t features);
int fe_get_protocol_features(struct fe *f, uint64_t *features);
int fe_set_protocol_features(struct fe *f, uint64_t features);
int fe_get_queue_num(struct fe *f, uint64_t *num);
int fe_get_max_mem_slots(struct fe *f, uint64_t *slots);
int fe_set_owner(struct fe *f);
int fe_reset_device(struct fe *f);

/*
 * GET_CONFIG for size bytes at offset (size at most
 * VHOST_USER_MAX_CONFIG_SIZE); checks that the reply is exactly 12 + size
 * bytes and echoes offset and size.
 */
int fe_get_config(struct fe *f, uint32_t offset, void *buf, uint32_t size);
int fe_set_config(struct fe *f, uint32_t offset, const void *buf, uint32_t size);

/* SET_MEM_TABLE with every region. */
int fe_set_mem_table(struct fe *f);
/* ADD_MEM_REG / REM_MEM_REG of region i (REM carries no fd, as the spec advises). */
int fe_add_mem_reg(struct fe *f, unsigned int i);
int fe_rem_mem_reg(struct fe *f, unsigned int i);

/* What the backend offered and what was set (0 before the messages). */
uint64_t fe_offered_features(const struct fe *f);
uint64_t fe_features(const struct fe *f);
uint64_t fe_offered_protocol_features(const struct fe *f);
uint64_t fe_protocol_features(const struct fe *f);
uint64_t fe_queue_num(const struct fe *f);

/* ------------------------------------------------------------------------ */
/* Backend channel (BACKEND_REQ) */

/* Make a socketpair, send one end with SET_BACKEND_REQ_FD, keep the other. */
int fe_backend_channel_open(struct fe *f);

/* Our end of the channel, or -1. */
int fe_backend_channel_fd(const struct fe *f);

/*
 * Read one backend->frontend message (waiting up to timeout_ms). When it asks
 * for a reply, answers u64 0. Stores request and payload size; fds that came
 * with it are closed. -ENOTCONN without a channel.
 */
int fe_backend_recv(struct fe *f, int timeout_ms, uint32_t *request, uint32_t *size);

/* Wait for a CONFIG_CHANGE_MSG (size 0). -EPROTO for any other message. */
int fe_wait_config_change(struct fe *f, int timeout_ms);

/* ------------------------------------------------------------------------ */
/* Rings: set-up and their messages */

/*
 * Lay out ring q with num entries (a power of 2, at most 32768) in guest
 * memory: descriptor table, avail and used rings zeroed, a free list, and a
 * kick and a call eventfd. Set up again, a ring starts afresh.
 */
int fe_ring_setup(struct fe *f, unsigned int q, uint16_t num);

int fe_ring_set_num(struct fe *f, unsigned int q);
/*
 * SET_VRING_BASE: what the last GET_VRING_BASE returned if none was sent
 * since, else the used index as it is now (0 for a new ring): after a
 * backend went away without GET_VRING_BASE, what a VMM does.
 */
int fe_ring_set_base(struct fe *f, unsigned int q);
/* SET_VRING_ADDR with our user addresses of desc, avail and used. */
int fe_ring_set_addr(struct fe *f, unsigned int q);
int fe_ring_set_kick(struct fe *f, unsigned int q);
int fe_ring_set_call(struct fe *f, unsigned int q);
int fe_ring_set_enable(struct fe *f, unsigned int q, bool enable);
/* GET_VRING_BASE: stops the ring; the answer becomes the ring's base. */
int fe_ring_get_base(struct fe *f, unsigned int q, uint16_t *base);

/* The ring's kick and call eventfds (owned by f), or -1. */
int fe_ring_kick_fd(const struct fe *f, unsigned int q);
int fe_ring_call_fd(const struct fe *f, unsigned int q);

/* Guest addresses of the ring parts (for tests that break them). */
int fe_ring_gpas(const struct fe *f, unsigned int q, uint64_t *desc, uint64_t *avail,
		 uint64_t *used);

/* ------------------------------------------------------------------------ */
/* Whole sessions */

enum fe_order {
	/*
	 * QEMU: GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES,
	 * GET_QUEUE_NUM, GET_MAX_MEM_SLOTS, SET_BACKEND_REQ_FD, SET_OWNER,
	 * SET_FEATURES, memory, then per ring NUM, BASE, ADDR, KICK, CALL,
	 * ENABLE 1.
	 */
	FE_ORDER_QEMU,
	/*
	 * cloud-hypervisor: SET_OWNER, GET_FEATURES, GET_PROTOCOL_FEATURES,
	 * SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, SET_FEATURES, memory, NUM of
	 * every ring, then per ring ADDR, BASE, CALL, KICK; ENABLE 1 of every
	 * ring; SET_BACKEND_REQ_FD last.
	 */
	FE_ORDER_CLOUD_HV,
};

struct fe_start_opts {
	enum fe_order order;
	/* Virtio features wanted; what is set is this AND the offer. */
	uint64_t features;
	/*
	 * Protocol features wanted (AND the offer). REPLY_ACK negotiated turns
	 * acks on; BACKEND_REQ negotiated opens the backend channel.
	 */
	uint64_t protocol_features;
	/* Give memory by ADD_MEM_REG per region instead of SET_MEM_TABLE. */
	bool add_mem_reg;
	/* virtio-loopback: SET_VRING_CALL of every ring before the memory. */
	bool call_before_mem;
	/* Rings to set up: 0 = as many as GET_QUEUE_NUM says (MQ), else 1. */
	unsigned int num_queues;
	/* Entries per ring (0 = 256); rings already set up keep theirs. */
	uint16_t queue_size;
};

/*
 * QEMU order; VERSION_1, PROTOCOL_FEATURES, EVENT_IDX, INDIRECT_DESC; MQ,
 * REPLY_ACK, BACKEND_REQ, CONFIG, CONFIGURE_MEM_SLOTS; 256 entries.
 */
void fe_start_opts_default(struct fe_start_opts *o);

/*
 * Negotiate and start every ring, in the order asked. Needs a connection.
 * Rings are set up on first use (fe_ring_setup) and keep their memory and
 * state over reconnections. -ENOTSUP when the backend offers too few queues
 * or lacks CONFIGURE_MEM_SLOTS for add_mem_reg.
 */
int fe_start(struct fe *f, const struct fe_start_opts *o);

/* Stop every started ring as QEMU does: ENABLE 0 (with PROTOCOL_FEATURES), GET_VRING_BASE. */
int fe_stop(struct fe *f);

/* Rings fe_start set up. */
unsigned int fe_num_rings(const struct fe *f);

/* ------------------------------------------------------------------------ */
/* Driver side of a ring */

/* A guest buffer. */
struct fe_sg {
	uint64_t gpa;
	uint32_t len;
};

#define FE_ADD_INDIRECT 0x1u /* one ring descriptor pointing at an indirect table */

struct fe_add_opts {
	unsigned int flags;
	/* Split every buffer into descriptors of at most seg_max bytes (0: one each). */
	uint32_t seg_max;
};

/*
 * Make a chain of out (device-readable) then in (device-writable) buffers
 * available and publish the avail index (no kick). opts may be NULL. The
 * buffers are not checked against guest memory, and an indirect table is
 * made whether INDIRECT_DESC was negotiated or not: tests use both to feed
 * a backend what it must refuse. Returns 0 and stores the head in *head
 * (may be NULL); -ENOSPC when the ring has too few free descriptors, -EINVAL
 * for an empty chain or one longer than the ring (FE_MAX_INDIRECT entries
 * when indirect), -ENOMEM when guest memory has no room for the table.
 */
int fe_ring_add(struct fe *f, unsigned int q, const struct fe_sg *out, unsigned int nout,
		const struct fe_sg *in, unsigned int nin, const struct fe_add_opts *opts,
		uint16_t *head);

/*
 * Notify the device of buffers added since the last call unless it asked not
 * to be (used->flags NO_NOTIFY, or avail_event with EVENT_IDX); nothing added
 * means no kick either. force kicks anyway. Returns 1 when a kick was sent,
 * 0 when not.
 */
int fe_ring_kick(struct fe *f, unsigned int q, bool force);

/*
 * Take the next used entry: 1 with *id and *len stored, 0 when none. The
 * chain's descriptors go back to the free list. -EPROTO when the entry names
 * no chain in flight or its len exceeds the chain's writable bytes.
 */
int fe_ring_get_used(struct fe *f, unsigned int q, uint32_t *id, uint32_t *len);

/* Wait for a signal on the call eventfd: its count (>0), or -ETIMEDOUT. */
int fe_ring_wait_call(struct fe *f, unsigned int q, int timeout_ms);

/* fe_ring_get_used, waiting on the call eventfd up to timeout_ms: 1 or -ETIMEDOUT. */
int fe_ring_wait_used(struct fe *f, unsigned int q, int timeout_ms, uint32_t *id, uint32_t *len);

/*
 * Ask for used-buffer notifications or not: VRING_AVAIL_F_NO_INTERRUPT, and
 * with EVENT_IDX used_event (the next used index, or one already passed).
 */
void fe_ring_set_interrupts(struct fe *f, unsigned int q, bool on);

/* Chains made available and not yet taken back. */
unsigned int fe_ring_inflight(const struct fe *f, unsigned int q);
/* Free descriptors. */
unsigned int fe_ring_num_free(const struct fe *f, unsigned int q);
/* Our avail index (chains published so far, mod 2^16). */
uint16_t fe_ring_avail_idx(const struct fe *f, unsigned int q);
/* Used entries taken so far (mod 2^16). */
uint16_t fe_ring_last_used(const struct fe *f, unsigned int q);
/* Whether the ring negotiated EVENT_IDX (from the features set). */
bool fe_ring_event_idx(const struct fe *f, unsigned int q);

#endif
