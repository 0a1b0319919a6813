/*
 * risk_link.c - framing the shard's outputs for its CMP links (specs/risk.md
 * 15.1): each link is a stream the shard sequences itself (seq from 1 per
 * process start, the link's stream id, CRC resealed), and what goes to the MEs
 * is routed by symbol to that symbol's link.
 */
#include <errno.h>

#include "risk_internal.h"

/* seq and stream_id are in the prefix every payload shares (struct rsx_prefix, records.h) */
static void link_stamp(struct rsx_risk_link *link, uint8_t *rec, size_t size)
{
	uint64_t seq = link->next_seq++;
	memcpy(rec + RSX_HEADER_SIZE + offsetof(struct rsx_prefix, seq), &seq, sizeof(seq));
	memcpy(rec + RSX_HEADER_SIZE + offsetof(struct rsx_prefix, stream_id), &link->stream_id,
	       sizeof(link->stream_id));
	rsx_record_seal(rec, size);
}

int rsx_risk_link_frame(struct rsx_risk_link *link, void *buf, size_t n)
{
	uint8_t *p = buf;
	size_t off = 0;
	int count = 0;
	while (off < n) {
		int size = rsx_record_check(p + off, n - off);
		if (size < 0)
			return size;
		link_stamp(link, p + off, (size_t)size);
		off += (size_t)size;
		count++;
	}
	return count;
}

size_t rsx_risk_route(const void *buf, size_t n, struct rsx_risk_link *const *links, uint32_t nlinks, int *err)
{
	const uint8_t *p = buf;
	size_t off = 0;
	union {
		struct rsx_prefix prefix;
		struct rsx_order order;
		struct rsx_cancel cancel;
		struct rsx_cancel_all cancel_all;
		struct rsx_amend amend;
		uint8_t bytes[RSX_PAYLOAD_MAX];
	} pl __attribute__((aligned(64)));

	*err = 0;
	while (off < n) {
		uint16_t type;
		int size = rsx_record_decode(p + off, n - off, &type, &pl, sizeof(pl));
		if (size < 0) {
			*err = size;
			break;
		}
		uint32_t sid;
		switch (type) {
		case RSX_REC_NEW_ORDER: sid = pl.order.symbol_id; break;
		case RSX_REC_CANCEL_ORDER: sid = pl.cancel.symbol_id; break;
		case RSX_REC_CANCEL_ALL: sid = pl.cancel_all.symbol_id; break;
		case RSX_REC_AMEND_ORDER: sid = pl.amend.symbol_id; break;
		default:
			*err = RSX_ETYPE;
			return off;
		}
		struct rsx_risk_link *link = sid < nlinks ? links[sid] : NULL;
		if (!link) {
			*err = RSX_ESTREAM;
			break;
		}
		if (link->cap - link->len < (size_t)size) {
			*err = -EAGAIN;
			break;
		}
		memcpy(link->buf + link->len, p + off, (size_t)size);
		if (type == RSX_REC_NEW_ORDER && link->out_ts_ns)	/* risk_out: the order leaves now */
			memcpy(link->buf + link->len + RSX_HEADER_SIZE + offsetof(struct rsx_order, risk_out_ts_ns),
			       &link->out_ts_ns, sizeof(link->out_ts_ns));
		link_stamp(link, link->buf + link->len, (size_t)size);
		link->len += (size_t)size;
		off += (size_t)size;
	}
	return off;
}
