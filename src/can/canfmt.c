/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* cansend's compact frame syntax in and out, candump's default line out. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "canfmt.h"

#define SFF_MAX 0x7ffu
#define EFF_MAX 0x1fffffffu
#define CLASSIC_MAX 8u
#define FD_MAX 64u
/* The flags nibble after "##" is struct canfd_frame's flags. */
#define NIBBLE_BRS 0x1
#define NIBBLE_ESI 0x2
#define NIBBLE_UNKNOWN 0x8 /* 0x4 is FDF: implied by "##" */

static const char *const messages[CANFMT_E_MAX] = {
    [CANFMT_E_EMPTY] = "empty frame",
    [CANFMT_E_NO_HASH] = "no '#' after the identifier",
    [CANFMT_E_ID_FORM] = "the identifier must be 3 (standard) or 8 (extended) hex digits",
    [CANFMT_E_ID_RANGE] = "identifier out of range (standard 000..7FF, extended "
			  "00000000..1FFFFFFF)",
    [CANFMT_E_HEX] = "data must be hex digit pairs, optionally separated by '.'",
    [CANFMT_E_ODD] = "a data byte needs two hex digits",
    [CANFMT_E_TOO_LONG] = "too much data (at most 8 bytes, 64 with CAN FD '##')",
    [CANFMT_E_FD_FLAGS] = "CAN FD needs one flags digit 0..7 after '##' (1 = BRS, 2 = ESI)",
    [CANFMT_E_RTR_LEN] = "a remote request's length must be 0..8",
    [CANFMT_E_TRAILING] = "unexpected characters after a remote request",
    [CANFMT_E_RAW_DLC] = "a raw DLC suffix '_X' cannot be carried by virtio-can",
};

