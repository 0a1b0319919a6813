/*
 * cmp_int.h - CMP internals shared by native/src/cmp*.c (not a public header).
 *
 * The backend interface: every backend (udp, uring, xdp, mem) and the fault
 * layer implement struct rsx_cmp_io_ops. The endpoint above them sees only
 * batches of datagrams with addresses, so sender and receiver logic is the
 * same on every backend.
 */
#ifndef RSX_CMP_INT_H
#define RSX_CMP_INT_H

#include <stdint.h>
#include <string.h>

#include "rsx/cmp.h"
#include "rsx/records.h"

#define CMP_MAX_BATCH 64
#define CMP_MAX_DGRAM 2048	/* largest datagram a backend must carry (raw sends) */
#define CMP_SLOT 144		/* RSX_RECORD_MAX: one frame of any record type */
#define CMP_MAX_STREAMS 64	/* senders + receivers per endpoint */

#define CMP_TX_SLOT (CMP_SLOT + RSX_CMP_MAC_BYTES)	/* a sender's frame: record + tag */

_Static_assert(CMP_SLOT == RSX_RECORD_MAX, "one slot holds the largest record");

struct rsx_cmp_io;

/* One datagram to send; buf is only read during the send call. */
struct cmp_txmsg {
	const void *buf;
	uint32_t len;
	struct rsx_cmp_addr to;
};

/* One received datagram; buf is owned by the backend until release(). */
struct cmp_rxmsg {
	const uint8_t *buf;
	uint32_t len;		/* bytes in buf */
	uint32_t truncated;	/* the datagram was longer than the backend's buffer */
	struct rsx_cmp_addr from;
};

struct rsx_cmp_io_ops {
	/*
	 * Hand msgs to the kernel in order. Returns how many were consumed: a
	 * datagram the kernel refused for good is consumed (and counted in
	 * tx_errors); the first one refused with EAGAIN stops the batch.
	 */
	int (*send)(struct rsx_cmp_io *io, const struct cmp_txmsg *msgs, unsigned n);
	/* Fill up to n messages; 0 if nothing is there. -errno on a hard failure. */
	int (*recv)(struct rsx_cmp_io *io, struct cmp_rxmsg *msgs, unsigned n);
	/* Give back the buffers of the last recv batch. */
	void (*release)(struct rsx_cmp_io *io);
	/* Sleep until readable or timeout_ns passes. Returns 0, or -errno. */
	int (*wait)(struct rsx_cmp_io *io, int64_t timeout_ns);
	/*
	 * Housekeeping on every poll pass (reap tx completions, release held
	 * datagrams). Returns the monotonic ns at which it wants to run again,
	 * or 0 if it has nothing pending. May be NULL.
	 */
	uint64_t (*tick)(struct rsx_cmp_io *io, uint64_t now);
	/* Datagrams the kernel dropped before we could read them (socket or ring full). May be NULL. */
	uint64_t (*drops)(struct rsx_cmp_io *io);
	/* A descriptor that polls readable when datagrams wait (udp, xdp). May be NULL. */
	int (*fd)(struct rsx_cmp_io *io);
	/* Fill in a destination's MAC (xdp); others leave it. May be NULL. */
	int (*resolve)(struct rsx_cmp_io *io, struct rsx_cmp_addr *a);
	void (*close)(struct rsx_cmp_io *io);
};

struct rsx_cmp_io {
	const struct rsx_cmp_io_ops *ops;
	struct rsx_cmp_endpoint_stats *st;	/* the endpoint's counters (tx_errors, rx_not_ours) */
	struct rsx_cmp_addr local;		/* bound address */
	uint32_t batch;
	uint32_t mode;
};

/* Backend constructors: return 0 and *out, or -errno / RSX_EINVALID. */
int cmp_udp_open(const struct rsx_cmp_config *cfg, struct rsx_cmp_io **out);
int cmp_uring_open(const struct rsx_cmp_config *cfg, struct rsx_cmp_io **out);
int cmp_xdp_open(const struct rsx_cmp_config *cfg, struct rsx_cmp_io **out);
int cmp_mem_open(const struct rsx_cmp_config *cfg, struct rsx_cmp_io **out);
int cmp_mem_link(struct rsx_cmp_io *a, struct rsx_cmp_io *b);
/* A bound UDP socket inside cfg->netns (shared by udp and uring). Returns the fd or -errno. */
int cmp_udp_socket(const struct rsx_cmp_config *cfg, int nonblock, struct rsx_cmp_addr *bound);
uint64_t cmp_udp_drops(int fd);
/* Wrap inner in the fault layer; on failure inner is left open. */
int cmp_fault_wrap(const struct rsx_cmp_fault_config *cfg, struct rsx_cmp_io *inner,
		   struct rsx_cmp_io **out);
void cmp_fault_stats(struct rsx_cmp_io *io, struct rsx_cmp_fault_stats *out);

