/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The rtnetlink link-message parser on arbitrary datagrams: it never reads
 * past the input (ASan), stores at most max messages, each with an index
 * above 0 and a NUL-terminated name, and a datagram it parses cleanly
 * parses the same way again.
 */
#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linkmon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linkmon_msg a[4], b[4];
	unsigned int max, n, m;
	bool resync, resync2;
	uint8_t *copy;

	/* The first byte is how many messages there is room for; the rest, the datagram. */
	if (size == 0)
		return 0;
	max = data[0] % 5u;
	data++;
	size--;
	/* An exact-size heap copy, so that ASan sees any read past the end. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	n = linkmon_parse(copy, size, a, max, &resync);
	if (n > max)
		abort();
	for (unsigned int i = 0; i < n; i++)
		if (a[i].ifindex <= 0 || strnlen(a[i].name, IFNAMSIZ) >= IFNAMSIZ)
			abort();
	m = linkmon_parse(copy, size, b, max, &resync2);
	if (m != n || resync2 != resync || (n && memcmp(a, b, sizeof(a[0]) * n) != 0))
		abort();
	free(copy);
	return 0;
}
