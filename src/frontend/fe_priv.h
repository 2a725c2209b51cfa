/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The frontend's insides, shared by its source files only. */
#ifndef FE_PRIV_H
#define FE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_ring.h>

#include "fe.h"

#define FE_TAG "fe"

struct fe_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t mmap_offset;
	int fd;
	uint8_t *map; /* the whole memfd */
	size_t map_len;
	uint8_t *host; /* map + mmap_offset: the region's user address */
	uint64_t used; /* bump allocator: bytes handed out from host */
};

/* What we remember about each descriptor chain head. */
struct fe_head {
	bool in_flight;
	uint16_t ndesc;		/* ring descriptors the chain holds */
	uint64_t in_len;	/* device-writable bytes */
	struct vring_desc *ind; /* this head's indirect table, allocated on first use */
	uint64_t ind_gpa;
};

struct fe_ring {
	bool ready;   /* fe_ring_setup done */
	bool started; /* kick sent in this connection, not stopped */
	uint16_t num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	int kick_fd;
	int call_fd;

	uint16_t avail_idx;  /* next avail index to publish */
	uint16_t kicked_idx; /* avail_idx when the last kick was decided */
	uint16_t last_used;  /* used entries taken */
	uint16_t base;	     /* GET_VRING_BASE's answer */
	bool base_known;     /* base is the next SET_VRING_BASE (else used->idx) */
	bool irq_off;

	/* Our own copy of the chain links: never trust what is in guest memory. */
	uint16_t *next;
	uint16_t free_head;
	unsigned int num_free;
	unsigned int inflight;
	struct fe_head *heads;
};

struct fe {
	int sock;
	int backend_fd;
	int timeout_ms;
	bool acks;

	uint64_t offered_features;
	uint64_t features;
	uint64_t offered_protocol;
	uint64_t protocol;
	uint64_t queue_num;
	uint64_t max_mem_slots;

	unsigned int nregions;
	struct fe_region regions[FE_MAX_REGIONS];
	unsigned int alloc_next; /* round-robin start */

	unsigned int nrings; /* set up by fe_start */
	struct fe_ring rings[FE_MAX_QUEUES];
};

/* fe_mem.c */
int fe_mem_init(struct fe *f, const struct fe_mem_spec *spec);
void fe_mem_fini(struct fe *f);

/* fe_ring.c */
void fe_ring_init(struct fe_ring *r);
void fe_ring_fini(struct fe_ring *r);
/* Connection gone: the ring is no longer started. */
void fe_ring_disconnected(struct fe_ring *r);

/* fe_conn.c */
int fe_poll_in(int fd, int timeout_ms);

#endif
