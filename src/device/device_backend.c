/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The device's one call into the vhost-user backend: CONFIG_CHANGE_MSG on
 * bus-off. Kept apart so that programs driving the device without a
 * backend (unit tests) do not link the backend.
 */
#include "device.h"

static int device_backend_notify(void *opaque)
{
	return vu_backend_config_changed(opaque);
}

void device_set_backend(struct device *d, struct vu_backend *b)
{
	device_set_config_notify(d, b ? device_backend_notify : NULL, b);
}
