/*
 * cmp_receiver.c - one stream's receiver: a window of slots that is both the
 * reorder buffer and the delivery queue, per-seq NAK timers, the sticky
 * NEEDS_REPLAY state and the replay seam (specs/cmp.md section 4).
 *
 * Positions: delivered < expected <= delivered + window + 1; every seq in
 * (delivered, expected) is held; a missing seq in [expected, tracked] is a
 * hole with a NAK timer. Nothing here ever moves `expected` over a missing
 * seq: a gap is filled (network, retransmit, replay) or reported. The one
 * exception is a link receiver (cfg.link, specs/cmp.md 4.6: a stream that is
 * not journaled), which marks an unrecoverable hole lost (a slot holding the
 * seq with len 0), counts it, and follows a sender that restarted at seq 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rsx/errors.h"
#include "cmp_int.h"

struct rmeta {
	uint64_t held;		/* seq stored in the slot, 0 = none */
	uint64_t hole;		/* seq whose NAK timer this is */
	uint64_t due;		/* next NAK time (CLOCK_MONOTONIC ns) */
	uint64_t nak_ns;	/* when `hole` was last NAKed */
	uint32_t tries;		/* NAKs for `hole` that a live sender left unanswered */
	uint16_t len;		/* record size of `held`; 0 = lost (link receivers only) */
	uint16_t _pad;
};

struct rsx_cmp_receiver {
	struct rsx_cmp_endpoint *ep;
	struct rsx_cmp_receiver_config cfg;
	uint64_t w, mask;
	uint8_t *frames;		/* window x CMP_SLOT */
	struct rmeta *meta;
	int joined;			/* positions known (start_seq given, or first seq seen) */
	int needs_replay;
	uint64_t delivered, expected, highest, tracked, highest_held;
	uint64_t gap_start, gap_end;
	uint64_t nak_next;		/* earliest due NAK timer, 0 = none */
	uint64_t delay_ns, retry_ns;
	int have_src;
	struct rsx_cmp_addr src;	/* where NAKs go: the stream's last datagram came from here */
	uint64_t last_heard;
	uint64_t tip_ns;		/* when the sender last said its tip (a HEARTBEAT), 0 = never */
	uint64_t tip;			/* ... and what it said */
	struct rsx_cmp_receiver_stats st;
};

void rsx_cmp_receiver_config_init(struct rsx_cmp_receiver_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->window = 4096;
	cfg->start_seq = 1;
	cfg->nak_delay_us = 100;
	cfg->nak_retry_us = 1000;
	cfg->nak_max_retries = 8;
	cfg->nak_max_count = 1024;
	cfg->nak_max_runs = 64;
}

static void join(struct rsx_cmp_receiver *r, uint64_t first)
{
	r->joined = 1;
	r->delivered = first - 1;
	r->expected = first;
	r->highest = first - 1;
	r->tracked = first - 1;
}

int rsx_cmp_receiver_open(struct rsx_cmp_endpoint *ep, const struct rsx_cmp_receiver_config *cfg,
			  struct rsx_cmp_receiver **out)
{
	uint64_t w = cfg ? cfg->window : 0;
	if (!ep || !cfg || !out || w < 64 || w > (1u << 20) || (w & (w - 1)) ||
	    cfg->nak_retry_us == 0 || cfg->nak_max_retries == 0 || cfg->nak_max_count == 0 ||
	    cfg->nak_max_runs == 0 || cfg->link > 1 || (cfg->link && cfg->start_seq > 1) || cfg->keyed > 1)
		return RSX_EINVALID;
	struct cmp_stream *slot = cmp_stream_get(ep, cfg->stream_id, 0);
	if (slot && slot->receiver)
		return RSX_EINVALID;
	struct rsx_cmp_receiver *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->ep = ep;
	r->cfg = *cfg;
	r->w = w;
	r->mask = w - 1;
	if (posix_memalign((void **)&r->frames, 64, w * CMP_SLOT) != 0 ||
	    !(r->meta = calloc(w, sizeof(*r->meta)))) {
		free(r->frames);
		free(r);
		return -ENOMEM;
	}
	memset(r->frames, 0, w * CMP_SLOT);	/* prefault */
	r->delay_ns = (uint64_t)cfg->nak_delay_us * 1000;
	r->retry_ns = (uint64_t)cfg->nak_retry_us * 1000;
	if (cfg->start_seq && !cfg->link)
		join(r, cfg->start_seq);	/* a link joins on first contact */
	slot = cmp_stream_get(ep, cfg->stream_id, 1);
	if (!slot) {
		cmp_receiver_free(r);
		return RSX_EINVALID;
	}
	slot->receiver = r;
	*out = r;
	return 0;
}

