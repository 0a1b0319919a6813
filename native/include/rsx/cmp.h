/*
 * rsx/cmp.h - CMP: v1 records over UDP, one record per datagram, with NAK
 * recovery and no silent loss. specs/cmp.md is the prose form of this file.
 *
 * An endpoint is one socket (backend: udp, io_uring, AF_XDP, or the in-memory
 * test double) bound to one local address. Senders (one stream each) and
 * receivers (one stream each) hang off an endpoint; rsx_cmp_poll() receives a
 * batch, dispatches it by type and stream_id, runs the timers (heartbeats,
 * NAKs) and pushes pending data. One thread drives an endpoint and everything
 * attached to it: nothing here takes a lock.
 *
 * Return values: >= 0 success, -errno from the kernel, RSX_E* (errors.h).
 */
#ifndef RSX_CMP_H
#define RSX_CMP_H

#include <stddef.h>
#include <stdint.h>

enum rsx_cmp_backend {
	RSX_CMP_UDP = 1,	/* sendmmsg / recvmmsg */
	RSX_CMP_URING = 2,	/* raw io_uring, multishot recvmsg */
	RSX_CMP_XDP = 3,	/* AF_XDP copy mode + hand-assembled XDP program */
	RSX_CMP_MEM = 4,	/* in-process test double (rsx_cmp_mem_link) */
};

enum rsx_cmp_mode {
	RSX_CMP_BUSY = 1,	/* spin on the receive path: lowest latency, costs a core */
	RSX_CMP_SLEEP = 2,	/* wait in the kernel until readable, timeout or timer */
};

enum rsx_cmp_xdp_mode {
	RSX_CMP_XDP_SKB = 1,	/* generic XDP (fastest on veth here) */
	RSX_CMP_XDP_DRV = 2,	/* native driver XDP */
};

enum rsx_cmp_state {
	RSX_CMP_LIVE = 1,		/* no known hole */
	RSX_CMP_RECOVERING = 2,		/* holes exist; NAKs in progress */
	RSX_CMP_NEEDS_REPLAY = 3,	/* sticky: a hole exhausted its NAK retries */
};

/* An IPv4 UDP address; mac is used by the xdp backend only (0 = resolve). */
struct rsx_cmp_addr {
	uint32_t ip;		/* network byte order (struct in_addr) */
	uint16_t port;		/* host byte order */
	uint8_t mac[6];
};

/* Parse a dotted IPv4 address into a. Returns 0 or RSX_EINVALID. */
int rsx_cmp_addr_set(struct rsx_cmp_addr *a, const char *ip, uint16_t port);

/* ---- optional per-stream MAC (specs/cmp.md section 12) ---- */

#define RSX_CMP_KEY_BYTES 16	/* a stream's shared key */
#define RSX_CMP_MAC_BYTES 16	/* the tag after the record in every datagram of a keyed stream */

/* SipHash-2-4 with a 128-bit output of msg[0..len) under key (the CMP tag). */
void rsx_cmp_mac(const uint8_t key[RSX_CMP_KEY_BYTES], const void *msg, size_t len,
		 uint8_t out[RSX_CMP_MAC_BYTES]);

/* ---- fault injection (specs/cmp.md section 6) ---- */

enum rsx_cmp_fault_action {
	RSX_CMP_FAULT_DROP = 1,
	RSX_CMP_FAULT_DUP = 2,
	RSX_CMP_FAULT_REORDER = 3,
	RSX_CMP_FAULT_DELAY = 4,
};

enum rsx_cmp_fault_class {
	RSX_CMP_FC_ANY = 0,
	RSX_CMP_FC_DATA = 1,	/* record types < 48 */
	RSX_CMP_FC_CONTROL = 2,	/* NAK, HEARTBEAT (and anything else >= 48) */
};

