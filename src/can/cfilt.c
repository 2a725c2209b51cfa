/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "cfilt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* One hex number of at most 8 digits, "0x" optional; its digit count. */
static int cfilt_hex(const char *s, size_t len, uint32_t *out, unsigned int *digits)
{
	uint32_t v = 0;
	size_t i = 0;

	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		i = 2;
	if (i == len || len - i > 8)
		return -EINVAL;
	*digits = (unsigned int)(len - i);
	for (; i < len; i++) {
		char c = s[i];
		unsigned int d;

		if (c >= '0' && c <= '9')
			d = (unsigned int)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned int)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned int)(c - 'A' + 10);
		else
			return -EINVAL;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

static int cfilt_fail(char *why, size_t cap, const char *part, size_t len, const char *what)
{
	snprintf(why, cap, "'%.*s': %s", (int)(len > 40 ? 40 : len), part, what);
	return -EINVAL;
}

static int cfilt_rule_parse(struct cfilt_rule *r, const char *s, size_t len, char *why, size_t cap)
{
	const char *sep = NULL;
	unsigned int id_digits, mask_digits;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == ':' || s[i] == '~') {
			sep = s + i;
			break;
		}
	}
	if (!sep)
		return cfilt_fail(why, cap, s, len, "not id:mask or id~mask");
	r->inverted = *sep == '~';
	if (cfilt_hex(s, (size_t)(sep - s), &r->id, &id_digits) < 0)
		return cfilt_fail(why, cap, s, len, "the id is not a hex number of 1 to 8 digits");
	if (cfilt_hex(sep + 1, len - (size_t)(sep - s) - 1, &r->mask, &mask_digits) < 0)
		return cfilt_fail(why, cap, s, len,
				  "the mask is not a hex number of 1 to 8 digits");
	if ((r->id | r->mask) & CFILT_ERR)
		return cfilt_fail(why, cap, s, len,
				  "bit 29 (0x20000000, the error flag) is not a filter bit");
	/* As candump: an id written with 8 digits is an extended one. */
	if (id_digits == 8)
		r->id |= CFILT_EFF;
	(void)mask_digits;
	return 0;
}

int cfilt_parse(struct cfilt *f, const char *text, char *why, size_t cap)
{
	const char *p = text;

	memset(f, 0, sizeof(*f));
	if (!text || !*text) {
		snprintf(why, cap, "empty filter list");
		return -EINVAL;
	}
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		int ret;

		if (len == 0) {
			snprintf(why, cap, "an empty entry in the list");
			return -EINVAL;
		}
		if (f->n == CFILT_MAX) {
			snprintf(why, cap, "more than %u filters", CFILT_MAX);
			return -EINVAL;
		}
		ret = cfilt_rule_parse(&f->rule[f->n], p, len, why, cap);
		if (ret < 0)
			return ret;
		f->n++;
		if (!end)
			return 0;
		p = end + 1;
	}
}

uint32_t cfilt_key(const struct cframe *fr)
{
	return fr->id | ((fr->flags & CFRAME_EXT) ? CFILT_EFF : 0) |
	       ((fr->flags & CFRAME_RTR) ? CFILT_RTR : 0);
}

bool cfilt_match(const struct cfilt *f, const struct cframe *fr)
{
	uint32_t key = cfilt_key(fr);

	for (unsigned int i = 0; i < f->n; i++) {
		const struct cfilt_rule *r = &f->rule[i];
		bool same = (key & r->mask) == (r->id & r->mask);

		if (same != r->inverted)
			return true;
	}
	return false;
}
