/*
 * me_loop.c - the matching engine's loop (specs/me.md sections 2-6):
 * receive from the links, check, dedup, frame ORDER_ACCEPTED (or the
 * request), match, append the request's records to the WAL in one call,
 * release durable requests to the CMP sender; housekeeping and waiting.
 *
 * Records are framed straight into the outbound ring, a double-mapped ring in
 * which every record is contiguous; the WAL seals them there, so the bytes
 * released later are exactly the WAL's. Nothing here allocates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "rsx/clock.h"
#include "rsx/cmp_wal.h"
#include "rsx/errors.h"
#include "me_int.h"

#define HK_PERIOD_NS 1000000ull		/* housekeeping at most every 1 ms */
#define SWEEP_SLOTS 64	/* dedup slots swept per housekeeping tick, plus 8 per order accepted */
#define DRAIN_SEND_NS 1000000000ull	/* at stop: at most 1 s for the sender to empty */
#define SEND_SLICE (64 * RSX_RECORD_MAX)	/* bytes handed to the CMP sender per call */

static inline uint64_t now_ns(void)
{
	return rsx_clock_now_inline();
}

static inline uint64_t out_room(const struct rsx_me *me)
{
	return me->out_size - (me->out_head - me->out_sent);
}

static inline int has_room(const struct rsx_me *me)
{
	return out_room(me) >= ME_MIN_ROOM && me->rq_head - me->rq_sent <= me->rq_mask;
}

static inline uint8_t *out_at(const struct rsx_me *me)
{
	return me->out + (me->out_head & me->out_mask);
}

static int fatal(struct rsx_me *me, int rc)
{
	if (!me->error)
		me_stats_set_state(me, RSX_ME_FAILED, rc);
	return rc;
}

static inline void hist(struct rsx_me *me, int i, uint64_t from, uint64_t to)
{
	rsx_hist_record(me->h[i], to > from ? to - from : 0);
}

static inline void set_header(uint8_t *p, uint16_t type, uint16_t len)
{
	memset(p, 0, RSX_HEADER_SIZE);
	p[0] = RSX_RECORD_VERSION;
	memcpy(p + 2, &type, 2);
	memcpy(p + 4, &len, 2);
}

/* Hand the framed bytes [p, p + len) at out_head to the WAL; track them until released. */
static int commit(struct rsx_me *me, uint8_t *p, size_t len, uint64_t ts, uint64_t t_in, uint64_t t_match)
{
	uint64_t first;
	int64_t n = rsx_wal_append_framed(me->wal, p, len, ts, &first, RSX_WAL_APPEND_DEFER);
	if (UNLIKELY(n <= 0))
		return fatal(me, n < 0 ? (int)n : RSX_EINVALID);
	me->out_head += len;
	struct me_req *r = &me->rq[me->rq_head & me->rq_mask];
	r->last_seq = first + (uint64_t)n - 1;
	r->end = me->out_head;
	r->t_in = r->t_start = r->t_acc = t_in;
	r->t_match = t_match;
	me->rq_head++;
	me->c[MC_records] += (uint64_t)n;
	return 0;
}

/* The stamps of the request just committed; the stages are recorded when it is released. */
static inline void stamp_last(struct rsx_me *me, uint64_t t_start, uint64_t t_acc)
{
	struct me_req *r = &me->rq[(me->rq_head - 1) & me->rq_mask];
	r->t_start = t_start;
	r->t_acc = t_acc;
	r->t_match = me->t_last = now_ns();
}

/* ------------------------------------------------------------ release */