/* Act on datagrams of `cls` whose ordinal in that class is in [first, first+count), every `every` (0 = once). */
struct rsx_cmp_fault_rule {
	uint32_t action;	/* enum rsx_cmp_fault_action */
	uint32_t cls;		/* enum rsx_cmp_fault_class */
	uint64_t first;
	uint64_t count;
	uint64_t every;
};

#define RSX_CMP_FAULT_RULES 8

struct rsx_cmp_fault_config {
	uint64_t seed;
	uint32_t drop_ppm;	/* rates in parts per million */
	uint32_t dup_ppm;
	uint32_t reorder_ppm;
	uint32_t delay_ppm;
	uint32_t rate_cls;	/* class the rates apply to (enum rsx_cmp_fault_class) */
	uint32_t reorder_depth;	/* a reordered datagram goes after this many others (default 3) */
	uint32_t delay_us;	/* hold time of a delayed datagram */
	uint32_t nrules;
	struct rsx_cmp_fault_rule rules[RSX_CMP_FAULT_RULES];
};

struct rsx_cmp_fault_stats {
	uint64_t seen, dropped, duplicated, reordered, delayed;
};

/* ---- endpoint ---- */

struct rsx_cmp_config {
	uint32_t backend;	/* enum rsx_cmp_backend */
	uint32_t mode;		/* enum rsx_cmp_mode */
	struct rsx_cmp_addr local;	/* port 0 = any; xdp: ip 0 = the interface's address */
	char ifname[16];	/* xdp: the interface */
	char netns[128];	/* path of a network namespace to open in; "" = the caller's */
	uint32_t queue;		/* xdp: rx queue to bind */
	uint32_t xdp_mode;	/* enum rsx_cmp_xdp_mode */
	uint32_t sndbuf;	/* udp/uring socket buffers (bytes) */
	uint32_t rcvbuf;
	uint32_t batch;		/* datagrams per receive / send system call, 1..64 */
	uint32_t fault_enabled;	/* wrap the backend in the fault layer */
	struct rsx_cmp_fault_config fault;
};

struct rsx_cmp_endpoint_stats {
	uint64_t rx_datagrams, rx_bytes, tx_datagrams, tx_bytes;
	uint64_t rx_short, rx_bad_version, rx_bad_type, rx_bad_length, rx_bad_reserved, rx_bad_crc;
	uint64_t rx_unexpected_type, rx_bad_seq, rx_unknown_stream, rx_not_ours;
	uint64_t tx_would_block, tx_errors;
	uint64_t rx_kernel_drops;	/* dropped by the kernel before we read them (full socket buffer / rx ring) */
	uint64_t polls, waits;
	uint64_t rx_bad_mac;		/* keyed stream: missing or wrong tag */
};

struct rsx_cmp_endpoint;
struct rsx_cmp_sender;
struct rsx_cmp_receiver;

/* Fill cfg with the defaults of specs/cmp.md section 8 (io_uring if the kernel allows, else udp; busy). */
void rsx_cmp_config_init(struct rsx_cmp_config *cfg);

/*
 * Open an endpoint. Returns 0 and sets *out, RSX_EINVALID for a bad
 * configuration (nothing opened), or the -errno the kernel gave (-EPERM,
 * -EADDRINUSE, -EOPNOTSUPP, ...), with everything opened so far closed again.
 */
int rsx_cmp_open(const struct rsx_cmp_config *cfg, struct rsx_cmp_endpoint **out);

/* Close the endpoint and free its senders and receivers. NULL is ignored. */
void rsx_cmp_close(struct rsx_cmp_endpoint *ep);

/* The bound local address (port resolved when 0 was asked). */
void rsx_cmp_local_addr(const struct rsx_cmp_endpoint *ep, struct rsx_cmp_addr *out);

/*
 * Receive and dispatch what has arrived, run due timers, push pending data.
 * With timeout_us > 0 and nothing arrived, waits up to timeout_us (busy mode
 * spins, sleep mode sleeps in the kernel, both keep running timers);
 * timeout_us < 0 waits until something arrives. Returns the number of
 * datagrams handled (valid or not), or a -errno from the backend.
 */
