/*
 * cmp_uring.c - the io_uring backend, on raw syscalls and <linux/io_uring.h>
 * only (no liburing).
 *
 * Ring setup: COOP_TASKRUN | TASKRUN_FLAG. With the default setup every
 * completion reaches a spinning thread through a task-work IPI (25 us RTT
 * here, reference/machine.md); with these flags the kernel only raises
 * IORING_SQ_TASKRUN and we enter to run the work ourselves (8.3 us). No
 * SQPOLL: a kernel poller plus two spinning threads is three spinners on two
 * cores.
 *
 * Receive: one multishot RECVMSG on a provided-buffer ring; each completion
 * names a buffer holding io_uring_recvmsg_out + source address + payload.
 * Send: one SENDMSG per datagram from a backend-owned copy (the caller's
 * buffer may change before completion), one io_uring_enter per batch.
 *
 * Completions are task work of the submitting thread: drive an io_uring
 * endpoint from one thread (the one that polls it first arms the receive).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rsx/errors.h"
#include "cmp_int.h"

#define SQ_ENTRIES 256
#define CQ_ENTRIES 4096
#define NBUF 1024		/* provided receive buffers (power of two) */
#define BUFSZ 2048
#define TXN 256			/* send slots in flight */
#define TAG_RECV 0xffffffffffffffffull
#define BGID 7

struct tx_slot {
	struct msghdr mh;
	struct iovec iov;
	struct sockaddr_in sa;
	uint8_t data[CMP_MAX_DGRAM];
};

struct rx_done {	/* a receive completion taken off the CQ but not yet handed out */
	int32_t res;
	uint32_t flags;
};

struct uring_io {
	struct rsx_cmp_io base;
	int sock, ring;
	/* submission queue */
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_flags, *sq_array;
	struct io_uring_sqe *sqes;
	unsigned sq_tail_local, to_submit;
	/* completion queue */
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_cqe *cqes;
	void *sq_map, *cq_map;
	size_t sq_map_sz, cq_map_sz, sqes_sz;
	/* provided buffers */
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	uint16_t br_tail;
	int recv_armed;
	struct msghdr recv_mh;
	/* receive completions taken off the CQ while reaping sends */
	struct rx_done stash[CQ_ENTRIES];
	unsigned stash_head, stash_tail;
	/* buffers of the last batch, given back on release */
	uint16_t held[CMP_MAX_BATCH];
	unsigned nheld;
	/* send slots */
	struct tx_slot *tx;
	uint16_t txfree[TXN];
	unsigned ntxfree;
};

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, void *arg, size_t argsz)
{
	long r = syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);
	return r < 0 ? -errno : (int)r;
}

static struct io_uring_sqe *get_sqe(struct uring_io *u)
{
	unsigned head = __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
	if (u->sq_tail_local - head >= SQ_ENTRIES)
		return NULL;
	unsigned i = u->sq_tail_local & *u->sq_mask;
	struct io_uring_sqe *sqe = &u->sqes[i];
	memset(sqe, 0, sizeof(*sqe));
	u->sq_array[i] = i;
	u->sq_tail_local++;
	u->to_submit++;
	return sqe;
}

static int submit(struct uring_io *u)
{
	if (!u->to_submit)
		return 0;
	__atomic_store_n(u->sq_tail, u->sq_tail_local, __ATOMIC_RELEASE);
	int r = sys_enter(u->ring, u->to_submit, 0, 0, NULL, 0);
	if (r < 0)
		return r;
	u->to_submit -= (unsigned)r < u->to_submit ? (unsigned)r : u->to_submit;
	return r;
}

static void arm_recv(struct uring_io *u)
{
	struct io_uring_sqe *sqe = get_sqe(u);
	if (!sqe)
		return;	/* SQ full: try again on the next pass */
	sqe->opcode = IORING_OP_RECVMSG;
	sqe->fd = u->sock;
	sqe->addr = (uint64_t)(uintptr_t)&u->recv_mh;
	sqe->len = 1;
	sqe->flags = IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	sqe->ioprio = IORING_RECV_MULTISHOT;
	sqe->user_data = TAG_RECV;
	u->recv_armed = 1;
	submit(u);
}

