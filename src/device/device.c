/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The virtio-can device (VIRTIO 1.4, 5.20).
 *
 * Everything read from a chain is guest input: lengths are checked against
 * what the chain really holds, reads and writes go through the chain's
 * iovecs only, and a malformed request is completed (never left hanging)
 * rather than acted on. Policies decided here:
 *  - TX and control results go to the first device-writable byte; a
 *    request without one is completed with used length 0 and not acted on.
 *  - A TX request whose length field exceeds the readable bytes after the
 *    header is completed NOT_OK without reading past the buffer.
 *  - CAN FD frames from the guest are sent with BRS (see device_frame.c).
 *  - RX backlog full: the newest frame is dropped (rx_dropped_overflow),
 *    so the guest sees an unbroken prefix of the traffic.
 *  - RX chain too small for a frame: the chain is returned with used
 *    length 0 and that frame is dropped (rx_dropped_small), so a guest
 *    posting small buffers loses one frame per buffer, never stalls.
 *  - RTR frames to the guest carry the DLC as length, followed by that
 *    many zero bytes (the driver wants used length >= 16 + length).
 */
#include "device.h"

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cbits.h"
#include "device_frame.h"
#include "virtio_can.h"
#include "vhost-user/vlog.h"

/* device.h names the queues without the wire header; they are the spec's. */
_Static_assert(DEVICE_QUEUE_TX == VIRTIO_CAN_QUEUE_TX && DEVICE_QUEUE_RX == VIRTIO_CAN_QUEUE_RX &&
		   DEVICE_QUEUE_CTRL == VIRTIO_CAN_QUEUE_CTRL &&
		   DEVICE_NUM_QUEUES == VIRTIO_CAN_NUM_QUEUES,
	       "device_queue is the spec's queue order");

/* Chains completed per push (RX, failing pending requests). */
#define DEVICE_BATCH 256
/*
 * TX requests per send call, completed and signalled before the next ones
 * are popped: the guest refills the ring while the device sends the rest,
 * instead of the two taking turns over a whole ring.
 */
#define DEVICE_TX_CHUNK 32
/* Budgets per wakeup: see DEVICE_TX_BUDGET in device.h. */

/* A TX request of the chunk being sent; its frame is tx_frames[same index]. */
struct device_tx_item {
	uint8_t *result;      /* first device-writable byte of the chain */
	uint64_t slot_end_ns; /* --bitrate: when its time on the bus is over */
	uint16_t head;
};

/* A TX request sent and waiting for its echo (LATE_TX_ACK). */
struct device_pending {
	struct cframe f;
	uint8_t *result;
	uint64_t deadline;
	uint64_t slot_end_ns; /* --bitrate: complete no earlier */
	bool confirmed;	      /* echo seen, slot not over yet */
	uint16_t head;
};

struct device {
	char name[32];
	struct device_port_ops ops;
	void *port;
	unsigned int tx_ack_timeout_ms;

	struct vu_device vdev;
	device_config_notify_fn config_notify;
	void *config_notify_opaque;

	uint64_t features; /* negotiated device bits */
	bool started;
	uint16_t status; /* config space, host order */
	struct vq *q[VIRTIO_CAN_NUM_QUEUES];

	/* LATE_TX_ACK: ring of pending requests, oldest first, no holes. */
	struct device_pending *pend;
	unsigned int pend_cap, pend_first, pend_count;

	/* RX backlog: fixed ring of frames not yet given to the guest. */
	struct cframe *rx;
	unsigned int rx_cap, rx_first, rx_count;

	struct device_stats stats;
	/* Lines the guest (or a peer on the bus) can cause at will. */
	struct vlog_limit log_limit;
	struct vlog_limit deny_limit; /* one line a second */
	device_observe_fn obs;
	void *obs_opaque;
	device_before_send_fn before_send;
	void *before_send_opaque;
	bool has_allow;
	struct cfilt tx_allow;
	uint32_t bitrate, dbitrate; /* --bitrate; 0: no pacing */
	uint64_t bus_free_ns;	    /* when the bus is idle again */
	bool pace_wait;		    /* TX stopped for the bus: device_tick resumes it */
	bool pace_backlog;	    /* frames were waiting for the bus since the last empty ring */
	bool rx_hold, rx_held;	    /* device_rx_hold: RX interrupt deferred, and one is due */

	/* Scratch, kept here rather than on the stack. */
	struct vq_chain chain;
	struct device_tx_item tx[DEVICE_TX_CHUNK];
	struct cframe tx_frames[DEVICE_TX_CHUNK];
	int tx_res[DEVICE_TX_CHUNK];
	/* Used elements of one queue at a time: every user flushes before returning. */
	struct vq_used used[DEVICE_BATCH];
	unsigned int nused;
	bool used_pushed; /* used_add() pushed a full batch since the last flush */
};