int rsx_cmp_poll(struct rsx_cmp_endpoint *ep, int64_t timeout_us);

/*
 * Send raw bytes (any content, 1..2048 bytes) to `to` through the endpoint's
 * backend and fault layer, bypassing every check: for tests and tools that
 * need malformed datagrams. Returns len, -EAGAIN, RSX_EINVALID or -errno.
 */
int rsx_cmp_send_raw(struct rsx_cmp_endpoint *ep, const void *buf, size_t len,
		     const struct rsx_cmp_addr *to);

/*
 * A descriptor that polls readable (POLLIN) when datagrams wait for the
 * endpoint, for callers that sleep in their own event loop (epoll, asyncio):
 * the udp socket, the xdp socket. -EOPNOTSUPP for uring and mem (they wait in
 * rsx_cmp_poll). Readiness says only that the kernel holds datagrams: the
 * caller still calls rsx_cmp_poll by its timers' deadline (heartbeats, NAKs,
 * the fault layer's delayed datagrams). The endpoint keeps ownership: never
 * read from or close it.
 */
int rsx_cmp_endpoint_fd(const struct rsx_cmp_endpoint *ep);

/*
 * When the endpoint's next timer is due (rsx_cmp_now_ns time), as its last
 * rsx_cmp_poll computed it; 0 = no timer. For callers that sleep on
 * rsx_cmp_endpoint_fd in their own loop: poll again by then. Sending data
 * afterwards can bring a heartbeat closer (to heartbeat_us after the send).
 */
uint64_t rsx_cmp_next_due_ns(const struct rsx_cmp_endpoint *ep);

void rsx_cmp_endpoint_stats(const struct rsx_cmp_endpoint *ep, struct rsx_cmp_endpoint_stats *out);
/* Fault-layer counters; all zero when the endpoint has no fault layer. */
void rsx_cmp_fault_stats(const struct rsx_cmp_endpoint *ep, struct rsx_cmp_fault_stats *out);

/* mem backend: deliver a's datagrams to b and b's to a. RSX_EINVALID unless both are mem. */
int rsx_cmp_mem_link(struct rsx_cmp_endpoint *a, struct rsx_cmp_endpoint *b);

/* ---- sender ---- */

/*
 * Seam 1, the deep retransmit source (the WAL): copy the framed record `seq`
 * of `stream_id` into buf (cap >= RSX_RECORD_MAX). Return its size,
 * RSX_EGONE if it is past the retransmit horizon, or another negative code
 * for a read failure. Called on the sender's thread from rsx_cmp_poll, in
 * increasing seq order, only for seqs no longer in the hot ring.
 */
typedef int (*rsx_cmp_fetch_fn)(void *ctx, uint32_t stream_id, uint64_t seq, void *buf, size_t cap);

#define RSX_CMP_MAX_DEST 8

struct rsx_cmp_sender_config {
	uint32_t stream_id;
	uint32_t ndest;		/* 1..RSX_CMP_MAX_DEST */
	struct rsx_cmp_addr dest[RSX_CMP_MAX_DEST];
	uint32_t ring_size;	/* hot retransmit ring, power of two, 64..1M */
	uint32_t heartbeat_us;	/* idle time before a HEARTBEAT; 0 = never */
	uint32_t heartbeat_idle_us;	/* while idle, each HEARTBEAT doubles the interval up to this;
					   0 = heartbeat_us (no back-off). Data starts over at heartbeat_us */
	uint32_t retx_dedup_us;	/* ignore a repeat NAK of a seq from the same address within this */
	rsx_cmp_fetch_fn fetch;	/* NULL: the horizon is the hot ring */
	void *fetch_ctx;
	uint32_t keyed;		/* 1: every datagram of the stream carries a MAC under key */
	uint8_t key[RSX_CMP_KEY_BYTES];
	/*
	 * 1: the caller is the stream's owner handing over records it framed and
	 * sealed itself (its WAL bytes): their header, stream and seq are checked,
	 * the CRC is not hashed again (every receiver checks it).
	 */
	uint32_t owner_sealed;
};

