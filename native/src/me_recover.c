/*
 * me_recover.c - the matching engine's WAL and its recovery (specs/me.md
 * section 7): newest usable snapshot, replay of the WAL tail through the same
 * book calls the loop made (checked record by record), the dedup window, the
 * completion of a request the crash cut, and the configuration.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rsx/clock.h"
#include "rsx/errors.h"
#include "me_int.h"

#define READ_BUF (4u << 20)
#define READ_ENT 16384

static void on_durable(void *ctx, uint64_t seq, uint64_t now_ns)
{
	struct rsx_me *me = ctx;
	(void)now_ns;
	atomic_store_explicit(&me->dur_ts, rsx_clock_now_inline(), memory_order_relaxed);
	atomic_store_explicit(&me->dur_seq, seq, memory_order_release);
}

int me_open_wal(struct rsx_me *me)
{
	struct rsx_wal_config wc;
	rsx_wal_config_default(&wc);
	wc.dir = me->wal_dir;
	wc.stream_id = me->symbol_id;
	wc.flags = me->cfg.wal_flags & ~(RSX_WAL_MANUAL | RSX_WAL_NONBLOCK);
	if (me->fsync_mode) {
		wc.batch_records = me->cfg.batch_records;
		wc.batch_us = me->cfg.batch_us;
	} else {
		wc.batch_records = 0x7fffffff;	/* async: only the 10 ms timer closes a batch */
		wc.batch_us = 10000;
	}
	if (me->cfg.wal_file_size)
		wc.file_size = me->cfg.wal_file_size;
	if (me->cfg.wal_ring_size)
		wc.ring_size = me->cfg.wal_ring_size;
	if (me->cfg.retain_ns)
		wc.retain_ns = me->cfg.retain_ns;
	wc.on_durable = on_durable;
	wc.ctx = me;
	int rc = rsx_wal_open(&me->wal, &wc);
	if (rc < 0) {
		me->wal = NULL;
		snprintf(me->rec.message, sizeof me->rec.message, "cannot open the WAL in %.100s (%d)", me->wal_dir, rc);
		return rc;
	}
	me->durable_ptr = rsx_wal_durable_ptr(me->wal);
	return 0;
}

static int __attribute__((format(printf, 3, 4))) fail(struct rsx_me *me, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(me->rec.message, sizeof me->rec.message, fmt, ap);
	va_end(ap);
	return rc;
}

static struct rsx_book_params configured_params(const struct rsx_me *me)
{
	struct rsx_book_params p = {
		.capacity = me->cfg.capacity,
		.level_capacity = me->cfg.level_capacity,
		.max_users = me->cfg.max_users,
		.stream_id = me->symbol_id,
		.ref_price = { me->cfg.ref_price },
		.zone0_ticks = me->cfg.zone0_ticks,
		.flags = me->cfg.book_flags,
	};
	return p;
}

/* Newest snapshot that loads into a book and that the WAL can continue. */
static int load_snapshot(struct rsx_me *me, uint64_t tip, uint64_t oldest, struct rsx_book **book,
			 struct rsx_config *cfg, uint64_t *seq)
{
	char (*names)[64] = NULL;
	int n = me_snap_list(me->snap_dir, &names);
	if (n < 0)
		return n;
	for (int i = 0; i < n && !*book; i++) {
		struct me_snapshot s;
		struct rsx_book_params p;
		struct rsx_symbol_config c;
		uint64_t wseq;
		me->rec.snapshots_tried++;
		int rc = me_snap_load(me->snap_dir, names[i], me->symbol_id, &s);
		if (rc == 0 && (s.wal_seq > tip || (s.wal_seq < tip && s.wal_seq + 1 < oldest)))
			rc = RSX_EGONE;	/* the WAL cannot continue it */
		if (rc == 0)
			rc = rsx_book_snapshot_params(s.book, s.book_len, &p, &c, &wseq);
		if (rc == 0 && wseq != s.wal_seq)
			rc = RSX_EINVALID;
		if (rc == 0) {
			p.flags = me->cfg.book_flags;
			p.ref_price.raw = me->cfg.ref_price;
			p.stream_id = me->symbol_id;
			rc = rsx_book_create(book, &p, &c);
			if (rc == 0 && (rc = rsx_book_restore(*book, s.book, s.book_len, &wseq)) < 0) {
				rsx_book_destroy(*book);
				*book = NULL;
			}
		}
		if (rc == 0) {
			*cfg = s.cfg;
			*seq = s.wal_seq;
			me->book_params = p;
		} else {
			if (me->rec.snapshots_rejected++ == 0) {
				me->rec.reject_error = rc;
				snprintf(me->rec.reject_file, sizeof me->rec.reject_file, "%s", names[i]);
			}
		}
		free(s.data);
	}
	free(names);
	return 0;
}

