/*
 * mirror.h - a ring buffer mapped twice back to back (not installed): a
 * record or batch that wraps past the end is still contiguous in memory.
 * Used by the WAL's ring and the matching engine's outbound ring.
 */
#ifndef RSX_MIRROR_H
#define RSX_MIRROR_H

#include <stdint.h>

/* Map a memfd of `size` bytes (a multiple of the page size) twice; the first copy is faulted in. 0 or -errno. */
int mirror_map(const char *name, uint64_t size, uint8_t **out);
void mirror_unmap(uint8_t *base, uint64_t size);

#endif
