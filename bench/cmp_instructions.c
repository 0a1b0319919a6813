/*
 * bench/cmp_instructions.c - user-space instructions per record of the CMP
 * path, measured with callgrind (stable on a shared machine, unlike time).
 *
 *   make -C native && gcc -O2 -Inative/include bench/cmp_instructions.c native/build/librsx.a -pthread \
 *       -o /tmp/cmp_instr && valgrind --tool=callgrind --collect-atstart=no --toggle-collect='measure*' \
 *       --callgrind-out-file=/tmp/cg.out /tmp/cmp_instr && callgrind_annotate /tmp/cg.out | head -30
 *
 * measure() sends N records through the sender (checks, hot ring), the mem
 * backend (a memcpy standing in for the kernel), the endpoint (validation,
 * CRC32C, dispatch) and the receiver (window, delivery copy). Divide the
 * total by N. Kernel work (syscalls) is not counted: callgrind sees user space only.
 */
#include <stdio.h>
#include <string.h>

#include "rsx/cmp.h"
#include "rsx/records.h"

#define N 100000

static uint8_t recs[64][RSX_RECORD_MAX];
static uint8_t out[64 * RSX_RECORD_MAX];

__attribute__((noinline)) static uint64_t measure(struct rsx_cmp_endpoint *a, struct rsx_cmp_endpoint *b,
						  struct rsx_cmp_sender *s, struct rsx_cmp_receiver *r, int len)
{
	uint64_t got = 0;
	for (uint64_t q = 1; q <= N; q++) {
		uint8_t *rec = recs[q & 63];
		uint64_t seq = q;
		memcpy(rec + RSX_HEADER_SIZE, &seq, 8);
		rsx_record_seal(rec, RSX_RECORD_MAX);	/* the stream owner's cost, counted too */
		rsx_cmp_sender_send(s, rec, (size_t)len);
		if ((q & 31) == 0) {
			rsx_cmp_poll(b, 0);
			got += (uint64_t)rsx_cmp_receiver_read(r, out, RSX_RECORD_MAX, 64);
		}
	}
	(void)a;
	return got;
}

int main(void)
{
	struct rsx_cmp_config c;
	struct rsx_cmp_endpoint *a, *b;
	struct rsx_cmp_sender *s;
	struct rsx_cmp_receiver *r;
	struct rsx_cmp_sender_config sc;
	struct rsx_cmp_receiver_config rc;
	struct rsx_bbo bbo;

	rsx_cmp_config_init(&c);
	c.backend = RSX_CMP_MEM;
	rsx_cmp_addr_set(&c.local, "10.0.0.1", 1);
	rsx_cmp_open(&c, &a);
	rsx_cmp_addr_set(&c.local, "10.0.0.2", 2);
	rsx_cmp_open(&c, &b);
	rsx_cmp_mem_link(a, b);
	rsx_cmp_sender_config_init(&sc);
	sc.stream_id = 1;
	sc.ndest = 1;
	sc.heartbeat_us = 0;
	rsx_cmp_addr_set(&sc.dest[0], "10.0.0.2", 2);
	rsx_cmp_sender_open(a, &sc, &s);
	rsx_cmp_receiver_config_init(&rc);
	rc.stream_id = 1;
	rsx_cmp_receiver_open(b, &rc, &r);
	memset(&bbo, 0, sizeof(bbo));
	bbo.stream_id = 1;
	int len = 0;
	for (int i = 0; i < 64; i++)
		len = rsx_record_frame(recs[i], RSX_RECORD_MAX, RSX_REC_BBO, &bbo, sizeof(bbo));
	uint64_t got = measure(a, b, s, r, len);
	printf("%d records sent, %llu delivered (64-byte payloads)\n", N, (unsigned long long)got);
	rsx_cmp_close(a);
	rsx_cmp_close(b);
	return got == N ? 0 : 1;
}