const uint8_t *cmp_receiver_key(const struct rsx_cmp_receiver *r)
{
	return r->cfg.keyed ? r->cfg.key : NULL;
}

void cmp_receiver_free(struct rsx_cmp_receiver *r)
{
	if (!r)
		return;
	free(r->frames);
	free(r->meta);
	free(r);
}

static void arm(struct rsx_cmp_receiver *r, struct rmeta *m, uint64_t seq, uint64_t now)
{
	m->hole = seq;
	m->due = now + r->delay_ns;
	m->nak_ns = 0;
	m->tries = 0;
	if (!r->nak_next || m->due < r->nak_next)
		r->nak_next = m->due;
}

/* Give every missing seq in (tracked, min(highest, delivered + window)] a NAK timer. */
static void track(struct rsx_cmp_receiver *r, uint64_t now)
{
	uint64_t limit = r->highest < r->delivered + r->w ? r->highest : r->delivered + r->w;
	if (r->tracked < r->expected - 1)
		r->tracked = r->expected - 1;	/* everything below expected is held */
	for (uint64_t s = r->tracked + 1; s <= limit; s++) {
		struct rmeta *m = &r->meta[s & r->mask];
		if (m->held != s) {
			arm(r, m, s, now);
			r->st.gaps++;
		}
	}
	if (limit > r->tracked)
		r->tracked = limit;
}

static void resume(struct rsx_cmp_receiver *r, uint64_t now)
{
	r->needs_replay = 0;
	r->st.resumes++;
	/* Forget advertised seqs that never arrived (a spoofed heartbeat): re-learn from live traffic. */
	r->highest = r->highest_held > r->expected - 1 ? r->highest_held : r->expected - 1;
	r->tracked = r->expected - 1;
	r->nak_next = 0;
	uint64_t limit = r->highest < r->delivered + r->w ? r->highest : r->delivered + r->w;
	for (uint64_t s = r->expected; s <= limit; s++) {
		struct rmeta *m = &r->meta[s & r->mask];
		if (m->held != s)
			arm(r, m, s, now);
	}
	r->tracked = limit > r->tracked ? limit : r->tracked;
}

/* Strict FIFO drain: expected moves over every contiguous held seq. Returns 1 if that resumed. */
static int advance(struct rsx_cmp_receiver *r, uint64_t now)
{
	while (r->expected <= r->delivered + r->w && r->meta[r->expected & r->mask].held == r->expected)
		r->expected++;
	if (r->needs_replay && r->expected > r->gap_end) {
		resume(r, now);
		return 1;
	}
	return 0;
}

static void store(struct rsx_cmp_receiver *r, const uint8_t *rec, uint32_t len, uint64_t seq)
{
	struct rmeta *m = &r->meta[seq & r->mask];
	if (m->hole == seq) {
		if (m->tries > 0)
			r->st.recovered++;
		m->hole = 0;
	}
	memcpy(r->frames + (seq & r->mask) * CMP_SLOT, rec, len);
	m->held = seq;
	m->len = (uint16_t)len;
	if (seq > r->highest_held)
		r->highest_held = seq;
	if (seq > r->highest)
		r->highest = seq;
}

/*
 * Link receivers: a new incarnation of the sender (it restarted at seq 1) is
 * speaking. Forget the old one (its undelivered records are lost: counted)
 * and join the new sequence at its start, at most a window back from `seen`,
 * so the seqs it sent before we noticed are NAKed from its hot ring.
 */
