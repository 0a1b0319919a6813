/*
 * cmp_xdp.c - the AF_XDP backend: one XSK in copy mode (XDP_COPY: veth and
 * virtio offer no zero-copy here) on one interface queue, fed by the port
 * filter of cmp_bpf.c. Everything by hand: UMEM, the four rings mmapped from
 * the socket, Ethernet/IPv4/UDP framing with checksums.
 *
 * UMEM: NFRAMES frames of FRAME bytes; the first half are receive frames
 * (cycled through the fill ring), the second half transmit frames (a free
 * stack refilled from the completion ring). Receive frames handed to the
 * endpoint go back to the fill ring on release().
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rsx/errors.h"
#include "cmp_int.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

#define FRAME 2048u
#define NFRAMES 4096u
#define NRX (NFRAMES / 2)
#define NTX (NFRAMES / 2)
#define RING 2048u		/* entries in each of the four rings */
#define HDR 42			/* Ethernet 14 + IPv4 20 + UDP 8 */

struct xring {
	uint32_t *producer, *consumer, *flags;
	void *descs;
	uint32_t cached;	/* our side's index: prod for fill/tx, cons for rx/comp */
	void *map;
	size_t map_len;
};

struct xdp_io {
	struct rsx_cmp_io base;
	int fd, map_fd, prog_fd, link_fd;
	uint8_t *umem;
	struct xring fill, comp, rx, tx;
	uint64_t txfree[NTX];
	unsigned ntxfree;
	uint64_t held[CMP_MAX_BATCH];
	unsigned nheld;
	int ifindex;
	uint8_t mac[6];
	uint16_t ip_id;
	int need_kick;
	char ifname[16];
	char netns[128];
};

/* ---- checksums (RFC 1071), over big-endian 16-bit words ---- */

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	size_t i;
	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Build Ethernet + IPv4 + UDP around payload in frame; returns the frame length. */
static uint32_t build_frame(struct xdp_io *x, uint8_t *f, const struct cmp_txmsg *m)
{
	uint8_t *ip = f + 14, *udp = f + 34;
	uint16_t ulen = (uint16_t)(8 + m->len);

	memcpy(f, m->to.mac, 6);
	memcpy(f + 6, x->mac, 6);
	put_be16(f + 12, 0x0800);
	ip[0] = 0x45;
	ip[1] = 0;
	put_be16(ip + 2, (uint16_t)(20 + ulen));
	put_be16(ip + 4, x->ip_id++);
	put_be16(ip + 6, 0x4000);	/* don't fragment */
	ip[8] = 64;
	ip[9] = 17;
	put_be16(ip + 10, 0);
	memcpy(ip + 12, &x->base.local.ip, 4);
	memcpy(ip + 16, &m->to.ip, 4);
	put_be16(ip + 10, csum_fold(csum_add(0, ip, 20)));
	put_be16(udp, x->base.local.port);
	put_be16(udp + 2, m->to.port);
	put_be16(udp + 4, ulen);
	put_be16(udp + 6, 0);
	memcpy(udp + 8, m->buf, m->len);
	/* The UDP checksum is written in full: a kernel socket at the other end must accept it. */
	uint32_t sum = csum_add(0, ip + 12, 8);	/* pseudo header: addresses, protocol, length */
	sum += 17 + ulen;
	sum = csum_add(sum, udp, ulen);
	uint16_t c = csum_fold(sum);
	put_be16(udp + 6, c ? c : 0xffff);
	return HDR + m->len;
}

/* ---- rings ---- */

static void kick(struct xdp_io *x)
{
	/* Copy mode transmits from sendto(); each call takes at most 32 frames (TX_BATCH_SIZE). */
	for (int i = 0; i < 16; i++) {
		if (sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0) {
			uint32_t cons = __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE);
			if (cons == x->tx.cached) {
				x->need_kick = 0;
				return;
			}
			continue;
		}
		if (errno != EAGAIN && errno != EBUSY && errno != ENOBUFS)
			break;
	}
	uint32_t cons = __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE);
	x->need_kick = cons != x->tx.cached;
}

static void reap_completions(struct xdp_io *x)
{
	uint32_t prod = __atomic_load_n(x->comp.producer, __ATOMIC_ACQUIRE);
	uint32_t cons = x->comp.cached;
	uint64_t *descs = x->comp.descs;
	while (cons != prod && x->ntxfree < NTX)
		x->txfree[x->ntxfree++] = descs[cons++ & (RING - 1)] & ~(uint64_t)(FRAME - 1);
	x->comp.cached = cons;
	__atomic_store_n(x->comp.consumer, cons, __ATOMIC_RELEASE);
}

