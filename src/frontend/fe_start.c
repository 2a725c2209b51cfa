/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Whole sessions in the message orders real frontends use. */
#include <errno.h>
#include <string.h>

#include "fe_priv.h"
#include "vhost-user/vlog.h"

#define FE_DEFAULT_QUEUE_SIZE 256

void fe_start_opts_default(struct fe_start_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->order = FE_ORDER_QEMU;
	o->features = FE_F_VERSION_1 | FE_F_PROTOCOL_FEATURES | FE_F_EVENT_IDX | FE_F_INDIRECT_DESC;
	o->protocol_features =
	    (1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
	    (1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ) | (1ull << VHOST_USER_PROTOCOL_F_CONFIG) |
	    (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
	o->queue_size = FE_DEFAULT_QUEUE_SIZE;
}

static bool proto_has(const struct fe *f, unsigned int bit)
{
	return (f->protocol >> bit) & 1;
}

/* GET_FEATURES, then the protocol features when both sides want them. */
static int negotiate(struct fe *f, const struct fe_start_opts *o)
{
	int ret;

	f->protocol = 0;
	ret = fe_get_features(f, NULL);
	if (ret < 0)
		return ret;
	if (!(f->offered_features & o->features & FE_F_PROTOCOL_FEATURES))
		return 0;
	ret = fe_get_protocol_features(f, NULL);
	if (ret == 0)
		ret = fe_set_protocol_features(f, o->protocol_features & f->offered_protocol);
	if (ret == 0 && proto_has(f, VHOST_USER_PROTOCOL_F_REPLY_ACK))
		f->acks = true;
	return ret;
}

/* GET_QUEUE_NUM when MQ was negotiated; decide how many rings to run. */
static int count_rings(struct fe *f, const struct fe_start_opts *o)
{
	uint64_t avail = 1;
	int ret;

	if (proto_has(f, VHOST_USER_PROTOCOL_F_MQ)) {
		ret = fe_get_queue_num(f, &avail);
		if (ret < 0)
			return ret;
	}
	f->nrings = o->num_queues ? o->num_queues
				  : (unsigned int)(avail < FE_MAX_QUEUES ? avail : FE_MAX_QUEUES);
	if (f->nrings == 0 || f->nrings > FE_MAX_QUEUES || f->nrings > avail) {
		vlog_warn(FE_TAG, "want %u rings, backend has %llu", f->nrings,
			  (unsigned long long)avail);
		f->nrings = 0;
		return -ENOTSUP;
	}
	return 0;
}

static int give_memory(struct fe *f, const struct fe_start_opts *o)
{
	int ret = 0;

	if (!o->add_mem_reg)
		return fe_set_mem_table(f);
	if (!proto_has(f, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
		return -ENOTSUP;
	for (unsigned int i = 0; i < f->nregions && ret == 0; i++)
		ret = fe_add_mem_reg(f, i);
	return ret;
}

static int setup_rings(struct fe *f, const struct fe_start_opts *o)
{
	uint16_t size = o->queue_size ? o->queue_size : FE_DEFAULT_QUEUE_SIZE;

	for (unsigned int q = 0; q < f->nrings; q++) {
		if (!f->rings[q].ready) {
			int ret = fe_ring_setup(f, q, size);

			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

static int calls_first(struct fe *f, const struct fe_start_opts *o)
{
	int ret = 0;

	if (!o->call_before_mem)
		return 0;
	for (unsigned int q = 0; q < f->nrings && ret == 0; q++)
		ret = fe_ring_set_call(f, q);
	return ret;
}

static bool enable_needed(const struct fe *f)
{
	/* Without PROTOCOL_FEATURES rings are enabled at once: no message. */
	return (f->features & FE_F_PROTOCOL_FEATURES) != 0;
}

static int start_qemu(struct fe *f, const struct fe_start_opts *o)
{
	int ret;

	ret = negotiate(f, o);
	if (ret == 0)
		ret = count_rings(f, o);
	if (ret == 0 && proto_has(f, VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
		ret = fe_get_max_mem_slots(f, NULL);
	if (ret == 0 && proto_has(f, VHOST_USER_PROTOCOL_F_BACKEND_REQ))
		ret = fe_backend_channel_open(f);
	if (ret == 0)
		ret = fe_set_owner(f);
	if (ret == 0)
		ret = fe_set_features(f, o->features & f->offered_features);
	if (ret == 0)
		ret = setup_rings(f, o);
	if (ret == 0)
		ret = calls_first(f, o);
	if (ret == 0)
		ret = give_memory(f, o);
	for (unsigned int q = 0; q < f->nrings && ret == 0; q++) {
		ret = fe_ring_set_num(f, q);
		if (ret == 0)
			ret = fe_ring_set_base(f, q);
		if (ret == 0)
			ret = fe_ring_set_addr(f, q);
		if (ret == 0)
			ret = fe_ring_set_kick(f, q);
		if (ret == 0 && !o->call_before_mem)
			ret = fe_ring_set_call(f, q);
		if (ret == 0 && enable_needed(f))
			ret = fe_ring_set_enable(f, q, true);
	}
	return ret;
}

static int start_cloud_hv(struct fe *f, const struct fe_start_opts *o)
{
	int ret;

	ret = fe_set_owner(f);
	if (ret == 0)
		ret = negotiate(f, o);
	if (ret == 0)
		ret = count_rings(f, o);
	if (ret == 0)
		ret = fe_set_features(f, o->features & f->offered_features);
	if (ret == 0)
		ret = setup_rings(f, o);
	if (ret == 0)
		ret = calls_first(f, o);
	if (ret == 0)
		ret = give_memory(f, o);
	for (unsigned int q = 0; q < f->nrings && ret == 0; q++)
		ret = fe_ring_set_num(f, q);
	for (unsigned int q = 0; q < f->nrings && ret == 0; q++) {
		ret = fe_ring_set_addr(f, q);
		if (ret == 0)
			ret = fe_ring_set_base(f, q);
		if (ret == 0 && !o->call_before_mem)
			ret = fe_ring_set_call(f, q);
		if (ret == 0)
			ret = fe_ring_set_kick(f, q);
	}
	for (unsigned int q = 0; q < f->nrings && ret == 0 && enable_needed(f); q++)
		ret = fe_ring_set_enable(f, q, true);
	if (ret == 0 && proto_has(f, VHOST_USER_PROTOCOL_F_BACKEND_REQ))
		ret = fe_backend_channel_open(f);
	return ret;
}

int fe_start(struct fe *f, const struct fe_start_opts *o)
{
	struct fe_start_opts def;
	int ret;

	if (f->sock < 0)
		return -ENOTCONN;
	if (!o) {
		fe_start_opts_default(&def);
		o = &def;
	}
	switch (o->order) {
	case FE_ORDER_QEMU:
		ret = start_qemu(f, o);
		break;
	case FE_ORDER_CLOUD_HV:
		ret = start_cloud_hv(f, o);
		break;
	default:
		return -EINVAL;
	}
	if (ret < 0)
		vlog_debug(FE_TAG, "start: %s", strerror(-ret));
	return ret;
}

int fe_stop(struct fe *f)
{
	int ret = 0;

	for (unsigned int q = 0; q < f->nrings && ret == 0; q++) {
		if (!f->rings[q].started)
			continue;
		if (enable_needed(f))
			ret = fe_ring_set_enable(f, q, false);
		if (ret == 0)
			ret = fe_ring_get_base(f, q, NULL);
	}
	return ret;
}

unsigned int fe_num_rings(const struct fe *f)
{
	return f->nrings;
}