static void resync(struct rsx_cmp_receiver *r, uint64_t seen)
{
	uint64_t first = seen >= r->w ? seen - r->w + 1 : 1;
	for (uint64_t s = r->delivered + 1; s < r->expected; s++)
		if (r->meta[s & r->mask].len)
			r->st.link_losses++;
	r->st.link_losses += first - 1;
	r->st.resyncs++;
	memset(r->meta, 0, r->w * sizeof(*r->meta));
	r->nak_next = 0;
	r->highest_held = 0;
	join(r, first);
}

/*
 * Link receivers: is data record `seq` < expected from a restarted sender
 * rather than a duplicate? A duplicate or retransmit is byte-identical to
 * what the window holds for that seq; a new incarnation's record has another
 * ts_ns, hence other bytes. Seq 1, or a seq a window below delivered, cannot
 * be a late duplicate unless the window still holds it identically.
 */
static int restarted(const struct rsx_cmp_receiver *r, const uint8_t *rec, uint32_t len, uint64_t seq)
{
	const struct rmeta *m = &r->meta[seq & r->mask];
	if (m->held == seq && m->len)
		return m->len != len || memcmp(r->frames + (seq & r->mask) * CMP_SLOT, rec, len) != 0;
	return seq == 1 || seq + r->w <= r->delivered;
}

void cmp_receiver_on_data(struct rsx_cmp_receiver *r, const uint8_t *rec, uint32_t len,
			  const struct rsx_cmp_addr *from, uint64_t now)
{
	uint64_t seq = CMP_REC_SEQ(rec);

	r->src = *from;
	r->have_src = 1;
	r->last_heard = now;
	if (!r->joined)
		join(r, seq);
	else if (r->cfg.link && seq < r->expected && restarted(r, rec, len, seq)) {
		resync(r, seq);		/* store() and track() below arm the seqs before it */
	}
	if (seq < r->expected || r->meta[seq & r->mask].held == seq) {
		r->st.duplicates++;
		return;
	}
	if (seq > r->delivered + r->w) {
		r->st.overruns++;
		if (seq > r->highest) {
			r->highest = seq;
			track(r, now);
		}
		return;
	}
	store(r, rec, len, seq);
	r->st.received++;
	if (seq == r->expected)
		advance(r, now);
	else
		r->st.reordered++;
	if (r->highest > r->tracked)
		track(r, now);
}

/*
 * The sender says its tip is h, below what we took as `highest` (a forged
 * heartbeat or data seq, or a stale claim): holes above both h and every
 * record we hold do not exist; forget them (counted), never NAK or replay
 * for them. A real seq above h comes back with the sender's next datagram.
 */
static void forget_above(struct rsx_cmp_receiver *r, uint64_t h)
{
	uint64_t keep = h > r->highest_held ? h : r->highest_held;
	if (keep < r->expected - 1)
		keep = r->expected - 1;
	if (keep >= r->highest)
		return;
	for (uint64_t s = keep + 1; s <= r->tracked; s++) {
		struct rmeta *m = &r->meta[s & r->mask];
		if (m->hole == s && m->held != s)
			m->hole = 0;
	}
	if (r->tracked > keep)
		r->tracked = keep;
	r->highest = keep;
	r->st.unconfirmed++;
}

void cmp_receiver_on_heartbeat(struct rsx_cmp_receiver *r, const uint8_t *rec,
			       const struct rsx_cmp_addr *from, uint64_t now)
{
	uint64_t h = cmp_get64(rec + RSX_HEADER_SIZE + 24);

	r->st.heartbeats++;
	r->src = *from;
	r->have_src = 1;
	r->last_heard = now;
	r->tip_ns = now;
	r->tip = h;
	if (!r->joined) {
		/*
		 * start_seq 0: what comes after the sender's tip. A tip of 0 says
		 * nothing (a sender that has not sent since it started, such as an
		 * engine restarted from its WAL): joining at 1 would NAK the whole
		 * history, so wait for its first record instead.
		 */
		if (h)
			join(r, h + 1);
		return;
	}
	if (h < r->delivered) {
		r->st.stale_heartbeats++;
		if (!r->cfg.link)
			return;
		resync(r, h);	/* a restarted sender: NAK what it sent before this heartbeat */
		if (h >= r->expected) {
			r->highest = h;
			track(r, now);
		}
		return;
	}
	if (h > r->highest) {
		r->highest = h;
		track(r, now);
	} else if (h < r->highest) {
		forget_above(r, h);
	}
}