static void refill(struct xdp_io *x, const uint64_t *addrs, unsigned n)
{
	uint64_t *descs = x->fill.descs;
	for (unsigned i = 0; i < n; i++)
		descs[x->fill.cached++ & (RING - 1)] = addrs[i];
	__atomic_store_n(x->fill.producer, x->fill.cached, __ATOMIC_RELEASE);
}

static int xdp_send(struct rsx_cmp_io *io, const struct cmp_txmsg *msgs, unsigned n)
{
	struct xdp_io *x = (struct xdp_io *)io;
	struct xdp_desc *descs = x->tx.descs;
	unsigned i, queued = 0;

	if (x->ntxfree < n)
		reap_completions(x);
	for (i = 0; i < n; i++) {
		if (msgs[i].len > FRAME - HDR || !(msgs[i].to.mac[0] | msgs[i].to.mac[1] | msgs[i].to.mac[2] |
						    msgs[i].to.mac[3] | msgs[i].to.mac[4] | msgs[i].to.mac[5])) {
			x->base.st->tx_errors++;	/* too big for a frame, or no MAC: consumed, not sent */
			continue;
		}
		uint32_t cons = __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE);
		if (x->tx.cached - cons >= RING || x->ntxfree == 0) {
			if (queued) {
				__atomic_store_n(x->tx.producer, x->tx.cached, __ATOMIC_RELEASE);
				queued = 0;
			}
			kick(x);
			reap_completions(x);
			cons = __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE);
			if (x->tx.cached - cons >= RING || x->ntxfree == 0)
				break;	/* ring full: EAGAIN */
		}
		uint64_t addr = x->txfree[--x->ntxfree];
		struct xdp_desc *d = &descs[x->tx.cached & (RING - 1)];
		d->addr = addr;
		d->len = build_frame(x, x->umem + addr, &msgs[i]);
		d->options = 0;
		x->tx.cached++;
		queued++;
	}
	if (queued)
		__atomic_store_n(x->tx.producer, x->tx.cached, __ATOMIC_RELEASE);
	kick(x);
	return (int)i;
}

/* Parse one received frame; 0 if it is not IPv4/UDP to our port. */
static int parse(struct xdp_io *x, const uint8_t *f, uint32_t len, struct cmp_rxmsg *m)
{
	if (len < HDR || get_be16(f + 12) != 0x0800 || f[14] != 0x45 || f[23] != 17 ||
	    get_be16(f + 36) != x->base.local.port)
		return 0;
	uint16_t ulen = get_be16(f + 38);
	if (ulen < 8)
		return 0;
	uint32_t plen = ulen - 8u, have = len - HDR;	/* Ethernet may pad short frames: trust the UDP length */
	m->buf = f + HDR;
	m->len = plen < have ? plen : have;
	m->truncated = plen > have;
	memset(&m->from, 0, sizeof(m->from));
	memcpy(m->from.mac, f + 6, 6);
	memcpy(&m->from.ip, f + 26, 4);
	m->from.port = get_be16(f + 34);
	return 1;
}

static int xdp_recv(struct rsx_cmp_io *io, struct cmp_rxmsg *msgs, unsigned n)
{
	struct xdp_io *x = (struct xdp_io *)io;
	struct xdp_desc *descs = x->rx.descs;
	uint32_t prod = __atomic_load_n(x->rx.producer, __ATOMIC_ACQUIRE);
	uint32_t cons = x->rx.cached;
	unsigned k = 0;
	uint64_t junk[CMP_MAX_BATCH];
	unsigned njunk = 0;

	while (cons != prod && k < n && njunk < CMP_MAX_BATCH) {
		struct xdp_desc d = descs[cons++ & (RING - 1)];
		uint64_t base = d.addr & ~(uint64_t)(FRAME - 1);
		if (parse(x, x->umem + d.addr, d.len, &msgs[k])) {
			x->held[x->nheld++] = base;
			k++;
		} else {
			x->base.st->rx_not_ours++;
			junk[njunk++] = base;
		}
	}
	x->rx.cached = cons;
	__atomic_store_n(x->rx.consumer, cons, __ATOMIC_RELEASE);
	if (njunk)
		refill(x, junk, njunk);
	return (int)k;
}

