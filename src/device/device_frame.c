/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "device_frame.h"

#include <endian.h>
#include <string.h>

void device_hdr_decode(const uint8_t raw[VIRTIO_CAN_HDR_SIZE], struct device_hdr *h)
{
	struct virtio_can_hdr w;

	memcpy(&w, raw, sizeof(w));
	h->msg_type = le16toh(w.msg_type);
	h->length = le16toh(w.length);
	h->flags = le32toh(w.flags);
	h->can_id = le32toh(w.can_id);
}

void device_hdr_encode(const struct device_hdr *h, uint8_t raw[VIRTIO_CAN_HDR_SIZE])
{
	struct virtio_can_hdr w;

	memset(&w, 0, sizeof(w));
	w.msg_type = htole16(h->msg_type);
	w.length = htole16(h->length);
	w.flags = htole32(h->flags);
	w.can_id = htole32(h->can_id);
	memcpy(raw, &w, sizeof(w));
}

bool device_fd_len_valid(unsigned int len)
{
	/* virtio-can's classic maximum is CAN's own. */
	_Static_assert(VIRTIO_CAN_MAX_CLASSIC_LEN == 8, "classic CAN carries 8 bytes");
	return cframe_fd_len_valid(len);
}

/* Rules shared by both directions: type negotiated, id and length in range. */
static const char *frame_check(bool ext, bool fd, bool rtr, uint32_t id, unsigned int len,
			       uint64_t features)
{
	if (fd && !(features & DEVICE_F_FD))
		return "CAN FD frame without CAN_FD";
	if (!fd && !(features & DEVICE_F_CLASSIC))
		return "classic frame without CAN_CLASSIC";
	if (rtr && !(features & DEVICE_F_RTR))
		return "RTR frame without RTR_FRAMES";
	if (rtr && fd)
		return "RTR on a CAN FD frame";
	if (ext && id > DEVICE_EFF_MASK)
		return "extended id out of range";
	if (!ext && id > DEVICE_SFF_MASK)
		return "standard id out of range";
	if (!fd && len > VIRTIO_CAN_MAX_CLASSIC_LEN)
		return "classic length above 8";
	if (fd && !device_fd_len_valid(len))
		return "CAN FD length not a valid DLC length";
	return NULL;
}

const char *device_tx_check(const struct device_hdr *h, uint64_t features)
{
	if (h->msg_type != VIRTIO_CAN_TX)
		return "msg_type is not VIRTIO_CAN_TX";
	/* An undefined flag bit makes a frame type nobody negotiated. */
	if (h->flags & ~VIRTIO_CAN_FLAGS_KNOWN)
		return "unknown flag bits";
	return frame_check(h->flags & VIRTIO_CAN_FLAGS_EXTENDED, h->flags & VIRTIO_CAN_FLAGS_FD,
			   h->flags & VIRTIO_CAN_FLAGS_RTR, h->can_id, h->length, features);
}

void device_tx_to_cframe(const struct device_hdr *h, struct cframe *f)
{
	memset(f, 0, sizeof(*f));
	f->id = h->can_id;
	f->len = (uint8_t)h->length;
	if (h->flags & VIRTIO_CAN_FLAGS_EXTENDED)
		f->flags |= CFRAME_EXT;
	if (h->flags & VIRTIO_CAN_FLAGS_RTR)
		f->flags |= CFRAME_RTR;
	/*
	 * Policy: virtio-can has no BRS flag, so every CAN FD frame from the
	 * guest goes out with bit rate switching on (the data phase at the
	 * data bitrate, which is what a guest negotiating CAN FD asks for).
	 * ESI is the controller's to set, never ours.
	 */
	if (h->flags & VIRTIO_CAN_FLAGS_FD)
		f->flags |= CFRAME_FD | CFRAME_BRS;
}

const char *device_rx_check(const struct cframe *f, uint64_t features)
{
	return frame_check(f->flags & CFRAME_EXT, f->flags & CFRAME_FD, f->flags & CFRAME_RTR,
			   f->id, f->len, features);
}

unsigned int device_rx_encode(const struct cframe *f,
			   uint8_t buf[VIRTIO_CAN_HDR_SIZE + CFRAME_MAX_DATA])
{
	struct device_hdr h = {
	    .msg_type = VIRTIO_CAN_RX,
	    .length = f->len,
	    .flags = 0,
	    .can_id = f->id,
	};

	if (f->flags & CFRAME_EXT)
		h.flags |= VIRTIO_CAN_FLAGS_EXTENDED;
	if (f->flags & CFRAME_FD)
		h.flags |= VIRTIO_CAN_FLAGS_FD;
	if (f->flags & CFRAME_RTR)
		h.flags |= VIRTIO_CAN_FLAGS_RTR;
	device_hdr_encode(&h, buf);
	/*
	 * The driver drops a message whose used length is below 16 + length,
	 * also for RTR where length is the DLC: those bytes are sent as zeros.
	 */
	if (f->flags & CFRAME_RTR)
		memset(buf + VIRTIO_CAN_HDR_SIZE, 0, f->len);
	else
		memcpy(buf + VIRTIO_CAN_HDR_SIZE, f->data, f->len);
	return VIRTIO_CAN_HDR_SIZE + f->len;
}

bool device_cframe_same(const struct cframe *a, const struct cframe *b)
{
	const uint8_t kind = CFRAME_EXT | CFRAME_FD | CFRAME_RTR;

	if (a->id != b->id || (a->flags & kind) != (b->flags & kind) || a->len != b->len)
		return false;
	if (a->flags & CFRAME_RTR)
		return true;
	return a->len <= CFRAME_MAX_DATA && memcmp(a->data, b->data, a->len) == 0;
}
