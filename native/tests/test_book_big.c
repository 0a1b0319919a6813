/*
 * test_book_big.c - 10 million resting orders at 10 million distinct prices
 * (the level pool's worst case), across zone 0 and the coarse zones: they
 * all rest, the audit passes, the next GTC is refused BOOK_FULL, a sweep
 * takes the far ones in price order, and the memory per order is reported.
 * Skipped (exit 77) when the machine cannot map the ~1.2 GB.
 */
#include <sys/sysinfo.h>
#include <time.h>

#include "t_book.h"

#define N 10000000
#define CENTRE 100000000

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void)
{
	struct sysinfo si;
	if (sysinfo(&si) == 0 && (uint64_t)si.freeram * si.mem_unit < (3ull << 30)) {
		fprintf(stderr, "less than 3 GiB free: skipped\n");
		return T_EXIT_SKIP;
	}
	struct rsx_book_params p;
	struct rsx_symbol_config c = t_cfg(1, 1);
	struct rsx_book *b = NULL;
	memset(&p, 0, sizeof p);
	p.capacity = N;
	p.max_users = 65536;
	p.ref_price.raw = CENTRE;
	p.zone0_ticks = 1000;	/* a narrow zone 0: most prices land in the coarse zones and the catch-all */
	double t0 = now();
	int rc = rsx_book_create(&b, &p, &c);
	if (rc == -ENOMEM) {
		fprintf(stderr, "cannot map the book: skipped\n");
		return T_EXIT_SKIP;
	}
	T_EQ(rc, 0);
	if (rc)
		T_DONE();
	double t1 = now();

	struct rsx_book_sink s = { .buf = t_buf, .cap = 4096 };
	struct rsx_order o;
	memset(&o, 0, sizeof o);
	o.qty.raw = 1;
	long refused = 0;
	for (uint64_t i = 0; i < N; i++) {
		/* bids below and asks above the centre, one price each, 5 million ticks each way */
		o.user_id = 1 + (uint32_t)(i % 50000);
		o.order_id = t_oid(i + 1);
		o.side = i & 1 ? RSX_SIDE_SELL : RSX_SIDE_BUY;
		o.price.raw = i & 1 ? CENTRE + 1 + (int64_t)(i / 2) : CENTRE - (int64_t)(i / 2);
		s.len = s.count = 0;
		if (rsx_book_new_order(b, &o, &s) != 0 || t_buf[2] != RSX_REC_ORDER_INSERTED)
			refused++;
	}
	double t2 = now();
	T_EQ(refused, 0);
	struct rsx_book_stats st;
	rsx_book_stats(b, &st);
	T_EQ(st.orders, N);
	T_EQ(st.levels, N);

	/* full: the next GTC is refused, never an abort */
	o.order_id = t_oid(N + 1);
	o.side = RSX_SIDE_BUY;
	o.price.raw = 1;
	s.len = s.count = 0;
	T_EQ(rsx_book_new_order(b, &o, &s), 0);
	T_EQ(rsx_book_flatten(s.buf, s.len, t_ev, 4), 1);
	T_EQ(t_ev[0].type, RSX_REC_ORDER_FAILED);
	T_EQ(t_ev[0].reason, RSX_REASON_BOOK_FULL);

	char msg[256];
	T_EQ(rsx_book_check(b, msg, sizeof msg), 0);
	double t3 = now();

	/* an IOC through the asks (zones 1-3, then ~5 million prices in the catch-all) fills in price order */
	o.order_id = t_oid(N + 2);
	o.side = RSX_SIDE_BUY;
	o.tif = RSX_TIF_IOC;
	o.user_id = 60000;
	o.price.raw = CENTRE + N;
	o.qty.raw = 90000;
	t_sink_cap = sizeof t_buf;
	struct rsx_book_sink s2 = t_sink();
	t_nev = 0;
	t_drain(b, rsx_book_new_order(b, &o, &s2), &s2);
	/* t_ev holds the tail of the sweep (EV_MAX rows): the fills there ascend */
	int64_t last = CENTRE;
	int ordered = 1, fills = 0;
	for (int i = 0; i < t_nev; i++)
		if (t_ev[i].type == RSX_REC_FILL) {
			ordered &= t_ev[i].price > last;
			last = t_ev[i].price;
			fills++;
		}
	T_CHECK(ordered);
	T_EQ(fills, 90000);
	T_EQ(t_best(b, RSX_SIDE_SELL), CENTRE + 90001);

	struct rsx_book_mem m;
	rsx_book_mem(b, &m);
	const char *backing = m.backing == RSX_BOOK_MEM_HUGETLB ? "hugetlb"
			      : m.backing == RSX_BOOK_MEM_THP ? "thp" : "4k";
	fprintf(stderr,
		"10M orders / 10M levels: %llu bytes mapped (%s), %llu bytes per resting order; "
		"create+prefault %.2f s, 10M inserts %.2f s (%.0f ns each), audit %.2f s\n",
		(unsigned long long)m.mapped_bytes, backing, (unsigned long long)m.bytes_per_order, t1 - t0,
		t2 - t1, (t2 - t1) * 1e9 / N, t3 - t2);
	T_CHECK(m.bytes_per_order <= 128);
	rsx_book_destroy(b);
	T_DONE();
}