static void xdp_release(struct rsx_cmp_io *io)
{
	struct xdp_io *x = (struct xdp_io *)io;
	if (x->nheld)
		refill(x, x->held, x->nheld);
	x->nheld = 0;
}

static int xdp_wait(struct rsx_cmp_io *io, int64_t timeout_ns)
{
	struct xdp_io *x = (struct xdp_io *)io;
	struct pollfd p = { .fd = x->fd, .events = POLLIN };
	struct timespec ts = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
	return ppoll(&p, 1, &ts, NULL) < 0 ? -errno : 0;
}

static uint64_t xdp_tick(struct rsx_cmp_io *io, uint64_t now)
{
	struct xdp_io *x = (struct xdp_io *)io;
	if (x->need_kick) {
		kick(x);
		if (x->need_kick)
			return now + 20000;
	}
	if (x->ntxfree < NTX / 2)
		reap_completions(x);
	return 0;
}

static uint64_t xdp_drops(struct rsx_cmp_io *io)
{
	struct xdp_statistics s;
	socklen_t len = sizeof(s);
	memset(&s, 0, sizeof(s));
	if (getsockopt(((struct xdp_io *)io)->fd, SOL_XDP, XDP_STATISTICS, &s, &len) < 0)
		return 0;
	return s.rx_dropped + s.rx_ring_full;
}

static int xdp_resolve(struct rsx_cmp_io *io, struct rsx_cmp_addr *a)
{
	struct xdp_io *x = (struct xdp_io *)io;
	static const uint8_t zero[6];
	if (memcmp(a->mac, zero, 6) != 0)
		return 0;
	struct cmp_netns_guard g;
	int rc = cmp_netns_enter(x->netns, &g);
	if (rc < 0)
		return rc;
	rc = cmp_netdev_neigh(x->ifname, a->ip, a->mac, 500);
	cmp_netns_leave(&g);
	return rc;
}

static void unmap_ring(struct xring *r)
{
	if (r->map)
		munmap(r->map, r->map_len);
	r->map = NULL;
}

static void xdp_close(struct rsx_cmp_io *io)
{
	struct xdp_io *x = (struct xdp_io *)io;
	if (x->link_fd >= 0)
		close(x->link_fd);	/* detaches the program */
	if (x->prog_fd >= 0)
		close(x->prog_fd);
	if (x->map_fd >= 0)
		close(x->map_fd);
	unmap_ring(&x->rx);
	unmap_ring(&x->tx);
	unmap_ring(&x->fill);
	unmap_ring(&x->comp);
	if (x->fd >= 0)
		close(x->fd);
	if (x->umem)
		munmap(x->umem, (size_t)NFRAMES * FRAME);
	free(x);
}

static int xdp_fd(struct rsx_cmp_io *io)
{
	return ((struct xdp_io *)io)->fd;
}

static const struct rsx_cmp_io_ops xdp_ops = {
	.send = xdp_send,
	.recv = xdp_recv,
	.release = xdp_release,
	.wait = xdp_wait,
	.tick = xdp_tick,
	.drops = xdp_drops,
	.resolve = xdp_resolve,
	.fd = xdp_fd,
	.close = xdp_close,
};

static int map_ring(int fd, struct xring *r, const struct xdp_ring_offset *off, size_t desc_size, off_t pgoff)
{
	r->map_len = off->desc + RING * desc_size;
	r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, pgoff);
	if (r->map == MAP_FAILED) {
		r->map = NULL;
		return -errno;
	}
	uint8_t *b = r->map;
	r->producer = (uint32_t *)(b + off->producer);
	r->consumer = (uint32_t *)(b + off->consumer);
	r->flags = (uint32_t *)(b + off->flags);
	r->descs = b + off->desc;
	return 0;
}

