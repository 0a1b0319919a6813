/*
 * cmp_sender.c - one stream's sender: hot retransmit ring, pending data that
 * the kernel has not taken yet, NAK answers (ring, then the fetch seam), and
 * idle heartbeats (specs/cmp.md section 3).
 *
 * The sender never frames or re-sequences: records arrive sealed from the
 * stream owner and the bytes in the ring are the bytes on the wire (followed
 * by their tag on a keyed stream). Only the stream's destinations get
 * retransmits: a NAK from any other address is counted and ignored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rsx/errors.h"
#include "cmp_int.h"

struct slot_meta {
	uint64_t seq;		/* seq held by the slot, 0 = none */
	uint64_t retx_ns;	/* last retransmit time, for NAK dedup */
	uint32_t retx_ip;	/* ... and to whom */
	uint16_t retx_port;
	uint16_t len;
};

struct rsx_cmp_sender {
	struct rsx_cmp_endpoint *ep;
	struct rsx_cmp_sender_config cfg;
	uint64_t mask;
	uint8_t *frames;		/* ring_size x CMP_TX_SLOT: record, then its tag if keyed */
	uint32_t tag;			/* bytes of tag after each record: 0 or RSX_CMP_MAC_BYTES */
	struct slot_meta *meta;
	int started;
	uint64_t last_seq;		/* last accepted */
	uint64_t sent[RSX_CMP_MAX_DEST];	/* per destination: last seq the kernel took */
	uint64_t last_tx_ns;
	uint64_t hb_ns;			/* the current idle heartbeat interval (back-off, section 3.5) */
	struct rsx_cmp_sender_stats st;
	struct cmp_txmsg msgs[CMP_MAX_BATCH];
	uint8_t scratch[CMP_MAX_BATCH][CMP_TX_SLOT];	/* fetched records being retransmitted */
};

void rsx_cmp_sender_config_init(struct rsx_cmp_sender_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ring_size = 4096;
	cfg->heartbeat_us = 10000;
	cfg->retx_dedup_us = 250;
}

