/*
 * rsx/cmp_wal.h - the WAL as a CMP sender's deep retransmit source (seam 1 of specs/cmp.md).
 *
 * A sender answers a NAK from its hot ring; for older seqs it calls its fetch
 * function. rsx_cmp_wal_fetch is that function over a WAL reader: set
 * cfg.fetch = rsx_cmp_wal_fetch and cfg.fetch_ctx = a struct rsx_wal_reader
 * opened on the sender's stream. The reader is used only from the thread that
 * polls the sender's endpoint.
 */
#ifndef RSX_CMP_WAL_H
#define RSX_CMP_WAL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Copy the record `seq` of the reader's stream into buf. Returns the record
 * size, RSX_EGONE if retention already deleted it (the receiver falls back to
 * DXS replay), or another negative code from rsx_wal_read_seq (counted as a
 * fetch error by the sender). The sender re-checks the record it gets back
 * (valid, its stream, the seq asked for), so a reader of another stream only
 * produces fetch errors, never a wrong retransmit.
 */
int rsx_cmp_wal_fetch(void *reader, uint32_t stream_id, uint64_t seq, void *buf, size_t cap);

#endif