/* Network namespaces and netdev lookups (cmp_netdev.c). */
struct cmp_netns_guard {
	int saved;	/* fd of the caller's netns, -1 if not switched */
};
/* Enter netns (path; "" or NULL = stay). Returns 0 or -errno. */
int cmp_netns_enter(const char *netns, struct cmp_netns_guard *g);
void cmp_netns_leave(struct cmp_netns_guard *g);
int cmp_netdev_ifindex(const char *ifname);
int cmp_netdev_mac(const char *ifname, uint8_t mac[6]);
int cmp_netdev_ipv4(const char *ifname, uint32_t *ip);
/* MAC of ip on ifname from the neighbour table, provoking ARP if missing (up to wait_ms). */
int cmp_netdev_neigh(const char *ifname, uint32_t ip, uint8_t mac[6], int wait_ms);

/* BPF (cmp_bpf.c). */
int cmp_bpf_xskmap_create(unsigned entries);
int cmp_bpf_map_update(int map_fd, uint32_t key, uint32_t value);
/* Load the UDP port filter program that redirects to xskmap. Returns prog fd or -errno. */
int cmp_bpf_prog_load(int xskmap_fd, uint16_t port, char *log, size_t log_size);
/* Attach prog to ifindex with a bpf_link. Returns link fd or -errno. */
int cmp_bpf_xdp_attach(int prog_fd, int ifindex, uint32_t xdp_flags);

/* ---- endpoint, sender, receiver ---- */

uint64_t cmp_now(void);

struct cmp_stream {
	uint32_t stream_id;
	struct rsx_cmp_sender *sender;
	struct rsx_cmp_receiver *receiver;
};

struct rsx_cmp_endpoint {
	struct rsx_cmp_io *io;
	struct rsx_cmp_io *backend;	/* io, or the io inside the fault layer */
	uint32_t mode;
	uint32_t nstreams;
	struct cmp_stream streams[CMP_MAX_STREAMS];
	struct rsx_cmp_endpoint_stats st;
	uint64_t next_due;		/* earliest timer due after the last poll; 0 = none */
	struct cmp_rxmsg rx[CMP_MAX_BATCH];
};

struct cmp_stream *cmp_stream_get(struct rsx_cmp_endpoint *ep, uint32_t stream_id, int create);

/*
 * Send datagrams through the endpoint's io and count them. Returns how many
 * were consumed; counts the refused ones in tx_would_block.
 */
unsigned cmp_ep_send(struct rsx_cmp_endpoint *ep, const struct cmp_txmsg *m, unsigned n);

/*
 * Frame a control record (NAK, HEARTBEAT) whose payload is filled in but for
 * ts_ns (stamped here, CLOCK_REALTIME), tag it under key (NULL = unkeyed) and
 * send it to `to`. Returns 1 if the kernel took it (a refused one is retried
 * by the caller's timer).
 */
int cmp_send_control(struct rsx_cmp_endpoint *ep, uint16_t type, void *payload, size_t len,
		     const uint8_t *key, const struct rsx_cmp_addr *to);

/* Sender hooks called by the endpoint. */
void cmp_sender_on_nak(struct rsx_cmp_sender *s, const uint8_t *rec, const struct rsx_cmp_addr *from,
		       uint64_t now);
/* Push pending data, send a due heartbeat. Returns the next ns it wants to run, 0 = none. */
uint64_t cmp_sender_tick(struct rsx_cmp_sender *s, uint64_t now);
void cmp_sender_free(struct rsx_cmp_sender *s);

/* Receiver hooks. */
void cmp_receiver_on_data(struct rsx_cmp_receiver *r, const uint8_t *rec, uint32_t len,
			  const struct rsx_cmp_addr *from, uint64_t now);
void cmp_receiver_on_heartbeat(struct rsx_cmp_receiver *r, const uint8_t *rec,
			       const struct rsx_cmp_addr *from, uint64_t now);
uint64_t cmp_receiver_tick(struct rsx_cmp_receiver *r, uint64_t now);
int cmp_receiver_ready(const struct rsx_cmp_receiver *r);	/* 1 deliverable, -1 needs replay, 0 */
void cmp_receiver_free(struct rsx_cmp_receiver *r);

/* Whether tag is rec[0..len)'s MAC under key (constant time). */
int cmp_mac_ok(const uint8_t key[RSX_CMP_KEY_BYTES], const uint8_t *rec, size_t len, const uint8_t *tag);
/* The key a stream's datagrams of this type are checked with (NULL = unkeyed). */
const uint8_t *cmp_sender_key(const struct rsx_cmp_sender *s);
const uint8_t *cmp_receiver_key(const struct rsx_cmp_receiver *r);

/* Unaligned little-endian field access (payloads in buffers are not aligned: lesson 40). */
static inline uint16_t cmp_get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t cmp_get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t cmp_get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline void cmp_put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

#define CMP_REC_TYPE(rec) cmp_get16((rec) + 2)
#define CMP_REC_SEQ(rec) cmp_get64((rec) + RSX_HEADER_SIZE)
#define CMP_REC_STREAM(rec) cmp_get32((rec) + RSX_HEADER_SIZE + 16)
#define CMP_IS_DATA(type) ((type) < 48)

#endif
