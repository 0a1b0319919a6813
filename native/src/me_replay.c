/*
 * me_replay.c - apply a matching engine's stream to a book exactly as the
 * loop did, and check that the book makes the very records that follow each
 * request (specs/me.md section 7). Used by recovery, by the snapshot thread's
 * replica and by rsx me verify. Also the symbol-config helpers both sides use.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rsx/errors.h"
#include "me_int.h"

void me_book_config(struct rsx_symbol_config *out, const struct rsx_config *rec)
{
	rsx_symbol_config_from_record(out, rec);
	if (out->status == RSX_SYMBOL_CLOSE_ONLY)
		out->status = RSX_SYMBOL_ACTIVE;	/* the ME admits only reduce-only orders */
}

int me_config_same_params(const struct rsx_config *a, const struct rsx_config *b)
{
	return a->symbol_id == b->symbol_id && a->tick_size.raw == b->tick_size.raw &&
	       a->lot_size.raw == b->lot_size.raw && a->min_qty.raw == b->min_qty.raw &&
	       a->max_qty.raw == b->max_qty.raw && a->price_decimals == b->price_decimals &&
	       a->qty_decimals == b->qty_decimals && a->maker_fee_bps == b->maker_fee_bps &&
	       a->taker_fee_bps == b->taker_fee_bps && a->initial_margin_bps == b->initial_margin_bps &&
	       a->maintenance_margin_bps == b->maintenance_margin_bps &&
	       a->funding_interval_s == b->funding_interval_s &&
	       a->max_funding_rate_bps == b->max_funding_rate_bps;
}

int me_config_check(const struct rsx_config *cur, const struct rsx_config *want, uint32_t *why)
{
	struct rsx_symbol_config c;
	if (want->symbol_id != cur->symbol_id) {
		*why = RSX_ME_CTL_SYMBOL;
		return RSX_EINVALID;
	}
	if (want->config_version <= cur->config_version) {
		*why = RSX_ME_CTL_VERSION;
		return RSX_ESTALE;
	}
	if (want->price_decimals != cur->price_decimals || want->qty_decimals != cur->qty_decimals) {
		*why = RSX_ME_CTL_DECIMALS;
		return RSX_EINVALID;
	}
	rsx_symbol_config_from_record(&c, want);
	uint32_t fi = want->funding_interval_s;
	/* funding: what the configuration file accepts (specs/config.md 3): risk applies it as given */
	int funding_ok = fi >= 60 && fi <= 7 * 86400 && (86400 % fi == 0 || fi % 86400 == 0) &&
			 want->max_funding_rate_bps <= 10000;
	if (rsx_symbol_config_check(&c) != 0 || !funding_ok) {
		*why = RSX_ME_CTL_INCOHERENT;
		return RSX_EINVALID;
	}
	*why = RSX_ME_CTL_OK;
	return 0;
}

int64_t me_read_file(const char *path, uint8_t **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0) {
			int e = n < 0 ? -errno : -EIO;
			free(buf);
			close(fd);
			return e;
		}
		got += (size_t)n;
	}
	close(fd);
	*out = buf;
	return (int64_t)got;
}

int me_replay_init(struct me_replay *rp, struct rsx_book *book)
{
	memset(rp, 0, sizeof *rp);
	rp->book = book;
	if (posix_memalign((void **)&rp->exp, 64, ME_SINK_CHUNK))
		return -ENOMEM;
	rp->sink.buf = rp->exp;
	rp->sink.cap = ME_SINK_CHUNK;
	return 0;
}

void me_replay_free(struct me_replay *rp)
{
	free(rp->exp);
	rp->exp = NULL;
}

static int __attribute__((format(printf, 3, 4))) diverged(struct me_replay *rp, uint64_t seq,
								const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(rp->why, sizeof rp->why, "seq %llu: ", (unsigned long long)seq);
	va_start(ap, fmt);
	vsnprintf(rp->why + n, sizeof rp->why - (size_t)n, fmt, ap);
	va_end(ap);
	rp->diverged_seq = seq;
	return RSX_EDIVERGED;
}