static void send_nak(struct rsx_cmp_receiver *r, uint64_t from, uint64_t count)
{
	struct rsx_nak nak;
	memset(&nak, 0, sizeof(nak));
	nak.stream_id = r->cfg.stream_id;
	nak.from_seq = from;
	nak.count = count;
	/* a NAK refused by the kernel is retried by its timer */
	cmp_send_control(r->ep, RSX_REC_NAK, &nak, sizeof(nak), cmp_receiver_key(r), &r->src);
	r->st.naks_sent++;
	r->st.nak_seqs += count;
}

/*
 * Link receivers: a hole up to `last` could not be recovered by NAK. Mark
 * every missing seq in [expected, last] lost (held with len 0), count it, and
 * let delivery carry on past it; lost seqs at the head are consumed at once.
 */
static void skip(struct rsx_cmp_receiver *r, uint64_t last, uint64_t now)
{
	for (uint64_t s = r->expected; s <= last; s++) {
		struct rmeta *m = &r->meta[s & r->mask];
		if (m->held == s)
			continue;
		m->held = s;
		m->len = 0;
		m->hole = 0;
		r->st.link_losses++;
	}
	advance(r, now);
	while (r->delivered + 1 < r->expected && r->meta[(r->delivered + 1) & r->mask].len == 0)
		r->delivered++;
	/* Re-arm the earliest timer of the holes left above. */
	r->nak_next = 0;
	for (uint64_t s = r->expected; s <= r->tracked; s++) {
		struct rmeta *m = &r->meta[s & r->mask];
		if (m->held != s && m->hole == s && (!r->nak_next || m->due < r->nak_next))
			r->nak_next = m->due;
	}
}

/*
 * Whether hole s's last NAK went unanswered by a live sender: the sender was
 * heard from since (a silent one may just be descheduled), and it did not
 * say since (a HEARTBEAT) that its tip is below s. Only such NAKs count
 * toward NEEDS_REPLAY (or a link's skip): a seq the sender never sent never
 * exhausts, whatever a forged datagram claimed.
 */
static inline int unanswered(const struct rsx_cmp_receiver *r, const struct rmeta *m, uint64_t s)
{
	return r->last_heard > m->nak_ns && !(r->tip_ns > m->nak_ns && r->tip < s);
}

/* Scan the holes oldest first; NAK the due ones as runs; detect exhausted holes. */
uint64_t cmp_receiver_tick(struct rsx_cmp_receiver *r, uint64_t now)
{
	if (r->needs_replay || !r->nak_next || now < r->nak_next)
		return r->needs_replay ? 0 : r->nak_next;

	uint64_t next = 0, exhausted = 0;
	unsigned runs = 0;
	uint64_t s = r->expected;
	while (s <= r->tracked) {
		struct rmeta *m = &r->meta[s & r->mask];
		if (m->held == s || m->hole != s) {
			s++;
			continue;
		}
		if (m->due > now) {
			if (!next || m->due < next)
				next = m->due;
			s++;
			continue;
		}
		/*
		 * A NAK counts against the hole only if the sender was heard from
		 * after it: a sender that is silent (descheduled, restarting) is not
		 * a sender that cannot serve the seq, so it never exhausts a hole.
		 */
		if (m->tries >= r->cfg.nak_max_retries && unanswered(r, m, s)) {
			exhausted = s;
			s++;
			continue;
		}
		if (runs == r->cfg.nak_max_runs || !r->have_src) {
			next = now;	/* more due than one poll may send: next pass */
			break;
		}
		uint64_t from = s, count = 0;
		while (s <= r->tracked && count < r->cfg.nak_max_count) {
			m = &r->meta[s & r->mask];
			if (m->held == s || m->hole != s || m->due > now ||
			    (m->tries >= r->cfg.nak_max_retries && unanswered(r, m, s)))
				break;
			if (m->tries == 0 || unanswered(r, m, s))
				m->tries++;
			m->nak_ns = now;
			/*
			 * No backoff: the window holds only a few ms of a fast stream, and a
			 * hole that waits longer than that stalls delivery and overruns it.
			 */
			m->due = now + r->retry_ns;
			if (!next || m->due < next)
				next = m->due;
			count++;
			s++;
		}
		send_nak(r, from, count);
		runs++;
	}
	if (exhausted && r->cfg.link) {
		skip(r, exhausted, now);
		return r->nak_next;
	}
	if (exhausted) {
		r->needs_replay = 1;
		r->gap_start = r->expected;
		r->gap_end = exhausted;
		r->st.faults++;
		r->nak_next = 0;
		return 0;
	}
	r->nak_next = next;
	return next;
}