/* First seq worth scanning for ORDER_ACCEPTED inside the dedup window. */
static uint64_t window_start(struct rsx_wal_set *set, struct rsx_wal_reader *rd, uint64_t since_ns, uint64_t oldest)
{
	struct rsx_wal_set_info info;
	uint8_t rec[RSX_RECORD_MAX];
	uint64_t first, from = oldest;
	rsx_wal_set_info(set, &info);
	for (uint32_t i = 0; rsx_wal_set_file(set, i, &first) != NULL; i++) {
		uint64_t ts;
		if (first == 0 || first > info.durable_seq)
			break;
		if (rsx_wal_read_seq(rd, first, rec, sizeof rec) < 0)
			break;
		memcpy(&ts, rec + RSX_HEADER_SIZE + 8, 8);
		if (ts >= since_ns)
			break;	/* this file starts inside the window: the previous one may too */
		from = first;
	}
	return from > oldest ? from : oldest;
}

struct emit_ctx {
	struct rsx_me *me;
	uint64_t ts;
	uint64_t n;
	int rc;
};

static int emit_completion(void *arg, uint8_t *buf, size_t len)
{
	struct emit_ctx *e = arg;
	int64_t n = rsx_wal_append_framed(e->me->wal, buf, len, e->ts, NULL, 0);
	if (n < 0)
		return (int)n;
	e->n += (uint64_t)n;
	return 0;
}

/* Restore the book into one with the configured capacities when they changed. */
static int migrate(struct rsx_me *me, struct rsx_book **book)
{
	struct rsx_book_params want = configured_params(me);
	struct rsx_book_params *have = &me->book_params;
	uint64_t wl = want.level_capacity ? want.level_capacity : want.capacity;
	uint64_t hl = have->level_capacity ? have->level_capacity : have->capacity;
	if (want.capacity == have->capacity && wl == hl && want.max_users == have->max_users &&
	    want.zone0_ticks == have->zone0_ticks)
		return 0;
	size_t len = rsx_book_snapshot_size(*book);
	uint8_t *tmp = malloc(len);
	struct rsx_book *nb = NULL;
	uint64_t seq;
	if (!tmp)
		return -ENOMEM;
	int64_t got = rsx_book_snapshot(*book, 0, tmp, len);
	int rc = got < 0 ? (int)got : rsx_book_create(&nb, &want, &me->book_cfg);
	if (rc == 0 && (rc = rsx_book_restore(nb, tmp, (size_t)got, &seq)) < 0)
		rsx_book_destroy(nb);
	free(tmp);
	if (rc < 0)
		return fail(me, RSX_EINVALID, "the book's contents do not fit the configured capacities (%d)", rc);
	rsx_book_destroy(*book);
	*book = nb;
	*have = want;
	me->rec.book_migrated = 1;
	return 0;
}