static void give_buffer(struct uring_io *u, uint16_t bid)
{
	struct io_uring_buf *b = &u->br->bufs[u->br_tail & (NBUF - 1)];
	b->addr = (uint64_t)(uintptr_t)(u->bufs + (size_t)bid * BUFSZ);
	b->len = BUFSZ;
	b->bid = bid;
	u->br_tail++;
}

static void publish_buffers(struct uring_io *u)
{
	__atomic_store_n(&u->br->tail, u->br_tail, __ATOMIC_RELEASE);
}

/* Take every CQE: sends free their slot, receives go to the stash. */
static void reap(struct uring_io *u)
{
	unsigned head = *u->cq_head;
	unsigned tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
	if (head == tail && (__atomic_load_n(u->sq_flags, __ATOMIC_RELAXED) & IORING_SQ_TASKRUN)) {
		/* Completions wait as task work (COOP_TASKRUN): run it without sleeping. */
		sys_enter(u->ring, 0, 0, IORING_ENTER_GETEVENTS, NULL, 0);
		tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
	}
	while (head != tail) {
		struct io_uring_cqe *c = &u->cqes[head & *u->cq_mask];
		if (c->user_data == TAG_RECV) {
			if (u->stash_tail - u->stash_head == CQ_ENTRIES)
				break;	/* stash full: leave the rest on the CQ */
			u->stash[u->stash_tail % CQ_ENTRIES] = (struct rx_done){ c->res, c->flags };
			u->stash_tail++;
			if (!(c->flags & IORING_CQE_F_MORE))
				u->recv_armed = 0;
		} else {
			if (c->res < 0)
				u->base.st->tx_errors++;
			u->txfree[u->ntxfree++] = (uint16_t)c->user_data;
		}
		head++;
	}
	__atomic_store_n(u->cq_head, head, __ATOMIC_RELEASE);
}

static int uring_send(struct rsx_cmp_io *io, const struct cmp_txmsg *msgs, unsigned n)
{
	struct uring_io *u = (struct uring_io *)io;
	unsigned i;
	for (i = 0; i < n; i++) {
		if (u->ntxfree == 0) {
			submit(u);
			reap(u);
			if (u->ntxfree == 0)
				break;	/* every slot in flight: EAGAIN */
		}
		struct io_uring_sqe *sqe = get_sqe(u);
		if (!sqe) {
			submit(u);
			if (!(sqe = get_sqe(u)))
				break;
		}
		uint16_t k = u->txfree[--u->ntxfree];
		struct tx_slot *t = &u->tx[k];
		memcpy(t->data, msgs[i].buf, msgs[i].len);
		t->iov.iov_len = msgs[i].len;
		t->sa.sin_family = AF_INET;
		t->sa.sin_addr.s_addr = msgs[i].to.ip;
		t->sa.sin_port = htons(msgs[i].to.port);
		sqe->opcode = IORING_OP_SENDMSG;
		sqe->fd = u->sock;
		sqe->addr = (uint64_t)(uintptr_t)&t->mh;
		sqe->len = 1;
		sqe->user_data = k;
	}
	int r = submit(u);
	if (r < 0 && r != -EAGAIN && r != -EBUSY && r != -EINTR)
		return r;
	return (int)i;
}

