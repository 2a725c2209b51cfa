/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * VirtIO CAN wire format (VIRTIO 1.4, 5.20). Linux 6.1 headers lack
 * <linux/virtio_can.h>, so the project keeps its own. All little-endian.
 */
#ifndef VIRTIO_CAN_H
#define VIRTIO_CAN_H

#include <stdint.h>

#define VIRTIO_ID_CAN_DEVICE 36

/* Virtqueues. */
#define VIRTIO_CAN_QUEUE_TX 0
#define VIRTIO_CAN_QUEUE_RX 1
#define VIRTIO_CAN_QUEUE_CTRL 2
#define VIRTIO_CAN_NUM_QUEUES 3

/* Feature bits. */
#define VIRTIO_CAN_F_CAN_CLASSIC 0
#define VIRTIO_CAN_F_CAN_FD 1
#define VIRTIO_CAN_F_RTR_FRAMES 2
#define VIRTIO_CAN_F_LATE_TX_ACK 3

/* Config space status bits. */
#define VIRTIO_CAN_S_CTRL_BUSOFF (1u << 0)

struct virtio_can_config {
	uint16_t status; /* le16 */
} __attribute__((packed));

/* Message types. */
#define VIRTIO_CAN_TX 0x0001
#define VIRTIO_CAN_RX 0x0101
#define VIRTIO_CAN_SET_CTRL_MODE_START 0x0201
#define VIRTIO_CAN_SET_CTRL_MODE_STOP 0x0202

/* Frame flags. */
#define VIRTIO_CAN_FLAGS_EXTENDED 0x8000u
#define VIRTIO_CAN_FLAGS_FD 0x4000u
#define VIRTIO_CAN_FLAGS_RTR 0x2000u
#define VIRTIO_CAN_FLAGS_KNOWN \
	(VIRTIO_CAN_FLAGS_EXTENDED | VIRTIO_CAN_FLAGS_FD | VIRTIO_CAN_FLAGS_RTR)

/* Results. */
#define VIRTIO_CAN_RESULT_OK 0
#define VIRTIO_CAN_RESULT_NOT_OK 1

/* Header of TX requests and RX frames; sdu[length] follows. */
struct virtio_can_hdr {
	uint16_t msg_type;
	uint16_t length;
	uint8_t reserved_classic_dlc;
	uint8_t padding;
	uint16_t reserved_xl_priority;
	uint32_t flags;
	uint32_t can_id;
} __attribute__((packed));

#define VIRTIO_CAN_HDR_SIZE 16u
#define VIRTIO_CAN_MAX_CLASSIC_LEN 8u
#define VIRTIO_CAN_MAX_FD_LEN 64u

struct virtio_can_control_out {
	uint16_t msg_type;
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_can_hdr) == VIRTIO_CAN_HDR_SIZE, "virtio-can header");

#endif