const char *canfmt_strerror(int err)
{
	/* Negating INT_MIN is undefined: go through unsigned. */
	unsigned int e = err < 0 ? 0u - (unsigned int)err : (unsigned int)err;

	if (e == 0)
		return "no error";
	if (e >= CANFMT_E_MAX || !messages[e])
		return "unknown error";
	return messages[e];
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

unsigned int canfmt_fd_len_round(unsigned int len)
{
	static const unsigned int steps[] = {12, 16, 20, 24, 32, 48, 64};

	if (len <= CLASSIC_MAX)
		return len;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (len <= steps[i])
			return steps[i];
	return FD_MAX;
}

/* After "R": an optional DLC digit, then nothing. */
static int parse_rtr(const char *s, size_t n, size_t i, struct cframe *f)
{
	int v;

	if (i < n) {
		v = hexval(s[i]);
		if (v < 0)
			return s[i] == '_' ? -CANFMT_E_RAW_DLC : -CANFMT_E_TRAILING;
		if (v > (int)CLASSIC_MAX || (i + 1 < n && hexval(s[i + 1]) >= 0))
			return -CANFMT_E_RTR_LEN;
		f->len = (uint8_t)v;
		i++;
	}
	if (i < n)
		return s[i] == '_' ? -CANFMT_E_RAW_DLC : -CANFMT_E_TRAILING;
	return 0;
}

/* Hex byte pairs from s[i], each optionally preceded by one '.'; a '.' may end them. */
static int parse_data(const char *s, size_t n, size_t i, struct cframe *f, unsigned int max)
{
	for (;;) {
		int hi, lo;

		if (i < n && s[i] == '.')
			i++;
		if (i >= n)
			return 0;
		hi = hexval(s[i]);
		if (hi < 0) {
			if (s[i] == '_' && !(f->flags & CFRAME_FD) && f->len == CLASSIC_MAX)
				return -CANFMT_E_RAW_DLC;
			return -CANFMT_E_HEX;
		}
		if (f->len >= max)
			return -CANFMT_E_TOO_LONG;
		if (i + 1 >= n || s[i + 1] == '.')
			return -CANFMT_E_ODD;
		lo = hexval(s[i + 1]);
		if (lo < 0)
			return -CANFMT_E_HEX;
		f->data[f->len++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
}

int canfmt_parse(const char *s, size_t n, struct cframe *out)
{
	struct cframe f;
	uint32_t id = 0;
	size_t hash, i;
	int ret, v;

	if (!s || n == 0)
		return -CANFMT_E_EMPTY;
	memset(&f, 0, sizeof(f));
	for (hash = 0; hash < n && s[hash] != '#'; hash++)
		;
	if (hash == n)
		return -CANFMT_E_NO_HASH;
	if (hash != 3 && hash != 8)
		return -CANFMT_E_ID_FORM;
	for (i = 0; i < hash; i++) {
		v = hexval(s[i]);
		if (v < 0)
			return -CANFMT_E_ID_FORM;
		id = id << 4 | (uint32_t)v;
	}
	if (hash == 8)
		f.flags |= CFRAME_EXT;
	if (id > (hash == 8 ? EFF_MAX : SFF_MAX))
		return -CANFMT_E_ID_RANGE;
	f.id = id;

	i = hash + 1;
	if (i < n && s[i] == 'R') {
		f.flags |= CFRAME_RTR;
		ret = parse_rtr(s, n, i + 1, &f);
	} else if (i < n && s[i] == '#') {
		i++;
		v = i < n ? hexval(s[i]) : -1;
		if (v < 0 || (v & NIBBLE_UNKNOWN))
			return -CANFMT_E_FD_FLAGS;
		f.flags |= CFRAME_FD;
		if (v & NIBBLE_BRS)
			f.flags |= CFRAME_BRS;
		if (v & NIBBLE_ESI)
			f.flags |= CFRAME_ESI;
		ret = parse_data(s, n, i + 1, &f, FD_MAX);
		/* What a CAN FD controller sends: the next DLC's length, zero padded. */
		f.len = (uint8_t)canfmt_fd_len_round(f.len);
	} else {
		ret = parse_data(s, n, i, &f, CLASSIC_MAX);
	}
	if (ret < 0)
		return ret;
	*out = f;
	return 0;
}

int canfmt_parse_str(const char *s, struct cframe *f)
{
	return canfmt_parse(s, s ? strlen(s) : 0, f);
}

bool canfmt_valid(const struct cframe *f)
{
	const unsigned int known = CFRAME_EXT | CFRAME_FD | CFRAME_RTR | CFRAME_BRS | CFRAME_ESI;

	if (!f || (f->flags & ~known))
		return false;
	if (f->id > ((f->flags & CFRAME_EXT) ? EFF_MAX : SFF_MAX))
		return false;
	if (f->flags & CFRAME_FD)
		return !(f->flags & CFRAME_RTR) && f->len <= FD_MAX;
	return !(f->flags & (CFRAME_BRS | CFRAME_ESI)) && f->len <= CLASSIC_MAX;
}

/* A bounded writer: remembers an overflow instead of writing past size. */
struct out {
	char *buf;
	size_t size;
	size_t len;
	bool full;
};

static void put_c(struct out *o, char c)
{
	/* Keep one byte for the NUL. */
	if (o->len + 1 >= o->size) {
		o->full = true;
		return;
	}
	o->buf[o->len++] = c;
}

static void put_s(struct out *o, const char *s)
{
	while (*s)
		put_c(o, *s++);
}

static void put_hex(struct out *o, uint32_t v, unsigned int digits)
{
	static const char hex[] = "0123456789ABCDEF";

	while (digits--)
		put_c(o, hex[(v >> (4 * digits)) & 0xf]);
}

static int out_end(struct out *o)
{
	if (o->full || o->size == 0) {
		if (o->size > 0)
			o->buf[0] = '\0';
		return -ENOSPC;
	}
	o->buf[o->len] = '\0';
	return (int)o->len;
}

int canfmt_cansend(char *buf, size_t size, const struct cframe *f)
{
	struct out o = {.buf = buf, .size = size};

	if (!buf || !canfmt_valid(f))
		return -EINVAL;
	put_hex(&o, f->id, (f->flags & CFRAME_EXT) ? 8 : 3);
	put_c(&o, '#');
	if (f->flags & CFRAME_RTR) {
		put_c(&o, 'R');
		if (f->len)
			put_hex(&o, f->len, 1);
		return out_end(&o);
	}
	if (f->flags & CFRAME_FD) {
		put_c(&o, '#');
		put_hex(&o,
			((f->flags & CFRAME_BRS) ? NIBBLE_BRS : 0u) |
			    ((f->flags & CFRAME_ESI) ? NIBBLE_ESI : 0u),
			1);
	}
	for (unsigned int i = 0; i < f->len; i++)
		put_hex(&o, f->data[i], 2);
	return out_end(&o);
}

int canfmt_candump(char *buf, size_t size, const char *ifname, const struct cframe *f,
		   unsigned int view)
{
	struct out o = {.buf = buf, .size = size};

	if (!buf || !ifname || !canfmt_valid(f) || (view & ~CANFMT_VIEW_INDENT_SFF))
		return -EINVAL;
	put_s(&o, "  ");
	put_s(&o, ifname);
	put_s(&o, "  ");
	/* The id field is 5 (standard) or 10 (extended, indented standard) wide. */
	if (f->flags & CFRAME_EXT) {
		put_hex(&o, f->id, 8);
	} else {
		if (view & CANFMT_VIEW_INDENT_SFF)
			put_s(&o, "     ");
		put_hex(&o, f->id, 3);
	}
	put_s(&o, "  ");
	if (f->flags & CFRAME_FD) {
		put_c(&o, '[');
		put_c(&o, (char)('0' + f->len / 10));
		put_c(&o, (char)('0' + f->len % 10));
		put_c(&o, ']');
	} else {
		put_s(&o, " [");
		put_c(&o, (char)('0' + f->len));
		put_c(&o, ']');
	}
	put_c(&o, ' ');
	if (f->flags & CFRAME_RTR) {
		put_s(&o, " remote request");
		return out_end(&o);
	}
	for (unsigned int i = 0; i < f->len; i++) {
		put_c(&o, ' ');
		put_hex(&o, f->data[i], 2);
	}
	return out_end(&o);
}
