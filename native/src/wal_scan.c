/*
 * wal_scan.c - index the records of one buffer, stopping at the first one
 * that does not check (specs/wal.md section 3.1).
 */
#include <string.h>

#include "rsx/errors.h"
#include "rsx/records.h"
#include "wal_internal.h"

static uint16_t get_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static int is_control(uint16_t type)
{
	return type >= 48 && type <= 63;
}

int64_t rsx_wal_scan(const void *buf, size_t n, struct rsx_wal_entry *entries, size_t cap,
		     struct rsx_wal_scan *st)
{
	const uint8_t *p = buf;
	size_t off = 0, count = 0;
	uint64_t next = st->next_seq;
	int anyseq = st->flags & RSX_WAL_SCAN_ANYSEQ;

	st->stop = RSX_WAL_STOP_END;
	st->error = 0;
	st->found_seq = 0;
	st->valid = 0;
	while (off < n) {
		const uint8_t *rec = p + off;
		size_t left = n - off;
		int size = rsx_record_check(rec, left);
		if (size < 0) {
			if ((st->flags & RSX_WAL_SCAN_ZEROS) && wal_all_zero(rec, left)) {
				st->stop = RSX_WAL_STOP_ZEROS;
			} else if (size == RSX_ESHORT) {
				/*
				 * Too few bytes for a header, or for the payload the
				 * header announces: a partial record. A header that is
				 * itself invalid was reported before ESHORT (check order),
				 * so this is only ever an incomplete, plausible record.
				 */
				st->stop = RSX_WAL_STOP_PARTIAL;
			} else {
				st->stop = RSX_WAL_STOP_BAD;
				st->error = size;
				if (left >= RSX_HEADER_SIZE + 8)
					st->found_seq = get_u64(rec + RSX_HEADER_SIZE);
			}
			break;
		}
		uint16_t type = get_u16(rec + 2);
		uint64_t seq = get_u64(rec + RSX_HEADER_SIZE);
		uint32_t stream = get_u32(rec + RSX_HEADER_SIZE + 16);
		st->valid = 1;	/* from here on, a stop is a whole valid record */
		if (is_control(type)) {
			st->found_seq = seq;
			if (st->flags & RSX_WAL_SCAN_CONTROL) {
				st->stop = RSX_WAL_STOP_CONTROL;
			} else {
				st->stop = RSX_WAL_STOP_BAD;
				st->error = RSX_ETYPE;
			}
			break;
		}
		if (st->stream_id != 0 && stream != st->stream_id) {
			st->stop = RSX_WAL_STOP_BAD;
			st->error = RSX_ESTREAM;
			st->found_seq = seq;
			break;
		}
		if (!anyseq && ((next != 0 && seq != next) || seq == 0)) {
			st->stop = RSX_WAL_STOP_BAD;
			st->error = RSX_ESEQ;
			st->found_seq = seq;
			break;
		}
		if (count == cap) {
			st->stop = RSX_WAL_STOP_FULL;
			st->valid = 0;
			break;
		}
		entries[count].offset = off;
		entries[count].seq = seq;
		entries[count].type = type;
		entries[count].size = (uint16_t)size;
		entries[count].stream_id = stream;
		count++;
		next = seq + 1;
		off += (size_t)size;
		st->valid = 0;
	}
	st->end = off;
	st->count = count;
	st->next_seq = next;
	return (int64_t)count;
}

size_t rsx_wal_gather(const void *buf, const struct rsx_wal_entry *entries, size_t n,
		      uint16_t type, void *out, size_t cap)
{
	const uint8_t *p = buf;
	uint8_t *o = out;
	size_t used = 0, count = 0;
	for (size_t i = 0; i < n; i++) {
		if (entries[i].type != type)
			continue;
		size_t size = entries[i].size;
		if (used + size > cap)
			break;
		memcpy(o + used, p + entries[i].offset, size);
		used += size;
		count++;
	}
	return count;
}
