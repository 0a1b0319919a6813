/*
 * me_verify.c - offline check of a matching engine's directory (rsx me
 * verify): replay the stream from seq 1 into a fresh book and from the
 * newest usable snapshot, check that both reproduce every outcome the WAL
 * holds, and that both end in the same book.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsx/errors.h"
#include "me_int.h"

#define READ_BUF (4u << 20)
#define READ_ENT 16384

struct reading {
	struct rsx_wal_reader *rd;
	uint8_t *buf;
	struct rsx_wal_entry *ent;
};

/* Feed seqs [from, tip] to rp. Returns records fed, or an error (rp->why for a divergence). */
static int64_t replay_range(struct reading *g, struct me_replay *rp, uint64_t from, uint64_t tip)
{
	int64_t fed = 0;
	int rc = rsx_wal_reader_seek(g->rd, from);
	if (rc < 0)
		return rc;
	while (from <= tip) {
		size_t nb;
		int64_t n = rsx_wal_reader_read(g->rd, g->buf, READ_BUF, g->ent, READ_ENT, &nb);
		if (n <= 0)
			return n < 0 ? n : RSX_ESEQ;
		for (int64_t i = 0; i < n && g->ent[i].seq <= tip; i++) {
			if ((rc = me_replay_feed(rp, g->buf + g->ent[i].offset, g->ent[i].size)) < 0)
				return rc;
			fed++;
			from = g->ent[i].seq + 1;
		}
	}
	return fed;
}

static void say(struct rsx_me_verify_report *out, const char *fmt, ...)
{
	va_list ap;
	if (out->message[0])
		return;	/* keep the first problem */
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof out->message, fmt, ap);
	va_end(ap);
}

/* The book's state sections: counts, ops, fills, config, users, orders, user lists (not capacities, centre). */
static int same_state(struct rsx_book *a, struct rsx_book *b)
{
	size_t la = rsx_book_snapshot_size(a), lb = rsx_book_snapshot_size(b);
	uint8_t *x = malloc(la), *y = malloc(lb);
	int same = 0;
	if (x && y && la == lb && rsx_book_snapshot(a, 0, x, la) == (int64_t)la &&
	    rsx_book_snapshot(b, 0, y, lb) == (int64_t)lb)
		same = memcmp(x + 24, y + 24, 24) == 0 && memcmp(x + 88, y + 88, 8) == 0 &&
		       memcmp(x + 112, y + 112, 8) == 0 && memcmp(x + 128, y + 128, la - 128 - 8) == 0;
	free(x);
	free(y);
	return same;
}

