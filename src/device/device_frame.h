/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Conversion between virtio-can messages and struct cframe, and the
 * spec's frame checks. Pure functions: no queues, no state, no I/O.
 */
#ifndef DEVICE_FRAME_H
#define DEVICE_FRAME_H

#include <stdbool.h>
#include <stdint.h>

#include "cframe.h"
#include "virtio_can.h"

/* Feature masks of the device bits (VIRTIO_CAN_F_*). */
#define DEVICE_F_CLASSIC (1ull << VIRTIO_CAN_F_CAN_CLASSIC)
#define DEVICE_F_FD (1ull << VIRTIO_CAN_F_CAN_FD)
#define DEVICE_F_RTR (1ull << VIRTIO_CAN_F_RTR_FRAMES)
#define DEVICE_F_LATE_TX_ACK (1ull << VIRTIO_CAN_F_LATE_TX_ACK)
#define DEVICE_F_ALL (DEVICE_F_CLASSIC | DEVICE_F_FD | DEVICE_F_RTR | DEVICE_F_LATE_TX_ACK)

#define DEVICE_SFF_MASK 0x7FFu
#define DEVICE_EFF_MASK 0x1FFFFFFFu

/* The header fields in host byte order (reserved fields are ignored). */
struct device_hdr {
	uint16_t msg_type;
	uint16_t length;
	uint32_t flags;
	uint32_t can_id;
};

void device_hdr_decode(const uint8_t raw[VIRTIO_CAN_HDR_SIZE], struct device_hdr *h);
void device_hdr_encode(const struct device_hdr *h, uint8_t raw[VIRTIO_CAN_HDR_SIZE]);

/* A CAN FD payload length (0..8, 12, 16, 20, 24, 32, 48, 64). */
bool device_fd_len_valid(unsigned int len);

/*
 * Check a TX header against the negotiated device features: NULL when the
 * frame may be sent, else why not (for logs). The length is checked against
 * the frame type only; the caller checks it against the buffer.
 */
const char *device_tx_check(const struct device_hdr *h, uint64_t features);

/*
 * Fill f from a checked TX header; f->data is zeroed, the caller copies the
 * payload. FD frames get CFRAME_BRS (see device_frame.c).
 */
void device_tx_to_cframe(const struct device_hdr *h, struct cframe *f);

/* NULL when a frame from the bus may go to a guest with these features. */
const char *device_rx_check(const struct cframe *f, uint64_t features);

/*
 * Encode the RX message for a checked frame into buf: header then
 * f->len bytes (zeros for RTR, whose length is the DLC). Returns the
 * message size, 16 + f->len, which is also the used length.
 */
unsigned int device_rx_encode(const struct cframe *f,
			   uint8_t buf[VIRTIO_CAN_HDR_SIZE + CFRAME_MAX_DATA]);

/*
 * Whether an echo from the bus is the frame we sent: same id, same
 * EXT/FD/RTR flags, same length, and the same payload (not for RTR).
 * BRS and ESI are ignored: the controller may report them its own way.
 */
bool device_cframe_same(const struct cframe *a, const struct cframe *b);

#endif