static int release(struct rsx_me *me)
{
	int work = 0;
	if (me->rq_durable < me->rq_head) {
		uint64_t limit = me->fsync_mode ? __atomic_load_n(me->durable_ptr, __ATOMIC_ACQUIRE) : UINT64_MAX;
		uint64_t dseq = atomic_load_explicit(&me->dur_seq, memory_order_acquire);
		uint64_t dts = atomic_load_explicit(&me->dur_ts, memory_order_relaxed);
		uint64_t now = 0;
		while (me->rq_durable < me->rq_head) {
			struct me_req *r = &me->rq[me->rq_durable & me->rq_mask];
			if (r->last_seq > limit)
				break;
			if (!now)
				now = now_ns();
			uint64_t t = (me->fsync_mode && dseq >= r->last_seq) ? dts : now;
			if (t < r->t_match)
				t = r->t_match;
			r->t_durable = t;
			if (r->t_match) {
				/* the processing stages too: recorded here, off the accept path they measure */
				hist(me, MH_IN_TO_ACCEPTED, r->t_in, r->t_acc);
				hist(me, MH_ACCEPTED_TO_MATCHED, r->t_acc, r->t_match);
				hist(me, MH_ACCEPT_PATH, r->t_start, r->t_match);
				hist(me, MH_MATCHED_TO_DURABLE, r->t_match, t);
				hist(me, MH_TO_DURABLE, r->t_in, t);
			}
			me->rq_durable++;
		}
	}
	if (me->rq_sent == me->rq_durable)
		return 0;
	uint64_t end = me->rq[(me->rq_durable - 1) & me->rq_mask].end;
	if (me->tx) {
		/* in slices of one send batch: once the kernel (or the peer) is full, the sender would
		   retry a whole batch after every further record; stop and let the next poll push it */
		while (me->out_sent < end) {
			size_t used = 0, len = end - me->out_sent;
			struct rsx_cmp_sender_stats st;
			int rc = rsx_cmp_sender_send_batch(me->tx, me->out + (me->out_sent & me->out_mask),
							   len < SEND_SLICE ? len : SEND_SLICE, &used);
			if (rc < 0 && rc != -EAGAIN)
				return fatal(me, rc);
			me->out_sent += used;
			rsx_cmp_sender_stats(me->tx, &st);
			if (used == 0 || st.pending) {
				me->c[MC_send_stalls]++;
				break;
			}
		}
	} else {
		me->out_sent = end;
	}
	uint64_t now = now_ns();
	while (me->rq_sent < me->rq_durable) {
		struct me_req *r = &me->rq[me->rq_sent & me->rq_mask];
		if (r->end > me->out_sent)
			break;
		if (r->t_match) {
			hist(me, MH_DURABLE_TO_OUT, r->t_durable, now);
			hist(me, MH_IN_TO_SENT, r->t_in, now);
		}
		me->c[MC_released] += r->last_seq - me->released_seq;
		me->released_seq = r->last_seq;
		me->rq_sent++;
		work++;
	}
	return work;
}

/* ------------------------------------------------------------ requests */

/* ORDER_FAILED for a request the ME refuses itself (specs/me.md 3). */
static int refuse(struct rsx_me *me, const uint8_t *pl, uint16_t req_type, uint16_t reason, int64_t detail,
		  uint64_t ts, uint64_t t_in, uint64_t t_start)
{
	struct rsx_order_failed f;
	uint8_t *p = out_at(me);
	memset(&f, 0, sizeof f);
	f.ts_ns = ts;
	f.symbol_id = me->symbol_id;
	memcpy(&f.user_id, pl + offsetof(struct rsx_order, user_id), 4);
	memcpy(&f.order_id, pl + offsetof(struct rsx_order, order_id), 16);	/* same offset in every request */
	f.reason = reason;
	f.request_type = req_type;
	f.detail = detail;
	set_header(p, RSX_REC_ORDER_FAILED, sizeof f);
	memcpy(p + RSX_HEADER_SIZE, &f, sizeof f);
	me->c[MC_failed_me]++;
	uint64_t t_acc = now_ns();
	int rc = commit(me, p, RSX_HEADER_SIZE + sizeof f, ts, t_in, 0);
	if (rc < 0)
		return rc;
	stamp_last(me, t_start, t_acc);
	return 0;
}

/* Make room for a request that suspended: release what is durable, wait for the rest. */
static int make_room(struct rsx_me *me)
{
	rsx_wal_publish(me->wal);
	while (!has_room(me)) {
		int rc = release(me);
		if (rc < 0)
			return rc;
		if (has_room(me))
			break;
		if (me->ep)
			rsx_cmp_poll(me->ep, 0);
		if (me->fsync_mode && me->rq_durable < me->rq_head) {
			uint64_t seq = me->rq[me->rq_durable & me->rq_mask].last_seq;
			rc = rsx_wal_wait_durable(me->wal, seq, 1000000);
			if (rc < 0 && rc != -ETIMEDOUT)
				return fatal(me, rc);
		}
		me->c[MC_out_stalls]++;
	}
	return 0;
}

/*
 * The book's part: p already holds the first record (ORDER_ACCEPTED or the
 * request) of `head` bytes; the book's events follow it in the ring.
 */
