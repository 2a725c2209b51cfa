/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "txflood.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>

#define TXFLOOD_T_MS 5000

/*
 * Called as the device sends n frames: n more chains become available. Each
 * avail slot gets the head that was `posted` positions earlier, which the
 * device is about to complete (it pushes right after the send).
 */
static void txflood_hook(void *arg, unsigned int n)
{
	struct txflood *f = arg;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > f->until.tv_sec ||
	    (now.tv_sec == f->until.tv_sec && now.tv_nsec > f->until.tv_nsec))
		__atomic_store_n(&f->left, 0, __ATOMIC_RELAXED);
	for (; n > 0 && __atomic_load_n(&f->left, __ATOMIC_RELAXED) > 0; n--) {
		f->avail->ring[f->idx % f->num] =
		    f->avail->ring[(uint16_t)(f->idx - f->posted) % f->num];
		f->idx++;
		f->moved++;
		__atomic_fetch_sub(&f->left, 1, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&f->avail->idx, htole16(f->idx), __ATOMIC_RELEASE);
}

int txflood_start(struct txflood *f, struct gdrv *c, struct fakeport *p, struct fakeport_loop *d,
		  int ms)
{
	struct fe *fe = gdrv_fe(c);
	uint64_t desc, avail, used;
	unsigned int base = fakeport_sent_count(p);
	int ret;

	memset(f, 0, sizeof(*f));
	f->p = p;
	f->num = 256;
	f->left = ~0ul;
	ret = fe_ring_gpas(fe, VIRTIO_CAN_QUEUE_TX, &desc, &avail, &used);
	if (ret)
		return ret;
	f->avail = fe_gpa_to_ptr(fe, avail, 4 + 2u * f->num);
	if (!f->avail)
		return -EFAULT;
	for (unsigned int i = 0; i < f->num; i++) {
		struct cframe t = {.id = 0x100 + (i & 0xff), .len = 1, .data = {0x5a}};

		ret = gdrv_tx(c, &t);
		if (ret < 0)
			return ret;
	}
	ret = fakeport_wait_sent(p, base + f->num, TXFLOOD_T_MS);
	if (ret == 0)
		ret = fakeport_loop_sync(d, TXFLOOD_T_MS);
	if (ret)
		return ret;
	/* All done and the loop idle: the hook cannot run until the kick. */
	f->posted = f->num;
	f->idx = le16toh(f->avail->idx);
	clock_gettime(CLOCK_MONOTONIC, &f->until);
	f->until.tv_sec += ms / 1000;
	f->until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (f->until.tv_nsec >= 1000000000L) {
		f->until.tv_sec++;
		f->until.tv_nsec -= 1000000000L;
	}
	fakeport_on_send(p, txflood_hook, f);
	f->idx = (uint16_t)(f->idx + f->num);
	__atomic_store_n(&f->avail->idx, htole16(f->idx), __ATOMIC_RELEASE);
	return eventfd_write(fe_ring_kick_fd(fe, VIRTIO_CAN_QUEUE_TX), 1) ? -errno : 0;
}

int txflood_running(struct txflood *f)
{
	return __atomic_load_n(&f->left, __ATOMIC_RELAXED) > 0;
}

int txflood_stop(struct txflood *f, struct fakeport_loop *d)
{
	int ret;

	__atomic_store_n(&f->left, 0, __ATOMIC_RELAXED);
	ret = fakeport_loop_sync(d, TXFLOOD_T_MS);
	fakeport_on_send(f->p, NULL, NULL);
	return ret;
}