static uint64_t device_now_ns(const struct device *d)
{
	struct timespec ts;

	if (d->ops.now_ms)
		return d->ops.now_ms(d->port) * 1000000u;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t device_now(const struct device *d)
{
	struct timespec ts;

	if (d->ops.now_ms)
		return d->ops.now_ms(d->port);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One branch when no observer is set: --capture off costs nothing more. */
#define OBSERVE(d, o, f)                                                                           \
	do {                                                                                       \
		if ((d)->obs)                                                                      \
			(d)->obs((d)->obs_opaque, (o), (f));                                       \
	} while (0)

/*
 * The work a queue did in one wakeup: descriptors read since start (the
 * vq's count when the wakeup began).
 */
static uint64_t work_done(const struct vq *q, uint64_t start)
{
	return q->walked - start;
}

/*
 * Whether one more pop fits in budget: its worst case does. The first pop
 * of a wakeup always may, so a queue whose chains cost more than the
 * budget (the device's bound is well below it) still moves.
 */
static bool work_left(const struct vq *q, uint64_t start, unsigned int budget)
{
	uint64_t done = work_done(q, start);

	return done == 0 || done + vq_pop_cost_max(q) <= budget;
}

/* The wakeup is over: keep the largest for device_stats.walk_max. */
static void work_end(struct device *d, const struct vq *q, unsigned int qi, uint64_t start)
{
	uint64_t done = work_done(q, start);

	if (done > d->stats.walk_max[qi])
		d->stats.walk_max[qi] = done;
}

/* The first device-writable byte of a popped chain, or NULL. */
static uint8_t *chain_result_byte(const struct vq_chain *c)
{
	for (unsigned int i = c->nout; i < c->nout + c->nin; i++)
		if (c->iov[i].iov_len > 0)
			return c->iov[i].iov_base;
	return NULL;
}

/* Queue a used element; pushes when the batch is full. */
static void used_add(struct device *d, struct vq *q, uint16_t head, uint32_t len)
{
	d->used[d->nused].id = head;
	d->used[d->nused].len = len;
	d->nused++;
	if (d->nused == DEVICE_BATCH) {
		vq_push_batch(q, d->used, d->nused);
		d->nused = 0;
		/* Remembered, or a run of exactly DEVICE_BATCH would go unsignalled. */
		d->used_pushed = true;
	}
}

/* Push what used_add() collected; true when anything was pushed since the last flush. */
static bool used_flush(struct device *d, struct vq *q)
{
	bool pushed = d->nused > 0 || d->used_pushed;

	if (d->nused > 0)
		vq_push_batch(q, d->used, d->nused);
	d->nused = 0;
	d->used_pushed = false;
	return pushed;
}

static void complete_result(struct device *d, struct vq *q, uint16_t head, uint8_t *result,
			    uint8_t value)
{
	if (result) {
		*result = value;
		used_add(d, q, head, 1);
	} else {
		used_add(d, q, head, 0);
	}
}

/* ---- LATE_TX_ACK pending requests ---- */

static struct device_pending *pend_at(struct device *d, unsigned int i)
{
	return &d->pend[(d->pend_first + i) % d->pend_cap];
}

/* Remove entry i, keeping order: shift the older ones up by one. */
static void pend_remove(struct device *d, unsigned int i)
{
	for (; i > 0; i--)
		*pend_at(d, i) = *pend_at(d, i - 1);
	d->pend_first = (d->pend_first + 1) % d->pend_cap;
	d->pend_count--;
}

/*
 * Complete every pending TX request (controller or ring stopped): NOT_OK,
 * except a paced one whose echo already came and that only waited for its
 * slot to end: it was on the bus, and the guest is told so.
 */
static void pend_fail_all(struct device *d, const char *why)
{
	struct vq *q = d->q[VIRTIO_CAN_QUEUE_TX];

	if (d->pend_count == 0)
		return;
	vlog_debug(d->name, "%u pending TX requests completed: %s", d->pend_count, why);
	while (d->pend_count > 0) {
		struct device_pending *p = pend_at(d, 0);

		if (p->confirmed) {
			if (q)
				complete_result(d, q, p->head, p->result, VIRTIO_CAN_RESULT_OK);
			d->stats.tx_ok++;
			OBSERVE(d, DEVICE_TX_SENT, &p->f);
		} else {
			if (q)
				complete_result(d, q, p->head, p->result, VIRTIO_CAN_RESULT_NOT_OK);
			d->stats.tx_stopped++;
			OBSERVE(d, DEVICE_TX_STOPPED, &p->f);
		}
		pend_remove(d, 0);
	}
	if (q && used_flush(d, q))
		vq_notify(q);
}

/* ---- RX ---- */

static void rx_drop_head(struct device *d)
{
	d->rx_first = (d->rx_first + 1) % d->rx_cap;
	d->rx_count--;
}

/* The controller stopped: what the guest has not taken yet is stale. */
static void rx_drop_backlog(struct device *d)
{
	for (unsigned int i = 0; d->obs && i < d->rx_count; i++)
		OBSERVE(d, DEVICE_RX_DROP_STOPPED, &d->rx[(d->rx_first + i) % d->rx_cap]);
	d->stats.rx_dropped_stopped += d->rx_count;
	d->rx_first = d->rx_count = 0;
}

/* Give backlog frames to the guest while it has buffers. Pushes, no notify. */
static bool rx_deliver(struct device *d)
{
	struct vq *q = d->q[VIRTIO_CAN_QUEUE_RX];
	uint8_t msg[VIRTIO_CAN_HDR_SIZE + CFRAME_MAX_DATA];
	bool pushed = false;
	uint64_t start;

	if (!q)
		return false;
	start = q->walked;
	/* Pop only when there is a frame to put in the chain. */
	while (d->rx_count > 0) {
		struct vq_chain *c = &d->chain;
		const struct cframe *f = &d->rx[d->rx_first];
		unsigned int len;
		int r;

		if (!work_left(q, start, DEVICE_RX_BUDGET)) {
			vq_resume_later(q);
			break;
		}
		r = vq_pop(q, c);
		if (r <= 0)
			break;
		len = device_rx_encode(f, msg);
		if (c->in_len < len) {
			vlog_debug(d->name,
				   "RX buffer of %llu bytes for a %u-byte message: dropped",
				   (unsigned long long)c->in_len, len);
			used_add(d, q, c->head, 0);
			d->stats.rx_dropped_small++;
			OBSERVE(d, DEVICE_RX_DROP_SMALL, f);
		} else {
			vq_iov_write(c->iov + c->nout, c->nin, 0, msg, len);
			used_add(d, q, c->head, len);
			d->stats.rx_delivered++;
			OBSERVE(d, DEVICE_RX_DELIVERED, f);
		}
		rx_drop_head(d);
	}
	work_end(d, q, VIRTIO_CAN_QUEUE_RX, start);
	if (used_flush(d, q))
		pushed = true;
	return pushed;
}

void device_rx_frames(struct device *d, const struct cframe *f, unsigned int n)
{
	bool pushed = false;

	for (unsigned int i = 0; i < n; i++) {
		const char *why;

		if (!d->started) {
			d->stats.rx_dropped_stopped++;
			OBSERVE(d, DEVICE_RX_DROP_STOPPED, &f[i]);
			continue;
		}
		why = device_rx_check(&f[i], d->features);
		if (why) {
			vlog_debug(d->name, "RX frame %#x dropped: %s", f[i].id, why);
			d->stats.rx_dropped_type++;
			OBSERVE(d, DEVICE_RX_DROP_TYPE, &f[i]);
			continue;
		}
		if (d->rx_count == d->rx_cap) {
			pushed |= rx_deliver(d);
			if (d->rx_count == d->rx_cap) {
				d->stats.rx_dropped_overflow++;
				OBSERVE(d, DEVICE_RX_DROP_FULL, &f[i]);
				continue;
			}
		}
		d->rx[(d->rx_first + d->rx_count) % d->rx_cap] = f[i];
		d->rx_count++;
	}
	pushed |= rx_deliver(d);
	if (pushed && d->rx_hold)
		d->rx_held = true; /* device_rx_release signals, once for all */
	else if (pushed)
		vq_notify(d->q[VIRTIO_CAN_QUEUE_RX]);
}

void device_rx_hold(struct device *d)
{
	d->rx_hold = true;
}

void device_rx_release(struct device *d)
{
	d->rx_hold = false;
	if (d->rx_held && d->q[VIRTIO_CAN_QUEUE_RX])
		vq_notify(d->q[VIRTIO_CAN_QUEUE_RX]);
	d->rx_held = false;
}

/* ---- TX ---- */

/*
 * Parse one TX chain. Returns true with item filled when the frame may be
 * sent; false when it was rejected (already queued for completion).
 */
static bool tx_parse(struct device *d, struct vq *q, const struct vq_chain *c,
		     struct device_tx_item *item, struct cframe *fr)
{
	uint8_t raw[VIRTIO_CAN_HDR_SIZE];
	struct device_hdr h;
	const char *why = NULL;
	bool have_hdr = false;

	item->head = c->head;
	item->result = chain_result_byte(c);
	if (!item->result)
		why = "no writable byte for the result";
	else if (vq_iov_read(c->iov, c->nout, 0, raw, sizeof(raw)) != sizeof(raw))
		why = "request shorter than the header";
	if (!why) {
		device_hdr_decode(raw, &h);
		have_hdr = true;
		why = device_tx_check(&h, d->features);
	}
	if (!why && !d->started)
		why = (d->status & VIRTIO_CAN_S_CTRL_BUSOFF) ? "controller bus-off"
							     : "controller stopped";
	if (!why) {
		device_tx_to_cframe(&h, fr);
		/* RTR: the length is the requested DLC, there is no payload. */
		if (!(h.flags & VIRTIO_CAN_FLAGS_RTR) && h.length > 0 &&
		    vq_iov_read(c->iov, c->nout, VIRTIO_CAN_HDR_SIZE, fr->data, h.length) !=
			h.length)
			why = "length beyond the readable buffer";
	}
	if (!why && d->has_allow && !cfilt_match(&d->tx_allow, fr)) {
		/* The host's policy, not the guest's mistake: its own count and line. */
		d->stats.tx_denied++;
		OBSERVE(d, DEVICE_TX_DENIED, fr);
		vlog_limited(&d->deny_limit, VLOG_WARN, d->name,
			     "TX of id %#x denied (not in --tx-allow); %llu denied so far", fr->id,
			     (unsigned long long)d->stats.tx_denied);
		complete_result(d, q, c->head, item->result, VIRTIO_CAN_RESULT_NOT_OK);
		return false;
	}
	if (!why)
		return true;
	vlog_debug(d->name, "TX request %u rejected: %s", c->head, why);
	d->stats.tx_rejected++;
	if (d->obs && have_hdr) {
		/* What the header said; the payload may be missing. */
		struct cframe f;

		device_tx_to_cframe(&h, &f);
		OBSERVE(d, DEVICE_TX_REJECTED, &f);
	}
	complete_result(d, q, c->head, item->result, VIRTIO_CAN_RESULT_NOT_OK);
	return false;
}

/* The bus has room for one more frame now (always, without --bitrate). */
static bool pace_room(struct device *d)
{
	uint64_t now;

	if (!d->bitrate)
		return true;
	now = device_now_ns(d);
	if (d->bus_free_ns < now) {
		/*
		 * Behind the clock. An idle bus gives no credit. But frames that
		 * were waiting for the bus would have followed each other on it
		 * without a gap: our wake-up came late, not the guest's frames,
		 * so their slots stay back to back (at most a window behind).
		 */
		if (!d->pace_backlog)
			d->bus_free_ns = now;
		else if (now - d->bus_free_ns > DEVICE_PACE_AHEAD_NS)
			d->bus_free_ns = now - DEVICE_PACE_AHEAD_NS;
	}
	return d->bus_free_ns <= now + DEVICE_PACE_AHEAD_NS;
}

/* Book the frame's time on the bus, after what was booked before. */
static void pace_reserve(struct device *d, struct device_tx_item *it, const struct cframe *f)
{
	if (!d->bitrate) {
		it->slot_end_ns = 0;
		return;
	}
	d->bus_free_ns += cbits_frame_ns(f, d->bitrate, d->dbitrate);
	it->slot_end_ns = d->bus_free_ns;
}

static void pend_add(struct device *d, const struct device_tx_item *it, const struct cframe *f,
		     uint64_t now)
{
	struct device_pending *p;

	p = &d->pend[(d->pend_first + d->pend_count) % d->pend_cap];
	p->f = *f;
	p->slot_end_ns = it->slot_end_ns;
	p->confirmed = false;
	p->result = it->result;
	p->head = it->head;
	/*
	 * Paced, the frame was handed over up to DEVICE_PACE_AHEAD_NS plus its own
	 * bus time before its slot ends: the wait for its echo starts there.
	 * Slots only move forward, so deadlines stay in order.
	 */
	if (it->slot_end_ns) {
		uint64_t end = (it->slot_end_ns + 999999u) / 1000000u;

		if (end > now)
			now = end;
	}
	p->deadline = now + d->tx_ack_timeout_ms;
	d->pend_count++;
}

/* Send a batch and complete (or park) each request. */
static void tx_send_batch(struct device *d, struct vq *q, unsigned int n)
{
	bool late = d->features & DEVICE_F_LATE_TX_ACK;
	uint64_t now = 0;
	int r;

	for (unsigned int i = 0; i < n; i++)
		d->tx_res[i] = 0;
	if (d->before_send)
		d->before_send(d->before_send_opaque, n);
	r = d->ops.send(d->port, d->tx_frames, n, d->tx_res);
	if (r < 0) {
		vlog_limited(&d->log_limit, VLOG_WARN, d->name, "send of %u frames failed: %s", n,
			     strerror(-r));
		for (unsigned int i = 0; i < n; i++)
			d->tx_res[i] = r;
	}
	if (late)
		now = device_now(d);
	for (unsigned int i = 0; i < n; i++) {
		const struct device_tx_item *it = &d->tx[i];
		const struct cframe *f = &d->tx_frames[i];

		if (d->tx_res[i] < 0) {
			vlog_debug(d->name, "frame %#x not sent: %s", f->id,
				   strerror(-d->tx_res[i]));
			d->stats.tx_failed++;
			OBSERVE(d, DEVICE_TX_FAILED, f);
			complete_result(d, q, it->head, it->result, VIRTIO_CAN_RESULT_NOT_OK);
		} else if (late && d->pend_count < d->pend_cap) {
			/* Always room: each pending request holds one of q->num chains. */
			pend_add(d, it, f, now);
		} else {
			/* Handed to the bus; without LATE_TX_ACK that is OK. */
			d->stats.tx_ok++;
			OBSERVE(d, DEVICE_TX_SENT, f);
			complete_result(d, q, it->head, it->result, VIRTIO_CAN_RESULT_OK);
		}
	}
}

static void tx_kick(struct device *d, struct vq *q)
{
	uint64_t start = q->walked;
	bool pushed = false;
	int r;

	do {
		unsigned int nvalid = 0;

		r = 0;
		while (nvalid + d->nused < DEVICE_TX_CHUNK && work_left(q, start, DEVICE_TX_BUDGET)) {
			/* Stopped, requests are refused at once: no bus time to wait for. */
			if (d->started && !pace_room(d)) {
				/* A real bus would still be busy: device_tick goes on. */
				d->pace_wait = true;
				d->pace_backlog = true;
				r = 0;
				break;
			}
			r = vq_pop(q, &d->chain);
			if (r <= 0) {
				d->pace_backlog = false; /* the ring ran empty: the bus may idle */
				break;
			}
			if (tx_parse(d, q, &d->chain, &d->tx[nvalid], &d->tx_frames[nvalid])) {
				pace_reserve(d, &d->tx[nvalid], &d->tx_frames[nvalid]);
				nvalid++;
			}
		}
		if (nvalid > 0)
			tx_send_batch(d, q, nvalid);
		/* Completions become visible chunk by chunk; one interrupt per kick. */
		pushed |= used_flush(d, q);
	} while (r > 0 && work_left(q, start, DEVICE_TX_BUDGET));
	work_end(d, q, VIRTIO_CAN_QUEUE_TX, start);
	/* With EVENT_IDX the guest says whether it wants them signalled. */
	if (pushed)
		vq_notify(q);
	/* Stopped on the budget: the ring may hold more, and kicks are off. */
	if (r > 0)
		vq_resume_later(q);
}

void device_tx_confirmed(struct device *d, const struct cframe *f)
{
	struct vq *q = d->q[VIRTIO_CAN_QUEUE_TX];

	for (unsigned int i = 0; i < d->pend_count; i++) {
		struct device_pending *p = pend_at(d, i);

		if (!device_cframe_same(&p->f, f) || p->confirmed)
			continue;
		if (d->bitrate && p->slot_end_ns > device_now_ns(d)) {
			/* On the bus, but its slot is not over: device_tick completes it. */
			p->confirmed = true;
			return;
		}
		if (q) {
			complete_result(d, q, p->head, p->result, VIRTIO_CAN_RESULT_OK);
			used_flush(d, q);
			vq_notify(q);
		}
		d->stats.tx_ok++;
		OBSERVE(d, DEVICE_TX_SENT, &p->f);
		pend_remove(d, i);
		return;
	}
	vlog_debug(d->name, "echo of frame %#x matches no pending request", f->id);
}

/* Milliseconds from now to t_ns, rounded up; 0 when past. */
static int ms_until(uint64_t now_ns, uint64_t t_ns)
{
	uint64_t ms;

	if (t_ns <= now_ns)
		return 0;
	ms = (t_ns - now_ns + 999999u) / 1000000u;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

int device_timeout_ms(struct device *d)
{
	uint64_t now;
	int t = -1;

	/* Asked every loop turn: no clock read when nothing waits. */
	if (d->pend_count == 0 && !d->pace_wait)
		return -1;
	now = device_now_ns(d);
	if (d->pend_count > 0) {
		/* Same timeout for all, added in order: the oldest expires first. */
		t = ms_until(now, pend_at(d, 0)->deadline * 1000000u);
		/* Only paced requests are held past their echo. */
		for (unsigned int i = 0; d->bitrate && i < d->pend_count; i++) {
			const struct device_pending *p = pend_at(d, i);

			if (p->confirmed && ms_until(now, p->slot_end_ns) < t)
				t = ms_until(now, p->slot_end_ns);
		}
	}
	if (d->pace_wait) {
		int w = ms_until(now, d->bus_free_ns - DEVICE_PACE_AHEAD_NS);

		if (t < 0 || w < t)
			t = w;
	}
	return t;
}

void device_tick(struct device *d)
{
	struct vq *q = d->q[VIRTIO_CAN_QUEUE_TX];
	uint64_t now, now_ns;

	if (d->pace_wait && pace_room(d)) {
		d->pace_wait = false;
		/* Stopped meanwhile: tx_kick refuses the ring's requests, kicks come back on. */
		if (q)
			tx_kick(d, q);
	}
	if (d->pend_count == 0)
		return;
	now = device_now(d);
	now_ns = device_now_ns(d);
	/* Confirmed frames whose slot on the bus is over. */
	for (unsigned int i = 0; i < d->pend_count;) {
		struct device_pending *p = pend_at(d, i);

		if (!p->confirmed || p->slot_end_ns > now_ns) {
			i++;
			continue;
		}
		if (q)
			complete_result(d, q, p->head, p->result, VIRTIO_CAN_RESULT_OK);
		d->stats.tx_ok++;
		OBSERVE(d, DEVICE_TX_SENT, &p->f);
		pend_remove(d, i);
	}
	while (d->pend_count > 0 && pend_at(d, 0)->deadline <= now) {
		struct device_pending *p = pend_at(d, 0);

		vlog_debug(d->name, "frame %#x: no transmit confirmation in %u ms", p->f.id,
			   d->tx_ack_timeout_ms);
		if (q)
			complete_result(d, q, p->head, p->result, VIRTIO_CAN_RESULT_NOT_OK);
		d->stats.tx_timeout++;
		OBSERVE(d, DEVICE_TX_TIMEOUT, &p->f);
		pend_remove(d, 0);
	}
	if (q && used_flush(d, q))
		vq_notify(q);
}

/* ---- Controller state ---- */

/* One TX request found in the ring when the controller stopped: NOT_OK. */
static void tx_stop_one(struct device *d, struct vq *q, const struct vq_chain *c)
{
	uint8_t raw[VIRTIO_CAN_HDR_SIZE];
	uint8_t *result = chain_result_byte(c);
	struct device_hdr h;
	struct cframe f;

	complete_result(d, q, c->head, result, VIRTIO_CAN_RESULT_NOT_OK);
	if (result && vq_iov_read(c->iov, c->nout, 0, raw, sizeof(raw)) == sizeof(raw)) {
		device_hdr_decode(raw, &h);
		if (!device_tx_check(&h, d->features)) {
			d->stats.tx_stopped++;
			if (d->obs) {
				device_tx_to_cframe(&h, &f);
				if (!(h.flags & VIRTIO_CAN_FLAGS_RTR) && h.length > 0)
					(void)vq_iov_read(c->iov, c->nout, VIRTIO_CAN_HDR_SIZE,
							  f.data, h.length);
				OBSERVE(d, DEVICE_TX_STOPPED, &f);
			}
			return;
		}
	}
	/* Malformed: refused as it would have been at any time. */
	d->stats.tx_rejected++;
}

/*
 * The controller stopped (STOP or bus-off): TX requests still in the ring
 * (under --bitrate, waiting for bus time) were meant for the bus as it was;
 * complete them NOT_OK now, so none goes out after a later START, and pop
 * until the ring is empty so that kicks are back on (the device had turned
 * them off while it drained). At most one ring's worth here: a guest still
 * adding requests gets them refused by the resumed kick.
 */
static void tx_stop_ring(struct device *d, const char *why)
{
	struct vq *q = d->q[VIRTIO_CAN_QUEUE_TX];
	unsigned int n = 0;
	uint64_t start;
	int r = 0;

	d->pace_wait = false;
	d->pace_backlog = false;
	if (!q)
		return;
	/* One TX budget; the rest is refused by the stopped tx_kick next turn. */
	start = q->walked;
	while (work_left(q, start, DEVICE_TX_BUDGET)) {
		r = vq_pop(q, &d->chain);
		if (r <= 0)
			break;
		tx_stop_one(d, q, &d->chain);
		n++;
	}
	work_end(d, q, VIRTIO_CAN_QUEUE_TX, start);
	if (r > 0)
		vq_resume_later(q);
	if (n > 0)
		vlog_debug(d->name, "%u TX requests in the ring NOT_OK: %s", n, why);
	if (used_flush(d, q))
		vq_notify(q);
}

static uint8_t ctrl_start(struct device *d)
{
	int r;

	if (d->started)
		return VIRTIO_CAN_RESULT_OK;
	if (d->ops.start) {
		r = d->ops.start(d->port);
		if (r < 0) {
			vlog_limited(&d->log_limit, VLOG_ERR, d->name,
				     "controller start failed: %s", strerror(-r));
			return VIRTIO_CAN_RESULT_NOT_OK;
		}
	}
	/* Status first: the driver reads it once the request is used. */
	d->status &= (uint16_t)~VIRTIO_CAN_S_CTRL_BUSOFF;
	d->started = true;
	vlog_limited(&d->log_limit, VLOG_INFO, d->name, "controller started");
	/*
	 * The guest may have queued frames without a kick since the ring
	 * emptied: look at the ring now, which also turns kicks back on.
	 */
	if (d->q[VIRTIO_CAN_QUEUE_TX])
		tx_kick(d, d->q[VIRTIO_CAN_QUEUE_TX]);
	return VIRTIO_CAN_RESULT_OK;
}

static uint8_t ctrl_stop(struct device *d)
{
	int r;

	pend_fail_all(d, "controller stopped");
	if (!d->started)
		return VIRTIO_CAN_RESULT_OK;
	d->started = false;
	tx_stop_ring(d, "controller stopped");
	rx_drop_backlog(d);
	if (d->ops.stop) {
		r = d->ops.stop(d->port);
		/* The device stops transmitting either way: still OK. */
		if (r < 0)
			vlog_limited(&d->log_limit, VLOG_WARN, d->name,
				     "controller stop on the port failed: %s", strerror(-r));
	}
	vlog_limited(&d->log_limit, VLOG_INFO, d->name, "controller stopped");
	return VIRTIO_CAN_RESULT_OK;
}

static void ctrl_kick(struct device *d, struct vq *q)
{
	const struct vq *txq = d->q[VIRTIO_CAN_QUEUE_TX];
	uint64_t start = q->walked, tx_start = txq ? txq->walked : 0;
	bool pushed = false;

	/* In order, one at a time: each result depends on the previous state. */
	for (unsigned int n = 0;; n++) {
		struct vq_chain *c = &d->chain;
		struct virtio_can_control_out out;
		uint8_t *result;
		uint16_t head;
		uint8_t res;

		/* START and STOP walk the Txq too: that counts against this wakeup. */
		if (n == DEVICE_CTRL_REQS || !work_left(q, start, DEVICE_CTRL_BUDGET) ||
		    (txq && txq->walked - tx_start >= DEVICE_TX_BUDGET)) {
			vq_resume_later(q);
			break;
		}
		if (vq_pop(q, c) <= 0)
			break;
		/* START and STOP pop the Txq into the same scratch chain. */
		head = c->head;
		result = chain_result_byte(c);
		if (!result) {
			vlog_limited(&d->log_limit, VLOG_WARN, d->name,
				     "control request without a result byte: ignored");
			res = 0;
		} else if (vq_iov_read(c->iov, c->nout, 0, &out, sizeof(out)) != sizeof(out)) {
			vlog_limited(&d->log_limit, VLOG_WARN, d->name,
				     "control request shorter than msg_type");
			res = VIRTIO_CAN_RESULT_NOT_OK;
		} else {
			switch (le16toh(out.msg_type)) {
			case VIRTIO_CAN_SET_CTRL_MODE_START:
				res = ctrl_start(d);
				break;
			case VIRTIO_CAN_SET_CTRL_MODE_STOP:
				res = ctrl_stop(d);
				break;
			default:
				vlog_debug(d->name, "unknown control msg_type %#x",
					   le16toh(out.msg_type));
				res = VIRTIO_CAN_RESULT_NOT_OK;
				break;
			}
		}
		complete_result(d, q, head, result, res);
		pushed |= used_flush(d, q);
	}
	work_end(d, q, VIRTIO_CAN_QUEUE_CTRL, start);
	if (pushed)
		vq_notify(q);
}

void device_bus_off(struct device *d)
{
	int r;

	if (d->status & VIRTIO_CAN_S_CTRL_BUSOFF)
		return;
	vlog_limited(&d->log_limit, VLOG_WARN, d->name, "controller bus-off");
	d->status |= VIRTIO_CAN_S_CTRL_BUSOFF;
	d->started = false;
	d->stats.busoff_events++;
	rx_drop_backlog(d);
	pend_fail_all(d, "bus-off");
	tx_stop_ring(d, "bus-off");
	if (d->config_notify) {
		r = d->config_notify(d->config_notify_opaque);
		if (r < 0)
			vlog_limited(&d->log_limit, VLOG_WARN, d->name,
				     "cannot notify the driver of bus-off: %s", strerror(-r));
	}
}

void device_bus_restarted(struct device *d)
{
	/* The driver restarts with START, which clears the status bit. */
	vlog_limited(&d->log_limit, VLOG_INFO, d->name, "controller restarted on the bus%s",
		     (d->status & VIRTIO_CAN_S_CTRL_BUSOFF) ? ", waiting for START" : "");
}

/* ---- vu_device_ops ---- */

static int device_set_features(void *opaque, uint64_t features)
{
	struct device *d = opaque;
	uint64_t dev = features & DEVICE_F_ALL;
	int r = 0;

	if (!(dev & (DEVICE_F_CLASSIC | DEVICE_F_FD))) {
		vlog_limited(&d->log_limit, VLOG_ERR, d->name,
			     "driver accepted neither CAN_CLASSIC nor CAN_FD");
		return -EINVAL;
	}
	if ((dev & DEVICE_F_RTR) && !(dev & DEVICE_F_CLASSIC)) {
		vlog_limited(&d->log_limit, VLOG_ERR, d->name,
			     "driver accepted RTR_FRAMES without CAN_CLASSIC");
		return -EINVAL;
	}
	if (d->ops.set_tx_confirm) {
		r = d->ops.set_tx_confirm(d->port, (dev & DEVICE_F_LATE_TX_ACK) != 0);
		if (r < 0) {
			vlog_limited(&d->log_limit, VLOG_ERR, d->name,
				     "cannot set transmit confirmations: %s", strerror(-r));
			return r;
		}
	}
	d->features = dev;
	vlog_debug(d->name, "features %#llx", (unsigned long long)dev);
	return 0;
}

static int device_get_config(void *opaque, uint32_t offset, uint8_t *buf, uint32_t size)
{
	struct device *d = opaque;
	struct virtio_can_config cfg = {.status = htole16(d->status)};
	uint8_t bytes[sizeof(cfg)];

	memcpy(bytes, &cfg, sizeof(bytes));
	for (uint32_t i = 0; i < size; i++) {
		uint64_t at = (uint64_t)offset + i;

		buf[i] = at < sizeof(bytes) ? bytes[at] : 0;
	}
	return 0;
}

/* What a queue's buffers let the device do: on a kick, or a start that may have missed one. */
static void queue_serve(struct device *d, struct vq *q)
{
	switch (q->index) {
	case VIRTIO_CAN_QUEUE_TX:
		tx_kick(d, q);
		break;
	case VIRTIO_CAN_QUEUE_RX:
		/* New buffers: the backlog can move. */
		if (rx_deliver(d))
			vq_notify(q);
		break;
	default:
		ctrl_kick(d, q);
		break;
	}
}

static void device_queue_start(void *opaque, struct vq *q)
{
	struct device *d = opaque;

	if (q->index >= VIRTIO_CAN_NUM_QUEUES)
		return;
	/* Before the first pop: longer chains are no request of ours. */
	q->max_chain = DEVICE_MAX_CHAIN;
	if (q->index == VIRTIO_CAN_QUEUE_TX) {
		/* Each pending request holds a chain: the ring size bounds them. */
		pend_fail_all(d, "TX queue restarted");
		free(d->pend);
		d->pend_first = d->pend_count = 0;
		d->pend_cap = q->num;
		d->pend = calloc(q->num ? q->num : 1, sizeof(*d->pend));
		if (!d->pend) {
			d->pend_cap = 0;
			vq_set_broken(q, "no memory for %u pending TX requests", q->num);
			return;
		}
	}
	d->q[q->index] = q;
	/* Kicks may have been lost while the ring was stopped. */
	queue_serve(d, q);
}

static void device_queue_stop(void *opaque, struct vq *q)
{
	struct device *d = opaque;

	if (q->index >= VIRTIO_CAN_NUM_QUEUES || d->q[q->index] != q)
		return;
	if (q->index == VIRTIO_CAN_QUEUE_TX) {
		pend_fail_all(d, "TX queue stopped");
		free(d->pend);
		d->pend = NULL;
		d->pend_cap = 0;
	}
	d->q[q->index] = NULL;
}

static void device_queue_kick(void *opaque, struct vq *q)
{
	struct device *d = opaque;

	if (q->index >= VIRTIO_CAN_NUM_QUEUES || d->q[q->index] != q)
		return;
	queue_serve(d, q);
}

static void device_reset(void *opaque)
{
	struct device *d = opaque;

	pend_fail_all(d, "device reset");
	if (d->started && d->ops.stop)
		d->ops.stop(d->port);
	d->started = false;
	d->status = 0;
	d->features = 0;
	d->pace_wait = d->pace_backlog = false;
	rx_drop_backlog(d);
	vlog_debug(d->name, "reset");
}

static const struct vu_device_ops device_vu_ops = {
    .set_features = device_set_features,
    .get_config = device_get_config,
    .set_config = NULL,
    .queue_start = device_queue_start,
    .queue_stop = device_queue_stop,
    .queue_kick = device_queue_kick,
    .reset = device_reset,
};

/* ---- Object ---- */

int device_new(struct device **out, const struct device_config *cfg, const struct device_port_ops *ops,
	    void *port)
{
	struct device *d;

	*out = NULL;
	if (!cfg || !ops || !ops->send)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	snprintf(d->name, sizeof(d->name), "%s", cfg->name ? cfg->name : "vcd");
	d->ops = *ops;
	d->port = port;
	d->tx_ack_timeout_ms =
	    cfg->tx_ack_timeout_ms ? cfg->tx_ack_timeout_ms : DEVICE_DEFAULT_TX_ACK_TIMEOUT_MS;
	d->rx_cap = cfg->rx_backlog ? cfg->rx_backlog : DEVICE_DEFAULT_RX_BACKLOG;
	d->deny_limit.burst = 1;
	d->bitrate = cfg->bitrate;
	d->dbitrate = cfg->dbitrate;
	if (cfg->tx_allow) {
		d->has_allow = true;
		d->tx_allow = *cfg->tx_allow;
	}
	d->rx = calloc(d->rx_cap, sizeof(*d->rx));
	if (!d->rx) {
		free(d);
		return -ENOMEM;
	}
	d->vdev.name = d->name;
	d->vdev.features = DEVICE_F_CLASSIC | DEVICE_F_RTR | DEVICE_F_LATE_TX_ACK | (cfg->fd ? DEVICE_F_FD : 0);
	d->vdev.num_queues = VIRTIO_CAN_NUM_QUEUES;
	d->vdev.max_queue_size = DEVICE_MAX_QUEUE_SIZE;
	d->vdev.config_size = sizeof(struct virtio_can_config);
	d->vdev.ops = &device_vu_ops;
	d->vdev.opaque = d;
	*out = d;
	return 0;
}

void device_free(struct device *d)
{
	if (!d)
		return;
	free(d->pend);
	free(d->rx);
	free(d);
}

const struct vu_device *device_vu_device(struct device *d)
{
	return &d->vdev;
}

void device_set_config_notify(struct device *d, device_config_notify_fn fn, void *opaque)
{
	d->config_notify = fn;
	d->config_notify_opaque = opaque;
}

bool device_started(const struct device *d)
{
	return d->started;
}

uint16_t device_status(const struct device *d)
{
	return d->status;
}

void device_get_stats(const struct device *d, struct device_stats *s)
{
	*s = d->stats;
}

const char *device_name(const struct device *d)
{
	return d->name;
}

void device_set_before_send(struct device *d, device_before_send_fn fn, void *opaque)
{
	d->before_send = fn;
	d->before_send_opaque = opaque;
}

void device_set_observer(struct device *d, device_observe_fn fn, void *opaque)
{
	d->obs = fn;
	d->obs_opaque = opaque;
}

#define DEVICE_OUTCOME_NAME(id, counter, name, label) [DEVICE_##id] = name,
#define DEVICE_OUTCOME_LABEL(id, counter, name, label) [DEVICE_##id] = label,

const char *device_outcome_name(enum device_outcome o)
{
	static const char *const names[] = {DEVICE_OUTCOMES(DEVICE_OUTCOME_NAME)};

	return (unsigned int)o < DEVICE_OUTCOME_COUNT ? names[o] : "?";
}

const char *device_outcome_label(enum device_outcome o)
{
	static const char *const labels[] = {DEVICE_OUTCOMES(DEVICE_OUTCOME_LABEL)};

	return (unsigned int)o < DEVICE_OUTCOME_COUNT ? labels[o] : "?";
}

bool device_outcome_is_tx(enum device_outcome o)
{
	return (unsigned int)o < DEVICE_TX_OUTCOME_COUNT;
}