struct rsx_cmp_sender_stats {
	uint64_t records, sent, heartbeats;
	uint64_t naks_received, nak_seqs, naks_invalid;
	uint64_t retx_ring, retx_fetched, retx_gone, retx_dedup, fetch_errors;
	uint64_t stalls;
	uint64_t last_seq;	/* gauge: last seq accepted */
	uint64_t sent_seq;	/* gauge: last seq handed to the kernel for every destination */
	uint64_t pending;	/* gauge: accepted, not yet handed to the kernel */
	uint64_t naks_unknown;	/* NAKs from an address that is not a destination: ignored */
	uint64_t nak_replies;	/* heartbeats sent to a NAKer for seqs this sender cannot serve */
};

void rsx_cmp_sender_config_init(struct rsx_cmp_sender_config *cfg);

/*
 * Attach a sender of cfg->stream_id to ep. Returns 0 and sets *out,
 * RSX_EINVALID (bad config, or the stream already has a sender here), -ENOMEM,
 * or a backend -errno resolving a destination (xdp: -EHOSTUNREACH when the
 * destination's MAC cannot be learned).
 */
int rsx_cmp_sender_open(struct rsx_cmp_endpoint *ep, const struct rsx_cmp_sender_config *cfg,
			struct rsx_cmp_sender **out);

/*
 * Send one framed, sealed record of the sender's stream (seq = last + 1; the
 * first may be any seq >= 1). Returns the record size; on failure nothing
 * changes: a record error (RSX_ESHORT, RSX_ECRC, ...), RSX_ETYPE (a control
 * type), RSX_ESTREAM, RSX_ESEQ, or -EAGAIN (every hot-ring slot holds a record
 * the kernel has not taken yet: poll, then retry).
 */
int rsx_cmp_sender_send(struct rsx_cmp_sender *s, const void *rec, size_t len);

/*
 * Send back-to-back records from buf[0..len). Accepts records up to the
 * first refused one, sets *used to the bytes accepted, and returns the
 * number of records accepted, or the first record's error if none was.
 */
int rsx_cmp_sender_send_batch(struct rsx_cmp_sender *s, const void *buf, size_t len, size_t *used);

void rsx_cmp_sender_stats(const struct rsx_cmp_sender *s, struct rsx_cmp_sender_stats *out);

/* ---- receiver ---- */

struct rsx_cmp_receiver_config {
	uint32_t stream_id;
	uint32_t window;	/* reorder + delivery ring, power of two, 64..1M */
	uint64_t start_seq;	/* first seq wanted; 0 = join at the first seq seen (link: 0 or 1) */
	uint32_t nak_delay_us;	/* a hole's first NAK, after it was found */
	uint32_t nak_retry_us;	/* between NAKs of the same hole */
	uint32_t nak_max_retries;	/* NAKs per hole before NEEDS_REPLAY */
	uint32_t nak_max_count;	/* seqs per NAK */
	uint32_t nak_max_runs;	/* NAKs per poll */
	uint32_t link;		/* 1: a link stream (not journaled): join on first contact, follow
				   sender restarts, skip and count unrecoverable holes (specs/cmp.md 4.6) */
	uint32_t keyed;		/* 1: every datagram of the stream carries a MAC under key */
	uint8_t key[RSX_CMP_KEY_BYTES];
};

