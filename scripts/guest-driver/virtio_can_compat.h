/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * virtio_can_compat.h - lets mainline's virtio_can.c (Linux 7.2) build
 * against older kernels (tested: Debian 12's 6.1). Force-included before
 * the driver by scripts/virtio-can-driver.sh, which probes the kernel's
 * headers and defines, for what they lack:
 *   VDC_NO_VIRTQUEUE_INFO    no struct virtqueue_info (before 6.11): the
 *                            driver's virtio_find_vqs() call is mapped on
 *                            the older callbacks[]/names[] form
 *   VDC_NO_CAN_FD_PARAMS     struct can_priv has data_bittiming itself,
 *                            not under .fd (before the data bit timing
 *                            parameters were grouped)
 * Needs -fms-extensions for the second (the script passes it).
 * Nothing here comes from the kernel: only the interfaces are matched.
 */
#ifndef VDC_VIRTIO_CAN_COMPAT_H
#define VDC_VIRTIO_CAN_COMPAT_H

#include <linux/version.h>
#include <linux/kernel.h>
#include <linux/errno.h>
#include <linux/stddef.h>
#include <linux/netdevice.h>
#include <linux/can/dev.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

/* The uapi header marks its flexible arrays for the bounds checker. */
#ifndef __counted_by_le
#define __counted_by_le(m)
#endif
#ifndef __counted_by
#define __counted_by(m)
#endif

#ifdef VDC_NO_VIRTQUEUE_INFO
struct virtqueue_info {
	const char *name;
	vq_callback_t *callback;
	bool ctx;
};

#define VDC_COMPAT_MAX_VQS 8

static inline int vdc_compat_find_vqs(struct virtio_device *vdev, unsigned int nvqs,
				      struct virtqueue *vqs[],
				      struct virtqueue_info vqs_info[],
				      struct irq_affinity *desc)
{
	vq_callback_t *callbacks[VDC_COMPAT_MAX_VQS];
	const char *names[VDC_COMPAT_MAX_VQS];
	bool ctx[VDC_COMPAT_MAX_VQS];
	unsigned int i;

	if (nvqs > VDC_COMPAT_MAX_VQS)
		return -EINVAL;
	for (i = 0; i < nvqs; i++) {
		callbacks[i] = vqs_info[i].callback;
		names[i] = vqs_info[i].name;
		ctx[i] = vqs_info[i].ctx;
	}
	return vdev->config->find_vqs(vdev, nvqs, vqs, callbacks, names, ctx, desc);
}
#define virtio_find_vqs vdc_compat_find_vqs
#endif /* VDC_NO_VIRTQUEUE_INFO */

#ifdef VDC_NO_CAN_FD_PARAMS
/*
 * The driver writes priv->can.fd.data_bittiming. A struct can_priv with an
 * .fd view laid over the real data_bittiming member: same offset, so the
 * CAN core sees what the driver writes. can_priv stays the first member.
 */
struct vdc_compat_can_priv {
	union {
		struct can_priv;	/* anonymous: -fms-extensions */
		struct {
			u8 vdc_pad[offsetof(struct can_priv, data_bittiming)];
			struct can_bittiming data_bittiming;
		} fd;
	};
};
#define can_priv vdc_compat_can_priv
#endif /* VDC_NO_CAN_FD_PARAMS */

#endif /* VDC_VIRTIO_CAN_COMPAT_H */
