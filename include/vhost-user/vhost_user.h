/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * vhost-user wire format: message ids, flags, feature bits and payloads, as
 * in QEMU's docs/interop/vhost-user.rst. Host byte order on the wire.
 * Declarations only: no functions, nothing to own or free. Every field here
 * comes from the frontend and is untrusted until the backend checked it.
 */
#ifndef VHOST_USER_H
#define VHOST_USER_H

#include <stdint.h>

/*
 * Frontend -> backend requests, each once: X(NAME, id), in id order.
 * enum vhost_user_request (VHOST_USER_NAME = id) and vu_msg_name() come
 * from this list; adding a request is one line here (and, if the backend
 * serves it, a handler with its row in the table in proto/backend_msg.c).
 */
#define VHOST_USER_REQUEST_LIST(X)                                                                 \
	X(GET_FEATURES, 1)                                                                         \
	X(SET_FEATURES, 2)                                                                         \
	X(SET_OWNER, 3)                                                                            \
	X(RESET_OWNER, 4)                                                                          \
	X(SET_MEM_TABLE, 5)                                                                        \
	X(SET_LOG_BASE, 6)                                                                         \
	X(SET_LOG_FD, 7)                                                                           \
	X(SET_VRING_NUM, 8)                                                                        \
	X(SET_VRING_ADDR, 9)                                                                       \
	X(SET_VRING_BASE, 10)                                                                      \
	X(GET_VRING_BASE, 11)                                                                      \
	X(SET_VRING_KICK, 12)                                                                      \
	X(SET_VRING_CALL, 13)                                                                      \
	X(SET_VRING_ERR, 14)                                                                       \
	X(GET_PROTOCOL_FEATURES, 15)                                                               \
	X(SET_PROTOCOL_FEATURES, 16)                                                               \
	X(GET_QUEUE_NUM, 17)                                                                       \
	X(SET_VRING_ENABLE, 18)                                                                    \
	X(SEND_RARP, 19)                                                                           \
	X(NET_SET_MTU, 20)                                                                         \
	X(SET_BACKEND_REQ_FD, 21)                                                                  \
	X(IOTLB_MSG, 22)                                                                           \
	X(SET_VRING_ENDIAN, 23)                                                                    \
	X(GET_CONFIG, 24)                                                                          \
	X(SET_CONFIG, 25)                                                                          \
	X(CREATE_CRYPTO_SESSION, 26)                                                               \
	X(CLOSE_CRYPTO_SESSION, 27)                                                                \
	X(POSTCOPY_ADVISE, 28)                                                                     \
	X(POSTCOPY_LISTEN, 29)                                                                     \
	X(POSTCOPY_END, 30)                                                                        \
	X(GET_INFLIGHT_FD, 31)                                                                     \
	X(SET_INFLIGHT_FD, 32)                                                                     \
	X(GPU_SET_SOCKET, 33)                                                                      \
	X(RESET_DEVICE, 34)                                                                        \
	X(VRING_KICK, 35)                                                                          \
	X(GET_MAX_MEM_SLOTS, 36)                                                                   \
	X(ADD_MEM_REG, 37)                                                                         \
	X(REM_MEM_REG, 38)

enum vhost_user_request {
	VHOST_USER_NONE = 0,
#define VHOST_USER_REQUEST_ENUM(name, id) VHOST_USER_##name = (id),
	VHOST_USER_REQUEST_LIST(VHOST_USER_REQUEST_ENUM)
#undef VHOST_USER_REQUEST_ENUM
	/* One past the last id in the list (the list is in id order). */
	VHOST_USER_REQUEST_MAX,
};

/* Backend -> frontend requests (on the backend channel). */
enum vhost_user_backend_request {
	VHOST_USER_BACKEND_IOTLB_MSG = 1,
	VHOST_USER_BACKEND_CONFIG_CHANGE_MSG = 2,
};

/* Header flags. */
#define VHOST_USER_VERSION_MASK 0x3u
#define VHOST_USER_VERSION 0x1u
#define VHOST_USER_REPLY_MASK 0x4u
#define VHOST_USER_NEED_REPLY_MASK 0x8u
#define VHOST_USER_REPLY_FLAGS (VHOST_USER_VERSION | VHOST_USER_REPLY_MASK)

/* Virtio feature bits that concern the transport. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30
#define VHOST_F_LOG_ALL 26

/* Protocol feature bits. */
#define VHOST_USER_PROTOCOL_F_MQ 0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD 1
#define VHOST_USER_PROTOCOL_F_RARP 2
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define VHOST_USER_PROTOCOL_F_NET_MTU 4
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ 5
#define VHOST_USER_PROTOCOL_F_CROSS_ENDIAN 6
#define VHOST_USER_PROTOCOL_F_CRYPTO_SESSION 7
#define VHOST_USER_PROTOCOL_F_PAGEFAULT 8
#define VHOST_USER_PROTOCOL_F_CONFIG 9
#define VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD 10
#define VHOST_USER_PROTOCOL_F_HOST_NOTIFIER 11
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD 12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE 13
#define VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS 14
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15
#define VHOST_USER_PROTOCOL_F_STATUS 16
#define VHOST_USER_PROTOCOL_F_DEVICE_STATE 19

/* SET_VRING_KICK/CALL/ERR payload: index in bits 0-7, bit 8 = no fd. */
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD_MASK 0x100u

/* Limits of the protocol itself. */
#define VHOST_USER_MAX_FDS 8		   /* fds per message (SCM_RIGHTS) */
#define VHOST_USER_MEM_TABLE_MAX_REGIONS 8 /* regions in SET_MEM_TABLE */
#define VHOST_USER_MAX_CONFIG_SIZE 256
#define VHOST_USER_MAX_QUEUE_SIZE 32768

struct vhost_user_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vhost_user_vring_state {
	uint32_t index;
	uint32_t num;
} __attribute__((packed));

struct vhost_user_vring_addr {
	uint32_t index;
	uint32_t flags; /* bit 0: VHOST_VRING_F_LOG */
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
} __attribute__((packed));

struct vhost_user_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
} __attribute__((packed));

struct vhost_user_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vhost_user_mem_region regions[VHOST_USER_MEM_TABLE_MAX_REGIONS];
} __attribute__((packed));

/* ADD_MEM_REG / REM_MEM_REG */
struct vhost_user_mem_reg {
	uint64_t padding;
	struct vhost_user_mem_region region;
} __attribute__((packed));

struct vhost_user_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
} __attribute__((packed));

/* GET_CONFIG / SET_CONFIG: 12-byte header then `size` bytes. */
struct vhost_user_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VHOST_USER_MAX_CONFIG_SIZE];
} __attribute__((packed));
#define VHOST_USER_CONFIG_HDR_SIZE 12u

/* Every payload the backend understands; sizes are checked per message. */
union vhost_user_payload {
	uint64_t u64;
	struct vhost_user_vring_state state;
	struct vhost_user_vring_addr addr;
	struct vhost_user_mem_table mem;
	struct vhost_user_mem_reg mem_reg;
	struct vhost_user_log log;
	struct vhost_user_config config;
	uint8_t raw[1];
};

#define VHOST_USER_HDR_SIZE ((uint32_t)sizeof(struct vhost_user_hdr))
#define VHOST_USER_MAX_PAYLOAD ((uint32_t)sizeof(union vhost_user_payload))

#endif