static int uring_recv(struct rsx_cmp_io *io, struct cmp_rxmsg *msgs, unsigned n)
{
	struct uring_io *u = (struct uring_io *)io;
	unsigned k = 0;
	if (!u->recv_armed && u->stash_head == u->stash_tail)
		arm_recv(u);
	reap(u);	/* always: frees send slots even while older receive completions wait */
	while (k < n && u->stash_head != u->stash_tail) {
		struct rx_done d = u->stash[u->stash_head % CQ_ENTRIES];
		u->stash_head++;
		if (d.res < 0)
			continue;	/* no datagram (ENOBUFS ended the multishot: re-armed on release) */
		if (!(d.flags & IORING_CQE_F_BUFFER))
			continue;
		uint16_t bid = (uint16_t)(d.flags >> IORING_CQE_BUFFER_SHIFT);
		uint8_t *buf = u->bufs + (size_t)bid * BUFSZ;
		struct io_uring_recvmsg_out o;
		memcpy(&o, buf, sizeof(o));
		size_t hdr = sizeof(o) + u->recv_mh.msg_namelen + u->recv_mh.msg_controllen;
		size_t have = (size_t)d.res > hdr ? (size_t)d.res - hdr : 0;
		struct sockaddr_in sa;
		memcpy(&sa, buf + sizeof(o), sizeof(sa));
		msgs[k].buf = buf + hdr;
		msgs[k].len = (uint32_t)(o.payloadlen < have ? o.payloadlen : have);
		msgs[k].truncated = (o.flags & MSG_TRUNC) || o.payloadlen > have;
		memset(&msgs[k].from, 0, sizeof(msgs[k].from));
		msgs[k].from.ip = sa.sin_addr.s_addr;
		msgs[k].from.port = ntohs(sa.sin_port);
		u->held[u->nheld++] = bid;
		k++;
	}
	return (int)k;
}

static void uring_release(struct rsx_cmp_io *io)
{
	struct uring_io *u = (struct uring_io *)io;
	for (unsigned i = 0; i < u->nheld; i++)
		give_buffer(u, u->held[i]);
	if (u->nheld)
		publish_buffers(u);
	u->nheld = 0;
	if (!u->recv_armed)
		arm_recv(u);	/* the multishot ended (e.g. ENOBUFS): buffers are back, re-arm */
}

static int uring_wait(struct rsx_cmp_io *io, int64_t timeout_ns)
{
	struct uring_io *u = (struct uring_io *)io;
	if (u->stash_head != u->stash_tail)
		return 0;
	if (!u->recv_armed)
		arm_recv(u);
	struct __kernel_timespec ts = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
	struct io_uring_getevents_arg arg = { .sigmask = 0, .sigmask_sz = _NSIG / 8, .ts = (uint64_t)(uintptr_t)&ts };
	int r = sys_enter(u->ring, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
	return (r < 0 && r != -ETIME && r != -EINTR) ? r : 0;
}

static uint64_t uring_tick(struct rsx_cmp_io *io, uint64_t now)
{
	struct uring_io *u = (struct uring_io *)io;
	(void)now;
	if (u->to_submit)
		submit(u);
	return 0;
}

static uint64_t uring_drops(struct rsx_cmp_io *io)
{
	return cmp_udp_drops(((struct uring_io *)io)->sock);
}

static void uring_close(struct rsx_cmp_io *io)
{
	struct uring_io *u = (struct uring_io *)io;
	if (u->ring >= 0)
		close(u->ring);	/* cancels the multishot receive and in-flight sends */
	if (u->sock >= 0)
		close(u->sock);
	if (u->sqes && u->sqes != MAP_FAILED)
		munmap(u->sqes, u->sqes_sz);
	if (u->cq_map && u->cq_map != MAP_FAILED && u->cq_map != u->sq_map)
		munmap(u->cq_map, u->cq_map_sz);
	if (u->sq_map && u->sq_map != MAP_FAILED)
		munmap(u->sq_map, u->sq_map_sz);
	if (u->br)
		munmap(u->br, (size_t)NBUF * sizeof(struct io_uring_buf));
	if (u->bufs)
		munmap(u->bufs, (size_t)NBUF * BUFSZ);
	if (u->tx)
		munmap(u->tx, (size_t)TXN * sizeof(struct tx_slot));
	free(u);
}

static const struct rsx_cmp_io_ops uring_ops = {
	.send = uring_send,
	.recv = uring_recv,
	.release = uring_release,
	.wait = uring_wait,
	.tick = uring_tick,
	.drops = uring_drops,
	.close = uring_close,
};

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static int ring_setup(struct uring_io *u)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_CQSIZE;
	p.cq_entries = CQ_ENTRIES;
	long fd = syscall(__NR_io_uring_setup, SQ_ENTRIES, &p);
	if (fd < 0)
		return -errno;
	u->ring = (int)fd;
	u->sq_map_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	u->cq_map_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (u->cq_map_sz > u->sq_map_sz)
			u->sq_map_sz = u->cq_map_sz;
		u->cq_map_sz = u->sq_map_sz;
	}
	u->sq_map = mmap(NULL, u->sq_map_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->ring,
			 IORING_OFF_SQ_RING);
	if (u->sq_map == MAP_FAILED)
		return -errno;
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		u->cq_map = u->sq_map;
	} else {
		u->cq_map = mmap(NULL, u->cq_map_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->ring,
				 IORING_OFF_CQ_RING);
		if (u->cq_map == MAP_FAILED)
			return -errno;
	}
	u->sqes_sz = p.sq_entries * sizeof(struct io_uring_sqe);
	u->sqes = mmap(NULL, u->sqes_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->ring,
		       IORING_OFF_SQES);
	if (u->sqes == MAP_FAILED)
		return -errno;
	uint8_t *sq = u->sq_map, *cq = u->cq_map;
	u->sq_head = (unsigned *)(sq + p.sq_off.head);
	u->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	u->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	u->sq_flags = (unsigned *)(sq + p.sq_off.flags);
	u->sq_array = (unsigned *)(sq + p.sq_off.array);
	u->cq_head = (unsigned *)(cq + p.cq_off.head);
	u->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	u->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	u->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	u->sq_tail_local = *u->sq_tail;
	return 0;
}

