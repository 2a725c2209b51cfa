/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A guest virtio-can driver on top of the frontend client: what the Linux
 * virtio_can driver does, from the ring side. It keeps the Rxq full of
 * device-writable buffers (24 bytes, or 80 when CAN FD is negotiated),
 * sends TX requests as one readable descriptor (header + data) and one
 * 1-byte writable result, and sends START/STOP on the Controlq.
 *
 * Used by the device integration tests, the real-CAN suite, the frontend
 * tool and the benchmarks. Synchronous; every wait is bounded.
 */
#ifndef GDRV_H
#define GDRV_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cframe.h"
#include "fe.h"
#include "virtio_can.h"

struct gdrv;

struct gdrv_opts {
	/* Session as fe_start does it (order, features, queue size ...). */
	struct fe_start_opts start;
	/*
	 * Device feature bits wanted (ANDed with the offer); ~0 = all. They
	 * are merged into start.features.
	 */
	uint64_t can_features;
	/* RX buffer size; 0 = 16 + 64 with CAN FD negotiated, else 16 + 8. */
	uint32_t rx_buf_size;
	/* Post this many RX buffers (0 = fill the ring). */
	unsigned int rx_buffers;
};

void gdrv_opts_default(struct gdrv_opts *o);

/*
 * Connect to the backend at path (retrying up to timeout_ms while it
 * starts), negotiate, start the three rings, and fill the Rxq. Does NOT
 * send START. 0 or -errno.
 */
int gdrv_open(struct gdrv **out, const char *path, const struct gdrv_opts *o, int timeout_ms);

/* The same over an already connected socket (taken, also on failure). */
int gdrv_open_fd(struct gdrv **out, int conn_fd, const struct gdrv_opts *o, int timeout_ms);

/* Disconnect and free everything. NULL is a no-op. */
void gdrv_close(struct gdrv *c);

/*
 * Drop the connection and connect again as a restarted VMM would, keeping
 * guest memory (in-flight TX requests are forgotten). Refills the Rxq.
 */
int gdrv_reconnect(struct gdrv *c, const char *path, int timeout_ms);

struct fe *gdrv_fe(struct gdrv *c);

/* Negotiated virtio features (device bits in the low 24). */
uint64_t gdrv_features(const struct gdrv *c);
bool gdrv_has(const struct gdrv *c, unsigned int can_feature_bit);

/* Controlq: VIRTIO_CAN_RESULT_OK / NOT_OK, or -errno. */
int gdrv_ctrl(struct gdrv *c, uint16_t msg_type, int timeout_ms);
int gdrv_start(struct gdrv *c, int timeout_ms);
int gdrv_stop(struct gdrv *c, int timeout_ms);

/* config space status (GET_CONFIG of 2 bytes), or -errno. */
int gdrv_status(struct gdrv *c);

/* Wait for CONFIG_CHANGE_MSG on the backend channel: 0 or -ETIMEDOUT. */
int gdrv_wait_config_change(struct gdrv *c, int timeout_ms);

/*
 * TX: queue one request for frame f (kicks). Returns the request's token
 * (>= 0), -ENOSPC when the Txq is full, or -errno.
 */
int gdrv_tx(struct gdrv *c, const struct cframe *f);

/* A test frame: id, flags, len bytes of data from seed (none for RTR). */
static inline struct cframe cf_make(uint32_t id, uint8_t flags, uint8_t len, uint8_t seed)
{
	struct cframe f;

	memset(&f, 0, sizeof(f));
	f.id = id;
	f.flags = flags;
	f.len = len;
	if (!(flags & CFRAME_RTR))
		for (unsigned int i = 0; i < len && i < CFRAME_MAX_DATA; i++)
			f.data[i] = (uint8_t)(seed + i * 7);
	return f;
}

/*
 * Queue requests for n frames and kick once: the device finds them all in
 * one turn. The number queued (fewer when the Txq fills), or -errno when
 * not even the first could be.
 */
int gdrv_tx_many(struct gdrv *c, const struct cframe *f, unsigned int n);

/* Same with a raw header and data, for requests the device must refuse. */
int gdrv_tx_raw(struct gdrv *c, const struct virtio_can_hdr *h, const void *data, uint32_t len);

/* Wait for one TX completion: 1 with *token and *result, or -ETIMEDOUT. */
int gdrv_tx_wait(struct gdrv *c, int timeout_ms, int *token, uint8_t *result);

/* gdrv_tx then wait for that request: the result byte, or -errno. */
int gdrv_tx_sync(struct gdrv *c, const struct cframe *f, int timeout_ms);

/* TX requests not yet completed. */
unsigned int gdrv_tx_pending(const struct gdrv *c);

/*
 * RX: take one received frame (waiting up to timeout_ms; 0 = poll) and
 * repost its buffer. 1 with *f filled, or -ETIMEDOUT. -EPROTO when the
 * device wrote something the Linux driver would drop (wrong msg_type,
 * unknown flags, used length != 16 + length, length out of range).
 */
int gdrv_rx(struct gdrv *c, struct cframe *f, int timeout_ms);

/* Raw view of the last frame gdrv_rx took: header and used length. */
void gdrv_rx_last(const struct gdrv *c, struct virtio_can_hdr *h, uint32_t *used_len);

/* RX buffers posted and not yet used. */
unsigned int gdrv_rx_posted(const struct gdrv *c);

#endif