/* Run (or resume) the book into the expectation buffer. */
static int fill(struct me_replay *rp, uint16_t type, const void *payload, uint64_t seq)
{
	rp->sink.len = rp->sink.count = 0;
	int rc = payload ? rsx_book_apply(rp->book, type, payload, &rp->sink)
			 : rsx_book_resume(rp->book, &rp->sink);
	if (rc < 0)
		return diverged(rp, seq, "the book refused the request (%d)", rc);
	rp->pending = rc == RSX_BOOK_MORE;
	rp->exp_len = rp->sink.len;
	rp->exp_pos = 0;
	return 0;
}

int me_replay_feed(struct me_replay *rp, const uint8_t *rec, size_t len)
{
	uint16_t type;
	uint64_t seq;
	union {
		struct rsx_order order;
		struct rsx_cancel cancel;
		struct rsx_cancel_all cancel_all;
		struct rsx_amend amend;
		struct rsx_config config;
		uint8_t bytes[RSX_PAYLOAD_MAX];
	} pl __attribute__((aligned(64)));

	memcpy(&type, rec + 2, 2);
	memcpy(&seq, rec + RSX_HEADER_SIZE, 8);
	rp->records++;
	if (rp->exp_pos < rp->exp_len) {
		const uint8_t *want = rp->exp + rp->exp_pos;
		uint16_t wtype, wlen;
		memcpy(&wtype, want + 2, 2);
		memcpy(&wlen, want + 4, 2);
		if (wtype != type)
			return diverged(rp, seq, "the book made a record of type %u where the WAL has type %u",
					wtype, type);
		/* header bytes 0..7, then the payload from stream_id on (seq and ts_ns are the framer's) */
		if ((size_t)wlen + RSX_HEADER_SIZE != len || memcmp(want, rec, 8) != 0 ||
		    memcmp(want + RSX_HEADER_SIZE + 16, rec + RSX_HEADER_SIZE + 16, wlen - 16) != 0)
			return diverged(rp, seq, "the book made a different record of type %u", type);
		rp->exp_pos += RSX_HEADER_SIZE + wlen;
		rp->seq = seq;
		if (rp->exp_pos == rp->exp_len && rp->pending)
			return fill(rp, 0, NULL, seq);
		return 0;
	}
	rp->seq = seq;
	switch (type) {
	case RSX_REC_ORDER_ACCEPTED:
	case RSX_REC_CANCEL_ORDER:
	case RSX_REC_CANCEL_ALL:
	case RSX_REC_AMEND_ORDER:
		memcpy(pl.bytes, rec + RSX_HEADER_SIZE, len - RSX_HEADER_SIZE);
		rp->requests++;
		return fill(rp, type, pl.bytes, seq);
	case RSX_REC_CONFIG_APPLIED: {
		struct rsx_symbol_config c;
		memcpy(&pl.config, rec + RSX_HEADER_SIZE, sizeof pl.config);
		me_book_config(&c, &pl.config);
		if (rsx_book_set_config(rp->book, &c) < 0)
			return diverged(rp, seq, "CONFIG_APPLIED version %llu refused by the book",
					(unsigned long long)pl.config.config_version);
		rp->cfg = pl.config;
		rp->have_cfg = 1;
		return 0;
	}
	case RSX_REC_ORDER_FAILED:
		return 0;	/* refused by the ME before the book: no effect */
	default:
		return diverged(rp, seq, "a record of type %u with no request before it", type);
	}
}

int me_replay_rest(struct me_replay *rp, int (*emit)(void *ctx, uint8_t *buf, size_t len), void *ctx)
{
	for (;;) {
		if (rp->exp_pos < rp->exp_len) {
			int rc = emit(ctx, rp->exp + rp->exp_pos, rp->exp_len - rp->exp_pos);
			if (rc < 0)
				return rc;
			rp->exp_pos = rp->exp_len;
		}
		if (!rp->pending)
			return 0;
		int rc = fill(rp, 0, NULL, rp->seq);
		if (rc < 0)
			return rc;
	}
}