static int book_call(struct rsx_me *me, uint8_t *p, size_t head, uint16_t type, const void *pl, uint64_t ts,
		     uint64_t t_in, uint64_t t_start, uint64_t t_acc)
{
	struct rsx_book_sink sink;
	uint64_t room = out_room(me) - head;
	sink.buf = p + head;
	sink.cap = (uint32_t)(room < ME_SINK_CHUNK ? room : ME_SINK_CHUNK);
	sink.len = sink.count = 0;
	int rc = rsx_book_apply(me->book, type, pl, &sink);
	while (UNLIKELY(rc == RSX_BOOK_MORE)) {
		/* a sweep bigger than the room: commit this part, make room, resume */
		if ((rc = commit(me, p, head + sink.len, ts, t_in, 0)) < 0 || (rc = make_room(me)) < 0)
			return rc;
		p = out_at(me);
		head = 0;
		room = out_room(me);
		sink.buf = p;
		sink.cap = (uint32_t)(room < ME_SINK_CHUNK ? room : ME_SINK_CHUNK);
		sink.len = sink.count = 0;
		rc = rsx_book_resume(me->book, &sink);
	}
	if (UNLIKELY(rc < 0))
		return fatal(me, rc);
	if ((rc = commit(me, p, head + sink.len, ts, t_in, 1)) < 0)
		return rc;
	stamp_last(me, t_start, t_acc);
	return 0;
}

static int new_order(struct rsx_me *me, const uint8_t *rec, const struct rsx_order *o, uint64_t t_in,
		     uint64_t t_start, uint64_t ts)
{
	const uint8_t *pl = (const uint8_t *)o;
	int reason = 0;
	me->c[MC_req_new]++;
	if (UNLIKELY(o->symbol_id != me->symbol_id)) {
		me->c[MC_fail_symbol]++;
		return refuse(me, pl, RSX_REC_NEW_ORDER, RSX_REASON_UNKNOWN_SYMBOL, o->symbol_id, ts, t_in, t_start);
	}
	if (UNLIKELY(o->user_id == 0)) {
		me->c[MC_fail_user]++;
		return refuse(me, pl, RSX_REC_NEW_ORDER, RSX_REASON_UNKNOWN_USER, 0, ts, t_in, t_start);
	}
	if (UNLIKELY(o->risk_out_ts_ns && me->cfg.order_timeout_ns && ts > o->risk_out_ts_ns &&
		     ts - o->risk_out_ts_ns > me->cfg.order_timeout_ns)) {
		me->c[MC_fail_timeout]++;
		return refuse(me, pl, RSX_REC_NEW_ORDER, RSX_REASON_TIMEOUT, (int64_t)(ts - o->risk_out_ts_ns),
			      ts, t_in, t_start);
	}
	if (UNLIKELY(me->status != RSX_SYMBOL_ACTIVE)) {
		if (me->status != RSX_SYMBOL_CLOSE_ONLY)
			reason = RSX_REASON_SYMBOL_HALTED;
		else if (!(o->flags & RSX_ORDER_REDUCE_ONLY))
			reason = RSX_REASON_CLOSE_ONLY;
		if (reason) {
			me->c[MC_fail_status]++;
			return refuse(me, pl, RSX_REC_NEW_ORDER, (uint16_t)reason, me->status, ts, t_in, t_start);
		}
	}
	/* the book's own field checks, in its order (specs/matching.md 3); one test when all is well */
	int post_bad = (o->flags & RSX_ORDER_POST_ONLY) && o->tif != RSX_TIF_GTC;
	if (UNLIKELY((o->side >> 1) | ((o->tif + 1u) >> 2) | (o->stp >> 2) | (o->flags & ~RSX_ORDER_FLAGS_ALL) |
		     post_bad)) {
		if (o->side > RSX_SIDE_SELL)
			reason = RSX_REASON_BAD_SIDE;
		else if (o->tif > RSX_TIF_FOK)
			reason = RSX_REASON_BAD_TIF;
		else if ((o->flags & ~RSX_ORDER_FLAGS_ALL) || post_bad)
			reason = RSX_REASON_BAD_FLAGS;
		else
			reason = RSX_REASON_BAD_STP;
	} else {
		reason = rsx_order_check_inline(&me->book_cfg, o->price, o->qty);
	}
	if (UNLIKELY(reason)) {
		me->c[MC_fail_fields]++;
		return refuse(me, pl, RSX_REC_NEW_ORDER, (uint16_t)reason, 0, ts, t_in, t_start);
	}
	uint64_t orig;
	int d = me_dedup_check_insert(&me->dd, o->user_id, &o->order_id, me_dedup_tick(ts),
				      rsx_wal_next_seq(me->wal), &orig);
	if (UNLIKELY(d != ME_DEDUP_NEW)) {
		if (d == ME_DEDUP_DUPLICATE) {
			me->c[MC_duplicates]++;
			return refuse(me, pl, RSX_REC_NEW_ORDER, RSX_REASON_DUPLICATE_ORDER_ID, (int64_t)orig, ts,
				      t_in, t_start);
		}
		me->c[MC_dedup_full]++;
		return refuse(me, pl, RSX_REC_NEW_ORDER, RSX_REASON_OVERLOADED, (int64_t)me->dd.count, ts, t_in,
			      t_start);
	}
	/* ORDER_ACCEPTED: the request's bytes, every field kept, with the ME's type and time */
	uint8_t *p = out_at(me);
	memcpy(p, rec, RSX_HEADER_SIZE + sizeof *o);
	uint16_t type = RSX_REC_ORDER_ACCEPTED;
	memcpy(p + 2, &type, 2);
	memcpy(p + RSX_HEADER_SIZE + offsetof(struct rsx_order, ts_ns), &ts, 8);
	me->c[MC_accepted]++;
	return book_call(me, p, RSX_HEADER_SIZE + sizeof *o, RSX_REC_NEW_ORDER, o, ts, t_in, t_start, now_ns());
}

