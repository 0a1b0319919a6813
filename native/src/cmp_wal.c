/*
 * cmp_wal.c - serve CMP retransmits past the hot ring from the WAL.
 */
#include "rsx/cmp_wal.h"
#include "rsx/wal.h"

int rsx_cmp_wal_fetch(void *reader, uint32_t stream_id, uint64_t seq, void *buf, size_t cap)
{
	/* The sender re-checks what comes back (valid record, its stream, this seq). */
	(void)stream_id;
	/* Seqs a sender sent were released durable, so the WAL has them or says GONE. */
	return rsx_wal_read_seq(reader, seq, buf, cap);
}
