/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "vdc_version.h"

const char *vdc_version(void)
{
	return "vhost-device-can " VDC_VERSION;
}