/* CANCEL_ORDER, CANCEL_ALL, AMEND_ORDER: the request goes on the stream, then the book's events. */
static int order_request(struct rsx_me *me, const uint8_t *rec, uint16_t type, const uint8_t *pl, uint64_t t_in,
			 uint64_t t_start, uint64_t ts)
{
	uint32_t symbol, user;
	memcpy(&symbol, pl + offsetof(struct rsx_cancel, symbol_id), 4);
	memcpy(&user, pl + offsetof(struct rsx_cancel, user_id), 4);
	me->c[type == RSX_REC_CANCEL_ORDER ? MC_req_cancel : type == RSX_REC_CANCEL_ALL ? MC_req_cancel_all
										       : MC_req_amend]++;
	if (UNLIKELY(symbol != me->symbol_id)) {
		me->c[MC_fail_symbol]++;
		return refuse(me, pl, type, RSX_REASON_UNKNOWN_SYMBOL, symbol, ts, t_in, t_start);
	}
	if (UNLIKELY(user == 0)) {
		me->c[MC_fail_user]++;
		return refuse(me, pl, type, RSX_REASON_UNKNOWN_USER, 0, ts, t_in, t_start);
	}
	if (UNLIKELY(type == RSX_REC_AMEND_ORDER && me->status == RSX_SYMBOL_CLOSE_ONLY)) {
		struct rsx_book_order_info info;
		const struct rsx_amend *a = (const void *)pl;
		if (rsx_book_order(me->book, user, &a->order_id, &info) && !(info.flags & RSX_ORDER_REDUCE_ONLY)) {
			me->c[MC_fail_status]++;
			return refuse(me, pl, type, RSX_REASON_CLOSE_ONLY, me->status, ts, t_in, t_start);
		}
	}
	uint8_t *p = out_at(me);
	size_t len = RSX_HEADER_SIZE + 64;
	memcpy(p, rec, len);
	memcpy(p + RSX_HEADER_SIZE + 8, &ts, 8);
	return book_call(me, p, len, type, pl, ts, t_in, t_start, now_ns());
}

int me_apply_control(struct rsx_me *me, const struct rsx_config *want, uint32_t *why, uint64_t t_in)
{
	struct rsx_config next = *want;
	struct rsx_symbol_config bc;
	me->c[MC_req_control]++;
	int rc = me_config_check(&me->sym, &next, why);
	if (rc < 0) {
		me->c[MC_control_refused]++;
		return rc;
	}
	me_book_config(&bc, &next);
	if ((rc = rsx_book_set_config(me->book, &bc)) < 0) {
		me->c[MC_control_refused]++;
		*why = RSX_ME_CTL_INCOHERENT;
		return rc;
	}
	uint64_t ts = (uint64_t)((int64_t)now_ns() + me->real_off);
	uint8_t *p = out_at(me);
	next.seq = 0;
	next.ts_ns = ts;
	next.effective_at_ns = ts;
	set_header(p, RSX_REC_CONFIG_APPLIED, sizeof next);
	memcpy(p + RSX_HEADER_SIZE, &next, sizeof next);
	if ((rc = commit(me, p, RSX_HEADER_SIZE + sizeof next, ts, t_in, now_ns())) < 0)
		return rc;
	memcpy(&me->sym, p + RSX_HEADER_SIZE, sizeof me->sym);
	me->status = me->sym.status;
	me->book_cfg = bc;
	me_stats_set_config(me);
	me->c[MC_control_applied]++;
	return 0;
}