static int pow2_in(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

int rsx_cmp_sender_open(struct rsx_cmp_endpoint *ep, const struct rsx_cmp_sender_config *cfg,
			struct rsx_cmp_sender **out)
{
	if (!ep || !cfg || !out || cfg->ndest < 1 || cfg->ndest > RSX_CMP_MAX_DEST ||
	    !pow2_in(cfg->ring_size, 64, 1u << 20) || cfg->keyed > 1)
		return RSX_EINVALID;
	for (unsigned d = 0; d < cfg->ndest; d++)
		if (cfg->dest[d].ip == 0 || cfg->dest[d].port == 0)
			return RSX_EINVALID;
	struct cmp_stream *slot = cmp_stream_get(ep, cfg->stream_id, 0);
	if (slot && slot->sender)
		return RSX_EINVALID;

	struct rsx_cmp_sender *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	for (unsigned d = 0; d < cfg->ndest && ep->io->ops->resolve; d++) {
		int rc = ep->io->ops->resolve(ep->io, &s->cfg.dest[d]);
		if (rc < 0) {
			free(s);
			return rc;
		}
	}
	s->ep = ep;
	s->mask = cfg->ring_size - 1;
	s->tag = cfg->keyed ? RSX_CMP_MAC_BYTES : 0;
	if (posix_memalign((void **)&s->frames, 64, (size_t)cfg->ring_size * CMP_TX_SLOT) != 0 ||
	    !(s->meta = calloc(cfg->ring_size, sizeof(*s->meta)))) {
		free(s->frames);
		free(s);
		return -ENOMEM;
	}
	memset(s->frames, 0, (size_t)cfg->ring_size * CMP_TX_SLOT);	/* prefault */
	slot = cmp_stream_get(ep, cfg->stream_id, 1);
	if (!slot) {
		cmp_sender_free(s);
		return RSX_EINVALID;
	}
	s->last_tx_ns = cmp_now();
	s->hb_ns = (uint64_t)cfg->heartbeat_us * 1000;
	slot->sender = s;
	*out = s;
	return 0;
}

const uint8_t *cmp_sender_key(const struct rsx_cmp_sender *s)
{
	return s->cfg.keyed ? s->cfg.key : NULL;
}

void cmp_sender_free(struct rsx_cmp_sender *s)
{
	if (!s)
		return;
	free(s->frames);
	free(s->meta);
	free(s);
}

static uint64_t min_sent(const struct rsx_cmp_sender *s)
{
	uint64_t m = s->sent[0];
	for (unsigned d = 1; d < s->cfg.ndest; d++)
		if (s->sent[d] < m)
			m = s->sent[d];
	return m;
}

/* Hand pending records to the kernel, oldest first, per destination. Returns 0 if the kernel refused some. */
static int flush(struct rsx_cmp_sender *s, uint64_t now)
{
	int all = 1;
	uint64_t total = 0;
	for (unsigned d = 0; d < s->cfg.ndest; d++) {
		while (s->sent[d] < s->last_seq) {
			unsigned n = 0;
			for (uint64_t q = s->sent[d] + 1; q <= s->last_seq && n < s->ep->io->batch; q++, n++) {
				uint64_t i = q & s->mask;
				s->msgs[n].buf = s->frames + i * CMP_TX_SLOT;
				s->msgs[n].len = s->meta[i].len + s->tag;
				s->msgs[n].to = s->cfg.dest[d];
			}
			unsigned k = cmp_ep_send(s->ep, s->msgs, n);
			s->sent[d] += k;
			total += k;
			if (k < n) {
				all = 0;
				break;	/* kernel full: stays pending */
			}
		}
	}
	if (total) {
		s->st.sent += total;
		s->last_tx_ns = now;
		s->hb_ns = (uint64_t)s->cfg.heartbeat_us * 1000;
	}
	return all;
}

/* Check and store one record; no transmission. Returns its size or an error (nothing changed). */
static int accept(struct rsx_cmp_sender *s, const uint8_t *rec, size_t len, uint64_t now)
{
	int size = s->cfg.owner_sealed ? rsx_record_check_header(rec, len) : rsx_record_check(rec, len);
	if (size < 0)
		return size;
	if ((size_t)size != len)
		return RSX_ELENGTH;
	if (!CMP_IS_DATA(CMP_REC_TYPE(rec)))
		return RSX_ETYPE;
	if (CMP_REC_STREAM(rec) != s->cfg.stream_id)
		return RSX_ESTREAM;
	uint64_t seq = CMP_REC_SEQ(rec);
	if (seq == 0 || (s->started && seq != s->last_seq + 1))
		return RSX_ESEQ;
	if (s->started && s->last_seq - min_sent(s) >= s->cfg.ring_size) {
		flush(s, now);
		if (s->last_seq - min_sent(s) >= s->cfg.ring_size) {
			s->st.stalls++;
			return -EAGAIN;
		}
	}
	if (!s->started) {
		s->started = 1;
		s->last_seq = seq - 1;
		for (unsigned d = 0; d < s->cfg.ndest; d++)
			s->sent[d] = seq - 1;
	}
	uint64_t i = seq & s->mask;
	uint8_t *frame = s->frames + i * CMP_TX_SLOT;
	memcpy(frame, rec, (size_t)size);
	if (s->tag)
		rsx_cmp_mac(s->cfg.key, frame, (size_t)size, frame + size);
	s->meta[i].seq = seq;
	s->meta[i].len = (uint16_t)size;
	s->meta[i].retx_ns = 0;
	s->last_seq = seq;
	s->st.records++;
	return size;
}

int rsx_cmp_sender_send(struct rsx_cmp_sender *s, const void *rec, size_t len)
{
	if (!s || !rec)
		return RSX_EINVALID;
	uint64_t now = cmp_now();
	int rc = accept(s, rec, len, now);
	if (rc > 0)
		flush(s, now);
	return rc;
}

int rsx_cmp_sender_send_batch(struct rsx_cmp_sender *s, const void *buf, size_t len, size_t *used)
{
	const uint8_t *p = buf;
	size_t off = 0;
	int n = 0, rc = 0, kernel_full = 0;
	uint64_t now = cmp_now();

	if (!s || !buf || !used)
		return RSX_EINVALID;
	while (off < len) {
		/* The record's size comes from its header, bounded by what is left; accept() checks the rest. */
		int size = rsx_record_check_header(p + off, len - off);
		if (size < 0) {
			rc = size;
			break;
		}
		rc = accept(s, p + off, (size_t)size, now);
		if (rc < 0)
			break;
		off += (size_t)size;
		n++;
		/* a full kernel stays full within one call: retrying after every record costs a batch each */
		if (!kernel_full && s->last_seq - min_sent(s) >= s->ep->io->batch)
			kernel_full = !flush(s, now);
	}
	if (!kernel_full)
		flush(s, now);
	*used = off;
	return n > 0 ? n : (len == 0 ? 0 : rc);
}

void rsx_cmp_sender_stats(const struct rsx_cmp_sender *s, struct rsx_cmp_sender_stats *out)
{
	*out = s->st;
	out->last_seq = s->last_seq;
	out->sent_seq = s->started ? min_sent(s) : 0;
	out->pending = s->started ? s->last_seq - min_sent(s) : 0;
}

/* A HEARTBEAT {highest_seq = sent} to `to`, tagged on a keyed stream. Returns 1 if sent. */
static int send_heartbeat(struct rsx_cmp_sender *s, uint64_t sent, const struct rsx_cmp_addr *to)
{
	struct rsx_heartbeat hb;
	memset(&hb, 0, sizeof(hb));
	hb.stream_id = s->cfg.stream_id;
	hb.highest_seq = sent;
	return cmp_send_control(s->ep, RSX_REC_HEARTBEAT, &hb, sizeof(hb), cmp_sender_key(s), to);
}

/* The destination a NAK came from, or -1: only the stream's receivers get retransmits. */
static int nak_peer(const struct rsx_cmp_sender *s, const struct rsx_cmp_addr *from)
{
	for (unsigned d = 0; d < s->cfg.ndest; d++)
		if (s->cfg.dest[d].ip == from->ip && s->cfg.dest[d].port == from->port)
			return (int)d;
	return -1;
}

void cmp_sender_on_nak(struct rsx_cmp_sender *s, const uint8_t *rec, const struct rsx_cmp_addr *from,
		       uint64_t now)
{
	const uint8_t *pl = rec + RSX_HEADER_SIZE;
	uint64_t from_seq = cmp_get64(pl + 24), count = cmp_get64(pl + 32);
	uint64_t dedup_ns = (uint64_t)s->cfg.retx_dedup_us * 1000;

	s->st.naks_received++;
	int d = nak_peer(s, from);
	if (d < 0) {
		/* not a receiver of this stream: no data to strangers, no amplification */
		s->st.naks_unknown++;
		return;
	}
	if (count == 0 || from_seq == 0) {
		s->st.naks_invalid++;
		return;
	}
	if (!s->started || from_seq > s->last_seq) {
		/* seqs we never sent (a forged seq misled the receiver): tell it our tip */
		s->st.naks_invalid++;
		if (send_heartbeat(s, s->sent[d], from))
			s->st.nak_replies++;
		return;
	}
	uint64_t end = from_seq + (count < s->cfg.ring_size ? count : s->cfg.ring_size);
	int unserved = count > s->cfg.ring_size;
	if (end < from_seq || end > s->last_seq + 1) {	/* overflow or past the tip */
		end = s->last_seq + 1;
		unserved = 1;
	}
	s->st.nak_seqs += end - from_seq;

	unsigned n = 0, sent = 0;
	for (uint64_t q = from_seq; q < end; q++) {
		uint64_t i = q & s->mask;
		struct slot_meta *m = &s->meta[i];
		if (m->seq == q) {
			if (m->retx_ns && now - m->retx_ns < dedup_ns &&
			    m->retx_ip == from->ip && m->retx_port == from->port) {
				s->st.retx_dedup++;
				continue;
			}
			m->retx_ns = now;
			m->retx_ip = from->ip;
			m->retx_port = from->port;
			s->msgs[n].buf = s->frames + i * CMP_TX_SLOT;
			s->msgs[n].len = m->len + s->tag;
			s->st.retx_ring++;
		} else {
			if (!s->cfg.fetch) {
				s->st.retx_gone++;
				unserved = 1;
				continue;
			}
			int rc = s->cfg.fetch(s->cfg.fetch_ctx, s->cfg.stream_id, q, s->scratch[n], CMP_SLOT);
			if (rc == RSX_EGONE) {
				s->st.retx_gone++;
				unserved = 1;
				continue;
			}
			if (rc < 0 || rc > CMP_SLOT || rsx_record_check(s->scratch[n], (size_t)rc) != rc ||
			    CMP_REC_SEQ(s->scratch[n]) != q || CMP_REC_STREAM(s->scratch[n]) != s->cfg.stream_id ||
			    !CMP_IS_DATA(CMP_REC_TYPE(s->scratch[n]))) {
				s->st.fetch_errors++;
				unserved = 1;
				continue;
			}
			if (s->tag)
				rsx_cmp_mac(s->cfg.key, s->scratch[n], (size_t)rc, s->scratch[n] + rc);
			s->msgs[n].buf = s->scratch[n];
			s->msgs[n].len = (uint32_t)rc + s->tag;
			s->st.retx_fetched++;
		}
		s->msgs[n].to = *from;
		if (++n == CMP_MAX_BATCH) {
			sent += cmp_ep_send(s->ep, s->msgs, n);
			n = 0;
		}
	}
	if (n)
		sent += cmp_ep_send(s->ep, s->msgs, n);
	/*
	 * Seqs we cannot serve (past the horizon, beyond the tip): our tip tells the
	 * receiver which of its holes exist, so only those count toward its replay.
	 */
	if (unserved && send_heartbeat(s, s->sent[d], from)) {
		s->st.nak_replies++;
		sent++;
	}
	if (sent) {
		s->last_tx_ns = now;
		s->hb_ns = (uint64_t)s->cfg.heartbeat_us * 1000;
	}
}

static void heartbeat(struct rsx_cmp_sender *s, uint64_t now)
{
	for (unsigned d = 0; d < s->cfg.ndest; d++)
		if (send_heartbeat(s, s->sent[d], &s->cfg.dest[d]))
			s->st.heartbeats++;
	s->last_tx_ns = now;
	/* still idle: the next one later, up to heartbeat_idle_us (tail loss is caught by the first one) */
	uint64_t cap = (uint64_t)s->cfg.heartbeat_idle_us * 1000;
	if (cap > s->hb_ns)
		s->hb_ns = s->hb_ns * 2 < cap ? s->hb_ns * 2 : cap;
}

uint64_t cmp_sender_tick(struct rsx_cmp_sender *s, uint64_t now)
{
	if (s->started && min_sent(s) < s->last_seq)
		flush(s, now);
	if (s->cfg.heartbeat_us == 0)
		return 0;
	if (now - s->last_tx_ns >= s->hb_ns)
		heartbeat(s, now);
	uint64_t next = s->last_tx_ns + s->hb_ns;
	if (s->started && min_sent(s) < s->last_seq && now + 50000 < next)
		next = now + 50000;	/* pending data: come back soon (sleep mode) */
	return next;
}