int cmp_receiver_ready(const struct rsx_cmp_receiver *r)
{
	if (r->joined && r->delivered + 1 < r->expected)
		return 1;
	return r->needs_replay ? -1 : 0;
}

int rsx_cmp_receiver_read(struct rsx_cmp_receiver *r, void *out, size_t stride, size_t max)
{
	uint8_t *o = out;
	size_t n = 0;

	if (!r || (!out && max))
		return RSX_EINVALID;
	if (stride < RSX_HEADER_SIZE)
		return RSX_EINVALID;
	if (max > 0x7fffffff)
		max = 0x7fffffff;
	while (n < max && r->joined && r->delivered + 1 < r->expected) {
		uint64_t i = (r->delivered + 1) & r->mask;
		size_t len = r->meta[i].len;
		if (len == 0) {		/* lost (link receivers): nothing to hand out */
			r->delivered++;
			continue;
		}
		if (len > stride) {
			if (n == 0)
				return RSX_EINVALID;
			break;
		}
		memcpy(o, r->frames + i * CMP_SLOT, len);
		if (stride > len)
			memset(o + len, 0, stride - len);
		o += stride;
		r->delivered++;
		n++;
	}
	r->st.delivered += n;
	if (n == 0)
		return r->needs_replay ? RSX_EREPLAY : 0;
	if (r->highest > r->tracked)
		track(r, cmp_now());	/* the window slid over seqs that overran it */
	return (int)n;
}

int rsx_cmp_receiver_replay(struct rsx_cmp_receiver *r, const void *buf, size_t len)
{
	const uint8_t *rec = buf;
	if (!r || !rec)
		return RSX_EINVALID;
	int size = rsx_record_check(rec, len);
	if (size < 0)
		return size;
	if ((size_t)size != len)
		return RSX_ELENGTH;
	if (!CMP_IS_DATA(CMP_REC_TYPE(rec)))
		return RSX_ETYPE;
	if (CMP_REC_STREAM(rec) != r->cfg.stream_id)
		return RSX_ESTREAM;
	if (r->cfg.link)
		return RSX_EINVALID;	/* a link stream has no journal to replay from */
	uint64_t seq = CMP_REC_SEQ(rec);
	if (seq == 0)
		return RSX_ESEQ;
	if (!r->joined)
		join(r, seq);
	if (seq < r->expected) {
		r->st.replay_duplicates++;
		return 0;
	}
	if (seq > r->expected)
		return RSX_ESEQ;
	if (r->expected > r->delivered + r->w)
		return -EAGAIN;
	store(r, rec, (uint32_t)size, seq);
	r->st.replayed++;
	return advance(r, cmp_now());
}

void rsx_cmp_receiver_info(const struct rsx_cmp_receiver *r, struct rsx_cmp_receiver_info *out)
{
	memset(out, 0, sizeof(*out));
	out->stream_id = r->cfg.stream_id;
	out->link = r->cfg.link;
	out->state = r->needs_replay ? RSX_CMP_NEEDS_REPLAY
		   : (r->joined && r->expected <= r->highest) ? RSX_CMP_RECOVERING : RSX_CMP_LIVE;
	out->delivered = r->delivered;
	out->expected = r->expected;
	out->highest = r->highest;
	if (r->needs_replay) {
		out->gap_start = r->gap_start;
		out->gap_end = r->gap_end;
	}
	out->last_heard_ns = r->last_heard;
}

void rsx_cmp_receiver_stats(const struct rsx_cmp_receiver *r, struct rsx_cmp_receiver_stats *out)
{
	*out = r->st;
}
