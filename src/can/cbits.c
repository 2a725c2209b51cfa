/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "cbits.h"

#include <stdbool.h>
#include <string.h>

/* The frame's bits from SOF on, before stuffing, and where BRS is. */
struct cbits_seq {
	uint8_t bit[1 + 32 + 8 + 64 * 8 + 15];
	unsigned int n;
	unsigned int brs_at; /* index of BRS, or ~0u */
};

static void seq_put(struct cbits_seq *s, uint32_t v, unsigned int nbits)
{
	while (nbits--)
		s->bit[s->n++] = (uint8_t)((v >> nbits) & 1u);
}

/* CAN FD's DLC for a length (lengths between steps round up). */
static unsigned int cbits_dlc(const struct cframe *f)
{
	static const uint8_t steps[] = {12, 16, 20, 24, 32, 48, 64};

	if (f->len <= 8)
		return f->len;
	for (unsigned int i = 0; i < sizeof(steps); i++)
		if (f->len <= steps[i])
			return 9 + i;
	return 15;
}

static unsigned int cbits_data_len(const struct cframe *f)
{
	static const uint8_t len[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64};

	if (f->flags & CFRAME_RTR)
		return 0;
	return (f->flags & CFRAME_FD) ? len[cbits_dlc(f)] : (f->len > 8 ? 8 : f->len);
}

static void cbits_build(const struct cframe *f, struct cbits_seq *s)
{
	bool ext = f->flags & CFRAME_EXT, fd = f->flags & CFRAME_FD;
	bool rtr = (f->flags & CFRAME_RTR) && !fd;
	unsigned int dlen = cbits_data_len(f);

	s->n = 0;
	s->brs_at = ~0u;
	seq_put(s, 0, 1); /* SOF */
	if (ext) {
		seq_put(s, (f->id >> 18) & 0x7ffu, 11);
		seq_put(s, 1, 1); /* SRR */
		seq_put(s, 1, 1); /* IDE */
		seq_put(s, f->id & 0x3ffffu, 18);
	} else {
		seq_put(s, f->id & 0x7ffu, 11);
	}
	seq_put(s, rtr ? 1 : 0, 1); /* RTR, or RRS in CAN FD (dominant) */
	if (!ext)
		seq_put(s, 0, 1); /* IDE */
	if (fd) {
		seq_put(s, 1, 1); /* FDF */
		seq_put(s, 0, 1); /* res */
		s->brs_at = s->n;
		seq_put(s, (f->flags & CFRAME_BRS) ? 1 : 0, 1);
		seq_put(s, (f->flags & CFRAME_ESI) ? 1 : 0, 1);
	} else {
		seq_put(s, 0, ext ? 2 : 1); /* r1 r0, or r0 */
	}
	seq_put(s, fd ? cbits_dlc(f) : (f->len > 8 ? 8 : f->len), 4);
	for (unsigned int i = 0; i < dlen; i++)
		seq_put(s, f->data[i], 8);
	if (!fd) {
		/* CRC-15 over SOF to the end of data, then sent with the rest. */
		uint32_t crc = 0;

		for (unsigned int i = 0; i < s->n; i++) {
			uint32_t next = s->bit[i] ^ ((crc >> 14) & 1u);

			crc = (crc << 1) & 0x7fffu;
			if (next)
				crc ^= 0x4599u;
		}
		seq_put(s, crc, 15);
	}
}

void cbits_frame(const struct cframe *f, struct cbits *out)
{
	struct cbits_seq s;
	bool fd = f->flags & CFRAME_FD, brs = fd && (f->flags & CFRAME_BRS);
	unsigned int run = 0, stuff = 0, stuff_data = 0, nominal, data;
	uint8_t last = 2;

	cbits_build(f, &s);
	/* Dynamic stuffing; a stuff bit starts the next run. */
	for (unsigned int i = 0; i < s.n; i++) {
		if (s.bit[i] == last) {
			run++;
		} else {
			last = s.bit[i];
			run = 1;
		}
		if (run == 5) {
			stuff++;
			if (brs && i > s.brs_at)
				stuff_data++;
			last ^= 1u;
			run = 1;
		}
	}
	if (!fd) {
		nominal = s.n + stuff + 13;
		data = 0;
	} else {
		/* Stuff count and CRC, with their fixed stuff bits. */
		unsigned int tail = cbits_data_len(f) > 16 ? 4 + 21 + 7 : 4 + 17 + 6;

		if (brs) {
			unsigned int before = s.brs_at + 1; /* SOF .. BRS */

			data = (s.n - before) + stuff_data + tail;
			nominal = before + (stuff - stuff_data) + 13;
		} else {
			nominal = s.n + stuff + tail + 13;
			data = 0;
		}
	}
	out->nominal = nominal;
	out->data = data;
	out->stuff = stuff;
}

uint64_t cbits_frame_ns(const struct cframe *f, uint32_t bitrate, uint32_t dbitrate)
{
	struct cbits b;

	if (bitrate == 0)
		return 0;
	if (dbitrate == 0)
		dbitrate = bitrate;
	cbits_frame(f, &b);
	return ((uint64_t)b.nominal * 1000000000u + bitrate - 1) / bitrate +
	       ((uint64_t)b.data * 1000000000u + dbitrate - 1) / dbitrate;
}