/*
 * One request from a link (rec: header, 64-byte aligned payload at rec + 16).
 * Not inlined: it is the accept path callgrind counts (bench/me_callgrind.py).
 */
static __attribute__((noinline)) int me_process(struct rsx_me *me, const uint8_t *rec, uint64_t t_in)
{
	uint16_t type;
	const uint8_t *pl = rec + RSX_HEADER_SIZE;
	uint64_t t_start = me->t_last > t_in ? me->t_last : t_in;
	uint64_t ts = (uint64_t)((int64_t)t_start + me->real_off);
	memcpy(&type, rec + 2, 2);
	switch (type) {
	case RSX_REC_NEW_ORDER:
		return new_order(me, rec, (const struct rsx_order *)pl, t_in, t_start, ts);
	case RSX_REC_CANCEL_ORDER:
	case RSX_REC_CANCEL_ALL:
	case RSX_REC_AMEND_ORDER:
		return order_request(me, rec, type, pl, t_in, t_start, ts);
	case RSX_REC_CONFIG_APPLIED: {
		uint32_t why;
		me_apply_control(me, (const struct rsx_config *)pl, &why, t_in);
		return me->error;
	}
	default:
		me->c[MC_bad_type]++;
		return 0;
	}
}

#define ME_PREFETCH_AHEAD 4	/* requests ahead whose dedup slot is loaded while this one runs */

static inline const uint8_t *batch_rec(const struct rsx_me *me, uint32_t i)
{
	return me->in + 48 + (size_t)i * ME_STRIDE;
}

static inline __attribute__((always_inline)) void prefetch_record(const struct rsx_me *me, const uint8_t *rec)
{
	uint16_t type;
	memcpy(&type, rec + 2, 2);
	if (type == RSX_REC_NEW_ORDER) {
		const struct rsx_order *o = (const void *)(rec + RSX_HEADER_SIZE);
		me_dedup_prefetch(&me->dd, o->user_id, &o->order_id);
	}
}

static inline __attribute__((always_inline)) void prefetch_request(const struct rsx_me *me, uint32_t i)
{
	prefetch_record(me, batch_rec(me, i));
}

/* Process the read batch from in_pos on; stops (returns 0) when the rings are full. */
static int process_batch(struct rsx_me *me)
{
	int done = 0;
	for (uint32_t i = me->in_pos; i < me->in_n && i < me->in_pos + ME_PREFETCH_AHEAD; i++)
		prefetch_request(me, i);
	while (me->in_pos < me->in_n) {
		if (UNLIKELY(!has_room(me))) {
			me->c[MC_out_stalls]++;
			break;
		}
		if (me->in_pos + ME_PREFETCH_AHEAD < me->in_n)
			prefetch_request(me, me->in_pos + ME_PREFETCH_AHEAD);
		const uint8_t *rec = batch_rec(me, me->in_pos);
		int rc = me_process(me, rec, me->in_t);
		if (UNLIKELY(rc < 0))
			return rc;
		me->in_pos++;
		done++;
	}
	return done;
}

static int read_links(struct rsx_me *me)
{
	int work = 0;
	for (uint32_t k = 0; k < me->nlinks; k++) {
		if (me->in_pos < me->in_n)
			break;	/* the rings are full: read nothing more */
		uint32_t l = (me->link_next + k) % me->nlinks;
		int n = rsx_cmp_receiver_read(me->links[l], me->in + 48, ME_STRIDE, me->cfg.read_batch);
		if (n <= 0)
			continue;	/* a link receiver never needs replay: it skips and counts (cmp.md 4.6) */
		me->in_n = (uint32_t)n;
		me->in_pos = 0;
		me->in_t = now_ns();
		int rc = process_batch(me);
		if (rc < 0)
			return rc;
		work += rc;
	}
	if (me->nlinks)
		me->link_next = (me->link_next + 1) % me->nlinks;
	return work;
}

/* ------------------------------------------------------------ housekeeping */