static int buffers_setup(struct uring_io *u)
{
	u->br = map_anon((size_t)NBUF * sizeof(struct io_uring_buf));
	u->bufs = map_anon((size_t)NBUF * BUFSZ);
	if (!u->br || !u->bufs)
		return -ENOMEM;
	struct io_uring_buf_reg reg;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)u->br;
	reg.ring_entries = NBUF;
	reg.bgid = BGID;
	if (syscall(__NR_io_uring_register, u->ring, IORING_REGISTER_PBUF_RING, &reg, 1) < 0)
		return -errno;
	for (uint16_t i = 0; i < NBUF; i++)
		give_buffer(u, i);
	publish_buffers(u);
	memset(&u->recv_mh, 0, sizeof(u->recv_mh));
	u->recv_mh.msg_namelen = sizeof(struct sockaddr_in);
	return 0;
}

static int tx_setup(struct uring_io *u)
{
	u->tx = map_anon((size_t)TXN * sizeof(struct tx_slot));
	if (!u->tx)
		return -ENOMEM;
	for (unsigned i = 0; i < TXN; i++) {
		struct tx_slot *t = &u->tx[i];
		t->iov.iov_base = t->data;
		t->mh.msg_name = &t->sa;
		t->mh.msg_namelen = sizeof(t->sa);
		t->mh.msg_iov = &t->iov;
		t->mh.msg_iovlen = 1;
		u->txfree[u->ntxfree++] = (uint16_t)(TXN - 1 - i);
	}
	return 0;
}

int cmp_uring_open(const struct rsx_cmp_config *cfg, struct rsx_cmp_io **out)
{
	struct uring_io *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->ring = -1;
	u->base.ops = &uring_ops;
	/* A blocking socket: io_uring tries non-blocking itself and arms poll on EAGAIN. */
	u->sock = cmp_udp_socket(cfg, 0, &u->base.local);
	int rc = u->sock;
	if (rc >= 0 && (rc = ring_setup(u)) == 0 && (rc = buffers_setup(u)) == 0 && (rc = tx_setup(u)) == 0) {
		/*
		 * The multishot receive is armed by the first poll, not here: its
		 * completions run as task work of the task that submitted it, and
		 * the opening thread may never poll (it would be woken, ~30 us, for
		 * every datagram).
		 */
		*out = &u->base;
		return 0;
	}
	uring_close(&u->base);
	return rc;
}
