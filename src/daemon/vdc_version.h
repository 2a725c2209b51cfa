/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#ifndef VDC_VERSION_H
#define VDC_VERSION_H

/* "vhost-device-can X.Y.Z" */
const char *vdc_version(void);

#endif