static void mailbox(struct rsx_me *me)
{
	uint64_t rs = __atomic_load_n(&me->mbox->req_seq, __ATOMIC_ACQUIRE);
	if (LIKELY(rs == me->mbox_seen) || !has_room(me))
		return;
	struct rsx_config want;
	uint32_t why = 0;
	memcpy(&want, &me->mbox->config, sizeof want);
	int rc = me_apply_control(me, &want, &why, now_ns());
	me->mbox->result = rc;
	me->mbox->why = why;
	me->mbox->applied_version = me->sym.config_version;
	__atomic_store_n(&me->mbox->done_seq, rs, __ATOMIC_RELEASE);
	me->mbox_seen = rs;
}

void me_housekeeping(struct rsx_me *me, uint64_t now)
{
	struct rsx_wal_stats ws;
	struct rsx_book_stats bs;
	uint64_t real = wal_real_ns();
	me->hk_last = now;
	me->real_off = (int64_t)(real - rsx_clock_now_ns());
	/* sweep faster than orders arrive (8 slots per accepted order), a little when idle */
	uint64_t accepted = me->c[MC_accepted];
	uint64_t slots = SWEEP_SLOTS + 8 * (accepted - me->hk_accepted);
	me->hk_accepted = accepted;
	me->c[MC_dedup_expired] += me_dedup_sweep(&me->dd, me_dedup_tick(real), slots);
	me->c[MC_dedup_entries] = me->dd.count;
	rsx_wal_stats(me->wal, &ws);
	me->c[MC_next_seq] = ws.next_seq;
	me->c[MC_durable_seq] = ws.durable_seq;
	me->c[MC_wal_stalls] = ws.stalls;
	me->c[MC_wal_stall_ns] = ws.stall_ns;
	me->c[MC_wal_batches] = ws.batches;
	me->c[MC_released_seq] = me->released_seq;
	uint64_t losses = 0, resyncs = 0;
	for (uint32_t i = 0; i < me->nlinks; i++) {
		struct rsx_cmp_receiver_stats rs;
		rsx_cmp_receiver_stats(me->links[i], &rs);
		losses += rs.link_losses;
		resyncs += rs.resyncs;
	}
	me->c[MC_link_losses] = losses;
	me->c[MC_link_resyncs] = resyncs;
	if (me->tx) {
		struct rsx_cmp_sender_stats ts;
		rsx_cmp_sender_stats(me->tx, &ts);
		me->c[MC_tx_naks] = ts.naks_received;
		me->c[MC_tx_retx_ring] = ts.retx_ring;
		me->c[MC_tx_retx_wal] = ts.retx_fetched;
		me->c[MC_tx_retx_gone] = ts.retx_gone;
		me->c[MC_tx_fetch_errors] = ts.fetch_errors;
		me->c[MC_tx_heartbeats] = ts.heartbeats;
	}
	rsx_book_stats(me->book, &bs);
	me->c[MC_book_orders] = bs.orders;
	me->c[MC_book_levels] = bs.levels;
	me->c[MC_fills] = bs.fills;
	__atomic_store_n(&me->shm->updated_ns, real, __ATOMIC_RELAXED);
}

static void set_running(struct rsx_me *me)
{
	if (me->state == RSX_ME_RECOVERING || me->state == RSX_ME_STARTING)
		me_stats_set_state(me, RSX_ME_RUNNING, 0);
}

/* One pass: transport, control, input, release, housekeeping. Returns the work done. */
static int iteration(struct rsx_me *me, uint64_t t0)
{
	int work = 0, rc;
	if (me->ep && !me->just_polled)
		rsx_cmp_poll(me->ep, 0);
	me->just_polled = 0;
	mailbox(me);
	if (me->in_pos < me->in_n) {
		if ((rc = process_batch(me)) < 0)
			return rc;
		work += rc;
	}
	if ((rc = read_links(me)) < 0)
		return rc;
	work += rc;
	rsx_wal_publish(me->wal);	/* once per iteration: the flusher sees the whole batch */
	if ((rc = release(me)) < 0)
		return rc;
	work += rc;
	me->c[MC_iterations]++;
	if (t0 - me->hk_last >= HK_PERIOD_NS)
		me_housekeeping(me, t0);
	return work;
}