int rsx_me_verify(const struct rsx_me_config *cfg, struct rsx_me_verify_report *out)
{
	char wal_dir[ME_PATH_MAX], snap_dir[ME_PATH_MAX];
	struct rsx_wal_set *set = NULL;
	struct reading g = { 0 };
	struct rsx_wal_set_info info;
	struct rsx_book *full = NULL, *tail = NULL;
	struct me_replay rp;
	int rc;

	memset(out, 0, sizeof *out);
	memset(&rp, 0, sizeof rp);
	out->books_equal = -1;
	if (!cfg->dir || cfg->symbol.symbol_id == 0)
		return RSX_EINVALID;
	snprintf(wal_dir, sizeof wal_dir, "%.4000s/wal", cfg->dir);
	snprintf(snap_dir, sizeof snap_dir, "%.4000s/snapshots", cfg->dir);
	if ((rc = rsx_wal_set_open(&set, wal_dir, cfg->symbol.symbol_id)) < 0)
		return rc;
	rsx_wal_set_info(set, &info);
	out->tip = info.durable_seq;
	out->oldest = info.oldest_seq;
	g.buf = malloc(READ_BUF);
	g.ent = malloc(sizeof *g.ent * READ_ENT);
	if (!g.buf || !g.ent || (rc = rsx_wal_reader_open(&g.rd, set)) < 0) {
		rc = rc < 0 ? rc : -ENOMEM;
		goto done;
	}
	struct rsx_book_params p = {
		.capacity = cfg->capacity, .level_capacity = cfg->level_capacity, .max_users = cfg->max_users,
		.stream_id = cfg->symbol.symbol_id, .ref_price = { cfg->ref_price }, .zone0_ticks = cfg->zone0_ticks,
		.flags = cfg->book_flags | RSX_BOOK_HUGETLB_NEVER,
	};
	struct rsx_symbol_config c;
	me_book_config(&c, &cfg->symbol);

	/* 1. the whole stream into a fresh book */
	if (out->tip == 0 || out->oldest <= 1) {
		if ((rc = rsx_book_create(&full, &p, &c)) < 0 || (rc = me_replay_init(&rp, full)) < 0)
			goto done;
		int64_t n = out->tip ? replay_range(&g, &rp, 1, out->tip) : 0;
		out->full_result = n < 0 ? (int)n : 0;
		out->full_records = n < 0 ? rp.records : (uint64_t)n;
		out->full_requests = rp.requests;
		out->open_at_end = !me_replay_boundary(&rp);
		if (n < 0) {
			out->diverged_seq = rp.diverged_seq;
			say(out, "full replay: %s", n == RSX_EDIVERGED ? rp.why : "the WAL breaks");
		}
		me_replay_free(&rp);
	} else {
		say(out, "the WAL starts at seq %llu: no full replay", (unsigned long long)out->oldest);
	}

	/* 2. the newest usable snapshot + the tail */
	char (*names)[64] = NULL;
	int ns = me_snap_list(snap_dir, &names);
	for (int i = 0; i < ns && !tail; i++) {
		struct me_snapshot s;
		struct rsx_book_params sp;
		struct rsx_symbol_config sc;
		uint64_t seq;
		if (me_snap_load(snap_dir, names[i], cfg->symbol.symbol_id, &s) < 0)
			continue;
		if (s.wal_seq <= out->tip && rsx_book_snapshot_params(s.book, s.book_len, &sp, &sc, &seq) == 0) {
			sp.flags = p.flags;
			sp.ref_price = p.ref_price;
			if (rsx_book_create(&tail, &sp, &sc) == 0 &&
			    rsx_book_restore(tail, s.book, s.book_len, &seq) < 0) {
				rsx_book_destroy(tail);
				tail = NULL;
			}
			if (tail) {
				out->snapshot_seq = s.wal_seq;
				if ((rc = me_replay_init(&rp, tail)) < 0) {
					free(s.data);
					break;
				}
				rp.cfg = s.cfg;
				rp.have_cfg = 1;
				rp.seq = s.wal_seq;
				int64_t n = replay_range(&g, &rp, s.wal_seq + 1, out->tip);
				out->tail_result = n < 0 ? (int)n : 0;
				out->tail_records = n < 0 ? rp.records : (uint64_t)n;
				if (n < 0) {
					out->diverged_seq = out->diverged_seq ? out->diverged_seq : rp.diverged_seq;
					say(out, "snapshot %s + tail: %s", s.name,
					    n == RSX_EDIVERGED ? rp.why : "the WAL breaks");
				}
				me_replay_free(&rp);
			}
		}
		free(s.data);
	}
	free(names);

	if (full && tail && out->full_result == 0 && out->tail_result == 0) {
		out->books_equal = same_state(full, tail);
		if (!out->books_equal)
			say(out, "the book from seq 1 and the book from snapshot %llu differ",
			    (unsigned long long)out->snapshot_seq);
	}
	rc = (out->full_result || out->tail_result || out->books_equal == 0) ? RSX_EDIVERGED : 0;
done:
	if (g.rd)
		rsx_wal_reader_close(g.rd);
	rsx_wal_set_close(set);
	free(g.buf);
	free(g.ent);
	if (full)
		rsx_book_destroy(full);
	if (tail)
		rsx_book_destroy(tail);
	return rc;
}