struct rsx_cmp_receiver_stats {
	uint64_t received, delivered, duplicates, reordered, overruns, gaps;
	uint64_t naks_sent, nak_seqs, recovered;
	uint64_t heartbeats, stale_heartbeats;
	uint64_t faults, replayed, replay_duplicates, resumes;
	uint64_t resyncs, link_losses;	/* link receivers: sender restarts followed, seqs skipped */
	uint64_t unconfirmed;		/* claims above the sender's own tip dropped (a forged seq) */
};

struct rsx_cmp_receiver_info {
	uint32_t state;		/* enum rsx_cmp_state */
	uint32_t stream_id;
	uint32_t link;		/* a link receiver (section 4.6) */
	uint32_t _pad0;
	uint64_t delivered;	/* last seq handed out by read */
	uint64_t expected;	/* first seq not held: replay from here */
	uint64_t highest;	/* highest seq known to exist */
	uint64_t gap_start;	/* NEEDS_REPLAY: the unrecoverable range [gap_start, gap_end] */
	uint64_t gap_end;
	uint64_t last_heard_ns;	/* CLOCK_MONOTONIC of the stream's last datagram, 0 = never */
};

void rsx_cmp_receiver_config_init(struct rsx_cmp_receiver_config *cfg);

/* Attach a receiver of cfg->stream_id to ep. Returns 0, RSX_EINVALID or -ENOMEM. */
int rsx_cmp_receiver_open(struct rsx_cmp_endpoint *ep, const struct rsx_cmp_receiver_config *cfg,
			  struct rsx_cmp_receiver **out);

/*
 * Copy up to max deliverable records, in seq order, into out (one per
 * `stride` bytes, stride >= RSX_RECORD_MAX or >= the record's size). Returns
 * the number copied, RSX_EREPLAY if none is deliverable and the stream needs
 * replay, or RSX_EINVALID for a stride smaller than a record.
 */
int rsx_cmp_receiver_read(struct rsx_cmp_receiver *r, void *out, size_t stride, size_t max);

/*
 * Poll ep until r has something deliverable (or needs replay) or timeout_us
 * passes (semantics of rsx_cmp_poll; timeout_us 0 polls the socket once),
 * then read like rsx_cmp_receiver_read.
 * Returns records copied (0 on timeout), RSX_EREPLAY, or a -errno from poll.
 */
int rsx_cmp_receive(struct rsx_cmp_endpoint *ep, struct rsx_cmp_receiver *r,
		    void *out, size_t stride, size_t max, int64_t timeout_us);

/*
 * Seam 2 (DXS): feed one replayed record of the stream, in seq order from
 * info.expected. Returns 1 if it closed the unrecoverable gap (the receiver
 * left NEEDS_REPLAY), 0 if accepted or ignored (seq < expected), -EAGAIN if
 * the window is full of unread records, RSX_ESEQ if seq > expected, or the
 * record's error / RSX_ESTREAM / RSX_ETYPE, RSX_EINVALID on a link receiver
 * (nothing to replay from). Nothing changes on an error.
 */
int rsx_cmp_receiver_replay(struct rsx_cmp_receiver *r, const void *rec, size_t len);

void rsx_cmp_receiver_info(const struct rsx_cmp_receiver *r, struct rsx_cmp_receiver_info *out);
void rsx_cmp_receiver_stats(const struct rsx_cmp_receiver *r, struct rsx_cmp_receiver_stats *out);

/* ---- helpers for tests and benchmarks ---- */

/* CLOCK_MONOTONIC in ns. */
uint64_t rsx_cmp_now_ns(void);

/*
 * Switch tx checksum offload of ifname (inside netns, "" = the caller's) on
 * or off with the SIOCETHTOOL ioctl (ETHTOOL_STXCSUM), so no ethtool binary
 * is needed. Returns 0 or -errno.
 */
int rsx_cmp_netdev_set_tx_csum(const char *netns, const char *ifname, int on);
/* Read it back: 1 on, 0 off, or -errno. */
int rsx_cmp_netdev_get_tx_csum(const char *netns, const char *ifname);

#endif