static void wait_idle(struct rsx_me *me, uint64_t max_ns)
{
	me->c[MC_sleeps]++;
	if (me->fsync_mode && me->rq_durable < me->rq_head) {
		/* records wait for their sync: sleep on the WAL's durable futex */
		uint64_t seq = me->rq[me->rq_durable & me->rq_mask].last_seq;
		rsx_wal_wait_durable(me->wal, seq, (int64_t)(max_ns < 1000000 ? max_ns : 1000000));
		return;
	}
	if (me->rq_sent < me->rq_durable || !me->ep) {
		/* the sender's kernel queue is full (or nothing to wait on): a short nap */
		struct timespec ts = { 0, (long)(max_ns < 100000 ? max_ns : 100000) };
		nanosleep(&ts, NULL);
		if (me->ep)
			rsx_cmp_poll(me->ep, 0);
		return;
	}
	rsx_cmp_poll(me->ep, (int64_t)(max_ns / 1000));
	me->just_polled = 1;	/* what arrived is dispatched: the next iteration need not poll again */
}

static void wait_mode(struct rsx_me *me, int work, uint64_t now, uint64_t max_ns)
{
	if (work) {
		me->idle_since = 0;
		me->sleep_us = 50;
		return;
	}
	me->c[MC_idle_iterations]++;
	switch (me->cfg.wait_mode) {
	case RSX_ME_SPIN:
		return;
	case RSX_ME_BACKOFF: {
		uint64_t spin = (uint64_t)me->cfg.spin_us * 1000;
		if (!me->idle_since)
			me->idle_since = now;
		if (now - me->idle_since < spin)
			return;
		if (now - me->idle_since < 2 * spin) {
			sched_yield();
			return;
		}
		uint64_t ns = me->sleep_us * 1000;
		wait_idle(me, ns < max_ns ? ns : max_ns);
		if (me->sleep_us < 1000)
			me->sleep_us *= 2;
		return;
	}
	default:
		wait_idle(me, max_ns);
	}
}

/* ------------------------------------------------------------ entry points */

int rsx_me_step(struct rsx_me *me, int64_t timeout_us)
{
	if (me->error)
		return me->error;
	set_running(me);
	uint64_t t0 = now_ns();
	int work = iteration(me, t0);
	if (work < 0)
		return work;
	uint64_t t1 = now_ns();
	me->c[MC_loop_ns] += t1 - t0;
	if (!work && timeout_us > 0)
		wait_mode(me, 0, t1, (uint64_t)timeout_us * 1000);
	return work;
}

int rsx_me_drain(struct rsx_me *me, int64_t timeout_ns)
{
	uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : now_ns() + (uint64_t)timeout_ns;
	if (me->error)
		return me->error;
	if (me->rq_durable < me->rq_head) {
		int rc = rsx_wal_flush(me->wal);
		if (rc < 0)
			return fatal(me, rc);
	}
	while (me->rq_sent < me->rq_head) {
		int rc = release(me);
		if (rc < 0)
			return rc;
		if (me->rq_sent == me->rq_head)
			break;
		if (now_ns() > deadline)
			return -ETIMEDOUT;
		if (me->ep)
			rsx_cmp_poll(me->ep, 100);
	}
	me_housekeeping(me, now_ns());
	return 0;
}

int rsx_me_run(struct rsx_me *me)
{
	int rc = 0;
	set_running(me);
	while (!atomic_load_explicit(&me->stop, memory_order_relaxed)) {
		uint64_t t0 = now_ns();
		int work = iteration(me, t0);
		if (work < 0) {
			rc = work;
			break;
		}
		uint64_t t1 = now_ns();
		me->c[MC_loop_ns] += t1 - t0;
		wait_mode(me, work, t1, me->cfg.housekeeping_ns);
	}
	if (rc == 0) {
		me_stats_set_state(me, RSX_ME_STOPPING, 0);
		rc = rsx_me_drain(me, -1);
		/* let the sender hand the last records to the kernel */
		uint64_t end = now_ns() + DRAIN_SEND_NS;
		struct rsx_cmp_sender_stats st;
		while (rc == 0 && me->tx && now_ns() < end) {
			rsx_cmp_sender_stats(me->tx, &st);
			if (st.pending == 0)
				break;
			rsx_cmp_poll(me->ep, 100);
		}
	}
	return rc;
}