int me_recover(struct rsx_me *me)
{
	struct rsx_me_recovery *rec = &me->rec;
	struct rsx_wal_stats ws;
	struct rsx_book *book = NULL;
	struct rsx_config cfg;
	struct me_replay rp;
	struct rsx_wal_set *set = NULL;
	struct rsx_wal_reader *rd = NULL;
	uint8_t *buf = NULL;
	struct rsx_wal_entry *ent = NULL;
	uint64_t snap_seq = 0, t0 = wal_mono_ns();
	int rc, have_cfg = 0;

	memset(&rp, 0, sizeof rp);
	rsx_wal_stats(me->wal, &ws);
	uint64_t tip = ws.durable_seq, oldest = tip ? ws.oldest_seq : 0;
	rec->wal_tip = tip;
	rec->wal_oldest = oldest;
	rec->wal_cut_bytes = ws.recovered_bytes;

	if ((rc = load_snapshot(me, tip, oldest, &book, &cfg, &snap_seq)) < 0)
		return fail(me, rc, "cannot list %s (%d)", me->snap_dir, rc);
	if (book) {
		have_cfg = 1;
		rec->snapshot_seq = snap_seq;
	} else {
		if (tip > 0 && oldest > 1)
			return fail(me, RSX_EGONE, "no usable snapshot and the WAL starts at seq %llu, not 1: "
				    "restore a snapshot or the WAL's first files", (unsigned long long)oldest);
		struct rsx_symbol_config c;
		me->book_params = configured_params(me);
		me_book_config(&c, &me->cfg.symbol);
		if ((rc = rsx_book_create(&book, &me->book_params, &c)) < 0)
			return fail(me, rc, "cannot create the book (%d)", rc);
	}
	if ((rc = me_replay_init(&rp, book)) < 0)
		goto out;
	rp.seq = snap_seq;
	if (have_cfg) {
		rp.cfg = cfg;
		rp.have_cfg = 1;
	}

	/* one pass from the dedup window's start (or the snapshot) to the tip */
	uint64_t now_real = wal_real_ns();
	uint64_t since = now_real > me->cfg.dedup_window_ns ? now_real - me->cfg.dedup_window_ns : 0;
	uint64_t from = snap_seq + 1, scan = from;
	if (tip > 0) {
		if ((rc = rsx_wal_set_open(&set, me->wal_dir, me->symbol_id)) < 0 ||
		    (rc = rsx_wal_reader_open(&rd, set)) < 0) {
			fail(me, rc, "cannot read the WAL in %s (%d)", me->wal_dir, rc);
			goto out;
		}
		uint64_t w = window_start(set, rd, since, oldest);
		if (w < scan)
			scan = w;
		rec->dedup_from_seq = scan;
		buf = malloc(READ_BUF);
		ent = malloc(sizeof *ent * READ_ENT);
		if (!buf || !ent) {
			rc = -ENOMEM;
			goto out;
		}
		if ((rc = rsx_wal_reader_seek(rd, scan)) < 0) {
			fail(me, rc, "cannot seek the WAL to seq %llu (%d)", (unsigned long long)scan, rc);
			goto out;
		}
		uint64_t next = scan;
		while (next <= tip) {
			size_t nb;
			int64_t n = rsx_wal_reader_read(rd, buf, READ_BUF, ent, READ_ENT, &nb);
			if (n <= 0) {
				rc = n < 0 ? (int)n : RSX_ESEQ;
				fail(me, rc, "the WAL ends or breaks at seq %llu before its tip %llu (%d)",
				     (unsigned long long)next, (unsigned long long)tip, rc);
				goto out;
			}
			for (int64_t i = 0; i < n && ent[i].seq <= tip; i++) {
				const uint8_t *r = buf + ent[i].offset;
				if (ent[i].type == RSX_REC_ORDER_ACCEPTED) {
					struct rsx_order o;
					memcpy(&o, r + RSX_HEADER_SIZE, sizeof o);
					if (o.ts_ns >= since &&
					    me_dedup_rebuild_insert(&me->dd, o.user_id, &o.order_id,
								    me_dedup_tick(o.ts_ns), o.seq) != 0) {
						rc = fail(me, RSX_EINVALID, "dedup_capacity %llu is too small for the "
							  "orders of the dedup window (more than 3/4 of it)",
							  (unsigned long long)me->cfg.dedup_capacity);
						goto out;
					}
				}
				if (ent[i].seq >= from) {
					if ((rc = me_replay_feed(&rp, r, ent[i].size)) < 0) {
						fail(me, rc, "replay diverged: %s", rp.why);
						goto out;
					}
					rec->replayed_records++;
				}
				next = ent[i].seq + 1;
			}
		}
	}
	rec->replayed_requests = rp.requests;
	rec->dedup_entries = me->dd.count;
	if (rp.have_cfg) {
		cfg = rp.cfg;
		have_cfg = 1;
	}

	/* a request the crash cut: append the rest of its events (never sent: no seq reused) */
	if (!me_replay_boundary(&rp)) {
		struct emit_ctx e = { .me = me, .ts = wal_real_ns() };
		if ((rc = me_replay_rest(&rp, emit_completion, &e)) < 0) {
			fail(me, rc, "cannot complete the last request (%d)", rc);
			goto out;
		}
		rec->completed_records = e.n;
	}

	/* the configuration: the first record of a new stream, or a new version if a parameter changed */
	struct rsx_config want = me->cfg.symbol;
	int append = 0;
	if (!have_cfg) {
		if (want.config_version == 0)
			want.config_version = 1;
		append = 1;
	} else if (!me_config_same_params(&cfg, &want)) {
		uint32_t why;
		want.status = cfg.status;	/* a halted symbol stays halted */
		want.config_version = cfg.config_version + 1;
		if ((rc = me_config_check(&cfg, &want, &why)) < 0) {
			fail(me, RSX_EINVALID, "the configured parameters of symbol %u cannot replace the WAL's "
			     "(why %u: decimals cannot change)", me->symbol_id, why);
			goto out;
		}
		append = 1;
	} else {
		want = cfg;
	}
	me_book_config(&me->book_cfg, &want);
	if (append) {
		uint8_t frame[RSX_RECORD_MAX] __attribute__((aligned(16)));
		uint64_t ts = wal_real_ns();
		want.effective_at_ns = ts;
		want.seq = 0;
		want.ts_ns = ts;
		if ((rc = rsx_book_set_config(book, &me->book_cfg)) < 0 ||
		    (rc = rsx_record_frame(frame, sizeof frame, RSX_REC_CONFIG_APPLIED, &want, sizeof want)) < 0)
			goto out;
		int64_t n = rsx_wal_append_framed(me->wal, frame, (size_t)rc, ts, NULL, 0);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		memcpy(&want, frame + RSX_HEADER_SIZE, sizeof want);
		rec->config_appended = 1;
	}
	me->sym = want;
	me->status = want.status;
	rec->config_version = want.config_version;
	if ((rc = rsx_wal_flush(me->wal)) < 0) {
		fail(me, rc, "cannot sync the WAL (%d)", rc);
		goto out;
	}
	if ((rc = migrate(me, &book)) < 0)
		goto out;
	/* retention keeps every record the oldest kept snapshot needs (0: all of them) */
	rsx_wal_consumer_set(me->wal_dir, "me-snapshots", me_snap_prune(me->snap_dir, me->cfg.snapshot_keep));
	me->book = book;
	book = NULL;
	rc = 0;
out:
	rec->elapsed_ns = wal_mono_ns() - t0;
	me_replay_free(&rp);
	if (book)
		rsx_book_destroy(book);
	if (rd)
		rsx_wal_reader_close(rd);
	if (set)
		rsx_wal_set_close(set);
	free(buf);
	free(ent);
	return rc;
}