static int xsk_setup(struct xdp_io *x, const struct rsx_cmp_config *cfg)
{
	int size = RING;
	struct xdp_umem_reg reg;
	struct xdp_mmap_offsets off;
	socklen_t ol = sizeof(off);

	x->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (x->fd < 0)
		return -errno;
	x->umem = mmap(NULL, (size_t)NFRAMES * FRAME, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (x->umem == MAP_FAILED) {
		x->umem = NULL;
		return -errno;
	}
	memset(&reg, 0, sizeof(reg));
	reg.addr = (uint64_t)(uintptr_t)x->umem;
	reg.len = (uint64_t)NFRAMES * FRAME;
	reg.chunk_size = FRAME;
	if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof(reg)) < 0 ||
	    setsockopt(x->fd, SOL_XDP, XDP_UMEM_FILL_RING, &size, sizeof(size)) < 0 ||
	    setsockopt(x->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &size, sizeof(size)) < 0 ||
	    setsockopt(x->fd, SOL_XDP, XDP_RX_RING, &size, sizeof(size)) < 0 ||
	    setsockopt(x->fd, SOL_XDP, XDP_TX_RING, &size, sizeof(size)) < 0 ||
	    getsockopt(x->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &ol) < 0)
		return -errno;
	int rc;
	if ((rc = map_ring(x->fd, &x->rx, &off.rx, sizeof(struct xdp_desc), XDP_PGOFF_RX_RING)) < 0 ||
	    (rc = map_ring(x->fd, &x->tx, &off.tx, sizeof(struct xdp_desc), XDP_PGOFF_TX_RING)) < 0 ||
	    (rc = map_ring(x->fd, &x->fill, &off.fr, sizeof(uint64_t), XDP_UMEM_PGOFF_FILL_RING)) < 0 ||
	    (rc = map_ring(x->fd, &x->comp, &off.cr, sizeof(uint64_t), XDP_UMEM_PGOFF_COMPLETION_RING)) < 0)
		return rc;
	/* Every receive frame into the fill ring; every transmit frame onto the free stack. */
	uint64_t addrs[NRX];
	for (unsigned i = 0; i < NRX; i++)
		addrs[i] = (uint64_t)i * FRAME;
	x->fill.cached = *x->fill.producer;
	refill(x, addrs, NRX);
	for (unsigned i = 0; i < NTX; i++)
		x->txfree[x->ntxfree++] = (uint64_t)(NRX + NTX - 1 - i) * FRAME;
	x->rx.cached = *x->rx.consumer;
	x->tx.cached = *x->tx.producer;
	x->comp.cached = *x->comp.consumer;

	struct sockaddr_xdp sa;
	memset(&sa, 0, sizeof(sa));
	sa.sxdp_family = AF_XDP;
	sa.sxdp_flags = XDP_COPY;
	sa.sxdp_ifindex = (uint32_t)x->ifindex;
	sa.sxdp_queue_id = cfg->queue;
	/* The queue may still be held by a socket that was just closed: retry EBUSY for up to 1 s. */
	for (int i = 0;; i++) {
		if (bind(x->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (errno != EBUSY || i == 20)
			return -errno;
		struct timespec ts = { 0, 50000000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

int cmp_xdp_open(const struct rsx_cmp_config *cfg, struct rsx_cmp_io **out)
{
	struct cmp_netns_guard g;
	struct xdp_io *x = calloc(1, sizeof(*x));
	int rc;

	if (!x)
		return -ENOMEM;
	x->fd = x->map_fd = x->prog_fd = x->link_fd = -1;
	x->base.ops = &xdp_ops;
	x->base.local = cfg->local;
	memcpy(x->ifname, cfg->ifname, sizeof(x->ifname));
	memcpy(x->netns, cfg->netns, sizeof(x->netns));
	if ((rc = cmp_netns_enter(cfg->netns, &g)) < 0) {
		free(x);
		return rc;
	}
	if ((rc = x->ifindex = cmp_netdev_ifindex(cfg->ifname)) < 0 || (rc = cmp_netdev_mac(cfg->ifname, x->mac)) < 0)
		goto fail;
	if (x->base.local.ip == 0 && (rc = cmp_netdev_ipv4(cfg->ifname, &x->base.local.ip)) < 0)
		goto fail;
	if ((rc = xsk_setup(x, cfg)) < 0)
		goto fail;
	if ((rc = x->map_fd = cmp_bpf_xskmap_create(cfg->queue + 1)) < 0 ||
	    (rc = cmp_bpf_map_update(x->map_fd, cfg->queue, (uint32_t)x->fd)) < 0)
		goto fail;
	if ((rc = x->prog_fd = cmp_bpf_prog_load(x->map_fd, cfg->local.port, NULL, 0)) < 0)
		goto fail;
	rc = x->link_fd = cmp_bpf_xdp_attach(x->prog_fd, x->ifindex,
					     cfg->xdp_mode == RSX_CMP_XDP_DRV ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
	if (rc < 0)
		goto fail;
	cmp_netns_leave(&g);
	*out = &x->base;
	return 0;
fail:
	cmp_netns_leave(&g);
	xdp_close(&x->base);
	return rc;
}