int64_t rsx_me_submit(struct rsx_me *me, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t off = 0, ahead = 0;
	int64_t n = 0, queued = 0;	/* records from off to ahead, whose slots are being prefetched */
	if (me->error)
		return me->error;
	set_running(me);
	while (off < len) {
		/* peek only (the record is checked when its turn comes): a prefetch of a bad slot is harmless */
		while (queued <= ME_PREFETCH_AHEAD && ahead < len && len - ahead >= RSX_HEADER_SIZE + 64) {
			uint16_t plen;
			memcpy(&plen, p + ahead + 4, 2);
			prefetch_record(me, p + ahead);
			ahead += RSX_HEADER_SIZE + (size_t)(plen ? plen : 64);
			queued++;
		}
		int size = rsx_record_check(p + off, len - off);
		if (size < 0)
			return n ? n : size;
		queued--;
		int rc = make_room(me);
		if (rc < 0)
			return rc;
		uint8_t *slot = me->in + 48;	/* payload on 64 bytes */
		memcpy(slot, p + off, (size_t)size);
		me->in_n = me->in_pos = 0;
		if ((rc = me_process(me, slot, now_ns())) < 0)
			return rc;
		off += (size_t)size;
		n++;
	}
	rsx_wal_publish(me->wal);
	if (release(me) < 0)
		return me->error;
	return n;
}

int rsx_me_control(struct rsx_me *me, const struct rsx_config *cfg)
{
	uint32_t why;
	int rc = make_room(me);
	if (rc < 0)
		return rc;
	return me_apply_control(me, cfg, &why, now_ns());
}

/* ------------------------------------------------------------ transport */

/* Put the last `count` durable records back in the outbound ring: they go out first. */
static int resend_tail(struct rsx_me *me, uint64_t count)
{
	uint64_t tip = rsx_wal_durable_seq(me->wal);
	if (tip == 0 || count == 0)
		return 0;
	uint64_t from = tip > count ? tip - count + 1 : 1;
	int rc = rsx_wal_reader_seek(me->fetch_rd, from);
	if (rc < 0)
		return rc == RSX_EGONE ? 0 : rc;
	struct rsx_wal_entry ent[256];
	me->released_seq = from - 1;	/* the resent records count as released again */
	while (from <= tip) {
		size_t nb;
		if (out_room(me) < (1u << 20))
			return 0;	/* never the case at attach; the receivers NAK the rest */
		int64_t n = rsx_wal_reader_read(me->fetch_rd, out_at(me), 256 * RSX_RECORD_MAX, ent, 256, &nb);
		if (n <= 0)
			return n < 0 ? (int)n : 0;
		uint64_t last = 0;
		size_t used = 0;
		for (int64_t i = 0; i < n && ent[i].seq <= tip; i++) {
			last = ent[i].seq;
			used = ent[i].offset + ent[i].size;
		}
		if (!used)
			break;
		me->out_head += used;
		struct me_req *r = &me->rq[me->rq_head & me->rq_mask];
		memset(r, 0, sizeof *r);
		r->last_seq = last;
		r->end = me->out_head;
		me->rq_head++;
		from = last + 1;
	}
	return 0;
}

int rsx_me_attach(struct rsx_me *me, struct rsx_cmp_endpoint *ep, const struct rsx_cmp_sender_config *tx,
		  const struct rsx_cmp_receiver_config *rx_template, const uint32_t *links, uint32_t nlinks)
{
	int rc;
	if (me->ep || !ep || nlinks > RSX_ME_MAX_LINKS || (nlinks && !links))
		return RSX_EINVALID;
	if (tx) {
		struct rsx_cmp_sender_config c = *tx;
		if ((rc = rsx_wal_set_open(&me->fetch_set, me->wal_dir, me->symbol_id)) < 0 ||
		    (rc = rsx_wal_reader_open(&me->fetch_rd, me->fetch_set)) < 0)
			return rc;
		c.stream_id = me->symbol_id;
		c.fetch = rsx_cmp_wal_fetch;
		c.fetch_ctx = me->fetch_rd;
		c.owner_sealed = 1;	/* the WAL ring's bytes, sealed by append_framed: no second CRC */
		if ((rc = rsx_cmp_sender_open(ep, &c, &me->tx)) < 0)
			return rc;
		if ((rc = resend_tail(me, c.ring_size)) < 0)
			return rc;
	}
	for (uint32_t i = 0; i < nlinks; i++) {
		struct rsx_cmp_receiver_config r;
		if (rx_template)
			r = *rx_template;
		else
			rsx_cmp_receiver_config_init(&r);
		r.stream_id = links[i];
		r.link = 1;	/* requests are not journaled: join, follow restarts, count losses */
		if (r.start_seq > 1)
			r.start_seq = 0;
		if ((rc = rsx_cmp_receiver_open(ep, &r, &me->links[i])) < 0)
			return rc;
	}
	me->nlinks = nlinks;
	me->ep = ep;
	set_running(me);
	return 0;
}
